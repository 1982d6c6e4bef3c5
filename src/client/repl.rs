//! `seashell connect DEST`: the remote console, line by line. On a terminal, a rustyline
//! REPL: the prompt shows the key name, host and remote cwd; history lives in
//! `$SEASHELL_HOME/history`; Tab completes built-ins, and local paths after `put`/`get`;
//! Ctrl-C interrupts the running remote command (a second one within 2 s stops waiting for
//! it) or transfer, or clears the line at the prompt; Ctrl-D or `exit` ends the session.
//! `put LOCAL [REMOTE]` and `get REMOTE [LOCAL]` (with `-r`, `-p`, `--resume`) move files,
//! remote paths relative to the session's cwd. When stdin is not a terminal, each line of
//! stdin runs in order (script mode) and the last command's status is the exit code.

use std::io::{BufRead, IsTerminal};

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
use super::console::{Outcome, RemoteConsole, Sink, StdinSource};
use super::dest::Destination;
use super::repl_transfer::ReplTransfer;
use super::transfer::Interrupts;
use crate::keys::home;

/// The console's built-in commands and the client's transfer commands, for completion.
const BUILTINS: [&str; 7] = ["cd", "pwd", "whoami", "help", "exit", "put", "get"];

/// Connects and runs the REPL (or script mode); returns the exit code.
pub fn run(runtime: &Runtime, dest: Destination, opts: &ConnectOptions) -> Result<u8, ClientError> {
    let connection = runtime.block_on(connect(dest, opts))?;
    let key_name = connection.key_name;
    let host = connection.destination.host.clone();
    let mut console = runtime.block_on(RemoteConsole::start(connection.channel))?;
    let result = if std::io::stdin().is_terminal() {
        interactive(runtime, &mut console, &key_name, &host)
    } else {
        script(runtime, &mut console, &host)
    };
    runtime.block_on(console.close());
    result
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

fn interactive(
    runtime: &Runtime,
    console: &mut RemoteConsole,
    key_name: &str,
    host: &str,
) -> Result<u8, ClientError> {
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
        let prompt = format!("{key_name}@{host}:{}$ ", console.cwd());
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
        match runtime.block_on(console.run(line, StdinSource::Closed, &mut Sink::Terminal, true))? {
            Outcome::Exited(status) => {
                last = status.shell_code();
                if line == "help" {
                    println!("{CLIENT_HELP}");
                }
            }
            Outcome::GaveUp => {
                eprintln!("\nseashell: stopped waiting; the server will kill the command");
                last = 130;
            }
        }
    }
    Ok(last)
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
