//! The cloud around the security groups (SPEC §6): VPCs, subnets, network
//! ACLs, route tables, peerings, load balancers, target groups, endpoints
//! and endpoint services, and what an import says about where the policy
//! came from. Plain data like the rest of the model: names are the cloud's
//! ids, and every value a check may complain about keeps its [`Origin`].
//!
//! Everything here is optional: a policy without any of it is a Part I
//! policy and means what it meant before.

use ipnet::IpNet;

use super::{At, Origin, Remote};
use crate::policy::types::{Action, PortRange, ProtoMatch};

/// `[imported]`: the provider and inputs an imported policy was made from.
/// Its presence is what lets rules name groups the input did not contain
/// (see [`ExternalGroup`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Imported {
    /// `aws`, `alibaba`, `azure`.
    pub provider: String,
    /// The files read, as given on the command line (directories expanded).
    pub inputs: Vec<String>,
}

/// `[external_groups.sg-…]`: a group that rules reference but the input did
/// not contain: another account's, a peered VPC's, or a stale reference. It
/// has no members here, so a reference to it matches nothing; `check` names
/// every one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExternalGroup {
    pub name: String,
    pub origin: Origin,
    /// The owning account (`UserId`), when the input says.
    pub account: Option<String>,
    /// The group's VPC, when the input says.
    pub vpc: Option<String>,
    /// The peering connection the reference crosses (`pcx-…`).
    pub peering: Option<String>,
    /// What the input says about it: `stale`, `active`, `deleted`, … (the
    /// reference's `PeeringStatus`), or `missing` when the input only
    /// references it.
    pub status: Option<String>,
}

/// `[vpcs.vpc-…]`: an address space.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Vpc {
    pub name: String,
    pub origin: Origin,
    /// IPv4 and IPv6 blocks, primary first.
    pub cidrs: Vec<At<IpNet>>,
    /// Peered VPCs (active peerings): SG references and routes may cross.
    pub peers: Vec<At<String>>,
    pub account: Option<String>,
    pub region: Option<String>,
    /// The Name tag.
    pub title: Option<String>,
    /// Attached internet gateways (`igw-…`).
    pub internet_gateways: Vec<String>,
}

/// `[peerings.pcx-…]`: a VPC peering connection, which route tables name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Peering {
    pub name: String,
    pub origin: Origin,
    pub requester_vpc: At<String>,
    pub accepter_vpc: At<String>,
    /// `active`, `pending-acceptance`, `deleted`, …; only an active one
    /// makes the VPCs peers.
    pub status: Option<String>,
}

/// `[subnets.subnet-…]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subnet {
    pub name: String,
    pub origin: Origin,
    pub vpc: At<String>,
    /// The IPv4 block and any IPv6 blocks (TOML `cidr`, a string or a list).
    pub cidrs: Vec<At<IpNet>>,
    /// The availability zone (`ap-northeast-1a`).
    pub az: Option<String>,
    /// Stateless (SPEC §9.1); `None` allows everything.
    pub network_acl: Option<At<String>>,
    /// Azure subnet NSGs (SPEC §9.2).
    pub security_groups: Vec<At<String>>,
    /// `None`: only the local route.
    pub route_table: Option<At<String>>,
    pub title: Option<String>,
}

/// `[network_acls.acl-…]`: stateless rules (SPEC §9.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetworkAcl {
    pub name: String,
    pub origin: Origin,
    pub vpc: Option<At<String>>,
    /// The VPC's default NACL.
    pub default: bool,
    pub ingress: Vec<AclRule>,
    pub egress: Vec<AclRule>,
}

/// One network ACL entry; its direction is the list it is in. The implicit
/// final deny (AWS's `*`, rule 32767) is never written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclRule {
    pub origin: Origin,
    /// 1-32766, evaluated in ascending order; unique per direction.
    pub rule: At<i64>,
    pub proto: ProtoMatch,
    /// The packet's destination port (both directions); `None` is all.
    pub ports: Option<At<Vec<PortRange>>>,
    pub icmp_type: Option<At<i64>>,
    pub icmp_code: Option<At<i64>>,
    /// The remote block (`from` on ingress, `to` on egress).
    pub remote: At<IpNet>,
    pub action: Action,
}

/// `[route_tables.rtb-…]`. The local route of the VPC's blocks is implicit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RouteTable {
    pub name: String,
    pub origin: Origin,
    pub vpc: Option<At<String>>,
    /// The VPC's main route table: subnets with no association use it.
    pub main: bool,
    pub routes: Vec<Route>,
}

/// One route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub origin: Origin,
    /// A block, or a prefix list (`pl-…`).
    pub destination: At<Remote>,
    /// `igw-…`, `nat-…`, `pcx-…`, `vpce-…`, `tgw-…`, `eni-…`, `local`, …
    pub target: At<String>,
    /// `blackhole` routes drop; `None` is active.
    pub state: Option<String>,
}

/// `[load_balancers.NAME]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoadBalancer {
    pub name: String,
    pub origin: Origin,
    /// `network`, `application`, `gateway`, `classic`.
    pub kind: At<String>,
    /// `internal`, `internet-facing`.
    pub scheme: Option<At<String>>,
    pub vpc: Option<At<String>>,
    /// Its nodes' interfaces, one or more per AZ.
    pub interfaces: Vec<At<String>>,
    /// `None` in the TOML: none (an NLB without SGs admits every client).
    pub security_groups: Vec<At<String>>,
    /// `None`: the type's default (NLB/GWLB off, ALB always on).
    pub cross_zone: Option<bool>,
    /// `None`: on (AWS's default for an NLB with SGs).
    pub enforce_inbound_rules_on_privatelink: Option<bool>,
    pub listeners: Vec<Listener>,
    pub dns_name: Option<String>,
    pub arn: Option<String>,
    /// The AZs it has nodes in.
    pub zones: Vec<String>,
}

/// A load balancer listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub origin: Origin,
    /// `tcp`, `udp`, `tls`, `tcp_udp`, `http`, `https`, `geneve`.
    pub proto: At<String>,
    /// `None` for a GWLB (every port).
    pub port: Option<At<i64>>,
    /// The default action's target group (forward).
    pub target_group: Option<At<String>>,
}

/// `[target_groups.NAME]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TargetGroup {
    pub name: String,
    pub origin: Origin,
    pub proto: Option<At<String>>,
    pub port: Option<At<i64>>,
    pub vpc: Option<At<String>>,
    /// `instance`, `ip`, `lambda`, `alb`.
    pub target_type: Option<String>,
    pub preserve_client_ip: Option<bool>,
    /// A port number or `traffic-port`.
    pub health_check_port: Option<String>,
    pub targets: Vec<Target>,
    pub arn: Option<String>,
}

/// A registered target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub origin: Origin,
    /// An instance id, an ENI id or an IP address.
    pub id: At<String>,
    pub port: Option<At<i64>>,
    pub az: Option<String>,
    /// `healthy`, `unhealthy`, `unused`, `draining`, `initial`, …
    pub health: Option<String>,
}

/// `[endpoint_services.vpce-svc-…]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EndpointService {
    pub name: String,
    pub origin: Origin,
    /// Its NLBs or GWLBs, by name.
    pub load_balancers: Vec<At<String>>,
    /// `com.amazonaws.vpce.REGION.vpce-svc-…`
    pub service_name: Option<String>,
    pub acceptance_required: Option<bool>,
}

/// `[endpoints.vpce-…]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Endpoint {
    pub name: String,
    pub origin: Origin,
    /// `interface`, `gateway_load_balancer`, `gateway`.
    pub kind: At<String>,
    /// The endpoint service (`vpce-svc-…`) or the AWS service name.
    pub service: Option<At<String>>,
    pub vpc: Option<At<String>>,
    pub subnets: Vec<At<String>>,
    pub interfaces: Vec<At<String>>,
    pub security_groups: Vec<At<String>>,
    pub route_tables: Vec<At<String>>,
    pub dns_names: Vec<String>,
    /// `available`, `pending`, …
    pub state: Option<String>,
}

/// An interface's `timeouts` (AWS `ConnectionTrackingSpecification`), in
/// seconds; SPEC §9.3 gives their ranges.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InterfaceTimeouts {
    pub tcp_established: Option<At<i64>>,
    pub udp: Option<At<i64>>,
    pub udp_stream: Option<At<i64>>,
}

impl InterfaceTimeouts {
    pub fn is_empty(&self) -> bool {
        self.tcp_established.is_none() && self.udp.is_none() && self.udp_stream.is_none()
    }
}

/// What an interface is (SPEC §6 `kind`).
pub const INTERFACE_KINDS: &[&str] = &[
    "interface",
    "load_balancer",
    "network_load_balancer",
    "gateway_load_balancer",
    "vpc_endpoint",
    "gateway_load_balancer_endpoint",
    "nat_gateway",
    "lambda",
    "transit_gateway",
    "efa",
    "trunk",
    "branch",
    "api_gateway_managed",
    "aws_codestar_connections_managed",
    "global_accelerator_managed",
    "quicksight",
    "other",
];

/// The topology fields of an interface, beside its Part I ones.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InterfacePlace {
    /// Gives the VPC, the NACL, the route table and the AZ.
    pub subnet: Option<At<String>>,
    /// Only where there is no subnet.
    pub vpc: Option<At<String>>,
    /// The instance it is attached to (`i-…`).
    pub instance: Option<String>,
    /// The instance's (or the interface's) Name tag.
    pub title: Option<String>,
    /// One of [`INTERFACE_KINDS`]; `None` is `interface`.
    pub kind: Option<At<String>>,
    /// Public addresses, translated 1:1 to the private one at the IGW.
    pub public_addresses: Vec<At<IpNet>>,
    /// `always` (default) or `aws` (SPEC §9.3).
    pub tracking: Option<At<String>>,
    pub timeouts: InterfaceTimeouts,
    /// The most connection-table entries this interface holds (its own
    /// allowance, SPEC §9.3); `None`: only `[conntrack] max_entries` bounds it.
    pub conntrack_max: Option<At<i64>>,
    /// The availability zone, where there is no subnet to give it.
    pub az: Option<String>,
}
