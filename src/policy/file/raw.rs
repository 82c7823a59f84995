//! The policy file as written: serde structs that mirror the TOML, keep the
//! source position of every value that a later check may complain about, and
//! reject unknown keys. Values with a spelling of their own (actions,
//! protocols, ports) are read here through [`dialect`]; the rest of the
//! reading is `file/mod.rs`'s.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Range;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

use super::dialect;
use super::topology::{
    RawEndpoint, RawEndpointService, RawExternalGroup, RawImported, RawLoadBalancer, RawNetworkAcl,
    RawPeering, RawPrefixList, RawRouteTable, RawSubnet, RawTargetGroup, RawTimeouts, RawVpc,
};
use crate::policy::types::{Action, PortRange, ProtoMatch};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    pub imported: Option<RawImported>,
    #[serde(default)]
    pub settings: RawSettings,
    #[serde(default)]
    pub conntrack: RawConntrack,
    #[serde(default)]
    pub prefix_lists: OrderedMap<RawPrefixList>,
    #[serde(default)]
    pub security_groups: OrderedMap<RawSecurityGroup>,
    #[serde(default)]
    pub external_groups: OrderedMap<RawExternalGroup>,
    #[serde(default)]
    pub interfaces: OrderedMap<RawInterface>,
    #[serde(default)]
    pub vpcs: OrderedMap<RawVpc>,
    #[serde(default)]
    pub peerings: OrderedMap<RawPeering>,
    #[serde(default)]
    pub subnets: OrderedMap<RawSubnet>,
    #[serde(default)]
    pub network_acls: OrderedMap<RawNetworkAcl>,
    #[serde(default)]
    pub route_tables: OrderedMap<RawRouteTable>,
    #[serde(default)]
    pub load_balancers: OrderedMap<RawLoadBalancer>,
    #[serde(default)]
    pub target_groups: OrderedMap<RawTargetGroup>,
    #[serde(default)]
    pub endpoint_services: OrderedMap<RawEndpointService>,
    #[serde(default)]
    pub endpoints: OrderedMap<RawEndpoint>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSettings {
    pub unknown_address: Option<Spanned<RawAction>>,
    pub allow_arp: Option<bool>,
    pub allow_neighbor_discovery: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConntrack {
    pub max_entries: Option<Spanned<i64>>,
    pub when_full: Option<Spanned<String>>,
    pub tcp_established: Option<Spanned<i64>>,
    pub tcp_transitory: Option<Spanned<i64>>,
    pub udp: Option<Spanned<i64>>,
    pub udp_stream: Option<Spanned<i64>>,
    pub icmp: Option<Spanned<i64>>,
    pub other: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSecurityGroup {
    pub description: Option<String>,
    /// The group's name in its cloud (the model's `title`).
    pub name: Option<String>,
    pub vpc: Option<Spanned<String>>,
    pub intra_group: Option<Spanned<RawAction>>,
    #[serde(default)]
    pub ingress: Vec<Spanned<RawRule>>,
    #[serde(default)]
    pub egress: Vec<Spanned<RawRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub proto: Spanned<RawProto>,
    pub ports: Option<Spanned<RawPorts>>,
    pub icmp_type: Option<Spanned<i64>>,
    pub icmp_code: Option<Spanned<i64>>,
    pub from: Option<Spanned<AddrList>>,
    pub to: Option<Spanned<AddrList>>,
    pub source_ports: Option<Spanned<RawPorts>>,
    pub local: Option<Spanned<String>>,
    pub action: Option<Spanned<RawAction>>,
    pub priority: Option<Spanned<i64>>,
    pub description: Option<String>,
    /// The cloud's id of the rule (`sgr-…`).
    pub id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInterface {
    pub addresses: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    pub security_groups: Vec<Spanned<String>>,
    pub zone: Option<Spanned<String>>,
    pub description: Option<String>,
    // SPEC §6: where it sits in the topology.
    pub subnet: Option<Spanned<String>>,
    pub vpc: Option<Spanned<String>>,
    pub instance: Option<String>,
    /// The Name tag (the model's `place.title`).
    pub name: Option<String>,
    pub kind: Option<Spanned<String>>,
    #[serde(default)]
    pub public_addresses: Vec<Spanned<String>>,
    pub tracking: Option<Spanned<String>>,
    pub timeouts: Option<RawTimeouts>,
    pub conntrack_max: Option<Spanned<i64>>,
    pub az: Option<String>,
}

/// A TOML table read in file order, with the position of each key.
#[derive(Debug)]
pub struct OrderedMap<V>(pub Vec<(Spanned<String>, V)>);

impl<V> Default for OrderedMap<V> {
    fn default() -> Self {
        OrderedMap(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for OrderedMap<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MapVisitor<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for MapVisitor<V> {
            type Value = OrderedMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a table")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = map.next_key::<Spanned<String>>()? {
                    out.push((k, map.next_value::<V>()?));
                }
                Ok(OrderedMap(out))
            }
        }
        d.deserialize_map(MapVisitor(PhantomData))
    }
}

/// An action as the file spells it (see [`dialect::action`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawAction(pub Action);

impl<'de> Deserialize<'de> for RawAction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        dialect::action(&s)
            .map(RawAction)
            .map_err(de::Error::custom)
    }
}

/// A protocol as the file spells it: a name, `all`/`-1`, or a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawProto(pub ProtoMatch);

impl<'de> Deserialize<'de> for RawProto {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ProtoVisitor;
        impl Visitor<'_> for ProtoVisitor {
            type Value = RawProto;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a protocol: tcp, udp, icmp, icmpv6, all (or -1) or a number 0-255")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawProto, E> {
                dialect::proto(v).map(RawProto).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawProto, E> {
                dialect::proto_number(v).map(RawProto).map_err(E::custom)
            }
        }
        d.deserialize_any(ProtoVisitor)
    }
}

/// Ports as written: `"80"`, `80`, `"80-90"`, `"80/90"`, `"-1/-1"`,
/// `"80,443"`, or a list of these; each range as written, never none.
#[derive(Debug, Clone)]
pub struct RawPorts(pub Vec<PortRange>);

impl<'de> Deserialize<'de> for RawPorts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct PortsVisitor;
        impl<'de> Visitor<'de> for PortsVisitor {
            type Value = RawPorts;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("ports: \"80\", \"80-90\", \"80/90\", \"-1/-1\" or a list of these")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawPorts, E> {
                let mut out = Vec::new();
                dialect::port_list(v, &mut out).map_err(E::custom)?;
                Ok(RawPorts(out))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawPorts, E> {
                let r = dialect::port_number(v).map_err(E::custom)?;
                Ok(RawPorts(vec![r]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawPorts, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element::<PortItem>()? {
                    match item {
                        PortItem::Str(s) => dialect::port_list(&s, &mut out),
                        PortItem::Int(i) => dialect::port_number(i).map(|r| out.push(r)),
                    }
                    .map_err(de::Error::custom)?;
                }
                if out.is_empty() {
                    return Err(de::Error::custom(
                        "an empty port list matches nothing: leave `ports` out for all ports",
                    ));
                }
                Ok(RawPorts(out))
            }
        }
        d.deserialize_any(PortsVisitor)
    }
}

enum PortItem {
    Str(String),
    Int(i64),
}

impl<'de> Deserialize<'de> for PortItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = PortItem;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a port or port range")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PortItem, E> {
                Ok(PortItem::Str(v.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PortItem, E> {
                Ok(PortItem::Int(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// `from`/`to`: one string or a list of strings, each with its position when
/// written in a list (a lone string takes the position of the whole value).
#[derive(Debug)]
pub struct AddrList(pub Vec<(String, Option<Range<usize>>)>);

impl<'de> Deserialize<'de> for AddrList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AddrList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an address, CIDR, sg-… or pl-… name, or a list of these")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<AddrList, E> {
                Ok(AddrList(vec![(v.to_owned(), None)]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<AddrList, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<Spanned<String>>()? {
                    let span = s.span();
                    out.push((s.into_inner(), Some(span)));
                }
                if out.is_empty() {
                    return Err(de::Error::custom("an empty list matches nothing"));
                }
                Ok(AddrList(out))
            }
        }
        d.deserialize_any(V)
    }
}
