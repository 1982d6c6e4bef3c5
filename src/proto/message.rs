//! Every message seashell sends, with its codec. Handshake messages travel in clear
//! handshake records; [`Message`] is what travels inside encrypted frames. Each `decode`
//! is total: it consumes exactly its input or returns a [`DecodeError`]; variable fields
//! are length-prefixed and bounded before anything is taken.

use super::codec::{Reader, put_bytes16};
use super::error::{DecodeError, EncodeError};

/// The 8-byte magic that opens every ClientHello.
pub const MAGIC: &[u8; 8] = b"SEASHELL";
/// The one protocol version this implementation speaks.
pub const VERSION: u16 = 1;
/// Upper bound for an encoded public key (SPKI DER of RSA-4096 is 550 bytes).
pub const MAX_SPKI: usize = 1024;
/// Upper bound for an RSA signature or ciphertext (RSA-4096: 512 bytes).
pub const MAX_RSA_BLOCK: usize = 512;
/// Upper bound for a text field (command line, cwd, reasons).
pub const MAX_TEXT: usize = 16 * 1024;

const HS_CLIENT_HELLO: u8 = 0x01;
const HS_SERVER_HELLO: u8 = 0x02;
const HS_KEY_TRANSPORT: u8 = 0x03;

/// First handshake message, client to server, in clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHello {
    /// Fresh client randomness.
    pub random: [u8; 32],
    /// The client's ephemeral X25519 public share.
    pub x25519: [u8; 32],
}

impl ClientHello {
    /// Appends the encoding.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(HS_CLIENT_HELLO);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&self.random);
        out.extend_from_slice(&self.x25519);
    }

    /// Parses a ClientHello body.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        expect_type(&mut r, HS_CLIENT_HELLO)?;
        if &r.array::<8>()? != MAGIC {
            return Err(DecodeError::BadMagic);
        }
        expect_version(&mut r)?;
        let hello = Self {
            random: r.array()?,
            x25519: r.array()?,
        };
        r.finish()?;
        Ok(hello)
    }
}

/// Second handshake message, server to client, in clear. The signature covers the
/// ClientHello and every field before it (see docs/PROTOCOL.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerHello {
    /// Fresh server randomness.
    pub random: [u8; 32],
    /// The server's ephemeral X25519 public share.
    pub x25519: [u8; 32],
    /// The host key (SPKI DER), which clients pin in known_hosts.
    pub host_key: Vec<u8>,
    /// The transport key (SPKI DER) the client wraps its secret to.
    pub transport_key: Vec<u8>,
    /// RSA-PSS-SHA256 by the host key over the signed part.
    pub signature: Vec<u8>,
}

impl ServerHello {
    /// Appends everything the signature covers (all but the signature field).
    pub fn encode_unsigned(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.push(HS_SERVER_HELLO);
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&self.random);
        out.extend_from_slice(&self.x25519);
        put_bytes16(out, &self.host_key, MAX_SPKI)?;
        put_bytes16(out, &self.transport_key, MAX_SPKI)
    }

    /// Appends the full encoding.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.encode_unsigned(out)?;
        put_bytes16(out, &self.signature, MAX_RSA_BLOCK)
    }

    /// Parses a ServerHello body.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        expect_type(&mut r, HS_SERVER_HELLO)?;
        expect_version(&mut r)?;
        let hello = Self {
            random: r.array()?,
            x25519: r.array()?,
            host_key: r.bytes16(MAX_SPKI)?.to_vec(),
            transport_key: r.bytes16(MAX_SPKI)?.to_vec(),
            signature: r.bytes16(MAX_RSA_BLOCK)?.to_vec(),
        };
        r.finish()?;
        Ok(hello)
    }
}

/// Third handshake message, client to server, in clear: the secret wrapped with RSA-OAEP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTransport {
    /// RSA-OAEP-SHA256 ciphertext of the 32-byte secret under the transport key.
    pub ciphertext: Vec<u8>,
}

impl KeyTransport {
    /// Appends the encoding.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.push(HS_KEY_TRANSPORT);
        put_bytes16(out, &self.ciphertext, MAX_RSA_BLOCK)
    }

    /// Parses a KeyTransport body.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        expect_type(&mut r, HS_KEY_TRANSPORT)?;
        let kt = Self {
            ciphertext: r.bytes16(MAX_RSA_BLOCK)?.to_vec(),
        };
        r.finish()?;
        Ok(kt)
    }
}

fn expect_type(r: &mut Reader<'_>, want: u8) -> Result<(), DecodeError> {
    match r.u8()? {
        t if t == want => Ok(()),
        t => Err(DecodeError::UnknownType(t)),
    }
}

fn expect_version(r: &mut Reader<'_>) -> Result<(), DecodeError> {
    match r.u16()? {
        VERSION => Ok(()),
        v => Err(DecodeError::BadVersion(v)),
    }
}

/// How a remote command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// It exited with this code.
    Code(i32),
    /// It was killed by this signal.
    Signal(u8),
}

impl ExitStatus {
    /// The shell convention for a local exit code: the code, or 128 + signal.
    pub fn shell_code(self) -> u8 {
        match self {
            Self::Code(code) => u8::try_from(code & 0xff).unwrap_or(1),
            Self::Signal(sig) => 128u8.saturating_add(sig),
        }
    }
}

/// A message inside an encrypted frame. Borrowed from the opened frame: no copy on receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// Client identity and its signature over the transcript (first client frame).
    ClientAuth {
        /// Client public key, SPKI DER.
        public_key: &'a [u8],
        /// RSA-PSS-SHA256 over `"seashell/1 client\0" || th`.
        signature: &'a [u8],
    },
    /// The server accepted the client; carries the session id both sides derived.
    AuthOk {
        /// The session id.
        session_id: [u8; 32],
    },
    /// The server refused the client's key.
    AuthFailed,
    /// The sender switched to its next traffic key; every later frame uses it.
    KeyUpdate,
    /// Authenticated end of the stream, with a reason.
    Close {
        /// Why the sender closes (empty for a normal end).
        reason: &'a str,
    },
    /// Run a command line on the console.
    Exec {
        /// The line, as typed.
        line: &'a str,
    },
    /// Bytes for the running command's stdin.
    Stdin(&'a [u8]),
    /// End of stdin for the running command.
    StdinEof,
    /// Interrupt the running command (SIGINT to its process group).
    Interrupt,
    /// Bytes the running command wrote to stdout.
    Stdout(&'a [u8]),
    /// Bytes the running command wrote to stderr.
    Stderr(&'a [u8]),
    /// The command ended.
    Exit(ExitStatus),
    /// The console's state after a command (for the prompt).
    ConsoleState {
        /// Current directory on the server.
        cwd: &'a str,
    },
    /// Keepalive request.
    Ping(u64),
    /// Keepalive answer.
    Pong(u64),
}

const M_CLIENT_AUTH: u8 = 0x01;
const M_AUTH_OK: u8 = 0x02;
const M_AUTH_FAILED: u8 = 0x03;
const M_KEY_UPDATE: u8 = 0x04;
const M_CLOSE: u8 = 0x05;
const M_EXEC: u8 = 0x10;
const M_STDIN: u8 = 0x11;
const M_STDIN_EOF: u8 = 0x12;
const M_INTERRUPT: u8 = 0x13;
const M_STDOUT: u8 = 0x14;
const M_STDERR: u8 = 0x15;
const M_EXIT: u8 = 0x16;
const M_CONSOLE_STATE: u8 = 0x17;
const M_PING: u8 = 0x18;
const M_PONG: u8 = 0x19;

const EXIT_CODE: u8 = 0;
const EXIT_SIGNAL: u8 = 1;

impl<'a> Message<'a> {
    /// A short name for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Self::ClientAuth { .. } => "ClientAuth",
            Self::AuthOk { .. } => "AuthOk",
            Self::AuthFailed => "AuthFailed",
            Self::KeyUpdate => "KeyUpdate",
            Self::Close { .. } => "Close",
            Self::Exec { .. } => "Exec",
            Self::Stdin(_) => "Stdin",
            Self::StdinEof => "StdinEof",
            Self::Interrupt => "Interrupt",
            Self::Stdout(_) => "Stdout",
            Self::Stderr(_) => "Stderr",
            Self::Exit(_) => "Exit",
            Self::ConsoleState { .. } => "ConsoleState",
            Self::Ping(_) => "Ping",
            Self::Pong(_) => "Pong",
        }
    }

    /// Appends the plaintext encoding: a type byte, then the fields.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match *self {
            Self::ClientAuth {
                public_key,
                signature,
            } => {
                out.push(M_CLIENT_AUTH);
                put_bytes16(out, public_key, MAX_SPKI)?;
                put_bytes16(out, signature, MAX_RSA_BLOCK)?;
            }
            Self::AuthOk { session_id } => {
                out.push(M_AUTH_OK);
                out.extend_from_slice(&session_id);
            }
            Self::AuthFailed => out.push(M_AUTH_FAILED),
            Self::KeyUpdate => out.push(M_KEY_UPDATE),
            Self::Close { reason } => {
                out.push(M_CLOSE);
                put_bytes16(out, reason.as_bytes(), MAX_TEXT)?;
            }
            Self::Exec { line } => {
                out.push(M_EXEC);
                put_bytes16(out, line.as_bytes(), MAX_TEXT)?;
            }
            Self::Stdin(data) => put_data(out, M_STDIN, data),
            Self::StdinEof => out.push(M_STDIN_EOF),
            Self::Interrupt => out.push(M_INTERRUPT),
            Self::Stdout(data) => put_data(out, M_STDOUT, data),
            Self::Stderr(data) => put_data(out, M_STDERR, data),
            Self::Exit(ExitStatus::Code(code)) => {
                out.push(M_EXIT);
                out.push(EXIT_CODE);
                out.extend_from_slice(&code.to_be_bytes());
            }
            Self::Exit(ExitStatus::Signal(signal)) => {
                out.push(M_EXIT);
                out.push(EXIT_SIGNAL);
                out.extend_from_slice(&i32::from(signal).to_be_bytes());
            }
            Self::ConsoleState { cwd } => {
                out.push(M_CONSOLE_STATE);
                put_bytes16(out, cwd.as_bytes(), MAX_TEXT)?;
            }
            Self::Ping(n) => {
                out.push(M_PING);
                out.extend_from_slice(&n.to_be_bytes());
            }
            Self::Pong(n) => {
                out.push(M_PONG);
                out.extend_from_slice(&n.to_be_bytes());
            }
        }
        Ok(())
    }

    /// Parses one frame's plaintext.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let msg = match r.u8()? {
            M_CLIENT_AUTH => Self::ClientAuth {
                public_key: r.bytes16(MAX_SPKI)?,
                signature: r.bytes16(MAX_RSA_BLOCK)?,
            },
            M_AUTH_OK => Self::AuthOk {
                session_id: r.array()?,
            },
            M_AUTH_FAILED => Self::AuthFailed,
            M_KEY_UPDATE => Self::KeyUpdate,
            M_CLOSE => Self::Close {
                reason: text(r.bytes16(MAX_TEXT)?)?,
            },
            M_EXEC => Self::Exec {
                line: text(r.bytes16(MAX_TEXT)?)?,
            },
            M_STDIN => Self::Stdin(r.rest()),
            M_STDIN_EOF => Self::StdinEof,
            M_INTERRUPT => Self::Interrupt,
            M_STDOUT => Self::Stdout(r.rest()),
            M_STDERR => Self::Stderr(r.rest()),
            M_EXIT => {
                let kind = r.u8()?;
                let value = r.i32()?;
                Self::Exit(match kind {
                    EXIT_CODE => ExitStatus::Code(value),
                    EXIT_SIGNAL => ExitStatus::Signal(
                        u8::try_from(value).map_err(|_| DecodeError::Invalid("signal number"))?,
                    ),
                    _ => return Err(DecodeError::Invalid("exit kind")),
                })
            }
            M_CONSOLE_STATE => Self::ConsoleState {
                cwd: text(r.bytes16(MAX_TEXT)?)?,
            },
            M_PING => Self::Ping(r.u64()?),
            M_PONG => Self::Pong(r.u64()?),
            other => return Err(DecodeError::UnknownType(other)),
        };
        r.finish()?;
        Ok(msg)
    }
}

fn put_data(out: &mut Vec<u8>, kind: u8, data: &[u8]) {
    out.push(kind);
    out.extend_from_slice(data);
}

fn text(bytes: &[u8]) -> Result<&str, DecodeError> {
    std::str::from_utf8(bytes).map_err(|_| DecodeError::Invalid("UTF-8 text"))
}
