//! Protocol errors, split the rustls way: bytes that do not parse ([`DecodeError`]), and a
//! peer or channel that misbehaves ([`ProtoError`]), plus [`EncodeError`] for our own
//! oversized messages and [`ProtoError::Misuse`] for our own misuse of the record layer.
//! These are precise for the local user and logs; the peer learns nothing from them (at most
//! a generic Close reason).

/// Bytes from the peer that are not a well-formed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The message ended before a field did.
    #[error("message truncated")]
    Truncated,
    /// Bytes left over after the last field.
    #[error("trailing bytes after message")]
    TrailingBytes,
    /// A length field above its bound.
    #[error("field longer than allowed")]
    TooLong,
    /// A message type this version does not define.
    #[error("unknown message type {0:#04x}")]
    UnknownType(u8),
    /// Not a seashell peer.
    #[error("bad magic: not a seashell peer")]
    BadMagic,
    /// A protocol version we do not speak.
    #[error("unsupported protocol version {0}")]
    BadVersion(u16),
    /// A field with a value outside its domain (bad key, bad UTF-8, bad enum value).
    #[error("invalid {0}")]
    Invalid(&'static str),
}

/// A message we were asked to send that does not fit the protocol's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A field longer than its bound (e.g. a command line over 16 KiB).
    #[error("field of {len} bytes is longer than the {max} bytes allowed")]
    FieldTooLong {
        /// The field's length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// A terminal type that is empty, too long or not printable ASCII.
    #[error("terminal type must be 1 to 64 printable ASCII characters")]
    BadTerm,
    /// A completion list with an empty name, a name not ended by NUL, or too many names.
    #[error("a completion list holds 1 to 1000 names, each ended by a NUL byte")]
    BadCompletions,
    /// Mode bits above `0o7777`.
    #[error("mode {0:#o} has bits above 0o7777")]
    BadMode(u32),
    /// A FileInfo whose data would start after the file's end.
    #[error("offset {offset} is past the end of a {size}-byte file")]
    OffsetPastEnd {
        /// The offset.
        offset: u64,
        /// The file's size.
        size: u64,
    },
}

/// Everything that can end a seashell connection from the protocol's side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtoError {
    /// The peer sent bytes that do not parse.
    #[error("malformed message from peer: {0}")]
    Decode(#[from] DecodeError),
    /// We were asked to send a message that does not fit.
    #[error("cannot send: {0}")]
    Encode(#[from] EncodeError),
    /// A well-formed message at the wrong time (e.g. anything but ServerHello after ClientHello).
    #[error("unexpected {0} message from peer")]
    Unexpected(&'static str),
    /// The ServerHello signature does not verify under the host key it carries.
    #[error("server signature does not verify: the handshake was tampered with")]
    BadServerSignature,
    /// The ClientAuth signature does not verify under the client key it carries.
    #[error("client signature does not verify")]
    BadClientSignature,
    /// A host certificate that would make ServerHello longer than a handshake record may be.
    #[error(
        "the host certificate is {len} bytes and ServerHello has room for {room}: issue one with fewer names or a smaller CA key"
    )]
    CertificateTooLarge {
        /// The certificate's length.
        len: usize,
        /// The most it could be.
        room: usize,
    },
    /// The X25519 exchange produced the all-zero value (a low-order point from the peer).
    #[error("peer sent a low-order X25519 share")]
    WeakKeyShare,
    /// A frame length above the maximum, rejected before reading its body.
    #[error("frame length {0} exceeds the maximum")]
    FrameTooLarge(u32),
    /// A frame failed AES-GCM authentication: tampered, replayed, reordered, dropped,
    /// reflected, or keys that do not match (which includes a failed key transport).
    #[error("frame failed authentication (tampered, replayed, reordered or wrong keys)")]
    BadFrame,
    /// The stream ended without an authenticated Close.
    #[error("connection cut without an authenticated close (truncated)")]
    Truncated,
    /// The server refused our key.
    #[error("authentication refused by the server")]
    AuthRejected,
    /// The server proved our key authorized but refused the account we asked for
    /// (`user@host`); its reason, which names the account it runs sessions as.
    #[error("the server refused the account: {0}")]
    AccountRefused(String),
    /// The AuthOk session id is not the one both sides derived.
    #[error("server confirmed a different session id")]
    SessionMismatch,
    /// The server does not speak our protocol version; it named the ones it does.
    #[error("{}", version_advice(*ours, theirs))]
    VersionRefused {
        /// The version we speak.
        ours: u16,
        /// The versions the server speaks.
        theirs: Vec<u16>,
    },
    /// A local cryptographic operation failed (RNG, key too small for OAEP, ...).
    #[error("local cryptographic failure: {0}")]
    Crypto(&'static str),
    /// Our own code asked the record layer for something it cannot do (a message larger than
    /// a frame, a frame buffer too small): a bug on this side, never the peer's doing.
    #[error("local misuse of the record layer: {0}")]
    Misuse(&'static str),
}

impl From<crate::crypto::CryptoError> for ProtoError {
    fn from(err: crate::crypto::CryptoError) -> Self {
        Self::Crypto(err.0)
    }
}

/// One line for the user: both versions, and which side to upgrade.
fn version_advice(ours: u16, theirs: &[u16]) -> String {
    let list = theirs
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let newest = theirs.iter().copied().max().unwrap_or(0);
    let upgrade = if newest < ours {
        "upgrade seashell on the server"
    } else {
        "upgrade this client"
    };
    format!(
        "protocol version mismatch: the server speaks version {list}, this client speaks {ours}: {upgrade}"
    )
}
