//! The server's TOML configuration: the raw file (every key optional, unknown keys refused,
//! every number checked against its range) and how it applies over [`ServerSettings`]'
//! defaults. Command-line flags are applied after the file, so they win. Every error names
//! the file and the line, and the key with its allowed range: `x.toml:3: keepalive_secs =
//! 18446744073709551615 is out of range (1 to 86400 seconds)`. It reads only the file it is
//! given and never starts anything: a value out of range never reaches the server. The
//! client's file (host aliases) is [`client`]'s, with the same parsing and the same errors.

pub mod client;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use toml::Spanned;

use crate::server::ServerSettings;

/// The allowed values of an integer key, and what they count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// The smallest value allowed.
    pub min: u64,
    /// The largest value allowed.
    pub max: u64,
    /// What the value counts ("seconds", "bytes"...).
    pub unit: &'static str,
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} to {} {}", self.min, self.max, self.unit)
    }
}

const fn range(min: u64, max: u64, unit: &'static str) -> Range {
    Range { min, max, unit }
}

/// `handshake_timeout_secs`: long enough for a slow client, short enough to free the slot.
pub const HANDSHAKE_TIMEOUT_SECS: Range = range(1, 600, "seconds");
/// `hello_timeout_secs` (and never more than the handshake timeout).
pub const HELLO_TIMEOUT_SECS: Range = range(1, 60, "seconds");
/// `idle_timeout_secs`: 0 = never, at most a year.
pub const IDLE_TIMEOUT_SECS: Range = range(0, 31_536_000, "seconds");
/// `keepalive_secs`: at most a day.
pub const KEEPALIVE_SECS: Range = range(1, 86_400, "seconds");
/// `max_sessions`.
pub const MAX_SESSIONS: Range = range(1, 65_536, "sessions");
/// `max_unauthenticated`.
pub const MAX_UNAUTHENTICATED: Range = range(1, 4_096, "connections");
/// `max_waiting`.
pub const MAX_WAITING: Range = range(0, 65_536, "connections");
/// `auth_failure_delay_ms`: at most a minute.
pub const AUTH_FAILURE_DELAY_MS: Range = range(0, 60_000, "milliseconds");
/// `auth_penalty_secs`: 0 turns per-source penalties off.
pub const AUTH_PENALTY_SECS: Range = range(0, 3_600, "seconds");
/// `shutdown_grace_secs`: at most an hour.
pub const SHUTDOWN_GRACE_SECS: Range = range(0, 3_600, "seconds");
/// `audit_max_bytes` (and `serve --audit-max-bytes`): 1 KiB to 1 TiB.
pub const AUDIT_MAX_BYTES: Range = range(1024, 1 << 40, "bytes");
/// `audit_checkpoint_every`.
pub const AUDIT_CHECKPOINT_EVERY: Range = range(1, 1_000_000, "events");

/// A configuration file, parsed: its keys, and where each line starts (for the errors).
#[derive(Debug)]
pub struct ConfigFile {
    keys: Keys,
    /// The byte offset of each line's start; the first is 0.
    line_starts: Vec<usize>,
}

/// The file as written. Durations are whole seconds (milliseconds where the name says so).
/// Values that [`ConfigFile::apply`] checks keep their place in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    /// `listen = "0.0.0.0:7022"`.
    listen: Option<SocketAddr>,
    /// `host_key = "/etc/seashell/host_rsa"`.
    host_key: Option<PathBuf>,
    /// `authorized_keys = "/etc/seashell/authorized_keys"`.
    authorized_keys: Option<PathBuf>,
    /// `revoked_keys = "/etc/seashell/revoked_keys"`: keys and certificates refused.
    revoked_keys: Option<PathBuf>,
    /// `host_cert = "/etc/seashell/host_rsa-cert.pub"`.
    host_cert: Option<PathBuf>,
    /// Handshake deadline, seconds (default 10).
    handshake_timeout_secs: Option<Spanned<u64>>,
    /// Deadline for the first handshake message once a connection has a slot, seconds
    /// (default 2, or the handshake deadline if that is shorter).
    hello_timeout_secs: Option<Spanned<u64>>,
    /// Idle session timeout, seconds; 0 = never (the default).
    idle_timeout_secs: Option<Spanned<u64>>,
    /// Keepalive ping interval, seconds (default 30); a client silent for 3 intervals is gone.
    keepalive_secs: Option<Spanned<u64>>,
    /// Concurrent sessions (default 100).
    max_sessions: Option<Spanned<u64>>,
    /// Concurrent unauthenticated connections (default 32).
    max_unauthenticated: Option<Spanned<u64>>,
    /// Connections that may wait for a handshake slot beyond those (default 128).
    max_waiting: Option<Spanned<u64>>,
    /// Delay before answering a failed authentication, milliseconds (default 1000).
    auth_failure_delay_ms: Option<Spanned<u64>>,
    /// Penalty a source earns per failed authentication, seconds (default 5; 0 = off).
    auth_penalty_secs: Option<Spanned<u64>>,
    /// Grace period for running sessions after SIGTERM, seconds (default 10).
    shutdown_grace_secs: Option<Spanned<u64>>,
    /// The audit log (off unless set).
    audit_log: Option<PathBuf>,
    /// Rotate the audit log at this size, bytes (default 64 MiB).
    audit_max_bytes: Option<Spanned<u64>>,
    /// Signed checkpoint after this many events (default 100).
    audit_checkpoint_every: Option<Spanned<u64>>,
    /// Also send each audit event to syslog: `"unix:/dev/log"` or `"udp:HOST:514"`.
    syslog: Option<Spanned<String>>,
    /// The shell console lines and `exec` run in (default: the server user's passwd entry's,
    /// unless that is a nologin one; else /bin/sh).
    shell: Option<Spanned<PathBuf>>,
    /// Named commands a restricted key may run with `command="NAME"`:
    /// `[commands] restart-web = ["systemctl", "restart", "nginx"]`.
    #[serde(default)]
    commands: BTreeMap<String, Spanned<Vec<String>>>,
}

/// A place in a configuration file: `x.toml:3`, or `x.toml` when no line is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The file.
    pub path: PathBuf,
    /// The 1-based line, when known.
    pub line: Option<usize>,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}", self.path.display()),
            None => write!(f, "{}", self.path.display()),
        }
    }
}

/// Why the configuration could not be used. Each message starts with `FILE:LINE:`.
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
    /// Bad TOML, an unknown key or a value of the wrong type.
    #[error("{place}: {message}")]
    Invalid {
        /// Where.
        place: Place,
        /// The line as written, then the parser's message.
        message: String,
    },
    /// A number outside its key's range.
    #[error("{place}: {key} = {value} is out of range ({range})")]
    OutOfRange {
        /// Where.
        place: Place,
        /// The key.
        key: &'static str,
        /// The value written.
        value: u64,
        /// The values allowed.
        range: Range,
    },
    /// A value that parses but makes no sense.
    #[error("{place}: {key}: {reason}")]
    Value {
        /// Where.
        place: Place,
        /// The key.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// At most this many characters of a line are quoted in an error.
const QUOTED_LINE_CHARS: usize = 80;

impl ConfigFile {
    /// Reads and parses the file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses `text`, the contents of `path` (named in the errors). Any text gives a
    /// configuration or an error, never a panic; values are range-checked by
    /// [`ConfigFile::apply`].
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let (keys, line_starts) = parse_toml(text, path)?;
        Ok(Self { keys, line_starts })
    }

    /// Applies every key present over `settings`, each checked against its range, then
    /// checks the keys that bound each other (`hello_timeout_secs` against
    /// `handshake_timeout_secs`).
    pub fn apply(self, path: &Path, settings: &mut ServerSettings) -> Result<(), ConfigError> {
        let at = Locator {
            path,
            line_starts: &self.line_starts,
        };
        let keys = self.keys;
        if let Some(v) = keys.listen {
            settings.listen = v;
        }
        if let Some(v) = keys.host_key {
            settings.host_key = v;
        }
        if let Some(v) = keys.authorized_keys {
            settings.authorized_keys = v;
        }
        if let Some(v) = keys.revoked_keys {
            settings.revoked_keys = Some(v);
        }
        if let Some(v) = keys.host_cert {
            settings.host_cert = Some(v);
        }
        let handshake = at.number(
            "handshake_timeout_secs",
            keys.handshake_timeout_secs.as_ref(),
            HANDSHAKE_TIMEOUT_SECS,
        )?;
        if let Some(v) = handshake {
            settings.handshake_timeout = Duration::from_secs(v);
        }
        let hello = at.number(
            "hello_timeout_secs",
            keys.hello_timeout_secs.as_ref(),
            HELLO_TIMEOUT_SECS,
        )?;
        if let Some(v) = hello {
            settings.hello_timeout = Duration::from_secs(v);
        }
        if let Some(v) = at.number(
            "idle_timeout_secs",
            keys.idle_timeout_secs.as_ref(),
            IDLE_TIMEOUT_SECS,
        )? {
            settings.session.idle_timeout = (v > 0).then(|| Duration::from_secs(v));
        }
        if let Some(v) = at.number(
            "keepalive_secs",
            keys.keepalive_secs.as_ref(),
            KEEPALIVE_SECS,
        )? {
            settings.session.keepalive = Duration::from_secs(v);
        }
        if let Some(v) = at.count("max_sessions", keys.max_sessions.as_ref(), MAX_SESSIONS)? {
            settings.max_sessions = v;
        }
        if let Some(v) = at.count(
            "max_unauthenticated",
            keys.max_unauthenticated.as_ref(),
            MAX_UNAUTHENTICATED,
        )? {
            settings.max_unauthenticated = v;
        }
        if let Some(v) = at.count("max_waiting", keys.max_waiting.as_ref(), MAX_WAITING)? {
            settings.max_waiting = v;
        }
        if let Some(v) = at.number(
            "auth_failure_delay_ms",
            keys.auth_failure_delay_ms.as_ref(),
            AUTH_FAILURE_DELAY_MS,
        )? {
            settings.auth_failure_delay = Duration::from_millis(v);
        }
        if let Some(v) = at.number(
            "auth_penalty_secs",
            keys.auth_penalty_secs.as_ref(),
            AUTH_PENALTY_SECS,
        )? {
            settings.auth_penalty = Duration::from_secs(v);
        }
        if let Some(v) = at.number(
            "shutdown_grace_secs",
            keys.shutdown_grace_secs.as_ref(),
            SHUTDOWN_GRACE_SECS,
        )? {
            settings.shutdown_grace = Duration::from_secs(v);
        }
        if let Some(v) = keys.audit_log {
            settings.audit_log = Some(v);
        }
        if let Some(v) = keys.shell {
            if !v.get_ref().is_absolute() {
                return Err(at.value(
                    "shell",
                    &v,
                    "must be an absolute path, like \"/bin/bash\"".to_owned(),
                ));
            }
            settings.shell = Some(v.into_inner());
        }
        if let Some(v) = at.number(
            "audit_max_bytes",
            keys.audit_max_bytes.as_ref(),
            AUDIT_MAX_BYTES,
        )? {
            settings.audit.max_bytes = v;
        }
        if let Some(v) = at.number(
            "audit_checkpoint_every",
            keys.audit_checkpoint_every.as_ref(),
            AUDIT_CHECKPOINT_EVERY,
        )? {
            settings.audit.checkpoint_every = v;
        }
        if let Some(v) = keys.syslog {
            let target = v
                .get_ref()
                .parse()
                .map_err(|err: crate::audit::AuditError| at.value("syslog", &v, err.to_string()))?;
            settings.audit.syslog = Some(target);
        }
        if let Some((name, argv)) = keys
            .commands
            .iter()
            .find(|(_, argv)| argv.get_ref().is_empty())
        {
            return Err(at.value("commands", argv, format!("`{name}` has an empty argv")));
        }
        settings.commands = keys
            .commands
            .into_iter()
            .map(|(name, argv)| (name, argv.into_inner()))
            .collect();
        at.hello_within_handshake(
            settings,
            keys.hello_timeout_secs.as_ref(),
            keys.handshake_timeout_secs.as_ref(),
        )
    }
}

/// Turns the byte offsets of values into `FILE:LINE` places, and values into checked ones.
struct Locator<'a> {
    path: &'a Path,
    line_starts: &'a [usize],
}

impl Locator<'_> {
    fn place<T>(&self, value: &Spanned<T>) -> Place {
        Place {
            path: self.path.to_owned(),
            line: Some(line_of(self.line_starts, value.span().start)),
        }
    }

    fn value<T>(&self, key: &'static str, value: &Spanned<T>, reason: String) -> ConfigError {
        ConfigError::Value {
            place: self.place(value),
            key,
            reason,
        }
    }

    /// The value of an integer key, if present, checked against `range`.
    fn number(
        &self,
        key: &'static str,
        value: Option<&Spanned<u64>>,
        range: Range,
    ) -> Result<Option<u64>, ConfigError> {
        value
            .map(|spanned| self.check(key, spanned, range))
            .transpose()
    }

    /// [`Locator::number`] for a count held in a `usize`.
    fn count(
        &self,
        key: &'static str,
        value: Option<&Spanned<u64>>,
        range: Range,
    ) -> Result<Option<usize>, ConfigError> {
        value
            .map(|spanned| {
                let number = self.check(key, spanned, range)?;
                usize::try_from(number).map_err(|_| self.out_of_range(key, spanned, range))
            })
            .transpose()
    }

    fn check(
        &self,
        key: &'static str,
        value: &Spanned<u64>,
        range: Range,
    ) -> Result<u64, ConfigError> {
        let number = *value.get_ref();
        if (range.min..=range.max).contains(&number) {
            Ok(number)
        } else {
            Err(self.out_of_range(key, value, range))
        }
    }

    fn out_of_range(&self, key: &'static str, value: &Spanned<u64>, range: Range) -> ConfigError {
        ConfigError::OutOfRange {
            place: self.place(value),
            key,
            value: *value.get_ref(),
            range,
        }
    }

    /// The first handshake message cannot be given longer than the whole handshake. When
    /// only the handshake deadline is written, the hello deadline follows it down; when both
    /// are, or only the hello one, a hello deadline beyond the handshake's is an error.
    fn hello_within_handshake(
        &self,
        settings: &mut ServerSettings,
        hello: Option<&Spanned<u64>>,
        handshake: Option<&Spanned<u64>>,
    ) -> Result<(), ConfigError> {
        if settings.hello_timeout <= settings.handshake_timeout {
            return Ok(());
        }
        let Some(hello) = hello else {
            settings.hello_timeout = settings.handshake_timeout;
            return Ok(());
        };
        let handshake_secs = settings.handshake_timeout.as_secs();
        let handshake = match handshake {
            Some(spanned) => format!(
                "handshake_timeout_secs = {handshake_secs} (line {})",
                line_of(self.line_starts, spanned.span().start)
            ),
            None => format!("handshake_timeout_secs = {handshake_secs} (the default)"),
        };
        Err(self.value(
            "hello_timeout_secs",
            hello,
            format!(
                "{} is more than {handshake}: the first handshake message must come within \
                 the whole handshake's deadline",
                hello.get_ref()
            ),
        ))
    }
}

/// Parses `text`, the contents of `path`, as `T`, with the byte offset where each line
/// starts (for [`line_of`]). Bad TOML, an unknown key or a wrong type is
/// [`ConfigError::Invalid`] at its line, quoting it.
fn parse_toml<T: DeserializeOwned>(
    text: &str,
    path: &Path,
) -> Result<(T, Vec<usize>), ConfigError> {
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(index, _)| index + 1))
        .collect();
    match toml::from_str::<T>(text) {
        Ok(value) => Ok((value, line_starts)),
        Err(err) => {
            let line = err.span().map(|span| line_of(&line_starts, span.start));
            let message = err.message().trim_end().replace('\n', " ");
            let message = match line.and_then(|line| quoted_line(text, line)) {
                Some(quoted) => format!("{quoted}: {message}"),
                None => message,
            };
            Err(ConfigError::Invalid {
                place: Place {
                    path: path.to_owned(),
                    line,
                },
                message,
            })
        }
    }
}

/// The 1-based line holding byte `offset`.
fn line_of(line_starts: &[usize], offset: usize) -> usize {
    line_starts.partition_point(|&start| start <= offset)
}

/// Line `line` of `text`, trimmed and cut to [`QUOTED_LINE_CHARS`] characters.
fn quoted_line(text: &str, line: usize) -> Option<String> {
    let whole = text.lines().nth(line.checked_sub(1)?)?.trim();
    if whole.is_empty() {
        return None;
    }
    let mut quoted: String = whole.chars().take(QUOTED_LINE_CHARS).collect();
    if quoted.len() < whole.len() {
        quoted.push('…');
    }
    Some(quoted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ServerSettings {
        ServerSettings::with_defaults_in(Path::new("/tmp/seashell-home"))
    }

    fn parse(text: &str) -> ConfigFile {
        ConfigFile::parse(text, Path::new("x.toml")).unwrap()
    }

    /// Applies `text` over the defaults.
    fn applied(text: &str) -> Result<ServerSettings, ConfigError> {
        let mut s = settings();
        ConfigFile::parse(text, Path::new("x.toml"))?.apply(Path::new("x.toml"), &mut s)?;
        Ok(s)
    }

    fn error(text: &str) -> String {
        applied(text).unwrap_err().to_string()
    }

    #[test]
    fn the_annotated_example_is_valid() {
        let text = include_str!("../docs/seashell.toml");
        let file = ConfigFile::parse(text, Path::new("docs/seashell.toml")).unwrap();
        let mut s = settings();
        file.apply(Path::new("docs/seashell.toml"), &mut s).unwrap();
        assert_eq!(s.session.idle_timeout, None);
        assert!(s.audit_log.is_some());
        assert!(s.commands.contains_key("restart-web"));
        assert_eq!(s.hello_timeout, Duration::from_secs(2));
        assert_eq!(s.auth_penalty, Duration::from_secs(5));
    }

    #[test]
    fn keys_apply_over_defaults() {
        let s = applied(
            "listen = \"127.0.0.1:9\"\nidle_timeout_secs = 900\nmax_sessions = 5\nauth_failure_delay_ms = 0\n\
             hello_timeout_secs = 3\nauth_penalty_secs = 0\n",
        )
        .unwrap();
        assert_eq!(s.listen, "127.0.0.1:9".parse().unwrap());
        assert_eq!(s.session.idle_timeout, Some(Duration::from_secs(900)));
        assert_eq!(s.max_sessions, 5);
        assert_eq!(s.auth_failure_delay, Duration::ZERO);
        assert_eq!(s.handshake_timeout, Duration::from_secs(10));
        assert_eq!(s.hello_timeout, Duration::from_secs(3));
        assert_eq!(s.auth_penalty, Duration::ZERO);
    }

    #[test]
    fn audit_keys_and_named_commands() {
        let s = applied(
            "audit_log = \"/var/log/a.jsonl\"\naudit_max_bytes = 4096\nsyslog = \"udp:127.0.0.1:514\"\n\n[commands]\nrestart-web = [\"systemctl\", \"restart\", \"nginx\"]\n",
        )
        .unwrap();
        assert_eq!(s.audit_log.as_deref(), Some(Path::new("/var/log/a.jsonl")));
        assert_eq!(s.audit.max_bytes, 4096);
        assert!(s.audit.syslog.is_some());
        assert_eq!(s.commands["restart-web"], ["systemctl", "restart", "nginx"]);
        let err = error("max_sessions = 2\nsyslog = \"carrier-pigeon\"");
        assert!(err.starts_with("x.toml:2: syslog: "), "{err}");
        let err = error("[commands]\nok = [\"true\"]\nnothing = []\n");
        assert_eq!(err, "x.toml:3: commands: `nothing` has an empty argv");
        let err = error("\nshell = \"bash\"\n");
        assert!(
            err.starts_with("x.toml:2: shell: must be an absolute path"),
            "{err}"
        );
    }

    #[test]
    fn the_largest_keepalive_is_out_of_range_not_a_panic() {
        let text = "listen = \"127.0.0.1:9\"\n# pings\nkeepalive_secs = 18446744073709551615\n";
        let err = applied(text).unwrap_err();
        assert_eq!(
            err.to_string(),
            "x.toml:3: keepalive_secs = 18446744073709551615 is out of range (1 to 86400 seconds)"
        );
        assert!(matches!(
            err,
            ConfigError::OutOfRange {
                key: "keepalive_secs",
                value: u64::MAX,
                range: KEEPALIVE_SECS,
                ..
            }
        ));
    }

    #[test]
    fn each_bound_is_just_in_and_just_out() {
        let cases = [
            ("handshake_timeout_secs", HANDSHAKE_TIMEOUT_SECS),
            ("hello_timeout_secs", HELLO_TIMEOUT_SECS),
            ("idle_timeout_secs", IDLE_TIMEOUT_SECS),
            ("keepalive_secs", KEEPALIVE_SECS),
            ("max_sessions", MAX_SESSIONS),
            ("max_unauthenticated", MAX_UNAUTHENTICATED),
            ("max_waiting", MAX_WAITING),
            ("auth_failure_delay_ms", AUTH_FAILURE_DELAY_MS),
            ("auth_penalty_secs", AUTH_PENALTY_SECS),
            ("shutdown_grace_secs", SHUTDOWN_GRACE_SECS),
            ("audit_max_bytes", AUDIT_MAX_BYTES),
            ("audit_checkpoint_every", AUDIT_CHECKPOINT_EVERY),
        ];
        // With the handshake deadline at its largest, hello's own bound is the one tested.
        let base = "handshake_timeout_secs = 600\n";
        for (key, range) in cases {
            let base = if key == "handshake_timeout_secs" {
                ""
            } else {
                base
            };
            for inside in [range.min, range.max] {
                let text = format!("{base}{key} = {inside}\n");
                assert!(applied(&text).is_ok(), "{text}: {:?}", applied(&text).err());
            }
            let line = if base.is_empty() { 1 } else { 2 };
            let below = range.min.checked_sub(1);
            for outside in below.into_iter().chain([range.max + 1]) {
                let text = format!("{base}{key} = {outside}\n");
                assert_eq!(
                    error(&text),
                    format!("x.toml:{line}: {key} = {outside} is out of range ({range})"),
                );
            }
        }
        assert_eq!(
            applied("idle_timeout_secs = 0")
                .unwrap()
                .session
                .idle_timeout,
            None
        );
        assert_eq!(
            applied("audit_max_bytes = 1099511627776")
                .unwrap()
                .audit
                .max_bytes,
            1 << 40
        );
    }

    #[test]
    fn hello_timeout_is_within_the_handshake_timeout() {
        let err = error("handshake_timeout_secs = 5\nhello_timeout_secs = 6\n");
        assert!(
            err.starts_with(
                "x.toml:2: hello_timeout_secs: 6 is more than handshake_timeout_secs = 5 (line 1)"
            ),
            "{err}"
        );
        let err = error("hello_timeout_secs = 11\n");
        assert!(
            err.contains("11 is more than handshake_timeout_secs = 10 (the default)"),
            "{err}"
        );
        let equal = applied("handshake_timeout_secs = 5\nhello_timeout_secs = 5\n").unwrap();
        assert_eq!(equal.hello_timeout, Duration::from_secs(5));
        // Only the handshake deadline written, below hello's default: hello follows it.
        let short = applied("handshake_timeout_secs = 1\n").unwrap();
        assert_eq!(short.hello_timeout, Duration::from_secs(1));
        assert_eq!(short.handshake_timeout, Duration::from_secs(1));
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let err = ConfigFile::parse("max_sessions = 3\nmax_sesions = 4\n", Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("x.toml:2: max_sesions = 4: unknown field `max_sesions`"),
            "{err}"
        );
    }

    #[test]
    fn bad_value_is_named_with_its_line() {
        let err = ConfigFile::parse("\n\nlisten = \"nowhere\"\n", Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("x.toml:3: listen = \"nowhere\": "), "{err}");
        let err = ConfigFile::parse("keepalive_secs = -1\n", Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("x.toml:1: keepalive_secs = -1: "), "{err}");
        assert!(!err.contains('\n'), "{err}");
        let err = error("keepalive_secs = 0");
        assert_eq!(
            err,
            "x.toml:1: keepalive_secs = 0 is out of range (1 to 86400 seconds)"
        );
        let long = format!("shell = \"/{}\n", "x".repeat(200));
        let err = ConfigFile::parse(&long, Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains('…') && err.len() < 300, "{err}");
    }

    #[test]
    fn parse_is_total() {
        for text in [
            "",
            "=",
            "[",
            "a = ",
            "\u{0}",
            "[commands]\nx = [1]",
            "keepalive_secs = 1e400",
        ] {
            let _ = ConfigFile::parse(text, Path::new("x.toml"));
        }
        assert!(
            parse("")
                .apply(Path::new("x.toml"), &mut settings())
                .is_ok()
        );
    }
}
