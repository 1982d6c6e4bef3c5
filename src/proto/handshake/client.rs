//! The client's side of the handshake:
//! [`start`] → [`ExpectServerHello`] → [`VerifyHostKey`] (the caller checks the host key
//! against known_hosts) → [`ExpectAuthResult`] → [`Established`].

use std::time::Instant;

use crate::crypto::{self, EphemeralSecret, PrivateKey, PublicKey};
use zeroize::Zeroizing;

use super::{
    CLIENT_SIGNATURE_LABEL, Established, KEY_TRANSPORT_LABEL, SERVER_SIGNATURE_LABEL, Transcript,
    labelled, put_record, x25519_shared,
};
use crate::keys::public::from_spki_der;
use crate::proto::error::{DecodeError, ProtoError};
use crate::proto::message::{
    ClientHello, KeyTransport, Message, ServerHello, VERSION, VersionRefused,
};
use crate::proto::record::UpdateLimits;
use crate::proto::schedule;

/// What signs ClientAuth: the identity's public key, and an RSA-PSS-SHA256 signature made
/// with its private key. A private key in memory is one; an agent holding the key elsewhere
/// would be another.
pub trait ClientSigner {
    /// The key the client claims.
    fn public_key(&self) -> &PublicKey;
    /// Signs `message` (RSA-PSS, SHA-256).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, ProtoError>;
    /// The certificate presented with the key (its encoding), empty for none.
    fn certificate(&self) -> &[u8] {
        &[]
    }
}

impl ClientSigner for PrivateKey {
    fn public_key(&self) -> &PublicKey {
        PrivateKey::public_key(self)
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, ProtoError> {
        self.sign_pss_sha256(message)
            .map_err(|_| ProtoError::Crypto("RSA-PSS signing"))
    }
}

/// Begins a handshake: returns the state awaiting ServerHello and the ClientHello record
/// to send.
pub fn start() -> Result<(ExpectServerHello, Vec<u8>), ProtoError> {
    let random = crypto::random()?;
    let ephemeral = EphemeralSecret::generate()?;
    let hello = ClientHello {
        random,
        x25519: ephemeral.public(),
    };
    let mut body = Vec::new();
    hello.encode(&mut body);
    let mut transcript = Transcript::default();
    transcript.add_record(&body);
    let mut wire = Vec::new();
    put_record(&mut wire, &body);
    Ok((
        ExpectServerHello {
            ephemeral,
            transcript,
        },
        wire,
    ))
}

/// Sent ClientHello; waiting for ServerHello.
pub struct ExpectServerHello {
    ephemeral: EphemeralSecret,
    transcript: Transcript,
}

impl ExpectServerHello {
    /// Parses ServerHello and checks its signature under the host key it carries. Whether
    /// that host key is the right one is the caller's decision, made on [`VerifyHostKey`].
    pub fn handle(mut self, body: &[u8]) -> Result<VerifyHostKey, ProtoError> {
        if VersionRefused::is_refusal(body) {
            let refused = VersionRefused::decode(body)?;
            return Err(ProtoError::VersionRefused {
                ours: VERSION,
                theirs: refused.versions,
            });
        }
        let hello = ServerHello::decode(body)?;
        let host_key =
            from_spki_der(&hello.host_key).map_err(|_| DecodeError::Invalid("host key"))?;
        let transport_key = from_spki_der(&hello.transport_key)
            .map_err(|_| DecodeError::Invalid("transport key"))?;
        if transport_key == host_key {
            // Key separation: the host key only ever signs.
            return Err(DecodeError::Invalid("transport key equal to host key").into());
        }
        let mut signed = self.transcript.clone();
        let mut unsigned = Vec::new();
        hello.encode_unsigned(&mut unsigned)?;
        signed.add_raw(&unsigned);
        if !host_key.verify_pss_sha256(
            &labelled(SERVER_SIGNATURE_LABEL, &signed.hash()),
            &hello.signature,
        ) {
            return Err(ProtoError::BadServerSignature);
        }
        self.transcript.add_record(body);
        Ok(VerifyHostKey {
            ephemeral: self.ephemeral,
            transcript: self.transcript,
            server_x25519: hello.x25519,
            host_key_der: host_key.spki_der().to_vec(),
            host_key,
            transport_key,
            host_certificate: hello.certificate,
        })
    }
}

/// ServerHello verified; the caller must now decide whether to trust the host key.
pub struct VerifyHostKey {
    ephemeral: EphemeralSecret,
    transcript: Transcript,
    server_x25519: [u8; 32],
    host_key_der: Vec<u8>,
    host_key: PublicKey,
    transport_key: PublicKey,
    host_certificate: Vec<u8>,
}

impl VerifyHostKey {
    /// The host certificate the server presented (its encoding, not yet decoded or checked:
    /// only its bytes are covered by the host key's signature), empty for none.
    pub fn host_certificate(&self) -> &[u8] {
        &self.host_certificate
    }

    /// The server's host key, to check against known_hosts or a pinned fingerprint.
    pub fn host_key(&self) -> &PublicKey {
        &self.host_key
    }

    /// The host key's SubjectPublicKeyInfo DER.
    pub fn host_key_der(&self) -> &[u8] {
        &self.host_key_der
    }

    /// Trusts the host key: wraps a fresh secret to the transport key, derives the session
    /// keys, and returns the KeyTransport record followed by the ClientAuth frame (one flight).
    /// `account` is the account asked for (`user@host`), empty for none. `ahead`, the
    /// session's first message (an Exec, ExecPty or OpenConsole), goes in the same flight,
    /// after ClientAuth: the server acts on it only once it has authorized the key (§6.3).
    pub fn trust(
        self,
        identity: &impl ClientSigner,
        account: &str,
        ahead: Option<&Message<'_>>,
        limits: UpdateLimits,
        now: Instant,
    ) -> Result<(Vec<u8>, ExpectAuthResult), ProtoError> {
        let mut secret = Zeroizing::new([0u8; 32]);
        crypto::fill_random(secret.as_mut_slice())?;
        let ciphertext = self
            .transport_key
            .encrypt_oaep_sha256(KEY_TRANSPORT_LABEL, secret.as_slice())?;
        let mut body = Vec::new();
        KeyTransport { ciphertext }.encode(&mut body)?;
        let mut transcript = self.transcript;
        transcript.add_record(&body);
        let th = transcript.hash();
        let shared = x25519_shared(self.ephemeral, self.server_x25519)?;
        let mut established =
            Established::for_client(schedule::derive(&th, &secret, &shared), limits, now)?;

        let signature = identity.sign(&labelled(CLIENT_SIGNATURE_LABEL, &th))?;
        let public_key = identity.public_key().spki_der().to_vec();
        let mut wire = Vec::new();
        put_record(&mut wire, &body);
        established.sealer.seal(
            &Message::ClientAuth {
                public_key: &public_key,
                signature: &signature,
                account,
                certificate: identity.certificate(),
            },
            now,
            &mut wire,
        )?;
        if let Some(msg) = ahead {
            established.sealer.seal(msg, now, &mut wire)?;
        }
        Ok((wire, ExpectAuthResult { established }))
    }
}

/// Sent KeyTransport and ClientAuth; waiting for AuthOk, AuthFailed, or Close.
pub struct ExpectAuthResult {
    established: Established,
}

impl ExpectAuthResult {
    /// The record layer, to open the server's answer with.
    pub fn opener(&mut self) -> &mut crate::proto::RecordOpener {
        &mut self.established.opener
    }

    /// Takes the server's answer: AuthOk with our session id completes the handshake; a Close
    /// instead is the refusal of the account asked for, to a key the server authorized.
    pub fn handle(self, msg: &Message<'_>) -> Result<Established, ProtoError> {
        match *msg {
            Message::AuthOk { session_id } if session_id == self.established.session_id => {
                Ok(self.established)
            }
            Message::AuthOk { .. } => Err(ProtoError::SessionMismatch),
            Message::AuthFailed => Err(ProtoError::AuthRejected),
            Message::Close { reason } => Err(ProtoError::AccountRefused(reason.to_owned())),
            other => Err(ProtoError::Unexpected(other.name())),
        }
    }
}
