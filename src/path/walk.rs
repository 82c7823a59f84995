//! The walk: the ends resolved, then the hops of SPEC §8 in order, each
//! judged, stopping at the first that blocks.

use std::net::IpAddr;

use ipnet::IpNet;

use super::*;
use crate::policy::model;
use crate::policy::nacl::{NetworkAcl, EPHEMERAL};
use crate::policy::{Action, Flow, Layer, Verdict, ZoneId};

/// Answers a query on a compiled policy. Fixes are not searched here
/// ([`super::fix::search`] does, on the model).
pub fn analyse(p: &Policy, q: &Query) -> Result<Trace, PathError> {
    let to_hint = match q.to.parse::<IpAddr>() {
        Ok(_) => None,
        Err(_) => Some(resolve(p, &q.to, "to", None)?),
    };
    let from = resolve(p, &q.from, "from", to_hint.and_then(|e| end_vpc(p, e)))?;
    let to = match to_hint {
        Some(e) => e,
        None => resolve(p, &q.to, "to", end_vpc(p, from))?,
    };
    let mut w = Walk {
        p,
        q,
        hops: Vec::new(),
        notes: Vec::new(),
        quick: false,
    };
    let from_label = w.end_label(from);
    let to_label = w.end_label(to);
    let named_v6 = [&q.from, &q.to]
        .iter()
        .any(|n| n.parse::<IpAddr>().is_ok_and(|a| a.is_ipv6()));
    let v6 = named_v6
        || match (from, to) {
            (End::Addr(a, _) | End::Public(_, a), _) | (_, End::Addr(a, _) | End::Public(_, a)) => {
                a.is_ipv6()
            }
            _ => false,
        };
    if let (End::Addr(a, _), End::Addr(b, _) | End::Public(_, b)) = (from, to) {
        if a.is_ipv4() != b.is_ipv4() {
            return Err(PathError::Versions(a, b));
        }
    }
    let client = w.point(from, v6)?;
    match to {
        End::Lb(lb) => w.toward_lb(&client, lb)?,
        End::Endpoint(ep) => w.toward_endpoint(&client, ep)?,
        _ => {
            let dst = w.point(to, v6)?;
            w.toward_point(&client, &dst, to);
        }
    };
    let blocked_at = w.hops.iter().position(|h| h.verdict != HopVerdict::Allow);
    let explanations = blocked_at
        .map(|i| {
            let h = &w.hops[i];
            h.codes
                .iter()
                .map(|&code| Explanation {
                    code,
                    component: h.component.clone(),
                    message: h.explanation.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Trace {
        reachable: blocked_at.is_none(),
        from: from_label,
        to: to_label,
        flow: describe_flow(q),
        hops: w.hops,
        blocked_at,
        explanations,
        fixes: Vec::new(),
        notes: w.notes,
    })
}

/// One end of a leg: where a packet is.
#[derive(Debug, Clone)]
pub(super) struct Point {
    pub(super) iface: Option<IfaceId>,
    pub(super) addr: IpAddr,
    pub(super) vpc: Option<VpcId>,
    /// Index in the topology's subnets.
    pub(super) subnet: Option<usize>,
    pub(super) internet: bool,
}

/// Finds what `name` is. An address is looked up in `hint`'s VPC first.
fn resolve(
    p: &Policy,
    name: &str,
    flag: &'static str,
    hint: Option<VpcId>,
) -> Result<End, PathError> {
    let t = p.topology();
    if let Ok(addr) = name.parse::<IpAddr>() {
        let zone = hint.and_then(|v| t.space(v));
        if let Some(i) = p.interface_of(addr, zone) {
            return Ok(End::Iface(i));
        }
        for (i, f) in p.interfaces().iter().enumerate() {
            if f.place
                .public_addresses
                .iter()
                .any(|n| n.value.addr() == addr)
            {
                return Ok(End::Public(i as IfaceId, addr));
            }
        }
        let in_hint = hint.filter(|&v| t.vpcs[v as usize].cidrs.iter().any(|c| c.contains(&addr)));
        return Ok(End::Addr(addr, in_hint.or_else(|| t.vpc_owning(addr))));
    }
    if let Some(i) = p.interface_id(name) {
        return Ok(End::Iface(i));
    }
    let pick = |found: Vec<IfaceId>| -> Result<Option<End>, PathError> {
        match found.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(End::Iface(*one))),
            many => {
                // An instance's interfaces: its primary (first) one.
                let first = p.interface(many[0]).place.instance.clone();
                if first.is_some() && many.iter().all(|&i| p.interface(i).place.instance == first) {
                    return Ok(Some(End::Iface(many[0])));
                }
                Err(PathError::Ambiguous {
                    flag,
                    name: name.to_string(),
                    candidates: many
                        .iter()
                        .map(|&i| iface_label(p, i))
                        .collect::<Vec<_>>()
                        .join(", "),
                })
            }
        }
    };
    let ifaces = || {
        p.interfaces()
            .iter()
            .enumerate()
            .map(|(i, f)| (i as IfaceId, f))
    };
    if let Some(e) = pick(
        ifaces()
            .filter(|(_, f)| f.place.instance.as_deref() == Some(name))
            .map(|(i, _)| i)
            .collect(),
    )? {
        return Ok(e);
    }
    if let Some(e) = pick(
        ifaces()
            .filter(|(_, f)| f.place.title.as_deref() == Some(name))
            .map(|(i, _)| i)
            .collect(),
    )? {
        return Ok(e);
    }
    let dns = |s: &str| {
        s.trim_end_matches('.')
            .eq_ignore_ascii_case(name.trim_end_matches('.'))
    };
    if let Some(lb) = t.load_balancers.iter().position(|lb| {
        lb.name == name
            || lb.arn.as_deref() == Some(name)
            || lb.dns_name.as_deref().is_some_and(dns)
    }) {
        if flag == "from" {
            let node = t.load_balancers[lb]
                .interfaces
                .iter()
                .find_map(|n| p.interface_id(&n.value));
            return node
                .map(End::Iface)
                .ok_or_else(|| PathError::NoNodes(name.to_string()));
        }
        return Ok(End::Lb(lb));
    }
    if let Some(ep) = t
        .endpoints
        .iter()
        .position(|e| e.name == name || e.dns_names.iter().any(|d| dns(d)))
    {
        if flag == "from" {
            return Err(PathError::EndpointSource(name.to_string()));
        }
        return Ok(End::Endpoint(ep));
    }
    // A load balancer the input has only as its nodes' interfaces
    // (`ELB app/NAME/…`): its first node.
    let marker = format!("/{name}/");
    if let Some((i, _)) = ifaces().find(|(_, f)| {
        f.description
            .as_deref()
            .is_some_and(|d| d.starts_with("ELB ") && d.contains(&marker))
    }) {
        return Ok(End::Iface(i));
    }
    Err(PathError::Unknown {
        flag,
        name: name.to_string(),
        also: if flag == "to" {
            ", load balancer, VPC endpoint"
        } else {
            ", load balancer"
        },
    })
}

fn end_vpc(p: &Policy, e: End) -> Option<VpcId> {
    let t = p.topology();
    match e {
        End::Iface(i) | End::Public(i, _) => p.interface(i).vpc,
        End::Addr(_, v) => v,
        End::Lb(lb) => t.load_balancers[lb]
            .vpc
            .as_ref()
            .and_then(|v| t.vpc_id(&v.value)),
        End::Endpoint(ep) => t.endpoints[ep]
            .vpc
            .as_ref()
            .and_then(|v| t.vpc_id(&v.value)),
    }
}

pub(super) struct Walk<'a> {
    pub(super) p: &'a Policy,
    pub(super) q: &'a Query,
    pub(super) hops: Vec<Hop>,
    pub(super) notes: Vec<String>,
    /// Verdicts and codes only: no nearest misses (`path --all`).
    pub(super) quick: bool,
}

/// A new hop, allowed, with nothing else said.
fn hop(component: String, kind: &'static str, direction: &'static str) -> Hop {
    Hop {
        component,
        kind,
        direction,
        verdict: HopVerdict::Allow,
        rule: None,
        explanation: String::new(),
        nearest_misses: Vec::new(),
        codes: Vec::new(),
        candidates: Vec::new(),
    }
}

impl<'a> Walk<'a> {
    fn t(&self) -> &'a crate::policy::Topology {
        self.p.topology()
    }

    fn end_label(&self, e: End) -> String {
        let t = self.t();
        match e {
            End::Iface(i) => iface_label(self.p, i),
            End::Public(i, a) => format!("{a} (public address of {})", iface_label(self.p, i)),
            End::Addr(a, Some(v)) => format!("{a} (in {})", t.vpcs[v as usize].name),
            End::Addr(a, None) if !t.vpcs.is_empty() => format!("{a} (the internet)"),
            End::Addr(a, None) => a.to_string(),
            End::Lb(lb) => format!("load balancer {}", t.load_balancers[lb].name),
            End::Endpoint(ep) => format!("VPC endpoint {}", t.endpoints[ep].name),
        }
    }

    fn subnet_index(&self, name: &str) -> Option<usize> {
        self.t().subnets.iter().position(|s| s.name == name)
    }

    /// The subnet of an address in a VPC: its interface's, else the
    /// VPC's subnet whose block holds it.
    fn subnet_of(&self, iface: Option<IfaceId>, addr: IpAddr, vpc: Option<VpcId>) -> Option<usize> {
        if let Some(s) = iface.and_then(|i| self.p.interface(i).place.subnet.as_ref()) {
            return self.subnet_index(&s.value);
        }
        let t = self.t();
        let vpc_name = vpc.map(|v| t.vpcs[v as usize].name.as_str());
        t.subnets.iter().position(|s| {
            (vpc_name.is_none() || vpc_name == Some(s.vpc.value.as_str()))
                && s.cidrs.iter().any(|c| c.value.contains(&addr))
        })
    }

    pub(super) fn iface_point(&self, i: IfaceId, v6: bool) -> Result<Point, PathError> {
        let f = self.p.interface(i);
        let addr = f
            .addresses
            .iter()
            .map(|n| n.addr())
            .find(|a| a.is_ipv6() == v6)
            .or_else(|| f.addresses.first().map(|n| n.addr()))
            .ok_or_else(|| PathError::Other(format!("interface {} has no address", f.name)))?;
        Ok(Point {
            iface: Some(i),
            addr,
            vpc: f.vpc,
            subnet: self.subnet_of(Some(i), addr, f.vpc),
            internet: false,
        })
    }

    fn point(&self, e: End, v6: bool) -> Result<Point, PathError> {
        match e {
            End::Iface(i) | End::Public(i, _) => self.iface_point(i, v6),
            End::Addr(a, vpc) => Ok(Point {
                iface: None,
                addr: a,
                vpc,
                subnet: self.subnet_of(None, a, vpc),
                internet: vpc.is_none() && !self.t().vpcs.is_empty(),
            }),
            End::Lb(_) | End::Endpoint(_) => Err(PathError::Other("not a point".into())),
        }
    }

    fn az_of(&self, pt: &Point) -> Option<String> {
        pt.iface
            .and_then(|i| self.p.interface(i).place.az.clone())
            .or_else(|| pt.subnet.and_then(|s| self.t().subnets[s].az.clone()))
    }

    pub(super) fn space(&self, vpc: Option<VpcId>) -> Option<ZoneId> {
        vpc.and_then(|v| self.t().space(v))
    }

    /// The query's flow between two addresses, judged in `vpc`'s space.
    pub(super) fn flow(
        &self,
        src: IpAddr,
        dst: IpAddr,
        dport: Option<u16>,
        vpc: Option<VpcId>,
    ) -> Flow {
        let mut f = Flow::other(src, dst, self.q.proto);
        if self.q.proto.has_ports() {
            f.sport = self.q.sport;
            f.dport = dport;
        }
        f.icmp = self.q.icmp;
        f.zone = self.space(vpc);
        f
    }

    fn push(&mut self, h: Hop) -> bool {
        let ok = h.verdict == HopVerdict::Allow;
        self.hops.push(h);
        ok
    }

    // ---------------------------------------------------------------- hops

    /// An interface's groups in one direction, with its subnet's groups
    /// where the subnet has them (an Azure subnet NSG, SPEC §9.2): entering,
    /// the subnet's first; leaving, the interface's first. `remote_sg` is
    /// the group a fix names as the remote end (else the remote address).
    #[allow(clippy::too_many_arguments)]
    fn sg_hop(
        &mut self,
        iface: IfaceId,
        direction: Direction,
        flow: &Flow,
        kind: &'static str,
        component: String,
        remote_sg: Option<String>,
    ) -> bool {
        if self.p.layer_set(iface, Layer::Subnet).is_none() {
            return self.nic_sg_hop(iface, direction, flow, kind, component, remote_sg);
        }
        match direction {
            Direction::Ingress => {
                self.subnet_sg_hop(iface, direction, flow, &component)
                    && self.nic_sg_hop(iface, direction, flow, kind, component, remote_sg)
            }
            Direction::Egress => {
                let c = component.clone();
                self.nic_sg_hop(iface, direction, flow, kind, component, remote_sg)
                    && self.subnet_sg_hop(iface, direction, flow, &c)
            }
        }
    }

    /// The subnet layer of an interface in one direction.
    fn subnet_sg_hop(
        &mut self,
        iface: IfaceId,
        direction: Direction,
        flow: &Flow,
        component: &str,
    ) -> bool {
        let p = self.p;
        let Some(d) = p.decide_layer(iface, direction, Layer::Subnet, flow) else {
            return true;
        };
        let set = p.layer_set(iface, Layer::Subnet).unwrap_or_default();
        let groups: Vec<&str> = p.policy_sets()[set as usize]
            .security_groups
            .iter()
            .map(|&g| p.security_group(g).name.as_str())
            .collect();
        let subnet = p
            .interface(iface)
            .place
            .subnet
            .as_ref()
            .map_or(String::new(), |s| s.value.clone());
        let mut h = hop(
            format!("subnet {subnet} of {component}"),
            "subnet-security-group",
            direction.as_str(),
        );
        h.rule = d.rule.map(|r| p.rule_name(r).to_string());
        let (remote, word) = match direction {
            Direction::Ingress => (flow.src, "from"),
            Direction::Egress => (flow.dst, "to"),
        };
        let what = format!("{} {word} {remote}", flow_text(flow));
        if d.verdict == Verdict::Allow {
            h.explanation = format!("the subnet's {} allows {what}", groups.join(", "));
            return self.push(h);
        }
        h.verdict = HopVerdict::Deny;
        h.explanation = format!(
            "the subnet's {} denies {what}{}",
            groups.join(", "),
            d.rule
                .map(|r| format!(" ({})", p.rule_name(r)))
                .unwrap_or_else(|| ": no rule matches".into())
        );
        h.codes.push("ENI_SG_RULES_MISMATCH");
        if let Some(&g) = p.policy_sets()[set as usize].security_groups.first() {
            h.candidates.push(Change::AddSgRule {
                sg: p.security_group(g).name.clone(),
                direction,
                proto: flow.proto,
                ports: flow.dport.map(|d| PortRange { lo: d, hi: d }),
                icmp: flow.icmp,
                remote: host(remote).to_string(),
            });
        }
        self.push(h)
    }

    /// An interface's own groups in one direction.
    fn nic_sg_hop(
        &mut self,
        iface: IfaceId,
        direction: Direction,
        flow: &Flow,
        kind: &'static str,
        component: String,
        remote_sg: Option<String>,
    ) -> bool {
        let p = self.p;
        let d = p.decide(iface, direction, flow);
        let f = p.interface(iface);
        let groups: Vec<&str> = f
            .security_groups
            .iter()
            .map(|&g| p.security_group(g).name.as_str())
            .collect();
        let mut h = hop(component, kind, direction.as_str());
        h.rule = d.rule.map(|r| p.rule_name(r).to_string());
        let (remote, word) = match direction {
            Direction::Ingress => (flow.src, "from"),
            Direction::Egress => (flow.dst, "to"),
        };
        let what = format!("{} {word} {remote}", flow_text(flow));
        if d.verdict == Verdict::Allow {
            h.explanation = format!("allows {what}");
            return self.push(h);
        }
        h.verdict = HopVerdict::Deny;
        let none = f.security_groups.iter().all(|&g| {
            let sg = p.security_group(g);
            match direction {
                Direction::Ingress => sg.ingress.is_empty(),
                Direction::Egress => sg.egress.is_empty(),
            }
        });
        h.explanation = if groups.is_empty() {
            format!("{} has no security group: nothing allows {what}", f.name)
        } else if none {
            format!(
                "none of the {direction} rules of {} apply: it has none; {what} is denied",
                groups.join(", ")
            )
        } else {
            format!(
                "none of the {direction} rules of {} apply to {what}",
                groups.join(", ")
            )
        };
        h.codes.push("ENI_SG_RULES_MISMATCH");
        if none {
            h.codes.push("SG_HAS_NO_RULES");
        }
        if !self.quick {
            if let Some(r) = p
                .explain(flow)
                .decisions
                .into_iter()
                .find(|r| r.interface == f.name && r.direction == direction)
            {
                h.nearest_misses = r.nearest_misses;
            }
        }
        if let Some(&g) = f.security_groups.first() {
            let remote = remote_sg.unwrap_or_else(|| host(remote).to_string());
            h.candidates.push(Change::AddSgRule {
                sg: p.security_group(g).name.clone(),
                direction,
                proto: flow.proto,
                ports: flow.dport.map(|d| PortRange { lo: d, hi: d }),
                icmp: flow.icmp,
                remote,
            });
        }
        self.push(h)
    }

    fn acl_of(&self, subnet: usize) -> Option<&'a NetworkAcl> {
        let name = &self.t().subnets[subnet].network_acl.as_ref()?.value;
        self.p.nacls()?.acls.iter().find(|a| &a.name == name)
    }

    /// A subnet's ACL judging `flow` in one direction; `leg` is `request`
    /// or `reply`. `reply_ports`: the reply's destination ports that must
    /// all pass (the client's ephemeral range).
    pub(super) fn acl_hop(
        &mut self,
        subnet: Option<usize>,
        direction: Direction,
        flow: &Flow,
        leg: &str,
        reply_ports: Option<PortRange>,
    ) -> bool {
        let Some(s) = subnet else { return true };
        let Some(acl) = self.acl_of(s) else {
            return true;
        };
        let subnet_name = self.t().subnets[s].name.clone();
        let remote = match direction {
            Direction::Ingress => flow.src,
            Direction::Egress => flow.dst,
        };
        // The ports to try: one, or a representative of every part of the
        // range the ACL's entries treat differently.
        let probes: Vec<Option<PortRange>> = match (flow.proto.has_ports(), reply_ports) {
            (true, Some(r)) => segments(acl, direction, r).into_iter().map(Some).collect(),
            _ => vec![None],
        };
        let mut denied: Vec<PortRange> = Vec::new();
        let mut decider = None;
        let mut first_denied_flow = None;
        let mut allow_rule = None;
        for r in &probes {
            let mut f = *flow;
            if let Some(r) = r {
                f.dport = Some(r.lo);
            }
            let entry = acl.first_match(direction, &f, remote);
            let e = entry.map(|i| &acl.entries(direction)[i as usize]);
            let rule = format!(
                "{}/{direction}/{}",
                acl.name,
                e.map_or("*".to_string(), |e| e.number.to_string())
            );
            if e.is_some_and(|e| e.action == Action::Allow) {
                allow_rule.get_or_insert(rule);
            } else {
                denied.extend(*r);
                if decider.is_none() {
                    decider = Some((rule, e.map(|e| e.number)));
                    first_denied_flow = Some(f);
                }
            }
        }
        let dir = match (leg, direction) {
            ("reply", Direction::Ingress) => "reply-ingress",
            ("reply", Direction::Egress) => "reply-egress",
            (_, d) => d.as_str(),
        };
        let mut h = hop(format!("{subnet_name} ({})", acl.name), "network-acl", dir);
        let Some((rule, number)) = decider else {
            h.rule = allow_rule.clone();
            h.explanation = format!("the {leg} is allowed by {}", allow_rule.unwrap_or_default());
            return self.push(h);
        };
        h.verdict = HopVerdict::Deny;
        h.rule = Some(rule.clone());
        let ports = if denied.is_empty() {
            String::new()
        } else {
            let set = crate::policy::PortSet::from_ranges(denied.clone());
            format!(" (ports {set} not allowed)")
        };
        h.explanation = format!("the {leg} {} is dropped by {rule}{ports}", flow_text(flow));
        h.codes.push("SUBNET_ACL_RESTRICTION");
        let f = first_denied_flow.unwrap_or(*flow);
        if !self.quick {
            if let Some(r) = self.p.explain(&f).network_acls.into_iter().find(|r| {
                r.subnet == subnet_name && r.direction == direction && r.verdict == Verdict::Deny
            }) {
                h.nearest_misses = r.nearest_misses;
            }
        }
        let used: Vec<u16> = acl.entries(direction).iter().map(|e| e.number).collect();
        let number = match number {
            Some(n) => (1..n).rev().find(|k| !used.contains(k)),
            None => (1..=32766u16)
                .map(|k| used.iter().max().map_or(100, |m| m.saturating_add(k)))
                .find(|k| *k <= 32766 && !used.contains(k)),
        };
        if let Some(number) = number {
            let ports = match (flow.proto.has_ports(), reply_ports) {
                (false, _) => None,
                (true, Some(r)) => Some(r),
                (true, None) => flow.dport.map(|d| PortRange { lo: d, hi: d }),
            };
            h.candidates.push(Change::AddAclEntry {
                acl: acl.name.clone(),
                direction,
                number,
                proto: flow.proto,
                ports,
                icmp: flow.icmp,
                remote: host(remote),
            });
        }
        self.push(h)
    }

    /// The reply of a leg through both ACLs: the destination subnet's
    /// egress, the source subnet's ingress, to the client's port.
    fn reply_hops(&mut self, src: &Point, dst: &Point, flow: &Flow) -> bool {
        if src.subnet == dst.subnet && src.vpc == dst.vpc {
            return true;
        }
        let Some((r, ports)) = self.reply_flow(flow) else {
            return true;
        };
        if !dst.internet && !self.acl_hop(dst.subnet, Direction::Egress, &r, "reply", ports) {
            return false;
        }
        src.internet || self.acl_hop(src.subnet, Direction::Ingress, &r, "reply", ports)
    }

    /// The reply of `flow` and the client's ports it goes to; `None` for
    /// an ICMP message that has no reply.
    fn reply_flow(&self, flow: &Flow) -> Option<(Flow, Option<PortRange>)> {
        let mut r = Flow::other(flow.dst, flow.src, flow.proto);
        r.zone = flow.zone;
        match flow.icmp {
            Some((8, _)) if flow.proto == IpProto::ICMP => r.icmp = Some((0, 0)),
            Some((128, _)) if flow.proto == IpProto::ICMPV6 => r.icmp = Some((129, 0)),
            Some(_) => return None,
            None => {}
        }
        r.sport = flow.dport;
        let ports = flow.proto.has_ports().then_some(match self.q.sport {
            Some(p) => PortRange { lo: p, hi: p },
            None => EPHEMERAL,
        });
        Some((r, ports))
    }

    /// One ACL of the reply of `request` (`path --all`): allowed (`None`)
    /// or the blocking code.
    pub(super) fn reply_acl(
        &mut self,
        subnet: usize,
        direction: Direction,
        request: &Flow,
    ) -> Option<&'static str> {
        let (r, ports) = self.reply_flow(request)?;
        let ok = self.acl_hop(Some(subnet), direction, &r, "reply", ports);
        let code = self.hops.last().and_then(|h| h.codes.first().copied());
        self.hops.clear();
        (!ok).then(|| code.unwrap_or("SUBNET_ACL_RESTRICTION"))
    }

    /// The route from `src`'s subnet to `dst`.
    pub(super) fn route_hop(&mut self, src: &Point, dst: &Point) -> bool {
        let t = self.t();
        let Some(vpc) = src.vpc else { return true };
        let vname = &t.vpcs[vpc as usize].name;
        let table = src
            .subnet
            .and_then(|s| t.subnets[s].route_table.as_ref())
            .and_then(|n| t.route_tables.iter().find(|r| r.name == n.value))
            .or_else(|| {
                t.route_tables
                    .iter()
                    .find(|r| r.main && r.vpc.as_ref().is_some_and(|v| &v.value == vname))
            });
        let table_name = table.map_or(format!("{vname} (local route only)"), |r| r.name.clone());
        let mut h = hop(table_name, "route", "forward");
        // (prefix length, target, state), the local route first.
        let mut best: Option<(u8, String, Option<String>)> = None;
        for c in &t.vpcs[vpc as usize].cidrs {
            if c.contains(&dst.addr) && best.as_ref().is_none_or(|b| c.prefix_len() > b.0) {
                best = Some((c.prefix_len(), "local".into(), None));
            }
        }
        // Azure adds a system route for each connected VNet peering (AWS
        // needs a route table entry).
        let azure = t.imported.as_ref().is_some_and(|i| i.provider == "azure");
        if azure {
            for &peer in &t.vpcs[vpc as usize].peers {
                for c in &t.vpcs[peer as usize].cidrs {
                    if c.contains(&dst.addr) && best.as_ref().is_none_or(|b| c.prefix_len() > b.0) {
                        let name = format!("vnet-peering:{}", t.vpcs[peer as usize].name);
                        best = Some((c.prefix_len(), name, None));
                    }
                }
            }
        }
        for r in table.map(|t| t.routes.as_slice()).unwrap_or_default() {
            let len = match &r.destination.value {
                model::Remote::Net(n) => n.contains(&dst.addr).then_some(n.prefix_len()),
                model::Remote::PrefixList(pl) => self
                    .p
                    .prefix_lists()
                    .iter()
                    .find(|l| &l.name == pl)
                    .and_then(|l| {
                        l.entries
                            .iter()
                            .filter(|n| n.contains(&dst.addr))
                            .map(|n| n.prefix_len())
                            .max()
                    }),
                model::Remote::Sg(_) => None,
            };
            if let Some(len) = len {
                if best.as_ref().is_none_or(|b| len > b.0) {
                    best = Some((len, r.target.value.clone(), r.state.clone()));
                }
            }
        }
        let dst_name = dst.vpc.map(|v| t.vpcs[v as usize].name.clone());
        let Some((len, target, state)) = best else {
            h.verdict = HopVerdict::Deny;
            h.codes.push("NO_ROUTE_TO_DESTINATION");
            h.explanation = format!("no route in {} matches {}", h.component, dst.addr);
            return self.push(h);
        };
        let prefix = if target == "local" {
            "local".to_string()
        } else {
            format!("/{len} -> {target}")
        };
        h.rule = Some(prefix);
        if state.as_deref() == Some("blackhole") {
            h.verdict = HopVerdict::Deny;
            h.codes.push("BAD_STATE_ROUTE");
            h.explanation = format!("the route to {} through {target} is a blackhole", dst.addr);
            return self.push(h);
        }
        let same = dst.vpc == Some(vpc);
        if target == "local" {
            if same || (!dst.internet && dst.vpc.is_none()) {
                h.explanation = format!("{} is in {vname}: the local route", dst.addr);
            } else {
                h.verdict = HopVerdict::Deny;
                h.codes.push("NO_ROUTE_TO_DESTINATION");
                h.explanation = format!(
                    "{} is in {vname}'s blocks, so the local route takes it, not {}",
                    dst.addr,
                    dst_name.unwrap_or_default()
                );
            }
        } else if let Some(peer) = target.strip_prefix("vnet-peering:") {
            // A system route: it exists only while the peering is connected.
            h.rule = Some(format!("/{len} -> VNet peering"));
            h.explanation = format!("{} is in {peer}: the VNet peering's system route", dst.addr);
        } else if target.starts_with("pcx-") {
            let peering = t.peerings.iter().find(|pc| pc.name == target);
            let joins = peering.is_some_and(|pc| {
                let ends = [
                    pc.requester_vpc.value.as_str(),
                    pc.accepter_vpc.value.as_str(),
                ];
                dst_name.as_deref().is_some_and(|d| ends.contains(&d))
                    && ends.contains(&vname.as_str())
                    && pc.status.as_deref().is_none_or(|s| s == "active")
            });
            if joins {
                h.explanation = format!("peering {target} to {}", dst_name.unwrap_or_default());
            } else {
                h.verdict = HopVerdict::Deny;
                let inactive =
                    peering.is_some_and(|pc| pc.status.as_deref().is_some_and(|s| s != "active"));
                h.codes.push(match peering {
                    Some(_) if inactive => "BAD_STATE",
                    // Active, but the destination is not in the peer VPC.
                    Some(_) => "PCX_REQUIRES_ADDRESS_IN_VPC_CIDR",
                    None => "NO_ROUTE_TO_DESTINATION",
                });
                h.explanation = format!(
                    "the route sends {} to {target}, which does not join {vname} to {} (or is not active)",
                    dst.addr,
                    dst_name.unwrap_or_else(|| "its VPC".into())
                );
            }
        } else if target.starts_with("igw-") {
            let public = src
                .iface
                .map(|i| self.p.interface(i).place.public_addresses.clone())
                .unwrap_or_default();
            if !dst.internet {
                h.verdict = HopVerdict::Deny;
                let private = matches!(dst.addr, IpAddr::V4(a) if a.is_private());
                h.codes.push(if private {
                    "IGW_DESTINATION_ADDRESS_NOT_IN_RFC1918_EGRESS"
                } else {
                    "NO_ROUTE_TO_DESTINATION"
                });
                h.explanation = format!(
                    "{} is not on the internet, but the route sends it to {target}",
                    dst.addr
                );
            } else if let Some(pa) = public.first() {
                h.explanation = format!(
                    "to the internet through {target}, {} translated to its public address {}",
                    src.addr,
                    pa.value.addr()
                );
            } else if let Some(lb) = src.iface.and_then(|i| self.internet_facing_lb(i)) {
                h.explanation = format!(
                    "to the internet through {target}, {} translated to the public address of {lb}'s node",
                    src.addr
                );
            } else {
                h.verdict = HopVerdict::Deny;
                h.codes.push("IGW_PUBLIC_IP_ASSOCIATION_FOR_EGRESS");
                h.explanation = format!(
                    "{target} translates only addresses with a public address; {} has none",
                    src.addr
                );
            }
        } else if target.starts_with("nat-") {
            h.explanation = format!("through NAT gateway {target}, translated to its address");
            self.notes.push(format!(
                "{target}: its own subnet's route to the internet gateway is assumed"
            ));
        } else if target.starts_with("vpce-") {
            h.explanation = format!("through Gateway Load Balancer endpoint {target}");
            self.notes.push(format!(
                "{target}: the appliances behind it are assumed to forward the flow"
            ));
        } else {
            h.verdict = HopVerdict::Unsupported;
            h.codes.push("UNSUPPORTED_COMPONENT");
            h.explanation = format!(
                "the route sends {} to {target}, which sgplane does not model",
                dst.addr
            );
        }
        self.push(h)
    }

    /// The internet-facing load balancer whose node `i` is: the node has
    /// a public address, whether or not the input lists it.
    fn internet_facing_lb(&self, i: IfaceId) -> Option<&'a str> {
        let name = &self.p.interface(i).name;
        self.t()
            .load_balancers
            .iter()
            .find(|l| {
                l.scheme
                    .as_ref()
                    .is_some_and(|s| s.value == "internet-facing")
                    && l.interfaces.iter().any(|n| &n.value == name)
            })
            .map(|l| l.name.as_str())
    }

    /// From the internet into a VPC through its internet gateway, to `dst`'s
    /// public address (or an internet-facing load balancer's node).
    fn igw_hop(&mut self, dst: &Point, public: Option<IpAddr>) -> bool {
        let t = self.t();
        let Some(vpc) = dst.vpc else { return true };
        let v = &t.vpcs[vpc as usize];
        let mut h = hop(
            v.internet_gateways
                .first()
                .cloned()
                .unwrap_or_else(|| format!("{} (no internet gateway)", v.name)),
            "internet-gateway",
            "ingress",
        );
        if v.internet_gateways.is_empty() {
            h.verdict = HopVerdict::Deny;
            h.codes.push("NO_ROUTE_TO_DESTINATION");
            h.explanation = format!("{} has no internet gateway", v.name);
            return self.push(h);
        }
        h.explanation = match public {
            Some(pa) => format!("{pa} translated to {}", dst.addr),
            None => format!("to {}", dst.addr),
        };
        if !self.push(h) {
            return false;
        }
        // The reply leaves by the destination subnet's route to the IGW.
        let back = Point {
            iface: None,
            addr: self.q_addr_internet(),
            vpc: None,
            subnet: None,
            internet: true,
        };
        let mut src = dst.clone();
        if public.is_some() {
            src.iface = dst.iface;
        }
        let before = self.hops.len();
        let ok = self.route_hop(&src, &back);
        if let Some(h) = self.hops.get_mut(before) {
            h.direction = "reply-forward";
        }
        ok
    }

    fn q_addr_internet(&self) -> IpAddr {
        self.q.from.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    // ---------------------------------------------------------------- legs

    /// `src` to `dst` within VPCs: source SG egress, NACL egress, route,
    /// NACL ingress, destination SG ingress (unless `dst_sg` is false),
    /// then the reply's NACLs.
    fn leg(&mut self, src: &Point, dst: &Point, flow: &Flow, src_sg: bool, dst_sg: bool) -> bool {
        let t = self.t();
        let sg_name = |pt: &Point| {
            pt.iface.and_then(|i| {
                let f = self.p.interface(i);
                f.security_groups
                    .first()
                    .map(|&g| self.p.security_group(g).name.clone())
            })
        };
        let same_vpc = src.vpc == dst.vpc;
        if src_sg {
            if let Some(i) = src.iface {
                let remote = if same_vpc { sg_name(dst) } else { None };
                let c = iface_label(self.p, i);
                if !self.sg_hop(i, Direction::Egress, flow, "security-group", c, remote) {
                    return false;
                }
            }
        }
        let crosses = src.subnet != dst.subnet || !same_vpc;
        if crosses
            && !src.internet
            && !self.acl_hop(src.subnet, Direction::Egress, flow, "request", None)
        {
            return false;
        }
        if !src.internet && !self.route_hop(src, dst) {
            return false;
        }
        if crosses
            && !dst.internet
            && !self.acl_hop(dst.subnet, Direction::Ingress, flow, "request", None)
        {
            return false;
        }
        if dst_sg {
            if let Some(i) = dst.iface {
                let remote = if same_vpc && !src.internet {
                    sg_name(src)
                } else {
                    None
                };
                let c = iface_label(self.p, i);
                if !self.sg_hop(i, Direction::Ingress, flow, "security-group", c, remote) {
                    return false;
                }
            }
        }
        let _ = t;
        self.reply_hops(src, dst, flow)
    }

    fn toward_point(&mut self, client: &Point, dst: &Point, to: End) {
        let vpc = if client.internet {
            dst.vpc
        } else {
            client.vpc.or(dst.vpc)
        };
        if client.internet {
            // An interface named by id or tag: its first public address.
            let public = match to {
                End::Public(_, a) => Some(a),
                _ => dst.iface.and_then(|i| {
                    let f = self.p.interface(i);
                    f.place.public_addresses.first().map(|n| n.value.addr())
                }),
            };
            if public.is_none() && dst.iface.is_some() {
                let mut h = hop(
                    iface_label(self.p, dst.iface.unwrap_or_default()),
                    "internet-gateway",
                    "ingress",
                );
                h.verdict = HopVerdict::Deny;
                h.codes.push("IGW_PRIVATE_IP_ASSOCIATION_FOR_INGRESS");
                h.explanation = format!(
                    "{} has no public address: the internet does not reach it",
                    dst.addr
                );
                self.push(h);
                return;
            }
            if !self.igw_hop(dst, public) {
                return;
            }
        }
        let flow = self.flow(client.addr, dst.addr, self.q.dport, vpc);
        self.leg(client, dst, &flow, true, true);
    }

    /// Client to a load balancer: its SGs, a listener, its node's AZ and
    /// targets, and each target as the node reaches it.
    fn toward_lb(&mut self, client: &Point, lb: usize) -> Result<(), PathError> {
        let t = self.t();
        let l = &t.load_balancers[lb];
        let nodes: Vec<Point> = l
            .interfaces
            .iter()
            .filter_map(|n| self.p.interface_id(&n.value))
            .filter_map(|i| self.iface_point(i, client.addr.is_ipv6()).ok())
            .collect();
        if nodes.is_empty() {
            return Err(PathError::NoNodes(l.name.clone()));
        }
        let lb_vpc = nodes[0].vpc;
        let joined = client.vpc == lb_vpc
            || client.internet
            || client
                .vpc
                .zip(lb_vpc)
                .is_some_and(|(a, b)| t.vpcs[a as usize].peers.contains(&b));
        if !joined {
            // Through an interface endpoint of the client's VPC whose service is this LB.
            let ep = t.endpoints.iter().position(|e| {
                e.vpc.as_ref().and_then(|v| t.vpc_id(&v.value)) == client.vpc
                    && e.service.as_ref().is_some_and(|s| {
                        t.endpoint_services.iter().any(|es| {
                            es.name == s.value
                                && es.load_balancers.iter().any(|x| x.value == l.name)
                        })
                    })
            });
            if let Some(ep) = ep {
                return self.toward_endpoint(client, ep);
            }
        }
        let az = self.az_of(client);
        let node = nodes
            .iter()
            .find(|n| az.is_some() && self.az_of(n) == az)
            .unwrap_or(&nodes[0])
            .clone();
        if client.internet {
            let facing = l
                .scheme
                .as_ref()
                .is_some_and(|s| s.value == "internet-facing");
            if !facing {
                let mut h = hop(
                    format!("load balancer {}", l.name),
                    "internet-gateway",
                    "ingress",
                );
                h.verdict = HopVerdict::Deny;
                h.codes.push("IGW_PRIVATE_IP_ASSOCIATION_FOR_INGRESS");
                h.explanation = format!("{} is internal: the internet does not reach it", l.name);
                self.push(h);
                return Ok(());
            }
            if !self.igw_hop(&node, None) {
                return Ok(());
            }
        }
        let vpc = if client.internet {
            node.vpc
        } else {
            client.vpc
        };
        let flow = self.flow(client.addr, node.addr, self.q.dport, vpc);
        let has_sgs = !l.security_groups.is_empty();
        if !self.leg(client, &node, &flow, true, has_sgs) {
            return Ok(());
        }
        if !has_sgs {
            let mut h = hop(
                format!("load balancer {}", l.name),
                "load-balancer-security-group",
                "ingress",
            );
            h.explanation = "no security groups: every client reaches the listeners".into();
            self.push(h);
        } else if let Some(h) = self
            .hops
            .iter_mut()
            .rev()
            .find(|h| h.kind == "security-group" && h.direction == "ingress")
        {
            h.kind = "load-balancer-security-group";
            h.component = format!("load balancer {} ({})", l.name, h.component);
        }
        self.lb_rest(lb, &node, client.addr, false);
        Ok(())
    }

    /// Client to an interface endpoint, its service, and the service's NLB
    /// in the endpoint's AZ.
    fn toward_endpoint(&mut self, client: &Point, ep: usize) -> Result<(), PathError> {
        let t = self.t();
        let e = &t.endpoints[ep];
        let enis: Vec<Point> = e
            .interfaces
            .iter()
            .filter_map(|n| self.p.interface_id(&n.value))
            .filter_map(|i| self.iface_point(i, client.addr.is_ipv6()).ok())
            .collect();
        let Some(first) = enis.first() else {
            return Err(PathError::Other(format!(
                "--to {}: the endpoint has no interface in the policy",
                e.name
            )));
        };
        let az = self.az_of(client);
        let eni = enis
            .iter()
            .find(|n| az.is_some() && self.az_of(n) == az)
            .unwrap_or(first)
            .clone();
        if az.is_some() && self.az_of(&eni) != az {
            self.notes.push(format!(
                "{} has no interface in {}: the client uses the one in {}",
                e.name,
                az.clone().unwrap_or_default(),
                self.az_of(&eni).unwrap_or_default()
            ));
        }
        let flow = self.flow(client.addr, eni.addr, self.q.dport, client.vpc);
        if !self.leg(client, &eni, &flow, true, true) {
            return Ok(());
        }
        if let Some(h) = self
            .hops
            .iter_mut()
            .rev()
            .find(|h| h.kind == "security-group" && h.direction == "ingress")
        {
            h.kind = "vpc-endpoint-security-group";
            h.component = format!("VPC endpoint {} ({})", e.name, h.component);
        }
        let service = e
            .service
            .as_ref()
            .map(|s| s.value.clone())
            .unwrap_or_default();
        let svc = t.endpoint_services.iter().find(|s| s.name == service);
        let mut h = hop(
            format!("endpoint service {service}"),
            "vpc-endpoint-service",
            "forward",
        );
        let lb = svc.and_then(|s| {
            s.load_balancers
                .iter()
                .find_map(|n| t.load_balancers.iter().position(|l| l.name == n.value))
        });
        let Some(lb) = lb else {
            h.verdict = HopVerdict::Unsupported;
            h.codes.push("UNKNOWN_RESOURCE");
            h.explanation = format!(
                "the endpoint service {service} (or its load balancer) is not in the policy"
            );
            self.push(h);
            return Ok(());
        };
        let l = &t.load_balancers[lb];
        let ep_az = self.az_of(&eni);
        let nodes: Vec<Point> = l
            .interfaces
            .iter()
            .filter_map(|n| self.p.interface_id(&n.value))
            .filter_map(|i| self.iface_point(i, client.addr.is_ipv6()).ok())
            .collect();
        let Some(node) = nodes.iter().find(|n| self.az_of(n) == ep_az).cloned() else {
            h.verdict = HopVerdict::Deny;
            h.codes.push("VPCE_SERVICE_NOT_INSTALLED_IN_AZ");
            h.explanation = format!(
                "{} has no node in the endpoint's AZ {}",
                l.name,
                ep_az.unwrap_or_default()
            );
            self.push(h);
            return Ok(());
        };
        h.rule = Some(l.name.clone());
        h.explanation = format!(
            "PrivateLink to {} node {} in {}",
            l.name,
            node.addr,
            ep_az.clone().unwrap_or_default()
        );
        self.push(h);
        // The NLB's inbound rules, against the client's address.
        let mut comp = format!("load balancer {}", l.name);
        if let Some(i) = node.iface {
            comp = format!("{comp} ({})", self.p.interface(i).name);
        }
        let enforce = l.enforce_inbound_rules_on_privatelink != Some(false);
        if l.security_groups.is_empty() || !enforce {
            let mut h = hop(comp, "load-balancer-security-group", "ingress");
            h.explanation = if l.security_groups.is_empty() {
                "no security groups: every client reaches the listeners".into()
            } else {
                "inbound rules are not enforced on PrivateLink traffic".into()
            };
            self.push(h);
        } else if let Some(i) = node.iface {
            let flow = self.flow(client.addr, node.addr, self.q.dport, node.vpc);
            let ok = self.sg_hop(
                i,
                Direction::Ingress,
                &flow,
                "load-balancer-security-group",
                comp,
                None,
            );
            if let Some(h) = self.hops.last_mut() {
                if !ok {
                    h.explanation.push_str(" (evaluated against the client's address: inbound rules are enforced on PrivateLink traffic)");
                    h.candidates
                        .insert(0, Change::PrivateLinkEnforcementOff { lb: l.name.clone() });
                }
            }
            if !ok {
                return Ok(());
            }
        }
        self.lb_rest(lb, &node, client.addr, true);
        Ok(())
    }

    /// After the load balancer's inbound rules: the listener, the node's
    /// AZ and its targets, and each target from the node.
    fn lb_rest(&mut self, lb: usize, node: &Point, client: IpAddr, privatelink: bool) {
        let t = self.t();
        let l = &t.load_balancers[lb];
        let kind = l.kind.value.as_str();
        let mut h = hop(format!("load balancer {}", l.name), "listener", "forward");
        let listener = l.listeners.iter().find(|li| {
            let proto = li.proto.value.to_ascii_lowercase();
            let proto_ok = match self.q.proto {
                IpProto::TCP => {
                    matches!(proto.as_str(), "tcp" | "tls" | "http" | "https" | "tcp_udp")
                }
                IpProto::UDP => matches!(proto.as_str(), "udp" | "tcp_udp"),
                _ => kind == "gateway",
            };
            proto_ok
                && (li.port.is_none()
                    || li.port.as_ref().map(|p| p.value) == self.q.dport.map(i64::from))
        });
        let Some(li) = listener else {
            h.verdict = HopVerdict::Deny;
            h.codes.push("ELBV2_LISTENERS_MISMATCH");
            let have: Vec<String> = l
                .listeners
                .iter()
                .map(|li| {
                    format!(
                        "{}/{}",
                        li.proto.value,
                        li.port
                            .as_ref()
                            .map_or("all".into(), |p| p.value.to_string())
                    )
                })
                .collect();
            h.explanation = format!(
                "none of the listeners of {} ({}) accepts {}",
                l.name,
                if have.is_empty() {
                    "none".into()
                } else {
                    have.join(", ")
                },
                describe_flow(self.q)
            );
            self.push(h);
            return;
        };
        h.rule = Some(format!(
            "{}/{}",
            li.proto.value,
            li.port
                .as_ref()
                .map_or("all".into(), |p| p.value.to_string())
        ));
        let tg_name = li
            .target_group
            .as_ref()
            .map(|g| g.value.clone())
            .unwrap_or_default();
        let Some(tg) = t
            .target_groups
            .iter()
            .find(|g| g.name == tg_name || g.arn.as_deref() == Some(&tg_name))
        else {
            h.verdict = HopVerdict::Deny;
            h.codes.push("ELBV2_LISTENER_REQUIRES_TG_ACCEPT");
            h.explanation = format!(
                "the listener {} forwards to no target group in the policy",
                h.rule.clone().unwrap_or_default()
            );
            self.push(h);
            return;
        };
        h.explanation = format!(
            "listener {} forwards to {}",
            h.rule.clone().unwrap_or_default(),
            tg.name
        );
        self.push(h);
        // Targets and their AZs.
        let cross = match kind {
            "application" => true,
            _ => l.cross_zone.unwrap_or(false),
        };
        let node_az = self.az_of(node);
        let v6 = client.is_ipv6();
        let targets: Vec<(Point, u16, String, Option<String>)> = tg
            .targets
            .iter()
            .filter_map(|tgt| {
                let id = &tgt.id.value;
                let i = self.p.interface_id(id).or_else(|| {
                    self.p
                        .interfaces()
                        .iter()
                        .position(|f| f.place.instance.as_deref() == Some(id.as_str()))
                        .map(|i| i as IfaceId)
                });
                let pt = match i {
                    Some(i) => self.iface_point(i, v6).ok()?,
                    None => {
                        let a: IpAddr = id.parse().ok()?;
                        let e = End::Addr(a, node.vpc);
                        self.point(e, v6).ok()?
                    }
                };
                let port = tgt
                    .port
                    .as_ref()
                    .map(|p| p.value)
                    .or(tg.port.as_ref().map(|p| p.value))
                    .and_then(|p| u16::try_from(p).ok())
                    .or(self.q.dport)
                    .unwrap_or(0);
                let az = tgt.az.clone().or_else(|| self.az_of(&pt));
                Some((
                    pt,
                    port,
                    id.clone(),
                    az.map(|a| {
                        format!(
                            "{a}, {}",
                            tgt.health
                                .clone()
                                .unwrap_or_else(|| "health unknown".into())
                        )
                    }),
                ))
            })
            .collect();
        let mut h = hop(
            format!("load balancer {} ({})", l.name, tg.name),
            "load-balancer-targets",
            "forward",
        );
        let in_az = |az: &Option<String>| {
            node_az.is_none()
                || az
                    .as_ref()
                    .is_some_and(|a| Some(a.split(',').next().unwrap_or("")) == node_az.as_deref())
        };
        let eligible: Vec<usize> = (0..targets.len())
            .filter(|&i| cross || in_az(&targets[i].3))
            .collect();
        let listing = targets
            .iter()
            .map(|(_, port, id, az)| format!("{id}:{port} ({})", az.clone().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(", ");
        if eligible.is_empty() {
            h.verdict = HopVerdict::Deny;
            if targets.is_empty() {
                h.codes.push("ELBV2_LISTENER_HAS_NO_TG");
                h.explanation = format!("{} has no registered targets", tg.name);
            } else {
                h.codes.push("ELB_NOT_CROSSZONE");
                h.explanation = format!(
                    "the node in {} has no target in its AZ and cross-zone load balancing is off; targets: {listing}",
                    node_az.unwrap_or_default()
                );
                h.candidates.push(Change::CrossZone { lb: l.name.clone() });
            }
            self.push(h);
            return;
        }
        h.rule = Some(if cross {
            "cross-zone on".into()
        } else {
            format!("targets in {}", node_az.clone().unwrap_or_default())
        });
        h.explanation = format!(
            "node {} ({}) sends to {}",
            node.addr,
            node_az.clone().unwrap_or_default(),
            eligible
                .iter()
                .map(|&i| format!(
                    "{}:{} ({})",
                    targets[i].2,
                    targets[i].1,
                    targets[i].3.clone().unwrap_or_default()
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
        self.push(h);
        // Each eligible target; the first reachable one's hops are kept,
        // else the first one's.
        let preserve = !privatelink
            && kind == "network"
            && tg
                .preserve_client_ip
                .unwrap_or(tg.target_type.as_deref() != Some("ip"));
        let has_sgs = !l.security_groups.is_empty();
        let lb_sg = l.security_groups.first().map(|g| g.value.clone());
        let mut first: Option<Vec<Hop>> = None;
        for &i in &eligible {
            let (pt, port, _, _) = &targets[i];
            let mut sub = Walk {
                p: self.p,
                q: self.q,
                hops: Vec::new(),
                notes: Vec::new(),
                quick: self.quick,
            };
            let src = if preserve { client } else { node.addr };
            let flow = sub.flow(src, pt.addr, Some(*port), node.vpc);
            let ok = sub.target_leg(node, pt, &flow, has_sgs, lb_sg.clone(), preserve);
            if ok {
                self.hops.extend(sub.hops);
                self.notes.extend(sub.notes);
                return;
            }
            first.get_or_insert(sub.hops);
        }
        self.hops.extend(first.unwrap_or_default());
    }

    /// The node to one target: the LB's SG egress, the ACLs, the target's
    /// SG ingress (from the node, or the client when it is preserved).
    fn target_leg(
        &mut self,
        node: &Point,
        target: &Point,
        flow: &Flow,
        has_sgs: bool,
        lb_sg: Option<String>,
        preserve: bool,
    ) -> bool {
        let same = node.vpc == target.vpc;
        if has_sgs {
            if let Some(i) = node.iface {
                let remote = target.iface.and_then(|t| {
                    self.p
                        .interface(t)
                        .security_groups
                        .first()
                        .map(|&g| self.p.security_group(g).name.clone())
                });
                let c = format!("load balancer node {}", self.p.interface(i).name);
                if !self.sg_hop(
                    i,
                    Direction::Egress,
                    flow,
                    "load-balancer-security-group",
                    c,
                    remote.filter(|_| same),
                ) {
                    return false;
                }
            }
        }
        let client = Point {
            iface: if preserve { None } else { node.iface },
            addr: flow.src,
            ..node.clone()
        };
        let crosses = node.subnet != target.subnet;
        if crosses && !self.acl_hop(node.subnet, Direction::Egress, flow, "request", None) {
            return false;
        }
        if !self.route_hop(node, target) {
            return false;
        }
        if crosses && !self.acl_hop(target.subnet, Direction::Ingress, flow, "request", None) {
            return false;
        }
        if let Some(i) = target.iface {
            let remote = if preserve {
                None
            } else {
                lb_sg.filter(|_| same)
            };
            let c = format!("target {}", iface_label(self.p, i));
            if !self.sg_hop(i, Direction::Ingress, flow, "security-group", c, remote) {
                if let Some(h) = self.hops.last_mut() {
                    h.codes.push("TARGET_PORT_RESTRICTION");
                }
                return false;
            }
        }
        let _ = client;
        self.reply_hops(node, target, flow)
    }
}

/// `tcp/80`, `icmp type 8 code 0`.
fn flow_text(f: &Flow) -> String {
    match (f.dport, f.icmp) {
        (Some(d), _) => format!("{}/{d}", f.proto),
        (None, Some((t, c))) => format!("{} type {t} code {c}", f.proto),
        _ => f.proto.to_string(),
    }
}

/// An address as a one-address block.
fn host(a: IpAddr) -> IpNet {
    IpNet::from(a)
}

/// The parts of `range` an ACL direction's entries treat differently, each
/// given by its first port.
fn segments(acl: &NetworkAcl, direction: Direction, range: PortRange) -> Vec<PortRange> {
    let mut cuts = vec![u32::from(range.lo), u32::from(range.hi) + 1];
    for e in acl.entries(direction) {
        for r in e.ports.ranges() {
            for c in [u32::from(r.lo), u32::from(r.hi) + 1] {
                if c > u32::from(range.lo) && c <= u32::from(range.hi) {
                    cuts.push(c);
                }
            }
        }
    }
    cuts.sort_unstable();
    cuts.dedup();
    cuts.windows(2)
        .map(|w| PortRange {
            lo: w[0] as u16,
            hi: (w[1] - 1) as u16,
        })
        .collect()
}
