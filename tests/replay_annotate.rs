//! `sgplane replay --annotate FILE.pcapng` (SPEC §10): every packet, in
//! order, with its link type, capture time and lengths, and one comment
//! saying its verdict — read back with pcap-file's reader, sgplane's own, and
//! tshark when it is installed.

mod common;

use std::net::IpAddr;
use std::path::Path;
use std::process::{Command, Output};

use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketOption;
use pcap_file::pcapng::{Block, PcapNgReader};
use sgplane::io::capture::CaptureReader;
use sgplane::wire::build;

/// A packet as a capture holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Packet {
    linktype: u32,
    ts: u64,
    orig_len: u32,
    data: Vec<u8>,
}

/// The packets of a capture, read by sgplane's reader.
fn packets(file: &[u8]) -> Vec<Packet> {
    let mut r = CaptureReader::new(file).unwrap();
    let mut out = Vec::new();
    while let Some(rec) = r.next_record().unwrap() {
        if let Some(p) = rec.packet {
            out.push(Packet {
                linktype: p.linktype,
                ts: p.ts,
                orig_len: p.orig_len,
                data: p.data.to_vec(),
            });
        }
    }
    out
}

/// The annotated capture read by pcap-file's reader: each packet (its
/// timestamp taken as nanoseconds, which is right only when the interface
/// says `if_tsresol` 9 — checked against sgplane's reader below) and its
/// comments.
fn annotated(file: &[u8]) -> Vec<(Packet, Vec<String>)> {
    let mut r = PcapNgReader::new(file).unwrap();
    let mut linktypes = Vec::new();
    let mut out = Vec::new();
    while let Some(b) = r.next_block() {
        match b.unwrap() {
            Block::InterfaceDescription(i) => linktypes.push(u32::from(i.linktype)),
            Block::EnhancedPacket(p) => {
                let comments = p
                    .options
                    .iter()
                    .filter_map(|o| match o {
                        EnhancedPacketOption::Comment(c) => Some(c.to_string()),
                        _ => None,
                    })
                    .collect();
                let packet = Packet {
                    linktype: linktypes[p.interface_id as usize],
                    ts: p.timestamp.as_nanos() as u64,
                    orig_len: p.original_len,
                    data: p.data.to_vec(),
                };
                out.push((packet, comments));
            }
            other => panic!("unexpected block {other:?}"),
        }
    }
    let mine: Vec<Packet> = out.iter().map(|(p, _)| p.clone()).collect();
    assert_eq!(packets(file), mine, "both readers agree");
    out
}

fn sgplane(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sgplane"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run sgplane")
}

fn demo() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps/demo.pcap")
}

/// The comment a verdict line implies.
fn comment_of(v: &serde_json::Value) -> String {
    let s = |k: &str| v[k].as_str().map(str::to_string);
    let mut c = format!(
        "sgplane: {} {}",
        v["verdict"].as_str().unwrap(),
        v["reason"].as_str().unwrap()
    );
    if let Some(r) = s("rule") {
        c += &format!(" {r}");
    }
    if let (Some(i), Some(d)) = (s("interface"), s("direction")) {
        c += &format!(" at {i} {d}");
    }
    c
}

#[test]
fn every_packet_is_written_with_the_comment_its_verdict_line_implies() {
    let dir = tempfile::tempdir().unwrap();
    let o = sgplane(
        &[
            "replay",
            demo().to_str().unwrap(),
            "--json",
            "--no-progress",
            "--verdicts",
            "v.jsonl",
            "--annotate",
            "a.pcapng",
        ],
        dir.path(),
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let file = std::fs::read(dir.path().join("a.pcapng")).unwrap();
    let got = annotated(&file);
    let input = packets(&std::fs::read(demo()).unwrap());
    assert_eq!(got.len() as u64, summary["packets"].as_u64().unwrap());
    let lines = std::fs::read_to_string(dir.path().join("v.jsonl")).unwrap();
    let mut denied = 0;
    for (((p, comments), want), line) in got.iter().zip(&input).zip(lines.lines()) {
        assert_eq!(p, want, "the packet as captured");
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(comments, &[comment_of(&v)], "{line}");
        denied += u64::from(comments[0].starts_with("sgplane: deny "));
    }
    assert_eq!(denied, summary["denied"].as_u64().unwrap());
    // The kinds of comment the demo has, as they read.
    let all: Vec<&str> = got.iter().map(|(_, c)| c[0].as_str()).collect();
    for want in [
        "sgplane: allow established",
        "sgplane: deny no-rule at i-web-1a ingress",
        "sgplane: allow rule sg-db/ingress/0 at eni-rds-primary ingress",
    ] {
        assert!(all.contains(&want), "{want} in {all:?}");
    }
}

// pcapng blocks for an input of several link types and time resolutions.

fn block(kind: u32, body: &[u8]) -> Vec<u8> {
    let mut body = body.to_vec();
    body.resize(body.len().next_multiple_of(4), 0);
    let len = (body.len() + 12) as u32;
    let mut b = Vec::new();
    b.extend_from_slice(&kind.to_le_bytes());
    b.extend_from_slice(&len.to_le_bytes());
    b.extend_from_slice(&body);
    b.extend_from_slice(&len.to_le_bytes());
    b
}

fn section_header() -> Vec<u8> {
    let mut b = 0x1a2b_3c4du32.to_le_bytes().to_vec();
    b.extend_from_slice(&[1, 0, 0, 0]);
    b.extend_from_slice(&u64::MAX.to_le_bytes());
    block(0x0a0d_0d0a, &b)
}

/// An interface of `linktype`, with `if_tsresol` when given (else microseconds).
fn interface(linktype: u16, tsresol: Option<u8>) -> Vec<u8> {
    let mut b = linktype.to_le_bytes().to_vec();
    b.extend_from_slice(&[0, 0]);
    b.extend_from_slice(&65_535u32.to_le_bytes());
    if let Some(r) = tsresol {
        b.extend_from_slice(&[9, 0, 1, 0, r, 0, 0, 0, 0, 0, 0, 0]);
    }
    block(1, &b)
}

fn packet(interface: u32, ticks: u64, orig_len: u32, data: &[u8]) -> Vec<u8> {
    let mut b = interface.to_le_bytes().to_vec();
    b.extend_from_slice(&((ticks >> 32) as u32).to_le_bytes());
    b.extend_from_slice(&(ticks as u32).to_le_bytes());
    b.extend_from_slice(&(data.len() as u32).to_le_bytes());
    b.extend_from_slice(&orig_len.to_le_bytes());
    b.extend_from_slice(data);
    block(6, &b)
}

const GENEVE_POLICY: &str = r#"
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

/// Ethernet with GENEVE (microseconds), raw IP (nanoseconds), a link type
/// sgplane does not read: each packet keeps its link type, time and
/// lengths, and a GENEVE packet's comment is about its inner packet.
#[test]
fn link_types_times_lengths_and_geneve_are_kept() {
    let (gwlb, appliance) = (ip("192.168.1.1"), ip("192.168.1.2"));
    let opts = build::aws_options(0xa, 7, 0x1234_5678);
    let syn = |dport| {
        build::tcp(
            ip("10.9.0.1"),
            ip("10.9.0.2"),
            40000,
            dport,
            0x02,
            1,
            0,
            b"",
        )
    };
    let allowed = build::geneve_wrap(gwlb, appliance, 33333, &syn(443), &opts);
    let denied = build::geneve_wrap(gwlb, appliance, 33334, &syn(22), &opts);
    // The raw-IP packet: a SYN to 443 without its Ethernet header, cut to
    // 30 bytes of its 40 as a snap length would.
    let raw = syn(443)[14..44].to_vec();
    let base = 1_700_000_000_000_000_000u64;
    let mut input = section_header();
    input.extend(interface(1, None));
    input.extend(interface(101, Some(9)));
    input.extend(interface(147, Some(6)));
    input.extend(packet(0, base / 1000 + 1, allowed.len() as u32, &allowed));
    input.extend(packet(1, base + 2_000_000_123, 40, &raw));
    input.extend(packet(2, base / 1000 + 3_000_000, 5, b"hello"));
    input.extend(packet(
        0,
        base / 1000 + 4_000_001,
        denied.len() as u32,
        &denied,
    ));

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.pcapng"), &input).unwrap();
    std::fs::write(dir.path().join("p.toml"), GENEVE_POLICY).unwrap();
    let o = sgplane(
        &[
            "-c",
            "p.toml",
            "replay",
            "in.pcapng",
            "--no-progress",
            "--annotate",
            "a.pcapng",
        ],
        dir.path(),
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let got = annotated(&std::fs::read(dir.path().join("a.pcapng")).unwrap());
    let want = packets(&input);
    assert_eq!(want[1].ts, base + 2_000_000_123, "the input as meant");
    let got_packets: Vec<Packet> = got.iter().map(|(p, _)| p.clone()).collect();
    assert_eq!(got_packets, want);
    let comments: Vec<&str> = got.iter().map(|(_, c)| c[0].as_str()).collect();
    assert_eq!(
        comments,
        [
            "sgplane: allow rule sg-web/ingress/0 at web-a ingress",
            "sgplane: deny malformed",
            "sgplane: deny not-ip",
            "sgplane: deny no-rule at web-a ingress",
        ]
    );
}

/// A capture cut inside a record: the annotated file holds exactly the
/// packets the summary counts.
#[test]
fn a_truncated_capture_is_annotated_up_to_where_it_stops() {
    let dir = tempfile::tempdir().unwrap();
    let whole = std::fs::read(demo()).unwrap();
    let cut = &whole[..whole.len() * 2 / 3];
    std::fs::write(dir.path().join("cut.pcap"), cut).unwrap();
    let o = sgplane(
        &[
            "replay",
            "cut.pcap",
            "--json",
            "--no-progress",
            "--annotate",
            "a.pcapng",
        ],
        dir.path(),
    );
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let got = annotated(&std::fs::read(dir.path().join("a.pcapng")).unwrap());
    let n = summary["packets"].as_u64().unwrap();
    assert!(n > 0 && (n as usize) < packets(&whole).len());
    assert_eq!(got.len() as u64, n);
}

#[test]
fn a_flow_log_has_no_packets_to_annotate() {
    let dir = tempfile::tempdir().unwrap();
    let log = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/flowlogs/default.log");
    let o = sgplane(
        &["replay", log.to_str().unwrap(), "--annotate", "a.pcapng"],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--annotate"), "{err}");
}

/// What Wireshark shows: `frame.comment contains "deny"` selects exactly
/// the denied packets.
#[test]
fn tshark_filters_the_denied_packets_by_their_comment() {
    if !common::have("tshark") {
        eprintln!("SKIPPED: tshark is not installed (apt-get install tshark); the annotated capture was not read by tshark");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let o = sgplane(
        &[
            "replay",
            demo().to_str().unwrap(),
            "--json",
            "--no-progress",
            "--verdicts",
            "v.jsonl",
            "--annotate",
            "a.pcapng",
        ],
        dir.path(),
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let tshark = |args: &[&str]| {
        let o = Command::new("tshark")
            .args(["-r", "a.pcapng"])
            .args(args)
            .current_dir(dir.path())
            .output()
            .expect("run tshark");
        assert!(
            o.status.success(),
            "tshark: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    };
    let frames: Vec<u64> = tshark(&[
        "-Y",
        r#"frame.comment contains "deny""#,
        "-T",
        "fields",
        "-e",
        "frame.number",
    ])
    .lines()
    .map(|l| l.trim().parse().unwrap())
    .collect();
    assert_eq!(frames.len() as u64, summary["denied"].as_u64().unwrap());
    // The same frames as the denied verdict lines, numbered from 1.
    let lines = std::fs::read_to_string(dir.path().join("v.jsonl")).unwrap();
    let denied: Vec<u64> = lines
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["verdict"] == "deny")
        .map(|v| v["index"].as_u64().unwrap() + 1)
        .collect();
    assert_eq!(frames, denied);
    // Every frame's comment, its time and length as tshark reads them.
    let fields = tshark(&[
        "-T",
        "fields",
        "-e",
        "frame.comment",
        "-e",
        "frame.time_epoch",
        "-e",
        "frame.len",
    ]);
    let input = packets(&std::fs::read(demo()).unwrap());
    assert_eq!(fields.lines().count(), input.len());
    for ((row, line), p) in fields.lines().zip(lines.lines()).zip(&input) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let cols: Vec<&str> = row.split('\t').collect();
        assert_eq!(cols[0], comment_of(&v));
        let ts = format!("{}.{:09}", p.ts / 1_000_000_000, p.ts % 1_000_000_000);
        assert_eq!(cols[1], ts);
        assert_eq!(cols[2], p.orig_len.to_string());
    }
}
