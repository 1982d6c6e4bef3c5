//! The two handshake targets and the peer each one talks to: a fake client for the server's
//! state machine, a fake server for the client's. The fake peers do what docs/PROTOCOL.md
//! says from the outside (their own X25519 shares, OAEP, transcript and key schedule), so the
//! fuzzer's messages can be sealed into frames the real state machine opens: that is how
//! inputs get past AES-GCM to ClientAuth and AuthOk. An RSA private-key operation costs
//! milliseconds, so each stage does only the ones it cannot do without, and the shallow
//! stages (most inputs) none or one. Keys are the test fixtures (2048 bits, the smallest
//! AWS-LC loads); the provider draws its own randomness, but no decision depends on it: the
//! same input always takes the same path. Never used by the program.

use std::sync::OnceLock;
use std::time::Instant;

use crate::crypto::{self, EphemeralSecret, PrivateKey, PublicKey, Sha256};

use super::{SHORT_EPOCHS, canonical_message, check_canonical, length_prefixed};
use crate::proto::handshake::server::{self, ServerKeys};
use crate::proto::handshake::{
    CLIENT_SIGNATURE_LABEL, KEY_TRANSPORT_LABEL, SERVER_SIGNATURE_LABEL, client, put_record,
    record_len,
};
use crate::proto::message::{ClientHello, KeyTransport, ServerHello, VersionRefused};
use crate::proto::record::{HEADER_LEN, frame_len};
use crate::proto::schedule::{self, SessionSecrets};
use crate::proto::{DecodeError, Message, ProtoError, RecordOpener, RecordSealer, UpdateLimits};

/// The server target's host and transport keys.
const SERVER_HOST_PEM: &str = include_str!("../../tests/fixtures/fuzz_host_rsa");
const SERVER_TRANSPORT_PEM: &str = include_str!("../../tests/fixtures/fuzz_transport_rsa");
/// The fake client's key in the server target: the server takes client keys of 2048 bits
/// and up.
const FAKE_CLIENT_PEM: &str = include_str!("../../tests/fixtures/other_rsa");
/// The fake server's host key and transport key in the client target.
const FAKE_HOST_PEM: &str = include_str!("../../tests/fixtures/fuzz_host_rsa");
const FAKE_TRANSPORT_PEM: &str = include_str!("../../tests/fixtures/other_rsa");
/// The client's own key in the client target.
const CLIENT_PEM: &str = include_str!("../../tests/fixtures/fuzz_client_rsa");

/// The secret the fake client wraps in its KeyTransport.
const SECRET: [u8; 32] = [0x5C; 32];
/// The fake server's X25519 private scalar, the same every time.
const SERVER_SCALAR: [u8; 32] = [0x5E; 32];
/// The X25519 base point (u = 9).
const BASE_POINT: [u8; 32] = {
    let mut point = [0; 32];
    point[0] = 9;
    point
};

/// A fixture private key. They are compiled in: one that does not load is a broken build,
/// which every input would hit, so it fails the first input loudly.
fn fixture(pem: &str) -> Option<PrivateKey> {
    let key = crate::keys::private::from_pem(pem).ok();
    assert!(
        key.is_some(),
        "a fixture key in tests/fixtures does not load"
    );
    key
}

/// The handshake record at the front of `wire`, as a reader takes it: a header that
/// [`record_len`] accepts and that many bytes. Returns the body and what follows.
fn handshake_record(wire: &[u8]) -> Option<(&[u8], &[u8])> {
    let (header, rest) = wire.split_first_chunk::<HEADER_LEN>()?;
    rest.split_at_checked(record_len(*header).ok()?)
}

/// `body` as a handshake record: its length, then itself.
fn record(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    put_record(&mut out, body);
    out
}

/// The transcript hash after these handshake record bodies.
fn transcript_hash(bodies: &[&[u8]]) -> [u8; 32] {
    let mut hash = Sha256::new();
    for body in bodies {
        hash.update(&record(body));
    }
    hash.finish()
}

/// The X25519 shared value of `ours` and `theirs`; all zeros for a low-order share.
fn shared(ours: EphemeralSecret, theirs: [u8; 32]) -> [u8; 32] {
    ours.agree(&theirs)
        .map(|shared| *shared)
        .unwrap_or_default()
}

/// Seals `msg` (after a KeyUpdate, when one is due) and has `opener` open what was sealed,
/// as a peer's reader would: it must open to exactly the message's encoding, which is
/// returned. `None` when the message does not fit in a frame.
fn deliver(
    sealer: &mut RecordSealer,
    opener: &mut RecordOpener,
    msg: &Message<'_>,
    now: Instant,
) -> Option<Vec<u8>> {
    let mut wire = Vec::new();
    sealer.seal(msg, now, &mut wire).ok()?;
    let mut encoding = Vec::new();
    assert!(
        msg.encode(&mut encoding).is_ok(),
        "a sealed message does not encode"
    );
    let mut plain = None;
    let mut rest = wire.as_slice();
    while let Some((header, after)) = rest.split_first_chunk::<HEADER_LEN>() {
        let body = frame_len(*header)
            .ok()
            .and_then(|len| after.split_at_checked(len));
        assert!(body.is_some(), "the sealer made a frame a reader refuses");
        let (body, after) = body.unwrap_or_default();
        let mut body = body.to_vec();
        let opened = opener.open(*header, &mut body, now);
        assert!(
            opened.is_ok(),
            "the fake peer's keys are not the state machine's: {opened:?}"
        );
        if let Ok(Some(n)) = opened {
            body.truncate(n);
            plain = Some(body);
        }
        rest = after;
    }
    assert_eq!(plain.as_ref(), Some(&encoding), "a frame opened to another");
    plain
}

// ---------------------------------------------------------------------------------------
// The server's state machine, fed by a fake client
// ---------------------------------------------------------------------------------------

/// The server's handshake state machine fed the client's side. The first byte chooses the
/// stage; the rest, by stage:
/// - 0: the client's first record (header and body): [`server::accept`];
/// - 1: a 32-byte X25519 share for a ClientHello, then the KeyTransport record and frames:
///   [`server::ExpectKeyTransport::handle`] (low-order shares, any ciphertext);
/// - 2: `flags: u8`, then messages (`len: u16 || encoding` each): an honest ClientHello and
///   KeyTransport from the fake client, then the first message sealed as the client's first
///   frame ([`ExpectClientAuth::claimed_key`] and `handle`), or with `flags & 1` a ClientAuth
///   the fake client signs; once authenticated, the other messages are sealed and opened in
///   turn.
pub fn server_handshake(data: &[u8]) {
    let Some((&stage, rest)) = data.split_first() else {
        return;
    };
    match stage % 3 {
        0 => server_reads_hello(rest),
        1 => server_reads_key_transport(rest),
        _ => server_reads_client_auth(rest),
    }
}

/// The server's keys: the test host key and transport key.
fn server_keys() -> Option<&'static ServerKeys> {
    static KEYS: OnceLock<Option<ServerKeys>> = OnceLock::new();
    KEYS.get_or_init(|| {
        Some(ServerKeys::new(
            fixture(SERVER_HOST_PEM)?,
            fixture(SERVER_TRANSPORT_PEM)?,
        ))
    })
    .as_ref()
}

fn server_reads_hello(wire: &[u8]) {
    let Some((body, _)) = handshake_record(wire) else {
        return;
    };
    let Some(keys) = server_keys() else { return };
    let decoded = ClientHello::decode(body);
    match server::accept(keys, body) {
        Ok((_, reply)) => {
            check_canonical(body, decoded, |hello, out| {
                hello.encode(out);
                Ok(())
            });
            let reply = handshake_record(&reply).map(|(body, _)| ServerHello::decode(body));
            assert!(
                matches!(reply, Some(Ok(_))),
                "the server's ServerHello is not one"
            );
        }
        Err(err) => {
            assert!(decoded.is_err(), "a ClientHello that decodes was refused");
            assert!(matches!(err, ProtoError::Decode(_)), "{err:?}");
            if let ProtoError::Decode(DecodeError::BadVersion(_)) = err {
                let refusal = server::version_refusal();
                let body = handshake_record(&refusal).map(|(body, _)| body);
                assert!(body.is_some_and(|body| VersionRefused::decode(body).is_ok()));
            }
        }
    }
}

fn server_reads_key_transport(data: &[u8]) {
    let Some((x25519, wire)) = data.split_first_chunk::<32>() else {
        return;
    };
    let mut hello = Vec::new();
    ClientHello {
        random: [0xC1; 32],
        x25519: *x25519,
    }
    .encode(&mut hello);
    let Some(keys) = server_keys() else { return };
    let accepted = server::accept(keys, &hello);
    assert!(accepted.is_ok(), "a well-formed ClientHello was refused");
    let (Ok((state, _)), Some((body, frames))) = (accepted, handshake_record(wire)) else {
        return;
    };
    let now = Instant::now();
    match state.handle(keys, body, UpdateLimits::default(), now) {
        Ok(mut state) => {
            assert!(KeyTransport::decode(body).is_ok());
            // Frames from a client whose secret the server may not share: they open or not,
            // and whatever opens is handled.
            let Some((header, rest)) = frames.split_first_chunk::<HEADER_LEN>() else {
                return;
            };
            let announced = frame_len(*header).unwrap_or(0);
            let mut frame = rest.get(..announced).unwrap_or(rest).to_vec();
            if let Ok(Some(n)) = state.opener().open(*header, &mut frame, now)
                && let Some(msg) = frame.get(..n).and_then(|p| Message::decode(p).ok())
            {
                let _ = state.handle(&msg);
            }
        }
        Err(err) => assert!(
            match err {
                ProtoError::Decode(_) => KeyTransport::decode(body).is_err(),
                ProtoError::WeakKeyShare => true,
                _ => false,
            },
            "{err:?}"
        ),
    }
}

/// A client key of the fixtures and its SubjectPublicKeyInfo DER.
type ClientKey = (PrivateKey, Vec<u8>);

fn client_key(cell: &'static OnceLock<Option<ClientKey>>, pem: &str) -> Option<&'static ClientKey> {
    cell.get_or_init(|| {
        let key = fixture(pem)?;
        let der = key.public_key().spki_der().to_vec();
        Some((key, der))
    })
    .as_ref()
}

fn server_reads_client_auth(data: &[u8]) {
    let Some((&flags, messages)) = data.split_first() else {
        return;
    };
    let signed = flags & 1 == 1;
    let now = Instant::now();
    static FAKE_CLIENT: OnceLock<Option<ClientKey>> = OnceLock::new();
    let (Some(keys), Some((identity, identity_der))) =
        (server_keys(), client_key(&FAKE_CLIENT, FAKE_CLIENT_PEM))
    else {
        return;
    };
    let Ok(share) = EphemeralSecret::generate() else {
        return;
    };
    let mut hello = Vec::new();
    ClientHello {
        random: [0xC1; 32],
        x25519: share.public(),
    }
    .encode(&mut hello);
    let accepted = server::accept(keys, &hello);
    assert!(
        accepted.is_ok(),
        "the fake client's ClientHello was refused"
    );
    let Ok((state, reply)) = accepted else { return };
    let reply = handshake_record(&reply).map(|(body, _)| body);
    let parsed = reply.and_then(|body| ServerHello::decode(body).ok());
    let transport = parsed
        .as_ref()
        .and_then(|hello| PublicKey::from_spki_der(&hello.transport_key).ok());
    let ciphertext =
        transport.and_then(|key| key.encrypt_oaep_sha256(KEY_TRANSPORT_LABEL, &SECRET).ok());
    let mut key_transport = Vec::new();
    let encoded =
        ciphertext.map(|ciphertext| KeyTransport { ciphertext }.encode(&mut key_transport));
    assert!(
        matches!(encoded, Some(Ok(()))),
        "no KeyTransport for the server's ServerHello"
    );
    let (Some(reply), Some(parsed)) = (reply, parsed) else {
        return;
    };
    let state = state.handle(keys, &key_transport, UpdateLimits::default(), now);
    assert!(state.is_ok(), "the fake client's KeyTransport was refused");
    let Ok(mut state) = state else { return };

    let th = transcript_hash(&[&hello, reply, &key_transport]);
    let secrets = schedule::derive(&th, &SECRET, &shared(share, parsed.x25519));
    let Ok(mut sealer) = RecordSealer::new(secrets.client_to_server.clone(), SHORT_EPOCHS, now)
    else {
        return;
    };
    let mut chunks = length_prefixed(messages).filter_map(canonical_message);
    let signature = if signed {
        let signature = identity
            .sign_pss_sha256(&[CLIENT_SIGNATURE_LABEL, &th].concat())
            .ok();
        assert!(signature.is_some(), "the fake client cannot sign");
        signature.unwrap_or_default()
    } else {
        Vec::new()
    };
    let first = if signed {
        Some(Message::ClientAuth {
            public_key: identity_der,
            signature: &signature,
            account: "",
            certificate: &[],
        })
    } else {
        chunks.next()
    };
    let Some(plain) = first.and_then(|msg| deliver(&mut sealer, state.opener(), &msg, now)) else {
        return;
    };
    let Ok(msg) = Message::decode(&plain) else {
        return;
    };
    // Verifying does not consume the state: the same answer twice.
    let first_look = state.verify(&msg).map(|client| client.public_key);
    match state.handle(&msg) {
        Ok((client, mut established)) => {
            assert!(first_look.is_ok_and(|key| key == client.public_key));
            assert_eq!(established.session_id, secrets.session_id);
            if signed {
                assert_eq!(&client.public_key_der, identity_der);
            }
            for msg in chunks.filter(|msg| *msg != Message::KeyUpdate) {
                deliver(&mut sealer, &mut established.opener, &msg, now);
            }
        }
        Err(err) => {
            assert!(
                !signed,
                "the fake client's signed ClientAuth was refused: {err:?}"
            );
            assert!(
                matches!(
                    err,
                    ProtoError::Unexpected(_)
                        | ProtoError::Decode(DecodeError::Invalid("client key"))
                        | ProtoError::BadClientSignature
                ),
                "{err:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// The client's state machine, fed by a fake server
// ---------------------------------------------------------------------------------------

/// The client's handshake state machine fed the server's side. The first byte chooses the
/// stage; the rest, by stage:
/// - even: the server's first record (header and body) after our ClientHello:
///   [`client::ExpectServerHello::handle`] (ServerHello or VersionRefused);
/// - odd: `flags: u8`, then messages (`len: u16 || encoding` each): the fake server's signed
///   ServerHello, the client's KeyTransport and ClientAuth (which the fake server checks),
///   then the first message sealed as the server's answer
///   ([`client::ExpectAuthResult::handle`]), or with `flags & 1` the right AuthOk; once
///   established, the other messages are sealed and opened in turn.
pub fn client_handshake(data: &[u8]) {
    let Some((&stage, rest)) = data.split_first() else {
        return;
    };
    if stage % 2 == 0 {
        client_reads_server_hello(rest);
    } else {
        client_reads_auth_result(rest);
    }
}

fn client_reads_server_hello(wire: &[u8]) {
    let Some((body, _)) = handshake_record(wire) else {
        return;
    };
    let Ok((state, _)) = client::start() else {
        return;
    };
    match state.handle(body) {
        Ok(verified) => {
            // Only a ServerHello signed over our ClientHello gets here.
            check_canonical(body, ServerHello::decode(body), ServerHello::encode);
            assert_eq!(
                verified.host_key().spki_der().to_vec(),
                verified.host_key_der()
            );
        }
        Err(err) => {
            let expected = match &err {
                ProtoError::VersionRefused { theirs, .. } => {
                    VersionRefused::decode(body).is_ok_and(|refusal| refusal.versions == *theirs)
                }
                ProtoError::Decode(_) | ProtoError::BadServerSignature => true,
                _ => false,
            };
            assert!(expected, "{err:?}");
            let _ = err.to_string();
        }
    }
}

/// The fake server of the client target: its keys, and its X25519 share, the same every time.
struct FakeServer {
    /// Signs each ServerHello.
    host: PrivateKey,
    /// Decrypts the client's KeyTransport.
    transport: PrivateKey,
    /// Our X25519 public share.
    share: [u8; 32],
}

fn fake_server() -> Option<&'static FakeServer> {
    static SERVER: OnceLock<Option<FakeServer>> = OnceLock::new();
    SERVER.get_or_init(FakeServer::new).as_ref()
}

impl FakeServer {
    fn new() -> Option<Self> {
        let share = crypto::x25519(&SERVER_SCALAR, &BASE_POINT).ok()?;
        Some(Self {
            host: fixture(FAKE_HOST_PEM)?,
            transport: fixture(FAKE_TRANSPORT_PEM)?,
            share: *share,
        })
    }

    /// The ServerHello body answering the ClientHello body `hello`, signed.
    fn answer(&self, hello: &[u8]) -> Option<Vec<u8>> {
        let mut reply = ServerHello {
            random: [0x5E; 32],
            x25519: self.share,
            host_key: self.host.public_key().spki_der().to_vec(),
            transport_key: self.transport.public_key().spki_der().to_vec(),
            signature: Vec::new(),
            certificate: Vec::new(),
        };
        let mut unsigned = Vec::new();
        let encoded = reply.encode_unsigned(&mut unsigned);
        let mut signed = Sha256::new();
        signed.update(&record(hello));
        signed.update(&unsigned);
        let message = [SERVER_SIGNATURE_LABEL, &signed.finish()].concat();
        let signature = self.host.sign_pss_sha256(&message);
        assert!(
            encoded.is_ok() && signature.is_ok(),
            "the fake server cannot sign"
        );
        reply.signature = signature.ok()?;
        let mut body = Vec::new();
        reply.encode(&mut body).ok()?;
        Some(body)
    }

    /// Takes the client's KeyTransport and ClientAuth flight after `hello` and `reply`:
    /// unwraps the secret, derives the session's keys, and checks that ClientAuth opens and
    /// is signed by `identity_der`.
    fn receive_flight(
        &self,
        (hello, reply): (&[u8], &[u8]),
        flight: &[u8],
        (identity, identity_der): &ClientKey,
        now: Instant,
    ) -> Option<SessionSecrets> {
        let (body, frame) = handshake_record(flight)?;
        let ciphertext = KeyTransport::decode(body).ok()?.ciphertext;
        let secret = self
            .transport
            .decrypt_oaep_sha256(KEY_TRANSPORT_LABEL, &ciphertext)
            .ok()
            .and_then(|plain| <[u8; 32]>::try_from(plain.as_slice()).ok());
        assert!(
            secret.is_some(),
            "the client's KeyTransport does not unwrap"
        );
        let client_share = ClientHello::decode(hello).ok()?.x25519;
        let th = transcript_hash(&[hello, reply, body]);
        let shared = crypto::x25519(&SERVER_SCALAR, &client_share).ok()?;
        let secrets = schedule::derive(&th, &secret?, &shared);

        let mut opener = RecordOpener::new(secrets.client_to_server.clone(), now).ok()?;
        let (header, body) = frame.split_first_chunk::<HEADER_LEN>()?;
        let mut body = body.to_vec();
        let opened = opener.open(*header, &mut body, now);
        let auth = opened
            .ok()
            .flatten()
            .and_then(|n| body.get(..n))
            .and_then(|plain| Message::decode(plain).ok());
        let signed = match auth {
            Some(Message::ClientAuth {
                public_key,
                signature,
                ..
            }) => {
                public_key == identity_der
                    && identity
                        .public_key()
                        .verify_pss_sha256(&[CLIENT_SIGNATURE_LABEL, &th].concat(), signature)
            }
            _ => false,
        };
        assert!(
            signed,
            "the client's first frame is not its signed ClientAuth"
        );
        Some(secrets)
    }
}

fn client_reads_auth_result(data: &[u8]) {
    let Some((&flags, messages)) = data.split_first() else {
        return;
    };
    let confirmed = flags & 1 == 1;
    let now = Instant::now();
    static CLIENT: OnceLock<Option<ClientKey>> = OnceLock::new();
    let (Some(server), Some(client)) = (fake_server(), client_key(&CLIENT, CLIENT_PEM)) else {
        return;
    };
    let Ok((state, hello)) = client::start() else {
        return;
    };
    let Some(hello) = handshake_record(&hello).map(|(body, _)| body.to_vec()) else {
        return;
    };
    let Some(reply) = server.answer(&hello) else {
        return;
    };
    let verified = state.handle(&reply);
    assert!(
        verified.is_ok(),
        "the fake server's ServerHello was refused"
    );
    let Ok(verified) = verified else { return };
    assert_eq!(verified.host_key_der(), server.host.public_key().spki_der());
    let trusted = verified.trust(&client.0, "", None, UpdateLimits::default(), now);
    assert!(trusted.is_ok(), "the client cannot answer the fake server");
    let Ok((flight, mut state)) = trusted else {
        return;
    };
    let Some(secrets) = server.receive_flight((&hello, &reply), &flight, client, now) else {
        return;
    };

    let Ok(mut sealer) = RecordSealer::new(secrets.server_to_client.clone(), SHORT_EPOCHS, now)
    else {
        return;
    };
    let mut chunks = length_prefixed(messages).filter_map(canonical_message);
    let auth_ok = Message::AuthOk {
        session_id: secrets.session_id,
    };
    let first = if confirmed {
        Some(auth_ok)
    } else {
        chunks.next()
    };
    let Some(plain) = first.and_then(|msg| deliver(&mut sealer, state.opener(), &msg, now)) else {
        return;
    };
    let Ok(msg) = Message::decode(&plain) else {
        return;
    };
    match state.handle(&msg) {
        Ok(mut established) => {
            assert_eq!(msg, auth_ok);
            assert_eq!(established.session_id, secrets.session_id);
            for msg in chunks.filter(|msg| *msg != Message::KeyUpdate) {
                deliver(&mut sealer, &mut established.opener, &msg, now);
            }
        }
        Err(err) => {
            assert!(!confirmed, "the right AuthOk was refused: {err:?}");
            assert!(
                matches!(
                    err,
                    ProtoError::SessionMismatch
                        | ProtoError::AuthRejected
                        | ProtoError::AccountRefused(_)
                        | ProtoError::Unexpected(_)
                ),
                "{err:?}"
            );
        }
    }
}
