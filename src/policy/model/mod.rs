//! The policy as plain data: everything a policy says, before it is checked
//! and compiled. The TOML reader ([`Model::from_toml`]) and the cloud
//! importers each build one; [`super::Policy::compile`] checks it and
//! compiles it, so every check and its message is written once.
//!
//! Values are canonical and typed: each dialect's spellings (`accept`, `-1`
//! for all protocols, `80/90`, …) are turned into these by the reader of that
//! dialect. Each item, and each value a check may complain about, carries its
//! [`Origin`]: where it was written, which every message names.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use ipnet::IpNet;

pub mod topology;

pub use topology::*;

use super::types::{parse_net, Action, NotAnAddress, PortRange, ProtoMatch, ZoneId};
use super::{PolicyError, Settings, WhenFull};

/// Where an item or value of a policy was written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum Origin {
    /// Built in code: messages name the policy's source.
    #[default]
    None,
    /// A whole file, with no finer position.
    File { file: Arc<str> },
    /// A value in a TOML file: 1-based line and column (in characters), and
    /// how many characters of that line the value covers.
    Toml {
        file: Arc<str>,
        line: u32,
        column: u32,
        width: u32,
    },
    /// A value in a JSON file, as a path from its root:
    /// `$.SecurityGroups[3].IpPermissions[0]`.
    Json { file: Arc<str>, path: String },
}

impl Origin {
    /// A position in a JSON file.
    pub fn json(file: impl Into<Arc<str>>, path: impl Into<String>) -> Origin {
        Origin::Json {
            file: file.into(),
            path: path.into(),
        }
    }

    /// The file, when there is one.
    pub fn file(&self) -> Option<&str> {
        match self {
            Origin::None => None,
            Origin::File { file } | Origin::Toml { file, .. } | Origin::Json { file, .. } => {
                Some(file)
            }
        }
    }

    /// The 1-based line in a TOML file; 0 for every other origin.
    pub fn line(&self) -> u32 {
        match self {
            Origin::Toml { line, .. } => *line,
            _ => 0,
        }
    }

    /// The 1-based column in a TOML file; 0 for every other origin.
    pub fn column(&self) -> u32 {
        match self {
            Origin::Toml { column, .. } => *column,
            _ => 0,
        }
    }
}

impl fmt::Display for Origin {
    /// `file:line:column` (TOML), `file:$.json.path` (JSON), `file`, or
    /// nothing.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::None => Ok(()),
            Origin::File { file } => f.write_str(file),
            Origin::Toml {
                file, line, column, ..
            } => write!(f, "{file}:{line}:{column}"),
            Origin::Json { file, path } => write!(f, "{file}:{path}"),
        }
    }
}

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct At<T> {
    pub value: T,
    pub origin: Origin,
}

impl<T> At<T> {
    pub fn new(value: T, origin: Origin) -> At<T> {
        At { value, origin }
    }

    /// A value built in code, with no origin.
    pub fn bare(value: T) -> At<T> {
        At::new(value, Origin::None)
    }
}

/// A whole policy: SPEC §1, and the topology of §6 (all of which may be
/// empty: a Part I policy).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Model {
    /// Names the policy in messages and in `check` (a file name).
    pub source: String,
    /// Set by an importer: where the policy came from.
    pub imported: Option<Imported>,
    pub settings: Settings,
    pub conntrack: Conntrack,
    pub prefix_lists: Vec<PrefixList>,
    /// In the order written: a rule's name counts from its group's first rule.
    pub security_groups: Vec<SecurityGroup>,
    /// Groups referenced but not in the input (imported policies only).
    pub external_groups: Vec<ExternalGroup>,
    pub interfaces: Vec<Interface>,
    pub vpcs: Vec<Vpc>,
    pub peerings: Vec<Peering>,
    pub subnets: Vec<Subnet>,
    pub network_acls: Vec<NetworkAcl>,
    pub route_tables: Vec<RouteTable>,
    pub load_balancers: Vec<LoadBalancer>,
    pub target_groups: Vec<TargetGroup>,
    pub endpoint_services: Vec<EndpointService>,
    pub endpoints: Vec<Endpoint>,
}

/// `[conntrack]`. Numbers are as written; `compile` checks their range.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Conntrack {
    /// Default 1,000,000; 1 to 2^30.
    pub max_entries: Option<At<i64>>,
    /// Default early drop.
    pub when_full: WhenFull,
    /// Seconds, each 1 to ten years; defaults are AWS's (SPEC §1).
    pub tcp_established: Option<At<i64>>,
    pub tcp_transitory: Option<At<i64>>,
    pub udp: Option<At<i64>>,
    pub udp_stream: Option<At<i64>>,
    pub icmp: Option<At<i64>>,
    pub other: Option<At<i64>>,
}

/// A named list of CIDRs (`pl-…`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PrefixList {
    /// Must start with `pl-`.
    pub name: String,
    pub origin: Origin,
    pub entries: Vec<At<IpNet>>,
    /// The list's maximum size (AWS counts it against quotas at this size).
    pub max_entries: Option<At<i64>>,
    /// Who owns it (`AWS` for AWS-managed lists), when imported.
    pub owner: Option<String>,
    /// True when the input named the list but did not give (all) its
    /// entries (an AWS-managed list): it matches only what is listed, and
    /// `check` names it. Default false.
    pub incomplete: bool,
}

/// A security group and its rules.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecurityGroup {
    /// Must start with `sg-`.
    pub name: String,
    pub origin: Origin,
    pub description: Option<String>,
    /// The group's name in its cloud (`GroupName`), when it has one apart
    /// from its id.
    pub title: Option<String>,
    /// The VPC it belongs to; `None`: the default one.
    pub vpc: Option<At<String>>,
    /// Members reach each other on everything, above every rule. Default false.
    pub intra_group: bool,
    pub ingress: Vec<Rule>,
    pub egress: Vec<Rule>,
}

/// One rule; its direction is the list it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub origin: Origin,
    pub proto: ProtoMatch,
    /// Destination ports as written (several ranges may overlap); `None` is
    /// all ports. Only tcp and udp have ports: on other protocols anything
    /// but all ports is an error.
    pub ports: Option<At<Vec<PortRange>>>,
    /// The remote end's ports, as `ports`.
    pub source_ports: Option<At<Vec<PortRange>>>,
    /// 0-255 on icmp and icmpv6 only; `None` is any.
    pub icmp_type: Option<At<i64>>,
    pub icmp_code: Option<At<i64>>,
    /// The remote end (SPEC's `from` on ingress, `to` on egress); at least one.
    pub remote: Vec<At<Remote>>,
    /// The block the local address must be in; `None` is any.
    pub local: Option<At<IpNet>>,
    /// Default allow.
    pub action: Action,
    /// 1-65535, smaller wins; `None` is 1.
    pub priority: Option<At<i64>>,
    pub description: Option<String>,
    /// The cloud's id of the rule (`sgr-…`, an NSG rule's name).
    pub id: Option<String>,
}

impl Rule {
    /// An allow rule with every field but the protocol and remote end at its
    /// default.
    pub fn new(proto: ProtoMatch, remote: Vec<At<Remote>>) -> Rule {
        Rule {
            origin: Origin::None,
            proto,
            ports: None,
            source_ports: None,
            icmp_type: None,
            icmp_code: None,
            remote,
            local: None,
            action: Action::Allow,
            priority: None,
            description: None,
            id: None,
        }
    }
}

/// What a rule's remote end names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Remote {
    /// An address block. It must be a network address (no host bits set).
    Net(IpNet),
    /// The addresses of every interface that has this group.
    Sg(String),
    /// The entries of this prefix list.
    PrefixList(String),
}

impl FromStr for Remote {
    type Err = NotAnAddress;

    /// `sg-…`, `pl-…`, or an address or CIDR.
    fn from_str(s: &str) -> Result<Remote, NotAnAddress> {
        if s.starts_with("sg-") {
            Ok(Remote::Sg(s.to_string()))
        } else if s.starts_with("pl-") {
            Ok(Remote::PrefixList(s.to_string()))
        } else {
            parse_net(s).map(Remote::Net)
        }
    }
}

impl fmt::Display for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Remote::Net(n) => n.fmt(f),
            Remote::Sg(s) | Remote::PrefixList(s) => f.write_str(s),
        }
    }
}

/// A network interface (ENI, NIC, node) that SGs attach to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Interface {
    pub name: String,
    pub origin: Origin,
    pub description: Option<String>,
    /// At least one; an address belongs to one interface per zone.
    pub addresses: At<Vec<At<IpNet>>>,
    /// By name, each at most once.
    pub security_groups: Vec<At<String>>,
    /// Only behind this GWLB endpoint; `None` is every zone.
    pub zone: Option<ZoneId>,
    /// Where it sits in the topology (SPEC §6).
    pub place: InterfacePlace,
}

impl<T: Default> Default for At<T> {
    fn default() -> Self {
        At::bare(T::default())
    }
}

impl Model {
    /// Reads a policy file (SPEC §1): unknown keys and malformed values are
    /// errors naming file:line:column; the checks of [`super::Policy::compile`]
    /// come after.
    pub fn from_toml(text: &str, source: &str) -> Result<Model, PolicyError> {
        super::file::read(text, source)
    }

    /// Reads a policy file from disk.
    pub fn load(path: &Path) -> Result<Model, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError::Io {
            path: path.display().to_string(),
            source: e,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }
}
