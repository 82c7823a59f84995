//! Checks the topology of a model (SPEC §6) and compiles it into a
//! [`Topology`]: every name it uses resolved, VPCs numbered and made
//! address spaces when there are two or more.
//!
//! A hand-written policy must define what it names. An imported one may
//! name what its input did not contain (a subnet of another account, a VPC
//! that was not exported): those references are kept, listed in
//! [`Topology::dangling`] for `check`, and judge nothing.

use std::collections::{BTreeSet, HashMap};

use super::{network, Ctx};
use crate::policy::model::{self, At, Model, Origin};
use crate::policy::nacl::{AclEntry, AclId, Nacls, NetworkAcl};
use crate::policy::topology::{Topology, Vpc, VpcId};
use crate::policy::PortSet;

/// Names defined by the model, for the checks of what refers to them.
pub(super) struct TopologyNames {
    pub subnets: HashMap<String, usize>,
}

impl Ctx {
    /// A reference to something the policy does not define: an error in a
    /// hand-written policy, a listed note in an imported one.
    pub(super) fn dangling(&mut self, topo: &mut Topology, origin: &Origin, msg: String) {
        if topo.imported.is_some() {
            let at = match origin {
                Origin::None => String::new(),
                o => format!("{o}: "),
            };
            topo.dangling.push(format!("{at}{msg}"));
        } else {
            self.err(origin, msg);
        }
    }
}

/// Builds the topology: VPCs first (explicit, then those only named), so
/// that groups and interfaces can be placed in them.
pub(super) fn build(cx: &mut Ctx, m: &Model) -> (Topology, TopologyNames) {
    let mut t = Topology {
        imported: m.imported.clone(),
        ..Topology::default()
    };
    for v in &m.vpcs {
        if t.vpc_by_name.contains_key(&v.name) {
            cx.err(&v.origin, format!("VPC `{}` is defined twice", v.name));
            continue;
        }
        let cidrs = v.cidrs.iter().filter_map(|c| network(cx, c)).collect();
        t.vpc_by_name.insert(v.name.clone(), t.vpcs.len() as VpcId);
        t.vpcs.push(Vpc {
            name: v.name.clone(),
            cidrs,
            account: v.account.clone(),
            region: v.region.clone(),
            title: v.title.clone(),
            internet_gateways: v.internet_gateways.clone(),
            ..Vpc::default()
        });
    }
    // Peers: as written, and from active peering connections; both ways.
    let mut peers: BTreeSet<(VpcId, VpcId)> = BTreeSet::new();
    for v in &m.vpcs {
        let Some(a) = t.vpc_id(&v.name) else { continue };
        for p in &v.peers {
            if let Some(b) = vpc_ref(cx, &mut t, p) {
                peers.insert((a, b));
            }
        }
    }
    for p in &m.peerings {
        let a = vpc_ref(cx, &mut t, &p.requester_vpc);
        let b = vpc_ref(cx, &mut t, &p.accepter_vpc);
        let active = p.status.as_deref().is_none_or(|s| s == "active");
        if let (Some(a), Some(b), true) = (a, b, active) {
            peers.insert((a, b));
        }
    }
    for (a, b) in peers {
        if a != b {
            for (x, y) in [(a, b), (b, a)] {
                let list = &mut t.vpcs[x as usize].peers;
                if !list.contains(&y) {
                    list.push(y);
                }
            }
        }
    }
    t.peerings = m.peerings.clone();

    let mut names = TopologyNames {
        subnets: HashMap::new(),
    };
    let acls = unique(
        cx,
        m.network_acls.iter().map(|a| (&a.name, &a.origin)),
        "network ACL",
    );
    let tables = unique(
        cx,
        m.route_tables.iter().map(|a| (&a.name, &a.origin)),
        "route table",
    );
    for (i, s) in m.subnets.iter().enumerate() {
        if names.subnets.insert(s.name.clone(), i).is_some() {
            cx.err(&s.origin, format!("subnet `{}` is defined twice", s.name));
        }
        vpc_ref(cx, &mut t, &s.vpc);
        for c in &s.cidrs {
            network(cx, c);
        }
        if let Some(a) = &s.network_acl {
            if !acls.contains(&a.value) {
                cx.dangling(
                    &mut t,
                    &a.origin,
                    format!("unknown network ACL `{}`", a.value),
                );
            }
        }
        if let Some(r) = &s.route_table {
            if !tables.contains(&r.value) {
                cx.dangling(
                    &mut t,
                    &r.origin,
                    format!("unknown route table `{}`", r.value),
                );
            }
        }
    }
    t.subnet_by_name = names
        .subnets
        .iter()
        .map(|(k, &v)| (k.clone(), v as u32))
        .collect();
    t.subnets = m.subnets.clone();

    for a in &m.network_acls {
        if let Some(v) = &a.vpc {
            vpc_ref(cx, &mut t, v);
        }
        for (dir, list) in [("ingress", &a.ingress), ("egress", &a.egress)] {
            let mut seen = HashMap::new();
            for r in list {
                acl_rule(cx, r);
                if let Some(first) = seen.insert(r.rule.value, &r.rule.origin) {
                    cx.err(
                        &r.rule.origin,
                        format!(
                            "rule number {} is used twice in {}'s {dir} rules (first at {first})",
                            r.rule.value, a.name
                        ),
                    );
                }
            }
        }
    }
    t.network_acls = m.network_acls.clone();

    for r in &m.route_tables {
        if let Some(v) = &r.vpc {
            vpc_ref(cx, &mut t, v);
        }
        for route in &r.routes {
            if let model::Remote::Net(n) = route.destination.value {
                network(cx, &At::new(n, route.destination.origin.clone()));
            }
        }
    }
    t.route_tables = m.route_tables.clone();
    t.external_groups = m.external_groups.clone();
    (t, names)
}

/// The rest of the topology, once groups and interfaces are known: load
/// balancers, target groups, endpoint services and endpoints.
pub(super) fn services(
    cx: &mut Ctx,
    t: &mut Topology,
    m: &Model,
    sgs: &HashMap<String, super::SgId>,
    interfaces: &HashMap<String, super::IfaceId>,
) {
    let tgs = unique(
        cx,
        m.target_groups.iter().map(|g| (&g.name, &g.origin)),
        "target group",
    );
    let lbs = unique(
        cx,
        m.load_balancers.iter().map(|g| (&g.name, &g.origin)),
        "load balancer",
    );
    let check = |cx: &mut Ctx,
                 t: &mut Topology,
                 list: &[At<String>],
                 known: &dyn Fn(&str) -> bool,
                 kind: &str| {
        for x in list {
            if !known(&x.value) {
                cx.dangling(t, &x.origin, format!("unknown {kind} `{}`", x.value));
            }
        }
    };
    let sg_known = |s: &str| sgs.contains_key(s);
    let if_known = |s: &str| interfaces.contains_key(s);
    let subnet_known = |s: &str| t_subnet(m, s);
    for lb in &m.load_balancers {
        if let Some(v) = &lb.vpc {
            vpc_ref(cx, t, v);
        }
        check(cx, t, &lb.interfaces, &if_known, "interface");
        check(cx, t, &lb.security_groups, &sg_known, "security group");
        for l in &lb.listeners {
            if let Some(p) = &l.port {
                if !(1..=65535).contains(&p.value) {
                    cx.err(
                        &p.origin,
                        format!(
                            "listener port {} is out of range: expected 1-65535",
                            p.value
                        ),
                    );
                }
            }
            if let Some(g) = &l.target_group {
                if !tgs.contains(&g.value) {
                    cx.dangling(t, &g.origin, format!("unknown target group `{}`", g.value));
                }
            }
        }
    }
    for g in &m.target_groups {
        if let Some(v) = &g.vpc {
            vpc_ref(cx, t, v);
        }
    }
    for s in &m.endpoint_services {
        for l in &s.load_balancers {
            if !lbs.contains(&l.value) {
                cx.dangling(t, &l.origin, format!("unknown load balancer `{}`", l.value));
            }
        }
    }
    for e in &m.endpoints {
        if let Some(v) = &e.vpc {
            vpc_ref(cx, t, v);
        }
        check(cx, t, &e.subnets, &subnet_known, "subnet");
        check(cx, t, &e.interfaces, &if_known, "interface");
        check(cx, t, &e.security_groups, &sg_known, "security group");
    }
    privatelink(t, m, interfaces);
    t.load_balancers = m.load_balancers.clone();
    t.target_groups = m.target_groups.clone();
    t.endpoint_services = m.endpoint_services.clone();
    t.endpoints = m.endpoints.clone();
    t.nacls = nacls(t, m, interfaces).map(Box::new);
}

/// The network ACLs compiled for the engine (SPEC §9.1), when any subnet
/// has a known one; their values were checked by [`build`]. An ACL a
/// subnet names but the (imported) input did not contain judges nothing.
fn nacls(t: &Topology, m: &Model, interfaces: &HashMap<String, super::IfaceId>) -> Option<Nacls> {
    let by_name: HashMap<&str, AclId> = m
        .network_acls
        .iter()
        .enumerate()
        .map(|(i, a)| (a.name.as_str(), i as AclId))
        .collect();
    let subnet_acl = |s: &model::Subnet| {
        s.network_acl
            .as_ref()
            .and_then(|a| by_name.get(a.value.as_str()).copied())
    };
    if !t.subnets.iter().any(|s| subnet_acl(s).is_some()) {
        return None;
    }
    let entry = |r: &model::AclRule| AclEntry {
        number: r.rule.value.clamp(0, 32766) as u16,
        proto: r.proto,
        ports: match &r.ports {
            Some(p) if !p.value.is_empty() && r.proto.has_ports() => {
                PortSet::from_ranges(p.value.clone())
            }
            _ => PortSet::all(),
        },
        icmp_type: r
            .icmp_type
            .as_ref()
            .and_then(|v| u8::try_from(v.value).ok()),
        icmp_code: r
            .icmp_code
            .as_ref()
            .and_then(|v| u8::try_from(v.value).ok()),
        remote: r.remote.value.trunc(),
        action: r.action,
        line: r.origin.line(),
    };
    let acls = m
        .network_acls
        .iter()
        .map(|a| {
            NetworkAcl::new(
                a.name.clone(),
                a.ingress.iter().map(entry).collect(),
                a.egress.iter().map(entry).collect(),
            )
        })
        .collect();
    let subnets = t
        .subnets
        .iter()
        .map(|s| {
            (
                t.vpc_id(&s.vpc.value).unwrap_or(VpcId::MAX),
                s.cidrs.iter().map(|c| c.value.trunc()).collect(),
                subnet_acl(s),
            )
        })
        .collect();
    let count = interfaces
        .values()
        .map(|&i| i as usize + 1)
        .max()
        .unwrap_or(0);
    let mut interface_subnet = vec![None; count];
    for mi in &m.interfaces {
        let (Some(&i), Some(s)) = (interfaces.get(&mi.name), &mi.place.subnet) else {
            continue;
        };
        if let Some(slot) = interface_subnet.get_mut(i as usize) {
            *slot = t.subnet_by_name.get(&s.value).copied();
        }
    }
    Some(Nacls::new(acls, subnets, interface_subnet))
}

fn t_subnet(m: &Model, name: &str) -> bool {
    m.subnets.iter().any(|s| s.name == name)
}

/// The VPC a value names; an imported policy may name one it does not
/// define, which is then made (without blocks).
pub(super) fn vpc_ref(cx: &mut Ctx, t: &mut Topology, name: &At<String>) -> Option<VpcId> {
    if let Some(id) = t.vpc_id(&name.value) {
        return Some(id);
    }
    if t.imported.is_none() {
        let mut known: Vec<&String> = t.vpc_by_name.keys().collect();
        known.sort();
        let list: Vec<&str> = known.iter().take(12).map(|s| s.as_str()).collect();
        cx.err(
            &name.origin,
            format!(
                "unknown VPC `{}` ({})",
                name.value,
                if list.is_empty() {
                    "none is defined: add [vpcs.NAME]".to_string()
                } else {
                    format!("defined: {}", list.join(", "))
                }
            ),
        );
        return None;
    }
    let id = t.vpcs.len() as VpcId;
    t.vpc_by_name.insert(name.value.clone(), id);
    t.vpcs.push(Vpc {
        name: name.value.clone(),
        implicit: true,
        ..Vpc::default()
    });
    Some(id)
}

fn unique<'a>(
    cx: &mut Ctx,
    items: impl Iterator<Item = (&'a String, &'a Origin)>,
    kind: &str,
) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for (name, origin) in items {
        if !seen.insert(name.clone()) {
            cx.err(origin, format!("{kind} `{name}` is defined twice"));
        }
    }
    seen
}

/// A network ACL entry's values: rule number, ports and ICMP fields as for
/// security-group rules.
fn acl_rule(cx: &mut Ctx, r: &model::AclRule) {
    if !(1..=32766).contains(&r.rule.value) {
        cx.err(
            &r.rule.origin,
            format!(
                "rule number {} is out of range: expected 1-32766",
                r.rule.value
            ),
        );
    }
    let _: PortSet = super::port_field(cx, r.proto, "ports", &r.ports);
    super::icmp_field(cx, r.proto, "icmp_type", &r.icmp_type);
    super::icmp_field(cx, r.proto, "icmp_code", &r.icmp_code);
    network(cx, &r.remote);
}

/// Joins each interface endpoint's VPC to the VPC of its service's load
/// balancers (PrivateLink), both ways.
fn privatelink(t: &mut Topology, m: &Model, interfaces: &HashMap<String, super::IfaceId>) {
    let _ = interfaces;
    let lb_vpc = |name: &str| -> Option<VpcId> {
        let lb = m.load_balancers.iter().find(|l| l.name == name)?;
        let by_subnet = || {
            lb.interfaces.iter().find_map(|i| {
                let mi = m.interfaces.iter().find(|x| x.name == i.value)?;
                let s = mi.place.subnet.as_ref()?;
                let s = m.subnets.iter().find(|x| x.name == s.value)?;
                t.vpc_id(&s.vpc.value)
            })
        };
        lb.vpc
            .as_ref()
            .and_then(|v| t.vpc_id(&v.value))
            .or_else(by_subnet)
    };
    let mut links = BTreeSet::new();
    for e in &m.endpoints {
        let Some(a) = e.vpc.as_ref().and_then(|v| t.vpc_id(&v.value)) else {
            continue;
        };
        let Some(service) = &e.service else { continue };
        let found = m.endpoint_services.iter().find(|s| {
            s.name == service.value || s.service_name.as_deref() == Some(service.value.as_str())
        });
        for lb in found.iter().flat_map(|s| &s.load_balancers) {
            if let Some(b) = lb_vpc(&lb.value) {
                if a != b {
                    links.insert((a, b));
                }
            }
        }
    }
    for (a, b) in links {
        for (x, y) in [(a, b), (b, a)] {
            let list = &mut t.vpcs[x as usize].linked;
            if !list.contains(&y) {
                list.push(y);
            }
        }
    }
}
