//! SIGINT and SIGTERM during `sgplane replay`: the replay stops at a packet
//! boundary, every output is complete and agrees with the others and with the
//! summary, which says where it was interrupted; the exit code is 130.

use std::io::Write;
use std::net::IpAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sgplane::wire::build;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A pcap global header (microseconds, Ethernet).
fn pcap_header() -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&4u16.to_le_bytes());
    h.extend_from_slice(&[0; 8]);
    h.extend_from_slice(&65_535u32.to_le_bytes());
    h.extend_from_slice(&1u32.to_le_bytes());
    h
}

fn record(out: &mut Vec<u8>, us: u64, frame: &[u8]) {
    out.extend_from_slice(&((us / 1_000_000) as u32).to_le_bytes());
    out.extend_from_slice(&((us % 1_000_000) as u32).to_le_bytes());
    out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    out.extend_from_slice(frame);
}

/// Packets `from..to` of an endless stream through the built-in policy:
/// HTTPS connections to the ALB (allowed) and SSH from the internet to the
/// bastion (denied), so both outputs get packets.
fn packets(from: u64, to: u64) -> Vec<u8> {
    let (alb, bastion) = (ip("10.0.0.10"), ip("10.0.0.20"));
    let mut out = Vec::new();
    for n in from..to {
        let client = ip(&format!("203.0.113.{}", 1 + n / 4 % 250));
        let sport = 1024 + (n / 4 % 60_000) as u16;
        let frame = match n % 4 {
            0 => build::tcp(client, alb, sport, 443, 0x02, 1, 0, b""),
            1 => build::tcp(alb, client, 443, sport, 0x12, 1, 2, b""),
            2 => build::tcp(client, alb, sport, 443, 0x18, 2, 2, &[7u8; 100]),
            _ => build::tcp(client, bastion, sport, 22, 0x02, 1, 0, b""),
        };
        record(&mut out, 1_700_000_000_000_000 + n * 10, &frame);
    }
    out
}

/// Packets in a pcap file written by sgplane.
fn pcap_packets(path: &Path) -> u64 {
    let b = std::fs::read(path).unwrap();
    assert!(b.len() >= 24, "{} has its header", path.display());
    let mut at = 24;
    let mut n = 0;
    while at < b.len() {
        let incl = u32::from_le_bytes(b[at + 8..at + 12].try_into().unwrap()) as usize;
        at += 16 + incl;
        n += 1;
    }
    assert_eq!(at, b.len(), "{} ends on a record boundary", path.display());
    n
}

/// Packets in a pcapng file written by `--annotate`, and how many of their
/// comments say deny.
fn annotated_packets(path: &Path) -> (u64, u64) {
    let b = std::fs::read(path).unwrap();
    let u32_at = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    let (mut at, mut n, mut denied) = (0, 0, 0);
    while at < b.len() {
        let len = u32_at(at + 4) as usize;
        if u32_at(at) == 6 {
            n += 1;
            let body = &b[at..at + len];
            denied += u64::from(body.windows(14).any(|w| w == b"sgplane: deny "));
        }
        at += len;
    }
    assert_eq!(at, b.len(), "{} ends on a block boundary", path.display());
    (n, denied)
}

fn start(dir: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sgplane"))
        .args(["replay", "-", "--json", "--no-progress"])
        .arg("--verdicts")
        .arg(dir.join("v.jsonl"))
        .arg("--allowed")
        .arg(dir.join("a.pcap"))
        .arg("--denied")
        .arg(dir.join("d.pcap"))
        .arg("--annotate")
        .arg(dir.join("a.pcapng"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sgplane")
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on the pid of a child this test started and has not
    // waited for yet, so the pid cannot have been reused.
    let r = unsafe { libc::kill(child.id() as libc::pid_t, sig) };
    assert_eq!(r, 0, "kill");
}

/// Waits for the child (at most 60 s) and checks that its outputs agree.
/// Returns the packets the summary counts.
fn finish_and_check(child: Child, dir: &Path, signal_name: &str) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut child = child;
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "sgplane did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "exit code; stderr: {stderr}");
    assert!(stderr.contains("interrupted by"), "{stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "summary is JSON ({e}): {}",
            String::from_utf8_lossy(&o.stdout)
        )
    });
    let n = summary["packets"].as_u64().unwrap();
    let int = &summary["interrupted"];
    assert_eq!(int["signal"], signal_name, "{summary}");
    assert_eq!(int["at_packet"].as_u64(), Some(n), "{summary}");
    assert_eq!(
        summary["allowed"].as_u64().unwrap() + summary["denied"].as_u64().unwrap(),
        n
    );
    // One whole verdict line per packet of the summary, in order.
    let verdicts = std::fs::read_to_string(dir.join("v.jsonl")).unwrap();
    assert!(
        verdicts.is_empty() || verdicts.ends_with('\n'),
        "last line is whole"
    );
    let mut allowed = 0;
    for (i, line) in verdicts.lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["index"].as_u64(), Some(i as u64));
        allowed += u64::from(v["verdict"] == "allow");
    }
    assert_eq!(verdicts.lines().count() as u64, n, "verdict lines");
    assert_eq!(allowed, summary["allowed"].as_u64().unwrap());
    // The captures hold the same packets.
    assert_eq!(
        pcap_packets(&dir.join("a.pcap")),
        allowed,
        "allowed capture"
    );
    assert_eq!(
        pcap_packets(&dir.join("d.pcap")),
        n - allowed,
        "denied capture"
    );
    assert_eq!(
        annotated_packets(&dir.join("a.pcapng")),
        (n, n - allowed),
        "annotated capture"
    );
    n
}

#[test]
fn sigint_while_waiting_for_input_keeps_every_output_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = start(dir.path());
    let mut stdin = child.stdin.take().unwrap();
    // More than a pipe holds: when the write returns, sgplane has read most of it.
    let sent = 20_000;
    stdin.write_all(&pcap_header()).unwrap();
    stdin.write_all(&packets(0, sent)).unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    signal(&child, libc::SIGINT);
    // The input stays open: sgplane must stop on the signal, not on EOF.
    let n = finish_and_check(child, dir.path(), "SIGINT");
    assert!(n > 0 && n <= sent, "{n} of {sent} packets judged");
    drop(stdin);
}

#[test]
fn sigterm_while_packets_stream_in_keeps_every_output_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = start(dir.path());
    let mut stdin = child.stdin.take().unwrap();
    // A writer that keeps sgplane busy until it stops (a broken pipe), at
    // most 4M packets.
    let writer = std::thread::spawn(move || {
        let mut sent = 0u64;
        if stdin.write_all(&pcap_header()).is_err() {
            return sent;
        }
        while sent < 4_000_000 {
            if stdin.write_all(&packets(sent, sent + 10_000)).is_err() {
                break;
            }
            sent += 10_000;
        }
        sent
    });
    std::thread::sleep(Duration::from_millis(700));
    signal(&child, libc::SIGTERM);
    let n = finish_and_check(child, dir.path(), "SIGTERM");
    let sent = writer.join().unwrap();
    assert!(n > 0 && n <= sent + 10_000, "{n} judged, {sent} sent");
}
