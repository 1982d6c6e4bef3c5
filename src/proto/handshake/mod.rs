//! The handshake: one state type per step for each role, each consuming itself to move on,
//! so a message at the wrong time is a type error in our code and a [`ProtoError`] from the
//! peer. Shared here: the clear handshake record format (`len: u32 BE || body`, bounded),
//! the transcript, the signature labels, and [`Established`], what a finished handshake
//! hands to the connection.

pub mod client;
pub mod server;

use std::time::Instant;

use super::error::ProtoError;
use super::record::{HEADER_LEN, RecordOpener, RecordSealer, UpdateLimits};
use super::schedule::{SessionSecrets, TrafficSecret};
use crate::crypto::{self, Sha256};

/// Largest handshake record body (a ServerHello with two RSA-4096 keys is under 1.7 KiB).
pub const MAX_HANDSHAKE_LEN: usize = 4096;

/// Prefix of what the host key signs in ServerHello.
pub const SERVER_SIGNATURE_LABEL: &[u8] = b"seashell/1 server\0";
/// Prefix of what the client key signs in ClientAuth.
pub const CLIENT_SIGNATURE_LABEL: &[u8] = b"seashell/1 client\0";
/// OAEP label of KeyTransport.
pub const KEY_TRANSPORT_LABEL: &[u8] = b"seashell/1 key transport";

/// Appends a handshake record: the body's length, then the body.
pub fn put_record(out: &mut Vec<u8>, body: &[u8]) {
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
}

/// The body length a handshake record header announces, checked before the body is read.
pub fn record_len(header: [u8; HEADER_LEN]) -> Result<usize, ProtoError> {
    let len = u32::from_be_bytes(header);
    match usize::try_from(len) {
        Ok(n) if (1..=MAX_HANDSHAKE_LEN).contains(&n) => Ok(n),
        _ => Err(ProtoError::FrameTooLarge(len)),
    }
}

/// The running SHA-256 over every handshake record, header included.
#[derive(Clone, Default)]
struct Transcript(Sha256);

impl Transcript {
    fn add_record(&mut self, body: &[u8]) {
        let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
        self.0.update(&len.to_be_bytes());
        self.0.update(body);
    }

    fn add_raw(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn hash(&self) -> [u8; 32] {
        self.0.clone().finish()
    }
}

fn labelled(label: &[u8], hash: &[u8; 32]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(label.len() + hash.len());
    msg.extend_from_slice(label);
    msg.extend_from_slice(hash);
    msg
}

/// A finished handshake: the record layer for each direction and the session id.
pub struct Established {
    /// Seals what this side sends.
    pub sealer: RecordSealer,
    /// Opens what the peer sends.
    pub opener: RecordOpener,
    /// The session id both sides derived.
    pub session_id: [u8; 32],
}

impl Established {
    /// Seals with `sending`, opens with `receiving`.
    fn new(
        sending: TrafficSecret,
        receiving: TrafficSecret,
        session_id: [u8; 32],
        limits: UpdateLimits,
        now: Instant,
    ) -> Result<Self, ProtoError> {
        Ok(Self {
            sealer: RecordSealer::new(sending, limits, now)?,
            opener: RecordOpener::new(receiving, now)?,
            session_id,
        })
    }

    fn for_client(
        s: SessionSecrets,
        limits: UpdateLimits,
        now: Instant,
    ) -> Result<Self, ProtoError> {
        Self::new(
            s.client_to_server,
            s.server_to_client,
            s.session_id,
            limits,
            now,
        )
    }

    fn for_server(
        s: SessionSecrets,
        limits: UpdateLimits,
        now: Instant,
    ) -> Result<Self, ProtoError> {
        Self::new(
            s.server_to_client,
            s.client_to_server,
            s.session_id,
            limits,
            now,
        )
    }
}

/// The X25519 shared value, refusing the all-zero output of a low-order peer share.
fn x25519_shared(
    secret: crypto::EphemeralSecret,
    peer: [u8; 32],
) -> Result<zeroize::Zeroizing<[u8; 32]>, ProtoError> {
    secret.agree(&peer).map_err(|_| ProtoError::WeakKeyShare)
}
