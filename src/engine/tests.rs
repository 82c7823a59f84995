//! The engine on synthetic packets with synthetic timestamps: every conntrack
//! transition and timeout of SPEC §2, without sleeping.

use std::net::IpAddr;
use std::sync::Arc;

use super::*;
use crate::conntrack::tcp::{ACK, FIN, PSH, RST, SYN};
use crate::wire::build;

const POLICY: &str = r#"
[conntrack]
max_entries = 100
tcp_established = 3600
tcp_transitory = 120
udp = 30
udp_stream = 180
icmp = 30
other = 600

[security_groups.sg-client]
egress = [ { proto = "all", to = ["0.0.0.0/0", "::/0"] } ]

[security_groups.sg-server]
ingress = [
  { proto = "tcp", ports = "80", from = "10.0.0.0/24" },
  { proto = "udp", ports = "53", from = "10.0.0.0/24" },
  { proto = "icmp", icmp_type = 8, from = "10.0.0.0/24" },
  { proto = 47, from = "10.0.0.0/24" },
  { proto = "tcp", ports = "80", from = "2001:db8::/64" },
  { proto = "udp", from = "10.0.0.0/24" , source_ports = "7000" },
]
egress = [ { proto = "udp", ports = "9999", to = "0.0.0.0/0" } ]

[interfaces.client]
addresses = ["10.0.0.1", "2001:db8::1"]
security_groups = ["sg-client"]

[interfaces.server]
addresses = ["10.0.0.2", "2001:db8::2"]
security_groups = ["sg-server"]
"#;

const C: &str = "10.0.0.1";
const S: &str = "10.0.0.2";
const SEC: Nanos = 1_000_000_000;
const T0: Nanos = 1_700_000_000 * SEC;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn engine_with(text: &str) -> Engine {
    Engine::with_policy(Policy::from_toml(text, "test.toml").unwrap())
}

fn engine() -> Engine {
    engine_with(POLICY)
}

fn run(e: &mut Engine, frame: &[u8], t: Nanos) -> (Verdict, Reason) {
    let j = e.process(LinkType::Ethernet, frame, frame.len(), t);
    (j.verdict, j.reason)
}

fn tcp(src: &str, dst: &str, sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    build::tcp(ip(src), ip(dst), sport, dport, flags, 1, 1, b"")
}

const ALLOW_RULE: (Verdict, Reason) = (Verdict::Allow, Reason::Rule);
const EST: (Verdict, Reason) = (Verdict::Allow, Reason::Established);
const INVALID: (Verdict, Reason) = (Verdict::Deny, Reason::Invalid);
const NO_RULE: (Verdict, Reason) = (Verdict::Deny, Reason::NoRule);

#[test]
fn tcp_handshake_data_and_close() {
    let mut e = engine();
    assert_eq!(run(&mut e, &tcp(C, S, 40000, 80, SYN), T0), ALLOW_RULE);
    assert_eq!(run(&mut e, &tcp(S, C, 80, 40000, SYN | ACK), T0 + 1), EST);
    assert_eq!(run(&mut e, &tcp(C, S, 40000, 80, ACK), T0 + 2), EST);
    assert_eq!(run(&mut e, &tcp(C, S, 40000, 80, ACK | PSH), T0 + 3), EST);
    assert_eq!(run(&mut e, &tcp(S, C, 80, 40000, ACK | PSH), T0 + 4), EST);
    assert_eq!(
        e.conntrack().entries(),
        vec![(6, tcp::TcpState::Established, true)]
    );
    assert_eq!(run(&mut e, &tcp(C, S, 40000, 80, FIN | ACK), T0 + 5), EST);
    assert_eq!(run(&mut e, &tcp(S, C, 80, 40000, FIN | ACK), T0 + 6), EST);
    assert_eq!(run(&mut e, &tcp(C, S, 40000, 80, ACK), T0 + 7), EST);
    assert_eq!(e.conntrack().entries()[0].1, tcp::TcpState::TimeWait);
    // A new SYN on the closed connection is a new flow, judged by the rules.
    assert_eq!(run(&mut e, &tcp(C, S, 40000, 80, SYN), T0 + 8), ALLOW_RULE);
    assert_eq!(e.conntrack().entries()[0].1, tcp::TcpState::SynSent);
}

#[test]
fn replies_pass_by_conntrack_not_rules() {
    let mut e = engine();
    // The server's SG allows no inbound tcp/40000 and no outbound tcp at all.
    assert_eq!(run(&mut e, &tcp(S, C, 80, 40000, SYN | ACK), T0), INVALID);
    assert_eq!(run(&mut e, &tcp(S, C, 80, 40000, ACK), T0), NO_RULE);
    assert_eq!(run(&mut e, &tcp(C, S, 40000, 80, SYN), T0), ALLOW_RULE);
    assert_eq!(run(&mut e, &tcp(S, C, 80, 40000, SYN | ACK), T0), EST);
}

#[test]
fn denied_syn_opens_nothing() {
    let mut e = engine();
    assert_eq!(run(&mut e, &tcp(C, S, 40000, 81, SYN), T0), NO_RULE);
    assert!(e.conntrack().is_empty());
    assert_eq!(run(&mut e, &tcp(S, C, 81, 40000, SYN | ACK), T0), INVALID);
}

#[test]
fn loose_pickup_of_established_flows() {
    let mut e = engine();
    assert_eq!(
        run(&mut e, &tcp(C, S, 40001, 80, ACK | PSH), T0),
        ALLOW_RULE
    );
    assert_eq!(e.conntrack().entries()[0].1, tcp::TcpState::Established);
    assert_eq!(run(&mut e, &tcp(S, C, 80, 40001, ACK), T0 + 1), EST);
}

#[test]
fn invalid_first_packets() {
    for flags in [
        SYN | ACK,
        FIN,
        FIN | ACK,
        RST,
        RST | ACK,
        0,
        SYN | FIN,
        SYN | RST,
    ] {
        let mut e = engine();
        assert_eq!(
            run(&mut e, &tcp(C, S, 40000, 80, flags), T0),
            INVALID,
            "flags {flags:#x}"
        );
        assert!(e.conntrack().is_empty());
    }
}

#[test]
fn invalid_packets_inside_a_flow() {
    let mut e = engine();
    run(&mut e, &tcp(C, S, 40000, 80, SYN), T0);
    // Client can't send SYN and then SYN/ACK; nor ACK before the SYN/ACK.
    assert_eq!(
        run(&mut e, &tcp(C, S, 40000, 80, SYN | ACK), T0 + 1),
        INVALID
    );
    assert_eq!(run(&mut e, &tcp(C, S, 40000, 80, ACK), T0 + 1), INVALID);
    // A reply ACK in SYN_SENT is ignored by Linux: it passes, the state stays.
    assert_eq!(run(&mut e, &tcp(S, C, 80, 40000, ACK), T0 + 1), EST);
    assert_eq!(e.conntrack().entries()[0].1, tcp::TcpState::SynSent);
    // Simultaneous open.
    assert_eq!(run(&mut e, &tcp(S, C, 80, 40000, SYN), T0 + 1), EST);
    assert_eq!(e.conntrack().entries()[0].1, tcp::TcpState::SynSent2);
}

#[test]
fn rst_closes_with_the_transitory_timeout() {
    let mut e = engine();
    run(&mut e, &tcp(C, S, 40000, 80, SYN), T0);
    run(&mut e, &tcp(S, C, 80, 40000, SYN | ACK), T0);
    run(&mut e, &tcp(C, S, 40000, 80, ACK), T0);
    assert_eq!(run(&mut e, &tcp(S, C, 80, 40000, RST), T0 + SEC), EST);
    assert_eq!(e.conntrack().entries()[0].1, tcp::TcpState::Close);
    // Within tcp_transitory (120 s) of the RST a stray ACK still matches...
    assert_eq!(run(&mut e, &tcp(S, C, 80, 40000, ACK), T0 + 100 * SEC), EST);
    // ...and 120 s after the last packet the entry is gone: the reply is judged by rules.
    assert_eq!(
        run(&mut e, &tcp(S, C, 80, 40000, ACK), T0 + 220 * SEC),
        NO_RULE
    );
}

#[test]
fn a_rst_before_any_reply_deletes_the_entry() {
    // The server refuses: its RST passes, and the entry goes with it (as in
    // Linux), so what the server sends next is a new flow for the rules.
    let mut e = engine();
    run(&mut e, &tcp(C, S, 40001, 80, SYN), T0);
    assert_eq!(run(&mut e, &tcp(S, C, 80, 40001, RST | ACK), T0 + 1), EST);
    assert!(e.conntrack().is_empty());
    assert_eq!(run(&mut e, &tcp(S, C, 80, 40001, ACK), T0 + 2), NO_RULE);
    // The client gives up before any answer: the same.
    run(&mut e, &tcp(C, S, 40002, 80, SYN), T0 + 3);
    assert_eq!(run(&mut e, &tcp(C, S, 40002, 80, RST), T0 + 4), EST);
    assert!(e.conntrack().is_empty());
}

#[test]
fn tcp_timeouts_by_state() {
    let mut e = engine();
    run(&mut e, &tcp(C, S, 40000, 80, SYN), T0);
    // SYN_SENT uses tcp_transitory (120 s).
    assert_eq!(
        run(&mut e, &tcp(S, C, 80, 40000, SYN | ACK), T0 + 119 * SEC),
        EST
    );
    run(&mut e, &tcp(C, S, 40000, 80, ACK), T0 + 119 * SEC);
    // ESTABLISHED uses tcp_established (3600 s here).
    assert_eq!(
        run(&mut e, &tcp(S, C, 80, 40000, ACK), T0 + 3600 * SEC),
        EST
    );
    assert_eq!(
        run(&mut e, &tcp(S, C, 80, 40000, ACK), T0 + 7200 * SEC),
        NO_RULE
    );

    let mut e = engine();
    run(&mut e, &tcp(C, S, 40002, 80, SYN), T0);
    assert_eq!(
        run(&mut e, &tcp(S, C, 80, 40002, SYN | ACK), T0 + 120 * SEC),
        INVALID
    );
}

#[test]
fn udp_timeouts_and_streams() {
    let udp = |src: &str, dst: &str, sp, dp| build::udp(ip(src), ip(dst), sp, dp, b"q");
    let mut e = engine();
    assert_eq!(run(&mut e, &udp(C, S, 5353, 53), T0), ALLOW_RULE);
    assert_eq!(run(&mut e, &udp(S, C, 53, 5353), T0 + 29 * SEC), EST);
    // One packet each way: the udp timeout (30 s) applies.
    assert_eq!(run(&mut e, &udp(S, C, 53, 5353), T0 + 60 * SEC), NO_RULE);

    let mut e = engine();
    run(&mut e, &udp(C, S, 5354, 53), T0);
    run(&mut e, &udp(S, C, 53, 5354), T0 + SEC);
    run(&mut e, &udp(C, S, 5354, 53), T0 + 2 * SEC);
    run(&mut e, &udp(S, C, 53, 5354), T0 + 3 * SEC);
    // More than one packet each way: udp_stream (180 s).
    assert_eq!(run(&mut e, &udp(S, C, 53, 5354), T0 + 150 * SEC), EST);
    assert_eq!(run(&mut e, &udp(S, C, 53, 5354), T0 + 331 * SEC), NO_RULE);
}

#[test]
fn icmp_echo_by_identifier() {
    let mut e = engine();
    let req = build::echo(ip(C), ip(S), true, 7, 1);
    let rep = build::echo(ip(S), ip(C), false, 7, 1);
    assert_eq!(
        run(&mut e, &rep, T0),
        NO_RULE,
        "a reply without a request is judged by rules"
    );
    assert!(e.conntrack().is_empty());
    assert_eq!(run(&mut e, &req, T0), ALLOW_RULE);
    assert_eq!(run(&mut e, &rep, T0 + SEC), EST);
    // Another identifier is another flow.
    assert_eq!(
        run(&mut e, &build::echo(ip(S), ip(C), false, 8, 1), T0 + SEC),
        NO_RULE
    );
    // A request from the server with the requester's identifier does not ride on the entry.
    assert_eq!(
        run(&mut e, &build::echo(ip(S), ip(C), true, 7, 2), T0 + SEC),
        NO_RULE
    );
    // icmp timeout 30 s.
    assert_eq!(run(&mut e, &rep, T0 + 40 * SEC), NO_RULE);
}

#[test]
fn icmp_errors_relate_to_tracked_flows() {
    let mut e = engine();
    let query = build::udp(ip(C), ip(S), 5353, 53, b"q");
    let unreachable = build::icmp_error(ip(S), ip(C), 3, 3, &query);
    assert_eq!(
        run(&mut e, &unreachable, T0),
        NO_RULE,
        "no flow yet: judged by rules"
    );
    assert!(e.conntrack().is_empty());
    run(&mut e, &query, T0);
    assert_eq!(
        run(&mut e, &unreachable, T0 + SEC),
        (Verdict::Allow, Reason::Related)
    );
    // From a router on the path: still related.
    let ttl = build::icmp_error(ip("10.0.0.254"), ip(C), 11, 0, &query);
    assert_eq!(
        run(&mut e, &ttl, T0 + SEC),
        (Verdict::Allow, Reason::Related)
    );
    // Nor one about the client's query sent to another host: only the sender
    // of the quoted packet gets its errors (the server's rules allow no ICMP
    // type 3).
    let elsewhere = build::icmp_error(ip("10.0.0.254"), ip(S), 3, 1, &query);
    assert_eq!(run(&mut e, &elsewhere, T0 + SEC), NO_RULE);
    // An error quoting another flow is not.
    let other = build::icmp_error(
        ip(S),
        ip(C),
        3,
        3,
        &build::udp(ip(C), ip(S), 5353, 54, b"q"),
    );
    assert_eq!(run(&mut e, &other, T0 + SEC), NO_RULE);
}

#[test]
fn other_protocols_by_address_pair() {
    let mut e = engine();
    let gre = build::ip_other(ip(C), ip(S), 47, b"gre");
    let back = build::ip_other(ip(S), ip(C), 47, b"gre");
    assert_eq!(run(&mut e, &back, T0), NO_RULE);
    assert_eq!(run(&mut e, &gre, T0), ALLOW_RULE);
    assert_eq!(run(&mut e, &back, T0 + 599 * SEC), EST);
    assert_eq!(run(&mut e, &back, T0 + 1200 * SEC), NO_RULE);
}

#[test]
fn fragments_take_the_first_fragments_verdict() {
    let mut e = engine();
    let big = build::udp(ip(C), ip(S), 5353, 53, &[7u8; 100]);
    let frags = build::fragment_v4(&big, 32, 99);
    assert_eq!(frags.len(), 4);
    assert_eq!(run(&mut e, &frags[0], T0), ALLOW_RULE);
    for f in &frags[1..] {
        assert_eq!(run(&mut e, f, T0), (Verdict::Allow, Reason::Fragment));
    }
    // A denied first fragment: the rest are denied too.
    let denied = build::fragment_v4(&build::udp(ip(C), ip(S), 5353, 54, &[7u8; 100]), 32, 100);
    assert_eq!(run(&mut e, &denied[0], T0), NO_RULE);
    assert_eq!(
        run(&mut e, &denied[1], T0),
        (Verdict::Deny, Reason::Fragment)
    );
    // A later fragment with no first: unknown ports, only a rule covering every
    // port could allow it. The one udp rule without ports needs source port 7000.
    let orphan = build::fragment_v4(&build::udp(ip(C), ip(S), 7000, 53, &[7u8; 100]), 32, 101);
    assert_eq!(run(&mut e, &orphan[2], T0), NO_RULE);
}

#[test]
fn zones_keep_equal_flows_apart() {
    let mut e = engine_with(
        r#"
[security_groups.sg-web]
ingress = [ { proto = "tcp", ports = "80", from = "0.0.0.0/0" } ]
[interfaces.web-a]
addresses = ["10.9.0.2"]
security_groups = ["sg-web"]
zone = "vpce-0000000000000000a"
[interfaces.web-b]
addresses = ["10.9.0.2"]
zone = "vpce-0000000000000000b"
"#,
    );
    let gw = |inner: &[u8], endpoint: u64| {
        build::geneve_wrap(
            ip("192.168.1.1"),
            ip("192.168.1.2"),
            33333,
            inner,
            &build::aws_options(endpoint, 1, 5),
        )
    };
    let syn = tcp("10.9.0.1", "10.9.0.2", 40000, 80, SYN);
    let synack = tcp("10.9.0.2", "10.9.0.1", 80, 40000, SYN | ACK);
    let j = e.process(LinkType::Ethernet, &gw(&syn, 0xa), 0, T0);
    assert_eq!(
        (j.verdict, j.reason, j.zone()),
        (Verdict::Allow, Reason::Rule, Some(0xa))
    );
    assert_eq!(
        j.packet.unwrap().dst,
        ip("10.9.0.2"),
        "the inner packet is judged"
    );
    assert_eq!(run(&mut e, &gw(&synack, 0xa), T0), EST);
    // The same 5-tuple behind endpoint b is another flow, and web-b has no SG.
    assert_eq!(run(&mut e, &gw(&synack, 0xb), T0), INVALID);
    assert_eq!(run(&mut e, &gw(&syn, 0xb), T0), NO_RULE);
}

#[test]
fn with_when_full_refuse_a_full_table_denies_new_flows() {
    let mut e = engine_with(&POLICY.replace(
        "max_entries = 100",
        "max_entries = 2\nwhen_full = \"refuse\"",
    ));
    assert_eq!(run(&mut e, &tcp(C, S, 1, 80, SYN), T0), ALLOW_RULE);
    assert_eq!(run(&mut e, &tcp(C, S, 2, 80, SYN), T0), ALLOW_RULE);
    assert_eq!(
        run(&mut e, &tcp(C, S, 3, 80, SYN), T0),
        (Verdict::Deny, Reason::ConntrackFull)
    );
    // Tracked flows still pass.
    assert_eq!(run(&mut e, &tcp(S, C, 80, 1, SYN | ACK), T0), EST);
    // Once entries expire there is room again.
    assert_eq!(
        run(&mut e, &tcp(C, S, 3, 80, SYN), T0 + 121 * SEC),
        ALLOW_RULE
    );
    assert_eq!(e.stats().reason(Reason::ConntrackFull), 1);
    assert_eq!(e.stats().early_drops, 0);
}

#[test]
fn a_full_table_evicts_the_oldest_unassured_entry() {
    let mut e = engine_with(&POLICY.replace("max_entries = 100", "max_entries = 2"));
    assert_eq!(run(&mut e, &tcp(C, S, 1, 80, SYN), T0), ALLOW_RULE);
    assert_eq!(run(&mut e, &tcp(C, S, 2, 80, SYN), T0 + SEC), ALLOW_RULE);
    // Full: the third SYN takes the place of the oldest half-open flow.
    assert_eq!(
        run(&mut e, &tcp(C, S, 3, 80, SYN), T0 + 2 * SEC),
        ALLOW_RULE
    );
    assert_eq!(e.stats().early_drops, 1);
    assert_eq!(e.conntrack().len(), 2);
    // Flow 1 is gone (its SYN-ACK now comes from no state), 2 and 3 are there.
    assert_eq!(
        run(&mut e, &tcp(S, C, 80, 1, SYN | ACK), T0 + 3 * SEC),
        INVALID
    );
    assert_eq!(run(&mut e, &tcp(S, C, 80, 2, SYN | ACK), T0 + 3 * SEC), EST);
    assert_eq!(run(&mut e, &tcp(S, C, 80, 3, SYN | ACK), T0 + 3 * SEC), EST);
    assert_eq!(e.stats().reason(Reason::ConntrackFull), 0);
}

#[test]
fn a_half_open_flow_that_heard_back_outlives_older_ones_that_did_not() {
    let mut e = engine_with(&POLICY.replace("max_entries = 100", "max_entries = 3"));
    // A real client: SYN and SYN-ACK seen, its last ACK not yet.
    assert_eq!(run(&mut e, &tcp(C, S, 1, 80, SYN), T0), ALLOW_RULE);
    assert_eq!(run(&mut e, &tcp(S, C, 80, 1, SYN | ACK), T0), EST);
    // A flood of SYNs nobody answers, each newer than the client's entry
    // and than the one before (a millisecond apart: ties would leave the
    // victim to the table's hash order).
    for port in 2..200u16 {
        let at = T0 + SEC + u64::from(port) * 1_000_000;
        assert_eq!(run(&mut e, &tcp(C, S, port, 80, SYN), at), ALLOW_RULE);
    }
    assert_eq!(e.stats().early_drops, 196);
    // The flood evicted its own: the client's handshake completes.
    assert_eq!(run(&mut e, &tcp(C, S, 1, 80, ACK), T0 + 2 * SEC), EST);
    assert_eq!(run(&mut e, &tcp(S, C, 80, 1, ACK), T0 + 2 * SEC), EST);
    // Among the ones that heard nothing, the oldest went: 199 and 198 stay.
    assert_eq!(
        run(&mut e, &tcp(S, C, 80, 199, SYN | ACK), T0 + 2 * SEC),
        EST
    );
    assert_eq!(
        run(&mut e, &tcp(S, C, 80, 198, SYN | ACK), T0 + 2 * SEC),
        EST
    );
    assert_eq!(
        run(&mut e, &tcp(S, C, 80, 197, SYN | ACK), T0 + 2 * SEC),
        INVALID
    );
}

#[test]
fn assured_entries_are_never_evicted() {
    let mut e = engine_with(&POLICY.replace("max_entries = 100", "max_entries = 2"));
    // One full handshake and one picked-up flow that was answered: both assured.
    run(&mut e, &tcp(C, S, 1, 80, SYN), T0);
    run(&mut e, &tcp(S, C, 80, 1, SYN | ACK), T0);
    assert_eq!(run(&mut e, &tcp(C, S, 1, 80, ACK), T0), EST);
    assert_eq!(run(&mut e, &tcp(C, S, 2, 80, ACK), T0), ALLOW_RULE);
    assert_eq!(run(&mut e, &tcp(S, C, 80, 2, ACK), T0), EST);
    for port in 3..50 {
        assert_eq!(
            run(&mut e, &tcp(C, S, port, 80, SYN), T0 + SEC),
            (Verdict::Deny, Reason::ConntrackFull)
        );
    }
    assert_eq!(e.stats().early_drops, 0);
    // Both still pass, long after the transitory timeout (3600 s established).
    assert_eq!(run(&mut e, &tcp(S, C, 80, 1, ACK), T0 + 3000 * SEC), EST);
    assert_eq!(run(&mut e, &tcp(S, C, 80, 2, ACK), T0 + 3000 * SEC), EST);
}

#[test]
fn an_unassured_entry_gets_the_short_timeout() {
    let mut e = engine();
    // A picked-up flow nobody answers lives tcp_transitory (120 s), not 3600 s.
    assert_eq!(run(&mut e, &tcp(C, S, 40000, 80, ACK), T0), ALLOW_RULE);
    assert_eq!(run(&mut e, &tcp(C, S, 40000, 80, ACK), T0 + 119 * SEC), EST);
    assert_eq!(
        run(&mut e, &tcp(C, S, 40000, 80, ACK), T0 + 240 * SEC),
        ALLOW_RULE
    );
    // Answered, it is assured: 3600 s.
    assert_eq!(run(&mut e, &tcp(S, C, 80, 40000, ACK), T0 + 241 * SEC), EST);
    assert_eq!(
        run(&mut e, &tcp(C, S, 40000, 80, ACK), T0 + 3000 * SEC),
        EST
    );
    // A handshake that never completes: SYN_RECV is transitory too.
    let mut e = engine();
    run(&mut e, &tcp(C, S, 40001, 80, SYN), T0);
    assert_eq!(
        run(&mut e, &tcp(S, C, 80, 40001, SYN | ACK), T0 + 100 * SEC),
        EST
    );
    assert_eq!(
        run(&mut e, &tcp(C, S, 40001, 80, ACK), T0 + 221 * SEC),
        ALLOW_RULE
    );
    // UDP one way only: the udp timeout (30 s).
    let udp = |sp, dp| build::udp(ip(C), ip(S), sp, dp, b"q");
    let mut e = engine();
    assert_eq!(run(&mut e, &udp(5000, 53), T0), ALLOW_RULE);
    assert_eq!(run(&mut e, &udp(5000, 53), T0 + 29 * SEC), EST);
    assert_eq!(run(&mut e, &udp(5000, 53), T0 + 60 * SEC), ALLOW_RULE);
}

#[test]
fn non_ip_arp_neighbor_discovery_and_malformed() {
    let mut e = engine();
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&build::SRC_MAC);
    arp.extend_from_slice(&[0x08, 0x06]);
    arp.extend_from_slice(&[0; 28]);
    assert_eq!(run(&mut e, &arp, T0), (Verdict::Allow, Reason::Arp));
    let mut lldp = arp.clone();
    lldp[12..14].copy_from_slice(&[0x88, 0xcc]);
    assert_eq!(run(&mut e, &lldp, T0), (Verdict::Deny, Reason::NotIp));
    let ns = build::icmp(
        ip("2001:db8::1"),
        ip("2001:db8::2"),
        135,
        0,
        [0; 4],
        &[0; 20],
    );
    assert_eq!(
        run(&mut e, &ns, T0),
        (Verdict::Allow, Reason::NeighborDiscovery)
    );
    let syn = tcp(C, S, 1, 80, SYN);
    assert_eq!(
        run(&mut e, &syn[..40], T0),
        (Verdict::Deny, Reason::Malformed)
    );

    let mut strict = engine_with(&format!(
        "[settings]\nallow_arp = false\nallow_neighbor_discovery = false\n{}",
        &POLICY
    ));
    assert_eq!(run(&mut strict, &arp, T0), (Verdict::Deny, Reason::NotIp));
    assert_eq!(run(&mut strict, &ns, T0), NO_RULE);
}

#[test]
fn snap_length_cuts_are_not_malformed() {
    let mut e = engine();
    let syn = build::tcp(ip(C), ip(S), 1, 80, SYN, 1, 0, &[1u8; 200]);
    let j = e.process(LinkType::Ethernet, &syn[..80], syn.len(), T0);
    assert_eq!((j.verdict, j.reason), ALLOW_RULE);
    // But a length field beyond what was on the wire is.
    let j = e.process(LinkType::Ethernet, &syn[..80], 80, T0);
    assert_eq!(j.reason, Reason::Malformed);
}

#[test]
fn ipv6_flows() {
    let mut e = engine();
    assert_eq!(
        run(
            &mut e,
            &tcp("2001:db8::1", "2001:db8::2", 5000, 80, SYN),
            T0
        ),
        ALLOW_RULE
    );
    assert_eq!(
        run(
            &mut e,
            &tcp("2001:db8::2", "2001:db8::1", 80, 5000, SYN | ACK),
            T0
        ),
        EST
    );
}

#[test]
fn a_new_policy_keeps_established_flows() {
    let mut e = engine();
    run(&mut e, &tcp(C, S, 40000, 80, SYN), T0);
    let closed = POLICY.replace(
        r#"{ proto = "tcp", ports = "80", from = "10.0.0.0/24" },"#,
        "",
    );
    e.set_rules(Arc::new(Ruleset::reference(
        Policy::from_toml(&closed, "new.toml").unwrap(),
    )));
    assert_eq!(run(&mut e, &tcp(S, C, 80, 40000, SYN | ACK), T0 + 1), EST);
    assert_eq!(run(&mut e, &tcp(C, S, 40001, 80, SYN), T0 + 1), NO_RULE);
}

#[test]
fn every_packet_is_counted_once() {
    let mut e = engine();
    let frames = [
        tcp(C, S, 1, 80, SYN),
        tcp(C, S, 2, 81, SYN),
        vec![1, 2, 3],
        build::echo(ip(C), ip(S), true, 1, 1),
    ];
    for f in &frames {
        run(&mut e, f, T0);
    }
    let s = e.stats();
    assert_eq!(s.packets, 4);
    assert_eq!(s.allowed + s.denied, 4);
    assert_eq!(
        s.allowed_by_reason.iter().sum::<u64>() + s.denied_by_reason.iter().sum::<u64>(),
        4
    );
    assert_eq!((s.allowed, s.denied), (2, 2));
}

/// A sequence that touches every path: handshakes and data, replies, denied
/// flows, UDP, echo, other protocols, ICMP errors, fragments, IPv6, junk.
fn mixed_frames() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    for n in 0..40u16 {
        let sport = 40_000 + n;
        v.push(tcp(C, S, sport, 80, SYN));
        v.push(tcp(S, C, 80, sport, SYN | ACK));
        v.push(tcp(C, S, sport, 80, ACK | PSH));
        v.push(tcp(C, S, sport, 81 + n % 3, SYN));
        v.push(build::udp(ip(C), ip(S), sport, 53, b"q"));
        v.push(build::udp(ip(S), ip(C), 53, sport, b"a"));
        v.push(build::echo(ip(C), ip(S), true, n, 1));
        v.push(build::echo(ip(S), ip(C), false, n, 1));
        v.push(build::ip_other(ip(C), ip(S), 47, b"gre"));
        v.push(tcp("2001:db8::1", "2001:db8::2", sport, 80, SYN));
        v.push(tcp(S, C, 80, sport, ACK));
        if n % 5 == 0 {
            let quoted = build::udp(ip(S), ip(C), 53, sport, b"a");
            v.push(build::icmp_error(ip(C), ip(S), 3, 3, &quoted));
            let big = build::udp(ip(C), ip(S), sport, 53, &[9u8; 3000]);
            v.extend(build::fragment_v4(&big, 1000, n));
            v.push(vec![0xff; 10]);
        }
    }
    v
}

#[test]
fn staged_frames_are_judged_as_a_batch_is() {
    let frames = mixed_frames();
    let inputs: Vec<Input> = frames
        .iter()
        .enumerate()
        .map(|(i, f)| Input {
            link: LinkType::Ethernet,
            data: f,
            orig_len: f.len(),
            ts: T0 + i as Nanos * 1000,
        })
        .collect();
    // A table that never fills: which unassured entry a full table evicts
    // depends on each table's random hash seed, so engines would differ.
    let roomy = POLICY.replace("max_entries = 100\n", "max_entries = 100000\n");
    let engine = || engine_with(&roomy);
    let mut batch = engine();
    let mut want = Vec::new();
    for chunk in inputs.chunks(37) {
        batch.process_batch(chunk, &mut want);
    }
    // A batch judges as one frame at a time does.
    let mut single = engine();
    let one_by_one: Vec<Judgement> = inputs
        .iter()
        .map(|f| single.process(f.link, f.data, f.orig_len, f.ts))
        .collect();
    assert_eq!(want, one_by_one);
    assert_eq!(single.stats().rule_hits, batch.stats().rule_hits);
    // Staged by the engine's own stager, and by a stager of other rules
    // (whose decisions must not be used).
    let mut same = engine();
    let mut stager = same.stager();
    let mut other = engine();
    let mut foreign = engine_with(&roomy.replace("ports = \"80\"", "ports = \"1-65535\"")).stager();
    let (mut got_same, mut got_other) = (Vec::new(), Vec::new());
    let mut staged = StagedBatch::default();
    for chunk in inputs.chunks(37) {
        stager.stage(chunk, &mut staged);
        same.process_staged(
            stager.rules(),
            chunk,
            staged.slice(0..chunk.len()),
            &mut |j| got_same.push(*j),
        );
        foreign.stage(chunk, &mut staged);
        other.process_staged(
            foreign.rules(),
            chunk,
            staged.slice(0..chunk.len()),
            &mut |j| got_other.push(*j),
        );
    }
    assert_eq!(got_same.len(), frames.len());
    assert_eq!(got_same, want);
    assert_eq!(got_other, want);
    assert_eq!(same.stats().rule_hits, batch.stats().rule_hits);
    assert_eq!(same.stats().new_flows, batch.stats().new_flows);
    assert!(want.iter().any(|j| j.reason == Reason::Established));
    assert!(want.iter().any(|j| j.reason == Reason::NoRule));
}

/// A decider that counts how it is asked: the engine must decide a batch's
/// new flows through `decide_batch`, not one by one.
#[derive(Default)]
struct Counts {
    single: std::sync::atomic::AtomicUsize,
    batches: std::sync::atomic::AtomicUsize,
    flows: std::sync::atomic::AtomicUsize,
}

struct Counting(Arc<Counts>);

impl Decide for Counting {
    fn decide(&self, policy: &Policy, flow: &Flow) -> Evaluation {
        self.0
            .single
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        policy.evaluate(flow)
    }

    fn decide_batch(&self, policy: &Policy, flows: &[Flow], out: &mut Decisions) {
        self.0
            .batches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.0
            .flows
            .fetch_add(flows.len(), std::sync::atomic::Ordering::Relaxed);
        out.clear();
        for f in flows {
            out.push(policy.evaluate(f));
        }
    }
}

#[test]
fn a_batch_decides_its_new_flows_together() {
    use std::sync::atomic::Ordering::Relaxed;
    let counts = Arc::new(Counts::default());
    let rules = Arc::new(Ruleset {
        policy: Policy::from_toml(POLICY, "test.toml").unwrap(),
        decider: Box::new(Counting(Arc::clone(&counts))),
    });
    let mut e = Engine::new(rules);
    // 100 SYNs of new flows, then the server's answers (tracked: no decision).
    let syns: Vec<Vec<u8>> = (0..100).map(|i| tcp(C, S, 20_000 + i, 80, SYN)).collect();
    let acks: Vec<Vec<u8>> = (0..100)
        .map(|i| tcp(S, C, 80, 20_000 + i, SYN | ACK))
        .collect();
    let frames: Vec<Input> = syns
        .iter()
        .chain(&acks)
        .map(|f| Input {
            link: LinkType::Ethernet,
            data: f,
            orig_len: f.len(),
            ts: T0,
        })
        .collect();
    let mut out = Vec::new();
    e.process_batch(&frames, &mut out);
    assert!(out[..100]
        .iter()
        .all(|j| j.reason == Reason::Rule && j.verdict == Verdict::Allow));
    assert!(out[100..].iter().all(|j| j.reason == Reason::Established));
    assert_eq!(counts.single.load(Relaxed), 0);
    // One batch decision per staged chunk that holds SYNs.
    assert_eq!(counts.batches.load(Relaxed), 100usize.div_ceil(STAGE));
    assert_eq!(counts.flows.load(Relaxed), 100);
    assert_eq!(e.stats().new_flows, 100);
}

/// A GENEVE payload as GWLB sends it: the header with these options, then
/// the IP packet of `inner` (an Ethernet frame; shorter ones go whole).
fn geneve_payload(inner: &[u8], options: &[u8], protocol: Option<u16>) -> Vec<u8> {
    use crate::wire::{ethernet, geneve};
    let ip = inner.get(ethernet::HEADER_LEN..).unwrap_or(inner);
    let protocol = protocol.unwrap_or(match ip.first().map(|b| b >> 4) {
        Some(6) => ethernet::ether_type::IPV6,
        _ => ethernet::ether_type::IPV4,
    });
    let mut p = vec![0u8; geneve::HEADER_LEN + options.len()];
    geneve::emit(&mut p, 0, protocol, options).unwrap();
    p.extend_from_slice(ip);
    p
}

/// GENEVE payloads that touch every path: [`mixed_frames`] behind two
/// endpoints, and what GWLB mode refuses: every truncation of a few,
/// another version, the O bit, options past the end, no AWS options, an
/// unknown critical option (an unknown plain one passes), inner Ethernet,
/// an unknown protocol type.
fn mixed_geneve_payloads() -> Vec<Vec<u8>> {
    let aws = |endpoint| build::aws_options(endpoint, 7, 9);
    let mut v: Vec<Vec<u8>> = mixed_frames()
        .iter()
        .enumerate()
        .map(|(i, f)| geneve_payload(f, &aws(if i % 3 == 0 { 0xb } else { 0xe1 }), None))
        .collect();
    let syn = tcp(C, S, 41_000, 80, SYN);
    let good = geneve_payload(&syn, &aws(0xe1), None);
    for f in [&syn, &build::echo(ip(C), ip(S), true, 9, 9)] {
        let p = geneve_payload(f, &aws(0xe1), None);
        v.extend((0..p.len()).map(|len| p[..len].to_vec()));
    }
    let mut v1 = good.clone();
    v1[0] |= 0x40;
    let mut oam = good.clone();
    oam[1] |= 0x80;
    let mut past_end = good[..60].to_vec();
    past_end[0] = 0x3f;
    let with = |extra: [u8; 4]| [aws(0xe1), extra.to_vec()].concat();
    v.extend([
        v1,
        oam,
        past_end,
        geneve_payload(&syn, &[], None),
        geneve_payload(&syn, &with([0x09, 0x99, 0x81, 0]), None),
        geneve_payload(
            &tcp(C, S, 41_001, 80, SYN),
            &with([0x09, 0x99, 0x01, 0]),
            None,
        ),
        geneve_payload(&syn, &aws(0xe1), Some(0x6558)),
        geneve_payload(&syn, &aws(0xe1), Some(0x1234)),
        geneve_payload(&syn, &aws(0xe1)[..12], None),
        good,
    ]);
    v
}

/// The judgement of a whole packet with its offsets made relative to its
/// UDP payload (`headers` bytes in), as a GENEVE payload's are.
fn from_payload(mut j: Judgement, headers: u32) -> Judgement {
    if let Some(p) = j.packet {
        if let Some(t) = p.tunnel {
            assert_eq!(t.outer_ip_offset, Some(0));
        }
        j.packet = Some(p.past_outer_headers(headers));
    }
    j
}

/// The GWLB appliance's way in (a UDP payload and its outer ends) judges
/// every datagram as its old one did (the whole packet, outer headers
/// built in front): verdict, reason, rule, zone, the packet, the counters.
#[test]
fn a_geneve_payload_is_judged_as_the_packet_that_carried_it() {
    let zoned = POLICY.replace("max_entries = 100\n", "max_entries = 100000\n")
        + "[interfaces.server-b]\naddresses = [\"10.0.0.2\"]\nsecurity_groups = [\"sg-client\"]\n\
           zone = \"vpce-0000000000000000b\"\n";
    let payloads = mixed_geneve_payloads();
    let strict = ParseOptions {
        decap_geneve: true,
        decap_vxlan: true,
        gwlb_strict: true,
    };
    let families = [
        ("192.0.2.1:33000", "192.0.2.2:6081"),
        ("[2001:db8::1]:33000", "[2001:db8::2]:6081"),
    ];
    for opts in [strict, ParseOptions::default()] {
        for (peer, local) in families {
            let outer = OuterEnds {
                peer: peer.parse().unwrap(),
                local: local.parse().unwrap(),
            };
            let packets: Vec<Vec<u8>> = payloads
                .iter()
                .map(|p| {
                    let f = build::udp(outer.peer.ip(), outer.local.ip(), 33000, 6081, p);
                    f[14..].to_vec()
                })
                .collect();
            let ts = |i: usize| T0 + i as Nanos * 1000;
            let whole: Vec<Input> = packets
                .iter()
                .enumerate()
                .map(|(i, p)| Input {
                    link: LinkType::RawIp,
                    data: p,
                    orig_len: p.len(),
                    ts: ts(i),
                })
                .collect();
            let datagrams: Vec<GeneveInput> = payloads
                .iter()
                .enumerate()
                .map(|(i, p)| GeneveInput {
                    payload: p,
                    outer,
                    ts: ts(i),
                })
                .collect();
            let (mut old, mut new) = (engine_with(&zoned), engine_with(&zoned));
            old.set_parse_options(opts);
            new.set_parse_options(opts);
            let (mut want, mut got) = (Vec::new(), Vec::new());
            for chunk in whole.chunks(64) {
                old.process_batch(chunk, &mut want);
            }
            for chunk in datagrams.chunks(64) {
                new.process_geneve_batch(chunk, &mut got);
            }
            assert_eq!(got.len(), payloads.len());
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                let headers = (packets[i].len() - payloads[i].len()) as u32;
                assert_eq!(
                    *g,
                    from_payload(*w, headers),
                    "datagram {i} {opts:?} {peer}"
                );
            }
            // Every counter, bytes (outer headers included) and malformed
            // causes among them.
            assert_eq!(
                format!("{:?}", new.stats()),
                format!("{:?}", old.stats()),
                "{opts:?} {peer}"
            );
            let s = new.stats();
            assert!(
                s.malformed.get("GENEVE").copied().unwrap_or(0) > 20,
                "{s:?}"
            );
            for r in [
                Reason::Rule,
                Reason::Established,
                Reason::NoRule,
                Reason::Related,
            ] {
                assert!(s.reason(r) > 0, "{r:?} {s:?}");
            }
            let zones: std::collections::BTreeSet<_> =
                got.iter().filter_map(|j| j.zone()).collect();
            assert_eq!(zones.len(), 2, "{zones:?}");
        }
    }
}

#[test]
fn outer_ends_no_packet_could_have_are_malformed() {
    let mut e = engine();
    e.set_parse_options(ParseOptions {
        decap_geneve: true,
        decap_vxlan: true,
        gwlb_strict: true,
    });
    let p = geneve_payload(
        &tcp(C, S, 40_000, 80, SYN),
        &build::aws_options(1, 2, 3),
        None,
    );
    let outer = OuterEnds {
        peer: "192.0.2.1:33000".parse().unwrap(),
        local: "[2001:db8::2]:6081".parse().unwrap(),
    };
    let mut out = Vec::new();
    e.process_geneve_batch(
        &[GeneveInput {
            payload: &p,
            outer,
            ts: T0,
        }],
        &mut out,
    );
    assert_eq!(
        (out[0].verdict, out[0].reason),
        (Verdict::Deny, Reason::Malformed)
    );
    assert_eq!(e.stats().malformed.get("outer addresses"), Some(&1));
    assert_eq!(e.stats().bytes_denied, p.len() as u64);
}

/// Two peered VPCs with their own blocks: a connection from one to the
/// other is one entry, its reply `established` (VPC spaces, SPEC §6).
#[test]
fn a_flow_between_peered_vpcs_is_one_connection() {
    let p = Policy::from_toml(
        r#"
[vpcs.vpc-a]
cidrs = ["10.0.0.0/16"]
peers = ["vpc-c"]
[vpcs.vpc-b]
cidrs = ["10.1.0.0/16"]
[vpcs.vpc-c]
cidrs = ["10.2.0.0/16"]

[security_groups.sg-a]
vpc = "vpc-a"
egress = [ { proto = "all", to = "0.0.0.0/0" } ]
[security_groups.sg-c]
vpc = "vpc-c"
ingress = [ { proto = "tcp", ports = "80", from = "sg-a" } ]

[interfaces.eni-a]
vpc = "vpc-a"
addresses = ["10.0.1.20"]
security_groups = ["sg-a"]
[interfaces.eni-c]
vpc = "vpc-c"
addresses = ["10.2.1.10"]
security_groups = ["sg-c"]
"#,
        "peered.toml",
    )
    .unwrap();
    let mut engine = Engine::with_policy(p);
    let (client, server): (IpAddr, IpAddr) =
        ("10.0.1.20".parse().unwrap(), "10.2.1.10".parse().unwrap());
    let syn = build::tcp(client, server, 40000, 80, SYN, 1, 0, b"");
    let synack = build::tcp(server, client, 80, 40000, SYN | ACK, 9, 2, b"");
    let j = engine.process(LinkType::Ethernet, &syn, syn.len(), 1_000);
    assert_eq!((j.verdict, j.reason), (Verdict::Allow, Reason::Rule));
    assert_eq!(
        engine.policy().rule_name(j.rule.unwrap()).to_string(),
        "sg-c/ingress/0"
    );
    let j = engine.process(LinkType::Ethernet, &synack, synack.len(), 2_000);
    assert_eq!((j.verdict, j.reason), (Verdict::Allow, Reason::Established));
    // Port 81 from the same client: no rule of sg-c admits it.
    let other = build::tcp(client, server, 40001, 81, SYN, 1, 0, b"");
    let j = engine.process(LinkType::Ethernet, &other, other.len(), 3_000);
    assert_eq!((j.verdict, j.reason), (Verdict::Deny, Reason::NoRule));
}

/// vpc-a and vpc-b both use 10.0.0.0/16, each with a database at
/// 10.0.2.9 that admits tcp/5432 from a different subnet; eni-app-a, in
/// vpc-a, is listed with an address the mirrored packets do not carry.
const MIRRORED_VPCS: &str = r#"
[vpcs.vpc-a]
cidrs = ["10.0.0.0/16"]
[vpcs.vpc-b]
cidrs = ["10.0.0.0/16"]
[security_groups.sg-db-a]
vpc = "vpc-a"
ingress = [ { proto = "tcp", ports = "5432", from = "10.0.1.0/24" } ]
[security_groups.sg-db-b]
vpc = "vpc-b"
ingress = [ { proto = "tcp", ports = "5432", from = "10.0.9.0/24" } ]
[interfaces.eni-db-a]
vpc = "vpc-a"
addresses = ["10.0.2.9"]
security_groups = ["sg-db-a"]
[interfaces.eni-db-b]
vpc = "vpc-b"
addresses = ["10.0.2.9"]
security_groups = ["sg-db-b"]
[interfaces.eni-app-a]
vpc = "vpc-a"
addresses = ["10.0.3.3"]
security_groups = ["sg-db-a"]
"#;

/// `frame` as Traffic Mirroring session `vni` sends it to a collector.
fn mirror(frame: &[u8], vni: u32) -> Vec<u8> {
    build::vxlan_wrap(ip("192.168.0.1"), ip("192.168.0.2"), 50000, vni, frame)
}

fn mirrored_engine(sessions: &[(u32, &str)]) -> Engine {
    let mut p = Policy::from_toml(MIRRORED_VPCS, "test.toml").unwrap();
    for &(vni, eni) in sessions {
        p.mirror(vni, eni).unwrap();
    }
    Engine::with_policy(p)
}

#[test]
fn a_mirrored_packet_is_judged_in_its_sessions_vpc() {
    let syn = tcp("10.0.1.5", "10.0.2.9", 40000, 5432, SYN);
    let synack = tcp("10.0.2.9", "10.0.1.5", 5432, 40000, SYN | ACK);
    // The same packet, allowed as seen at vpc-a's database, denied at vpc-b's.
    let mut a = mirrored_engine(&[(7, "eni-db-a")]);
    let j = a.process(LinkType::Ethernet, &mirror(&syn, 7), 0, T0);
    assert_eq!((j.verdict, j.reason), ALLOW_RULE);
    assert_eq!(j.packet.unwrap().dst, ip("10.0.2.9"), "the inner packet");
    let mut b = mirrored_engine(&[(7, "eni-db-b")]);
    assert_eq!(run(&mut b, &mirror(&syn, 7), T0), NO_RULE);

    // Two sessions in one replay: their connections are kept apart.
    let mut both = mirrored_engine(&[(7, "eni-db-a"), (8, "eni-db-b")]);
    assert_eq!(run(&mut both, &mirror(&syn, 7), T0), ALLOW_RULE);
    assert_eq!(run(&mut both, &mirror(&synack, 8), T0), INVALID);
    assert_eq!(run(&mut both, &mirror(&synack, 7), T0), EST);
    assert_eq!(run(&mut both, &mirror(&syn, 8), T0), NO_RULE);

    // An unmapped VNI: the addresses decide, as for the inner frame alone.
    let mut plain = mirrored_engine(&[]);
    let alone = run(&mut plain, &syn, T0);
    let mut unmapped = mirrored_engine(&[(7, "eni-db-a")]);
    assert_eq!(run(&mut unmapped, &mirror(&syn, 9), T0), alone);

    // A session whose interface is neither end: judged in that interface's
    // VPC by the packet's addresses, as `--vpc vpc-a` judges it.
    let mut neither = mirrored_engine(&[(9, "eni-app-a")]);
    let mut p = Policy::from_toml(MIRRORED_VPCS, "test.toml").unwrap();
    p.judge_in_vpc("vpc-a").unwrap();
    let mut in_a = Engine::with_policy(p);
    assert_eq!(run(&mut in_a, &syn, T0), ALLOW_RULE);
    assert_eq!(run(&mut neither, &mirror(&syn, 9), T0), ALLOW_RULE);
}

#[test]
fn a_mirror_names_an_interface_of_the_policy_once() {
    use crate::policy::MirrorError;
    let mut p = Policy::from_toml(MIRRORED_VPCS, "test.toml").unwrap();
    assert_eq!(
        p.mirror(7, "eni-nope"),
        Err(MirrorError::UnknownInterface {
            vni: 7,
            name: "eni-nope".into()
        })
    );
    p.mirror(7, "eni-db-a").unwrap();
    p.mirror(7, "eni-db-a").unwrap();
    assert_eq!(p.mirrored(7), p.interface_id("eni-db-a"));
    assert!(matches!(
        p.mirror(7, "eni-db-b"),
        Err(MirrorError::Twice { .. })
    ));
    assert_eq!(p.mirrored(7), p.interface_id("eni-db-a"), "unchanged");
}

#[test]
fn two_engines_fed_the_same_flood_evict_the_same_entries() {
    // Many SYNs at one instant: the early drop's oldest unassured entry is
    // a tie among them all, settled by where the table put them. Both
    // engines hash with the same seed, so they settle it alike.
    let policy = POLICY.replace("max_entries = 100", "max_entries = 4");
    let (mut a, mut b) = (engine_with(&policy), engine_with(&policy));
    let mut frames = Vec::new();
    for round in 0..20u16 {
        // Four SYNs fill the table, a fifth evicts one of them: which one
        // shows in which SYN-ACK finds no entry.
        let ports = (1..=5).map(|p| round * 10 + p);
        frames.extend(ports.clone().map(|p| tcp(C, S, p, 80, SYN)));
        frames.extend(ports.map(|p| tcp(S, C, 80, p, SYN | ACK)));
        frames.extend((1..=5).map(|p| tcp(C, S, round * 10 + p, 80, RST)));
    }
    let judge = |e: &mut Engine| -> Vec<(Verdict, Reason)> {
        frames.iter().map(|f| run(e, f, T0)).collect()
    };
    let (ja, jb) = (judge(&mut a), judge(&mut b));
    assert_eq!(ja, jb);
    assert!(a.stats().early_drops >= 20);
    // Some SYN-ACKs found their SYN's entry and some did not: the choice of
    // victims mattered to the verdicts.
    assert!(ja.contains(&EST) && ja.contains(&INVALID), "{ja:?}");
}
