//! The command line as a user meets it: `check` on every shipped policy, the
//! scenario stories through `explain`, broken policies and odd arguments.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn sgplane(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sgplane"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
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

fn configs() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    v
}

#[test]
fn every_shipped_policy_passes_check() {
    let all = configs();
    assert!(
        all.len() >= 5,
        "config/ has the default policy and the scenarios"
    );
    for p in all {
        let o = sgplane(&["check", "-c", p.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(0), "{}:\n{}", p.display(), text(&o));
        assert!(text(&o).contains("security groups:"), "{}", text(&o));
    }
    let o = sgplane(&["check"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("built in"), "{}", text(&o));
}

/// Runs explain --json and returns (exit code, parsed answer).
fn explain(config: Option<&str>, args: &[&str]) -> (i32, serde_json::Value) {
    let mut a: Vec<&str> = Vec::new();
    if let Some(c) = config {
        a.extend(["-c", c]);
    }
    a.push("explain");
    a.extend(args);
    a.push("--json");
    let o = sgplane(&a);
    let v = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
    (o.status.code().unwrap(), v)
}

fn misses(v: &serde_json::Value) -> Vec<(String, Vec<String>, String)> {
    let mut out = Vec::new();
    for d in v["decisions"].as_array().unwrap() {
        for m in d["nearest_misses"].as_array().unwrap() {
            let fields = m["fields"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap().to_string())
                .collect();
            out.push((
                m["rule"].as_str().unwrap().to_string(),
                fields,
                m["message"].as_str().unwrap().to_string(),
            ));
        }
    }
    out
}

#[test]
fn aws_default_sg_story() {
    let flow = [
        "--src",
        "10.0.0.10",
        "--dst",
        "10.0.10.20",
        "--proto",
        "tcp",
        "--dport",
        "80",
    ];
    let (code, v) = explain(Some("config/aws-default-sg.toml"), &flow);
    assert_eq!(code, 1);
    assert_eq!(
        (v["verdict"].as_str(), v["reason"].as_str()),
        (Some("deny"), Some("no-rule"))
    );
    assert_eq!(v["interface"], "i-rails-1");
    assert_eq!(v["direction"], "ingress");
    let m = misses(&v);
    assert!(
        m.iter().any(|(r, f, msg)| r == "sg-public/ingress/0"
            && f.contains(&"port".to_string())
            && msg.contains("443")),
        "the nearest miss names port 443: {m:#?}"
    );
    let (code, v) = explain(Some("config/aws-default-sg-fixed.toml"), &flow);
    assert_eq!(code, 0);
    assert_eq!(v["verdict"], "allow");
    assert_eq!(v["rule"], "sg-default/ingress/0");
    // The office still reaches the ALB on 443 in both.
    for c in [
        "config/aws-default-sg.toml",
        "config/aws-default-sg-fixed.toml",
    ] {
        let (code, v) = explain(
            Some(c),
            &[
                "--src",
                "198.51.100.7",
                "--dst",
                "10.0.0.10",
                "--dport",
                "443",
            ],
        );
        assert_eq!(
            (code, v["rule"].as_str()),
            (0, Some("sg-public/ingress/0")),
            "{c}"
        );
    }
}

#[test]
fn mse_gateway_story() {
    let c = Some("config/mse-gateway.toml");
    let (code, v) = explain(
        c,
        &[
            "--src",
            "192.168.100.11",
            "--dst",
            "192.168.64.21",
            "--dport",
            "8080",
        ],
    );
    assert_eq!(
        (code, v["rule"].as_str()),
        (0, Some("sg-mse-auth/ingress/0"))
    );
    let (code, v) = explain(
        c,
        &[
            "--src",
            "192.168.100.11",
            "--dst",
            "192.168.64.21",
            "--dport",
            "8081",
        ],
    );
    assert_eq!((code, v["reason"].as_str()), (1, Some("no-rule")));
    let m = misses(&v);
    assert!(
        m.iter().any(|(r, f, msg)| r == "sg-mse-auth/ingress/0"
            && f == &["port"]
            && msg.contains("8080")
            && msg.contains("8081")),
        "{m:#?}"
    );
}

#[test]
fn ack_cluster_story() {
    let c = Some("config/ack-cluster.toml");
    let (code, v) = explain(
        c,
        &[
            "--src",
            "192.168.0.10",
            "--dst",
            "192.168.0.11",
            "--dport",
            "10250",
        ],
    );
    assert_eq!(
        (code, v["rule"].as_str()),
        (0, Some("sg-ack-basic/intra_group"))
    );
    let (code, v) = explain(
        c,
        &[
            "--src",
            "172.20.1.5",
            "--dst",
            "192.168.0.11",
            "--dport",
            "10250",
        ],
    );
    assert_eq!(
        (code, v["rule"].as_str()),
        (0, Some("sg-ack-basic/ingress/1"))
    );
    let (code, _) = explain(
        c,
        &[
            "--src",
            "203.0.113.7",
            "--dst",
            "192.168.0.10",
            "--proto",
            "icmp",
        ],
    );
    assert_eq!(code, 0);
    let (code, v) = explain(
        c,
        &[
            "--src",
            "192.168.2.10",
            "--dst",
            "8.8.8.8",
            "--proto",
            "udp",
            "--dport",
            "53",
        ],
    );
    assert_eq!(
        (code, v["reason"].as_str(), v["direction"].as_str()),
        (1, Some("rule"), Some("egress"))
    );
    let (code, _) = explain(
        c,
        &[
            "--src",
            "192.168.2.10",
            "--dst",
            "100.100.2.136",
            "--proto",
            "udp",
            "--dport",
            "53",
        ],
    );
    assert_eq!(code, 0);
}

#[test]
fn privatelink_story() {
    let c = Some("config/privatelink-nlb.toml");
    let (code, v) = explain(
        c,
        &[
            "--src",
            "10.30.1.50",
            "--dst",
            "10.30.10.21",
            "--dport",
            "80",
        ],
    );
    assert_eq!(
        (code, v["rule"].as_str()),
        (0, Some("sg-orders-app/ingress/0"))
    );
    let (code, v) = explain(
        c,
        &[
            "--src",
            "10.20.1.15",
            "--dst",
            "10.30.10.21",
            "--dport",
            "80",
        ],
    );
    assert_eq!(code, 1);
    let m = misses(&v);
    assert!(
        m.iter()
            .any(|(r, f, _)| r == "sg-orders-app/ingress/0" && f == &["source"]),
        "{m:#?}"
    );
}

#[test]
fn explain_text_names_the_rule_and_the_misses() {
    let o = sgplane(&[
        "explain",
        "--src",
        "10.0.11.12",
        "--dst",
        "10.0.30.31",
        "--dport",
        "5432",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let t = text(&o);
    assert!(
        t.contains("DENY") && t.contains("eni-rds-primary") && t.contains("nearest misses"),
        "{t}"
    );
    assert!(t.contains("sg-db/ingress/0"), "{t}");
}

#[test]
fn explain_default_policy_demo_flows() {
    // The demo flows documented in config/default.toml.
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &[
                "--src",
                "203.0.113.50",
                "--dst",
                "10.0.0.10",
                "--dport",
                "443",
            ],
            0,
            "sg-alb/ingress/0",
        ),
        (
            &[
                "--src",
                "198.51.100.230",
                "--dst",
                "10.0.0.20",
                "--dport",
                "22",
            ],
            1,
            "sg-bastion/ingress/0",
        ),
        (
            &[
                "--src",
                "198.51.100.25",
                "--dst",
                "10.0.0.20",
                "--dport",
                "22",
            ],
            0,
            "sg-bastion/ingress/1",
        ),
        (
            &[
                "--src",
                "10.0.10.11",
                "--dst",
                "10.0.40.10",
                "--proto",
                "udp",
                "--dport",
                "53",
            ],
            0,
            "sg-resolver/ingress/0",
        ),
        (
            &[
                "--src",
                "2001:db8:ff00::25",
                "--dst",
                "2001:db8:1234::20",
                "--proto",
                "icmpv6",
                "--icmp-type",
                "128",
            ],
            0,
            "sg-bastion/ingress/3",
        ),
    ];
    for (args, code, rule) in cases {
        let (c, v) = explain(None, args);
        assert_eq!((c, v["rule"].as_str()), (*code, Some(*rule)), "{args:?}");
    }
}

#[test]
fn explain_unknown_addresses_and_zones() {
    let (code, v) = explain(
        None,
        &["--src", "192.0.2.1", "--dst", "192.0.2.2", "--dport", "80"],
    );
    assert_eq!((code, v["reason"].as_str()), (1, Some("unknown-address")));
    assert!(v["note"].as_str().unwrap().contains("unknown_address"));
    let o = sgplane(&[
        "explain",
        "--src",
        "10.0.0.1",
        "--dst",
        "10.0.0.2",
        "--zone",
        "vpce-nothex",
    ]);
    assert_eq!(o.status.code(), Some(2));
}

/// Writes a policy to a temporary file and runs check on it.
fn check_text(policy: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("broken.toml");
    std::fs::write(&p, policy).unwrap();
    let o = sgplane(&["check", "-c", p.to_str().unwrap()]);
    (o.status.code().unwrap(), text(&o))
}

#[test]
fn broken_policies_exit_2_with_the_line() {
    let sg = "[security_groups.sg-a]\n";
    let cases: Vec<(String, usize, &str)> = vec![
        ("[security_groups.sg-a\ningress = []\n".into(), 1, ""),
        ("[setings]\nunknown_address = \"deny\"\n".into(), 1, "unknown field"),
        (format!("{sg}ingress = [ {{ proto = \"tcp\", port = \"80\", from = \"0.0.0.0/0\" }} ]\n"), 2, "unknown field `port`"),
        (format!("{sg}ingress = [ {{ proto = \"tpc\", from = \"0.0.0.0/0\" }} ]\n"), 2, "unknown protocol `tpc`"),
        (format!("{sg}ingress = [ {{ proto = 300, from = \"0.0.0.0/0\" }} ]\n"), 2, "0-255"),
        (format!("{sg}ingress = [ {{ proto = \"tcp\", ports = \"90-80\", from = \"0.0.0.0/0\" }} ]\n"), 2, "ends before it starts"),
        (format!("{sg}ingress = [ {{ proto = \"tcp\", ports = \"70000\", from = \"0.0.0.0/0\" }} ]\n"), 2, "0-65535"),
        (format!("{sg}ingress = [ {{ proto = \"icmp\", ports = \"80\", from = \"0.0.0.0/0\" }} ]\n"), 2, "no ports"),
        (format!("{sg}ingress = [ {{ proto = \"all\", ports = \"1-65535\", from = \"0.0.0.0/0\" }} ]\n"), 2, "no ports"),
        (format!("{sg}ingress = [ {{ proto = \"tcp\", icmp_type = 8, from = \"0.0.0.0/0\" }} ]\n"), 2, "icmp_type"),
        (format!("{sg}ingress = [ {{ proto = \"icmp\", icmp_type = 300, from = \"0.0.0.0/0\" }} ]\n"), 2, "0-255"),
        (format!("{sg}ingress = [ {{ proto = \"tcp\", from = \"sg-missing\" }} ]\n"), 2, "unknown security group `sg-missing`"),
        (format!("{sg}ingress = [ {{ proto = \"tcp\", from = \"pl-missing\" }} ]\n"), 2, "unknown prefix list `pl-missing`"),
        (format!("{sg}ingress = [ {{ proto = \"tcp\", from = \"10.0.0.1/8\" }} ]\n"), 2, "did you mean 10.0.0.0/8"),
        (format!("{sg}ingress = [ {{ proto = \"tcp\", from = \"10.0.0.300\" }} ]\n"), 2, "not an address or CIDR"),
        (format!("{sg}ingress = [ {{ proto = \"tcp\", to = \"0.0.0.0/0\" }} ]\n"), 2, "not `to`"),
        (format!("{sg}egress = [ {{ proto = \"tcp\" }} ]\n"), 2, "has no `to`"),
        (format!("{sg}ingress = [ {{ proto = \"tcp\", from = \"0.0.0.0/0\", priority = 0 }} ]\n"), 2, "1-65535"),
        (format!("{sg}ingress = [ {{ proto = \"tcp\", from = \"0.0.0.0/0\", action = \"reject\" }} ]\n"), 2, "expected allow"),
        (format!("{sg}ingress = [ {{ proto = \"tcp\", from = \"0.0.0.0/0\", ports = true }} ]\n"), 2, "ports"),
        (format!("{sg}ingress = [ {{ from = \"0.0.0.0/0\" }} ]\n"), 2, "missing field `proto`"),
        ("[interfaces.a]\naddresses = [\"10.0.0.1\"]\nsecurity_groups = [\"sg-nope\"]\n".into(), 3, "unknown security group"),
        ("[interfaces.a]\naddresses = [\"10.0.0.0/30\"]\n[interfaces.b]\naddresses = [\"10.0.0.2\"]\n".into(), 4, "overlaps"),
        ("[interfaces.a]\naddresses = [\"10.0.0.1\"]\nzone = \"vpce-12zz\"\n".into(), 3, "bad zone"),
        ("[interfaces.a]\naddresses = []\n".into(), 2, "no addresses"),
        ("[security_groups.web]\n".into(), 1, "must start with `sg-`"),
        ("[conntrack]\nmax_entries = 0\n".into(), 2, "out of range"),
        ("[settings]\nunknown_address = \"maybe\"\n".into(), 2, "expected allow"),
        ("[prefix_lists]\npl-x = [\"not-a-cidr\"]\n".into(), 2, "not an address"),
    ];
    assert!(cases.len() >= 15);
    for (policy, line, needle) in cases {
        let (code, out) = check_text(&policy);
        assert_eq!(code, 2, "policy:\n{policy}\noutput:\n{out}");
        assert!(
            out.contains(&format!("broken.toml:{line}:")),
            "expected line {line} in:\n{out}\npolicy:\n{policy}"
        );
        assert!(out.contains(needle), "expected `{needle}` in:\n{out}");
        assert!(!out.contains("panicked"), "{out}");
    }
}

#[test]
fn odd_command_lines_exit_2() {
    for args in [
        vec!["frobnicate"],
        vec!["explain", "--src", "10.0.0.1"],
        vec!["explain", "--src", "not-an-ip", "--dst", "10.0.0.1"],
        vec!["explain", "--src", "10.0.0.1", "--dst", "::1"],
        vec![
            "explain", "--src", "10.0.0.1", "--dst", "10.0.0.2", "--proto", "icmp", "--dport", "80",
        ],
        vec![
            "explain", "--src", "10.0.0.1", "--dst", "10.0.0.2", "--dport", "70000",
        ],
        vec!["-c", "/nonexistent/policy.toml", "check"],
        vec!["replay", "/nonexistent.pcap"],
        vec![],
    ] {
        let o = sgplane(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(!text(&o).contains("panicked"), "{args:?}");
    }
    // Help is not an error.
    let o = sgplane(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(text(&o).contains("explain") && text(&o).contains("replay"));
}

#[test]
fn config_flag_works_after_the_subcommand_too() {
    // The same summary (but for the time the fast path took to build).
    let summary = |o: &Output| -> Vec<String> {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| !l.contains("built in"))
            .map(str::to_string)
            .collect()
    };
    let a = sgplane(&["-c", "config/mse-gateway.toml", "check"]);
    let b = sgplane(&["check", "-c", "config/mse-gateway.toml"]);
    assert_eq!(summary(&a), summary(&b));
    assert!(text(&a).contains("mse-gateway"));
}

/// A policy without any interface (an empty file, the wrong file) is a
/// valid policy under which every IP packet is `unknown-address`: `check`
/// warns of it, and `replay` says so on stderr before judging.
#[test]
fn a_policy_without_interfaces_is_warned_of_by_check_and_replay() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.toml");
    std::fs::write(&empty, "").unwrap();
    let empty = empty.to_str().unwrap();

    let o = sgplane(&["-c", empty, "check", "--strict"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("warning[no-interfaces]"), "{}", text(&o));

    let o = sgplane(&["-c", empty, "replay", "pcaps/demo.pcap", "--no-progress"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("warning[no-interfaces]") && stderr.contains("denied unknown-address"),
        "{stderr}"
    );

    // The built-in policy has interfaces: nothing to warn of.
    let o = sgplane(&["replay", "pcaps/demo.pcap", "--no-progress"]);
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("no-interfaces"),
        "{}",
        text(&o)
    );
}
