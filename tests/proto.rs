//! The pure protocol, end to end in memory: two endpoints, no sockets. Every negative case
//! ends in its own typed error, never a panic.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use seashell::crypto::PrivateKey;
use seashell::proto::handshake::client::{self, ExpectAuthResult};
use seashell::proto::handshake::server::{self, ServerKeys};
use seashell::proto::handshake::{Established, record_len};
use seashell::proto::record::{MAX_CHUNK, frame_len};
use seashell::proto::{
    DataFrame, DataKind, DecodeError, Message, ProtoError, RecordOpener, RecordSealer, UpdateLimits,
};

pub fn fixture_key(name: &str) -> PrivateKey {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let pem = std::fs::read_to_string(&path).unwrap();
    seashell::keys::private::from_pem(&pem).unwrap()
}

pub fn server_keys() -> &'static Arc<ServerKeys> {
    static KEYS: OnceLock<Arc<ServerKeys>> = OnceLock::new();
    KEYS.get_or_init(|| {
        Arc::new(ServerKeys::new(
            fixture_key("host_rsa"),
            fixture_key("transport_rsa"),
        ))
    })
}

pub fn client_key() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| fixture_key("client_rsa"))
}

/// Splits one `len || body` unit off the front of `wire`.
pub fn split_unit(wire: &[u8]) -> ([u8; 4], &[u8], &[u8]) {
    let header: [u8; 4] = wire[..4].try_into().unwrap();
    let len = u32::from_be_bytes(header) as usize;
    (header, &wire[4..4 + len], &wire[4 + len..])
}

pub fn record_body(wire: &[u8]) -> &[u8] {
    let (header, body, rest) = split_unit(wire);
    assert_eq!(record_len(header).unwrap(), body.len());
    assert!(rest.is_empty());
    body
}

/// Opens the frames in `wire` in order; returns each message's plaintext.
pub fn open_all(opener: &mut RecordOpener, mut wire: &[u8]) -> Result<Vec<Vec<u8>>, ProtoError> {
    let mut out = Vec::new();
    while !wire.is_empty() {
        let (header, body, rest) = split_unit(wire);
        let mut body = body.to_vec();
        if let Some(n) = opener.open(header, &mut body, Instant::now())? {
            out.push(body[..n].to_vec());
        }
        wire = rest;
    }
    Ok(out)
}

/// A whole handshake in memory; `tamper` may change any wire unit before it is delivered
/// (0 = ClientHello, 1 = ServerHello, 2 = KeyTransport + ClientAuth flight).
pub struct Pair {
    pub client: Established,
    pub server: Established,
}

fn handshake_with(tamper: impl Fn(usize, &mut Vec<u8>)) -> Result<Pair, ProtoError> {
    let keys = server_keys();
    let now = Instant::now();
    let (c, mut ch) = client::start().unwrap();
    tamper(0, &mut ch);
    let (s, mut sh) = server::accept(keys, record_body(&ch))?;
    tamper(1, &mut sh);
    let verify = c.handle(record_body(&sh))?;
    assert_eq!(verify.host_key(), keys.host_public());
    let (mut flight, waiting) =
        verify.trust(client_key(), "", None, UpdateLimits::default(), now)?;
    tamper(2, &mut flight);
    let (_, kt, auth_wire) = split_unit(&flight);
    let mut s = s.handle(keys, kt, UpdateLimits::default(), now)?;
    let auth = open_all(s.opener(), auth_wire)?;
    let (identity, mut server) = s.handle(&Message::decode(&auth[0]).map_err(ProtoError::from)?)?;
    assert_eq!(&identity.public_key, client_key().public_key());
    let mut ok = Vec::new();
    server.sealer.seal(
        &Message::AuthOk {
            session_id: server.session_id,
        },
        now,
        &mut ok,
    )?;
    let client = waiting_handle(waiting, &ok)?;
    Ok(Pair { client, server })
}

fn waiting_handle(mut waiting: ExpectAuthResult, wire: &[u8]) -> Result<Established, ProtoError> {
    let msgs = open_all(waiting.opener(), wire)?;
    waiting.handle(&Message::decode(&msgs[0]).map_err(ProtoError::from)?)
}

pub fn handshake() -> Pair {
    handshake_with(|_, _| {}).unwrap()
}

fn send(e: &mut Established, msg: Message<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    e.sealer.seal(&msg, Instant::now(), &mut out).unwrap();
    out
}

#[test]
fn handshake_agrees_on_keys_and_session_id() {
    let mut pair = handshake();
    assert_eq!(pair.client.session_id, pair.server.session_id);
    let wire = send(&mut pair.client, Message::Exec { line: "echo hi" });
    let got = open_all(&mut pair.server.opener, &wire).unwrap();
    assert_eq!(
        Message::decode(&got[0]).unwrap(),
        Message::Exec { line: "echo hi" }
    );
    let wire = send(&mut pair.server, Message::Stdout(b"hi\n"));
    let got = open_all(&mut pair.client.opener, &wire).unwrap();
    assert_eq!(Message::decode(&got[0]).unwrap(), Message::Stdout(b"hi\n"));
}

#[test]
fn two_handshakes_never_share_a_session() {
    assert_ne!(handshake().client.session_id, handshake().client.session_id);
}

/// Flips one bit at `offset` of wire unit `unit`.
fn flip(unit: usize, offset: usize) -> impl Fn(usize, &mut Vec<u8>) {
    move |u, wire| {
        if u == unit {
            wire[offset] ^= 0x01;
        }
    }
}

#[test]
fn a_version_refusal_tells_the_user_which_side_to_upgrade() {
    let (state, _) = client::start().unwrap();
    let refusal = server::version_refusal();
    let newer = [0x04, 1, 0, 9];
    let Err(err) = state.handle(record_body(&refusal)) else {
        panic!("a refusal accepted");
    };
    // Our own version in a refusal cannot happen; the advice names both sides' versions.
    assert!(
        matches!(err, ProtoError::VersionRefused { ours: 4, .. }),
        "{err:?}"
    );
    let (state, _) = client::start().unwrap();
    let err = state.handle(&newer).err().unwrap().to_string();
    assert_eq!(
        err,
        "protocol version mismatch: the server speaks version 9, this client speaks 4: upgrade this client"
    );
    let (state, _) = client::start().unwrap();
    let err = state.handle(&[0x04, 1, 0, 1]).err().unwrap().to_string();
    assert!(err.ends_with("upgrade seashell on the server"), "{err}");
}

#[test]
fn tampered_client_hello_fields_are_caught() {
    // header(4) type(1) magic(8) version(2) random(32) x25519(32)
    assert!(matches!(
        handshake_with(flip(0, 4)),
        Err(ProtoError::Decode(DecodeError::UnknownType(_)))
    ));
    assert!(matches!(
        handshake_with(flip(0, 6)),
        Err(ProtoError::Decode(DecodeError::BadMagic))
    ));
    assert!(matches!(
        handshake_with(flip(0, 14)),
        Err(ProtoError::Decode(DecodeError::BadVersion(_)))
    ));
    // Random and key share: the server signs what it received, the client checks against
    // what it sent.
    for offset in [20, 50, 78] {
        assert_eq!(
            handshake_with(flip(0, offset)).err(),
            Some(ProtoError::BadServerSignature),
            "offset {offset}"
        );
    }
}

#[test]
fn every_server_hello_byte_is_protected() {
    let keys = server_keys();
    let (_, ch) = client::start().unwrap();
    let (_, sh) = server::accept(keys, record_body(&ch)).unwrap();
    let len = sh.len();
    // Every byte of the body, sampled densely through the keys and signature.
    for offset in (4..len).step_by(7) {
        let err = handshake_with(flip(1, offset)).err();
        assert!(
            matches!(
                err,
                Some(ProtoError::BadServerSignature | ProtoError::Decode(_))
            ),
            "offset {offset}: {err:?}"
        );
    }
}

#[test]
fn wrong_host_key_signature_is_refused() {
    // A MITM with its own key can't sign for the pinned host key: the client sees a
    // different host key (the caller's known_hosts check), and a spliced-in host key
    // without the matching private key fails the signature.
    let keys = server_keys();
    let (c, ch) = client::start().unwrap();
    let (_, sh) = server::accept(keys, record_body(&ch)).unwrap();
    let mitm = ServerKeys::new(fixture_key("other_rsa"), fixture_key("transport_rsa"));
    let (_, mitm_sh) = server::accept(&mitm, record_body(&ch)).unwrap();
    // Honest signature, swapped host key: fails.
    let mut spliced = seashell::proto::message::ServerHello::decode(record_body(&sh)).unwrap();
    spliced.host_key = seashell::proto::message::ServerHello::decode(record_body(&mitm_sh))
        .unwrap()
        .host_key;
    let mut body = Vec::new();
    spliced.encode(&mut body).unwrap();
    assert_eq!(c.handle(&body).err(), Some(ProtoError::BadServerSignature));
}

#[test]
fn tampered_key_transport_fails_like_a_wrong_key() {
    // KeyTransport starts at offset 4 (header) + 1 (type) + 2 (length) = 7.
    for offset in [7, 100, 300] {
        assert_eq!(
            handshake_with(flip(2, offset)).err(),
            Some(ProtoError::BadFrame),
            "offset {offset}"
        );
    }
}

#[test]
fn oaep_garbage_takes_the_wrong_key_path() {
    let garbage = |u: usize, wire: &mut Vec<u8>| {
        if u == 2 {
            for b in &mut wire[7..7 + 384] {
                *b = 0xA5;
            }
        }
    };
    assert_eq!(handshake_with(garbage).err(), Some(ProtoError::BadFrame));
}

#[test]
fn unknown_client_key_still_proves_possession() {
    // The protocol verifies the signature; the caller decides authorization. A signature
    // made with another key than the one presented is refused.
    let keys = server_keys();
    let now = Instant::now();
    let (c, ch) = client::start().unwrap();
    let (s, sh) = server::accept(keys, record_body(&ch)).unwrap();
    let verify = c.handle(record_body(&sh)).unwrap();
    let (flight, _) = verify
        .trust(
            &fixture_key("other_rsa"),
            "",
            None,
            UpdateLimits::default(),
            now,
        )
        .unwrap();
    let (_, kt, auth_wire) = split_unit(&flight);
    let mut s = s.handle(keys, kt, UpdateLimits::default(), now).unwrap();
    let auth = open_all(s.opener(), auth_wire).unwrap();
    let Message::ClientAuth { signature, .. } = Message::decode(&auth[0]).unwrap() else {
        panic!()
    };
    let client_der = client_key().public_key().spki_der().to_vec();
    let forged = Message::ClientAuth {
        public_key: &client_der,
        signature,
        account: "",
        certificate: &[],
    };
    assert_eq!(
        s.handle(&forged).err(),
        Some(ProtoError::BadClientSignature)
    );
}

/// A server that has read KeyTransport, the rest of the client's flight (ClientAuth asking
/// for `account`, then `ahead`), and the client awaiting the verdict.
fn past_key_transport(
    account: &str,
    ahead: Option<&Message<'_>>,
) -> (server::ExpectClientAuth, Vec<u8>, ExpectAuthResult) {
    let keys = server_keys();
    let now = Instant::now();
    let (c, ch) = client::start().unwrap();
    let (s, sh) = server::accept(keys, record_body(&ch)).unwrap();
    let (flight, waiting) = c
        .handle(record_body(&sh))
        .unwrap()
        .trust(client_key(), account, ahead, UpdateLimits::default(), now)
        .unwrap();
    let (_, kt, frames) = split_unit(&flight);
    let s = s.handle(keys, kt, UpdateLimits::default(), now).unwrap();
    (s, frames.to_vec(), waiting)
}

#[test]
fn auth_failed_and_wrong_session_are_errors() {
    let (_, _, waiting) = past_key_transport("", None);
    assert_eq!(
        waiting.handle(&Message::AuthFailed).err(),
        Some(ProtoError::AuthRejected)
    );
}

#[test]
fn the_account_asked_for_reaches_the_server_and_a_close_refuses_it() {
    let (mut s, auth_wire, waiting) = past_key_transport("deploy", None);
    let auth = open_all(s.opener(), &auth_wire).unwrap();
    let (identity, _) = s.handle(&Message::decode(&auth[0]).unwrap()).unwrap();
    assert_eq!(identity.account, "deploy");
    assert_eq!(
        waiting
            .handle(&Message::Close {
                reason: "not `deploy`"
            })
            .err(),
        Some(ProtoError::AccountRefused("not `deploy`".into()))
    );
}

#[test]
fn a_message_sent_ahead_follows_client_auth_and_opens_only_after_it() {
    let ahead = Message::Exec { line: "uptime" };
    // Not in ClientAuth's place: there it is a bad frame, which ends the handshake.
    let (mut s, frames, _) = past_key_transport("", Some(&ahead));
    let (_, _, ahead_wire) = split_unit(&frames);
    let (header, body, _) = split_unit(ahead_wire);
    assert_eq!(
        s.opener()
            .open(header, &mut body.to_vec(), Instant::now())
            .err(),
        Some(ProtoError::BadFrame)
    );
    // After ClientAuth, once the server has accepted it, it is the session's first message.
    let (mut s, frames, _) = past_key_transport("", Some(&ahead));
    let (header, body, ahead_wire) = split_unit(&frames);
    let mut body = body.to_vec();
    let n = s
        .opener()
        .open(header, &mut body, Instant::now())
        .unwrap()
        .unwrap();
    let (_, mut established) = s.handle(&Message::decode(&body[..n]).unwrap()).unwrap();
    let got = open_all(&mut established.opener, ahead_wire).unwrap();
    assert_eq!(Message::decode(&got[0]).unwrap(), ahead);
}

#[test]
fn replayed_reordered_dropped_and_reflected_frames_fail() {
    let mut pair = handshake();
    let one = send(&mut pair.client, Message::Exec { line: "one" });
    let two = send(&mut pair.client, Message::Exec { line: "two" });
    // Reordered: frame 2 first.
    let mut fresh = handshake();
    let a = send(&mut fresh.client, Message::Exec { line: "a" });
    let b = send(&mut fresh.client, Message::Exec { line: "b" });
    assert_eq!(
        open_all(&mut fresh.server.opener, &b).err(),
        Some(ProtoError::BadFrame)
    );
    assert_eq!(
        open_all(&mut fresh.server.opener, &a).err(),
        Some(ProtoError::BadFrame)
    );
    // In order, then replayed.
    assert!(open_all(&mut pair.server.opener, &one).is_ok());
    assert_eq!(
        open_all(&mut pair.server.opener, &one).err(),
        Some(ProtoError::BadFrame)
    );
    // Dropped: skip a frame.
    let mut fresh = handshake();
    let _dropped = send(&mut fresh.client, Message::Exec { line: "x" });
    let next = send(&mut fresh.client, Message::Exec { line: "y" });
    assert_eq!(
        open_all(&mut fresh.server.opener, &next).err(),
        Some(ProtoError::BadFrame)
    );
    // Reflected: the client's own frame back to the client.
    assert_eq!(
        open_all(&mut pair.client.opener, &two).err(),
        Some(ProtoError::BadFrame)
    );
}

#[test]
fn bit_flips_in_length_ciphertext_and_tag_fail() {
    let template = {
        let mut p = handshake();
        send(&mut p.client, Message::Stdout(&[7u8; 100])).len()
    };
    for offset in [0, 3, 4, 50, template - 16, template - 1] {
        let mut pair = handshake();
        let mut wire = send(&mut pair.client, Message::Stdout(&[7u8; 100]));
        wire[offset] ^= 0x01;
        let header: [u8; 4] = wire[..4].try_into().unwrap();
        let mut body = wire[4..].to_vec();
        let err = pair
            .server
            .opener
            .open(header, &mut body, Instant::now())
            .err();
        assert!(
            matches!(
                err,
                Some(ProtoError::BadFrame | ProtoError::FrameTooLarge(_))
            ),
            "offset {offset}: {err:?}"
        );
    }
}

#[test]
fn huge_length_is_rejected_before_reading() {
    assert_eq!(
        frame_len(u32::MAX.to_be_bytes()),
        Err(ProtoError::FrameTooLarge(u32::MAX))
    );
    assert_eq!(
        record_len(u32::MAX.to_be_bytes()),
        Err(ProtoError::FrameTooLarge(u32::MAX))
    );
    assert!(frame_len(0u32.to_be_bytes()).is_err());
}

#[test]
fn key_update_many_times_both_ways_interleaved() {
    let limits = UpdateLimits {
        bytes: 1000,
        frames: 5,
        age: Duration::from_secs(3600),
    };
    // Record layers with tiny limits over fresh secrets from the key schedule.
    let (c2s, s2c) = fresh_secrets();
    let now = Instant::now();
    let mut c_seal = RecordSealer::new(c2s.clone(), limits, now).unwrap();
    let mut s_open = RecordOpener::new(c2s, now).unwrap();
    let mut s_seal = RecordSealer::new(s2c.clone(), limits, now).unwrap();
    let mut c_open = RecordOpener::new(s2c, now).unwrap();
    let mut updates = 0;
    for i in 0..300u32 {
        let data = vec![i as u8; (i as usize * 37) % 700];
        let mut wire = Vec::new();
        c_seal.seal(&Message::Stdin(&data), now, &mut wire).unwrap();
        if wire.len() > data.len() + 1 + 20 {
            updates += 1;
        }
        let got = open_all(&mut s_open, &wire).unwrap();
        assert_eq!(got, vec![[&[0x11u8][..], &data].concat()]);
        let mut wire = Vec::new();
        s_seal
            .seal(&Message::Stdout(&data), now, &mut wire)
            .unwrap();
        let got = open_all(&mut c_open, &wire).unwrap();
        assert_eq!(got, vec![[&[0x14u8][..], &data].concat()]);
    }
    assert!(updates >= 50, "only {updates} key updates");
    // Time also triggers an update.
    let later = now + Duration::from_secs(3601);
    let mut wire = Vec::new();
    c_seal.seal(&Message::Ping(1), later, &mut wire).unwrap();
    let (_, _, rest) = split_unit(&wire);
    assert!(!rest.is_empty(), "no KeyUpdate frame after an hour");
    assert_eq!(open_all(&mut s_open, &wire).unwrap().len(), 1);
}

/// Fresh per-direction secrets from the key schedule.
fn fresh_secrets() -> (
    seashell::proto::schedule::TrafficSecret,
    seashell::proto::schedule::TrafficSecret,
) {
    let th = seashell::crypto::random::<32>().unwrap();
    let s = seashell::proto::schedule::derive(&th, &[1; 32], &[2; 32]);
    (s.client_to_server, s.server_to_client)
}

#[test]
fn seal_data_in_place_is_the_same_frame_as_seal() {
    let limits = UpdateLimits {
        bytes: 200_000,
        frames: 1000,
        age: Duration::from_secs(3600),
    };
    let (secret, _) = fresh_secrets();
    let now = Instant::now();
    let mut by_message = RecordSealer::new(secret.clone(), limits, now).unwrap();
    let mut in_place = RecordSealer::new(secret.clone(), limits, now).unwrap();
    let mut opener = RecordOpener::new(secret, now).unwrap();
    let mut frame = DataFrame::new();
    let kinds = [
        (DataKind::Stdin, 0x11u8),
        (DataKind::Stdout, 0x14),
        (DataKind::Stderr, 0x15),
        (DataKind::FileData, 0x28),
    ];
    let mut updates = 0;
    for (i, len) in [0, 1, MAX_CHUNK - 1, MAX_CHUNK, 7, MAX_CHUNK, MAX_CHUNK, 3]
        .into_iter()
        .enumerate()
    {
        let (kind, type_byte) = kinds[i % kinds.len()];
        let data: Vec<u8> = (0..len).map(|j| (i * 31 + j) as u8).collect();
        let msg = match kind {
            DataKind::Stdin => Message::Stdin(&data),
            DataKind::Stdout => Message::Stdout(&data),
            DataKind::Stderr => Message::Stderr(&data),
            DataKind::FileData => Message::FileData(&data),
        };
        let mut expected = Vec::new();
        by_message.seal(&msg, now, &mut expected).unwrap();
        frame.payload_mut()[..len].copy_from_slice(&data);
        let mut wire = Vec::new();
        let sealed = in_place
            .seal_data(kind, &mut frame, len, now, &mut wire)
            .unwrap();
        if !wire.is_empty() {
            updates += 1;
        }
        wire.extend_from_slice(sealed);
        assert_eq!(wire, expected, "chunk {i} of {len} bytes");
        let got = open_all(&mut opener, &wire).unwrap();
        assert_eq!(got, vec![[&[type_byte][..], &data].concat()]);
    }
    assert!(updates >= 1, "the byte limit never caused a KeyUpdate");
    let mut wire = Vec::new();
    assert!(
        in_place
            .seal_data(DataKind::Stdout, &mut frame, MAX_CHUNK + 1, now, &mut wire)
            .is_err()
    );
}
