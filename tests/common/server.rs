//! A real `seashell serve` for the integration tests: started on 127.0.0.1 port 0 with the
//! fixture host key and an authorized_keys holding the `client_rsa` fixture, its address read
//! from the `listening on ADDR` line on stderr, and clients run against it with
//! `seashell exec`, pinned to the host key by fingerprint. A server still running when its
//! [`Server`] is dropped is killed, and so are the command process groups it left behind.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use super::{Run, Sandbox, TEST_USER, fixture_path};

/// How long a server may take to start (it makes an RSA-3072 transport key first).
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// The fingerprint of the `host_rsa` fixture.
pub fn host_fingerprint() -> String {
    let (key, _) =
        seashell::keys::private::load_public_key_file(&fixture_path("host_rsa.pub")).unwrap();
    seashell::keys::public::fingerprint(&key)
}

/// The fingerprint of the `client_rsa` fixture.
pub fn client_fingerprint() -> String {
    let (key, _) =
        seashell::keys::private::load_public_key_file(&fixture_path("client_rsa.pub")).unwrap();
    seashell::keys::public::fingerprint(&key)
}

/// A running server.
pub struct Server {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl Sandbox {
    /// The binary with the sandbox's environment (`SEASHELL_HOME`, `HOME`, `USER`), no stdin.
    fn binary(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_seashell"));
        command
            .current_dir(self.path())
            .env("SEASHELL_HOME", self.home())
            .env("HOME", self.path())
            .env("USER", TEST_USER)
            .env("RUST_LOG", "info")
            .env_remove("SEASHELL_PASSPHRASE")
            .stdin(Stdio::null());
        command
    }

    /// Starts `seashell serve` with `extra` flags and waits until it listens.
    pub fn serve(&self, extra: &[&str]) -> Server {
        let client_pub = std::fs::read_to_string(fixture_path("client_rsa.pub")).unwrap();
        self.serve_with(extra, &client_pub)
    }

    /// Starts `seashell serve` with `extra` flags and `authorized_keys` (written to the
    /// sandbox's `authorized_keys`) and waits until it listens.
    pub fn serve_with(&self, extra: &[&str], authorized_keys: &str) -> Server {
        let host_key = self.fixture_once("host_rsa");
        let authorized = self.write("authorized_keys", authorized_keys);
        let mut child = self
            .binary()
            .args(["serve", "--listen", "127.0.0.1:0", "--host-key"])
            .arg(&host_key)
            .arg("--authorized-keys")
            .arg(&authorized)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start seashell serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (found, listening) = mpsc::channel();
        let pipe = child.stderr.take().unwrap();
        let collected = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if let Some((_, addr)) = line.split_once("listening on ") {
                    let _ = found.send(addr.trim().parse::<SocketAddr>().unwrap());
                }
                collected.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        let addr = match listening.recv_timeout(START_TIMEOUT) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the server did not start: {}", stderr.lock().unwrap());
            }
        };
        Server {
            child,
            addr,
            stderr,
        }
    }

    /// `seashell exec ... -- COMMAND` against `server` as the `client_rsa` fixture, not waited for.
    pub fn spawn_exec(&self, server: &Server, command: &str) -> Child {
        self.exec_command(server, "client_rsa", command)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start seashell exec")
    }

    /// `seashell exec ... -- COMMAND` against `server` with the fixture key `identity`.
    pub fn exec_as(&self, server: &Server, identity: &str, command: &str) -> Run {
        let output = self
            .exec_command(server, identity, command)
            .output()
            .expect("run seashell exec");
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// `seashell exec ... -- COMMAND` against `server` as the `client_rsa` fixture.
    pub fn exec_on(&self, server: &Server, command: &str) -> Run {
        self.exec_as(server, "client_rsa", command)
    }

    /// The fixture copy, made on first use only (a client may be reading it right now).
    fn fixture_once(&self, name: &str) -> std::path::PathBuf {
        let copy = self.path().join(name);
        if copy.exists() {
            copy
        } else {
            self.fixture(name)
        }
    }

    fn exec_command(&self, server: &Server, identity: &str, command: &str) -> Command {
        let key = self.fixture_once(identity);
        let mut exec = self.binary();
        exec.arg("exec")
            .arg("-i")
            .arg(&key)
            .args(["--host-fingerprint", &host_fingerprint()])
            .args(["-p", &server.addr.port().to_string()])
            .args(["127.0.0.1", "--", command]);
        exec
    }
}

impl Server {
    /// Everything the server logged on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// SIGTERM, then waits for the server to exit.
    pub fn terminate(mut self) -> ExitStatus {
        kill(self.pid(), Signal::SIGTERM).unwrap();
        self.wait()
    }

    /// `kill -HUP PID`: the server re-reads authorized_keys.
    pub fn hangup(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -HUP failed: {status}");
    }

    /// SIGKILL, like a crash; the commands it was running are killed too.
    pub fn crash(mut self) {
        self.kill_all();
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(i32::try_from(self.child.id()).unwrap())
    }

    fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not stop: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server, then the process groups of the commands it had started.
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
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill_all();
        }
    }
}

/// The processes whose parent is `parent` (from /proc).
fn children_of(parent: Pid) -> Vec<Pid> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let name = entry.ok()?.file_name();
            let pid: i32 = name.to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(Path::new("/proc").join(&name).join("stat")).ok()?;
            // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
            let (_, rest) = stat.rsplit_once(')')?;
            let ppid: i32 = rest.split_whitespace().nth(1)?.parse().ok()?;
            (ppid == parent.as_raw()).then(|| Pid::from_raw(pid))
        })
        .collect()
}
