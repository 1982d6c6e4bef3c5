//! Strangers before authentication, against the real server over 127.0.0.1: silent
//! connections never lock a client out (they are displaced, then dropped at the hello
//! deadline), every failed authentication gets the same answer and no name reaches the audit
//! log without proof of possession, and a source that keeps failing is refused for a while.

use std::io::Read as _;
use std::net::TcpStream;
use std::time::Duration;

use seashell::crypto::{PrivateKey, PublicKey};
use seashell::keys::public::{fingerprint, to_line};
use seashell::proto::handshake::client::ClientSigner;
use seashell::proto::{ExitStatus, Message, ProtoError, UpdateLimits};
use seashell::transport::{self, TransportError};

use crate::common::{Sandbox, Server, client_of, count_lines, pub_line};
use crate::proto::fixture_key;

/// A handshake as a client would make it with `signer`, from the library; the result the
/// client sees.
fn handshake(server: &Server, signer: &impl ClientSigner) -> Result<(), TransportError> {
    pipelined(server, signer, "", None).map(|_| ())
}

/// A handshake asking for `account`, with `line`'s Exec in the same flight as ClientAuth,
/// as `seashell exec` sends it; the command's status, when it ran.
pub(crate) fn pipelined(
    server: &Server,
    signer: &impl ClientSigner,
    account: &str,
    line: Option<&str>,
) -> Result<Option<ExitStatus>, TransportError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let stream = tokio::net::TcpStream::connect(server.addr()).await?;
        let pending = transport::client_hello(stream).await?;
        let ahead = line.map(|line| Message::Exec { line });
        let mut channel = pending
            .authenticate(signer, account, ahead.as_ref(), UpdateLimits::default())
            .await?;
        if ahead.is_none() {
            return Ok(None);
        }
        loop {
            if let Message::Exit(status) = channel.reader.recv().await? {
                return Ok(Some(status));
            }
        }
    })
}

/// Claims one key and signs with another: what a stranger who knows a public key can do.
struct Forger {
    claimed: PrivateKey,
    signer: PrivateKey,
}

impl ClientSigner for Forger {
    fn public_key(&self) -> &PublicKey {
        self.claimed.public_key()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, ProtoError> {
        ClientSigner::sign(&self.signer, message)
    }
}

/// A server of its own (no failed-auth delay, an audit log) and who knocks: the authorized
/// client, a stranger, a held key that `from=` allows only from 10/8 (the fixture transport
/// key, as a client's), and a forger claiming the client's key.
struct Cast {
    sandbox: Sandbox,
    server: Server,
    client: PrivateKey,
    stranger: PrivateKey,
    elsewhere: PrivateKey,
    forged: Forger,
}

impl Cast {
    fn new() -> Self {
        let sandbox = Sandbox::new();
        sandbox.write(
            "server.toml",
            "auth_failure_delay_ms = 0\naudit_log = \"audit.log\"\n",
        );
        let elsewhere = fixture_key("transport_rsa");
        let authorized = format!(
            "{}from=\"10.0.0.0/8\" {}\n",
            pub_line("client_rsa"),
            to_line(elsewhere.public_key(), "elsewhere")
        );
        let server = Server::start(&sandbox, &["--config", "server.toml"], &authorized);
        let client = fixture_key("client_rsa");
        let stranger = fixture_key("other_rsa");
        let forged = Forger {
            claimed: client.clone(),
            signer: stranger.clone(),
        };
        Self {
            sandbox,
            server,
            client,
            stranger,
            elsewhere,
            forged,
        }
    }
}

#[test]
fn silent_connections_give_way_to_a_client_and_are_dropped_at_the_hello_deadline() {
    const PLACES: usize = 32;
    const SILENT: usize = 3 * PLACES;
    let sandbox = Sandbox::new();
    // A handshake deadline long enough that only the hello deadline (2 s) can close them.
    sandbox.write(
        "server.toml",
        &format!("max_waiting = {PLACES}\nmax_unauthenticated = 4\nhandshake_timeout_secs = 120\n"),
    );
    let server = Server::start(
        &sandbox,
        &["--config", "server.toml"],
        &pub_line("client_rsa"),
    );
    let mut silent: Vec<TcpStream> = (0..SILENT)
        .map(|_| TcpStream::connect(server.addr()).unwrap())
        .collect();
    // The kernel queues connections in order, so the server takes all of them first.
    // While they are all still open, three times as many as there are places, from the
    // same address: the client gets in.
    let run = client_of(&server, "client_rsa").exec(&server, &["echo", "in"], b"");
    assert_eq!(run.ok(), "in\n");

    // Every silent one is closed by the server, long before the handshake deadline.
    for stream in &mut silent {
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let mut byte = [0u8; 1];
        match stream.read(&mut byte) {
            Ok(0) => {}
            Ok(_) => panic!("a silent connection was sent data"),
            Err(err) => assert_eq!(
                err.kind(),
                std::io::ErrorKind::ConnectionReset,
                "not closed by the server: {err}"
            ),
        }
    }
    let log = server.wait_for_log(|log| log.contains("were left out"));
    assert!(
        !log.contains("too many unauthenticated connections"),
        "{log}"
    );
    assert!(count_lines(&log, "no ClientHello within 2s") > 0, "{log}");
    assert!(!log.contains("handshake deadline"), "{log}");
    assert!(
        !log.contains("penalized"),
        "silence is never penalized: {log}"
    );
}

#[test]
fn every_failed_authentication_gets_the_same_answer_and_names_nobody() {
    let Cast {
        sandbox,
        server,
        client,
        stranger,
        elsewhere,
        forged,
    } = Cast::new();
    for (what, result) in [
        (
            "a key not in authorized_keys",
            handshake(&server, &stranger),
        ),
        ("an authorized key, not held", handshake(&server, &forged)),
        (
            "a held key refused by from=",
            handshake(&server, &elsewhere),
        ),
    ] {
        assert!(
            matches!(result, Err(TransportError::Proto(ProtoError::AuthRejected))),
            "{what}: {result:?}"
        );
    }

    // Three failures: the source is penalized, even for the right key.
    let refused = handshake(&server, &client);
    assert!(
        !matches!(
            refused,
            Ok(()) | Err(TransportError::Proto(ProtoError::AuthRejected))
        ),
        "{refused:?}"
    );
    // The seashell client tells its user what may be going on.
    let run = client_of(&server, "client_rsa").exec(&server, &["true"], b"");
    assert_eq!(run.code, Some(255), "{run:#?}");
    assert!(run.stderr.contains("refusing this address"), "{run:#?}");
    let log = server.wait_for_log(|log| log.contains("source penalized"));
    assert_eq!(count_lines(&log, "authentication failed"), 3, "{log}");

    let status = server.terminate();
    assert!(status.success(), "{status}");
    let audit = std::fs::read_to_string(sandbox.path().join("audit.log")).unwrap();
    // The forged attempt claimed client_rsa: its fingerprint and name appear nowhere.
    let claimed = fingerprint(client.public_key());
    assert!(!audit.contains(&claimed), "{audit}");
    let events: Vec<serde_json::Value> = audit
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let summaries: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event"] == "auth_fail")
        .collect();
    assert_eq!(summaries.len(), 1, "{audit}");
    let summary = summaries[0];
    assert_eq!(summary["failures"], 3, "{summary}");
    assert_eq!(summary["sources"][0]["source"], "127.0.0.1", "{summary}");
    // Only the key whose holder proved it is named, with the rule that refused it.
    let refused = &summary["sources"][0]["refused"];
    assert_eq!(refused.as_array().map(Vec::len), Some(1), "{summary}");
    assert_eq!(
        refused[0]["key"],
        fingerprint(elsewhere.public_key()),
        "{summary}"
    );
    assert!(
        refused[0]["rule"].as_str().unwrap().starts_with("from="),
        "{summary}"
    );
    assert!(
        !events.iter().any(|e| e["event"] == "connect"),
        "connections are not audit events: {audit}"
    );
}

#[test]
fn a_command_sent_with_client_auth_runs_only_once_the_key_and_account_are_accepted() {
    let cast = Cast::new();
    let marker = |name: &str| cast.sandbox.path().join(name);
    let touch = |name: &str| format!("touch {}", marker(name).display());

    // The account refused (not a failed authentication, so first: no penalty follows).
    let result = pipelined(
        &cast.server,
        &cast.client,
        "nobody-here",
        Some(&touch("account")),
    );
    assert!(
        matches!(
            result,
            Err(TransportError::Proto(ProtoError::AccountRefused(_)))
        ),
        "{result:?}"
    );
    // Accepted: the command that came with ClientAuth runs, once.
    let ran = pipelined(&cast.server, &cast.client, "", Some(&touch("accepted")));
    assert_eq!(ran.unwrap(), Some(ExitStatus::Code(0)));
    assert!(marker("accepted").exists());
    for (what, result) in [
        (
            "not in authorized_keys",
            pipelined(&cast.server, &cast.stranger, "", Some(&touch("stranger"))),
        ),
        (
            "signature by another key",
            pipelined(&cast.server, &cast.forged, "", Some(&touch("forged"))),
        ),
        (
            "refused by from=",
            pipelined(&cast.server, &cast.elsewhere, "", Some(&touch("from"))),
        ),
    ] {
        assert!(
            matches!(result, Err(TransportError::Proto(ProtoError::AuthRejected))),
            "{what}: {result:?}"
        );
    }
    let status = cast.server.terminate();
    assert!(status.success(), "{status}");
    for refused in ["account", "stranger", "forged", "from"] {
        assert!(!marker(refused).exists(), "{refused}: the command ran");
    }
    let audit = std::fs::read_to_string(cast.sandbox.path().join("audit.log")).unwrap();
    let commands: Vec<serde_json::Value> = audit
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|e| e["event"] == "command")
        .collect();
    assert_eq!(commands.len(), 1, "{audit}");
    assert_eq!(commands[0]["command"], touch("accepted"), "{audit}");
}
