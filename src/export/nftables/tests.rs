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

/// Azure's subnet NSG (SPEC §9.2): leaving, the NIC's chain goes on to the
/// subnet's; entering, the map jumps to the subnet's chain, which goes on
/// to the NIC's. An interface of a subnet without groups is as before.
#[test]
fn subnet_layers_chain_in_the_order_packets_meet_them() {
    let t = export(
        r#"
[vpcs.vnet-1]
cidrs = ["10.0.0.0/16"]
[subnets.web]
vpc = "vnet-1"
cidr = "10.0.1.0/24"
security_groups = ["sg-subnet"]
[security_groups.sg-subnet]
ingress = [ { priority = 100, proto = "tcp", ports = "443", from = "0.0.0.0/0" } ]
egress = [ { priority = 100, proto = "tcp", ports = "443", to = "0.0.0.0/0" } ]
[security_groups.sg-nic]
ingress = [ { priority = 100, proto = "tcp", ports = "80-443", from = "0.0.0.0/0" } ]
egress = [ { priority = 100, proto = "all", to = "0.0.0.0/0" } ]
[interfaces.web-nic]
subnet = "web"
addresses = ["10.0.1.4"]
security_groups = ["sg-nic"]
[interfaces.other]
addresses = ["10.0.9.9"]
security_groups = ["sg-nic"]
"#,
    );
    let chain = |name: &str| {
        let body = t
            .split(&format!("chain {name} {{"))
            .nth(1)
            .unwrap_or_else(|| panic!("no chain {name}:\n{t}"));
        body[..body.find('}').unwrap()].to_string()
    };
    let eg = chain("eg_web-nic");
    assert!(
        eg.contains("goto egs_web-nic comment \"sg-nic/egress/0\""),
        "{eg}"
    );
    let egs = chain("egs_web-nic");
    assert!(
        egs.contains("tcp dport 443 counter return comment \"sg-subnet/egress/0\""),
        "{egs}"
    );
    assert!(
        egs.contains("counter drop comment \"no-rule: web-nic egress (subnet web)\""),
        "{egs}"
    );
    let ins = chain("ins_web-nic");
    assert!(
        ins.contains("goto in_web-nic comment \"sg-subnet/ingress/0\""),
        "{ins}"
    );
    let ing = chain("in_web-nic");
    assert!(ing.contains("accept comment \"sg-nic/ingress/0\""), "{ing}");
    // The ingress map enters the subnet's chain first.
    assert!(t.contains("10.0.1.4 : jump ins_web-nic"), "{t}");
    assert!(t.contains("10.0.1.4 : jump eg_web-nic"), "{t}");
    // Without a subnet layer: as before.
    assert!(t.contains("10.0.9.9 : jump in_other"), "{t}");
    assert!(chain("eg_other").contains("counter return comment \"sg-nic/egress/0\""));
    assert!(!t.contains("egs_other"));
}
