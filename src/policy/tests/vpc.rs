//! VPCs as address spaces (SPEC §6): the same CIDR in two VPCs, group
//! references within a VPC and its peers, `--vpc`, and what an imported
//! policy may reference without defining.

use super::*;
use crate::policy::model::{self, At, Model, Remote};

fn net(s: &str) -> At<ipnet::IpNet> {
    At::bare(parse_net(s).unwrap())
}

fn vpc(name: &str, cidr: &str, peers: &[&str]) -> model::Vpc {
    model::Vpc {
        name: name.into(),
        cidrs: vec![net(cidr)],
        peers: peers.iter().map(|p| At::bare(p.to_string())).collect(),
        ..Default::default()
    }
}

/// A group in `vpc` allowing tcp/`port` from `from` (a CIDR or a group).
fn group(name: &str, vpc: &str, port: u16, from: &str) -> model::SecurityGroup {
    let mut r = model::Rule::new(
        ProtoMatch::Is(IpProto::TCP),
        vec![At::bare(from.parse::<Remote>().unwrap())],
    );
    r.ports = Some(At::bare(vec![PortRange { lo: port, hi: port }]));
    let all_out = model::Rule::new(
        ProtoMatch::Any,
        vec![At::bare("0.0.0.0/0".parse().unwrap())],
    );
    model::SecurityGroup {
        name: name.into(),
        vpc: Some(At::bare(vpc.into())),
        ingress: vec![r],
        egress: vec![all_out],
        ..Default::default()
    }
}

fn eni(name: &str, vpc: &str, addr: &str, sg: &str) -> model::Interface {
    model::Interface {
        name: name.into(),
        addresses: At::bare(vec![net(addr)]),
        security_groups: vec![At::bare(sg.into())],
        place: model::InterfacePlace {
            vpc: Some(At::bare(vpc.into())),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// vpc-a and vpc-b both use 10.0.0.0/16 (not peered); vpc-c (10.2.0.0/16)
/// is peered with vpc-a. Every group admits tcp/80 from one source.
fn three_vpcs() -> Model {
    Model {
        source: "vpcs".into(),
        vpcs: vec![
            vpc("vpc-a", "10.0.0.0/16", &["vpc-c"]),
            vpc("vpc-b", "10.0.0.0/16", &[]),
            vpc("vpc-c", "10.2.0.0/16", &[]),
        ],
        security_groups: vec![
            group("sg-a", "vpc-a", 80, "10.0.0.0/16"),
            group("sg-b", "vpc-b", 80, "10.0.9.9/32"),
            group("sg-c", "vpc-c", 80, "sg-a"),
        ],
        interfaces: vec![
            eni("eni-a", "vpc-a", "10.0.1.10", "sg-a"),
            eni("eni-a2", "vpc-a", "10.0.1.20", "sg-a"),
            eni("eni-b", "vpc-b", "10.0.1.10", "sg-b"),
            eni("eni-c", "vpc-c", "10.2.1.10", "sg-c"),
        ],
        ..Default::default()
    }
}

fn ip(s: &str) -> std::net::IpAddr {
    s.parse().unwrap()
}

fn tcp80(src: &str, dst: &str, zone: Option<ZoneId>) -> Flow {
    let mut f = Flow::other(ip(src), ip(dst), IpProto::TCP).in_zone(zone);
    f.sport = Some(40000);
    f.dport = Some(80);
    f
}

#[test]
fn the_same_cidr_in_two_vpcs_compiles_and_each_vpc_owns_its_addresses() {
    let mut p = Policy::compile(&three_vpcs()).unwrap();
    let t = p.topology();
    assert!(t.spaced());
    let (a, b) = (t.vpc_id("vpc-a").unwrap(), t.vpc_id("vpc-b").unwrap());
    let (sa, sb) = (t.space(a), t.space(b));
    assert_ne!(sa, sb);
    let x = ip("10.0.1.10");
    assert_eq!(p.interface_of(x, sa), p.interface_id("eni-a"));
    assert_eq!(p.interface_of(x, sb), p.interface_id("eni-b"));
    // A flow log's name as bytes finds the same; bytes that are no
    // UTF-8 (nor any name) find none.
    let eni_b = p.interface_id("eni-b").unwrap();
    assert_eq!(p.interface_named(b"eni-b"), Some(eni_b));
    assert_eq!(p.interface_named(b"eni-\xffb"), None);
    // The addresses alone do not say which VPC: neither end is known.
    assert_eq!(p.zone_of(None, ip("10.0.1.20"), x), None);
    let e = p.evaluate(&tcp80("10.0.1.20", "10.0.1.10", None));
    assert_eq!(e.reason, Reason::UnknownAddress);
    // In vpc-a, eni-a2 reaches eni-a (sg-a admits 10.0.0.0/16); in vpc-b
    // the same packet reaches eni-b, whose group admits only 10.0.9.9.
    let e = p.evaluate(&tcp80("10.0.1.20", "10.0.1.10", sa));
    assert_eq!((e.verdict, e.reason), (Verdict::Allow, Reason::Rule));
    let e = p.evaluate(&tcp80("10.0.1.20", "10.0.1.10", sb));
    assert_eq!((e.verdict, e.reason), (Verdict::Deny, Reason::NoRule));
    assert_eq!(
        e.deciding().unwrap().interface,
        p.interface_id("eni-b").unwrap()
    );
    // `--vpc` makes every packet's space the named VPC's.
    p.judge_in_vpc("vpc-b").unwrap();
    assert_eq!(p.zone_of(None, ip("10.0.1.20"), x), sb);
    let err = p.judge_in_vpc("vpc-z").unwrap_err().to_string();
    assert!(
        err.contains("unknown VPC `vpc-z`") && err.contains("vpc-a, vpc-b, vpc-c"),
        "{err}"
    );
}

#[test]
fn group_references_reach_peered_vpcs_and_both_directions_share_a_space() {
    let p = Policy::compile(&three_vpcs()).unwrap();
    let t = p.topology();
    let (a, c) = (t.vpc_id("vpc-a").unwrap(), t.vpc_id("vpc-c").unwrap());
    // 10.2.1.10 belongs to vpc-c alone; 10.0.1.20 to vpc-a and vpc-b, so
    // the flow's space comes from its other end, in both directions.
    let fwd = p.zone_of(None, ip("10.0.1.20"), ip("10.2.1.10"));
    let back = p.zone_of(None, ip("10.2.1.10"), ip("10.0.1.20"));
    assert_eq!(fwd, t.space(c));
    assert_eq!(fwd, back);
    // From vpc-c's space, vpc-a's interfaces are visible through the peering.
    assert_eq!(
        p.interface_of(ip("10.0.1.20"), fwd),
        p.interface_id("eni-a2")
    );
    // sg-c admits members of sg-a (in the peered VPC).
    let e = p.evaluate(&tcp80("10.0.1.20", "10.2.1.10", fwd));
    assert_eq!(
        (e.verdict, e.reason),
        (Verdict::Allow, Reason::Rule),
        "{e:?}"
    );
    // vpc-b's 10.0.1.10 is not visible from vpc-c.
    let _ = a;
    assert_eq!(
        p.interface_of(ip("10.0.1.10"), fwd),
        p.interface_id("eni-a")
    );
}

#[test]
fn a_hand_written_reference_across_unpeered_vpcs_is_an_error() {
    let mut m = three_vpcs();
    m.security_groups[1] = group("sg-b", "vpc-b", 80, "sg-a");
    let e = Policy::compile(&m).unwrap_err().to_string();
    assert!(e.contains("not peered"), "{e}");
    let mut m = three_vpcs();
    m.interfaces[0].security_groups = vec![At::bare("sg-b".into())];
    let e = Policy::compile(&m).unwrap_err().to_string();
    assert!(
        e.contains("a group attaches only to interfaces of its VPC"),
        "{e}"
    );
    let mut m = three_vpcs();
    m.interfaces[0].place.vpc = Some(At::bare("vpc-nope".into()));
    let e = Policy::compile(&m).unwrap_err().to_string();
    assert!(e.contains("unknown VPC `vpc-nope`"), "{e}");
}

#[test]
fn an_imported_policy_keeps_what_its_input_did_not_contain_as_references() {
    let mut m = three_vpcs();
    m.imported = Some(model::Imported {
        provider: "aws".into(),
        inputs: vec!["describe-security-groups.json".into()],
    });
    m.security_groups[1] = group("sg-b", "vpc-b", 80, "sg-a");
    m.security_groups[0].ingress.push(model::Rule::new(
        ProtoMatch::Any,
        vec![At::bare(Remote::Sg("sg-0other".into()))],
    ));
    m.security_groups[0].ingress.push(model::Rule::new(
        ProtoMatch::Any,
        vec![At::bare(Remote::Sg("sg-0peer".into()))],
    ));
    m.security_groups[0].ingress.push(model::Rule::new(
        ProtoMatch::Any,
        vec![At::bare(Remote::PrefixList("pl-0aws".into()))],
    ));
    m.external_groups.push(model::ExternalGroup {
        name: "sg-0peer".into(),
        account: Some("222233334444".into()),
        peering: Some("pcx-0123".into()),
        status: Some("active".into()),
        ..Default::default()
    });
    m.interfaces[0].place.subnet = Some(At::bare("subnet-gone".into()));
    let p = Policy::compile(&m).unwrap();
    let kinds: Vec<(&str, String)> = p
        .warnings()
        .into_iter()
        .map(|w| (w.kind, w.message))
        .collect();
    let has = |k: &str, text: &str| kinds.iter().any(|(kk, m)| *kk == k && m.contains(text));
    assert!(has("unknown-sg", "sg-0other"), "{kinds:?}");
    assert!(
        has("unknown-peered-sg", "account 222233334444, via pcx-0123"),
        "{kinds:?}"
    );
    assert!(has("unknown-prefix-list", "pl-0aws"), "{kinds:?}");
    assert!(has("unknown-reference", "not peered"), "{kinds:?}");
    assert!(
        has("unknown-reference", "unknown subnet `subnet-gone`"),
        "{kinds:?}"
    );
    // References to what is not there match nothing: sg-b's only rule
    // lost its source, so nothing reaches eni-b.
    let sb = p.topology().space(p.topology().vpc_id("vpc-b").unwrap());
    let e = p.evaluate(&tcp80("10.0.1.20", "10.0.1.10", sb));
    assert_eq!(e.reason, Reason::NoRule);
}

#[test]
fn aws_quotas_count_sources_and_prefix_lists_at_their_size() {
    let mut m = three_vpcs();
    let many: Vec<At<Remote>> = (0..61)
        .map(|i| At::bare(format!("192.0.2.{i}/32").parse().unwrap()))
        .collect();
    m.security_groups[0]
        .ingress
        .push(model::Rule::new(ProtoMatch::Any, many));
    m.prefix_lists.push(model::PrefixList {
        name: "pl-big".into(),
        entries: vec![net("198.51.100.0/24")],
        max_entries: Some(At::bare(70)),
        ..Default::default()
    });
    m.security_groups[1].egress.push(model::Rule::new(
        ProtoMatch::Any,
        vec![At::bare(Remote::PrefixList("pl-big".into()))],
    ));
    let groups: Vec<model::SecurityGroup> = (0..6)
        .map(|i| group(&format!("sg-x{i}"), "vpc-c", 80, "10.2.0.0/16"))
        .collect();
    m.interfaces[3].security_groups = groups.iter().map(|g| At::bare(g.name.clone())).collect();
    m.security_groups.extend(groups);
    let p = Policy::compile(&m).unwrap();
    let w = p.quota_warnings(check::Profile::Aws);
    let msgs: Vec<String> = w
        .iter()
        .map(|w| format!("{}: {}", w.kind, w.message))
        .collect();
    assert!(
        msgs.iter().any(|m| m.contains("sg-a has 62 inbound IPv4")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter().any(|m| m.contains("sg-b has 71 outbound IPv4")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("quota-sgs-per-eni") && m.contains("eni-c has 6")),
        "{msgs:?}"
    );
    assert!(!msgs.iter().any(|m| m.contains("eni-a ")), "{msgs:?}");
    assert!(Policy::compile(&three_vpcs())
        .unwrap()
        .quota_warnings(check::Profile::Aws)
        .is_empty());
}

/// A reference is read back from a policy file by its prefix, so a name
/// without `sg-`/`pl-` is an error even where the import would keep an
/// unknown group (found by the `import_aws` fuzz target:
/// fuzz/regressions/import_aws/).
#[test]
fn references_must_be_named_like_what_they_reference() {
    let mut m = three_vpcs();
    m.imported = Some(model::Imported::default());
    m.security_groups[0].ingress.push(model::Rule::new(
        ProtoMatch::Any,
        vec![At::bare(Remote::Sg("&g-app".into()))],
    ));
    m.security_groups[0].egress.push(model::Rule::new(
        ProtoMatch::Any,
        vec![At::bare(Remote::PrefixList("list".into()))],
    ));
    let e = Policy::compile(&m).unwrap_err().to_string();
    assert!(e.contains("`&g-app` is not a security group"), "{e}");
    assert!(e.contains("`list` is not a prefix list"), "{e}");
}
