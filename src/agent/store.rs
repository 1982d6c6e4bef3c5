//! The agent's keys, pure: what it holds, each key's comment and expiry, and the answer to
//! each request (PROTOCOL.md §12), with the time passed in. It signs only a ClientAuth input
//! and never hands a private key out; a key is dropped (and so zeroized: `rsa`'s keys wipe
//! themselves) when removed, when its lifetime ends, or with the store. No I/O here.

use std::time::{Duration, Instant};

use crate::crypto::PrivateKey;

use crate::keys::public::{MAX_RSA_BITS, MIN_RSA_BITS};
use crate::proto::agent::{Listed, MAX_KEYS, Request, Response, is_client_auth_input};
use crate::proto::handshake::client::ClientSigner;

/// One key held.
struct Held {
    key: PrivateKey,
    public_key: Vec<u8>,
    comment: String,
    expires: Option<Instant>,
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
            } => (self.add(private_key, comment, *lifetime_secs, now), None),
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

    fn add(&mut self, der: &[u8], comment: &str, lifetime_secs: u32, now: Instant) -> Done {
        let Ok(key) = PrivateKey::from_pkcs8_der(der) else {
            return Done::Refused("not a PKCS#8 RSA private key");
        };
        if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&key.public_key().bits()) {
            return Done::Refused("an RSA key of an unsupported size");
        }
        let public_key = key.public_key().spki_der().to_vec();
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
    fn what_is_not_a_private_key_is_refused() {
        let mut store = KeyStore::default();
        let add = Request::Add {
            private_key: b"garbage",
            comment: "x",
            lifetime_secs: 0,
        };
        assert_eq!(
            ask(&mut store, &add, Instant::now()).0,
            Done::Refused("not a PKCS#8 RSA private key")
        );
    }
}
