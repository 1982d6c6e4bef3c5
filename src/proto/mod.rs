//! The seashell protocol, pure: message codecs, the client and server handshake state
//! machines, the key schedule, and the record layer. No I/O, no tokio, no clock of its own
//! (callers pass `Instant`s in), and no knowledge of servers, clients or audit logs. Every
//! byte from the peer is parsed here, totally: `Ok` or a typed error, never a panic.

#![deny(clippy::indexing_slicing)]

pub mod agent;
pub mod codec;
pub mod error;
pub mod handshake;
pub mod message;
pub mod owned;
pub mod record;
pub mod schedule;

pub use error::{DecodeError, EncodeError, ProtoError};
pub use message::{DataKind, ExitStatus, Message, PathKind, WindowSize};
pub use owned::OwnedMessage;
pub use record::{DataFrame, RecordOpener, RecordSealer, UpdateLimits};

/// The TCP port seashell listens on and connects to unless told otherwise (PROTOCOL.md §2).
pub const DEFAULT_PORT: u16 = 7022;
