//! `sgplane check`: a summary of a compiled policy and the warnings of SPEC §3 —
//! rules that can never decide (shadowed), SG references to groups attached to
//! nothing, `ports = "0"`, interfaces without SGs, and allow/deny rules that
//! overlap at one priority.

use std::collections::BTreeSet;

use super::*;

/// Something legal but probably not what the author meant.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Warning {
    /// Line in the policy file, 0 when there is none.
    pub line: u32,
    /// A short stable tag: `shadowed`, `unattached-sg`, `port-zero`, `no-sg`,
    /// `no-interfaces`, `allow-deny-overlap`, `never-matches`.
    pub kind: &'static str,
    pub message: String,
}

/// The largest number of rule pairs compared per policy set and direction.
const MAX_PAIRS: usize = 4_000_000;

impl Policy {
    /// The `no-interfaces` warning, when the policy has no interface: then
    /// no group applies to any packet, and every IP packet is judged
    /// `unknown-address`, seldom what was meant (an empty or wrong file).
    /// Cheap, unlike [`Policy::warnings`]: `replay` prints it too.
    pub fn no_interfaces_warning(&self) -> Option<Warning> {
        if !self.interfaces.is_empty() {
            return None;
        }
        let verdict = match self.settings.unknown_address {
            Verdict::Allow => "allowed",
            Verdict::Deny => "denied",
        };
        Some(Warning {
            line: 0,
            kind: "no-interfaces",
            message: format!("the policy has no interface: no security group applies to any packet, and every IP packet is {verdict} unknown-address (is this the policy meant?)"),
        })
    }

    /// Every warning, in file order.
    pub fn warnings(&self) -> Vec<Warning> {
        let mut w = BTreeSet::new();
        for (id, r) in self.rules.iter().enumerate() {
            let id = id as RuleId;
            if r.index.is_none() {
                continue;
            }
            let name = self.rule_name(id);
            if r.ports_zero {
                w.insert(Warning {
                    line: r.line(),
                    kind: "port-zero",
                    message: format!("{name}: `ports` includes port 0, which no normal TCP or UDP traffic uses; \"-1/-1\" or leaving `ports` out means all ports"),
                });
            }
            for rem in &r.remote {
                if let Remote::Sg(sg) = rem {
                    let g = &self.security_groups[*sg as usize];
                    if let Some(e) = &g.external {
                        // A pair through a peering carries its peering or
                        // its `PeeringStatus`; `missing` is a group the
                        // input only references.
                        let peered = e.peering.is_some()
                            || e.status.as_deref().is_some_and(|s| s != "missing");
                        let mut about = Vec::new();
                        if let Some(a) = &e.account {
                            about.push(format!("account {a}"));
                        }
                        if let Some(v) = &e.vpc {
                            about.push(format!("VPC {v}"));
                        }
                        if let Some(p) = &e.peering {
                            about.push(format!("via {p}"));
                        }
                        if let Some(st) = &e.status {
                            about.push(st.clone());
                        }
                        w.insert(Warning {
                            line: r.line(),
                            kind: if peered { "unknown-peered-sg" } else { "unknown-sg" },
                            message: format!(
                                "{name}: refers to {}{} which the imported input does not contain: the reference matches no address",
                                g.name,
                                if about.is_empty() { String::new() } else { format!(" ({})", about.join(", ")) }
                            ),
                        });
                    } else if g.interfaces.is_empty() {
                        w.insert(Warning {
                            line: r.line(),
                            kind: "unattached-sg",
                            message: format!(
                                "{name}: refers to {} which is attached to no interface, so that reference matches no address",
                                self.security_groups[*sg as usize].name
                            ),
                        });
                    }
                }
            }
            if let Some(fam) = self.family_mismatch(r) {
                w.insert(Warning {
                    line: r.line(),
                    kind: "never-matches",
                    message: format!("{name}: can never match: {fam}"),
                });
            }
        }
        for pl in &self.prefix_lists {
            if pl.incomplete {
                w.insert(Warning {
                    line: 0,
                    kind: "unknown-prefix-list",
                    message: format!(
                        "prefix list {}{} is referenced but its entries are not in the input: it matches {}",
                        pl.name,
                        pl.owner.as_ref().map(|o| format!(" (owner {o})")).unwrap_or_default(),
                        if pl.entries.is_empty() { "no address".to_string() } else { format!("only the {} entries listed", pl.entries.len()) }
                    ),
                });
            }
        }
        for d in &self.topology.dangling {
            w.insert(Warning {
                line: 0,
                kind: "unknown-reference",
                message: d.clone(),
            });
        }
        w.extend(self.no_interfaces_warning());
        for iface in &self.interfaces {
            if iface.security_groups.is_empty() {
                w.insert(Warning {
                    line: 0,
                    kind: "no-sg",
                    message: format!("interface {} has no security group: every flow to or from it is denied (no-rule)", iface.name),
                });
            }
        }
        self.nacl_warnings(&mut w);
        // Each pair of rules is judged once, in the first SG set that has both.
        let mut seen = std::collections::HashSet::new();
        for set in &self.policy_sets {
            for dir in [Direction::Ingress, Direction::Egress] {
                self.pair_warnings(set, dir, &mut seen, &mut w);
            }
        }
        w.into_iter().collect()
    }

    /// Network ACL entries that can never decide (`nacl-shadowed`), and
    /// ACLs whose one direction admits a service but whose other direction
    /// drops the replies to the clients' ephemeral ports (`nacl-ephemeral`).
    fn nacl_warnings(&self, w: &mut BTreeSet<Warning>) {
        let Some(n) = self.nacls() else { return };
        for acl in &n.acls {
            for dir in [Direction::Ingress, Direction::Egress] {
                let entries = acl.entries(dir);
                for (j, later) in entries.iter().enumerate() {
                    if let Some(first) = entries[..j].iter().find(|e| e.covers(later)) {
                        w.insert(Warning {
                            line: later.line,
                            kind: "nacl-shadowed",
                            message: format!(
                                "{}/{dir}/{} can never decide: {}/{dir}/{} has a lower number and matches everything it matches",
                                acl.name, later.number, acl.name, first.number
                            ),
                        });
                    }
                }
                self.ephemeral_warnings(acl, dir, w);
            }
        }
    }

    /// For each allow entry of `dir` that admits a service (tcp or udp
    /// ports not covering the ephemeral range), whether the other direction
    /// lets the replies out to (or in from) the same remote block on
    /// 1024-65535.
    fn ephemeral_warnings(
        &self,
        acl: &nacl::NetworkAcl,
        dir: Direction,
        w: &mut BTreeSet<Warning>,
    ) {
        let back = match dir {
            Direction::Ingress => Direction::Egress,
            Direction::Egress => Direction::Ingress,
        };
        let linux = PortSet::from_ranges(vec![PortRange {
            lo: 32768,
            hi: 60999,
        }]);
        for e in acl.entries(dir) {
            let ProtoMatch::Is(proto) = e.proto else {
                continue;
            };
            if e.action != Action::Allow || !proto.has_ports() || linux.is_subset_of(&e.ports) {
                continue;
            }
            // Only an entry that decides for some packet: one a lower deny
            // shadows admits nothing.
            if acl
                .entries(dir)
                .iter()
                .take_while(|x| x.number < e.number)
                .any(|x| x.covers(e))
            {
                continue;
            }
            let remote = e.remote.network();
            let mut dropped = Vec::new();
            let mut by = None;
            let probe = |port: u16| {
                let mut f = Flow::other(remote, remote, proto);
                f.dport = Some(port);
                let i = acl.first_match(back, &f, remote);
                let allow =
                    i.is_some_and(|i| acl.entries(back)[i as usize].action == Action::Allow);
                (allow, i)
            };
            let mut lo = nacl::EPHEMERAL.lo;
            // Cut the range where any entry of the other direction changes.
            let mut cuts: Vec<u32> = acl
                .entries(back)
                .iter()
                .flat_map(|x| {
                    x.ports
                        .ranges()
                        .iter()
                        .flat_map(|r| [u32::from(r.lo), u32::from(r.hi) + 1])
                })
                .filter(|&c| {
                    c > u32::from(nacl::EPHEMERAL.lo) && c <= u32::from(nacl::EPHEMERAL.hi)
                })
                .collect();
            cuts.push(u32::from(nacl::EPHEMERAL.hi) + 1);
            cuts.sort_unstable();
            cuts.dedup();
            for c in cuts {
                let (allow, i) = probe(lo);
                if !allow {
                    dropped.push(PortRange {
                        lo,
                        hi: (c - 1) as u16,
                    });
                    by.get_or_insert(i);
                }
                lo = c.min(65535) as u16;
            }
            if dropped.is_empty() {
                continue;
            }
            let by = match by.flatten() {
                Some(i) => format!(
                    "{}/{back}/{}",
                    acl.name,
                    acl.entries(back)[i as usize].number
                ),
                None => format!("{}/{back}/*", acl.name),
            };
            let (word, way) = match dir {
                Direction::Ingress => ("from", "out to"),
                Direction::Egress => ("to", "in from"),
            };
            w.insert(Warning {
                line: e.line,
                kind: "nacl-ephemeral",
                message: format!(
                    "{}/{dir}/{} allows {proto}/{} {word} {}, but {} does not let the replies {way} it on ports {} ({by} decides): stateless ACLs need the ephemeral ports 1024-65535 allowed back",
                    acl.name,
                    e.number,
                    e.ports,
                    e.remote,
                    acl.name,
                    PortSet::from_ranges(dropped),
                ),
            });
        }
    }

    fn family_mismatch(&self, r: &Rule) -> Option<&'static str> {
        let nets = self.remote_nets(r);
        let (v4, v6) = (
            nets.iter().any(|n| n.addr().is_ipv4()),
            nets.iter().any(|n| n.addr().is_ipv6()),
        );
        match r.proto {
            ProtoMatch::Is(IpProto::ICMP) if !v4 && v6 => {
                Some("protocol icmp is IPv4 but every remote address is IPv6 (use icmpv6)")
            }
            ProtoMatch::Is(IpProto::ICMPV6) if v4 && !v6 => {
                Some("protocol icmpv6 is IPv6 but every remote address is IPv4 (use icmp)")
            }
            _ => None,
        }
    }

    /// Every address block a rule's remote end names (SG members expanded).
    fn remote_nets(&self, r: &Rule) -> Vec<IpNet> {
        let mut out = Vec::new();
        for rem in &r.remote {
            match *rem {
                Remote::Net(n) => out.push(n),
                Remote::Sg(sg) => out.extend(
                    self.security_groups[sg as usize]
                        .members
                        .iter()
                        .map(|m| m.net),
                ),
                Remote::PrefixList(pl) => {
                    out.extend(self.prefix_lists[pl as usize].entries.iter().copied())
                }
            }
        }
        out
    }

    /// Shadowing and allow/deny overlaps among one SG set's rules. Across two
    /// SGs, shadowing is only reported when the actions differ: the same rule
    /// in two groups is common and harmless, a deny that silences another
    /// group's allow is not.
    fn pair_warnings(
        &self,
        set: &PolicySet,
        dir: Direction,
        seen: &mut std::collections::HashSet<(RuleId, RuleId)>,
        w: &mut BTreeSet<Warning>,
    ) {
        let rules = set.rules(dir);
        let mut pairs = 0usize;
        let with = |sgs: &[SgId]| -> String {
            if sgs.len() <= 1 {
                String::new()
            } else {
                let names: Vec<&str> = sgs
                    .iter()
                    .map(|&g| self.security_groups[g as usize].name.as_str())
                    .collect();
                format!(" on interfaces with {}", names.join(" + "))
            }
        };
        for (j, &later) in rules.iter().enumerate() {
            let rl = self.rule(later);
            for &earlier in &rules[..j] {
                pairs += 1;
                if pairs > MAX_PAIRS {
                    return;
                }
                if !seen.insert((earlier, later)) {
                    continue;
                }
                let re = self.rule(earlier);
                let same_sg = re.sg == rl.sg;
                let ctx = if same_sg {
                    String::new()
                } else {
                    with(&set.security_groups)
                };
                if rl.index.is_some()
                    && (same_sg || re.action != rl.action)
                    && self.covers(earlier, later)
                {
                    w.insert(Warning {
                        line: rl.line(),
                        kind: "shadowed",
                        message: format!(
                            "{} can never decide{ctx}: {} comes first in decision order and matches everything it matches",
                            self.rule_name(later),
                            self.rule_name(earlier)
                        ),
                    });
                } else if re.priority == rl.priority
                    && re.action != rl.action
                    && re.index.is_some()
                    && rl.index.is_some()
                    && self.overlap(earlier, later)
                {
                    let (allow, deny) = if re.action == Action::Allow {
                        (earlier, later)
                    } else {
                        (later, earlier)
                    };
                    w.insert(Warning {
                        line: self.rule(allow).line().max(self.rule(deny).line()),
                        kind: "allow-deny-overlap",
                        message: format!(
                            "{} (allow) and {} (deny) overlap at priority {}{ctx}: the deny wins where both match",
                            self.rule_name(allow),
                            self.rule_name(deny),
                            re.priority
                        ),
                    });
                }
            }
        }
    }

    /// Whether rule `a` matches every flow rule `b` matches.
    pub fn covers(&self, a: RuleId, b: RuleId) -> bool {
        let (ra, rb) = (self.rule(a), self.rule(b));
        let field = |x: Option<u8>, y: Option<u8>| x.is_none() || x == y;
        rb.proto.covered_by(ra.proto)
            && rb.ports.is_subset_of(&ra.ports)
            && rb.source_ports.is_subset_of(&ra.source_ports)
            && field(ra.icmp_type, rb.icmp_type)
            && field(ra.icmp_code, rb.icmp_code)
            && match (ra.local, rb.local) {
                (None, _) => true,
                (Some(la), Some(lb)) => la.contains(&lb),
                (Some(_), None) => false,
            }
            && rb.remote.iter().all(|x| self.remote_covered(x, ra))
    }

    fn remote_covered(&self, x: &Remote, by: &Rule) -> bool {
        if by.remote.contains(x) {
            return true;
        }
        let nets: Vec<IpNet> = match *x {
            Remote::Net(n) => vec![n],
            // An SG's membership can only be judged by its current members when it has some.
            Remote::Sg(sg) if self.security_groups[sg as usize].members.is_empty() => return false,
            Remote::Sg(sg) => self.security_groups[sg as usize]
                .members
                .iter()
                .map(|m| m.net)
                .collect(),
            Remote::PrefixList(pl) => self.prefix_lists[pl as usize].entries.clone(),
        };
        let cover: Vec<IpNet> = by
            .remote
            .iter()
            .filter_map(|r| {
                if let Remote::Net(n) = r {
                    Some(*n)
                } else {
                    None
                }
            })
            .collect();
        nets.iter().all(|n| cover.iter().any(|c| c.contains(n)))
    }

    /// Whether some flow matches both rules.
    pub fn overlap(&self, a: RuleId, b: RuleId) -> bool {
        let (ra, rb) = (self.rule(a), self.rule(b));
        let proto = match (ra.proto, rb.proto) {
            (ProtoMatch::Any, _) | (_, ProtoMatch::Any) => true,
            (x, y) => x == y,
        };
        let field = |x: Option<u8>, y: Option<u8>| x.is_none() || y.is_none() || x == y;
        let local = match (ra.local, rb.local) {
            (Some(x), Some(y)) => x.contains(&y) || y.contains(&x),
            _ => true,
        };
        let (na, nb) = (self.remote_nets(ra), self.remote_nets(rb));
        proto
            && ra.ports.intersects(&rb.ports)
            && ra.source_ports.intersects(&rb.source_ports)
            && field(ra.icmp_type, rb.icmp_type)
            && field(ra.icmp_code, rb.icmp_code)
            && local
            && na
                .iter()
                .any(|x| nb.iter().any(|y| x.contains(y) || y.contains(x)))
    }

    /// A one-paragraph summary for `check`.
    pub fn summary(&self) -> String {
        let explicit: Vec<&Rule> = self.rules.iter().filter(|r| r.index.is_some()).collect();
        let ingress = explicit
            .iter()
            .filter(|r| r.direction == Direction::Ingress)
            .count();
        let addresses: usize = self.interfaces.iter().map(|i| i.addresses.len()).sum();
        let entries: usize = self.prefix_lists.iter().map(|p| p.entries.len()).sum();
        let intra = self
            .security_groups
            .iter()
            .filter(|g| g.intra_group)
            .count();
        let refs: usize = self
            .policy_sets
            .iter()
            .map(|s| s.ingress.len() + s.egress.len())
            .sum();
        let zones = self.zones().len();
        let t = &self.topology;
        let external = self
            .security_groups
            .iter()
            .filter(|g| g.external.is_some())
            .count();
        let topology = if t.vpcs.is_empty() && t.subnets.is_empty() && t.load_balancers.is_empty() {
            String::new()
        } else {
            format!(
                "\n  topology:        {} VPCs{}, {} subnets, {} network ACLs, {} route tables, {} load balancers, {} target groups, {} endpoints",
                t.vpcs.len(),
                if t.spaced() { " (each its own address space)" } else { "" },
                t.subnets.len(),
                t.network_acls.len(),
                t.route_tables.len(),
                t.load_balancers.len(),
                t.target_groups.len(),
                t.endpoints.len()
            )
        };
        let imported = match &t.imported {
            None => String::new(),
            Some(i) => format!(
                "\n  imported:        from {} ({} input files); {} groups referenced but not in the input",
                i.provider,
                i.inputs.len(),
                external
            ),
        };
        format!(
            "policy {}\n  security groups: {} ({} with intra_group)\n  rules:           {} ({} ingress, {} egress)\n  interfaces:      {} with {} addresses{}\n  prefix lists:    {} with {} entries\n  compiled:        {} distinct SG sets, {} rules in decision order",
            self.source,
            self.security_groups.len(),
            intra,
            explicit.len(),
            ingress,
            explicit.len() - ingress,
            self.interfaces.len(),
            addresses,
            if zones > 0 { format!(" in {zones} zones") } else { String::new() },
            self.prefix_lists.len(),
            entries,
            self.policy_sets.len(),
            refs
        ) + &topology
            + &imported
    }
}

/// A cloud whose quotas `check --profile` applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Aws,
}

impl std::str::FromStr for Profile {
    type Err = String;

    fn from_str(s: &str) -> Result<Profile, String> {
        match s {
            "aws" => Ok(Profile::Aws),
            other => Err(format!("unknown profile `{other}`: expected aws")),
        }
    }
}

/// AWS's default VPC quotas (Amazon VPC User Guide, "Amazon VPC quotas",
/// security groups): adjustable, so these are what an account has unless it
/// asked for more.
pub mod aws_quotas {
    /// Inbound or outbound rules per security group, counted separately for
    /// IPv4 and IPv6.
    pub const RULES_PER_GROUP: usize = 60;
    /// Security groups per network interface.
    pub const GROUPS_PER_INTERFACE: usize = 5;
    /// Groups per interface times rules per group may not exceed this.
    pub const RULES_PER_INTERFACE: usize = 1000;
}

impl Policy {
    /// Where `profile`'s quotas would reject the policy. AWS counts one rule
    /// per source, a rule naming a prefix list at the list's maximum size,
    /// and IPv4 and IPv6 rules separately.
    pub fn quota_warnings(&self, profile: Profile) -> Vec<Warning> {
        let Profile::Aws = profile;
        use aws_quotas::*;
        let mut w = Vec::new();
        // (ingress v4, ingress v6, egress v4, egress v6) per group.
        let counts: Vec<[usize; 4]> = self
            .security_groups
            .iter()
            .map(|g| {
                let mut c = [0usize; 4];
                for (base, list) in [(0, &g.ingress), (2, &g.egress)] {
                    for &r in list.iter() {
                        let (v4, v6) = self.rule_weight(self.rule(r));
                        c[base] += v4;
                        c[base + 1] += v6;
                    }
                }
                c
            })
            .collect();
        for (g, c) in self.security_groups.iter().zip(&counts) {
            for (i, what) in [
                "inbound IPv4",
                "inbound IPv6",
                "outbound IPv4",
                "outbound IPv6",
            ]
            .iter()
            .enumerate()
            {
                if c[i] > RULES_PER_GROUP {
                    w.push(Warning {
                        line: 0,
                        kind: "quota-rules-per-sg",
                        message: format!(
                            "{} has {} {what} rules (prefix lists counted at their maximum size): AWS allows {RULES_PER_GROUP} per group by default",
                            g.name, c[i]
                        ),
                    });
                }
            }
        }
        for iface in &self.interfaces {
            let n = iface.security_groups.len();
            if n > GROUPS_PER_INTERFACE {
                w.push(Warning {
                    line: 0,
                    kind: "quota-sgs-per-eni",
                    message: format!(
                        "interface {} has {n} security groups: AWS allows {GROUPS_PER_INTERFACE} per network interface by default (16 at most)",
                        iface.name
                    ),
                });
            }
            for (i, what) in [
                "inbound IPv4",
                "inbound IPv6",
                "outbound IPv4",
                "outbound IPv6",
            ]
            .iter()
            .enumerate()
            {
                let total: usize = iface
                    .security_groups
                    .iter()
                    .map(|&g| counts[g as usize][i])
                    .sum();
                if total > RULES_PER_INTERFACE {
                    w.push(Warning {
                        line: 0,
                        kind: "quota-rules-per-eni",
                        message: format!(
                            "interface {}'s groups have {total} {what} rules together: AWS allows {RULES_PER_INTERFACE} per network interface",
                            iface.name
                        ),
                    });
                }
            }
        }
        w
    }

    /// How many AWS rules (IPv4, IPv6) one rule is: one per source, a
    /// prefix list at its maximum size (its entry count when unknown), a
    /// group reference counted in both families.
    fn rule_weight(&self, r: &Rule) -> (usize, usize) {
        let (mut v4, mut v6) = (0, 0);
        for x in &r.remote {
            match *x {
                Remote::Net(n) if n.addr().is_ipv4() => v4 += 1,
                Remote::Net(_) => v6 += 1,
                Remote::Sg(_) => {
                    v4 += 1;
                    v6 += 1;
                }
                Remote::PrefixList(p) => {
                    let pl = &self.prefix_lists[p as usize];
                    let size = pl
                        .max_entries
                        .map_or(pl.entries.len().max(1), |m| m as usize);
                    if pl.entries.iter().any(|e| e.addr().is_ipv6()) {
                        v6 += size;
                    } else {
                        v4 += size;
                    }
                }
            }
        }
        (v4, v6)
    }
}
