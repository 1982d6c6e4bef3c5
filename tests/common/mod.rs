//! Helpers shared by the integration tests: a [`Sandbox`] (a temporary directory that is also
//! `SEASHELL_HOME` and `HOME`), fixture keys copied into it with mode 0600 (git does not keep
//! modes and seashell refuses open private keys), and running the built `seashell` binary there
//! with no terminal on stdin and no passphrase in the environment; a running [`Server`] on
//! 127.0.0.1 (in a test's sandbox, or [`Server::shared`]) and client sandboxes that trust it
//! ([`client_of`]) to run `seashell exec` against it ([`Sandbox::exec`]).

mod server;

pub use server::{Server, client_of};

use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::io::{Read, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The passphrase of the `client_enc_rsa` fixture.
pub const FIXTURE_PASSPHRASE: &str = "correct horse battery staple";

/// The built binary under test.
pub const SEASHELL: &str = env!("CARGO_BIN_EXE_seashell");

/// The user name the binary sees (`$USER`), so default comments are predictable.
pub const TEST_USER: &str = "tester";

/// The path of a committed fixture (read-only: copy it with [`Sandbox::fixture`] to load it).
pub fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A temporary directory for one test; `home()` inside it is the binary's `SEASHELL_HOME`.
/// Clones share the directory, which goes when the last one is dropped (a [`Server`] keeps one).
#[derive(Clone)]
pub struct Sandbox {
    dir: Arc<TempDir>,
    binary: PathBuf,
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
            dir: Arc::new(tempfile::tempdir().expect("create a temporary directory")),
            binary: PathBuf::from(SEASHELL),
        }
    }

    /// The same sandbox, running `binary` instead of the build under test (another build
    /// of seashell, such as the other crypto provider's).
    pub fn using(mut self, binary: &Path) -> Self {
        self.binary = binary.to_owned();
        self
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

    /// `seashell ARGS` in the sandbox's cwd, `SEASHELL_HOME`, `HOME` and `USER`, no passphrase.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = Command::new(&self.binary);
        command
            .args(args)
            .current_dir(self.path())
            .env("SEASHELL_HOME", self.home())
            .env("HOME", self.path())
            .env("USER", TEST_USER)
            .env_remove("SEASHELL_PASSPHRASE")
            .env_remove("SEASHELL_AUTH_SOCK")
            .env_remove("SEASHELL_AGENT_PID");
        command
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
}

impl From<std::process::Output> for Run {
    /// The exit code and the output as text (lossy).
    fn from(output: std::process::Output) -> Self {
        Self {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
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

/// Fingerprint of the `host_rsa` fixture.
pub const HOST_FP: &str = "SHA256:NtQ+o5uZyz+UITEeRXdW+Zc6dlCVMp+jmcmVPVw/HNA";
/// Fingerprint of the `client_rsa` fixture.
pub const CLIENT_FP: &str = "SHA256:rpeErIUYglF2K3OKc842cJfnpSUWQP6imlU7v97KkYs";
/// Fingerprint of the `other_rsa` fixture.
pub const OTHER_FP: &str = "SHA256:D+zLkAvOTLIC+5FWgO1bqSGmFQlHjWa6DerNsTrZdck";
/// Fingerprint of the `client_enc_rsa` fixture.
pub const ENC_FP: &str = "SHA256:zYOBn0jUD/WV3nT9mt0z15C3gGhyu7QqMIhSH2s2dqM";

/// Longest any one run of the binary may take before the test gives up on it (a hang is a
/// failure with the output so far, not a stuck test run).
pub const RUN_DEADLINE: Duration = Duration::from_secs(60);

/// The `.pub` line of a fixture, comment and newline included.
pub fn pub_line(fixture: &str) -> String {
    fs::read_to_string(fixture_path(&format!("{fixture}.pub"))).expect("read .pub fixture")
}

/// `seashell-rsa <base64>` of a fixture's .pub line, without its comment.
pub fn bare_key(pub_fixture: &str) -> String {
    let line = fs::read_to_string(fixture_path(pub_fixture)).expect("read .pub fixture");
    line.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// What one run of a process did, byte for byte.
pub struct RawRun {
    /// The exit code (`None` if killed by a signal).
    pub code: Option<i32>,
    /// Everything printed on stdout.
    pub stdout: Vec<u8>,
    /// Everything printed on stderr.
    pub stderr: String,
}

impl fmt::Debug for RawRun {
    /// Like a derived `Debug`, with stdout shown as text (lossy) rather than bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawRun")
            .field("code", &self.code)
            .field("stdout", &self.stdout_text())
            .field("stderr", &self.stderr)
            .finish()
    }
}

impl RawRun {
    /// stdout as text (lossy).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Panics with the whole output unless the run exited 0; returns stdout as text.
    pub fn ok(&self) -> String {
        assert_eq!(self.code, Some(0), "run failed: {self:#?}");
        self.stdout_text()
    }

    /// Panics unless the run exited with `code`; returns stderr.
    pub fn failed_with(&self, code: i32) -> &str {
        assert_eq!(
            self.code,
            Some(code),
            "expected exit {code}; stdout {:?}; stderr {:?}",
            self.stdout_text(),
            self.stderr
        );
        &self.stderr
    }
}

/// Polls `done` until it holds; fails after `timeout`, naming `what`.
pub fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// Runs `command` with `stdin` (then EOF) to its end; kills it and fails after [`RUN_DEADLINE`].
pub fn run_to_end(mut command: Command, stdin: &[u8]) -> RawRun {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut input = child.stdin.take().expect("stdin pipe");
    let stdin = stdin.to_vec();
    // A command that exits without reading its input makes this write fail: that is its business.
    let feeder = thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let stdout = drain(child.stdout.take().expect("stdout pipe"));
    let stderr = drain(child.stderr.take().expect("stderr pipe"));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > RUN_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            let stderr =
                String::from_utf8_lossy(&stderr.join().expect("stderr reader")).into_owned();
            panic!("{command:?} still running after {RUN_DEADLINE:?}; stderr: {stderr}");
        }
        thread::sleep(Duration::from_millis(10));
    };
    feeder.join().expect("stdin feeder");
    RawRun {
        code: status.code(),
        stdout: stdout.join().expect("stdout reader"),
        stderr: String::from_utf8_lossy(&stderr.join().expect("stderr reader")).into_owned(),
    }
}

/// Reads a pipe to its end on a thread.
fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut all = Vec::new();
        let _ = pipe.read_to_end(&mut all);
        all
    })
}

impl Sandbox {
    /// Makes `home()` (0700) with fixture `name` as its default identity (`id_rsa` 0600, `.pub`).
    pub fn install_identity(&self, name: &str) -> PathBuf {
        let home = self.home();
        fs::create_dir_all(&home).expect("create SEASHELL_HOME");
        fs::set_permissions(&home, fs::Permissions::from_mode(0o700)).expect("chmod home");
        let key = home.join("id_rsa");
        fs::copy(fixture_path(name), &key).expect("copy identity");
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).expect("chmod identity");
        fs::copy(
            fixture_path(&format!("{name}.pub")),
            home.join("id_rsa.pub"),
        )
        .expect("copy .pub");
        key
    }

    /// The client's default known_hosts (`$SEASHELL_HOME/known_hosts`).
    pub fn known_hosts(&self) -> PathBuf {
        self.home().join("known_hosts")
    }

    /// Appends `host_port seashell-rsa <key of pub_fixture>` to the default known_hosts.
    pub fn pin_host(&self, host_port: &str, pub_fixture: &str) {
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.known_hosts())
            .expect("open known_hosts");
        writeln!(file, "{host_port} {}", bare_key(pub_fixture)).expect("write known_hosts");
    }

    /// Runs `seashell ARGS` in the sandbox with `stdin` (then EOF), byte for byte.
    pub fn run<I, S>(&self, args: I, stdin: &[u8]) -> RawRun
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run_to_end(self.command(args), stdin)
    }
}

/// Lines of `log` that mention `needle`.
pub fn count_lines(log: &str, needle: &str) -> usize {
    log.lines().filter(|line| line.contains(needle)).count()
}
