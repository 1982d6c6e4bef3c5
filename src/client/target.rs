//! From what the user typed (DEST and the flags) and the client configuration, where to
//! connect and how: the address, port, account, identity, pinned fingerprint and known_hosts
//! file, each with where it came from. A flag wins over the host's `[host.NAME]` entry, which
//! wins over `[defaults]`, which wins over seashell's defaults; a `user@` or a port in DEST
//! counts as a flag (`-l` and `-p` win over them, as in ssh).
//! A name the configuration does not know is used as an address, as typed. It reads no file
//! but the configuration; `seashell config show` prints what it decides.

use std::path::{Path, PathBuf};

use super::ClientError;
use super::connect::ConnectOptions;
use super::dest::Destination;
use crate::config::client::{ClientConfig, Origin, Setting, account_problem};
use crate::keys::home;
use crate::proto::DEFAULT_PORT;

/// The client configuration: `explicit` (`-F FILE`, which must exist), else
/// `$SEASHELL_HOME/config` if there is one.
pub fn load_config(explicit: Option<&Path>) -> Result<ClientConfig, ClientError> {
    Ok(match explicit {
        Some(path) => ClientConfig::load(path, true)?,
        None => ClientConfig::load(&home::seashell_home()?.join("config"), false)?,
    })
}

/// A value from the command line.
fn typed_setting<T>(value: T) -> Setting<T> {
    Setting {
        value,
        origin: Origin::CommandLine,
    }
}

/// seashell's own default.
fn default<T>(value: T) -> Setting<T> {
    Setting {
        value,
        origin: Origin::Default,
    }
}

/// The client flags that say where and how to connect.
#[derive(Debug, Clone, Default)]
pub struct Typed {
    /// DEST as typed: an alias, `host`, `host:port`, `[v6]:port`, each maybe after `user@`.
    pub dest: String,
    /// `-p`/`-P`.
    pub port: Option<u16>,
    /// `-l`.
    pub user: Option<String>,
    /// `-i`.
    pub identity: Option<PathBuf>,
    /// `--known-hosts`.
    pub known_hosts: Option<PathBuf>,
    /// `--host-fingerprint`.
    pub host_fingerprint: Option<String>,
    /// `--accept-new`.
    pub accept_new: bool,
    /// `--passphrase-file`.
    pub passphrase_file: Option<PathBuf>,
    /// `-q`.
    pub quiet: bool,
}

/// Every setting a command for one DEST uses, with its origin.
#[derive(Debug, Clone)]
pub struct Target {
    /// Name or address to connect to.
    pub address: Setting<String>,
    /// TCP port.
    pub port: Setting<u16>,
    /// The account to ask for, if any (else the server's own, unasked).
    pub user: Option<Setting<String>>,
    /// Identity (private key).
    pub identity: Setting<PathBuf>,
    /// The identity's certificate, if the config names one (else `IDENTITY-cert.pub`).
    pub certificate: Option<Setting<PathBuf>>,
    /// Pinned host key fingerprint, if any (else known_hosts decides).
    pub fingerprint: Option<Setting<String>>,
    /// known_hosts file.
    pub known_hosts: Setting<PathBuf>,
    /// `--accept-new`.
    pub accept_new: bool,
    /// `--passphrase-file`.
    pub passphrase_file: Option<PathBuf>,
    /// `-q`.
    pub quiet: bool,
}

impl Target {
    /// Resolves `typed` against `config`.
    pub fn resolve(typed: &Typed, config: &ClientConfig) -> Result<Self, ClientError> {
        let (dest_user, host) = match typed.dest.rsplit_once('@') {
            Some((user, host)) => (Some(user), host),
            None => (None, typed.dest.as_str()),
        };
        let (name, dest_port) = Destination::split(host)?;
        let file = config.for_host(&name);
        let user = typed
            .user
            .as_deref()
            .or(dest_user)
            .map(|user| match account_problem(user) {
                Some(problem) => Err(ClientError::Account(problem)),
                None => Ok(typed_setting(user.to_owned())),
            })
            .transpose()?
            .or(file.user);
        let address = file.address.unwrap_or_else(|| typed_setting(name.clone()));
        let port = typed
            .port
            .or(dest_port)
            .map(typed_setting)
            .or(file.port)
            .unwrap_or_else(|| default(DEFAULT_PORT));
        let identity = match (typed.identity.clone(), file.identity) {
            (Some(path), _) => typed_setting(path),
            (None, Some(setting)) => setting,
            (None, None) => default(home::default_identity()?),
        };
        let known_hosts = match (typed.known_hosts.clone(), file.known_hosts) {
            (Some(path), _) => typed_setting(path),
            (None, Some(setting)) => setting,
            (None, None) => default(home::seashell_home()?.join("known_hosts")),
        };
        let fingerprint = typed
            .host_fingerprint
            .clone()
            .map(typed_setting)
            .or(file.fingerprint);
        Ok(Self {
            address,
            port,
            user,
            identity,
            certificate: file.certificate,
            fingerprint,
            known_hosts,
            accept_new: typed.accept_new,
            passphrase_file: typed.passphrase_file.clone(),
            quiet: typed.quiet,
        })
    }

    /// Where to connect.
    pub fn destination(&self) -> Destination {
        Destination {
            host: self.address.value.clone(),
            port: self.port.value,
        }
    }

    /// How to trust the server and who we are.
    pub fn connect_options(&self) -> ConnectOptions {
        ConnectOptions {
            // Only a key named by a flag or the config: the default identity lets an agent
            // offer its only key (client::identity).
            identity: (self.identity.origin != Origin::Default)
                .then(|| self.identity.value.clone()),
            certificate: self.certificate.as_ref().map(|c| c.value.clone()),
            account: self.user.as_ref().map(|u| u.value.clone()),
            known_hosts: Some(self.known_hosts.value.clone()),
            accept_new: self.accept_new,
            host_fingerprint: self.fingerprint.as_ref().map(|f| f.value.clone()),
            passphrase_file: self.passphrase_file.clone(),
            quiet: self.quiet,
            ask_host_key: true,
        }
    }

    /// `key = value  # origin` lines, as `seashell config show` prints them (like `ssh -G`).
    pub fn describe(&self) -> String {
        let line =
            |key: &str, value: String, origin: &Origin| format!("{key} = {value}  # {origin}\n");
        let mut out = line("address", self.address.value.clone(), &self.address.origin);
        out += &line("port", self.port.value.to_string(), &self.port.origin);
        out += &match &self.user {
            Some(user) => line("user", user.value.clone(), &user.origin),
            None => line(
                "user",
                "none (the server's own account)".into(),
                &Origin::Default,
            ),
        };
        out += &line(
            "identity",
            self.identity.value.display().to_string(),
            &self.identity.origin,
        );
        out += &match &self.certificate {
            Some(cert) => line(
                "certificate",
                cert.value.display().to_string(),
                &cert.origin,
            ),
            None => line(
                "certificate",
                format!(
                    "{}-cert.pub, if there is one",
                    self.identity.value.display()
                ),
                &Origin::Default,
            ),
        };
        out += &match &self.fingerprint {
            Some(pin) => line("fingerprint", pin.value.clone(), &pin.origin),
            None => line(
                "fingerprint",
                "none (known_hosts decides)".into(),
                &Origin::Default,
            ),
        };
        out += &line(
            "known_hosts",
            self.known_hosts.value.display().to_string(),
            &self.known_hosts.origin,
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: &str = "SHA256:NtQ+o5uZyz+UITEeRXdW+Zc6dlCVMp+jmcmVPVw/HNA";

    fn config() -> ClientConfig {
        let text = format!(
            "[defaults]\nport = 7100\nknown_hosts = \"/k/known\"\n\n\
             [host.web1]\naddress = \"10.0.0.5\"\nport = 7200\nidentity = \"/k/ops\"\nfingerprint = \"{FP}\"\n"
        );
        ClientConfig::parse(&text, Path::new("/c"), None).unwrap()
    }

    fn typed(dest: &str) -> Typed {
        Typed {
            dest: dest.into(),
            ..Typed::default()
        }
    }

    #[test]
    fn flags_win_over_the_host_which_wins_over_the_defaults() {
        let from_file = Target::resolve(&typed("web1"), &config()).unwrap();
        assert_eq!(from_file.destination().host_port(), "10.0.0.5:7200");
        assert_eq!(
            from_file.connect_options().identity,
            Some(PathBuf::from("/k/ops"))
        );
        assert_eq!(
            from_file.connect_options().host_fingerprint.as_deref(),
            Some(FP)
        );
        assert_eq!(from_file.known_hosts.value, PathBuf::from("/k/known"));
        assert!(matches!(from_file.known_hosts.origin, Origin::Defaults(_)));

        let flags = Typed {
            dest: "web1".into(),
            port: Some(9),
            user: None,
            identity: Some("/mine".into()),
            known_hosts: Some("/kh".into()),
            host_fingerprint: Some("SHA256:x".into()),
            accept_new: true,
            passphrase_file: None,
            quiet: false,
        };
        let flagged = Target::resolve(&flags, &config()).unwrap();
        assert_eq!(flagged.destination().host_port(), "10.0.0.5:9");
        let opts = flagged.connect_options();
        assert_eq!(opts.identity, Some(PathBuf::from("/mine")));
        assert_eq!(opts.known_hosts, Some(PathBuf::from("/kh")));
        assert_eq!(opts.host_fingerprint.as_deref(), Some("SHA256:x"));
        assert!(opts.accept_new);
        // A port in DEST is typed too.
        let in_dest = Target::resolve(&typed("web1:2200"), &config()).unwrap();
        assert_eq!(in_dest.destination().host_port(), "10.0.0.5:2200");
        assert_eq!(in_dest.port.origin, Origin::CommandLine);
    }

    #[test]
    fn the_user_comes_from_l_then_dest_then_the_file() {
        let config = ClientConfig::parse(
            "[defaults]\nuser = \"ops\"\n[host.db]\naddress = \"10.0.0.9\"\nuser = \"pg\"\n",
            Path::new("/c"),
            None,
        )
        .unwrap();
        let user = |dest: &str, l: Option<&str>| {
            let typed = Typed {
                dest: dest.into(),
                user: l.map(str::to_owned),
                ..Typed::default()
            };
            Target::resolve(&typed, &config).map(|t| {
                let user = t.user.map(|u| (u.value, u.origin.to_string()));
                (t.address.value, user)
            })
        };
        let of = |addr: &str, user: &str, origin: &str| {
            (addr.to_owned(), Some((user.to_owned(), origin.to_owned())))
        };
        assert_eq!(
            user("db", None).unwrap(),
            of("10.0.0.9", "pg", "/c:5 [host.db]")
        );
        assert_eq!(
            user("box", None).unwrap(),
            of("box", "ops", "/c:2 [defaults]")
        );
        assert_eq!(
            user("root@db", None).unwrap(),
            of("10.0.0.9", "root", "command line")
        );
        assert_eq!(
            user("root@db:99", Some("me")).unwrap(),
            of("10.0.0.9", "me", "command line")
        );
        assert_eq!(
            user("me@[::1]:8", None).unwrap(),
            of("::1", "me", "command line")
        );
        let plain = Target::resolve(&typed("box"), &ClientConfig::default()).unwrap();
        assert_eq!(plain.connect_options().account, None);
        for bad in ["@db", "a b@db", "-x@db"] {
            let err = user(bad, None).unwrap_err().to_string();
            assert!(err.contains("user name"), "{bad}: {err}");
        }
        let err = user("db", Some(&"x".repeat(65))).unwrap_err().to_string();
        assert_eq!(err, "a user name is at most 64 bytes");
    }

    #[test]
    fn an_unknown_name_is_an_address_with_the_defaults() {
        let other = Target::resolve(&typed("[::1]"), &config()).unwrap();
        assert_eq!(other.destination().host_port(), "[::1]:7100");
        assert_eq!(other.address.origin, Origin::CommandLine);
        assert_eq!(other.fingerprint, None);
        assert!(Target::resolve(&typed("a:b:c"), &config()).is_err());
    }

    #[test]
    fn describe_names_each_origin() {
        let text = Target::resolve(&typed("web1"), &config())
            .unwrap()
            .describe();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 7, "{text}");
        assert_eq!(lines[0], "address = 10.0.0.5  # /c:6 [host.web1]");
        assert_eq!(lines[1], "port = 7200  # /c:7 [host.web1]");
        assert_eq!(
            lines[2],
            "user = none (the server's own account)  # default"
        );
        assert_eq!(
            lines[4],
            "certificate = /k/ops-cert.pub, if there is one  # default"
        );
        assert_eq!(lines[6], "known_hosts = /k/known  # /c:3 [defaults]");
        let plain = Target::resolve(&typed("box"), &ClientConfig::default())
            .unwrap()
            .describe();
        assert!(
            plain.starts_with("address = box  # command line\nport = 7022  # default\n"),
            "{plain}"
        );
        assert!(
            plain.contains("fingerprint = none (known_hosts decides)  # default\n"),
            "{plain}"
        );
    }
}
