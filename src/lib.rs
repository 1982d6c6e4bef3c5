//! seashell: an encrypted remote console for LANs.
//!
//! ```text
//!            bytes in                                   actions out
//!  socket ──► transport (tokio) ──► proto (pure) ──► messages / bytes to send
//!                                       ▲
//!                      keys (files, fingerprints, trust files)
//! ```
//!
//! - [`proto`]: the protocol with no I/O and no clock: message codecs, the client and server
//!   handshake state machines, the key schedule and the record layer (seal/open, sequence
//!   numbers, key update). Everything a peer sends is parsed here, totally.
//! - [`transport`]: the thin tokio shell that drives [`proto`] over any `AsyncRead +
//!   AsyncWrite`, with deadlines; [`framepool`]: the frame buffers a reading thread fills
//!   and the writer seals in place (the data path's zero-copy hand-over).
//! - [`crypto`]: the crypto provider, the one place that names a crypto crate: RSA-PSS,
//!   RSA-OAEP, AES-256-GCM, X25519, HKDF, SHA-256 and the CSPRNG, from AWS-LC (the default) or
//!   the pure-Rust RustCrypto stack (`--features rustcrypto`).
//! - [`keys`]: key generation, key files, fingerprints, authorized_keys and known_hosts.
//! - [`server`]: `seashell serve`: accept loop, limits, sessions, commands.
//! - [`client`]: `seashell connect` / `exec`: host key checks, the REPL, one-shot commands.
//! - [`audit`]: the hash-chained, signed audit log: the server's writer, `audit verify` and
//!   `audit show`, and the syslog copy.
//! - [`fileio`]: the file side of transfers, shared by both ends: hashed chunked reads,
//!   partial files renamed into place after the hash check, tree walks.
//! - [`config`]: the server's TOML configuration file.
//! - [`shown`]: text from a peer or a log file made safe to print on a terminal.
//! - [`cli`]: the command-line interface; `main.rs` and its `cmd` modules parse, call the
//!   library, print and map errors to exit codes.
//!
//! The layers point one way: `crypto` at the bottom, then `keys`, then `proto`, the shared I/O (`transport`,
//! `framepool`, `fileio`), `audit`, the two ends (which never import each other) and the
//! commands. `docs/ARCHITECTURE.md` gives each module's job and what it must never import,
//! and follows a frame from the socket to a process and back; `tests/layers.rs` enforces the
//! rule.

pub mod agent;
pub mod audit;
pub mod cli;
pub mod client;
pub mod config;
pub mod crypto;
pub mod fileio;
pub mod framepool;
#[doc(hidden)]
pub mod fuzzing;
pub mod keys;
pub mod proto;
pub mod quickstart;
pub mod server;
pub mod shown;
pub mod transport;
