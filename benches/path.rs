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
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sgplane::import::{import, Provider};
use sgplane::path::{self, all, Query};
use sgplane::policy::{Flow, IpProto, Policy};

// The generator of benches/import.rs, unchanged.
const GROUPS: usize = 5_000;
const RULES: usize = 50_000;
const ENIS: usize = 20_000;
const VPCS: usize = 3;
const SUBNETS_PER_VPC: usize = 8;
const OWNER: &str = "111122223333";

fn vpc_id(v: usize) -> String {
    format!("vpc-0{:016x}", 0xa000 + v)
}

fn sg_id(g: usize) -> String {
    format!("sg-0{g:016x}")
}

fn subnet_id(v: usize, s: usize) -> String {
    format!("subnet-0{:016x}", 0xb000 + v * 256 + s)
}

/// One `IpPermissions` entry of rule `r` of group `g`; every entry has one
/// source, so entries = rules. Group pairs name a group of the same VPC;
/// ICMP goes with IPv4 sources, ICMPv6 with IPv6 ones, as AWS requires.
fn permission(out: &mut String, g: usize, r: usize) {
    let source = r % 4;
    let (proto, ports): (&str, Option<(i64, i64)>) = match (r / 4) % 5 {
        0 => (
            "tcp",
            Some((1000 + (r % 5000) as i64, 1000 + (r % 5000) as i64)),
        ),
        1 => (
            "udp",
            Some((2000 + (r % 100) as i64, 2100 + (r % 100) as i64)),
        ),
        2 if source == 1 => ("58", Some((128, -1))),
        2 => ("icmp", Some((8, -1))),
        3 => ("-1", None),
        _ => ("tcp", Some((443, 443))),
    };
    let _ = write!(out, "{{\"IpProtocol\": \"{proto}\"");
    if let Some((from, to)) = ports {
        let _ = write!(out, ", \"FromPort\": {from}, \"ToPort\": {to}");
    }
    let (mut v4, mut v6, mut pl, mut pair) =
        (String::new(), String::new(), String::new(), String::new());
    match source {
        0 => {
            v4 = format!(
                "{{\"CidrIp\": \"10.{}.{}.0/24\", \"Description\": \"r{r}\"}}",
                r % 250,
                g % 250
            )
        }
        1 => v6 = format!("{{\"CidrIpv6\": \"2001:db8:{:x}::/48\"}}", r % 65536),
        2 => pl = format!("{{\"PrefixListId\": \"pl-0{:016x}\"}}", r % 20),
        _ => {
            let h = ((g / VPCS + r * 7) % (GROUPS / VPCS)) * VPCS + g % VPCS;
            pair = format!("{{\"GroupId\": \"{}\", \"UserId\": \"{OWNER}\"}}", sg_id(h))
        }
    }
    let _ = write!(
        out,
        ", \"IpRanges\": [{v4}], \"Ipv6Ranges\": [{v6}], \"PrefixListIds\": [{pl}], \"UserIdGroupPairs\": [{pair}]}}"
    );
}

fn security_groups() -> String {
    let per = RULES / GROUPS;
    let mut t = String::with_capacity(RULES * 220);
    t.push_str("{\n    \"SecurityGroups\": [\n");
    for g in 0..GROUPS {
        if g > 0 {
            t.push_str(",\n");
        }
        let _ = write!(
            t,
            "        {{\"Description\": \"bench group {g}\", \"GroupName\": \"bench-{g}\", \"OwnerId\": \"{OWNER}\", \"GroupId\": \"{}\", \"VpcId\": \"{}\", \"IpPermissions\": [",
            sg_id(g),
            vpc_id(g % VPCS)
        );
        // The last rule of each group is its egress.
        for r in 0..per - 1 {
            if r > 0 {
                t.push_str(", ");
            }
            permission(&mut t, g, g * (per - 1) + r);
        }
        t.push_str("], \"IpPermissionsEgress\": [{\"IpProtocol\": \"-1\", \"IpRanges\": [{\"CidrIp\": \"0.0.0.0/0\"}], \"Ipv6Ranges\": [], \"PrefixListIds\": [], \"UserIdGroupPairs\": []}]}");
    }
    t.push_str("\n    ]\n}\n");
    t
}

fn prefix_lists() -> String {
    let mut t = String::from("{\n    \"PrefixLists\": [\n");
    for p in 0..20 {
        let sep = if p > 0 { ",\n" } else { "" };
        let _ = write!(
            t,
            "{sep}        {{\"Cidrs\": [\"203.0.{p}.0/24\", \"198.51.{p}.0/24\"], \"PrefixListId\": \"pl-0{p:016x}\", \"PrefixListName\": \"bench-{p}\"}}"
        );
    }
    t.push_str("\n    ]\n}\n");
    t
}

/// ENI `i`'s VPC, subnet and address: VPC v is 10.(100+v).0.0/16, each
/// subnet a /20.
fn eni_place(i: usize) -> (usize, usize, Ipv4Addr) {
    let v = i % VPCS;
    let k = i / VPCS;
    let s = k % SUBNETS_PER_VPC;
    let host = k / SUBNETS_PER_VPC + 4;
    let a = u32::from(Ipv4Addr::new(10, 100 + v as u8, 0, 0)) + ((s as u32) << 12) + host as u32;
    (v, s, Ipv4Addr::from(a))
}

fn network_interfaces() -> String {
    let mut t = String::with_capacity(ENIS * 700);
    t.push_str("{\n    \"NetworkInterfaces\": [\n");
    for i in 0..ENIS {
        let (v, s, ip) = eni_place(i);
        // One to five groups of the ENI's VPC.
        let n = 1 + i % 5;
        let groups: Vec<String> = (0..n)
            .map(|k| {
                let g = (((i / VPCS) * 13 + k * 101) % (GROUPS / VPCS)) * VPCS + v;
                format!(
                    "{{\"GroupId\": \"{}\", \"GroupName\": \"bench-{g}\"}}",
                    sg_id(g)
                )
            })
            .collect();
        let sep = if i > 0 { ",\n" } else { "" };
        let _ = write!(
            t,
            "{sep}        {{\"Attachment\": {{\"AttachmentId\": \"eni-attach-0{i:016x}\", \"DeviceIndex\": 0, \"InstanceId\": \"i-0{i:016x}\", \"InstanceOwnerId\": \"{OWNER}\", \"Status\": \"attached\"}}, \"AvailabilityZone\": \"us-east-1a\", \"Description\": \"\", \"Groups\": [{}], \"InterfaceType\": \"interface\", \"Ipv6Addresses\": [], \"NetworkInterfaceId\": \"eni-0{i:016x}\", \"OwnerId\": \"{OWNER}\", \"PrivateIpAddress\": \"{ip}\", \"PrivateIpAddresses\": [{{\"Primary\": true, \"PrivateIpAddress\": \"{ip}\"}}], \"SourceDestCheck\": true, \"Status\": \"in-use\", \"SubnetId\": \"{}\", \"TagSet\": [{{\"Key\": \"Name\", \"Value\": \"bench-{i}\"}}], \"VpcId\": \"{}\"}}",
            groups.join(", "),
            subnet_id(v, s),
            vpc_id(v)
        );
    }
    t.push_str("\n    ]\n}\n");
    t
}

fn vpcs_and_subnets() -> (String, String) {
    let mut vpcs = String::from("{\n    \"Vpcs\": [\n");
    let mut subnets = String::from("{\n    \"Subnets\": [\n");
    for v in 0..VPCS {
        let sep = if v > 0 { ",\n" } else { "" };
        let _ = write!(
            vpcs,
            "{sep}        {{\"CidrBlock\": \"10.{}.0.0/16\", \"OwnerId\": \"{OWNER}\", \"State\": \"available\", \"VpcId\": \"{}\", \"IsDefault\": false}}",
            100 + v,
            vpc_id(v)
        );
        for s in 0..SUBNETS_PER_VPC {
            let sep = if v + s > 0 { ",\n" } else { "" };
            let _ = write!(
                subnets,
                "{sep}        {{\"AvailabilityZone\": \"us-east-1{}\", \"CidrBlock\": \"10.{}.{}.0/20\", \"State\": \"available\", \"SubnetId\": \"{}\", \"VpcId\": \"{}\", \"OwnerId\": \"{OWNER}\"}}",
                ['a', 'b', 'c'][s % 3],
                100 + v,
                s * 16,
                subnet_id(v, s),
                vpc_id(v)
            );
        }
    }
    vpcs.push_str("\n    ]\n}\n");
    subnets.push_str("\n    ]\n}\n");
    (vpcs, subnets)
}

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

fn write_account(dir: &Path) {
    let (vpcs, subnets) = vpcs_and_subnets();
    let files = [
        ("describe-vpcs.json", vpcs),
        ("describe-subnets.json", subnets),
        ("describe-prefix-lists.json", prefix_lists()),
        ("describe-security-groups.json", security_groups()),
        ("describe-network-interfaces.json", network_interfaces()),
        ("describe-network-acls.json", network_acls()),
    ];
    for (name, body) in files {
        std::fs::write(dir.join(name), body).expect("writing the generated account");
    }
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
    write_account(dir.path());
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
