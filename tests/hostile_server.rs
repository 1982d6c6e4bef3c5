//! The real `seashell cp` against a malicious server: a fake one in this process, on
//! 127.0.0.1, with the fixture host key, that answers the client's transfer requests with
//! whatever the test scripts. Covered: tree paths that climb out of the destination (the
//! claim in SECURITY.md that a server cannot write outside it), and the server's text (a
//! TransferFailed reason, a path in a tree, a Close reason) reaching the client's terminal
//! only with its control characters escaped.

use std::fs;
use std::future::Future;
use std::path::Path;

use seashell::proto::{Message, PathKind};
use seashell::transport::SecureChannel;
use tokio::net::{TcpListener, TcpStream};

use crate::channel::{accept, server_side};
use crate::common::{Run, Sandbox};

/// What a window-title escape and a clear-screen look like once escaped.
const EVIL: &str = "\u{1b}]0;pwned\u{7}\u{1b}[2J";
const EVIL_SHOWN: &str = "\\u{1b}]0;pwned\\u{7}\\u{1b}[2J";

/// Runs `seashell cp -P PORT ARGS` (`HOST:` in ARGS is the fake server: `127.0.0.1:`)
/// against one connection served by `script`, after the handshake and the first
/// ConsoleState. Returns the client's run.
async fn cp_against<F, Fut>(sandbox: &Sandbox, args: &[&str], script: F) -> Run
where
    F: FnOnce(SecureChannel<TcpStream>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let dest = addr.to_string();
    sandbox.install_identity("client_rsa");
    sandbox.pin_host(&dest, "host_rsa.pub");
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let pending = server_side(stream).await.unwrap();
        let (_, mut channel) = accept(pending).await;
        channel
            .writer
            .send(&Message::ConsoleState { cwd: "/srv" })
            .await
            .unwrap();
        script(channel).await;
    });
    let port = addr.port().to_string();
    let args: Vec<String> = ["cp", "-P", &port]
        .into_iter()
        .chain(args.iter().copied())
        .map(|a| a.replace("HOST:", "127.0.0.1:"))
        .collect();
    let client = sandbox.clone();
    let run = tokio::task::spawn_blocking(move || client.seashell(args))
        .await
        .unwrap();
    server.abort();
    run
}

/// Answers a Stat that it is a directory, then the GetTree with its root and `entries`,
/// then whatever
/// the client sends until it hangs up: a TransferFailed (the client gave up on an entry) is
/// answered with TransferFailed, the final reply it waits for.
async fn serve_tree(mut channel: SecureChannel<TcpStream>, entries: Vec<Entry>) {
    let Ok(Message::Stat { .. }) = channel.reader.recv().await else {
        return;
    };
    let kind = Message::StatResult(PathKind::Directory);
    channel.writer.send(&kind).await.unwrap();
    let Ok(Message::GetTree { .. }) = channel.reader.recv().await else {
        return;
    };
    let root = Message::MakeDir {
        path: "",
        mode: 0o755,
    };
    if channel.writer.send(&root).await.is_err() {
        return;
    }
    for entry in &entries {
        let sent = match entry {
            Entry::Dir(path) => {
                channel
                    .writer
                    .send(&Message::MakeDir { path, mode: 0o755 })
                    .await
            }
            Entry::File(path, data) => send_file(&mut channel, path, data).await,
        };
        if sent.is_err() {
            return;
        }
    }
    let _ = channel.writer.send(&Message::TransferDone).await;
    while let Ok(message) = channel.reader.recv().await {
        if matches!(message, Message::TransferFailed { .. }) {
            let cancelled = Message::TransferFailed {
                reason: "cancelled",
            };
            if channel.writer.send(&cancelled).await.is_err() {
                return;
            }
        }
    }
}

/// One entry of a tree the fake server sends.
#[derive(Clone, Copy)]
enum Entry {
    Dir(&'static str),
    File(&'static str, &'static [u8]),
}

async fn send_file(
    channel: &mut SecureChannel<TcpStream>,
    path: &str,
    data: &[u8],
) -> Result<(), seashell::transport::TransportError> {
    let info = Message::FileInfo {
        path,
        size: data.len() as u64,
        mode: 0o644,
        mtime: 0,
        offset: 0,
    };
    channel.writer.send(&info).await?;
    channel.writer.send(&Message::FileData(data)).await?;
    let sha256 = seashell::crypto::sha256(data);
    channel.writer.send(&Message::FileEnd { sha256 }).await
}

/// Every file and directory under `root`, relative, sorted.
fn listing(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            found.push(path.strip_prefix(root).unwrap().display().to_string());
            if path.is_dir() && !path.is_symlink() {
                stack.push(path);
            }
        }
    }
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_cannot_write_outside_the_destination_of_a_tree() {
    let escapes: [&[Entry]; 7] = [
        &[Entry::Dir("..")],
        &[Entry::Dir("../escaped")],
        &[Entry::File("../escaped", b"planted")],
        &[
            Entry::Dir("ok"),
            Entry::File("ok/../../escaped", b"planted"),
        ],
        &[Entry::File("/tmp/escaped-absolute", b"planted")],
        &[Entry::File("ok//escaped", b"planted")],
        &[Entry::File("./escaped", b"planted")],
    ];
    for entries in escapes {
        let sandbox = Sandbox::new();
        let outside = sandbox.path().join("outside");
        fs::create_dir(&outside).unwrap();
        let down = outside.join("down");
        fs::create_dir(&down).unwrap();
        let entries = entries.to_vec();
        let run = cp_against(&sandbox, &["-r", "HOST:proj", "outside/down"], |channel| {
            serve_tree(channel, entries)
        })
        .await;
        assert_eq!(run.code, Some(1), "{run:#?}");
        assert!(run.stderr.contains("not an acceptable path"), "{run:#?}");
        // Nothing planted anywhere: not beside the destination, not above it, not in it.
        let found = listing(sandbox.path());
        assert!(
            !found.iter().any(|path| path.contains("escaped")),
            "{found:?} {run:#?}"
        );
        let inside = listing(&outside);
        assert!(
            inside.iter().all(|path| path.starts_with("down")),
            "{inside:?} {run:#?}"
        );
        assert!(!Path::new("/tmp/escaped-absolute").exists());
    }
}

/// How the fake server answers the client's GetFile.
#[derive(Clone, Copy)]
enum Refusal {
    TransferFailed,
    Close,
}

/// `cp HOST:secret here` against a server that answers with `refusal` and `reason`.
async fn refused_get(refusal: Refusal, reason: String) -> Run {
    let sandbox = Sandbox::new();
    cp_against(
        &sandbox,
        &["HOST:secret", "here"],
        move |mut channel| async move {
            let Ok(Message::GetFile { .. }) = channel.reader.recv().await else {
                return;
            };
            match refusal {
                Refusal::TransferFailed => {
                    let failed = Message::TransferFailed { reason: &reason };
                    channel.writer.send(&failed).await.unwrap();
                    while channel.reader.recv().await.is_ok() {}
                }
                Refusal::Close => {
                    let _ = channel.writer.close(&reason).await;
                }
            }
        },
    )
    .await
}

/// The run exited `code` and showed `escaped`, with no escape character left.
fn assert_shown_escaped(run: &Run, code: i32, escaped: &str) {
    assert_eq!(run.code, Some(code), "{run:#?}");
    assert!(!run.stderr.contains('\u{1b}'), "{run:#?}");
    assert!(run.stderr.contains(escaped), "{run:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_failed_reason_is_shown_escaped() {
    let run = refused_get(Refusal::TransferFailed, format!("no such file{EVIL}")).await;
    assert_shown_escaped(&run, 1, &format!("no such file{EVIL_SHOWN}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_reason_is_shown_escaped() {
    let run = refused_get(Refusal::Close, format!("going away{EVIL}")).await;
    assert_shown_escaped(&run, 255, &format!("going away{EVIL_SHOWN}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_in_a_tree_is_shown_escaped_in_errors() {
    let sandbox = Sandbox::new();
    fs::create_dir(sandbox.path().join("down")).unwrap();
    // A file under a directory the server never made: the client cannot create it and
    // names it in its error.
    let entries = vec![Entry::File("missing\u{1b}[2J/file", b"x")];
    let run = cp_against(&sandbox, &["-r", "HOST:proj", "down"], |channel| {
        serve_tree(channel, entries)
    })
    .await;
    assert_shown_escaped(&run, 1, "missing\\u{1b}[2J");
}
