//! `terraform show -json` documents written by hand after Terraform's JSON
//! output format, and the models they give.

use std::net::IpAddr;

use serde_json::{json, Value};

use super::*;
use crate::policy::model::{Remote, SecurityGroup};
use crate::policy::types::{Flow, IpProto, PortRange, ProtoMatch, Reason, Verdict};
use crate::policy::Policy;

const PLAN: &str = include_str!("../../../tests/data/terraform/plan.json");

fn plan() -> Import {
    let v: Value = serde_json::from_str(PLAN).unwrap();
    assert!(is_terraform(&v));
    import_value(&v, "plan.json").unwrap_or_else(|e| panic!("{e}"))
}

fn group<'m>(m: &'m Model, name: &str) -> &'m SecurityGroup {
    m.security_groups
        .iter()
        .find(|g| g.name == name)
        .unwrap_or_else(|| panic!("no group {name}"))
}

fn remotes(rules: &[crate::policy::model::Rule]) -> Vec<String> {
    rules
        .iter()
        .map(|r| {
            assert_eq!(r.remote.len(), 1, "one source per rule");
            r.remote[0].value.to_string()
        })
        .collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn new_groups_reference_each_other_before_either_has_an_id() {
    let m = plan().model;
    let names: Vec<&str> = m.security_groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["sg-tf-alb", "sg-tf-app", "sg-tf-net.db"]);
    let app = group(&m, "sg-tf-app");
    assert_eq!(app.vpc.as_ref().unwrap().value, "vpc-tf-main");
    assert_eq!(app.title.as_deref(), Some("app"));
    // Inline blocks (one matched to its configuration block by its known
    // ports, despite the set's order), then the separate rule resource.
    assert_eq!(
        remotes(&app.ingress),
        ["sg-tf-alb", "10.0.0.0/16", "203.0.113.0/24"]
    );
    let http = &app.ingress[0];
    assert_eq!(http.proto, ProtoMatch::Is(IpProto::TCP));
    assert_eq!(
        http.ports.as_ref().unwrap().value,
        [PortRange { lo: 80, hi: 80 }]
    );
    assert_eq!(http.description.as_deref(), Some("from ALB"));
    let ping = &app.ingress[1];
    assert_eq!(ping.proto, ProtoMatch::Is(IpProto::ICMP));
    assert_eq!(ping.icmp_type.as_ref().unwrap().value, 8);
    assert!(ping.icmp_code.is_none(), "to_port -1 is any code");
    assert!(ping.ports.is_none());
    // The separate egress rule resource lands in the group.
    assert_eq!(remotes(&app.egress), ["0.0.0.0/0"]);
    assert_eq!(app.egress[0].proto, ProtoMatch::Any);
}

#[test]
fn a_group_without_egress_blocks_has_no_egress_rules() {
    // Terraform removes AWS's default allow-all egress rule.
    let m = plan().model;
    assert!(group(&m, "sg-tf-net.db").egress.is_empty());
}

#[test]
fn a_module_group_resolves_references_through_the_module_call() {
    let m = plan().model;
    let db = group(&m, "sg-tf-net.db");
    assert_eq!(remotes(&db.ingress), ["sg-tf-app"]);
    assert_eq!(
        db.ingress[0].ports.as_ref().unwrap().value,
        [PortRange { lo: 5432, hi: 5432 }]
    );
    assert_eq!(db.vpc.as_ref().unwrap().value, "vpc-tf-main");
}

#[test]
fn instances_and_interfaces_are_placed() {
    let i = plan();
    let m = &i.model;
    let names: Vec<&str> = m.interfaces.iter().map(|x| x.name.as_str()).collect();
    assert_eq!(names, ["eni-tf-alb_node", "eni-tf-web"]);
    let web = &m.interfaces[1];
    assert_eq!(web.place.instance.as_deref(), Some("i-tf-web"));
    assert_eq!(web.place.title.as_deref(), Some("web"));
    assert_eq!(web.place.subnet.as_ref().unwrap().value, "subnet-tf-app");
    assert_eq!(web.place.tracking.as_ref().unwrap().value, "aws");
    assert_eq!(web.security_groups[0].value, "sg-tf-app");
    assert_eq!(web.addresses.value[0].value.to_string(), "10.0.1.10/32");
    assert_eq!(m.subnets[0].vpc.value, "vpc-tf-main");
    assert_eq!(m.vpcs[0].cidrs[0].value.to_string(), "10.0.0.0/16");
}

#[test]
fn what_is_not_represented_is_listed() {
    let i = plan();
    let why = |id: &str| -> String {
        i.skipped
            .iter()
            .filter(|s| s.id == id)
            .map(|s| s.why.clone())
            .collect::<Vec<_>>()
            .join("; ")
    };
    assert_eq!(
        why("aws_instance.worker"),
        "private address unknown until apply; set private_ip to check it"
    );
    assert_eq!(why("aws_security_group.legacy"), "deleted by this plan");
    assert!(why("aws_s3_bucket.logs").contains("not imported"));
    assert!(why("data.aws_vpc.shared").contains("data source"));
    assert_eq!(
        why("data.aws_caller_identity.me"),
        "",
        "not a network resource"
    );
    assert!(!i
        .model
        .security_groups
        .iter()
        .any(|g| g.name == "sg-0legacy"));
    assert_eq!(i.skipped.len(), 4, "{:#?}", i.skipped);
}

#[test]
fn the_alb_reaches_the_app_before_anything_is_applied() {
    let m = plan().model;
    let p = Policy::compile(&m).unwrap_or_else(|e| panic!("{e}"));
    let flow = |dport| Flow::ports(ip("10.0.1.5"), ip("10.0.1.10"), IpProto::TCP, 40000, dport);
    let e = p.evaluate(&flow(80));
    assert_eq!((e.verdict, e.reason), (Verdict::Allow, Reason::Rule));
    assert_eq!(
        p.rule_name(e.rule().unwrap()).to_string(),
        "sg-tf-app/ingress/0"
    );
    let e = p.evaluate(&flow(22));
    assert_eq!((e.verdict, e.reason), (Verdict::Deny, Reason::NoRule));
    // The ALB's egress allows only the VPC.
    let out = Flow::ports(ip("10.0.1.5"), ip("192.0.2.1"), IpProto::TCP, 40000, 443);
    assert_eq!(p.evaluate(&out).verdict, Verdict::Deny);
}

fn state(resources: Value) -> Value {
    json!({
        "format_version": "1.0",
        "terraform_version": "1.7.5",
        "values": { "root_module": { "resources": resources } }
    })
}

fn managed(address: &str, values: Value) -> Value {
    let (kind, name) = address.split_once('.').unwrap();
    json!({"address": address, "mode": "managed", "type": kind, "name": name,
           "provider_name": "registry.terraform.io/hashicorp/aws", "schema_version": 1,
           "values": values, "sensitive_values": {}})
}

#[test]
fn a_state_uses_known_ids() {
    let v = state(json!([
        managed(
            "aws_security_group.web",
            json!({
                "id": "sg-0a1", "name": "web", "vpc_id": "vpc-0a1", "description": "web",
                "ingress": [{"from_port": 443, "to_port": 443, "protocol": "tcp",
                    "cidr_blocks": ["0.0.0.0/0", "10.0.0.0/8"], "ipv6_cidr_blocks": ["::/0"],
                    "prefix_list_ids": ["pl-0office"], "security_groups": ["sg-0ext"],
                    "self": true, "description": "https"}],
                "egress": []
            })
        ),
        managed(
            "aws_vpc_security_group_ingress_rule.dns",
            json!({
                "id": "sgr-0123", "security_group_rule_id": "sgr-0123", "security_group_id": "sg-0a1",
                "ip_protocol": "udp", "from_port": 53, "to_port": 53, "cidr_ipv4": "10.0.0.0/8"
            })
        ),
        managed(
            "aws_instance.web",
            json!({
                "id": "i-0a1", "private_ip": "10.0.0.5", "primary_network_interface_id": "eni-0a1",
                "vpc_security_group_ids": ["sg-0a1"], "subnet_id": "subnet-0a1",
                "public_ip": "198.51.100.7", "tags": {"Name": "web"}, "ipv6_addresses": []
            })
        ),
    ]));
    assert!(is_terraform(&v));
    let i = import_value(&v, "state.json").unwrap();
    let g = &i.model.security_groups[0];
    assert_eq!(g.name, "sg-0a1");
    assert_eq!(
        remotes(&g.ingress),
        [
            "0.0.0.0/0",
            "10.0.0.0/8",
            "::/0",
            "pl-0office",
            "sg-0ext",
            "sg-0a1",
            "10.0.0.0/8"
        ]
    );
    assert_eq!(g.ingress[6].id.as_deref(), Some("sgr-0123"));
    assert!(g.egress.is_empty());
    assert_eq!(i.model.external_groups[0].name, "sg-0ext");
    assert!(i.model.prefix_lists[0].incomplete);
    let eni = &i.model.interfaces[0];
    assert_eq!(eni.name, "eni-0a1");
    assert_eq!(eni.place.instance.as_deref(), Some("i-0a1"));
    assert_eq!(
        eni.place.public_addresses[0].value.to_string(),
        "198.51.100.7/32"
    );
    assert!(i.skipped.is_empty(), "{:?}", i.skipped);
    assert!(
        matches!(&i.model.security_groups[0].ingress[4].remote[0].value, Remote::Sg(s) if s == "sg-0ext")
    );
}

#[test]
fn a_wrong_shape_names_file_and_path() {
    let v = state(json!([managed(
        "aws_security_group.web",
        json!({
            "id": "sg-0a1", "ingress": [{"from_port": "x", "to_port": 1, "protocol": "tcp"}]
        })
    )]));
    let e = import_value(&v, "state.json").unwrap_err().to_string();
    assert_eq!(
        e,
        "state.json:$.values.root_module.resources[0].values.ingress[0].from_port: expected an integer, found \"x\""
    );
    let v = json!({"format_version": "1.0", "values": {"root_module": {"resources": [{"address": 3}]}}});
    assert!(import_value(&v, "s.json")
        .unwrap_err()
        .to_string()
        .contains("$.values.root_module.resources[0].address"));
    assert!(!is_terraform(&json!({"SecurityGroups": []})));
}

#[test]
fn nacls_and_load_balancers() {
    let v = state(json!([
        managed(
            "aws_vpc.main",
            json!({"id": "vpc-0a1", "cidr_block": "10.0.0.0/16"})
        ),
        managed(
            "aws_subnet.a",
            json!({"id": "subnet-0a1", "vpc_id": "vpc-0a1", "cidr_block": "10.0.1.0/24", "availability_zone": "ap-northeast-1a"})
        ),
        managed(
            "aws_network_acl.main",
            json!({"id": "acl-0a1", "vpc_id": "vpc-0a1", "subnet_ids": ["subnet-0a1"],
            "ingress": [{"rule_no": 100, "protocol": "tcp", "from_port": 443, "to_port": 443, "cidr_block": "0.0.0.0/0", "ipv6_cidr_block": "", "action": "allow", "icmp_type": 0, "icmp_code": 0}],
            "egress": [{"rule_no": 100, "protocol": "-1", "from_port": 0, "to_port": 0, "cidr_block": "0.0.0.0/0", "ipv6_cidr_block": "", "action": "allow", "icmp_type": 0, "icmp_code": 0}]})
        ),
        managed(
            "aws_network_acl_rule.deny_ssh",
            json!({"id": "nacl-1", "network_acl_id": "acl-0a1", "rule_number": 50, "egress": false,
            "protocol": "6", "rule_action": "deny", "cidr_block": "0.0.0.0/0", "from_port": 22, "to_port": 22})
        ),
        managed(
            "aws_lb.nlb",
            json!({"id": "arn:aws:elasticloadbalancing:ap-northeast-1:111122223333:loadbalancer/net/orders/abc",
            "arn": "arn:aws:elasticloadbalancing:ap-northeast-1:111122223333:loadbalancer/net/orders/abc",
            "name": "orders", "load_balancer_type": "network", "internal": true, "subnets": ["subnet-0a1"],
            "security_groups": [], "enable_cross_zone_load_balancing": false,
            "enforce_security_group_inbound_rules_on_private_link_traffic": "off", "dns_name": "orders.elb.example"})
        ),
        managed(
            "aws_lb_target_group.orders",
            json!({"id": "arn:tg", "arn": "arn:tg", "name": "tg-orders", "port": 80, "protocol": "TCP",
            "vpc_id": "vpc-0a1", "target_type": "instance", "preserve_client_ip": "false", "health_check": [{"port": "traffic-port"}]})
        ),
        managed(
            "aws_lb_listener.http",
            json!({"id": "arn:l", "load_balancer_arn": "arn:aws:elasticloadbalancing:ap-northeast-1:111122223333:loadbalancer/net/orders/abc",
            "port": 80, "protocol": "TCP", "default_action": [{"type": "forward", "target_group_arn": "arn:tg"}]})
        ),
        managed(
            "aws_lb_target_group_attachment.web",
            json!({"id": "x", "target_group_arn": "arn:tg", "target_id": "i-0a1", "port": 80})
        ),
    ]));
    let m = import_value(&v, "state.json").unwrap().model;
    let acl = &m.network_acls[0];
    assert_eq!(
        acl.ingress.iter().map(|r| r.rule.value).collect::<Vec<_>>(),
        [50, 100]
    );
    assert_eq!(acl.ingress[0].action, crate::policy::types::Action::Deny);
    assert!(acl.egress[0].ports.is_none());
    assert_eq!(m.subnets[0].network_acl.as_ref().unwrap().value, "acl-0a1");
    let lb = &m.load_balancers[0];
    assert_eq!(lb.name, "orders");
    assert_eq!(lb.scheme.as_ref().unwrap().value, "internal");
    assert_eq!(lb.zones, ["ap-northeast-1a"]);
    assert_eq!(lb.enforce_inbound_rules_on_privatelink, Some(false));
    assert_eq!(
        lb.listeners[0].target_group.as_ref().unwrap().value,
        "tg-orders"
    );
    let tg = &m.target_groups[0];
    assert_eq!(tg.proto.as_ref().unwrap().value, "tcp");
    assert_eq!(tg.preserve_client_ip, Some(false));
    assert_eq!(tg.health_check_port.as_deref(), Some("traffic-port"));
    assert_eq!(tg.targets[0].id.value, "i-0a1");
}
