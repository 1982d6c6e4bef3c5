//! The client's known_hosts file: the host keys it has pinned, one `host:port seashell-rsa
//! <base64>` line each (an IPv6 host in brackets: `[fd00::1]:2222`). This module reads it,
//! answers "is this the key I pinned for that host?" (known, unknown, or changed with the line
//! that disagrees), appends a newly trusted key, and forgets a host. Two kinds of marked lines,
//! as in OpenSSH: `@cert-authority PATTERNS seashell-rsa <CA>` trusts the host certificates
//! that CA signed for the hosts the patterns match ([`KnownHosts::check_certificate`]), and
//! `@revoked PATTERNS seashell-rsa <key>` refuses a host key (or a CA) for them. PATTERNS is a
//! comma-separated list of globs over the host name dialed (`*.lan`, `10.0.0.*`) or exact
//! `host:port`s. Bad lines are skipped with a [`LineWarning`], never fatal — but an
//! `@revoked` line whose patterns do not parse revokes its key for every host (a skipped
//! revocation would trust what it revokes); the file is
//! created 0600 in a 0700 directory. It never decides whether to trust an unknown host: the
//! client does.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::net::Ipv6Addr;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use crate::crypto::PublicKey;

use crate::keys::cert::{self, CertKind, CertRefusal, Certificate};
use crate::keys::trust_file::{is_blank_or_comment, parse_trust_lines};
use crate::keys::{KeyError, LineProblem, LineWarning, files, public};

/// The parsed known_hosts file.
#[derive(Debug, Clone, Default)]
pub struct KnownHosts {
    /// The usable pinned keys, in file order.
    pub entries: Vec<KnownHost>,
    /// The `@cert-authority` and `@revoked` lines, in file order.
    pub marked: Vec<MarkedKey>,
}

/// What a marked line says of its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// `@cert-authority`: a CA whose host certificates are trusted.
    CertAuthority,
    /// `@revoked`: a key never to trust, pinned or certified.
    Revoked,
}

/// An `@cert-authority` or `@revoked` line.
#[derive(Debug, Clone)]
pub struct MarkedKey {
    /// Which marker.
    pub marker: Marker,
    /// The hosts it applies to.
    patterns: Vec<HostPattern>,
    /// The key.
    pub key: PublicKey,
    /// 1-based line number in the file.
    pub line: usize,
}

/// One pattern of a marked line.
#[derive(Debug, Clone)]
enum HostPattern {
    /// An exact `host:port`, canonical.
    HostPort(String),
    /// A glob over the host name (case-insensitive; `*` and `?`).
    Name(globset::GlobMatcher),
    /// Every host: what an `@revoked` line whose patterns do not parse applies to.
    Every,
}

impl HostPattern {
    fn parse(text: &str) -> Result<Self, LineProblem> {
        if let Some(host_port) = canonical_host_port(text) {
            return Ok(Self::HostPort(host_port));
        }
        // One colon is a port (an IPv6 address has at least two).
        if text.bytes().filter(|&b| b == b':').count() == 1 {
            return Err(LineProblem::GlobWithPort(text.to_owned()));
        }
        let text = &canonical_name(text);
        let valid = !text.is_empty()
            && text.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'*' | b'?' | b':')
            });
        let glob = valid
            .then(|| {
                globset::GlobBuilder::new(text)
                    .case_insensitive(true)
                    .literal_separator(false)
                    .build()
                    .ok()
            })
            .flatten()
            .ok_or_else(|| LineProblem::BadHostPattern(text.to_owned()))?;
        Ok(Self::Name(glob.compile_matcher()))
    }

    fn matches(&self, host: &str, host_port: &str) -> bool {
        match self {
            Self::HostPort(exact) => exact == host_port,
            Self::Name(glob) => glob.is_match(host),
            Self::Every => true,
        }
    }
}

impl MarkedKey {
    /// Does this line apply to `host` (the name dialed, without port) at `host_port`?
    fn applies_to(&self, host: &str, host_port: &str) -> bool {
        self.patterns.iter().any(|p| p.matches(host, host_port))
    }
}

/// What a host certificate is worth, by the `@cert-authority` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostCertStatus {
    /// Signed by a CA trusted for this host, valid now, for this key, naming this host.
    Trusted {
        /// The CA's `@cert-authority` line.
        line: usize,
        /// The CA's fingerprint.
        ca: String,
        /// The certificate's serial.
        serial: u64,
    },
    /// No certificate, or none whose CA has a line for this host: the pins decide.
    NoAuthority,
    /// A certificate from a CA trusted for this host, refused: the pins decide, and the user
    /// should hear why.
    Refused(String),
}

/// One pinned host key.
#[derive(Debug, Clone)]
pub struct KnownHost {
    /// `host:port` in canonical form (host name lower-cased, IPv6 address compressed, in
    /// brackets).
    pub host_port: String,
    /// The host's public key.
    pub key: PublicKey,
    /// Its `SHA256:` fingerprint.
    pub fingerprint: String,
    /// 1-based line number in the file.
    pub line: usize,
}

/// What known_hosts says about a host and the key it presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyStatus {
    /// This key is pinned for this host.
    Known,
    /// The host is not in the file.
    Unknown,
    /// The host is pinned to a different key: possibly an attack.
    Changed {
        /// The line of the first entry for the host.
        line: usize,
        /// The fingerprint pinned on that line.
        old_fingerprint: String,
    },
}

impl KnownHosts {
    /// Reads known_hosts; a missing file is an empty one, other read errors are errors.
    pub fn load(path: &Path) -> Result<(Self, Vec<LineWarning>), KeyError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Self::parse(&text)),
            Err(source) if source.kind() == std::io::ErrorKind::NotFound => {
                Ok((Self::default(), Vec::new()))
            }
            Err(source) => Err(KeyError::Read {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Parses known_hosts text: the good entries, and a warning for each bad line.
    pub fn parse(text: &str) -> (Self, Vec<LineWarning>) {
        let (lines, mut warnings) = parse_trust_lines(text, parse_line);
        let mut hosts = Self::default();
        for line in lines {
            match line {
                Line::Pin(entry) => hosts.entries.push(entry),
                Line::Marked(marked) => hosts.marked.push(marked),
                Line::RevokedEverywhere(marked, problem) => {
                    warnings.push(LineWarning {
                        line: marked.line,
                        problem,
                    });
                    hosts.marked.push(marked);
                }
            }
        }
        warnings.sort_by_key(|warning| warning.line);
        (hosts, warnings)
    }

    /// The `@revoked` line refusing `key` for `host` (the name dialed) at `host_port`, if any.
    pub fn revoked(&self, host: &str, host_port: &str, key: &PublicKey) -> Option<usize> {
        let host_port = canonical_host_port(host_port)?;
        let host = canonical_name(host);
        self.marked
            .iter()
            .find(|m| {
                m.marker == Marker::Revoked
                    && m.key.spki_der() == key.spki_der()
                    && m.applies_to(&host, &host_port)
            })
            .map(|m| m.line)
    }

    /// What `certificate` (its encoding, as the server sent it; empty for none) is worth for
    /// `key` at `host` (the name dialed, without port) and `host_port`, at `now` (Unix
    /// seconds): trusted only when an `@cert-authority` line for the host has its CA, the
    /// CA is not `@revoked`, the signature holds, it is a host certificate of `key` valid
    /// now, and one of its names is `host`.
    pub fn check_certificate(
        &self,
        host: &str,
        host_port: &str,
        key: &PublicKey,
        certificate: &[u8],
        now: u64,
    ) -> HostCertStatus {
        let (Some(host_port), false) = (canonical_host_port(host_port), certificate.is_empty())
        else {
            return HostCertStatus::NoAuthority;
        };
        let host = canonical_name(host);
        let Ok(cert) = Certificate::decode(certificate) else {
            return HostCertStatus::NoAuthority;
        };
        let Some(authority) = self.marked.iter().find(|m| {
            m.marker == Marker::CertAuthority
                && crate::crypto::sha256(m.key.spki_der()) == *cert.ca_digest()
                && m.applies_to(&host, &host_port)
        }) else {
            return HostCertStatus::NoAuthority;
        };
        let refused = |why: String| HostCertStatus::Refused(why);
        if let Some(line) = self.revoked(&host, &host_port, &authority.key) {
            return refused(format!("its CA is revoked (line {line})"));
        }
        if let Err(refusal) = cert.verify(&authority.key, now) {
            return refused(match refusal {
                CertRefusal::Expired | CertRefusal::NotYetValid => format!(
                    "it is {refusal} (valid {} to {})",
                    cert::format_time(cert.fields().valid_after),
                    cert::format_time(cert.fields().valid_before)
                ),
                other => other.to_string(),
            });
        }
        if cert.fields().kind != CertKind::Host {
            return refused("it is a user certificate".to_owned());
        }
        if cert.key_der() != key.spki_der() {
            return refused(format!(
                "it certifies key {}, not the host key presented",
                cert.key_fingerprint()
            ));
        }
        if !cert.names().any(|name| canonical_name(name) == host) {
            return refused(format!("it is for {}, not {host}", cert.fields().name));
        }
        HostCertStatus::Trusted {
            line: authority.line,
            ca: cert.ca_fingerprint(),
            serial: cert.fields().serial,
        }
    }

    /// Whether `key` is the key pinned for `host_port`. A `host_port` that is not valid
    /// `host:port` matches no entry.
    pub fn check(&self, host_port: &str, key: &PublicKey) -> HostKeyStatus {
        let Some(wanted) = canonical_host_port(host_port) else {
            return HostKeyStatus::Unknown;
        };
        let mut for_host = self
            .entries
            .iter()
            .filter(|e| e.host_port == wanted)
            .peekable();
        let Some(first) = for_host.peek().cloned() else {
            return HostKeyStatus::Unknown;
        };
        let spki = key.spki_der().to_vec();
        if for_host.any(|entry| entry.key.spki_der().to_vec() == spki) {
            return HostKeyStatus::Known;
        }
        HostKeyStatus::Changed {
            line: first.line,
            old_fingerprint: first.fingerprint.clone(),
        }
    }
}

/// Appends `host_port seashell-rsa <base64>` to the file at `path`, creating the file (0600)
/// and its directory (0700) if missing.
pub fn append(path: &Path, host_port: &str, key: &PublicKey) -> Result<(), KeyError> {
    let host_port = canonical_host_port(host_port)
        .ok_or_else(|| KeyError::BadHostPort(host_port.to_owned()))?;
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        files::create_private_dir(dir)?;
    }
    let write_error = |source| KeyError::Write {
        path: path.to_owned(),
        source,
    };
    let existing = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(source) => {
            return Err(KeyError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    let separator = if existing.is_empty() || existing.ends_with(b"\n") {
        ""
    } else {
        "\n"
    };
    let entry = format!("{separator}{host_port} {}\n", public::to_line(key, ""));
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map_err(write_error)?;
    file.write_all(entry.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(write_error)
}

/// Removes every entry for `host_port` from the file at `path` (rewritten atomically, 0600;
/// comments and other lines kept as they were). Returns how many lines were removed; a missing
/// file has none.
pub fn forget(path: &Path, host_port: &str) -> Result<usize, KeyError> {
    let wanted = canonical_host_port(host_port)
        .ok_or_else(|| KeyError::BadHostPort(host_port.to_owned()))?;
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(source) => {
            return Err(KeyError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    let mut kept = String::with_capacity(text.len());
    let mut removed = 0;
    for line in text.lines() {
        let is_wanted = !is_blank_or_comment(line)
            && line
                .split_whitespace()
                .next()
                .and_then(canonical_host_port)
                .is_some_and(|host| host == wanted);
        if is_wanted {
            removed += 1;
        } else {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    if removed > 0 {
        files::replace(path, 0o600, kept.as_bytes())?;
    }
    Ok(removed)
}

/// A good line: a pinned key or a marked one; or an `@revoked` line with bad patterns, read
/// as revoking its key everywhere (with the problem to warn of).
enum Line {
    Pin(KnownHost),
    Marked(MarkedKey),
    RevokedEverywhere(MarkedKey, LineProblem),
}

fn parse_line(content: &str, line: usize) -> Result<Line, LineProblem> {
    let content = content.trim();
    let Some(marked) = content.strip_prefix('@') else {
        return parse_entry(content, line).map(Line::Pin);
    };
    let (word, rest) = marked
        .split_once(char::is_whitespace)
        .unwrap_or((marked, ""));
    let marker = match word {
        "cert-authority" => Marker::CertAuthority,
        "revoked" => Marker::Revoked,
        _ => return Err(LineProblem::UnknownMarker(format!("@{word}"))),
    };
    let rest = rest.trim_start();
    let (list, key_part) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let patterns = list
        .split(',')
        .map(HostPattern::parse)
        .collect::<Result<Vec<_>, _>>();
    let key = public::parse_line(key_part)?.key;
    match (patterns, marker) {
        (Ok(patterns), _) => Ok(Line::Marked(MarkedKey {
            marker,
            patterns,
            key,
            line,
        })),
        // Skipping a revocation would trust its key: read it as revoking it everywhere.
        (Err(_), Marker::Revoked) => Ok(Line::RevokedEverywhere(
            MarkedKey {
                marker,
                patterns: vec![HostPattern::Every],
                key,
                line,
            },
            LineProblem::RevokedEverywhere(list.to_owned()),
        )),
        (Err(problem), Marker::CertAuthority) => Err(problem),
    }
}

fn parse_entry(content: &str, line: usize) -> Result<KnownHost, LineProblem> {
    let (host_field, key_part) = content
        .split_once(char::is_whitespace)
        .unwrap_or((content, ""));
    let host_port = canonical_host_port(host_field)
        .ok_or_else(|| LineProblem::BadHostPort(host_field.to_owned()))?;
    let key = public::parse_line(key_part)?.key;
    Ok(KnownHost {
        host_port,
        fingerprint: public::fingerprint(&key),
        key,
        line,
    })
}

/// A host name as it is compared with patterns and certificate names: lower case, and an
/// IPv6 address in its one canonical text form (RFC 5952: `fd00::1`, never `FD00:0::1`), so
/// that two spellings of an address are the same host.
fn canonical_name(text: &str) -> String {
    match text.parse::<Ipv6Addr>() {
        Ok(addr) => addr.to_string(),
        Err(_) => text.to_ascii_lowercase(),
    }
}

/// `host:port` or `[ipv6]:port` in canonical form, or `None` if it is neither. Host names are
/// lower-cased; IPv6 addresses are re-written compressed; the port is 1 to 65535.
pub fn canonical_host_port(text: &str) -> Option<String> {
    let (host, port) = text.rsplit_once(':')?;
    let port = port
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| port.parse::<u16>().ok())
        .flatten()
        .filter(|&port| port != 0)?;
    if let Some(inner) = host.strip_prefix('[') {
        let addr: Ipv6Addr = inner.strip_suffix(']')?.parse().ok()?;
        return Some(format!("[{addr}]:{port}"));
    }
    let valid_host = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    valid_host.then(|| format!("{}:{port}", host.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt as _;

    use proptest::prelude::*;

    use super::*;

    const HOST_PUB: &str = include_str!("../../tests/fixtures/host_rsa.pub");
    const OTHER_PUB: &str = include_str!("../../tests/fixtures/other_rsa.pub");

    fn key(pub_line: &str) -> PublicKey {
        public::parse_line(pub_line).unwrap().key
    }

    fn line_for(host_port: &str, pub_line: &str) -> String {
        format!("{host_port} {}", public::to_line(&key(pub_line), ""))
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(
            canonical_host_port("Server.LAN:2222").as_deref(),
            Some("server.lan:2222")
        );
        assert_eq!(
            canonical_host_port("[FD00:0::1]:22").as_deref(),
            Some("[fd00::1]:22")
        );
        assert_eq!(
            canonical_host_port("10.0.0.1:7022").as_deref(),
            Some("10.0.0.1:7022")
        );
        for bad in [
            "host",
            "host:",
            ":22",
            "host:0",
            "host:65536",
            "host:+22",
            "fd00::1:22",
            "[fd00::1:22",
            "[not-v6]:22",
            "a b:22",
            "host:22 ",
        ] {
            assert_eq!(canonical_host_port(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn check_reports_known_unknown_and_changed() {
        let text = format!(
            "# pinned\n{}\n\n{}\n",
            line_for("box.lan:7022", HOST_PUB),
            line_for("[fd00::1]:7022", OTHER_PUB)
        );
        let (hosts, warnings) = KnownHosts::parse(&text);
        assert!(warnings.is_empty(), "{warnings:?}");
        let host = key(HOST_PUB);
        let other = key(OTHER_PUB);

        assert_eq!(hosts.check("box.lan:7022", &host), HostKeyStatus::Known);
        assert_eq!(hosts.check("BOX.lan:7022", &host), HostKeyStatus::Known);
        assert_eq!(
            hosts.check("[fd00:0:0::1]:7022", &other),
            HostKeyStatus::Known
        );
        assert_eq!(hosts.check("box.lan:7023", &host), HostKeyStatus::Unknown);
        assert_eq!(hosts.check("not a host", &host), HostKeyStatus::Unknown);
        assert_eq!(
            hosts.check("box.lan:7022", &other),
            HostKeyStatus::Changed {
                line: 2,
                old_fingerprint: public::fingerprint(&host)
            }
        );
    }

    #[test]
    fn any_pinned_key_of_a_host_counts_as_known() {
        let text = format!(
            "{}\n{}\n",
            line_for("box.lan:7022", HOST_PUB),
            line_for("box.lan:7022", OTHER_PUB)
        );
        let (hosts, _) = KnownHosts::parse(&text);
        assert_eq!(
            hosts.check("box.lan:7022", &key(OTHER_PUB)),
            HostKeyStatus::Known
        );
    }

    #[test]
    fn malformed_lines_are_skipped_with_warnings() {
        let text = format!(
            "{}\nbox.lan seashell-rsa AAAA\n[fd00::1:22 {}\nbox.lan:22 seashell-rsa !!\nbox.lan:22\n{}\n",
            line_for("a.lan:1", HOST_PUB),
            public::to_line(&key(HOST_PUB), ""),
            line_for("b.lan:2", OTHER_PUB),
        );
        let (hosts, warnings) = KnownHosts::parse(&text);
        let lines: Vec<usize> = hosts.entries.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![1, 6]);
        let warned: Vec<usize> = warnings.iter().map(|w| w.line).collect();
        assert_eq!(warned, vec![2, 3, 4, 5]);
        assert!(
            warnings[0]
                .to_string()
                .contains("`box.lan` is not host:port")
        );
    }

    #[test]
    fn load_of_a_missing_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let (hosts, warnings) = KnownHosts::load(&dir.path().join("nope")).unwrap();
        assert!(hosts.entries.is_empty() && warnings.is_empty());
    }

    #[test]
    fn append_creates_0600_in_a_0700_dir_then_forget_removes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("home/known_hosts");
        append(&path, "box.lan:7022", &key(HOST_PUB)).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
        // A hand-edited file without a final newline still gets a line of its own.
        let mut text = fs::read_to_string(&path).unwrap();
        text.push_str("# note without newline");
        fs::write(&path, &text).unwrap();
        append(&path, "[FD00::1]:7022", &key(OTHER_PUB)).unwrap();
        append(&path, "box.lan:7022", &key(OTHER_PUB)).unwrap();

        let (hosts, warnings) = KnownHosts::load(&path).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(hosts.entries.len(), 3);
        assert_eq!(
            hosts.check("[fd00::1]:7022", &key(OTHER_PUB)),
            HostKeyStatus::Known
        );
        assert!(matches!(
            append(&path, "nonsense", &key(HOST_PUB)),
            Err(KeyError::BadHostPort(_))
        ));

        assert_eq!(forget(&path, "BOX.LAN:7022").unwrap(), 2);
        let (hosts, _) = KnownHosts::load(&path).unwrap();
        assert_eq!(
            hosts.check("box.lan:7022", &key(HOST_PUB)),
            HostKeyStatus::Unknown
        );
        assert_eq!(
            hosts.check("[fd00::1]:7022", &key(OTHER_PUB)),
            HostKeyStatus::Known
        );
        assert!(
            fs::read_to_string(&path)
                .unwrap()
                .contains("# note without newline\n")
        );
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(forget(&path, "box.lan:7022").unwrap(), 0);
        assert_eq!(
            forget(&dir.path().join("missing"), "box.lan:7022").unwrap(),
            0
        );
    }

    #[test]
    fn an_ipv6_address_is_one_host_however_it_is_spelt_and_a_glob_with_a_port_is_refused() {
        let ca =
            crate::keys::private::from_pem(include_str!("../../tests/fixtures/ca_rsa")).unwrap();
        let host_key = key(HOST_PUB);
        let fields = cert::CertFields {
            kind: CertKind::Host,
            key: host_key.clone(),
            name: "web1.lan,FD00:0:0::A".into(),
            serial: 9,
            valid_after: 0,
            valid_before: 4_000_000_000,
            options: String::new(),
        };
        let certificate = Certificate::issue(&ca, fields).unwrap().encode();
        let ca_line = public::to_line(ca.public_key(), "");
        let text = format!(
            "@cert-authority fd00:0000::a {ca_line}\n@cert-authority *.lan:7022 {ca_line}\n"
        );
        let (hosts, warnings) = KnownHosts::parse(&text);
        // The pattern, the certificate's name and the host dialed are three spellings of
        // fd00::a.
        let status = hosts.check_certificate(
            "fd00::0:a",
            "[fd00::a]:7022",
            &host_key,
            &certificate,
            1_000_000_000,
        );
        assert!(
            matches!(status, HostCertStatus::Trusted { line: 1, .. }),
            "{status:?}"
        );
        // The glob with a port would never match: it is refused at load, with the fix.
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(warnings[0].line, 2);
        assert!(
            warnings[0].to_string().contains("write the glob alone"),
            "{}",
            warnings[0]
        );
        let status = hosts.check_certificate(
            "web1.lan",
            "web1.lan:7022",
            &host_key,
            &certificate,
            1_000_000_000,
        );
        assert!(matches!(status, HostCertStatus::NoAuthority), "{status:?}");

        // An @revoked pattern, too, names the address however the host dialed spells it.
        let (revoking, _) = KnownHosts::parse(&format!(
            "@revoked FD00::0:A {}\n",
            public::to_line(&host_key, "")
        ));
        assert_eq!(
            revoking.revoked("fd00:0::a", "[fd00::a]:7022", &host_key),
            Some(1)
        );
    }

    #[test]
    fn an_at_revoked_line_whose_patterns_do_not_parse_revokes_its_key_everywhere() {
        let host_key = key(HOST_PUB);
        let line = public::to_line(&host_key, "");
        let (hosts, warnings) = KnownHosts::parse(&format!(
            "@revoked *.lan:22,web[1] {line}\n@cert-authority *.lan:22 {line}\n"
        ));
        assert_eq!(
            hosts.revoked("a.example", "a.example:7022", &host_key),
            Some(1)
        );
        assert_eq!(hosts.revoked("10.0.0.1", "10.0.0.1:22", &host_key), Some(1));
        assert_eq!(
            hosts.revoked("a.example", "a.example:7022", &key(OTHER_PUB)),
            None
        );
        // Both lines are warned of; only the revocation is kept.
        let said: Vec<String> = warnings.iter().map(ToString::to_string).collect();
        assert_eq!(said.len(), 2, "{said:?}");
        assert!(said[0].starts_with("line 1: `*.lan:22,web[1]`"), "{said:?}");
        assert!(
            said[0].contains("revokes its key for every host"),
            "{said:?}"
        );
        assert!(said[1].starts_with("line 2 skipped: "), "{said:?}");
        assert_eq!(hosts.marked.len(), 1);
    }

    proptest! {
        #[test]
        fn parsing_any_text_never_panics(text in "\\PC{0,200}") {
            let _ = KnownHosts::parse(&text);
        }

        #[test]
        fn host_port_parsing_never_panics(text in "[\\[\\]a-zA-Z0-9:._ -]{0,40}") {
            let _ = canonical_host_port(&text);
        }
    }
}
