//! Frames: a received GENEVE datagram with an outer IP and UDP header in
//! front, so the engine parses it like any captured GENEVE packet (and
//! finds the inner packet, its zone and what is malformed), and so that an
//! allowed one is already the packet the raw socket returns; a UDP return
//! socket sends what follows its UDP header ([`ends`]).
//!
//! The header is written the way the return goes out (SPEC §5): source the
//! address the datagram was sent to, destination the load balancer node, UDP
//! source port as received, destination port 6081; the GENEVE header and
//! everything after it are the datagram's own bytes, untouched. Only two
//! things change after the verdict ([`make_return`]): the destination port
//! becomes the port the datagram arrived on if that is not 6081 (the engine
//! decapsulates port 6081 only), and an IPv6 return gets its UDP checksum
//! (an IPv4 one goes with 0, "no checksum").
//!
//! The headers are written and read through `wire`'s views; reading checks
//! them, so a frame that is not one of ours gives `None`, not a panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::base::IpProto;
use crate::wire::geneve;
use crate::wire::ipv4::{self, Ipv4Packet};
use crate::wire::ipv6::{self, Ipv6Packet};
use crate::wire::udp::{self, UdpPacket};

const TTL: u8 = 64;

/// Both ends of a received datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Outer {
    /// The load balancer node and the source port it chose.
    pub peer: SocketAddr,
    /// The address the datagram was sent to: the return's source.
    pub local: IpAddr,
}

#[derive(Debug, Clone, Copy)]
struct Span {
    start: u32,
    len: u32,
}

/// Frames in one buffer, reused from batch to batch.
#[derive(Debug, Default)]
pub struct FrameBatch {
    data: Vec<u8>,
    spans: Vec<Span>,
}

impl FrameBatch {
    pub fn with_capacity(bytes: usize, frames: usize) -> FrameBatch {
        FrameBatch {
            data: Vec::with_capacity(bytes),
            spans: Vec::with_capacity(frames),
        }
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    pub fn clear(&mut self) {
        self.data.clear();
        self.spans.clear();
    }

    /// Appends the frame of a datagram with this UDP payload; `false` (and
    /// nothing appended) if the two addresses are of different families or
    /// the payload does not fit one IP packet.
    pub fn push(&mut self, outer: &Outer, payload: &[u8]) -> bool {
        let start = self.data.len();
        let udp_len = udp::HEADER_LEN + payload.len();
        match (outer.local, outer.peer.ip()) {
            (IpAddr::V4(local), IpAddr::V4(peer))
                if ipv4::HEADER_LEN + udp_len <= usize::from(u16::MAX) =>
            {
                self.data.extend_from_slice(&ipv4_header(
                    local,
                    peer,
                    (ipv4::HEADER_LEN + udp_len) as u16,
                ));
            }
            (IpAddr::V6(local), IpAddr::V6(peer)) if udp_len <= usize::from(u16::MAX) => {
                self.data
                    .extend_from_slice(&ipv6_header(local, peer, udp_len as u16));
            }
            _ => return false,
        }
        self.data
            .extend_from_slice(&udp_header(outer.peer.port(), udp_len as u16));
        self.data.extend_from_slice(payload);
        self.spans.push(Span {
            start: start as u32,
            len: (self.data.len() - start) as u32,
        });
        true
    }

    /// Frame `i`.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn frame(&self, i: usize) -> &[u8] {
        let s = self.spans[i];
        &self.data[s.start as usize..(s.start + s.len) as usize]
    }

    /// Frame `i`, to turn into a return.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn frame_mut(&mut self, i: usize) -> &mut [u8] {
        let s = self.spans[i];
        &mut self.data[s.start as usize..(s.start + s.len) as usize]
    }
}

fn ipv4_header(src: Ipv4Addr, dst: Ipv4Addr, total: u16) -> [u8; ipv4::HEADER_LEN] {
    let mut h = [0u8; ipv4::HEADER_LEN];
    let mut ip = Ipv4Packet::new_unchecked(&mut h[..]);
    ip.set_version(4);
    ip.set_header_len(ipv4::HEADER_LEN);
    ip.set_total_len(total);
    // Tunnel packets are not fragmented on the way back.
    ip.set_flags_and_frag_offset(true, false, 0);
    ip.set_ttl(TTL);
    ip.set_protocol(IpProto::UDP);
    ip.set_src_addr(src);
    ip.set_dst_addr(dst);
    ip.fill_checksum();
    h
}

fn ipv6_header(src: Ipv6Addr, dst: Ipv6Addr, payload: u16) -> [u8; ipv6::HEADER_LEN] {
    let mut h = [0u8; ipv6::HEADER_LEN];
    let mut ip = Ipv6Packet::new_unchecked(&mut h[..]);
    ip.set_version(6);
    ip.set_payload_len(payload);
    ip.set_next_header(IpProto::UDP);
    ip.set_hop_limit(TTL);
    ip.set_src_addr(src);
    ip.set_dst_addr(dst);
    h
}

/// From the load balancer's source port to 6081, no checksum (yet).
fn udp_header(src_port: u16, len: u16) -> [u8; udp::HEADER_LEN] {
    let mut h = [0u8; udp::HEADER_LEN];
    let mut u = UdpPacket::new_unchecked(&mut h[..]);
    u.set_src_port(src_port);
    u.set_dst_port(geneve::UDP_PORT);
    u.set_len(len);
    h
}

/// The outer IP header of a frame: its source and destination, and where
/// the UDP header starts; `None` if it is not a whole IPv4 or IPv6 packet.
fn outer_ip(frame: &[u8]) -> Option<(IpAddr, IpAddr, usize)> {
    match frame.first()? >> 4 {
        4 => {
            let ip = Ipv4Packet::new_checked(frame).ok()?;
            Some((ip.src_addr().into(), ip.dst_addr().into(), ip.header_len()))
        }
        6 => {
            let ip = Ipv6Packet::new_checked(frame).ok()?;
            Some((ip.src_addr().into(), ip.dst_addr().into(), ipv6::HEADER_LEN))
        }
        _ => None,
    }
}

/// The two ends of a frame made by [`FrameBatch::push`], and where its UDP
/// payload (the GENEVE header and what follows, as received) starts; `None`
/// for a frame whose IP or UDP header is not whole.
pub fn ends(frame: &[u8]) -> Option<(Outer, usize)> {
    let (local, peer, at) = outer_ip(frame)?;
    let udp = UdpPacket::new_checked(&frame[at..]).ok()?;
    let outer = Outer {
        peer: SocketAddr::new(peer, udp.src_port()),
        local,
    };
    Some((outer, at + udp::HEADER_LEN))
}

/// Turns an allowed frame (made by [`FrameBatch::push`]) into the return:
/// destination port `port` (the one the datagram arrived on) and, for IPv6,
/// the UDP checksum. Returns where to send it (port 0: raw sockets have
/// none), or `None` (and changes nothing) if the frame's IP or UDP header is
/// not whole.
pub fn make_return(frame: &mut [u8], port: u16) -> Option<SocketAddr> {
    let (src, dst, at) = outer_ip(frame)?;
    let mut udp = UdpPacket::new_checked(&mut frame[at..]).ok()?;
    udp.set_dst_port(port);
    if dst.is_ipv6() {
        udp.fill_checksum(&src, &dst);
    }
    Some(SocketAddr::new(dst, 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{build, parse, Frame, LinkType, ParseOptions};

    const GWLB: ParseOptions = ParseOptions {
        decap_geneve: true,
        gwlb_strict: true,
    };

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn payload(node: IpAddr, appliance: IpAddr, endpoint: u64) -> Vec<u8> {
        let inner = build::tcp(
            ip("10.0.0.1"),
            ip("10.0.0.2"),
            40000,
            443,
            0x02,
            1,
            0,
            b"data",
        );
        let outer = build::geneve_wrap(
            node,
            appliance,
            5000,
            &inner,
            &build::aws_options(endpoint, 2, 3),
        );
        let l3 = if node.is_ipv4() { 20 } else { 40 };
        outer[14 + l3 + 8..].to_vec()
    }

    #[test]
    fn a_frame_parses_as_the_inner_packet_in_its_zone() {
        for (node, appliance) in [
            (ip("192.0.2.1"), ip("192.0.2.2")),
            (ip("2001:db8::1"), ip("2001:db8::2")),
        ] {
            let mut b = FrameBatch::default();
            let outer = Outer {
                peer: SocketAddr::new(node, 33000),
                local: appliance,
            };
            assert!(b.push(&outer, &payload(node, appliance, 0xe1)));
            let f = b.frame(0);
            let Ok(Frame::Ip(p)) = parse(LinkType::RawIp, f, f.len(), GWLB) else {
                panic!("not parsed")
            };
            assert_eq!((p.src, p.dst), (ip("10.0.0.1"), ip("10.0.0.2")));
            assert_eq!(p.tunnel.unwrap().zone, Some(0xe1));
        }
    }

    #[test]
    fn a_frame_gives_back_its_ends_and_payload() {
        for (node, appliance) in [
            (ip("192.0.2.1"), ip("192.0.2.2")),
            (ip("2001:db8::1"), ip("2001:db8::2")),
        ] {
            let p = payload(node, appliance, 7);
            let outer = Outer {
                peer: SocketAddr::new(node, 33000),
                local: appliance,
            };
            let mut b = FrameBatch::default();
            assert!(b.push(&outer, &p));
            let (got, at) = ends(b.frame(0)).unwrap();
            assert_eq!(got, outer);
            assert_eq!(&b.frame(0)[at..], &p[..]);
        }
    }

    #[test]
    fn families_must_match() {
        let mut b = FrameBatch::default();
        let outer = Outer {
            peer: "192.0.2.1:1".parse().unwrap(),
            local: ip("2001:db8::2"),
        };
        assert!(!b.push(&outer, b"x"));
        assert!(b.is_empty());
    }

    #[test]
    fn the_outer_headers_are_what_the_kernel_would_write() {
        let outer = Outer {
            peer: "192.0.2.1:33000".parse().unwrap(),
            local: ip("192.0.2.2"),
        };
        let mut b = FrameBatch::default();
        assert!(b.push(&outer, b"abcd"));
        let f = b.frame(0);
        // Version 4, 5 words, length 32, DF, TTL 64, UDP.
        assert_eq!(&f[..10], &[0x45, 0, 0, 32, 0, 0, 0x40, 0, 64, 17]);
        assert_eq!(crate::wire::checksum::checksum(&f[..20]), 0);
        assert_eq!(&f[12..20], &[192, 0, 2, 2, 192, 0, 2, 1]);
        // 33000 → 6081, length 12, no checksum.
        assert_eq!(&f[20..28], &[0x80, 0xe8, 0x17, 0xc1, 0, 12, 0, 0]);
        assert_eq!(&f[28..], b"abcd");
    }

    #[test]
    fn a_frame_that_is_not_whole_has_no_ends_and_no_return() {
        for (node, appliance) in [
            (ip("192.0.2.1"), ip("192.0.2.2")),
            (ip("2001:db8::1"), ip("2001:db8::2")),
        ] {
            let outer = Outer {
                peer: SocketAddr::new(node, 33000),
                local: appliance,
            };
            let mut b = FrameBatch::default();
            assert!(b.push(&outer, b"abcd"));
            let f = b.frame(0).to_vec();
            for len in 0..f.len() {
                assert_eq!(ends(&f[..len]), None, "len {len}");
                let mut cut = f[..len].to_vec();
                assert_eq!(make_return(&mut cut, 6081), None, "len {len}");
                assert_eq!(cut, &f[..len]);
            }
            let mut other = f.clone();
            other[0] = 0x55;
            assert_eq!(ends(&other), None);
            assert_eq!(make_return(&mut other, 6081), None);
        }
    }

    #[test]
    fn a_return_swaps_the_addresses_and_keeps_the_rest() {
        let (node, appliance) = (ip("192.0.2.1"), ip("192.0.2.2"));
        let p = payload(node, appliance, 7);
        let mut b = FrameBatch::default();
        b.push(
            &Outer {
                peer: SocketAddr::new(node, 33000),
                local: appliance,
            },
            &p,
        );
        let to = make_return(b.frame_mut(0), 16081);
        assert_eq!(to, Some(SocketAddr::new(node, 0)));
        let f = b.frame(0);
        assert_eq!(crate::wire::checksum::checksum(&f[..20]), 0);
        assert_eq!(
            (&f[12..16], &f[16..20]),
            (&[192, 0, 2, 2][..], &[192, 0, 2, 1][..])
        );
        assert_eq!(
            &f[20..28],
            &[0x80, 0xe8, 0x3e, 0xd1, 0, (8 + p.len()) as u8, 0, 0]
        );
        assert_eq!(&f[28..], &p[..]);
    }

    #[test]
    fn an_ipv6_return_has_a_valid_udp_checksum() {
        let (node, appliance) = (ip("2001:db8::1"), ip("2001:db8::2"));
        let p = payload(node, appliance, 7);
        let mut b = FrameBatch::default();
        b.push(
            &Outer {
                peer: SocketAddr::new(node, 33000),
                local: appliance,
            },
            &p,
        );
        make_return(b.frame_mut(0), 6081).unwrap();
        // etherparse checks the checksum it would write against ours.
        let f = b.frame(0).to_vec();
        let sliced = etherparse::SlicedPacket::from_ip(&f).unwrap();
        let Some(etherparse::TransportSlice::Udp(u)) = sliced.transport else {
            panic!("UDP")
        };
        let Some(etherparse::NetSlice::Ipv6(v6)) = sliced.net else {
            panic!("IPv6")
        };
        let want = u
            .to_header()
            .calc_checksum_ipv6(&v6.header().to_header(), u.payload())
            .unwrap();
        assert_eq!(u.checksum(), want);
        assert_eq!((u.source_port(), u.destination_port()), (33000, 6081));
    }
}
