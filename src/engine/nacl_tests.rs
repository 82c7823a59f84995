//! The network-ACL stage (SPEC §9.1) on synthetic packets: the reply
//! dropped on its ephemeral port, rule numbers, one subnet, IPv6, tracked
//! traffic, fragments; and the stage against the reference evaluator.

use std::net::IpAddr;

use proptest::prelude::*;

use super::*;
use crate::conntrack::tcp::{ACK, SYN};
use crate::policy::nacl::testing::{acl, entry, model};
use crate::policy::Model;
use crate::wire::build;

const SGS: &str = r#"
[security_groups.sg-open]
ingress = [ { proto = "all", from = ["0.0.0.0/0", "::/0"] } ]
egress = [ { proto = "all", to = ["0.0.0.0/0", "::/0"] } ]

[interfaces.web]
addresses = ["10.0.1.10", "2001:db8:0:1::10"]
security_groups = ["sg-open"]

[interfaces.web2]
addresses = ["10.0.1.11"]
security_groups = ["sg-open"]

[interfaces.app]
addresses = ["10.0.2.20", "2001:db8:0:2::20"]
security_groups = ["sg-open"]

[interfaces.app2]
addresses = ["10.0.2.200"]
security_groups = ["sg-open"]
"#;

const WEB: &str = "10.0.1.10";
const WEB2: &str = "10.0.1.11";
const APP: &str = "10.0.2.20";
const APP2: &str = "10.0.2.200";
const WEB6: &str = "2001:db8:0:1::10";
const APP6: &str = "2001:db8:0:2::20";
const T0: Nanos = 1_700_000_000_000_000_000;

/// subnet-web's ACL admits tcp/443 (not from 10.0.2.99, rule 90 before the
/// allow at 100), udp/53 from the VPC, udp from 10.0.3.0/24, and IPv6
/// tcp/443 from subnet-app; it lets out tcp/443 and the replies to
/// 10.0.2.128/25 only. subnet-app's ACL admits and lets out everything.
pub(crate) fn nacl_model() -> Model {
    model(
        SGS,
        &[
            (
                "subnet-web",
                &["10.0.1.0/24", "2001:db8:0:1::/64"],
                Some("acl-web"),
            ),
            (
                "subnet-app",
                &["10.0.2.0/24", "2001:db8:0:2::/64"],
                Some("acl-app"),
            ),
        ],
        vec![
            acl(
                "acl-web",
                vec![
                    entry(100, "tcp", Some("443"), "0.0.0.0/0", true),
                    entry(90, "tcp", Some("443"), "10.0.2.99/32", false),
                    entry(120, "tcp", Some("443"), "2001:db8:0:2::/64", true),
                    entry(130, "udp", Some("53"), "10.0.0.0/16", true),
                    entry(140, "udp", None, "10.0.3.0/24", true),
                ],
                vec![
                    entry(100, "tcp", Some("443"), "0.0.0.0/0", true),
                    entry(200, "tcp", Some("1024-65535"), "10.0.2.128/25", true),
                ],
            ),
            acl(
                "acl-app",
                vec![
                    entry(100, "all", None, "0.0.0.0/0", true),
                    entry(101, "all", None, "::/0", true),
                ],
                vec![
                    entry(100, "all", None, "0.0.0.0/0", true),
                    entry(101, "all", None, "::/0", true),
                ],
            ),
        ],
        &[
            ("web", "subnet-web"),
            ("web2", "subnet-web"),
            ("app", "subnet-app"),
            ("app2", "subnet-app"),
        ],
    )
}

fn engine() -> Engine {
    Engine::with_policy(Policy::compile(&nacl_model()).unwrap())
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn tcp(src: &str, dst: &str, sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    build::tcp(ip(src), ip(dst), sport, dport, flags, 1, 1, b"")
}

fn judge(e: &mut Engine, frame: &[u8]) -> Judgement {
    e.process(LinkType::Ethernet, frame, frame.len(), T0)
}

/// (verdict, reason, the ACL rule named, the subnet named).
fn run(e: &mut Engine, frame: &[u8]) -> (Verdict, Reason, Option<String>, Option<String>) {
    let j = judge(e, frame);
    let p = e.policy();
    let n = j.nacl.map(|d| {
        (
            p.nacls().unwrap().rule_name(&d).to_string(),
            p.subnet_name(d.subnet).to_string(),
        )
    });
    (j.verdict, j.reason, n.clone().map(|n| n.0), n.map(|n| n.1))
}

fn nacl_deny(rule: &str, subnet: &str) -> (Verdict, Reason, Option<String>, Option<String>) {
    (
        Verdict::Deny,
        Reason::Nacl,
        Some(rule.into()),
        Some(subnet.into()),
    )
}

const RULE: (Verdict, Reason, Option<String>, Option<String>) =
    (Verdict::Allow, Reason::Rule, None, None);
const EST: (Verdict, Reason, Option<String>, Option<String>) =
    (Verdict::Allow, Reason::Established, None, None);

#[test]
fn the_request_passes_and_the_reply_to_the_ephemeral_port_is_dropped() {
    let mut e = engine();
    assert_eq!(run(&mut e, &tcp(APP, WEB, 40000, 443, SYN)), RULE);
    // The flow is tracked, but the stateless ACL judges its reply anyway:
    // acl-web lets out tcp/443 and replies to 10.0.2.128/25 only.
    assert_eq!(e.conntrack().len(), 1);
    assert_eq!(
        run(&mut e, &tcp(WEB, APP, 443, 40000, SYN | ACK)),
        nacl_deny("acl-web/egress/*", "subnet-web")
    );
    // The client, seeing no reply, sends its SYN again: tracked, it passes.
    assert_eq!(run(&mut e, &tcp(APP, WEB, 40000, 443, SYN)), EST);
    // app2 is in the block the egress rule 200 lets replies out to.
    assert_eq!(run(&mut e, &tcp(APP2, WEB, 40001, 443, SYN)), RULE);
    assert_eq!(run(&mut e, &tcp(WEB, APP2, 443, 40001, SYN | ACK)), EST);
    let hits = &e.stats().nacl_hits;
    let n = e.policy().nacls().unwrap();
    let count = |name: &str| {
        (0..n.hit_count())
            .find(|&i| n.hit_name(i).to_string() == name)
            .map(|i| hits[i])
            .unwrap()
    };
    assert_eq!(count("acl-web/egress/*"), 1);
    assert_eq!(count("acl-web/egress/200"), 1);
    // Every packet from app crossed acl-app's egress (three SYNs) and
    // acl-web's ingress; the allowed reply crossed acl-app's ingress once.
    assert_eq!(count("acl-app/egress/100"), 3);
    assert_eq!(count("acl-web/ingress/100"), 3);
    assert_eq!(count("acl-app/ingress/100"), 1);
    assert_eq!(e.stats().reason(Reason::Nacl), 1);
}

#[test]
fn a_lower_numbered_deny_beats_an_allow() {
    let mut e = engine();
    assert_eq!(
        run(&mut e, &tcp("10.0.2.99", WEB, 40000, 443, SYN)),
        nacl_deny("acl-web/ingress/90", "subnet-web")
    );
    assert!(
        e.conntrack().is_empty(),
        "a packet the ACL drops opens nothing"
    );
    assert_eq!(run(&mut e, &tcp("10.0.2.98", WEB, 40000, 443, SYN)), RULE);
}

#[test]
fn traffic_inside_one_subnet_is_not_judged() {
    let mut e = engine();
    // No entry of acl-web admits tcp/22, but web2 and web share a subnet.
    assert_eq!(run(&mut e, &tcp(WEB2, WEB, 40000, 22, SYN)), RULE);
    assert_eq!(run(&mut e, &tcp(WEB, WEB2, 22, 40000, SYN | ACK)), EST);
    assert!(e.stats().nacl_hits.iter().all(|&n| n == 0));
    // From another subnet the same packet is dropped.
    assert_eq!(
        run(&mut e, &tcp(APP, WEB, 40000, 22, SYN)),
        nacl_deny("acl-web/ingress/*", "subnet-web")
    );
}

#[test]
fn ipv6_entries_judge_ipv6_packets_only() {
    let mut e = engine();
    assert_eq!(run(&mut e, &tcp(APP6, WEB6, 40000, 443, SYN)), RULE);
    // An IPv6 address outside subnet-app: rule 100 (0.0.0.0/0) is IPv4 only.
    assert_eq!(
        run(&mut e, &tcp("2001:db8:0:3::5", WEB6, 40000, 443, SYN)),
        nacl_deny("acl-web/ingress/*", "subnet-web")
    );
    // The reply: acl-web has no IPv6 egress entry.
    assert_eq!(
        run(&mut e, &tcp(WEB6, APP6, 443, 40000, SYN | ACK)),
        nacl_deny("acl-web/egress/*", "subnet-web")
    );
}

#[test]
fn an_address_of_no_interface_is_in_the_subnet_holding_it() {
    let mut e = engine();
    // 10.0.1.99 belongs to no interface but lies in subnet-web: leaving it
    // for app crosses acl-web's egress (tcp/80 is not let out).
    assert_eq!(
        run(&mut e, &tcp("10.0.1.99", APP, 40000, 80, SYN)),
        nacl_deny("acl-web/egress/*", "subnet-web")
    );
    // An address in no subnet (the internet) crosses no ACL of its own:
    // only acl-web's ingress judges it.
    assert_eq!(run(&mut e, &tcp("192.0.2.7", WEB, 40000, 443, SYN)), RULE);
}

#[test]
fn later_fragments_match_only_entries_covering_every_port() {
    let mut e = engine();
    let dns = build::udp(ip(APP), ip(WEB), 5353, 53, &[7u8; 100]);
    let frags = build::fragment_v4(&dns, 32, 7);
    assert_eq!(run(&mut e, &frags[0]), RULE);
    assert_eq!(run(&mut e, &frags[1]).1, Reason::Fragment);
    // A later fragment with no first: its port is unknown, so udp/53 (130)
    // cannot admit it and the implicit deny does.
    let orphan = build::fragment_v4(&build::udp(ip(APP), ip(WEB), 5353, 53, &[7u8; 100]), 32, 8);
    assert_eq!(
        run(&mut e, &orphan[2]),
        nacl_deny("acl-web/ingress/*", "subnet-web")
    );
    // From 10.0.3.0/24 the udp entry without ports (140) admits it.
    let orphan = build::fragment_v4(
        &build::udp(ip("10.0.3.1"), ip(WEB), 5353, 9, &[7u8; 100]),
        32,
        9,
    );
    assert_eq!(run(&mut e, &orphan[2]), RULE);
    // A first fragment the ACL drops: the rest take its verdict.
    let denied = build::fragment_v4(&build::udp(ip(APP), ip(WEB), 5353, 54, &[7u8; 100]), 32, 10);
    assert_eq!(
        run(&mut e, &denied[0]),
        nacl_deny("acl-web/ingress/*", "subnet-web")
    );
    assert_eq!(
        run(&mut e, &denied[1]).0..=run(&mut e, &denied[2]).0,
        Verdict::Deny..=Verdict::Deny
    );
}

#[test]
fn a_policy_without_acls_has_no_stage() {
    let mut m = nacl_model();
    for s in &mut m.subnets {
        s.network_acl = None;
    }
    let p = Policy::compile(&m).unwrap();
    assert!(p.nacls().is_none());
    let mut e = Engine::with_policy(p);
    assert!(e.stats().nacl_hits.is_empty());
    assert_eq!(run(&mut e, &tcp(APP, WEB, 40000, 22, SYN)), RULE);
}

/// A random entry over a few blocks, protocols and ports.
fn arb_entry() -> impl Strategy<Value = crate::policy::model::AclRule> {
    (
        1i64..40,
        prop::sample::select(vec!["all", "tcp", "udp", "icmp", "47"]),
        prop::option::of((0u16..6, 0u16..3)),
        prop::sample::select(vec![
            "0.0.0.0/0",
            "10.0.0.0/16",
            "10.0.1.0/24",
            "10.0.2.0/25",
            "10.0.2.128/25",
            "192.0.2.0/24",
            "::/0",
        ]),
        any::<bool>(),
        prop::option::of(0u8..4),
    )
        .prop_map(|(n, proto, ports, remote, allow, icmp)| {
            let ports = ports
                .filter(|_| proto == "tcp" || proto == "udp")
                .map(|(a, w)| format!("{}-{}", 1000 + a * 10, 1000 + a * 10 + w * 10));
            let mut e = entry(n, proto, ports.as_deref(), remote, allow);
            if proto == "icmp" {
                e.icmp_type = icmp.map(|t| crate::policy::model::At::bare(i64::from(t)));
            }
            e
        })
}

fn arb_entries() -> impl Strategy<Value = Vec<crate::policy::model::AclRule>> {
    prop::collection::vec(arb_entry(), 0..8).prop_map(|mut v| {
        // Rule numbers are unique per direction.
        let mut seen = std::collections::HashSet::new();
        v.retain(|e| seen.insert(e.rule.value));
        v
    })
}

/// A packet between the subnets, an address of no interface and the internet.
fn arb_packet() -> impl Strategy<Value = Vec<u8>> {
    let addr = prop::sample::select(vec![
        WEB,
        WEB2,
        APP,
        APP2,
        "10.0.1.77",
        "10.0.2.150",
        "192.0.2.9",
    ]);
    (
        addr.clone(),
        addr,
        0u8..4,
        995u16..1065,
        995u16..1065,
        0u8..5,
        any::<bool>(),
    )
        .prop_map(|(s, d, kind, sport, dport, typ, frag)| {
            let frame = match kind {
                0 => tcp(s, d, sport, dport, if frag { SYN } else { ACK }),
                1 => build::udp(ip(s), ip(d), sport, dport, &[1u8; 64]),
                2 => build::icmp(ip(s), ip(d), typ, 0, [0; 4], b""),
                _ => build::ip_other(ip(s), ip(d), 47, &[0u8; 8]),
            };
            if frag && kind == 1 {
                build::fragment_v4(&frame, 32, 1).pop().unwrap()
            } else {
                frame
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// The engine's stage (packed entries, subnet blocks by bisection)
    /// denies exactly the packets the reference evaluator's ACLs deny,
    /// naming the same entry.
    #[test]
    fn the_stage_agrees_with_the_reference(
        web_in in arb_entries(), web_out in arb_entries(),
        app_in in arb_entries(), app_out in arb_entries(),
        packets in prop::collection::vec(arb_packet(), 1..12),
    ) {
        let m = model(
            SGS,
            &[
                ("subnet-web", &["10.0.1.0/24"], Some("acl-web")),
                ("subnet-app", &["10.0.2.0/24"], Some("acl-app")),
            ],
            vec![acl("acl-web", web_in, web_out), acl("acl-app", app_in, app_out)],
            &[("web", "subnet-web"), ("web2", "subnet-web"), ("app", "subnet-app")],
        );
        let policy = Policy::compile(&m).unwrap();
        let mut e = Engine::with_policy(policy.clone());
        for frame in &packets {
            let j = judge(&mut e, frame);
            let p = j.packet.unwrap();
            let flow = flow_of(&p, None);
            let reference = policy.evaluate_nacls(&flow);
            prop_assert_eq!(policy.nacls().unwrap().judge(&policy, &flow), reference);
            match (reference.denied(), j.reason) {
                (Some(d), Reason::Nacl) => prop_assert_eq!(j.nacl, Some(*d)),
                // A later fragment that follows a remembered first one.
                (_, Reason::Fragment) => {}
                (None, r) => prop_assert_ne!(r, Reason::Nacl),
                (Some(d), r) => prop_assert!(false, "reference denies by {:?}, engine says {}", d, r),
            }
        }
    }
}
