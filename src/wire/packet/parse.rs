//! The parser: link layer, VLAN tags, IPv4 or IPv6 with extension headers,
//! the transport header, and one tunnel (GENEVE, or VXLAN with its inner
//! Ethernet frame), with fast paths for the most common frames (IPv4 and IPv6).
//!
//! Written by hand rather than with etherparse's slicers because the hot path
//! needs those length rules and only a handful of fields; `benches/parse.rs`
//! compares the two. Fixed headers are read through the views of
//! [`crate::wire`], `new_unchecked` once the parser has checked the length
//! (a capture cut short is no whole packet, so `new_checked` does not apply).

use std::net::IpAddr;

use super::{
    Encap, Fragment, Frame, IpPacket, LinkType, OuterEnds, ParseError, ParseOptions, Tunnel, L4,
};
use crate::base::{IpProto, ZoneId};
use crate::wire::ethernet::{self, ether_type, EthernetFrame};
use crate::wire::geneve::{self, GeneveError, GenevePacket};
use crate::wire::ipv4::{self, Ipv4Packet};
use crate::wire::ipv6::{self, ext, Ipv6Packet};
use crate::wire::tcp::{self, TcpPacket};
use crate::wire::udp::{self, UdpPacket};
use crate::wire::vxlan::{self, VxlanPacket};
use crate::wire::{checksum, icmp, read_u16, read_u32};

/// Link-layer headers that have no view of their own: where their protocol
/// field is, and how long they are.
mod link {
    use crate::wire::Field;

    /// BSD loopback: a 4-byte address family in the capturing host's order.
    pub const NULL_LEN: usize = 4;
    /// Linux cooked capture v1: the protocol (an EtherType) ends the header.
    pub const SLL_PROTOCOL: Field = 14..16;
    pub const SLL_LEN: usize = 16;
    /// Linux cooked capture v2: the protocol comes first.
    pub const SLL2_PROTOCOL: Field = 0..2;
    pub const SLL2_LEN: usize = 20;
    /// Cisco HDLC: address, control, then an EtherType.
    pub const HDLC_PROTOCOL: Field = 2..4;
    pub const HDLC_LEN: usize = 4;
    /// PPP protocol numbers of IPv4 and IPv6.
    pub const PPP_IPV4: u16 = 0x21;
    pub const PPP_IPV6: u16 = 0x57;
}

/// Version 4 and a 5-word header: IPv4 without options.
const IPV4_NO_OPTIONS: u8 = 0x45;

/// Parses one captured frame. `orig_len` is its length on the wire (at least
/// `data.len()`; pass `data.len()` when nothing was cut).
///
/// Always inlined (the general parser is not): returned from a call, the
/// packet's fields were stored piecewise and loaded back wider by the
/// caller, loads the stores could not be forwarded to (a fifth of staging's
/// time in a scan, perf annotate).
#[inline(always)]
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
        if let Some(p) = fast_ipv6(data, orig_len, opts) {
            return Ok(Frame::Ip(p));
        }
    }
    parse_general(link, data, orig_len, opts)
}

/// [`parse`] without the fast path: every frame through the layered parser.
#[inline(never)]
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
        ip: None,
    };
    cx.link(link, data)
}

/// Parses the payload of a UDP datagram that arrived on a GENEVE port, as a
/// socket receives it: the GENEVE header at byte 0, then the inner packet,
/// with `outer` what the outer IP and UDP headers said. The result is what
/// [`parse`] gives for the whole outer packet, but that the [`Tunnel`]'s
/// offsets count from the payload's start and it has no outer IP offset
/// (as the transport offset counts from there too). Ends of two families,
/// or a payload longer than one IP packet holds, are malformed
/// ([`OuterEnds::ip_len`]): no packet carried them. The payload is GENEVE
/// by where it arrived, so `opts.decap_geneve` is not asked.
pub fn parse_geneve(
    payload: &[u8],
    outer: &OuterEnds,
    opts: ParseOptions,
) -> Result<Frame, ParseError> {
    outer.ip_len(payload.len())?;
    let cx = Cx {
        cut: 0,
        opts,
        depth: 0,
        base: 0,
        ip: None,
    };
    cx.geneve(payload)
}

/// The most common frame in straight-line code: Ethernet without VLAN tags,
/// IPv4 without options or fragmentation, TCP or UDP (not a tunnel). `None`
/// for anything else, including anything malformed: the general parser then
/// decides, so both paths always agree (`tests::fast_path_agrees`).
#[inline]
pub fn fast_ipv4(d: &[u8], orig_len: usize, opts: ParseOptions) -> Option<IpPacket> {
    const IP: usize = ethernet::HEADER_LEN;
    const L4: usize = IP + ipv4::HEADER_LEN;
    if d.len() < L4 + udp::HEADER_LEN
        || read_u16(d, ethernet::field::ETHERTYPE) != ether_type::IPV4
        || d[IP + ipv4::field::VER_IHL] != IPV4_NO_OPTIONS
    {
        return None;
    }
    let ip = Ipv4Packet::new_unchecked(&d[IP..]);
    let total = usize::from(ip.total_len());
    let on_wire = orig_len.max(d.len()) - IP;
    if ip.is_fragment()
        || total < ipv4::HEADER_LEN + udp::HEADER_LEN
        || total > on_wire
        || !checksum::header_ok(&d[IP..L4])
    {
        return None;
    }
    Some(IpPacket {
        src: IpAddr::V4(ip.src_addr()),
        dst: IpAddr::V4(ip.dst_addr()),
        proto: ip.protocol(),
        ip_len: total as u32,
        fragment: Fragment::Whole,
        l4: fast_l4(ip.protocol(), &d[L4..], total - ipv4::HEADER_LEN, opts)?,
        tunnel: None,
        l4_offset: L4 as u32,
    })
}

/// [`fast_ipv4`]'s IPv6 twin: Ethernet without VLAN tags, IPv6 without
/// extension headers, TCP or UDP (not a tunnel); `None` for anything else.
/// A scan of IPv6 addresses spent a tenth of its time in the general parser.
#[inline]
pub fn fast_ipv6(d: &[u8], orig_len: usize, opts: ParseOptions) -> Option<IpPacket> {
    const IP: usize = ethernet::HEADER_LEN;
    const L4: usize = IP + ipv6::HEADER_LEN;
    if d.len() < L4 + udp::HEADER_LEN || read_u16(d, ethernet::field::ETHERTYPE) != ether_type::IPV6
    {
        return None;
    }
    let ip = Ipv6Packet::new_unchecked(&d[IP..]);
    let total = ip.total_len();
    let on_wire = orig_len.max(d.len()) - IP;
    if ip.version() != 6 || total < ipv6::HEADER_LEN + udp::HEADER_LEN || total > on_wire {
        return None;
    }
    let proto = ip.next_header();
    Some(IpPacket {
        src: IpAddr::V6(ip.src_addr()),
        dst: IpAddr::V6(ip.dst_addr()),
        proto,
        ip_len: total as u32,
        fragment: Fragment::Whole,
        l4: fast_l4(proto, &d[L4..], total - ipv6::HEADER_LEN, opts)?,
        tunnel: None,
        l4_offset: L4 as u32,
    })
}

/// The fast paths' transport header: TCP or UDP that is whole (`l4_len`
/// bytes of it on the wire) and no tunnel to open; `None` for anything else.
#[inline(always)]
fn fast_l4(proto: IpProto, l4: &[u8], l4_len: usize, opts: ParseOptions) -> Option<L4> {
    match proto {
        IpProto::TCP => {
            if l4.len() < tcp::HEADER_LEN {
                return None;
            }
            let t = TcpPacket::new_unchecked(l4);
            if t.header_len() < tcp::HEADER_LEN || t.header_len() > l4_len {
                return None;
            }
            Some(L4::Tcp {
                sport: t.src_port(),
                dport: t.dst_port(),
                flags: t.flags(),
            })
        }
        IpProto::UDP => {
            let u = UdpPacket::new_unchecked(l4);
            let ulen = usize::from(u.len());
            let dport = u.dst_port();
            if ulen < udp::HEADER_LEN
                || ulen > l4_len
                || (dport == geneve::UDP_PORT && opts.decap_geneve)
                || (dport == vxlan::UDP_PORT && opts.decap_vxlan)
            {
                return None;
            }
            Some(L4::Udp {
                sport: u.src_port(),
                dport,
            })
        }
        _ => None,
    }
}

#[derive(Clone, Copy)]
struct Cx {
    cut: usize,
    opts: ParseOptions,
    /// Encapsulation depth: a tunnel inside a tunnel is not opened again.
    depth: u8,
    /// Offset of the current buffer in the frame.
    base: usize,
    /// Offset of the IP header being parsed; `None` before any (a GENEVE
    /// payload parsed on its own).
    ip: Option<usize>,
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

/// Where in a fragmented datagram a packet is, from its fragment offset,
/// more-fragments flag and identification.
fn fragment(offset: u16, more: bool, id: u32) -> Fragment {
    match (offset, more) {
        (0, false) => Fragment::Whole,
        (0, true) => Fragment::First { id },
        _ => Fragment::Later { id },
    }
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
                need("loopback", d, link::NULL_LEN)?;
                let fam = if big_endian {
                    be32(d, 0)
                } else {
                    u32::from_le_bytes([d[0], d[1], d[2], d[3]])
                };
                let (at, rest) = (link::NULL_LEN, &d[link::NULL_LEN..]);
                match fam {
                    2 => self.at(at).ipv4(rest),
                    // AF_INET6 differs between BSDs and macOS.
                    10 | 24 | 28 | 30 => self.at(at).ipv6(rest),
                    other => Ok(Frame::NotIp(other as u16)),
                }
            }
            LinkType::LinuxSll => {
                need("Linux cooked", d, link::SLL_LEN)?;
                let proto = read_u16(d, link::SLL_PROTOCOL);
                self.at(link::SLL_LEN).ethertype(proto, &d[link::SLL_LEN..])
            }
            LinkType::LinuxSll2 => {
                need("Linux cooked v2", d, link::SLL2_LEN)?;
                let proto = read_u16(d, link::SLL2_PROTOCOL);
                self.at(link::SLL2_LEN)
                    .ethertype(proto, &d[link::SLL2_LEN..])
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
                    link::PPP_IPV4 => self.at(off + len).ipv4(rest),
                    link::PPP_IPV6 => self.at(off + len).ipv6(rest),
                    other => Ok(Frame::NotIp(other)),
                }
            }
            LinkType::CiscoHdlc => {
                need("Cisco HDLC", d, link::HDLC_LEN)?;
                let proto = read_u16(d, link::HDLC_PROTOCOL);
                self.at(link::HDLC_LEN)
                    .ethertype(proto, &d[link::HDLC_LEN..])
            }
        }
    }

    #[inline]
    fn ethernet(self, d: &[u8]) -> Result<Frame, ParseError> {
        need("Ethernet", d, ethernet::HEADER_LEN)?;
        let mut ethertype = EthernetFrame::new_unchecked(d).ethertype();
        let mut off = ethernet::HEADER_LEN;
        let mut tags = 0;
        while matches!(
            ethertype,
            ether_type::VLAN | ether_type::QINQ | ether_type::QINQ_OLD
        ) {
            tags += 1;
            if tags > 8 {
                return Err(ParseError::TooManyVlans);
            }
            let tag = &d[off..];
            need("802.1Q", tag, ethernet::VLAN_TAG_LEN)?;
            ethertype = read_u16(tag, ethernet::field::VLAN_ETHERTYPE);
            off += ethernet::VLAN_TAG_LEN;
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
        need("IPv4", d, ipv4::HEADER_LEN)?;
        let h = Ipv4Packet::new_unchecked(d);
        let version = h.version();
        if version != 4 {
            return Err(ParseError::BadIpVersion(version, 4));
        }
        let ihl = h.header_len();
        if ihl < ipv4::HEADER_LEN {
            return Err(ParseError::BadIhl(ihl));
        }
        need("IPv4 options", d, ihl)?;
        if !checksum::header_ok(&d[..ihl]) {
            return Err(ParseError::BadIpv4Checksum);
        }
        let total = usize::from(h.total_len());
        let len = self.check_len("IPv4 total", d, total, ihl)?;
        let fragment = fragment(h.frag_offset(), h.more_frags(), u32::from(h.ident()));
        let src = IpAddr::V4(h.src_addr());
        let dst = IpAddr::V4(h.dst_addr());
        let proto = h.protocol();
        let payload = &d[ihl..len];
        let inner = Cx {
            cut: self.cut.saturating_sub(d.len() - len),
            ip: Some(self.base),
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
        need("IPv6", d, ipv6::HEADER_LEN)?;
        let h = Ipv6Packet::new_unchecked(d);
        let version = h.version();
        if version != 6 {
            return Err(ParseError::BadIpVersion(version, 6));
        }
        let ip_len = h.total_len();
        let len = self.check_len("IPv6 payload", d, ip_len, ipv6::HEADER_LEN)?;
        let src = IpAddr::V6(h.src_addr());
        let dst = IpAddr::V6(h.dst_addr());
        let mut next = h.next_header().0;
        let mut off = ipv6::HEADER_LEN;
        let mut fragment = Fragment::Whole;
        // Walk extension headers (RFC 8200 §4) until the upper layer.
        loop {
            let rest = &d[off..len];
            match next {
                ext::AUTH => {
                    need("IPv6 AH", rest, ext::MIN_LEN)?;
                    let hl = (usize::from(rest[ext::LENGTH]) + 2) * 4;
                    need("IPv6 AH", rest, hl)?;
                    next = rest[ext::NEXT_HEADER];
                    off += hl;
                }
                ext::FRAGMENT => {
                    need("IPv6 fragment", rest, ext::FRAGMENT_LEN)?;
                    let offset_more = read_u16(rest, ext::FRAG_OFFSET);
                    let offset = offset_more >> 3;
                    let more = offset_more & ext::FRAG_MORE != 0;
                    let id = read_u32(rest, ext::FRAG_IDENT);
                    next = rest[ext::NEXT_HEADER];
                    off += ext::FRAGMENT_LEN;
                    fragment = self::fragment(offset, more, id);
                    if let Fragment::Later { .. } = fragment {
                        break;
                    }
                }
                n if ext::is_generic(n) => {
                    need("IPv6 extension", rest, ext::MIN_LEN)?;
                    let hl = (usize::from(rest[ext::LENGTH]) + 1) * 8;
                    need("IPv6 extension", rest, hl)?;
                    next = rest[ext::NEXT_HEADER];
                    off += hl;
                }
                _ => break,
            }
        }
        let inner = Cx {
            cut: self.cut.saturating_sub(d.len() - len),
            ip: Some(self.base),
            ..self.at(off)
        };
        inner.transport(
            src,
            dst,
            IpProto(next),
            ip_len as u32,
            fragment,
            &d[off..len],
            ip_len - off,
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
                need("TCP", p, tcp::HEADER_LEN)?;
                let t = TcpPacket::new_unchecked(p);
                let header_len = t.header_len();
                if header_len < tcp::HEADER_LEN {
                    return Err(ParseError::BadTcpOffset((header_len / 4) as u8));
                }
                if whole && header_len > wire_len {
                    return Err(ParseError::BadLength {
                        layer: "TCP header",
                        claimed: header_len,
                        available: wire_len,
                    });
                }
                pkt.l4 = L4::Tcp {
                    sport: t.src_port(),
                    dport: t.dst_port(),
                    flags: t.flags(),
                };
            }
            IpProto::UDP => {
                need("UDP", p, udp::HEADER_LEN)?;
                let u = UdpPacket::new_unchecked(p);
                let ulen = usize::from(u.len());
                if whole && (ulen < udp::HEADER_LEN || ulen > wire_len) {
                    return Err(ParseError::BadLength {
                        layer: "UDP",
                        claimed: ulen,
                        available: wire_len,
                    });
                }
                let (sport, dport) = (u.src_port(), u.dst_port());
                pkt.l4 = L4::Udp { sport, dport };
                if self.depth == 0 && whole {
                    let payload = &p[udp::HEADER_LEN..ulen.min(p.len())];
                    if dport == geneve::UDP_PORT && self.opts.decap_geneve {
                        return self.at(udp::HEADER_LEN).geneve(payload);
                    }
                    if dport == vxlan::UDP_PORT && self.opts.decap_vxlan {
                        return self.at(udp::HEADER_LEN).vxlan(payload);
                    }
                }
            }
            IpProto::ICMP | IpProto::ICMPV6 => {
                need("ICMP", p, icmp::field::CHECKSUM.end)?;
                let (typ, code) = (p[icmp::field::TYPE], p[icmp::field::CODE]);
                let ident = if icmp::is_echo(proto == IpProto::ICMPV6, typ) {
                    need("ICMP echo", p, icmp::HEADER_LEN)?;
                    read_u16(p, icmp::field::ECHO_IDENT)
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
            other => return Err(ParseError::Geneve(GeneveError::UnsupportedProtocol(other))),
        };
        Ok(self.tunnelled(frame, inner, zone, Encap::Geneve))
    }

    /// A VXLAN header at the start of `d` and the Ethernet frame it carries
    /// (Traffic Mirroring's copy of what an interface sent or received).
    fn vxlan(self, d: &[u8]) -> Result<Frame, ParseError> {
        let v = VxlanPacket::new_checked(d).map_err(ParseError::Vxlan)?;
        let inner = Cx {
            depth: self.depth + 1,
            ..self.at(vxlan::HEADER_LEN)
        };
        let frame = inner.ethernet(v.payload())?;
        Ok(self.tunnelled(frame, inner, None, Encap::Vxlan { vni: v.vni() }))
    }

    /// The inner `frame` parsed at `inner`, marked as carried in a tunnel
    /// whose header is at this context's offset.
    fn tunnelled(self, frame: Frame, inner: Cx, zone: Option<ZoneId>, encap: Encap) -> Frame {
        match frame {
            Frame::Ip(mut p) => {
                p.tunnel = Some(Tunnel {
                    outer_ip_offset: self.ip.map(|at| at as u32),
                    header_offset: self.base as u32,
                    inner_offset: inner.base as u32,
                    zone,
                    encap,
                });
                Frame::Ip(p)
            }
            other => other,
        }
    }
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
            build::udp(ip("2001:db8::1"), ip("2001:db8::2"), 5353, 53, b"query"),
            build::udp(ip("2001:db8::1"), ip("2001:db8::2"), 5353, 6081, &[0u8; 40]),
            build::echo(ip("2001:db8::1"), ip("2001:db8::2"), true, 3, 4),
        ]
    }

    /// What the fast paths make of a frame, if either takes it.
    fn fast(d: &[u8], orig_len: usize, opts: ParseOptions) -> Option<IpPacket> {
        fast_ipv4(d, orig_len, opts).or_else(|| fast_ipv6(d, orig_len, opts))
    }

    #[test]
    fn fast_path_takes_the_common_frames() {
        let f = &frames();
        let takes = [true, true, false, true, false, true, false, false];
        for (i, &taken) in takes.iter().enumerate() {
            let fast = fast(&f[i], f[i].len(), ParseOptions::default());
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
        fn fast_path_agrees(which in 0usize..8, flips in prop::collection::vec((0usize..80, any::<u8>()), 0..4),
                            cut in 0usize..100, extra in 0usize..3000, decap in any::<bool>()) {
            let mut f = frames()[which].clone();
            for (at, v) in flips {
                if at < f.len() {
                    f[at] = v;
                }
            }
            let len = f.len().saturating_sub(cut);
            let orig = len + extra;
            let opts = ParseOptions { decap_geneve: decap, decap_vxlan: decap, gwlb_strict: false };
            if let Some(p) = fast(&f[..len], orig, opts) {
                prop_assert_eq!(Ok(Frame::Ip(p)), parse_general(LinkType::Ethernet, &f[..len], orig, opts));
            }
            // And the public entry point never disagrees with the general parser.
            prop_assert_eq!(parse(LinkType::Ethernet, &f[..len], orig, opts), parse_general(LinkType::Ethernet, &f[..len], orig, opts));
        }
    }

    /// GENEVE payloads as GWLB sends them and as it should not: inner TCP,
    /// UDP, ICMP echo and error, IPv6, a fragment, inner Ethernet; another
    /// version, options past the end, no or unknown critical options, the
    /// O bit, an unknown protocol type.
    fn geneve_payloads() -> Vec<Vec<u8>> {
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        let aws = build::aws_options(0xe1, 7, 9);
        let wrap = |inner: &[u8], options: &[u8], protocol: u16| {
            let inner = &inner[ethernet::HEADER_LEN..];
            let mut p = vec![0u8; geneve::HEADER_LEN + options.len()];
            geneve::emit(&mut p, 0, protocol, options).unwrap();
            p.extend_from_slice(inner);
            p
        };
        let (a, b) = (ip("10.0.0.1"), ip("10.0.0.2"));
        let syn = build::tcp(a, b, 40000, 443, 0x02, 1, 0, b"x");
        let mut out: Vec<Vec<u8>> = [
            syn.clone(),
            build::udp(a, b, 5000, 53, b"q"),
            build::echo(a, b, true, 7, 1),
            build::icmp_error(b, a, 3, 3, &syn),
            build::tcp(
                ip("2001:db8::1"),
                ip("2001:db8::2"),
                1,
                443,
                0x02,
                0,
                0,
                b"",
            ),
            build::fragment_v4(&build::udp(a, b, 1, 2, &[7; 64]), 32, 9)[1].clone(),
        ]
        .iter()
        .map(|f| wrap(f, &aws, if f[14] >> 4 == 4 { 0x0800 } else { 0x86dd }))
        .collect();
        let mut eth = vec![0u8; geneve::HEADER_LEN + aws.len()];
        geneve::emit(&mut eth, 0, ether_type::TRANS_ETHER, &aws).unwrap();
        eth.extend_from_slice(&syn);
        out.push(eth);
        let good = out[0].clone();
        let mut v1 = good.clone();
        v1[0] |= 0x40;
        let mut oam = good.clone();
        oam[1] |= 0x80;
        let mut past_end = good[..60].to_vec();
        past_end[0] = 0x3f;
        let mut critical = aws.clone();
        critical.extend_from_slice(&[0x09, 0x99, 0x81, 0x00]);
        let mut plain = aws.clone();
        plain.extend_from_slice(&[0x09, 0x99, 0x01, 0x00]);
        out.extend([
            v1,
            oam,
            past_end,
            wrap(&syn, &[], 0x0800),
            wrap(&syn, &critical, 0x0800),
            wrap(&syn, &plain, 0x0800),
            wrap(&syn, &aws, 0x1234),
            wrap(&syn, &build::aws_options(1, 2, 3)[..12], 0x0800),
        ]);
        out
    }

    /// What [`parse`] gives for the whole packet that carried `payload`
    /// between `outer`'s ends (to port 6081, where it decapsulates), with
    /// the offsets made relative to the payload, as [`parse_geneve`] gives them.
    fn parse_whole(
        payload: &[u8],
        outer: &OuterEnds,
        opts: ParseOptions,
    ) -> Result<Frame, ParseError> {
        let frame = build::udp(
            outer.peer.ip(),
            outer.local.ip(),
            outer.peer.port(),
            geneve::UDP_PORT,
            payload,
        );
        let packet = &frame[ethernet::HEADER_LEN..];
        let headers = (packet.len() - payload.len()) as u32;
        let parsed = parse(LinkType::RawIp, packet, packet.len(), opts)?;
        Ok(match parsed {
            Frame::Ip(p) => {
                let t = p.tunnel.expect("decapsulated");
                assert_eq!(t.outer_ip_offset, Some(0));
                Frame::Ip(p.past_outer_headers(headers))
            }
            other => other,
        })
    }

    fn outer_ends() -> [OuterEnds; 2] {
        [
            OuterEnds {
                peer: "192.0.2.1:33000".parse().unwrap(),
                local: "192.0.2.2:16081".parse().unwrap(),
            },
            OuterEnds {
                peer: "[2001:db8::1]:33000".parse().unwrap(),
                local: "[2001:db8::2]:6081".parse().unwrap(),
            },
        ]
    }

    const STRICT: ParseOptions = ParseOptions {
        decap_geneve: true,
        decap_vxlan: true,
        gwlb_strict: true,
    };

    #[test]
    fn a_geneve_payload_parses_as_the_packet_that_carried_it() {
        let mut zones = 0;
        for opts in [STRICT, ParseOptions::default()] {
            for outer in outer_ends() {
                for p in geneve_payloads() {
                    for len in 0..=p.len() {
                        let got = parse_geneve(&p[..len], &outer, opts);
                        assert_eq!(got, parse_whole(&p[..len], &outer, opts), "{opts:?} {len}");
                        if let (Ok(Frame::Ip(q)), true) = (got, len == p.len()) {
                            let t = q.tunnel.unwrap();
                            assert_eq!((t.outer_ip_offset, t.header_offset), (None, 0));
                            zones += usize::from(t.zone == Some(0xe1));
                        }
                    }
                }
            }
        }
        assert!(zones > 20, "{zones}");
    }

    #[test]
    fn a_payload_no_ip_packet_could_carry_is_malformed() {
        let p = &geneve_payloads()[0];
        let [v4, v6] = outer_ends();
        let mixed = OuterEnds {
            peer: v4.peer,
            local: v6.local,
        };
        assert_eq!(
            parse_geneve(p, &mixed, STRICT),
            Err(ParseError::MixedOuterFamilies)
        );
        let mut huge = p.clone();
        huge.resize(65_508, 0);
        assert!(matches!(
            parse_geneve(&huge, &v4, STRICT),
            Err(ParseError::BadLength { layer: "UDP", .. })
        ));
        assert!(parse_geneve(&huge, &v6, STRICT).is_ok());
    }

    proptest! {
        /// Any bytes, and mutations of real payloads: the payload parser
        /// and the whole-packet parser agree.
        #[test]
        fn a_mutated_geneve_payload_parses_as_the_packet_that_carried_it(
            which in 0usize..15,
            flips in prop::collection::vec((0usize..120, any::<u8>()), 0..4),
            cut in 0usize..130,
            v6 in any::<bool>(),
            strict in any::<bool>(),
        ) {
            let payloads = geneve_payloads();
            let mut p = payloads[which % payloads.len()].clone();
            for (at, v) in flips {
                if at < p.len() {
                    p[at] = v;
                }
            }
            p.truncate(p.len().saturating_sub(cut));
            let outer = outer_ends()[usize::from(v6)];
            let opts = if strict { STRICT } else { ParseOptions::default() };
            prop_assert_eq!(parse_geneve(&p, &outer, opts), parse_whole(&p, &outer, opts));
        }
    }

    /// An Ethernet frame with an 802.1Q tag (VLAN 100) inserted.
    fn vlan_tagged(frame: &[u8]) -> Vec<u8> {
        [&frame[..12], &[0x81, 0x00, 0x00, 0x64], &frame[12..]].concat()
    }

    /// A mirrored frame and what [`parse`] gives for it: the inner packet
    /// as the inner frame parses alone, offsets moved past the outer
    /// headers, with the tunnel's VNI.
    fn mirrored(inner: &[u8], vni: u32, v6: bool) -> (Vec<u8>, Result<Frame, ParseError>) {
        let (a, b): (IpAddr, IpAddr) = if v6 {
            (
                "2001:db8::10".parse().unwrap(),
                "2001:db8::20".parse().unwrap(),
            )
        } else {
            ("192.0.2.10".parse().unwrap(), "192.0.2.20".parse().unwrap())
        };
        let frame = build::vxlan_wrap(a, b, 40000, vni, inner);
        let got = parse(
            LinkType::Ethernet,
            &frame,
            frame.len(),
            ParseOptions::default(),
        );
        (frame, got)
    }

    #[test]
    fn vxlan_carries_an_ethernet_frame_whose_ip_packet_is_judged() {
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        let syn = build::tcp(ip("10.0.1.5"), ip("10.0.2.9"), 40000, 5432, 0x02, 1, 0, b"");
        let v6 = build::udp(ip("2001:db8:1::5"), ip("2001:db8:2::9"), 5000, 53, b"q");
        for inner in [syn.clone(), vlan_tagged(&syn), v6.clone(), vlan_tagged(&v6)] {
            for outer_v6 in [false, true] {
                let (frame, got) = mirrored(&inner, 0x2c0d45, outer_v6);
                let Ok(Frame::Ip(p)) = got else {
                    panic!("decapsulated: {got:?}")
                };
                let at = frame.len() - inner.len();
                let Ok(Frame::Ip(alone)) = parse(
                    LinkType::Ethernet,
                    &inner,
                    inner.len(),
                    ParseOptions::default(),
                ) else {
                    panic!("the inner frame parses")
                };
                let t = p.tunnel.expect("tunnel");
                assert_eq!(
                    t,
                    Tunnel {
                        outer_ip_offset: Some(ethernet::HEADER_LEN as u32),
                        header_offset: (at - vxlan::HEADER_LEN) as u32,
                        inner_offset: at as u32,
                        zone: None,
                        encap: Encap::Vxlan { vni: 0x2c0d45 },
                    }
                );
                let expected = IpPacket {
                    tunnel: Some(t),
                    l4_offset: alone.l4_offset + at as u32,
                    ..alone
                };
                assert_eq!(p, expected);
            }
        }
        // ARP inside is ARP; another EtherType is that EtherType.
        let mut arp = syn.clone();
        arp[12..14].copy_from_slice(&ether_type::ARP.to_be_bytes());
        assert_eq!(mirrored(&arp, 1, false).1, Ok(Frame::Arp));
        assert_eq!(mirrored(&vlan_tagged(&arp), 1, false).1, Ok(Frame::Arp));
        let mut lldp = syn.clone();
        lldp[12..14].copy_from_slice(&0x88ccu16.to_be_bytes());
        assert_eq!(mirrored(&lldp, 1, false).1, Ok(Frame::NotIp(0x88cc)));
    }

    #[test]
    fn malformed_vxlan_is_malformed() {
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        let syn = build::tcp(ip("10.0.1.5"), ip("10.0.2.9"), 40000, 5432, 0x02, 1, 0, b"");
        let outer = |payload: &[u8]| {
            let f = build::udp(
                ip("192.0.2.10"),
                ip("192.0.2.20"),
                40000,
                vxlan::UDP_PORT,
                payload,
            );
            parse(LinkType::Ethernet, &f, f.len(), ParseOptions::default())
        };
        let mut header = [0u8; vxlan::HEADER_LEN];
        vxlan::emit(&mut header, 7);
        // Every truncation of the VXLAN header.
        for len in 0..vxlan::HEADER_LEN {
            assert_eq!(
                outer(&header[..len]),
                Err(ParseError::Vxlan(vxlan::VxlanError::Truncated {
                    required: vxlan::HEADER_LEN,
                    len
                }))
            );
        }
        // The I flag clear.
        let mut clear = header.to_vec();
        clear[0] = 0;
        clear.extend_from_slice(&syn);
        assert_eq!(
            outer(&clear),
            Err(ParseError::Vxlan(vxlan::VxlanError::NoVni(0)))
        );
        // The inner frame cut short: in its Ethernet header, its VLAN tag, its IP header.
        let tagged = vlan_tagged(&syn);
        for (inner, layer) in [
            (&syn[..10], "Ethernet"),
            (&tagged[..16], "802.1Q"),
            (&syn[..30], "IPv4"),
        ] {
            let got = outer(&[&header[..], inner].concat());
            assert!(
                matches!(got, Err(ParseError::Truncated { layer: l, .. }) if l == layer),
                "{layer}: {got:?}"
            );
            assert_eq!(got.unwrap_err().kind(), layer);
        }
        // Off: UDP to 4789 is UDP, and so is VXLAN inside a tunnel.
        let f = build::vxlan_wrap(ip("192.0.2.10"), ip("192.0.2.20"), 1, 7, &syn);
        let off = ParseOptions {
            decap_vxlan: false,
            ..ParseOptions::default()
        };
        let Ok(Frame::Ip(p)) = parse(LinkType::Ethernet, &f, f.len(), off) else {
            panic!("parsed")
        };
        assert_eq!((p.tunnel, p.ports()), (None, Some((1, vxlan::UDP_PORT))));
        let g = build::geneve_wrap(
            ip("192.0.2.1"),
            ip("192.0.2.2"),
            9,
            &f,
            &build::aws_options(1, 2, 3),
        );
        let Ok(Frame::Ip(p)) = parse(LinkType::Ethernet, &g, g.len(), ParseOptions::default())
        else {
            panic!("parsed")
        };
        assert_eq!(p.tunnel.map(|t| t.encap), Some(Encap::Geneve));
        assert_eq!(p.ports(), Some((1, vxlan::UDP_PORT)));
    }

    proptest! {
        /// Mutated and cut mirrored frames never panic; whatever parses as
        /// VXLAN parses as its inner frame does alone.
        #[test]
        fn a_mutated_mirrored_frame_parses_as_its_inner_frame(
            which in 0usize..5,
            flips in prop::collection::vec((0usize..140, any::<u8>()), 0..4),
            cut in 0usize..120,
            tag in any::<bool>(),
        ) {
            let inner = frames()[which].clone();
            let inner = if tag { vlan_tagged(&inner) } else { inner };
            let (mut f, _) = mirrored(&inner, 42, false);
            for (at, v) in flips {
                if at < f.len() {
                    f[at] = v;
                }
            }
            f.truncate(f.len().saturating_sub(cut));
            let got = parse(LinkType::Ethernet, &f, f.len(), ParseOptions::default());
            if let Ok(Frame::Ip(IpPacket { tunnel: Some(t @ Tunnel { encap: Encap::Vxlan { .. }, .. }), .. })) = got {
                let at = t.inner_offset as usize;
                // A tunnel inside is not opened again (depth 1).
                let once = ParseOptions { decap_geneve: false, decap_vxlan: false, gwlb_strict: false };
                let alone = parse(LinkType::Ethernet, &f[at..], f.len() - at, once);
                let Ok(Frame::Ip(p)) = got else { unreachable!() };
                let Ok(Frame::Ip(q)) = alone else {
                    return Err(TestCaseError::fail(format!("inner alone: {alone:?}")));
                };
                prop_assert_eq!(p.l4_offset, q.l4_offset + at as u32);
                prop_assert_eq!((p.src, p.dst, p.l4, p.fragment), (q.src, q.dst, q.l4, q.fragment));
            }
        }
    }
}
