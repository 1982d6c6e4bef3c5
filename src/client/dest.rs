//! Where to connect: `host`, `host:port`, `[v6]` or `[v6]:port` (default port 7022), and the
//! canonical `host:port` known_hosts records it under.

use crate::proto::DEFAULT_PORT;

/// A parsed destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// Host name or address, without brackets.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

/// Why a destination could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not a destination: use host, host:port, or [ipv6]:port")]
pub struct BadDestination(pub String);

impl Destination {
    /// Parses DEST; `port` (from `-p`) wins over a port in DEST.
    pub fn parse(text: &str, port: Option<u16>) -> Result<Self, BadDestination> {
        let (host, dest_port) = Self::split(text)?;
        Ok(Self {
            host,
            port: port.or(dest_port).unwrap_or(DEFAULT_PORT),
        })
    }

    /// DEST's host (without brackets) and its port, if it has one.
    pub fn split(text: &str) -> Result<(String, Option<u16>), BadDestination> {
        let bad = || BadDestination(text.to_owned());
        let (host, dest_port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or_else(bad)?;
            host.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
            match after {
                "" => (host, None),
                p => (host, Some(p.strip_prefix(':').ok_or_else(bad)?)),
            }
        } else {
            match text.split_once(':') {
                Some((host, p)) if !p.contains(':') => (host, Some(p)),
                Some(_) => return Err(bad()),
                None => (text, None),
            }
        };
        if host.is_empty() || host.starts_with('-') {
            return Err(bad());
        }
        let dest_port = dest_port
            .map(|p| p.parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(bad))
            .transpose()?;
        Ok((host.to_owned(), dest_port))
    }

    /// `host:port`, with an IPv6 host in brackets: the known_hosts key and the connect target.
    pub fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let d = |h: &str, p: u16| Destination {
            host: h.into(),
            port: p,
        };
        assert_eq!(Destination::parse("box", None), Ok(d("box", 7022)));
        assert_eq!(Destination::parse("box:2200", None), Ok(d("box", 2200)));
        assert_eq!(Destination::parse("box:2200", Some(9)), Ok(d("box", 9)));
        assert_eq!(Destination::parse("[::1]:8", None), Ok(d("::1", 8)));
        assert_eq!(Destination::parse("[::1]", None), Ok(d("::1", 7022)));
        assert_eq!(
            Destination::parse("[::1]:8", None).unwrap().host_port(),
            "[::1]:8"
        );
        for bad in [
            "", ":1", "box:", "box:0", "box:x", "::1", "[::1", "[zz]:1", "-oProxy",
        ] {
            assert!(Destination::parse(bad, None).is_err(), "{bad}");
        }
    }
}
