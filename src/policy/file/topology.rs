//! The topology sections of the policy file (SPEC §6) and what an import
//! adds (`[imported]`, `[external_groups]`): serde structs that mirror the
//! TOML as strictly as the Part I ones in [`super::raw`], and their reading
//! into the model. Only the file is checked here (keys, types, spellings);
//! whether the names they use exist is `compile`'s business.

use std::fmt;

use ipnet::IpNet;
use serde::de::{self, value::MapAccessDeserializer, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

use super::raw::{AddrList, RawAction, RawPorts, RawProto};
use super::Reader;
use crate::policy::model::{self, At, Remote};
use crate::policy::types::Direction;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawImported {
    pub provider: String,
    #[serde(default)]
    pub inputs: Vec<String>,
}

/// A prefix list: its entries alone, or a table with them and what an
/// import says about the list.
#[derive(Debug)]
pub enum RawPrefixList {
    Entries(Vec<Spanned<String>>),
    Table(RawPrefixListTable),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrefixListTable {
    #[serde(default)]
    pub entries: Vec<Spanned<String>>,
    pub max_entries: Option<Spanned<i64>>,
    pub owner: Option<String>,
    pub incomplete: Option<bool>,
}

impl<'de> Deserialize<'de> for RawPrefixList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawPrefixList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of CIDRs, or a table with `entries`")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawPrefixList, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<Spanned<String>>()? {
                    out.push(s);
                }
                Ok(RawPrefixList::Entries(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawPrefixList, A::Error> {
                RawPrefixListTable::deserialize(MapAccessDeserializer::new(map))
                    .map(RawPrefixList::Table)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExternalGroup {
    pub account: Option<String>,
    pub vpc: Option<String>,
    pub peering: Option<String>,
    pub status: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVpc {
    #[serde(default)]
    pub cidrs: Vec<Spanned<String>>,
    #[serde(default)]
    pub peers: Vec<Spanned<String>>,
    pub account: Option<String>,
    pub region: Option<String>,
    pub name: Option<String>,
    #[serde(default)]
    pub internet_gateways: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPeering {
    pub requester_vpc: Spanned<String>,
    pub accepter_vpc: Spanned<String>,
    pub status: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSubnet {
    pub vpc: Spanned<String>,
    pub cidr: Option<Spanned<AddrList>>,
    pub az: Option<String>,
    pub network_acl: Option<Spanned<String>>,
    #[serde(default)]
    pub security_groups: Vec<Spanned<String>>,
    pub route_table: Option<Spanned<String>>,
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNetworkAcl {
    pub vpc: Option<Spanned<String>>,
    pub default: Option<bool>,
    #[serde(default)]
    pub ingress: Vec<Spanned<RawAclRule>>,
    #[serde(default)]
    pub egress: Vec<Spanned<RawAclRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAclRule {
    pub rule: Spanned<i64>,
    pub proto: Spanned<RawProto>,
    pub ports: Option<Spanned<RawPorts>>,
    pub icmp_type: Option<Spanned<i64>>,
    pub icmp_code: Option<Spanned<i64>>,
    pub from: Option<Spanned<String>>,
    pub to: Option<Spanned<String>>,
    pub action: Spanned<RawAction>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouteTable {
    pub vpc: Option<Spanned<String>>,
    pub main: Option<bool>,
    #[serde(default)]
    pub routes: Vec<Spanned<RawRoute>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub destination: Spanned<String>,
    pub target: Spanned<String>,
    pub state: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLoadBalancer {
    #[serde(rename = "type")]
    pub kind: Spanned<String>,
    pub scheme: Option<Spanned<String>>,
    pub vpc: Option<Spanned<String>>,
    #[serde(default)]
    pub interfaces: Vec<Spanned<String>>,
    #[serde(default)]
    pub security_groups: Vec<Spanned<String>>,
    pub cross_zone: Option<bool>,
    pub enforce_inbound_rules_on_privatelink: Option<bool>,
    #[serde(default)]
    pub listeners: Vec<Spanned<RawListener>>,
    pub dns_name: Option<String>,
    pub arn: Option<String>,
    #[serde(default)]
    pub zones: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListener {
    pub proto: Spanned<String>,
    pub port: Option<Spanned<i64>>,
    pub target_group: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTargetGroup {
    pub proto: Option<Spanned<String>>,
    pub port: Option<Spanned<i64>>,
    pub vpc: Option<Spanned<String>>,
    pub target_type: Option<String>,
    pub preserve_client_ip: Option<bool>,
    pub health_check_port: Option<HealthCheckPort>,
    #[serde(default)]
    pub targets: Vec<Spanned<RawTarget>>,
    pub arn: Option<String>,
}

/// `health_check_port`: a number, or a string (`traffic-port`).
#[derive(Debug)]
pub struct HealthCheckPort(pub String);

impl<'de> Deserialize<'de> for HealthCheckPort {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = HealthCheckPort;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a port number or \"traffic-port\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<HealthCheckPort, E> {
                Ok(HealthCheckPort(v.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<HealthCheckPort, E> {
                Ok(HealthCheckPort(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    pub id: Spanned<String>,
    pub port: Option<Spanned<i64>>,
    pub az: Option<String>,
    pub health: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEndpointService {
    #[serde(default)]
    pub load_balancers: Vec<Spanned<String>>,
    pub service_name: Option<String>,
    pub acceptance_required: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEndpoint {
    #[serde(rename = "type")]
    pub kind: Spanned<String>,
    pub service: Option<Spanned<String>>,
    pub vpc: Option<Spanned<String>>,
    #[serde(default)]
    pub subnets: Vec<Spanned<String>>,
    #[serde(default)]
    pub interfaces: Vec<Spanned<String>>,
    #[serde(default)]
    pub security_groups: Vec<Spanned<String>>,
    #[serde(default)]
    pub route_tables: Vec<Spanned<String>>,
    #[serde(default)]
    pub dns_names: Vec<String>,
    pub state: Option<String>,
}

/// An interface's `timeouts` (AWS `ConnectionTrackingSpecification`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTimeouts {
    pub tcp_established: Option<Spanned<i64>>,
    pub udp: Option<Spanned<i64>>,
    pub udp_stream: Option<Spanned<i64>>,
}

impl Reader<'_> {
    fn names(&self, list: &[Spanned<String>]) -> Vec<At<String>> {
        list.iter().map(|s| self.at.spanned(s)).collect()
    }

    fn name_opt(&self, s: &Option<Spanned<String>>) -> Option<At<String>> {
        s.as_ref().map(|s| self.at.spanned(s))
    }

    fn num_opt(&self, s: &Option<Spanned<i64>>) -> Option<At<i64>> {
        s.as_ref().map(|s| self.at.spanned(s))
    }

    fn nets(&mut self, list: &[Spanned<String>]) -> Vec<At<IpNet>> {
        list.iter().filter_map(|s| self.net(s)).collect()
    }

    pub(super) fn prefix_list(
        &mut self,
        name: &Spanned<String>,
        pl: &RawPrefixList,
    ) -> model::PrefixList {
        let mut m = model::PrefixList {
            name: name.get_ref().clone(),
            origin: self.at.origin(name.span()),
            ..model::PrefixList::default()
        };
        match pl {
            RawPrefixList::Entries(e) => m.entries = self.nets(e),
            RawPrefixList::Table(t) => {
                m.entries = self.nets(&t.entries);
                m.max_entries = self.num_opt(&t.max_entries);
                m.owner = t.owner.clone();
                m.incomplete = t.incomplete.unwrap_or(false);
            }
        }
        m
    }

    pub(super) fn external_group(
        &mut self,
        name: &Spanned<String>,
        g: &RawExternalGroup,
    ) -> model::ExternalGroup {
        model::ExternalGroup {
            name: name.get_ref().clone(),
            origin: self.at.origin(name.span()),
            account: g.account.clone(),
            vpc: g.vpc.clone(),
            peering: g.peering.clone(),
            status: g.status.clone(),
        }
    }

    pub(super) fn vpc(&mut self, name: &Spanned<String>, v: &RawVpc) -> model::Vpc {
        model::Vpc {
            name: name.get_ref().clone(),
            origin: self.at.origin(name.span()),
            cidrs: self.nets(&v.cidrs),
            peers: self.names(&v.peers),
            account: v.account.clone(),
            region: v.region.clone(),
            title: v.name.clone(),
            internet_gateways: v.internet_gateways.clone(),
        }
    }

    pub(super) fn peering(&mut self, name: &Spanned<String>, p: &RawPeering) -> model::Peering {
        model::Peering {
            name: name.get_ref().clone(),
            origin: self.at.origin(name.span()),
            requester_vpc: self.at.spanned(&p.requester_vpc),
            accepter_vpc: self.at.spanned(&p.accepter_vpc),
            status: p.status.clone(),
        }
    }

    pub(super) fn subnet(&mut self, name: &Spanned<String>, s: &RawSubnet) -> model::Subnet {
        let mut cidrs = Vec::new();
        if let Some(list) = &s.cidr {
            for (text, span) in &list.get_ref().0 {
                let span = span.clone().unwrap_or_else(|| list.span());
                match crate::policy::types::parse_net(text.trim()) {
                    Ok(n) => cidrs.push(self.at.at(n, span)),
                    Err(e) => self.err(span, e.to_string()),
                }
            }
        }
        model::Subnet {
            name: name.get_ref().clone(),
            origin: self.at.origin(name.span()),
            vpc: self.at.spanned(&s.vpc),
            cidrs,
            az: s.az.clone(),
            network_acl: self.name_opt(&s.network_acl),
            security_groups: self.names(&s.security_groups),
            route_table: self.name_opt(&s.route_table),
            title: s.name.clone(),
        }
    }

    pub(super) fn network_acl(
        &mut self,
        name: &Spanned<String>,
        a: &RawNetworkAcl,
    ) -> model::NetworkAcl {
        let ingress = a
            .ingress
            .iter()
            .map(|r| self.acl_rule(Direction::Ingress, r))
            .collect();
        let egress = a
            .egress
            .iter()
            .map(|r| self.acl_rule(Direction::Egress, r))
            .collect();
        model::NetworkAcl {
            name: name.get_ref().clone(),
            origin: self.at.origin(name.span()),
            vpc: self.name_opt(&a.vpc),
            default: a.default.unwrap_or(false),
            ingress,
            egress,
        }
    }

    fn acl_rule(&mut self, direction: Direction, spanned: &Spanned<RawAclRule>) -> model::AclRule {
        let r = spanned.get_ref();
        let (want, wrong, remote, other) = match direction {
            Direction::Ingress => ("from", "to", &r.from, &r.to),
            Direction::Egress => ("to", "from", &r.to, &r.from),
        };
        if let Some(o) = other {
            self.err(
                o.span(),
                format!(
                    "an {direction} ACL rule names its remote block with `{want}`, not `{wrong}`"
                ),
            );
        }
        // A stand-in where the remote block is missing or malformed lets the
        // model's checks see the rest (a model read with errors is never
        // returned).
        let remote = match remote {
            Some(s) => self
                .net(s)
                .unwrap_or_else(|| self.at.at(IpNet::default(), s.span())),
            None => {
                self.err(
                    spanned.span(),
                    format!("an {direction} ACL rule needs `{want}`: the remote CIDR"),
                );
                self.at.at(IpNet::default(), spanned.span())
            }
        };
        let icmp = |v: &Option<Spanned<i64>>| {
            v.as_ref()
                .filter(|v| *v.get_ref() != -1)
                .map(|v| self.at.spanned(v))
        };
        model::AclRule {
            origin: self.at.origin(spanned.span()),
            rule: self.at.spanned(&r.rule),
            proto: r.proto.get_ref().0,
            ports: r
                .ports
                .as_ref()
                .map(|p| self.at.at(p.get_ref().0.clone(), p.span())),
            icmp_type: icmp(&r.icmp_type),
            icmp_code: icmp(&r.icmp_code),
            remote,
            action: r.action.get_ref().0,
        }
    }

    pub(super) fn route_table(
        &mut self,
        name: &Spanned<String>,
        t: &RawRouteTable,
    ) -> model::RouteTable {
        let mut routes = Vec::new();
        for r in &t.routes {
            let raw = r.get_ref();
            let d = &raw.destination;
            let destination = match d.get_ref().trim().parse::<Remote>() {
                Ok(v) => self.at.at(v, d.span()),
                Err(e) => {
                    self.err(d.span(), e.to_string());
                    self.at.at(Remote::Net(IpNet::default()), d.span())
                }
            };
            routes.push(model::Route {
                origin: self.at.origin(r.span()),
                destination,
                target: self.at.spanned(&raw.target),
                state: raw.state.clone(),
            });
        }
        model::RouteTable {
            name: name.get_ref().clone(),
            origin: self.at.origin(name.span()),
            vpc: self.name_opt(&t.vpc),
            main: t.main.unwrap_or(false),
            routes,
        }
    }

    pub(super) fn load_balancer(
        &mut self,
        name: &Spanned<String>,
        lb: &RawLoadBalancer,
    ) -> model::LoadBalancer {
        let listeners = lb
            .listeners
            .iter()
            .map(|l| {
                let raw = l.get_ref();
                model::Listener {
                    origin: self.at.origin(l.span()),
                    proto: self.at.spanned(&raw.proto),
                    port: self.num_opt(&raw.port),
                    target_group: self.name_opt(&raw.target_group),
                }
            })
            .collect();
        model::LoadBalancer {
            name: name.get_ref().clone(),
            origin: self.at.origin(name.span()),
            kind: self.at.spanned(&lb.kind),
            scheme: self.name_opt(&lb.scheme),
            vpc: self.name_opt(&lb.vpc),
            interfaces: self.names(&lb.interfaces),
            security_groups: self.names(&lb.security_groups),
            cross_zone: lb.cross_zone,
            enforce_inbound_rules_on_privatelink: lb.enforce_inbound_rules_on_privatelink,
            listeners,
            dns_name: lb.dns_name.clone(),
            arn: lb.arn.clone(),
            zones: lb.zones.clone(),
        }
    }

    pub(super) fn target_group(
        &mut self,
        name: &Spanned<String>,
        tg: &RawTargetGroup,
    ) -> model::TargetGroup {
        let targets = tg
            .targets
            .iter()
            .map(|t| {
                let raw = t.get_ref();
                model::Target {
                    origin: self.at.origin(t.span()),
                    id: self.at.spanned(&raw.id),
                    port: self.num_opt(&raw.port),
                    az: raw.az.clone(),
                    health: raw.health.clone(),
                }
            })
            .collect();
        model::TargetGroup {
            name: name.get_ref().clone(),
            origin: self.at.origin(name.span()),
            proto: self.name_opt(&tg.proto),
            port: self.num_opt(&tg.port),
            vpc: self.name_opt(&tg.vpc),
            target_type: tg.target_type.clone(),
            preserve_client_ip: tg.preserve_client_ip,
            health_check_port: tg.health_check_port.as_ref().map(|p| p.0.clone()),
            targets,
            arn: tg.arn.clone(),
        }
    }

    pub(super) fn endpoint_service(
        &mut self,
        name: &Spanned<String>,
        s: &RawEndpointService,
    ) -> model::EndpointService {
        model::EndpointService {
            name: name.get_ref().clone(),
            origin: self.at.origin(name.span()),
            load_balancers: self.names(&s.load_balancers),
            service_name: s.service_name.clone(),
            acceptance_required: s.acceptance_required,
        }
    }

    pub(super) fn endpoint(&mut self, name: &Spanned<String>, e: &RawEndpoint) -> model::Endpoint {
        model::Endpoint {
            name: name.get_ref().clone(),
            origin: self.at.origin(name.span()),
            kind: self.at.spanned(&e.kind),
            service: self.name_opt(&e.service),
            vpc: self.name_opt(&e.vpc),
            subnets: self.names(&e.subnets),
            interfaces: self.names(&e.interfaces),
            security_groups: self.names(&e.security_groups),
            route_tables: self.names(&e.route_tables),
            dns_names: e.dns_names.clone(),
            state: e.state.clone(),
        }
    }

    /// An interface's topology fields (SPEC §6).
    pub(super) fn interface_place(
        &mut self,
        ri: &super::raw::RawInterface,
    ) -> model::InterfacePlace {
        let timeouts = match &ri.timeouts {
            None => model::InterfaceTimeouts::default(),
            Some(t) => model::InterfaceTimeouts {
                tcp_established: self.num_opt(&t.tcp_established),
                udp: self.num_opt(&t.udp),
                udp_stream: self.num_opt(&t.udp_stream),
            },
        };
        model::InterfacePlace {
            subnet: self.name_opt(&ri.subnet),
            vpc: self.name_opt(&ri.vpc),
            instance: ri.instance.clone(),
            title: ri.name.clone(),
            kind: self.name_opt(&ri.kind),
            public_addresses: self.nets(&ri.public_addresses),
            tracking: self.name_opt(&ri.tracking),
            timeouts,
            conntrack_max: self.num_opt(&ri.conntrack_max),
            az: ri.az.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::policy::model::{Model, Origin, Remote};
    use crate::policy::types::{Action, IpProto, PortRange, ProtoMatch};

    /// SPEC §6's example as written there (the interface also gets the Part I
    /// `addresses` that the example's "Part I fields" stand for).
    const SPEC_EXAMPLE: &str = r#"
[vpcs.vpc-0a1]                    # an address space; default: one VPC named "default"
cidrs = ["10.0.0.0/16"]
peers = ["vpc-0b2"]               # peered VPCs: SG references and routes may cross
account = "111122223333"          # optional

[subnets.subnet-0c1]
vpc = "vpc-0a1"
cidr = "10.0.1.0/24"
az = "ap-northeast-1a"
network_acl = "acl-0d1"           # stateless (§9.1); none: allow everything
security_groups = ["nsg-web"]     # Azure subnet NSG: stateful, AND-ed with the NIC's (§9.2)
route_table = "rtb-0e1"           # none: only the local route

[network_acls.acl-0d1]
ingress = [ { rule = 100, proto = "tcp", ports = "443", from = "0.0.0.0/0", action = "allow" } ]
egress  = [ { rule = 100, proto = "tcp", ports = "1024-65535", to = "0.0.0.0/0", action = "allow" } ]

[route_tables.rtb-0e1]
routes = [ { destination = "0.0.0.0/0", target = "igw-0f1" },
           { destination = "10.1.0.0/16", target = "pcx-0a2" } ]   # local route implicit

[interfaces.eni-0a1]              # Part I fields, plus:
addresses = ["10.0.1.10"]
subnet = "subnet-0c1"             # gives the VPC, the NACL and the AZ
vpc = "vpc-0a1"                   # only where there is no subnet
instance = "i-0123456789abcdef0"  # and `name` (the Name tag): what `path` accepts
kind = "interface"                # interface | load_balancer | vpc_endpoint | gateway_load_balancer_endpoint | nat_gateway | lambda | …
public_addresses = ["18.216.80.133"]   # translated 1:1 to the private address at the IGW
tracking = "aws"                  # "always" (default) | "aws" (§9.3)
timeouts = { tcp_established = 350, udp = 30, udp_stream = 180 }   # AWS ConnectionTrackingSpecification

[load_balancers.nlb-orders]
type = "network"                  # network | application | gateway
scheme = "internal"               # internal | internet-facing
interfaces = ["eni-0n1", "eni-0n2"]   # its nodes, one per AZ
security_groups = ["sg-nlb"]      # none: every client reaches the listeners
cross_zone = false                # NLB/GWLB default false, ALB always true
enforce_inbound_rules_on_privatelink = true
listeners = [ { proto = "tcp", port = 80, target_group = "tg-orders" } ]
dns_name = "nlb-orders-0123.elb.ap-northeast-1.amazonaws.com"

[target_groups.tg-orders]
proto = "tcp"
port = 80
preserve_client_ip = false
health_check_port = 80
targets = [ { id = "i-0b1", port = 80, health = "healthy" } ]   # an instance id, ENI or IP

[endpoint_services.vpce-svc-0b1]
load_balancers = ["nlb-orders"]

[endpoints.vpce-0e1]
type = "interface"                # interface | gateway_load_balancer
service = "vpce-svc-0b1"
interfaces = ["eni-0e1"]
security_groups = ["sg-vpce"]
dns_names = ["vpce-0e1-abcd.vpce-svc-0b1.ap-northeast-1.vpce.amazonaws.com"]
"#;

    fn read(text: &str) -> Model {
        Model::from_toml(text, "t.toml").unwrap_or_else(|e| panic!("{e}"))
    }

    fn error(text: &str) -> String {
        Model::from_toml(text, "t.toml").unwrap_err().to_string()
    }

    fn net(s: &str) -> ipnet::IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn spec_example_reads_into_the_model() {
        let m = read(SPEC_EXAMPLE);
        let v = &m.vpcs[0];
        assert_eq!(v.name, "vpc-0a1");
        assert_eq!(v.origin.to_string(), "t.toml:2:7");
        assert_eq!(v.cidrs[0].value, net("10.0.0.0/16"));
        assert_eq!(v.peers[0].value, "vpc-0b2");
        assert_eq!(v.account.as_deref(), Some("111122223333"));

        let s = &m.subnets[0];
        assert_eq!(s.vpc.value, "vpc-0a1");
        assert_eq!(s.cidrs.len(), 1);
        assert_eq!(s.cidrs[0].value, net("10.0.1.0/24"));
        assert_eq!(s.cidrs[0].origin.to_string(), "t.toml:9:8");
        assert_eq!(s.az.as_deref(), Some("ap-northeast-1a"));
        assert_eq!(s.network_acl.as_ref().unwrap().value, "acl-0d1");
        assert_eq!(s.security_groups[0].value, "nsg-web");
        assert_eq!(s.route_table.as_ref().unwrap().value, "rtb-0e1");

        let a = &m.network_acls[0];
        let i = &a.ingress[0];
        assert_eq!(i.rule.value, 100);
        assert_eq!(i.proto, ProtoMatch::Is(IpProto::TCP));
        assert_eq!(
            i.ports.as_ref().unwrap().value,
            [PortRange { lo: 443, hi: 443 }]
        );
        assert_eq!(i.remote.value, net("0.0.0.0/0"));
        assert_eq!(i.action, Action::Allow);
        assert_eq!(i.origin.line(), 16);
        let e = &a.egress[0];
        assert_eq!(
            e.ports.as_ref().unwrap().value,
            [PortRange {
                lo: 1024,
                hi: 65535
            }]
        );

        let routes = &m.route_tables[0].routes;
        assert_eq!(routes.len(), 2);
        assert_eq!(routes[0].destination.value, Remote::Net(net("0.0.0.0/0")));
        assert_eq!(routes[1].target.value, "pcx-0a2");
        assert_eq!(routes[1].origin.line(), 21);

        let p = &m.interfaces[0].place;
        assert_eq!(p.subnet.as_ref().unwrap().value, "subnet-0c1");
        assert_eq!(p.vpc.as_ref().unwrap().value, "vpc-0a1");
        assert_eq!(p.instance.as_deref(), Some("i-0123456789abcdef0"));
        assert_eq!(p.kind.as_ref().unwrap().value, "interface");
        assert_eq!(p.public_addresses[0].value, net("18.216.80.133/32"));
        assert_eq!(p.tracking.as_ref().unwrap().value, "aws");
        assert_eq!(p.timeouts.tcp_established.as_ref().unwrap().value, 350);
        assert_eq!(p.timeouts.udp.as_ref().unwrap().value, 30);
        assert_eq!(p.timeouts.udp_stream.as_ref().unwrap().value, 180);

        let lb = &m.load_balancers[0];
        assert_eq!(lb.kind.value, "network");
        assert_eq!(lb.scheme.as_ref().unwrap().value, "internal");
        assert_eq!(lb.interfaces.len(), 2);
        assert_eq!(lb.security_groups[0].value, "sg-nlb");
        assert_eq!(lb.cross_zone, Some(false));
        assert_eq!(lb.enforce_inbound_rules_on_privatelink, Some(true));
        let l = &lb.listeners[0];
        assert_eq!(l.proto.value, "tcp");
        assert_eq!(l.port.as_ref().unwrap().value, 80);
        assert_eq!(l.target_group.as_ref().unwrap().value, "tg-orders");
        assert_eq!(
            lb.dns_name.as_deref(),
            Some("nlb-orders-0123.elb.ap-northeast-1.amazonaws.com")
        );

        let tg = &m.target_groups[0];
        assert_eq!(tg.proto.as_ref().unwrap().value, "tcp");
        assert_eq!(tg.port.as_ref().unwrap().value, 80);
        assert_eq!(tg.preserve_client_ip, Some(false));
        assert_eq!(tg.health_check_port.as_deref(), Some("80"));
        assert_eq!(tg.targets[0].id.value, "i-0b1");
        assert_eq!(tg.targets[0].health.as_deref(), Some("healthy"));

        assert_eq!(m.endpoint_services[0].load_balancers[0].value, "nlb-orders");
        let ep = &m.endpoints[0];
        assert_eq!(ep.kind.value, "interface");
        assert_eq!(ep.service.as_ref().unwrap().value, "vpce-svc-0b1");
        assert_eq!(ep.interfaces[0].value, "eni-0e1");
        assert_eq!(ep.security_groups[0].value, "sg-vpce");
        assert_eq!(ep.dns_names.len(), 1);
    }

    #[test]
    fn import_fields_are_read() {
        let m = read(
            r#"
[imported]
provider = "aws"
inputs = ["a.json", "dir/b.json"]

[prefix_lists]
pl-plain = ["10.0.0.0/8"]
pl-aws = { entries = ["52.94.0.0/22"], max_entries = 50, owner = "AWS", incomplete = true }

[security_groups.sg-a]
name = "web"
vpc = "vpc-1"
ingress = [ { proto = "tcp", ports = "443", from = "sg-ext", id = "sgr-0123" } ]

[external_groups.sg-ext]
account = "444455556666"
vpc = "vpc-9"
peering = "pcx-1"
status = "stale"

[interfaces.eni-1]
addresses = ["10.0.0.5"]
name = "web-1"
az = "ap-northeast-1a"

[vpcs.vpc-1]
cidrs = ["10.0.0.0/16", "2001:db8::/56"]
region = "ap-northeast-1"
name = "main"
internet_gateways = ["igw-1"]

[peerings.pcx-1]
requester_vpc = "vpc-1"
accepter_vpc = "vpc-9"
status = "active"

[subnets.subnet-1]
vpc = "vpc-1"
cidr = ["10.0.0.0/24", "2001:db8::/64"]
name = "private"

[network_acls.acl-1]
vpc = "vpc-1"
default = true
ingress = [ { rule = 90, proto = "icmp", icmp_type = 8, icmp_code = -1, from = "::/0", action = "drop" } ]

[route_tables.rtb-1]
vpc = "vpc-1"
main = true
routes = [ { destination = "pl-aws", target = "vpce-1", state = "blackhole" } ]

[load_balancers.alb]
type = "application"
arn = "arn:aws:elasticloadbalancing:ap-northeast-1:1:loadbalancer/app/alb/1"
zones = ["ap-northeast-1a"]
vpc = "vpc-1"

[target_groups.tg]
vpc = "vpc-1"
target_type = "ip"
health_check_port = "traffic-port"
targets = [ { id = "10.0.0.5", az = "ap-northeast-1a" } ]
arn = "arn:tg"

[endpoint_services.vpce-svc-1]
service_name = "com.amazonaws.vpce.ap-northeast-1.vpce-svc-1"
acceptance_required = true

[endpoints.vpce-1]
type = "gateway"
vpc = "vpc-1"
subnets = ["subnet-1"]
route_tables = ["rtb-1"]
state = "available"
"#,
        );
        let imp = m.imported.as_ref().unwrap();
        assert_eq!(imp.provider, "aws");
        assert_eq!(imp.inputs, ["a.json", "dir/b.json"]);
        assert!(!m.prefix_lists[0].incomplete);
        let pl = &m.prefix_lists[1];
        assert_eq!(pl.entries[0].value, net("52.94.0.0/22"));
        assert_eq!(pl.max_entries.as_ref().unwrap().value, 50);
        assert_eq!(pl.owner.as_deref(), Some("AWS"));
        assert!(pl.incomplete);
        let sg = &m.security_groups[0];
        assert_eq!(sg.title.as_deref(), Some("web"));
        assert_eq!(sg.vpc.as_ref().unwrap().value, "vpc-1");
        assert_eq!(sg.ingress[0].id.as_deref(), Some("sgr-0123"));
        let x = &m.external_groups[0];
        assert_eq!(
            (x.account.as_deref(), x.vpc.as_deref(), x.peering.as_deref()),
            (Some("444455556666"), Some("vpc-9"), Some("pcx-1"))
        );
        assert_eq!(x.status.as_deref(), Some("stale"));
        assert_eq!(m.interfaces[0].place.title.as_deref(), Some("web-1"));
        assert_eq!(m.interfaces[0].place.az.as_deref(), Some("ap-northeast-1a"));
        let v = &m.vpcs[0];
        assert_eq!(v.cidrs.len(), 2);
        assert_eq!(v.title.as_deref(), Some("main"));
        assert_eq!(v.region.as_deref(), Some("ap-northeast-1"));
        assert_eq!(v.internet_gateways, ["igw-1"]);
        let p = &m.peerings[0];
        assert_eq!(
            (
                p.requester_vpc.value.as_str(),
                p.accepter_vpc.value.as_str()
            ),
            ("vpc-1", "vpc-9")
        );
        assert_eq!(p.status.as_deref(), Some("active"));
        assert_eq!(m.subnets[0].cidrs[1].value, net("2001:db8::/64"));
        assert_eq!(m.subnets[0].title.as_deref(), Some("private"));
        let a = &m.network_acls[0];
        assert!(a.default);
        let r = &a.ingress[0];
        assert_eq!(
            (r.proto, r.action),
            (ProtoMatch::Is(IpProto::ICMP), Action::Deny)
        );
        assert_eq!(r.icmp_type.as_ref().unwrap().value, 8);
        assert_eq!(r.icmp_code, None);
        let rt = &m.route_tables[0];
        assert!(rt.main);
        assert_eq!(
            rt.routes[0].destination.value,
            Remote::PrefixList("pl-aws".into())
        );
        assert_eq!(rt.routes[0].state.as_deref(), Some("blackhole"));
        let lb = &m.load_balancers[0];
        assert!(lb.arn.as_deref().unwrap().starts_with("arn:aws:"));
        assert_eq!(lb.zones, ["ap-northeast-1a"]);
        let tg = &m.target_groups[0];
        assert_eq!(tg.health_check_port.as_deref(), Some("traffic-port"));
        assert_eq!(tg.target_type.as_deref(), Some("ip"));
        assert_eq!(tg.targets[0].az.as_deref(), Some("ap-northeast-1a"));
        let es = &m.endpoint_services[0];
        assert_eq!(es.acceptance_required, Some(true));
        assert!(es.service_name.is_some());
        let ep = &m.endpoints[0];
        assert_eq!(ep.subnets[0].value, "subnet-1");
        assert_eq!(ep.route_tables[0].value, "rtb-1");
        assert_eq!(ep.state.as_deref(), Some("available"));
    }

    #[test]
    fn unknown_keys_in_every_section_are_errors_at_their_position() {
        let cases = [
            "[imported]\nprovider = \"aws\"\nbogus = 1\n",
            "[prefix_lists]\npl-a = { entries = [], bogus = 1 }\n",
            "[external_groups.sg-x]\nbogus = 1\n",
            "[vpcs.v]\nbogus = 1\n",
            "[peerings.p]\nrequester_vpc = \"a\"\naccepter_vpc = \"b\"\nbogus = 1\n",
            "[subnets.s]\nvpc = \"v\"\nbogus = 1\n",
            "[network_acls.a]\nbogus = 1\n",
            "[network_acls.a]\ningress = [\n  { rule = 1, proto = \"all\", from = \"0.0.0.0/0\", action = \"allow\", bogus = 1 } ]\n",
            "[route_tables.r]\nbogus = 1\n",
            "[route_tables.r]\nroutes = [\n { destination = \"0.0.0.0/0\", target = \"igw\", bogus = 1 } ]\n",
            "[load_balancers.l]\ntype = \"network\"\nbogus = 1\n",
            "[load_balancers.l]\ntype = \"network\"\nlisteners = [ { proto = \"tcp\", bogus = 1 } ]\n",
            "[target_groups.t]\nbogus = 1\n",
            "[target_groups.t]\ntargets = [ { id = \"i-1\", bogus = 1 } ]\n",
            "[endpoint_services.e]\nbogus = 1\n",
            "[endpoints.e]\ntype = \"interface\"\nbogus = 1\n",
            "[interfaces.i]\naddresses = [\"10.0.0.1\"]\ntimeouts = { udp = 30, bogus = 1 }\n",
            "[security_groups.sg-a]\ningress = [ { proto = \"tcp\", from = \"0.0.0.0/0\", bogus = 1 } ]\n",
        ];
        for text in cases {
            let e = error(text);
            let (line, col) = text
                .lines()
                .enumerate()
                .find_map(|(i, l)| l.find("bogus").map(|c| (i + 1, c + 1)))
                .unwrap();
            assert!(
                e.contains(&format!("t.toml:{line}:{col}:")) && e.contains("unknown field `bogus`"),
                "{text}\n=> {e}"
            );
        }
    }

    #[test]
    fn wrong_types_and_values_are_errors_at_their_position() {
        let e = error("[vpcs.v]\ncidrs = \"10.0.0.0/16\"\n");
        assert!(e.contains("t.toml:2:9:"), "{e}");
        let e = error("[vpcs.v]\ncidrs = [\"10.0.0.0/33\"]\n");
        assert!(
            e.contains("t.toml:2:10:") && e.contains("10.0.0.0/33"),
            "{e}"
        );
        let e = error("[network_acls.a]\ningress = [ { rule = 1, proto = \"tcpp\", from = \"0.0.0.0/0\", action = \"allow\" } ]\n");
        assert!(
            e.contains("t.toml:2:") && e.contains("unknown protocol `tcpp`"),
            "{e}"
        );
        let e = error("[network_acls.a]\ningress = [ { rule = 1, proto = \"tcp\", from = \"0.0.0.0/0\", action = \"reject\" } ]\n");
        assert!(e.contains("unknown action `reject`"), "{e}");
        let e = error("[network_acls.a]\negress = [ { rule = 1, proto = \"tcp\", from = \"0.0.0.0/0\", action = \"allow\" } ]\n");
        assert!(
            e.contains("t.toml:2:") && e.contains("with `to`, not `from`"),
            "{e}"
        );
        let e = error("[subnets.s]\ncidr = \"10.0.0.0/24\"\n");
        assert!(
            e.contains("t.toml:1:") && e.contains("missing field `vpc`"),
            "{e}"
        );
        let e = error("[load_balancers.l]\ntype = \"network\"\ncross_zone = \"no\"\n");
        assert!(e.contains("t.toml:3:14:"), "{e}");
        let e = error("[target_groups.t]\nhealth_check_port = true\n");
        assert!(e.contains("t.toml:2:21:"), "{e}");
        let e = error("[prefix_lists]\npl-a = 3\n");
        assert!(e.contains("t.toml:2:8:"), "{e}");
    }

    #[test]
    fn origins_are_toml_positions() {
        let m = read(SPEC_EXAMPLE);
        assert!(
            matches!(
                m.endpoints[0].origin,
                Origin::Toml {
                    line: 53,
                    column: 12,
                    ..
                }
            ),
            "{:?}",
            m.endpoints[0].origin
        );
        assert_eq!(m.load_balancers[0].listeners[0].origin.line(), 40);
    }
}
