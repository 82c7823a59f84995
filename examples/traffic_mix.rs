//! Writes captures of the traffic mixes a security tool meets, for the
//! replay benchmarks (`benches/replay-mixes.sh`) and for trying sgplane on
//! hostile traffic. Every mix is addressed to the built-in policy
//! (`config/default.toml`):
//!
//! - `allowed`: ordinary HTTPS connections from internet clients to the ALB
//!   (handshake, requests and responses, close), many of them open at once;
//!   20 packets a connection, so 1M packets are 50k connections.
//! - `scan`: a port scan of one web server: SYNs from 65,536 internet sources
//!   to random ports, every one `no-rule`, nearly every packet a new flow.
//! - `unknown`: flows between addresses of no interface (`unknown-address`),
//!   four packets each.
//! - `mixed`: 70% of the packets from `allowed`, 20% `scan`, 10% `unknown`,
//!   interleaved in time.
//!
//! ```text
//! cargo run --release --example traffic_mix -- MIX OUT.pcap [PACKETS] [--v6] [--vlan]
//! ```
//!
//! PACKETS defaults to 1,000,000; `--v6` uses the policy's IPv6 addresses;
//! `--vlan` tags every frame 802.1Q (VLAN 100), as a capture on a trunk
//! port has them (frames replay's parser takes off its fast path).
//! Deterministic: the same arguments give the same bytes.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::BufWriter;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::DataLink;
use sgplane::wire::build;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Allowed,
    Scan,
    Unknown,
}

/// Addresses of one IP family.
struct Addrs {
    v6: bool,
}

impl Addrs {
    /// The ALB's two ENIs.
    fn alb(&self, n: u64) -> IpAddr {
        match (self.v6, n % 2) {
            (false, 0) => IpAddr::V4(Ipv4Addr::new(10, 0, 0, 10)),
            (false, _) => IpAddr::V4(Ipv4Addr::new(10, 0, 1, 10)),
            (true, 0) => "2001:db8:1234::10".parse().expect("literal"),
            (true, _) => "2001:db8:1234:1::10".parse().expect("literal"),
        }
    }

    /// The scanned web server.
    fn web(&self) -> IpAddr {
        if self.v6 {
            "2001:db8:1234:10::11".parse().expect("literal")
        } else {
            IpAddr::V4(Ipv4Addr::new(10, 0, 10, 11))
        }
    }

    /// Internet host number `n` (up to 2^16 distinct ones in 100.64.0.0/10
    /// or 2001:db8:beef::/48).
    fn internet(&self, n: u64) -> IpAddr {
        let n = (n & 0xffff) as u32;
        if self.v6 {
            IpAddr::V6(Ipv6Addr::new(
                0x2001,
                0x0db8,
                0xbeef,
                0,
                0,
                0,
                (n >> 8) as u16,
                n as u16 & 0xff,
            ))
        } else {
            IpAddr::V4(Ipv4Addr::from(0x6440_0000 | n))
        }
    }

    /// An address of no interface, on one of two sides.
    fn nowhere(&self, side: u8, n: u64) -> IpAddr {
        let n = (n & 0xffff) as u32;
        if self.v6 {
            IpAddr::V6(Ipv6Addr::new(
                0x2001,
                0x0db8,
                0xdead,
                u16::from(side),
                0,
                0,
                (n >> 8) as u16,
                n as u16 & 0xff,
            ))
        } else {
            let base = if side == 0 { 0xc612_0000 } else { 0xc613_0000 }; // 198.18/15
            IpAddr::V4(Ipv4Addr::from(base | n))
        }
    }
}

/// A unit of traffic (a connection, a probe), as (frame, nanoseconds after
/// its start), and the number of packets it has.
fn unit(kind: Kind, rng: &mut Rng, id: u64, a: &Addrs) -> Vec<(Vec<u8>, u64)> {
    let mut out = Vec::new();
    let ms = 1_000_000u64;
    match kind {
        Kind::Allowed => {
            let client = a.internet(rng.next());
            let alb = a.alb(id);
            let sport = 1024 + (rng.below(64_000)) as u16;
            let mut tcp = |from_client: bool, flags: u8, len: usize, t: u64| {
                let payload = vec![0x17u8; len];
                let f = if from_client {
                    build::tcp(client, alb, sport, 443, flags, 1, 1, &payload)
                } else {
                    build::tcp(alb, client, 443, sport, flags, 1, 1, &payload)
                };
                out.push((f, t));
            };
            tcp(true, 0x02, 0, 0);
            tcp(false, 0x12, 0, ms / 2);
            tcp(true, 0x10, 0, ms);
            // Seven requests and responses, then the close: 20 packets.
            for k in 0..7u64 {
                let t = 2 * ms + k * 3 * ms;
                tcp(true, 0x18, 180, t);
                tcp(false, 0x18, 1200, t + ms);
            }
            tcp(true, 0x11, 0, 24 * ms);
            tcp(false, 0x11, 0, 24 * ms + ms / 2);
            tcp(true, 0x10, 0, 25 * ms);
        }
        Kind::Scan => {
            let src = a.internet(id);
            let dport = 1 + rng.below(65_535) as u16;
            let sport = 1024 + rng.below(64_000) as u16;
            out.push((build::tcp(src, a.web(), sport, dport, 0x02, 7, 0, b""), 0));
        }
        Kind::Unknown => {
            let (x, y) = (a.nowhere(0, rng.next()), a.nowhere(1, rng.next()));
            let (sp, dp) = (1024 + rng.below(64_000) as u16, 1 + rng.below(1024) as u16);
            if id % 2 == 0 {
                for (k, len) in [64usize, 512, 64, 512].into_iter().enumerate() {
                    let f = if k % 2 == 0 {
                        build::udp(x, y, sp, dp, &vec![1u8; len])
                    } else {
                        build::udp(y, x, dp, sp, &vec![2u8; len])
                    };
                    out.push((f, k as u64 * ms));
                }
            } else {
                let fl = [0x02u8, 0x12, 0x10, 0x18];
                for (k, flags) in fl.into_iter().enumerate() {
                    let f = if k % 2 == 0 {
                        build::tcp(x, y, sp, dp, flags, 1, 1, &[3u8; 100])
                    } else {
                        build::tcp(y, x, dp, sp, flags, 1, 1, &[4u8; 100])
                    };
                    out.push((f, k as u64 * ms));
                }
            }
        }
    }
    out
}

fn packets_of(kind: Kind) -> u64 {
    match kind {
        Kind::Allowed => 20,
        Kind::Scan => 1,
        Kind::Unknown => 4,
    }
}

fn usage() -> ! {
    eprintln!("usage: traffic_mix allowed|scan|unknown|mixed OUT.pcap [PACKETS] [--v6] [--vlan]");
    std::process::exit(2);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let v6 = args.iter().any(|a| a == "--v6");
    let vlan = args.iter().any(|a| a == "--vlan");
    let pos: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let (Some(mix), Some(path)) = (pos.first(), pos.get(1)) else {
        usage()
    };
    let target: u64 = match pos.get(2) {
        Some(n) => n.parse().unwrap_or_else(|_| usage()),
        None => 1_000_000,
    };
    // Each kind's share of the packets.
    let shares: Vec<(Kind, f64)> = match mix.as_str() {
        "allowed" => vec![(Kind::Allowed, 1.0)],
        "scan" => vec![(Kind::Scan, 1.0)],
        "unknown" => vec![(Kind::Unknown, 1.0)],
        "mixed" => vec![
            (Kind::Allowed, 0.7),
            (Kind::Scan, 0.2),
            (Kind::Unknown, 0.1),
        ],
        _ => usage(),
    };
    let addrs = Addrs { v6 };
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let header = PcapHeader {
        datalink: DataLink::ETHERNET,
        ..Default::default()
    };
    let f = File::create(path).unwrap_or_else(|e| {
        eprintln!("cannot create {path}: {e}");
        std::process::exit(2)
    });
    let mut w = PcapWriter::with_header(BufWriter::with_capacity(1 << 20, f), header)
        .expect("write the header");
    // Units start one after another, 1 µs of capture time per packet they
    // bring; their packets are merged in time order.
    let mut pending: BinaryHeap<Reverse<(u64, u64, Vec<u8>)>> = BinaryHeap::new();
    let mut started = vec![0u64; shares.len()];
    let (mut queued, mut written, mut seq) = (0u64, 0u64, 0u64);
    let t0: u64 = 1_700_000_000_000_000_000;
    let mut now = t0;
    let mut units = 0u64;
    let mut emit = |pending: &mut BinaryHeap<Reverse<(u64, u64, Vec<u8>)>>, until: u64| {
        while let Some(Reverse((t, _, _))) = pending.peek() {
            if *t > until {
                break;
            }
            let Reverse((t, _, mut frame)) = pending.pop().expect("peeked");
            if vlan {
                // After the two MAC addresses: TPID 0x8100, VLAN 100.
                frame.splice(12..12, [0x81, 0x00, 0x00, 0x64]);
            }
            let p = PcapPacket::new(Duration::from_nanos(t), frame.len() as u32, &frame);
            w.write_packet(&p).expect("write a packet");
            written += 1;
        }
    };
    while queued < target {
        // The kind furthest behind its share of the packets goes next.
        let i = (0..shares.len())
            .min_by(|&x, &y| {
                let fx = started[x] as f64 / shares[x].1;
                let fy = started[y] as f64 / shares[y].1;
                fx.total_cmp(&fy)
            })
            .expect("at least one kind");
        let kind = shares[i].0;
        for (frame, dt) in unit(kind, &mut rng, units, &addrs) {
            if queued == target {
                break;
            }
            seq += 1;
            queued += 1;
            pending.push(Reverse((now + dt, seq, frame)));
        }
        started[i] += packets_of(kind);
        units += 1;
        now += packets_of(kind) * 1_000;
        emit(&mut pending, now);
    }
    emit(&mut pending, u64::MAX);
    eprintln!("{path}: {written} packets, {units} flows ({mix})");
}
