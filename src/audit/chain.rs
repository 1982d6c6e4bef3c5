//! The pure hash chain: what one audit line holds ([`Event`]), how its bytes are made, how each
//! line links to the one before (`prev` = hex SHA-256 of the previous line's bytes), and how a
//! checkpoint line is signed and checked. No files, no clock, no channels: the writer passes
//! the time in, the verifier passes the bytes in. docs/audit.md is the normative description.

use crate::crypto;
use crate::crypto::{PrivateKey, PublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

/// What a checkpoint signature covers is this label followed by the SHA-256 of the checkpoint
/// line without its `sig` member.
pub const CHECKPOINT_LABEL: &[u8] = b"seashell/1 audit checkpoint\0";

/// The member that closes every checkpoint line: `,"sig":"<base64>"}`.
const SIG_MEMBER: &str = ",\"sig\":\"";

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A TCP connection was accepted. No longer written (a stranger chose their rate); kept so
    /// that older logs still parse, verify and show.
    Connect,
    /// A client key was accepted: the session begins.
    AuthOk,
    /// Failed authentications: once a summary of an interval's failures; in logs written
    /// before summaries, one refused client key.
    AuthFail,
    /// A command line is about to run (written and fsynced before it starts).
    Command,
    /// A command ended.
    Exit,
    /// A policy refused something.
    Denied,
    /// A file transfer.
    Transfer,
    /// A session ended.
    Disconnect,
    /// A signed seal over everything before it.
    Checkpoint,
    /// The server started (the first one of a log carries the genesis value).
    Start,
    /// The server stopped cleanly.
    Stop,
    /// The log could not be written for a while and writes again: how many events were lost.
    Lost,
    /// The first line of a file after a rotation: it names the file before it and its length
    /// (its `prev` is the hash of that file's last line).
    Rotate,
}

impl EventKind {
    /// The name written in the `event` member.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::AuthOk => "auth_ok",
            Self::AuthFail => "auth_fail",
            Self::Command => "command",
            Self::Exit => "exit",
            Self::Denied => "denied",
            Self::Transfer => "transfer",
            Self::Disconnect => "disconnect",
            Self::Checkpoint => "checkpoint",
            Self::Start => "start",
            Self::Stop => "stop",
            Self::Lost => "lost",
            Self::Rotate => "rotate",
        }
    }
}

/// What the server reports: everything of a line except its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// What happened.
    pub event: EventKind,
    /// The session id (hex), once the handshake gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// The client's address (`ip:port`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// A key fingerprint: the client's, or the host's on `start` and `checkpoint`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The client key's comment in authorized_keys, or the name its certificate gives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// For a client admitted by certificate: the certificate's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_name: Option<String>,
    /// For a client admitted by certificate: its serial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_serial: Option<u64>,
    /// For a client admitted by certificate: the CA key's fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    /// The command line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// On `command`: whether it runs on a pseudo-terminal (what is typed into it is never
    /// recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pty: Option<bool>,
    /// Exit status: the code, or 128 + N after signal N.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<i32>,
    /// How long the command (or the session) lasted; on an `auth_fail` summary, the interval
    /// it covers; on `lost`, how long the log could not write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Bytes received from the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_in: Option<u64>,
    /// Bytes sent to the client (a command's stdout and stderr).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_out: Option<u64>,
    /// On `denied`: the rule that refused, with its reason; on a failed `transfer`, why; on
    /// `lost`, the error that stopped the writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// On `transfer`: `upload` or `download`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    /// On `transfer`: the server-side path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// On `transfer`: hex SHA-256 of the whole file, when it completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// On `auth_fail` summaries: every failed authentication of the interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failures: Option<u64>,
    /// On `auth_fail` summaries: the sources with the most failures, most first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<FailureSource>>,
    /// On `auth_fail` summaries: the failures from sources not in `sources` (absent when 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlisted: Option<u64>,
    /// On `lost`: the events that could not be written (commands among them were refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost: Option<u64>,
    /// On a checkpoint that ends a file or a run of the server: which end it seals. Absent on
    /// ordinary checkpoints, and on every checkpoint of logs written before seals were marked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal: Option<Seal>,
    /// On `rotate`: the name the file before this one was given by the rotation
    /// (`audit.log.1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// On `rotate`: how many lines the file before this one holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<u64>,
}

/// What a marked checkpoint seals, in its `seal` member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Seal {
    /// The last line of a clean shutdown, after `stop`: nothing more was written in this run.
    /// Only a log whose last line is such a checkpoint verifies as OK.
    Final,
    /// The last line of a file about to be rotated: the chain goes on in the next file.
    Rotate,
}

/// One source of failed authentications in an `auth_fail` summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureSource {
    /// An IPv4 address, or an IPv6 /64 such as `2001:db8:1:2::/64`.
    pub source: String,
    /// Its failures in the interval.
    pub failures: u64,
    /// Authorized keys it proved possession of that their options refused (absent when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<RefusedKey>,
}

/// An authorized key whose options refused a client that proved possession of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedKey {
    /// The key's comment in authorized_keys.
    pub name: String,
    /// The key's fingerprint (`SHA256:...`).
    pub key: String,
    /// The option that refused, with its reason, e.g.
    /// `from=: 10.1.2.3 is not an allowed source address for this key`.
    pub rule: String,
    /// For a certificate refused (or whose options refused): why, in one word or two
    /// (`expired`, `not yet valid`, `wrong CA`, `wrong name`, `bad signature`, `revoked`,
    /// `command conflict`), or the option's name (`from=`, `expires=`). Absent for a key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The certificate, when the client presented one for the key it proved.
    #[serde(default, flatten)]
    pub cert: Option<CertIdentity>,
}

/// A certificate's claims, once bound to a key its client proved possession of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertIdentity {
    /// The certificate's name.
    pub cert_name: String,
    /// Its serial.
    pub cert_serial: u64,
    /// The CA key's fingerprint.
    pub ca: String,
}

impl Record {
    /// A record of `event` with no other member.
    pub fn new(event: EventKind) -> Self {
        Self {
            event,
            session: None,
            peer: None,
            key: None,
            name: None,
            cert_name: None,
            cert_serial: None,
            ca: None,
            command: None,
            pty: None,
            exit: None,
            duration_ms: None,
            bytes_in: None,
            bytes_out: None,
            rule: None,
            direction: None,
            path: None,
            sha256: None,
            failures: None,
            sources: None,
            unlisted: None,
            lost: None,
            seal: None,
            file: None,
            lines: None,
        }
    }
}

/// One line of the log. Members are written in declaration order, absent ones omitted, so the
/// same event always gives the same bytes; `sig` is always last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// RFC 3339 UTC with milliseconds, e.g. `2025-06-01T12:00:00.000Z`.
    pub time: String,
    /// 1 on the genesis line, then one more on every line, across restarts and rotations.
    pub seq: u64,
    /// What happened.
    #[serde(flatten)]
    pub record: Record,
    /// On the genesis line only: the random 32 bytes (hex) the chain starts from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub genesis: Option<String>,
    /// Hex SHA-256 of the previous line's bytes (without its newline); the genesis value on the
    /// genesis line.
    pub prev: String,
    /// On checkpoints: base64 RSA-PSS-SHA256 signature by the host key (see [`CHECKPOINT_LABEL`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
}

impl Event {
    /// The line's bytes, without a newline.
    pub fn to_line(&self) -> Result<String, ChainError> {
        serde_json::to_string(self).map_err(|err| ChainError::Encode(err.to_string()))
    }

    /// Parses one line (without its newline).
    pub fn parse(line: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(line)
    }

    /// True for the line a log starts from: a `start` whose `prev` is its own genesis value.
    pub fn is_genesis(&self) -> bool {
        self.record.event == EventKind::Start && self.genesis.as_deref() == Some(&self.prev)
    }
}

/// Why a line could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// JSON encoding failed.
    #[error("cannot encode an audit event: {0}")]
    Encode(String),
    /// The host key could not sign.
    #[error("cannot sign an audit checkpoint: {0}")]
    Sign(String),
    /// The line a chain resumes from is not an audit event.
    #[error("not an audit event ({0})")]
    NotAnEvent(String),
}

/// Why a checkpoint's signature does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureProblem {
    /// No `sig`, or `sig` not the last member.
    #[error("the checkpoint has no signature as its last member")]
    Missing,
    /// `sig` is not base64.
    #[error("the signature is not base64")]
    NotBase64,
    /// The signature does not verify under the host key.
    #[error("the signature does not verify under the host key")]
    Invalid,
}

/// Lower-case hex of SHA-256 over `line` (the bytes without the newline).
pub fn line_hash(line: &[u8]) -> String {
    hex::encode(crypto::sha256(line))
}

/// The message a checkpoint signature covers: [`CHECKPOINT_LABEL`] || SHA-256(unsigned line).
pub fn checkpoint_message(unsigned_line: &[u8]) -> Vec<u8> {
    let mut message = CHECKPOINT_LABEL.to_vec();
    message.extend_from_slice(&crypto::sha256(unsigned_line));
    message
}

/// A checkpoint line as it was before signing: the trailing `,"sig":"..."` member removed.
/// `None` when the line does not end with such a member.
pub fn unsigned_form(line: &str) -> Option<String> {
    let body = line.strip_suffix("\"}")?;
    let (head, sig) = body.rsplit_once(SIG_MEMBER)?;
    let plain = sig
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
    plain.then(|| format!("{head}}}"))
}

/// Checks the signature of checkpoint `line` (already parsed as `event`) under `host`.
pub fn check_checkpoint(
    line: &str,
    event: &Event,
    host: &PublicKey,
) -> Result<(), SignatureProblem> {
    let sig = event.sig.as_deref().ok_or(SignatureProblem::Missing)?;
    let unsigned = unsigned_form(line).ok_or(SignatureProblem::Missing)?;
    let sig = STANDARD
        .decode(sig)
        .map_err(|_| SignatureProblem::NotBase64)?;
    if host.verify_pss_sha256(&checkpoint_message(unsigned.as_bytes()), &sig) {
        Ok(())
    } else {
        Err(SignatureProblem::Invalid)
    }
}

/// The writer's end of the chain: the next sequence number and the hash the next line links
/// to. Sealing a record gives its line and advances the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditChain {
    next_seq: u64,
    head: String,
    /// Set until the genesis line is sealed.
    genesis: Option<String>,
}

impl AuditChain {
    /// A new chain anchored on `genesis` (32 random bytes): its first line is sealed with
    /// `seq` 1 and `prev` = `genesis` = the hex of those bytes.
    pub fn new(genesis: [u8; 32]) -> Self {
        let genesis = hex::encode(genesis);
        Self {
            next_seq: 1,
            head: genesis.clone(),
            genesis: Some(genesis),
        }
    }

    /// The chain continuing after `last_line`, the last line of an existing log.
    pub fn resume(last_line: &[u8]) -> Result<Self, ChainError> {
        let event =
            Event::parse(last_line).map_err(|err| ChainError::NotAnEvent(err.to_string()))?;
        let next_seq = event
            .seq
            .checked_add(1)
            .ok_or_else(|| ChainError::NotAnEvent("seq at its maximum".to_owned()))?;
        Ok(Self {
            next_seq,
            head: line_hash(last_line),
            genesis: None,
        })
    }

    /// Seals `record` at `time` into its line (without newline) and advances the chain.
    pub fn seal(&mut self, record: Record, time: String) -> Result<String, ChainError> {
        let line = self.event(record, time).to_line()?;
        self.advance(&line);
        Ok(line)
    }

    /// Seals a checkpoint at `time`, signed by `host` (whose fingerprint is `host_fingerprint`),
    /// marked with what it seals (`None` for an ordinary checkpoint).
    pub fn seal_checkpoint(
        &mut self,
        time: String,
        host: &PrivateKey,
        host_fingerprint: &str,
        seal: Option<Seal>,
    ) -> Result<String, ChainError> {
        let mut record = Record::new(EventKind::Checkpoint);
        record.key = Some(host_fingerprint.to_owned());
        record.seal = seal;
        let mut event = self.event(record, time);
        let unsigned = event.to_line()?;
        let sig = host
            .sign_pss_sha256(&checkpoint_message(unsigned.as_bytes()))
            .map_err(|err| ChainError::Sign(err.to_string()))?;
        event.sig = Some(STANDARD.encode(sig));
        let line = event.to_line()?;
        self.advance(&line);
        Ok(line)
    }

    fn event(&self, record: Record, time: String) -> Event {
        Event {
            time,
            seq: self.next_seq,
            record,
            genesis: self.genesis.clone(),
            prev: self.head.clone(),
            sig: None,
        }
    }

    fn advance(&mut self, line: &str) {
        self.head = line_hash(line.as_bytes());
        self.next_seq = self.next_seq.saturating_add(1);
        self.genesis = None;
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    const TIME: &str = "2025-06-01T12:00:00.000Z";

    fn host_key() -> PrivateKey {
        crate::keys::private::from_pem(include_str!("../../tests/fixtures/host_rsa")).unwrap()
    }

    #[test]
    fn genesis_line_anchors_on_its_random_value() {
        let mut chain = AuditChain::new([7; 32]);
        let line = chain
            .seal(Record::new(EventKind::Start), TIME.into())
            .unwrap();
        let event = Event::parse(line.as_bytes()).unwrap();
        assert!(event.is_genesis());
        assert_eq!(event.seq, 1);
        assert_eq!(event.prev, "07".repeat(32));
        let next = chain
            .seal(Record::new(EventKind::Stop), TIME.into())
            .unwrap();
        assert_eq!(Event::parse(next.as_bytes()).unwrap().seq, 2);
    }

    #[test]
    fn each_line_links_to_the_hash_of_the_one_before() {
        let mut chain = AuditChain::new([0; 32]);
        let first = chain
            .seal(Record::new(EventKind::Start), TIME.into())
            .unwrap();
        let second = chain
            .seal(Record::new(EventKind::Connect), TIME.into())
            .unwrap();
        let event = Event::parse(second.as_bytes()).unwrap();
        assert_eq!(event.prev, line_hash(first.as_bytes()));
        assert_eq!(event.seq, 2);
        assert!(!event.is_genesis());
        assert_eq!(event.genesis, None);
    }

    #[test]
    fn lines_are_deterministic_with_absent_members_omitted() {
        let mut record = Record::new(EventKind::Exit);
        record.session = Some("ab".into());
        record.exit = Some(3);
        record.duration_ms = Some(12);
        let line = AuditChain::new([1; 32]).seal(record, TIME.into()).unwrap();
        assert_eq!(
            line,
            format!(
                "{{\"time\":\"{TIME}\",\"seq\":1,\"event\":\"exit\",\"session\":\"ab\",\"exit\":3,\
                 \"duration_ms\":12,\"genesis\":\"{g}\",\"prev\":\"{g}\"}}",
                g = "01".repeat(32)
            )
        );
        // Parsing and writing again gives the same bytes.
        assert_eq!(
            Event::parse(line.as_bytes()).unwrap().to_line().unwrap(),
            line
        );
    }

    #[test]
    fn summary_members_come_after_the_older_ones() {
        let mut record = Record::new(EventKind::AuthFail);
        record.duration_ms = Some(60_000);
        record.failures = Some(5);
        record.sources = Some(vec![
            FailureSource {
                source: "10.0.0.9".into(),
                failures: 4,
                refused: vec![RefusedKey {
                    name: "alice".into(),
                    key: "SHA256:a".into(),
                    rule: "from=: 10.0.0.9 is not allowed".into(),
                    reason: None,
                    cert: None,
                }],
            },
            FailureSource {
                source: "2001:db8:1:2::/64".into(),
                failures: 1,
                refused: Vec::new(),
            },
        ]);
        let line = AuditChain::new([1; 32]).seal(record, TIME.into()).unwrap();
        assert_eq!(
            line,
            format!(
                "{{\"time\":\"{TIME}\",\"seq\":1,\"event\":\"auth_fail\",\"duration_ms\":60000,\
                 \"failures\":5,\"sources\":[{{\"source\":\"10.0.0.9\",\"failures\":4,\"refused\":\
                 [{{\"name\":\"alice\",\"key\":\"SHA256:a\",\"rule\":\"from=: 10.0.0.9 is not \
                 allowed\"}}]}},{{\"source\":\"2001:db8:1:2::/64\",\"failures\":1}}],\
                 \"genesis\":\"{g}\",\"prev\":\"{g}\"}}",
                g = "01".repeat(32)
            )
        );
        assert_eq!(
            Event::parse(line.as_bytes()).unwrap().to_line().unwrap(),
            line
        );
    }

    #[test]
    fn resume_continues_after_the_last_line() {
        let mut chain = AuditChain::new([2; 32]);
        chain
            .seal(Record::new(EventKind::Start), TIME.into())
            .unwrap();
        let last = chain
            .seal(Record::new(EventKind::Stop), TIME.into())
            .unwrap();
        let mut resumed = AuditChain::resume(last.as_bytes()).unwrap();
        assert_eq!(resumed, chain);
        let next = resumed
            .seal(Record::new(EventKind::Start), TIME.into())
            .unwrap();
        assert_eq!(
            Event::parse(next.as_bytes()).unwrap().prev,
            line_hash(last.as_bytes())
        );
        assert!(AuditChain::resume(b"{\"not\":1}").is_err());
        assert!(AuditChain::resume(b"garbage").is_err());
    }

    #[test]
    fn checkpoint_signature_covers_the_line_without_sig() {
        let key = host_key();
        let mut chain = AuditChain::new([3; 32]);
        chain
            .seal(Record::new(EventKind::Start), TIME.into())
            .unwrap();
        let line = chain
            .seal_checkpoint(TIME.into(), &key, "SHA256:host", None)
            .unwrap();
        let event = Event::parse(line.as_bytes()).unwrap();
        assert_eq!(event.record.event, EventKind::Checkpoint);
        assert_eq!(event.record.key.as_deref(), Some("SHA256:host"));
        let unsigned = unsigned_form(&line).unwrap();
        let mut plain = event.clone();
        plain.sig = None;
        assert_eq!(unsigned, plain.to_line().unwrap());
        assert_eq!(check_checkpoint(&line, &event, key.public_key()), Ok(()));

        let edited = line.replacen("\"seq\":2", "\"seq\":9", 1);
        let event_edited = Event::parse(edited.as_bytes()).unwrap();
        assert_eq!(
            check_checkpoint(&edited, &event_edited, key.public_key()),
            Err(SignatureProblem::Invalid)
        );
        let unsigned_event = Event::parse(unsigned.as_bytes()).unwrap();
        assert_eq!(
            check_checkpoint(&unsigned, &unsigned_event, key.public_key()),
            Err(SignatureProblem::Missing)
        );
    }

    #[test]
    fn unsigned_form_needs_a_final_base64_sig_member() {
        assert_eq!(
            unsigned_form(r#"{"a":1,"sig":"QUJD+/=="}"#).as_deref(),
            Some(r#"{"a":1}"#)
        );
        assert_eq!(unsigned_form(r#"{"a":1}"#), None);
        assert_eq!(unsigned_form(r#"{"a":1,"sig":"x\"y"}"#), None);
        assert_eq!(unsigned_form(r#"{"sig":"QUJD","a":1}"#), None);
    }

    #[test]
    fn kinds_serialise_as_their_names() {
        for kind in [
            EventKind::Connect,
            EventKind::AuthOk,
            EventKind::AuthFail,
            EventKind::Command,
            EventKind::Exit,
            EventKind::Denied,
            EventKind::Transfer,
            EventKind::Disconnect,
            EventKind::Checkpoint,
            EventKind::Start,
            EventKind::Stop,
            EventKind::Lost,
            EventKind::Rotate,
        ] {
            assert_eq!(
                serde_json::to_string(&kind).unwrap(),
                format!("\"{}\"", kind.as_str())
            );
        }
    }
}
