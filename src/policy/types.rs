//! The value types of a policy: protocols, port sets, actions, directions and
//! the flow a decision is made for. Each parses from the policy file's text
//! forms with an error that says what is allowed.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An IP protocol number. Unknown numbers are values, not errors, so rules can
/// match any protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpProto(pub u8);

impl IpProto {
    pub const ICMP: IpProto = IpProto(1);
    pub const TCP: IpProto = IpProto(6);
    pub const UDP: IpProto = IpProto(17);
    pub const ICMPV6: IpProto = IpProto(58);

    /// TCP and UDP carry ports that rules can match.
    pub fn has_ports(self) -> bool {
        self == Self::TCP || self == Self::UDP
    }

    /// ICMP and ICMPv6 carry a type and code that rules can match.
    pub fn is_icmp(self) -> bool {
        self == Self::ICMP || self == Self::ICMPV6
    }

    /// The lowercase name used in output (`tcp`, `udp`, `icmp`, `icmpv6`) or the number.
    pub fn name(self) -> ProtoName {
        ProtoName(self.0)
    }
}

/// Displays a protocol number by its usual name.
#[derive(Debug, Clone, Copy)]
pub struct ProtoName(u8);

impl fmt::Display for ProtoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            1 => f.write_str("icmp"),
            6 => f.write_str("tcp"),
            17 => f.write_str("udp"),
            58 => f.write_str("icmpv6"),
            n => write!(f, "{n}"),
        }
    }
}

impl fmt::Display for IpProto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.name().fmt(f)
    }
}

impl FromStr for IpProto {
    type Err = String;

    /// Parses `tcp`, `udp`, `icmp`, `icmpv6` or a number 0-255 (not `all`).
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Self::TCP),
            "udp" => Ok(Self::UDP),
            "icmp" => Ok(Self::ICMP),
            "icmpv6" | "icmp6" | "ipv6-icmp" => Ok(Self::ICMPV6),
            other => other.parse::<u8>().map(IpProto).map_err(|_| {
                format!("unknown protocol `{s}`: expected tcp, udp, icmp, icmpv6 or a number 0-255")
            }),
        }
    }
}

/// The protocol a rule matches: one protocol, or every protocol (`all` / `-1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProtoMatch {
    Any,
    Is(IpProto),
}

impl ProtoMatch {
    pub fn matches(self, proto: IpProto) -> bool {
        match self {
            ProtoMatch::Any => true,
            ProtoMatch::Is(p) => p == proto,
        }
    }

    /// Whether every packet this rule's protocol admits is also admitted by `other`.
    pub fn covered_by(self, other: ProtoMatch) -> bool {
        other == ProtoMatch::Any || self == other
    }

    pub fn has_ports(self) -> bool {
        matches!(self, ProtoMatch::Is(p) if p.has_ports())
    }

    pub fn is_icmp(self) -> bool {
        matches!(self, ProtoMatch::Is(p) if p.is_icmp())
    }
}

impl fmt::Display for ProtoMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtoMatch::Any => f.write_str("all"),
            ProtoMatch::Is(p) => p.fmt(f),
        }
    }
}

impl FromStr for ProtoMatch {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "all" | "-1" | "any" => Ok(ProtoMatch::Any),
            _ => s.parse::<IpProto>().map(ProtoMatch::Is).map_err(|_| {
                format!(
                    "unknown protocol `{s}`: expected tcp, udp, icmp, icmpv6, all (or -1) or a number 0-255"
                )
            }),
        }
    }
}

/// An inclusive range of ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortRange {
    pub lo: u16,
    pub hi: u16,
}

impl PortRange {
    pub const ALL: PortRange = PortRange {
        lo: 0,
        hi: u16::MAX,
    };

    pub fn contains(self, port: u16) -> bool {
        self.lo <= port && port <= self.hi
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

impl FromStr for PortRange {
    type Err = String;

    /// `80`, `80-90`, `80/90` (Alibaba), `-1/-1` or `-1` (all ports).
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if t == "-1/-1" || t == "-1" {
            return Ok(PortRange::ALL);
        }
        let port = |p: &str| -> Result<u16, String> {
            p.trim().parse::<u16>().map_err(|_| {
                format!(
                    "bad port `{}` in `{s}`: a port is a number 0-65535; ranges are written 80-90 or 80/90, all ports -1/-1",
                    p.trim()
                )
            })
        };
        let (lo, hi) = match t.split_once(['-', '/']) {
            Some((a, b)) if !a.trim().is_empty() => (port(a)?, port(b)?),
            _ => {
                let p = port(t)?;
                (p, p)
            }
        };
        if lo > hi {
            return Err(format!(
                "port range `{s}` ends before it starts ({lo} > {hi})"
            ));
        }
        Ok(PortRange { lo, hi })
    }
}

/// A set of ports: sorted, disjoint, non-adjacent ranges. Never empty.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PortSet(Vec<PortRange>);

impl PortSet {
    pub fn all() -> PortSet {
        PortSet(vec![PortRange::ALL])
    }

    /// Builds a set from ranges in any order, merging overlaps.
    ///
    /// # Panics
    /// If `ranges` is empty.
    pub fn from_ranges(mut ranges: Vec<PortRange>) -> PortSet {
        assert!(!ranges.is_empty(), "a port set needs at least one range");
        ranges.sort();
        let mut merged: Vec<PortRange> = Vec::with_capacity(ranges.len());
        for r in ranges {
            match merged.last_mut() {
                Some(last) if u32::from(r.lo) <= u32::from(last.hi) + 1 => {
                    last.hi = last.hi.max(r.hi)
                }
                _ => merged.push(r),
            }
        }
        PortSet(merged)
    }

    pub fn ranges(&self) -> &[PortRange] {
        &self.0
    }

    pub fn is_all(&self) -> bool {
        self.0 == [PortRange::ALL]
    }

    pub fn contains(&self, port: u16) -> bool {
        self.0.iter().any(|r| r.contains(port))
    }

    /// Whether a port that may be anything is surely in the set.
    pub fn contains_opt(&self, port: Option<u16>) -> bool {
        match port {
            Some(p) => self.contains(p),
            None => self.is_all(),
        }
    }

    pub fn is_subset_of(&self, other: &PortSet) -> bool {
        self.0
            .iter()
            .all(|r| other.0.iter().any(|o| o.lo <= r.lo && r.hi <= o.hi))
    }

    pub fn intersects(&self, other: &PortSet) -> bool {
        self.0
            .iter()
            .any(|r| other.0.iter().any(|o| r.lo <= o.hi && o.lo <= r.hi))
    }
}

impl fmt::Display for PortSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_all() {
            return f.write_str("all ports");
        }
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            r.fmt(f)?;
        }
        Ok(())
    }
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Ordered before `Allow`: at equal priority a deny wins.
    Deny,
    Allow,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Deny => "deny",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "allow" | "accept" => Ok(Action::Allow),
            "deny" | "drop" => Ok(Action::Deny),
            _ => Err(format!(
                "unknown action `{s}`: expected allow (or accept) or deny (or drop)"
            )),
        }
    }
}

/// Which way a packet crosses an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The packet's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    Allow,
    Deny,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a packet got its verdict (SPEC §2; the strings are part of the output format).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    Established,
    Related,
    Rule,
    NoRule,
    UnknownAddress,
    Invalid,
    Malformed,
    NotIp,
    ConntrackFull,
    Arp,
    NeighborDiscovery,
    Fragment,
}

impl Reason {
    pub const ALL: [Reason; 12] = [
        Reason::Established,
        Reason::Related,
        Reason::Rule,
        Reason::NoRule,
        Reason::UnknownAddress,
        Reason::Invalid,
        Reason::Malformed,
        Reason::NotIp,
        Reason::ConntrackFull,
        Reason::Arp,
        Reason::NeighborDiscovery,
        Reason::Fragment,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Established => "established",
            Reason::Related => "related",
            Reason::Rule => "rule",
            Reason::NoRule => "no-rule",
            Reason::UnknownAddress => "unknown-address",
            Reason::Invalid => "invalid",
            Reason::Malformed => "malformed",
            Reason::NotIp => "not-ip",
            Reason::ConntrackFull => "conntrack-full",
            Reason::Arp => "arp",
            Reason::NeighborDiscovery => "neighbor-discovery",
            Reason::Fragment => "fragment",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A GWLB endpoint id, the key of a zone (SPEC §5). `None` on a [`Flow`] means
/// the packet came from no endpoint: only zoneless interfaces see it.
pub type ZoneId = u64;

/// Formats a zone as `vpce-` and 17 zero-padded lowercase hex digits.
pub fn zone_name(zone: ZoneId) -> String {
    format!("vpce-{zone:017x}")
}

/// Parses `vpce-` followed by 1-17 hex digits (AWS writes 17).
pub fn parse_zone(s: &str) -> Result<ZoneId, String> {
    let bad = || {
        format!("bad zone `{s}`: expected a GWLB endpoint id, vpce- and 17 hex digits, e.g. vpce-0123456789abcdef0")
    };
    let hex = s.strip_prefix("vpce-").ok_or_else(bad)?;
    if hex.is_empty() || hex.len() > 17 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    u64::from_str_radix(hex, 16).map_err(|_| bad())
}

/// The first packet of a new flow, as the rules see it.
///
/// Ports and ICMP type/code are `None` when unknown (a later IP fragment): then
/// only rules that cover every value can match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flow {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: IpProto,
    pub sport: Option<u16>,
    pub dport: Option<u16>,
    /// ICMP or ICMPv6 (type, code).
    pub icmp: Option<(u8, u8)>,
    pub zone: Option<ZoneId>,
}

impl Flow {
    /// A TCP or UDP flow with known ports.
    pub fn ports(src: IpAddr, dst: IpAddr, proto: IpProto, sport: u16, dport: u16) -> Flow {
        Flow {
            src,
            dst,
            proto,
            sport: Some(sport),
            dport: Some(dport),
            icmp: None,
            zone: None,
        }
    }

    /// An ICMP or ICMPv6 flow.
    pub fn icmp(src: IpAddr, dst: IpAddr, proto: IpProto, typ: u8, code: u8) -> Flow {
        Flow {
            src,
            dst,
            proto,
            sport: None,
            dport: None,
            icmp: Some((typ, code)),
            zone: None,
        }
    }

    /// A flow of another protocol (or with unknown ports).
    pub fn other(src: IpAddr, dst: IpAddr, proto: IpProto) -> Flow {
        Flow {
            src,
            dst,
            proto,
            sport: None,
            dport: None,
            icmp: None,
            zone: None,
        }
    }

    pub fn in_zone(mut self, zone: Option<ZoneId>) -> Flow {
        self.zone = zone;
        self
    }
}

impl fmt::Display for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} -> {}", self.proto, self.src, self.dst)?;
        if let Some(p) = self.dport {
            write!(f, ":{p}")?;
        }
        if let Some((t, c)) = self.icmp {
            write!(f, " type {t} code {c}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_forms() {
        assert_eq!("80".parse::<PortRange>(), Ok(PortRange { lo: 80, hi: 80 }));
        assert_eq!(
            "80-90".parse::<PortRange>(),
            Ok(PortRange { lo: 80, hi: 90 })
        );
        assert_eq!(
            "80/90".parse::<PortRange>(),
            Ok(PortRange { lo: 80, hi: 90 })
        );
        assert_eq!(
            "1/65535".parse::<PortRange>(),
            Ok(PortRange { lo: 1, hi: 65535 })
        );
        assert_eq!("-1/-1".parse::<PortRange>(), Ok(PortRange::ALL));
        assert!("90-80"
            .parse::<PortRange>()
            .unwrap_err()
            .contains("ends before"));
        assert!("65536"
            .parse::<PortRange>()
            .unwrap_err()
            .contains("0-65535"));
        assert!("http".parse::<PortRange>().is_err());
        assert!("-5".parse::<PortRange>().is_err());
        assert!("80-".parse::<PortRange>().is_err());
    }

    #[test]
    fn port_set_merges_and_compares() {
        let r = |lo, hi| PortRange { lo, hi };
        let s = PortSet::from_ranges(vec![r(90, 100), r(80, 85), r(86, 89), r(200, 200)]);
        assert_eq!(s.ranges(), &[r(80, 100), r(200, 200)]);
        assert!(s.contains(86) && !s.contains(101));
        assert!(PortSet::from_ranges(vec![r(81, 82)]).is_subset_of(&s));
        assert!(!PortSet::from_ranges(vec![r(99, 101)]).is_subset_of(&s));
        assert!(s.intersects(&PortSet::from_ranges(vec![r(100, 150)])));
        assert!(!s.intersects(&PortSet::from_ranges(vec![r(101, 199)])));
        assert!(PortSet::all().contains_opt(None));
        assert!(!s.contains_opt(None));
    }

    #[test]
    fn protocols() {
        assert_eq!(
            "TCP".parse::<ProtoMatch>(),
            Ok(ProtoMatch::Is(IpProto::TCP))
        );
        assert_eq!("-1".parse::<ProtoMatch>(), Ok(ProtoMatch::Any));
        assert_eq!("all".parse::<ProtoMatch>(), Ok(ProtoMatch::Any));
        assert_eq!("47".parse::<ProtoMatch>(), Ok(ProtoMatch::Is(IpProto(47))));
        assert!("256".parse::<ProtoMatch>().is_err());
        assert!("tcpp"
            .parse::<ProtoMatch>()
            .unwrap_err()
            .contains("expected tcp"));
        assert_eq!(IpProto(47).to_string(), "47");
    }

    #[test]
    fn zones() {
        assert_eq!(zone_name(0x0123456789abcdef0), "vpce-0123456789abcdef0");
        assert_eq!(
            parse_zone("vpce-0123456789abcdef0"),
            Ok(0x0123456789abcdef0)
        );
        assert_eq!(zone_name(1), "vpce-00000000000000001");
        assert!(parse_zone("vpce-").is_err());
        assert!(parse_zone("eni-123").is_err());
        assert!(parse_zone("vpce-0123456789abcdef01").is_err());
        assert!(parse_zone("vpce-xyz").is_err());
    }
}
