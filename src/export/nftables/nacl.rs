//! Network ACLs (SPEC §9.1) in the kernel: a `prerouting` chain at priority
//! `raw` (-300), after defragmentation (-400) and before conntrack (-200),
//! so that it sees every packet, established and related ones included,
//! and a packet it drops never moves a connection's state.
//!
//! The subnet of an address is resolved here, once, exactly as the engine
//! resolves it ([`Nacls::subnet_of`]: the subnet the address's interface
//! names, else the subnet whose block holds it): the address space is cut
//! where any subnet block or interface address starts or ends, and each
//! piece takes the engine's answer for its first address. Pieces in a
//! subnet without an ACL are left out (nothing judges them, whichever way
//! they go). Then:
//!
//! - `nacl_src_v4` maps a source address to its subnet's chain
//!   (`nacl_from_SUBNET`), which accepts a packet whose destination is in
//!   the same subnet (not judged) and otherwise jumps to the ACL's egress
//!   chain (`nacl_eg_ACL`: allow entries `return`, deny entries and `*`
//!   drop);
//! - `nacl_dst_v4` maps a destination address straight to its ACL's
//!   ingress chain (`nacl_in_ACL`); a packet reaching it comes from another
//!   subnet or from none.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use super::text::{comment_text, l4_match, net_text};
use super::{fam_index, Family, Names};
use crate::policy::nacl::{AclEntry, AclId, Nacls, SubnetId};
use crate::policy::{Action, Direction, Policy, PortSet};

/// Why a policy's ACLs cannot be exported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the policy has network ACLs and {vpcs} VPCs: the kernel has one address space, and \
     which subnet an address is in depends on the VPC a packet is judged in; export a \
     policy with one VPC (its subnets and interfaces) instead"
)]
pub struct SpacedAcls {
    pub vpcs: usize,
}

/// What the ACL stage needs named before it is written.
pub(super) struct NaclStage {
    /// By subnet: the chain a source in it jumps to, and the sets of its
    /// addresses by family (`None`: no ACL, or no address of the family).
    from_chain: Vec<Option<String>>,
    subnet_sets: Vec<[Option<String>; 2]>,
    /// By subnet and family: the address pieces resolving to it.
    pieces: Vec<[Vec<(u128, u128)>; 2]>,
    /// By ACL: (egress chain, ingress chain), for the ACLs a subnet uses.
    acl_chains: Vec<Option<(String, String)>>,
}

/// The chain and map names of the stage, reserved before any other name.
pub(super) const RESERVED: [&str; 5] = [
    "nacl",
    "nacl_src_v4",
    "nacl_src_v6",
    "nacl_dst_v4",
    "nacl_dst_v6",
];

impl NaclStage {
    /// `None` when no subnet has an ACL.
    pub(super) fn new(p: &Policy, names: &mut Names) -> Result<Option<NaclStage>, SpacedAcls> {
        let Some(n) = p.nacls() else {
            return Ok(None);
        };
        if p.topology().spaced() {
            return Err(SpacedAcls {
                vpcs: p.topology().vpcs.len(),
            });
        }
        let subnets = n.subnet_acl.len();
        let mut pieces: Vec<[Vec<(u128, u128)>; 2]> = vec![Default::default(); subnets];
        for f in Family::BOTH {
            for (lo, hi, s) in resolve(p, n, f) {
                pieces[s as usize][fam_index(f)].push((lo, hi));
            }
        }
        let mut acl_chains = vec![None; n.acls.len()];
        let mut from_chain = vec![None; subnets];
        let mut subnet_sets = vec![[None, None]; subnets];
        for s in 0..subnets {
            let Some(a) = n.subnet_acl[s] else { continue };
            let name = p.subnet_name(s as SubnetId);
            from_chain[s] = Some(names.unique(&format!("nacl_from_{name}")));
            for f in Family::BOTH {
                if !pieces[s][fam_index(f)].is_empty() {
                    subnet_sets[s][fam_index(f)] =
                        Some(names.unique(&format!("nacl_{name}_{}", f.suffix())));
                }
            }
            let acl = &n.acls[a as usize].name;
            if acl_chains[a as usize].is_none() {
                acl_chains[a as usize] = Some((
                    names.unique(&format!("nacl_eg_{acl}")),
                    names.unique(&format!("nacl_in_{acl}")),
                ));
            }
        }
        Ok(Some(NaclStage {
            from_chain,
            subnet_sets,
            pieces,
            acl_chains,
        }))
    }

    pub(super) fn write(&self, p: &Policy, o: &mut String) {
        let n = p
            .nacls()
            .expect("a NACL stage is made for a policy with ACLs");
        let _ = writeln!(
            o,
            "\n\t# Network ACLs (stateless, every packet, before conntrack): the source"
        );
        let _ = writeln!(
            o,
            "\t# subnet's egress entries, then the destination subnet's ingress entries,"
        );
        let _ = writeln!(
            o,
            "\t# in rule-number order; nothing when both ends are in one subnet."
        );
        for (s, sets) in self.subnet_sets.iter().enumerate() {
            for f in Family::BOTH {
                let Some(name) = &sets[fam_index(f)] else {
                    continue;
                };
                let _ = writeln!(
                    o,
                    "\t# Addresses in {} ({}).",
                    comment_text(p.subnet_name(s as SubnetId)),
                    f.nfproto()
                );
                let elems: Vec<String> = self.pieces[s][fam_index(f)]
                    .iter()
                    .map(|&(lo, hi)| range_text(f, lo, hi))
                    .collect();
                let _ = writeln!(
                    o,
                    "\tset {name} {{\n\t\ttype {}\n\t\tflags interval\n\t\telements = {{ {} }}\n\t}}",
                    f.addr_type(),
                    elems.join(", ")
                );
            }
        }
        for (a, chains) in self.acl_chains.iter().enumerate() {
            let Some((eg, ing)) = chains else { continue };
            for (dir, chain) in [(Direction::Egress, eg), (Direction::Ingress, ing)] {
                self.write_acl_chain(n, a as AclId, dir, chain, o);
            }
        }
        for (s, chain) in self.from_chain.iter().enumerate() {
            let Some(chain) = chain else { continue };
            let acl = n.subnet_acl[s].expect("a from chain for subnets with an ACL");
            let (eg, _) = self.acl_chains[acl as usize].as_ref().expect("named");
            let name = comment_text(p.subnet_name(s as SubnetId));
            let _ = writeln!(o, "\n\t# Leaving {name}.");
            let _ = writeln!(o, "\tchain {chain} {{");
            for f in Family::BOTH {
                if let Some(set) = &self.subnet_sets[s][fam_index(f)] {
                    let _ = writeln!(
                        o,
                        "\t\t{} daddr @{set} accept comment \"inside {name}: not judged\"",
                        f.ip()
                    );
                }
            }
            let _ = writeln!(o, "\t\tjump {eg}");
            let _ = writeln!(o, "\t}}");
        }
        for (base, dir) in [
            ("nacl_src", Direction::Egress),
            ("nacl_dst", Direction::Ingress),
        ] {
            for f in Family::BOTH {
                let mut elems: Vec<(u128, String)> = Vec::new();
                for (s, by_family) in self.pieces.iter().enumerate() {
                    let Some(acl) = n.subnet_acl[s] else { continue };
                    let chain = match dir {
                        Direction::Egress => self.from_chain[s].as_ref(),
                        Direction::Ingress => self.acl_chains[acl as usize].as_ref().map(|c| &c.1),
                    }
                    .expect("named");
                    for &(lo, hi) in &by_family[fam_index(f)] {
                        elems.push((lo, format!("{} : jump {chain}", range_text(f, lo, hi))));
                    }
                }
                elems.sort();
                let _ = writeln!(o, "\n\tmap {base}_{} {{", f.suffix());
                let _ = writeln!(o, "\t\ttype {} : verdict", f.addr_type());
                let _ = writeln!(o, "\t\tflags interval");
                if !elems.is_empty() {
                    let list: Vec<&str> = elems.iter().map(|e| e.1.as_str()).collect();
                    let _ = writeln!(
                        o,
                        "\t\telements = {{\n\t\t\t{}\n\t\t}}",
                        list.join(",\n\t\t\t")
                    );
                }
                let _ = writeln!(o, "\t}}");
            }
        }
        let _ = writeln!(o, "\n\tchain nacl {{");
        let _ = writeln!(
            o,
            "\t\ttype filter hook prerouting priority raw; policy accept;"
        );
        let _ = writeln!(
            o,
            "\t\tfib daddr type local accept comment \"to this host: not filtered\""
        );
        if p.settings().allow_neighbor_discovery {
            let _ = writeln!(
                o,
                "\t\ticmpv6 type 133-137 accept comment \"neighbor-discovery\""
            );
        }
        let _ = writeln!(
            o,
            "\t\t# The source subnet's egress entries: allow returns here, deny drops."
        );
        let _ = writeln!(
            o,
            "\t\tip saddr vmap @nacl_src_v4\n\t\tip6 saddr vmap @nacl_src_v6"
        );
        let _ = writeln!(
            o,
            "\t\t# The destination subnet's ingress entries: allow returns here, deny drops."
        );
        let _ = writeln!(
            o,
            "\t\tip daddr vmap @nacl_dst_v4\n\t\tip6 daddr vmap @nacl_dst_v6"
        );
        let _ = writeln!(o, "\t}}");
    }

    fn write_acl_chain(&self, n: &Nacls, a: AclId, dir: Direction, chain: &str, o: &mut String) {
        let acl = &n.acls[a as usize];
        let name = comment_text(&acl.name);
        let _ = writeln!(
            o,
            "\n\t# {name} {dir}, in rule-number order: allow returns, deny drops."
        );
        let _ = writeln!(o, "\tchain {chain} {{");
        for e in acl.entries(dir) {
            if let Some(m) = entry_match(e, dir) {
                let verdict = match e.action {
                    Action::Allow => "return",
                    Action::Deny => "drop",
                };
                let _ = writeln!(
                    o,
                    "\t\t{m} counter {verdict} comment \"{name}/{dir}/{}\"",
                    e.number
                );
            }
        }
        let _ = writeln!(o, "\t\tcounter drop comment \"{name}/{dir}/*\"");
        let _ = writeln!(o, "\t}}");
    }
}

/// The match of one entry: the remote block (the destination on egress,
/// the source on ingress), then protocol, destination port and ICMP type
/// and code. `None` when it can match nothing.
fn entry_match(e: &AclEntry, dir: Direction) -> Option<String> {
    let f = Family::of(&e.remote);
    let l4 = l4_match(
        e.proto,
        f,
        &e.ports,
        &PortSet::all(),
        e.icmp_type,
        e.icmp_code,
        false,
    )?;
    let remote_dir = match dir {
        Direction::Egress => "daddr",
        Direction::Ingress => "saddr",
    };
    let mut parts = Vec::new();
    if e.remote.prefix_len() == 0 {
        parts.push(format!("meta nfproto {}", f.nfproto()));
    } else {
        parts.push(format!(
            "{} {remote_dir} {}",
            f.ip(),
            net_text(&e.remote.trunc())
        ));
    }
    parts.extend(l4);
    Some(parts.join(" "))
}

fn key(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn addr(f: Family, k: u128) -> IpAddr {
    match f {
        Family::V4 => IpAddr::V4(Ipv4Addr::from(k as u32)),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(k)),
    }
}

/// `lo-hi`, or the block it is when it is one.
fn range_text(f: Family, lo: u128, hi: u128) -> String {
    let size = hi - lo;
    if size
        .checked_add(1)
        .is_some_and(|s| s.is_power_of_two() && lo % s == 0)
        || (lo == 0 && hi == u128::MAX)
    {
        let bits: u32 = match f {
            Family::V4 => 32,
            Family::V6 => 128,
        };
        let host_bits = 128 - (size.leading_zeros()).min(128);
        let prefix = (bits - host_bits) as u8;
        if let Ok(net) = IpNet::new(addr(f, lo), prefix) {
            return net_text(&net);
        }
    }
    format!("{}-{}", addr(f, lo), addr(f, hi))
}

/// The address pieces of family `f` and the subnet (with an ACL) each
/// resolves to, as the engine resolves it, sorted and merged.
fn resolve(p: &Policy, n: &Nacls, f: Family) -> Vec<(u128, u128, SubnetId)> {
    let last = match f {
        Family::V4 => u128::from(u32::MAX),
        Family::V6 => u128::MAX,
    };
    let mut cuts: Vec<u128> = vec![0];
    let mut cut = |net: &IpNet| {
        if Family::of(net) == f {
            let net = net.trunc();
            let (lo, hi) = (key(net.network()), key(net.broadcast()));
            cuts.push(lo);
            if hi < last {
                cuts.push(hi + 1);
            }
        }
    };
    for blocks in &n.subnet_blocks {
        blocks.iter().for_each(&mut cut);
    }
    for i in p.interfaces().iter().filter(|i| i.zone.is_none()) {
        i.addresses.iter().for_each(&mut cut);
    }
    cuts.sort_unstable();
    cuts.dedup();
    let mut out: Vec<(u128, u128, SubnetId)> = Vec::new();
    for (i, &lo) in cuts.iter().enumerate() {
        let hi = cuts.get(i + 1).map_or(last, |next| next - 1);
        let Some(s) = n.subnet_of(p, addr(f, lo), None) else {
            continue;
        };
        if n.subnet_acl[s as usize].is_none() {
            continue;
        }
        match out.last_mut() {
            Some(prev) if prev.2 == s && prev.1 + 1 == lo => prev.1 = hi,
            _ => out.push((lo, hi, s)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_written_as_blocks_where_they_are_one() {
        assert_eq!(
            range_text(Family::V4, 0x0a00_0100, 0x0a00_01ff),
            "10.0.1.0/24"
        );
        assert_eq!(
            range_text(Family::V4, 0x0a00_010a, 0x0a00_010a),
            "10.0.1.10"
        );
        assert_eq!(
            range_text(Family::V4, 0x0a00_0100, 0x0a00_0109),
            "10.0.1.0-10.0.1.9"
        );
        assert_eq!(
            range_text(Family::V4, 0x0a00_010b, 0x0a00_01ff),
            "10.0.1.11-10.0.1.255"
        );
        assert_eq!(range_text(Family::V4, 0, u128::from(u32::MAX)), "0.0.0.0/0");
        assert_eq!(range_text(Family::V6, 0, u128::MAX), "::/0");
    }
}
