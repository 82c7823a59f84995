//! `sgplane replay` of VPC Flow Logs (SPEC §10), through the command line:
//! recognised by content (text, gzip, stdin; default and custom formats),
//! every record judged as a new flow and compared with its recorded action.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

mod common;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/flowlogs")
        .join(name)
}

fn sgplane(args: &[&str], stdin: Option<&[u8]>) -> Output {
    common::sgplane_with_stdin(Some(&data("policy.toml")), args, stdin.unwrap_or_default())
}

/// The JSON summary of replaying `input` (a path, or `-` with `stdin`).
fn summary(input: &str, stdin: Option<&[u8]>) -> Value {
    let out = sgplane(&["replay", input, "--json"], stdin);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every record is accounted for, once.
fn nothing_lost(s: &Value) {
    let n = |k: &str| s[k].as_u64().unwrap();
    assert_eq!(
        n("records"),
        n("judged") + n("nodata") + n("skipdata") + n("malformed")
    );
    assert_eq!(n("judged"), n("agreeing") + n("differing"));
}

#[test]
fn the_default_format_is_judged_and_compared() {
    let s = summary(path_str(&data("default.log")), None);
    nothing_lost(&s);
    assert_eq!(s["format"], "vpc-flow-log");
    assert_eq!(s["header"], true);
    assert_eq!(s["records"], 11);
    assert_eq!(s["judged"], 7);
    assert_eq!(s["agreeing"], 4);
    assert_eq!(s["differing"], 3);
    assert_eq!(s["nodata"], 1);
    assert_eq!(s["skipdata"], 1);
    assert_eq!(s["malformed"], 2);
    let lines: Vec<u64> = s["malformed_lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [10, 11]);
    // eni-elsewhere is no interface of the policy: judged by addresses.
    assert_eq!(s["judged_at_interface"], 6);
}

#[test]
fn a_disagreement_is_named_with_its_line_and_rule() {
    let s = summary(path_str(&data("default.log")), None);
    let d = s["differences"].as_array().unwrap();
    assert_eq!(d.len(), 3);
    // Recorded ACCEPT of RDP that no rule of sg-web allows.
    assert_eq!(d[0]["line"], 5);
    assert_eq!(d[0]["recorded_action"], "ACCEPT");
    assert_eq!(d[0]["verdict"], "deny");
    assert_eq!(d[0]["reason"], "no-rule");
    assert_eq!(d[0]["rule"], Value::Null);
    assert_eq!(d[0]["interface"], "eni-web");
    assert_eq!(d[0]["direction"], "ingress");
    // sg-web allows everything out, so this could be a reply of a
    // connection web opened from port 3389: marked, not concluded.
    assert_eq!(d[0]["reverse_allowed"], true);
    // The database's reply, recorded at its ENI going out: sg-db allows
    // nothing out, but the reverse flow is allowed, so it may be a reply.
    assert_eq!(d[1]["line"], 6);
    assert_eq!(d[1]["direction"], "egress");
    assert_eq!(d[1]["reverse_allowed"], true);
    // Recorded REJECT of SSH from inside the VPC, which sg-web allows.
    assert_eq!(d[2]["line"], 7);
    assert_eq!(d[2]["recorded_action"], "REJECT");
    assert_eq!(d[2]["verdict"], "allow");
    assert_eq!(d[2]["rule"], "sg-web/ingress/1");
    assert_eq!(s["recorded_accept_denied"], 2);
    assert_eq!(s["recorded_accept_denied_reverse_allowed"], 2);
    assert_eq!(s["recorded_reject_allowed"], 1);
}

#[test]
fn the_text_summary_lists_differences_and_does_not_overclaim() {
    let out = sgplane(&["replay", path_str(&data("default.log"))], None);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("records: 11 (judged 7, NODATA 1, SKIPDATA 1, malformed 2)"),
        "{text}"
    );
    assert!(
        text.contains("line 7: tcp 10.0.0.7:53000 -> 10.0.1.10:22 recorded REJECT, sgplane allow rule sg-web/ingress/1 at eni-web ingress"),
        "{text}"
    );
    assert!(text.contains("possibly replies"), "{text}");
    assert!(text.contains("network ACLs"), "{text}");
    assert!(
        text.contains("malformed lines: 2; first at lines 10"),
        "{text}"
    );
}

#[test]
fn a_custom_format_with_reordered_and_extra_fields() {
    let s = summary(path_str(&data("custom.log")), None);
    nothing_lost(&s);
    assert_eq!(s["fields"].as_array().unwrap().len(), 17);
    assert_eq!(s["records"], 5);
    assert_eq!(s["judged"], 4);
    assert_eq!(s["nodata"], 1);
    // pkt-srcaddr (web) is what sg-db sees, not the intermediate srcaddr;
    // the REJECT from 10.0.9.9 agrees; ICMP without a rule is denied.
    assert_eq!(s["agreeing"], 3);
    assert_eq!(s["differing"], 1);
    let d = &s["differences"][0];
    assert_eq!(d["line"], 5);
    assert_eq!(d["proto"], "icmp");
    assert_eq!(d["sport"], Value::Null);
    assert_eq!(s["judged_at_interface"], 4);
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

#[test]
fn gzip_and_stdin_give_the_same_summary() {
    let text = std::fs::read(data("default.log")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // A name that says nothing: recognised by content.
    let zipped = dir.path().join("records.bin");
    std::fs::write(&zipped, gzip(&text)).unwrap();
    let plain = summary(path_str(&data("default.log")), None);
    let from_gzip = summary(path_str(&zipped), None);
    assert_eq!(from_gzip["gzip"], true);
    let from_stdin = summary("-", Some(&text));
    let from_stdin_gzip = summary("-", Some(&gzip(&text)));
    for s in [&from_gzip, &from_stdin, &from_stdin_gzip] {
        for k in [
            "records",
            "judged",
            "agreeing",
            "differing",
            "nodata",
            "skipdata",
            "malformed",
        ] {
            assert_eq!(s[k], plain[k], "{k}");
        }
        assert_eq!(s["differences"], plain["differences"]);
    }
}

#[test]
fn headerless_default_lines_are_recognised() {
    let text = std::fs::read_to_string(data("default.log")).unwrap();
    let body: String = text.lines().skip(1).map(|l| format!("{l}\n")).collect();
    let s = summary("-", Some(body.as_bytes()));
    assert_eq!(s["header"], false);
    assert_eq!(s["records"], 11);
    assert_eq!(s["differing"], 3);
    // Line numbers count from the file's first line.
    assert_eq!(s["differences"][0]["line"], 4);
}

#[test]
fn verdict_lines_one_per_judged_record_with_the_recorded_action() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("v.jsonl");
    let csv = dir.path().join("v.csv");
    for p in [&jsonl, &csv] {
        let out = sgplane(
            &[
                "replay",
                path_str(&data("default.log")),
                "--verdicts",
                path_str(p),
            ],
            None,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let lines: Vec<Value> = std::fs::read_to_string(&jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 7);
    let l = &lines[5];
    assert_eq!(l["index"], 5);
    assert_eq!(l["ts"].as_f64(), Some(1700000000.0));
    assert_eq!(l["verdict"], "allow");
    assert_eq!(l["rule"], "sg-web/ingress/1");
    assert_eq!(l["interface"], "eni-web");
    assert_eq!(l["src"], "10.0.0.7");
    assert_eq!(l["dport"], 22);
    assert_eq!(l["recorded_action"], "REJECT");
    let csv = std::fs::read_to_string(&csv).unwrap();
    let mut rows = csv.lines();
    assert_eq!(
        rows.next().unwrap(),
        "index,ts,verdict,reason,rule,interface,direction,proto,src,dst,sport,dport,zone,recorded_action"
    );
    assert_eq!(
        rows.nth(5).unwrap(),
        "5,1700000000.000000,allow,rule,sg-web/ingress/1,eni-web,ingress,tcp,10.0.0.7,10.0.1.10,53000,22,,REJECT"
    );
}

#[test]
fn packet_outputs_are_refused_for_flow_logs() {
    let out = sgplane(
        &[
            "replay",
            path_str(&data("default.log")),
            "--denied",
            "/tmp/never.pcap",
        ],
        None,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--denied"));
}

#[test]
fn text_that_is_no_flow_log_is_an_error_not_a_panic() {
    let out = sgplane(&["replay", "-"], Some(b"hello, world\n"));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("not a pcap or pcapng file"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // A header without what judging needs is named.
    let out = sgplane(
        &["replay", "-"],
        Some(b"version interface-id srcaddr dstaddr action\n"),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no protocol field"));
}

#[test]
fn a_damaged_gzip_stream_stops_with_what_was_read() {
    let mut text = String::from("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n");
    for i in 0..2000 {
        text.push_str(&format!(
            "2 1 eni-web 203.0.113.5 10.0.1.10 {} 443 6 1 1 1700000000 1700000060 ACCEPT OK\n",
            10000 + i
        ));
    }
    let mut gz = gzip(text.as_bytes());
    let n = gz.len();
    gz.truncate(n - 100);
    let out = sgplane(&["replay", "-", "--json"], Some(&gz));
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    nothing_lost(&s);
    assert!(s["stopped"].is_object());
}

#[test]
fn fields_sgplane_does_not_know_are_named_and_read_past() {
    let log = "version interface-id srcaddr dstaddr srcport dstport protocol action log-status later-field\n\
               2 eni-web 203.0.113.5 10.0.1.10 51000 443 6 ACCEPT OK some-value\n";
    let s = summary("-", Some(log.as_bytes()));
    assert_eq!(s["unknown_fields"], serde_json::json!(["later-field"]));
    assert_eq!(
        (s["judged"].as_u64(), s["agreeing"].as_u64()),
        (Some(1), Some(1))
    );
    let out = sgplane(&["replay", "-"], Some(log.as_bytes()));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("fields not known to sgplane, read past: later-field"),
        "{text}"
    );
}

#[test]
fn a_flow_log_without_an_action_field_exits_2_naming_it() {
    let log = "version resource-type account-id tgw-id tgw-attachment-id srcaddr dstaddr srcport dstport protocol packets bytes start end log-status\n\
               6 TransitGateway 123456789012 tgw-1 tgw-attach-1 10.0.0.1 10.1.0.1 40000 443 6 10 1000 1700000000 1700000060 OK\n";
    let out = sgplane(&["replay", "-"], Some(log.as_bytes()));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no action field"), "{err}");
    assert!(!err.contains("pcap"), "{err}");
}

/// Custom-format records as CloudWatch Logs keeps them: no header line.
const CUSTOM_FORMAT: &str = "${version} ${vpc-id} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${action} ${log-status} ${flow-direction}";
const CUSTOM_RECORDS: &str =
    "5 vpc-1 eni-web 203.0.113.5 10.0.1.10 51000 443 6 ACCEPT OK ingress\n\
                              5 vpc-1 eni-web 203.0.113.5 10.0.1.10 51001 22 6 REJECT OK ingress\n\
                              5 vpc-1 eni-web 203.0.113.5 10.0.1.10 51002 22 6 ACCEPT OK ingress\n";

#[test]
fn log_format_reads_custom_records_without_their_header() {
    // Without the format, the first line is no header: not a flow log.
    let out = sgplane(&["replay", "-"], Some(CUSTOM_RECORDS.as_bytes()));
    assert_eq!(out.status.code(), Some(2));
    let out = sgplane(
        &["replay", "-", "--json", "--log-format", CUSTOM_FORMAT],
        Some(CUSTOM_RECORDS.as_bytes()),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    nothing_lost(&s);
    assert_eq!(s["records"], 3);
    assert_eq!(s["format_given"], true);
    assert_eq!(s["header"], false);
    // HTTPS is allowed and SSH from outside is not: the third differs.
    assert_eq!(
        (s["agreeing"].as_u64(), s["differing"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(s["judged_at_interface"], 3);
    assert_eq!(s["differences"][0]["line"], 3);

    // The same records behind their header, gzipped: the header is skipped
    // and lines keep their numbers.
    let names = CUSTOM_FORMAT.replace("${", "").replace('}', "");
    let with_header = gzip(format!("{names}\n{CUSTOM_RECORDS}").as_bytes());
    let out = sgplane(
        &["replay", "-", "--json", "--log-format", CUSTOM_FORMAT],
        Some(&with_header),
    );
    let h: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (h["records"].as_u64(), h["header"].as_bool()),
        (Some(3), Some(true))
    );
    assert_eq!(h["differences"][0]["line"], 4);
}

#[test]
fn a_log_format_that_cannot_be_judged_exits_2_saying_why() {
    for (format, why) in [
        (
            "${version} ${srcaddr} ${dstaddr} ${protocol}",
            "no action field",
        ),
        ("version SrcAddr", "not field names"),
        ("", "not field names"),
    ] {
        let out = sgplane(
            &["replay", "-", "--log-format", format],
            Some(CUSTOM_RECORDS.as_bytes()),
        );
        assert_eq!(out.status.code(), Some(2), "{format}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(why), "{format}: {err}");
    }
}

#[test]
fn log_format_reads_past_a_leading_word_it_names() {
    let line = "2023-11-14T00:00:00.000Z 2 123456789010 eni-web 203.0.113.5 10.0.1.10 51000 443 6 5 500 1700000000 1700000060 ACCEPT OK\n";
    let format = "time ${version} ${account-id} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${packets} ${bytes} ${start} ${end} ${action} ${log-status}";
    let out = sgplane(
        &["replay", "-", "--json", "--log-format", format],
        Some(line.as_bytes()),
    );
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["unknown_fields"], serde_json::json!(["time"]));
    assert_eq!(
        (s["judged"].as_u64(), s["agreeing"].as_u64()),
        (Some(1), Some(1))
    );
}
