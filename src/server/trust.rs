//! The server's view of its trust files, authorized_keys and revoked_keys: loaded at start,
//! re-read on SIGHUP and whenever a file changes (checked on each authentication, so revoking a key needs no restart; a
//! change of mode or owner counts). A malformed line is logged with its number and skipped.
//! Like sshd's StrictModes, the file is refused when it or its directory is writable by group
//! or others, or owned by anyone but the server's effective user or root: whoever could
//! change it could let any key in. At start that is an error (the server does not start);
//! later, such a file, or one that disappears or becomes unreadable, fails closed: no key is
//! accepted until it is fixed. This module never writes the file or changes its mode.

use std::fs::{self, File, Metadata};
use std::io::Read as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use crate::crypto::PublicKey;
use nix::unistd::{Uid, User, geteuid};

use crate::keys::authorized::{AuthorizedKey, AuthorizedKeys};
use crate::keys::revoked::RevokedKeys;
use crate::keys::{KeyError, LineWarning};

/// Permission bits that let group or others write.
const GROUP_OR_OTHERS_WRITE: u32 = 0o022;

/// The sticky bit: in a directory, only a file's owner may remove or rename it.
const STICKY: u32 = 0o1000;

/// What identifies one version of the file on disk, its mode and owner (and its
/// directory's) included.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
    mode: u32,
    owner: u32,
    directory: Option<(u32, u32)>,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = fs::metadata(path).ok()?;
    let directory = fs::metadata(directory_of(path))
        .ok()
        .map(|dir| (dir.mode(), dir.uid()));
    Some(Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
        inode: meta.ino(),
        mode: meta.mode(),
        owner: meta.uid(),
        directory,
    })
}

/// A file the server trusts its contents to: parsed whole, bad lines skipped with a warning.
pub trait TrustFile: Sized {
    /// What the server's log calls it.
    const NAME: &'static str;
    /// The file's entries, and a warning for each bad line.
    fn parse(text: &str) -> (Self, Vec<LineWarning>);
    /// How many entries it holds, for the log.
    fn count(&self) -> usize;
}

impl TrustFile for AuthorizedKeys {
    const NAME: &'static str = "authorized keys";

    fn parse(text: &str) -> (Self, Vec<LineWarning>) {
        Self::parse(text)
    }

    fn count(&self) -> usize {
        self.entries.len()
    }
}

impl TrustFile for RevokedKeys {
    const NAME: &'static str = "revoked keys";

    fn parse(text: &str) -> (Self, Vec<LineWarning>) {
        Self::parse(text)
    }

    fn count(&self) -> usize {
        self.len()
    }
}

/// A trust file (authorized_keys, revoked_keys), kept fresh. `None` is a file that could
/// not be read safely since it was last good: whoever asks must fail closed.
pub struct TrustStore<T> {
    path: PathBuf,
    state: Mutex<(Option<Stamp>, Option<T>)>,
}

impl<T: TrustFile> TrustStore<T> {
    /// Loads the file; a missing, unreadable or unsafe (StrictModes) file is an error at
    /// start-up.
    pub fn open(path: &Path) -> Result<Self, KeyError> {
        let keys = load_logged(path)?;
        Ok(Self {
            path: path.to_owned(),
            state: Mutex::new((stamp(path), Some(keys))),
        })
    }

    /// Calls `f` with the file's entries, re-reading the file first if it changed; `None`
    /// while it cannot be read safely.
    pub fn read<R>(&self, f: impl FnOnce(Option<&T>) -> R) -> R {
        self.refresh(false);
        let state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(state.1.as_ref())
    }

    /// Re-reads the file now (SIGHUP).
    pub fn reload(&self) {
        self.refresh(true);
    }

    fn refresh(&self, force: bool) {
        let now = stamp(&self.path);
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !force && now == state.0 {
            return;
        }
        match load_logged::<T>(&self.path) {
            Ok(keys) => {
                tracing::info!(path = %self.path.display(), entries = keys.count(), "{} reloaded", T::NAME);
                *state = (now, Some(keys));
            }
            Err(err) => {
                tracing::error!("{err}; refusing every key until it is fixed");
                *state = (now, None);
            }
        }
    }
}

impl TrustStore<AuthorizedKeys> {
    /// Finds the entry for `key` as a key of its own, re-reading the file first if it
    /// changed.
    pub fn lookup(&self, key: &PublicKey) -> Option<AuthorizedKey> {
        self.read(|keys| keys.and_then(|keys| keys.find(key)).cloned())
    }
}

fn load_logged<T: TrustFile>(path: &Path) -> Result<T, KeyError> {
    let (keys, warnings) = T::parse(&read_checked(path)?);
    for warning in warnings {
        tracing::warn!(path = %path.display(), "{warning}");
    }
    Ok(keys)
}

/// The file's text, once the opened file (no race with a rename) and the directories that
/// hold it — the one named and, through a symlink, the real one — pass [`check_writers`].
fn read_checked(path: &Path) -> Result<String, KeyError> {
    let read_error = |source| KeyError::Read {
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(read_error)?;
    check_writers(path, &file.metadata().map_err(read_error)?, None)?;
    let resolved = fs::canonicalize(path).map_err(read_error)?;
    for directory in [directory_of(path), directory_of(&resolved)] {
        let meta = fs::metadata(&directory).map_err(|source| KeyError::Read {
            path: directory.clone(),
            source,
        })?;
        check_writers(&directory, &meta, Some(path))?;
    }
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(read_error)?;
    Ok(text)
}

/// The directory holding `path` (`.` for a bare file name).
fn directory_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// StrictModes for one file or directory (`holding` names the file a directory holds): owned
/// by the server's effective user or root, and writable by neither group nor others — a
/// sticky directory like /tmp included, as sshd refuses it too.
fn check_writers(path: &Path, meta: &Metadata, holding: Option<&Path>) -> Result<(), KeyError> {
    let me = geteuid();
    let owner = Uid::from_raw(meta.uid());
    let what = match holding {
        Some(file) => format!("the directory holding {}", file.display()),
        None => "the file".to_owned(),
    };
    if owner != me && !owner.is_root() {
        return Err(KeyError::UnsafeTrustFile {
            path: path.to_owned(),
            problem: format!(
                "{what} is owned by {}, but only the server's user, {}, or root may own it",
                describe(owner),
                describe(me)
            ),
            fix: format!("run `chown {} {}`", user_name(me), path.display()),
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & GROUP_OR_OTHERS_WRITE != 0 {
        let fix = match holding {
            Some(file) if mode & STICKY != 0 => format!(
                "move {} to a directory that only its owner can write",
                file.display()
            ),
            _ => format!("run `chmod go-w {}`", path.display()),
        };
        return Err(KeyError::UnsafeTrustFile {
            path: path.to_owned(),
            problem: format!("{what} has mode {mode:04o}, writable by group or others"),
            fix,
        });
    }
    Ok(())
}

/// `uid 1000 (alice)`, or `uid 1000` for a uid with no passwd entry.
fn describe(uid: Uid) -> String {
    match User::from_uid(uid) {
        Ok(Some(user)) => format!("uid {uid} ({})", user.name),
        _ => format!("uid {uid}"),
    }
}

/// The user's name for `chown`, or the uid itself when it has no passwd entry.
fn user_name(uid: Uid) -> String {
    match User::from_uid(uid) {
        Ok(Some(user)) => user.name,
        _ => uid.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;
    use crate::keys::public;

    const KEY: &str = include_str!("../../tests/fixtures/client_rsa.pub");

    /// `authorized_keys` with one key, in a fresh 0700 directory.
    fn authorized_keys() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("authorized_keys");
        fs::write(&path, KEY).unwrap();
        chmod(&path, 0o644);
        (dir, path)
    }

    fn chmod(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    fn refusal(path: &Path) -> String {
        match TrustStore::<AuthorizedKeys>::open(path) {
            Err(err @ KeyError::UnsafeTrustFile { .. }) => err.to_string(),
            Err(other) => panic!("not a StrictModes refusal: {other}"),
            Ok(_) => panic!("{} was accepted", path.display()),
        }
    }

    #[test]
    fn files_and_directories_only_their_owner_can_write_are_accepted() {
        let (dir, path) = authorized_keys();
        for (file_mode, dir_mode) in [(0o644, 0o700), (0o600, 0o755), (0o444, 0o555)] {
            chmod(&path, file_mode);
            chmod(dir.path(), dir_mode);
            assert!(
                TrustStore::<AuthorizedKeys>::open(&path).is_ok(),
                "{file_mode:o} in {dir_mode:o}"
            );
        }
        chmod(dir.path(), 0o700);
    }

    #[test]
    fn a_file_group_or_others_can_write_is_refused_with_its_mode_and_the_fix() {
        let (_dir, path) = authorized_keys();
        for mode in [0o664, 0o646, 0o666, 0o620] {
            chmod(&path, mode);
            let err = refusal(&path);
            let shown = path.display();
            assert!(
                err.starts_with(&format!("{shown}: the file has mode {mode:04o}")),
                "{err}"
            );
            assert!(err.contains(&format!("run `chmod go-w {shown}`")), "{err}");
            assert!(err.contains("StrictModes"), "{err}");
        }
    }

    #[test]
    fn a_directory_group_or_others_can_write_is_refused_sticky_or_not() {
        let (dir, path) = authorized_keys();
        let shown = dir.path().display();
        chmod(dir.path(), 0o775);
        let err = refusal(&path);
        assert!(
            err.starts_with(&format!("{shown}: the directory holding ")),
            "{err}"
        );
        assert!(
            err.contains("mode 0775") && err.contains(&format!("chmod go-w {shown}")),
            "{err}"
        );
        chmod(dir.path(), 0o1777);
        let err = refusal(&path);
        assert!(err.contains("mode 1777"), "{err}");
        assert!(
            err.contains("to a directory that only its owner can write"),
            "{err}"
        );
        chmod(dir.path(), 0o700);
    }

    #[test]
    fn a_symlink_is_judged_by_the_directory_it_leads_to_as_well() {
        let (target_dir, target) = authorized_keys();
        let (link_dir, _) = authorized_keys();
        let link = link_dir.path().join("linked_keys");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(TrustStore::<AuthorizedKeys>::open(&link).is_ok());
        chmod(target_dir.path(), 0o777);
        let err = refusal(&link);
        assert!(
            err.starts_with(&target_dir.path().display().to_string()),
            "{err}"
        );
        chmod(target_dir.path(), 0o700);
    }

    #[test]
    fn a_file_owned_by_someone_else_is_refused_with_the_owner() {
        if !geteuid().is_root() {
            eprintln!("skipped: only root can give a file away");
            return;
        }
        let (dir, path) = authorized_keys();
        let nobody = 65_534;
        nix::unistd::chown(&path, Some(Uid::from_raw(nobody)), None).unwrap();
        let err = refusal(&path);
        assert!(
            err.contains(&format!("the file is owned by uid {nobody}")),
            "{err}"
        );
        assert!(
            err.contains("but only the server's user, uid 0 (root), or root may own it"),
            "{err}"
        );
        assert!(
            err.contains(&format!("run `chown root {}`", path.display())),
            "{err}"
        );
        nix::unistd::chown(&path, Some(Uid::from_raw(0)), None).unwrap();
        nix::unistd::chown(dir.path(), Some(Uid::from_raw(nobody)), None).unwrap();
        let err = refusal(&path);
        assert!(
            err.contains("the directory holding") && err.contains("is owned by uid 65534"),
            "{err}"
        );
    }

    #[test]
    fn a_file_made_unsafe_fails_closed_until_it_is_fixed() {
        let (_dir, path) = authorized_keys();
        let store = TrustStore::<AuthorizedKeys>::open(&path).unwrap();
        let key = public::parse_line(KEY).unwrap().key;
        assert!(store.lookup(&key).is_some());
        chmod(&path, 0o664);
        assert!(store.lookup(&key).is_none(), "a mode change alone is seen");
        chmod(&path, 0o644);
        assert!(store.lookup(&key).is_some());
        chmod(&path, 0o666);
        store.reload();
        assert!(store.lookup(&key).is_none());
    }
}
