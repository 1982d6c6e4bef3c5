//! The server: `seashell serve`. Loads the host key (and its certificate), authorized_keys
//! and revoked_keys, makes the transport key, listens, and hands each accepted connection to
//! `connection` (admission through the [`gate`], the handshake, authentication, then a
//! [`session`] under a cap on concurrent sessions). SIGHUP re-reads authorized_keys,
//! revoked_keys and the host certificate; SIGTERM or Ctrl-C stops accepting, lets
//! running sessions end within a grace period, then closes the rest and exits. With an audit
//! log, every session's steps are recorded (see [`crate::audit`]); a clean stop seals the log
//! with a final checkpoint.

pub mod admission;
pub mod certified;
pub mod child_setup;
pub mod complete;
mod connection;
pub mod gate;
pub mod keepalive;
pub mod peer;
pub mod penalty;
pub mod policy;
pub mod process;
pub mod session;
pub mod shell;
pub mod source;
pub mod throttle;
pub mod transfer;
pub mod trust;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::audit::{AuditError, AuditLog, AuditOptions};
use crate::keys::authorized::AuthorizedKeys;
use crate::keys::cert::{self, CertKind};
use crate::keys::private::{PassphraseSource, generate, load_private_key};
use crate::keys::public::fingerprint;
use crate::keys::revoked::RevokedKeys;
use crate::keys::{KeyError, home};
use crate::proto::handshake::server::ServerKeys;
use crate::transport;
use gate::Gate;
use session::SessionLimits;
use trust::TrustStore;

pub use crate::proto::DEFAULT_PORT;

/// How often the transport key is replaced while the server runs.
const TRANSPORT_KEY_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// Size of the transport key.
const TRANSPORT_KEY_BITS: usize = 3072;

/// How often handshakes that stalled on their client give their slots to queued ones.
const PROMOTE_EVERY: Duration = Duration::from_millis(250);

/// An authenticated connection.
type Channel = transport::SecureChannel<TcpStream>;

/// Checked server settings, every limit with its default.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The host key (private, PKCS#8 PEM).
    pub host_key: PathBuf,
    /// The authorized_keys file.
    pub authorized_keys: PathBuf,
    /// The revoked_keys file (None: nothing revoked).
    pub revoked_keys: Option<PathBuf>,
    /// The host certificate presented beside the host key (None: none).
    pub host_cert: Option<PathBuf>,
    /// Deadline for the whole handshake, authentication included.
    pub handshake_timeout: Duration,
    /// Deadline for a new connection's ClientHello, from its acceptance: a connection silent
    /// for this long is dropped.
    pub hello_timeout: Duration,
    /// Session timing (idle timeout, keepalive).
    pub session: SessionLimits,
    /// Concurrent authenticated sessions.
    pub max_sessions: usize,
    /// Handshakes in progress at once, after the ClientHello (like sshd's MaxStartups).
    pub max_unauthenticated: usize,
    /// Connections before a handshake slot: silent ones (waiting for their ClientHello) and
    /// ones queued for a slot. When all are taken, a newcomer displaces a silent one; see
    /// [`admission`].
    pub max_waiting: usize,
    /// Wait before answering a failed authentication.
    pub auth_failure_delay: Duration,
    /// Penalty a source earns per failed authentication (like sshd's PerSourcePenalties
    /// `authfail`); zero turns penalties off.
    pub auth_penalty: Duration,
    /// How long running sessions may go on after SIGTERM.
    pub shutdown_grace: Duration,
    /// The audit log (None: no audit log).
    pub audit_log: Option<PathBuf>,
    /// Audit log rotation, checkpoints and syslog copy.
    pub audit: AuditOptions,
    /// Named commands for `command="NAME"` keys (the config's `[commands]`).
    pub commands: std::collections::BTreeMap<String, Vec<String>>,
    /// The shell lines run in (None: the server user's own, see [`shell::LoginShell`]).
    pub shell: Option<PathBuf>,
}

impl ServerSettings {
    /// The defaults, with keys in `$SEASHELL_HOME`.
    pub fn with_defaults() -> Result<Self, KeyError> {
        Ok(Self::with_defaults_in(&home::seashell_home()?))
    }

    /// The defaults, with keys in `home`.
    pub fn with_defaults_in(home: &std::path::Path) -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)),
            host_key: home.join("host_rsa"),
            authorized_keys: home.join("authorized_keys"),
            revoked_keys: None,
            host_cert: None,
            handshake_timeout: Duration::from_secs(10),
            hello_timeout: Duration::from_secs(2),
            session: SessionLimits {
                idle_timeout: None,
                keepalive: Duration::from_secs(30),
            },
            max_sessions: 100,
            max_unauthenticated: 32,
            max_waiting: 1024,
            auth_failure_delay: Duration::from_secs(1),
            auth_penalty: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(10),
            audit_log: None,
            audit: AuditOptions::default(),
            commands: std::collections::BTreeMap::new(),
            shell: None,
        }
    }
}

/// Why the server could not start or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// A key file problem.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The listening socket.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    /// The audit log could not be opened or continued.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// The host certificate cannot be presented.
    #[error("host certificate {}: {problem}", path.display())]
    HostCert {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it, and what to do.
        problem: String,
    },
}

/// Everything the connections share.
struct Shared {
    keys: RwLock<Arc<ServerKeys>>,
    /// The host key and certificate new transport keys are paired with (SIGHUP re-reads the
    /// certificate).
    host: RwLock<HostIdentity>,
    trust: TrustStore<AuthorizedKeys>,
    revoked: Option<TrustStore<RevokedKeys>>,
    settings: ServerSettings,
    gate: Arc<Gate>,
    sessions: Arc<Semaphore>,
    stop: watch::Receiver<bool>,
    audit: AuditLog,
    commands: Arc<std::collections::BTreeMap<String, Vec<String>>>,
    shell: Arc<shell::LoginShell>,
    /// The name of the account sessions run as: the only one a client may ask for.
    account: String,
}

/// The host key and the certificate presented beside it (its encoding; empty for none).
#[derive(Clone)]
struct HostIdentity {
    key: crate::crypto::PrivateKey,
    certificate: Vec<u8>,
}

/// Makes a fresh transport key for `host` (RSA keygen takes a second or two: off the runtime).
async fn fresh_keys(host: HostIdentity) -> Result<ServerKeys, ServeError> {
    let transport = tokio::task::spawn_blocking(move || generate(TRANSPORT_KEY_BITS))
        .await
        .map_err(|err| KeyError::Crypto {
            action: "generate",
            detail: err.to_string(),
        })??;
    ServerKeys::new(host.key, transport)
        .with_certificate(host.certificate)
        .map_err(|err| ServeError::HostCert {
            path: std::path::PathBuf::new(),
            problem: err.to_string(),
        })
}

/// Reads the host certificate at `path`: a host certificate for `host`'s key, else an error
/// saying what to fix. One outside its validity window is presented with a warning (a
/// client will refuse it; the host key's own pin still works).
fn load_host_cert(
    path: &std::path::Path,
    host: &crate::crypto::PrivateKey,
) -> Result<Vec<u8>, ServeError> {
    let problem = |problem: String| ServeError::HostCert {
        path: path.to_owned(),
        problem,
    };
    let text = std::fs::read_to_string(path).map_err(|err| problem(err.to_string()))?;
    let line = cert::parse_line(&text).map_err(|err| problem(err.to_string()))?;
    let cert = line.cert;
    if cert.fields().kind != CertKind::Host {
        return Err(problem(
            "it is a user certificate: sign the host key with `seashell ca sign --host`".into(),
        ));
    }
    if cert.key_der() != host.public_key().spki_der() {
        return Err(problem(format!(
            "it certifies key {}, not this host key {}",
            cert.key_fingerprint(),
            fingerprint(host.public_key())
        )));
    }
    if let Err(refusal) = cert.check_time(cert::unix_now()) {
        tracing::warn!(path = %path.display(), "the host certificate is {refusal}: clients will not trust it; issue a new one");
    }
    tracing::info!(path = %path.display(), hosts = %crate::shown::shown(&cert.fields().name), serial = cert.fields().serial, ca = %cert.ca_fingerprint(), "host certificate");
    Ok(cert.encode())
}

/// A server that is listening but not yet serving.
pub struct BoundServer {
    listener: TcpListener,
    shared: Arc<Shared>,
    stop_tx: watch::Sender<bool>,
}

/// Loads the keys, makes the transport key and binds the listener.
pub async fn bind(settings: ServerSettings) -> Result<BoundServer, ServeError> {
    let key = load_private_key(&settings.host_key, &PassphraseSource::from_flag(None))?;
    let certificate = match &settings.host_cert {
        Some(path) => load_host_cert(path, &key)?,
        None => Vec::new(),
    };
    let host = HostIdentity { key, certificate };
    let trust = TrustStore::open(&settings.authorized_keys)?;
    let revoked = match &settings.revoked_keys {
        Some(path) => Some(TrustStore::open(path)?),
        None => None,
    };
    let listener =
        TcpListener::bind(settings.listen)
            .await
            .map_err(|source| ServeError::Listen {
                addr: settings.listen,
                source,
            })?;
    raise_file_limit(&settings);
    let keys = fresh_keys(host.clone())
        .await
        .map_err(|err| match (err, &settings.host_cert) {
            (ServeError::HostCert { problem, .. }, Some(path)) => ServeError::HostCert {
                path: path.clone(),
                problem,
            },
            (err, _) => err,
        })?;
    tracing::info!(host_key = %fingerprint(keys.host_public()), crypto = crate::crypto::PROVIDER, "host key");
    if let Some(shell) = &settings.shell
        && !shell.is_file()
    {
        tracing::warn!("the configured shell {} does not exist", shell.display());
    }
    let audit = match &settings.audit_log {
        Some(path) => AuditLog::open(path, &settings.audit, &host.key).await?,
        None => AuditLog::disabled(),
    };
    let (stop_tx, stop) = watch::channel(false);
    let shared = Arc::new(Shared {
        keys: RwLock::new(Arc::new(keys)),
        host: RwLock::new(host.clone()),
        trust,
        revoked,
        gate: Gate::new(
            settings.max_waiting,
            settings.max_unauthenticated,
            settings.hello_timeout,
            settings.auth_penalty,
        ),
        sessions: Arc::new(Semaphore::new(settings.max_sessions)),
        commands: Arc::new(settings.commands.clone()),
        shell: Arc::new(shell::LoginShell::from_passwd(settings.shell.as_deref())),
        account: session::Account::of_server().user,
        settings,
        stop,
        audit,
    });
    Ok(BoundServer {
        listener,
        shared,
        stop_tx,
    })
}

/// Raises the soft limit on open files to the hard one, as servers that hold many sockets do:
/// every connection before authentication holds a descriptor, and `max_waiting` of them may
/// be open at once (a session holds a few more).
fn raise_file_limit(settings: &ServerSettings) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    let limit = if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        hard
    } else {
        soft
    };
    let wanted = settings.max_waiting + settings.max_unauthenticated + 8 * settings.max_sessions;
    if limit < u64::try_from(wanted).unwrap_or(u64::MAX) {
        tracing::warn!(
            "the open-file limit ({limit}) is below what max_waiting, max_unauthenticated and max_sessions may need ({wanted}): raise it (LimitNOFILE= in the unit)"
        );
    }
}

impl BoundServer {
    /// The address actually bound (port 0 resolved).
    pub fn local_addr(&self) -> Result<SocketAddr, ServeError> {
        let addr = self.shared.settings.listen;
        self.listener
            .local_addr()
            .map_err(|source| ServeError::Listen { addr, source })
    }

    /// Serves until SIGTERM / SIGINT, then drains.
    pub async fn run(self) -> Result<(), ServeError> {
        tracing::info!("listening on {}", self.local_addr()?);
        tokio::spawn(rotate_transport_key(Arc::clone(&self.shared)));
        accept_until_signal(&self.listener, &self.shared, self.stop_tx).await?;
        Ok(self.shared.audit.close().await?)
    }
}

/// SIGHUP: re-reads the host certificate, if there is one, and presents it from the next
/// connection on; one that cannot be presented is logged and the one before kept.
fn reload_host_cert(shared: &Shared) {
    let Some(path) = &shared.settings.host_cert else {
        return;
    };
    let mut host = shared.host.write().unwrap_or_else(|p| p.into_inner());
    let renewed = load_host_cert(path, &host.key).and_then(|certificate| {
        let keys = shared
            .keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .recertified(certificate.clone())
            .map_err(|err| ServeError::HostCert {
                path: path.clone(),
                problem: err.to_string(),
            })?;
        Ok((certificate, keys))
    });
    match renewed {
        Ok((certificate, keys)) => {
            host.certificate = certificate;
            *shared.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(keys);
        }
        Err(err) => tracing::error!("{err}; still presenting the one read before"),
    }
}

async fn rotate_transport_key(shared: Arc<Shared>) {
    loop {
        tokio::time::sleep(TRANSPORT_KEY_LIFETIME).await;
        let host = shared
            .host
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match fresh_keys(host).await {
            Ok(keys) => {
                // Under the host lock, so that a certificate SIGHUP read while the key was
                // being made is the one presented.
                let host = shared.host.read().unwrap_or_else(|p| p.into_inner());
                let keys = keys.recertified(host.certificate.clone()).unwrap_or(keys);
                *shared.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(keys);
                tracing::info!("transport key rotated");
            }
            Err(err) => tracing::error!("transport key rotation failed: {err}"),
        }
    }
}

async fn accept_until_signal(
    listener: &TcpListener,
    shared: &Arc<Shared>,
    stop_tx: watch::Sender<bool>,
) -> Result<(), ServeError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(ServeError::Signals)?;
    let mut hup = signal(SignalKind::hangup()).map_err(ServeError::Signals)?;
    let mut connections = JoinSet::new();
    let mut promote = tokio::time::interval(PROMOTE_EVERY);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => connection::admit(stream, peer, shared, &mut connections),
                Err(err) => {
                    // Out of descriptors and the like: back off instead of spinning.
                    tracing::warn!("accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = hup.recv() => {
                tracing::info!("SIGHUP: re-reading authorized keys and revoked keys");
                shared.trust.reload();
                if let Some(revoked) = &shared.revoked {
                    revoked.reload();
                }
                reload_host_cert(shared);
            }
            _ = promote.tick() => shared.gate.promote(),
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    let grace = shared.settings.shutdown_grace;
    tracing::info!(
        active = connections.len(),
        "stopping: no new connections; waiting up to {grace:?} for sessions"
    );
    let drained = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::info!(
            active = connections.len(),
            "grace period over: closing remaining sessions"
        );
        let _ = stop_tx.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while connections.join_next().await.is_some() {}
        })
        .await;
    }
    tracing::info!("stopped");
    Ok(())
}
