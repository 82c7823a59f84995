//! How the ruleset spells sgplane's values: protocol, port and ICMP
//! matches, address blocks, comments and sets.

use std::fmt::Write as _;

use ipnet::IpNet;

use super::Family;
use crate::policy::{IpProto, PortSet, ProtoMatch};

/// The protocol, port and ICMP matches, or `None` when the rule cannot match
/// this family at all. `reversed`: the ports are matched on a packet going
/// the other way (`ports` against its source port, `source_ports` against
/// its destination port).
pub(super) fn l4_match(
    proto: ProtoMatch,
    f: Family,
    ports: &PortSet,
    source_ports: &PortSet,
    icmp_type: Option<u8>,
    icmp_code: Option<u8>,
    reversed: bool,
) -> Option<Vec<String>> {
    let (sport, dport) = if reversed {
        ("dport", "sport")
    } else {
        ("sport", "dport")
    };
    let mut m = Vec::new();
    let ProtoMatch::Is(p) = proto else {
        return Some(m);
    };
    let name = match p {
        IpProto::TCP => Some("tcp"),
        IpProto::UDP => Some("udp"),
        _ => None,
    };
    match name {
        Some(n) => {
            if ports.is_all() && source_ports.is_all() {
                m.push(format!("meta l4proto {n}"));
            }
            if !source_ports.is_all() {
                m.push(format!("{n} {sport} {}", ports_text(source_ports)));
            }
            if !ports.is_all() {
                m.push(format!("{n} {dport} {}", ports_text(ports)));
            }
        }
        None => {
            // `icmp type` implies IPv4 and `icmpv6 type` IPv6 in nftables; any
            // other pairing (ICMP in IPv6, say) is matched on the raw header.
            let native = match (p, f) {
                (IpProto::ICMP, Family::V4) => Some("icmp"),
                (IpProto::ICMPV6, Family::V6) => Some("icmpv6"),
                _ => None,
            };
            match (native, icmp_type, icmp_code) {
                (_, None, None) => m.push(format!("meta l4proto {}", proto_text(p))),
                (Some(n), t, c) => {
                    if let Some(t) = t {
                        m.push(format!("{n} type {t}"));
                    }
                    if let Some(c) = c {
                        m.push(format!("{n} code {c}"));
                    }
                }
                (None, t, c) => {
                    m.push(format!("meta l4proto {}", proto_text(p)));
                    if let Some(t) = t {
                        m.push(format!("@th,0,8 {t}"));
                    }
                    if let Some(c) = c {
                        m.push(format!("@th,8,8 {c}"));
                    }
                }
            }
        }
    }
    Some(m)
}

pub(super) fn proto_text(p: IpProto) -> String {
    match p {
        IpProto::TCP => "tcp".into(),
        IpProto::UDP => "udp".into(),
        IpProto::ICMP => "icmp".into(),
        IpProto::ICMPV6 => "ipv6-icmp".into(),
        IpProto(n) => n.to_string(),
    }
}

pub(super) fn ports_text(s: &PortSet) -> String {
    let r = s.ranges();
    if r.len() == 1 {
        return r[0].to_string();
    }
    format!(
        "{{ {} }}",
        r.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// A block as nftables writes it: a host address bare, else CIDR.
pub(super) fn net_text(n: &IpNet) -> String {
    if n.prefix_len() == n.max_prefix_len() {
        n.addr().to_string()
    } else {
        n.to_string()
    }
}

/// Text safe inside an nftables comment string (no quotes, no line breaks,
/// at most 120 bytes).
pub(super) fn comment_text(s: &str) -> String {
    let mut t: String = s
        .chars()
        .map(|c| {
            if c == '"' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    if t.len() > 120 {
        let mut cut = 117;
        while !t.is_char_boundary(cut) {
            cut -= 1;
        }
        t.truncate(cut);
        t.push_str("...");
    }
    t
}

pub(super) fn write_set(o: &mut String, name: &str, f: Family, nets: &[IpNet]) {
    let _ = writeln!(
        o,
        "\tset {name} {{\n\t\ttype {}\n\t\tflags interval",
        f.addr_type()
    );
    if !nets.is_empty() {
        let list: Vec<String> = nets.iter().map(net_text).collect();
        let _ = writeln!(o, "\t\telements = {{ {} }}", list.join(", "));
    }
    let _ = writeln!(o, "\t}}");
}
