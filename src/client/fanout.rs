//! `seashell exec -g GROUP -H HOST… -- COMMAND`: one command on many hosts, each in its own
//! authenticated session, at most `--parallel` at once, in the order given. Each identity is
//! loaded once, before any connection (one passphrase prompt at most per key file). Output
//! is written as it comes, whole lines only, each prefixed with its host ([`lines`]), or
//! with `--json` one object per host as each ends ([`super::record`]); then a summary and an
//! exit code ([`summary`]). The first Ctrl-C interrupts every running command (the server
//! sends SIGINT to its process group) and starts no more hosts; a second gives up on all.
//! This module is the thin tokio shell over those pure parts: it never asks about a host key
//! (an unknown one makes the host unreachable, unless `--accept-new`), never reads our
//! stdin, and never prints a remote command's output but whole lines of it.

pub mod lines;
pub mod summary;

use std::collections::HashMap;
use std::io::Write as _;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::Instant;

use super::ClientError;
use super::connect::{ConnectOptions, connect_as, identity_path};
use super::console::{Ahead, Outcome, RemoteConsole, Sink, StdinSource, Stream, exec_message};
use super::dest::Destination;
use super::identity::{self, Identity};
use super::record::{Captured, Record};
use crate::config::client::ClientConfig;
use lines::Lines;
use summary::End;

/// The default of `--parallel`.
pub const DEFAULT_PARALLEL: NonZeroUsize = match NonZeroUsize::new(32) {
    Some(n) => n,
    None => NonZeroUsize::MIN,
};

/// One host of a fan-out, resolved like any DEST.
#[derive(Debug, Clone)]
pub struct Host {
    /// As given (an alias, `host`, `host:port`): its prefix and its name in the summary.
    pub name: String,
    /// Where to connect.
    pub dest: Destination,
    /// How (host key prompts are never asked: see the module's documentation).
    pub opts: ConnectOptions,
}

/// A fan-out to run.
#[derive(Debug)]
pub struct Plan {
    /// The hosts, in order.
    pub hosts: Vec<Host>,
    /// The command line.
    pub line: String,
    /// Most sessions at once.
    pub parallel: NonZeroUsize,
    /// Longest a host's whole session may take.
    pub timeout: Option<Duration>,
    /// One JSON object per host instead of prefixed output.
    pub json: bool,
    /// `HOST: ` before each line.
    pub prefix: bool,
    /// No summary when every command exited 0 (`-q`).
    pub quiet: bool,
}

/// The host names of `groups` (from the configuration's `[group]`), then of `hosts` (each
/// maybe a comma-separated list), in that order, each once.
pub fn names(
    config: &ClientConfig,
    groups: &[String],
    hosts: &[String],
) -> Result<Vec<String>, ClientError> {
    let mut names: Vec<String> = Vec::new();
    for group in groups {
        let members = config.group(group).ok_or_else(|| {
            ClientError::Hosts(format!(
                "no group `{group}` in the client configuration's [group]"
            ))
        })?;
        names.extend(members.iter().cloned());
    }
    for list in hosts {
        for name in list.split(',').map(str::trim) {
            if name.is_empty() {
                return Err(ClientError::Hosts(format!(
                    "`{list}`: an empty host name in -H"
                )));
            }
            names.push(name.to_owned());
        }
    }
    let mut seen = std::collections::HashSet::new();
    names.retain(|name| seen.insert(name.clone()));
    Ok(names)
}

/// What the running hosts are told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Control {
    Run,
    /// Ctrl-C: interrupt the command; start no more hosts.
    Interrupt,
    /// A second Ctrl-C (or our stdout gone): close every session.
    GiveUp,
}

/// What one host's task hands back.
struct Ran {
    end: End,
    output: Option<Captured>,
    duration: Duration,
}

/// Runs the plan; returns the exit code ([`summary::exit_code`]).
pub async fn run(plan: Plan) -> Result<u8, ClientError> {
    let identities = load_identities(&plan.hosts)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(ClientError::Local)?;
    let (control_tx, control) = watch::channel(Control::Run);
    let (done_tx, mut done) = mpsc::unbounded_channel();
    let total = plan.hosts.len();
    let shared = Arc::new(Shared {
        line: plan.line.clone(),
        timeout: plan.timeout,
        json: plan.json,
        prefix: plan.prefix,
    });
    let semaphore = Arc::new(Semaphore::new(plan.parallel.get()));
    let spawner = tokio::spawn(spawn_in_order(
        plan.hosts.clone(),
        identities,
        semaphore,
        control.clone(),
        shared,
        done_tx,
    ));
    let mut ends: Vec<Option<End>> = (0..total).map(|_| None).collect();
    let mut received = 0;
    let (mut interrupted, mut gave_up, mut pipe_gone) = (false, false, false);
    while received < total {
        tokio::select! {
            Some((index, ran)) = done.recv() => {
                received += 1;
                let ran: Ran = ran;
                if let End::Broken(ClientError::Local(err)) = &ran.end
                    && err.kind() == std::io::ErrorKind::BrokenPipe
                {
                    pipe_gone = true;
                    let _ = control_tx.send(Control::GiveUp);
                }
                let Some(host) = plan.hosts.get(index) else { continue };
                if plan.json && !pipe_gone && !print_record(host, &ran) {
                    pipe_gone = true;
                    let _ = control_tx.send(Control::GiveUp);
                }
                if let Some(slot) = ends.get_mut(index) {
                    *slot = Some(ran.end);
                }
            }
            Some(()) = sigint.recv(), if !gave_up => {
                if interrupted {
                    gave_up = true;
                    let _ = control_tx.send(Control::GiveUp);
                } else {
                    interrupted = true;
                    let _ = control_tx.send(Control::Interrupt);
                }
            }
        }
    }
    let _ = spawner.await;
    if pipe_gone {
        // Whoever read our output is gone (`| head`): quietly, as single exec.
        return Ok(super::exec::SIGPIPE_STATUS);
    }
    let ends: Vec<(&str, &End)> = plan
        .hosts
        .iter()
        .zip(&ends)
        .filter_map(|(host, end)| Some((host.name.as_str(), end.as_ref()?)))
        .collect();
    let code = summary::exit_code(ends.iter().map(|(_, end)| *end), gave_up);
    if !(plan.quiet && code == summary::ALL_OK) {
        eprint!("{}", summary::summary(&ends));
    }
    Ok(code)
}

/// What every host's task shares.
struct Shared {
    line: String,
    timeout: Option<Duration>,
    json: bool,
    prefix: bool,
}

/// Which identity a host uses: its key file and the certificate the config names for it.
type IdentityKey = (PathBuf, Option<PathBuf>);

fn identity_key(opts: &ConnectOptions) -> Result<IdentityKey, ClientError> {
    Ok((identity_path(opts)?, opts.certificate.clone()))
}

/// Each distinct identity, chosen once (the agent's key, or a file whose passphrase is asked
/// here, before any connection).
fn load_identities(hosts: &[Host]) -> Result<HashMap<IdentityKey, Arc<Identity>>, ClientError> {
    let mut loaded = HashMap::new();
    for host in hosts {
        let key = identity_key(&host.opts)?;
        if let std::collections::hash_map::Entry::Vacant(slot) = loaded.entry(key) {
            slot.insert(Arc::new(identity::choose(&host.opts)?));
        }
    }
    Ok(loaded)
}

/// Starts the hosts in order, each once a slot is free; after Ctrl-C, starts no more (they
/// end as interrupted).
async fn spawn_in_order(
    hosts: Vec<Host>,
    identities: HashMap<IdentityKey, Arc<Identity>>,
    semaphore: Arc<Semaphore>,
    mut control: watch::Receiver<Control>,
    shared: Arc<Shared>,
    done: mpsc::UnboundedSender<(usize, Ran)>,
) {
    for (index, host) in hosts.into_iter().enumerate() {
        let identity = identity_key(&host.opts)
            .ok()
            .and_then(|key| identities.get(&key).cloned());
        let permit = tokio::select! {
            permit = Arc::clone(&semaphore).acquire_owned() => permit.ok(),
            _ = control.wait_for(|c| *c != Control::Run) => None,
        };
        let (Some(permit), Some(identity)) = (permit, identity) else {
            let _ = done.send((index, not_started()));
            continue;
        };
        if *control.borrow() != Control::Run {
            let _ = done.send((index, not_started()));
            continue;
        }
        let (control, shared, done) = (control.clone(), Arc::clone(&shared), done.clone());
        tokio::spawn(async move {
            let ran = one_host(&host, &identity, control, &shared).await;
            // Reported before the slot is given back, so that with `--parallel 1` the next
            // host's end can never be reported before this one's.
            let _ = done.send((index, ran));
            drop(permit);
        });
    }
}

fn not_started() -> Ran {
    Ran {
        end: End::Interrupted,
        output: None,
        duration: Duration::ZERO,
    }
}

/// Resolves at `deadline`; never without one.
async fn expired(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// One host: connect (the command going with ClientAuth), run, and end.
async fn one_host(
    host: &Host,
    identity: &Identity,
    mut control: watch::Receiver<Control>,
    shared: &Shared,
) -> Ran {
    let started = Instant::now();
    let deadline = shared.timeout.map(|limit| started + limit);
    let limit = shared.timeout.unwrap_or_default();
    let ahead = exec_message(&shared.line);
    let opened = tokio::select! {
        opened = async {
            let connection = connect_as(host.dest.clone(), &host.opts, identity, Some(&ahead.as_message()))
                .await
                .map_err(End::Unreachable)?;
            RemoteConsole::start(
                connection.channel,
                Some(Ahead {
                    message: ahead.clone(),
                    to_terminal: false,
                }),
            )
                .await
                .map_err(End::Broken)
        } => opened,
        () = expired(deadline) => Err(End::ConnectTimedOut(limit)),
        _ = control.wait_for(|c| *c != Control::Run) => Err(End::Interrupted),
    };
    let mut console = match opened {
        Ok(console) => console,
        Err(end) => {
            return Ran {
                end,
                output: None,
                duration: started.elapsed(),
            };
        }
    };
    let mut output = Output::new(host, shared);
    let end = {
        let interrupter = console.interrupter();
        let mut receive = |stream, data: &[u8]| output.take(stream, data);
        let mut sink = Sink::Each(&mut receive);
        let running = console.run(&shared.line, StdinSource::Closed, &mut sink, false);
        tokio::pin!(running);
        let mut interrupted = false;
        loop {
            tokio::select! {
                ran = &mut running => break match ran {
                    Ok(Outcome::Exited(status)) => End::Exited(status),
                    Ok(Outcome::GaveUp | Outcome::Disconnected) => End::Interrupted,
                    Err(err) => End::Broken(err),
                },
                () = expired(deadline) => break End::TimedOut(limit),
                changed = control.changed() => {
                    let now = *control.borrow_and_update();
                    if changed.is_err() || now == Control::GiveUp {
                        break End::Interrupted;
                    }
                    if now == Control::Interrupt && !interrupted {
                        interrupted = true;
                        interrupter.interrupt().await;
                    }
                }
            }
        }
    };
    let end = match end {
        End::Exited(status) => match console.finish().await {
            Ok(()) => End::Exited(status),
            Err(err) => End::Broken(err),
        },
        other => {
            console.close().await;
            other
        }
    };
    let end = match output.finish() {
        Err(err) if !matches!(end, End::Broken(ClientError::Local(_))) => {
            End::Broken(ClientError::Local(err))
        }
        _ => end,
    };
    Ran {
        end,
        output: output.captured,
        duration: started.elapsed(),
    }
}

/// Where one host's output goes: whole prefixed lines to our stdout and stderr, or captured
/// for `--json`.
struct Output {
    captured: Option<Captured>,
    stdout: Lines,
    stderr: Lines,
}

impl Output {
    fn new(host: &Host, shared: &Shared) -> Self {
        let prefix = if shared.prefix {
            format!("{}: ", crate::shown::shown(&host.name))
        } else {
            String::new()
        };
        Self {
            captured: shared.json.then(Captured::default),
            stdout: Lines::new(&prefix),
            stderr: Lines::new(&prefix),
        }
    }

    fn take(&mut self, stream: Stream, data: &[u8]) -> std::io::Result<()> {
        if let Some(captured) = &mut self.captured {
            captured.take(stream, data);
            return Ok(());
        }
        let lines = match stream {
            Stream::Stdout => self.stdout.push(data),
            Stream::Stderr => self.stderr.push(data),
        };
        write(stream, &lines)
    }

    /// Writes each stream's unfinished last line.
    fn finish(&mut self) -> std::io::Result<()> {
        write(Stream::Stdout, &self.stdout.finish())?;
        write(Stream::Stderr, &self.stderr.finish())
    }
}

/// Writes whole lines to our stdout or stderr under its lock: no other host's line can come
/// between them.
fn write(stream: Stream, bytes: &[u8]) -> std::io::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    match stream {
        Stream::Stdout => {
            let mut out = std::io::stdout().lock();
            out.write_all(bytes)?;
            out.flush()
        }
        Stream::Stderr => std::io::stderr().lock().write_all(bytes),
    }
}

/// Prints one host's JSON line; false if our stdout is gone.
fn print_record(host: &Host, ran: &Ran) -> bool {
    let address = host.dest.host_port();
    let record = Record {
        host: &host.name,
        address: &address,
        status: ran.end.status(),
        output: ran.output.as_ref(),
        duration: ran.duration,
        error: ran.end.error(&host.name),
    };
    let mut line = record.to_json().to_string();
    line.push('\n');
    write(Stream::Stdout, line.as_bytes()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn names_are_groups_then_hosts_in_order_each_once() {
        let config = ClientConfig::parse(
            "[group]\nweb = [\"web1\", \"web2\"]\ndb = [\"db1\", \"web2\"]\n",
            Path::new("/c"),
            None,
        )
        .unwrap();
        let names = names(
            &config,
            &["db".into(), "web".into()],
            &["x:7100, y".into(), "web1".into()],
        )
        .unwrap();
        assert_eq!(names, ["db1", "web2", "web1", "x:7100", "y"]);
        let err = super::names(&config, &["ops".into()], &[]).unwrap_err();
        assert!(err.to_string().contains("no group `ops`"), "{err}");
        assert!(super::names(&config, &[], &["a,,b".into()]).is_err());
    }
}
