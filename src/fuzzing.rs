//! The one entry point per fuzz target: `pub fn TARGET(data: &[u8])`, called by the
//! cargo-fuzz crate in `fuzz/` (one three-line target each) and by `tests/corpus.rs`, which
//! replays the committed corpora on stable Rust. Each function feeds arbitrary bytes to a
//! parser or state machine that takes hostile input (from the network, or from a file another
//! user may write) and must never panic on any input, except through an `assert!` of an
//! invariant the code promises (one encoding per message, a parse that survives its own
//! output, a path that cannot escape). It owns no logic of the program: it must never be used
//! by the program itself, only by `fuzz/` and the tests.

mod handshake;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::crypto::PublicKey;

use crate::audit::chain::{Event, check_checkpoint};
use crate::audit::verify::verify_files;
use crate::config::ConfigFile;
use crate::fileio::partial::temp_path;
use crate::fileio::tree::{join_remote, relative_path};
use crate::keys::authorized::{AuthorizedKey, AuthorizedKeys, ExpiryDate, KeyOption};
use crate::keys::cidr::Cidr;
use crate::keys::known_hosts::{HostKeyStatus, KnownHosts, canonical_host_port};
use crate::keys::public;
use crate::proto::handshake::{MAX_HANDSHAKE_LEN, record_len};
use crate::proto::message::{ClientHello, KeyTransport, ServerHello, VersionRefused};
use crate::proto::record::{HEADER_LEN, MAX_FRAME_LEN, TAG_LEN, frame_len};
use crate::proto::schedule::{self, TrafficSecret};
use crate::proto::{
    DecodeError, EncodeError, Message, ProtoError, RecordOpener, RecordSealer, UpdateLimits,
};
use crate::server::ServerSettings;
use crate::server::policy::{Policy, Run};

pub use handshake::{client_handshake, server_handshake};

/// The test client's public key line (`tests/fixtures/client_rsa.pub`).
const CLIENT_PUB: &str = include_str!("../tests/fixtures/client_rsa.pub");
/// The test host's public key line (`tests/fixtures/host_rsa.pub`): what the audit log's
/// checkpoints are checked against.
const HOST_PUB: &str = include_str!("../tests/fixtures/host_rsa.pub");

/// Key updates every few frames, so that short inputs cross epochs.
const SHORT_EPOCHS: UpdateLimits = UpdateLimits {
    bytes: 1 << 30,
    frames: 3,
    age: Duration::from_secs(3600),
};

// ---------------------------------------------------------------------------------------
// record: frame and handshake record lengths, and the record opener
// ---------------------------------------------------------------------------------------

/// The record layer. The first byte chooses: even, the rest is a frame from a peer without
/// the key (a header, then its body), which must never open; odd, the rest is
/// `tamper_at: u16 || xor: u8 || messages`, each message `len: u16 || encoding`, sealed with
/// key updates every few frames and the byte at `tamper_at` XORed: every frame before the
/// changed one opens to exactly what was sealed, and the changed one never opens.
pub fn record(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if let Some((header, _)) = rest.split_first_chunk::<HEADER_LEN>() {
        check_length_checks(*header);
    }
    if mode % 2 == 0 {
        forged_frame(rest);
    } else {
        sealed_stream(rest);
    }
}

/// `frame_len` and `record_len` accept exactly their ranges and give the length announced.
fn check_length_checks(header: [u8; HEADER_LEN]) {
    let announced = u32::from_be_bytes(header);
    let within = |low: usize, high: usize| {
        usize::try_from(announced).is_ok_and(|n| (low..=high).contains(&n))
    };
    match frame_len(header) {
        Ok(n) => assert!(within(TAG_LEN + 1, MAX_FRAME_LEN) && u32::try_from(n) == Ok(announced)),
        Err(err) => {
            assert!(!within(TAG_LEN + 1, MAX_FRAME_LEN));
            assert_eq!(err, ProtoError::FrameTooLarge(announced));
        }
    }
    match record_len(header) {
        Ok(n) => assert!(within(1, MAX_HANDSHAKE_LEN) && u32::try_from(n) == Ok(announced)),
        Err(err) => {
            assert!(!within(1, MAX_HANDSHAKE_LEN));
            assert_eq!(err, ProtoError::FrameTooLarge(announced));
        }
    }
}

/// The traffic secret both ends of the record target use: fixed, no handshake.
fn fixed_secret() -> TrafficSecret {
    schedule::derive(&[3; 32], &[4; 32], &[5; 32]).client_to_server
}

/// A header and a body (as many bytes as announced, or all there are) made without the key:
/// the opener refuses them, with the length check's error when the header is out of range.
fn forged_frame(wire: &[u8]) {
    let Some((header, body)) = wire.split_first_chunk::<HEADER_LEN>() else {
        return;
    };
    let now = Instant::now();
    let Ok(mut opener) = RecordOpener::new(fixed_secret(), now) else {
        return;
    };
    let announced = usize::try_from(u32::from_be_bytes(*header)).unwrap_or(usize::MAX);
    let mut body = body.get(..announced).unwrap_or(body).to_vec();
    let opened = opener.open(*header, &mut body, now);
    match frame_len(*header) {
        Ok(_) => assert_eq!(opened, Err(ProtoError::BadFrame)),
        Err(too_large) => assert_eq!(opened, Err(too_large)),
    }
}

fn sealed_stream(data: &[u8]) {
    let Some((tamper_at, rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let Some((&xor, messages)) = rest.split_first() else {
        return;
    };
    let now = Instant::now();
    let (Ok(mut sealer), Ok(mut opener)) = (
        RecordSealer::new(fixed_secret(), SHORT_EPOCHS, now),
        RecordOpener::new(fixed_secret(), now),
    ) else {
        return;
    };
    let mut wire = Vec::new();
    let mut sent = Vec::new();
    for chunk in length_prefixed(messages) {
        // The sealer makes its own KeyUpdates; one sealed by hand would leave it behind.
        let Some(msg) = canonical_message(chunk).filter(|m| *m != Message::KeyUpdate) else {
            continue;
        };
        if sealer.seal(&msg, now, &mut wire).is_ok() {
            sent.push(chunk);
        }
    }
    let tamper_at = usize::from(u16::from_be_bytes(*tamper_at));
    let tampered = xor != 0 && tamper_at < wire.len();
    if let Some(byte) = wire.get_mut(tamper_at) {
        *byte ^= xor;
    }
    let mut expected = sent.into_iter();
    let mut at = 0;
    while let Some(header) = wire.get(at..).and_then(|w| w.first_chunk::<HEADER_LEN>()) {
        let end = frame_len(*header)
            .ok()
            .and_then(|len| at.checked_add(HEADER_LEN + len));
        let changed = tampered && end.is_none_or(|end| (at..end).contains(&tamper_at));
        let body = end.and_then(|end| wire.get(at + HEADER_LEN..end));
        let Some(body) = body else {
            assert!(changed, "an unchanged stream holds whole frames");
            return;
        };
        let mut body = body.to_vec();
        match opener.open(*header, &mut body, now) {
            Ok(plain) => {
                assert!(!changed, "a changed frame opened");
                if let Some(n) = plain {
                    assert_eq!(body.get(..n), expected.next(), "a frame opened to another");
                }
            }
            Err(err) => {
                assert!(changed, "an unchanged frame failed to open: {err}");
                return;
            }
        }
        at = end.unwrap_or(usize::MAX);
    }
    assert!(!tampered, "the changed byte was in no frame");
    assert!(expected.next().is_none(), "a sealed message was not opened");
}

// ---------------------------------------------------------------------------------------
// message: every message decoder
// ---------------------------------------------------------------------------------------

/// Every message decoder; the first byte chooses which, the rest is the encoding. Whatever
/// decodes must re-encode to exactly its input: one encoding per message, so the transcript
/// hash and the signatures cover what was parsed.
pub fn message(data: &[u8]) {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    match which % 5 {
        0 => {
            if let Some(msg) = canonical_message(bytes) {
                let owned = msg.to_owned_message();
                assert_eq!(owned.as_message(), msg);
                let _ = (msg.name(), msg.is_transfer());
            }
        }
        1 => check_canonical(bytes, ClientHello::decode(bytes), |hello, out| {
            hello.encode(out);
            Ok(())
        }),
        2 => check_canonical(bytes, ServerHello::decode(bytes), ServerHello::encode),
        3 => check_canonical(bytes, KeyTransport::decode(bytes), KeyTransport::encode),
        _ => {
            let refused = VersionRefused::decode(bytes);
            if refused.is_ok() {
                assert!(VersionRefused::is_refusal(bytes));
            }
            check_canonical(bytes, refused, VersionRefused::encode);
        }
    }
}

/// The message `bytes` decode to, after checking that it encodes back to exactly `bytes`.
fn canonical_message(bytes: &[u8]) -> Option<Message<'_>> {
    let msg = Message::decode(bytes).ok()?;
    check_canonical(bytes, Ok(msg), |m, out| m.encode(out));
    Some(msg)
}

/// A decoder's answer is an error, or a value that encodes back to exactly `bytes`.
fn check_canonical<T: std::fmt::Debug>(
    bytes: &[u8],
    decoded: Result<T, DecodeError>,
    encode: impl Fn(&T, &mut Vec<u8>) -> Result<(), EncodeError>,
) {
    if let Ok(value) = decoded {
        let mut out = Vec::new();
        assert!(
            encode(&value, &mut out).is_ok(),
            "{value:?} does not encode"
        );
        assert_eq!(out, bytes, "{value:?} is not canonical");
    }
}

/// Splits `data` into chunks, each `len: u16 BE || len bytes`; a last, short chunk is
/// dropped.
fn length_prefixed(mut data: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let (len, rest) = data.split_first_chunk::<2>()?;
        let (chunk, rest) = rest.split_at_checked(usize::from(u16::from_be_bytes(*len)))?;
        data = rest;
        Some(chunk)
    })
}

// ---------------------------------------------------------------------------------------
// agent: the identity agent's socket protocol
// ---------------------------------------------------------------------------------------

/// The identity agent's socket protocol (PROTOCOL.md §12). The first byte chooses: even, the
/// rest is a request body, which either does not decode or encodes back to exactly its
/// frame, and which a key store answers with one well-formed frame; odd, the rest is a
/// response body, under the same canonical-encoding rule.
pub fn agent(data: &[u8]) {
    use crate::agent::store::KeyStore;
    use crate::proto::agent::{self as wire, Request, Response};
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let framed = |encode: &dyn Fn(&mut Vec<u8>) -> Result<(), EncodeError>| {
        let mut out = Vec::new();
        assert!(
            encode(&mut out).is_ok(),
            "a decoded message does not encode"
        );
        let (header, rest) = out.split_at(wire::HEADER_LEN);
        let header: [u8; wire::HEADER_LEN] = header.try_into().unwrap_or_default();
        assert_eq!(wire::frame_len(header), Ok(rest.len()));
        assert_eq!(rest, body, "not canonical");
    };
    if which % 2 == 0 {
        let Ok(request) = Request::decode(body) else {
            return;
        };
        framed(&|out| request.encode(out));
        let mut answer = Vec::new();
        let _ = KeyStore::default().handle(&request, Instant::now(), &mut answer);
        let (header, rest) = answer
            .split_at_checked(wire::HEADER_LEN)
            .unwrap_or_default();
        let header: [u8; wire::HEADER_LEN] = header.try_into().unwrap_or_default();
        assert_eq!(wire::frame_len(header), Ok(rest.len()));
        assert!(
            Response::decode(rest).is_ok(),
            "the store's answer does not parse"
        );
    } else if let Ok(response) = Response::decode(body) {
        framed(&|out| response.encode(out));
    }
}

// ---------------------------------------------------------------------------------------
// Text files: authorized_keys, known_hosts, the server's config
// ---------------------------------------------------------------------------------------

/// authorized_keys text (files are read as UTF-8; other bytes are skipped), then the policy
/// of every entry and each of its checks.
pub fn authorized_keys(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (keys, warnings) = AuthorizedKeys::parse(text);
    let lines = text.lines().count();
    for warning in &warnings {
        assert!((1..=lines).contains(&warning.line));
        let _ = warning.to_string();
    }
    for entry in &keys.entries {
        assert!((1..=lines).contains(&entry.line));
        assert!(warnings.iter().all(|w| w.line != entry.line));
        check_key_entry(entry);
        assert!(
            keys.find(&entry.key)
                .is_some_and(|first| first.line <= entry.line)
        );
        check_policy(&Policy::from_options(&entry.options));
    }
}

/// An entry's key reads back from the line seashell writes for it, and its options print as
/// they parse.
fn check_key_entry(entry: &AuthorizedKey) {
    assert_eq!(entry.fingerprint, public::fingerprint(&entry.key));
    let line = public::to_line(&entry.key, &entry.comment);
    let again = public::parse_line(&line);
    assert!(
        again.is_ok_and(|again| again.key == entry.key && again.comment == entry.comment),
        "{line:?} does not read back"
    );
    for option in &entry.options {
        match option {
            KeyOption::From(networks) => networks.iter().for_each(check_network),
            KeyOption::Expires(date) => {
                assert_eq!(ExpiryDate::parse(&date.to_string()), Some(*date));
            }
            KeyOption::Allow(text) | KeyOption::Command(text) => assert!(!text.is_empty()),
            KeyOption::NoFiles | KeyOption::NoPty => {}
        }
    }
}

/// A network prints as it parses, and holds its own address.
fn check_network(net: &Cidr) {
    assert_eq!(net.to_string().parse::<Cidr>().ok().as_ref(), Some(net));
    assert!(net.contains(net.network()));
}

/// Every check of a policy answers, and a restricted key never reaches a shell.
fn check_policy(policy: &Policy) {
    for addr in [
        IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ] {
        let _ = policy.check_source(addr);
    }
    for today in [ExpiryDate::parse("2030-01-01"), None] {
        let _ = policy.check_date(today);
    }
    let _ = (policy.command_words(), policy.may_have_pty());
    if policy.is_restricted() {
        assert!(policy.check_files().is_err());
    }
    for line in ["ls -l /tmp", "backup", "echo 'a b' \"c\""] {
        let run = policy.authorize(line, &BTreeMap::new());
        assert_eq!(run == Ok(Run::Shell), !policy.is_restricted());
    }
}

/// known_hosts text: every entry's host is in canonical form and knows its own key.
pub fn known_hosts(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (hosts, warnings) = KnownHosts::parse(text);
    for warning in &warnings {
        let _ = warning.to_string();
    }
    for entry in &hosts.entries {
        assert_eq!(
            canonical_host_port(&entry.host_port).as_ref(),
            Some(&entry.host_port)
        );
        assert_eq!(entry.fingerprint, public::fingerprint(&entry.key));
        assert_eq!(
            hosts.check(&entry.host_port, &entry.key),
            HostKeyStatus::Known
        );
    }
    // The canonical form is a fixed point.
    for word in text.split_whitespace() {
        if let Some(canonical) = canonical_host_port(word) {
            assert_eq!(canonical_host_port(&canonical).as_ref(), Some(&canonical));
        }
    }
}

/// The server's TOML configuration, parsed and applied over the defaults.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/nonexistent/seashell.toml");
    let file = match ConfigFile::parse(text, path) {
        Ok(file) => file,
        Err(err) => {
            let _ = err.to_string();
            return;
        }
    };
    let mut settings = ServerSettings::with_defaults_in(Path::new("/nonexistent"));
    if let Err(err) = file.apply(path, &mut settings) {
        let _ = err.to_string();
    }
}

// ---------------------------------------------------------------------------------------
// allow: the allow= matcher
// ---------------------------------------------------------------------------------------

/// An `allow="PATTERN"` key and a command line `LINE`, the input being `PATTERN NUL LINE`:
/// the policy of the line `allow="PATTERN" <test client key>` authorizes the line (a pattern
/// with a `"` cannot be written in the option and is skipped).
pub fn allow(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some((pattern, line)) = text.split_once('\0') else {
        return;
    };
    if pattern.contains('"') {
        return;
    }
    let key: Vec<&str> = CLIENT_PUB.split_whitespace().take(2).collect();
    let (keys, _) = AuthorizedKeys::parse(&format!("allow=\"{pattern}\" {}", key.join(" ")));
    let Some(entry) = keys.entries.first() else {
        return;
    };
    let policy = Policy::from_options(&entry.options);
    assert!(policy.is_restricted());
    let run = policy.authorize(line, &BTreeMap::new());
    assert_ne!(
        run,
        Ok(Run::Shell),
        "a restricted key's line reached a shell"
    );
    match run {
        Ok(Run::Direct(argv)) => assert!(!argv.is_empty()),
        Ok(Run::Shell) => {}
        Err(denied) => {
            let _ = denied.to_string();
        }
    }
}

// ---------------------------------------------------------------------------------------
// audit_line: one audit event, and the verifier on a whole log
// ---------------------------------------------------------------------------------------

/// One audit line ([`Event::parse`]: an event survives the line the writer makes of it), and
/// the verifier on the whole input as a log: up to three files, split at form feeds, oldest
/// first, checked against the test host key.
pub fn audit_line(data: &[u8]) {
    let host = host_public();
    let first_line = data.split(|&b| b == b'\n').next().unwrap_or_default();
    if let Ok(event) = Event::parse(first_line) {
        if let Ok(line) = event.to_line() {
            let again = Event::parse(line.as_bytes());
            assert!(
                again.as_ref().is_ok_and(|again| *again == event),
                "{event:?} does not survive its own line {line:?}: {again:?}"
            );
        }
        let _ = event.is_genesis();
        if let (Some(host), Ok(text)) = (host, std::str::from_utf8(first_line)) {
            let _ = check_checkpoint(text, &event, host);
        }
    }
    if let Some(host) = host {
        verify_log(data, host);
    }
}

fn host_public() -> Option<&'static PublicKey> {
    static HOST: OnceLock<Option<PublicKey>> = OnceLock::new();
    HOST.get_or_init(|| {
        let key = public::parse_line(HOST_PUB).ok().map(|line| line.key);
        assert!(key.is_some(), "tests/fixtures/host_rsa.pub does not load");
        key
    })
    .as_ref()
}

/// The verifier takes paths: the log is written to a directory of its own under the
/// system's temporary directory, and removed after.
fn verify_log(data: &[u8], host: &PublicKey) {
    static RUN: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "seashell-fuzz-audit-{}-{}",
        std::process::id(),
        RUN.fetch_add(1, Ordering::Relaxed)
    ));
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    let files: Vec<PathBuf> = data
        .splitn(3, |&b| b == b'\x0c')
        .enumerate()
        .filter_map(|(n, part)| {
            let path = dir.join(format!("audit.log.{n}"));
            std::fs::write(&path, part).ok().map(|()| path)
        })
        .collect();
    if let Ok(verdict) = verify_files(&files, host) {
        let _ = (verdict.exit_code(), verdict.to_string());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------
// tree_path: paths a peer sends in a tree transfer
// ---------------------------------------------------------------------------------------

/// A tree path from the peer: accepted only as plain names under the destination, which the
/// received file and its temporary file never leave.
pub fn tree_path(data: &[u8]) {
    let Ok(rel) = std::str::from_utf8(data) else {
        return;
    };
    let base = Path::new("/srv/dest");
    match relative_path(rel) {
        Ok(path) => {
            assert!(path.components().all(|c| matches!(c, Component::Normal(_))));
            assert_eq!(path.to_str(), Some(rel), "the path is not what was sent");
            let target = base.join(&path);
            assert!(target.starts_with(base));
            if !rel.is_empty() {
                let temp = temp_path(&target);
                assert!(temp.is_ok_and(|temp| temp.parent() == target.parent()));
            }
            let remote = join_remote("dir", rel);
            if rel.is_empty() {
                assert_eq!(remote, "dir");
            } else {
                assert_eq!(remote.strip_prefix("dir/"), Some(rel));
            }
        }
        Err(err) => {
            assert!(!rel.is_empty());
            let _ = err.to_string();
        }
    }
}
