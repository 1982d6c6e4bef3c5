//! The RustCrypto backend of [`crate::crypto`] (feature `rustcrypto`): the design's pure-Rust
//! stack — `rsa` (RSA-PSS and blinded RSA-OAEP; see SECURITY.md on RUSTSEC-2023-0071),
//! `aes-gcm`, `x25519-dalek`, `hkdf`, `sha2`, and `rand`'s thread-local CSPRNG seeded by the
//! operating system. For builds without a C toolchain and for reviewers who want memory-safe
//! crypto only. It implements exactly what `crypto` declares and is named by nothing else.

use aes_gcm::aead::AeadInOut as _;
use aes_gcm::{Aes256Gcm, KeyInit as _};
use rand::Rng as _;
use rsa::Oaep;
use rsa::pkcs8::EncodePublicKey as _;
use rsa::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _, EncodePrivateKey as _};
use rsa::traits::PublicKeyParts as _;
use sha2::Digest as _;
use zeroize::Zeroizing;

use super::{CryptoError, TAG_LEN};

/// What `seashell --version` reports.
pub const NAME: &str = "rustcrypto";

pub fn fill_random(out: &mut [u8]) -> Result<(), CryptoError> {
    rand::rng().fill_bytes(out);
    Ok(())
}

#[derive(Clone)]
pub struct Sha256(sha2::Sha256);

impl Sha256 {
    pub fn new() -> Self {
        Self(sha2::Sha256::new())
    }

    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    pub fn finish(self) -> [u8; 32] {
        self.0.finalize().into()
    }
}

pub struct Prk(Zeroizing<[u8; 32]>);

impl Prk {
    pub fn extract(salt: &[u8], ikm: &[u8]) -> Self {
        let (prk, _) = hkdf::Hkdf::<sha2::Sha256>::extract(Some(salt), ikm);
        Self(Zeroizing::new(prk.into()))
    }

    pub fn from_secret(secret: &[u8; 32]) -> Self {
        Self(Zeroizing::new(*secret))
    }

    pub fn expand(&self, info: &[u8], out: &mut [u8]) -> Result<(), CryptoError> {
        hkdf::Hkdf::<sha2::Sha256>::from_prk(self.0.as_slice())
            .ok()
            .and_then(|hkdf| hkdf.expand(info, out).ok())
            .ok_or(CryptoError("HKDF-Expand"))
    }
}

pub struct AeadKey(Aes256Gcm);

impl AeadKey {
    pub fn new(key: &[u8; 32]) -> Result<Self, CryptoError> {
        Aes256Gcm::new_from_slice(key)
            .map(Self)
            .map_err(|_| CryptoError("AES-256-GCM key set-up"))
    }

    pub fn seal_in_place(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; TAG_LEN], CryptoError> {
        self.0
            .encrypt_inout_detached(&(*nonce).into(), aad, in_out.into())
            .map(Into::into)
            .map_err(|_| CryptoError("AES-GCM seal"))
    }

    pub fn open_in_place(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<(), CryptoError> {
        let failed = CryptoError("AES-GCM open");
        let split = in_out.len().checked_sub(TAG_LEN).ok_or(failed)?;
        let (ciphertext, tag) = in_out.split_at_mut(split);
        let tag = <[u8; TAG_LEN]>::try_from(&*tag).map_err(|_| failed)?;
        self.0
            .decrypt_inout_detached(&(*nonce).into(), aad, ciphertext.into(), &tag.into())
            .map_err(|_| failed)
    }
}

pub struct EphemeralSecret(x25519_dalek::EphemeralSecret);

impl EphemeralSecret {
    pub fn generate() -> Result<Self, CryptoError> {
        Ok(Self(x25519_dalek::EphemeralSecret::random_from_rng(
            &mut rand::rng(),
        )))
    }

    pub fn public(&self) -> [u8; 32] {
        x25519_dalek::PublicKey::from(&self.0).to_bytes()
    }

    pub fn agree(self, peer: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        let shared = self.0.diffie_hellman(&x25519_dalek::PublicKey::from(*peer));
        Ok(Zeroizing::new(shared.to_bytes()))
    }
}

pub fn x25519(private: &[u8; 32], peer: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    Ok(Zeroizing::new(x25519_dalek::x25519(*private, *peer)))
}

pub struct PublicKey(rsa::PublicKey);

impl PublicKey {
    /// The key, its canonical SPKI DER and its size in bits.
    pub fn from_spki_der(der: &[u8]) -> Result<(Self, Vec<u8>, usize), CryptoError> {
        let key = rsa::PublicKey::from_public_key_der(der)
            .map_err(|_| CryptoError("RSA public key parsing"))?;
        let spki = spki(&key)?;
        let bits = key.n().bit_width_vartime() as usize;
        Ok((Self(key), spki, bits))
    }

    pub fn verify_pss_sha256(&self, message: &[u8], signature: &[u8]) -> bool {
        self.0
            .pss_verify::<sha2::Sha256>(message, signature)
            .is_ok()
    }

    pub fn encrypt_oaep_sha256(&self, label: &[u8], plain: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.0
            .encrypt(
                &mut rand::rng(),
                Oaep::<sha2::Sha256>::new_with_label(label),
                plain,
            )
            .map_err(|_| CryptoError("RSA-OAEP encryption"))
    }
}

fn spki(key: &rsa::PublicKey) -> Result<Vec<u8>, CryptoError> {
    key.to_public_key_der()
        .map(|doc| doc.as_bytes().to_vec())
        .map_err(|_| CryptoError("RSA public key encoding"))
}

pub struct PrivateKey(rsa::PrivateKey);

impl PrivateKey {
    /// A new key, as PKCS#8 DER.
    pub fn generate(bits: usize) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let key = rsa::PrivateKey::new(&mut rand::rng(), bits)
            .map_err(|_| CryptoError("RSA key generation"))?;
        Self(key).to_pkcs8_der()
    }

    /// The key and its public half's SPKI DER.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<(Self, Vec<u8>), CryptoError> {
        let key = rsa::PrivateKey::from_pkcs8_der(der)
            .map_err(|_| CryptoError("RSA private key parsing"))?;
        let spki = spki(key.as_public_key())?;
        Ok((Self(key), spki))
    }

    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.0
            .to_pkcs8_der()
            .map(|doc| Zeroizing::new(doc.as_bytes().to_vec()))
            .map_err(|_| CryptoError("RSA private key encoding"))
    }

    pub fn sign_pss_sha256(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.0
            .pss_sign_with_rng::<sha2::Sha256, _>(&mut rand::rng(), message)
            .map_err(|_| CryptoError("RSA-PSS signing"))
    }

    pub fn decrypt_oaep_sha256(
        &self,
        label: &[u8],
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.0
            .decrypt_blinded(
                &mut rand::rng(),
                Oaep::<sha2::Sha256>::new_with_label(label),
                ciphertext,
            )
            .map(Zeroizing::new)
            .map_err(|_| CryptoError("RSA-OAEP decryption"))
    }
}
