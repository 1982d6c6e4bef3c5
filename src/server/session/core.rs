//! The session's decisions, pure (the boringtun shape): [`Core::handle`] takes what happened
//! (a client message, the audit log's answer, a command's end, a shutdown) and the time, and
//! returns what to do (send, audit and wait, start a command on a pty or pipes, write its
//! stdin, resize, signal its group, close); [`Core::on_timer`] and [`Core::next_deadline`]
//! carry every timer: the idle timeout, the silent-client deadline, SIGKILL 3 s after an
//! interrupt on pipes, SIGKILL 3 s after the hang-up of a session that ends while a command
//! runs, SIGKILL for a login shell that has not set the console up within 10 s. A session is
//! plain (`exec`, `cp`: each line is `SHELL -c LINE`) until the client opens the console;
//! then the server user's login shell runs once, and a line whose shell does not come back
//! (`exit 3`, `exec prog`) ends the session with its status. It never imports tokio, never reads a clock, never touches a process or a file:
//! the async shell in [`super`] carries out its actions and feeds it events, so every timer
//! and ordering rule is unit-tested here with a fake clock.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::SessionLimits;
use crate::proto::{Message, WindowSize};
use crate::server::policy::{Denied, Policy, Run};

/// How long a command has, after an interrupt on pipes or a hang-up, before SIGKILL.
pub const KILL_AFTER: Duration = Duration::from_secs(3);

/// Exit status of a line the key's policy refused (like a shell's "cannot execute").
pub const DENIED_STATUS: i32 = 126;

/// How long the login shell has to set the console up before it is killed and the session
/// starts from a plain state.
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(10);

/// What happened, for [`Core::handle`].
#[derive(Debug)]
pub enum Input<'a> {
    /// A message from the client.
    Message(Message<'a>),
    /// The audit log's answer to [`Action::AuditCommand`]: durable, or why not.
    Audited(Result<(), String>),
    /// The command of [`Action::Start`] or [`Action::StartLogin`] could not start (for a
    /// line, the shell told the client: 127).
    StartFailed,
    /// The process the session started has ended; for a line, its Exit is on its way to the
    /// client.
    Ended {
        /// Its exit status, as a shell reports it.
        status: i32,
        /// Its shell came back with its state (always, for what runs without a state).
        came_back: bool,
    },
    /// The running command took stdin that had to wait for it: the client was sending all
    /// along, while the shell did not read.
    StdinTaken,
    /// A file transfer is under way (true) or not (false) after the last transfer message.
    TransferBusy(bool),
    /// The client broke the protocol: a frame that does not open (tampered, replayed), a
    /// message that does not parse, a transfer message out of order.
    ProtocolError,
    /// The server is stopping.
    Shutdown,
    /// The connection's read side ended (EOF, a cut, a frame that does not open).
    ReaderEnded,
    /// The connection's write side is gone: nothing more can reach the client.
    WriterGone,
}

/// A terminal asked for with ExecPty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PtyRequest {
    /// The client's `TERM`.
    pub term: String,
    /// The client terminal's size.
    pub size: WindowSize,
}

/// What the shell must do, in order, for one [`Core::handle`] or [`Core::on_timer`].
#[derive(Debug, PartialEq, Eq)]
pub enum Action<'a> {
    /// Answer a Ping.
    Pong(u64),
    /// Tell the client its ExecPty runs on pipes (before any output of the command).
    PtyRefused,
    /// Record the refused line and the rule (not awaited: nothing runs).
    AuditDenied {
        /// The line.
        line: &'a str,
        /// The rule that refused it.
        rule: String,
    },
    /// Write the command's audit record and wait until it is durable; then feed
    /// [`Input::Audited`]. Nothing runs before.
    AuditCommand {
        /// The line.
        line: &'a str,
        /// Whether it is to run on a pty.
        pty: bool,
    },
    /// Answer a line that does not run: this stderr and status, then the console state.
    Refuse {
        /// Why, for the user.
        stderr: String,
        /// The exit status.
        status: i32,
        /// The client's terminal is raw for this line (ExecPty granted): end lines with CRLF.
        terminal: bool,
    },
    /// Send this exit status and no console state: the session ends after it (a restricted
    /// key's `exit`).
    Exit(i32),
    /// Record the login shell's start in the audit log and wait until it is durable; then
    /// feed [`Input::Audited`].
    AuditLogin {
        /// Whether it is to run on a pty.
        pty: bool,
    },
    /// Start the login shell that sets the console's first state up; on failure feed
    /// [`Input::StartFailed`].
    StartLogin {
        /// On a new pseudo-terminal, or (None) on pipes.
        pty: Option<PtyRequest>,
    },
    /// Tell the client the console is open (then its state); `plain` says why the session
    /// starts from a plain state instead of the login shell's, if it does.
    ConsoleOpened {
        /// Why the login shell's state is not used (None: it is, or the key has no shell).
        plain: Option<Plain>,
    },
    /// Answer a completion request.
    Complete {
        /// The word, unquoted.
        word: &'a str,
        /// In command position.
        command: bool,
    },
    /// Start the line (its audit record is durable); on failure feed [`Input::StartFailed`].
    Start {
        /// The line.
        line: String,
        /// How the policy lets it run.
        run: Run,
        /// On a new pseudo-terminal, or (None) on pipes.
        pty: Option<PtyRequest>,
    },
    /// Bytes for the running command's stdin (or its terminal's input).
    Stdin(&'a [u8]),
    /// End of the command's stdin (on a pty: the terminal's EOF character).
    StdinEof,
    /// Set the running command's terminal size.
    Resize(WindowSize),
    /// Signal the running command's process group.
    Signal(Signal),
    /// Hand a file-transfer message to the transfers.
    Transfer(Message<'a>),
    /// Send the client a Close with this reason (empty: a normal end).
    SendClose(&'static str),
    /// The session is over: stop reading, let the output side finish, end.
    Finish,
}

/// Why a console starts from a plain state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plain {
    /// The login shell did not finish within [`LOGIN_TIMEOUT`] (or waited for input).
    Late,
    /// The login shell ended without coming back (it exited, or replaced itself).
    NotBack,
    /// It could not start.
    StartFailed,
    /// The audit log refused to record it.
    Refused(String),
}

/// What a line waiting for its audit record does once the record is durable.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pending {
    /// Runs as the policy says.
    Run(Run),
    /// Ends the session with this status (a restricted key's `exit`, `exit N`, `logout`).
    Exit(i32),
}

/// Why the session is ending, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Still open.
    Open,
    /// Hung up while a command ran: SIGHUP sent, SIGKILL at this time if it is still alive.
    HangingUp(Instant),
    /// Over.
    Finished,
}

/// The command the session is running.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Command {
    /// None.
    Idle,
    /// Its audit record is being written; it starts when that is durable.
    Auditing {
        line: String,
        pending: Pending,
        pty: Option<PtyRequest>,
        /// The ExecPty's terminal was refused by policy.
        refused_pty: bool,
    },
    /// The login shell's audit record is being written.
    AuditingLogin { pty: Option<PtyRequest> },
    /// Running; `kill_at` is set after an interrupt on pipes.
    Running {
        on_pty: bool,
        kill_at: Option<Instant>,
    },
    /// The login shell is running: killed at `deadline`; `late` once it was.
    LoggingIn { deadline: Instant, late: bool },
}

/// What the session's lines run in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Each line is `SHELL -c LINE` (or a restricted key's argv) in a fresh state.
    Plain,
    /// The console: lines carry the shell's state from one to the next.
    Console,
}

/// One session's state: the rules, with no I/O.
pub struct Core {
    limits: SessionLimits,
    policy: Policy,
    commands: std::sync::Arc<BTreeMap<String, Vec<String>>>,
    command: Command,
    mode: Mode,
    /// The status of the last line, for a restricted key's bare `exit`.
    last_status: i32,
    ending: Ending,
    transfer_busy: bool,
    /// The client has asked for the console (once per session).
    opened_once: bool,
    /// When the client was last heard from (any message).
    heard: Instant,
    /// When the client last did something (a command, input, a transfer).
    active: Instant,
}

impl Core {
    /// A new session, opened at `now`.
    pub fn new(
        limits: SessionLimits,
        policy: Policy,
        commands: std::sync::Arc<BTreeMap<String, Vec<String>>>,
        now: Instant,
    ) -> Self {
        Self {
            limits,
            policy,
            commands,
            command: Command::Idle,
            mode: Mode::Plain,
            last_status: 0,
            ending: Ending::Open,
            transfer_busy: false,
            opened_once: false,
            heard: now,
            active: now,
        }
    }

    /// Whether the shell should read the next client message (not once the session ends).
    pub fn reading(&self) -> bool {
        self.ending == Ending::Open
    }

    /// Whether the session is over.
    pub fn finished(&self) -> bool {
        self.ending == Ending::Finished
    }

    /// Takes one event.
    pub fn handle<'a>(&mut self, input: Input<'a>, now: Instant) -> Vec<Action<'a>> {
        match input {
            Input::Message(msg) => {
                self.heard = now;
                self.message(msg, now)
            }
            Input::Audited(result) => self.audited(result, now),
            Input::StartFailed => {
                let was = std::mem::replace(&mut self.command, Command::Idle);
                if matches!(was, Command::LoggingIn { .. }) {
                    return self.opened(Some(Plain::StartFailed));
                }
                self.after_command()
            }
            Input::Ended { status, came_back } => {
                let was = std::mem::replace(&mut self.command, Command::Idle);
                self.active = now;
                self.last_status = status;
                match was {
                    Command::LoggingIn { late, .. } => {
                        let plain = match (late, came_back) {
                            (true, _) => Some(Plain::Late),
                            (false, false) => Some(Plain::NotBack),
                            (false, true) => None,
                        };
                        self.opened(plain)
                    }
                    _ if self.mode == Mode::Console && !came_back => {
                        // The line's shell ended the session, as it would end a shell.
                        if self.ending == Ending::Open {
                            self.ending = Ending::Finished;
                            return vec![Action::SendClose(""), Action::Finish];
                        }
                        self.after_command()
                    }
                    _ => self.after_command(),
                }
            }
            Input::StdinTaken => {
                self.heard = now;
                Vec::new()
            }
            Input::TransferBusy(busy) => {
                if self.transfer_busy && !busy {
                    // The idle time counts from the end of a transfer.
                    self.active = now;
                }
                self.transfer_busy = busy;
                Vec::new()
            }
            Input::ProtocolError => self.protocol_error("frame or message", now),
            Input::Shutdown => self.close("server shutting down", now),
            Input::ReaderEnded | Input::WriterGone => self.hang_up(now),
        }
    }

    /// The earliest time [`Core::on_timer`] has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        if let Ending::HangingUp(kill_at) = self.ending {
            return Some(kill_at);
        }
        if self.ending == Ending::Finished {
            return None;
        }
        let silence = self.silence_deadline();
        let kill = match self.command {
            Command::Running { kill_at, .. } => kill_at,
            Command::LoggingIn {
                deadline,
                late: false,
            } => Some(deadline),
            _ => None,
        };
        let idle = self.idle_deadline();
        [silence, kill, idle].into_iter().flatten().min()
    }

    /// Does what is due at `now`.
    pub fn on_timer<'a>(&mut self, now: Instant) -> Vec<Action<'a>> {
        match self.ending {
            Ending::Finished => return Vec::new(),
            Ending::HangingUp(kill_at) if now >= kill_at => {
                self.ending = Ending::Finished;
                return vec![Action::Signal(Signal::SIGKILL), Action::Finish];
            }
            Ending::HangingUp(_) => return Vec::new(),
            Ending::Open => {}
        }
        if self.silence_deadline().is_some_and(|at| now >= at) {
            tracing::info!(
                "client silent for {:?}: closing",
                self.limits.keepalive.saturating_mul(3)
            );
            return self.close("client silent", now);
        }
        if let Command::LoggingIn {
            deadline,
            late: false,
        } = self.command
            && now >= deadline
        {
            tracing::info!("the login shell did not finish within {LOGIN_TIMEOUT:?}: killed");
            self.command = Command::LoggingIn {
                deadline,
                late: true,
            };
            return vec![Action::Signal(Signal::SIGKILL)];
        }
        if let Command::Running {
            kill_at: Some(at), ..
        } = self.command
            && now >= at
        {
            self.command = Command::Running {
                on_pty: false,
                kill_at: None,
            };
            // Only a command on pipes has a kill time.
            return vec![Action::Signal(Signal::SIGKILL)];
        }
        if self.idle_deadline().is_some_and(|at| now >= at) {
            tracing::info!("idle timeout");
            return self.close("idle timeout", now);
        }
        Vec::new()
    }

    fn idle_deadline(&self) -> Option<Instant> {
        let idle = self.limits.idle_timeout?;
        if self.command == Command::Idle && !self.transfer_busy {
            // A timeout past what a clock can hold is no timeout.
            self.active.checked_add(idle)
        } else {
            None
        }
    }

    /// When a client that sends nothing (not even a Pong) is taken for gone.
    fn silence_deadline(&self) -> Option<Instant> {
        self.heard
            .checked_add(self.limits.keepalive.saturating_mul(3))
    }

    fn message<'a>(&mut self, msg: Message<'a>, now: Instant) -> Vec<Action<'a>> {
        match msg {
            Message::Exec { line } => self.exec(line, None, now),
            Message::ExecPty { line, term, size } => {
                let pty = PtyRequest {
                    term: term.to_owned(),
                    size,
                };
                self.exec(line, Some(pty), now)
            }
            Message::OpenConsole { term, size } => self.open_console(term, size, now),
            Message::Complete { word, command } => match (self.mode, &self.command) {
                (Mode::Console, Command::Idle) => vec![Action::Complete { word, command }],
                _ => self.protocol_error("Complete outside the console's prompt", now),
            },
            Message::Stdin(data) => {
                self.active = now;
                match self.command {
                    Command::Running { .. } => vec![Action::Stdin(data)],
                    // Input racing the end of its command is dropped.
                    _ => Vec::new(),
                }
            }
            Message::StdinEof => match self.command {
                Command::Running { .. } => vec![Action::StdinEof],
                _ => Vec::new(),
            },
            Message::Interrupt => self.interrupt(now),
            Message::WindowChange(size) => match self.command {
                Command::Running { on_pty: true, .. } => vec![Action::Resize(size)],
                // A resize can cross the command's end on the wire.
                _ => Vec::new(),
            },
            Message::Ping(n) => vec![Action::Pong(n)],
            Message::Pong(_) => Vec::new(),
            Message::Close { .. } => self.hang_up(now),
            msg if msg.is_transfer() => {
                self.active = now;
                match self.command {
                    Command::Idle => vec![Action::Transfer(msg)],
                    _ => self.protocol_error(msg.name(), now),
                }
            }
            other => self.protocol_error(other.name(), now),
        }
    }

    fn exec<'a>(
        &mut self,
        line: &'a str,
        pty: Option<PtyRequest>,
        now: Instant,
    ) -> Vec<Action<'a>> {
        self.active = now;
        if self.command != Command::Idle {
            // One command at a time: the client waits for Exit before its next line.
            return self.protocol_error("Exec while a command runs", now);
        }
        let refused_pty = pty.is_some() && !self.policy.may_have_pty();
        let pty = pty.filter(|_| !refused_pty);
        let pending = match self.decide(line) {
            Ok(pending) => pending,
            Err(denied) => {
                let mut actions = Vec::new();
                if refused_pty {
                    actions.push(Action::PtyRefused);
                }
                actions.push(Action::AuditDenied {
                    line,
                    rule: denied.to_string(),
                });
                actions.push(Action::Refuse {
                    stderr: format!("seashell: denied: {denied}\n"),
                    status: DENIED_STATUS,
                    terminal: pty.is_some(),
                });
                return actions;
            }
        };
        let on_pty = pty.is_some() && matches!(pending, Pending::Run(_));
        self.command = Command::Auditing {
            line: line.to_owned(),
            pending,
            pty,
            refused_pty,
        };
        vec![Action::AuditCommand { line, pty: on_pty }]
    }

    /// How the key's policy lets `line` run. A restricted key has no shell: of the console's
    /// words it keeps `exit [N]` and `logout`, which end the session; every other line is
    /// the policy's. An unrestricted key's every line is its shell's (`exit` included).
    fn decide(&self, line: &str) -> Result<Pending, Denied> {
        if self.policy.is_restricted() {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["exit"] | ["logout"] => return Ok(Pending::Exit(self.last_status)),
                ["exit", n] => {
                    if let Ok(n) = n.parse::<i64>() {
                        // As a shell does: the status is N modulo 256.
                        return Ok(Pending::Exit(i32::try_from(n.rem_euclid(256)).unwrap_or(0)));
                    }
                }
                _ => {}
            }
        }
        self.policy
            .authorize(line, &self.commands)
            .map(Pending::Run)
    }

    /// OpenConsole: only once, first, with nothing running.
    fn open_console<'a>(&mut self, term: &str, size: WindowSize, now: Instant) -> Vec<Action<'a>> {
        self.active = now;
        if self.mode != Mode::Plain || self.command != Command::Idle || self.opened_once {
            return self.protocol_error("OpenConsole twice or while a command runs", now);
        }
        self.opened_once = true;
        if self.policy.is_restricted() {
            // No shell: nothing to set up.
            return self.opened(None);
        }
        let pty = (!term.is_empty() && self.policy.may_have_pty()).then(|| PtyRequest {
            term: term.to_owned(),
            size,
        });
        let on_pty = pty.is_some();
        self.command = Command::AuditingLogin { pty };
        vec![Action::AuditLogin { pty: on_pty }]
    }

    /// The console is open (from the login shell's state, or a plain one).
    fn opened<'a>(&mut self, plain: Option<Plain>) -> Vec<Action<'a>> {
        self.mode = Mode::Console;
        if matches!(self.ending, Ending::HangingUp(_)) {
            return self.after_command();
        }
        vec![Action::ConsoleOpened { plain }]
    }

    fn audited<'a>(&mut self, result: Result<(), String>, now: Instant) -> Vec<Action<'a>> {
        let command = std::mem::replace(&mut self.command, Command::Idle);
        if let Command::AuditingLogin { pty } = command {
            return match result {
                Ok(()) => {
                    self.command = Command::LoggingIn {
                        deadline: now + LOGIN_TIMEOUT,
                        late: false,
                    };
                    vec![Action::StartLogin { pty }]
                }
                Err(err) => self.opened(Some(Plain::Refused(err))),
            };
        }
        let Command::Auditing {
            line,
            pending,
            pty,
            refused_pty,
        } = command
        else {
            self.command = command;
            return Vec::new();
        };
        let mut actions = Vec::new();
        if refused_pty {
            actions.push(Action::PtyRefused);
        }
        let terminal = pty.is_some();
        if let Err(err) = result {
            actions.push(Action::Refuse {
                stderr: format!("seashell: command refused: {err}\n"),
                status: 255,
                terminal,
            });
            return actions;
        }
        match pending {
            Pending::Exit(status) => {
                self.ending = Ending::Finished;
                actions.extend([Action::Exit(status), Action::SendClose(""), Action::Finish]);
            }
            Pending::Run(run) => {
                self.command = Command::Running {
                    on_pty: pty.is_some(),
                    kill_at: None,
                };
                actions.push(Action::Start { line, run, pty });
            }
        }
        actions
    }

    fn interrupt<'a>(&mut self, now: Instant) -> Vec<Action<'a>> {
        match &mut self.command {
            // On a terminal the client's Ctrl-C is a byte for the line discipline; an
            // Interrupt there is SIGINT and nothing more (`~.` is the way out).
            Command::Running { on_pty: true, .. } => vec![Action::Signal(Signal::SIGINT)],
            Command::Running { kill_at, .. } => {
                kill_at.get_or_insert(now + KILL_AFTER);
                vec![Action::Signal(Signal::SIGINT)]
            }
            _ => Vec::new(),
        }
    }

    /// A command or refusal is answered: a session that was ending may finish now.
    fn after_command<'a>(&mut self) -> Vec<Action<'a>> {
        if matches!(self.ending, Ending::HangingUp(_)) {
            self.ending = Ending::Finished;
            return vec![Action::Finish];
        }
        Vec::new()
    }

    fn protocol_error<'a>(&mut self, what: &str, now: Instant) -> Vec<Action<'a>> {
        tracing::warn!("unexpected {what} from client: closing");
        self.close("protocol error", now)
    }

    /// Sends a Close, then hangs up.
    fn close<'a>(&mut self, reason: &'static str, now: Instant) -> Vec<Action<'a>> {
        if self.ending != Ending::Open {
            return Vec::new();
        }
        let mut actions = vec![Action::SendClose(reason)];
        actions.extend(self.hang_up(now));
        actions
    }

    /// Ends the session as a terminal hang-up does: SIGHUP to a running command's group,
    /// SIGKILL [`KILL_AFTER`] later if it is still alive.
    fn hang_up<'a>(&mut self, now: Instant) -> Vec<Action<'a>> {
        if self.ending != Ending::Open {
            return Vec::new();
        }
        match self.command {
            Command::Running { .. } | Command::LoggingIn { .. } => {
                self.ending = Ending::HangingUp(now + KILL_AFTER);
                vec![Action::Signal(Signal::SIGHUP)]
            }
            _ => {
                self.ending = Ending::Finished;
                vec![Action::Finish]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::authorized::AuthorizedKeys;

    const KEEPALIVE: Duration = Duration::from_secs(30);

    fn limits(idle: Option<u64>) -> SessionLimits {
        SessionLimits {
            idle_timeout: idle.map(Duration::from_secs),
            keepalive: KEEPALIVE,
        }
    }

    fn core_with(options: &str, idle: Option<u64>, t0: Instant) -> Core {
        let key = include_str!("../../../tests/fixtures/client_rsa.pub");
        let (keys, warnings) = AuthorizedKeys::parse(&format!("{options} {key}"));
        assert!(warnings.is_empty(), "{warnings:?}");
        let policy = Policy::from_options(&keys.entries[0].options);
        Core::new(limits(idle), policy, Default::default(), t0)
    }

    fn core(t0: Instant) -> Core {
        core_with("", None, t0)
    }

    /// An OpenConsole for a client terminal of type `term` (empty: none).
    fn open_console(term: &str) -> Message<'_> {
        Message::OpenConsole {
            term,
            size: WindowSize::default(),
        }
    }

    /// A command's end with `status`, its shell back or not.
    fn ended<'a>(status: i32, came_back: bool) -> Input<'a> {
        Input::Ended { status, came_back }
    }

    /// A session whose console is open (the login shell came back).
    fn console(t0: Instant) -> Core {
        let mut core = core(t0);
        let open = open_console("");
        core.handle(Input::Message(open), t0);
        core.handle(Input::Audited(Ok(())), t0);
        let ended = ended(0, true);
        core.handle(ended, t0);
        core
    }

    /// Runs `line` through the audit to its start; returns the Start action's pty.
    fn start(core: &mut Core, msg: Message<'_>, now: Instant) -> Option<PtyRequest> {
        let actions = core.handle(Input::Message(msg), now);
        assert!(
            matches!(actions.as_slice(), [Action::AuditCommand { .. }]),
            "{actions:?}"
        );
        let actions = core.handle(Input::Audited(Ok(())), now);
        match actions.into_iter().last() {
            Some(Action::Start { pty, .. }) => pty,
            other => panic!("not started: {other:?}"),
        }
    }

    fn after(t0: Instant, secs: u64) -> Instant {
        t0 + Duration::from_secs(secs)
    }

    #[test]
    fn the_idle_timeout_fires_exactly_at_its_deadline() {
        let t0 = Instant::now();
        let mut core = core_with("", Some(60), t0);
        // A Ping is not activity, but it is a sign of life.
        core.handle(Input::Message(Message::Ping(1)), after(t0, 50));
        assert_eq!(core.next_deadline(), Some(after(t0, 60)));
        assert!(
            core.on_timer(after(t0, 60) - Duration::from_millis(1))
                .is_empty()
        );
        assert_eq!(
            core.on_timer(after(t0, 60)),
            [Action::SendClose("idle timeout"), Action::Finish]
        );
        assert!(core.finished());
    }

    #[test]
    fn a_running_command_or_transfer_is_never_idle() {
        let t0 = Instant::now();
        let mut core = core_with("", Some(60), t0);
        start(&mut core, Message::Exec { line: "sleep 100" }, t0);
        // Only the silence deadline remains, and the client keeps answering pings.
        for s in (20..200).step_by(20) {
            core.handle(Input::Message(Message::Pong(s)), after(t0, s));
            assert!(core.on_timer(after(t0, s)).is_empty());
        }
        core.handle(ended(0, true), after(t0, 200));
        assert_eq!(core.next_deadline(), Some(after(t0, 260)));
        core.handle(Input::TransferBusy(true), after(t0, 201));
        core.handle(Input::Message(Message::Pong(0)), after(t0, 250));
        assert!(core.on_timer(after(t0, 270)).is_empty());
    }

    #[test]
    fn the_idle_time_counts_from_the_end_of_a_transfer() {
        let t0 = Instant::now();
        let mut core = core_with("", Some(60), t0);
        core.handle(Input::TransferBusy(true), t0);
        core.handle(Input::Message(Message::Pong(1)), after(t0, 80));
        assert!(core.on_timer(after(t0, 80)).is_empty());
        core.handle(Input::TransferBusy(false), after(t0, 90));
        assert_eq!(core.next_deadline(), Some(after(t0, 150)));
        // A command may follow a transfer at once.
        start(&mut core, Message::Exec { line: "ls" }, after(t0, 91));
    }

    #[test]
    fn a_silent_client_is_dropped_after_three_keepalive_intervals() {
        let t0 = Instant::now();
        let mut core = core(t0);
        core.handle(Input::Message(Message::Pong(1)), after(t0, 10));
        assert_eq!(core.next_deadline(), Some(after(t0, 100)));
        assert!(core.on_timer(after(t0, 99)).is_empty());
        assert_eq!(
            core.on_timer(after(t0, 100)),
            [Action::SendClose("client silent"), Action::Finish]
        );
    }

    #[test]
    fn a_client_whose_input_waited_for_its_command_is_not_silent() {
        let t0 = Instant::now();
        let mut core = core(t0);
        start(
            &mut core,
            Message::Exec {
                line: "sleep 100; cat",
            },
            t0,
        );
        core.handle(Input::Message(Message::Stdin(b"x")), t0);
        // The shell waited 100 s for the command to take it, reading nothing meanwhile.
        core.handle(Input::StdinTaken, after(t0, 100));
        assert!(core.on_timer(after(t0, 100)).is_empty());
        assert_eq!(core.next_deadline(), Some(after(t0, 190)));
    }

    #[test]
    fn interrupt_on_pipes_escalates_to_sigkill_after_three_seconds() {
        let t0 = Instant::now();
        let mut core = core(t0);
        start(&mut core, Message::Exec { line: "sleep 9" }, t0);
        assert_eq!(
            core.handle(Input::Message(Message::Interrupt), after(t0, 1)),
            [Action::Signal(Signal::SIGINT)]
        );
        // A second interrupt does not move the deadline.
        core.handle(Input::Message(Message::Interrupt), after(t0, 2));
        assert_eq!(core.next_deadline(), Some(after(t0, 4)));
        assert!(core.on_timer(after(t0, 3)).is_empty());
        assert_eq!(
            core.on_timer(after(t0, 4)),
            [Action::Signal(Signal::SIGKILL)]
        );
        assert!(core.on_timer(after(t0, 5)).is_empty(), "killed once");
    }

    #[test]
    fn interrupt_on_a_pty_adds_nothing() {
        let t0 = Instant::now();
        let mut core = core(t0);
        let pty = start(
            &mut core,
            Message::ExecPty {
                line: "python3",
                term: "xterm",
                size: WindowSize::default(),
            },
            t0,
        );
        assert!(pty.is_some());
        assert_eq!(
            core.handle(Input::Message(Message::Interrupt), t0),
            [Action::Signal(Signal::SIGINT)]
        );
        assert_eq!(core.next_deadline(), Some(after(t0, 90)), "no kill timer");
    }

    #[test]
    fn an_interrupt_of_a_command_that_ended_does_nothing() {
        let t0 = Instant::now();
        let mut core = core(t0);
        start(&mut core, Message::Exec { line: "true" }, t0);
        core.handle(ended(0, true), t0);
        assert!(
            core.handle(Input::Message(Message::Interrupt), t0)
                .is_empty()
        );
        assert!(
            core.handle(Input::Message(Message::Stdin(b"x")), t0)
                .is_empty()
        );
    }

    #[test]
    fn one_command_at_a_time() {
        let t0 = Instant::now();
        let mut core = core(t0);
        start(&mut core, Message::Exec { line: "sleep 5" }, t0);
        assert_eq!(
            core.handle(Input::Message(Message::Exec { line: "ls" }), t0),
            [
                Action::SendClose("protocol error"),
                Action::Signal(Signal::SIGHUP)
            ]
        );
        assert!(!core.reading());
    }

    #[test]
    fn a_transfer_while_a_command_runs_is_a_protocol_error() {
        let t0 = Instant::now();
        let mut core = core(t0);
        start(&mut core, Message::Exec { line: "sleep 5" }, t0);
        let actions = core.handle(Input::Message(Message::Stat { path: "x" }), t0);
        assert_eq!(actions.first(), Some(&Action::SendClose("protocol error")));
    }

    #[test]
    fn hang_up_sends_sighup_then_sigkill_only_if_still_alive() {
        let t0 = Instant::now();
        let mut core = core(t0);
        start(&mut core, Message::Exec { line: "sleep 60" }, t0);
        assert_eq!(
            core.handle(Input::ReaderEnded, t0),
            [Action::Signal(Signal::SIGHUP)]
        );
        assert_eq!(core.next_deadline(), Some(after(t0, 3)));
        assert_eq!(
            core.on_timer(after(t0, 3)),
            [Action::Signal(Signal::SIGKILL), Action::Finish]
        );

        // A command that ends of its SIGHUP gets no SIGKILL.
        let mut core = core_with("", None, t0);
        start(&mut core, Message::Exec { line: "sleep 60" }, t0);
        core.handle(Input::Message(Message::Close { reason: "" }), t0);
        assert_eq!(core.handle(ended(0, true), after(t0, 1)), [Action::Finish]);
        assert!(core.on_timer(after(t0, 3)).is_empty());
    }

    #[test]
    fn shutdown_while_a_command_runs_closes_then_hangs_up() {
        let t0 = Instant::now();
        let mut core = core(t0);
        start(&mut core, Message::Exec { line: "sleep 60" }, t0);
        assert_eq!(
            core.handle(Input::Shutdown, t0),
            [
                Action::SendClose("server shutting down"),
                Action::Signal(Signal::SIGHUP)
            ]
        );
        // Nothing more is read, and a second ending changes nothing.
        assert!(!core.reading());
        assert!(core.handle(Input::WriterGone, t0).is_empty());
        assert_eq!(core.handle(ended(0, true), t0), [Action::Finish]);
    }

    #[test]
    fn shutdown_of_an_idle_session_finishes_at_once() {
        let t0 = Instant::now();
        let mut core = core(t0);
        assert_eq!(
            core.handle(Input::Shutdown, t0),
            [Action::SendClose("server shutting down"), Action::Finish]
        );
    }

    #[test]
    fn an_audit_write_that_fails_refuses_the_command() {
        let t0 = Instant::now();
        let mut core = core(t0);
        core.handle(Input::Message(Message::Exec { line: "rm -rf x" }), t0);
        let actions = core.handle(Input::Audited(Err("disk full".into())), t0);
        assert_eq!(
            actions,
            [Action::Refuse {
                stderr: "seashell: command refused: disk full\n".into(),
                status: 255,
                terminal: false,
            }]
        );
        // Nothing runs: the next line is welcome.
        start(&mut core, Message::Exec { line: "ls" }, t0);
    }

    #[test]
    fn nothing_starts_before_its_audit_record_is_durable() {
        let t0 = Instant::now();
        let mut core = core(t0);
        let actions = core.handle(Input::Message(Message::Exec { line: "ls" }), t0);
        assert_eq!(
            actions,
            [Action::AuditCommand {
                line: "ls",
                pty: false
            }]
        );
    }

    #[test]
    fn a_no_pty_key_is_told_once_and_runs_on_pipes() {
        let t0 = Instant::now();
        let mut core = core_with("no-pty", None, t0);
        let exec = Message::ExecPty {
            line: "tty",
            term: "xterm",
            size: WindowSize::default(),
        };
        let actions = core.handle(Input::Message(exec), t0);
        assert_eq!(
            actions,
            [Action::AuditCommand {
                line: "tty",
                pty: false
            }]
        );
        let actions = core.handle(Input::Audited(Ok(())), t0);
        assert_eq!(actions.first(), Some(&Action::PtyRefused));
        assert!(matches!(
            actions.last(),
            Some(Action::Start { pty: None, .. })
        ));
        // A resize for a command on pipes is ignored.
        assert!(
            core.handle(
                Input::Message(Message::WindowChange(WindowSize::default())),
                t0
            )
            .is_empty()
        );
    }

    #[test]
    fn a_resize_reaches_a_command_on_a_pty() {
        let t0 = Instant::now();
        let mut core = core(t0);
        let exec = Message::ExecPty {
            line: "vi",
            term: "xterm",
            size: WindowSize::default(),
        };
        start(&mut core, exec, t0);
        let size = WindowSize {
            rows: 50,
            cols: 132,
            xpixel: 0,
            ypixel: 0,
        };
        assert_eq!(
            core.handle(Input::Message(Message::WindowChange(size)), t0),
            [Action::Resize(size)]
        );
    }

    #[test]
    fn a_restricted_key_gets_a_pty_only_for_an_allowed_line() {
        let t0 = Instant::now();
        let mut core = core_with(r#"allow="top""#, None, t0);
        let exec = |line| Message::ExecPty {
            line,
            term: "xterm",
            size: WindowSize::default(),
        };
        let refused = core.handle(Input::Message(exec("sh")), t0);
        assert!(matches!(
            refused.as_slice(),
            [
                Action::AuditDenied { .. },
                Action::Refuse {
                    status: DENIED_STATUS,
                    ..
                }
            ]
        ));
        assert!(start(&mut core, exec("top"), t0).is_some());
    }

    #[test]
    fn exit_is_the_shells_and_a_line_that_does_not_come_back_ends_the_console() {
        let t0 = Instant::now();
        let mut core = console(t0);
        start(&mut core, Message::Exec { line: "exit 3" }, t0);
        assert_eq!(
            core.handle(ended(3, false), t0),
            [Action::SendClose(""), Action::Finish]
        );
        assert!(core.finished());
    }

    #[test]
    fn a_plain_session_goes_on_after_a_line_without_state() {
        let t0 = Instant::now();
        let mut core = core(t0);
        start(&mut core, Message::Exec { line: "exit 3" }, t0);
        let ended = ended(3, true);
        assert!(core.handle(ended, t0).is_empty());
        start(&mut core, Message::Exec { line: "ls" }, t0);
    }

    #[test]
    fn a_restricted_keys_exit_ends_the_session_with_its_status() {
        let t0 = Instant::now();
        let mut core = core_with(r#"allow="ls""#, None, t0);
        core.handle(Input::Message(Message::Exec { line: "exit 260" }), t0);
        assert_eq!(
            core.handle(Input::Audited(Ok(())), t0),
            [Action::Exit(4), Action::SendClose(""), Action::Finish]
        );
        // `cd` is no word of the console's: the policy refuses it.
        let mut core = core_with(r#"allow="ls""#, None, t0);
        let refused = core.handle(Input::Message(Message::Exec { line: "cd /tmp" }), t0);
        assert!(matches!(
            refused.as_slice(),
            [Action::AuditDenied { .. }, Action::Refuse { .. }]
        ));
    }

    #[test]
    fn the_login_shell_is_audited_started_and_opens_the_console() {
        let t0 = Instant::now();
        let mut core = core(t0);
        let open = open_console("xterm");
        assert_eq!(
            core.handle(Input::Message(open), t0),
            [Action::AuditLogin { pty: true }]
        );
        let actions = core.handle(Input::Audited(Ok(())), t0);
        assert!(matches!(
            actions.as_slice(),
            [Action::StartLogin { pty: Some(_) }]
        ));
        // Nothing else while it runs: a line would be a protocol error.
        assert_eq!(core.next_deadline(), Some(after(t0, 10)));
        let ended = ended(0, true);
        assert_eq!(
            core.handle(ended, after(t0, 1)),
            [Action::ConsoleOpened { plain: None }]
        );
        start(&mut core, Message::Exec { line: "ls" }, after(t0, 1));
    }

    #[test]
    fn a_login_shell_that_takes_too_long_is_killed_and_the_console_starts_plain() {
        let t0 = Instant::now();
        let mut core = core(t0);
        let open = open_console("");
        assert_eq!(
            core.handle(Input::Message(open), t0),
            [Action::AuditLogin { pty: false }]
        );
        core.handle(Input::Audited(Ok(())), t0);
        assert!(
            core.on_timer(after(t0, 10) - Duration::from_millis(1))
                .is_empty()
        );
        assert_eq!(
            core.on_timer(after(t0, 10)),
            [Action::Signal(Signal::SIGKILL)]
        );
        let killed = ended(137, false);
        assert_eq!(
            core.handle(killed, after(t0, 10)),
            [Action::ConsoleOpened {
                plain: Some(Plain::Late)
            }]
        );
    }

    #[test]
    fn a_login_shell_that_does_not_come_back_leaves_a_plain_console() {
        let t0 = Instant::now();
        let mut core = core(t0);
        let open = open_console("");
        core.handle(Input::Message(open), t0);
        core.handle(Input::Audited(Ok(())), t0);
        let gone = ended(1, false);
        assert_eq!(
            core.handle(gone, t0),
            [Action::ConsoleOpened {
                plain: Some(Plain::NotBack)
            }]
        );
        // A second OpenConsole is a protocol error.
        let again = open_console("");
        assert_eq!(
            core.handle(Input::Message(again), t0).first(),
            Some(&Action::SendClose("protocol error"))
        );
    }

    #[test]
    fn a_restricted_key_opens_its_console_without_a_shell_and_completes_only_there() {
        let t0 = Instant::now();
        let mut core = core_with(r#"allow="ls""#, None, t0);
        let complete = Message::Complete {
            word: "l",
            command: true,
        };
        // Not before the console is open.
        let mut early = core_with(r#"allow="ls""#, None, t0);
        assert_eq!(
            early.handle(Input::Message(complete), t0).first(),
            Some(&Action::SendClose("protocol error"))
        );
        let open = open_console("xterm");
        assert_eq!(
            core.handle(Input::Message(open), t0),
            [Action::ConsoleOpened { plain: None }]
        );
        assert_eq!(
            core.handle(Input::Message(complete), t0),
            [Action::Complete {
                word: "l",
                command: true
            }]
        );
    }

    #[test]
    fn timeouts_too_long_for_the_clock_never_fire_and_never_panic() {
        let t0 = Instant::now();
        let limits = SessionLimits {
            idle_timeout: Some(Duration::MAX),
            keepalive: Duration::MAX,
        };
        let mut core = Core::new(limits, Policy::default(), Default::default(), t0);
        assert_eq!(core.next_deadline(), None);
        assert!(core.on_timer(after(t0, 1_000_000)).is_empty());
    }

    #[test]
    fn messages_only_a_server_sends_are_protocol_errors() {
        let t0 = Instant::now();
        for msg in [
            Message::Stdout(b"x"),
            Message::AuthFailed,
            Message::PtyRefused,
            Message::Exit(crate::proto::ExitStatus::Code(0)),
        ] {
            let mut core = core(t0);
            assert_eq!(
                core.handle(Input::Message(msg), t0),
                [Action::SendClose("protocol error"), Action::Finish],
                "{msg:?}"
            );
        }
    }
}
