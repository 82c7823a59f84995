//! Network ACLs (SPEC §9.1): stateless rules at a subnet's edge. Every
//! packet that leaves a subnet is judged by its ACL's egress entries (the
//! remote end is the destination), every packet that enters one by its
//! ingress entries (the remote end is the source); traffic inside one
//! subnet is not judged. Entries are tried in ascending rule number, the
//! first match decides, and no match is a deny (AWS's `*` rule). Ports are
//! the packet's destination port in both directions.
//!
//! Two evaluators share the subnet of an address and the names: the
//! engine's ([`Nacls::judge`]: entries packed into flat records, subnet
//! blocks searched by bisection) and the reference ([`Policy::evaluate_nacls`]:
//! a plain scan of the entries as written, subnets scanned one by one),
//! which `explain` uses and the engine is tested against.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use super::topology::VpcId;
use super::*;

/// Index of a subnet in [`Topology::subnets`].
pub type SubnetId = u32;
/// Index of a network ACL in [`Nacls::acls`].
pub type AclId = u32;

/// The ephemeral ports a client's reply goes back to: AWS's advice for
/// NACLs, covering every common client (Linux 32768-60999, Windows
/// 49152-65535, NAT gateways 1024-65535).
pub const EPHEMERAL: PortRange = PortRange {
    lo: 1024,
    hi: 65535,
};

/// One ACL entry, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclEntry {
    /// 1-32766.
    pub number: u16,
    pub proto: ProtoMatch,
    /// The packet's destination port; all ports for protocols without them.
    pub ports: PortSet,
    pub icmp_type: Option<u8>,
    pub icmp_code: Option<u8>,
    /// `from` on ingress, `to` on egress.
    pub remote: IpNet,
    pub action: Action,
    /// Where it was written (0 when nowhere).
    pub line: u32,
}

impl AclEntry {
    /// Whether the entry matches a packet whose remote end is `remote`.
    /// Unknown ports (a later fragment) match only an entry covering every
    /// port; an unknown ICMP type only an entry with none.
    pub fn matches(&self, flow: &Flow, remote: IpAddr) -> bool {
        let field = |want: Option<u8>, got: Option<u8>| want.is_none() || want == got;
        self.proto.matches(flow.proto)
            && self.ports.contains_opt(flow.dport)
            && field(self.icmp_type, flow.icmp.map(|i| i.0))
            && field(self.icmp_code, flow.icmp.map(|i| i.1))
            && self.remote.contains(&remote)
    }

    /// Whether this entry matches every packet `other` matches.
    pub fn covers(&self, other: &AclEntry) -> bool {
        let field = |x: Option<u8>, y: Option<u8>| x.is_none() || x == y;
        other.proto.covered_by(self.proto)
            && other.ports.is_subset_of(&self.ports)
            && field(self.icmp_type, other.icmp_type)
            && field(self.icmp_code, other.icmp_code)
            && self.remote.contains(&other.remote)
    }

    /// `allow tcp/443 from 0.0.0.0/0`.
    pub fn describe(&self, direction: Direction) -> String {
        let mut s = format!("{} {}", self.action, self.proto);
        if self.proto.has_ports() {
            s.push('/');
            if self.ports.is_all() {
                s.push_str("all-ports");
            } else {
                s.push_str(&self.ports.to_string());
            }
        }
        match (self.icmp_type, self.icmp_code) {
            (None, None) => {}
            (Some(t), None) => s.push_str(&format!(" type {t}")),
            (t, Some(c)) => s.push_str(&format!(
                " type {} code {c}",
                t.map_or("any".to_string(), |t| t.to_string())
            )),
        }
        let word = match direction {
            Direction::Ingress => "from",
            Direction::Egress => "to",
        };
        s.push_str(&format!(" {word} {}", self.remote));
        s
    }
}

/// An entry as the engine scans it: flat numbers, no allocation.
#[derive(Debug, Clone, Copy)]
struct Packed {
    lo: u128,
    hi: u128,
    v6: bool,
    /// [`ANY`] for every protocol.
    proto: u16,
    /// Inclusive; an entry covering every port ends at [`UNKNOWN_PORT`], so
    /// that only it matches a packet whose port is unknown.
    port_lo: u32,
    port_hi: u32,
    /// [`ANY`] for every type or code.
    icmp_type: u16,
    icmp_code: u16,
    allow: bool,
    /// Index of the entry in its direction's list.
    entry: u16,
}

const ANY: u16 = 256;
/// The port of a packet whose port is unknown or that has none.
const UNKNOWN_PORT: u32 = 0x1_0000;
/// The ICMP type or code of a packet that has none.
const NO_ICMP: u16 = 512;

/// A packet's fields as [`Packed`] entries compare them.
#[derive(Debug, Clone, Copy)]
struct Probe {
    v6: bool,
    addr: u128,
    proto: u16,
    port: u32,
    icmp_type: u16,
    icmp_code: u16,
}

impl Probe {
    #[inline]
    fn new(flow: &Flow, remote: IpAddr) -> Probe {
        let (v6, addr) = addr_key(remote);
        Probe {
            v6,
            addr,
            proto: u16::from(flow.proto.0),
            port: flow.dport.map_or(UNKNOWN_PORT, u32::from),
            icmp_type: flow.icmp.map_or(NO_ICMP, |i| u16::from(i.0)),
            icmp_code: flow.icmp.map_or(NO_ICMP, |i| u16::from(i.1)),
        }
    }
}

impl Packed {
    /// One packed record per port range of the entry (first match is kept:
    /// the records of one entry are adjacent and share its action).
    fn of(e: &AclEntry, entry: u16, out: &mut Vec<Packed>) {
        let (lo, hi) = net_bounds(&e.remote);
        let all = e.ports.is_all();
        for r in e.ports.ranges() {
            out.push(Packed {
                lo: lo.1,
                hi: hi.1,
                v6: lo.0,
                proto: match e.proto {
                    ProtoMatch::Any => ANY,
                    ProtoMatch::Is(p) => u16::from(p.0),
                },
                port_lo: u32::from(r.lo),
                port_hi: if all { UNKNOWN_PORT } else { u32::from(r.hi) },
                icmp_type: e.icmp_type.map_or(ANY, u16::from),
                icmp_code: e.icmp_code.map_or(ANY, u16::from),
                allow: e.action == Action::Allow,
                entry,
            });
        }
    }

    #[inline]
    fn matches(&self, p: &Probe) -> bool {
        (self.proto == ANY || self.proto == p.proto)
            && self.port_lo <= p.port
            && p.port <= self.port_hi
            && (self.icmp_type == ANY || self.icmp_type == p.icmp_type)
            && (self.icmp_code == ANY || self.icmp_code == p.icmp_code)
            && self.v6 == p.v6
            && self.lo <= p.addr
            && p.addr <= self.hi
    }
}

/// A network ACL, compiled.
#[derive(Debug, Clone)]
pub struct NetworkAcl {
    pub name: String,
    /// In ascending rule number.
    pub ingress: Vec<AclEntry>,
    pub egress: Vec<AclEntry>,
    /// The packed entries, ingress then egress.
    packed: [Vec<Packed>; 2],
    /// Each direction's first hit counter: its entries in order, then `*`.
    hit_base: [u32; 2],
}

fn side(d: Direction) -> usize {
    match d {
        Direction::Ingress => 0,
        Direction::Egress => 1,
    }
}

impl NetworkAcl {
    /// Entries are sorted by rule number here.
    pub fn new(name: String, mut ingress: Vec<AclEntry>, mut egress: Vec<AclEntry>) -> NetworkAcl {
        ingress.sort_by_key(|e| e.number);
        egress.sort_by_key(|e| e.number);
        let pack = |list: &[AclEntry]| {
            let mut out = Vec::new();
            for (i, e) in list.iter().enumerate() {
                Packed::of(e, i as u16, &mut out);
            }
            out
        };
        NetworkAcl {
            name,
            packed: [pack(&ingress), pack(&egress)],
            ingress,
            egress,
            hit_base: [0, 0],
        }
    }

    pub fn entries(&self, d: Direction) -> &[AclEntry] {
        match d {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        }
    }

    /// The reference: the first entry in rule-number order that matches.
    pub fn first_match(&self, d: Direction, flow: &Flow, remote: IpAddr) -> Option<u16> {
        self.entries(d)
            .iter()
            .position(|e| e.matches(flow, remote))
            .map(|i| i as u16)
    }

    /// The engine's scan of the packed entries.
    #[inline]
    fn scan(&self, d: Direction, probe: &Probe) -> (bool, Option<u16>) {
        for p in &self.packed[side(d)] {
            if p.matches(probe) {
                return (p.allow, Some(p.entry));
            }
        }
        (false, None)
    }
}

/// One subnet's ACL judging a packet in one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AclDecision {
    pub subnet: SubnetId,
    pub acl: AclId,
    pub direction: Direction,
    /// The deciding entry (index in the direction's list); `None` is `*`.
    pub entry: Option<u16>,
    pub verdict: Verdict,
}

/// The ACL decisions for one packet: the source subnet's egress and the
/// destination subnet's ingress, where those subnets differ and have ACLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NaclEvaluation {
    pub egress: Option<AclDecision>,
    pub ingress: Option<AclDecision>,
}

impl NaclEvaluation {
    /// The decision that drops the packet, egress first (it is judged first).
    pub fn denied(&self) -> Option<&AclDecision> {
        self.decisions().find(|d| d.verdict == Verdict::Deny)
    }

    /// Egress first.
    pub fn decisions(&self) -> impl Iterator<Item = &AclDecision> {
        self.egress.iter().chain(self.ingress.iter())
    }
}

/// Every network ACL of a policy, which subnet has which, and which subnet
/// holds an address. A policy whose subnets have no ACL has none of this
/// ([`Policy::nacls`] is `None`), so the engine pays one branch for it.
#[derive(Debug, Clone, Default)]
pub struct Nacls {
    pub acls: Vec<NetworkAcl>,
    /// Each subnet's ACL, by [`SubnetId`].
    pub subnet_acl: Vec<Option<AclId>>,
    /// Each subnet's VPC, by [`SubnetId`].
    pub subnet_vpc: Vec<VpcId>,
    /// Each subnet's blocks.
    pub subnet_blocks: Vec<Vec<IpNet>>,
    /// The subnet each interface names, by [`IfaceId`].
    pub interface_subnet: Vec<Option<SubnetId>>,
    /// (VPC, first address, last address, subnet), sorted.
    blocks: Vec<(VpcId, AddrKey, AddrKey, SubnetId)>,
    /// What each hit counter counts: (ACL, direction, entry or `*`).
    hit_slots: Vec<(AclId, Direction, Option<u16>)>,
}

impl Nacls {
    /// Indexes the ACLs, subnets and interfaces; `subnets` gives each
    /// subnet's VPC, blocks and ACL.
    pub fn new(
        mut acls: Vec<NetworkAcl>,
        subnets: Vec<(VpcId, Vec<IpNet>, Option<AclId>)>,
        interface_subnet: Vec<Option<SubnetId>>,
    ) -> Nacls {
        let mut hit_slots = Vec::new();
        for (a, acl) in acls.iter_mut().enumerate() {
            for d in [Direction::Ingress, Direction::Egress] {
                acl.hit_base[side(d)] = hit_slots.len() as u32;
                let n = acl.entries(d).len();
                hit_slots.extend((0..n).map(|i| (a as AclId, d, Some(i as u16))));
                hit_slots.push((a as AclId, d, None));
            }
        }
        let mut blocks = Vec::new();
        for (s, (vpc, nets, _)) in subnets.iter().enumerate() {
            for n in nets {
                let (lo, hi) = net_bounds(n);
                blocks.push((*vpc, lo, hi, s as SubnetId));
            }
        }
        blocks.sort_unstable();
        Nacls {
            acls,
            subnet_vpc: subnets.iter().map(|s| s.0).collect(),
            subnet_acl: subnets.iter().map(|s| s.2).collect(),
            subnet_blocks: subnets.into_iter().map(|s| s.1).collect(),
            interface_subnet,
            blocks,
            hit_slots,
        }
    }

    /// How many hit counters [`Nacls::hit_index`] indexes.
    pub fn hit_count(&self) -> usize {
        self.hit_slots.len()
    }

    /// The counter of a decision's entry (or its direction's `*`).
    #[inline]
    pub fn hit_index(&self, d: &AclDecision) -> usize {
        let acl = &self.acls[d.acl as usize];
        let n = acl.entries(d.direction).len();
        acl.hit_base[side(d.direction)] as usize + d.entry.map_or(n, usize::from)
    }

    /// The rule a hit counter counts, `ACL/DIRECTION/RULE`.
    pub fn hit_name(&self, i: usize) -> AclRuleName<'_> {
        let (acl, direction, entry) = self.hit_slots[i];
        AclRuleName {
            acl: &self.acls[acl as usize],
            direction,
            entry,
        }
    }

    /// A decision's rule, `ACL/DIRECTION/RULE` (`*` when no entry matched).
    pub fn rule_name(&self, d: &AclDecision) -> AclRuleName<'_> {
        AclRuleName {
            acl: &self.acls[d.acl as usize],
            direction: d.direction,
            entry: d.entry,
        }
    }

    /// The subnet an address is in, as the engine finds it: the subnet its
    /// interface names, else the subnet of the packet's VPC whose block
    /// holds it (an address no interface owns, or an interface that names
    /// no subnet).
    #[inline]
    pub fn subnet_of(
        &self,
        policy: &Policy,
        addr: IpAddr,
        zone: Option<ZoneId>,
    ) -> Option<SubnetId> {
        if let Some(s) = policy
            .interface_of(addr, zone)
            .and_then(|i| self.interface_subnet.get(i as usize).copied().flatten())
        {
            return Some(s);
        }
        let vpc = packet_vpc(policy, addr, zone)?;
        let k = addr_key(addr);
        let i = self.blocks.partition_point(|b| (b.0, b.1) <= (vpc, k));
        let &(v, _, last, s) = self.blocks.get(i.checked_sub(1)?)?;
        (v == vpc && k <= last).then_some(s)
    }

    /// The engine's ACL decisions for a packet (`flow` in its zone).
    #[inline]
    pub fn judge(&self, policy: &Policy, flow: &Flow) -> NaclEvaluation {
        let src = self.subnet_of(policy, flow.src, flow.zone);
        let dst = self.subnet_of(policy, flow.dst, flow.zone);
        if src == dst {
            return NaclEvaluation::default();
        }
        let decide = |subnet: Option<SubnetId>, direction: Direction, remote: IpAddr| {
            let subnet = subnet?;
            let acl = self.subnet_acl[subnet as usize]?;
            let (allow, entry) = self.acls[acl as usize].scan(direction, &Probe::new(flow, remote));
            Some(AclDecision {
                subnet,
                acl,
                direction,
                entry,
                verdict: if allow { Verdict::Allow } else { Verdict::Deny },
            })
        };
        NaclEvaluation {
            egress: decide(src, Direction::Egress, flow.dst),
            ingress: decide(dst, Direction::Ingress, flow.src),
        }
    }
}

/// The VPC whose subnets hold a packet's addresses: the one its zone is,
/// the only one there is, else the one owning the address.
fn packet_vpc(policy: &Policy, addr: IpAddr, zone: Option<ZoneId>) -> Option<VpcId> {
    let t = policy.topology();
    if !t.spaced() {
        return Some(0);
    }
    zone.and_then(|z| t.vpc_of_space(z))
        .or_else(|| t.vpc_owning(addr))
}

/// Displays `ACL/DIRECTION/RULE`, `*` for the implicit deny.
#[derive(Clone, Copy)]
pub struct AclRuleName<'a> {
    acl: &'a NetworkAcl,
    direction: Direction,
    entry: Option<u16>,
}

impl fmt::Display for AclRuleName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/", self.acl.name, self.direction)?;
        match self.entry {
            Some(i) => write!(f, "{}", self.acl.entries(self.direction)[i as usize].number),
            None => f.write_str("*"),
        }
    }
}

impl Policy {
    /// The network ACLs, when any subnet has one.
    #[inline]
    pub fn nacls(&self) -> Option<&Nacls> {
        self.topology.nacls.as_deref()
    }

    /// The subnet an address is in, by a plain scan: its interface's
    /// subnet, else the first subnet of the packet's VPC whose block holds it.
    pub fn subnet_of(&self, addr: IpAddr, zone: Option<ZoneId>) -> Option<SubnetId> {
        let n = self.nacls()?;
        if let Some(s) = self
            .interface_of(addr, zone)
            .and_then(|i| n.interface_subnet.get(i as usize).copied().flatten())
        {
            return Some(s);
        }
        let vpc = packet_vpc(self, addr, zone)?;
        (0..n.subnet_vpc.len())
            .find(|&s| {
                n.subnet_vpc[s] == vpc && n.subnet_blocks[s].iter().any(|b| b.contains(&addr))
            })
            .map(|s| s as SubnetId)
    }

    /// SPEC §9.1 by the reference: the source subnet's egress entries and
    /// the destination subnet's ingress entries, each a first match in
    /// rule-number order, where the subnets differ.
    pub fn evaluate_nacls(&self, flow: &Flow) -> NaclEvaluation {
        let Some(n) = self.nacls() else {
            return NaclEvaluation::default();
        };
        let src = self.subnet_of(flow.src, flow.zone);
        let dst = self.subnet_of(flow.dst, flow.zone);
        if src == dst {
            return NaclEvaluation::default();
        }
        let decide = |subnet: Option<SubnetId>, direction: Direction, remote: IpAddr| {
            let subnet = subnet?;
            let acl = n.subnet_acl[subnet as usize]?;
            let a = &n.acls[acl as usize];
            let entry = a.first_match(direction, flow, remote);
            let allow =
                entry.is_some_and(|i| a.entries(direction)[i as usize].action == Action::Allow);
            Some(AclDecision {
                subnet,
                acl,
                direction,
                entry,
                verdict: if allow { Verdict::Allow } else { Verdict::Deny },
            })
        };
        NaclEvaluation {
            egress: decide(src, Direction::Egress, flow.dst),
            ingress: decide(dst, Direction::Ingress, flow.src),
        }
    }

    /// A subnet's name.
    pub fn subnet_name(&self, s: SubnetId) -> &str {
        &self.topology.subnets[s as usize].name
    }
}

/// Policies with subnets and network ACLs built in code, for tests across
/// the crate (the TOML reader does not read topology yet).
#[cfg(test)]
pub(crate) mod testing {
    use super::super::model::{self, At, Model};
    use super::super::*;

    /// An entry: `rule`, protocol, ports (`None`: all), remote block, allow or deny.
    pub fn entry(
        rule: i64,
        proto: &str,
        ports: Option<&str>,
        remote: &str,
        allow: bool,
    ) -> model::AclRule {
        model::AclRule {
            origin: model::Origin::None,
            rule: At::bare(rule),
            proto: proto.parse().unwrap(),
            ports: ports.map(|p| At::bare(p.split(',').map(|r| r.parse().unwrap()).collect())),
            icmp_type: None,
            icmp_code: None,
            remote: At::bare(parse_net(remote).unwrap()),
            action: if allow { Action::Allow } else { Action::Deny },
        }
    }

    pub fn acl(
        name: &str,
        ingress: Vec<model::AclRule>,
        egress: Vec<model::AclRule>,
    ) -> model::NetworkAcl {
        model::NetworkAcl {
            name: name.into(),
            ingress,
            egress,
            ..Default::default()
        }
    }

    /// `sgs_and_interfaces` (TOML: groups and interfaces) in VPC `vpc-1`
    /// (10.0.0.0/16, 2001:db8::/56), with `subnets` (name, blocks, ACL),
    /// `acls`, and each interface placed in a subnet (`placed`: interface,
    /// subnet).
    pub fn model(
        sgs_and_interfaces: &str,
        subnets: &[(&str, &[&str], Option<&str>)],
        acls: Vec<model::NetworkAcl>,
        placed: &[(&str, &str)],
    ) -> Model {
        let mut m = Model::from_toml(sgs_and_interfaces, "nacl-test").unwrap();
        m.vpcs.push(model::Vpc {
            name: "vpc-1".into(),
            cidrs: vec![
                At::bare(parse_net("10.0.0.0/16").unwrap()),
                At::bare(parse_net("2001:db8::/56").unwrap()),
            ],
            ..Default::default()
        });
        for (name, blocks, acl) in subnets {
            m.subnets.push(model::Subnet {
                name: name.to_string(),
                vpc: At::bare("vpc-1".into()),
                cidrs: blocks
                    .iter()
                    .map(|b| At::bare(parse_net(b).unwrap()))
                    .collect(),
                network_acl: acl.map(|a| At::bare(a.to_string())),
                ..Default::default()
            });
        }
        m.network_acls = acls;
        for (iface, subnet) in placed {
            let i = m.interfaces.iter_mut().find(|i| i.name == *iface).unwrap();
            i.place.subnet = Some(At::bare(subnet.to_string()));
        }
        m
    }
}
