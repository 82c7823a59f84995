//! Writes a port scan as a pcap, for measuring replay on captures where
//! every packet is a new denied flow: SYNs from 65,536 sources
//! (198.18.0.0/16) to random ports of 10.0.1.10, an address of the built-in
//! policy, 10 µs apart.
//!
//! `cargo run --release --example scan_capture -- OUT.pcap|- [PACKETS]`
//! (default 1,000,000; `-` writes to stdout, to pipe into `sgplane replay -`).
//! Deterministic: the same arguments give the same bytes.

use std::io::{BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::DataLink;
use sgplane::wire::build;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: scan_capture OUT.pcap|- [PACKETS]");
        std::process::exit(2);
    };
    let n: u64 = args
        .next()
        .map(|n| n.parse().expect("PACKETS is a number"))
        .unwrap_or(1_000_000);
    let out: Box<dyn Write> = if path == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(std::fs::File::create(&path).expect("create the output file"))
    };
    let header = PcapHeader {
        datalink: DataLink::ETHERNET,
        ..Default::default()
    };
    let mut w = PcapWriter::with_header(BufWriter::with_capacity(1 << 20, out), header)
        .expect("write the header");
    let target = IpAddr::V4(Ipv4Addr::new(10, 0, 1, 10));
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let src = IpAddr::V4(Ipv4Addr::from(0xC612_0000 | (i as u32 & 0xffff)));
        let sport = 1024 + (x >> 48) as u16 % 60_000;
        let dport = (x % 65_535) as u16 + 1;
        let frame = build::tcp(src, target, sport, dport, 0x02, 1, 0, b"");
        let ts = Duration::from_nanos(1_700_000_000_000_000_000 + i * 10_000);
        let p = PcapPacket::new(ts, frame.len() as u32, &frame);
        if w.write_packet(&p).is_err() {
            // The reader went away (a closed pipe): stop quietly.
            return;
        }
    }
    eprintln!("{path}: {n} packets");
}
