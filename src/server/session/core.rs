//! The session's decisions, pure (the boringtun shape): [`Core::handle`] takes what happened
//! (a client message, the audit log's answer, a command's end, a shutdown) and the time, and
//! returns what to do (send, audit and wait, start a command on a pty or pipes, write its
//! stdin, resize, signal its group, close); [`Core::on_timer`] and [`Core::next_deadline`]
//! carry every timer: the idle timeout, the silent-client deadline, SIGKILL 3 s after an
//! interrupt on pipes, SIGKILL 3 s after the hang-up of a session that ends while a command
//! runs. It never imports tokio, never reads a clock, never touches a process or a file:
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

/// Words the console runs itself, for every key (restricted ones included), besides `exit`
/// alone, which ends the session (`exit N` is the shell's).
pub const BUILTINS: [&str; 4] = ["cd", "pwd", "whoami", "help"];

/// What happened, for [`Core::handle`].
#[derive(Debug)]
pub enum Input<'a> {
    /// A message from the client.
    Message(Message<'a>),
    /// The audit log's answer to [`Action::AuditCommand`]: durable, or why not.
    Audited(Result<(), String>),
    /// The command of [`Action::Start`] could not start (the shell told the client, 127).
    StartFailed,
    /// The process the session started has ended; its Exit is on its way to the client.
    Ended,
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
    /// Run one of the console's own words ([`BUILTINS`]); nothing is started.
    Builtin {
        /// The line.
        line: String,
        /// The client's terminal is raw for this line (ExecPty granted): end lines with CRLF.
        terminal: bool,
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
        run: Option<Run>,
        pty: Option<PtyRequest>,
        /// The ExecPty's terminal was refused by policy.
        refused_pty: bool,
    },
    /// Running; `kill_at` is set after an interrupt on pipes.
    Running {
        on_pty: bool,
        kill_at: Option<Instant>,
    },
}

/// One session's state: the rules, with no I/O.
pub struct Core {
    limits: SessionLimits,
    policy: Policy,
    commands: std::sync::Arc<BTreeMap<String, Vec<String>>>,
    command: Command,
    ending: Ending,
    transfer_busy: bool,
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
            ending: Ending::Open,
            transfer_busy: false,
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
            Input::Audited(result) => self.audited(result),
            Input::StartFailed => {
                self.command = Command::Idle;
                self.after_command()
            }
            Input::Ended => {
                self.command = Command::Idle;
                self.active = now;
                self.after_command()
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
        let run = match self.decide(line) {
            Ok(run) => run,
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
        let on_pty = pty.is_some() && run.is_some();
        self.command = Command::Auditing {
            line: line.to_owned(),
            run,
            pty,
            refused_pty,
        };
        vec![Action::AuditCommand { line, pty: on_pty }]
    }

    /// How the key's policy lets `line` run: `None` for a built-in (always allowed, run by the
    /// console itself), else as the policy says.
    fn decide(&self, line: &str) -> Result<Option<Run>, Denied> {
        let first = line.split_whitespace().next().unwrap_or_default();
        if line.trim() == "exit" || BUILTINS.contains(&first) {
            return Ok(None);
        }
        self.policy.authorize(line, &self.commands).map(Some)
    }

    fn audited<'a>(&mut self, result: Result<(), String>) -> Vec<Action<'a>> {
        let Command::Auditing {
            line,
            run,
            pty,
            refused_pty,
        } = std::mem::replace(&mut self.command, Command::Idle)
        else {
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
        match run {
            None if line.trim() == "exit" => {
                self.ending = Ending::Finished;
                actions.extend([Action::SendClose(""), Action::Finish]);
            }
            None => actions.push(Action::Builtin { line, terminal }),
            Some(run) => {
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
            Command::Running { .. } => {
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
        core.handle(Input::Ended, after(t0, 200));
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
        core.handle(Input::Ended, t0);
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
        assert_eq!(core.handle(Input::Ended, after(t0, 1)), [Action::Finish]);
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
        assert_eq!(core.handle(Input::Ended, t0), [Action::Finish]);
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
    fn exit_is_audited_then_closes() {
        let t0 = Instant::now();
        let mut core = core(t0);
        core.handle(Input::Message(Message::Exec { line: "exit" }), t0);
        assert_eq!(
            core.handle(Input::Audited(Ok(())), t0),
            [Action::SendClose(""), Action::Finish]
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
