//! `sgplane path --all`: every instance interface to every other on one
//! flow, as a matrix of "reachable" or the first blocking hop's code.
//!
//! Each pair takes the hops of [`super::analyse`] between two interfaces,
//! in the same order and judged by the same functions, but what pairs
//! share is decided once: a security group decision per (group list,
//! address space, other end) — sources with the same groups share their
//! egress to each destination — an ACL decision per (subnet, direction,
//! leg, other end), and a route per (source subnet, destination). Nothing
//! is explained and no fix is searched.

use std::collections::HashMap;

use foldhash::fast::FixedState;

use super::walk::{Point, Walk};
use super::*;
use crate::policy::{Flow, Layer, Verdict, ZoneId};

/// A group decision shared by pairs: (interface set, subnet layer set,
/// zone, ingress, the other end).
type SgKey = (u32, Option<u32>, Option<ZoneId>, bool, u32);

/// One cell of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    Reachable,
    /// The first code of the blocking hop.
    Blocked(&'static str),
    /// An interface to itself.
    Same,
}

impl Cell {
    pub fn as_str(self) -> &'static str {
        match self {
            Cell::Reachable => "reachable",
            Cell::Blocked(code) => code,
            Cell::Same => "-",
        }
    }
}

/// All pairs: `cells[s * n + d]` is source `ifaces[s]` to `ifaces[d]`.
#[derive(Debug, Clone)]
pub struct Matrix {
    pub ifaces: Vec<IfaceId>,
    pub names: Vec<String>,
    pub cells: Vec<Cell>,
}

impl Matrix {
    pub fn cell(&self, src: usize, dst: usize) -> Cell {
        self.cells[src * self.ifaces.len() + dst]
    }

    /// The pairs that are reachable, and those blocked per code, most
    /// frequent first.
    pub fn summary(&self) -> (usize, Vec<(&'static str, usize)>) {
        let mut reachable = 0;
        let mut by_code: HashMap<&'static str, usize> = HashMap::new();
        for c in &self.cells {
            match c {
                Cell::Reachable => reachable += 1,
                Cell::Blocked(code) => *by_code.entry(code).or_default() += 1,
                Cell::Same => {}
            }
        }
        let mut codes: Vec<_> = by_code.into_iter().collect();
        codes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        (reachable, codes)
    }

    /// The CSV: a header of destinations, then one row per source.
    pub fn to_csv(&self) -> String {
        let n = self.ifaces.len();
        let mut s = String::with_capacity((n + 1) * (n + 1) * 12);
        s.push_str("source\\destination");
        for name in &self.names {
            s.push(',');
            s.push_str(&csv_field(name));
        }
        s.push('\n');
        for (i, name) in self.names.iter().enumerate() {
            s.push_str(&csv_field(name));
            for c in &self.cells[i * n..(i + 1) * n] {
                s.push(',');
                s.push_str(c.as_str());
            }
            s.push('\n');
        }
        s
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The interfaces `--all` takes: those of kind `interface` (instances'
/// ENIs and unattached ones), not load balancer nodes, endpoints, NAT
/// gateways and other managed interfaces.
pub fn instance_interfaces(p: &Policy) -> Vec<IfaceId> {
    (0..p.interfaces().len() as IfaceId)
        .filter(|&i| {
            let f = p.interface(i);
            f.place.kind.as_ref().is_none_or(|k| k.value == "interface") && !f.addresses.is_empty()
        })
        .collect()
}

type Map<K, V> = HashMap<K, V, FixedState>;

/// What one hop gave: allowed, or the code that blocks.
type HopResult = Option<&'static str>;

struct Shared<'a> {
    w: Walk<'a>,
    pts: Vec<Point>,
    /// (policy set, space, direction is ingress, other end) → allowed.
    sg: Map<SgKey, bool>,
    /// Policy sets with a rule bound to a local address: not shared.
    local_bound: Vec<bool>,
    /// (subnet, direction is ingress, reply, other end) → result.
    acl: Map<(usize, bool, bool, u32), HopResult>,
    /// (source subnet, source VPC, destination) → result.
    route: Map<(Option<usize>, Option<VpcId>, u32), HopResult>,
}

/// The matrix of `q`'s flow (its `from` and `to` are not used) between
/// `ifaces`.
pub fn all_pairs(p: &Policy, q: &Query, ifaces: &[IfaceId]) -> Result<Matrix, PathError> {
    let w = Walk {
        p,
        q,
        hops: Vec::new(),
        notes: Vec::new(),
        quick: true,
    };
    let pts = ifaces
        .iter()
        .map(|&i| w.iface_point(i, false))
        .collect::<Result<Vec<_>, _>>()?;
    let local_bound = p
        .policy_sets()
        .iter()
        .map(|s| {
            s.ingress
                .iter()
                .chain(&s.egress)
                .any(|&r| p.rule(r).local.is_some())
        })
        .collect();
    let mut sh = Shared {
        w,
        pts,
        sg: Map::default(),
        local_bound,
        acl: Map::default(),
        route: Map::default(),
    };
    let n = ifaces.len();
    let mut cells = Vec::with_capacity(n * n);
    for s in 0..n {
        for d in 0..n {
            cells.push(if s == d {
                Cell::Same
            } else {
                match sh.pair(s as u32, d as u32) {
                    None => Cell::Reachable,
                    Some(code) => Cell::Blocked(code),
                }
            });
        }
    }
    Ok(Matrix {
        ifaces: ifaces.to_vec(),
        names: ifaces
            .iter()
            .map(|&i| p.interface(i).name.clone())
            .collect(),
        cells,
    })
}

impl Shared<'_> {
    /// The hops of the walk's `leg` between two interfaces, in its order.
    fn pair(&mut self, s: u32, d: u32) -> HopResult {
        let (src, dst) = (&self.pts[s as usize], &self.pts[d as usize]);
        let (src_sub, dst_sub, src_vpc) = (src.subnet, dst.subnet, src.vpc);
        let same_vpc = src.vpc == dst.vpc;
        let crosses = src_sub != dst_sub || !same_vpc;
        let zone = self.w.space(src.vpc.or(dst.vpc));
        // Each hop: `Some(code)` blocks, and the pair stops there.
        if !self.sg(s, d, Direction::Egress, zone) {
            return Some("ENI_SG_RULES_MISMATCH");
        }
        if crosses {
            if let Some(code) = self.acl(s, d, Direction::Egress, false) {
                return Some(code);
            }
        }
        if let Some(code) = self.route(src_sub, src_vpc, s, d) {
            return Some(code);
        }
        if crosses {
            if let Some(code) = self.acl(d, s, Direction::Ingress, false) {
                return Some(code);
            }
        }
        if !self.sg(d, s, Direction::Ingress, zone) {
            return Some("ENI_SG_RULES_MISMATCH");
        }
        if crosses {
            if let Some(code) = self.acl(d, s, Direction::Egress, true) {
                return Some(code);
            }
            return self.acl(s, d, Direction::Ingress, true);
        }
        None
    }

    /// `at`'s groups in `direction` with `other` as the remote end.
    fn sg(&mut self, at: u32, other: u32, direction: Direction, zone: Option<ZoneId>) -> bool {
        let p = self.w.p;
        let (a, o) = (&self.pts[at as usize], &self.pts[other as usize]);
        let iface = a.iface.unwrap_or_default();
        let set = p.interface(iface).policy_set;
        let layer = p.interface(iface).subnet_policy_set;
        let flow = match direction {
            Direction::Egress => self.flow(a, o, zone),
            Direction::Ingress => self.flow(o, a, zone),
        };
        // Both layers (an Azure subnet NSG, SPEC §9.2) must allow.
        let judge = || {
            p.decide(iface, direction, &flow).verdict == Verdict::Allow
                && p.decide_layer(iface, direction, Layer::Subnet, &flow)
                    .is_none_or(|d| d.verdict == Verdict::Allow)
        };
        if self.local_bound[set as usize] || layer.is_some_and(|l| self.local_bound[l as usize]) {
            return judge();
        }
        let key = (set, layer, zone, direction == Direction::Ingress, other);
        *self.sg.entry(key).or_insert_with(judge)
    }

    fn flow(&self, src: &Point, dst: &Point, zone: Option<ZoneId>) -> Flow {
        let mut f = self.w.flow(src.addr, dst.addr, self.w.q.dport, None);
        f.zone = zone;
        f
    }

    /// `at`'s subnet ACL in `direction`, request or reply, `other` the
    /// remote end.
    fn acl(&mut self, at: u32, other: u32, direction: Direction, reply: bool) -> HopResult {
        // No subnet, no ACL: allowed (`None`).
        let subnet = self.pts[at as usize].subnet?;
        let key = (subnet, direction == Direction::Ingress, reply, other);
        if let Some(&r) = self.acl.get(&key) {
            return r;
        }
        let (a, o) = (&self.pts[at as usize], &self.pts[other as usize]);
        // The request from the client (source) to the server; the reply
        // the other way, to the client's ephemeral ports.
        let (client, server) = match (direction, reply) {
            (Direction::Egress, false) | (Direction::Ingress, true) => (a, o),
            _ => (o, a),
        };
        let zone = self.w.space(client.vpc.or(server.vpc));
        let request = self.flow(client, server, zone);
        let r = if reply {
            self.w.reply_acl(subnet, direction, &request)
        } else {
            let ok = self
                .w
                .acl_hop(Some(subnet), direction, &request, "request", None);
            self.take(ok)
        };
        self.acl.insert(key, r);
        r
    }

    fn route(&mut self, sub: Option<usize>, vpc: Option<VpcId>, s: u32, d: u32) -> HopResult {
        let key = (sub, vpc, d);
        if let Some(&r) = self.route.get(&key) {
            return r;
        }
        let (src, dst) = (self.pts[s as usize].clone(), self.pts[d as usize].clone());
        let ok = self.w.route_hop(&src, &dst);
        let r = self.take(ok);
        self.route.insert(key, r);
        r
    }

    /// The hop the walk just pushed, as a result.
    fn take(&mut self, ok: bool) -> HopResult {
        let h = self.w.hops.pop();
        self.w.hops.clear();
        self.w.notes.clear();
        if ok {
            return None;
        }
        Some(
            h.and_then(|h| h.codes.first().copied())
                .unwrap_or("UNSUPPORTED_COMPONENT"),
        )
    }
}
