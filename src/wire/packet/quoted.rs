//! The packet an ICMP error quotes: an IP header and at least the first 8
//! bytes of its payload, usually cut short, so read with unchecked views
//! after explicit length checks.

use std::net::IpAddr;

use super::Quoted;
use crate::base::IpProto;
use crate::wire::ipv4::{self, Ipv4Packet};
use crate::wire::ipv6::{self, Ipv6Packet};
use crate::wire::{icmp, read_u16, udp};

/// ICMP error types whose payload quotes the offending packet.
pub fn is_icmp_error(v6: bool, typ: u8) -> bool {
    icmp::is_error(v6, typ)
}

/// The quoted packet, or `None` if its IP header is not all there or its
/// ports (or ICMP type and identifier) are missing.
pub(super) fn quoted(v6: bool, d: &[u8]) -> Option<Quoted> {
    let (src, dst, proto, l4) = if v6 {
        if d.len() < ipv6::HEADER_LEN {
            return None;
        }
        let h = Ipv6Packet::new_unchecked(d);
        if h.version() != 6 {
            return None;
        }
        let (src, dst) = (IpAddr::V6(h.src_addr()), IpAddr::V6(h.dst_addr()));
        (src, dst, h.next_header(), &d[ipv6::HEADER_LEN..])
    } else {
        if d.len() < ipv4::HEADER_LEN {
            return None;
        }
        let h = Ipv4Packet::new_unchecked(d);
        let ihl = h.header_len();
        if h.version() != 4 || ihl < ipv4::HEADER_LEN || d.len() < ihl {
            return None;
        }
        let (src, dst) = (IpAddr::V4(h.src_addr()), IpAddr::V4(h.dst_addr()));
        (src, dst, h.protocol(), &d[ihl..])
    };
    // TCP's ports sit where UDP's do.
    let ports_len = udp::field::DST_PORT.end;
    let (ports, icmp_type) = match proto {
        IpProto::TCP | IpProto::UDP if l4.len() >= ports_len => (
            (
                read_u16(l4, udp::field::SRC_PORT),
                read_u16(l4, udp::field::DST_PORT),
            ),
            None,
        ),
        IpProto::ICMP | IpProto::ICMPV6 if l4.len() >= icmp::HEADER_LEN => {
            let ident = read_u16(l4, icmp::field::ECHO_IDENT);
            ((ident, ident), Some(l4[icmp::field::TYPE]))
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
