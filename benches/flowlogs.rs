//! Flow-log records read and judged per second (issue 17), against only
//! splitting the same text into lines (what `zcat | wc -l` does after
//! decompressing): plain text, one core.

use std::io::Cursor;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sgplane::engine::Ruleset;
use sgplane::io::flowlog::{sniff, Entry, Sniffed};
use sgplane::policy::Policy;
use sgplane::replay::flowlogs::judge;

const POLICY: &str = include_str!("../tests/data/flowlogs/policy.toml");

/// `n` default-format records across the fixture policy's interfaces.
fn records(n: usize) -> Vec<u8> {
    let mut s = String::from("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n");
    for i in 0..n {
        let (eni, dst, dport) = match i % 3 {
            0 => ("eni-web", "10.0.1.10", 443),
            1 => ("eni-web", "10.0.1.10", 22),
            _ => ("eni-db", "10.0.2.20", 5432),
        };
        s.push_str(&format!(
            "2 123456789010 {eni} 10.0.{}.{} {dst} {} {dport} 6 10 840 1700000000 1700000060 ACCEPT OK\n",
            (i / 251) % 4,
            i % 251 + 1,
            1024 + i % 60000
        ));
    }
    s.into_bytes()
}

fn bench(c: &mut Criterion) {
    let rules = Ruleset::compile(Policy::from_toml(POLICY, "policy.toml").unwrap());
    let n = 100_000;
    let text = records(n);
    let mut g = c.benchmark_group("flowlogs");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function(BenchmarkId::new("lines_only", n), |b| {
        b.iter(|| {
            let mut r = std::io::BufReader::new(Cursor::new(&text));
            let mut line = Vec::new();
            let mut count = 0u64;
            while std::io::BufRead::read_until(&mut r, b'\n', &mut line).unwrap() > 0 {
                count += 1;
                line.clear();
            }
            count
        })
    });
    g.bench_function(BenchmarkId::new("parse", n), |b| {
        b.iter(|| {
            let Ok(Sniffed::FlowLog(mut r)) = sniff(Cursor::new(text.clone())) else {
                panic!()
            };
            let mut ok = 0u64;
            while let Some((_, e)) = r.next_entry().unwrap() {
                ok += u64::from(matches!(e, Entry::Record(_)));
            }
            ok
        })
    });
    g.bench_function(BenchmarkId::new("parse_and_judge", n), |b| {
        b.iter(|| {
            let Ok(Sniffed::FlowLog(mut r)) = sniff(Cursor::new(text.clone())) else {
                panic!()
            };
            let mut allowed = 0u64;
            while let Some((_, e)) = r.next_entry().unwrap() {
                if let Entry::Record(rec) = e {
                    allowed += u64::from(
                        judge(&rules, &rec).judgement.verdict == sgplane::policy::Verdict::Allow,
                    );
                }
            }
            allowed
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
