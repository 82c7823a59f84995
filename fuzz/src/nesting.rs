//! The `tunnels` target's input: an inner packet wrapped in up to 12
//! layers of VXLAN (Traffic Mirroring) and GENEVE (GWLB: IP or Ethernet
//! inside, with or without the AWS options, with odd options), each over
//! IPv4 or IPv6, then maybe one byte changed or the frame cut, and the
//! parse options. Built with `sgplane::wire::build` and `geneve::emit`.

use std::net::IpAddr;

use arbitrary::{Arbitrary, Result, Unstructured};
use sgplane::wire::build;
use sgplane::wire::ethernet::{self, ether_type};
use sgplane::wire::geneve;
use sgplane::wire::packet::ParseOptions;

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Inner {
    Tcp { flags: u8, sport: u16, dport: u16 },
    Udp { sport: u16, dport: u16 },
    Echo { request: bool, ident: u16 },
    Other { proto: u8 },
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Options {
    None,
    Aws {
        endpoint: u64,
        attachment: u64,
        cookie: u32,
    },
    /// One option of another class, `words` 4-byte words long, critical or not.
    Odd {
        class: u16,
        typ: u8,
        words: u8,
    },
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Layer {
    Vxlan {
        vni: u32,
        v6: bool,
        sport: u16,
    },
    /// `ethernet`: the whole inner frame (protocol 0x6558), else its IP packet.
    Geneve {
        options: Options,
        ethernet: bool,
        v6: bool,
        sport: u16,
    },
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Damage {
    None,
    Byte { at: u16, value: u8 },
    Cut { keep: u16 },
}

#[derive(Debug, Clone)]
pub struct Nested {
    pub inner: Inner,
    pub inner_v6: bool,
    pub layers: Vec<Layer>,
    pub damage: Damage,
    pub opts: ParseOptions,
}

impl<'a> Arbitrary<'a> for Nested {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let inner = Inner::arbitrary(u)?;
        let inner_v6 = bool::arbitrary(u)?;
        let flags = u8::arbitrary(u)?;
        let damage = Damage::arbitrary(u)?;
        let mut layers = Vec::new();
        while layers.len() < 12 && !u.is_empty() {
            layers.push(Layer::arbitrary(u)?);
        }
        let opts = ParseOptions {
            decap_geneve: flags & 1 == 0,
            decap_vxlan: flags & 4 == 0,
            gwlb_strict: flags & 2 != 0,
        };
        Ok(Nested {
            inner,
            inner_v6,
            layers,
            damage,
            opts,
        })
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("literal address")
}

/// The outer ends of layer `depth` (counted from the inside).
fn ends(v6: bool, depth: usize) -> (IpAddr, IpAddr) {
    if v6 {
        (
            ip(&format!("2001:db8:{depth:x}::1")),
            ip(&format!("2001:db8:{depth:x}::2")),
        )
    } else {
        (
            ip(&format!("192.0.2.{}", depth + 1)),
            ip(&format!("198.51.100.{}", depth + 1)),
        )
    }
}

/// The innermost Ethernet frame.
pub fn inner_frame(inner: Inner, v6: bool) -> Vec<u8> {
    let (a, b) = if v6 {
        (ip("2001:db8:a::10"), ip("2001:db8:b::20"))
    } else {
        (ip("10.0.1.10"), ip("10.0.2.20"))
    };
    match inner {
        Inner::Tcp {
            flags,
            sport,
            dport,
        } => build::tcp(a, b, sport, dport, flags, 1, 0, b"inner"),
        Inner::Udp { sport, dport } => build::udp(a, b, sport, dport, b"inner"),
        Inner::Echo { request, ident } => build::echo(a, b, request, ident, 1),
        // Only protocols every builder writes plainly: no IPv6 extension
        // headers, no transport the parser reads.
        Inner::Other { proto } => {
            let p = match proto {
                0 | 1 | 6 | 17 | 43 | 44 | 50 | 51 | 58 | 59 | 60 | 135 | 139 | 140 | 253 | 254 => {
                    47
                }
                p => p,
            };
            build::ip_other(a, b, p, &[0; 12])
        }
    }
}

fn option_bytes(o: Options) -> Vec<u8> {
    match o {
        Options::None => Vec::new(),
        Options::Aws {
            endpoint,
            attachment,
            cookie,
        } => build::aws_options(endpoint, attachment, cookie),
        Options::Odd { class, typ, words } => {
            let words = words % 32;
            let mut v = class.to_be_bytes().to_vec();
            v.push(typ);
            v.push(words);
            v.extend(std::iter::repeat_n(0x5a, usize::from(words) * 4));
            v
        }
    }
}

/// `inner` (an Ethernet frame) wrapped in one layer, as an Ethernet frame.
pub fn wrap(layer: Layer, depth: usize, inner: &[u8]) -> Vec<u8> {
    match layer {
        Layer::Vxlan { vni, v6, sport } => {
            let (a, b) = ends(v6, depth);
            build::vxlan_wrap(a, b, sport, vni & 0x00ff_ffff, inner)
        }
        Layer::Geneve {
            options,
            ethernet,
            v6,
            sport,
        } => {
            let (a, b) = ends(v6, depth);
            let opts = option_bytes(options);
            let (proto, body) = if ethernet || inner.len() <= ethernet::HEADER_LEN {
                (ether_type::TRANS_ETHER, inner)
            } else {
                let ip = &inner[ethernet::HEADER_LEN..];
                let proto = if ip[0] >> 4 == 6 {
                    ether_type::IPV6
                } else {
                    ether_type::IPV4
                };
                (proto, ip)
            };
            let mut payload = vec![0u8; geneve::HEADER_LEN + opts.len()];
            let n = geneve::emit(&mut payload, 0, proto, &opts).expect("options of a valid length");
            payload.truncate(n);
            payload.extend_from_slice(body);
            build::udp(a, b, sport, geneve::UDP_PORT, &payload)
        }
    }
}

impl Nested {
    /// Every frame from the inside out: the inner frame, then each layer's.
    pub fn frames(&self) -> Vec<Vec<u8>> {
        let mut out = vec![inner_frame(self.inner, self.inner_v6)];
        for (depth, &l) in self.layers.iter().enumerate() {
            let next = wrap(l, depth, out.last().expect("the inner frame"));
            // One IP packet carries at most 64 KiB.
            if next.len() > 60_000 {
                break;
            }
            out.push(next);
        }
        out
    }

    /// The outermost frame, damaged as asked.
    pub fn damaged(frame: &[u8], damage: Damage) -> Vec<u8> {
        let mut f = frame.to_vec();
        match damage {
            Damage::None => {}
            Damage::Byte { at, value } => {
                if let Some(b) = f.get_mut(usize::from(at)) {
                    *b = value;
                }
            }
            Damage::Cut { keep } => f.truncate(usize::from(keep)),
        }
        f
    }
}

/// The `tunnels` target's body: decode, build, check ([`crate::invariants::check_nested`]).
pub fn check(data: &[u8]) {
    use crate::invariants::{check_nested, LayerKind};
    let Ok(n) = Nested::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let frames = n.frames();
    let layers: Vec<(LayerKind, bool)> = n.layers[..frames.len() - 1]
        .iter()
        .map(|l| match *l {
            Layer::Vxlan { v6, .. } => (LayerKind::Vxlan, v6),
            Layer::Geneve { ethernet, v6, .. } => (LayerKind::Geneve { ethernet }, v6),
        })
        .collect();
    let damaged = Nested::damaged(frames.last().expect("the inner frame"), n.damage);
    check_nested(&frames, &layers, &damaged, n.opts);
}
