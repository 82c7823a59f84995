//! `sgplane export nftables`: the same policy as an nftables ruleset, for a
//! Linux box that forwards between the interfaces (a router, or a bridge with
//! `br_netfilter`).
//!
//! The ruleset is one table, `inet NAME`:
//!
//! - sets of every SG's members and every prefix list (`sg-web_v4`,
//!   `pl-office_v6`), and of every interface's addresses (`interfaces_v4`);
//! - a chain per interface and direction (`eg_NAME`, `in_NAME`) holding its
//!   rules in decision order (priority, deny before allow, file order), each
//!   with a counter and the rule's name as comment, ending in `drop` (`no-rule`);
//! - verdict maps from an address to its interface's chain (`egress_v4`, …);
//! - the `forward` chain (policy drop): `ct state established,related accept`
//!   (except for the ICMP request/reply pairs sgplane does not track),
//!   `ct state invalid drop` (except ICMP, which sgplane judges by the rules
//!   where Linux finds it invalid), neighbour discovery per the settings, then
//!   "both must allow" in two stages: the source's egress chain, whose allow
//!   rules `return` to `forward`, then the destination's ingress chain, whose
//!   allow rules `accept`; a packet whose destination is no interface and
//!   whose source passed its egress chain is accepted; one whose two ends
//!   are no interface gets `unknown_address`.
//! - where a subnet has groups of its own (Azure's subnet NSG, SPEC §9.2),
//!   each of its interfaces gets two more chains, `egs_NAME` and `ins_NAME`:
//!   leaving, the interface's egress chain's allow rules `goto egs_NAME` (the
//!   subnet's rules, whose allows `return`); entering, the ingress map
//!   jumps to `ins_NAME` (the subnet's rules first), whose allows `goto
//!   in_NAME` (the interface's own). One conntrack entry covers both.
//!
//! What has no kernel counterpart is said in the ruleset's header comment:
//! ARP (not in the `inet` family), zones (only zoneless interfaces are
//! exported: the kernel sees traffic from no GWLB endpoint, as `sgplane run`
//! does), conntrack timeouts and table size (sysctls), GENEVE decapsulation.

use std::collections::HashSet;
use std::fmt::Write as _;

use ipnet::IpNet;

use crate::policy::{Action, Direction, IfaceId, Policy, Remote, RuleId, Verdict};

mod nacl;
mod text;
mod untracked;

use nacl::NaclStage;
pub use nacl::SpacedAcls;
use text::{comment_text, l4_match, net_text, write_set};
use untracked::UntrackedStage;
pub use untracked::{may_untrack, ALWAYS_TRACKED_KINDS};

/// IPv4 or IPv6, as nftables spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

impl Family {
    const BOTH: [Family; 2] = [Family::V4, Family::V6];

    fn of(n: &IpNet) -> Family {
        match n {
            IpNet::V4(_) => Family::V4,
            IpNet::V6(_) => Family::V6,
        }
    }

    /// The address expression prefix: `ip` or `ip6`.
    fn ip(self) -> &'static str {
        match self {
            Family::V4 => "ip",
            Family::V6 => "ip6",
        }
    }

    fn addr_type(self) -> &'static str {
        match self {
            Family::V4 => "ipv4_addr",
            Family::V6 => "ipv6_addr",
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Family::V4 => "v4",
            Family::V6 => "v6",
        }
    }

    fn nfproto(self) -> &'static str {
        match self {
            Family::V4 => "ipv4",
            Family::V6 => "ipv6",
        }
    }
}

/// A table name nftables would not take bare.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "table name `{0}` is not a plain nftables identifier: use a letter, then letters, digits, _ or - (at most 64)"
)]
pub struct BadTableName(pub String);

/// Why a policy cannot be exported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    BadTableName(#[from] BadTableName),
    #[error(transparent)]
    SpacedAcls(#[from] SpacedAcls),
}

/// The ruleset text for `nft -f`.
pub fn ruleset(policy: &Policy, table: &str) -> Result<String, Error> {
    check_name(table)?;
    Ok(Export::new(policy)?.write(table))
}

/// nftables identifiers: a letter, then letters, digits, `_` and `-`.
fn check_name(table: &str) -> Result<(), BadTableName> {
    let ok = table.len() <= 64
        && table
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
        && table
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(BadTableName(table.to_string()))
    }
}

/// Names chosen for the ruleset's sets and chains, unique and safe to write bare.
struct Names {
    used: HashSet<String>,
}

impl Names {
    fn unique(&mut self, wanted: &str) -> String {
        let mut base: String = wanted
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if !base.starts_with(|c: char| c.is_ascii_alphabetic()) {
            base.insert_str(0, "x_");
        }
        base.truncate(200);
        let mut name = base.clone();
        let mut n = 2;
        while !self.used.insert(name.clone()) {
            name = format!("{base}_{n}");
            n += 1;
        }
        name
    }
}

/// One chain of an interface's layer: its direction, name, groups (for
/// the comment), an allow rule's verdict, its rules, and the words the
/// final drop's comment adds for the subnet layer.
struct LayerChain<'a>(Direction, &'a str, String, String, &'a [RuleId], String);

/// Everything named before the text is written.
struct Export<'a> {
    policy: &'a Policy,
    /// The interfaces exported (zoneless ones) and those left out.
    ifaces: Vec<IfaceId>,
    zoned: Vec<IfaceId>,
    /// Chain names by interface id: (egress, ingress).
    chains: Vec<Option<(String, String)>>,
    /// The subnet layer's chains (SPEC §9.2) by interface id: (egress,
    /// ingress), for interfaces whose subnet has groups.
    subnet_chains: Vec<Option<(String, String)>>,
    /// Set names of SG members and prefix lists, by id and family (None: empty).
    sg_sets: Vec<[Option<String>; 2]>,
    pl_sets: Vec<[Option<String>; 2]>,
    sg_members: Vec<[Vec<IpNet>; 2]>,
    pl_entries: Vec<[Vec<IpNet>; 2]>,
    /// The network ACLs' stage, when a subnet has an ACL.
    nacl: Option<NaclStage>,
    /// The `notrack` stage, when an interface may leave flows untracked.
    untracked: Option<UntrackedStage>,
}

fn fam_index(f: Family) -> usize {
    match f {
        Family::V4 => 0,
        Family::V6 => 1,
    }
}

/// Split by family, with blocks inside other blocks removed (two CIDR blocks
/// are nested or disjoint, so what is left never overlaps, as interval sets
/// require).
fn by_family(nets: impl IntoIterator<Item = IpNet>) -> [Vec<IpNet>; 2] {
    let mut out: [Vec<IpNet>; 2] = Default::default();
    for n in nets {
        out[fam_index(Family::of(&n))].push(n.trunc());
    }
    for v in &mut out {
        v.sort_by_key(|n| (n.network(), n.prefix_len()));
        let mut kept: Vec<IpNet> = Vec::with_capacity(v.len());
        for n in v.drain(..) {
            if !kept.last().is_some_and(|k| k.contains(&n)) {
                kept.push(n);
            }
        }
        *v = kept;
    }
    out
}

impl<'a> Export<'a> {
    fn new(policy: &'a Policy) -> Result<Export<'a>, SpacedAcls> {
        let mut names = Names {
            used: [
                "forward",
                "interfaces_v4",
                "interfaces_v6",
                "egress_v4",
                "egress_v6",
                "ingress_v4",
                "ingress_v6",
            ]
            .iter()
            .chain(&nacl::RESERVED)
            .chain(&untracked::RESERVED)
            .map(|s| s.to_string())
            .collect(),
        };
        let (ifaces, zoned): (Vec<IfaceId>, Vec<IfaceId>) = (0..policy.interfaces().len()
            as IfaceId)
            .partition(|&i| policy.interface(i).zone.is_none());
        let mut chains = vec![None; policy.interfaces().len()];
        let mut subnet_chains = vec![None; policy.interfaces().len()];
        for &i in &ifaces {
            let n = &policy.interface(i).name;
            chains[i as usize] = Some((
                names.unique(&format!("eg_{n}")),
                names.unique(&format!("in_{n}")),
            ));
        }
        for &i in &ifaces {
            if policy.interface(i).subnet_policy_set.is_some() {
                let n = &policy.interface(i).name;
                subnet_chains[i as usize] = Some((
                    names.unique(&format!("egs_{n}")),
                    names.unique(&format!("ins_{n}")),
                ));
            }
        }
        let sg_members: Vec<[Vec<IpNet>; 2]> = policy
            .security_groups()
            .iter()
            .map(|sg| {
                by_family(
                    sg.members
                        .iter()
                        .filter(|m| m.zone.is_none())
                        .map(|m| m.net),
                )
            })
            .collect();
        let pl_entries: Vec<[Vec<IpNet>; 2]> = policy
            .prefix_lists()
            .iter()
            .map(|pl| by_family(pl.entries.iter().copied()))
            .collect();
        let mut set_names = |base: &str, nets: &[Vec<IpNet>; 2]| -> [Option<String>; 2] {
            Family::BOTH.map(|f| {
                (!nets[fam_index(f)].is_empty())
                    .then(|| names.unique(&format!("{base}_{}", f.suffix())))
            })
        };
        let sg_sets = policy
            .security_groups()
            .iter()
            .zip(&sg_members)
            .map(|(sg, m)| set_names(&sg.name, m))
            .collect();
        let pl_sets = policy
            .prefix_lists()
            .iter()
            .zip(&pl_entries)
            .map(|(pl, e)| set_names(&pl.name, e))
            .collect();
        let nacl = NaclStage::new(policy, &mut names)?;
        let untracked = UntrackedStage::new(policy, &ifaces, &mut names);
        Ok(Export {
            policy,
            ifaces,
            zoned,
            chains,
            subnet_chains,
            sg_sets,
            pl_sets,
            sg_members,
            pl_entries,
            nacl,
            untracked,
        })
    }

    fn write(&self, table: &str) -> String {
        let p = self.policy;
        let mut o = String::new();
        self.header(&mut o, table);
        let _ = writeln!(
            o,
            "table inet {table}\ndelete table inet {table}\n\ntable inet {table} {{"
        );

        // Sets.
        let _ = writeln!(
            o,
            "\t# Addresses of every interface sgplane knows (zoneless ones)."
        );
        let iface_nets = by_family(
            self.ifaces
                .iter()
                .flat_map(|&i| p.interface(i).addresses.iter().copied()),
        );
        for f in Family::BOTH {
            write_set(
                &mut o,
                &format!("interfaces_{}", f.suffix()),
                f,
                &iface_nets[fam_index(f)],
            );
        }
        for (i, (sg, names)) in p.security_groups().iter().zip(&self.sg_sets).enumerate() {
            for f in Family::BOTH {
                if let Some(n) = &names[fam_index(f)] {
                    let _ = writeln!(
                        o,
                        "\t# Members of {} ({}).",
                        comment_text(&sg.name),
                        f.nfproto()
                    );
                    write_set(&mut o, n, f, &self.sg_members[i][fam_index(f)]);
                }
            }
        }
        for (i, (pl, names)) in p.prefix_lists().iter().zip(&self.pl_sets).enumerate() {
            for f in Family::BOTH {
                if let Some(n) = &names[fam_index(f)] {
                    let _ = writeln!(
                        o,
                        "\t# Prefix list {} ({}).",
                        comment_text(&pl.name),
                        f.nfproto()
                    );
                    write_set(&mut o, n, f, &self.pl_entries[i][fam_index(f)]);
                }
            }
        }

        // Per-interface chains.
        for &i in &self.ifaces {
            self.write_interface_chains(&mut o, i);
        }

        // Address -> chain maps.
        for (dir, base) in [
            (Direction::Egress, "egress"),
            (Direction::Ingress, "ingress"),
        ] {
            for f in Family::BOTH {
                let mut elems: Vec<(IpNet, &str)> = Vec::new();
                for &i in &self.ifaces {
                    let (eg, ing) = self.chains[i as usize].as_ref().expect("named");
                    // Entering, the subnet layer's chain comes first.
                    let ing = self.subnet_chains[i as usize]
                        .as_ref()
                        .map_or(ing, |c| &c.1);
                    let chain = if dir == Direction::Egress { eg } else { ing };
                    for a in &p.interface(i).addresses {
                        if Family::of(a) == f {
                            elems.push((a.trunc(), chain.as_str()));
                        }
                    }
                }
                elems.sort_by_key(|(n, _)| (n.network(), n.prefix_len()));
                let _ = writeln!(o, "\n\tmap {base}_{} {{", f.suffix());
                let _ = writeln!(o, "\t\ttype {} : verdict", f.addr_type());
                let _ = writeln!(o, "\t\tflags interval");
                if !elems.is_empty() {
                    let list: Vec<String> = elems
                        .iter()
                        .map(|(n, c)| format!("{} : jump {c}", net_text(n)))
                        .collect();
                    let _ = writeln!(
                        o,
                        "\t\telements = {{\n\t\t\t{}\n\t\t}}",
                        list.join(",\n\t\t\t")
                    );
                }
                let _ = writeln!(o, "\t}}");
            }
        }

        // The stages ahead of conntrack.
        if let Some(n) = &self.nacl {
            n.write(p, &mut o);
        }
        if let Some(u) = &self.untracked {
            u.write(self, &mut o);
        }

        // The forward hook.
        let s = p.settings();
        let _ = writeln!(o, "\n\tchain forward {{");
        let _ = writeln!(
            o,
            "\t\ttype filter hook forward priority filter; policy drop;"
        );
        // sgplane tracks ICMP echo only: the other request/reply pairs Linux
        // tracks (timestamp, information, address mask; IPv6 node
        // information) are judged by the rules in both directions, and ICMP
        // that Linux finds invalid (types it cannot track, echo replies and
        // errors about no tracked flow) by the rules too.
        let _ = writeln!(
            o,
            "\t\tct state established,related meta l4proto != {{ icmp, ipv6-icmp }} counter accept comment \"established, related\""
        );
        let _ = writeln!(
            o,
            "\t\tct state established,related icmp type != {{ 13-18 }} counter accept comment \"established, related\""
        );
        let _ = writeln!(
            o,
            "\t\tct state established,related icmpv6 type != {{ 139, 140 }} counter accept comment \"established, related\""
        );
        if s.allow_neighbor_discovery {
            let _ = writeln!(
                o,
                "\t\ticmpv6 type 133-137 counter accept comment \"neighbor-discovery\""
            );
        }
        let _ = writeln!(
            o,
            "\t\tct state invalid meta l4proto != {{ icmp, ipv6-icmp }} counter drop comment \"invalid\""
        );
        let _ = writeln!(
            o,
            "\t\t# The source's egress rules: allow returns here, deny drops."
        );
        let _ = writeln!(
            o,
            "\t\tip saddr vmap @egress_v4\n\t\tip6 saddr vmap @egress_v6"
        );
        let _ = writeln!(
            o,
            "\t\t# The destination's ingress rules: allow accepts, deny drops."
        );
        let _ = writeln!(
            o,
            "\t\tip daddr vmap @ingress_v4\n\t\tip6 daddr vmap @ingress_v6"
        );
        let _ = writeln!(
            o,
            "\t\t# The destination is no interface: the source's egress allowed it."
        );
        let _ = writeln!(
            o,
            "\t\tip saddr @interfaces_v4 accept\n\t\tip6 saddr @interfaces_v6 accept"
        );
        let verdict = match s.unknown_address {
            Verdict::Allow => "accept",
            Verdict::Deny => "drop",
        };
        let _ = writeln!(o, "\t\tcounter {verdict} comment \"unknown-address\"");
        let _ = writeln!(o, "\t}}\n}}");
        o
    }

    fn header(&self, o: &mut String, table: &str) {
        let p = self.policy;
        let s = p.settings();
        let _ = writeln!(o, "#!/usr/sbin/nft -f");
        let _ = writeln!(
            o,
            "# Generated by `sgplane export nftables` from {}.",
            comment_text(p.source())
        );
        let _ = writeln!(
            o,
            "# Load with `nft -f FILE`: it replaces table inet {table} in one transaction."
        );
        let _ = writeln!(o, "#");
        let _ = writeln!(
            o,
            "# Filters forwarded traffic (hook forward), as `sgplane run` does between its two"
        );
        let _ = writeln!(
            o,
            "# sides; traffic to and from this host itself is not filtered. Each rule counts"
        );
        let _ = writeln!(
            o,
            "# its hits (`nft list table inet {table}`) and names its sgplane rule."
        );
        let _ = writeln!(o, "#");
        let _ = writeln!(o, "# Where the kernel differs from sgplane:");
        let _ = writeln!(
            o,
            "# - ARP is not in the inet family: a router answers it itself (allow_arp = {}).",
            s.allow_arp
        );
        let _ = writeln!(
            o,
            "# - Zones have no kernel equivalent: only interfaces without a zone are exported,"
        );
        let _ = writeln!(
            o,
            "#   as traffic that comes through no GWLB endpoint sees them; GENEVE is not opened."
        );
        if !self.zoned.is_empty() {
            let names: Vec<String> = self
                .zoned
                .iter()
                .take(20)
                .map(|&i| comment_text(&p.interface(i).name))
                .collect();
            let more = if self.zoned.len() > 20 {
                format!(" and {} more", self.zoned.len() - 20)
            } else {
                String::new()
            };
            let _ = writeln!(o, "#   Left out (zoned): {}{more}.", names.join(", "));
        }
        let c = p.conntrack();
        let _ = writeln!(
            o,
            "# - Conntrack timeouts and size are the kernel's sysctls; this policy's would be:"
        );
        let _ = writeln!(
            o,
            "#   net.netfilter.nf_conntrack_max={} nf_conntrack_tcp_timeout_established={}",
            c.max_entries, c.tcp_established
        );
        let _ = writeln!(
            o,
            "#   nf_conntrack_udp_timeout={} nf_conntrack_udp_timeout_stream={} nf_conntrack_icmp_timeout={}",
            c.udp, c.udp_stream, c.icmp
        );
        let _ = writeln!(
            o,
            "#   nf_conntrack_generic_timeout={}; nf_conntrack_tcp_be_liberal=1 and",
            c.other
        );
        let _ = writeln!(
            o,
            "#   nf_conntrack_tcp_ignore_invalid_rst=1 (sgplane tracks no TCP windows or RST sequence numbers)."
        );
        let _ = writeln!(
            o,
            "# - The kernel reassembles fragments before judging. It tracks ICMP request/reply"
        );
        let _ = writeln!(
            o,
            "#   pairs other than echo, and finds some ICMP invalid (echo replies and errors about"
        );
        let _ = writeln!(
            o,
            "#   no tracked flow, types it cannot track): sgplane does neither, so the forward"
        );
        let _ = writeln!(
            o,
            "#   chain below sends all of those to the rules. SCTP is tracked by its own state"
        );
        let _ = writeln!(
            o,
            "#   machine and ports in the kernel, by address pair in sgplane (an other protocol)."
        );
        let _ = writeln!(o);
    }

    /// One interface's chains: its own egress and ingress, and where its
    /// subnet has groups, the subnet layer's (SPEC §9.2) in the order the
    /// packet meets them: leaving, the interface's then the subnet's;
    /// entering, the subnet's then the interface's.
    fn write_interface_chains(&self, o: &mut String, i: IfaceId) {
        let p = self.policy;
        let iface = p.interface(i);
        let (eg, ing) = self.chains[i as usize]
            .as_ref()
            .expect("named for every exported interface");
        let subnet = self.subnet_chains[i as usize].as_ref();
        let names = |groups: &[crate::policy::SgId]| -> String {
            let sgs: Vec<&str> = groups
                .iter()
                .map(|&s| p.security_groups()[s as usize].name.as_str())
                .collect();
            if sgs.is_empty() {
                "no security groups".to_string()
            } else {
                comment_text(&sgs.join(", "))
            }
        };
        let subnet_name = iface.place.subnet.as_ref().map_or("", |s| s.value.as_str());
        let subnet_groups = || {
            let set = iface.subnet_policy_set.expect("a subnet chain has a layer");
            &p.policy_sets()[set as usize]
        };
        let egress_allow = subnet.map_or("return".to_string(), |c| format!("goto {}", c.0));
        let ingress_allow = "accept".to_string();
        let mut chains: Vec<LayerChain> = vec![LayerChain(
            Direction::Egress,
            eg,
            names(&iface.security_groups),
            egress_allow.clone(),
            p.interface_rules(i, Direction::Egress),
            String::new(),
        )];
        if let Some((egs, _)) = subnet {
            chains.push(LayerChain(
                Direction::Egress,
                egs,
                format!(
                    "subnet {} layer: {}",
                    comment_text(subnet_name),
                    names(&subnet_groups().security_groups)
                ),
                "return".to_string(),
                subnet_groups().rules(Direction::Egress),
                format!(" (subnet {})", comment_text(subnet_name)),
            ));
        }
        if let Some((_, ins)) = subnet {
            chains.push(LayerChain(
                Direction::Ingress,
                ins,
                format!(
                    "subnet {} layer: {}",
                    comment_text(subnet_name),
                    names(&subnet_groups().security_groups)
                ),
                format!("goto {ing}"),
                subnet_groups().rules(Direction::Ingress),
                format!(" (subnet {})", comment_text(subnet_name)),
            ));
        }
        chains.push(LayerChain(
            Direction::Ingress,
            ing,
            names(&iface.security_groups),
            ingress_allow,
            p.interface_rules(i, Direction::Ingress),
            String::new(),
        ));
        for LayerChain(dir, chain, groups, allow, rules, layer) in chains {
            let then = match allow.as_str() {
                "return" => "returns to `forward` for the destination's ingress check".to_string(),
                "accept" => "accepts".to_string(),
                other => format!("goes on ({other})"),
            };
            let _ = writeln!(
                o,
                "\n\t# {} {dir}: {groups}; allow {then}.",
                comment_text(&iface.name),
            );
            let _ = writeln!(o, "\tchain {chain} {{");
            for &r in rules {
                for line in self.rule_lines(r, dir, &allow) {
                    let _ = writeln!(o, "\t\t{line}");
                }
            }
            let _ = writeln!(
                o,
                "\t\tcounter drop comment \"no-rule: {} {dir}{layer}\"",
                comment_text(&iface.name)
            );
            let _ = writeln!(o, "\t}}");
        }
    }

    /// The nftables rules for one sgplane rule in a chain of `dir`, `allow`
    /// being the verdict of an allow rule there: one per family and kind of
    /// remote (CIDRs, each SG, each prefix list), all with the same verdict,
    /// so first-match order is kept.
    fn rule_lines(&self, id: RuleId, dir: Direction, allow: &str) -> Vec<String> {
        let p = self.policy;
        let r = p.rule(id);
        let verdict = match r.action {
            Action::Deny => "drop",
            Action::Allow => allow,
        };
        let tail = format!(
            "counter {verdict} comment \"{}\"",
            comment_text(&p.rule_name(id).to_string())
        );
        Family::BOTH
            .into_iter()
            .flat_map(|f| self.rule_matches(id, dir, f, false))
            .map(|m| format!("{m} {tail}"))
            .collect()
    }

    /// The match expressions of one sgplane rule in a chain of `dir` for one
    /// family, one per kind of remote; none when it cannot match the family.
    /// `reversed`: matched against a packet going the other way (the local
    /// and remote addresses and the two ports swapped), to ask whether the
    /// packet would be the reply of a flow the rule allows.
    fn rule_matches(&self, id: RuleId, dir: Direction, f: Family, reversed: bool) -> Vec<String> {
        let r = self.policy.rule(id);
        // Egress: the local end is the source; ingress: the destination.
        let (mut local_dir, mut remote_dir) = match dir {
            Direction::Egress => ("saddr", "daddr"),
            Direction::Ingress => ("daddr", "saddr"),
        };
        if reversed {
            std::mem::swap(&mut local_dir, &mut remote_dir);
        }
        let mut lines = Vec::new();
        if r.local.is_some_and(|l| Family::of(&l) != f) {
            return lines;
        }
        let Some(l4) = l4_match(
            r.proto,
            f,
            &r.ports,
            &r.source_ports,
            r.icmp_type,
            r.icmp_code,
            reversed,
        ) else {
            return lines;
        };
        let local = r
            .local
            .map(|l| format!("{} {local_dir} {}", f.ip(), net_text(&l.trunc())));
        for remote in self.remote_matches(&r.remote, f) {
            let addr = remote.map(|m| format!("{} {remote_dir} {m}", f.ip()));
            let mut parts: Vec<String> = Vec::new();
            if addr.is_none() && local.is_none() {
                parts.push(format!("meta nfproto {}", f.nfproto()));
            }
            parts.extend(local.clone());
            parts.extend(addr);
            parts.extend(l4.clone());
            lines.push(parts.join(" "));
        }
        lines
    }

    /// The remote-address matches of a rule for one family: `None` is "any
    /// address" (a /0 among the CIDRs); an empty list, nothing of this family.
    fn remote_matches(&self, remotes: &[Remote], f: Family) -> Vec<Option<String>> {
        let nets = by_family(remotes.iter().filter_map(|r| match r {
            Remote::Net(n) => Some(*n),
            _ => None,
        }));
        let nets = &nets[fam_index(f)];
        if nets.iter().any(|n| n.prefix_len() == 0) {
            return vec![None];
        }
        let mut out = Vec::new();
        match nets.len() {
            0 => {}
            1 => out.push(Some(net_text(&nets[0]))),
            _ => out.push(Some(format!(
                "{{ {} }}",
                nets.iter().map(net_text).collect::<Vec<_>>().join(", ")
            ))),
        }
        for r in remotes {
            let set = match *r {
                Remote::Net(_) => continue,
                Remote::Sg(sg) => &self.sg_sets[sg as usize][fam_index(f)],
                Remote::PrefixList(pl) => &self.pl_sets[pl as usize][fam_index(f)],
            };
            if let Some(name) = set {
                let m = Some(format!("@{name}"));
                if !out.contains(&m) {
                    out.push(m);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
