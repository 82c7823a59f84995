//! Classifier benchmarks: lookups per second on ClassBench filter sets (when
//! `../shared/classbench` exists next to the crate) and on synthetic
//! security-group rule sets of 10 to 10k rules, plus build time for the 10k sets.
//!
//! `cargo bench --bench classify` (a couple of minutes on two cores);
//! `cargo bench --bench classify -- synthetic` for a subset.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sgplane::classify::classbench::{parse_rules, parse_trace};
use sgplane::classify::{ClassRule, Classifier, Key, RangeSet};
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

/// The ClassBench sets of the issue, then any other set with a trace beside it.
fn classbench_sets() -> Vec<(String, Vec<ClassRule>, Vec<Key>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/classbench");
    let Ok(listing) = std::fs::read_dir(&dir) else {
        eprintln!(
            "classify bench: no ClassBench sets at {}, skipping them",
            dir.display()
        );
        return Vec::new();
    };
    let mut names: Vec<String> = listing
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix("_trace").map(str::to_owned))
        .collect();
    names.sort_by_key(|n| (!n.ends_with("_1k"), n.clone()));
    names
        .into_iter()
        .filter_map(|name| {
            let rules = std::fs::read_to_string(dir.join(&name)).ok()?;
            let trace = std::fs::read_to_string(dir.join(format!("{name}_trace"))).ok()?;
            match (parse_rules(&rules), parse_trace(&trace)) {
                (Ok(rules), Ok(trace)) => {
                    Some((name, rules, trace.into_iter().map(|(k, _)| k).collect()))
                }
                (Err(e), _) | (_, Err(e)) => {
                    eprintln!("classify bench: skipping {name}: {e}");
                    None
                }
            }
        })
        .collect()
}

/// A small deterministic generator (the bench needs no `rand`).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 32) as u32
    }

    fn below(&mut self, n: u32) -> u32 {
        self.next() % n
    }
}

/// Security-group-like rules: remote side mostly /32 hosts, some /24s, a few wide
/// CIDRs and some SG references (several member addresses in one rule); local
/// side the interfaces' addresses and subnets; mostly TCP/UDP to single ports or
/// small ranges.
fn synthetic_rules(n: usize, seed: u64) -> Vec<ClassRule> {
    let mut rng = Lcg(seed);
    let ports = [
        22u32, 53, 80, 443, 3306, 5432, 6379, 8080, 8443, 9090, 27017,
    ];
    (0..n)
        .map(|_| {
            let host = |rng: &mut Lcg| 0x0a00_0000 | rng.below(1 << 16);
            let remote = match rng.below(100) {
                0..=54 => RangeSet::prefix(host(&mut rng), 32),
                55..=69 => RangeSet::prefix(host(&mut rng), 24),
                70..=79 => [
                    RangeSet::any(),
                    RangeSet::prefix(0x0a00_0000, 8),
                    RangeSet::prefix(0xc0a8_0000, 16),
                ][rng.below(3) as usize]
                    .clone(),
                _ => {
                    let members = 2 + rng.below(30);
                    RangeSet::from_ranges(
                        (0..members)
                            .map(|_| {
                                let h = host(&mut rng);
                                (h, h)
                            })
                            .collect(),
                    )
                }
            };
            let local = match rng.below(10) {
                0..=6 => RangeSet::prefix(0x0a01_0000 | rng.below(1 << 12), 32),
                7..=8 => RangeSet::prefix(0x0a01_0000 | rng.below(1 << 12), 24),
                _ => RangeSet::any(),
            };
            let dport = match rng.below(20) {
                0..=13 => {
                    let p = ports[rng.below(ports.len() as u32) as usize];
                    RangeSet::single(p, p)
                }
                14..=16 => {
                    let p = 1024 + rng.below(60000);
                    RangeSet::single(p, p)
                }
                17..=18 => {
                    let lo = 1024 + rng.below(60000);
                    RangeSet::single(lo, lo + rng.below(200))
                }
                _ => RangeSet::single(0, 65535),
            };
            let sport = if rng.below(20) == 0 {
                RangeSet::single(1024, 65535)
            } else {
                RangeSet::single(0, 65535)
            };
            let proto = match rng.below(20) {
                0..=13 => RangeSet::single(6, 6),
                14..=18 => RangeSet::single(17, 17),
                _ => RangeSet::single(0, 255),
            };
            ClassRule {
                fields: [remote, local, sport, dport, proto],
            }
        })
        .collect()
}

/// Headers drawn mostly inside random rules (like a ClassBench trace), some anywhere.
fn synthetic_keys(rules: &[ClassRule], n: usize, seed: u64) -> Vec<Key> {
    let mut rng = Lcg(seed);
    (0..n)
        .map(|_| {
            if rules.is_empty() || rng.below(5) == 0 {
                return [
                    rng.next(),
                    rng.next(),
                    rng.below(65536),
                    rng.below(65536),
                    [6, 17, 1][rng.below(3) as usize],
                ];
            }
            let rule = &rules[rng.below(rules.len() as u32) as usize];
            std::array::from_fn(|d| {
                let ranges = rule.fields[d].ranges();
                let (lo, hi) = ranges[rng.below(ranges.len() as u32) as usize];
                lo.wrapping_add(rng.next() % (hi - lo).saturating_add(1).max(1))
            })
        })
        .collect()
}

fn bench_lookups(c: &mut Criterion, group_name: &str, sets: &[(String, Vec<ClassRule>, Vec<Key>)]) {
    let mut group = c.benchmark_group(group_name);
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (name, rules, keys) in sets {
        let classifier = Classifier::build(rules);
        let mut out = vec![None; keys.len()];
        group.throughput(Throughput::Elements(keys.len() as u64));
        group.bench_with_input(BenchmarkId::new("batch", name), keys, |b, keys| {
            b.iter(|| {
                classifier.lookup_batch(black_box(keys), &mut out);
                black_box(&out);
            })
        });
        group.bench_with_input(BenchmarkId::new("single", name), keys, |b, keys| {
            b.iter(|| {
                for key in keys {
                    black_box(classifier.lookup(black_box(key)));
                }
            })
        });
    }
    group.finish();
}

fn bench_builds(c: &mut Criterion, sets: &[(String, Vec<ClassRule>, Vec<Key>)]) {
    let mut group = c.benchmark_group("build");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for (name, rules, _) in sets.iter().filter(|(_, rules, _)| rules.len() >= 5000) {
        group.throughput(Throughput::Elements(rules.len() as u64));
        group.bench_with_input(BenchmarkId::new("rules", name), rules, |b, rules| {
            b.iter(|| black_box(Classifier::build(black_box(rules))))
        });
    }
    group.finish();
}

fn classify(c: &mut Criterion) {
    let synthetic: Vec<_> = [10usize, 100, 1000, 10_000]
        .into_iter()
        .map(|n| {
            let rules = synthetic_rules(n, n as u64);
            let keys = synthetic_keys(&rules, 10_000, 7);
            (format!("sg_{n}"), rules, keys)
        })
        .collect();
    let classbench = classbench_sets();
    // The five sets of the issue by default; SGPLANE_BENCH_ALL_SETS=1 runs every set found.
    let classbench: Vec<_> = if std::env::var_os("SGPLANE_BENCH_ALL_SETS").is_some() {
        classbench
    } else {
        let wanted = ["acl1_1k", "fw1_1k", "ipc1_1k", "fw1_10k", "ipc1_10k"];
        classbench
            .into_iter()
            .filter(|(name, _, _)| wanted.contains(&name.as_str()))
            .collect()
    };
    bench_lookups(c, "synthetic", &synthetic);
    bench_lookups(c, "classbench", &classbench);
    let mut big = synthetic
        .into_iter()
        .filter(|(_, r, _)| r.len() >= 5000)
        .collect::<Vec<_>>();
    big.extend(classbench);
    bench_builds(c, &big);
}

criterion_group!(benches, classify);
criterion_main!(benches);
