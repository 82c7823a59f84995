//! Captures annotated with their verdicts (SPEC §10): every packet written
//! to a pcapng file as it was captured — link type, capture time, length on
//! the wire — with a packet comment saying what sgplane decided and why, so
//! Wireshark shows it (`frame.comment contains "deny"`).
//!
//! The blocks are written here rather than by pcap-file, whose writer takes
//! owned options per packet: a Section Header Block, an Interface Description
//! Block for each link type as it first appears (with `if_tsresol` 9, so
//! timestamps keep their nanoseconds), and an Enhanced Packet Block per
//! packet with an `opt_comment`. Little-endian, every field and option
//! padded to 32 bits as the pcapng specification (RFC draft) requires.

use std::fmt::Write as _;
use std::io::{self, Write};

use crate::engine::Judgement;
use crate::io::capture::CapPacket;
use crate::policy::Policy;

use super::verdicts::attribution;

mod block {
    pub const SECTION_HEADER: u32 = 0x0a0d_0d0a;
    pub const INTERFACE_DESCRIPTION: u32 = 1;
    pub const ENHANCED_PACKET: u32 = 6;
    pub const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;
}

mod option {
    pub const END_OF_OPTIONS: u16 = 0;
    pub const COMMENT: u16 = 1;
    pub const SHB_USERAPPL: u16 = 4;
    pub const IF_TSRESOL: u16 = 9;
}

/// `if_tsresol` 9: timestamps in nanoseconds.
const NANOSECONDS: u8 = 9;
/// An option's value is at most this long (its length field is 16 bits).
const MAX_OPTION: usize = u16::MAX as usize;

/// The comment for a judgement:
/// `sgplane: VERDICT REASON[ RULE][ at INTERFACE DIRECTION]`, e.g.
/// `sgplane: allow rule sg-web/ingress/1 at eni-web-1 ingress` or
/// `sgplane: deny nacl acl-0d1/egress/* at subnet-x egress`.
pub fn comment(j: &Judgement, policy: &Policy) -> String {
    let mut s = String::new();
    write_comment(&mut s, j, policy);
    s
}

fn write_comment(s: &mut String, j: &Judgement, policy: &Policy) {
    let (rule, iface, dir) = attribution(j, policy);
    // Writing to a String cannot fail.
    let _ = write!(s, "sgplane: {} {}", j.verdict, j.reason);
    if let Some(r) = rule {
        let _ = write!(s, " {r}");
    }
    match (iface, dir) {
        (Some(i), Some(d)) => {
            let _ = write!(s, " at {i} {d}");
        }
        (Some(i), None) => {
            let _ = write!(s, " at {i}");
        }
        _ => {}
    }
}

/// Writes packets with their verdicts as pcapng.
pub struct AnnotatedCapture<W: Write> {
    out: W,
    /// The pcap LINKTYPE of each interface described so far; a packet goes
    /// on the interface of its link type.
    interfaces: Vec<u32>,
    comment: String,
    block: Vec<u8>,
}

impl<W: Write> AnnotatedCapture<W> {
    /// Writes the section header.
    pub fn new(mut out: W) -> io::Result<AnnotatedCapture<W>> {
        let mut b = Vec::with_capacity(64);
        start_block(&mut b, block::SECTION_HEADER);
        put_u32(&mut b, block::BYTE_ORDER_MAGIC);
        put_u16(&mut b, 1); // major version
        put_u16(&mut b, 0); // minor version
        b.extend_from_slice(&u64::MAX.to_le_bytes()); // section length: not given
        let app = concat!("sgplane ", env!("CARGO_PKG_VERSION"));
        put_option(&mut b, option::SHB_USERAPPL, app.as_bytes());
        put_option(&mut b, option::END_OF_OPTIONS, &[]);
        end_block(&mut b);
        out.write_all(&b)?;
        Ok(AnnotatedCapture {
            out,
            interfaces: Vec::new(),
            comment: String::new(),
            block: b,
        })
    }

    /// Writes `p` with the comment for `j` (the inner packet's judgement
    /// for GENEVE), describing its link type first if it is new.
    pub fn write(&mut self, p: &CapPacket, j: &Judgement, policy: &Policy) -> io::Result<()> {
        let interface = self.interface(p.linktype)?;
        self.comment.clear();
        write_comment(&mut self.comment, j, policy);
        let mut text = self.comment.as_bytes();
        if text.len() > MAX_OPTION {
            let mut end = MAX_OPTION;
            while !self.comment.is_char_boundary(end) {
                end -= 1;
            }
            text = &text[..end];
        }
        let b = &mut self.block;
        b.clear();
        start_block(b, block::ENHANCED_PACKET);
        put_u32(b, interface);
        put_u32(b, (p.ts >> 32) as u32);
        put_u32(b, p.ts as u32);
        put_u32(b, p.data.len() as u32);
        put_u32(b, p.orig_len.max(p.data.len() as u32));
        b.extend_from_slice(p.data);
        pad(b);
        put_option(b, option::COMMENT, text);
        put_option(b, option::END_OF_OPTIONS, &[]);
        end_block(b);
        self.out.write_all(b)
    }

    /// Flushes and hands back the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }

    /// The interface id for `linktype`, writing its description when new.
    fn interface(&mut self, linktype: u32) -> io::Result<u32> {
        if let Some(i) = self.interfaces.iter().position(|&l| l == linktype) {
            return Ok(i as u32);
        }
        let b = &mut self.block;
        b.clear();
        start_block(b, block::INTERFACE_DESCRIPTION);
        // The link type field is 16 bits: LINKTYPE values all fit.
        put_u16(b, linktype as u16);
        put_u16(b, 0); // reserved
        put_u32(b, 0); // snap length: no limit
        put_option(b, option::IF_TSRESOL, &[NANOSECONDS]);
        put_option(b, option::END_OF_OPTIONS, &[]);
        end_block(b);
        self.out.write_all(b)?;
        self.interfaces.push(linktype);
        Ok(self.interfaces.len() as u32 - 1)
    }
}

fn put_u16(b: &mut Vec<u8>, v: u16) {
    b.extend_from_slice(&v.to_le_bytes());
}

fn put_u32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_le_bytes());
}

/// Zeros up to the next multiple of 4.
fn pad(b: &mut Vec<u8>) {
    b.resize(b.len().next_multiple_of(4), 0);
}

/// Block type and a placeholder for the total length (set by [`end_block`]).
fn start_block(b: &mut Vec<u8>, kind: u32) {
    put_u32(b, kind);
    put_u32(b, 0);
}

/// The trailing total length, and the same at the start of the block.
fn end_block(b: &mut Vec<u8>) {
    let len = (b.len() + 4) as u32;
    put_u32(b, len);
    b[4..8].copy_from_slice(&len.to_le_bytes());
}

/// `value` must be at most [`MAX_OPTION`] bytes.
fn put_option(b: &mut Vec<u8>, code: u16, value: &[u8]) {
    put_u16(b, code);
    put_u16(b, value.len() as u16);
    b.extend_from_slice(value);
    pad(b);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::nacl_tests::nacl_model;
    use crate::engine::Engine;
    use crate::io::capture::CaptureReader;
    use crate::wire::build;
    use crate::wire::packet::LinkType;
    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketOption;
    use pcap_file::pcapng::{Block, PcapNgReader};

    fn syn(dport: u16) -> Vec<u8> {
        let ip = |s: &str| s.parse().unwrap();
        build::tcp(
            ip("10.0.2.20"),
            ip("10.0.1.10"),
            40000,
            dport,
            0x02,
            1,
            1,
            b"",
        )
    }

    #[test]
    fn comments_name_the_verdict_reason_rule_interface_and_direction() {
        let mut e = Engine::with_policy(Policy::compile(&nacl_model()).unwrap());
        let f = syn(22);
        let j = e.process(LinkType::Ethernet, &f, f.len(), 0);
        assert_eq!(
            comment(&j, e.policy()),
            "sgplane: deny nacl acl-web/ingress/* at subnet-web ingress"
        );
        let f = syn(443);
        let j = e.process(LinkType::Ethernet, &f, f.len(), 0);
        assert_eq!(
            comment(&j, e.policy()),
            "sgplane: allow rule sg-open/ingress/0 at web ingress"
        );
        let j = e.process_unknown_link(60);
        assert_eq!(comment(&j, e.policy()), "sgplane: deny not-ip");
    }

    /// Packets of two link types, with their times and lengths, written and
    /// read back by pcap-file's reader and by sgplane's.
    #[test]
    fn packets_read_back_with_link_types_times_lengths_and_comments() {
        let mut e = Engine::with_policy(Policy::compile(&nacl_model()).unwrap());
        let eth = syn(443);
        // The IP packet alone, as a raw-IP capture holds it (odd length: padded).
        let mut raw = eth[14..].to_vec();
        raw.push(0);
        let packets: [(u32, &[u8], u32, u64); 3] = [
            (1, &eth, eth.len() as u32, 1_700_000_000_123_456_789),
            (101, &raw, 1500, 1_700_000_001_000_000_001),
            (1, &syn(22), 54, 1_700_000_002_999_999_999),
        ];
        let mut w = AnnotatedCapture::new(Vec::new()).unwrap();
        let mut comments = Vec::new();
        for &(linktype, data, orig_len, ts) in &packets {
            let link = LinkType::from_pcap(linktype).unwrap();
            let j = e.process(link, data, orig_len as usize, ts);
            comments.push(comment(&j, e.policy()));
            let p = CapPacket {
                ts,
                orig_len,
                data,
                linktype,
                link: Some(link),
                interface: 0,
            };
            w.write(&p, &j, e.policy()).unwrap();
        }
        let file = w.finish().unwrap();
        assert_eq!(file.len() % 4, 0);
        assert!(comments[2].starts_with("sgplane: deny"), "{comments:?}");

        // pcap-file: the blocks, options and link types as written.
        let mut r = PcapNgReader::new(&file[..]).unwrap();
        let mut linktypes = Vec::new();
        let mut got = Vec::new();
        while let Some(b) = r.next_block() {
            match b.unwrap() {
                Block::InterfaceDescription(i) => linktypes.push(u32::from(i.linktype)),
                Block::EnhancedPacket(p) => {
                    let c: Vec<_> = p
                        .options
                        .iter()
                        .filter_map(|o| match o {
                            EnhancedPacketOption::Comment(c) => Some(c.to_string()),
                            _ => None,
                        })
                        .collect();
                    got.push((
                        linktypes[p.interface_id as usize],
                        p.data.to_vec(),
                        p.original_len,
                        c,
                    ));
                }
                _ => {}
            }
        }
        assert_eq!(linktypes, [1, 101]);
        assert_eq!(got.len(), 3);
        for ((lt, data, orig, c), (&(want_lt, want, want_orig, _), want_c)) in
            got.iter().zip(packets.iter().zip(&comments))
        {
            assert_eq!((*lt, &data[..], *orig), (want_lt, want, want_orig));
            assert_eq!(c, std::slice::from_ref(want_c));
        }

        // sgplane's reader: timestamps with if_tsresol applied.
        let mut r = CaptureReader::new(&file[..]).unwrap();
        let mut read = Vec::new();
        while let Some(rec) = r.next_record().unwrap() {
            if let Some(p) = rec.packet {
                read.push((p.linktype, p.ts, p.orig_len, p.data.to_vec()));
            }
        }
        let want: Vec<_> = packets
            .iter()
            .map(|&(lt, d, o, ts)| (lt, ts, o, d.to_vec()))
            .collect();
        assert_eq!(read, want);
    }
}
