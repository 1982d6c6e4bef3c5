//! IP networks as written in an authorized_keys `from=` option: `192.168.1.0/24`, `fd00::/8`,
//! or a bare address meaning that one host. Parsing is total and strict (no host bits set, no
//! host names, no zone ids); matching treats an IPv4-mapped IPv6 peer address (`::ffff:a.b.c.d`,
//! as a dual-stack socket reports it) as the IPv4 address it carries.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IPv4 or IPv6 network: an address with its host bits clear, and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// Why a `from=` network did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CidrError {
    /// The part before `/` is not an IP address.
    #[error("`{0}` is not an IP address or network such as 192.168.1.0/24 or fd00::/8")]
    BadAddress(String),
    /// The prefix length is not a number within the address family's width.
    #[error("`{text}`: the prefix length must be a number from 0 to {max}")]
    BadPrefix {
        /// The network as written.
        text: String,
        /// 32 for IPv4, 128 for IPv6.
        max: u8,
    },
    /// Address bits beyond the prefix are set, so the network is ambiguous.
    #[error("`{text}` has host bits set: did you mean {suggestion}?")]
    HostBitsSet {
        /// The network as written.
        text: String,
        /// The same network with its host bits cleared.
        suggestion: String,
    },
}

impl Cidr {
    /// The network address.
    pub fn network(&self) -> IpAddr {
        self.network
    }

    /// The prefix length in bits.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// True if `addr` lies in this network.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 @ IpAddr::V4(_) => v4,
        };
        match (self.network, addr) {
            (IpAddr::V4(net), IpAddr::V4(addr)) => {
                u32::from(addr) & mask_v4(self.prefix) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(addr)) => {
                u128::from(addr) & mask_v6(self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (addr_text, prefix_text) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr =
            IpAddr::from_str(addr_text).map_err(|_| CidrError::BadAddress(addr_text.to_owned()))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix_text {
            None => max,
            Some(digits) => parse_prefix(digits, max).ok_or_else(|| CidrError::BadPrefix {
                text: text.to_owned(),
                max,
            })?,
        };
        let network = match addr {
            IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask_v4(prefix))),
            IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask_v6(prefix))),
        };
        if network != addr {
            return Err(CidrError::HostBitsSet {
                text: text.to_owned(),
                suggestion: format!("{network}/{prefix}"),
            });
        }
        Ok(Self { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// A decimal prefix length no larger than `max` (digits only: no sign, no spaces).
fn parse_prefix(digits: &str, max: u8) -> Option<u8> {
    if digits.is_empty() || digits.len() > 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u8>().ok().filter(|&prefix| prefix <= max)
}

fn mask_v4(prefix: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .unwrap_or(0)
}

fn mask_v6(prefix: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(prefix.min(128)))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ipv4_networks_contain_their_hosts_only() {
        let net: Cidr = "192.168.1.0/24".parse().unwrap();
        assert!(net.contains(ip("192.168.1.0")));
        assert!(net.contains(ip("192.168.1.255")));
        assert!(!net.contains(ip("192.168.2.1")));
        assert!(!net.contains(ip("fd00::1")));
        assert_eq!(net.to_string(), "192.168.1.0/24");
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_networks() {
        let net: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains(ip("::ffff:10.1.2.3")));
        assert!(!net.contains(ip("::ffff:11.1.2.3")));
    }

    #[test]
    fn ipv6_networks_and_bare_addresses() {
        let net: Cidr = "fd00::/8".parse().unwrap();
        assert!(net.contains(ip("fd12:3456::1")));
        assert!(!net.contains(ip("fe80::1")));
        assert!(!net.contains(ip("10.0.0.1")));

        let host: Cidr = "::1".parse().unwrap();
        assert_eq!(host.prefix(), 128);
        assert!(host.contains(ip("::1")));
        assert!(!host.contains(ip("::2")));

        let host: Cidr = "10.0.0.7".parse().unwrap();
        assert_eq!(host.prefix(), 32);
        assert!(host.contains(ip("10.0.0.7")));
    }

    #[test]
    fn zero_prefix_matches_the_whole_family() {
        let any4: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(any4.contains(ip("203.0.113.9")));
        assert!(!any4.contains(ip("2001:db8::1")));
        let any6: Cidr = "::/0".parse().unwrap();
        assert!(any6.contains(ip("2001:db8::1")));
    }

    #[test]
    fn rejects_malformed_networks() {
        for bad in [
            "",
            "/24",
            "10.0.0.0/",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/+8",
            "10.0.0.0/ 8",
            "10.0.0.0/0008",
            "host.example",
            "10.0.0",
            "[::1]",
            "fe80::1%eth0",
            "10.0.0.0/8/8",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn host_bits_set_suggests_the_network() {
        let err = "192.168.1.5/24".parse::<Cidr>().unwrap_err();
        assert_eq!(
            err,
            CidrError::HostBitsSet {
                text: "192.168.1.5/24".into(),
                suggestion: "192.168.1.0/24".into()
            }
        );
    }

    proptest! {
        #[test]
        fn parsing_never_panics(text in "\\PC{0,40}") {
            let _ = text.parse::<Cidr>();
        }

        #[test]
        fn a_network_contains_itself(addr in any::<u32>(), prefix in 0u8..=32) {
            let network = Ipv4Addr::from(addr & mask_v4(prefix));
            let cidr: Cidr = format!("{network}/{prefix}").parse().unwrap();
            prop_assert!(cidr.contains(IpAddr::V4(network)));
            prop_assert!(cidr.contains(IpAddr::V4(Ipv4Addr::from(addr))));
        }
    }
}
