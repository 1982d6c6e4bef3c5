//! Per-key policy from authorized_keys options, enforced by the server: `from=` (source
//! networks), `expires=` (last valid day, UTC), and restricted keys — a key with any `allow=`
//! or `command=` never reaches a shell: its line is split into argv with POSIX shell-words
//! rules and runs directly only if it matches an `allow` pattern (a glob per word, compiled
//! once when the policy is built and matched in linear time; a final `*` word matches any
//! remaining words), or if it is the name of one of its `command=`
//! entries from the config's `[commands]`. `;`, `|`, `&&`, `$(...)`, backticks, redirections
//! and newlines are then just characters in argv. `no-files` refuses file transfer, and so
//! does any restriction (writing files would get round it, e.g. by replacing a script an
//! allowed command runs; OpenSSH's forced commands stop scp the same way). `no-pty` runs the
//! key's commands on pipes, never on a pseudo-terminal (as OpenSSH's option does). Pure
//! (a pattern that cannot be compiled is logged and matches nothing; the key stays
//! restricted): the caller passes the address, the date and the named commands in.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::keys::authorized::{AllowPattern, ExpiryDate, KeyOption};
use crate::keys::cidr::Cidr;

/// What one key may do: its authorized_keys line's options, and for a certificate, those
/// of its `cert-authority` line and its own together ([`Policy::combine`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Each `from=` list the key is under: the address must be in every one.
    from: Vec<Vec<Cidr>>,
    expires: Option<ExpiryDate>,
    /// Each set of `allow=`/`command=` the key is under: a line must pass every one.
    restrictions: Vec<Restriction>,
    no_files: bool,
    no_pty: bool,
}

/// One line's `allow=` patterns and `command=` names: present when it has any of them,
/// including a pattern that could not be compiled (which matches nothing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Restriction {
    allow: Vec<AllowPattern>,
    commands: Vec<String>,
}

/// A refusal, naming the rule that refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// `from=` does not cover the client's address.
    #[error("from=: {0} is not an allowed source address for this key")]
    From(IpAddr),
    /// `expires=` is in the past.
    #[error("expires=: this key expired after {0}")]
    Expired(ExpiryDate),
    /// A restricted key's line matched no `allow=` pattern and no `command=` name.
    #[error("allow=: this key may not run `{0}`")]
    NotAllowed(String),
    /// The line is not valid shell words (an unclosed quote, say).
    #[error("allow=: cannot split `{0}` into words")]
    Unsplittable(String),
    /// `command=NAME` names no entry of the config's `[commands]`.
    #[error("command=: `{0}` is not defined in the server's [commands]")]
    UndefinedCommand(String),
    /// `no-files`.
    #[error("no-files: file transfer is not allowed for this key")]
    NoFiles,
    /// A restricted key (`allow=` or `command=`) asked for a file transfer.
    #[error("allow=/command=: file transfer is not allowed for a restricted key")]
    RestrictedFiles,
}

impl Denied {
    /// The option that refused, as written (`from=`, `no-files`), for the audit log.
    pub fn option(&self) -> &'static str {
        match self {
            Self::From(_) => "from=",
            Self::Expired(_) => "expires=",
            Self::NotAllowed(_) | Self::Unsplittable(_) | Self::RestrictedFiles => "allow=",
            Self::UndefinedCommand(_) => "command=",
            Self::NoFiles => "no-files",
        }
    }
}

/// A certificate whose `command=` names another command than its `cert-authority` line's:
/// refused whole, as OpenSSH does, rather than allowed neither or either.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("command=: the certificate's {ours:?} and the cert-authority line's {theirs:?} differ")]
pub struct CommandConflict {
    ours: Vec<String>,
    theirs: Vec<String>,
}

/// How a line of a restricted key runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Run {
    /// By the shell (unrestricted keys).
    Shell,
    /// This argv, directly, no shell.
    Direct(Vec<String>),
}

impl Policy {
    /// The policy a key's options describe.
    pub fn from_options(options: &[KeyOption]) -> Self {
        let mut policy = Self::default();
        let mut from: Option<Vec<Cidr>> = None;
        let mut restriction: Option<Restriction> = None;
        for option in options {
            match option {
                KeyOption::From(nets) => from
                    .get_or_insert_with(Vec::new)
                    .extend(nets.iter().cloned()),
                KeyOption::Expires(date) => policy.expires = Some(*date),
                KeyOption::Allow(text) => {
                    let restriction = restriction.get_or_insert_with(Restriction::default);
                    match AllowPattern::parse(text) {
                        Ok(pattern) => restriction.allow.push(pattern),
                        Err(problem) => tracing::warn!("{problem}: it matches nothing"),
                    }
                }
                KeyOption::Command(name) => restriction
                    .get_or_insert_with(Restriction::default)
                    .commands
                    .push(name.clone()),
                KeyOption::NoFiles => policy.no_files = true,
                KeyOption::NoPty => policy.no_pty = true,
            }
        }
        policy.from.extend(from);
        policy.restrictions.extend(restriction);
        policy
    }

    /// Both policies at once, for a certificate (`self`) admitted by a `cert-authority` line
    /// (`line`): `no-files` and `no-pty` from either apply, the address must pass the
    /// `from=` of both, a command line the `allow=`/`command=` of both where both have them,
    /// and the earlier `expires=` counts. `command=` on both must name the same commands.
    pub fn combine(mut self, line: Self) -> Result<Self, CommandConflict> {
        let commands = |p: &Self| -> Vec<String> {
            let mut names: Vec<String> = p
                .restrictions
                .iter()
                .flat_map(|r| r.commands.iter().cloned())
                .collect();
            names.sort();
            names.dedup();
            names
        };
        let (ours, theirs) = (commands(&self), commands(&line));
        if !ours.is_empty() && !theirs.is_empty() && ours != theirs {
            return Err(CommandConflict { ours, theirs });
        }
        self.from.extend(line.from);
        self.expires = match (self.expires, line.expires) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.restrictions.extend(line.restrictions);
        self.no_files |= line.no_files;
        self.no_pty |= line.no_pty;
        Ok(self)
    }

    /// `from=`: may this key connect from `addr`?
    pub fn check_source(&self, addr: IpAddr) -> Result<(), Denied> {
        if self
            .from
            .iter()
            .all(|nets| nets.iter().any(|net| net.contains(addr)))
        {
            Ok(())
        } else {
            Err(Denied::From(addr))
        }
    }

    /// `expires=`: is the key still valid on `today` (UTC)? An unknown date fails closed.
    pub fn check_date(&self, today: Option<ExpiryDate>) -> Result<(), Denied> {
        match (self.expires, today) {
            (Some(last), Some(today)) if today <= last => Ok(()),
            (Some(last), _) => Err(Denied::Expired(last)),
            (None, _) => Ok(()),
        }
    }

    /// The command words a restricted key may type first, for completion: each `allow=`
    /// pattern's first word (when it has no glob character) and each `command=` name, of its
    /// first restriction (a certificate's own, when it has one).
    pub fn command_words(&self) -> Vec<String> {
        let Some(first) = self.restrictions.first() else {
            return Vec::new();
        };
        let mut words: Vec<String> = first
            .allow
            .iter()
            .filter_map(|pattern| pattern.text().split_whitespace().next())
            .filter(|word| !word.contains(['*', '?', '[']))
            .map(str::to_owned)
            .chain(first.commands.iter().cloned())
            .collect();
        words.sort();
        words.dedup();
        words
    }

    /// May this key's commands run on a pseudo-terminal? Not with `no-pty`. (A restricted
    /// key's line gets one only once it is allowed: refused lines run nowhere.)
    pub fn may_have_pty(&self) -> bool {
        !self.no_pty
    }

    /// May this key transfer files? Not with `no-files`, nor when it is restricted.
    pub fn check_files(&self) -> Result<(), Denied> {
        if self.no_files {
            Err(Denied::NoFiles)
        } else if self.is_restricted() {
            Err(Denied::RestrictedFiles)
        } else {
            Ok(())
        }
    }

    /// A key with any `allow=` or `command=` never reaches a shell.
    pub fn is_restricted(&self) -> bool {
        !self.restrictions.is_empty()
    }

    /// How `line` may run for this key, given the config's named commands: when restricted,
    /// only when every restriction allows it and all say the same argv (a certificate's
    /// `allow=` and its CA line's `command=` naming a different argv for the same line is
    /// refused, so that neither side's check is skipped).
    pub fn authorize(
        &self,
        line: &str,
        named: &BTreeMap<String, Vec<String>>,
    ) -> Result<Run, Denied> {
        let mut runs = self
            .restrictions
            .iter()
            .map(|restriction| restriction.authorize(line, named));
        match runs.next() {
            None => Ok(Run::Shell),
            Some(first) => {
                let run = first?;
                for other in runs {
                    if other? != run {
                        return Err(Denied::NotAllowed(line.to_owned()));
                    }
                }
                Ok(run)
            }
        }
    }
}

impl Restriction {
    fn authorize(&self, line: &str, named: &BTreeMap<String, Vec<String>>) -> Result<Run, Denied> {
        let trimmed = line.trim();
        if let Some(name) = self.commands.iter().find(|name| *name == trimmed) {
            return match named.get(name) {
                Some(argv) if !argv.is_empty() => Ok(Run::Direct(argv.clone())),
                _ => Err(Denied::UndefinedCommand(name.clone())),
            };
        }
        let argv = shlex::split(line).ok_or_else(|| Denied::Unsplittable(line.to_owned()))?;
        let allowed = !argv.is_empty() && self.allow.iter().any(|pattern| pattern.matches(&argv));
        if allowed {
            Ok(Run::Direct(argv))
        } else {
            Err(Denied::NotAllowed(line.to_owned()))
        }
    }
}

/// Today's date in UTC, for `expires=`.
pub fn today_utc() -> Option<ExpiryDate> {
    let seconds = time::OffsetDateTime::now_utc().unix_timestamp();
    civil_from_days(seconds.div_euclid(86_400))
}

/// Days since 1970-01-01 to a calendar date. The date reaches [`ExpiryDate`] (years 1 to
/// 9999) through the `YYYY-MM-DD` form both write, its only constructor.
fn civil_from_days(days: i64) -> Option<ExpiryDate> {
    let epoch = time::OffsetDateTime::UNIX_EPOCH.date();
    let date = epoch.checked_add(time::Duration::days(days))?;
    ExpiryDate::parse(&date.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::authorized::AuthorizedKeys;

    const KEY: &str = include_str!("../../tests/fixtures/client_rsa.pub");

    fn policy(options: &str) -> Policy {
        let (keys, warnings) = AuthorizedKeys::parse(&format!("{options} {KEY}"));
        assert!(warnings.is_empty(), "{warnings:?}");
        Policy::from_options(&keys.entries[0].options)
    }

    fn named() -> BTreeMap<String, Vec<String>> {
        BTreeMap::from([(
            "restart-web".to_owned(),
            vec!["systemctl".into(), "restart".into(), "nginx".into()],
        )])
    }

    #[test]
    fn combined_restrictions_must_all_allow_a_line_and_agree_on_its_argv() {
        let cert = policy(r#"allow="restart-web *",allow="uptime",no-pty"#);
        let line = policy(r#"command="restart-web",allow="uptime *",from="127.0.0.0/8""#);
        let both = cert.combine(line).unwrap();
        assert_eq!(
            both.authorize("uptime", &named()),
            Ok(Run::Direct(vec!["uptime".into()]))
        );
        // The certificate allows `restart-web` as words, the line as a named command with
        // another argv: refused rather than run as either one says.
        assert!(both.authorize("restart-web", &named()).is_err());
        assert!(both.authorize("uptime -p", &named()).is_err());
        assert!(!both.may_have_pty());
        assert!(both.check_source("10.0.0.1".parse().unwrap()).is_err());
        assert!(both.check_source("127.0.0.1".parse().unwrap()).is_ok());
        let other = policy(r#"command="backup""#);
        assert!(policy(r#"command="restore""#).combine(other).is_err());
    }

    #[test]
    fn unrestricted_keys_use_the_shell() {
        assert_eq!(
            Policy::default().authorize("ls | wc", &named()),
            Ok(Run::Shell)
        );
    }

    #[test]
    fn allow_patterns_match_per_word() {
        let p = policy(r#"allow="systemctl status *",allow="uptime",allow="cat /var/log/*.log""#);
        let ok = |line: &str| p.authorize(line, &named());
        assert_eq!(ok("uptime"), Ok(Run::Direct(vec!["uptime".into()])));
        assert!(matches!(ok("systemctl status nginx"), Ok(Run::Direct(_))));
        assert!(matches!(ok("systemctl status"), Ok(Run::Direct(_))));
        assert!(matches!(ok("cat /var/log/syslog.log"), Ok(Run::Direct(_))));
        assert!(ok("uptime -p").is_err());
        assert!(ok("systemctl restart nginx").is_err());
        assert!(ok("cat /etc/shadow").is_err());
    }

    #[test]
    fn shell_syntax_is_never_interpreted() {
        let p = policy(r#"allow="echo *""#);
        for line in [
            "echo hi; rm -rf /",
            "echo a | sh",
            "echo a && id",
            "echo $(id)",
            "echo `id`",
            "echo a > /tmp/x",
            "echo a\nid",
        ] {
            let Ok(Run::Direct(argv)) = p.authorize(line, &named()) else {
                panic!("{line}")
            };
            assert_eq!(argv[0], "echo");
            assert!(argv.iter().skip(1).all(|w| w != "rm" || line.contains(';')));
        }
        assert_eq!(
            p.authorize("echo hi; rm -rf /", &named()),
            Ok(Run::Direct(vec![
                "echo".into(),
                "hi;".into(),
                "rm".into(),
                "-rf".into(),
                "/".into()
            ]))
        );
        assert!(p.authorize("cat 'unclosed", &named()).is_err());
        assert!(p.authorize("id", &named()).is_err());
    }

    #[test]
    fn named_commands_run_their_argv() {
        let p = policy(r#"command="restart-web""#);
        assert!(p.is_restricted());
        let argv = vec!["systemctl".into(), "restart".into(), "nginx".into()];
        assert_eq!(p.authorize("restart-web", &named()), Ok(Run::Direct(argv)));
        assert!(p.authorize("systemctl restart nginx", &named()).is_err());
        let undefined = policy(r#"command="nope""#);
        let err = undefined.authorize("nope", &named());
        assert_eq!(err, Err(Denied::UndefinedCommand("nope".into())));
    }

    #[test]
    fn from_and_expires() {
        let p = policy(r#"from="10.0.0.0/8,::1/128",expires="2030-01-31""#);
        assert!(p.check_source("10.1.2.3".parse().unwrap()).is_ok());
        assert!(p.check_source("::1".parse().unwrap()).is_ok());
        assert_eq!(
            p.check_source("192.168.1.1".parse().unwrap()),
            Err(Denied::From("192.168.1.1".parse().unwrap()))
        );
        assert!(p.check_date(ExpiryDate::parse("2030-01-31")).is_ok());
        assert!(p.check_date(ExpiryDate::parse("2030-02-01")).is_err());
        assert!(p.check_date(None).is_err());
        assert!(Policy::default().check_date(None).is_ok());
        assert!(policy("no-files").check_files().is_err());
        assert!(!policy("no-pty").may_have_pty());
        assert!(policy("no-files").may_have_pty());
        assert!(Policy::default().check_files().is_ok());
        assert_eq!(
            policy(r#"allow="uptime""#).check_files(),
            Err(Denied::RestrictedFiles)
        );
        assert_eq!(
            policy(r#"command="restart-web""#).check_files(),
            Err(Denied::RestrictedFiles)
        );
    }

    #[test]
    fn allow_matching_takes_linear_time_on_hostile_arguments() {
        let p = policy(
            r#"allow="tail -n 50 /var/log/*/*/*.log",allow="grep *a*a*a*a*b",allow="ls ?*?*?*?*/""#,
        );
        let ok = |line: &str| p.authorize(line, &named());
        // 64 KiB arguments that almost match: each `*` has thousands of places to start.
        let slashes = format!("/var/log/{}", "/".repeat(64 * 1024));
        assert!(ok(&format!("tail -n 50 {slashes}")).is_err());
        assert!(ok(&format!("tail -n 50 {slashes}x.log")).is_ok());
        let a = "a".repeat(64 * 1024);
        assert!(ok(&format!("grep {a}")).is_err());
        assert!(ok(&format!("grep {a}b")).is_ok());
        assert!(ok(&format!("ls {a}")).is_err());
        assert!(ok(&format!("ls {a}/")).is_ok());
    }

    #[test]
    fn every_character_but_star_and_question_mark_is_literal() {
        let p = policy(
            r#"allow="cat [ab] {x,y} a\\b !n ^$.+() **/*.log d?t 'two words'",allow="ls *""#,
        );
        let ok = |line: &str| p.authorize(line, &named()).is_ok();
        assert!(ok(
            r"cat [ab] {x,y} 'a\b' !n '^$.+()' /x.log dot 'two words'"
        ));
        // `[ab]` is no class, `{x,y}` no alternation, `\` no escape, `.` no regex.
        assert!(!ok(r"cat a {x,y} 'a\b' !n '^$.+()' /x.log dot 'two words'"));
        assert!(!ok(r"cat [ab] x 'a\b' !n '^$.+()' /x.log dot 'two words'"));
        assert!(!ok(r"cat [ab] {x,y} ab !n '^$.+()' /x.log dot 'two words'"));
        assert!(!ok(
            r"cat [ab] {x,y} 'a\b' !n 'a$.+()' /x.log dot 'two words'"
        ));
        // `**` is `*` (any bytes, `/` included), never "any directories": `**/` needs a `/`.
        assert!(ok(
            r"cat [ab] {x,y} 'a\b' !n '^$.+()' /a/b/c.log dot 'two words'"
        ));
        assert!(ok(
            r"cat [ab] {x,y} 'a\b' !n '^$.+()' /.log dot 'two words'"
        ));
        assert!(!ok(
            r"cat [ab] {x,y} 'a\b' !n '^$.+()' a.log dot 'two words'"
        ));
        // `?` is exactly one byte (a newline too; `é` is two).
        assert!(ok(
            "cat [ab] {x,y} 'a\\b' !n '^$.+()' /x.log 'd\nt' 'two words'"
        ));
        assert!(!ok(
            r"cat [ab] {x,y} 'a\b' !n '^$.+()' /x.log dt 'two words'"
        ));
        assert!(!ok(
            r"cat [ab] {x,y} 'a\b' !n '^$.+()' /x.log dét 'two words'"
        ));
        // A quoted pattern word is one word; a final `*` word is any words, none included.
        assert!(!ok(
            r"cat [ab] {x,y} 'a\b' !n '^$.+()' /x.log dot two words"
        ));
        assert!(ok("ls"));
        assert!(ok("ls -l /tmp 'a b'"));
        let middle = policy(r#"allow="cp * /backup/""#);
        assert!(middle.authorize("cp a /backup/", &named()).is_ok());
        assert!(middle.authorize("cp /backup/", &named()).is_err());
        assert!(middle.authorize("cp a b /backup/", &named()).is_err());
        let empty_word = policy(r#"allow="printf ''""#);
        assert!(empty_word.authorize("printf ''", &named()).is_ok());
        assert!(empty_word.authorize("printf x", &named()).is_err());
    }

    #[test]
    fn a_pattern_that_cannot_be_compiled_matches_nothing_and_keeps_the_key_restricted() {
        let p = Policy::from_options(&[KeyOption::Allow("echo 'unclosed".into())]);
        assert!(p.is_restricted());
        assert_eq!(p.check_files(), Err(Denied::RestrictedFiles));
        assert_eq!(
            p.authorize("echo 'unclosed'", &named()),
            Err(Denied::NotAllowed("echo 'unclosed'".into()))
        );
        assert!(p.authorize("echo unclosed", &named()).is_err());
    }

    #[test]
    fn civil_dates() {
        let day = |n| civil_from_days(n).unwrap().to_string();
        assert_eq!(day(0), "1970-01-01");
        assert_eq!(day(11_016), "2000-02-29");
        assert_eq!(day(20_781), "2026-11-24");
        assert!(today_utc().is_some());
    }
}
