//! The agent's keys, pure: what it holds, each key's comment and expiry, and the answer to
//! each request (PROTOCOL.md §12), with the time passed in. It signs only a ClientAuth input
//! and never hands a private key out; a key is dropped (and so zeroized: `rsa`'s keys wipe
//! themselves) when removed, when its lifetime ends, or with the store. No I/O here.

use std::time::{Duration, Instant};

use crate::crypto::PrivateKey;

use crate::keys::cert::{CertKind, Certificate};
use crate::keys::public::{MAX_RSA_BITS, MIN_RSA_BITS};
use crate::proto::agent::{Listed, MAX_KEYS, Request, Response, is_client_auth_input};
use crate::proto::handshake::client::ClientSigner;

/// One key held.
struct Held {
    key: PrivateKey,
    public_key: Vec<u8>,
    comment: String,
    expires: Option<Instant>,
    /// A user certificate of this key (its encoding), or empty.
    certificate: Vec<u8>,
}

/// The keys an agent holds.
#[derive(Default)]
pub struct KeyStore {
    keys: Vec<Held>,
}

/// What a request did, for the agent's log (never a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    /// A key was added (its comment).
    Added(String),
    /// Keys were removed (how many).
    Removed(usize),
    /// The keys were listed.
    Listed,
    /// A ClientAuth input was signed with the key of this comment.
    Signed(String),
    /// The certificate held with the key of this comment was given (or that it has none).
    GaveCertificate(String),
    /// Refused, and why.
    Refused(&'static str),
}

impl KeyStore {
    /// Answers `request` at `now`, appending the response frame to `out`.
    pub fn handle(&mut self, request: &Request<'_>, now: Instant, out: &mut Vec<u8>) -> Done {
        self.expire(now);
        let (done, signature) = match request {
            Request::Add {
                private_key,
                comment,
                lifetime_secs,
                certificate,
            } => (
                self.add(private_key, comment, *lifetime_secs, certificate, now),
                None,
            ),
            Request::Remove { public_key } => {
                let before = self.keys.len();
                self.keys.retain(|held| held.public_key != *public_key);
                match before - self.keys.len() {
                    0 => (Done::Refused("the agent does not hold that key"), None),
                    n => (Done::Removed(n), None),
                }
            }
            Request::RemoveAll => {
                let n = self.keys.len();
                self.keys.clear();
                (Done::Removed(n), None)
            }
            Request::List => {
                let keys = self
                    .keys
                    .iter()
                    .map(|held| Listed {
                        public_key: &held.public_key,
                        comment: &held.comment,
                        expires_in_secs: held.expires.map_or(0, |at| remaining_secs(at, now)),
                    })
                    .collect();
                return encoded(out, &Response::Keys(keys), Done::Listed);
            }
            Request::Sign { public_key, data } => self.sign(public_key, data),
            Request::Certificate { public_key } => {
                let Some(held) = self.keys.iter().find(|held| held.public_key == *public_key)
                else {
                    return encoded(
                        out,
                        &Response::Failure("the agent does not hold that key"),
                        Done::Refused("the agent does not hold that key"),
                    );
                };
                let done = Done::GaveCertificate(held.comment.clone());
                return encoded(out, &Response::Certificate(&held.certificate), done);
            }
        };
        let response = match (&done, &signature) {
            (Done::Refused(why), _) => Response::Failure(why),
            (_, Some(signature)) => Response::Signature(signature),
            _ => Response::Ok,
        };
        encoded(out, &response, done)
    }

    /// When the next key expires, if one has a lifetime.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.keys.iter().filter_map(|held| held.expires).min()
    }

    /// Forgets every key whose lifetime has ended at `now`; returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let before = self.keys.len();
        self.keys
            .retain(|held| held.expires.is_none_or(|at| at > now));
        before - self.keys.len()
    }

    fn add(
        &mut self,
        der: &[u8],
        comment: &str,
        lifetime_secs: u32,
        certificate: &[u8],
        now: Instant,
    ) -> Done {
        let Ok(key) = PrivateKey::from_pkcs8_der(der) else {
            return Done::Refused("not a PKCS#8 RSA private key");
        };
        if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&key.public_key().bits()) {
            return Done::Refused("an RSA key of an unsupported size");
        }
        let public_key = key.public_key().spki_der().to_vec();
        // Held only if it is a user certificate of this very key; whether it is valid (its
        // CA, its time) is for the server to judge, and the client checks the time first.
        if !certificate.is_empty() {
            match Certificate::decode(certificate) {
                Ok(cert)
                    if cert.key_der() == public_key && cert.fields().kind == CertKind::User => {}
                Ok(_) => {
                    return Done::Refused("the certificate is not a user certificate of that key");
                }
                Err(_) => return Done::Refused("not a seashell certificate"),
            }
        }
        // The same key again replaces the one held (its comment and lifetime are new).
        self.keys.retain(|held| held.public_key != public_key);
        if self.keys.len() >= MAX_KEYS {
            return Done::Refused("the agent holds as many keys as it can (32)");
        }
        let expires = (lifetime_secs > 0)
            .then(|| now.checked_add(Duration::from_secs(u64::from(lifetime_secs))))
            .flatten();
        self.keys.push(Held {
            key,
            public_key,
            comment: comment.to_owned(),
            expires,
            certificate: certificate.to_vec(),
        });
        Done::Added(comment.to_owned())
    }

    fn sign(&self, public_key: &[u8], data: &[u8]) -> (Done, Option<Vec<u8>>) {
        if !is_client_auth_input(data) {
            return (
                Done::Refused("the agent signs only a seashell ClientAuth"),
                None,
            );
        }
        let Some(held) = self.keys.iter().find(|held| held.public_key == public_key) else {
            return (Done::Refused("the agent does not hold that key"), None);
        };
        match ClientSigner::sign(&held.key, data) {
            Ok(signature) => (Done::Signed(held.comment.clone()), Some(signature)),
            Err(_) => (Done::Refused("signing failed"), None),
        }
    }
}

/// Whole seconds left until `at`, rounded up (a key that has not expired has at least 1).
fn remaining_secs(at: Instant, now: Instant) -> u32 {
    let left = at.saturating_duration_since(now);
    let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    u32::try_from(secs.max(1)).unwrap_or(u32::MAX)
}

fn encoded(out: &mut Vec<u8>, response: &Response<'_>, done: Done) -> Done {
    match response.encode(out) {
        Ok(()) => done,
        // Every field is bounded when it enters the store, so this does not happen; answer
        // with a failure rather than nothing.
        Err(_) => {
            let _ = Response::Failure("answer too long").encode(out);
            Done::Refused("answer too long")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::agent::{HEADER_LEN, SIGNED_LEN, frame_len};
    use crate::proto::handshake::CLIENT_SIGNATURE_LABEL;

    fn fixture() -> PrivateKey {
        crate::keys::private::from_pem(include_str!("../../tests/fixtures/client_rsa")).unwrap()
    }

    /// Handles `request` and returns the decoded response, owned enough to compare.
    fn ask(store: &mut KeyStore, request: &Request<'_>, now: Instant) -> (Done, Vec<u8>) {
        let mut out = Vec::new();
        let done = store.handle(request, now, &mut out);
        let header: [u8; HEADER_LEN] = out[..HEADER_LEN].try_into().unwrap();
        assert_eq!(frame_len(header).unwrap(), out.len() - HEADER_LEN);
        (done, out[HEADER_LEN..].to_vec())
    }

    fn listed(store: &mut KeyStore, now: Instant) -> Vec<(String, u32)> {
        let (_, body) = ask(store, &Request::List, now);
        match Response::decode(&body).unwrap() {
            Response::Keys(keys) => keys
                .iter()
                .map(|k| (k.comment.to_owned(), k.expires_in_secs))
                .collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_held_key_signs_only_a_client_auth_input_and_the_signature_verifies() {
        let key = fixture();
        let der = key.to_pkcs8_der().unwrap();
        let spki = key.public_key().spki_der().to_vec();
        let mut store = KeyStore::default();
        let now = Instant::now();
        let add = Request::Add {
            private_key: &der,
            comment: "ops",
            lifetime_secs: 0,
            certificate: b"",
        };
        assert_eq!(ask(&mut store, &add, now).0, Done::Added("ops".into()));

        let data = [CLIENT_SIGNATURE_LABEL, &[3; 32]].concat();
        assert_eq!(data.len(), SIGNED_LEN);
        let sign = Request::Sign {
            public_key: &spki,
            data: &data,
        };
        let (done, body) = ask(&mut store, &sign, now);
        assert_eq!(done, Done::Signed("ops".into()));
        let Response::Signature(signature) = Response::decode(&body).unwrap() else {
            panic!("no signature");
        };
        assert!(key.public_key().verify_pss_sha256(&data, signature));

        // Anything else of that length is refused: the agent is no signing oracle.
        let mut server_label = data.clone();
        server_label[11..17].copy_from_slice(b"server");
        for data in [&server_label[..], &data[..SIGNED_LEN - 1]] {
            let refused = Request::Sign {
                public_key: &spki,
                data,
            };
            let (done, body) = ask(&mut store, &refused, now);
            assert_eq!(
                done,
                Done::Refused("the agent signs only a seashell ClientAuth")
            );
            assert!(matches!(
                Response::decode(&body).unwrap(),
                Response::Failure(_)
            ));
        }
        // A key it does not hold.
        let other = Request::Sign {
            public_key: b"not a key",
            data: &data,
        };
        assert_eq!(
            ask(&mut store, &other, now).0,
            Done::Refused("the agent does not hold that key")
        );
    }

    #[test]
    fn keys_expire_at_their_lifetime_and_are_removed_one_or_all() {
        let key = fixture();
        let der = key.to_pkcs8_der().unwrap();
        let spki = key.public_key().spki_der().to_vec();
        let mut store = KeyStore::default();
        let start = Instant::now();
        let add = |lifetime_secs| Request::Add {
            private_key: &der,
            comment: "ops",
            lifetime_secs,
            certificate: b"",
        };
        ask(&mut store, &add(3600), start);
        assert_eq!(listed(&mut store, start), [("ops".to_owned(), 3600)]);
        assert_eq!(store.next_expiry(), Some(start + Duration::from_secs(3600)));
        let later = start + Duration::from_millis(3_599_500);
        assert_eq!(listed(&mut store, later), [("ops".to_owned(), 1)]);
        assert_eq!(store.expire(start + Duration::from_secs(3600)), 1);
        assert!(listed(&mut store, start).is_empty());
        assert_eq!(store.next_expiry(), None);

        // Added again, without a lifetime: it replaces, never duplicates.
        ask(&mut store, &add(60), start);
        ask(&mut store, &add(0), start);
        assert_eq!(listed(&mut store, start), [("ops".to_owned(), 0)]);
        let remove = Request::Remove { public_key: &spki };
        assert_eq!(ask(&mut store, &remove, start).0, Done::Removed(1));
        assert_eq!(
            ask(&mut store, &remove, start).0,
            Done::Refused("the agent does not hold that key")
        );
        ask(&mut store, &add(0), start);
        assert_eq!(
            ask(&mut store, &Request::RemoveAll, start).0,
            Done::Removed(1)
        );
        assert!(listed(&mut store, start).is_empty());
    }

    #[test]
    fn a_user_certificate_of_the_key_is_held_with_it_and_nothing_else_is() {
        use crate::keys::cert::CertFields;
        let key = fixture();
        let der = key.to_pkcs8_der().unwrap();
        let spki = key.public_key().spki_der().to_vec();
        let ca =
            crate::keys::private::from_pem(include_str!("../../tests/fixtures/ca_rsa")).unwrap();
        let issue = |kind, subject: &PrivateKey| {
            let fields = CertFields {
                kind,
                key: subject.public_key().clone(),
                name: "ann".into(),
                serial: 7,
                valid_after: 0,
                valid_before: 253_402_300_799,
                options: String::new(),
            };
            Certificate::issue(&ca, fields).unwrap().encode()
        };
        let user = issue(CertKind::User, &key);
        let mut store = KeyStore::default();
        let now = Instant::now();
        let add = |certificate| Request::Add {
            private_key: &der,
            comment: "ops",
            lifetime_secs: 0,
            certificate,
        };
        let ask_cert = Request::Certificate { public_key: &spki };

        // Without one, the answer is an empty certificate; with one, that certificate.
        ask(&mut store, &add(b""), now);
        let (done, body) = ask(&mut store, &ask_cert, now);
        assert_eq!(done, Done::GaveCertificate("ops".into()));
        assert_eq!(Response::decode(&body).unwrap(), Response::Certificate(b""));
        assert_eq!(
            ask(&mut store, &add(&user), now).0,
            Done::Added("ops".into())
        );
        let (_, body) = ask(&mut store, &ask_cert, now);
        assert_eq!(
            Response::decode(&body).unwrap(),
            Response::Certificate(&user)
        );

        // Another key's certificate, a host certificate and garbage are refused, and the
        // key held before is kept as it was.
        let other = issue(CertKind::User, &ca);
        let host = issue(CertKind::Host, &key);
        for (certificate, why) in [
            (
                &other[..],
                "the certificate is not a user certificate of that key",
            ),
            (
                &host[..],
                "the certificate is not a user certificate of that key",
            ),
            (b"garbage", "not a seashell certificate"),
        ] {
            assert_eq!(
                ask(&mut store, &add(certificate), now).0,
                Done::Refused(why)
            );
        }
        let (_, body) = ask(&mut store, &ask_cert, now);
        assert_eq!(
            Response::decode(&body).unwrap(),
            Response::Certificate(&user)
        );

        // The certificate of a key not held is a failure, not "none".
        let (done, body) = ask(&mut store, &Request::Certificate { public_key: b"k" }, now);
        assert_eq!(done, Done::Refused("the agent does not hold that key"));
        assert!(matches!(
            Response::decode(&body).unwrap(),
            Response::Failure(_)
        ));
    }

    #[test]
    fn what_is_not_a_private_key_is_refused() {
        let mut store = KeyStore::default();
        let add = Request::Add {
            private_key: b"garbage",
            comment: "x",
            lifetime_secs: 0,
            certificate: b"",
        };
        assert_eq!(
            ask(&mut store, &add, Instant::now()).0,
            Done::Refused("not a PKCS#8 RSA private key")
        );
    }
}
