//! The client's end of a session, shared by `exec` and the REPL. A reader task opens the
//! server's frames, answers keepalive pings, and queues the rest as [`Event`]s (a bounded
//! queue: a slow terminal slows the server down, nothing grows without bound). A writer task
//! seals what we send. [`RemoteConsole::run`] sends one command line and delivers its output
//! to a [`Sink`] until its exit status arrives. File transfer messages pass through the same
//! two tasks for [`super::transfer`].

use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::mpsc;

use super::ClientError;
use super::transfer::{Reply, Request};
use crate::proto::message::MAX_TEXT;
use crate::proto::record::MAX_CHUNK;
use crate::proto::{ExitStatus, Message};
use crate::transport::{SecureChannel, SecureReader, SecureWriter, TransportError};

/// What the server sent, owned.
#[derive(Debug)]
enum Event {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    Exit(ExitStatus),
    State(String),
    Transfer(Reply),
    Closed(String),
    Failed(TransportError),
}

/// What we send.
#[derive(Debug)]
enum Outgoing {
    Exec(String),
    Stdin(Vec<u8>),
    StdinEof,
    Interrupt,
    Pong(u64),
    Transfer(Request),
    Close,
}

/// Where a command's stdin comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdinSource {
    /// Our own stdin, forwarded until EOF.
    Forward,
    /// Nothing: EOF at once.
    Closed,
}

/// Where a command's output goes.
pub enum Sink {
    /// Straight to our stdout and stderr, as it arrives.
    Terminal,
    /// Collected, for `--json`.
    Collect {
        /// Everything on stdout.
        stdout: Vec<u8>,
        /// Everything on stderr.
        stderr: Vec<u8>,
    },
}

/// How a command ended for us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The server reported its status.
    Exited(ExitStatus),
    /// Interrupted twice: we stopped waiting for it (the server kills it).
    GaveUp,
}

/// A live session with the remote console.
pub struct RemoteConsole {
    events: mpsc::Receiver<Event>,
    out: mpsc::Sender<Outgoing>,
    writer: tokio::task::JoinHandle<()>,
    cwd: String,
    /// Commands we gave up on whose remaining output must be skipped.
    abandoned: usize,
}

impl RemoteConsole {
    /// Starts the reader and writer tasks and waits for the first console state.
    pub async fn start<S>(channel: SecureChannel<S>) -> Result<Self, ClientError>
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (event_tx, events) = mpsc::channel(16);
        let (out, out_rx) = mpsc::channel(16);
        tokio::spawn(reader_task(channel.reader, event_tx, out.clone()));
        let writer = tokio::spawn(writer_task(channel.writer, out_rx));
        let mut console = Self {
            events,
            out,
            writer,
            cwd: String::new(),
            abandoned: 0,
        };
        match console.next().await? {
            Event::State(cwd) => console.cwd = cwd,
            other => return Err(unexpected(other)),
        }
        Ok(console)
    }

    /// The server's current directory.
    pub fn cwd(&self) -> &str {
        &self.cwd
    }

    /// Runs one line; with `interruptible`, Ctrl-C sends an interrupt and a second Ctrl-C
    /// within 2 s stops waiting.
    pub async fn run(
        &mut self,
        line: &str,
        stdin: StdinSource,
        sink: &mut Sink,
        interruptible: bool,
    ) -> Result<Outcome, ClientError> {
        if line.len() > MAX_TEXT {
            return Err(ClientError::LineTooLong(line.len()));
        }
        self.skip_abandoned().await?;
        self.send(Outgoing::Exec(line.to_owned())).await?;
        let forwarder = match stdin {
            StdinSource::Forward => Some(tokio::spawn(forward_stdin(self.out.clone()))),
            StdinSource::Closed => {
                self.send(Outgoing::StdinEof).await?;
                None
            }
        };
        let outcome = self.collect(sink, interruptible).await;
        if let Some(task) = forwarder {
            task.abort();
        }
        outcome
    }

    async fn collect(
        &mut self,
        sink: &mut Sink,
        interruptible: bool,
    ) -> Result<Outcome, ClientError> {
        let mut interrupted_at: Option<Instant> = None;
        loop {
            let event = tokio::select! {
                event = self.next() => event?,
                _ = tokio::signal::ctrl_c(), if interruptible => {
                    if interrupted_at.is_some_and(|t| t.elapsed() < Duration::from_secs(2)) {
                        self.abandoned += 1;
                        return Ok(Outcome::GaveUp);
                    }
                    interrupted_at = Some(Instant::now());
                    self.send(Outgoing::Interrupt).await?;
                    continue;
                }
            };
            match event {
                Event::Stdout(data) => sink.stdout(&data).await?,
                Event::Stderr(data) => sink.stderr(&data).await?,
                Event::Exit(status) => {
                    if let Event::State(cwd) = self.next().await? {
                        self.cwd = cwd;
                    }
                    return Ok(Outcome::Exited(status));
                }
                other => return Err(unexpected(other)),
            }
        }
    }

    /// Drops the output of commands we gave up on, up to and including their console state.
    async fn skip_abandoned(&mut self) -> Result<(), ClientError> {
        while self.abandoned > 0 {
            match self.next().await? {
                Event::State(cwd) => {
                    self.cwd = cwd;
                    self.abandoned -= 1;
                }
                Event::Stdout(_) | Event::Stderr(_) | Event::Exit(_) => {}
                other => return Err(unexpected(other)),
            }
        }
        Ok(())
    }

    /// Ends the session with an authenticated Close.
    pub async fn close(self) {
        if self.out.send(Outgoing::Close).await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(2), self.writer).await;
        }
    }

    /// Sends one file-transfer message (after the output of abandoned commands).
    pub(super) async fn send_transfer(&mut self, request: Request) -> Result<(), ClientError> {
        self.skip_abandoned().await?;
        self.send(Outgoing::Transfer(request)).await
    }

    /// The next file-transfer message from the server.
    pub(super) async fn transfer_reply(&mut self) -> Result<Reply, ClientError> {
        match self.next().await? {
            Event::Transfer(reply) => Ok(reply),
            other => Err(unexpected(other)),
        }
    }

    /// A file-transfer message from the server if one has already arrived.
    pub(super) fn try_transfer_reply(&mut self) -> Result<Option<Reply>, ClientError> {
        match self.events.try_recv() {
            Ok(Event::Transfer(reply)) => Ok(Some(reply)),
            Ok(Event::Closed(reason)) => Err(ClientError::Closed(reason)),
            Ok(Event::Failed(err)) => Err(ClientError::Transport(err)),
            Ok(other) => Err(unexpected(other)),
            Err(mpsc::error::TryRecvError::Empty) => Ok(None),
            Err(mpsc::error::TryRecvError::Disconnected) => {
                Err(ClientError::Closed("connection lost".into()))
            }
        }
    }

    async fn next(&mut self) -> Result<Event, ClientError> {
        match self.events.recv().await {
            Some(Event::Closed(reason)) => Err(ClientError::Closed(reason)),
            Some(Event::Failed(err)) => Err(ClientError::Transport(err)),
            Some(event) => Ok(event),
            None => Err(ClientError::Closed("connection lost".into())),
        }
    }

    async fn send(&self, msg: Outgoing) -> Result<(), ClientError> {
        self.out
            .send(msg)
            .await
            .map_err(|_| ClientError::Closed("connection lost".into()))
    }
}

fn unexpected(event: Event) -> ClientError {
    ClientError::Closed(format!("protocol error: unexpected {event:?}"))
}

impl Sink {
    async fn stdout(&mut self, data: &[u8]) -> Result<(), ClientError> {
        match self {
            Self::Terminal => write_flush(&mut tokio::io::stdout(), data).await,
            Self::Collect { stdout, .. } => {
                stdout.extend_from_slice(data);
                Ok(())
            }
        }
    }

    async fn stderr(&mut self, data: &[u8]) -> Result<(), ClientError> {
        match self {
            Self::Terminal => write_flush(&mut tokio::io::stderr(), data).await,
            Self::Collect { stderr, .. } => {
                stderr.extend_from_slice(data);
                Ok(())
            }
        }
    }
}

async fn write_flush<W: AsyncWrite + Unpin>(w: &mut W, data: &[u8]) -> Result<(), ClientError> {
    w.write_all(data).await.map_err(ClientError::Local)?;
    w.flush().await.map_err(ClientError::Local)
}

async fn forward_stdin(out: mpsc::Sender<Outgoing>) {
    let mut stdin = tokio::io::stdin();
    let mut buf = vec![0u8; MAX_CHUNK];
    loop {
        match stdin.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = out.send(Outgoing::StdinEof).await;
                return;
            }
            Ok(n) => {
                if out
                    .send(Outgoing::Stdin(buf.get(..n).unwrap_or_default().to_vec()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

async fn reader_task<R: AsyncRead>(
    mut reader: SecureReader<ReadHalf<R>>,
    events: mpsc::Sender<Event>,
    out: mpsc::Sender<Outgoing>,
) {
    loop {
        let event = match reader.recv().await {
            Ok(Message::Stdout(data)) => Event::Stdout(data.to_vec()),
            Ok(Message::Stderr(data)) => Event::Stderr(data.to_vec()),
            Ok(Message::Exit(status)) => Event::Exit(status),
            Ok(Message::ConsoleState { cwd }) => Event::State(cwd.to_owned()),
            Ok(Message::Ping(n)) => {
                let _ = out.send(Outgoing::Pong(n)).await;
                continue;
            }
            Ok(Message::Pong(_)) => continue,
            Ok(Message::Close { reason }) => {
                let _ = events.send(Event::Closed(close_reason(reason))).await;
                return;
            }
            Ok(other) => match Reply::from_message(&other) {
                Some(reply) => Event::Transfer(reply),
                None => Event::Failed(TransportError::Proto(crate::proto::ProtoError::Unexpected(
                    other.name(),
                ))),
            },
            Err(err) => Event::Failed(err),
        };
        let failed = matches!(event, Event::Failed(_));
        if events.send(event).await.is_err() || failed {
            return;
        }
    }
}

fn close_reason(reason: &str) -> String {
    if reason.is_empty() {
        "session ended".to_owned()
    } else {
        reason.to_owned()
    }
}

async fn writer_task<W: AsyncWrite>(
    mut writer: SecureWriter<WriteHalf<W>>,
    mut out: mpsc::Receiver<Outgoing>,
) {
    while let Some(msg) = out.recv().await {
        let result = match &msg {
            Outgoing::Exec(line) => writer.send(&Message::Exec { line }).await,
            Outgoing::Stdin(data) => writer.send(&Message::Stdin(data)).await,
            Outgoing::StdinEof => writer.send(&Message::StdinEof).await,
            Outgoing::Interrupt => writer.send(&Message::Interrupt).await,
            Outgoing::Pong(n) => writer.send(&Message::Pong(*n)).await,
            Outgoing::Transfer(request) => request.send(&mut writer).await,
            Outgoing::Close => {
                let _ = writer.close("").await;
                return;
            }
        };
        if result.is_err() {
            return;
        }
    }
}
