//! Each test feeds responses shaped as the AWS CLI prints them (the
//! examples of the AWS CLI reference and botocore's shapes) and checks the
//! model that results.

use std::path::Path;
use std::rc::Rc;

use ipnet::IpNet;
use serde_json::{json, Value};

use super::recognise::{Document, Source};
use super::*;
use crate::policy::model::{Remote, Rule};
use crate::policy::types::{Action, IpProto, PortRange, ProtoMatch};
use crate::policy::Policy;

fn doc(path: &str, value: Value) -> Document {
    Document {
        file: path.to_string(),
        value,
        src: Rc::new(Source::of(Path::new(path))),
    }
}

fn run(docs: Vec<Document>) -> Import {
    import_documents(&docs).expect("import")
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn remotes(r: &Rule) -> Vec<String> {
    r.remote.iter().map(|x| x.value.to_string()).collect()
}

fn sg(perms: Value) -> Value {
    json!({"SecurityGroups": [{
        "Description": "web servers", "GroupName": "web", "GroupId": "sg-0a1",
        "OwnerId": "123456789012", "VpcId": "vpc-0a1",
        "IpPermissions": perms, "IpPermissionsEgress": [
            {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}], "Ipv6Ranges": [],
             "PrefixListIds": [], "UserIdGroupPairs": []}]
    }]})
}

#[test]
fn one_permission_is_one_rule_per_source() {
    let i = run(vec![doc(
        "sg.json",
        sg(json!([{
            "FromPort": 443, "IpProtocol": "tcp", "ToPort": 443,
            "IpRanges": [{"CidrIp": "203.0.113.0/24", "Description": "office"},
                         {"CidrIp": "198.51.100.7/32"}],
            "Ipv6Ranges": [{"CidrIpv6": "2001:db8::/32", "Description": "v6"}],
            "PrefixListIds": [{"PrefixListId": "pl-0123", "Description": "corp"}],
            "UserIdGroupPairs": [{"GroupId": "sg-0a1", "UserId": "123456789012",
                                  "Description": "self"}]
        }])),
    )]);
    let g = &i.model.security_groups[0];
    assert_eq!(g.name, "sg-0a1");
    assert_eq!(g.title.as_deref(), Some("web"));
    assert_eq!(g.description.as_deref(), Some("web servers"));
    assert_eq!(g.vpc.as_ref().unwrap().value, "vpc-0a1");
    let got: Vec<(Vec<String>, Option<&str>)> = g
        .ingress
        .iter()
        .map(|r| (remotes(r), r.description.as_deref()))
        .collect();
    assert_eq!(
        got,
        vec![
            (vec!["203.0.113.0/24".into()], Some("office")),
            (vec!["198.51.100.7/32".into()], None),
            (vec!["2001:db8::/32".into()], Some("v6")),
            (vec!["pl-0123".into()], Some("corp")),
            (vec!["sg-0a1".into()], Some("self")),
        ]
    );
    let tcp443 = Some(vec![PortRange { lo: 443, hi: 443 }]);
    assert!(g
        .ingress
        .iter()
        .all(|r| r.proto == ProtoMatch::Is(IpProto::TCP)
            && r.ports.as_ref().map(|p| p.value.clone()) == tcp443));
    assert_eq!(g.egress.len(), 1);
    assert_eq!(g.egress[0].proto, ProtoMatch::Any);
    // The rule's origin names the source it came from.
    let Origin::Json { path, .. } = &g.ingress[1].origin else {
        panic!()
    };
    assert_eq!(path, "$.SecurityGroups[0].IpPermissions[0].IpRanges[1]");
    // The self reference is to a group in the input: no external group.
    assert!(i.model.external_groups.is_empty());
}

#[test]
fn protocols_minus_one_and_numbers() {
    let i = run(vec![doc(
        "sg.json",
        sg(json!([
            {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
            {"IpProtocol": "50", "FromPort": 0, "ToPort": 100, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
            {"IpProtocol": "6", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
            {"IpProtocol": "17", "FromPort": -1, "ToPort": -1, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
            {"IpProtocol": "tcp", "FromPort": 0, "ToPort": 65535, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
            {"IpProtocol": "58", "FromPort": 128, "ToPort": -1, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]},
            {"IpProtocol": "300", "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}
        ])),
    )]);
    let r = &i.model.security_groups[0].ingress;
    assert_eq!(r.len(), 6, "{r:?}");
    assert_eq!((r[0].proto, r[0].ports.is_none()), (ProtoMatch::Any, true));
    // Another number: that protocol, all ports whatever FromPort/ToPort say.
    assert_eq!(
        (r[1].proto, r[1].ports.is_none()),
        (ProtoMatch::Is(IpProto(50)), true)
    );
    assert_eq!(r[2].proto, ProtoMatch::Is(IpProto::TCP));
    assert_eq!(
        r[2].ports.as_ref().unwrap().value,
        vec![PortRange { lo: 22, hi: 22 }]
    );
    assert_eq!(
        (r[3].proto, r[3].ports.is_none()),
        (ProtoMatch::Is(IpProto::UDP), true)
    );
    assert!(r[4].ports.is_none());
    assert_eq!(r[5].proto, ProtoMatch::Is(IpProto::ICMPV6));
    assert_eq!(r[5].icmp_type.as_ref().unwrap().value, 128);
    assert!(r[5].icmp_code.is_none());
    // Protocol 300 cannot be represented: skipped, with why.
    assert_eq!(i.skipped.len(), 1);
    assert_eq!(i.skipped[0].id, "sg-0a1");
    assert!(i.skipped[0].why.contains("300"), "{}", i.skipped[0].why);
}

#[test]
fn icmp_from_and_to_port_are_type_and_code() {
    let i = run(vec![doc(
        "sg.json",
        sg(json!([
            {"IpProtocol": "icmp", "FromPort": 3, "ToPort": 4, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
            {"IpProtocol": "icmp", "FromPort": 8, "ToPort": -1, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
            {"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
        ])),
    )]);
    let r = &i.model.security_groups[0].ingress;
    let tc: Vec<(Option<i64>, Option<i64>)> = r
        .iter()
        .map(|r| {
            (
                r.icmp_type.as_ref().map(|v| v.value),
                r.icmp_code.as_ref().map(|v| v.value),
            )
        })
        .collect();
    assert_eq!(tc, vec![(Some(3), Some(4)), (Some(8), None), (None, None)]);
    assert!(r.iter().all(|r| r.ports.is_none()));
}

#[test]
fn non_canonical_cidrs_are_read_as_aws_does() {
    let i = run(vec![doc(
        "sg.json",
        sg(json!([{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
                   "IpRanges": [{"CidrIp": "2.2.2.2/28"}]}])),
    )]);
    let r = &i.model.security_groups[0].ingress[0];
    assert_eq!(r.remote[0].value, Remote::Net(net("2.2.2.0/28")));
}

#[test]
fn group_pairs_of_other_accounts_peerings_and_stale_groups_are_kept() {
    let i = run(vec![doc(
        "sg.json",
        sg(json!([{
            "IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
            "UserIdGroupPairs": [
                {"GroupId": "sg-0other", "UserId": "210987654321", "Description": "partner"},
                {"GroupId": "sg-0peer", "UserId": "123456789012", "VpcId": "vpc-0b2",
                 "VpcPeeringConnectionId": "pcx-0ab", "PeeringStatus": "active"},
                {"GroupId": "sg-0gone", "UserId": "123456789012", "VpcId": "vpc-0c3",
                 "VpcPeeringConnectionId": "pcx-0cd", "PeeringStatus": "deleted"},
                {"GroupName": "classic-only", "UserId": "123456789012"}
            ]
        }])),
    )]);
    let g = &i.model.security_groups[0];
    let refs: Vec<Vec<String>> = g.ingress.iter().map(remotes).collect();
    assert_eq!(
        refs,
        vec![vec!["sg-0other"], vec!["sg-0peer"], vec!["sg-0gone"]]
    );
    let ext: Vec<_> = i
        .model
        .external_groups
        .iter()
        .map(|e| {
            (
                e.name.as_str(),
                e.account.as_deref(),
                e.vpc.as_deref(),
                e.peering.as_deref(),
                e.status.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        ext,
        vec![
            (
                "sg-0gone",
                Some("123456789012"),
                Some("vpc-0c3"),
                Some("pcx-0cd"),
                Some("deleted")
            ),
            (
                "sg-0other",
                Some("210987654321"),
                None,
                None,
                Some("missing")
            ),
            (
                "sg-0peer",
                Some("123456789012"),
                Some("vpc-0b2"),
                Some("pcx-0ab"),
                Some("active")
            ),
        ]
    );
    // The EC2-Classic pair (no GroupId) is skipped with why.
    assert_eq!(i.skipped.len(), 1);
    assert!(i.skipped[0].why.contains("group id"));
}

#[test]
fn prefix_lists_managed_with_entries_older_and_missing() {
    let managed = json!({"PrefixLists": [
        {"PrefixListId": "pl-0aaa", "AddressFamily": "IPv4", "State": "create-complete",
         "PrefixListName": "office", "MaxEntries": 10, "Version": 1, "OwnerId": "123456789012"},
        {"PrefixListId": "pl-63a5400a", "AddressFamily": "IPv4", "State": "create-complete",
         "PrefixListName": "com.amazonaws.us-east-1.s3", "OwnerId": "AWS"}
    ]});
    let entries = json!({"Entries": [{"Cidr": "203.0.113.0/24", "Description": "HQ"},
                                     {"Cidr": "198.51.100.1/24"}]});
    let older = json!({"PrefixLists": [{"PrefixListId": "pl-0bbb",
        "PrefixListName": "com.amazonaws.us-east-1.dynamodb", "Cidrs": ["52.94.0.0/22"]}]});
    let rules = sg(json!([{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
        "PrefixListIds": [{"PrefixListId": "pl-0ccc"}, {"PrefixListId": "pl-63a5400a"}]}]));
    let i = run(vec![
        doc(
            "account-data/demo/us-east-1/ec2-describe-managed-prefix-lists.json",
            managed,
        ),
        doc(
            "account-data/demo/us-east-1/ec2-get-managed-prefix-list-entries/pl-0aaa.json",
            entries.clone(),
        ),
        doc("aws_configs/prefix.json", older),
        doc("sg.json", rules),
        doc("entries-without-a-name.json", entries),
    ]);
    let pls: Vec<_> = i
        .model
        .prefix_lists
        .iter()
        .map(|p| {
            let e: Vec<String> = p.entries.iter().map(|e| e.value.to_string()).collect();
            (p.name.as_str(), e, p.owner.as_deref(), p.incomplete)
        })
        .collect();
    assert_eq!(
        pls,
        vec![
            (
                "pl-0aaa",
                vec!["203.0.113.0/24".into(), "198.51.100.0/24".into()],
                Some("123456789012"),
                false
            ),
            ("pl-0bbb", vec!["52.94.0.0/22".into()], Some("AWS"), false),
            ("pl-0ccc", vec![], None, true),
            ("pl-63a5400a", vec![], Some("AWS"), true),
        ]
    );
    assert_eq!(
        i.model.prefix_lists[0].max_entries.as_ref().unwrap().value,
        10
    );
    assert_eq!(i.skipped.len(), 1, "{:?}", i.skipped);
    assert_eq!(i.skipped[0].id, "entries-without-a-name.json");
}

#[test]
fn security_group_rules_are_preferred_and_carry_sgr_ids() {
    let rules = json!({"SecurityGroupRules": [
        {"SecurityGroupRuleId": "sgr-0b15794cdb17bf29c", "GroupId": "sg-0a1",
         "GroupOwnerId": "123456789012", "IsEgress": false, "IpProtocol": "tcp",
         "FromPort": 22, "ToPort": 22, "CidrIpv4": "10.0.0.0/16", "Description": "ssh"},
        {"SecurityGroupRuleId": "sgr-0c1", "GroupId": "sg-0a1", "GroupOwnerId": "123456789012",
         "IsEgress": false, "IpProtocol": "-1", "FromPort": -1, "ToPort": -1,
         "ReferencedGroupInfo": {"GroupId": "sg-0x", "UserId": "210987654321"}},
        {"SecurityGroupRuleId": "sgr-0d1", "GroupId": "sg-0a1", "GroupOwnerId": "123456789012",
         "IsEgress": true, "IpProtocol": "-1", "FromPort": -1, "ToPort": -1,
         "CidrIpv6": "::/0"},
        {"SecurityGroupRuleId": "sgr-0e1", "GroupId": "sg-0a1", "GroupOwnerId": "123456789012",
         "IsEgress": false, "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
         "PrefixListId": "pl-0ccc"}
    ]});
    let i = run(vec![
        doc(
            "sg.json",
            sg(json!([{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
                                  "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])),
        ),
        doc("rules.json", rules),
    ]);
    let g = &i.model.security_groups[0];
    let ids: Vec<_> = g.ingress.iter().map(|r| r.id.as_deref().unwrap()).collect();
    assert_eq!(ids, vec!["sgr-0b15794cdb17bf29c", "sgr-0c1", "sgr-0e1"]);
    assert_eq!(g.ingress[0].description.as_deref(), Some("ssh"));
    assert_eq!(remotes(&g.ingress[1]), vec!["sg-0x"]);
    assert_eq!(g.egress.len(), 1);
    assert_eq!(g.egress[0].remote[0].value, Remote::Net(net("::/0")));
    // The group keeps its name and title from describe-security-groups.
    assert_eq!(g.title.as_deref(), Some("web"));
    assert_eq!(i.model.external_groups[0].name, "sg-0x");
    assert!(i.model.prefix_lists[0].incomplete);
}

fn eni() -> Value {
    json!({
        "Association": {"IpOwnerId": "amazon", "PublicDnsName": "ec2-203-0-113-12.compute-1.amazonaws.com", "PublicIp": "203.0.113.12"},
        "Attachment": {"AttachmentId": "eni-attach-0b3b6cf5", "DeleteOnTermination": true, "DeviceIndex": 0,
                       "InstanceId": "i-1234567890abcdef0", "InstanceOwnerId": "123456789012", "Status": "attached"},
        "AvailabilityZone": "us-east-1d",
        "ConnectionTrackingConfiguration": {"TcpEstablishedTimeout": 350, "UdpStreamTimeout": 120, "UdpTimeout": 30},
        "Description": "primary",
        "Groups": [{"GroupName": "web", "GroupId": "sg-0a1"}],
        "InterfaceType": "interface",
        "Ipv6Addresses": [{"Ipv6Address": "2001:db8:1::10"}],
        "Ipv4Prefixes": [{"Ipv4Prefix": "10.0.1.48/28"}],
        "MacAddress": "0a:1b:2c:3d:4e:5f",
        "NetworkInterfaceId": "eni-0e1",
        "OwnerId": "123456789012",
        "PrivateIpAddress": "10.0.1.17",
        "PrivateIpAddresses": [
            {"Association": {"PublicIp": "203.0.113.12"}, "Primary": true, "PrivateIpAddress": "10.0.1.17"},
            {"Association": {"PublicIp": "198.51.100.9"}, "Primary": false, "PrivateIpAddress": "10.0.1.18"}
        ],
        "SourceDestCheck": true, "Status": "in-use",
        "SubnetId": "subnet-0c1",
        "TagSet": [{"Key": "Name", "Value": "eni-name"}],
        "VpcId": "vpc-0a1"
    })
}

fn instances() -> Value {
    json!({"Reservations": [{"Groups": [], "OwnerId": "123456789012", "ReservationId": "r-1",
    "Instances": [{
        "InstanceId": "i-1234567890abcdef0", "InstanceType": "t3.micro",
        "SecurityGroups": [{"GroupName": "other", "GroupId": "sg-0instance"}],
        "Tags": [{"Key": "Name", "Value": "web-1"}],
        "NetworkInterfaces": [{
            "Attachment": {"AttachmentId": "eni-attach-0b3b6cf5", "DeviceIndex": 0, "Status": "attached"},
            "Description": "primary", "Groups": [{"GroupName": "web", "GroupId": "sg-0a1"}],
            "Ipv6Addresses": [], "NetworkInterfaceId": "eni-0e1", "OwnerId": "123456789012",
            "PrivateIpAddress": "10.0.1.17",
            "PrivateIpAddresses": [{"Primary": true, "PrivateIpAddress": "10.0.1.17"}],
            "SubnetId": "subnet-0c1", "VpcId": "vpc-0a1", "InterfaceType": "interface"
        }]
    }]}]})
}

#[test]
fn interfaces_from_describe_network_interfaces() {
    let i = run(vec![
        doc("enis.json", json!({"NetworkInterfaces": [eni()]})),
        doc("instances.json", instances()),
    ]);
    assert_eq!(i.model.interfaces.len(), 1, "read twice, kept once");
    let e = &i.model.interfaces[0];
    assert_eq!(e.name, "eni-0e1");
    let addrs: Vec<String> = e
        .addresses
        .value
        .iter()
        .map(|a| a.value.to_string())
        .collect();
    assert_eq!(
        addrs,
        vec![
            "10.0.1.17/32",
            "10.0.1.18/32",
            "2001:db8:1::10/128",
            "10.0.1.48/28"
        ]
    );
    let sgs: Vec<&str> = e.security_groups.iter().map(|s| s.value.as_str()).collect();
    assert_eq!(sgs, vec!["sg-0a1"], "from the ENI, not the instance");
    let p = &e.place;
    assert_eq!(p.subnet.as_ref().unwrap().value, "subnet-0c1");
    assert!(p.vpc.is_none());
    assert_eq!(p.instance.as_deref(), Some("i-1234567890abcdef0"));
    assert_eq!(p.title.as_deref(), Some("web-1"), "the instance's Name tag");
    assert!(p.kind.is_none());
    let public: Vec<String> = p
        .public_addresses
        .iter()
        .map(|a| a.value.to_string())
        .collect();
    assert_eq!(public, vec!["203.0.113.12/32", "198.51.100.9/32"]);
    assert_eq!(p.tracking.as_ref().unwrap().value, "aws");
    assert_eq!(p.timeouts.tcp_established.as_ref().unwrap().value, 350);
    assert_eq!(p.timeouts.udp_stream.as_ref().unwrap().value, 120);
    assert_eq!(p.timeouts.udp.as_ref().unwrap().value, 30);
    assert_eq!(e.description.as_deref(), Some("primary"));
    // sg-0a1 is not in this input: an external group, named as missing.
    assert_eq!(i.model.external_groups.len(), 1);
    assert_eq!(
        i.model.external_groups[0].status.as_deref(),
        Some("missing")
    );
}

#[test]
fn interfaces_from_instances_alone() {
    let i = run(vec![doc("instances.json", instances())]);
    let e = &i.model.interfaces[0];
    assert_eq!(e.name, "eni-0e1");
    assert_eq!(e.place.instance.as_deref(), Some("i-1234567890abcdef0"));
    assert_eq!(e.place.title.as_deref(), Some("web-1"));
    assert_eq!(e.security_groups[0].value, "sg-0a1");
}

#[test]
fn interface_without_a_private_address_is_skipped() {
    let i = run(vec![doc(
        "enis.json",
        json!({"NetworkInterfaces": [{"NetworkInterfaceId": "eni-0empty", "PrivateIpAddresses": [],
                                      "Groups": [], "SubnetId": "subnet-0c1"}]}),
    )]);
    assert!(i.model.interfaces.is_empty());
    assert_eq!(i.skipped[0].id, "eni-0empty");
    assert!(i.skipped[0].why.contains("no private address"));
}

#[test]
fn interface_kinds_from_type_and_description() {
    let mk = |id: &str, typ: &str, d: &str, ip: &str| {
        json!({"NetworkInterfaceId": id, "InterfaceType": typ, "Description": d,
               "PrivateIpAddress": ip, "SubnetId": "subnet-0c1", "Groups": []})
    };
    let i = run(vec![doc(
        "enis.json",
        json!({"NetworkInterfaces": [
            mk("eni-1", "interface", "ELB app/web-alb/50dc6c495c0c9188", "10.0.0.1"),
            mk("eni-2", "network_load_balancer", "ELB net/orders/0123456789abcdef", "10.0.0.2"),
            mk("eni-3", "vpc_endpoint", "VPC Endpoint Interface vpce-0e1", "10.0.0.3"),
            mk("eni-4", "lambda", "AWS Lambda VPC ENI-fn-1", "10.0.0.4"),
            mk("eni-5", "nat_gateway", "Interface for NAT Gateway nat-0a1", "10.0.0.5"),
            mk("eni-6", "natGateway", "", "10.0.0.6"),
            mk("eni-7", "gateway_load_balancer_endpoint", "VPC Endpoint Interface vpce-0f1", "10.0.0.7"),
            mk("eni-8", "iot_rules_managed", "", "10.0.0.8")
        ]}),
    )]);
    let kinds: Vec<Option<&str>> = i
        .model
        .interfaces
        .iter()
        .map(|e| e.place.kind.as_ref().map(|k| k.value.as_str()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            Some("load_balancer"),
            Some("load_balancer"),
            Some("vpc_endpoint"),
            Some("lambda"),
            Some("nat_gateway"),
            Some("nat_gateway"),
            Some("gateway_load_balancer_endpoint"),
            Some("other"),
        ]
    );
    assert_eq!(i.skipped.len(), 1);
    assert!(i.skipped[0].why.contains("iot_rules_managed"));
}

fn topology() -> Vec<Document> {
    let vpcs = json!({"Vpcs": [{
        "CidrBlock": "10.0.0.0/16", "DhcpOptionsId": "dopt-1", "State": "available",
        "VpcId": "vpc-0a1", "OwnerId": "123456789012", "InstanceTenancy": "default",
        "CidrBlockAssociationSet": [
            {"AssociationId": "vpc-cidr-assoc-1", "CidrBlock": "10.0.0.0/16", "CidrBlockState": {"State": "associated"}},
            {"AssociationId": "vpc-cidr-assoc-2", "CidrBlock": "10.1.0.0/16", "CidrBlockState": {"State": "associated"}},
            {"AssociationId": "vpc-cidr-assoc-3", "CidrBlock": "10.2.0.0/16", "CidrBlockState": {"State": "disassociated"}}],
        "Ipv6CidrBlockAssociationSet": [
            {"AssociationId": "vpc-cidr-assoc-4", "Ipv6CidrBlock": "2001:db8:1::/56",
             "Ipv6CidrBlockState": {"State": "associated"}, "NetworkBorderGroup": "us-east-1"}],
        "IsDefault": false, "Tags": [{"Key": "Name", "Value": "prod"}]
    }, {
        "CidrBlock": "10.9.0.0/16", "VpcId": "vpc-0b2", "OwnerId": "210987654321",
        "CidrBlockAssociationSet": [{"CidrBlock": "10.9.0.0/16", "CidrBlockState": {"State": "associated"}}]
    }]});
    let subnets = json!({"Subnets": [
        {"AvailabilityZone": "us-east-1a", "AvailabilityZoneId": "use1-az1", "CidrBlock": "10.0.1.0/24",
         "SubnetId": "subnet-0c1", "VpcId": "vpc-0a1", "OwnerId": "123456789012",
         "Ipv6CidrBlockAssociationSet": [{"AssociationId": "subnet-cidr-assoc-1",
            "Ipv6CidrBlock": "2001:db8:1::/64", "Ipv6CidrBlockState": {"State": "associated"}}],
         "Tags": [{"Key": "Name", "Value": "web-a"}]},
        {"AvailabilityZone": "us-east-1b", "CidrBlock": "10.0.2.0/24", "SubnetId": "subnet-0c2",
         "VpcId": "vpc-0a1"}
    ]});
    let acls = json!({"NetworkAcls": [{
        "Associations": [{"NetworkAclAssociationId": "aclassoc-1", "NetworkAclId": "acl-0d1", "SubnetId": "subnet-0c1"}],
        "Entries": [
            {"CidrBlock": "0.0.0.0/0", "Egress": true, "Protocol": "-1", "RuleAction": "allow", "RuleNumber": 100},
            {"CidrBlock": "0.0.0.0/0", "Egress": true, "Protocol": "-1", "RuleAction": "deny", "RuleNumber": 32767},
            {"CidrBlock": "0.0.0.0/0", "Egress": false, "Protocol": "6", "PortRange": {"From": 443, "To": 443},
             "RuleAction": "allow", "RuleNumber": 100},
            {"CidrBlock": "192.0.2.0/24", "Egress": false, "Protocol": "1", "IcmpTypeCode": {"Code": -1, "Type": 8},
             "RuleAction": "deny", "RuleNumber": 90},
            {"Ipv6CidrBlock": "::/0", "Egress": false, "Protocol": "-1", "RuleAction": "deny", "RuleNumber": 32768},
            {"Ipv6CidrBlock": "::/0", "Egress": false, "Protocol": "-1", "RuleAction": "deny", "RuleNumber": 32767}
        ],
        "IsDefault": true, "NetworkAclId": "acl-0d1", "VpcId": "vpc-0a1", "OwnerId": "123456789012"
    }]});
    let routes = json!({"RouteTables": [{
        "Associations": [{"Main": true, "RouteTableAssociationId": "rtbassoc-1", "RouteTableId": "rtb-0main",
                          "AssociationState": {"State": "associated"}}],
        "RouteTableId": "rtb-0main", "VpcId": "vpc-0a1", "OwnerId": "123456789012",
        "Routes": [{"DestinationCidrBlock": "10.0.0.0/16", "GatewayId": "local", "Origin": "CreateRouteTable", "State": "active"}]
    }, {
        "Associations": [{"Main": false, "RouteTableAssociationId": "rtbassoc-2", "RouteTableId": "rtb-0e1", "SubnetId": "subnet-0c1"}],
        "RouteTableId": "rtb-0e1", "VpcId": "vpc-0a1",
        "Routes": [
            {"DestinationCidrBlock": "10.0.0.0/16", "GatewayId": "local", "State": "active"},
            {"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": "igw-0f1", "State": "active"},
            {"DestinationCidrBlock": "10.9.0.0/16", "VpcPeeringConnectionId": "pcx-0ab", "State": "active"},
            {"DestinationIpv6CidrBlock": "::/0", "EgressOnlyInternetGatewayId": "eigw-1", "State": "active"},
            {"DestinationPrefixListId": "pl-63a5400a", "GatewayId": "vpce-0g1", "State": "active"},
            {"DestinationCidrBlock": "172.16.0.0/12", "NatGatewayId": "nat-0gone", "State": "blackhole"},
            {"DestinationCidrBlock": "100.64.0.0/10", "CoreNetworkArn": "arn:aws:networkmanager::1:core-network/cn-1", "State": "active"}
        ]
    }]});
    let igws = json!({"InternetGateways": [{"Attachments": [{"State": "available", "VpcId": "vpc-0a1"}],
        "InternetGatewayId": "igw-0f1", "OwnerId": "123456789012"}]});
    let peerings = json!({"VpcPeeringConnections": [{
        "AccepterVpcInfo": {"CidrBlock": "10.9.0.0/16", "OwnerId": "210987654321", "VpcId": "vpc-0b2", "Region": "us-east-1"},
        "RequesterVpcInfo": {"CidrBlock": "10.0.0.0/16", "OwnerId": "123456789012", "VpcId": "vpc-0a1", "Region": "us-east-1"},
        "Status": {"Code": "active", "Message": "Active"}, "VpcPeeringConnectionId": "pcx-0ab"
    }, {
        "AccepterVpcInfo": {"VpcId": "vpc-0zz"}, "RequesterVpcInfo": {"VpcId": "vpc-0a1"},
        "Status": {"Code": "pending-acceptance"}, "VpcPeeringConnectionId": "pcx-0cd"
    }]});
    let base = "account-data/prod/us-east-1/";
    vec![
        doc(&format!("{base}ec2-describe-vpcs.json"), vpcs),
        doc(&format!("{base}ec2-describe-subnets.json"), subnets),
        doc(&format!("{base}ec2-describe-network-acls.json"), acls),
        doc(&format!("{base}ec2-describe-route-tables.json"), routes),
        doc(&format!("{base}ec2-describe-internet-gateways.json"), igws),
        doc(
            &format!("{base}ec2-describe-vpc-peering-connections.json"),
            peerings,
        ),
    ]
}

#[test]
fn vpcs_subnets_gateways_and_peerings() {
    let i = run(topology());
    let m = &i.model;
    let v = &m.vpcs[0];
    assert_eq!(v.name, "vpc-0a1");
    let cidrs: Vec<String> = v.cidrs.iter().map(|c| c.value.to_string()).collect();
    assert_eq!(cidrs, vec!["10.0.0.0/16", "10.1.0.0/16", "2001:db8:1::/56"]);
    assert_eq!(v.account.as_deref(), Some("123456789012"));
    assert_eq!(v.region.as_deref(), Some("us-east-1"));
    assert_eq!(v.title.as_deref(), Some("prod"));
    assert_eq!(v.internet_gateways, vec!["igw-0f1"]);
    let peers: Vec<&str> = v.peers.iter().map(|p| p.value.as_str()).collect();
    assert_eq!(peers, vec!["vpc-0b2"], "only the active peering");
    assert_eq!(m.vpcs[1].peers[0].value, "vpc-0a1");
    assert_eq!(m.peerings.len(), 2);
    assert_eq!(m.peerings[1].status.as_deref(), Some("pending-acceptance"));
    assert!(i.skipped.iter().any(|s| s.why.contains("10.2.0.0/16")));

    let s = &m.subnets[0];
    assert_eq!(
        (s.name.as_str(), s.vpc.value.as_str()),
        ("subnet-0c1", "vpc-0a1")
    );
    let cidrs: Vec<String> = s.cidrs.iter().map(|c| c.value.to_string()).collect();
    assert_eq!(cidrs, vec!["10.0.1.0/24", "2001:db8:1::/64"]);
    assert_eq!(s.az.as_deref(), Some("us-east-1a"));
    assert_eq!(s.title.as_deref(), Some("web-a"));
    assert_eq!(s.network_acl.as_ref().unwrap().value, "acl-0d1");
    assert_eq!(s.route_table.as_ref().unwrap().value, "rtb-0e1");
    // No explicit association: the VPC's main table.
    assert_eq!(
        m.subnets[1].route_table.as_ref().unwrap().value,
        "rtb-0main"
    );
    assert!(m.subnets[1].network_acl.is_none());
}

#[test]
fn network_acls_drop_the_implicit_denies() {
    let i = run(topology());
    let a = &i.model.network_acls[0];
    assert!(a.default);
    assert_eq!(a.vpc.as_ref().unwrap().value, "vpc-0a1");
    let ingress: Vec<(i64, String, Action)> = a
        .ingress
        .iter()
        .map(|r| (r.rule.value, r.remote.value.to_string(), r.action))
        .collect();
    assert_eq!(
        ingress,
        vec![
            (90, "192.0.2.0/24".into(), Action::Deny),
            (100, "0.0.0.0/0".into(), Action::Allow),
        ]
    );
    assert_eq!(a.ingress[0].icmp_type.as_ref().unwrap().value, 8);
    assert!(a.ingress[0].icmp_code.is_none());
    assert_eq!(
        a.ingress[1].ports.as_ref().unwrap().value,
        vec![PortRange { lo: 443, hi: 443 }]
    );
    assert_eq!(a.egress.len(), 1);
    assert_eq!(a.egress[0].proto, ProtoMatch::Any);
}

#[test]
fn route_tables_targets_and_blackholes() {
    let i = run(topology());
    let t = &i.model.route_tables[0];
    assert_eq!(t.name, "rtb-0e1");
    assert!(!t.main);
    let routes: Vec<(String, &str, Option<&str>)> = t
        .routes
        .iter()
        .map(|r| {
            (
                r.destination.value.to_string(),
                r.target.value.as_str(),
                r.state.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        routes,
        vec![
            ("10.0.0.0/16".into(), "local", None),
            ("0.0.0.0/0".into(), "igw-0f1", None),
            ("10.9.0.0/16".into(), "pcx-0ab", None),
            ("::/0".into(), "eigw-1", None),
            ("pl-63a5400a".into(), "vpce-0g1", None),
            ("172.16.0.0/12".into(), "nat-0gone", Some("blackhole")),
            (
                "100.64.0.0/10".into(),
                "arn:aws:networkmanager::1:core-network/cn-1",
                None
            ),
        ]
    );
    assert!(i.model.route_tables[1].main);
    // The route's prefix list is not in the input: an incomplete list.
    assert!(i.model.prefix_lists[0].incomplete);
}

fn elb_docs() -> Vec<Document> {
    let lbs = json!({"LoadBalancers": [{
        "LoadBalancerArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/orders/0123456789abcdef",
        "DNSName": "orders-0123456789abcdef.elb.us-east-1.amazonaws.com",
        "CanonicalHostedZoneId": "Z26RNL4JYFTOTI", "CreatedTime": "2024-01-01T00:00:00Z",
        "LoadBalancerName": "orders", "Scheme": "internal", "VpcId": "vpc-0a1",
        "State": {"Code": "active"}, "Type": "network",
        "AvailabilityZones": [{"ZoneName": "us-east-1a", "SubnetId": "subnet-0c1", "LoadBalancerAddresses": []},
                              {"ZoneName": "us-east-1b", "SubnetId": "subnet-0c2", "LoadBalancerAddresses": []}],
        "SecurityGroups": ["sg-0nlb"], "IpAddressType": "ipv4",
        "EnforceSecurityGroupInboundRulesOnPrivateLinkTraffic": "off"
    }, {
        "LoadBalancerArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web-alb/50dc6c495c0c9188",
        "LoadBalancerName": "web-alb", "Scheme": "internet-facing", "VpcId": "vpc-0a1", "Type": "application",
        "State": {"Code": "active"}, "AvailabilityZones": [], "SecurityGroups": []
    }]});
    let listeners = json!({"Listeners": [{
        "ListenerArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/net/orders/0123456789abcdef/1",
        "LoadBalancerArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/orders/0123456789abcdef",
        "Port": 80, "Protocol": "TCP",
        "DefaultActions": [{"Type": "forward",
            "TargetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/tg-orders/73e2d6bc24d8a067"}]
    }]});
    let batfish_listeners = json!({"LoadBalancerListeners": [{
        "LoadBalancerArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web-alb/50dc6c495c0c9188",
        "Listeners": [{"ListenerArn": "arn:…:listener/app/web-alb/50dc6c495c0c9188/2", "Port": 443, "Protocol": "HTTPS",
            "DefaultActions": [{"Type": "forward", "ForwardConfig": {"TargetGroups": [
                {"TargetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/tg-web/1", "Weight": 1},
                {"TargetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/tg-canary/2", "Weight": 1}]}}]}]
    }]});
    let tgs = json!({"TargetGroups": [{
        "TargetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/tg-orders/73e2d6bc24d8a067",
        "TargetGroupName": "tg-orders", "Protocol": "TCP", "Port": 80, "VpcId": "vpc-0a1",
        "HealthCheckProtocol": "TCP", "HealthCheckPort": "traffic-port", "TargetType": "instance",
        "LoadBalancerArns": ["arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/orders/0123456789abcdef"]
    }]});
    let health = json!({"TargetHealthDescriptions": [
        {"Target": {"Id": "i-0b1", "Port": 80}, "HealthCheckPort": "80", "TargetHealth": {"State": "healthy"}},
        {"Target": {"Id": "i-0b2", "Port": 80, "AvailabilityZone": "us-east-1b"},
         "TargetHealth": {"State": "unhealthy", "Reason": "Target.Timeout"}}
    ]});
    let lb_attrs = json!({"LoadBalancerAttributes": [{
        "LoadBalancerArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/orders/0123456789abcdef",
        "Attributes": [{"Key": "deletion_protection.enabled", "Value": "false"},
                       {"Key": "load_balancing.cross_zone.enabled", "Value": "true"}]}]});
    let tg_attrs = json!({"Attributes": [{"Key": "preserve_client_ip.enabled", "Value": "false"}]});
    let enis = json!({"NetworkInterfaces": [
        {"NetworkInterfaceId": "eni-0n1", "InterfaceType": "network_load_balancer",
         "Description": "ELB net/orders/0123456789abcdef", "PrivateIpAddress": "10.0.1.50",
         "SubnetId": "subnet-0c1", "Groups": [{"GroupId": "sg-0nlb"}], "RequesterId": "amazon-elb"},
        {"NetworkInterfaceId": "eni-0a1", "InterfaceType": "interface",
         "Description": "ELB app/web-alb/50dc6c495c0c9188", "PrivateIpAddress": "10.0.1.60",
         "SubnetId": "subnet-0c1", "Groups": [], "RequesterId": "amazon-elb"}
    ]});
    let tg_arn = "arn%3Aaws%3Aelasticloadbalancing%3Aus-east-1%3A123456789012%3Atargetgroup%2Ftg-orders%2F73e2d6bc24d8a067";
    let base = "account-data/prod/us-east-1/";
    vec![
        doc(&format!("{base}elbv2-describe-load-balancers.json"), lbs),
        doc(&format!("{base}elbv2-describe-listeners/x.json"), listeners),
        doc("aws_configs/us-east-1/listeners.json", batfish_listeners),
        doc(&format!("{base}elbv2-describe-target-groups.json"), tgs),
        doc(
            &format!("{base}elbv2-describe-target-health/{tg_arn}.json"),
            health,
        ),
        doc("aws_configs/us-east-1/attributes.json", lb_attrs),
        doc(
            &format!("{base}elbv2-describe-target-group-attributes/{tg_arn}.json"),
            tg_attrs,
        ),
        doc(&format!("{base}ec2-describe-network-interfaces.json"), enis),
    ]
}

#[test]
fn load_balancers_listeners_target_groups_and_their_enis() {
    let i = run(elb_docs());
    let m = &i.model;
    let names: Vec<&str> = m.load_balancers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, vec!["orders", "web-alb"]);
    let nlb = &m.load_balancers[0];
    assert_eq!(nlb.kind.value, "network");
    assert_eq!(nlb.scheme.as_ref().unwrap().value, "internal");
    assert_eq!(nlb.zones, vec!["us-east-1a", "us-east-1b"]);
    assert_eq!(nlb.security_groups[0].value, "sg-0nlb");
    assert_eq!(nlb.enforce_inbound_rules_on_privatelink, Some(false));
    assert_eq!(nlb.cross_zone, Some(true));
    assert_eq!(
        nlb.dns_name.as_deref(),
        Some("orders-0123456789abcdef.elb.us-east-1.amazonaws.com")
    );
    let l = &nlb.listeners[0];
    assert_eq!(
        (l.proto.value.as_str(), l.port.as_ref().unwrap().value),
        ("tcp", 80)
    );
    assert_eq!(l.target_group.as_ref().unwrap().value, "tg-orders");
    let enis: Vec<&str> = nlb.interfaces.iter().map(|i| i.value.as_str()).collect();
    assert_eq!(enis, vec!["eni-0n1"]);

    let alb = &m.load_balancers[1];
    assert_eq!(alb.listeners[0].proto.value, "https");
    assert_eq!(
        alb.listeners[0].target_group.as_ref().unwrap().value,
        "tg-web"
    );
    assert_eq!(alb.interfaces[0].value, "eni-0a1");
    assert!(i.skipped.iter().any(|s| s.why.contains("tg-canary")));

    let tg = &m.target_groups[0];
    assert_eq!(tg.name, "tg-orders");
    assert_eq!(tg.proto.as_ref().unwrap().value, "tcp");
    assert_eq!(tg.port.as_ref().unwrap().value, 80);
    assert_eq!(tg.health_check_port.as_deref(), Some("traffic-port"));
    assert_eq!(tg.target_type.as_deref(), Some("instance"));
    assert_eq!(tg.preserve_client_ip, Some(false));
    let targets: Vec<(&str, Option<&str>, Option<&str>)> = tg
        .targets
        .iter()
        .map(|t| (t.id.value.as_str(), t.health.as_deref(), t.az.as_deref()))
        .collect();
    assert_eq!(
        targets,
        vec![
            ("i-0b1", Some("healthy"), None),
            ("i-0b2", Some("unhealthy"), Some("us-east-1b"))
        ]
    );
}

#[test]
fn load_balancers_with_the_same_name_are_told_apart() {
    let lb = |region: &str, id: &str| {
        json!({"LoadBalancerArn": format!("arn:aws:elasticloadbalancing:{region}:1:loadbalancer/net/api/{id}"),
               "LoadBalancerName": "api", "Type": "network"})
    };
    let i = run(vec![
        doc("a.json", json!({"LoadBalancers": [lb("us-east-1", "aaa")]})),
        doc("b.json", json!({"LoadBalancers": [lb("eu-west-1", "bbb")]})),
    ]);
    let names: Vec<&str> = i
        .model
        .load_balancers
        .iter()
        .map(|l| l.name.as_str())
        .collect();
    assert_eq!(names, vec!["api-aaa", "api-bbb"]);
}

#[test]
fn endpoints_and_endpoint_services() {
    let services = json!({"ServiceConfigurations": [{
        "ServiceType": [{"ServiceType": "Interface"}], "ServiceId": "vpce-svc-0b1",
        "ServiceName": "com.amazonaws.vpce.us-east-1.vpce-svc-0b1", "ServiceState": "Available",
        "AvailabilityZones": ["us-east-1a"], "AcceptanceRequired": true, "ManagesVpcEndpoints": false,
        "NetworkLoadBalancerArns": ["arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/orders/0123456789abcdef"]
    }]});
    let endpoints = json!({"VpcEndpoints": [{
        "VpcEndpointId": "vpce-0e1", "VpcEndpointType": "Interface", "VpcId": "vpc-0a1",
        "ServiceName": "com.amazonaws.vpce.us-east-1.vpce-svc-0b1", "State": "available",
        "RouteTableIds": [], "SubnetIds": ["subnet-0c1"], "Groups": [{"GroupId": "sg-0vpce", "GroupName": "vpce"}],
        "PrivateDnsEnabled": false, "NetworkInterfaceIds": ["eni-0v1"],
        "DnsEntries": [{"DnsName": "vpce-0e1-abcd.vpce-svc-0b1.us-east-1.vpce.amazonaws.com", "HostedZoneId": "Z1"}]
    }, {
        "VpcEndpointId": "vpce-0g1", "VpcEndpointType": "Gateway", "VpcId": "vpc-0a1",
        "ServiceName": "com.amazonaws.us-east-1.s3", "State": "available",
        "RouteTableIds": ["rtb-0e1"], "SubnetIds": [], "Groups": [], "NetworkInterfaceIds": [], "DnsEntries": []
    }, {
        "VpcEndpointId": "vpce-0f1", "VpcEndpointType": "GatewayLoadBalancer", "VpcId": "vpc-0a1",
        "ServiceName": "com.amazonaws.vpce.us-east-1.vpce-svc-0other", "State": "available",
        "SubnetIds": ["subnet-0c2"], "NetworkInterfaceIds": []
    }]});
    let enis = json!({"NetworkInterfaces": [{"NetworkInterfaceId": "eni-0v2", "InterfaceType": "gateway_load_balancer_endpoint",
        "Description": "VPC Endpoint Interface vpce-0f1", "PrivateIpAddress": "10.0.2.9", "SubnetId": "subnet-0c2", "Groups": []}]});
    let mut docs = elb_docs();
    docs.push(doc("services.json", services));
    docs.push(doc("endpoints.json", endpoints));
    docs.push(doc("more-enis.json", enis));
    let i = run(docs);
    let m = &i.model;
    let s = &m.endpoint_services[0];
    assert_eq!(s.name, "vpce-svc-0b1");
    assert_eq!(s.load_balancers[0].value, "orders");
    assert_eq!(s.acceptance_required, Some(true));
    let eps: Vec<(&str, &str, &str)> = m
        .endpoints
        .iter()
        .map(|e| {
            (
                e.name.as_str(),
                e.kind.value.as_str(),
                e.service.as_ref().unwrap().value.as_str(),
            )
        })
        .collect();
    assert_eq!(
        eps,
        vec![
            ("vpce-0e1", "interface", "vpce-svc-0b1"),
            (
                "vpce-0f1",
                "gateway_load_balancer",
                "com.amazonaws.vpce.us-east-1.vpce-svc-0other"
            ),
            ("vpce-0g1", "gateway", "com.amazonaws.us-east-1.s3"),
        ]
    );
    let e = &m.endpoints[0];
    assert_eq!(e.security_groups[0].value, "sg-0vpce");
    assert_eq!(e.interfaces[0].value, "eni-0v1");
    assert_eq!(e.dns_names.len(), 1);
    assert_eq!(e.state.as_deref(), Some("available"));
    // The GWLB endpoint's ENI is linked by its description.
    assert_eq!(m.endpoints[1].interfaces[0].value, "eni-0v2");
    assert_eq!(m.endpoints[2].route_tables[0].value, "rtb-0e1");
}

#[test]
fn recorded_responses_terraform_and_unknown_files() {
    let recorded = json!({"status_code": 200, "data": sg(json!([]))});
    let tf = json!({"format_version": "1.2", "planned_values": {"root_module": {}}});
    let i = run(vec![
        doc("recorded.json", recorded),
        doc("plan.json", tf),
        doc("other.json", json!({"Buckets": []})),
        doc("list.json", json!([1, 2])),
    ]);
    assert_eq!(i.model.security_groups[0].name, "sg-0a1");
    let Origin::Json { path, .. } = &i.model.security_groups[0].origin else {
        panic!()
    };
    assert_eq!(path, "$.data.SecurityGroups[0]");
    let skipped: Vec<(&str, &str)> = i
        .skipped
        .iter()
        .map(|s| (s.id.as_str(), s.why.as_str()))
        .collect();
    assert_eq!(
        skipped,
        vec![
            ("other.json", "not an AWS response sgplane reads"),
            ("list.json", "not an AWS response sgplane reads"),
        ]
    );
    let imported = i.model.imported.unwrap();
    assert_eq!(imported.provider, "aws");
    assert_eq!(imported.inputs.len(), 4);
}

#[test]
fn malformed_values_name_the_file_and_path() {
    let bad = json!({"SecurityGroups": [{"GroupId": "sg-1", "IpPermissions": [
        {"IpProtocol": "tcp", "FromPort": "eighty", "ToPort": 80}]}]});
    let e = import_documents(&[doc("bad.json", bad)])
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "bad.json:$.SecurityGroups[0].IpPermissions[0].FromPort: expected an integer, found \"eighty\""
    );
    let bad = json!({"Vpcs": [{"VpcId": "vpc-1", "CidrBlock": "10.0.0.300/16"}]});
    let e = import_documents(&[doc("bad.json", bad)])
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("bad.json:$.Vpcs[0].CidrBlock:"), "{e}");
    let bad = json!({"NetworkInterfaces": {"NetworkInterfaceId": "eni-1"}});
    let e = import_documents(&[doc("bad.json", bad)])
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "bad.json:$.NetworkInterfaces: expected an array, found an object"
    );
}

#[test]
fn the_same_input_in_any_file_order_gives_the_same_model() {
    let mut a = topology();
    a.extend(elb_docs());
    let mut b = topology();
    b.extend(elb_docs());
    b.reverse();
    let (ma, mb) = (run(a).model, run(b).model);
    let names = |m: &Model| -> Vec<String> {
        m.interfaces
            .iter()
            .map(|i| i.name.clone())
            .chain(m.subnets.iter().map(|s| s.name.clone()))
            .chain(m.load_balancers.iter().map(|l| l.name.clone()))
            .collect()
    };
    assert_eq!(names(&ma), names(&mb));
    assert_eq!(ma.vpcs, mb.vpcs);
    assert_eq!(
        ma.load_balancers[0].listeners,
        mb.load_balancers[0].listeners
    );
}

#[test]
fn cloudmapper_paths_give_account_and_region() {
    let s = Source::of(Path::new(
        "/data/account-data/demo/eu-west-1/elbv2-describe-target-health/arn%3Aaws%3Ax.json",
    ));
    assert_eq!(s.account.as_deref(), Some("demo"));
    assert_eq!(s.region.as_deref(), Some("eu-west-1"));
    assert_eq!(s.resource.as_deref(), Some("arn:aws:x"));
    assert_eq!(s.folder.as_deref(), Some("elbv2-describe-target-health"));
    let s = Source::of(Path::new("snap/aws_configs/us-gov-west-1/vpcs.json"));
    assert_eq!(s.region.as_deref(), Some("us-gov-west-1"));
    assert_eq!(s.account, None);
    // A VPC without OwnerId takes the CloudMapper account.
    let i = run(vec![doc(
        "account-data/demo/eu-west-1/ec2-describe-vpcs.json",
        json!({"Vpcs": [{"VpcId": "vpc-1", "CidrBlock": "10.0.0.0/16"}]}),
    )]);
    assert_eq!(i.model.vpcs[0].account.as_deref(), Some("demo"));
}

/// A small account: a VPC, a subnet, two groups referencing each other, an
/// ENI in each.
fn account() -> Vec<Document> {
    let sgs = json!({"SecurityGroups": [
        {"GroupId": "sg-0web", "GroupName": "web", "Description": "web", "OwnerId": "1", "VpcId": "vpc-0a1",
         "IpPermissions": [
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
             "Ipv6Ranges": [{"CidrIpv6": "::/0"}]},
            {"IpProtocol": "icmp", "FromPort": 8, "ToPort": -1, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
            {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": "sg-0web", "UserId": "1"}]},
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "192.0.2.77/28"}],
             "PrefixListIds": [{"PrefixListId": "pl-0office"}]}],
         "IpPermissionsEgress": [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]},
        {"GroupId": "sg-0db", "GroupName": "db", "Description": "db", "OwnerId": "1", "VpcId": "vpc-0a1",
         "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
            "UserIdGroupPairs": [{"GroupId": "sg-0web", "UserId": "1"}]},
            {"IpProtocol": "50", "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}],
         "IpPermissionsEgress": []}
    ]});
    let pls = json!({"PrefixLists": [{"PrefixListId": "pl-0office", "PrefixListName": "office",
                                      "MaxEntries": 5, "OwnerId": "1", "AddressFamily": "IPv4"}]});
    let entries = json!({"Entries": [{"Cidr": "203.0.113.0/24"}]});
    let enis = json!({"NetworkInterfaces": [
        {"NetworkInterfaceId": "eni-0w", "PrivateIpAddress": "10.0.1.10", "SubnetId": "subnet-0c1", "VpcId": "vpc-0a1",
         "PrivateIpAddresses": [{"PrivateIpAddress": "10.0.1.10", "Primary": true}],
         "Ipv6Addresses": [{"Ipv6Address": "2001:db8:1::10"}],
         "Groups": [{"GroupId": "sg-0web"}], "InterfaceType": "interface",
         "ConnectionTrackingConfiguration": {"TcpEstablishedTimeout": 3600}},
        {"NetworkInterfaceId": "eni-0d", "PrivateIpAddress": "10.0.1.20", "SubnetId": "subnet-0c1",
         "Groups": [{"GroupId": "sg-0db"}, {"GroupId": "sg-0web"}]}
    ]});
    let mut docs = topology();
    docs.extend([
        doc("acct/sgs.json", sgs),
        doc("acct/pls.json", pls),
        doc("acct/entries/pl-0office.json", entries),
        doc("acct/enis.json", enis),
    ]);
    docs
}

#[test]
fn compile_accepts_an_imported_account() {
    let i = run(account());
    assert!(
        i.model.external_groups.is_empty(),
        "{:?}",
        i.model.external_groups
    );
    let policy = Policy::compile(&i.model).unwrap_or_else(|e| panic!("{e}"));
    drop(policy);
}

#[test]
fn compile_accepts_references_to_external_groups() {
    let mut docs = account();
    docs.push(doc(
        "acct/more.json",
        sg(json!([{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
                   "UserIdGroupPairs": [{"GroupId": "sg-0other", "UserId": "2"}]}])),
    ));
    let i = run(docs);
    assert_eq!(i.model.external_groups.len(), 1);
    Policy::compile(&i.model).unwrap_or_else(|e| panic!("{e}"));
}
