//! The server's view of authorized_keys: loaded at start, re-read on SIGHUP and whenever the
//! file changes (checked on each authentication, so revoking a key needs no restart). A
//! malformed line is logged with its number and skipped. A file that disappears or becomes
//! unreadable fails closed: no key is accepted until it is back.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use rsa::PublicKey;

use crate::keys::KeyError;
use crate::keys::authorized::{AuthorizedKey, AuthorizedKeys};

/// What identifies one version of the file on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(path).ok()?;
    Some(Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
        inode: meta.ino(),
    })
}

/// authorized_keys, kept fresh.
pub struct TrustStore {
    path: PathBuf,
    state: Mutex<(Option<Stamp>, AuthorizedKeys)>,
}

impl TrustStore {
    /// Loads the file; a missing or unreadable file is an error at start-up.
    pub fn open(path: &Path) -> Result<Self, KeyError> {
        let keys = load_logged(path)?;
        Ok(Self {
            path: path.to_owned(),
            state: Mutex::new((stamp(path), keys)),
        })
    }

    /// Re-reads the file now (SIGHUP).
    pub fn reload(&self) {
        self.refresh(true);
    }

    /// Finds the entry for `key`, re-reading the file first if it changed.
    pub fn lookup(&self, key: &PublicKey) -> Option<AuthorizedKey> {
        self.refresh(false);
        let state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state.1.find(key).cloned()
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
        match load_logged(&self.path) {
            Ok(keys) => {
                tracing::info!(path = %self.path.display(), keys = keys.entries.len(), "authorized keys reloaded");
                *state = (now, keys);
            }
            Err(err) => {
                tracing::error!("{err}; refusing every key until it can be read");
                *state = (now, AuthorizedKeys::default());
            }
        }
    }
}

fn load_logged(path: &Path) -> Result<AuthorizedKeys, KeyError> {
    let (keys, warnings) = AuthorizedKeys::load(path)?;
    for warning in warnings {
        tracing::warn!(path = %path.display(), "{warning}");
    }
    Ok(keys)
}
