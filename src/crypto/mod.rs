//! The crypto provider: exactly the primitives the protocol uses, as a handful of types —
//! RSA-PSS-SHA256 signing and verification, RSA-OAEP-SHA256 with a label, AES-256-GCM sealing
//! and opening in place, X25519, HKDF-SHA256, SHA-256 and the CSPRNG — implemented by exactly
//! one backend per build, chosen by cargo feature: `aws-lc` (the default; AWS-LC through
//! aws-lc-rs) or `rustcrypto` (the pure-Rust `rsa`, `aes-gcm`, `x25519-dalek`, `hkdf`, `sha2`
//! and `rand`). Like rustls's `CryptoProvider`, everything above takes these types and never
//! names a crypto crate (tests/layers.rs checks it), so the two builds share every line of
//! protocol code and the same wire bytes. A key is loaded into the backend's own form once,
//! when it is read or made, never per connection.
//!
//! This module owns no policy (key sizes, labels and who may sign what live with their
//! callers), does no I/O beyond the operating system's random source, and never hands out a
//! secret except in a zeroizing buffer. Its errors say which operation failed and nothing
//! about the secret or the input.

#[cfg(all(feature = "aws-lc", feature = "rustcrypto"))]
compile_error!(
    "seashell builds with exactly one crypto provider: `cargo build` (AWS-LC, the default) or \
     `cargo build --no-default-features --features rustcrypto` (pure Rust), not both"
);

#[cfg(not(any(feature = "aws-lc", feature = "rustcrypto")))]
compile_error!(
    "seashell needs a crypto provider: `cargo build` (AWS-LC, the default) or \
     `cargo build --no-default-features --features rustcrypto` (pure Rust)"
);

#[cfg(feature = "aws-lc")]
mod aws_lc;
#[cfg(feature = "aws-lc")]
use aws_lc as backend;

#[cfg(all(feature = "rustcrypto", not(feature = "aws-lc")))]
mod rust_crypto;
#[cfg(all(feature = "rustcrypto", not(feature = "aws-lc")))]
use rust_crypto as backend;

use std::sync::Arc;

use zeroize::Zeroizing;

/// The provider this build was made with, for `seashell --version` and `-v` logs.
pub const PROVIDER: &str = backend::NAME;

/// Length of an AES-256-GCM tag.
pub const TAG_LEN: usize = 16;

/// A primitive failed; the operation is named, the input and keys are not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} failed")]
pub struct CryptoError(pub &'static str);

/// Fills `out` from the operating system's CSPRNG.
pub fn fill_random(out: &mut [u8]) -> Result<(), CryptoError> {
    backend::fill_random(out)
}

/// `N` bytes from the operating system's CSPRNG.
pub fn random<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut out = [0; N];
    fill_random(&mut out)?;
    Ok(out)
}

/// A running SHA-256.
#[derive(Clone)]
pub struct Sha256(backend::Sha256);

impl Default for Sha256 {
    fn default() -> Self {
        Self::new()
    }
}

impl Sha256 {
    /// A hash of nothing yet.
    pub fn new() -> Self {
        Self(backend::Sha256::new())
    }

    /// Adds `data`.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The digest of everything added.
    pub fn finish(self) -> [u8; 32] {
        self.0.finish()
    }
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(data);
    hash.finish()
}

/// An HKDF-SHA256 pseudorandom key, to expand labelled outputs from.
pub struct Prk(backend::Prk);

impl Prk {
    /// `HKDF-Extract(salt, ikm)`.
    pub fn extract(salt: &[u8], ikm: &[u8]) -> Self {
        Self(backend::Prk::extract(salt, ikm))
    }

    /// A uniformly random 32-byte secret used directly as the PRK (HKDF-Expand only, as for a
    /// traffic secret that is itself an HKDF output).
    pub fn from_secret(secret: &[u8; 32]) -> Self {
        Self(backend::Prk::from_secret(secret))
    }

    /// `HKDF-Expand(prk, info, out.len())` into `out`; fails beyond 255 × 32 bytes.
    pub fn expand(&self, info: &[u8], out: &mut [u8]) -> Result<(), CryptoError> {
        if out.len() > 255 * 32 {
            return Err(CryptoError("HKDF-Expand beyond 255 blocks"));
        }
        self.0.expand(info, out)
    }
}

/// An AES-256-GCM key, expanded once and used for many frames.
pub struct AeadKey(backend::AeadKey);

impl AeadKey {
    /// The key for these 32 bytes.
    pub fn new(key: &[u8; 32]) -> Result<Self, CryptoError> {
        backend::AeadKey::new(key).map(Self)
    }

    /// Encrypts `in_out` in place under `nonce` and `aad`; returns the tag. The caller makes
    /// sure a nonce is never used twice with one key.
    pub fn seal_in_place(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; TAG_LEN], CryptoError> {
        self.0.seal_in_place(nonce, aad, in_out)
    }

    /// Checks and decrypts `in_out` (ciphertext, then the tag) in place; returns the
    /// plaintext, the front of `in_out`. On failure the buffer holds nothing usable.
    pub fn open_in_place<'a>(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        in_out: &'a mut [u8],
    ) -> Result<&'a mut [u8], CryptoError> {
        let Some(plain_len) = in_out.len().checked_sub(TAG_LEN) else {
            return Err(CryptoError("AES-GCM open"));
        };
        self.0.open_in_place(nonce, aad, in_out)?;
        in_out
            .get_mut(..plain_len)
            .ok_or(CryptoError("AES-GCM open"))
    }
}

/// An X25519 key pair made for one handshake and consumed by it.
pub struct EphemeralSecret(backend::EphemeralSecret);

impl EphemeralSecret {
    /// A fresh key pair from the CSPRNG.
    pub fn generate() -> Result<Self, CryptoError> {
        backend::EphemeralSecret::generate().map(Self)
    }

    /// Our public share.
    pub fn public(&self) -> [u8; 32] {
        self.0.public()
    }

    /// The shared value with `peer`'s share; refuses the all-zero value a low-order share
    /// gives (RFC 7748 §6.1), so a peer cannot force a known key.
    pub fn agree(self, peer: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        contributory(self.0.agree(peer)?)
    }
}

/// X25519 of a given private scalar and a peer's share, refusing an all-zero result: for
/// known-answer vectors and Wycheproof, whose private keys are inputs.
pub fn x25519(private: &[u8; 32], peer: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    contributory(backend::x25519(private, peer)?)
}

fn contributory(shared: Zeroizing<[u8; 32]>) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    if shared.iter().all(|&b| b == 0) {
        return Err(CryptoError("X25519 (low-order share)"));
    }
    Ok(shared)
}

/// An RSA public key: its canonical SubjectPublicKeyInfo DER, its size, and the backend's
/// parsed form. Equal when the DER is equal. Cheap to clone.
#[derive(Clone)]
pub struct PublicKey {
    spki: Arc<[u8]>,
    bits: usize,
    key: Arc<backend::PublicKey>,
}

impl PublicKey {
    /// Parses SubjectPublicKeyInfo DER (an RSA key). The size policy is the caller's.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, CryptoError> {
        let (key, spki, bits) = backend::PublicKey::from_spki_der(der)?;
        Ok(Self {
            spki: spki.into(),
            bits,
            key: Arc::new(key),
        })
    }

    /// The canonical SubjectPublicKeyInfo DER.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// The modulus length in bits.
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// The modulus length in bytes: the size of every signature and ciphertext.
    pub fn size(&self) -> usize {
        self.bits.div_ceil(8)
    }

    /// Whether `signature` is an RSA-PSS-SHA256 signature (MGF1-SHA256, 32-byte salt) of
    /// `message` under this key.
    pub fn verify_pss_sha256(&self, message: &[u8], signature: &[u8]) -> bool {
        signature.len() == self.size() && self.key.verify_pss_sha256(message, signature)
    }

    /// RSA-OAEP-SHA256 (MGF1-SHA256) encryption of `plain` with `label`.
    pub fn encrypt_oaep_sha256(&self, label: &[u8], plain: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.key.encrypt_oaep_sha256(label, plain)
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.spki == other.spki
    }
}

impl Eq for PublicKey {}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({} bits)", self.bits)
    }
}

/// An RSA private key in the backend's form, with its public half. Cheap to clone: clones
/// share the one copy of the key, wiped when the last is dropped.
#[derive(Clone)]
pub struct PrivateKey {
    key: Arc<backend::PrivateKey>,
    public: PublicKey,
}

impl PrivateKey {
    /// A new key of `bits` bits (2048, 3072 or 4096) from the CSPRNG.
    pub fn generate(bits: usize) -> Result<Self, CryptoError> {
        let der = backend::PrivateKey::generate(bits)?;
        Self::from_pkcs8_der(&der)
    }

    /// Parses an unencrypted PKCS#8 `PrivateKeyInfo` (DER) holding an RSA key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, CryptoError> {
        let (key, spki) = backend::PrivateKey::from_pkcs8_der(der)?;
        Ok(Self {
            key: Arc::new(key),
            public: PublicKey::from_spki_der(&spki)?,
        })
    }

    /// The key as unencrypted PKCS#8 DER, in a buffer wiped when dropped.
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.key.to_pkcs8_der()
    }

    /// The public half.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// RSA-PSS-SHA256 signature (MGF1-SHA256, 32-byte salt) of `message`.
    pub fn sign_pss_sha256(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.key.sign_pss_sha256(message)
    }

    /// RSA-OAEP-SHA256 decryption of `ciphertext` with `label`; the plaintext is wiped when
    /// dropped. Every failure is the same error, whatever went wrong.
    pub fn decrypt_oaep_sha256(
        &self,
        label: &[u8],
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if ciphertext.len() != self.public.size() {
            return Err(CryptoError("RSA-OAEP decryption"));
        }
        self.key
            .decrypt_oaep_sha256(label, ciphertext)
            .map_err(|_| CryptoError("RSA-OAEP decryption"))
    }
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrivateKey({} bits)", self.public.bits)
    }
}
