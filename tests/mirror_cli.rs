//! AWS Traffic Mirroring from the command line (SPEC §10): VXLAN captures
//! replayed with `--mirror VNI=ENI`, each session judged in the VPC of the
//! interface it mirrors; bad sessions are refused.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use pcap_file::pcap::{PcapPacket, PcapWriter};
use sgplane::wire::build;

/// vpc-a and vpc-b both use 10.0.0.0/16; each has a database at 10.0.2.9
/// admitting tcp/5432 from a different subnet.
const POLICY: &str = r#"
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
[interfaces.eni-0aaa]
vpc = "vpc-a"
addresses = ["10.0.2.9"]
security_groups = ["sg-db-a"]
[interfaces.eni-0bbb]
vpc = "vpc-b"
addresses = ["10.0.2.9"]
security_groups = ["sg-db-b"]
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

/// The same SYN mirrored by session 7 and by session 8, to a collector.
fn write_capture(path: &Path) {
    let ip = |s: &str| s.parse().unwrap();
    let syn = build::tcp(ip("10.0.1.5"), ip("10.0.2.9"), 40000, 5432, 0x02, 1, 0, b"");
    let mirror = |vni| build::vxlan_wrap(ip("192.168.0.1"), ip("192.168.0.2"), 50000, vni, &syn);
    let mut w = PcapWriter::new(std::fs::File::create(path).unwrap()).unwrap();
    for (i, f) in [mirror(7), mirror(8)].iter().enumerate() {
        let ts = Duration::from_millis(1_700_000_000_000 + i as u64);
        w.write_packet(&PcapPacket::new(ts, f.len() as u32, f))
            .unwrap();
    }
}

#[test]
fn replay_judges_each_mirror_session_at_its_interface() {
    let dir = tempfile::tempdir().unwrap();
    write_capture(&dir.path().join("mirror.pcap"));
    let o = sgplane(
        dir.path(),
        &[
            "replay",
            "mirror.pcap",
            "--mirror",
            "7=eni-0aaa",
            "--mirror",
            "0x8=eni-0bbb",
            "--verdicts",
            "out.csv",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let csv = std::fs::read_to_string(dir.path().join("out.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{csv}");
    // The inner addresses; the same packet allowed in vpc-a, denied in vpc-b.
    for r in &rows {
        assert!(r.contains(",10.0.1.5,10.0.2.9,"), "{csv}");
    }
    assert!(
        rows[0].contains(",allow,rule,sg-db-a/ingress/0,eni-0aaa,"),
        "{csv}"
    );
    assert!(rows[1].contains(",deny,no-rule,,eni-0bbb,ingress"), "{csv}");
    // The zone column names the VPC each session's packet was judged in.
    assert!(rows[0].ends_with(",vpc-a"), "{csv}");
    assert!(rows[1].ends_with(",vpc-b"), "{csv}");
    // So does the summary's denied flow, and the same addresses in two VPCs
    // are two distinct flows.
    let summary = String::from_utf8_lossy(&o.stdout);
    assert!(
        summary
            .lines()
            .any(|l| l.contains("10.0.1.5 -> 10.0.2.9") && l.contains("[vpc-b]")),
        "{summary}"
    );
    assert!(summary.contains("flows                    2"), "{summary}");
}

#[test]
fn a_bad_mirror_session_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_capture(&dir.path().join("mirror.pcap"));
    for (arg, says) in [
        ("7=eni-0zzz", "the policy has no interface `eni-0zzz`"),
        ("7", "is not VNI=ENI"),
        ("x=eni-0aaa", "VNI `x` is not a number"),
        ("16777216=eni-0aaa", "VNI `16777216` is not a number"),
        ("7=", "names no interface"),
    ] {
        let o = sgplane(dir.path(), &["replay", "mirror.pcap", "--mirror", arg]);
        assert_eq!(o.status.code(), Some(2), "{arg}: {}", text(&o));
        assert!(text(&o).contains(says), "{arg}: {}", text(&o));
    }
    let o = sgplane(
        dir.path(),
        &[
            "replay",
            "mirror.pcap",
            "--mirror",
            "7=eni-0aaa",
            "--mirror",
            "7=eni-0bbb",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("VNI 7 already mirrors `eni-0aaa`"),
        "{}",
        text(&o)
    );
}
