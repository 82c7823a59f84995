//! The policy's security-group reference graph as a layered SVG:
//! interfaces → the groups attached to them → the groups, prefix lists and
//! "anywhere" (`0.0.0.0/0`, `::/0`) their rules admit (ingress, solid) or
//! reach (egress, dashed); deny rules in red, thicker edges for rules that
//! decided more new flows. Egress allowed to anywhere, most groups'
//! default, is counted rather than drawn.
//!
//! Three columns, each ordered by the mean position of its neighbours in
//! the column before (a barycenter sweep, then one back), which keeps
//! interfaces next to their groups and crossings few. Past
//! [`MOST_PER_COLUMN`] nodes in a column the graph keeps the most connected
//! and says what it left out.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::html::{clip, esc, num};
use crate::policy::{Action, Direction, Policy, Remote, RuleId};

/// Nodes drawn per column at most.
pub const MOST_PER_COLUMN: usize = 60;

const NODE_W: f64 = 250.0;
const NODE_H: f64 = 24.0;
const ROW: f64 = 30.0;
const COL_GAP: f64 = 140.0;
const TOP: f64 = 34.0;
const PAD: f64 = 8.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Interface(u32),
    Group(u32),
    /// A group as a rule's remote.
    Ref(u32),
    PrefixList(u32),
    Anywhere,
}

struct Node {
    kind: Kind,
    col: usize,
    label: String,
    /// Small text at the right of the box.
    badge: String,
    tip: String,
    class: &'static str,
}

/// Edges between two nodes, merged: their rules and hits.
#[derive(Default)]
struct Edge {
    rules: Vec<String>,
    hits: u64,
}

/// The graph and what it left out.
pub struct Graph {
    pub svg: String,
    /// Set when a column was cut to [`MOST_PER_COLUMN`].
    pub truncated: Option<String>,
    pub interfaces: usize,
    pub groups: usize,
    /// Egress rules allowing anywhere, not drawn.
    pub open_egress: usize,
}

/// Draws `policy`'s reference graph; `hits` are new flows decided by rule id.
pub fn draw(policy: &Policy, hits: &[u64], unit: &str) -> Graph {
    let sgs = policy.security_groups();
    let ifaces = policy.interfaces();
    // Groups on interfaces, directly or through a subnet's policy set.
    let mut attached: BTreeMap<u32, usize> = BTreeMap::new();
    let mut iface_groups: Vec<Vec<(u32, bool)>> = Vec::with_capacity(ifaces.len());
    for i in ifaces {
        let mut g: Vec<(u32, bool)> = i.security_groups.iter().map(|&s| (s, false)).collect();
        if let Some(set) = i.subnet_policy_set {
            if let Some(ps) = policy.policy_sets().get(set as usize) {
                g.extend(ps.security_groups.iter().map(|&s| (s, true)));
            }
        }
        for &(s, _) in &g {
            *attached.entry(s).or_default() += 1;
        }
        iface_groups.push(g);
    }
    // Column 1: the most attached groups, policy order among equals.
    let mut groups: Vec<u32> = attached.keys().copied().collect();
    groups.sort_by_key(|s| (std::cmp::Reverse(attached[s]), *s));
    let all_groups = groups.len();
    groups.truncate(MOST_PER_COLUMN);
    groups.sort_unstable();
    let kept = |s: u32| groups.binary_search(&s).is_ok();
    // Column 0: interfaces with a kept group, in policy order.
    let with_group: Vec<usize> = (0..ifaces.len())
        .filter(|&i| iface_groups[i].iter().any(|&(s, _)| kept(s)))
        .collect();
    let all_ifaces = with_group.len();
    let shown_ifaces: Vec<usize> = with_group.into_iter().take(MOST_PER_COLUMN).collect();
    // Column 2: what the kept groups' rules name, merged per (group, remote, direction, action).
    let mut refs: BTreeMap<(u32, Kind, Direction, Action), Edge> = BTreeMap::new();
    let mut open_egress = 0usize;
    for &s in &groups {
        let g = &sgs[s as usize];
        let intra = g.intra_rules.map(|(a, b)| vec![a, b]).unwrap_or_default();
        for &r in g.ingress.iter().chain(&g.egress).chain(&intra) {
            let rule = policy.rule(r);
            let mut targets: Vec<Kind> = Vec::new();
            if rule.index.is_none() {
                targets.push(Kind::Ref(s));
            }
            for remote in &rule.remote {
                let k = match *remote {
                    Remote::Sg(t) => Kind::Ref(t),
                    Remote::PrefixList(p) => Kind::PrefixList(p),
                    Remote::Net(n) if n.prefix_len() == 0 => Kind::Anywhere,
                    Remote::Net(_) => continue,
                };
                if !targets.contains(&k) {
                    targets.push(k);
                }
            }
            for k in targets {
                // Egress allowed anywhere is most groups' default: an
                // edge from each would hide the rest.
                if k == Kind::Anywhere
                    && rule.direction == Direction::Egress
                    && rule.action == Action::Allow
                {
                    open_egress += 1;
                    continue;
                }
                let e = refs.entry((s, k, rule.direction, rule.action)).or_default();
                e.rules.push(rule_line(policy, r));
                e.hits += hits.get(r as usize).copied().unwrap_or(0);
            }
        }
    }
    let mut ref_count: BTreeMap<Kind, usize> = BTreeMap::new();
    for (_, k, _, _) in refs.keys() {
        *ref_count.entry(*k).or_default() += 1;
    }
    let all_refs = ref_count.len();
    let mut targets: Vec<Kind> = ref_count.keys().copied().collect();
    targets.sort_by_key(|k| (std::cmp::Reverse(ref_count[k]), *k));
    targets.truncate(MOST_PER_COLUMN);

    // Nodes.
    let mut nodes: Vec<Node> = Vec::new();
    let mut index: BTreeMap<(usize, Kind), usize> = BTreeMap::new();
    let mut add = |nodes: &mut Vec<Node>, n: Node| {
        index.insert((n.col, n.kind), nodes.len());
        nodes.push(n);
    };
    for &i in &shown_ifaces {
        let it = &ifaces[i];
        let addrs: Vec<String> = it.addresses.iter().map(|a| a.to_string()).collect();
        let mut tip = format!("interface {}\naddresses: {}", it.name, addrs.join(", "));
        if let Some(d) = &it.description {
            let _ = write!(tip, "\n{d}");
        }
        add(
            &mut nodes,
            Node {
                kind: Kind::Interface(i as u32),
                col: 0,
                label: it.name.clone(),
                badge: it
                    .addresses
                    .first()
                    .map(|a| a.addr().to_string())
                    .unwrap_or_default(),
                tip,
                class: "iface",
            },
        );
    }
    for &s in &groups {
        let g = &sgs[s as usize];
        add(
            &mut nodes,
            Node {
                kind: Kind::Group(s),
                col: 1,
                label: g.name.clone(),
                badge: format!("{} in · {} out", g.ingress.len(), g.egress.len()),
                tip: group_tip(policy, s),
                class: "sg",
            },
        );
    }
    for &k in &targets {
        let (label, badge, tip, class) = match k {
            Kind::Ref(s) => {
                let g = &sgs[s as usize];
                let badge = if g.external.is_some() {
                    "external".to_string()
                } else {
                    plural(g.members.len(), "member")
                };
                (g.name.clone(), badge, group_tip(policy, s), "ref")
            }
            Kind::PrefixList(p) => {
                let pl = policy.prefix_list(p);
                let entries: Vec<String> = pl.entries.iter().map(|e| e.to_string()).collect();
                (
                    pl.name.clone(),
                    plural(pl.entries.len(), "entry"),
                    format!("prefix list {}\n{}", pl.name, entries.join(", ")),
                    "pl",
                )
            }
            _ => (
                "anywhere".to_string(),
                "0.0.0.0/0, ::/0".to_string(),
                "any address: rules from or to 0.0.0.0/0 or ::/0".to_string(),
                "any",
            ),
        };
        add(
            &mut nodes,
            Node {
                kind: k,
                col: 2,
                label,
                badge,
                tip,
                class,
            },
        );
    }

    // Edges.
    // Between two nodes, one edge per kind (allow/deny, in/out).
    let mut edges: BTreeMap<(usize, usize, String), Edge> = BTreeMap::new();
    for &i in &shown_ifaces {
        let a = index[&(0, Kind::Interface(i as u32))];
        for &(s, subnet) in &iface_groups[i] {
            if let Some(&b) = index.get(&(1, Kind::Group(s))) {
                let class = if subnet { "subnet" } else { "attach" };
                let e = edges.entry((a, b, class.into())).or_default();
                e.rules.push(format!(
                    "{} has {}{}",
                    ifaces[i].name,
                    sgs[s as usize].name,
                    if subnet { " (its subnet's group)" } else { "" }
                ));
            }
        }
    }
    for ((s, k, dir, action), e) in refs {
        let (Some(&a), Some(&b)) = (index.get(&(1, Kind::Group(s))), index.get(&(2, k))) else {
            continue;
        };
        let class = format!(
            "{} {}",
            if action == Action::Deny {
                "deny"
            } else {
                "allow"
            },
            if dir == Direction::Ingress {
                "in"
            } else {
                "out"
            }
        );
        let to = edges.entry((a, b, class)).or_default();
        to.rules.extend(e.rules);
        to.hits += e.hits;
    }

    let rows = order(&nodes, &edges);
    let tallest = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width = 3.0 * NODE_W + 2.0 * COL_GAP + 2.0 * PAD;
    let height = TOP + tallest.max(1) as f64 * ROW + PAD;
    let mut pos = vec![(0.0, 0.0); nodes.len()];
    for (c, col) in rows.iter().enumerate() {
        let off = (tallest - col.len()) as f64 * ROW / 2.0;
        for (r, &n) in col.iter().enumerate() {
            pos[n] = (
                PAD + c as f64 * (NODE_W + COL_GAP),
                TOP + off + r as f64 * ROW,
            );
        }
    }
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg id=\"sg-graph\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" \
         width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"security group reference graph\">"
    );
    for (c, head) in [
        "interfaces",
        "their security groups",
        "what their rules name",
    ]
    .iter()
    .enumerate()
    {
        let _ = write!(
            s,
            "<text class=\"head\" x=\"{:.1}\" y=\"16\">{head}</text>",
            PAD + c as f64 * (NODE_W + COL_GAP)
        );
    }
    // Parallel edges between one pair are drawn apart.
    let mut pair: BTreeMap<(usize, usize), (usize, usize)> = BTreeMap::new();
    for (a, b, _) in edges.keys() {
        pair.entry((*a, *b)).or_default().1 += 1;
    }
    for ((a, b, class), e) in &edges {
        let (k, m) = pair.get_mut(&(*a, *b)).map_or((0, 1), |p| {
            p.0 += 1;
            (p.0 - 1, p.1)
        });
        let off = (k as f64 - (m - 1) as f64 / 2.0) * 5.0;
        let (xa, ya) = (pos[*a].0 + NODE_W, pos[*a].1 + NODE_H / 2.0 + off);
        let (xb, yb) = (pos[*b].0, pos[*b].1 + NODE_H / 2.0 + off);
        let mid = (xa + xb) / 2.0;
        let w = 1.2 + (1.0 + e.hits as f64).log10().min(2.0) * 1.6;
        let mut tip = e.rules.join("\n");
        if e.hits > 0 {
            let _ = write!(tip, "\n{} {unit} decided", num(e.hits));
        }
        let _ = write!(
            s,
            "<path class=\"edge {class}\" data-a=\"{a}\" data-b=\"{b}\" stroke-width=\"{w:.1}\" \
             d=\"M{xa:.1},{ya:.1}C{mid:.1},{ya:.1} {mid:.1},{yb:.1} {xb:.1},{yb:.1}\"><title>{}</title></path>",
            esc(&tip)
        );
    }
    for (i, n) in nodes.iter().enumerate() {
        let (x, y) = pos[i];
        let room = if n.badge.is_empty() { 36 } else { 24 };
        let _ = write!(
            s,
            "<g class=\"node {}\" data-n=\"{i}\"><title>{}</title>\
             <rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{NODE_W}\" height=\"{NODE_H}\" rx=\"5\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{}</text>\
             <text class=\"k\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text></g>",
            n.class,
            esc(&n.tip),
            x + 8.0,
            y + 16.5,
            esc(&clip(&n.label, room)),
            x + NODE_W - 7.0,
            y + 16.0,
            esc(&clip(&n.badge, 16))
        );
    }
    s.push_str("</svg>");
    let mut cut = Vec::new();
    for (shown, all, what) in [
        (
            groups.len(),
            all_groups,
            "attached groups (the most attached kept)",
        ),
        (shown_ifaces.len(), all_ifaces, "interfaces"),
        (
            targets.len(),
            all_refs,
            "referenced groups and prefix lists (the most referenced kept)",
        ),
    ] {
        if shown < all {
            cut.push(format!("{shown} of {all} {what}"));
        }
    }
    Graph {
        svg: s,
        truncated: (!cut.is_empty()).then(|| cut.join("; ")),
        interfaces: shown_ifaces.len(),
        groups: groups.len(),
        open_egress,
    }
}

/// `1 member`, `2 members`; `1 entry`, `3 entries`.
fn plural(n: usize, one: &str) -> String {
    match (n, one.strip_suffix('y')) {
        (1, _) => format!("1 {one}"),
        (_, Some(stem)) => format!("{n} {stem}ies"),
        _ => format!("{n} {one}s"),
    }
}

/// `sg-web/ingress/0: allow tcp/80 from sg-alb`.
fn rule_line(policy: &Policy, r: RuleId) -> String {
    format!("{}: {}", policy.rule_name(r), policy.describe_rule(r))
}

fn group_tip(policy: &Policy, s: u32) -> String {
    let g = &policy.security_groups()[s as usize];
    let mut tip = format!("security group {}", g.name);
    if let Some(t) = &g.title {
        let _ = write!(tip, " ({t})");
    }
    if let Some(d) = &g.description {
        let _ = write!(tip, "\n{d}");
    }
    let _ = write!(
        tip,
        "\n{} ingress, {} egress rules; on {} interfaces",
        g.ingress.len(),
        g.egress.len(),
        g.interfaces.len()
    );
    if g.intra_group {
        tip.push_str("; members reach each other (intra_group)");
    }
    if g.external.is_some() {
        tip.push_str("\nnot in the input (external): no rules, no members");
    }
    tip
}

/// Node indices per column, ordered by barycenters: column 1 by column 0,
/// column 2 by column 1, then column 0 by column 1.
fn order(nodes: &[Node], edges: &BTreeMap<(usize, usize, String), Edge>) -> [Vec<usize>; 3] {
    let mut cols: [Vec<usize>; 3] = Default::default();
    for (i, n) in nodes.iter().enumerate() {
        cols[n.col].push(i);
    }
    let mut rank = vec![0.0f64; nodes.len()];
    let set = |rank: &mut Vec<f64>, col: &[usize]| {
        for (r, &n) in col.iter().enumerate() {
            rank[n] = r as f64;
        }
    };
    set(&mut rank, &cols[0]);
    let sweep = |rank: &mut Vec<f64>, col: &mut Vec<usize>, from_col: usize| {
        let mut key: Vec<(f64, usize)> = col
            .iter()
            .map(|&n| {
                let near: Vec<f64> = edges
                    .keys()
                    .filter_map(|&(a, b, _)| {
                        if b == n && nodes[a].col == from_col {
                            Some(rank[a])
                        } else if a == n && nodes[b].col == from_col {
                            Some(rank[b])
                        } else {
                            None
                        }
                    })
                    .collect();
                let k = if near.is_empty() {
                    f64::MAX
                } else {
                    near.iter().sum::<f64>() / near.len() as f64
                };
                (k, n)
            })
            .collect();
        key.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        *col = key.into_iter().map(|(_, n)| n).collect();
        for (r, &n) in col.iter().enumerate() {
            rank[n] = r as f64;
        }
    };
    let [c0, c1, c2] = &mut cols;
    sweep(&mut rank, c1, 0);
    sweep(&mut rank, c2, 1);
    sweep(&mut rank, c0, 1);
    sweep(&mut rank, c1, 0);
    sweep(&mut rank, c2, 1);
    cols
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `groups` groups, each on two interfaces, each admitting the next
    /// group and a prefix list.
    fn policy(groups: usize) -> Policy {
        let mut t = String::from("[prefix_lists]\npl-a = [\"192.0.2.0/24\"]\n");
        for g in 0..groups {
            t += &format!(
                "[security_groups.sg-{g}]\ningress = [ {{ proto = \"tcp\", ports = \"443\", from = \"sg-{}\" }}, \
                 {{ proto = \"tcp\", ports = \"22\", from = \"pl-a\", action = \"deny\", priority = 1 }} ]\n",
                (g + 1) % groups
            );
        }
        for i in 0..2 * groups {
            t += &format!(
                "[interfaces.eni-{i}]\naddresses = [\"10.{}.{}.1\"]\nsecurity_groups = [\"sg-{}\"]\n",
                i / 200,
                i % 200,
                i / 2
            );
        }
        Policy::from_toml(&t, "test").unwrap()
    }

    #[test]
    fn every_group_interface_and_reference_is_drawn_when_they_fit() {
        let p = policy(5);
        let g = draw(&p, &[], "flows");
        assert!(g.truncated.is_none());
        assert_eq!((g.interfaces, g.groups), (10, 5));
        assert_eq!(g.svg.matches("class=\"node iface\"").count(), 10);
        assert_eq!(g.svg.matches("class=\"node sg\"").count(), 5);
        // Column 2: the five groups as remotes and the prefix list.
        assert_eq!(g.svg.matches("class=\"node ref\"").count(), 5);
        assert_eq!(g.svg.matches("class=\"node pl\"").count(), 1);
        assert_eq!(g.svg.matches("class=\"edge attach\"").count(), 10);
        assert_eq!(g.svg.matches("class=\"edge allow in\"").count(), 5);
        assert_eq!(g.svg.matches("class=\"edge deny in\"").count(), 5);
        assert!(g.svg.contains("sg-1/ingress/0: allow tcp/443 from sg-2"));
    }

    #[test]
    fn a_large_policy_is_cut_to_the_most_connected_and_says_so() {
        let p = policy(80);
        let g = draw(&p, &[], "flows");
        assert_eq!(g.svg.matches("class=\"node sg\"").count(), MOST_PER_COLUMN);
        assert_eq!(
            g.svg.matches("class=\"node iface\"").count(),
            MOST_PER_COLUMN
        );
        let t = g.truncated.unwrap();
        assert!(t.contains("60 of 80 attached groups"), "{t}");
        assert!(t.contains("60 of 120 interfaces"), "{t}");
    }
}
