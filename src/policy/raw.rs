//! The policy file as written: serde structs that mirror the TOML, keep the
//! source position of every value that a later check may complain about, and
//! reject unknown keys. Turning this into a [`super::Policy`] is `compile.rs`'s job.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Range;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

use super::types::{Action, PortRange, PortSet, ProtoMatch};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    #[serde(default)]
    pub settings: RawSettings,
    #[serde(default)]
    pub conntrack: RawConntrack,
    #[serde(default)]
    pub prefix_lists: OrderedMap<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    pub security_groups: OrderedMap<RawSecurityGroup>,
    #[serde(default)]
    pub interfaces: OrderedMap<RawInterface>,
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
    pub intra_group: Option<Spanned<RawAction>>,
    #[serde(default)]
    pub ingress: Vec<Spanned<RawRule>>,
    #[serde(default)]
    pub egress: Vec<Spanned<RawRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub proto: Spanned<ProtoMatch>,
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
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInterface {
    pub addresses: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    pub security_groups: Vec<Spanned<String>>,
    pub zone: Option<Spanned<String>>,
    pub description: Option<String>,
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

/// `allow`/`accept` or `deny`/`drop`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawAction(pub Action);

impl<'de> Deserialize<'de> for RawAction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse::<Action>()
            .map(RawAction)
            .map_err(de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for ProtoMatch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ProtoVisitor;
        impl Visitor<'_> for ProtoVisitor {
            type Value = ProtoMatch;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a protocol: tcp, udp, icmp, icmpv6, all (or -1) or a number 0-255")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ProtoMatch, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ProtoMatch, E> {
                match v {
                    -1 => Ok(ProtoMatch::Any),
                    0..=255 => Ok(ProtoMatch::Is(super::types::IpProto(v as u8))),
                    _ => Err(E::custom(format!(
                        "protocol number {v} is out of range: expected 0-255, or -1 for all"
                    ))),
                }
            }
        }
        d.deserialize_any(ProtoVisitor)
    }
}

/// Ports as written: `"80"`, `80`, `"80-90"`, `"80/90"`, `"-1/-1"`, `"80,443"`, or a list.
#[derive(Debug, Clone)]
pub struct RawPorts {
    pub set: PortSet,
    /// Some entry was written as port 0 alone (`check` warns).
    pub has_zero: bool,
    /// Written as `-1/-1` (the one form allowed on protocols without ports).
    pub all_form: bool,
}

impl<'de> Deserialize<'de> for RawPorts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct PortsVisitor;
        fn one(
            s: &str,
            out: &mut Vec<PortRange>,
            zero: &mut bool,
            all: &mut bool,
        ) -> Result<(), String> {
            for part in s.split(',') {
                let t = part.trim();
                let r: PortRange = t.parse()?;
                *zero |= r == PortRange { lo: 0, hi: 0 };
                *all &= t == "-1/-1" || t == "-1";
                out.push(r);
            }
            Ok(())
        }
        fn int(
            v: i64,
            out: &mut Vec<PortRange>,
            zero: &mut bool,
            all: &mut bool,
        ) -> Result<(), String> {
            match v {
                -1 => {
                    out.push(PortRange::ALL);
                    Ok(())
                }
                0..=65535 => {
                    *zero |= v == 0;
                    *all = false;
                    out.push(PortRange {
                        lo: v as u16,
                        hi: v as u16,
                    });
                    Ok(())
                }
                _ => Err(format!("port {v} is out of range: a port is 0-65535")),
            }
        }
        impl<'de> Visitor<'de> for PortsVisitor {
            type Value = RawPorts;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("ports: \"80\", \"80-90\", \"80/90\", \"-1/-1\" or a list of these")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawPorts, E> {
                let (mut out, mut zero, mut all) = (Vec::new(), false, true);
                one(v, &mut out, &mut zero, &mut all).map_err(E::custom)?;
                Ok(RawPorts {
                    set: PortSet::from_ranges(out),
                    has_zero: zero,
                    all_form: all,
                })
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawPorts, E> {
                let (mut out, mut zero, mut all) = (Vec::new(), false, true);
                int(v, &mut out, &mut zero, &mut all).map_err(E::custom)?;
                Ok(RawPorts {
                    set: PortSet::from_ranges(out),
                    has_zero: zero,
                    all_form: all,
                })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawPorts, A::Error> {
                let (mut out, mut zero, mut all) = (Vec::new(), false, true);
                while let Some(item) = seq.next_element::<PortItem>()? {
                    match item {
                        PortItem::Str(s) => one(&s, &mut out, &mut zero, &mut all),
                        PortItem::Int(i) => int(i, &mut out, &mut zero, &mut all),
                    }
                    .map_err(de::Error::custom)?;
                }
                if out.is_empty() {
                    return Err(de::Error::custom(
                        "an empty port list matches nothing: leave `ports` out for all ports",
                    ));
                }
                Ok(RawPorts {
                    set: PortSet::from_ranges(out),
                    has_zero: zero,
                    all_form: all,
                })
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
