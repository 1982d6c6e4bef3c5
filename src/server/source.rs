//! Where a connection comes from, as admission and penalties count it: an IPv4 address, or
//! the /64 an IPv6 address is in (one host's share of a LAN segment, as sshd's
//! PerSourceNetBlockSize counts it), so that an attacker holding a /64 counts once. An
//! IPv4-mapped IPv6 address is its IPv4 address. Pure; it never resolves or looks anything up.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

/// A connection's source, for limits and penalties.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// One IPv4 address.
    V4([u8; 4]),
    /// The first 64 bits of an IPv6 address.
    V6Net(u64),
}

impl Source {
    /// The source `addr` belongs to.
    pub fn of(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(v4) => Self::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::V4(v4.octets()),
                None => Self::V6Net((v6.to_bits() >> 64) as u64),
            },
        }
    }
}

impl fmt::Display for Source {
    /// `192.0.2.7`, or `2001:db8:1:2::/64`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::V4(octets) => write!(f, "{}", std::net::Ipv4Addr::from(octets)),
            Self::V6Net(net) => write!(f, "{}/64", Ipv6Addr::from_bits(u128::from(net) << 64)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(addr: &str) -> Source {
        Source::of(addr.parse().unwrap())
    }

    #[test]
    fn ipv4_is_one_address_and_ipv6_its_64() {
        assert_eq!(source("192.0.2.7").to_string(), "192.0.2.7");
        assert_ne!(source("192.0.2.7"), source("192.0.2.8"));
        assert_eq!(source("::ffff:192.0.2.7"), source("192.0.2.7"));
        assert_eq!(source("2001:db8:1:2::1"), source("2001:db8:1:2:ffff::9"));
        assert_ne!(source("2001:db8:1:2::1"), source("2001:db8:1:3::1"));
        assert_eq!(
            source("2001:db8:1:2:3:4:5:6").to_string(),
            "2001:db8:1:2::/64"
        );
        assert_eq!(source("::1").to_string(), "::/64");
    }
}
