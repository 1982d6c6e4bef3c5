//! Opening a session: TCP with TCP_NODELAY from the first byte and keepalive probes (so a
//! server host that vanishes is noticed), the handshake under a deadline, the host key check
//! (a pinned `--host-fingerprint`, else known_hosts: known keys pass, changed keys are refused
//! loudly, unknown keys are asked about on a terminal, accepted with `--accept-new`, refused
//! otherwise), and client authentication with the identity key.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::crypto::PublicKey;
use tokio::net::TcpStream;

use super::ClientError;
use super::dest::Destination;
use super::identity::{self, Identity};
use crate::keys::cert;
use crate::keys::known_hosts::{self, HostCertStatus, HostKeyStatus, KnownHosts};
use crate::keys::public::fingerprint;
use crate::keys::{KeyError, LineWarning, home};
use crate::proto::handshake::client::ClientSigner as _;
use crate::proto::message::VERSION;
use crate::proto::{Message, ProtoError, UpdateLimits};
use crate::transport::{self, SecureChannel, TransportError};

/// Deadline for TCP connect plus handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How to reach and trust the server, and who we are.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Identity (private key); default `$SEASHELL_HOME/id_rsa`.
    pub identity: Option<PathBuf>,
    /// The identity's certificate (the config's `certificate`); default `IDENTITY-cert.pub`
    /// when there is one.
    pub certificate: Option<PathBuf>,
    /// The account to ask the server for (`user@host`); none asks for none.
    pub account: Option<String>,
    /// known_hosts; default `$SEASHELL_HOME/known_hosts`.
    pub known_hosts: Option<PathBuf>,
    /// Record an unknown host key instead of refusing it.
    pub accept_new: bool,
    /// Trust exactly this host key fingerprint, without known_hosts.
    pub host_fingerprint: Option<String>,
    /// The identity's passphrase file (`--passphrase-file`), else the environment or a prompt.
    pub passphrase_file: Option<PathBuf>,
    /// No notices (`-q`): a first-contact key is recorded without saying so.
    pub quiet: bool,
    /// Ask on a terminal whether to trust an unknown host key (never in fan-out, where it is
    /// refused unless `accept_new`).
    pub ask_host_key: bool,
}

/// An authenticated connection.
pub struct Connection {
    /// The secure channel.
    pub channel: SecureChannel<TcpStream>,
    /// Our identity's fingerprint.
    pub fingerprint: String,
    /// The session id, hex.
    pub session_id: String,
    /// Where we are connected.
    pub destination: Destination,
}

/// Connects, checks the host key and authenticates; `ahead`, the session's first message,
/// travels with ClientAuth (then [`super::console::RemoteConsole::start`] is told so), which
/// saves the round trip it would take after AuthOk.
pub async fn connect(
    dest: Destination,
    opts: &ConnectOptions,
    ahead: Option<&Message<'_>>,
) -> Result<Connection, ClientError> {
    let identity = identity::choose(opts)?;
    connect_as(dest, opts, &identity, ahead).await
}

/// The identity file `opts` names, else the default one (fan-out loads each distinct one
/// once).
pub fn identity_path(opts: &ConnectOptions) -> Result<PathBuf, ClientError> {
    Ok(match &opts.identity {
        Some(path) => path.clone(),
        None => home::default_identity()?,
    })
}

/// [`connect`] with an identity already chosen (fan-out chooses each once for all its
/// hosts).
pub async fn connect_as(
    dest: Destination,
    opts: &ConnectOptions,
    identity: &Identity,
    ahead: Option<&Message<'_>>,
) -> Result<Connection, ClientError> {
    let fingerprint = fingerprint(identity.public_key());
    let target = dest.host_port();
    tracing::debug!("connecting to {target}");
    let channel = tokio::time::timeout(CONNECT_TIMEOUT, async {
        let stream = TcpStream::connect((dest.host.as_str(), dest.port))
            .await
            .map_err(|source| ClientError::Connect {
                target: target.clone(),
                source,
            })?;
        if let Ok(peer) = stream.peer_addr() {
            tracing::debug!("connected to {peer}");
        }
        stream
            .set_nodelay(true)
            .and_then(|()| watch_for_dead_server(&stream))
            .map_err(|source| ClientError::Connect {
                target: target.clone(),
                source,
            })?;
        let pending = transport::client_hello(stream)
            .await
            .map_err(|err| before_server_hello(err, &target))?;
        check_host_key(&dest, pending.host_key(), pending.host_certificate(), opts)?;
        Ok::<_, ClientError>(
            pending
                .authenticate(
                    identity,
                    opts.account.as_deref().unwrap_or_default(),
                    ahead,
                    UpdateLimits::default(),
                )
                .await?,
        )
    })
    .await
    .map_err(|_| ClientError::Timeout(target.clone()))??;
    tracing::debug!("authenticated; session {}", hex::encode(channel.session_id));
    Ok(Connection {
        session_id: hex::encode(channel.session_id),
        channel,
        fingerprint,
        destination: dest,
    })
}

/// A failure before the ServerHello. A server that closes the connection there without a
/// word is most likely one of an older protocol version (version 1 servers close silently
/// on a ClientHello of another version; later ones answer VersionRefused).
fn before_server_hello(err: TransportError, target: &str) -> ClientError {
    match err {
        TransportError::Proto(ProtoError::Truncated) => ClientError::ClosedInHandshake {
            target: target.to_owned(),
            ours: VERSION,
        },
        TransportError::Io(io) if io.kind() == std::io::ErrorKind::ConnectionReset => {
            ClientError::ClosedInHandshake {
                target: target.to_owned(),
                ours: VERSION,
            }
        }
        other => ClientError::Transport(other),
    }
}

/// How long a silent connection waits before the OS probes the server, how often it probes,
/// and how many unanswered probes mean the server's host is gone (about 35 s in all). The
/// server's own kernel answers probes, so a live server is never cut off, however long its
/// command stays silent; a server host that vanished (powered off, unplugged) ends the
/// session with "connection lost" instead of a client that waits forever.
const KEEPALIVE_IDLE_SECS: u32 = 15;
const KEEPALIVE_INTERVAL_SECS: u32 = 5;
const KEEPALIVE_PROBES: u32 = 4;

/// Turns on TCP keepalive with the timings above (the timings where the OS has them).
fn watch_for_dead_server(stream: &TcpStream) -> std::io::Result<()> {
    use nix::sys::socket::{setsockopt, sockopt};
    setsockopt(stream, sockopt::KeepAlive, &true)?;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        setsockopt(stream, sockopt::TcpKeepIdle, &KEEPALIVE_IDLE_SECS)?;
        setsockopt(stream, sockopt::TcpKeepInterval, &KEEPALIVE_INTERVAL_SECS)?;
        setsockopt(stream, sockopt::TcpKeepCount, &KEEPALIVE_PROBES)?;
    }
    Ok(())
}

fn known_hosts_path(opts: &ConnectOptions) -> Result<PathBuf, KeyError> {
    match &opts.known_hosts {
        Some(path) => Ok(path.clone()),
        None => Ok(home::seashell_home()?.join("known_hosts")),
    }
}

/// Says what is wrong with known_hosts lines (skipped, or an `@revoked` read as revoking
/// everywhere), unless `quiet`; once a process, as a fan-out reads the file once a host.
fn warn_of_lines(path: &Path, warnings: &[LineWarning], quiet: bool) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    if quiet || warnings.is_empty() {
        return;
    }
    ONCE.call_once(|| {
        for warning in warnings {
            eprintln!(
                "seashell: warning: {}: {}",
                path.display(),
                crate::shown::shown(&warning.to_string())
            );
        }
    });
}

fn check_host_key(
    dest: &Destination,
    key: &PublicKey,
    certificate: &[u8],
    opts: &ConnectOptions,
) -> Result<(), ClientError> {
    let host_port = dest.host_port();
    let offered = fingerprint(key);
    let path = known_hosts_path(opts)?;
    let (known, warnings) = KnownHosts::load(&path)?;
    warn_of_lines(&path, &warnings, opts.quiet);
    if let Some(line) = known.revoked(&dest.host, &host_port, key) {
        return Err(ClientError::HostKeyRevoked {
            host_port,
            file: path.display().to_string(),
            line,
            fingerprint: offered,
        });
    }
    if let Some(expected) = &opts.host_fingerprint {
        return if *expected == offered {
            tracing::debug!("host key {offered} is the pinned one");
            Ok(())
        } else {
            Err(ClientError::FingerprintMismatch {
                host_port,
                expected: expected.clone(),
                offered,
            })
        };
    }
    match known.check_certificate(&dest.host, &host_port, key, certificate, cert::unix_now()) {
        HostCertStatus::Trusted { line, ca, serial } => {
            tracing::debug!(
                "host key {offered} certified for {} by CA {ca} (serial {serial}; {} line {line})",
                dest.host,
                path.display()
            );
            return Ok(());
        }
        HostCertStatus::Refused(why) if !opts.quiet => eprintln!(
            "seashell: warning: the host certificate of {host_port} is not trusted: {}; checking its key against known_hosts instead",
            crate::shown::shown(&why)
        ),
        HostCertStatus::Refused(_) | HostCertStatus::NoAuthority => {}
    }
    match known.check(&host_port, key) {
        HostKeyStatus::Known => {
            tracing::debug!(
                "host key {offered} is known for {host_port} in {}",
                path.display()
            );
            Ok(())
        }
        HostKeyStatus::Changed {
            line,
            old_fingerprint,
        } => Err(ClientError::HostKeyChanged {
            host_port,
            file: path.display().to_string(),
            line,
            old_fingerprint,
            new_fingerprint: offered,
        }),
        HostKeyStatus::Unknown if opts.accept_new => {
            known_hosts::append(&path, &host_port, key)?;
            if !opts.quiet {
                eprintln!(
                    "seashell: added {host_port} ({offered}) to {}",
                    path.display()
                );
            }
            Ok(())
        }
        HostKeyStatus::Unknown if opts.ask_host_key && std::io::stdin().is_terminal() => {
            if ask_to_trust(&host_port, &offered)? {
                known_hosts::append(&path, &host_port, key)?;
                eprintln!("seashell: added {host_port} to {}", path.display());
                Ok(())
            } else {
                Err(ClientError::Declined(host_port))
            }
        }
        HostKeyStatus::Unknown => Err(ClientError::UnknownHost {
            host_port,
            fingerprint: offered,
        }),
    }
}

/// Asks on the terminal, as OpenSSH does: `yes`, `no`, or the fingerprint itself (pasted from
/// the server's admin); anything else asks again. End of input is no.
fn ask_to_trust(host_port: &str, offered: &str) -> Result<bool, ClientError> {
    let mut stderr = std::io::stderr();
    let mut question = format!(
        "The host {host_port} is not known.\nIts host key fingerprint is {offered}.\n\
         Compare it with the server's (`seashell fingerprint` on the server).\n\
         Trust this key and connect? (yes/no/[fingerprint]) "
    );
    loop {
        stderr
            .write_all(question.as_bytes())
            .map_err(ClientError::Local)?;
        let mut line = String::new();
        let read = std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(ClientError::Local)?;
        if read == 0 {
            return Ok(false);
        }
        match answer(&line, offered) {
            Answer::Yes => return Ok(true),
            Answer::No => return Ok(false),
            Answer::Again(why) => {
                question = format!("{why}Please type 'yes', 'no' or the fingerprint: ")
            }
        }
    }
}

/// What a line typed at the host key question means.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Yes,
    No,
    /// Ask again, after saying this.
    Again(&'static str),
}

fn answer(line: &str, offered: &str) -> Answer {
    let typed = line.trim();
    if typed.eq_ignore_ascii_case("yes") {
        Answer::Yes
    } else if typed.eq_ignore_ascii_case("no") {
        Answer::No
    } else if typed == offered {
        Answer::Yes
    } else if typed.starts_with("SHA256:") {
        Answer::Again("Warning: that fingerprint does not match the host's.\n")
    } else {
        Answer::Again("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{getsockopt, sockopt};

    #[test]
    fn a_server_that_hangs_up_before_its_hello_may_be_older() {
        let cut = before_server_hello(TransportError::Proto(ProtoError::Truncated), "box:7022");
        let text = cut.to_string();
        assert!(text.starts_with("box:7022 closed the connection"), "{text}");
        assert!(text.contains("older protocol version"), "{text}");
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let cut = before_server_hello(TransportError::Io(reset), "box:7022");
        assert!(matches!(
            cut,
            ClientError::ClosedInHandshake { ours: VERSION, .. }
        ));
        // Anything else keeps its own message.
        let bad = before_server_hello(TransportError::Proto(ProtoError::BadServerSignature), "b");
        assert!(matches!(bad, ClientError::Transport(_)), "{bad}");
    }

    #[tokio::test]
    async fn client_sockets_probe_a_silent_server() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        assert!(!getsockopt(&stream, sockopt::KeepAlive).unwrap());
        watch_for_dead_server(&stream).unwrap();
        assert!(getsockopt(&stream, sockopt::KeepAlive).unwrap());
        #[cfg(target_os = "linux")]
        {
            assert_eq!(getsockopt(&stream, sockopt::TcpKeepIdle).unwrap(), 15);
            assert_eq!(getsockopt(&stream, sockopt::TcpKeepInterval).unwrap(), 5);
            assert_eq!(getsockopt(&stream, sockopt::TcpKeepCount).unwrap(), 4);
        }
    }

    #[test]
    fn the_host_key_question_takes_yes_no_or_the_fingerprint() {
        let fp = "SHA256:NtQ+o5uZyz+UITEeRXdW+Zc6dlCVMp+jmcmVPVw/HNA";
        assert_eq!(answer("yes\n", fp), Answer::Yes);
        assert_eq!(answer("YES\n", fp), Answer::Yes);
        assert_eq!(answer(&format!(" {fp}\n"), fp), Answer::Yes);
        assert_eq!(answer("no\n", fp), Answer::No);
        for again in ["y\n", "\n", "yes please\n", "n\n"] {
            assert_eq!(answer(again, fp), Answer::Again(""), "{again:?}");
        }
        assert!(matches!(
            answer("SHA256:D+zLkAvOTLIC+5FWgO1bqSGmFQlHjWa6DerNsTrZdck", fp),
            Answer::Again(why) if why.contains("does not match")
        ));
    }
}
