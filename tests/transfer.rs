//! File transfer end to end: the real `seashell cp` and the REPL's `put`/`get` against one
//! real server on 127.0.0.1, shared by every test here (a server costs a transport key).
//! Each test works in its own directory under the server's home, removed at its end.
//! Covered: byte-identical round trips at the frame edges and for 100 MB, mode bits and
//! `-p`, trees with empty directories and odd names, missing and unwritable destinations,
//! clients killed or signalled mid-transfer, `--resume`, `no-files`, the REPL, usage errors.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use seashell::proto::record::MAX_CHUNK;

use crate::common::{Run, Sandbox, Server, fixture_path, mode_of, wait_for};

/// The server every test here shares: `client_rsa` trusted, `other_rsa` with `no-files`.
fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let client = fs::read_to_string(fixture_path("client_rsa.pub")).unwrap();
        let other = fs::read_to_string(fixture_path("other_rsa.pub")).unwrap();
        let trusted = format!("{}\nno-files {}\n", client.trim(), other.trim());
        Server::start(&Sandbox::new(), &[], &trusted)
    })
}

/// One test's client: a sandbox with the client key, and a fresh directory on the server.
struct Client {
    sandbox: Sandbox,
    key: PathBuf,
    other_key: PathBuf,
    dir: String,
}

impl Client {
    fn new(dir: &str) -> Self {
        let sandbox = Sandbox::new();
        let key = sandbox.fixture("client_rsa");
        let other_key = sandbox.fixture("other_rsa");
        let remote = server().home().join(dir);
        let _ = fs::remove_dir_all(&remote);
        fs::create_dir(&remote).unwrap();
        Self {
            sandbox,
            key,
            other_key,
            dir: dir.to_owned(),
        }
    }

    /// `127.0.0.1:DIR/rel`: relative to the server user's home.
    fn remote(&self, rel: &str) -> String {
        format!("127.0.0.1:{}/{rel}", self.dir)
    }

    /// Where `rel` is on the server's disk.
    fn on_server(&self, rel: &str) -> PathBuf {
        server().home().join(&self.dir).join(rel)
    }

    /// Where `rel` is on the client's disk.
    fn local(&self, rel: &str) -> PathBuf {
        self.sandbox.path().join(rel)
    }

    fn cp_args(&self, key: &Path, args: &[&str]) -> Vec<String> {
        let mut all: Vec<String> = ["cp", "-P", &server().port().to_string(), "-i"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        all.push(key.display().to_string());
        all.push("--known-hosts".into());
        all.push(self.local("known_hosts").display().to_string());
        all.push("--accept-new".into());
        all.extend(args.iter().map(|s| (*s).to_owned()));
        all
    }

    fn cp(&self, args: &[&str]) -> Run {
        self.sandbox.seashell(self.cp_args(&self.key, args))
    }

    fn cp_spawn(&self, args: &[&str]) -> std::process::Child {
        self.sandbox
            .command(self.cp_args(&self.key, args))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn repl(&self, script: &str) -> Run {
        let port = server().port().to_string();
        let kh = self.local("known_hosts");
        let args = [
            "connect",
            "-p",
            &port,
            "-i",
            self.key.to_str().unwrap(),
            "--known-hosts",
            kh.to_str().unwrap(),
            "--accept-new",
            "127.0.0.1",
        ];
        self.sandbox.seashell_with_input(args, script)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(server().home().join(&self.dir));
    }
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Writes `len` pseudo-random bytes (xorshift, seeded) to `path`.
fn write_random(path: &Path, len: usize, seed: u64) {
    let mut state = seed | 1;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, fs::File::create(path).unwrap());
    let mut left = len;
    let mut block = vec![0u8; 1 << 20];
    while left > 0 {
        for word in block.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes()[..word.len()]);
        }
        let n = left.min(block.len());
        out.write_all(&block[..n]).unwrap();
        left -= n;
    }
    out.flush().unwrap();
}

fn sha_of(path: &Path) -> [u8; 32] {
    let mut file = fs::File::open(path).unwrap();
    let mut hasher = seashell::crypto::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).unwrap();
        if n == 0 {
            return hasher.finish();
        }
        hasher.update(&buf[..n]);
    }
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Temporary files seashell left in `dir` (recursively).
fn partials_in(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(partials_in(&path));
        } else if path.to_string_lossy().ends_with(".seashell-partial") {
            found.push(path);
        }
    }
    found
}

fn partial_of(target: &Path) -> PathBuf {
    let name = target.file_name().unwrap().to_str().unwrap();
    target.with_file_name(format!(".{name}.seashell-partial"))
}

fn len_of(path: &Path) -> u64 {
    fs::metadata(path).map_or(0, |m| m.len())
}

#[test]
fn frame_edge_sizes_round_trip_byte_for_byte_with_their_modes() {
    let c = Client::new("edges");
    let sizes = [0, 1, MAX_CHUNK - 1, MAX_CHUNK, MAX_CHUNK + 1];
    let modes = [0o600, 0o640, 0o755, 0o444, 0o711];
    fs::create_dir(c.local("up")).unwrap();
    let mut names = Vec::new();
    for (i, (size, mode)) in sizes.iter().zip(modes).enumerate() {
        let path = c.local(&format!("up/f{size}"));
        write_random(&path, *size, i as u64 + 1);
        set_mode(&path, mode);
        names.push(path);
    }
    let mut args: Vec<&str> = names.iter().map(|p| s(p)).collect();
    let dest = c.remote("");
    args.push(&dest);
    c.cp(&args).ok();

    fs::create_dir(c.local("down")).unwrap();
    let remotes: Vec<String> = sizes.iter().map(|n| c.remote(&format!("f{n}"))).collect();
    let mut args: Vec<&str> = remotes.iter().map(String::as_str).collect();
    let down = c.local("down");
    args.push(s(&down));
    c.cp(&args).ok();

    for (size, mode) in sizes.iter().zip(modes) {
        let name = format!("f{size}");
        let original = fs::read(c.local(&format!("up/{name}"))).unwrap();
        for copy in [c.on_server(&name), c.local(&format!("down/{name}"))] {
            assert_eq!(fs::read(&copy).unwrap(), original, "{}", copy.display());
            assert_eq!(mode_of(&copy), mode, "{}", copy.display());
        }
    }
    assert!(partials_in(&c.on_server("")).is_empty());
    assert!(partials_in(&down).is_empty());
}

#[test]
fn a_hundred_megabytes_both_ways() {
    let c = Client::new("hundred");
    let original = c.local("big.bin");
    write_random(&original, 100_000_000, 42);
    c.cp(&[s(&original), &c.remote("big.bin")]).ok();
    assert_eq!(sha_of(&c.on_server("big.bin")), sha_of(&original));
    let back = c.local("back.bin");
    c.cp(&[&c.remote("big.bin"), s(&back)]).ok();
    assert_eq!(sha_of(&back), sha_of(&original));
    assert!(partials_in(&c.on_server("")).is_empty());
    assert!(partials_in(c.sandbox.path()).is_empty());
}

#[test]
fn mtime_is_kept_only_with_p() {
    let c = Client::new("mtime");
    let file = c.local("old");
    fs::write(&file, b"old news").unwrap();
    let long_ago = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(long_ago)
        .unwrap();
    c.cp(&[s(&file), &c.remote("plain")]).ok();
    c.cp(&["-p", s(&file), &c.remote("kept")]).ok();
    let mtime = |p: &Path| fs::metadata(p).unwrap().mtime();
    assert_ne!(mtime(&c.on_server("plain")), 1_000_000_000);
    assert_eq!(mtime(&c.on_server("kept")), 1_000_000_000);
    c.cp(&[&c.remote("kept"), s(&c.local("plain-back"))]).ok();
    c.cp(&["-p", &c.remote("kept"), s(&c.local("kept-back"))])
        .ok();
    assert_ne!(mtime(&c.local("plain-back")), 1_000_000_000);
    assert_eq!(mtime(&c.local("kept-back")), 1_000_000_000);
}

/// (relative path, "d" or file content, mode) of every entry under `root`, sorted.
fn tree_listing(root: &Path) -> Vec<(String, String, u32)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            let meta = fs::symlink_metadata(&path).unwrap();
            let mode = meta.permissions().mode() & 0o777;
            if meta.is_dir() {
                out.push((rel, "d".to_owned(), mode));
                stack.push(path);
            } else if meta.is_file() {
                out.push((rel, fs::read_to_string(&path).unwrap(), mode));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn trees_with_empty_directories_and_odd_names_both_ways() {
    let c = Client::new("trees");
    let root = c.local("my tree");
    for dir in ["empty dir", "ünï cödé/ß", "a/b/c/empty"] {
        fs::create_dir_all(root.join(dir)).unwrap();
    }
    fs::write(root.join("file with spaces.txt"), "spaces").unwrap();
    fs::write(root.join("ünï cödé/ß/日本語.txt"), "unicode").unwrap();
    fs::write(root.join("a/b/c/deep"), "deep").unwrap();
    fs::write(root.join("a/$(echo not run); *"), "shell chars").unwrap();
    set_mode(&root.join("a/b"), 0o750);
    set_mode(&root.join("a/b/c/deep"), 0o604);
    std::os::unix::fs::symlink("/etc", root.join("link to etc")).unwrap();

    // A missing destination becomes the tree's root.
    let up = c.cp(&["-r", s(&root), &c.remote("copy")]);
    up.ok();
    assert!(up.stderr.contains("skipping symlink"), "{up:#?}");
    let mut expected = tree_listing(&root);
    expected.retain(|(rel, _, _)| rel != "link to etc");
    assert_eq!(tree_listing(&c.on_server("copy")), expected);

    // An existing local directory receives the tree under its name.
    let down = c.local("down");
    fs::create_dir(&down).unwrap();
    c.cp(&["-r", &c.remote("copy"), s(&down)]).ok();
    assert_eq!(tree_listing(&down.join("copy")), expected);

    // Without -r a directory is a file error that names it.
    let run = c.cp(&[s(&root), &c.remote("no-r")]);
    assert!(run.failed_with(1).contains("is a directory"), "{run:#?}");
    let run = c.cp(&[&c.remote("copy"), s(&c.local("no-r"))]);
    assert!(run.failed_with(1).contains("is a directory"), "{run:#?}");
    assert!(!c.on_server("no-r").exists() && !c.local("no-r").exists());
}

/// A directory this process cannot write into: one with mode 0555, or /sys when permissions
/// do not stop us (root).
fn unwritable_dir(c: &Client) -> PathBuf {
    let dir = c.on_server("read-only");
    fs::create_dir(&dir).unwrap();
    set_mode(&dir, 0o555);
    if fs::write(dir.join("probe"), b"").is_ok() {
        return PathBuf::from("/sys");
    }
    dir
}

#[test]
fn missing_or_unwritable_destinations_are_named_and_nothing_is_written() {
    let c = Client::new("dest-errors");
    let file = c.local("f");
    fs::write(&file, b"data").unwrap();

    let run = c.cp(&[s(&file), &c.remote("missing/f")]);
    let err = run.failed_with(1);
    assert!(
        err.contains("missing/f") && err.contains("No such file"),
        "{run:#?}"
    );
    assert!(!c.on_server("missing").exists());

    let ro = unwritable_dir(&c);
    let target = ro.join("seashell-test-file");
    let run = c.cp(&[s(&file), &format!("127.0.0.1:{}", target.display())]);
    assert!(run.failed_with(1).contains(s(&target)), "{run:#?}");
    assert!(!target.exists() && !partial_of(&target).exists());

    let remote = c.remote("on-server");
    fs::write(c.on_server("on-server"), b"x").unwrap();
    let missing = c.local("nope/f");
    let run = c.cp(&[&remote, s(&missing)]);
    assert!(run.failed_with(1).contains(s(&missing)), "{run:#?}");
    assert!(!c.local("nope").exists());

    let run = c.cp(&[&remote, s(&target)]);
    assert!(run.failed_with(1).contains(s(&target)), "{run:#?}");
    assert!(!target.exists());

    // A trailing slash names a directory, which must exist.
    let run = c.cp(&[s(&file), &c.remote("newdir/")]);
    assert!(run.failed_with(1).contains("not a directory"), "{run:#?}");
    assert!(!c.on_server("newdir").exists());
    let run = c.cp(&[&remote, &format!("{}/", c.local("newdir").display())]);
    assert!(run.failed_with(1).contains("not a directory"), "{run:#?}");
    assert!(!c.local("newdir").exists());

    let run = c.cp(&[&c.remote("no-such-file"), s(&c.local("g"))]);
    assert!(run.failed_with(1).contains("no-such-file"), "{run:#?}");
    assert!(!c.local("g").exists() && partials_in(c.sandbox.path()).is_empty());
}

/// Starts `cp`, waits until `partial` has some bytes, then sends `signal`; returns the child.
fn cut_when_started(
    c: &Client,
    args: &[&str],
    partial: &Path,
    signal: Signal,
) -> std::process::Output {
    let child = c.cp_spawn(args);
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap());
    wait_for("the transfer to start", Duration::from_secs(60), || {
        len_of(partial) > 0
    });
    kill(pid, signal).unwrap();
    child.wait_with_output().unwrap()
}

const BIG: u64 = 1 << 30;

/// A sparse 1 GiB file: instant to make, and long enough to cut a transfer in.
fn sparse(path: &Path) {
    fs::File::create(path).unwrap().set_len(BIG).unwrap();
}

#[test]
fn a_killed_client_leaves_no_file_under_the_final_name() {
    let c = Client::new("killed");
    let big = c.local("big");
    sparse(&big);
    let target = c.on_server("big");
    let out = cut_when_started(
        &c,
        &[s(&big), &c.remote("big")],
        &partial_of(&target),
        Signal::SIGKILL,
    );
    assert_eq!(out.status.code(), None, "killed");
    // The server sees the cut and removes its temporary file (no --resume).
    wait_for("the server to clean up", Duration::from_secs(20), || {
        !partial_of(&target).exists()
    });
    assert!(!target.exists());

    sparse(&target);
    let local = c.local("down");
    let out = cut_when_started(
        &c,
        &[&c.remote("big"), s(&local)],
        &partial_of(&local),
        Signal::SIGKILL,
    );
    assert_eq!(out.status.code(), None, "killed");
    assert!(!local.exists(), "no file under the final name");
    // A crash may leave the clearly named temporary file; the next transfer replaces it.
    fs::write(c.on_server("small"), b"small").unwrap();
    fs::write(partial_of(&local), b"stale bytes from a crash").unwrap();
    c.cp(&[&c.remote("small"), s(&local)]).ok();
    assert_eq!(fs::read(&local).unwrap(), b"small");
    assert!(!partial_of(&local).exists());
}

#[test]
fn a_signalled_client_cleans_up_both_ends() {
    let c = Client::new("signalled");
    let big = c.local("big");
    sparse(&big);
    let target = c.on_server("big");
    let out = cut_when_started(
        &c,
        &[s(&big), &c.remote("big")],
        &partial_of(&target),
        Signal::SIGINT,
    );
    assert_eq!(out.status.code(), Some(130), "{out:?}");
    wait_for("the server to clean up", Duration::from_secs(20), || {
        !partial_of(&target).exists()
    });
    assert!(!target.exists());

    sparse(&target);
    let local = c.local("down");
    let out = cut_when_started(
        &c,
        &[&c.remote("big"), s(&local)],
        &partial_of(&local),
        Signal::SIGTERM,
    );
    assert_eq!(out.status.code(), Some(143), "{out:?}");
    assert!(!local.exists() && !partial_of(&local).exists());
}

#[test]
fn a_source_that_shrinks_mid_download_fails_alone_and_the_next_one_arrives() {
    let c = Client::new("shrinks");
    let big = c.on_server("big");
    sparse(&big);
    fs::write(c.on_server("small"), b"small").unwrap();
    let down = c.local("down");
    fs::create_dir(&down).unwrap();
    let child = c.cp_spawn(&[&c.remote("big"), &c.remote("small"), s(&down)]);
    wait_for("the download to start", Duration::from_secs(60), || {
        len_of(&partial_of(&down.join("big"))) > 0
    });
    fs::File::options()
        .write(true)
        .open(&big)
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("shrank"), "{stderr}");
    assert!(!down.join("big").exists() && partials_in(&down).is_empty());
    assert_eq!(fs::read(down.join("small")).unwrap(), b"small");
}

#[test]
fn resume_completes_a_cut_transfer_with_the_right_hash() {
    let c = Client::new("resume");
    let original = c.local("data");
    write_random(&original, 256 << 20, 7);
    let want = sha_of(&original);

    // Upload: the partial file stays on the server after the cut, and is continued.
    let target = c.on_server("data");
    let out = cut_when_started(
        &c,
        &["--resume", s(&original), &c.remote("data")],
        &partial_of(&target),
        Signal::SIGKILL,
    );
    assert_eq!(out.status.code(), None);
    std::thread::sleep(Duration::from_millis(300));
    let kept = len_of(&partial_of(&target));
    assert!(kept > 0 && !target.exists(), "kept {kept}");
    let run = c.cp(&["--resume", s(&original), &c.remote("data")]);
    run.ok();
    assert!(run.stderr.contains("resuming"), "{run:#?}");
    assert_eq!(sha_of(&target), want);
    assert!(!partial_of(&target).exists());

    // Download: the client's partial file is continued.
    let local = c.local("back");
    let out = cut_when_started(
        &c,
        &["--resume", &c.remote("data"), s(&local)],
        &partial_of(&local),
        Signal::SIGKILL,
    );
    assert_eq!(out.status.code(), None);
    assert!(len_of(&partial_of(&local)) > 0 && !local.exists());
    let run = c.cp(&["--resume", &c.remote("data"), s(&local)]);
    run.ok();
    assert!(run.stderr.contains("resuming"), "{run:#?}");
    assert_eq!(sha_of(&local), want);
    assert!(!partial_of(&local).exists());
}

#[test]
fn resume_starts_over_when_the_partial_bytes_do_not_match() {
    let c = Client::new("resume-mismatch");
    let original = c.local("data");
    write_random(&original, 3 * MAX_CHUNK + 5, 9);
    let target = c.on_server("data");
    fs::write(partial_of(&target), vec![0xAAu8; 1000]).unwrap();
    let run = c.cp(&["--resume", s(&original), &c.remote("data")]);
    run.ok();
    assert!(!run.stderr.contains("resuming"), "{run:#?}");
    assert_eq!(sha_of(&target), sha_of(&original));

    let local = c.local("back");
    fs::write(partial_of(&local), vec![0x55u8; 70_000]).unwrap();
    let run = c.cp(&["--resume", &c.remote("data"), s(&local)]);
    run.ok();
    assert!(!run.stderr.contains("resuming"), "{run:#?}");
    assert_eq!(sha_of(&local), sha_of(&original));
}

#[test]
fn a_no_files_key_is_refused_and_logged() {
    let c = Client::new("no-files");
    let file = c.local("f");
    fs::write(&file, b"data").unwrap();
    fs::write(c.on_server("g"), b"data").unwrap();
    for args in [
        vec![s(&file).to_owned(), c.remote("f")],
        vec![c.remote("g"), s(&c.local("g")).to_owned()],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = c.sandbox.seashell(c.cp_args(&c.other_key, &args));
        assert!(run.failed_with(1).contains("no-files"), "{run:#?}");
    }
    assert!(!c.on_server("f").exists() && !c.local("g").exists());
    // The server's log reaches the test through a reader thread: wait for the line.
    server().wait_for_log(|log| {
        log.lines()
            .any(|l| l.contains("file transfer failed") && l.contains("no-files"))
    });
}

#[test]
fn transfers_are_logged_with_direction_size_and_hash() {
    let c = Client::new("logged");
    let file = c.local("f");
    fs::write(&file, b"audit me").unwrap();
    c.cp(&[s(&file), &c.remote("f")]).ok();
    let hex: String = seashell::crypto::sha256(b"audit me")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    // The server logs before it answers, but its log reaches the test through a reader
    // thread: wait for the line rather than race it.
    let is_it = |l: &&str| l.contains("file transfer") && l.contains(&hex);
    let log = server().wait_for_log(|log| log.lines().any(|l| is_it(&l)));
    let line = log.lines().find(is_it).unwrap_or_default();
    assert!(
        line.contains("direction=\"upload\"") && line.contains("size=8"),
        "{line}"
    );
    assert!(line.contains(s(&c.on_server("f"))), "{line}");
}

#[test]
fn repl_put_and_get_in_script_mode() {
    let c = Client::new("repl");
    fs::write(c.local("notes.txt"), "from the client\n").unwrap();
    fs::create_dir_all(c.local("tree/empty")).unwrap();
    fs::write(c.local("tree/x"), "x").unwrap();
    let script = format!(
        "cd {}\nput notes.txt\nput -r tree\nput notes.txt copy.txt\nls\nget copy.txt back.txt\n\
         get -r tree tree-back\nget missing.txt\n",
        c.dir
    );
    let run = c.repl(&script);
    assert_eq!(run.code, Some(1), "the last line failed: {run:#?}");
    assert!(run.stderr.contains("missing.txt"), "{run:#?}");
    for name in ["notes.txt", "copy.txt", "tree"] {
        assert!(run.stdout.contains(name), "ls output: {run:#?}");
    }
    assert_eq!(
        fs::read_to_string(c.on_server("notes.txt")).unwrap(),
        "from the client\n"
    );
    assert_eq!(fs::read_to_string(c.on_server("tree/x")).unwrap(), "x");
    assert!(c.on_server("tree/empty").is_dir());
    assert_eq!(
        fs::read_to_string(c.local("back.txt")).unwrap(),
        "from the client\n"
    );
    assert_eq!(fs::read_to_string(c.local("tree-back/x")).unwrap(), "x");
    assert!(c.local("tree-back/empty").is_dir());
}

#[test]
fn usage_errors_exit_1() {
    let c = Client::new("usage");
    for args in [
        &["a", "b"][..],
        &["127.0.0.1:a", "other:b"],
        &["127.0.0.1:a", "other:b", "c"],
    ] {
        let run = c.cp(args);
        assert_eq!(run.code, Some(1), "{args:?}: {run:#?}");
    }
    fs::write(c.local("a"), b"a").unwrap();
    fs::write(c.local("b"), b"b").unwrap();
    let run = c.cp(&[s(&c.local("a")), s(&c.local("b")), &c.remote("not-a-dir")]);
    assert!(run.failed_with(1).contains("not a directory"), "{run:#?}");
}

#[test]
fn an_unreachable_server_is_a_seashell_failure() {
    let sandbox = Sandbox::new();
    let key = sandbox.fixture("client_rsa");
    fs::write(sandbox.path().join("f"), b"x").unwrap();
    let run = sandbox.seashell([
        "cp",
        "-P",
        "1",
        "-i",
        s(&key),
        "--accept-new",
        "f",
        "127.0.0.1:f",
    ]);
    assert!(run.failed_with(255).contains("cannot connect"), "{run:#?}");
}

#[test]
fn server_paths_with_tilde_start_at_home() {
    let c = Client::new("tilde");
    let file = c.local("f");
    fs::write(&file, b"home").unwrap();
    c.cp(&[s(&file), &format!("127.0.0.1:~/{}/f", c.dir)]).ok();
    assert_eq!(fs::read(c.on_server("f")).unwrap(), b"home");
}

/// Puts a 0666 file owned by `nobody` at `target`'s temporary name, as a local user squatting
/// a shared directory would; `false` (the test is skipped) when not root.
fn squat(target: &Path) -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED: needs root to make a file owned by another user");
        return false;
    }
    let temp = partial_of(target);
    fs::write(&temp, b"squatter").unwrap();
    set_mode(&temp, 0o666);
    nix::unistd::chown(&temp, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
    true
}

#[test]
fn a_squatted_temporary_file_is_never_written_nor_installed() {
    let c = Client::new("squatted");
    let file = c.local("secret");
    fs::write(&file, b"the secret").unwrap();
    let up = c.on_server("up");
    if !squat(&up) {
        return;
    }
    let remote = c.remote("up");
    for resume in [&[][..], &["--resume"][..]] {
        let mut args = resume.to_vec();
        args.extend([s(&file), remote.as_str()]);
        let run = c.cp(&args);
        assert!(
            run.failed_with(1).contains("not this transfer's"),
            "{run:#?}"
        );
        assert_eq!(fs::read(partial_of(&up)).unwrap(), b"squatter");
        assert!(!up.exists());
    }

    fs::write(c.on_server("down"), b"the secret").unwrap();
    let down = c.local("down");
    assert!(squat(&down));
    let run = c.cp(&[&c.remote("down"), s(&down)]);
    assert!(
        run.failed_with(1).contains("not this transfer's"),
        "{run:#?}"
    );
    assert_eq!(fs::read(partial_of(&down)).unwrap(), b"squatter");
    assert!(!down.exists());
}

/// This process's umask (the `cp` it starts inherits it).
fn umask() -> u32 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Umask:")).unwrap();
    u32::from_str_radix(line["Umask:".len()..].trim(), 8).unwrap()
}

#[test]
fn downloads_are_masked_by_the_umask_unless_p_and_never_setuid() {
    let c = Client::new("umask");
    let tree = c.on_server("tree");
    fs::create_dir(&tree).unwrap();
    fs::create_dir(tree.join("open")).unwrap();
    for (name, mode) in [("rwx", 0o777), ("rw", 0o666), ("suid", 0o4755)] {
        fs::write(tree.join(name), name).unwrap();
        set_mode(&tree.join(name), mode);
    }
    set_mode(&tree.join("open"), 0o777);
    set_mode(&tree, 0o777);
    let mask = umask();
    assert_ne!(
        mask & 0o022,
        0,
        "the test needs a umask that masks group/other writes"
    );

    let plain = c.local("plain");
    c.cp(&["-r", &c.remote("tree"), s(&plain)]).ok();
    let single = c.local("single");
    c.cp(&[&c.remote("tree/rw"), s(&single)]).ok();
    let kept = c.local("kept");
    c.cp(&["-r", "-p", &c.remote("tree"), s(&kept)]).ok();

    for (rel, sent) in [("", 0o777), ("open", 0o777), ("rwx", 0o777), ("rw", 0o666)] {
        let path = plain.join(rel);
        assert_eq!(mode_of(&path), sent & !mask, "{}", path.display());
        let path = kept.join(rel);
        assert_eq!(mode_of(&path), sent, "with -p: {}", path.display());
    }
    assert_eq!(mode_of(&single), 0o666 & !mask);
    for root in [&plain, &kept] {
        let meta = fs::metadata(root.join("suid")).unwrap();
        assert_eq!(meta.mode() & 0o7000, 0, "never setuid: {}", root.display());
    }
}

#[test]
fn a_tree_download_never_writes_through_a_symlink_in_the_destination() {
    let c = Client::new("symlinked");
    let tree = c.on_server("proj");
    fs::create_dir_all(tree.join("cache")).unwrap();
    fs::write(tree.join("cache/authorized_keys"), b"planted key").unwrap();
    fs::write(tree.join("profile"), b"planted profile").unwrap();
    let elsewhere = c.local("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    fs::write(elsewhere.join("profile"), b"mine").unwrap();

    // A file's own name that is a symlink: the link is replaced, never written through.
    let down = c.local("down");
    fs::create_dir_all(down.join("proj")).unwrap();
    std::os::unix::fs::symlink(elsewhere.join("profile"), down.join("proj/profile")).unwrap();
    // A directory of the tree that is a symlink here: refused, nothing lands beyond it.
    std::os::unix::fs::symlink(&elsewhere, down.join("proj/cache")).unwrap();
    let run = c.cp(&["-r", &c.remote("proj"), s(&down)]);
    assert!(run.failed_with(1).contains("never followed"), "{run:#?}");
    assert!(!elsewhere.join("authorized_keys").exists(), "{run:#?}");
    assert_eq!(fs::read(elsewhere.join("profile")).unwrap(), b"mine");
    assert!(partials_in(&elsewhere).is_empty() && partials_in(&down).is_empty());

    // Without the directory link, the file link is replaced by the received file.
    fs::remove_file(down.join("proj/cache")).unwrap();
    c.cp(&["-r", &c.remote("proj"), s(&down)]).ok();
    assert_eq!(fs::read(elsewhere.join("profile")).unwrap(), b"mine");
    assert_eq!(
        fs::read(down.join("proj/profile")).unwrap(),
        b"planted profile"
    );
    assert_eq!(
        fs::read(down.join("proj/cache/authorized_keys")).unwrap(),
        b"planted key"
    );
}

/// The `transfer` events of an audit log, as (direction, phase) with phase `start`, `done`
/// or `failed`.
fn transfer_events(log: &Path) -> Vec<(String, &'static str)> {
    fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        // A line a failed write left half-written (cut when the log recovers) is skipped.
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "transfer")
        .map(|e| {
            let phase = if e["sha256"].is_string() {
                "done"
            } else if e["rule"].is_string() {
                "failed"
            } else {
                "start"
            };
            (e["direction"].as_str().unwrap().to_owned(), phase)
        })
        .collect()
}

#[test]
fn transfers_are_logged_before_they_move_and_refused_while_the_log_cannot_write() {
    use crate::common::{RUN_DEADLINE, client_of, pub_line};
    let Some(disk) = crate::audit::Tmpfs::mount("size=256k") else {
        return;
    };
    let log = disk.path().join("audit.log");
    let sandbox = Sandbox::new();
    let server = Server::start(
        &sandbox,
        &["--audit-log", log.to_str().unwrap()],
        &pub_line("client_rsa"),
    );
    let client = client_of(&server, "client_rsa");
    let port = server.port().to_string();
    let cp = |from: &str, to: &str| -> Run {
        client
            .command(["cp", "-P", &port, from, to])
            .stdin(Stdio::null())
            .output()
            .unwrap()
            .into()
    };
    // Deep enough that a transfer's start line (it holds the path) cannot fit in the slack of
    // the log's last page.
    let deep: Vec<String> = (0..13)
        .map(|i| format!("{i:02}{}", "d".repeat(248)))
        .collect();
    let deep = deep.join("/");
    fs::create_dir_all(server.home().join(&deep)).unwrap();
    let remote = |name: &str| format!("127.0.0.1:{deep}/{name}");
    let on_server = |name: &str| server.home().join(&deep).join(name);
    let local = client.path().join("secret");
    fs::write(&local, b"the secret").unwrap();
    fs::write(on_server("secret"), b"the secret").unwrap();

    // A normal run: the start is logged before the end, and the end before the client is
    // told done (read at once when cp returns: no waiting).
    cp(s(&local), &remote("uploaded")).ok();
    assert_eq!(
        transfer_events(&log),
        [("upload".into(), "start"), ("upload".into(), "done")]
    );
    let back = client.path().join("back");
    cp(&remote("secret"), s(&back)).ok();
    assert_eq!(
        transfer_events(&log)[2..],
        [("download".into(), "start"), ("download".into(), "done")]
    );
    assert_eq!(fs::read(&back).unwrap(), b"the secret");

    // The log's disk is full: both directions are refused before a byte moves.
    let filler = disk.path().join("filler");
    let mut file = fs::File::create(&filler).unwrap();
    while file.write_all(&[0; 4096]).is_ok() {}
    drop(file);
    let long = format!(": {}", "x".repeat(10_000));
    client.exec(&server, &[&long], b"").failed_with(255);
    let before = transfer_events(&log).len();
    let up = on_server(".profile");
    let run = cp(s(&local), &remote(".profile"));
    assert!(run.failed_with(1).contains("transfer refused"), "{run:#?}");
    assert!(!up.exists() && !partial_of(&up).exists());
    let down = client.path().join("down");
    let run = cp(&remote("secret"), s(&down));
    assert!(run.failed_with(1).contains("transfer refused"), "{run:#?}");
    assert!(!down.exists() && !partial_of(&down).exists());
    assert_eq!(
        transfer_events(&log).len(),
        before,
        "nothing recorded, nothing moved"
    );

    // Space is back: the log writes again by itself, and so do transfers.
    fs::remove_file(&filler).unwrap();
    wait_for("the audit log to write again", RUN_DEADLINE, || {
        fs::read_to_string(&log)
            .unwrap_or_default()
            .contains(r#""event":"lost""#)
    });
    cp(s(&local), &remote(".profile")).ok();
    cp(&remote("secret"), s(&down)).ok();
    assert_eq!(fs::read(&up).unwrap(), b"the secret");
    assert_eq!(fs::read(&down).unwrap(), b"the secret");
    assert_eq!(transfer_events(&log).len(), before + 4);
    assert!(server.terminate().success());
}
