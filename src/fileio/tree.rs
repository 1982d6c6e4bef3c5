//! Directory trees for `-r`: a walker thread lists a tree depth first, parents before their
//! contents, with paths relative to its root (`""` is the root itself, `/` separates
//! components); symlinks, devices, sockets and FIFOs inside the tree are skipped, never
//! followed. Also: checking a relative path received from a peer before it touches the
//! disk, and creating directories (a peer's below the destination without following any
//! symlink on the way: [`make_dir_beneath`]).

use std::fs::{self, DirBuilder, ReadDir};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::sync::mpsc;

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::{Mode, SFlag, fchmod, fstatat, mkdirat};

use super::beneath::{open_child_dir, open_parent_beneath};
use super::{CHANNEL_DEPTH, FileError, blocking, mode_bits};

/// How deep a tree may go (each level holds one open directory while it is walked).
pub const MAX_DEPTH: usize = 256;

/// One entry of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeEntry {
    /// A directory (the root first, with `rel` empty).
    Dir {
        /// Path relative to the root.
        rel: String,
        /// Its mode bits.
        mode: u32,
    },
    /// A regular file.
    File {
        /// Path relative to the root.
        rel: String,
        /// Where it is on disk.
        path: PathBuf,
    },
    /// Something that is not copied.
    Skipped {
        /// Path relative to the root.
        rel: String,
        /// What it is ("symlink", "special file").
        kind: &'static str,
    },
}

/// The entries of a tree, produced by a walker thread.
pub struct TreeWalk {
    entries: mpsc::Receiver<Result<TreeEntry, FileError>>,
}

impl TreeWalk {
    /// Starts walking `root` (which may itself be a symlink to a directory).
    pub fn start(root: PathBuf) -> Self {
        let (tx, entries) = mpsc::channel(CHANNEL_DEPTH);
        tokio::task::spawn_blocking(move || {
            let result = walk(&root, |entry| tx.blocking_send(Ok(entry)).is_ok());
            if let Err(err) = result {
                let _ = tx.blocking_send(Err(err));
            }
        });
        Self { entries }
    }

    /// The next entry; `None` at the end or after an error.
    pub async fn next(&mut self) -> Option<Result<TreeEntry, FileError>> {
        self.entries.recv().await
    }
}

/// Total size of the regular files in a tree (for a progress bar).
pub async fn tree_size(root: PathBuf) -> Result<u64, FileError> {
    blocking(move || {
        let mut total = 0u64;
        walk(&root, |entry| {
            if let TreeEntry::File { path, .. } = entry {
                let len = fs::symlink_metadata(&path).map_or(0, |meta| meta.len());
                total = total.saturating_add(len);
            }
            true
        })?;
        Ok(total)
    })
    .await
}

/// Walks `root`, calling `emit` for each entry until it returns false.
fn walk(root: &Path, mut emit: impl FnMut(TreeEntry) -> bool) -> Result<(), FileError> {
    let meta = fs::metadata(root).map_err(|err| FileError::io(root, "read", err))?;
    if !meta.is_dir() {
        return Err(FileError::NotDirectory(root.to_owned()));
    }
    let root_entry = TreeEntry::Dir {
        rel: String::new(),
        mode: mode_bits(&meta),
    };
    if !emit(root_entry) {
        return Ok(());
    }
    let mut stack: Vec<(ReadDir, String)> = vec![(read_dir(root)?, String::new())];
    while let Some((dir, rel)) = stack.last_mut() {
        let Some(entry) = dir.next() else {
            stack.pop();
            continue;
        };
        let path = entry
            .map_err(|err| FileError::io(root, "read", err))?
            .path();
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .ok_or_else(|| FileError::NotUtf8(path.clone()))?;
        let child = if rel.is_empty() {
            name.to_owned()
        } else {
            format!("{rel}/{name}")
        };
        let meta = fs::symlink_metadata(&path).map_err(|err| FileError::io(&path, "read", err))?;
        let kind = meta.file_type();
        let entry = if kind.is_dir() {
            if stack.len() >= MAX_DEPTH {
                return Err(FileError::TooDeep(path));
            }
            stack.push((read_dir(&path)?, child.clone()));
            TreeEntry::Dir {
                rel: child,
                mode: mode_bits(&meta),
            }
        } else if kind.is_file() {
            TreeEntry::File { rel: child, path }
        } else if kind.is_symlink() {
            TreeEntry::Skipped {
                rel: child,
                kind: "symlink",
            }
        } else {
            TreeEntry::Skipped {
                rel: child,
                kind: "special file",
            }
        };
        if !emit(entry) {
            return Ok(());
        }
    }
    Ok(())
}

fn read_dir(path: &Path) -> Result<ReadDir, FileError> {
    fs::read_dir(path).map_err(|err| FileError::io(path, "read", err))
}

/// Checks a tree path received from a peer: empty (the root) or `/`-separated components,
/// none empty, `.`, `..` or containing NUL. Absolute paths and escapes are refused.
pub fn relative_path(rel: &str) -> Result<PathBuf, FileError> {
    let mut out = PathBuf::new();
    if rel.is_empty() {
        return Ok(out);
    }
    for part in rel.split('/') {
        if part.is_empty() || part == "." || part == ".." || part.contains('\0') {
            return Err(FileError::BadPath(rel.to_owned()));
        }
        out.push(part);
    }
    Ok(out)
}

/// `base/rel` for a remote path (`base` alone when `rel` is empty).
pub fn join_remote(base: &str, rel: &str) -> String {
    match (rel.is_empty(), base.ends_with('/')) {
        (true, _) => base.to_owned(),
        (false, true) => format!("{base}{rel}"),
        (false, false) => format!("{base}/{rel}"),
    }
}

/// Creates directory `path` with `mode`'s permission bits plus owner rwx (so the transfer can
/// fill it), whatever the umask; an existing directory is fine and keeps its mode.
pub async fn make_dir(path: PathBuf, mode: u32) -> Result<(), FileError> {
    let mode = (mode & 0o777) | 0o700;
    blocking(move || match DirBuilder::new().mode(mode).create(&path) {
        Ok(()) => fs::set_permissions(&path, fs::Permissions::from_mode(mode))
            .map_err(|err| FileError::io(&path, "set the mode of", err)),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            if fs::metadata(&path).is_ok_and(|meta| meta.is_dir()) {
                Ok(())
            } else {
                Err(FileError::NotDirectory(path))
            }
        }
        Err(err) => Err(FileError::io(&path, "create directory", err)),
    })
    .await
}

/// Creates directory `root/rel` as [`make_dir`] does, where `rel` came from a peer (checked by
/// [`relative_path`]; empty is `root` itself, which the local user chose): no component of
/// `rel` is followed if it is a symlink, and an existing symlink at its name is refused, so a
/// received tree stays inside `root`.
pub async fn make_dir_beneath(root: PathBuf, rel: PathBuf, mode: u32) -> Result<(), FileError> {
    if rel.as_os_str().is_empty() {
        return make_dir(root, mode).await;
    }
    let mode = (mode & 0o777) | 0o700;
    blocking(move || {
        let shown = root.join(&rel);
        let (parent, name) = open_parent_beneath(&root, &rel)?;
        match mkdirat(&parent, name.as_os_str(), Mode::from_bits_truncate(mode)) {
            Ok(()) => {
                let dir = open_child_dir(&parent, &name, &shown)?;
                fchmod(&dir, Mode::from_bits_truncate(mode))
                    .map_err(|errno| FileError::io(&shown, "set the mode of", errno.into()))
            }
            Err(Errno::EEXIST) => {
                let st = fstatat(&parent, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
                    .map_err(|errno| FileError::io(&shown, "inspect", errno.into()))?;
                match SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT {
                    SFlag::S_IFDIR => Ok(()),
                    SFlag::S_IFLNK => Err(FileError::SymlinkInTree(shown)),
                    _ => Err(FileError::NotDirectory(shown)),
                }
            }
            Err(errno) => Err(FileError::io(&shown, "create directory", errno.into())),
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_paths_cannot_escape() {
        assert_eq!(relative_path("").unwrap(), PathBuf::new());
        assert_eq!(relative_path("a b/ü").unwrap(), Path::new("a b").join("ü"));
        for bad in ["/etc", "a/../b", "..", ".", "a//b", "a/", "a\0b"] {
            assert!(relative_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn remote_joins() {
        assert_eq!(join_remote("dir", ""), "dir");
        assert_eq!(join_remote("dir", "a/b"), "dir/a/b");
        assert_eq!(join_remote("/", "a"), "/a");
    }

    #[tokio::test]
    async fn walks_parents_first_and_skips_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fs::create_dir_all(root.join("a b/empty")).unwrap();
        fs::write(root.join("a b/f"), b"xyz").unwrap();
        fs::write(root.join("g"), b"12").unwrap();
        std::os::unix::fs::symlink("/etc", root.join("link")).unwrap();
        let mut walk = TreeWalk::start(root.clone());
        let mut seen = Vec::new();
        while let Some(entry) = walk.next().await {
            seen.push(entry.unwrap());
        }
        let position = |rel: &str| {
            seen.iter()
                .position(|e| match e {
                    TreeEntry::Dir { rel: r, .. }
                    | TreeEntry::File { rel: r, .. }
                    | TreeEntry::Skipped { rel: r, .. } => r == rel,
                })
                .unwrap()
        };
        assert_eq!(position(""), 0);
        assert!(position("a b") < position("a b/empty"));
        assert!(position("a b") < position("a b/f"));
        assert!(matches!(
            seen[position("link")],
            TreeEntry::Skipped {
                kind: "symlink",
                ..
            }
        ));
        assert_eq!(seen.len(), 6);
        assert_eq!(tree_size(root).await.unwrap(), 5);
    }

    #[tokio::test]
    async fn make_dir_beneath_refuses_symlinks_and_makes_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let elsewhere = dir.path().join("elsewhere");
        fs::create_dir_all(&elsewhere).unwrap();
        make_dir_beneath(root.clone(), PathBuf::new(), 0o755)
            .await
            .unwrap();
        std::os::unix::fs::symlink(&elsewhere, root.join("cache")).unwrap();
        for rel in ["cache", "cache/sub"] {
            let err = make_dir_beneath(root.clone(), rel.into(), 0o755)
                .await
                .err();
            assert!(
                matches!(err, Some(FileError::SymlinkInTree(_))),
                "{rel}: {err:?}"
            );
        }
        assert!(fs::read_dir(&elsewhere).unwrap().next().is_none());
        make_dir_beneath(root.clone(), "a".into(), 0o750)
            .await
            .unwrap();
        make_dir_beneath(root.clone(), "a/b".into(), 0o500)
            .await
            .unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&root.join("a")), 0o750);
        assert_eq!(mode(&root.join("a/b")), 0o700);
        fs::write(root.join("f"), b"").unwrap();
        let err = make_dir_beneath(root.clone(), "f".into(), 0o755)
            .await
            .err();
        assert!(matches!(err, Some(FileError::NotDirectory(_))), "{err:?}");
    }

    #[tokio::test]
    async fn make_dir_accepts_existing_directories_only() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        make_dir(sub.clone(), 0o500).await.unwrap();
        make_dir(sub.clone(), 0o755).await.unwrap();
        fs::write(dir.path().join("file"), b"").unwrap();
        let err = make_dir(dir.path().join("file"), 0o755).await.err();
        assert!(matches!(err, Some(FileError::NotDirectory(_))));
    }
}
