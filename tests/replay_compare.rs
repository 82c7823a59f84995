//! `sgplane replay INPUT --compare NEW` (SPEC §10) from the command line:
//! a capture written here and a flow log judged under two policies in one
//! pass, the flows whose verdict changes following from the difference
//! between the policies, and the exit code that gates a change in CI.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use pcap_file::pcap::{PcapPacket, PcapWriter};
use serde_json::Value;
use sgplane::wire::build;

/// The policy in force: SSH from the VPC, HTTP and HTTPS from anywhere.
/// Nothing may leave but replies: so a server whose connection the new
/// policy refused cannot pick it up again as a new flow of its own (a
/// mid-stream packet opens an entry, as Linux conntrack's loose pickup
/// does), and every packet of that connection changes.
const OLD: &str = r#"
[security_groups.sg-web]
ingress = [
  { proto = "tcp", ports = "22", from = "10.0.0.0/16" },
  { proto = "tcp", ports = "80", from = "0.0.0.0/0" },
  { proto = "tcp", ports = "443", from = "0.0.0.0/0" },
]
egress = []

[interfaces.eni-web]
addresses = ["10.0.1.10"]
security_groups = ["sg-web"]
"#;

const HTTP_RULE: &str = "  { proto = \"tcp\", ports = \"80\", from = \"0.0.0.0/0\" },\n";

/// OLD without its HTTP rule (sg-web/ingress/1).
fn removed() -> String {
    assert!(OLD.contains(HTTP_RULE));
    OLD.replace(HTTP_RULE, "")
}

/// OLD with tcp/8080 from anywhere added (sg-web/ingress/3).
fn added() -> String {
    OLD.replace(
        "]\negress",
        "  { proto = \"tcp\", ports = \"8080\", from = \"0.0.0.0/0\" },\n]\negress",
    )
}

const SERVER: &str = "10.0.1.10";
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const SYN_ACK: u8 = 0x12;
const PSH_ACK: u8 = 0x18;
const FIN_ACK: u8 = 0x11;

fn tcp(src: &str, sport: u16, dst: &str, dport: u16, flags: u8, seq: u32, ack: u32) -> Vec<u8> {
    let payload: &[u8] = if flags == PSH_ACK { b"0123456789" } else { b"" };
    build::tcp(
        src.parse().unwrap(),
        dst.parse().unwrap(),
        sport,
        dport,
        flags,
        seq,
        ack,
        payload,
    )
}

/// A whole connection from `client:port` to the server's `dport`:
/// handshake, a request and its answer, both FINs and the last ACK.
fn connection(client: &str, port: u16, dport: u16) -> Vec<Vec<u8>> {
    let out = |flags, seq, ack| tcp(client, port, SERVER, dport, flags, seq, ack);
    let back = |flags, seq, ack| tcp(SERVER, dport, client, port, flags, seq, ack);
    vec![
        out(SYN, 1000, 0),
        back(SYN_ACK, 5000, 1001),
        out(ACK, 1001, 5001),
        out(PSH_ACK, 1001, 5001),
        back(PSH_ACK, 5001, 1011),
        out(FIN_ACK, 1011, 5011),
        back(FIN_ACK, 5011, 1012),
        out(ACK, 1012, 5012),
    ]
}

/// The capture, 21 packets, with the index of each:
/// - 0..8: HTTPS from 203.0.113.5:51000, a whole connection (unchanged);
/// - 8..16: HTTP from 203.0.113.6:52000, a whole connection;
/// - 16, 18, 20: HTTP from 203.0.113.7:53000, a SYN sent three times;
/// - 17, 19: 8080 from 198.51.100.9:54000, a SYN sent twice.
fn write_capture(path: &Path) {
    let mut frames = connection("203.0.113.5", 51000, 443);
    frames.extend(connection("203.0.113.6", 52000, 80));
    let c = tcp("203.0.113.7", 53000, SERVER, 80, SYN, 7000, 0);
    let d = tcp("198.51.100.9", 54000, SERVER, 8080, SYN, 9000, 0);
    frames.extend([c.clone(), d.clone(), c.clone(), d, c]);
    let mut w = PcapWriter::new(std::fs::File::create(path).unwrap()).unwrap();
    for (i, f) in frames.iter().enumerate() {
        let ts = Duration::from_millis(1_700_000_000_000 + 10 * i as u64);
        w.write_packet(&PcapPacket::new(ts, f.len() as u32, f))
            .unwrap();
    }
}

/// A directory with the capture, old.toml and the given NEW policy.
fn setup(new: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_capture(&dir.path().join("web.pcap"));
    std::fs::write(dir.path().join("old.toml"), OLD).unwrap();
    std::fs::write(dir.path().join("new.toml"), new).unwrap();
    dir
}

fn sgplane(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sgplane"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run sgplane")
}

fn show(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `-c old.toml replay web.pcap --compare NEW EXTRA…`.
fn compare(dir: &Path, new: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "-c",
        "old.toml",
        "replay",
        "web.pcap",
        "--no-progress",
        "--compare",
        new,
    ];
    args.extend(extra);
    sgplane(dir, &args)
}

/// `-c old.toml replay web.pcap --compare new.toml --json EXTRA…`: the
/// exit code and the summary.
fn compare_json(dir: &Path, extra: &[&str]) -> (Option<i32>, Value) {
    let mut args = vec!["--json"];
    args.extend(extra);
    let o = compare(dir, "new.toml", &args);
    let v = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}\n{}", show(&o)));
    (o.status.code(), v)
}

fn flow(f: &Value) -> (String, u64, String, u64) {
    (
        f["src"].as_str().unwrap().to_string(),
        f["sport"].as_u64().unwrap(),
        f["dst"].as_str().unwrap().to_string(),
        f["dport"].as_u64().unwrap(),
    )
}

fn ends(src: &str, sport: u64, dst: &str, dport: u64) -> (String, u64, String, u64) {
    (src.into(), sport, dst.into(), dport)
}

#[test]
fn a_removed_rule_lists_its_flows_as_newly_denied_and_fails() {
    let dir = setup(&removed());
    let (code, s) = compare_json(dir.path(), &["--verdicts", "v.csv"]);
    assert_eq!(code, Some(1), "{s:#}");
    // Everything else is the -c policy's: 19 of 21 allowed, 8080 denied.
    assert_eq!(
        (s["packets"].as_u64(), s["allowed"].as_u64()),
        (Some(21), Some(19))
    );
    let c = &s["compare"];
    assert_eq!(c["policy"], "new.toml");
    assert_eq!(c["compared_with"], "old.toml");
    assert_eq!(c["unit"], "packets");
    assert_eq!(c["judged"], 21);
    assert_eq!(
        (c["allowed_before"].as_u64(), c["allowed_after"].as_u64()),
        (Some(19), Some(8))
    );
    assert_eq!(c["newly_denied_flows"], 2);
    assert_eq!(c["newly_denied_packets"], 11);
    assert_eq!(c["newly_allowed_flows"], 0);
    assert_eq!(c["newly_allowed_packets"], 0);
    assert_eq!(
        (c["changed_flows"].as_u64(), c["changed_packets"].as_u64()),
        (Some(2), Some(11))
    );
    assert_eq!(c["flows_exact"], true);
    let d = c["newly_denied"].as_array().unwrap();
    assert_eq!(d.len(), 2);
    // The whole HTTP connection, both directions, its SYN first: the
    // established connection the new policy would not have admitted.
    assert_eq!(flow(&d[0]), ends("203.0.113.6", 52000, SERVER, 80));
    assert_eq!(d[0]["newly_denied_packets"], 8);
    assert_eq!(d[0]["newly_allowed_packets"], 0);
    assert_eq!(d[0]["initiator_known"], true);
    let first = &d[0]["first_newly_denied"];
    assert_eq!(first["index"], 8);
    assert!((first["ts"].as_f64().unwrap() - 1_700_000_000.08).abs() < 1e-6);
    assert_eq!(first["old"]["verdict"], "allow");
    assert_eq!(first["old"]["reason"], "rule");
    assert_eq!(first["old"]["rule"], "sg-web/ingress/1");
    assert_eq!(first["old"]["interface"], "eni-web");
    assert_eq!(first["old"]["direction"], "ingress");
    assert_eq!(first["new"]["verdict"], "deny");
    assert_eq!(first["new"]["reason"], "no-rule");
    assert_eq!(first["new"]["rule"], Value::Null);
    assert_eq!(first["new"]["interface"], "eni-web");
    assert_eq!(d[0]["first_newly_allowed"], Value::Null);
    // The SYN sent three times: fewer packets, listed second.
    assert_eq!(flow(&d[1]), ends("203.0.113.7", 53000, SERVER, 80));
    assert_eq!(d[1]["newly_denied_packets"], 3);
    assert_eq!(d[1]["first_newly_denied"]["index"], 16);
    assert_eq!(c["newly_denied_not_listed"], 0);
    // --verdicts stays the -c policy's: the HTTP SYN allowed by its rule.
    let csv = std::fs::read_to_string(dir.path().join("v.csv")).unwrap();
    let row = csv.lines().nth(1 + 8).unwrap();
    assert!(
        row.contains(",allow,rule,sg-web/ingress/1,eni-web,"),
        "{row}"
    );
}

#[test]
fn the_text_summary_names_the_flows_and_rules_and_stderr_says_why_it_fails() {
    let dir = setup(&removed());
    let o = compare(dir.path(), "new.toml", &[]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    let section = &text[text
        .find("Compared with new.toml")
        .unwrap_or_else(|| panic!("{text}"))..];
    for want in [
        "Compared with new.toml (21 packets judged under both",
        "newly denied flows (most packets first; 2 of 2):",
        "       8  tcp 203.0.113.6:52000 -> 10.0.1.10:80\n",
        "first packet 8 at 1700000000.080000: allow rule sg-web/ingress/1 at eni-web ingress => deny no-rule at eni-web ingress",
        "       3  tcp 203.0.113.7:53000 -> 10.0.1.10:80\n",
    ] {
        assert!(section.contains(want), "missing {want:?} in\n{section}");
    }
    assert!(!section.contains("newly allowed flows"), "{section}");
    assert!(
        !section.contains("51000"),
        "the unchanged connection is listed:\n{section}"
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("new.toml would deny 11 packets of 2 flows that old.toml allows"),
        "{err}"
    );
}

#[test]
fn an_added_rule_lists_its_flows_as_newly_allowed_and_passes() {
    let dir = setup(&added());
    let (code, s) = compare_json(dir.path(), &[]);
    assert_eq!(code, Some(0), "{s:#}");
    let c = &s["compare"];
    assert_eq!(
        (
            c["newly_denied_flows"].as_u64(),
            c["newly_denied_packets"].as_u64()
        ),
        (Some(0), Some(0))
    );
    assert_eq!(
        (
            c["newly_allowed_flows"].as_u64(),
            c["newly_allowed_packets"].as_u64()
        ),
        (Some(1), Some(2))
    );
    assert_eq!(
        (c["allowed_before"].as_u64(), c["allowed_after"].as_u64()),
        (Some(19), Some(21))
    );
    let a = c["newly_allowed"].as_array().unwrap();
    assert_eq!(a.len(), 1);
    assert_eq!(flow(&a[0]), ends("198.51.100.9", 54000, SERVER, 8080));
    let first = &a[0]["first_newly_allowed"];
    assert_eq!(first["index"], 17);
    assert_eq!(first["old"]["verdict"], "deny");
    assert_eq!(first["old"]["reason"], "no-rule");
    assert_eq!(first["new"]["verdict"], "allow");
    assert_eq!(first["new"]["rule"], "sg-web/ingress/3");
    assert!(c["newly_denied"].as_array().unwrap().is_empty());
}

#[test]
fn identical_policies_change_nothing() {
    let dir = setup(OLD);
    let (code, s) = compare_json(dir.path(), &[]);
    assert_eq!(code, Some(0), "{s:#}");
    let c = &s["compare"];
    assert_eq!(c["judged"], 21);
    assert_eq!(
        (c["changed_flows"].as_u64(), c["changed_packets"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(c["allowed_before"], c["allowed_after"]);
    assert!(c["newly_denied"].as_array().unwrap().is_empty());
    assert!(c["newly_allowed"].as_array().unwrap().is_empty());
    let o = compare(dir.path(), "old.toml", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("no verdict changes"));
    // Without --compare the JSON has no compare object.
    let o = sgplane(
        dir.path(),
        &["-c", "old.toml", "replay", "web.pcap", "--json"],
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v.get("compare").is_none());
}

#[test]
fn a_flow_log_is_compared_record_by_record() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/flowlogs");
    let policy = std::fs::read_to_string(data.join("policy.toml")).unwrap();
    let https = "  { proto = \"tcp\", ports = \"443\", from = \"0.0.0.0/0\" },\n";
    assert!(policy.contains(https));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("new.toml"), policy.replace(https, "")).unwrap();
    let log = data.join("default.log");
    let o = sgplane(
        dir.path(),
        &[
            "-c",
            data.join("policy.toml").to_str().unwrap(),
            "replay",
            log.to_str().unwrap(),
            "--compare",
            "new.toml",
            "--json",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let s: Value = serde_json::from_slice(&o.stdout).unwrap();
    // The flow-log summary itself is the -c policy's, as without --compare.
    assert_eq!(
        (s["judged"].as_u64(), s["agreeing"].as_u64()),
        (Some(7), Some(4))
    );
    let c = &s["compare"];
    assert_eq!(c["unit"], "records");
    assert_eq!(c["judged"], 7);
    // The two HTTPS records (one at eni-web, one judged by its addresses).
    assert_eq!(
        (
            c["newly_denied_flows"].as_u64(),
            c["newly_denied_packets"].as_u64()
        ),
        (Some(2), Some(2))
    );
    assert_eq!(c["newly_allowed_packets"], 0);
    let d = c["newly_denied"].as_array().unwrap();
    assert_eq!(flow(&d[0]), ends("203.0.113.5", 51000, SERVER, 443));
    assert_eq!(flow(&d[1]), ends("203.0.113.5", 51002, SERVER, 443));
    let first = &d[0]["first_newly_denied"];
    assert_eq!(
        (first["line"].as_u64(), first["index"].as_u64()),
        (Some(2), Some(0))
    );
    assert_eq!(first["ts"].as_f64(), Some(1_700_000_000.0));
    assert_eq!(first["old"]["rule"], "sg-web/ingress/0");
    assert_eq!(first["new"]["reason"], "no-rule");
    assert_eq!(d[1]["first_newly_denied"]["line"], 12);
    let o = sgplane(
        dir.path(),
        &[
            "-c",
            data.join("policy.toml").to_str().unwrap(),
            "replay",
            log.to_str().unwrap(),
            "--compare",
            "new.toml",
        ],
    );
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("first line 2: allow rule sg-web/ingress/0 at eni-web ingress => deny no-rule at eni-web ingress"),
        "{text}"
    );
    assert!(
        text.contains("newly denied flows (most records first; 2 of 2):"),
        "{text}"
    );
}

#[test]
fn a_bad_new_policy_exits_2_with_its_file_and_line() {
    let dir = setup("[security_groups.sg-web]\n\ningress = [ { proto = \"tcp\", ports = \"99999\", from = \"0.0.0.0/0\" } ]\n");
    let o = compare(dir.path(), "new.toml", &[]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--compare new.toml"), "{err}");
    assert!(err.contains("new.toml:3:"), "{err}");
    assert!(o.stdout.is_empty(), "{}", show(&o));
    let o = compare(dir.path(), "missing.toml", &[]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("missing.toml"),
        "{}",
        show(&o)
    );
}

/// (verdict) of every packet of `pcap` under `config`, from a replay of its own.
fn verdicts(config: &str, pcap: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("v.csv");
    let root = env!("CARGO_MANIFEST_DIR");
    let o = sgplane(
        Path::new(root),
        &[
            "-c",
            config,
            "replay",
            pcap,
            "--no-progress",
            "--verdicts",
            csv.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let text = std::fs::read_to_string(csv).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let at = header.iter().position(|h| *h == "verdict").unwrap();
    lines
        .map(|l| l.split(',').nth(at).unwrap().to_string())
        .collect()
}

#[test]
fn an_imported_account_as_new_agrees_with_two_separate_replays() {
    // The fixed default-SG story against the broken one as AWS JSON,
    // imported on the fly: the packets that change are exactly those two
    // replays of their own judge differently.
    let pcap = "pcaps/aws-default-sg.pcap";
    let old = verdicts("config/aws-default-sg-fixed.toml", pcap);
    let new = verdicts("config/aws-default-sg.aws", pcap);
    let differ: Vec<usize> = (0..old.len()).filter(|&i| old[i] != new[i]).collect();
    let denied = differ.iter().filter(|&&i| old[i] == "allow").count() as u64;
    assert!(denied > 0 && differ.len() < old.len(), "{differ:?}");
    let o = sgplane(
        Path::new(env!("CARGO_MANIFEST_DIR")),
        &[
            "-c",
            "config/aws-default-sg-fixed.toml",
            "replay",
            pcap,
            "--no-progress",
            "--compare",
            "config/aws-default-sg.aws",
            "--json",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let s: Value = serde_json::from_slice(&o.stdout).unwrap();
    let c = &s["compare"];
    assert_eq!(c["changed_packets"].as_u64(), Some(differ.len() as u64));
    assert_eq!(c["newly_denied_packets"].as_u64(), Some(denied));
    // Every changed flow's first change is one of the differing packets,
    // and the per-flow counts add up.
    let mut total = 0;
    for f in c["newly_denied"]
        .as_array()
        .unwrap()
        .iter()
        .chain(c["newly_allowed"].as_array().unwrap())
    {
        total += f["newly_denied_packets"].as_u64().unwrap()
            + f["newly_allowed_packets"].as_u64().unwrap();
        for k in ["first_newly_denied", "first_newly_allowed"] {
            if let Some(i) = f[k]["index"].as_u64() {
                assert!(differ.contains(&(i as usize)), "{f:#}");
            }
        }
    }
    assert_eq!(total, differ.len() as u64);
}

#[test]
fn a_connection_the_new_policy_picks_up_later_changes_only_until_then() {
    // With egress open, the server's FIN leaving is a new flow the new
    // policy allows: from then on the HTTP connection is tracked under it
    // too, and only the packets before that change. The changes are the
    // packets two replays of their own judge differently.
    let egress = "egress = []";
    let all = "egress = [ { proto = \"all\", to = \"0.0.0.0/0\" } ]";
    let dir = setup(&removed().replace(egress, all));
    std::fs::write(dir.path().join("old.toml"), OLD.replace(egress, all)).unwrap();
    let alone = |policy: &str| -> Vec<String> {
        let o = sgplane(
            dir.path(),
            &[
                "-c",
                policy,
                "replay",
                "web.pcap",
                "--no-progress",
                "--verdicts",
                "-",
            ],
        );
        assert_eq!(o.status.code(), Some(0), "{}", show(&o));
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["verdict"].to_string())
            .collect()
    };
    let (old, new) = (alone("old.toml"), alone("new.toml"));
    let differ: Vec<u64> = (0..old.len())
        .filter(|&i| old[i] != new[i])
        .map(|i| i as u64)
        .collect();
    let (code, s) = compare_json(dir.path(), &[]);
    assert_eq!(code, Some(1), "{s:#}");
    let c = &s["compare"];
    assert_eq!(c["changed_packets"].as_u64(), Some(differ.len() as u64));
    let d = c["newly_denied"].as_array().unwrap();
    assert_eq!(flow(&d[0]), ends("203.0.113.6", 52000, SERVER, 80));
    let n = d[0]["newly_denied_packets"].as_u64().unwrap();
    // Some of the connection's 8 packets, not all, and all the first ones.
    assert!(n > 0 && n < 8, "{n}");
    assert_eq!(&differ[..n as usize], (8..8 + n).collect::<Vec<_>>());
}

#[test]
fn a_second_c_is_the_policy_to_compare_with() {
    let dir = setup(&removed());
    let by_flag = compare(dir.path(), "new.toml", &["--json"]);
    let by_c = sgplane(
        dir.path(),
        &[
            "-c", "old.toml", "-c", "new.toml", "replay", "web.pcap", "--json",
        ],
    );
    assert_eq!(by_c.status.code(), Some(1), "{}", show(&by_c));
    let json = |o: &Output| -> Value { serde_json::from_slice(&o.stdout).unwrap() };
    let (a, b) = (json(&by_flag), json(&by_c));
    assert_eq!(a["compare"], b["compare"]);
    assert!(b["compare"]["changed_flows"].as_u64() > Some(0), "{b:#}");
    // Three policies, or a second -c besides --compare, or one anywhere
    // else: usage errors.
    for args in [
        &[
            "-c",
            "old.toml",
            "-c",
            "new.toml",
            "replay",
            "web.pcap",
            "--compare",
            "new.toml",
        ][..],
        &[
            "-c", "old.toml", "-c", "new.toml", "-c", "old.toml", "replay", "web.pcap",
        ][..],
        &["-c", "old.toml", "-c", "new.toml", "check"][..],
    ] {
        let o = sgplane(dir.path(), args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", show(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("-c"),
            "{}",
            show(&o)
        );
    }
}

/// A policy from a pipe (`--compare <(git show main:policy.toml)`, or
/// /dev/stdin) is read once: looking at its first bytes to tell JSON from
/// a policy file must not leave the rest to be read as the whole policy.
#[test]
fn a_policy_from_a_pipe_is_read_whole() {
    let dir = setup(&removed());
    let (old, pcap) = (dir.path().join("old.toml"), dir.path().join("web.pcap"));
    let (old, pcap) = (old.to_str().unwrap(), pcap.to_str().unwrap());
    let o = common::sgplane_with_stdin(
        None,
        &[
            "-c",
            old,
            "replay",
            pcap,
            "--no-progress",
            "--json",
            "--compare",
            "/dev/stdin",
        ],
        removed().as_bytes(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let s: Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}\n{}", show(&o)));
    let (_, from_file) = compare_json(dir.path(), &[]);
    assert_eq!(s["compare"]["newly_denied_flows"], 2, "{s:#}");
    assert_eq!(
        s["compare"]["newly_denied"],
        from_file["compare"]["newly_denied"]
    );

    // The same as -c: the removed rule's flows denied there too.
    let o = common::sgplane_with_stdin(
        None,
        &[
            "-c",
            "/dev/stdin",
            "replay",
            pcap,
            "--no-progress",
            "--json",
        ],
        removed().as_bytes(),
    );
    let s: Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}\n{}", show(&o)));
    assert_eq!(
        (s["packets"].as_u64(), s["allowed"].as_u64()),
        (Some(21), Some(8)),
        "{s:#}"
    );
}
