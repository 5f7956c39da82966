//! Protocols and port ranges as firewall rules write them, and the default table of risky ports.

use serde::Serialize;

/// One row of the risky-port table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortRule {
    pub name: String,
    pub protocol: Protocol,
    pub range: PortRange,
}

/// An IP protocol as Compute spells it: by name or by number (`"6"` is tcp).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
    Icmp,
    /// Every protocol and every port.
    All,
    /// Anything else (esp, ah, ipip, numbers): carries no ports.
    Other,
}

impl Protocol {
    pub fn parse(text: &str) -> Option<Protocol> {
        let protocol = match text.to_ascii_lowercase().as_str() {
            "tcp" | "6" => Protocol::Tcp,
            "udp" | "17" => Protocol::Udp,
            "sctp" | "132" => Protocol::Sctp,
            "icmp" | "1" => Protocol::Icmp,
            "all" => Protocol::All,
            "" => return None,
            other if other.parse::<u8>().is_ok() => Protocol::Other,
            "esp" | "ah" | "ipip" => Protocol::Other,
            _ => return None,
        };
        Some(protocol)
    }

    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
            Protocol::Icmp => "icmp",
            Protocol::All => "all",
            Protocol::Other => "other",
        }
    }

    /// Whether a rule entry of this protocol can carry traffic of `target` (a port-bearing protocol).
    pub fn covers(self, target: Protocol) -> bool {
        self == Protocol::All || self == target
    }

    pub fn has_ports(self) -> bool {
        matches!(self, Protocol::Tcp | Protocol::Udp | Protocol::Sctp)
    }
}

/// An inclusive port range; a single port is a range of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct PortRange {
    pub low: u16,
    pub high: u16,
}

impl PortRange {
    pub const ALL: PortRange = PortRange {
        low: 0,
        high: 65535,
    };

    /// `"22"` or `"21-25"`, as Compute writes ports.
    pub fn parse(text: &str) -> Option<PortRange> {
        let text = text.trim();
        let (low, high) = match text.split_once('-') {
            Some((low, high)) => (low.trim().parse().ok()?, high.trim().parse().ok()?),
            None => {
                let port = text.parse().ok()?;
                (port, port)
            }
        };
        (low <= high).then_some(PortRange { low, high })
    }

    pub fn overlaps(self, other: PortRange) -> bool {
        self.low <= other.high && other.low <= self.high
    }

    /// The ports of `self` that are not in any of `holes`, as sorted disjoint ranges.
    pub fn subtract(self, holes: &[PortRange]) -> Vec<PortRange> {
        let mut holes: Vec<PortRange> = holes
            .iter()
            .copied()
            .filter(|hole| hole.overlaps(self))
            .collect();
        holes.sort();
        let mut remaining = Vec::new();
        let mut next = u32::from(self.low);
        for hole in holes {
            if u32::from(hole.low) > next {
                remaining.push(PortRange {
                    low: next as u16,
                    high: hole.low - 1,
                });
            }
            next = next.max(u32::from(hole.high) + 1);
        }
        if next <= u32::from(self.high) {
            remaining.push(PortRange {
                low: next as u16,
                high: self.high,
            });
        }
        remaining
    }
}

impl std::fmt::Display for PortRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.low == self.high {
            write!(f, "{}", self.low)
        } else {
            write!(f, "{}-{}", self.low, self.high)
        }
    }
}

/// A superset of Security Health Analytics' open-port detectors; HTTP only when asked for.
pub fn default_table(include_http: bool) -> Vec<PortRule> {
    const TABLE: &[(&str, &str, &str)] = &[
        ("SSH", "tcp", "22"),
        ("SSH", "sctp", "22"),
        ("RDP", "tcp", "3389"),
        ("RDP", "udp", "3389"),
        ("MySQL", "tcp", "3306"),
        ("PostgreSQL", "tcp", "5432"),
        ("PostgreSQL", "udp", "5432"),
        ("Redis", "tcp", "6379"),
        ("MongoDB", "tcp", "27017-27019"),
        ("Elasticsearch", "tcp", "9200"),
        ("Elasticsearch", "tcp", "9300"),
        ("Memcached", "tcp", "11211"),
        ("Memcached", "tcp", "11214-11215"),
        ("Memcached", "udp", "11211"),
        ("Memcached", "udp", "11214-11215"),
        ("Cassandra", "tcp", "7000-7001"),
        ("Cassandra", "tcp", "7199"),
        ("Cassandra", "tcp", "8888"),
        ("Cassandra", "tcp", "9042"),
        ("Cassandra", "tcp", "9160"),
        ("Cassandra", "tcp", "61620-61621"),
        ("Oracle DB", "tcp", "1521"),
        ("Oracle DB", "tcp", "2483-2484"),
        ("Oracle DB", "udp", "2483-2484"),
        ("SMB", "tcp", "445"),
        ("SMB", "udp", "445"),
        ("LDAP", "tcp", "389"),
        ("LDAP", "tcp", "636"),
        ("LDAP", "udp", "389"),
        ("NetBIOS", "tcp", "137-139"),
        ("NetBIOS", "udp", "137-139"),
        ("DNS", "tcp", "53"),
        ("DNS", "udp", "53"),
        ("FTP", "tcp", "20-21"),
        ("Telnet", "tcp", "23"),
        ("SMTP", "tcp", "25"),
        ("POP3", "tcp", "110"),
        ("CiscoSecure/WebSM", "tcp", "9090"),
        ("Docker API", "tcp", "2375-2376"),
        ("Kubernetes API", "tcp", "6443"),
        ("kubelet", "tcp", "10250"),
        ("VNC", "tcp", "5900"),
    ];
    let mut table: Vec<PortRule> = TABLE
        .iter()
        .map(|(name, protocol, ports)| PortRule {
            name: (*name).to_string(),
            protocol: Protocol::parse(protocol).expect("the table's protocols are valid"),
            range: PortRange::parse(ports).expect("the table's ports are valid"),
        })
        .collect();
    if include_http {
        table.push(PortRule {
            name: "HTTP".into(),
            protocol: Protocol::Tcp,
            range: PortRange { low: 80, high: 80 },
        });
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(text: &str) -> PortRange {
        PortRange::parse(text).expect(text)
    }

    #[test]
    fn port_specs_parse_like_compute_writes_them() {
        let cases = [
            ("22", Some((22, 22))),
            ("21-25", Some((21, 25))),
            ("0-65535", Some((0, 65535))),
            ("25-21", None),
            ("65536", None),
            ("", None),
            ("ssh", None),
            ("-1", None),
        ];
        for (text, expected) in cases {
            assert_eq!(
                PortRange::parse(text).map(|r| (r.low, r.high)),
                expected,
                "{text}"
            );
        }
    }

    #[test]
    fn subtraction_leaves_the_gaps() {
        let cases: [(&str, &[&str], &[&str]); 6] = [
            ("0-65535", &["22"], &["0-21", "23-65535"]),
            ("20-30", &["22", "25-26"], &["20-21", "23-24", "27-30"]),
            ("22", &["22"], &[]),
            ("22", &["80"], &["22"]),
            ("0-10", &["0"], &["1-10"]),
            ("65530-65535", &["65535", "65530-65531"], &["65532-65534"]),
        ];
        for (from, holes, expected) in cases {
            let holes: Vec<PortRange> = holes.iter().map(|hole| range(hole)).collect();
            let got: Vec<String> = range(from)
                .subtract(&holes)
                .iter()
                .map(ToString::to_string)
                .collect();
            assert_eq!(got, expected, "{from} minus {holes:?}");
        }
    }

    #[test]
    fn numeric_protocols_are_their_names() {
        assert_eq!(Protocol::parse("6"), Some(Protocol::Tcp));
        assert_eq!(Protocol::parse("17"), Some(Protocol::Udp));
        assert_eq!(Protocol::parse("132"), Some(Protocol::Sctp));
        assert_eq!(Protocol::parse("ALL"), Some(Protocol::All));
        assert_eq!(Protocol::parse("50"), Some(Protocol::Other));
        assert_eq!(Protocol::parse("bogus"), None);
    }
}
