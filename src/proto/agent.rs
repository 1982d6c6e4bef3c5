//! The identity agent's socket protocol (PROTOCOL.md §12), pure: the request and response
//! codecs, the frame length check, and the one test of what the agent may sign. Every byte
//! from a peer of the socket is parsed here, totally; nothing here does I/O, holds a key or
//! knows the client or the agent's process.

use super::codec::{Reader, optional_certificate, put_bytes16, put_optional_certificate};
use super::error::{DecodeError, EncodeError};
use super::handshake::CLIENT_SIGNATURE_LABEL;

/// Largest frame body either side sends or accepts, in bytes: a list of [`MAX_KEYS`] keys
/// fits.
pub const MAX_FRAME: usize = 64 * 1024;
/// The length prefix before each frame body: a big-endian u32.
pub const HEADER_LEN: usize = 4;
/// Most keys an agent holds.
pub const MAX_KEYS: usize = 32;
/// Largest PKCS#8 DER private key (4096-bit RSA is about 2.4 KiB).
pub const MAX_PRIVATE_KEY: usize = 4096;
/// Largest SPKI DER public key.
pub const MAX_PUBLIC_KEY: usize = 1024;
/// Largest key comment and failure reason, in bytes of UTF-8.
pub const MAX_TEXT: usize = 256;
/// Largest signature (4096-bit RSA: 512 bytes).
pub const MAX_SIGNATURE: usize = 512;
/// What the agent signs: exactly the client's ClientAuth input, label then transcript hash.
pub const SIGNED_LEN: usize = CLIENT_SIGNATURE_LABEL.len() + 32;

/// A request to the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request<'a> {
    /// Hold this PKCS#8 DER private key, under `comment`, for `lifetime_secs` (0: until
    /// removed), with the user certificate of that key, if any.
    Add {
        /// The private key, PKCS#8 DER, unencrypted: a secret.
        private_key: &'a [u8],
        /// The key's comment, shown by `add -l`.
        comment: &'a str,
        /// Seconds until the agent forgets the key; 0 for never.
        lifetime_secs: u32,
        /// A certificate of the key (its encoding, PROTOCOL.md §13); empty for none.
        certificate: &'a [u8],
    },
    /// Forget the key with this SPKI.
    Remove {
        /// The key's SPKI DER.
        public_key: &'a [u8],
    },
    /// Forget every key.
    RemoveAll,
    /// List the keys held.
    List,
    /// Sign `data` (a ClientAuth input, [`is_client_auth_input`]) with the key with this SPKI.
    Sign {
        /// The key's SPKI DER.
        public_key: &'a [u8],
        /// What to sign.
        data: &'a [u8],
    },
    /// The certificate held with the key with this SPKI.
    Certificate {
        /// The key's SPKI DER.
        public_key: &'a [u8],
    },
}

/// One key the agent holds, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed<'a> {
    /// Its SPKI DER.
    pub public_key: &'a [u8],
    /// Its comment.
    pub comment: &'a str,
    /// Seconds until it is forgotten; 0 for never.
    pub expires_in_secs: u32,
}

/// The agent's answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response<'a> {
    /// Done.
    Ok,
    /// Refused or failed, and why (told to the agent's own user only).
    Failure(&'a str),
    /// The keys held, in the order they were added.
    Keys(Vec<Listed<'a>>),
    /// An RSA-PSS-SHA256 signature.
    Signature(&'a [u8]),
    /// The certificate held with a key (its encoding); empty when the key has none.
    Certificate(&'a [u8]),
}

const ADD: u8 = 0x01;
const REMOVE: u8 = 0x02;
const REMOVE_ALL: u8 = 0x03;
const LIST: u8 = 0x04;
const SIGN: u8 = 0x05;
const CERTIFICATE: u8 = 0x06;
const OK: u8 = 0x80;
const FAILURE: u8 = 0x81;
const KEYS: u8 = 0x82;
const SIGNATURE: u8 = 0x83;
const CERTIFICATE_HELD: u8 = 0x84;

/// The body length a frame header announces, refused above [`MAX_FRAME`] and at 0 before
/// anything is allocated.
pub fn frame_len(header: [u8; HEADER_LEN]) -> Result<usize, DecodeError> {
    let len = usize::try_from(u32::from_be_bytes(header)).map_err(|_| DecodeError::TooLong)?;
    match len {
        0 => Err(DecodeError::Truncated),
        len if len > MAX_FRAME => Err(DecodeError::TooLong),
        len => Ok(len),
    }
}

/// Whether `data` is what a client signs in ClientAuth (PROTOCOL.md §6.3): its label, then
/// a 32-byte transcript hash, and nothing else. The agent signs nothing else, so that it is
/// no signing oracle for any other use of the key.
pub fn is_client_auth_input(data: &[u8]) -> bool {
    data.len() == SIGNED_LEN && data.starts_with(CLIENT_SIGNATURE_LABEL)
}

fn borrowed_text<'a>(reader: &mut Reader<'a>) -> Result<&'a str, DecodeError> {
    let bytes = reader.bytes16(MAX_TEXT)?;
    std::str::from_utf8(bytes).map_err(|_| DecodeError::Invalid("text: not UTF-8"))
}

impl<'a> Request<'a> {
    /// Parses a frame body.
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let request = match r.u8()? {
            ADD => Self::Add {
                private_key: r.bytes16(MAX_PRIVATE_KEY)?,
                comment: borrowed_text(&mut r)?,
                lifetime_secs: r.u32()?,
                certificate: optional_certificate(&mut r)?,
            },
            REMOVE => Self::Remove {
                public_key: r.bytes16(MAX_PUBLIC_KEY)?,
            },
            REMOVE_ALL => Self::RemoveAll,
            LIST => Self::List,
            SIGN => Self::Sign {
                public_key: r.bytes16(MAX_PUBLIC_KEY)?,
                data: r.bytes16(SIGNED_LEN)?,
            },
            CERTIFICATE => Self::Certificate {
                public_key: r.bytes16(MAX_PUBLIC_KEY)?,
            },
            other => return Err(DecodeError::UnknownType(other)),
        };
        r.finish()?;
        Ok(request)
    }

    /// Appends the frame (header and body) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        frame(out, |body| {
            match self {
                Self::Add {
                    private_key,
                    comment,
                    lifetime_secs,
                    certificate,
                } => {
                    body.push(ADD);
                    put_bytes16(body, private_key, MAX_PRIVATE_KEY)?;
                    put_bytes16(body, comment.as_bytes(), MAX_TEXT)?;
                    body.extend_from_slice(&lifetime_secs.to_be_bytes());
                    put_optional_certificate(body, certificate)?;
                }
                Self::Remove { public_key } => {
                    body.push(REMOVE);
                    put_bytes16(body, public_key, MAX_PUBLIC_KEY)?;
                }
                Self::RemoveAll => body.push(REMOVE_ALL),
                Self::List => body.push(LIST),
                Self::Sign { public_key, data } => {
                    body.push(SIGN);
                    put_bytes16(body, public_key, MAX_PUBLIC_KEY)?;
                    put_bytes16(body, data, SIGNED_LEN)?;
                }
                Self::Certificate { public_key } => {
                    body.push(CERTIFICATE);
                    put_bytes16(body, public_key, MAX_PUBLIC_KEY)?;
                }
            }
            Ok(())
        })
    }
}

impl<'a> Response<'a> {
    /// Parses a frame body.
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let response = match r.u8()? {
            OK => Self::Ok,
            FAILURE => Self::Failure(borrowed_text(&mut r)?),
            KEYS => {
                let count = usize::from(r.u16()?);
                if count > MAX_KEYS {
                    return Err(DecodeError::TooLong);
                }
                let mut keys = Vec::with_capacity(count);
                for _ in 0..count {
                    keys.push(Listed {
                        public_key: r.bytes16(MAX_PUBLIC_KEY)?,
                        comment: borrowed_text(&mut r)?,
                        expires_in_secs: r.u32()?,
                    });
                }
                Self::Keys(keys)
            }
            SIGNATURE => Self::Signature(r.bytes16(MAX_SIGNATURE)?),
            CERTIFICATE_HELD => Self::Certificate(optional_certificate(&mut r)?),
            other => return Err(DecodeError::UnknownType(other)),
        };
        r.finish()?;
        Ok(response)
    }

    /// Appends the frame (header and body) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        frame(out, |body| {
            match self {
                Self::Ok => body.push(OK),
                Self::Failure(reason) => {
                    body.push(FAILURE);
                    put_bytes16(body, reason.as_bytes(), MAX_TEXT)?;
                }
                Self::Keys(keys) => {
                    body.push(KEYS);
                    let count = u16::try_from(keys.len())
                        .ok()
                        .filter(|_| keys.len() <= MAX_KEYS)
                        .ok_or(EncodeError::FieldTooLong {
                            len: keys.len(),
                            max: MAX_KEYS,
                        })?;
                    body.extend_from_slice(&count.to_be_bytes());
                    for key in keys {
                        put_bytes16(body, key.public_key, MAX_PUBLIC_KEY)?;
                        put_bytes16(body, key.comment.as_bytes(), MAX_TEXT)?;
                        body.extend_from_slice(&key.expires_in_secs.to_be_bytes());
                    }
                }
                Self::Signature(signature) => {
                    body.push(SIGNATURE);
                    put_bytes16(body, signature, MAX_SIGNATURE)?;
                }
                Self::Certificate(certificate) => {
                    body.push(CERTIFICATE_HELD);
                    put_optional_certificate(body, certificate)?;
                }
            }
            Ok(())
        })
    }
}

/// Writes a frame whose body `fill` appends; on error `out` is left as it was.
fn frame(
    out: &mut Vec<u8>,
    fill: impl FnOnce(&mut Vec<u8>) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_LEN]);
    let filled = fill(out).and_then(|()| {
        let len = out.len() - start - HEADER_LEN;
        if len > MAX_FRAME {
            return Err(EncodeError::FieldTooLong {
                len,
                max: MAX_FRAME,
            });
        }
        let header = u32::try_from(len).map_err(|_| EncodeError::FieldTooLong {
            len,
            max: MAX_FRAME,
        })?;
        if let Some(slot) = out.get_mut(start..start + HEADER_LEN) {
            slot.copy_from_slice(&header.to_be_bytes());
        }
        Ok(())
    });
    if filled.is_err() {
        out.truncate(start);
    }
    filled
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(frame: &[u8]) -> &[u8] {
        let header: [u8; HEADER_LEN] = frame[..HEADER_LEN].try_into().unwrap();
        let len = frame_len(header).unwrap();
        assert_eq!(frame.len(), HEADER_LEN + len);
        &frame[HEADER_LEN..]
    }

    #[test]
    fn every_request_and_response_round_trips() {
        let data = [CLIENT_SIGNATURE_LABEL, &[7; 32]].concat();
        let requests = [
            Request::Add {
                private_key: b"der",
                comment: "ops@box",
                lifetime_secs: 3600,
                certificate: b"",
            },
            Request::Add {
                private_key: b"der",
                comment: "ops@box",
                lifetime_secs: 0,
                certificate: b"cert",
            },
            Request::Certificate {
                public_key: b"spki",
            },
            Request::Remove {
                public_key: b"spki",
            },
            Request::RemoveAll,
            Request::List,
            Request::Sign {
                public_key: b"spki",
                data: &data,
            },
        ];
        for request in requests {
            let mut frame = Vec::new();
            request.encode(&mut frame).unwrap();
            assert_eq!(Request::decode(body(&frame)).unwrap(), request);
        }
        let responses = [
            Response::Ok,
            Response::Failure("no such key"),
            Response::Keys(vec![Listed {
                public_key: b"spki",
                comment: "a",
                expires_in_secs: 0,
            }]),
            Response::Signature(&[1; 384]),
            Response::Certificate(b""),
            Response::Certificate(&[2; 4096]),
        ];
        for response in responses {
            let mut frame = Vec::new();
            response.encode(&mut frame).unwrap();
            assert_eq!(Response::decode(body(&frame)).unwrap(), response);
        }
    }

    #[test]
    fn hostile_frames_are_refused_before_anything_is_allocated() {
        assert_eq!(frame_len([0; 4]), Err(DecodeError::Truncated));
        assert_eq!(frame_len([0xff; 4]), Err(DecodeError::TooLong));
        assert_eq!(frame_len(65537u32.to_be_bytes()), Err(DecodeError::TooLong));
        assert_eq!(Request::decode(&[0x09]), Err(DecodeError::UnknownType(9)));
        assert_eq!(Request::decode(&[LIST, 0]), Err(DecodeError::TrailingBytes));
        // A key count above the bound is refused before the list is read.
        assert_eq!(
            Response::decode(&[KEYS, 0xff, 0xff]),
            Err(DecodeError::TooLong)
        );
        // Data to sign longer than a ClientAuth input does not parse at all.
        let mut frame = Vec::new();
        let long = [0u8; SIGNED_LEN + 1];
        assert!(
            Request::Sign {
                public_key: b"k",
                data: &long
            }
            .encode(&mut frame)
            .is_err()
        );
        assert!(frame.is_empty());
    }

    #[test]
    fn a_certificate_is_absent_or_not_empty_and_bounded() {
        // An Add without the trailing field is the encoding from before certificates.
        let mut old = vec![ADD, 0, 1, b'k', 0, 0, 0, 0, 0, 0];
        assert_eq!(
            Request::decode(&old).unwrap(),
            Request::Add {
                private_key: b"k",
                comment: "",
                lifetime_secs: 0,
                certificate: b"",
            }
        );
        // A present field may not be empty (one encoding for "none").
        old.extend_from_slice(&[0, 0]);
        assert_eq!(
            Request::decode(&old),
            Err(DecodeError::Invalid("empty certificate field"))
        );
        assert_eq!(
            Response::decode(&[CERTIFICATE_HELD, 0, 0]),
            Err(DecodeError::Invalid("empty certificate field"))
        );
        // Longer than a certificate may be: refused on both sides.
        let mut frame = Vec::new();
        assert!(
            Response::Certificate(&[0; 4097])
                .encode(&mut frame)
                .is_err()
        );
        assert!(frame.is_empty());
        let mut long = vec![CERTIFICATE_HELD, 0x10, 0x01];
        long.resize(3 + 4097, 0);
        assert_eq!(Response::decode(&long), Err(DecodeError::TooLong));
    }

    #[test]
    fn only_a_client_auth_input_may_be_signed() {
        let good = [CLIENT_SIGNATURE_LABEL, &[0; 32]].concat();
        assert!(is_client_auth_input(&good));
        assert!(!is_client_auth_input(&good[..good.len() - 1]));
        let mut other_label = good.clone();
        other_label[9] = b'X';
        assert!(!is_client_auth_input(&other_label));
        assert!(!is_client_auth_input(b"seashell/1 server\0"));
    }
}
