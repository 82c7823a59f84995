//! `sgplane path` (SPEC §8): can a new flow from X reach Y, hop by hop,
//! through security groups, network ACLs (both ways), routes, load
//! balancers and PrivateLink — answered as data ([`Trace`]), with
//! Reachability Analyzer's explanation codes and the changes that would fix
//! it ([`fix`], each checked by running the analysis again). Renderers
//! (text, JSON, SVG) are in [`render`] and print nothing themselves.
//!
//! The walk judges each hop with the policy's reference evaluators
//! ([`Policy::decide`] for groups, the compiled ACLs' first match for
//! NACLs) and takes the nearest misses from `explain`, so every verdict is
//! the one `explain` and the engine give for the same packet.

pub mod all;
pub mod fix;
pub mod render;
mod walk;

use std::net::IpAddr;

use serde::Serialize;

use crate::policy::explain::NearMiss;
use crate::policy::topology::VpcId;
use crate::policy::{Direction, IfaceId, IpProto, Policy, PortRange};

pub use walk::analyse;

/// What to ask: `--from`, `--to` and the flow's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub from: String,
    pub to: String,
    pub proto: IpProto,
    pub dport: Option<u16>,
    /// The client's port: judged by the reply's NACLs; `None` is every
    /// port of the ephemeral range 1024-65535.
    pub sport: Option<u16>,
    pub icmp: Option<(u8, u8)>,
}

/// The verdict of one hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HopVerdict {
    Allow,
    Deny,
    /// A component sgplane does not model: never a wrong "reachable".
    Unsupported,
}

impl HopVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            HopVerdict::Allow => "allow",
            HopVerdict::Deny => "deny",
            HopVerdict::Unsupported => "unsupported",
        }
    }
}

/// One hop of the path.
#[derive(Debug, Clone, Serialize)]
pub struct Hop {
    /// What judges it: an interface, a subnet's ACL, a route table, a load
    /// balancer, an endpoint.
    pub component: String,
    /// `security-group`, `network-acl`, `route`, `internet-gateway`,
    /// `load-balancer-security-group`, `listener`, `load-balancer-targets`,
    /// `vpc-endpoint-service`.
    pub kind: &'static str,
    /// `egress`, `ingress`, `reply-egress`, `reply-ingress` or `forward`.
    pub direction: &'static str,
    pub verdict: HopVerdict,
    /// The deciding rule (`sg-web/ingress/0`, `acl-1/egress/*`, a route).
    pub rule: Option<String>,
    /// One sentence on what happened here.
    pub explanation: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nearest_misses: Vec<NearMiss>,
    /// Reachability Analyzer's codes when this hop blocks.
    #[serde(skip)]
    pub codes: Vec<&'static str>,
    /// The changes that might clear this hop, best first (checked in [`fix`]).
    #[serde(skip)]
    pub candidates: Vec<Change>,
}

/// An explanation of why the path is blocked.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub code: &'static str,
    pub component: String,
    pub message: String,
}

/// A change to the model that may clear a blocking hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A security group rule; `remote` is `sg-…` or a CIDR.
    AddSgRule {
        sg: String,
        direction: Direction,
        proto: IpProto,
        ports: Option<PortRange>,
        icmp: Option<(u8, u8)>,
        remote: String,
    },
    /// An allow entry of a network ACL.
    AddAclEntry {
        acl: String,
        direction: Direction,
        number: u16,
        proto: IpProto,
        ports: Option<PortRange>,
        icmp: Option<(u8, u8)>,
        remote: ipnet::IpNet,
    },
    /// Turn cross-zone load balancing on.
    CrossZone { lb: String },
    /// Stop evaluating the load balancer's inbound rules on PrivateLink traffic.
    PrivateLinkEnforcementOff { lb: String },
}

/// A fix: a change, checked by running the analysis with it applied.
#[derive(Debug, Clone, Serialize)]
pub struct Fix {
    /// One sentence.
    pub change: String,
    pub component: String,
    /// The policy lines to add.
    pub toml: String,
    /// The AWS CLI command, for imported AWS policies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws: Option<String>,
    /// What running the analysis again with this fix (and those before
    /// it) applied gave.
    pub verified: String,
    #[serde(skip)]
    pub raw: Change,
}

/// The whole answer.
#[derive(Debug, Clone, Serialize)]
pub struct Trace {
    pub reachable: bool,
    pub from: String,
    pub to: String,
    pub flow: String,
    pub hops: Vec<Hop>,
    /// Index of the blocking hop in `hops`.
    pub blocked_at: Option<usize>,
    pub explanations: Vec<Explanation>,
    pub fixes: Vec<Fix>,
    /// What the analysis assumed (a NAT gateway's own route, appliances
    /// behind a GWLB endpoint forwarding, …).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Trace {
    /// The blocking hop.
    pub fn blocking(&self) -> Option<&Hop> {
        self.blocked_at.map(|i| &self.hops[i])
    }
}

/// Why a query cannot be answered (exit 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("--{flag} {name}: no instance id, ENI id, Name tag{also} or IP address of this policy is called that")]
    Unknown {
        flag: &'static str,
        name: String,
        also: &'static str,
    },
    #[error("--{flag} {name} is ambiguous: {candidates}; name one of them")]
    Ambiguous {
        flag: &'static str,
        name: String,
        candidates: String,
    },
    #[error("--from {0}: a VPC endpoint is a destination, not a source")]
    EndpointSource(String),
    #[error("--from {0} and --to {1} are of different IP versions")]
    Versions(IpAddr, IpAddr),
    #[error("--to {0}: the load balancer has no node interface in the policy")]
    NoNodes(String),
    #[error("{0}")]
    Other(String),
}

/// An end of the path, as the user named it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    Iface(IfaceId),
    /// An interface's public address (reached through the IGW).
    Public(IfaceId, IpAddr),
    /// An address no interface owns, in a VPC or (`None`) the internet.
    Addr(IpAddr, Option<VpcId>),
    Lb(usize),
    Endpoint(usize),
}

/// The flow's protocol and ports as `tcp/80`.
pub fn describe_flow(q: &Query) -> String {
    match (q.dport, q.icmp) {
        (Some(d), _) => format!("{}/{d}", q.proto),
        (None, Some((t, c))) => format!("{} type {t} code {c}", q.proto),
        (None, None) if q.proto.has_ports() => format!("{}/all-ports", q.proto),
        _ => q.proto.to_string(),
    }
}

/// The name of a policy's interface with its instance and Name tag.
pub(crate) fn iface_label(p: &Policy, i: IfaceId) -> String {
    let f = p.interface(i);
    let mut extra: Vec<&str> = Vec::new();
    if let Some(t) = &f.place.title {
        extra.push(t);
    }
    if let Some(inst) = &f.place.instance {
        extra.push(inst);
    }
    if extra.is_empty() {
        f.name.clone()
    } else {
        format!("{} ({})", f.name, extra.join(", "))
    }
}
