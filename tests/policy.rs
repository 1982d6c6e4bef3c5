//! Per-key policy end to end, with the real binary and real files: a restricted key
//! (`allow=`) cannot escape into a shell with `;`, `|`, `&&`, `$()`, backticks, `>` or a
//! newline, runs `command="NAME"` entries from the config's `[commands]`, and runs every line
//! in its home whatever `cd` it tries; `from=` and `expires=` are enforced; a key removed from
//! authorized_keys is refused to new sessions once the file changes, and after SIGHUP; a bad
//! config, or a number out of its range, names the file, the line, the key and the range;
//! authorized_keys that group or others could write (the file, or its directory, sticky or
//! not) stops `serve` at start and, when it becomes so later, fails closed until fixed.
//! Every refusal reaches the client as a clear message and a non-zero exit, and the audit log
//! as a `denied` event naming the rule (a refused line) or in the failure summary (a key
//! refused before its session).

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use crate::common::{RawRun, Sandbox, Server, client_of, pub_line};

/// A config for quick refusals, with an audit log and named commands.
const CONFIG: &str = r#"auth_failure_delay_ms = 0
auth_penalty_secs = 0
audit_log = "audit.log"

[commands]
greet = ["echo", "named", "command;", "$(id)"]
"#;

/// `OPTIONS <fixture's .pub line>`.
fn with_options(options: &str, fixture: &str) -> String {
    format!("{options} {}", pub_line(fixture))
}

/// Starts a server with [`CONFIG`] and `authorized_keys`.
fn serve(sandbox: &Sandbox, authorized_keys: &str) -> Server {
    sandbox.write("policy.toml", CONFIG);
    Server::start(sandbox, &["--config", "policy.toml"], authorized_keys)
}

/// The audit log's events (after the server stopped), as JSON (`audit.log` in `sandbox`).
pub(crate) fn audit_events(sandbox: &Sandbox) -> Vec<serde_json::Value> {
    fs::read_to_string(sandbox.path().join("audit.log"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The `rule` of every `denied` event.
fn denied_rules(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["event"] == "denied")
        .map(|e| {
            e["rule"]
                .as_str()
                .unwrap_or_else(|| panic!("a denied event without a rule: {e}"))
                .to_owned()
        })
        .collect()
}

/// Asserts a run was refused at authentication: exit 255 and the client's message.
fn assert_refused(run: &RawRun, case: &str) {
    assert_eq!(run.code, Some(255), "{case}: {run:#?}");
    assert!(
        run.stderr.contains("authentication refused by the server"),
        "{case}: {run:#?}"
    );
}

/// Asserts a run was refused by the key's policy: exit 126, "denied" and `rule` on stderr.
fn assert_denied(run: &RawRun, rule: &str, case: &str) {
    assert_eq!(run.code, Some(126), "{case}: {run:#?}");
    assert!(
        run.stderr.contains("denied") && run.stderr.contains(rule),
        "{case}: {run:#?}"
    );
    assert!(run.stdout.is_empty(), "{case}: {run:#?}");
}

#[test]
fn restricted_keys_cannot_escape_into_a_shell() {
    let sandbox = Sandbox::new();
    // `command=` may be given once per key: a second restricted key names an undefined one.
    let keys = with_options(r#"allow="echo *",command="greet""#, "client_rsa")
        + &with_options(r#"command="missing""#, "other_rsa");
    let server = serve(&sandbox, &keys);
    let client = client_of(&server, "client_rsa");
    let other = client_of(&server, "other_rsa");
    let as_key = |key: &str| if key == "other_rsa" { &other } else { &client };
    let marker = |n: u32| sandbox.path().join(format!("marker-{n}"));
    let m = |n: u32| marker(n).display().to_string();
    // (line, what echo prints: every metacharacter as literal text)
    let cases = [
        (
            format!("echo hi; touch {}", m(1)),
            format!("hi; touch {}\n", m(1)),
        ),
        (
            format!("echo hi | touch {}", m(2)),
            format!("hi | touch {}\n", m(2)),
        ),
        (
            format!("echo hi && touch {}", m(3)),
            format!("hi && touch {}\n", m(3)),
        ),
        (
            format!("echo $(touch {})", m(4)),
            format!("$(touch {})\n", m(4)),
        ),
        (
            format!("echo `touch {}`", m(5)),
            format!("`touch {}`\n", m(5)),
        ),
        (format!("echo hi > {}", m(6)), format!("hi > {}\n", m(6))),
        // A newline separates words, never commands.
        (
            format!("echo hi\ntouch {}", m(7)),
            format!("hi touch {}\n", m(7)),
        ),
        (
            format!("echo hi || touch {} & touch {}", m(8), m(8)),
            format!("hi || touch {} & touch {}\n", m(8), m(8)),
        ),
        (
            format!("echo 'quoted; words' \"$HOME\" < {}", m(9)),
            format!("quoted; words $HOME < {}\n", m(9)),
        ),
    ];
    for (line, echoed) in &cases {
        let run = client.exec(&server, &[line.as_str()], b"");
        assert_eq!(run.ok(), echoed.as_str(), "{line:?}");
    }
    for n in 1..=9 {
        assert!(!marker(n).exists(), "{} was created", m(n));
    }

    // Lines that match no pattern: refused, nothing runs.
    let refusals = [
        ("client_rsa", "id".to_owned(), "allow="),
        ("client_rsa", format!("touch {}", m(10)), "allow="),
        ("client_rsa", format!("sh -c 'touch {}'", m(10)), "allow="),
        (
            "client_rsa",
            format!("echo 'unclosed; touch {}", m(10)),
            "allow=",
        ),
        ("client_rsa", format!("  ; touch {}", m(10)), "allow="),
        ("client_rsa", "missing".to_owned(), "allow="),
        ("other_rsa", "missing".to_owned(), "command="),
        ("other_rsa", format!("echo hi; touch {}", m(10)), "allow="),
        ("other_rsa", "greet".to_owned(), "allow="),
    ];
    for (key, line, rule) in &refusals {
        assert_denied(
            &as_key(key).exec(&server, &[line.as_str()], b""),
            rule,
            line,
        );
    }
    assert!(!marker(10).exists());

    // A named command runs its argv from the config, no shell.
    assert_eq!(
        client.exec(&server, &["greet"], b"").ok(),
        "named command; $(id)\n"
    );
    // `exit N` ends the session with N.
    client.exec(&server, &["exit 9"], b"").failed_with(9);

    let status = server.terminate();
    assert!(status.success(), "server exit: {status}");
    let events = audit_events(&sandbox);
    let rules = denied_rules(&events);
    assert_eq!(rules.len(), refusals.len(), "{rules:#?}");
    for ((_, line, rule), logged) in refusals.iter().zip(&rules) {
        assert!(logged.starts_with(rule), "{line:?}: {logged:?}");
    }
    let denied_lines: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "denied")
        .filter_map(|e| e["command"].as_str())
        .collect();
    let expected: Vec<&str> = refusals.iter().map(|(_, line, _)| line.as_str()).collect();
    assert_eq!(denied_lines, expected);
}

#[test]
fn from_and_expires_are_enforced() {
    let sandbox = Sandbox::new();
    let refused = with_options(r#"from="10.0.0.0/8,192.168.0.0/16""#, "client_rsa")
        + &with_options(r#"expires="2000-01-01""#, "other_rsa");
    let server = serve(&sandbox, &refused);
    let client = client_of(&server, "client_rsa");
    let other = client_of(&server, "other_rsa");
    let run = client.exec(&server, &["echo in"], b"");
    assert_refused(&run, "from= 10.0.0.0/8 from 127.0.0.1");
    let run = other.exec(&server, &["echo in"], b"");
    assert_refused(&run, "expires= 2000-01-01");

    // The same keys, now allowed: a file change takes effect for new sessions.
    let allowed = with_options(r#"from="10.0.0.0/8,127.0.0.1/32""#, "client_rsa")
        + &with_options(r#"expires="2999-12-31""#, "other_rsa");
    rewrite(&sandbox.path().join("authorized_keys"), &allowed);
    assert_eq!(client.exec(&server, &["echo in"], b"").ok(), "in\n");
    assert_eq!(other.exec(&server, &["echo in"], b"").ok(), "in\n");

    // Both options on one key: each must hold.
    let both = with_options(r#"from="127.0.0.0/8",expires="2000-01-01""#, "client_rsa")
        + &with_options(r#"expires="2999-12-31",from="10.0.0.1/32""#, "other_rsa");
    rewrite(&sandbox.path().join("authorized_keys"), &both);
    assert_refused(&client.exec(&server, &["echo in"], b""), "expired, from ok");
    assert_refused(&other.exec(&server, &["echo in"], b""), "valid, from wrong");

    let log = server.log();
    let status = server.terminate();
    assert!(status.success(), "server exit: {status}");
    // Refusals before a session are not `denied` lines: they are counted in the failure
    // summary, each proven key named with the rule that refused it.
    let events = audit_events(&sandbox);
    assert!(denied_rules(&events).is_empty(), "{events:#?}");
    let summary = events
        .iter()
        .find(|e| e["event"] == "auth_fail")
        .expect("a failure summary");
    assert_eq!(summary["failures"], 4, "{summary}");
    let refused = summary["sources"][0]["refused"].as_array().unwrap();
    let rules: Vec<&str> = refused
        .iter()
        .map(|r| r["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules.len(), 4, "{rules:#?}");
    assert!(rules[0].starts_with("from=") && rules[0].contains("127.0.0.1"));
    assert!(rules[1].starts_with("expires=") && rules[1].contains("2000-01-01"));
    assert!(rules[2].starts_with("expires="), "{rules:#?}");
    assert!(rules[3].starts_with("from="), "{rules:#?}");
    assert!(log.contains("refused: from="), "{log}");
}

/// Replaces `path`'s contents in place, making sure the change is visible to a stat: a new
/// size, and an mtime that moved forward.
fn rewrite(path: &Path, contents: &str) {
    let before = fs::metadata(path).unwrap();
    assert_ne!(before.len(), contents.len() as u64, "pick a different size");
    fs::write(path, contents).unwrap();
    let file = fs::File::options().write(true).open(path).unwrap();
    let later = before.modified().unwrap() + Duration::from_secs(2);
    file.set_modified(later.max(SystemTime::now())).unwrap();
}

/// Two keys authorized and used (a client each), and authorized_keys text without `client_rsa`.
fn revocation(sandbox: &Sandbox) -> (Server, [Sandbox; 2], String) {
    let both = pub_line("client_rsa") + &pub_line("other_rsa");
    let server = serve(sandbox, &both);
    let client = client_of(&server, "client_rsa");
    let other = client_of(&server, "other_rsa");
    assert_eq!(client.exec(&server, &["echo before"], b"").ok(), "before\n");
    assert_eq!(other.exec(&server, &["echo before"], b"").ok(), "before\n");
    (server, [client, other], pub_line("other_rsa"))
}

#[test]
fn a_removed_key_is_refused_once_the_file_changes() {
    let sandbox = Sandbox::new();
    let (server, [client, other], remaining) = revocation(&sandbox);
    rewrite(&sandbox.path().join("authorized_keys"), &remaining);
    assert_refused(&client.exec(&server, &["echo after"], b""), "removed key");
    assert_eq!(other.exec(&server, &["echo after"], b"").ok(), "after\n");
    server.wait_for_log(|log| log.contains("authorized keys reloaded"));
}

#[test]
fn a_removed_key_is_refused_after_sighup() {
    let sandbox = Sandbox::new();
    let (server, [client, other], remaining) = revocation(&sandbox);
    // Rewrite it so that a stat sees no change (same inode, size and mtime): only the
    // signal can make the server read it again.
    let path = sandbox.path().join("authorized_keys");
    let before = fs::metadata(&path).unwrap();
    let padding = before.len() as usize - remaining.len();
    let blanked = format!("#{}\n{remaining}", "-".repeat(padding - 2));
    assert_eq!(blanked.len() as u64, before.len());
    let mut file = fs::File::options().write(true).open(&path).unwrap();
    std::io::Write::write_all(&mut file, blanked.as_bytes()).unwrap();
    file.set_modified(before.modified().unwrap()).unwrap();
    drop(file);
    assert_eq!(fs::read_to_string(&path).unwrap(), blanked);
    // Not reloaded yet: the server cannot tell the file changed.
    assert_eq!(client.exec(&server, &["echo stale"], b"").ok(), "stale\n");

    let reloads = |log: &str| log.matches("authorized keys reloaded").count();
    let seen = reloads(&server.log());
    server.hangup();
    let deadline = Instant::now() + Duration::from_secs(30);
    while reloads(&server.log()) == seen {
        assert!(
            Instant::now() < deadline,
            "no reload after SIGHUP: {}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(server.log().contains("SIGHUP"));
    assert_refused(&client.exec(&server, &["echo after"], b""), "removed key");
    assert_eq!(other.exec(&server, &["echo after"], b"").ok(), "after\n");
}

#[test]
fn config_errors_name_the_key_and_its_line() {
    let sandbox = Sandbox::new();
    let cases = [
        (
            "listen = \"127.0.0.1:0\"\n# a comment\nmax_sesions = 4\n",
            "bad.toml:3: max_sesions = 4: unknown field `max_sesions`",
        ),
        (
            "max_sessions = 3\n\nlisten = \"nowhere\"\n",
            "bad.toml:3: listen = \"nowhere\": ",
        ),
        (
            "max_sessions = 3\nkeepalive_secs = \"often\"\n",
            "bad.toml:2: keepalive_secs = \"often\": ",
        ),
        (
            "auth_failure_delay_ms = 0\n\n[commands]\nsurprise = 4\n",
            "bad.toml:4: surprise = 4: ",
        ),
        (
            "keepalive_secs = 0\n",
            "bad.toml:1: keepalive_secs = 0 is out of range (1 to 86400 seconds)",
        ),
        (
            "max_sessions = 3\nkeepalive_secs = 18446744073709551615\n",
            "bad.toml:2: keepalive_secs = 18446744073709551615 is out of range (1 to 86400 seconds)",
        ),
        (
            "handshake_timeout_secs = 5\nhello_timeout_secs = 6\n",
            "bad.toml:2: hello_timeout_secs: 6 is more than handshake_timeout_secs = 5 (line 1)",
        ),
        (
            "[commands]\nnothing = []\n",
            "bad.toml:2: commands: `nothing` has an empty argv",
        ),
    ];
    for (text, expected) in cases {
        sandbox.write("bad.toml", text);
        let run = sandbox.seashell(["serve", "--config", "bad.toml"]);
        let stderr = run.failed_with(1);
        assert!(stderr.contains(expected), "{text:?}: {stderr}");
        assert!(!stderr.contains("listening on"), "{text:?}: {stderr}");
    }
    let run = sandbox.seashell(["serve", "--audit-max-bytes", "1099511627777"]);
    let stderr = run.failed_with(1);
    assert!(
        stderr.contains("--audit-max-bytes") && stderr.contains("1024..=1099511627776"),
        "{stderr}"
    );
}

#[test]
fn a_restricted_key_runs_its_lines_in_its_home_whatever_cd_it_tries() {
    use std::os::unix::fs::PermissionsExt as _;
    let sandbox = Sandbox::new();
    let keys = with_options(r#"allow="./report.sh",allow="cd *""#, "client_rsa");
    let server = serve(&sandbox, &keys);
    let script = |dir: &Path, text: &str| {
        fs::create_dir_all(dir).unwrap();
        let path = dir.join("report.sh");
        fs::write(&path, format!("#!/bin/sh\necho {text} in \"$PWD\"\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    };
    let home = server.home().to_owned();
    let elsewhere = home.join("elsewhere");
    script(&home, "home-report");
    script(&elsewhere, "wrong-report");
    let client = client_of(&server, "client_rsa");
    // `cd` is no console word for a restricted key: it is a line like any other, and even
    // allowed (`cd *`) it is no program that could move the session.
    let lines = format!(
        "cd {}\n./report.sh\ncd elsewhere\n./report.sh\n",
        elsewhere.display()
    );
    let run = client.run(["connect", &server.dest()], lines.as_bytes());
    let expected = format!("home-report in {}\n", home.display());
    assert_eq!(run.stdout_text(), expected.repeat(2), "{run:#?}");
    assert!(!run.stdout_text().contains("wrong-report"), "{run:#?}");
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// `seashell serve` trusting `authorized_keys` (a path in `sandbox`), expected to refuse to
/// start: its stderr. (A server that starts instead is killed after the run deadline.)
fn serve_refuses(sandbox: &Sandbox, authorized_keys: &Path) -> String {
    let host_key = sandbox.fixture("host_rsa");
    let run = sandbox.run(
        [
            "serve".as_ref(),
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--host-key".as_ref(),
            host_key.as_os_str(),
            "--authorized-keys".as_ref(),
            authorized_keys.as_os_str(),
        ],
        b"",
    );
    let stderr = run.failed_with(255).to_owned();
    assert!(!stderr.contains("listening on"), "{stderr}");
    stderr
}

#[test]
fn serve_refuses_a_group_writable_authorized_keys() {
    let sandbox = Sandbox::new();
    let path = sandbox.write("authorized_keys", &pub_line("client_rsa"));
    chmod(&path, 0o664);
    let stderr = serve_refuses(&sandbox, &path);
    let shown = path.display();
    assert!(
        stderr.contains(&format!("{shown}: the file has mode 0664")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("run `chmod go-w {shown}`")),
        "{stderr}"
    );
}

#[test]
fn serve_refuses_authorized_keys_in_a_world_writable_directory() {
    let sandbox = Sandbox::new();
    let dir = sandbox.path().join("shared");
    fs::create_dir(&dir).unwrap();
    let path = dir.join("authorized_keys");
    fs::write(&path, pub_line("client_rsa")).unwrap();
    chmod(&path, 0o644);
    for (mode, fix) in [
        (0o777, format!("run `chmod go-w {}`", dir.display())),
        // Sticky, like /tmp: refused all the same (as sshd does).
        (
            0o1777,
            "to a directory that only its owner can write".to_owned(),
        ),
    ] {
        chmod(&dir, mode);
        let stderr = serve_refuses(&sandbox, &path);
        assert!(
            stderr.contains(&format!(
                "{}: the directory holding {} has mode {mode:04o}",
                dir.display(),
                path.display()
            )),
            "{stderr}"
        );
        assert!(stderr.contains(&fix), "{stderr}");
    }
    chmod(&dir, 0o755);
}

#[test]
fn authorized_keys_made_group_writable_fails_closed_until_fixed() {
    let sandbox = Sandbox::new();
    let server = Server::start(&sandbox, &[], &pub_line("client_rsa"));
    let client = client_of(&server, "client_rsa");
    assert_eq!(client.exec(&server, &["echo before"], b"").ok(), "before\n");
    let path = sandbox.path().join("authorized_keys");
    // Only the mode changes: same contents, size, mtime and inode.
    chmod(&path, 0o664);
    assert_refused(
        &client.exec(&server, &["echo during"], b""),
        "group-writable",
    );
    server.wait_for_log(|log| {
        log.contains(&format!("{}: the file has mode 0664", path.display()))
            && log.contains("refusing every key until it is fixed")
    });
    chmod(&path, 0o644);
    assert_eq!(client.exec(&server, &["echo after"], b"").ok(), "after\n");
}
