//! VPCs, subnets, network ACLs, route tables, internet gateways, peerings
//! and prefix lists.

use ipnet::IpNet;

use super::recognise::Inputs;
use super::{at_int, at_str, block, name_tag, protocol, string, Build};
use crate::import::json::Node;
use crate::import::ImportError;
use crate::policy::model::{
    AclRule, At, NetworkAcl, Peering, PrefixList, Remote, Route, RouteTable, Subnet, Vpc,
};
use crate::policy::types::{Action, PortRange};

pub(super) fn convert(b: &mut Build, inputs: &Inputs) -> Result<(), ImportError> {
    for f in &inputs.vpcs {
        vpc(
            b,
            &f.node,
            f.src.account.as_deref(),
            f.src.region.as_deref(),
        )?;
    }
    for f in &inputs.subnets {
        subnet(b, &f.node)?;
    }
    for f in &inputs.network_acls {
        network_acl(b, &f.node)?;
    }
    for f in &inputs.route_tables {
        route_table(b, &f.node)?;
    }
    main_route_tables(b);
    for f in &inputs.internet_gateways {
        internet_gateway(b, &f.node)?;
    }
    for f in &inputs.peerings {
        peering(b, &f.node)?;
    }
    prefix_lists(b, inputs)
}

fn vpc(
    b: &mut Build,
    n: &Node,
    path_account: Option<&str>,
    region: Option<&str>,
) -> Result<(), ImportError> {
    let id = n.need_str("VpcId")?;
    if b.vpcs.contains_key(id) {
        return Ok(());
    }
    let mut cidrs: Vec<At<IpNet>> = Vec::new();
    let primary = block(n, "CidrBlock")?;
    cidrs.extend(primary.clone());
    for (set, key, state) in [
        ("CidrBlockAssociationSet", "CidrBlock", "CidrBlockState"),
        (
            "Ipv6CidrBlockAssociationSet",
            "Ipv6CidrBlock",
            "Ipv6CidrBlockState",
        ),
    ] {
        for a in n.array(set)? {
            let Some(net) = block(&a, key)? else { continue };
            let st = a.get(state).map(|s| s.str("State")).transpose()?.flatten();
            if st.is_some_and(|s| s != "associated") {
                b.skip(
                    id,
                    a.origin(),
                    format!(
                        "block {} is {}, not associated",
                        net.value,
                        st.unwrap_or("")
                    ),
                );
            } else if !cidrs.iter().any(|c| c.value == net.value) {
                cidrs.push(net);
            }
        }
    }
    let vpc = Vpc {
        name: id.to_string(),
        origin: n.origin(),
        cidrs,
        peers: Vec::new(),
        account: string(n, "OwnerId")?.or(path_account.map(str::to_string)),
        region: region.map(str::to_string),
        title: name_tag(n)?,
        internet_gateways: Vec::new(),
    };
    b.vpcs.insert(id.to_string(), vpc);
    Ok(())
}

fn subnet(b: &mut Build, n: &Node) -> Result<(), ImportError> {
    let id = n.need_str("SubnetId")?;
    if b.subnets.contains_key(id) {
        return Ok(());
    }
    let mut cidrs: Vec<At<IpNet>> = block(n, "CidrBlock")?.into_iter().collect();
    for a in n.array("Ipv6CidrBlockAssociationSet")? {
        let Some(net) = block(&a, "Ipv6CidrBlock")? else {
            continue;
        };
        let st = a
            .get("Ipv6CidrBlockState")
            .map(|s| s.str("State"))
            .transpose()?
            .flatten();
        if st.is_some_and(|s| s != "associated") {
            b.skip(
                id,
                a.origin(),
                format!("block {} is not associated", net.value),
            );
        } else {
            cidrs.push(net);
        }
    }
    let vpc = n.need("VpcId")?;
    let subnet = Subnet {
        name: id.to_string(),
        origin: n.origin(),
        vpc: At::new(vpc.as_str()?.to_string(), vpc.origin()),
        cidrs,
        az: string(n, "AvailabilityZone")?,
        title: name_tag(n)?,
        ..Subnet::default()
    };
    b.subnets.insert(id.to_string(), subnet);
    Ok(())
}

fn network_acl(b: &mut Build, n: &Node) -> Result<(), ImportError> {
    let id = n.need_str("NetworkAclId")?;
    if b.network_acls.contains_key(id) {
        return Ok(());
    }
    let mut acl = NetworkAcl {
        name: id.to_string(),
        origin: n.origin(),
        vpc: at_str(n, "VpcId")?,
        default: n.bool("IsDefault")?.unwrap_or(false),
        ..NetworkAcl::default()
    };
    for e in n.array("Entries")? {
        let Some(rule) = acl_entry(b, id, &e)? else {
            continue;
        };
        if e.bool("Egress")?.unwrap_or(false) {
            acl.egress.push(rule);
        } else {
            acl.ingress.push(rule);
        }
    }
    acl.ingress.sort_by_key(|r| r.rule.value);
    acl.egress.sort_by_key(|r| r.rule.value);
    for a in n.array("Associations")? {
        if let Some(s) = a.str("SubnetId")? {
            b.acl_of_subnet(s, At::new(id.to_string(), a.origin()));
        }
    }
    b.network_acls.insert(id.to_string(), acl);
    Ok(())
}

/// One NACL entry; `None` for the implicit final deny (`*`: rule 32767,
/// and 32768 for IPv6 — the model never writes it) and for what it cannot
/// represent.
fn acl_entry(b: &mut Build, acl: &str, e: &Node) -> Result<Option<AclRule>, ImportError> {
    let number = e.need("RuleNumber")?;
    let rule = At::new(e.int("RuleNumber")?.unwrap_or(0), number.origin());
    if rule.value >= 32767 {
        return Ok(None);
    }
    let proto_text = e.need_str("Protocol")?;
    let Some(proto) = protocol(proto_text) else {
        b.skip(
            acl,
            e.origin(),
            format!(
                "rule {}: protocol `{proto_text}` is not one sgplane knows",
                rule.value
            ),
        );
        return Ok(None);
    };
    let Some(remote) = block(e, "CidrBlock")?.or(block(e, "Ipv6CidrBlock")?) else {
        b.skip(
            acl,
            e.origin(),
            format!("rule {}: no CIDR block", rule.value),
        );
        return Ok(None);
    };
    let action = match e.need_str("RuleAction")?.to_ascii_lowercase().as_str() {
        "allow" => Action::Allow,
        _ => Action::Deny,
    };
    let mut ports = None;
    if let (Some(pr), true) = (e.get("PortRange"), proto.has_ports()) {
        match (pr.int("From")?, pr.int("To")?) {
            (Some(lo), Some(hi)) if (0..=65535).contains(&lo) && (lo..=65535).contains(&hi) => {
                if (lo, hi) != (0, 65535) {
                    let r = PortRange {
                        lo: lo as u16,
                        hi: hi as u16,
                    };
                    ports = Some(At::new(vec![r], pr.origin()));
                }
            }
            (None, None) => {}
            (lo, hi) => {
                b.skip(
                    acl,
                    pr.origin(),
                    format!("rule {}: port range {lo:?}-{hi:?} is not one", rule.value),
                );
                return Ok(None);
            }
        }
    }
    let (mut icmp_type, mut icmp_code) = (None, None);
    if let (Some(tc), true) = (e.get("IcmpTypeCode"), proto.is_icmp()) {
        icmp_type = at_int(&tc, "Type")?.filter(|t| t.value != -1);
        icmp_code = at_int(&tc, "Code")?.filter(|c| c.value != -1);
        if icmp_type.is_none() {
            icmp_code = None;
        }
    }
    Ok(Some(AclRule {
        origin: e.origin(),
        rule,
        proto,
        ports,
        icmp_type,
        icmp_code,
        remote,
        action,
    }))
}

/// The targets a route may have, in the order AWS's CLI prints them.
const ROUTE_TARGETS: &[&str] = &[
    "GatewayId",
    "NatGatewayId",
    "VpcPeeringConnectionId",
    "TransitGatewayId",
    "NetworkInterfaceId",
    "InstanceId",
    "VpcEndpointId",
    "EgressOnlyInternetGatewayId",
    "LocalGatewayId",
    "CarrierGatewayId",
    "CoreNetworkArn",
];

fn route_table(b: &mut Build, n: &Node) -> Result<(), ImportError> {
    let id = n.need_str("RouteTableId")?;
    if b.route_tables.contains_key(id) {
        return Ok(());
    }
    let mut table = RouteTable {
        name: id.to_string(),
        origin: n.origin(),
        vpc: at_str(n, "VpcId")?,
        ..RouteTable::default()
    };
    for r in n.array("Routes")? {
        if let Some(route) = route(b, id, &r)? {
            table.routes.push(route);
        }
    }
    for a in n.array("Associations")? {
        if a.bool("Main")?.unwrap_or(false) {
            table.main = true;
        } else if let Some(s) = a.str("SubnetId")? {
            b.route_table_of_subnet(s, At::new(id.to_string(), a.origin()));
        } else if let Some(g) = a.str("GatewayId")? {
            b.skip(
                id,
                a.origin(),
                format!("edge association with gateway {g}: ingress routing is not modelled"),
            );
        }
    }
    b.route_tables.insert(id.to_string(), table);
    Ok(())
}

fn route(b: &mut Build, table: &str, r: &Node) -> Result<Option<Route>, ImportError> {
    let destination = if let Some(net) = block(r, "DestinationCidrBlock")? {
        At::new(Remote::Net(net.value), net.origin)
    } else if let Some(net) = block(r, "DestinationIpv6CidrBlock")? {
        At::new(Remote::Net(net.value), net.origin)
    } else if let Some(pl) = at_str(r, "DestinationPrefixListId")? {
        b.note_prefix_list(&pl.value, pl.origin.clone());
        At::new(Remote::PrefixList(pl.value), pl.origin)
    } else {
        b.skip(table, r.origin(), "a route with no destination");
        return Ok(None);
    };
    let mut target = None;
    for key in ROUTE_TARGETS {
        if let Some(t) = at_str(r, key)? {
            target = Some(t);
            break;
        }
    }
    let Some(target) = target else {
        b.skip(
            table,
            r.origin(),
            format!("route to {} has no target sgplane knows", destination.value),
        );
        return Ok(None);
    };
    let state = r
        .str("State")?
        .filter(|s| *s != "active")
        .map(str::to_string);
    Ok(Some(Route {
        origin: r.origin(),
        destination,
        target,
        state,
    }))
}

impl Build {
    fn acl_of_subnet(&mut self, subnet: &str, acl: At<String>) {
        if let Some(s) = self.subnets.get_mut(subnet) {
            s.network_acl.get_or_insert(acl);
        }
    }

    fn route_table_of_subnet(&mut self, subnet: &str, table: At<String>) {
        if let Some(s) = self.subnets.get_mut(subnet) {
            s.route_table.get_or_insert(table);
        }
    }
}

/// Subnets with no explicit association use their VPC's main table.
fn main_route_tables(b: &mut Build) {
    for s in b.subnets.values_mut() {
        if s.route_table.is_some() {
            continue;
        }
        let main = b
            .route_tables
            .values()
            .find(|t| t.main && t.vpc.as_ref().is_some_and(|v| v.value == s.vpc.value));
        if let Some(t) = main {
            s.route_table = Some(At::new(t.name.clone(), t.origin.clone()));
        }
    }
}

fn internet_gateway(b: &mut Build, n: &Node) -> Result<(), ImportError> {
    let id = n.need_str("InternetGatewayId")?;
    for a in n.array("Attachments")? {
        let Some(vpc) = a.str("VpcId")? else { continue };
        match b.vpcs.get_mut(vpc) {
            Some(v) if !v.internet_gateways.iter().any(|g| g == id) => {
                v.internet_gateways.push(id.to_string());
                v.internet_gateways.sort();
            }
            Some(_) => {}
            None => b.skip(
                id,
                a.origin(),
                format!("attached to {vpc}, which is not in the input"),
            ),
        }
    }
    Ok(())
}

fn peering(b: &mut Build, n: &Node) -> Result<(), ImportError> {
    let id = n.need_str("VpcPeeringConnectionId")?;
    if b.peerings.contains_key(id) {
        return Ok(());
    }
    let side = |key: &str| -> Result<At<String>, ImportError> {
        let info = n.need(key)?;
        let vpc = info.need("VpcId")?;
        Ok(At::new(vpc.as_str()?.to_string(), vpc.origin()))
    };
    let (requester, accepter) = (side("RequesterVpcInfo")?, side("AccepterVpcInfo")?);
    let status = match n.get("Status") {
        Some(s) => string(&s, "Code")?,
        None => None,
    };
    if status.as_deref() == Some("active") {
        for (a, other) in [(&requester, &accepter), (&accepter, &requester)] {
            if let Some(v) = b.vpcs.get_mut(&a.value) {
                if !v.peers.iter().any(|p| p.value == other.value) {
                    v.peers.push(At::new(other.value.clone(), n.origin()));
                    v.peers.sort_by(|x, y| x.value.cmp(&y.value));
                }
            }
        }
    }
    let peering = Peering {
        name: id.to_string(),
        origin: n.origin(),
        requester_vpc: requester,
        accepter_vpc: accepter,
        status,
    };
    b.peerings.insert(id.to_string(), peering);
    Ok(())
}

/// Managed prefix lists (with their entries when the input has them), the
/// older `describe-prefix-lists` with its `Cidrs`, and a list for every
/// `pl-…` named but not described: incomplete, so `check` names it.
fn prefix_lists(b: &mut Build, inputs: &Inputs) -> Result<(), ImportError> {
    for f in &inputs.prefix_lists {
        let n = &f.node;
        let id = n.need_str("PrefixListId")?;
        if b.prefix_lists.contains_key(id) {
            continue;
        }
        let mut pl = PrefixList {
            name: id.to_string(),
            origin: n.origin(),
            max_entries: at_int(n, "MaxEntries")?,
            owner: string(n, "OwnerId")?,
            // describe-managed-prefix-lists gives no entries.
            incomplete: !n.has("Cidrs"),
            entries: Vec::new(),
        };
        if n.has("Cidrs") {
            pl.owner.get_or_insert_with(|| "AWS".into());
            for (s, at) in n.strings("Cidrs")? {
                let net =
                    crate::policy::types::parse_net(s).map_err(|e| at.error(e.to_string()))?;
                pl.entries.push(At::new(net.trunc(), at.origin()));
            }
        }
        if pl.owner.is_none()
            && n.str("PrefixListName")?
                .is_some_and(|s| s.starts_with("com.amazonaws."))
        {
            pl.owner = Some("AWS".into());
        }
        b.prefix_lists.insert(id.to_string(), pl);
    }
    for o in &inputs.prefix_list_entries {
        let Some(id) = &o.owner else {
            b.skip(
                o.at.file.as_ref(),
                o.at.origin(),
                "prefix list entries whose list is not named by the file's name (pl-….json)",
            );
            continue;
        };
        let pl = b
            .prefix_lists
            .entry(id.clone())
            .or_insert_with(|| PrefixList {
                name: id.clone(),
                origin: o.at.origin(),
                ..PrefixList::default()
            });
        pl.incomplete = false;
        for e in &o.items {
            if let Some(net) = block(e, "Cidr")? {
                if !pl.entries.iter().any(|x| x.value == net.value) {
                    pl.entries.push(net);
                }
            }
        }
    }
    Ok(())
}

/// Lists named (by rules, routes) but not in the input.
pub(super) fn referenced_prefix_lists(b: &mut Build) {
    let refs = std::mem::take(&mut b.pl_refs);
    for (id, origin) in refs {
        b.prefix_lists
            .entry(id.clone())
            .or_insert_with(|| PrefixList {
                name: id,
                origin,
                incomplete: true,
                ..PrefixList::default()
            });
    }
}
