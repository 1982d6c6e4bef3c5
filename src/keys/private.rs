//! Private key files: generating RSA keys, writing a key pair (PKCS#8 PEM created 0600 from the
//! first byte, optionally passphrase-encrypted with PBES2 + scrypt + AES-256-CBC, next to its
//! one-line `.pub`), and loading a private key back, refusing a file that others could read or
//! that belongs to someone else. Passphrases and PEM text live only in zeroizing buffers. This
//! module never prompts unless the key is encrypted and stdin is a terminal.

use std::fs::File;
use std::io::{IsTerminal as _, Read as _};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use crate::crypto::{CryptoError, PrivateKey, PublicKey};
use pkcs8::der::pem::PemLabel as _;
use pkcs8::{EncryptedPrivateKeyInfoRef, LineEnding, PrivateKeyInfoRef, SecretDocument};
use zeroize::Zeroizing;

use crate::keys::KeyError;
use crate::keys::files;
use crate::keys::public::{self, MAX_RSA_BITS, MIN_RSA_BITS};
use crate::keys::trust_file::is_blank_or_comment;

/// Environment variable that may carry a key passphrase for non-interactive use. Anything that
/// can read the process environment can read it: prefer a passphrase file or the prompt.
pub const PASSPHRASE_ENV: &str = "SEASHELL_PASSPHRASE";

/// Largest private key or passphrase file read, in bytes (a 4096-bit encrypted key is ~3.4 KiB).
const MAX_SECRET_FILE: u64 = 64 * 1024;

/// A passphrase, wiped from memory when dropped.
pub type Passphrase = Zeroizing<Vec<u8>>;

/// Where the passphrase of an encrypted private key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PassphraseSource {
    /// The first line of this file (`--passphrase-file`), and nothing else.
    File(PathBuf),
    /// `$SEASHELL_PASSPHRASE` if set, else a no-echo prompt when stdin is a terminal.
    EnvOrPrompt,
}

impl PassphraseSource {
    /// `File` when a passphrase file was named on the command line, else `EnvOrPrompt`.
    pub fn from_flag(passphrase_file: Option<&Path>) -> Self {
        passphrase_file.map_or(Self::EnvOrPrompt, |path| Self::File(path.to_owned()))
    }
}

/// Generates an RSA key of 2048, 3072 or 4096 bits from the operating system's RNG.
pub fn generate(bits: usize) -> Result<PrivateKey, KeyError> {
    if !matches!(bits, 2048 | 3072 | 4096) {
        return Err(KeyError::UnsupportedSize(bits));
    }
    PrivateKey::generate(bits).map_err(|err| KeyError::Crypto {
        action: "generate",
        detail: err.to_string(),
    })
}

/// The public key file that goes with a private key file: `PATH.pub`.
pub fn public_key_path(private_path: &Path) -> PathBuf {
    let mut name = private_path.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

/// Where a private key's certificate lives: `PATH-cert.pub` (as ssh looks for
/// `id_rsa-cert.pub` beside `id_rsa`).
pub fn certificate_path(private_path: &Path) -> PathBuf {
    let mut name = private_path.as_os_str().to_owned();
    name.push("-cert.pub");
    PathBuf::from(name)
}

/// Writes `key` to `path` (PKCS#8 PEM, mode 0600, encrypted when `passphrase` is given) and its
/// public line with `comment` to `PATH.pub` (mode 0644).
///
/// Without `force`, an existing private or public file is an error naming it and nothing is
/// written. With `force`, each file is replaced atomically.
pub fn write_key_pair(
    path: &Path,
    key: &PrivateKey,
    comment: &str,
    passphrase: Option<&[u8]>,
    force: bool,
) -> Result<(), KeyError> {
    let pem = private_pem(key, passphrase)?;
    let pub_path = public_key_path(path);
    let pub_line = format!("{}\n", public::to_line(key.public_key(), comment));
    if force {
        files::replace(path, 0o600, pem.as_bytes())?;
        return files::replace(&pub_path, 0o644, pub_line.as_bytes());
    }
    for existing in [path, pub_path.as_path()] {
        if existing.symlink_metadata().is_ok() {
            return Err(KeyError::Exists {
                path: existing.to_owned(),
            });
        }
    }
    files::create_new(path, 0o600, pem.as_bytes())?;
    files::create_new(&pub_path, 0o644, pub_line.as_bytes()).inspect_err(|_| {
        // Do not leave a private key without its public half; the error at hand says why.
        let _ = std::fs::remove_file(path);
    })
}

/// The PEM text of `key`: `PRIVATE KEY`, or `ENCRYPTED PRIVATE KEY` under `passphrase`.
fn private_pem(key: &PrivateKey, passphrase: Option<&[u8]>) -> Result<Zeroizing<String>, KeyError> {
    let encode_error = |detail: String| KeyError::Crypto {
        action: "encode",
        detail,
    };
    let plain = key
        .to_pkcs8_der()
        .map_err(|err| encode_error(err.to_string()))?;
    let info = PrivateKeyInfoRef::try_from(plain.as_slice())
        .map_err(|err| encode_error(err.to_string()))?;
    let Some(passphrase) = passphrase else {
        return SecretDocument::try_from(info)
            .map_err(|err| encode_error(err.to_string()))?
            .to_pem(PrivateKeyInfoRef::PEM_LABEL, LineEnding::LF)
            .map_err(|err| encode_error(err.to_string()));
    };
    let encrypted = info.encrypt(passphrase).map_err(|err| KeyError::Crypto {
        action: "encrypt",
        detail: err.to_string(),
    })?;
    encrypted
        .to_pem(EncryptedPrivateKeyInfoRef::PEM_LABEL, LineEnding::LF)
        .map_err(|err| encode_error(err.to_string()))
}

/// Parses an unencrypted PKCS#8 PEM private key (`PRIVATE KEY`) held in memory, as test
/// fixtures and the fuzzers' fake peers hold theirs. Files go through [`load_private_key`].
pub fn from_pem(pem: &str) -> Result<PrivateKey, CryptoError> {
    let bad = CryptoError("PKCS#8 PEM parsing");
    let (label, document) = SecretDocument::from_pem(pem).map_err(|_| bad)?;
    if label != PrivateKeyInfoRef::PEM_LABEL {
        return Err(bad);
    }
    PrivateKey::from_pkcs8_der(document.as_bytes())
}

/// Loads a PKCS#8 PEM private key, asking `passphrase` only if the key is encrypted.
///
/// The file must be a regular file owned by the current user with no group or other
/// permission bits; otherwise the error names the fix (`chmod 600 PATH`).
pub fn load_private_key(
    path: &Path,
    passphrase: &PassphraseSource,
) -> Result<PrivateKey, KeyError> {
    let pem = read_private_file(path)?;
    let (label, document) =
        SecretDocument::from_pem(&pem).map_err(|err| bad_key(path, err.to_string()))?;
    let key = match label {
        PrivateKeyInfoRef::PEM_LABEL => PrivateKey::from_pkcs8_der(document.as_bytes())
            .map_err(|err| bad_key(path, err.to_string()))?,
        EncryptedPrivateKeyInfoRef::PEM_LABEL => {
            let secret = obtain_passphrase(path, passphrase)?;
            decrypt(path, document.as_bytes(), &secret)?
        }
        other => {
            return Err(KeyError::UnsupportedPem {
                path: path.to_owned(),
                label: other.to_owned(),
            });
        }
    };
    let bits = key.public_key().bits();
    if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
        return Err(bad_key(
            path,
            format!("{bits}-bit modulus; seashell accepts {MIN_RSA_BITS} to {MAX_RSA_BITS} bits"),
        ));
    }
    Ok(key)
}

/// Decrypts an `EncryptedPrivateKeyInfo`. Any failure after the structure parsed (bad padding,
/// or garbage that is not PKCS#8) means the passphrase is wrong.
fn decrypt(path: &Path, der: &[u8], passphrase: &[u8]) -> Result<PrivateKey, KeyError> {
    let info =
        EncryptedPrivateKeyInfoRef::try_from(der).map_err(|err| bad_key(path, err.to_string()))?;
    let plain = info
        .decrypt(passphrase)
        .map_err(|_| KeyError::WrongPassphrase {
            path: path.to_owned(),
        })?;
    PrivateKey::from_pkcs8_der(plain.as_bytes()).map_err(|err| bad_key(path, err.to_string()))
}

fn bad_key(path: &Path, detail: String) -> KeyError {
    KeyError::BadPrivateKey {
        path: path.to_owned(),
        detail,
    }
}

/// Reads a private key file after checking, on the open file itself, that it is a regular
/// file, ours, and closed to group and others.
fn read_private_file(path: &Path) -> Result<Zeroizing<String>, KeyError> {
    let read_error = |source| KeyError::Read {
        path: path.to_owned(),
        source,
    };
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(KeyError::Missing(path.to_owned()));
        }
        Err(err) => return Err(read_error(err)),
    };
    let meta = file.metadata().map_err(read_error)?;
    if !meta.is_file() {
        return Err(read_error(std::io::Error::other("not a regular file")));
    }
    let mut text = Zeroizing::new(String::new());
    file.take(MAX_SECRET_FILE)
        .read_to_string(&mut text)
        .map_err(read_error)?;
    // Told before the mode: a .pub is readable by all, and `chmod 600` is not the fix.
    if text.starts_with("seashell-rsa ") {
        return Err(KeyError::PublicNotPrivate {
            path: path.to_owned(),
            private: path.with_extension(""),
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyError::TooOpen {
            path: path.to_owned(),
            mode,
        });
    }
    if let Some(me) = current_uid()
        && meta.uid() != me
        && meta.uid() != 0
    {
        return Err(KeyError::NotYours {
            path: path.to_owned(),
            owner: meta.uid(),
            me,
        });
    }
    Ok(text)
}

/// The uid this process runs as: the owner of `/proc/self` on Linux. `None` where there is no
/// procfs, in which case only the mode is checked.
fn current_uid() -> Option<u32> {
    std::fs::metadata("/proc/self").ok().map(|meta| meta.uid())
}

/// The passphrase for the encrypted key at `path`, from `source`.
fn obtain_passphrase(path: &Path, source: &PassphraseSource) -> Result<Passphrase, KeyError> {
    if let PassphraseSource::File(file) = source {
        return read_passphrase_file(file);
    }
    if let Some(value) = std::env::var_os(PASSPHRASE_ENV) {
        return Ok(Zeroizing::new(value.into_encoded_bytes()));
    }
    if std::io::stdin().is_terminal() {
        let prompt = format!("Enter passphrase for {}: ", path.display());
        let typed = Zeroizing::new(rpassword::prompt_password(prompt).map_err(KeyError::Prompt)?);
        return Ok(Zeroizing::new(typed.as_bytes().to_vec()));
    }
    Err(KeyError::PassphraseNeeded {
        path: path.to_owned(),
    })
}

/// The first line of a passphrase file, without its line ending; an empty line is an error.
pub fn read_passphrase_file(path: &Path) -> Result<Passphrase, KeyError> {
    let read_error = |source| KeyError::Read {
        path: path.to_owned(),
        source,
    };
    let mut contents = Zeroizing::new(Vec::new());
    File::open(path)
        .and_then(|file| file.take(MAX_SECRET_FILE).read_to_end(&mut contents))
        .map_err(read_error)?;
    let first_line = contents.split(|&b| b == b'\n').next().unwrap_or_default();
    let first_line = first_line.strip_suffix(b"\r").unwrap_or(first_line);
    if first_line.is_empty() {
        return Err(KeyError::EmptyPassphraseFile {
            path: path.to_owned(),
        });
    }
    Ok(Zeroizing::new(first_line.to_vec()))
}

/// Loads a `.pub` file: its one `seashell-rsa <base64> [comment]` line (blank lines and `#`
/// comments around it are ignored). Returns the key and its comment.
pub fn load_public_key_file(path: &Path) -> Result<(PublicKey, String), KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
        path: path.to_owned(),
        source,
    })?;
    let (line, content) = text
        .lines()
        .enumerate()
        .find(|(_, line)| !is_blank_or_comment(line))
        .ok_or_else(|| KeyError::NoKey {
            path: path.to_owned(),
        })?;
    let parsed = public::parse_line(content).map_err(|source| KeyError::BadPublicKey {
        path: path.to_owned(),
        line: line + 1,
        source,
    })?;
    Ok((parsed.key, parsed.comment))
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    const CLIENT_PEM: &str = include_str!("../../tests/fixtures/client_rsa");
    const CLIENT_PUB: &str = include_str!("../../tests/fixtures/client_rsa.pub");
    const ENC_PEM: &str = include_str!("../../tests/fixtures/client_enc_rsa");
    const ENC_PASSPHRASE: &str = "correct horse battery staple";

    fn write_secret(dir: &Path, name: &str, contents: &str, mode: u32) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, contents).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    fn client_key() -> PrivateKey {
        from_pem(CLIENT_PEM).unwrap()
    }

    #[test]
    fn generate_refuses_unsupported_sizes() {
        for bits in [0, 1024, 2047, 2049, 8192] {
            assert!(matches!(generate(bits), Err(KeyError::UnsupportedSize(b)) if b == bits));
        }
    }

    #[test]
    fn write_then_load_round_trips_unencrypted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id_rsa");
        let key = client_key();
        write_key_pair(&path, &key, "me@box", None, false).unwrap();

        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert!(
            fs::read_to_string(&path)
                .unwrap()
                .starts_with("-----BEGIN PRIVATE KEY-----\n")
        );
        let loaded = load_private_key(&path, &PassphraseSource::EnvOrPrompt).unwrap();
        assert_eq!(
            *loaded.to_pkcs8_der().unwrap(),
            *key.to_pkcs8_der().unwrap()
        );

        let pub_path = dir.path().join("id_rsa.pub");
        let pub_text = fs::read_to_string(&pub_path).unwrap();
        assert_eq!(
            pub_text,
            format!("{}\n", public::to_line(key.public_key(), "me@box"))
        );
        assert_eq!(
            fs::metadata(&pub_path).unwrap().permissions().mode() & 0o777,
            0o644
        );
        let (public, comment) = load_public_key_file(&pub_path).unwrap();
        assert_eq!(&public, key.public_key());
        assert_eq!(comment, "me@box");
    }

    #[test]
    fn write_then_load_round_trips_encrypted_with_a_passphrase_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id_rsa");
        let key = client_key();
        write_key_pair(&path, &key, "", Some(b"s3cret"), false).unwrap();
        assert!(
            fs::read_to_string(&path)
                .unwrap()
                .starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
        );

        let good = write_secret(dir.path(), "good", "s3cret\r\nsecond line ignored\n", 0o600);
        let loaded = load_private_key(&path, &PassphraseSource::File(good)).unwrap();
        assert_eq!(
            *loaded.to_pkcs8_der().unwrap(),
            *key.to_pkcs8_der().unwrap()
        );

        let bad = write_secret(dir.path(), "bad", "S3cret\n", 0o600);
        let err = load_private_key(&path, &PassphraseSource::File(bad)).unwrap_err();
        assert!(matches!(err, KeyError::WrongPassphrase { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            format!("wrong passphrase for {}", path.display())
        );
    }

    #[test]
    fn the_encrypted_fixture_opens_with_its_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_secret(dir.path(), "enc", ENC_PEM, 0o600);
        let pass = write_secret(dir.path(), "pass", &format!("{ENC_PASSPHRASE}\n"), 0o600);
        let key = load_private_key(&path, &PassphraseSource::File(pass)).unwrap();
        assert_eq!(key.public_key().bits(), 2048);
    }

    #[test]
    fn refuses_to_overwrite_without_force_and_replaces_with_force() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id_rsa");
        fs::write(public_key_path(&path), "keep me\n").unwrap();
        let key = client_key();

        let err = write_key_pair(&path, &key, "c", None, false).unwrap_err();
        assert!(
            err.to_string().contains("id_rsa.pub already exists"),
            "{err}"
        );
        assert!(err.to_string().contains("--force"), "{err}");
        assert!(!path.exists(), "nothing written when the .pub exists");
        assert_eq!(
            fs::read_to_string(public_key_path(&path)).unwrap(),
            "keep me\n"
        );

        write_key_pair(&path, &key, "c", None, true).unwrap();
        let (public, _) = load_public_key_file(&public_key_path(&path)).unwrap();
        assert_eq!(&public, key.public_key());
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn refuses_a_key_readable_by_others_with_the_chmod_fix() {
        let dir = tempfile::tempdir().unwrap();
        for mode in [0o644, 0o640, 0o604, 0o660, 0o602] {
            let path = write_secret(dir.path(), "id_rsa", CLIENT_PEM, mode);
            let err = load_private_key(&path, &PassphraseSource::EnvOrPrompt).unwrap_err();
            let shown = path.display();
            assert_eq!(
                err.to_string(),
                format!(
                    "{shown}: permissions {mode:04o} are too open; a private key must be \
                     readable only by you: run chmod 600 {shown}"
                )
            );
        }
        let path = write_secret(dir.path(), "id_rsa", CLIENT_PEM, 0o400);
        assert!(load_private_key(&path, &PassphraseSource::EnvOrPrompt).is_ok());
    }

    #[test]
    fn refuses_a_key_owned_by_someone_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_secret(dir.path(), "id_rsa", CLIENT_PEM, 0o600);
        if std::os::unix::fs::chown(&path, Some(54321), None).is_err() {
            return; // Not root: cannot give a file away, nothing to check here.
        }
        let err = load_private_key(&path, &PassphraseSource::EnvOrPrompt).unwrap_err();
        assert!(
            matches!(err, KeyError::NotYours { owner: 54321, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("owned by uid 54321"), "{err}");
    }

    #[test]
    fn rejects_other_pem_kinds_and_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let pkcs1 = CLIENT_PEM
            .replace("BEGIN PRIVATE KEY", "BEGIN RSA PRIVATE KEY")
            .replace("END PRIVATE KEY", "END RSA PRIVATE KEY");
        let path = write_secret(dir.path(), "pkcs1", &pkcs1, 0o600);
        let err = load_private_key(&path, &PassphraseSource::EnvOrPrompt).unwrap_err();
        assert!(
            matches!(err, KeyError::UnsupportedPem { ref label, .. } if label == "RSA PRIVATE KEY")
        );

        let path = write_secret(dir.path(), "junk", "hello\n", 0o600);
        let err = load_private_key(&path, &PassphraseSource::EnvOrPrompt).unwrap_err();
        assert!(matches!(err, KeyError::BadPrivateKey { .. }), "{err}");

        let missing = dir.path().join("missing");
        let err = load_private_key(&missing, &PassphraseSource::EnvOrPrompt).unwrap_err();
        assert!(
            matches!(err, KeyError::Missing(ref path) if *path == missing),
            "{err}"
        );
    }

    #[test]
    fn an_empty_passphrase_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_secret(dir.path(), "pass", "\nsecond\n", 0o600);
        assert!(matches!(
            read_passphrase_file(&path),
            Err(KeyError::EmptyPassphraseFile { .. })
        ));
        let path = write_secret(dir.path(), "pass2", "no newline", 0o600);
        assert_eq!(
            read_passphrase_file(&path).unwrap().as_slice(),
            b"no newline"
        );
    }

    #[test]
    fn load_public_key_file_names_the_bad_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_secret(dir.path(), "k.pub", "# mine\n\nseashell-rsa !!!\n", 0o644);
        let err = load_public_key_file(&path).unwrap_err();
        assert!(
            matches!(err, KeyError::BadPublicKey { line: 3, .. }),
            "{err}"
        );

        let path = write_secret(dir.path(), "ok.pub", CLIENT_PUB, 0o644);
        let (_, comment) = load_public_key_file(&path).unwrap();
        assert_eq!(comment, "test-client");
    }
}
