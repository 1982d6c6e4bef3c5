//! The two crypto providers against each other: a client built with one against a server
//! built with the other, both ways, over 127.0.0.1. The build under test is one provider;
//! the other is a second build of seashell that `.ci/run` makes and names in
//! `SEASHELL_OTHER_PROVIDER_BIN`, so this test is ignored in a plain `cargo test` and run
//! by CI with `--ignored`.

use std::fs;
use std::path::PathBuf;
use std::process::Stdio;

use crate::common::{Run, Sandbox, Server, client_of, pub_line};

/// The provider a build names in `--version`.
fn provider_of(sandbox: &Sandbox) -> String {
    let run = sandbox.seashell(["--version"]);
    let version = run.ok().trim().to_owned();
    version
        .split("crypto provider: ")
        .nth(1)
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("no provider in `{version}`"))
        .to_owned()
}

/// A command, an exit code and a 3 MiB file each way between `server` and `client`.
fn talk(server: &Server, client: &Sandbox) {
    let run = client.exec(server, &["echo hello from $0; exit 3"], b"");
    assert_eq!(run.code, Some(3), "{run:?}");
    assert!(
        String::from_utf8_lossy(&run.stdout).starts_with("hello from"),
        "{run:?}"
    );

    let data: Vec<u8> = (0..3 << 20).map(|i: u32| (i * 7 % 251) as u8).collect();
    fs::write(client.path().join("up"), &data).unwrap();
    let port = server.port().to_string();
    let cp = |from: &str, to: &str| -> Run {
        client
            .command(["cp", "-P", &port, from, to])
            .stdin(Stdio::null())
            .output()
            .unwrap()
            .into()
    };
    cp("up", "127.0.0.1:up").ok();
    assert_eq!(fs::read(server.home().join("up")).unwrap(), data);
    cp("127.0.0.1:up", "down").ok();
    assert_eq!(fs::read(client.path().join("down")).unwrap(), data);
}

#[test]
#[ignore = "needs the other provider's build in SEASHELL_OTHER_PROVIDER_BIN (.ci/run runs it)"]
fn each_provider_talks_to_the_other() {
    let other = PathBuf::from(
        std::env::var_os("SEASHELL_OTHER_PROVIDER_BIN")
            .expect("SEASHELL_OTHER_PROVIDER_BIN: the other crypto provider's seashell binary"),
    );
    let ours = provider_of(&Sandbox::new());
    let theirs = provider_of(&Sandbox::new().using(&other));
    assert_ne!(ours, theirs, "both binaries were built with {ours}");

    let server = Server::start(&Sandbox::new(), &[], &pub_line("client_rsa"));
    talk(&server, &client_of(&server, "client_rsa").using(&other));

    let server = Server::start(&Sandbox::new().using(&other), &[], &pub_line("client_rsa"));
    let log = server.log();
    assert!(log.contains(&format!("crypto=\"{theirs}\"")), "{log}");
    talk(&server, &client_of(&server, "client_rsa"));
}
