//! Known-answer vectors: fixed inputs and the exact bytes the key schedule and the record
//! layer must produce, a whole handshake to replay, and two certificates that must verify,
//! pinned in `tests/vectors/*.txt`. Any change to a derivation label, the nonce
//! construction, the framing or a message encoding changes these bytes and fails here,
//! naming the entries that moved. The files are plain text (`name = hex`, `#` comments) so
//! another implementation can check itself against them; both crypto providers are checked
//! against the same files.
//!
//! After a deliberate change to the protocol, rewrite schedule.txt, record.txt and cert.txt
//! with `cargo test --test main vectors::regenerate_vectors -- --ignored` and review the
//! diff; a pinned certificate keeps its (randomized) signature unless its signed part moved.
//! handshake.txt holds randomized RSA padding, so it is replayed, not regenerated: a
//! protocol change that moves it needs a new handshake recorded with known X25519 values.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use seashell::crypto::{self, Sha256};
use seashell::keys::cert::{CertFields, CertKind, CertRefusal, Certificate};
use seashell::proto::handshake::{
    CLIENT_SIGNATURE_LABEL, KEY_TRANSPORT_LABEL, SERVER_SIGNATURE_LABEL, record_len,
};
use seashell::proto::message::{ClientHello, KeyTransport, ServerHello};
use seashell::proto::schedule::{self, SessionSecrets, TrafficSecret};
use seashell::proto::{Message, RecordOpener, RecordSealer, UpdateLimits};

use crate::proto::{client_key, fixture_key, open_all, record_body, server_keys, split_unit};

/// One pinned value: a name, a comment saying what it is, and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    name: String,
    note: String,
    bytes: Vec<u8>,
}

/// A vector file: its title and the entries in order.
struct VectorFile {
    file: &'static str,
    title: &'static str,
    about: &'static str,
    entries: Vec<Entry>,
}

impl VectorFile {
    fn new(file: &'static str, title: &'static str, about: &'static str) -> Self {
        Self {
            file,
            title,
            about,
            entries: Vec::new(),
        }
    }

    fn push(&mut self, name: &str, note: &str, bytes: &[u8]) {
        self.entries.push(Entry {
            name: name.to_owned(),
            note: note.to_owned(),
            bytes: bytes.to_vec(),
        });
    }

    fn path(&self) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/vectors")
            .join(self.file)
    }

    fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# seashell known-answer vectors: {}.", self.title);
        for line in self.about.lines() {
            let _ = writeln!(out, "# {line}");
        }
        out.push_str(
            "# Checked by tests/vectors.rs. Do not edit by hand: after a deliberate protocol change,\n\
             # regenerate with `cargo test --test main vectors::regenerate_vectors -- --ignored`\n\
             # and review the diff. Format: `name = hex`; long values continue on indented lines\n\
             # (64 hex digits each); lines starting with `#` are comments.\n",
        );
        for entry in &self.entries {
            out.push('\n');
            for line in entry.note.lines() {
                let _ = writeln!(out, "# {line}");
            }
            let hex = hex::encode(&entry.bytes);
            if hex.len() <= 64 {
                let _ = writeln!(out, "{} = {hex}", entry.name);
            } else {
                let _ = writeln!(out, "{} =", entry.name);
                for chunk in hex.as_bytes().chunks(64) {
                    let _ = writeln!(out, "    {}", String::from_utf8_lossy(chunk));
                }
            }
        }
        out
    }
}

/// Parses a vector file into `(name, bytes)` in file order.
fn parse(text: &str) -> Vec<(String, Vec<u8>)> {
    let mut entries: Vec<(String, String)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with(char::is_whitespace) {
            let (_, hex) = entries
                .last_mut()
                .unwrap_or_else(|| panic!("line {}: continuation before any entry", n + 1));
            hex.push_str(line.trim());
        } else {
            let (name, hex) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("line {}: expected `name = hex`", n + 1));
            entries.push((name.trim().to_owned(), hex.trim().to_owned()));
        }
    }
    entries
        .into_iter()
        .map(|(name, hex)| {
            let bytes = hex::decode(&hex).unwrap_or_else(|e| panic!("{name}: bad hex: {e}"));
            (name, bytes)
        })
        .collect()
}

/// Compares what the code computes now with what the file pins, naming every entry that
/// differs and the first byte where it does.
fn check(computed: &VectorFile) {
    let path = computed.path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (see the regenerate note in tests/vectors.rs)",
            path.display()
        )
    });
    let pinned = parse(&text);
    let names = |v: &[(String, Vec<u8>)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    let now: Vec<(String, Vec<u8>)> = computed
        .entries
        .iter()
        .map(|e| (e.name.clone(), e.bytes.clone()))
        .collect();
    assert_eq!(
        names(&now),
        names(&pinned),
        "{}: entry names differ",
        computed.file
    );
    let moved: Vec<String> = now
        .iter()
        .zip(&pinned)
        .filter(|((_, a), (_, b))| a != b)
        .map(|((name, a), (_, b))| {
            let at = a
                .iter()
                .zip(b)
                .position(|(x, y)| x != y)
                .unwrap_or(a.len().min(b.len()));
            format!(
                "{name} (first difference at byte {at}; {} vs {} bytes)",
                a.len(),
                b.len()
            )
        })
        .collect();
    assert!(moved.is_empty(), "{}: changed: {moved:#?}", computed.file);
}

// ---------------------------------------------------------------------------------------
// (a) Key schedule
// ---------------------------------------------------------------------------------------

/// Bytes `start, start+1, ...`: fixed inputs that are easy to recognise in a hex dump.
fn counting<const N: usize>(start: u8) -> [u8; N] {
    std::array::from_fn(|i| start.wrapping_add(i as u8))
}

fn schedule_inputs() -> ([u8; 32], [u8; 32], [u8; 32]) {
    (counting(0x00), counting(0x20), counting(0x40))
}

fn schedule_secrets() -> SessionSecrets {
    let (th, secret, shared) = schedule_inputs();
    schedule::derive(&th, &secret, &shared)
}

fn push_traffic(file: &mut VectorFile, prefix: &str, what: &str, secret: &TrafficSecret) {
    let keys = secret.keys();
    file.push(
        &format!("{prefix}.secret"),
        &format!("{what} traffic secret"),
        secret.as_bytes(),
    );
    file.push(&format!("{prefix}.key"), "its AES-256-GCM key", &keys.key);
    file.push(&format!("{prefix}.iv"), "its 12-byte IV", &keys.iv);
    let next = secret.next();
    let next_keys = next.keys();
    file.push(
        &format!("{prefix}.next.secret"),
        "the traffic secret after one KeyUpdate",
        next.as_bytes(),
    );
    file.push(&format!("{prefix}.next.key"), "its key", &next_keys.key);
    file.push(&format!("{prefix}.next.iv"), "its IV", &next_keys.iv);
}

fn schedule_vectors() -> VectorFile {
    let mut file = VectorFile::new(
        "schedule.txt",
        "key schedule (src/proto/schedule.rs)",
        "HKDF-SHA256: th, the key-transport secret and the X25519 shared value in; each\n\
         direction's traffic secret, AES-256-GCM key and IV, and its next secret, out.",
    );
    let (th, secret, shared) = schedule_inputs();
    file.push("input.th", "input: transcript hash", &th);
    file.push(
        "input.secret",
        "input: the secret carried by KeyTransport",
        &secret,
    );
    file.push("input.x25519", "input: the X25519 shared value", &shared);
    let secrets = schedule_secrets();
    push_traffic(
        &mut file,
        "c2s",
        "client-to-server",
        &secrets.client_to_server,
    );
    push_traffic(
        &mut file,
        "s2c",
        "server-to-client",
        &secrets.server_to_client,
    );
    file.push("session_id", "the session id", &secrets.session_id);
    file
}

// ---------------------------------------------------------------------------------------
// (b) Record layer
// ---------------------------------------------------------------------------------------

/// The messages of the plain record vector, in sending order.
fn record_messages(stdout: &[u8]) -> [Message<'_>; 3] {
    [
        Message::Exec { line: "echo hi" },
        Message::Stdout(stdout),
        Message::Close { reason: "bye" },
    ]
}

/// A frame limit of 2 makes the third seal cross into the next key.
const SMALL_LIMITS: UpdateLimits = UpdateLimits {
    bytes: 1 << 30,
    frames: 2,
    age: Duration::from_secs(3600),
};

fn key_update_messages() -> [Message<'static>; 3] {
    [Message::Ping(1), Message::Ping(2), Message::Ping(3)]
}

fn seal_each(sealer: &mut RecordSealer, msgs: &[Message<'_>], now: Instant) -> Vec<Vec<u8>> {
    msgs.iter()
        .map(|msg| {
            let mut wire = Vec::new();
            sealer.seal(msg, now, &mut wire).unwrap();
            wire
        })
        .collect()
}

fn record_vectors() -> VectorFile {
    let mut file = VectorFile::new(
        "record.txt",
        "record layer (src/proto/record.rs)",
        "Frames sealed from a fixed traffic secret: len: u32 BE, then AES-256-GCM with\n\
         nonce = iv XOR seq and aad = len over the type byte and payload, then the tag.",
    );
    // TrafficSecret has no public constructor from raw bytes, so the secret is the c2s
    // secret of schedule.txt.
    let secret = schedule_secrets().client_to_server;
    file.push(
        "traffic_secret",
        "the traffic secret (c2s.secret of schedule.txt); sequence numbers start at 0",
        secret.as_bytes(),
    );
    let now = Instant::now();
    let stdout: Vec<u8> = (0..=255).collect();
    let msgs = record_messages(&stdout);
    let mut sealer = RecordSealer::new(secret.clone(), UpdateLimits::default(), now).unwrap();
    let notes = [
        "Exec \"echo hi\"",
        "Stdout of the bytes 00..ff",
        "Close \"bye\"",
    ];
    for (i, (msg, wire)) in msgs
        .iter()
        .zip(seal_each(&mut sealer, &msgs, now))
        .enumerate()
    {
        let mut plain = Vec::new();
        msg.encode(&mut plain).unwrap();
        file.push(
            &format!("frame{i}.plaintext"),
            &format!("frame {i} (seq {i}): {}, type byte and payload", notes[i]),
            &plain,
        );
        file.push(
            &format!("frame{i}.wire"),
            "the sealed frame: len || ciphertext || tag",
            &wire,
        );
    }
    let mut sealer = RecordSealer::new(secret, SMALL_LIMITS, now).unwrap();
    let wires = seal_each(&mut sealer, &key_update_messages(), now);
    let notes = [
        "Ping(1) at seq 0, with a limit of 2 frames per key (a KeyUpdate is a key's last frame)",
        "Ping(2): seq 1 is the key's last, so a KeyUpdate frame (seq 1, old key) comes first,\n\
         then Ping(2) at seq 0 under the next key (c2s.next of schedule.txt)",
        "Ping(3): the same again: a KeyUpdate (seq 1, under c2s.next), then Ping(3) at seq 0\n\
         under the key after it",
    ];
    for (i, wire) in wires.iter().enumerate() {
        file.push(&format!("key_update.wire{i}"), notes[i], wire);
    }
    file
}

// ---------------------------------------------------------------------------------------
// (c) A whole handshake, replayed
// ---------------------------------------------------------------------------------------

/// The pinned handshake's entries, by name.
fn handshake_entries() -> Vec<(String, Vec<u8>)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/handshake.txt");
    parse(&std::fs::read_to_string(path).unwrap())
}

fn entry<'a>(entries: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    entries
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, b)| b.as_slice())
        .unwrap_or_else(|| panic!("{name} missing from handshake.txt"))
}

fn x25519_public(private: &[u8]) -> [u8; 32] {
    let mut base = [0u8; 32];
    base[0] = 9;
    *crypto::x25519(private.try_into().unwrap(), &base).unwrap()
}

/// Replays the pinned handshake with the building blocks of whichever crypto provider this
/// build uses: every signature verifies, the key transport unwraps, both sides' X25519
/// agree, the schedule derives the pinned session id, and sealing AuthOk gives the pinned
/// bytes. The randomized parts (PSS salts, the OAEP seed) cannot be regenerated byte for
/// byte, but they can be checked, and that is what a second implementation needs too.
fn replay_handshake(entries: &[(String, Vec<u8>)]) {
    let keys = server_keys();
    let transport = fixture_key("transport_rsa");
    let client_hello = record_body(entry(entries, "client_hello"));
    let server_hello = record_body(entry(entries, "server_hello"));
    let (kt_header, kt_body, auth_frame) = split_unit(entry(entries, "client_flight"));
    assert_eq!(record_len(kt_header).unwrap(), kt_body.len());

    let ch = ClientHello::decode(client_hello).unwrap();
    let client_private = entry(entries, "client_x25519_private");
    assert_eq!(ch.x25519, x25519_public(client_private));

    let sh = ServerHello::decode(server_hello).unwrap();
    let server_private = entry(entries, "server_x25519_private");
    assert_eq!(sh.x25519, x25519_public(server_private));
    assert_eq!(sh.host_key, keys.host_public().spki_der());
    assert_eq!(sh.transport_key, transport.public_key().spki_der());
    let mut signed = Sha256::new();
    signed.update(&(client_hello.len() as u32).to_be_bytes());
    signed.update(client_hello);
    let mut unsigned = Vec::new();
    sh.encode_unsigned(&mut unsigned).unwrap();
    signed.update(&unsigned);
    let signed = [SERVER_SIGNATURE_LABEL, &signed.finish()].concat();
    assert!(keys.host_public().verify_pss_sha256(&signed, &sh.signature));

    let kt = KeyTransport::decode(kt_body).unwrap();
    let secret = transport
        .decrypt_oaep_sha256(KEY_TRANSPORT_LABEL, &kt.ciphertext)
        .unwrap();
    let mut transcript = Sha256::new();
    for body in [client_hello, server_hello, kt_body] {
        transcript.update(&(body.len() as u32).to_be_bytes());
        transcript.update(body);
    }
    let th = transcript.finish();
    let server_shared = crypto::x25519(server_private.try_into().unwrap(), &ch.x25519).unwrap();
    let client_shared = crypto::x25519(client_private.try_into().unwrap(), &sh.x25519).unwrap();
    assert_eq!(*server_shared, *client_shared);
    let secrets = schedule::derive(&th, secret.as_slice().try_into().unwrap(), &server_shared);
    assert_eq!(secrets.session_id.as_slice(), entry(entries, "session_id"));

    let now = Instant::now();
    let mut opener = RecordOpener::new(secrets.client_to_server, now).unwrap();
    let auth = open_all(&mut opener, auth_frame).unwrap();
    assert_eq!(auth.len(), 1);
    let Message::ClientAuth {
        public_key,
        signature,
        account,
        certificate,
    } = Message::decode(&auth[0]).unwrap()
    else {
        panic!("the client flight's frame is not ClientAuth");
    };
    assert_eq!(public_key, client_key().public_key().spki_der());
    assert_eq!(account, "admin");
    assert!(certificate.is_empty());
    let client_signed = [CLIENT_SIGNATURE_LABEL, &th].concat();
    assert!(
        client_key()
            .public_key()
            .verify_pss_sha256(&client_signed, signature)
    );

    let mut sealer =
        RecordSealer::new(secrets.server_to_client, UpdateLimits::default(), now).unwrap();
    let mut auth_ok = Vec::new();
    sealer
        .seal(
            &Message::AuthOk {
                session_id: secrets.session_id,
            },
            now,
            &mut auth_ok,
        )
        .unwrap();
    assert_eq!(auth_ok, entry(entries, "auth_ok"));
}

fn all_vectors() -> [VectorFile; 2] {
    [schedule_vectors(), record_vectors()]
}

// ---------------------------------------------------------------------------------------
// (d) Certificates
// ---------------------------------------------------------------------------------------

/// The user certificate's start (2027-01-15T08:00:00Z) and end, 8 hours later.
const CERT_START: u64 = 1_800_000_000;
const CERT_END: u64 = CERT_START + 8 * 3600;

/// The two certificates pinned: a user's and a host's, both signed by tests/fixtures/ca_rsa.
fn cert_fields() -> [(&'static str, CertFields); 2] {
    let key = |name: &str| fixture_key(name).public_key().clone();
    [
        (
            "user",
            CertFields {
                kind: CertKind::User,
                key: key("client_rsa"),
                name: "ann".to_owned(),
                serial: 7,
                valid_after: CERT_START,
                valid_before: CERT_END,
                options: r#"no-files,allow="systemctl status *""#.to_owned(),
            },
        ),
        (
            "host",
            CertFields {
                kind: CertKind::Host,
                key: key("host_rsa"),
                name: "web1.lan,10.0.0.7".to_owned(),
                serial: 1 << 40,
                valid_after: CERT_START,
                valid_before: CERT_START + 30 * 86_400,
                options: String::new(),
            },
        ),
    ]
}

/// The signed part of a certificate: all but its signature field (`u16` length and bytes).
fn signed_part(cert: &Certificate) -> Vec<u8> {
    let bytes = cert.encode();
    let sig_len = fixture_key("ca_rsa").public_key().size();
    bytes[..bytes.len() - 2 - sig_len].to_vec()
}

/// `certs` are the signed certificates to pin (RSA-PSS is randomized: the pinned ones are
/// read back and verified, fresh ones only at regeneration).
fn cert_vectors(certs: &[Certificate; 2]) -> VectorFile {
    let mut file = VectorFile::new(
        "cert.txt",
        "certificates (src/keys/cert.rs, PROTOCOL.md §13)",
        "CA: tests/fixtures/ca_rsa. `user`: client_rsa's key as `ann`, serial 7, valid\n\
         2027-01-15T08:00:00Z (1800000000) to 16:00:00Z, options\n\
         `no-files,allow=\"systemctl status *\"`. `host`: host_rsa's key for\n\
         `web1.lan,10.0.0.7`, serial 2^40, valid 30 days from the same start, no options.\n\
         `*.signed` and `*.message` are deterministic; each `*.cert` was signed once (PSS is\n\
         randomized) and MUST verify. `user.tampered` (serial 8) MUST decode and fail its\n\
         signature; `user.truncated` MUST fail to decode.",
    );
    let ca = fixture_key("ca_rsa");
    for ((name, fields), pinned) in cert_fields().into_iter().zip(certs) {
        let fresh = Certificate::issue(&ca, fields).unwrap();
        let signed = signed_part(&fresh);
        file.push(
            &format!("{name}.signed"),
            "the certificate up to its signature field",
            &signed,
        );
        let mut message = b"seashell/1 certificate\0".to_vec();
        message.extend_from_slice(&signed);
        file.push(
            &format!("{name}.message"),
            "M_cert: the label, then the signed part (what the CA's RSA-PSS-SHA256 signs)",
            &message,
        );
        file.push(
            &format!("{name}.cert"),
            "the certificate: the signed part, then the signature as bytes16",
            &pinned.encode(),
        );
    }
    let user = certs[0].encode();
    let mut tampered = user.clone();
    // The serial's last byte: format, kind, key (2 + SPKI), name (2 + 3), then 8 bytes.
    let serial_end = 2 + 2 + certs[0].key_der().len() + 2 + 3 + 8;
    tampered[serial_end - 1] = 8;
    file.push(
        "user.tampered",
        "user.cert with its serial changed to 8",
        &tampered,
    );
    file.push(
        "user.truncated",
        "user.cert without its last byte",
        &user[..user.len() - 1],
    );
    file
}

/// The certificates cert.txt pins.
fn pinned_certs() -> [Certificate; 2] {
    let path = VectorFile::new("cert.txt", "", "").path();
    let pinned = parse(&std::fs::read_to_string(path).unwrap());
    ["user.cert", "host.cert"].map(|name| Certificate::decode(entry(&pinned, name)).unwrap())
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[test]
fn key_schedule_matches_vectors() {
    check(&schedule_vectors());
}

#[test]
fn record_layer_matches_vectors() {
    check(&record_vectors());
}

#[test]
fn pinned_frames_open_to_their_messages() {
    // The other direction: the pinned bytes, not our sealer's output, open to the messages.
    let file = record_vectors();
    let pinned = parse(&std::fs::read_to_string(file.path()).unwrap());
    let get = |name: &str| {
        pinned
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.clone())
            .unwrap_or_else(|| panic!("{name} missing from record.txt"))
    };
    let now = Instant::now();
    let mut opener = RecordOpener::new(schedule_secrets().client_to_server, now).unwrap();
    let stdout: Vec<u8> = (0..=255).collect();
    for (i, msg) in record_messages(&stdout).iter().enumerate() {
        let got = open_all(&mut opener, &get(&format!("frame{i}.wire"))).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(Message::decode(&got[0]).unwrap(), *msg);
    }
    let mut opener = RecordOpener::new(schedule_secrets().client_to_server, now).unwrap();
    for (i, msg) in key_update_messages().iter().enumerate() {
        let got = open_all(&mut opener, &get(&format!("key_update.wire{i}"))).unwrap();
        assert_eq!(
            got.len(),
            1,
            "the KeyUpdate frame must be applied, not delivered"
        );
        assert_eq!(Message::decode(&got[0]).unwrap(), *msg);
    }
}

#[test]
fn pinned_handshake_replays() {
    replay_handshake(&handshake_entries());
}

#[test]
fn tampered_handshake_fails_replay() {
    // The replay must be able to fail: one flipped bit in the server's signature.
    let mut entries = handshake_entries();
    let hello = entries
        .iter_mut()
        .find(|(n, _)| n == "server_hello")
        .unwrap();
    let last = hello.1.len() - 1;
    hello.1[last] ^= 1;
    assert!(std::panic::catch_unwind(|| replay_handshake(&entries)).is_err());
}

#[test]
fn certificates_match_vectors() {
    // The pinned signatures are checked by verifying them (PSS is randomized); everything
    // else, byte for byte.
    let certs = pinned_certs();
    let ca = fixture_key("ca_rsa");
    for (cert, (name, fields)) in certs.iter().zip(cert_fields()) {
        cert.verify(ca.public_key(), CERT_START).unwrap();
        assert_eq!(cert.fields(), &fields, "{name}.cert");
        let fresh = Certificate::issue(&ca, fields).unwrap();
        assert_eq!(signed_part(cert), signed_part(&fresh), "{name}.cert");
    }
    let file = cert_vectors(&certs);
    check(&file);
    let get = |name: &str| &file.entries.iter().find(|e| e.name == name).unwrap().bytes;
    let tampered = Certificate::decode(get("user.tampered")).unwrap();
    assert_eq!(tampered.fields().serial, 8);
    assert_eq!(
        tampered.verify(ca.public_key(), CERT_START),
        Err(CertRefusal::BadSignature)
    );
    assert!(Certificate::decode(get("user.truncated")).is_err());
    assert_eq!(
        certs[0].verify(fixture_key("other_rsa").public_key(), CERT_START),
        Err(CertRefusal::WrongCa)
    );
}

#[test]
#[ignore = "rewrites tests/vectors/*.txt; run only after a deliberate protocol change"]
fn regenerate_vectors() {
    for file in all_vectors() {
        let path = file.path();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, file.render()).unwrap();
        check(&file);
    }
    // A pinned certificate whose signed part has not moved keeps its signature, so that
    // regenerating for another file does not rewrite cert.txt.
    let ca = fixture_key("ca_rsa");
    let path = VectorFile::new("cert.txt", "", "").path();
    let pinned = std::fs::read_to_string(path).map_or_else(|_| Vec::new(), |text| parse(&text));
    let certs = cert_fields().map(|(name, fields)| {
        let fresh = Certificate::issue(&ca, fields).unwrap();
        pinned
            .iter()
            .find(|(n, _)| *n == format!("{name}.cert"))
            .and_then(|(_, bytes)| Certificate::decode(bytes).ok())
            .filter(|old| {
                signed_part(old) == signed_part(&fresh)
                    && old.verify(ca.public_key(), CERT_START).is_ok()
            })
            .unwrap_or(fresh)
    });
    let file = cert_vectors(&certs);
    std::fs::write(file.path(), file.render()).unwrap();
    check(&file);
}
