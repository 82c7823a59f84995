//! `sgplane import aws` end to end, through the binary: a third party's AWS
//! snapshot (examples/aws/, Batfish's, Apache-2.0) imported and questioned
//! with `explain`, the answers worked out by hand from its JSON; the AWS CLI
//! twins of the scenario policies (config/*.aws/) replayed against the
//! scenario captures, packet by packet the same as the hand-written TOML;
//! byte-stable output; malformed input and `--strict`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs sgplane in the crate root.
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

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    )
}

const HYBRID: &str = "examples/aws/batfish-hybrid-cloud";
const LB: &str = "examples/aws/batfish-load-balancer";

// ------------------------------------------------------------ the snapshot

#[test]
fn third_party_snapshots_import_and_list_what_they_skip() {
    for snap in [HYBRID, LB] {
        let out = sgplane(["import", "aws", snap]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "import aws {snap}\n{}",
            show(&out)
        );
        let toml = text(&out.stdout);
        // Imported interfaces are the ENIs.
        assert!(
            toml.contains("eni-"),
            "no ENI in the import of {snap}\n{toml}"
        );
        // Both snapshots hold calls sgplane does not read (AvailabilityZones,
        // InternetGateways' attachments aside: VPN, RDS, Elasticsearch, …):
        // nothing is dropped silently.
        let err = text(&out.stderr);
        assert!(
            err.contains("skipped"),
            "import aws {snap} lists nothing as skipped\n{err}"
        );
    }
    // The hybrid snapshot's Elasticsearch domain and VPN connection are
    // resources the model does not have; each is named on stderr, by its id
    // or by its file.
    let out = sgplane(["import", "aws", HYBRID]);
    let err = text(&out.stderr);
    for ids in [
        ["vpn-ba2e34a8", "VpnConnections.json"],
        ["es-domain", "ElasticsearchDomains.json"],
    ] {
        assert!(
            ids.iter().any(|id| err.contains(id)),
            "stderr names neither {ids:?}\n{err}"
        );
    }
}

/// The verdict, reason, deciding rule and interface `explain --json` gives.
struct Answer {
    verdict: &'static str,
    reason: &'static str,
    rule: Option<&'static str>,
    interface: Option<&'static str>,
}

fn explain(config: &str, vpc: Option<&str>, flow: &[&str], want: Answer) {
    let mut args: Vec<String> = vec!["-c".into(), config.into(), "explain".into()];
    if let Some(v) = vpc {
        args.push("--vpc".into());
        args.push(v.into());
    }
    args.extend(flow.iter().map(|s| s.to_string()));
    args.push("--json".into());
    let out = sgplane(&args);
    let what = format!("sgplane {}\n{}", args.join(" "), show(&out));
    let want_code = if want.verdict == "allow" { 0 } else { 1 };
    assert_eq!(out.status.code(), Some(want_code), "{what}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}\n{what}"));
    assert_eq!(v["verdict"], want.verdict, "{what}");
    assert_eq!(v["reason"], want.reason, "{what}");
    match want.rule {
        Some(r) => assert_eq!(v["rule"], r, "{what}"),
        None => assert!(v["rule"].is_null(), "{what}"),
    }
    if let Some(i) = want.interface {
        assert_eq!(v["interface"], i, "{what}");
    }
}

/// vpc-b390fad5 (192.168.0.0/16): four Arista instances, every ENI in
/// sg-331ad04e, whose IpPermissions are, in API order,
///   [0] -1 from 192.168.0.0/16                      -> ingress/0
///   [1] tcp 22 from 38.140.26.4/32, .5/32, .6/32, .7/32, 0.0.0.0/0
///                                                   -> ingress/1 .. ingress/5
///   [2] icmp -1/-1 from 38.140.26.0/24              -> ingress/6
/// and egress -1 to 0.0.0.0/0 (egress/0). acl-7b78771d on every subnet of
/// the VPC allows everything (rule 100) both ways.
#[test]
fn hybrid_snapshot_answers_worked_out_by_hand() {
    let vpc = Some("vpc-b390fad5");
    // eni-d2b094fc (i-075dc46a9bc347264 "CVP Server Test", 192.168.1.25) ->
    // eni-707e5a5e (core_01-eth0, 192.168.1.186), BGP: all traffic from the
    // VPC's own range.
    explain(
        HYBRID,
        vpc,
        &[
            "--src",
            "192.168.1.25",
            "--dst",
            "192.168.1.186",
            "--proto",
            "tcp",
            "--dport",
            "179",
        ],
        Answer {
            verdict: "allow",
            reason: "rule",
            rule: Some("sg-331ad04e/ingress/0"),
            interface: Some("eni-707e5a5e"),
        },
    );
    // A second ENI of an instance (border_02-eth1, 192.168.2.57, subnet
    // 192.168.2.48/28) to another subnet's ENI (core_01-eth1, 192.168.2.23,
    // 192.168.2.16/28): the groups come from each ENI; udp is "all traffic".
    explain(
        HYBRID,
        vpc,
        &[
            "--src",
            "192.168.2.57",
            "--dst",
            "192.168.2.23",
            "--proto",
            "udp",
            "--dport",
            "4789",
        ],
        Answer {
            verdict: "allow",
            reason: "rule",
            rule: Some("sg-331ad04e/ingress/0"),
            interface: Some("eni-297b5c07"),
        },
    );
    // SSH from the internet to border_01-eth1 (192.168.2.22): only the fifth
    // source of IpPermissions[1], 0.0.0.0/0, matches: one rule per source.
    explain(
        HYBRID,
        vpc,
        &[
            "--src",
            "203.0.113.9",
            "--dst",
            "192.168.2.22",
            "--proto",
            "tcp",
            "--dport",
            "22",
        ],
        Answer {
            verdict: "allow",
            reason: "rule",
            rule: Some("sg-331ad04e/ingress/5"),
            interface: Some("eni-4b466165"),
        },
    );
    // Ping from the office /24 to border_01-eth0: icmp with FromPort/ToPort
    // -1 is any type and code.
    explain(
        HYBRID,
        vpc,
        &[
            "--src",
            "38.140.26.9",
            "--dst",
            "192.168.1.243",
            "--proto",
            "icmp",
            "--icmp-type",
            "8",
            "--icmp-code",
            "0",
        ],
        Answer {
            verdict: "allow",
            reason: "rule",
            rule: Some("sg-331ad04e/ingress/6"),
            interface: Some("eni-8c7753a2"),
        },
    );
    // HTTPS from the internet to the CVP server: sg-331ad04e opens 22 to the
    // world and nothing else.
    explain(
        HYBRID,
        vpc,
        &[
            "--src",
            "203.0.113.9",
            "--dst",
            "192.168.1.25",
            "--proto",
            "tcp",
            "--dport",
            "443",
        ],
        Answer {
            verdict: "deny",
            reason: "no-rule",
            rule: None,
            interface: Some("eni-d2b094fc"),
        },
    );
}

/// vpc-925131f4 (10.0.0.0/16), subnet-62f14104, two unattached ("available")
/// ENIs; security groups apply to an ENI whether or not it is attached.
///   eni-0681f828 10.0.0.54, sg-94df21e9 (launch-wizard-6):
///     [0] tcp 80 from 0.0.0.0/0, ::/0   -> ingress/0, ingress/1
///     [1] tcp 22 from 0.0.0.0/0         -> ingress/2
///     [2] tcp 443 from 0.0.0.0/0, ::/0  -> ingress/3, ingress/4
///     [3] icmp -1 from 0.0.0.0/0        -> ingress/5
///   eni-822b55ac 10.0.0.30, sg-83b348fe (launch-wizard-8):
///     [0] -1 from 10.0.0.0/16 -> ingress/0;  [1] tcp 22 from 0.0.0.0/0 -> ingress/1
/// Both egress -1 to 0.0.0.0/0. acl-3d4f745b allows everything.
#[test]
fn hybrid_snapshot_ipv6_ranges_count_as_rules() {
    let vpc = Some("vpc-925131f4");
    // The IPv4 source of the 443 entry comes after both sources of the 80
    // entry (0.0.0.0/0 and ::/0) and the one of the 22 entry.
    explain(
        HYBRID,
        vpc,
        &[
            "--src",
            "198.51.100.1",
            "--dst",
            "10.0.0.54",
            "--proto",
            "tcp",
            "--dport",
            "443",
        ],
        Answer {
            verdict: "allow",
            reason: "rule",
            rule: Some("sg-94df21e9/ingress/3"),
            interface: Some("eni-0681f828"),
        },
    );
    explain(
        HYBRID,
        vpc,
        &[
            "--src",
            "198.51.100.1",
            "--dst",
            "10.0.0.54",
            "--proto",
            "tcp",
            "--dport",
            "22",
        ],
        Answer {
            verdict: "allow",
            reason: "rule",
            rule: Some("sg-94df21e9/ingress/2"),
            interface: Some("eni-0681f828"),
        },
    );
    // Inside the VPC: launch-wizard-8 admits all of 10.0.0.0/16 ...
    explain(
        HYBRID,
        vpc,
        &[
            "--src",
            "10.0.0.54",
            "--dst",
            "10.0.0.30",
            "--proto",
            "tcp",
            "--dport",
            "8080",
        ],
        Answer {
            verdict: "allow",
            reason: "rule",
            rule: Some("sg-83b348fe/ingress/0"),
            interface: Some("eni-822b55ac"),
        },
    );
    // ... launch-wizard-6 only 80, 22, 443 and ICMP.
    explain(
        HYBRID,
        vpc,
        &[
            "--src",
            "10.0.0.30",
            "--dst",
            "10.0.0.54",
            "--proto",
            "tcp",
            "--dport",
            "8080",
        ],
        Answer {
            verdict: "deny",
            reason: "no-rule",
            rule: None,
            interface: Some("eni-0681f828"),
        },
    );
}

/// examples/aws/batfish-load-balancer, vpc-015b20578b48c1349 (10.1.0.0/16):
///   eni-038def4bc4303c3e6 10.1.250.112 (i-0c8ce8bbdd98cc4e8), sg-0a74e5595da78724d:
///     [0] tcp 22 from 0.0.0.0/0 -> ingress/0;  [1] icmp FromPort 8 ToPort 0
///     (type 8, code 0: echo request) from 0.0.0.0/0 -> ingress/1
///   eni-0a4486d9ba39d5e3e 10.1.1.189 and eni-02e730a1b02dbc756 10.1.20.95,
///     sg-09dabbcbd3f44ebcf: [0] tcp 22 from 0.0.0.0/0 -> ingress/0
///   all egress -1 to 0.0.0.0/0; the default NACL allows everything.
#[test]
fn load_balancer_snapshot_answers_worked_out_by_hand() {
    explain(
        LB,
        None,
        &[
            "--src",
            "10.1.250.112",
            "--dst",
            "10.1.1.189",
            "--proto",
            "tcp",
            "--dport",
            "22",
        ],
        Answer {
            verdict: "allow",
            reason: "rule",
            rule: Some("sg-09dabbcbd3f44ebcf/ingress/0"),
            interface: Some("eni-0a4486d9ba39d5e3e"),
        },
    );
    // ICMP FromPort/ToPort are type and code: 8/0 is echo request only.
    explain(
        LB,
        None,
        &[
            "--src",
            "10.1.1.189",
            "--dst",
            "10.1.250.112",
            "--proto",
            "icmp",
            "--icmp-type",
            "8",
            "--icmp-code",
            "0",
        ],
        Answer {
            verdict: "allow",
            reason: "rule",
            rule: Some("sg-0a74e5595da78724d/ingress/1"),
            interface: Some("eni-038def4bc4303c3e6"),
        },
    );
    explain(
        LB,
        None,
        &[
            "--src",
            "10.1.1.189",
            "--dst",
            "10.1.250.112",
            "--proto",
            "icmp",
            "--icmp-type",
            "13",
            "--icmp-code",
            "0",
        ],
        Answer {
            verdict: "deny",
            reason: "no-rule",
            rule: None,
            interface: Some("eni-038def4bc4303c3e6"),
        },
    );
    // The NLB's listener port 80 is not open on the instances (the target
    // group's targets are registered on 22): direct tcp/80 is denied.
    explain(
        LB,
        None,
        &[
            "--src",
            "10.1.20.95",
            "--dst",
            "10.1.1.189",
            "--proto",
            "tcp",
            "--dport",
            "80",
        ],
        Answer {
            verdict: "deny",
            reason: "no-rule",
            rule: None,
            interface: Some("eni-0a4486d9ba39d5e3e"),
        },
    );
}

/// sg-55510831 (hybrid, attached to no ENI; the RDS instance's group) names
/// sg-cf3f86b3 of its own account in a group pair, a group that is not in
/// the snapshot: a stale reference, kept as a reference, and `check` names
/// it.
#[test]
fn stale_group_pair_is_kept_and_named_by_check() {
    let dir = tempfile::tempdir().unwrap();
    let out_toml = dir.path().join("hybrid.toml");
    let out = sgplane([
        OsString::from("import"),
        "aws".into(),
        HYBRID.into(),
        "-o".into(),
        out_toml.clone().into(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let toml = std::fs::read_to_string(&out_toml).unwrap();
    assert!(
        toml.contains("sg-cf3f86b3"),
        "the stale reference is gone\n{toml}"
    );
    let check = sgplane([OsString::from("-c"), out_toml.into(), "check".into()]);
    assert_eq!(check.status.code(), Some(0), "{}", show(&check));
    let said = format!("{}{}", text(&check.stdout), text(&check.stderr));
    assert!(
        said.contains("sg-cf3f86b3"),
        "check does not name sg-cf3f86b3\n{said}"
    );
}

// ------------------------------------------------------------ the twins

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

/// Replays `pcap` under `config`, the verdicts as CSV.
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

/// The twin keeps the TOML's group ids and rule order, so the rule column
/// must agree as well as the verdict and the reason.
fn twin_agrees(name: &str, pcap: &str) {
    let toml = replay_rows(&format!("config/{name}.toml"), pcap);
    let twin = replay_rows(&format!("config/{name}.aws"), pcap);
    assert_eq!(toml.len(), twin.len(), "{name}: packet counts differ");
    assert!(!toml.is_empty());
    let diffs: Vec<String> = toml
        .iter()
        .zip(&twin)
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(i, (a, b))| format!("packet {i}: toml {a:?}, twin {b:?}"))
        .collect();
    assert!(
        diffs.is_empty(),
        "config/{name}.aws judges {} of {} packets of pcaps/{pcap} differently:\n{}",
        diffs.len(),
        toml.len(),
        diffs.join("\n")
    );
}

#[test]
fn twin_aws_default_sg_judges_like_the_toml() {
    twin_agrees("aws-default-sg", "aws-default-sg.pcap");
}

#[test]
fn twin_aws_default_sg_fixed_judges_like_the_toml() {
    twin_agrees("aws-default-sg-fixed", "aws-default-sg.pcap");
}

#[test]
fn twin_privatelink_nlb_judges_like_the_toml() {
    twin_agrees("privatelink-nlb", "privatelink-nlb.pcap");
}

/// The twins' explain answers from the TOMLs' headers, through the group
/// references (sg-default's self reference, sg-vpce-orders from
/// sg-consumer-app, sg-orders-app from sg-nlb-orders) and the prefix list.
#[test]
fn twins_explain_group_references_and_prefix_lists() {
    let fixed = "config/aws-default-sg-fixed.aws";
    explain(
        fixed,
        None,
        &[
            "--src",
            "10.0.0.10",
            "--dst",
            "10.0.10.20",
            "--proto",
            "tcp",
            "--dport",
            "80",
        ],
        Answer {
            verdict: "allow",
            reason: "rule",
            rule: Some("sg-default/ingress/0"),
            interface: Some("eni-0d4f6a8b1c3e5a701"),
        },
    );
    explain(
        "config/aws-default-sg.aws",
        None,
        &[
            "--src",
            "10.0.10.20",
            "--dst",
            "10.0.20.30",
            "--proto",
            "tcp",
            "--dport",
            "5432",
        ],
        Answer {
            verdict: "deny",
            reason: "no-rule",
            rule: None,
            interface: Some("eni-rds-postgres"),
        },
    );
    let pl = "config/privatelink-nlb.aws";
    explain(
        pl,
        Some("vpc-0c0a1b2c3d4e50020"),
        &[
            "--src",
            "10.20.1.15",
            "--dst",
            "10.20.1.100",
            "--proto",
            "tcp",
            "--dport",
            "443",
        ],
        Answer {
            verdict: "allow",
            reason: "rule",
            rule: Some("sg-vpce-orders/ingress/0"),
            interface: Some("eni-vpce-orders-1a"),
        },
    );
    explain(
        pl,
        Some("vpc-0c0a1b2c3d4e50020"),
        &[
            "--src",
            "10.20.2.40",
            "--dst",
            "10.20.1.100",
            "--proto",
            "tcp",
            "--dport",
            "443",
        ],
        Answer {
            verdict: "deny",
            reason: "no-rule",
            rule: None,
            interface: Some("eni-vpce-orders-1a"),
        },
    );
    explain(
        pl,
        Some("vpc-0b0a1b2c3d4e50030"),
        &[
            "--src",
            "10.30.1.50",
            "--dst",
            "10.30.10.21",
            "--proto",
            "tcp",
            "--dport",
            "80",
        ],
        Answer {
            verdict: "allow",
            reason: "rule",
            rule: Some("sg-orders-app/ingress/0"),
            interface: Some("eni-0b1a2b3c4d5e6f701"),
        },
    );
    // The prefix list admits the consumer VPC's range at the NLB: the
    // endpoint's ENI in AZ b reaches NLB node 1b across the PrivateLink
    // (the endpoint's VPC and the NLB's are joined by the endpoint).
    explain(
        pl,
        Some("vpc-0b0a1b2c3d4e50030"),
        &[
            "--src",
            "10.20.3.100",
            "--dst",
            "10.30.2.50",
            "--proto",
            "tcp",
            "--dport",
            "80",
        ],
        Answer {
            verdict: "allow",
            reason: "rule",
            rule: Some("sg-nlb-orders/ingress/1"),
            interface: Some("eni-nlb-orders-1b"),
        },
    );
}

// ------------------------------------------------------------ output and errors

#[test]
fn import_is_byte_stable_and_checks() {
    for src in [HYBRID, LB, "config/privatelink-nlb.aws"] {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.toml"), dir.path().join("b.toml"));
        for out_file in [&a, &b] {
            let out = sgplane([
                OsString::from("import"),
                "aws".into(),
                src.into(),
                "-o".into(),
                out_file.into(),
            ]);
            assert_eq!(
                out.status.code(),
                Some(0),
                "import aws {src}\n{}",
                show(&out)
            );
        }
        let (ta, tb) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        assert!(!ta.is_empty());
        assert!(ta == tb, "import aws {src} twice gives different bytes");
        // Without -o the same bytes go to stdout.
        let out = sgplane(["import", "aws", src]);
        assert!(out.stdout == ta, "import aws {src}: stdout differs from -o");
        let check = sgplane([OsString::from("-c"), a.into(), "check".into()]);
        assert_eq!(
            check.status.code(),
            Some(0),
            "check of the import of {src}\n{}",
            show(&check)
        );
    }
}

#[test]
fn malformed_json_names_the_file_and_where() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(root().join("config/aws-default-sg.aws/describe-vpcs.json")).unwrap();
    std::fs::write(dir.path().join("describe-vpcs.json"), good).unwrap();
    // A syntax error on line 4.
    let bad = dir.path().join("describe-security-groups.json");
    std::fs::write(
        &bad,
        "{\n    \"SecurityGroups\": [\n        {\n            \"GroupId\": \"sg-0a\",,\n        }\n    ]\n}\n",
    )
    .unwrap();
    let out = sgplane([OsString::from("import"), "aws".into(), dir.path().into()]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = text(&out.stderr);
    assert!(err.contains("describe-security-groups.json"), "{err}");
    assert!(err.contains(":4:"), "no line number\n{err}");
    assert!(!err.contains("panicked"), "{err}");

    // Valid JSON of the wrong shape: the JSON path.
    std::fs::write(
        &bad,
        r#"{"SecurityGroups": [{"GroupId": "sg-0a", "VpcId": "vpc-0a1b2c3d4e5f60001", "IpPermissions": [{"IpProtocol": "tcp", "FromPort": "eighty", "ToPort": 80, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}], "IpPermissionsEgress": []}]}"#,
    )
    .unwrap();
    let out = sgplane([OsString::from("import"), "aws".into(), dir.path().into()]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = text(&out.stderr);
    assert!(err.contains("describe-security-groups.json"), "{err}");
    assert!(
        err.contains("SecurityGroups[0].IpPermissions[0].FromPort"),
        "no JSON path\n{err}"
    );

    // -c with such a directory is a bad policy: exit 2 as well.
    let out = sgplane([
        OsString::from("-c"),
        dir.path().into(),
        "explain".into(),
        "--src".into(),
        "10.0.0.1".into(),
        "--dst".into(),
        "10.0.0.2".into(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
}

#[test]
fn strict_refuses_what_cannot_be_represented() {
    // A Classic ELB (`elb describe-load-balancers`): not a model resource.
    let dir = tempfile::tempdir().unwrap();
    for f in [
        "describe-vpcs.json",
        "describe-subnets.json",
        "describe-security-groups.json",
        "describe-network-interfaces.json",
    ] {
        std::fs::copy(
            root().join("config/aws-default-sg.aws").join(f),
            dir.path().join(f),
        )
        .unwrap();
    }
    let classic = r#"{
    "LoadBalancerDescriptions": [
        {
            "LoadBalancerName": "classic-web",
            "DNSName": "internal-classic-web-1234567890.us-east-1.elb.amazonaws.com",
            "ListenerDescriptions": [
                {
                    "Listener": {
                        "Protocol": "HTTP",
                        "LoadBalancerPort": 80,
                        "InstanceProtocol": "HTTP",
                        "InstancePort": 80
                    },
                    "PolicyNames": []
                }
            ],
            "AvailabilityZones": ["us-east-1a"],
            "Subnets": ["subnet-0a1b2c3d4e5f61001"],
            "VPCId": "vpc-0a1b2c3d4e5f60001",
            "Instances": [{"InstanceId": "i-0f1e2d3c4b5a69801"}],
            "SecurityGroups": ["sg-public"],
            "Scheme": "internal"
        }
    ]
}
"#;
    std::fs::write(dir.path().join("elb-describe-load-balancers.json"), classic).unwrap();
    let lenient = sgplane([OsString::from("import"), "aws".into(), dir.path().into()]);
    assert_eq!(lenient.status.code(), Some(0), "{}", show(&lenient));
    assert!(
        text(&lenient.stderr).contains("classic-web"),
        "{}",
        show(&lenient)
    );
    let strict = sgplane([
        OsString::from("import"),
        "aws".into(),
        dir.path().into(),
        "--strict".into(),
    ]);
    assert_eq!(strict.status.code(), Some(2), "{}", show(&strict));
    assert!(
        text(&strict.stderr).contains("classic-web"),
        "{}",
        show(&strict)
    );

    // An ENI without a private address (the field absent, no PrivateIpAddresses).
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("config/aws-default-sg.aws/describe-security-groups.json"),
        dir.path().join("describe-security-groups.json"),
    )
    .unwrap();
    let eni = r#"{
    "NetworkInterfaces": [
        {
            "AvailabilityZone": "us-east-1a",
            "Description": "",
            "Groups": [{"GroupId": "sg-public", "GroupName": "public"}],
            "InterfaceType": "interface",
            "Ipv6Addresses": [],
            "NetworkInterfaceId": "eni-0aaaaaaaaaaaaaaa1",
            "OwnerId": "111122223333",
            "PrivateIpAddresses": [],
            "Status": "available",
            "SubnetId": "subnet-0a1b2c3d4e5f61001",
            "TagSet": [],
            "VpcId": "vpc-0a1b2c3d4e5f60001"
        }
    ]
}
"#;
    std::fs::write(dir.path().join("describe-network-interfaces.json"), eni).unwrap();
    let strict = sgplane([
        OsString::from("import"),
        "aws".into(),
        dir.path().into(),
        "--strict".into(),
    ]);
    assert_eq!(strict.status.code(), Some(2), "{}", show(&strict));
    assert!(
        text(&strict.stderr).contains("eni-0aaaaaaaaaaaaaaa1"),
        "{}",
        show(&strict)
    );
}
