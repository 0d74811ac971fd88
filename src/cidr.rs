//! Address ranges in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`, a bare address as
//! `/32` or `/128`), for the config keys that name whom to trust: `[general]
//! trusted_proxies` today, an allow list for the metrics route later.
//!
//! Parsing is strict: an address with bits set past the prefix (`10.0.0.1/8`) is refused
//! with the range it probably meant, because a silently widened or narrowed range is a
//! security setting that does something else than it says.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// One address range: the network address (host bits zero) and the prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// Why a range did not parse: the entry as written and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CidrError {
    pub entry: String,
    pub problem: String,
}

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.entry, self.problem)
    }
}

impl std::error::Error for CidrError {}

impl Cidr {
    /// Whether `ip` lies in the range. An IPv4-mapped IPv6 address (`::ffff:10.1.2.3`,
    /// what a dual-stack listener reports for an IPv4 peer) counts as its IPv4 address,
    /// and an IPv4 address as its mapped form for an IPv6 range, so one range covers a
    /// client however the socket reports it.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => masked_v4(ip, self.prefix) == net,
            (IpAddr::V4(net), IpAddr::V6(ip)) => ip
                .to_ipv4_mapped()
                .is_some_and(|ip| masked_v4(ip, self.prefix) == net),
            (IpAddr::V6(net), IpAddr::V6(ip)) => masked_v6(ip, self.prefix) == net,
            (IpAddr::V6(net), IpAddr::V4(ip)) => masked_v6(ip.to_ipv6_mapped(), self.prefix) == net,
        }
    }
}

fn masked_v4(ip: Ipv4Addr, prefix: u8) -> Ipv4Addr {
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    Ipv4Addr::from(u32::from(ip) & mask)
}

fn masked_v6(ip: Ipv6Addr, prefix: u8) -> Ipv6Addr {
    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
    Ipv6Addr::from(u128::from(ip) & mask)
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(entry: &str) -> Result<Cidr, CidrError> {
        let error = |problem: String| CidrError {
            entry: entry.to_string(),
            problem,
        };
        let (address, prefix) = match entry.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (entry, None),
        };
        let address: IpAddr = address.parse().map_err(|_| {
            error("expected an IPv4 or IPv6 address, optionally with /prefix length".into())
        })?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                // Digits only: `u8::from_str` would take `+8`.
                Ok(n) if n <= max && p.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => return Err(error(format!("the prefix length must be 0 to {max}"))),
            },
        };
        let network = match address {
            IpAddr::V4(a) => IpAddr::V4(masked_v4(a, prefix)),
            IpAddr::V6(a) => IpAddr::V6(masked_v6(a, prefix)),
        };
        if network != address {
            return Err(error(format!(
                "bits are set past the /{prefix} prefix; the range is written {network}/{prefix}"
            )));
        }
        Ok(Cidr { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// A list of ranges as a config value writes it: entries separated by commas and/or
/// white space; empty means none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CidrList(Vec<Cidr>);

impl CidrList {
    /// Whether any range contains `ip` (never, for the empty list).
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn ranges(&self) -> &[Cidr] {
        &self.0
    }
}

impl FromStr for CidrList {
    type Err = CidrError;

    /// Fails on the first bad entry, naming it.
    fn from_str(text: &str) -> Result<CidrList, CidrError> {
        text.split(|c: char| c == ',' || c.is_whitespace())
            .filter(|entry| !entry.is_empty())
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map(CidrList)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn cidr(s: &str) -> Cidr {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn ipv4_ranges() {
        let net = cidr("10.1.0.0/16");
        assert!(net.contains(ip("10.1.0.0")));
        assert!(net.contains(ip("10.1.255.255")));
        assert!(!net.contains(ip("10.2.0.0")));
        assert!(!net.contains(ip("9.255.255.255")));
        assert!(cidr("0.0.0.0/0").contains(ip("203.0.113.9")));
        let one = cidr("127.0.0.1");
        assert_eq!(one.to_string(), "127.0.0.1/32");
        assert!(one.contains(ip("127.0.0.1")));
        assert!(!one.contains(ip("127.0.0.2")));
        assert!(cidr("127.0.0.0/8").contains(ip("127.0.0.2")));
    }

    #[test]
    fn ipv6_ranges() {
        let net = cidr("2001:db8::/32");
        assert!(net.contains(ip("2001:db8:ffff::1")));
        assert!(!net.contains(ip("2001:db9::1")));
        assert!(!net.contains(ip("10.0.0.1")));
        assert_eq!(cidr("::1").to_string(), "::1/128");
        assert!(cidr("::1").contains(ip("::1")));
        assert!(!cidr("::1").contains(ip("127.0.0.1")), "loopbacks differ");
        assert!(cidr("::/0").contains(ip("fe80::1")));
        assert!(cidr("fe80::/10").contains(ip("febf::1")));
        assert!(!cidr("fe80::/10").contains(ip("fec0::1")));
    }

    #[test]
    fn mapped_addresses_count_as_ipv4() {
        assert!(cidr("127.0.0.0/8").contains(ip("::ffff:127.0.0.1")));
        assert!(!cidr("127.0.0.0/8").contains(ip("::ffff:10.0.0.1")));
        assert!(!cidr("127.0.0.0/8").contains(ip("::1")));
        assert!(cidr("::ffff:0:0/96").contains(ip("192.0.2.1")));
    }

    #[test]
    fn bad_entries_are_named() {
        for (entry, problem) in [
            ("10.0.0.0/33", "the prefix length must be 0 to 32"),
            ("::/129", "the prefix length must be 0 to 128"),
            ("10.0.0.0/", "the prefix length must be 0 to 32"),
            ("10.0.0.0/+8", "the prefix length must be 0 to 32"),
            ("10.0.0.0/-1", "the prefix length must be 0 to 32"),
            ("10.0.0.0/8/8", "the prefix length must be 0 to 32"),
            ("10.0.0.1/8", "the range is written 10.0.0.0/8"),
            ("2001:db8::1/32", "the range is written 2001:db8::/32"),
            ("localhost", "expected an IPv4 or IPv6 address"),
            ("10.0.0", "expected an IPv4 or IPv6 address"),
            ("[::1]", "expected an IPv4 or IPv6 address"),
            ("/8", "expected an IPv4 or IPv6 address"),
        ] {
            let err = entry.parse::<Cidr>().unwrap_err();
            assert_eq!(err.entry, entry);
            assert!(err.problem.contains(problem), "{entry}: {err}");
            assert!(err.to_string().starts_with(&format!("{entry:?}: ")));
        }
    }

    #[test]
    fn lists() {
        let list: CidrList = "127.0.0.0/8, ::1\t10.0.0.0/8,,".parse().unwrap();
        assert_eq!(list.ranges().len(), 3);
        assert!(list.contains(ip("127.9.9.9")));
        assert!(list.contains(ip("::1")));
        assert!(list.contains(ip("10.3.2.1")));
        assert!(!list.contains(ip("192.0.2.1")));
        let empty: CidrList = " ".parse().unwrap();
        assert!(empty.is_empty());
        assert!(!empty.contains(ip("127.0.0.1")));
        let err = "127.0.0.0/8, 300.0.0.1".parse::<CidrList>().unwrap_err();
        assert_eq!(err.entry, "300.0.0.1");
    }
}
