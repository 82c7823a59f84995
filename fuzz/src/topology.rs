//! The `path` target's input: a topology built from `arbitrary` choices,
//! written as a policy file, and the queries asked of it.
//!
//! Two VPCs (`vpc-a` 10.1.0.0/16 with an internet gateway, `vpc-b`
//! 10.2.0.0/16), a peering between them (active or not, or none), up to
//! four subnets (each in either VPC, with an ACL and a route table or not),
//! two ACLs and two route tables with arbitrary entries and routes, three
//! security groups with arbitrary rules, up to five interfaces (each in a
//! subnet, with groups and maybe a public address); then up to four
//! queries between interfaces, their addresses, other hosts and the
//! internet, for TCP, UDP, ICMP or all protocols, with or without a
//! client port.

use std::fmt::Write as _;

use arbitrary::{Arbitrary, Result, Unstructured};
use sgplane::path::Query;
use sgplane::policy::IpProto;

const ACL_REMOTES: [&str; 7] = [
    "0.0.0.0/0",
    "10.1.0.0/16",
    "10.2.0.0/16",
    "10.1.1.0/24",
    "10.1.2.0/24",
    "198.51.100.0/24",
    "10.1.1.10/32",
];
const SG_REMOTES: [&str; 8] = [
    "0.0.0.0/0",
    "10.1.0.0/16",
    "10.2.0.0/16",
    "10.1.1.0/24",
    "198.51.100.0/24",
    "sg-0",
    "sg-1",
    "sg-2",
];
const PORTS: [&str; 6] = ["80", "443", "22", "1024-65535", "0-65535", "5432"];
const DESTINATIONS: [&str; 4] = ["10.2.0.0/16", "10.1.0.0/16", "0.0.0.0/0", "10.2.1.0/24"];
const TARGETS: [&str; 4] = ["pcx-ab", "igw-a", "local", "tgw-1"];

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Proto {
    Tcp,
    Udp,
    Icmp,
    All,
}

impl Proto {
    fn toml(self) -> &'static str {
        match self {
            Proto::Tcp => "\"tcp\"",
            Proto::Udp => "\"udp\"",
            Proto::Icmp => "\"icmp\"",
            Proto::All => "\"all\"",
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct AclEntry {
    pub rule: u8,
    pub proto: Proto,
    pub ports: Option<u8>,
    pub remote: u8,
    pub allow: bool,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct SgRule {
    pub proto: Proto,
    pub ports: Option<u8>,
    pub remote: u8,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Route {
    pub destination: u8,
    pub target: u8,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Subnet {
    pub in_b: bool,
    pub acl: Option<bool>,
    pub route_table: Option<bool>,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Iface {
    pub subnet: u8,
    pub groups: u8,
    pub public: bool,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum End {
    Iface(u8),
    Address(u8),
    Internet,
    Stranger,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Ask {
    pub from: End,
    pub to: End,
    pub proto: Proto,
    pub dport: u8,
    pub sport: Option<u16>,
}

#[derive(Debug, Clone)]
pub struct Topology {
    /// None: no peering; Some(active).
    pub peering: Option<bool>,
    pub subnets: Vec<Subnet>,
    pub acls: [(Vec<AclEntry>, Vec<AclEntry>); 2],
    pub route_tables: [(bool, bool, Vec<Route>); 2],
    pub groups: [(Vec<SgRule>, Vec<SgRule>); 3],
    pub ifaces: Vec<Iface>,
    pub asks: Vec<Ask>,
}

fn take<'a, T: Arbitrary<'a>>(u: &mut Unstructured<'a>, max: usize) -> Result<Vec<T>> {
    let n = usize::from(u8::arbitrary(u)?) % (max + 1);
    (0..n).map(|_| T::arbitrary(u)).collect()
}

impl<'a> Arbitrary<'a> for Topology {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let peering = Option::<bool>::arbitrary(u)?;
        let mut subnets = take(u, 4)?;
        if subnets.is_empty() {
            subnets.push(Subnet {
                in_b: false,
                acl: None,
                route_table: None,
            });
        }
        let acls = [(take(u, 6)?, take(u, 6)?), (take(u, 6)?, take(u, 6)?)];
        let route_tables = [
            (bool::arbitrary(u)?, bool::arbitrary(u)?, take(u, 4)?),
            (bool::arbitrary(u)?, bool::arbitrary(u)?, take(u, 4)?),
        ];
        let groups = [
            (take(u, 4)?, take(u, 4)?),
            (take(u, 4)?, take(u, 4)?),
            (take(u, 4)?, take(u, 4)?),
        ];
        let mut ifaces = take(u, 5)?;
        if ifaces.is_empty() {
            ifaces.push(Iface {
                subnet: 0,
                groups: 1,
                public: false,
            });
        }
        let mut asks = take(u, 4)?;
        if asks.is_empty() {
            asks.push(Ask {
                from: End::Iface(0),
                to: End::Iface(1),
                proto: Proto::Tcp,
                dport: 0,
                sport: None,
            });
        }
        Ok(Topology {
            peering,
            subnets,
            acls,
            route_tables,
            groups,
            ifaces,
            asks,
        })
    }
}

fn vpc(in_b: bool) -> &'static str {
    if in_b {
        "vpc-b"
    } else {
        "vpc-a"
    }
}

/// Subnet `i`'s block: 10.1.(i+1).0/24 in vpc-a, 10.2.(i+1).0/24 in vpc-b.
fn subnet_prefix(s: &Subnet, i: usize) -> String {
    format!("10.{}.{}", if s.in_b { 2 } else { 1 }, i + 1)
}

impl Topology {
    fn iface_address(&self, i: usize) -> String {
        let f = &self.ifaces[i];
        let s = usize::from(f.subnet) % self.subnets.len();
        format!("{}.{}", subnet_prefix(&self.subnets[s], s), 10 + i)
    }

    /// The policy file.
    pub fn toml(&self) -> String {
        let mut t = String::new();
        t.push_str("[vpcs.vpc-a]\ncidrs = [\"10.1.0.0/16\"]\ninternet_gateways = [\"igw-a\"]\n\n");
        t.push_str("[vpcs.vpc-b]\ncidrs = [\"10.2.0.0/16\"]\n\n");
        if let Some(active) = self.peering {
            let status = if active {
                "active"
            } else {
                "pending-acceptance"
            };
            let _ = write!(
                t,
                "[peerings.pcx-ab]\nrequester_vpc = \"vpc-a\"\naccepter_vpc = \"vpc-b\"\nstatus = \"{status}\"\n\n"
            );
        }
        for (i, (b, main, routes)) in self.route_tables.iter().enumerate() {
            let _ = write!(
                t,
                "[route_tables.rt-{i}]\nvpc = \"{}\"\nmain = {main}\nroutes = [\n",
                vpc(*b)
            );
            for r in routes {
                let _ = writeln!(
                    t,
                    "  {{ destination = \"{}\", target = \"{}\" }},",
                    DESTINATIONS[usize::from(r.destination) % DESTINATIONS.len()],
                    TARGETS[usize::from(r.target) % TARGETS.len()]
                );
            }
            t.push_str("]\n\n");
        }
        for (i, (ingress, egress)) in self.acls.iter().enumerate() {
            let _ = writeln!(t, "[network_acls.acl-{i}]");
            for (dir, key, entries) in [("ingress", "from", ingress), ("egress", "to", egress)] {
                let _ = writeln!(t, "{dir} = [");
                let mut used = Vec::new();
                for e in entries {
                    // Rule numbers are unique in a direction (the loader refuses twice).
                    if used.contains(&e.rule) {
                        continue;
                    }
                    used.push(e.rule);
                    let _ = write!(
                        t,
                        "  {{ rule = {}, proto = {}",
                        u16::from(e.rule) + 1,
                        e.proto.toml()
                    );
                    if let (Some(p), Proto::Tcp | Proto::Udp) = (e.ports, e.proto) {
                        let _ = write!(t, ", ports = \"{}\"", PORTS[usize::from(p) % PORTS.len()]);
                    }
                    let remote = ACL_REMOTES[usize::from(e.remote) % ACL_REMOTES.len()];
                    let action = if e.allow { "allow" } else { "deny" };
                    let _ = writeln!(t, ", {key} = \"{remote}\", action = \"{action}\" }},");
                }
                t.push_str("]\n");
            }
            t.push('\n');
        }
        for (i, s) in self.subnets.iter().enumerate() {
            let _ = write!(
                t,
                "[subnets.subnet-{i}]\nvpc = \"{}\"\ncidr = \"{}.0/24\"\n",
                vpc(s.in_b),
                subnet_prefix(s, i)
            );
            // An ACL or route table of the subnet's own VPC only.
            if let Some(a) = s.acl {
                let _ = writeln!(t, "network_acl = \"acl-{}\"", u8::from(a));
            }
            if let Some(r) = s
                .route_table
                .filter(|&r| self.route_tables[usize::from(r)].0 == s.in_b)
            {
                let _ = writeln!(t, "route_table = \"rt-{}\"", u8::from(r));
            }
            t.push('\n');
        }
        for (i, (ingress, egress)) in self.groups.iter().enumerate() {
            let _ = writeln!(t, "[security_groups.sg-{i}]");
            for (dir, key, rules) in [("ingress", "from", ingress), ("egress", "to", egress)] {
                let _ = writeln!(t, "{dir} = [");
                for r in rules {
                    let _ = write!(t, "  {{ proto = {}", r.proto.toml());
                    if let (Some(p), Proto::Tcp | Proto::Udp) = (r.ports, r.proto) {
                        let _ = write!(t, ", ports = \"{}\"", PORTS[usize::from(p) % PORTS.len()]);
                    }
                    let remote = SG_REMOTES[usize::from(r.remote) % SG_REMOTES.len()];
                    let _ = writeln!(t, ", {key} = \"{remote}\" }},");
                }
                t.push_str("]\n");
            }
            t.push('\n');
        }
        for (i, f) in self.ifaces.iter().enumerate() {
            let s = usize::from(f.subnet) % self.subnets.len();
            let groups: Vec<String> = (0..3)
                .filter(|b| f.groups & (1 << b) != 0)
                .map(|b| format!("\"sg-{b}\""))
                .collect();
            let _ = write!(
                t,
                "[interfaces.eni-{i}]\naddresses = [\"{}\"]\nsecurity_groups = [{}]\nsubnet = \"subnet-{s}\"\nname = \"host-{i}\"\n",
                self.iface_address(i),
                groups.join(", ")
            );
            if f.public {
                let _ = writeln!(t, "public_addresses = [\"54.0.0.{}\"]", 10 + i);
            }
            t.push('\n');
        }
        t
    }

    fn end(&self, e: End) -> String {
        match e {
            End::Iface(i) => format!("host-{}", usize::from(i) % self.ifaces.len()),
            End::Address(i) => self.iface_address(usize::from(i) % self.ifaces.len()),
            End::Internet => "198.51.100.7".into(),
            End::Stranger => "10.1.1.200".into(),
        }
    }

    /// The queries.
    pub fn queries(&self) -> Vec<Query> {
        const DPORTS: [u16; 6] = [80, 443, 22, 5432, 1024, 65535];
        self.asks
            .iter()
            .map(|a| {
                let proto = match a.proto {
                    Proto::Tcp => IpProto::TCP,
                    Proto::Udp => IpProto::UDP,
                    Proto::Icmp => IpProto::ICMP,
                    Proto::All => IpProto(47),
                };
                let ports = proto.has_ports();
                Query {
                    from: self.end(a.from),
                    to: self.end(a.to),
                    proto,
                    dport: ports.then(|| DPORTS[usize::from(a.dport) % DPORTS.len()]),
                    sport: a.sport.filter(|_| ports),
                    icmp: (proto == IpProto::ICMP).then_some((8, 0)),
                }
            })
            .collect()
    }
}

/// The `path` target's body: decode, write, check ([`crate::invariants::check_path`]).
pub fn check(data: &[u8]) {
    let Ok(t) = Topology::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    crate::invariants::check_path(&t.toml(), &t.queries());
}
