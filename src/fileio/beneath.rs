//! Directories held by descriptor, so that a receiver works on the directory it checked and
//! not on whatever a path names a moment later. [`open_dir`] opens a directory the local
//! user chose (following symlinks, as any command would); [`open_parent_beneath`] walks a
//! path received from a peer below such a directory one component at a time with
//! `openat(O_NOFOLLOW | O_DIRECTORY)`, so a symlink (or anything but a directory) already on
//! this side is never followed out of the chosen destination. This module must never
//! resolve a peer's path through the kernel's ordinary path walk (`root.join(rel)`), and it
//! only opens directories: creating files in them is `partial`'s and `tree`'s.

use std::ffi::{OsStr, OsString};
use std::os::fd::OwnedFd;
use std::path::{Component, Path};

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::Mode;

use super::FileError;

/// Flags of every directory opened here: read-only, a directory or an error, not inherited.
fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC
}

/// Opens the directory at `path`, chosen by the local user (a symlink is followed).
pub fn open_dir(path: &Path) -> Result<OwnedFd, FileError> {
    open_dir_for(path, path, "open directory")
}

/// Opens the directory at `path` (`""` is the current one); an error names `shown`.
fn open_dir_for(path: &Path, shown: &Path, action: &'static str) -> Result<OwnedFd, FileError> {
    let path = if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    };
    openat(nix::fcntl::AT_FDCWD, path, dir_flags(), Mode::empty())
        .map_err(|errno| FileError::io(shown, action, errno.into()))
}

/// The directory that will hold `target` and `target`'s last component, for a path the
/// local user (or, on the server, the client) named: its parent is opened by path.
pub fn open_parent(target: &Path) -> Result<(OwnedFd, OsString), FileError> {
    let name = target
        .file_name()
        .ok_or_else(|| FileError::BadPath(target.display().to_string()))?;
    let parent = target.parent().unwrap_or(Path::new(""));
    Ok((open_dir_for(parent, target, "create")?, name.to_owned()))
}

/// The directory that will hold `root/rel` and `rel`'s last component, where `rel` (already
/// checked by `tree::relative_path`: plain names only) came from a peer: every component
/// before the last is opened below `root` without following a symlink.
pub fn open_parent_beneath(root: &Path, rel: &Path) -> Result<(OwnedFd, OsString), FileError> {
    let mut names = Vec::new();
    for component in rel.components() {
        match component {
            Component::Normal(name) => names.push(name),
            _ => return Err(FileError::BadPath(rel.display().to_string())),
        }
    }
    let Some((last, parents)) = names.split_last() else {
        return Err(FileError::BadPath(rel.display().to_string()));
    };
    let mut dir = open_dir(root)?;
    let mut walked = root.to_owned();
    for name in parents {
        walked.push(name);
        dir = open_child_dir(&dir, name, &walked)?;
    }
    Ok((dir, (*last).to_owned()))
}

/// Opens the directory `name` inside `dir`, never through a symlink. `shown` names it.
pub fn open_child_dir(dir: &OwnedFd, name: &OsStr, shown: &Path) -> Result<OwnedFd, FileError> {
    openat(dir, name, dir_flags() | OFlag::O_NOFOLLOW, Mode::empty()).map_err(|errno| match errno {
        Errno::ELOOP | Errno::ENOTDIR => FileError::SymlinkInTree(shown.to_owned()),
        other => FileError::io(shown, "open directory", other.into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlinked_component_is_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir_all(root.join("real")).unwrap();
        std::fs::create_dir(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, root.join("cache")).unwrap();
        std::fs::write(root.join("file"), b"").unwrap();

        let (_, name) = open_parent_beneath(&root, Path::new("real/x")).unwrap();
        assert_eq!(name, "x");
        for bad in ["cache/authorized_keys", "file/x"] {
            let err = open_parent_beneath(&root, Path::new(bad)).err();
            assert!(
                matches!(err, Some(FileError::SymlinkInTree(_))),
                "{bad}: {err:?}"
            );
        }
        assert!(open_parent_beneath(&root, Path::new("")).is_err());
    }
}
