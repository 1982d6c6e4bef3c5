//! The owned form of every [`Message`]: [`OwnedMessage`], for what must outlive the frame a
//! message was opened in (a queue between tasks, a test's generated values). One mirror of
//! the vocabulary, next to it: [`Message::to_owned_message`] and [`OwnedMessage::as_message`]
//! match every variant without a wildcard, so a new message does not compile until it has
//! its owned form too. No I/O, no policy: a change of representation only.

use super::message::{ExitStatus, Message, PathKind, WindowSize};

/// A [`Message`] that owns its fields (field names as in [`Message`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    missing_docs,
    reason = "each variant and field is documented on Message"
)]
pub enum OwnedMessage {
    ClientAuth {
        public_key: Vec<u8>,
        signature: Vec<u8>,
        account: String,
        certificate: Vec<u8>,
    },
    AuthOk {
        session_id: [u8; 32],
    },
    AuthFailed,
    KeyUpdate,
    Close {
        reason: String,
    },
    Exec {
        line: String,
    },
    ExecPty {
        line: String,
        term: String,
        size: WindowSize,
    },
    WindowChange(WindowSize),
    PtyRefused,
    OpenConsole {
        term: String,
        size: WindowSize,
    },
    ConsoleOpened {
        user: String,
        host: String,
        home: String,
        superuser: bool,
        restricted: bool,
        key_name: String,
        banner: Vec<u8>,
        warning: String,
    },
    Complete {
        word: String,
        command: bool,
    },
    Completions {
        names: String,
    },
    Stdin(Vec<u8>),
    StdinEof,
    Interrupt,
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    Exit(ExitStatus),
    ConsoleState {
        cwd: String,
    },
    Ping(u64),
    Pong(u64),
    Stat {
        path: String,
    },
    StatResult(PathKind),
    PutFile {
        path: String,
        size: u64,
        mode: u32,
        mtime: Option<i64>,
        resume: bool,
    },
    PutReady {
        offset: u64,
        prefix_sha256: [u8; 32],
    },
    PutStart {
        offset: u64,
    },
    GetFile {
        path: String,
        offset: u64,
        prefix_sha256: [u8; 32],
    },
    GetTree {
        path: String,
    },
    FileInfo {
        path: String,
        size: u64,
        mode: u32,
        mtime: i64,
        offset: u64,
    },
    FileData(Vec<u8>),
    FileEnd {
        sha256: [u8; 32],
    },
    MakeDir {
        path: String,
        mode: u32,
    },
    TransferDone,
    TransferFailed {
        reason: String,
    },
}

impl Message<'_> {
    /// The owned copy of this message.
    pub fn to_owned_message(&self) -> OwnedMessage {
        use OwnedMessage as O;
        match *self {
            Self::ClientAuth {
                public_key,
                signature,
                account,
                certificate,
            } => O::ClientAuth {
                public_key: public_key.to_vec(),
                signature: signature.to_vec(),
                account: account.to_owned(),
                certificate: certificate.to_vec(),
            },
            Self::AuthOk { session_id } => O::AuthOk { session_id },
            Self::AuthFailed => O::AuthFailed,
            Self::KeyUpdate => O::KeyUpdate,
            Self::Close { reason } => O::Close {
                reason: reason.to_owned(),
            },
            Self::Exec { line } => O::Exec {
                line: line.to_owned(),
            },
            Self::ExecPty { line, term, size } => O::ExecPty {
                line: line.to_owned(),
                term: term.to_owned(),
                size,
            },
            Self::WindowChange(size) => O::WindowChange(size),
            Self::PtyRefused => O::PtyRefused,
            Self::OpenConsole { term, size } => O::OpenConsole {
                term: term.to_owned(),
                size,
            },
            Self::ConsoleOpened {
                user,
                host,
                home,
                superuser,
                restricted,
                key_name,
                banner,
                warning,
            } => O::ConsoleOpened {
                user: user.to_owned(),
                host: host.to_owned(),
                home: home.to_owned(),
                superuser,
                restricted,
                key_name: key_name.to_owned(),
                banner: banner.to_vec(),
                warning: warning.to_owned(),
            },
            Self::Complete { word, command } => O::Complete {
                word: word.to_owned(),
                command,
            },
            Self::Completions { names } => O::Completions {
                names: names.to_owned(),
            },
            Self::Stdin(data) => O::Stdin(data.to_vec()),
            Self::StdinEof => O::StdinEof,
            Self::Interrupt => O::Interrupt,
            Self::Stdout(data) => O::Stdout(data.to_vec()),
            Self::Stderr(data) => O::Stderr(data.to_vec()),
            Self::Exit(status) => O::Exit(status),
            Self::ConsoleState { cwd } => O::ConsoleState {
                cwd: cwd.to_owned(),
            },
            Self::Ping(n) => O::Ping(n),
            Self::Pong(n) => O::Pong(n),
            Self::Stat { path } => O::Stat {
                path: path.to_owned(),
            },
            Self::StatResult(kind) => O::StatResult(kind),
            Self::PutFile {
                path,
                size,
                mode,
                mtime,
                resume,
            } => O::PutFile {
                path: path.to_owned(),
                size,
                mode,
                mtime,
                resume,
            },
            Self::PutReady {
                offset,
                prefix_sha256,
            } => O::PutReady {
                offset,
                prefix_sha256,
            },
            Self::PutStart { offset } => O::PutStart { offset },
            Self::GetFile {
                path,
                offset,
                prefix_sha256,
            } => O::GetFile {
                path: path.to_owned(),
                offset,
                prefix_sha256,
            },
            Self::GetTree { path } => O::GetTree {
                path: path.to_owned(),
            },
            Self::FileInfo {
                path,
                size,
                mode,
                mtime,
                offset,
            } => O::FileInfo {
                path: path.to_owned(),
                size,
                mode,
                mtime,
                offset,
            },
            Self::FileData(data) => O::FileData(data.to_vec()),
            Self::FileEnd { sha256 } => O::FileEnd { sha256 },
            Self::MakeDir { path, mode } => O::MakeDir {
                path: path.to_owned(),
                mode,
            },
            Self::TransferDone => O::TransferDone,
            Self::TransferFailed { reason } => O::TransferFailed {
                reason: reason.to_owned(),
            },
        }
    }
}

impl OwnedMessage {
    /// The message, borrowing from this one.
    pub fn as_message(&self) -> Message<'_> {
        use Message as M;
        match self {
            Self::ClientAuth {
                public_key,
                signature,
                account,
                certificate,
            } => M::ClientAuth {
                public_key,
                signature,
                account,
                certificate,
            },
            Self::AuthOk { session_id } => M::AuthOk {
                session_id: *session_id,
            },
            Self::AuthFailed => M::AuthFailed,
            Self::KeyUpdate => M::KeyUpdate,
            Self::Close { reason } => M::Close { reason },
            Self::Exec { line } => M::Exec { line },
            Self::ExecPty { line, term, size } => M::ExecPty {
                line,
                term,
                size: *size,
            },
            Self::WindowChange(size) => M::WindowChange(*size),
            Self::PtyRefused => M::PtyRefused,
            Self::OpenConsole { term, size } => M::OpenConsole { term, size: *size },
            Self::ConsoleOpened {
                user,
                host,
                home,
                superuser,
                restricted,
                key_name,
                banner,
                warning,
            } => M::ConsoleOpened {
                user,
                host,
                home,
                superuser: *superuser,
                restricted: *restricted,
                key_name,
                banner,
                warning,
            },
            Self::Complete { word, command } => M::Complete {
                word,
                command: *command,
            },
            Self::Completions { names } => M::Completions { names },
            Self::Stdin(data) => M::Stdin(data),
            Self::StdinEof => M::StdinEof,
            Self::Interrupt => M::Interrupt,
            Self::Stdout(data) => M::Stdout(data),
            Self::Stderr(data) => M::Stderr(data),
            Self::Exit(status) => M::Exit(*status),
            Self::ConsoleState { cwd } => M::ConsoleState { cwd },
            Self::Ping(n) => M::Ping(*n),
            Self::Pong(n) => M::Pong(*n),
            Self::Stat { path } => M::Stat { path },
            Self::StatResult(kind) => M::StatResult(*kind),
            Self::PutFile {
                path,
                size,
                mode,
                mtime,
                resume,
            } => M::PutFile {
                path,
                size: *size,
                mode: *mode,
                mtime: *mtime,
                resume: *resume,
            },
            Self::PutReady {
                offset,
                prefix_sha256,
            } => M::PutReady {
                offset: *offset,
                prefix_sha256: *prefix_sha256,
            },
            Self::PutStart { offset } => M::PutStart { offset: *offset },
            Self::GetFile {
                path,
                offset,
                prefix_sha256,
            } => M::GetFile {
                path,
                offset: *offset,
                prefix_sha256: *prefix_sha256,
            },
            Self::GetTree { path } => M::GetTree { path },
            Self::FileInfo {
                path,
                size,
                mode,
                mtime,
                offset,
            } => M::FileInfo {
                path,
                size: *size,
                mode: *mode,
                mtime: *mtime,
                offset: *offset,
            },
            Self::FileData(data) => M::FileData(data),
            Self::FileEnd { sha256 } => M::FileEnd { sha256: *sha256 },
            Self::MakeDir { path, mode } => M::MakeDir { path, mode: *mode },
            Self::TransferDone => M::TransferDone,
            Self::TransferFailed { reason } => M::TransferFailed { reason },
        }
    }
}
