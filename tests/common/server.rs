//! The one server helper: a real `seashell serve` on 127.0.0.1 (port chosen by the OS) with the
//! `host_rsa` fixture as its host key, run in a [`Sandbox`] (its HOME, working directory and
//! `SEASHELL_HOME`), its log (stderr) collected, stopped with [`Server::terminate`] (SIGTERM),
//! [`Server::crash`] (SIGKILL) or dropped; [`Server::hangup`] sends SIGHUP. Clients run
//! `seashell exec` against it from a sandbox made by [`client_of`], with [`Sandbox::exec`].
//!
//! A server is a child of the test process, watched by a small `sh` that holds our end of a
//! pipe: if the test process goes away without dropping the [`Server`] (a server shared
//! through a static is never dropped), the watchdog stops it and removes its sandbox.

use std::fs;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use super::{RUN_DEADLINE, RawRun, Sandbox, pub_line};

/// How long a server may take to start (it makes an RSA-3072 transport key first).
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// The watchdog: waits for EOF on stdin (our end closes when the test process exits), then
/// stops the server ("$1"), gives it a few seconds to go, and removes its sandbox ("$2").
/// A server dropped normally kills its watchdog first, so this only runs for a lost one.
const WATCHDOG: &str = r#"read _
kill "$1" 2>/dev/null
n=0
while kill -0 "$1" 2>/dev/null && [ "$n" -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
rm -rf "$2""#;

/// A running `seashell serve`, trusting the authorized_keys it was started with.
pub struct Server {
    sandbox: Sandbox,
    child: Child,
    watchdog: Child,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `seashell serve FLAGS` in `sandbox` trusting `authorized_keys`, once it listens.
    pub fn start(sandbox: &Sandbox, flags: &[&str], authorized_keys: &str) -> Self {
        Self::start_as(sandbox, "host_rsa", flags, authorized_keys)
    }

    /// [`Self::start`] with fixture `host_key` as the host key.
    pub fn start_as(
        sandbox: &Sandbox,
        host_key: &str,
        flags: &[&str],
        authorized_keys: &str,
    ) -> Self {
        let host_key = sandbox.fixture(host_key);
        let authorized = sandbox.write("authorized_keys", authorized_keys);
        let mut child = sandbox
            .command(["serve", "--listen", "127.0.0.1:0", "--host-key"])
            .arg(&host_key)
            .arg("--authorized-keys")
            .arg(&authorized)
            .args(flags)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start seashell serve");
        let stderr = child.stderr.take().expect("server stderr");
        let watchdog = Command::new("/bin/sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("sh")
            .arg(child.id().to_string())
            .arg(sandbox.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let watchdog = match watchdog {
            Ok(watchdog) => watchdog,
            Err(err) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("start the server's watchdog: {err}");
            }
        };
        let log = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&log);
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                let mut log = sink.lock().unwrap_or_else(|p| p.into_inner());
                log.push_str(&line);
                log.push('\n');
            }
        });
        // Built before it listens, so that a server that never does is still killed on drop.
        let mut server = Self {
            sandbox: sandbox.clone(),
            child,
            watchdog,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
        };
        let log = server.wait_for_log_within(START_TIMEOUT, |log| log.contains("listening on "));
        let addr = log
            .split("listening on ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .expect("address after `listening on`");
        server.addr = addr.parse().expect("listening address");
        assert!(server.addr.ip().is_loopback(), "{}", server.addr);
        server
    }

    /// The server most tests share: its own sandbox, `client_rsa` trusted, started on first use.
    pub fn shared() -> &'static Self {
        static SHARED: OnceLock<Server> = OnceLock::new();
        SHARED.get_or_init(|| Self::start(&Sandbox::new(), &[], &pub_line("client_rsa")))
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `127.0.0.1:PORT`: the DEST to give clients, and the known_hosts name.
    pub fn dest(&self) -> String {
        self.addr.to_string()
    }

    /// The console's prompt on this server in `cwd` (an absolute path): `USER@HOST:CWD$ `
    /// for the Unix user the tests run as (`#` for root), the home shown as `~`.
    pub fn prompt(&self, cwd: &str) -> String {
        let home = self.home().display().to_string();
        let cwd = match cwd.strip_prefix(&home) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("~{rest}"),
            _ => cwd.to_owned(),
        };
        let user = Self::account();
        let host = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_default();
        let host = host.split('.').next().unwrap_or_default();
        let sign = if nix::unistd::geteuid().is_root() {
            '#'
        } else {
            '$'
        };
        format!("{user}@{host}:{cwd}{sign} ")
    }

    /// The Unix account the tests (and so their servers) run as: the one `user@` may name.
    pub fn account() -> String {
        let uid = nix::unistd::geteuid();
        nix::unistd::User::from_uid(uid)
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_else(|| uid.to_string())
    }

    /// The server's HOME (its sandbox): where each session starts.
    pub fn home(&self) -> &Path {
        self.sandbox.path()
    }

    /// Everything it logged (stderr) so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits (up to [`RUN_DEADLINE`]) until `ready(log)` holds; returns the log then.
    pub fn wait_for_log(&self, ready: impl Fn(&str) -> bool) -> String {
        self.wait_for_log_within(RUN_DEADLINE, ready)
    }

    /// Waits up to `limit` until `ready(log)` holds, failing early if the server is gone.
    fn wait_for_log_within(&self, limit: Duration, ready: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let log = self.log();
            if ready(&log) {
                return log;
            }
            assert!(
                self.is_running(),
                "the server is not running; its log:\n{log}"
            );
            assert!(
                started.elapsed() < limit,
                "the server never logged what we wait for; its log:\n{log}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the server process is alive (not exited, not a zombie).
    pub fn is_running(&self) -> bool {
        let Ok(stat) = fs::read_to_string(format!("/proc/{}/stat", self.child.id())) else {
            return false;
        };
        // The state is the first field after the parenthesised command name.
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next());
        !matches!(state, None | Some("Z" | "X"))
    }

    /// SIGTERM, then waits (up to [`RUN_DEADLINE`]) for the server to exit; returns how it did.
    pub fn terminate(mut self) -> ExitStatus {
        kill(self.pid(), Signal::SIGTERM).expect("send SIGTERM to the server");
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the server") {
                return status;
            }
            assert!(
                started.elapsed() < RUN_DEADLINE,
                "the server did not stop; its log:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, like a crash; the commands it was running are killed too.
    pub fn crash(mut self) {
        self.kill_all();
    }

    /// SIGHUP: the server re-reads authorized_keys.
    pub fn hangup(&self) {
        kill(self.pid(), Signal::SIGHUP).expect("send SIGHUP to the server");
    }

    /// The server's process id.
    fn pid(&self) -> Pid {
        Pid::from_raw(i32::try_from(self.child.id()).expect("pid fits in i32"))
    }

    /// SIGKILLs the server and reaps it, then SIGKILLs the process groups of its commands.
    fn kill_all(&mut self) {
        let commands = children_of(self.pid());
        let _ = self.child.kill();
        let _ = self.child.wait();
        for pid in commands {
            let _ = killpg(pid, Signal::SIGKILL);
        }
    }
}

impl Drop for Server {
    /// Kills the watchdog, then the server and its commands if it still runs.
    fn drop(&mut self) {
        // The watchdog first: it must not signal a pid that may be reused once we reap ours.
        let _ = self.watchdog.kill();
        let _ = self.watchdog.wait();
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill_all();
        }
    }
}

/// The processes whose parent is `parent` (from /proc).
fn children_of(parent: Pid) -> Vec<Pid> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let name = entry.ok()?.file_name();
            let pid: i32 = name.to_str()?.parse().ok()?;
            let stat = fs::read_to_string(Path::new("/proc").join(&name).join("stat")).ok()?;
            // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
            let (_, rest) = stat.rsplit_once(')')?;
            let ppid: i32 = rest.split_whitespace().nth(1)?.parse().ok()?;
            (ppid == parent.as_raw()).then(|| Pid::from_raw(pid))
        })
        .collect()
}

/// A client sandbox for `server`: fixture `identity` as its identity, the host key pinned.
pub fn client_of(server: &Server, identity: &str) -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.install_identity(identity);
    sandbox.pin_host(&server.dest(), "host_rsa.pub");
    sandbox
}

impl Sandbox {
    /// `seashell exec 127.0.0.1:PORT -- WORDS...` with the default identity and `stdin` (then EOF).
    pub fn exec(&self, server: &Server, words: &[&str], stdin: &[u8]) -> RawRun {
        let dest = server.dest();
        let mut args = vec!["exec", dest.as_str(), "--"];
        args.extend_from_slice(words);
        self.run(args, stdin)
    }

    /// Starts `seashell exec 127.0.0.1:PORT -- LINE` with no stdin and with stdout and stderr
    /// piped, and returns at once.
    pub fn spawn_exec(&self, server: &Server, line: &str) -> Child {
        self.command(["exec", &server.dest(), "--", line])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn seashell exec")
    }
}
