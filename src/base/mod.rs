//! The vocabulary every layer shares: IP protocol numbers, directions,
//! verdicts and their reasons, GWLB zones and time. It sits at the bottom:
//! it imports nothing from the crate, and everything may import it.

use std::fmt;
use std::str::FromStr;

/// Nanoseconds since the Unix epoch: a packet's capture time in replay, the
/// clock in live modes.
pub type Nanos = u64;

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

/// A protocol name that is neither a known name nor a number 0-255.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown protocol `{0}`: expected tcp, udp, icmp, icmpv6 or a number 0-255")]
pub struct UnknownProto(pub String);

impl FromStr for IpProto {
    type Err = UnknownProto;

    /// Parses `tcp`, `udp`, `icmp`, `icmpv6` or a number 0-255 (not `all`).
    fn from_str(s: &str) -> Result<Self, UnknownProto> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Self::TCP),
            "udp" => Ok(Self::UDP),
            "icmp" => Ok(Self::ICMP),
            "icmpv6" | "icmp6" | "ipv6-icmp" => Ok(Self::ICMPV6),
            other => other
                .parse::<u8>()
                .map(IpProto)
                .map_err(|_| UnknownProto(s.to_string())),
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

    /// The other direction.
    pub fn reverse(self) -> Direction {
        match self {
            Direction::Ingress => Direction::Egress,
            Direction::Egress => Direction::Ingress,
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
    /// Denied by a network ACL (SPEC §9.1).
    Nacl,
    /// Allowed by the rules on a flow the interfaces do not track (SPEC §9.3).
    Untracked,
}

impl Reason {
    /// How many reasons there are: the size of per-reason counters.
    pub const COUNT: usize = 14;

    pub const ALL: [Reason; Reason::COUNT] = [
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
        Reason::Nacl,
        Reason::Untracked,
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
            Reason::Nacl => "nacl",
            Reason::Untracked => "untracked",
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

/// A GWLB endpoint id, the key of a zone (SPEC §5). `None` on a flow means
/// the packet came from no endpoint: only zoneless interfaces see it.
pub type ZoneId = u64;

/// A zone by its name: `vpce-` and the endpoint id as 17 zero-padded
/// lowercase hex digits when displayed (without allocating); parsed from
/// `vpce-` and 1-17 hex digits of either case (AWS writes 17 lowercase).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ZoneName(pub ZoneId);

impl fmt::Display for ZoneName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "vpce-{:017x}", self.0)
    }
}

/// A zone name that is not `vpce-` and 1-17 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad zone `{0}`: expected a GWLB endpoint id, vpce- and 17 hex digits, e.g. vpce-0123456789abcdef0")]
pub struct BadZone(pub String);

impl FromStr for ZoneName {
    type Err = BadZone;

    fn from_str(s: &str) -> Result<ZoneName, BadZone> {
        let bad = || BadZone(s.to_string());
        let hex = s.strip_prefix("vpce-").ok_or_else(bad)?;
        if hex.is_empty() || hex.len() > 17 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        u64::from_str_radix(hex, 16)
            .map(ZoneName)
            .map_err(|_| bad())
    }
}

/// Formats a zone as `vpce-` and 17 zero-padded lowercase hex digits.
pub fn zone_name(zone: ZoneId) -> String {
    ZoneName(zone).to_string()
}

/// Parses a zone name (see [`ZoneName`]) into its endpoint id.
pub fn parse_zone(s: &str) -> Result<ZoneId, BadZone> {
    s.parse::<ZoneName>().map(|z| z.0)
}

/// Asks for the cache line holding `r` ahead of a read of it: a hint,
/// which neither reads nor faults (nothing on targets other than x86-64).
#[inline(always)]
#[allow(unsafe_code)] // the prefetch intrinsic (SAFETY below)
pub fn prefetch<T>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the pointer is to a live `T`, and a prefetch neither reads
    // nor faults.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch(std::ptr::from_ref(r).cast::<i8>(), _MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = r;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones() {
        assert_eq!(zone_name(0), "vpce-00000000000000000");
        assert_eq!(zone_name(0x0123456789abcdef0), "vpce-0123456789abcdef0");
        assert_eq!(zone_name(u64::MAX), "vpce-0ffffffffffffffff");
        assert_eq!(zone_name(0xab), "vpce-000000000000000ab");
        assert_eq!(format!("{}", ZoneName(0xab)), zone_name(0xab));
        assert_eq!(
            parse_zone("vpce-0123456789abcdef0"),
            Ok(0x0123456789abcdef0)
        );
        assert_eq!(parse_zone("vpce-0ffffffffffffffff"), Ok(u64::MAX));
        assert_eq!(
            parse_zone("vpce-0123456789ABCDEF0"),
            Ok(0x0123456789abcdef0)
        );
        assert_eq!(parse_zone("vpce-1"), Ok(1));
        for bad in [
            "vpce-1000000000000000a",  // 17 digits that overflow 64 bits
            "vpce-00123456789abcdef0", // 18 digits
            "vpce-+123456789abcdef0",
            "vpce-xyz",
            "eni-0123456789abcdef0",
            "vpce-",
        ] {
            assert_eq!(parse_zone(bad), Err(BadZone(bad.to_string())), "{bad}");
        }
        assert!(BadZone("x".into())
            .to_string()
            .contains("vpce-0123456789abcdef0"));
    }

    #[test]
    fn protocols() {
        assert_eq!("TCP".parse::<IpProto>(), Ok(IpProto::TCP));
        assert_eq!("ipv6-icmp".parse::<IpProto>(), Ok(IpProto::ICMPV6));
        assert_eq!("47".parse::<IpProto>(), Ok(IpProto(47)));
        assert_eq!("256".parse::<IpProto>(), Err(UnknownProto("256".into())));
        assert_eq!(IpProto(47).to_string(), "47");
    }

    #[test]
    fn reasons_are_indexed_in_order() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }
}
