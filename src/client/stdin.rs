//! Our stdin, forwarded to the running command by a thread that can be stopped. The thread
//! waits in poll(2) on stdin and on a wake-up pipe; when the command ends, the console
//! writes to the pipe and waits for the thread to return, so the REPL's line editor, which
//! reads the keyboard next, loses no key to it. Data is read straight into frame buffers
//! for the writer task (no copy); keys typed on a terminal for a pty command first pass the
//! escape recogniser ([`super::escape`]). The thread never reads a byte it does not forward
//! (or recognise as an escape), never reads once told to stop, and writes nothing to the
//! terminal but the `~?` list and the `~.` echo.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use tokio::sync::{mpsc, oneshot};

use super::console::Outgoing;
use super::escape::{ESCAPE_CHAR, Escape, EscapeScanner, HELP, Step};
use crate::framepool::FramePool;
use crate::proto::OwnedMessage;
use crate::proto::record::MAX_CHUNK;

/// How the bytes of our stdin are treated on their way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdinKind {
    /// Data, forwarded as read (pipes, files, `-tt` without a terminal).
    Data,
    /// Keys typed on our terminal: `~.`, `~?` and `~~` are ours (ssh's escapes).
    Keys,
}

/// The thread that forwards our stdin to the running command; [`Self::stop`] ends it.
pub struct StdinForwarder {
    /// Written to when the thread must stop.
    wake: OwnedFd,
    /// Closed when the thread has returned.
    done: oneshot::Receiver<()>,
    /// Fires when `~.` was typed; gone once it fired or the thread ended without it.
    disconnect: Option<oneshot::Receiver<()>>,
}

/// What the thread's poll found.
enum Ready {
    Stdin,
    Stop,
}

impl StdinForwarder {
    /// Starts the thread on our stdin: it sends what it reads as Stdin messages on `out`,
    /// then StdinEof at end of input.
    pub(super) fn start(out: mpsc::Sender<Outgoing>, kind: StdinKind) -> std::io::Result<Self> {
        Self::start_on(std::io::stdin().as_fd().try_clone_to_owned()?, out, kind)
    }

    /// Starts the thread on `input`.
    fn start_on(
        input: OwnedFd,
        out: mpsc::Sender<Outgoing>,
        kind: StdinKind,
    ) -> std::io::Result<Self> {
        let stdin = File::from(input);
        let (woken, wake) = nix::unistd::pipe().map_err(std::io::Error::from)?;
        let (done_tx, done) = oneshot::channel();
        let (disconnect_tx, disconnect) = oneshot::channel();
        let pump = Pump {
            stdin,
            woken,
            out,
            pool: FramePool::new(),
        };
        std::thread::Builder::new()
            .name("stdin".into())
            .spawn(move || {
                match kind {
                    StdinKind::Data => pump.data(),
                    StdinKind::Keys => {
                        if pump.keys() == Some(Escape::Disconnect) {
                            let _ = disconnect_tx.send(());
                        }
                    }
                }
                drop(done_tx);
            })?;
        Ok(Self {
            wake,
            done,
            disconnect: Some(disconnect),
        })
    }

    /// Resolves when `~.` was typed; never, if it was not (or the thread ended).
    pub async fn disconnect_typed(&mut self) {
        if let Some(disconnect) = self.disconnect.as_mut() {
            let typed = disconnect.await.is_ok();
            self.disconnect = None;
            if typed {
                return;
            }
        }
        std::future::pending::<()>().await;
    }

    /// Tells the thread to stop and waits until it has: after this, it reads nothing more.
    pub async fn stop(mut self) {
        // The pipe holds the byte until the thread sees it; if the thread has already
        // returned the write may fail, and there is nothing to stop.
        let _ = nix::unistd::write(&self.wake, &[1]);
        let _ = (&mut self.done).await;
    }
}

/// The thread's side: stdin, the wake-up pipe's read end, and where frames go.
struct Pump {
    stdin: File,
    woken: OwnedFd,
    out: mpsc::Sender<Outgoing>,
    pool: FramePool,
}

impl Pump {
    /// Forwards data straight into frame buffers until EOF, a stop, or the writer is gone.
    fn data(mut self) {
        loop {
            if !matches!(self.wait(), Ready::Stdin) {
                return;
            }
            let mut frame = self.pool.take();
            let msg = match self.stdin.read(frame.payload_mut()) {
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                Ok(0) | Err(_) => Outgoing::Message(OwnedMessage::StdinEof),
                Ok(n) => Outgoing::Stdin(self.pool.chunk(frame, n)),
            };
            let eof = matches!(msg, Outgoing::Message(OwnedMessage::StdinEof));
            if self.out.blocking_send(msg).is_err() || eof {
                return;
            }
        }
    }

    /// Forwards typed keys through the escape recogniser; returns the escape that ended it.
    fn keys(mut self) -> Option<Escape> {
        let mut scanner = EscapeScanner::new();
        // One key more than is read can come out (a held-back `~`); a frame holds it.
        let mut keys = vec![0u8; MAX_CHUNK - 1];
        loop {
            if !matches!(self.wait(), Ready::Stdin) {
                return None;
            }
            let n = match self.stdin.read(&mut keys) {
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                Ok(0) | Err(_) => {
                    let _ = self
                        .out
                        .blocking_send(Outgoing::Message(OwnedMessage::StdinEof));
                    return None;
                }
                Ok(n) => n,
            };
            for step in scanner.feed(keys.get(..n).unwrap_or_default()) {
                match step {
                    Step::Send(bytes) => {
                        if !self.send(&bytes) {
                            return None;
                        }
                    }
                    Step::Do(Escape::Help) => {
                        let echo = format!("{}?\r\n{HELP}", char::from(ESCAPE_CHAR));
                        let _ = std::io::stderr().write_all(echo.as_bytes());
                    }
                    Step::Do(Escape::Disconnect) => {
                        let echo = format!("{}.\r\n", char::from(ESCAPE_CHAR));
                        let _ = std::io::stderr().write_all(echo.as_bytes());
                        return Some(Escape::Disconnect);
                    }
                }
            }
        }
    }

    /// Sends `bytes` as Stdin frames; false when the writer is gone.
    fn send(&self, bytes: &[u8]) -> bool {
        for piece in bytes.chunks(MAX_CHUNK) {
            let mut frame = self.pool.take();
            let Some(payload) = frame.payload_mut().get_mut(..piece.len()) else {
                return false;
            };
            payload.copy_from_slice(piece);
            let chunk = self.pool.chunk(frame, piece.len());
            if self.out.blocking_send(Outgoing::Stdin(chunk)).is_err() {
                return false;
            }
        }
        true
    }

    /// Waits until stdin can be read (or is at its end) or the console says stop; a stop
    /// wins when both are ready.
    fn wait(&self) -> Ready {
        loop {
            match readiness(self.stdin.as_fd(), self.woken.as_fd()) {
                Err(Errno::EINTR) => continue,
                Err(_) => return Ready::Stop,
                Ok((_, true)) => return Ready::Stop,
                Ok((true, false)) => return Ready::Stdin,
                Ok((false, false)) => continue,
            }
        }
    }
}

/// One poll(2) on both descriptors: whether each has something (data, EOF or an error).
fn readiness(stdin: BorrowedFd<'_>, woken: BorrowedFd<'_>) -> Result<(bool, bool), Errno> {
    let mut fds = [
        PollFd::new(stdin, PollFlags::POLLIN),
        PollFd::new(woken, PollFlags::POLLIN),
    ];
    poll(&mut fds, PollTimeout::NONE)?;
    let [stdin, woken] = fds;
    let ready = |fd: &PollFd<'_>| fd.revents().is_some_and(|r| !r.is_empty());
    Ok((ready(&stdin), ready(&woken)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pipe: the forwarder reads a copy of its read end; we keep the other ends.
    fn piped(kind: StdinKind) -> (StdinForwarder, mpsc::Receiver<Outgoing>, OwnedFd, File) {
        let (read, write) = nix::unistd::pipe().unwrap();
        let ours = read.try_clone().unwrap();
        let (out, sent) = mpsc::channel(16);
        let forwarder = StdinForwarder::start_on(read, out, kind).unwrap();
        (forwarder, sent, ours, File::from(write))
    }

    fn data(msg: Option<Outgoing>) -> Vec<u8> {
        match msg {
            Some(Outgoing::Stdin(chunk)) => chunk.data().to_vec(),
            other => panic!("expected Stdin, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn data_is_forwarded_then_its_end() {
        let (forwarder, mut sent, _ours, mut input) = piped(StdinKind::Data);
        input.write_all(b"abc").unwrap();
        assert_eq!(data(sent.recv().await), b"abc");
        drop(input);
        assert!(matches!(
            sent.recv().await,
            Some(Outgoing::Message(OwnedMessage::StdinEof))
        ));
        forwarder.stop().await;
    }

    #[tokio::test]
    async fn a_stopped_forwarder_reads_nothing_more() {
        for kind in [StdinKind::Data, StdinKind::Keys] {
            let (forwarder, mut sent, ours, mut input) = piped(kind);
            forwarder.stop().await;
            // What is typed after the command ended is left for the line editor.
            input.write_all(b"next").unwrap();
            let mut left = [0u8; 8];
            let n = nix::unistd::read(&ours, &mut left).unwrap();
            assert_eq!(&left[..n], b"next");
            assert!(
                sent.recv().await.is_none(),
                "the thread must have let go of `out`"
            );
        }
    }

    #[tokio::test]
    async fn keys_pass_the_escapes_and_a_disconnect_ends_the_thread() {
        let (mut forwarder, mut sent, _ours, mut input) = piped(StdinKind::Keys);
        input.write_all(b"ls\r~~").unwrap();
        let mut got = Vec::new();
        while got.len() < 4 {
            got.extend(data(sent.recv().await));
        }
        assert_eq!(got, b"ls\r~");
        input.write_all(b"\r~.after").unwrap();
        assert_eq!(data(sent.recv().await), b"\r");
        forwarder.disconnect_typed().await;
        // Nothing after `~.`, and no end of input: the connection is dropped instead.
        let ended = tokio::time::timeout(std::time::Duration::from_secs(10), sent.recv());
        assert!(ended.await.unwrap().is_none());
        forwarder.stop().await;
    }
}
