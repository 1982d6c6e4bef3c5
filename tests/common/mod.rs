//! Helpers shared by the integration tests: a [`Sandbox`] (a temporary directory that is also
//! `SEASHELL_HOME` and `HOME`), fixture keys copied into it with mode 0600 (git does not keep
//! modes and seashell refuses open private keys), and running the built `seashell` binary there
//! with no terminal on stdin and no passphrase in the environment.

pub mod server;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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
        let output = Command::new(env!("CARGO_BIN_EXE_seashell"))
            .args(args)
            .current_dir(self.path())
            .env("SEASHELL_HOME", self.home())
            .env("HOME", self.path())
            .env("USER", TEST_USER)
            .env_remove("SEASHELL_PASSPHRASE")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .expect("run the seashell binary");
        Run {
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
