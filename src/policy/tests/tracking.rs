//! `explain` says whether each end would track a flow, and why (SPEC §9.3).

use crate::policy::{Flow, IpProto, Policy, Reason, Verdict};

const POLICY: &str = r#"
[security_groups.sg-web]
ingress = [
  { proto = "tcp", ports = "80", from = "0.0.0.0/0" },
  { proto = "tcp", ports = "22", from = "10.0.0.0/8" },
]
egress = [ { proto = "all", to = "0.0.0.0/0" } ]

[interfaces.web]
addresses = ["10.0.1.10"]
security_groups = ["sg-web"]
tracking = "aws"

[interfaces.lb]
addresses = ["10.0.3.10"]
security_groups = ["sg-web"]
tracking = "aws"
kind = "load_balancer"
"#;

fn tcp(src: &str, dst: &str, dport: u16) -> Flow {
    Flow::ports(
        src.parse().unwrap(),
        dst.parse().unwrap(),
        IpProto::TCP,
        40000,
        dport,
    )
}

#[test]
fn explain_says_an_untracked_flow_is_untracked_and_why() {
    let p = Policy::from_toml(POLICY, "t.toml").unwrap();
    let ex = p.explain(&tcp("198.51.100.7", "10.0.1.10", 80));
    assert_eq!(
        (ex.verdict, ex.reason, ex.tracked),
        (Verdict::Allow, Reason::Rule, Some(false))
    );
    let d = &ex.decisions[0];
    assert_eq!(d.tracked, Some(false));
    let why = d.tracking.as_deref().unwrap();
    assert!(
        why.contains("sg-web/ingress/0") && why.contains("sg-web/egress/0"),
        "{why}"
    );
    let text = ex.to_text();
    assert!(
        text.contains("untracked here: sg-web/ingress/0 names the whole address space"),
        "{text}"
    );
    let json = serde_json::to_value(&ex).unwrap();
    assert_eq!(json["tracked"], false);
    assert_eq!(json["reason"], "rule");
    assert_eq!(json["decisions"][0]["tracked"], false);
}

#[test]
fn explain_says_why_a_flow_is_tracked() {
    let p = Policy::from_toml(POLICY, "t.toml").unwrap();
    // A rule that does not name 0.0.0.0/0.
    let ex = p.explain(&tcp("10.9.0.1", "10.0.1.10", 22));
    assert_eq!((ex.reason, ex.tracked), (Reason::Rule, Some(true)));
    assert!(ex.decisions[0]
        .tracking
        .as_deref()
        .unwrap()
        .contains("does not name 0.0.0.0/0"));
    // An interface tracked by kind.
    let ex = p.explain(&tcp("198.51.100.7", "10.0.3.10", 80));
    assert_eq!(ex.tracked, Some(true));
    assert!(ex.decisions[0]
        .tracking
        .as_deref()
        .unwrap()
        .contains("kind load_balancer"));
    // Egress from web to lb: untracked at web (all to 0/0 out... but web's
    // ingress has no all-traffic rule), tracked at lb.
    let ex = p.explain(&tcp("10.0.1.10", "10.0.3.10", 80));
    assert_eq!(ex.tracked, Some(true));
    let web = &ex.decisions[0];
    assert!(
        web.tracking
            .as_deref()
            .unwrap()
            .contains("no rule allowing all traffic"),
        "{web:?}"
    );
    // ICMP.
    let icmp = Flow::icmp(
        "198.51.100.7".parse().unwrap(),
        "10.0.1.10".parse().unwrap(),
        IpProto::ICMP,
        8,
        0,
    );
    let ex = p.explain(&icmp);
    assert_eq!(ex.verdict, Verdict::Deny);
    assert_eq!(ex.tracked, None);
    // In gwlb mode every flow is tracked.
    let g = p.clone().for_gwlb(350);
    let ex = g.explain(&tcp("198.51.100.7", "10.0.1.10", 80));
    assert_eq!((ex.reason, ex.tracked), (Reason::Rule, Some(true)));
    assert!(ex.decisions[0]
        .tracking
        .as_deref()
        .unwrap()
        .contains("gwlb"));
}
