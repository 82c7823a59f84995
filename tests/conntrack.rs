//! Connection tracking over long and crowded captures: a timeout is exact
//! across any gap between packets (here 20 days across 100), and a table
//! filled by a SYN flood still lets real clients in and keeps every
//! established flow (early drop of unassured entries, SPEC §2.8).

use std::io::Cursor;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use pcap_file::pcap::{PcapPacket, PcapWriter};
use sgplane::engine::Engine;
use sgplane::policy::{Policy, Reason, Verdict};
use sgplane::replay::{replay, Outputs};
use sgplane::wire::build;
use sgplane::wire::packet::LinkType;

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH_ACK: u8 = 0x18;
const SYN_ACK: u8 = 0x12;

const POLICY: &str = r#"
[conntrack]
max_entries = 1000
tcp_established = 1728000   # 20 days

[security_groups.sg-web]
ingress = [ { proto = "tcp", ports = "80", from = "0.0.0.0/0" } ]

[interfaces.web]
addresses = ["10.0.0.2"]
security_groups = ["sg-web"]
"#;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn policy(text: &str) -> Policy {
    Policy::from_toml(text, "conntrack.toml").unwrap()
}

fn capture(frames: &[(Duration, Vec<u8>)]) -> Vec<u8> {
    let mut w = PcapWriter::new(Vec::new()).unwrap();
    for (t, f) in frames {
        w.write_packet(&PcapPacket::new(*t, f.len() as u32, f))
            .unwrap();
    }
    w.into_writer()
}

/// (verdict, reason) of every packet of a replayed capture, from `--verdicts`.
fn replayed(text: &str, frames: &[(Duration, Vec<u8>)]) -> Vec<(String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let out = Outputs {
        verdicts: Some(dir.path().join("v.jsonl")),
        ..Default::default()
    };
    let mut engine = Engine::with_policy(policy(text));
    replay(
        &mut engine,
        Cursor::new(capture(frames)),
        "gen",
        &out,
        None,
        None,
    )
    .unwrap();
    std::fs::read_to_string(dir.path().join("v.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let s = |k: &str| v[k].as_str().unwrap().to_string();
            (s("verdict"), s("reason"))
        })
        .collect()
}

#[test]
fn a_20_day_timeout_holds_for_19_days_and_expires_across_100() {
    let (c, s) = (ip("198.51.100.7"), ip("10.0.0.2"));
    let day = |d: u64| Duration::from_secs(1_700_000_000 + d * 86_400);
    let tcp = |from_client: bool, flags: u8| {
        if from_client {
            build::tcp(c, s, 40000, 80, flags, 1, 1, b"")
        } else {
            build::tcp(s, c, 80, 40000, flags, 1, 1, b"")
        }
    };
    let frames = [
        (day(0), tcp(true, SYN)),
        (day(0), tcp(false, SYN_ACK)),
        (day(0), tcp(true, ACK)),
        // 19 days of silence: within the 20-day timeout.
        (day(19), tcp(false, PSH_ACK)),
        // 100 more days: long expired. The server's packet is a new flow
        // (its egress has no rule), and so is the client's next ACK.
        (day(119), tcp(false, PSH_ACK)),
        (day(119), tcp(true, ACK)),
    ];
    let got = replayed(POLICY, &frames);
    let want = [
        ("allow", "rule"),
        ("allow", "established"),
        ("allow", "established"),
        ("allow", "established"),
        ("deny", "no-rule"),
        ("allow", "rule"),
    ];
    let got: Vec<(&str, &str)> = got.iter().map(|(v, r)| (v.as_str(), r.as_str())).collect();
    assert_eq!(got, want);
}

/// What happened to the real clients of a flood.
struct Flood {
    /// Clients whose handshake and first data went through.
    connected: usize,
    /// Packets of connected clients denied afterwards.
    broken: usize,
    early_drops: u64,
    refused: u64,
}

/// An engine fed one packet every 0.1 ms (the whole flood takes 2.1 s: no
/// timeout helps), and a source of spoofed SYNs to the server's allowed port.
struct Sim {
    e: Engine,
    t: u64,
    spoofed: u32,
}

const SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

impl Sim {
    fn send(&mut self, frame: Vec<u8>) -> (Verdict, Reason) {
        self.t += 100_000;
        let j = self
            .e
            .process(LinkType::Ethernet, &frame, frame.len(), self.t);
        (j.verdict, j.reason)
    }

    /// `n` SYNs, each from a source never seen before (in 172.16.0.0/12), never answered.
    fn syns(&mut self, n: usize) {
        for _ in 0..n {
            let src = IpAddr::V4(Ipv4Addr::from(0xac10_0000 + self.spoofed));
            let sport = 1024 + (self.spoofed % 60_000) as u16;
            self.spoofed += 1;
            let (v, r) = self.send(build::tcp(src, SERVER, sport, 80, SYN, 1, 0, b""));
            assert!(v == Verdict::Allow || r == Reason::ConntrackFull, "{r}");
        }
    }
}

/// `max_entries = 1000`; 20,000 spoofed SYNs to the allowed port, never
/// answered, from distinct sources, interleaved with 200 real clients that
/// complete their handshakes and exchange data, then talk once more at the end.
fn flood(text: &str) -> Flood {
    const EST: (Verdict, Reason) = (Verdict::Allow, Reason::Established);
    let mut sim = Sim {
        e: Engine::with_policy(policy(text)),
        t: 1_700_000_000_000_000_000,
        spoofed: 0,
    };
    let client = |i: usize| IpAddr::V4(Ipv4Addr::new(198, 51, 100, i as u8 + 1));
    let to_server =
        |i, flags, data: &[u8]| build::tcp(client(i), SERVER, 40000, 80, flags, 1, 1, data);
    let to_client =
        |i, flags, data: &[u8]| build::tcp(SERVER, client(i), 80, 40000, flags, 1, 1, data);
    let mut connected = Vec::new();
    for i in 0..200 {
        sim.syns(50);
        let syn = sim.send(to_server(i, SYN, b""));
        // Flood SYNs while the SYN-ACK, the ACK and the data are on their way.
        sim.syns(10);
        let synack = sim.send(to_client(i, SYN_ACK, b""));
        sim.syns(10);
        let ack = sim.send(to_server(i, ACK, b""));
        sim.syns(10);
        let req = sim.send(to_server(i, PSH_ACK, b"GET / HTTP/1.1\r\n\r\n"));
        sim.syns(20);
        let resp = sim.send(to_client(i, PSH_ACK, b"HTTP/1.1 200 OK\r\n\r\n"));
        if syn == (Verdict::Allow, Reason::Rule) && [synack, ack, req, resp] == [EST; 4] {
            connected.push(i);
        }
    }
    assert_eq!(sim.spoofed, 20_000);
    // Every established flow is still there after the whole flood.
    let mut broken = 0;
    for &i in &connected {
        broken += usize::from(sim.send(to_server(i, PSH_ACK, b"more")) != EST);
        broken += usize::from(sim.send(to_client(i, PSH_ACK, b"ok")) != EST);
    }
    assert!(sim.e.conntrack().len() <= 1000);
    let stats = sim.e.stats();
    Flood {
        connected: connected.len(),
        broken,
        early_drops: stats.early_drops,
        refused: stats.reason(Reason::ConntrackFull),
    }
}

#[test]
fn real_clients_get_through_a_syn_flood_and_established_flows_survive() {
    let f = flood(POLICY);
    assert!(
        f.connected >= 198,
        "only {} of 200 real clients got through",
        f.connected
    );
    assert_eq!(f.broken, 0, "established flows were evicted");
    // The table filled after 1000 SYNs; every new flow after that evicted one.
    assert!(f.early_drops >= 19_000, "{} early drops", f.early_drops);
    assert_eq!(f.refused, 0);
}

#[test]
fn with_when_full_refuse_the_flood_locks_real_clients_out() {
    let f = flood(&POLICY.replace(
        "max_entries = 1000",
        "max_entries = 1000\nwhen_full = \"refuse\"",
    ));
    // AWS's behaviour: once the flood has filled the table nothing new gets in.
    assert!(
        f.connected <= 20,
        "{} of 200 real clients got through",
        f.connected
    );
    assert_eq!(f.broken, 0);
    assert_eq!(f.early_drops, 0);
    assert!(f.refused >= 19_000, "{} refused", f.refused);
}

#[test]
fn a_full_table_of_assured_flows_refuses_new_ones() {
    let mut e = Engine::with_policy(policy(
        &POLICY.replace("max_entries = 1000", "max_entries = 50"),
    ));
    let server = SERVER;
    let run = |e: &mut Engine, f: Vec<u8>| {
        let j = e.process(LinkType::Ethernet, &f, f.len(), 1_700_000_000_000_000_000);
        (j.verdict, j.reason)
    };
    for port in 0..50u16 {
        let c = ip("198.51.100.1");
        run(
            &mut e,
            build::tcp(c, server, 10000 + port, 80, SYN, 1, 0, b""),
        );
        run(
            &mut e,
            build::tcp(server, c, 80, 10000 + port, SYN_ACK, 1, 1, b""),
        );
        run(
            &mut e,
            build::tcp(c, server, 10000 + port, 80, ACK, 1, 1, b""),
        );
    }
    assert_eq!(e.conntrack().len(), 50);
    for n in 0..500u32 {
        let src = IpAddr::V4(Ipv4Addr::from(0xac10_0000 + n));
        assert_eq!(
            run(&mut e, build::tcp(src, server, 1024, 80, SYN, 1, 0, b"")),
            (Verdict::Deny, Reason::ConntrackFull)
        );
    }
    assert_eq!(e.stats().early_drops, 0);
    assert_eq!(e.conntrack().len(), 50);
}
