//! `ipBlocks`, `remoteIpBlocks` and the `source.ip` / `remote.ip` / `destination.ip`
//! conditions: Envoy `CidrRange` matchers (Istio `util.AddrStrToCidrRange`: a bare address
//! is a /32 or /128, host bits may be set).

use std::net::IpAddr;

use super::index::ConfigMap;

/// One CIDR range, stored masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Cidr {
    v6: bool,
    /// The network address as a 128-bit number (IPv4 in the low 32 bits), host bits cleared.
    bits: u128,
    len: u8,
}

impl Cidr {
    /// Parses `10.1.2.3` or `10.1.0.0/16` like Go's `netip.ParseAddr` / `ParsePrefix`
    /// (plain decimal length, no sign or leading zeros), which Istio uses.
    pub(crate) fn parse(value: &str) -> Option<Cidr> {
        let (addr, len) = match value.split_once('/') {
            Some((addr, len)) => {
                if len.is_empty()
                    || !len.bytes().all(|b| b.is_ascii_digit())
                    || (len.len() > 1 && len.starts_with('0'))
                {
                    return None;
                }
                (addr.parse::<IpAddr>().ok()?, Some(len.parse::<u8>().ok()?))
            }
            // A single address as validation reads it (an IPv6 zone is dropped, as Istio does).
            None => (crate::policy::parse_ip_block(value).ok()?.addr(), None),
        };
        let (v6, max) = match addr {
            IpAddr::V4(_) => (false, 32),
            IpAddr::V6(_) => (true, 128),
        };
        let len = len.unwrap_or(max);
        if len > max {
            return None;
        }
        Some(Cidr {
            v6,
            bits: mask(to_bits(addr), v6, len),
            len,
        })
    }

    /// Envoy `CidrRange::isInRange`: an address of the other IP version never matches.
    #[inline]
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let v6 = ip.is_ipv6();
        v6 == self.v6 && mask(to_bits(ip), v6, self.len) == self.bits
    }
}

#[inline]
fn to_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

#[inline]
fn mask(bits: u128, v6: bool, len: u8) -> u128 {
    let width: u32 = if v6 { 128 } else { 32 };
    let host = width.saturating_sub(u32::from(len));
    if host >= 128 {
        0
    } else {
        (bits >> host) << host
    }
}

/// Rules indexed by CIDR: one hash lookup per distinct prefix length present, so lookups
/// stay flat however many ranges there are (at most 33 + 129 lengths).
#[derive(Debug, Default, Clone)]
pub(crate) struct CidrIndex {
    lens_v4: Vec<u8>,
    lens_v6: Vec<u8>,
    map: ConfigMap<Cidr, Vec<u32>>,
}

impl CidrIndex {
    pub(crate) fn insert(&mut self, cidr: Cidr, rule: u32) {
        let lens = if cidr.v6 {
            &mut self.lens_v6
        } else {
            &mut self.lens_v4
        };
        if !lens.contains(&cidr.len) {
            lens.push(cidr.len);
        }
        push_sorted(self.map.entry(cidr).or_default(), rule);
    }

    /// Calls `f` with the rule list of every range containing `ip`.
    pub(crate) fn for_each_candidate(&self, ip: IpAddr, mut f: impl FnMut(&[u32])) {
        let v6 = ip.is_ipv6();
        let lens = if v6 { &self.lens_v6 } else { &self.lens_v4 };
        let bits = to_bits(ip);
        for &len in lens {
            let key = Cidr {
                v6,
                bits: mask(bits, v6, len),
                len,
            };
            if let Some(rules) = self.map.get(&key) {
                f(rules);
            }
        }
    }
}

/// Keeps a rule list sorted and free of duplicates (rules are inserted in order, so this
/// is almost always a push).
pub(crate) fn push_sorted(list: &mut Vec<u32>, rule: u32) {
    match list.binary_search(&rule) {
        Ok(_) => {}
        Err(at) => list.insert(at, rule),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_contains() {
        let c = Cidr::parse("10.1.2.3/16").unwrap();
        assert!(c.contains("10.1.200.1".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        assert!(!c.contains("::ffff:10.1.0.1".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.1")
            .unwrap()
            .contains("10.0.0.1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("1.2.3.4".parse().unwrap()));
        assert!(Cidr::parse("::/0")
            .unwrap()
            .contains("::1".parse().unwrap()));
        for bad in [
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0.0/08",
            "x",
            "10.0.0.0/+8",
        ] {
            assert!(Cidr::parse(bad).is_none(), "{bad}");
        }
    }
}
