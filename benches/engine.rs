//! The engine on in-memory frames: established flows with a large table
//! (random flow order, so the table is not in cache), and new flows decided
//! by the rules.
//!
//! `cargo bench --bench engine`; figures in the README.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use sgplane::engine::{Engine, Input, Ruleset};
use sgplane::policy::Policy;
use sgplane::wire::{build, LinkType};

const SEC: u64 = 1_000_000_000;
const T0: u64 = 1_700_000_000 * SEC;

/// A policy of `rules` ingress rules on one server SG (a tcp port each, from
/// assorted prefixes), clients egress-all, capacity for `flows` entries.
fn policy(rules: usize, flows: usize) -> Policy {
    let mut t = format!("[conntrack]\nmax_entries = {}\n", flows + 16);
    t.push_str(
        "[security_groups.sg-client]\negress = [ { proto = \"all\", to = \"0.0.0.0/0\" } ]\n",
    );
    t.push_str("[security_groups.sg-server]\ningress = [\n");
    for i in 0..rules.saturating_sub(1) {
        t.push_str(&format!(
            "  {{ proto = \"tcp\", ports = \"{}\", from = \"{}.{}.0.0/16\" }},\n",
            1000 + i,
            11 + i % 200,
            i / 200
        ));
    }
    t.push_str("  { proto = \"udp\", ports = \"53\", from = \"10.0.0.0/8\" },\n");
    t.push_str("  { proto = \"tcp\", ports = \"80\", from = \"10.0.0.0/8\" },\n]\n");
    t.push_str(
        "[interfaces.clients]\naddresses = [\"10.1.0.0/16\"]\nsecurity_groups = [\"sg-client\"]\n",
    );
    t.push_str(
        "[interfaces.server]\naddresses = [\"10.0.0.2\"]\nsecurity_groups = [\"sg-server\"]\n",
    );
    Policy::from_toml(&t, "bench").unwrap()
}

fn client(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a01_0000 | (i as u32 % 60_000 + 1)))
}

/// Frames in one buffer with their offsets, read in order like a capture.
struct Frames {
    data: Vec<u8>,
    spans: Vec<(usize, usize)>,
}

impl Frames {
    fn new() -> Frames {
        Frames {
            data: Vec::new(),
            spans: Vec::new(),
        }
    }
    fn push(&mut self, f: &[u8]) {
        self.spans.push((self.data.len(), f.len()));
        self.data.extend_from_slice(f);
    }
    fn get(&self, i: usize) -> &[u8] {
        let (o, l) = self.spans[i];
        &self.data[o..o + l]
    }
}

/// A deterministic shuffle (xorshift) so flows are visited in random order.
fn shuffled(n: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in (1..n).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
    v
}

fn established(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine/established");
    g.sample_size(10);
    for &flows in &[1_000usize, 1_000_000] {
        let mut e = Engine::with_policy(policy(10, flows));
        let server = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
        // Open every flow with a client ACK (loose pick-up), as a capture would.
        for i in 0..flows {
            let sport = 1024 + (i / 60_000) as u16;
            let f = build::tcp(client(i), server, sport, 80, 0x10, 1, 1, b"");
            e.process(LinkType::Ethernet, &f, f.len(), T0);
        }
        assert_eq!(e.conntrack().len(), flows);
        let mut frames = Frames::new();
        for &i in &shuffled(flows) {
            let sport = 1024 + (i / 60_000) as u16;
            frames.push(&build::tcp(server, client(i), 80, sport, 0x10, 1, 1, b""));
        }
        let per_flow = e.conntrack().memory_bytes() as f64 / flows as f64;
        eprintln!(
            "engine/established: {flows} flows, table {} bytes, {per_flow:.1} bytes/flow",
            e.conntrack().memory_bytes()
        );
        g.throughput(Throughput::Elements(flows as u64));
        g.bench_with_input(BenchmarkId::new("one-by-one", flows), &flows, |b, _| {
            b.iter(|| {
                let mut allowed = 0u64;
                for i in 0..frames.spans.len() {
                    let f = frames.get(i);
                    allowed += (e.process(LinkType::Ethernet, f, f.len(), T0 + SEC).verdict
                        == sgplane::policy::Verdict::Allow) as u64;
                }
                assert_eq!(allowed as usize, frames.spans.len());
            })
        });
        let inputs: Vec<Input> = (0..frames.spans.len())
            .map(|i| {
                let data = frames.get(i);
                Input {
                    link: LinkType::Ethernet,
                    data,
                    orig_len: data.len(),
                    ts: T0 + SEC,
                }
            })
            .collect();
        let mut out = Vec::with_capacity(256);
        g.bench_with_input(BenchmarkId::new("batched", flows), &flows, |b, _| {
            b.iter(|| {
                let mut allowed = 0u64;
                for chunk in inputs.chunks(256) {
                    out.clear();
                    e.process_batch(chunk, &mut out);
                    allowed += out
                        .iter()
                        .filter(|j| j.verdict == sgplane::policy::Verdict::Allow)
                        .count() as u64;
                }
                assert_eq!(allowed as usize, inputs.len());
            })
        });
    }
    g.finish();
}

fn new_flows(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine/new-flows");
    g.sample_size(10);
    let n = 200_000usize;
    // Every flow is new: the SYN of a connection decided by the rules, then
    // inserted (the table is sized to hold them all).
    for &rules in &[10usize, 1_000] {
        let server = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
        let mut frames = Frames::new();
        for i in 0..n {
            let sport = 1024 + (i / 60_000) as u16;
            frames.push(&build::tcp(client(i), server, sport, 80, 0x02, 1, 0, b""));
        }
        let inputs: Vec<Input> = (0..n)
            .map(|i| {
                let data = frames.get(i);
                Input {
                    link: LinkType::Ethernet,
                    data,
                    orig_len: data.len(),
                    ts: T0,
                }
            })
            .collect();
        for (name, rs) in [
            ("compiled", Arc::new(Ruleset::compile(policy(rules, n)))),
            ("reference", Arc::new(Ruleset::reference(policy(rules, n)))),
        ] {
            g.throughput(Throughput::Elements(n as u64));
            g.bench_with_input(BenchmarkId::new(name, rules), &rules, |b, _| {
                b.iter_batched(
                    || Engine::new(rs.clone()),
                    |mut e| {
                        let mut out = Vec::with_capacity(256);
                        for chunk in inputs.chunks(256) {
                            out.clear();
                            e.process_batch(chunk, &mut out);
                        }
                        assert_eq!(e.stats().flows_opened as usize, n);
                    },
                    BatchSize::PerIteration,
                )
            });
        }
    }
    g.finish();
}

criterion_group!(benches, established, new_flows);
criterion_main!(benches);
