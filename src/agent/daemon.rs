//! The agent process: hardened (no core dumps, not ptrace-readable by the user's other
//! processes), listening on a 0600 socket in a 0700 directory, serving only its own uid
//! (peer credentials checked on every connection), one request and answer at a time per
//! connection, forgetting keys when their lifetime ends, and removing its socket (and the
//! directory it made) when it stops. It never writes a key anywhere and never answers
//! another uid.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{UnixListener, UnixStream};
use zeroize::Zeroizing;

use super::store::{Done, KeyStore};
use crate::proto::agent::{HEADER_LEN, Request, Response, frame_len};

/// How long one connection may take to send a whole request or take an answer.
const REQUEST_DEADLINE: Duration = Duration::from_secs(30);

/// Where the agent listens.
#[derive(Debug)]
pub struct Socket {
    /// The socket's path.
    pub path: PathBuf,
    /// The directory made for it (removed at exit), when none was named.
    made_dir: Option<PathBuf>,
}

/// Makes the process unfit to leak keys: no core dumps, and not dumpable (so the user's
/// other processes cannot ptrace it or read its memory through /proc).
pub fn harden() -> std::io::Result<()> {
    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0)?;
    #[cfg(target_os = "linux")]
    nix::sys::prctl::set_dumpable(false)?;
    Ok(())
}

impl Socket {
    /// `named`, or `agent.PID` in a fresh 0700 directory `seashell-XXXXXXXX` of the temporary
    /// directory, like ssh-agent's.
    pub fn choose(named: Option<&Path>) -> std::io::Result<Self> {
        if let Some(path) = named {
            return Ok(Self {
                path: path.to_owned(),
                made_dir: None,
            });
        }
        let base = std::env::temp_dir();
        for _ in 0..16 {
            let name: [u8; 6] = crate::crypto::random().map_err(std::io::Error::other)?;
            let dir = base.join(format!("seashell-{}", hex::encode(name)));
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => {
                    return Ok(Self {
                        path: dir.join(format!("agent.{}", std::process::id())),
                        made_dir: Some(dir),
                    });
                }
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(err) => return Err(err),
            }
        }
        Err(std::io::Error::other(format!(
            "no fresh directory could be made in {}",
            base.display()
        )))
    }

    /// Binds the socket, 0600 from its creation on (umask 077 while it is made).
    pub fn bind(&self) -> std::io::Result<UnixListener> {
        use nix::sys::stat::{Mode, umask};
        let old = umask(Mode::from_bits_truncate(0o077));
        let bound = UnixListener::bind(&self.path);
        umask(old);
        let listener = bound?;
        std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(0o600))?;
        Ok(listener)
    }

    /// Removes the socket and the directory made for it.
    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
        if let Some(dir) = &self.made_dir {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Serves requests on `listener` until SIGTERM, SIGINT or SIGHUP; the keys are dropped
/// (and zeroized) on return.
pub async fn serve(listener: UnixListener) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let store = Arc::new(Mutex::new(KeyStore::default()));
    let me = nix::unistd::getuid().as_raw();
    loop {
        let next_expiry = lock(&store).next_expiry();
        let expiry = async {
            match next_expiry {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                match stream.peer_cred() {
                    Ok(cred) if cred.uid() == me => {
                        tokio::spawn(connection(stream, Arc::clone(&store)));
                    }
                    Ok(cred) => tracing::warn!(
                        "refused a connection from uid {} (this agent serves uid {me} only)",
                        cred.uid()
                    ),
                    Err(err) => tracing::warn!("refused a connection without credentials: {err}"),
                }
            }
            () = expiry => {
                let gone = lock(&store).expire(std::time::Instant::now());
                if gone > 0 {
                    tracing::info!("{gone} key(s) expired and were forgotten");
                }
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => break,
        }
    }
    Ok(())
}

fn lock(store: &Mutex<KeyStore>) -> std::sync::MutexGuard<'_, KeyStore> {
    store
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One client: requests and answers in turn until it hangs up or sends what does not parse.
async fn connection(mut stream: UnixStream, store: Arc<Mutex<KeyStore>>) {
    loop {
        let mut header = [0u8; HEADER_LEN];
        // A client that hangs up between requests is done: no deadline for the next one.
        if stream.read_exact(&mut header).await.is_err() {
            return;
        }
        let exchange = async {
            let len = frame_len(header).ok()?;
            let mut body = Zeroizing::new(vec![0u8; len]);
            stream.read_exact(&mut body).await.ok()?;
            let store = Arc::clone(&store);
            // RSA signing takes milliseconds: off the runtime's thread.
            let (done, out) = tokio::task::spawn_blocking(move || answer(&store, &body))
                .await
                .ok()?;
            stream.write_all(&out).await.ok()?;
            Some(done)
        };
        match tokio::time::timeout(REQUEST_DEADLINE, exchange).await {
            Ok(Some(Some(done))) => log(&done),
            _ => return,
        }
    }
}

/// The answer frame to one request's body; `None` (after a Failure) for a body that does
/// not parse, which ends the connection.
fn answer(store: &Mutex<KeyStore>, body: &[u8]) -> (Option<Done>, Zeroizing<Vec<u8>>) {
    let mut out = Zeroizing::new(Vec::new());
    match Request::decode(body) {
        Ok(request) => {
            let done = lock(store).handle(&request, std::time::Instant::now(), &mut out);
            (Some(done), out)
        }
        Err(err) => {
            tracing::warn!("malformed request ({err}): connection closed");
            let _ = Response::Failure("malformed request").encode(&mut out);
            (None, out)
        }
    }
}

fn log(done: &Done) {
    use crate::shown::shown;
    match done {
        Done::Added(comment) => tracing::info!("added key {}", shown(comment)),
        Done::Removed(n) => tracing::info!("removed {n} key(s)"),
        Done::Listed => tracing::debug!("listed keys"),
        Done::Signed(comment) => tracing::info!("signed a ClientAuth with key {}", shown(comment)),
        Done::GaveCertificate(comment) => {
            tracing::debug!("gave the certificate of key {}", shown(comment));
        }
        Done::Refused(why) => tracing::warn!("refused a request: {why}"),
    }
}

/// Prints the shell commands that point a shell at this agent (sh, or csh with `csh`), as
/// ssh-agent does, and flushes them.
pub fn print_environment(socket: &Path, pid: u32, csh: bool) -> std::io::Result<()> {
    let socket = socket.display();
    let mut out = std::io::stdout().lock();
    if csh {
        writeln!(out, "setenv SEASHELL_AUTH_SOCK {socket};")?;
        writeln!(out, "setenv SEASHELL_AGENT_PID {pid};")?;
    } else {
        writeln!(
            out,
            "SEASHELL_AUTH_SOCK={socket}; export SEASHELL_AUTH_SOCK;"
        )?;
        writeln!(out, "SEASHELL_AGENT_PID={pid}; export SEASHELL_AGENT_PID;")?;
    }
    writeln!(out, "echo Agent pid {pid};")?;
    out.flush()
}
