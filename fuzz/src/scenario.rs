//! The `engine` target's input: a sequence of steps, each a time delta and
//! either a raw frame (any link type, any bytes) or a small structured packet
//! description (derived with `arbitrary`) built into frames with
//! `sgplane::wire::build`.
//!
//! Layout, read front to back with `arbitrary::Unstructured`:
//!
//! ```text
//! mode: u8                      bit 0: GWLB strict parsing
//! step*: tag: u8, dt: u8, then
//!   tag < 0x20   raw frame:  len: u16 LE, extra: u16 LE (orig_len - len), len bytes
//!                            link type = LINK_TYPES[tag % 10]
//!   tag >= 0x20  Packet::arbitrary
//! ```
//!
//! The raw layout is fixed so that `seed.py` can write capture frames as seeds.

use std::net::IpAddr;

use arbitrary::{Arbitrary, Result, Unstructured};
use sgplane::wire::build;
use sgplane::wire::packet::{checksum, LinkType, ParseOptions};

use crate::invariants::{EngineHarness, Fed, LINK_TYPES};

/// Addresses the structured packets use: the fuzz policy's interfaces,
/// members of its prefix list (one of them denied), and strangers.
const V4: [&str; 9] = [
    "10.0.1.10",
    "10.0.1.11",
    "10.0.2.20",
    "10.0.3.30",
    "192.0.2.66",
    "192.0.2.5",
    "203.0.113.9",
    "10.0.9.9",
    "172.16.0.2",
];
const V6: [&str; 5] = [
    "2001:db8:1::10",
    "2001:db8:2::20",
    "2001:db8:ff::5",
    "2001:db8:ff::66",
    "2001:db8:beef::1",
];
const PORTS: [u16; 12] = [
    22, 53, 80, 443, 5432, 9000, 9050, 9100, 6081, 0, 1024, 65535,
];

/// Zones of the fuzz policy's endpoints.
const ZONE_A: u64 = 1;
const ZONE_B: u64 = 2;

fn addr(v6: bool, i: u8) -> IpAddr {
    let s = if v6 {
        V6[usize::from(i) % V6.len()]
    } else {
        V4[usize::from(i) % V4.len()]
    };
    s.parse().expect("literal address")
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Port {
    Known(u8),
    /// One of a few ephemeral ports, so flows meet again.
    Ephemeral(u8),
    Any(u16),
}

impl Port {
    fn get(self) -> u16 {
        match self {
            Port::Known(i) => PORTS[usize::from(i) % PORTS.len()],
            Port::Ephemeral(i) => 40000 + u16::from(i % 8),
            Port::Any(p) => p,
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum TcpFlags {
    Syn,
    SynAck,
    Ack,
    PshAck,
    FinAck,
    Rst,
    RstAck,
    Raw(u8),
}

impl TcpFlags {
    fn get(self) -> u8 {
        match self {
            TcpFlags::Syn => 0x02,
            TcpFlags::SynAck => 0x12,
            TcpFlags::Ack => 0x10,
            TcpFlags::PshAck => 0x18,
            TcpFlags::FinAck => 0x11,
            TcpFlags::Rst => 0x04,
            TcpFlags::RstAck => 0x14,
            TcpFlags::Raw(f) => f,
        }
    }
}

/// The packet an ICMP error quotes.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum QuotedBody {
    Tcp { sport: Port, dport: Port },
    Udp { sport: Port, dport: Port },
    Echo { ident: u8 },
    Other { proto: u8 },
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Body {
    Tcp {
        sport: Port,
        dport: Port,
        flags: TcpFlags,
        payload: u8,
    },
    Udp {
        sport: Port,
        dport: Port,
        payload: u8,
    },
    /// Identifiers from a small set, so replies meet requests.
    Echo {
        request: bool,
        ident: u8,
        seq: u16,
    },
    /// An error sent by `dst` of the quoted packet back to its source (or,
    /// `forward`, quoting a packet that went the same way).
    IcmpError {
        typ: u8,
        code: u8,
        forward: bool,
        quoted: QuotedBody,
        minimal: bool,
    },
    Icmp {
        typ: u8,
        code: u8,
        rest: [u8; 4],
    },
    Other {
        proto: u8,
        payload: u8,
    },
    Arp,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Endpoint {
    A,
    B,
    Unknown(u64),
    /// No AWS options at all.
    Bare,
    /// Only the endpoint id.
    EndpointOnly(u8),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum FragOrder {
    InOrder,
    Reverse,
    FirstOnly,
    LaterOnly,
    FirstTwice,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Shape {
    Plain,
    Geneve {
        endpoint: Endpoint,
        sport: u16,
    },
    /// IPv4 only: split into fragments of 8 to 64 bytes.
    Fragments {
        chunk: u8,
        id: u16,
        order: FragOrder,
    },
    /// Cut by a snap length: `keep` bytes captured of the whole frame.
    Snap {
        keep: u16,
    },
    /// One byte flipped.
    Corrupt {
        at: u16,
        xor: u8,
    },
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Packet {
    pub v6: bool,
    pub src: u8,
    pub dst: u8,
    pub body: Body,
    pub shape: Shape,
}

/// A built frame and the length it had on the wire.
pub struct Built {
    pub frame: Vec<u8>,
    pub orig_len: usize,
}

fn arp() -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&build::DST_MAC);
    f.extend_from_slice(&build::SRC_MAC);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&build::SRC_MAC);
    f.extend_from_slice(&[10, 0, 1, 10]);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&[10, 0, 1, 11]);
    f
}

/// An Ethernet frame with an IP packet of any protocol number, written by
/// hand: `build::ip_other` panics inside etherparse for IPv6 next header 0
/// (see tests/fuzz_regressions.rs), and writing the header here lets the
/// extension-header numbers reach the parser's extension walk.
fn raw_ip(src: IpAddr, dst: IpAddr, proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(54 + payload.len());
    f.extend_from_slice(&build::DST_MAC);
    f.extend_from_slice(&build::SRC_MAC);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            f.extend_from_slice(&[0x08, 0x00]);
            let total = (20 + payload.len()) as u16;
            let mut h = [0u8; 20];
            h[0] = 0x45;
            h[2..4].copy_from_slice(&total.to_be_bytes());
            h[8] = 64;
            h[9] = proto;
            h[12..16].copy_from_slice(&s.octets());
            h[16..20].copy_from_slice(&d.octets());
            let c = checksum(&h);
            h[10..12].copy_from_slice(&c.to_be_bytes());
            f.extend_from_slice(&h);
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
            f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
            f.extend_from_slice(&[proto, 64]);
            f.extend_from_slice(&s.octets());
            f.extend_from_slice(&d.octets());
        }
        _ => unreachable!("addresses are picked from one family"),
    }
    f.extend_from_slice(payload);
    f
}

fn quoted_frame(src: IpAddr, dst: IpAddr, q: QuotedBody) -> Vec<u8> {
    match q {
        QuotedBody::Tcp { sport, dport } => {
            build::tcp(src, dst, sport.get(), dport.get(), 0x02, 7, 0, b"")
        }
        QuotedBody::Udp { sport, dport } => build::udp(src, dst, sport.get(), dport.get(), b"q"),
        QuotedBody::Echo { ident } => build::echo(src, dst, true, u16::from(ident % 4), 1),
        QuotedBody::Other { proto } => raw_ip(src, dst, proto, &[0; 8]),
    }
}

impl Packet {
    /// The Ethernet frames this description stands for.
    pub fn frames(&self) -> Vec<Built> {
        let (src, dst) = (addr(self.v6, self.src), addr(self.v6, self.dst));
        let frame = match self.body {
            Body::Tcp {
                sport,
                dport,
                flags,
                payload,
            } => {
                let data = vec![0x61; usize::from(payload % 64)];
                build::tcp(
                    src,
                    dst,
                    sport.get(),
                    dport.get(),
                    flags.get(),
                    1000,
                    2000,
                    &data,
                )
            }
            Body::Udp {
                sport,
                dport,
                payload,
            } => build::udp(
                src,
                dst,
                sport.get(),
                dport.get(),
                &vec![0x75; usize::from(payload % 64)],
            ),
            Body::Echo {
                request,
                ident,
                seq,
            } => build::echo(src, dst, request, u16::from(ident % 4), seq),
            Body::IcmpError {
                typ,
                code,
                forward,
                quoted,
                minimal,
            } => {
                let errors: &[u8] = if self.v6 {
                    &[1, 2, 3, 4]
                } else {
                    &[3, 4, 5, 11, 12]
                };
                let typ = if typ < 0xc0 {
                    errors[usize::from(typ) % errors.len()]
                } else {
                    typ
                };
                let q = if forward {
                    quoted_frame(src, dst, quoted)
                } else {
                    quoted_frame(dst, src, quoted)
                };
                if minimal {
                    build::icmp_error(src, dst, typ, code, &q)
                } else {
                    build::icmp(src, dst, typ, code, [0; 4], &q[14..])
                }
            }
            Body::Icmp { typ, code, rest } => build::icmp(src, dst, typ, code, rest, b"icmp"),
            Body::Other { proto, payload } => {
                raw_ip(src, dst, proto, &vec![0x06; usize::from(payload % 96)])
            }
            Body::Arp => arp(),
        };
        let whole = |frame: Vec<u8>| {
            let orig_len = frame.len();
            vec![Built { frame, orig_len }]
        };
        match self.shape {
            Shape::Plain => whole(frame),
            Shape::Geneve { .. } if matches!(self.body, Body::Arp) => whole(frame),
            Shape::Geneve { endpoint, sport } => {
                let options = match endpoint {
                    Endpoint::A => build::aws_options(ZONE_A, 7, 0xc00c1e),
                    Endpoint::B => build::aws_options(ZONE_B, 7, 0xc00c1e),
                    Endpoint::Unknown(id) => build::aws_options(id, 7, 1),
                    Endpoint::Bare => Vec::new(),
                    Endpoint::EndpointOnly(i) => {
                        build::aws_options(u64::from(i % 3), 0, 0)[..12].to_vec()
                    }
                };
                let gwlb: IpAddr = "172.31.0.1".parse().expect("literal");
                let appliance: IpAddr = "172.31.0.2".parse().expect("literal");
                whole(build::geneve_wrap(gwlb, appliance, sport, &frame, &options))
            }
            Shape::Fragments { .. } if self.v6 || matches!(self.body, Body::Arp) => whole(frame),
            Shape::Fragments { chunk, id, order } => {
                let mut parts = build::fragment_v4(&frame, (usize::from(chunk % 8) + 1) * 8, id);
                if parts.is_empty() {
                    // No payload: nothing to split.
                    return whole(frame);
                }
                match order {
                    FragOrder::InOrder => {}
                    FragOrder::Reverse => parts.reverse(),
                    FragOrder::FirstOnly => parts.truncate(1),
                    FragOrder::LaterOnly => {
                        parts.remove(0);
                    }
                    FragOrder::FirstTwice => parts.insert(1, parts[0].clone()),
                }
                parts.into_iter().flat_map(whole).collect()
            }
            Shape::Snap { keep } => {
                let orig_len = frame.len();
                let mut frame = frame;
                frame.truncate(usize::from(keep));
                vec![Built { frame, orig_len }]
            }
            Shape::Corrupt { at, xor } => {
                let mut frame = frame;
                let n = frame.len();
                frame[usize::from(at) % n] ^= xor;
                whole(frame)
            }
        }
    }
}

/// Time steps: mostly small, sometimes past a timeout, rarely days (slot
/// times are rebased after about 24 days) or backwards (captures are not
/// always in order).
pub fn time_step(now: u64, dt: u8) -> u64 {
    const MS: u64 = 1_000_000;
    match dt {
        0..=63 => now + u64::from(dt) * MS,
        64..=127 => now + u64::from(dt - 64) * 100 * MS,
        128..=191 => now + u64::from(dt - 128) * 1000 * MS,
        192..=239 => now + u64::from(dt - 192) * 60_000 * MS,
        240..=247 => now + u64::from(dt - 239) * 7 * 86_400_000 * MS,
        248..=255 => now.saturating_sub(u64::from(dt - 247) * 1000 * MS),
    }
}

/// The first packet's time: 2023-11-14.
pub const START: u64 = 1_700_000_000_000_000_000;
/// Raw frames are tagged below this.
pub const RAW_TAGS: u8 = 0x20;
/// At most this many steps per input.
pub const MAX_STEPS: usize = 512;

/// Decodes an input into the frames it stands for, with their times.
pub fn decode(data: &[u8]) -> (ParseOptions, Vec<Fed>) {
    let mut u = Unstructured::new(data);
    let mode = u8::arbitrary(&mut u).unwrap_or(0);
    let opts = ParseOptions {
        decap_geneve: true,
        decap_vxlan: true,
        gwlb_strict: mode & 1 != 0,
    };
    let mut frames = Vec::new();
    let _ = steps(&mut u, &mut frames);
    (opts, frames)
}

fn steps(u: &mut Unstructured<'_>, out: &mut Vec<Fed>) -> Result<()> {
    let mut now = START;
    for _ in 0..MAX_STEPS {
        if u.is_empty() {
            break;
        }
        let tag = u8::arbitrary(u)?;
        now = time_step(now, u8::arbitrary(u)?);
        if tag < RAW_TAGS {
            let link = LINK_TYPES[usize::from(tag) % LINK_TYPES.len()];
            let len = usize::from(u16::arbitrary(u)?);
            let extra = usize::from(u16::arbitrary(u)?);
            let frame = u.bytes(len.min(u.len()))?.to_vec();
            out.push(Fed {
                link,
                orig_len: frame.len() + extra,
                frame,
                ts: now,
            });
        } else {
            let p = Packet::arbitrary(u)?;
            for b in p.frames() {
                out.push(Fed {
                    link: LinkType::Ethernet,
                    frame: b.frame,
                    orig_len: b.orig_len,
                    ts: now,
                });
            }
        }
    }
    Ok(())
}

/// Runs one input through the engines on the fuzz policy, checking every
/// invariant after every packet.
pub fn run(data: &[u8]) {
    let (opts, frames) = decode(data);
    let mut h = EngineHarness::standard();
    h.set_parse_options(opts);
    h.run(&frames);
}
