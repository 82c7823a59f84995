//! Loading and compiling policies: parse + validate + compile of a large
//! generated policy (10k interfaces, 10k rules), and the reference evaluator.
//!
//! `cargo bench --bench policy`

use std::net::IpAddr;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sgplane::policy::{Flow, IpProto, Policy};

/// `sgs` SGs of `rules_per_sg` rules (ports, CIDRs, SG references, a deny at
/// priority 1 now and then) and `interfaces` interfaces with one to three SGs.
pub fn large_policy(interfaces: usize, sgs: usize, rules_per_sg: usize) -> String {
    let mut t = String::with_capacity(interfaces * 120 + sgs * rules_per_sg * 90);
    t.push_str("[prefix_lists]\npl-office = [\"203.0.113.0/24\", \"2001:db8:100::/48\"]\n");
    for g in 0..sgs {
        t.push_str(&format!("[security_groups.sg-{g:05}]\ningress = [\n"));
        for r in 0..rules_per_sg {
            let line = match r % 5 {
                0 => format!("  {{ proto = \"tcp\", ports = \"{}\", from = \"10.{}.0.0/16\" }},\n", 1000 + r, r % 250),
                1 => format!("  {{ proto = \"udp\", ports = \"{}-{}\", from = \"sg-{:05}\" }},\n", 2000 + r, 2010 + r, (g + r) % sgs),
                2 => "  { proto = \"icmp\", icmp_type = 8, from = \"pl-office\" },\n".to_string(),
                3 => format!("  {{ proto = \"tcp\", ports = \"{}\", from = \"0.0.0.0/0\", action = \"deny\", priority = 1 }},\n", 3000 + r),
                _ => format!("  {{ proto = \"all\", from = \"172.{}.{}.0/24\" }},\n", 16 + r % 16, g % 250),
            };
            t.push_str(&line);
        }
        t.push_str("]\negress = [ { proto = \"all\", to = \"0.0.0.0/0\" } ]\n");
    }
    for i in 0..interfaces {
        let a = 0x0a00_0000u32 + 0x0001_0000 + i as u32;
        let addr = std::net::Ipv4Addr::from(a);
        let n = 1 + i % 3;
        let groups: Vec<String> = (0..n)
            .map(|k| format!("\"sg-{:05}\"", (i * 7 + k * 13) % sgs))
            .collect();
        t.push_str(&format!(
            "[interfaces.eni-{i:05}]\naddresses = [\"{addr}\"]\nsecurity_groups = [{}]\n",
            groups.join(", ")
        ));
    }
    t
}

fn load(c: &mut Criterion) {
    let mut g = c.benchmark_group("policy/load");
    g.sample_size(10);
    for &(ifaces, sgs, per) in &[(100usize, 10usize, 10usize), (10_000, 1_000, 10)] {
        let text = large_policy(ifaces, sgs, per);
        let p = Policy::from_toml(&text, "bench").expect("the generated policy is valid");
        eprintln!(
            "policy/load: {} interfaces, {} explicit rules, {} KiB of TOML, {} SG sets",
            p.interfaces().len(),
            p.explicit_rule_count(),
            text.len() / 1024,
            p.policy_sets().len()
        );
        g.throughput(Throughput::Elements(p.explicit_rule_count() as u64));
        g.bench_with_input(
            BenchmarkId::new("interfaces-rules", format!("{ifaces}x{}", sgs * per)),
            &text,
            |b, t| b.iter(|| Policy::from_toml(t, "bench").unwrap()),
        );
    }
    g.finish();
}

fn reference(c: &mut Criterion) {
    let text = large_policy(10_000, 1_000, 10);
    let p = Policy::from_toml(&text, "bench").unwrap();
    let src: IpAddr = "10.1.0.5".parse().unwrap();
    let dst: IpAddr = "10.1.3.7".parse().unwrap();
    let flow = Flow::ports(src, dst, IpProto::TCP, 40000, 1005);
    c.bench_function("policy/reference-evaluate/10k", |b| {
        b.iter(|| p.evaluate(&flow))
    });
}

criterion_group!(benches, load, reference);
criterion_main!(benches);
