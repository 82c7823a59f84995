//! The compiled topology of SPEC §6: VPCs as address spaces, and the
//! subnets, network ACLs, route tables, load balancers and endpoints around
//! the security groups, each checked for what it names.
//!
//! A policy with two or more VPCs gives each one an address space: its
//! interfaces' addresses are looked up in it (and in its peers'), so two
//! VPCs may use the same CIDR. Spaces are zone ids of their own
//! ([`VPC_SPACE`] and up), so the connection table and the address index key
//! them as they key GWLB zones. A packet is judged in one space: the VPC the
//! user names (`--vpc`), else the only VPC whose blocks hold its source
//! address (or else its destination's), a flow between peered VPCs (or
//! VPCs joined by PrivateLink: an interface endpoint's VPC and its
//! service's load balancer's) in the lower of the two so that both
//! directions share one entry.
//!
//! Network ACLs are compiled for the engine ([`super::nacl`]). Items the
//! rest of sgplane does not judge yet (routes, load balancers, endpoints)
//! are kept as the model has them, their references checked: the path
//! analysis builds on them.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;

use super::model;
use super::ZoneId;

/// Index of a VPC in [`Topology::vpcs`].
pub type VpcId = u32;

/// The first zone id of VPC address spaces: VPC `i` is `VPC_SPACE + i`.
/// GWLB endpoint ids are random 64-bit numbers; this range is reserved.
pub const VPC_SPACE: ZoneId = 0xffff_fffe_0000_0000;

/// A VPC.
#[derive(Debug, Clone, Default)]
pub struct Vpc {
    pub name: String,
    pub cidrs: Vec<IpNet>,
    /// Peered VPCs (active peerings), both ways.
    pub peers: Vec<VpcId>,
    /// VPCs joined to this one by PrivateLink (an interface endpoint here
    /// and its service's load balancer there, or the other way): their
    /// interfaces are reachable, their groups are not referenceable.
    pub linked: Vec<VpcId>,
    pub account: Option<String>,
    pub region: Option<String>,
    pub title: Option<String>,
    pub internet_gateways: Vec<String>,
    /// Not written in the policy: named by something else in it.
    pub implicit: bool,
}

/// Everything around the security groups, checked.
#[derive(Debug, Clone, Default)]
pub struct Topology {
    pub imported: Option<model::Imported>,
    pub vpcs: Vec<Vpc>,
    pub peerings: Vec<model::Peering>,
    pub subnets: Vec<model::Subnet>,
    pub network_acls: Vec<model::NetworkAcl>,
    pub route_tables: Vec<model::RouteTable>,
    pub load_balancers: Vec<model::LoadBalancer>,
    pub target_groups: Vec<model::TargetGroup>,
    pub endpoint_services: Vec<model::EndpointService>,
    pub endpoints: Vec<model::Endpoint>,
    pub external_groups: Vec<model::ExternalGroup>,
    /// References an imported policy makes to things its input did not
    /// contain (a hand-written policy has them as errors): `check` lists
    /// them.
    pub dangling: Vec<String>,
    pub(super) vpc_by_name: HashMap<String, VpcId>,
    pub(super) subnet_by_name: HashMap<String, u32>,
    /// Whether VPCs are address spaces (two or more VPCs).
    pub(super) spaced: bool,
    /// Blocks that say which VPC owns an address (their CIDRs; for a VPC
    /// without any, its subnets' and interfaces' blocks).
    pub(super) owners: Vec<(IpNet, VpcId)>,
    /// The space every packet is judged in, when the user names one.
    pub(super) forced: Option<ZoneId>,
    /// Traffic Mirroring sessions (`replay --mirror`): a VXLAN VNI and the
    /// interface it mirrors, with the zone that interface is judged in.
    pub(super) mirrors: HashMap<u32, (super::IfaceId, Option<ZoneId>)>,
    /// The network ACLs compiled, when a subnet has one (SPEC §9.1).
    pub(super) nacls: Option<Box<super::nacl::Nacls>>,
}

impl Topology {
    pub fn vpc_id(&self, name: &str) -> Option<VpcId> {
        self.vpc_by_name.get(name).copied()
    }

    pub fn subnet(&self, name: &str) -> Option<&model::Subnet> {
        self.subnet_by_name
            .get(name)
            .map(|&i| &self.subnets[i as usize])
    }

    /// Whether VPCs are separate address spaces (the policy has two or more).
    pub fn spaced(&self) -> bool {
        self.spaced
    }

    /// The address space of a VPC: `None` when the policy has one VPC or
    /// none (everything is one space).
    pub fn space(&self, vpc: VpcId) -> Option<ZoneId> {
        self.spaced.then_some(VPC_SPACE + ZoneId::from(vpc))
    }

    /// The VPCs whose interfaces a packet in `vpc` may reach besides its
    /// own: peered ones, then those joined by PrivateLink.
    pub fn neighbours(&self, vpc: VpcId) -> impl Iterator<Item = VpcId> + '_ {
        let v = &self.vpcs[vpc as usize];
        v.peers.iter().chain(&v.linked).copied()
    }

    /// The VPC a space is, when it is one.
    pub fn vpc_of_space(&self, zone: ZoneId) -> Option<VpcId> {
        let i = zone.checked_sub(VPC_SPACE)?;
        (i < self.vpcs.len() as u64 && self.spaced).then_some(i as VpcId)
    }

    /// The only VPC whose blocks hold `addr`.
    pub fn vpc_owning(&self, addr: IpAddr) -> Option<VpcId> {
        let mut found = None;
        for &(net, vpc) in &self.owners {
            if net.contains(&addr) {
                match found {
                    None => found = Some(vpc),
                    Some(v) if v == vpc => {}
                    Some(_) => return None,
                }
            }
        }
        found
    }

    /// The space a packet from `src` to `dst` is judged in (see the module
    /// doc); `None` when VPCs are not spaces or neither end says.
    pub fn space_of(&self, src: IpAddr, dst: IpAddr) -> Option<ZoneId> {
        if !self.spaced {
            return None;
        }
        if self.forced.is_some() {
            return self.forced;
        }
        let vpc = match (self.vpc_owning(src), self.vpc_owning(dst)) {
            (Some(a), Some(b)) if a != b && self.neighbours(a).any(|n| n == b) => a.min(b),
            (Some(a), _) => a,
            (None, b) => b?,
        };
        self.space(vpc)
    }
}
