//! The remote console end to end: the real `seashell serve` on 127.0.0.1 and the real
//! `seashell exec` / `seashell connect` talking to it over real sockets, through a pseudo-terminal
//! for the REPL, through a man-in-the-middle proxy for tampering, truncation and replay. Most
//! tests share one server ([`Server::shared`]): RSA-3072 transport keys take a while to make.

use std::fs;
use std::io::{BufRead as _, BufReader, ErrorKind, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rexpect::session::{Options, PtySession, spawn_with_options};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::common::{
    CLIENT_FP, HOST_FP, OTHER_FP, RUN_DEADLINE, RawRun, Sandbox, Server, bare_key, client_of,
    mode_of, run_to_end, wait_for,
};

/// The remote home: where every session starts.
fn remote_home() -> String {
    Server::shared().home().display().to_string()
}

/// After a refusal: the same server still runs a good client's command.
fn assert_still_serves(server: &Server) {
    let run = client_of(server, "client_rsa").exec(server, &["echo", "still", "serving"], b"");
    assert_eq!(run.ok(), "still serving\n");
    assert!(server.is_running());
}

// ---------------------------------------------------------------------------------------------
// exec

#[test]
fn exec_prints_the_remote_output() {
    let server = Server::shared();
    let run = client_of(server, "client_rsa").exec(server, &["echo hello from the console"], b"");
    assert_eq!(run.ok(), "hello from the console\n");
    assert_eq!(run.stderr, "");
}

#[test]
fn exec_returns_the_remote_exit_code() {
    let server = Server::shared();
    let client = client_of(server, "client_rsa");
    client.exec(server, &["exit 3"], b"").failed_with(3);
    client.exec(server, &["false"], b"").failed_with(1);
    client.exec(server, &["true"], b"").ok();
}

#[test]
fn exec_maps_death_by_signal_to_128_plus_n() {
    let server = Server::shared();
    let run = client_of(server, "client_rsa").exec(server, &["kill -9 $$"], b"");
    run.failed_with(137);
}

#[test]
fn exec_keeps_stderr_apart_from_stdout() {
    let server = Server::shared();
    let run = client_of(server, "client_rsa").exec(
        server,
        &["echo to-out; echo to-err >&2; echo more-out"],
        b"",
    );
    assert_eq!(run.ok(), "to-out\nmore-out\n");
    assert_eq!(run.stderr, "to-err\n");
}

#[test]
fn exec_forwards_stdin_and_its_eof() {
    let server = Server::shared();
    let client = client_of(server, "client_rsa");
    let run = client.exec(server, &["cat"], b"line one\nline two\n");
    assert_eq!(run.ok(), "line one\nline two\n");
    // `wc` only answers once it sees EOF.
    let run = client.exec(server, &["wc", "-c"], b"12345");
    assert_eq!(run.ok().trim(), "5");
    let run = client.exec(server, &["wc -c"], b"");
    assert_eq!(run.ok().trim(), "0");
}

#[test]
fn exec_carries_10_mb_of_random_bytes_through_cat_intact() {
    let server = Server::shared();
    let mut data = vec![0u8; 10 * 1024 * 1024];
    rand::fill(&mut data[..]);
    let run = client_of(server, "client_rsa").exec(server, &["cat"], &data);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(run.stdout.len(), data.len());
    assert!(run.stdout == data, "the bytes came back changed");
}

#[test]
fn exec_into_a_pipe_whose_reader_left_ends_quietly_with_141() {
    let server = Server::shared();
    let client = client_of(server, "client_rsa");
    let mut child = client.spawn_exec(server, "seq 1 100000000");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert_eq!(first, "1\n");
    // Like `| head -1`: the reader goes away while the command still has output.
    drop(stdout);
    let mut status = None;
    wait_for(
        "seashell to end after its reader left",
        RUN_DEADLINE,
        || {
            status = child.try_wait().unwrap();
            status.is_some()
        },
    );
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.and_then(|s| s.code()), Some(141), "stderr: {stderr}");
    assert_eq!(stderr, "");
}

#[test]
fn exec_streams_output_as_it_is_produced() {
    let server = Server::shared();
    let client = client_of(server, "client_rsa");
    let mut child = client.spawn_exec(server, "echo first; sleep 2; echo second");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let still_running = child.try_wait().unwrap().is_none();
    assert_eq!(first, "first\n");
    assert!(
        still_running,
        "the first line only arrived when the command had ended"
    );
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "second\n");
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn exec_json_reports_stdout_stderr_exit_and_duration() {
    let server = Server::shared();
    let run = client_of(server, "client_rsa").run(
        [
            "exec",
            "--json",
            &server.dest(),
            "--",
            "echo out; echo err >&2; exit 3",
        ],
        b"",
    );
    assert_eq!(run.code, Some(3), "stderr: {}", run.stderr);
    assert_eq!(run.stderr, "");
    let text = run.stdout_text();
    assert_eq!(
        text.lines().count(),
        1,
        "one JSON object on one line: {text}"
    );
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(report["stdout"], "out\n");
    assert_eq!(report["stderr"], "err\n");
    assert_eq!(report["exit"], 3);
    assert!(report["duration_ms"].is_u64(), "{report}");
    assert_eq!(report["host"], server.dest());
    assert_eq!(report["address"], server.dest());
    assert_eq!(report["stdout_encoding"], "utf-8");
    assert_eq!(report["error"], serde_json::Value::Null);

    let run = client_of(server, "client_rsa")
        .run(["exec", "--json", &server.dest(), "--", "kill -9 $$"], b"");
    assert_eq!(run.code, Some(137), "stderr: {}", run.stderr);
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    // The same schema as fan-out's: no exit code for a signal (the exit status is still 137).
    assert_eq!(report["exit"], serde_json::Value::Null);
    assert_eq!(report["signal"], 9);
}

#[test]
fn exec_expands_variables_on_the_remote_side() {
    let server = Server::shared();
    let client = client_of(server, "client_rsa");
    let run = client.exec(server, &["echo $HOME"], b"");
    assert_eq!(run.ok(), format!("{}\n", remote_home()));
    assert_ne!(remote_home(), client.path().display().to_string());
}

#[test]
fn exec_joins_its_words_with_spaces_for_the_remote_shell() {
    let server = Server::shared();
    let client = client_of(server, "client_rsa");
    let run = client.exec(server, &["echo", "a", "b", "c"], b"");
    assert_eq!(run.ok(), "a b c\n");
    // One line for the remote shell: `;` separates two commands there.
    let run = client.exec(server, &["echo", "one;", "echo", "two"], b"");
    assert_eq!(run.ok(), "one\ntwo\n");
}

#[test]
fn exec_runs_the_line_in_the_users_shell_at_home_with_who_is_connected() {
    let server = Server::shared();
    let client = client_of(server, "client_rsa");
    assert_eq!(
        client.exec(server, &["pwd"], b"").ok(),
        format!("{}\n", remote_home())
    );
    let key = client.exec(server, &["echo $SEASHELL_KEY"], b"").ok();
    assert_eq!(key, format!("{CLIENT_FP}\n"));
}

/// The session id the server logged for the command line containing `tag`.
fn session_of_command(server: &Server, tag: &str) -> String {
    let log = server.wait_for_log(|log| log.lines().any(|l| l.contains(tag)));
    let line = log.lines().find(|l| l.contains(tag)).unwrap();
    line.split_whitespace()
        .find_map(|word| word.strip_prefix("session="))
        .unwrap_or_else(|| panic!("no session in {line:?}"))
        .to_owned()
}

#[test]
fn the_server_logs_each_command_and_how_it_ended() {
    let server = Server::shared();
    let client = client_of(server, "client_rsa");
    for (line, status) in [
        ("exit 3 # log-exit-tag", "status=Code(3)"),
        ("kill -9 $$ # log-signal-tag", "status=Signal(9)"),
    ] {
        client.exec(server, &[line], b"").code.unwrap();
        let session = session_of_command(server, line);
        let ended = format!("session={session}");
        let log = server.wait_for_log(|log| {
            log.lines()
                .any(|l| l.contains("command ended") && l.contains(&ended))
        });
        let line = log
            .lines()
            .find(|l| l.contains("command ended") && l.contains(&ended))
            .unwrap();
        assert!(line.contains(status), "{line}");
    }
}

#[test]
fn fifty_concurrent_exec_sessions_are_all_correct() {
    const SESSIONS: usize = 50;
    let server = Server::shared();
    let client = client_of(server, "client_rsa");
    let meeting = client.path().join("meeting");
    fs::create_dir(&meeting).unwrap();
    let meeting = meeting.display().to_string();
    // Each session checks in, then waits (up to 20 s) until every other one has: all of
    // them are open at the same time.
    let children: Vec<_> = (0..SESSIONS)
        .map(|i| {
            let line = format!(
                "touch {meeting}/{i}; for _ in $(seq 400); do \
                 [ $(ls {meeting} | wc -l) -ge {SESSIONS} ] && break; sleep 0.05; done; \
                 echo session-{i} saw $(ls {meeting} | wc -l)"
            );
            client.spawn_exec(server, &line)
        })
        .collect();
    for (i, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned()
            ),
            (Some(0), format!("session-{i} saw {SESSIONS}\n")),
            "session {i}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The REPL, through a pseudo-terminal

/// `seashell connect FLAGS` in a pty, with a prompt to wait for.
fn spawn_repl(client: &Sandbox, server: &Server, flags: &[&str]) -> PtySession {
    let mut command = client.command(["connect"]);
    command.args(flags).arg(server.dest());
    command.env("TERM", "xterm");
    let options = Options::new()
        .timeout_ms(Some(RUN_DEADLINE.as_millis() as u64 / 2))
        .strip_ansi_escape_codes(true);
    spawn_with_options(command, options).unwrap()
}

/// A fresh client's REPL on the shared server, at its first prompt: the client's sandbox
/// (keep it while the REPL runs), the session, and that prompt.
fn repl_at_home() -> (Sandbox, PtySession, String) {
    repl_at_home_with(&[])
}

/// [`repl_at_home`] with `connect FLAGS` (`-T`: lines on pipes, not on a pseudo-terminal).
fn repl_at_home_with(flags: &[&str]) -> (Sandbox, PtySession, String) {
    let server = Server::shared();
    let client = client_of(server, "client_rsa");
    let mut repl = spawn_repl(&client, server, flags);
    let home_prompt = prompt(server, &remote_home());
    repl.exp_string(&home_prompt).unwrap();
    (client, repl, home_prompt)
}

/// The REPL's prompt for the test client on `server` in `cwd`.
fn prompt(server: &Server, cwd: &str) -> String {
    server.prompt(cwd)
}

#[test]
fn repl_prompt_commands_cd_history_and_ctrl_d() {
    let server = Server::shared();
    let (client, mut repl, _) = repl_at_home();

    repl.send_line("echo hello-$((6 * 7))").unwrap();
    repl.exp_string("hello-42").unwrap();
    repl.exp_string(&prompt(server, &remote_home())).unwrap();

    repl.send_line("cd /tmp").unwrap();
    repl.exp_string(&prompt(server, "/tmp")).unwrap();
    repl.send_line("pwd").unwrap();
    let shown = repl.exp_string(&prompt(server, "/tmp")).unwrap();
    assert!(
        shown.lines().any(|line| line.trim() == "/tmp"),
        "pwd printed {shown:?}"
    );

    // Ctrl-C at the prompt drops the line being typed and gives a fresh prompt.
    repl.send("echo never-run").unwrap();
    repl.flush().unwrap();
    repl.exp_string("echo never-run").unwrap();
    repl.send_control('c').unwrap();
    repl.exp_string(&prompt(server, "/tmp")).unwrap();
    repl.send_line("echo after-ctrl-c").unwrap();
    let shown = repl.exp_string("after-ctrl-c\r\n").unwrap();
    assert!(!shown.contains("never-run"), "{shown:?}");
    repl.exp_string(&prompt(server, "/tmp")).unwrap();

    repl.send_control('d').unwrap();
    repl.exp_eof().unwrap();
    let status = repl.process().wait().unwrap();
    assert!(
        matches!(status, rexpect::process::WaitStatus::Exited(_, 0)),
        "{status:?}"
    );

    let history = fs::read_to_string(client.home().join("history")).unwrap();
    for line in [
        "echo hello-$((6 * 7))",
        "cd /tmp",
        "pwd",
        "echo after-ctrl-c",
    ] {
        assert!(
            history.lines().any(|l| l == line),
            "{line:?} not in {history:?}"
        );
    }
    assert!(!history.contains("never-run"), "{history:?}");
}

#[test]
fn repl_ctrl_c_stops_a_running_command_and_returns_to_the_prompt() {
    let (_client, mut repl, home_prompt) = repl_at_home();

    repl.send_line("echo started; sleep 60; echo not-interrupted")
        .unwrap();
    repl.exp_string("started\r\n").unwrap();
    let interrupted = Instant::now();
    repl.send_control('c').unwrap();
    let shown = repl.exp_string(&home_prompt).unwrap();
    let took = interrupted.elapsed();
    assert!(!shown.contains("not-interrupted"), "{shown:?}");
    assert!(
        took < Duration::from_secs(10),
        "Ctrl-C took {took:?} to stop `sleep 60`"
    );

    // The session goes on.
    repl.send_line("echo still-here").unwrap();
    repl.exp_string("still-here\r\n").unwrap();
    repl.exp_string(&home_prompt).unwrap();
    repl.send_line("exit").unwrap();
    repl.exp_eof().unwrap();
}

#[test]
fn repl_second_ctrl_c_gives_up_and_hides_the_rest_of_that_output() {
    // On pipes: on a pseudo-terminal, Ctrl-C is the remote terminal's, and `~.` gives up.
    let (_client, mut repl, home_prompt) = repl_at_home_with(&["-T"]);

    // A command that ignores SIGINT and keeps talking until the server's SIGKILL (3 s).
    repl.send_line("trap '' INT; while true; do echo tick; sleep 0.1; done")
        .unwrap();
    repl.exp_string("tick\r\n").unwrap();
    repl.send_control('c').unwrap();
    std::thread::sleep(Duration::from_millis(300));
    repl.send_control('c').unwrap();
    repl.exp_string(&home_prompt).unwrap();

    // The next line runs once the server has ended the old command; none of the old
    // command's later output may show up in between.
    repl.send_line("echo next-one").unwrap();
    let shown = repl.exp_string("next-one\r\n").unwrap();
    assert!(!shown.contains("tick"), "{shown:?}");
    let shown = repl.exp_string(&home_prompt).unwrap();
    assert!(!shown.contains("tick"), "{shown:?}");
    repl.send_line("exit").unwrap();
    repl.exp_eof().unwrap();
}

#[test]
fn connect_runs_a_script_from_a_pipe_and_exits_with_the_last_status() {
    let server = Server::shared();
    let client = client_of(server, "client_rsa");
    let run = client.run(["connect", &server.dest()], b"cd /tmp\npwd\nexit 4\n");
    assert_eq!(run.failed_with(4), "");
    assert_eq!(run.stdout_text(), "/tmp\n");

    let run = client.run(["connect", &server.dest()], b"echo one\necho two >&2\n");
    assert_eq!(run.ok(), "one\n");
    assert_eq!(run.stderr, "two\n");
}

// ---------------------------------------------------------------------------------------------
// Refusals

#[test]
fn an_unknown_client_key_is_refused() {
    let server = Server::shared();
    let client = Sandbox::new();
    client.install_identity("other_rsa");
    client.pin_host(&server.dest(), "host_rsa.pub");
    let run = client.exec(server, &["touch refused-client-ran"], b"");
    let stderr = run.failed_with(255);
    assert!(stderr.contains("authentication refused"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(!server.home().join("refused-client-ran").exists());
    assert_still_serves(server);
}

#[test]
fn a_changed_host_key_is_refused_loudly() {
    let server = Server::shared();
    let client = Sandbox::new();
    client.install_identity("client_rsa");
    client.pin_host(&server.dest(), "other_rsa.pub");
    let pinned = fs::read_to_string(client.known_hosts()).unwrap();
    let run = client.exec(server, &["echo should-not-run"], b"");
    let stderr = run.failed_with(255);
    assert!(run.stdout.is_empty());
    assert!(
        stderr.contains(OTHER_FP),
        "pinned fingerprint missing: {stderr}"
    );
    assert!(
        stderr.contains(HOST_FP),
        "offered fingerprint missing: {stderr}"
    );
    assert!(
        stderr.contains(&format!("seashell known-hosts forget {}", server.dest())),
        "{stderr}"
    );
    assert_eq!(fs::read_to_string(client.known_hosts()).unwrap(), pinned);
    assert_still_serves(server);
}

#[test]
fn an_unknown_host_is_refused_without_a_terminal_or_accept_new() {
    let server = Server::shared();
    let client = Sandbox::new();
    client.install_identity("client_rsa");
    let run = client.exec(server, &["echo should-not-run"], b"");
    let stderr = run.failed_with(255);
    assert!(run.stdout.is_empty());
    assert!(stderr.contains(HOST_FP), "{stderr}");
    assert!(stderr.contains("--accept-new"), "{stderr}");
    assert!(!client.known_hosts().exists());
    assert_still_serves(server);
}

#[test]
fn accept_new_records_the_host_key() {
    let server = Server::shared();
    let client = Sandbox::new();
    client.install_identity("client_rsa");
    let run = client.run(
        ["exec", "--accept-new", &server.dest(), "--", "echo first"],
        b"",
    );
    assert_eq!(run.ok(), "first\n");
    let known = fs::read_to_string(client.known_hosts()).unwrap();
    assert_eq!(
        known,
        format!("{} {}\n", server.dest(), bare_key("host_rsa.pub"))
    );
    assert_eq!(mode_of(&client.known_hosts()), 0o600);
    // From now on the host is known: no flag needed, nothing added.
    assert_eq!(client.exec(server, &["echo again"], b"").ok(), "again\n");
    assert_eq!(fs::read_to_string(client.known_hosts()).unwrap(), known);
}

#[test]
fn host_fingerprint_pins_the_key_without_known_hosts() {
    let server = Server::shared();
    let client = Sandbox::new();
    client.install_identity("client_rsa");
    let run = client.run(
        [
            "exec",
            "--host-fingerprint",
            OTHER_FP,
            &server.dest(),
            "--",
            "echo no",
        ],
        b"",
    );
    let stderr = run.failed_with(255);
    assert!(run.stdout.is_empty());
    assert!(
        stderr.contains(OTHER_FP) && stderr.contains(HOST_FP),
        "{stderr}"
    );

    let run = client.run(
        [
            "exec",
            "--host-fingerprint",
            HOST_FP,
            &server.dest(),
            "--",
            "echo yes",
        ],
        b"",
    );
    assert_eq!(run.ok(), "yes\n");
    assert!(!client.known_hosts().exists());
    assert_still_serves(server);
}

#[test]
fn a_world_readable_identity_is_refused() {
    let server = Server::shared();
    let client = client_of(server, "client_rsa");
    let key = client.home().join("id_rsa");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    let run = client.exec(server, &["echo should-not-run"], b"");
    let stderr = run.failed_with(255);
    assert!(
        stderr.contains(&format!("chmod 600 {}", key.display())),
        "{stderr}"
    );
    assert_still_serves(server);
}

#[test]
fn known_hosts_forget_removes_the_entry() {
    let server = Server::shared();
    let client = client_of(server, "client_rsa");
    client.pin_host("other.example:7022", "other_rsa.pub");
    let run = client.run(["known-hosts", "forget", &server.dest()], b"");
    assert!(run.ok().contains("removed 1 key"), "{run:?}");
    let left = fs::read_to_string(client.known_hosts()).unwrap();
    assert!(!left.contains(&server.dest()), "{left}");
    assert!(left.contains("other.example:7022"), "{left}");
    // Forgotten: the server is unknown again.
    let stderr = client
        .exec(server, &["true"], b"")
        .failed_with(255)
        .to_owned();
    assert!(stderr.contains("not known"), "{stderr}");
}

// ---------------------------------------------------------------------------------------------
// Hostile peers

/// Sends `bytes` as a fresh connection and reads until the server hangs up; returns what it
/// answered. A reset counts as hanging up (the server may close with our bytes unread).
fn send_and_wait_for_hang_up(server: &Server, bytes: &[u8]) -> (SocketAddr, Vec<u8>) {
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    let local = stream.local_addr().unwrap();
    stream.set_read_timeout(Some(RUN_DEADLINE)).unwrap();
    let _ = stream.write_all(bytes);
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(err) if err.kind() == ErrorKind::ConnectionReset => break,
            Err(err) => panic!("waiting for the server to hang up: {err}"),
        }
    }
    (local, answer)
}

/// Waits until the server logged that the handshake with `peer` failed; returns that line.
fn handshake_failure_of(server: &Server, peer: SocketAddr) -> String {
    let needle = format!("peer={peer}");
    let log = server.wait_for_log(|log| {
        log.lines()
            .any(|l| l.contains("handshake failed") && l.contains(&needle))
    });
    log.lines()
        .find(|l| l.contains("handshake failed") && l.contains(&needle))
        .unwrap()
        .to_owned()
}

#[test]
fn a_client_of_another_version_is_told_which_versions_the_server_speaks() {
    let server = Server::shared();
    // A version-1 ClientHello record: header, type, magic, version 1, random, share.
    let mut hello = vec![0, 0, 0, 75, 0x01];
    hello.extend_from_slice(b"SEASHELL");
    hello.extend_from_slice(&1u16.to_be_bytes());
    hello.extend_from_slice(&[7u8; 64]);
    let (peer, answer) = send_and_wait_for_hang_up(server, &hello);
    // One clear VersionRefused record listing version 4, then the server hangs up.
    assert_eq!(answer, [0, 0, 0, 4, 0x04, 1, 0, 4]);
    assert!(handshake_failure_of(server, peer).contains(
        "the client speaks protocol version 1, this server speaks 4: upgrade the client"
    ));
    assert_still_serves(server);
}

#[test]
fn garbage_is_dropped_and_the_server_goes_on() {
    let server = Server::shared();
    let mut garbage = vec![0u8; 64 * 1024];
    rand::fill(&mut garbage[..]);
    let (peer, answer) = send_and_wait_for_hang_up(server, &garbage);
    assert!(
        answer.is_empty(),
        "answered garbage with {} bytes",
        answer.len()
    );
    handshake_failure_of(server, peer);

    // Garbage with a plausible length: a bad ClientHello.
    let mut hello = 40u32.to_be_bytes().to_vec();
    hello.extend_from_slice(b"NOTSEASHELL and then some more bytes....");
    let (peer, answer) = send_and_wait_for_hang_up(server, &hello);
    assert!(answer.is_empty());
    handshake_failure_of(server, peer);
    assert_still_serves(server);
}

#[test]
fn an_oversized_length_is_refused_before_reading_the_body() {
    let server = Server::shared();
    let (peer, answer) = send_and_wait_for_hang_up(server, &u32::MAX.to_be_bytes());
    assert!(answer.is_empty());
    let line = handshake_failure_of(server, peer);
    assert!(line.contains("exceeds the maximum"), "{line}");
    assert_still_serves(server);
}

// ---------------------------------------------------------------------------------------------
// A man in the middle

/// What the proxy does to the server's records (0: ServerHello, 1: AuthOk, 2: the first
/// console state, 3: the command's first output, ...).
#[derive(Clone, Copy)]
enum Attack {
    /// Forward everything (and record what the client sends).
    None,
    /// Flip one bit in the ciphertext of record N.
    FlipBit(usize),
    /// Close both connections right after forwarding record N.
    CutAfter(usize),
    /// Replace record N with a header claiming u32::MAX bytes, then send nothing more.
    HugeLength(usize),
}

/// A one-connection TCP proxy on 127.0.0.1 in front of the server. With a `gate`, it creates
/// that file once it has forwarded record 3 (the first output), so a command can wait for it
/// and its next output is sure to travel in a record of its own.
struct Proxy {
    addr: SocketAddr,
    /// Everything the client sent, in order.
    recorded: Arc<Mutex<Vec<u8>>>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// Listens on 127.0.0.1 and proxies one connection to `server`, applying `attack`.
    async fn start(server: SocketAddr, attack: Attack, gate: Option<PathBuf>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&recorded);
        let task = tokio::spawn(async move {
            let (client, _) = listener.accept().await.unwrap();
            let upstream = tokio::net::TcpStream::connect(server).await.unwrap();
            client.set_nodelay(true).unwrap();
            upstream.set_nodelay(true).unwrap();
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = upstream.into_split();
            let upward = tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match client_read.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            record.lock().unwrap().extend_from_slice(&buf[..n]);
                            if server_write.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = server_write.shutdown().await;
            });
            let mut index = 0;
            loop {
                let mut header = [0u8; 4];
                if server_read.read_exact(&mut header).await.is_err() {
                    break;
                }
                let mut body = vec![0u8; u32::from_be_bytes(header) as usize];
                if server_read.read_exact(&mut body).await.is_err() {
                    break;
                }
                match attack {
                    Attack::FlipBit(n) if n == index => {
                        let middle = body.len() / 2;
                        body[middle] ^= 0x10;
                    }
                    Attack::HugeLength(n) if n == index => {
                        let _ = client_write.write_all(&u32::MAX.to_be_bytes()).await;
                        // Hold the connection open: the client must give up on its own.
                        let _ = upward.await;
                        return;
                    }
                    _ => {}
                }
                if client_write.write_all(&header).await.is_err()
                    || client_write.write_all(&body).await.is_err()
                {
                    break;
                }
                if index == 3
                    && let Some(gate) = &gate
                {
                    fs::write(gate, b"").unwrap();
                }
                if matches!(attack, Attack::CutAfter(n) if n == index) {
                    upward.abort();
                    return;
                }
                index += 1;
            }
            let _ = client_write.shutdown().await;
            let _ = upward.await;
        });
        Self {
            addr,
            recorded,
            task,
        }
    }
}

/// Runs `seashell exec` through `proxy` (pinning the host key by fingerprint, since the
/// proxy's address is not in known_hosts).
async fn exec_through(proxy: &Proxy, line: &str) -> RawRun {
    let client = client_of(Server::shared(), "client_rsa");
    let command = client.command([
        "exec",
        "--host-fingerprint",
        HOST_FP,
        &proxy.addr.to_string(),
        "--",
        line,
    ]);
    tokio::task::spawn_blocking(move || run_to_end(command, b""))
        .await
        .unwrap()
}

/// A command whose output comes in two records: one line (record 3), then, once the proxy
/// opened `gate`, the marker (record 4).
fn two_part_output(gate: &Path) -> String {
    format!(
        "echo visible-line; while [ ! -e {gate} ]; do sleep 0.02; done; echo TAMPERED-MARKER",
        gate = gate.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mitm_flipping_a_bit_makes_the_client_fail_without_printing_the_tampered_frame() {
    let sandbox = Sandbox::new();
    let gate = sandbox.path().join("gate");
    let proxy = Proxy::start(
        Server::shared().addr(),
        Attack::FlipBit(4),
        Some(gate.clone()),
    )
    .await;
    let run = exec_through(&proxy, &two_part_output(&gate)).await;
    let stderr = run.failed_with(255);
    assert!(stderr.contains("failed authentication"), "{stderr}");
    let stdout = run.stdout_text();
    assert!(stdout.contains("visible-line"), "{stdout:?}");
    assert!(!stdout.contains("TAMPERED-MARKER"), "{stdout:?}");
    proxy.task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mitm_flipping_a_bit_in_the_server_hello_is_caught_before_authentication() {
    let server = Server::shared();
    let proxy = Proxy::start(server.addr(), Attack::FlipBit(0), None).await;
    let run = exec_through(&proxy, "touch mitm-hello-ran").await;
    run.failed_with(255);
    assert!(run.stdout.is_empty());
    assert!(!server.home().join("mitm-hello-ran").exists());
    proxy.task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mitm_cutting_the_stream_makes_the_client_fail_and_kills_the_command() {
    let server = Server::shared();
    let client = client_of(server, "client_rsa");
    let pid_file = client.path().join("cut.pid");
    let line = format!(
        "echo $$ > {}; echo visible-line; sleep 30; echo TAMPERED-MARKER",
        pid_file.display()
    );
    let proxy = Proxy::start(server.addr(), Attack::CutAfter(3), None).await;
    let run = exec_through(&proxy, &line).await;
    let stderr = run.failed_with(255);
    assert!(stderr.contains("truncated"), "{stderr}");
    let stdout = run.stdout_text();
    assert!(stdout.contains("visible-line"), "{stdout:?}");
    assert!(!stdout.contains("TAMPERED-MARKER"), "{stdout:?}");

    // No orphan: the server kills the command when its client is gone.
    let pid = fs::read_to_string(&pid_file).unwrap().trim().to_owned();
    let gone = Instant::now();
    while Path::new(&format!("/proc/{pid}")).exists() {
        assert!(
            gone.elapsed() < Duration::from_secs(20),
            "the command outlived its session"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mitm_oversized_length_makes_the_client_fail_at_once() {
    let proxy = Proxy::start(Server::shared().addr(), Attack::HugeLength(3), None).await;
    let run = exec_through(&proxy, "echo TAMPERED-MARKER").await;
    let stderr = run.failed_with(255);
    assert!(stderr.contains("exceeds the maximum"), "{stderr}");
    assert!(!run.stdout_text().contains("TAMPERED-MARKER"));
    proxy.task.abort();
}

/// Splits a byte stream into its length-prefixed records.
fn records(mut bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while bytes.len() >= 4 {
        let len = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
        let end = (4 + len).min(bytes.len());
        out.push(bytes[..end].to_vec());
        bytes = &bytes[end..];
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mitm_replaying_a_recorded_session_runs_nothing() {
    let server = Server::shared();
    let marker = std::env::temp_dir().join(format!(
        "seashell-replay-{}-{}",
        std::process::id(),
        rand::random::<u64>()
    ));
    let proxy = Proxy::start(server.addr(), Attack::None, None).await;
    let run = exec_through(&proxy, &format!("touch {}", marker.display())).await;
    run.ok();
    proxy.task.await.unwrap();
    assert!(marker.exists(), "the original session did not run");
    fs::remove_file(&marker).unwrap();

    let recorded = records(&proxy.recorded.lock().unwrap());
    assert!(
        recorded.len() >= 4,
        "ClientHello, KeyTransport, ClientAuth, Exec..."
    );
    let replay = tokio::task::spawn_blocking({
        let addr = server.addr();
        move || {
            let mut stream = TcpStream::connect(addr).unwrap();
            let local = stream.local_addr().unwrap();
            stream.set_read_timeout(Some(RUN_DEADLINE)).unwrap();
            // The recorded ClientHello gets a fresh ServerHello...
            stream.write_all(&recorded[0]).unwrap();
            let mut header = [0u8; 4];
            stream.read_exact(&mut header).unwrap();
            let mut hello = vec![0u8; u32::from_be_bytes(header) as usize];
            stream.read_exact(&mut hello).unwrap();
            // ...and the rest of the recorded session is thrown at it.
            let _ = stream.write_all(&recorded[1..].concat());
            let mut after = Vec::new();
            match stream.read_to_end(&mut after) {
                Ok(_) => {}
                Err(err) if err.kind() == ErrorKind::ConnectionReset => {}
                Err(err) => panic!("{err}"),
            }
            (local, after)
        }
    })
    .await
    .unwrap();
    let (peer, after) = replay;
    assert!(
        after.is_empty(),
        "the server answered the replay with {} bytes",
        after.len()
    );
    let line = handshake_failure_of(server, peer);
    assert!(line.contains("failed authentication"), "{line}");
    assert!(!marker.exists(), "the replayed command ran");
}
