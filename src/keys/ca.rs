//! Certificate files, as values: what `seashell ca sign` and `seashell ca show` compute below
//! the command line. It settles where a certificate goes (`KEY.pub` → `KEY-cert.pub`), the
//! validity window (a duration from now, or two RFC 3339 times), the serial (random unless
//! given), checks the fields before the CA key's passphrase is asked, signs, and writes the
//! certificate line atomically (0644, replacing an older certificate, as ssh-keygen does);
//! it reads a certificate file back and lays its fields out as `label: value` lines. It never
//! prints and knows nothing of the command line; the lines it returns hold the file's text as
//! it is, for the caller to escape. The encoding and the checks themselves are
//! [`crate::keys::cert`]'s.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt as _, OsStringExt as _};
use std::path::{Path, PathBuf};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::crypto::PublicKey;
use crate::keys::cert::{self, CertFields, CertKind, CertLine, Certificate};
use crate::keys::private::{self, PassphraseSource};
use crate::keys::public::PublicKeyError;
use crate::keys::{KeyError, files, trust_file};

/// The mode a certificate file is written with: public, like a `.pub`.
const CERT_FILE_MODE: u32 = 0o644;

/// When a certificate is valid, as the command line says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// From now, for this many seconds (`--valid 8h`).
    For(u64),
    /// From `from` (default: now) until `until`, in Unix seconds (`--valid-from`,
    /// `--valid-until`).
    Window {
        /// The start, if given.
        from: Option<u64>,
        /// The end.
        until: u64,
    },
}

impl Validity {
    /// `(valid_after, valid_before)` for a certificate issued at `now` (Unix seconds). An end
    /// past what a certificate can hold saturates, and is then refused by the checks.
    pub fn window(self, now: u64) -> (u64, u64) {
        match self {
            Self::For(secs) => (now, now.saturating_add(secs)),
            Self::Window { from, until } => (from.unwrap_or(now), until),
        }
    }
}

/// What `ca sign` is asked to do.
#[derive(Debug, Clone)]
pub struct SignRequest {
    /// The CA's private key file.
    pub ca: PathBuf,
    /// Where the CA key's passphrase comes from, if it is encrypted.
    pub passphrase: PassphraseSource,
    /// The public key file to certify.
    pub key: PathBuf,
    /// User or host.
    pub kind: CertKind,
    /// The user's identity, or the host's comma-separated names.
    pub name: String,
    /// The serial; `None` for a random one.
    pub serial: Option<u64>,
    /// The validity window.
    pub validity: Validity,
    /// authorized_keys options, one each (`no-files`, `allow="ls *"`), joined with `,`.
    pub options: Vec<String>,
}

/// A certificate just written.
#[derive(Debug, Clone)]
pub struct Signed {
    /// Where it went.
    pub path: PathBuf,
    /// The certificate.
    pub cert: Certificate,
}

/// Certifies the key of `request.key` with the CA key of `request.ca`, issued at `now` (Unix
/// seconds), and writes the certificate to [`cert_path`] of the key file, replacing what is
/// there. The fields are checked before the CA key is opened (and its passphrase asked).
pub fn sign(request: &SignRequest, now: u64) -> Result<Signed, KeyError> {
    let (key, comment) = load_key_to_certify(&request.key)?;
    let serial = match request.serial {
        Some(serial) => serial,
        None => u64::from_be_bytes(
            crate::crypto::random().map_err(|err| KeyError::Random(err.to_string()))?,
        ),
    };
    let (valid_after, valid_before) = request.validity.window(now);
    let fields = CertFields {
        kind: request.kind,
        key,
        name: request.name.clone(),
        serial,
        valid_after,
        valid_before,
        options: request.options.join(","),
    };
    let certify = |source| KeyError::Certify {
        key: request.key.clone(),
        source,
    };
    fields.check().map_err(certify)?;
    let ca = private::load_private_key(&request.ca, &request.passphrase)?;
    let cert = Certificate::issue(&ca, fields).map_err(certify)?;
    let path = cert_path(&request.key);
    let line = format!("{}\n", cert.to_line(&comment));
    files::replace(&path, CERT_FILE_MODE, line.as_bytes())?;
    Ok(Signed { path, cert })
}

/// The public key file to certify, or an error that says so when a private key was given.
fn load_key_to_certify(path: &Path) -> Result<(PublicKey, String), KeyError> {
    private::load_public_key_file(path).map_err(|err| match err {
        KeyError::BadPublicKey {
            source: PublicKeyError::WrongType,
            ..
        } if std::fs::read_to_string(path)
            .is_ok_and(|text| text.trim_start().starts_with("-----BEGIN ")) =>
        {
            KeyError::PrivateNotPublic {
                path: path.to_owned(),
                public: private::public_key_path(path),
            }
        }
        other => other,
    })
}

/// Where the certificate of the key file `key` goes: `KEY.pub` → `KEY-cert.pub`, any other
/// name gets `-cert.pub` appended (as ssh-keygen -s names it).
pub fn cert_path(key: &Path) -> PathBuf {
    let bytes = key.as_os_str().as_bytes();
    let stem = bytes.strip_suffix(b".pub").unwrap_or(bytes);
    let mut name = stem.to_vec();
    name.extend_from_slice(b"-cert.pub");
    PathBuf::from(OsString::from_vec(name))
}

/// Reads a certificate file: its one `seashell-rsa-cert <base64> [comment]` line (blank lines
/// and `#` comments around it are ignored). The signature is not checked: no CA is known here.
pub fn load_certificate(path: &Path) -> Result<CertLine, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
        path: path.to_owned(),
        source,
    })?;
    let (index, line) = text
        .lines()
        .enumerate()
        .find(|(_, line)| !trust_file::is_blank_or_comment(line))
        .unwrap_or((0, ""));
    cert::parse_line(line).map_err(|source| KeyError::BadCertificate {
        path: path.to_owned(),
        line: index + 1,
        source,
    })
}

/// A certificate's fields as aligned `label: value` lines ([`Certificate::describe`]), then
/// its status at `now` (Unix seconds: `valid`, `expired` or `not yet valid`, with the clock
/// skew allowance a verifier grants) and its comment, if any. Values are the file's text as
/// it is: escape them before printing.
pub fn describe_lines(line: &CertLine, now: u64) -> Vec<String> {
    let status = match line.cert.check_time(now) {
        Ok(()) => "valid",
        Err(refusal) => refusal.reason(),
    };
    let mut fields = line.cert.describe();
    fields.push(("status", status.to_owned()));
    if !line.comment.is_empty() {
        fields.push(("comment", line.comment.clone()));
    }
    let width = fields
        .iter()
        .map(|(label, _)| label.len())
        .max()
        .unwrap_or(0)
        + 1;
    fields
        .into_iter()
        .map(|(label, value)| format!("{:<width$} {value}", format!("{label}:")))
        .collect()
}

/// Parses a certificate's lifetime: a number and one unit, `s`, `m`, `h`, `d` or `w` (`90s`,
/// `8h`, `30d`, `52w`), nothing else (no sums, no months: a certificate's end should be
/// exactly what was meant). Returns seconds, at least 1.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let bad = || format!("`{text}` is not a number and a unit (s, m, h, d, w): e.g. 8h, 30d, 52w");
    let unit_at = text.len().checked_sub(1).ok_or_else(bad)?;
    let (number, unit) = text.split_at_checked(unit_at).ok_or_else(bad)?;
    let scale: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(bad()),
    };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let secs = number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .filter(|secs| *secs <= cert::MAX_CERT_TIME)
        .ok_or_else(|| format!("`{text}` is too long: a certificate ends by the year 9999"))?;
    if secs == 0 {
        return Err("a certificate must be valid for at least 1 second".to_owned());
    }
    Ok(secs)
}

/// Parses an RFC 3339 time (`2026-03-02T08:00:00Z`, `2026-03-02T09:00:00+01:00`) into Unix
/// seconds; fractions of a second are dropped. Times before 1970 are refused.
pub fn parse_time(text: &str) -> Result<u64, String> {
    let time = OffsetDateTime::parse(text, &Rfc3339).map_err(|err| {
        format!("`{text}` is not an RFC 3339 time ({err}): e.g. 2026-03-02T08:00:00Z")
    })?;
    u64::try_from(time.unix_timestamp())
        .map_err(|_| format!("`{text}` is before 1970: a certificate cannot start or end then"))
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::keys::public;

    #[test]
    fn durations_are_one_number_and_one_unit() {
        for (text, secs) in [
            ("1s", 1),
            ("90s", 90),
            ("30m", 1800),
            ("8h", 28_800),
            ("30d", 2_592_000),
            ("52w", 31_449_600),
            ("007h", 25_200),
        ] {
            assert_eq!(parse_duration(text), Ok(secs), "{text}");
        }
        for text in [
            "", "h", "8", "8x", "8H", "+8h", "-8h", " 8h", "8h ", "1h30m", "1.5h", "8 h", "1y",
            "8hours", "٣h",
        ] {
            let err = parse_duration(text).unwrap_err();
            assert!(
                err.contains("is not a number and a unit"),
                "{text:?}: {err}"
            );
        }
        assert!(
            parse_duration("0s")
                .unwrap_err()
                .contains("at least 1 second")
        );
        for text in ["99999999999999999999s", "30000000000000000w", "1000000w"] {
            let err = parse_duration(text).unwrap_err();
            assert!(err.contains("too long"), "{text}: {err}");
        }
    }

    #[test]
    fn times_are_rfc_3339_from_1970_on() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_time("2027-01-15T08:00:00Z"), Ok(1_800_000_000));
        assert_eq!(
            parse_time("2027-01-15T09:00:00.75+01:00"),
            Ok(1_800_000_000)
        );
        for text in ["2027-01-15", "2027-01-15T08:00Z", "tomorrow", "1800000000"] {
            let err = parse_time(text).unwrap_err();
            assert!(err.contains("not an RFC 3339 time"), "{text}: {err}");
        }
        assert!(
            parse_time("1969-12-31T23:59:59Z")
                .unwrap_err()
                .contains("before 1970")
        );
    }

    #[test]
    fn a_window_starts_now_unless_given() {
        assert_eq!(Validity::For(3600).window(100), (100, 3700));
        assert_eq!(Validity::For(u64::MAX).window(100), (100, u64::MAX));
        let until = Validity::Window {
            from: None,
            until: 500,
        };
        assert_eq!(until.window(100), (100, 500));
        let both = Validity::Window {
            from: Some(50),
            until: 500,
        };
        assert_eq!(both.window(100), (50, 500));
    }

    #[test]
    fn the_certificate_goes_beside_the_key() {
        for (key, cert) in [
            ("ann.pub", "ann-cert.pub"),
            ("/k/id_rsa.pub", "/k/id_rsa-cert.pub"),
            ("/k/id_rsa", "/k/id_rsa-cert.pub"),
            ("/k/.pub", "/k/-cert.pub"),
            ("key.PUB", "key.PUB-cert.pub"),
        ] {
            assert_eq!(cert_path(Path::new(key)), Path::new(cert), "{key}");
        }
    }

    #[test]
    fn a_signed_file_reads_back_and_describes_itself() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca");
        fs::write(&ca, include_str!("../../tests/fixtures/ca_rsa")).unwrap();
        fs::set_permissions(&ca, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let key = dir.path().join("ann.pub");
        fs::write(&key, include_str!("../../tests/fixtures/client_rsa.pub")).unwrap();
        let request = SignRequest {
            ca: ca.clone(),
            passphrase: PassphraseSource::EnvOrPrompt,
            key: key.clone(),
            kind: CertKind::User,
            name: "ann".to_owned(),
            serial: Some(7),
            validity: Validity::For(3600),
            options: vec!["no-files".to_owned(), r#"allow="ls *""#.to_owned()],
        };
        let now = 1_800_000_000;
        let signed = sign(&request, now).unwrap();
        assert_eq!(signed.path, dir.path().join("ann-cert.pub"));
        let read = load_certificate(&signed.path).unwrap();
        assert_eq!(read.comment, "test-client");
        assert_eq!(read.cert.encode(), signed.cert.encode());
        let ca_key = private::load_private_key(&ca, &PassphraseSource::EnvOrPrompt).unwrap();
        read.cert.verify(ca_key.public_key(), now).unwrap();
        let lines = describe_lines(&read, now);
        let expected = [
            "type:        user certificate".to_owned(),
            format!("key:         {}", public::fingerprint(read.cert.key())),
            "name:        ann".to_owned(),
            "serial:      7".to_owned(),
            "valid from:  2027-01-15T08:00:00Z".to_owned(),
            "valid until: 2027-01-15T09:00:00Z".to_owned(),
            r#"options:     no-files,allow="ls *""#.to_owned(),
            format!("ca:          {}", public::fingerprint(ca_key.public_key())),
            "status:      valid".to_owned(),
            "comment:     test-client".to_owned(),
        ];
        assert_eq!(lines, expected);
        let later = describe_lines(&read, now + 3600 + cert::CLOCK_SKEW_SECS);
        assert!(
            later.contains(&"status:      expired".to_owned()),
            "{later:?}"
        );

        // A second signing replaces the first; no serial given is a random one.
        let renewed = sign(
            &SignRequest {
                serial: None,
                ..request.clone()
            },
            now + 60,
        )
        .unwrap();
        let reread = load_certificate(&renewed.path).unwrap();
        assert_eq!(reread.cert.fields().valid_after, now + 60);
        assert_ne!(reread.cert.fields().serial, 7);

        // Bad fields are refused before the CA key is opened: a missing CA key is not what
        // the error is about.
        let bad = SignRequest {
            ca: dir.path().join("no-such-ca"),
            kind: CertKind::Host,
            name: "*.lan".to_owned(),
            ..request
        };
        let err = sign(&bad, now).unwrap_err().to_string();
        assert!(err.contains("`*.lan` is a pattern"), "{err}");
        let private = SignRequest {
            key: ca.clone(),
            ..bad
        };
        let err = sign(&private, now).unwrap_err().to_string();
        assert!(
            err.contains("/ca is a private key: pass its public key (")
                && err.ends_with("/ca.pub)"),
            "{err}"
        );
    }

    #[test]
    fn a_file_without_a_certificate_says_which_line() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty-cert.pub");
        fs::write(&empty, "# nothing\n\n").unwrap();
        let err = load_certificate(&empty).unwrap_err().to_string();
        assert!(
            err.ends_with("empty-cert.pub:1: expected a line starting with `seashell-rsa-cert`"),
            "{err}"
        );
        let key = dir.path().join("key.pub");
        fs::write(
            &key,
            format!("\n{}", include_str!("../../tests/fixtures/client_rsa.pub")),
        )
        .unwrap();
        let err = load_certificate(&key).unwrap_err().to_string();
        assert!(
            err.contains("key.pub:2: expected a line starting with"),
            "{err}"
        );
    }
}
