//! Security-group rules compiled into [`Classifier`]s: the fast path for
//! new-flow decisions, equal to [`Policy::evaluate`] on every flow (proptest in
//! `tests.rs` beside this file).
//!
//! Each distinct SG set (and direction) gets one classifier over its rules in
//! decision order, so the first match is the deciding rule. Its five
//! dimensions are the remote address, the local address, the source port, the
//! destination port or ICMP type/code, and the protocol:
//!
//! - Addresses of both families are mapped onto one line (IPv4 as
//!   `::ffff:a.b.c.d`) and cut into the elementary intervals that the policy's
//!   CIDRs, prefix-list entries and SG members bound; a packet's address
//!   becomes its interval's index (a binary search) and a CIDR a range of
//!   indices. An SG reference becomes a set of ranges, one per member block —
//!   membership, not one rule per member.
//! - A port that is not known (a later fragment) is the value 65536, which only
//!   a rule covering all ports 0-65535 contains; likewise an unknown ICMP
//!   type/code. ICMP type and code are `type << 8 | code`.
//! - SG members depend on the zone (a zoned member is visible only in its
//!   zone), so a set whose rules reference SGs with zoned members gets one
//!   classifier per named zone; every other set shares one for all zones.
//! - A subnet's groups (Azure's subnet NSG, SPEC §9.2) are a policy set like
//!   any other: an interface with that layer takes a second lookup in its
//!   subnet set's classifier.

use std::collections::HashMap;
use std::net::IpAddr;

use super::{ClassRule, Classifier, Decide, Decisions, Key, RangeSet};
use crate::policy::reference::{Decision, EndDecision};
use crate::policy::{
    net_bounds, Action, AddrKey, Direction, Evaluation, Flow, IfaceId, IpProto, Layer, Policy,
    ProtoMatch, Remote, Rule, RuleId, Verdict, ZoneId,
};

/// The value of an unknown port or ICMP type/code.
const UNKNOWN: u32 = 65_536;

/// The compiled fast path of one policy.
pub struct SgClassifier {
    /// Starts of the elementary address intervals by family, sorted, as plain
    /// numbers: the IPv4 ones (intervals `0..bounds4.len()`, the first at the
    /// first IPv4 address), then the IPv6 ones (the first at `::`).
    bounds4: Vec<u32>,
    bounds6: Vec<u128>,
    tables: Vec<Classifier>,
    /// Per classifier, what a key must have for any of its rules to match:
    /// a port scan or a flood to closed ports skips the lookup (and the
    /// address search) of nearly every packet ([`Screen`]).
    screens: Vec<Screen>,
    /// `[zone context][policy set * 2 + direction]` → index into `tables`.
    index: Vec<Vec<u32>>,
    /// Named zones → zone context (0 is "no named zone").
    zones: HashMap<ZoneId, usize>,
}

impl SgClassifier {
    /// Compiles every SG set of `policy`.
    pub fn build(policy: &Policy) -> SgClassifier {
        let bounds = interval_bounds(policy);
        let zones: Vec<ZoneId> = policy.zones();
        let zone_ctx: HashMap<ZoneId, usize> =
            zones.iter().enumerate().map(|(i, &z)| (z, i + 1)).collect();
        let zoned_sg: Vec<bool> = policy
            .security_groups()
            .iter()
            .map(|g| g.members.iter().any(|m| m.zone.is_some()))
            .collect();
        let mut tables = Vec::new();
        let mut screens = Vec::new();
        let mut index = vec![Vec::with_capacity(policy.policy_sets().len() * 2); zones.len() + 1];
        let cx = Compiler {
            policy,
            bounds: &bounds,
        };
        for set in policy.policy_sets() {
            for dir in [Direction::Ingress, Direction::Egress] {
                let rules = set.rules(dir);
                let by_zone = rules.iter().any(|&r| {
                    policy
                        .rule(r)
                        .remote
                        .iter()
                        .any(|x| matches!(x, Remote::Sg(g) if zoned_sg[*g as usize]))
                });
                let shared = tables.len() as u32;
                let compiled = cx.rules(rules, None);
                screens.push(Screen::of(&compiled));
                tables.push(Classifier::build(&compiled));
                index[0].push(shared);
                for (i, &z) in zones.iter().enumerate() {
                    if by_zone {
                        index[i + 1].push(tables.len() as u32);
                        let compiled = cx.rules(rules, Some(z));
                        screens.push(Screen::of(&compiled));
                        tables.push(Classifier::build(&compiled));
                    } else {
                        index[i + 1].push(shared);
                    }
                }
            }
        }
        let bounds4 = bounds.iter().filter(|b| !b.0).map(|b| b.1 as u32).collect();
        let bounds6 = bounds.iter().filter(|b| b.0).map(|b| b.1).collect();
        SgClassifier {
            bounds4,
            bounds6,
            tables,
            screens,
            index,
            zones: zone_ctx,
        }
    }

    /// Heap bytes of the compiled tables and the address intervals.
    pub fn memory_bytes(&self) -> usize {
        self.tables
            .iter()
            .map(Classifier::memory_bytes)
            .sum::<usize>()
            + self.bounds4.len() * 4
            + self.bounds6.len() * 16
    }

    /// Number of classifiers (one per SG set and direction, more with zones).
    pub fn tables(&self) -> usize {
        self.tables.len()
    }

    /// Number of elementary address intervals.
    pub fn intervals(&self) -> usize {
        self.bounds4.len() + self.bounds6.len()
    }

    /// The index of the elementary interval holding `a`: the last start at
    /// or below it (the first start of each family is its first address).
    #[inline]
    fn interval(&self, a: IpAddr) -> u32 {
        let i = match a {
            IpAddr::V4(a) => self.bounds4.partition_point(|&b| b <= u32::from(a)),
            IpAddr::V6(a) => {
                self.bounds4.len() + self.bounds6.partition_point(|&b| b <= u128::from(a))
            }
        };
        (i - 1) as u32
    }

    /// The classifier of policy set `set` in `dir` for a packet in `zone`.
    #[inline]
    fn table(&self, set: u32, dir: Direction, zone: Option<ZoneId>) -> u32 {
        self.table_in(self.context(zone), set, dir)
    }

    /// The classifier of `set` and `dir` in zone context `ctx`.
    #[inline]
    fn table_in(&self, ctx: usize, set: u32, dir: Direction) -> u32 {
        self.index[ctx][set as usize * 2 + dir_index(dir)]
    }

    /// The zone context of `zone` (0 for none or one with no SG sets of its
    /// own).
    #[inline]
    fn context(&self, zone: Option<ZoneId>) -> usize {
        match zone {
            None => 0,
            Some(z) => self.named_context(z),
        }
    }

    /// Never inlined: inlined, the compiler once hashed every flow's zone
    /// whether it had one or not (branch-free, 80 instructions a flow in
    /// the batch's loop, a port scan's batch 60% slower); a call is not
    /// made ahead of its branch.
    #[inline(never)]
    fn named_context(&self, z: ZoneId) -> usize {
        self.zones.get(&z).copied().unwrap_or(0)
    }

    /// The lookup keys of a flow, seen from the destination (ingress) and
    /// from the source (egress).
    #[inline]
    fn keys(&self, flow: &Flow) -> (Key, Key) {
        keys_of(flow, self.interval(flow.src), self.interval(flow.dst))
    }
}

/// A flow's lookup keys seen from the destination (ingress: the source is
/// remote) and from the source (egress), given its addresses' intervals.
#[inline]
fn keys_of(flow: &Flow, src: u32, dst: u32) -> (Key, Key) {
    let (sport, last, proto) = rest_of_key(flow);
    (
        [src, dst, sport, last, proto],
        [dst, src, sport, last, proto],
    )
}

/// The decision of `iface`'s `layer` (policy set `set`) in `dir` given its
/// classifier's first match.
fn decision(
    policy: &Policy,
    iface: IfaceId,
    dir: Direction,
    (set, layer): (u32, Layer),
    hit: Option<u32>,
) -> Decision {
    let rule = hit.map(|i| policy.policy_sets()[set as usize].rules(dir)[i as usize]);
    let verdict = match rule.map(|r| policy.rule(r).action) {
        Some(Action::Allow) => Verdict::Allow,
        _ => Verdict::Deny,
    };
    Decision {
        interface: iface,
        direction: dir,
        layer,
        verdict,
        rule,
    }
}

fn dir_index(d: Direction) -> usize {
    match d {
        Direction::Ingress => 0,
        Direction::Egress => 1,
    }
}

impl Decide for SgClassifier {
    fn decide(&self, policy: &Policy, flow: &Flow) -> Evaluation {
        let (ingress, egress) = self.keys(flow);
        policy.judge_ends(flow, |iface, dir, set, layer| {
            let key = match dir {
                Direction::Ingress => &ingress,
                Direction::Egress => &egress,
            };
            let table = &self.tables[self.table(set, dir, flow.zone) as usize];
            decision(policy, iface, dir, (set, layer), table.lookup(key))
        })
    }

    /// The flows' addresses placed in their intervals in lockstep (the
    /// binary searches interleaved, so their cache misses overlap), their
    /// lookups grouped by classifier, each group through the classifier's
    /// batch lookup (16 keys at a time on AVX2), then each flow's two
    /// decisions (four with subnet layers) combined by
    /// [`Evaluation::combine`], as [`Policy::judge_ends`] does for one flow.
    fn decide_batch(&self, policy: &Policy, flows: &[Flow], out: &mut Decisions) {
        out.clear();
        BATCH.with_borrow_mut(|b| {
            b.clear();
            // One lookup per layer of each end that is an interface, keyed
            // by slot n * stride + direction index (+ 2 for the subnet
            // layer, whose slots exist only when some interface has one),
            // unless the classifier's screen says no rule can match: then
            // its hit stays `None`, what the lookup would give.
            let stride = if policy.layered() { 4 } else { 2 };
            b.hits.resize(flows.len() * stride, None);
            b.interval.resize(flows.len() * 2, 0);
            let (mut last_src, mut last_dst) = (LastEnd::default(), LastEnd::default());
            for (n, f) in flows.iter().enumerate() {
                // As `Policy::ends_of`.
                let s = last_src.interface_of(policy, f.src, f.zone);
                let d = last_dst.interface_of(policy, f.dst, f.zone);
                b.ends.push((s, d));
                let (sport, last, proto) = rest_of_key(f);
                let probe: Key = [0, 0, sport, last, proto];
                let ctx = self.context(f.zone);
                let mut wanted = false;
                for (end, dir) in [(d, Direction::Ingress), (s, Direction::Egress)] {
                    let Some(iface) = end else { continue };
                    let i = policy.interface(iface);
                    let slot = n * stride + dir_index(dir);
                    for (set, at) in [(Some(i.policy_set), slot), (i.subnet_policy_set, slot + 2)] {
                        let Some(set) = set else { continue };
                        let t = self.table_in(ctx, set, dir);
                        if self.screens[t as usize].may_match(&probe) {
                            b.lookups.push((t, at as u32));
                            wanted = true;
                        }
                    }
                }
                // Intervals (slot n * 2 is the source's, n * 2 + 1 the
                // destination's) only for the flows with a lookup.
                if wanted {
                    for (k, a) in [f.src, f.dst].into_iter().enumerate() {
                        match a {
                            IpAddr::V4(a) => b.v4.push((u32::from(a), (n * 2 + k) as u32)),
                            IpAddr::V6(a) => b.v6.push((u128::from(a), (n * 2 + k) as u32)),
                        }
                    }
                }
            }
            let base6 = self.bounds4.len() as u32;
            place(&self.bounds4, &b.v4, 0, &mut b.interval, &mut b.found);
            place(&self.bounds6, &b.v6, base6, &mut b.interval, &mut b.found);
            b.group(self.tables.len());
            let Batch {
                order,
                groups,
                interval,
                hits,
                group_keys,
                group_hits,
                ..
            } = b;
            // The key of a lookup's slot: its flow's, seen from the end the
            // slot's direction says.
            let key = |slot: usize| {
                let n = slot / stride;
                let (ingress, egress) = keys_of(&flows[n], interval[n * 2], interval[n * 2 + 1]);
                if (slot % stride) % 2 == 0 {
                    ingress
                } else {
                    egress
                }
            };
            let mut at = 0;
            for &(table, len) in groups.iter() {
                let slots = &order[at..at + len as usize];
                at += len as usize;
                group_keys.clear();
                group_keys.extend(slots.iter().map(|&slot| key(slot as usize)));
                group_hits.clear();
                group_hits.resize(slots.len(), None);
                self.tables[table as usize].lookup_batch(group_keys, group_hits);
                for (&slot, &hit) in slots.iter().zip(group_hits.iter()) {
                    hits[slot as usize] = hit;
                }
            }
            let unknown = policy.settings().unknown_address;
            let hits = &b.hits;
            let end = |n: usize, i: IfaceId, dir: Direction| {
                let iface = policy.interface(i);
                let slot = n * stride + dir_index(dir);
                EndDecision {
                    interface: decision(
                        policy,
                        i,
                        dir,
                        (iface.policy_set, Layer::Interface),
                        hits[slot],
                    ),
                    subnet: iface
                        .subnet_policy_set
                        .map(|set| decision(policy, i, dir, (set, Layer::Subnet), hits[slot + 2])),
                }
            };
            // The evaluation follows from the ends and the hits alone, and
            // runs of flows share them (a scan's every flow hits nothing):
            // `last` is the flow whose evaluation was made last.
            let mut last: Option<usize> = None;
            for (n, &(s, d)) in b.ends.iter().enumerate() {
                let same = |m: usize| {
                    b.ends[m] == (s, d)
                        && hits[m * stride..(m + 1) * stride] == hits[n * stride..(n + 1) * stride]
                };
                if last.is_some_and(same) {
                    out.push_last();
                    continue;
                }
                let egress = s.map(|i| end(n, i, Direction::Egress));
                let ingress = d.map(|i| end(n, i, Direction::Ingress));
                out.push(Evaluation::combine(unknown, egress, ingress));
                last = Some(n);
            }
        });
    }
}

/// The last address of one end looked up, with its interface: a flood or
/// a scan sends flow after flow to one address (often from one).
#[derive(Default)]
struct LastEnd(Option<(IpAddr, Option<ZoneId>, Option<IfaceId>)>);

impl LastEnd {
    /// `policy.interface_of(a, zone)`, looked up only when `a` or `zone`
    /// differ from the last. Inlined: called through a pointer, the address
    /// copied to the stack piecewise was loaded back whole, a store the
    /// load could not be forwarded from (a quarter of the call's time in a
    /// scan, perf annotate).
    #[inline(always)]
    fn interface_of(
        &mut self,
        policy: &Policy,
        a: IpAddr,
        zone: Option<ZoneId>,
    ) -> Option<IfaceId> {
        match self.0 {
            Some((l, z, i)) if l == a && z == zone => i,
            _ => {
                let i = policy.interface_of(a, zone);
                self.0 = Some((a, zone, i));
                i
            }
        }
    }
}

/// The key fields after the addresses: source port, destination port or
/// ICMP type/code, protocol (unknown values as [`UNKNOWN`]).
#[inline]
fn rest_of_key(flow: &Flow) -> (u32, u32, u32) {
    let sport = flow.sport.map_or(UNKNOWN, u32::from);
    let last = match (flow.dport, flow.icmp) {
        (Some(p), _) => u32::from(p),
        (None, Some((t, c))) => u32::from(t) << 8 | u32::from(c),
        (None, None) => UNKNOWN,
    };
    (sport, last, u32::from(flow.proto.0))
}

/// Writes `base` + the interval of each address of `addrs` (address,
/// slot) into `interval[slot]`: the searches of up to [`LOCKSTEP`]
/// addresses advance level by level together, branch-free, so their loads
/// are in flight at once. `bounds` is sorted and starts at the family's
/// first address.
fn place<T: Copy + Ord>(
    bounds: &[T],
    addrs: &[(T, u32)],
    base: u32,
    interval: &mut [u32],
    found: &mut Vec<usize>,
) {
    for chunk in addrs.chunks(LOCKSTEP) {
        found.clear();
        found.resize(chunk.len(), 0);
        let mut len = bounds.len();
        while len > 1 {
            let half = len / 2;
            for (at, &(a, _)) in found.iter_mut().zip(chunk) {
                let probe = *at + half;
                *at = if bounds[probe] <= a { probe } else { *at };
            }
            len -= half;
        }
        // `at` is now the last start at or below the address (the first
        // start is the family's first address, so there is one).
        for (&at, &(_, slot)) in found.iter().zip(chunk) {
            interval[slot as usize] = base + at as u32;
        }
    }
}

/// The destination ports (ICMP type/code) that some rule of a classifier
/// can match, for TCP and for UDP: a key of those protocols with another
/// matches none of its rules. Other protocols are not screened.
struct Screen {
    tcp: RangeSet,
    udp: RangeSet,
}

impl Screen {
    fn of(rules: &[ClassRule]) -> Screen {
        let last = |p: u32| {
            RangeSet::from_ranges(
                rules
                    .iter()
                    .filter(|r| r.fields[4].contains(p))
                    .flat_map(|r| r.fields[3].ranges().iter().copied())
                    .collect(),
            )
        };
        Screen {
            tcp: last(u32::from(IpProto::TCP.0)),
            udp: last(u32::from(IpProto::UDP.0)),
        }
    }

    /// False when no rule can match `key` (its addresses are not looked at).
    #[inline]
    fn may_match(&self, key: &Key) -> bool {
        match key[4] {
            6 => self.tcp.contains(key[3]),
            17 => self.udp.contains(key[3]),
            _ => true,
        }
    }
}

/// Addresses whose interval searches run together.
const LOCKSTEP: usize = 32;

/// What [`SgClassifier::decide_batch`] works in, kept per thread so that a
/// batch allocates nothing once the buffers have grown.
#[derive(Default)]
struct Batch {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u32)>,
    found: Vec<usize>,
    interval: Vec<u32>,
    ends: Vec<(Option<IfaceId>, Option<IfaceId>)>,
    /// (classifier, slot) of each lookup, in flow order.
    lookups: Vec<(u32, u32)>,
    /// Lookups per classifier, indexed by classifier (zero between batches).
    counts: Vec<u32>,
    /// (classifier, how many lookups), in order of first use.
    groups: Vec<(u32, u32)>,
    /// The lookups' slots, grouped by classifier in `groups`' order.
    order: Vec<u32>,
    hits: Vec<Option<u32>>,
    group_keys: Vec<Key>,
    group_hits: Vec<Option<u32>>,
}

impl Batch {
    fn clear(&mut self) {
        self.v4.clear();
        self.v6.clear();
        self.interval.clear();
        self.ends.clear();
        self.lookups.clear();
        self.groups.clear();
        self.order.clear();
        self.hits.clear();
    }

    /// Groups the lookups by classifier (a counting sort: no comparison
    /// sort, linear in the lookups) into `groups` and `order`.
    fn group(&mut self, tables: usize) {
        if self.counts.len() < tables {
            self.counts.resize(tables, 0);
        }
        for &(t, _) in &self.lookups {
            let c = &mut self.counts[t as usize];
            if *c == 0 {
                self.groups.push((t, 0));
            }
            *c += 1;
        }
        // counts[t] becomes the start of t's run in `order`.
        let mut start = 0;
        for g in &mut self.groups {
            let n = self.counts[g.0 as usize];
            g.1 = n;
            self.counts[g.0 as usize] = start;
            start += n;
        }
        self.order.resize(self.lookups.len(), 0);
        for &(t, slot) in &self.lookups {
            let at = &mut self.counts[t as usize];
            self.order[*at as usize] = slot;
            *at += 1;
        }
        for &(t, _) in &self.groups {
            self.counts[t as usize] = 0;
        }
    }
}

thread_local! {
    static BATCH: std::cell::RefCell<Batch> = std::cell::RefCell::new(Batch::default());
}

/// Every boundary of every address block the policy names.
fn interval_bounds(policy: &Policy) -> Vec<AddrKey> {
    let mut b: Vec<AddrKey> = vec![(false, 0), (true, 0)];
    let mut add = |n: &ipnet::IpNet| {
        let (lo, (v6, hi)) = net_bounds(n);
        b.push(lo);
        let last = if v6 { u128::MAX } else { u128::from(u32::MAX) };
        if hi < last {
            b.push((v6, hi + 1));
        }
    };
    for r in policy.rules() {
        for x in &r.remote {
            if let Remote::Net(n) = x {
                add(n);
            }
        }
        if let Some(l) = &r.local {
            add(l);
        }
    }
    for pl in policy.prefix_lists() {
        pl.entries.iter().for_each(&mut add);
    }
    for g in policy.security_groups() {
        g.members.iter().for_each(|m| add(&m.net));
    }
    b.sort_unstable();
    b.dedup();
    b
}

struct Compiler<'a> {
    policy: &'a Policy,
    bounds: &'a [AddrKey],
}

impl Compiler<'_> {
    fn interval(&self, k: AddrKey) -> u32 {
        (self.bounds.partition_point(|&b| b <= k) - 1) as u32
    }

    fn net(&self, n: &ipnet::IpNet) -> (u32, u32) {
        let (lo, hi) = net_bounds(n);
        (self.interval(lo), self.interval(hi))
    }

    fn rules(&self, ids: &[RuleId], zone: Option<ZoneId>) -> Vec<ClassRule> {
        ids.iter()
            .map(|&r| self.rule(self.policy.rule(r), zone))
            .collect()
    }

    fn rule(&self, r: &Rule, zone: Option<ZoneId>) -> ClassRule {
        let mut remote = Vec::new();
        for x in &r.remote {
            match *x {
                Remote::Net(n) => remote.push(self.net(&n)),
                Remote::PrefixList(pl) => remote.extend(
                    self.policy.prefix_lists()[pl as usize]
                        .entries
                        .iter()
                        .map(|n| self.net(n)),
                ),
                Remote::Sg(g) => remote.extend(
                    self.policy.security_groups()[g as usize]
                        .members
                        .iter()
                        .filter(|m| m.zone.is_none() || m.zone == zone)
                        .map(|m| self.net(&m.net)),
                ),
            }
        }
        let remote = if remote.is_empty() {
            RangeSet::empty()
        } else {
            RangeSet::from_ranges(remote)
        };
        let local = match &r.local {
            Some(l) => {
                let (lo, hi) = self.net(l);
                RangeSet::single(lo, hi)
            }
            None => RangeSet::any(),
        };
        ClassRule {
            fields: [
                remote,
                local,
                ports(&r.source_ports),
                last_field(r),
                proto(r.proto),
            ],
        }
    }
}

/// A port set; one covering every port also holds the unknown port.
fn ports(p: &crate::policy::PortSet) -> RangeSet {
    if p.is_all() {
        RangeSet::single(0, UNKNOWN)
    } else {
        RangeSet::from_ranges(
            p.ranges()
                .iter()
                .map(|r| (u32::from(r.lo), u32::from(r.hi)))
                .collect(),
        )
    }
}

/// Destination ports for tcp/udp rules, type/code for ICMP rules, anything otherwise.
fn last_field(r: &Rule) -> RangeSet {
    if r.proto.has_ports() {
        return ports(&r.ports);
    }
    match (r.proto, r.icmp_type, r.icmp_code) {
        (ProtoMatch::Is(p), Some(t), code) if p.is_icmp() => {
            let t = u32::from(t) << 8;
            match code {
                Some(c) => RangeSet::single(t | u32::from(c), t | u32::from(c)),
                None => RangeSet::single(t, t | 0xff),
            }
        }
        (ProtoMatch::Is(p), None, Some(c)) if p.is_icmp() => RangeSet::from_ranges(
            (0..=255u32)
                .map(|t| (t << 8 | u32::from(c), t << 8 | u32::from(c)))
                .collect(),
        ),
        _ => RangeSet::single(0, UNKNOWN),
    }
}

fn proto(p: ProtoMatch) -> RangeSet {
    match p {
        ProtoMatch::Any => RangeSet::single(0, 255),
        ProtoMatch::Is(IpProto(n)) => RangeSet::single(u32::from(n), u32::from(n)),
    }
}
