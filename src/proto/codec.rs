//! The byte-level codec every message is built from: a bounded reader over a borrowed slice
//! and big-endian writers. The reader never panics and never allocates: each read checks the
//! bytes left first, and a message parser must end with [`Reader::finish`] so trailing bytes
//! are an error, not silently ignored.

use super::error::{DecodeError, EncodeError};
use crate::keys::cert::MAX_CERT_LEN;

/// A cursor over bytes received from the peer.
#[derive(Debug)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Starts reading `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    /// Takes exactly `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.rest.len() {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    /// Takes a fixed-size array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let bytes = self.take(N)?;
        <[u8; N]>::try_from(bytes).map_err(|_| DecodeError::Truncated)
    }

    /// Reads one byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(u8::from_be_bytes(self.array()?))
    }

    /// Reads a big-endian u16.
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// Reads a big-endian u32.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// Reads a big-endian i32.
    pub fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    /// Reads a big-endian i64.
    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    /// Reads a big-endian u64.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// Reads a u16-length-prefixed field of at most `max` bytes.
    pub fn bytes16(&mut self, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = usize::from(self.u16()?);
        if len > max {
            return Err(DecodeError::TooLong);
        }
        self.take(len)
    }

    /// Whether every byte was consumed.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }

    /// Succeeds only if every byte was consumed.
    pub fn finish(self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }
}

/// Appends a u16-length-prefixed field of at most `max` bytes; a longer field is an error,
/// never silently cut (a shortened command line would run a different command).
pub fn put_bytes16(out: &mut Vec<u8>, bytes: &[u8], max: usize) -> Result<(), EncodeError> {
    let len = u16::try_from(bytes.len())
        .ok()
        .filter(|_| bytes.len() <= max)
        .ok_or(EncodeError::FieldTooLong {
            len: bytes.len(),
            max,
        })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

/// A certificate field that is there only when it is not empty: `bytes16`, 1 to
/// [`MAX_CERT_LEN`] bytes, as the last field of a ServerHello, a ClientAuth or an agent request or answer (so that the
/// encoding without one is exactly the encoding from before certificates).
pub(crate) fn put_optional_certificate(
    out: &mut Vec<u8>,
    certificate: &[u8],
) -> Result<(), EncodeError> {
    if certificate.is_empty() {
        Ok(())
    } else {
        put_bytes16(out, certificate, MAX_CERT_LEN)
    }
}

/// Reads what [`put_optional_certificate`] wrote: nothing left is no certificate, and a
/// present field may not be empty (one encoding for "none").
pub(crate) fn optional_certificate<'a>(r: &mut Reader<'a>) -> Result<&'a [u8], DecodeError> {
    if r.is_empty() {
        return Ok(&[]);
    }
    let certificate = r.bytes16(MAX_CERT_LEN)?;
    if certificate.is_empty() {
        return Err(DecodeError::Invalid("empty certificate field"));
    }
    Ok(certificate)
}
