//! Checks a [`Model`] and compiles it into a [`Policy`]: every problem is
//! collected with its origin, and a policy with any problem is rejected
//! whole. These checks and their messages are the same for every source of
//! a model (the TOML file, the cloud importers).

use std::collections::HashMap;

use ipnet::IpNet;

use super::diag::{Diagnostic, PolicyError};
use super::model::{self, At, Model, Origin};
use super::topology::{self as topology_types, VpcId};
use super::*;

mod topology;

pub(super) struct Ctx {
    /// Stands in for a missing origin: the policy as a whole.
    source: Origin,
    errors: Vec<Diagnostic>,
}

impl Ctx {
    pub(super) fn err(&mut self, origin: &Origin, msg: impl Into<String>) {
        let origin = match origin {
            Origin::None => self.source.clone(),
            o => o.clone(),
        };
        self.errors.push(Diagnostic::new(origin, msg));
    }
}

pub(super) fn compile(model: &Model) -> Result<Policy, PolicyError> {
    let mut cx = Ctx {
        source: Origin::File {
            file: model.source.as_str().into(),
        },
        errors: Vec::new(),
    };
    let policy = build(&mut cx, model);
    if cx.errors.is_empty() {
        Ok(policy)
    } else {
        cx.errors.sort_by_key(|d| (d.line, d.column));
        Err(PolicyError::Invalid(cx.errors))
    }
}

fn build(cx: &mut Ctx, model: &Model) -> Policy {
    let conntrack = conntrack(cx, &model.conntrack);

    // Names first, so rules can refer to anything defined anywhere in the file.
    let mut pl_by_name = HashMap::new();
    let mut prefix_lists = Vec::new();
    for pl in &model.prefix_lists {
        if !pl.name.starts_with("pl-") {
            cx.err(
                &pl.origin,
                format!("prefix list name `{}` must start with `pl-`", pl.name),
            );
        }
        let entries = pl.entries.iter().filter_map(|e| network(cx, e)).collect();
        pl_by_name.insert(pl.name.clone(), prefix_lists.len() as PrefixListId);
        let max_entries = pl.max_entries.as_ref().and_then(|n| {
            if (1..=1000).contains(&n.value) {
                Some(n.value as u32)
            } else {
                cx.err(
                    &n.origin,
                    format!(
                        "`max_entries = {}` is out of range: expected 1-1000",
                        n.value
                    ),
                );
                None
            }
        });
        prefix_lists.push(PrefixList {
            name: pl.name.clone(),
            entries,
            max_entries,
            owner: pl.owner.clone(),
            incomplete: pl.incomplete,
        });
    }
    let (mut topo, topo_names) = topology::build(cx, model);
    let imported = model.imported.is_some();
    // An imported policy may reference prefix lists its input did not list.
    if imported {
        for name in referenced(model, |r| match r {
            model::Remote::PrefixList(n) => Some(n),
            _ => None,
        }) {
            if !pl_by_name.contains_key(name) {
                topo.dangling.push(format!(
                    "prefix list `{name}` is referenced but not in the input: it matches nothing"
                ));
                pl_by_name.insert(name.clone(), prefix_lists.len() as PrefixListId);
                prefix_lists.push(PrefixList {
                    name: name.clone(),
                    entries: Vec::new(),
                    max_entries: None,
                    owner: None,
                    incomplete: true,
                });
            }
        }
    }

    let mut sg_by_name = HashMap::new();
    let mut security_groups = Vec::new();
    for sg in &model.security_groups {
        if !sg.name.starts_with("sg-") {
            cx.err(
                &sg.origin,
                format!("security group name `{}` must start with `sg-`", sg.name),
            );
        }
        if sg_by_name.contains_key(&sg.name) {
            cx.err(
                &sg.origin,
                format!("security group `{}` is defined twice", sg.name),
            );
        }
        let vpc = sg
            .vpc
            .as_ref()
            .and_then(|v| topology::vpc_ref(cx, &mut topo, v));
        sg_by_name.insert(sg.name.clone(), security_groups.len() as SgId);
        security_groups.push(SecurityGroup {
            name: sg.name.clone(),
            description: sg.description.clone(),
            title: sg.title.clone(),
            vpc,
            external: None,
            intra_group: sg.intra_group,
            ingress: Vec::new(),
            egress: Vec::new(),
            intra_rules: None,
            interfaces: Vec::new(),
            members: Vec::new(),
        });
    }
    // Groups the input referenced but did not contain: no members, so a
    // reference to one matches nothing.
    let mut external: Vec<model::ExternalGroup> = model.external_groups.clone();
    if imported {
        for name in referenced(model, |r| match r {
            model::Remote::Sg(n) => Some(n),
            _ => None,
        }) {
            if !sg_by_name.contains_key(name) && !external.iter().any(|e| &e.name == name) {
                external.push(model::ExternalGroup {
                    name: name.clone(),
                    status: Some("missing".into()),
                    ..Default::default()
                });
            }
        }
    } else if let Some(e) = external.first() {
        cx.err(
            &e.origin,
            "external groups are for imported policies (with [imported]): define the group instead",
        );
    }
    for e in &external {
        if !e.name.starts_with("sg-") {
            cx.err(
                &e.origin,
                format!("external group name `{}` must start with `sg-`", e.name),
            );
        }
        if sg_by_name.contains_key(&e.name) {
            cx.err(
                &e.origin,
                format!(
                    "`{}` is both a security group and an external group",
                    e.name
                ),
            );
            continue;
        }
        let vpc = e.vpc.as_ref().and_then(|v| topo.vpc_id(v));
        sg_by_name.insert(e.name.clone(), security_groups.len() as SgId);
        security_groups.push(SecurityGroup {
            name: e.name.clone(),
            description: None,
            title: None,
            vpc,
            external: Some(e.clone()),
            intra_group: false,
            ingress: Vec::new(),
            egress: Vec::new(),
            intra_rules: None,
            interfaces: Vec::new(),
            members: Vec::new(),
        });
    }
    topo.external_groups = external;
    let sg_vpc: Vec<Option<VpcId>> = security_groups.iter().map(|g| g.vpc).collect();
    let names = Names {
        sg: &sg_by_name,
        pl: &pl_by_name,
        sg_vpc: &sg_vpc,
        topo: &topo,
    };
    let mut unreachable = Vec::new();

    let mut rules = Vec::new();
    for (sg_id, model_sg) in model.security_groups.iter().enumerate() {
        let sg_id = sg_id as SgId;
        for (direction, list) in [
            (Direction::Ingress, &model_sg.ingress),
            (Direction::Egress, &model_sg.egress),
        ] {
            for (index, r) in list.iter().enumerate() {
                if let Some(rule) = compile_rule(
                    cx,
                    &names,
                    sg_id,
                    direction,
                    index as u32,
                    r,
                    &mut unreachable,
                ) {
                    let id = rules.len() as RuleId;
                    rules.push(rule);
                    let sg = &mut security_groups[sg_id as usize];
                    match direction {
                        Direction::Ingress => sg.ingress.push(id),
                        Direction::Egress => sg.egress.push(id),
                    }
                }
            }
        }
        if security_groups[sg_id as usize].intra_group {
            let ingress = rules.len() as RuleId;
            rules.push(intra_rule(sg_id, Direction::Ingress));
            rules.push(intra_rule(sg_id, Direction::Egress));
            security_groups[sg_id as usize].intra_rules = Some((ingress, ingress + 1));
        }
    }

    topo.dangling.extend(unreachable);
    // With two or more VPCs, each is an address space of its own.
    let explicit_vpcs = topo.vpcs.len();
    let mut interfaces = Vec::new();
    let mut iface_by_name = HashMap::new();
    let mut written = Vec::new();
    for mi in &model.interfaces {
        let id = interfaces.len() as IfaceId;
        if iface_by_name.contains_key(&mi.name) {
            cx.err(
                &mi.origin,
                format!("interface `{}` is defined twice", mi.name),
            );
        }
        if mi.addresses.value.is_empty() {
            cx.err(
                &mi.addresses.origin,
                format!("interface `{}` has no addresses", mi.name),
            );
        }
        let mut addresses = Vec::new();
        for a in &mi.addresses.value {
            if let Some(n) = network(cx, a) {
                addresses.push(n);
                written.push((id, n, &a.origin));
            }
        }
        let vpc = interface_vpc(cx, &mut topo, &topo_names, mi);
        place(cx, mi);
        let mut sgs: Vec<SgId> = Vec::new();
        for s in &mi.security_groups {
            match sg_by_name.get(&s.value) {
                Some(&sg) if sgs.contains(&sg) => cx.err(
                    &s.origin,
                    format!("security group `{}` is listed twice", s.value),
                ),
                Some(&sg) => {
                    let g = &security_groups[sg as usize];
                    if let (Some(a), Some(b)) = (vpc, g.vpc) {
                        if a != b {
                            cx.err(
                                &s.origin,
                                format!(
                                    "security group `{}` is in VPC `{}`, the interface in `{}`: a group attaches only to interfaces of its VPC",
                                    s.value, topo.vpcs[b as usize].name, topo.vpcs[a as usize].name
                                ),
                            );
                        }
                    }
                    if g.external.is_some() {
                        cx.err(
                            &s.origin,
                            format!(
                                "`{}` is an external group: it cannot be attached here",
                                s.value
                            ),
                        );
                    }
                    sgs.push(sg)
                }
                None => cx.err(
                    &s.origin,
                    unknown("security group", &s.value, sg_by_name.keys()),
                ),
            }
        }
        for &sg in &sgs {
            let g = &mut security_groups[sg as usize];
            g.interfaces.push(id);
            g.members.extend(addresses.iter().map(|&net| Member {
                net,
                interface: id,
                zone: mi.zone,
            }));
        }
        iface_by_name.insert(mi.name.clone(), id);
        interfaces.push(Interface {
            name: mi.name.clone(),
            description: mi.description.clone(),
            addresses,
            security_groups: sgs,
            zone: mi.zone,
            vpc,
            space: None,
            place: mi.place.clone(),
            policy_set: 0,
            subnet_policy_set: None,
        });
    }
    // Spaces, once every VPC is known (interfaces may name new ones).
    topo.spaced = topo.vpcs.len() >= 2;
    for i in &mut interfaces {
        i.space = i.vpc.and_then(|v| topo.space(v));
    }
    owners(&mut topo, &interfaces, explicit_vpcs);
    topology::services(cx, &mut topo, model, &sg_by_name, &iface_by_name);

    let index = address_index(cx, &interfaces, &written);
    let subnet_sgs = subnet_groups(cx, model, &sg_by_name, &security_groups);
    let layers: Vec<Option<&Vec<SgId>>> = model
        .interfaces
        .iter()
        .map(|mi| {
            let s = mi.place.subnet.as_ref()?;
            let &i = topo_names.subnets.get(&s.value)?;
            subnet_sgs[i].as_ref()
        })
        .collect();
    let policy_sets = policy_sets(&mut interfaces, &layers, &security_groups, &rules);
    let layered = interfaces.iter().any(|i| i.subnet_policy_set.is_some());

    Policy {
        source: model.source.clone(),
        settings: model.settings.clone(),
        conntrack,
        timeouts_set: TimeoutsSet {
            tcp_established: model.conntrack.tcp_established.is_some(),
            tcp_transitory: model.conntrack.tcp_transitory.is_some(),
            udp: model.conntrack.udp.is_some(),
            udp_stream: model.conntrack.udp_stream.is_some(),
            icmp: model.conntrack.icmp.is_some(),
            other: model.conntrack.other.is_some(),
        },
        gwlb: false,
        prefix_lists,
        security_groups,
        rules,
        interfaces,
        policy_sets,
        layered,
        index,
        sg_by_name,
        iface_by_name,
        topology: topo,
    }
}

/// Every name of one kind that a rule's remote end references, once each.
fn referenced<'a>(
    model: &'a Model,
    pick: impl Fn(&'a model::Remote) -> Option<&'a String>,
) -> Vec<&'a String> {
    let mut seen = std::collections::BTreeSet::new();
    for sg in &model.security_groups {
        for r in sg.ingress.iter().chain(&sg.egress) {
            for x in &r.remote {
                if let Some(n) = pick(&x.value) {
                    seen.insert(n);
                }
            }
        }
    }
    seen.into_iter().collect()
}

/// The VPC an interface is in: its subnet's, else the one it names.
fn interface_vpc(
    cx: &mut Ctx,
    topo: &mut topology_types::Topology,
    names: &topology::TopologyNames,
    mi: &model::Interface,
) -> Option<VpcId> {
    let from_subnet = match &mi.place.subnet {
        None => None,
        Some(s) => match names.subnets.get(&s.value) {
            Some(&i) => topo.vpc_id(&topo.subnets[i].vpc.value),
            None => {
                cx.dangling(topo, &s.origin, format!("unknown subnet `{}`", s.value));
                None
            }
        },
    };
    let named = mi
        .place
        .vpc
        .as_ref()
        .and_then(|v| topology::vpc_ref(cx, topo, v));
    if let (Some(a), Some(b), Some(v)) = (from_subnet, named, &mi.place.vpc) {
        if a != b {
            cx.err(
                &v.origin,
                format!(
                    "the interface's subnet is in VPC `{}`, not `{}`",
                    topo.vpcs[a as usize].name, v.value
                ),
            );
        }
    }
    from_subnet.or(named)
}

/// An interface's kind, tracking and timeouts (SPEC §6, §9.3).
fn place(cx: &mut Ctx, mi: &model::Interface) {
    let p = &mi.place;
    if let Some(k) = &p.kind {
        if !model::INTERFACE_KINDS.contains(&k.value.as_str()) {
            cx.err(
                &k.origin,
                format!(
                    "unknown interface kind `{}`: expected one of {}",
                    k.value,
                    model::INTERFACE_KINDS.join(", ")
                ),
            );
        }
    }
    if let Some(t) = &p.tracking {
        if t.value != "always" && t.value != "aws" {
            cx.err(
                &t.origin,
                format!(
                    "`tracking = \"{}\"`: expected \"always\" or \"aws\"",
                    t.value
                ),
            );
        }
    }
    // AWS ConnectionTrackingSpecification's ranges.
    for (v, key, lo, hi) in [
        (&p.timeouts.tcp_established, "tcp_established", 60, 432_000),
        (&p.timeouts.udp_stream, "udp_stream", 60, 180),
        (&p.timeouts.udp, "udp", 30, 60),
    ] {
        if let Some(v) = v {
            if !(lo..=hi).contains(&v.value) {
                cx.err(
                    &v.origin,
                    format!(
                        "timeout `{key} = {}` is out of AWS's range {lo}-{hi} seconds",
                        v.value
                    ),
                );
            }
        }
    }
    if let Some(m) = &p.conntrack_max {
        if !(1..=1 << 30).contains(&m.value) {
            cx.err(
                &m.origin,
                format!(
                    "`conntrack_max = {}` is out of range: expected 1-{}",
                    m.value,
                    1 << 30
                ),
            );
        }
    }
    for a in &p.public_addresses {
        network(cx, a);
    }
}

/// Which blocks say what VPC owns an address: each VPC's CIDRs; for one
/// without, its subnets' blocks; for one without either, its interfaces'.
fn owners(topo: &mut topology_types::Topology, interfaces: &[Interface], explicit: usize) {
    let _ = explicit;
    let mut owners = Vec::new();
    for (v, vpc) in topo.vpcs.iter().enumerate() {
        let v = v as VpcId;
        if !vpc.cidrs.is_empty() {
            owners.extend(vpc.cidrs.iter().map(|&c| (c, v)));
            continue;
        }
        let subnets: Vec<IpNet> = topo
            .subnets
            .iter()
            .filter(|s| s.vpc.value == vpc.name)
            .flat_map(|s| s.cidrs.iter().map(|c| c.value.trunc()))
            .collect();
        if !subnets.is_empty() {
            owners.extend(subnets.into_iter().map(|c| (c, v)));
            continue;
        }
        owners.extend(
            interfaces
                .iter()
                .filter(|i| i.vpc == Some(v))
                .flat_map(|i| i.addresses.iter().map(move |&a| (a, v))),
        );
    }
    topo.owners = owners;
}

fn conntrack(cx: &mut Ctx, c: &model::Conntrack) -> ConntrackSettings {
    let d = ConntrackSettings::default();
    let mut get = |v: &Option<At<i64>>, key: &str, default: u32, max: i64| -> u32 {
        match v {
            None => default,
            Some(n) if (1..=max).contains(&n.value) => n.value as u32,
            Some(n) => {
                cx.err(
                    &n.origin,
                    format!("`{key} = {}` is out of range: expected 1-{max}", n.value),
                );
                default
            }
        }
    };
    // Timeouts up to ten years (kept exactly, see `conntrack::table::Stamp`);
    // the table size up to what fits in memory.
    let t = i64::from(ConntrackSettings::MAX_TIMEOUT);
    ConntrackSettings {
        max_entries: get(&c.max_entries, "max_entries", d.max_entries, 1 << 30),
        when_full: c.when_full,
        tcp_established: get(&c.tcp_established, "tcp_established", d.tcp_established, t),
        tcp_transitory: get(&c.tcp_transitory, "tcp_transitory", d.tcp_transitory, t),
        udp: get(&c.udp, "udp", d.udp, t),
        udp_stream: get(&c.udp_stream, "udp_stream", d.udp_stream, t),
        icmp: get(&c.icmp, "icmp", d.icmp, t),
        other: get(&c.other, "other", d.other, t),
    }
}

/// A block as a network address: one with host bits set is a mistake.
pub(super) fn network(cx: &mut Ctx, n: &At<IpNet>) -> Option<IpNet> {
    network_at(cx, n.value, &n.origin)
}

fn network_at(cx: &mut Ctx, n: IpNet, origin: &Origin) -> Option<IpNet> {
    if n.trunc() == n {
        return Some(n);
    }
    cx.err(
        origin,
        format!(
            "`{n}` has host bits set: did you mean {}? (a CIDR names its network address)",
            n.trunc()
        ),
    );
    None
}

struct Names<'a> {
    sg: &'a HashMap<String, SgId>,
    pl: &'a HashMap<String, PrefixListId>,
    /// Each group's VPC, by [`SgId`].
    sg_vpc: &'a [Option<VpcId>],
    topo: &'a topology_types::Topology,
}

fn compile_rule(
    cx: &mut Ctx,
    names: &Names,
    sg: SgId,
    direction: Direction,
    index: u32,
    r: &model::Rule,
    unreachable: &mut Vec<String>,
) -> Option<Rule> {
    let errors_before = cx.errors.len();
    let proto = r.proto;
    if r.remote.is_empty() {
        let want = match direction {
            Direction::Ingress => "from",
            Direction::Egress => "to",
        };
        cx.err(
            &r.origin,
            format!("this {direction} rule has no `{want}`: say where traffic may come from or go to (e.g. {want} = \"0.0.0.0/0\")"),
        );
    }
    let mut remote = resolve_remotes(cx, names, &r.remote);
    // A group reference reaches members in the rule's VPC and its peers.
    if let Some(a) = names.sg_vpc[sg as usize] {
        remote.retain(|x| {
            let Remote::Sg(g) = *x else { return true };
            let Some(b) = names.sg_vpc[g as usize] else { return true };
            if a == b || names.topo.vpcs[a as usize].peers.contains(&b) {
                return true;
            }
            let msg = format!(
                "a rule of a group in VPC `{}` references a group in `{}`, which is not peered with it: the reference matches nothing",
                names.topo.vpcs[a as usize].name, names.topo.vpcs[b as usize].name
            );
            if names.topo.imported.is_some() {
                unreachable.push(format!("{}: {msg}", r.origin));
            } else {
                cx.err(&r.origin, msg);
            }
            false
        });
    }

    let ports = port_field(cx, proto, "ports", &r.ports);
    let source_ports = port_field(cx, proto, "source_ports", &r.source_ports);
    let ports_zero = r
        .ports
        .as_ref()
        .is_some_and(|p| p.value.contains(&PortRange { lo: 0, hi: 0 }));
    let icmp_type = icmp_field(cx, proto, "icmp_type", &r.icmp_type);
    let icmp_code = icmp_field(cx, proto, "icmp_code", &r.icmp_code);
    let local = r.local.as_ref().and_then(|l| network(cx, l));
    let priority = match &r.priority {
        None => 1,
        Some(p) if (1..=65535).contains(&p.value) => p.value as u16,
        Some(p) => {
            cx.err(
                &p.origin,
                format!(
                    "priority {} is out of range: expected 1-65535 (smaller wins)",
                    p.value
                ),
            );
            1
        }
    };
    if cx.errors.len() > errors_before {
        return None;
    }
    Some(Rule {
        sg,
        direction,
        index: Some(index),
        proto,
        ports,
        source_ports,
        icmp_type,
        icmp_code,
        remote,
        local,
        action: r.action,
        priority,
        description: r.description.clone(),
        id: r.id.clone(),
        origin: r.origin.clone(),
        ports_zero,
    })
}

pub(super) fn port_field(
    cx: &mut Ctx,
    proto: ProtoMatch,
    key: &str,
    v: &Option<At<Vec<PortRange>>>,
) -> PortSet {
    let Some(v) = v else { return PortSet::all() };
    if v.value.is_empty() {
        cx.err(
            &v.origin,
            format!("an empty port list matches nothing: leave `{key}` out for all ports"),
        );
        return PortSet::all();
    }
    let set = PortSet::from_ranges(v.value.clone());
    if !proto.has_ports() && !set.is_all() {
        cx.err(
            &v.origin,
            format!(
                "`{key} = {}` on protocol {proto}, which has no ports: ports apply to tcp and udp only (use \"-1/-1\" or leave `{key}` out)",
                written_ports(&v.value)
            ),
        );
        return PortSet::all();
    }
    set
}

/// Ports as the policy file writes them: `"80"`, or `["80", "8000-8010"]`.
fn written_ports(ranges: &[PortRange]) -> String {
    let quoted: Vec<String> = ranges.iter().map(|r| format!("\"{r}\"")).collect();
    match quoted.as_slice() {
        [one] => one.clone(),
        _ => format!("[{}]", quoted.join(", ")),
    }
}

pub(super) fn icmp_field(
    cx: &mut Ctx,
    proto: ProtoMatch,
    key: &str,
    v: &Option<At<i64>>,
) -> Option<u8> {
    let v = v.as_ref()?;
    let n = v.value;
    if !(0..=255).contains(&n) {
        cx.err(
            &v.origin,
            format!("`{key} = {n}` is out of range: expected 0-255, or -1 for any"),
        );
        return None;
    }
    if !proto.is_icmp() {
        cx.err(
            &v.origin,
            format!("`{key}` on protocol {proto}: it applies to icmp and icmpv6 only"),
        );
        return None;
    }
    Some(n as u8)
}

fn resolve_remotes(cx: &mut Ctx, names: &Names, list: &[At<model::Remote>]) -> Vec<Remote> {
    let mut out = Vec::new();
    for r in list {
        match &r.value {
            // A reference is read back from a policy file by its prefix.
            model::Remote::Sg(name) if !name.starts_with("sg-") => cx.err(
                &r.origin,
                format!("`{name}` is not a security group: a group's name starts with `sg-`"),
            ),
            model::Remote::PrefixList(name) if !name.starts_with("pl-") => cx.err(
                &r.origin,
                format!("`{name}` is not a prefix list: a prefix list's name starts with `pl-`"),
            ),
            model::Remote::Sg(name) => match names.sg.get(name) {
                Some(&id) => out.push(Remote::Sg(id)),
                None => cx.err(&r.origin, unknown("security group", name, names.sg.keys())),
            },
            model::Remote::PrefixList(name) => match names.pl.get(name) {
                Some(&id) => out.push(Remote::PrefixList(id)),
                None => cx.err(&r.origin, unknown("prefix list", name, names.pl.keys())),
            },
            model::Remote::Net(n) => {
                if let Some(n) = network_at(cx, *n, &r.origin) {
                    out.push(Remote::Net(n));
                }
            }
        }
    }
    out
}

fn unknown<'a>(kind: &str, name: &str, known: impl Iterator<Item = &'a String>) -> String {
    let mut k: Vec<&String> = known.collect();
    k.sort();
    let shown: Vec<&str> = k.iter().take(12).map(|s| s.as_str()).collect();
    let list = if shown.is_empty() {
        "none is defined".to_string()
    } else {
        format!(
            "defined: {}{}",
            shown.join(", "),
            if k.len() > 12 { ", …" } else { "" }
        )
    };
    format!("unknown {kind} `{name}` ({list})")
}

fn intra_rule(sg: SgId, direction: Direction) -> Rule {
    Rule {
        sg,
        direction,
        index: None,
        proto: ProtoMatch::Any,
        ports: PortSet::all(),
        source_ports: PortSet::all(),
        icmp_type: None,
        icmp_code: None,
        remote: vec![Remote::Sg(sg)],
        local: None,
        action: Action::Allow,
        priority: 0,
        description: Some("implicit: members of this group reach each other".into()),
        id: None,
        origin: Origin::None,
        ports_zero: false,
    }
}

/// An interface's address block with where it is written: (zone, first, last, interface, block, origin).
type Block<'a> = (Option<ZoneId>, AddrKey, AddrKey, IfaceId, IpNet, &'a Origin);

fn address_index(
    cx: &mut Ctx,
    interfaces: &[Interface],
    written: &[(IfaceId, IpNet, &Origin)],
) -> AddressIndex {
    let mut idx = AddressIndex::default();
    let mut blocks: Vec<Block> = written
        .iter()
        .map(|&(id, n, origin)| {
            let (lo, hi) = net_bounds(&n);
            let i = &interfaces[id as usize];
            (i.zone.or(i.space), lo, hi, id, n, origin)
        })
        .collect();
    blocks.sort_by_key(|b| (b.0, b.1, b.2));
    let mut reach: Option<(Option<ZoneId>, AddrKey, IfaceId)> = None;
    for &(zone, lo, hi, id, _, origin) in &blocks {
        if let Some((z, end, owner)) = reach {
            if z == zone && lo <= end {
                let other = &interfaces[owner as usize].name;
                let msg = if owner == id {
                    "this address overlaps another address of the same interface".to_string()
                } else {
                    format!(
                        "address overlaps one of interface `{other}`{}: an address belongs to one interface (zones may overlap)",
                        zone.map(|z| format!(" in zone {}", zone_name(z))).unwrap_or_default()
                    )
                };
                cx.err(origin, msg);
            }
        }
        if reach.is_none_or(|(z, end, _)| z != zone || hi > end) {
            reach = Some((zone, hi, id));
        }
    }
    for (zone, lo, hi, id, net, _) in blocks {
        if net.prefix_len() == net.max_prefix_len() {
            idx.insert_host(zone, net.addr(), id);
        } else {
            idx.blocks.insert((zone, lo), (hi, id));
        }
    }
    idx.seal();
    idx
}

/// Each subnet's groups (SPEC §9.2), resolved; `None` for a subnet
/// without any. An unknown, external or repeated group is an error: this
/// layer is enforced, and a name that resolved to nothing would let
/// traffic through that the file means to stop.
fn subnet_groups(
    cx: &mut Ctx,
    model: &Model,
    sg_by_name: &HashMap<String, SgId>,
    sgs: &[SecurityGroup],
) -> Vec<Option<Vec<SgId>>> {
    model
        .subnets
        .iter()
        .map(|sn| {
            let mut ids: Vec<SgId> = Vec::new();
            for s in &sn.security_groups {
                match sg_by_name.get(&s.value) {
                    Some(&sg) if ids.contains(&sg) => cx.err(
                        &s.origin,
                        format!("security group `{}` is listed twice", s.value),
                    ),
                    Some(&sg) if sgs[sg as usize].external.is_some() => cx.err(
                        &s.origin,
                        format!(
                            "`{}` is an external group: it cannot be attached here",
                            s.value
                        ),
                    ),
                    Some(&sg) => ids.push(sg),
                    None => cx.err(
                        &s.origin,
                        unknown("security group", &s.value, sg_by_name.keys()),
                    ),
                }
            }
            (!sn.security_groups.is_empty()).then_some(ids)
        })
        .collect()
}

/// The distinct SG lists, each merged in decision order: every
/// interface's own, and its subnet's (`subnet_sgs`, by interface) where
/// the subnet has groups.
fn policy_sets(
    interfaces: &mut [Interface],
    subnet_sgs: &[Option<&Vec<SgId>>],
    sgs: &[SecurityGroup],
    rules: &[Rule],
) -> Vec<PolicySet> {
    let mut sets: Vec<PolicySet> = Vec::new();
    let mut by_sgs: HashMap<Vec<SgId>, u32> = HashMap::new();
    let mut set_of = |list: &[SgId]| -> u32 {
        *by_sgs.entry(list.to_vec()).or_insert_with(|| {
            let ordered = |dir: Direction| {
                let mut ids: Vec<RuleId> = Vec::new();
                for &sg in list {
                    let g = &sgs[sg as usize];
                    if let Some((i, e)) = g.intra_rules {
                        ids.push(if dir == Direction::Ingress { i } else { e });
                    }
                    ids.extend(match dir {
                        Direction::Ingress => &g.ingress,
                        Direction::Egress => &g.egress,
                    });
                }
                // Stable: at equal priority and action, file order (SG order, then index).
                ids.sort_by_key(|&r| (rules[r as usize].priority, rules[r as usize].action));
                ids
            };
            sets.push(PolicySet {
                security_groups: list.to_vec(),
                ingress: ordered(Direction::Ingress),
                egress: ordered(Direction::Egress),
            });
            (sets.len() - 1) as u32
        })
    };
    for (n, iface) in interfaces.iter_mut().enumerate() {
        iface.policy_set = set_of(&iface.security_groups);
        iface.subnet_policy_set = subnet_sgs.get(n).copied().flatten().map(|l| set_of(l));
    }
    sets
}
