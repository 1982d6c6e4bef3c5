//! The `keygen` and `fingerprint` subcommands: turn their parsed flags into calls on the key
//! modules and print what a person needs to see (paths, `SHA256:` fingerprints, skipped lines).
//! All file formats and checks live in the other `keys` modules; this one only decides defaults
//! (path, comment, where the passphrase comes from) and talks to the terminal.

use std::io::IsTerminal as _;
use std::path::Path;

use zeroize::Zeroizing;

use crate::cli::{FingerprintArgs, KeygenArgs};
use crate::keys::authorized::AuthorizedKeys;
use crate::keys::known_hosts::{self, KnownHosts};
use crate::keys::private::{self, Passphrase, PassphraseSource};
use crate::keys::{KeyError, LineWarning, home, public};

/// Runs `seashell keygen`: makes a key pair and prints where it went and its fingerprint.
pub fn run(args: &KeygenArgs) -> Result<(), KeyError> {
    let path = match &args.file {
        Some(path) => path.clone(),
        None => {
            home::ensure_home()?;
            home::default_identity()?
        }
    };
    if !args.force {
        refuse_existing(&path)?;
    }
    let comment = args.comment.clone().unwrap_or_else(default_comment);
    let passphrase = keygen_passphrase(args)?;

    eprintln!("Generating a {}-bit RSA key pair...", args.bits);
    let key = private::generate(args.bits)?;
    private::write_key_pair(
        &path,
        &key,
        &comment,
        passphrase.as_ref().map(|p| p.as_slice()),
        args.force,
    )?;
    println!("Your identification has been saved in {}", path.display());
    println!(
        "Your public key has been saved in {}",
        private::public_key_path(&path).display()
    );
    println!(
        "The key fingerprint is {} {comment}",
        public::fingerprint(key.as_public_key())
    );
    Ok(())
}

/// Runs `seashell fingerprint FILE`: one `SHA256:... label` line per key in the file.
pub fn fingerprint(args: &FingerprintArgs) -> Result<(), KeyError> {
    let path = args.file.as_path();
    let text = Zeroizing::new(
        std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: path.to_owned(),
            source,
        })?,
    );
    let lines = match FileKind::of(&text) {
        FileKind::PrivateKey => {
            let source = PassphraseSource::from_flag(args.passphrase_file.as_deref());
            vec![private_key_line(path, &source)?]
        }
        FileKind::PublicKey => {
            let (key, comment) = private::load_public_key_file(path)?;
            vec![labelled(&public::fingerprint(&key), &comment)]
        }
        FileKind::KnownHosts => {
            let (hosts, warnings) = KnownHosts::parse(&text);
            report(path, &warnings);
            hosts
                .entries
                .iter()
                .map(|entry| labelled(&entry.fingerprint, &entry.host_port))
                .collect()
        }
        FileKind::AuthorizedKeys => {
            let (keys, warnings) = AuthorizedKeys::parse(&text);
            report(path, &warnings);
            keys.entries
                .iter()
                .map(|entry| labelled(&entry.fingerprint, &entry.comment))
                .collect()
        }
    };
    if lines.is_empty() {
        return Err(KeyError::NoKey {
            path: path.to_owned(),
        });
    }
    for line in lines {
        println!("{line}");
    }
    Ok(())
}

/// What a file given to `fingerprint` holds, judged from its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    /// A PEM block.
    PrivateKey,
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
            .filter(|line| !private::is_blank_or_comment(line))
            .collect();
        let first_fields: Vec<&str> = meaningful
            .first()
            .map(|line| line.split_whitespace().take(2).collect())
            .unwrap_or_default();
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
    let fingerprint = public::fingerprint(key.as_public_key());
    let comment = private::load_public_key_file(&private::public_key_path(path))
        .ok()
        .filter(|(public, _)| public == key.as_public_key())
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

fn report(path: &Path, warnings: &[LineWarning]) {
    for warning in warnings {
        eprintln!("seashell: warning: {}: {warning}", path.display());
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

/// The passphrase for a new key: from `--passphrase-file`, none with `--no-passphrase`, typed
/// twice on a terminal (empty means none), and none when there is no terminal to ask.
fn keygen_passphrase(args: &KeygenArgs) -> Result<Option<Passphrase>, KeyError> {
    if let Some(file) = &args.passphrase_file {
        return private::read_passphrase_file(file).map(Some);
    }
    if args.no_passphrase || !std::io::stdin().is_terminal() {
        return Ok(None);
    }
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
    }

    #[test]
    fn labels_are_omitted_when_empty() {
        assert_eq!(labelled("SHA256:x", ""), "SHA256:x");
        assert_eq!(labelled("SHA256:x", "a b"), "SHA256:x a b");
    }
}
