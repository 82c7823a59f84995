//! Security groups and their rules (`describe-security-groups`, and
//! `describe-security-group-rules`, preferred when present: it carries the
//! `sgr-` ids), and network interfaces: from `describe-network-interfaces`,
//! else from the instances of `describe-instances`. Groups come from each
//! ENI, never from the instance.

use std::collections::{BTreeMap, HashMap};

use ipnet::IpNet;

use super::recognise::Inputs;
use super::{at_int, at_str, block, host, name_tag, protocol, string, Build};
use crate::import::json::Node;
use crate::import::ImportError;
use crate::policy::model::{
    At, ExternalGroup, Interface, InterfacePlace, InterfaceTimeouts, Origin, Remote, Rule,
    SecurityGroup, INTERFACE_KINDS,
};
use crate::policy::types::{PortRange, ProtoMatch};

pub(super) fn convert(b: &mut Build, inputs: &Inputs) -> Result<(), ImportError> {
    for f in &inputs.security_groups {
        security_group(b, &f.node)?;
    }
    security_group_rules(b, inputs)?;
    interfaces(b, inputs)
}

fn security_group(b: &mut Build, n: &Node) -> Result<(), ImportError> {
    let id = n.need_str("GroupId")?;
    if b.security_groups.contains_key(id) {
        return Ok(());
    }
    let mut sg = SecurityGroup {
        name: id.to_string(),
        origin: n.origin(),
        description: string(n, "Description")?,
        title: string(n, "GroupName")?,
        vpc: at_str(n, "VpcId")?,
        ..SecurityGroup::default()
    };
    for p in n.array("IpPermissions")? {
        sg.ingress.extend(permission(b, id, &p)?);
    }
    for p in n.array("IpPermissionsEgress")? {
        sg.egress.extend(permission(b, id, &p)?);
    }
    b.security_groups.insert(id.to_string(), sg);
    Ok(())
}

/// What the rules of one `IpPermissions` entry share: protocol, ports,
/// ICMP type and code.
struct Shape {
    proto: ProtoMatch,
    ports: Option<At<Vec<PortRange>>>,
    icmp_type: Option<At<i64>>,
    icmp_code: Option<At<i64>>,
}

impl Shape {
    /// Reads `IpProtocol`, `FromPort`, `ToPort` of `n`; `Err(why)` when the
    /// model cannot say it.
    fn read(n: &Node) -> Result<Result<Shape, String>, ImportError> {
        let text = n.need_str("IpProtocol")?;
        let Some(proto) = protocol(text) else {
            return Ok(Err(format!(
                "protocol `{text}` is not -1, a name or a number 0-255"
            )));
        };
        let (from, to) = (at_int(n, "FromPort")?, at_int(n, "ToPort")?);
        let mut shape = Shape {
            proto,
            ports: None,
            icmp_type: None,
            icmp_code: None,
        };
        if proto.has_ports() {
            match (&from, &to) {
                (Some(f), Some(t)) if f.value == -1 || (f.value, t.value) == (0, 65535) => {}
                (Some(f), Some(t))
                    if (0..=65535).contains(&f.value) && (f.value..=65535).contains(&t.value) =>
                {
                    let r = PortRange {
                        lo: f.value as u16,
                        hi: t.value as u16,
                    };
                    shape.ports = Some(At::new(vec![r], f.origin.clone()));
                }
                (None, _) | (_, None) => {}
                (Some(f), Some(t)) => {
                    return Ok(Err(format!(
                        "ports {}-{} are not a range",
                        f.value, t.value
                    )))
                }
            }
        } else if proto.is_icmp() {
            // FromPort is the type, ToPort the code; -1 is any.
            shape.icmp_type = from.filter(|t| t.value != -1);
            shape.icmp_code = to.filter(|c| c.value != -1 && shape.icmp_type.is_some());
            for v in [&shape.icmp_type, &shape.icmp_code].into_iter().flatten() {
                if !(0..=255).contains(&v.value) {
                    return Ok(Err(format!("ICMP type or code {} is not 0-255", v.value)));
                }
            }
        }
        // Any other protocol (a number, -1) means all ports, whatever the
        // ports say.
        Ok(Ok(shape))
    }

    fn rule(&self, remote: At<Remote>, at: &Node) -> Result<Rule, ImportError> {
        let mut r = Rule::new(self.proto, vec![remote]);
        r.origin = at.origin();
        r.ports = self.ports.clone();
        r.icmp_type = self.icmp_type.clone();
        r.icmp_code = self.icmp_code.clone();
        r.description = string(at, "Description")?;
        r.id = string(at, "SecurityGroupRuleId")?;
        Ok(r)
    }
}

/// One `IpPermissions` entry: one rule per source, in the API's order.
fn permission(b: &mut Build, group: &str, p: &Node) -> Result<Vec<Rule>, ImportError> {
    let shape = match Shape::read(p)? {
        Ok(s) => s,
        Err(why) => {
            b.skip(group, p.origin(), why);
            return Ok(Vec::new());
        }
    };
    let mut rules = Vec::new();
    for (list, key) in [("IpRanges", "CidrIp"), ("Ipv6Ranges", "CidrIpv6")] {
        for r in p.array(list)? {
            let Some(net) = block(&r, key)? else {
                b.skip(group, r.origin(), format!("`{key}` is missing"));
                continue;
            };
            rules.push(shape.rule(At::new(Remote::Net(net.value), net.origin), &r)?);
        }
    }
    for r in p.array("PrefixListIds")? {
        let pl = r.need("PrefixListId")?;
        let id = pl.as_str()?;
        b.note_prefix_list(id, pl.origin());
        let remote = At::new(Remote::PrefixList(id.to_string()), pl.origin());
        rules.push(shape.rule(remote, &r)?);
    }
    for r in p.array("UserIdGroupPairs")? {
        if let Some(remote) = group_pair(b, group, &r, "GroupId")? {
            rules.push(shape.rule(remote, &r)?);
        }
    }
    if rules.is_empty() && !has_sources(p) {
        b.skip(
            group,
            p.origin(),
            "a permission with no source or destination",
        );
    }
    Ok(rules)
}

fn has_sources(p: &Node) -> bool {
    [
        "IpRanges",
        "Ipv6Ranges",
        "PrefixListIds",
        "UserIdGroupPairs",
    ]
    .iter()
    .any(|k| {
        p.value
            .get(k)
            .and_then(|v| v.as_array())
            .is_some_and(|a| !a.is_empty())
    })
}

/// A reference to a group, kept whatever it names: this account's, another
/// account's (`UserId`), across a peering (`VpcPeeringConnectionId`,
/// `PeeringStatus`), or stale. What it says is kept for the group's
/// [`ExternalGroup`] entry, should the input not contain the group.
fn group_pair(
    b: &mut Build,
    group: &str,
    pair: &Node,
    id_key: &str,
) -> Result<Option<At<Remote>>, ImportError> {
    let Some(gid) = at_str(pair, id_key)? else {
        b.skip(
            group,
            pair.origin(),
            "a group pair without a group id (an EC2-Classic group name) cannot be resolved",
        );
        return Ok(None);
    };
    b.note_group(ExternalGroup {
        name: gid.value.clone(),
        origin: pair.origin(),
        account: string(pair, "UserId")?,
        vpc: string(pair, "VpcId")?,
        peering: string(pair, "VpcPeeringConnectionId")?,
        status: string(pair, "PeeringStatus")?,
    });
    Ok(Some(At::new(Remote::Sg(gid.value), gid.origin)))
}

/// `describe-security-group-rules`: for every group it names, its rules
/// replace those of `describe-security-groups`, in the API's order.
fn security_group_rules(b: &mut Build, inputs: &Inputs) -> Result<(), ImportError> {
    let mut by_group: BTreeMap<String, (Vec<Rule>, Vec<Rule>, Origin)> = BTreeMap::new();
    let mut seen = std::collections::HashSet::new();
    for f in &inputs.security_group_rules {
        let n = &f.node;
        let group = n.need_str("GroupId")?;
        if let Some(id) = n.str("SecurityGroupRuleId")? {
            if !seen.insert(id.to_string()) {
                continue;
            }
        }
        let entry = by_group
            .entry(group.to_string())
            .or_insert_with(|| (Vec::new(), Vec::new(), n.origin()));
        let shape = match Shape::read(n)? {
            Ok(s) => s,
            Err(why) => {
                b.skip(group, n.origin(), why);
                continue;
            }
        };
        let remote = if let Some(net) = block(n, "CidrIpv4")? {
            At::new(Remote::Net(net.value), net.origin)
        } else if let Some(net) = block(n, "CidrIpv6")? {
            At::new(Remote::Net(net.value), net.origin)
        } else if let Some(pl) = at_str(n, "PrefixListId")? {
            b.note_prefix_list(&pl.value, pl.origin.clone());
            At::new(Remote::PrefixList(pl.value), pl.origin)
        } else if let Some(g) = n.get("ReferencedGroupInfo") {
            match group_pair(b, group, &g, "GroupId")? {
                Some(r) => r,
                None => continue,
            }
        } else {
            b.skip(group, n.origin(), "a rule with no source or destination");
            continue;
        };
        let rule = shape.rule(remote, n)?;
        if n.bool("IsEgress")?.unwrap_or(false) {
            entry.1.push(rule);
        } else {
            entry.0.push(rule);
        }
    }
    for (group, (ingress, egress, origin)) in by_group {
        let sg = b
            .security_groups
            .entry(group.clone())
            .or_insert_with(|| SecurityGroup {
                name: group,
                origin,
                ..SecurityGroup::default()
            });
        sg.ingress = ingress;
        sg.egress = egress;
    }
    Ok(())
}

/// ENIs: each from `describe-network-interfaces` when there, else from the
/// instance that embeds it.
fn interfaces(b: &mut Build, inputs: &Inputs) -> Result<(), ImportError> {
    let mut titles: HashMap<String, String> = HashMap::new();
    let mut embedded = Vec::new();
    for f in &inputs.instances {
        let i = &f.node;
        let id = i.need_str("InstanceId")?;
        if let Some(name) = name_tag(i)? {
            titles.insert(id.to_string(), name);
        }
        for e in i.array("NetworkInterfaces")? {
            embedded.push((e, id));
        }
    }
    for f in &inputs.network_interfaces {
        interface(b, &f.node, None, &titles)?;
    }
    for (e, instance) in embedded {
        interface(b, &e, Some(instance), &titles)?;
    }
    Ok(())
}

fn interface(
    b: &mut Build,
    n: &Node,
    instance: Option<&str>,
    titles: &HashMap<String, String>,
) -> Result<(), ImportError> {
    let id = n.need_str("NetworkInterfaceId")?;
    if b.interfaces.contains_key(id) {
        return Ok(());
    }
    let addresses = addresses(n)?;
    if addresses.is_empty() {
        b.skip(id, n.origin(), "an interface with no private address");
        return Ok(());
    }
    let instance = match instance {
        Some(i) => Some(i.to_string()),
        None => match n.get("Attachment") {
            Some(a) => string(&a, "InstanceId")?,
            None => None,
        },
    };
    let description = string(n, "Description")?;
    let subnet = at_str(n, "SubnetId")?;
    let vpc = if subnet.is_none() {
        at_str(n, "VpcId")?
    } else {
        None
    };
    let title = match instance.as_ref().and_then(|i| titles.get(i)) {
        Some(t) => Some(t.clone()),
        None => name_tag(n)?,
    };
    let kind = kind(b, id, n, description.as_deref())?;
    let mut groups: Vec<At<String>> = Vec::new();
    for g in n.array("Groups")? {
        let Some(gid) = at_str(&g, "GroupId")? else {
            continue;
        };
        if !groups.iter().any(|x| x.value == gid.value) {
            b.note_group(ExternalGroup {
                name: gid.value.clone(),
                origin: gid.origin.clone(),
                account: string(n, "OwnerId")?,
                vpc: string(n, "VpcId")?,
                ..ExternalGroup::default()
            });
            groups.push(gid);
        }
    }
    let place = InterfacePlace {
        subnet,
        vpc,
        instance,
        title,
        kind,
        public_addresses: public_addresses(n)?,
        tracking: Some(At::new("aws".to_string(), n.origin())),
        timeouts: timeouts(n)?,
        conntrack_max: None,
        az: string(n, "AvailabilityZone")?,
    };
    let iface = Interface {
        name: id.to_string(),
        origin: n.origin(),
        description,
        addresses: At::new(addresses, n.origin()),
        security_groups: groups,
        zone: None,
        place,
    };
    b.interfaces.insert(id.to_string(), iface);
    Ok(())
}

/// Private IPv4 and IPv6 addresses as host blocks, then delegated prefixes.
fn addresses(n: &Node) -> Result<Vec<At<IpNet>>, ImportError> {
    let mut out: Vec<At<IpNet>> = Vec::new();
    let mut add = |a: Option<At<IpNet>>| {
        if let Some(a) = a {
            if !out.iter().any(|x| x.value == a.value) {
                out.push(a);
            }
        }
    };
    add(host(n, "PrivateIpAddress")?);
    for p in n.array("PrivateIpAddresses")? {
        add(host(&p, "PrivateIpAddress")?);
    }
    for p in n.array("Ipv6Addresses")? {
        add(host(&p, "Ipv6Address")?);
    }
    for p in n.array("Ipv4Prefixes")? {
        add(block(&p, "Ipv4Prefix")?);
    }
    for p in n.array("Ipv6Prefixes")? {
        add(block(&p, "Ipv6Prefix")?);
    }
    Ok(out)
}

fn public_addresses(n: &Node) -> Result<Vec<At<IpNet>>, ImportError> {
    let mut out: Vec<At<IpNet>> = Vec::new();
    let mut assocs: Vec<Node> = n.get("Association").into_iter().collect();
    for p in n.array("PrivateIpAddresses")? {
        assocs.extend(p.get("Association"));
    }
    for a in assocs {
        if let Some(ip) = host(&a, "PublicIp")? {
            if !out.iter().any(|x| x.value == ip.value) {
                out.push(ip);
            }
        }
    }
    Ok(out)
}

fn timeouts(n: &Node) -> Result<InterfaceTimeouts, ImportError> {
    let Some(c) = n.get("ConnectionTrackingConfiguration") else {
        return Ok(InterfaceTimeouts::default());
    };
    Ok(InterfaceTimeouts {
        tcp_established: at_int(&c, "TcpEstablishedTimeout")?,
        udp: at_int(&c, "UdpTimeout")?,
        udp_stream: at_int(&c, "UdpStreamTimeout")?,
    })
}

/// What the interface is: its `InterfaceType`, refined by what its
/// description says of the service that made it; load balancer and
/// endpoint ENIs are noted to be linked to their owner.
fn kind(
    b: &mut Build,
    id: &str,
    n: &Node,
    description: Option<&str>,
) -> Result<Option<At<String>>, ImportError> {
    let at = n.get("InterfaceType").unwrap_or_else(|| n.clone());
    let typ = n.str("InterfaceType")?.unwrap_or("interface");
    let mut kind = match typ {
        "natGateway" => "nat_gateway".to_string(),
        // SPEC §6 names every ELB node `load_balancer` (its load balancer
        // says which type); GWLB nodes stay apart.
        "network_load_balancer" => "load_balancer".to_string(),
        t if INTERFACE_KINDS.contains(&t) => t.to_string(),
        t => {
            b.skip(
                id,
                at.origin(),
                format!("interface type `{t}` is not one sgplane knows: kept as `other`"),
            );
            "other".to_string()
        }
    };
    let d = description.unwrap_or("");
    if let Some(lb) = d.strip_prefix("ELB ") {
        match lb.split('/').next() {
            Some("app") => kind = "load_balancer".into(),
            Some("net") => kind = "load_balancer".into(),
            Some("gwy") => kind = "gateway_load_balancer".into(),
            _ => kind = "load_balancer".into(),
        }
        b.lb_enis.push((id.to_string(), lb.to_string()));
    } else if let Some(rest) = d.strip_prefix("VPC Endpoint Interface ") {
        if kind == "interface" {
            kind = "vpc_endpoint".into();
        }
        b.endpoint_enis
            .push((id.to_string(), rest.trim().to_string()));
    } else if d.starts_with("AWS Lambda VPC ENI") {
        kind = "lambda".into();
    } else if d.starts_with("Interface for NAT Gateway ") {
        kind = "nat_gateway".into();
    }
    Ok((kind != "interface").then(|| At::new(kind, at.origin())))
}

/// Every group referenced (by a rule, an ENI, a load balancer, an endpoint)
/// that the input does not contain becomes an [`ExternalGroup`]: kept as a
/// reference that matches nothing, with what the reference said of it.
pub(super) fn external_groups(b: &mut Build) {
    let refs = std::mem::take(&mut b.sg_refs);
    for (name, mut g) in refs {
        if b.security_groups.contains_key(&name) {
            continue;
        }
        g.status.get_or_insert_with(|| "missing".into());
        b.sg_refs.insert(name, g);
    }
}
