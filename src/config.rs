//! The server's TOML configuration: the raw file (every key optional, unknown keys refused)
//! and how it applies over [`ServerSettings`]' defaults. Command-line flags are applied after
//! the file, so they win. A bad key or value is an error naming it and its line.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::server::ServerSettings;

/// The file as written. Durations are whole seconds (milliseconds where the name says so).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// `listen = "0.0.0.0:7022"`.
    pub listen: Option<SocketAddr>,
    /// `host_key = "/etc/seashell/host_rsa"`.
    pub host_key: Option<PathBuf>,
    /// `authorized_keys = "/etc/seashell/authorized_keys"`.
    pub authorized_keys: Option<PathBuf>,
    /// Handshake deadline, seconds (default 10).
    pub handshake_timeout_secs: Option<u64>,
    /// Idle session timeout, seconds; 0 = never (the default).
    pub idle_timeout_secs: Option<u64>,
    /// Keepalive ping interval, seconds (default 30); a client silent for 3 intervals is gone.
    pub keepalive_secs: Option<u64>,
    /// Concurrent sessions (default 100).
    pub max_sessions: Option<usize>,
    /// Concurrent unauthenticated connections (default 32).
    pub max_unauthenticated: Option<usize>,
    /// Connections that may wait for a handshake slot beyond those (default 128).
    pub max_waiting: Option<usize>,
    /// Delay before answering a failed authentication, milliseconds (default 1000).
    pub auth_failure_delay_ms: Option<u64>,
    /// Grace period for running sessions after SIGTERM, seconds (default 10).
    pub shutdown_grace_secs: Option<u64>,
    /// The audit log (off unless set).
    pub audit_log: Option<PathBuf>,
    /// Rotate the audit log at this size, bytes (default 64 MiB; at least 1024).
    pub audit_max_bytes: Option<u64>,
    /// Signed checkpoint after this many events (default 100).
    pub audit_checkpoint_every: Option<u64>,
    /// Also send each audit event to syslog: `"unix:/dev/log"` or `"udp:HOST:514"`.
    pub syslog: Option<String>,
    /// The shell console lines and `exec` run in (default: the server user's passwd entry's,
    /// unless that is a nologin one; else /bin/sh).
    pub shell: Option<PathBuf>,
    /// Named commands a restricted key may run with `command="NAME"`:
    /// `[commands] restart-web = ["systemctl", "restart", "nginx"]`.
    #[serde(default)]
    pub commands: BTreeMap<String, Vec<String>>,
}

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Bad TOML, an unknown key or a bad value (the message names the key and its line).
    #[error("{}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A value that parses but makes no sense.
    #[error("{}: `{key}`: {reason}", path.display())]
    Value {
        /// The file.
        path: PathBuf,
        /// The key.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl ConfigFile {
    /// Reads and parses the file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|err| ConfigError::Invalid {
            path: path.to_owned(),
            message: err.to_string().trim_end().replace('\n', " "),
        })
    }

    /// Applies every key present over `settings`.
    pub fn apply(self, path: &Path, settings: &mut ServerSettings) -> Result<(), ConfigError> {
        let positive = |key: &'static str, value: u64| {
            if value == 0 {
                Err(ConfigError::Value {
                    path: path.to_owned(),
                    key,
                    reason: "must be at least 1".to_owned(),
                })
            } else {
                Ok(value)
            }
        };
        if let Some(v) = self.listen {
            settings.listen = v;
        }
        if let Some(v) = self.host_key {
            settings.host_key = v;
        }
        if let Some(v) = self.authorized_keys {
            settings.authorized_keys = v;
        }
        if let Some(v) = self.handshake_timeout_secs {
            settings.handshake_timeout =
                Duration::from_secs(positive("handshake_timeout_secs", v)?);
        }
        if let Some(v) = self.idle_timeout_secs {
            settings.session.idle_timeout = (v > 0).then(|| Duration::from_secs(v));
        }
        if let Some(v) = self.keepalive_secs {
            settings.session.keepalive = Duration::from_secs(positive("keepalive_secs", v)?);
        }
        if let Some(v) = self.max_sessions {
            positive("max_sessions", u64::try_from(v).unwrap_or(u64::MAX))?;
            settings.max_sessions = v;
        }
        if let Some(v) = self.max_unauthenticated {
            positive("max_unauthenticated", u64::try_from(v).unwrap_or(u64::MAX))?;
            settings.max_unauthenticated = v;
        }
        if let Some(v) = self.max_waiting {
            settings.max_waiting = v;
        }
        if let Some(v) = self.auth_failure_delay_ms {
            settings.auth_failure_delay = Duration::from_millis(v);
        }
        if let Some(v) = self.shutdown_grace_secs {
            settings.shutdown_grace = Duration::from_secs(v);
        }
        if let Some(v) = self.audit_log {
            settings.audit_log = Some(v);
        }
        if let Some(v) = self.shell {
            if !v.is_absolute() {
                return Err(ConfigError::Value {
                    path: path.to_owned(),
                    key: "shell",
                    reason: "must be an absolute path, like \"/bin/bash\"".to_owned(),
                });
            }
            settings.shell = Some(v);
        }
        if let Some(v) = self.audit_max_bytes {
            if v < 1024 {
                return Err(ConfigError::Value {
                    path: path.to_owned(),
                    key: "audit_max_bytes",
                    reason: "must be at least 1024".to_owned(),
                });
            }
            settings.audit.max_bytes = v;
        }
        if let Some(v) = self.audit_checkpoint_every {
            settings.audit.checkpoint_every = positive("audit_checkpoint_every", v)?;
        }
        if let Some(v) = self.syslog {
            settings.audit.syslog =
                Some(
                    v.parse()
                        .map_err(|err: crate::audit::AuditError| ConfigError::Value {
                            path: path.to_owned(),
                            key: "syslog",
                            reason: err.to_string(),
                        })?,
                );
        }
        if let Some((name, _)) = self.commands.iter().find(|(_, argv)| argv.is_empty()) {
            return Err(ConfigError::Value {
                path: path.to_owned(),
                key: "commands",
                reason: format!("`{name}` has an empty argv"),
            });
        }
        settings.commands = self.commands;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ServerSettings {
        ServerSettings::with_defaults_in(Path::new("/tmp/seashell-home"))
    }

    #[test]
    fn the_annotated_example_is_valid() {
        let text = include_str!("../docs/seashell.toml");
        let file: ConfigFile = toml::from_str(text).unwrap();
        let mut s = settings();
        file.apply(Path::new("docs/seashell.toml"), &mut s).unwrap();
        assert_eq!(s.session.idle_timeout, None);
        assert!(s.audit_log.is_some());
        assert!(s.commands.contains_key("restart-web"));
    }

    #[test]
    fn keys_apply_over_defaults() {
        let file: ConfigFile = toml::from_str(
            "listen = \"127.0.0.1:9\"\nidle_timeout_secs = 900\nmax_sessions = 5\nauth_failure_delay_ms = 0\n",
        )
        .unwrap();
        let mut s = settings();
        file.apply(Path::new("x.toml"), &mut s).unwrap();
        assert_eq!(s.listen, "127.0.0.1:9".parse().unwrap());
        assert_eq!(s.session.idle_timeout, Some(Duration::from_secs(900)));
        assert_eq!(s.max_sessions, 5);
        assert_eq!(s.auth_failure_delay, Duration::ZERO);
        assert_eq!(s.handshake_timeout, Duration::from_secs(10));
    }

    #[test]
    fn audit_keys_and_named_commands() {
        let file: ConfigFile = toml::from_str(
            "audit_log = \"/var/log/a.jsonl\"\naudit_max_bytes = 4096\nsyslog = \"udp:127.0.0.1:514\"\n\n[commands]\nrestart-web = [\"systemctl\", \"restart\", \"nginx\"]\n",
        )
        .unwrap();
        let mut s = settings();
        file.apply(Path::new("x.toml"), &mut s).unwrap();
        assert_eq!(s.audit_log.as_deref(), Some(Path::new("/var/log/a.jsonl")));
        assert_eq!(s.audit.max_bytes, 4096);
        assert!(s.audit.syslog.is_some());
        assert_eq!(s.commands["restart-web"], ["systemctl", "restart", "nginx"]);
        let bad: ConfigFile = toml::from_str("syslog = \"carrier-pigeon\"").unwrap();
        let err = bad.apply(Path::new("x.toml"), &mut settings()).unwrap_err();
        assert!(err.to_string().contains("syslog"), "{err}");
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let err = toml::from_str::<ConfigFile>("max_sessions = 3\nmax_sesions = 4\n").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("max_sesions"), "{text}");
        assert!(text.contains("line 2"), "{text}");
    }

    #[test]
    fn bad_value_is_named_with_its_line() {
        let err = toml::from_str::<ConfigFile>("\n\nlisten = \"nowhere\"\n").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("line 3"), "{text}");
        let zero: ConfigFile = toml::from_str("keepalive_secs = 0").unwrap();
        let err = zero
            .apply(Path::new("x.toml"), &mut settings())
            .unwrap_err();
        assert!(err.to_string().contains("keepalive_secs"));
    }
}
