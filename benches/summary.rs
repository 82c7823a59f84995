//! The replay summary's cost per packet (`Report::observe`): a port scan
//! where every denied packet is a new flow, denied flows that repeat, and
//! allowed packets (which only feed the distinct-flow count).
//!
//! `cargo bench --bench summary`; figures in the README.

use std::net::{IpAddr, Ipv4Addr};

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use sgplane::engine::{Engine, Judgement};
use sgplane::policy::{Policy, Verdict};
use sgplane::replay::Report;
use sgplane::wire::{build, LinkType};

const SEC: u64 = 1_000_000_000;
const T0: u64 = 1_700_000_000 * SEC;
/// Packets per stream.
const N: usize = 1 << 20;

const POLICY: &str = r#"
[security_groups.sg-client]
egress = [ { proto = "all", to = "0.0.0.0/0" } ]
[security_groups.sg-server]
ingress = [ { proto = "tcp", ports = "80", from = "10.0.0.0/8" } ]
[interfaces.clients]
addresses = ["10.1.0.0/16"]
security_groups = ["sg-client"]
[interfaces.server]
addresses = ["10.0.0.2"]
security_groups = ["sg-server"]
"#;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The judgements of `n` frames, `frame(i)` each, judged in order.
fn judged(n: usize, mut frame: impl FnMut(usize) -> Vec<u8>) -> (Engine, Vec<Judgement>) {
    let mut e = Engine::with_policy(Policy::from_toml(POLICY, "bench").unwrap());
    let js = (0..n)
        .map(|i| {
            let f = frame(i);
            e.process(LinkType::Ethernet, &f, f.len(), T0)
        })
        .collect();
    (e, js)
}

fn observe(c: &mut Criterion) {
    let server = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    // SYNs from 65,536 sources to random ports: every packet a new denied flow.
    let scan = judged(N, |i| {
        let src = IpAddr::V4(Ipv4Addr::from(0xC612_0000 | (i as u32 & 0xffff)));
        let dport = (rng.next() % 65_535) as u16 + 1;
        build::tcp(src, server, 40_000, dport, 0x02, 1, 0, b"")
    });
    // 512 denied flows, each sent 2,048 times round robin.
    let repeated = judged(N, |i| {
        let src = IpAddr::V4(Ipv4Addr::from(0xC612_0000 | (i as u32 % 512)));
        build::tcp(src, server, 40_000, 22, 0x02, 1, 0, b"")
    });
    // 65,536 allowed flows (loose pick-up ACKs), each 16 times.
    let allowed = judged(N, |i| {
        let src = IpAddr::V4(Ipv4Addr::from(0x0a01_0000 | (i as u32 & 0xffff)));
        build::tcp(src, server, 40_000, 80, 0x10, 1, 1, b"")
    });
    let mut g = c.benchmark_group("summary/observe");
    g.sample_size(10);
    g.throughput(Throughput::Elements(N as u64));
    for (name, (engine, js), verdict) in [
        ("scan", &scan, Verdict::Deny),
        ("repeated-512", &repeated, Verdict::Deny),
        ("allowed", &allowed, Verdict::Allow),
    ] {
        assert!(js.iter().all(|j| j.verdict == verdict), "{name}");
        g.bench_with_input(BenchmarkId::new(name, N), &N, |b, _| {
            b.iter_batched(
                || Report::new("bench", "pcap"),
                |mut r| {
                    for (i, j) in js.iter().enumerate() {
                        r.observe(j, T0 + i as u64, engine.policy());
                    }
                    r
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, observe);
criterion_main!(benches);
