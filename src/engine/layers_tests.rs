//! Azure's two NSG layers (SPEC §9.2) through the engine: both judge a new
//! flow, in the order the packet meets them, and one connection entry lets
//! the flow's replies through both.

use std::net::IpAddr;

use super::*;
use crate::conntrack::tcp::{ACK, SYN};
use crate::wire::build;

const LAYERED: &str = r#"
[vpcs.vnet-1]
cidrs = ["10.0.0.0/16"]

[subnets.web]
vpc = "vnet-1"
cidr = "10.0.1.0/24"
security_groups = ["sg-subnet"]

[security_groups.sg-subnet]
ingress = [
  { priority = 100, proto = "tcp", ports = "443", from = "0.0.0.0/0" },
  { priority = 300, proto = "tcp", ports = "22", from = "0.0.0.0/0", action = "deny" },
]
egress = [ { priority = 100, proto = "tcp", ports = "443", to = "0.0.0.0/0" } ]

[security_groups.sg-nic]
ingress = [ { priority = 100, proto = "tcp", ports = "80-443", from = "0.0.0.0/0" } ]
egress = [
  { priority = 100, proto = "tcp", ports = "25", to = "0.0.0.0/0", action = "deny" },
  { priority = 200, proto = "all", to = "0.0.0.0/0" },
]

[interfaces.web-nic]
subnet = "web"
addresses = ["10.0.1.4"]
security_groups = ["sg-nic"]
"#;

const NIC: &str = "10.0.1.4";
const OUT: &str = "203.0.113.9";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn send(e: &mut Engine, src: &str, dst: &str, ports: (u16, u16), flags: u8, t: Nanos) -> Judgement {
    let f = build::tcp(ip(src), ip(dst), ports.0, ports.1, flags, 1, 1, b"");
    e.process(LinkType::Ethernet, &f, f.len(), t)
}

fn rule(e: &Engine, j: &Judgement) -> Option<String> {
    j.rule.map(|r| e.policy().rule_name(r).to_string())
}

fn engine() -> Engine {
    Engine::with_policy(Policy::from_toml(LAYERED, "layered.toml").unwrap())
}

#[test]
fn inbound_denied_by_the_subnet_though_the_nic_allows() {
    let mut e = engine();
    let j = send(&mut e, OUT, NIC, (40000, 80), SYN, 1);
    assert_eq!((j.verdict, j.reason), (Verdict::Deny, Reason::NoRule));
    // Entering, the subnet decides first: its deny rule for 22, not the
    // NIC's no-rule.
    let j = send(&mut e, OUT, NIC, (40000, 22), SYN, 2);
    assert_eq!((j.verdict, j.reason), (Verdict::Deny, Reason::Rule));
    assert_eq!(rule(&e, &j).as_deref(), Some("sg-subnet/ingress/1"));
    assert!(e.conntrack().entries().is_empty());
}

#[test]
fn outbound_denied_by_the_subnet_though_the_nic_allows() {
    let mut e = engine();
    let j = send(&mut e, NIC, OUT, (40000, 8080), SYN, 1);
    assert_eq!((j.verdict, j.reason), (Verdict::Deny, Reason::NoRule));
    // Leaving, the NIC decides first: its deny rule for 25.
    let j = send(&mut e, NIC, OUT, (40000, 25), SYN, 2);
    assert_eq!(rule(&e, &j).as_deref(), Some("sg-nic/egress/0"));
    assert_eq!(j.decision, Some((0, Direction::Egress)));
}

#[test]
fn one_entry_passes_both_layers() {
    let mut e = engine();
    let j = send(&mut e, OUT, NIC, (40000, 443), SYN, 1);
    assert_eq!((j.verdict, j.reason), (Verdict::Allow, Reason::Rule));
    assert_eq!(rule(&e, &j).as_deref(), Some("sg-nic/ingress/0"));
    assert_eq!(e.conntrack().entries().len(), 1);
    // The reply leaves by neither layer's rules (the subnet lets out only
    // 443): it is established.
    let j = send(&mut e, NIC, OUT, (443, 40000), SYN | ACK, 2);
    assert_eq!((j.verdict, j.reason), (Verdict::Allow, Reason::Established));
    let j = send(&mut e, OUT, NIC, (40000, 443), ACK, 3);
    assert_eq!((j.verdict, j.reason), (Verdict::Allow, Reason::Established));
    assert_eq!(e.conntrack().entries().len(), 1);
}

#[test]
fn a_batch_judges_as_one_by_one() {
    let frames: Vec<Vec<u8>> = [
        (OUT, NIC, 80),
        (OUT, NIC, 443),
        (NIC, OUT, 8080),
        (NIC, OUT, 443),
        (OUT, NIC, 22),
    ]
    .iter()
    .map(|&(s, d, p)| build::tcp(ip(s), ip(d), 40000, p, SYN, 1, 1, b""))
    .collect();
    let inputs: Vec<Input> = frames
        .iter()
        .map(|f| Input {
            link: LinkType::Ethernet,
            data: f,
            orig_len: f.len(),
            ts: 1,
        })
        .collect();
    let mut batch = engine();
    let mut got = Vec::new();
    batch.process_batch(&inputs, &mut got);
    let mut one = engine();
    for (f, g) in frames.iter().zip(&got) {
        let j = one.process(LinkType::Ethernet, f, f.len(), 1);
        assert_eq!((g.verdict, g.reason, g.rule), (j.verdict, j.reason, j.rule));
    }
}
