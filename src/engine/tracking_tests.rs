//! Untracked connections and per-interface state (SPEC §9.3) on synthetic
//! packets: which flows take no entry, the reply judged by the rules, a
//! reload cutting untracked flows only, allowances and timeouts per interface.

use std::net::IpAddr;
use std::sync::Arc;

use super::*;
use crate::conntrack::tcp::{ACK, SYN};
use crate::wire::build;

/// `web` (tracking = "aws") takes HTTP from anywhere and sends anything
/// anywhere: HTTP to it is untracked there. `db` (default tracking) takes
/// 5432 from web. `lb` is a load balancer with the same rules: tracked.
const POLICY: &str = r#"
[conntrack]
max_entries = 100

[security_groups.sg-web]
ingress = [
  { proto = "tcp", ports = "80", from = "0.0.0.0/0" },
  { proto = "tcp", ports = "22", from = "10.0.0.0/8" },
  { proto = "udp", ports = "53", from = "0.0.0.0/0" },
  { proto = "icmp", from = "0.0.0.0/0" },
]
egress = [ { proto = "all", to = "0.0.0.0/0" } ]

[security_groups.sg-db]
ingress = [ { proto = "tcp", ports = "5432", from = "sg-web" } ]
egress = [ { proto = "all", to = "0.0.0.0/0" } ]

[interfaces.web]
addresses = ["10.0.1.10"]
security_groups = ["sg-web"]
tracking = "aws"

[interfaces.db]
addresses = ["10.0.2.10"]
security_groups = ["sg-db"]
conntrack_max = 2
timeouts = { tcp_established = 60 }

[interfaces.lb]
addresses = ["10.0.3.10"]
security_groups = ["sg-web"]
tracking = "aws"
kind = "load_balancer"
"#;

const WEB: &str = "10.0.1.10";
const DB: &str = "10.0.2.10";
const LB: &str = "10.0.3.10";
const CLIENT: &str = "198.51.100.7";
const SEC: Nanos = 1_000_000_000;
const T0: Nanos = 1_700_000_000 * SEC;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn policy(text: &str) -> Policy {
    Policy::from_toml(text, "test.toml").unwrap()
}

fn run(e: &mut Engine, frame: &[u8], t: Nanos) -> Judgement {
    e.process(LinkType::Ethernet, frame, frame.len(), t)
}

fn vr(j: Judgement) -> (Verdict, Reason) {
    (j.verdict, j.reason)
}

fn tcp(src: &str, dst: &str, sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    build::tcp(ip(src), ip(dst), sport, dport, flags, 1, 1, b"")
}

const UNTRACKED: (Verdict, Reason) = (Verdict::Allow, Reason::Untracked);
const EST: (Verdict, Reason) = (Verdict::Allow, Reason::Established);
const RULE: (Verdict, Reason) = (Verdict::Allow, Reason::Rule);

#[test]
fn an_untracked_flow_takes_no_entry_and_its_reply_is_judged_by_the_rules() {
    let mut e = Engine::with_policy(policy(POLICY));
    let t = T0;
    assert_eq!(
        vr(run(&mut e, &tcp(CLIENT, WEB, 40000, 80, SYN), t)),
        UNTRACKED
    );
    // The reply: a SYN+ACK with no entry, let through by web's all-traffic egress rule.
    assert_eq!(
        vr(run(&mut e, &tcp(WEB, CLIENT, 80, 40000, SYN | ACK), t)),
        UNTRACKED
    );
    assert_eq!(
        vr(run(&mut e, &tcp(CLIENT, WEB, 40000, 80, ACK), t)),
        UNTRACKED
    );
    // UDP the same way, both directions.
    let q = build::udp(ip(CLIENT), ip(WEB), 5353, 53, b"q");
    let a = build::udp(ip(WEB), ip(CLIENT), 53, 5353, b"a");
    assert_eq!(vr(run(&mut e, &q, t)), UNTRACKED);
    assert_eq!(vr(run(&mut e, &a, t)), UNTRACKED);
    assert!(e.conntrack().is_empty(), "{:?}", e.conntrack().entries());
    assert_eq!(e.stats().reason(Reason::Untracked), 5);
    assert_eq!(e.stats().flows_opened, 0);
    // A mid-flow segment with no SYN seen is untracked too (judged by the rules).
    assert_eq!(
        vr(run(&mut e, &tcp(CLIENT, WEB, 40001, 80, ACK), t)),
        UNTRACKED
    );
    // Not named 0.0.0.0/0: tracked as ever.
    assert_eq!(
        vr(run(&mut e, &tcp("10.9.0.1", WEB, 40000, 22, SYN), t)),
        RULE
    );
    assert_eq!(e.conntrack().len(), 1);
    // A reply with no flow to be the reply of is still invalid when tracked.
    let j = run(&mut e, &tcp("10.9.0.1", WEB, 40009, 22, SYN | ACK), t);
    assert_eq!(vr(j), (Verdict::Deny, Reason::Invalid));
}

#[test]
fn icmp_and_load_balancers_are_always_tracked() {
    let mut e = Engine::with_policy(policy(POLICY));
    let ping = build::icmp(ip(CLIENT), ip(WEB), 8, 0, [0, 7, 0, 1], b"");
    assert_eq!(vr(run(&mut e, &ping, T0)), RULE);
    assert_eq!(e.conntrack().len(), 1);
    assert_eq!(vr(run(&mut e, &tcp(CLIENT, LB, 40000, 80, SYN), T0)), RULE);
    assert_eq!(e.conntrack().len(), 2);
    // In gwlb mode nothing is untracked.
    let mut g = Engine::with_policy(policy(POLICY).for_gwlb(crate::policy::GWLB_TCP_IDLE));
    assert_eq!(vr(run(&mut g, &tcp(CLIENT, WEB, 40000, 80, SYN), T0)), RULE);
    assert_eq!(g.conntrack().len(), 1);
}

#[test]
fn a_reload_removing_the_rule_stops_untracked_flows_and_not_tracked_ones() {
    let mut e = Engine::with_policy(policy(POLICY));
    // Untracked: HTTP from anywhere. Tracked: SSH from 10/8.
    assert_eq!(
        vr(run(&mut e, &tcp(CLIENT, WEB, 40000, 80, SYN), T0)),
        UNTRACKED
    );
    assert_eq!(
        vr(run(&mut e, &tcp("10.9.0.1", WEB, 40000, 22, SYN), T0)),
        RULE
    );
    assert_eq!(
        vr(run(&mut e, &tcp(WEB, "10.9.0.1", 22, 40000, SYN | ACK), T0)),
        EST
    );
    let without = POLICY
        .replace(
            r#"  { proto = "tcp", ports = "80", from = "0.0.0.0/0" },"#,
            "",
        )
        .replace(
            r#"  { proto = "tcp", ports = "22", from = "10.0.0.0/8" },"#,
            "",
        );
    e.set_rules(Arc::new(Ruleset::compile(policy(&without))));
    let t = T0 + SEC;
    // No entry, and no rule: the next segment is a new flow the rules deny.
    let j = run(&mut e, &tcp(CLIENT, WEB, 40000, 80, ACK), t);
    assert_eq!(vr(j), (Verdict::Deny, Reason::NoRule), "{j:?}");
    let j = run(&mut e, &tcp(CLIENT, WEB, 40000, 80, SYN), t);
    assert_eq!(vr(j), (Verdict::Deny, Reason::NoRule));
    assert_eq!(
        vr(run(&mut e, &tcp("10.9.0.1", WEB, 40000, 22, ACK), t)),
        EST
    );
    assert_eq!(
        vr(run(&mut e, &tcp(WEB, "10.9.0.1", 22, 40000, ACK), t)),
        EST
    );
}

#[test]
fn each_end_decides_for_itself() {
    // web -> db:5432: web's egress allows it by the all-traffic rule
    // (names 0.0.0.0/0), but web's ingress has no all-traffic rule:
    // tracked at web; db tracks always. One entry, counted at both.
    let mut e = Engine::with_policy(policy(POLICY));
    assert_eq!(vr(run(&mut e, &tcp(WEB, DB, 40000, 5432, SYN), T0)), RULE);
    assert_eq!(e.conntrack().len(), 1);
    let web = e.policy().interface_id("web").unwrap();
    let db = e.policy().interface_id("db").unwrap();
    assert_eq!(e.conntrack().interfaces()[web as usize].entries, 1);
    assert_eq!(e.conntrack().interfaces()[db as usize].entries, 1);

    // Give db tracking = "aws" and an all-traffic ingress rule: web -> db
    // is then untracked at db (all from 0/0 in, all to 0/0 out) and still
    // tracked at web: one entry, web's.
    let text = POLICY
        .replace(
            r#"ingress = [ { proto = "tcp", ports = "5432", from = "sg-web" } ]"#,
            r#"ingress = [ { proto = "all", from = "0.0.0.0/0" } ]"#,
        )
        .replace(
            "conntrack_max = 2\n",
            "conntrack_max = 2\ntracking = \"aws\"\n",
        );
    let mut e = Engine::with_policy(policy(&text));
    assert_eq!(vr(run(&mut e, &tcp(WEB, DB, 40000, 5432, SYN), T0)), RULE);
    let counts = e.conntrack().interfaces();
    assert_eq!(
        (counts[web as usize].entries, counts[db as usize].entries),
        (1, 0)
    );
    // The reply passes web's entry and db's rules (its all-traffic egress).
    assert_eq!(
        vr(run(&mut e, &tcp(DB, WEB, 5432, 40000, SYN | ACK), T0)),
        EST
    );
    // db's egress loses its rule: db judges every packet, so the flow stops
    // at db though web still tracks it.
    let cut = text.replacen(
        "[security_groups.sg-db]\ningress = [ { proto = \"all\", from = \"0.0.0.0/0\" } ]\negress = [ { proto = \"all\", to = \"0.0.0.0/0\" } ]",
        "[security_groups.sg-db]\ningress = [ { proto = \"all\", from = \"0.0.0.0/0\" } ]\negress = [ { proto = \"udp\", ports = \"9\", to = \"0.0.0.0/0\" } ]",
        1,
    );
    assert_ne!(cut, text);
    e.set_rules(Arc::new(Ruleset::compile(policy(&cut))));
    let j = run(&mut e, &tcp(DB, WEB, 5432, 40000, ACK), T0 + SEC);
    assert_eq!(vr(j), (Verdict::Deny, Reason::NoRule));
    assert_eq!(j.decision, Some((db, Direction::Egress)));
    assert_eq!(
        vr(run(&mut e, &tcp(WEB, DB, 40000, 5432, ACK), T0 + SEC)),
        EST
    );
}

#[test]
fn an_interfaces_allowance_refuses_naming_it() {
    let mut e = Engine::with_policy(policy(POLICY));
    let db = e.policy().interface_id("db").unwrap();
    for port in [40000, 40001] {
        assert_eq!(vr(run(&mut e, &tcp(WEB, DB, port, 5432, SYN), T0)), RULE);
    }
    let j = run(&mut e, &tcp(WEB, DB, 40002, 5432, SYN), T0);
    assert_eq!(vr(j), (Verdict::Deny, Reason::ConntrackFull));
    assert_eq!(j.decision, Some((db, Direction::Ingress)));
    let c = e.conntrack().interfaces()[db as usize];
    assert_eq!((c.entries, c.available(), c.exceeded), (2, Some(0), 1));
    // Other interfaces still open flows (the table has room).
    assert_eq!(vr(run(&mut e, &tcp("10.9.0.1", WEB, 1, 22, SYN), T0)), RULE);
    // An entry expiring gives the allowance back (db's SYN_SENT: 120 s).
    let t = T0 + 121 * SEC;
    assert_eq!(vr(run(&mut e, &tcp(WEB, DB, 40002, 5432, SYN), t)), RULE);
    assert_eq!(e.conntrack().interfaces()[db as usize].entries, 1);
}

#[test]
fn an_interfaces_timeouts_expire_its_flows() {
    let mut e = Engine::with_policy(policy(POLICY));
    // web -> db: established and assured; db's tcp_established is 60 s.
    let open = |e: &mut Engine, sport: u16, t: Nanos| {
        assert_eq!(vr(run(e, &tcp(WEB, DB, sport, 5432, SYN), t)), RULE);
        assert_eq!(vr(run(e, &tcp(DB, WEB, 5432, sport, SYN | ACK), t)), EST);
        assert_eq!(vr(run(e, &tcp(WEB, DB, sport, 5432, ACK), t)), EST);
    };
    open(&mut e, 40000, T0);
    let t = T0 + 59 * SEC;
    assert_eq!(vr(run(&mut e, &tcp(DB, WEB, 5432, 40000, ACK), t)), EST);
    // 60 s of silence: gone at db's time, not the table's 432000 s.
    let t = t + 60 * SEC;
    // A new flow now, which web's ingress does not allow.
    let j = run(&mut e, &tcp(DB, WEB, 5432, 40000, ACK), t);
    assert_eq!(vr(j), (Verdict::Deny, Reason::NoRule), "{j:?}");
    assert!(e.conntrack().is_empty());
    // A flow to an interface without timeouts keeps the table's.
    let mut e = Engine::with_policy(policy(POLICY));
    assert_eq!(vr(run(&mut e, &tcp("10.9.0.1", WEB, 1, 22, SYN), T0)), RULE);
    assert_eq!(
        vr(run(&mut e, &tcp(WEB, "10.9.0.1", 22, 1, SYN | ACK), T0)),
        EST
    );
    assert_eq!(vr(run(&mut e, &tcp("10.9.0.1", WEB, 1, 22, ACK), T0)), EST);
    let t = T0 + 3600 * SEC;
    assert_eq!(vr(run(&mut e, &tcp(WEB, "10.9.0.1", 22, 1, ACK), t)), EST);
}

#[test]
fn gwlb_mode_takes_gwlbs_timeouts_unless_the_policy_sets_them() {
    let p = policy(POLICY).for_gwlb(crate::policy::GWLB_TCP_IDLE);
    let c = p.conntrack();
    assert!(p.gwlb_mode());
    assert_eq!(
        (c.tcp_established, c.udp, c.udp_stream, c.icmp, c.other),
        (350, 120, 120, 120, 120)
    );
    let set = "[conntrack]\nudp = 45\ntcp_established = 1000\n";
    let p = policy(&POLICY.replace("[conntrack]\n", set)).for_gwlb(600);
    let c = p.conntrack();
    assert_eq!((c.tcp_established, c.udp, c.udp_stream), (1000, 45, 120));
    let p = policy(POLICY).for_gwlb(600);
    assert_eq!(p.conntrack().tcp_established, 600);
    // And the table uses them: a UDP flow is gone after 120 s.
    let mut e = Engine::with_policy(policy(POLICY).for_gwlb(350));
    let q = build::udp(ip(CLIENT), ip(WEB), 5353, 53, b"q");
    let a = build::udp(ip(WEB), ip(CLIENT), 53, 5353, b"a");
    assert_eq!(vr(run(&mut e, &q, T0)), RULE);
    assert_eq!(vr(run(&mut e, &a, T0 + 119 * SEC)), EST);
    assert_eq!(e.expire(T0 + 119 * SEC + 120 * SEC), 1);
}

/// Rule hits count the packets a rule decided, whatever path they took:
/// TCP that cannot open a flow an end tracks is `invalid` (its rule found
/// but not deciding, no hit); an untracked flow's packets each name and
/// hit their rule. Found by the `engine_nacl_tracking` fuzz target.
#[test]
fn rule_hits_are_the_judgements_naming_a_rule() {
    let mut e = Engine::with_policy(policy(POLICY));
    let t = T0;
    let js = [
        // A SYN+ACK with no flow to the load balancer (always tracked): invalid.
        run(&mut e, &tcp(CLIENT, LB, 40000, 80, SYN | ACK), t),
        run(&mut e, &tcp(CLIENT, WEB, 40000, 80, SYN), t),
        run(&mut e, &tcp(CLIENT, WEB, 40000, 80, ACK), t),
        run(&mut e, &tcp(CLIENT, LB, 40001, 80, SYN), t),
    ];
    assert_eq!(vr(js[0]), (Verdict::Deny, Reason::Invalid));
    assert_eq!(js[0].rule, None);
    assert_eq!(vr(js[3]), RULE);
    let named = js.iter().filter(|j| j.rule.is_some()).count() as u64;
    assert_eq!(named, 3);
    assert_eq!(e.stats().rule_hits.iter().sum::<u64>(), named);
}
