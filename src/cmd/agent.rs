//! `seashell agent` and `seashell add`: flags in, calls on [`seashell::agent`], and what
//! ssh-agent and ssh-add print out (the shell commands that point a shell at the agent; each
//! key added or removed; the list). Starting in the background re-runs this binary detached
//! (`agent --detached`), which prints the commands once it listens; no fork here.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use seashell::agent::client::{AGENT_PID_ENV, AUTH_SOCK_ENV, Agent, AgentError};
use seashell::agent::daemon::{self, Socket};
use seashell::cli::{AddArgs, AgentArgs};
use seashell::crypto::PublicKey;
use seashell::keys::cert::{self, Certificate};
use seashell::keys::private::{
    PassphraseSource, certificate_path, load_private_key, load_public_key_file, public_key_path,
};
use seashell::keys::public::fingerprint;
use seashell::keys::{KeyError, home};
use seashell::shown::shown;

/// What `agent` and `add` can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AgentCmdError {
    /// No agent to talk to.
    #[error("no agent: {AUTH_SOCK_ENV} is not set; start one with `eval \"$(seashell agent)\"`")]
    NoAgent,
    /// `agent -k` without an agent of this shell's.
    #[error("{AGENT_PID_ENV} is not set (or not a process id): no agent of this shell's to stop")]
    NoPid,
    /// The agent refused or could not be reached.
    #[error(transparent)]
    Agent(#[from] AgentError),
    /// A key file.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Starting or running the agent.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// What the OS said.
        source: std::io::Error,
    },
}

impl AgentCmdError {
    fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }
}

/// Runs `seashell agent`.
pub fn agent(args: &AgentArgs) -> Result<(), AgentCmdError> {
    let csh =
        args.csh || (!args.sh && std::env::var("SHELL").is_ok_and(|shell| shell.ends_with("csh")));
    if args.kill {
        return kill(csh);
    }
    if args.foreground || args.detached {
        return run(args, csh);
    }
    start_detached(args, csh)
}

/// The agent itself, in this process.
fn run(args: &AgentArgs, csh: bool) -> Result<(), AgentCmdError> {
    if args.detached {
        // Its own session: the terminal's hangup and job control do not reach it.
        nix::unistd::setsid().map_err(|err| AgentCmdError::Io {
            what: "detaching the agent".into(),
            source: err.into(),
        })?;
    }
    daemon::harden().map_err(AgentCmdError::io("disabling core dumps"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(AgentCmdError::io("starting the agent"))?;
    let socket = Socket::choose(args.socket.as_deref())
        .map_err(AgentCmdError::io("making the agent's directory"))?;
    let listener = runtime
        .block_on(async { socket.bind() })
        .map_err(AgentCmdError::io(format!(
            "listening on {}",
            socket.path.display()
        )))?;
    let served = daemon::print_environment(&socket.path, std::process::id(), csh)
        .map_err(AgentCmdError::io("printing the agent's environment"))
        .and_then(|()| {
            tracing::info!("agent listening on {}", socket.path.display());
            runtime
                .block_on(daemon::serve(listener))
                .map_err(AgentCmdError::io("serving"))
        });
    socket.remove();
    served
}

/// Runs `seashell agent --detached` in the background and passes on what it prints once
/// it listens.
fn start_detached(args: &AgentArgs, csh: bool) -> Result<(), AgentCmdError> {
    let exe = std::env::current_exe().map_err(AgentCmdError::io("finding seashell's binary"))?;
    let mut command = Command::new(exe);
    command.args(["agent", "--detached"]);
    command.arg(if csh { "-c" } else { "-s" });
    if let Some(socket) = &args.socket {
        command.arg("-a").arg(socket);
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(AgentCmdError::io("starting the agent"))?;
    let Some(stdout) = child.stdout.take() else {
        return Err(AgentCmdError::Io {
            what: "starting the agent".into(),
            source: std::io::Error::other("no pipe from the agent"),
        });
    };
    let mut printed = false;
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(AgentCmdError::io("reading from the agent"))?;
        println!("{line}");
        if line.starts_with("echo Agent pid") {
            printed = true;
            break;
        }
    }
    if printed {
        return Ok(());
    }
    let status = child
        .wait()
        .map_err(AgentCmdError::io("starting the agent"))?;
    Err(AgentCmdError::Io {
        what: "starting the agent".into(),
        source: std::io::Error::other(format!(
            "it exited ({status}) before listening; run `seashell agent -D` to see why"
        )),
    })
}

/// `agent -k`: stops this shell's agent and prints the commands that forget it.
fn kill(csh: bool) -> Result<(), AgentCmdError> {
    let pid = std::env::var(AGENT_PID_ENV)
        .ok()
        .and_then(|pid| pid.parse::<i32>().ok())
        .filter(|pid| *pid > 1)
        .ok_or(AgentCmdError::NoPid)?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .map_err(|err| AgentCmdError::Io {
        what: format!("stopping agent pid {pid}"),
        source: err.into(),
    })?;
    if csh {
        println!("unsetenv {AUTH_SOCK_ENV};\nunsetenv {AGENT_PID_ENV};");
    } else {
        println!("unset {AUTH_SOCK_ENV};\nunset {AGENT_PID_ENV};");
    }
    println!("echo Agent pid {pid} killed;");
    Ok(())
}

/// Runs `seashell add`; returns the exit code (1 for `-l` with no key, as ssh-add).
pub fn add(args: &AddArgs) -> Result<u8, AgentCmdError> {
    let agent = Agent::from_env().ok_or(AgentCmdError::NoAgent)?;
    if args.list {
        return list(&agent);
    }
    if args.remove_all {
        agent.remove_all()?;
        eprintln!("All keys removed.");
        return Ok(0);
    }
    let keys = if args.keys.is_empty() {
        vec![home::default_identity()?]
    } else {
        args.keys.clone()
    };
    let passphrase = PassphraseSource::from_flag(args.passphrase_file.as_deref());
    for path in &keys {
        if args.remove {
            let (key, comment) = public_of(path, &passphrase)?;
            agent.remove(&key)?;
            eprintln!("Key removed: {} ({})", path.display(), shown(&comment));
        } else {
            let key = load_private_key(path, &passphrase)?;
            let comment = comment_of(path);
            let cert = certificate_of(path, key.public_key());
            let encoded = cert
                .as_ref()
                .map_or_else(Vec::new, |(cert, _)| cert.encode());
            agent.add(&key, &comment, args.lifetime, &encoded)?;
            eprintln!("Key added: {} ({})", path.display(), shown(&comment));
            if let Some((cert, cert_path)) = &cert {
                eprintln!(
                    "Certificate added: {} ({})",
                    cert_path.display(),
                    describe(cert)
                );
            }
            if let Some(lifetime) = args.lifetime {
                eprintln!("Lifetime set to {}", humantime::format_duration(lifetime));
            }
        }
    }
    Ok(0)
}

fn list(agent: &Agent) -> Result<u8, AgentCmdError> {
    let keys = agent.list()?;
    if keys.is_empty() {
        println!("The agent has no keys.");
        return Ok(1);
    }
    for key in keys {
        let left = key.expires_in.map_or(String::new(), |left| {
            format!(" (expires in {})", humantime::format_duration(left))
        });
        println!(
            "{} {} {}{left}",
            key.public_key.bits(),
            fingerprint(&key.public_key),
            shown(&key.comment)
        );
        // An agent of an earlier build does not know the request: no certificate line.
        if let Ok(Some(cert)) = agent.certificate(&key.public_key) {
            let expired = cert.check_time(cert::unix_now()).is_err();
            println!(
                "    certificate: {}{}",
                describe(&cert),
                if expired { " (not valid now)" } else { "" }
            );
        }
    }
    Ok(0)
}

/// The user certificate of `key` beside the key file at `path` (`PATH-cert.pub`) and that
/// file's path, when there is one `key` can present now; a warning for one it cannot, as
/// then the key is added alone.
fn certificate_of(path: &Path, key: &PublicKey) -> Option<(Certificate, PathBuf)> {
    let cert_path = certificate_path(path);
    match cert::presentable_at(&cert_path, key, cert::unix_now()) {
        Ok(found) => found.map(|cert| (cert, cert_path)),
        Err(problem) => {
            eprintln!(
                "seashell: warning: not adding certificate {}: {}",
                cert_path.display(),
                shown(&problem)
            );
            None
        }
    }
}

/// A certificate in a few words: its name, serial and end (the name escaped).
fn describe(cert: &Certificate) -> String {
    let fields = cert.fields();
    format!(
        "{}, serial {}, valid until {}",
        shown(&fields.name),
        fields.serial,
        cert::format_time(fields.valid_before)
    )
}

/// The comment of the key at `path`: its .pub's, else the path itself (as ssh-add).
fn comment_of(path: &Path) -> String {
    load_public_key_file(&public_key_path(path))
        .map(|(_, comment)| comment)
        .ok()
        .filter(|comment| !comment.is_empty())
        .unwrap_or_else(|| path.display().to_string())
}

/// The public key of KEY for `add -d`: KEY itself when it is a .pub, else its .pub, else the
/// private key (which may ask for its passphrase).
fn public_of(path: &Path, passphrase: &PassphraseSource) -> Result<(PublicKey, String), KeyError> {
    let is_pub = path.extension().is_some_and(|ext| ext == "pub");
    let pub_path: PathBuf = if is_pub {
        path.to_owned()
    } else {
        public_key_path(path)
    };
    if is_pub || pub_path.exists() {
        return load_public_key_file(&pub_path);
    }
    let key = load_private_key(path, passphrase)?;
    Ok((key.public_key().clone(), path.display().to_string()))
}
