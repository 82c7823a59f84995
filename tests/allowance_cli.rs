//! A per-interface connection allowance (`conntrack_max`, SPEC §9.3) as a
//! replay shows it: the flows past it refused `conntrack-full`, and the
//! summary's allowance line (ENA's `conntrack_allowance_exceeded`).

use std::process::Command;
use std::time::Duration;

use pcap_file::pcap::{PcapPacket, PcapWriter};
use sgplane::wire::build;

const POLICY: &str = r#"
[security_groups.sg-web]
ingress = [ { proto = "tcp", ports = "443", from = "0.0.0.0/0" } ]
egress = [ { proto = "all", to = "0.0.0.0/0" } ]

[interfaces.eni-web]
addresses = ["10.0.1.10"]
security_groups = ["sg-web"]
conntrack_max = 2
"#;

#[test]
fn flows_past_an_interfaces_allowance_are_refused_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.toml"), POLICY).unwrap();
    let pcap = dir.path().join("in.pcap");
    let mut w = PcapWriter::new(std::fs::File::create(&pcap).unwrap()).unwrap();
    let server = "10.0.1.10".parse().unwrap();
    for i in 0..5u8 {
        let client = format!("198.51.100.{}", i + 1).parse().unwrap();
        let syn = build::tcp(client, server, 40000, 443, 0x02, 1, 0, b"");
        let ts = Duration::from_millis(1_700_000_000_000 + u64::from(i));
        w.write_packet(&PcapPacket::new(ts, syn.len() as u32, &syn))
            .unwrap();
    }
    drop(w);
    let out = Command::new(env!("CARGO_BIN_EXE_sgplane"))
        .args(["-c", "p.toml", "replay", "in.pcap", "--verdicts", "v.csv"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(0), "{text}");
    let csv = std::fs::read_to_string(dir.path().join("v.csv")).unwrap();
    let reasons: Vec<&str> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(3).unwrap())
        .collect();
    assert_eq!(
        reasons,
        [
            "rule",
            "rule",
            "conntrack-full",
            "conntrack-full",
            "conntrack-full"
        ],
        "{csv}"
    );
    assert!(
        text.contains("eni-web: 2 entries of 2, 0 available, 3 new flows refused"),
        "{text}"
    );
}
