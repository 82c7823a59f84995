//! `sgplane import aws` at account scale: a generated account of 5,000
//! security groups with 50,000 rules (IPv4 and IPv6 CIDRs, prefix lists,
//! group pairs; tcp, udp, ICMP and all-traffic) and 20,000 ENIs of one to
//! five groups across three VPCs, written as AWS CLI JSON into a temp dir.
//! Benches the import (target: under 2 s), `Policy::compile` of its model
//! and the fast path's tables built from that, separately, beside a
//! reference run in the same process: reading and parsing the same files
//! into JSON values, which any importer has to do.
//!
//! `cargo bench --bench import`

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sgplane::import::{import, Provider};
use sgplane::policy::Policy;

#[path = "common/account.rs"]
mod account;
use account::*;

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let size = write_account(dir.path(), Vec::new());
    let paths: Vec<PathBuf> = vec![dir.path().to_path_buf()];
    let first = import(Provider::Aws, &paths, false).expect("the generated account imports");
    let policy = Policy::compile(&first.model).expect("the imported model compiles");
    eprintln!(
        "import/aws: {GROUPS} SGs, {} explicit rules, {} interfaces, {} MiB of JSON, {} skipped",
        policy.explicit_rule_count(),
        policy.interfaces().len(),
        size / (1024 * 1024),
        first.skipped.len()
    );

    let mut g = c.benchmark_group("import/aws");
    g.sample_size(10);
    g.throughput(Throughput::Elements(RULES as u64));
    g.bench_function("5k-sgs-50k-rules-20k-enis", |b| {
        b.iter(|| import(Provider::Aws, &paths, false).unwrap())
    });
    // `-c DIR`: the provider found from the files, then imported and
    // compiled, every file read and parsed once.
    g.bench_function("load-policy/5k-sgs-50k-rules-20k-enis", |b| {
        b.iter(|| sgplane::import::load_policy(dir.path()).unwrap())
    });
    g.bench_function("compile/5k-sgs-50k-rules-20k-enis", |b| {
        b.iter(|| Policy::compile(&first.model).unwrap())
    });
    g.bench_function("fast-path/5k-sgs-50k-rules-20k-enis", |b| {
        b.iter(|| sgplane::classify::sg::SgClassifier::build(&policy))
    });
    // The reference: reading and parsing the same files into JSON values,
    // which any importer has to do; the import's ratio to it is its cost.
    let files = sgplane::import::input_files(&paths).unwrap();
    g.bench_function("reference/parse-json-only", |b| {
        b.iter(|| {
            let values: Vec<serde_json::Value> = files
                .iter()
                .map(|f| sgplane::import::json::load(f).unwrap())
                .collect();
            values.len()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
