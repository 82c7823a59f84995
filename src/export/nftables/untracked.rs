//! Untracked flows (SPEC §9.3) in the kernel: `notrack` in a `prerouting`
//! chain at priority `raw` + 1 (after the ACLs, before conntrack), so that
//! the `forward` chain finds such packets neither established nor invalid
//! and judges each one by the rules, both directions, as AWS does.
//!
//! At an interface with `tracking = "aws"` (of a kind AWS does not always
//! track), a TCP or UDP packet of family F is untracked when it belongs to
//! an untracked flow in either orientation:
//!
//! - as a flow it opens: the rule deciding it in its own direction is an
//!   allow naming 0.0.0.0/0 (::/0), and the other direction has an
//!   all-traffic allow to or from 0.0.0.0/0 (::/0);
//! - as the reply of a flow the other end opened: the rule deciding the
//!   packet turned around (addresses and ports swapped) in the other
//!   direction is such an allow, and this direction has the all-traffic
//!   rule.
//!
//! The kernel has one connection table where each cloud interface keeps
//! its own, so a packet is left untracked only when neither of its ends
//! tracks it (an end that is no interface tracks nothing; when neither end
//! is an interface it stays tracked). A flow untracked at one end and
//! tracked at the other stays tracked: with a policy that does not change,
//! the untracked end's rules allow every packet of it anyway (its opening
//! rule in one direction, the all-traffic rule in the other).
//!
//! Chains: `untracked` (the hook) looks the source up in `ut_src_v4`: a
//! tracking interface `accept`s (tracked), one that may not track jumps to
//! `ut_src_NAME`, which asks its two questions (`ut_src_fwd_NAME`,
//! `ut_src_rev_NAME`: the deciding rule naming /0 goes on, any other
//! deciding rule returns) and accepts (tracked) when both say no; going on
//! leads to `ut_dst`, the same for the destination (`ut_dst_v4`,
//! `ut_dst_NAME`), and from there to `ut_notrack`.

use std::fmt::Write as _;

use super::text::comment_text;
use super::{fam_index, Export, Family, Names};
use crate::policy::{Action, Direction, IfaceId, Policy, ProtoMatch, Remote, RuleId};
use crate::policy::{IpProto, Rule};

/// Kinds of interface whose flows AWS always tracks.
pub const ALWAYS_TRACKED_KINDS: &[&str] = &[
    "load_balancer",
    "network_load_balancer",
    "gateway_load_balancer",
    "vpc_endpoint",
    "gateway_load_balancer_endpoint",
    "nat_gateway",
];

pub(super) const RESERVED: [&str; 7] = [
    "untracked",
    "ut_dst",
    "ut_notrack",
    "ut_src_v4",
    "ut_src_v6",
    "ut_dst_v4",
    "ut_dst_v6",
];

/// An interface that may leave flows untracked.
struct Untracking {
    iface: IfaceId,
    /// By family: an all-traffic allow from /0 in ingress, to /0 in egress.
    open_in: [bool; 2],
    open_out: [bool; 2],
    /// `ut_src_NAME`, `ut_src_fwd_NAME`, `ut_src_rev_NAME`, then the same
    /// for `dst`.
    chains: [String; 6],
}

pub(super) struct UntrackedStage {
    ifaces: Vec<Untracking>,
}

/// Whether an interface asks for AWS's tracking and is of a kind AWS does
/// not always track.
pub fn may_untrack(p: &Policy, i: IfaceId) -> bool {
    let place = &p.interface(i).place;
    place.tracking.as_ref().is_some_and(|t| t.value == "aws")
        && !place
            .kind
            .as_ref()
            .is_some_and(|k| ALWAYS_TRACKED_KINDS.contains(&k.value.as_str()))
}

/// Whether a rule names 0.0.0.0/0 (::/0) for family `f`.
fn names_any(r: &Rule, f: Family) -> bool {
    r.remote
        .iter()
        .any(|x| matches!(x, Remote::Net(n) if n.prefix_len() == 0 && Family::of(n) == f))
}

/// An allow of all traffic, all ports, to or from 0.0.0.0/0 (::/0).
fn all_traffic(r: &Rule, f: Family) -> bool {
    r.action == Action::Allow
        && r.proto == ProtoMatch::Any
        && r.source_ports.is_all()
        && r.local.is_none()
        && names_any(r, f)
}

/// Whether a rule deciding a TCP or UDP packet leaves its flow untracked
/// (given the other direction's all-traffic rule).
fn opens_untracked(r: &Rule, f: Family) -> bool {
    r.action == Action::Allow
        && names_any(r, f)
        && match r.proto {
            ProtoMatch::Any => true,
            ProtoMatch::Is(p) => p == IpProto::TCP || p == IpProto::UDP,
        }
}

/// Whether a rule can decide a TCP or UDP packet at all.
fn sees_tcp_or_udp(r: &Rule) -> bool {
    match r.proto {
        ProtoMatch::Any => true,
        ProtoMatch::Is(p) => p == IpProto::TCP || p == IpProto::UDP,
    }
}

impl UntrackedStage {
    /// `None` when no exported interface may leave a flow untracked.
    pub(super) fn new(p: &Policy, ifaces: &[IfaceId], names: &mut Names) -> Option<Self> {
        let mut out = Vec::new();
        for &i in ifaces {
            if !may_untrack(p, i) {
                continue;
            }
            let open = |d: Direction| {
                Family::BOTH.map(|f| {
                    p.interface_rules(i, d)
                        .iter()
                        .any(|&r| all_traffic(p.rule(r), f))
                })
            };
            let (open_in, open_out) = (open(Direction::Ingress), open(Direction::Egress));
            if !open_in.iter().chain(&open_out).any(|&b| b) {
                continue;
            }
            let n = &p.interface(i).name;
            let chains = ["src", "src_fwd", "src_rev", "dst", "dst_fwd", "dst_rev"]
                .map(|c| names.unique(&format!("ut_{c}_{n}")));
            out.push(Untracking {
                iface: i,
                open_in,
                open_out,
                chains,
            });
        }
        (!out.is_empty()).then_some(UntrackedStage { ifaces: out })
    }

    pub(super) fn write(&self, x: &Export<'_>, o: &mut String) {
        let p = x.policy;
        let _ = writeln!(
            o,
            "\n\t# Untracked flows (tracking = \"aws\"): TCP and UDP allowed by a rule naming"
        );
        let _ = writeln!(
            o,
            "\t# 0.0.0.0/0 (::/0) where the other direction allows all traffic to or from it;"
        );
        let _ = writeln!(
            o,
            "\t# `notrack` when no end of the packet tracks it, and `forward` then judges it"
        );
        let _ = writeln!(o, "\t# by the rules, every packet.");
        for u in &self.ifaces {
            let name = comment_text(&p.interface(u.iface).name);
            let [src, src_fwd, src_rev, dst, dst_fwd, dst_rev] = &u.chains;
            for (chain, fwd, rev, end) in [
                (src, src_fwd, src_rev, "the source"),
                (dst, dst_fwd, dst_rev, "the destination"),
            ] {
                let _ = writeln!(
                    o,
                    "\n\t# {name} as {end}: does it leave the packet's flow untracked?"
                );
                let _ = writeln!(
                    o,
                    "\tchain {chain} {{\n\t\tjump {fwd}\n\t\tjump {rev}\n\t\taccept comment \"tracked at {name}\"\n\t}}"
                );
            }
            // The packet leaving this interface (egress rules), or entering
            // it (ingress rules); turned around, the other direction's rules.
            let next_src = "goto ut_dst";
            let next_dst = "goto ut_notrack";
            self.write_question(x, u, src_fwd, Direction::Egress, false, next_src, o);
            self.write_question(x, u, src_rev, Direction::Ingress, true, next_src, o);
            self.write_question(x, u, dst_fwd, Direction::Ingress, false, next_dst, o);
            self.write_question(x, u, dst_rev, Direction::Egress, true, next_dst, o);
        }
        for (base, i) in [("ut_src", 0), ("ut_dst", 3)] {
            for f in Family::BOTH {
                let mut elems: Vec<(ipnet::IpNet, String)> = Vec::new();
                for &iface in &x.ifaces {
                    let verdict = match self.ifaces.iter().find(|u| u.iface == iface) {
                        Some(u) => format!("jump {}", u.chains[i]),
                        None => "accept".to_string(),
                    };
                    for a in &p.interface(iface).addresses {
                        if Family::of(a) == f {
                            elems.push((a.trunc(), verdict.clone()));
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
                        .map(|(n, v)| format!("{} : {v}", super::text::net_text(n)))
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
        let _ = writeln!(
            o,
            "\n\t# The source left the flow untracked (or is no interface); now the destination."
        );
        let _ = writeln!(
            o,
            "\tchain ut_dst {{\n\t\tip daddr vmap @ut_dst_v4\n\t\tip6 daddr vmap @ut_dst_v6\n\t\tgoto ut_notrack\n\t}}"
        );
        let _ = writeln!(
            o,
            "\tchain ut_notrack {{\n\t\tcounter notrack accept comment \"untracked\"\n\t}}"
        );
        let _ = writeln!(o, "\n\tchain untracked {{");
        let _ = writeln!(
            o,
            "\t\ttype filter hook prerouting priority raw + 1; policy accept;"
        );
        let _ = writeln!(
            o,
            "\t\tfib daddr type local accept comment \"to this host: not filtered\""
        );
        let _ = writeln!(
            o,
            "\t\tmeta l4proto != {{ tcp, udp }} accept comment \"ICMP and other protocols: tracked\""
        );
        let _ = writeln!(
            o,
            "\t\tip saddr vmap @ut_src_v4\n\t\tip6 saddr vmap @ut_src_v6"
        );
        let _ = writeln!(
            o,
            "\t\t# The source is no interface: the destination decides alone."
        );
        let _ = writeln!(
            o,
            "\t\tip daddr vmap @ut_dst_v4\n\t\tip6 daddr vmap @ut_dst_v6"
        );
        let _ = writeln!(o, "\t}}");
    }

    /// One question as a chain: the rules of `dir` in decision order on the
    /// packet (or on it turned around); the deciding rule, if it opens an
    /// untracked flow and the other direction allows all traffic for the
    /// family, continues with `next`; any other deciding rule returns.
    #[allow(clippy::too_many_arguments)]
    fn write_question(
        &self,
        x: &Export<'_>,
        u: &Untracking,
        chain: &str,
        dir: Direction,
        reversed: bool,
        next: &str,
        o: &mut String,
    ) {
        let p = x.policy;
        let other_open = match dir {
            Direction::Egress => &u.open_in,
            Direction::Ingress => &u.open_out,
        };
        let _ = writeln!(o, "\tchain {chain} {{");
        for f in Family::BOTH {
            if !other_open[fam_index(f)] {
                continue;
            }
            for &id in p.interface_rules(u.iface, dir) {
                let r = p.rule(id);
                if !sees_tcp_or_udp(r) {
                    continue;
                }
                let verdict = if opens_untracked(r, f) {
                    next
                } else {
                    "return"
                };
                for m in x.rule_matches(id, dir, f, reversed) {
                    let _ = writeln!(
                        o,
                        "\t\t{m} {verdict} comment \"{}\"",
                        comment_text(&rule_label(p, id, reversed))
                    );
                }
            }
        }
        let _ = writeln!(o, "\t}}");
    }
}

fn rule_label(p: &Policy, id: RuleId, reversed: bool) -> String {
    let name = p.rule_name(id).to_string();
    if reversed {
        format!("{name}, reply")
    } else {
        name
    }
}
