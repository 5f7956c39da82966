//! Source ranges: tolerant CIDR parsing and the question "is this (almost) everyone?".

use std::net::IpAddr;

/// A parsed range; a bare address (`"1.1.1.1"`, as Compute returns it) is a /32 or /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub address: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Option<Cidr> {
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (
                address.parse::<IpAddr>().ok()?,
                Some(prefix.parse::<u8>().ok()?),
            ),
            None => (text.parse::<IpAddr>().ok()?, None),
        };
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Cidr { address, prefix })
    }

    /// Whether every address of `self` lies inside `outer`.
    pub fn within(&self, outer: &Cidr) -> bool {
        if self.prefix < outer.prefix {
            return false;
        }
        match (self.address, outer.address) {
            (IpAddr::V4(inner), IpAddr::V4(outer_address)) => {
                let mask = mask32(outer.prefix);
                u32::from(inner) & mask == u32::from(outer_address) & mask
            }
            (IpAddr::V6(inner), IpAddr::V6(outer_address)) => {
                let mask = mask128(outer.prefix);
                u128::from(inner) & mask == u128::from(outer_address) & mask
            }
            _ => false,
        }
    }

    fn is_private(&self) -> bool {
        const PRIVATE: &[&str] = &[
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "100.64.0.0/10",
            "127.0.0.0/8",
            "169.254.0.0/16",
            "35.191.0.0/16",
            "130.211.0.0/22",
            "35.235.240.0/20",
            "fc00::/7",
            "fe80::/10",
            "::1/128",
        ];
        PRIVATE
            .iter()
            .filter_map(|range| Cidr::parse(range))
            .any(|private| self.within(&private))
    }
}

fn mask32(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

fn mask128(prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix))
    }
}

/// Whether a source range opens a rule to (almost) everyone: any prefix at or below the threshold that is not
/// private space. Unparseable text counts as broad, since we cannot show it is narrow.
/// Google's own load-balancer and IAP ranges count as private: they are how Google reaches backends.
pub fn is_broad(text: &str, max_prefix_v4: u8, max_prefix_v6: u8) -> bool {
    match Cidr::parse(text) {
        Some(cidr) => {
            let threshold = if cidr.address.is_ipv4() {
                max_prefix_v4
            } else {
                max_prefix_v6
            };
            cidr.prefix <= threshold && !cidr.is_private()
        }
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broad_ranges() {
        let cases = [
            ("0.0.0.0/0", true),
            ("::/0", true),
            ("0.0.0.0/1", true),
            ("128.0.0.0/1", true),
            ("11.0.0.0/8", true),
            ("2000::/3", true),
            ("10.0.0.0/8", false),
            ("172.16.0.0/12", false),
            ("11.0.0.0/9", false),
            ("1.1.1.1", false),
            ("203.0.113.0/24", false),
            ("fc00::/7", false),
            ("35.235.240.0/20", false),
            ("garbage", true),
        ];
        for (text, expected) in cases {
            assert_eq!(is_broad(text, 8, 16), expected, "{text}");
        }
    }

    #[test]
    fn a_zero_threshold_flags_only_the_whole_internet() {
        assert!(is_broad("0.0.0.0/0", 0, 0));
        assert!(!is_broad("0.0.0.0/1", 0, 0));
    }

    #[test]
    fn bare_addresses_are_host_routes() {
        assert_eq!(Cidr::parse("1.1.1.1").map(|cidr| cidr.prefix), Some(32));
        assert_eq!(
            Cidr::parse("2001:db8::1").map(|cidr| cidr.prefix),
            Some(128)
        );
        assert_eq!(Cidr::parse("1.1.1.1/33"), None);
    }
}
