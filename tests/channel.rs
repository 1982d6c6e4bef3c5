//! The tokio transport over `tokio::io::duplex` and over real TCP on 127.0.0.1: handshake,
//! data both ways, authenticated close, truncation, oversized lengths, garbage.

use std::sync::Arc;
use std::time::Duration;

use seashell::proto::{Message, ProtoError, UpdateLimits};
use seashell::transport::{self, SecureChannel, TransportError};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::proto::{client_key, fixture_key, server_keys};

/// Runs both sides over the given pair of streams; the server accepts the client's key.
async fn connect_pair<S, T>(client: S, server: T) -> (SecureChannel<S>, SecureChannel<T>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let server = tokio::spawn(async move {
        let pending =
            transport::server_handshake(server, Arc::clone(server_keys()), UpdateLimits::default())
                .await
                .unwrap();
        assert_eq!(pending.claimed_key(), client_key().as_public_key());
        let (identity, channel) = pending.accept().await.unwrap();
        assert_eq!(&identity.public_key, client_key().as_public_key());
        channel
    });
    let pending = transport::client_hello(client).await.unwrap();
    assert_eq!(pending.host_key(), server_keys().host_public());
    let client = pending
        .authenticate(client_key(), UpdateLimits::default())
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
    let result = tokio::time::timeout(
        Duration::from_secs(5),
        transport::server_handshake(a, Arc::clone(server_keys()), UpdateLimits::default()),
    )
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
    let result =
        transport::server_handshake(a, Arc::clone(server_keys()), UpdateLimits::default()).await;
    assert!(matches!(
        result,
        Err(TransportError::Proto(ProtoError::Decode(_)))
    ));
}

#[tokio::test]
async fn rejected_client_sees_auth_rejected() {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let server = tokio::spawn(async move {
        let pending =
            transport::server_handshake(b, Arc::clone(server_keys()), UpdateLimits::default())
                .await
                .unwrap();
        pending.reject().await.unwrap();
    });
    let pending = transport::client_hello(a).await.unwrap();
    let result = pending
        .authenticate(&fixture_key("other_rsa"), UpdateLimits::default())
        .await;
    server.await.unwrap();
    assert!(matches!(
        result,
        Err(TransportError::Proto(ProtoError::AuthRejected))
    ));
}
