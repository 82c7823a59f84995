//! The topology around the groups (SPEC §6): VPCs, subnets, interfaces and
//! instances, network ACLs, route tables, gateways, peerings, prefix lists,
//! load balancers with their listeners and target groups, and endpoints.
//! Ids unknown until apply are the placeholders of [`super::doc`]; an
//! attribute that cannot be known is listed as skipped, never guessed.

use ipnet::IpNet;

use super::block::Block;
use super::doc::{Doc, Got, Resource};
use super::sg::net;
use super::Out;
use crate::import::ImportError;
use crate::policy::model::*;
use crate::policy::types::{parse_net, Action, PortRange, ProtoMatch};

pub(super) fn import(doc: &Doc, out: &mut Out) -> Result<(), ImportError> {
    vpcs(doc, out)?;
    subnets(doc, out)?;
    network_acls(doc, out)?;
    route_tables(doc, out)?;
    interfaces(doc, out)?;
    instances(doc, out)?;
    prefix_lists(doc, out)?;
    load_balancers(doc, out)?;
    endpoints(doc, out)?;
    Ok(())
}

/// A string attribute, its failure listed.
fn one(out: &mut Out, r: &Resource, v: Got<Option<At<String>>>) -> Option<At<String>> {
    out.got(r, v).flatten()
}

/// An id attribute as a model id.
fn id_of(doc: &Doc, out: &mut Out, r: &Resource, v: Got<Option<At<String>>>) -> Option<At<String>> {
    one(out, r, v).map(|a| At::new(doc.model_id(&a.value), a.origin))
}

/// A string attribute the resource cannot be imported without: its
/// absence or failure listed as skipped.
fn need(
    out: &mut Out,
    r: &Resource,
    b: &Block,
    key: &str,
) -> Result<Option<At<String>>, ImportError> {
    Ok(match b.str(key)? {
        Ok(None) => {
            out.skip(&r.address, r.values.origin(), format!("`{key}` is missing"));
            None
        }
        v => one(out, r, v),
    })
}

/// An id attribute the resource cannot be imported without, as a model
/// id: its absence or failure listed as skipped.
fn need_id(
    doc: &Doc,
    out: &mut Out,
    r: &Resource,
    b: &Block,
    key: &str,
) -> Result<Option<At<String>>, ImportError> {
    Ok(need(out, r, b, key)?.map(|a| At::new(doc.model_id(&a.value), a.origin)))
}

fn ids_of(doc: &Doc, out: &mut Out, r: &Resource, v: Got<Vec<At<String>>>) -> Vec<At<String>> {
    out.got(r, v)
        .unwrap_or_default()
        .into_iter()
        .map(|a| At::new(doc.model_id(&a.value), a.origin))
        .collect()
}

/// CIDRs of string attributes, host bits dropped as AWS does.
fn cidrs(
    out: &mut Out,
    r: &Resource,
    b: &Block,
    keys: &[&str],
) -> Result<Vec<At<IpNet>>, ImportError> {
    let mut v = Vec::new();
    for k in keys {
        for s in out.got(r, b.strings(k)?).unwrap_or_default() {
            match net(&s.value) {
                Some(n) => v.push(At::new(n, s.origin)),
                None => out.skip(
                    &r.address,
                    s.origin,
                    format!("`{k}`: `{}` is not a CIDR", s.value),
                ),
            }
        }
    }
    Ok(v)
}

fn vpcs(doc: &Doc, out: &mut Out) -> Result<(), ImportError> {
    for r in doc.managed("aws_vpc") {
        let b = Block::of(doc, r);
        let cidrs = cidrs(out, r, &b, &["cidr_block", "ipv6_cidr_block"])?;
        let item = Vpc {
            name: doc.id(r).to_string(),
            origin: r.values.origin(),
            cidrs,
            title: b.tag("tags", "Name")?,
            ..Vpc::default()
        };
        out.model.vpcs.push(item);
    }
    for r in doc.managed("aws_internet_gateway") {
        let b = Block::of(doc, r);
        if let Some(v) = id_of(doc, out, r, b.str("vpc_id")?) {
            let id = doc.id(r).to_string();
            match out.model.vpcs.iter_mut().find(|x| x.name == v.value) {
                Some(vpc) => vpc.internet_gateways.push(id),
                None => out.skip(
                    &r.address,
                    v.origin,
                    format!("its VPC `{}` is not in the input", v.value),
                ),
            }
        }
    }
    for r in doc.managed("aws_vpc_peering_connection") {
        let b = Block::of(doc, r);
        let (Some(req), Some(acc)) = (
            id_of(doc, out, r, b.str("vpc_id")?),
            id_of(doc, out, r, b.str("peer_vpc_id")?),
        ) else {
            continue;
        };
        let status = out
            .got(r, b.str("accept_status")?)
            .flatten()
            .map(|s| s.value);
        // A new peering in the same account with `auto_accept` becomes active.
        let active = status.as_deref() == Some("active")
            || (status.is_none() && b.bool("auto_accept")?.ok().flatten() == Some(true));
        if active {
            for (a, z) in [(&req, &acc), (&acc, &req)] {
                if let Some(vpc) = out.model.vpcs.iter_mut().find(|x| x.name == a.value) {
                    vpc.peers.push(z.clone());
                }
            }
        }
        let item = Peering {
            name: doc.id(r).to_string(),
            origin: r.values.origin(),
            requester_vpc: req,
            accepter_vpc: acc,
            status: status.or(active.then(|| "active".to_string())),
        };
        out.model.peerings.push(item);
    }
    Ok(())
}

fn subnets(doc: &Doc, out: &mut Out) -> Result<(), ImportError> {
    for r in doc.managed("aws_subnet") {
        let b = Block::of(doc, r);
        let Some(vpc) = need_id(doc, out, r, &b, "vpc_id")? else {
            continue;
        };
        let cidrs = cidrs(out, r, &b, &["cidr_block", "ipv6_cidr_block"])?;
        let item = Subnet {
            name: doc.id(r).to_string(),
            origin: r.values.origin(),
            vpc,
            cidrs,
            az: one(out, r, b.str("availability_zone")?).map(|a| a.value),
            title: b.tag("tags", "Name")?,
            ..Subnet::default()
        };
        out.model.subnets.push(item);
    }
    Ok(())
}

/// Sets `field` of the subnet named `subnet`, or lists why not.
fn subnet_field(
    out: &mut Out,
    r: &Resource,
    subnet: &At<String>,
    value: At<String>,
    set: fn(&mut Subnet, At<String>),
) {
    match out
        .model
        .subnets
        .iter_mut()
        .find(|s| s.name == subnet.value)
    {
        Some(s) => set(s, value),
        None => out.skip(
            &r.address,
            subnet.origin.clone(),
            format!("subnet `{}` is not in the input", subnet.value),
        ),
    }
}

fn network_acls(doc: &Doc, out: &mut Out) -> Result<(), ImportError> {
    for r in doc.managed("aws_network_acl") {
        let b = Block::of(doc, r);
        let name = doc.id(r).to_string();
        let mut acl = NetworkAcl {
            name: name.clone(),
            origin: r.values.origin(),
            vpc: id_of(doc, out, r, b.str("vpc_id")?),
            ..NetworkAcl::default()
        };
        for (egress, key) in [(false, "ingress"), (true, "egress")] {
            for blk in out.got(r, b.blocks(key)?).unwrap_or_default() {
                match acl_rule(
                    &blk,
                    &["rule_no", "action", "cidr_block", "ipv6_cidr_block"],
                )? {
                    Ok(rule) if egress => acl.egress.push(rule),
                    Ok(rule) => acl.ingress.push(rule),
                    Err(why) => {
                        out.skip(&r.address, blk.origin(), format!("an {key} entry: {why}"))
                    }
                }
            }
        }
        out.model.network_acls.push(acl);
        for s in ids_of(doc, out, r, b.strings("subnet_ids")?) {
            let v = At::new(name.clone(), s.origin.clone());
            subnet_field(out, r, &s, v, |s, v| s.network_acl = Some(v));
        }
    }
    for r in doc.managed("aws_network_acl_rule") {
        let b = Block::of(doc, r);
        let Some(acl) = need_id(doc, out, r, &b, "network_acl_id")? else {
            continue;
        };
        let egress = out.got(r, b.bool("egress")?).flatten().unwrap_or(false);
        let rule = match acl_rule(
            &b,
            &[
                "rule_number",
                "rule_action",
                "cidr_block",
                "ipv6_cidr_block",
            ],
        )? {
            Ok(rule) => rule,
            Err(why) => {
                out.skip(&r.address, r.values.origin(), why);
                continue;
            }
        };
        match out
            .model
            .network_acls
            .iter_mut()
            .find(|a| a.name == acl.value)
        {
            Some(a) if egress => a.egress.push(rule),
            Some(a) => a.ingress.push(rule),
            None => out.skip(
                &r.address,
                acl.origin,
                format!("network ACL `{}` is not in the input", acl.value),
            ),
        }
    }
    for r in doc.managed("aws_network_acl_association") {
        let b = Block::of(doc, r);
        if let (Some(acl), Some(s)) = (
            need_id(doc, out, r, &b, "network_acl_id")?,
            need_id(doc, out, r, &b, "subnet_id")?,
        ) {
            subnet_field(out, r, &s, acl, |s, v| s.network_acl = Some(v));
        }
    }
    for a in &mut out.model.network_acls {
        a.ingress.sort_by_key(|r| r.rule.value);
        a.egress.sort_by_key(|r| r.rule.value);
    }
    Ok(())
}

/// One NACL entry; `keys` are the names of its number, action and blocks.
fn acl_rule(b: &Block, keys: &[&str; 4]) -> Result<Got<AclRule>, ImportError> {
    macro_rules! got {
        ($e:expr) => {
            match $e? {
                Ok(v) => v,
                Err(why) => return Ok(Err(why)),
            }
        };
    }
    let Some(number) = got!(b.int(keys[0])) else {
        return Ok(Err(format!("`{}` is missing", keys[0])));
    };
    let action = match got!(b.str(keys[1]))
        .map(|a| a.value.to_ascii_lowercase())
        .as_deref()
    {
        Some("allow") => Action::Allow,
        Some("deny") => Action::Deny,
        other => return Ok(Err(format!("action {other:?}: expected allow or deny"))),
    };
    let v4 = got!(b.str(keys[2]));
    let v6 = got!(b.str(keys[3]));
    let Some(block) = v4.or(v6) else {
        return Ok(Err("it has no CIDR block".into()));
    };
    let Some(remote) = net(&block.value) else {
        return Ok(Err(format!("`{}` is not a CIDR", block.value)));
    };
    let Some(proto) = got!(b.str("protocol")) else {
        return Ok(Err("`protocol` is missing".into()));
    };
    let proto_match = match proto.value.to_ascii_lowercase().as_str() {
        "-1" | "all" => ProtoMatch::Any,
        p => match p.parse::<ProtoMatch>() {
            Ok(m) => m,
            Err(_) => return Ok(Err(format!("protocol `{}` is not known", proto.value))),
        },
    };
    let mut rule = AclRule {
        origin: b.origin(),
        rule: number,
        proto: proto_match,
        ports: None,
        icmp_type: None,
        icmp_code: None,
        remote: At::new(remote, block.origin),
        action,
    };
    if proto_match.has_ports() {
        let (from, to) = (got!(b.int("from_port")), got!(b.int("to_port")));
        if let (Some(f), Some(t)) = (from, to) {
            let all = (f.value == 0 && t.value == 65535) || (f.value == -1 && t.value == -1);
            let ok = |n: i64| (0..=65535).contains(&n);
            if !all {
                if !ok(f.value) || !ok(t.value) || f.value > t.value {
                    return Ok(Err(format!(
                        "ports {}-{} are not a range",
                        f.value, t.value
                    )));
                }
                rule.ports = Some(At::new(
                    vec![PortRange {
                        lo: f.value as u16,
                        hi: t.value as u16,
                    }],
                    f.origin,
                ));
            }
        }
    } else if proto_match.is_icmp() {
        rule.icmp_type = got!(b.int("icmp_type")).filter(|v| v.value != -1);
        rule.icmp_code = got!(b.int("icmp_code")).filter(|v| v.value != -1);
    }
    Ok(Ok(rule))
}

fn route_tables(doc: &Doc, out: &mut Out) -> Result<(), ImportError> {
    const TARGETS: &[&str] = &[
        "gateway_id",
        "nat_gateway_id",
        "vpc_peering_connection_id",
        "transit_gateway_id",
        "vpc_endpoint_id",
        "network_interface_id",
        "egress_only_gateway_id",
        "local_gateway_id",
        "carrier_gateway_id",
        "core_network_arn",
    ];
    for r in doc.managed("aws_route_table") {
        let b = Block::of(doc, r);
        let mut t = RouteTable {
            name: doc.id(r).to_string(),
            origin: r.values.origin(),
            vpc: id_of(doc, out, r, b.str("vpc_id")?),
            ..RouteTable::default()
        };
        for blk in out.got(r, b.blocks("route")?).unwrap_or_default() {
            match route(
                doc,
                &blk,
                TARGETS,
                &[
                    "cidr_block",
                    "ipv6_cidr_block",
                    "destination_prefix_list_id",
                ],
            )? {
                Ok(x) => t.routes.push(x),
                Err(why) => out.skip(&r.address, blk.origin(), format!("a route: {why}")),
            }
        }
        out.model.route_tables.push(t);
    }
    for r in doc.managed("aws_route") {
        let b = Block::of(doc, r);
        let Some(table) = need_id(doc, out, r, &b, "route_table_id")? else {
            continue;
        };
        let keys = [
            "destination_cidr_block",
            "destination_ipv6_cidr_block",
            "destination_prefix_list_id",
        ];
        match route(doc, &b, TARGETS, &keys)? {
            Ok(x) => match out
                .model
                .route_tables
                .iter_mut()
                .find(|t| t.name == table.value)
            {
                Some(t) => t.routes.push(x),
                None => out.skip(
                    &r.address,
                    table.origin,
                    format!("route table `{}` is not in the input", table.value),
                ),
            },
            Err(why) => out.skip(&r.address, r.values.origin(), why),
        }
    }
    for r in doc.managed("aws_route_table_association") {
        let b = Block::of(doc, r);
        let Some(table) = need_id(doc, out, r, &b, "route_table_id")? else {
            continue;
        };
        match id_of(doc, out, r, b.str("subnet_id")?) {
            Some(s) => subnet_field(out, r, &s, table, |s, v| s.route_table = Some(v)),
            None => out.skip(
                &r.address,
                r.values.origin(),
                "an association with a gateway, not a subnet: not represented",
            ),
        }
    }
    Ok(())
}

fn route(
    doc: &Doc,
    b: &Block,
    targets: &[&str],
    dests: &[&str; 3],
) -> Result<Got<Route>, ImportError> {
    let mut dest = None;
    for k in dests {
        match b.str(k)? {
            Ok(Some(v)) => {
                dest = Some(v);
                break;
            }
            Ok(None) => {}
            Err(why) => return Ok(Err(why)),
        }
    }
    let Some(dest) = dest else {
        return Ok(Err("it has no destination".into()));
    };
    let d = if dest.value.starts_with("pl-") {
        Remote::PrefixList(doc.model_id(&dest.value))
    } else {
        match net(&dest.value) {
            Some(n) => Remote::Net(n),
            None => return Ok(Err(format!("destination `{}` is not a CIDR", dest.value))),
        }
    };
    for k in targets {
        match b.str(k)? {
            Ok(Some(t)) => {
                return Ok(Ok(Route {
                    origin: b.origin(),
                    destination: At::new(d, dest.origin),
                    target: At::new(doc.model_id(&t.value), t.origin),
                    state: None,
                }))
            }
            Ok(None) => {}
            Err(why) => return Ok(Err(why)),
        }
    }
    Ok(Err("it has no target the importer knows".into()))
}

/// Addresses of string attributes; an unparsable one is an error.
fn addresses(b: &Block, keys: &[&str]) -> Result<Got<Vec<At<IpNet>>>, ImportError> {
    let mut v: Vec<At<IpNet>> = Vec::new();
    for k in keys {
        match b.strings(k)? {
            Ok(list) => {
                for s in list {
                    match parse_net(&s.value) {
                        Ok(n) if !v.iter().any(|x| x.value == n) => v.push(At::new(n, s.origin)),
                        Ok(_) => {}
                        Err(_) => {
                            return Ok(Err(format!("`{k}`: `{}` is not an address", s.value)))
                        }
                    }
                }
            }
            Err(why) => return Ok(Err(why)),
        }
    }
    Ok(Ok(v))
}

fn interfaces(doc: &Doc, out: &mut Out) -> Result<(), ImportError> {
    for r in doc.managed("aws_network_interface") {
        let b = Block::of(doc, r);
        // `private_ip` and `private_ips` both name the primary address: one
        // known is enough.
        let mut addrs: Vec<At<IpNet>> = Vec::new();
        for k in ["private_ip", "private_ips", "ipv6_addresses"] {
            match addresses(&b, &[k])? {
                Ok(a) => addrs.extend(
                    a.into_iter()
                        .filter(|x| !addrs.iter().any(|y| y.value == x.value))
                        .collect::<Vec<_>>(),
                ),
                Err(_) if k != "ipv6_addresses" => {}
                Err(why) => out.skip(&r.address, r.values.origin(), why),
            }
        }
        if addrs.is_empty() {
            out.skip(
                &r.address,
                r.values.origin(),
                "private address unknown until apply; set private_ips to check it",
            );
            continue;
        }
        let instance = b
            .blocks("attachment")?
            .ok()
            .and_then(|a| a.into_iter().next())
            .and_then(|a| a.str("instance").ok().and_then(|i| i.ok().flatten()))
            .map(|i| doc.model_id(&i.value));
        let item = Interface {
            name: doc.id(r).to_string(),
            origin: r.values.origin(),
            description: one(out, r, b.str("description")?).map(|d| d.value),
            addresses: At::new(addrs, r.values.origin()),
            security_groups: ids_of(doc, out, r, b.strings("security_groups")?),
            zone: None,
            place: InterfacePlace {
                subnet: id_of(doc, out, r, b.str("subnet_id")?),
                instance,
                title: b.tag("tags", "Name")?,
                tracking: Some(At::bare("aws".to_string())),
                ..InterfacePlace::default()
            },
        };
        out.model.interfaces.push(item);
    }
    for r in doc.managed("aws_network_interface_sg_attachment") {
        let b = Block::of(doc, r);
        let (Some(sg), Some(eni)) = (
            need_id(doc, out, r, &b, "security_group_id")?,
            need_id(doc, out, r, &b, "network_interface_id")?,
        ) else {
            continue;
        };
        match out
            .model
            .interfaces
            .iter_mut()
            .find(|i| i.name == eni.value)
        {
            Some(i) if !i.security_groups.iter().any(|s| s.value == sg.value) => {
                i.security_groups.push(sg)
            }
            Some(_) => {}
            None => out.skip(
                &r.address,
                eni.origin,
                format!("interface `{}` is not in the input", eni.value),
            ),
        }
    }
    Ok(())
}

/// An instance's primary interface.
fn instances(doc: &Doc, out: &mut Out) -> Result<(), ImportError> {
    for r in doc.managed("aws_instance") {
        let b = Block::of(doc, r);
        if b.is_unknown("private_ip") && !matches!(b.str("private_ip")?, Ok(Some(_))) {
            out.skip(
                &r.address,
                r.values.origin(),
                "private address unknown until apply; set private_ip to check it",
            );
            continue;
        }
        let addrs = match addresses(&b, &["private_ip", "ipv6_addresses"])? {
            Ok(a) if !a.is_empty() => a,
            Ok(_) => {
                out.skip(&r.address, r.values.origin(), "it has no private address");
                continue;
            }
            Err(why) => {
                out.skip(&r.address, r.values.origin(), why);
                continue;
            }
        };
        if b.is_unknown("ipv6_addresses")
            && matches!(b.int("ipv6_address_count")?, Ok(Some(n)) if n.value > 0)
        {
            out.skip(&r.address, r.values.origin(), "its IPv6 addresses are known only after apply: the interface has only its IPv4 address in the model; set ipv6_addresses to check them");
        }
        let eni = ["primary_network_interface_id", "network_interface_id"]
            .iter()
            .find_map(|k| {
                b.str(k)
                    .ok()
                    .and_then(|v| v.ok().flatten())
                    .filter(|_| !b.is_unknown(k))
            })
            .map(|e| e.value)
            .unwrap_or_else(|| super::doc::placeholder("eni", &r.address));
        let mut public = Vec::new();
        if let Ok(Some(p)) = b.str("public_ip")? {
            if let Ok(n) = parse_net(&p.value) {
                public.push(At::new(n, p.origin));
            }
        } else if b.bool("associate_public_ip_address")?.ok().flatten() == Some(true) {
            out.skip(
                &r.address,
                r.values.origin(),
                "its public address is known only after apply: the interface has none in the model",
            );
        }
        let mut sgs = ids_of(doc, out, r, b.strings("vpc_security_group_ids")?);
        sgs.dedup_by(|a, b| a.value == b.value);
        let item = Interface {
            name: eni,
            origin: r.values.origin(),
            description: None,
            addresses: At::new(addrs, r.values.origin()),
            security_groups: sgs,
            zone: None,
            place: InterfacePlace {
                subnet: id_of(doc, out, r, b.str("subnet_id")?),
                instance: Some(doc.id(r).to_string()),
                title: b.tag("tags", "Name")?,
                public_addresses: public,
                tracking: Some(At::bare("aws".to_string())),
                az: one(out, r, b.str("availability_zone")?).map(|a| a.value),
                ..InterfacePlace::default()
            },
        };
        out.model.interfaces.push(item);
    }
    Ok(())
}

fn prefix_lists(doc: &Doc, out: &mut Out) -> Result<(), ImportError> {
    for r in doc.managed("aws_ec2_managed_prefix_list") {
        let b = Block::of(doc, r);
        let mut entries = Vec::new();
        for e in out.got(r, b.blocks("entry")?).unwrap_or_default() {
            match e.str("cidr")? {
                Ok(Some(c)) => match net(&c.value) {
                    Some(n) => entries.push(At::new(n, c.origin)),
                    None => out.skip(&r.address, c.origin, format!("`{}` is not a CIDR", c.value)),
                },
                Ok(None) => {}
                Err(why) => out.skip(&r.address, e.origin(), why),
            }
        }
        let item = PrefixList {
            name: doc.id(r).to_string(),
            origin: r.values.origin(),
            entries,
            max_entries: out.got(r, b.int("max_entries")?).flatten(),
            owner: None,
            incomplete: false,
        };
        out.model.prefix_lists.push(item);
    }
    for r in doc.managed("aws_ec2_managed_prefix_list_entry") {
        let b = Block::of(doc, r);
        let (Some(pl), Some(c)) = (
            need_id(doc, out, r, &b, "prefix_list_id")?,
            need(out, r, &b, "cidr")?,
        ) else {
            continue;
        };
        let found = out
            .model
            .prefix_lists
            .iter()
            .position(|p| p.name == pl.value);
        match (found, net(&c.value)) {
            (Some(i), Some(n)) => out.model.prefix_lists[i].entries.push(At::new(n, c.origin)),
            (None, _) => out.skip(
                &r.address,
                pl.origin,
                format!("prefix list `{}` is not in the input", pl.value),
            ),
            (_, None) => out.skip(&r.address, c.origin, format!("`{}` is not a CIDR", c.value)),
        }
    }
    Ok(())
}

fn load_balancers(doc: &Doc, out: &mut Out) -> Result<(), ImportError> {
    for kind in ["aws_lb", "aws_alb"] {
        for r in doc.managed(kind) {
            load_balancer(doc, r, out)?;
        }
    }
    for kind in ["aws_lb_target_group", "aws_alb_target_group"] {
        for r in doc.managed(kind) {
            target_group(doc, r, out)?;
        }
    }
    for kind in ["aws_lb_listener", "aws_alb_listener"] {
        for r in doc.managed(kind) {
            listener(doc, r, out)?;
        }
    }
    for kind in [
        "aws_lb_target_group_attachment",
        "aws_alb_target_group_attachment",
    ] {
        for r in doc.managed(kind) {
            attachment(doc, r, out)?;
        }
    }
    Ok(())
}

fn load_balancer(doc: &Doc, r: &Resource, out: &mut Out) -> Result<(), ImportError> {
    let b = Block::of(doc, r);
    let kind = one(out, r, b.str("load_balancer_type")?)
        .unwrap_or_else(|| At::new("application".to_string(), r.values.origin()));
    let internal = out.got(r, b.bool("internal")?).flatten().unwrap_or(false);
    let subnets = ids_of(doc, out, r, b.strings("subnets")?);
    let mut zones = Vec::new();
    let mut vpc = None;
    for s in &subnets {
        if let Some(m) = out.model.subnets.iter().find(|x| x.name == s.value) {
            zones.extend(m.az.clone());
            vpc = vpc.or(Some(m.vpc.clone()));
        }
    }
    zones.sort();
    zones.dedup();
    let enforce = match one(
        out,
        r,
        b.str("enforce_security_group_inbound_rules_on_private_link_traffic")?,
    ) {
        Some(v) => Some(v.value.eq_ignore_ascii_case("on")),
        None => None,
    };
    let cross_zone = out
        .got(r, b.bool("enable_cross_zone_load_balancing")?)
        .flatten();
    let item = LoadBalancer {
        name: doc.id(r).to_string(),
        origin: r.values.origin(),
        kind,
        scheme: Some(At::new(
            if internal {
                "internal"
            } else {
                "internet-facing"
            }
            .to_string(),
            r.values.origin(),
        )),
        vpc,
        interfaces: Vec::new(),
        security_groups: ids_of(doc, out, r, b.strings("security_groups")?),
        cross_zone,
        enforce_inbound_rules_on_privatelink: enforce,
        listeners: Vec::new(),
        dns_name: b.str("dns_name")?.ok().flatten().map(|d| d.value),
        arn: b
            .str("arn")?
            .ok()
            .flatten()
            .filter(|_| !b.is_unknown("arn"))
            .map(|a| a.value),
        zones,
    };
    out.model.load_balancers.push(item);
    Ok(())
}

fn target_group(doc: &Doc, r: &Resource, out: &mut Out) -> Result<(), ImportError> {
    let b = Block::of(doc, r);
    let health_check_port = b
        .blocks("health_check")?
        .ok()
        .and_then(|h| h.into_iter().next())
        .and_then(|h| h.str("port").ok().and_then(|p| p.ok().flatten()))
        .map(|p| p.value);
    let preserve = match one(out, r, b.str("preserve_client_ip")?) {
        Some(p) => p.value.parse::<bool>().ok(),
        None => None,
    };
    let item = TargetGroup {
        name: doc.id(r).to_string(),
        origin: r.values.origin(),
        proto: one(out, r, b.str("protocol")?)
            .map(|p| At::new(p.value.to_ascii_lowercase(), p.origin)),
        port: out.got(r, b.int("port")?).flatten(),
        vpc: id_of(doc, out, r, b.str("vpc_id")?),
        target_type: one(out, r, b.str("target_type")?).map(|t| t.value),
        preserve_client_ip: preserve,
        health_check_port,
        targets: Vec::new(),
        arn: b
            .str("arn")?
            .ok()
            .flatten()
            .filter(|_| !b.is_unknown("arn"))
            .map(|a| a.value),
    };
    out.model.target_groups.push(item);
    Ok(())
}

fn listener(doc: &Doc, r: &Resource, out: &mut Out) -> Result<(), ImportError> {
    let b = Block::of(doc, r);
    let Some(lb) = need_id(doc, out, r, &b, "load_balancer_arn")? else {
        return Ok(());
    };
    let mut target_group = None;
    for a in out.got(r, b.blocks("default_action")?).unwrap_or_default() {
        if let Some(tg) = out.got(r, a.str("target_group_arn")?).flatten() {
            target_group = Some(At::new(doc.model_id(&tg.value), tg.origin));
            break;
        }
    }
    let l = Listener {
        origin: r.values.origin(),
        proto: one(out, r, b.str("protocol")?)
            .map(|p| At::new(p.value.to_ascii_lowercase(), p.origin))
            .unwrap_or_else(|| At::new("geneve".to_string(), r.values.origin())),
        port: out.got(r, b.int("port")?).flatten(),
        target_group,
    };
    match out
        .model
        .load_balancers
        .iter_mut()
        .find(|x| x.name == lb.value)
    {
        Some(x) => x.listeners.push(l),
        None => out.skip(
            &r.address,
            lb.origin,
            format!("load balancer `{}` is not in the input", lb.value),
        ),
    }
    Ok(())
}

fn attachment(doc: &Doc, r: &Resource, out: &mut Out) -> Result<(), ImportError> {
    let b = Block::of(doc, r);
    let (Some(tg), Some(target)) = (
        need_id(doc, out, r, &b, "target_group_arn")?,
        need_id(doc, out, r, &b, "target_id")?,
    ) else {
        return Ok(());
    };
    let t = Target {
        origin: r.values.origin(),
        id: target,
        port: out.got(r, b.int("port")?).flatten(),
        az: one(out, r, b.str("availability_zone")?).map(|a| a.value),
        health: None,
    };
    match out
        .model
        .target_groups
        .iter_mut()
        .find(|x| x.name == tg.value)
    {
        Some(x) => x.targets.push(t),
        None => out.skip(
            &r.address,
            tg.origin,
            format!("target group `{}` is not in the input", tg.value),
        ),
    }
    Ok(())
}

fn endpoints(doc: &Doc, out: &mut Out) -> Result<(), ImportError> {
    for r in doc.managed("aws_vpc_endpoint") {
        let b = Block::of(doc, r);
        let kind = one(out, r, b.str("vpc_endpoint_type")?)
            .map(|k| {
                let v = match k.value.as_str() {
                    "GatewayLoadBalancer" => "gateway_load_balancer".to_string(),
                    other => other.to_ascii_lowercase(),
                };
                At::new(v, k.origin)
            })
            .unwrap_or_else(|| At::new("gateway".to_string(), r.values.origin()));
        let dns_names = b
            .blocks("dns_entry")?
            .unwrap_or_default()
            .into_iter()
            .filter_map(|d| d.str("dns_name").ok().and_then(|n| n.ok().flatten()))
            .map(|n| n.value)
            .collect();
        let item = Endpoint {
            name: doc.id(r).to_string(),
            origin: r.values.origin(),
            kind,
            service: one(out, r, b.str("service_name")?),
            vpc: id_of(doc, out, r, b.str("vpc_id")?),
            subnets: ids_of(doc, out, r, b.strings("subnet_ids")?),
            interfaces: b.strings("network_interface_ids")?.unwrap_or_default(),
            security_groups: ids_of(doc, out, r, b.strings("security_group_ids")?),
            route_tables: ids_of(doc, out, r, b.strings("route_table_ids")?),
            dns_names,
            state: b.str("state")?.ok().flatten().map(|s| s.value),
        };
        out.model.endpoints.push(item);
    }
    Ok(())
}
