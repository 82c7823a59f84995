//! Writes a large synthetic capture for replay benchmarks: many concurrent
//! TCP sessions, DNS over UDP and pings between the hosts of the built-in
//! policy and the internet, about a tenth of them denied.
//!
//! `cargo run --release --example synth_capture -- OUT.pcap [PACKETS]`
//! (default 1,000,000 packets). Deterministic: the same arguments give the
//! same bytes.

use std::fs::File;
use std::io::BufWriter;
use std::net::{IpAddr, Ipv4Addr};
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

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

/// One session's packets, as (frame, seconds since its start).
fn session(rng: &mut Rng, id: u64) -> Vec<(Vec<u8>, f64)> {
    let internet = v4(203, 0, 113, (id % 250) as u8 + 1);
    let sport = 1024 + (id % 60_000) as u16;
    let mut out = Vec::new();
    let mut tcp = |src, dst, sp, dp, flags, payload: &[u8], t: f64| {
        out.push((build::tcp(src, dst, sp, dp, flags, 1, 1, payload), t));
    };
    match rng.below(10) {
        // Customers to the ALB on 443: a handshake, requests and responses, close.
        0..=5 => {
            let alb = v4(10, 0, 0, 10);
            tcp(internet, alb, sport, 443, 0x02, b"", 0.0);
            tcp(alb, internet, 443, sport, 0x12, b"", 0.001);
            tcp(internet, alb, sport, 443, 0x10, b"", 0.002);
            let body = [0x42u8; 600];
            for k in 0..4 {
                let t = 0.003 + k as f64 * 0.004;
                tcp(internet, alb, sport, 443, 0x18, &body[..120], t);
                tcp(alb, internet, 443, sport, 0x18, &body, t + 0.001);
            }
            tcp(internet, alb, sport, 443, 0x11, b"", 0.03);
            tcp(alb, internet, 443, sport, 0x11, b"", 0.031);
            tcp(internet, alb, sport, 443, 0x10, b"", 0.032);
        }
        // ALB to a web server on 80.
        6 | 7 => {
            let (alb, web) = (v4(10, 0, 0, 10), v4(10, 0, 10, 11));
            tcp(alb, web, sport, 80, 0x02, b"", 0.0);
            tcp(web, alb, 80, sport, 0x12, b"", 0.0005);
            tcp(alb, web, sport, 80, 0x10, b"", 0.001);
            tcp(alb, web, sport, 80, 0x18, b"GET / HTTP/1.1\r\n\r\n", 0.0012);
            tcp(web, alb, 80, sport, 0x18, &[0x41u8; 900], 0.004);
            tcp(alb, web, sport, 80, 0x14, b"", 0.005);
        }
        // DNS to the resolver.
        8 => {
            let (web, dns) = (v4(10, 0, 10, 11), v4(10, 0, 40, 10));
            out.push((build::udp(web, dns, sport, 53, &[1u8; 40]), 0.0));
            out.push((build::udp(dns, web, 53, sport, &[2u8; 90]), 0.0004));
        }
        // Denied: SSH from the internet to the bastion, with retransmissions.
        _ => {
            let bastion = v4(10, 0, 0, 20);
            tcp(internet, bastion, sport, 22, 0x02, b"", 0.0);
            tcp(internet, bastion, sport, 22, 0x02, b"", 1.0);
            tcp(internet, bastion, sport, 22, 0x02, b"", 3.0);
        }
    }
    out
}

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: synth_capture OUT.pcap [PACKETS]");
        std::process::exit(2);
    };
    let target: usize = args
        .next()
        .map(|n| n.parse().expect("PACKETS is a number"))
        .unwrap_or(1_000_000);
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    // Sessions start every 50 µs; their packets are merged in time order.
    let mut pending: std::collections::BinaryHeap<std::cmp::Reverse<(u64, u64, Vec<u8>)>> =
        Default::default();
    let header = PcapHeader {
        datalink: DataLink::ETHERNET,
        ..Default::default()
    };
    let f = File::create(&path).expect("create the output file");
    let mut w = PcapWriter::with_header(BufWriter::with_capacity(1 << 20, f), header)
        .expect("write the header");
    let t0: u64 = 1_700_000_000_000_000_000;
    let (mut written, mut id, mut seq) = (0usize, 0u64, 0u64);
    while written < target {
        let start = t0 + id * 50_000;
        for (frame, dt) in session(&mut rng, id) {
            seq += 1;
            pending.push(std::cmp::Reverse((start + (dt * 1e9) as u64, seq, frame)));
        }
        id += 1;
        while let Some(std::cmp::Reverse((t, _, _))) = pending.peek() {
            if *t > start || written >= target {
                break;
            }
            let std::cmp::Reverse((t, _, frame)) = pending.pop().expect("peeked");
            let p = PcapPacket::new(Duration::from_nanos(t), frame.len() as u32, &frame);
            w.write_packet(&p).expect("write a packet");
            written += 1;
        }
    }
    eprintln!("{path}: {written} packets, {id} sessions");
}
