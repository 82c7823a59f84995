//! Parsing a captured frame into what the engine needs: the IP addresses,
//! protocol, ports or ICMP fields, fragment position, and for ICMP errors the
//! packet they quote. Nothing is copied; nothing can panic.
//!
//! Lengths follow the receiving kernel, not the capture: a frame cut short by
//! the capture's snap length (`orig_len` > bytes captured) is fine as long as
//! the headers are there, but a packet whose own length fields point past the
//! end of the frame as it was on the wire is malformed, as Linux drops it.
//!
//! This module holds what a parse gives. Beside it: `parse`, the parser
//! itself ([`parse()`], and [`parse_geneve`] for a UDP payload that begins
//! with GENEVE); `quoted`, the packet inside an ICMP error; `tunnel`, the
//! GENEVE or VXLAN encapsulation ([`Tunnel`], [`OuterEnds`]) and the return an
//! appliance makes of it ([`geneve_return`], [`OuterEnds::emit_return`]).

mod parse;
mod quoted;
mod tunnel;

pub use self::parse::{fast_ipv4, fast_ipv6, parse, parse_general, parse_geneve};
pub use self::quoted::is_icmp_error;
pub use self::tunnel::{geneve_return, Encap, OuterEnds, Tunnel, OUTER_HEADERS_MAX};
/// The Internet checksum, where it was before [`crate::wire::checksum`].
pub use crate::wire::checksum::checksum;

use std::net::IpAddr;

use crate::base::IpProto;
use crate::wire::geneve::GeneveError;
use crate::wire::icmp;
use crate::wire::vxlan::VxlanError;

/// How a capture or device frames its packets (pcap LINKTYPE values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkType {
    /// LINKTYPE_ETHERNET (1).
    Ethernet,
    /// LINKTYPE_NULL (0) and LINKTYPE_LOOP (108): a 4-byte address family.
    Null { big_endian: bool },
    /// LINKTYPE_LINUX_SLL (113).
    LinuxSll,
    /// LINKTYPE_LINUX_SLL2 (276).
    LinuxSll2,
    /// LINKTYPE_RAW (101, and DLT_RAW 12 and 14): IPv4 or IPv6 by version.
    RawIp,
    /// LINKTYPE_IPV4 (228).
    Ipv4,
    /// LINKTYPE_IPV6 (229).
    Ipv6,
    /// LINKTYPE_PPP (9) and LINKTYPE_PPP_HDLC (50).
    Ppp,
    /// LINKTYPE_C_HDLC (104): Cisco HDLC with an EtherType.
    CiscoHdlc,
}

impl LinkType {
    pub fn from_pcap(linktype: u32) -> Option<LinkType> {
        Some(match linktype {
            0 => LinkType::Null { big_endian: false },
            108 => LinkType::Null { big_endian: true },
            1 => LinkType::Ethernet,
            113 => LinkType::LinuxSll,
            276 => LinkType::LinuxSll2,
            12 | 14 | 101 => LinkType::RawIp,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            9 | 50 => LinkType::Ppp,
            104 => LinkType::CiscoHdlc,
            _ => return None,
        })
    }

    pub fn to_pcap(self) -> u32 {
        match self {
            LinkType::Null { big_endian: false } => 0,
            LinkType::Null { big_endian: true } => 108,
            LinkType::Ethernet => 1,
            LinkType::LinuxSll => 113,
            LinkType::LinuxSll2 => 276,
            LinkType::RawIp => 101,
            LinkType::Ipv4 => 228,
            LinkType::Ipv6 => 229,
            LinkType::Ppp => 9,
            LinkType::CiscoHdlc => 104,
        }
    }
}

/// Why a frame could not be parsed (its verdict is `malformed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("{layer} header truncated: needs {need} bytes, has {have}")]
    Truncated {
        layer: &'static str,
        need: usize,
        have: usize,
    },
    #[error("IP version {0} where {1} was expected")]
    BadIpVersion(u8, u8),
    #[error("IPv4 header length {0} is less than 20")]
    BadIhl(usize),
    #[error("IPv4 header checksum is wrong")]
    BadIpv4Checksum,
    #[error("{layer} length {claimed} does not fit the {available} bytes of the packet")]
    BadLength {
        layer: &'static str,
        claimed: usize,
        available: usize,
    },
    #[error("TCP data offset {0} is less than 5")]
    BadTcpOffset(u8),
    #[error("IPv6 extension header chain is broken")]
    BadIpv6Extension,
    #[error("GENEVE: {0}")]
    Geneve(GeneveError),
    #[error("VXLAN: {0}")]
    Vxlan(VxlanError),
    #[error("too many VLAN tags")]
    TooManyVlans,
    /// The outer ends given beside a GENEVE payload ([`OuterEnds`]) are an
    /// IPv4 and an IPv6 address: no packet carried it.
    #[error("the outer addresses are of two IP families")]
    MixedOuterFamilies,
}

impl ParseError {
    /// A short stable name of what was wrong, for counters.
    pub fn kind(&self) -> &'static str {
        match self {
            ParseError::Truncated { layer, .. } => layer,
            ParseError::BadIpVersion(..) => "IP version",
            ParseError::BadIhl(_) => "IPv4 header length",
            ParseError::BadIpv4Checksum => "IPv4 header checksum",
            ParseError::BadLength { layer, .. } => layer,
            ParseError::BadTcpOffset(_) => "TCP data offset",
            ParseError::BadIpv6Extension => "IPv6 extension header",
            ParseError::Geneve(_) => "GENEVE",
            ParseError::Vxlan(_) => "VXLAN",
            ParseError::TooManyVlans => "VLAN tags",
            ParseError::MixedOuterFamilies => "outer addresses",
        }
    }
}

/// What a frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    Ip(IpPacket),
    Arp,
    /// Any other EtherType (or an 802.3 length field, or an unknown address family).
    NotIp(u16),
}

/// Where in a fragmented datagram a packet is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fragment {
    /// Not fragmented.
    Whole,
    /// Offset 0 with more fragments: carries the transport header.
    First { id: u32 },
    /// Offset > 0: no transport header.
    Later { id: u32 },
}

/// The transport fields the rules and conntrack look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4 {
    Tcp {
        sport: u16,
        dport: u16,
        flags: u8,
    },
    Udp {
        sport: u16,
        dport: u16,
    },
    /// ICMP or ICMPv6. `ident` is the echo identifier (0 for other types).
    /// For an error, [`IpPacket::quoted`] reads the packet it quotes.
    Icmp {
        typ: u8,
        code: u8,
        ident: u16,
    },
    /// Another protocol, or a later fragment.
    None,
}

/// The packet an ICMP error quotes (the original packet, as sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quoted {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: IpProto,
    /// Source and destination port, or for ICMP echo (identifier, identifier).
    pub ports: (u16, u16),
    /// For a quoted ICMP packet: its type.
    pub icmp_type: Option<u8>,
}

/// An IP packet, as the rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpPacket {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// The upper-layer protocol (after IPv6 extension headers).
    pub proto: IpProto,
    /// Bytes of the IP packet as the headers give it (header included).
    pub ip_len: u32,
    pub fragment: Fragment,
    pub l4: L4,
    /// Set when this is the inner packet of a GENEVE or VXLAN tunnel.
    pub tunnel: Option<Tunnel>,
    /// Offset of the transport header in the frame.
    pub l4_offset: u32,
}

impl IpPacket {
    /// The packet an ICMP error quotes, read from the frame this packet was
    /// parsed from; `None` if this is not an ICMP error or the quote is short.
    pub fn quoted(&self, frame: &[u8]) -> Option<Quoted> {
        let L4::Icmp { typ, .. } = self.l4 else {
            return None;
        };
        let v6 = self.proto == IpProto::ICMPV6;
        if !is_icmp_error(v6, typ) {
            return None;
        }
        quoted::quoted(v6, frame.get(self.l4_offset as usize + icmp::HEADER_LEN..)?)
    }

    pub fn ports(&self) -> Option<(u16, u16)> {
        match self.l4 {
            L4::Tcp { sport, dport, .. } | L4::Udp { sport, dport } => Some((sport, dport)),
            _ => None,
        }
    }

    /// This GENEVE-carried packet, parsed from a whole packet whose outer IP
    /// and UDP headers take `headers` bytes, as [`super::parse_geneve`] gives
    /// it from the UDP payload alone: offsets counted from the payload and
    /// no outer IP offset. A packet without a tunnel has only its L4 offset
    /// moved.
    ///
    /// # Panics
    /// If an offset is smaller than `headers` (the packet was not parsed
    /// from such a whole packet).
    pub fn past_outer_headers(mut self, headers: u32) -> IpPacket {
        self.l4_offset -= headers;
        if let Some(t) = &mut self.tunnel {
            t.outer_ip_offset = None;
            t.header_offset -= headers;
            t.inner_offset -= headers;
        }
        self
    }
}

/// Parsing options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseOptions {
    /// Decapsulate GENEVE on UDP port 6081 and judge the inner packet.
    pub decap_geneve: bool,
    /// Decapsulate VXLAN on UDP port 4789 (AWS Traffic Mirroring) and
    /// judge the inner packet.
    pub decap_vxlan: bool,
    /// GWLB mode: inner Ethernet (0x6558) is not accepted, and the AWS options
    /// must be present and understood.
    pub gwlb_strict: bool,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            decap_geneve: true,
            decap_vxlan: true,
            gwlb_strict: false,
        }
    }
}
