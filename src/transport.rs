//! The tokio adapter: drives the pure [`crate::proto`] handshake and record layer over any
//! `AsyncRead + AsyncWrite` (a TCP socket, or `tokio::io::duplex` in tests). It only moves
//! bytes: every decision about them is made in `proto`. Deadlines are the caller's
//! (`tokio::time::timeout` around the handshake); this layer never buffers more than one
//! frame in each direction.

use std::io;
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use crate::crypto::PublicKey;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};

use crate::framepool::FrameChunk;
use crate::proto::handshake::client::{self, ClientSigner, VerifyHostKey};
use crate::proto::handshake::server::{self, ClientIdentity, ExpectClientAuth, ServerKeys};
use crate::proto::handshake::{Established, MAX_HANDSHAKE_LEN, record_len};
use crate::proto::record::{HEADER_LEN, MAX_FRAME_LEN, frame_len};
use crate::proto::{
    DataFrame, DataKind, DecodeError, Message, ProtoError, RecordOpener, RecordSealer, UpdateLimits,
};

/// Why a secure connection failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The socket failed.
    #[error("network error: {0}")]
    Io(#[from] io::Error),
    /// The peer broke the protocol, or the stream was tampered with or cut.
    #[error(transparent)]
    Proto(#[from] ProtoError),
}

/// Read side of a secure channel.
pub struct SecureReader<R> {
    inbox: Inbox<R>,
    opener: RecordOpener,
}

/// Write side of a secure channel.
pub struct SecureWriter<W> {
    inner: W,
    sealer: RecordSealer,
    out: Vec<u8>,
}

/// Both sides of an established channel, and the session id.
pub struct SecureChannel<S> {
    /// Opens what the peer sends.
    pub reader: SecureReader<ReadHalf<S>>,
    /// Seals what we send.
    pub writer: SecureWriter<WriteHalf<S>>,
    /// The session id both sides derived.
    pub session_id: [u8; 32],
}

impl<S: AsyncRead + AsyncWrite> SecureChannel<S> {
    fn new(inbox: Inbox<S>, established: Established) -> Self {
        let (read, write) = inbox.split();
        Self {
            reader: SecureReader {
                inbox: read,
                opener: established.opener,
            },
            writer: SecureWriter::new(write, established.sealer),
            session_id: established.session_id,
        }
    }
}

/// How many bytes one read may take from the socket: two full frames, so that a fast sender
/// costs about one read per frame while every session holds only ~130 KiB for it.
const INBOX_LEN: usize = 2 * (HEADER_LEN + MAX_FRAME_LEN);
const _: () = assert!(INBOX_LEN >= HEADER_LEN + MAX_FRAME_LEN);
const _: () = assert!(INBOX_LEN >= HEADER_LEN + MAX_HANDSHAKE_LEN);

/// What was read from the peer and not yet consumed. Records (`len || body`) are handed out
/// where they lie in the buffer, to be opened in place: no byte is copied in user space
/// except a partial record's head, moved to the front when the buffer's end is reached.
struct Inbox<S> {
    inner: S,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl<S: AsyncRead + Unpin> Inbox<S> {
    fn new(inner: S) -> Self {
        Self {
            inner,
            buf: vec![0; INBOX_LEN].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// Reads until `n` unconsumed bytes are buffered (`n <= INBOX_LEN`); EOF first is
    /// truncation.
    async fn fill(&mut self, n: usize) -> Result<(), TransportError> {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        }
        if self.end - self.start >= n {
            return Ok(());
        }
        if self.start + n > self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
        }
        while self.end - self.start < n {
            let free = self.buf.get_mut(self.end..).unwrap_or_default();
            match self.inner.read(free).await? {
                0 => return Err(TransportError::Proto(ProtoError::Truncated)),
                got => self.end += got,
            }
        }
        Ok(())
    }

    /// Reads the next record; `check` bounds the length its header announces before the
    /// body is read. Returns the header and where the body lies ([`Self::get_mut`]).
    async fn next_record(
        &mut self,
        check: fn([u8; HEADER_LEN]) -> Result<usize, ProtoError>,
    ) -> Result<([u8; HEADER_LEN], Range<usize>), TransportError> {
        self.fill(HEADER_LEN).await?;
        let header: [u8; HEADER_LEN] = self
            .buf
            .get(self.start..self.start + HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(ProtoError::Truncated)?;
        let len = check(header)?;
        self.fill(HEADER_LEN + len).await?;
        let body = self.start + HEADER_LEN..self.start + HEADER_LEN + len;
        self.start = body.end;
        Ok((header, body))
    }

    /// The bytes of a record returned by the last [`Self::next_record`].
    fn get_mut(&mut self, range: Range<usize>) -> &mut [u8] {
        self.buf.get_mut(range).unwrap_or_default()
    }

    /// Reads and opens frames until one carries a message; returns where its plaintext lies.
    async fn next_frame(
        &mut self,
        opener: &mut RecordOpener,
    ) -> Result<Range<usize>, TransportError> {
        loop {
            let (header, body) = self.next_record(frame_len).await?;
            if let Some(len) = opener.open(header, self.get_mut(body.clone()), Instant::now())? {
                return Ok(body.start..body.start + len);
            }
            tracing::debug!("the peer updated its sending keys (KeyUpdate)");
        }
    }

    /// Reads the next handshake record.
    async fn handshake_record(&mut self) -> Result<&[u8], TransportError> {
        let (_, body) = self.next_record(record_len).await?;
        Ok(self.get_mut(body))
    }
}

impl<S: AsyncRead + AsyncWrite> Inbox<S> {
    /// Splits the stream; what was already read stays with the read half.
    fn split(self) -> (Inbox<ReadHalf<S>>, WriteHalf<S>) {
        let (read, write) = tokio::io::split(self.inner);
        let inbox = Inbox {
            inner: read,
            buf: self.buf,
            start: self.start,
            end: self.end,
        };
        (inbox, write)
    }
}

impl<R: AsyncRead + Unpin> SecureReader<R> {
    /// Receives the next message (KeyUpdate frames are applied and skipped). The length is
    /// checked before the body is read; EOF without Close is [`ProtoError::Truncated`]. The
    /// message borrows the receive buffer: data is decrypted where it was read.
    pub async fn recv(&mut self) -> Result<Message<'_>, TransportError> {
        let plain = self.inbox.next_frame(&mut self.opener).await?;
        Ok(Message::decode(self.inbox.get_mut(plain)).map_err(ProtoError::from)?)
    }
}

impl<W: AsyncWrite + Unpin> SecureWriter<W> {
    fn new(inner: W, sealer: RecordSealer) -> Self {
        Self {
            inner,
            sealer,
            out: Vec::new(),
        }
    }

    /// Logs a KeyUpdate the sealer sent since it had sent `before`.
    fn note_update(&self, before: u64) {
        if self.sealer.key_updates() != before {
            tracing::debug!(
                "updated our sending keys (KeyUpdate {})",
                self.sealer.key_updates()
            );
        }
    }

    /// Seals and sends one message, waiting until the socket took it (backpressure).
    pub async fn send(&mut self, msg: &Message<'_>) -> Result<(), TransportError> {
        self.out.clear();
        let updates = self.sealer.key_updates();
        self.sealer.seal(msg, Instant::now(), &mut self.out)?;
        self.note_update(updates);
        self.inner.write_all(&self.out).await?;
        Ok(())
    }

    /// Seals a chunk's data where it lies and sends it as a `kind` message: the data path,
    /// without a copy of the payload.
    pub async fn send_chunk(
        &mut self,
        kind: DataKind,
        chunk: &mut FrameChunk,
    ) -> Result<(), TransportError> {
        let len = chunk.len();
        match chunk.frame_mut() {
            Some(frame) => self.send_data(kind, frame, len).await,
            None => Ok(()),
        }
    }

    /// Seals the first `len` payload bytes of `frame` where they lie and sends them as a
    /// `kind` message: the data path, without a copy of the payload.
    pub async fn send_data(
        &mut self,
        kind: DataKind,
        frame: &mut DataFrame,
        len: usize,
    ) -> Result<(), TransportError> {
        self.out.clear();
        let updates = self.sealer.key_updates();
        let sealed = self
            .sealer
            .seal_data(kind, frame, len, Instant::now(), &mut self.out)?;
        self.note_update(updates);
        if !self.out.is_empty() {
            self.inner.write_all(&self.out).await?;
        }
        self.inner.write_all(sealed).await?;
        Ok(())
    }

    /// Sends an authenticated Close and shuts the write side down.
    pub async fn close(&mut self, reason: &str) -> Result<(), TransportError> {
        self.send(&Message::Close { reason }).await?;
        self.inner.shutdown().await?;
        Ok(())
    }
}

/// A client connection whose ServerHello verified; the caller checks [`Self::host_key`]
/// against known_hosts before calling [`Self::authenticate`].
pub struct PendingHostKey<S> {
    inbox: Inbox<S>,
    state: VerifyHostKey,
}

/// Sends ClientHello and reads the ServerHello.
pub async fn client_hello<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
) -> Result<PendingHostKey<S>, TransportError> {
    let mut inbox = Inbox::new(stream);
    let (state, hello) = client::start()?;
    inbox.inner.write_all(&hello).await?;
    let state = state.handle(inbox.handshake_record().await?)?;
    Ok(PendingHostKey { state, inbox })
}

impl<S: AsyncRead + AsyncWrite + Unpin> PendingHostKey<S> {
    /// The server's host key.
    pub fn host_key(&self) -> &PublicKey {
        self.state.host_key()
    }

    /// The host certificate the server presented (unchecked), empty for none.
    pub fn host_certificate(&self) -> &[u8] {
        self.state.host_certificate()
    }

    /// Sends KeyTransport and ClientAuth (asking for `account`, empty for none) and `ahead`,
    /// the session's first message, in one flight, and waits for the server's verdict.
    pub async fn authenticate(
        mut self,
        identity: &impl ClientSigner,
        account: &str,
        ahead: Option<&Message<'_>>,
        limits: UpdateLimits,
    ) -> Result<SecureChannel<S>, TransportError> {
        let (flight, mut waiting) =
            self.state
                .trust(identity, account, ahead, limits, Instant::now())?;
        self.inbox.inner.write_all(&flight).await?;
        let plain = self.inbox.next_frame(waiting.opener()).await?;
        let msg = Message::decode(self.inbox.get_mut(plain)).map_err(ProtoError::from)?;
        let established = waiting.handle(&msg)?;
        Ok(SecureChannel::new(self.inbox, established))
    }
}

/// A server connection whose client sent ClientAuth, not yet checked.
/// [`PendingAuth::prove`] checks its signature; only then may the key be looked up.
pub struct PendingAuth<S> {
    inbox: Inbox<S>,
    state: ExpectClientAuth,
    auth: Vec<u8>,
}

/// What the ClientAuth signature showed.
pub enum Proof<S> {
    /// The client holds the key it claims.
    Proven(ProvenClient<S>),
    /// It does not (or its ClientAuth is malformed): it can only be refused.
    Unproven(Refusal<S>),
}

/// A client that proved possession of its key; not yet told whether it is authorized.
pub struct ProvenClient<S> {
    /// The proven key.
    pub identity: ClientIdentity,
    inbox: Inbox<S>,
    established: Established,
}

/// A client to be told AuthFailed.
pub struct Refusal<S> {
    inbox: Inbox<S>,
    established: Established,
}

/// Runs a step with an RSA private-key operation (~5 ms of CPU) on tokio's blocking pool, so
/// that a burst of handshakes never stalls the runtime's workers, which carry every
/// established session's traffic.
async fn off_the_runtime<T: Send + 'static>(
    step: impl FnOnce() -> Result<T, ProtoError> + Send + 'static,
) -> Result<T, TransportError> {
    match tokio::task::spawn_blocking(step).await {
        Ok(result) => Ok(result?),
        Err(err) => Err(TransportError::Io(io::Error::other(err))),
    }
}

/// Reads a new connection's first record, its ClientHello, with no more memory than the
/// record's checked length: what a silent or slow stranger costs while it waits for a
/// handshake slot.
pub async fn read_client_hello<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<Vec<u8>, TransportError> {
    let mut header = [0u8; HEADER_LEN];
    read_exactly(stream, &mut header).await?;
    let mut body = vec![0u8; record_len(header)?];
    read_exactly(stream, &mut body).await?;
    Ok(body)
}

async fn read_exactly<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut [u8],
) -> Result<(), TransportError> {
    match stream.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => {
            Err(TransportError::Proto(ProtoError::Truncated))
        }
        Err(err) => Err(err.into()),
    }
}

/// Runs the server side of the handshake from the client's ClientHello (see
/// [`read_client_hello`]) up to its ClientAuth. The two RSA private-key operations (signing
/// ServerHello, unwrapping KeyTransport) run off the runtime's workers. `waiting(true)` is
/// called whenever the server starts waiting for the client's next message, `waiting(false)`
/// when it has it (admission tells a stalled client from a busy server by this).
pub async fn server_handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    hello: Vec<u8>,
    keys: Arc<ServerKeys>,
    limits: UpdateLimits,
    waiting: &(dyn Fn(bool) + Sync),
) -> Result<PendingAuth<S>, TransportError> {
    let mut inbox = Inbox::new(stream);
    let host = Arc::clone(&keys);
    let accepted = off_the_runtime(move || server::accept(&host, &hello)).await;
    if let Err(TransportError::Proto(ProtoError::Decode(DecodeError::BadVersion(_)))) = &accepted {
        inbox.inner.write_all(&server::version_refusal()).await?;
    }
    let (state, reply) = accepted?;
    inbox.inner.write_all(&reply).await?;
    waiting(true);
    let kt = inbox.handshake_record().await?.to_vec();
    waiting(false);
    let mut state =
        off_the_runtime(move || state.handle(&keys, &kt, limits, Instant::now())).await?;
    waiting(true);
    let plain = inbox.next_frame(state.opener()).await?;
    waiting(false);
    let auth = inbox.get_mut(plain).to_vec();
    Ok(PendingAuth { inbox, state, auth })
}

impl<S: AsyncRead + AsyncWrite + Unpin> PendingAuth<S> {
    /// Checks the ClientAuth signature (off the runtime: a 4096-bit key costs some CPU).
    pub async fn prove(self) -> Result<Proof<S>, TransportError> {
        let Self { inbox, state, auth } = self;
        let (state, checked) = tokio::task::spawn_blocking(move || {
            let checked = Message::decode(&auth)
                .map_err(ProtoError::from)
                .and_then(|msg| state.verify(&msg));
            (state, checked)
        })
        .await
        .map_err(|err| TransportError::Io(io::Error::other(err)))?;
        let established = state.into_established();
        Ok(match checked {
            Ok(identity) => Proof::Proven(ProvenClient {
                identity,
                inbox,
                established,
            }),
            Err(_) => Proof::Unproven(Refusal { inbox, established }),
        })
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> ProvenClient<S> {
    /// Sends AuthOk and opens the channel.
    pub async fn accept(self) -> Result<SecureChannel<S>, TransportError> {
        let session_id = self.established.session_id;
        let mut channel = SecureChannel::new(self.inbox, self.established);
        channel.writer.send(&Message::AuthOk { session_id }).await?;
        Ok(channel)
    }

    /// Tells an authorized client, in a Close instead of AuthOk, why it cannot have the account
    /// it asked for, and drops the connection.
    pub async fn refuse_account(self, reason: &str) -> Result<(), TransportError> {
        let mut channel = SecureChannel::new(self.inbox, self.established);
        channel.writer.close(reason).await
    }

    /// Refuses the client (its key is not authorized, or its options refuse it).
    pub fn refuse(self) -> Refusal<S> {
        Refusal {
            inbox: self.inbox,
            established: self.established,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Refusal<S> {
    /// Sends AuthFailed and an authenticated Close, then drops the connection: the same
    /// answer for every refusal.
    pub async fn send(self) -> Result<(), TransportError> {
        let mut channel = SecureChannel::new(self.inbox, self.established);
        channel.writer.send(&Message::AuthFailed).await?;
        channel.writer.close("authentication failed").await
    }
}
