//! The server's session at the protocol level: a client made of the library's transport talks
//! to the real `seashell serve` on 127.0.0.1 and sends exactly the messages a test needs —
//! commands on a pseudo-terminal (ExecPty, WindowChange, keystrokes as Stdin), `no-pty`
//! keys, hang-ups, a client that vanishes while its command ignores its input — and checks
//! what the server's processes and audit log did.

use std::fs;
use std::path::Path;
use std::time::Duration;

use seashell::proto::{ExitStatus, Message, UpdateLimits, WindowSize};
use seashell::transport::{self, SecureChannel};
use tokio::net::TcpStream;

use crate::common::{RUN_DEADLINE, Sandbox, Server, pub_line, wait_for};
use crate::proto::client_key;

type Channel = SecureChannel<TcpStream>;

/// A session with `server`'s console as `client_rsa`, after its first ConsoleState.
async fn open(server: &Server) -> Channel {
    open_as(server, client_key()).await
}

async fn open_as(server: &Server, key: &seashell::crypto::PrivateKey) -> Channel {
    let stream = TcpStream::connect(server.addr()).await.unwrap();
    let pending = transport::client_hello(stream).await.unwrap();
    let mut channel = pending
        .authenticate(key, "", None, UpdateLimits::default())
        .await
        .unwrap();
    match channel.reader.recv().await.unwrap() {
        Message::ConsoleState { .. } => channel,
        other => panic!("expected the console state, got {}", other.name()),
    }
}

const SIZE: WindowSize = WindowSize {
    rows: 33,
    cols: 101,
    xpixel: 0,
    ypixel: 0,
};

async fn exec_pty(channel: &mut Channel, line: &str) {
    let msg = Message::ExecPty {
        line,
        term: "xterm-256color",
        size: SIZE,
    };
    channel.writer.send(&msg).await.unwrap();
}

async fn stdin(channel: &mut Channel, data: &[u8]) {
    channel.writer.send(&Message::Stdin(data)).await.unwrap();
}

/// What a command sent until its Exit (and the ConsoleState after it).
#[derive(Debug, Default)]
struct Answer {
    stdout: String,
    stderr: String,
    pty_refused: bool,
}

/// Reads until `want` appears in the command's stdout; returns it so far.
async fn read_until(channel: &mut Channel, want: &str) -> String {
    let mut stdout = String::new();
    while !stdout.contains(want) {
        match next(channel).await {
            Message::Stdout(data) => stdout.push_str(&String::from_utf8_lossy(data)),
            Message::Exit(status) => panic!("exited ({status:?}) before {want:?}: {stdout:?}"),
            _ => {}
        }
    }
    stdout
}

/// The next message, within the run deadline. (Pings are left unanswered: every test ends
/// long before three keepalive intervals.)
async fn next(channel: &mut Channel) -> Message<'_> {
    tokio::time::timeout(RUN_DEADLINE, channel.reader.recv())
        .await
        .expect("the server answered within the deadline")
        .unwrap()
}

/// Everything until the Exit and the ConsoleState after it.
async fn finish(channel: &mut Channel) -> (Answer, ExitStatus) {
    let mut answer = Answer::default();
    loop {
        match next(channel).await {
            Message::Stdout(data) => answer.stdout.push_str(&String::from_utf8_lossy(data)),
            Message::Stderr(data) => answer.stderr.push_str(&String::from_utf8_lossy(data)),
            Message::PtyRefused => answer.pty_refused = true,
            Message::Ping(_) => {}
            Message::Exit(status) => {
                let state = next(channel).await;
                assert!(matches!(state, Message::ConsoleState { .. }), "{state:?}");
                return (answer, status);
            }
            other => panic!("unexpected {}", other.name()),
        }
    }
}

fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

/// The number after `tag` in `text`.
fn number_after(text: &str, tag: &str) -> i32 {
    text.split(tag)
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {tag}N in {text:?}"))
}

#[tokio::test]
async fn a_pty_command_sees_a_terminal_of_the_clients_size_and_type() {
    let mut channel = open(Server::shared()).await;
    exec_pty(
        &mut channel,
        "tty; stty size; test -t 0 && echo stdin-is-a-tty; echo TERM=$TERM",
    )
    .await;
    let (answer, status) = finish(&mut channel).await;
    assert_eq!(status, ExitStatus::Code(0), "{answer:?}");
    assert!(answer.stdout.contains("/dev/pts/"), "{answer:?}");
    assert!(answer.stdout.contains("33 101"), "{answer:?}");
    assert!(answer.stdout.contains("stdin-is-a-tty"), "{answer:?}");
    assert!(answer.stdout.contains("TERM=xterm-256color"), "{answer:?}");
    assert!(
        answer.stderr.is_empty(),
        "one stream on a terminal: {answer:?}"
    );

    // The same line on pipes has no terminal.
    let exec = Message::Exec {
        line: "tty; echo TERM=$TERM",
    };
    channel.writer.send(&exec).await.unwrap();
    channel.writer.send(&Message::StdinEof).await.unwrap();
    let (answer, status) = finish(&mut channel).await;
    assert!(answer.stdout.contains("not a tty"), "{answer:?}");
    assert!(answer.stdout.contains("TERM=dumb"), "{answer:?}");
    assert_eq!(status, ExitStatus::Code(0));
}

#[tokio::test]
async fn a_resize_reaches_the_running_command() {
    let mut channel = open(Server::shared()).await;
    exec_pty(&mut channel, "echo ready; read x; stty size").await;
    read_until(&mut channel, "ready").await;
    let size = WindowSize {
        rows: 50,
        cols: 132,
        xpixel: 640,
        ypixel: 480,
    };
    channel
        .writer
        .send(&Message::WindowChange(size))
        .await
        .unwrap();
    stdin(&mut channel, b"\r").await;
    let (answer, status) = finish(&mut channel).await;
    assert!(answer.stdout.contains("50 132"), "{answer:?}");
    assert_eq!(status, ExitStatus::Code(0));
}

#[tokio::test]
async fn typed_keys_reach_a_program_that_reads_dev_tty() {
    let mut channel = open(Server::shared()).await;
    // As sudo reads its password: from the controlling terminal, echo off.
    exec_pty(
        &mut channel,
        "stty -echo; printf 'Password: '; read x </dev/tty; stty echo; echo; echo got:$x",
    )
    .await;
    read_until(&mut channel, "Password: ").await;
    stdin(&mut channel, b"hunter2\r").await;
    let (answer, status) = finish(&mut channel).await;
    assert!(answer.stdout.contains("got:hunter2"), "{answer:?}");
    assert!(
        !answer.stdout.contains("hunter2\r\n\r\ngot"),
        "echo was off: {answer:?}"
    );
    assert_eq!(status, ExitStatus::Code(0));
}

#[tokio::test]
async fn ctrl_c_is_the_terminals_interrupt_for_the_program_to_handle() {
    let mut channel = open(Server::shared()).await;
    exec_pty(
        &mut channel,
        "trap 'echo caught; exit 7' INT; echo ready; while :; do sleep 0.05; done",
    )
    .await;
    read_until(&mut channel, "ready").await;
    stdin(&mut channel, &[0x03]).await;
    let (answer, status) = finish(&mut channel).await;
    assert!(answer.stdout.contains("caught"), "{answer:?}");
    assert_eq!(status, ExitStatus::Code(7));

    // A program that does not handle it dies of it.
    exec_pty(&mut channel, "echo ready; sleep 30").await;
    read_until(&mut channel, "ready").await;
    stdin(&mut channel, &[0x03]).await;
    let (_, status) = finish(&mut channel).await;
    assert_eq!(status, ExitStatus::Signal(2));
}

#[tokio::test]
async fn a_job_left_in_the_background_gets_sighup_when_its_line_ends() {
    let mut channel = open(Server::shared()).await;
    exec_pty(&mut channel, "sleep 300 & echo pid:$!").await;
    let (answer, status) = finish(&mut channel).await;
    assert_eq!(status, ExitStatus::Code(0));
    let pid = number_after(&answer.stdout, "pid:");
    wait_for("the background job to be hung up", RUN_DEADLINE, || {
        !alive(pid)
    });
}

#[tokio::test]
async fn a_detached_job_survives_the_end_of_the_session() {
    let server = Server::shared();
    let mut channel = open(server).await;
    // As under `ssh -t`, the line's end hangs up its terminal at once: nohup needs a moment
    // to start ignoring SIGHUP first.
    exec_pty(
        &mut channel,
        "nohup sleep 30 >/dev/null 2>&1 & echo pid:$!; sleep 0.5",
    )
    .await;
    let (answer, _) = finish(&mut channel).await;
    let pid = number_after(&answer.stdout, "pid:");
    channel.writer.close("").await.unwrap();
    drop(channel);
    // Another session's command runs after this one has ended and hung up.
    let mut later = open(server).await;
    later
        .writer
        .send(&Message::Exec { line: "sleep 1" })
        .await
        .unwrap();
    finish(&mut later).await;
    assert!(alive(pid), "nohup's job was killed");
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

#[tokio::test]
async fn the_end_of_a_session_hangs_up_its_running_command() {
    let server = Server::shared();
    let dir = tempfile::tempdir().unwrap();
    let mark = dir.path().join("hup");
    let line = format!(
        "trap 'echo hup > {}; exit 0' HUP; echo ready; while :; do sleep 0.05; done",
        mark.display()
    );
    let mut channel = open(server).await;
    channel
        .writer
        .send(&Message::Exec { line: &line })
        .await
        .unwrap();
    read_until(&mut channel, "ready").await;
    drop(channel);
    wait_for("the command to get SIGHUP", RUN_DEADLINE, || {
        fs::read_to_string(&mark).is_ok_and(|t| t == "hup\n")
    });
}

#[tokio::test]
async fn a_command_that_ignores_sighup_is_killed_three_seconds_later() {
    let mut channel = open(Server::shared()).await;
    let exec = Message::Exec {
        line: "trap '' HUP; echo pid:$$; while :; do sleep 0.05; done",
    };
    channel.writer.send(&exec).await.unwrap();
    let pid = number_after(&read_until(&mut channel, "\n").await, "pid:");
    channel.writer.close("").await.unwrap();
    drop(channel);
    wait_for("SIGKILL after the hang-up", RUN_DEADLINE, || !alive(pid));
}

#[tokio::test]
async fn a_vanished_client_is_noticed_while_its_command_ignores_stdin() {
    let sandbox = Sandbox::new();
    let config = sandbox.write("server.toml", "keepalive_secs = 1\n");
    let config = config.display().to_string();
    let server = Server::start(&sandbox, &["--config", &config], &pub_line("client_rsa"));
    let mut channel = open(&server).await;
    let exec = Message::Exec {
        line: "echo pid:$$; exec sleep 60",
    };
    channel.writer.send(&exec).await.unwrap();
    let pid = number_after(&read_until(&mut channel, "\n").await, "pid:");
    // Fill the command's stdin pipe and everything between: the server stops taking it.
    let chunk = vec![0u8; 60 * 1024];
    loop {
        let sent = tokio::time::timeout(
            Duration::from_millis(500),
            channel.writer.send(&Message::Stdin(&chunk)),
        )
        .await;
        if sent.is_err() {
            break;
        }
    }
    drop(channel);
    wait_for(
        "the command of a vanished client to end",
        RUN_DEADLINE,
        || !alive(pid),
    );
}

#[tokio::test]
async fn a_no_pty_key_is_told_and_runs_on_pipes_and_the_audit_log_says_which() {
    let sandbox = Sandbox::new();
    let keys = format!("{}no-pty {}", pub_line("client_rsa"), pub_line("other_rsa"));
    let server = Server::start(&sandbox, &["--audit-log", "audit.log"], &keys);
    let mut channel = open(&server).await;
    exec_pty(&mut channel, "read x; tty").await;
    stdin(&mut channel, b"typed-secret\r").await;
    let (answer, _) = finish(&mut channel).await;
    assert!(!answer.pty_refused);
    assert!(answer.stdout.contains("/dev/pts/"), "{answer:?}");

    let other = crate::proto::fixture_key("other_rsa");
    let mut restricted = open_as(&server, &other).await;
    exec_pty(&mut restricted, "tty").await;
    restricted.writer.send(&Message::StdinEof).await.unwrap();
    let (answer, status) = finish(&mut restricted).await;
    assert!(answer.pty_refused, "{answer:?}");
    assert!(answer.stdout.contains("not a tty"), "{answer:?}");
    assert_eq!(status, ExitStatus::Code(1));

    let log = fs::read_to_string(sandbox.path().join("audit.log")).unwrap();
    let commands: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(r#""event":"command""#))
        .collect();
    assert_eq!(commands.len(), 2, "{log}");
    assert!(commands[0].contains(r#""pty":true"#), "{}", commands[0]);
    assert!(commands[1].contains(r#""pty":false"#), "{}", commands[1]);
    assert!(!log.contains("typed-secret"), "keystrokes in the audit log");
    assert!(
        !server.log().contains("typed-secret"),
        "keystrokes in the server log"
    );
}

#[tokio::test]
async fn a_command_may_follow_a_download_in_the_same_session() {
    let server = Server::shared();
    let source = server.home().join("session-download.txt");
    fs::write(&source, "downloaded\n").unwrap();
    let mut channel = open(server).await;
    let get = Message::GetFile {
        path: "session-download.txt",
        offset: 0,
        prefix_sha256: seashell::fileio::sha256_of_nothing(),
    };
    channel.writer.send(&get).await.unwrap();
    loop {
        match next(&mut channel).await {
            Message::TransferDone => break,
            Message::FileInfo { .. } | Message::FileData(_) | Message::FileEnd { .. } => {}
            other => panic!("unexpected {}", other.name()),
        }
    }
    let exec = Message::Exec {
        line: "echo after the download",
    };
    channel.writer.send(&exec).await.unwrap();
    channel.writer.send(&Message::StdinEof).await.unwrap();
    let (answer, status) = finish(&mut channel).await;
    assert_eq!(answer.stdout, "after the download\n");
    assert_eq!(status, ExitStatus::Code(0));
}

#[tokio::test]
async fn the_consoles_own_answers_on_a_terminal_end_lines_as_a_terminal_does() {
    let sandbox = Sandbox::new();
    let keys = format!(r#"allow="uptime" {}"#, pub_line("client_rsa"));
    let server = Server::start(&sandbox, &[], &keys);
    let mut channel = open(&server).await;
    exec_pty(&mut channel, "help").await;
    let (answer, status) = finish(&mut channel).await;
    assert_eq!(status, ExitStatus::Code(126));
    assert!(answer.stderr.contains("denied"), "{answer:?}");
    assert!(answer.stderr.ends_with("\r\n"), "{answer:?}");
    assert_eq!(
        answer.stderr.matches('\n').count(),
        answer.stderr.matches("\r\n").count(),
        "a bare newline staircases on a raw terminal: {answer:?}"
    );
}
