//! Network ACLs in `explain` (both subnets' decisions, nearest misses, the
//! reply's ephemeral ports) and in `check` (shadowed entries, replies not
//! allowed back).

use super::*;
use crate::policy::nacl::testing::{acl, entry, model};

const SGS: &str = r#"
[security_groups.sg-open]
ingress = [ { proto = "all", from = ["0.0.0.0/0", "::/0"] } ]
egress = [ { proto = "all", to = ["0.0.0.0/0", "::/0"] } ]

[interfaces.web]
addresses = ["10.0.1.10"]
security_groups = ["sg-open"]

[interfaces.app]
addresses = ["10.0.2.20"]
security_groups = ["sg-open"]
"#;

/// acl-web admits tcp/443 (rule 90 denies 10.0.2.99 first) and lets out
/// tcp/443 and replies to 32768-65535 only; acl-app allows everything.
fn policy() -> Policy {
    Policy::compile(&model(
        SGS,
        &[
            ("subnet-web", &["10.0.1.0/24"], Some("acl-web")),
            ("subnet-app", &["10.0.2.0/24"], Some("acl-app")),
        ],
        vec![
            acl(
                "acl-web",
                vec![
                    entry(90, "tcp", Some("443"), "10.0.2.99/32", false),
                    entry(100, "tcp", Some("443"), "0.0.0.0/0", true),
                    // Shadowed: rule 100 already admits all of it.
                    entry(110, "tcp", Some("443"), "10.0.2.0/24", true),
                ],
                vec![
                    entry(100, "tcp", Some("443"), "0.0.0.0/0", true),
                    entry(200, "tcp", Some("32768-65535"), "0.0.0.0/0", true),
                ],
            ),
            acl(
                "acl-app",
                vec![entry(100, "all", None, "0.0.0.0/0", true)],
                vec![entry(100, "all", None, "0.0.0.0/0", true)],
            ),
        ],
        &[("web", "subnet-web"), ("app", "subnet-app")],
    ))
    .unwrap()
}

fn flow(src: &str, dst: &str, sport: Option<u16>, dport: u16) -> Flow {
    let mut f = Flow::other(src.parse().unwrap(), dst.parse().unwrap(), IpProto::TCP);
    f.sport = sport;
    f.dport = Some(dport);
    f
}

#[test]
fn explain_says_the_reply_to_a_low_ephemeral_port_is_dropped() {
    let p = policy();
    let ex = p.explain(&flow("10.0.2.20", "10.0.1.10", Some(20000), 443));
    assert_eq!((ex.verdict, ex.reason), (Verdict::Allow, Reason::Rule));
    let legs: Vec<(&str, &str, Direction, Verdict, &str)> = ex
        .network_acls
        .iter()
        .map(|a| {
            (
                a.leg,
                a.subnet.as_str(),
                a.direction,
                a.verdict,
                a.rule.as_str(),
            )
        })
        .collect();
    assert_eq!(
        legs,
        vec![
            (
                "request",
                "subnet-app",
                Direction::Egress,
                Verdict::Allow,
                "acl-app/egress/100"
            ),
            (
                "request",
                "subnet-web",
                Direction::Ingress,
                Verdict::Allow,
                "acl-web/ingress/100"
            ),
            (
                "reply",
                "subnet-web",
                Direction::Egress,
                Verdict::Deny,
                "acl-web/egress/*"
            ),
            (
                "reply",
                "subnet-app",
                Direction::Ingress,
                Verdict::Allow,
                "acl-app/ingress/100"
            ),
        ]
    );
    let reply = &ex.network_acls[2];
    assert_eq!(
        reply.message,
        "the reply would be dropped by acl-web/egress/* (port 20000 not allowed)"
    );
    // The nearest miss is the entry for the other ephemeral ports.
    assert!(
        reply
            .nearest_misses
            .iter()
            .any(|m| m.rule == "acl-web/egress/200" && m.field == explain::Field::Port),
        "{:?}",
        reply.nearest_misses
    );
    let text = ex.to_text();
    assert!(
        text.contains("the reply would be dropped by acl-web/egress/* (port 20000 not allowed)"),
        "{text}"
    );
    // A client port in 32768-65535 gets its reply.
    let ex = p.explain(&flow("10.0.2.20", "10.0.1.10", Some(40000), 443));
    assert!(ex.network_acls.iter().all(|a| a.verdict == Verdict::Allow));
}

#[test]
fn without_sport_explain_names_the_ephemeral_ports_dropped() {
    let p = policy();
    let ex = p.explain(&flow("10.0.2.20", "10.0.1.10", None, 443));
    let reply = ex
        .network_acls
        .iter()
        .find(|a| a.leg == "reply" && a.direction == Direction::Egress)
        .unwrap();
    assert_eq!(reply.verdict, Verdict::Deny);
    assert_eq!(reply.dropped_ports.as_deref(), Some("ports 1024-32767"));
    let json = serde_json::to_value(&ex).unwrap();
    assert_eq!(json["network_acls"][2]["rule"], "acl-web/egress/*");
    assert_eq!(json["network_acls"][2]["dropped_ports"], "ports 1024-32767");
}

#[test]
fn explain_gives_reason_nacl_for_a_request_an_acl_drops() {
    let p = policy();
    let ex = p.explain(&flow("10.0.2.99", "10.0.1.10", Some(40000), 443));
    assert_eq!((ex.verdict, ex.reason), (Verdict::Deny, Reason::Nacl));
    assert_eq!(ex.rule.as_deref(), Some("acl-web/ingress/90"));
    assert_eq!(ex.interface.as_deref(), Some("subnet-web"));
    assert_eq!(ex.direction, Some(Direction::Ingress));
    let denied = &ex.network_acls[1];
    assert_eq!((denied.leg, denied.verdict), ("request", Verdict::Deny));
    // Rule 100 would allow it but for the deny numbered before it.
    let miss = denied
        .nearest_misses
        .iter()
        .find(|m| m.rule == "acl-web/ingress/100")
        .unwrap();
    assert_eq!(miss.field, explain::Field::Priority);
    assert!(
        miss.message
            .contains("acl-web/ingress/90 (deny) comes first"),
        "{}",
        miss.message
    );
    assert!(ex.to_text().contains(
        "DENY (nacl) by network ACL rule acl-web/ingress/90 (subnet subnet-web ingress)"
    ));
    // A port no entry admits: the implicit deny, the port named as the miss.
    let ex = p.explain(&flow("10.0.2.20", "10.0.1.10", Some(40000), 22));
    assert_eq!(ex.rule.as_deref(), Some("acl-web/ingress/*"));
    let miss = &ex.network_acls[1].nearest_misses[0];
    assert_eq!(
        (miss.rule.as_str(), miss.field),
        ("acl-web/ingress/100", explain::Field::Port)
    );
    assert_eq!(
        miss.message,
        "acl-web/ingress/100 allows tcp/443 from 0.0.0.0/0, packet is tcp/22"
    );
}

#[test]
fn explain_inside_one_subnet_shows_no_acl() {
    let p = policy();
    let ex = p.explain(&flow("10.0.1.10", "10.0.1.77", Some(40000), 22));
    assert!(ex.network_acls.is_empty(), "{:?}", ex.network_acls);
}

#[test]
fn check_warns_on_shadowed_entries_and_replies_not_allowed_back() {
    let p = policy();
    let w = p.warnings();
    let kinds: Vec<(&str, &str)> = w
        .iter()
        .filter(|w| w.kind.starts_with("nacl"))
        .map(|w| (w.kind, w.message.as_str()))
        .collect();
    assert!(
        kinds.iter().any(|(k, m)| *k == "nacl-shadowed"
            && m.starts_with("acl-web/ingress/110 can never decide: acl-web/ingress/100")),
        "{kinds:?}"
    );
    // Ingress 100 admits tcp/443 from anywhere; egress lets replies out on
    // 32768-65535 only.
    assert!(
        kinds.iter().any(|(k, m)| *k == "nacl-ephemeral"
            && m.starts_with("acl-web/ingress/100 allows tcp/443 from 0.0.0.0/0")
            && m.contains("ports 1024-32767 (acl-web/egress/* decides)")),
        "{kinds:?}"
    );
    // Egress 100 lets web reach tcp/443 anywhere, but no ingress entry
    // admits the replies: the other way round.
    assert!(
        kinds.iter().any(|(k, m)| *k == "nacl-ephemeral"
            && m.starts_with("acl-web/egress/100 allows tcp/443 to 0.0.0.0/0")
            && m.contains("in from it on ports 1024-65535")),
        "{kinds:?}"
    );
    // The rule for replies (egress 200) and acl-app's allow-all are fine;
    // the lower deny 90 shadows nothing.
    assert_eq!(kinds.len(), 3, "{kinds:?}");
}
