//! The encapsulation a parsed packet arrived in (GENEVE, or the VXLAN of
//! AWS Traffic Mirroring), and the return a GWLB appliance makes of a
//! GENEVE packet (SPEC §5): of a whole frame ([`geneve_return`]), or of a
//! UDP payload whose outer ends a socket kept apart
//! ([`OuterEnds::emit_return`]).

use std::net::{IpAddr, SocketAddr};

use super::{LinkType, ParseError};
use crate::base::{IpProto, ZoneId};
use crate::wire::checksum;
use crate::wire::ethernet::EthernetFrame;
use crate::wire::ipv4::{self, Ipv4Packet};
use crate::wire::ipv6::{self, Ipv6Packet};
use crate::wire::udp::{self, UdpPacket};

/// The encapsulation a packet arrived in. Offsets count from the start of
/// the bytes that were parsed: a whole frame ([`super::parse()`]), or a UDP
/// payload that begins with the GENEVE header ([`super::parse_geneve`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tunnel {
    /// Offset of the outer IP header in the frame; `None` when the bytes
    /// began at the GENEVE header, the outer headers' ends given beside
    /// them ([`OuterEnds`]).
    pub outer_ip_offset: Option<u32>,
    /// Offset of the tunnel header (GENEVE or VXLAN) in the frame.
    pub header_offset: u32,
    /// Offset of the inner packet in the frame: for VXLAN, of the inner
    /// Ethernet frame.
    pub inner_offset: u32,
    /// The GWLB endpoint id, when the AWS option is present.
    pub zone: Option<ZoneId>,
    pub encap: Encap,
}

/// Which tunnel a packet arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encap {
    /// GENEVE on UDP 6081 (AWS GWLB, or any other).
    Geneve,
    /// VXLAN on UDP 4789, as AWS Traffic Mirroring sends it; the VNI is the
    /// mirror session's, which `replay --mirror` maps to an interface.
    Vxlan { vni: u32 },
}

/// What the outer IP and UDP headers of a GENEVE datagram said, as a UDP
/// socket reports it beside the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OuterEnds {
    /// The sender (a load balancer node) and the source port it chose.
    pub peer: SocketAddr,
    /// The address the datagram was sent to and the port it arrived on.
    pub local: SocketAddr,
}

/// Bytes of the longest outer headers [`OuterEnds::emit_return`] writes:
/// IPv6 and UDP.
pub const OUTER_HEADERS_MAX: usize = ipv6::HEADER_LEN + udp::HEADER_LEN;

/// The hop limit of a return.
const TTL: u8 = 64;

impl OuterEnds {
    /// Bytes of the outer IP packet that carried a UDP payload of
    /// `payload` bytes between these ends (the outer IP and UDP headers
    /// included); an error where no IP packet can: the two addresses are of
    /// different families, or the datagram is longer than an IP packet
    /// holds (IPv6 without jumbograms).
    pub fn ip_len(&self, payload: usize) -> Result<usize, ParseError> {
        let udp_len = udp::HEADER_LEN + payload;
        let max = usize::from(u16::MAX);
        let (header, udp_max) = match (self.peer.ip(), self.local.ip()) {
            (IpAddr::V4(_), IpAddr::V4(_)) => (ipv4::HEADER_LEN, max - ipv4::HEADER_LEN),
            (IpAddr::V6(_), IpAddr::V6(_)) => (ipv6::HEADER_LEN, max),
            _ => return Err(ParseError::MixedOuterFamilies),
        };
        if udp_len > udp_max {
            return Err(ParseError::BadLength {
                layer: "UDP",
                claimed: udp_len,
                available: udp_max,
            });
        }
        Ok(header + udp_len)
    }

    /// Writes into `buf` the outer IP and UDP headers of the return of a
    /// GENEVE datagram that arrived between these ends with this payload
    /// (SPEC §5): from the address it was sent to and the load balancer's
    /// source port, to the load balancer and the port it arrived on. IPv4
    /// goes with DF and no UDP checksum (0), IPv6 with its UDP checksum,
    /// which covers `payload`. The payload follows the headers unchanged.
    /// Returns the headers' length, or `None` (and writes nothing) where
    /// [`ip_len`](Self::ip_len) fails.
    pub fn emit_return(&self, payload: &[u8], buf: &mut [u8; OUTER_HEADERS_MAX]) -> Option<usize> {
        let total = self.ip_len(payload.len()).ok()?;
        let udp_len = udp::HEADER_LEN + payload.len();
        let (src, dst) = (self.local.ip(), self.peer.ip());
        let at = match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let mut ip = Ipv4Packet::new_unchecked(&mut buf[..ipv4::HEADER_LEN]);
                ip.set_version(4);
                ip.set_header_len(ipv4::HEADER_LEN);
                ip.set_dscp_ecn(0);
                // At most 65535: `ip_len` checked.
                ip.set_total_len(total as u16);
                ip.set_ident(0);
                // Tunnel packets are not fragmented on the way back.
                ip.set_flags_and_frag_offset(true, false, 0);
                ip.set_ttl(TTL);
                ip.set_protocol(IpProto::UDP);
                ip.set_src_addr(s);
                ip.set_dst_addr(d);
                ip.fill_checksum();
                ipv4::HEADER_LEN
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let mut ip = Ipv6Packet::new_unchecked(&mut buf[..ipv6::HEADER_LEN]);
                ip.set_version(6);
                ip.set_traffic_class(0);
                ip.set_flow_label(0);
                ip.set_payload_len(udp_len as u16);
                ip.set_next_header(IpProto::UDP);
                ip.set_hop_limit(TTL);
                ip.set_src_addr(s);
                ip.set_dst_addr(d);
                ipv6::HEADER_LEN
            }
            _ => return None,
        };
        let mut u = UdpPacket::new_unchecked(&mut buf[at..at + udp::HEADER_LEN]);
        u.set_src_port(self.peer.port());
        u.set_dst_port(self.local.port());
        u.set_len(udp_len as u16);
        u.set_checksum(0);
        if src.is_ipv6() {
            // The header and the payload lie apart: sum them apart. The
            // header is 8 bytes, so the payload's words line up.
            let pseudo = checksum::pseudo_header(&src, &dst, IpProto::UDP, udp_len as u32);
            let header = checksum::sum(&buf[at..at + udp::HEADER_LEN]);
            let c = !checksum::combine(&[pseudo, header, checksum::sum(payload)]);
            // 0 would mean "no checksum", which IPv6 does not allow.
            let mut u = UdpPacket::new_unchecked(&mut buf[at..at + udp::HEADER_LEN]);
            u.set_checksum(if c == 0 { 0xffff } else { c });
        }
        Some(at + udp::HEADER_LEN)
    }
}

/// Turns a GENEVE frame as received by an appliance into the frame it sends
/// back (SPEC §5): the outer IP addresses swapped (and the Ethernet addresses,
/// for Ethernet frames), the UDP ports and GENEVE header and options as
/// received. Swapping keeps every checksum valid, as the Internet checksum is
/// a sum. Returns false when the frame is too short for the tunnel's offsets,
/// holds no outer IP header, or is no GENEVE (a mirrored VXLAN packet is a
/// copy that nobody returns).
///
/// The outer packet may be cut short by the capture, so only its fixed
/// header has to be there.
pub fn geneve_return(frame: &mut [u8], link: LinkType, tunnel: &Tunnel) -> bool {
    if tunnel.encap != Encap::Geneve {
        return false;
    }
    let Some(ip) = tunnel
        .outer_ip_offset
        .and_then(|at| frame.get_mut(at as usize..))
    else {
        return false;
    };
    match ip.first().map(|b| b >> 4) {
        Some(4) if ip.len() >= ipv4::HEADER_LEN => Ipv4Packet::new_unchecked(ip).swap_addresses(),
        Some(6) if ip.len() >= ipv6::HEADER_LEN => Ipv6Packet::new_unchecked(ip).swap_addresses(),
        _ => return false,
    }
    if link == LinkType::Ethernet {
        if let Ok(mut eth) = EthernetFrame::new_checked(frame) {
            eth.swap_addresses();
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    use crate::wire::{build, parse, Frame, ParseOptions};

    #[test]
    fn a_return_swaps_both_address_pairs_and_keeps_checksums() {
        for (node, appliance) in [("192.0.2.1", "192.0.2.2"), ("2001:db8::1", "2001:db8::2")] {
            let (node, appliance): (IpAddr, IpAddr) =
                (node.parse().unwrap(), appliance.parse().unwrap());
            let inner = build::udp(
                "10.0.0.1".parse().unwrap(),
                "10.0.0.2".parse().unwrap(),
                1,
                2,
                b"x",
            );
            let options = build::aws_options(1, 2, 3);
            let frame = build::geneve_wrap(node, appliance, 5000, &inner, &options);
            let Ok(Frame::Ip(p)) = parse(
                LinkType::Ethernet,
                &frame,
                frame.len(),
                ParseOptions::default(),
            ) else {
                panic!("parsed")
            };
            let tunnel = p.tunnel.unwrap();
            let mut back = frame.clone();
            assert!(geneve_return(&mut back, LinkType::Ethernet, &tunnel));
            assert_eq!((&back[..6], &back[6..12]), (&frame[6..12], &frame[..6]));
            let again = parse(
                LinkType::Ethernet,
                &back,
                back.len(),
                ParseOptions::default(),
            );
            let Ok(Frame::Ip(q)) = again else {
                panic!("the return parses")
            };
            assert_eq!((q.src, q.dst, q.tunnel), (p.src, p.dst, p.tunnel));
            // The outer addresses are swapped; an intact IPv4 header stays so.
            let outer_ip = tunnel.outer_ip_offset.unwrap() as usize;
            let ip = &back[outer_ip..];
            let outer = if node.is_ipv4() {
                let h = Ipv4Packet::new_checked(ip).unwrap();
                assert!(h.verify_checksum());
                (IpAddr::from(h.src_addr()), IpAddr::from(h.dst_addr()))
            } else {
                let h = Ipv6Packet::new_checked(ip).unwrap();
                (IpAddr::from(h.src_addr()), IpAddr::from(h.dst_addr()))
            };
            assert_eq!(outer, (appliance, node));
            // Too short for the offsets: nothing changes.
            let mut short = frame[..outer_ip + 19].to_vec();
            let before = short.clone();
            assert!(!geneve_return(&mut short, LinkType::Ethernet, &tunnel));
            assert_eq!(short, before);
        }
    }

    fn ends(peer: &str, local: &str) -> OuterEnds {
        OuterEnds {
            peer: peer.parse().unwrap(),
            local: local.parse().unwrap(),
        }
    }

    #[test]
    fn without_outer_headers_there_is_nothing_to_swap() {
        let t = Tunnel {
            outer_ip_offset: None,
            header_offset: 0,
            inner_offset: 40,
            zone: Some(1),
            encap: Encap::Geneve,
        };
        let mut bytes = vec![0x45; 80];
        assert!(!geneve_return(&mut bytes, LinkType::RawIp, &t));
        assert_eq!(bytes, vec![0x45; 80]);
    }

    #[test]
    fn the_outer_packet_has_room_for_what_one_ip_packet_holds() {
        let v4 = ends("192.0.2.1:33000", "192.0.2.2:6081");
        assert_eq!(v4.ip_len(0), Ok(28));
        assert_eq!(v4.ip_len(65_507), Ok(65_535));
        assert_eq!(
            v4.ip_len(65_508),
            Err(ParseError::BadLength {
                layer: "UDP",
                claimed: 65_516,
                available: 65_515
            })
        );
        let v6 = ends("[2001:db8::1]:33000", "[2001:db8::2]:6081");
        assert_eq!(v6.ip_len(100), Ok(148));
        assert_eq!(v6.ip_len(65_527), Ok(65_575));
        assert!(v6.ip_len(65_528).is_err());
        let mixed = ends("192.0.2.1:33000", "[2001:db8::2]:6081");
        assert_eq!(mixed.ip_len(10), Err(ParseError::MixedOuterFamilies));
        let mut buf = [0x55; OUTER_HEADERS_MAX];
        assert_eq!(mixed.emit_return(b"x", &mut buf), None);
        assert_eq!(buf, [0x55; OUTER_HEADERS_MAX]);
    }

    #[test]
    fn an_ipv4_return_has_the_headers_the_kernel_would_write() {
        let e = ends("192.0.2.1:33000", "192.0.2.2:16081");
        let mut buf = [0xff; OUTER_HEADERS_MAX];
        assert_eq!(e.emit_return(b"abcd", &mut buf), Some(28));
        let h = &buf[..28];
        // Version 4, 5 words, length 32, DF, TTL 64, UDP.
        assert_eq!(&h[..10], &[0x45, 0, 0, 32, 0, 0, 0x40, 0, 64, 17]);
        assert_eq!(checksum::checksum(&h[..20]), 0);
        assert_eq!(&h[12..20], &[192, 0, 2, 2, 192, 0, 2, 1]);
        // 33000 → 16081, length 12, no checksum.
        assert_eq!(&h[20..28], &[0x80, 0xe8, 0x3e, 0xd1, 0, 12, 0, 0]);
    }

    #[test]
    fn an_ipv6_return_has_a_valid_udp_checksum() {
        let e = ends("[2001:db8::1]:33000", "[2001:db8::2]:6081");
        for payload in [&b""[..], b"odd", b"even", &[0xff; 1401]] {
            let mut buf = [0xff; OUTER_HEADERS_MAX];
            assert_eq!(e.emit_return(payload, &mut buf), Some(48));
            let packet = [&buf[..], payload].concat();
            // etherparse reads it and checks the checksum it would write against ours.
            let sliced = etherparse::SlicedPacket::from_ip(&packet).unwrap();
            let Some(etherparse::NetSlice::Ipv6(v6)) = &sliced.net else {
                panic!("IPv6")
            };
            let v6 = v6.header().to_header();
            assert_eq!(
                (v6.source, v6.destination, v6.hop_limit),
                (
                    "2001:db8::2"
                        .parse::<std::net::Ipv6Addr>()
                        .unwrap()
                        .octets(),
                    "2001:db8::1"
                        .parse::<std::net::Ipv6Addr>()
                        .unwrap()
                        .octets(),
                    64
                )
            );
            let Some(etherparse::TransportSlice::Udp(u)) = sliced.transport else {
                panic!("UDP")
            };
            assert_eq!((u.source_port(), u.destination_port()), (33000, 6081));
            assert_eq!(u.payload(), payload);
            let want = u.to_header().calc_checksum_ipv6(&v6, u.payload()).unwrap();
            assert_eq!(u.checksum(), want);
            let src: IpAddr = "2001:db8::2".parse().unwrap();
            let dst: IpAddr = "2001:db8::1".parse().unwrap();
            assert!(UdpPacket::new_checked(&packet[40..])
                .unwrap()
                .verify_checksum(&src, &dst));
        }
    }
}
