//! Public keys as seashell writes and reads them: the SubjectPublicKeyInfo DER that goes on
//! the wire, the one-line `seashell-rsa <base64> [comment]` text form, and the `SHA256:`
//! fingerprint people compare. Everything here is pure and total: any input gives `Ok` or a
//! typed error, never a panic.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};

use crate::crypto::{self, PublicKey};

/// The algorithm word that starts every public key line.
pub const KEY_TYPE: &str = "seashell-rsa";

/// Smallest RSA modulus seashell accepts, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// Largest RSA modulus seashell accepts, in bits (bounds the work a peer can make us do).
pub const MAX_RSA_BITS: usize = 4096;

/// Why a public key could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublicKeyError {
    /// Not a well-formed RSA SubjectPublicKeyInfo.
    #[error("not a valid RSA public key (SubjectPublicKeyInfo DER)")]
    Malformed,
    /// A modulus outside 2048..=4096 bits.
    #[error("RSA key of {0} bits: seashell accepts 2048 to 4096 bits")]
    BadSize(usize),
    /// The line does not start with `seashell-rsa`.
    #[error("expected a line starting with `{KEY_TYPE}`")]
    WrongType,
    /// The base64 field is missing or not base64.
    #[error("the key field is not valid base64")]
    BadBase64,
}

/// Parses SubjectPublicKeyInfo DER into an RSA key of an accepted size.
pub fn from_spki_der(der: &[u8]) -> Result<PublicKey, PublicKeyError> {
    let key = PublicKey::from_spki_der(der).map_err(|_| PublicKeyError::Malformed)?;
    let bits = key.bits();
    if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
        return Err(PublicKeyError::BadSize(bits));
    }
    Ok(key)
}

/// `SHA256:` and the unpadded standard base64 of SHA-256 over the SPKI DER (43 characters).
pub fn fingerprint_der(spki_der: &[u8]) -> String {
    format!(
        "SHA256:{}",
        STANDARD_NO_PAD.encode(crypto::sha256(spki_der))
    )
}

/// The fingerprint of a key: see [`fingerprint_der`].
pub fn fingerprint(key: &PublicKey) -> String {
    fingerprint_der(key.spki_der())
}

/// The one-line text form: `seashell-rsa <base64 SPKI DER> <comment>` (no comment if empty).
pub fn to_line(key: &PublicKey, comment: &str) -> String {
    let b64 = STANDARD.encode(key.spki_der());
    if comment.is_empty() {
        format!("{KEY_TYPE} {b64}")
    } else {
        format!("{KEY_TYPE} {b64} {comment}")
    }
}

/// A parsed public key line: the key and its comment (the rest of the line, may be empty).
#[derive(Debug, Clone)]
pub struct PublicKeyLine {
    /// The key.
    pub key: PublicKey,
    /// Free text after the key, trimmed.
    pub comment: String,
}

/// Parses `seashell-rsa <base64> [comment]`.
pub fn parse_line(line: &str) -> Result<PublicKeyLine, PublicKeyError> {
    let line = line.trim();
    let rest = line
        .strip_prefix(KEY_TYPE)
        .filter(|r| r.starts_with(char::is_whitespace))
        .ok_or(PublicKeyError::WrongType)?
        .trim_start();
    let (b64, comment) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let der = STANDARD
        .decode(b64)
        .map_err(|_| PublicKeyError::BadBase64)?;
    Ok(PublicKeyLine {
        key: from_spki_der(&der)?,
        comment: comment.trim().to_owned(),
    })
}
