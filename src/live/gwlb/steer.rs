//! Which worker owns a GENEVE datagram: both directions of an inner flow,
//! and the ICMP errors about it, must meet one worker's connection tracking.
//!
//! The owner is a symmetric hash of the inner addresses (for an ICMP error,
//! of the packet it quotes), so it is the same for A→B and B→A. It is
//! computed twice, identically: by [`program`], a classic BPF program the
//! kernel runs on each datagram's UDP payload to pick the socket of the
//! `SO_REUSEPORT` group that receives it, and by [`owner`], which a worker
//! runs to check — a datagram that reached the wrong worker anyway (no BPF,
//! or a coalesced run mixing flows) is handed to its owner. The unit tests
//! run the program in a small interpreter and compare.
//!
//! Any byte string has an owner: where the program would read past the end
//! of the datagram the kernel stops it with 0, and [`owner`] says 0 too.
//!
//! Every offset, mask and type both read comes from `wire`'s field modules
//! (`at` gathers them), so the two cannot drift from each other or from
//! the parser.

use crate::wire::ethernet::ether_type;
use crate::wire::icmp;

/// One classic BPF instruction (`struct sock_filter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// Opcodes used here (linux/filter.h, linux/bpf_common.h).
mod op {
    pub const LDB_ABS: u16 = 0x30;
    pub const LDH_ABS: u16 = 0x28;
    pub const LDB_IND: u16 = 0x50;
    pub const LDH_IND: u16 = 0x48;
    pub const LDW_IND: u16 = 0x40;
    pub const LD_MEM: u16 = 0x60;
    pub const LDX_MEM: u16 = 0x61;
    pub const ST: u16 = 0x02;
    pub const STX: u16 = 0x03;
    pub const ADD_K: u16 = 0x04;
    pub const ADD_X: u16 = 0x0c;
    pub const MUL_K: u16 = 0x24;
    pub const AND_K: u16 = 0x54;
    pub const LSH_K: u16 = 0x64;
    pub const RSH_K: u16 = 0x74;
    pub const MOD_K: u16 = 0x94;
    pub const XOR_X: u16 = 0xac;
    pub const JA: u16 = 0x05;
    pub const JEQ_K: u16 = 0x15;
    pub const JGE_K: u16 = 0x35;
    pub const JSET_K: u16 = 0x45;
    pub const TAX: u16 = 0x07;
    pub const TXA: u16 = 0x87;
    pub const RET_A: u16 = 0x16;
    pub const RET_K: u16 = 0x06;
}

/// Scratch memory slots of the program.
const M_OFF: u32 = 0; // offset of the inner IP header
const M_BASE: u32 = 1; // offset of the addresses being hashed
const M_HASH: u32 = 2; // the hash so far

const MIX: u32 = 0x045d_9f3b;

/// What the program reads: offsets from the start of the GENEVE header
/// (`GENEVE_*`), from the inner IP header (`V4_*`, `V6_*`), or from the
/// inner ICMP header (`ICMP_*`), and the values it compares them with.
mod at {
    use crate::base::IpProto;
    use crate::wire::{geneve, icmp, ipv4, ipv6};

    /// GENEVE option lengths and the IPv4 header length count 4-byte
    /// words; the program multiplies by a shift, and hashes words.
    pub const WORD: usize = 4;
    pub const WORD_SHIFT: u32 = WORD.trailing_zeros();

    pub const GENEVE_OPT_LEN: usize = geneve::field::VER_OPT_LEN;
    pub const GENEVE_OPT_LEN_MASK: u32 = geneve::OPT_LEN_WORDS_MASK as u32;
    pub const GENEVE_PROTOCOL: usize = geneve::field::PROTOCOL_TYPE.start;
    /// The inner IP header starts here plus a [`WORD`] per options word.
    pub const GENEVE_HEADER_LEN: usize = geneve::HEADER_LEN;

    pub const V4_VER_IHL: usize = ipv4::field::VER_IHL;
    pub const V4_IHL_MASK: u32 = ipv4::IHL_MASK as u32;
    pub const V4_FLG_OFF: usize = ipv4::field::FLG_OFF.start;
    /// More fragments, or not the first: the ICMP header is not here.
    pub const V4_FRAGMENT: u32 = (ipv4::MORE_FRAGMENTS | ipv4::FRAGMENT_OFFSET) as u32;
    pub const V4_PROTOCOL: usize = ipv4::field::PROTOCOL;
    /// Source and destination address, hashed together.
    pub const V4_ADDRS: usize = ipv4::field::SRC_ADDR.start;
    pub const V4_ADDR_WORDS: usize = (ipv4::field::DST_ADDR.end - V4_ADDRS) / WORD;

    pub const V6_NEXT_HEADER: usize = ipv6::field::NEXT_HEADER;
    pub const V6_ADDRS: usize = ipv6::field::SRC_ADDR.start;
    pub const V6_ADDR_WORDS: usize = (ipv6::field::DST_ADDR.end - V6_ADDRS) / WORD;
    /// An ICMPv6 header right after the fixed header.
    pub const V6_ICMP: usize = ipv6::HEADER_LEN;

    pub const ICMP: u32 = IpProto::ICMP.0 as u32;
    pub const ICMPV6: u32 = IpProto::ICMPV6.0 as u32;
    pub const ICMP_TYPE: usize = icmp::field::TYPE;
    /// The packet an ICMP error quotes.
    pub const ICMP_QUOTE: usize = icmp::HEADER_LEN;

    /// An offset as the immediate of a load.
    pub const fn k(at: usize) -> u32 {
        at as u32
    }
}

/// The owner among `workers` of a datagram with this UDP payload.
pub fn owner(payload: &[u8], workers: usize) -> usize {
    if workers <= 1 {
        return 0;
    }
    hash(payload).map_or(0, |h| (mix(h) % workers as u32) as usize)
}

fn mix(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(MIX);
    h ^ (h >> 16)
}

fn ld8(p: &[u8], at: usize) -> Option<u32> {
    p.get(at).map(|&b| u32::from(b))
}

fn ld16(p: &[u8], at: usize) -> Option<u32> {
    let b = p.get(at..at + 2)?;
    Some(u32::from(u16::from_be_bytes([b[0], b[1]])))
}

fn ld32(p: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(p.get(at..at + 4)?.try_into().ok()?))
}

/// The XOR of the `words` 32-bit words from `at`: symmetric in the two addresses.
fn fold(p: &[u8], at: usize, words: usize) -> Option<u32> {
    (0..words).try_fold(0, |h, i| Some(h ^ ld32(p, at + at::WORD * i)?))
}

/// The symmetric hash, in the order the program loads bytes; `None` where
/// the program reads past the end (or the payload is not raw IP).
fn hash(p: &[u8]) -> Option<u32> {
    let words = ld8(p, at::GENEVE_OPT_LEN)? & at::GENEVE_OPT_LEN_MASK;
    let off = at::GENEVE_HEADER_LEN + at::WORD * words as usize;
    match ld16(p, at::GENEVE_PROTOCOL)? as u16 {
        ether_type::IPV4 => {
            if ld8(p, off + at::V4_PROTOCOL)? == at::ICMP
                && ld16(p, off + at::V4_FLG_OFF)? & at::V4_FRAGMENT == 0
            {
                let ihl = ld8(p, off + at::V4_VER_IHL)? & at::V4_IHL_MASK;
                let l4 = off + at::WORD * ihl as usize;
                if icmp::is_error(false, ld8(p, l4 + at::ICMP_TYPE)? as u8) {
                    let quote = l4 + at::ICMP_QUOTE;
                    return fold(p, quote + at::V4_ADDRS, at::V4_ADDR_WORDS);
                }
            }
            fold(p, off + at::V4_ADDRS, at::V4_ADDR_WORDS)
        }
        ether_type::IPV6 => {
            let l4 = off + at::V6_ICMP;
            if ld8(p, off + at::V6_NEXT_HEADER)? == at::ICMPV6
                && icmp::is_error(true, ld8(p, l4 + at::ICMP_TYPE)? as u8)
            {
                let quote = l4 + at::ICMP_QUOTE;
                return fold(p, quote + at::V6_ADDRS, at::V6_ADDR_WORDS);
            }
            fold(p, off + at::V6_ADDRS, at::V6_ADDR_WORDS)
        }
        _ => None,
    }
}

/// A tiny assembler: instructions with symbolic jump targets.
struct Asm {
    code: Vec<(Insn, Option<(usize, usize)>)>,
    labels: Vec<Option<usize>>,
}

impl Asm {
    fn new() -> Asm {
        Asm {
            code: Vec::new(),
            labels: Vec::new(),
        }
    }
    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }
    fn here(&mut self, l: usize) {
        self.labels[l] = Some(self.code.len());
    }
    fn op(&mut self, code: u16, k: u32) {
        self.code.push((
            Insn {
                code,
                jt: 0,
                jf: 0,
                k,
            },
            None,
        ));
    }
    /// A conditional jump: to `t` if true, `f` if false.
    fn jump(&mut self, code: u16, k: u32, t: usize, f: usize) {
        self.code.push((
            Insn {
                code,
                jt: 0,
                jf: 0,
                k,
            },
            Some((t, f)),
        ));
    }
    fn goto(&mut self, l: usize) {
        // An unconditional jump keeps its target in `k`; marked with jt == jf.
        self.code.push((
            Insn {
                code: op::JA,
                jt: 0,
                jf: 0,
                k: 0,
            },
            Some((l, l)),
        ));
    }
    fn finish(self) -> Vec<Insn> {
        let at = |l: usize| self.labels[l].expect("every label placed");
        self.code
            .iter()
            .enumerate()
            .map(|(pc, &(mut insn, targets))| {
                if let Some((t, f)) = targets {
                    let rel = |l: usize| at(l).checked_sub(pc + 1).expect("jumps go forward");
                    if insn.code == op::JA {
                        insn.k = rel(t) as u32;
                    } else {
                        insn.jt = u8::try_from(rel(t)).expect("short jump");
                        insn.jf = u8::try_from(rel(f)).expect("short jump");
                    }
                }
                insn
            })
            .collect()
    }
}

/// XORs the `words` 32-bit words at X + `from` into A (X is saved in M_BASE).
fn emit_fold(a: &mut Asm, from: usize, words: usize) {
    a.op(op::STX, M_BASE);
    for i in 0..words {
        a.op(op::LDX_MEM, M_BASE);
        a.op(op::LDW_IND, at::k(from + at::WORD * i));
        if i > 0 {
            a.op(op::LDX_MEM, M_HASH);
            a.op(op::XOR_X, 0);
        }
        a.op(op::ST, M_HASH);
    }
}

/// The reuseport program for a group of `workers` sockets (at least 2):
/// returns [`owner`] of each datagram's UDP payload.
pub fn program(workers: usize) -> Vec<Insn> {
    assert!(workers >= 2, "steering needs two sockets or more");
    let mut a = Asm::new();
    let (v4, v6, v4_icmp, v4_err, v4_addr_x, v4_addr, v6_icmp, v6_err, v6_addr, mixl, zero) = (
        a.label(),
        a.label(),
        a.label(),
        a.label(),
        a.label(),
        a.label(),
        a.label(),
        a.label(),
        a.label(),
        a.label(),
        a.label(),
    );
    // X = M_OFF = the GENEVE header length: 8 + 4 * options length.
    a.op(op::LDB_ABS, at::k(at::GENEVE_OPT_LEN));
    a.op(op::AND_K, at::GENEVE_OPT_LEN_MASK);
    a.op(op::LSH_K, at::WORD_SHIFT);
    a.op(op::ADD_K, at::k(at::GENEVE_HEADER_LEN));
    a.op(op::ST, M_OFF);
    a.op(op::TAX, 0);
    a.op(op::LDH_ABS, at::k(at::GENEVE_PROTOCOL));
    let next = a.label();
    a.jump(op::JEQ_K, u32::from(ether_type::IPV4), v4, next);
    a.here(next);
    a.jump(op::JEQ_K, u32::from(ether_type::IPV6), v6, zero);

    // IPv4: an unfragmented ICMP error is hashed by the packet it quotes.
    a.here(v4);
    a.op(op::LDB_IND, at::k(at::V4_PROTOCOL));
    a.jump(op::JEQ_K, at::ICMP, v4_icmp, v4_addr);
    a.here(v4_icmp);
    a.op(op::LDH_IND, at::k(at::V4_FLG_OFF));
    let whole = a.label();
    a.jump(op::JSET_K, at::V4_FRAGMENT, v4_addr, whole);
    a.here(whole);
    // X = the ICMP header: the IP header plus 4 * IHL.
    a.op(op::LDB_IND, at::k(at::V4_VER_IHL));
    a.op(op::AND_K, at::V4_IHL_MASK);
    a.op(op::LSH_K, at::WORD_SHIFT);
    a.op(op::ADD_X, 0);
    a.op(op::TAX, 0);
    a.op(op::LDB_IND, at::k(at::ICMP_TYPE));
    let [others @ .., last] = icmp::V4_ERROR_TYPES;
    for t in others {
        let no = a.label();
        a.jump(op::JEQ_K, u32::from(t), v4_err, no);
        a.here(no);
    }
    a.jump(op::JEQ_K, u32::from(last), v4_err, v4_addr_x);
    a.here(v4_err);
    emit_fold(&mut a, at::ICMP_QUOTE + at::V4_ADDRS, at::V4_ADDR_WORDS);
    a.goto(mixl);
    a.here(v4_addr_x);
    a.op(op::LDX_MEM, M_OFF);
    a.here(v4_addr);
    emit_fold(&mut a, at::V4_ADDRS, at::V4_ADDR_WORDS);
    a.goto(mixl);

    // IPv6: an ICMPv6 error right after the fixed header is hashed by the
    // packet it quotes.
    a.here(v6);
    a.op(op::LDB_IND, at::k(at::V6_NEXT_HEADER));
    a.jump(op::JEQ_K, at::ICMPV6, v6_icmp, v6_addr);
    a.here(v6_icmp);
    a.op(op::LDB_IND, at::k(at::V6_ICMP + at::ICMP_TYPE));
    let (first, last) = icmp::V6_ERROR_TYPES.into_inner();
    let not_high = a.label();
    a.jump(op::JGE_K, u32::from(last) + 1, v6_addr, not_high);
    a.here(not_high);
    a.jump(op::JGE_K, u32::from(first), v6_err, v6_addr);
    a.here(v6_err);
    a.op(op::TXA, 0);
    a.op(op::ADD_K, at::k(at::V6_ICMP + at::ICMP_QUOTE));
    a.op(op::TAX, 0);
    a.here(v6_addr);
    emit_fold(&mut a, at::V6_ADDRS, at::V6_ADDR_WORDS);

    // A = mix(M_HASH) % workers.
    a.here(mixl);
    a.op(op::LD_MEM, M_HASH);
    a.op(op::RSH_K, 16);
    a.op(op::LDX_MEM, M_HASH);
    a.op(op::XOR_X, 0);
    a.op(op::MUL_K, MIX);
    a.op(op::ST, M_HASH);
    a.op(op::RSH_K, 16);
    a.op(op::LDX_MEM, M_HASH);
    a.op(op::XOR_X, 0);
    a.op(op::MOD_K, workers as u32);
    a.op(op::RET_A, 0);
    a.here(zero);
    a.op(op::RET_K, 0);
    a.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{build, ethernet, ipv4, udp};
    use proptest::prelude::*;
    use std::net::IpAddr;

    /// Runs a classic BPF program the way the kernel does on a reuseport
    /// group: a load past the end of the packet ends it with 0.
    fn run(prog: &[Insn], p: &[u8]) -> u32 {
        let (mut a, mut x, mut m) = (0u32, 0u32, [0u32; 16]);
        let mut pc = 0;
        loop {
            let i = prog[pc];
            pc += 1;
            let k = i.k;
            let load = |at: u32, n: usize| -> Option<u32> {
                let b = p.get(at as usize..at as usize + n)?;
                Some(b.iter().fold(0, |v, &b| v << 8 | u32::from(b)))
            };
            let loaded = match i.code {
                op::LDB_ABS => Some(load(k, 1)),
                op::LDH_ABS => Some(load(k, 2)),
                op::LDB_IND => Some(load(x.wrapping_add(k), 1)),
                op::LDH_IND => Some(load(x.wrapping_add(k), 2)),
                op::LDW_IND => Some(load(x.wrapping_add(k), 4)),
                _ => None,
            };
            if let Some(v) = loaded {
                match v {
                    Some(v) => a = v,
                    None => return 0,
                }
                continue;
            }
            let jump = |cond: bool| {
                if cond {
                    usize::from(i.jt)
                } else {
                    usize::from(i.jf)
                }
            };
            match i.code {
                op::LD_MEM => a = m[k as usize],
                op::LDX_MEM => x = m[k as usize],
                op::ST => m[k as usize] = a,
                op::STX => m[k as usize] = x,
                op::ADD_K => a = a.wrapping_add(k),
                op::ADD_X => a = a.wrapping_add(x),
                op::MUL_K => a = a.wrapping_mul(k),
                op::AND_K => a &= k,
                op::LSH_K => a <<= k,
                op::RSH_K => a >>= k,
                op::MOD_K => a %= k,
                op::XOR_X => a ^= x,
                op::TAX => x = a,
                op::TXA => a = x,
                op::JA => pc += k as usize,
                op::JEQ_K => pc += jump(a == k),
                op::JGE_K => pc += jump(a >= k),
                op::JSET_K => pc += jump(a & k != 0),
                op::RET_A => return a,
                op::RET_K => return k,
                other => panic!("opcode {other:#x} not interpreted"),
            }
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// The UDP payload (GENEVE and the inner packet) of a GWLB datagram.
    fn geneve(inner_frame: &[u8], endpoint: u64) -> Vec<u8> {
        let outer = build::geneve_wrap(
            ip("192.0.2.1"),
            ip("192.0.2.2"),
            5000,
            inner_frame,
            &build::aws_options(endpoint, 1, 2),
        );
        outer[ethernet::HEADER_LEN + ipv4::HEADER_LEN + udp::HEADER_LEN..].to_vec()
    }

    fn samples() -> Vec<(Vec<u8>, Vec<u8>)> {
        let (a4, b4, r4) = (ip("10.0.0.1"), ip("10.9.8.7"), ip("10.0.0.254"));
        let (a6, b6, r6) = (ip("2001:db8::1"), ip("2001:db8:9::7"), ip("2001:db8::fe"));
        let mut pairs = Vec::new();
        for (a, b, r) in [(a4, b4, r4), (a6, b6, r6)] {
            let fwd = build::tcp(a, b, 40000, 443, 0x02, 1, 0, b"");
            let rev = build::tcp(b, a, 443, 40000, 0x12, 1, 2, b"");
            let err = build::icmp_error(r, a, if a.is_ipv4() { 11 } else { 3 }, 0, &fwd);
            let echo = build::echo(a, b, true, 7, 1);
            let reply = build::echo(b, a, false, 7, 1);
            pairs.push((geneve(&fwd, 1), geneve(&rev, 1)));
            pairs.push((geneve(&fwd, 1), geneve(&err, 1)));
            pairs.push((geneve(&echo, 1), geneve(&reply, 2)));
        }
        pairs
    }

    #[test]
    fn both_directions_and_their_icmp_errors_have_one_owner() {
        for n in 2..6 {
            for (x, y) in samples() {
                assert_eq!(owner(&x, n), owner(&y, n), "{n} workers");
                assert!(owner(&x, n) < n);
            }
        }
    }

    #[test]
    fn flows_spread_over_the_workers() {
        let mut per = [0usize; 4];
        for i in 0..400u32 {
            let a = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i * 7));
            let f = build::udp(a, ip("10.1.0.1"), 5000, 53, b"q");
            per[owner(&geneve(&f, 1), 4)] += 1;
        }
        assert!(per.iter().all(|&c| c > 60), "{per:?}");
    }

    #[test]
    fn the_program_computes_the_owner() {
        for n in 2..6 {
            let prog = program(n);
            assert!(prog.len() < 200);
            for (x, y) in samples() {
                for p in [&x, &y] {
                    assert_eq!(run(&prog, p) as usize, owner(p, n));
                    for cut in 0..p.len() {
                        assert_eq!(
                            run(&prog, &p[..cut]) as usize,
                            owner(&p[..cut], n),
                            "cut at {cut}"
                        );
                    }
                }
            }
        }
    }

    proptest! {
        #[test]
        fn the_program_equals_owner_on_any_bytes(
            mut p in proptest::collection::vec(any::<u8>(), 0..160),
            proto in prop_oneof![Just(0x0800u16), Just(0x86dd), any::<u16>()],
            words in 0u8..6,
            l4 in prop_oneof![Just(1u8), Just(58), any::<u8>()],
            typ in prop_oneof![Just(3u8), Just(11), Just(2), any::<u8>()],
            n in 2usize..9,
        ) {
            // Steer the random bytes towards the interesting paths.
            if p.len() >= 4 {
                p[0] = (p[0] & 0xc0) | words;
                p[2..4].copy_from_slice(&proto.to_be_bytes());
            }
            let off = at::GENEVE_HEADER_LEN + at::WORD * usize::from(words);
            let (v4, v6) = (proto == ether_type::IPV4, proto == ether_type::IPV6);
            if let Some(b) = p.get_mut(off + at::V4_PROTOCOL) { *b = l4; }
            // The IPv6 next header shares its byte with the IPv4 flags.
            if let Some(b) = p.get_mut(off + at::V6_NEXT_HEADER) { if v6 { *b = l4 } else { *b &= 0xc0 } }
            if let Some(b) = p.get_mut(off + at::V4_FLG_OFF + 1) { if v4 { *b = 0 } }
            if let Some(b) = p.get_mut(off + at::V4_VER_IHL) { if v4 { *b = 0x45 } }
            if let Some(b) = p.get_mut(off + ipv4::HEADER_LEN) { if v4 { *b = typ } }
            if let Some(b) = p.get_mut(off + at::V6_ICMP) { if v6 { *b = typ & 7 } }
            prop_assert_eq!(run(&program(n), &p) as usize, owner(&p, n));
        }
    }
}
