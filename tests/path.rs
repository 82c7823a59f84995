//! `sgplane path` (SPEC §8) on the two stories of issue 14: the exit code,
//! the blocking component and code, the fix, and that the fix applied to
//! the model makes the path reachable (or moves the block to the next
//! state of the story).

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use sgplane::path::{self, fix, Change, Query};
use sgplane::policy::{IpProto, Policy};

fn sgplane(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sgplane"))
        .args(args)
        .output()
        .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn path_json(config: &str, from: &str, to: &str, dport: &str) -> (i32, Value) {
    let (code, out, err) = sgplane(&[
        "-c", config, "path", "--from", from, "--to", to, "--dport", dport, "--json",
    ]);
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
    (code, v)
}

fn query(from: &str, to: &str, dport: u16) -> Query {
    Query {
        from: from.into(),
        to: to.into(),
        proto: IpProto::TCP,
        dport: Some(dport),
        sport: None,
        icmp: None,
    }
}

fn codes(v: &Value) -> Vec<&str> {
    v["explanations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect()
}

#[test]
fn alb_story_is_blocked_at_the_instance_sg_and_fixed_by_a_rule() {
    let (code, v) = path_json("config/aws-default-sg.aws", "rails-alb", "rails-1", "80");
    assert_eq!(code, 1);
    assert_eq!(v["reachable"], false);
    let at = v["blocked_hop"].as_u64().unwrap() as usize;
    let hop = &v["hops"][at];
    assert_eq!(hop["kind"], "security-group");
    assert_eq!(hop["direction"], "ingress");
    assert!(v["blocked_at"].as_str().unwrap().contains("rails-1"));
    assert_eq!(codes(&v), ["ENI_SG_RULES_MISMATCH"]);
    // The hops before it: SG egress, NACL egress, route, NACL ingress.
    let kinds: Vec<&str> = v["hops"].as_array().unwrap()[..at]
        .iter()
        .map(|h| h["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["security-group", "network-acl", "route", "network-acl"]
    );
    let fixes = v["fixes"].as_array().unwrap();
    assert_eq!(fixes.len(), 1);
    assert!(fixes[0]["toml"]
        .as_str()
        .unwrap()
        .contains(r#"{ proto = "tcp", ports = "80", from = "sg-public" }"#));
    assert!(fixes[0]["aws"]
        .as_str()
        .unwrap()
        .starts_with("aws ec2 authorize-security-group-ingress --group-id sg-public"));
}

#[test]
fn alb_story_fixed_twin_is_reachable() {
    let (code, v) = path_json(
        "config/aws-default-sg-fixed.aws",
        "eni-alb-1a",
        "10.0.10.20",
        "80",
    );
    assert_eq!(code, 0);
    assert_eq!(v["reachable"], true);
    assert!(v["blocked_at"].is_null());
    let last_sg = v["hops"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|h| h["kind"] == "security-group")
        .unwrap();
    assert_eq!(last_sg["rule"], "sg-default/ingress/0");
}

#[test]
fn alb_story_fix_applied_to_the_model_is_reachable() {
    let (model, _) = sgplane::import::load_model(Path::new("config/aws-default-sg.aws")).unwrap();
    let q = query("rails-alb", "i-0f1e2d3c4b5a69801", 80);
    let policy = Policy::compile(&model).unwrap();
    let trace = path::analyse(&policy, &q).unwrap();
    assert!(!trace.reachable);
    let fixes = fix::search(&model, &q, &trace);
    let mut m = model.clone();
    for f in &fixes {
        assert!(fix::apply(&mut m, &f.raw));
    }
    let again = path::analyse(&Policy::compile(&m).unwrap(), &q).unwrap();
    assert!(again.reachable, "{}", path::render::to_text(&again));
    // Port 443 from the ALB is still not allowed: the fix is for port 80 only.
    let q443 = query("rails-alb", "rails-1", 443);
    assert!(
        !path::analyse(&Policy::compile(&m).unwrap(), &q443)
            .unwrap()
            .reachable
    );
}

#[test]
fn privatelink_story_blocked_at_the_nlb_sg_then_cross_zone_then_reachable() {
    let vpce = "vpce-0a1b2c3d4e5f60789";
    // 1. The NLB's group has no inbound rules, enforced on PrivateLink.
    let (code, v) = path_json("config/privatelink-story.aws", "consumer-app", vpce, "80");
    assert_eq!(code, 1);
    let hop = &v["hops"][v["blocked_hop"].as_u64().unwrap() as usize];
    assert_eq!(hop["kind"], "load-balancer-security-group");
    assert!(hop["component"].as_str().unwrap().contains("nlb-orders"));
    assert_eq!(codes(&v), ["ENI_SG_RULES_MISMATCH", "SG_HAS_NO_RULES"]);
    let fixes = v["fixes"].as_array().unwrap();
    assert!(fixes[0]["toml"]
        .as_str()
        .unwrap()
        .contains("enforce_inbound_rules_on_privatelink = false"));
    assert!(fixes[0]["verified"]
        .as_str()
        .unwrap()
        .contains("ELB_NOT_CROSSZONE"));
    assert!(fixes[1]["toml"]
        .as_str()
        .unwrap()
        .contains("cross_zone = true"));
    assert!(fixes[1]["aws"]
        .as_str()
        .unwrap()
        .contains("modify-load-balancer-attributes"));
    // 2. Enforcement off: the endpoint's AZ has no target.
    let (code, v) = path_json(
        "config/privatelink-story-unenforced.aws",
        "consumer-app",
        vpce,
        "80",
    );
    assert_eq!(code, 1);
    assert_eq!(codes(&v), ["ELB_NOT_CROSSZONE"]);
    let hop = &v["hops"][v["blocked_hop"].as_u64().unwrap() as usize];
    assert_eq!(hop["kind"], "load-balancer-targets");
    // 3. Cross-zone on: reachable, to the target in AZ b from the node in AZ a.
    let (code, v) = path_json(
        "config/privatelink-story-cross-zone.aws",
        "consumer-app",
        "nlb-orders",
        "80",
    );
    assert_eq!(code, 0, "{v}");
    let last = v["hops"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|h| h["kind"] == "security-group")
        .unwrap();
    assert!(last["component"].as_str().unwrap().contains("orders-2"));
    assert_eq!(last["rule"], "sg-orders-app/ingress/0");
}

#[test]
fn privatelink_story_fixes_give_the_next_states() {
    let (model, _) =
        sgplane::import::load_model(Path::new("config/privatelink-story.aws")).unwrap();
    let q = query("i-0c1a2b3c4d5e6f801", "nlb-orders", 80);
    let trace = path::analyse(&Policy::compile(&model).unwrap(), &q).unwrap();
    assert!(!trace.reachable);
    let fixes = fix::search(&model, &q, &trace);
    assert_eq!(
        fixes.iter().map(|f| f.raw.clone()).collect::<Vec<_>>(),
        [
            Change::PrivateLinkEnforcementOff {
                lb: "nlb-orders".into()
            },
            Change::CrossZone {
                lb: "nlb-orders".into()
            }
        ]
    );
    let mut m = model.clone();
    fix::apply(&mut m, &fixes[0].raw);
    let (twin, _) =
        sgplane::import::load_model(Path::new("config/privatelink-story-unenforced.aws")).unwrap();
    let lb = |m: &sgplane::policy::Model| {
        let l = &m.load_balancers[0];
        (l.enforce_inbound_rules_on_privatelink, l.cross_zone)
    };
    assert_eq!(lb(&m), lb(&twin));
    fix::apply(&mut m, &fixes[1].raw);
    assert!(
        path::analyse(&Policy::compile(&m).unwrap(), &q)
            .unwrap()
            .reachable
    );
}

#[test]
fn the_twin_privatelink_policy_is_reachable_and_a_wrong_port_is_not() {
    let (code, _) = path_json(
        "config/privatelink-nlb.aws",
        "consumer-app",
        "nlb-orders",
        "80",
    );
    assert_eq!(code, 0);
    let (code, v) = path_json(
        "config/privatelink-nlb.aws",
        "consumer-app",
        "nlb-orders",
        "8080",
    );
    assert_eq!(code, 1);
    // The consumer's own group stops it first.
    assert_eq!(v["hops"][0]["verdict"], "deny");
    assert_eq!(codes(&v), ["ENI_SG_RULES_MISMATCH"]);
}

#[test]
fn bad_names_are_clear_errors_with_exit_2() {
    let (code, out, err) = sgplane(&[
        "-c",
        "config/aws-default-sg.aws",
        "path",
        "--from",
        "no-such-host",
        "--to",
        "rails-1",
    ]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(err.contains("--from no-such-host"), "{err}");
    let (code, _, err) = sgplane(&[
        "-c",
        "config/privatelink-nlb.aws",
        "path",
        "--from",
        "vpce-0a1b2c3d4e5f60789",
        "--to",
        "nlb-orders",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("destination, not a source"), "{err}");
}

#[test]
fn svg_is_written_with_the_blocking_hop_in_red() {
    let dir = std::env::temp_dir().join(format!("sgplane-path-svg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("alb.svg");
    let (code, _, _) = sgplane(&[
        "-c",
        "config/aws-default-sg.aws",
        "path",
        "--from",
        "rails-alb",
        "--to",
        "rails-1",
        "--dport",
        "80",
        "--svg",
        file.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    let svg = std::fs::read_to_string(&file).unwrap();
    assert!(svg.starts_with("<?xml"));
    assert!(svg.contains(r#"class="hop blocking""#));
    assert!(svg.contains("ENI_SG_RULES_MISMATCH"));
    assert!(svg.contains("fix: add an ingress rule to sg-public"));
    assert!(svg.trim_end().ends_with("</svg>"));
    // Chromium, where there is one, loads it without errors.
    let chromium = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        });
    let Some(chromium) = chromium else {
        eprintln!("SKIPPED: no chromium on this machine; the SVG was not rendered in a browser");
        return;
    };
    let out = Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
        .arg(format!("file://{}", file.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dom.contains("<svg"), "{dom}");
    assert!(!dom.contains("parsererror"), "{dom}");
    assert!(dom.contains("ENI_SG_RULES_MISMATCH"));
}
