//! Why the flow table is written by hand: lookups of established flows in
//! sgplane's table (one at a time, and with the slot prefetched a batch
//! ahead, as the engine does) against std's HashMap (hashbrown) with the same
//! hasher, at 1k and 1M flows visited in random order.
//!
//! `cargo bench --bench conntrack`

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sgplane::conntrack::Config;
use sgplane::conntrack::{Class, Conntrack, FlowKey, Outcome};

const T: u64 = 1_700_000_000_000_000_000;

fn key(i: u32) -> FlowKey {
    FlowKey {
        zone: 0,
        src: IpAddr::V4(Ipv4Addr::from(0x0a01_0000 + i % 60_000)),
        dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        sport: 1024 + (i / 60_000) as u16,
        dport: 80,
        proto: 17,
    }
}

fn order(n: u32) -> Vec<u32> {
    let mut v: Vec<u32> = (0..n).collect();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in (1..v.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
    v
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("conntrack/lookup");
    g.sample_size(10);
    for &n in &[1_000u32, 1_000_000] {
        let settings = Config {
            max_entries: n + 16,
            ..Default::default()
        };
        let mut ct = Conntrack::new(&settings);
        for i in 0..n {
            let p = ct.prepare(&key(i));
            assert_eq!(ct.track(&p, Class::Udp, T), Outcome::New);
            ct.open(&p, Class::Udp, T).unwrap();
        }
        let keys: Vec<FlowKey> = order(n).into_iter().map(key).collect();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("sgplane", n), &n, |b, _| {
            b.iter(|| {
                for k in &keys {
                    let p = ct.prepare(k);
                    assert_eq!(ct.track(&p, Class::Udp, T), Outcome::Tracked);
                }
            })
        });
        g.bench_with_input(BenchmarkId::new("sgplane-prefetch", n), &n, |b, _| {
            b.iter(|| {
                for chunk in keys.chunks(32) {
                    let mut ps = [None; 32];
                    for (i, k) in chunk.iter().enumerate() {
                        let p = ct.prepare(k);
                        ct.prefetch(&p);
                        ps[i] = Some(p);
                    }
                    for p in ps.iter().flatten() {
                        assert_eq!(ct.track(p, Class::Udp, T), Outcome::Tracked);
                    }
                }
            })
        });
        // The same work with std's HashMap: a canonical key, a state to update.
        let canon = |k: &FlowKey| -> (u64, IpAddr, IpAddr, u16, u16, u8) {
            if (k.src, k.sport) <= (k.dst, k.dport) {
                (k.zone, k.src, k.dst, k.sport, k.dport, k.proto)
            } else {
                (k.zone, k.dst, k.src, k.dport, k.sport, k.proto)
            }
        };
        let mut map: HashMap<_, (u32, u8), foldhash::fast::RandomState> = HashMap::default();
        for i in 0..n {
            map.insert(canon(&key(i)), (0, 0));
        }
        let bytes = map.capacity()
            * (std::mem::size_of::<((u64, IpAddr, IpAddr, u16, u16, u8), (u32, u8))>() + 1);
        eprintln!(
            "conntrack/lookup/{n}: sgplane {:.1} bytes/flow, std HashMap {:.1} bytes/flow",
            ct.memory_bytes() as f64 / n as f64,
            bytes as f64 / n as f64
        );
        g.bench_with_input(BenchmarkId::new("std-hashmap", n), &n, |b, _| {
            b.iter(|| {
                for k in &keys {
                    let e = map.get_mut(&canon(k)).expect("present");
                    e.0 = e.0.wrapping_add(1);
                }
            })
        });
    }
    g.finish();
}

/// Bytes per tracked flow with a million IPv6 flows (IPv4's are printed by `bench`).
fn ipv6_memory(_: &mut Criterion) {
    let n = 1_000_000u32;
    let mut ct = Conntrack::new(&Config {
        max_entries: n + 16,
        ..Default::default()
    });
    for i in 0..n {
        let k = FlowKey {
            src: IpAddr::V6(std::net::Ipv6Addr::from(
                0x2001_0db8_0000_0000_0000_0000_0000_0000u128 + u128::from(i),
            )),
            dst: IpAddr::V6(std::net::Ipv6Addr::from(
                0x2001_0db8_0000_0000_0000_0000_0000_0002u128 << 16,
            )),
            ..key(i)
        };
        let p = ct.prepare(&k);
        ct.track(&p, Class::Udp, T);
        ct.open(&p, Class::Udp, T).unwrap();
    }
    eprintln!(
        "conntrack/ipv6: {n} flows, {:.1} bytes/flow",
        ct.memory_bytes() as f64 / f64::from(n)
    );
}

criterion_group!(benches, bench, ipv6_memory);
criterion_main!(benches);
