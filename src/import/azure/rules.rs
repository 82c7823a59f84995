//! An NSG's security rules as sgplane rules (SPEC §7's Azure traps).
//!
//! Inbound rules are the group's ingress, Outbound its egress, each with its
//! Azure priority (100-4096, the defaults 65000-65500): the smallest matching
//! priority decides, as in Azure. The remote end is the source of an inbound
//! rule and the destination of an outbound one; the other end is `local`,
//! which is one block, so a rule with several local prefixes becomes one
//! sgplane rule per prefix at the same priority. `Icmp` is ICMP for IPv4 and
//! ICMPv6 for IPv6; `*` with ports is TCP and UDP on those ports; `Esp` and
//! `Ah` are protocols 50 and 51. Without `defaultSecurityRules` in the input
//! Azure's six default rules are added.

use ipnet::IpNet;
use serde_json::{json, Value};

use super::resource::{key, Res};
use super::tags::{self, Prefix};
use super::Cx;
use crate::import::json::Node;
use crate::import::ImportError;
use crate::policy::model::{At, Origin, Remote, Rule, SecurityGroup};
use crate::policy::types::{Action, IpProto, PortRange, ProtoMatch};

/// The group of one NSG.
pub(super) fn group(cx: &mut Cx, k: &str, nsg: &Res) -> Result<SecurityGroup, ImportError> {
    let mut read = Vec::new();
    for r in nsg.array("securityRules")? {
        read.push(NsgRule::read(&Res::new(r))?);
    }
    let defaults = nsg.array("defaultSecurityRules")?;
    let built: Value;
    if defaults.is_empty() {
        built = default_rules();
        for r in Node::root(&built, "(Azure default rules)").items()? {
            read.push(NsgRule::read(&Res::new(r))?);
        }
    } else {
        for r in defaults {
            read.push(NsgRule::read(&Res::new(r))?);
        }
    }
    read.sort_by_key(|r| (r.inbound, r.priority.value));
    let mut g = SecurityGroup {
        name: cx.nsg_names[k].clone(),
        origin: nsg.node.origin(),
        description: Some(nsg.id()?.to_string()),
        title: Some(nsg.name()?.to_string()),
        ..SecurityGroup::default()
    };
    for r in &read {
        let out = convert(cx, k, r);
        match r.inbound {
            true => g.ingress.extend(out),
            false => g.egress.extend(out),
        }
    }
    Ok(g)
}

/// One Azure security rule as read.
struct NsgRule {
    origin: Origin,
    name: String,
    inbound: bool,
    priority: At<i64>,
    action: Action,
    protocol: At<String>,
    source: Vec<End>,
    destination: Vec<End>,
    source_ports: Option<At<Vec<PortRange>>>,
    destination_ports: Option<At<Vec<PortRange>>>,
    description: Option<String>,
}

/// One address of a rule's end: a prefix or an ASG (by id key).
enum End {
    Prefix(Prefix, Origin),
    Asg(String, Origin),
}

impl NsgRule {
    fn read(r: &Res) -> Result<NsgRule, ImportError> {
        let need = |k: &str| {
            r.str(k)?
                .ok_or_else(|| r.node.error(format!("`{k}` is missing")))
        };
        let name = r.name()?.to_string();
        let inbound = match need("direction")? {
            d if d.eq_ignore_ascii_case("inbound") => true,
            d if d.eq_ignore_ascii_case("outbound") => false,
            d => {
                return Err(at(r, "direction")
                    .error(format!("direction `{d}`: expected Inbound or Outbound")))
            }
        };
        let action = match need("access")? {
            a if a.eq_ignore_ascii_case("allow") => Action::Allow,
            a if a.eq_ignore_ascii_case("deny") => Action::Deny,
            a => return Err(at(r, "access").error(format!("access `{a}`: expected Allow or Deny"))),
        };
        let p = at(r, "priority");
        let priority = r
            .int("priority")?
            .ok_or_else(|| r.node.error("`priority` is missing"))?;
        let protocol = At::new(need("protocol")?.to_string(), at(r, "protocol").origin());
        Ok(NsgRule {
            origin: r.node.origin(),
            name,
            inbound,
            priority: At::new(priority, p.origin()),
            action,
            protocol,
            source: ends(r, "source")?,
            destination: ends(r, "destination")?,
            source_ports: ports(r, "sourcePortRange")?,
            destination_ports: ports(r, "destinationPortRange")?,
            description: r.str("description")?.map(str::to_string),
        })
    }
}

/// A field that exists, or the rule itself for messages.
fn at<'a>(r: &Res<'a>, k: &str) -> Node<'a> {
    r.get(k).unwrap_or_else(|| r.node.clone())
}

/// `{side}AddressPrefix`, `…Prefixes` and `{side}ApplicationSecurityGroups`.
fn ends(r: &Res, side: &str) -> Result<Vec<End>, ImportError> {
    let mut out = Vec::new();
    let one = format!("{side}AddressPrefix");
    if let Some(s) = r.str(&one)? {
        out.push(End::Prefix(Prefix::parse(s), at(r, &one).origin()));
    }
    for (s, n) in r.strings(&format!("{side}AddressPrefixes"))? {
        out.push(End::Prefix(Prefix::parse(s), n.origin()));
    }
    for (id, n) in r.references(&format!("{side}ApplicationSecurityGroups"))? {
        out.push(End::Asg(key(id), n.origin()));
    }
    if out.is_empty() {
        return Err(r.node.error(format!(
            "the rule has no {side}: none of `{one}`, `{one}es`, `{side}ApplicationSecurityGroups`"
        )));
    }
    Ok(out)
}

/// `…PortRange` and `…PortRanges`: `*` (all), `80`, `8000-8010`. `None` is
/// all ports.
fn ports(r: &Res, one: &str) -> Result<Option<At<Vec<PortRange>>>, ImportError> {
    let mut written = Vec::new();
    if let Some(s) = r.str(one)? {
        written.push((s, at(r, one)));
    }
    written.extend(r.strings(&format!("{one}s"))?);
    let mut out = Vec::new();
    let mut origin = Origin::None;
    for (s, n) in written {
        origin = n.origin();
        let s = s.trim();
        if s == "*" {
            return Ok(None);
        }
        let range: PortRange = s
            .parse()
            .map_err(|e: crate::policy::types::PortError| n.error(e.to_string()))?;
        if range == PortRange::ALL {
            return Ok(None);
        }
        out.push(range);
    }
    Ok((!out.is_empty()).then(|| At::new(out, origin)))
}

/// The sgplane rules of one Azure rule.
fn convert(cx: &mut Cx, nsg: &str, r: &NsgRule) -> Vec<Rule> {
    let (remote_ends, local_ends) = match r.inbound {
        true => (&r.source, &r.destination),
        false => (&r.destination, &r.source),
    };
    let remotes = remote_side(cx, nsg, remote_ends);
    let Some(locals) = local_side(cx, r, local_ends) else {
        return Vec::new();
    };
    let protos = match protocols(cx, r) {
        Some(p) => p,
        None => return Vec::new(),
    };
    let mut out = Vec::new();
    let parts = locals.len();
    for (i, local) in locals.iter().enumerate() {
        for &(proto, family) in &protos {
            let remote: Vec<At<Remote>> = remotes
                .iter()
                .filter(|x| match (&x.value, family) {
                    (Remote::Net(n), Some(v6)) => matches!(n, IpNet::V6(_)) == v6,
                    _ => true,
                })
                .cloned()
                .collect();
            if remote.is_empty() {
                continue;
            }
            if let (Some(l), Some(v6)) = (local, family) {
                if matches!(l.value, IpNet::V6(_)) != v6 {
                    continue;
                }
            }
            let mut rule = Rule::new(proto, remote);
            rule.origin = r.origin.clone();
            rule.action = r.action;
            rule.priority = Some(r.priority.clone());
            rule.local = local.clone();
            if proto.has_ports() {
                rule.ports = r.destination_ports.clone();
                rule.source_ports = r.source_ports.clone();
            }
            rule.id = Some(r.name.clone());
            let mut d = r.description.clone().unwrap_or_default();
            if parts > 1 {
                if !d.is_empty() {
                    d.push(' ');
                }
                d.push_str(&format!(
                    "(Azure rule {}: local address {} of {parts})",
                    r.name,
                    i + 1
                ));
            }
            rule.description = (!d.is_empty()).then_some(d);
            out.push(rule);
        }
    }
    out
}

/// The remote end: blocks, prefix lists for service tags, ASG groups.
fn remote_side(cx: &mut Cx, nsg: &str, ends: &[End]) -> Vec<At<Remote>> {
    let mut out: Vec<At<Remote>> = Vec::new();
    let mut push = |r: Remote, o: &Origin| {
        if !out.iter().any(|x| x.value == r) {
            out.push(At::new(r, o.clone()));
        }
    };
    for e in ends {
        match e {
            End::Prefix(p, o) => match p {
                Prefix::Any => {
                    push(Remote::Net("0.0.0.0/0".parse().expect("a CIDR")), o);
                    push(Remote::Net("::/0".parse().expect("a CIDR")), o);
                }
                Prefix::Net(n) => push(Remote::Net(*n), o),
                Prefix::VirtualNetwork => push(Remote::PrefixList(cx.virtual_network(nsg, o)), o),
                Prefix::Internet => push(Remote::PrefixList(cx.internet(nsg, o)), o),
                Prefix::AzureLoadBalancer => push(Remote::PrefixList(cx.azure_load_balancer()), o),
                Prefix::Tag(t) => push(Remote::PrefixList(cx.service_tag(t)), o),
            },
            End::Asg(k, o) => {
                let name = cx
                    .asg_names
                    .get(k)
                    .cloned()
                    .unwrap_or_else(|| format!("sg-asg.{}", super::resource::last(k)));
                push(Remote::Sg(name), o);
            }
        }
    }
    out
}

/// The local end as the blocks the local address must be in (`None`: any),
/// or `None` when the rule can match no local address (said in a skip).
fn local_side(cx: &mut Cx, r: &NsgRule, ends: &[End]) -> Option<Vec<Option<At<IpNet>>>> {
    let mut out: Vec<At<IpNet>> = Vec::new();
    let mut push = |n: IpNet, o: &Origin| {
        if !out.iter().any(|x| x.value == n) {
            out.push(At::new(n, o.clone()));
        }
    };
    for e in ends {
        match e {
            // A NIC's address is always in its VNet.
            End::Prefix(Prefix::Any | Prefix::VirtualNetwork, _) => return Some(vec![None]),
            End::Prefix(Prefix::Net(n), o) => push(*n, o),
            End::Prefix(Prefix::AzureLoadBalancer, o) => {
                push(tags::AZURE_HOST.parse().expect("a CIDR"), o)
            }
            End::Prefix(Prefix::Internet, o) => cx.skip(
                &r.name,
                o.clone(),
                "`Internet` as the NIC's own end: an NSG sees the NIC's private address, never in Internet, so this part matches nothing",
            ),
            End::Prefix(Prefix::Tag(t), o) => cx.skip(
                &r.name,
                o.clone(),
                format!("service tag `{t}` as the NIC's own end: its addresses are not in the input, so this part matches nothing here"),
            ),
            End::Asg(k, o) => match cx.asg_members.get(k) {
                Some(m) => {
                    for n in m.clone() {
                        push(n, o)
                    }
                }
                None => cx.skip(
                    &r.name,
                    o.clone(),
                    format!("application security group `{}` has no NIC in the input: this part matches nothing", super::resource::last(k)),
                ),
            },
        }
    }
    if out.is_empty() {
        return None;
    }
    Some(out.into_iter().map(Some).collect())
}

/// The protocols of a rule, each with the address family it is limited to
/// (`Some(true)`: IPv6 only); `None` (and a skip) for a protocol Azure does
/// not have.
fn protocols(cx: &mut Cx, r: &NsgRule) -> Option<Vec<(ProtoMatch, Option<bool>)>> {
    let is = |p: u8| ProtoMatch::Is(IpProto(p));
    let ported = r.destination_ports.is_some() || r.source_ports.is_some();
    let p = r.protocol.value.trim().to_ascii_lowercase();
    let out = match p.as_str() {
        "tcp" => vec![(is(6), None)],
        "udp" => vec![(is(17), None)],
        "icmp" => vec![(is(1), Some(false)), (is(58), Some(true))],
        "esp" => vec![(is(50), None)],
        "ah" => vec![(is(51), None)],
        "*" | "any" | "all" if ported => vec![(is(6), None), (is(17), None)],
        "*" | "any" | "all" => vec![(ProtoMatch::Any, None)],
        other => {
            cx.skip(
                &r.name,
                r.protocol.origin.clone(),
                format!("protocol `{other}`: Azure has Tcp, Udp, Icmp, Esp, Ah and *"),
            );
            return None;
        }
    };
    if ported && matches!(p.as_str(), "icmp" | "esp" | "ah") {
        cx.skip(
            &r.name,
            r.protocol.origin.clone(),
            format!("port ranges on protocol {p}, which has no ports: they are left out"),
        );
    }
    Some(out)
}

/// Azure's default rules, as `az` prints them.
fn default_rules() -> Value {
    let rule = |name: &str, dir: &str, prio: u32, access: &str, src: &str, dst: &str, d: &str| {
        json!({
            "name": name, "direction": dir, "priority": prio, "access": access,
            "protocol": "*", "sourceAddressPrefix": src, "destinationAddressPrefix": dst,
            "sourcePortRange": "*", "destinationPortRange": "*", "description": d,
        })
    };
    json!([
        rule(
            "AllowVnetInBound",
            "Inbound",
            65000,
            "Allow",
            "VirtualNetwork",
            "VirtualNetwork",
            "Allow inbound traffic from all VMs in VNET"
        ),
        rule(
            "AllowAzureLoadBalancerInBound",
            "Inbound",
            65001,
            "Allow",
            "AzureLoadBalancer",
            "*",
            "Allow inbound traffic from azure load balancer"
        ),
        rule(
            "DenyAllInBound",
            "Inbound",
            65500,
            "Deny",
            "*",
            "*",
            "Deny all inbound traffic"
        ),
        rule(
            "AllowVnetOutBound",
            "Outbound",
            65000,
            "Allow",
            "VirtualNetwork",
            "VirtualNetwork",
            "Allow outbound traffic from all VMs to all VMs in VNET"
        ),
        rule(
            "AllowInternetOutBound",
            "Outbound",
            65001,
            "Allow",
            "*",
            "Internet",
            "Allow outbound traffic from all VMs to Internet"
        ),
        rule(
            "DenyAllOutBound",
            "Outbound",
            65500,
            "Deny",
            "*",
            "*",
            "Deny all outbound traffic"
        ),
    ])
}
