//! The server's revoked_keys file: one revocation a line — a key's fingerprint
//! (`SHA256:…`, as `seashell fingerprint` prints it; a client key, a certified key or a CA),
//! the key itself (`seashell-rsa <base64> [comment]`, as in a `.pub` file), or one
//! certificate by its CA and serial (`serial:SHA256:…:N`); text after the entry is a
//! comment. This module parses and answers "is this revoked?"; the server decides what a
//! revocation refuses. Parsing is total: a bad line is a warning and every good line still
//! counts, so that a typo never un-revokes the rest.

use std::collections::HashSet;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;

use crate::keys::public::{self, KEY_TYPE};
use crate::keys::trust_file::parse_trust_lines;
use crate::keys::{LineProblem, LineWarning};

/// The prefix of a certificate revocation.
const SERIAL_PREFIX: &str = "serial:";

/// The parsed file: SHA-256 digests of revoked keys' SPKI DER, and revoked certificates as
/// (their CA's digest, serial).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevokedKeys {
    keys: HashSet<[u8; 32]>,
    serials: HashSet<([u8; 32], u64)>,
}

/// One good line.
enum Revocation {
    Key([u8; 32]),
    Serial([u8; 32], u64),
}

impl RevokedKeys {
    /// Parses the file's text: the revocations, and a warning for each bad line.
    pub fn parse(text: &str) -> (Self, Vec<LineWarning>) {
        let (entries, warnings) = parse_trust_lines(text, |line, _| parse_entry(line));
        let mut revoked = Self::default();
        for entry in entries {
            match entry {
                Revocation::Key(digest) => revoked.keys.insert(digest),
                Revocation::Serial(ca, serial) => revoked.serials.insert((ca, serial)),
            };
        }
        (revoked, warnings)
    }

    /// Is the key with this SPKI DER revoked?
    pub fn key(&self, spki_der: &[u8]) -> bool {
        self.keys.contains(&crate::crypto::sha256(spki_der))
    }

    /// Is the certificate with this serial from the CA with this SPKI digest revoked?
    pub fn serial(&self, ca_digest: &[u8; 32], serial: u64) -> bool {
        self.serials.contains(&(*ca_digest, serial))
    }

    /// How many revocations the file holds.
    pub fn len(&self) -> usize {
        self.keys.len() + self.serials.len()
    }

    /// True when the file revokes nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn parse_entry(line: &str) -> Result<Revocation, LineProblem> {
    let line = line.trim();
    if line.starts_with(KEY_TYPE) {
        let parsed = public::parse_line(line)?;
        return Ok(Revocation::Key(crate::crypto::sha256(
            parsed.key.spki_der(),
        )));
    }
    let entry = line.split_whitespace().next().unwrap_or_default();
    let bad = || LineProblem::BadRevocation(entry.to_owned());
    if let Some(rest) = entry.strip_prefix(SERIAL_PREFIX) {
        let (ca, serial) = rest.rsplit_once(':').ok_or_else(bad)?;
        let serial = serial.parse::<u64>().map_err(|_| bad())?;
        return Ok(Revocation::Serial(digest(ca).ok_or_else(bad)?, serial));
    }
    digest(entry).map(Revocation::Key).ok_or_else(bad)
}

/// The digest a `SHA256:` fingerprint stands for.
fn digest(fingerprint: &str) -> Option<[u8; 32]> {
    let b64 = fingerprint.strip_prefix("SHA256:")?;
    let bytes = STANDARD_NO_PAD.decode(b64).ok()?;
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::public::{fingerprint, parse_line};

    const CLIENT_PUB: &str = include_str!("../../tests/fixtures/client_rsa.pub");
    const CA_PUB: &str = include_str!("../../tests/fixtures/ca_rsa.pub");
    const OTHER_PUB: &str = include_str!("../../tests/fixtures/other_rsa.pub");

    fn spki(line: &str) -> Vec<u8> {
        parse_line(line).unwrap().key.spki_der().to_vec()
    }

    #[test]
    fn fingerprints_keys_and_serials_are_revoked_and_nothing_else() {
        let client = parse_line(CLIENT_PUB).unwrap().key;
        let ca = spki(CA_PUB);
        let ca_digest = crate::crypto::sha256(&ca);
        let text = format!(
            "# revoked on 2026-12-03\n{} laptop stolen\nserial:{}:7\n{}\nnonsense\nserial:{}:x\n",
            fingerprint(&client),
            public::fingerprint_der(&ca),
            OTHER_PUB.trim(),
            public::fingerprint_der(&ca),
        );
        let (revoked, warnings) = RevokedKeys::parse(&text);
        assert_eq!(revoked.len(), 3);
        assert!(revoked.key(client.spki_der()));
        assert!(revoked.key(&spki(OTHER_PUB)));
        assert!(!revoked.key(&ca), "a serial of a CA does not revoke the CA");
        assert!(revoked.serial(&ca_digest, 7));
        assert!(!revoked.serial(&ca_digest, 8));
        assert!(!revoked.serial(&crate::crypto::sha256(client.spki_der()), 7));
        let lines: Vec<usize> = warnings.iter().map(|w| w.line).collect();
        assert_eq!(lines, [5, 6]);
        assert!(
            warnings[0].to_string().contains("`nonsense`"),
            "{}",
            warnings[0]
        );
    }

    #[test]
    fn a_truncated_fingerprint_revokes_nothing_and_is_reported() {
        let (revoked, warnings) = RevokedKeys::parse("SHA256:abc\n");
        assert!(revoked.is_empty());
        assert_eq!(warnings.len(), 1);
    }
}
