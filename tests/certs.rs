//! User certificates against the real server over 127.0.0.1: a `cert-authority` line admits
//! the certificates its CA signed for the names in `principals=`, with the options of both;
//! every bad certificate is refused with the same answer to the client and its reason in the
//! audit log; revoked_keys revokes a key, a serial or a CA without a restart, and fails
//! closed when it cannot be read safely. Certificates are issued with the library here (the
//! `ca sign` command has tests of its own).

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::{Duration, SystemTime};

use seashell::crypto::{PrivateKey, PublicKey};
use seashell::keys::cert::{CertFields, CertKind, Certificate, unix_now};
use seashell::keys::public::{fingerprint, to_line};
use seashell::proto::ProtoError;
use seashell::proto::handshake::client::ClientSigner;
use seashell::transport::TransportError;

use crate::admission::pipelined;
use crate::common::{RawRun, Sandbox, Server, client_of, pub_line};
use crate::policy::audit_events;
use crate::proto::fixture_key;

/// Quick refusals, an audit log and a revoked_keys file.
const CONFIG: &str = r#"auth_failure_delay_ms = 0
auth_penalty_secs = 0
audit_log = "audit.log"
revoked_keys = "revoked_keys"
"#;

/// A certificate for fixture `key` as `name`, signed by fixture `ca`, valid from `from` to
/// `until` seconds from now.
fn issue(
    ca: &str,
    key: &str,
    name: &str,
    serial: u64,
    window: (i64, i64),
    options: &str,
) -> Certificate {
    issue_kind(CertKind::User, ca, key, name, serial, window, options)
}

/// [`issue`] for a user or a host.
fn issue_kind(
    kind: CertKind,
    ca: &str,
    key: &str,
    name: &str,
    serial: u64,
    window: (i64, i64),
    options: &str,
) -> Certificate {
    let at = |offset: i64| unix_now().saturating_add_signed(offset);
    Certificate::issue(
        &fixture_key(ca),
        CertFields {
            kind,
            key: fixture_key(key).public_key().clone(),
            name: name.to_owned(),
            serial,
            valid_after: at(window.0),
            valid_before: at(window.1),
            options: options.to_owned(),
        },
    )
    .unwrap()
}

/// Valid for the next hour (and the minute before).
const NOW: (i64, i64) = (-60, 3600);

/// `OPTIONS seashell-rsa <ca_rsa> team CA`.
pub(crate) fn ca_line(options: &str) -> String {
    format!(
        "{options} {} team CA\n",
        to_line(fixture_key("ca_rsa").public_key(), "")
    )
}

pub(crate) fn serve(sandbox: &Sandbox, authorized_keys: &str) -> Server {
    sandbox.write("config.toml", CONFIG);
    sandbox.write("revoked_keys", "# nothing revoked yet\n");
    Server::start(sandbox, &["--config", "config.toml"], authorized_keys)
}

/// Puts `cert` beside the client's identity, where `seashell exec` looks for it.
fn present(client: &Sandbox, cert: &Certificate) {
    fs::write(
        client.home().join("id_rsa-cert.pub"),
        cert.to_line("ann@laptop") + "\n",
    )
    .unwrap();
}

/// Replaces `path` with `contents` so that the server sees a change (a new inode).
fn replace(path: &Path, contents: &str) {
    let fresh = path.with_extension("new");
    fs::write(&fresh, contents).unwrap();
    fs::rename(&fresh, path).unwrap();
}

fn assert_refused(run: &RawRun, case: &str) {
    assert_eq!(run.code, Some(255), "{case}: {run:#?}");
    assert!(
        run.stderr.contains("authentication refused by the server"),
        "{case}: {run:#?}"
    );
}

/// Every key the `auth_fail` summaries list as refused.
fn refused(events: &[serde_json::Value]) -> Vec<serde_json::Value> {
    events
        .iter()
        .filter(|e| e["event"] == "auth_fail")
        .flat_map(|e| e["sources"].as_array().cloned().unwrap_or_default())
        .flat_map(|s| s["refused"].as_array().cloned().unwrap_or_default())
        .collect()
}

#[test]
fn a_certificate_is_admitted_by_its_ca_line_with_both_options_and_named_in_the_audit_log() {
    let sandbox = Sandbox::new();
    let server = serve(
        &sandbox,
        &ca_line(r#"cert-authority,principals="bob,ann",no-files"#),
    );
    let client = client_of(&server, "client_rsa");
    // The key alone is not authorized: only its certificate is.
    assert_refused(&client.exec(&server, &["echo in"], b""), "no certificate");

    present(
        &client,
        &issue("ca_rsa", "client_rsa", "ann", 42, NOW, r#"allow="echo *""#),
    );
    assert_eq!(client.exec(&server, &["echo in"], b"").ok(), "in\n");
    // The certificate's allow= and the line's no-files both apply.
    let denied = client.exec(&server, &["id"], b"");
    assert_eq!(denied.code, Some(126), "{denied:#?}");
    let up = sandbox.write("up.txt", "x");
    let copy = client.run(
        [
            "cp",
            "-P",
            &server.port().to_string(),
            up.to_str().unwrap(),
            "127.0.0.1:up.txt",
        ],
        b"",
    );
    assert_ne!(copy.code, Some(0), "{copy:#?}");
    assert!(copy.stderr.contains("no-files"), "{copy:#?}");

    // A certificate for a name the line does not list.
    present(
        &client,
        &issue("ca_rsa", "client_rsa", "carol", 43, NOW, ""),
    );
    assert_refused(&client.exec(&server, &["echo in"], b""), "wrong name");
    // An expired one is not even presented: the client says so, and the key alone fails.
    present(
        &client,
        &issue("ca_rsa", "client_rsa", "ann", 44, (-7200, -3600), ""),
    );
    let run = client.exec(&server, &["echo in"], b"");
    assert_refused(&run, "expired");
    assert!(
        run.stderr.contains("not presenting certificate") && run.stderr.contains("expired"),
        "{run:#?}"
    );

    let status = server.terminate();
    assert!(status.success(), "{status}");
    let events = audit_events(&sandbox);
    let ca = fingerprint(fixture_key("ca_rsa").public_key());
    let key = fingerprint(fixture_key("client_rsa").public_key());
    let named: Vec<&serde_json::Value> = events.iter().filter(|e| e["cert_serial"] == 42).collect();
    let kinds: Vec<&str> = named.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert!(kinds.starts_with(&["auth_ok", "command"]), "{kinds:?}");
    assert!(kinds.contains(&"denied"), "{kinds:?}");
    for event in &named {
        assert_eq!(event["cert_name"], "ann", "{event}");
        assert_eq!(event["name"], "ann", "{event}");
        assert_eq!(event["ca"], ca.as_str(), "{event}");
        assert_eq!(event["key"], key.as_str(), "{event}");
    }
    let wrong_name: Vec<serde_json::Value> = refused(&events)
        .into_iter()
        .filter(|r| r["reason"] == "wrong name")
        .collect();
    assert_eq!(wrong_name.len(), 1, "{events:#?}");
    assert_eq!(wrong_name[0]["cert_name"], "carol");
    assert_eq!(wrong_name[0]["cert_serial"], 43);
    assert_eq!(wrong_name[0]["name"], "team CA");
}

/// Signs with a key and presents a certificate, whatever it is: what a client can send.
struct Presenter {
    key: PrivateKey,
    cert: Vec<u8>,
}

impl ClientSigner for Presenter {
    fn public_key(&self) -> &PublicKey {
        self.key.public_key()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, ProtoError> {
        ClientSigner::sign(&self.key, message)
    }

    fn certificate(&self) -> &[u8] {
        &self.cert
    }
}

/// A handshake with `signer` and an Exec of `line` in the same flight; whether it was
/// accepted.
fn knock(server: &Server, signer: &Presenter, line: &str) -> Result<(), TransportError> {
    pipelined(server, signer, "", Some(line)).map(|_| ())
}

/// Knocks with each of `cases` (and a thief presenting someone else's certificate with its
/// own key) on a server of its own, then with a good certificate; the refused keys of the
/// audit log's summaries. At most four per source are listed: at most four cases a call.
fn refusals(cases: &[(&str, Presenter)]) -> Vec<serde_json::Value> {
    let sandbox = Sandbox::new();
    let server = serve(&sandbox, &ca_line(r#"cert-authority,principals="ann""#));
    let ca = fingerprint(fixture_key("ca_rsa").public_key());
    replace(
        &sandbox.path().join("revoked_keys"),
        &format!("serial:{ca}:99\n"),
    );
    let marker = sandbox.path().join("ran");
    let line = format!("touch {}", marker.display());
    for (reason, presenter) in cases {
        let result = knock(&server, presenter, &line);
        assert!(
            matches!(result, Err(TransportError::Proto(ProtoError::AuthRejected))),
            "{reason}: {result:?}"
        );
    }
    let thief = Presenter {
        key: fixture_key("other_rsa"),
        cert: issue("ca_rsa", "client_rsa", "ann", 5, NOW, "").encode(),
    };
    assert!(matches!(
        knock(&server, &thief, &line),
        Err(TransportError::Proto(ProtoError::AuthRejected))
    ));
    assert!(!marker.exists(), "a refused client's pipelined command ran");
    knock(
        &server,
        &presenter(&issue("ca_rsa", "client_rsa", "ann", 7, NOW, "")),
        &line,
    )
    .unwrap();
    assert!(marker.exists());

    server.wait_for_log(|log| log.contains("not the key the client proved"));
    let status = server.terminate();
    assert!(status.success(), "{status}");
    let refused = refused(&audit_events(&sandbox));
    let other = fingerprint(fixture_key("other_rsa").public_key());
    assert!(
        refused.iter().all(|r| r["key"] != other.as_str()),
        "the thief's claims reached the audit log: {refused:#?}"
    );
    refused
}

/// The client's key, presenting `cert`.
fn presenter(cert: &Certificate) -> Presenter {
    Presenter {
        key: fixture_key("client_rsa"),
        cert: cert.encode(),
    }
}

/// The reasons the audit log gives, sorted.
fn reasons(refused: &[serde_json::Value]) -> Vec<String> {
    let mut reasons: Vec<String> = refused
        .iter()
        .map(|r| r["reason"].as_str().unwrap().to_owned())
        .collect();
    reasons.sort_unstable();
    reasons
}

#[test]
fn every_bad_certificate_gets_the_same_answer_runs_nothing_and_is_audited_with_its_reason() {
    let cases = [
        (
            "expired",
            presenter(&issue("ca_rsa", "client_rsa", "ann", 1, (-7200, -3600), "")),
        ),
        (
            "not yet valid",
            presenter(&issue("ca_rsa", "client_rsa", "ann", 2, (3600, 7200), "")),
        ),
        (
            "wrong name",
            presenter(&issue("ca_rsa", "client_rsa", "bob", 3, NOW, "")),
        ),
        (
            "wrong CA",
            presenter(&issue("other_rsa", "client_rsa", "ann", 4, NOW, "")),
        ),
    ];
    let refused = refusals(&cases);
    assert_eq!(
        reasons(&refused),
        ["expired", "not yet valid", "wrong CA", "wrong name"],
        "{refused:#?}"
    );
    // What no trusted CA vouched for is not recorded: only the proven key and the reason.
    let wrong_ca = refused.iter().find(|r| r["reason"] == "wrong CA").unwrap();
    assert!(
        wrong_ca.get("ca").is_none() && wrong_ca.get("cert_name").is_none(),
        "{wrong_ca}"
    );
    let expired = refused.iter().find(|r| r["reason"] == "expired").unwrap();
    assert_eq!(expired["cert_serial"], 1, "{expired}");

    let mut tampered = issue("ca_rsa", "client_rsa", "ann", 6, NOW, "").encode();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let cases = [
        (
            "revoked",
            presenter(&issue("ca_rsa", "client_rsa", "ann", 99, NOW, "")),
        ),
        (
            "bad signature",
            Presenter {
                key: fixture_key("client_rsa"),
                cert: tampered,
            },
        ),
    ];
    let refused = refusals(&cases);
    assert_eq!(
        reasons(&refused),
        ["bad signature", "revoked"],
        "{refused:#?}"
    );
    let forged = refused
        .iter()
        .find(|r| r["reason"] == "bad signature")
        .unwrap();
    assert!(forged.get("cert_name").is_none(), "{forged}");
}

#[test]
fn revoking_a_serial_a_key_or_the_ca_takes_effect_without_a_restart_and_fails_closed() {
    let sandbox = Sandbox::new();
    let authorized = ca_line(r#"cert-authority,principals="*""#) + &pub_line("other_rsa");
    let server = serve(&sandbox, &authorized);
    let client = client_of(&server, "client_rsa");
    present(&client, &issue("ca_rsa", "client_rsa", "ann", 5, NOW, ""));
    let other = client_of(&server, "other_rsa");
    let revoked = sandbox.path().join("revoked_keys");
    let works = |who: &Sandbox| who.exec(&server, &["echo in"], b"").ok() == "in\n";
    assert!(works(&client) && works(&other));

    let ca = fingerprint(fixture_key("ca_rsa").public_key());
    replace(&revoked, &format!("serial:{ca}:5 # ann's laptop\n"));
    assert_refused(&client.exec(&server, &["echo in"], b""), "serial revoked");
    assert!(works(&other));

    let other_key = fingerprint(fixture_key("other_rsa").public_key());
    replace(&revoked, &format!("{other_key}\n"));
    assert!(works(&client), "the serial is no longer revoked");
    assert_refused(&other.exec(&server, &["echo in"], b""), "key revoked");

    replace(&revoked, &format!("{ca} team CA retired\n"));
    assert_refused(&client.exec(&server, &["echo in"], b""), "CA revoked");
    assert!(works(&other));

    // A revoked_keys file others could write revokes everything until it is fixed.
    replace(&revoked, "# nothing\n");
    fs::set_permissions(&revoked, fs::Permissions::from_mode(0o666)).unwrap();
    let file = fs::File::options().write(true).open(&revoked).unwrap();
    file.set_modified(SystemTime::now() + Duration::from_secs(2))
        .unwrap();
    assert_refused(
        &other.exec(&server, &["echo in"], b""),
        "unsafe revoked_keys",
    );
    fs::set_permissions(&revoked, fs::Permissions::from_mode(0o644)).unwrap();
    assert!(works(&other) && works(&client));
    server.wait_for_log(|log| log.contains("revoked_keys") || log.contains("revoked keys"));
}

/// A host certificate for fixture `key` naming `names`, signed by fixture `ca`.
fn host_cert(ca: &str, key: &str, names: &str, window: (i64, i64)) -> Certificate {
    issue_kind(CertKind::Host, ca, key, names, 1, window, "")
}

/// A server with fixture `host_key` presenting `cert`.
fn serve_certified(sandbox: &Sandbox, host_key: &str, cert: &Certificate) -> Server {
    let path = sandbox.write("host-cert.pub", &(cert.to_line("web1") + "\n"));
    Server::start_as(
        sandbox,
        host_key,
        &["--host-cert", path.to_str().unwrap()],
        &pub_line("client_rsa"),
    )
}

/// A client trusting `ca_rsa` for `pattern`, with no host pinned.
fn trusting(pattern: &str) -> Sandbox {
    let client = Sandbox::new();
    client.install_identity("client_rsa");
    let line = format!(
        "@cert-authority {pattern} {}\n",
        to_line(fixture_key("ca_rsa").public_key(), "team CA")
    );
    fs::write(client.known_hosts(), line).unwrap();
    client
}

#[test]
fn a_host_certificate_from_a_trusted_ca_needs_no_prompt_and_no_pin_even_after_a_new_key() {
    let client = trusting("127.0.0.*");
    let before = fs::read_to_string(client.known_hosts()).unwrap();
    let sandbox = Sandbox::new();
    let server = serve_certified(
        &sandbox,
        "host_rsa",
        &host_cert("ca_rsa", "host_rsa", "web1.lan,127.0.0.1", NOW),
    );
    let run = client.exec(&server, &["echo in"], b"");
    assert_eq!(run.ok(), "in\n");
    assert!(run.stderr.is_empty(), "{run:#?}");
    drop(server);

    // The host reinstalled with a new key and a new certificate from the same CA: no alarm.
    let sandbox = Sandbox::new();
    let server = serve_certified(
        &sandbox,
        "other_rsa",
        &host_cert("ca_rsa", "other_rsa", "127.0.0.1", NOW),
    );
    assert_eq!(client.exec(&server, &["echo in"], b"").ok(), "in\n");
    assert_eq!(
        fs::read_to_string(client.known_hosts()).unwrap(),
        before,
        "nothing was pinned"
    );

    // `@revoked` refuses the key even with a good certificate.
    let revoked = format!(
        "{before}@revoked * {}\n",
        to_line(fixture_key("other_rsa").public_key(), "")
    );
    fs::write(client.known_hosts(), &revoked).unwrap();
    let run = client.exec(&server, &["echo in"], b"");
    assert_eq!(run.code, Some(255), "{run:#?}");
    assert!(run.stderr.contains("HOST KEY REVOKED"), "{run:#?}");

    // A revocation whose patterns are mistyped still revokes (everywhere), and says so.
    let mistyped = revoked.replace("@revoked * ", "@revoked web[1].lan:22 ");
    fs::write(client.known_hosts(), &mistyped).unwrap();
    let run = client.exec(&server, &["echo in"], b"");
    assert_eq!(run.code, Some(255), "{run:#?}");
    assert!(
        run.stderr.contains("HOST KEY REVOKED")
            && run
                .stderr
                .contains("revokes its key for every host until it is fixed"),
        "{run:#?}"
    );
}

#[test]
fn a_host_certificate_that_does_not_hold_leaves_the_pins_to_decide() {
    // A certificate for other names, an expired one, one from an untrusted CA: each is
    // refused with a warning (the first two) or ignored (the last); an unpinned host is then
    // unknown, and a changed key still an alarm.
    let client = trusting("127.0.0.1");
    let cases = [
        (
            host_cert("ca_rsa", "other_rsa", "web2.lan", NOW),
            "not 127.0.0.1",
        ),
        (
            host_cert("ca_rsa", "other_rsa", "127.0.0.1", (-7200, -3600)),
            "expired",
        ),
        (host_cert("other_rsa", "other_rsa", "127.0.0.1", NOW), ""),
    ];
    for (cert, warning) in &cases {
        let sandbox = Sandbox::new();
        let server = serve_certified(&sandbox, "other_rsa", cert);
        let run = client.exec(&server, &["echo in"], b"");
        assert_eq!(run.code, Some(255), "{warning}: {run:#?}");
        assert!(run.stderr.contains("not known"), "{warning}: {run:#?}");
        if !warning.is_empty() {
            assert!(run.stderr.contains(warning), "{warning}: {run:#?}");
        }
        // With the host pinned to its old key, the new key is an alarm, certificate or not.
        let pinned = trusting("127.0.0.1");
        pinned.pin_host(&server.dest(), "host_rsa.pub");
        let run = pinned.exec(&server, &["echo in"], b"");
        assert!(
            run.stderr.contains("HOST KEY CHANGED"),
            "{warning}: {run:#?}"
        );
    }
}

#[test]
fn a_server_refuses_to_start_with_a_certificate_of_another_key() {
    let sandbox = Sandbox::new();
    let cert = host_cert("ca_rsa", "other_rsa", "127.0.0.1", NOW);
    let path = sandbox.write("host-cert.pub", &(cert.to_line("") + "\n"));
    let host_key = sandbox.fixture("host_rsa");
    let run = sandbox.seashell([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--host-key",
        host_key.to_str().unwrap(),
        "--host-cert",
        path.to_str().unwrap(),
    ]);
    assert_ne!(run.code, Some(0), "{run:#?}");
    assert!(run.stderr.contains("not this host key"), "{run:#?}");
}

#[test]
fn the_client_config_can_name_the_certificate() {
    let sandbox = Sandbox::new();
    let server = serve(&sandbox, &ca_line(r#"cert-authority,principals="ann""#));
    let client = client_of(&server, "client_rsa");
    let cert = issue("ca_rsa", "client_rsa", "ann", 8, NOW, "");
    let elsewhere = client.write("ann-today.pub", &(cert.to_line("") + "\n"));
    let config = format!("[defaults]\ncertificate = \"{}\"\n", elsewhere.display());
    fs::write(client.home().join("config"), config).unwrap();
    assert_eq!(client.exec(&server, &["echo in"], b"").ok(), "in\n");
    // A named certificate that is missing is said so, and the key goes alone.
    fs::remove_file(&elsewhere).unwrap();
    let run = client.exec(&server, &["echo in"], b"");
    assert_refused(&run, "named certificate missing");
    assert!(
        run.stderr.contains("not presenting certificate"),
        "{run:#?}"
    );
}

#[test]
fn a_renewed_host_certificate_is_read_on_sighup() {
    let client = trusting("127.0.0.1");
    let sandbox = Sandbox::new();
    let server = serve_certified(
        &sandbox,
        "host_rsa",
        &host_cert("ca_rsa", "host_rsa", "web2.lan", NOW),
    );
    let run = client.exec(&server, &["echo in"], b"");
    assert!(run.stderr.contains("not 127.0.0.1"), "{run:#?}");
    let renewed = host_cert("ca_rsa", "host_rsa", "127.0.0.1", NOW);
    replace(
        &sandbox.path().join("host-cert.pub"),
        &(renewed.to_line("") + "\n"),
    );
    server.hangup();
    server.wait_for_log(|log| log.matches("host certificate").count() >= 2);
    assert_eq!(client.exec(&server, &["echo in"], b"").ok(), "in\n");
    // A file that no longer holds a certificate of the host key keeps the one before.
    replace(&sandbox.path().join("host-cert.pub"), "garbage\n");
    server.hangup();
    server.wait_for_log(|log| log.contains("still presenting the one read before"));
    assert_eq!(client.exec(&server, &["echo in"], b"").ok(), "in\n");
}
