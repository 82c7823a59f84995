//! `sgplane replay` on the project's own captures (pcaps/, written by
//! `cargo run --example gen_pcaps`): every packet's verdict, reason and rule
//! against the golden file the generator wrote from the story, the summary's
//! accounting, the allowed/denied captures, the JSON-lines and flow-log
//! outputs, replay from stdin, and inputs that are cut, not pcap, or missing.
//!
//! The goldens are the generator's knowledge, not recorded sgplane output, so
//! a mismatch means the engine or the story is wrong. A capture whose
//! generator changed without being re-run shows up here as a mismatch too.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use pcap_file::pcap::{PcapHeader, PcapReader};
use serde_json::Value;

/// A capture replayed against a policy, and the verdicts it must give.
struct Case {
    pcap: &'static str,
    /// `config/<name>.toml`; None for the built-in policy.
    config: Option<&'static str>,
    golden: &'static str,
}

const DEMO: Case = Case {
    pcap: "demo.pcap",
    config: None,
    golden: "demo.expected.csv",
};
const AWS_BROKEN: Case = Case {
    pcap: "aws-default-sg.pcap",
    config: Some("aws-default-sg"),
    golden: "aws-default-sg.expected.csv",
};
const AWS_FIXED: Case = Case {
    pcap: "aws-default-sg.pcap",
    config: Some("aws-default-sg-fixed"),
    golden: "aws-default-sg-fixed.expected.csv",
};
const ACK: Case = Case {
    pcap: "ack-cluster.pcap",
    config: Some("ack-cluster"),
    golden: "ack-cluster.expected.csv",
};
const MSE: Case = Case {
    pcap: "mse-gateway.pcap",
    config: Some("mse-gateway"),
    golden: "mse-gateway.expected.csv",
};
const PRIVATELINK: Case = Case {
    pcap: "privatelink-nlb.pcap",
    config: Some("privatelink-nlb"),
    golden: "privatelink-nlb.expected.csv",
};

const CASES: [&Case; 6] = [&DEMO, &AWS_BROKEN, &AWS_FIXED, &ACK, &MSE, &PRIVATELINK];

/// The keys of a `--verdicts FILE.jsonl` line (SPEC §4).
const VERDICT_KEYS: [&str; 13] = [
    "index",
    "ts",
    "verdict",
    "reason",
    "rule",
    "interface",
    "direction",
    "proto",
    "src",
    "dst",
    "sport",
    "dport",
    "zone",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn pcap_path(name: &str) -> PathBuf {
    root().join("pcaps").join(name)
}

/// Runs sgplane in the crate root.
fn sgplane<I, S>(args: I, stdin: Option<File>) -> Output
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sgplane"));
    cmd.current_dir(root())
        .args(args.into_iter().map(Into::into));
    cmd.stdin(stdin.map_or_else(Stdio::null, Stdio::from));
    cmd.output().expect("running sgplane")
}

/// `sgplane [-c config/X.toml] replay INPUT EXTRA...`.
fn replay(case: &Case, input: &Path, extra: &[OsString]) -> Output {
    let mut args: Vec<OsString> = Vec::new();
    if let Some(c) = case.config {
        args.push("-c".into());
        args.push(format!("config/{c}.toml").into());
    }
    args.push("replay".into());
    args.push(input.into());
    args.push("--no-progress".into());
    args.extend(extra.iter().cloned());
    sgplane(args, None)
}

fn os(s: impl Into<OsString>) -> OsString {
    s.into()
}

fn describe(case: &Case) -> String {
    match case.config {
        Some(c) => format!("pcaps/{} with config/{c}.toml", case.pcap),
        None => format!("pcaps/{} with the built-in policy", case.pcap),
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// One CSV line split into fields (quoted fields as RFC 4180 writes them).
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut().expect("one field").push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            _ => fields.last_mut().expect("one field").push(ch),
        }
    }
    fields
}

/// A CSV file as maps from column name to value, one per line.
fn read_csv(path: &Path) -> Vec<BTreeMap<String, String>> {
    let data =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut lines = data.lines();
    let header = csv_fields(
        lines
            .next()
            .unwrap_or_else(|| panic!("{} is empty", path.display())),
    );
    lines
        .enumerate()
        .map(|(n, l)| {
            let f = csv_fields(l);
            assert_eq!(
                f.len(),
                header.len(),
                "{} line {}: {l}",
                path.display(),
                n + 2
            );
            header.iter().cloned().zip(f).collect()
        })
        .collect()
}

/// What the golden file says about one packet.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Expected {
    verdict: String,
    reason: String,
    rule: String,
}

fn golden(case: &Case) -> Vec<Expected> {
    let path = pcap_path(case.golden);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    assert_eq!(
        text.lines().next(),
        Some("index,verdict,reason,rule"),
        "{} header",
        path.display()
    );
    read_csv(&path)
        .into_iter()
        .enumerate()
        .map(|(i, row)| {
            assert_eq!(
                row["index"],
                i.to_string(),
                "{} indexes run from 0 in order",
                path.display()
            );
            Expected {
                verdict: row["verdict"].clone(),
                reason: row["reason"].clone(),
                rule: row["rule"].clone(),
            }
        })
        .collect()
}

/// A verdict line as sgplane wrote it, for messages.
fn show(row: &BTreeMap<String, String>) -> String {
    let rule = if row["rule"].is_empty() {
        String::new()
    } else {
        format!(" {}", row["rule"])
    };
    let ports = if row["sport"].is_empty() {
        String::new()
    } else {
        format!(" {}->{}", row["sport"], row["dport"])
    };
    format!(
        "{} {}{rule} | {} {} -> {}{ports} at {}",
        row["verdict"], row["reason"], row["proto"], row["src"], row["dst"], row["ts"]
    )
}

/// Compares sgplane's CSV verdicts with the golden ones; the message names
/// the first differing packets with what sgplane saw in them.
fn compare(
    case: &Case,
    expected: &[Expected],
    got: &[BTreeMap<String, String>],
) -> Result<(), String> {
    let mut msg = String::new();
    if expected.len() != got.len() {
        msg += &format!(
            "{} packets expected, sgplane gave {} verdict lines\n",
            expected.len(),
            got.len()
        );
    }
    let diffs: Vec<String> = expected
        .iter()
        .zip(got)
        .enumerate()
        .filter(|(_, (e, g))| {
            (e.verdict.as_str(), e.reason.as_str(), e.rule.as_str())
                != (&*g["verdict"], &*g["reason"], &*g["rule"])
        })
        .map(|(i, (e, g))| {
            let rule = if e.rule.is_empty() {
                String::new()
            } else {
                format!(" {}", e.rule)
            };
            format!(
                "  packet {i}: expected {} {}{rule}, got {}",
                e.verdict,
                e.reason,
                show(g)
            )
        })
        .collect();
    if !diffs.is_empty() {
        msg += &format!("{} packets differ; the first ones:\n", diffs.len());
        for d in diffs.iter().take(12) {
            msg += d;
            msg.push('\n');
        }
    }
    if msg.is_empty() {
        Ok(())
    } else {
        Err(format!("{}:\n{msg}", describe(case)))
    }
}

fn parse_json(out: &Output, what: &str) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{what}: the summary is not JSON ({e}):\n{}",
            text(&out.stdout)
        )
    })
}

fn count(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("summary field {key} is not a count: {v}"))
}

/// Reason -> packets, as the summary gives it.
fn by_reason(v: &Value, key: &str) -> BTreeMap<String, u64> {
    let m = v[key]
        .as_object()
        .unwrap_or_else(|| panic!("summary field {key} is not an object: {v}"));
    m.iter()
        .map(|(k, n)| (k.clone(), n.as_u64().expect("a count")))
        .collect()
}

/// The summary's totals add up and agree with the golden verdicts.
fn check_summary(case: &Case, summary: &Value, expected: &[Expected]) {
    let what = describe(case);
    let (packets, allowed, denied) = (
        count(summary, "packets"),
        count(summary, "allowed"),
        count(summary, "denied"),
    );
    assert_eq!(packets, expected.len() as u64, "{what}: summary packets");
    assert_eq!(
        allowed + denied,
        packets,
        "{what}: allowed + denied = packets"
    );
    let mut want: [BTreeMap<String, u64>; 2] = Default::default();
    for e in expected {
        *want[usize::from(e.verdict == "deny")]
            .entry(e.reason.clone())
            .or_default() += 1;
    }
    for (i, key) in ["allowed_by_reason", "denied_by_reason"]
        .into_iter()
        .enumerate()
    {
        let got = by_reason(summary, key);
        assert_eq!(
            got.values().sum::<u64>(),
            if i == 0 { allowed } else { denied },
            "{what}: {key} adds up"
        );
        assert_eq!(got, want[i], "{what}: {key} against the golden verdicts");
    }
    assert!(
        summary["stopped"].is_null(),
        "{what}: the capture was read to its end: {}",
        summary["stopped"]
    );
}

/// Replays a case, compares every verdict with the golden file and checks the summary.
fn check_golden(case: &Case) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let csv = dir.path().join("verdicts.csv");
    let out = replay(
        case,
        &pcap_path(case.pcap),
        &[os("--json"), os("--verdicts"), os(&csv)],
    );
    assert_ok(&out, &describe(case));
    let expected = golden(case);
    if let Err(msg) = compare(case, &expected, &read_csv(&csv)) {
        panic!("{msg}(goldens come from examples/gen_pcaps.rs; after changing it run `cargo run --example gen_pcaps`)");
    }
    check_summary(case, &parse_json(&out, &describe(case)), &expected);
}

#[test]
fn demo_matches_its_golden_verdicts() {
    check_golden(&DEMO);
}

#[test]
fn aws_default_sg_broken_matches_its_golden_verdicts() {
    check_golden(&AWS_BROKEN);
}

#[test]
fn aws_default_sg_fixed_matches_its_golden_verdicts() {
    check_golden(&AWS_FIXED);
}

#[test]
fn ack_cluster_matches_its_golden_verdicts() {
    check_golden(&ACK);
}

#[test]
fn mse_gateway_matches_its_golden_verdicts() {
    check_golden(&MSE);
}

#[test]
fn privatelink_nlb_matches_its_golden_verdicts() {
    check_golden(&PRIVATELINK);
}

/// Every capture and golden file at the top of pcaps/ (the generated ones;
/// subdirectories hold other material) is one of the cases above, so none can
/// be added (or left behind) without being replayed.
#[test]
fn every_capture_in_pcaps_is_checked() {
    let mut captures = BTreeSet::new();
    let mut goldens = BTreeSet::new();
    for entry in std::fs::read_dir(root().join("pcaps")).expect("reading pcaps/") {
        let name = entry
            .expect("a directory entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        if name.ends_with(".expected.csv") {
            goldens.insert(name);
        } else if name.ends_with(".pcap") || name.ends_with(".pcapng") {
            captures.insert(name);
        }
    }
    let want_captures: BTreeSet<String> = CASES.iter().map(|c| c.pcap.to_string()).collect();
    let want_goldens: BTreeSet<String> = CASES.iter().map(|c| c.golden.to_string()).collect();
    assert_eq!(
        captures, want_captures,
        "captures in pcaps/ vs the cases replayed here"
    );
    assert_eq!(
        goldens, want_goldens,
        "golden files in pcaps/ vs the cases replayed here"
    );
}

/// All records of a pcap, with its header.
fn read_pcap(path: &Path) -> (PcapHeader, Vec<(std::time::Duration, u32, Vec<u8>)>) {
    let f = File::open(path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    let mut r = PcapReader::new(f)
        .unwrap_or_else(|e| panic!("{} is not a valid pcap: {e}", path.display()));
    let header = r.header();
    let mut records = Vec::new();
    while let Some(p) = r.next_packet() {
        let p = p.unwrap_or_else(|e| panic!("{}: record {}: {e}", path.display(), records.len()));
        records.push((p.timestamp, p.orig_len, p.data.into_owned()));
    }
    (header, records)
}

#[test]
fn allowed_and_denied_captures_split_the_input() {
    for case in CASES {
        let what = describe(case);
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (allowed_path, denied_path) = (
            dir.path().join("allowed.pcap"),
            dir.path().join("denied.pcap"),
        );
        let input = pcap_path(case.pcap);
        let args = [
            os("--json"),
            os("--allowed"),
            os(&allowed_path),
            os("--denied"),
            os(&denied_path),
        ];
        let out = replay(case, &input, &args);
        assert_ok(&out, &what);
        let summary = parse_json(&out, &what);

        let (in_header, records) = read_pcap(&input);
        let verdicts = golden(case);
        assert_eq!(
            records.len(),
            verdicts.len(),
            "{what}: golden lines vs packets"
        );
        for (path, verdict, key) in [
            (&allowed_path, "allow", "allowed"),
            (&denied_path, "deny", "denied"),
        ] {
            let (header, got) = read_pcap(path);
            assert_eq!(header, in_header, "{what}: {key} capture header");
            assert_eq!(
                got.len() as u64,
                count(&summary, key),
                "{what}: {key} capture vs the summary"
            );
            let want: Vec<_> = records
                .iter()
                .zip(&verdicts)
                .filter(|(_, v)| v.verdict == verdict)
                .map(|(r, _)| r)
                .collect();
            assert_eq!(
                got.len(),
                want.len(),
                "{what}: {key} capture vs the golden verdicts"
            );
            for (i, (g, w)) in got.iter().zip(want).enumerate() {
                assert!(
                    g == w,
                    "{what}: record {i} of the {key} capture differs from the input's"
                );
            }
        }
    }
}

#[test]
fn jsonl_verdicts_have_exactly_the_spec_keys() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("verdicts.jsonl");
    let out = replay(&DEMO, &pcap_path(DEMO.pcap), &[os("--verdicts"), os(&path)]);
    assert_ok(&out, "jsonl");
    let expected = golden(&DEMO);
    let data = std::fs::read_to_string(&path).expect("reading the verdict lines");
    let lines: Vec<&str> = data.lines().collect();
    assert_eq!(lines.len(), expected.len(), "one line per packet");
    let keys: BTreeSet<&str> = VERDICT_KEYS.into_iter().collect();
    for (i, (line, e)) in lines.iter().zip(&expected).enumerate() {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|err| panic!("line {i} is not JSON ({err}): {line}"));
        let obj = v
            .as_object()
            .unwrap_or_else(|| panic!("line {i} is not an object: {line}"));
        let got: BTreeSet<&str> = obj.keys().map(String::as_str).collect();
        assert_eq!(got, keys, "line {i}: {line}");
        assert_eq!(v["index"], i, "line {i}: {line}");
        assert!(
            v["ts"].as_f64().is_some_and(|t| t >= 1_700_000_000.0),
            "line {i}: ts: {line}"
        );
        assert_eq!(v["verdict"], e.verdict.as_str(), "line {i}: {line}");
        assert_eq!(v["reason"], e.reason.as_str(), "line {i}: {line}");
        let rule = if e.rule.is_empty() {
            Value::Null
        } else {
            Value::from(e.rule.as_str())
        };
        assert_eq!(v["rule"], rule, "line {i}: {line}");
        assert!(v["zone"].is_null(), "line {i}: no GENEVE here: {line}");
        if e.reason == "rule" || e.reason == "no-rule" {
            assert!(
                v["interface"].is_string() && v["direction"].is_string(),
                "line {i}: who decided: {line}"
            );
        }
    }
    let mut args: Vec<OsString> = vec![
        "replay".into(),
        pcap_path(DEMO.pcap).into(),
        "--verdicts".into(),
        "-".into(),
    ];
    args.push("--no-progress".into());
    let stdout = sgplane(args, None);
    assert_ok(&stdout, "--verdicts -");
    assert_eq!(
        text(&stdout.stdout),
        data,
        "--verdicts - writes the same lines to stdout"
    );
}

#[test]
fn flow_log_lines_are_vpc_flow_logs_version_2() {
    for case in [&DEMO, &AWS_BROKEN] {
        let what = describe(case);
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("flows.log");
        let out = replay(case, &pcap_path(case.pcap), &[os("--flow-log"), os(&path)]);
        assert_ok(&out, &what);
        let data = std::fs::read_to_string(&path).expect("reading the flow log");
        let mut lines = data.lines();
        let header = lines.next().expect("a header line");
        assert_eq!(header.split(' ').count(), 14, "{what}: header {header}");
        let mut actions = BTreeSet::new();
        let mut records = 0;
        for line in lines {
            let f: Vec<&str> = line.split(' ').collect();
            assert_eq!(f.len(), 14, "{what}: {line}");
            assert!(line.starts_with("2 "), "{what}: version 2: {line}");
            assert_eq!(f[1], "123456789012", "{what}: default account id: {line}");
            assert!(
                matches!(f[12], "ACCEPT" | "REJECT"),
                "{what}: action: {line}"
            );
            assert_eq!(f[13], "OK", "{what}: log-status: {line}");
            for (i, n) in f[5..12].iter().enumerate() {
                assert!(
                    n.parse::<u64>().is_ok(),
                    "{what}: field {} is a number: {line}",
                    i + 5
                );
            }
            assert!(f[10] <= f[11], "{what}: start <= end: {line}");
            actions.insert(f[12].to_string());
            records += 1;
        }
        assert!(records > 0, "{what}: some flow records");
        assert_eq!(
            actions.len(),
            2,
            "{what}: the capture has accepted and rejected flows: {actions:?}"
        );
    }
}

#[test]
fn replay_from_stdin_gives_the_same_verdicts() {
    for case in [&DEMO, &ACK] {
        let what = describe(case);
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (from_file, from_stdin) = (dir.path().join("file.csv"), dir.path().join("stdin.csv"));
        let out = replay(
            case,
            &pcap_path(case.pcap),
            &[os("--verdicts"), os(&from_file)],
        );
        assert_ok(&out, &what);
        let mut args: Vec<OsString> = Vec::new();
        if let Some(c) = case.config {
            args.extend([os("-c"), os(format!("config/{c}.toml"))]);
        }
        args.extend([
            os("replay"),
            os("-"),
            os("--no-progress"),
            os("--verdicts"),
            os(&from_stdin),
        ]);
        let input = File::open(pcap_path(case.pcap)).expect("opening the capture");
        let out = sgplane(args, Some(input));
        assert_ok(&out, &format!("{what} from stdin"));
        let (a, b) = (
            std::fs::read(&from_file).expect("file run"),
            std::fs::read(&from_stdin).expect("stdin run"),
        );
        assert!(
            !a.is_empty() && a == b,
            "{what}: verdicts from stdin differ from those from the file"
        );
        assert!(
            text(&out.stdout).contains("stdin"),
            "{what}: the summary names stdin:\n{}",
            text(&out.stdout)
        );
    }
}

/// Offsets of the records of a little-endian pcap (as the generator writes them).
fn record_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut at = 24;
    while at < bytes.len() {
        offsets.push(at);
        let incl = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().expect("4 bytes"));
        at += 16 + incl as usize;
    }
    assert_eq!(at, bytes.len(), "the records fill the file");
    offsets
}

#[test]
fn a_truncated_capture_is_summarised_up_to_the_cut_and_exits_2() {
    let bytes = std::fs::read(pcap_path(DEMO.pcap)).expect("reading demo.pcap");
    assert_eq!(
        &bytes[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "the generator writes little-endian microsecond pcaps"
    );
    let offsets = record_offsets(&bytes);
    let expected = golden(&DEMO);
    let k = offsets.len() / 2;
    // In the middle of a record's data, and inside a record header.
    for cut in [offsets[k] + 16 + 20, offsets[k] + 7] {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (input, csv) = (dir.path().join("cut.pcap"), dir.path().join("verdicts.csv"));
        std::fs::write(&input, &bytes[..cut]).expect("writing the cut capture");
        let out = replay(&DEMO, &input, &[os("--json"), os("--verdicts"), os(&csv)]);
        let stderr = text(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "cut at {cut}: exit code; stderr:\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "cut at {cut}: {stderr}");
        assert!(
            stderr.contains(&format!("byte {}", offsets[k])),
            "cut at {cut}: names the offset {}: {stderr}",
            offsets[k]
        );
        let summary = parse_json(&out, "truncated capture");
        assert_eq!(
            count(&summary, "packets"),
            k as u64,
            "cut at {cut}: the packets before the cut"
        );
        assert_eq!(
            count(&summary, "allowed") + count(&summary, "denied"),
            k as u64,
            "cut at {cut}"
        );
        assert_eq!(
            summary["stopped"]["offset"], offsets[k],
            "cut at {cut}: {}",
            summary["stopped"]
        );
        let got = read_csv(&csv);
        compare(&DEMO, &expected[..k], &got).unwrap_or_else(|m| panic!("cut at {cut}: {m}"));
    }
}

#[test]
fn a_file_that_is_not_a_capture_exits_2_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let input = dir.path().join("notes.txt");
    std::fs::write(&input, "these are not the packets you are looking for\n").expect("writing");
    let out = replay(&DEMO, &input, &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(stderr.contains("not a pcap or pcapng file"), "{stderr}");
    assert!(stderr.contains("notes.txt"), "names the file: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_missing_file_exits_2_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let input = dir.path().join("no-such.pcap");
    let out = replay(&DEMO, &input, &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(
        stderr.contains("cannot open") && stderr.contains("no-such.pcap"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
