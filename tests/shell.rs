//! The console as a shell on the other end: each line runs in the server user's own shell
//! with the session's state carried from line to line, no console word shadows a command,
//! multi-line blocks run as one command, the prompt is the server's user, host and cwd, and
//! Tab asks the server. Real `seashell connect` in a real pseudo-terminal (rexpect) against
//! the real `seashell serve` on 127.0.0.1; script mode and `exec` through pipes.

use std::fs;
use std::path::Path;

use rexpect::session::PtySession;

use crate::common::{Sandbox, Server, client_of, pub_line};
use crate::terminal::{exit_repl, repl, repl_of, type_keys, type_line};

/// Types `line` and waits for the prompt `prompt` after its output; returns that output.
fn run_line(repl: &mut PtySession, line: &str, prompt: &str) -> String {
    type_line(repl, line);
    repl.exp_string(line).unwrap();
    repl.exp_string(prompt).unwrap()
}

/// Whether `output` has a line that is exactly `want` (terminal line ends trimmed).
fn has_line(output: &str, want: &str) -> bool {
    output
        .lines()
        .any(|line| line.trim_end_matches('\r') == want)
}

/// A server in its own sandbox, logging to `audit.log` there, trusting `client_rsa`.
fn audited(sandbox: &Sandbox) -> Server {
    Server::start(
        sandbox,
        &["--audit-log", "audit.log"],
        &pub_line("client_rsa"),
    )
}

/// The `command` events of the audit log at `path`, as their lines.
fn audited_lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["event"] == "command")
        .filter_map(|e| e["command"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn variables_exported_or_not_carry_to_the_next_line() {
    let (_client, mut repl, home) = repl();
    run_line(&mut repl, "export SEEN=exported", &home);
    run_line(&mut repl, "LOCAL=plain", &home);
    let out = run_line(&mut repl, "echo \"$SEEN-$LOCAL\"", &home);
    assert!(has_line(&out, "exported-plain"), "{out:?}");
    // Exported reaches a child process; the plain one does not.
    let out = run_line(&mut repl, "sh -c 'echo \"[$SEEN][$LOCAL]\"'", &home);
    assert!(has_line(&out, "[exported][]"), "{out:?}");
    exit_repl(repl);
}

#[test]
fn the_status_of_the_last_line_is_dollar_question_mark() {
    let (_client, mut repl, home) = repl();
    run_line(&mut repl, "false", &home);
    let out = run_line(&mut repl, "echo status=$?", &home);
    assert!(has_line(&out, "status=1"), "{out:?}");
    exit_repl(repl);
}

#[test]
fn an_alias_and_a_function_defined_on_one_line_work_on_the_next() {
    let (_client, mut repl, home) = repl();
    run_line(&mut repl, "alias greet='echo hello-from-alias'", &home);
    run_line(&mut repl, "twice() { echo \"$1$1\"; }", &home);
    let out = run_line(&mut repl, "greet", &home);
    assert!(has_line(&out, "hello-from-alias"), "{out:?}");
    let out = run_line(&mut repl, "twice ab", &home);
    assert!(has_line(&out, "abab"), "{out:?}");
    exit_repl(repl);
}

#[test]
fn cd_dash_goes_back_and_the_prompt_follows() {
    let server = Server::shared();
    let (_client, mut repl, home) = repl();
    run_line(&mut repl, "cd /tmp", &server.prompt("/tmp"));
    run_line(&mut repl, "cd /etc", &server.prompt("/etc"));
    let out = run_line(&mut repl, "cd -", &server.prompt("/tmp"));
    assert!(has_line(&out, "/tmp"), "{out:?}");
    run_line(&mut repl, "cd ~", &home);
    exit_repl(repl);
}

#[test]
fn cd_into_a_quoted_directory_with_a_space() {
    let server = Server::shared();
    let (_client, mut repl, home) = repl();
    let dir = server.home().join("dir with space");
    fs::create_dir_all(&dir).unwrap();
    let prompt = server.prompt(&dir.display().to_string());
    assert!(prompt.contains(":~/dir with space"), "{prompt}");
    run_line(&mut repl, "cd \"$HOME/dir with space\"", &prompt);
    let out = run_line(&mut repl, "pwd", &prompt);
    assert!(has_line(&out, &dir.display().to_string()), "{out:?}");
    run_line(&mut repl, "cd", &home);
    exit_repl(repl);
}

#[test]
fn cd_in_a_compound_line_carries() {
    let server = Server::shared();
    let (_client, mut repl, _home) = repl();
    let out = run_line(&mut repl, "cd /etc && pwd", &server.prompt("/etc"));
    assert!(has_line(&out, "/etc"), "{out:?}");
    let out = run_line(&mut repl, "cd /usr; pwd", &server.prompt("/usr"));
    assert!(has_line(&out, "/usr"), "{out:?}");
    exit_repl(repl);
}

#[test]
fn exec_cd_and_pwd_prints_the_directory_like_ssh() {
    let server = Server::shared();
    let client = client_of(server, "client_rsa");
    assert_eq!(client.exec(server, &["cd /tmp && pwd"], b"").ok(), "/tmp\n");
    // Each exec starts at home again.
    assert_eq!(
        client.exec(server, &["pwd"], b"").ok(),
        format!("{}\n", server.home().display())
    );
}

#[test]
fn whoami_and_pwd_are_the_servers_commands() {
    let server = Server::shared();
    let client = client_of(server, "client_rsa");
    let user = nix::unistd::User::from_uid(nix::unistd::geteuid())
        .unwrap()
        .unwrap()
        .name;
    assert_eq!(
        client.exec(server, &["whoami"], b"").ok(),
        format!("{user}\n")
    );
    let upper = server.home().display().to_string().to_uppercase();
    assert_eq!(
        client.exec(server, &["pwd | tr a-z A-Z"], b"").ok(),
        format!("{upper}\n")
    );
    let (_client, mut repl, home) = repl();
    let out = run_line(&mut repl, "whoami", &home);
    assert!(has_line(&out, &user), "{out:?}");
    exit_repl(repl);
}

#[test]
fn a_for_loop_typed_line_by_line_runs_as_one_command_and_one_audit_event() {
    let sandbox = Sandbox::new();
    let server = audited(&sandbox);
    let (_client, mut repl, home) = repl_of(&server, &[]);
    type_line(&mut repl, "for i in 1 2 3; do");
    repl.exp_string("> ").unwrap();
    type_line(&mut repl, "echo n$i");
    repl.exp_string("> ").unwrap();
    type_line(&mut repl, "done");
    let out = repl.exp_string(&home).unwrap();
    for n in ["n1", "n2", "n3"] {
        assert!(has_line(&out, n), "{out:?}");
    }
    exit_repl(repl);
    server.terminate();
    let lines = audited_lines(&sandbox.path().join("audit.log"));
    assert!(
        lines.contains(&"for i in 1 2 3; do\necho n$i\ndone".to_owned()),
        "{lines:?}"
    );
    assert!(!lines.iter().any(|l| l == "echo n$i"), "{lines:?}");
}

#[test]
fn a_pasted_heredoc_runs_as_one_command() {
    let sandbox = Sandbox::new();
    let server = audited(&sandbox);
    let (_client, mut repl, home) = repl_of(&server, &[]);
    // Pasted in one go, as a terminal without bracketed paste delivers it.
    type_keys(
        &mut repl,
        "cat > heredoc.txt <<EOF\rfirst line\rsecond line\rEOF\r",
    );
    repl.exp_string(&home).unwrap();
    exit_repl(repl);
    assert_eq!(
        fs::read_to_string(server.home().join("heredoc.txt")).unwrap(),
        "first line\nsecond line\n"
    );
    server.terminate();
    let lines = audited_lines(&sandbox.path().join("audit.log"));
    assert!(
        lines.contains(&"cat > heredoc.txt <<EOF\nfirst line\nsecond line\nEOF".to_owned()),
        "{lines:?}"
    );
    assert!(!lines.iter().any(|l| l == "first line"), "{lines:?}");
}

#[test]
fn output_without_a_final_newline_is_shown_and_marked() {
    let (_client, mut repl, home) = repl();
    type_line(&mut repl, "printf x");
    repl.exp_string("printf x").unwrap();
    let out = repl.exp_string(&home).unwrap();
    // Marked as zsh marks it (a reverse-video `%`, its escapes stripped here), then a new line.
    assert!(out.contains("x%\r"), "{out:?}");
    exit_repl(repl);
}

#[test]
fn exit_3_ends_the_session_with_3() {
    let (_client, mut repl, home) = repl();
    run_line(&mut repl, "true", &home);
    type_line(&mut repl, "exit 3");
    repl.exp_eof().unwrap();
    let status = repl.process().wait().unwrap();
    assert!(
        matches!(status, rexpect::process::WaitStatus::Exited(_, 3)),
        "{status:?}"
    );
}

#[test]
fn a_line_whose_shell_does_not_come_back_ends_the_session_with_its_status() {
    let (_client, mut repl, home) = repl();
    type_line(&mut repl, "[ -f /no/such/file ] || exit 7");
    let _ = home;
    repl.exp_eof().unwrap();
    let status = repl.process().wait().unwrap();
    assert!(
        matches!(status, rexpect::process::WaitStatus::Exited(_, 7)),
        "{status:?}"
    );
}

#[test]
fn the_prompt_is_the_servers_user_host_and_cwd_with_hash_for_root() {
    let server = Server::shared();
    let (_client, repl, home) = repl();
    let root = nix::unistd::geteuid().is_root();
    assert!(home.ends_with(if root { ":~# " } else { ":~$ " }), "{home}");
    let host = nix::unistd::gethostname().unwrap();
    let host = host.to_str().unwrap().split('.').next().unwrap().to_owned();
    assert!(home.contains(&format!("@{host}:")), "{home}");
    assert_eq!(home, server.prompt(&server.home().display().to_string()));
    exit_repl(repl);
}

#[test]
fn tab_completes_a_remote_command_and_a_remote_path() {
    let server = Server::shared();
    let dir = server.home().join("completion-dir");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("unique-remote-file.txt"), "x").unwrap();
    let (_client, mut repl, home) = repl();
    // A command from the remote PATH: `seashell-unlikely-x` does not exist; `uname` does.
    type_keys(&mut repl, "unam\t");
    repl.exp_string("uname ").unwrap();
    type_keys(&mut repl, "-s\r");
    repl.exp_string(&home).unwrap();
    type_keys(&mut repl, "cat completion-dir/uniq\t");
    repl.exp_string("unique-remote-file.txt ").unwrap();
    type_keys(&mut repl, "\r");
    repl.exp_string(&home).unwrap();
    exit_repl(repl);
}

#[test]
fn a_program_that_prints_the_state_format_changes_nothing() {
    let sandbox = Sandbox::new();
    let server = audited(&sandbox);
    let (_client, mut repl, home) = repl_of(&server, &[]);
    let fake = r"printf 'seashell-state\0000\000/etc\000\000cd /etc\000end\000'; (exit 5)";
    run_line(&mut repl, fake, &home);
    let out = run_line(&mut repl, "echo was=$?; pwd", &home);
    assert!(has_line(&out, "was=5"), "{out:?}");
    assert!(
        has_line(&out, &server.home().display().to_string()),
        "{out:?}"
    );
    exit_repl(repl);
    server.terminate();
    let log = fs::read_to_string(sandbox.path().join("audit.log")).unwrap();
    assert!(log.contains(r#""exit":5"#), "{log}");
}

#[test]
fn script_mode_runs_multi_line_groups_and_carries_state() {
    let server = Server::shared();
    let client = client_of(server, "client_rsa");
    let script = b"cd /tmp\nX=1\nfor i in a b; do\n  echo $i$X\ndone\npwd\nexit 4\necho never\n";
    let run = client.run(["connect", &server.dest()], script);
    assert_eq!(run.failed_with(4), "");
    assert_eq!(run.stdout_text(), "a1\nb1\n/tmp\n");
}

#[test]
fn the_login_profile_sets_the_first_state_and_its_banner_is_shown_once() {
    let sandbox = Sandbox::new();
    sandbox.write(
        ".profile",
        "echo welcome-banner-line\nexport FROM_PROFILE=yes\nalias ll='echo long-listing'\n",
    );
    let server = Server::start(&sandbox, &[], &pub_line("client_rsa"));
    let client = client_of(&server, "client_rsa");
    let run = client.run(
        ["connect", &server.dest()],
        b"echo profile=$FROM_PROFILE\necho again\n",
    );
    assert_eq!(
        run.ok(),
        "welcome-banner-line\nprofile=yes\nagain\n",
        "the banner once, then the state the profile set"
    );
    // exec runs non-login, as sshd does: no banner, no profile.
    assert_eq!(
        client
            .exec(&server, &["echo \"[$FROM_PROFILE]\""], b"")
            .ok(),
        "[]\n"
    );
}

#[test]
fn a_profile_that_replaces_the_shell_leaves_a_plain_state_and_says_why() {
    let sandbox = Sandbox::new();
    sandbox.write(".profile", "export LOST=yes\nexec true\n");
    let server = Server::start(&sandbox, &[], &pub_line("client_rsa"));
    let client = client_of(&server, "client_rsa");
    let run = client.run(["connect", &server.dest()], b"echo \"[$LOST]\"; pwd\n");
    assert_eq!(
        run.stdout_text(),
        format!("[]\n{}\n", server.home().display())
    );
    assert!(
        run.stderr.contains("without coming back") && run.stderr.contains("plain state"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_restricted_key_has_no_cd_and_is_offered_only_its_commands() {
    let sandbox = Sandbox::new();
    let line = format!(r#"allow="uname *",allow="id" {}"#, pub_line("client_rsa"));
    let server = Server::start(&sandbox, &[], &line);
    fs::write(server.home().join("unamed-file"), "x").unwrap();
    let (_client, mut repl, home) = repl_of(&server, &[]);
    // No console word shadows a command: `cd`, `pwd` and `help` are the policy's to refuse.
    for line in ["cd /tmp", "pwd", "help"] {
        let out = run_line(&mut repl, line, &home);
        assert!(out.contains("denied"), "{line}: {out:?}");
    }
    // Tab offers `uname` (an allowed word), never the file `unamed-file`.
    type_keys(&mut repl, "una\t");
    repl.exp_string("uname ").unwrap();
    type_keys(&mut repl, "-s\r");
    let out = repl.exp_string(&home).unwrap();
    assert!(out.contains("Linux"), "{out:?}");
    type_line(&mut repl, "exit 5");
    repl.exp_eof().unwrap();
    let status = repl.process().wait().unwrap();
    assert!(
        matches!(status, rexpect::process::WaitStatus::Exited(_, 5)),
        "{status:?}"
    );
}

#[test]
fn the_last_progress_line_of_put_is_not_drawn_over_by_the_prompt() {
    let server = Server::shared();
    let (client, mut repl, home) = repl();
    let local = client.write("progress-source.txt", "some bytes to copy\n");
    let remote = server.home().join("progress-copy.txt");
    type_line(
        &mut repl,
        &format!("put {} {}", local.display(), remote.display()),
    );
    let out = repl.exp_string(&home).unwrap();
    // The full bar, then a line end before the prompt (which clears the line it starts on).
    let last_bar = out.rfind("100%       19 B").expect("the finished bar");
    assert!(out[last_bar..].contains("]\r\n"), "{out:?}");
    assert_eq!(fs::read(&remote).unwrap(), b"some bytes to copy\n");
    exit_repl(repl);
}
