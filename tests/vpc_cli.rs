//! VPCs as address spaces from the command line (SPEC §6): the same CIDR in
//! two VPCs, `explain --vpc` and `replay --vpc`, and a VPC that is not there.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use pcap_file::pcap::{PcapPacket, PcapWriter};
use sgplane::wire::build;

/// vpc-a and vpc-b both use 10.0.0.0/16: in vpc-a the web server admits
/// tcp/80 from its VPC, in vpc-b the server with the same address admits
/// nothing.
const POLICY: &str = r#"
[vpcs.vpc-a]
cidrs = ["10.0.0.0/16"]
[vpcs.vpc-b]
cidrs = ["10.0.0.0/16"]

[security_groups.sg-web-a]
vpc = "vpc-a"
ingress = [ { proto = "tcp", ports = "80", from = "10.0.0.0/16" } ]
egress = [ { proto = "all", to = "0.0.0.0/0" } ]
[security_groups.sg-closed-b]
vpc = "vpc-b"
egress = [ { proto = "all", to = "0.0.0.0/0" } ]

[interfaces.eni-client-a]
vpc = "vpc-a"
addresses = ["10.0.1.5"]
security_groups = ["sg-web-a"]
[interfaces.eni-web-a]
vpc = "vpc-a"
addresses = ["10.0.1.10"]
security_groups = ["sg-web-a"]
[interfaces.eni-client-b]
vpc = "vpc-b"
addresses = ["10.0.1.5"]
security_groups = ["sg-closed-b"]
[interfaces.eni-web-b]
vpc = "vpc-b"
addresses = ["10.0.1.10"]
security_groups = ["sg-closed-b"]
"#;

fn sgplane(dir: &Path, args: &[&str]) -> Output {
    let policy = dir.join("vpcs.toml");
    std::fs::write(&policy, POLICY).unwrap();
    Command::new(env!("CARGO_BIN_EXE_sgplane"))
        .arg("-c")
        .arg(&policy)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run sgplane")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

const FLOW: &[&str] = &[
    "explain",
    "--src",
    "10.0.1.5",
    "--dst",
    "10.0.1.10",
    "--proto",
    "tcp",
    "--dport",
    "80",
];

#[test]
fn explain_judges_the_flow_in_the_vpc_named() {
    let dir = tempfile::tempdir().unwrap();
    let a = sgplane(dir.path(), &[FLOW, &["--vpc", "vpc-a"]].concat());
    assert_eq!(a.status.code(), Some(0), "{}", text(&a));
    assert!(
        text(&a).contains("sg-web-a/ingress/0 (eni-web-a ingress)"),
        "{}",
        text(&a)
    );
    let b = sgplane(dir.path(), &[FLOW, &["--vpc", "vpc-b"]].concat());
    assert_eq!(b.status.code(), Some(1), "{}", text(&b));
    assert!(
        text(&b).contains("no rule of eni-web-b ingress matches"),
        "{}",
        text(&b)
    );
    // Without --vpc the addresses do not say which VPC: neither end is known.
    let none = sgplane(dir.path(), FLOW);
    assert_eq!(none.status.code(), Some(1), "{}", text(&none));
    assert!(text(&none).contains("unknown-address"), "{}", text(&none));
    let bad = sgplane(dir.path(), &[FLOW, &["--vpc", "vpc-z"]].concat());
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad).contains("unknown VPC `vpc-z` (known: vpc-a, vpc-b)"),
        "{}",
        text(&bad)
    );
}

#[test]
fn replay_judges_every_packet_in_the_vpc_named() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("in.pcap");
    let (c, s) = ("10.0.1.5".parse().unwrap(), "10.0.1.10".parse().unwrap());
    let frames = [
        build::tcp(c, s, 40000, 80, 0x02, 1, 0, b""),
        build::tcp(s, c, 80, 40000, 0x12, 7, 2, b""),
    ];
    let mut w = PcapWriter::new(std::fs::File::create(&pcap).unwrap()).unwrap();
    for (i, f) in frames.iter().enumerate() {
        let ts = Duration::from_millis(1_700_000_000_000 + i as u64);
        w.write_packet(&PcapPacket::new(ts, f.len() as u32, f))
            .unwrap();
    }
    drop(w);
    let verdicts = |vpc: &str| -> String {
        let out = dir.path().join(format!("{vpc}.csv"));
        let o = sgplane(
            dir.path(),
            &[
                "replay",
                "in.pcap",
                "--vpc",
                vpc,
                "--verdicts",
                out.to_str().unwrap(),
            ],
        );
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        std::fs::read_to_string(out).unwrap()
    };
    let a = verdicts("vpc-a");
    let rows: Vec<&str> = a.lines().skip(1).collect();
    assert!(
        rows[0].contains(",allow,rule,sg-web-a/ingress/0,eni-web-a,"),
        "{a}"
    );
    assert!(rows[1].contains(",allow,established,"), "{a}");
    let b = verdicts("vpc-b");
    let rows: Vec<&str> = b.lines().skip(1).collect();
    assert!(rows[0].contains(",deny,no-rule,,eni-web-b,ingress"), "{b}");
    let o = sgplane(dir.path(), &["replay", "in.pcap", "--vpc", "vpc-q"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("unknown VPC `vpc-q`"), "{}", text(&o));
}

/// The same 5-tuple recorded at the web servers of both VPCs, once each.
const FLOW_LOG: &str = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status
2 123456789012 eni-web-a 10.0.1.5 10.0.1.10 40000 80 6 5 500 1700000000 1700000060 ACCEPT OK
2 123456789012 eni-web-b 10.0.1.5 10.0.1.10 40000 80 6 5 500 1700000000 1700000060 REJECT OK
";

#[test]
fn flow_log_records_are_compared_and_written_in_their_vpc() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("flows.log"), FLOW_LOG).unwrap();
    // The new policy closes vpc-a's web server and opens vpc-b's.
    let new = POLICY
        .replace(
            "ingress = [ { proto = \"tcp\", ports = \"80\", from = \"10.0.0.0/16\" } ]\n",
            "",
        )
        .replace(
            "vpc = \"vpc-b\"\negress",
            "vpc = \"vpc-b\"\ningress = [ { proto = \"tcp\", ports = \"80\", from = \"10.0.0.0/16\" } ]\negress",
        );
    assert_ne!(new, POLICY);
    std::fs::write(dir.path().join("new.toml"), new).unwrap();
    let o = sgplane(
        dir.path(),
        &[
            "replay",
            "flows.log",
            "--compare",
            "new.toml",
            "--json",
            "--verdicts",
            "v.jsonl",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let c = &s["compare"];
    // One connection each way, told apart by the VPC they were judged in.
    assert_eq!(c["newly_denied_flows"], 1, "{c}");
    assert_eq!(c["newly_allowed_flows"], 1, "{c}");
    assert_eq!(c["newly_denied"][0]["zone"], "vpc-a", "{c}");
    assert_eq!(c["newly_allowed"][0]["zone"], "vpc-b", "{c}");
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(dir.path().join("v.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let zones: Vec<_> = lines.iter().map(|l| l["zone"].clone()).collect();
    assert_eq!(zones, ["vpc-a", "vpc-b"], "{lines:?}");
    assert_eq!(lines[0]["verdict"], "allow");
    assert_eq!(lines[1]["verdict"], "deny");
}
