//! Every message seashell sends, with its codec. Handshake messages travel in clear
//! handshake records; [`Message`] is what travels inside encrypted frames. Each `decode`
//! is total: it consumes exactly its input or returns a [`DecodeError`]; variable fields
//! are length-prefixed and bounded before anything is taken.

use super::codec::{Reader, optional_certificate, put_bytes16, put_optional_certificate};
use super::error::{DecodeError, EncodeError};

/// The 8-byte magic that opens every ClientHello.
pub const MAGIC: &[u8; 8] = b"SEASHELL";
/// The one protocol version this implementation speaks (4: ClientAuth names the account the
/// client asks for).
pub const VERSION: u16 = 4;
/// Upper bound for an encoded public key (SPKI DER of RSA-4096 is 550 bytes).
pub const MAX_SPKI: usize = 1024;
/// Upper bound for an RSA signature or ciphertext (RSA-4096: 512 bytes).
pub const MAX_RSA_BLOCK: usize = 512;
/// Upper bound for a text field (command line, cwd, reasons, paths).
pub const MAX_TEXT: usize = 16 * 1024;
/// Upper bound for the account a [`Message::ClientAuth`] asks for (Linux allows 32 bytes).
pub const MAX_ACCOUNT: usize = 64;
/// Upper bound for a terminal type (`TERM`) in [`Message::ExecPty`].
pub const MAX_TERM: usize = 64;
/// Upper bound for what a login shell printed, in [`Message::ConsoleOpened`].
pub const MAX_BANNER: usize = 32 * 1024;
/// Upper bound for the names of one [`Message::Completions`].
pub const MAX_COMPLETIONS: usize = 1000;
/// Upper bound for the bytes of one [`Message::Completions`] list.
pub const MAX_COMPLETION_BYTES: usize = 60 * 1024;
/// Upper bound for the number of versions a [`VersionRefused`] lists.
pub const MAX_VERSIONS: usize = 8;
/// The permission and mode bits a file transfer may carry (`0o7777`); anything above is
/// `Invalid("mode")`.
pub const MAX_MODE: u32 = 0o7777;

const HS_CLIENT_HELLO: u8 = 0x01;
const HS_SERVER_HELLO: u8 = 0x02;
const HS_KEY_TRANSPORT: u8 = 0x03;
const HS_VERSION_REFUSED: u8 = 0x04;

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
    /// The host certificate (its encoding, PROTOCOL.md §13), empty when the server has none.
    /// On the wire it follows the signature and is present only when not empty.
    pub certificate: Vec<u8>,
}

impl ServerHello {
    /// Appends everything the signature covers: all fields but the signature, in wire order.
    pub fn encode_unsigned(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.encode_head(out)?;
        self.encode_certificate(out)
    }

    /// Appends the full encoding.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.encode_head(out)?;
        put_bytes16(out, &self.signature, MAX_RSA_BLOCK)?;
        self.encode_certificate(out)
    }

    fn encode_head(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.push(HS_SERVER_HELLO);
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&self.random);
        out.extend_from_slice(&self.x25519);
        put_bytes16(out, &self.host_key, MAX_SPKI)?;
        put_bytes16(out, &self.transport_key, MAX_SPKI)
    }

    fn encode_certificate(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        put_optional_certificate(out, &self.certificate)
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
            certificate: optional_certificate(&mut r)?.to_vec(),
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

/// The server's answer, in clear and instead of a ServerHello, to a ClientHello whose version
/// it does not speak: the versions it does. The only clear-text refusal in the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRefused {
    /// The versions the server speaks (1 to [`MAX_VERSIONS`]).
    pub versions: Vec<u16>,
}

impl VersionRefused {
    /// Appends the encoding.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let count = match u8::try_from(self.versions.len()) {
            Ok(n) if (1..=MAX_VERSIONS).contains(&usize::from(n)) => n,
            _ => {
                return Err(EncodeError::FieldTooLong {
                    len: self.versions.len(),
                    max: MAX_VERSIONS,
                });
            }
        };
        out.push(HS_VERSION_REFUSED);
        out.push(count);
        for version in &self.versions {
            out.extend_from_slice(&version.to_be_bytes());
        }
        Ok(())
    }

    /// Whether a handshake body is a VersionRefused (its type byte).
    pub fn is_refusal(body: &[u8]) -> bool {
        body.first() == Some(&HS_VERSION_REFUSED)
    }

    /// Parses a VersionRefused body.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        expect_type(&mut r, HS_VERSION_REFUSED)?;
        let count = usize::from(r.u8()?);
        if !(1..=MAX_VERSIONS).contains(&count) {
            return Err(DecodeError::Invalid("version count"));
        }
        let versions = (0..count).map(|_| r.u16()).collect::<Result<_, _>>()?;
        r.finish()?;
        Ok(Self { versions })
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

/// A terminal's size, as `TIOCGWINSZ` reports it (0 where unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WindowSize {
    /// Rows (lines).
    pub rows: u16,
    /// Columns.
    pub cols: u16,
    /// Width in pixels.
    pub xpixel: u16,
    /// Height in pixels.
    pub ypixel: u16,
}

impl WindowSize {
    fn encode(self, out: &mut Vec<u8>) {
        for v in [self.rows, self.cols, self.xpixel, self.ypixel] {
            out.extend_from_slice(&v.to_be_bytes());
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            rows: r.u16()?,
            cols: r.u16()?,
            xpixel: r.u16()?,
            ypixel: r.u16()?,
        })
    }
}

/// What a path names on the server, as answered to [`Message::Stat`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    /// Nothing: the path does not exist.
    Missing,
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// Something else (device, socket, FIFO).
    Other,
}

const KIND_MISSING: u8 = 0;
const KIND_FILE: u8 = 1;
const KIND_DIRECTORY: u8 = 2;
const KIND_OTHER: u8 = 3;

impl PathKind {
    fn to_byte(self) -> u8 {
        match self {
            Self::Missing => KIND_MISSING,
            Self::File => KIND_FILE,
            Self::Directory => KIND_DIRECTORY,
            Self::Other => KIND_OTHER,
        }
    }

    fn from_byte(byte: u8) -> Result<Self, DecodeError> {
        match byte {
            KIND_MISSING => Ok(Self::Missing),
            KIND_FILE => Ok(Self::File),
            KIND_DIRECTORY => Ok(Self::Directory),
            KIND_OTHER => Ok(Self::Other),
            _ => Err(DecodeError::Invalid("path kind")),
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
        /// The account the client asks to run as (`user@host`); empty when it asks for none.
        account: &'a str,
        /// The certificate of the client key (its encoding, PROTOCOL.md §13), empty when the
        /// client presents none. On the wire it follows `account` and is present only when
        /// not empty.
        certificate: &'a [u8],
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
    /// Run a command line on a new pseudo-terminal of this type and size (the server may
    /// answer [`Message::PtyRefused`] and run it on pipes).
    ExecPty {
        /// The line, as typed.
        line: &'a str,
        /// The client's `TERM` (1 to [`MAX_TERM`] printable ASCII characters).
        term: &'a str,
        /// The client terminal's size.
        size: WindowSize,
    },
    /// The client's terminal changed size (for the running command's pseudo-terminal).
    WindowChange(WindowSize),
    /// The server runs the command of an ExecPty on pipes: the key may not have a terminal.
    PtyRefused,
    /// Open the console: the server user's login shell sets up the session's first state
    /// (on a pseudo-terminal of this type and size, or on pipes when `term` is empty).
    OpenConsole {
        /// The client's `TERM`, or empty: no terminal.
        term: &'a str,
        /// The client terminal's size (zero without one).
        size: WindowSize,
    },
    /// The console is open: who and where it is, and what the login shell printed.
    ConsoleOpened {
        /// The server's Unix user.
        user: &'a str,
        /// The server's short hostname.
        host: &'a str,
        /// The user's home directory (the prompt shows it as `~`).
        home: &'a str,
        /// The user is the superuser (uid 0): the prompt ends in `#`.
        superuser: bool,
        /// The key is restricted (`allow=`/`command=`): no shell, only its allowed lines.
        restricted: bool,
        /// The key's name in authorized_keys.
        key_name: &'a str,
        /// What the login shell printed (a motd, a banner), at most [`MAX_BANNER`] bytes.
        banner: &'a [u8],
        /// Why the session starts from a plain state instead (empty: it does not).
        warning: &'a str,
    },
    /// Which names complete `word` (unquoted), in command position or not.
    Complete {
        /// The word under the cursor, as the shell would see it.
        word: &'a str,
        /// The word is a command name (the first of a command).
        command: bool,
    },
    /// The answer to a Complete: names separated by NUL, at most [`MAX_COMPLETIONS`].
    Completions {
        /// The names, each followed by a NUL byte.
        names: &'a str,
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
    /// What does `path` name on the server? Answered by StatResult or TransferFailed.
    Stat {
        /// A server path; relative paths start at the session's cwd.
        path: &'a str,
    },
    /// The answer to Stat.
    StatResult(PathKind),
    /// Start an upload of one regular file to `path` (the final name, not a directory).
    PutFile {
        /// Destination on the server; relative paths start at the session's cwd.
        path: &'a str,
        /// The file's exact size in bytes.
        size: u64,
        /// Mode bits (at most [`MAX_MODE`]).
        mode: u32,
        /// Modification time to set (seconds since the Unix epoch), or none to leave it.
        mtime: Option<i64>,
        /// Continue from a partial file left by an interrupted upload, if its bytes check out.
        resume: bool,
    },
    /// The server is ready for an upload: it already holds `offset` bytes whose SHA-256 is
    /// `prefix_sha256` (0 and the hash of nothing when not resuming).
    PutReady {
        /// Bytes the server already holds.
        offset: u64,
        /// SHA-256 of those bytes.
        prefix_sha256: [u8; 32],
    },
    /// The client sends the file from `offset`: either the server's offset (the prefix
    /// matched) or 0 (start over).
    PutStart {
        /// Where the data that follows starts.
        offset: u64,
    },
    /// Download one regular file. With `offset` > 0 the client holds that many bytes whose
    /// SHA-256 is `prefix_sha256`; the server continues from there if its file starts the same.
    GetFile {
        /// A server path; relative paths start at the session's cwd.
        path: &'a str,
        /// Bytes the client already holds (0: none).
        offset: u64,
        /// SHA-256 of those bytes.
        prefix_sha256: [u8; 32],
    },
    /// Download a directory tree: the server streams MakeDir and FileInfo entries.
    GetTree {
        /// A server directory; relative paths start at the session's cwd.
        path: &'a str,
    },
    /// A file the server is about to send; FileData from `offset` and FileEnd follow.
    FileInfo {
        /// Empty for GetFile; in a tree, the path relative to the tree's root.
        path: &'a str,
        /// The file's exact size in bytes.
        size: u64,
        /// Mode bits (at most [`MAX_MODE`]).
        mode: u32,
        /// Modification time (seconds since the Unix epoch).
        mtime: i64,
        /// Where the data that follows starts (at most `size`).
        offset: u64,
    },
    /// Bytes of the file being transferred.
    FileData(&'a [u8]),
    /// The file is complete; SHA-256 of its whole content (from byte 0).
    FileEnd {
        /// SHA-256 of the whole file.
        sha256: [u8; 32],
    },
    /// Create a directory (client to server in an upload; server to client in a tree).
    MakeDir {
        /// The directory (upload: a server path; tree: relative to the root, empty for it).
        path: &'a str,
        /// Mode bits (at most [`MAX_MODE`]).
        mode: u32,
    },
    /// The current transfer request succeeded.
    TransferDone,
    /// The current transfer failed (server to client), or is cancelled (client to server).
    TransferFailed {
        /// Why, for the user: the path and the reason.
        reason: &'a str,
    },
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
const M_EXEC_PTY: u8 = 0x1A;
const M_WINDOW_CHANGE: u8 = 0x1B;
const M_PTY_REFUSED: u8 = 0x1C;
const M_OPEN_CONSOLE: u8 = 0x1D;
const M_CONSOLE_OPENED: u8 = 0x1E;
const M_COMPLETE: u8 = 0x1F;
const M_COMPLETIONS: u8 = 0x30;
const M_STAT: u8 = 0x20;
const M_STAT_RESULT: u8 = 0x21;
const M_PUT_FILE: u8 = 0x22;
const M_PUT_READY: u8 = 0x23;
const M_PUT_START: u8 = 0x24;
const M_GET_FILE: u8 = 0x25;
const M_GET_TREE: u8 = 0x26;
const M_FILE_INFO: u8 = 0x27;
const M_FILE_DATA: u8 = 0x28;
const M_FILE_END: u8 = 0x29;
const M_MAKE_DIR: u8 = 0x2A;
const M_TRANSFER_DONE: u8 = 0x2B;
const M_TRANSFER_FAILED: u8 = 0x2C;

const PUT_RESUME: u8 = 0x01;
const PUT_MTIME: u8 = 0x02;

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
            Self::ExecPty { .. } => "ExecPty",
            Self::WindowChange(_) => "WindowChange",
            Self::PtyRefused => "PtyRefused",
            Self::OpenConsole { .. } => "OpenConsole",
            Self::ConsoleOpened { .. } => "ConsoleOpened",
            Self::Complete { .. } => "Complete",
            Self::Completions { .. } => "Completions",
            Self::Stdin(_) => "Stdin",
            Self::StdinEof => "StdinEof",
            Self::Interrupt => "Interrupt",
            Self::Stdout(_) => "Stdout",
            Self::Stderr(_) => "Stderr",
            Self::Exit(_) => "Exit",
            Self::ConsoleState { .. } => "ConsoleState",
            Self::Ping(_) => "Ping",
            Self::Pong(_) => "Pong",
            Self::Stat { .. } => "Stat",
            Self::StatResult(_) => "StatResult",
            Self::PutFile { .. } => "PutFile",
            Self::PutReady { .. } => "PutReady",
            Self::PutStart { .. } => "PutStart",
            Self::GetFile { .. } => "GetFile",
            Self::GetTree { .. } => "GetTree",
            Self::FileInfo { .. } => "FileInfo",
            Self::FileData(_) => "FileData",
            Self::FileEnd { .. } => "FileEnd",
            Self::MakeDir { .. } => "MakeDir",
            Self::TransferDone => "TransferDone",
            Self::TransferFailed { .. } => "TransferFailed",
        }
    }

    /// Whether this is a file-transfer message (§6.4 of docs/PROTOCOL.md), either way.
    pub fn is_transfer(&self) -> bool {
        matches!(
            self,
            Self::Stat { .. }
                | Self::StatResult(_)
                | Self::PutFile { .. }
                | Self::PutReady { .. }
                | Self::PutStart { .. }
                | Self::GetFile { .. }
                | Self::GetTree { .. }
                | Self::FileInfo { .. }
                | Self::FileData(_)
                | Self::FileEnd { .. }
                | Self::MakeDir { .. }
                | Self::TransferDone
                | Self::TransferFailed { .. }
        )
    }

    /// Appends the plaintext encoding: a type byte, then the fields.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match *self {
            Self::ClientAuth {
                public_key,
                signature,
                account,
                certificate,
            } => {
                out.push(M_CLIENT_AUTH);
                put_bytes16(out, public_key, MAX_SPKI)?;
                put_bytes16(out, signature, MAX_RSA_BLOCK)?;
                put_bytes16(out, account.as_bytes(), MAX_ACCOUNT)?;
                put_optional_certificate(out, certificate)?;
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
            Self::ExecPty { line, term, size } => {
                out.push(M_EXEC_PTY);
                put_bytes16(out, line.as_bytes(), MAX_TEXT)?;
                put_bytes16(out, term_name(term.as_bytes())?.as_bytes(), MAX_TERM)?;
                size.encode(out);
            }
            Self::WindowChange(size) => {
                out.push(M_WINDOW_CHANGE);
                size.encode(out);
            }
            Self::PtyRefused => out.push(M_PTY_REFUSED),
            Self::OpenConsole { term, size } => {
                out.push(M_OPEN_CONSOLE);
                let term = if term.is_empty() {
                    term
                } else {
                    term_name(term.as_bytes())?
                };
                put_bytes16(out, term.as_bytes(), MAX_TERM)?;
                size.encode(out);
            }
            Self::ConsoleOpened {
                user,
                host,
                home,
                superuser,
                restricted,
                key_name,
                banner,
                warning,
            } => {
                out.push(M_CONSOLE_OPENED);
                put_bytes16(out, user.as_bytes(), MAX_TEXT)?;
                put_bytes16(out, host.as_bytes(), MAX_TEXT)?;
                put_bytes16(out, home.as_bytes(), MAX_TEXT)?;
                out.push(u8::from(superuser) | (u8::from(restricted) << 1));
                put_bytes16(out, key_name.as_bytes(), MAX_TEXT)?;
                put_bytes16(out, banner, MAX_BANNER)?;
                put_bytes16(out, warning.as_bytes(), MAX_TEXT)?;
            }
            Self::Complete { word, command } => {
                out.push(M_COMPLETE);
                put_bytes16(out, word.as_bytes(), MAX_TEXT)?;
                out.push(u8::from(command));
            }
            Self::Completions { names } => {
                completion_list(names).map_err(|_| EncodeError::BadCompletions)?;
                out.push(M_COMPLETIONS);
                put_bytes16(out, names.as_bytes(), MAX_COMPLETION_BYTES)?;
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
            Self::Stat { path } => {
                out.push(M_STAT);
                put_bytes16(out, path.as_bytes(), MAX_TEXT)?;
            }
            Self::StatResult(kind) => {
                out.push(M_STAT_RESULT);
                out.push(kind.to_byte());
            }
            Self::PutFile {
                path,
                size,
                mode,
                mtime,
                resume,
            } => {
                out.push(M_PUT_FILE);
                put_bytes16(out, path.as_bytes(), MAX_TEXT)?;
                out.extend_from_slice(&size.to_be_bytes());
                put_mode(out, mode)?;
                let resume_flag = if resume { PUT_RESUME } else { 0 };
                let mtime_flag = if mtime.is_some() { PUT_MTIME } else { 0 };
                out.push(resume_flag | mtime_flag);
                out.extend_from_slice(&mtime.unwrap_or(0).to_be_bytes());
            }
            Self::PutReady {
                offset,
                prefix_sha256,
            } => {
                out.push(M_PUT_READY);
                out.extend_from_slice(&offset.to_be_bytes());
                out.extend_from_slice(&prefix_sha256);
            }
            Self::PutStart { offset } => {
                out.push(M_PUT_START);
                out.extend_from_slice(&offset.to_be_bytes());
            }
            Self::GetFile {
                path,
                offset,
                prefix_sha256,
            } => {
                out.push(M_GET_FILE);
                put_bytes16(out, path.as_bytes(), MAX_TEXT)?;
                out.extend_from_slice(&offset.to_be_bytes());
                out.extend_from_slice(&prefix_sha256);
            }
            Self::GetTree { path } => {
                out.push(M_GET_TREE);
                put_bytes16(out, path.as_bytes(), MAX_TEXT)?;
            }
            Self::FileInfo {
                path,
                size,
                mode,
                mtime,
                offset,
            } => {
                if offset > size {
                    return Err(EncodeError::OffsetPastEnd { offset, size });
                }
                out.push(M_FILE_INFO);
                put_bytes16(out, path.as_bytes(), MAX_TEXT)?;
                out.extend_from_slice(&size.to_be_bytes());
                put_mode(out, mode)?;
                out.extend_from_slice(&mtime.to_be_bytes());
                out.extend_from_slice(&offset.to_be_bytes());
            }
            Self::FileData(data) => put_data(out, M_FILE_DATA, data),
            Self::FileEnd { sha256 } => {
                out.push(M_FILE_END);
                out.extend_from_slice(&sha256);
            }
            Self::MakeDir { path, mode } => {
                out.push(M_MAKE_DIR);
                put_bytes16(out, path.as_bytes(), MAX_TEXT)?;
                put_mode(out, mode)?;
            }
            Self::TransferDone => out.push(M_TRANSFER_DONE),
            Self::TransferFailed { reason } => {
                out.push(M_TRANSFER_FAILED);
                put_bytes16(out, reason.as_bytes(), MAX_TEXT)?;
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
                account: text(r.bytes16(MAX_ACCOUNT)?)?,
                certificate: optional_certificate(&mut r)?,
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
            M_EXEC_PTY => Self::ExecPty {
                line: text(r.bytes16(MAX_TEXT)?)?,
                term: term_name(r.bytes16(MAX_TERM)?).map_err(|_| DecodeError::Invalid("TERM"))?,
                size: WindowSize::decode(&mut r)?,
            },
            M_WINDOW_CHANGE => Self::WindowChange(WindowSize::decode(&mut r)?),
            M_PTY_REFUSED => Self::PtyRefused,
            M_OPEN_CONSOLE => {
                let term = r.bytes16(MAX_TERM)?;
                let term = if term.is_empty() {
                    ""
                } else {
                    term_name(term).map_err(|_| DecodeError::Invalid("TERM"))?
                };
                Self::OpenConsole {
                    term,
                    size: WindowSize::decode(&mut r)?,
                }
            }
            M_CONSOLE_OPENED => {
                let user = text(r.bytes16(MAX_TEXT)?)?;
                let host = text(r.bytes16(MAX_TEXT)?)?;
                let home = text(r.bytes16(MAX_TEXT)?)?;
                let flags = r.u8()?;
                if flags & !0b11 != 0 {
                    return Err(DecodeError::Invalid("ConsoleOpened flags"));
                }
                Self::ConsoleOpened {
                    user,
                    host,
                    home,
                    superuser: flags & 1 != 0,
                    restricted: flags & 2 != 0,
                    key_name: text(r.bytes16(MAX_TEXT)?)?,
                    banner: r.bytes16(MAX_BANNER)?,
                    warning: text(r.bytes16(MAX_TEXT)?)?,
                }
            }
            M_COMPLETE => Self::Complete {
                word: text(r.bytes16(MAX_TEXT)?)?,
                command: match r.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err(DecodeError::Invalid("Complete flag")),
                },
            },
            M_COMPLETIONS => {
                let names = text(r.bytes16(MAX_COMPLETION_BYTES)?)?;
                completion_list(names)?;
                Self::Completions { names }
            }
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
            M_STAT => Self::Stat {
                path: text(r.bytes16(MAX_TEXT)?)?,
            },
            M_STAT_RESULT => Self::StatResult(PathKind::from_byte(r.u8()?)?),
            M_PUT_FILE => {
                let path = text(r.bytes16(MAX_TEXT)?)?;
                let size = r.u64()?;
                let mode = mode(r.u32()?)?;
                let flags = r.u8()?;
                let mtime = r.i64()?;
                if flags & !(PUT_RESUME | PUT_MTIME) != 0 {
                    return Err(DecodeError::Invalid("PutFile flags"));
                }
                let mtime = match (flags & PUT_MTIME != 0, mtime) {
                    (true, t) => Some(t),
                    (false, 0) => None,
                    (false, _) => return Err(DecodeError::Invalid("PutFile mtime")),
                };
                Self::PutFile {
                    path,
                    size,
                    mode,
                    mtime,
                    resume: flags & PUT_RESUME != 0,
                }
            }
            M_PUT_READY => Self::PutReady {
                offset: r.u64()?,
                prefix_sha256: r.array()?,
            },
            M_PUT_START => Self::PutStart { offset: r.u64()? },
            M_GET_FILE => Self::GetFile {
                path: text(r.bytes16(MAX_TEXT)?)?,
                offset: r.u64()?,
                prefix_sha256: r.array()?,
            },
            M_GET_TREE => Self::GetTree {
                path: text(r.bytes16(MAX_TEXT)?)?,
            },
            M_FILE_INFO => {
                let path = text(r.bytes16(MAX_TEXT)?)?;
                let size = r.u64()?;
                let mode = mode(r.u32()?)?;
                let mtime = r.i64()?;
                let offset = r.u64()?;
                if offset > size {
                    return Err(DecodeError::Invalid("FileInfo offset past the end"));
                }
                Self::FileInfo {
                    path,
                    size,
                    mode,
                    mtime,
                    offset,
                }
            }
            M_FILE_DATA => Self::FileData(r.rest()),
            M_FILE_END => Self::FileEnd { sha256: r.array()? },
            M_MAKE_DIR => Self::MakeDir {
                path: text(r.bytes16(MAX_TEXT)?)?,
                mode: mode(r.u32()?)?,
            },
            M_TRANSFER_DONE => Self::TransferDone,
            M_TRANSFER_FAILED => Self::TransferFailed {
                reason: text(r.bytes16(MAX_TEXT)?)?,
            },
            other => return Err(DecodeError::UnknownType(other)),
        };
        r.finish()?;
        Ok(msg)
    }
}

/// The messages that are a type byte followed by raw bytes, which the record layer can seal
/// in place ([`crate::proto::record::RecordSealer::seal_data`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataKind {
    /// [`Message::Stdin`].
    Stdin,
    /// [`Message::Stdout`].
    Stdout,
    /// [`Message::Stderr`].
    Stderr,
    /// [`Message::FileData`].
    FileData,
}

impl DataKind {
    /// The message type byte.
    pub fn type_byte(self) -> u8 {
        match self {
            Self::Stdin => M_STDIN,
            Self::Stdout => M_STDOUT,
            Self::Stderr => M_STDERR,
            Self::FileData => M_FILE_DATA,
        }
    }
}

fn put_data(out: &mut Vec<u8>, kind: u8, data: &[u8]) {
    out.push(kind);
    out.extend_from_slice(data);
}

fn put_mode(out: &mut Vec<u8>, mode: u32) -> Result<(), EncodeError> {
    if mode > MAX_MODE {
        return Err(EncodeError::BadMode(mode));
    }
    out.extend_from_slice(&mode.to_be_bytes());
    Ok(())
}

fn mode(value: u32) -> Result<u32, DecodeError> {
    if value > MAX_MODE {
        return Err(DecodeError::Invalid("mode"));
    }
    Ok(value)
}

/// A terminal type: 1 to [`MAX_TERM`] printable ASCII characters, no space (it becomes
/// `TERM` in a command's environment and names a terminfo file).
fn term_name(bytes: &[u8]) -> Result<&str, EncodeError> {
    let printable = !bytes.is_empty() && bytes.iter().all(u8::is_ascii_graphic);
    match std::str::from_utf8(bytes) {
        Ok(term) if printable && term.len() <= MAX_TERM => Ok(term),
        _ => Err(EncodeError::BadTerm),
    }
}

/// Checks a [`Message::Completions`] list: empty, or names each ended by a NUL, none empty,
/// at most [`MAX_COMPLETIONS`].
fn completion_list(names: &str) -> Result<(), DecodeError> {
    if names.is_empty() {
        return Ok(());
    }
    let Some(body) = names.strip_suffix('\0') else {
        return Err(DecodeError::Invalid("completion list"));
    };
    let mut count = 0usize;
    for name in body.split('\0') {
        count += 1;
        if name.is_empty() || count > MAX_COMPLETIONS {
            return Err(DecodeError::Invalid("completion list"));
        }
    }
    Ok(())
}

fn text(bytes: &[u8]) -> Result<&str, DecodeError> {
    std::str::from_utf8(bytes).map_err(|_| DecodeError::Invalid("UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(msg: Message<'_>) -> Vec<u8> {
        let mut wire = Vec::new();
        msg.encode(&mut wire).unwrap();
        assert_eq!(Message::decode(&wire), Ok(msg), "{wire:02x?}");
        for cut in 0..wire.len() {
            if let Ok(shorter) = Message::decode(&wire[..cut]) {
                // Only data-carrying messages may be cut and still parse (their data is the rest).
                assert!(matches!(shorter, Message::FileData(_)), "{shorter:?}");
            }
        }
        let mut longer = wire.clone();
        longer.push(0);
        if !matches!(msg, Message::FileData(_)) {
            assert!(Message::decode(&longer).is_err(), "trailing byte accepted");
        }
        wire
    }

    #[test]
    fn transfer_messages_round_trip() {
        let sha = [7u8; 32];
        let messages = [
            Message::Stat { path: "a b/ü" },
            Message::StatResult(PathKind::Missing),
            Message::StatResult(PathKind::File),
            Message::StatResult(PathKind::Directory),
            Message::StatResult(PathKind::Other),
            Message::PutFile {
                path: "x",
                size: u64::MAX,
                mode: 0o7777,
                mtime: Some(-5),
                resume: true,
            },
            Message::PutFile {
                path: "x",
                size: 0,
                mode: 0,
                mtime: None,
                resume: false,
            },
            Message::PutReady {
                offset: 9,
                prefix_sha256: sha,
            },
            Message::PutStart { offset: 9 },
            Message::GetFile {
                path: "/etc/hosts",
                offset: 0,
                prefix_sha256: sha,
            },
            Message::GetTree { path: "." },
            Message::FileInfo {
                path: "",
                size: 10,
                mode: 0o644,
                mtime: 1_700_000_000,
                offset: 10,
            },
            Message::FileData(b""),
            Message::FileData(&[1, 2, 3]),
            Message::FileEnd { sha256: sha },
            Message::MakeDir {
                path: "d",
                mode: 0o755,
            },
            Message::TransferDone,
            Message::TransferFailed { reason: "no" },
        ];
        for msg in messages {
            round_trip(msg);
        }
    }

    #[test]
    fn terminal_messages_round_trip() {
        let size = WindowSize {
            rows: 24,
            cols: 80,
            xpixel: 640,
            ypixel: 480,
        };
        let exec = round_trip(Message::ExecPty {
            line: "vi",
            term: "xterm-256color",
            size,
        });
        let mut want = vec![0x1a, 0, 2, b'v', b'i', 0, 14];
        want.extend_from_slice(b"xterm-256color");
        want.extend_from_slice(&[0, 24, 0, 80, 2, 128, 1, 224]);
        assert_eq!(exec, want);
        assert_eq!(
            round_trip(Message::WindowChange(size)),
            [0x1b, 0, 24, 0, 80, 2, 128, 1, 224]
        );
        assert_eq!(round_trip(Message::PtyRefused), [0x1c]);
    }

    #[test]
    fn a_terminal_type_is_printable_ascii_without_spaces() {
        let exec = |term: &[u8]| {
            let mut wire = vec![M_EXEC_PTY, 0, 1, b'x', 0];
            wire.push(u8::try_from(term.len()).unwrap());
            wire.extend_from_slice(term);
            wire.extend_from_slice(&[0; 8]);
            Message::decode(&wire).map(|_| ())
        };
        assert!(exec(b"xterm").is_ok());
        for bad in [&b""[..], b"x term", b"x\x1b[2J", b"\xc3\xa9"] {
            assert_eq!(exec(bad), Err(DecodeError::Invalid("TERM")), "{bad:?}");
        }
        assert_eq!(exec(&[b'x'; MAX_TERM + 1]), Err(DecodeError::TooLong));
        let mut out = Vec::new();
        let bad = Message::ExecPty {
            line: "x",
            term: "a b",
            size: WindowSize::default(),
        };
        assert_eq!(bad.encode(&mut out), Err(EncodeError::BadTerm));
    }

    #[test]
    fn a_version_refusal_lists_one_to_eight_versions() {
        let mut wire = Vec::new();
        VersionRefused {
            versions: vec![1, 2],
        }
        .encode(&mut wire)
        .unwrap();
        assert_eq!(wire, [0x04, 2, 0, 1, 0, 2]);
        assert!(VersionRefused::is_refusal(&wire));
        assert_eq!(VersionRefused::decode(&wire).unwrap().versions, [1, 2]);
        assert_eq!(
            VersionRefused::decode(&[0x04, 0]),
            Err(DecodeError::Invalid("version count"))
        );
        assert_eq!(
            VersionRefused::decode(&[0x04, 1, 0, 1, 0]),
            Err(DecodeError::TrailingBytes)
        );
        let too_many = VersionRefused {
            versions: vec![1; MAX_VERSIONS + 1],
        };
        assert!(too_many.encode(&mut Vec::new()).is_err());
    }

    #[test]
    fn exact_encodings() {
        let put = round_trip(Message::PutFile {
            path: "f",
            size: 2,
            mode: 0o644,
            mtime: Some(1),
            resume: true,
        });
        let mut want = vec![
            0x22, 0, 1, b'f', 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0x01, 0xa4, 0x03,
        ];
        want.extend_from_slice(&1i64.to_be_bytes());
        assert_eq!(put, want);
        assert_eq!(round_trip(Message::TransferDone), [0x2b]);
        assert_eq!(
            round_trip(Message::StatResult(PathKind::Directory)),
            [0x21, 2]
        );
    }

    #[test]
    fn out_of_domain_fields_are_rejected() {
        let put = |flags: u8, mode: u32, mtime: i64| {
            let mut wire = vec![M_PUT_FILE, 0, 1, b'f'];
            wire.extend_from_slice(&5u64.to_be_bytes());
            wire.extend_from_slice(&mode.to_be_bytes());
            wire.push(flags);
            wire.extend_from_slice(&mtime.to_be_bytes());
            Message::decode(&wire).map(|_| ())
        };
        assert!(put(0, 0o644, 0).is_ok());
        assert_eq!(
            put(0x04, 0o644, 0),
            Err(DecodeError::Invalid("PutFile flags"))
        );
        assert_eq!(put(0, 0o644, 3), Err(DecodeError::Invalid("PutFile mtime")));
        assert_eq!(put(0, 0o10000, 0), Err(DecodeError::Invalid("mode")));
        assert_eq!(
            Message::decode(&[M_STAT_RESULT, 4]),
            Err(DecodeError::Invalid("path kind"))
        );
        let mut info = vec![M_FILE_INFO, 0, 0];
        info.extend_from_slice(&5u64.to_be_bytes());
        info.extend_from_slice(&0o644u32.to_be_bytes());
        info.extend_from_slice(&0i64.to_be_bytes());
        info.extend_from_slice(&6u64.to_be_bytes());
        assert!(Message::decode(&info).is_err(), "offset past the end");
        assert_eq!(
            Message::decode(&[M_STAT, 0, 2, 0xff, 0xfe]),
            Err(DecodeError::Invalid("UTF-8 text"))
        );
        assert_eq!(
            Message::decode(&[0x2d]),
            Err(DecodeError::UnknownType(0x2d))
        );
    }

    #[test]
    fn senders_refuse_what_receivers_would_reject() {
        let mut out = Vec::new();
        let bad_mode = Message::MakeDir {
            path: "d",
            mode: 0o17777,
        };
        assert_eq!(
            bad_mode.encode(&mut out),
            Err(EncodeError::BadMode(0o17777))
        );
        let bad_offset = Message::FileInfo {
            path: "",
            size: 1,
            mode: 0,
            mtime: 0,
            offset: 2,
        };
        assert!(bad_offset.encode(&mut out).is_err());
        let long = "x".repeat(MAX_TEXT + 1);
        assert!(Message::Stat { path: &long }.encode(&mut out).is_err());
    }

    proptest::proptest! {
        #[test]
        fn decoding_transfer_bytes_never_panics(
            kind in 0x20u8..=0x2c,
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..80),
        ) {
            let mut wire = vec![kind];
            wire.extend_from_slice(&body);
            let _ = Message::decode(&wire);
        }
    }
}
