//! The client's half of file transfer (docs/PROTOCOL.md §6.4), shared by `seashell cp` and
//! the REPL's `put`/`get`. A [`FileTransfer`] drives one [`RemoteConsole`]: it resolves
//! destinations scp-style (into a directory if the destination is one), streams uploads
//! from a reader thread and downloads into a partial file that is renamed into place only
//! after the SHA-256 check, shows progress, and keeps the session usable after a failure
//! or an interrupt: it always ends the file it owes the server and reads the one final
//! answer each request gets. Per-file failures are reported and the next source goes on;
//! only a broken session stops everything.

use std::path::{Path, PathBuf};

use super::ClientError;
use super::console::RemoteConsole;
use super::progress::Progress;
use super::transfer_msg::{FileInfo, Incoming, Lend, Reply, Request};
use crate::fileio::FileError;
use crate::fileio::partial::{Expected, PartialFile, Received};
use crate::fileio::source::{Piece, SourceFile};
use crate::fileio::tree::{
    TreeEntry, TreeWalk, join_remote, make_dir_beneath, relative_path, tree_size,
};
use crate::proto::{OwnedMessage, PathKind, ProtoError};
use crate::transport::TransportError;

/// Why a transfer failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransferError {
    /// The session broke (exit 255).
    #[error(transparent)]
    Session(#[from] ClientError),
    /// A local file problem (exit 1).
    #[error(transparent)]
    File(#[from] FileError),
    /// The server refused or failed (exit 1).
    #[error("{host}: {reason}")]
    Remote {
        /// The server.
        host: String,
        /// Its reason.
        reason: String,
    },
    /// A bad command line (exit 1).
    #[error("{0}")]
    Usage(String),
    /// Interrupted by this signal (exit 128 + N).
    #[error("interrupted")]
    Interrupted(u8),
}

impl TransferError {
    /// The exit code: 255 for a broken session, 128+N for signal N, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Session(_) => 255,
            Self::Interrupted(signal) => 128u8.saturating_add(*signal),
            Self::File(_) | Self::Remote { .. } | Self::Usage(_) => 1,
        }
    }

    fn ends_the_command(&self) -> bool {
        matches!(self, Self::Session(_) | Self::Interrupted(_))
    }
}

fn protocol_error(what: &'static str) -> TransferError {
    TransferError::Session(ClientError::Transport(TransportError::Proto(
        ProtoError::Unexpected(what),
    )))
}

fn unexpected(reply: &Reply) -> TransferError {
    protocol_error(reply.name())
}

/// How a transfer command behaves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransferOptions {
    /// `-r`: copy directories.
    pub recursive: bool,
    /// `-p`: keep modification times, and the permission bits exactly as sent. Without it a
    /// download's modes are masked by the umask, as scp does; setuid, setgid and sticky bits
    /// are never applied.
    pub preserve_times: bool,
    /// `--resume`: continue from partial files.
    pub resume: bool,
}

impl TransferOptions {
    /// The permission bits a downloaded file or directory gets for the `sent` mode: as sent
    /// with `-p`, else masked by `umask`; never setuid, setgid or sticky.
    fn local_mode(&self, sent: u32, umask: u32) -> u32 {
        if self.preserve_times {
            sent & 0o777
        } else {
            sent & 0o777 & !umask
        }
    }

    /// [`TransferOptions::local_mode`] under this process's umask.
    fn received_mode(&self, sent: u32) -> u32 {
        self.local_mode(sent, crate::fileio::umask())
    }
}

/// Which signals stop a transfer cleanly (the partial files removed unless resumable, the
/// server told). Listening changes the process's signal handling for good, so the REPL's
/// script mode listens to none and keeps the default of dying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupts {
    /// Default signal handling.
    Default,
    /// Ctrl-C (interactive REPL).
    Interrupt,
    /// Ctrl-C and SIGTERM (`seashell cp`).
    InterruptAndTerminate,
}

/// One transfer command over a session.
pub struct FileTransfer<'c> {
    console: &'c mut RemoteConsole,
    host: String,
    options: TransferOptions,
    interrupts: Interrupts,
    progress: Progress,
    /// A request was sent whose final reply has not been read.
    awaiting_final: bool,
    /// An upload got PutReady and has not been ended with FileEnd or a cancel.
    owes_terminator: bool,
}

impl<'c> FileTransfer<'c> {
    /// A transfer command on `console`, connected to `host` (for messages).
    pub fn new(
        console: &'c mut RemoteConsole,
        host: &str,
        options: TransferOptions,
        interrupts: Interrupts,
    ) -> Self {
        Self {
            console,
            host: host.to_owned(),
            options,
            interrupts,
            progress: Progress::on_stderr(),
            awaiting_final: false,
            owes_terminator: false,
        }
    }

    /// Uploads `sources` to `dest` (scp rules: into `dest` if it is a directory, which it
    /// must be for several sources). Per-source failures are printed; returns whether all
    /// went well. A broken session or an interrupt ends it with `Err`.
    pub async fn put_all(
        &mut self,
        sources: &[PathBuf],
        dest: &str,
    ) -> Result<bool, TransferError> {
        let dest = if dest.is_empty() { "." } else { dest };
        let into_dir = match self.guarded(Op::Stat(dest)).await {
            Ok(Done::Kind(kind)) => kind == PathKind::Directory,
            Ok(Done::Nothing) => false,
            Err(err) => return self.report(err).map(|()| false),
        };
        if (sources.len() > 1 || dest.ends_with('/')) && !into_dir {
            let err = TransferError::Remote {
                host: self.host.clone(),
                reason: format!("{dest}: not a directory"),
            };
            return self.report(err).map(|()| false);
        }
        let mut all_ok = true;
        for source in sources {
            let target = if into_dir {
                match local_name(source) {
                    Ok(name) => join_remote(dest, &name),
                    Err(err) => {
                        self.report(err.into())?;
                        all_ok = false;
                        continue;
                    }
                }
            } else {
                dest.to_owned()
            };
            if let Err(err) = self.guarded(Op::Put(source, &target)).await {
                self.report(err)?;
                all_ok = false;
            }
        }
        Ok(all_ok)
    }

    /// Downloads `sources` to `dest` (into it if it is a directory, which it must be for
    /// several sources). Same reporting as [`FileTransfer::put_all`].
    pub async fn get_all(
        &mut self,
        sources: &[String],
        dest: &Path,
    ) -> Result<bool, TransferError> {
        let into_dir = tokio::fs::metadata(dest).await.is_ok_and(|m| m.is_dir());
        let names_a_dir = dest.as_os_str().as_encoded_bytes().ends_with(b"/");
        if (sources.len() > 1 || names_a_dir) && !into_dir {
            self.report(FileError::NotDirectory(dest.to_owned()).into())?;
            return Ok(false);
        }
        let mut all_ok = true;
        for source in sources {
            let target = if into_dir {
                match remote_name(source) {
                    Some(name) => dest.join(name),
                    None => {
                        let err = TransferError::Usage(format!(
                            "`{source}`: no file name to copy into {}: name the destination",
                            dest.display()
                        ));
                        self.report(err)?;
                        all_ok = false;
                        continue;
                    }
                }
            } else {
                dest.to_owned()
            };
            if let Err(err) = self.guarded(Op::Get(source, &target)).await {
                self.report(err)?;
                all_ok = false;
            }
        }
        Ok(all_ok)
    }

    /// Prints a per-source failure; passes on the ones that end the command.
    fn report(&self, err: TransferError) -> Result<(), TransferError> {
        if err.ends_the_command() {
            return Err(err);
        }
        self.progress.note(&format!("seashell: {err}"));
        Ok(())
    }

    /// Runs one operation; on an interrupt, brings the session back to a clean state first.
    async fn guarded(&mut self, op: Op<'_>) -> Result<Done, TransferError> {
        let interrupts = self.interrupts;
        let result = tokio::select! {
            result = self.run(op) => result,
            signal = interrupted(interrupts) => Err(TransferError::Interrupted(signal)),
        };
        if matches!(result, Err(TransferError::Interrupted(_))) {
            // A second signal stops waiting for the server: the session is then unusable.
            tokio::select! {
                recovered = self.recover("interrupted") => recovered?,
                _ = interrupted(interrupts) => {
                    let why = "interrupted again while the transfer was being cancelled";
                    return Err(ClientError::Closed(why.into()).into());
                }
            }
        }
        result
    }

    async fn run(&mut self, op: Op<'_>) -> Result<Done, TransferError> {
        match op {
            Op::Stat(path) => self.stat(path).await.map(Done::Kind),
            Op::Put(source, target) => self.put(source, target).await.map(|()| Done::Nothing),
            Op::Get(source, target) => self.get(source, target).await.map(|()| Done::Nothing),
        }
    }

    async fn stat(&mut self, path: &str) -> Result<PathKind, TransferError> {
        self.send(Request::Message(OwnedMessage::Stat {
            path: path.to_owned(),
        }))
        .await?;
        match self.reply().await? {
            Reply::Stat(kind) => Ok(kind),
            Reply::Failed(reason) => Err(self.remote(reason)),
            other => Err(unexpected(&other)),
        }
    }

    async fn put(&mut self, source: &Path, target: &str) -> Result<(), TransferError> {
        let is_dir = tokio::fs::metadata(source).await.is_ok_and(|m| m.is_dir());
        if is_dir && self.options.recursive {
            return self.put_tree(source, target).await;
        }
        let file = SourceFile::open(source.to_owned()).await?;
        self.put_file(file, target).await
    }

    async fn get(&mut self, source: &str, target: &Path) -> Result<(), TransferError> {
        if self.options.recursive && self.stat(source).await? == PathKind::Directory {
            return self.get_tree(source, target).await;
        }
        self.get_file(source, target).await
    }

    async fn put_tree(&mut self, root: &Path, remote_root: &str) -> Result<(), TransferError> {
        let total = tree_size(root.to_owned()).await?;
        self.progress.start_total(Some(total));
        let mut walk = TreeWalk::start(root.to_owned());
        while let Some(entry) = walk.next().await {
            match entry? {
                TreeEntry::Dir { rel, mode } => {
                    self.make_remote_dir(join_remote(remote_root, &rel), mode)
                        .await?;
                }
                TreeEntry::File { rel, path } => {
                    let file = SourceFile::open(path).await?;
                    self.put_file(file, &join_remote(remote_root, &rel)).await?;
                }
                TreeEntry::Skipped { rel, kind } => {
                    let path = root.join(rel);
                    self.progress
                        .note(&format!("seashell: skipping {kind} {}", path.display()));
                }
            }
        }
        self.progress.finish_total();
        Ok(())
    }

    async fn make_remote_dir(&mut self, path: String, mode: u32) -> Result<(), TransferError> {
        self.send(Request::Message(OwnedMessage::MakeDir { path, mode }))
            .await?;
        match self.reply().await? {
            Reply::Done => Ok(()),
            Reply::Failed(reason) => Err(self.remote(reason)),
            other => Err(unexpected(&other)),
        }
    }

    async fn put_file(&mut self, file: SourceFile, target: &str) -> Result<(), TransferError> {
        let size = file.size();
        self.send(Request::Message(OwnedMessage::PutFile {
            path: target.to_owned(),
            size,
            mode: file.mode(),
            mtime: self.options.preserve_times.then(|| file.mtime()),
            resume: self.options.resume,
        }))
        .await?;
        let (offset, prefix_sha256) = match self.reply().await? {
            Reply::PutReady {
                offset,
                prefix_sha256,
            } if offset <= size => (offset, prefix_sha256),
            Reply::Failed(reason) => return Err(self.remote(reason)),
            other => return Err(unexpected(&other)),
        };
        let mut stream = file.stream(offset, prefix_sha256);
        let mut bar = None;
        loop {
            match stream.next().await {
                Some(Ok(Piece::Start(start))) => {
                    self.send(Request::Message(OwnedMessage::PutStart { offset: start }))
                        .await?;
                    self.note_resume(target, start, size);
                    bar = Some(self.progress.file(target, size, start));
                }
                Some(Ok(Piece::Data(chunk))) => {
                    if let Some(reply) = self.console.try_transfer_reply()? {
                        return Err(self.stopped_by_server(reply).await);
                    }
                    if let Some(bar) = &bar {
                        bar.advance(chunk.len() as u64);
                    }
                    self.send(Request::Data(chunk)).await?;
                }
                Some(Ok(Piece::End(sha256))) => {
                    self.send(Request::Message(OwnedMessage::FileEnd { sha256 }))
                        .await?;
                    break;
                }
                Some(Err(err)) => return Err(self.local_failure(err).await),
                None => {
                    let err = FileError::Worker("the file reader stopped".into());
                    return Err(self.local_failure(err).await);
                }
            }
        }
        match self.reply().await? {
            Reply::Done => {
                if let Some(bar) = &bar {
                    bar.done();
                }
                Ok(())
            }
            Reply::Failed(reason) => Err(self.remote(reason)),
            other => Err(unexpected(&other)),
        }
    }

    /// The server answered in the middle of an upload: it failed. End the file we owe it
    /// (the reply is dropped first: it may hold a [`Lend`] the reader task waits for).
    async fn stopped_by_server(&mut self, reply: Reply) -> TransferError {
        self.saw(&reply);
        let failure = match reply {
            Reply::Failed(reason) => self.remote(reason),
            other => unexpected(&other),
        };
        if let Err(err) = self.recover("stopped after the server's failure").await {
            return err.into();
        }
        failure
    }

    async fn get_file(&mut self, source: &str, target: &Path) -> Result<(), TransferError> {
        let (mut partial, mut received) =
            PartialFile::open(target.to_owned(), self.options.resume).await?;
        self.send(Request::Message(OwnedMessage::GetFile {
            path: source.to_owned(),
            offset: received.len(),
            prefix_sha256: received.prefix_sha256(),
        }))
        .await?;
        let (info, lend) = match self.reply().await? {
            Reply::FileInfo(info, lend) if info.path.is_empty() => (info, lend),
            Reply::Failed(reason) => return Err(self.remote(reason)),
            other => return Err(unexpected(&other)),
        };
        if info.offset == 0 && !received.is_empty() {
            received = match partial.restart().await {
                Ok(empty) => empty,
                Err(err) => {
                    drop(lend);
                    return Err(self.local_failure(err).await);
                }
            };
        } else if info.offset != received.len() {
            drop(lend);
            self.recover("protocol error").await?;
            return Err(protocol_error("FileInfo offset"));
        }
        self.note_resume(source, info.offset, info.size);
        self.receive_file(partial, received, &info, lend, source)
            .await?;
        match self.reply().await? {
            Reply::Done => Ok(()),
            Reply::Failed(reason) => Err(self.remote(reason)),
            other => Err(unexpected(&other)),
        }
    }

    async fn get_tree(&mut self, source: &str, root: &Path) -> Result<(), TransferError> {
        self.send(Request::Message(OwnedMessage::GetTree {
            path: source.to_owned(),
        }))
        .await?;
        self.progress.start_total(None);
        loop {
            match self.reply().await? {
                Reply::MakeDir { path, mode } => {
                    let made = match relative_path(&path) {
                        Ok(rel) => {
                            let mode = self.options.received_mode(mode);
                            make_dir_beneath(root.to_owned(), rel, mode).await
                        }
                        Err(err) => Err(err),
                    };
                    if let Err(err) = made {
                        return Err(self.local_failure(err).await);
                    }
                }
                Reply::FileInfo(info, lend) if !info.path.is_empty() && info.offset == 0 => {
                    let opened = match relative_path(&info.path) {
                        Ok(rel) => PartialFile::open_beneath(root.to_owned(), rel, false).await,
                        Err(err) => Err(err),
                    };
                    let (partial, received) = match opened {
                        Ok(opened) => opened,
                        Err(err) => {
                            drop(lend);
                            return Err(self.local_failure(err).await);
                        }
                    };
                    let name = join_remote(source, &info.path);
                    self.receive_file(partial, received, &info, lend, &name)
                        .await?;
                }
                Reply::Done => break,
                Reply::Failed(reason) => return Err(self.remote(reason)),
                other => return Err(self.out_of_order(other).await),
            }
        }
        self.progress.finish_total();
        Ok(())
    }

    /// Lends the console's reader task the file its FileInfo announced, gets it back with
    /// the FileEnd, and commits it.
    async fn receive_file(
        &mut self,
        partial: PartialFile,
        received: Received,
        info: &FileInfo,
        lend: Lend,
        name: &str,
    ) -> Result<(), TransferError> {
        let sink = match partial.sink(received, info.size) {
            Ok(sink) => sink,
            Err(err) => {
                drop(lend);
                return Err(self.local_failure(err).await);
            }
        };
        let bar = self.progress.file(name, info.size, info.offset);
        lend.lend(Incoming { sink, bar });
        let (sha256, Incoming { sink, bar }) = match self.reply().await? {
            Reply::End {
                sha256,
                file: Some(file),
            } => (sha256, file),
            Reply::WriteFailed(err) => return Err(self.local_failure(err).await),
            Reply::Failed(reason) => return Err(self.remote(reason)),
            other => return Err(self.out_of_order(other).await),
        };
        let expected = Expected {
            size: info.size,
            sha256,
            mode: self.options.received_mode(info.mode),
            mtime: self.options.preserve_times.then_some(info.mtime),
        };
        if let Err(err) = partial.commit(sink, expected).await {
            return Err(self.local_failure(err).await);
        }
        bar.done();
        Ok(())
    }

    fn note_resume(&self, name: &str, offset: u64, size: u64) {
        if self.options.resume && offset > 0 {
            self.progress.note(&format!(
                "seashell: resuming {name} at byte {offset} of {size}"
            ));
        }
    }

    /// The server sent `reply` out of order: end what is outstanding, then report it. The
    /// reply (which may hold a [`Lend`] the reader task waits for) is dropped first.
    async fn out_of_order(&mut self, reply: Reply) -> TransferError {
        let err = unexpected(&reply);
        drop(reply);
        match self.recover("protocol error").await {
            Ok(()) => err,
            Err(session) => session.into(),
        }
    }

    /// A local file failed mid-transfer: tell the server, then report the file error.
    async fn local_failure(&mut self, err: FileError) -> TransferError {
        match self.recover(&err.to_string()).await {
            Ok(()) => err.into(),
            Err(session) => session.into(),
        }
    }

    /// Ends whatever is outstanding: the file we owe the server is cancelled, and replies
    /// are read (and dropped) up to the final one.
    async fn recover(&mut self, reason: &str) -> Result<(), ClientError> {
        if self.owes_terminator || self.awaiting_final {
            self.send(Request::Message(OwnedMessage::TransferFailed {
                reason: reason.to_owned(),
            }))
            .await?;
        }
        while self.awaiting_final {
            self.reply().await?;
        }
        Ok(())
    }

    async fn send(&mut self, request: Request) -> Result<(), ClientError> {
        if request.expects_final() {
            self.awaiting_final = true;
        }
        if matches!(
            request,
            Request::Message(OwnedMessage::FileEnd { .. } | OwnedMessage::TransferFailed { .. })
        ) {
            self.owes_terminator = false;
        }
        self.console.send_transfer(request).await
    }

    async fn reply(&mut self) -> Result<Reply, ClientError> {
        let reply = self.console.transfer_reply().await?;
        self.saw(&reply);
        Ok(reply)
    }

    fn saw(&mut self, reply: &Reply) {
        if reply.is_final() {
            self.awaiting_final = false;
        }
        if matches!(reply, Reply::PutReady { .. }) {
            self.owes_terminator = true;
        }
    }

    fn remote(&self, reason: String) -> TransferError {
        TransferError::Remote {
            host: self.host.clone(),
            reason,
        }
    }
}

/// One guarded step of a command.
enum Op<'a> {
    Stat(&'a str),
    Put(&'a Path, &'a str),
    Get(&'a str, &'a Path),
}

/// What a guarded step produced.
enum Done {
    Kind(PathKind),
    Nothing,
}

/// Resolves with the signal number when one of `interrupts` arrives; never otherwise.
async fn interrupted(interrupts: Interrupts) -> u8 {
    use tokio::signal::unix::{SignalKind, signal};
    let interrupt = async {
        if interrupts == Interrupts::Default || tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        if interrupts != Interrupts::InterruptAndTerminate {
            std::future::pending::<()>().await;
        }
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = interrupt => 2,
        () = terminate => 15,
    }
}

/// The name a local source gets inside a destination directory.
fn local_name(source: &Path) -> Result<String, FileError> {
    let named = match source.file_name() {
        Some(name) => PathBuf::from(name),
        None => source
            .canonicalize()
            .map_err(|err| FileError::Io {
                path: source.to_owned(),
                action: "resolve",
                source: err,
            })?
            .file_name()
            .map(PathBuf::from)
            .ok_or_else(|| FileError::BadPath(source.display().to_string()))?,
    };
    named
        .into_os_string()
        .into_string()
        .map_err(|_| FileError::NotUtf8(source.to_owned()))
}

/// The name a remote source gets inside a local directory: its last component, if it is a
/// plain name.
fn remote_name(source: &str) -> Option<&str> {
    let name = source.trim_end_matches('/').rsplit('/').next()?;
    (!name.is_empty() && name != "." && name != ".." && name != "~").then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_inside_a_destination_directory() {
        assert_eq!(remote_name("dir/file.txt"), Some("file.txt"));
        assert_eq!(remote_name("/a/b/"), Some("b"));
        for none in ["", "/", ".", "..", "~", "a/.."] {
            assert_eq!(remote_name(none), None, "{none}");
        }
        assert_eq!(local_name(Path::new("x/y z")).unwrap(), "y z");
        let here = std::env::current_dir().unwrap();
        let name = here.file_name().unwrap().to_str().unwrap();
        assert_eq!(local_name(Path::new(".")).unwrap(), name);
    }

    #[test]
    fn received_modes_follow_the_umask_unless_preserved() {
        let plain = TransferOptions::default();
        assert_eq!(plain.local_mode(0o777, 0o022), 0o755);
        assert_eq!(plain.local_mode(0o666, 0o077), 0o600);
        assert_eq!(plain.local_mode(0o4777, 0), 0o777, "never setuid");
        let kept = TransferOptions {
            preserve_times: true,
            ..TransferOptions::default()
        };
        assert_eq!(kept.local_mode(0o777, 0o077), 0o777);
        assert_eq!(
            kept.local_mode(0o7755, 0o022),
            0o755,
            "never setuid/setgid/sticky"
        );
    }

    #[test]
    fn exit_codes() {
        assert_eq!(TransferError::Interrupted(2).exit_code(), 130);
        assert_eq!(TransferError::Usage("x".into()).exit_code(), 1);
        let closed = ClientError::Closed("x".into());
        assert_eq!(TransferError::Session(closed).exit_code(), 255);
    }
}
