//! The key schedule: from the handshake's two secrets and its transcript hash to the
//! per-direction traffic secrets, the session id, and each traffic secret's AES-256-GCM key
//! and IV. One HKDF-SHA256 extraction, then expansions with distinct labels, so no key ever
//! serves two purposes or two directions. All secrets zeroize on drop.

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::crypto::Prk;

const LABEL_C2S: &[u8] = b"seashell/1 c2s";
const LABEL_S2C: &[u8] = b"seashell/1 s2c";
const LABEL_SESSION_ID: &[u8] = b"seashell/1 session id";
const LABEL_KEY: &[u8] = b"seashell/1 key";
const LABEL_IV: &[u8] = b"seashell/1 iv";
const LABEL_KEY_UPDATE: &[u8] = b"seashell/1 key update";

/// A 32-byte secret from which one direction's keys are expanded.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct TrafficSecret([u8; 32]);

impl std::fmt::Debug for TrafficSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TrafficSecret(..)")
    }
}

/// An AES-256-GCM key and the IV its nonces are built from.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct TrafficKeys {
    /// AES-256 key.
    pub key: [u8; 32],
    /// 12-byte IV, XORed with the sequence number to make each nonce.
    pub iv: [u8; 12],
}

impl TrafficSecret {
    /// The key and IV of this secret.
    pub fn keys(&self) -> TrafficKeys {
        let mut keys = TrafficKeys {
            key: [0; 32],
            iv: [0; 12],
        };
        let prk = Prk::from_secret(&self.0);
        expand(&prk, LABEL_KEY, &mut keys.key);
        expand(&prk, LABEL_IV, &mut keys.iv);
        keys
    }

    /// The next secret after a KeyUpdate; the old one is dropped (and zeroized) by the caller.
    pub fn next(&self) -> Self {
        let mut next = [0; 32];
        expand(&Prk::from_secret(&self.0), LABEL_KEY_UPDATE, &mut next);
        Self(next)
    }

    /// The raw bytes, for known-answer tests.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// What the handshake derives: one traffic secret per direction and the session id.
#[derive(Debug)]
pub struct SessionSecrets {
    /// Client-to-server traffic secret.
    pub client_to_server: TrafficSecret,
    /// Server-to-client traffic secret.
    pub server_to_client: TrafficSecret,
    /// Public identifier of this session, shown to both sides and written to the audit log.
    pub session_id: [u8; 32],
}

/// `prk = HKDF-Extract(salt = th, ikm = secret || x25519)`, then the labelled expansions.
pub fn derive(transcript_hash: &[u8; 32], secret: &[u8; 32], x25519: &[u8; 32]) -> SessionSecrets {
    let mut ikm = Zeroizing::new([0u8; 64]);
    let (left, right) = ikm.split_at_mut(32);
    left.copy_from_slice(secret);
    right.copy_from_slice(x25519);
    let prk = Prk::extract(transcript_hash, ikm.as_slice());
    let mut c2s = [0; 32];
    let mut s2c = [0; 32];
    let mut session_id = [0; 32];
    expand(&prk, LABEL_C2S, &mut c2s);
    expand(&prk, LABEL_S2C, &mut s2c);
    expand(&prk, LABEL_SESSION_ID, &mut session_id);
    SessionSecrets {
        client_to_server: TrafficSecret(c2s),
        server_to_client: TrafficSecret(s2c),
        session_id,
    }
}

/// HKDF-Expand; output lengths here are far below HKDF's 255 × 32 limit, so it cannot fail.
fn expand(prk: &Prk, label: &[u8], out: &mut [u8]) {
    let _ = prk.expand(label, out);
}
