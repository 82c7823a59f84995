//! Unit tests of SPEC §2 steps 3-4 as the reference evaluator implements them,
//! and of the loader's errors.

use std::net::IpAddr;

use super::*;

mod built_in_code;
mod layers;
mod nacl;
mod tracking;
mod vpc;

fn policy(text: &str) -> Policy {
    Policy::from_toml(text, "test.toml").unwrap_or_else(|e| panic!("policy should load:\n{e}"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn tcp(src: &str, dst: &str, dport: u16) -> Flow {
    Flow::ports(ip(src), ip(dst), IpProto::TCP, 40000, dport)
}

fn verdict(p: &Policy, f: &Flow) -> (Verdict, Reason, Option<String>) {
    let e = p.evaluate(f);
    (
        e.verdict,
        e.reason,
        e.rule().map(|r| p.rule_name(r).to_string()),
    )
}

fn allowed_by(p: &Policy, f: &Flow, rule: &str) {
    assert_eq!(
        verdict(p, f),
        (Verdict::Allow, Reason::Rule, Some(rule.to_string())),
        "{f}"
    );
}

fn denied(p: &Policy, f: &Flow, reason: Reason, rule: Option<&str>) {
    assert_eq!(
        verdict(p, f),
        (Verdict::Deny, reason, rule.map(str::to_string)),
        "{f}"
    );
}

const TWO_HOSTS: &str = r#"
[security_groups.sg-out]
egress = [ { proto = "all", to = ["0.0.0.0/0", "::/0"] } ]
[interfaces.eni-client]
addresses = ["10.0.0.1", "2001:db8::1"]
security_groups = ["sg-out"]
"#;

fn with_server(sg_body: &str) -> Policy {
    policy(&format!(
        "{TWO_HOSTS}\n[security_groups.sg-srv]\n{sg_body}\n[interfaces.eni-srv]\naddresses = [\"10.0.0.2\", \"2001:db8::2\"]\nsecurity_groups = [\"sg-srv\"]\n"
    ))
}

#[test]
fn smallest_priority_decides() {
    let p = with_server(
        r#"ingress = [
  { proto = "tcp", ports = "80", from = "0.0.0.0/0", priority = 5 },
  { proto = "tcp", ports = "1-1024", from = "10.0.0.0/8", action = "deny", priority = 2 },
  { proto = "tcp", ports = "80", from = "10.0.0.1", priority = 1 },
]"#,
    );
    allowed_by(&p, &tcp("10.0.0.1", "10.0.0.2", 80), "sg-srv/ingress/2");
    // From the client's other address... there is none in 10/8 but .1; use an unknown one.
    denied(
        &p,
        &tcp("10.9.9.9", "10.0.0.2", 80),
        Reason::Rule,
        Some("sg-srv/ingress/1"),
    );
    allowed_by(&p, &tcp("192.0.2.1", "10.0.0.2", 80), "sg-srv/ingress/0");
}

#[test]
fn deny_beats_allow_at_equal_priority() {
    let p = with_server(
        r#"ingress = [
  { proto = "tcp", ports = "22", from = "0.0.0.0/0", priority = 7 },
  { proto = "tcp", ports = "22", from = "10.0.0.0/8", action = "drop", priority = 7 },
  { proto = "tcp", ports = "22", from = "10.0.0.0/8", action = "deny", priority = 8 },
]"#,
    );
    denied(
        &p,
        &tcp("10.0.0.1", "10.0.0.2", 22),
        Reason::Rule,
        Some("sg-srv/ingress/1"),
    );
    allowed_by(&p, &tcp("192.0.2.1", "10.0.0.2", 22), "sg-srv/ingress/0");
}

#[test]
fn no_match_is_no_rule() {
    let p = with_server(r#"ingress = [ { proto = "tcp", ports = "443", from = "0.0.0.0/0" } ]"#);
    let e = p.evaluate(&tcp("10.0.0.1", "10.0.0.2", 80));
    assert_eq!(
        (e.verdict, e.reason, e.rule()),
        (Verdict::Deny, Reason::NoRule, None)
    );
    let d = e.deciding().unwrap();
    assert_eq!(
        (p.interface(d.interface).name.as_str(), d.direction),
        ("eni-srv", Direction::Ingress)
    );
    assert_eq!(e.egress.unwrap().verdict, Verdict::Allow);
}

#[test]
fn egress_is_checked_first_and_both_must_allow() {
    let p = policy(
        r#"
[security_groups.sg-a]
ingress = [ { proto = "all", from = "0.0.0.0/0" } ]
egress = [ { proto = "tcp", ports = "443", to = "0.0.0.0/0" } ]
[security_groups.sg-b]
ingress = [ { proto = "tcp", ports = "80", from = "0.0.0.0/0" } ]
egress = [ { proto = "all", to = "0.0.0.0/0" } ]
[interfaces.a]
addresses = ["10.0.0.1"]
security_groups = ["sg-a"]
[interfaces.b]
addresses = ["10.0.0.2"]
security_groups = ["sg-b"]
"#,
    );
    // Both deny: the line names the egress decision.
    let e = p.evaluate(&tcp("10.0.0.1", "10.0.0.2", 22));
    assert_eq!(e.deciding().unwrap().direction, Direction::Egress);
    assert_eq!(e.ingress.unwrap().verdict, Verdict::Deny);
    // Egress allows, ingress denies.
    denied(&p, &tcp("10.0.0.1", "10.0.0.2", 443), Reason::NoRule, None);
    assert_eq!(
        p.evaluate(&tcp("10.0.0.1", "10.0.0.2", 443))
            .deciding()
            .unwrap()
            .direction,
        Direction::Ingress
    );
    // Egress denies, ingress allows.
    denied(&p, &tcp("10.0.0.1", "10.0.0.2", 80), Reason::NoRule, None);
    // Both allow: the ingress rule is named.
    allowed_by(&p, &tcp("10.0.0.2", "10.0.0.1", 5000), "sg-a/ingress/0");
}

#[test]
fn several_sgs_are_a_union() {
    let p = policy(
        r#"
[security_groups.sg-web]
ingress = [ { proto = "tcp", ports = "443", from = "0.0.0.0/0" } ]
[security_groups.sg-ssh]
ingress = [ { proto = "tcp", ports = "22", from = "198.51.100.0/24" } ]
[interfaces.web]
addresses = ["10.0.0.2"]
security_groups = ["sg-web", "sg-ssh"]
"#,
    );
    allowed_by(&p, &tcp("192.0.2.1", "10.0.0.2", 443), "sg-web/ingress/0");
    allowed_by(&p, &tcp("198.51.100.7", "10.0.0.2", 22), "sg-ssh/ingress/0");
    denied(&p, &tcp("192.0.2.1", "10.0.0.2", 22), Reason::NoRule, None);
}

#[test]
fn sg_references_match_members_including_self() {
    let p = policy(
        r#"
[security_groups.sg-alb]
egress = [ { proto = "all", to = "0.0.0.0/0" } ]
[security_groups.sg-app]
ingress = [
  { proto = "tcp", ports = "8080", from = "sg-alb" },
  { proto = "all", from = "sg-app" },
]
egress = [ { proto = "all", to = "0.0.0.0/0" } ]
[interfaces.alb-1]
addresses = ["10.0.0.10", "10.0.0.11"]
security_groups = ["sg-alb"]
[interfaces.app-1]
addresses = ["10.0.1.1"]
security_groups = ["sg-app"]
[interfaces.app-2]
addresses = ["10.0.1.2"]
security_groups = ["sg-app"]
"#,
    );
    allowed_by(&p, &tcp("10.0.0.11", "10.0.1.1", 8080), "sg-app/ingress/0");
    denied(
        &p,
        &tcp("10.0.0.11", "10.0.1.1", 9090),
        Reason::NoRule,
        None,
    );
    allowed_by(&p, &tcp("10.0.1.2", "10.0.1.1", 9090), "sg-app/ingress/1");
    // Not a member: an address outside every interface.
    denied(
        &p,
        &tcp("10.0.0.12", "10.0.1.1", 8080),
        Reason::NoRule,
        None,
    );
}

#[test]
fn prefix_lists_expand() {
    let p = policy(&format!(
        "[prefix_lists]\npl-office = [\"203.0.113.0/24\", \"2001:db8:100::/48\"]\n{TWO_HOSTS}\n\
         [security_groups.sg-srv]\ningress = [ {{ proto = \"tcp\", ports = \"22\", from = \"pl-office\" }} ]\n\
         [interfaces.eni-srv]\naddresses = [\"10.0.0.2\", \"2001:db8::2\"]\nsecurity_groups = [\"sg-srv\"]\n"
    ));
    allowed_by(&p, &tcp("203.0.113.77", "10.0.0.2", 22), "sg-srv/ingress/0");
    allowed_by(
        &p,
        &tcp("2001:db8:100:5::1", "2001:db8::2", 22),
        "sg-srv/ingress/0",
    );
    denied(
        &p,
        &tcp("203.0.114.1", "10.0.0.2", 22),
        Reason::NoRule,
        None,
    );
}

#[test]
fn ipv6_rules_do_not_match_ipv4() {
    let p = with_server(r#"ingress = [ { proto = "all", from = "::/0" } ]"#);
    allowed_by(
        &p,
        &tcp("2001:db8::1", "2001:db8::2", 5),
        "sg-srv/ingress/0",
    );
    denied(&p, &tcp("10.0.0.1", "10.0.0.2", 5), Reason::NoRule, None);
}

#[test]
fn icmp_type_and_code() {
    let p = with_server(
        r#"ingress = [
  { proto = "icmp", icmp_type = 8, from = "0.0.0.0/0" },
  { proto = "icmp", icmp_type = 3, icmp_code = 4, from = "0.0.0.0/0" },
  { proto = "icmpv6", icmp_type = -1, from = "::/0" },
]"#,
    );
    let icmp = |t, c| Flow::icmp(ip("10.0.0.1"), ip("10.0.0.2"), IpProto::ICMP, t, c);
    allowed_by(&p, &icmp(8, 0), "sg-srv/ingress/0");
    allowed_by(&p, &icmp(8, 9), "sg-srv/ingress/0");
    allowed_by(&p, &icmp(3, 4), "sg-srv/ingress/1");
    denied(&p, &icmp(3, 3), Reason::NoRule, None);
    denied(&p, &icmp(13, 0), Reason::NoRule, None);
    let v6 = Flow::icmp(
        ip("2001:db8::1"),
        ip("2001:db8::2"),
        IpProto::ICMPV6,
        128,
        0,
    );
    allowed_by(&p, &v6, "sg-srv/ingress/2");
    // A later fragment: the type is unknown, only the any-type rule could match.
    let frag = Flow::other(ip("10.0.0.1"), ip("10.0.0.2"), IpProto::ICMP);
    denied(&p, &frag, Reason::NoRule, None);
}

#[test]
fn five_tuple_fields() {
    let p = with_server(
        r#"ingress = [
  { proto = "udp", ports = "53", source_ports = "1024-65535", from = "0.0.0.0/0", local = "10.0.0.2/32" },
  { proto = "tcp", ports = ["80", "8000-8010"], from = "0.0.0.0/0" },
]"#,
    );
    let udp =
        |sport, dport| Flow::ports(ip("10.0.0.1"), ip("10.0.0.2"), IpProto::UDP, sport, dport);
    allowed_by(&p, &udp(5353, 53), "sg-srv/ingress/0");
    denied(&p, &udp(53, 53), Reason::NoRule, None);
    allowed_by(&p, &tcp("10.0.0.1", "10.0.0.2", 8005), "sg-srv/ingress/1");
    denied(&p, &tcp("10.0.0.1", "10.0.0.2", 8011), Reason::NoRule, None);
    // Unknown ports (a later fragment) match only rules covering every port.
    let frag = Flow::other(ip("10.0.0.1"), ip("10.0.0.2"), IpProto::TCP);
    denied(&p, &frag, Reason::NoRule, None);
}

#[test]
fn local_restricts_the_local_address() {
    let p = policy(
        r#"
[security_groups.sg-multi]
ingress = [ { proto = "tcp", ports = "443", from = "0.0.0.0/0", local = "10.0.0.0/24" } ]
[interfaces.multi]
addresses = ["10.0.0.2", "10.0.5.2"]
security_groups = ["sg-multi"]
"#,
    );
    allowed_by(&p, &tcp("192.0.2.1", "10.0.0.2", 443), "sg-multi/ingress/0");
    denied(&p, &tcp("192.0.2.1", "10.0.5.2", 443), Reason::NoRule, None);
}

#[test]
fn intra_group_beats_every_rule_both_ways() {
    let p = policy(
        r#"
[security_groups.sg-k8s]
intra_group = "accept"
ingress = [ { proto = "all", from = "0.0.0.0/0", action = "deny", priority = 1 } ]
egress = [ { proto = "all", to = "0.0.0.0/0", action = "deny", priority = 1 } ]
[interfaces.node-1]
addresses = ["10.1.0.1"]
security_groups = ["sg-k8s"]
[interfaces.node-2]
addresses = ["10.1.0.2"]
security_groups = ["sg-k8s"]
[interfaces.other]
addresses = ["10.1.0.3"]
security_groups = []
"#,
    );
    allowed_by(&p, &tcp("10.1.0.1", "10.1.0.2", 6443), "sg-k8s/intra_group");
    let e = p.evaluate(&tcp("10.1.0.1", "10.1.0.2", 6443));
    assert_eq!(
        p.rule_name(e.egress.unwrap().rule.unwrap()).to_string(),
        "sg-k8s/intra_group"
    );
    denied(&p, &tcp("10.1.0.3", "10.1.0.2", 6443), Reason::NoRule, None);
    denied(
        &p,
        &tcp("10.1.0.1", "10.1.0.3", 6443),
        Reason::Rule,
        Some("sg-k8s/egress/0"),
    );
}

#[test]
fn intra_group_drop_adds_no_rule() {
    let p = policy(
        r#"
[security_groups.sg-iso]
intra_group = "drop"
[interfaces.a]
addresses = ["10.1.0.1"]
security_groups = ["sg-iso"]
[interfaces.b]
addresses = ["10.1.0.2"]
security_groups = ["sg-iso"]
"#,
    );
    denied(&p, &tcp("10.1.0.1", "10.1.0.2", 1), Reason::NoRule, None);
}

#[test]
fn unknown_address_setting() {
    let deny = with_server(r#"ingress = []"#);
    denied(
        &deny,
        &tcp("192.0.2.1", "192.0.2.2", 80),
        Reason::UnknownAddress,
        None,
    );
    let allow = policy(&format!(
        "[settings]\nunknown_address = \"allow\"\n{TWO_HOSTS}"
    ));
    assert_eq!(
        verdict(&allow, &tcp("192.0.2.1", "192.0.2.2", 80)),
        (Verdict::Allow, Reason::UnknownAddress, None)
    );
    // One known end is enough to judge by rules.
    assert_eq!(
        verdict(&allow, &tcp("192.0.2.1", "10.0.0.1", 80)).1,
        Reason::NoRule
    );
}

const ZONED: &str = r#"
[security_groups.sg-app]
ingress = [ { proto = "tcp", ports = "80", from = "sg-client" } ]
[security_groups.sg-client]
egress = [ { proto = "all", to = "0.0.0.0/0" } ]
[security_groups.sg-open]
ingress = [ { proto = "all", from = "0.0.0.0/0" } ]
[interfaces.app-a]
addresses = ["10.0.0.2"]
security_groups = ["sg-app"]
zone = "vpce-0000000000000000a"
[interfaces.client-a]
addresses = ["10.0.0.1"]
security_groups = ["sg-client"]
zone = "vpce-0000000000000000a"
[interfaces.app-b]
addresses = ["10.0.0.2"]
security_groups = ["sg-open"]
zone = "vpce-0000000000000000b"
[interfaces.shared]
addresses = ["10.0.0.2", "10.0.9.9"]
security_groups = []
"#;

#[test]
fn zones_keep_overlapping_addresses_apart() {
    let p = policy(ZONED);
    let f = |src: &str, port, zone| tcp(src, "10.0.0.2", port).in_zone(zone);
    // Zone a: the zoned app wins over the zoneless `shared` with the same address.
    allowed_by(&p, &f("10.0.0.1", 80, Some(0xa)), "sg-app/ingress/0");
    denied(&p, &f("10.0.0.1", 81, Some(0xa)), Reason::NoRule, None);
    // Zone b: a different interface with the same address.
    allowed_by(&p, &f("10.0.0.1", 81, Some(0xb)), "sg-open/ingress/0");
    // A zone the policy never names, and no zone: only the zoneless interface.
    let e = p.evaluate(&f("10.0.0.1", 80, Some(0xc)));
    assert_eq!(p.interface(e.ingress.unwrap().interface).name, "shared");
    assert_eq!(
        p.interface(
            p.evaluate(&f("10.0.0.1", 80, None))
                .ingress
                .unwrap()
                .interface
        )
        .name,
        "shared"
    );
    // sg-client members in zone a do not exist in zone b.
    assert!(p.sg_contains(p.sg_id("sg-client").unwrap(), ip("10.0.0.1"), Some(0xa)));
    assert!(!p.sg_contains(p.sg_id("sg-client").unwrap(), ip("10.0.0.1"), Some(0xb)));
}

#[test]
fn decision_order_is_priority_then_deny_then_file_order() {
    let p = policy(
        r#"
[security_groups.sg-1]
ingress = [
  { proto = "tcp", from = "0.0.0.0/0", priority = 3 },
  { proto = "tcp", from = "0.0.0.0/0", priority = 2, action = "deny" },
]
[security_groups.sg-2]
ingress = [ { proto = "tcp", from = "0.0.0.0/0", priority = 2 } ]
[interfaces.x]
addresses = ["10.0.0.1"]
security_groups = ["sg-2", "sg-1"]
"#,
    );
    let order: Vec<String> = p
        .interface_rules(0, Direction::Ingress)
        .iter()
        .map(|&r| p.rule_name(r).to_string())
        .collect();
    assert_eq!(
        order,
        ["sg-1/ingress/1", "sg-2/ingress/0", "sg-1/ingress/0"]
    );
}

#[test]
fn defaults_follow_the_spec() {
    let p = policy("");
    assert_eq!(
        p.settings,
        Settings {
            unknown_address: Verdict::Deny,
            allow_arp: true,
            allow_neighbor_discovery: true
        }
    );
    assert_eq!(p.conntrack.max_entries, 1_000_000);
    assert_eq!(p.conntrack.tcp_established, 432_000);
    assert_eq!(
        (
            p.conntrack.tcp_transitory,
            p.conntrack.udp,
            p.conntrack.udp_stream
        ),
        (120, 30, 180)
    );
    assert_eq!((p.conntrack.icmp, p.conntrack.other), (30, 600));
}

#[test]
fn cidr_interface_addresses_are_looked_up() {
    let p = policy(
        r#"
[interfaces.prefix]
addresses = ["10.0.8.0/28", "2001:db8:8::/64"]
[interfaces.host]
addresses = ["10.0.8.16"]
"#,
    );
    assert_eq!(p.interface_of(ip("10.0.8.15"), None), Some(0));
    assert_eq!(p.interface_of(ip("10.0.8.16"), None), Some(1));
    assert_eq!(p.interface_of(ip("10.0.8.17"), None), None);
    assert_eq!(p.interface_of(ip("2001:db8:8::ffff"), None), Some(0));
}

/// The flat intervals outside zones answer as the hash of hosts and the
/// tree of blocks do, at and around every boundary of either family.
#[test]
fn flat_address_intervals_equal_the_indexed_lookup() {
    let few = r#"
[interfaces.prefix]
addresses = ["10.0.8.0/28", "2001:db8:8::/64", "255.255.255.0/24"]
[interfaces.host]
addresses = ["10.0.8.16", "0.0.0.0", "2001:db8:8:1::1"]
[interfaces.other]
addresses = ["10.0.8.17", "192.168.0.0/16", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"]
"#
    .to_string();
    // Past 64 IPv4 or 16 IPv6 interval starts the lookup is a binary
    // search, not a count.
    let mut many = few.clone();
    for i in 0..40 {
        many += &format!(
            "[interfaces.n{i}]\naddresses = [\"172.16.{i}.0/25\", \"2001:db9:{i:x}::/48\"]\n"
        );
    }
    let p = policy(&few);
    assert!(p.index.flat4.counted() && p.index.flat6.counted());
    flat_equals_indexed(&p);
    let p = policy(&many);
    assert!(!p.index.flat4.counted() && !p.index.flat6.counted());
    flat_equals_indexed(&p);
}

fn flat_equals_indexed(p: &Policy) {
    let mut probes: Vec<IpAddr> = Vec::new();
    for v in [0u32, 1, u32::MAX, u32::MAX - 1] {
        probes.push(IpAddr::V4(v.into()));
    }
    for v in [0u128, 1, u128::MAX, u128::MAX - 1] {
        probes.push(IpAddr::V6(v.into()));
    }
    for &s in &p.index.flat4.starts {
        for d in [-1i64, 0, 1] {
            let v = (i64::from(s) + d).clamp(0, i64::from(u32::MAX)) as u32;
            probes.push(IpAddr::V4(v.into()));
        }
    }
    for &s in &p.index.flat6.starts {
        for v in [s.saturating_sub(1), s, s.saturating_add(1)] {
            probes.push(IpAddr::V6(v.into()));
        }
    }
    let mut found = 0;
    for a in probes {
        let want = p.index.find_indexed(None, a);
        assert_eq!(p.index.find(None, a), want, "{a}");
        found += usize::from(want.is_some());
    }
    assert!(found > 10, "the probes hit interfaces: {found}");
}

fn error_of(text: &str) -> Diagnostic {
    match Policy::from_toml(text, "bad.toml") {
        Ok(_) => panic!("policy should be rejected:\n{text}"),
        Err(e) => e.diagnostics()[0].clone(),
    }
}

#[test]
fn errors_name_line_column_value_and_what_is_allowed() {
    let d = error_of("[security_groups.sg-a]\ningress = [ { proto = \"tcp\", ports = \"80-70\", from = \"0.0.0.0/0\" } ]\n");
    assert_eq!((d.line, d.column), (2, 38));
    assert!(
        d.message.contains("80-70") && d.message.contains("ends before"),
        "{}",
        d.message
    );

    let d = error_of("[security_groups.sg-a]\ningress = [ { proto = \"all\", ports = \"80\", from = \"0.0.0.0/0\" } ]\n");
    assert!(d.message.contains("no ports"), "{}", d.message);
    assert_eq!(d.line, 2);

    let d =
        error_of("[security_groups.sg-a]\ningress = [ { proto = \"tcp\", from = \"sg-nope\" } ]\n");
    assert!(
        d.message.contains("unknown security group `sg-nope`") && d.message.contains("sg-a"),
        "{}",
        d.message
    );

    let d = error_of("[interfaces.a]\naddresses = [\"10.0.0.0/24\"]\n[interfaces.b]\naddresses = [\"10.0.0.7\"]\n");
    assert!(
        d.message.contains("overlaps") && d.message.contains("`a`"),
        "{}",
        d.message
    );
    assert_eq!(d.line, 4);

    let d = error_of("[settings]\nunknown_adress = \"deny\"\n");
    assert!(d.message.contains("unknown field"), "{}", d.message);
    assert_eq!(d.line, 2);
}

#[test]
fn all_errors_are_reported_together() {
    let e = Policy::from_toml(
        "[security_groups.sg-a]\ningress = [\n { proto = \"tcp\", from = \"sg-x\" },\n { proto = \"tcp\", from = \"pl-y\" },\n]\n",
        "bad.toml",
    )
    .unwrap_err();
    assert_eq!(e.diagnostics().len(), 2);
    assert!(e.to_string().contains("2 errors"));
}

#[test]
fn ports_minus_one_is_accepted_on_portless_protocols() {
    let p = with_server(r#"ingress = [ { proto = "icmp", ports = "-1/-1", from = "0.0.0.0/0" } ]"#);
    assert!(p.rule(p.security_groups[1].ingress[0]).ports.is_all());
}

#[test]
fn a_policy_without_interfaces_is_warned_of_with_what_it_judges() {
    for (text, verdict) in [
        ("", "denied"),
        (
            "[settings]\nunknown_address = \"allow\"\n[security_groups.sg-a]\n",
            "allowed",
        ),
    ] {
        let w = policy(text).warnings();
        let found: Vec<_> = w.iter().filter(|w| w.kind == "no-interfaces").collect();
        assert_eq!(found.len(), 1, "{text:?}: {w:#?}");
        assert!(
            found[0]
                .message
                .contains(&format!("{verdict} unknown-address")),
            "{found:#?}"
        );
    }
    let one = policy("[interfaces.a]\naddresses = [\"10.0.0.1\"]\n");
    assert!(one.warnings().iter().all(|w| w.kind != "no-interfaces"));
}

#[test]
fn warnings_cover_the_spec_list() {
    let p = policy(
        r#"
[security_groups.sg-a]
ingress = [
  { proto = "tcp", ports = "0", from = "0.0.0.0/0" },
  { proto = "tcp", ports = "443", from = "0.0.0.0/0" },
  { proto = "tcp", ports = "443", from = "10.0.0.0/8" },
  { proto = "tcp", ports = "8000-9000", from = "10.0.0.0/8", action = "deny" },
  { proto = "tcp", ports = "8080", from = "192.168.0.0/16" },
  { proto = "tcp", ports = "8443", from = "10.0.0.0/8" },
  { proto = "tcp", ports = "9443", from = "sg-orphan" },
]
[security_groups.sg-orphan]
[interfaces.a]
addresses = ["10.0.0.1"]
security_groups = ["sg-a"]
[interfaces.bare]
addresses = ["10.0.0.2"]
"#,
    );
    let w = p.warnings();
    let kinds: Vec<(&str, u32)> = w.iter().map(|w| (w.kind, w.line)).collect();
    assert!(kinds.contains(&("port-zero", 4)), "{w:#?}");
    assert!(kinds.contains(&("shadowed", 6)), "{w:#?}");
    assert!(kinds.contains(&("shadowed", 9)), "{w:#?}");
    assert!(kinds.contains(&("unattached-sg", 10)), "{w:#?}");
    assert!(kinds.contains(&("no-sg", 0)), "{w:#?}");
    assert!(w.iter().any(|w| w.kind == "shadowed"
        && w.message.contains("sg-a/ingress/5")
        && w.message.contains("sg-a/ingress/3")));
    // 8080 from 192.168/16 overlaps the deny's ports but not its sources.
    assert!(
        !w.iter()
            .any(|w| w.kind == "allow-deny-overlap" && w.message.contains("sg-a/ingress/4")),
        "{w:#?}"
    );
}

#[test]
fn allow_deny_overlap_warning() {
    let p = with_server(
        r#"ingress = [
  { proto = "tcp", ports = "80-90", from = "10.0.0.0/8", priority = 5 },
  { proto = "tcp", ports = "85", from = "10.1.0.0/16", action = "deny", priority = 5 },
]"#,
    );
    let w = p.warnings();
    assert!(w.iter().any(|w| w.kind == "allow-deny-overlap"), "{w:#?}");
}

#[test]
fn when_full_is_early_drop_refuse_or_a_positioned_error() {
    assert_eq!(policy("").conntrack.when_full, WhenFull::EarlyDrop);
    let p = policy("[conntrack]\nwhen_full = \"refuse\"\n");
    assert_eq!(p.conntrack.when_full, WhenFull::Refuse);
    let p = policy("[conntrack]\nwhen_full = \"early_drop\"\n");
    assert_eq!(p.conntrack.when_full, WhenFull::EarlyDrop);
    let d = error_of("[conntrack]\nmax_entries = 10\nwhen_full = \"drop_oldest\"\n");
    assert_eq!((d.line, d.column), (3, 13));
    assert!(
        d.message.contains("drop_oldest")
            && d.message.contains("\"early_drop\"")
            && d.message.contains("\"refuse\""),
        "{}",
        d.message
    );
    let d = error_of("[conntrack]\nwhen_full = 1\n");
    assert_eq!(d.line, 2);
}

#[test]
fn timeouts_up_to_ten_years_are_accepted() {
    let p = policy("[conntrack]\ntcp_established = 315360000\n");
    assert_eq!(p.conntrack.tcp_established, ConntrackSettings::MAX_TIMEOUT);
    let d = error_of("[conntrack]\nudp = 315360001\n");
    assert_eq!((d.line, d.column), (2, 7));
    assert!(d.message.contains("1-315360000"), "{}", d.message);
}
