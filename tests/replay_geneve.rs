//! GENEVE in captures: the inner packet is judged in its endpoint's zone, and
//! `--allowed` holds the packets as the appliance would return them.

use std::io::Cursor;
use std::net::IpAddr;
use std::time::Duration;

use pcap_file::pcap::{PcapPacket, PcapReader, PcapWriter};
use sgplane::engine::Engine;
use sgplane::policy::Policy;
use sgplane::replay::{replay, Outputs};
use sgplane::wire::build;
use sgplane::wire::packet::checksum;

const POLICY: &str = r#"
[security_groups.sg-web]
ingress = [ { proto = "tcp", ports = "443", from = "0.0.0.0/0" } ]
[interfaces.web-a]
addresses = ["10.9.0.2"]
security_groups = ["sg-web"]
zone = "vpce-0000000000000000a"
"#;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn capture(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut w = PcapWriter::new(Vec::new()).unwrap();
    for (i, f) in frames.iter().enumerate() {
        let p = PcapPacket::new(
            Duration::from_millis(1_700_000_000_000 + i as u64),
            f.len() as u32,
            f,
        );
        w.write_packet(&p).unwrap();
    }
    w.into_writer()
}

#[test]
fn allowed_geneve_packets_are_written_as_returned() {
    let gwlb = ip("192.168.1.1");
    let appliance = ip("192.168.1.2");
    let opts = build::aws_options(0xa, 7, 0x1234_5678);
    let syn = build::tcp(ip("10.9.0.1"), ip("10.9.0.2"), 40000, 443, 0x02, 1, 0, b"");
    let denied = build::tcp(ip("10.9.0.1"), ip("10.9.0.2"), 40000, 22, 0x02, 1, 0, b"");
    let frames = vec![
        build::geneve_wrap(gwlb, appliance, 33333, &syn, &opts),
        build::geneve_wrap(gwlb, appliance, 33334, &denied, &opts),
    ];
    let input = capture(&frames);
    let dir = tempfile::tempdir().unwrap();
    let out = Outputs {
        allowed: Some(dir.path().join("allowed.pcap")),
        verdicts: Some(dir.path().join("v.jsonl")),
        ..Default::default()
    };
    let mut engine = Engine::with_policy(Policy::from_toml(POLICY, "p.toml").unwrap());
    let report = replay(&mut engine, Cursor::new(input), "gen", &out, None, None).unwrap();
    assert_eq!((report.allowed, report.denied), (1, 1));

    let lines = std::fs::read_to_string(dir.path().join("v.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    assert_eq!(first["zone"], "vpce-0000000000000000a");
    assert_eq!(
        (first["src"].as_str(), first["dport"].as_u64()),
        (Some("10.9.0.1"), Some(443))
    );

    let bytes = std::fs::read(dir.path().join("allowed.pcap")).unwrap();
    let mut r = PcapReader::new(&bytes[..]).unwrap();
    let back = r.next_packet().unwrap().unwrap().data.into_owned();
    assert!(r.next_packet().is_none());
    let sent = &frames[0];
    assert_eq!(back.len(), sent.len());
    // Ethernet and outer IP addresses swapped.
    assert_eq!((&back[0..6], &back[6..12]), (&sent[6..12], &sent[0..6]));
    assert_eq!(
        (&back[26..30], &back[30..34]),
        (&sent[30..34], &sent[26..30])
    );
    // UDP source port as received, destination 6081, checksum still valid.
    assert_eq!(&back[34..38], &sent[34..38]);
    assert_eq!(u16::from_be_bytes([back[36], back[37]]), 6081);
    assert_eq!(checksum(&back[14..34]), 0, "IPv4 header checksum");
    let udp = &back[34..];
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&back[26..34]);
    pseudo.extend_from_slice(&[0, 17]);
    pseudo.extend_from_slice(&(udp.len() as u16).to_be_bytes());
    pseudo.extend_from_slice(udp);
    let stored = u16::from_be_bytes([udp[6], udp[7]]);
    assert!(
        stored == 0 || checksum(&pseudo) == 0,
        "UDP checksum valid or 0"
    );
    // GENEVE header, options and the inner packet byte for byte.
    assert_eq!(&back[42..], &sent[42..]);
}
