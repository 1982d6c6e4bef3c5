//! How each host's run ended, what that counts as (ok, failed, unreachable), the summary
//! printed after a fan-out, and its exit code. "Failed" is a command that ran and exited
//! non-zero, died of a signal, timed out or was interrupted; "unreachable" a host that could
//! not be connected to, verified (host key) or authenticated to. Pure: it prints nothing;
//! host names and reasons come out [`shown`] escaped.

use std::time::Duration;

use super::super::ClientError;
use crate::proto::{ExitStatus, ProtoError};
use crate::shown::shown;
use crate::transport::TransportError;

/// Exit code when every command exited 0.
pub const ALL_OK: u8 = 0;
/// Exit code when every host was reached but some command failed (pssh's).
pub const SOME_FAILED: u8 = 4;
/// Exit code when some host could not be reached, verified or authenticated to.
pub const SOME_UNREACHABLE: u8 = 255;
/// Exit code after a second Ctrl-C gave up on every host (128 + SIGINT).
pub const GAVE_UP: u8 = 130;

/// How many hosts the summary line names in each of its lists.
const LISTED: usize = 5;

/// How one host's run ended.
#[derive(Debug)]
pub enum End {
    /// The command ended with this status.
    Exited(ExitStatus),
    /// The host could not be connected to, verified or authenticated to.
    Unreachable(ClientError),
    /// `--timeout` passed while connecting.
    ConnectTimedOut(Duration),
    /// `--timeout` passed while the command ran (the session was closed).
    TimedOut(Duration),
    /// Ctrl-C: not started, dropped while connecting, or given up on.
    Interrupted,
    /// The session failed once connected.
    Broken(ClientError),
}

/// What an [`End`] counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Exit 0.
    Ok,
    /// Ran but did not exit 0.
    Failed,
    /// Never ran.
    Unreachable,
}

impl End {
    /// What it counts as.
    pub fn verdict(&self) -> Verdict {
        match self {
            Self::Exited(ExitStatus::Code(0)) => Verdict::Ok,
            Self::Unreachable(_) | Self::ConnectTimedOut(_) => Verdict::Unreachable,
            Self::Exited(_) | Self::TimedOut(_) | Self::Interrupted | Self::Broken(_) => {
                Verdict::Failed
            }
        }
    }

    /// The command's status, if it ended with one.
    pub fn status(&self) -> Option<ExitStatus> {
        match self {
            Self::Exited(status) => Some(*status),
            _ => None,
        }
    }

    /// A few words for the summary line: `exit 2`, `connection refused`.
    pub fn reason(&self) -> String {
        match self {
            Self::Exited(ExitStatus::Code(code)) => format!("exit {code}"),
            Self::Exited(ExitStatus::Signal(n)) => signal_name(*n),
            Self::ConnectTimedOut(limit) => format!("no answer within {} s", limit.as_secs()),
            Self::TimedOut(limit) => format!("timed out after {} s", limit.as_secs()),
            Self::Interrupted => "interrupted".to_owned(),
            Self::Unreachable(err) => unreachable_reason(err).to_owned(),
            Self::Broken(ClientError::Closed(_)) => "closed by the server".to_owned(),
            Self::Broken(ClientError::Transport(_)) => "connection lost".to_owned(),
            Self::Broken(_) => "session failed".to_owned(),
        }
    }

    /// The whole reason, for the host's own line (and JSON's `error`), for `host` as given;
    /// none for a command that exited 0.
    pub fn detail(&self, host: &str) -> Option<String> {
        let detail = match self {
            Self::Exited(ExitStatus::Code(0)) => return None,
            Self::Unreachable(ClientError::UnknownHost {
                host_port,
                fingerprint,
            }) => format!(
                "host key for {host_port} is not known ({fingerprint}): pin it first with \
                 `seashell connect {host}` (compare the fingerprint with the server's \
                 `seashell fingerprint`), or rerun with --accept-new"
            ),
            Self::Unreachable(err) | Self::Broken(err) => err.to_string(),
            other => other.reason(),
        };
        Some(shown(&detail))
    }

    /// JSON's `error`: the whole reason, none for a command that ended with a status (its
    /// `exit` or `signal` says it).
    pub fn error(&self, host: &str) -> Option<String> {
        match self {
            Self::Exited(_) => None,
            other => other.detail(host),
        }
    }
}

/// `signal 9 (SIGKILL)`.
fn signal_name(n: u8) -> String {
    match nix::sys::signal::Signal::try_from(i32::from(n)) {
        Ok(signal) => format!("signal {n} ({})", signal.as_str()),
        Err(_) => format!("signal {n}"),
    }
}

/// Why a host could not be reached, in a few words.
fn unreachable_reason(err: &ClientError) -> &'static str {
    match err {
        ClientError::Connect { source, .. } => match source.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused",
            std::io::ErrorKind::HostUnreachable | std::io::ErrorKind::NetworkUnreachable => {
                "no route to host"
            }
            _ => "cannot connect",
        },
        ClientError::UnknownHost { .. } => "unknown host key",
        ClientError::HostKeyChanged { .. } => "HOST KEY CHANGED",
        ClientError::FingerprintMismatch { .. } => "not the pinned host key",
        ClientError::Transport(TransportError::Proto(ProtoError::AuthRejected)) => {
            "authentication refused"
        }
        ClientError::Transport(TransportError::Proto(ProtoError::AccountRefused(_))) => {
            "account refused"
        }
        ClientError::Transport(TransportError::Proto(ProtoError::VersionRefused { .. })) => {
            "protocol version refused"
        }
        ClientError::ClosedInHandshake { .. } => "closed during the handshake",
        ClientError::Timeout(_) => "no answer",
        _ => "handshake failed",
    }
}

/// The summary, on as many lines as it takes: `3 hosts: 1 ok, 1 failed (web7: exit 2); 1
/// unreachable (web9: connection refused)`, then `HOST: failed: REASON` or `HOST:
/// unreachable: REASON` for each host that was not ok, in the order given.
pub fn summary(ends: &[(&str, &End)]) -> String {
    let of = |verdict| -> Vec<&(&str, &End)> {
        ends.iter()
            .filter(|(_, end)| end.verdict() == verdict)
            .collect()
    };
    let (ok, failed, unreachable) = (
        of(Verdict::Ok),
        of(Verdict::Failed),
        of(Verdict::Unreachable),
    );
    let plural = if ends.len() == 1 { "" } else { "s" };
    let mut text = format!("{} host{plural}: {} ok", ends.len(), ok.len());
    if !failed.is_empty() {
        text += &format!(", {} failed ({})", failed.len(), listed(&failed));
    }
    if !unreachable.is_empty() {
        text += &format!(
            "; {} unreachable ({})",
            unreachable.len(),
            listed(&unreachable)
        );
    }
    text.push('\n');
    for (host, end) in ends {
        let kind = match end.verdict() {
            Verdict::Ok => continue,
            Verdict::Failed => "failed",
            Verdict::Unreachable => "unreachable",
        };
        let detail = end.detail(host).unwrap_or_default();
        text += &format!("{}: {kind}: {detail}\n", shown(host));
    }
    text
}

/// `web7: exit 2, web8: exit 1`, the first [`LISTED`] of them, then how many more.
fn listed(ends: &[&(&str, &End)]) -> String {
    let mut parts: Vec<String> = ends
        .iter()
        .take(LISTED)
        .map(|(host, end)| format!("{}: {}", shown(host), end.reason()))
        .collect();
    if ends.len() > LISTED {
        parts.push(format!("and {} more", ends.len() - LISTED));
    }
    parts.join(", ")
}

/// The exit code: [`GAVE_UP`] after a second Ctrl-C, else [`SOME_UNREACHABLE`] if a host was
/// not reached, else [`SOME_FAILED`] if a command failed, else [`ALL_OK`].
pub fn exit_code<'a>(ends: impl IntoIterator<Item = &'a End>, gave_up: bool) -> u8 {
    if gave_up {
        return GAVE_UP;
    }
    let mut code = ALL_OK;
    for end in ends {
        match end.verdict() {
            Verdict::Unreachable => return SOME_UNREACHABLE,
            Verdict::Failed => code = SOME_FAILED,
            Verdict::Ok => {}
        }
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused() -> End {
        End::Unreachable(ClientError::Connect {
            target: "10.0.0.9:7022".into(),
            source: std::io::ErrorKind::ConnectionRefused.into(),
        })
    }

    #[test]
    fn the_summary_counts_names_and_explains() {
        let ok = End::Exited(ExitStatus::Code(0));
        let exit2 = End::Exited(ExitStatus::Code(2));
        let refused = refused();
        let ends = [
            ("web1", &ok),
            ("web7", &exit2),
            ("web9", &refused),
            ("web2", &ok),
        ];
        let text = summary(&ends);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "4 hosts: 2 ok, 1 failed (web7: exit 2); 1 unreachable (web9: connection refused)",
                "web7: failed: exit 2",
                "web9: unreachable: cannot connect to 10.0.0.9:7022: connection refused",
            ]
        );
        assert_eq!(summary(&[("a", &ok)]), "1 host: 1 ok\n");
        assert_eq!(exit_code(ends.map(|(_, end)| end), false), SOME_UNREACHABLE);
        assert_eq!(exit_code([&ok, &exit2], false), SOME_FAILED);
        assert_eq!(exit_code([&ok, &ok], false), ALL_OK);
        assert_eq!(exit_code([&ok], true), GAVE_UP);
    }

    #[test]
    fn a_long_list_is_cut_and_names_are_escaped() {
        let failed = End::Exited(ExitStatus::Signal(9));
        let names: Vec<String> = (0..7).map(|n| format!("h{n}")).collect();
        let mut ends: Vec<(&str, &End)> = names.iter().map(|n| (n.as_str(), &failed)).collect();
        ends.push(("evil\u{1b}[2J", &failed));
        let text = summary(&ends);
        let first = text.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("8 hosts: 0 ok, 8 failed (h0: signal 9 (SIGKILL), h1: signal 9"),
            "{first}"
        );
        assert!(
            first.ends_with("h4: signal 9 (SIGKILL), and 3 more)"),
            "{first}"
        );
        assert!(
            text.contains("evil\\u{1b}[2J: failed: signal 9 (SIGKILL)\n"),
            "{text}"
        );
        assert!(!text.contains('\u{1b}'));
    }

    #[test]
    fn each_end_counts_as_what_the_contract_says() {
        let unknown = End::Unreachable(ClientError::UnknownHost {
            host_port: "10.0.0.5:7022".into(),
            fingerprint: "SHA256:x".into(),
        });
        assert_eq!(unknown.verdict(), Verdict::Unreachable);
        assert_eq!(unknown.reason(), "unknown host key");
        let detail = unknown.detail("web1").unwrap_or_default();
        assert!(detail.contains("`seashell connect web1`"), "{detail}");
        assert!(detail.contains("--accept-new"), "{detail}");
        let auth = End::Unreachable(ClientError::Transport(TransportError::Proto(
            ProtoError::AuthRejected,
        )));
        assert_eq!(auth.reason(), "authentication refused");
        let late = End::ConnectTimedOut(Duration::from_secs(3));
        assert_eq!(
            (late.verdict(), late.reason().as_str()),
            (Verdict::Unreachable, "no answer within 3 s")
        );
        let slow = End::TimedOut(Duration::from_secs(3));
        assert_eq!(
            (slow.verdict(), slow.reason().as_str()),
            (Verdict::Failed, "timed out after 3 s")
        );
        assert_eq!(End::Interrupted.verdict(), Verdict::Failed);
        let lost = End::Broken(ClientError::Closed("shutting down".into()));
        assert_eq!(
            (lost.verdict(), lost.reason().as_str()),
            (Verdict::Failed, "closed by the server")
        );
        assert_eq!(End::Exited(ExitStatus::Code(0)).detail("a"), None);
        assert_eq!(
            End::Exited(ExitStatus::Signal(9)).status(),
            Some(ExitStatus::Signal(9))
        );
        assert_eq!(refused().status(), None);
    }
}
