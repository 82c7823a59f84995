//! `sgplane import alibaba` end to end, through the binary: the aliyun CLI
//! twins of the Alibaba scenarios (config/*.alibaba/) imported to a policy
//! file, picked as Alibaba by `-c DIR` without being told, and replayed
//! against the scenario captures with the same verdict, reason and rule
//! per packet as the hand-written TOML.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn sgplane<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    Command::new(env!("CARGO_BIN_EXE_sgplane"))
        .current_dir(root())
        .args(args.into_iter().map(Into::into))
        .output()
        .expect("running sgplane")
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `(verdict, reason, rule)` per packet of a `--verdicts FILE.csv`.
fn verdict_rows(csv: &Path) -> Vec<(String, String, String)> {
    let body = std::fs::read_to_string(csv).unwrap();
    let mut lines = body.lines();
    let header: Vec<&str> = lines.next().expect("a header line").split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (v, r, ru) = (col("verdict"), col("reason"), col("rule"));
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[v].to_string(), f[r].to_string(), f[ru].to_string())
        })
        .collect()
}

fn replay_rows(config: &str, pcap: &str) -> Vec<(String, String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("verdicts.csv");
    let out = sgplane([
        OsString::from("-c"),
        config.into(),
        "replay".into(),
        format!("pcaps/{pcap}").into(),
        "--no-progress".into(),
        "--verdicts".into(),
        csv.clone().into(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "replay {pcap} with {config}\n{}",
        show(&out)
    );
    verdict_rows(&csv)
}

/// The twin judges every packet as the TOML does; its rule names are the
/// TOML's through `renamed` (twin name → TOML name), for the rules the
/// twin had to split (a permission has one source and one port range).
fn twin_agrees(name: &str, renamed: &[(&str, &str)]) {
    let renamed: HashMap<&str, &str> = renamed.iter().copied().collect();
    let pcap = format!("{name}.pcap");
    let toml = replay_rows(&format!("config/{name}.toml"), &pcap);
    let twin = replay_rows(&format!("config/{name}.alibaba"), &pcap);
    assert_eq!(toml.len(), twin.len(), "{name}: packet counts differ");
    assert!(!toml.is_empty());
    let diffs: Vec<String> = toml
        .iter()
        .zip(&twin)
        .enumerate()
        .filter(|(_, (a, (v, r, rule)))| {
            let rule = renamed.get(rule.as_str()).copied().unwrap_or(rule);
            (a.0.as_str(), a.1.as_str(), a.2.as_str()) != (v.as_str(), r.as_str(), rule)
        })
        .map(|(i, (a, b))| format!("packet {i}: toml {a:?}, twin {b:?}"))
        .collect();
    assert!(
        diffs.is_empty(),
        "config/{name}.alibaba judges {} of {} packets differently:\n{}",
        diffs.len(),
        toml.len(),
        diffs.join("\n")
    );
}

#[test]
fn twin_mse_gateway_judges_like_the_toml() {
    twin_agrees("mse-gateway", &[]);
}

#[test]
fn twin_ack_cluster_judges_like_the_toml() {
    // The enterprise group's TOML rules with two sources (and two or six
    // port ranges) are several permissions in the twin, in the same order.
    twin_agrees(
        "ack-cluster",
        &[
            ("sg-ack-enterprise/ingress/1", "sg-ack-enterprise/ingress/0"),
            ("sg-ack-enterprise/ingress/4", "sg-ack-enterprise/ingress/2"),
            ("sg-ack-enterprise/ingress/6", "sg-ack-enterprise/ingress/3"),
            (
                "sg-ack-enterprise/ingress/14",
                "sg-ack-enterprise/ingress/6",
            ),
            ("sg-ack-enterprise/egress/19", "sg-ack-enterprise/egress/5"),
        ],
    );
}

#[test]
fn import_writes_a_policy_that_loads_and_judges_alike() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("mse.toml");
    let out = sgplane([
        OsString::from("import"),
        "alibaba".into(),
        "config/mse-gateway.alibaba".into(),
        "-o".into(),
        out_file.clone().into(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let text = std::fs::read_to_string(&out_file).unwrap();
    assert!(text.contains("[security_groups.sg-mse-auth]"), "{text}");
    assert!(text.contains("intra_group = \"allow\""), "{text}");
    let written = replay_rows(out_file.to_str().unwrap(), "mse-gateway.pcap");
    let toml = replay_rows("config/mse-gateway.toml", "mse-gateway.pcap");
    assert_eq!(written, toml);
    // The same input gives the same bytes.
    let again = dir.path().join("again.toml");
    let out = sgplane([
        OsString::from("import"),
        "alibaba".into(),
        "config/mse-gateway.alibaba".into(),
        "-o".into(),
        again.clone().into(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(text, std::fs::read_to_string(&again).unwrap());
}

#[test]
fn c_dir_picks_alibaba_without_being_told() {
    let out = sgplane([
        "-c",
        "config/ack-cluster.alibaba",
        "explain",
        "--src",
        "192.168.2.10",
        "--dst",
        "8.8.8.8",
        "--proto",
        "udp",
        "--dport",
        "53",
    ]);
    let text = show(&out);
    assert!(text.contains("sg-ack-enterprise/egress/19"), "{text}");
    assert!(!text.contains("not an AWS response"), "{text}");
}

#[test]
fn masked_documentation_values_are_refused_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("DescribeSecurityGroupAttribute.json");
    std::fs::write(
        &f,
        r#"{"RequestId": "x", "SecurityGroupId": "sg-bp1fg655nh68xyz9****",
            "InnerAccessPolicy": "Accept", "Permissions": {"Permission": []}}"#,
    )
    .unwrap();
    let out = sgplane([OsString::from("import"), "alibaba".into(), f.clone().into()]);
    assert_ne!(out.status.code(), Some(0), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("$.SecurityGroupId: `sg-bp1fg655nh68xyz9****` is a masked value"),
        "{err}"
    );
}
