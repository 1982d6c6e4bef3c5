//! Key files end to end: `seashell keygen` and `seashell fingerprint` run as a user would run
//! them (no terminal, a clean SEASHELL_HOME), and the library's loaders and trust files used on
//! the committed fixtures.

use std::ffi::OsStr;
use std::fs;

use proptest::prelude::*;
use seashell::keys::authorized::{AuthorizedKeys, KeyOption};
use seashell::keys::known_hosts::{self, HostKeyStatus, KnownHosts};
use seashell::keys::private::{self, PassphraseSource};
use seashell::keys::{KeyError, public};

use crate::common::{
    CLIENT_FP, ENC_FP, FIXTURE_PASSPHRASE, HOST_FP, OTHER_FP, Sandbox, TEST_USER, bare_key,
    fingerprints_in, fixture_path, mode_of,
};

fn assert_fingerprint_format(fingerprint: &str) {
    let b64 = fingerprint
        .strip_prefix("SHA256:")
        .unwrap_or_else(|| panic!("{fingerprint:?} does not start with SHA256:"));
    assert_eq!(b64.len(), 43, "{fingerprint:?}");
    assert!(
        b64.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/'),
        "{fingerprint:?} is not unpadded standard base64"
    );
}

fn pub_key(name: &str) -> seashell::crypto::PublicKey {
    private::load_public_key_file(&fixture_path(name))
        .unwrap()
        .0
}

#[test]
fn keygen_writes_a_0600_key_and_a_pub_with_the_printed_fingerprint() {
    let sandbox = Sandbox::new();
    let out = sandbox
        .seashell(["keygen", "-b", "2048", "--no-passphrase"])
        .ok()
        .to_owned();

    let key_path = sandbox.home().join("id_rsa");
    let pub_path = sandbox.home().join("id_rsa.pub");
    assert_eq!(mode_of(&sandbox.home()), 0o700);
    assert_eq!(mode_of(&key_path), 0o600);
    assert_eq!(mode_of(&pub_path), 0o644);
    assert!(out.contains(&format!(
        "Your identification has been saved in {}",
        key_path.display()
    )));
    assert!(out.contains(&format!(
        "Your public key has been saved in {}",
        pub_path.display()
    )));
    assert!(
        fs::read_to_string(&key_path)
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----\n")
    );

    let printed = fingerprints_in(&out);
    assert_eq!(printed.len(), 1, "{out}");
    let fingerprint = &printed[0];
    assert_fingerprint_format(fingerprint);

    let pub_line = fs::read_to_string(&pub_path).unwrap();
    assert!(pub_line.starts_with("seashell-rsa ") && pub_line.ends_with('\n'));
    let comment = pub_line.trim_end().rsplit_once(' ').unwrap().1;
    assert!(comment.starts_with(&format!("{TEST_USER}@")), "{pub_line}");

    for file in [&key_path, &pub_path] {
        let shown = sandbox.seashell([OsStr::new("fingerprint"), file.as_os_str()]);
        assert_eq!(
            shown.ok(),
            format!("{fingerprint} {comment}\n"),
            "for {}",
            file.display()
        );
    }

    let key = private::load_private_key(&key_path, &PassphraseSource::EnvOrPrompt).unwrap();
    assert_eq!(&public::fingerprint(key.public_key()), fingerprint);
    assert_eq!(
        key.public_key(),
        &private::load_public_key_file(&pub_path).unwrap().0
    );
}

#[test]
fn keygen_refuses_to_overwrite_without_force_and_replaces_with_force() {
    let sandbox = Sandbox::new();
    let key_path = sandbox.fixture("other_rsa");
    sandbox.fixture("other_rsa.pub");
    let before = fs::read(&key_path).unwrap();
    let args = |force: bool| {
        let mut args = vec![
            "keygen",
            "-b",
            "2048",
            "--no-passphrase",
            "-C",
            "new",
            "-f",
            "other_rsa",
        ];
        if force {
            args.push("--force");
        }
        args
    };

    let refused = sandbox.seashell(args(false));
    let stderr = refused.failed_with(1);
    assert!(stderr.contains("other_rsa already exists"), "{stderr}");
    assert!(stderr.contains("--force"), "{stderr}");
    assert_eq!(
        fs::read(&key_path).unwrap(),
        before,
        "the key must be left untouched"
    );

    let out = sandbox.seashell(args(true)).ok().to_owned();
    assert_ne!(fs::read(&key_path).unwrap(), before);
    assert_eq!(mode_of(&key_path), 0o600);
    let new_fp = &fingerprints_in(&out)[0];
    assert_ne!(new_fp, OTHER_FP);
    let pub_out = sandbox.seashell(["fingerprint", "other_rsa.pub"]);
    assert_eq!(pub_out.ok(), format!("{new_fp} new\n"));
}

#[test]
fn keygen_refuses_weak_and_odd_sizes() {
    let sandbox = Sandbox::new();
    for bits in ["1024", "2000", "8192"] {
        let run = sandbox.seashell(["keygen", "-b", bits, "--no-passphrase", "-f", "k"]);
        assert_ne!(run.code, Some(0), "{bits} bits accepted: {run:#?}");
        assert!(
            run.stderr.contains("2048, 3072 (default) or 4096"),
            "{run:#?}"
        );
    }
    let run = sandbox.seashell(["keygen", "-b", "1024", "--no-passphrase", "-f", "k"]);
    assert!(run.stderr.contains("too weak"), "{run:#?}");
    assert!(!sandbox.path().join("k").exists());
}

#[test]
fn passphrase_file_encrypts_and_every_passphrase_source_is_honoured() {
    let sandbox = Sandbox::new();
    let pass = sandbox.write("pass", "open sesame\n");
    let wrong = sandbox.write("wrong", "open sesame!\n");
    let out = sandbox
        .seashell([
            "keygen",
            "-b",
            "2048",
            "-f",
            "enc",
            "--passphrase-file",
            "pass",
        ])
        .ok()
        .to_owned();
    let fingerprint = &fingerprints_in(&out)[0];
    let key_path = sandbox.path().join("enc");
    assert!(
        fs::read_to_string(&key_path)
            .unwrap()
            .starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    );
    assert_eq!(mode_of(&key_path), 0o600);
    let expected = format!("{fingerprint} {TEST_USER}@");

    let via_file = sandbox.seashell(["fingerprint", "enc", "--passphrase-file", "pass"]);
    assert!(via_file.ok().starts_with(&expected), "{via_file:#?}");
    let via_env = sandbox.seashell_with_env(
        ["fingerprint", "enc"],
        &[("SEASHELL_PASSPHRASE", "open sesame")],
    );
    assert!(via_env.ok().starts_with(&expected), "{via_env:#?}");
    let file_wins = sandbox.seashell_with_env(
        ["fingerprint", "enc", "--passphrase-file", "pass"],
        &[("SEASHELL_PASSPHRASE", "nope")],
    );
    assert!(file_wins.ok().starts_with(&expected), "{file_wins:#?}");

    let wrong_message = format!("wrong passphrase for {}", "enc");
    let bad_file = sandbox.seashell(["fingerprint", "enc", "--passphrase-file", "wrong"]);
    assert!(
        bad_file.failed_with(1).contains(&wrong_message),
        "{bad_file:#?}"
    );
    let bad_env =
        sandbox.seashell_with_env(["fingerprint", "enc"], &[("SEASHELL_PASSPHRASE", "open")]);
    assert!(
        bad_env.failed_with(1).contains(&wrong_message),
        "{bad_env:#?}"
    );

    let nothing = sandbox.seashell(["fingerprint", "enc"]);
    let stderr = nothing.failed_with(1);
    assert!(
        stderr.contains("enc is encrypted and no passphrase was given"),
        "{stderr}"
    );
    assert!(stderr.contains("--passphrase-file") && stderr.contains("SEASHELL_PASSPHRASE"));

    let err = private::load_private_key(&key_path, &PassphraseSource::File(wrong)).unwrap_err();
    assert!(matches!(err, KeyError::WrongPassphrase { .. }), "{err}");
    let key = private::load_private_key(&key_path, &PassphraseSource::File(pass)).unwrap();
    assert_eq!(&public::fingerprint(key.public_key()), fingerprint);
}

#[test]
fn the_encrypted_fixture_opens_with_its_passphrase_only() {
    let sandbox = Sandbox::new();
    sandbox.fixture("client_enc_rsa");
    sandbox.fixture("client_enc_rsa.pub");
    let run = sandbox.seashell_with_env(
        ["fingerprint", "client_enc_rsa"],
        &[("SEASHELL_PASSPHRASE", FIXTURE_PASSPHRASE)],
    );
    assert_eq!(run.ok(), format!("{ENC_FP} test-enc\n"));
    let run = sandbox.seashell_with_env(
        ["fingerprint", "client_enc_rsa"],
        &[("SEASHELL_PASSPHRASE", "correct horse battery")],
    );
    assert!(
        run.failed_with(1)
            .contains("wrong passphrase for client_enc_rsa")
    );
}

#[test]
fn a_private_key_readable_by_others_is_refused_with_the_chmod_fix() {
    let sandbox = Sandbox::new();
    let key_path = sandbox.fixture("client_rsa");
    fs::set_permissions(
        &key_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();

    let run = sandbox.seashell(["fingerprint", "client_rsa"]);
    assert_eq!(
        run.failed_with(1),
        "seashell: client_rsa: permissions 0644 are too open; a private key must be readable \
         only by you: run chmod 600 client_rsa\n"
    );
    let err = private::load_private_key(&key_path, &PassphraseSource::EnvOrPrompt).unwrap_err();
    assert!(
        matches!(err, KeyError::TooOpen { mode: 0o644, .. }),
        "{err}"
    );
}

#[test]
fn fingerprint_of_fixtures_is_pinned() {
    let sandbox = Sandbox::new();
    for (name, expected) in [
        ("host_rsa.pub", format!("{HOST_FP} test-host\n")),
        ("client_rsa.pub", format!("{CLIENT_FP} test-client\n")),
        ("other_rsa.pub", format!("{OTHER_FP} test-other\n")),
        ("client_enc_rsa.pub", format!("{ENC_FP} test-enc\n")),
        // A private key is labelled with the comment of the .pub beside it.
        ("host_rsa", format!("{HOST_FP} test-host\n")),
    ] {
        sandbox.fixture(name);
        let run = sandbox.seashell(["fingerprint", name]);
        assert_eq!(run.ok(), expected, "for {name}");
    }
    // With no matching .pub beside it, the path stands in for the comment.
    let alone = Sandbox::new();
    alone.fixture("client_rsa");
    fs::copy(
        fixture_path("other_rsa.pub"),
        alone.path().join("client_rsa.pub"),
    )
    .unwrap();
    let run = alone.seashell(["fingerprint", "client_rsa"]);
    assert_eq!(run.ok(), format!("{CLIENT_FP} client_rsa\n"));
    for fingerprint in [HOST_FP, CLIENT_FP, OTHER_FP, ENC_FP] {
        assert_fingerprint_format(fingerprint);
    }
    assert_eq!(public::fingerprint(&pub_key("client_rsa.pub")), CLIENT_FP);
}

#[test]
fn fingerprint_of_authorized_keys_prints_good_lines_and_warns_about_bad_ones() {
    let sandbox = Sandbox::new();
    let text = format!(
        "# team keys\n\
         \n\
         {client} ann@laptop\n\
         from=\"10.0.0.0/8,fd00::/8\",allow=\"ls, -l\",allow=\"echo \\\"hi\\\"\",no-files {other} backup robot\n\
         from=\"10.0.0.1/8\" {host} bad network\n\
         frobnicate {host} unknown option\n\
         expires=\"2031-01-31\" {host}\n",
        client = bare_key("client_rsa.pub"),
        other = bare_key("other_rsa.pub"),
        host = bare_key("host_rsa.pub"),
    );
    sandbox.write("authorized_keys", &text);
    let run = sandbox.seashell(["fingerprint", "authorized_keys"]);
    assert_eq!(
        run.ok(),
        format!("{CLIENT_FP} ann@laptop\n{OTHER_FP} backup robot\n{HOST_FP}\n")
    );
    assert!(
        run.stderr
            .contains("authorized_keys: line 5 skipped: option `from`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("authorized_keys: line 6 skipped: unknown option `frobnicate`"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 2, "{}", run.stderr);

    let (keys, warnings) = AuthorizedKeys::load(&sandbox.path().join("authorized_keys")).unwrap();
    assert_eq!(
        warnings.iter().map(|w| w.line).collect::<Vec<_>>(),
        vec![5, 6]
    );
    let backup = keys.find(&pub_key("other_rsa.pub")).unwrap();
    assert_eq!(backup.line, 4);
    let allowed: Vec<&KeyOption> = backup
        .options
        .iter()
        .filter(|o| matches!(o, KeyOption::Allow(_)))
        .collect();
    assert_eq!(
        allowed,
        vec![
            &KeyOption::Allow("ls, -l".into()),
            &KeyOption::Allow("echo \"hi\"".into())
        ]
    );
    assert!(keys.find(&pub_key("client_enc_rsa.pub")).is_none());
}

#[test]
fn authorized_keys_load_names_a_missing_file() {
    let sandbox = Sandbox::new();
    let missing = sandbox.path().join("authorized_keys");
    let err = AuthorizedKeys::load(&missing).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("cannot read {}", missing.display())),
        "{err}"
    );
}

#[test]
fn fingerprint_of_known_hosts_labels_each_key_with_its_host() {
    let sandbox = Sandbox::new();
    let text = format!(
        "# pinned hosts\n\
         box.lan:7022 {host}\n\
         [fd00::1]:7022 {other}\n\
         broken-line\n",
        host = bare_key("host_rsa.pub"),
        other = bare_key("other_rsa.pub"),
    );
    sandbox.write("known_hosts", &text);
    let run = sandbox.seashell(["fingerprint", "known_hosts"]);
    assert_eq!(
        run.ok(),
        format!("{HOST_FP} box.lan:7022\n{OTHER_FP} [fd00::1]:7022\n")
    );
    assert!(
        run.stderr.contains("known_hosts: line 4 skipped:"),
        "{}",
        run.stderr
    );
}

#[test]
fn fingerprint_of_a_file_without_keys_fails() {
    let sandbox = Sandbox::new();
    sandbox.write("empty", "# nothing here\n\n");
    let run = sandbox.seashell(["fingerprint", "empty"]);
    assert!(
        run.failed_with(1).contains("empty: no key found"),
        "{run:#?}"
    );
    let run = sandbox.seashell(["fingerprint", "does-not-exist"]);
    assert!(
        run.failed_with(1).contains("cannot read does-not-exist"),
        "{run:#?}"
    );
}

#[test]
fn known_hosts_pin_check_and_forget() {
    let sandbox = Sandbox::new();
    let path = sandbox.home().join("known_hosts");
    let host = pub_key("host_rsa.pub");
    let other = pub_key("other_rsa.pub");

    let (empty, _) = KnownHosts::load(&path).unwrap();
    assert_eq!(empty.check("box.lan:7022", &host), HostKeyStatus::Unknown);

    known_hosts::append(&path, "box.lan:7022", &host).unwrap();
    known_hosts::append(&path, "[::1]:7022", &other).unwrap();
    assert_eq!(mode_of(&path), 0o600);
    assert_eq!(mode_of(&sandbox.home()), 0o700);

    let (hosts, warnings) = KnownHosts::load(&path).unwrap();
    assert!(warnings.is_empty());
    assert_eq!(hosts.check("box.lan:7022", &host), HostKeyStatus::Known);
    assert_eq!(hosts.check("[::1]:7022", &other), HostKeyStatus::Known);
    assert_eq!(hosts.check("box.lan:2222", &host), HostKeyStatus::Unknown);
    assert_eq!(
        hosts.check("box.lan:7022", &other),
        HostKeyStatus::Changed {
            line: 1,
            old_fingerprint: HOST_FP.to_owned()
        }
    );

    assert_eq!(known_hosts::forget(&path, "box.lan:7022").unwrap(), 1);
    let (hosts, _) = KnownHosts::load(&path).unwrap();
    assert_eq!(hosts.check("box.lan:7022", &other), HostKeyStatus::Unknown);
    assert_eq!(hosts.check("[::1]:7022", &other), HostKeyStatus::Known);
}

proptest! {
    #[test]
    fn parse_line_never_panics(text in "\\PC{0,120}") {
        let _ = public::parse_line(&text);
    }

    #[test]
    fn parse_line_never_panics_on_key_like_lines(b64 in "[A-Za-z0-9+/=]{0,600}", tail in "\\PC{0,20}") {
        let _ = public::parse_line(&format!("seashell-rsa {b64} {tail}"));
    }

    #[test]
    fn trust_file_parsers_never_panic(lines in proptest::collection::vec("\\PC{0,80}", 0..8)) {
        let text = lines.join("\n");
        let _ = AuthorizedKeys::parse(&text);
        let _ = KnownHosts::parse(&text);
    }
}
