//! What an ssh user's fingers expect, tried with the real binary: the host-key question's
//! answers on a real pseudo-terminal, `keygen` into a directory that does not exist yet,
//! `keygen -y`, the messages for a missing identity and for a `.pub` given as one,
//! `known-hosts forget HOST` with the default port, and `user@host`.

use std::fs;

use crate::common::{
    FIXTURE_PASSPHRASE, HOST_FP, Sandbox, Server, bare_key, client_of, mode_of, pub_line,
};
use crate::terminal::{in_pty, resize, type_line};

#[test]
fn the_host_key_question_asks_again_until_yes_no_or_the_fingerprint() {
    let server = Server::shared();
    for (answers, trusted) in [
        (&["y", "maybe", "yes"][..], true),
        (
            &[
                "SHA256:D+zLkAvOTLIC+5FWgO1bqSGmFQlHjWa6DerNsTrZdck",
                HOST_FP,
            ][..],
            true,
        ),
        (&["", "no"][..], false),
    ] {
        let sandbox = Sandbox::new();
        sandbox.install_identity("client_rsa");
        let mut session = in_pty(sandbox.command(["exec", &server.dest(), "--", "echo", "in"]));
        session.exp_string("(yes/no/[fingerprint])").unwrap();
        for (i, typed) in answers.iter().enumerate() {
            type_line(&mut session, typed);
            if i + 1 < answers.len() {
                session
                    .exp_string("Please type 'yes', 'no' or the fingerprint:")
                    .unwrap();
            }
        }
        if trusted {
            session.exp_string("in").unwrap();
            assert!(
                fs::read_to_string(sandbox.known_hosts())
                    .unwrap()
                    .contains(&server.dest())
            );
        } else {
            session.exp_string("not accepted").unwrap();
            assert!(!sandbox.known_hosts().exists());
        }
        session.exp_eof().unwrap();
    }
}

#[test]
fn keygen_makes_a_missing_directory_0700_and_y_prints_the_public_line() {
    let sandbox = Sandbox::new();
    let key = sandbox.path().join("fresh/.seashell/host_rsa");
    let key = key.to_str().unwrap();
    sandbox
        .seashell(["keygen", "-b", "2048", "-f", key, "--no-passphrase"])
        .ok();
    assert_eq!(mode_of(&sandbox.path().join("fresh/.seashell")), 0o700);
    assert_eq!(mode_of(&sandbox.path().join("fresh")), 0o700);

    let client = sandbox.fixture("client_rsa");
    let out = sandbox
        .seashell(["keygen", "-y", "-f", client.to_str().unwrap()])
        .ok()
        .to_owned();
    assert_eq!(out, format!("{}\n", bare_key("client_rsa.pub")));
    // -y needs the key.
    assert_eq!(sandbox.seashell(["keygen", "-y"]).code, Some(1));
}

#[test]
fn a_missing_identity_or_a_pub_says_what_to_do() {
    let server = Server::shared();
    let client = client_of(server, "client_rsa");
    let missing = client.path().join("nokey");
    let run = client.run(
        [
            "exec",
            "-i",
            missing.to_str().unwrap(),
            &server.dest(),
            "--",
            "true",
        ],
        b"",
    );
    let want = format!(
        "no key at {0}: create one with `seashell keygen -f {0}`",
        missing.display()
    );
    assert!(run.failed_with(255).contains(&want), "{run:?}");

    let public = client.home().join("id_rsa.pub");
    fs::set_permissions(&public, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let run = client.run(
        [
            "exec",
            "-i",
            public.to_str().unwrap(),
            &server.dest(),
            "--",
            "true",
        ],
        b"",
    );
    let stderr = run.failed_with(255);
    assert!(stderr.contains("is a public key"), "{stderr}");
    assert!(!stderr.contains("chmod"), "{stderr}");
}

#[test]
fn known_hosts_forget_defaults_the_port() {
    let sandbox = Sandbox::new();
    fs::create_dir_all(sandbox.home()).unwrap();
    sandbox.pin_host("box.lan:7022", "host_rsa.pub");
    sandbox.pin_host("box.lan:2200", "host_rsa.pub");
    let run = sandbox.run(["known-hosts", "forget", "box.lan"], b"");
    assert!(
        run.ok().contains("removed 1 key(s) for box.lan:7022"),
        "{run:?}"
    );
    let left = fs::read_to_string(sandbox.known_hosts()).unwrap();
    assert!(
        left.contains("box.lan:2200") && !left.contains("box.lan:7022"),
        "{left}"
    );
}

#[test]
fn exec_takes_the_command_without_a_double_dash() {
    let server = Server::shared();
    let client = client_of(server, "client_rsa");
    let run = client.run(["exec", &server.dest(), "echo", "-n", "a", "b"], b"");
    assert_eq!(run.ok(), "a b");
    // `--` is still accepted.
    let run = client.run(["exec", &server.dest(), "--", "echo", "c"], b"");
    assert_eq!(run.ok(), "c\n");
}

/// `git clone` through `GIT_SSH_COMMAND='seashell exec'`: an alias for the server's address
/// and port (git passes only `host command`), and git's pack protocol on stdin and stdout,
/// byte for byte.
#[test]
fn git_clones_through_seashell_exec() {
    if std::process::Command::new("git")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: no git");
        return;
    }
    let server = Server::shared();
    let client = client_of(server, "client_rsa");
    fs::write(
        client.home().join("config"),
        format!(
            "[host.box]\naddress = \"127.0.0.1\"\nport = {}\n",
            server.port()
        ),
    )
    .unwrap();
    let repo = server.home().join("habits-repo");
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .env("HOME", client.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
        out
    };
    git(&["init", "-q", repo.to_str().unwrap()]);
    git(&[
        "-C",
        repo.to_str().unwrap(),
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "over seashell",
    ]);
    let cloned = client.path().join("cloned");
    let out = std::process::Command::new("git")
        .args([
            "clone",
            "-q",
            &format!("box:{}", repo.display()),
            cloned.to_str().unwrap(),
        ])
        .env(
            "GIT_SSH_COMMAND",
            format!("'{}' exec", crate::common::SEASHELL),
        )
        .env("GIT_SSH_VARIANT", "simple")
        .env("SEASHELL_HOME", client.home())
        .env("HOME", client.path())
        .output()
        .unwrap();
    fs::remove_dir_all(&repo).unwrap();
    assert!(out.status.success(), "{out:?}");
    let log = git(&["-C", cloned.to_str().unwrap(), "log", "--format=%s"]);
    assert_eq!(String::from_utf8_lossy(&log.stdout), "over seashell\n");
}

#[test]
fn v_says_what_the_client_does_and_q_silences_notices() {
    let server = Server::shared();
    let sandbox = Sandbox::new();
    sandbox.install_identity("client_rsa");
    let run = sandbox.run(
        ["exec", "-v", "--accept-new", &server.dest(), "echo", "hi"],
        b"",
    );
    assert_eq!(run.ok(), "hi\n");
    for step in [
        format!("connecting to {}", server.dest()),
        format!("connected to {}", server.dest()),
        "offering key SHA256:".to_owned(),
        "authenticated; session ".to_owned(),
    ] {
        assert!(run.stderr.contains(&step), "{step}: {}", run.stderr);
    }
    assert!(run.stderr.contains("seashell: added"), "{}", run.stderr);
    let run = sandbox.run(["exec", "-v", &server.dest(), "true"], b"");
    assert!(run.stderr.contains("is known for"), "{}", run.stderr);

    // -q: no first-contact notice, no terminal warning; errors still.
    let quiet = Sandbox::new();
    quiet.install_identity("client_rsa");
    let run = quiet.run(
        [
            "exec",
            "-q",
            "-t",
            "--accept-new",
            &server.dest(),
            "echo",
            "hi",
        ],
        b"",
    );
    assert_eq!(run.ok(), "hi\n");
    assert_eq!(run.stderr, "");
    let run = quiet.run(["exec", "-q", "-p", "1", "127.0.0.1", "true"], b"");
    assert!(run.failed_with(255).contains("cannot connect"), "{run:?}");
}

#[test]
fn every_client_command_takes_a_passphrase_file() {
    // A server of its own that trusts the encrypted key (the shared one would count the
    // failures of other keys against 127.0.0.1).
    let server = Server::start(&Sandbox::new(), &[], &pub_line("client_enc_rsa"));
    let sandbox = client_of(&server, "client_rsa");
    let key = sandbox.fixture("client_enc_rsa");
    let key = key.to_str().unwrap();
    let pass = sandbox.write("pass", &format!("{FIXTURE_PASSPHRASE}\n"));
    let pass = pass.to_str().unwrap();
    let dest = server.dest();
    let port = server.port().to_string();
    fs::write(server.home().join("x"), b"fetched").unwrap();
    let with_key = ["-i", key, "--passphrase-file", pass];
    let run = sandbox.run(
        [&["exec"][..], &with_key, &[&dest, "echo", "in"]].concat(),
        b"",
    );
    assert_eq!(run.ok(), "in\n");
    let run = sandbox.run(
        [&["connect"][..], &with_key, &[&dest]].concat(),
        b"echo console\n",
    );
    assert!(run.ok().contains("console"), "{run:?}");
    let run = sandbox.run(
        [&["cp", "-P", &port][..], &with_key, &["127.0.0.1:x", "got"]].concat(),
        b"",
    );
    run.ok();
    assert_eq!(fs::read(sandbox.path().join("got")).unwrap(), b"fetched");
    let run = sandbox.run(["exec", "-i", key, &dest, "true"], b"");
    assert!(
        run.failed_with(255).contains("no passphrase was given"),
        "{run:?}"
    );
}

#[test]
fn help_names_the_environment_and_the_exit_codes_and_missing_ssh_flags_say_why() {
    let sandbox = Sandbox::new();
    for command in ["connect", "exec", "cp"] {
        let help = sandbox.seashell([command, "--help"]).ok().to_owned();
        for needle in [
            "SEASHELL_HOME",
            "SEASHELL_PASSPHRASE",
            "Exit status:",
            "255",
        ] {
            assert!(
                help.contains(needle),
                "{command} --help lacks {needle}: {help}"
            );
        }
    }
    let verify = sandbox
        .seashell(["audit", "verify", "--help"])
        .ok()
        .to_owned();
    assert!(
        verify.contains("Exit status:") && verify.contains("2 intact but not sealed"),
        "{verify}"
    );
    let serve = sandbox.seashell(["serve", "--help"]).ok().to_owned();
    assert!(serve.contains("Default: 0.0.0.0:7022"), "{serve}");

    let run = sandbox.seashell(["exec", "-L", "8080:localhost:80", "box", "true"]);
    assert_eq!(
        run.failed_with(1),
        "seashell: -L: seashell does not forward ports; use ssh for tunnels\n"
    );
    let run = sandbox.seashell(["exec", "--jsn", "box", "true"]);
    let err = run.failed_with(1);
    assert!(
        err.contains("'--json'") && !err.contains("use '--"),
        "{err}"
    );
}

#[test]
fn the_progress_bar_fits_80_columns_with_a_percentage_and_the_file_name() {
    let server = Server::shared();
    let client = client_of(server, "client_rsa");
    let deep = client
        .path()
        .join("a-rather-long-directory-name/and-another-one-below-it");
    fs::create_dir_all(&deep).unwrap();
    fs::write(deep.join("report.bin"), vec![7u8; 4 << 20]).unwrap();
    let target = format!("127.0.0.1:{}/", server.home().display());
    let port = server.port().to_string();
    let mut session = in_pty(client.command([
        "cp",
        "-r",
        "-P",
        &port,
        "a-rather-long-directory-name",
        &target,
    ]));
    resize(&session, 24, 80);
    let out = session.exp_eof().unwrap();
    let copied = server.home().join("a-rather-long-directory-name");
    assert!(copied.exists(), "{out:?}");
    fs::remove_dir_all(copied).unwrap();
    // rexpect reads the terminal as Latin-1, and drops the cursor moves between redraws.
    let out = out.replace("\u{e2}\u{80}\u{a6}", "…");
    let bars: Vec<&str> = out
        .split(['\r', '\n'])
        .flat_map(|segment| segment.split_inclusive(']'))
        .collect();
    let last = bars
        .iter()
        .rfind(|bar| bar.contains("report.bin"))
        .unwrap_or_else(|| panic!("no bar for report.bin: {out:?}"));
    assert!(last.contains("100%"), "{last:?}");
    assert!(
        last.contains("…/report.bin"),
        "the name is shortened in the middle: {last:?}"
    );
    let columns = last.chars().count();
    assert!(columns <= 80, "{columns} columns: {last:?}");
    assert!(
        bars.iter()
            .any(|bar| bar.starts_with("total") && bar.contains("100%")),
        "{out:?}"
    );
}

#[test]
fn user_at_host_is_the_servers_own_account_or_refused_naming_it() {
    let sandbox = Sandbox::new();
    let server = Server::start(&sandbox, &[], &pub_line("client_rsa"));
    let client = client_of(&server, "client_rsa");
    let me = Server::account();
    let at = |user: &str| format!("{user}@{}", server.dest());
    assert_eq!(
        client.run(["exec", &at(&me), "echo", "in"], b"").ok(),
        "in\n"
    );

    let refused = client.run(["exec", &at("nobody-here"), "echo", "ran"], b"");
    let err = refused.failed_with(255);
    assert!(
        err.contains(&format!("runs every session as `{me}`, not `nobody-here`")),
        "{err}"
    );
    assert!(!refused.stdout_text().contains("ran"));
    assert!(
        server
            .wait_for_log(|log| log.contains("asked for account `nobody-here`"))
            .contains("refused")
    );
    // -l wins over DEST's user, as in ssh.
    let run = client.run(["exec", "-l", "nobody-here", &at(&me), "true"], b"");
    run.failed_with(255);
    let run = client.run(["exec", "-l", &me, &at("nobody-here"), "echo", "l"], b"");
    assert_eq!(run.ok(), "l\n");
    // cp takes user@host:path; a refused account copies nothing. A refusal is no failed
    // authentication: no penalty for the source, the next connection is served.
    let file = client.write("f.txt", "data\n");
    let file = file.to_str().unwrap();
    let port = server.port().to_string();
    let cp = |user: &str| {
        let dest = format!("{user}@127.0.0.1:got.txt");
        client.run(["cp", "-P", &port, file, &dest], b"")
    };
    let err = cp("nobody-here").failed_with(255).to_owned();
    assert!(err.contains("not `nobody-here`"), "{err}");
    assert!(!server.home().join("got.txt").exists());
    cp(&me).ok();
    assert_eq!(
        fs::read_to_string(server.home().join("got.txt")).unwrap(),
        "data\n"
    );
    // A user that is no account name is the client's own error (255 like a bad DEST, as in
    // ssh; 1 in cp, where a bad path is a usage error).
    let err = client
        .run(["exec", "a b@box", "true"], b"")
        .failed_with(255)
        .to_owned();
    assert!(err.contains("`a b` is not a user name"), "{err}");
    let err = client
        .run(["cp", file, "a b@box:x"], b"")
        .failed_with(1)
        .to_owned();
    assert!(err.contains("`a b` is not a user name"), "{err}");
}
