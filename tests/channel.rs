//! The tokio transport over `tokio::io::duplex` and over real TCP on 127.0.0.1: handshake,
//! data both ways, authenticated close, truncation, oversized lengths, garbage.

use std::sync::Arc;
use std::time::Duration;

use seashell::proto::handshake::server::ClientIdentity;
use seashell::proto::record::MAX_CHUNK;
use seashell::proto::{DataFrame, DataKind, Message, ProtoError, UpdateLimits};
use seashell::transport::{self, PendingAuth, Proof, SecureChannel, TransportError};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::proto::{client_key, fixture_key, server_keys};

/// The server's side of the handshake up to ClientAuth, as the server runs it: the
/// ClientHello, then the rest.
pub(crate) async fn server_side<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
) -> Result<PendingAuth<S>, TransportError> {
    let hello = transport::read_client_hello(&mut stream).await?;
    transport::server_handshake(
        stream,
        hello,
        Arc::clone(server_keys()),
        UpdateLimits::default(),
        &|_| {},
    )
    .await
}

/// The server accepts the client whose ClientAuth `pending` holds, after checking its proof.
pub(crate) async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
    pending: PendingAuth<S>,
) -> (ClientIdentity, SecureChannel<S>) {
    let Proof::Proven(client) = pending.prove().await.unwrap() else {
        panic!("the client's signature did not verify");
    };
    let identity = client.identity.clone();
    (identity, client.accept().await.unwrap())
}

/// Runs both sides over the given pair of streams; the server accepts the client's key.
async fn connect_pair<S, T>(client: S, server: T) -> (SecureChannel<S>, SecureChannel<T>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let server = tokio::spawn(async move {
        let pending = server_side(server).await.unwrap();
        let (identity, channel) = accept(pending).await;
        assert_eq!(&identity.public_key, client_key().public_key());
        channel
    });
    let pending = transport::client_hello(client).await.unwrap();
    assert_eq!(pending.host_key(), server_keys().host_public());
    let client = pending
        .authenticate(client_key(), "", None, UpdateLimits::default())
        .await
        .unwrap();
    let server = server.await.unwrap();
    assert_eq!(client.session_id, server.session_id);
    (client, server)
}

async fn exchange<S, T>(mut client: SecureChannel<S>, mut server: SecureChannel<T>)
where
    S: AsyncRead + AsyncWrite + Unpin,
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    client
        .writer
        .send(&Message::Exec { line: "cat" })
        .await
        .unwrap();
    assert_eq!(
        server.reader.recv().await.unwrap(),
        Message::Exec { line: "cat" }
    );
    let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7) as u8).collect();
    let sent = big.clone();
    let sender = tokio::spawn(async move {
        for chunk in sent.chunks(seashell::proto::record::MAX_CHUNK) {
            server.writer.send(&Message::Stdout(chunk)).await.unwrap();
        }
        server.writer.close("bye").await.unwrap();
    });
    let mut got = Vec::new();
    while got.len() < big.len() {
        match client.reader.recv().await.unwrap() {
            Message::Stdout(data) => got.extend_from_slice(data),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(got, big);
    sender.await.unwrap();
    assert_eq!(
        client.reader.recv().await.unwrap(),
        Message::Close { reason: "bye" }
    );
}

#[tokio::test]
async fn handshake_and_data_over_duplex() {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let (client, server) = connect_pair(a, b).await;
    exchange(client, server).await;
}

#[tokio::test]
async fn handshake_and_data_over_tcp() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let (client, server) = connect_pair(client.unwrap(), accepted.unwrap().0).await;
    exchange(client, server).await;
}

#[tokio::test]
async fn cut_before_close_is_truncation() {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let (mut client, server) = connect_pair(a, b).await;
    drop(server);
    assert!(matches!(
        client.reader.recv().await,
        Err(TransportError::Proto(ProtoError::Truncated))
    ));
}

#[tokio::test]
async fn cut_mid_frame_is_truncation() {
    let (a, mut b) = tokio::io::duplex(1024);
    let server = tokio::spawn(async move {
        // Answer nothing but half a ServerHello header, then hang up.
        b.write_all(&[0, 0]).await.unwrap();
    });
    let result = transport::client_hello(a).await;
    server.await.unwrap();
    assert!(matches!(
        result,
        Err(TransportError::Proto(ProtoError::Truncated))
    ));
}

#[tokio::test]
async fn oversized_handshake_length_is_refused_without_allocating() {
    let (a, mut b) = tokio::io::duplex(1024);
    b.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    let result = tokio::time::timeout(Duration::from_secs(5), server_side(a))
        .await
        .unwrap();
    assert!(matches!(
        result,
        Err(TransportError::Proto(ProtoError::FrameTooLarge(u32::MAX)))
    ));
}

#[tokio::test]
async fn garbage_is_a_decode_error() {
    let (a, mut b) = tokio::io::duplex(1024);
    let mut junk = 75u32.to_be_bytes().to_vec();
    junk.extend_from_slice(&[0x42; 75]);
    b.write_all(&junk).await.unwrap();
    let result = server_side(a).await;
    assert!(matches!(
        result,
        Err(TransportError::Proto(ProtoError::Decode(_)))
    ));
}

#[tokio::test]
async fn rejected_client_sees_auth_rejected() {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let server = tokio::spawn(async move {
        let pending = server_side(b).await.unwrap();
        let Proof::Proven(client) = pending.prove().await.unwrap() else {
            panic!("the client's signature did not verify");
        };
        client.refuse().send().await.unwrap();
    });
    let pending = transport::client_hello(a).await.unwrap();
    let result = pending
        .authenticate(&fixture_key("other_rsa"), "", None, UpdateLimits::default())
        .await;
    server.await.unwrap();
    assert!(matches!(
        result,
        Err(TransportError::Proto(ProtoError::AuthRejected))
    ));
}

/// Frames of every size, sealed both ways (message and in place), read through small and
/// large pipes, so that reads end mid-header and mid-body and frames straddle the end of the
/// receive buffer: every message arrives whole and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_of_every_size_arrive_whole_through_any_pipe() {
    for capacity in [997, 64 * 1024 + 3, 1 << 20] {
        let (a, b) = tokio::io::duplex(capacity);
        let (mut client, mut server) = connect_pair(a, b).await;
        let sizes: Vec<usize> = (0..400usize)
            .map(|i| match i % 5 {
                0 => MAX_CHUNK,
                1 => (i * 7919) % MAX_CHUNK,
                2 => i % 13,
                3 => MAX_CHUNK - (i % 4),
                _ => (i * 104_729) % 5000,
            })
            .collect();
        let expected = sizes.clone();
        let sender = tokio::spawn(async move {
            let mut frame = DataFrame::new();
            for (i, &len) in sizes.iter().enumerate() {
                let data: Vec<u8> = (0..len).map(|j| (i + j) as u8).collect();
                if i % 2 == 0 {
                    server.writer.send(&Message::Stdout(&data)).await.unwrap();
                } else {
                    frame.payload_mut()[..len].copy_from_slice(&data);
                    server
                        .writer
                        .send_data(DataKind::Stdout, &mut frame, len)
                        .await
                        .unwrap();
                }
            }
            server.writer.close("done").await.unwrap();
        });
        for (i, &len) in expected.iter().enumerate() {
            // A slow reader now and then lets the pipe fill up.
            if i % 50 == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            match client.reader.recv().await.unwrap() {
                Message::Stdout(data) => {
                    assert_eq!(data.len(), len, "message {i} (pipe {capacity})");
                    assert!(
                        data.iter().enumerate().all(|(j, &b)| b == (i + j) as u8),
                        "message {i} (pipe {capacity}) corrupted"
                    );
                }
                other => panic!("message {i}: unexpected {other:?}"),
            }
        }
        assert_eq!(
            client.reader.recv().await.unwrap(),
            Message::Close { reason: "done" }
        );
        sender.await.unwrap();
    }
}
