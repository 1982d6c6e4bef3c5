//! Criterion benches for the secure channel: record-layer seal+open throughput of Stdout
//! frames at the sizes seashell sends, raw AES-256-GCM seal+open at the same sizes and past
//! the frame ceiling (the comparison that says whether a larger `MAX_PLAINTEXT` would pay),
//! each RSA-3072 operation, and one whole in-memory handshake, both sides, with the
//! RSA-3072 fixture keys. The crypto groups carry the provider's name.
//!
//! Run: `cargo bench --bench channel -- --warm-up-time 1 --measurement-time 3`, and for
//! the pure-Rust provider the same with `--no-default-features --features rustcrypto`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a bench has no caller to hand an error to: a failure must stop it loudly"
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use seashell::crypto::{AeadKey, PROVIDER, PrivateKey};
use seashell::proto::handshake::server::ServerKeys;
use seashell::proto::handshake::{Established, client, server};
use seashell::proto::record::{HEADER_LEN, MAX_CHUNK, TAG_LEN, frame_len};
use seashell::proto::{
    DataFrame, DataKind, Message, RecordOpener, RecordSealer, UpdateLimits, schedule,
};

const KIB: usize = 1024;

fn size_label(bytes: usize) -> String {
    format!("{}KiB", bytes / KIB)
}

/// A sealer and the opener for the same direction, from fixed secrets.
fn record_pair() -> (RecordSealer, RecordOpener) {
    let secrets = schedule::derive(&[1; 32], &[2; 32], &[3; 32]);
    let now = Instant::now();
    (
        RecordSealer::new(
            secrets.client_to_server.clone(),
            UpdateLimits::default(),
            now,
        )
        .unwrap(),
        RecordOpener::new(secrets.client_to_server, now).unwrap(),
    )
}

/// Opens every frame in `wire` in place, as a receiver would, and returns the Stdout bytes
/// received (KeyUpdate frames, which the default limits bring every GiB, are applied).
fn open_frames(opener: &mut RecordOpener, wire: &mut [u8], now: Instant) -> usize {
    let mut received = 0;
    let mut rest = wire;
    while !rest.is_empty() {
        let (header, tail) = rest.split_at_mut(HEADER_LEN);
        let header: [u8; HEADER_LEN] = (&*header).try_into().unwrap();
        let (body, tail) = tail.split_at_mut(frame_len(header).unwrap());
        if let Some(n) = opener.open(header, body, now).unwrap() {
            match Message::decode(body.get(..n).unwrap()).unwrap() {
                Message::Stdout(data) => received += data.len(),
                other => panic!("unexpected {}", other.name()),
            }
        }
        rest = tail;
    }
    received
}

/// Seals `payload` as Stdout frames of at most [`MAX_CHUNK`] bytes, then opens them.
fn seal_open(
    sealer: &mut RecordSealer,
    opener: &mut RecordOpener,
    payload: &[u8],
    wire: &mut Vec<u8>,
    now: Instant,
) -> usize {
    wire.clear();
    for chunk in payload.chunks(MAX_CHUNK) {
        sealer.seal(&Message::Stdout(chunk), now, wire).unwrap();
    }
    open_frames(opener, wire, now)
}

fn record_seal_open(c: &mut Criterion) {
    let mut group = c.benchmark_group("record_seal_open");
    // One frame per message up to the 64 KiB chunk ceiling, then 4 frames of 64 KiB: what
    // the record layer does with 256 KiB of output.
    for (name, size) in [
        ("stdout_1_frame", 16 * KIB),
        ("stdout_1_frame", 64 * KIB),
        ("stdout_4x64KiB_frames", 256 * KIB),
    ] {
        let payload: Vec<u8> = (0..size).map(|i| i as u8).collect();
        let (mut sealer, mut opener) = record_pair();
        let mut wire = Vec::with_capacity(size + KIB);
        let now = Instant::now();
        assert_eq!(
            seal_open(&mut sealer, &mut opener, &payload, &mut wire, now),
            size
        );
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(
            BenchmarkId::new(name, size_label(size)),
            &payload,
            |b, payload| {
                b.iter(|| seal_open(&mut sealer, &mut opener, black_box(payload), &mut wire, now));
            },
        );
    }
    group.finish();
}

/// One direction's two halves apart: the sender seals on its core, the receiver opens on
/// another, so a direction's throughput is the slower of the two, not their sum.
fn record_one_side(c: &mut Criterion) {
    let mut group = c.benchmark_group("record_one_side");
    let payload: Vec<u8> = (0..MAX_CHUNK).map(|i| i as u8).collect();
    group.throughput(Throughput::Bytes(MAX_CHUNK as u64));
    let (mut sealer, _) = record_pair();
    let mut wire = Vec::with_capacity(MAX_CHUNK + KIB);
    let now = Instant::now();
    group.bench_function("seal_64KiB", |b| {
        b.iter(|| {
            wire.clear();
            sealer
                .seal(&Message::Stdout(black_box(&payload)), now, &mut wire)
                .unwrap();
        });
    });
    let (mut sealer, _) = record_pair();
    let mut frame = DataFrame::new();
    frame.payload_mut().copy_from_slice(&payload);
    group.bench_function("seal_data_in_place_64KiB", |b| {
        b.iter(|| {
            wire.clear();
            let sealed = sealer
                .seal_data(DataKind::Stdout, &mut frame, MAX_CHUNK, now, &mut wire)
                .unwrap();
            black_box(sealed.len());
        });
    });
    let (mut sealer, mut opener) = record_pair();
    group.bench_function("open_64KiB", |b| {
        b.iter_batched(
            || {
                let mut frame = Vec::with_capacity(MAX_CHUNK + KIB);
                sealer
                    .seal(&Message::Stdout(&payload), now, &mut frame)
                    .unwrap();
                frame
            },
            |mut frame| open_frames(&mut opener, &mut frame, now),
            criterion::BatchSize::SmallInput,
        );
    });
    group.finish();
}

/// Raw AES-256-GCM through the crypto provider, encrypt then decrypt in place with a
/// counter nonce: the ceiling the record layer's framing overhead is measured against,
/// including sizes it does not allow.
fn aes256gcm_raw_seal_open(c: &mut Criterion) {
    let mut group = c.benchmark_group(format!("aes256gcm_raw_seal_open/{PROVIDER}"));
    let cipher = AeadKey::new(&[7u8; 32]).unwrap();
    let aad = [0u8; HEADER_LEN];
    for size in [16 * KIB, 64 * KIB, 256 * KIB] {
        let mut buf: Vec<u8> = (0..size + TAG_LEN).map(|i| i as u8).collect();
        let mut seq = 0u64;
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(size_label(size), |b| {
            b.iter(|| {
                seq += 1;
                let mut nonce = [0u8; 12];
                nonce[4..].copy_from_slice(&seq.to_be_bytes());
                let (plain, tag_slot) = buf.split_at_mut(size);
                let tag = cipher.seal_in_place(&nonce, &aad, plain).unwrap();
                tag_slot.copy_from_slice(&tag);
                cipher.open_in_place(&nonce, &aad, &mut buf).unwrap();
                black_box(&buf);
            });
        });
    }
    group.finish();
}

/// Each RSA-3072 operation of a handshake, through the crypto provider: the host key's
/// PSS signature and its check, the transport key's OAEP wrap and unwrap.
fn rsa_operations(c: &mut Criterion) {
    let key = fixture_key("transport_rsa");
    let public = key.public_key().clone();
    let message = [5u8; 50];
    let signature = key.sign_pss_sha256(&message).unwrap();
    let wrapped = public.encrypt_oaep_sha256(b"label", &[9u8; 32]).unwrap();
    let mut group = c.benchmark_group(format!("rsa3072/{PROVIDER}"));
    group.bench_function("sign_pss_sha256", |b| {
        b.iter(|| key.sign_pss_sha256(black_box(&message)).unwrap());
    });
    group.bench_function("verify_pss_sha256", |b| {
        b.iter(|| assert!(public.verify_pss_sha256(black_box(&message), &signature)));
    });
    group.bench_function("encrypt_oaep_sha256", |b| {
        b.iter(|| {
            public
                .encrypt_oaep_sha256(b"label", black_box(&[9u8; 32]))
                .unwrap()
        });
    });
    group.bench_function("decrypt_oaep_sha256", |b| {
        b.iter(|| {
            key.decrypt_oaep_sha256(b"label", black_box(&wrapped))
                .unwrap()
        });
    });
    group.finish();
}

fn fixture_key(name: &str) -> PrivateKey {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    seashell::keys::private::from_pem(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Splits one `len || body` unit off the front of `wire`.
fn split_unit(wire: &[u8]) -> (&[u8], &[u8]) {
    let (header, rest) = wire.split_first_chunk::<HEADER_LEN>().unwrap();
    rest.split_at(u32::from_be_bytes(*header) as usize)
}

/// Opens the one message frame in `wire`; returns its plaintext.
fn open_one(opener: &mut RecordOpener, wire: &[u8]) -> Vec<u8> {
    let mut wire = wire.to_vec();
    let (header, body) = wire.split_at_mut(HEADER_LEN);
    let header: [u8; HEADER_LEN] = (&*header).try_into().unwrap();
    let n = opener.open(header, body, Instant::now()).unwrap().unwrap();
    body.get(..n).unwrap().to_vec()
}

/// Both sides of a handshake, in memory, up to the client holding AuthOk.
fn handshake(keys: &ServerKeys, identity: &PrivateKey) -> (Established, Established) {
    let now = Instant::now();
    let limits = UpdateLimits::default();
    let (c, ch) = client::start().unwrap();
    let (s, sh) = server::accept(keys, split_unit(&ch).0).unwrap();
    let (flight, mut waiting) = c
        .handle(split_unit(&sh).0)
        .unwrap()
        .trust(identity, "", None, limits, now)
        .unwrap();
    let (kt, auth_frame) = split_unit(&flight);
    let mut s = s.handle(keys, kt, limits, now).unwrap();
    let auth = open_one(s.opener(), auth_frame);
    let (_, mut server) = s.handle(&Message::decode(&auth).unwrap()).unwrap();
    let mut ok = Vec::new();
    let session_id = server.session_id;
    server
        .sealer
        .seal(&Message::AuthOk { session_id }, now, &mut ok)
        .unwrap();
    let answer = open_one(waiting.opener(), &ok);
    let client = waiting.handle(&Message::decode(&answer).unwrap()).unwrap();
    (client, server)
}

fn full_handshake(c: &mut Criterion) {
    let keys = ServerKeys::new(fixture_key("host_rsa"), fixture_key("transport_rsa"));
    let identity = fixture_key("client_rsa");
    let (client, server) = handshake(&keys, &identity);
    assert_eq!(client.session_id, server.session_id);
    let mut group = c.benchmark_group(format!("handshake/{PROVIDER}"));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("in_memory_both_sides_rsa3072", |b| {
        b.iter(|| handshake(&keys, &identity));
    });
    group.finish();
}

criterion_group!(
    benches,
    record_seal_open,
    record_one_side,
    aes256gcm_raw_seal_open,
    rsa_operations,
    full_handshake
);
criterion_main!(benches);
