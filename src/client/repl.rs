//! `seashell connect DEST`: the remote console. The server runs the user's own login shell
//! once, then every line in that shell with its state carried from line to line (cwd,
//! variables, `$?`, aliases, functions, options), so the console behaves like a shell on
//! the other end, with local line editing. On a terminal, a rustyline REPL: the prompt is
//! `USER@HOST:CWD$ ` (`#` for root), its text escaped; a line the shell would read on (an
//! open quote, `if` without `fi`, a heredoc…) continues on a `> ` prompt and the whole
//! block is one command; output that does not end in a newline is never hidden by the
//! prompt (a reverse-video `%` marks it); history lives in `$SEASHELL_HOME/history`; Tab
//! completes commands and paths from the server, and local paths for `put`; Ctrl-C
//! interrupts the running command or transfer, or clears the line at the prompt; Ctrl-D
//! at an empty prompt ends the session, and so does `exit [N]`/`logout`, or any line whose
//! shell does not come back, with that status. The console's own words are `put`, `get`,
//! `:help` and `:session`; every other line is the shell's. `put LOCAL [REMOTE]` and `get
//! REMOTE [LOCAL]` (with `-r`, `-p`, `--resume`) move files, remote paths relative to the
//! shell's cwd. When stdin and stdout are terminals (and no `-T`), each line runs on a
//! remote pseudo-terminal: full-screen programs work, every key goes to the command while
//! it runs, `~.` drops the connection (exit 255). With `-T`, or stdout not a terminal,
//! lines run on pipes with stdin closed. When stdin is not a terminal, stdin is read as a
//! script (the same multi-line groups, the same state) on pipes, and the last command's
//! status is the exit code.

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
use super::complete;
use super::connect::{ConnectOptions, connect};
use super::console::{
    Ahead, ConsoleInfo, Keyboard, Outcome, PtyCommand, RemoteCompleter, RemoteConsole, Sink,
    StdinSource, open_message,
};
use super::dest::Destination;
use super::exec::DISCONNECTED_STATUS;
use super::multiline::is_incomplete;
use super::repl_transfer::ReplTransfer;
use super::terminal::{PtyRequest, local_term_type, window_size};
use super::transfer::Interrupts;
use crate::keys::home;
use crate::shown::shown;

/// The console's own words, offered by Tab in command position.
const CONSOLE_WORDS: [&str; 6] = ["put", "get", "exit", "logout", ":help", ":session"];

/// Marks output that did not end in a newline before the prompt (as zsh does).
const NO_NEWLINE_MARK: &str = "\u{1b}[7m%\u{1b}[0m";

/// Connects and runs the REPL (or script mode); returns the exit code. `pty` is
/// [`PtyRequest::Never`] for `-T`.
pub fn run(
    runtime: &Runtime,
    dest: Destination,
    opts: &ConnectOptions,
    pty: PtyRequest,
) -> Result<u8, ClientError> {
    let interactive_stdin = std::io::stdin().is_terminal();
    let lines = if interactive_stdin && pty != PtyRequest::Never && std::io::stdout().is_terminal()
    {
        Lines::Pty(local_term_type())
    } else {
        Lines::Pipes
    };
    let terminal = match &lines {
        Lines::Pty(term) => Some((term.clone(), window_size())),
        Lines::Pipes => None,
    };
    // OpenConsole goes with ClientAuth, saving the round trip after AuthOk.
    let ahead = open_message(terminal.clone());
    let connection = runtime.block_on(connect(dest, opts, Some(&ahead.as_message())))?;
    let fingerprint = connection.fingerprint.clone();
    let session_id = connection.session_id.clone();
    let host = connection.destination.host.clone();
    let ahead = Ahead {
        message: ahead,
        to_terminal: false,
    };
    let mut console = runtime.block_on(RemoteConsole::start(connection.channel, Some(ahead)))?;
    let info = match runtime.block_on(console.open(terminal)) {
        Ok(info) => info,
        Err(err) => {
            runtime.block_on(console.close());
            return Err(err);
        }
    };
    show_opening(&info);
    let session = Session {
        info,
        fingerprint,
        session_id,
        host: host.clone(),
        lines,
    };
    let result = if interactive_stdin {
        eprintln!("{}", session.greeting());
        interactive(runtime, &mut console, &session)
    } else {
        script(runtime, &mut console, &session).map(Ending::Status)
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

/// What the login shell printed (its own output, as a command's is), and why the console
/// starts from a plain state, if it does (server text: escaped).
fn show_opening(info: &ConsoleInfo) {
    let mut stdout = std::io::stdout();
    if !info.banner.is_empty() {
        let _ = stdout.write_all(&info.banner);
        if !info.banner.ends_with(b"\n") {
            let _ = stdout.write_all(b"\n");
        }
        let _ = stdout.flush();
    }
    if !info.warning.is_empty() {
        eprintln!("{}", shown(&info.warning));
    }
}

/// How the REPL ended.
enum Ending {
    /// `exit`, Ctrl-D or the end of the script, with the last command's status.
    Status(u8),
    /// `~.`: the user dropped the connection.
    Dropped,
}

/// Reads stdin as a script: each complete command (a multi-line group as one) runs in
/// order; stops at EOF or when the session ends (`exit`).
fn script(
    runtime: &Runtime,
    console: &mut RemoteConsole,
    session: &Session,
) -> Result<u8, ClientError> {
    let mut last = 0;
    let mut block = String::new();
    let mut stdin = std::io::stdin().lock();
    loop {
        let mut line = String::new();
        let read = stdin.read_line(&mut line).map_err(ClientError::Local)?;
        if read == 0 {
            if block.trim().is_empty() {
                break;
            }
        } else {
            let line = line.strip_suffix('\n').unwrap_or(&line);
            if block.is_empty() {
                block.push_str(line);
            } else {
                block.push('\n');
                block.push_str(line);
            }
            if is_incomplete(&block) {
                continue;
            }
        }
        let text = std::mem::take(&mut block);
        match session.run_block(runtime, console, text.trim(), Interrupts::Default)? {
            Step::Ran(status) => last = status,
            Step::Skipped => {}
            Step::Ended(status) => return Ok(status),
            Step::Dropped => return Ok(DISCONNECTED_STATUS),
        }
        if read == 0 {
            break;
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

/// What the REPL knows of its session.
struct Session {
    info: ConsoleInfo,
    fingerprint: String,
    session_id: String,
    host: String,
    lines: Lines,
}

/// What one block did.
enum Step {
    /// It ran (or was a console word) with this status.
    Ran(u8),
    /// Nothing to run (empty, a comment).
    Skipped,
    /// The session is over, with this status.
    Ended(u8),
    /// `~.`: the user dropped the connection.
    Dropped,
}

impl Session {
    /// `USER@HOST:CWD$ `, with the home as `~` and `#` for root; the server's text escaped.
    fn prompt(&self, cwd: &str) -> String {
        let home = self.info.home.trim_end_matches('/');
        let cwd = match cwd.strip_prefix(home) {
            Some(rest) if !home.is_empty() && (rest.is_empty() || rest.starts_with('/')) => {
                format!("~{rest}")
            }
            _ => cwd.to_owned(),
        };
        let sign = if self.info.superuser { '#' } else { '$' };
        format!(
            "{}@{}:{}{sign} ",
            shown(&self.info.user),
            shown(&self.info.host),
            shown(&cwd)
        )
    }

    /// One line, shown once after connecting: where we are, as whom, and where help is.
    fn greeting(&self) -> String {
        let restricted = if self.info.restricted {
            " (restricted key: only its allowed commands)"
        } else {
            ""
        };
        format!(
            "seashell: {}@{} with key {:?}{restricted}, session {}; :help lists the console's commands",
            shown(&self.info.user),
            shown(&self.info.host),
            shown(&self.info.key_name),
            self.session_id.get(..16).unwrap_or(&self.session_id),
        )
    }

    /// `:session`: who we are to the server, and how.
    fn describe(&self) -> String {
        let shell = if self.info.restricted {
            "none: a restricted key runs only its allowed commands, in its home"
        } else {
            "the server user's own, its state carried from line to line"
        };
        format!(
            "server:   {} ({})\nuser:     {}\nkey:      {:?} {}\nsession:  {}\nshell:    {shell}",
            self.host,
            shown(&self.info.host),
            shown(&self.info.user),
            shown(&self.info.key_name),
            self.fingerprint,
            self.session_id,
        )
    }

    /// Runs one block: a console word, a transfer, or a command for the shell.
    fn run_block(
        &self,
        runtime: &Runtime,
        console: &mut RemoteConsole,
        block: &str,
        interrupts: Interrupts,
    ) -> Result<Step, ClientError> {
        if block.is_empty() || (block.starts_with('#') && !block.contains('\n')) {
            return Ok(Step::Skipped);
        }
        match block {
            ":help" => {
                println!("{}", console_help(self.info.restricted));
                return Ok(Step::Ran(0));
            }
            ":session" => {
                println!("{}", self.describe());
                return Ok(Step::Ran(0));
            }
            _ => {}
        }
        if let Some(word) = block.strip_prefix(':')
            && !word.contains(char::is_whitespace)
        {
            eprintln!("seashell: :{word}: no such console command (:help lists them)");
            return Ok(Step::Ran(127));
        }
        if let Some(transfer) = ReplTransfer::parse(block) {
            let status = run_transfer(runtime, console, &self.host, transfer, interrupts)?;
            if std::io::stderr().is_terminal() {
                // The bars (and a failure shown above them) leave the cursor after their
                // last line: end it, so the prompt does not draw over it.
                eprintln!();
            }
            return Ok(Step::Ran(status));
        }
        match self.run_line(runtime, console, block)? {
            Outcome::Exited(status) => {
                let code = status.shell_code();
                if console.is_over() {
                    return Ok(Step::Ended(code));
                }
                console.ended_by_server()?;
                Ok(Step::Ran(code))
            }
            Outcome::GaveUp => {
                eprintln!("\nseashell: stopped waiting; the server will kill the command");
                Ok(Step::Ran(130))
            }
            Outcome::Disconnected => Ok(Step::Dropped),
        }
    }

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
                runtime.block_on(console.run_pty(&command))
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
    session: &Session,
) -> Result<Ending, ClientError> {
    let mut editor: Editor<ConsoleCompleter, DefaultHistory> =
        Editor::new().map_err(|err| ClientError::Local(std::io::Error::other(err)))?;
    editor.set_helper(Some(ConsoleCompleter {
        files: FilenameCompleter::new(),
        remote: console.completer(runtime.handle().clone()),
    }));
    let history = home::ensure_home().ok().map(|h| h.join("history"));
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    let mut last = 0;
    loop {
        end_output_line(console)?;
        let Some(block) = read_block(&mut editor, &session.prompt(console.cwd()))? else {
            break;
        };
        let block = block.trim();
        if block.is_empty() {
            continue;
        }
        let _ = editor.add_history_entry(block);
        if let Some(path) = &history {
            let _ = editor.save_history(path);
        }
        match session.run_block(runtime, console, block, Interrupts::Interrupt) {
            Ok(Step::Ran(status)) => last = status,
            Ok(Step::Skipped) => {}
            Ok(Step::Ended(status)) => {
                end_output_line(console)?;
                return Ok(Ending::Status(status));
            }
            Ok(Step::Dropped) => return Ok(Ending::Dropped),
            Err(err) => return Err(err),
        }
    }
    Ok(Ending::Status(last))
}

/// Before the prompt: output that did not end in a newline is marked and its line ended,
/// so the prompt never draws over it.
fn end_output_line(console: &RemoteConsole) -> Result<(), ClientError> {
    if console.output_ends_mid_line() {
        let mut stdout = std::io::stdout();
        write!(stdout, "{NO_NEWLINE_MARK}\r\n")
            .and_then(|()| stdout.flush())
            .map_err(ClientError::Local)?;
    }
    Ok(())
}

/// One command as the shell would read it: a line, and more on `> ` while the shell would
/// read on. None at Ctrl-D on an empty prompt; Ctrl-C drops what was typed.
fn read_block(
    editor: &mut Editor<ConsoleCompleter, DefaultHistory>,
    prompt: &str,
) -> Result<Option<String>, ClientError> {
    let mut block = String::new();
    loop {
        let shown_prompt = if block.is_empty() { prompt } else { "> " };
        match editor.readline(shown_prompt) {
            Ok(line) => {
                if block.is_empty() {
                    block = line;
                } else {
                    block.push('\n');
                    block.push_str(&line);
                }
                if !is_incomplete(&block) {
                    return Ok(Some(block));
                }
            }
            Err(ReadlineError::Interrupted) => block.clear(),
            Err(ReadlineError::Eof) if block.is_empty() => return Ok(None),
            // Ctrl-D inside a block: the shell gets what there is (and says what is missing).
            Err(ReadlineError::Eof) => return Ok(Some(block)),
            Err(err) => return Err(ClientError::Local(std::io::Error::other(err))),
        }
    }
}

/// `:help`: the console's own words, keys and escapes.
fn console_help(restricted: bool) -> String {
    let lines = if restricted {
        "This key is restricted: a line runs only if it matches one of its allow= patterns or\n\
         is one of its command= names, split into words and run directly, never by a shell,\n\
         always in its home directory."
    } else {
        "Every other line runs in the server user's shell, which keeps its state from line to\n\
         line (cwd, variables, $?, aliases, functions, options), as a shell on the other end\n\
         would; a block the shell would read on (an open quote, if…fi, a heredoc) continues\n\
         on a `> ` prompt and runs as one command."
    };
    format!(
        "The console's own commands:\n\
         \x20 put [-r] [-p] [--resume] LOCAL [REMOTE]   copy a local file (-r: directory) to the server\n\
         \x20 get [-r] [-p] [--resume] REMOTE [LOCAL]   copy a server file (-r: directory) here\n\
         \x20 :session                                  the key, its fingerprint and the session id\n\
         \x20 :help                                     this text\n\
         \x20 exit [N], logout, Ctrl-D                  end the session (with status N)\n\
         -p keeps mtimes; --resume continues a cut transfer; remote paths start at the cwd.\n\
         Keys: Tab completes from the server; Ctrl-C interrupts the command (twice: stop waiting);\n\
         while a command runs on a terminal, ~. drops the connection, ~? lists the escapes.\n\
         {lines}"
    )
}

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

/// Tab completion: commands and paths from the server (its PATH, builtins and files,
/// relative to the shell's cwd; a restricted key's allowed words only), the console's own
/// words in command position, and local paths for `put`.
struct ConsoleCompleter {
    files: FilenameCompleter,
    remote: Option<RemoteCompleter>,
}

impl Completer for ConsoleCompleter {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let typed = line.get(..pos).unwrap_or(line);
        if typed.starts_with("put ") {
            return self.files.complete(line, pos, ctx);
        }
        let word = complete::word_at(line, pos);
        let first = typed
            .get(..word.start)
            .is_some_and(|before| before.trim().is_empty());
        let mut names: Vec<String> = Vec::new();
        if first {
            names.extend(
                CONSOLE_WORDS
                    .iter()
                    .filter(|w| w.starts_with(word.text.as_str()))
                    .map(|w| (*w).to_owned()),
            );
        }
        if let Some(remote) = &self.remote
            && !word.text.starts_with(':')
        {
            names.extend(remote.complete(&word.text, word.command));
        }
        names.sort();
        names.dedup();
        let pairs = names
            .iter()
            .map(|name| Pair {
                display: complete::display(name),
                replacement: complete::replacement(&word, name),
            })
            .collect();
        Ok((word.start, pairs))
    }
}

impl Hinter for ConsoleCompleter {
    type Hint = String;
}
impl Highlighter for ConsoleCompleter {}
impl Validator for ConsoleCompleter {}
impl Helper for ConsoleCompleter {}
