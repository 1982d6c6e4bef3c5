//! The record layer: turns messages into encrypted frames and back. A frame is
//! `len: u32 BE || AES-256-GCM(key, nonce = iv XOR seq, aad = len, type || payload) || tag`.
//! Each direction has its own [`RecordSealer`] / [`RecordOpener`] pair with its own key and
//! sequence counter, so a frame can't be replayed, reordered, dropped or reflected without
//! failing to open. After [`UpdateLimits`] of data, frames or time the sealer sends KeyUpdate
//! and both ends step to the next traffic secret. The caller supplies the time: this module
//! has no clock.

use std::time::{Duration, Instant};

use super::error::ProtoError;
use super::message::{DataKind, Message};
use super::schedule::TrafficSecret;
use crate::crypto::{self, AeadKey};

/// Largest plaintext (type byte and payload) one frame may carry.
pub const MAX_PLAINTEXT: usize = 1 + MAX_CHUNK + 1024;
/// Largest data chunk (stdout, stderr, stdin) the sender puts in one frame.
pub const MAX_CHUNK: usize = 64 * 1024;
/// AES-GCM tag length.
pub const TAG_LEN: usize = crypto::TAG_LEN;
/// Largest `len` a receiver accepts; anything above is rejected before reading the body.
pub const MAX_FRAME_LEN: usize = MAX_PLAINTEXT + TAG_LEN;
/// Length of the frame header.
pub const HEADER_LEN: usize = 4;

/// When a sender must move to its next traffic key, whichever comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpdateLimits {
    /// Plaintext bytes under one key.
    pub bytes: u64,
    /// Frames under one key.
    pub frames: u64,
    /// Age of one key.
    pub age: Duration,
}

impl Default for UpdateLimits {
    /// 1 GiB, 2^24 frames, 1 hour.
    fn default() -> Self {
        Self {
            bytes: 1 << 30,
            frames: 1 << 24,
            age: Duration::from_secs(3600),
        }
    }
}

/// One direction's current key: cipher, IV, sequence number and usage counters. Both
/// providers' AES-256-GCM zeroize their key schedule when dropped.
struct Epoch {
    secret: TrafficSecret,
    cipher: AeadKey,
    iv: [u8; 12],
    seq: u64,
    bytes: u64,
    started: Instant,
}

impl Epoch {
    fn new(secret: TrafficSecret, now: Instant) -> Result<Self, ProtoError> {
        let keys = secret.keys();
        Ok(Self {
            cipher: AeadKey::new(&keys.key)?,
            iv: keys.iv,
            secret,
            seq: 0,
            bytes: 0,
            started: now,
        })
    }

    fn next(&self, now: Instant) -> Result<Self, ProtoError> {
        Self::new(self.secret.next(), now)
    }

    /// `iv XOR (0u32 || seq)`, then advances the sequence number.
    fn next_nonce(&mut self) -> Result<[u8; 12], ProtoError> {
        let mut nonce = self.iv;
        for (n, s) in nonce.iter_mut().skip(4).zip(self.seq.to_be_bytes()) {
            *n ^= s;
        }
        self.seq = self
            .seq
            .checked_add(1)
            .ok_or(ProtoError::Crypto("sequence number exhausted"))?;
        Ok(nonce)
    }

    fn exhausted(&self, limits: &UpdateLimits, now: Instant) -> bool {
        self.bytes >= limits.bytes
            || self.seq.saturating_add(1) >= limits.frames
            || now.saturating_duration_since(self.started) >= limits.age
    }
}

/// Seals outgoing messages into frames for one direction.
pub struct RecordSealer {
    epoch: Epoch,
    limits: UpdateLimits,
    updates: u64,
}

impl RecordSealer {
    /// A sealer starting at `secret` with sequence number 0.
    pub fn new(
        secret: TrafficSecret,
        limits: UpdateLimits,
        now: Instant,
    ) -> Result<Self, ProtoError> {
        Ok(Self {
            epoch: Epoch::new(secret, now)?,
            limits,
            updates: 0,
        })
    }

    /// How many KeyUpdates this sealer has sent (for logs).
    pub fn key_updates(&self) -> u64 {
        self.updates
    }

    /// Appends the frame for `msg` to `out`; first a KeyUpdate frame if a limit was reached.
    /// A KeyUpdate is the sealer's own (it switches keys after sealing one): asked to seal
    /// one as a message, it refuses, since the peer would switch keys and this side not.
    pub fn seal(
        &mut self,
        msg: &Message<'_>,
        now: Instant,
        out: &mut Vec<u8>,
    ) -> Result<(), ProtoError> {
        if matches!(msg, Message::KeyUpdate) {
            return Err(ProtoError::Misuse(
                "a KeyUpdate is sealed only by the sealer itself",
            ));
        }
        self.update_if_due(now, out)?;
        self.seal_one(msg, out)
    }

    /// Seals the first `len` payload bytes of `frame` as a [`DataKind`] message, in place
    /// (no copy of the payload), and returns the frame's bytes. If a limit was reached, the
    /// KeyUpdate frame that must go first is appended to `out`.
    pub fn seal_data<'f>(
        &mut self,
        kind: DataKind,
        frame: &'f mut DataFrame,
        len: usize,
        now: Instant,
        out: &mut Vec<u8>,
    ) -> Result<&'f [u8], ProtoError> {
        if len > MAX_CHUNK {
            return Err(ProtoError::Misuse("message larger than a frame"));
        }
        self.update_if_due(now, out)?;
        let end = HEADER_LEN + 1 + len;
        let buf = frame.buf.as_mut_slice();
        let (head, rest) = buf.split_at_mut(HEADER_LEN);
        let (plain, tail) = rest.split_at_mut(1 + len);
        if let Some(type_byte) = plain.first_mut() {
            *type_byte = kind.type_byte();
        }
        let (header, tag) = self.seal_in_place(plain)?;
        head.copy_from_slice(&header);
        tail.get_mut(..TAG_LEN)
            .ok_or(ProtoError::Misuse("frame buffer too small"))?
            .copy_from_slice(tag.as_ref());
        buf.get(..end + TAG_LEN)
            .ok_or(ProtoError::Misuse("frame buffer too small"))
    }

    fn update_if_due(&mut self, now: Instant, out: &mut Vec<u8>) -> Result<(), ProtoError> {
        if self.epoch.exhausted(&self.limits, now) {
            self.seal_one(&Message::KeyUpdate, out)?;
            self.epoch = self.epoch.next(now)?;
            self.updates += 1;
        }
        Ok(())
    }

    fn seal_one(&mut self, msg: &Message<'_>, out: &mut Vec<u8>) -> Result<(), ProtoError> {
        let start = out.len();
        out.extend_from_slice(&[0; HEADER_LEN]);
        if let Err(err) = msg.encode(out) {
            out.truncate(start);
            return Err(err.into());
        }
        let (head, plain) = out.split_at_mut(start + HEADER_LEN);
        let sealed = self.seal_in_place(plain);
        let (header, tag) = match sealed {
            Ok(sealed) => sealed,
            Err(err) => {
                out.truncate(start);
                return Err(err);
            }
        };
        if let Some(slot) = head.get_mut(start..) {
            slot.copy_from_slice(&header);
        }
        out.extend_from_slice(tag.as_ref());
        Ok(())
    }

    /// Encrypts `plain` (type byte and payload) in place as the next frame; returns its
    /// header and tag.
    fn seal_in_place(
        &mut self,
        plain: &mut [u8],
    ) -> Result<([u8; HEADER_LEN], [u8; TAG_LEN]), ProtoError> {
        if plain.len() > MAX_PLAINTEXT {
            return Err(ProtoError::Misuse("message larger than a frame"));
        }
        let len =
            u32::try_from(plain.len() + TAG_LEN).map_err(|_| ProtoError::Misuse("frame length"))?;
        let header = len.to_be_bytes();
        let nonce = self.epoch.next_nonce()?;
        let tag = self.epoch.cipher.seal_in_place(&nonce, &header, plain)?;
        self.epoch.bytes = self.epoch.bytes.saturating_add(plain.len() as u64);
        Ok((header, tag))
    }
}

/// A reusable buffer for one data frame, laid out so that a chunk read straight into
/// [`DataFrame::payload_mut`] can be sealed where it lies ([`RecordSealer::seal_data`]).
pub struct DataFrame {
    buf: Vec<u8>,
}

impl DataFrame {
    /// A zeroed buffer for one frame of up to [`MAX_CHUNK`] payload bytes.
    pub fn new() -> Self {
        Self {
            buf: vec![0; HEADER_LEN + 1 + MAX_CHUNK + TAG_LEN],
        }
    }

    /// The payload area: [`MAX_CHUNK`] bytes.
    pub fn payload(&self) -> &[u8] {
        self.buf
            .get(HEADER_LEN + 1..HEADER_LEN + 1 + MAX_CHUNK)
            .unwrap_or_default()
    }

    /// Where the payload goes: [`MAX_CHUNK`] bytes.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        self.buf
            .get_mut(HEADER_LEN + 1..HEADER_LEN + 1 + MAX_CHUNK)
            .unwrap_or_default()
    }
}

impl std::fmt::Debug for DataFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataFrame")
    }
}

impl Default for DataFrame {
    fn default() -> Self {
        Self::new()
    }
}

/// Opens incoming frames for one direction.
pub struct RecordOpener {
    epoch: Epoch,
}

/// The body length announced by a frame header, checked against [`MAX_FRAME_LEN`] before the
/// caller reads (or allocates for) the body.
pub fn frame_len(header: [u8; HEADER_LEN]) -> Result<usize, ProtoError> {
    let len = u32::from_be_bytes(header);
    match usize::try_from(len) {
        Ok(n) if (TAG_LEN + 1..=MAX_FRAME_LEN).contains(&n) => Ok(n),
        _ => Err(ProtoError::FrameTooLarge(len)),
    }
}

impl RecordOpener {
    /// An opener starting at `secret` with sequence number 0.
    pub fn new(secret: TrafficSecret, now: Instant) -> Result<Self, ProtoError> {
        Ok(Self {
            epoch: Epoch::new(secret, now)?,
        })
    }

    /// Decrypts one frame body in place. Returns the plaintext length (parse
    /// `body[..n]` with [`Message::decode`]), or `None` when the frame was a KeyUpdate, already
    /// applied: read the next frame.
    pub fn open(
        &mut self,
        header: [u8; HEADER_LEN],
        body: &mut [u8],
        now: Instant,
    ) -> Result<Option<usize>, ProtoError> {
        let len = frame_len(header)?;
        if body.len() != len {
            return Err(ProtoError::BadFrame);
        }
        let nonce = self.epoch.next_nonce()?;
        let plain = self
            .epoch
            .cipher
            .open_in_place(&nonce, &header, body)
            .map_err(|_| ProtoError::BadFrame)?;
        if Message::decode(plain) == Ok(Message::KeyUpdate) {
            self.epoch = self.epoch.next(now)?;
            return Ok(None);
        }
        Ok(Some(plain.len()))
    }
}
