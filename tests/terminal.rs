//! Terminals end to end: the real `seashell connect` and `seashell exec -t` run in a real
//! pseudo-terminal on the client side (rexpect) against the real `seashell serve` on
//! 127.0.0.1, whose commands run on pseudo-terminals of their own. What a user at a terminal
//! sees: `tty`, sizes and resizes, programs that read keys (python3, `read </dev/tty`, vi,
//! top), Ctrl-C as the remote terminal's, ssh's escapes, and our terminal's mode given back
//! exactly on every way out; `exec -t`/`-tt`/`-T`; a `no-pty` key; and a server that closes
//! or hangs up in the middle.

use std::fs;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::sys::termios::{LocalFlags, OutputFlags, tcgetattr};
use nix::unistd::Pid;
use rexpect::session::{Options, PtySession, ReadUntil, spawn_with_options};
use seashell::client::ClientError;
use seashell::client::console::RemoteConsole;
use seashell::proto::{Message, UpdateLimits};
use seashell::transport::{self, SecureChannel};

use crate::common::{
    HOST_FP, RUN_DEADLINE, SEASHELL, Sandbox, Server, TEST_USER, client_of, pub_line, run_to_end,
    wait_for,
};
use crate::proto::client_key;

/// The size the client's terminal has when a test starts.
const ROWS: u16 = 33;
const COLS: u16 = 101;

/// ssh's words when `-t` meets a stdin that is not a terminal.
const NO_TERMINAL: &str = "Pseudo-terminal will not be allocated because stdin is not a terminal.";

/// What the client says once when the server runs a pty command on pipes.
const PTY_REFUSED: &str = "seashell: PTY allocation request failed: the server runs this key's commands without a terminal";

fn options() -> Options {
    Options::new()
        .timeout_ms(Some(RUN_DEADLINE.as_millis() as u64 / 2))
        .strip_ansi_escape_codes(true)
}

/// Runs `command` in a new pseudo-terminal of [`ROWS`] x [`COLS`].
pub(crate) fn in_pty(command: Command) -> PtySession {
    let session = spawn_with_options(command, options()).unwrap();
    resize(&session, ROWS, COLS);
    session
}

/// Sets the size of the session's terminal; the kernel sends SIGWINCH to its foreground.
pub(crate) fn resize(session: &PtySession, rows: u16, cols: u16) {
    let master = session.process().get_file_handle().unwrap();
    let size = rustix::termios::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(&master, size).unwrap();
}

/// Waits until the session's terminal is in canonical (cooked) mode: the line editor has
/// given it back, and a command on pipes reads what is typed now line by line.
fn wait_until_cooked(session: &PtySession) {
    let master = session.process().get_file_handle().unwrap();
    wait_for("our terminal in cooked mode", RUN_DEADLINE, || {
        tcgetattr(&master)
            .unwrap()
            .local_flags
            .contains(LocalFlags::ICANON)
    });
}

/// Types `keys` as they are (no newline added).
pub(crate) fn type_keys(session: &mut PtySession, keys: &str) {
    session.send(keys).unwrap();
    session.flush().unwrap();
}

/// Types `line` and Enter (CR, as a terminal sends it).
pub(crate) fn type_line(session: &mut PtySession, line: &str) {
    type_keys(session, &format!("{line}\r"));
}

/// The REPL's prompt for the test client at `server` in `cwd`.
fn prompt(server: &Server, cwd: &str) -> String {
    server.prompt(cwd)
}

/// A REPL (`connect FLAGS`) of a fresh client of `server`, at its first prompt: the client
/// sandbox (keep it while the REPL runs), the session, and the prompt at home.
pub(crate) fn repl_of(server: &Server, flags: &[&str]) -> (Sandbox, PtySession, String) {
    let client = client_of(server, "client_rsa");
    let mut command = client.command(["connect"]);
    command.args(flags).arg(server.dest()).env("TERM", "xterm");
    let mut repl = in_pty(command);
    let home = prompt(server, &server.home().display().to_string());
    repl.exp_string(&home).unwrap();
    (client, repl, home)
}

/// [`repl_of`] the shared server, lines on pseudo-terminals.
pub(crate) fn repl() -> (Sandbox, PtySession, String) {
    repl_of(Server::shared(), &[])
}

/// Ends a REPL with `exit` and checks that it exits (with the last line's status).
pub(crate) fn exit_repl(mut repl: PtySession) {
    type_line(&mut repl, "exit");
    repl.exp_eof().unwrap();
    let status = repl.process().wait().unwrap();
    assert!(
        matches!(status, rexpect::process::WaitStatus::Exited(..)),
        "{status:?}"
    );
}

/// Waits until the client has put the session's terminal in raw mode (cfmakeraw: no output
/// processing, unlike the line editor's mode), i.e. a command runs on a remote terminal and
/// what is typed now goes to it. Keys typed before may be read ahead by the line editor.
fn wait_until_raw(session: &PtySession) {
    let master = session.process().get_file_handle().unwrap();
    wait_for("our terminal in raw mode", RUN_DEADLINE, || {
        !tcgetattr(&master)
            .unwrap()
            .output_flags
            .contains(OutputFlags::OPOST)
    });
}

/// `sh -c SCRIPT` in a pseudo-terminal, in `client`'s sandbox, with `$SEASHELL` the binary.
fn shell_in_pty(client: &Sandbox, script: &str) -> PtySession {
    let mut command = Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(script)
        .current_dir(client.path())
        .env("SEASHELL", SEASHELL)
        .env("SEASHELL_HOME", client.home())
        .env("HOME", client.path())
        .env("USER", TEST_USER)
        .env("TERM", "xterm")
        .env_remove("SEASHELL_PASSPHRASE");
    in_pty(command)
}

/// A line of `stty -g` (the terminal's whole mode) in the output: waits for it.
fn stty_g(session: &mut PtySession) -> String {
    let (_, mode) = session.exp_regex(r"[0-9a-f]+(:[0-9a-f]+){16,}").unwrap();
    mode
}

/// The first program of `names` that is on the PATH, or a note that the test is skipped.
fn installed(names: &[&'static str]) -> Option<&'static str> {
    let found = names.iter().copied().find(|name| {
        Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("command -v {name} >/dev/null"))
            .status()
            .is_ok_and(|s| s.success())
    });
    if found.is_none() {
        eprintln!(
            "note: skipped, none of {names:?} is installed (.ci/run installs vim-tiny and procps)"
        );
    }
    found
}

// ---------------------------------------------------------------------------------------------
// The REPL on a terminal

#[test]
fn a_repl_line_runs_on_a_terminal_of_the_clients_size() {
    let (_client, mut repl, home) = repl();
    type_line(&mut repl, "tty");
    repl.exp_regex(r"/dev/pts/[0-9]+\r\n").unwrap();
    repl.exp_string(&home).unwrap();

    type_line(&mut repl, "stty size");
    repl.exp_string(&format!("{ROWS} {COLS}\r\n")).unwrap();
    repl.exp_string(&home).unwrap();

    // y""es: the line as typed does not hold the answer.
    type_line(&mut repl, "test -t 0 && test -t 1 && echo y\"\"es");
    repl.exp_string("yes\r\n").unwrap();
    repl.exp_string(&home).unwrap();
    exit_repl(repl);
}

#[test]
fn a_resize_reaches_the_running_command_and_the_next_line() {
    let (_client, mut repl, home) = repl();
    // The remote shell prints its terminal's size whenever that terminal is resized.
    type_line(
        &mut repl,
        "trap 'stty size' WINCH; echo re\"\"ady; while :; do sleep 0.1; done",
    );
    repl.exp_string("ready\r\n").unwrap();
    resize(&repl, 50, 132);
    repl.exp_string("50 132\r\n").unwrap();
    type_keys(&mut repl, "\x03");
    repl.exp_string(&home).unwrap();

    resize(&repl, 24, 80);
    type_line(&mut repl, "stty size");
    repl.exp_string("24 80\r\n").unwrap();
    repl.exp_string(&home).unwrap();
    exit_repl(repl);
}

#[test]
fn python3_reads_the_keys_typed_into_it() {
    let (_client, mut repl, home) = repl();
    type_line(&mut repl, "python3 -c 'print(\"got:\" + input())'");
    wait_until_raw(&repl);
    type_line(&mut repl, "typed words");
    repl.exp_string("got:typed words\r\n").unwrap();
    repl.exp_string(&home).unwrap();
    exit_repl(repl);
}

#[test]
fn ctrl_c_in_python3_raises_keyboard_interrupt_and_python3_goes_on() {
    let (_client, mut repl, home) = repl();
    type_line(&mut repl, "python3 -q");
    repl.exp_string(">>> ").unwrap();
    type_line(
        &mut repl,
        "import time; print('sle' + 'eping'); time.sleep(60)",
    );
    repl.exp_string("sleeping\r\n").unwrap();
    type_keys(&mut repl, "\x03");
    repl.exp_string("KeyboardInterrupt").unwrap();
    repl.exp_string(">>> ").unwrap();
    type_line(&mut repl, "print(6 * 7)");
    repl.exp_string("42\r\n").unwrap();
    // Ctrl-D at python's prompt: its end of input, and the line ends.
    type_keys(&mut repl, "\x04");
    repl.exp_string(&home).unwrap();
    exit_repl(repl);
}

#[test]
fn a_program_that_opens_dev_tty_reads_the_typed_line() {
    let (_client, mut repl, home) = repl();
    type_line(&mut repl, "sh -c 'read x </dev/tty; echo got:$x'");
    wait_until_raw(&repl);
    type_line(&mut repl, "via the terminal");
    repl.exp_string("got:via the terminal\r\n").unwrap();
    repl.exp_string(&home).unwrap();
    exit_repl(repl);
}

#[test]
fn vi_edits_a_file_and_wq_saves_it() {
    let Some(vi) = installed(&["vim.tiny", "vi"]) else {
        return;
    };
    let server = Server::shared();
    let name = format!("vi-edit-{}.txt", rand::random::<u32>());
    let (_client, mut repl, home) = repl();
    type_line(&mut repl, &format!("{vi} {name}"));
    // vi's status line names the new file, in quotes, once it is ready for keys.
    repl.exp_string(&format!("\"{name}\"")).unwrap();
    type_keys(&mut repl, "ihello from vi\x1b");
    type_line(&mut repl, ":wq");
    repl.exp_string(&home).unwrap();
    let saved = server.home().join(&name);
    assert_eq!(fs::read_to_string(&saved).unwrap(), "hello from vi\n");
    fs::remove_file(saved).unwrap();
    exit_repl(repl);
}

#[test]
fn top_prints_once_in_batch_mode_and_quits_on_q() {
    if installed(&["top"]).is_none() {
        return;
    }
    let (_client, mut repl, home) = repl();
    type_line(&mut repl, "top -b -n 1 | head -n 12");
    repl.exp_string("PID").unwrap();
    repl.exp_string(&home).unwrap();

    type_line(&mut repl, "top");
    repl.exp_string("load average").unwrap();
    type_keys(&mut repl, "q");
    repl.exp_string(&home).unwrap();
    exit_repl(repl);
}

#[test]
fn the_prompt_comes_back_on_a_fresh_line_after_output_without_a_newline() {
    let (_client, mut repl, home) = repl();
    type_line(&mut repl, "printf no-new\"\"line");
    repl.exp_string("no-newline").unwrap();
    let between = repl.exp_string(&home).unwrap();
    // Marked as zsh marks it (a reverse-video `%`, its escapes stripped here), then a new line.
    assert!(between.starts_with("%\r"), "{between:?}");
    exit_repl(repl);
}

#[test]
fn tilde_dot_ends_a_session_stuck_in_cat_with_255_and_our_terminal_as_it_was() {
    let server = Server::shared();
    let client = client_of(server, "client_rsa");
    let mut shell = shell_in_pty(
        &client,
        &format!(
            "stty -g; \"$SEASHELL\" connect {}; echo status=$?; stty -g",
            server.dest()
        ),
    );
    let before = stty_g(&mut shell);
    shell
        .exp_string(&prompt(server, &server.home().display().to_string()))
        .unwrap();
    type_line(&mut shell, "cat");
    wait_until_raw(&shell);
    type_line(&mut shell, "abc");
    // The remote terminal's echo, then cat's copy: keys reach cat while it runs.
    shell.exp_string("abc\r\nabc\r\n").unwrap();
    type_keys(&mut shell, "~?");
    shell.exp_string("Supported escape sequences").unwrap();
    shell.exp_string("~.").unwrap();
    type_keys(&mut shell, "~.");
    shell.exp_string("Connection to 127.0.0.1 closed.").unwrap();
    shell.exp_string("status=255").unwrap();
    let after = stty_g(&mut shell);
    assert_eq!(after, before, "the terminal's mode after ~.");
    shell.exp_eof().unwrap();
}

#[test]
fn ctrl_backslash_is_the_remote_terminals_quit_not_ours() {
    let (_client, mut repl, home) = repl();
    type_line(&mut repl, "cat");
    wait_until_raw(&repl);
    // cat is running once it echoes a line (a key typed before it runs could reach a
    // terminal with no foreground process yet, and signal nobody).
    type_line(&mut repl, "abc");
    repl.exp_string("abc\r\nabc\r\n").unwrap();
    // SIGQUIT for cat, from the remote terminal; we, the client, go on.
    type_keys(&mut repl, "\x1c");
    repl.exp_string(&home).unwrap();
    type_line(&mut repl, "echo st\"\"ill-here");
    repl.exp_string("still-here\r\n").unwrap();
    exit_repl(repl);
}

#[test]
fn a_tilde_inside_a_line_is_sent_to_the_command() {
    let (_client, mut repl, home) = repl();
    type_line(&mut repl, "cat");
    wait_until_raw(&repl);
    // Not after Enter: a plain `~.`; `~~` at the start of a line is one `~`.
    type_line(&mut repl, "a~.b");
    repl.exp_string("a~.b\r\na~.b\r\n").unwrap();
    type_line(&mut repl, "~~x");
    repl.exp_string("~x\r\n~x\r\n").unwrap();
    // Ctrl-D at the start of a line: cat's end of input.
    type_keys(&mut repl, "\x04");
    repl.exp_string(&home).unwrap();
    exit_repl(repl);
}

#[test]
fn sigterm_sighup_and_sigquit_while_raw_restore_our_terminal_and_exit_128_plus_n() {
    let server = Server::shared();
    let client = client_of(server, "client_rsa");
    for signal in [Signal::SIGTERM, Signal::SIGHUP, Signal::SIGQUIT] {
        // The inner shell prints its pid and becomes seashell (exec), in the foreground.
        let mut shell = shell_in_pty(
            &client,
            &format!(
                "stty -g; sh -c 'echo pid=$$; exec \"$SEASHELL\" exec -t {} -- cat'; \
                 echo status=$?; stty -g",
                server.dest()
            ),
        );
        let before = stty_g(&mut shell);
        let (_, pid) = shell.exp_regex("pid=[0-9]+").unwrap();
        let pid: i32 = pid.trim_start_matches("pid=").parse().unwrap();
        wait_until_raw(&shell);
        type_line(&mut shell, "abc");
        shell.exp_string("abc\r\nabc\r\n").unwrap();
        kill(Pid::from_raw(pid), signal).unwrap();
        shell
            .exp_string(&format!("status={}", 128 + signal as i32))
            .unwrap();
        assert_eq!(stty_g(&mut shell), before, "the mode after {signal}");
        shell.exp_eof().unwrap();
    }
}

#[test]
fn connect_t_uppercase_runs_lines_on_pipes() {
    let (_client, mut repl, home) = repl_of(Server::shared(), &["-T"]);
    type_line(&mut repl, "tty");
    repl.exp_string("not a tty\r\n").unwrap();
    repl.exp_string(&home).unwrap();
    exit_repl(repl);
}

#[test]
fn script_mode_never_asks_for_a_terminal() {
    let server = Server::shared();
    let run = client_of(server, "client_rsa").run(["connect", &server.dest()], b"tty\n");
    assert_eq!(run.stdout_text(), "not a tty\n");
    assert_eq!(run.failed_with(1), "");
}

// ---------------------------------------------------------------------------------------------
// exec -t, -tt, -T

#[test]
fn exec_t_runs_on_a_terminal_when_stdin_is_one() {
    let server = Server::shared();
    let client = client_of(server, "client_rsa");
    let mut command = client.command(["exec", "-t", &server.dest(), "--", "tty; stty size"]);
    command.env("TERM", "xterm");
    let mut exec = in_pty(command);
    exec.exp_regex(r"/dev/pts/[0-9]+\r\n").unwrap();
    exec.exp_string(&format!("{ROWS} {COLS}\r\n")).unwrap();
    exec.exp_eof().unwrap();
    let status = exec.process().wait().unwrap();
    assert!(
        matches!(status, rexpect::process::WaitStatus::Exited(_, 0)),
        "{status:?}"
    );
}

#[test]
fn exec_without_t_runs_on_pipes_even_from_a_terminal() {
    let server = Server::shared();
    let client = client_of(server, "client_rsa");
    let mut exec = in_pty(client.command(["exec", &server.dest(), "--", "tty"]));
    exec.exp_string("not a tty").unwrap();
    exec.exp_eof().unwrap();
    let status = exec.process().wait().unwrap();
    assert!(
        matches!(status, rexpect::process::WaitStatus::Exited(_, 1)),
        "{status:?}"
    );
}

#[test]
fn exec_t_without_a_terminal_says_so_and_runs_on_pipes() {
    let server = Server::shared();
    let client = client_of(server, "client_rsa");
    let run = client.run(["exec", "-t", &server.dest(), "--", "tty"], b"");
    assert_eq!(run.stdout_text(), "not a tty\n");
    assert_eq!(run.failed_with(1), format!("{NO_TERMINAL}\n"));

    let run = client.exec(server, &["tty"], b"");
    assert_eq!(run.stdout_text(), "not a tty\n");
    assert_eq!(run.failed_with(1), "", "plain exec says nothing");
}

#[test]
fn exec_tt_forces_a_terminal_and_forwards_stdin_to_its_end() {
    let server = Server::shared();
    let client = client_of(server, "client_rsa");
    let run = client.run(["exec", "-tt", &server.dest(), "--", "tty; stty size"], b"");
    let out = run.ok();
    assert!(out.starts_with("/dev/pts/"), "{out:?}");
    // Neither our stdin nor our stdout is a terminal: the size is unknown.
    assert!(out.ends_with("\r\n0 0\r\n"), "{out:?}");

    // Stdin is forwarded as it comes (the remote terminal echoes it, and cat copies it), and
    // its end is the terminal's Ctrl-D, which ends cat.
    let run = client.run(["exec", "-tt", &server.dest(), "--", "cat"], b"one\ntwo\n");
    let out = run.ok();
    let mut lines: Vec<&str> = out.split_terminator("\r\n").collect();
    lines.sort_unstable();
    assert_eq!(lines, ["one", "one", "two", "two"], "{out:?}");
}

#[test]
fn exec_t_and_t_uppercase_together_are_a_usage_error() {
    let server = Server::shared();
    let client = client_of(server, "client_rsa");
    let run = client.run(["exec", "-t", "-T", &server.dest(), "--", "true"], b"");
    assert!(
        run.failed_with(1).contains("cannot be used with"),
        "{run:?}"
    );
    let run = client.run(["exec", "--json", "-t", &server.dest(), "--", "true"], b"");
    assert!(
        run.failed_with(1).contains("cannot be used with"),
        "{run:?}"
    );
    client
        .run(["exec", "-T", &server.dest(), "--", "true"], b"")
        .ok();
}

// ---------------------------------------------------------------------------------------------
// A key that may not have a terminal

/// A server whose only key, `client_rsa`, has `no-pty`.
fn no_pty_server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        Server::start(
            &Sandbox::new(),
            &[],
            &format!("no-pty {}", pub_line("client_rsa")),
        )
    })
}

#[test]
fn a_no_pty_key_is_told_once_and_its_lines_run_on_pipes_with_stdin_and_ctrl_c() {
    let server = no_pty_server();
    let (_client, mut repl, home) = repl_of(server, &[]);
    type_line(&mut repl, "tty");
    repl.exp_string(PTY_REFUSED).unwrap();
    let shown = repl.exp_string(&home).unwrap();
    assert!(shown.contains("not a tty"), "{shown:?}");
    // Raw mode was left: the prompt's line editor has the terminal again.

    // Stdin is still forwarded, line by line (cooked), and the notice is not repeated.
    type_line(&mut repl, "read x; echo got:$x");
    wait_until_cooked(&repl);
    type_line(&mut repl, "cooked line");
    let shown = repl.exp_string("got:cooked line").unwrap();
    assert!(!shown.contains("PTY allocation"), "{shown:?}");
    repl.exp_string(&home).unwrap();

    // Ctrl-C is ours again: an Interrupt for the command.
    type_line(
        &mut repl,
        "echo sle\"\"eping; sleep 60; echo not-interrupted",
    );
    repl.exp_string("sleeping").unwrap();
    type_keys(&mut repl, "\x03");
    let shown = repl.exp_string(&home).unwrap();
    assert!(!shown.contains("not-interrupted"), "{shown:?}");
    exit_repl(repl);
}

#[test]
fn exec_t_with_a_no_pty_key_says_so_and_keeps_stdout_and_stderr_apart() {
    let server = no_pty_server();
    let client = client_of(server, "client_rsa");
    let mut exec = in_pty(client.command(["exec", "-t", &server.dest(), "--", "tty; exit 3"]));
    // Said before the command's output, which comes on pipes.
    exec.exp_string(PTY_REFUSED).unwrap();
    exec.exp_string("not a tty").unwrap();
    exec.exp_eof().unwrap();
    let status = exec.process().wait().unwrap();
    assert!(
        matches!(status, rexpect::process::WaitStatus::Exited(_, 3)),
        "{status:?}"
    );
    let run = client.run(
        [
            "exec",
            "-tt",
            &server.dest(),
            "--",
            "echo out; echo err >&2",
        ],
        b"",
    );
    assert_eq!(run.ok(), "out\n");
    assert_eq!(run.stderr, format!("{PTY_REFUSED}\nerr\n"));
}

// ---------------------------------------------------------------------------------------------
// A server that closes or vanishes mid-command

/// A TCP proxy for one connection to `server`. With `flip`, it flips a bit in the body of
/// the client's record number `flip` (0 is the ClientHello); [`Self::cut`] closes both sides.
struct Proxy {
    addr: SocketAddr,
    sockets: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(server: SocketAddr, flip: Option<usize>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let sockets = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&sockets);
        thread::spawn(move || {
            let (client, _) = listener.accept().unwrap();
            let upstream = TcpStream::connect(server).unwrap();
            kept.lock()
                .unwrap()
                .extend([client.try_clone().unwrap(), upstream.try_clone().unwrap()]);
            let (mut down_from, mut down_to) =
                (upstream.try_clone().unwrap(), client.try_clone().unwrap());
            thread::spawn(move || {
                let _ = std::io::copy(&mut down_from, &mut down_to);
                let _ = down_to.shutdown(std::net::Shutdown::Both);
            });
            forward_records(client, upstream, flip);
        });
        Self { addr, sockets }
    }

    /// Cuts both connections, as a network that fails does.
    fn cut(&self) {
        for socket in self.sockets.lock().unwrap().iter() {
            let _ = socket.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// Copies the client's records to the server one by one, flipping a bit in record `flip`.
fn forward_records(mut from: TcpStream, mut to: TcpStream, flip: Option<usize>) {
    for index in 0.. {
        let mut header = [0u8; 4];
        if from.read_exact(&mut header).is_err() {
            break;
        }
        let mut body = vec![0u8; u32::from_be_bytes(header) as usize];
        if from.read_exact(&mut body).is_err() {
            break;
        }
        if flip == Some(index) {
            let middle = body.len() / 2;
            body[middle] ^= 0x10;
        }
        if to.write_all(&header).is_err() || to.write_all(&body).is_err() {
            break;
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
}

/// `seashell exec FLAGS PROXY -- LINE` (the host key pinned by fingerprint).
fn exec_through(client: &Sandbox, proxy: &Proxy, flags: &[&str], line: &str) -> Command {
    let mut command = client.command(["exec", "--host-fingerprint", HOST_FP]);
    command
        .args(flags)
        .arg(proxy.addr.to_string())
        .args(["--", line]);
    command
}

#[test]
fn a_close_with_a_reason_mid_command_ends_the_client_with_255_and_that_reason() {
    let server = Server::shared();
    let client = client_of(server, "client_rsa");
    for flags in [&[][..], &["-tt"][..]] {
        // Records 0-3: ClientHello, KeyTransport, ClientAuth, Exec; 4 is the first Stdin.
        let proxy = Proxy::start(server.addr(), Some(4));
        let run = run_to_end(
            exec_through(&client, &proxy, flags, "cat; echo NOT-AN-EXIT"),
            b"tampered\n",
        );
        let stderr = run.failed_with(255);
        assert!(
            stderr.contains("server closed the session: protocol error"),
            "{flags:?}: {stderr}"
        );
        assert!(!run.stdout_text().contains("NOT-AN-EXIT"), "{run:?}");
    }
}

#[test]
fn a_close_with_a_reason_mid_command_ends_the_repl_with_255_and_that_reason() {
    let server = Server::shared();
    let client = client_of(server, "client_rsa");
    // Records 0-3: ClientHello, KeyTransport, ClientAuth, the first line's ExecPty; 4 is the
    // first key typed into it.
    let proxy = Proxy::start(server.addr(), Some(4));
    let mut command = client.command(["connect", "--host-fingerprint", HOST_FP]);
    command.arg(proxy.addr.to_string()).env("TERM", "xterm");
    let mut repl = in_pty(command);
    let home = prompt(server, &server.home().display().to_string());
    repl.exp_string(&home).unwrap();
    type_line(&mut repl, "cat");
    wait_until_raw(&repl);
    type_keys(&mut repl, "x");
    // Said at once, or at the latest when the next line would be sent: never a prompt that
    // takes the hung-up cat's status for an ordinary end.
    let reason = "server closed the session: protocol error";
    let (_, seen) = repl
        .exp_any(vec![
            ReadUntil::String(reason.to_owned()),
            ReadUntil::String(home.clone()),
        ])
        .unwrap();
    if seen == home {
        type_line(&mut repl, "echo NOT-RUN");
        repl.exp_string(reason).unwrap();
    }
    let rest = repl.exp_eof().unwrap();
    assert!(!rest.contains("NOT-RUN\r\n"), "{rest:?}");
    let status = repl.process().wait().unwrap();
    assert!(
        matches!(status, rexpect::process::WaitStatus::Exited(_, 255)),
        "{status:?}"
    );
}

#[test]
fn a_cut_connection_mid_command_restores_our_terminal_and_exits_255() {
    let server = Server::shared();
    let client = client_of(server, "client_rsa");
    let proxy = Proxy::start(server.addr(), None);
    let mut shell = shell_in_pty(
        &client,
        &format!(
            "stty -g; \"$SEASHELL\" exec -t --host-fingerprint {HOST_FP} {} -- cat; \
             echo status=$?; stty -g",
            proxy.addr
        ),
    );
    let before = stty_g(&mut shell);
    wait_until_raw(&shell);
    type_line(&mut shell, "abc");
    shell.exp_string("abc\r\nabc\r\n").unwrap();
    proxy.cut();
    shell.exp_string("truncated").unwrap();
    shell.exp_string("status=255").unwrap();
    assert_eq!(stty_g(&mut shell), before);
    shell.exp_eof().unwrap();
}

// ---------------------------------------------------------------------------------------------
// The console's start, against a server made of the library

/// A client and a server channel over memory, authenticated.
async fn channel_pair() -> (
    SecureChannel<tokio::io::DuplexStream>,
    SecureChannel<tokio::io::DuplexStream>,
) {
    let (client, server) = tokio::io::duplex(256 * 1024);
    let server = tokio::spawn(async move {
        let pending = crate::channel::server_side(server).await.unwrap();
        crate::channel::accept(pending).await.1
    });
    let client = transport::client_hello(client)
        .await
        .unwrap()
        .authenticate(client_key(), "", None, UpdateLimits::default())
        .await
        .unwrap();
    (client, server.await.unwrap())
}

#[tokio::test]
async fn a_server_that_never_opens_the_console_is_given_up_on_after_30_s() {
    let (client, _silent) = channel_pair().await;
    // The clock runs only when nothing else can: the 30 s pass at once, and exactly.
    tokio::time::pause();
    let started = tokio::time::Instant::now();
    let err = RemoteConsole::start(client, None).await.err().unwrap();
    assert!(matches!(err, ClientError::ConsoleTimeout(30)), "{err}");
    assert_eq!(started.elapsed().as_secs(), 30);
    assert_eq!(
        err.to_string(),
        "the server did not open the console within 30 s"
    );
}

#[tokio::test]
async fn a_message_at_the_wrong_time_is_named_not_dumped() {
    let (client, mut server) = channel_pair().await;
    // 64 KiB of output where the console's state belongs.
    let big = vec![b'x'; 64 * 1024];
    server.writer.send(&Message::Stdout(&big)).await.unwrap();
    let err = RemoteConsole::start(client, None).await.err().unwrap();
    assert_eq!(err.to_string(), "unexpected Stdout message from peer");
}

// ---------------------------------------------------------------------------------------------
// Protocol versions

#[test]
fn a_server_that_hangs_up_during_the_handshake_may_speak_an_older_version() {
    // As a version-1 server does with our version-2 ClientHello: read it, close, say nothing.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let old = thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        let mut hello = [0u8; 12];
        socket.read_exact(&mut hello).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let _ = socket.read(&mut [0u8; 1024]);
    });
    let client = Sandbox::new();
    client.install_identity("client_rsa");
    let run = client.run(
        [
            "exec",
            "--host-fingerprint",
            HOST_FP,
            &addr.to_string(),
            "--",
            "true",
        ],
        b"",
    );
    let stderr = run.failed_with(255);
    assert!(
        stderr.contains("closed the connection during the handshake"),
        "{stderr}"
    );
    assert!(stderr.contains("older protocol version"), "{stderr}");
    old.join().unwrap();
}
