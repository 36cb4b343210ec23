//! The client's address behind trusted proxies.
//!
//! `X-Forwarded-For` is a list each proxy appends its peer to, so only its right end can be
//! believed, and only as far as proxies we trust wrote it. The client's address is found by
//! walking the header from the right: while the address in hand (first the TCP peer) is a
//! trusted proxy, the next entry to the left is what that proxy saw; the first address that is
//! not a trusted proxy is the client. Entries to its left were written by the client (or by
//! proxies nobody vouches for) and are ignored. A peer that is not a trusted proxy is the
//! client, whatever headers it sends.

use std::net::{IpAddr, SocketAddr};

/// An IP network, `address/prefix-length` (a bare address is a single host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Option<Self> {
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text.trim(), None),
        };
        let network: IpAddr = addr.parse().ok()?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p.parse().ok()?,
            Some(_) => return None,
            None => max,
        };
        (prefix <= max).then_some(Self { network, prefix })
    }

    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = canonical(addr);
        match (self.network, addr) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// IPv4-mapped IPv6 addresses as IPv4.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5678`,
/// `[2001:db8::1]:443`), possibly in brackets or quotes.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim().trim_matches('"');
    if let Ok(addr) = entry.parse::<IpAddr>() {
        return Some(canonical(addr));
    }
    if let Ok(socket) = entry.parse::<SocketAddr>() {
        return Some(canonical(socket.ip()));
    }
    entry
        .strip_prefix('[')
        .and_then(|e| e.strip_suffix(']'))
        .and_then(|e| e.parse::<IpAddr>().ok())
        .map(canonical)
}

/// The proxies whose `X-Forwarded-For` entries are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    networks: Vec<Cidr>,
}

impl TrustedProxies {
    pub fn new(networks: Vec<Cidr>) -> Self {
        Self { networks }
    }

    fn trusts(&self, addr: IpAddr) -> bool {
        self.networks.iter().any(|net| net.contains(addr))
    }

    /// The client's address: `peer` if it is not a trusted proxy, else found by walking
    /// `forwarded` (the `X-Forwarded-For` header lines, in order) from the right (see the
    /// module comment). If every entry is a trusted proxy, the leftmost one; if an entry cannot
    /// be read, the proxy that wrote it.
    pub fn client_address<'a>(
        &self,
        peer: Option<IpAddr>,
        forwarded: impl DoubleEndedIterator<Item = &'a str>,
    ) -> Option<IpAddr> {
        let mut current = canonical(peer?);
        if self.networks.is_empty() {
            return Some(current);
        }
        let entries = forwarded.rev().flat_map(|line| line.rsplit(','));
        for entry in entries {
            if !self.trusts(current) {
                break;
            }
            match parse_entry(entry) {
                Some(addr) => current = addr,
                None => break,
            }
        }
        Some(current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn proxies(nets: &[&str]) -> TrustedProxies {
        TrustedProxies::new(nets.iter().map(|n| Cidr::parse(n).unwrap()).collect())
    }

    #[test]
    fn cidrs_parse_and_match() {
        let net = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(net.contains(ip("10.1.200.3")));
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(net.contains(ip("::ffff:10.1.0.9")), "mapped IPv4");
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(Cidr::parse("fd00::/8").unwrap().contains(ip("fd12::1")));
        assert!(!Cidr::parse("fd00::/8").unwrap().contains(ip("10.0.0.1")));
        assert!(Cidr::parse("192.0.2.7").unwrap().contains(ip("192.0.2.7")));
        for bad in [
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0/8",
            "::/129",
            "x",
            "10.0.0.0/+8",
        ] {
            assert!(Cidr::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let p = proxies(&["10.0.0.0/8"]);
        let got = p.client_address(Some(ip("192.0.2.1")), ["203.0.113.9"].into_iter());
        assert_eq!(got, Some(ip("192.0.2.1")));
        // No trusted proxies configured: the header is never read.
        let none = TrustedProxies::default();
        let got = none.client_address(Some(ip("10.0.0.1")), ["203.0.113.9"].into_iter());
        assert_eq!(got, Some(ip("10.0.0.1")));
    }

    #[test]
    fn the_header_is_walked_from_the_right_past_trusted_proxies_only() {
        let p = proxies(&["10.0.0.0/8"]);
        // client-chosen, real client, inner proxy; peer: the outer proxy.
        let header = ["198.51.100.66, 203.0.113.9, 10.0.0.5"];
        let got = p.client_address(Some(ip("10.0.0.1")), header.into_iter());
        assert_eq!(
            got,
            Some(ip("203.0.113.9")),
            "not the spoofed leftmost entry"
        );
        // Several header lines count as one list, in order.
        let lines = ["198.51.100.66", "203.0.113.9", "10.0.0.5"];
        let got = p.client_address(Some(ip("10.0.0.1")), lines.into_iter());
        assert_eq!(got, Some(ip("203.0.113.9")));
        // Only proxies: the leftmost.
        let got = p.client_address(Some(ip("10.0.0.1")), ["10.0.0.7, 10.0.0.5"].into_iter());
        assert_eq!(got, Some(ip("10.0.0.7")));
        // No header: the proxy itself.
        let got = p.client_address(Some(ip("10.0.0.1")), std::iter::empty());
        assert_eq!(got, Some(ip("10.0.0.1")));
    }

    #[test]
    fn an_entry_with_a_port_is_parsed_not_skipped() {
        let p = proxies(&["10.0.0.0/8"]);
        let got = p.client_address(
            Some(ip("10.0.0.1")),
            ["198.51.100.66, 203.0.113.9:51234"].into_iter(),
        );
        assert_eq!(got, Some(ip("203.0.113.9")));
        let got = p.client_address(Some(ip("10.0.0.1")), ["[2001:db8::7]:443"].into_iter());
        assert_eq!(got, Some(ip("2001:db8::7")));
        // A trusted proxy with a port is still a trusted proxy: walk on past it.
        let got = p.client_address(
            Some(ip("10.0.0.1")),
            ["203.0.113.9, 10.0.0.5:8080"].into_iter(),
        );
        assert_eq!(got, Some(ip("203.0.113.9")));
    }

    #[test]
    fn an_unreadable_entry_stops_at_the_proxy_that_wrote_it() {
        let p = proxies(&["10.0.0.0/8"]);
        let got = p.client_address(Some(ip("10.0.0.1")), ["203.0.113.9, garbage"].into_iter());
        assert_eq!(got, Some(ip("10.0.0.1")));
    }
}
