//! Certificates from the command line: `seashell ca sign`, `seashell ca show` and `seashell
//! fingerprint` on a `-cert.pub`, run as a CA's operator would run them (the built binary,
//! no terminal, the committed `ca_rsa` fixture as the CA), and what they write read back
//! with the library and checked against the CA's public key.

use std::fs;
use std::path::Path;

use seashell::keys::authorized::KeyOption;
use seashell::keys::cert::{self, CertKind, CertLine};
use seashell::keys::private;

use crate::common::{
    CLIENT_FP, ENC_FP, FIXTURE_PASSPHRASE, HOST_FP, Run, Sandbox, fixture_path, mode_of,
};

/// 2027-01-15T08:00:00Z.
const START: u64 = 1_800_000_000;

/// A sandbox holding the CA key (`ca_rsa`, 0600) and the client's public key (`ann.pub`).
fn ca_sandbox() -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.fixture("ca_rsa");
    fs::copy(
        fixture_path("client_rsa.pub"),
        sandbox.path().join("ann.pub"),
    )
    .unwrap();
    sandbox
}

/// `seashell ca sign --ca ca_rsa ARGS... KEY`.
fn sign(sandbox: &Sandbox, args: &[&str], key: &str) -> Run {
    let mut all = vec!["ca", "sign", "--ca", "ca_rsa"];
    all.extend_from_slice(args);
    all.push(key);
    sandbox.seashell(all)
}

fn read_cert(path: &Path) -> CertLine {
    cert::parse_line(&fs::read_to_string(path).unwrap()).unwrap()
}

fn ca_public() -> seashell::crypto::PublicKey {
    private::load_public_key_file(&fixture_path("ca_rsa.pub"))
        .unwrap()
        .0
}

/// What `seashell fingerprint` prints for the CA's public key: its fingerprint.
fn ca_fingerprint(sandbox: &Sandbox) -> String {
    let out = sandbox.seashell([
        "fingerprint".as_ref(),
        fixture_path("ca_rsa.pub").as_os_str(),
    ]);
    out.ok().split_whitespace().next().unwrap().to_owned()
}

#[test]
fn a_signed_user_key_reads_back_with_show_fingerprint_and_the_library() {
    let sandbox = ca_sandbox();
    let run = sign(
        &sandbox,
        &[
            "--name",
            "ann",
            "--serial",
            "7",
            "--valid-from",
            "2027-01-15T08:00:00Z",
            "--valid-until",
            "2027-01-15T17:00:00+01:00",
            "--option",
            "no-files",
            "--option",
            r#"allow="systemctl status *""#,
        ],
        "ann.pub",
    );
    run.ok();
    assert_eq!(
        run.stderr,
        "Signed user key ann-cert.pub: name \"ann\" serial 7 valid from 2027-01-15T08:00:00Z \
         to 2027-01-15T16:00:00Z options no-files,allow=\"systemctl status *\"\n"
    );
    let path = sandbox.path().join("ann-cert.pub");
    assert_eq!(mode_of(&path), 0o644);
    let text = fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("seashell-rsa-cert ") && text.ends_with(" test-client\n"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1, "{text}");

    let line = read_cert(&path);
    assert_eq!(line.comment, "test-client");
    let fields = line.cert.fields();
    assert_eq!(fields.kind, CertKind::User);
    assert_eq!(fields.name, "ann");
    assert_eq!(fields.serial, 7);
    assert_eq!(
        (fields.valid_after, fields.valid_before),
        (START, START + 8 * 3600)
    );
    assert_eq!(
        line.cert.options(),
        &[
            KeyOption::NoFiles,
            KeyOption::Allow("systemctl status *".into())
        ]
    );
    assert_eq!(line.cert.key_fingerprint(), CLIENT_FP);
    line.cert.verify(&ca_public(), START).unwrap();
    let other = private::load_public_key_file(&fixture_path("other_rsa.pub"))
        .unwrap()
        .0;
    assert_eq!(
        line.cert.verify(&other, START),
        Err(cert::CertRefusal::WrongCa)
    );

    let ca_fp = ca_fingerprint(&sandbox);
    assert_eq!(line.cert.ca_fingerprint(), ca_fp);
    let shown = sandbox.seashell(["ca", "show", "ann-cert.pub"]);
    let shown = shown.ok();
    let fixed: Vec<&str> = shown
        .lines()
        .filter(|line| !line.starts_with("status:"))
        .collect();
    assert_eq!(
        fixed,
        [
            "type:        user certificate".to_owned(),
            format!("key:         {CLIENT_FP}"),
            "name:        ann".to_owned(),
            "serial:      7".to_owned(),
            "valid from:  2027-01-15T08:00:00Z".to_owned(),
            "valid until: 2027-01-15T16:00:00Z".to_owned(),
            r#"options:     no-files,allow="systemctl status *""#.to_owned(),
            format!("ca:          {ca_fp}"),
            "comment:     test-client".to_owned(),
        ]
    );
    // Whether that window is past or to come depends on today: it is not valid now.
    let status = shown.lines().find(|line| line.starts_with("status:"));
    assert!(
        matches!(
            status,
            Some("status:      not yet valid" | "status:      expired")
        ),
        "{shown}"
    );

    let fingerprint = sandbox.seashell(["fingerprint", "ann-cert.pub"]);
    let indented: String = shown.lines().map(|line| format!("  {line}\n")).collect();
    assert_eq!(
        fingerprint.ok(),
        format!("{CLIENT_FP} test-client\n{indented}")
    );
}

#[test]
fn a_host_certificate_names_its_hosts_and_a_renewal_replaces_it() {
    let sandbox = Sandbox::new();
    sandbox.fixture("ca_rsa");
    sandbox.fixture("host_rsa.pub");
    let run = sign(
        &sandbox,
        &[
            "--host",
            "--name",
            "web1.lan,10.0.0.7,fd00::7",
            "--valid",
            "52w",
        ],
        "host_rsa.pub",
    );
    run.ok();
    assert!(
        run.stderr.starts_with(
            "Signed host key host_rsa-cert.pub: hosts \"web1.lan,10.0.0.7,fd00::7\" serial "
        ),
        "{}",
        run.stderr
    );
    let path = sandbox.path().join("host_rsa-cert.pub");
    let first = read_cert(&path);
    let fields = first.cert.fields();
    assert_eq!(fields.kind, CertKind::Host);
    assert_eq!(
        first.cert.names().collect::<Vec<_>>(),
        ["web1.lan", "10.0.0.7", "fd00::7"]
    );
    assert_eq!(fields.valid_before - fields.valid_after, 52 * 7 * 86_400);
    assert_eq!(fields.options, "");
    assert_eq!(first.cert.key_fingerprint(), HOST_FP);
    first.cert.verify(&ca_public(), fields.valid_after).unwrap();
    let shown = sandbox.seashell(["ca", "show", "host_rsa-cert.pub"]);
    let shown = shown.ok();
    for expected in [
        "type:        host certificate\n",
        "hosts:       web1.lan,10.0.0.7,fd00::7\n",
        "options:     none\n",
        "status:      valid\n",
        "comment:     test-host\n",
    ] {
        assert!(shown.contains(expected), "{expected:?} in {shown}");
    }

    // Signed again: the file is replaced, and with no --serial each gets a random one.
    sign(
        &sandbox,
        &["--host", "--name", "web1.lan", "--valid", "30d"],
        "host_rsa.pub",
    )
    .ok();
    let second = read_cert(&path);
    assert_eq!(second.cert.fields().name, "web1.lan");
    assert_ne!(second.cert.fields().serial, fields.serial);
    assert_ne!(second.cert.fields().serial, 0);
}

#[test]
fn bad_requests_are_refused_with_their_reason_and_write_nothing() {
    let sandbox = ca_sandbox();
    let cert_path = sandbox.path().join("ann-cert.pub");
    for (args, why) in [
        (
            &["--name", "ann", "--valid", "8x"][..],
            "invalid value '8x' for '--valid <DURATION>': `8x` is not a number and a unit",
        ),
        (
            &["--name", "ann", "--valid", "1h30m"],
            "is not a number and a unit (s, m, h, d, w)",
        ),
        (
            &["--name", "ann"],
            "the following required arguments were not provided",
        ),
        (
            &[
                "--name",
                "ann",
                "--valid",
                "8h",
                "--valid-until",
                "2030-01-01T00:00:00Z",
            ],
            "cannot be used with",
        ),
        (
            &["--name", "ann", "--valid-until", "2030-01-01"],
            "`2030-01-01` is not an RFC 3339 time",
        ),
        (
            &["--name", "ann", "--valid", "8h", "--option", "bogus"],
            "cannot certify ann.pub: option: unknown option `bogus`",
        ),
        (
            &[
                "--name",
                "ann",
                "--valid",
                "8h",
                "--option",
                r#"expires="2030-01-01""#,
            ],
            "option `expires`: not in a certificate",
        ),
        (
            &[
                "--name",
                "ann",
                "--valid",
                "8h",
                "--option",
                "no-files no-pty",
            ],
            "expected `,` between options, not a space",
        ),
        (
            &["--host", "--name", "*.lan", "--valid", "8h"],
            "cannot certify ann.pub: the name `*.lan` is a pattern",
        ),
        (
            &["--name", "ann,bob", "--valid", "8h"],
            "the name `ann,bob` has a character a name may not",
        ),
        (
            &[
                "--name",
                "ann",
                "--valid-from",
                "2030-01-02T00:00:00Z",
                "--valid-until",
                "2030-01-01T00:00:00Z",
            ],
            "validity: it ends before it starts",
        ),
    ] {
        let run = sign(&sandbox, args, "ann.pub");
        let stderr = run.failed_with(1);
        assert!(stderr.contains(why), "{args:?}: {stderr}");
        assert!(!cert_path.exists(), "{args:?} wrote a certificate");
    }

    let private_key = sign(&sandbox, &["--name", "ann", "--valid", "8h"], "ca_rsa");
    let stderr = private_key.failed_with(1);
    assert!(
        stderr.contains("ca_rsa is a private key: pass its public key (ca_rsa.pub)"),
        "{stderr}"
    );
    assert!(!sandbox.path().join("ca_rsa-cert.pub").exists());
}

#[test]
fn an_encrypted_ca_key_takes_its_passphrase_and_bad_fields_are_refused_before_asking() {
    let sandbox = ca_sandbox();
    sandbox.fixture("client_enc_rsa");
    let pass = sandbox.write("pass", &format!("{FIXTURE_PASSPHRASE}\n"));
    let enc = |args: &[&str]| {
        let mut all = vec!["ca", "sign", "--ca", "client_enc_rsa"];
        all.extend_from_slice(args);
        all.push("ann.pub");
        sandbox.seashell(all)
    };

    let no_passphrase = enc(&["--name", "ann", "--valid", "1h"]);
    let stderr = no_passphrase.failed_with(1);
    assert!(
        stderr.contains("client_enc_rsa is encrypted and no passphrase was given"),
        "{stderr}"
    );
    let bad_name = enc(&["--host", "--name", "*.lan", "--valid", "1h"]);
    let stderr = bad_name.failed_with(1);
    assert!(stderr.contains("is a pattern"), "{stderr}");

    let pass_arg = pass.to_str().unwrap();
    enc(&[
        "--name",
        "ann",
        "--valid",
        "1h",
        "--passphrase-file",
        pass_arg,
    ])
    .ok();
    let line = read_cert(&sandbox.path().join("ann-cert.pub"));
    assert_eq!(line.cert.ca_fingerprint(), ENC_FP);
}

#[test]
fn show_refuses_what_is_not_a_certificate_and_escapes_what_it_prints() {
    let sandbox = ca_sandbox();
    let run = sandbox.seashell(["ca", "show", "ann.pub"]);
    assert!(
        run.failed_with(1)
            .contains("ann.pub:1: expected a line starting with `seashell-rsa-cert`"),
        "{run:#?}"
    );
    let run = sandbox.seashell(["ca", "show", "missing-cert.pub"]);
    assert!(
        run.failed_with(1).contains("cannot read missing-cert.pub"),
        "{run:#?}"
    );
    sandbox.write("cut-cert.pub", "seashell-rsa-cert AQAB\n");
    for command in [&["ca", "show"][..], &["fingerprint"]] {
        let mut args = command.to_vec();
        args.push("cut-cert.pub");
        let run = sandbox.seashell(args);
        assert!(
            run.failed_with(1)
                .contains("cut-cert.pub:1: not a valid seashell certificate (key)"),
            "{command:?}: {run:#?}"
        );
    }

    // A comment with a terminal escape in the key file: printed escaped, never live.
    let key_line = fs::read_to_string(fixture_path("client_rsa.pub")).unwrap();
    let bare = key_line.split_whitespace().take(2).collect::<Vec<_>>();
    sandbox.write("evil.pub", &format!("{} \u{1b}[2Jevil\n", bare.join(" ")));
    sign(&sandbox, &["--name", "ann", "--valid", "1h"], "evil.pub").ok();
    for command in [&["ca", "show"][..], &["fingerprint"]] {
        let mut args = command.to_vec();
        args.push("evil-cert.pub");
        let out = sandbox.seashell(args);
        let out = out.ok();
        assert!(out.contains("\\u{1b}[2Jevil"), "{command:?}: {out}");
        assert!(!out.contains('\u{1b}'), "{command:?}: {out:?}");
    }
}
