//! The client: connect and check the host key ([`connect`]), then drive a remote console
//! ([`console`]) for one command ([`exec`]) or line by line ([`repl`]), or move files
//! ([`transfer`], for [`cp`] and the REPL's `put`/`get` of [`repl_transfer`]; its messages
//! pass through the console's tasks as [`transfer_msg`]s, and downloaded data is written by
//! the console's reader task through [`intake`]). Our stdin reaches a command through a
//! thread that stops when the command ends ([`stdin`]); on a remote pseudo-terminal our own
//! terminal is raw and restored after ([`terminal`]), and typed keys pass ssh's escapes
//! ([`escape`]). Where to connect and how comes from DEST, the flags and the client
//! configuration ([`target`]). Every failure of seashell itself is a [`ClientError`], which the binary
//! reports in one line and maps to exit code 255; the remote command's own status is
//! returned as its exit code.

pub mod complete;
pub mod connect;
pub mod console;
pub mod cp;
pub mod dest;
pub mod escape;
pub mod exec;
pub mod fanout;
pub mod identity;
pub mod intake;
pub mod multiline;
pub mod progress;
pub mod record;
pub mod repl;
pub mod repl_transfer;
pub mod stdin;
pub mod target;
pub mod terminal;
pub mod transfer;
pub mod transfer_msg;

use crate::keys::KeyError;
use crate::transport::TransportError;

/// seashell's own failures on the client side (exit 255).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Bad DEST.
    #[error(transparent)]
    Destination(#[from] dest::BadDestination),
    /// A bad `-g` or `-H` (fan-out).
    #[error("{0}")]
    Hosts(String),
    /// A bad `user@` in DEST or `-l`.
    #[error("{0}")]
    Account(String),
    /// The client configuration file.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The identity or known_hosts file.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// TCP connect failed.
    #[error("cannot connect to {target}: {source}")]
    Connect {
        /// host:port.
        target: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The host key is not in known_hosts and was not accepted.
    #[error(
        "host key for {host_port} is not known ({fingerprint}): verify it with the server's \
         admin (`seashell fingerprint <host key>.pub` on the server), then rerun with \
         --accept-new or --host-fingerprint {fingerprint}"
    )]
    UnknownHost {
        /// The host.
        host_port: String,
        /// The key it offered.
        fingerprint: String,
    },
    /// The host key is `@revoked` in known_hosts.
    #[error(
        "HOST KEY REVOKED for {host_port}: {fingerprint} is marked @revoked ({file}:{line}): \
         refusing to connect. Ask the host's admin for its new key or certificate"
    )]
    HostKeyRevoked {
        /// The host.
        host_port: String,
        /// known_hosts path.
        file: String,
        /// Line of the `@revoked` entry.
        line: usize,
        /// The key offered.
        fingerprint: String,
    },
    /// The host key differs from the pinned one.
    #[error(
        "HOST KEY CHANGED for {host_port}: someone may be intercepting this connection, or \
         the host was reinstalled. Pinned: {old_fingerprint} ({file}:{line}); offered: \
         {new_fingerprint}. If you know why it changed: seashell known-hosts forget {host_port}"
    )]
    HostKeyChanged {
        /// The host.
        host_port: String,
        /// known_hosts path.
        file: String,
        /// Line of the pinned key.
        line: usize,
        /// The pinned key.
        old_fingerprint: String,
        /// The key offered now.
        new_fingerprint: String,
    },
    /// `--host-fingerprint` does not match.
    #[error(
        "host key for {host_port} is {offered}, not the pinned {expected}: refusing to connect"
    )]
    FingerprintMismatch {
        /// The host.
        host_port: String,
        /// `--host-fingerprint`.
        expected: String,
        /// What the server offered.
        offered: String,
    },
    /// The user said no at the prompt.
    #[error("host key for {0} not accepted")]
    Declined(String),
    /// The connection failed, was refused, tampered with or cut.
    #[error("{0}")]
    Transport(#[from] TransportError),
    /// The server closed the connection before its ServerHello.
    #[error(
        "{target} closed the connection during the handshake, before its ServerHello: the \
         server may be refusing this address for a while after repeated failed \
         authentications, or be full of unauthenticated connections (its log says which); \
         or it speaks an older protocol version than this client's version {ours} (upgrade \
         seashell on the server), or it is not a seashell server"
    )]
    ClosedInHandshake {
        /// host:port.
        target: String,
        /// The protocol version we speak.
        ours: u16,
    },
    /// The handshake did not finish in time.
    #[error("no answer from {0} within the handshake deadline")]
    Timeout(String),
    /// The server closed the session with a reason.
    #[error("server closed the session: {0}")]
    Closed(String),
    /// The server did not open the console (its first ConsoleState) in time.
    #[error("the server did not open the console within {0} s")]
    ConsoleTimeout(u64),
    /// A local terminal or stream failed.
    #[error("local I/O error: {0}")]
    Local(std::io::Error),
    /// The command line does not fit a message.
    #[error("command line too long ({0} bytes; the limit is 16384)")]
    LineTooLong(usize),
    /// The agent holds several keys and nothing says which to offer.
    #[error(
        "the agent holds {count} keys and none is {default}: choose one with -i KEY (its .pub \
         next to it names the agent's key): {keys}"
    )]
    AgentChoice {
        /// How many keys the agent holds.
        count: usize,
        /// The default identity's path.
        default: String,
        /// Each key's fingerprint and comment.
        keys: String,
    },
}
