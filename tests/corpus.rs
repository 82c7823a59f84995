//! Every capture of the third-party corpus (tcpdump's test suite, in
//! pcaps/tcpdump-tests) replays without panicking and with complete
//! accounting; damaged files stop with an offset and keep what was read.

use std::path::{Path, PathBuf};

use sgplane::engine::Engine;
use sgplane::policy::Policy;
use sgplane::replay::{replay, Outputs};

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps/tcpdump-tests");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("pcaps/tcpdump-tests is part of the project")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    v.sort();
    v
}

/// Counts the records of a classic pcap file by walking their headers, and
/// whether the walk ended exactly at the end of the file.
fn pcap_records(bytes: &[u8]) -> Option<(u64, bool)> {
    let le = match bytes.get(..4)? {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => return None,
    };
    let mut off = 24usize;
    let mut n = 0;
    while off + 16 <= bytes.len() {
        let b: [u8; 4] = bytes[off + 8..off + 12].try_into().unwrap();
        let incl = if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        } as usize;
        if off + 16 + incl > bytes.len() {
            return Some((n, false));
        }
        off += 16 + incl;
        n += 1;
    }
    Some((n, off == bytes.len()))
}

#[test]
fn every_corpus_file_replays_with_complete_accounting() {
    let files = corpus();
    assert!(files.len() > 800, "the corpus has {} files", files.len());
    let policy = Policy::builtin();
    let (mut packets, mut stopped, mut geneve_inner) = (0u64, 0, 0u64);
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let mut engine = Engine::with_policy(policy.clone());
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let report = match replay(
            &mut engine,
            std::io::Cursor::new(bytes.clone()),
            &name,
            &Outputs::default(),
            None,
            None,
        ) {
            Ok(r) => r,
            Err(e) => panic!("{name}: not even its header could be read: {e:#}"),
        };
        assert_eq!(report.allowed + report.denied, report.packets, "{name}");
        let by_reason: u64 = report
            .allowed_by_reason
            .values()
            .chain(report.denied_by_reason.values())
            .sum();
        assert_eq!(by_reason, report.packets, "{name}");
        if let Some((records, clean)) = pcap_records(&bytes) {
            assert_eq!(
                report.packets, records,
                "{name}: every record is a judged packet"
            );
            assert_eq!(
                report.stopped.is_none(),
                clean,
                "{name}: {:?}",
                report.stopped
            );
        }
        if let Some(s) = &report.stopped {
            stopped += 1;
            assert!(s.offset as usize <= bytes.len(), "{name}");
        }
        if name.contains("geneve") {
            geneve_inner += report.packets;
        }
        packets += report.packets;
    }
    eprintln!(
        "{} files, {packets} packets, {stopped} stopped early",
        files.len()
    );
    assert!(packets > 10_000);
    assert!(geneve_inner > 0);
}

#[test]
fn geneve_captures_are_judged_on_the_inner_packet() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps/tcpdump-tests");
    let out = tempfile::tempdir().unwrap();
    let v = out.path().join("v.jsonl");
    let bytes = std::fs::read(dir.join("geneve-gcp.pcap")).unwrap();
    let mut engine = Engine::with_policy(Policy::builtin());
    let outputs = Outputs {
        verdicts: Some(v.clone()),
        ..Default::default()
    };
    replay(
        &mut engine,
        std::io::Cursor::new(bytes),
        "geneve-gcp.pcap",
        &outputs,
        None,
        None,
    )
    .unwrap();
    let lines = std::fs::read_to_string(v).unwrap();
    let first: serde_json::Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    // The outer packet is UDP/6081 between the GCP hosts; the verdict line carries the inner one.
    assert_ne!(first["proto"], "udp", "{first}");
    assert!(first["src"].as_str().is_some());
}
