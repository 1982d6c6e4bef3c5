//! Known-answer vectors: fixed inputs and the exact bytes the key schedule, the record layer
//! and a whole seeded handshake must produce, pinned in `tests/vectors/*.txt`. Any change
//! to a derivation label, the nonce construction, the framing or a message encoding changes
//! these bytes and fails here, naming the entries that moved. The files are plain text
//! (`name = hex`, `#` comments) so another implementation can check itself against them.
//!
//! After a deliberate change to the protocol, rewrite them with
//! `cargo test --test main vectors::regenerate_vectors -- --ignored` and review the diff.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use seashell::proto::handshake::{client, server};
use seashell::proto::schedule::{self, SessionSecrets, TrafficSecret};
use seashell::proto::{Message, RecordOpener, RecordSealer, UpdateLimits};

use crate::proto::{client_key, open_all, record_body, server_keys, split_unit};

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
// (c) A whole handshake with seeded RNGs
// ---------------------------------------------------------------------------------------

const CLIENT_SEED: u64 = 1;
const SERVER_SEED: u64 = 2;

fn handshake_vectors() -> VectorFile {
    let mut file = VectorFile::new(
        "handshake.txt",
        "a whole handshake with seeded RNGs",
        "Keys: tests/fixtures host_rsa, transport_rsa, client_rsa. RNGs: rand's StdRng seeded\n\
         with 1 (client) and 2 (server). RSA blinding draws from the RNG too but cannot\n\
         change a result, so every byte is reproducible. These bytes also depend on StdRng's\n\
         algorithm and on the order in which x25519-dalek and rsa draw from the RNG: if a\n\
         dependency update moves only this file while schedule.txt and record.txt still\n\
         pass, the protocol did not change; regenerate and say so in the commit.",
    );
    let keys = server_keys();
    let now = Instant::now();
    let mut client_rng = StdRng::seed_from_u64(CLIENT_SEED);
    let mut server_rng = StdRng::seed_from_u64(SERVER_SEED);
    let (c, client_hello) = client::start(&mut client_rng);
    let (s, server_hello) =
        server::accept(keys, record_body(&client_hello), &mut server_rng).unwrap();
    let (flight, mut waiting) = c
        .handle(record_body(&server_hello))
        .unwrap()
        .trust(
            client_key(),
            "admin",
            None,
            UpdateLimits::default(),
            &mut client_rng,
            now,
        )
        .unwrap();
    let (_, kt, auth_frame) = split_unit(&flight);
    let mut s = s
        .handle(keys, kt, UpdateLimits::default(), &mut server_rng, now)
        .unwrap();
    let auth = open_all(s.opener(), auth_frame).unwrap();
    let (_, mut server) = s.handle(&Message::decode(&auth[0]).unwrap()).unwrap();
    let mut auth_ok = Vec::new();
    server
        .sealer
        .seal(
            &Message::AuthOk {
                session_id: server.session_id,
            },
            now,
            &mut auth_ok,
        )
        .unwrap();
    let answer = open_all(waiting.opener(), &auth_ok).unwrap();
    let client = waiting
        .handle(&Message::decode(&answer[0]).unwrap())
        .unwrap();
    assert_eq!(client.session_id, server.session_id);

    file.push(
        "client_hello",
        "ClientHello record (len || body)",
        &client_hello,
    );
    file.push(
        "server_hello",
        "ServerHello record; its RSA-PSS salt comes from the server RNG",
        &server_hello,
    );
    file.push(
        "client_flight",
        "KeyTransport record (RSA-OAEP seed from the client RNG), then the sealed ClientAuth\n\
         frame (RSA-PSS salt from the client RNG)",
        &flight,
    );
    file.push(
        "session_id",
        "the session id both sides derived",
        &server.session_id,
    );
    file.push(
        "auth_ok",
        "the server's first frame: AuthOk(session id), s2c seq 0",
        &auth_ok,
    );
    file
}

fn all_vectors() -> [VectorFile; 3] {
    [schedule_vectors(), record_vectors(), handshake_vectors()]
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
fn seeded_handshake_matches_vectors() {
    check(&handshake_vectors());
}

#[test]
fn seeded_handshake_is_deterministic() {
    // The handshake vector is only meaningful if RSA blinding and padding draw their
    // randomness from the given RNG alone.
    assert_eq!(handshake_vectors().entries, handshake_vectors().entries);
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
}
