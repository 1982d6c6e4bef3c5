//! `seashell connect DEST`: the remote console, line by line. On a terminal, a rustyline
//! REPL: the prompt shows the key name, host and remote cwd; history lives in
//! `$SEASHELL_HOME/history`; Tab completes built-ins, and local paths after `put`/`get`;
//! Ctrl-C interrupts the running remote command (a second one within 2 s stops waiting for
//! it) or transfer, or clears the line at the prompt; Ctrl-D or `exit` ends the session.
//! `put LOCAL [REMOTE]` and `get REMOTE [LOCAL]` (with `-r`, `-p`, `--resume`) move files,
//! remote paths relative to the session's cwd. When stdin and stdout are terminals (and no
//! `-T`), each line runs on a remote pseudo-terminal: full-screen programs work, every key
//! goes to the command while it runs (Ctrl-C too, for its terminal), `~.` drops the
//! connection (exit 255), and the prompt comes back on a fresh line. With `-T`, or stdout
//! not a terminal, lines run on pipes with stdin closed. When stdin is not a terminal, each
//! line of stdin runs in order on pipes (script mode) and the last command's status is the
//! exit code.

use std::io::{BufRead, IsTerminal, Write};

use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, Helper};
use tokio::runtime::Runtime;

use super::ClientError;
use super::connect::{ConnectOptions, connect};
use super::console::{Keyboard, Outcome, PtyCommand, RemoteConsole, Sink, StdinSource, shown};
use super::dest::Destination;
use super::exec::DISCONNECTED_STATUS;
use super::repl_transfer::ReplTransfer;
use super::terminal::{PtyRequest, local_term_type};
use super::transfer::Interrupts;
use crate::keys::home;

/// The console's built-in commands and the client's transfer commands, for completion.
const BUILTINS: [&str; 7] = ["cd", "pwd", "whoami", "help", "exit", "put", "get"];

/// Connects and runs the REPL (or script mode); returns the exit code. `pty` is
/// [`PtyRequest::Never`] for `-T`.
pub fn run(
    runtime: &Runtime,
    dest: Destination,
    opts: &ConnectOptions,
    pty: PtyRequest,
) -> Result<u8, ClientError> {
    let connection = runtime.block_on(connect(dest, opts))?;
    let key_name = connection.key_name;
    let host = connection.destination.host.clone();
    let mut console = runtime.block_on(RemoteConsole::start(connection.channel))?;
    let result = if std::io::stdin().is_terminal() {
        let lines = if pty != PtyRequest::Never && std::io::stdout().is_terminal() {
            Lines::Pty(local_term_type())
        } else {
            Lines::Pipes
        };
        let session = Session {
            key_name: &key_name,
            host: &host,
            lines,
        };
        interactive(runtime, &mut console, &session)
    } else {
        script(runtime, &mut console, &host).map(Ending::Status)
    };
    match result {
        Ok(Ending::Status(code)) => {
            // A server that ended the session itself says so after the last status.
            runtime.block_on(console.finish())?;
            Ok(code)
        }
        Ok(Ending::Dropped) => {
            runtime.block_on(console.close());
            eprintln!("Connection to {host} closed.");
            Ok(DISCONNECTED_STATUS)
        }
        Err(err) => {
            runtime.block_on(console.close());
            Err(err)
        }
    }
}

/// How the REPL ended.
enum Ending {
    /// `exit`, Ctrl-D or the end of the script, with the last command's status.
    Status(u8),
    /// `~.`: the user dropped the connection.
    Dropped,
}

/// Reads lines from stdin and runs each; stops at EOF or `exit`.
fn script(runtime: &Runtime, console: &mut RemoteConsole, host: &str) -> Result<u8, ClientError> {
    let mut last = 0;
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(ClientError::Local)?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line == "exit" {
            break;
        }
        if let Some(transfer) = ReplTransfer::parse(line) {
            last = run_transfer(runtime, console, host, transfer, Interrupts::Default)?;
            continue;
        }
        let outcome =
            runtime.block_on(console.run(line, StdinSource::Closed, &mut Sink::Terminal, false))?;
        if let Outcome::Exited(status) = outcome {
            last = status.shell_code();
        }
    }
    Ok(last)
}

/// How the interactive REPL runs its lines.
enum Lines {
    /// On a remote pseudo-terminal of this `TERM`.
    Pty(String),
    /// On pipes, stdin closed.
    Pipes,
}

/// What the interactive REPL needs to know about its session.
struct Session<'a> {
    key_name: &'a str,
    host: &'a str,
    lines: Lines,
}

impl Session<'_> {
    /// Runs one command line as `lines` says.
    fn run_line(
        &self,
        runtime: &Runtime,
        console: &mut RemoteConsole,
        line: &str,
    ) -> Result<Outcome, ClientError> {
        match &self.lines {
            Lines::Pty(term) => {
                let command = PtyCommand {
                    line,
                    term: term.clone(),
                    keyboard: Keyboard::Terminal,
                    interrupt_on_pipes: true,
                };
                let outcome = runtime.block_on(console.run_pty(&command))?;
                if console.output_ends_mid_line() {
                    let mut stdout = std::io::stdout();
                    stdout
                        .write_all(b"\r\n")
                        .and_then(|()| stdout.flush())
                        .map_err(ClientError::Local)?;
                }
                Ok(outcome)
            }
            Lines::Pipes => {
                runtime.block_on(console.run(line, StdinSource::Closed, &mut Sink::Terminal, true))
            }
        }
    }
}

fn interactive(
    runtime: &Runtime,
    console: &mut RemoteConsole,
    session: &Session<'_>,
) -> Result<Ending, ClientError> {
    let (key_name, host) = (session.key_name, session.host);
    let mut editor: Editor<ConsoleCompleter, DefaultHistory> =
        Editor::new().map_err(|err| ClientError::Local(std::io::Error::other(err)))?;
    editor.set_helper(Some(ConsoleCompleter {
        files: FilenameCompleter::new(),
    }));
    let history = home::ensure_home().ok().map(|h| h.join("history"));
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    let mut last = 0;
    loop {
        let prompt = format!("{key_name}@{host}:{}$ ", shown(console.cwd()));
        let line = match editor.readline(&prompt) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(err) => return Err(ClientError::Local(std::io::Error::other(err))),
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let _ = editor.add_history_entry(line);
        if let Some(path) = &history {
            let _ = editor.save_history(path);
        }
        if line == "exit" {
            break;
        }
        if let Some(transfer) = ReplTransfer::parse(line) {
            last = run_transfer(runtime, console, host, transfer, Interrupts::Interrupt)?;
            continue;
        }
        match session.run_line(runtime, console, line)? {
            Outcome::Exited(status) => {
                console.ended_by_server()?;
                last = status.shell_code();
                if line == "help" {
                    println!("{CLIENT_HELP}");
                }
            }
            Outcome::GaveUp => {
                eprintln!("\nseashell: stopped waiting; the server will kill the command");
                last = 130;
            }
            Outcome::Disconnected => return Ok(Ending::Dropped),
        }
    }
    Ok(Ending::Status(last))
}

/// What the client adds to the server's `help`.
const CLIENT_HELP: &str = "\
File transfer (on this client):
  put [-r] [-p] [--resume] LOCAL [REMOTE]   copy a local file (-r: directory) to the server
  get [-r] [-p] [--resume] REMOTE [LOCAL]   copy a server file (-r: directory) here
  -p keeps mtimes; --resume continues a cut transfer; remote paths start at the cwd.";

/// Runs a `put`/`get` line; a usage error is status 1, like a failed command.
fn run_transfer(
    runtime: &Runtime,
    console: &mut RemoteConsole,
    host: &str,
    transfer: Result<ReplTransfer, String>,
    interrupts: Interrupts,
) -> Result<u8, ClientError> {
    match transfer {
        Ok(transfer) => runtime.block_on(transfer.run(console, host, interrupts)),
        Err(usage) => {
            eprintln!("seashell: {usage}");
            Ok(1)
        }
    }
}

/// Tab completion: the built-ins in the first word, local paths in the words of `put` and
/// `get` (the remote side cannot be listed without a round trip).
struct ConsoleCompleter {
    files: FilenameCompleter,
}

impl Completer for ConsoleCompleter {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let typed = line.get(..pos).unwrap_or(line);
        if typed.contains(char::is_whitespace) {
            let first = typed.split_whitespace().next();
            if matches!(first, Some("put" | "get")) {
                return self.files.complete_path(line, pos);
            }
            return Ok((pos, Vec::new()));
        }
        let matches = BUILTINS
            .iter()
            .filter(|b| b.starts_with(typed))
            .map(|b| Pair {
                display: (*b).to_owned(),
                replacement: format!("{b} "),
            })
            .collect();
        Ok((0, matches))
    }
}

impl Hinter for ConsoleCompleter {
    type Hint = String;
}
impl Highlighter for ConsoleCompleter {}
impl Validator for ConsoleCompleter {}
impl Helper for ConsoleCompleter {}
