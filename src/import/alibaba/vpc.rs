//! VPCs (`DescribeVpcs`), vSwitches as subnets (`DescribeVSwitches`) and
//! network ACLs (`DescribeNetworkAcls`, `DescribeNetworkAclAttributes`),
//! which SPEC §9.1 evaluates statelessly.
//!
//! Alibaba's ACL entries carry no numbers: they are evaluated in the order
//! the API lists them, first match wins. They are numbered 1, 2, … in that
//! order, which keeps the order and names each entry by its position.

use super::recognise::Inputs;
use super::{add_unique, at_value, block, need_value, text, value, Build};
use crate::import::json::Node;
use crate::import::ImportError;
use crate::policy::model::{AclRule, At, NetworkAcl, Subnet, Vpc};
use crate::policy::types::{Action, IpProto, PortRange, ProtoMatch};

pub(super) fn convert(b: &mut Build, inputs: &Inputs) -> Result<(), ImportError> {
    for n in &inputs.vpcs {
        vpc(b, n)?;
    }
    for n in &inputs.vswitches {
        vswitch(b, n)?;
    }
    for n in &inputs.network_acls {
        network_acl(b, n)?;
    }
    Ok(())
}

fn vpc(b: &mut Build, n: &Node) -> Result<(), ImportError> {
    let id = need_value(n, "VpcId")?;
    if b.vpcs.contains_key(id) {
        return Ok(());
    }
    let mut cidrs = Vec::new();
    add_unique(&mut cidrs, block(n, "CidrBlock")?);
    if let Some(s) = n.get("SecondaryCidrBlocks") {
        for c in s.array("SecondaryCidrBlock")? {
            add_unique(&mut cidrs, item_block(&c)?);
        }
    }
    add_unique(&mut cidrs, block(n, "Ipv6CidrBlock")?);
    if let Some(s) = n.get("Ipv6CidrBlocks") {
        for c in s.array("Ipv6CidrBlock")? {
            add_unique(&mut cidrs, block(&c, "Ipv6CidrBlock")?);
        }
    }
    let vpc = Vpc {
        name: id.to_string(),
        origin: n.origin(),
        cidrs,
        account: owner(n)?,
        region: text(n, "RegionId")?,
        title: text(n, "VpcName")?,
        ..Vpc::default()
    };
    b.vpcs.insert(id.to_string(), vpc);
    Ok(())
}

/// An element of a list of CIDR strings.
fn item_block(c: &Node) -> Result<Option<At<ipnet::IpNet>>, ImportError> {
    let s = c.as_str()?;
    if s.is_empty() {
        return Ok(None);
    }
    if super::is_masked(s) {
        return Err(c.error(format!(
            "`{s}` is a masked value from documentation, not a real one: use the API's own response"
        )));
    }
    let net = crate::policy::types::parse_net(s).map_err(|e| c.error(e.to_string()))?;
    Ok(Some(At::new(net.trunc(), c.origin())))
}

/// `OwnerId`, a number or a string.
fn owner(n: &Node) -> Result<Option<String>, ImportError> {
    Ok(match n.get("OwnerId").map(|o| o.value.clone()) {
        Some(serde_json::Value::Number(x)) => Some(x.to_string()),
        Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s),
        _ => None,
    })
}

fn vswitch(b: &mut Build, n: &Node) -> Result<(), ImportError> {
    let id = need_value(n, "VSwitchId")?;
    if b.subnets.contains_key(id) {
        return Ok(());
    }
    let vpc = n.need("VpcId")?;
    let mut cidrs = Vec::new();
    add_unique(&mut cidrs, block(n, "CidrBlock")?);
    add_unique(&mut cidrs, block(n, "Ipv6CidrBlock")?);
    let subnet = Subnet {
        name: id.to_string(),
        origin: n.origin(),
        vpc: At::new(need_value(n, "VpcId")?.to_string(), vpc.origin()),
        cidrs,
        az: text(n, "ZoneId")?,
        network_acl: at_value(n, "NetworkAclId")?,
        title: text(n, "VSwitchName")?,
        ..Subnet::default()
    };
    b.subnets.insert(id.to_string(), subnet);
    Ok(())
}

fn network_acl(b: &mut Build, n: &Node) -> Result<(), ImportError> {
    let id = need_value(n, "NetworkAclId")?;
    if b.network_acls.contains_key(id) {
        return Ok(());
    }
    let mut acl = NetworkAcl {
        name: id.to_string(),
        origin: n.origin(),
        vpc: at_value(n, "VpcId")?,
        ..NetworkAcl::default()
    };
    for (outer, inner, remote, list) in [
        (
            "IngressAclEntries",
            "IngressAclEntry",
            "SourceCidrIp",
            &mut acl.ingress,
        ),
        (
            "EgressAclEntries",
            "EgressAclEntry",
            "DestinationCidrIp",
            &mut acl.egress,
        ),
    ] {
        let Some(entries) = n.get(outer) else {
            continue;
        };
        for (i, e) in entries.array(inner)?.iter().enumerate() {
            if let Some(rule) = acl_entry(b, id, e, i as i64 + 1, remote)? {
                list.push(rule);
            }
        }
    }
    if let Some(r) = n.get("Resources") {
        for res in r.array("Resource")? {
            let Some(rid) = value(&res, "ResourceId")? else {
                continue;
            };
            let typ = res.str("ResourceType")?.unwrap_or("VSwitch");
            match b.subnets.get_mut(rid) {
                Some(s) if typ.eq_ignore_ascii_case("VSwitch") => {
                    s.network_acl
                        .get_or_insert_with(|| At::new(id.to_string(), res.origin()));
                }
                _ => b.skip(
                    id,
                    res.origin(),
                    format!(
                        "associated with {typ} `{rid}`, which the input does not describe \
                         (add DescribeVSwitches)"
                    ),
                ),
            }
        }
    }
    b.network_acls.insert(id.to_string(), acl);
    Ok(())
}

/// One ACL entry, numbered `number` (its position); `None` for what the
/// model cannot say (listed).
fn acl_entry(
    b: &mut Build,
    acl: &str,
    e: &Node,
    number: i64,
    remote_key: &str,
) -> Result<Option<AclRule>, ImportError> {
    let entry = e
        .str("NetworkAclEntryId")?
        .map(|s| format!(" ({s})"))
        .unwrap_or_default();
    let proto_text = e.need_str("Protocol")?;
    let Some(proto) = protocol(proto_text) else {
        b.skip(
            acl,
            e.origin(),
            format!("entry {number}{entry}: protocol `{proto_text}` is not one sgplane knows"),
        );
        return Ok(None);
    };
    let Some(remote) = block(e, remote_key)? else {
        b.skip(
            acl,
            e.origin(),
            format!("entry {number}{entry}: no `{remote_key}`"),
        );
        return Ok(None);
    };
    let action = match e.need_str("Policy")?.to_ascii_lowercase().as_str() {
        "accept" => Action::Allow,
        "drop" => Action::Deny,
        other => {
            return Err(e
                .need("Policy")?
                .error(format!("expected accept or drop, found `{other}`")))
        }
    };
    let ports = match port_range(e, "Port")? {
        Some(p) if proto.has_ports() => p,
        Some(None) | None => None,
        Some(Some(p)) => {
            b.skip(
                acl,
                p.origin,
                format!("entry {number}{entry}: ports on a protocol without ports"),
            );
            return Ok(None);
        }
    };
    Ok(Some(AclRule {
        origin: e.origin(),
        rule: At::new(number, e.origin()),
        proto,
        ports,
        icmp_type: None,
        icmp_code: None,
        remote,
        action,
    }))
}

/// An Alibaba protocol (any case): `all`, `tcp`, `udp`, `icmp`,
/// `icmpv6`, `gre`, or a number.
pub(super) fn protocol(s: &str) -> Option<ProtoMatch> {
    match s.to_ascii_lowercase().as_str() {
        "all" | "-1" => Some(ProtoMatch::Any),
        "gre" => Some(ProtoMatch::Is(IpProto(47))),
        p => p.parse::<IpProto>().ok().map(ProtoMatch::Is),
    }
}

/// A port range as Alibaba writes it: `a/b`, a single port `a`, or
/// `-1/-1` for all. `None`: absent or `""`; `Some(None)`: all ports.
/// Anything else is a malformed file.
pub(super) fn port_range(
    n: &Node,
    key: &str,
) -> Result<Option<Option<At<Vec<PortRange>>>>, ImportError> {
    let Some(s) = n.str(key)? else {
        return Ok(None);
    };
    let at = n.need(key)?;
    let (lo, hi) = s.split_once('/').unwrap_or((s, s));
    if lo.trim() == "-1" && hi.trim() == "-1" {
        return Ok(Some(None));
    }
    let port = |p: &str| p.trim().parse::<u16>().ok();
    match (port(lo), port(hi)) {
        (Some(lo), Some(hi)) if lo <= hi => {
            if (lo, hi) == (0, 65535) {
                return Ok(Some(None));
            }
            Ok(Some(Some(At::new(vec![PortRange { lo, hi }], at.origin()))))
        }
        _ => Err(at.error(format!(
            "expected a port range such as 22/22, 1/65535 or -1/-1, found `{s}`"
        ))),
    }
}
