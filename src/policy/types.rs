//! The value types of a policy: protocols, port sets, actions, directions and
//! the flow a decision is made for. Each parses from the policy file's text
//! forms with an error that says what is allowed.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

pub use crate::base::{
    parse_zone, zone_name, Direction, IpProto, ProtoName, Reason, Verdict, ZoneId, ZoneName,
};

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
}
