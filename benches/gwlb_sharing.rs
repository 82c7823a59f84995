//! How `sgplane gwlb`'s workers should share connection tracking, measured
//! without sockets: two threads judge GENEVE packets of established flows,
//! both directions, as the kernel spreads them (by outer addresses, so half
//! of a flow's packets reach the worker that does not own it).
//!
//! - `handoff`: each worker keeps its own engine; a packet that reached the
//!   wrong worker is copied into a batch for its owner (a crossbeam channel
//!   per worker), which judges it. The owner is `steer::owner`, as in the
//!   appliance.
//! - `shared_map`: one conntrack for all workers in a sharded concurrent map
//!   (dashmap): parse, look the flow up, update it under the shard's lock.
//!   No rules, no counters: a lower bound for a shared engine.
//! - `steered`: each packet already is at its owner (what the kernel's BPF
//!   steering does): the engine alone, the upper bound.
//!
//! `cargo bench --bench gwlb_sharing`; figures in the README.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use crossbeam::channel;
use dashmap::DashMap;
use sgplane::engine::{Engine, Input, Judgement};
use sgplane::live::gwlb::steer;
use sgplane::policy::{Policy, Verdict};
use sgplane::wire::{build, parse, Frame, LinkType, ParseOptions, L4};

const WORKERS: usize = 2;
const BATCH: usize = 64;
const GWLB: ParseOptions = ParseOptions {
    decap_geneve: true,
    decap_vxlan: true,
    gwlb_strict: true,
};
const T0: u64 = 1_700_000_000_000_000_000;

fn policy(flows: usize) -> Policy {
    let t = format!(
        "[conntrack]\nmax_entries = {}\n[security_groups.sg-server]\ningress = [ {{ proto = \"tcp\", ports = \"443\", from = \"10.0.0.0/8\" }} ]\n\
         [interfaces.server]\naddresses = [\"10.0.0.2\"]\nsecurity_groups = [\"sg-server\"]\n",
        flows * 2 + 16
    );
    Policy::from_toml(&t, "bench").unwrap()
}

fn gwlb_frame(inner: &[u8]) -> Vec<u8> {
    let o = build::aws_options(0xe1, 7, 9);
    build::geneve_wrap(
        IpAddr::from([192, 0, 2, 1]),
        IpAddr::from([192, 0, 2, 2]),
        4242,
        inner,
        &o,
    )
}

/// Frames in one buffer.
#[derive(Default, Clone)]
struct Frames {
    data: Vec<u8>,
    spans: Vec<(u32, u32)>,
}

impl Frames {
    fn push(&mut self, f: &[u8]) {
        self.spans.push((self.data.len() as u32, f.len() as u32));
        self.data.extend_from_slice(f);
    }
    fn get(&self, i: usize) -> &[u8] {
        let (o, l) = self.spans[i];
        &self.data[o as usize..(o + l) as usize]
    }
    fn len(&self) -> usize {
        self.spans.len()
    }
    fn clear(&mut self) {
        self.data.clear();
        self.spans.clear();
    }
}

struct Workload {
    /// What each worker's socket receives (the kernel's spreading).
    received: Vec<Frames>,
    /// What each worker owns (the steered case).
    owned: Vec<Frames>,
    handshakes: Vec<Frames>,
}

/// The worker that owns a frame's flow, as the appliance computes it (on the
/// UDP payload: after Ethernet, IPv4 and UDP headers).
fn owner(f: &[u8]) -> usize {
    steer::owner(&f[14 + 20 + 8..], WORKERS)
}

/// `flows` established TCP flows; `packets` data packets in random order of
/// flow and direction; each direction is received by a random worker.
fn workload(flows: usize, packets: usize) -> Workload {
    let server = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut dirs = Vec::new();
    let mut w = Workload {
        received: vec![Frames::default(); WORKERS],
        owned: vec![Frames::default(); WORKERS],
        handshakes: vec![Frames::default(); WORKERS],
    };
    for i in 0..flows {
        let client = IpAddr::V4(Ipv4Addr::from(0x0a01_0000 + i as u32));
        let port = 1024 + (i % 60_000) as u16;
        let syn = gwlb_frame(&build::tcp(client, server, port, 443, 0x02, 1, 0, b""));
        let h = &mut w.handshakes[owner(&syn)];
        h.push(&syn);
        h.push(&gwlb_frame(&build::tcp(
            server, client, 443, port, 0x12, 1, 2, b"",
        )));
        h.push(&gwlb_frame(&build::tcp(
            client, server, port, 443, 0x10, 2, 2, b"",
        )));
        for (s, d, sp, dp) in [(client, server, port, 443), (server, client, 443, port)] {
            let f = gwlb_frame(&build::tcp(s, d, sp, dp, 0x18, 2, 2, &[0x5a; 64]));
            dirs.push((f, rnd() as usize % WORKERS));
        }
    }
    for _ in 0..packets {
        let (f, at) = &dirs[rnd() as usize % dirs.len()];
        w.received[*at].push(f);
        w.owned[owner(f)].push(f);
    }
    w
}

fn engine(flows: usize, handshakes: &Frames) -> Engine {
    let mut e = Engine::with_policy(policy(flows));
    e.set_parse_options(GWLB);
    let mut out = Vec::new();
    judge(&mut e, handshakes, &mut out);
    assert!(out.iter().all(|j| j.verdict == Verdict::Allow));
    e
}

fn judge(e: &mut Engine, frames: &Frames, out: &mut Vec<Judgement>) -> usize {
    let mut allowed = 0;
    let mut i = 0;
    while i < frames.len() {
        let end = (i + BATCH).min(frames.len());
        let empty = Input {
            link: LinkType::Ethernet,
            data: &[],
            orig_len: 0,
            ts: T0,
        };
        let mut inputs = [empty; BATCH];
        for (slot, k) in inputs.iter_mut().zip(i..end) {
            let f = frames.get(k);
            *slot = Input {
                link: LinkType::Ethernet,
                data: f,
                orig_len: f.len(),
                ts: T0 + 1,
            };
        }
        out.clear();
        e.process_batch(&inputs[..end - i], out);
        allowed += out.iter().filter(|j| j.verdict == Verdict::Allow).count();
        i = end;
    }
    allowed
}

/// Runs `work(worker)` on every worker at once, `rounds` times; the wall time.
fn parallel<S: Send>(states: Vec<S>, rounds: u64, work: impl Fn(usize, &mut S) + Sync) -> Duration {
    let start = Barrier::new(WORKERS + 1);
    let work = &work;
    std::thread::scope(|s| {
        let hs: Vec<_> = states
            .into_iter()
            .enumerate()
            .map(|(id, mut st)| {
                let start = &start;
                s.spawn(move || {
                    start.wait();
                    for _ in 0..rounds {
                        work(id, &mut st);
                    }
                    Instant::now()
                })
            })
            .collect();
        start.wait();
        let t0 = Instant::now();
        let end = hs.into_iter().map(|h| h.join().unwrap()).max().unwrap();
        end - t0
    })
}

/// A flow's key in canonical order, as a shared conntrack would keep it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    zone: u64,
    a: (IpAddr, u16),
    b: (IpAddr, u16),
    proto: u8,
}

#[derive(Default)]
struct Entry {
    last: u64,
    packets: [u32; 2],
}

fn key_of(f: &[u8]) -> Option<(Key, bool)> {
    let Ok(Frame::Ip(p)) = parse(LinkType::Ethernet, f, f.len(), GWLB) else {
        return None;
    };
    let L4::Tcp { sport, dport, .. } = p.l4 else {
        return None;
    };
    let zone = p.tunnel.and_then(|t| t.zone).unwrap_or(0);
    let (s, d) = ((p.src, sport), (p.dst, dport));
    Some(if s <= d {
        (
            Key {
                zone,
                a: s,
                b: d,
                proto: 6,
            },
            true,
        )
    } else {
        (
            Key {
                zone,
                a: d,
                b: s,
                proto: 6,
            },
            false,
        )
    })
}

fn sharing(c: &mut Criterion) {
    let mut g = c.benchmark_group("gwlb/sharing");
    g.sample_size(10).measurement_time(Duration::from_secs(4));
    for &flows in &[1_000usize, 100_000] {
        let w = Arc::new(workload(flows, 1 << 16));
        let total: usize = w.received.iter().map(Frames::len).sum();
        g.throughput(Throughput::Elements(total as u64));

        g.bench_with_input(BenchmarkId::new("steered", flows), &flows, |b, &flows| {
            b.iter_custom(|rounds| {
                let states: Vec<_> = (0..WORKERS)
                    .map(|i| (engine(flows, &w.handshakes[i]), Vec::new()))
                    .collect();
                parallel(states, rounds, |id, (e, out)| {
                    assert_eq!(judge(e, &w.owned[id], out), w.owned[id].len());
                })
            })
        });

        g.bench_with_input(BenchmarkId::new("handoff", flows), &flows, |b, &flows| {
            b.iter_custom(|rounds| {
                let chans: Vec<_> = (0..WORKERS)
                    .map(|_| channel::bounded::<Frames>(1024))
                    .collect();
                let spare = channel::bounded::<Frames>(4096);
                let states: Vec<_> = (0..WORKERS)
                    .map(|i| {
                        (
                            engine(flows, &w.handshakes[i]),
                            Vec::new(),
                            Frames::default(),
                            chans.clone(),
                            spare.clone(),
                            0,
                        )
                    })
                    .collect();
                parallel(states, rounds, |id, (e, out, own, chans, spare, carry)| {
                    let input = &w.received[id];
                    // The other worker may be a round ahead: what it handed
                    // over early counts for the next round.
                    let mut judged = *carry;
                    let mut i = 0;
                    let expect = w.owned[id].len();
                    // Receive in batches, hand over the others' packets,
                    // judge ours and what was handed to us, until all of
                    // ours were judged.
                    while judged < expect || i < input.len() {
                        let end = (i + BATCH).min(input.len());
                        let mut out_batch: Option<Frames> = None;
                        for k in i..end {
                            let f = input.get(k);
                            if owner(f) == id {
                                own.push(f);
                            } else {
                                out_batch
                                    .get_or_insert_with(|| spare.1.try_recv().unwrap_or_default())
                                    .push(f);
                            }
                        }
                        i = end;
                        if let Some(b) = out_batch {
                            chans[1 - id].0.send(b).unwrap();
                        }
                        judged += judge(e, own, out);
                        own.clear();
                        while let Ok(mut b) = chans[id].1.try_recv() {
                            judged += judge(e, &b, out);
                            b.clear();
                            let _ = spare.0.try_send(b);
                        }
                    }
                    *carry = judged - expect;
                })
            })
        });

        g.bench_with_input(BenchmarkId::new("shared_map", flows), &flows, |b, _| {
            b.iter_custom(|rounds| {
                let map: Arc<DashMap<Key, Entry, foldhash::fast::RandomState>> =
                    Arc::new(DashMap::default());
                for h in &w.handshakes {
                    for i in 0..h.len() {
                        if let Some((k, _)) = key_of(h.get(i)) {
                            map.entry(k).or_default().last = T0;
                        }
                    }
                }
                let states: Vec<_> = (0..WORKERS).map(|_| Arc::clone(&map)).collect();
                parallel(states, rounds, |id, map| {
                    let input = &w.received[id];
                    let mut found = 0;
                    for i in 0..input.len() {
                        if let Some((k, fwd)) = key_of(input.get(i)) {
                            if let Some(mut e) = map.get_mut(&k) {
                                e.last = T0 + 1;
                                e.packets[usize::from(!fwd)] += 1;
                                found += 1;
                            }
                        }
                    }
                    assert_eq!(found, input.len());
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, sharing);
criterion_main!(benches);
