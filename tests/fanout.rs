//! `seashell exec -g GROUP -H HOST… COMMAND`: the real binary against several real servers
//! on 127.0.0.1 (each its own process), named through a client configuration the test
//! writes: prefixed whole lines, the summary, the exit codes 0/4/255, `--json`, `--parallel
//! 1`'s order, `--timeout`, unknown and refused hosts, Ctrl-C, and one passphrase prompt for
//! an encrypted identity.

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::Stdio;

use rexpect::session::{Options, spawn_with_options};

use crate::common::{RUN_DEADLINE, RawRun, Sandbox, Server, pub_line};

/// `n` servers trusting `client_rsa`, and a client sandbox with its identity, every server's
/// host key pinned and a configuration naming them `web1`… with a group `web` of them all.
fn fleet(n: usize) -> (Vec<Server>, Sandbox) {
    fleet_trusting(n, &pub_line("client_rsa"))
}

/// [`fleet`], the servers trusting `authorized_keys`.
fn fleet_trusting(n: usize, authorized_keys: &str) -> (Vec<Server>, Sandbox) {
    let servers: Vec<Server> = (0..n)
        .map(|_| Server::start(&Sandbox::new(), &[], authorized_keys))
        .collect();
    let client = Sandbox::new();
    client.install_identity("client_rsa");
    let mut config = String::new();
    for (i, server) in servers.iter().enumerate() {
        client.pin_host(&server.dest(), "host_rsa.pub");
        config += &format!(
            "[host.web{}]\naddress = \"127.0.0.1\"\nport = {}\n",
            i + 1,
            server.port()
        );
    }
    let names: Vec<String> = (1..=n).map(|i| format!("\"web{i}\"")).collect();
    config += &format!("[group]\nweb = [{}]\n", names.join(", "));
    client.write("config", &config);
    (servers, client)
}

/// `seashell exec -F config ARGS`.
fn fan_out(client: &Sandbox, args: &[&str]) -> RawRun {
    let mut all = vec!["exec", "-F", "config"];
    all.extend_from_slice(args);
    client.run(all, b"")
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn every_host_runs_the_command_and_its_lines_come_whole_and_prefixed() {
    let (_servers, client) = fleet(3);
    // Each line is written in three pieces, so that the hosts' pieces would mix if lines were
    // not kept whole.
    let line = "for i in $(seq 1 200); do printf 'line-%s' $i; printf '%s' -mid; printf '%s\\n' -end; \
                done; echo oops >&2; printf tail";
    let run = fan_out(&client, &["-g", "web", "--", line]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let stdout = run.stdout_text();
    for host in ["web1", "web2", "web3"] {
        let mine: Vec<&str> = stdout
            .lines()
            .filter_map(|l| l.strip_prefix(&format!("{host}: ")))
            .collect();
        let mut want: Vec<String> = (1..=200).map(|i| format!("line-{i}-mid-end")).collect();
        want.push("tail".into());
        assert_eq!(mine, want, "{host}");
        assert!(
            run.stderr.contains(&format!("{host}: oops\n")),
            "{}",
            run.stderr
        );
    }
    assert_eq!(stdout.lines().count(), 3 * 201, "{stdout}");
    assert!(
        run.stderr.ends_with("3 hosts: 3 ok\n"),
        "the summary: {}",
        run.stderr
    );

    let bare = fan_out(
        &client,
        &["-H", "web1,web2", "--no-prefix", "echo", "plain"],
    );
    assert_eq!(bare.stdout_text(), "plain\nplain\n", "{bare:?}");
}

#[test]
fn a_failed_command_exits_4_and_an_unreachable_host_255() {
    let (_servers, client) = fleet(2);
    let one_fails = fan_out(&client, &["-g", "web", "--parallel", "1", "--", "exit 2"]);
    assert_eq!(one_fails.code, Some(4), "{one_fails:?}");
    assert!(
        one_fails
            .stderr
            .contains("2 hosts: 0 ok, 2 failed (web1: exit 2, web2: exit 2)\n"),
        "{}",
        one_fails.stderr
    );
    assert!(one_fails.stderr.contains("web1: failed: exit 2\n"));

    let closed = format!("127.0.0.1:{}", closed_port());
    let run = fan_out(&client, &["-g", "web", "-H", &closed, "--", "true"]);
    assert_eq!(run.code, Some(255), "{run:?}");
    assert!(
        run.stderr.contains(&format!(
            "3 hosts: 2 ok; 1 unreachable ({closed}: connection refused)\n"
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!(
            "{closed}: unreachable: cannot connect to {closed}"
        )),
        "{}",
        run.stderr
    );
}

#[test]
fn an_unknown_host_key_is_never_asked_about_and_a_refused_key_is_unreachable() {
    let (servers, client) = fleet(1);
    // Not pinned: unreachable, with how to pin it, and no question even on a terminal.
    let unknown = Server::start(&Sandbox::new(), &[], &pub_line("client_rsa"));
    // Authorizes another key: ours is refused.
    let refusing = Server::start(&Sandbox::new(), &[], &pub_line("other_rsa"));
    client.pin_host(&refusing.dest(), "host_rsa.pub");
    let hosts = format!("{},{},web1", unknown.dest(), refusing.dest());
    let run = fan_out(&client, &["-H", &hosts, "--", "echo", "ran"]);
    assert_eq!(run.code, Some(255), "{run:?}");
    assert_eq!(run.stdout_text(), "web1: ran\n");
    assert!(
        run.stderr.contains(&format!(
            "3 hosts: 1 ok; 2 unreachable ({}: unknown host key, {}: authentication refused)",
            unknown.dest(),
            refusing.dest()
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!(
            "pin it first with `seashell connect {}`",
            unknown.dest()
        )),
        "{}",
        run.stderr
    );
    // --accept-new pins it, as for one host.
    let accepted = fan_out(&client, &["-H", &unknown.dest(), "--accept-new", "true"]);
    assert_eq!(accepted.code, Some(0), "{accepted:?}");
    let known = std::fs::read_to_string(client.known_hosts()).unwrap();
    assert!(known.contains(&unknown.dest()), "{known}");
    drop(servers);
}

#[test]
fn json_is_one_object_per_host_with_the_exec_schema() {
    let (_servers, client) = fleet(2);
    let closed = format!("127.0.0.1:{}", closed_port());
    let run = fan_out(
        &client,
        &[
            "-g",
            "web",
            "-H",
            &closed,
            "--json",
            "--parallel",
            "1",
            "--",
            "printf '\\377\\376'; echo fine >&2; kill -9 $$",
        ],
    );
    assert_eq!(run.code, Some(255), "{run:?}");
    let objects: Vec<serde_json::Value> = run
        .stdout_text()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(objects.len(), 3, "{run:?}");
    let members = [
        "host",
        "address",
        "exit",
        "signal",
        "stdout",
        "stdout_encoding",
        "stderr",
        "stderr_encoding",
        "duration_ms",
        "error",
    ];
    for object in &objects {
        let keys: Vec<&String> = object.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), members.len(), "{object}");
        for member in members {
            assert!(object.get(member).is_some(), "{member} in {object}");
        }
    }
    let web1 = &objects[0];
    assert_eq!(web1["host"], "web1");
    assert_eq!(web1["exit"], serde_json::Value::Null);
    assert_eq!(web1["signal"], 9);
    assert_eq!(web1["stdout"], "//4=");
    assert_eq!(web1["stdout_encoding"], "base64");
    assert_eq!(web1["stderr"], "fine\n");
    assert_eq!(web1["stderr_encoding"], "utf-8");
    assert_eq!(web1["error"], serde_json::Value::Null);
    assert!(web1["duration_ms"].is_u64());
    assert_eq!(objects[1]["host"], "web2");
    let unreachable = &objects[2];
    assert_eq!(unreachable["host"], closed.as_str());
    assert_eq!(unreachable["address"], closed.as_str());
    assert_eq!(unreachable["stdout"], serde_json::Value::Null);
    assert!(
        unreachable["error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot connect")),
        "{unreachable}"
    );
}

#[test]
fn parallel_1_runs_the_hosts_in_the_order_given() {
    let (_servers, client) = fleet(3);
    let run = fan_out(
        &client,
        &[
            "-H",
            "web3",
            "-g",
            "web",
            "--parallel",
            "1",
            "--",
            "echo a; echo b",
        ],
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    // Groups first, then -H; web3 once.
    assert_eq!(
        run.stdout_text(),
        "web1: a\nweb1: b\nweb2: a\nweb2: b\nweb3: a\nweb3: b\n"
    );
}

#[test]
fn a_host_past_its_timeout_failed() {
    let (_servers, client) = fleet(2);
    let run = fan_out(
        &client,
        &[
            "-g",
            "web",
            "--timeout",
            "1",
            "--",
            "echo started; sleep 60",
        ],
    );
    assert_eq!(run.code, Some(4), "{run:?}");
    assert!(
        run.stderr.contains(
            "2 hosts: 0 ok, 2 failed (web1: timed out after 1 s, web2: timed out after 1 s)"
        ),
        "{}",
        run.stderr
    );
    assert!(run.stdout_text().contains("web1: started\n"), "{run:?}");
}

#[test]
fn ctrl_c_interrupts_every_host_and_a_second_gives_up() {
    let (_servers, client) = fleet(2);
    for (line, presses, code, reason) in [
        (
            "trap 'echo got-int; exit 7' INT; echo ready; sleep 60 & wait",
            1,
            4,
            "exit 7",
        ),
        (
            "trap 'echo ignored' INT; echo ready; while :; do sleep 1; done",
            2,
            130,
            "interrupted",
        ),
    ] {
        let mut child = client
            .command(["exec", "-F", "config", "-g", "web", "--", line])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut seen = String::new();
        while seen.matches("ready").count() < 2 {
            assert_ne!(stdout.read_line(&mut seen).unwrap(), 0, "{seen}");
        }
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        for _ in 0..presses {
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
            if presses > 1 {
                while seen.matches("ignored").count() < 2 {
                    assert_ne!(stdout.read_line(&mut seen).unwrap(), 0, "{seen}");
                }
            }
        }
        stdout.read_to_string(&mut seen).unwrap();
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "{seen} {stderr}");
        assert!(
            stderr.contains(&format!("(web1: {reason}, web2: {reason})")),
            "{stderr}"
        );
        if presses == 1 {
            assert_eq!(seen.matches("got-int").count(), 2, "{seen}");
        }
    }
}

#[test]
fn an_encrypted_identity_is_asked_for_once_for_every_host() {
    let (_servers, client) = fleet_trusting(3, &pub_line("client_enc_rsa"));
    let key = client.fixture("client_enc_rsa");
    let mut command = client.command(["exec", "-F", "config", "-i"]);
    command.arg(&key).args(["-g", "web", "--", "echo", "in"]);
    let options = Options::new().timeout_ms(Some(RUN_DEADLINE.as_millis() as u64 / 2));
    let mut session = spawn_with_options(command, options).unwrap();
    session.exp_string("Enter passphrase for").unwrap();
    session.send_line("correct horse battery staple").unwrap();
    let shown = session.exp_eof().unwrap();
    assert_eq!(shown.matches("Enter passphrase").count(), 0, "{shown}");
    for host in ["web1", "web2", "web3"] {
        assert!(shown.contains(&format!("{host}: in")), "{shown}");
    }
    assert!(shown.contains("3 hosts: 3 ok"), "{shown}");
}
