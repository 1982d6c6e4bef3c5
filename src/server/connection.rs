//! One connection, from the accept loop's decision to the end of its session: admission
//! through the [`Gate`] (a place, the ClientHello within `hello_timeout`, then a handshake
//! slot), the handshake under its deadline, proof of possession, the authorization check,
//! and the session. Every failed authentication gets the same answer at the same time
//! (AuthFailed, `auth_failure_delay` after the ClientAuth arrived), earns its source a
//! penalty and reaches the audit log only through its aggregated summary; only a proven key
//! is looked up, so only a key's holder can put its name in a log. What a stranger causes
//! before that goes to the server's own log, within the gate's budget.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::certified::{self, CertFailure, Revocations};
use super::gate::{Place, Refused};
use super::peer::Peer;
use super::policy::{self, Policy};
use super::source::Source;
use super::throttle::Throttle;
use super::{Channel, Shared, session};
use crate::audit::{CertIdentity, RefusedKey, Who};
use crate::keys::cert::{self, CertRefusal, Certificate};
use crate::keys::public::fingerprint;
use crate::proto::handshake::server::ClientIdentity;
use crate::proto::message::VERSION;
use crate::proto::{DecodeError, ProtoError, UpdateLimits};
use crate::transport::{self, Proof, Refusal, TransportError};

/// How long a refused client's AuthFailed and Close may take to send.
const REFUSAL_SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Logs `line` if the gate's budget allows, after saying how many lines it left out.
fn note(shared: &Shared, line: impl FnOnce()) {
    if let Some(skipped) = shared.gate.may_log() {
        if skipped > 0 {
            tracing::warn!(
                "{skipped} log lines about unauthenticated connections were left out (at most {} a second)",
                Throttle::PER_SECOND
            );
        }
        line();
    }
}

/// Takes a new connection, or drops it at once (every place taken by clients that spoke, or a
/// penalized source). Decided here, in the accept loop, so it is exact whatever the
/// scheduling of the connections' tasks.
pub(super) fn admit(
    stream: TcpStream,
    peer: SocketAddr,
    shared: &Arc<Shared>,
    connections: &mut JoinSet<()>,
) {
    let place = match shared.gate.arrive(Source::of(peer.ip())) {
        Ok(place) => place,
        Err(Refused::Full) => {
            note(shared, || {
                tracing::warn!(%peer, "too many unauthenticated connections: dropped");
            });
            return;
        }
        Err(Refused::Penalized(left)) => {
            note(shared, || {
                tracing::warn!(%peer, "source penalized for failed authentication ({}s left): dropped", left.as_secs());
            });
            return;
        }
    };
    if let Err(err) = stream.set_nodelay(true) {
        note(
            shared,
            || tracing::warn!(%peer, "cannot set TCP_NODELAY: {err}"),
        );
    }
    // Like sshd's "Connection from" (VERBOSE): every client's, honest or not, would spend the
    // budget that failures need. What each connection comes to is logged at info.
    tracing::debug!(%peer, "connection");
    connections.spawn(serve(stream, peer, place, Arc::clone(shared)));
}

/// How a connection's admission and authentication ended.
enum Verdict {
    /// Authenticated: run the session.
    Accepted(Channel, Peer),
    /// Refused: send AuthFailed at `answer_at`.
    Refused(Refusal<TcpStream>, Instant),
}

/// Why a connection ended before a verdict.
enum Ended {
    /// No ClientHello within `hello_timeout`.
    Silent,
    /// The handshake failed.
    Transport(TransportError),
    /// The client was told why it cannot go on (an account it may not have), and that was
    /// logged.
    Answered,
}

impl From<TransportError> for Ended {
    fn from(err: TransportError) -> Self {
        Self::Transport(err)
    }
}

async fn serve(stream: TcpStream, peer: SocketAddr, place: Place, shared: Arc<Shared>) {
    let deadline = shared.settings.handshake_timeout;
    let displaced = place.displaced();
    let verdict = tokio::select! {
        () = displaced.wait() => {
            note(&shared, || tracing::info!(%peer, "displaced by a newer connection while waiting on its client: closed"));
            return;
        }
        verdict = tokio::time::timeout(deadline, handshake(stream, peer, place, &shared)) => verdict,
    };
    match verdict {
        Err(_) => note(&shared, || {
            tracing::info!(%peer, "handshake deadline ({deadline:?}) passed: closed");
        }),
        Ok(Err(Ended::Silent)) => note(&shared, || {
            tracing::info!(%peer, "no ClientHello within {:?}: closed", shared.settings.hello_timeout);
        }),
        Ok(Err(Ended::Transport(TransportError::Proto(ProtoError::Decode(
            DecodeError::BadVersion(theirs),
        ))))) => note(&shared, || {
            let side = if theirs < VERSION {
                "the client"
            } else {
                "this server"
            };
            tracing::warn!(%peer, "handshake failed: the client speaks protocol version {theirs}, this server speaks {VERSION}: upgrade {side}");
        }),
        Ok(Err(Ended::Answered)) => {}
        Ok(Err(Ended::Transport(err))) => {
            note(&shared, || tracing::info!(%peer, "handshake failed: {err}"));
        }
        Ok(Ok(Verdict::Refused(refusal, answer_at))) => {
            tokio::time::sleep_until(answer_at).await;
            let _ = tokio::time::timeout(REFUSAL_SEND_TIMEOUT, refusal.send()).await;
        }
        Ok(Ok(Verdict::Accepted(channel, who))) => run_session(channel, who, &shared).await,
    }
}

/// Admission and authentication: the ClientHello, a slot, the handshake, the proof, the
/// authorization check. The place (and so the slot) is given back before the verdict.
async fn handshake(
    mut stream: TcpStream,
    peer: SocketAddr,
    mut place: Place,
    shared: &Arc<Shared>,
) -> Result<Verdict, Ended> {
    let hello = tokio::time::timeout(
        shared.settings.hello_timeout,
        transport::read_client_hello(&mut stream),
    )
    .await
    .map_err(|_| Ended::Silent)??;
    place.take_slot().await;
    let keys = Arc::clone(&*shared.keys.read().unwrap_or_else(|p| p.into_inner()));
    let pending =
        transport::server_handshake(stream, hello, keys, UpdateLimits::default(), &|waiting| {
            place.waiting_on_client(waiting)
        })
        .await?;
    let answer_at = Instant::now() + shared.settings.auth_failure_delay;
    let source = place.source();
    let proof = pending.prove().await?;
    drop(place);
    let client = match proof {
        Proof::Unproven(refusal) => {
            failed(shared, peer, source, "the signature does not verify", None).await;
            return Ok(Verdict::Refused(refusal, answer_at));
        }
        Proof::Proven(client) => client,
    };
    let key = fingerprint(&client.identity.public_key);
    // Off the runtime: the lookup may re-read authorized_keys and revoked_keys, the policy
    // compiles its allow= patterns, and a certificate's signature is checked.
    let (identity, store) = (client.identity.clone(), Arc::clone(shared));
    let found = tokio::task::spawn_blocking(move || authorize(&store, &identity))
        .await
        .map_err(|err| TransportError::Io(std::io::Error::other(err)))?;
    let admitted = match found {
        Ok(admitted) => admitted,
        Err(refusal) => {
            let (reason, refused) = refusal.explain(&key);
            failed(shared, peer, source, &reason, refused).await;
            return Ok(Verdict::Refused(client.refuse(), answer_at));
        }
    };
    let policy = &admitted.policy;
    if let Err(denied) = policy
        .check_source(peer.ip())
        .and_then(|()| policy.check_date(policy::today_utc()))
    {
        let reason = format!("key {key} ({}) refused: {denied}", admitted.name);
        let refused = RefusedKey {
            name: admitted.name.clone(),
            key,
            rule: denied.to_string(),
            reason: admitted.cert.as_ref().map(|_| denied.option().to_owned()),
            cert: admitted.cert.clone(),
        };
        failed(shared, peer, source, &reason, Some(refused)).await;
        return Ok(Verdict::Refused(client.refuse(), answer_at));
    }
    let asked = client.identity.account.clone();
    if !asked.is_empty() && asked != shared.account {
        // Told to a key that proved possession and is authorized; not a failed
        // authentication (no penalty, no delay), but audited like a refused key.
        let rule = format!(
            "asked for account `{asked}`; this server runs sessions as `{}`",
            shared.account
        );
        note(shared, || {
            tracing::warn!(%peer, "key {key} ({}) refused: {rule}", admitted.name);
        });
        let refused = RefusedKey {
            name: admitted.name.clone(),
            key,
            rule,
            reason: None,
            cert: admitted.cert.clone(),
        };
        shared
            .audit
            .auth_failure(&source.to_string(), Some(refused))
            .await;
        let reason = format!(
            "this server runs every session as `{0}`, not `{asked}`: connect as {0}@HOST, or without a user",
            shared.account
        );
        let _ = tokio::time::timeout(REFUSAL_SEND_TIMEOUT, client.refuse_account(&reason)).await;
        return Err(Ended::Answered);
    }
    let channel = client.accept().await?;
    if let Some(cert) = &admitted.cert {
        tracing::info!(%peer, key = %key, cert_name = %crate::shown::shown(&cert.cert_name), cert_serial = cert.cert_serial, ca = %cert.ca, "certificate accepted");
    }
    let who = Peer {
        name: admitted.name,
        cert: admitted.cert,
        fingerprint: key,
        session_id: hex::encode(channel.session_id),
        address: peer.to_string(),
        policy: admitted.policy,
    };
    tracing::info!(%peer, key = %who.fingerprint, name = %who.name, session = %who.session_id, "authenticated");
    Ok(Verdict::Accepted(channel, who))
}

/// A failed authentication: the source's penalty, the audit log's summary, the server's log.
async fn failed(
    shared: &Shared,
    peer: SocketAddr,
    source: Source,
    reason: &str,
    refused: Option<RefusedKey>,
) {
    shared.gate.failed(source);
    note(shared, || {
        tracing::warn!(%peer, "authentication failed: {reason}");
    });
    shared
        .audit
        .auth_failure(&source.to_string(), refused)
        .await;
}

async fn run_session(mut channel: Channel, who: Peer, shared: &Shared) {
    let began = std::time::Instant::now();
    let audit = shared.audit.session(audit_who(&who)).await;
    let Ok(_slot) = Arc::clone(&shared.sessions).try_acquire_owned() else {
        tracing::warn!(key = %who.fingerprint, "too many sessions: refused");
        let _ = channel.writer.close("server busy: too many sessions").await;
        audit.disconnect(began.elapsed()).await;
        return;
    };
    let address = who.address.clone();
    session::run(
        channel,
        who,
        shared.settings.session,
        shared.stop.clone(),
        audit.clone(),
        Arc::clone(&shared.commands),
        Arc::clone(&shared.shell),
    )
    .await;
    audit.disconnect(began.elapsed()).await;
    tracing::info!(peer = %address, "disconnected");
}

fn audit_who(who: &Peer) -> Who {
    Who {
        session: who.session_id.clone(),
        peer: who.address.clone(),
        key: who.fingerprint.clone(),
        name: who.name.clone(),
        cert: who.cert.clone(),
    }
}

/// A client the trust files admit: its name (the key's comment, or the certificate's name),
/// what it may do, and the certificate that admitted it, if one did.
struct Admitted {
    name: String,
    policy: Policy,
    cert: Option<CertIdentity>,
}

/// Why the trust files do not admit a proven key.
enum NotAdmitted {
    /// The key has no line of its own (and presented no certificate).
    NotListed,
    /// The key is in revoked_keys.
    Revoked,
    /// The certificate it presented does not admit it.
    Cert(CertFailure),
}

impl NotAdmitted {
    /// The server log's reason, and what the audit log's summary records of the refusal:
    /// nothing for an unlisted key or an unbound certificate (a name is recorded only when
    /// the file or a certificate of the proven key gives it).
    fn explain(self, key: &str) -> (String, Option<RefusedKey>) {
        match self {
            Self::NotListed => (format!("key {key} is not in authorized_keys"), None),
            Self::Revoked => (
                format!("key {key} is revoked (revoked_keys)"),
                Some(RefusedKey {
                    name: String::new(),
                    key: key.to_owned(),
                    rule: "revoked_keys: the key is revoked".to_owned(),
                    reason: Some(CertRefusal::Revoked.reason().to_owned()),
                    cert: None,
                }),
            ),
            Self::Cert(CertFailure::Unbound(why)) => (format!("key {key}: {why}"), None),
            Self::Cert(CertFailure::Refused {
                reason,
                detail,
                cert,
                line_comment,
            }) => {
                let identity = cert.map(|cert| cert_identity(&cert));
                let which = match &identity {
                    Some(c) => format!(
                        "certificate {:?} serial {} from CA {}",
                        crate::shown::shown(&c.cert_name),
                        c.cert_serial,
                        c.ca
                    ),
                    None => "certificate".to_owned(),
                };
                (
                    format!("key {key}, {which} refused: {detail}"),
                    Some(RefusedKey {
                        name: line_comment,
                        key: key.to_owned(),
                        rule: format!("certificate: {detail}"),
                        reason: Some(reason.to_owned()),
                        cert: identity,
                    }),
                )
            }
        }
    }
}

fn cert_identity(cert: &Certificate) -> CertIdentity {
    CertIdentity {
        cert_name: cert.fields().name.clone(),
        cert_serial: cert.fields().serial,
        ca: cert.ca_fingerprint(),
    }
}

/// The trust files' verdict on a proven key (and the certificate it presented), read now.
fn authorize(shared: &Shared, identity: &ClientIdentity) -> Result<Admitted, NotAdmitted> {
    let revoked_key = |revocations: Revocations<'_>| revocations.key(&identity.public_key_der);
    let check = |revocations: Revocations<'_>| {
        if revoked_key(revocations) {
            return Err(NotAdmitted::Revoked);
        }
        shared.trust.read(|keys| {
            let keys = keys.ok_or(NotAdmitted::NotListed)?;
            if identity.certificate.is_empty() {
                let entry = keys
                    .find(&identity.public_key)
                    .ok_or(NotAdmitted::NotListed)?;
                return Ok(Admitted {
                    name: entry.comment.clone(),
                    policy: Policy::from_options(&entry.options),
                    cert: None,
                });
            }
            let certified = certified::admit(
                keys,
                revocations,
                &identity.public_key_der,
                &identity.certificate,
                cert::unix_now(),
            )
            .map_err(NotAdmitted::Cert)?;
            Ok(Admitted {
                name: certified.cert.fields().name.clone(),
                cert: Some(cert_identity(&certified.cert)),
                policy: certified.policy,
            })
        })
    };
    match &shared.revoked {
        None => check(Revocations::None),
        Some(store) => store.read(|revoked| match revoked {
            Some(revoked) => check(Revocations::Listed(revoked)),
            None => check(Revocations::All),
        }),
    }
}
