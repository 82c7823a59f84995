//! `replay` on captures whose flows outnumber what the summary keeps: the
//! flow log per aggregation window (`--flow-log-interval`), distinct flows
//! counted once however often they repeat, and the top denied flows of a
//! scan with the bound they come with.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use pcap_file::pcap::{PcapPacket, PcapWriter};
use serde_json::Value;
use sgplane::wire::build;

const POLICY: &str = r#"
[security_groups.sg-client]
egress = [ { proto = "all", to = "0.0.0.0/0" } ]
[security_groups.sg-server]
ingress = [ { proto = "udp", ports = "53", from = "10.0.0.0/8" } ]
[interfaces.eni-client]
addresses = ["10.0.0.1"]
security_groups = ["sg-client"]
[interfaces.eni-server]
addresses = ["10.0.0.2"]
security_groups = ["sg-server"]
"#;

/// A multiple of 600 (and so of 60), in seconds.
const T0: u64 = 1_699_999_800;

fn v4(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(n))
}

const CLIENT: u32 = 0x0a00_0001;
const SERVER: u32 = 0x0a00_0002;

/// Writes (seconds since T0 in ms, frame) as a pcap.
fn write_pcap(path: &Path, frames: impl IntoIterator<Item = (u64, Vec<u8>)>) {
    let f = std::fs::File::create(path).unwrap();
    let mut w = PcapWriter::new(std::io::BufWriter::new(f)).unwrap();
    for (ms, frame) in frames {
        let ts = Duration::from_millis(T0 * 1000 + ms);
        w.write_packet(&PcapPacket::new(ts, frame.len() as u32, &frame))
            .unwrap();
    }
}

fn sgplane(dir: &Path, args: &[&str]) -> Output {
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    Command::new(env!("CARGO_BIN_EXE_sgplane"))
        .arg("-c")
        .arg(&policy)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run sgplane")
}

fn ok(o: &Output) -> String {
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    text
}

#[test]
fn flow_log_interval_60_writes_a_record_per_flow_and_minute() {
    let dir = tempfile::tempdir().unwrap();
    // One DNS flow, a query every 20 s for two minutes: windows of 3, 3 and 1 packets.
    let query = build::udp(v4(CLIENT), v4(SERVER), 5353, 53, b"q");
    write_pcap(
        &dir.path().join("in.pcap"),
        (0..7).map(|i| (i * 20_000, query.clone())),
    );
    let minute = |what: &str| {
        let args = [
            "replay",
            "in.pcap",
            "--flow-log",
            "flows.log",
            "--flow-log-interval",
            what,
        ];
        ok(&sgplane(dir.path(), &args));
        std::fs::read_to_string(dir.path().join("flows.log")).unwrap()
    };
    let log = minute("60");
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines[0].starts_with("version account-id"), "{log}");
    assert_eq!(lines.iter().filter(|l| l.starts_with("version")).count(), 1);
    // (packets, start, end) per window, on both interfaces, windows in order.
    let mut got: Vec<(String, u64, u64, u64)> = Vec::new();
    for l in &lines[1..] {
        let f: Vec<&str> = l.split(' ').collect();
        let n = |i: usize| f[i].parse::<u64>().unwrap();
        got.push((f[2].to_string(), n(8), n(10) - T0, n(11) - T0));
    }
    let want: Vec<(String, u64, u64, u64)> = [(3, 0, 40), (3, 60, 100), (1, 120, 120)]
        .iter()
        .flat_map(|&(p, s, e)| ["eni-client", "eni-server"].map(|i| (i.to_string(), p, s, e)))
        .collect();
    assert_eq!(got, want, "{log}");
    // Ten minutes (the default) hold the whole capture: one record per interface.
    let log = minute("600");
    assert_eq!(log.lines().count(), 3, "{log}");
    assert!(log.lines().nth(1).unwrap().contains(" 7 "), "{log}");
    // AWS allows no other interval.
    let o = sgplane(
        dir.path(),
        &["replay", "in.pcap", "--flow-log-interval", "300"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("60 or 600"));
}

#[test]
fn a_scan_is_summarised_with_its_bounds() {
    let dir = tempfile::tempdir().unwrap();
    // 10,000 scan probes (SYNs to closed ports), each sent 3 times, and one
    // source that hammers ssh 2,001 times: 32,001 denied packets.
    let mut frames = Vec::new();
    let mut t = 0;
    let mut heavy = 0u64;
    for _round in 0..3 {
        for i in 0..10_000u32 {
            let src = v4(0xc612_0000 | (i % 2_500));
            let dport = 1000 + (i / 2_500) as u16 * 7;
            frames.push((
                t,
                build::tcp(src, v4(SERVER), 40_000, dport, 0x02, 1, 0, b""),
            ));
            if i % 15 == 0 {
                let ssh = build::tcp(v4(0xcb00_7107), v4(SERVER), 50_000, 22, 0x02, 1, 0, b"");
                frames.push((t, ssh));
                heavy += 1;
            }
            t += 1;
        }
    }
    write_pcap(&dir.path().join("scan.pcap"), frames);
    let json: Value = serde_json::from_str(&ok(&sgplane(
        dir.path(),
        &["replay", "scan.pcap", "--json"],
    )))
    .unwrap();
    let n = |v: &Value| v.as_u64().unwrap();
    let denied = 30_000 + heavy;
    assert_eq!(n(&json["denied"]), denied);
    // Every SYN was decided by the rules, but there are 10,001 flows.
    assert_eq!(n(&json["new_flows"]), denied);
    assert_eq!(json["distinct_flows_exact"], false);
    let flows = n(&json["distinct_flows"]) as f64;
    let se = json["distinct_flows_standard_error"].as_f64().unwrap();
    assert!((se - 0.0081).abs() < 0.0001);
    assert!((flows - 10_001.0).abs() < 3.0 * se * 10_001.0, "{flows}");
    // The hammering source leads, counted exactly (it never lost its counter).
    let top = &json["top_denied"][0];
    assert_eq!(top["src"], "203.0.113.7");
    assert_eq!((n(&top["packets"]), n(&top["error"])), (heavy, 0));
    let bound = &json["top_denied_bound"];
    assert_eq!(bound["exact"], false);
    assert_eq!(n(&bound["counters"]), 1024);
    assert_eq!(n(&bound["denied_packets"]), denied);
    assert_eq!(n(&bound["listed_above"]), denied / 1024);
    // Every other listed count is a scan probe: 3 packets at most, however
    // much the counter it took says.
    for f in json["top_denied"].as_array().unwrap()[1..].iter() {
        assert!(n(&f["packets"]) - n(&f["error"]) <= 3, "{f}");
    }
    let text = ok(&sgplane(dir.path(), &["replay", "scan.pcap"]));
    assert!(
        text.contains("distinct (estimate, ±0.8% standard error)"),
        "{text}"
    );
    assert!(
        text.contains("top denied flows (approximate: 1024 counters over"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "  {heavy:>8} ±0        203.0.113.7 -> 10.0.0.2 tcp/22: no-rule"
        )),
        "{text}"
    );
}

#[test]
fn a_flow_log_past_its_record_limit_writes_skipdata_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    // Minute 0: 300 UDP flows from the client to a port the server does
    // not open (ACCEPT leaving the client, REJECT at the server: two
    // records a flow), the first one repeated; minute 1: 10 more flows.
    let flow = |sport: u16| build::udp(v4(CLIENT), v4(SERVER), sport, 54, b"x");
    let mut frames: Vec<(u64, Vec<u8>)> = (0..300u16)
        .map(|i| (u64::from(i) * 100, flow(1000 + i)))
        .collect();
    frames.push((40_000, flow(1000)));
    frames.extend((0..10u16).map(|i| (60_000 + u64::from(i), flow(2000 + i))));
    let packets = frames.len() as u64;
    write_pcap(&dir.path().join("in.pcap"), frames);
    let args = [
        "replay",
        "in.pcap",
        "--flow-log",
        "flows.log",
        "--flow-log-interval",
        "60",
        "--flow-log-max-records",
        "100",
        "--json",
    ];
    let report: Value = serde_json::from_str(&ok(&sgplane(dir.path(), &args))).unwrap();
    let log = std::fs::read_to_string(dir.path().join("flows.log")).unwrap();
    let lines: Vec<Vec<&str>> = log
        .lines()
        .skip(1)
        .map(|l| l.split(' ').collect())
        .collect();
    let minute = |l: &Vec<&str>| (l[10].parse::<u64>().unwrap() - T0) / 60;
    let (ok_lines, skip_lines): (Vec<_>, Vec<_>) = lines.iter().partition(|l| l[13] == "OK");
    // Minute 0 holds 100 records (50 flows at two interfaces); the first
    // flow, recorded, counts its repeat.
    assert_eq!(
        ok_lines.iter().filter(|l| minute(l) == 0).count(),
        100,
        "{log}"
    );
    let first: Vec<_> = ok_lines.iter().filter(|l| l[5] == "1000").collect();
    assert_eq!(first.len(), 2, "{log}");
    assert!(first.iter().all(|l| l[8] == "2"), "{log}");
    // The other 250 flows: one SKIPDATA record per interface, after the
    // window's records, with the times of their packets.
    assert_eq!(skip_lines.len(), 2, "{log}");
    for l in &skip_lines {
        assert_eq!(&l[3..10], ["-"; 7], "{log}");
        assert_eq!(l[12], "-", "{log}");
        assert_eq!(minute(l), 0, "{log}");
        assert_eq!(l[10].parse::<u64>().unwrap(), T0 + 5, "{log}");
        assert_eq!(l[11].parse::<u64>().unwrap(), T0 + 29, "{log}");
    }
    let last_of_minute_0 = lines.iter().rposition(|l| minute(l) == 0).unwrap();
    assert_eq!(lines[last_of_minute_0][13], "SKIPDATA", "{log}");
    // Minute 1 has room again once minute 0 is written.
    assert_eq!(
        ok_lines.iter().filter(|l| minute(l) == 1).count(),
        20,
        "{log}"
    );
    // Every packet is in a record or counted as skipped, at both interfaces.
    let recorded: u64 = ok_lines.iter().map(|l| l[8].parse::<u64>().unwrap()).sum();
    let skipped = report["flow_log_skipped"]["packets"].as_u64().unwrap();
    assert_eq!(skipped, 500, "{report}");
    assert_eq!(recorded + skipped, 2 * packets, "{log}");
    assert_eq!(report["flow_log_skipped"]["max_records"], 100);
    // The text summary says it and how to change it.
    let text = ok(&sgplane(dir.path(), &args[..8]));
    assert!(
        text.contains("500  packets of flows past its 100 records held went to SKIPDATA records (--flow-log-max-records)"),
        "{text}"
    );
    // Without a limit reached nothing is said.
    let args = ["replay", "in.pcap", "--flow-log", "flows.log", "--json"];
    let report: Value = serde_json::from_str(&ok(&sgplane(dir.path(), &args))).unwrap();
    assert!(report.get("flow_log_skipped").is_none(), "{report}");
    assert!(!std::fs::read_to_string(dir.path().join("flows.log"))
        .unwrap()
        .contains("SKIPDATA"));
}
