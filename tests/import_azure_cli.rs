//! `sgplane import azure` end to end, through the binary, on `az` output
//! written from Azure's documentation (tests/data/azure/demo/, made by
//! tests/data/azure/make-demo.py): the import written to a file, `-c DIR`
//! recognising Azure by content and answering `explain` as Azure would (the
//! answers worked out by hand from the JSON and Azure's documented
//! semantics), `check` naming the service tags it cannot resolve, stable
//! bytes and `--strict`.

mod common;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

const DEMO: &str = "tests/data/azure/demo";

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

/// `explain --json` on `config` for a TCP flow: (verdict, rule, its
/// description).
fn explain(config: &str, src: &str, dst: &str, dport: u16) -> (String, String, Value) {
    let port = dport.to_string();
    let args = [
        "-c", config, "explain", "--src", src, "--dst", dst, "--proto", "tcp", "--dport", &port,
        "--json",
    ];
    let out = sgplane(args);
    let what = format!("sgplane {}\n{}", args.join(" "), show(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}\n{what}"));
    let code = if v["verdict"] == "allow" { 0 } else { 1 };
    assert_eq!(out.status.code(), Some(code), "{what}");
    let decisive = v["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["rule"] == v["rule"])
        .map(|d| d["rule_description"].clone())
        .unwrap_or(Value::Null);
    (
        v["verdict"].as_str().unwrap().to_string(),
        v["rule"].as_str().unwrap_or("").to_string(),
        decisive,
    )
}

/// The demo's questions and Azure's answers. nsg-web (web-vm 10.0.1.4,
/// web-vm2 10.0.1.5), in priority order: 100 Allow-Web tcp 80,443 from *;
/// 110 Deny-Bad-Actor * from 203.0.113.0/24; 120 SSH from asg-bastion; …;
/// defaults. nsg-app (app-vm 10.1.1.4, in the peered spoke): 200 tcp 8080
/// from asg-web; 4096 Deny from VirtualNetwork; defaults (not in its JSON,
/// so added). The bastion 10.0.2.4 has no NSG and is in asg-bastion. The
/// web subnet has nsg-web-subnet (SPEC §9.2): 100 Allow-Web-In tcp 80,443
/// from Internet, then the defaults; entering, it judges before the NIC's.
fn answers_as_azure(config: &str) {
    let cases: &[(&str, &str, u16, &str, &str)] = &[
        // Priority 100 before 110.
        (
            "203.0.113.5",
            "10.0.1.4",
            443,
            "allow",
            "sg-nsg-web/ingress/0",
        ),
        // SSH from the internet: the subnet's DenyAllInBound decides before
        // the NIC's Deny-Bad-Actor (which is judged too, see below).
        (
            "203.0.113.5",
            "10.0.1.4",
            22,
            "deny",
            "sg-nsg-web-subnet/ingress/3",
        ),
        // The NIC's Allow-Dns-Replies admits this; the subnet does not.
        (
            "198.51.100.7",
            "10.0.1.4",
            5005,
            "deny",
            "sg-nsg-web-subnet/ingress/3",
        ),
        // SSH from the bastion's ASG (the subnet's AllowVnetInBound, then
        // the NIC's rule); from elsewhere DenyAllInBound.
        ("10.0.2.4", "10.0.1.4", 22, "allow", "sg-nsg-web/ingress/2"),
        (
            "198.18.0.1",
            "10.0.1.4",
            22,
            "deny",
            "sg-nsg-web-subnet/ingress/3",
        ),
        // The spoke is peered: AllowVnetInBound.
        (
            "10.1.1.4",
            "10.0.1.4",
            3306,
            "allow",
            "sg-nsg-web/ingress/8",
        ),
        // asg-web members reach the app; the bastion meets Deny-VNet-In.
        (
            "10.0.1.5",
            "10.1.1.4",
            8080,
            "allow",
            "sg-nsg-app/ingress/0",
        ),
        ("10.0.2.4", "10.1.1.4", 8080, "deny", "sg-nsg-app/ingress/1"),
        // AzureLoadBalancer, then DenyAllInBound.
        (
            "168.63.129.16",
            "10.1.1.4",
            9999,
            "allow",
            "sg-nsg-app/ingress/3",
        ),
        (
            "192.0.2.1",
            "10.1.1.4",
            9999,
            "deny",
            "sg-nsg-app/ingress/4",
        ),
        // Out: the NIC's NSG first: Deny-SMTP-Out to Internet before
        // AllowInternetOutBound; then the subnet's AllowInternetOutBound.
        ("10.0.1.4", "8.8.8.8", 25, "deny", "sg-nsg-web/egress/2"),
        ("10.0.1.4", "8.8.8.8", 443, "allow", "sg-nsg-web/egress/4"),
    ];
    for &(src, dst, port, verdict, rule) in cases {
        let (v, r, _) = explain(config, src, dst, port);
        assert_eq!(
            (v.as_str(), r.as_str()),
            (verdict, rule),
            "-c {config} explain {src} -> {dst}:{port}"
        );
    }
    // Both layers are reported, each with its layer; the NIC's own layer
    // denies by Deny-Bad-Actor, with its description.
    let out = sgplane([
        "-c",
        config,
        "explain",
        "--src",
        "203.0.113.5",
        "--dst",
        "10.0.1.4",
        "--dport",
        "22",
        "--json",
    ]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["layer"], "subnet", "{v}");
    let d = &v["decisions"];
    assert_eq!(
        (&d[0]["layer"], &d[1]["layer"]),
        (&"subnet".into(), &"interface".into())
    );
    assert_eq!(d[1]["rule"], "sg-nsg-web/ingress/1");
    assert_eq!(d[1]["rule_description"], "abuse report 4711");
}

#[test]
fn c_dir_is_recognised_as_azure_and_answers_as_azure_would() {
    answers_as_azure(DEMO);
}

#[test]
fn import_azure_writes_a_policy_that_answers_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.toml");
    let out = sgplane([
        OsString::from("import"),
        "azure".into(),
        DEMO.into(),
        "-o".into(),
        file.clone().into(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let err = text(&out.stderr);
    assert!(err.contains("3 skipped"), "{err}");
    assert!(err.contains("bastion-pip"), "{err}");
    // Both web NICs have an NSG and sit in a subnet with one: both layers
    // are enforced (SPEC §9.2), nothing is skipped for it.
    assert!(!err.contains("web-vm-nic"), "{err}");
    let toml = std::fs::read_to_string(&file).unwrap();
    assert!(
        toml.starts_with("# Imported by sgplane import azure from:"),
        "{toml}"
    );
    assert!(toml.contains("provider = \"azure\""));
    assert!(toml.contains("id = \"Deny-Bad-Actor\""));
    answers_as_azure(file.to_str().unwrap());

    // The same input gives the same bytes.
    let again = sgplane(["import", "azure", DEMO]);
    assert_eq!(text(&again.stdout), toml);
}

#[test]
fn check_names_the_service_tags_it_cannot_resolve() {
    let out = sgplane(["-c", DEMO, "check"]);
    let all = show(&out);
    assert!(all.contains("pl-tag.Storage.WestEurope"), "{all}");
    assert!(all.contains("owner Azure"), "{all}");
}

#[test]
fn strict_refuses_what_cannot_be_represented() {
    let out = sgplane(["import", "azure", DEMO, "--strict"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(text(&out.stderr).contains("--strict"), "{}", show(&out));
}

#[test]
fn malformed_azure_json_names_the_file_and_path() {
    let dir = tempfile::tempdir().unwrap();
    let nsg = std::fs::read_to_string(root().join(DEMO).join("nsg-list.json")).unwrap();
    let bad = nsg.replacen("\"priority\": 100,", "\"priority\": \"first\",", 1);
    assert_ne!(bad, nsg);
    std::fs::write(dir.path().join("nsg-list.json"), bad).unwrap();
    let out = sgplane([OsString::from("import"), "azure".into(), dir.path().into()]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = text(&out.stderr);
    assert!(
        err.contains(
            "nsg-list.json:$[0].securityRules[0].priority: expected an integer, found \"first\""
        ),
        "{err}"
    );
}

/// Microsoft's own REST API examples (tests/data/azure/rest-spec-examples,
/// MIT): recorded responses (`responses.200.body`) read as they are; the
/// NIC's prefix configuration is one of its addresses; what the separate
/// examples do not contain (the NIC's NSG, its VNet, its public IP) and
/// what sgplane does not model (`disableTcpStateTracking`) are listed, never
/// dropped; `testnsg`'s rules are Azure's: rule1 (`*`, port 80, priority
/// 130) as tcp and udp, then the six default rules.
#[test]
fn azure_rest_spec_examples_import_as_published() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.toml");
    let out = sgplane([
        OsString::from("import"),
        "azure".into(),
        "tests/data/azure/rest-spec-examples".into(),
        "-o".into(),
        file.clone().into(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let err = text(&out.stderr);
    for listed in [
        "networkSecurityGroups/nsg: the NSG of NIC `test-nic` is not in the input",
        "rg1-vnet/subnets/default: subnet not in the input",
        "publicIPAddresses/test-ip",
        "`disableTcpStateTracking`",
    ] {
        assert!(err.contains(listed), "{listed}\n{err}");
    }
    let toml = std::fs::read_to_string(&file).unwrap();
    assert!(
        toml.contains(r#"addresses = ["172.20.2.4", "172.20.2.16/28"]"#),
        "{toml}"
    );
    assert!(toml.contains(
        r#"{ proto = "tcp", ports = "80", from = ["0.0.0.0/0", "::/0"], priority = 130, id = "rule1" }"#
    ), "{toml}");
    assert!(toml.contains(
        r#"{ proto = "udp", ports = "80", from = ["0.0.0.0/0", "::/0"], priority = 130, id = "rule1" }"#
    ), "{toml}");
    for default in [
        "AllowVnetInBound",
        "AllowAzureLoadBalancerInBound",
        "DenyAllInBound",
        "AllowVnetOutBound",
        "AllowInternetOutBound",
        "DenyAllOutBound",
    ] {
        assert!(
            toml.contains(&format!("id = \"{default}\"")),
            "{default}\n{toml}"
        );
    }
    // The NIC's own NSG is not in the input: it gets none of its rules, so
    // sgplane allows it nothing (and says why above) rather than guess.
    let (verdict, _, _) = explain(file.to_str().unwrap(), "10.0.1.9", "172.20.2.4", 80);
    assert_eq!(verdict, "deny");
    // --strict refuses an input with anything listed.
    let strict = sgplane([
        "import",
        "azure",
        "tests/data/azure/rest-spec-examples",
        "--strict",
    ]);
    assert_eq!(strict.status.code(), Some(2), "{}", show(&strict));
}

/// `-c` from a pipe (`-c <(az network nsg list)`, /dev/stdin): the JSON is
/// read once and recognised as Azure's from its bytes, and `check` says
/// what it says of the same file.
#[test]
fn azure_json_from_a_pipe_is_recognised_and_checked_as_the_file_is() {
    let file = root().join("tests/data/azure/demo/nsg-list.json");
    let from_file = sgplane([OsString::from("-c"), file.clone().into(), "check".into()]);
    assert_eq!(from_file.status.code(), Some(0), "{}", show(&from_file));
    let json = std::fs::read(&file).unwrap();
    let piped = common::sgplane_with_stdin(None, &["-c", "/dev/stdin", "check"], &json);
    assert_eq!(piped.status.code(), Some(0), "{}", show(&piped));
    let name = file.to_str().unwrap();
    // Everything but the names and the fast path's build time.
    let same = |o: &Output| {
        format!("{}{}", text(&o.stdout), text(&o.stderr))
            .replace(name, "NSGS")
            .replace("/dev/stdin", "NSGS")
            .lines()
            .filter(|l| !l.contains("built in"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(same(&piped), same(&from_file));
    // Azure's: its NSGs' default rules, the VirtualNetwork service tag.
    assert!(
        same(&piped).contains("pl-tag.VirtualNetwork"),
        "{}",
        show(&piped)
    );
}
