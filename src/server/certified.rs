//! Admission by user certificate: given the key a client proved it holds and the certificate
//! it presented, decide whether a `cert-authority` line of authorized_keys admits it — the
//! certificate decodes and certifies that very key, its CA has a line, the CA's signature
//! holds, it is a user certificate valid now (give or take the clock skew), neither the key,
//! the serial nor the CA is revoked, the line's `principals=` names it, and the options of
//! the line and of the certificate combine. Pure: the files' contents and the time are
//! passed in. What a certificate claims is believed only once it is bound to the proven key:
//! a [`CertFailure::Unbound`] carries none of it.

use crate::keys::authorized::{AuthorizedKey, AuthorizedKeys};
use crate::keys::cert::{self, CertKind, CertRefusal, Certificate};
use crate::keys::revoked::RevokedKeys;

use super::policy::Policy;

/// A certificate admitted: the certificate, the line that admitted it, and what the session
/// may do.
#[derive(Debug, Clone)]
pub struct Certified {
    /// The certificate.
    pub cert: Certificate,
    /// The `cert-authority` line whose CA signed it and whose `principals=` name it.
    pub line: AuthorizedKey,
    /// The line's options and the certificate's, combined.
    pub policy: Policy,
}

/// Why a certificate did not admit the client.
#[derive(Debug, Clone)]
pub enum CertFailure {
    /// The bytes are not a certificate, or not one of the key the client proved: nothing it
    /// says may be recorded as fact. The text is for the server's log.
    Unbound(String),
    /// A certificate of the proven key, refused.
    Refused {
        /// The word the audit log's `reason` carries (`expired`, `wrong CA`, ...).
        reason: &'static str,
        /// The whole reason, for the server's log and the audit log's `rule`.
        detail: String,
        /// The certificate, once a trusted CA's signature vouches for what it says; `None`
        /// for `wrong CA` and `bad signature` (its name, serial and CA are only claims).
        cert: Option<Box<Certificate>>,
        /// The comment of the CA's line, when the CA has one.
        line_comment: String,
    },
}

/// What is revoked: nothing (no revoked_keys file), the file's entries, or everything (the
/// file could not be read safely since it was last good: fail closed).
#[derive(Debug, Clone, Copy)]
pub enum Revocations<'a> {
    /// No revoked_keys file is configured.
    None,
    /// The file's entries.
    Listed(&'a RevokedKeys),
    /// The file is unreadable or unsafe: every key counts as revoked.
    All,
}

impl Revocations<'_> {
    /// Is the key with this SPKI DER revoked?
    pub fn key(&self, spki_der: &[u8]) -> bool {
        match self {
            Self::None => false,
            Self::Listed(revoked) => revoked.key(spki_der),
            Self::All => true,
        }
    }

    fn certificate(&self, cert: &Certificate, ca_der: &[u8]) -> bool {
        self.key(cert.key_der())
            || self.key(ca_der)
            || match self {
                Self::None => false,
                Self::Listed(revoked) => revoked.serial(cert.ca_digest(), cert.fields().serial),
                Self::All => true,
            }
    }
}

/// Checks `certificate` (its encoding) for the client that proved `proven_der` (SPKI DER)
/// against `keys` at `now` (Unix seconds).
pub fn admit(
    keys: &AuthorizedKeys,
    revoked: Revocations<'_>,
    proven_der: &[u8],
    certificate: &[u8],
    now: u64,
) -> Result<Certified, CertFailure> {
    let cert = Certificate::decode(certificate)
        .map_err(|err| CertFailure::Unbound(format!("the certificate is unreadable: {err}")))?;
    if cert.key_der() != proven_der {
        return Err(CertFailure::Unbound(format!(
            "the certificate is for key {}, not the key the client proved",
            cert.key_fingerprint()
        )));
    }
    let lines: Vec<&AuthorizedKey> = keys.authorities(cert.ca_digest()).collect();
    let refuse = |refusal: CertRefusal, detail: String, comment: &str| CertFailure::Refused {
        reason: refusal.reason(),
        detail,
        cert: match refusal {
            CertRefusal::WrongCa | CertRefusal::BadSignature => None,
            _ => Some(Box::new(cert.clone())),
        },
        line_comment: comment.to_owned(),
    };
    let Some(first) = lines.first() else {
        return Err(refuse(
            CertRefusal::WrongCa,
            format!(
                "wrong CA: no cert-authority line for CA {}",
                cert.ca_fingerprint()
            ),
            "",
        ));
    };
    if let Err(refusal) = cert.verify(&first.key, now) {
        let detail = match refusal {
            CertRefusal::Expired | CertRefusal::NotYetValid => format!(
                "{refusal} (valid {} to {})",
                cert::format_time(cert.fields().valid_after),
                cert::format_time(cert.fields().valid_before)
            ),
            other => other.to_string(),
        };
        return Err(refuse(refusal, detail, &first.comment));
    }
    if cert.fields().kind != CertKind::User {
        return Err(refuse(
            CertRefusal::WrongName,
            "wrong name: a host certificate, not a user's".to_owned(),
            &first.comment,
        ));
    }
    if revoked.certificate(&cert, first.key.spki_der()) {
        return Err(refuse(
            CertRefusal::Revoked,
            format!(
                "revoked: its key, serial {} or CA is in revoked_keys",
                cert.fields().serial
            ),
            &first.comment,
        ));
    }
    let name = &cert.fields().name;
    let Some(line) = lines
        .iter()
        .find(|line| line.authority.as_ref().is_some_and(|p| p.admits(name)))
    else {
        return Err(refuse(
            CertRefusal::WrongName,
            format!(
                "wrong name: no cert-authority line for its CA lists `{}` in principals=",
                crate::shown::shown(name)
            ),
            &first.comment,
        ));
    };
    let policy = Policy::from_options(cert.options())
        .combine(Policy::from_options(&line.options))
        .map_err(|conflict| CertFailure::Refused {
            reason: "command conflict",
            detail: conflict.to_string(),
            cert: Some(Box::new(cert.clone())),
            line_comment: line.comment.clone(),
        })?;
    Ok(Certified {
        line: (*line).clone(),
        cert,
        policy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::PrivateKey;
    use crate::keys::cert::{CLOCK_SKEW_SECS, CertFields};
    use crate::keys::private;
    use crate::keys::public::{fingerprint, to_line};

    const START: u64 = 1_800_000_000;

    fn key(name: &str) -> PrivateKey {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        private::from_pem(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn cert(kind: CertKind, name: &str, options: &str) -> Vec<u8> {
        Certificate::issue(
            &key("ca_rsa"),
            CertFields {
                kind,
                key: key("client_rsa").public_key().clone(),
                name: name.to_owned(),
                serial: 7,
                valid_after: START,
                valid_before: START + 3600,
                options: options.to_owned(),
            },
        )
        .unwrap()
        .encode()
    }

    fn ca_line(options: &str) -> AuthorizedKeys {
        let line = format!(
            "{options} {} team CA",
            to_line(key("ca_rsa").public_key(), "")
        );
        let (keys, warnings) = AuthorizedKeys::parse(&line);
        assert!(warnings.is_empty(), "{warnings:?}");
        keys
    }

    fn client() -> Vec<u8> {
        key("client_rsa").public_key().spki_der().to_vec()
    }

    fn reason(result: Result<Certified, CertFailure>) -> &'static str {
        match result {
            Err(CertFailure::Refused { reason, .. }) => reason,
            Err(CertFailure::Unbound(text)) => panic!("unbound: {text}"),
            Ok(_) => panic!("admitted"),
        }
    }

    #[test]
    fn a_user_certificate_for_a_listed_principal_is_admitted_with_both_options() {
        let keys = ca_line(r#"cert-authority,principals="bob,ann",no-pty"#);
        let cert = cert(CertKind::User, "ann", "no-files");
        let ok = admit(&keys, Revocations::None, &client(), &cert, START).unwrap();
        assert_eq!(ok.cert.fields().name, "ann");
        assert_eq!(ok.line.comment, "team CA");
        assert!(!ok.policy.may_have_pty());
        assert!(ok.policy.check_files().is_err());
    }

    #[test]
    fn each_refusal_has_its_reason() {
        let keys = ca_line(r#"cert-authority,principals="ann""#);
        let user = cert(CertKind::User, "ann", "");
        let at = |now| admit(&keys, Revocations::None, &client(), &user, now);
        assert_eq!(reason(at(START + 3600 + CLOCK_SKEW_SECS + 1)), "expired");
        assert_eq!(reason(at(START - CLOCK_SKEW_SECS - 1)), "not yet valid");
        let bob = cert(CertKind::User, "bob", "");
        assert_eq!(
            reason(admit(&keys, Revocations::None, &client(), &bob, START)),
            "wrong name"
        );
        let host = cert(CertKind::Host, "ann", "");
        assert_eq!(
            reason(admit(&keys, Revocations::None, &client(), &host, START)),
            "wrong name"
        );
        let other_ca = AuthorizedKeys::parse(&format!(
            r#"cert-authority,principals="*" {}"#,
            to_line(key("other_rsa").public_key(), "")
        ))
        .0;
        assert_eq!(
            reason(admit(&other_ca, Revocations::None, &client(), &user, START)),
            "wrong CA"
        );
        let mut tampered = user.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(
            reason(admit(&keys, Revocations::None, &client(), &tampered, START)),
            "bad signature"
        );
    }

    #[test]
    fn the_key_the_serial_and_the_ca_revoke() {
        let keys = ca_line(r#"cert-authority,principals="*""#);
        let user = cert(CertKind::User, "ann", "");
        let ca = key("ca_rsa");
        let ca_fp = fingerprint(ca.public_key());
        for text in [
            fingerprint(key("client_rsa").public_key()),
            format!("serial:{ca_fp}:7"),
            ca_fp.clone(),
        ] {
            let (revoked, _) = RevokedKeys::parse(&text);
            let result = admit(
                &keys,
                Revocations::Listed(&revoked),
                &client(),
                &user,
                START,
            );
            assert_eq!(reason(result), "revoked", "{text}");
        }
        let (other_serial, _) = RevokedKeys::parse(&format!("serial:{ca_fp}:8"));
        assert!(
            admit(
                &keys,
                Revocations::Listed(&other_serial),
                &client(),
                &user,
                START
            )
            .is_ok()
        );
        assert_eq!(
            reason(admit(&keys, Revocations::All, &client(), &user, START)),
            "revoked"
        );
    }

    #[test]
    fn a_certificate_of_another_key_or_garbage_claims_nothing() {
        let keys = ca_line(r#"cert-authority,principals="*""#);
        let user = cert(CertKind::User, "ann", "");
        let other = key("other_rsa").public_key().spki_der().to_vec();
        for (proven, bytes) in [(other, user.clone()), (client(), vec![1, 2, 3])] {
            assert!(matches!(
                admit(&keys, Revocations::None, &proven, &bytes, START),
                Err(CertFailure::Unbound(_))
            ));
        }
    }

    #[test]
    fn differing_commands_refuse_and_a_plain_ca_key_is_no_user_key() {
        let keys = ca_line(r#"cert-authority,principals="*",command="backup""#);
        let user = cert(CertKind::User, "ann", r#"command="restore""#);
        assert_eq!(
            reason(admit(&keys, Revocations::None, &client(), &user, START)),
            "command conflict"
        );
        assert!(keys.find(key("ca_rsa").public_key()).is_none());
    }
}
