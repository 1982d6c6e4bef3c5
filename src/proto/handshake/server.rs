//! The server's side of the handshake:
//! [`accept`] (ClientHello in, ServerHello out) → [`ExpectKeyTransport`] →
//! [`ExpectClientAuth`] (signature checked here; whether the key is authorized is the
//! caller's decision, made only on a key that passed) → [`Established`].
//!
//! A KeyTransport that does not decrypt is not answered differently: the server goes on with
//! a random secret, so the failure shows up only as the client's first frame failing to open,
//! exactly like a wrong key. No padding oracle.

use std::time::Instant;

use crate::crypto::{self, EphemeralSecret, PrivateKey, PublicKey};
use zeroize::Zeroizing;

use super::{
    CLIENT_SIGNATURE_LABEL, Established, KEY_TRANSPORT_LABEL, MAX_HANDSHAKE_LEN,
    SERVER_SIGNATURE_LABEL, Transcript, labelled, put_record, x25519_shared,
};
use crate::keys::public::from_spki_der;
use crate::proto::error::{DecodeError, ProtoError};
use crate::proto::message::{
    ClientHello, KeyTransport, Message, ServerHello, VERSION, VersionRefused,
};
use crate::proto::record::UpdateLimits;
use crate::proto::schedule;

/// The server's two RSA keys: the long-lived host key (signs only) and the transport key
/// (decrypts KeyTransport only; made at start-up, never written to disk).
pub struct ServerKeys {
    host: PrivateKey,
    host_der: Vec<u8>,
    transport: PrivateKey,
    transport_der: Vec<u8>,
    /// The host certificate's encoding, empty for none.
    certificate: Vec<u8>,
}

impl ServerKeys {
    /// Pairs a host key with a transport key.
    pub fn new(host: PrivateKey, transport: PrivateKey) -> Self {
        Self {
            host_der: host.public_key().spki_der().to_vec(),
            transport_der: transport.public_key().spki_der().to_vec(),
            host,
            transport,
            certificate: Vec::new(),
        }
    }

    /// Presents `certificate` (an encoded host certificate, or empty for none) in every
    /// ServerHello. It must fit: a ServerHello with it larger than [`MAX_HANDSHAKE_LEN`] is
    /// [`ProtoError::CertificateTooLarge`], found here, at start, rather than by each client.
    pub fn with_certificate(mut self, certificate: Vec<u8>) -> Result<Self, ProtoError> {
        self.certificate = certificate;
        let hello = ServerHello {
            random: [0; 32],
            x25519: [0; 32],
            host_key: self.host_der.clone(),
            transport_key: self.transport_der.clone(),
            signature: vec![0; self.host.public_key().size()],
            certificate: self.certificate.clone(),
        };
        let mut body = Vec::new();
        let len = hello.encode(&mut body).map(|()| body.len());
        match len {
            Ok(len) if len <= MAX_HANDSHAKE_LEN => Ok(self),
            _ => Err(ProtoError::CertificateTooLarge {
                len: self.certificate.len(),
                room: MAX_HANDSHAKE_LEN
                    .saturating_sub(body.len().saturating_sub(self.certificate.len())),
            }),
        }
    }

    /// The same keys presenting `certificate` instead (a host certificate renewed while the
    /// server runs); checked as [`Self::with_certificate`] checks.
    pub fn recertified(&self, certificate: Vec<u8>) -> Result<Self, ProtoError> {
        Self::new(self.host.clone(), self.transport.clone()).with_certificate(certificate)
    }

    /// The host public key.
    pub fn host_public(&self) -> &PublicKey {
        self.host.public_key()
    }
}

/// The record that answers a ClientHello of a version we do not speak (its error is
/// `Decode(BadVersion)`): the versions we do, in clear, so that the client can tell its user
/// which side to upgrade. The one exception to the silence of PROTOCOL.md §7.3: it says
/// nothing about keys and comes before any.
pub fn version_refusal() -> Vec<u8> {
    let mut body = Vec::new();
    let refusal = VersionRefused {
        versions: vec![VERSION],
    };
    // One version always fits.
    if refusal.encode(&mut body).is_err() {
        body.clear();
    }
    let mut wire = Vec::new();
    put_record(&mut wire, &body);
    wire
}

/// Takes a ClientHello body; returns the state awaiting KeyTransport and the ServerHello
/// record to send.
pub fn accept(
    keys: &ServerKeys,
    client_hello: &[u8],
) -> Result<(ExpectKeyTransport, Vec<u8>), ProtoError> {
    let hello = ClientHello::decode(client_hello)?;
    let mut transcript = Transcript::default();
    transcript.add_record(client_hello);

    let random = crypto::random()?;
    let ephemeral = EphemeralSecret::generate()?;
    let mut reply = ServerHello {
        random,
        x25519: ephemeral.public(),
        host_key: keys.host_der.clone(),
        transport_key: keys.transport_der.clone(),
        signature: Vec::new(),
        certificate: keys.certificate.clone(),
    };
    let mut signed = transcript.clone();
    let mut unsigned = Vec::new();
    reply.encode_unsigned(&mut unsigned)?;
    signed.add_raw(&unsigned);
    reply.signature = keys
        .host
        .sign_pss_sha256(&labelled(SERVER_SIGNATURE_LABEL, &signed.hash()))?;
    let mut body = Vec::new();
    reply.encode(&mut body)?;
    transcript.add_record(&body);
    let mut wire = Vec::new();
    put_record(&mut wire, &body);
    Ok((
        ExpectKeyTransport {
            ephemeral,
            client_x25519: hello.x25519,
            transcript,
        },
        wire,
    ))
}

/// Sent ServerHello; waiting for KeyTransport.
pub struct ExpectKeyTransport {
    ephemeral: EphemeralSecret,
    client_x25519: [u8; 32],
    transcript: Transcript,
}

impl ExpectKeyTransport {
    /// Unwraps the client's secret (or, if it does not unwrap, a random one) and derives the
    /// session keys.
    pub fn handle(
        mut self,
        keys: &ServerKeys,
        body: &[u8],
        limits: UpdateLimits,
        now: Instant,
    ) -> Result<ExpectClientAuth, ProtoError> {
        let kt = KeyTransport::decode(body)?;
        let secret = unwrap_secret(&keys.transport, &kt.ciphertext)?;
        self.transcript.add_record(body);
        let th = self.transcript.hash();
        let shared = x25519_shared(self.ephemeral, self.client_x25519)?;
        Ok(ExpectClientAuth {
            established: Established::for_server(
                schedule::derive(&th, &secret, &shared),
                limits,
                now,
            )?,
            transcript_hash: th,
        })
    }
}

/// The OAEP-wrapped secret, or a random one when the ciphertext does not decrypt.
fn unwrap_secret(
    transport: &PrivateKey,
    ciphertext: &[u8],
) -> Result<Zeroizing<[u8; 32]>, ProtoError> {
    let mut secret = Zeroizing::new([0u8; 32]);
    crypto::fill_random(secret.as_mut_slice())?;
    if let Ok(plain) = transport.decrypt_oaep_sha256(KEY_TRANSPORT_LABEL, ciphertext)
        && let Ok(bytes) = <[u8; 32]>::try_from(plain.as_slice())
    {
        *secret = bytes;
    }
    Ok(secret)
}

/// Keys derived; waiting for the client's first frame, ClientAuth.
pub struct ExpectClientAuth {
    established: Established,
    transcript_hash: [u8; 32],
}

/// A client that proved possession of its key in this handshake.
#[derive(Debug, Clone)]
pub struct ClientIdentity {
    /// The client's public key.
    pub public_key: PublicKey,
    /// Its SubjectPublicKeyInfo DER (for lookups in authorized_keys).
    pub public_key_der: Vec<u8>,
    /// The account it asked for (`user@host`), empty when none: the caller checks it once
    /// the key is authorized.
    pub account: String,
    /// The certificate it presented with the key (its encoding, not yet decoded or
    /// checked), empty for none: only the key is proven, not what the certificate claims.
    pub certificate: Vec<u8>,
}

impl ExpectClientAuth {
    /// The record layer, to open the client's first frame with.
    pub fn opener(&mut self) -> &mut crate::proto::RecordOpener {
        &mut self.established.opener
    }

    /// The channel, once the caller has decided: for AuthOk after [`Self::verify`] succeeded,
    /// and otherwise only for sending AuthFailed and Close.
    pub fn into_established(self) -> Established {
        self.established
    }

    /// Checks ClientAuth's signature over the transcript: only a key that passes is proven,
    /// and only a proven key may be looked up in authorized_keys (so that whether a key is
    /// listed, and under which name, is never told to someone who does not hold it).
    pub fn verify(&self, msg: &Message<'_>) -> Result<ClientIdentity, ProtoError> {
        let Message::ClientAuth {
            public_key,
            signature,
            account,
            certificate,
        } = *msg
        else {
            return Err(ProtoError::Unexpected(msg.name()));
        };
        let key = from_spki_der(public_key).map_err(|_| DecodeError::Invalid("client key"))?;
        if !key.verify_pss_sha256(
            &labelled(CLIENT_SIGNATURE_LABEL, &self.transcript_hash),
            signature,
        ) {
            return Err(ProtoError::BadClientSignature);
        }
        Ok(ClientIdentity {
            public_key_der: key.spki_der().to_vec(),
            public_key: key,
            account: account.to_owned(),
            certificate: certificate.to_vec(),
        })
    }

    /// [`Self::verify`], then the channel for AuthOk.
    pub fn handle(self, msg: &Message<'_>) -> Result<(ClientIdentity, Established), ProtoError> {
        let identity = self.verify(msg)?;
        Ok((identity, self.established))
    }
}
