//! The tokio adapter: drives the pure [`crate::proto`] handshake and record layer over any
//! `AsyncRead + AsyncWrite` (a TCP socket, or `tokio::io::duplex` in tests). It only moves
//! bytes: every decision about them is made in `proto`. Deadlines are the caller's
//! (`tokio::time::timeout` around the handshake); this layer never buffers more than one
//! frame in each direction.

use std::io;
use std::time::Instant;

use rsa::{PrivateKey, PublicKey};
use tokio::io::{
    AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, ReadHalf, WriteHalf,
};

use crate::proto::handshake::client::{self, VerifyHostKey};
use crate::proto::handshake::server::{self, ClientIdentity, ExpectClientAuth, ServerKeys};
use crate::proto::handshake::{Established, record_len};
use crate::proto::record::{HEADER_LEN, frame_len};
use crate::proto::{Message, ProtoError, RecordOpener, RecordSealer, UpdateLimits};

/// Why a secure connection failed.
#[derive(Debug, thiserror::Error)]
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
    inner: BufReader<R>,
    opener: RecordOpener,
    body: Vec<u8>,
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
    fn new(stream: S, established: Established) -> Self {
        let (read, write) = tokio::io::split(stream);
        Self {
            reader: SecureReader::new(read, established.opener),
            writer: SecureWriter::new(write, established.sealer),
            session_id: established.session_id,
        }
    }
}

/// Reads exactly `N` bytes; a clean EOF before or inside them is truncation.
async fn read_array<R: AsyncRead + Unpin, const N: usize>(
    r: &mut R,
) -> Result<[u8; N], TransportError> {
    let mut buf = [0u8; N];
    r.read_exact(&mut buf).await.map_err(eof_is_truncation)?;
    Ok(buf)
}

fn eof_is_truncation(err: io::Error) -> TransportError {
    if err.kind() == io::ErrorKind::UnexpectedEof {
        TransportError::Proto(ProtoError::Truncated)
    } else {
        TransportError::Io(err)
    }
}

impl<R: AsyncRead + Unpin> SecureReader<R> {
    fn new(inner: R, opener: RecordOpener) -> Self {
        Self {
            inner: BufReader::with_capacity(256 * 1024, inner),
            opener,
            body: Vec::new(),
        }
    }

    /// Receives the next message (KeyUpdate frames are applied and skipped). The length is
    /// checked before the body is read; EOF without Close is [`ProtoError::Truncated`].
    pub async fn recv(&mut self) -> Result<Message<'_>, TransportError> {
        let len = read_frame(&mut self.inner, &mut self.opener, &mut self.body).await?;
        let plain = self.body.get(..len).unwrap_or_default();
        Ok(Message::decode(plain).map_err(ProtoError::from)?)
    }
}

/// Reads and opens frames until one carries a message; returns its plaintext length in `body`.
async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    opener: &mut RecordOpener,
    body: &mut Vec<u8>,
) -> Result<usize, TransportError> {
    loop {
        let header = read_array::<_, HEADER_LEN>(r).await?;
        body.resize(frame_len(header)?, 0);
        r.read_exact(body).await.map_err(eof_is_truncation)?;
        if let Some(len) = opener.open(header, body, Instant::now())? {
            return Ok(len);
        }
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

    /// Seals and sends one message, waiting until the socket took it (backpressure).
    pub async fn send(&mut self, msg: &Message<'_>) -> Result<(), TransportError> {
        self.out.clear();
        self.sealer.seal(msg, Instant::now(), &mut self.out)?;
        self.inner.write_all(&self.out).await?;
        Ok(())
    }

    /// Sends an authenticated Close and shuts the write side down.
    pub async fn close(&mut self, reason: &str) -> Result<(), TransportError> {
        self.send(&Message::Close { reason }).await?;
        self.inner.shutdown().await?;
        Ok(())
    }
}

async fn read_handshake_record<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<Vec<u8>, TransportError> {
    let header = read_array::<_, HEADER_LEN>(stream).await?;
    let mut body = vec![0u8; record_len(header)?];
    stream
        .read_exact(&mut body)
        .await
        .map_err(eof_is_truncation)?;
    Ok(body)
}

/// A client connection whose ServerHello verified; the caller checks [`Self::host_key`]
/// against known_hosts before calling [`Self::authenticate`].
pub struct PendingHostKey<S> {
    stream: S,
    state: VerifyHostKey,
}

/// Sends ClientHello and reads the ServerHello.
pub async fn client_hello<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
) -> Result<PendingHostKey<S>, TransportError> {
    let (state, hello) = client::start(&mut rand::rng());
    stream.write_all(&hello).await?;
    let body = read_handshake_record(&mut stream).await?;
    Ok(PendingHostKey {
        state: state.handle(&body)?,
        stream,
    })
}

impl<S: AsyncRead + AsyncWrite + Unpin> PendingHostKey<S> {
    /// The server's host key.
    pub fn host_key(&self) -> &PublicKey {
        self.state.host_key()
    }

    /// Sends KeyTransport and ClientAuth, and waits for the server's verdict.
    pub async fn authenticate(
        mut self,
        identity: &PrivateKey,
        limits: UpdateLimits,
    ) -> Result<SecureChannel<S>, TransportError> {
        let (flight, mut waiting) =
            self.state
                .trust(identity, limits, &mut rand::rng(), Instant::now())?;
        self.stream.write_all(&flight).await?;
        let mut body = Vec::new();
        let len = read_frame(&mut self.stream, waiting.opener(), &mut body).await?;
        let msg = Message::decode(body.get(..len).unwrap_or_default()).map_err(ProtoError::from)?;
        let established = waiting.handle(&msg)?;
        Ok(SecureChannel::new(self.stream, established))
    }
}

/// A server connection whose client sent ClientAuth. The caller decides on the *claimed*
/// key ([`PendingAuth::claimed_key`]: authorized? from this address? expired?) and answers
/// with [`PendingAuth::accept`], which verifies the signature before sending AuthOk, or
/// [`PendingAuth::reject`].
pub struct PendingAuth<S> {
    stream: S,
    state: ExpectClientAuth,
    auth: Vec<u8>,
    claimed: PublicKey,
}

/// Runs the server side of the handshake up to the client's ClientAuth.
pub async fn server_handshake<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    keys: &ServerKeys,
    limits: UpdateLimits,
) -> Result<PendingAuth<S>, TransportError> {
    let hello = read_handshake_record(&mut stream).await?;
    let (state, reply) = server::accept(keys, &hello, &mut rand::rng())?;
    stream.write_all(&reply).await?;
    let kt = read_handshake_record(&mut stream).await?;
    let mut state = state.handle(keys, &kt, limits, &mut rand::rng(), Instant::now())?;
    let mut auth = Vec::new();
    let len = read_frame(&mut stream, state.opener(), &mut auth).await?;
    auth.truncate(len);
    let claimed =
        ExpectClientAuth::claimed_key(&Message::decode(&auth).map_err(ProtoError::from)?)?;
    Ok(PendingAuth {
        stream,
        state,
        auth,
        claimed,
    })
}

impl<S: AsyncRead + AsyncWrite + Unpin> PendingAuth<S> {
    /// The key the client claims; not yet proven.
    pub fn claimed_key(&self) -> &PublicKey {
        &self.claimed
    }

    /// Verifies the client's signature, sends AuthOk and opens the channel.
    pub async fn accept(self) -> Result<(ClientIdentity, SecureChannel<S>), TransportError> {
        let msg = Message::decode(&self.auth).map_err(ProtoError::from)?;
        let (identity, established) = self.state.handle(&msg)?;
        let session_id = established.session_id;
        let mut channel = SecureChannel::new(self.stream, established);
        channel.writer.send(&Message::AuthOk { session_id }).await?;
        Ok((identity, channel))
    }

    /// Sends AuthFailed and an authenticated Close, then drops the connection.
    pub async fn reject(self) -> Result<(), TransportError> {
        let mut channel = SecureChannel::new(self.stream, self.state.refuse());
        channel.writer.send(&Message::AuthFailed).await?;
        channel.writer.close("authentication failed").await
    }
}
