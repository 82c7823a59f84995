//! What the fuzz targets assert, beyond "no panic". Shared with
//! `tests/fuzz_regressions.rs`, which includes this file by path, so a
//! reproducer is replayed through the very same checks in `cargo test`.
//!
//! Depends on sgplane and std only (no `arbitrary`, no libFuzzer): every
//! check takes plain bytes or plain values.

use std::collections::HashMap;
use std::net::IpAddr;

use sgplane::engine::{Engine, Input, Judgement};
use sgplane::io::capture::{CaptureReader, Record};
use sgplane::policy::{Direction, Flow, IpProto, Policy, Reason, Verdict};
use sgplane::wire::ethernet::{self, ether_type};
use sgplane::wire::geneve::{self, GeneveError, GenevePacket};
use sgplane::wire::packet::{
    is_icmp_error, parse, parse_geneve, Encap, Fragment, Frame, IpPacket, LinkType, OuterEnds,
    ParseOptions, L4,
};
use sgplane::wire::vxlan::{self, VxlanPacket};

/// Every link type the parser knows, in the order the `parse` target's first
/// byte selects them.
pub const LINK_TYPES: [LinkType; 10] = [
    LinkType::Ethernet,
    LinkType::Null { big_endian: false },
    LinkType::Null { big_endian: true },
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::RawIp,
    LinkType::Ipv4,
    LinkType::Ipv6,
    LinkType::Ppp,
    LinkType::CiscoHdlc,
];

/// The index of a link type in [`LINK_TYPES`].
pub fn link_index(link: LinkType) -> u8 {
    LINK_TYPES
        .iter()
        .position(|l| *l == link)
        .expect("every link type is listed") as u8
}

// ---------------------------------------------------------------- parse

/// The `parse` target's input: byte 0 picks the link type (mod 10), byte 1
/// the parse options (bit 0: do not decapsulate GENEVE, bit 1: GWLB strict),
/// bytes 2-3 (little-endian) how many bytes the wire had beyond the capture
/// (`orig_len - len`); the rest is the frame.
#[derive(Debug, Clone, Copy)]
pub struct ParseInput<'a> {
    pub link: LinkType,
    pub opts: ParseOptions,
    pub orig_len: usize,
    pub frame: &'a [u8],
}

impl<'a> ParseInput<'a> {
    pub const HEADER: usize = 4;

    pub fn decode(data: &'a [u8]) -> Option<ParseInput<'a>> {
        let (head, frame) = data.split_first_chunk::<4>()?;
        let link = LINK_TYPES[usize::from(head[0]) % LINK_TYPES.len()];
        let opts = ParseOptions {
            decap_geneve: head[1] & 1 == 0,
            decap_vxlan: head[1] & 4 == 0,
            gwlb_strict: head[1] & 2 != 0,
        };
        let extra = usize::from(u16::from_le_bytes([head[2], head[3]]));
        Some(ParseInput {
            link,
            opts,
            orig_len: frame.len() + extra,
            frame,
        })
    }

    /// The input bytes that decode to this frame (what `seed.py` writes).
    pub fn encode(link: LinkType, opts: ParseOptions, frame: &[u8], orig_len: usize) -> Vec<u8> {
        let extra = orig_len
            .saturating_sub(frame.len())
            .min(usize::from(u16::MAX)) as u16;
        let flags = u8::from(!opts.decap_geneve)
            | u8::from(opts.gwlb_strict) << 1
            | u8::from(!opts.decap_vxlan) << 2;
        let mut out = vec![link_index(link), flags];
        out.extend_from_slice(&extra.to_le_bytes());
        out.extend_from_slice(frame);
        out
    }
}

/// `parse` never panics; what it returns is consistent with the bytes.
pub fn check_parse(data: &[u8]) {
    let Some(input) = ParseInput::decode(data) else {
        return;
    };
    let ParseInput {
        link,
        opts,
        orig_len,
        frame,
    } = input;
    let result = parse(link, frame, orig_len, opts);
    match &result {
        Ok(Frame::Ip(p)) => check_ip_packet(&input, p),
        Ok(_) => {}
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    // Bytes missing from the end of a capture never matter to a frame whose
    // length fields all fit the bytes that are there: a longer wire neither
    // rejects it nor changes what it says.
    if orig_len == frame.len() {
        if let Ok(whole) = result {
            let longer = parse(link, frame, frame.len() + 1500, opts);
            assert_eq!(
                longer,
                Ok(whole),
                "the same frame cut by a snap length parses differently"
            );
        }
    }
}

fn check_ip_packet(input: &ParseInput<'_>, p: &IpPacket) {
    let ParseInput {
        link,
        opts,
        orig_len,
        frame,
    } = *input;
    assert_eq!(
        p.src.is_ipv4(),
        p.dst.is_ipv4(),
        "source and destination of one IP version: {p:?}"
    );
    let min_ip = if p.src.is_ipv4() { 20 } else { 40 };
    assert!(
        p.ip_len as usize >= min_ip,
        "ip_len {} below the header size: {p:?}",
        p.ip_len
    );
    assert!(
        p.ip_len as usize <= orig_len,
        "ip_len {} past the {orig_len} bytes on the wire: {p:?}",
        p.ip_len
    );

    let v6_icmp = p.proto == IpProto::ICMPV6;
    match (p.fragment, p.l4) {
        (Fragment::Later { .. }, l4) => assert_eq!(
            l4,
            L4::None,
            "a later fragment has no transport header: {p:?}"
        ),
        (_, L4::Tcp { .. }) => assert_eq!(p.proto, IpProto::TCP, "{p:?}"),
        (_, L4::Udp { .. }) => assert_eq!(p.proto, IpProto::UDP, "{p:?}"),
        (_, L4::Icmp { typ, ident, .. }) => {
            assert!(p.proto == IpProto::ICMP || v6_icmp, "{p:?}");
            let echo = if v6_icmp {
                matches!(typ, 128 | 129)
            } else {
                matches!(typ, 0 | 8)
            };
            assert!(echo || ident == 0, "only echo carries an identifier: {p:?}");
        }
        (_, L4::None) => assert!(
            !matches!(
                p.proto,
                IpProto::TCP | IpProto::UDP | IpProto::ICMP | IpProto::ICMPV6
            ),
            "a whole or first packet of a known transport carries its header: {p:?}"
        ),
    }
    let has_ports = matches!(p.proto, IpProto::TCP | IpProto::UDP)
        && !matches!(p.fragment, Fragment::Later { .. });
    assert_eq!(
        p.ports().is_some(),
        has_ports,
        "ports present iff TCP/UDP: {p:?}"
    );

    // The transport header is where `l4_offset` says, and says what `l4` says.
    let l4 = p.l4_offset as usize;
    let be16 = |at: usize| u16::from_be_bytes([frame[at], frame[at + 1]]);
    assert!(
        l4 <= frame.len(),
        "l4_offset {l4} outside the {}-byte frame",
        frame.len()
    );
    match p.l4 {
        L4::Tcp {
            sport,
            dport,
            flags,
        } => {
            assert!(l4 + 20 <= frame.len(), "TCP header at {l4} past the frame");
            assert_eq!(
                (be16(l4), be16(l4 + 2), frame[l4 + 13]),
                (sport, dport, flags),
                "{p:?}"
            );
        }
        L4::Udp { sport, dport } => {
            assert!(l4 + 8 <= frame.len(), "UDP header at {l4} past the frame");
            assert_eq!((be16(l4), be16(l4 + 2)), (sport, dport), "{p:?}");
        }
        L4::Icmp { typ, code, ident } => {
            assert!(l4 + 4 <= frame.len(), "ICMP header at {l4} past the frame");
            assert_eq!((frame[l4], frame[l4 + 1]), (typ, code), "{p:?}");
            if ident != 0 {
                assert_eq!(be16(l4 + 4), ident, "{p:?}");
            }
        }
        L4::None => {}
    }
    if let Some(q) = p.quoted(frame) {
        let L4::Icmp { typ, .. } = p.l4 else {
            panic!("a quote in a packet that is not ICMP: {p:?}")
        };
        assert!(
            is_icmp_error(v6_icmp, typ),
            "only ICMP errors quote a packet: {p:?}"
        );
        assert_eq!(q.src.is_ipv4(), q.dst.is_ipv4(), "{q:?}");
        match q.proto {
            IpProto::TCP | IpProto::UDP => assert_eq!(q.icmp_type, None, "{q:?}"),
            IpProto::ICMP | IpProto::ICMPV6 => assert!(q.icmp_type.is_some(), "{q:?}"),
            _ => assert_eq!((q.ports, q.icmp_type), ((0, 0), None), "{q:?}"),
        }
    }

    if let Some(t) = p.tunnel {
        check_tunnel(link, opts, orig_len, frame, p, t);
    }
}

fn check_tunnel(
    link: LinkType,
    opts: ParseOptions,
    orig_len: usize,
    frame: &[u8],
    p: &IpPacket,
    t: sgplane::wire::Tunnel,
) {
    if let Encap::Vxlan { vni } = t.encap {
        return check_vxlan(opts, orig_len, frame, p, t, vni);
    }
    // Offsets as usize, whatever width the struct stores them in.
    let (geneve_offset, inner_offset) = (t.header_offset as usize, t.inner_offset as usize);
    assert!(
        opts.decap_geneve,
        "decapsulated with decap_geneve off: {p:?}"
    );
    assert!(geneve_offset >= 8, "GENEVE follows a UDP header: {t:?}");
    assert!(
        geneve_offset + geneve::HEADER_LEN <= inner_offset,
        "inner packet before the GENEVE header ends: {t:?}"
    );
    assert!(
        inner_offset < frame.len(),
        "inner offset {inner_offset} outside the {}-byte frame",
        frame.len()
    );
    let udp = &frame[geneve_offset - 8..geneve_offset];
    assert_eq!(
        u16::from_be_bytes([udp[2], udp[3]]),
        geneve::UDP_PORT,
        "GENEVE opened off port 6081: {t:?}"
    );

    // The GENEVE header is where the tunnel says, and says what the packet says.
    let g = GenevePacket::new_checked(&frame[geneve_offset..])
        .expect("the tunnel's GENEVE header is valid");
    assert_eq!(geneve_offset + g.header_len(), inner_offset, "{t:?}");
    let zone = if opts.gwlb_strict {
        Some(
            g.aws_options()
                .expect("strict mode accepted the AWS options")
                .endpoint_id,
        )
    } else {
        g.aws_endpoint_id()
    };
    assert_eq!(t.zone, zone, "zone of {t:?}");

    // Parsed on its own, the inner packet is the same packet.
    let inner_link = match g.protocol_type() {
        ether_type::IPV4 | ether_type::IPV6 => LinkType::RawIp,
        ether_type::TRANS_ETHER => LinkType::Ethernet,
        other => panic!("decapsulated an unsupported protocol type {other:#06x}"),
    };
    let inner_opts = ParseOptions {
        decap_geneve: false,
        decap_vxlan: false,
        ..opts
    };
    let alone = parse(
        inner_link,
        &frame[inner_offset..],
        orig_len - inner_offset,
        inner_opts,
    );
    let l4_offset = (p.l4_offset as usize)
        .checked_sub(inner_offset)
        .expect("the transport header is inside the inner packet");
    let expected = IpPacket {
        tunnel: None,
        l4_offset: l4_offset.try_into().expect("offset fits"),
        ..*p
    };
    assert_eq!(
        alone,
        Ok(Frame::Ip(expected)),
        "the inner packet parsed alone differs (outer link {link:?})"
    );
}

/// A VXLAN tunnel (Traffic Mirroring): its header is where the tunnel
/// says, after a UDP header to port 4789, with the VNI the tunnel has, and
/// the inner Ethernet frame parsed alone is the same packet.
fn check_vxlan(
    opts: ParseOptions,
    orig_len: usize,
    frame: &[u8],
    p: &IpPacket,
    t: sgplane::wire::Tunnel,
    vni: u32,
) {
    let (header, inner_offset) = (t.header_offset as usize, t.inner_offset as usize);
    assert!(opts.decap_vxlan, "decapsulated with decap_vxlan off: {p:?}");
    assert!(header >= 8, "VXLAN follows a UDP header: {t:?}");
    assert_eq!(header + vxlan::HEADER_LEN, inner_offset, "{t:?}");
    let udp = &frame[header - 8..header];
    assert_eq!(
        u16::from_be_bytes([udp[2], udp[3]]),
        vxlan::UDP_PORT,
        "VXLAN opened off port 4789: {t:?}"
    );
    let v = VxlanPacket::new_checked(&frame[header..]).expect("the tunnel's VXLAN header is valid");
    assert_eq!((v.vni(), t.zone), (vni, None), "{t:?}");
    let inner_opts = ParseOptions {
        decap_geneve: false,
        decap_vxlan: false,
        ..opts
    };
    let alone = parse(
        LinkType::Ethernet,
        &frame[inner_offset..],
        orig_len - inner_offset,
        inner_opts,
    );
    let l4_offset = (p.l4_offset as usize)
        .checked_sub(inner_offset)
        .expect("the transport header is inside the inner frame");
    let expected = IpPacket {
        tunnel: None,
        l4_offset: l4_offset.try_into().expect("offset fits"),
        ..*p
    };
    assert_eq!(
        alone,
        Ok(Frame::Ip(expected)),
        "the inner frame parsed alone differs"
    );
}

// ---------------------------------------------------------------- geneve

/// The bytes as the UDP payload of a datagram a socket received, its outer
/// ends given beside it (`parse_geneve`, the GWLB appliance's way in),
/// parse as the whole packet that carried them does, in both GENEVE modes
/// and over both outer families: the same packet or the same error, the
/// offsets counted from the payload and no outer IP offset.
pub fn check_geneve_payload(data: &[u8]) {
    // What one IPv4 packet carries.
    if data.len() > 60_000 {
        return;
    }
    let ends = [
        ("192.0.2.1:33000", "192.0.2.2:6081"),
        ("[2001:db8::1]:33000", "[2001:db8::2]:16081"),
    ];
    for (peer, local) in ends {
        let outer = OuterEnds {
            peer: peer.parse().unwrap(),
            local: local.parse().unwrap(),
        };
        // The packet as it was on the wire (to port 6081: it decapsulates there).
        let frame = sgplane::wire::build::udp(
            outer.peer.ip(),
            outer.local.ip(),
            outer.peer.port(),
            geneve::UDP_PORT,
            data,
        );
        let packet = &frame[ethernet::HEADER_LEN..];
        let headers = (packet.len() - data.len()) as u32;
        for gwlb_strict in [false, true] {
            let opts = ParseOptions {
                decap_geneve: true,
                decap_vxlan: true,
                gwlb_strict,
            };
            let got = parse_geneve(data, &outer, opts);
            let whole = parse(LinkType::RawIp, packet, packet.len(), opts);
            let whole = whole.map(|f| match f {
                Frame::Ip(p) => {
                    let t = p.tunnel.expect("port 6081 decapsulates");
                    assert_eq!(t.outer_ip_offset, Some(0), "{t:?}");
                    Frame::Ip(p.past_outer_headers(headers))
                }
                other => other,
            });
            assert_eq!(got, whole, "as a payload and whole, {opts:?} over {peer}");
        }
    }
}

/// `GenevePacket::new_checked` never panics; an accepted header's option walk
/// covers the option area exactly, no byte is lost between header and
/// payload, and writing the header again gives the same header.
pub fn check_geneve(data: &[u8]) {
    check_geneve_payload(data);
    let g = match GenevePacket::new_checked(data) {
        Err(e) => {
            assert!(!e.to_string().is_empty());
            if data.len() < geneve::HEADER_LEN {
                assert!(matches!(e, GeneveError::Truncated { .. }), "{e:?}");
            }
            return;
        }
        Ok(g) => g,
    };
    let hl = g.header_len();
    assert_eq!(hl, geneve::HEADER_LEN + usize::from(g.opt_len_words()) * 4);
    assert!(
        hl <= data.len(),
        "header of {hl} bytes accepted in {} bytes",
        data.len()
    );
    assert_eq!(g.version(), 0);
    assert_eq!(
        g.header_bytes().len() + g.payload().len(),
        data.len(),
        "payload + header == buffer"
    );
    assert_eq!([g.header_bytes(), g.payload()].concat(), data);
    let (h, p) = GenevePacket::new_unchecked(data).into_header_and_payload();
    assert_eq!((h, p), (g.header_bytes(), g.payload()));
    assert!(g.vni() <= 0x00ff_ffff);

    let mut walked = 0;
    let mut critical = false;
    for o in g.options() {
        assert!(o.data.len() % 4 == 0 && o.data.len() <= 124, "{o:?}");
        assert_eq!(o.raw_type() & 0x7f, o.typ);
        assert_eq!(o.raw_type() & 0x80 != 0, o.critical);
        let at = geneve::HEADER_LEN + walked;
        assert_eq!(
            &data[at..at + 2],
            &o.class.to_be_bytes(),
            "option class at {at}"
        );
        critical |= o.critical;
        walked += o.wire_len();
    }
    assert_eq!(
        walked,
        hl - geneve::HEADER_LEN,
        "the option walk covers exactly the option area"
    );

    match g.aws_options() {
        Ok(a) => {
            assert!(!g.oam());
            assert!(matches!(
                g.protocol_type(),
                ether_type::IPV4 | ether_type::IPV6
            ));
            assert_eq!(g.aws_endpoint_id(), Some(a.endpoint_id));
            assert_eq!(g.aws_attachment_id(), Some(a.attachment_id));
            assert_eq!(g.aws_flow_cookie(), Some(a.flow_cookie));
            assert_eq!(a.zone().to_string().len(), "vpce-".len() + 17);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }

    // Emit the same header again: byte-for-byte the same but for the flags
    // and reserved bytes, which emit writes from scratch.
    let mut buf = vec![0xa5; hl];
    let n = geneve::emit(&mut buf, g.vni(), g.protocol_type(), g.options_bytes())
        .expect("re-emitting an accepted header");
    assert_eq!(n, hl);
    let e = GenevePacket::new_checked(&buf[..]).expect("an emitted header parses");
    assert_eq!((e.version(), e.oam(), e.critical()), (0, false, critical));
    assert_eq!(
        (e.vni(), e.protocol_type(), e.options_bytes()),
        (g.vni(), g.protocol_type(), g.options_bytes())
    );
    assert_eq!(
        buf[0],
        data[0] & 0x3f,
        "version 0 and the same option length"
    );
    assert_eq!(&buf[2..7], &data[2..7]);
    if hl > 0 {
        let short = geneve::emit(
            &mut buf[..hl - 1],
            g.vni(),
            g.protocol_type(),
            g.options_bytes(),
        );
        assert!(
            matches!(short, Err(GeneveError::BufferTooSmall { .. })),
            "{short:?}"
        );
    }
}

/// One option TLV to write.
#[derive(Debug, Clone)]
pub struct OptionSpec {
    pub class: u16,
    /// 7-bit type.
    pub typ: u8,
    pub critical: bool,
    /// A multiple of 4, at most 124 bytes.
    pub data: Vec<u8>,
}

impl OptionSpec {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut o = self.class.to_be_bytes().to_vec();
        o.push(self.typ & 0x7f | if self.critical { 0x80 } else { 0 });
        o.push((self.data.len() / 4) as u8);
        o.extend_from_slice(&self.data);
        o
    }
}

/// What `aws_options` should say about these options (SPEC §5), by a plain
/// walk written from the doc comment rather than the code.
fn expected_aws(protocol: u16, options: &[OptionSpec]) -> Result<(u64, u64, u32), &'static str> {
    if protocol != ether_type::IPV4 && protocol != ether_type::IPV6 {
        return Err("unsupported protocol");
    }
    let (mut e, mut a, mut c): (Option<u64>, Option<u64>, Option<u32>) = (None, None, None);
    for o in options {
        let be = |d: &[u8]| d.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b));
        match (o.class, o.typ & 0x7f) {
            (geneve::AWS_OPTION_CLASS, t @ 1..=3) => {
                let (seen, want) = match t {
                    1 => (e.is_some(), 8),
                    2 => (a.is_some(), 8),
                    _ => (c.is_some(), 4),
                };
                if seen {
                    return Err("duplicate");
                }
                if o.data.len() != want {
                    return Err("bad length");
                }
                match t {
                    1 => e = Some(be(&o.data)),
                    2 => a = Some(be(&o.data)),
                    _ => c = Some(be(&o.data) as u32),
                }
            }
            _ if o.critical => return Err("unknown critical"),
            _ => {}
        }
    }
    match (e, a, c) {
        (Some(e), Some(a), Some(c)) => Ok((e, a, c)),
        _ => Err("missing"),
    }
}

/// `emit` then `new_checked` gives back the options, VNI, protocol and
/// payload; `aws_options` agrees with a model of SPEC §5.
pub fn check_geneve_roundtrip(vni: u32, protocol: u16, options: &[OptionSpec], payload: &[u8]) {
    let raw: Vec<u8> = options.iter().flat_map(OptionSpec::to_bytes).collect();
    let mut buf = vec![0u8; geneve::HEADER_LEN + raw.len() + payload.len()];
    let result = geneve::emit(&mut buf, vni, protocol, &raw);
    if vni > 0x00ff_ffff {
        assert_eq!(result, Err(GeneveError::VniTooLarge(vni)));
        return;
    }
    if raw.len() > geneve::MAX_OPTIONS_LEN {
        assert!(
            matches!(result, Err(GeneveError::OptionsTooLong { .. })),
            "{result:?}"
        );
        return;
    }
    let n = result.expect("valid options are written");
    assert_eq!(n, geneve::HEADER_LEN + raw.len());
    buf[n..].copy_from_slice(payload);
    check_geneve(&buf);
    let g = GenevePacket::new_checked(&buf[..]).expect("an emitted packet parses");
    assert_eq!(
        (g.vni(), g.protocol_type(), g.payload()),
        (vni, protocol, payload)
    );
    assert_eq!(g.critical(), options.iter().any(|o| o.critical));
    let back: Vec<(u16, u8, bool, &[u8])> = g
        .options()
        .map(|o| (o.class, o.typ, o.critical, o.data))
        .collect();
    let want: Vec<(u16, u8, bool, &[u8])> = options
        .iter()
        .map(|o| (o.class, o.typ & 0x7f, o.critical, &o.data[..]))
        .collect();
    assert_eq!(back, want, "options round-trip");
    let got = g
        .aws_options()
        .map(|a| (a.endpoint_id, a.attachment_id, a.flow_cookie));
    match (got, expected_aws(protocol, options)) {
        (Ok(g), Ok(w)) => assert_eq!(g, w),
        (Err(_), Err(_)) => {}
        (g, w) => panic!("aws_options says {g:?}, the model says {w:?} for {options:?}"),
    }
}

// ---------------------------------------------------------------- capture

/// Reads records until the end or an error: no panic, offsets strictly
/// increase and stay inside the input, each record's bytes are the input's
/// bytes at its offset, and a clean end is the end of the input.
pub fn check_capture(data: &[u8]) {
    batches_agree(data);
    let len = data.len() as u64;
    let mut r = match CaptureReader::new(data) {
        Ok(r) => r,
        Err(e) => {
            assert!(e.offset() <= len, "{e}");
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let mut last = r.offset();
    assert!(last <= len);
    // A record is at least 12 bytes, so this bounds the loop without cutting it short.
    for _ in 0..=data.len() / 12 + 1 {
        let raw_len = match r.next_record() {
            Ok(None) => {
                assert_eq!(r.offset(), len, "a clean end leaves no bytes unread");
                return;
            }
            Err(e) => {
                assert!(
                    e.offset() >= last && e.offset() <= len,
                    "error offset {} (last record at {last}, {len} bytes): {e}",
                    e.offset()
                );
                assert!(!e.to_string().is_empty());
                return;
            }
            Ok(Some(rec)) => {
                let at = last as usize;
                assert!(
                    at + rec.raw.len() <= data.len(),
                    "a record past the end of the input"
                );
                assert_eq!(
                    rec.raw,
                    &data[at..at + rec.raw.len()],
                    "record bytes at offset {at}"
                );
                if let Some(p) = rec.packet {
                    let lo = p.data.as_ptr() as usize - rec.raw.as_ptr() as usize;
                    assert!(
                        lo + p.data.len() <= rec.raw.len(),
                        "packet data outside its record"
                    );
                    assert!(
                        p.data.len() <= p.orig_len as usize,
                        "orig_len {} < captured {}",
                        p.orig_len,
                        p.data.len()
                    );
                    if let Some(link) = p.link {
                        assert_eq!(
                            link.to_pcap(),
                            LinkType::from_pcap(p.linktype).map_or(u32::MAX, |l| l.to_pcap())
                        );
                        let _ = parse(link, p.data, p.orig_len as usize, ParseOptions::default());
                    }
                }
                rec.raw.len() as u64
            }
        };
        let now = r.offset();
        assert!(now > last, "offset did not advance: {last} -> {now}");
        assert_eq!(now, last + raw_len);
        assert!(now <= len, "offset {now} past the {len}-byte input");
        last = now;
    }
    panic!("more records than the input can hold");
}

/// A record as both ways of reading give it: its bytes and packet fields.
type Seen = (Vec<u8>, Option<(u64, u32, u32, u32, Vec<u8>)>);

fn seen(rec: &Record) -> Seen {
    (
        rec.raw.to_vec(),
        rec.packet
            .map(|p| (p.ts, p.orig_len, p.linktype, p.interface, p.data.to_vec())),
    )
}

/// Everything a capture gives, record by record with `next_record`: the
/// records, then the error's offset and message (`None` at a clean end).
fn records_one_by_one(data: &[u8]) -> (Vec<Seen>, Option<(u64, String)>) {
    let mut all = Vec::new();
    let Ok(mut r) = CaptureReader::new(data) else {
        return (all, None);
    };
    for _ in 0..=data.len() / 12 + 1 {
        match r.next_record() {
            Ok(None) => return (all, None),
            Err(e) => return (all, Some((e.offset(), e.to_string()))),
            Ok(Some(rec)) => all.push(seen(&rec)),
        }
    }
    (all, None)
}

/// A source that gives at most `step` bytes a read, so records straddle
/// the reader's refills.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.step).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// `fill_batch` (what replay reads with), in batches of any size from a
/// source that trickles, gives the records and the end `next_record` gives.
fn batches_agree(data: &[u8]) {
    let (want, want_end) = records_one_by_one(data);
    let step = 1 + usize::from(data.last().copied().unwrap_or(0)) * 37;
    let max = 1 + usize::from(data.first().copied().unwrap_or(0) % 9);
    let Ok(mut r) = CaptureReader::new(Trickle { data, step }) else {
        assert!(want.is_empty() && want_end.is_none());
        return;
    };
    let mut got = Vec::new();
    let mut batch = Vec::new();
    let end = loop {
        let status = r.fill_batch(max, &mut batch);
        assert!(
            batch.len() <= max,
            "{} records in a batch of {max}",
            batch.len()
        );
        got.extend(batch.iter().map(|info| seen(&info.resolve(r.buffer()))));
        match status {
            Err(e) => break Some((e.offset(), e.to_string())),
            Ok(()) if batch.is_empty() => break None,
            Ok(()) => {}
        }
        assert!(
            got.len() <= data.len() / 12 + 1,
            "more records than the input holds"
        );
    };
    assert_eq!(got.len(), want.len(), "records read in batches");
    assert!(got == want, "a record read in batches differs");
    assert_eq!(end, want_end, "how the batches end");
}

// ---------------------------------------------------------------- policy

/// `Policy::from_toml` never panics; errors are positioned and say something;
/// an accepted policy can be checked, explained and run.
pub fn check_policy_text(text: &str) {
    match Policy::from_toml(text, "fuzz.toml") {
        Err(e) => {
            let lines = text.split('\n').count();
            let d = e.diagnostics();
            assert!(!d.is_empty(), "a rejected policy says why");
            for x in d {
                assert!(!x.message.trim().is_empty(), "empty message: {x:?}");
                assert!(
                    x.line <= lines,
                    "line {} of a {lines}-line file: {x:?}",
                    x.line
                );
                assert!(x.line == 0 || x.column >= 1, "{x:?}");
                assert!(!x.to_string().is_empty());
            }
            assert!(!e.to_string().is_empty());
        }
        Ok(p) => check_policy(&p, text),
    }
}

/// A handful of flows an accepted policy is asked about: fixed ones and ones
/// between its own interfaces.
fn probe_flows(p: &Policy) -> Vec<Flow> {
    let ip = |s: &str| s.parse::<IpAddr>().expect("literal address");
    let mut addrs: Vec<IpAddr> = vec![ip("10.0.0.1"), ip("203.0.113.50"), ip("2001:db8::1")];
    addrs.extend(
        p.interfaces()
            .iter()
            .take(6)
            .filter_map(|i| i.addresses.first())
            .map(|n| n.addr()),
    );
    let mut zones: Vec<Option<u64>> = vec![None];
    zones.extend(p.zones().into_iter().take(2).map(Some));
    let mut flows = Vec::new();
    for (i, &src) in addrs.iter().enumerate() {
        for &dst in addrs.iter().skip(i + 1).chain(addrs.iter().take(1)) {
            if src.is_ipv4() != dst.is_ipv4() {
                continue;
            }
            let icmp = if src.is_ipv4() {
                IpProto::ICMP
            } else {
                IpProto::ICMPV6
            };
            let echo = if src.is_ipv4() { 8 } else { 128 };
            for &zone in &zones {
                flows.push(Flow::ports(src, dst, IpProto::TCP, 40000, 443).in_zone(zone));
                flows.push(Flow::ports(dst, src, IpProto::UDP, 53, 0).in_zone(zone));
                flows.push(Flow::icmp(src, dst, icmp, echo, 0).in_zone(zone));
                flows.push(Flow::other(src, dst, IpProto(47)).in_zone(zone));
                flows.push(Flow::other(dst, src, IpProto::TCP).in_zone(zone));
            }
        }
    }
    flows.truncate(64);
    flows
}

/// `check` and `explain` on an accepted policy never panic and agree with
/// the evaluator; an engine runs on it.
pub fn check_policy(p: &Policy, text: &str) {
    let lines = text.split('\n').count();
    for w in p.warnings() {
        assert!(!w.message.is_empty() && !w.kind.is_empty(), "{w:?}");
        assert!(
            w.line as usize <= lines,
            "warning on line {} of {lines}: {w:?}",
            w.line
        );
    }
    assert!(!p.summary().is_empty());
    for (id, r) in p.rules().iter().enumerate() {
        assert!((r.sg as usize) < p.security_groups().len());
        assert!(!p.describe_rule(id as u32).is_empty());
        assert!(
            r.index.is_some() == (r.priority != 0),
            "only implicit intra_group rules have priority 0"
        );
    }
    for f in probe_flows(p) {
        let e = p.evaluate(&f);
        let x = p.explain(&f);
        assert_eq!(
            (x.verdict, x.reason),
            (e.verdict, e.reason),
            "explain and evaluate disagree on {f}"
        );
        assert_eq!(x.rule, e.rule().map(|r| p.rule_name(r).to_string()), "{f}");
        match e.reason {
            Reason::Rule => assert!(e.rule().is_some(), "{f}: {e:?}"),
            Reason::NoRule => assert_eq!(e.verdict, Verdict::Deny, "{f}: {e:?}"),
            Reason::UnknownAddress => {
                assert!(e.egress.is_none() && e.ingress.is_none(), "{f}: {e:?}")
            }
            other => panic!("a new flow decided with reason {other}"),
        }
        for d in e.decisions() {
            let rules = p.interface_rules(d.interface, d.direction);
            if let Some(r) = d.rule {
                assert!(
                    rules.contains(&r),
                    "deciding rule {r} is not the interface's: {f}"
                );
                assert_eq!(p.rule(r).direction, d.direction);
            }
        }
        assert!(!x.to_text().is_empty());
    }
    // The engine takes any accepted conntrack settings.
    let mut h = EngineHarness::new(p.clone());
    let addrs: Vec<IpAddr> = p
        .interfaces()
        .iter()
        .filter_map(|i| i.addresses.first())
        .map(|n| n.addr())
        .take(3)
        .collect();
    let mut frames = Vec::new();
    for (i, w) in addrs.windows(2).enumerate() {
        if w[0].is_ipv4() != w[1].is_ipv4() {
            continue;
        }
        let t = i as u64 * 1_000_000_000;
        let syn = sgplane::wire::build::tcp(w[0], w[1], 40000, 443, 0x02, 1, 0, b"");
        let back = sgplane::wire::build::tcp(w[1], w[0], 443, 40000, 0x12, 1, 2, b"");
        for (frame, ts) in [(syn.clone(), t), (back, t + 1), (syn, u64::MAX / 2)] {
            frames.push(Fed {
                link: LinkType::Ethernet,
                orig_len: frame.len(),
                frame,
                ts,
            });
        }
    }
    h.run(&frames);
}

// ---------------------------------------------------------------- engine

/// The policy the `engine` target runs: intra-group, a deny rule, zones that
/// reuse one address, an interface without SG, and conntrack limits and
/// timeouts small enough that capacity and expiry are hit.
pub const ENGINE_POLICY: &str = r#"
[settings]
unknown_address = "deny"
allow_arp = true
allow_neighbor_discovery = true

[conntrack]
max_entries = 8
tcp_established = 5
tcp_transitory = 2
udp = 1
udp_stream = 3
icmp = 1
other = 2

[prefix_lists]
pl-ops = ["192.0.2.0/24", "2001:db8:ff::/48"]

[security_groups.sg-web]
intra_group = "allow"
ingress = [
  { proto = "tcp", ports = ["80", "443"], from = ["0.0.0.0/0", "::/0"] },
  { proto = "tcp", ports = "22", from = "pl-ops", priority = 10 },
  { proto = "tcp", ports = "22", from = "192.0.2.66/32", action = "deny", priority = 1 },
  { proto = "icmp", icmp_type = 8, from = "pl-ops" },
  { proto = "icmpv6", icmp_type = 128, from = "pl-ops" },
  { proto = "udp", ports = "53", source_ports = "1024-65535", from = "sg-db" },
]
egress = [ { proto = "all", to = ["0.0.0.0/0", "::/0"] } ]

[security_groups.sg-db]
ingress = [
  { proto = "tcp", ports = "5432", from = "sg-web" },
  { proto = "udp", ports = "9000-9100", from = "10.0.0.0/8" },
  { proto = 47, from = "sg-web" },
  { proto = "icmp", from = "0.0.0.0/0", local = "10.0.2.0/24" },
]
egress = [
  { proto = "udp", ports = "53", to = "sg-web" },
  { proto = "tcp", ports = "1024-65535", to = "sg-web", action = "deny", priority = 5 },
  { proto = "all", to = "10.0.0.0/8", priority = 10 },
]

[interfaces.web-1]
addresses = ["10.0.1.10", "2001:db8:1::10"]
security_groups = ["sg-web"]

[interfaces.web-2]
addresses = ["10.0.1.11"]
security_groups = ["sg-web"]

[interfaces.db-a]
addresses = ["10.0.2.20", "2001:db8:2::20"]
security_groups = ["sg-db"]
zone = "vpce-00000000000000001"

[interfaces.db-b]
addresses = ["10.0.2.20"]
security_groups = ["sg-db", "sg-web"]
zone = "vpce-00000000000000002"

[interfaces.bare]
addresses = ["10.0.3.30"]
security_groups = []
"#;

/// A flow as conntrack keys it, the same in both directions.
type SymKey = (u64, u8, (IpAddr, u16), (IpAddr, u16));

fn sym_key(zone: u64, proto: u8, a: (IpAddr, u16), b: (IpAddr, u16)) -> SymKey {
    if a <= b {
        (zone, proto, a, b)
    } else {
        (zone, proto, b, a)
    }
}

/// The key the engine looks a packet up by (SPEC §2.6).
fn packet_key(p: &IpPacket) -> SymKey {
    let zone = p.tunnel.and_then(|t| t.zone).unwrap_or(0);
    let (sp, dp) = match p.l4 {
        L4::Tcp { sport, dport, .. } | L4::Udp { sport, dport } => (sport, dport),
        L4::Icmp { typ, ident, .. } => {
            let echo = if p.proto == IpProto::ICMPV6 {
                matches!(typ, 128 | 129)
            } else {
                matches!(typ, 0 | 8)
            };
            if echo {
                (ident, ident)
            } else {
                (0, 0)
            }
        }
        L4::None => (0, 0),
    };
    sym_key(zone, p.proto.0, (p.src, sp), (p.dst, dp))
}

/// One frame for the engine, owning its bytes.
#[derive(Debug, Clone)]
pub struct Fed {
    pub link: LinkType,
    pub frame: Vec<u8>,
    /// Length on the wire (at least `frame.len()`).
    pub orig_len: usize,
    pub ts: u64,
}

/// An engine and a model of what it may say: packets are counted exactly,
/// the table stays within its limit, and `established` or `related` is only
/// ever said of a flow that some earlier packet was allowed in, and not after
/// that flow's longest timeout has passed since (time never goes backwards: a
/// packet older than an earlier one is judged at the latest time, and so is
/// it here). A second engine judges the same frames with `process_batch`,
/// which must agree.
pub struct EngineHarness {
    pub engine: Engine,
    batch: Engine,
    /// Flows some packet was allowed in, with the last time one was.
    allowed: HashMap<SymKey, u64>,
    /// The latest packet time seen: the time the engine judges at.
    latest: u64,
    packets: u64,
    bytes: u64,
    with_rule: u64,
    parse: ParseOptions,
    pub judgements: Vec<(Verdict, Reason)>,
}

impl EngineHarness {
    pub fn new(policy: Policy) -> EngineHarness {
        EngineHarness {
            engine: Engine::with_policy(policy.clone()),
            batch: Engine::with_policy(policy),
            allowed: HashMap::new(),
            latest: 0,
            packets: 0,
            bytes: 0,
            with_rule: 0,
            parse: ParseOptions::default(),
            judgements: Vec::new(),
        }
    }

    /// The harness on [`ENGINE_POLICY`] (compiled once per process).
    pub fn standard() -> EngineHarness {
        static POLICY: std::sync::OnceLock<Policy> = std::sync::OnceLock::new();
        let p = POLICY.get_or_init(|| {
            Policy::from_toml(ENGINE_POLICY, "engine-fuzz.toml")
                .expect("the engine fuzz policy loads")
        });
        EngineHarness::new(p.clone())
    }

    pub fn set_parse_options(&mut self, o: ParseOptions) {
        self.parse = o;
        self.engine.set_parse_options(o);
        self.batch.set_parse_options(o);
    }

    /// Judges frames one by one with `process`, checking every invariant
    /// after each, and all at once with `process_batch` on the second
    /// engine: both say the same of every frame.
    pub fn run(&mut self, frames: &[Fed]) -> Vec<Judgement> {
        let one_by_one: Vec<Judgement> = frames
            .iter()
            .map(|f| self.process(f.link, &f.frame, f.orig_len, f.ts))
            .collect();
        let inputs: Vec<Input<'_>> = frames
            .iter()
            .map(|f| Input {
                link: f.link,
                data: &f.frame,
                orig_len: f.orig_len,
                ts: f.ts,
            })
            .collect();
        let mut batched = Vec::with_capacity(frames.len());
        self.batch.process_batch(&inputs, &mut batched);
        assert_eq!(batched.len(), frames.len(), "one judgement per frame");
        for (i, (a, b)) in one_by_one.iter().zip(&batched).enumerate() {
            assert_eq!(
                a,
                b,
                "process and process_batch disagree on frame {i} of {}",
                frames.len()
            );
        }
        let (s, b) = (self.engine.stats(), self.batch.stats());
        assert_eq!(
            (s.packets, s.allowed, s.denied, s.flows_opened),
            (b.packets, b.allowed, b.denied, b.flows_opened)
        );
        assert_eq!(self.engine.conntrack().len(), self.batch.conntrack().len());
        one_by_one
    }

    /// Judges one frame with `process` and checks every invariant.
    pub fn process(&mut self, link: LinkType, data: &[u8], orig_len: usize, now: u64) -> Judgement {
        let j = self.engine.process(link, data, orig_len, now);
        let parsed = parse(link, data, orig_len.max(data.len()), self.parse);
        assert_eq!(
            parsed.is_err(),
            j.reason == Reason::Malformed,
            "malformed iff the parser rejects the frame: {j:?}"
        );
        self.packets += 1;
        self.bytes += orig_len.max(data.len()) as u64;
        self.with_rule += u64::from(j.rule.is_some());
        self.judgements.push((j.verdict, j.reason));
        self.latest = self.latest.max(now);
        self.check_judgement(&j, data, self.latest);
        self.check_stats();
        j
    }

    /// The longest inactivity timeout an entry of this protocol can have
    /// (the table's, or an interface's), in ns.
    fn longest_timeout(&self, proto: u8) -> u64 {
        let policy = self.engine.policy();
        let c = policy.conntrack().config().timeouts;
        let each = policy.interface_conntrack();
        let s = std::iter::once(c)
            .chain(each.iter().filter_map(|i| i.timeouts))
            .map(|t| match proto {
                6 => t.tcp_established.max(t.tcp_transitory),
                17 => t.udp.max(t.udp_stream),
                1 | 58 => t.icmp,
                _ => t.other,
            })
            .max()
            .unwrap_or(0);
        u64::from(s) * 1_000_000_000
    }

    /// A flow said to be tracked at `now` was allowed before, and recently enough.
    fn check_tracked(&self, key: &SymKey, now: u64, what: &str, j: &Judgement) {
        let Some(&last) = self.allowed.get(key) else {
            panic!("`{what}` for a flow no earlier packet was allowed in: {key:?} ({j:?})");
        };
        // Conntrack counts whole milliseconds: allow one of slack.
        let limit = self.longest_timeout(key.1) + 1_000_000;
        assert!(
            now.saturating_sub(last) <= limit,
            "`{what}` {} ms after the flow's last allowed packet, past its longest timeout: {key:?} ({j:?})",
            (now - last) / 1_000_000
        );
    }

    fn check_judgement(&mut self, j: &Judgement, frame: &[u8], now: u64) {
        use Reason::*;
        let policy = self.engine.policy();
        let always = match j.reason {
            Established | Related | Arp | NeighborDiscovery | Untracked => Some(Verdict::Allow),
            NoRule | Invalid | Malformed | NotIp | ConntrackFull | Nacl => Some(Verdict::Deny),
            UnknownAddress => Some(policy.settings().unknown_address),
            Rule | Fragment => None,
        };
        if let Some(v) = always {
            assert_eq!(
                j.verdict, v,
                "reason {} with verdict {}",
                j.reason, j.verdict
            );
        }
        assert_eq!(
            j.packet.is_none(),
            matches!(j.reason, Malformed | NotIp | Arp),
            "{j:?}"
        );
        if j.reason == Rule {
            assert!(j.rule.is_some(), "reason rule names its rule: {j:?}");
        }
        assert_eq!(
            j.nacl.is_some(),
            j.reason == Nacl,
            "reason nacl names its ACL entry: {j:?}"
        );
        if let Some(r) = j.rule {
            assert!((r as usize) < policy.rules().len(), "{j:?}");
            let (iface, dir) = j
                .decision
                .expect("a deciding rule has a deciding interface");
            assert!(policy.interface_rules(iface, dir).contains(&r), "{j:?}");
            assert!(matches!(dir, Direction::Ingress | Direction::Egress));
        }
        let Some(p) = j.packet else { return };
        let key = packet_key(&p);
        match j.reason {
            Established => self.check_tracked(&key, now, "established", j),
            Related => {
                let q = p
                    .quoted(frame)
                    .unwrap_or_else(|| panic!("`related` for a packet that quotes nothing: {j:?}"));
                let zone = p.tunnel.and_then(|t| t.zone).unwrap_or(0);
                let quoted = sym_key(zone, q.proto.0, (q.src, q.ports.0), (q.dst, q.ports.1));
                self.check_tracked(&quoted, now, "related", j);
            }
            _ => {}
        }
        if j.reason == ConntrackFull {
            let ct = self.engine.conntrack();
            // The table is full, or the interface named has used up its allowance.
            let at = j.decision.map(|(i, _)| i);
            let allowance_used = at
                .and_then(|i| ct.interfaces().get(i as usize))
                .is_some_and(|c| c.available() == Some(0));
            assert!(
                ct.len() == ct.max_entries() || allowance_used,
                "conntrack-full with room in the table and the interface: {j:?}"
            );
        }
        if j.verdict == Verdict::Allow {
            let last = self.allowed.entry(key).or_insert(now);
            *last = (*last).max(now);
        }
    }

    fn check_stats(&self) {
        let s = self.engine.stats();
        assert_eq!(s.packets, self.packets, "every packet is counted once");
        assert_eq!(
            s.allowed + s.denied,
            s.packets,
            "allowed + denied == packets"
        );
        let by_reason: u64 = s.allowed_by_reason.iter().chain(&s.denied_by_reason).sum();
        assert_eq!(by_reason, s.packets, "every packet has one reason");
        assert_eq!(s.allowed_by_reason.iter().sum::<u64>(), s.allowed);
        assert_eq!(
            s.bytes_allowed + s.bytes_denied,
            self.bytes,
            "bytes are counted once"
        );
        assert_eq!(
            s.rule_hits.iter().sum::<u64>(),
            self.with_rule,
            "rule hits == judgements naming a rule"
        );
        assert!(s.flows_opened <= s.new_flows);
        let ct = self.engine.conntrack();
        assert!(
            ct.len() <= ct.max_entries(),
            "conntrack holds {} > max_entries {}",
            ct.len(),
            ct.max_entries()
        );
        assert_eq!(
            ct.max_entries(),
            self.engine.policy().conntrack().max_entries as usize
        );
    }
}

// ---------------------------------------------------------------- import

/// Up to 64 JSON documents separated by NUL bytes, imported as AWS
/// responses: see [`check_import`].
pub fn check_import_aws(data: &[u8]) {
    check_import(sgplane::import::Provider::Aws, data);
}

/// The same as Alibaba Cloud responses.
pub fn check_import_alibaba(data: &[u8]) {
    check_import(sgplane::import::Provider::Alibaba, data);
}

/// The same as Azure resources.
pub fn check_import_azure(data: &[u8]) {
    check_import(sgplane::import::Provider::Azure, data);
}

/// Up to 64 JSON documents separated by NUL bytes, named as files of an
/// account snapshot (those that are not JSON are left out).
fn import_documents(data: &[u8]) -> Vec<(String, serde_json::Value)> {
    data.split(|&b| b == 0)
        .take(64)
        .enumerate()
        .filter_map(|(i, d)| {
            let v = serde_json::from_slice(d).ok()?;
            Some((
                format!("account-data/111122223333/us-east-1/doc{i}.json"),
                v,
            ))
        })
        .collect()
}

/// Up to 64 JSON documents separated by NUL bytes, imported from
/// `provider`: the import never panics; what it skips is named and said
/// why; an import that compiles is written as a policy file that reads
/// back, writes the same bytes again (a fixed point) and compiles to a
/// policy with the same groups, rules and interfaces — nothing lost on the
/// way.
pub fn check_import(provider: sgplane::import::Provider, data: &[u8]) {
    use sgplane::import::{alibaba, aws, azure, Provider};
    let docs = import_documents(data);
    let imported = match provider {
        Provider::Aws => aws::import_values(&docs),
        Provider::Alibaba => alibaba::import_values(&docs),
        Provider::Azure => azure::import_values(&docs),
    };
    let imported = match imported {
        Ok(i) => i,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    for s in &imported.skipped {
        assert!(!s.id.is_empty() && !s.why.is_empty(), "{s:?}");
    }
    let Ok(policy) = Policy::compile(&imported.model) else {
        return;
    };
    let text = sgplane::import::write::write(&imported.model);
    let again = sgplane::policy::Model::from_toml(&text, "written.toml")
        .unwrap_or_else(|e| panic!("the written policy reads back: {e}\n{text}"));
    assert_eq!(
        sgplane::import::write::write(&again),
        text,
        "writing what was read back gives the same bytes"
    );
    let p2 = Policy::compile(&again)
        .unwrap_or_else(|e| panic!("the written policy compiles: {e}\n{text}"));
    assert_eq!(p2.security_groups().len(), policy.security_groups().len());
    assert_eq!(p2.rules().len(), policy.rules().len());
    assert_eq!(p2.interfaces().len(), policy.interfaces().len());
    assert_eq!(p2.topology().vpcs.len(), policy.topology().vpcs.len());
    for (a, b) in policy.rules().iter().zip(p2.rules()) {
        assert_eq!((a.sg, a.direction, a.index), (b.sg, b.direction, b.index));
        assert_eq!(
            (a.proto, a.action, a.priority),
            (b.proto, b.action, b.priority)
        );
        assert_eq!(a.remote, b.remote);
    }
}

// ---------------------------------------------------------------- terraform

/// Every resource instance of a `terraform show -json` document, with the
/// JSON path the importer names it by (`$.planned_values.root_module.resources[3]`):
/// the resources of `planned_values` (a plan) or `values` (a state), modules
/// walked recursively, then the data sources of a plan's `prior_state` not
/// already listed.
pub fn terraform_resources(v: &serde_json::Value) -> Vec<(String, String, Option<String>)> {
    fn walk(
        m: &serde_json::Value,
        path: &str,
        data_only: bool,
        out: &mut Vec<(String, String, Option<String>)>,
    ) {
        if let Some(rs) = m.get("resources").and_then(|r| r.as_array()) {
            for (i, r) in rs.iter().enumerate() {
                let Some(address) = r.get("address").and_then(|a| a.as_str()) else {
                    continue;
                };
                if data_only && r.get("mode").and_then(|m| m.as_str()) != Some("data") {
                    continue;
                }
                if data_only && out.iter().any(|(a, ..)| a == address) {
                    continue;
                }
                // A data source's kind is its `type`, as the importer reads it.
                let kind = (r.get("mode").and_then(|m| m.as_str()) == Some("data")).then(|| {
                    r.get("type")
                        .and_then(|t| t.as_str())
                        .unwrap_or("")
                        .to_string()
                });
                out.push((address.to_string(), format!("{path}.resources[{i}]"), kind));
            }
        }
        if let Some(ms) = m.get("child_modules").and_then(|c| c.as_array()) {
            for (i, c) in ms.iter().enumerate() {
                walk(c, &format!("{path}.child_modules[{i}]"), data_only, out);
            }
        }
    }
    let mut out = Vec::new();
    let (key, m) = match v.get("planned_values") {
        Some(p) => ("planned_values", p.get("root_module")),
        None => ("values", v.get("values").and_then(|x| x.get("root_module"))),
    };
    if let Some(m) = m {
        walk(m, &format!("$.{key}.root_module"), false, &mut out);
    }
    if let Some(m) = v
        .get("prior_state")
        .and_then(|p| p.get("values"))
        .and_then(|x| x.get("root_module"))
    {
        walk(m, "$.prior_state.values.root_module", true, &mut out);
    }
    out
}

/// One `terraform show -json` document (the whole input) through the
/// Terraform importer: never a panic; an error says something; every
/// resource instance is either in the model (something in it comes from the
/// resource's values) or listed as skipped by its address, nothing dropped
/// silently; the same document imports to the same model twice; and, read
/// by `import aws` (which recognises Terraform by content), the written
/// policy reads back to the same policy ([`check_import`]).
pub fn check_import_terraform(data: &[u8]) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let file = "plan.json";
    let imported = match sgplane::import::terraform::import_value(&v, file) {
        Ok(i) => i,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    for s in &imported.skipped {
        assert!(!s.id.is_empty() && !s.why.is_empty(), "{s:?}");
    }
    let model = format!("{:?}", imported.model);
    // Data sources describe things outside the configuration; only those
    // of network types must be listed (SPEC §7), others are ignored.
    const NETWORK_DATA: [&str; 10] = [
        "aws_security_group",
        "aws_vpc",
        "aws_subnet",
        "aws_network_interface",
        "aws_network_acl",
        "aws_route_table",
        "aws_ec2_managed_prefix_list",
        "aws_instance",
        "aws_lb",
        "aws_vpc_endpoint",
    ];
    for (address, path, data_kind) in terraform_resources(&v) {
        if let Some(kind) = data_kind {
            if !NETWORK_DATA.contains(&kind.as_str()) {
                continue;
            }
        }
        let listed = imported.skipped.iter().any(|s| s.id == address);
        let used = [".", "[", "\""]
            .iter()
            .any(|end| model.contains(&format!("{path}{end}")));
        assert!(
            listed || used,
            "resource {address} ({path}) is neither in the model nor listed as skipped"
        );
    }
    let again = sgplane::import::terraform::import_value(&v, file).expect("imported once");
    assert_eq!(
        again.model, imported.model,
        "the same document, another model"
    );
    check_import(sgplane::import::Provider::Aws, data);
}

// ---------------------------------------------------------------- flow logs

/// The policy flow-log records are judged under: the fixtures' groups, a
/// VPC of two subnets with network ACLs (one denying a /32 and the
/// ephemeral replies to it), and an interface with `tracking = "aws"`.
pub const FLOWLOG_POLICY: &str = r#"
[settings]
unknown_address = "deny"

[conntrack]
max_entries = 4

[vpcs.vpc-0a1]
cidrs = ["10.0.0.0/16", "2001:db8::/56"]

[subnets.subnet-web]
vpc = "vpc-0a1"
cidr = ["10.0.1.0/24", "2001:db8:0:1::/64"]
network_acl = "acl-web"

[subnets.subnet-db]
vpc = "vpc-0a1"
cidr = "10.0.2.0/24"
network_acl = "acl-db"

[network_acls.acl-web]
ingress = [
  { rule = 90, proto = "tcp", ports = "443", from = "203.0.113.9/32", action = "deny" },
  { rule = 100, proto = "all", from = "0.0.0.0/0", action = "allow" },
  { rule = 110, proto = "all", from = "::/0", action = "allow" },
]
egress = [
  { rule = 100, proto = "tcp", ports = "1024-65535", to = "0.0.0.0/0", action = "allow" },
  { rule = 110, proto = "udp", to = "10.0.0.0/8", action = "allow" },
  { rule = 120, proto = "tcp", ports = "5432", to = "10.0.2.0/24", action = "allow" },
  { rule = 130, proto = "all", to = "::/0", action = "allow" },
]

[network_acls.acl-db]
ingress = [ { rule = 100, proto = "tcp", ports = "5432", from = "10.0.1.0/24", action = "allow" } ]
egress = [ { rule = 100, proto = "tcp", ports = "1024-65535", to = "10.0.1.0/24", action = "allow" } ]

[security_groups.sg-web]
ingress = [
  { proto = "tcp", ports = "443", from = ["0.0.0.0/0", "::/0"] },
  { proto = "tcp", ports = "22", from = "10.0.0.0/16" },
  { proto = "udp", ports = "53", from = "0.0.0.0/0" },
  { proto = 47, from = "10.0.0.0/8" },
]
egress = [ { proto = "all", to = ["0.0.0.0/0", "::/0"] } ]

[security_groups.sg-db]
ingress = [ { proto = "tcp", ports = "5432", from = "sg-web" } ]
egress = []

[interfaces.eni-web]
addresses = ["10.0.1.10", "2001:db8:0:1::10"]
security_groups = ["sg-web"]
subnet = "subnet-web"
tracking = "aws"

[interfaces.eni-db]
addresses = ["10.0.2.20"]
security_groups = ["sg-db"]
subnet = "subnet-db"
"#;

/// A record written back as a line of `format`: the fields it has where the
/// format has them, `-` elsewhere.
pub fn flowlog_line(
    format: &sgplane::io::flowlog::Format,
    r: &sgplane::io::flowlog::Record,
) -> String {
    use sgplane::io::flowlog::FlowDirection;
    let pkt = |name: &str| format.fields.iter().any(|f| f == name);
    let fields: Vec<String> = format
        .fields
        .iter()
        .map(|f| match f.as_str() {
            "srcaddr" | "pkt-srcaddr" => r.src.to_string(),
            "dstaddr" | "pkt-dstaddr" => r.dst.to_string(),
            "srcport" => r.sport.map_or("-".into(), |p| p.to_string()),
            "dstport" => r.dport.map_or("-".into(), |p| p.to_string()),
            "protocol" => r.proto.0.to_string(),
            "action" => r.action.as_str().to_string(),
            "log-status" => "OK".into(),
            // A line of bytes that are not UTF-8 is no record, so a
            // record's interface (kept as bytes) is always UTF-8.
            "interface-id" => std::str::from_utf8(r.interface.unwrap_or(b"-"))
                .expect("a record's interface-id is UTF-8")
                .to_string(),
            "start" => r.start.map_or("-".into(), |s| s.to_string()),
            "flow-direction" => match r.direction {
                None => "-".into(),
                Some(FlowDirection::Ingress) => "ingress".into(),
                Some(FlowDirection::Egress) => "egress".into(),
            },
            "version" if !pkt("pkt-srcaddr") => "2".into(),
            _ => "-".into(),
        })
        .collect();
    fields.join(" ")
}

/// A flow log (any bytes) read as `replay` reads one: never a panic; every
/// non-blank line but a header is exactly one entry (record, NODATA,
/// SKIPDATA or malformed), numbered by its line, and the entry is what the
/// format says of that line alone (a line with the wrong number of fields
/// is malformed saying so); a record written back in the format reads as
/// the same record; judging a record (`replay::flowlogs::judge`) agrees with
/// the engine judging the record's first packet as a new flow, where the
/// record names no interface of the policy and the packet can be built.
///
/// When the first line is a format string (`--log-format`), the rest is
/// also read in that format (`open_as`), with the same invariants: a
/// first line that is the format's header is the only line not an entry.
pub fn check_flowlog(data: &[u8]) {
    use sgplane::io::flowlog::{open_as, sniff, Format, Sniffed};
    if let Some(nl) = data.iter().position(|&b| b == b'\n') {
        let given = std::str::from_utf8(&data[..nl])
            .ok()
            .and_then(|t| Format::from_log_format(t).ok());
        if let Some(format) = given {
            assert!(format.given && !format.header);
            let rest = &data[nl + 1..];
            match open_as(std::io::Cursor::new(rest.to_vec()), format) {
                Ok(r) => check_entries(r, rest),
                Err(e) => assert!(!e.to_string().is_empty()),
            }
        }
    }
    let reader = match sniff(std::io::Cursor::new(data.to_vec())) {
        Ok(Sniffed::FlowLog(r)) => r,
        Ok(Sniffed::BadFormat(e)) => {
            assert!(!e.to_string().is_empty());
            return;
        }
        Ok(Sniffed::Other(_)) => return,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    check_entries(reader, data);
}

/// Every entry of `reader`, reading `data`, against the lines of `data`
/// (see [`check_flowlog`]).
fn check_entries(mut reader: sgplane::io::flowlog::Reader, data: &[u8]) {
    use sgplane::io::flowlog::{Entry, Malformed};
    let format = reader.format().clone();
    // Lines are only compared in plain text (gzip and Parquet are not lines).
    let gzip = reader.gzip() || reader.parquet();
    let lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    let nonblank = lines.iter().filter(|l| !l.trim_ascii().is_empty()).count();
    let rules = flowlog_rules();
    let mut entries = 0usize;
    let mut last = 0u64;
    loop {
        let (number, entry) = match reader.next_entry() {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err(e) => {
                assert!(gzip, "a read error from text in memory: {e}");
                return;
            }
        };
        entries += 1;
        assert!(number > last, "line numbers increase: {last} then {number}");
        last = number;
        if gzip {
            continue;
        }
        let line = lines
            .get(number as usize - 1)
            .unwrap_or_else(|| panic!("line {number} of {} lines", lines.len()))
            .trim_ascii_end();
        assert!(
            !line.trim_ascii().is_empty(),
            "an entry for blank line {number}"
        );
        assert_eq!(entry, format.parse(line), "line {number} read alone");
        let text = std::str::from_utf8(line);
        if let Ok(text) = text {
            let n = text.split_ascii_whitespace().count();
            if n != format.fields.len() {
                assert_eq!(
                    entry,
                    Entry::Malformed(Malformed::FieldCount {
                        expected: format.fields.len(),
                        got: n
                    }),
                    "line {number}"
                );
            }
            if let Some(at) = format.fields.iter().position(|f| f == "log-status") {
                let status = text.split_ascii_whitespace().nth(at);
                if n == format.fields.len() {
                    match status {
                        Some("NODATA") => assert_eq!(entry, Entry::NoData, "line {number}"),
                        Some("SKIPDATA") => assert_eq!(entry, Entry::SkipData, "line {number}"),
                        Some("OK") => assert!(
                            !matches!(entry, Entry::NoData | Entry::SkipData),
                            "line {number}"
                        ),
                        _ => assert!(
                            matches!(entry, Entry::Malformed(_)),
                            "line {number}: log-status {status:?} read as {entry:?}"
                        ),
                    }
                }
            }
        } else {
            assert_eq!(entry, Entry::Malformed(Malformed::NotText), "line {number}");
        }
        if let Entry::Record(r) = entry {
            let again = flowlog_line(&format, &r);
            assert_eq!(
                format.parse(again.as_bytes()),
                Entry::Record(r),
                "line {number} written back as {again:?}"
            );
            check_record_judgement(&rules, &r);
        }
        assert!(entries <= lines.len(), "more entries than lines");
    }
    if !gzip {
        assert_eq!(
            entries + usize::from(format.header),
            nonblank,
            "every non-blank line but a header is one entry"
        );
    }
}

/// A text flow log written as Parquet (`parquet::write_from_text`, as AWS
/// delivers it) reads back as the text does: one row per non-blank line
/// after the header, each row the same entry as its line parsed alone
/// (record, NODATA, SKIPDATA or the same malformation). Then the file with
/// up to four bytes changed (the first 8 bytes of the input say where and
/// how) is read to its end: never a panic, an error says something, and
/// every row read is an entry.
pub fn check_flowlog_parquet(data: &[u8]) {
    use sgplane::io::flowlog::{parquet, sniff, Entry, Format, Sniffed};
    const AHEAD: usize = 3;
    let Some((edits, text)) = data.split_first_chunk::<8>() else {
        return;
    };
    let mut file = Vec::new();
    let written = match parquet::write_from_text(std::io::Cursor::new(text), &mut file) {
        Ok(n) => n,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let first = text.split(|&b| b == b'\n').next().unwrap_or_default();
    let format = match Format::recognise(first.trim_ascii()) {
        Some(Ok(f)) => f,
        other => panic!("write_from_text took a first line recognise refuses: {other:?}"),
    };
    let lines: Vec<&[u8]> = text
        .split(|&b| b == b'\n')
        .skip(usize::from(format.header))
        .map(<[u8]>::trim_ascii_end)
        .filter(|l| !l.trim_ascii().is_empty())
        .collect();
    assert_eq!(written as usize, lines.len(), "a row per non-blank line");
    let mut reader = match sniff(std::io::Cursor::new(file.clone())) {
        Ok(Sniffed::FlowLog(r)) => r,
        Ok(Sniffed::BadFormat(e)) => panic!("a file write_from_text wrote: {e}"),
        Ok(Sniffed::Other(_)) => panic!("a file write_from_text wrote is not Parquet"),
        Err(e) => panic!("a file write_from_text wrote: {e}"),
    };
    assert!(reader.parquet());
    assert_eq!(reader.format().fields, format.fields);
    let mut rows = 0usize;
    // Read as the replay reads: a record read column-wise taken first,
    // any other row as an entry; the addresses `ahead` gives for a row to
    // come are that row's.
    let mut promised = std::collections::VecDeque::new();
    loop {
        if let Some(addrs) = reader.ahead(AHEAD) {
            promised.push_back((rows + 1 + AHEAD, addrs));
        }
        let (number, entry) = match reader.next_record_read() {
            Some((n, r)) => (n, Entry::Record(r)),
            None => match reader.next_entry().expect("a file we wrote reads") {
                Some(e) => e,
                None => break,
            },
        };
        rows += 1;
        assert_eq!(number as usize, rows, "rows are numbered from 1");
        let line = lines[rows - 1];
        assert_eq!(
            format!("{entry:?}"),
            format!("{:?}", format.parse(line)),
            "row {rows} and its line {:?}",
            String::from_utf8_lossy(line)
        );
        while promised.front().is_some_and(|&(at, _)| at <= rows) {
            let (at, addrs) = promised.pop_front().unwrap();
            match &entry {
                Entry::Record(r) if at == rows => assert_eq!((r.src, r.dst), addrs, "row {rows}"),
                _ => panic!("ahead gave {addrs:?} for row {at}, which is {entry:?}"),
            }
        }
    }
    assert_eq!(rows, lines.len(), "every row read");
    assert!(
        promised.is_empty(),
        "ahead gave rows past the end: {promised:?}"
    );

    // Damaged: up to four bytes replaced (position from two bytes, value
    // from one; a zero position byte pair leaves the rest alone).
    for e in edits.chunks_exact(2) {
        let at = usize::from(e[0]) << 4 ^ usize::from(e[1]);
        if at == 0 || file.is_empty() {
            continue;
        }
        let i = (at * 2_654_435_761) % file.len();
        file[i] ^= e[1] | 1;
    }
    match sniff(std::io::Cursor::new(file)) {
        Ok(Sniffed::FlowLog(mut r)) => {
            let mut n = 0u64;
            loop {
                match r.next_entry() {
                    Ok(Some((number, _))) => {
                        n += 1;
                        assert_eq!(number, n, "rows are numbered from 1");
                    }
                    Ok(None) => break,
                    Err(e) => {
                        assert!(!e.to_string().is_empty());
                        break;
                    }
                }
            }
        }
        Ok(Sniffed::BadFormat(e)) => assert!(!e.to_string().is_empty()),
        Ok(Sniffed::Other(_)) => {}
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

fn flowlog_rules() -> std::sync::Arc<sgplane::engine::Ruleset> {
    static RULES: std::sync::OnceLock<std::sync::Arc<sgplane::engine::Ruleset>> =
        std::sync::OnceLock::new();
    RULES
        .get_or_init(|| {
            let p = Policy::from_toml(FLOWLOG_POLICY, "flowlog-fuzz.toml")
                .expect("the flow-log fuzz policy loads");
            std::sync::Arc::new(sgplane::engine::Ruleset::compile(p))
        })
        .clone()
}

/// The first packet of a record's flow, when one can be built: a TCP SYN,
/// a UDP datagram, or another protocol's packet (IPv4, or GRE/ESP/SCTP over
/// IPv6 — not ICMP, whose type a record does not give, nor IPv6 extension
/// headers).
pub fn record_packet(r: &sgplane::io::flowlog::Record) -> Option<Vec<u8>> {
    use sgplane::wire::build;
    if r.src.is_ipv4() != r.dst.is_ipv4() {
        return None;
    }
    match (r.proto, r.sport, r.dport) {
        (IpProto::TCP, Some(s), Some(d)) => Some(build::tcp(r.src, r.dst, s, d, 0x02, 1, 0, b"")),
        (IpProto::UDP, Some(s), Some(d)) => Some(build::udp(r.src, r.dst, s, d, b"x")),
        (IpProto::TCP | IpProto::UDP | IpProto::ICMP | IpProto::ICMPV6, ..) => None,
        (IpProto(p), ..) if r.src.is_ipv4() || matches!(p, 47 | 50 | 132) => {
            Some(build::ip_other(r.src, r.dst, p, &[0; 8]))
        }
        _ => None,
    }
}

fn check_record_judgement(
    rules: &std::sync::Arc<sgplane::engine::Ruleset>,
    r: &sgplane::io::flowlog::Record,
) {
    let rj = sgplane::replay::flowlogs::judge(rules, r);
    let j = rj.judgement;
    let policy = &rules.policy;
    let named = r
        .interface
        .and_then(|n| policy.interface_named(n))
        .is_some();
    assert!(!rj.at_named_interface || named, "{r:?}: {rj:?}");
    assert_eq!(j.nacl.is_some(), j.reason == Reason::Nacl, "{r:?}: {j:?}");
    if j.reason == Reason::Nacl || j.reason == Reason::NoRule {
        assert_eq!(j.verdict, Verdict::Deny, "{r:?}: {j:?}");
    }
    if named {
        return;
    }
    let Some(frame) = record_packet(r) else {
        return;
    };
    let mut engine = Engine::new(rules.clone());
    let p = engine.process(
        LinkType::Ethernet,
        &frame,
        frame.len(),
        1_700_000_000_000_000_000,
    );
    let untracked = |reason| {
        if reason == Reason::Untracked {
            Reason::Rule
        } else {
            reason
        }
    };
    assert_eq!(
        (j.verdict, j.reason, j.rule, j.nacl),
        (p.verdict, untracked(p.reason), p.rule, p.nacl),
        "the record and its first packet judged differently: {r:?}"
    );
}

// ---------------------------------------------------------------- NACLs and tracking

/// A policy with network ACLs and untracked flows, and packets through an
/// engine on it (`engine_nacl_tracking`): everything [`EngineHarness`]
/// checks, and after each packet that reaches the ACL stage
/// - the network ACLs' reference evaluation (`Policy::evaluate_nacls`, a
///   plain first match per subnet) denies it iff the engine denies it with
///   reason `nacl`, naming the same ACL entry: the stateless stage never
///   lets an ACL-denied packet through, established ones included;
/// - a packet judged `untracked` takes no conntrack entry (the table does
///   not grow, no flow is opened);
/// - a new flow the rules decide (`rule`, `no-rule`, `untracked`,
///   `conntrack-full`, `unknown-address`) gets the verdict the reference
///   evaluator (`Policy::evaluate`) gives it (allowed, for `conntrack-full`).
pub fn check_engine_nacl_tracking(policy: &str, frames: &[Fed]) {
    let policy = match Policy::from_toml(policy, "nacl-fuzz.toml") {
        Ok(p) => p,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let mut h = EngineHarness::new(policy.clone());
    for f in frames {
        let before = (h.engine.conntrack().len(), h.engine.stats().flows_opened);
        let j = h.process(f.link, &f.frame, f.orig_len, f.ts);
        let Some(p) = j.packet else { continue };
        if matches!(j.reason, Reason::Fragment | Reason::NeighborDiscovery) {
            continue;
        }
        let flow = sgplane::engine::flow_of(&p, policy.packet_zone(&p));
        let acl = policy.evaluate_nacls(&flow).denied().copied();
        assert_eq!(
            j.nacl, acl,
            "the engine's ACL stage and the reference differ on {flow}: {j:?}"
        );
        if acl.is_some() {
            assert_eq!(
                (j.verdict, j.reason),
                (Verdict::Deny, Reason::Nacl),
                "{flow}"
            );
        }
        let after = (h.engine.conntrack().len(), h.engine.stats().flows_opened);
        if j.reason == Reason::Untracked {
            assert!(
                after.0 <= before.0 && after.1 == before.1,
                "an untracked packet took a conntrack entry ({before:?} -> {after:?}): {flow}"
            );
        }
        if matches!(
            j.reason,
            Reason::Rule
                | Reason::NoRule
                | Reason::Untracked
                | Reason::ConntrackFull
                | Reason::UnknownAddress
        ) {
            // The reference allows what the engine refused for want of room.
            let e = policy.evaluate(&flow);
            let expected = if j.reason == Reason::ConntrackFull {
                Verdict::Allow
            } else {
                j.verdict
            };
            assert_eq!(e.verdict, expected, "{flow}: engine {j:?}, reference {e:?}");
        }
    }
}

// ---------------------------------------------------------------- tunnels

/// What one layer of a nested frame is, for [`check_nested`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerKind {
    Vxlan,
    /// GENEVE carrying an Ethernet frame (0x6558) or an IP packet.
    Geneve {
        ethernet: bool,
    },
}

/// Frames from the inside out (`frames[0]` the inner frame, `frames[k]`
/// that wrapped in `layers[k - 1]`, each over IPv4 or IPv6 as `outer_v6`
/// says), and the outermost one damaged: every frame, and the damaged one,
/// passes [`check_parse`]; each layer opens one level only and exactly
/// where the frame it carries starts: parsing it gives what parsing the
/// carried frame alone with tunnels closed gives (the same packet, offsets
/// counted from it, or both an error), for VXLAN and for GENEVE outside
/// strict mode; a GENEVE layer's UDP payload passes [`check_geneve_payload`].
pub fn check_nested(
    frames: &[Vec<u8>],
    layers: &[(LayerKind, bool)],
    damaged: &[u8],
    opts: ParseOptions,
) {
    for f in frames {
        check_parse(&ParseInput::encode(LinkType::Ethernet, opts, f, f.len()));
    }
    check_parse(&ParseInput::encode(
        LinkType::Ethernet,
        opts,
        damaged,
        damaged.len(),
    ));
    let closed = ParseOptions {
        decap_geneve: false,
        decap_vxlan: false,
        ..opts
    };
    for (k, w) in frames.windows(2).enumerate() {
        let (inner, outer) = (&w[0], &w[1]);
        let (kind, v6) = layers[k];
        let headers = ethernet::HEADER_LEN + if v6 { 40 } else { 20 } + 8;
        let (opens, header_len, link, carried) = match kind {
            LayerKind::Vxlan => (
                opts.decap_vxlan,
                vxlan::HEADER_LEN,
                LinkType::Ethernet,
                &inner[..],
            ),
            LayerKind::Geneve { ethernet } => {
                let g =
                    GenevePacket::new_checked(&outer[headers..]).expect("a GENEVE header built");
                check_geneve_payload(&outer[headers..]);
                let (link, carried) = if ethernet {
                    (LinkType::Ethernet, &inner[..])
                } else {
                    (LinkType::RawIp, &inner[ethernet::HEADER_LEN..])
                };
                (
                    opts.decap_geneve && !opts.gwlb_strict,
                    g.header_len(),
                    link,
                    carried,
                )
            }
        };
        let got = parse(LinkType::Ethernet, outer, outer.len(), opts);
        if !opens {
            continue;
        }
        let at = headers + header_len;
        assert_eq!(
            &outer[at..],
            carried,
            "layer {k}: the carried frame is not where the header ends"
        );
        let alone = parse(link, carried, carried.len(), closed);
        match (&got, &alone) {
            (Ok(Frame::Ip(p)), Ok(Frame::Ip(a))) => {
                let t = p
                    .tunnel
                    .unwrap_or_else(|| panic!("layer {k} ({kind:?}) not opened: {p:?}"));
                assert_eq!(
                    (t.header_offset as usize, t.inner_offset as usize),
                    (headers, at),
                    "layer {k} ({kind:?})"
                );
                let shifted = IpPacket {
                    tunnel: None,
                    l4_offset: p.l4_offset - at as u32,
                    ..*p
                };
                assert_eq!(&shifted, a, "layer {k} ({kind:?}) and its frame alone");
            }
            (Ok(g), Ok(a)) => assert_eq!(g, a, "layer {k} ({kind:?})"),
            (Err(_), Err(_)) => {}
            (g, a) => panic!("layer {k} ({kind:?}): {g:?} with its frame alone {a:?}"),
        }
    }
}

// ---------------------------------------------------------------- path

/// `sgplane path` on a policy file and queries: never a panic; an error
/// says something; a reachable answer has no blocking hop and every hop is
/// allowed, and between two interfaces the groups' reference evaluation
/// allows the flow and the ACLs' reference denies neither it nor (for a
/// given client port) its reply; an unreachable one is blocked at a hop
/// that does not allow, after hops that all do. Its fixes, applied to the
/// model one after the other, each apply, each move the block on (the
/// re-run is not blocked at the same hop), and each says truly what the
/// re-run gives: a fix verified as making the path reachable makes it
/// reachable.
pub fn check_path(text: &str, queries: &[sgplane::path::Query]) {
    use sgplane::path::{self, fix, HopVerdict};
    let model = match sgplane::policy::Model::from_toml(text, "path-fuzz.toml") {
        Ok(m) => m,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let policy = match Policy::compile(&model) {
        Ok(p) => p,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    for q in queries {
        let trace = match path::analyse(&policy, q) {
            Ok(t) => t,
            Err(e) => {
                assert!(!e.to_string().is_empty(), "{q:?}");
                continue;
            }
        };
        let text = path::render::to_text(&trace);
        assert!(!text.is_empty());
        let _ = path::render::to_json(&trace);
        if trace.reachable {
            assert_eq!(trace.blocked_at, None, "{text}");
            for h in &trace.hops {
                assert_eq!(
                    h.verdict,
                    HopVerdict::Allow,
                    "a hop of a reachable path: {text}"
                );
            }
            check_reachable_by_reference(&policy, q, &text);
            continue;
        }
        let at = trace
            .blocked_at
            .unwrap_or_else(|| panic!("unreachable without a blocking hop: {text}"));
        assert!(at < trace.hops.len(), "{text}");
        assert_ne!(trace.hops[at].verdict, HopVerdict::Allow, "{text}");
        for h in &trace.hops[..at] {
            assert_eq!(
                h.verdict,
                HopVerdict::Allow,
                "a hop before the block: {text}"
            );
        }
        let fixes = fix::search(&model, q, &trace);
        let mut m = model.clone();
        let mut block = trace.blocking().cloned();
        for f in &fixes {
            assert!(
                fix::apply(&mut m, &f.raw),
                "a fix that does not apply: {f:?}"
            );
            let p = Policy::compile(&m).unwrap_or_else(|e| panic!("{f:?} does not compile: {e}"));
            let again = path::analyse(&p, q).unwrap_or_else(|e| panic!("{f:?}: {e}"));
            let before = block.as_ref().expect("a fix for a blocked path");
            if let Some(h) = again.blocking() {
                assert!(
                    !(h.component == before.component
                        && h.kind == before.kind
                        && h.direction == before.direction),
                    "{f:?} leaves the path blocked where it was"
                );
            }
            assert_eq!(
                again.reachable,
                f.verified.contains("the path is reachable"),
                "{f:?} says {:?}; the re-run: {}",
                f.verified,
                path::render::to_text(&again)
            );
            block = again.blocking().cloned();
        }
    }
}

/// A reachable path between two interfaces, by the reference evaluators:
/// the groups allow the flow and no ACL denies it or its reply.
fn check_reachable_by_reference(policy: &Policy, q: &sgplane::path::Query, text: &str) {
    let iface = |name: &str| {
        policy
            .interfaces()
            .iter()
            .position(|i| i.place.title.as_deref() == Some(name))
    };
    let (Some(a), Some(b)) = (iface(&q.from), iface(&q.to)) else {
        return;
    };
    if a == b {
        return;
    }
    let (Some(src), Some(dst)) = (
        policy.interfaces()[a].addresses.first(),
        policy.interfaces()[b].addresses.first(),
    ) else {
        return;
    };
    let (src, dst) = (src.addr(), dst.addr());
    let mut flow = Flow::other(src, dst, q.proto).in_zone(policy.zone_of(None, src, dst));
    flow.dport = q.dport;
    flow.sport = q.dport.map(|_| q.sport.unwrap_or(1024));
    flow.icmp = q.icmp;
    let e = policy.evaluate(&flow);
    assert_eq!(
        e.verdict,
        Verdict::Allow,
        "reachable, but the groups deny {flow}: {e:?}\n{text}"
    );
    assert_eq!(
        policy.evaluate_nacls(&flow).denied(),
        None,
        "reachable, but an ACL denies {flow}\n{text}"
    );
    if q.sport.is_some() || !q.proto.has_ports() {
        let back = flow.reversed();
        assert_eq!(
            policy.evaluate_nacls(&back).denied(),
            None,
            "reachable, but an ACL denies the reply {back}\n{text}"
        );
    }
}

// ---------------------------------------------------------------- AWS, structured

/// Whether `debug` (a model's or the skipped list's `{:?}`) names a value
/// at `path` of `file`, or inside it.
fn names_origin(debug: &str, file: &str, path: &str) -> bool {
    let at = format!("file: {file:?}, path: \"{path}");
    debug
        .match_indices(&at)
        .any(|(i, m)| matches!(debug.as_bytes().get(i + m.len()), Some(b'"' | b'.' | b'[')))
}

/// The items of AWS responses the importer must account for: each of
/// `Vpcs`, `Subnets`, `SecurityGroups` (and each of their permissions),
/// `NetworkInterfaces` and `NetworkAcls` (and each of their entries), as
/// (document index, JSON path, id). An item whose id an earlier item of
/// its kind has is left out (the first read wins, by design), with its
/// permissions and entries.
pub fn aws_items(docs: &[serde_json::Value]) -> Vec<(usize, String, String)> {
    const KINDS: [(&str, &str, &[&str]); 5] = [
        ("Vpcs", "VpcId", &[]),
        ("Subnets", "SubnetId", &[]),
        (
            "SecurityGroups",
            "GroupId",
            &["IpPermissions", "IpPermissionsEgress"],
        ),
        ("NetworkInterfaces", "NetworkInterfaceId", &[]),
        ("NetworkAcls", "NetworkAclId", &["Entries"]),
    ];
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (d, doc) in docs.iter().enumerate() {
        for (key, id_key, children) in KINDS {
            let Some(items) = doc.get(key).and_then(|v| v.as_array()) else {
                continue;
            };
            for (i, item) in items.iter().enumerate() {
                let Some(id) = item.get(id_key).and_then(|v| v.as_str()) else {
                    continue;
                };
                if !seen.insert((key, id.to_string())) {
                    continue;
                }
                let path = format!("$.{key}[{i}]");
                for c in children {
                    let n = item.get(*c).and_then(|v| v.as_array()).map_or(0, Vec::len);
                    for j in 0..n {
                        // The implicit final deny (`*`) is not an entry of the model.
                        let number = item[*c][j].get("RuleNumber").and_then(|r| r.as_i64());
                        if number.is_some_and(|r| r >= 32767) {
                            continue;
                        }
                        out.push((d, format!("{path}.{c}[{j}]"), id.to_string()));
                    }
                }
                out.push((d, path, id.to_string()));
            }
        }
    }
    out
}

/// AWS responses (JSON documents joined by NUL bytes) through `import aws`:
/// [`check_import`], and every VPC, subnet, group, permission, interface,
/// ACL and ACL entry (but the implicit final deny, rule 32767 and up) is either in the model (something in it comes from
/// the item) or listed as skipped (with the item's origin, or inside it):
/// nothing dropped without being listed.
pub fn check_import_aws_accounted(data: &[u8]) {
    check_import(sgplane::import::Provider::Aws, data);
    let docs = import_documents(data);
    let Ok(imported) = sgplane::import::aws::import_values(&docs) else {
        return;
    };
    let model = format!("{:?}", imported.model);
    let skipped = format!("{:?}", imported.skipped);
    let values: Vec<serde_json::Value> = docs.iter().map(|(_, v)| v.clone()).collect();
    for (d, path, id) in aws_items(&values) {
        let file = &docs[d].0;
        assert!(
            names_origin(&model, file, &path) || names_origin(&skipped, file, &path),
            "{id} at {path} of {file} is neither in the model nor listed as skipped"
        );
    }
}
