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

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::wire::geneve;
use crate::wire::packet::checksum;

const IPV4_HEADER: usize = 20;
const IPV6_HEADER: usize = 40;
const UDP_HEADER: usize = 8;
const PROTO_UDP: u8 = 17;
const TTL: u8 = 64;
/// IPv4 flags: don't fragment (tunnel packets are not fragmented on the way back).
const DONT_FRAGMENT: u16 = 0x4000;

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
        let udp_len = UDP_HEADER + payload.len();
        match (outer.local, outer.peer.ip()) {
            (IpAddr::V4(local), IpAddr::V4(peer))
                if IPV4_HEADER + udp_len <= usize::from(u16::MAX) =>
            {
                self.data.extend_from_slice(&ipv4_header(
                    local,
                    peer,
                    (IPV4_HEADER + udp_len) as u16,
                ));
            }
            (IpAddr::V6(local), IpAddr::V6(peer)) if udp_len <= usize::from(u16::MAX) => {
                self.data
                    .extend_from_slice(&ipv6_header(local, peer, udp_len as u16));
            }
            _ => return false,
        }
        self.data
            .extend_from_slice(&outer.peer.port().to_be_bytes());
        self.data.extend_from_slice(&geneve::UDP_PORT.to_be_bytes());
        self.data.extend_from_slice(&(udp_len as u16).to_be_bytes());
        self.data.extend_from_slice(&[0, 0]);
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

fn ipv4_header(src: Ipv4Addr, dst: Ipv4Addr, total: u16) -> [u8; IPV4_HEADER] {
    let mut h = [0u8; IPV4_HEADER];
    h[0] = 0x45;
    h[2..4].copy_from_slice(&total.to_be_bytes());
    h[6..8].copy_from_slice(&DONT_FRAGMENT.to_be_bytes());
    h[8] = TTL;
    h[9] = PROTO_UDP;
    h[12..16].copy_from_slice(&src.octets());
    h[16..20].copy_from_slice(&dst.octets());
    let c = checksum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h
}

fn ipv6_header(src: Ipv6Addr, dst: Ipv6Addr, payload: u16) -> [u8; IPV6_HEADER] {
    let mut h = [0u8; IPV6_HEADER];
    h[0] = 0x60;
    h[4..6].copy_from_slice(&payload.to_be_bytes());
    h[6] = PROTO_UDP;
    h[7] = TTL;
    h[8..24].copy_from_slice(&src.octets());
    h[24..40].copy_from_slice(&dst.octets());
    h
}

/// The two ends of a frame made by [`FrameBatch::push`], and where its UDP
/// payload (the GENEVE header and what follows, as received) starts.
///
/// # Panics
/// If `frame` is shorter than its IP and UDP headers.
pub fn ends(frame: &[u8]) -> (Outer, usize) {
    let (local, peer, udp) = if frame[0] >> 4 == 4 {
        let s: [u8; 4] = frame[12..16].try_into().expect("an IPv4 header");
        let d: [u8; 4] = frame[16..20].try_into().expect("an IPv4 header");
        (IpAddr::from(s), IpAddr::from(d), IPV4_HEADER)
    } else {
        let s: [u8; 16] = frame[8..24].try_into().expect("an IPv6 header");
        let d: [u8; 16] = frame[24..40].try_into().expect("an IPv6 header");
        (IpAddr::from(s), IpAddr::from(d), IPV6_HEADER)
    };
    let port = u16::from_be_bytes([frame[udp], frame[udp + 1]]);
    let outer = Outer {
        peer: SocketAddr::new(peer, port),
        local,
    };
    (outer, udp + UDP_HEADER)
}

/// Turns an allowed frame (made by [`FrameBatch::push`]) into the return:
/// destination port `port` (the one the datagram arrived on) and, for IPv6,
/// the UDP checksum. Returns where to send it (port 0: raw sockets have none).
pub fn make_return(frame: &mut [u8], port: u16) -> SocketAddr {
    let (udp, dst) = if frame[0] >> 4 == 4 {
        let d: [u8; 4] = frame[16..20].try_into().expect("an IPv4 header");
        (IPV4_HEADER, IpAddr::V4(Ipv4Addr::from(d)))
    } else {
        let d: [u8; 16] = frame[24..40].try_into().expect("an IPv6 header");
        (IPV6_HEADER, IpAddr::V6(Ipv6Addr::from(d)))
    };
    frame[udp + 2..udp + 4].copy_from_slice(&port.to_be_bytes());
    if dst.is_ipv6() {
        frame[udp + 6..udp + 8].copy_from_slice(&[0, 0]);
        let c = udp6_checksum(frame);
        frame[udp + 6..udp + 8].copy_from_slice(&c.to_be_bytes());
    }
    SocketAddr::new(dst, 0)
}

/// The UDP checksum of an IPv6 packet with one UDP header (RFC 8200 §8.1):
/// never 0, which would mean "none" and is not allowed over IPv6.
fn udp6_checksum(packet: &[u8]) -> u16 {
    let udp = &packet[IPV6_HEADER..];
    let mut pseudo = [0u8; 40];
    pseudo[..32].copy_from_slice(&packet[8..40]);
    pseudo[32..36].copy_from_slice(&(udp.len() as u32).to_be_bytes());
    pseudo[39] = PROTO_UDP;
    // The one's-complement sum of the pseudo header and the datagram: the
    // complement of each checksum, added with end-around carry.
    let sum = u32::from(!checksum(&pseudo)) + u32::from(!checksum(udp));
    let folded = !((sum & 0xffff) as u16).wrapping_add((sum >> 16) as u16);
    if folded == 0 {
        0xffff
    } else {
        folded
    }
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
            let (got, at) = ends(b.frame(0));
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
        assert_eq!(to, SocketAddr::new(node, 0));
        let f = b.frame(0);
        assert_eq!(checksum(&f[..20]), 0);
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
        make_return(b.frame_mut(0), 6081);
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
