//! One test per Alibaba trap of SPEC §7, each on responses shaped as the
//! `aliyun` CLI prints them (the API reference's fields, `""` for unset),
//! checked on the model and, where it is about verdicts, through
//! `Policy::compile` and `Policy::evaluate`.

use serde_json::{json, Value};

use super::*;
use crate::policy::model::{Remote, Rule};
use crate::policy::types::{Action, Flow, IpProto, PortRange, ProtoMatch, Reason, Verdict};
use crate::policy::Policy;

fn run(docs: Vec<(&str, Value)>) -> Import {
    let docs: Vec<(String, Value)> = docs.into_iter().map(|(f, v)| (f.into(), v)).collect();
    import_values(&docs).unwrap_or_else(|e| panic!("{e}"))
}

fn fails(docs: Vec<(&str, Value)>) -> String {
    let docs: Vec<(String, Value)> = docs.into_iter().map(|(f, v)| (f.into(), v)).collect();
    import_values(&docs).expect_err("should fail").to_string()
}

/// A permission with Alibaba's empty strings for every field not given.
fn perm(direction: &str, fields: Value) -> Value {
    let mut p = json!({
        "Direction": direction, "IpProtocol": "TCP", "PortRange": "-1/-1",
        "SourcePortRange": "", "SourceCidrIp": "", "Ipv6SourceCidrIp": "",
        "SourceGroupId": "", "SourceGroupOwnerAccount": "", "SourcePrefixListId": "",
        "DestCidrIp": "", "Ipv6DestCidrIp": "", "DestGroupId": "",
        "DestGroupOwnerAccount": "", "DestPrefixListId": "", "Policy": "Accept",
        "Priority": "1", "NicType": "intranet", "Description": "",
        "SecurityGroupRuleId": "", "CreateTime": "2024-05-20T08:00:00Z"
    });
    for (k, v) in fields.as_object().unwrap() {
        p[k] = v.clone();
    }
    p
}

/// `DescribeSecurityGroupAttribute` of `id`.
fn attribute(id: &str, inner: &str, perms: Vec<Value>) -> Value {
    json!({
        "RequestId": "F1D2F3A4-0000-0000-0000-000000000000", "RegionId": "cn-hangzhou",
        "SecurityGroupId": id, "SecurityGroupName": "", "Description": "",
        "VpcId": "vpc-bp1test", "InnerAccessPolicy": inner,
        "Permissions": {"Permission": perms}
    })
}

/// `DescribeSecurityGroups` listing `(id, type)`.
fn groups(list: &[(&str, &str)]) -> Value {
    let g: Vec<Value> = list
        .iter()
        .map(|(id, t)| {
            json!({"SecurityGroupId": id, "SecurityGroupName": format!("{id}-name"),
                   "Description": "", "VpcId": "vpc-bp1test", "SecurityGroupType": t,
                   "Tags": {"Tag": []}})
        })
        .collect();
    json!({"RequestId": "X", "TotalCount": g.len(), "SecurityGroups": {"SecurityGroup": g}})
}

/// `DescribeNetworkInterfaces`: `(eni, address, groups)`.
fn enis(list: &[(&str, &str, &[&str])]) -> Value {
    let e: Vec<Value> = list
        .iter()
        .map(|(id, ip, sgs)| {
            json!({"NetworkInterfaceId": id, "Type": "Primary", "VpcId": "vpc-bp1test",
                   "VSwitchId": "", "ZoneId": "cn-hangzhou-h", "PrivateIpAddress": ip,
                   "InstanceId": "", "SecurityGroupIds": {"SecurityGroupId": sgs},
                   "PrivateIpSets": {"PrivateIpSet": [{"PrivateIpAddress": ip, "Primary": true}]},
                   "Ipv6Sets": {"Ipv6Set": []}, "Tags": {"Tag": []}})
        })
        .collect();
    json!({"RequestId": "Y", "NetworkInterfaceSets": {"NetworkInterfaceSet": e}})
}

fn rules_of<'a>(i: &'a Import, sg: &str, ingress: bool) -> &'a [Rule] {
    let g = i
        .model
        .security_groups
        .iter()
        .find(|g| g.name == sg)
        .unwrap_or_else(|| panic!("no {sg}"));
    if ingress {
        &g.ingress
    } else {
        &g.egress
    }
}

fn remote(r: &Rule) -> String {
    r.remote[0].value.to_string()
}

/// An ACL entry's number, action and ports.
type AclLine = (i64, Action, Option<(u16, u16)>);

fn ports(p: &Option<At<Vec<PortRange>>>) -> Option<(u16, u16)> {
    p.as_ref().map(|p| (p.value[0].lo, p.value[0].hi))
}

fn verdict(p: &Policy, f: &Flow) -> (Verdict, Reason, Option<String>) {
    let e = p.evaluate(f);
    (
        e.verdict,
        e.reason,
        e.rule().map(|r| p.rule_name(r).to_string()),
    )
}

fn tcp(src: &str, dst: &str, sport: u16, dport: u16) -> Flow {
    Flow::ports(
        src.parse().unwrap(),
        dst.parse().unwrap(),
        IpProto::TCP,
        sport,
        dport,
    )
}

/// A client (sg-client, egress open) at 10.0.0.1 and a server at 10.0.0.2
/// with `sg-srv`'s permissions.
fn client_server(server_perms: Vec<Value>) -> Policy {
    let i = run(vec![
        (
            "groups.json",
            groups(&[("sg-client", "normal"), ("sg-srv", "normal")]),
        ),
        ("client.json", attribute("sg-client", "Drop", vec![])),
        ("srv.json", attribute("sg-srv", "Drop", server_perms)),
        (
            "enis.json",
            enis(&[
                ("eni-client", "10.0.0.1", &["sg-client"]),
                ("eni-srv", "10.0.0.2", &["sg-srv"]),
            ]),
        ),
    ]);
    Policy::compile(&i.model).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn recognises_alibaba_and_not_aws_or_azure() {
    assert!(recognises(&groups(&[("sg-a", "normal")])));
    assert!(recognises(&attribute("sg-a", "Accept", vec![])));
    assert!(recognises(&enis(&[])));
    assert!(recognises(&json!({"Vpcs": {"Vpc": []}, "RequestId": "r"})));
    assert!(recognises(
        &json!({"NetworkAclAttribute": {"NetworkAclId": "nacl-1"}})
    ));
    // AWS's describe-security-groups and describe-vpcs, Azure's nsg list.
    assert!(!recognises(
        &json!({"SecurityGroups": [{"GroupId": "sg-1"}]})
    ));
    assert!(!recognises(&json!({"Vpcs": [{"VpcId": "vpc-1"}]})));
    assert!(!recognises(&json!([{"name": "nsg", "securityRules": []}])));
    assert!(!recognises(&json!({"properties": {"securityRules": []}})));
}

#[test]
fn priority_decides_and_drop_wins_a_tie() {
    let p = client_server(vec![
        perm(
            "ingress",
            json!({"PortRange": "22/22", "SourceCidrIp": "10.0.0.0/8", "Priority": "5"}),
        ),
        perm(
            "ingress",
            json!({"PortRange": "1/1024", "SourceCidrIp": "10.0.0.1", "Policy": "Drop", "Priority": "5"}),
        ),
        perm(
            "ingress",
            json!({"PortRange": "80/80", "SourceCidrIp": "10.0.0.0/8", "Priority": "10"}),
        ),
        perm(
            "ingress",
            json!({"PortRange": "80/80", "SourceCidrIp": "10.0.0.1/32", "Policy": "Drop", "Priority": "20"}),
        ),
    ]);
    // 22 at priority 5: the Drop beats the Accept at the same priority.
    assert_eq!(
        verdict(&p, &tcp("10.0.0.1", "10.0.0.2", 40000, 22)),
        (Verdict::Deny, Reason::Rule, Some("sg-srv/ingress/1".into()))
    );
    // 80: the Drop at 5 covers it too.
    assert_eq!(
        verdict(&p, &tcp("10.0.0.1", "10.0.0.2", 40000, 80)).0,
        Verdict::Deny
    );
    // 2000: no rule names it.
    assert_eq!(
        verdict(&p, &tcp("10.0.0.1", "10.0.0.2", 40000, 2000)),
        (Verdict::Deny, Reason::NoRule, None)
    );
}

#[test]
fn a_smaller_priority_accept_beats_a_larger_priority_drop() {
    let p = client_server(vec![
        perm(
            "ingress",
            json!({"PortRange": "80/80", "SourceCidrIp": "0.0.0.0/0", "Policy": "Drop", "Priority": "100"}),
        ),
        perm(
            "ingress",
            json!({"PortRange": "80/80", "SourceCidrIp": "10.0.0.1/32", "Priority": "1"}),
        ),
    ]);
    assert_eq!(
        verdict(&p, &tcp("10.0.0.1", "10.0.0.2", 40000, 80)),
        (
            Verdict::Allow,
            Reason::Rule,
            Some("sg-srv/ingress/1".into())
        )
    );
}

#[test]
fn port_range_forms() {
    let i = run(vec![(
        "a.json",
        attribute(
            "sg-a",
            "Accept",
            vec![
                perm(
                    "ingress",
                    json!({"PortRange": "22/22", "SourceCidrIp": "1.1.1.1"}),
                ),
                perm(
                    "ingress",
                    json!({"PortRange": "8000/8080", "SourceCidrIp": "1.1.1.1"}),
                ),
                perm(
                    "ingress",
                    json!({"PortRange": "-1/-1", "SourceCidrIp": "1.1.1.1"}),
                ),
                perm(
                    "ingress",
                    json!({"PortRange": "1/65535", "SourceCidrIp": "1.1.1.1"}),
                ),
                perm(
                    "ingress",
                    json!({"IpProtocol": "ICMP", "PortRange": "-1/-1", "SourceCidrIp": "1.1.1.1"}),
                ),
                perm(
                    "ingress",
                    json!({"IpProtocol": "ALL", "PortRange": "-1/-1", "SourceCidrIp": "1.1.1.1"}),
                ),
                perm(
                    "ingress",
                    json!({"IpProtocol": "GRE", "PortRange": "-1/-1", "SourceCidrIp": "1.1.1.1"}),
                ),
                // A protocol without ports that names ports: not widened.
                perm(
                    "ingress",
                    json!({"IpProtocol": "ICMP", "PortRange": "22/22", "SourceCidrIp": "1.1.1.1"}),
                ),
            ],
        ),
    )]);
    let r = rules_of(&i, "sg-a", true);
    let got: Vec<(ProtoMatch, Option<(u16, u16)>)> =
        r.iter().map(|r| (r.proto, ports(&r.ports))).collect();
    assert_eq!(
        got,
        vec![
            (ProtoMatch::Is(IpProto::TCP), Some((22, 22))),
            (ProtoMatch::Is(IpProto::TCP), Some((8000, 8080))),
            (ProtoMatch::Is(IpProto::TCP), None),
            (ProtoMatch::Is(IpProto::TCP), Some((1, 65535))),
            (ProtoMatch::Is(IpProto::ICMP), None),
            (ProtoMatch::Any, None),
            (ProtoMatch::Is(IpProto(47)), None),
        ]
    );
    assert_eq!(i.skipped.len(), 1, "{:?}", i.skipped);
    assert!(i.skipped[0].why.contains("ports on protocol `ICMP`"));
    let e = fails(vec![(
        "b.json",
        attribute(
            "sg-b",
            "Accept",
            vec![perm(
                "ingress",
                json!({"PortRange": "80-x", "SourceCidrIp": "1.1.1.1"}),
            )],
        ),
    )]);
    assert_eq!(
        e,
        "b.json:$.Permissions.Permission[0].PortRange: expected a port range such as 22/22, \
         1/65535 or -1/-1, found `80-x`"
    );
}

#[test]
fn empty_strings_are_unset_and_each_set_source_is_a_rule() {
    let i = run(vec![(
        "a.json",
        attribute(
            "sg-a",
            "Accept",
            vec![perm(
                "ingress",
                json!({"PortRange": "443/443", "SourceCidrIp": "203.0.113.0/24",
                       "Ipv6SourceCidrIp": "2001:db8::/32", "SourceGroupId": "sg-b",
                       "SourcePrefixListId": "pl-office", "Description": "web",
                       "SecurityGroupRuleId": "sgr-bp1abc", "Priority": ""}),
            )],
        ),
    )]);
    let r = rules_of(&i, "sg-a", true);
    let got: Vec<String> = r.iter().map(remote).collect();
    assert_eq!(
        got,
        ["203.0.113.0/24", "2001:db8::/32", "sg-b", "pl-office"]
    );
    for rule in r {
        assert_eq!(rule.description.as_deref(), Some("web"));
        assert_eq!(rule.id.as_deref(), Some("sgr-bp1abc"));
        assert_eq!(rule.priority.as_ref().unwrap().value, 1);
        assert!(rule.local.is_none() && rule.source_ports.is_none());
    }
    // "" for the policy, the description, the rule id: defaults.
    let i = run(vec![(
        "a.json",
        attribute(
            "sg-a",
            "",
            vec![perm(
                "ingress",
                json!({"SourceCidrIp": "1.1.1.1", "Policy": ""}),
            )],
        ),
    )]);
    let r = &rules_of(&i, "sg-a", true)[0];
    assert_eq!(r.action, Action::Allow);
    assert!(r.description.is_none() && r.id.is_none());
}

#[test]
fn another_accounts_group_is_kept_as_an_external_group() {
    let i = run(vec![
        ("groups.json", groups(&[("sg-a", "normal")])),
        (
            "a.json",
            attribute(
                "sg-a",
                "Accept",
                vec![
                    perm(
                        "ingress",
                        json!({"PortRange": "80/80", "SourceGroupId": "sg-bp1other",
                               "SourceGroupOwnerAccount": "1234567890123456"}),
                    ),
                    // Its own group: not external.
                    perm("ingress", json!({"SourceGroupId": "sg-a"})),
                ],
            ),
        ),
    ]);
    assert_eq!(remote(&rules_of(&i, "sg-a", true)[0]), "sg-bp1other");
    let ext = &i.model.external_groups;
    assert_eq!(ext.len(), 1);
    assert_eq!(ext[0].name, "sg-bp1other");
    assert_eq!(ext[0].account.as_deref(), Some("1234567890123456"));
    assert_eq!(ext[0].status.as_deref(), Some("missing"));
    Policy::compile(&i.model).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn prefix_lists_are_referenced_and_listed_incomplete() {
    let i = run(vec![(
        "a.json",
        attribute(
            "sg-a",
            "Accept",
            vec![
                perm(
                    "ingress",
                    json!({"PortRange": "22/22", "SourcePrefixListId": "pl-bp1office"}),
                ),
                perm("egress", json!({"DestPrefixListId": "pl-bp1svc"})),
            ],
        ),
    )]);
    assert_eq!(remote(&rules_of(&i, "sg-a", true)[0]), "pl-bp1office");
    assert!(matches!(
        &rules_of(&i, "sg-a", false)[0].remote[0].value,
        Remote::PrefixList(p) if p == "pl-bp1svc"
    ));
    let names: Vec<(&str, bool)> = i
        .model
        .prefix_lists
        .iter()
        .map(|p| (p.name.as_str(), p.incomplete))
        .collect();
    assert_eq!(names, [("pl-bp1office", true), ("pl-bp1svc", true)]);
    Policy::compile(&i.model).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn dest_cidr_ip_of_an_inbound_rule_is_the_local_address() {
    let p = client_server(vec![perm(
        "ingress",
        json!({"PortRange": "80/80", "SourceCidrIp": "10.0.0.0/8", "DestCidrIp": "10.0.0.3/32"}),
    )]);
    // The server's address is 10.0.0.2, not in DestCidrIp: no match.
    assert_eq!(
        verdict(&p, &tcp("10.0.0.1", "10.0.0.2", 40000, 80)),
        (Verdict::Deny, Reason::NoRule, None)
    );
    let p = client_server(vec![perm(
        "ingress",
        json!({"PortRange": "80/80", "SourceCidrIp": "10.0.0.0/8", "DestCidrIp": "10.0.0.2"}),
    )]);
    assert_eq!(
        verdict(&p, &tcp("10.0.0.1", "10.0.0.2", 40000, 80)).0,
        Verdict::Allow
    );
    // On an outbound rule the local end is SourceCidrIp.
    let i = run(vec![(
        "a.json",
        attribute(
            "sg-a",
            "Accept",
            vec![perm(
                "egress",
                json!({"DestCidrIp": "0.0.0.0/0", "SourceCidrIp": "10.0.0.0/24"}),
            )],
        ),
    )]);
    let r = &rules_of(&i, "sg-a", false)[0];
    assert_eq!(remote(r), "0.0.0.0/0");
    assert_eq!(r.local.as_ref().unwrap().value.to_string(), "10.0.0.0/24");
}

#[test]
fn source_port_range_is_the_packets_source_port() {
    let p = client_server(vec![perm(
        "ingress",
        json!({"PortRange": "80/80", "SourceCidrIp": "10.0.0.0/8", "SourcePortRange": "1024/2048"}),
    )]);
    assert_eq!(
        verdict(&p, &tcp("10.0.0.1", "10.0.0.2", 1500, 80)).0,
        Verdict::Allow
    );
    assert_eq!(
        verdict(&p, &tcp("10.0.0.1", "10.0.0.2", 40000, 80)),
        (Verdict::Deny, Reason::NoRule, None)
    );
}

#[test]
fn ipv6_sources_and_destinations() {
    let i = run(vec![(
        "a.json",
        attribute(
            "sg-a",
            "Accept",
            vec![
                perm(
                    "ingress",
                    json!({"IpProtocol": "ICMPv6", "Ipv6SourceCidrIp": "2001:db8:1::/48",
                           "Ipv6DestCidrIp": "2001:db8:2::10"}),
                ),
                perm(
                    "egress",
                    json!({"Ipv6DestCidrIp": "::/0", "IpProtocol": "ALL"}),
                ),
            ],
        ),
    )]);
    let r = &rules_of(&i, "sg-a", true)[0];
    assert_eq!(r.proto, ProtoMatch::Is(IpProto::ICMPV6));
    assert_eq!(remote(r), "2001:db8:1::/48");
    assert_eq!(
        r.local.as_ref().unwrap().value.to_string(),
        "2001:db8:2::10/128"
    );
    assert_eq!(remote(&rules_of(&i, "sg-a", false)[0]), "::/0");
}

#[test]
fn inner_access_policy_of_basic_groups() {
    let i = run(vec![
        (
            "groups.json",
            groups(&[("sg-open", "normal"), ("sg-closed", "normal")]),
        ),
        ("open.json", attribute("sg-open", "Accept", vec![])),
        ("closed.json", attribute("sg-closed", "Drop", vec![])),
        (
            "enis.json",
            enis(&[
                ("eni-1", "10.0.0.1", &["sg-open"]),
                ("eni-2", "10.0.0.2", &["sg-open"]),
                ("eni-3", "10.0.1.1", &["sg-closed"]),
                ("eni-4", "10.0.1.2", &["sg-closed"]),
            ]),
        ),
    ]);
    let p = Policy::compile(&i.model).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        verdict(&p, &tcp("10.0.0.1", "10.0.0.2", 40000, 22)),
        (
            Verdict::Allow,
            Reason::Rule,
            Some("sg-open/intra_group".into())
        )
    );
    assert_eq!(
        verdict(&p, &tcp("10.0.1.1", "10.0.1.2", 40000, 22)),
        (Verdict::Deny, Reason::NoRule, None)
    );
}

#[test]
fn enterprise_groups_are_isolated_and_deny_egress_without_rules() {
    // An enterprise group answers InnerAccessPolicy Accept in some
    // responses; its members still do not reach each other. Created
    // without rules, it has no egress rules: everything out is a no-rule
    // deny. A basic group without outbound rules allows all outbound
    // traffic (Alibaba's implicit rule).
    let i = run(vec![
        (
            "groups.json",
            groups(&[("sg-ent", "enterprise"), ("sg-basic", "normal")]),
        ),
        ("ent.json", attribute("sg-ent", "Accept", vec![])),
        ("basic.json", attribute("sg-basic", "Drop", vec![])),
        (
            "enis.json",
            enis(&[
                ("eni-1", "10.0.0.1", &["sg-ent"]),
                ("eni-2", "10.0.0.2", &["sg-ent"]),
                ("eni-3", "10.0.1.1", &["sg-basic"]),
            ]),
        ),
    ]);
    let ent = rules_of(&i, "sg-ent", false);
    assert!(ent.is_empty());
    assert_eq!(rules_of(&i, "sg-basic", false).len(), 2);
    let p = Policy::compile(&i.model).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        verdict(&p, &tcp("10.0.0.1", "10.0.0.2", 40000, 22)),
        (Verdict::Deny, Reason::NoRule, None)
    );
    assert_eq!(
        verdict(&p, &tcp("10.0.0.1", "8.8.8.8", 40000, 53)),
        (Verdict::Deny, Reason::NoRule, None)
    );
    assert_eq!(
        verdict(&p, &tcp("10.0.1.1", "8.8.8.8", 40000, 53)),
        (
            Verdict::Allow,
            Reason::Rule,
            Some("sg-basic/egress/0".into())
        )
    );
}

#[test]
fn masked_documentation_values_are_errors_with_their_path() {
    let e = fails(vec![(
        "doc.json",
        attribute(
            "sg-a",
            "Accept",
            vec![perm("ingress", json!({"SourceCidrIp": "192.168.**.**"}))],
        ),
    )]);
    assert_eq!(
        e,
        "doc.json:$.Permissions.Permission[0].SourceCidrIp: `192.168.**.**` is a masked value \
         from documentation, not a real one: use the API's own response"
    );
    let e = fails(vec![(
        "doc.json",
        groups(&[("sg-bp1fg655nh68xyz9****", "normal")]),
    )]);
    assert!(
        e.starts_with("doc.json:$.SecurityGroups.SecurityGroup[0].SecurityGroupId: `sg-bp1fg655nh68xyz9****` is a masked value"),
        "{e}"
    );
    let e = fails(vec![(
        "doc.json",
        enis(&[("eni-1", "192.168.XX.XX", &["sg-a"])]),
    )]);
    assert!(e.contains("NetworkInterfaceSet[0].PrivateIpAddress"), "{e}");
}

#[test]
fn interfaces_from_enis_and_instances() {
    let instances = json!({"RequestId": "Z", "Instances": {"Instance": [
        {"InstanceId": "i-bp1a", "InstanceName": "web-1", "ZoneId": "cn-hangzhou-h",
         "VpcAttributes": {"VpcId": "vpc-bp1test", "VSwitchId": "vsw-bp1a",
                           "PrivateIpAddress": {"IpAddress": ["10.0.0.10"]}, "NatIpAddress": ""},
         "SecurityGroupIds": {"SecurityGroupId": ["sg-a"]},
         "NetworkInterfaces": {"NetworkInterface": [
             {"NetworkInterfaceId": "eni-bp1a", "Type": "Primary", "PrimaryIpAddress": "10.0.0.10"}]},
         "PublicIpAddress": {"IpAddress": ["47.1.2.3"]}, "EipAddress": {"IpAddress": ""}},
        {"InstanceId": "i-bp1b", "InstanceName": "listed", "ZoneId": "cn-hangzhou-h",
         "VpcAttributes": {"VpcId": "vpc-bp1test", "VSwitchId": "vsw-bp1a",
                           "PrivateIpAddress": {"IpAddress": ["10.0.0.20"]}},
         "SecurityGroupIds": {"SecurityGroupId": ["sg-a"]},
         "NetworkInterfaces": {"NetworkInterface": [
             {"NetworkInterfaceId": "eni-bp1b", "Type": "Primary"}]}},
        {"InstanceId": "i-bp1c", "InstanceName": "old", "ZoneId": "cn-hangzhou-h",
         "VpcAttributes": {"VpcId": "vpc-bp1test", "VSwitchId": "vsw-bp1a",
                           "PrivateIpAddress": {"IpAddress": ["10.0.0.30"]}},
         "SecurityGroupIds": {"SecurityGroupId": ["sg-a"]}}
    ]}});
    let mut e = enis(&[("eni-bp1b", "10.0.0.20", &["sg-a"])]);
    e["NetworkInterfaceSets"]["NetworkInterfaceSet"][0]["InstanceId"] = json!("i-bp1b");
    e["NetworkInterfaceSets"]["NetworkInterfaceSet"][0]["Ipv6Sets"] =
        json!({"Ipv6Set": [{"Ipv6Address": "2408:4000::20"}]});
    let i = run(vec![
        ("enis.json", e),
        ("instances.json", instances),
        ("a.json", attribute("sg-a", "Accept", vec![])),
    ]);
    let got: Vec<(&str, Vec<String>, Option<&str>)> = i
        .model
        .interfaces
        .iter()
        .map(|x| {
            (
                x.name.as_str(),
                x.addresses
                    .value
                    .iter()
                    .map(|a| a.value.to_string())
                    .collect(),
                x.place.title.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("eni-bp1a", vec!["10.0.0.10/32".into()], Some("web-1")),
            (
                "eni-bp1b",
                vec!["10.0.0.20/32".into(), "2408:4000::20/128".into()],
                Some("listed")
            ),
            ("i-bp1c", vec!["10.0.0.30/32".into()], Some("old")),
        ]
    );
    let a = &i.model.interfaces[0];
    assert_eq!(a.place.public_addresses[0].value.to_string(), "47.1.2.3/32");
    assert_eq!(a.place.instance.as_deref(), Some("i-bp1a"));
    Policy::compile(&i.model).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn vpcs_vswitches_and_network_acls() {
    let vpcs = json!({"RequestId": "A", "Vpcs": {"Vpc": [{
        "VpcId": "vpc-bp1test", "VpcName": "prod", "CidrBlock": "192.168.0.0/16",
        "Ipv6CidrBlock": "", "SecondaryCidrBlocks": {"SecondaryCidrBlock": ["172.16.0.0/12"]},
        "OwnerId": 1234567890123456_u64}]}});
    let vsw = json!({"RequestId": "B", "VSwitches": {"VSwitch": [
        {"VSwitchId": "vsw-bp1a", "VpcId": "vpc-bp1test", "CidrBlock": "192.168.1.0/24",
         "ZoneId": "cn-hangzhou-h", "NetworkAclId": "", "VSwitchName": "a"},
        {"VSwitchId": "vsw-bp1b", "VpcId": "vpc-bp1test", "CidrBlock": "192.168.2.0/24",
         "ZoneId": "cn-hangzhou-i", "NetworkAclId": "nacl-bp1x", "VSwitchName": "b"}]}});
    let acls = json!({"RequestId": "C", "NetworkAcls": {"NetworkAcl": [{
        "NetworkAclId": "nacl-bp1x", "VpcId": "vpc-bp1test",
        "IngressAclEntries": {"IngressAclEntry": [
            {"NetworkAclEntryId": "nae-1", "Policy": "drop", "Protocol": "tcp", "Port": "22/22",
             "SourceCidrIp": "192.168.1.66/32", "EntryType": "custom"},
            {"NetworkAclEntryId": "nae-2", "Policy": "accept", "Protocol": "all", "Port": "-1/-1",
             "SourceCidrIp": "0.0.0.0/0", "EntryType": "custom"}]},
        "EgressAclEntries": {"EgressAclEntry": [
            {"NetworkAclEntryId": "nae-3", "Policy": "accept", "Protocol": "all", "Port": "-1/-1",
             "DestinationCidrIp": "0.0.0.0/0"}]},
        "Resources": {"Resource": [
            {"ResourceId": "vsw-bp1a", "ResourceType": "VSwitch", "Status": "BINDED"},
            {"ResourceId": "vsw-bp1gone", "ResourceType": "VSwitch", "Status": "BINDED"}]}}]}});
    let i = run(vec![
        ("vpcs.json", vpcs),
        ("vsw.json", vsw),
        ("acls.json", acls),
    ]);
    let v = &i.model.vpcs[0];
    let cidrs: Vec<String> = v.cidrs.iter().map(|c| c.value.to_string()).collect();
    assert_eq!(cidrs, ["192.168.0.0/16", "172.16.0.0/12"]);
    assert_eq!(v.account.as_deref(), Some("1234567890123456"));
    let s: Vec<(&str, Option<&str>, Option<&str>)> = i
        .model
        .subnets
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                s.network_acl.as_ref().map(|a| a.value.as_str()),
                s.az.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        s,
        [
            ("vsw-bp1a", Some("nacl-bp1x"), Some("cn-hangzhou-h")),
            ("vsw-bp1b", Some("nacl-bp1x"), Some("cn-hangzhou-i"))
        ]
    );
    let acl = &i.model.network_acls[0];
    let ingress: Vec<AclLine> = acl
        .ingress
        .iter()
        .map(|r| (r.rule.value, r.action, ports(&r.ports)))
        .collect();
    assert_eq!(
        ingress,
        [(1, Action::Deny, Some((22, 22))), (2, Action::Allow, None)]
    );
    assert_eq!(acl.egress[0].rule.value, 1);
    assert_eq!(i.skipped.len(), 1, "{:?}", i.skipped);
    assert!(i.skipped[0].why.contains("vsw-bp1gone"));
    Policy::compile(&i.model).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn groups_without_their_attribute_and_unknown_files_are_listed() {
    let i = run(vec![
        ("groups.json", groups(&[("sg-a", "normal")])),
        ("other.json", json!({"Something": "else"})),
    ]);
    let why: Vec<&str> = i.skipped.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(why, ["other.json", "sg-a"]);
    let m = &i.model;
    assert_eq!(m.imported.as_ref().unwrap().provider, "alibaba");
    assert_eq!(m.security_groups[0].title.as_deref(), Some("sg-a-name"));
}
