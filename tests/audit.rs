//! The audit log end to end, with the real binary: a server with `--audit-log` records real
//! sessions; `audit verify` passes the log, finds every edit, deletion, insertion and
//! reordering at its line, and tells a crashed server's log (exit 2) from a tampered one
//! (exit 1); a cut log is never OK, and a witness (what syslog received) catches a cut;
//! a kill -9 during a command leaves that command in the log; rotation keeps one
//! chain across files; a full disk refuses commands until space is back, and the log then
//! goes on by itself; `audit show` prints the sessions; syslog gets a copy of every line.

use std::ffi::OsString;
use std::fs;
use std::io::{Read as _, Write as _};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use crate::common::{
    CLIENT_FP, HOST_FP, RUN_DEADLINE, Run, Sandbox, Server, client_of, fixture_path, pub_line,
    wait_for,
};

/// The log of a server that ran `echo hello`, `exit 3` and `pwd` for the client fixture,
/// refused the `other_rsa` key, and was stopped with SIGTERM. Made once, shared by the tests.
fn real_log() -> &'static str {
    static LOG: OnceLock<String> = OnceLock::new();
    LOG.get_or_init(|| {
        let sandbox = Sandbox::new();
        let server = audited_server(&sandbox);
        let client = client_of(&server, "client_rsa");
        assert_eq!(client.exec(&server, &["echo hello"], b"").ok(), "hello\n");
        client.exec(&server, &["exit 3"], b"").failed_with(3);
        client.exec(&server, &["pwd"], b"").ok();
        let other = client_of(&server, "other_rsa");
        other.exec(&server, &["id"], b"").failed_with(255);
        let status = server.terminate();
        assert!(status.success(), "server exit: {status}");
        fs::read_to_string(sandbox.path().join("audit.log")).unwrap()
    })
}

/// A server in `sandbox` trusting `client_rsa`, logging to `audit.log` there.
fn audited_server(sandbox: &Sandbox) -> Server {
    Server::start(
        sandbox,
        &["--audit-log", "audit.log"],
        &pub_line("client_rsa"),
    )
}

/// Every event of the log at `path`, parsed.
fn events(path: &Path) -> Vec<serde_json::Value> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The lines of `text`, owned.
fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_owned).collect()
}

/// Writes `lines` as the sandbox's audit.log and returns its path.
fn write_log(sandbox: &Sandbox, lines: &[String]) -> PathBuf {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    sandbox.write("audit.log", &text)
}

/// Runs `seashell audit verify` on `files`, with the host key fixture.
fn verify(sandbox: &Sandbox, files: &[&Path]) -> Run {
    let mut args: Vec<OsString> = ["audit", "verify", "--host-key"]
        .iter()
        .map(OsString::from)
        .collect();
    args.push(fixture_path("host_rsa.pub").into());
    args.extend(files.iter().map(|f| f.as_os_str().to_owned()));
    sandbox.seashell(args)
}

/// Runs `seashell audit show LOG EXTRA...`.
fn show(sandbox: &Sandbox, log: &Path, extra: &[&str]) -> Run {
    let mut args: Vec<OsString> = vec!["audit".into(), "show".into(), log.into()];
    args.extend(extra.iter().map(OsString::from));
    sandbox.seashell(args)
}

/// Asserts that verify exits 1 naming `line` of `log` as the first bad one, for `why`.
fn assert_broken_at(sandbox: &Sandbox, log: &Path, line: usize, why: &str, case: &str) {
    let run = verify(sandbox, &[log]);
    assert_eq!(run.code, Some(1), "{case}: {run:#?}");
    let want = format!("FAILED: {}:{line}: {why}", log.display());
    assert!(
        run.stdout.starts_with(&want),
        "{case}: want {want:?}, got {run:#?}"
    );
}

#[test]
fn a_real_log_verifies_and_shows() {
    let sandbox = Sandbox::new();
    let log = sandbox.write("audit.log", real_log());
    let events = lines(real_log());
    let kinds: Vec<String> = events
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event"].to_string())
        .collect();
    assert_eq!(kinds.first().map(String::as_str), Some("\"start\""));
    assert_eq!(
        kinds[kinds.len() - 2..],
        ["\"stop\"".to_owned(), "\"checkpoint\"".to_owned()]
    );
    // Not `connect`: connections go to the server's own log, not the audit log.
    for kind in ["auth_ok", "auth_fail", "command", "exit", "disconnect"] {
        assert!(
            kinds.contains(&format!("\"{kind}\"")),
            "no {kind}: {kinds:?}"
        );
    }

    let run = verify(&sandbox, &[&log]);
    assert_eq!(
        run.ok().trim(),
        format!(
            "OK: {n} events, last checkpoint at line {n}",
            n = events.len()
        )
    );

    let table = show(&sandbox, &log, &[]).ok().to_owned();
    let rows: Vec<&str> = table.lines().collect();
    assert!(rows[0].starts_with("TIME"), "{table}");
    let row = |text: &str| {
        rows.iter()
            .find(|r| r.ends_with(text))
            .unwrap_or_else(|| panic!("no row for {text}: {table}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    let hello = row("echo hello");
    assert!(hello[2].starts_with("127.0.0.1:"), "{table}");
    assert_eq!(hello[3..5], ["test-client", "0"], "{table}");
    assert_eq!(row("exit 3")[4], "3", "{table}");
    assert_eq!(row("pwd")[4], "0", "{table}");
    assert!(table.contains("[auth_fail: "), "{table}");
    assert!(rows[1].ends_with("[start]") && rows.last().unwrap().ends_with("[stop]"));

    let json = show(&sandbox, &log, &["--json"]).ok().to_owned();
    assert_eq!(
        json,
        real_log(),
        "--json with no filter prints the log as written"
    );

    let mine = show(&sandbox, &log, &["--key", CLIENT_FP]).ok().to_owned();
    assert!(
        mine.contains("echo hello") && !mine.contains("[start]"),
        "{mine}"
    );
    let grep = show(&sandbox, &log, &["--grep", "hello"]).ok().to_owned();
    assert_eq!(grep.lines().count(), 2, "{grep}");
    let grep_json = show(&sandbox, &log, &["--grep", "hello", "--json"])
        .ok()
        .to_owned();
    assert_eq!(grep_json.lines().count(), 1, "{grep_json}");
    assert!(
        grep_json.contains("\"command\":\"echo hello\""),
        "{grep_json}"
    );
    let future = show(&sandbox, &log, &["--since", "2999-01-01"])
        .ok()
        .to_owned();
    assert_eq!(future.lines().count(), 1, "{future}");
    let past = show(&sandbox, &log, &["--since", "2000-01-01T00:00:00Z"])
        .ok()
        .to_owned();
    assert_eq!(past, table);
}

#[test]
fn every_edit_is_found_at_its_line() {
    let sandbox = Sandbox::new();
    let original = lines(real_log());
    for i in 0..original.len() {
        let mut edited = original.clone();
        edited[i] = edited[i].replacen("\"time\":\"2", "\"time\":\"1", 1);
        assert_ne!(edited[i], original[i]);
        let log = write_log(&sandbox, &edited);
        let why = if i + 1 == original.len() {
            "bad signature"
        } else {
            "edited"
        };
        assert_broken_at(&sandbox, &log, i + 1, why, &format!("edit line {}", i + 1));
    }
}

#[test]
fn every_deletion_is_found_where_the_hole_is() {
    let sandbox = Sandbox::new();
    let original = lines(real_log());
    for i in 0..original.len() - 1 {
        let mut cut = original.clone();
        cut.remove(i);
        let log = write_log(&sandbox, &cut);
        assert_broken_at(
            &sandbox,
            &log,
            i + 1,
            "deleted",
            &format!("delete line {}", i + 1),
        );
    }
}

#[test]
fn dropping_the_final_checkpoint_reads_as_live_or_crashed() {
    let sandbox = Sandbox::new();
    let original = lines(real_log());
    let log = write_log(&sandbox, &original[..original.len() - 1]);
    let run = verify(&sandbox, &[&log]);
    assert_eq!(run.code, Some(2), "{run:#?}");
    assert!(
        run.stdout.contains(&format!(
            "{} events after the last checkpoint (none yet): live, crashed or cut",
            original.len() - 1
        )),
        "{run:#?}"
    );
}

#[test]
fn every_insertion_is_found_at_its_line() {
    let sandbox = Sandbox::new();
    let original = lines(real_log());
    let command = original
        .iter()
        .find(|l| l.contains("\"command\":\"echo hello\""))
        .unwrap();
    let forged = command.replace("echo hello", "rm -rf /");
    for i in 0..=original.len() {
        let mut grown = original.clone();
        grown.insert(i, forged.clone());
        let log = write_log(&sandbox, &grown);
        assert_broken_at(
            &sandbox,
            &log,
            i + 1,
            "inserted",
            &format!("insert as line {}", i + 1),
        );
    }
}

#[test]
fn every_reordering_is_found_at_its_line() {
    let sandbox = Sandbox::new();
    let original = lines(real_log());
    for i in 0..original.len() - 1 {
        let mut swapped = original.clone();
        swapped.swap(i, i + 1);
        let log = write_log(&sandbox, &swapped);
        let case = format!("swap lines {} and {}", i + 1, i + 2);
        assert_broken_at(&sandbox, &log, i + 1, "reordered", &case);
    }
}

#[test]
fn a_crash_during_a_command_keeps_the_command() {
    let sandbox = Sandbox::new();
    let log = sandbox.path().join("audit.log");
    let server = audited_server(&sandbox);
    let client = client_of(&server, "client_rsa");
    let mut exec = client.spawn_exec(&server, "sleep 30");
    wait_for("the command in the log", RUN_DEADLINE, || {
        fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("\"command\":\"sleep 30\"")
    });
    std::thread::sleep(Duration::from_millis(200));
    server.crash();
    let _ = exec.kill();
    let _ = exec.wait();

    let run = verify(&sandbox, &[&log]);
    assert_eq!(run.code, Some(2), "{run:#?}");
    assert!(
        run.stdout
            .contains("events after the last checkpoint (none yet): live, crashed or cut"),
        "{run:#?}"
    );
    let table = show(&sandbox, &log, &[]).ok().to_owned();
    let row = table.lines().find(|r| r.ends_with("sleep 30")).unwrap();
    assert_eq!(
        row.split_whitespace().nth(4),
        Some("-"),
        "no exit yet: {table}"
    );

    // The next start continues the chain, and a clean stop seals it.
    let server = audited_server(&sandbox);
    let client = client_of(&server, "client_rsa");
    assert_eq!(client.exec(&server, &["echo again"], b"").ok(), "again\n");
    assert!(server.terminate().success());
    let run = verify(&sandbox, &[&log]);
    assert!(run.ok().starts_with("OK: "), "{run:#?}");
}

#[test]
fn rotation_keeps_the_chain_across_files() {
    let sandbox = Sandbox::new();
    let server = Server::start(
        &sandbox,
        &["--audit-log", "audit.log", "--audit-max-bytes", "2000"],
        &pub_line("client_rsa"),
    );
    let client = client_of(&server, "client_rsa");
    for n in 0..6 {
        assert_eq!(
            client.exec(&server, &[&format!("echo {n}")], b"").ok(),
            format!("{n}\n")
        );
    }
    assert!(server.terminate().success());
    let log = sandbox.path().join("audit.log");
    let rotated: Vec<PathBuf> = (1..)
        .map(|n| sandbox.path().join(format!("audit.log.{n}")))
        .take_while(|p| p.exists())
        .collect();
    assert!(rotated.len() >= 2, "{rotated:?}");
    let mut oldest_first: Vec<PathBuf> = rotated.iter().rev().cloned().collect();
    oldest_first.push(log.clone());

    let run = verify(&sandbox, &[&log]);
    assert!(run.ok().starts_with("OK: "), "{run:#?}");
    assert!(
        run.stdout
            .contains(&format!("in {} files", oldest_first.len())),
        "{run:#?}"
    );
    let all: Vec<&Path> = oldest_first.iter().map(PathBuf::as_path).collect();
    assert_eq!(verify(&sandbox, &all).stdout, run.stdout);

    let mut gap = all.clone();
    let missing = gap.remove(1);
    let run = verify(&sandbox, &gap);
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(
        run.stdout
            .starts_with(&format!("FAILED: {}:1: deleted", gap[1].display())),
        "without {}: {run:#?}",
        missing.display()
    );

    let table = show(&sandbox, &log, &[]).ok().to_owned();
    for n in 0..6 {
        assert!(table.contains(&format!("echo {n}\n")), "{table}");
    }
}

/// Runs a server that rotates its log every 2,000 bytes through six commands and stops it
/// cleanly; returns the log's files, oldest first.
fn rotated_log(sandbox: &Sandbox) -> Vec<PathBuf> {
    let server = Server::start(
        sandbox,
        &["--audit-log", "audit.log", "--audit-max-bytes", "2000"],
        &pub_line("client_rsa"),
    );
    let client = client_of(&server, "client_rsa");
    for n in 0..6 {
        client.exec(&server, &[&format!("echo {n}")], b"").ok();
    }
    assert!(server.terminate().success());
    let mut files: Vec<PathBuf> = (1..)
        .map(|n| sandbox.path().join(format!("audit.log.{n}")))
        .take_while(|p| p.exists())
        .collect();
    files.reverse();
    files.push(sandbox.path().join("audit.log"));
    assert!(files.len() >= 3, "{files:?}");
    files
}

#[test]
fn a_cut_log_never_verifies_as_ok() {
    let sandbox = Sandbox::new();
    let files = rotated_log(&sandbox);
    let log = files.last().unwrap().clone();
    assert!(verify(&sandbox, &[&log]).ok().starts_with("OK: "));
    let whole: Vec<String> = files
        .iter()
        .flat_map(|f| lines(&fs::read_to_string(f).unwrap()))
        .collect();

    // Cut back to an earlier checkpoint, as one file.
    let cut_sandbox = Sandbox::new();
    let last_but_one = whole
        .iter()
        .rposition(|l| l.contains(r#""event":"checkpoint""#) && !l.contains(r#""seal":"final""#))
        .unwrap();
    let cut = write_log(&cut_sandbox, &whole[..=last_but_one]);
    let run = verify(&cut_sandbox, &[&cut]);
    assert_eq!(
        run.code,
        Some(2),
        "cut at line {}: {run:#?}",
        last_but_one + 1
    );
    assert!(run.stdout.contains("crashed"), "{run:#?}");

    // The newest file emptied.
    let newest = fs::read(&log).unwrap();
    fs::write(&log, "").unwrap();
    let run = verify(&sandbox, &[&log]);
    assert_eq!(run.code, Some(2), "emptied: {run:#?}");
    assert!(
        run.stdout.contains("the newest file is missing or empty"),
        "{run:#?}"
    );
    fs::write(&log, &newest).unwrap();

    // A file in the middle emptied: named, as the file after it breaks.
    let middle = fs::read(&files[1]).unwrap();
    fs::write(&files[1], "").unwrap();
    let run = verify(&sandbox, &[&log]);
    assert_eq!(run.code, Some(1), "emptied in the middle: {run:#?}");
    assert!(
        run.stdout
            .contains(&format!("{} is empty", files[1].display())),
        "{run:#?}"
    );
    fs::write(&files[1], &middle).unwrap();

    // The oldest file archived elsewhere: still OK, and verify says where the log begins.
    let newer: Vec<&Path> = files[1..].iter().map(PathBuf::as_path).collect();
    let run = verify(&sandbox, &newer);
    assert!(run.ok().starts_with("OK: "), "{run:#?}");
    assert!(
        run.stdout
            .contains(&format!("the log begins at {}:1", files[1].display())),
        "{run:#?}"
    );

    // The newest file deleted, and the older ones renamed to take its place.
    fs::remove_file(&log).unwrap();
    for pair in files.windows(2).rev() {
        fs::rename(&pair[0], &pair[1]).unwrap();
    }
    let run = verify(&sandbox, &[&log]);
    assert_eq!(run.code, Some(2), "deleted and renamed: {run:#?}");
    assert!(
        run.stdout.contains("the newest file is missing or empty"),
        "{run:#?}"
    );
}

/// A small tmpfs mounted on a temporary directory (tests run as root), unmounted on drop.
/// Shared with `transfer`'s full-disk test.
pub(crate) struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts one with `options`; `None`, with a message saying why the test does not run,
    /// where mounting is not permitted.
    pub(crate) fn mount(options: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir.path())
            .output()
            .unwrap();
        if mounted.status.success() {
            return Some(Self { dir });
        }
        let why = String::from_utf8_lossy(&mounted.stderr);
        let refused = ["ermission denied", "only root", "must be superuser"];
        assert!(
            refused.iter().any(|r| why.contains(r)),
            "mount -t tmpfs failed: {why}"
        );
        eprintln!("SKIPPED: cannot mount a tmpfs here (this test needs root): {why}");
        None
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn a_full_disk_refuses_commands_until_space_is_back() {
    let Some(disk) = Tmpfs::mount("size=256k") else {
        return;
    };
    let log = disk.path().join("audit.log");
    let sandbox = Sandbox::new();
    let server = Server::start(
        &sandbox,
        &["--audit-log", log.to_str().unwrap()],
        &pub_line("client_rsa"),
    );
    let client = client_of(&server, "client_rsa");
    assert_eq!(client.exec(&server, &["echo before"], b"").ok(), "before\n");

    let filler = disk.path().join("filler");
    let mut file = fs::File::create(&filler).unwrap();
    while file.write_all(&[0; 4096]).is_ok() {}
    drop(file);
    // Longer than a page: it cannot fit in what is left of the log's last one.
    let long = format!(": {}", "x".repeat(10_000));
    let run = client.exec(&server, &[&long], b"");
    let stderr = run.failed_with(255);
    assert!(
        stderr.contains("command refused") && stderr.contains("No space left on device"),
        "{stderr}"
    );

    fs::remove_file(&filler).unwrap();
    wait_for("the audit log to write again", RUN_DEADLINE, || {
        fs::read_to_string(&log)
            .unwrap_or_default()
            .contains(r#""event":"lost""#)
    });
    assert_eq!(client.exec(&server, &["echo after"], b"").ok(), "after\n");
    assert!(server.terminate().success());

    let run = verify(&sandbox, &[&log]);
    assert!(run.ok().starts_with("OK: "), "{run:#?}");
    let text = fs::read_to_string(&log).unwrap();
    assert!(
        !text.contains("xxxxxxxx"),
        "a refused command is not in the log"
    );
    let lost: Vec<serde_json::Value> = events(&log)
        .into_iter()
        .filter(|e| e["event"] == "lost")
        .collect();
    assert_eq!(lost.len(), 1, "{lost:?}");
    assert!(lost[0]["lost"].as_u64().unwrap() >= 1, "{lost:?}");
    let table = show(&sandbox, &log, &[]).ok().to_owned();
    assert!(table.contains("[lost: "), "{table}");
    for line in ["echo before", "echo after"] {
        assert!(table.contains(line), "{table}");
    }
}

#[test]
fn syslog_receives_every_event() {
    let collector = UdpSocket::bind("127.0.0.1:0").unwrap();
    collector
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let target = format!("udp:{}", collector.local_addr().unwrap());
    let sandbox = Sandbox::new();
    let server = Server::start(
        &sandbox,
        &["--audit-log", "audit.log", "--syslog", &target],
        &pub_line("client_rsa"),
    );
    client_of(&server, "client_rsa")
        .exec(&server, &["echo via-syslog"], b"")
        .ok();
    let mut buf = vec![0u8; 65536];
    let message = loop {
        let n = collector.recv(&mut buf).expect("a syslog message");
        let message = String::from_utf8_lossy(&buf[..n]).into_owned();
        if message.contains("\"command\":\"echo via-syslog\"") {
            break message;
        }
    };
    assert!(server.terminate().success());
    assert!(message.starts_with("<86>1 "), "{message}");
    let (header, line) = message.split_once(" - ").unwrap();
    assert!(
        header.contains(" seashell ") && header.ends_with(" command"),
        "{header}"
    );
    let log = fs::read_to_string(sandbox.path().join("audit.log")).unwrap();
    assert!(
        log.lines().any(|l| l == line),
        "the message carries the log line as written"
    );
}

#[test]
fn a_log_cut_back_fails_against_what_syslog_witnessed() {
    let collector = UdpSocket::bind("127.0.0.1:0").unwrap();
    collector
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let target = format!("udp:{}", collector.local_addr().unwrap());
    let sandbox = Sandbox::new();
    let args = ["--audit-log", "audit.log", "--syslog", &target];
    for n in 0..2 {
        let server = Server::start(&sandbox, &args, &pub_line("client_rsa"));
        client_of(&server, "client_rsa")
            .exec(&server, &[&format!("echo run {n}")], b"")
            .ok();
        assert!(server.terminate().success());
    }
    let mut received = String::new();
    let mut buf = vec![0u8; 65536];
    while let Ok(n) = collector.recv(&mut buf) {
        received.push_str(&String::from_utf8_lossy(&buf[..n]));
        received.push('\n');
    }
    let witness = sandbox.write("witness.log", &received);
    let log = sandbox.path().join("audit.log");
    let with_witness = |log: &Path| {
        let mut args: Vec<OsString> = ["audit", "verify", "--host-key"]
            .iter()
            .map(OsString::from)
            .collect();
        args.push(fixture_path("host_rsa.pub").into());
        args.push("--witness".into());
        args.push(witness.clone().into());
        args.push(log.into());
        sandbox.seashell(args)
    };
    let run = with_witness(&log);
    assert!(run.ok().contains("witness: 2 checkpoint(s)"), "{run:#?}");

    // Cut back to the first run's final seal: OK alone, a failure against the witness.
    let all = lines(&fs::read_to_string(&log).unwrap());
    let first_seal = all
        .iter()
        .position(|l| l.contains(r#""seal":"final""#))
        .unwrap();
    let cut_sandbox = Sandbox::new();
    let cut = write_log(&cut_sandbox, &all[..=first_seal]);
    assert!(verify(&cut_sandbox, &[&cut]).ok().starts_with("OK: "));
    let run = with_witness(&cut);
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(run.stdout.contains("the log was cut back"), "{run:#?}");
}

#[test]
fn audit_usage_errors_name_the_problem() {
    let sandbox = Sandbox::new();
    let missing = sandbox.path().join("nope.log");
    let stderr = verify(&sandbox, &[&missing]).failed_with(1).to_owned();
    assert!(stderr.contains("nope.log"), "{stderr}");
    let log = sandbox.write("audit.log", real_log());
    let stderr = show(&sandbox, &log, &["--since", "yesterday"])
        .failed_with(1)
        .to_owned();
    assert!(stderr.contains("--since \"yesterday\""), "{stderr}");
    let run = sandbox.seashell(["serve", "--audit-log", "a.log", "--syslog", "tcp:x:1"]);
    assert!(run.failed_with(1).contains("syslog target"), "{run:#?}");
    let run = sandbox.seashell(["serve", "--syslog", "udp:x"]);
    assert!(run.failed_with(1).contains("--audit-log"), "{run:#?}");
}

#[test]
fn each_transfer_is_an_audit_event_with_its_hash() {
    let sandbox = Sandbox::new();
    let server = audited_server(&sandbox);
    let key = sandbox.fixture("client_rsa");
    let content: Vec<u8> = (0..100_000u32).map(|i| (i * 31) as u8).collect();
    let local = sandbox.path().join("payload.bin");
    fs::write(&local, &content).unwrap();
    let remote = sandbox.path().join("uploaded.bin");
    let port = server.port().to_string();
    let args = [
        "cp",
        "-i",
        key.to_str().unwrap(),
        "--host-fingerprint",
        HOST_FP,
        "-P",
        &port,
        local.to_str().unwrap(),
        &format!("127.0.0.1:{}", remote.display()),
    ];
    let run = sandbox.seashell(args);
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert_eq!(fs::read(&remote).unwrap(), content);
    assert!(server.terminate().success());
    let log = fs::read_to_string(sandbox.path().join("audit.log")).unwrap();
    let event = log
        .lines()
        .find(|l| l.contains(r#""event":"transfer""#) && l.contains(r#""sha256""#))
        .unwrap_or_else(|| panic!("no transfer end event in:\n{log}"));
    let sha256: String = seashell::crypto::sha256(&content)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(event.contains(r#""direction":"upload""#), "{event}");
    assert!(
        event.contains(&format!(r#""sha256":"{sha256}""#)),
        "{event}"
    );
    assert!(event.contains(r#""bytes_in":100000"#), "{event}");
    assert!(event.contains(&remote.display().to_string()), "{event}");

    let log = sandbox.path().join("audit.log");
    let want = format!(
        "[transfer: upload {}, 100000 bytes, sha256 {}]",
        remote.display(),
        &sha256[..12]
    );
    let table = show(&sandbox, &log, &[]).ok().to_owned();
    assert!(table.lines().any(|row| row.ends_with(&want)), "{table}");
    let found = show(&sandbox, &log, &["--grep", "uploaded.bin"])
        .ok()
        .to_owned();
    // The header, the transfer's start, and its end.
    assert_eq!(found.lines().count(), 3, "{found}");
    assert!(found.contains(&want), "{found}");
    let start = format!(
        "[transfer: upload {}, 100000 bytes, starting]",
        remote.display()
    );
    assert!(found.contains(&start), "{found}");
}

#[test]
fn a_command_exit_event_counts_its_stdin_and_output() {
    let sandbox = Sandbox::new();
    let server = audited_server(&sandbox);
    let client = client_of(&server, "client_rsa");
    let input = vec![b'x'; 100_000];
    assert_eq!(client.exec(&server, &["wc -c"], &input).ok(), "100000\n");
    let status = server.terminate();
    assert!(status.success(), "server exit: {status}");
    let exit = events(&sandbox.path().join("audit.log"))
        .into_iter()
        .find(|event| event["event"] == "exit")
        .expect("no exit event");
    assert_eq!(exit["bytes_in"], 100_000, "{exit}");
    assert_eq!(exit["bytes_out"], 7, "{exit}");
}

#[test]
fn a_client_killed_mid_output_still_leaves_the_exit_event() {
    let sandbox = Sandbox::new();
    let log = sandbox.path().join("audit.log");
    let server = audited_server(&sandbox);
    let client = client_of(&server, "client_rsa");
    for _ in 0..3 {
        let mut exec = client.spawn_exec(&server, "yes");
        let mut first = [0u8; 4];
        exec.stdout.take().unwrap().read_exact(&mut first).unwrap();
        assert_eq!(&first, b"y\ny\n");
        exec.kill().unwrap();
        let _ = exec.wait();
    }
    wait_for("three exit events", RUN_DEADLINE, || {
        fs::read_to_string(&log)
            .unwrap_or_default()
            .matches("\"event\":\"exit\"")
            .count()
            == 3
    });
    for exit in events(&log).iter().filter(|e| e["event"] == "exit") {
        // Hung up as a terminal would (SIGHUP), or killed by its broken pipe.
        let code = exit["exit"].as_i64().unwrap();
        assert!(code == 129 || code == 141, "{exit}");
        assert!(exit["bytes_out"].as_u64().unwrap() > 0, "{exit}");
    }
}

#[test]
fn a_transfer_cut_by_a_killed_client_is_an_audit_event() {
    let sandbox = Sandbox::new();
    let log = sandbox.path().join("audit.log");
    let server = audited_server(&sandbox);
    let client = client_of(&server, "client_rsa");
    let big = client.path().join("big");
    fs::File::create(&big).unwrap().set_len(1 << 30).unwrap();
    let remote = server.home().join("up");
    let local = client.path().join("down");
    let port = server.port().to_string();
    let cases = [
        (
            big.display().to_string(),
            format!("127.0.0.1:{}", remote.display()),
            &remote,
        ),
        (
            format!("127.0.0.1:{}", big.display()),
            local.display().to_string(),
            &local,
        ),
    ];
    for (from, to, target) in &cases {
        let partial = target.with_file_name(format!(
            ".{}.seashell-partial",
            target.file_name().unwrap().to_str().unwrap()
        ));
        let mut cp = client
            .command(["cp", "-P", &port, from, to])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for("the transfer to start", RUN_DEADLINE, || {
            fs::metadata(&partial).is_ok_and(|m| m.len() > 0)
        });
        cp.kill().unwrap();
        let _ = cp.wait();
    }
    // Each transfer is two events, its start and its end; the ends are the ones with a rule.
    wait_for("two transfer end events", RUN_DEADLINE, || {
        fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(r#""event":"transfer""#) && l.contains(r#""rule""#))
            .count()
            == 2
    });
    let events: Vec<serde_json::Value> = events(&log)
        .into_iter()
        .filter(|e| e["event"] == "transfer" && !e["rule"].is_null())
        .collect();
    let directions: Vec<&str> = events
        .iter()
        .map(|e| e["direction"].as_str().unwrap())
        .collect();
    assert_eq!(directions, ["upload", "download"], "{events:?}");
    for event in &events {
        assert_eq!(
            event["rule"], "the session ended before the transfer did",
            "{event}"
        );
        assert!(event["sha256"].is_null(), "{event}");
    }
}
