//! What can go wrong with key files, told to the local user: [`KeyError`] for a file that
//! cannot be used at all (each message names the file and says what to do), and
//! [`LineWarning`] / [`LineProblem`] for one bad line of a trust file (authorized_keys,
//! known_hosts), which is skipped while the good lines still count.

use std::fmt;
use std::path::PathBuf;

use crate::keys::cert::CertError;
use crate::keys::public::PublicKeyError;

/// A key file, passphrase or key operation that failed; fatal for the command at hand.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// No file at a private key's path.
    #[error("no key at {path}: create one with `seashell keygen -f {path}`", path = .0.display())]
    Missing(PathBuf),
    /// A public key line where a private key was expected (`-i id_rsa.pub`).
    #[error(
        "{path} is a public key: pass the private key ({private})",
        path = .path.display(),
        private = .private.display()
    )]
    PublicNotPrivate {
        /// The file given.
        path: PathBuf,
        /// Where its private key would be: the path without `.pub`.
        private: PathBuf,
    },
    /// A private key where a public key was expected (`ca sign id_rsa`).
    #[error(
        "{path} is a private key: pass its public key ({public})",
        path = .path.display(),
        public = .public.display()
    )]
    PrivateNotPublic {
        /// The file given.
        path: PathBuf,
        /// Where its public key would be: the path with `.pub`.
        public: PathBuf,
    },
    /// A file could not be read (missing, unreadable, not a regular file...).
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A file or directory could not be created or written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// Refusing to overwrite a key file.
    #[error(
        "{} already exists: pass --force to replace it, or choose another path with -f",
        path.display()
    )]
    Exists {
        /// The existing file.
        path: PathBuf,
    },
    /// A private key file that group or others may read or write.
    #[error(
        "{path}: permissions {mode:04o} are too open; a private key must be readable only by \
         you: run chmod 600 {path}",
        path = path.display()
    )]
    TooOpen {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A private key file owned by another user.
    #[error(
        "{}: owned by uid {owner}, not by you (uid {me}): a private key must belong to the \
         user who runs seashell",
        path.display()
    )]
    NotYours {
        /// The key file.
        path: PathBuf,
        /// The file's owner.
        owner: u32,
        /// The uid seashell runs as.
        me: u32,
    },
    /// An authorized_keys file, or its directory, that someone but the server's user or root
    /// could change (and so let any key in); refused as sshd's StrictModes refuses it.
    #[error(
        "{}: {problem}; refused, since whoever can change it can let any key in (like sshd's \
         StrictModes): {fix}",
        path.display()
    )]
    UnsafeTrustFile {
        /// The file or directory at fault.
        path: PathBuf,
        /// What is wrong: the mode (octal) or the owner (uid and name).
        problem: String,
        /// The command that fixes it.
        fix: String,
    },
    /// An encrypted private key and no way to obtain its passphrase.
    #[error(
        "{} is encrypted and no passphrase was given: pass --passphrase-file FILE, set \
         SEASHELL_PASSPHRASE, or run seashell from a terminal to be asked",
        path.display()
    )]
    PassphraseNeeded {
        /// The key file.
        path: PathBuf,
    },
    /// The passphrase does not decrypt the key.
    #[error("wrong passphrase for {}", path.display())]
    WrongPassphrase {
        /// The key file.
        path: PathBuf,
    },
    /// A passphrase file whose first line is empty.
    #[error("the passphrase file {} is empty: put the passphrase on its first line", path.display())]
    EmptyPassphraseFile {
        /// The passphrase file.
        path: PathBuf,
    },
    /// The two passphrases typed at keygen differ.
    #[error("the passphrases do not match; no key was written: run keygen again")]
    PassphraseMismatch,
    /// Reading a passphrase from the terminal failed.
    #[error("cannot read the passphrase from the terminal: {0}")]
    Prompt(std::io::Error),
    /// A PEM block of a kind seashell does not read (e.g. a PKCS#1 `RSA PRIVATE KEY`).
    #[error(
        "{path} holds a `{label}` PEM block; seashell reads PKCS#8 keys (`PRIVATE KEY` or \
         `ENCRYPTED PRIVATE KEY`): convert it with `openssl pkcs8 -topk8 -in {path}` or make a \
         new key with seashell keygen",
        path = path.display()
    )]
    UnsupportedPem {
        /// The key file.
        path: PathBuf,
        /// The PEM label found.
        label: String,
    },
    /// Not a well-formed RSA private key.
    #[error(
        "{}: not a valid RSA private key in PKCS#8 PEM ({detail}): make a new key with \
         seashell keygen",
        path.display()
    )]
    BadPrivateKey {
        /// The key file.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
    /// A public key line that cannot be used.
    #[error("{}:{line}: {source}", path.display())]
    BadPublicKey {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// Why the line was rejected.
        source: PublicKeyError,
    },
    /// A certificate file that does not hold a certificate seashell can read.
    #[error("{}:{line}: {source}", path.display())]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// Why the line was rejected.
        source: CertError,
    },
    /// Fields a certificate cannot carry, or a CA key that could not sign (`ca sign`).
    #[error("cannot certify {}: {source}", key.display())]
    Certify {
        /// The public key file being certified.
        key: PathBuf,
        /// What is wrong.
        source: CertError,
    },
    /// A file holding no key at all.
    #[error(
        "{}: no key found: expected a PKCS#8 PEM private key, a `seashell-rsa` public key, an \
         authorized_keys or a known_hosts file",
        path.display()
    )]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// A modulus size keygen does not make.
    #[error("{0}-bit RSA keys are not supported: use 2048, 3072 (default) or 4096")]
    UnsupportedSize(usize),
    /// A host name that is not `host:port` / `[v6]:port`.
    #[error("`{0}` is not host:port (write an IPv6 address as [addr]:port)")]
    BadHostPort(String),
    /// Neither `SEASHELL_HOME` nor `HOME` is set.
    #[error("cannot find the seashell home directory: set SEASHELL_HOME or HOME")]
    NoHome,
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
    /// RSA key generation or key encoding failed.
    #[error("cannot {action} the RSA key: {detail}")]
    Crypto {
        /// What was being done ("generate", "encode", "encrypt").
        action: &'static str,
        /// The library's message.
        detail: String,
    },
}

/// One line of a trust file that was skipped (or, for [`LineProblem::RevokedEverywhere`],
/// read the safe way), and why.
#[derive(Debug, PartialEq, Eq)]
pub struct LineWarning {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub problem: LineProblem,
}

impl fmt::Display for LineWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problem {
            // The one problem that keeps its line, the safe way.
            LineProblem::RevokedEverywhere(_) => write!(f, "line {}: {}", self.line, self.problem),
            _ => write!(f, "line {} skipped: {}", self.line, self.problem),
        }
    }
}

/// Why one line of an authorized_keys or known_hosts file was skipped.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LineProblem {
    /// The key itself is bad.
    #[error("{0}")]
    Key(#[from] PublicKeyError),
    /// An option seashell does not know.
    #[error(
        "unknown option `{0}` (seashell knows from=, expires=, allow=, command=, no-files, \
         no-pty, and cert-authority with principals=; the key must start with `seashell-rsa`)"
    )]
    UnknownOption(String),
    /// A known option with a missing, empty or unexpected value.
    #[error("option `{name}`: {reason}")]
    BadOption {
        /// The option's name.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The options field is not `name[="value"],...` followed by a space.
    #[error("malformed options: {0}")]
    OptionSyntax(&'static str),
    /// A revoked_keys line that is neither a key fingerprint nor a certificate serial.
    #[error(
        "`{0}` is not `SHA256:<fingerprint>` (a key or a CA) nor `serial:<CA fingerprint>:<N>` (a certificate)"
    )]
    BadRevocation(String),
    /// A known_hosts marker other than `@cert-authority` and `@revoked`.
    #[error("unknown marker `{0}` (known_hosts knows @cert-authority and @revoked)")]
    UnknownMarker(String),
    /// A pattern of a marked known_hosts line that is neither `host:port` nor a host glob.
    #[error("`{0}` is not a host pattern (a host name or address with `*` and `?`, or host:port)")]
    BadHostPattern(String),
    /// A glob of a marked known_hosts line with a port after it: globs match the host name
    /// alone, so it would never match.
    #[error(
        "`{0}`: a host glob matches the name dialed without its port, so this never matches; write the glob alone (`*.lan`) or an exact host:port"
    )]
    GlobWithPort(String),
    /// An `@revoked` line whose host patterns do not parse: kept, for every host, since
    /// skipping it would trust the key it revokes.
    #[error(
        "`{0}` is not a list of host patterns, so this @revoked line revokes its key for every host until it is fixed"
    )]
    RevokedEverywhere(String),
    /// A known_hosts line whose first field is not `host:port`.
    #[error("`{0}` is not host:port (write an IPv6 address as [addr]:port)")]
    BadHostPort(String),
}
