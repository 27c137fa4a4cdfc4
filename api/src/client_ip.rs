//! The client's address, as events record it: the socket's peer, unless
//! the peer is a proxy the deployment trusts (`LEDGER_TRUSTED_PROXIES`);
//! then the right-most address in `X-Forwarded-For` that is not one of
//! those proxies. A header from anyone else changes nothing, so a client
//! cannot choose the address its attempts are recorded (or throttled) by.

use std::net::{IpAddr, SocketAddr};

/// The proxies whose `X-Forwarded-For` is believed: addresses and networks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Network>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Network {
    address: IpAddr,
    prefix: u8,
}

impl Network {
    fn contains(&self, ip: IpAddr) -> bool {
        match (self.address, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl TrustedProxies {
    /// How many addresses or networks are trusted.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Parses `10.0.0.0/8, 192.0.2.7, fd00::/8`: addresses and networks,
    /// comma-separated; empty trusts none.
    pub fn parse(spec: &str) -> Result<TrustedProxies, String> {
        spec.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|entry| {
                let (address, prefix) = entry.split_once('/').unwrap_or((entry, ""));
                let address: IpAddr = address.trim().parse().map_err(|_| format!("{entry:?} is not an IP address or network"))?;
                let address = address.to_canonical();
                let full = if address.is_ipv4() { 32 } else { 128 };
                let prefix = match prefix.trim() {
                    "" => full,
                    p => p.parse::<u8>().ok().filter(|p| *p <= full).ok_or_else(|| format!("{entry:?}: the prefix must be 0 to {full}"))?,
                };
                Ok(Network { address, prefix })
            })
            .collect::<Result<Vec<_>, String>>()
            .map(TrustedProxies)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }

    /// The client of a request from `peer` carrying the `X-Forwarded-For`
    /// values `forwarded_for` (in header order): walking from the peer
    /// towards the client, the first hop that is not a trusted proxy. An
    /// entry that is not an address stops the walk at the last trusted
    /// hop; when every hop is trusted, the left-most is the client.
    pub fn client<'a>(&self, peer: IpAddr, forwarded_for: impl Iterator<Item = &'a str>) -> IpAddr {
        let mut current = peer.to_canonical();
        if !self.trusts(current) {
            return current;
        }
        let hops: Vec<&str> = forwarded_for.flat_map(|v| v.split(',')).map(str::trim).collect();
        for hop in hops.into_iter().rev() {
            let Some(ip) = hop_address(hop) else { return current };
            current = ip;
            if !self.trusts(current) {
                return current;
            }
        }
        current
    }
}

/// The client of a request: the peer its connection came from, through
/// the trusted proxies' `X-Forwarded-For` (read byte by byte: a client's
/// own garbage to the left of what the proxy appended does not hide it).
pub fn client_of(proxies: &TrustedProxies, extensions: &axum::http::Extensions, headers: &axum::http::HeaderMap) -> Option<IpAddr> {
    let peer = extensions.get::<axum::extract::ConnectInfo<SocketAddr>>()?.0.ip();
    let values: Vec<String> =
        headers.get_all("x-forwarded-for").into_iter().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect();
    Some(proxies.client(peer, values.iter().map(String::as_str)))
}

/// An address as proxies write it: bare, or with a port (`[v6]:port`).
fn hop_address(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>().ok().or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip())).map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_header_changes_nothing() {
        let none = TrustedProxies::default();
        assert_eq!(none.client(ip("198.51.100.1"), ["203.0.113.9"].into_iter()), ip("198.51.100.1"));
        let proxies = TrustedProxies::parse("10.0.0.0/8").unwrap();
        assert_eq!(proxies.client(ip("198.51.100.1"), ["203.0.113.9"].into_iter()), ip("198.51.100.1"), "not from a proxy");
    }

    #[test]
    fn through_trusted_proxies_the_right_most_untrusted_hop_is_the_client() {
        let proxies = TrustedProxies::parse(" 10.0.0.0/8, 192.0.2.7 ,fd00::/8").unwrap();
        // The client forged a first entry; the proxies appended the truth.
        let header = ["1.1.1.1, 203.0.113.9", "10.1.2.3"];
        assert_eq!(proxies.client(ip("192.0.2.7"), header.into_iter()), ip("203.0.113.9"));
        assert_eq!(proxies.client(ip("::ffff:10.0.0.1"), ["203.0.113.9:4711"].into_iter()), ip("203.0.113.9"));
        assert_eq!(proxies.client(ip("fd00::1"), ["[2001:db8::5]:443"].into_iter()), ip("2001:db8::5"));
        assert_eq!(proxies.client(ip("10.0.0.1"), ["garbage, 10.0.0.2"].into_iter()), ip("10.0.0.2"), "stops at the last trusted hop");
        assert_eq!(proxies.client(ip("10.0.0.1"), std::iter::empty()), ip("10.0.0.1"));
    }

    #[test]
    fn a_wrong_entry_is_named() {
        assert!(TrustedProxies::parse("10.0.0.0/33").unwrap_err().contains("0 to 32"));
        assert!(TrustedProxies::parse("proxy.internal").unwrap_err().contains("proxy.internal"));
        assert!(TrustedProxies::parse("").unwrap().is_empty());
    }
}
