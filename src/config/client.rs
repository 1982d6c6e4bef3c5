//! The client's TOML file, `$SEASHELL_HOME/config` (or the one `-F` names): host aliases
//! (`[host.NAME]`) with an address, port, user, identity, pinned fingerprint and known_hosts file,
//! `[defaults]` for any host, and `[group]` lists of hosts. The file is parsed totally:
//! unknown keys and bad values are errors naming the file, the line and the key, like the
//! server's. For one name it gives the settings the file holds, each with where it came from
//! (for `seashell config show`). It only reads the file; the client applies the settings
//! under its command-line flags, which win.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, Place, line_of, parse_toml};
use crate::proto::message::MAX_ACCOUNT;

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    defaults: RawEntry,
    #[serde(default)]
    host: BTreeMap<String, RawEntry>,
    #[serde(default)]
    group: BTreeMap<String, Spanned<Vec<Spanned<String>>>>,
}

/// One `[host.NAME]` or `[defaults]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    address: Option<Spanned<String>>,
    port: Option<Spanned<u64>>,
    user: Option<Spanned<String>>,
    identity: Option<Spanned<String>>,
    certificate: Option<Spanned<String>>,
    fingerprint: Option<Spanned<String>>,
    known_hosts: Option<Spanned<String>>,
}

/// Where a setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A flag or the destination as typed.
    CommandLine,
    /// A `[host.NAME]` table.
    Host {
        /// The line of the value.
        place: Place,
        /// The alias.
        name: String,
    },
    /// The `[defaults]` table.
    Defaults(Place),
    /// seashell's own default.
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CommandLine => f.write_str("command line"),
            Self::Host { place, name } => write!(f, "{place} [host.{name}]"),
            Self::Defaults(place) => write!(f, "{place} [defaults]"),
            Self::Default => f.write_str("default"),
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting<T> {
    /// The value.
    pub value: T,
    /// Where it was set.
    pub origin: Origin,
}

/// What the file says about one host: its `[host.NAME]` entry over `[defaults]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostSettings {
    /// Name or IP address to connect to.
    pub address: Option<Setting<String>>,
    /// TCP port.
    pub port: Option<Setting<u16>>,
    /// The account to ask the server for (like `user@host`).
    pub user: Option<Setting<String>>,
    /// Identity (private key).
    pub identity: Option<Setting<PathBuf>>,
    /// The identity's certificate (else `IDENTITY-cert.pub`, if there is one).
    pub certificate: Option<Setting<PathBuf>>,
    /// Pinned host key fingerprint (`SHA256:…`).
    pub fingerprint: Option<Setting<String>>,
    /// known_hosts file.
    pub known_hosts: Option<Setting<PathBuf>>,
}

/// One checked table, its values placed.
#[derive(Debug, Clone, Default)]
struct Entry {
    address: Option<(String, Place)>,
    port: Option<(u16, Place)>,
    user: Option<(String, Place)>,
    identity: Option<(PathBuf, Place)>,
    certificate: Option<(PathBuf, Place)>,
    fingerprint: Option<(String, Place)>,
    known_hosts: Option<(PathBuf, Place)>,
}

/// A parsed and checked client configuration.
#[derive(Debug, Clone, Default)]
pub struct ClientConfig {
    defaults: Entry,
    hosts: BTreeMap<String, Entry>,
    groups: BTreeMap<String, Vec<String>>,
}

impl ClientConfig {
    /// Reads `path`: the file `-F` names (it must exist), or with `explicit` false the
    /// default file, which may be missing (then there is no configuration).
    pub fn load(path: &Path, explicit: bool) -> Result<Self, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, path, std::env::var_os("HOME").map(PathBuf::from)),
            Err(err) if !explicit && err.kind() == std::io::ErrorKind::NotFound => {
                Ok(Self::default())
            }
            Err(source) => Err(ConfigError::Read {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Parses `text`, the contents of `path`. `~/` in a path is `home`; another relative
    /// path is relative to the file's directory. Any text gives a configuration or an error
    /// naming its line, never a panic.
    pub fn parse(text: &str, path: &Path, home: Option<PathBuf>) -> Result<Self, ConfigError> {
        let (raw, line_starts) = parse_toml::<Raw>(text, path)?;
        let at = Checker {
            path,
            line_starts: &line_starts,
            home,
            base: path.parent().map(Path::to_owned).unwrap_or_default(),
        };
        let mut groups = BTreeMap::new();
        for (name, members) in raw.group {
            at.group(&name, &members)?;
            let members = members.into_inner().into_iter().map(Spanned::into_inner);
            groups.insert(name, members.collect());
        }
        let defaults = at.entry(raw.defaults)?;
        let hosts = raw
            .host
            .into_iter()
            .map(|(name, entry)| Ok((name, at.entry(entry)?)))
            .collect::<Result<_, ConfigError>>()?;
        Ok(Self {
            defaults,
            hosts,
            groups,
        })
    }

    /// The hosts of `[group]`'s `name` (aliases or `host:port`), in the file's order.
    pub fn group(&self, name: &str) -> Option<&[String]> {
        self.groups.get(name).map(Vec::as_slice)
    }

    /// The settings for `name` (an alias, or an address typed as is): each from its
    /// `[host.NAME]` entry if set there, else from `[defaults]`.
    pub fn for_host(&self, name: &str) -> HostSettings {
        let host = self.hosts.get(name);
        HostSettings {
            address: pick_from(name, host, &self.defaults, |e| e.address.clone()),
            fingerprint: pick_from(name, host, &self.defaults, |e| e.fingerprint.clone()),
            port: pick_from(name, host, &self.defaults, |e| e.port.clone()),
            user: pick_from(name, host, &self.defaults, |e| e.user.clone()),
            identity: pick_from(name, host, &self.defaults, |e| e.identity.clone()),
            certificate: pick_from(name, host, &self.defaults, |e| e.certificate.clone()),
            known_hosts: pick_from(name, host, &self.defaults, |e| e.known_hosts.clone()),
        }
    }
}

/// What is wrong with `name` as an account to ask a server for (`user@host`, `-l`, `user =`),
/// if anything: empty, too long for the protocol, or holding a character no account name has
/// (whitespace, controls, `@`, `:`, `/`) or starting with `-`.
pub fn account_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("an empty user name".into());
    }
    if name.len() > MAX_ACCOUNT {
        return Some(format!("a user name is at most {MAX_ACCOUNT} bytes"));
    }
    let odd = |c: char| c.is_whitespace() || c.is_control() || "@:/".contains(c);
    if name.starts_with('-') || name.chars().any(odd) {
        return Some(format!(
            "`{}` is not a user name",
            crate::shown::shown(name)
        ));
    }
    None
}

/// `of(host)` if set, else `of(defaults)`, with its origin.
fn pick_from<T>(
    name: &str,
    host: Option<&Entry>,
    defaults: &Entry,
    of: fn(&Entry) -> Option<(T, Place)>,
) -> Option<Setting<T>> {
    if let Some((value, place)) = host.and_then(of) {
        return Some(Setting {
            value,
            origin: Origin::Host {
                place,
                name: name.to_owned(),
            },
        });
    }
    of(defaults).map(|(value, place)| Setting {
        value,
        origin: Origin::Defaults(place),
    })
}

/// Checks values and places them in the file.
struct Checker<'a> {
    path: &'a Path,
    line_starts: &'a [usize],
    home: Option<PathBuf>,
    base: PathBuf,
}

impl Checker<'_> {
    fn place<T>(&self, value: &Spanned<T>) -> Place {
        Place {
            path: self.path.to_owned(),
            line: Some(line_of(self.line_starts, value.span().start)),
        }
    }

    fn bad<T>(
        &self,
        key: &'static str,
        value: &Spanned<T>,
        reason: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Value {
            place: self.place(value),
            key,
            reason: reason.into(),
        }
    }

    fn entry(&self, raw: RawEntry) -> Result<Entry, ConfigError> {
        Ok(Entry {
            address: raw.address.map(|a| self.address(a)).transpose()?,
            port: raw.port.map(|p| self.port(p)).transpose()?,
            user: raw.user.map(|u| self.user(u)).transpose()?,
            identity: raw
                .identity
                .map(|p| self.path_value("identity", p))
                .transpose()?,
            certificate: raw
                .certificate
                .map(|p| self.path_value("certificate", p))
                .transpose()?,
            fingerprint: raw.fingerprint.map(|f| self.fingerprint(f)).transpose()?,
            known_hosts: raw
                .known_hosts
                .map(|p| self.path_value("known_hosts", p))
                .transpose()?,
        })
    }

    fn address(&self, value: Spanned<String>) -> Result<(String, Place), ConfigError> {
        let text = value.get_ref();
        if text.is_empty() || text.starts_with('-') || text.chars().any(char::is_whitespace) {
            return Err(self.bad(
                "address",
                &value,
                format!("`{text}` is not a host name or an IP address"),
            ));
        }
        if text.starts_with('[') {
            return Err(self.bad(
                "address",
                &value,
                "write an IPv6 address without brackets; the port goes in `port`",
            ));
        }
        if text.contains(':') && text.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(self.bad(
                "address",
                &value,
                format!("`{text}` is not a host name or an IP address (the port goes in `port`)"),
            ));
        }
        Ok((text.clone(), self.place(&value)))
    }

    fn port(&self, value: Spanned<u64>) -> Result<(u16, Place), ConfigError> {
        match u16::try_from(*value.get_ref()) {
            Ok(port) if port != 0 => Ok((port, self.place(&value))),
            _ => Err(self.bad(
                "port",
                &value,
                format!("{} is not a port (1 to 65535)", value.get_ref()),
            )),
        }
    }

    fn user(&self, value: Spanned<String>) -> Result<(String, Place), ConfigError> {
        match account_problem(value.get_ref()) {
            Some(problem) => Err(self.bad("user", &value, problem)),
            None => Ok((value.get_ref().clone(), self.place(&value))),
        }
    }

    fn fingerprint(&self, value: Spanned<String>) -> Result<(String, Place), ConfigError> {
        let text = value.get_ref();
        let well_formed = text.strip_prefix("SHA256:").is_some_and(|b64| {
            b64.len() == 43
                && b64
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
        });
        if !well_formed {
            return Err(self.bad("fingerprint", &value, format!("`{text}` is not a SHA256:… fingerprint (`seashell fingerprint HOST.pub` prints one)")));
        }
        Ok((text.clone(), self.place(&value)))
    }

    fn path_value(
        &self,
        key: &'static str,
        value: Spanned<String>,
    ) -> Result<(PathBuf, Place), ConfigError> {
        let text = value.get_ref();
        if text.is_empty() {
            return Err(self.bad(key, &value, "an empty path"));
        }
        let path = match text.strip_prefix("~/") {
            Some(rest) => match &self.home {
                Some(home) => home.join(rest),
                None => return Err(self.bad(key, &value, "`~/` needs $HOME, which is not set")),
            },
            None => self.base.join(text),
        };
        Ok((path, self.place(&value)))
    }

    fn group(
        &self,
        name: &str,
        members: &Spanned<Vec<Spanned<String>>>,
    ) -> Result<(), ConfigError> {
        if members.get_ref().is_empty() {
            return Err(self.bad("group", members, format!("group `{name}` lists no host")));
        }
        for member in members.get_ref() {
            let text = member.get_ref();
            if text.is_empty() || text.starts_with('-') || text.chars().any(char::is_whitespace) {
                return Err(self.bad(
                    "group",
                    member,
                    format!("`{text}` in group `{name}` is not a host"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: &str = "SHA256:NtQ+o5uZyz+UITEeRXdW+Zc6dlCVMp+jmcmVPVw/HNA";

    fn parse(text: &str) -> Result<ClientConfig, ConfigError> {
        ClientConfig::parse(
            text,
            Path::new("/etc/c/config"),
            Some(PathBuf::from("/home/ann")),
        )
    }

    fn error(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn a_host_entry_wins_over_the_defaults_and_says_where_each_came_from() {
        let text = format!(
            "[defaults]\nidentity = \"~/.seashell/id_rsa\"\nport = 7100\n\n\
             [host.web1]\naddress = \"10.0.0.5\"\nidentity = \"keys/ops_rsa\"\nfingerprint = \"{FP}\"\n\n\
             [group]\nweb = [\"web1\", \"web2\", \"10.0.0.7:7100\"]\n"
        );
        let config = parse(&text).unwrap();
        let web1 = config.for_host("web1");
        let at = |line| Place {
            path: PathBuf::from("/etc/c/config"),
            line: Some(line),
        };
        let host = |line| Origin::Host {
            place: at(line),
            name: "web1".into(),
        };
        assert_eq!(
            web1.address,
            Some(Setting {
                value: "10.0.0.5".into(),
                origin: host(6)
            })
        );
        assert_eq!(
            web1.identity,
            Some(Setting {
                value: PathBuf::from("/etc/c/keys/ops_rsa"),
                origin: host(7)
            })
        );
        assert_eq!(
            web1.port,
            Some(Setting {
                value: 7100,
                origin: Origin::Defaults(at(3))
            })
        );
        assert_eq!(web1.fingerprint.map(|f| f.value).as_deref(), Some(FP));
        assert_eq!(web1.known_hosts, None);
        // A name not in the file gets the defaults only.
        let other = config.for_host("10.0.0.9");
        assert_eq!(other.address, None);
        assert_eq!(
            other.identity.map(|s| s.value),
            Some(PathBuf::from("/home/ann/.seashell/id_rsa"))
        );
        assert_eq!(host(6).to_string(), "/etc/c/config:6 [host.web1]");
        assert_eq!(
            config.group("web"),
            Some(&["web1".to_owned(), "web2".into(), "10.0.0.7:7100".into()][..])
        );
        assert_eq!(config.group("db"), None);
    }

    #[test]
    fn an_empty_or_missing_file_is_no_configuration() {
        assert_eq!(parse("").unwrap().for_host("x"), HostSettings::default());
        let missing = Path::new("/nonexistent/seashell/config");
        assert!(ClientConfig::load(missing, false).is_ok());
        let err = ClientConfig::load(missing, true).unwrap_err().to_string();
        assert!(
            err.contains("cannot read /nonexistent/seashell/config"),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_file_line_and_key() {
        let cases: &[(&str, &str)] = &[
            (
                "[host.a]\nadress = \"x\"\n",
                "/etc/c/config:2: adress = \"x\": unknown field `adress`",
            ),
            ("[hosts.a]\n", "/etc/c/config:1"),
            (
                "[host.a]\nport = 0\n",
                "/etc/c/config:2: port: 0 is not a port (1 to 65535)",
            ),
            (
                "[host.a]\nport = 70000\n",
                "/etc/c/config:2: port: 70000 is not a port",
            ),
            ("[host.a]\nport = -1\n", "/etc/c/config:2"),
            ("[host.a]\nport = \"22\"\n", "/etc/c/config:2"),
            (
                "[host.a]\naddress = \"10.0.0.5:22\"\n",
                "/etc/c/config:2: address: `10.0.0.5:22` is not a host name",
            ),
            (
                "[host.a]\naddress = \"[::1]\"\n",
                "/etc/c/config:2: address: write an IPv6 address without brackets",
            ),
            ("[host.a]\naddress = \"\"\n", "/etc/c/config:2: address"),
            (
                "[defaults]\nfingerprint = \"MD5:ab\"\n",
                "/etc/c/config:2: fingerprint: `MD5:ab` is not a SHA256",
            ),
            (
                "[defaults]\nidentity = \"\"\n",
                "/etc/c/config:2: identity: an empty path",
            ),
            (
                "[group]\nweb = []\n",
                "/etc/c/config:2: group: group `web` lists no host",
            ),
            (
                "[group]\nweb = [\"a\", \"-x\"]\n",
                "/etc/c/config:2: group: `-x` in group `web` is not a host",
            ),
            ("[group]\nweb = \"a\"\n", "/etc/c/config:2"),
        ];
        for (text, want) in cases {
            let got = error(text);
            assert!(got.starts_with(want), "{text:?}: {got}");
        }
    }

    #[test]
    fn ipv6_addresses_and_names_are_addresses() {
        for address in ["::1", "fe80::1", "box.lan", "10.0.0.5"] {
            let config = parse(&format!("[host.a]\naddress = \"{address}\"\n")).unwrap();
            assert_eq!(config.for_host("a").address.unwrap().value, address);
        }
    }

    #[test]
    fn tilde_without_home_is_an_error() {
        let err = ClientConfig::parse("[defaults]\nidentity = \"~/k\"\n", Path::new("c"), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs $HOME"), "{err}");
    }
}
