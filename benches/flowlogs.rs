//! Flow-log records judged per second (issue 17), one core, each against a
//! reference measured in the same run:
//!
//! - `text_judged`: a text flow log through the replay path
//!   (`replay_flow_log`: read, parse, judge, count, compare), against
//!   `text_lines`, only splitting the same text into lines (what `wc -l`
//!   does after `zcat`);
//! - `parquet_judged`: the same records as AWS delivers them in Parquet
//!   (Gzip), through the same replay path, against `parquet_read`, decoding
//!   the same columns with the parquet/arrow crates alone.
//!
//! `cargo bench --bench flowlogs`; the figures in the README come from it.

use std::io::{BufRead, Cursor};

use ::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use ::parquet::arrow::ProjectionMask;
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sgplane::engine::Ruleset;
use sgplane::io::flowlog::{parquet, sniff, Sniffed};
use sgplane::policy::Policy;
use sgplane::replay::{replay_flow_log, Outputs};

const POLICY: &str = include_str!("../tests/data/flowlogs/policy.toml");

/// `n` default-format records across the fixture policy's interfaces, from
/// `hosts` client addresses, each record from its own ephemeral port; a
/// tenth are REJECT.
fn records(n: usize, hosts: usize) -> Vec<u8> {
    let mut s = String::from("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n");
    for i in 0..n {
        let (eni, dst, dport) = match i % 3 {
            0 => ("eni-web", "10.0.1.10", 443),
            1 => ("eni-web", "10.0.1.10", 22),
            _ => ("eni-db", "10.0.2.20", 5432),
        };
        let action = if i % 10 == 7 { "REJECT" } else { "ACCEPT" };
        let h = (i * 7919) % hosts;
        s.push_str(&format!(
            "2 123456789010 {eni} 10.{}.{}.{} {dst} {} {dport} 6 {} {} {} {} {action} OK\n",
            h >> 16,
            (h >> 8) & 255,
            h & 255,
            1024 + i % 60000,
            1 + i % 50,
            60 + i % 9000,
            1_700_000_000 + i / 1000,
            1_700_000_060 + i / 1000,
        ));
    }
    s.into_bytes()
}

fn bench(c: &mut Criterion) {
    let rules = Ruleset::compile(Policy::from_toml(POLICY, "policy.toml").unwrap());
    let n = 200_000;
    let out = Outputs::default();
    let mut g = c.benchmark_group("flowlogs");
    g.throughput(Throughput::Elements(n as u64));
    g.sample_size(20);
    // 1000 clients: flows between the same hosts recur, as in a VPC's log;
    // n clients: every record a pair of hosts never seen before.
    for (hosts, label) in [(1000, "1k_clients"), (n, "all_distinct")] {
        let text = records(n, hosts);
        let mut pq = Vec::new();
        parquet::write_from_text(&text[..], &mut pq).unwrap();
        let pq = Bytes::from(pq);
        g.bench_function(BenchmarkId::new("text_lines", label), |b| {
            b.iter(|| {
                let mut r = std::io::BufReader::with_capacity(1 << 16, Cursor::new(&text));
                let mut line = Vec::new();
                let mut count = 0u64;
                while r.read_until(b'\n', &mut line).unwrap() > 0 {
                    count += 1;
                    line.clear();
                }
                count
            })
        });
        g.bench_function(BenchmarkId::new("text_judged", label), |b| {
            b.iter(|| {
                let Ok(Sniffed::FlowLog(r)) = sniff(Cursor::new(text.clone())) else {
                    panic!("not a flow log")
                };
                let report = replay_flow_log(&rules, r, "bench", &out, None).unwrap();
                assert_eq!(report.judged, n as u64);
                report.agreeing
            })
        });
        g.bench_function(BenchmarkId::new("parquet_read", label), |b| {
            b.iter(|| {
                let builder = ParquetRecordBatchReaderBuilder::try_new(pq.clone()).unwrap();
                // The columns a record is judged by, as the flow-log reader takes.
                let wanted = [
                    "interface_id",
                    "srcaddr",
                    "dstaddr",
                    "srcport",
                    "dstport",
                    "protocol",
                    "start",
                    "action",
                    "log_status",
                ];
                let idx: Vec<usize> = builder
                    .schema()
                    .fields()
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| wanted.contains(&f.name().as_str()))
                    .map(|(i, _)| i)
                    .collect();
                let mask = ProjectionMask::roots(builder.parquet_schema(), idx);
                let reader = builder
                    .with_projection(mask)
                    .with_batch_size(8192)
                    .build()
                    .unwrap();
                let mut rows = 0usize;
                for batch in reader {
                    rows += batch.unwrap().num_rows();
                }
                assert_eq!(rows, n);
                rows
            })
        });
        g.bench_function(BenchmarkId::new("parquet_judged", label), |b| {
            b.iter(|| {
                let r = parquet::open_bytes(pq.clone()).unwrap().unwrap();
                let report = replay_flow_log(&rules, r, "bench", &out, None).unwrap();
                assert_eq!(report.judged, n as u64);
                report.agreeing
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
