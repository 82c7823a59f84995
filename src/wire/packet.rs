//! Parsing a captured frame into what the engine needs: the IP addresses,
//! protocol, ports or ICMP fields, fragment position, and for ICMP errors the
//! packet they quote. Nothing is copied; nothing can panic.
//!
//! Lengths follow the receiving kernel, not the capture: a frame cut short by
//! the capture's snap length (`orig_len` > bytes captured) is fine as long as
//! the headers are there, but a packet whose own length fields point past the
//! end of the frame as it was on the wire is malformed, as Linux drops it.
//!
//! Written by hand rather than with etherparse's slicers because the hot path
//! needs those length rules and only a handful of fields; `benches/parse.rs`
//! compares the two.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::checksum;
use super::ethernet::ether_type;
use super::geneve::{self, GenevePacket};
use crate::base::{IpProto, ZoneId};

/// The Internet checksum, where it was before [`crate::wire::checksum`].
pub use super::checksum::checksum;

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
    Geneve(geneve::GeneveError),
    #[error("too many VLAN tags")]
    TooManyVlans,
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
            ParseError::TooManyVlans => "VLAN tags",
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

/// The encapsulation a packet arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tunnel {
    /// Offset of the outer IP header in the frame.
    pub outer_ip_offset: u32,
    /// Offset of the GENEVE header in the frame.
    pub geneve_offset: u32,
    /// Offset of the inner packet in the frame.
    pub inner_offset: u32,
    /// The GWLB endpoint id, when the AWS option is present.
    pub zone: Option<ZoneId>,
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
    /// Set when this is the inner packet of a GENEVE tunnel.
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
        quoted(v6, frame.get(self.l4_offset as usize + 8..)?)
    }

    pub fn ports(&self) -> Option<(u16, u16)> {
        match self.l4 {
            L4::Tcp { sport, dport, .. } | L4::Udp { sport, dport } => Some((sport, dport)),
            _ => None,
        }
    }
}

/// Parsing options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseOptions {
    /// Decapsulate GENEVE on UDP port 6081 and judge the inner packet.
    pub decap_geneve: bool,
    /// GWLB mode: inner Ethernet (0x6558) is not accepted, and the AWS options
    /// must be present and understood.
    pub gwlb_strict: bool,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            decap_geneve: true,
            gwlb_strict: false,
        }
    }
}

/// Parses one captured frame. `orig_len` is its length on the wire (at least
/// `data.len()`; pass `data.len()` when nothing was cut).
#[inline]
pub fn parse(
    link: LinkType,
    data: &[u8],
    orig_len: usize,
    opts: ParseOptions,
) -> Result<Frame, ParseError> {
    if link == LinkType::Ethernet {
        if let Some(p) = fast_ipv4(data, orig_len, opts) {
            return Ok(Frame::Ip(p));
        }
    }
    parse_general(link, data, orig_len, opts)
}

/// [`parse`] without the fast path: every frame through the layered parser.
pub fn parse_general(
    link: LinkType,
    data: &[u8],
    orig_len: usize,
    opts: ParseOptions,
) -> Result<Frame, ParseError> {
    // Bytes missing from the end of the capture, which headers may not need.
    let cut = orig_len.saturating_sub(data.len());
    let cx = Cx {
        cut,
        opts,
        depth: 0,
        base: 0,
        ip: 0,
    };
    cx.link(link, data)
}

/// The most common frame in straight-line code: Ethernet without VLAN tags,
/// IPv4 without options or fragmentation, TCP or UDP (not GENEVE). `None`
/// for anything else, including anything malformed: the general parser then
/// decides, so both paths always agree (`tests::fast_path_agrees`).
#[inline]
fn fast_ipv4(d: &[u8], orig_len: usize, opts: ParseOptions) -> Option<IpPacket> {
    if d.len() < 14 + 20 + 8 || be16(d, 12) != ether_type::IPV4 || d[14] != 0x45 {
        return None;
    }
    let ip = &d[14..];
    let total = usize::from(be16(ip, 2));
    let on_wire = orig_len.max(d.len()) - 14;
    if be16(ip, 6) & 0x3fff != 0 || total < 28 || total > on_wire || !checksum::header_ok(&ip[..20])
    {
        return None;
    }
    let src = IpAddr::V4(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]));
    let l4 = &ip[20..];
    let l4 = match ip[9] {
        6 => {
            let doff = l4.get(12)? >> 4;
            if l4.len() < 20 || doff < 5 || usize::from(doff) * 4 > total - 20 {
                return None;
            }
            L4::Tcp {
                sport: be16(l4, 0),
                dport: be16(l4, 2),
                flags: l4[13],
            }
        }
        17 => {
            let ulen = usize::from(be16(l4, 4));
            let dport = be16(l4, 2);
            if ulen < 8 || ulen > total - 20 || (dport == geneve::UDP_PORT && opts.decap_geneve) {
                return None;
            }
            L4::Udp {
                sport: be16(l4, 0),
                dport,
            }
        }
        _ => return None,
    };
    Some(IpPacket {
        src,
        dst,
        proto: IpProto(ip[9]),
        ip_len: total as u32,
        fragment: Fragment::Whole,
        l4,
        tunnel: None,
        l4_offset: 34,
    })
}

#[derive(Clone, Copy)]
struct Cx {
    cut: usize,
    opts: ParseOptions,
    /// Encapsulation depth: GENEVE inside GENEVE is not opened again.
    depth: u8,
    /// Offset of the current buffer in the frame.
    base: usize,
    /// Offset of the IP header being parsed.
    ip: usize,
}

fn need(layer: &'static str, data: &[u8], n: usize) -> Result<(), ParseError> {
    if data.len() < n {
        Err(ParseError::Truncated {
            layer,
            need: n,
            have: data.len(),
        })
    } else {
        Ok(())
    }
}

fn be16(d: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([d[at], d[at + 1]])
}

fn be32(d: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]])
}

impl Cx {
    fn at(self, offset: usize) -> Cx {
        Cx {
            base: self.base + offset,
            ..self
        }
    }

    #[inline]
    fn link(self, link: LinkType, d: &[u8]) -> Result<Frame, ParseError> {
        match link {
            LinkType::Ethernet => self.ethernet(d),
            LinkType::Null { big_endian } => {
                need("loopback", d, 4)?;
                let fam = if big_endian {
                    be32(d, 0)
                } else {
                    u32::from_le_bytes([d[0], d[1], d[2], d[3]])
                };
                match fam {
                    2 => self.at(4).ipv4(&d[4..]),
                    // AF_INET6 differs between BSDs and macOS.
                    10 | 24 | 28 | 30 => self.at(4).ipv6(&d[4..]),
                    other => Ok(Frame::NotIp(other as u16)),
                }
            }
            LinkType::LinuxSll => {
                need("Linux cooked", d, 16)?;
                self.at(16).ethertype(be16(d, 14), &d[16..])
            }
            LinkType::LinuxSll2 => {
                need("Linux cooked v2", d, 20)?;
                self.at(20).ethertype(be16(d, 0), &d[20..])
            }
            LinkType::RawIp => {
                need("IP", d, 1)?;
                match d[0] >> 4 {
                    4 => self.ipv4(d),
                    6 => self.ipv6(d),
                    v => Err(ParseError::BadIpVersion(v, 4)),
                }
            }
            LinkType::Ipv4 => self.ipv4(d),
            LinkType::Ipv6 => self.ipv6(d),
            LinkType::Ppp => {
                // Address and control (0xff 0x03) may be absent; the protocol
                // field may be compressed to one (odd) byte.
                let off = if d.starts_with(&[0xff, 0x03]) { 2 } else { 0 };
                need("PPP", d, off + 1)?;
                let (proto, len) = if d[off] & 1 == 1 {
                    (u16::from(d[off]), 1)
                } else {
                    need("PPP", d, off + 2)?;
                    (be16(d, off), 2)
                };
                let rest = &d[off + len..];
                match proto {
                    0x21 => self.at(off + len).ipv4(rest),
                    0x57 => self.at(off + len).ipv6(rest),
                    other => Ok(Frame::NotIp(other)),
                }
            }
            LinkType::CiscoHdlc => {
                need("Cisco HDLC", d, 4)?;
                self.at(4).ethertype(be16(d, 2), &d[4..])
            }
        }
    }

    #[inline]
    fn ethernet(self, d: &[u8]) -> Result<Frame, ParseError> {
        need("Ethernet", d, 14)?;
        let mut ethertype = be16(d, 12);
        let mut off = 14;
        let mut tags = 0;
        while matches!(
            ethertype,
            ether_type::VLAN | ether_type::QINQ | ether_type::QINQ_OLD
        ) {
            tags += 1;
            if tags > 8 {
                return Err(ParseError::TooManyVlans);
            }
            need("802.1Q", &d[off..], 4)?;
            ethertype = be16(d, off + 2);
            off += 4;
        }
        self.at(off).ethertype(ethertype, &d[off..])
    }

    #[inline]
    fn ethertype(self, ethertype: u16, d: &[u8]) -> Result<Frame, ParseError> {
        match ethertype {
            ether_type::IPV4 => self.ipv4(d),
            ether_type::IPV6 => self.ipv6(d),
            ether_type::ARP => Ok(Frame::Arp),
            other => Ok(Frame::NotIp(other)),
        }
    }

    /// The bytes of a packet that claims `claimed` bytes, given `d` captured.
    #[inline]
    fn check_len(
        self,
        layer: &'static str,
        d: &[u8],
        claimed: usize,
        min: usize,
    ) -> Result<usize, ParseError> {
        let on_wire = d.len() + self.cut;
        if claimed < min || claimed > on_wire {
            return Err(ParseError::BadLength {
                layer,
                claimed,
                available: on_wire,
            });
        }
        Ok(claimed.min(d.len()))
    }

    #[inline]
    fn ipv4(self, d: &[u8]) -> Result<Frame, ParseError> {
        need("IPv4", d, 20)?;
        let version = d[0] >> 4;
        if version != 4 {
            return Err(ParseError::BadIpVersion(version, 4));
        }
        let ihl = usize::from(d[0] & 0x0f) * 4;
        if ihl < 20 {
            return Err(ParseError::BadIhl(ihl));
        }
        need("IPv4 options", d, ihl)?;
        if !checksum::header_ok(&d[..ihl]) {
            return Err(ParseError::BadIpv4Checksum);
        }
        let total = usize::from(be16(d, 2));
        let len = self.check_len("IPv4 total", d, total, ihl)?;
        let flags_frag = be16(d, 6);
        let offset = flags_frag & 0x1fff;
        let more = flags_frag & 0x2000 != 0;
        let id = u32::from(be16(d, 4));
        let fragment = match (offset, more) {
            (0, false) => Fragment::Whole,
            (0, true) => Fragment::First { id },
            _ => Fragment::Later { id },
        };
        let src = IpAddr::V4(Ipv4Addr::new(d[12], d[13], d[14], d[15]));
        let dst = IpAddr::V4(Ipv4Addr::new(d[16], d[17], d[18], d[19]));
        let proto = IpProto(d[9]);
        let payload = &d[ihl..len];
        let inner = Cx {
            cut: self.cut.saturating_sub(d.len() - len),
            ip: self.base,
            ..self.at(ihl)
        };
        inner.transport(
            src,
            dst,
            proto,
            total as u32,
            fragment,
            payload,
            total - ihl,
        )
    }

    #[inline]
    fn ipv6(self, d: &[u8]) -> Result<Frame, ParseError> {
        need("IPv6", d, 40)?;
        let version = d[0] >> 4;
        if version != 6 {
            return Err(ParseError::BadIpVersion(version, 6));
        }
        let payload_len = usize::from(be16(d, 4));
        let len = self.check_len("IPv6 payload", d, 40 + payload_len, 40)?;
        let src = IpAddr::V6(Ipv6Addr::from(
            <[u8; 16]>::try_from(&d[8..24]).expect("16 bytes"),
        ));
        let dst = IpAddr::V6(Ipv6Addr::from(
            <[u8; 16]>::try_from(&d[24..40]).expect("16 bytes"),
        ));
        let mut next = d[6];
        let mut off = 40;
        let mut fragment = Fragment::Whole;
        // Walk extension headers (RFC 8200 §4) until the upper layer.
        loop {
            let rest = &d[off..len];
            match next {
                0 | 43 | 60 | 135 | 139 | 140 => {
                    need("IPv6 extension", rest, 8)?;
                    let hl = (usize::from(rest[1]) + 1) * 8;
                    need("IPv6 extension", rest, hl)?;
                    next = rest[0];
                    off += hl;
                }
                51 => {
                    need("IPv6 AH", rest, 8)?;
                    let hl = (usize::from(rest[1]) + 2) * 4;
                    need("IPv6 AH", rest, hl)?;
                    next = rest[0];
                    off += hl;
                }
                44 => {
                    need("IPv6 fragment", rest, 8)?;
                    let offset = be16(rest, 2) >> 3;
                    let more = rest[3] & 1 != 0;
                    let id = be32(rest, 4);
                    next = rest[0];
                    off += 8;
                    fragment = match (offset, more) {
                        (0, false) => Fragment::Whole,
                        (0, true) => Fragment::First { id },
                        _ => Fragment::Later { id },
                    };
                    if let Fragment::Later { .. } = fragment {
                        break;
                    }
                }
                _ => break,
            }
        }
        let inner = Cx {
            cut: self.cut.saturating_sub(d.len() - len),
            ip: self.base,
            ..self.at(off)
        };
        inner.transport(
            src,
            dst,
            IpProto(next),
            (40 + payload_len) as u32,
            fragment,
            &d[off..len],
            40 + payload_len - off,
        )
    }

    /// `wire_len` is how long the payload was on the wire.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn transport(
        self,
        src: IpAddr,
        dst: IpAddr,
        proto: IpProto,
        ip_len: u32,
        fragment: Fragment,
        p: &[u8],
        wire_len: usize,
    ) -> Result<Frame, ParseError> {
        let mut pkt = IpPacket {
            src,
            dst,
            proto,
            ip_len,
            fragment,
            l4: L4::None,
            tunnel: None,
            l4_offset: self.base as u32,
        };
        if let Fragment::Later { .. } = fragment {
            return Ok(Frame::Ip(pkt));
        }
        let whole = fragment == Fragment::Whole;
        match proto {
            IpProto::TCP => {
                need("TCP", p, 20)?;
                let doff = p[12] >> 4;
                if doff < 5 {
                    return Err(ParseError::BadTcpOffset(doff));
                }
                if whole && usize::from(doff) * 4 > wire_len {
                    return Err(ParseError::BadLength {
                        layer: "TCP header",
                        claimed: usize::from(doff) * 4,
                        available: wire_len,
                    });
                }
                pkt.l4 = L4::Tcp {
                    sport: be16(p, 0),
                    dport: be16(p, 2),
                    flags: p[13],
                };
            }
            IpProto::UDP => {
                need("UDP", p, 8)?;
                let ulen = usize::from(be16(p, 4));
                if whole && (ulen < 8 || ulen > wire_len) {
                    return Err(ParseError::BadLength {
                        layer: "UDP",
                        claimed: ulen,
                        available: wire_len,
                    });
                }
                let (sport, dport) = (be16(p, 0), be16(p, 2));
                pkt.l4 = L4::Udp { sport, dport };
                if dport == geneve::UDP_PORT && self.opts.decap_geneve && self.depth == 0 && whole {
                    return self.at(8).geneve(&p[8..ulen.min(p.len())]);
                }
            }
            IpProto::ICMP | IpProto::ICMPV6 => {
                need("ICMP", p, 4)?;
                let (typ, code) = (p[0], p[1]);
                let v6 = proto == IpProto::ICMPV6;
                let echo = if v6 {
                    matches!(typ, 128 | 129)
                } else {
                    matches!(typ, 0 | 8)
                };
                let ident = if echo {
                    need("ICMP echo", p, 8)?;
                    be16(p, 4)
                } else {
                    0
                };
                pkt.l4 = L4::Icmp { typ, code, ident };
            }
            _ => {}
        }
        Ok(Frame::Ip(pkt))
    }

    fn geneve(self, d: &[u8]) -> Result<Frame, ParseError> {
        let g = GenevePacket::new_checked(d).map_err(ParseError::Geneve)?;
        let zone = if self.opts.gwlb_strict {
            Some(g.aws_options().map_err(ParseError::Geneve)?.endpoint_id)
        } else {
            g.aws_endpoint_id()
        };
        let hl = g.header_len();
        let inner = Cx {
            depth: self.depth + 1,
            ..self.at(hl)
        };
        let payload = &d[hl..];
        let frame = match g.protocol_type() {
            ether_type::IPV4 => inner.ipv4(payload)?,
            ether_type::IPV6 => inner.ipv6(payload)?,
            ether_type::TRANS_ETHER if !self.opts.gwlb_strict => inner.ethernet(payload)?,
            other => {
                return Err(ParseError::Geneve(
                    geneve::GeneveError::UnsupportedProtocol(other),
                ))
            }
        };
        Ok(match frame {
            Frame::Ip(mut p) => {
                p.tunnel = Some(Tunnel {
                    outer_ip_offset: self.ip as u32,
                    geneve_offset: self.base as u32,
                    inner_offset: inner.base as u32,
                    zone,
                });
                Frame::Ip(p)
            }
            other => other,
        })
    }
}

/// Turns a GENEVE frame as received by an appliance into the frame it sends
/// back (SPEC §5): the outer IP addresses swapped (and the Ethernet addresses,
/// for Ethernet frames), the UDP ports and GENEVE header and options as
/// received. Swapping keeps every checksum valid, as the Internet checksum is
/// a sum. Returns false when the frame is too short for the tunnel's offsets.
pub fn geneve_return(frame: &mut [u8], link: LinkType, tunnel: &Tunnel) -> bool {
    let ip = tunnel.outer_ip_offset as usize;
    let (src, len) = match frame.get(ip).map(|b| b >> 4) {
        Some(4) => (ip + 12, 4),
        Some(6) => (ip + 8, 16),
        _ => return false,
    };
    if frame.len() < src + 2 * len {
        return false;
    }
    let (a, b) = frame[src..src + 2 * len].split_at_mut(len);
    a.swap_with_slice(b);
    if link == LinkType::Ethernet && frame.len() >= 12 {
        let (dst_mac, src_mac) = frame[..12].split_at_mut(6);
        dst_mac.swap_with_slice(src_mac);
    }
    true
}

/// ICMP error types whose payload quotes the offending packet.
pub fn is_icmp_error(v6: bool, typ: u8) -> bool {
    if v6 {
        (1..=4).contains(&typ)
    } else {
        matches!(typ, 3 | 4 | 5 | 11 | 12)
    }
}

/// The quoted packet: an IP header and at least 8 bytes of its payload.
fn quoted(v6: bool, d: &[u8]) -> Option<Quoted> {
    let (src, dst, proto, l4) = if v6 {
        if d.len() < 40 || d[0] >> 4 != 6 {
            return None;
        }
        let src = IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&d[8..24]).ok()?));
        let dst = IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&d[24..40]).ok()?));
        (src, dst, d[6], &d[40..])
    } else {
        if d.len() < 20 || d[0] >> 4 != 4 {
            return None;
        }
        let ihl = usize::from(d[0] & 0x0f) * 4;
        if ihl < 20 || d.len() < ihl {
            return None;
        }
        let src = IpAddr::V4(Ipv4Addr::new(d[12], d[13], d[14], d[15]));
        let dst = IpAddr::V4(Ipv4Addr::new(d[16], d[17], d[18], d[19]));
        (src, dst, d[9], &d[ihl..])
    };
    let proto = IpProto(proto);
    let (ports, icmp_type) = match proto {
        IpProto::TCP | IpProto::UDP if l4.len() >= 4 => ((be16(l4, 0), be16(l4, 2)), None),
        IpProto::ICMP | IpProto::ICMPV6 if l4.len() >= 8 => {
            ((be16(l4, 4), be16(l4, 4)), Some(l4[0]))
        }
        IpProto::TCP | IpProto::UDP | IpProto::ICMP | IpProto::ICMPV6 => return None,
        _ => ((0, 0), None),
    };
    Some(Quoted {
        src,
        dst,
        proto,
        ports,
        icmp_type,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::build;
    use proptest::prelude::*;

    fn frames() -> Vec<Vec<u8>> {
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        vec![
            build::tcp(
                ip("10.0.0.1"),
                ip("10.0.0.2"),
                40000,
                443,
                0x12,
                7,
                9,
                b"hello",
            ),
            build::udp(ip("10.0.0.1"), ip("10.0.0.2"), 5353, 53, b"query"),
            build::udp(ip("10.0.0.1"), ip("10.0.0.2"), 5353, 6081, &[0u8; 40]),
            build::tcp(ip("2001:db8::1"), ip("2001:db8::2"), 1, 2, 0x02, 0, 0, b""),
            build::echo(ip("10.0.0.1"), ip("10.0.0.2"), true, 3, 4),
        ]
    }

    #[test]
    fn fast_path_takes_the_common_frames() {
        let f = &frames();
        for (i, taken) in [(0, true), (1, true), (2, false), (3, false), (4, false)] {
            let fast = fast_ipv4(&f[i], f[i].len(), ParseOptions::default());
            assert_eq!(fast.is_some(), taken, "frame {i}");
            if let Some(p) = fast {
                assert_eq!(
                    Ok(Frame::Ip(p)),
                    parse_general(
                        LinkType::Ethernet,
                        &f[i],
                        f[i].len(),
                        ParseOptions::default()
                    )
                );
            }
        }
    }

    proptest! {
        /// Mutated and cut frames: whenever the fast path answers, the general
        /// parser gives the same answer.
        #[test]
        fn fast_path_agrees(which in 0usize..5, flips in prop::collection::vec((0usize..80, any::<u8>()), 0..4),
                            cut in 0usize..100, extra in 0usize..3000, decap in any::<bool>()) {
            let mut f = frames()[which].clone();
            for (at, v) in flips {
                if at < f.len() {
                    f[at] = v;
                }
            }
            let len = f.len().saturating_sub(cut);
            let orig = len + extra;
            let opts = ParseOptions { decap_geneve: decap, gwlb_strict: false };
            if let Some(p) = fast_ipv4(&f[..len], orig, opts) {
                prop_assert_eq!(Ok(Frame::Ip(p)), parse_general(LinkType::Ethernet, &f[..len], orig, opts));
            }
            // And the public entry point never disagrees with the general parser.
            prop_assert_eq!(parse(LinkType::Ethernet, &f[..len], orig, opts), parse_general(LinkType::Ethernet, &f[..len], orig, opts));
        }
    }
}
