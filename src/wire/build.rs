//! Building frames: for the capture generator, tests, benches and fuzzing.
//! Ethernet II frames with valid checksums, built with etherparse's
//! `PacketBuilder`, plus fragmentation and GENEVE and VXLAN encapsulation it
//! lacks.

use std::net::IpAddr;

use etherparse::{PacketBuilder, PacketBuilderStep, TcpHeader};

use super::ethernet::{self, ether_type, EthernetFrame};
use super::geneve;
use super::ipv4::{self, Ipv4Packet};
use super::ipv6::{self, Ipv6Packet};
use super::vxlan;
use crate::base::IpProto;

/// The MAC addresses the generator puts on frames.
pub const SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
pub const DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

fn ip_step(src: IpAddr, dst: IpAddr) -> PacketBuilderStep<etherparse::IpHeaders> {
    let eth = PacketBuilder::ethernet2(SRC_MAC, DST_MAC);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => eth.ipv4(s.octets(), d.octets(), 64),
        (IpAddr::V6(s), IpAddr::V6(d)) => eth.ipv6(s.octets(), d.octets(), 64),
        _ => panic!("source and destination must be of one IP version"),
    }
}

/// A TCP segment with the given flags byte (FIN=1 SYN=2 RST=4 PSH=8 ACK=16 URG=32).
///
/// # Panics
/// If the addresses are of different IP versions.
#[allow(clippy::too_many_arguments)] // one argument per header field a test wants to set
pub fn tcp(
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    flags: u8,
    seq: u32,
    ack: u32,
    payload: &[u8],
) -> Vec<u8> {
    let mut h = TcpHeader::new(sport, dport, seq, 64240);
    h.fin = flags & 0x01 != 0;
    h.syn = flags & 0x02 != 0;
    h.rst = flags & 0x04 != 0;
    h.psh = flags & 0x08 != 0;
    h.ack = flags & 0x10 != 0;
    h.urg = flags & 0x20 != 0;
    h.ece = flags & 0x40 != 0;
    h.cwr = flags & 0x80 != 0;
    h.acknowledgment_number = ack;
    let b = ip_step(src, dst).tcp_header(h);
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).expect("writing to a Vec");
    out
}

/// A UDP datagram.
///
/// # Panics
/// If the addresses are of different IP versions.
pub fn udp(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let b = ip_step(src, dst).udp(sport, dport);
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).expect("writing to a Vec");
    out
}

/// An ICMP (IPv4) or ICMPv6 message with raw type, code and bytes 5-8.
///
/// # Panics
/// If the addresses are of different IP versions.
pub fn icmp(src: IpAddr, dst: IpAddr, typ: u8, code: u8, rest: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let step = ip_step(src, dst);
    let mut out = Vec::new();
    if src.is_ipv4() {
        let b = step.icmpv4_raw(typ, code, rest);
        b.write(&mut out, payload).expect("writing to a Vec");
    } else {
        let b = step.icmpv6_raw(typ, code, rest);
        b.write(&mut out, payload).expect("writing to a Vec");
    }
    out
}

/// An ICMP echo request or reply (ICMPv6 for IPv6 addresses).
pub fn echo(src: IpAddr, dst: IpAddr, request: bool, ident: u16, seq: u16) -> Vec<u8> {
    let typ = match (src.is_ipv4(), request) {
        (true, true) => 8,
        (true, false) => 0,
        (false, true) => 128,
        (false, false) => 129,
    };
    let i = ident.to_be_bytes();
    let s = seq.to_be_bytes();
    icmp(
        src,
        dst,
        typ,
        0,
        [i[0], i[1], s[0], s[1]],
        b"sgplane-echo-payload",
    )
}

/// An ICMP error from `src` to `dst` quoting `quoted_frame`'s IP packet (its
/// Ethernet header is dropped; the first 28/48 bytes are quoted).
pub fn icmp_error(src: IpAddr, dst: IpAddr, typ: u8, code: u8, quoted_frame: &[u8]) -> Vec<u8> {
    let ip = &quoted_frame[ethernet::HEADER_LEN..];
    let keep = if src.is_ipv4() { 28 } else { 48 };
    icmp(src, dst, typ, code, [0; 4], &ip[..ip.len().min(keep)])
}

/// An IP packet of another protocol number (any number: the payload is not
/// interpreted, even when the number names an IPv6 extension header).
///
/// # Panics
/// If the addresses are of different IP versions.
pub fn ip_other(src: IpAddr, dst: IpAddr, proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut eth = [0u8; ethernet::HEADER_LEN];
    let mut e = EthernetFrame::new_unchecked(&mut eth[..]);
    e.set_dst_addr(DST_MAC);
    e.set_src_addr(SRC_MAC);
    let mut f = Vec::with_capacity(ethernet::HEADER_LEN + ipv6::HEADER_LEN + payload.len());
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            e.set_ethertype(ether_type::IPV4);
            f.extend_from_slice(&eth);
            let mut h = [0u8; ipv4::HEADER_LEN];
            let mut ip = Ipv4Packet::new_unchecked(&mut h[..]);
            ip.set_version(4);
            ip.set_header_len(ipv4::HEADER_LEN);
            ip.set_total_len((ipv4::HEADER_LEN + payload.len()) as u16);
            ip.set_ttl(64);
            ip.set_protocol(IpProto(proto));
            ip.set_src_addr(s);
            ip.set_dst_addr(d);
            ip.fill_checksum();
            f.extend_from_slice(&h);
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            e.set_ethertype(ether_type::IPV6);
            f.extend_from_slice(&eth);
            let mut h = [0u8; ipv6::HEADER_LEN];
            let mut ip = Ipv6Packet::new_unchecked(&mut h[..]);
            ip.set_version(6);
            ip.set_payload_len(payload.len() as u16);
            ip.set_next_header(IpProto(proto));
            ip.set_hop_limit(64);
            ip.set_src_addr(s);
            ip.set_dst_addr(d);
            f.extend_from_slice(&h);
        }
        _ => panic!("source and destination must be of one IP version"),
    }
    f.extend_from_slice(payload);
    f
}

/// Splits an Ethernet + IPv4 frame into fragments carrying at most `chunk`
/// payload bytes each (a multiple of 8), with identification `id`. A frame
/// with no payload gives no fragments.
///
/// # Panics
/// If the frame is not Ethernet + IPv4 without options, or `chunk` is not a
/// positive multiple of 8.
pub fn fragment_v4(frame: &[u8], chunk: usize, id: u16) -> Vec<Vec<u8>> {
    assert!(
        chunk > 0 && chunk % 8 == 0,
        "fragment payload size must be a multiple of 8"
    );
    let (eth, ip) = frame.split_at(ethernet::HEADER_LEN);
    assert_eq!(
        Ipv4Packet::new_unchecked(ip).header_len(),
        ipv4::HEADER_LEN,
        "IPv4 without options"
    );
    let (hdr, payload) = ip.split_at(ipv4::HEADER_LEN);
    let mut out = Vec::new();
    let mut off = 0;
    while off < payload.len() {
        let end = (off + chunk).min(payload.len());
        let more = end < payload.len();
        let mut h = hdr.to_vec();
        let mut ip = Ipv4Packet::new_unchecked(&mut h[..]);
        ip.set_total_len((ipv4::HEADER_LEN + end - off) as u16);
        ip.set_ident(id);
        ip.set_flags_and_frag_offset(false, more, off as u16);
        ip.fill_checksum();
        let mut f = eth.to_vec();
        f.extend_from_slice(&h);
        f.extend_from_slice(&payload[off..end]);
        out.push(f);
        off = end;
    }
    out
}

/// The AWS GWLB GENEVE options: endpoint id, attachment id, flow cookie.
pub fn aws_options(endpoint: u64, attachment: u64, cookie: u32) -> Vec<u8> {
    let options = geneve::AwsOptions {
        endpoint_id: endpoint,
        attachment_id: attachment,
        flow_cookie: cookie,
    };
    options.to_option_bytes().to_vec()
}

/// Wraps an inner Ethernet frame's IP packet in GENEVE over UDP/6081 from
/// `outer_src` (the GWLB node) to `outer_dst` (the appliance), as GWLB sends it.
pub fn geneve_wrap(
    outer_src: IpAddr,
    outer_dst: IpAddr,
    sport: u16,
    inner_frame: &[u8],
    options: &[u8],
) -> Vec<u8> {
    let inner_ip = &inner_frame[ethernet::HEADER_LEN..];
    let proto = if inner_ip[0] >> 4 == 4 {
        ether_type::IPV4
    } else {
        ether_type::IPV6
    };
    let mut payload = vec![0u8; geneve::HEADER_LEN + options.len() + inner_ip.len()];
    let n = geneve::emit(&mut payload, 0, proto, options).expect("options of a valid length");
    payload[n..].copy_from_slice(inner_ip);
    udp(outer_src, outer_dst, sport, geneve::UDP_PORT, &payload)
}

/// `inner_frame` (a whole Ethernet frame, VLAN tags and all) mirrored in
/// VXLAN session `vni` from `outer_src` to a collector at `outer_dst`, as
/// AWS Traffic Mirroring sends it: UDP to port 4789.
///
/// # Panics
/// If the outer addresses are of different IP versions.
pub fn vxlan_wrap(
    outer_src: IpAddr,
    outer_dst: IpAddr,
    sport: u16,
    vni: u32,
    inner_frame: &[u8],
) -> Vec<u8> {
    let mut payload = vec![0u8; vxlan::HEADER_LEN];
    vxlan::emit(&mut payload, vni);
    payload.extend_from_slice(inner_frame);
    udp(outer_src, outer_dst, sport, vxlan::UDP_PORT, &payload)
}
