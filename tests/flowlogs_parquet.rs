//! VPC Flow Logs in Parquet as AWS delivers them (SPEC §10, issue 17), and
//! `--verdicts FILE.parquet`, through the command line. The Parquet inputs
//! are written here from the text fixtures (by the crate's own
//! `write_from_text`, with AWS's column types) or column by column, so each
//! row can be compared with the text line it came from.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, ArrayRef, Float64Array, Int32Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use serde_json::Value;
use sgplane::io::flowlog::parquet::write_from_text;

mod common;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/flowlogs")
        .join(name)
}

fn sgplane_with(policy: Option<&Path>, args: &[&str], stdin: Option<&[u8]>) -> Output {
    common::sgplane_with_stdin(policy, args, stdin.unwrap_or_default())
}

fn sgplane(args: &[&str], stdin: Option<&[u8]>) -> Output {
    sgplane_with(Some(&data("policy.toml")), args, stdin)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn summary(input: &str, stdin: Option<&[u8]>) -> Value {
    let out = sgplane(&["replay", input, "--json"], stdin);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A text fixture without the lines that are no record at all (a Parquet
/// row always has its columns), written as text and as Parquet.
fn both(dir: &Path, fixture: &str) -> (PathBuf, PathBuf) {
    let text: String = std::fs::read_to_string(data(fixture))
        .unwrap()
        .lines()
        .filter(|l| *l != "this line is not a record")
        .map(|l| format!("{l}\n"))
        .collect();
    let txt = dir.join(format!("{fixture}.txt"));
    std::fs::write(&txt, &text).unwrap();
    // A name that says nothing: recognised by the magic, not the name.
    let pq = dir.join(format!("{fixture}.bin"));
    let n = write_from_text(text.as_bytes(), File::create(&pq).unwrap()).unwrap();
    assert_eq!(n as usize, text.lines().count() - 1);
    (txt, pq)
}

const COUNTS: [&str; 9] = [
    "records",
    "judged",
    "agreeing",
    "differing",
    "nodata",
    "skipdata",
    "malformed",
    "judged_at_interface",
    "recorded_accept_denied_reverse_allowed",
];

/// The Parquet file's summary is the text's: the same counts, the same
/// differing records (rows numbered from 1, lines after the header from 2).
fn same_as_text(fixture: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (txt, pq) = both(dir.path(), fixture);
    let t = summary(s(&txt), None);
    let p = summary(s(&pq), None);
    assert_eq!(p["parquet"], true);
    assert_eq!(t["parquet"], false);
    assert_eq!(p["fields"], t["fields"]);
    for k in COUNTS {
        assert_eq!(p[k], t[k], "{fixture}: {k}");
    }
    assert!(t["judged"].as_u64().unwrap() > 0);
    let (td, pd) = (
        t["differences"].as_array().unwrap(),
        p["differences"].as_array().unwrap(),
    );
    assert_eq!(td.len(), pd.len());
    assert!(!td.is_empty());
    for (a, b) in td.iter().zip(pd) {
        let mut a = a.clone();
        a["line"] = (a["line"].as_u64().unwrap() - 1).into();
        assert_eq!(&a, b);
    }
    assert_eq!(p["differing_by_rule"], t["differing_by_rule"]);
    let rows = |v: &Value| -> Vec<(u64, String)> {
        v["malformed_lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["line"].as_u64().unwrap(),
                    m["why"].as_str().unwrap().into(),
                )
            })
            .collect()
    };
    let shifted: Vec<_> = rows(&t).into_iter().map(|(l, w)| (l - 1, w)).collect();
    assert_eq!(rows(&p), shifted);
}

#[test]
fn parquet_records_are_judged_as_their_text_lines() {
    same_as_text("default.log");
}

#[test]
fn a_custom_format_in_parquet_reads_by_column_name() {
    // Reordered columns, pkt-srcaddr, flow-direction, null ports for ICMP.
    same_as_text("custom.log");
}

#[test]
fn the_default_format_in_parquet_counts_and_names_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (_, pq) = both(dir.path(), "default.log");
    let p = summary(s(&pq), None);
    assert_eq!(p["records"], 10);
    assert_eq!(p["nodata"], 1);
    assert_eq!(p["skipdata"], 1);
    assert_eq!(p["malformed"], 1);
    assert_eq!(p["malformed_lines"][0]["line"], 9);
    assert_eq!(p["malformed_lines"][0]["why"], "bad srcaddr field");
    let out = sgplane(&["replay", s(&pq)], None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("(VPC flow log, Parquet, 14 columns)"),
        "{text}"
    );
    assert!(text.contains("row 6: tcp 10.0.0.7:53000"), "{text}");
    assert!(
        text.contains("malformed rows: 1; first at rows 9"),
        "{text}"
    );
}

#[test]
fn parquet_from_stdin_is_read_into_memory_and_judged_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let (_, pq) = both(dir.path(), "default.log");
    let file = summary(s(&pq), None);
    let stdin = summary("-", Some(&std::fs::read(&pq).unwrap()));
    assert_eq!(stdin["input"], "stdin");
    for k in COUNTS {
        assert_eq!(stdin[k], file[k], "{k}");
    }
    assert_eq!(stdin["differences"], file["differences"]);
}

/// Writes one batch of columns as a Parquet file.
fn parquet_of(path: &Path, columns: Vec<(&str, ArrayRef)>) {
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ));
    let batch =
        RecordBatch::try_new(schema.clone(), columns.into_iter().map(|c| c.1).collect()).unwrap();
    let mut w = ArrowWriter::try_new(File::create(path).unwrap(), schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

fn strs(v: &[Option<&str>]) -> ArrayRef {
    Arc::new(StringArray::from(v.to_vec()))
}

#[test]
fn nulls_read_as_dashes_and_bad_rows_are_malformed_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let pq = dir.path().join("nulls.parquet");
    let web = Some("10.0.1.10");
    parquet_of(
        &pq,
        vec![
            (
                "interface_id",
                strs(&[Some("eni-web"), None, Some("eni-web"), None, None, None]),
            ),
            (
                "srcaddr",
                strs(&[
                    Some("203.0.113.5"),
                    None,
                    Some("203.0.113.5"),
                    web,
                    web,
                    web,
                ]),
            ),
            ("dstaddr", strs(&[web, web, web, web, web, web])),
            (
                "srcport",
                Arc::new(Int32Array::from(vec![
                    Some(51000),
                    Some(1),
                    None,
                    Some(70000),
                    Some(1),
                    Some(1),
                ])),
            ),
            ("dstport", Arc::new(Int32Array::from(vec![Some(443); 6]))),
            (
                "protocol",
                Arc::new(Int32Array::from(vec![
                    Some(6),
                    Some(6),
                    Some(6),
                    Some(6),
                    Some(6),
                    Some(6),
                ])),
            ),
            (
                "action",
                strs(&[
                    Some("ACCEPT"),
                    Some("ACCEPT"),
                    Some("ACCEPT"),
                    Some("ACCEPT"),
                    None,
                    Some("ACCEPT"),
                ]),
            ),
            // Null log_status is `-`, which is never a log-status: malformed,
            // as the text line `… ACCEPT -` is (only a format without the
            // field has records by default).
            (
                "log_status",
                strs(&[
                    Some("OK"),
                    Some("OK"),
                    Some("OK"),
                    Some("OK"),
                    Some("OK"),
                    None,
                ]),
            ),
        ],
    );
    let p = summary(s(&pq), None);
    assert_eq!(p["records"], 6);
    assert_eq!(p["judged"], 1);
    assert_eq!(p["agreeing"], 1);
    assert_eq!(p["malformed"], 5);
    let why: Vec<(u64, &str)> = p["malformed_lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["line"].as_u64().unwrap(), m["why"].as_str().unwrap()))
        .collect();
    assert_eq!(
        why,
        [
            (2, "bad srcaddr field"),
            (3, "bad srcport/dstport field"),
            (4, "bad srcport field"),
            (5, "bad action field"),
            (6, "bad log-status field"),
        ]
    );
}

#[test]
fn a_parquet_file_that_cannot_be_a_flow_log_exits_2_with_why() {
    let dir = tempfile::tempdir().unwrap();
    // No action column: the text rule for a header without it.
    let no_action = dir.path().join("no-action.parquet");
    parquet_of(
        &no_action,
        vec![
            ("srcaddr", strs(&[Some("10.0.0.1")])),
            ("dstaddr", strs(&[Some("10.0.1.10")])),
            ("protocol", Arc::new(Int32Array::from(vec![6]))),
        ],
    );
    // A column of a type no flow log has.
    let floats = dir.path().join("floats.parquet");
    parquet_of(
        &floats,
        vec![
            ("srcaddr", strs(&[Some("10.0.0.1")])),
            ("dstaddr", strs(&[Some("10.0.1.10")])),
            ("protocol", Arc::new(Float64Array::from(vec![6.0]))),
            ("action", strs(&[Some("ACCEPT")])),
        ],
    );
    // The magic and then nothing Parquet.
    let broken = dir.path().join("broken.parquet");
    std::fs::write(&broken, b"PAR1 and then no Parquet at all").unwrap();
    for (path, says) in [
        (&no_action, "no action field"),
        (&floats, "protocol is of type Float64"),
        (&broken, "not a readable Parquet flow log"),
    ] {
        for stdin in [false, true] {
            let bytes = std::fs::read(path).unwrap();
            let out = if stdin {
                sgplane(&["replay", "-"], Some(&bytes))
            } else {
                sgplane(&["replay", s(path)], None)
            };
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{err}");
            assert!(err.contains(says), "{path:?} stdin {stdin}: {err}");
            assert!(!err.contains("panicked"), "{err}");
        }
    }
}

/// Every row of a Parquet file as JSON objects keyed by column name
/// (timestamps as `secs.micros` numbers, as the JSON lines write them).
fn parquet_rows(path: &Path) -> Vec<serde_json::Map<String, Value>> {
    let r = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    for b in r {
        let b = b.unwrap();
        for i in 0..b.num_rows() {
            let mut row = serde_json::Map::new();
            for (f, c) in b.schema().fields().iter().zip(b.columns()) {
                let v = if c.is_null(i) {
                    Value::Null
                } else {
                    match c.data_type() {
                        DataType::Utf8 => c.as_string::<i32>().value(i).into(),
                        DataType::Int64 => c.as_primitive::<Int64Type>().value(i).into(),
                        DataType::Int32 => c.as_primitive::<Int32Type>().value(i).into(),
                        DataType::Timestamp(_, _) => {
                            let us = c.as_primitive::<TimestampMicrosecondType>().value(i);
                            let text = format!("{}.{:06}", us / 1_000_000, us % 1_000_000);
                            serde_json::from_str(&text).unwrap()
                        }
                        t => panic!("unexpected column type {t}"),
                    }
                };
                row.insert(f.name().clone(), v);
            }
            rows.push(row);
        }
    }
    rows
}

fn json_lines(path: &Path) -> Vec<serde_json::Map<String, Value>> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `--verdicts x.parquet` and `--verdicts x.jsonl` of the same input: one
/// row per line, every value the same.
fn verdicts_match(policy: Option<&Path>, input: &Path) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let (jsonl, pq) = (dir.path().join("v.jsonl"), dir.path().join("v.parquet"));
    for v in [&jsonl, &pq] {
        let out = sgplane_with(policy, &["replay", s(input), "--verdicts", s(v)], None);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(&std::fs::read(&pq).unwrap()[..4], b"PAR1");
    let (lines, rows) = (json_lines(&jsonl), parquet_rows(&pq));
    assert_eq!(rows.len(), lines.len());
    for (l, r) in lines.iter().zip(&rows) {
        assert_eq!(l, r);
    }
    rows.len()
}

#[test]
fn parquet_verdicts_of_a_flow_log_are_its_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let (txt, pq) = both(dir.path(), "custom.log");
    let judged = summary(s(&txt), None)["judged"].as_u64().unwrap() as usize;
    assert_eq!(verdicts_match(Some(&data("policy.toml")), &txt), judged);
    assert_eq!(verdicts_match(Some(&data("policy.toml")), &pq), judged);
}

#[test]
fn parquet_verdicts_of_a_capture_have_a_row_per_packet() {
    let pcap = Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps/demo.pcap");
    let out = sgplane_with(None, &["replay", s(&pcap), "--json"], None);
    assert!(out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let packets = report["packets"].as_u64().unwrap() as usize;
    assert!(packets > 100);
    assert_eq!(verdicts_match(None, &pcap), packets);
}

#[test]
fn verdicts_to_stdout_stay_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let (_, pq) = both(dir.path(), "default.log");
    let out = sgplane(&["replay", s(&pq), "--verdicts", "-"], None);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 7);
    assert_eq!(lines[0]["recorded_action"], "ACCEPT");
}

#[test]
fn the_text_to_parquet_writer_uses_aws_types_and_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let (_, pq) = both(dir.path(), "default.log");
    let b = ParquetRecordBatchReaderBuilder::try_new(File::open(&pq).unwrap()).unwrap();
    let schema = b.schema().clone();
    let ty = |n: &str| schema.field_with_name(n).unwrap().data_type().clone();
    assert_eq!(ty("srcport"), DataType::Int32);
    assert_eq!(ty("start"), DataType::Int64);
    assert_eq!(ty("interface_id"), DataType::Utf8);
    let codec = b.metadata().row_group(0).column(0).compression();
    assert!(
        matches!(codec, parquet::basic::Compression::GZIP(_)),
        "{codec:?}"
    );
}

#[test]
fn compare_names_parquet_records_by_row() {
    let dir = tempfile::tempdir().unwrap();
    let (txt, pq) = both(dir.path(), "default.log");
    let policy = std::fs::read_to_string(data("policy.toml")).unwrap();
    let https = "  { proto = \"tcp\", ports = \"443\", from = \"0.0.0.0/0\" },\n";
    assert!(policy.contains(https));
    let new = dir.path().join("new.toml");
    std::fs::write(&new, policy.replace(https, "")).unwrap();
    let first = |input: &Path| {
        let out = sgplane(&["replay", s(input), "--compare", s(&new)], None);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let at = text
            .lines()
            .find(|l| l.trim_start().starts_with("first "))
            .unwrap_or_else(|| panic!("{text}"));
        at.trim().split(':').next().unwrap().to_string()
    };
    // The same record: the text's line 2 is the Parquet file's row 1.
    assert_eq!(first(&txt), "first line 2");
    assert_eq!(first(&pq), "first row 1");
}

/// Every byte of a Parquet flow log changed in turn: the file reads as
/// rows or fails with an error that says something, never a panic (the
/// `parquet` crate asserts on some damage; the reader contains that).
#[test]
fn a_damaged_parquet_file_is_an_error_or_rows_never_a_panic() {
    use sgplane::io::flowlog::{sniff, Sniffed};
    let dir = tempfile::tempdir().unwrap();
    let (_, pq) = both(dir.path(), "default.log");
    let file = std::fs::read(&pq).unwrap();
    let (mut errors, mut read) = (0, 0);
    for i in 0..file.len() {
        let mut damaged = file.clone();
        damaged[i] ^= 0xa5;
        let outcome = std::panic::catch_unwind(|| match sniff(std::io::Cursor::new(damaged)) {
            Ok(Sniffed::FlowLog(mut r)) => loop {
                match r.next_entry() {
                    Ok(Some(_)) => {}
                    Ok(None) => return true,
                    Err(e) => {
                        assert!(!e.to_string().is_empty());
                        return false;
                    }
                }
            },
            Ok(Sniffed::BadFormat(e)) => {
                assert!(!e.to_string().is_empty());
                false
            }
            Ok(Sniffed::Other(_)) => false,
            Err(e) => {
                assert!(!e.to_string().is_empty());
                false
            }
        });
        match outcome {
            Ok(true) => read += 1,
            Ok(false) => errors += 1,
            Err(_) => panic!("byte {i} of {} changed: a panic", file.len()),
        }
    }
    // Both happen: damage to the data pages' values reads as other values.
    assert!(errors > 0 && read > 0, "{errors} errors, {read} read");
}
