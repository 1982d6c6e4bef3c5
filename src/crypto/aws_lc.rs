//! The AWS-LC backend of [`crate::crypto`] (feature `aws-lc`, the default): aws-lc-rs for
//! RSA (constant-time, with AWS-LC's assembly and AVX-512 IFMA paths), AES-256-GCM, X25519,
//! HKDF, SHA-256 and the random source. It implements exactly what `crypto` declares and is
//! named by nothing else.

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rsa::{
    KeyPair, KeySize, OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, OaepPublicEncryptingKey,
    PrivateDecryptingKey, PublicEncryptingKey,
};
use aws_lc_rs::signature::{
    KeyPair as _, ParsedPublicKey, RSA_PSS_2048_8192_SHA256, RSA_PSS_SHA256,
};
use aws_lc_rs::{aead, agreement, digest, hkdf};
use zeroize::Zeroizing;

use super::{CryptoError, TAG_LEN};

/// What `seashell --version` reports.
pub const NAME: &str = "aws-lc";

pub fn fill_random(out: &mut [u8]) -> Result<(), CryptoError> {
    aws_lc_rs::rand::fill(out).map_err(|_| CryptoError("random generation"))
}

#[derive(Clone)]
pub struct Sha256(digest::Context);

impl Sha256 {
    pub fn new() -> Self {
        Self(digest::Context::new(&digest::SHA256))
    }

    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    pub fn finish(self) -> [u8; 32] {
        <[u8; 32]>::try_from(self.0.finish().as_ref()).unwrap_or_default()
    }
}

pub struct Prk(hkdf::Prk);

/// An HKDF output length, as aws-lc-rs asks for one.
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

impl Prk {
    pub fn extract(salt: &[u8], ikm: &[u8]) -> Self {
        Self(hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm))
    }

    pub fn from_secret(secret: &[u8; 32]) -> Self {
        Self(hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, secret))
    }

    pub fn expand(&self, info: &[u8], out: &mut [u8]) -> Result<(), CryptoError> {
        let infos = [info];
        self.0
            .expand(&infos, Len(out.len()))
            .and_then(|okm| okm.fill(out))
            .map_err(|_| CryptoError("HKDF-Expand"))
    }
}

pub struct AeadKey(aead::LessSafeKey);

impl AeadKey {
    pub fn new(key: &[u8; 32]) -> Result<Self, CryptoError> {
        aead::UnboundKey::new(&aead::AES_256_GCM, key)
            .map(|key| Self(aead::LessSafeKey::new(key)))
            .map_err(|_| CryptoError("AES-256-GCM key set-up"))
    }

    pub fn seal_in_place(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; TAG_LEN], CryptoError> {
        let tag = self
            .0
            .seal_in_place_separate_tag(
                aead::Nonce::assume_unique_for_key(*nonce),
                aead::Aad::from(aad),
                in_out,
            )
            .map_err(|_| CryptoError("AES-GCM seal"))?;
        <[u8; TAG_LEN]>::try_from(tag.as_ref()).map_err(|_| CryptoError("AES-GCM seal"))
    }

    pub fn open_in_place(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<(), CryptoError> {
        self.0
            .open_in_place(
                aead::Nonce::assume_unique_for_key(*nonce),
                aead::Aad::from(aad),
                in_out,
            )
            .map(|_| ())
            .map_err(|_| CryptoError("AES-GCM open"))
    }
}

pub struct EphemeralSecret {
    key: agreement::EphemeralPrivateKey,
    public: [u8; 32],
}

/// Copies an X25519 shared value out of aws-lc-rs's callback.
fn shared_value(shared: &[u8]) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    <[u8; 32]>::try_from(shared)
        .map(Zeroizing::new)
        .map_err(|_| CryptoError("X25519"))
}

impl EphemeralSecret {
    pub fn generate() -> Result<Self, CryptoError> {
        let key = agreement::EphemeralPrivateKey::generate(
            &agreement::X25519,
            &aws_lc_rs::rand::SystemRandom::new(),
        )
        .map_err(|_| CryptoError("X25519 key generation"))?;
        let public = key
            .compute_public_key()
            .ok()
            .and_then(|public| <[u8; 32]>::try_from(public.as_ref()).ok())
            .ok_or(CryptoError("X25519 key generation"))?;
        Ok(Self { key, public })
    }

    pub fn public(&self) -> [u8; 32] {
        self.public
    }

    pub fn agree(self, peer: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        agreement::agree_ephemeral(
            self.key,
            agreement::UnparsedPublicKey::new(&agreement::X25519, peer),
            CryptoError("X25519"),
            shared_value,
        )
    }
}

pub fn x25519(private: &[u8; 32], peer: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    let key = agreement::PrivateKey::from_private_key(&agreement::X25519, private)
        .map_err(|_| CryptoError("X25519 private key"))?;
    agreement::agree(
        &key,
        agreement::UnparsedPublicKey::new(&agreement::X25519, peer),
        CryptoError("X25519"),
        shared_value,
    )
}

pub struct PublicKey {
    verifier: ParsedPublicKey,
    encryptor: OaepPublicEncryptingKey,
}

impl PublicKey {
    /// The key, its canonical SPKI DER and its size in bits.
    pub fn from_spki_der(der: &[u8]) -> Result<(Self, Vec<u8>, usize), CryptoError> {
        let malformed = |_| CryptoError("RSA public key parsing");
        let key = PublicEncryptingKey::from_der(der).map_err(malformed)?;
        let bits = key.key_size_bits();
        let spki = key
            .as_der()
            .map_err(|_| CryptoError("RSA public key encoding"))?
            .as_ref()
            .to_vec();
        let verifier = ParsedPublicKey::new(&RSA_PSS_2048_8192_SHA256, &spki).map_err(malformed)?;
        let encryptor =
            OaepPublicEncryptingKey::new(key).map_err(|_| CryptoError("RSA public key parsing"))?;
        Ok((
            Self {
                verifier,
                encryptor,
            },
            spki,
            bits,
        ))
    }

    pub fn verify_pss_sha256(&self, message: &[u8], signature: &[u8]) -> bool {
        self.verifier.verify_sig(message, signature).is_ok()
    }

    pub fn encrypt_oaep_sha256(&self, label: &[u8], plain: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut out = vec![0; self.encryptor.ciphertext_size()];
        let len = self
            .encryptor
            .encrypt(&OAEP_SHA256_MGF1SHA256, plain, &mut out, Some(label))
            .map_err(|_| CryptoError("RSA-OAEP encryption"))?
            .len();
        out.truncate(len);
        Ok(out)
    }
}

pub struct PrivateKey {
    signer: KeyPair,
    decryptor: OaepPrivateDecryptingKey,
}

impl PrivateKey {
    /// A new key, as PKCS#8 DER.
    pub fn generate(bits: usize) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let size = match bits {
            2048 => KeySize::Rsa2048,
            3072 => KeySize::Rsa3072,
            4096 => KeySize::Rsa4096,
            _ => return Err(CryptoError("RSA key generation (unsupported size)")),
        };
        let key = KeyPair::generate(size).map_err(|_| CryptoError("RSA key generation"))?;
        pkcs8(&key)
    }

    /// The key and its public half's SPKI DER.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<(Self, Vec<u8>), CryptoError> {
        let rejected = |_| CryptoError("RSA private key parsing");
        let signer = KeyPair::from_pkcs8(der).map_err(rejected)?;
        let decryptor = PrivateDecryptingKey::from_pkcs8(der)
            .map_err(rejected)
            .and_then(|key| {
                OaepPrivateDecryptingKey::new(key).map_err(|_| CryptoError("RSA private key"))
            })?;
        let spki = signer
            .public_key()
            .as_der()
            .map_err(|_| CryptoError("RSA public key encoding"))?
            .as_ref()
            .to_vec();
        Ok((Self { signer, decryptor }, spki))
    }

    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        pkcs8(&self.signer)
    }

    pub fn sign_pss_sha256(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut signature = vec![0; self.signer.public_modulus_len()];
        self.signer
            .sign(
                &RSA_PSS_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                message,
                &mut signature,
            )
            .map_err(|_| CryptoError("RSA-PSS signing"))?;
        Ok(signature)
    }

    pub fn decrypt_oaep_sha256(
        &self,
        label: &[u8],
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let mut out = Zeroizing::new(vec![0; self.decryptor.min_output_size()]);
        let len = self
            .decryptor
            .decrypt(&OAEP_SHA256_MGF1SHA256, ciphertext, &mut out, Some(label))
            .map_err(|_| CryptoError("RSA-OAEP decryption"))?
            .len();
        out.truncate(len);
        Ok(out)
    }
}

fn pkcs8(key: &KeyPair) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    key.as_der()
        .map(|der| Zeroizing::new(der.as_ref().to_vec()))
        .map_err(|_| CryptoError("RSA private key encoding"))
}
