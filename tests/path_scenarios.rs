//! `sgplane path` on the cases issue 14 is checked by besides its two
//! stories (tests/data/path/*.toml): a NACL that drops the reply, peering
//! with and without a route, the internet to an instance with and without
//! a public address and to an internet-facing ALB, a transit gateway route,
//! overlapping VPCs, and IPv6. Each asserts the exit code, the blocking
//! component and code, and the fix.

use std::process::Command;

use serde_json::Value;

fn path(config: &str, args: &[&str]) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_sgplane"))
        .args(["-c", config, "path"])
        .args(args)
        .arg("--json")
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let v = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{e}: {text} {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap_or(-1), v)
}

fn codes(v: &Value) -> Vec<&str> {
    v["explanations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect()
}

fn blocking(v: &Value) -> &Value {
    &v["hops"][v["blocked_hop"].as_u64().expect("a blocking hop") as usize]
}

const D: &str = "tests/data/path/";

#[test]
fn a_nacl_that_drops_the_reply_is_named_with_an_ephemeral_egress_fix() {
    let c = format!("{D}nacl-reply.toml");
    let (code, v) = path(&c, &["--from", "web-1", "--to", "db-1", "--dport", "5432"]);
    assert_eq!(code, 1);
    let h = blocking(&v);
    assert_eq!(h["kind"], "network-acl");
    assert_eq!(h["direction"], "reply-egress");
    assert_eq!(v["blocked_at"], "subnet-db (acl-db)");
    assert_eq!(codes(&v), ["SUBNET_ACL_RESTRICTION"]);
    let fixes = v["fixes"].as_array().unwrap();
    assert_eq!(fixes.len(), 1);
    assert!(fixes[0]["toml"].as_str().unwrap().contains(
        r#"{ rule = 101, proto = "tcp", ports = "1024-65535", to = "10.1.1.10/32", action = "allow" }"#
    ));
    assert!(fixes[0]["verified"].as_str().unwrap().contains("reachable"));
    // A client port the ACL lets out is fine: only the reply's port matters.
    let (code, _) = path(
        &c,
        &[
            "--from", "web-1", "--to", "db-1", "--dport", "5432", "--sport", "5432",
        ],
    );
    assert_eq!(code, 0);
}

#[test]
fn peering_reaches_the_peer_vpc_only_with_a_route() {
    let c = format!("{D}peering.toml");
    let (code, v) = path(&c, &["--from", "app", "--to", "api", "--dport", "80"]);
    assert_eq!(code, 0, "{v}");
    let route = v["hops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["kind"] == "route")
        .unwrap();
    assert_eq!(route["rule"], "/16 -> pcx-ab");
    let (code, v) = path(&c, &["--from", "batch", "--to", "api", "--dport", "80"]);
    assert_eq!(code, 1);
    assert_eq!(blocking(&v)["kind"], "route");
    assert_eq!(v["blocked_at"], "rt-a-batch");
    assert_eq!(codes(&v), ["NO_ROUTE_TO_DESTINATION"]);
    assert!(v["fixes"].as_array().unwrap().is_empty());
}

#[test]
fn the_internet_reaches_a_public_address_an_alb_but_not_a_private_instance() {
    let c = format!("{D}internet.toml");
    let (code, v) = path(
        &c,
        &["--from", "198.51.100.7", "--to", "web", "--dport", "443"],
    );
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["hops"][0]["kind"], "internet-gateway");
    assert!(v["hops"][0]["explanation"]
        .as_str()
        .unwrap()
        .contains("54.10.20.30 translated to 10.5.1.10"));
    // By its public address too.
    let (code, _) = path(
        &c,
        &[
            "--from",
            "198.51.100.7",
            "--to",
            "54.10.20.30",
            "--dport",
            "443",
        ],
    );
    assert_eq!(code, 0);
    let (code, v) = path(
        &c,
        &["--from", "198.51.100.7", "--to", "app", "--dport", "443"],
    );
    assert_eq!(code, 1);
    assert_eq!(blocking(&v)["kind"], "internet-gateway");
    assert_eq!(codes(&v), ["IGW_PRIVATE_IP_ASSOCIATION_FOR_INGRESS"]);
    assert!(v["fixes"].as_array().unwrap().is_empty());
    // The internet-facing ALB, by DNS name, through to its target on 8080.
    let (code, v) = path(
        &c,
        &[
            "--from",
            "198.51.100.7",
            "--to",
            "web-alb-123.us-east-1.elb.amazonaws.com",
            "--dport",
            "443",
        ],
    );
    assert_eq!(code, 0, "{v}");
    let kinds: Vec<&str> = v["hops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["kind"].as_str().unwrap())
        .collect();
    for k in [
        "internet-gateway",
        "load-balancer-security-group",
        "listener",
        "load-balancer-targets",
    ] {
        assert!(kinds.contains(&k), "{kinds:?}");
    }
    let last_sg = v["hops"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|h| h["kind"] == "security-group")
        .unwrap();
    assert_eq!(last_sg["rule"], "sg-app/ingress/1");
    // A port the listener does not take.
    let (code, v) = path(
        &c,
        &["--from", "198.51.100.7", "--to", "web-alb", "--dport", "80"],
    );
    assert_eq!(code, 1);
    assert!(codes(&v).contains(&"ENI_SG_RULES_MISMATCH"), "{v}");
}

#[test]
fn a_transit_gateway_route_is_unsupported_never_reachable() {
    let (code, v) = path(
        &format!("{D}tgw.toml"),
        &["--from", "a", "--to", "b", "--dport", "80"],
    );
    assert_eq!(code, 1);
    assert_eq!(v["reachable"], false);
    let h = blocking(&v);
    assert_eq!(h["kind"], "route");
    assert_eq!(h["verdict"], "unsupported");
    assert_eq!(codes(&v), ["UNSUPPORTED_COMPONENT"]);
    assert!(h["explanation"]
        .as_str()
        .unwrap()
        .contains("tgw-0123456789abcdef0"));
    assert!(v["fixes"].as_array().unwrap().is_empty());
}

#[test]
fn overlapping_vpcs_resolve_each_eni_to_its_own_vpc() {
    let c = format!("{D}overlap.toml");
    let (code, v) = path(
        &c,
        &[
            "--from",
            "eni-a-client",
            "--to",
            "eni-a-web",
            "--dport",
            "80",
        ],
    );
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["to"], "eni-a-web");
    let (code, v) = path(
        &c,
        &[
            "--from",
            "eni-a-client",
            "--to",
            "eni-b-web",
            "--dport",
            "80",
        ],
    );
    assert_eq!(code, 1);
    assert_eq!(v["to"], "eni-b-web");
    assert_eq!(blocking(&v)["kind"], "route");
    assert_eq!(codes(&v), ["NO_ROUTE_TO_DESTINATION"]);
    // The bare address is the one in the source's VPC.
    let (_, v) = path(
        &c,
        &[
            "--from",
            "eni-b-client",
            "--to",
            "10.0.1.10",
            "--dport",
            "8080",
        ],
    );
    assert_eq!(v["to"], "eni-b-web");
    assert_eq!(v["reachable"], true, "{v}");
    let (code, v) = path(
        &c,
        &[
            "--from",
            "eni-b-client",
            "--to",
            "10.0.1.10",
            "--dport",
            "80",
        ],
    );
    assert_eq!(code, 1);
    assert_eq!(codes(&v), ["ENI_SG_RULES_MISMATCH"]);
    assert!(v["fixes"][0]["toml"].as_str().unwrap().contains("sg-b-web"));
}

#[test]
fn ipv6_goes_through_groups_and_acls_both_ways() {
    let c = format!("{D}ipv6.toml");
    let (code, v) = path(
        &c,
        &[
            "--from",
            "app6",
            "--to",
            "2001:db8:6:2::20",
            "--dport",
            "5432",
        ],
    );
    assert_eq!(code, 0, "{v}");
    let hops = v["hops"].as_array().unwrap();
    let dirs: Vec<&str> = hops
        .iter()
        .filter(|h| h["kind"] == "network-acl")
        .map(|h| h["direction"].as_str().unwrap())
        .collect();
    assert_eq!(dirs, ["egress", "ingress", "reply-egress", "reply-ingress"]);
    assert!(hops[0]["explanation"]
        .as_str()
        .unwrap()
        .contains("2001:db8:6:2::20"));
    // ICMPv6 echo: the ACLs allow it, the database's group does not.
    let (code, v) = path(
        &c,
        &[
            "--from",
            "app6",
            "--to",
            "2001:db8:6:2::20",
            "--proto",
            "icmpv6",
        ],
    );
    assert_eq!(code, 1);
    assert_eq!(blocking(&v)["kind"], "security-group");
    assert_eq!(blocking(&v)["direction"], "ingress");
    assert_eq!(codes(&v), ["ENI_SG_RULES_MISMATCH"]);
    let fix = v["fixes"][0]["toml"].as_str().unwrap();
    assert!(
        fix.contains(r#"proto = "icmpv6", icmp_type = 128"#),
        "{fix}"
    );
    // The IPv4 path of the same pair: the ACLs have no IPv4 entries.
    let (code, v) = path(
        &c,
        &["--from", "app6", "--to", "10.6.2.20", "--dport", "5432"],
    );
    assert_eq!(code, 1);
    assert_eq!(codes(&v), ["SUBNET_ACL_RESTRICTION"]);
}

/// An imported Azure subscription (tests/data/azure/demo): VNet peering is a
/// system route (no route table needed, unlike AWS), and a subnet NSG is a
/// layer of its own (SPEC §9.2) — leaving, after the NIC's NSG; entering,
/// before it.
#[test]
fn azure_paths_cross_vnet_peerings_and_both_nsg_layers() {
    let azure = "tests/data/azure/demo";
    let (code, v) = path(
        azure,
        &[
            "--from",
            "web-vm-nic",
            "--to",
            "app-vm-nic",
            "--dport",
            "8080",
        ],
    );
    assert_eq!(code, 0, "{v}");
    let kinds: Vec<&str> = v["hops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "security-group",
            "subnet-security-group",
            "route",
            "security-group"
        ],
        "{v}"
    );
    assert_eq!(v["hops"][1]["rule"], "sg-nsg-web-subnet/egress/0");
    assert!(v["hops"][2]["explanation"]
        .as_str()
        .unwrap()
        .contains("VNet peering's system route"));
    // Into a subnet whose NSG admits only HTTPS, on a port the NIC's NSG
    // allows: blocked at the subnet layer, which is judged first, and the
    // fix goes to the subnet's NSG.
    let layers = &format!("{D}azure-layers.toml");
    let (code, v) = path(
        layers,
        &["--from", "app-nic", "--to", "web-nic", "--dport", "443"],
    );
    assert_eq!(code, 0, "{v}");
    let (code, v) = path(
        layers,
        &["--from", "app-nic", "--to", "web-nic", "--dport", "8080"],
    );
    assert_eq!(code, 1, "{v}");
    let hop = blocking(&v);
    assert_eq!(hop["kind"], "subnet-security-group", "{v}");
    assert_eq!(hop["direction"], "ingress");
    assert_eq!(hop["rule"], "sg-web-subnet/ingress/1");
    assert!(
        v["fixes"][0]["toml"]
            .as_str()
            .unwrap()
            .contains("security_groups.sg-web-subnet"),
        "{v}"
    );
}
