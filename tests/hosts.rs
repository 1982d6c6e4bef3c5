//! The client configuration end to end: host aliases in `$SEASHELL_HOME/config` (or `-F`)
//! used by the real `exec` and `cp` against the shared server on 127.0.0.1, flags winning
//! over the file, `seashell config show`, and errors that name the file and line.

use std::fs;

use crate::common::{HOST_FP, Sandbox, Server};

/// A sandbox whose client key is only at `keys/ops_rsa` (no default identity, no
/// known_hosts), with `config` written to `$SEASHELL_HOME/config`.
fn with_config(config: &str) -> Sandbox {
    let sandbox = Sandbox::new();
    fs::create_dir_all(sandbox.home()).unwrap();
    fs::create_dir_all(sandbox.path().join("keys")).unwrap();
    let key = sandbox.fixture("client_rsa");
    fs::rename(&key, sandbox.path().join("keys/ops_rsa")).unwrap();
    fs::write(sandbox.home().join("config"), config).unwrap();
    sandbox
}

/// An alias for the shared server: its address, port, the client key and the pin.
fn alias_for(server: &Server) -> String {
    format!(
        "[defaults]\nidentity = \"~/keys/ops_rsa\"\n\n\
         [host.box]\naddress = \"127.0.0.1\"\nport = {}\nfingerprint = \"{HOST_FP}\"\n",
        server.port()
    )
}

#[test]
fn an_alias_brings_its_address_port_identity_and_pin() {
    let server = Server::shared();
    let sandbox = with_config(&alias_for(server));
    let run = sandbox.run(["exec", "box", "--", "echo", "via", "alias"], b"");
    assert_eq!(run.ok(), "via alias\n");
    // Pinned by the file: nothing was asked or recorded.
    assert!(!sandbox.known_hosts().exists());

    // cp takes the alias as its host.
    fs::write(sandbox.path().join("up.txt"), b"copied by alias").unwrap();
    let target = format!("box:{}/", server.home().display());
    sandbox.seashell(["cp", "up.txt", &target]).ok();
    let landed = server.home().join("up.txt");
    assert_eq!(fs::read(&landed).unwrap(), b"copied by alias");
    fs::remove_file(landed).unwrap();
}

#[test]
fn flags_win_over_the_file() {
    let server = Server::shared();
    let sandbox = with_config(&alias_for(server));
    // -p: the file's port is not used.
    let run = sandbox.run(["exec", "-p", "1", "box", "--", "true"], b"");
    assert!(
        run.failed_with(255)
            .contains("cannot connect to 127.0.0.1:1"),
        "{run:?}"
    );
    // A wrong pinned fingerprint on the command line wins over the file's right one.
    let wrong = "SHA256:D+zLkAvOTLIC+5FWgO1bqSGmFQlHjWa6DerNsTrZdck";
    let run = sandbox.run(
        ["exec", "--host-fingerprint", wrong, "box", "--", "true"],
        b"",
    );
    assert!(run.failed_with(255).contains("not the pinned"), "{run:?}");
    // -i wins over the file's identity (moved away: the file's would fail).
    let moved = sandbox.path().join("moved_rsa");
    fs::rename(sandbox.path().join("keys/ops_rsa"), &moved).unwrap();
    let run = sandbox.run(
        ["exec", "-i", moved.to_str().unwrap(), "box", "echo", "i"],
        b"",
    );
    assert_eq!(run.ok(), "i\n");
    let run = sandbox.run(["exec", "box", "true"], b"");
    assert!(run.failed_with(255).contains("no key at"), "{run:?}");
}

#[test]
fn config_show_prints_each_setting_and_where_it_came_from() {
    let server = Server::shared();
    let sandbox = with_config(&alias_for(server));
    let config = sandbox.home().join("config");
    let config = config.display();
    let out = sandbox.seashell(["config", "show", "box"]).ok().to_owned();
    let home = sandbox.path().display().to_string();
    let want = format!(
        "address = 127.0.0.1  # {config}:5 [host.box]\n\
         port = {}  # {config}:6 [host.box]\n\
         user = none (the server's own account)  # default\n\
         identity = {home}/keys/ops_rsa  # {config}:2 [defaults]\n\
         certificate = {home}/keys/ops_rsa-cert.pub, if there is one  # default\n\
         fingerprint = {HOST_FP}  # {config}:7 [host.box]\n\
         known_hosts = {}  # default\n",
        server.port(),
        sandbox.known_hosts().display()
    );
    assert_eq!(out, want);

    // A name the file does not know is an address, as typed.
    let out = sandbox
        .seashell(["config", "show", "10.0.0.9:7100"])
        .ok()
        .to_owned();
    assert!(
        out.starts_with("address = 10.0.0.9  # command line\nport = 7100  # command line\n"),
        "{out}"
    );
}

#[test]
fn another_file_with_f_and_errors_naming_the_file_and_line() {
    let server = Server::shared();
    let sandbox = with_config("");
    let other = sandbox.write("team.toml", &alias_for(server));
    let run = sandbox.run(
        [
            "exec",
            "-F",
            other.to_str().unwrap(),
            "box",
            "--",
            "echo",
            "team",
        ],
        b"",
    );
    assert_eq!(run.ok(), "team\n");

    let bad = sandbox.write(
        "bad.toml",
        "[host.box]\naddress = \"127.0.0.1\"\nprot = 7022\n",
    );
    let run = sandbox.run(
        ["exec", "-F", bad.to_str().unwrap(), "box", "--", "true"],
        b"",
    );
    let err = run.failed_with(255);
    assert!(
        err.contains(&format!(
            "{}:3: prot = 7022: unknown field `prot`",
            bad.display()
        )),
        "{err}"
    );
    let missing = sandbox.path().join("missing.toml");
    let run = sandbox.run(
        ["exec", "-F", missing.to_str().unwrap(), "box", "--", "true"],
        b"",
    );
    assert!(run.failed_with(255).contains("cannot read"), "{run:?}");
}
