//! Security-group policy: the policy model, the TOML format (SPEC §1) that
//! reads into it, its compiled immutable form, and the linear reference
//! evaluator of SPEC §2 steps 3-4.
//!
//! A policy is first a [`Model`]: plain data, each value with the
//! [`Origin`] it was read from (a TOML line and column, a JSON path).
//! [`Model::from_toml`] reads a policy file into one strictly (unknown keys
//! and malformed values are errors naming file:line:column); the cloud
//! importers build one from the clouds' JSON. [`Policy::compile`] checks a
//! model (dangling references, ports on protocols without ports, ranges,
//! overlapping addresses, …), every problem at its origin, and compiles it:
//! every interface's address, every SG's members, prefix lists and SG
//! references resolved, and each interface's ingress and egress rules in
//! decision order. The result never changes; live modes swap in a new one.
//! [`Policy::from_toml`] and [`Policy::load`] do both steps for a file.
//!
//! [`Policy::evaluate`] is the oracle: a plain scan that the fast classifier is
//! tested against, and the engine of `sgplane explain`.

pub mod check;
mod compile;
mod diag;
pub mod explain;
mod file;
pub mod model;
pub mod nacl;
pub mod reference;
pub mod topology;
pub mod tracking;
pub mod types;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;

pub use diag::{Diagnostic, PolicyError};
pub use model::{Model, Origin};
pub use reference::{Decision, Evaluation};
pub use topology::{Topology, VpcId};
pub use tracking::Tracking;
pub use types::*;

use crate::conntrack;
pub use crate::conntrack::WhenFull;
use crate::wire::{Encap, IpPacket, Tunnel};

/// The policy built into the binary, used when no `-c` is given.
pub const DEFAULT_POLICY_TOML: &str = include_str!("../../config/default.toml");
/// How the built-in policy is named in messages.
pub const DEFAULT_POLICY_NAME: &str = "config/default.toml (built in)";

/// Index of a security group in [`Policy::security_groups`].
pub type SgId = u32;
/// Index of a rule in [`Policy::rules`].
pub type RuleId = u32;
/// Index of an interface in [`Policy::interfaces`].
pub type IfaceId = u32;
/// Index of a prefix list in [`Policy::prefix_lists`].
pub type PrefixListId = u32;

/// `[settings]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Verdict for a packet whose two ends belong to no interface. Default deny.
    pub unknown_address: Verdict,
    /// ARP frames pass. Default true.
    pub allow_arp: bool,
    /// ICMPv6 types 133-137 pass. Default true.
    pub allow_neighbor_discovery: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            unknown_address: Verdict::Deny,
            allow_arp: true,
            allow_neighbor_discovery: true,
        }
    }
}

/// `[conntrack]`: table size, what a full table does, and inactivity
/// timeouts in seconds (AWS's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConntrackSettings {
    pub max_entries: u32,
    pub when_full: WhenFull,
    pub tcp_established: u32,
    pub tcp_transitory: u32,
    pub udp: u32,
    pub udp_stream: u32,
    pub icmp: u32,
    pub other: u32,
}

impl ConntrackSettings {
    /// The longest timeout a policy may set: ten years, in seconds, the
    /// longest the connection table keeps exactly.
    pub const MAX_TIMEOUT: u32 = conntrack::Timeouts::MAX;

    /// The connection table's configuration these settings give.
    pub fn config(&self) -> conntrack::Config {
        conntrack::Config {
            max_entries: self.max_entries,
            when_full: self.when_full,
            timeouts: conntrack::Timeouts {
                tcp_established: self.tcp_established,
                tcp_transitory: self.tcp_transitory,
                udp: self.udp,
                udp_stream: self.udp_stream,
                icmp: self.icmp,
                other: self.other,
            },
        }
    }
}

impl Default for ConntrackSettings {
    /// The connection table's defaults (AWS's timeouts).
    fn default() -> Self {
        let c = conntrack::Config::default();
        let t = c.timeouts;
        ConntrackSettings {
            max_entries: c.max_entries,
            when_full: c.when_full,
            tcp_established: t.tcp_established,
            tcp_transitory: t.tcp_transitory,
            udp: t.udp,
            udp_stream: t.udp_stream,
            icmp: t.icmp,
            other: t.other,
        }
    }
}

/// GWLB's idle timeout for everything but established TCP, in seconds.
pub const GWLB_IDLE: u32 = 120;
/// GWLB's default TCP idle timeout, in seconds (a listener's
/// `tcp.idle_timeout.seconds` may set 60-6000).
pub const GWLB_TCP_IDLE: u32 = 350;

/// Which `[conntrack]` timeouts a policy file set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeoutsSet {
    pub tcp_established: bool,
    pub tcp_transitory: bool,
    pub udp: bool,
    pub udp_stream: bool,
    pub icmp: bool,
    pub other: bool,
}

/// A named list of CIDRs (`pl-…`).
#[derive(Debug, Clone)]
pub struct PrefixList {
    pub name: String,
    pub entries: Vec<IpNet>,
    /// Its maximum size, when the input says (AWS quotas count it).
    pub max_entries: Option<u32>,
    pub owner: Option<String>,
    /// The input did not give (all) its entries.
    pub incomplete: bool,
}

/// A security group: its rules and the addresses of the interfaces it is attached to.
#[derive(Debug, Clone)]
pub struct SecurityGroup {
    pub name: String,
    pub description: Option<String>,
    /// The cloud's name for it (`GroupName`).
    pub title: Option<String>,
    pub vpc: Option<VpcId>,
    /// A group the input referenced but did not contain: no rules, no
    /// members (SPEC §6), and what the input says about it.
    pub external: Option<model::ExternalGroup>,
    /// Members reach each other on everything, above every rule.
    pub intra_group: bool,
    /// Explicit rules, in file order (their index is the rule name's INDEX).
    pub ingress: Vec<RuleId>,
    pub egress: Vec<RuleId>,
    /// The implicit `intra_group` rules (ingress, egress), when enabled.
    pub intra_rules: Option<(RuleId, RuleId)>,
    /// The interfaces this group is attached to.
    pub interfaces: Vec<IfaceId>,
    /// Every address block of every interface this group is attached to.
    pub members: Vec<Member>,
}

/// One address block of an interface that has a given SG.
#[derive(Debug, Clone, Copy)]
pub struct Member {
    pub net: IpNet,
    pub interface: IfaceId,
    pub zone: Option<ZoneId>,
}

/// What a rule's `from`/`to` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remote {
    Net(IpNet),
    Sg(SgId),
    PrefixList(PrefixListId),
}

/// A compiled rule. Implicit `intra_group` rules have `index == None` and priority 0.
#[derive(Debug, Clone)]
pub struct Rule {
    pub sg: SgId,
    pub direction: Direction,
    pub index: Option<u32>,
    pub proto: ProtoMatch,
    /// Destination ports (all ports for protocols without ports).
    pub ports: PortSet,
    /// Source ports (all by default).
    pub source_ports: PortSet,
    pub icmp_type: Option<u8>,
    pub icmp_code: Option<u8>,
    pub remote: Vec<Remote>,
    /// The local address must be in this block.
    pub local: Option<IpNet>,
    pub action: Action,
    /// 0 for intra-group rules, else 1-65535.
    pub priority: u16,
    pub description: Option<String>,
    /// The cloud's id of the rule (`sgr-…`).
    pub id: Option<String>,
    /// Where the rule was written (none for implicit rules).
    pub origin: Origin,
    /// Written with port 0 alone, which `check` warns about.
    pub ports_zero: bool,
}

/// A network interface (ENI, NIC, node) that SGs attach to.
#[derive(Debug, Clone)]
pub struct Interface {
    pub name: String,
    pub description: Option<String>,
    pub addresses: Vec<IpNet>,
    pub security_groups: Vec<SgId>,
    /// Only behind this GWLB endpoint.
    pub zone: Option<ZoneId>,
    pub vpc: Option<VpcId>,
    /// Its VPC's address space, when VPCs are spaces.
    pub space: Option<ZoneId>,
    /// Subnet, instance, Name tag, kind, tracking, timeouts (SPEC §6).
    pub place: model::InterfacePlace,
    /// Index into [`Policy::policy_sets`].
    pub policy_set: u32,
    /// The policy set of its subnet's groups, where the subnet has any (an
    /// Azure subnet NSG, SPEC §9.2): a layer of its own that must allow too.
    pub subnet_policy_set: Option<u32>,
}

/// Which of an interface's layers (SPEC §9.2) a decision is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    /// The interface's own groups (every interface has this layer).
    Interface,
    /// Its subnet's groups (an Azure subnet NSG).
    Subnet,
}

impl Layer {
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Interface => "interface",
            Layer::Subnet => "subnet",
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The merged rules of one distinct list of SGs, in decision order: priority,
/// then deny before allow, then the order of SGs and rules in the file.
#[derive(Debug, Clone)]
pub struct PolicySet {
    pub security_groups: Vec<SgId>,
    pub ingress: Vec<RuleId>,
    pub egress: Vec<RuleId>,
}

impl PolicySet {
    pub fn rules(&self, direction: Direction) -> &[RuleId] {
        match direction {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        }
    }
}

/// Address → interface, per zone.
#[derive(Debug, Clone, Default)]
struct AddressIndex {
    hosts: HashMap<HostKey, IfaceId, foldhash::fast::FixedState>,
    /// Non-host blocks: (zone, first address) → (last address, interface).
    blocks: BTreeMap<(Option<ZoneId>, AddrKey), (AddrKey, IfaceId)>,
    /// Outside any zone, the same answers as sorted elementary intervals
    /// (start, interface) per family, for one binary search instead of a
    /// hash and a tree lookup (built by [`AddressIndex::seal`]).
    flat4: Flat<u32>,
    flat6: Flat<u128>,
}

/// Sorted interval starts and each interval's interface; the first start
/// is the family's first address.
#[derive(Debug, Clone, Default)]
struct Flat<T> {
    starts: Vec<T>,
    owners: Vec<Option<IfaceId>>,
}

impl<T: Copy + Ord> Flat<T> {
    /// Whether lookups count the starts (up to 64 IPv4 ones, 16 IPv6)
    /// rather than search for the last one at or below an address.
    #[inline]
    fn counted(&self) -> bool {
        self.starts.len() * std::mem::size_of::<T>() <= 256
    }

    #[inline]
    fn find(&self, a: T) -> Option<IfaceId> {
        // A few intervals are counted in one branch-free pass, which the
        // compiler vectorises: a binary search waits on each load in turn.
        let i = if self.counted() {
            self.starts.iter().map(|&s| usize::from(s <= a)).sum()
        } else {
            self.starts.partition_point(|&s| s <= a)
        };
        self.owners.get(i.checked_sub(1)?).copied().flatten()
    }
}

/// An address as an ordered key: IPv4 addresses sort before IPv6 ones, and
/// no IPv6 block (not even `::/0`) contains an IPv4 address.
pub type AddrKey = (bool, u128);

/// The key of an address: (is IPv6, the address as a number).
pub fn addr_key(a: IpAddr) -> AddrKey {
    match a {
        IpAddr::V4(v4) => (false, u128::from(u32::from(v4))),
        IpAddr::V6(v6) => (true, u128::from(v6)),
    }
}

/// The first and last address of a block, as keys.
pub fn net_bounds(n: &IpNet) -> (AddrKey, AddrKey) {
    (addr_key(n.network()), addr_key(n.broadcast()))
}

/// A host address in a zone, hashed as two words: the derived hash of
/// `(Option<ZoneId>, IpAddr)` feeds the hasher five pieces, and this lookup
/// runs twice for every new flow (a port scan is nothing but new flows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HostKey(Option<ZoneId>, IpAddr);

impl std::hash::Hash for HostKey {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        let (v6, a) = addr_key(self.1);
        // Collisions between the families or with a zone are resolved by Eq.
        h.write_u64((a >> 64) as u64 ^ u64::from(v6) ^ self.0.map_or(0, |z| z.rotate_left(17)));
        h.write_u64(a as u64);
    }
}

impl AddressIndex {
    fn insert_host(&mut self, zone: Option<ZoneId>, addr: IpAddr, iface: IfaceId) {
        self.hosts.insert(HostKey(zone, addr), iface);
    }

    /// Builds the flat intervals once every host and block is in.
    fn seal(&mut self) {
        let mut starts4: Vec<u32> = vec![0];
        let mut starts6: Vec<u128> = vec![0];
        let mut bounds = |(v6, lo): AddrKey, (_, hi): AddrKey| {
            if v6 {
                starts6.push(lo);
                starts6.extend(hi.checked_add(1));
            } else {
                // IPv4 keys hold 32-bit values.
                starts4.push(lo as u32);
                starts4.extend((hi as u32).checked_add(1));
            }
        };
        for k in self.hosts.keys().filter(|k| k.0.is_none()) {
            let a = addr_key(k.1);
            bounds(a, a);
        }
        for (&(z, lo), &(hi, _)) in &self.blocks {
            if z.is_none() {
                bounds(lo, hi);
            }
        }
        starts4.sort_unstable();
        starts4.dedup();
        starts6.sort_unstable();
        starts6.dedup();
        let owners4 = starts4
            .iter()
            .map(|&a| self.find_indexed(None, IpAddr::V4(a.into())))
            .collect();
        let owners6 = starts6
            .iter()
            .map(|&a| self.find_indexed(None, IpAddr::V6(a.into())))
            .collect();
        self.flat4 = Flat {
            starts: starts4,
            owners: owners4,
        };
        self.flat6 = Flat {
            starts: starts6,
            owners: owners6,
        };
    }

    #[inline]
    fn find(&self, zone: Option<ZoneId>, addr: IpAddr) -> Option<IfaceId> {
        match (zone, addr) {
            (None, IpAddr::V4(a)) => self.flat4.find(u32::from(a)),
            (None, IpAddr::V6(a)) => self.flat6.find(u128::from(a)),
            _ => self.find_indexed(zone, addr),
        }
    }

    fn find_indexed(&self, zone: Option<ZoneId>, addr: IpAddr) -> Option<IfaceId> {
        if let Some(&i) = self.hosts.get(&HostKey(zone, addr)) {
            return Some(i);
        }
        if self.blocks.is_empty() {
            return None;
        }
        let k = addr_key(addr);
        let (&(z, _), &(last, iface)) = self.blocks.range(..=(zone, k)).next_back()?;
        (z == zone && k <= last).then_some(iface)
    }
}

/// A compiled, immutable policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Where it came from (file name), for messages.
    source: String,
    settings: Settings,
    conntrack: ConntrackSettings,
    /// Which `[conntrack]` timeouts the file set (GWLB mode leaves those).
    timeouts_set: TimeoutsSet,
    /// Judged as a GWLB appliance: every flow tracked (SPEC §9.3).
    gwlb: bool,
    prefix_lists: Vec<PrefixList>,
    security_groups: Vec<SecurityGroup>,
    rules: Vec<Rule>,
    interfaces: Vec<Interface>,
    policy_sets: Vec<PolicySet>,
    /// Some interface has a subnet layer.
    layered: bool,
    index: AddressIndex,
    sg_by_name: HashMap<String, SgId>,
    iface_by_name: HashMap<String, IfaceId>,
    topology: Topology,
}

/// `--vpc` named a VPC the policy does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown VPC `{name}` ({known})")]
pub struct UnknownVpc {
    pub name: String,
    pub known: String,
}

/// `--mirror VNI=ENI` could not be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MirrorError {
    #[error("--mirror {vni}={name}: the policy has no interface `{name}`")]
    UnknownInterface { vni: u32, name: String },
    #[error("--mirror {vni}={name}: VNI {vni} already mirrors `{other}`")]
    Twice {
        vni: u32,
        name: String,
        other: String,
    },
}

/// A Traffic Mirroring session as `--mirror` gives it: `VNI=ENI`, the VNI
/// decimal (or `0x` hex) and at most 24 bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorSession {
    pub vni: u32,
    pub interface: String,
}

impl std::str::FromStr for MirrorSession {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (vni, interface) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}` is not VNI=ENI (e.g. 123=eni-0abc)"))?;
        let parsed = match vni.strip_prefix("0x") {
            Some(hex) => u32::from_str_radix(hex, 16),
            None => vni.parse(),
        };
        let vni = parsed
            .ok()
            .filter(|v| *v <= crate::wire::vxlan::VNI_MAX)
            .ok_or_else(|| format!("VNI `{vni}` is not a number from 0 to 16777215"))?;
        if interface.is_empty() {
            return Err(format!("`{s}` names no interface after `=`"));
        }
        Ok(MirrorSession {
            vni,
            interface: interface.to_string(),
        })
    }
}

impl Policy {
    /// Reads, checks and compiles a policy file's text; `source` names it
    /// in messages.
    pub fn from_toml(text: &str, source: &str) -> Result<Policy, PolicyError> {
        let model = Model::from_toml(text, source)?;
        Self::compile(&model).map_err(|e| e.quoting(text))
    }

    /// Reads, checks and compiles a policy file.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError::Io {
            path: path.display().to_string(),
            source: e,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Checks a policy model and compiles it. Every problem is reported, each
    /// at the origin of what it is about (the model's source when that has none).
    pub fn compile(model: &Model) -> Result<Policy, PolicyError> {
        compile::compile(model)
    }

    /// The policy built into the binary from `config/default.toml`.
    pub fn builtin() -> Policy {
        Self::from_toml(DEFAULT_POLICY_TOML, DEFAULT_POLICY_NAME)
            .expect("config/default.toml is checked by the test suite")
    }

    /// Where the policy came from (a file name), for messages.
    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn conntrack(&self) -> &ConntrackSettings {
        &self.conntrack
    }

    /// The policy as a GWLB appliance judges it (SPEC §9.3): every flow
    /// tracked, and the `[conntrack]` timeouts the file does not set are
    /// GWLB's own: `tcp_idle` seconds for established TCP (350 by default,
    /// the listener's `tcp.idle_timeout.seconds`), 120 s for everything else.
    pub fn for_gwlb(mut self, tcp_idle: u32) -> Policy {
        let set = self.timeouts_set;
        let c = &mut self.conntrack;
        for (was_set, v, default) in [
            (set.tcp_established, &mut c.tcp_established, tcp_idle),
            (set.tcp_transitory, &mut c.tcp_transitory, GWLB_IDLE),
            (set.udp, &mut c.udp, GWLB_IDLE),
            (set.udp_stream, &mut c.udp_stream, GWLB_IDLE),
            (set.icmp, &mut c.icmp, GWLB_IDLE),
            (set.other, &mut c.other, GWLB_IDLE),
        ] {
            if !was_set {
                *v = default;
            }
        }
        self.gwlb = true;
        self
    }

    /// Whether this is the policy as a GWLB appliance judges it ([`Policy::for_gwlb`]).
    pub fn gwlb_mode(&self) -> bool {
        self.gwlb
    }

    /// Each interface's allowance and timeouts, for the connection table.
    pub fn interface_conntrack(&self) -> Vec<conntrack::InterfaceConfig> {
        let t = self.conntrack.config().timeouts;
        self.interfaces
            .iter()
            .map(|i| {
                let p = &i.place;
                let secs = |v: &Option<model::At<i64>>, d: u32| {
                    v.as_ref()
                        .map_or(d, |v| u32::try_from(v.value).unwrap_or(d))
                };
                conntrack::InterfaceConfig {
                    max_entries: p
                        .conntrack_max
                        .as_ref()
                        .and_then(|m| u32::try_from(m.value).ok()),
                    timeouts: (!p.timeouts.is_empty()).then(|| conntrack::Timeouts {
                        tcp_established: secs(&p.timeouts.tcp_established, t.tcp_established),
                        udp: secs(&p.timeouts.udp, t.udp),
                        udp_stream: secs(&p.timeouts.udp_stream, t.udp_stream),
                        ..t
                    }),
                }
            })
            .collect()
    }

    /// Every prefix list, indexed by [`PrefixListId`].
    pub fn prefix_lists(&self) -> &[PrefixList] {
        &self.prefix_lists
    }

    /// Every security group, indexed by [`SgId`], in file order.
    pub fn security_groups(&self) -> &[SecurityGroup] {
        &self.security_groups
    }

    /// Every rule, explicit and implicit, indexed by [`RuleId`].
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Every interface, indexed by [`IfaceId`], in file order.
    pub fn interfaces(&self) -> &[Interface] {
        &self.interfaces
    }

    /// The distinct SG lists of the interfaces and of their subnets, each
    /// with its merged rules.
    pub fn policy_sets(&self) -> &[PolicySet] {
        &self.policy_sets
    }

    pub fn security_group(&self, id: SgId) -> &SecurityGroup {
        &self.security_groups[id as usize]
    }

    pub fn prefix_list(&self, id: PrefixListId) -> &PrefixList {
        &self.prefix_lists[id as usize]
    }

    /// The interface that owns `addr` as seen from `zone`: a GWLB zone's
    /// or a VPC space's own interfaces first (then, for a VPC, its peers'
    /// and PrivateLink neighbours'), then the zoneless ones.
    #[inline]
    pub fn interface_of(&self, addr: IpAddr, zone: Option<ZoneId>) -> Option<IfaceId> {
        if let Some(z) = zone {
            if let Some(i) = self.index.find(Some(z), addr) {
                return Some(i);
            }
            if let Some(v) = self.topology.vpc_of_space(z) {
                for p in self.topology.neighbours(v) {
                    let found = self
                        .topology
                        .space(p)
                        .and_then(|s| self.index.find(Some(s), addr));
                    if found.is_some() {
                        return found;
                    }
                }
            }
        }
        self.index.find(None, addr)
    }

    /// The zone a packet is judged in: its GWLB zone, else (with two or
    /// more VPCs) the VPC space its addresses give (see [`topology`]).
    #[inline]
    pub fn zone_of(&self, tunnel: Option<ZoneId>, src: IpAddr, dst: IpAddr) -> Option<ZoneId> {
        if tunnel.is_some() || !self.topology.spaced() {
            return tunnel;
        }
        self.topology.space_of(src, dst)
    }

    /// Judges the packets of Traffic Mirroring session `vni` (VXLAN) as
    /// seen at interface `name` (`replay --mirror`): in its VPC space, or
    /// its GWLB zone. That interface is usually one end of each packet; where
    /// it is neither (addresses the policy does not list for it), nothing is
    /// guessed: the packet is judged in that space by its addresses alone.
    pub fn mirror(&mut self, vni: u32, name: &str) -> Result<(), MirrorError> {
        let Some(id) = self.interface_id(name) else {
            return Err(MirrorError::UnknownInterface {
                vni,
                name: name.to_string(),
            });
        };
        if let Some(&(other, _)) = self.topology.mirrors.get(&vni) {
            if other != id {
                return Err(MirrorError::Twice {
                    vni,
                    name: name.to_string(),
                    other: self.interfaces[other as usize].name.clone(),
                });
            }
        }
        let i = &self.interfaces[id as usize];
        self.topology.mirrors.insert(vni, (id, i.space.or(i.zone)));
        Ok(())
    }

    /// The interface a VXLAN session mirrors, when `--mirror` named one.
    pub fn mirrored(&self, vni: u32) -> Option<IfaceId> {
        self.topology.mirrors.get(&vni).map(|&(i, _)| i)
    }

    /// The zone a tunnel puts its packet in: GENEVE's GWLB endpoint, or
    /// for a mirrored VXLAN session, its interface's ([`Policy::mirror`]).
    #[inline]
    pub fn tunnel_zone(&self, t: &Tunnel) -> Option<ZoneId> {
        match t.encap {
            Encap::Geneve => t.zone,
            Encap::Vxlan { vni } => self.topology.mirrors.get(&vni).and_then(|&(_, z)| z),
        }
    }

    /// The zone a parsed packet is judged in: its tunnel's, else what its
    /// addresses give ([`Policy::zone_of`]).
    #[inline]
    pub fn packet_zone(&self, p: &IpPacket) -> Option<ZoneId> {
        let tunnel = p.tunnel.as_ref().and_then(|t| self.tunnel_zone(t));
        if tunnel.is_some() || !self.topology.spaced() {
            return tunnel;
        }
        // As `zone_of`, the addresses copied only here: a packet just
        // parsed has them written field by field, and a wider copy of them
        // waits for those stores (`zone_of`'s arguments were copied first).
        self.topology.space_of(p.src, p.dst)
    }

    /// Judges every packet without a GWLB zone in this VPC (`--vpc`).
    pub fn judge_in_vpc(&mut self, name: &str) -> Result<(), UnknownVpc> {
        let Some(v) = self.topology.vpc_id(name) else {
            let mut known: Vec<&str> = self.topology.vpcs.iter().map(|v| v.name.as_str()).collect();
            known.sort_unstable();
            return Err(UnknownVpc {
                name: name.to_string(),
                known: if known.is_empty() {
                    "the policy has no VPCs".into()
                } else {
                    format!("known: {}", known.join(", "))
                },
            });
        };
        self.topology.forced = self.topology.space(v);
        Ok(())
    }

    /// How a zone is named in output: a VPC space by its VPC's name, a GWLB
    /// zone `vpce-…`.
    pub fn zone_label(&self, zone: ZoneId) -> String {
        match self.topology.vpc_of_space(zone) {
            Some(v) => self.topology.vpcs[v as usize].name.clone(),
            None => zone_name(zone),
        }
    }

    /// VPCs, subnets, NACLs, routes, load balancers, endpoints (SPEC §6).
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Whether `addr` belongs to a member of `sg` visible from `zone`.
    pub fn sg_contains(&self, sg: SgId, addr: IpAddr, zone: Option<ZoneId>) -> bool {
        self.security_groups[sg as usize]
            .members
            .iter()
            .any(|m| (m.zone.is_none() || m.zone == zone) && m.net.contains(&addr))
    }

    /// Whether a rule's `from`/`to` admits the remote address.
    pub fn remote_matches(&self, rule: &Rule, addr: IpAddr, zone: Option<ZoneId>) -> bool {
        rule.remote.iter().any(|r| match *r {
            Remote::Net(n) => n.contains(&addr),
            Remote::Sg(sg) => self.sg_contains(sg, addr, zone),
            Remote::PrefixList(pl) => self.prefix_lists[pl as usize]
                .entries
                .iter()
                .any(|n| n.contains(&addr)),
        })
    }

    pub fn sg_id(&self, name: &str) -> Option<SgId> {
        self.sg_by_name.get(name).copied()
    }

    pub fn interface_id(&self, name: &str) -> Option<IfaceId> {
        self.iface_by_name.get(name).copied()
    }

    /// [`Policy::interface_id`] of a name as bytes (a flow log's
    /// `interface-id`): bytes that are not UTF-8 name no interface.
    pub fn interface_named(&self, name: &[u8]) -> Option<IfaceId> {
        std::str::from_utf8(name)
            .ok()
            .and_then(|n| self.interface_id(n))
    }

    pub fn interface(&self, id: IfaceId) -> &Interface {
        &self.interfaces[id as usize]
    }

    pub fn rule(&self, id: RuleId) -> &Rule {
        &self.rules[id as usize]
    }

    /// The rules an interface applies in one direction, in decision order.
    pub fn interface_rules(&self, iface: IfaceId, direction: Direction) -> &[RuleId] {
        self.policy_sets[self.interface(iface).policy_set as usize].rules(direction)
    }

    /// The policy set of one of an interface's layers; `None` for the
    /// subnet layer of an interface whose subnet has no groups.
    #[inline]
    pub fn layer_set(&self, iface: IfaceId, layer: Layer) -> Option<u32> {
        let i = self.interface(iface);
        match layer {
            Layer::Interface => Some(i.policy_set),
            Layer::Subnet => i.subnet_policy_set,
        }
    }

    /// The rules of one of an interface's layers in one direction, in
    /// decision order (none for a layer it does not have).
    pub fn layer_rules(&self, iface: IfaceId, layer: Layer, direction: Direction) -> &[RuleId] {
        match self.layer_set(iface, layer) {
            Some(set) => self.policy_sets[set as usize].rules(direction),
            None => &[],
        }
    }

    /// Whether any interface has a subnet layer (SPEC §9.2).
    pub fn layered(&self) -> bool {
        self.layered
    }

    /// The rule's name, `SG/DIRECTION/INDEX` or `SG/intra_group`.
    pub fn rule_name(&self, id: RuleId) -> RuleName<'_> {
        RuleName {
            policy: self,
            rule: id,
        }
    }

    /// Number of explicit rules.
    pub fn explicit_rule_count(&self) -> usize {
        self.rules.iter().filter(|r| r.index.is_some()).count()
    }

    /// Every distinct zone named by an interface.
    pub fn zones(&self) -> Vec<ZoneId> {
        let mut z: Vec<ZoneId> = self.interfaces.iter().filter_map(|i| i.zone).collect();
        z.sort_unstable();
        z.dedup();
        z
    }
}

/// Displays a rule's name.
#[derive(Clone, Copy)]
pub struct RuleName<'a> {
    policy: &'a Policy,
    rule: RuleId,
}

impl fmt::Display for RuleName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.policy.rule(self.rule);
        let sg = &self.policy.security_groups[r.sg as usize].name;
        match r.index {
            Some(i) => write!(f, "{sg}/{}/{i}", r.direction),
            None => write!(f, "{sg}/intra_group"),
        }
    }
}

impl Rule {
    /// The rule's line in a TOML policy file; 0 when it has none.
    pub fn line(&self) -> u32 {
        self.origin.line()
    }
}

impl fmt::Display for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Remote::Net(n) => write!(f, "{n}"),
            Remote::Sg(i) => write!(f, "sg#{i}"),
            Remote::PrefixList(i) => write!(f, "pl#{i}"),
        }
    }
}

impl Policy {
    /// A remote spec as written in the file (`10.0.0.0/8`, `sg-web`, `pl-office`).
    pub fn remote_name(&self, r: &Remote) -> String {
        match *r {
            Remote::Net(n) => n.to_string(),
            Remote::Sg(i) => self.security_groups[i as usize].name.clone(),
            Remote::PrefixList(i) => self.prefix_lists[i as usize].name.clone(),
        }
    }

    /// A one-line summary of what a rule matches: `allow tcp/443 from 0.0.0.0/0`.
    pub fn describe_rule(&self, id: RuleId) -> String {
        let r = self.rule(id);
        let mut s = format!("{} {}", r.action, r.proto);
        if r.proto.has_ports() {
            s.push('/');
            if r.ports.is_all() {
                s.push_str("all-ports");
            } else {
                s.push_str(&r.ports.to_string());
            }
        }
        if r.proto.is_icmp() {
            match (r.icmp_type, r.icmp_code) {
                (None, None) => {}
                (Some(t), None) => s.push_str(&format!(" type {t}")),
                (t, Some(c)) => s.push_str(&format!(
                    " type {} code {c}",
                    t.map_or("any".to_string(), |t| t.to_string())
                )),
            }
        }
        if !r.source_ports.is_all() {
            s.push_str(&format!(" source-ports {}", r.source_ports));
        }
        let word = match r.direction {
            Direction::Ingress => "from",
            Direction::Egress => "to",
        };
        let remotes: Vec<String> = r.remote.iter().map(|x| self.remote_name(x)).collect();
        s.push_str(&format!(" {word} {}", remotes.join(",")));
        if let Some(l) = r.local {
            s.push_str(&format!(" local {l}"));
        }
        if r.index.is_some() && r.priority != 1 {
            s.push_str(&format!(" priority {}", r.priority));
        }
        s
    }
}
