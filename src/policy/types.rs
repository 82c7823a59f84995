//! The value types of a policy: protocols, port sets, actions, directions and
//! the flow a decision is made for. Each parses from its canonical text form
//! with an error that says what is allowed; the aliases of a dialect (the
//! TOML file's `accept`, `-1`, `80/90`, …) are read by that dialect's reader.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

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

/// A protocol that is neither `all`, a known name nor a number 0-255.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown protocol `{0}`: expected tcp, udp, icmp, icmpv6, all or a number 0-255")]
pub struct UnknownProtoMatch(pub String);

impl FromStr for ProtoMatch {
    type Err = UnknownProtoMatch;

    /// `all`, or what [`IpProto`] parses. Dialects' other spellings of
    /// "every protocol" (`-1`, `any`) are their readers' business.
    fn from_str(s: &str) -> Result<Self, UnknownProtoMatch> {
        if s.eq_ignore_ascii_case("all") {
            return Ok(ProtoMatch::Any);
        }
        s.parse::<IpProto>()
            .map(ProtoMatch::Is)
            .map_err(|_| UnknownProtoMatch(s.to_string()))
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

/// A port or port range that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    #[error("bad port `{port}` in `{text}`: a port is a number 0-65535, a range is written 80-90")]
    BadPort { port: String, text: String },
    #[error("port range `{text}` ends before it starts ({lo} > {hi})")]
    Reversed { text: String, lo: u16, hi: u16 },
}

impl FromStr for PortRange {
    type Err = PortError;

    /// `80` or `80-90`. Dialects' forms (`80/90`, `-1/-1` for all) are their
    /// readers' business.
    fn from_str(s: &str) -> Result<Self, PortError> {
        let port = |p: &str| -> Result<u16, PortError> {
            p.parse::<u16>().map_err(|_| PortError::BadPort {
                port: p.to_string(),
                text: s.to_string(),
            })
        };
        let (lo, hi) = match s.split_once('-') {
            Some((a, b)) => (port(a)?, port(b)?),
            None => {
                let p = port(s)?;
                (p, p)
            }
        };
        if lo > hi {
            return Err(PortError::Reversed {
                text: s.to_string(),
                lo,
                hi,
            });
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

impl FromStr for PortSet {
    type Err = PortError;

    /// Port ranges separated by commas, e.g. `80,443,8000-8010`.
    fn from_str(s: &str) -> Result<Self, PortError> {
        let ranges = s
            .split(',')
            .map(str::parse)
            .collect::<Result<Vec<PortRange>, PortError>>()?;
        Ok(PortSet::from_ranges(ranges))
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

/// An action that is neither `allow` nor `deny`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown action `{0}`: expected allow or deny")]
pub struct UnknownAction(pub String);

impl FromStr for Action {
    type Err = UnknownAction;

    /// `allow` or `deny`. Dialects' aliases (`accept`, `drop`) are their
    /// readers' business.
    fn from_str(s: &str) -> Result<Self, UnknownAction> {
        match s {
            "allow" => Ok(Action::Allow),
            "deny" => Ok(Action::Deny),
            _ => Err(UnknownAction(s.to_string())),
        }
    }
}

/// Text that is neither an address nor a CIDR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an address or CIDR: expected e.g. 10.0.0.5, 10.0.0.0/16, 2001:db8::/32, or an sg-…/pl-… name")]
pub struct NotAnAddress(pub String);

/// An address (as a host block) or a CIDR. Host bits may be set: whether
/// that is allowed is the policy checks' business, not the syntax's.
pub fn parse_net(s: &str) -> Result<IpNet, NotAnAddress> {
    if let Ok(a) = s.parse::<IpAddr>() {
        return Ok(IpNet::from(a));
    }
    s.parse::<IpNet>().map_err(|_| NotAnAddress(s.to_string()))
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

    /// The same flow the other way (ends and ports swapped).
    pub fn reversed(&self) -> Flow {
        Flow {
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
            ..*self
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
        assert_eq!("0-65535".parse::<PortRange>(), Ok(PortRange::ALL));
        assert!("90-80"
            .parse::<PortRange>()
            .unwrap_err()
            .to_string()
            .contains("ends before"));
        assert!("65536"
            .parse::<PortRange>()
            .unwrap_err()
            .to_string()
            .contains("0-65535"));
        // The Alibaba and AWS forms belong to the readers of those dialects.
        for other in ["http", "-5", "80-", "80/90", "-1/-1", " 80"] {
            assert!(other.parse::<PortRange>().is_err(), "{other}");
        }
        let set: PortSet = "443,80,8000-8010".parse().unwrap();
        assert_eq!(set.to_string(), "80,443,8000-8010");
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
        assert_eq!("all".parse::<ProtoMatch>(), Ok(ProtoMatch::Any));
        assert_eq!("47".parse::<ProtoMatch>(), Ok(ProtoMatch::Is(IpProto(47))));
        assert!("256".parse::<ProtoMatch>().is_err());
        assert!("-1".parse::<ProtoMatch>().is_err());
        assert!("tcpp"
            .parse::<ProtoMatch>()
            .unwrap_err()
            .to_string()
            .contains("expected tcp"));
        assert_eq!(IpProto(47).to_string(), "47");
    }

    #[test]
    fn actions() {
        assert_eq!("allow".parse::<Action>(), Ok(Action::Allow));
        assert_eq!("deny".parse::<Action>(), Ok(Action::Deny));
        assert!("accept".parse::<Action>().is_err());
    }
}
