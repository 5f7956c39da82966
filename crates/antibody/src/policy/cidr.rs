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
        PRIVATE
            .iter()
            .filter_map(|range| Cidr::parse(range))
            .any(|private| self.within(&private))
    }

    /// The first and last address, as numbers (IPv4 in the low 32 bits).
    fn bounds(&self) -> (u128, u128) {
        match self.address {
            std::net::IpAddr::V4(address) => {
                let start = u32::from(address) & mask32(self.prefix);
                (u128::from(start), u128::from(start | !mask32(self.prefix)))
            }
            std::net::IpAddr::V6(address) => {
                let start = u128::from(address) & mask128(self.prefix);
                (start, start | !mask128(self.prefix))
            }
        }
    }
}

/// Space that is not the public internet: RFC 1918, CGNAT, loopback, link-local, unique-local, and Google's own
/// load-balancer and IAP ranges (how Google reaches backends).
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

/// The public addresses a set of source ranges covers together, per family: overlaps counted once, private space
/// (`PRIVATE`) left out, saturating at `u128::MAX` for IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coverage {
    pub v4: u128,
    pub v6: u128,
}

/// Counts the public addresses `ranges` cover together. Unparseable text adds nothing (`is_broad` flags it).
pub fn public_coverage<'a>(ranges: impl IntoIterator<Item = &'a str>) -> Coverage {
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    for cidr in ranges.into_iter().filter_map(Cidr::parse) {
        match cidr.address {
            std::net::IpAddr::V4(_) => v4.push(cidr.bounds()),
            std::net::IpAddr::V6(_) => v6.push(cidr.bounds()),
        }
    }
    let private = |v4_family: bool| -> Vec<(u128, u128)> {
        PRIVATE
            .iter()
            .filter_map(|range| Cidr::parse(range))
            .filter(|cidr| cidr.address.is_ipv4() == v4_family)
            .map(|cidr| cidr.bounds())
            .collect()
    };
    Coverage {
        v4: size(&subtract(&merge(v4), &merge(private(true)))),
        v6: size(&subtract(&merge(v6), &merge(private(false)))),
    }
}

/// Whether ranges that are each narrower than the threshold still cover (almost) everyone together: at least as
/// many public addresses as a block of the threshold's size holds (for a block as large as the whole family, as
/// many as the whole family's public space).
pub fn together_broad<'a>(
    ranges: impl IntoIterator<Item = &'a str>,
    max_prefix_v4: u8,
    max_prefix_v6: u8,
) -> bool {
    let coverage = public_coverage(ranges);
    let whole = public_coverage(["0.0.0.0/0", "::/0"]);
    let block = |bits: u32, prefix: u8| -> u128 {
        let free = bits.saturating_sub(u32::from(prefix));
        if free >= 128 {
            u128::MAX
        } else {
            1u128 << free
        }
    };
    (coverage.v4 > 0 && coverage.v4 >= block(32, max_prefix_v4).min(whole.v4))
        || (coverage.v6 > 0 && coverage.v6 >= block(128, max_prefix_v6).min(whole.v6))
}

/// Sorted, overlapping or touching intervals joined.
fn merge(mut intervals: Vec<(u128, u128)>) -> Vec<(u128, u128)> {
    intervals.sort_unstable();
    let mut merged: Vec<(u128, u128)> = Vec::with_capacity(intervals.len());
    for (start, end) in intervals {
        match merged.last_mut() {
            Some(last) if start <= last.1.saturating_add(1) => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

/// `from` without `holes` (both merged).
fn subtract(from: &[(u128, u128)], holes: &[(u128, u128)]) -> Vec<(u128, u128)> {
    let mut out = Vec::new();
    for &(mut start, end) in from {
        let mut open = true;
        for &(hole_start, hole_end) in holes {
            if hole_end < start || hole_start > end {
                continue;
            }
            if hole_start > start {
                out.push((start, hole_start - 1));
            }
            if hole_end >= end {
                open = false;
                break;
            }
            start = hole_end + 1;
        }
        if open {
            out.push((start, end));
        }
    }
    out
}

fn size(intervals: &[(u128, u128)]) -> u128 {
    intervals.iter().fold(0u128, |total, (start, end)| {
        total.saturating_add((end - start).saturating_add(1))
    })
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

    // Issue 17, item 2: ranges judged one at a time let 512 /9s (all of IPv4) through on tcp/22.
    #[test]
    fn split_ranges_are_judged_together() {
        let nines: Vec<String> = (0..512u32)
            .map(|index| format!("{}.{}.0.0/9", index / 2, (index % 2) * 128))
            .collect();
        assert!(together_broad(nines.iter().map(String::as_str), 8, 16));
        let halves = ["0.0.0.0/1", "128.0.0.0/1"];
        assert!(together_broad(halves, 8, 16));
        assert!(
            together_broad(halves, 0, 0),
            "the two halves are the whole internet"
        );
        let sixteens: Vec<String> = (0..256).map(|index| format!("11.{index}.0.0/16")).collect();
        assert!(together_broad(sixteens.iter().map(String::as_str), 8, 16));
        assert!(!together_broad(
            sixteens[..255].iter().map(String::as_str),
            8,
            16
        ));
        // Overlaps count once; private space does not count.
        let overlapping = ["11.0.0.0/9", "11.0.0.0/9", "11.0.0.0/10"];
        assert!(!together_broad(overlapping, 8, 16));
        let private = [
            "10.0.0.0/9",
            "10.128.0.0/9",
            "172.16.0.0/12",
            "192.168.0.0/16",
        ];
        assert!(!together_broad(private, 8, 16));
        assert!(!together_broad(["203.0.113.0/24", "1.1.1.1"], 8, 16));
        let v6: Vec<String> = (0..256)
            .map(|index| format!("2001:{index:x}00::/24"))
            .collect();
        assert!(together_broad(v6.iter().map(String::as_str), 8, 16));
    }

    #[test]
    fn coverage_counts_public_addresses_once() {
        assert_eq!(public_coverage(["11.0.0.0/8", "11.0.0.0/9"]).v4, 1 << 24);
        assert_eq!(public_coverage(["10.0.0.0/8"]).v4, 0);
        assert_eq!(public_coverage(["1.1.1.1", "1.1.1.1/32"]).v4, 1);
        assert_eq!(
            public_coverage(["::/0"]).v6,
            u128::MAX - (1u128 << 121) - (1u128 << 118) - 1 + 1
        );
    }
}
