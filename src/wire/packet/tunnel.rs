//! The GENEVE encapsulation a parsed packet arrived in, and the return an
//! appliance makes of the frame (SPEC §5).

use super::LinkType;
use crate::base::ZoneId;
use crate::wire::ethernet::EthernetFrame;
use crate::wire::ipv4::{self, Ipv4Packet};
use crate::wire::ipv6::{self, Ipv6Packet};

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

/// Turns a GENEVE frame as received by an appliance into the frame it sends
/// back (SPEC §5): the outer IP addresses swapped (and the Ethernet addresses,
/// for Ethernet frames), the UDP ports and GENEVE header and options as
/// received. Swapping keeps every checksum valid, as the Internet checksum is
/// a sum. Returns false when the frame is too short for the tunnel's offsets.
///
/// The outer packet may be cut short by the capture, so only its fixed
/// header has to be there.
pub fn geneve_return(frame: &mut [u8], link: LinkType, tunnel: &Tunnel) -> bool {
    let Some(ip) = frame.get_mut(tunnel.outer_ip_offset as usize..) else {
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
            let ip = &back[tunnel.outer_ip_offset as usize..];
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
            let mut short = frame[..tunnel.outer_ip_offset as usize + 19].to_vec();
            let before = short.clone();
            assert!(!geneve_return(&mut short, LinkType::Ethernet, &tunnel));
            assert_eq!(short, before);
        }
    }
}
