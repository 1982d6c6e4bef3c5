//! How key and trust files reach the disk: every file is created with its final mode from the
//! first byte (never written open and tightened afterwards), and a file that must be replaced
//! is written whole beside it and renamed over it, so a reader sees the old file or the new one,
//! never half of either. No parsing happens here.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use crate::keys::KeyError;

/// Creates `path` with `mode` and writes `contents`; fails if anything already exists there.
pub(crate) fn create_new(path: &Path, mode: u32, contents: &[u8]) -> Result<(), KeyError> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::AlreadyExists => KeyError::Exists {
                path: path.to_owned(),
            },
            _ => write_error(path, source),
        })?;
    write_all_synced(file, contents).map_err(|source| write_error(path, source))
}

/// Replaces (or creates) `path` atomically: the new contents go to a fresh file of `mode` in the
/// same directory, which is then renamed over `path`.
pub(crate) fn replace(path: &Path, mode: u32, contents: &[u8]) -> Result<(), KeyError> {
    let temp = temp_path(path)?;
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temp)
        .and_then(|file| write_all_synced(file, contents))
        .and_then(|()| fs::rename(&temp, path));
    written.map_err(|source| {
        // Best effort: the temporary file is ours and useless now; the error that matters is
        // the one already in hand.
        let _ = fs::remove_file(&temp);
        write_error(path, source)
    })
}

/// Creates `dir` and any missing parents with mode 0700; an existing directory is left as is.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), KeyError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| write_error(dir, source))
}

fn write_all_synced(mut file: File, contents: &[u8]) -> std::io::Result<()> {
    file.write_all(contents)?;
    file.sync_all()
}

/// `.NAME.RANDOM.tmp` beside `path`, so the final rename stays within one file system.
fn temp_path(path: &Path) -> Result<PathBuf, KeyError> {
    let name = path
        .file_name()
        .ok_or_else(|| write_error(path, std::io::Error::other("not a file name")))?;
    let suffix: [u8; 8] =
        crate::crypto::random().map_err(|err| KeyError::Random(err.to_string()))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".{:016x}.tmp", u64::from_le_bytes(suffix)));
    Ok(path.with_file_name(temp_name))
}

fn write_error(path: &Path, source: std::io::Error) -> KeyError {
    KeyError::Write {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn create_new_sets_the_mode_and_refuses_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        create_new(&path, 0o600, b"one").unwrap();
        assert_eq!(mode_of(&path), 0o600);
        let err = create_new(&path, 0o600, b"two").unwrap_err();
        assert!(matches!(err, KeyError::Exists { .. }), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"one");
    }

    #[test]
    fn replace_swaps_contents_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        fs::write(&path, b"old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        replace(&path, 0o600, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(mode_of(&path), 0o600);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn private_dir_is_0700() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        create_private_dir(&nested).unwrap();
        assert_eq!(mode_of(&nested), 0o700);
        assert_eq!(mode_of(&dir.path().join("a")), 0o700);
    }
}
