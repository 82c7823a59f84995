//! Models built in code, as the cloud importers build them: they compile
//! like a policy file, and every problem names the file and JSON path of
//! what it is about.

use super::*;
use crate::policy::model::{self, At, Model, Origin, Remote};

const FILE: &str = "aws/describe-security-groups.json";

fn json(path: &str) -> Origin {
    Origin::json(FILE, path)
}

fn perm(g: usize, p: usize) -> String {
    format!("$.SecurityGroups[{g}].IpPermissions[{p}]")
}

fn net(s: &str, origin: Origin) -> At<ipnet::IpNet> {
    At::new(parse_net(s).unwrap(), origin)
}

/// sg-web allows tcp/443 from anywhere; eni-web has it.
fn web() -> Model {
    let mut rule = model::Rule::new(
        ProtoMatch::Is(IpProto::TCP),
        vec![At::new(
            Remote::Net("0.0.0.0/0".parse().unwrap()),
            json(&perm(0, 0)),
        )],
    );
    rule.origin = json(&perm(0, 0));
    rule.ports = Some(At::new(
        vec![PortRange { lo: 443, hi: 443 }],
        json(&perm(0, 0)),
    ));
    Model {
        source: FILE.into(),
        security_groups: vec![model::SecurityGroup {
            name: "sg-web".into(),
            origin: json("$.SecurityGroups[0]"),
            ingress: vec![rule],
            ..Default::default()
        }],
        interfaces: vec![model::Interface {
            name: "eni-web".into(),
            origin: Origin::json("aws/enis.json", "$.NetworkInterfaces[0]"),
            addresses: At::bare(vec![net("10.0.0.2", Origin::None)]),
            security_groups: vec![At::bare("sg-web".into())],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn errors(m: &Model) -> Vec<String> {
    match Policy::compile(m) {
        Ok(_) => panic!("the model should be rejected"),
        Err(e) => e.diagnostics().iter().map(|d| d.to_string()).collect(),
    }
}

#[test]
fn compiles_like_a_file() {
    let p = Policy::compile(&web()).unwrap();
    assert_eq!(p.source(), FILE);
    allowed_by(&p, &tcp("192.0.2.1", "10.0.0.2", 443), "sg-web/ingress/0");
    denied(&p, &tcp("192.0.2.1", "10.0.0.2", 80), Reason::NoRule, None);
    let r = p.rule(p.security_group(0).ingress[0]);
    assert_eq!((r.origin.clone(), r.line()), (json(&perm(0, 0)), 0));
}

#[test]
fn errors_name_the_file_and_json_path() {
    let mut m = web();
    let g = &mut m.security_groups[0];
    let mut bad = model::Rule::new(
        ProtoMatch::Is(IpProto::ICMP),
        vec![
            At::new(
                Remote::Sg("sg-nope".into()),
                json(&format!("{}.UserIdGroupPairs[0]", perm(0, 1))),
            ),
            At::new(
                Remote::Net("10.0.0.1/8".parse().unwrap()),
                json(&format!("{}.IpRanges[0]", perm(0, 1))),
            ),
        ],
    );
    bad.origin = json(&perm(0, 1));
    bad.ports = Some(At::new(
        vec![PortRange { lo: 80, hi: 80 }],
        json(&format!("{}.FromPort", perm(0, 1))),
    ));
    bad.priority = Some(At::new(0, json(&format!("{}.Priority", perm(0, 1)))));
    g.ingress.push(bad);
    g.egress.push(model::Rule {
        origin: json("$.SecurityGroups[0].IpPermissionsEgress[0]"),
        ..model::Rule::new(ProtoMatch::Any, vec![])
    });
    m.interfaces[0].addresses.value.push(net(
        "10.0.0.2/31",
        json("$.NetworkInterfaces[0].PrivateIpAddresses[1]"),
    ));
    let e = errors(&m);
    let p1 = perm(0, 1);
    let expect = [
        format!("{FILE}:{p1}.UserIdGroupPairs[0]: unknown security group `sg-nope` (defined: sg-web)"),
        format!("{FILE}:{p1}.IpRanges[0]: `10.0.0.1/8` has host bits set: did you mean 10.0.0.0/8?"),
        format!("{FILE}:{p1}.FromPort: `ports = \"80\"` on protocol icmp, which has no ports"),
        format!("{FILE}:{p1}.Priority: priority 0 is out of range: expected 1-65535"),
        format!("{FILE}:$.SecurityGroups[0].IpPermissionsEgress[0]: this egress rule has no `to`"),
        format!("{FILE}:$.NetworkInterfaces[0].PrivateIpAddresses[1]: this address overlaps another address of the same interface"),
    ];
    assert_eq!(e.len(), expect.len(), "{e:#?}");
    for want in &expect {
        assert!(
            e.iter().any(|got| got.starts_with(want.as_str())),
            "{want}\nnot in {e:#?}"
        );
    }
}

#[test]
fn names_and_lists_are_checked_at_their_origin() {
    let mut m = web();
    m.security_groups[0].name = "web".into();
    m.prefix_lists.push(model::PrefixList {
        name: "office".into(),
        origin: json("$.PrefixLists[0]"),
        entries: vec![net("203.0.113.7/24", json("$.PrefixLists[0].Entries[0]"))],
        ..Default::default()
    });
    m.interfaces[0].security_groups.push(At::new(
        "sg-web".into(),
        json("$.NetworkInterfaces[0].Groups[1]"),
    ));
    m.interfaces.push(model::Interface {
        name: "eni-empty".into(),
        addresses: At::new(vec![], json("$.NetworkInterfaces[1].PrivateIpAddresses")),
        ..Default::default()
    });
    m.conntrack.udp = Some(At::new(
        -3,
        json("$.ConnectionTrackingSpecification.UdpTimeout"),
    ));
    let e = errors(&m);
    let expect = [
        format!("{FILE}:$.SecurityGroups[0]: security group name `web` must start with `sg-`"),
        format!("{FILE}:$.PrefixLists[0]: prefix list name `office` must start with `pl-`"),
        format!("{FILE}:$.PrefixLists[0].Entries[0]: `203.0.113.7/24` has host bits set"),
        format!("{FILE}:$.NetworkInterfaces[1].PrivateIpAddresses: interface `eni-empty` has no addresses"),
        format!("{FILE}:$.ConnectionTrackingSpecification.UdpTimeout: `udp = -3` is out of range"),
        // The group is unknown now that it is named `web`.
        format!("{FILE}:$.NetworkInterfaces[0].Groups[1]: unknown security group `sg-web`"),
    ];
    for want in &expect {
        assert!(
            e.iter().any(|got| got.starts_with(want.as_str())),
            "{want}\nnot in {e:#?}"
        );
    }
}

#[test]
fn without_an_origin_the_source_is_named() {
    let mut m = web();
    m.interfaces[0]
        .security_groups
        .push(At::bare("sg-gone".into()));
    let e = errors(&m);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(
        e[0].starts_with(&format!("{FILE}: unknown security group `sg-gone`")),
        "{}",
        e[0]
    );
}

#[test]
fn the_file_reads_into_the_same_model() {
    let text = "[security_groups.sg-web]\ningress = [ { proto = \"tcp\", ports = \"443\", from = \"0.0.0.0/0\" } ]\n\
                [interfaces.eni-web]\naddresses = [\"10.0.0.2\"]\nsecurity_groups = [\"sg-web\"]\n";
    let m = Model::from_toml(text, FILE).unwrap();
    let strip = |mut m: Model| {
        for g in &mut m.security_groups {
            g.origin = Origin::None;
            for r in &mut g.ingress {
                r.origin = Origin::None;
                r.remote.iter_mut().for_each(|x| x.origin = Origin::None);
                r.ports.iter_mut().for_each(|x| x.origin = Origin::None);
            }
        }
        for i in &mut m.interfaces {
            i.origin = Origin::None;
            i.addresses.origin = Origin::None;
            i.addresses
                .value
                .iter_mut()
                .for_each(|x| x.origin = Origin::None);
            i.security_groups
                .iter_mut()
                .for_each(|x| x.origin = Origin::None);
        }
        m
    };
    assert_eq!(strip(m), strip(web()));
}
