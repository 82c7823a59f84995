//! Security groups (`DescribeSecurityGroups` for their type and name,
//! `DescribeSecurityGroupAttribute` for their rules and
//! `InnerAccessPolicy`) and network interfaces (`DescribeNetworkInterfaces`,
//! else the instances of `DescribeInstances`).
//!
//! The rules as Alibaba evaluates them: `Priority` 1-100, smaller first,
//! `Drop` before `Accept` at a tie (the engine's own order); one rule per
//! source or destination that is set; `DestCidrIp` on an inbound rule (and
//! `SourceCidrIp` on an outbound one) is the local address of the
//! five-tuple rule; `SourcePortRange` is the packet's source port.
//! A basic group's members reach each other when its `InnerAccessPolicy`
//! is `Accept`; an enterprise group's never do.

use std::collections::{HashMap, HashSet};

use ipnet::IpNet;

use super::recognise::Inputs;
use super::vpc::{port_range, protocol};
use super::{
    add_unique, at_value, block, host, need_value, nested, nested_values, text, value, Build,
};
use crate::import::json::Node;
use crate::import::ImportError;
use crate::policy::model::{
    At, ExternalGroup, Interface, InterfacePlace, Remote, Rule, SecurityGroup,
};
use crate::policy::types::{Action, ProtoMatch};

pub(super) fn convert(b: &mut Build, inputs: &Inputs) -> Result<(), ImportError> {
    let mut kinds: HashMap<String, GroupKind> = HashMap::new();
    for n in &inputs.security_groups {
        listed_group(b, n, &mut kinds)?;
    }
    let mut described = HashSet::new();
    for n in &inputs.attributes {
        let id = need_value(n, "SecurityGroupId")?;
        if described.insert(id.to_string()) {
            attribute(b, n, kinds.get(id).copied())?;
        }
    }
    for (id, sg) in &b.security_groups {
        if !described.contains(id) {
            b.skipped.push(crate::import::Skipped {
                id: id.clone(),
                origin: sg.origin.clone(),
                why: "its rules are not in the input (add DescribeSecurityGroupAttribute \
                      of the group): it has none here"
                    .into(),
            });
        }
    }
    interfaces(b, inputs)
}

/// `SecurityGroupType`: `normal` (basic) or `enterprise` (advanced).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GroupKind {
    Basic,
    Enterprise,
}

/// A group of `DescribeSecurityGroups`: its names and type; its rules come
/// from its `DescribeSecurityGroupAttribute`.
fn listed_group(
    b: &mut Build,
    n: &Node,
    kinds: &mut HashMap<String, GroupKind>,
) -> Result<(), ImportError> {
    let id = need_value(n, "SecurityGroupId")?;
    if b.security_groups.contains_key(id) {
        return Ok(());
    }
    let kind = match n.str("SecurityGroupType")? {
        Some(t) if t.eq_ignore_ascii_case("enterprise") => GroupKind::Enterprise,
        _ => GroupKind::Basic,
    };
    kinds.insert(id.to_string(), kind);
    let sg = SecurityGroup {
        name: id.to_string(),
        origin: n.origin(),
        description: text(n, "Description")?,
        title: text(n, "SecurityGroupName")?,
        vpc: at_value(n, "VpcId")?,
        ..SecurityGroup::default()
    };
    b.security_groups.insert(id.to_string(), sg);
    Ok(())
}

/// A `DescribeSecurityGroupAttribute` response: the group's rules, both
/// directions, in the API's order, and its intra-group policy.
fn attribute(b: &mut Build, n: &Node, kind: Option<GroupKind>) -> Result<(), ImportError> {
    let id = need_value(n, "SecurityGroupId")?;
    let mut sg = b
        .security_groups
        .remove(id)
        .unwrap_or_else(|| SecurityGroup {
            name: id.to_string(),
            origin: n.origin(),
            ..SecurityGroup::default()
        });
    sg.description = sg.description.or(text(n, "Description")?);
    sg.title = sg.title.or(text(n, "SecurityGroupName")?);
    if sg.vpc.is_none() {
        sg.vpc = at_value(n, "VpcId")?;
    }
    let inner = n.str("InnerAccessPolicy")?;
    // Without DescribeSecurityGroups the type is unknown: an enterprise
    // group answers `Drop`, which is what it means.
    sg.intra_group = match (kind, inner) {
        (Some(GroupKind::Enterprise), _) => false,
        (_, Some(p)) if p.eq_ignore_ascii_case("Accept") => true,
        (_, Some(p)) if p.eq_ignore_ascii_case("Drop") => false,
        (_, Some(p)) => {
            return Err(n
                .need("InnerAccessPolicy")?
                .error(format!("expected Accept or Drop, found `{p}`")))
        }
        // A basic group's default is Accept.
        (_, None) => kind == Some(GroupKind::Basic),
    };
    if let Some(perms) = n.get("Permissions") {
        for p in perms.array("Permission")? {
            permission(b, &mut sg, &p)?;
        }
    }
    if sg.egress.is_empty() && kind != Some(GroupKind::Enterprise) {
        // A basic group with no outbound rules allows all outbound traffic
        // (Alibaba's implicit default rules). An enterprise group created
        // without rules denies all outbound traffic: it keeps no egress
        // rules, and no rule is a `no-rule` deny.
        for to in ["0.0.0.0/0", "::/0"] {
            let net: IpNet = to.parse().expect("a block");
            let mut r = Rule::new(ProtoMatch::Any, vec![At::new(Remote::Net(net), n.origin())]);
            r.origin = n.origin();
            r.priority = Some(At::new(100, n.origin()));
            r.description = Some(
                "implicit: a basic security group without outbound rules allows all outbound \
                 traffic"
                    .into(),
            );
            sg.egress.push(r);
        }
    }
    b.security_groups.insert(id.to_string(), sg);
    Ok(())
}

/// The keys of a permission seen from one direction.
struct Keys {
    /// Remote ends: CIDR keys, then the group and prefix-list keys.
    nets: [&'static str; 2],
    group: &'static str,
    group_account: &'static str,
    prefix_list: &'static str,
    /// The local address (Alibaba's five-tuple rule).
    local: [&'static str; 2],
}

const INGRESS: Keys = Keys {
    nets: ["SourceCidrIp", "Ipv6SourceCidrIp"],
    group: "SourceGroupId",
    group_account: "SourceGroupOwnerAccount",
    prefix_list: "SourcePrefixListId",
    local: ["DestCidrIp", "Ipv6DestCidrIp"],
};

const EGRESS: Keys = Keys {
    nets: ["DestCidrIp", "Ipv6DestCidrIp"],
    group: "DestGroupId",
    group_account: "DestGroupOwnerAccount",
    prefix_list: "DestPrefixListId",
    local: ["SourceCidrIp", "Ipv6SourceCidrIp"],
};

/// One `Permission`: one rule per remote end that is set.
fn permission(b: &mut Build, sg: &mut SecurityGroup, p: &Node) -> Result<(), ImportError> {
    let group = sg.name.clone();
    let dir_at = p.need("Direction")?;
    let direction = p.need_str("Direction")?;
    let (keys, ingress) = match direction.to_ascii_lowercase().as_str() {
        "ingress" => (&INGRESS, true),
        "egress" => (&EGRESS, false),
        other => return Err(dir_at.error(format!("expected ingress or egress, found `{other}`"))),
    };
    let Some(template) = shape(b, &group, p, keys)? else {
        return Ok(());
    };
    let mut remotes: Vec<At<Remote>> = Vec::new();
    for k in keys.nets {
        if let Some(net) = block(p, k)? {
            remotes.push(At::new(Remote::Net(net.value), net.origin));
        }
    }
    if let Some(g) = at_value(p, keys.group)? {
        b.note_group(ExternalGroup {
            name: g.value.clone(),
            origin: g.origin.clone(),
            account: text(p, keys.group_account)?,
            ..ExternalGroup::default()
        });
        remotes.push(At::new(Remote::Sg(g.value), g.origin));
    }
    if let Some(pl) = at_value(p, keys.prefix_list)? {
        b.note_prefix_list(&pl.value, pl.origin.clone());
        remotes.push(At::new(Remote::PrefixList(pl.value), pl.origin));
    }
    if remotes.is_empty() {
        b.skip(&group, p.origin(), "a rule with no source or destination");
        return Ok(());
    }
    let list = if ingress {
        &mut sg.ingress
    } else {
        &mut sg.egress
    };
    for remote in remotes {
        let mut r = template.clone();
        r.remote = vec![remote];
        list.push(r);
    }
    Ok(())
}

/// What the rules of one permission share; `None` when the model cannot
/// say it (listed as skipped).
fn shape(b: &mut Build, group: &str, p: &Node, keys: &Keys) -> Result<Option<Rule>, ImportError> {
    let rule_id = value(p, "SecurityGroupRuleId")?.map(str::to_string);
    let label = rule_id
        .as_deref()
        .map(|r| format!("rule {r}: "))
        .unwrap_or_default();
    let mut skip = |why: String| b.skip(group, p.origin(), format!("{label}{why}"));
    let proto_text = p.need_str("IpProtocol")?;
    let Some(proto) = protocol(proto_text) else {
        skip(format!("protocol `{proto_text}` is not one sgplane knows"));
        return Ok(None);
    };
    if let Some(list) = value(p, "PortRangeListId")? {
        skip(format!(
            "port list `{list}` (PortRangeListId) cannot be represented"
        ));
        return Ok(None);
    }
    if p.str("NicType")?
        .is_some_and(|t| t.eq_ignore_ascii_case("internet"))
    {
        skip("a classic-network internet NIC rule".into());
        return Ok(None);
    }
    let mut ports = port_range(p, "PortRange")?.flatten();
    let mut source_ports = port_range(p, "SourcePortRange")?.flatten();
    if !proto.has_ports() {
        if ports.is_some() || source_ports.is_some() {
            skip(format!(
                "ports on protocol `{proto_text}`, which has none (Alibaba writes -1/-1)"
            ));
            return Ok(None);
        }
        ports = None;
        source_ports = None;
    }
    let locals: Vec<At<IpNet>> = keys
        .local
        .iter()
        .map(|k| block(p, k))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .collect();
    if locals.len() > 1 {
        skip("both an IPv4 and an IPv6 local address: a rule has one".into());
        return Ok(None);
    }
    let action = match p.str("Policy")? {
        None => Action::Allow,
        Some(a) if a.eq_ignore_ascii_case("accept") => Action::Allow,
        Some(a) if a.eq_ignore_ascii_case("drop") => Action::Deny,
        Some(a) => {
            return Err(p
                .need("Policy")?
                .error(format!("expected Accept or Drop, found `{a}`")))
        }
    };
    let priority = match p.int("Priority")? {
        None => None,
        Some(v) if (1..=100).contains(&v) => Some(At::new(v, p.need("Priority")?.origin())),
        Some(v) => {
            return Err(p
                .need("Priority")?
                .error(format!("priority {v} is out of range: Alibaba's run 1-100")))
        }
    };
    let mut r = Rule::new(proto, Vec::new());
    r.origin = p.origin();
    r.ports = ports;
    r.source_ports = source_ports;
    r.local = locals.into_iter().next();
    r.action = action;
    // Alibaba's default priority is 1, as the model's.
    r.priority = Some(priority.unwrap_or_else(|| At::new(1, p.origin())));
    r.description = text(p, "Description")?;
    r.id = rule_id;
    Ok(Some(r))
}

/// Interfaces: every ENI of `DescribeNetworkInterfaces`, then, for
/// instances whose ENIs it does not list, what `DescribeInstances` says.
fn interfaces(b: &mut Build, inputs: &Inputs) -> Result<(), ImportError> {
    let mut names: HashMap<String, String> = HashMap::new();
    for i in &inputs.instances {
        if let (Some(id), Some(name)) = (value(i, "InstanceId")?, text(i, "InstanceName")?) {
            names.insert(id.to_string(), name);
        }
    }
    for n in &inputs.network_interfaces {
        eni(b, n, &names)?;
    }
    for n in &inputs.instances {
        instance(b, n)?;
    }
    Ok(())
}

fn eni(b: &mut Build, n: &Node, names: &HashMap<String, String>) -> Result<(), ImportError> {
    let id = need_value(n, "NetworkInterfaceId")?;
    if b.interfaces.contains_key(id) {
        return Ok(());
    }
    let mut addresses = Vec::new();
    add_unique(&mut addresses, host(n, "PrivateIpAddress")?);
    for s in nested(n, "PrivateIpSets", "PrivateIpSet")? {
        add_unique(&mut addresses, host(&s, "PrivateIpAddress")?);
    }
    for s in nested(n, "Ipv6Sets", "Ipv6Set")? {
        add_unique(&mut addresses, host(&s, "Ipv6Address")?);
    }
    for s in nested(n, "Ipv4PrefixSets", "Ipv4PrefixSet")? {
        add_unique(&mut addresses, block(&s, "Ipv4Prefix")?);
    }
    for s in nested(n, "Ipv6PrefixSets", "Ipv6PrefixSet")? {
        add_unique(&mut addresses, block(&s, "Ipv6Prefix")?);
    }
    let mut public = Vec::new();
    if let Some(a) = n.get("AssociatedPublicIp") {
        add_unique(&mut public, host(&a, "PublicIpAddress")?);
    }
    for s in nested(n, "PrivateIpSets", "PrivateIpSet")? {
        if let Some(a) = s.get("AssociatedPublicIp") {
            add_unique(&mut public, host(&a, "PublicIpAddress")?);
        }
    }
    let instance = value(n, "InstanceId")?.map(str::to_string);
    let title = match instance.as_ref().and_then(|i| names.get(i)) {
        Some(t) => Some(t.clone()),
        None => text(n, "NetworkInterfaceName")?,
    };
    let kind = match n.str("Type")? {
        None | Some("Primary") | Some("Secondary") => None,
        Some("Trunk") => Some("trunk"),
        Some("Member") => Some("branch"),
        Some(t) => {
            b.skip(
                id,
                n.origin(),
                format!("interface type `{t}` is not one sgplane knows: kept as `other`"),
            );
            Some("other")
        }
    };
    let groups = nested_values(n, "SecurityGroupIds", "SecurityGroupId")?;
    let place = Place {
        vswitch: at_value(n, "VSwitchId")?,
        vpc: at_value(n, "VpcId")?,
        zone: text(n, "ZoneId")?,
        instance,
        title,
        kind: kind.map(|k| At::new(k.to_string(), n.origin())),
        public,
    };
    add_interface(b, id, n, text(n, "Description")?, addresses, groups, place);
    Ok(())
}

/// Where an interface is, as its response says.
struct Place {
    vswitch: Option<At<String>>,
    vpc: Option<At<String>>,
    zone: Option<String>,
    instance: Option<String>,
    title: Option<String>,
    kind: Option<At<String>>,
    public: Vec<At<IpNet>>,
}

/// An instance whose ENIs `DescribeNetworkInterfaces` did not list: one
/// interface, named by its primary ENI when the response names it, else by
/// the instance, with the instance's addresses and groups. Secondary ENIs
/// listed only here lack their groups: they are skipped, and say so.
fn instance(b: &mut Build, n: &Node) -> Result<(), ImportError> {
    let id = need_value(n, "InstanceId")?;
    let enis = nested(n, "NetworkInterfaces", "NetworkInterface")?;
    let mut primary: Option<String> = None;
    for e in &enis {
        let Some(eni) = value(e, "NetworkInterfaceId")? else {
            continue;
        };
        let is_primary = e.str("Type")?.is_none_or(|t| t == "Primary");
        if is_primary && primary.is_none() {
            primary = Some(eni.to_string());
        } else if !b.interfaces.contains_key(eni) {
            b.skip(
                eni,
                e.origin(),
                format!(
                    "a secondary ENI of {id} that DescribeNetworkInterfaces does not list: \
                     its security groups are unknown"
                ),
            );
        }
    }
    let name = primary.unwrap_or_else(|| id.to_string());
    let listed = b.interfaces.contains_key(&name)
        || b.interfaces
            .values()
            .any(|i| i.place.instance.as_deref() == Some(id) && i.place.kind.is_none());
    if listed {
        return Ok(());
    }
    let va = n.get("VpcAttributes");
    let mut addresses = Vec::new();
    if let Some(va) = &va {
        if let Some(p) = va.get("PrivateIpAddress") {
            for a in p.array("IpAddress")? {
                add_unique(&mut addresses, address_item(&a)?);
            }
        }
    }
    for e in &enis {
        if value(e, "NetworkInterfaceId")? == Some(name.as_str()) {
            add_unique(&mut addresses, host(e, "PrimaryIpAddress")?);
            for s in nested(e, "PrivateIpSets", "PrivateIpSet")? {
                add_unique(&mut addresses, host(&s, "PrivateIpAddress")?);
            }
            for s in nested(e, "Ipv6Sets", "Ipv6Set")? {
                add_unique(&mut addresses, host(&s, "Ipv6Address")?);
            }
        }
    }
    let mut public = Vec::new();
    if let Some(p) = n.get("PublicIpAddress") {
        for a in p.array("IpAddress")? {
            add_unique(&mut public, address_item(&a)?);
        }
    }
    if let Some(eip) = n.get("EipAddress") {
        add_unique(&mut public, host(&eip, "IpAddress")?);
    }
    let (vswitch, vpc) = match &va {
        Some(va) => (at_value(va, "VSwitchId")?, at_value(va, "VpcId")?),
        None => (None, None),
    };
    let place = Place {
        vswitch,
        vpc,
        zone: text(n, "ZoneId")?,
        instance: Some(id.to_string()),
        title: text(n, "InstanceName")?,
        kind: None,
        public,
    };
    let groups = nested_values(n, "SecurityGroupIds", "SecurityGroupId")?;
    add_interface(
        b,
        &name,
        n,
        text(n, "Description")?,
        addresses,
        groups,
        place,
    );
    Ok(())
}

/// An element of an `IpAddress` list, as a host block.
fn address_item(a: &Node) -> Result<Option<At<IpNet>>, ImportError> {
    let s = a.as_str()?;
    if s.is_empty() {
        return Ok(None);
    }
    if super::is_masked(s) {
        return Err(a.error(format!(
            "`{s}` is a masked value from documentation, not a real one: use the API's own response"
        )));
    }
    let addr: std::net::IpAddr = s
        .parse()
        .map_err(|_| a.error(format!("`{s}` is not an IP address")))?;
    Ok(Some(At::new(IpNet::from(addr), a.origin())))
}

fn add_interface(
    b: &mut Build,
    id: &str,
    n: &Node,
    description: Option<String>,
    addresses: Vec<At<IpNet>>,
    groups: Vec<At<String>>,
    place: Place,
) {
    if addresses.is_empty() {
        b.skip(id, n.origin(), "an interface with no private address");
        return;
    }
    let mut security_groups: Vec<At<String>> = Vec::new();
    for g in groups {
        if !security_groups.iter().any(|x| x.value == g.value) {
            b.note_group(ExternalGroup {
                name: g.value.clone(),
                origin: g.origin.clone(),
                vpc: place.vpc.as_ref().map(|v| v.value.clone()),
                ..ExternalGroup::default()
            });
            security_groups.push(g);
        }
    }
    // The vSwitch gives the VPC, the ACL and the zone when the input
    // describes it; otherwise the interface names its VPC.
    let known = place
        .vswitch
        .as_ref()
        .is_some_and(|s| b.subnets.contains_key(&s.value));
    let (subnet, vpc) = if known {
        (place.vswitch, None)
    } else {
        (None, place.vpc)
    };
    let iface = Interface {
        name: id.to_string(),
        origin: n.origin(),
        description,
        addresses: At::new(addresses, n.origin()),
        security_groups,
        zone: None,
        place: InterfacePlace {
            subnet,
            vpc,
            instance: place.instance,
            title: place.title,
            kind: place.kind,
            public_addresses: place.public,
            az: place.zone,
            ..InterfacePlace::default()
        },
    };
    b.interfaces.insert(id.to_string(), iface);
}
