//! SPEC §9.2: an Azure subnet NSG and a NIC NSG, each a policy of its own,
//! both applying; entering, the subnet's first; leaving, the NIC's first.

use super::*;

/// Two subnets: `web` with a subnet NSG that admits only 443 from outside
/// and lets out only 443 and DNS; `plain` without one. The web NIC's NSG
/// admits 80 and 443 and denies 8443 explicitly, and lets out everything.
pub(crate) const LAYERED: &str = r#"
[vpcs.vnet-1]
cidrs = ["10.0.0.0/16"]

[subnets.web]
vpc = "vnet-1"
cidr = "10.0.1.0/24"
security_groups = ["sg-subnet"]

[subnets.plain]
vpc = "vnet-1"
cidr = "10.0.2.0/24"

[security_groups.sg-subnet]
ingress = [
  { priority = 100, proto = "tcp", ports = "443", from = "0.0.0.0/0" },
  { priority = 200, proto = "tcp", ports = "8443", from = "0.0.0.0/0" },
  { priority = 300, proto = "tcp", ports = "22", from = "0.0.0.0/0", action = "deny" },
]
egress = [
  { priority = 100, proto = "tcp", ports = "443", to = "0.0.0.0/0" },
  { priority = 110, proto = "udp", ports = "53", to = "0.0.0.0/0" },
]

[security_groups.sg-nic]
ingress = [
  { priority = 100, proto = "tcp", ports = "80", from = "0.0.0.0/0" },
  { priority = 110, proto = "tcp", ports = "443", from = "0.0.0.0/0" },
  { priority = 120, proto = "tcp", ports = "8443", from = "0.0.0.0/0", action = "deny" },
]
egress = [ { priority = 100, proto = "all", to = "0.0.0.0/0" } ]

[security_groups.sg-other]
ingress = [ { priority = 100, proto = "all", from = "0.0.0.0/0" } ]
egress = [
  { priority = 100, proto = "tcp", ports = "80", to = "0.0.0.0/0", action = "deny" },
  { priority = 200, proto = "all", to = "0.0.0.0/0" },
]

[interfaces.web-nic]
subnet = "web"
addresses = ["10.0.1.4"]
security_groups = ["sg-nic"]

[interfaces.web-nic-2]
subnet = "web"
addresses = ["10.0.1.5"]
security_groups = ["sg-other"]

[interfaces.other-nic]
subnet = "plain"
addresses = ["10.0.2.4"]
security_groups = ["sg-other"]
"#;

const OUTSIDE: &str = "203.0.113.9";

fn layered() -> Policy {
    policy(LAYERED)
}

#[test]
fn compiled_layers() {
    let p = layered();
    assert!(p.layered());
    let web = p.interface_id("web-nic").unwrap();
    let other = p.interface_id("other-nic").unwrap();
    assert!(p.layer_set(web, Layer::Subnet).is_some());
    assert_eq!(p.layer_set(other, Layer::Subnet), None);
    assert!(!policy(TWO_HOSTS).layered());
}

#[test]
fn inbound_allowed_by_both() {
    // The verdict names the NIC's own ingress rule, as without layers.
    allowed_by(
        &layered(),
        &tcp(OUTSIDE, "10.0.1.4", 443),
        "sg-nic/ingress/1",
    );
}

#[test]
fn inbound_allowed_by_the_nic_denied_by_the_subnet() {
    let p = layered();
    let f = tcp(OUTSIDE, "10.0.1.4", 80);
    denied(&p, &f, Reason::NoRule, None);
    let e = p.evaluate(&f);
    let d = e.deciding().unwrap();
    assert_eq!((d.layer, d.direction), (Layer::Subnet, Direction::Ingress));
    // The NIC's layer was judged too and allows.
    assert_eq!(e.ingress.unwrap().verdict, Verdict::Allow);
}

#[test]
fn inbound_the_subnet_decides_first() {
    // The subnet denies 22 by rule and the NIC by no-rule: entering, the
    // subnet's comes first.
    let p = layered();
    denied(
        &p,
        &tcp(OUTSIDE, "10.0.1.4", 22),
        Reason::Rule,
        Some("sg-subnet/ingress/2"),
    );
    // The subnet allows 8443 and the NIC denies it: the NIC's rule decides.
    denied(
        &p,
        &tcp(OUTSIDE, "10.0.1.4", 8443),
        Reason::Rule,
        Some("sg-nic/ingress/2"),
    );
}

#[test]
fn outbound_allowed_by_the_nic_denied_by_the_subnet() {
    let p = layered();
    // The NIC lets everything out; the subnet only 443 and DNS.
    let f = tcp("10.0.1.4", OUTSIDE, 8080);
    denied(&p, &f, Reason::NoRule, None);
    let d = *p.evaluate(&f).deciding().unwrap();
    assert_eq!((d.layer, d.direction), (Layer::Subnet, Direction::Egress));
    allowed_by(&p, &tcp("10.0.1.4", OUTSIDE, 443), "sg-nic/egress/0");
}

#[test]
fn outbound_the_nic_decides_first() {
    // web-nic-2's NSG denies 80 by rule; the subnet denies it by no-rule:
    // leaving, the NIC's comes first.
    let p = layered();
    denied(
        &p,
        &tcp("10.0.1.5", OUTSIDE, 80),
        Reason::Rule,
        Some("sg-other/egress/0"),
    );
}

#[test]
fn within_the_subnet_both_layers_apply_at_both_nics() {
    let p = layered();
    // web-nic-2 → web-nic:443: NIC-2 out, subnet out, subnet in, NIC in.
    allowed_by(&p, &tcp("10.0.1.5", "10.0.1.4", 443), "sg-nic/ingress/1");
    // → web-nic:8080: web-nic-2 lets it out, the subnet does not.
    let e = p.evaluate(&tcp("10.0.1.5", "10.0.1.4", 8080));
    assert_eq!(e.verdict, Verdict::Deny);
    let d = e.deciding().unwrap();
    assert_eq!((d.layer, d.direction), (Layer::Subnet, Direction::Egress));
    assert_eq!(e.decisions().count(), 4);
}

#[test]
fn a_subnet_without_groups_adds_no_layer() {
    let p = layered();
    let e = p.evaluate(&tcp(OUTSIDE, "10.0.2.4", 8080));
    assert_eq!(e.verdict, Verdict::Allow);
    assert_eq!(e.decisions().count(), 1);
}

#[test]
fn an_unknown_subnet_group_is_an_error() {
    let text = LAYERED.replace(
        r#"security_groups = ["sg-subnet"]"#,
        r#"security_groups = ["sg-nope"]"#,
    );
    let err = Policy::from_toml(&text, "t.toml").unwrap_err().to_string();
    assert!(err.contains("sg-nope"), "{err}");
}

#[test]
fn explain_names_the_layer_that_blocked() {
    let p = layered();
    let x = p.explain(&tcp(OUTSIDE, "10.0.1.4", 80));
    assert_eq!(x.layer, Some(Layer::Subnet));
    assert_eq!(x.decisions.len(), 2);
    let sub = &x.decisions[0];
    assert_eq!(
        (sub.layer, sub.subnet.as_deref()),
        (Layer::Subnet, Some("web"))
    );
    assert_eq!(sub.security_groups, ["sg-subnet"]);
    assert_eq!(sub.verdict, Verdict::Deny);
    // The subnet's 443 rule is a nearest miss, on the port.
    assert!(
        sub.nearest_misses
            .iter()
            .any(|m| m.rule == "sg-subnet/ingress/0"),
        "{sub:?}"
    );
    let nic = &x.decisions[1];
    assert_eq!((nic.layer, nic.verdict), (Layer::Interface, Verdict::Allow));
    let json = serde_json::to_value(&x).unwrap();
    assert_eq!(json["layer"], "subnet");
    assert_eq!(json["decisions"][0]["layer"], "subnet");
    assert_eq!(json["decisions"][1]["layer"], "interface");
    let text = x.to_text();
    assert!(
        text.contains("no rule of web-nic ingress, layer subnet matches"),
        "{text}"
    );
    assert!(
        text.contains("web-nic ingress, layer subnet (web) [sg-subnet]"),
        "{text}"
    );
    // The NIC's own deny: layer interface, with its nearest misses.
    let x = p.explain(&tcp(OUTSIDE, "10.0.1.4", 8443));
    assert_eq!(x.layer, Some(Layer::Interface));
    assert!(x
        .to_text()
        .contains("by sg-nic/ingress/2 (web-nic ingress, layer interface)"));
}

#[test]
fn explain_without_layers_says_nothing_of_them() {
    let x = layered().explain(&tcp(OUTSIDE, "10.0.2.4", 80));
    assert_eq!(x.layer, Some(Layer::Interface));
    assert!(!x.to_text().contains("layer"), "{}", x.to_text());
}
