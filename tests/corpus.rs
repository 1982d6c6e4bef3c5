//! Replays the committed fuzz corpora on stable Rust, with no fuzzer: every file of
//! `fuzz/corpus/TARGET/` goes through `seashell::fuzzing::TARGET`, which must not panic. A
//! crash the fuzzer found, once minimised into the corpus, stays a regression test here; a
//! missing or empty corpus directory fails. The ignored `write_seed_corpora` writes the seed
//! inputs the corpora grew from (run it after a protocol change, then fuzz and minimise
//! again: see fuzz/README.md).

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use seashell::audit::Seal;
use seashell::audit::chain::{AuditChain, EventKind, Record};
use seashell::fuzzing;
use seashell::keys::public::fingerprint;
use seashell::proto::handshake::{client, server};
use seashell::proto::message::{ClientHello, KeyTransport, ServerHello, VersionRefused};
use seashell::proto::record::HEADER_LEN;
use seashell::proto::{ExitStatus, Message, OwnedMessage, WindowSize};

use crate::proto::{client_key, fixture_key, server_keys};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

/// Runs every file of `target`'s corpus through `run`, naming the file that panics.
fn replay(target: &str, run: fn(&[u8])) {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|err| {
            panic!(
                "{}: {err}: every fuzz target's corpus is committed",
                dir.display()
            )
        })
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    for file in files {
        let bytes = fs::read(&file).unwrap();
        let outcome = catch_unwind(AssertUnwindSafe(|| run(&bytes)));
        assert!(outcome.is_ok(), "{} panicked (see above)", file.display());
    }
}

#[test]
fn record() {
    replay("record", fuzzing::record);
}

#[test]
fn agent() {
    replay("agent", fuzzing::agent);
}

#[test]
fn message() {
    replay("message", fuzzing::message);
}

#[test]
fn server_handshake() {
    replay("server_handshake", fuzzing::server_handshake);
}

#[test]
fn client_handshake() {
    replay("client_handshake", fuzzing::client_handshake);
}

#[test]
fn authorized_keys() {
    replay("authorized_keys", fuzzing::authorized_keys);
}

#[test]
fn known_hosts() {
    replay("known_hosts", fuzzing::known_hosts);
}

#[test]
fn config() {
    replay("config", fuzzing::config);
}

#[test]
fn allow() {
    replay("allow", fuzzing::allow);
}

#[test]
fn audit_line() {
    replay("audit_line", fuzzing::audit_line);
}

#[test]
fn tree_path() {
    replay("tree_path", fuzzing::tree_path);
}

/// `seashell::fuzzing` is for `fuzz/` and this file: no other library module and nothing of
/// the binary names it.
#[test]
fn the_program_never_uses_the_fuzzing_entry_points() {
    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                out.push(path);
            }
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let own = |path: &Path| {
        path == src.join("fuzzing.rs")
            || path == src.join("lib.rs")
            || path.starts_with(src.join("fuzzing"))
    };
    let users: Vec<_> = files
        .iter()
        .filter(|path| !own(path))
        .filter(|path| fs::read_to_string(path).unwrap().contains("fuzzing::"))
        .collect();
    assert!(
        files.len() > 20,
        "only {} files under {}",
        files.len(),
        src.display()
    );
    assert!(
        users.is_empty(),
        "the program uses seashell::fuzzing: {users:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Seeds: valid inputs for each target, in the layout its fuzzing function documents
// ---------------------------------------------------------------------------------------

/// Writes the seed inputs into `fuzz/corpus/TARGET/seed-*`.
#[test]
#[ignore = "writes the seed corpora into fuzz/corpus; run by hand"]
fn write_seed_corpora() {
    let seeds: [(&str, Vec<Vec<u8>>); 11] = [
        ("agent", agent_seeds()),
        ("record", record_seeds()),
        ("message", message_seeds()),
        ("server_handshake", server_handshake_seeds()),
        ("client_handshake", client_handshake_seeds()),
        ("authorized_keys", authorized_keys_seeds()),
        ("known_hosts", known_hosts_seeds()),
        ("config", config_seeds()),
        ("allow", allow_seeds()),
        ("audit_line", audit_line_seeds()),
        ("tree_path", tree_path_seeds()),
    ];
    for (target, inputs) in seeds {
        let dir = corpus_dir(target);
        fs::create_dir_all(&dir).unwrap();
        for (n, input) in inputs.iter().enumerate() {
            fs::write(dir.join(format!("seed-{n:02}")), input).unwrap();
        }
    }
}

/// Each agent request and response body, after its selector byte (0 request, 1 response).
fn agent_seeds() -> Vec<Vec<u8>> {
    use seashell::proto::agent::{Listed, Request, Response};
    use seashell::proto::handshake::CLIENT_SIGNATURE_LABEL;
    let spki = client_key().public_key().spki_der().to_vec();
    let data = [CLIENT_SIGNATURE_LABEL, &[5; 32]].concat();
    let body = |encode: &dyn Fn(&mut Vec<u8>)| {
        let mut out = Vec::new();
        encode(&mut out);
        out.split_off(4)
    };
    let requests = [
        Request::Add {
            private_key: b"not a key",
            comment: "ops@box",
            lifetime_secs: 28800,
            certificate: b"",
        },
        Request::Remove { public_key: &spki },
        Request::RemoveAll,
        Request::List,
        Request::Sign {
            public_key: &spki,
            data: &data,
        },
        Request::Add {
            private_key: b"not a key",
            comment: "ops@box",
            lifetime_secs: 0,
            certificate: b"not a certificate",
        },
        Request::Certificate { public_key: &spki },
    ];
    let responses = [
        Response::Ok,
        Response::Failure("the agent does not hold that key"),
        Response::Keys(vec![Listed {
            public_key: &spki,
            comment: "test-client",
            expires_in_secs: 60,
        }]),
        Response::Signature(&[7; 384]),
        Response::Certificate(b"not a certificate"),
        Response::Certificate(b""),
    ];
    let mut seeds: Vec<Vec<u8>> = requests
        .iter()
        .map(|r| [&[0][..], &body(&|out| r.encode(out).unwrap())].concat())
        .collect();
    seeds.extend(
        responses
            .iter()
            .map(|r| [&[1][..], &body(&|out| r.encode(out).unwrap())].concat()),
    );
    seeds
}

fn encode(msg: &Message<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    msg.encode(&mut out).unwrap();
    out
}

/// Messages of most kinds, as values.
fn sample_messages() -> Vec<OwnedMessage> {
    let size = WindowSize {
        rows: 24,
        cols: 80,
        xpixel: 0,
        ypixel: 0,
    };
    let of = |m: Message<'_>| m.to_owned_message();
    vec![
        OwnedMessage::ClientAuth {
            public_key: client_key().public_key().spki_der().to_vec(),
            signature: vec![7; 384],
            account: "root".into(),
            certificate: Vec::new(),
        },
        OwnedMessage::AuthOk {
            session_id: [9; 32],
        },
        OwnedMessage::AuthFailed,
        OwnedMessage::Close {
            reason: "bye".into(),
        },
        OwnedMessage::Exec {
            line: "ls -l /tmp".into(),
        },
        of(Message::ExecPty {
            line: "top",
            term: "xterm-256color",
            size,
        }),
        OwnedMessage::Stdin(b"input\n".to_vec()),
        OwnedMessage::StdinEof,
        OwnedMessage::Interrupt,
        OwnedMessage::Stdout(b"output\n".to_vec()),
        OwnedMessage::Stderr(b"error\n".to_vec()),
        OwnedMessage::Exit(ExitStatus::Code(3)),
        OwnedMessage::Exit(ExitStatus::Signal(9)),
        OwnedMessage::ConsoleState {
            cwd: "/root".into(),
        },
        OwnedMessage::Ping(1),
        OwnedMessage::Pong(1),
        of(Message::WindowChange(size)),
        of(Message::OpenConsole {
            term: "xterm",
            size,
        }),
        of(Message::Complete {
            word: "ls /et",
            command: false,
        }),
        of(Message::Completions { names: "etc/\0" }),
        of(Message::Stat { path: "a.txt" }),
        of(Message::PutFile {
            path: "dir/a.txt",
            size: 5,
            mode: 0o644,
            mtime: Some(1_700_000_000),
            resume: false,
        }),
        of(Message::GetFile {
            path: "a.txt",
            offset: 0,
            prefix_sha256: [0; 32],
        }),
        of(Message::FileData(b"hello")),
        of(Message::FileEnd { sha256: [1; 32] }),
        of(Message::MakeDir {
            path: "dir",
            mode: 0o755,
        }),
        of(Message::TransferDone),
        of(Message::TransferFailed { reason: "no space" }),
    ]
}

/// `len: u16 || encoding` for each message.
fn prefixed(messages: &[OwnedMessage]) -> Vec<u8> {
    let mut out = Vec::new();
    for msg in messages {
        let bytes = encode(&msg.as_message());
        out.extend_from_slice(&u16::try_from(bytes.len()).unwrap().to_be_bytes());
        out.extend(bytes);
    }
    out
}

fn record_seeds() -> Vec<Vec<u8>> {
    let messages = sample_messages();
    let mut forged = vec![0];
    forged.extend_from_slice(&40u32.to_be_bytes());
    forged.extend([0x5A; 40]);
    let untouched = [&[1, 0xFF, 0xFF, 0][..], &prefixed(&messages[3..9])].concat();
    let tampered = [&[1, 0, 30, 0x80][..], &prefixed(&messages[3..9])].concat();
    vec![forged, untouched, tampered]
}

fn message_seeds() -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = sample_messages()
        .iter()
        .map(|msg| [&[0][..], &encode(&msg.as_message())].concat())
        .collect();
    let mut hello = vec![1];
    ClientHello {
        random: [1; 32],
        x25519: [2; 32],
    }
    .encode(&mut hello);
    seeds.push(hello);
    let mut server_hello = vec![2];
    ServerHello {
        random: [1; 32],
        x25519: [2; 32],
        host_key: fixture_key("host_rsa").public_key().spki_der().to_vec(),
        transport_key: fixture_key("transport_rsa")
            .public_key()
            .spki_der()
            .to_vec(),
        signature: vec![3; 384],
        certificate: Vec::new(),
    }
    .encode(&mut server_hello)
    .unwrap();
    seeds.push(server_hello);
    let mut key_transport = vec![3];
    KeyTransport {
        ciphertext: vec![4; 384],
    }
    .encode(&mut key_transport)
    .unwrap();
    seeds.push(key_transport);
    let mut refused = vec![4];
    VersionRefused {
        versions: vec![1, 2],
    }
    .encode(&mut refused)
    .unwrap();
    seeds.push(refused);
    seeds
}

fn server_handshake_seeds() -> Vec<Vec<u8>> {
    let messages = sample_messages();
    let (_, hello_wire) = client::start().unwrap();
    let hello = ClientHello::decode(&hello_wire[HEADER_LEN..]).unwrap();
    let mut key_transport = Vec::new();
    // The size of the fuzz server's 2048-bit transport key: the server tries to decrypt it.
    KeyTransport {
        ciphertext: vec![4; 256],
    }
    .encode(&mut key_transport)
    .unwrap();
    let mut kt_stage = vec![1];
    kt_stage.extend(hello.x25519);
    seashell::proto::handshake::put_record(&mut kt_stage, &key_transport);
    let short_kt = [&[1][..], &[9; 32], &[0, 0, 0, 3, 3, 0, 0]].concat();
    vec![
        [&[0][..], &hello_wire].concat(),
        kt_stage,
        short_kt,
        [&[2, 0][..], &prefixed(&messages[..1])].concat(),
        [&[2, 1][..], &prefixed(&messages[3..12])].concat(),
    ]
}

fn client_handshake_seeds() -> Vec<Vec<u8>> {
    let messages = sample_messages();
    let (_, hello) = client::start().unwrap();
    let (_, reply) = server::accept(server_keys(), &hello[HEADER_LEN..]).unwrap();
    let refusal = server::version_refusal();
    vec![
        [&[0][..], &reply].concat(),
        [&[0][..], &refusal].concat(),
        [&[1, 0][..], &prefixed(&messages[1..3])].concat(),
        [&[1, 1][..], &prefixed(&messages[3..12])].concat(),
    ]
}

/// `seashell-rsa <base64>` of a fixture's public key line, without its comment.
fn key_part(name: &str) -> String {
    let line = fs::read_to_string(format!(
        "{}/tests/fixtures/{name}.pub",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    line.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

fn authorized_keys_seeds() -> Vec<Vec<u8>> {
    let client = key_part("client_rsa");
    let other = key_part("other_rsa");
    let text = [
        "# clients".to_owned(),
        format!("{client} alice@laptop"),
        format!(r#"from="10.0.0.0/8, fd00::/8",expires="2030-02-28" {other} bob"#),
        format!(r#"allow="ls *",allow="uptime",no-pty {client}"#),
        format!(r#"command="backup",no-files {other} backup job"#),
        format!(r#"allow="echo \"a, b\" c" {client}"#),
        "no-such-option seashell-rsa AAAA".to_owned(),
    ];
    text.iter()
        .map(|line| line.as_bytes().to_vec())
        .chain([text.join("\n").into_bytes()])
        .collect()
}

fn known_hosts_seeds() -> Vec<Vec<u8>> {
    let host = key_part("host_rsa");
    let other = key_part("other_rsa");
    let text = [
        "# pinned hosts".to_owned(),
        format!("box.lan:7022 {host}"),
        format!("[fd00::1]:2222 {other}"),
        format!("10.0.0.1:22 {host}"),
        "bad line".to_owned(),
    ];
    vec![text.join("\n").into_bytes(), text[1].clone().into_bytes()]
}

fn config_seeds() -> Vec<Vec<u8>> {
    let example = fs::read(format!("{}/docs/seashell.toml", env!("CARGO_MANIFEST_DIR"))).unwrap();
    vec![
        example,
        b"listen = \"[::1]:7022\"\nshell = \"/bin/sh\"\nsyslog = \"udp:[::1]:514\"\n".to_vec(),
        b"[commands]\nrestart-web = [\"systemctl\", \"restart\", \"nginx\"]\n".to_vec(),
        b"max_sessions = 0\n".to_vec(),
    ]
}

fn allow_seeds() -> Vec<Vec<u8>> {
    [
        "ls *\0ls -l /tmp",
        "uptime\0uptime",
        "git log *\0git log --oneline -n 3",
        "cat /var/log/?.log\0cat /var/log/a.log; rm -rf /",
        "echo 'a b'\0echo \"a b\"",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

fn audit_line_seeds() -> Vec<Vec<u8>> {
    let host = fixture_key("host_rsa");
    let host_fingerprint = fingerprint(host.public_key());
    let mut chain = AuditChain::new([7; 32]);
    let time = || "2025-06-01T12:00:00.000Z".to_owned();
    let mut lines = Vec::new();
    let steps = [
        (EventKind::Start, None),
        (EventKind::Connect, None),
        (EventKind::AuthOk, None),
        (EventKind::Command, Some("ls -l")),
        (EventKind::Exit, None),
    ];
    for (kind, command) in steps {
        let mut record = Record::new(kind);
        record.session = Some("ab12".into());
        record.peer = Some("10.0.0.2:50000".into());
        record.command = command.map(str::to_owned);
        if kind == EventKind::Exit {
            record.exit = Some(0);
            record.duration_ms = Some(12);
        }
        lines.push(chain.seal(record, time()).unwrap());
    }
    lines.push(
        chain
            .seal_checkpoint(time(), &host, &host_fingerprint, None)
            .unwrap(),
    );
    lines.push(chain.seal(Record::new(EventKind::Stop), time()).unwrap());
    lines.push(
        chain
            .seal_checkpoint(time(), &host, &host_fingerprint, Some(Seal::Final))
            .unwrap(),
    );
    let whole = lines.iter().map(|l| format!("{l}\n")).collect::<String>();
    let rotated = format!(
        "{}\x0c{}",
        lines[..4]
            .iter()
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
        lines[4..]
            .iter()
            .map(|l| format!("{l}\n"))
            .collect::<String>()
    );
    let torn = format!(
        "{}{{\"time\":",
        lines[..5]
            .iter()
            .map(|l| format!("{l}\n"))
            .collect::<String>()
    );
    vec![
        whole.into_bytes(),
        rotated.into_bytes(),
        torn.into_bytes(),
        lines[3].clone().into_bytes(),
        lines[5].clone().into_bytes(),
    ]
}

fn tree_path_seeds() -> Vec<Vec<u8>> {
    [
        "a/b/c.txt",
        "",
        "dir/ü file",
        "../etc/passwd",
        "a//b",
        "/abs",
        "a/./b",
        "x\0y",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}
