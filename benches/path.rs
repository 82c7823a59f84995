//! `sgplane path` at account scale: the account of benches/import.rs
//! (5,000 security groups, 50,000 rules, 20,000 ENIs in three VPCs of eight
//! subnets each), plus one network ACL per VPC, imported once. Benches one
//! path between two ENIs after load (target: under 100 ms) beside
//! `Policy::evaluate` of the same flow (the single-hop answer), and the
//! `--all` matrix between 1,000 instance interfaces (target: under 10 s)
//! beside `Policy::evaluate` of the same 999,000 flows.
//!
//! `cargo bench --bench path`

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sgplane::import::{import, Provider};
use sgplane::path::{self, all, Query};
use sgplane::policy::{Flow, IpProto, Policy};

#[path = "common/account.rs"]
mod account;
use account::*;

/// One ACL per VPC on all its subnets: a deny of tcp/23, then allow all,
/// both ways.
fn network_acls() -> String {
    let mut t = String::from("{\n    \"NetworkAcls\": [\n");
    for v in 0..VPCS {
        let sep = if v > 0 { ",\n" } else { "" };
        let assoc: Vec<String> = (0..SUBNETS_PER_VPC)
            .map(|s| {
                format!(
                    "{{\"SubnetId\": \"{}\", \"NetworkAclId\": \"acl-0{v:016x}\"}}",
                    subnet_id(v, s)
                )
            })
            .collect();
        let mut entries = Vec::new();
        for egress in [false, true] {
            entries.push(format!("{{\"RuleNumber\": 90, \"Protocol\": \"6\", \"RuleAction\": \"deny\", \"Egress\": {egress}, \"CidrBlock\": \"0.0.0.0/0\", \"PortRange\": {{\"From\": 23, \"To\": 23}}}}"));
            entries.push(format!("{{\"RuleNumber\": 100, \"Protocol\": \"-1\", \"RuleAction\": \"allow\", \"Egress\": {egress}, \"CidrBlock\": \"0.0.0.0/0\"}}"));
            entries.push(format!("{{\"RuleNumber\": 32767, \"Protocol\": \"-1\", \"RuleAction\": \"deny\", \"Egress\": {egress}, \"CidrBlock\": \"0.0.0.0/0\"}}"));
        }
        let _ = write!(
            t,
            "{sep}        {{\"NetworkAclId\": \"acl-0{v:016x}\", \"VpcId\": \"{}\", \"IsDefault\": true, \"OwnerId\": \"{OWNER}\", \"Associations\": [{}], \"Entries\": [{}]}}",
            vpc_id(v),
            assoc.join(", "),
            entries.join(", ")
        );
    }
    t.push_str("\n    ]\n}\n");
    t
}
fn write_path_account(dir: &Path) {
    write_account(dir, vec![("describe-network-acls.json", network_acls())]);
}

fn query(from: &str, to: &str, dport: u16) -> Query {
    Query {
        from: from.into(),
        to: to.into(),
        proto: IpProto::TCP,
        dport: Some(dport),
        sport: None,
        icmp: None,
    }
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temp dir");
    write_path_account(dir.path());
    let paths: Vec<PathBuf> = vec![dir.path().to_path_buf()];
    let imported = import(Provider::Aws, &paths, false).expect("the generated account imports");
    let policy = Policy::compile(&imported.model).expect("the imported model compiles");
    assert_eq!(policy.interfaces().len(), ENIS);
    assert!(policy.nacls().is_some(), "the ACLs were imported");

    // ENIs 0 and 3 share VPC 0 (different subnets); port 443 is allowed by
    // some of their groups' rules. A denied pair too: its explanation
    // (nearest misses) is the costly part.
    let ok = query(
        &format!("eni-0{:016x}", 0),
        &format!("eni-0{:016x}", 3),
        443,
    );
    let denied = query(&format!("eni-0{:016x}", 0), &format!("eni-0{:016x}", 3), 23);
    let t_ok = path::analyse(&policy, &ok).unwrap();
    let t_denied = path::analyse(&policy, &denied).unwrap();
    eprintln!(
        "path: {} interfaces; tcp/443 reachable: {} ({} hops), tcp/23 reachable: {} ({})",
        policy.interfaces().len(),
        t_ok.reachable,
        t_ok.hops.len(),
        t_denied.reachable,
        t_denied.explanations.first().map_or("-", |e| e.code)
    );
    let flow = |q: &Query| {
        let a = policy
            .interface(policy.interface_id(&q.from).unwrap())
            .addresses[0]
            .addr();
        let b = policy
            .interface(policy.interface_id(&q.to).unwrap())
            .addresses[0]
            .addr();
        let mut f = Flow::other(a, b, IpProto::TCP);
        f.dport = q.dport;
        f
    };
    let (f_ok, f_denied) = (flow(&ok), flow(&denied));

    let mut g = c.benchmark_group("path/5k-sgs-20k-enis");
    g.bench_function("one-path/tcp443", |b| {
        b.iter(|| path::analyse(&policy, &ok).unwrap())
    });
    g.bench_function("one-path/tcp23-denied", |b| {
        b.iter(|| path::analyse(&policy, &denied).unwrap())
    });
    g.bench_function("reference/evaluate/tcp443", |b| {
        b.iter(|| policy.evaluate(&f_ok))
    });
    g.bench_function("reference/explain/tcp23", |b| {
        b.iter(|| policy.explain(&f_denied))
    });
    g.finish();

    let ifaces: Vec<_> = all::instance_interfaces(&policy)
        .into_iter()
        .take(1000)
        .collect();
    let m = all::all_pairs(&policy, &ok, &ifaces).unwrap();
    let (reachable, codes) = m.summary();
    eprintln!("path --all: 1000 interfaces, tcp/443: {reachable} reachable, {codes:?}");
    let addrs: Vec<_> = ifaces
        .iter()
        .map(|&i| policy.interface(i).addresses[0].addr())
        .collect();
    let mut g = c.benchmark_group("path/all-1000-interfaces");
    g.sample_size(10);
    g.throughput(Throughput::Elements(1000 * 999));
    g.bench_function("matrix/tcp443", |b| {
        b.iter(|| all::all_pairs(&policy, &ok, &ifaces).unwrap())
    });
    g.bench_function("reference/evaluate-every-pair/tcp443", |b| {
        b.iter(|| {
            let mut allowed = 0usize;
            for (i, &a) in addrs.iter().enumerate() {
                for (j, &d) in addrs.iter().enumerate() {
                    if i != j {
                        let mut f = Flow::other(a, d, IpProto::TCP);
                        f.dport = Some(443);
                        allowed += usize::from(
                            policy.evaluate(&f).verdict == sgplane::policy::Verdict::Allow,
                        );
                    }
                }
            }
            allowed
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
