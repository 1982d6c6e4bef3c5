//! The identity agent, with the real binary: `eval "$(seashell agent)"`'s output and `-k`,
//! `add` with a passphrase once and then `exec` with no prompt and no passphrase anywhere,
//! `add -l`, `-d`, `-D`, a lifetime that ends, the choice of key among several, and the
//! agent's refusals: another uid's connection, and anything to sign but a ClientAuth input;
//! a certificate added with its key and presented from the agent alone.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use seashell::agent::client::{Agent, AgentError};
use seashell::keys::cert::{CertFields, CertKind, Certificate, unix_now};
use seashell::keys::private::load_public_key_file;
use seashell::proto::handshake::CLIENT_SIGNATURE_LABEL;

use crate::certs::{ca_line, serve};
use crate::common::{
    FIXTURE_PASSPHRASE, SEASHELL, Sandbox, Server, client_of, fingerprints_in, pub_line, wait_for,
};
use crate::policy::audit_events;
use crate::proto::fixture_key;

/// An agent run in the foreground (`agent -D -a SOCKET`) for one test, its log in a file;
/// stopped when dropped.
struct RunningAgent {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
}

impl RunningAgent {
    fn start(sandbox: &Sandbox) -> Self {
        let socket = sandbox.path().join("agent.sock");
        let log = sandbox.path().join("agent.log");
        let child = sandbox
            .command(["agent", "-D", "-s", "-a"])
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        wait_for("the agent's socket", Duration::from_secs(10), || {
            socket.exists()
        });
        Self { child, socket, log }
    }

    fn env(&self) -> (&'static str, &str) {
        ("SEASHELL_AUTH_SOCK", self.socket.to_str().unwrap())
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for RunningAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client of `server` whose identity is the encrypted fixture.
fn encrypted_client(server: &Server) -> Sandbox {
    let client = client_of(server, "client_enc_rsa");
    client.write("pass", FIXTURE_PASSPHRASE);
    client
}

#[test]
fn one_passphrase_in_add_then_exec_asks_for_none() {
    let sandbox = Sandbox::new();
    let server = Server::start(&sandbox, &[], &pub_line("client_enc_rsa"));
    let client = encrypted_client(&server);
    let agent = RunningAgent::start(&client);
    let env = [agent.env()];
    let exec = |words: &[&str]| {
        let mut args = vec!["exec", "-q"];
        let dest = server.dest();
        args.push(&dest);
        args.extend_from_slice(words);
        client.seashell_with_env(args, &env)
    };
    // Without the key in the agent, a script has no passphrase: the file's error.
    let err = exec(&["true"]).failed_with(255).to_owned();
    assert!(err.contains("no passphrase was given"), "{err}");

    let listed = client.seashell_with_env(["add", "-l"], &env);
    assert_eq!(listed.code, Some(1), "{listed:#?}");
    assert!(listed.stdout.contains("no keys"), "{listed:#?}");
    let added = client.seashell_with_env(["add", "--passphrase-file", "pass"], &env);
    added.ok();
    assert!(added.stderr.contains("Key added"), "{added:#?}");
    assert!(added.stderr.contains("test-enc"), "{added:#?}");

    assert_eq!(
        exec(&["echo", "from", "the", "agent"]).ok(),
        "from the agent\n"
    );
    // Several at once, as a deploy loop runs them: one key, no prompt, each its own session.
    let runs: Vec<_> = (0..4)
        .map(|i| {
            client
                .command(["exec", "-q", &server.dest(), "echo", &format!("n{i}")])
                .env("SEASHELL_AUTH_SOCK", &agent.socket)
                .stdin(Stdio::null())
                .output()
                .unwrap()
        })
        .collect();
    for (i, run) in runs.iter().enumerate() {
        assert_eq!(String::from_utf8_lossy(&run.stdout), format!("n{i}\n"));
    }
    assert!(
        agent
            .log()
            .contains("signed a ClientAuth with key test-enc")
    );

    let listed = client.seashell_with_env(["add", "-l"], &env);
    let (key, _) = load_public_key_file(&client.home().join("id_rsa.pub")).unwrap();
    let fingerprint = seashell::keys::public::fingerprint(&key);
    assert_eq!(fingerprints_in(listed.ok()), [fingerprint]);
    assert!(listed.stdout.starts_with("2048 "), "{listed:#?}");

    // Removed: the file again, and its passphrase error.
    client.seashell_with_env(["add", "-d"], &env).ok();
    exec(&["true"]).failed_with(255);
    client
        .seashell_with_env(["add", "--passphrase-file", "pass"], &env)
        .ok();
    client.seashell_with_env(["add", "-D"], &env).ok();
    exec(&["true"]).failed_with(255);
}

#[test]
fn add_gives_the_agent_the_keys_certificate_which_is_presented_without_any_file() {
    let sandbox = Sandbox::new();
    // Only the CA is trusted: the key alone gets nowhere.
    let server = serve(&sandbox, &ca_line(r#"cert-authority,principals="ann""#));
    let client = encrypted_client(&server);
    let agent = RunningAgent::start(&client);
    let env = [agent.env()];
    let home = client.home();
    let cert_file = home.join("id_rsa-cert.pub");
    // The encrypted fixture's public half, certified for "ann" by the fixture CA.
    let write_cert = |key: &str, serial| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/{key}.pub"));
        let (public_key, _) = load_public_key_file(&path).unwrap();
        let fields = CertFields {
            kind: CertKind::User,
            key: public_key,
            name: "ann".into(),
            serial,
            valid_after: unix_now() - 60,
            valid_before: unix_now() + 3600,
            options: String::new(),
        };
        let cert = Certificate::issue(&fixture_key("ca_rsa"), fields).unwrap();
        fs::write(&cert_file, cert.to_line("ann@laptop") + "\n").unwrap();
    };
    // Moves the key, its .pub and its certificate away, so that only the agent has them.
    let hide = || {
        for name in ["id_rsa", "id_rsa.pub", "id_rsa-cert.pub"] {
            let _ = fs::rename(home.join(name), client.path().join(name));
        }
    };
    let unhide = || {
        for name in ["id_rsa", "id_rsa.pub"] {
            fs::rename(client.path().join(name), home.join(name)).unwrap();
        }
    };
    let exec = || client.seashell_with_env(["exec", &server.dest(), "echo", "certified"], &env);

    // A certificate of another key beside it: the key is added alone, with a warning.
    write_cert("client_rsa", 41);
    let added = client.seashell_with_env(["add", "--passphrase-file", "pass"], &env);
    added.ok();
    assert!(
        added.stderr.contains("not adding certificate") && added.stderr.contains("certifies key"),
        "{added:#?}"
    );
    assert!(!added.stderr.contains("Certificate added"), "{added:#?}");
    hide();
    exec().failed_with(255);
    unhide();

    // Its own certificate: added with it, listed, and presented with no file left.
    write_cert("client_enc_rsa", 42);
    let added = client.seashell_with_env(["add", "--passphrase-file", "pass"], &env);
    added.ok();
    assert!(
        added.stderr.contains("Certificate added") && added.stderr.contains("ann, serial 42"),
        "{added:#?}"
    );
    let listed = client.seashell_with_env(["add", "-l"], &env);
    assert!(
        listed
            .ok()
            .contains("    certificate: ann, serial 42, valid until "),
        "{listed:#?}"
    );
    hide();
    assert_eq!(exec().ok(), "certified\n");

    let status = server.terminate();
    assert!(status.success(), "{status}");
    let events = audit_events(&sandbox);
    let ok: Vec<_> = events.iter().filter(|e| e["event"] == "auth_ok").collect();
    assert_eq!(ok.len(), 1, "{events:#?}");
    assert_eq!(ok[0]["cert_name"], "ann");
    assert_eq!(ok[0]["cert_serial"], 42);
}

#[test]
fn a_key_added_for_a_lifetime_is_forgotten_when_it_ends() {
    let client = Sandbox::new();
    client.install_identity("client_enc_rsa");
    client.write("pass", FIXTURE_PASSPHRASE);
    let agent = RunningAgent::start(&client);
    let env = [agent.env()];
    let added = client.seashell_with_env(["add", "-t", "2s", "--passphrase-file", "pass"], &env);
    assert!(added.ok().is_empty());
    assert!(added.stderr.contains("Lifetime set to 2s"), "{added:#?}");
    let listed = client.seashell_with_env(["add", "-l"], &env);
    assert!(listed.ok().contains("(expires in"), "{listed:#?}");
    wait_for("the key to expire", Duration::from_secs(20), || {
        agent.log().contains("expired and were forgotten")
    });
    let listed = client.seashell_with_env(["add", "-l"], &env);
    assert_eq!(listed.code, Some(1), "{listed:#?}");
    // A lifetime that is no duration is a usage error.
    let bad = client.seashell_with_env(["add", "-t", "soon"], &env);
    assert_eq!(bad.code, Some(1), "{bad:#?}");
}

#[test]
fn with_several_keys_the_named_or_default_one_is_offered_else_the_choice_is_asked_for() {
    let sandbox = Sandbox::new();
    let server = Server::start(&sandbox, &[], &pub_line("client_rsa"));
    let client = client_of(&server, "client_rsa");
    let agent = RunningAgent::start(&client);
    let env = [agent.env()];
    let other = client.fixture("other_rsa");
    fs::copy(
        crate::common::fixture_path("other_rsa.pub"),
        client.path().join("other_rsa.pub"),
    )
    .unwrap();
    let default = client.home().join("id_rsa");
    client
        .seashell_with_env(["add", other.to_str().unwrap()], &env)
        .ok();
    // The agent's only key is offered (it is not the authorized one: refused).
    let run = client.seashell_with_env(["exec", "-v", &server.dest(), "true"], &env);
    assert!(run.stderr.contains("the agent's only key"), "{run:#?}");
    run.failed_with(255);
    // The default identity, once the agent holds it too, wins.
    client
        .seashell_with_env(["add", default.to_str().unwrap()], &env)
        .ok();
    let run = client.seashell_with_env(["exec", "-v", &server.dest(), "echo", "ok"], &env);
    assert_eq!(run.ok(), "ok\n");
    assert!(run.stderr.contains("the default identity"), "{run:#?}");
    // Without the default in it, and with two keys, nothing says which: the client asks.
    client
        .seashell_with_env(["add", "-d", default.to_str().unwrap()], &env)
        .ok();
    let third = client.path().join("third");
    fs::copy(&default, &third).unwrap();
    fs::set_permissions(&third, fs::Permissions::from_mode(0o600)).unwrap();
    client
        .seashell_with_env(["add", third.to_str().unwrap()], &env)
        .ok();
    fs::rename(
        client.home().join("id_rsa.pub"),
        client.path().join("away.pub"),
    )
    .unwrap();
    let err = client
        .seashell_with_env(["exec", &server.dest(), "true"], &env)
        .failed_with(255)
        .to_owned();
    assert!(err.contains("the agent holds 2 keys"), "{err}");
    assert!(err.contains("-i KEY"), "{err}");
    assert!(err.contains("test-other"), "{err}");
}

#[test]
fn the_agent_signs_nothing_but_a_client_auth_and_serves_no_other_uid() {
    let client = Sandbox::new();
    client.install_identity("client_rsa");
    let agent = RunningAgent::start(&client);
    client.seashell_with_env(["add"], &[agent.env()]).ok();
    let (key, _) = load_public_key_file(&client.home().join("id_rsa.pub")).unwrap();
    let library = Agent::at(&agent.socket);
    let good = [CLIENT_SIGNATURE_LABEL, &[9; 32]].concat();
    assert!(library.sign(&key, &good).is_ok());
    let mut server_label = good.clone();
    server_label[11..17].copy_from_slice(b"server");
    for data in [&server_label[..], b"any other message"] {
        match library.sign(&key, data) {
            Err(AgentError::Refused(why)) => assert!(why.contains("only a seashell ClientAuth")),
            other => panic!("{other:?}"),
        }
    }

    if !nix::unistd::geteuid().is_root() {
        eprintln!("not root: the other-uid case needs root to run a client as nobody; skipped");
        return;
    }
    // Open the way for nobody (the directory and socket modes would stop it first): the
    // agent's own check is what must refuse it.
    let binary = client.path().join("seashell");
    fs::copy(SEASHELL, &binary).unwrap();
    for (path, mode) in [
        (client.path(), 0o755),
        (&*binary, 0o755),
        (&*agent.socket, 0o666),
    ] {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }
    let run = Command::new(&binary)
        .args(["add", "-l"])
        .env("SEASHELL_AUTH_SOCK", &agent.socket)
        .env("SEASHELL_HOME", "/nonexistent")
        .uid(65534)
        .gid(65534)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(255), "{run:?}");
    assert!(String::from_utf8_lossy(&run.stdout).is_empty());
    wait_for("the agent's refusal", Duration::from_secs(10), || {
        agent.log().contains("refused a connection from uid 65534")
    });
}

#[test]
fn eval_agent_prints_the_environment_and_k_stops_it_leaving_nothing() {
    let client = Sandbox::new();
    let tmp = client.path().join("tmp");
    fs::create_dir(&tmp).unwrap();
    let started = client
        .command(["agent", "-s"])
        .env("TMPDIR", &tmp)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(started.status.success(), "{started:?}");
    let out = String::from_utf8(started.stdout).unwrap();
    let value = |name: &str| -> String {
        let prefix = format!("{name}=");
        let line = out.lines().find(|l| l.starts_with(&prefix)).unwrap();
        assert!(line.ends_with(&format!("; export {name};")), "{out}");
        line[prefix.len()..line.find(';').unwrap()].to_owned()
    };
    let socket = PathBuf::from(value("SEASHELL_AUTH_SOCK"));
    let pid = value("SEASHELL_AGENT_PID");
    assert!(out.contains(&format!("echo Agent pid {pid};")), "{out}");
    let dir = socket.parent().unwrap().to_owned();
    assert!(dir.starts_with(&tmp), "{}", dir.display());
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&socket), 0o600);
    // It runs detached, and answers.
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    let listed = client.seashell_with_env(
        ["add", "-l"],
        &[("SEASHELL_AUTH_SOCK", socket.to_str().unwrap())],
    );
    assert_eq!(listed.code, Some(1), "{listed:#?}");

    let csh = client.seashell_with_env(["agent", "-k", "-c"], &[("SEASHELL_AGENT_PID", &pid)]);
    assert_eq!(
        csh.ok(),
        format!(
            "unsetenv SEASHELL_AUTH_SOCK;\nunsetenv SEASHELL_AGENT_PID;\necho Agent pid {pid} killed;\n"
        )
    );
    wait_for("the agent to clean up", Duration::from_secs(10), || {
        !dir.exists()
    });
    let err = client.seashell(["agent", "-k"]).failed_with(255).to_owned();
    assert!(err.contains("SEASHELL_AGENT_PID is not set"), "{err}");
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}
