//! Key generation and fingerprint listing as values: what `seashell keygen` and `seashell
//! fingerprint` compute. This module settles defaults (path, comment, where a new key's
//! passphrase comes from) and judges what a file holds; file formats and checks live in the
//! other `keys` modules. It never prints and knows nothing of the command line: the command
//! layer (`src/cmd/`) turns flags into these calls and shows what they return.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::keys::authorized::AuthorizedKeys;
use crate::keys::known_hosts::{self, KnownHosts};
use crate::keys::private::{self, Passphrase, PassphraseSource};
use crate::keys::{KeyError, LineWarning, ca, cert, files, home, public, trust_file};

/// A key pair about to be made: where it goes and its comment settled, and (unless
/// overwriting) both files checked not to exist yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPairPlan {
    /// The private key's path; the public key goes beside it (see
    /// [`private::public_key_path`]).
    pub path: PathBuf,
    /// Modulus size in bits.
    pub bits: usize,
    /// The comment stored in the `.pub` line.
    pub comment: String,
    /// Whether existing key files are replaced.
    pub force: bool,
}

/// A key pair just written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKeyPair {
    /// The private key file.
    pub private_path: PathBuf,
    /// The public key file.
    pub public_path: PathBuf,
    /// The key's `SHA256:` fingerprint.
    pub fingerprint: String,
    /// The comment stored in the `.pub` line.
    pub comment: String,
}

impl KeyPairPlan {
    /// Settles the path (`file`, else `$SEASHELL_HOME/id_rsa`; a missing directory is made,
    /// 0700, as `~/.seashell` for README's first server step)
    /// and the comment (`comment`, else `user@hostname`). Without `force`, fails here, before
    /// the slow key generation, if either file of the pair exists.
    pub fn new(
        file: Option<PathBuf>,
        bits: usize,
        comment: Option<String>,
        force: bool,
    ) -> Result<Self, KeyError> {
        let path = match file {
            Some(path) => {
                if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty())
                    && !dir.exists()
                {
                    files::create_private_dir(dir)?;
                }
                path
            }
            None => {
                home::ensure_home()?;
                home::default_identity()?
            }
        };
        if !force {
            refuse_existing(&path)?;
        }
        Ok(Self {
            path,
            bits,
            comment: comment.unwrap_or_else(default_comment),
            force,
        })
    }

    /// Generates the key and writes the pair, the private key encrypted under `passphrase`
    /// when there is one.
    pub fn make(&self, passphrase: Option<&[u8]>) -> Result<NewKeyPair, KeyError> {
        let key = private::generate(self.bits)?;
        private::write_key_pair(&self.path, &key, &self.comment, passphrase, self.force)?;
        Ok(NewKeyPair {
            private_path: self.path.clone(),
            public_path: private::public_key_path(&self.path),
            fingerprint: public::fingerprint(key.public_key()),
            comment: self.comment.clone(),
        })
    }
}

/// Where a new key's passphrase comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewPassphrase {
    /// The first line of this file.
    File(PathBuf),
    /// None: the private key is written unencrypted.
    None,
    /// Typed twice on the terminal (empty means none); none when stdin is not a terminal.
    AskTwice,
}

/// The passphrase for a new key, as `choice` says; `None` for an unencrypted key.
pub fn new_passphrase(choice: &NewPassphrase) -> Result<Option<Passphrase>, KeyError> {
    match choice {
        NewPassphrase::File(file) => private::read_passphrase_file(file).map(Some),
        NewPassphrase::None => Ok(None),
        NewPassphrase::AskTwice if !std::io::stdin().is_terminal() => Ok(None),
        NewPassphrase::AskTwice => ask_twice(),
    }
}

/// The fingerprints in one key file, and what was wrong with the lines that held none.
#[derive(Debug, PartialEq, Eq)]
pub struct FileFingerprints {
    path: PathBuf,
    /// One `SHA256:... label` line per key, in file order (the label left out when empty).
    pub lines: Vec<String>,
    /// The lines of a trust file that were skipped, and why.
    pub warnings: Vec<LineWarning>,
}

impl FileFingerprints {
    /// The lines, or [`KeyError::NoKey`] when the file held no key at all.
    pub fn into_lines(self) -> Result<Vec<String>, KeyError> {
        if self.lines.is_empty() {
            return Err(KeyError::NoKey { path: self.path });
        }
        Ok(self.lines)
    }
}

/// The public key line (`seashell-rsa <base64>`, no comment: PKCS#8 holds none) of the
/// private key at `path`, opened with `passphrase` if it is encrypted (`keygen -y`).
pub fn public_line(path: &Path, passphrase: &PassphraseSource) -> Result<String, KeyError> {
    let key = private::load_private_key(path, passphrase)?;
    Ok(public::to_line(key.public_key(), ""))
}

/// The fingerprint of every key in `path`: a private key (opened with `passphrase` if it is
/// encrypted), a `.pub` file, an authorized_keys or a known_hosts file, told apart by content.
/// For a certificate (`-cert.pub`), the certified key's line, then the certificate's fields
/// (see [`ca::describe_lines`], with its status at `now`, in Unix seconds), each indented by
/// two spaces.
pub fn fingerprints(
    path: &Path,
    passphrase: &PassphraseSource,
    now: u64,
) -> Result<FileFingerprints, KeyError> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: path.to_owned(),
            source,
        })?,
    );
    let (lines, warnings) = match FileKind::of(&text) {
        FileKind::PrivateKey => (vec![private_key_line(path, passphrase)?], Vec::new()),
        FileKind::Certificate => {
            let cert = ca::load_certificate(path)?;
            let first = labelled(&cert.cert.key_fingerprint(), &cert.comment);
            let fields = ca::describe_lines(&cert, now)
                .into_iter()
                .map(|line| format!("  {line}"));
            (std::iter::once(first).chain(fields).collect(), Vec::new())
        }
        FileKind::PublicKey => {
            let (key, comment) = private::load_public_key_file(path)?;
            (
                vec![labelled(&public::fingerprint(&key), &comment)],
                Vec::new(),
            )
        }
        FileKind::KnownHosts => {
            let (hosts, warnings) = KnownHosts::parse(&text);
            let lines = hosts
                .entries
                .iter()
                .map(|entry| labelled(&entry.fingerprint, &entry.host_port))
                .collect();
            (lines, warnings)
        }
        FileKind::AuthorizedKeys => {
            let (keys, warnings) = AuthorizedKeys::parse(&text);
            let lines = keys
                .entries
                .iter()
                .map(|entry| labelled(&entry.fingerprint, &entry.comment))
                .collect();
            (lines, warnings)
        }
    };
    Ok(FileFingerprints {
        path: path.to_owned(),
        lines,
        warnings,
    })
}

/// What a file given to `fingerprint` holds, judged from its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    /// A PEM block.
    PrivateKey,
    /// A certificate line first (`seashell-rsa-cert`).
    Certificate,
    /// Exactly one key line, without options.
    PublicKey,
    /// Key lines whose first field is `host:port`.
    KnownHosts,
    /// Anything else: key lines, possibly with options.
    AuthorizedKeys,
}

impl FileKind {
    fn of(text: &str) -> Self {
        if text.trim_start().starts_with("-----BEGIN ") {
            return Self::PrivateKey;
        }
        let meaningful: Vec<&str> = text
            .lines()
            .filter(|line| !trust_file::is_blank_or_comment(line))
            .collect();
        let first_fields: Vec<&str> = meaningful
            .first()
            .map(|line| line.split_whitespace().take(2).collect())
            .unwrap_or_default();
        if meaningful
            .first()
            .is_some_and(|line| cert::is_cert_line(line))
        {
            return Self::Certificate;
        }
        match first_fields.as_slice() {
            [host, public::KEY_TYPE] if known_hosts::canonical_host_port(host).is_some() => {
                Self::KnownHosts
            }
            [public::KEY_TYPE, _] if meaningful.len() == 1 => Self::PublicKey,
            _ => Self::AuthorizedKeys,
        }
    }
}

/// The fingerprint line of a private key, labelled with the comment of its `.pub` when that
/// holds the same key, else with the path.
fn private_key_line(path: &Path, source: &PassphraseSource) -> Result<String, KeyError> {
    let key = private::load_private_key(path, source)?;
    let fingerprint = public::fingerprint(key.public_key());
    let comment = private::load_public_key_file(&private::public_key_path(path))
        .ok()
        .filter(|(public, _)| public == key.public_key())
        .map_or_else(|| path.display().to_string(), |(_, comment)| comment);
    Ok(labelled(&fingerprint, &comment))
}

fn labelled(fingerprint: &str, label: &str) -> String {
    if label.is_empty() {
        fingerprint.to_owned()
    } else {
        format!("{fingerprint} {label}")
    }
}

/// Fails before the slow key generation if either file of the pair already exists (the write
/// checks again, atomically).
fn refuse_existing(path: &Path) -> Result<(), KeyError> {
    for existing in [path.to_owned(), private::public_key_path(path)] {
        if existing.symlink_metadata().is_ok() {
            return Err(KeyError::Exists { path: existing });
        }
    }
    Ok(())
}

/// A new passphrase typed twice on the terminal; an empty one means none.
fn ask_twice() -> Result<Option<Passphrase>, KeyError> {
    let ask = |prompt: &str| {
        rpassword::prompt_password(prompt)
            .map(Zeroizing::new)
            .map_err(KeyError::Prompt)
    };
    let first = ask("Enter passphrase (empty for no passphrase): ")?;
    let second = ask("Enter the same passphrase again: ")?;
    if first != second {
        return Err(KeyError::PassphraseMismatch);
    }
    if first.is_empty() {
        return Ok(None);
    }
    Ok(Some(Zeroizing::new(first.as_bytes().to_vec())))
}

/// `user@hostname` from `$USER` (or `$LOGNAME`) and the kernel's host name; whichever part is
/// unknown is left out.
fn default_comment() -> String {
    let user = ["USER", "LOGNAME"]
        .into_iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|value| !value.is_empty());
    let host = ["/etc/hostname", "/proc/sys/kernel/hostname"]
        .into_iter()
        .filter_map(|file| std::fs::read_to_string(file).ok())
        .filter_map(|text| text.lines().next().map(|line| line.trim().to_owned()))
        .find(|name| !name.is_empty());
    match (user, host) {
        (Some(user), Some(host)) => format!("{user}@{host}"),
        (Some(one), None) | (None, Some(one)) => one,
        (None, None) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT_PUB: &str = include_str!("../../tests/fixtures/client_rsa.pub");
    const CLIENT_PEM: &str = include_str!("../../tests/fixtures/client_rsa");
    const ENC_PEM: &str = include_str!("../../tests/fixtures/client_enc_rsa");

    #[test]
    fn file_kind_is_judged_from_content() {
        let key = CLIENT_PUB.trim();
        let bare = key.rsplit_once(' ').unwrap().0;
        assert_eq!(FileKind::of(CLIENT_PEM), FileKind::PrivateKey);
        assert_eq!(FileKind::of(ENC_PEM), FileKind::PrivateKey);
        assert_eq!(
            FileKind::of(&format!("# mine\n\n{key}\n")),
            FileKind::PublicKey
        );
        assert_eq!(
            FileKind::of(&format!("{key}\n{key}\n")),
            FileKind::AuthorizedKeys
        );
        assert_eq!(
            FileKind::of(&format!("no-files {key}\n")),
            FileKind::AuthorizedKeys
        );
        assert_eq!(
            FileKind::of(&format!("box.lan:7022 {bare}\n")),
            FileKind::KnownHosts
        );
        assert_eq!(
            FileKind::of(&format!("[::1]:7022 {bare}\n")),
            FileKind::KnownHosts
        );
        assert_eq!(FileKind::of(""), FileKind::AuthorizedKeys);
        assert_eq!(
            FileKind::of("# ann\nseashell-rsa-cert AAAA ann\n"),
            FileKind::Certificate
        );
    }

    #[test]
    fn labels_are_omitted_when_empty() {
        assert_eq!(labelled("SHA256:x", ""), "SHA256:x");
        assert_eq!(labelled("SHA256:x", "a b"), "SHA256:x a b");
    }
}
