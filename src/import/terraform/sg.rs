//! Security groups: `aws_security_group` with its inline `ingress` and
//! `egress` blocks, and the separate rule resources
//! (`aws_security_group_rule`, `aws_vpc_security_group_ingress_rule` and
//! `_egress_rule`), with AWS's semantics: one model rule per source,
//! protocol `-1` is every protocol and port, ICMP ports are type and code.
//!
//! Terraform's `aws_security_group` removes the allow-all egress rule AWS
//! gives every new group unless the configuration writes it: a group with
//! no `egress` blocks has no egress rules here either.

use ipnet::IpNet;

use super::block::Block;
use super::doc::{Doc, Got, Resource};
use super::Out;
use crate::import::ImportError;
use crate::policy::model::{At, Origin, Remote, Rule, SecurityGroup};
use crate::policy::types::{parse_net, Action, PortRange, ProtoMatch};

pub(super) const RULE_TYPES: &[&str] = &[
    "aws_security_group_rule",
    "aws_vpc_security_group_ingress_rule",
    "aws_vpc_security_group_egress_rule",
];

/// The groups, then the rules of separate rule resources added to them.
pub(super) fn import(doc: &Doc, out: &mut Out) -> Result<(), ImportError> {
    for r in doc.managed("aws_security_group") {
        group(doc, r, out)?;
    }
    for r in doc.resources.iter().filter(|r| !r.data) {
        if RULE_TYPES.contains(&r.kind) {
            separate_rule(doc, r, out)?;
        }
    }
    Ok(())
}

fn group(doc: &Doc, r: &Resource, out: &mut Out) -> Result<(), ImportError> {
    let b = Block::of(doc, r);
    let name = doc.id(r).to_string();
    let mut sg = SecurityGroup {
        name: name.clone(),
        origin: r.values.origin(),
        description: out.got(r, b.str("description")?).flatten().map(|d| d.value),
        title: out.got(r, b.str("name")?).flatten().map(|d| d.value),
        vpc: out
            .got(r, b.str("vpc_id")?)
            .flatten()
            .map(|v| At::new(doc.model_id(&v.value), v.origin)),
        ..SecurityGroup::default()
    };
    for (egress, key) in [(false, "ingress"), (true, "egress")] {
        let Some(blocks) = out.got(r, b.blocks(key)?) else {
            continue;
        };
        for blk in blocks {
            match inline_rules(doc, &blk, &name)? {
                Ok(rules) if egress => sg.egress.extend(rules),
                Ok(rules) => sg.ingress.extend(rules),
                Err(why) => out.skip(&r.address, blk.origin(), format!("an {key} block: {why}")),
            }
        }
    }
    out.model.security_groups.push(sg);
    Ok(())
}

/// The rules of one inline block: one per source.
fn inline_rules(doc: &Doc, b: &Block, group: &str) -> Result<Got<Vec<Rule>>, ImportError> {
    let shape = match shape(b, "protocol")? {
        Ok(s) => s,
        Err(why) => return Ok(Err(why)),
    };
    let mut remotes = Vec::new();
    for key in [
        "cidr_blocks",
        "ipv6_cidr_blocks",
        "prefix_list_ids",
        "security_groups",
    ] {
        match b.strings(key)? {
            Ok(v) => {
                for s in v {
                    match remote(doc, &s) {
                        Ok(r) => remotes.push(r),
                        Err(why) => return Ok(Err(format!("`{key}`: {why}"))),
                    }
                }
            }
            Err(why) => return Ok(Err(why)),
        }
    }
    match b.bool("self")? {
        Ok(Some(true)) => remotes.push(At::new(Remote::Sg(group.to_string()), b.origin())),
        Ok(_) => {}
        Err(why) => return Ok(Err(why)),
    }
    if remotes.is_empty() {
        return Ok(Err("it names no source or destination".into()));
    }
    let description = match b.str("description")? {
        Ok(d) => d.map(|d| d.value),
        Err(why) => return Ok(Err(why)),
    };
    Ok(Ok(remotes
        .into_iter()
        .map(|remote| shape.rule(b.origin(), remote, description.clone(), None))
        .collect()))
}

/// `aws_security_group_rule` and the `aws_vpc_security_group_*_rule`s.
fn separate_rule(doc: &Doc, r: &Resource, out: &mut Out) -> Result<(), ImportError> {
    let b = Block::of(doc, r);
    let rules = match rule_resource(doc, r, &b)? {
        Ok(x) => x,
        Err(why) => {
            out.skip(&r.address, r.values.origin(), why);
            return Ok(());
        }
    };
    let (group, egress, rules) = rules;
    match out
        .model
        .security_groups
        .iter_mut()
        .find(|g| g.name == group)
    {
        Some(g) if egress => g.egress.extend(rules),
        Some(g) => g.ingress.extend(rules),
        None => out.skip(
            &r.address,
            r.values.origin(),
            format!("its security group `{group}` is not in the input"),
        ),
    }
    Ok(())
}

type RuleSet = (String, bool, Vec<Rule>);

fn rule_resource(doc: &Doc, r: &Resource, b: &Block) -> Result<Got<RuleSet>, ImportError> {
    let group = match b.str("security_group_id")? {
        Ok(Some(g)) => doc.model_id(&g.value),
        Ok(None) => return Ok(Err("`security_group_id` is missing".into())),
        Err(why) => return Ok(Err(why)),
    };
    let legacy = r.kind == "aws_security_group_rule";
    let egress = if legacy {
        match b.str("type")? {
            Ok(Some(t)) if t.value == "egress" => true,
            Ok(Some(t)) if t.value == "ingress" => false,
            Ok(other) => {
                return Ok(Err(format!(
                    "`type` is {:?}: expected ingress or egress",
                    other.map(|t| t.value)
                )))
            }
            Err(why) => return Ok(Err(why)),
        }
    } else {
        r.kind.ends_with("egress_rule")
    };
    let shape = match shape(b, if legacy { "protocol" } else { "ip_protocol" })? {
        Ok(s) => s,
        Err(why) => return Ok(Err(why)),
    };
    let keys: &[&str] = if legacy {
        &[
            "cidr_blocks",
            "ipv6_cidr_blocks",
            "prefix_list_ids",
            "source_security_group_id",
        ]
    } else {
        &[
            "cidr_ipv4",
            "cidr_ipv6",
            "prefix_list_id",
            "referenced_security_group_id",
        ]
    };
    let mut remotes = Vec::new();
    for key in keys {
        let v = match b.strings(key)? {
            Ok(v) => v,
            Err(why) => return Ok(Err(why)),
        };
        for s in v {
            match remote(doc, &s) {
                Ok(x) => remotes.push(x),
                Err(why) => return Ok(Err(format!("`{key}`: {why}"))),
            }
        }
    }
    if legacy {
        match b.bool("self")? {
            Ok(Some(true)) => remotes.push(At::new(Remote::Sg(group.clone()), b.origin())),
            Ok(_) => {}
            Err(why) => return Ok(Err(why)),
        }
    }
    if remotes.is_empty() {
        return Ok(Err("it names no source or destination".into()));
    }
    let description = b.str("description")?.ok().flatten().map(|d| d.value);
    let id = ["security_group_rule_id", "id"]
        .iter()
        .filter(|k| !b.is_unknown(k))
        .find_map(|k| r.values.value.get(*k).and_then(|v| v.as_str()))
        .filter(|s| s.starts_with("sgr-"))
        .map(str::to_string);
    let rules = remotes
        .into_iter()
        .map(|remote| shape.rule(r.values.origin(), remote, description.clone(), id.clone()))
        .collect();
    Ok(Ok((group, egress, rules)))
}

/// A source or destination: a CIDR (host bits dropped, as AWS accepts
/// them), a prefix list or a group.
fn remote(doc: &Doc, s: &At<String>) -> Got<At<Remote>> {
    let v = s.value.as_str();
    let r = if v.starts_with("pl-") {
        Remote::PrefixList(doc.model_id(v))
    } else if v.starts_with("sg-") {
        Remote::Sg(doc.model_id(v))
    } else {
        match parse_net(v) {
            Ok(n) => Remote::Net(n.trunc()),
            Err(_) => {
                // A group given by name (default VPC) or anything else.
                return Err(format!(
                    "`{v}` is neither a CIDR, a prefix list nor a group id"
                ));
            }
        }
    };
    Ok(At::new(r, s.origin.clone()))
}

/// A rule's protocol and ports, as AWS reads them.
#[derive(Clone)]
pub(super) struct Shape {
    proto: ProtoMatch,
    ports: Option<At<Vec<PortRange>>>,
    icmp_type: Option<At<i64>>,
    icmp_code: Option<At<i64>>,
}

impl Shape {
    fn rule(
        &self,
        origin: Origin,
        remote: At<Remote>,
        description: Option<String>,
        id: Option<String>,
    ) -> Rule {
        let mut rule = Rule::new(self.proto, vec![remote]);
        rule.origin = origin;
        rule.ports = self.ports.clone();
        rule.icmp_type = self.icmp_type.clone();
        rule.icmp_code = self.icmp_code.clone();
        rule.action = Action::Allow;
        rule.description = description;
        rule.id = id;
        rule
    }
}

fn shape(b: &Block, proto_key: &str) -> Result<Got<Shape>, ImportError> {
    let proto = match b.str(proto_key)? {
        Ok(Some(p)) => p,
        Ok(None) => return Ok(Err(format!("`{proto_key}` is missing"))),
        Err(why) => return Ok(Err(why)),
    };
    let from = match b.int("from_port")? {
        Ok(v) => v,
        Err(why) => return Ok(Err(why)),
    };
    let to = match b.int("to_port")? {
        Ok(v) => v,
        Err(why) => return Ok(Err(why)),
    };
    Ok(protocol_shape(&proto, from, to))
}

/// AWS: `-1`/`all` and protocols other than tcp, udp, icmp and icmpv6 are
/// every port; tcp/udp `from`-`to` (0-65535 is all); ICMP `from` is the
/// type and `to` the code, `-1` any.
pub(super) fn protocol_shape(
    proto: &At<String>,
    from: Option<At<i64>>,
    to: Option<At<i64>>,
) -> Got<Shape> {
    let p = proto.value.to_ascii_lowercase();
    let proto_match = match p.as_str() {
        "-1" | "all" => ProtoMatch::Any,
        other => other.parse::<ProtoMatch>().map_err(|_| {
            format!(
                "protocol `{}` is not tcp, udp, icmp, icmpv6, -1 or a number 0-255",
                proto.value
            )
        })?,
    };
    let mut shape = Shape {
        proto: proto_match,
        ports: None,
        icmp_type: None,
        icmp_code: None,
    };
    if proto_match.has_ports() {
        shape.ports = port_range(from, to)?;
    } else if proto_match.is_icmp() {
        shape.icmp_type = from.filter(|f| f.value != -1);
        shape.icmp_code = to.filter(|t| t.value != -1);
    }
    Ok(shape)
}

fn port_range(from: Option<At<i64>>, to: Option<At<i64>>) -> Got<Option<At<Vec<PortRange>>>> {
    let (lo, hi) = match (from, to) {
        (None, None) => return Ok(None),
        (Some(f), None) => (f.clone(), f),
        (None, Some(t)) => (t.clone(), t),
        (Some(f), Some(t)) => (f, t),
    };
    if (lo.value == -1 && hi.value == -1) || (lo.value == 0 && hi.value == 65535) {
        return Ok(None);
    }
    let ok = |n: i64| (0..=65535).contains(&n);
    if !ok(lo.value) || !ok(hi.value) || lo.value > hi.value {
        return Err(format!(
            "ports {}-{} are not a range within 0-65535",
            lo.value, hi.value
        ));
    }
    Ok(Some(At::new(
        vec![PortRange {
            lo: lo.value as u16,
            hi: hi.value as u16,
        }],
        lo.origin,
    )))
}

/// The block a CIDR string names, host bits dropped; `None` for anything else.
pub(super) fn net(s: &str) -> Option<IpNet> {
    parse_net(s).ok().map(|n| n.trunc())
}
