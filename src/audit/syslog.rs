//! The syslog sink: each audit line also leaves the host as one RFC 5424 message, over a Unix
//! datagram socket (`unix:/dev/log`) or UDP (`udp:HOST:514`), so that a copy exists that an
//! attacker on the server cannot reach. Best effort by design: sockets are non-blocking, a
//! message that cannot be sent is dropped (the first failure is logged), and nothing here can
//! slow down or stop the audit log itself.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs as _, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::str::FromStr;

use super::AuditError;
use super::chain::EventKind;

/// Default syslog port for `udp:HOST`.
const SYSLOG_PORT: u16 = 514;

/// The `authpriv` facility (10): security messages.
const FACILITY: u8 = 10;

/// Where syslog messages go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyslogTarget {
    /// A local datagram socket, usually `/dev/log`.
    Unix(PathBuf),
    /// A remote collector: `HOST:PORT` as given (resolved when the server starts).
    Udp(String),
}

impl FromStr for SyslogTarget {
    type Err = AuditError;

    /// `unix:PATH`, `udp:HOST`, `udp:HOST:PORT` or `udp:[IPV6]:PORT`.
    fn from_str(text: &str) -> Result<Self, AuditError> {
        let refuse = |detail: &str| AuditError::SyslogTarget {
            target: text.to_owned(),
            detail: detail.to_owned(),
        };
        if let Some(path) = text.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(refuse("expected unix:PATH, e.g. unix:/dev/log"));
            }
            return Ok(Self::Unix(PathBuf::from(path)));
        }
        let Some(host) = text.strip_prefix("udp:") else {
            return Err(refuse("expected unix:PATH or udp:HOST[:PORT]"));
        };
        if host.is_empty() {
            return Err(refuse("expected udp:HOST[:PORT]"));
        }
        let valid_port = |port: &str| port.parse::<u16>().is_ok_and(|p| p != 0);
        let with_port = match host.strip_prefix('[').map(|rest| rest.split_once(']')) {
            Some(Some((_, ""))) => format!("{host}:{SYSLOG_PORT}"),
            Some(Some((_, port))) if port.strip_prefix(':').is_some_and(valid_port) => {
                host.to_owned()
            }
            Some(_) => return Err(refuse("expected udp:[IPV6] or udp:[IPV6]:PORT")),
            None => match host.split_once(':') {
                None => format!("{host}:{SYSLOG_PORT}"),
                Some((name, port)) if !name.is_empty() && valid_port(port) => host.to_owned(),
                Some(_) => {
                    return Err(refuse(
                        "expected udp:HOST:PORT with a port from 1 to 65535 (IPv6 goes in \
                         brackets: udp:[::1]:514)",
                    ));
                }
            },
        };
        Ok(Self::Udp(with_port))
    }
}

impl fmt::Display for SyslogTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unix(path) => write!(f, "unix:{}", path.display()),
            Self::Udp(host_port) => write!(f, "udp:{host_port}"),
        }
    }
}

/// An open syslog socket.
pub struct SyslogSender {
    socket: Socket,
    hostname: String,
    pid: u32,
    target: String,
    warned: bool,
}

enum Socket {
    Unix(UnixDatagram, PathBuf),
    Udp(UdpSocket, SocketAddr),
}

impl SyslogSender {
    /// Opens a non-blocking socket toward `target` (a UDP host is resolved now).
    pub fn open(target: &SyslogTarget) -> Result<Self, AuditError> {
        let refuse = |detail: String| AuditError::SyslogTarget {
            target: target.to_string(),
            detail,
        };
        let socket = match target {
            SyslogTarget::Unix(path) => {
                let socket = UnixDatagram::unbound().map_err(|err| refuse(err.to_string()))?;
                socket
                    .set_nonblocking(true)
                    .map_err(|err| refuse(err.to_string()))?;
                Socket::Unix(socket, path.clone())
            }
            SyslogTarget::Udp(host_port) => {
                let addr = host_port
                    .to_socket_addrs()
                    .map_err(|err| refuse(err.to_string()))?
                    .next()
                    .ok_or_else(|| refuse("resolves to no address".to_owned()))?;
                let local: SocketAddr = if addr.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    ([0u16; 8], 0).into()
                };
                let socket = UdpSocket::bind(local).map_err(|err| refuse(err.to_string()))?;
                socket
                    .set_nonblocking(true)
                    .map_err(|err| refuse(err.to_string()))?;
                Socket::Udp(socket, addr)
            }
        };
        let hostname = nix::unistd::gethostname()
            .ok()
            .and_then(|name| name.into_string().ok())
            .filter(|name| !name.is_empty() && name.is_ascii() && !name.contains(' '))
            .unwrap_or_else(|| "-".to_owned());
        Ok(Self {
            socket,
            hostname,
            pid: std::process::id(),
            target: target.to_string(),
            warned: false,
        })
    }

    /// Sends one audit line; a failure is logged once and otherwise ignored.
    pub fn send(&mut self, kind: EventKind, time: &str, line: &str) {
        let message = format_message(kind, time, &self.hostname, self.pid, line);
        let sent = match &self.socket {
            Socket::Unix(socket, path) => socket.send_to(message.as_bytes(), path).map(drop),
            Socket::Udp(socket, addr) => socket.send_to(message.as_bytes(), addr).map(drop),
        };
        if let Err(err) = sent
            && !self.warned
        {
            self.warned = true;
            tracing::warn!(
                "syslog {}: {err}; audit lines that cannot be sent are dropped (the audit log \
                 itself is unaffected)",
                self.target
            );
        }
    }
}

/// One RFC 5424 message: `<PRI>1 TIME HOST seashell PID EVENT - LINE`. Events the log lost
/// are an error (severity 3), refusals warnings (4), everything else informational (6), all
/// in the `authpriv` facility.
pub fn format_message(kind: EventKind, time: &str, hostname: &str, pid: u32, line: &str) -> String {
    let severity = match kind {
        EventKind::Lost => 3,
        EventKind::AuthFail | EventKind::Denied => 4,
        _ => 6,
    };
    let priority = u16::from(FACILITY) * 8 + severity;
    format!(
        "<{priority}>1 {time} {hostname} seashell {pid} {} - {line}",
        kind.as_str()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        assert_eq!(
            "unix:/dev/log".parse::<SyslogTarget>().unwrap(),
            SyslogTarget::Unix("/dev/log".into())
        );
        assert_eq!(
            "udp:logs.lan".parse::<SyslogTarget>().unwrap(),
            SyslogTarget::Udp("logs.lan:514".into())
        );
        assert_eq!(
            "udp:10.0.0.1:1514".parse::<SyslogTarget>().unwrap(),
            SyslogTarget::Udp("10.0.0.1:1514".into())
        );
        assert_eq!(
            "udp:[::1]:514".parse::<SyslogTarget>().unwrap(),
            SyslogTarget::Udp("[::1]:514".into())
        );
        assert_eq!(
            "udp:[::1]".parse::<SyslogTarget>().unwrap(),
            SyslogTarget::Udp("[::1]:514".into())
        );
        for bad in [
            "",
            "tcp:host:514",
            "udp:",
            "unix:",
            "udp:::1",
            "udp:host:99999",
        ] {
            let err = bad.parse::<SyslogTarget>().unwrap_err().to_string();
            assert!(err.contains("syslog target"), "{bad}: {err}");
        }
    }

    #[test]
    fn messages_are_rfc5424() {
        let msg = format_message(
            EventKind::AuthFail,
            "2025-06-01T12:00:00.000Z",
            "box",
            42,
            "{\"seq\":1}",
        );
        assert_eq!(
            msg,
            "<84>1 2025-06-01T12:00:00.000Z box seashell 42 auth_fail - {\"seq\":1}"
        );
        assert!(format_message(EventKind::Command, "t", "h", 1, "x").starts_with("<86>1 "));
        assert!(format_message(EventKind::Lost, "t", "h", 1, "x").starts_with("<83>1 "));
    }
}
