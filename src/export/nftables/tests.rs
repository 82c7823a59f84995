//! The exported ruleset's text, piece by piece.

use super::*;

fn export(toml: &str) -> String {
    let p = Policy::from_toml(toml, "t.toml").unwrap();
    ruleset(&p, "sgplane").unwrap()
}

#[test]
fn rules_keep_decision_order_and_both_stages() {
    let t = export(
        r#"
[prefix_lists]
pl-office = ["198.51.100.0/24", "198.51.100.128/25", "2001:db8:ff00::/48"]
[security_groups.sg-web]
ingress = [
  { proto = "tcp", ports = ["80", "8080-8090"], from = ["sg-web", "10.9.0.0/16", "pl-office"] },
  { proto = "tcp", ports = "22", from = "0.0.0.0/0", action = "deny", priority = 1 },
  { proto = "icmp", icmp_type = 8, from = "0.0.0.0/0" },
]
egress = [ { proto = "all", to = "0.0.0.0/0" } ]
[interfaces.eni-web-1]
addresses = ["10.0.1.10", "2001:db8:1::10"]
security_groups = ["sg-web"]
"#,
    );
    let chain = t
        .split("chain in_eni-web-1 {")
        .nth(1)
        .unwrap()
        .split("\n\t}")
        .next()
        .unwrap();
    let lines: Vec<&str> = chain
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(
        lines[0], "meta nfproto ipv4 tcp dport 22 counter drop comment \"sg-web/ingress/1\"",
        "{chain}"
    );
    assert!(
        lines[1].starts_with("ip saddr 10.9.0.0/16 tcp dport { 80, 8080-8090 } counter accept"),
        "{chain}"
    );
    assert!(
        lines[2].starts_with("ip saddr @sg-web_v4 tcp dport"),
        "{chain}"
    );
    assert!(
        lines[3].starts_with("ip saddr @pl-office_v4 tcp dport"),
        "{chain}"
    );
    assert!(
        lines[4].starts_with("ip6 saddr @sg-web_v6 tcp dport"),
        "{chain}"
    );
    assert!(
        lines[5].starts_with("ip6 saddr @pl-office_v6 tcp dport"),
        "{chain}"
    );
    assert!(
        lines[6].starts_with("meta nfproto ipv4 icmp type 8 counter accept"),
        "{chain}"
    );
    assert_eq!(
        lines[7],
        "counter drop comment \"no-rule: eni-web-1 ingress\""
    );
    // The nested /25 is left out of the interval set.
    assert!(t.contains("elements = { 198.51.100.0/24 }"), "{t}");
    // Egress allows return to `forward` for the ingress stage.
    assert!(
        t.contains("meta nfproto ipv4 counter return comment \"sg-web/egress/0\""),
        "{t}"
    );
    assert!(t.contains("10.0.1.10 : jump eg_eni-web-1"), "{t}");
    assert!(t.contains("2001:db8:1::10 : jump in_eni-web-1"), "{t}");
    assert!(
        t.contains("counter drop comment \"unknown-address\""),
        "{t}"
    );
}

#[test]
fn settings_and_zones() {
    let t = export(
        r#"
[settings]
unknown_address = "allow"
allow_neighbor_discovery = false
[security_groups.sg-a]
ingress = [ { proto = "udp", ports = "53", source_ports = "1024-65535", from = "sg-a", local = "10.0.0.0/24" } ]
[interfaces.a]
addresses = ["10.0.0.5"]
security_groups = ["sg-a"]
[interfaces.z]
addresses = ["10.0.0.5"]
security_groups = ["sg-a"]
zone = "vpce-0123456789abcdef0"
"#,
    );
    assert!(t.contains("counter accept comment \"unknown-address\""));
    assert!(!t.contains("icmpv6 type 133-137"));
    assert!(t.contains("Left out (zoned): z."));
    assert!(!t.contains("chain eg_z"));
    assert!(
        t.contains("ip daddr 10.0.0.0/24 ip saddr @sg-a_v4 udp sport 1024-65535 udp dport 53 counter accept"),
        "{t}"
    );
    assert!(!t.contains("sg-a_v6"), "no IPv6 members, no IPv6 set: {t}");
}

#[test]
fn odd_names_become_identifiers() {
    let t = export(
        r#"
[security_groups."sg-a b"]
ingress = [ { proto = "47", from = "::/0" }, { proto = "icmp", icmp_type = 3, icmp_code = 4, from = "::/0" } ]
[interfaces."1st nic"]
addresses = ["2001:db8::/64"]
security_groups = ["sg-a b"]
"#,
    );
    assert!(
        t.contains("chain eg_1st_nic {") && t.contains("chain in_1st_nic {"),
        "{t}"
    );
    assert!(
        t.contains("meta nfproto ipv6 meta l4proto 47 counter accept comment \"sg-a b/ingress/0\""),
        "{t}"
    );
    assert!(t.contains("meta l4proto icmp @th,0,8 3 @th,8,8 4"), "{t}");
    assert!(t.contains("2001:db8::/64 : jump"), "{t}");
    assert!(ruleset(&Policy::builtin(), "bad name").is_err());
    assert!(ruleset(&Policy::builtin(), "9x").is_err());
}
