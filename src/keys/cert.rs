//! Certificates: a CA key's signed statement that a public key belongs to a user (a name) or
//! may serve some hosts (their names), from one time to another, under some authorized_keys
//! options. This module owns the byte encoding (docs/PROTOCOL.md §13), the one-line text form
//! `seashell-rsa-cert <base64> [comment]`, issuing (signing) a certificate and checking one
//! against a CA key and a time passed in. Decoding is total and bounded: any bytes give a
//! certificate or a typed error, never a panic. It never reads a clock or the network, and it
//! decides nothing about which CA to trust or what a name may do: authorized_keys,
//! known_hosts and the server's policy do.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::crypto::{self, PrivateKey, PublicKey};
use crate::keys::LineProblem;
use crate::keys::authorized::{self, KeyOption};
use crate::keys::public::{self, PublicKeyError};

/// The word that starts every certificate line.
pub const CERT_TYPE: &str = "seashell-rsa-cert";

/// Prefix of what a CA key signs in a certificate (distinct from every other label).
pub const CERT_SIGNATURE_LABEL: &[u8] = b"seashell/1 certificate\0";

/// The format byte every certificate starts with.
pub const CERT_FORMAT: u8 = 1;

/// Largest encoded certificate, in bytes.
pub const MAX_CERT_LEN: usize = 4096;

/// Largest SubjectPublicKeyInfo in a certificate (the SPKI of RSA-4096 is 550 bytes).
pub const MAX_CERT_SPKI: usize = 1024;

/// Largest name field: a user's identity, or a host certificate's comma-separated names.
pub const MAX_CERT_NAME: usize = 1024;

/// Largest options field.
pub const MAX_CERT_OPTIONS: usize = 1024;

/// Largest signature (RSA-4096).
pub const MAX_CERT_SIGNATURE: usize = 512;

/// Latest time a certificate may name: 9999-12-31T23:59:59Z, in Unix seconds.
pub const MAX_CERT_TIME: u64 = 253_402_300_799;

/// How far the verifier's clock may be from the issuer's: a certificate is taken as valid
/// from this many seconds before its start to this many seconds after its end.
pub const CLOCK_SKEW_SECS: u64 = 300;

/// Characters a name may not contain besides spaces and controls: `,` separates names, `"`
/// ends a `principals=` value, `\` escapes, and glob characters would read as patterns.
const NAME_FORBIDDEN: &[char] = &[',', '"', '\\', '*', '?', '[', ']', '{', '}'];

/// Whom a certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertKind {
    /// A user: the name is the user's identity.
    User,
    /// A host: the name is the comma-separated list of the host names and addresses it may
    /// serve.
    Host,
}

impl CertKind {
    fn byte(self) -> u8 {
        match self {
            Self::User => 0,
            Self::Host => 1,
        }
    }

    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(Self::User),
            1 => Some(Self::Host),
            _ => None,
        }
    }

    /// `user` or `host`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Host => "host",
        }
    }
}

/// What a CA certifies: everything in a certificate but the CA and its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFields {
    /// User or host.
    pub kind: CertKind,
    /// The certified key.
    pub key: PublicKey,
    /// The user's identity, or the host's comma-separated names.
    pub name: String,
    /// The serial number, for revocation.
    pub serial: u64,
    /// Valid from this time on (Unix seconds).
    pub valid_after: u64,
    /// Valid before this time (Unix seconds).
    pub valid_before: u64,
    /// authorized_keys options, as written there (`no-files,allow="ls *"`); empty for none.
    pub options: String,
}

/// A decoded certificate. Its signature is checked only by [`Certificate::verify`].
#[derive(Debug, Clone)]
pub struct Certificate {
    fields: CertFields,
    options: Vec<KeyOption>,
    key_der: Vec<u8>,
    ca: [u8; 32],
    /// The encoding up to the signature field: what the CA signed, after the label.
    signed: Vec<u8>,
    signature: Vec<u8>,
}

/// Why a certificate cannot be made or read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertError {
    /// The line does not start with `seashell-rsa-cert`.
    #[error("expected a line starting with `{CERT_TYPE}`")]
    WrongType,
    /// The base64 field is missing, too long or not base64.
    #[error("the certificate field is not valid base64 of at most {MAX_CERT_LEN} bytes")]
    BadBase64,
    /// Bytes that are not a certificate; names the first field at fault.
    #[error("not a valid seashell certificate ({0})")]
    Malformed(&'static str),
    /// The certified key is not one seashell accepts.
    #[error("the certified key: {0}")]
    Key(PublicKeyError),
    /// A name a certificate cannot carry.
    #[error("the name `{name}` {why}")]
    BadName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// An option a certificate cannot carry.
    #[error("option: {0}")]
    BadOption(LineProblem),
    /// A validity window that is empty or out of range.
    #[error("validity: {0}")]
    BadValidity(&'static str),
    /// The CA key could not sign.
    #[error("cannot sign the certificate: {0}")]
    Sign(String),
}

/// Why a well-formed certificate is refused. [`Self::reason`] is the word the audit log uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertRefusal {
    /// Its end (plus [`CLOCK_SKEW_SECS`]) has passed.
    #[error("expired")]
    Expired,
    /// Its start (minus [`CLOCK_SKEW_SECS`]) has not come yet.
    #[error("not yet valid")]
    NotYetValid,
    /// Signed by another CA than the one it is checked against.
    #[error("wrong CA")]
    WrongCa,
    /// Its name is not one the trust file allows (or the host dialed).
    #[error("wrong name")]
    WrongName,
    /// The CA's signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// Its key, its serial or its CA is revoked.
    #[error("revoked")]
    Revoked,
}

impl CertRefusal {
    /// The reason as the audit log's `auth_fail` event writes it.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::NotYetValid => "not yet valid",
            Self::WrongCa => "wrong CA",
            Self::WrongName => "wrong name",
            Self::BadSignature => "bad signature",
            Self::Revoked => "revoked",
        }
    }
}

impl CertFields {
    /// Checks what [`Certificate::issue`] checks, without a CA key (so that a command can
    /// refuse bad fields before it asks for the CA key's passphrase); returns the options,
    /// parsed.
    pub fn check(&self) -> Result<Vec<KeyOption>, CertError> {
        check_name(self.kind, &self.name).map_err(|why| CertError::BadName {
            name: self.name.clone(),
            why,
        })?;
        check_validity(self.valid_after, self.valid_before).map_err(CertError::BadValidity)?;
        check_options(&self.options).map_err(CertError::BadOption)
    }
}

impl Certificate {
    /// Checks `fields` (see [`CertFields::check`]) and signs them with `ca`.
    pub fn issue(ca: &PrivateKey, fields: CertFields) -> Result<Self, CertError> {
        let options = fields.check()?;
        let key_der = fields.key.spki_der().to_vec();
        public::from_spki_der(&key_der).map_err(CertError::Key)?;
        let ca_digest = crypto::sha256(ca.public_key().spki_der());
        let signed = encode_signed(&fields, &key_der, &ca_digest)?;
        let signature = sign(ca, &message(&signed))?;
        Ok(Self {
            fields,
            options,
            key_der,
            ca: ca_digest,
            signed,
            signature,
        })
    }

    /// Decodes exactly one certificate from `bytes`: every field present, in range and well
    /// formed, nothing left over. The signature is not checked here.
    pub fn decode(bytes: &[u8]) -> Result<Self, CertError> {
        if bytes.len() > MAX_CERT_LEN {
            return Err(CertError::Malformed("longer than 4096 bytes"));
        }
        let mut r = Cursor(bytes);
        if r.u8("format")? != CERT_FORMAT {
            return Err(CertError::Malformed("unknown format"));
        }
        let kind = CertKind::from_byte(r.u8("kind")?).ok_or(CertError::Malformed("kind"))?;
        let key_der = r.bytes16(MAX_CERT_SPKI, "key")?.to_vec();
        let key = public::from_spki_der(&key_der).map_err(CertError::Key)?;
        let name = r.text(MAX_CERT_NAME, "name")?;
        check_name(kind, &name).map_err(|_| CertError::Malformed("name"))?;
        let serial = r.u64("serial")?;
        let valid_after = r.u64("valid_after")?;
        let valid_before = r.u64("valid_before")?;
        check_validity(valid_after, valid_before).map_err(|_| CertError::Malformed("validity"))?;
        let options_text = r.text(MAX_CERT_OPTIONS, "options")?;
        let options = check_options(&options_text).map_err(|_| CertError::Malformed("options"))?;
        let ca = r.array32("ca")?;
        let signed_len = bytes.len() - r.0.len();
        let signed = bytes
            .get(..signed_len)
            .ok_or(CertError::Malformed("length"))?
            .to_vec();
        let signature = r.bytes16(MAX_CERT_SIGNATURE, "signature")?.to_vec();
        if !r.0.is_empty() {
            return Err(CertError::Malformed("bytes after the signature"));
        }
        Ok(Self {
            fields: CertFields {
                kind,
                key,
                name,
                serial,
                valid_after,
                valid_before,
                options: options_text,
            },
            options,
            key_der,
            ca,
            signed,
            signature,
        })
    }

    /// The encoding: what was signed, then the signature.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.signed.clone();
        put_bytes16(&mut out, &self.signature);
        out
    }

    /// The one-line text form: `seashell-rsa-cert <base64> <comment>` (no comment if empty).
    pub fn to_line(&self, comment: &str) -> String {
        let b64 = STANDARD.encode(self.encode());
        if comment.is_empty() {
            format!("{CERT_TYPE} {b64}")
        } else {
            format!("{CERT_TYPE} {b64} {comment}")
        }
    }

    /// Checks the certificate against `ca` at `now` (Unix seconds): signed by that CA, the
    /// signature good, and `now` within the validity window give or take [`CLOCK_SKEW_SECS`].
    /// Whether its name and options are acceptable is the caller's question.
    pub fn verify(&self, ca: &PublicKey, now: u64) -> Result<(), CertRefusal> {
        if crypto::sha256(ca.spki_der()) != self.ca {
            return Err(CertRefusal::WrongCa);
        }
        if !verify(ca, &message(&self.signed), &self.signature) {
            return Err(CertRefusal::BadSignature);
        }
        self.check_time(now)
    }

    /// Is `now` (Unix seconds) within the validity window, give or take [`CLOCK_SKEW_SECS`]?
    pub fn check_time(&self, now: u64) -> Result<(), CertRefusal> {
        if now.saturating_add(CLOCK_SKEW_SECS) < self.fields.valid_after {
            return Err(CertRefusal::NotYetValid);
        }
        if now >= self.fields.valid_before.saturating_add(CLOCK_SKEW_SECS) {
            return Err(CertRefusal::Expired);
        }
        Ok(())
    }

    /// Whether a client may present this certificate with `key` at `now`: a user
    /// certificate of that very key, valid now; else why not, in words for its user (a
    /// server judges a presented certificate, never the key alone, so an unusable one is
    /// better left out).
    pub fn presentable_by(&self, key: &PublicKey, now: u64) -> Result<(), String> {
        if self.key_der != key.spki_der() {
            return Err(format!(
                "it certifies key {}, not this identity ({})",
                self.key_fingerprint(),
                public::fingerprint(key)
            ));
        }
        if self.fields.kind != CertKind::User {
            return Err("it is a host certificate".to_owned());
        }
        self.check_time(now).map_err(|refusal| {
            format!(
                "it is {refusal} (valid {} to {}): ask your CA for a new one",
                format_time(self.fields.valid_after),
                format_time(self.fields.valid_before)
            )
        })
    }

    /// The certified fields.
    pub fn fields(&self) -> &CertFields {
        &self.fields
    }

    /// The certified key.
    pub fn key(&self) -> &PublicKey {
        &self.fields.key
    }

    /// The certified key's SubjectPublicKeyInfo DER.
    pub fn key_der(&self) -> &[u8] {
        &self.key_der
    }

    /// The certified key's `SHA256:` fingerprint.
    pub fn key_fingerprint(&self) -> String {
        public::fingerprint_der(&self.key_der)
    }

    /// The names a host certificate may serve, or the one name of a user certificate.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.fields.name.split(',')
    }

    /// The options, parsed.
    pub fn options(&self) -> &[KeyOption] {
        &self.options
    }

    /// The SHA-256 of the SPKI DER of the CA key that signed it (what it names its CA by).
    pub fn ca_digest(&self) -> &[u8; 32] {
        &self.ca
    }

    /// The CA's fingerprint (`SHA256:...`), as `seashell fingerprint` prints its key's.
    pub fn ca_fingerprint(&self) -> String {
        format!("SHA256:{}", STANDARD_NO_PAD.encode(self.ca))
    }

    /// The fields as `label: value` lines, for `ca show` and `fingerprint`. Values come from
    /// the certificate as they are: the caller escapes them before printing.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let f = &self.fields;
        vec![
            ("type", format!("{} certificate", f.kind.as_str())),
            ("key", self.key_fingerprint()),
            (
                match f.kind {
                    CertKind::User => "name",
                    CertKind::Host => "hosts",
                },
                f.name.clone(),
            ),
            ("serial", f.serial.to_string()),
            ("valid from", format_time(f.valid_after)),
            ("valid until", format_time(f.valid_before)),
            (
                "options",
                if f.options.is_empty() {
                    "none".to_owned()
                } else {
                    f.options.clone()
                },
            ),
            ("ca", self.ca_fingerprint()),
        ]
    }
}

/// A parsed certificate line: the certificate and its comment (may be empty).
#[derive(Debug, Clone)]
pub struct CertLine {
    /// The certificate.
    pub cert: Certificate,
    /// Free text after the certificate, trimmed.
    pub comment: String,
}

/// The certificate in the file at `path` when `key` may present it at `now`
/// ([`Certificate::presentable_by`]); `Ok(None)` when there is no such file, and why not,
/// in words for its user, when there is a file that cannot be read or presented.
pub fn presentable_at(
    path: &std::path::Path,
    key: &PublicKey,
    now: u64,
) -> Result<Option<Certificate>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err.to_string()),
    };
    let cert = parse_line(&text).map_err(|err| err.to_string())?.cert;
    cert.presentable_by(key, now)?;
    Ok(Some(cert))
}

/// Parses `seashell-rsa-cert <base64> [comment]`.
pub fn parse_line(line: &str) -> Result<CertLine, CertError> {
    let rest = line
        .trim()
        .strip_prefix(CERT_TYPE)
        .filter(|r| r.starts_with(char::is_whitespace))
        .ok_or(CertError::WrongType)?
        .trim_start();
    let (b64, comment) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    if b64.len() > MAX_CERT_LEN.div_ceil(3) * 4 {
        return Err(CertError::BadBase64);
    }
    let bytes = STANDARD.decode(b64).map_err(|_| CertError::BadBase64)?;
    Ok(CertLine {
        cert: Certificate::decode(&bytes)?,
        comment: comment.trim().to_owned(),
    })
}

/// Does `line` start with the certificate word (so that it is a certificate, good or bad)?
pub fn is_cert_line(line: &str) -> bool {
    line.trim_start()
        .strip_prefix(CERT_TYPE)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(char::is_whitespace))
}

/// The time now, in Unix seconds (0 before 1970: every certificate is then not yet valid),
/// for [`Certificate::verify`].
pub fn unix_now() -> u64 {
    u64::try_from(OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0)
}

/// Unix seconds as RFC 3339 UTC (`2026-12-03T08:00:00Z`); the number itself if out of range.
pub fn format_time(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
        .and_then(|time| time.format(&Rfc3339).ok())
        .unwrap_or_else(|| secs.to_string())
}

/// The message a CA signs: [`CERT_SIGNATURE_LABEL`] || the certificate up to its signature.
fn message(signed: &[u8]) -> Vec<u8> {
    [CERT_SIGNATURE_LABEL, signed].concat()
}

/// Every signature this module makes: RSA-PSS-SHA256, MGF1-SHA256, salt 32 (as in the
/// handshake).
fn sign(ca: &PrivateKey, msg: &[u8]) -> Result<Vec<u8>, CertError> {
    ca.sign_pss_sha256(msg)
        .map_err(|err| CertError::Sign(err.to_string()))
}

/// Every signature this module checks.
fn verify(ca: &PublicKey, msg: &[u8], sig: &[u8]) -> bool {
    ca.verify_pss_sha256(msg, sig)
}

/// The encoding up to (not including) the signature field.
fn encode_signed(fields: &CertFields, key_der: &[u8], ca: &[u8; 32]) -> Result<Vec<u8>, CertError> {
    let mut out = Vec::with_capacity(MAX_CERT_LEN);
    out.push(CERT_FORMAT);
    out.push(fields.kind.byte());
    put_checked(&mut out, key_der, MAX_CERT_SPKI, "key")?;
    put_checked(&mut out, fields.name.as_bytes(), MAX_CERT_NAME, "name")?;
    out.extend_from_slice(&fields.serial.to_be_bytes());
    out.extend_from_slice(&fields.valid_after.to_be_bytes());
    out.extend_from_slice(&fields.valid_before.to_be_bytes());
    put_checked(
        &mut out,
        fields.options.as_bytes(),
        MAX_CERT_OPTIONS,
        "options",
    )?;
    out.extend_from_slice(ca);
    Ok(out)
}

fn put_checked(
    out: &mut Vec<u8>,
    bytes: &[u8],
    max: usize,
    what: &'static str,
) -> Result<(), CertError> {
    if bytes.len() > max {
        return Err(CertError::Malformed(what));
    }
    put_bytes16(out, bytes);
    Ok(())
}

/// A `u16` length and the bytes; callers keep `bytes` under 65536.
fn put_bytes16(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

/// A name a certificate may carry: 1 to [`MAX_CERT_NAME`] bytes of printable ASCII without
/// spaces, none of [`NAME_FORBIDDEN`]; a host certificate's may be a comma-separated list of
/// such names, none empty.
fn check_name(kind: CertKind, name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("is empty");
    }
    if name.len() > MAX_CERT_NAME {
        return Err("is longer than 1024 bytes");
    }
    let parts: Vec<&str> = match kind {
        CertKind::User => vec![name],
        CertKind::Host => name.split(',').collect(),
    };
    for part in parts {
        if part.is_empty() {
            return Err("has an empty host name (two commas, or one at an end)");
        }
        if part.contains(['*', '?', '[', ']', '{', '}']) {
            return Err("is a pattern: a certificate names exact names (no *, ?, [ or {)");
        }
        let bad = |c: char| !c.is_ascii_graphic() || NAME_FORBIDDEN.contains(&c);
        if part.contains(bad) {
            return Err(
                "has a character a name may not: spaces, controls, non-ASCII, `,` (in a user's name), `\"` or `\\`",
            );
        }
    }
    Ok(())
}

fn check_validity(after: u64, before: u64) -> Result<(), &'static str> {
    if before > MAX_CERT_TIME {
        return Err("it ends after the year 9999");
    }
    if after >= before {
        return Err("it ends before it starts");
    }
    Ok(())
}

/// The options of a certificate: authorized_keys options, but not `expires=` (the validity
/// window says when a certificate ends).
fn check_options(text: &str) -> Result<Vec<KeyOption>, LineProblem> {
    let options = authorized::parse_options(text)?;
    if options.iter().any(|o| matches!(o, KeyOption::Expires(_))) {
        return Err(LineProblem::BadOption {
            name: "expires",
            reason: "not in a certificate: its validity window says when it ends".to_owned(),
        });
    }
    Ok(options)
}

/// A reader over a certificate's bytes: every read checked, none past the end.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], CertError> {
        let (head, rest) = self
            .0
            .split_at_checked(n)
            .ok_or(CertError::Malformed(what))?;
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], CertError> {
        <[u8; N]>::try_from(self.take(N, what)?).map_err(|_| CertError::Malformed(what))
    }

    fn array32(&mut self, what: &'static str) -> Result<[u8; 32], CertError> {
        self.array::<32>(what)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, CertError> {
        self.array::<1>(what).map(|[b]| b)
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, CertError> {
        self.array::<8>(what).map(u64::from_be_bytes)
    }

    fn bytes16(&mut self, max: usize, what: &'static str) -> Result<&'a [u8], CertError> {
        let len = usize::from(u16::from_be_bytes(self.array::<2>(what)?));
        if len > max {
            return Err(CertError::Malformed(what));
        }
        self.take(len, what)
    }

    fn text(&mut self, max: usize, what: &'static str) -> Result<String, CertError> {
        let bytes = self.bytes16(max, what)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| CertError::Malformed(what))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::keys::private;

    fn pem_key(pem: &str) -> PrivateKey {
        private::from_pem(pem).unwrap()
    }

    fn ca() -> PrivateKey {
        pem_key(include_str!("../../tests/fixtures/ca_rsa"))
    }

    fn other() -> PrivateKey {
        pem_key(include_str!("../../tests/fixtures/other_rsa"))
    }

    fn client_pub() -> PublicKey {
        public::parse_line(include_str!("../../tests/fixtures/client_rsa.pub"))
            .unwrap()
            .key
    }

    const START: u64 = 1_800_000_000;
    const END: u64 = START + 8 * 3600;

    fn fields(kind: CertKind, name: &str, options: &str) -> CertFields {
        CertFields {
            kind,
            key: client_pub(),
            name: name.to_owned(),
            serial: 7,
            valid_after: START,
            valid_before: END,
            options: options.to_owned(),
        }
    }

    fn user_cert() -> Certificate {
        Certificate::issue(
            &ca(),
            fields(CertKind::User, "ann", r#"no-files,allow="ls *""#),
        )
        .unwrap()
    }

    #[test]
    fn an_issued_certificate_round_trips_through_bytes_and_its_line() {
        let cert = user_cert();
        let line = cert.to_line("ann's laptop");
        assert!(line.starts_with("seashell-rsa-cert "), "{line}");
        let parsed = parse_line(&line).unwrap();
        assert_eq!(parsed.comment, "ann's laptop");
        assert_eq!(parsed.cert.encode(), cert.encode());
        assert_eq!(parsed.cert.fields(), cert.fields());
        assert_eq!(
            parsed.cert.options(),
            &[KeyOption::NoFiles, KeyOption::Allow("ls *".into())]
        );
        assert_eq!(
            parsed.cert.ca_fingerprint(),
            public::fingerprint(ca().public_key())
        );
        assert_eq!(
            parsed.cert.key_fingerprint(),
            public::fingerprint(&client_pub())
        );
        parsed.cert.verify(ca().public_key(), START).unwrap();
    }

    #[test]
    fn validity_allows_the_clock_skew_on_both_sides_and_no_more() {
        let cert = user_cert();
        let ca = ca();
        let at = |now| cert.verify(ca.public_key(), now);
        assert_eq!(
            at(START - CLOCK_SKEW_SECS - 1),
            Err(CertRefusal::NotYetValid)
        );
        assert_eq!(at(START - CLOCK_SKEW_SECS), Ok(()));
        assert_eq!(at(END + CLOCK_SKEW_SECS - 1), Ok(()));
        assert_eq!(at(END + CLOCK_SKEW_SECS), Err(CertRefusal::Expired));
        assert_eq!(at(0), Err(CertRefusal::NotYetValid));
        assert_eq!(at(u64::MAX), Err(CertRefusal::Expired));
    }

    #[test]
    fn another_ca_and_any_changed_byte_are_refused() {
        let cert = user_cert();
        assert_eq!(
            cert.verify(other().public_key(), START),
            Err(CertRefusal::WrongCa)
        );
        let bytes = cert.encode();
        let ca = ca();
        // Flip one bit of each byte in turn: each result is malformed or fails to verify.
        for i in 0..bytes.len() {
            let mut tampered = bytes.clone();
            tampered[i] ^= 0x01;
            if let Ok(changed) = Certificate::decode(&tampered) {
                assert!(
                    changed.verify(ca.public_key(), START).is_err(),
                    "byte {i} changed and still verified"
                );
            }
        }
    }

    #[test]
    fn names_are_exact_and_host_names_a_list() {
        for (kind, name) in [
            (CertKind::User, "ann"),
            (CertKind::User, "ann@example.lan"),
            (CertKind::Host, "web1.lan"),
            (CertKind::Host, "web1.lan,10.0.0.7,fd00::7"),
        ] {
            assert_eq!(check_name(kind, name), Ok(()), "{name}");
        }
        for (kind, name, why) in [
            (CertKind::User, "", "empty"),
            (CertKind::User, "ann,bob", "character"),
            (CertKind::User, "ann smith", "character"),
            (CertKind::User, "ann\u{1b}", "character"),
            (CertKind::User, "änn", "character"),
            (CertKind::Host, "*.lan", "pattern"),
            (CertKind::Host, "web?.lan", "pattern"),
            (CertKind::Host, "web1.lan,", "empty host name"),
            (CertKind::Host, "a\"b", "character"),
        ] {
            let err = check_name(kind, name).unwrap_err();
            assert!(err.contains(why), "{name:?}: {err}");
        }
        let long = "a".repeat(MAX_CERT_NAME + 1);
        assert!(check_name(CertKind::User, &long).is_err());
        let err = Certificate::issue(&ca(), fields(CertKind::Host, "*.lan", "")).unwrap_err();
        assert!(err.to_string().contains("`*.lan` is a pattern"), "{err}");
        let host = Certificate::issue(&ca(), fields(CertKind::Host, "a.lan,10.0.0.1", "")).unwrap();
        assert_eq!(host.names().collect::<Vec<_>>(), ["a.lan", "10.0.0.1"]);
    }

    #[test]
    fn bad_options_and_windows_are_refused_at_issue() {
        let err = Certificate::issue(
            &ca(),
            fields(CertKind::User, "ann", r#"expires="2030-01-01""#),
        )
        .unwrap_err();
        assert!(err.to_string().contains("validity window"), "{err}");
        let err = Certificate::issue(&ca(), fields(CertKind::User, "ann", "bogus")).unwrap_err();
        assert!(err.to_string().contains("unknown option `bogus`"), "{err}");
        let err = Certificate::issue(&ca(), fields(CertKind::User, "ann", "no-files no-pty"))
            .unwrap_err();
        assert!(err.to_string().contains("not a space"), "{err}");
        let mut empty = fields(CertKind::User, "ann", "");
        empty.valid_before = empty.valid_after;
        let err = Certificate::issue(&ca(), empty).unwrap_err();
        assert!(err.to_string().contains("ends before it starts"), "{err}");
        let mut far = fields(CertKind::User, "ann", "");
        far.valid_before = MAX_CERT_TIME + 1;
        assert!(Certificate::issue(&ca(), far).is_err());
    }

    #[test]
    fn lines_that_are_not_certificates_say_why() {
        assert_eq!(
            parse_line("seashell-rsa AAAA").unwrap_err(),
            CertError::WrongType
        );
        assert_eq!(
            parse_line("seashell-rsa-cert !!").unwrap_err(),
            CertError::BadBase64
        );
        let huge = format!("seashell-rsa-cert {}", "A".repeat(8000));
        assert_eq!(parse_line(&huge).unwrap_err(), CertError::BadBase64);
        assert_eq!(
            parse_line("seashell-rsa-cert AgA=").unwrap_err(),
            CertError::Malformed("unknown format")
        );
        let mut trailing = user_cert().encode();
        trailing.push(0);
        assert_eq!(
            Certificate::decode(&trailing).unwrap_err(),
            CertError::Malformed("bytes after the signature")
        );
        assert!(is_cert_line("  seashell-rsa-cert x"));
        assert!(!is_cert_line("seashell-rsa x"));
        assert_eq!(format_time(START), "2027-01-15T08:00:00Z");
        assert_eq!(format_time(u64::MAX), u64::MAX.to_string());
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = user_cert().encode();
        for len in 0..bytes.len() {
            assert!(Certificate::decode(&bytes[..len]).is_err(), "{len}");
        }
    }

    proptest! {
        #[test]
        fn decoding_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = Certificate::decode(&bytes);
            let mut framed = vec![CERT_FORMAT, 0];
            framed.extend_from_slice(&bytes);
            let _ = Certificate::decode(&framed);
        }
    }
}
