//! The Azure traps of SPEC §7, each on `az`'s own output
//! (`tests/data/azure/demo/`, written from Azure's documentation by
//! `tests/data/azure/make-demo.py`): imported, compiled and asked about flows.

use std::net::IpAddr;
use std::path::PathBuf;

use serde_json::{json, Value};

use super::*;
use crate::policy::types::{Action, IpProto, Verdict};
use crate::policy::{Flow, Policy};

fn demo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/azure/demo")
}

/// `paths` imported as Azure's.
fn import(paths: &[PathBuf]) -> Result<Import, ImportError> {
    crate::import::import(crate::import::Provider::Azure, paths, false)
}

fn demo() -> Import {
    import(&[demo_dir()]).unwrap_or_else(|e| panic!("the demo imports: {e}"))
}

fn policy(i: &Import) -> Policy {
    Policy::compile(&i.model).unwrap_or_else(|e| panic!("the import compiles:\n{e}"))
}

/// The import with only the NICs' own NSGs: the traps of one NSG's rules,
/// without the web subnet's NSG (SPEC §9.2, tested on its own below)
/// judging first.
fn nic_layer(i: &Import) -> Policy {
    let mut m = i.model.clone();
    m.subnets.iter_mut().for_each(|s| s.security_groups.clear());
    Policy::compile(&m).unwrap_or_else(|e| panic!("the import compiles:\n{e}"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn tcp(src: &str, dst: &str, dport: u16) -> Flow {
    Flow::ports(ip(src), ip(dst), IpProto::TCP, 40000, dport)
}

/// The verdict and the deciding rule as `GROUP/AZURE-RULE-NAME`.
/// The flow is judged in the VNet its addresses give, as `explain` does.
fn judge(p: &Policy, f: &Flow) -> (Verdict, Option<String>) {
    let f = f.in_zone(p.zone_of(None, f.src, f.dst));
    let e = p.evaluate(&f);
    let rule = e.rule().map(|r| {
        let rule = p.rule(r);
        let name = p.rule_name(r).to_string();
        let group = name.split('/').next().unwrap().to_string();
        format!("{group}/{}", rule.id.clone().unwrap_or_default())
    });
    (e.verdict, rule)
}

fn allowed_by(p: &Policy, f: &Flow, rule: &str) {
    assert_eq!(
        judge(p, f),
        (Verdict::Allow, Some(rule.to_string())),
        "{f:?}"
    );
}

fn denied_by(p: &Policy, f: &Flow, rule: &str) {
    assert_eq!(
        judge(p, f),
        (Verdict::Deny, Some(rule.to_string())),
        "{f:?}"
    );
}

#[test]
fn the_first_matching_priority_decides() {
    let p = nic_layer(&demo());
    // 100 Allow-Web comes before 110 Deny-Bad-Actor ...
    allowed_by(
        &p,
        &tcp("203.0.113.5", "10.0.1.4", 443),
        "sg-nsg-web/Allow-Web",
    );
    // ... which comes before the default rules.
    denied_by(
        &p,
        &tcp("203.0.113.5", "10.0.1.4", 22),
        "sg-nsg-web/Deny-Bad-Actor",
    );
    denied_by(
        &p,
        &tcp("198.18.0.1", "10.0.1.4", 22),
        "sg-nsg-web/DenyAllInBound",
    );
    // A custom deny at 4096 beats the default AllowVnetInBound at 65000.
    denied_by(
        &p,
        &tcp("10.0.2.4", "10.1.1.4", 5432),
        "sg-nsg-app/Deny-VNet-In",
    );
}

#[test]
fn the_six_default_rules_apply_in_both_directions() {
    let i = demo();
    let p = nic_layer(&i);
    // Read from `defaultSecurityRules` (az output) ...
    let web = i
        .model
        .security_groups
        .iter()
        .find(|g| g.name == "sg-nsg-web")
        .unwrap();
    let ids =
        |rules: &[Rule]| -> Vec<String> { rules.iter().filter_map(|r| r.id.clone()).collect() };
    let ingress = ids(&web.ingress);
    for d in [
        "AllowVnetInBound",
        "AllowAzureLoadBalancerInBound",
        "DenyAllInBound",
    ] {
        assert!(ingress.contains(&d.to_string()), "{d} in {ingress:?}");
    }
    // ... and added where the input has none (nsg-app, REST shape).
    let app = i
        .model
        .security_groups
        .iter()
        .find(|g| g.name == "sg-nsg-app")
        .unwrap();
    let egress = ids(&app.egress);
    assert_eq!(
        egress,
        [
            "AllowVnetOutBound",
            "AllowInternetOutBound",
            "DenyAllOutBound"
        ]
    );
    let prio: Vec<i64> = app
        .egress
        .iter()
        .map(|r| r.priority.as_ref().unwrap().value)
        .collect();
    assert_eq!(prio, [65000, 65001, 65500]);

    // AllowVnetInBound: the bastion (no NSG) reaches a web server on any port.
    allowed_by(
        &p,
        &tcp("10.0.2.4", "10.0.1.4", 3306),
        "sg-nsg-web/AllowVnetInBound",
    );
    // DenyAllInBound: the internet does not.
    denied_by(
        &p,
        &tcp("198.51.100.9", "10.0.1.4", 3306),
        "sg-nsg-web/DenyAllInBound",
    );
    // AllowInternetOutBound and the custom Deny-SMTP-Out before it.
    allowed_by(
        &p,
        &tcp("10.0.1.4", "8.8.8.8", 443),
        "sg-nsg-web/AllowInternetOutBound",
    );
    denied_by(
        &p,
        &tcp("10.0.1.4", "8.8.8.8", 25),
        "sg-nsg-web/Deny-SMTP-Out",
    );
    // AllowVnetOutBound then DenyAllOutBound (nsg-lab has only the defaults).
    allowed_by(
        &p,
        &tcp("10.9.0.4", "10.9.0.200", 80),
        "sg-nsg-lab/AllowVnetOutBound",
    );
    let lab = i
        .model
        .security_groups
        .iter()
        .find(|g| g.name == "sg-nsg-lab")
        .unwrap();
    let deny_all = lab.egress.last().unwrap();
    assert_eq!(deny_all.id.as_deref(), Some("DenyAllOutBound"));
    assert_eq!(deny_all.action, Action::Deny);
}

#[test]
fn star_ranges_and_lists() {
    let p = nic_layer(&demo());
    // destinationPortRanges ["80", "443"]
    allowed_by(
        &p,
        &tcp("198.18.0.1", "10.0.1.4", 80),
        "sg-nsg-web/Allow-Web",
    );
    denied_by(
        &p,
        &tcp("198.18.0.1", "10.0.1.4", 81),
        "sg-nsg-web/DenyAllInBound",
    );
    // "5000-5010" from source port 53 only.
    let udp = |sport, dport| {
        Flow::ports(
            ip("198.51.100.7"),
            ip("10.0.1.4"),
            IpProto::UDP,
            sport,
            dport,
        )
    };
    allowed_by(&p, &udp(53, 5005), "sg-nsg-web/Allow-Dns-Replies");
    denied_by(&p, &udp(54, 5005), "sg-nsg-web/DenyAllInBound");
    denied_by(&p, &udp(53, 5011), "sg-nsg-web/DenyAllInBound");
    // destinationAddressPrefixes: one Azure rule, two sgplane rules.
    allowed_by(
        &p,
        &tcp("10.0.2.4", "10.0.1.5", 8080),
        "sg-nsg-web/Allow-Admin-To-Web-Hosts",
    );
    let i = demo();
    let web = i
        .model
        .security_groups
        .iter()
        .find(|g| g.name == "sg-nsg-web")
        .unwrap();
    let split: Vec<&Rule> = web
        .ingress
        .iter()
        .filter(|r| r.id.as_deref() == Some("Allow-Admin-To-Web-Hosts"))
        .collect();
    assert_eq!(split.len(), 2);
    assert!(split[1]
        .description
        .as_deref()
        .unwrap()
        .contains("local address 2 of 2"));
    // `*` with a port: TCP and UDP on it.
    let storage: Vec<String> = web
        .egress
        .iter()
        .filter(|r| r.id.as_deref() == Some("Allow-Storage-Out"))
        .map(|r| r.proto.to_string())
        .collect();
    assert_eq!(storage, ["tcp", "udp"]);
}

#[test]
fn protocols_are_read_in_any_case_and_icmp_covers_both_families() {
    let p = nic_layer(&demo());
    // "TCP", "Tcp", "tcp", "udp" in the input.
    allowed_by(
        &p,
        &tcp("198.18.0.1", "10.0.1.4", 443),
        "sg-nsg-web/Allow-Web",
    );
    let ping4 = Flow::icmp(ip("198.18.0.1"), ip("10.0.1.4"), IpProto::ICMP, 8, 0);
    allowed_by(&p, &ping4, "sg-nsg-web/Allow-Ping");
    let ping6 = Flow::icmp(
        ip("2001:db8::1"),
        ip("fd00:db8:deca:1::4"),
        IpProto::ICMPV6,
        128,
        0,
    );
    allowed_by(&p, &ping6, "sg-nsg-web/Allow-Ping");
    let esp = Flow::other(ip("198.18.0.1"), ip("10.0.1.4"), IpProto(50));
    denied_by(&p, &esp, "sg-nsg-web/DenyAllInBound");
}

#[test]
fn virtual_network_is_the_vnet_and_its_connected_peers() {
    let i = demo();
    let p = policy(&i);
    let vn = i
        .model
        .prefix_lists
        .iter()
        .find(|l| l.name == "pl-tag.VirtualNetwork.vnet-hub")
        .unwrap();
    let entries: Vec<String> = vn.entries.iter().map(|e| e.value.to_string()).collect();
    assert_eq!(
        entries,
        ["10.0.0.0/16", "fd00:db8:deca::/48", "10.1.0.0/16"]
    );
    assert!(!vn.incomplete);
    // The spoke reaches the hub through AllowVnetOutBound and AllowVnetInBound.
    allowed_by(
        &p,
        &tcp("10.1.1.4", "10.0.1.4", 3306),
        "sg-nsg-web/AllowVnetInBound",
    );
    // The lab's peering is Disconnected: skipped, said, not a peer.
    assert!(i
        .skipped
        .iter()
        .any(|s| s.id.ends_with("vnet-hub-to-vnet-lab") && s.why.contains("Disconnected")));
    let hub = i.model.vpcs.iter().find(|v| v.name == "vnet-hub").unwrap();
    let peers: Vec<&str> = hub.peers.iter().map(|p| p.value.as_str()).collect();
    assert_eq!(peers, ["vnet-spoke"]);
}

#[test]
fn azure_load_balancer_is_the_host_address() {
    let p = policy(&demo());
    allowed_by(
        &p,
        &tcp("168.63.129.16", "10.1.1.4", 9999),
        "sg-nsg-app/AllowAzureLoadBalancerInBound",
    );
    denied_by(
        &p,
        &tcp("168.63.129.17", "10.1.1.4", 9999),
        "sg-nsg-app/DenyAllInBound",
    );
}

#[test]
fn internet_is_everything_outside_the_vnets() {
    let i = demo();
    let p = policy(&i);
    let inet = i
        .model
        .prefix_lists
        .iter()
        .find(|l| l.name == "pl-tag.Internet.vnet-hub")
        .unwrap();
    let has = |a: &str| inet.entries.iter().any(|e| e.value.contains(&ip(a)));
    assert!(has("8.8.8.8") && has("10.2.0.1") && has("2001:db8::1"));
    assert!(!has("10.0.200.1") && !has("10.1.0.1") && !has("fd00:db8:deca::9"));
    // nsg-web-subnet allows 443 from Internet: as data, for the subnet layer.
    assert!(i
        .model
        .prefix_lists
        .iter()
        .any(|l| l.name == "pl-tag.Internet.vnet-hub"));
    // Deny-SMTP-Out to Internet does not stop mail inside the VNets.
    allowed_by(
        &p,
        &tcp("10.0.1.4", "10.1.1.200", 25),
        "sg-nsg-web/AllowVnetOutBound",
    );
}

#[test]
fn other_service_tags_are_named_by_check() {
    let i = demo();
    let p = policy(&i);
    let w = p.warnings();
    assert!(
        w.iter().any(|w| w.kind == "unknown-prefix-list"
            && w.message.contains("pl-tag.Storage.WestEurope")
            && w.message.contains("Azure")),
        "{:?}",
        w.iter().map(|w| &w.message).collect::<Vec<_>>()
    );
}

#[test]
fn application_security_groups_take_their_members_from_the_nics() {
    let i = demo();
    let p = policy(&i);
    let web = i
        .model
        .interfaces
        .iter()
        .find(|n| n.name == "web-vm-nic")
        .unwrap();
    let groups: Vec<&str> = web
        .security_groups
        .iter()
        .map(|g| g.value.as_str())
        .collect();
    assert_eq!(groups, ["sg-nsg-web", "sg-asg.asg-web"]);
    // asg-web's members (web-vm, web-vm2) reach the app on 8080, the bastion does not.
    allowed_by(
        &p,
        &tcp("10.0.1.4", "10.1.1.4", 8080),
        "sg-nsg-app/Allow-8080-From-Web",
    );
    allowed_by(
        &p,
        &tcp("10.0.1.5", "10.1.1.4", 8080),
        "sg-nsg-app/Allow-8080-From-Web",
    );
    denied_by(
        &p,
        &tcp("10.0.2.4", "10.1.1.4", 8080),
        "sg-nsg-app/Deny-VNet-In",
    );
    // asg-bastion: SSH to the web servers.
    allowed_by(
        &p,
        &tcp("10.0.2.4", "10.0.1.4", 22),
        "sg-nsg-web/Allow-SSH-From-Bastion",
    );
    // The bastion's NIC has no NSG: that layer allows everything.
    let bastion = i
        .model
        .interfaces
        .iter()
        .find(|n| n.name == "bastion-nic")
        .unwrap();
    let groups: Vec<&str> = bastion
        .security_groups
        .iter()
        .map(|g| g.value.as_str())
        .collect();
    assert_eq!(groups, [NO_NSG, "sg-asg.asg-bastion"]);
}

#[test]
fn nics_vnets_and_subnets_are_the_topology() {
    let i = demo();
    let web = i
        .model
        .interfaces
        .iter()
        .find(|n| n.name == "web-vm-nic")
        .unwrap();
    let addrs: Vec<String> = web
        .addresses
        .value
        .iter()
        .map(|a| a.value.to_string())
        .collect();
    assert_eq!(addrs, ["10.0.1.4/32", "fd00:db8:deca:1::4/128"]);
    assert_eq!(web.place.subnet.as_ref().unwrap().value, "vnet-hub.web");
    assert_eq!(web.place.instance.as_deref(), Some("web-vm"));
    assert_eq!(web.place.title.as_deref(), Some("web-vm-nic"));
    let sub = i
        .model
        .subnets
        .iter()
        .find(|s| s.name == "vnet-hub.web")
        .unwrap();
    let nsgs: Vec<&str> = sub
        .security_groups
        .iter()
        .map(|g| g.value.as_str())
        .collect();
    assert_eq!(nsgs, ["sg-nsg-web-subnet"]);
    assert_eq!(sub.cidrs.len(), 2);
    assert_eq!(sub.vpc.value, "vnet-hub");
    // The bastion's public IP is a reference whose address is not in the input.
    assert!(i.skipped.iter().any(|s| s.id.ends_with("bastion-pip")));
    let m = &i.model;
    assert_eq!(m.imported.as_ref().unwrap().provider, "azure");
    assert_eq!(m.imported.as_ref().unwrap().inputs.len(), 5);
    let names: Vec<&str> = m.security_groups.iter().map(|g| g.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
}

/// An NSG as `az` prints it, and the same NSG in the REST shape.
fn both_shapes() -> (Value, Value) {
    let id =
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/n";
    let flat = json!({
        "id": id, "name": "n", "type": "Microsoft.Network/networkSecurityGroups",
        "securityRules": [{
            "name": "r", "id": format!("{id}/securityRules/r"), "priority": 300,
            "direction": "Inbound", "access": "Deny", "protocol": "Udp",
            "sourceAddressPrefixes": ["192.0.2.0/24", "2001:db8::/32"], "sourceAddressPrefix": null,
            "sourcePortRange": "*", "destinationAddressPrefix": "*", "destinationPortRanges": ["53", "5353"],
        }],
    });
    let rest = json!({
        "id": id, "name": "n", "type": "Microsoft.Network/networkSecurityGroups",
        "properties": { "securityRules": [{
            "name": "r", "id": format!("{id}/securityRules/r"),
            "properties": {
                "priority": 300, "direction": "Inbound", "access": "Deny", "protocol": "Udp",
                "sourceAddressPrefixes": ["192.0.2.0/24", "2001:db8::/32"],
                "sourcePortRange": "*", "destinationAddressPrefix": "*",
                "destinationPortRanges": ["53", "5353"],
            },
        }]},
    });
    (flat, rest)
}

fn without_origins(mut g: SecurityGroup) -> SecurityGroup {
    g.origin = Origin::None;
    for r in g.ingress.iter_mut().chain(g.egress.iter_mut()) {
        r.origin = Origin::None;
        for x in &mut r.remote {
            x.origin = Origin::None;
        }
        for p in [&mut r.ports, &mut r.source_ports].into_iter().flatten() {
            p.origin = Origin::None;
        }
        if let Some(p) = &mut r.priority {
            p.origin = Origin::None;
        }
    }
    g
}

#[test]
fn the_flattened_and_rest_shapes_are_the_same_nsg() {
    let (flat, rest) = both_shapes();
    let a = import_values(&[("show.json".into(), flat.clone())]).unwrap();
    let b = import_values(&[("rest.json".into(), json!({ "value": [rest] }))]).unwrap();
    let c = import_values(&[("list.json".into(), json!([flat]))]).unwrap();
    let g = |i: &Import| without_origins(i.model.security_groups[0].clone());
    assert_eq!(g(&a), g(&b));
    assert_eq!(g(&a), g(&c));
    let r = &a.model.security_groups[0].ingress[0];
    assert_eq!(r.action, Action::Deny);
    assert_eq!(r.priority.as_ref().unwrap().value, 300);
    assert_eq!(r.remote.len(), 2);
    assert_eq!(r.ports.as_ref().unwrap().value.len(), 2);
    // Seven rules: the one and the six defaults, added.
    let n = a.model.security_groups[0].ingress.len() + a.model.security_groups[0].egress.len();
    assert_eq!(n, 7);
    assert!(
        recognises(&flat) && recognises(&json!([flat])) && recognises(&json!({"value": [rest]}))
    );
    assert!(!recognises(&json!({"SecurityGroups": []})) && !recognises(&json!([])));
}

#[test]
fn malformed_rules_name_the_file_and_path() {
    let (mut flat, _) = both_shapes();
    flat["securityRules"][0]["priority"] = json!("high");
    let e = import_values(&[("nsg.json".into(), flat)])
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "nsg.json:$.securityRules[0].priority: expected an integer, found \"high\""
    );
    let (mut flat, _) = both_shapes();
    flat["securityRules"][0]["direction"] = json!("Sideways");
    let e = import_values(&[("nsg.json".into(), json!([flat]))])
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("nsg.json:$[0].securityRules[0].direction: direction `Sideways`"),
        "{e}"
    );
    let (mut flat, _) = both_shapes();
    flat["securityRules"][0]["destinationPortRanges"] = json!(["53", "eighty"]);
    let e = import_values(&[("nsg.json".into(), flat)])
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("nsg.json:$.securityRules[0].destinationPortRanges[1]: bad port"),
        "{e}"
    );
}

#[test]
fn what_cannot_be_represented_is_skipped_with_why() {
    let (mut flat, _) = both_shapes();
    flat["securityRules"][0]["protocol"] = json!("Gre");
    let i = import_values(&[
        ("nsg.json".into(), flat),
        ("other.json".into(), json!([{"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/lb", "type": "Microsoft.Network/loadBalancers"}])),
    ])
    .unwrap();
    let why: Vec<String> = i.skipped.iter().map(|s| s.to_string()).collect();
    assert!(why.iter().any(|w| w.contains("protocol `gre`")), "{why:?}");
    assert!(
        why.iter()
            .any(|w| w.contains("loadBalancers/lb")
                && w.contains("not an Azure resource sgplane reads")),
        "{why:?}"
    );
    // The NSG is attached nowhere: its VirtualNetwork tag is named as such.
    assert!(
        why.iter()
            .any(|w| w.contains("attached to no subnet or NIC")),
        "{why:?}"
    );
}

#[test]
fn the_import_writes_and_reads_back() {
    let i = demo();
    let text = crate::import::write::write(&i.model);
    let p = Policy::from_toml(&text, "azure.toml").unwrap_or_else(|e| panic!("{e}\n{text}"));
    allowed_by(
        &p,
        &tcp("10.0.1.5", "10.1.1.4", 8080),
        "sg-nsg-app/Allow-8080-From-Web",
    );
    // The subnet layer is written and read back: it denies first.
    denied_by(
        &p,
        &tcp("203.0.113.5", "10.0.1.4", 22),
        "sg-nsg-web-subnet/DenyAllInBound",
    );
}

#[test]
fn the_provider_is_recognised_by_content() {
    assert_eq!(
        crate::import::Provider::detect(&[demo_dir()]).unwrap(),
        crate::import::Provider::Azure
    );
}

/// Azure's two layers (SPEC §9.2): web-vm-nic has nsg-web, and its subnet
/// nsg-web-subnet; both judge, entering the subnet's first, and a NIC with
/// both is no longer skipped.
#[test]
fn the_subnet_nsg_and_the_nic_nsg_both_apply() {
    let i = demo();
    assert!(
        !i.skipped.iter().any(|s| s.id.contains("web-vm")),
        "{:?}",
        i.skipped
    );
    let web = i
        .model
        .subnets
        .iter()
        .find(|s| s.name == "vnet-hub.web")
        .unwrap();
    assert_eq!(web.security_groups[0].value, "sg-nsg-web-subnet");
    let p = policy(&i);
    // nsg-web's Allow-Dns-Replies admits 198.51.100.0/24 on 5000-5010; the
    // subnet's NSG admits only tcp 80,443 from the internet: denied by the
    // subnet's DenyAllInBound.
    denied_by(
        &p,
        &tcp("198.51.100.7", "10.0.1.4", 5005),
        "sg-nsg-web-subnet/DenyAllInBound",
    );
    // Both allow: the NIC's own rule is named.
    allowed_by(
        &p,
        &tcp("198.51.100.7", "10.0.1.4", 443),
        "sg-nsg-web/Allow-Web",
    );
    // Leaving, the NIC's Deny-SMTP-Out decides before the subnet's allow.
    denied_by(
        &p,
        &tcp("10.0.1.4", "8.8.8.8", 25),
        "sg-nsg-web/Deny-SMTP-Out",
    );
}

/// A NIC without an NSG in a subnet with one keeps `sg-azure.no-nsg`
/// (allow all, as Azure has no NIC layer then); the subnet's NSG judges on
/// top of it.
#[test]
fn a_nic_without_an_nsg_is_judged_by_its_subnets() {
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(demo_dir()).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
    }
    // Give the bastion's subnet (`app`, whose NIC has no NSG) the web
    // subnet's NSG.
    let vnets = dir.path().join("vnet-list.json");
    let mut v: Value = serde_json::from_slice(&std::fs::read(&vnets).unwrap()).unwrap();
    let web = v[0]["subnets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "web")
        .unwrap()["networkSecurityGroup"]
        .clone();
    for s in v[0]["subnets"].as_array_mut().unwrap() {
        if s["name"] == "app" {
            s["networkSecurityGroup"] = web.clone();
        }
    }
    std::fs::write(&vnets, serde_json::to_vec(&v).unwrap()).unwrap();
    let i = import(&[dir.path().to_path_buf()]).unwrap();
    let bastion = i
        .model
        .interfaces
        .iter()
        .find(|n| n.name == "bastion-nic")
        .unwrap();
    let groups: Vec<&str> = bastion
        .security_groups
        .iter()
        .map(|g| g.value.as_str())
        .collect();
    assert_eq!(groups, [NO_NSG, "sg-asg.asg-bastion"]);
    assert!(!i.skipped.iter().any(|s| s.id.ends_with("-nic")));
    let p = policy(&i);
    // From the internet: 443 passes the subnet's Allow-Web-In (and the
    // NIC's allow-all); 22 does not.
    let to_bastion = |port| tcp("198.51.100.7", "10.0.2.4", port);
    assert_eq!(judge(&p, &to_bastion(443)).0, Verdict::Allow);
    denied_by(&p, &to_bastion(22), "sg-nsg-web-subnet/DenyAllInBound");
}
