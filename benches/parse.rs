//! Why the packet parser is written by hand: sgplane's `wire::parse` against
//! etherparse's slicers on the same frames, extracting the same fields
//! (addresses, protocol, ports, TCP flags).
//!
//! `cargo bench --bench parse`

use std::net::IpAddr;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use etherparse::{LaxSlicedPacket, NetSlice, SlicedPacket, TransportSlice};
use sgplane::wire::{build, parse, Frame, LinkType, ParseOptions, L4};

fn frames() -> Vec<Vec<u8>> {
    let v4 = |s: &str| -> IpAddr { s.parse().unwrap() };
    let mut out = Vec::new();
    for i in 0..64u16 {
        out.push(build::tcp(
            v4("10.0.0.1"),
            v4("10.0.0.2"),
            40000 + i,
            443,
            0x18,
            1,
            1,
            &[0u8; 100],
        ));
        out.push(build::udp(
            v4("10.0.0.1"),
            v4("10.0.0.3"),
            5000 + i,
            53,
            &[0u8; 40],
        ));
        out.push(build::tcp(
            v4("2001:db8::1"),
            v4("2001:db8::2"),
            40000 + i,
            80,
            0x10,
            1,
            1,
            &[0u8; 60],
        ));
    }
    out
}

/// The fields the engine needs, as etherparse gives them.
fn with_etherparse(f: &[u8]) -> Option<(IpAddr, IpAddr, u8, u16, u16)> {
    let p = SlicedPacket::from_ethernet(f).ok()?;
    let (src, dst, proto) = match p.net? {
        NetSlice::Ipv4(ip) => {
            let h = ip.header();
            (
                IpAddr::from(h.source_addr()),
                IpAddr::from(h.destination_addr()),
                h.protocol().0,
            )
        }
        NetSlice::Ipv6(ip) => {
            let h = ip.header();
            (
                IpAddr::from(h.source_addr()),
                IpAddr::from(h.destination_addr()),
                ip.payload().ip_number.0,
            )
        }
        _ => return None,
    };
    let (sp, dp) = match p.transport? {
        TransportSlice::Tcp(t) => (t.source_port(), t.destination_port()),
        TransportSlice::Udp(u) => (u.source_port(), u.destination_port()),
        _ => (0, 0),
    };
    Some((src, dst, proto, sp, dp))
}

fn with_etherparse_lax(f: &[u8]) -> Option<(u8, u16)> {
    let p = LaxSlicedPacket::from_ethernet(f).ok()?;
    match p.transport? {
        TransportSlice::Tcp(t) => Some((6, t.destination_port())),
        TransportSlice::Udp(u) => Some((17, u.destination_port())),
        _ => None,
    }
}

fn with_sgplane(f: &[u8]) -> Option<(IpAddr, IpAddr, u8, u16, u16)> {
    match parse(LinkType::Ethernet, f, f.len(), ParseOptions::default()).ok()? {
        Frame::Ip(p) => {
            let (sp, dp) = match p.l4 {
                L4::Tcp { sport, dport, .. } | L4::Udp { sport, dport } => (sport, dport),
                _ => (0, 0),
            };
            Some((p.src, p.dst, p.proto.0, sp, dp))
        }
        _ => None,
    }
}

fn bench(c: &mut Criterion) {
    let frames = frames();
    // Both parsers agree on every frame.
    for f in &frames {
        assert_eq!(with_sgplane(f), with_etherparse(f));
    }
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(frames.len() as u64));
    g.bench_function("sgplane", |b| {
        b.iter(|| frames.iter().filter_map(|f| with_sgplane(f)).count())
    });
    g.bench_function("etherparse-sliced", |b| {
        b.iter(|| frames.iter().filter_map(|f| with_etherparse(f)).count())
    });
    g.bench_function("etherparse-lax", |b| {
        b.iter(|| frames.iter().filter_map(|f| with_etherparse_lax(f)).count())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
