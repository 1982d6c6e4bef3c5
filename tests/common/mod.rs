//! Helpers shared by the integration tests: a [`Sandbox`] (a temporary directory that is also
//! `SEASHELL_HOME` and `HOME`), fixture keys copied into it with mode 0600 (git does not keep
//! modes and seashell refuses open private keys), and running the built `seashell` binary there
//! with no terminal on stdin and no passphrase in the environment; and a running [`Server`].

use std::ffi::OsStr;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use tempfile::TempDir;

/// The passphrase of the `client_enc_rsa` fixture.
pub const FIXTURE_PASSPHRASE: &str = "correct horse battery staple";

/// The user name the binary sees (`$USER`), so default comments are predictable.
pub const TEST_USER: &str = "tester";

/// The path of a committed fixture (read-only: copy it with [`Sandbox::fixture`] to load it).
pub fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A temporary directory for one test; `home()` inside it is the binary's `SEASHELL_HOME`.
pub struct Sandbox {
    dir: TempDir,
}

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    /// The exit code (`None` if killed by a signal).
    pub code: Option<i32>,
    /// Everything printed on stdout.
    pub stdout: String,
    /// Everything printed on stderr.
    pub stderr: String,
}

impl Run {
    /// Panics with the whole output unless the run exited 0; returns stdout.
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, Some(0), "seashell failed: {self:#?}");
        &self.stdout
    }

    /// Panics unless the run failed with exit code `code`; returns stderr.
    pub fn failed_with(&self, code: i32) -> &str {
        assert_eq!(self.code, Some(code), "expected exit {code}: {self:#?}");
        &self.stderr
    }
}

impl Sandbox {
    /// A fresh, empty sandbox.
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("create a temporary directory"),
        }
    }

    /// The sandbox directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The `SEASHELL_HOME` the binary is given (not created in advance).
    pub fn home(&self) -> PathBuf {
        self.path().join("seashell-home")
    }

    /// Copies fixture `name` into the sandbox with mode 0600 and returns the copy's path.
    pub fn fixture(&self, name: &str) -> PathBuf {
        let copy = self.path().join(name);
        fs::copy(fixture_path(name), &copy).expect("copy fixture");
        fs::set_permissions(&copy, fs::Permissions::from_mode(0o600)).expect("chmod fixture");
        copy
    }

    /// Writes `contents` to `name` in the sandbox and returns its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path().join(name);
        fs::write(&path, contents).expect("write sandbox file");
        path
    }

    /// Runs `seashell ARGS` in the sandbox.
    pub fn seashell<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.seashell_with_env(args, &[])
    }

    /// Runs `seashell ARGS` in the sandbox with extra environment variables.
    pub fn seashell_with_env<I, S>(&self, args: I, env: &[(&str, &str)]) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = self.command(args);
        command.envs(env.iter().copied()).stdin(Stdio::null());
        Run::from(command.output().expect("run the seashell binary"))
    }

    /// Runs `seashell ARGS` in the sandbox with `input` on its stdin (a pipe, not a terminal).
    pub fn seashell_with_input<I, S>(&self, args: I, input: &str) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the seashell binary");
        let mut stdin = child.stdin.take().expect("stdin pipe");
        stdin.write_all(input.as_bytes()).expect("write stdin");
        drop(stdin);
        Run::from(child.wait_with_output().expect("wait for seashell"))
    }

    /// `seashell ARGS` set up to run in the sandbox, for tests that spawn and signal it.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = Command::new(env!("CARGO_BIN_EXE_seashell"));
        command
            .args(args)
            .current_dir(self.path())
            .env("SEASHELL_HOME", self.home())
            .env("HOME", self.path())
            .env("USER", TEST_USER)
            .env_remove("SEASHELL_PASSPHRASE")
            .stdin(Stdio::null());
        command
    }
}

impl From<std::process::Output> for Run {
    fn from(output: std::process::Output) -> Self {
        Self {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// A `seashell serve` on 127.0.0.1 with the fixture host key, its own `HOME` (where relative
/// remote paths land) and the given authorized_keys. It runs under a small `sh` that kills it
/// when the test binary's end closes the pipe on its stdin, so a server shared through a
/// `static` never outlives the tests (and its directory is removed with it).
pub struct Server {
    /// The port it listens on.
    pub port: u16,
    dir: TempDir,
    log: Arc<Mutex<String>>,
    _guard: Mutex<(Child, ChildStdin)>,
}

impl Server {
    /// Starts a server trusting `authorized_keys` (the file's text) and waits until it listens.
    pub fn start(authorized_keys: &str) -> Self {
        let dir = tempfile::tempdir().expect("create the server's directory");
        let host_key = dir.path().join("host_rsa");
        fs::copy(fixture_path("host_rsa"), &host_key).expect("copy the host key");
        fs::set_permissions(&host_key, fs::Permissions::from_mode(0o600)).expect("chmod");
        let authorized = dir.path().join("authorized_keys");
        fs::write(&authorized, authorized_keys).expect("write authorized_keys");
        let home = dir.path().join("home");
        fs::create_dir(&home).expect("create the server's home");
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(r#""$0" "$@" & pid=$!; read _; kill $pid; wait $pid; rm -rf "$SERVER_DIR""#)
            .arg(env!("CARGO_BIN_EXE_seashell"))
            .args(["serve", "--listen", "127.0.0.1:0", "--host-key"])
            .arg(&host_key)
            .arg("--authorized-keys")
            .arg(&authorized)
            .env("HOME", &home)
            .env("SEASHELL_HOME", dir.path())
            .env("RUST_LOG", "info")
            .env("SERVER_DIR", dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start seashell serve");
        let stdin = child.stdin.take().expect("stdin pipe");
        let stderr = child.stderr.take().expect("stderr pipe");
        let log = Arc::new(Mutex::new(String::new()));
        let (port_tx, port_rx) = mpsc::channel();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.split("listening on ").nth(1) {
                    let port = addr.rsplit(':').next().and_then(|p| p.trim().parse().ok());
                    let _ = port_tx.send(port);
                }
                let mut log = sink.lock().unwrap_or_else(|p| p.into_inner());
                log.push_str(&line);
                log.push('\n');
            }
        });
        let port = port_rx
            .recv_timeout(Duration::from_secs(60))
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("server did not start: {}", log.lock().unwrap()));
        Self {
            port,
            dir,
            log,
            _guard: Mutex::new((child, stdin)),
        }
    }

    /// The server user's home: where relative remote paths land.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The mode bits (permissions only) of a file.
pub fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).expect("stat").permissions().mode() & 0o7777
}

/// The `SHA256:...` words of some output, in order.
pub fn fingerprints_in(text: &str) -> Vec<String> {
    text.split_whitespace()
        .filter(|word| word.starts_with("SHA256:"))
        .map(str::to_owned)
        .collect()
}
