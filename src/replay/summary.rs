//! The replay summary: packets, verdicts by reason, flows, top denied flows,
//! rule hits and speed, as text or JSON.
//!
//! Its memory does not grow with the capture: the counts by reason and rule
//! are the engine's, distinct flows are a HyperLogLog estimate
//! ([`DistinctCount`]) and the top denied flows come from Space-Saving
//! counters ([`SpaceSaving`]), exact until more distinct flows are denied
//! than there are counters.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::time::Duration;

use serde::Serialize;

use super::distinct::{self, DistinctCount};
use super::heavy::SpaceSaving;
use crate::engine::{Engine, Judgement};
use crate::policy::nacl::AclDecision;
use crate::policy::{
    addr_key, Direction, IfaceId, IpProto, Policy, Reason, RuleId, Verdict, ZoneId,
};
use crate::wire::packet::{Fragment, IpPacket};
use crate::wire::L4;

/// How many denied flows the summary lists.
pub const TOP_DENIED: usize = 10;

/// Space-Saving counters behind the top denied flows (K). Every flow with
/// more than 1/K of the denied packets holds one, so with 1024 any flow above
/// 0.1% of them is counted, two orders of magnitude finer than the ten
/// listed need; 1024 counters with their index are about 100 KiB, small
/// enough to stay in cache on a scan, where every packet replaces one.
pub const DENIED_COUNTERS: usize = 1024;

/// A flow (first packet's 5-tuple, as it travelled) that had packets denied.
#[derive(Debug, Clone, Serialize)]
pub struct DeniedFlow {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: String,
    /// Destination port, or ICMP type.
    pub dport: Option<u16>,
    pub icmp_type: Option<u8>,
    pub zone: Option<String>,
    /// Denied packets counted for the flow: never below the true number,
    /// and at most `error` above it.
    pub packets: u64,
    /// 0 when `packets` is exact.
    pub error: u64,
    pub reason: Reason,
    pub rule: Option<String>,
    pub interface: Option<String>,
    pub direction: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleHit {
    pub rule: String,
    /// New flows this rule decided.
    pub flows: u64,
}

/// Packets one network ACL entry (or a direction's `*`) decided.
#[derive(Debug, Clone, Serialize)]
pub struct NaclHit {
    /// `ACL/DIRECTION/RULE`.
    pub rule: String,
    pub packets: u64,
}

/// One interface's connection-tracking allowance at the end (SPEC §9.3,
/// ENA's `conntrack_allowance_available` / `_exceeded`): listed for
/// interfaces with a `conntrack_max` or with refusals.
#[derive(Debug, Clone, Serialize)]
pub struct Allowance {
    pub interface: String,
    pub entries: u32,
    pub max_entries: Option<u32>,
    pub available: Option<u32>,
    /// New flows refused because its allowance was used up.
    pub exceeded: u64,
}

/// A replay stopped by a signal.
#[derive(Debug, Clone, Serialize)]
pub struct Interrupted {
    /// The signal (`SIGINT`, `SIGTERM`, …).
    pub signal: String,
    /// Packets judged before it; every output holds exactly these.
    pub at_packet: u64,
    /// Bytes of the input read by then.
    pub offset: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Stopped {
    pub offset: u64,
    pub error: String,
}

/// What the top denied flows' counts guarantee.
#[derive(Debug, Clone, Serialize)]
pub struct TopDeniedBound {
    /// Space-Saving counters (K).
    pub counters: usize,
    /// Denied IP packets counted (N).
    pub denied_packets: u64,
    /// True while no flow lost its counter: every count is exact.
    pub exact: bool,
    /// Every flow with more denied packets than this holds a counter (N/K).
    pub listed_above: u64,
    /// The smallest count once every counter is taken (else 0): a tighter
    /// threshold than N/K, and the largest error a count can have.
    pub min_count: u64,
    pub statement: String,
}

/// What decided a denied flow's first counted packet.
#[derive(Debug, Clone, Copy)]
struct Decided {
    rule: Option<RuleId>,
    decision: Option<(IfaceId, Direction)>,
    nacl: Option<AclDecision>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct DenyKey {
    zone: Option<ZoneId>,
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    dport: Option<u16>,
    icmp: Option<u8>,
    reason: Reason,
}

impl DenyKey {
    fn of(p: &IpPacket, zone: Option<ZoneId>, reason: Reason) -> DenyKey {
        let (dport, icmp) = match p.l4 {
            L4::Tcp { dport, .. } | L4::Udp { dport, .. } => (Some(dport), None),
            L4::Icmp { typ, .. } => (None, Some(typ)),
            L4::None => (None, None),
        };
        DenyKey {
            zone,
            src: p.src,
            dst: p.dst,
            proto: p.proto.0,
            dport,
            icmp,
            reason,
        }
    }

    /// A hash of everything but the reason, as three words (the derived
    /// hash would feed the hasher a dozen pieces, and a scan hashes a new
    /// key for every packet); keys that share the words (a flow denied for
    /// two reasons) are told apart by `Eq`. Without the reason it is known
    /// before the packet is judged: the counters' places are fetched ahead
    /// ([`Report::prefetch_denied`]).
    fn partial_hash(&self) -> u64 {
        let ((s6, s), (d6, d)) = (addr_key(self.src), addr_key(self.dst));
        let small = u64::from(self.proto)
            | u64::from(self.dport.map_or(0x1_0000, u32::from)) << 8
            | u64::from(self.icmp.map_or(0x100, u16::from)) << 25
            | u64::from(s6) << 42
            | u64::from(d6) << 43;
        // IPv4 addresses fill the low 32 bits: the first word holds both.
        let mut h = foldhash::fast::FixedState::with_seed(DENY_SEED).build_hasher();
        h.write_u64(s as u64 ^ (d as u64).rotate_left(32));
        h.write_u64((s >> 64) as u64 ^ ((d >> 64) as u64).rotate_left(32) ^ self.zone.unwrap_or(0));
        h.write_u64(small);
        h.finish()
    }
}

/// The seed of the denied flows' key hash (any value will do).
const DENY_SEED: u64 = 0x5eed_0fde_71ed;

/// What the summary computes of a packet before its judgement, which
/// replay's reading thread can do ahead (for the chunks it stages): the
/// zone the packet is judged in, its flow's hash, and the hash of its
/// denied-flow key but for the reason. Packed (32 bytes, an `Option` of it
/// too, where the plain options made 48): it crosses from the reading
/// thread's core to the judging one's.
#[derive(Debug, Clone, Copy)]
pub struct Ahead {
    zone: ZoneId,
    flow: u64,
    deny: u64,
    has_zone: bool,
    has_flow: bool,
}

const _: () = assert!(std::mem::size_of::<Option<Ahead>>() == 32);

impl Ahead {
    /// Always inlined: returned from a call, it was written field by field
    /// and copied out at once in wider loads, which waited for those stores
    /// (most of the reading thread's own time on a scan).
    #[inline(always)]
    pub fn of(p: &IpPacket, policy: &Policy) -> Ahead {
        let zone = policy.packet_zone(p);
        let flow = flow_hash(p, zone);
        Ahead {
            zone: zone.unwrap_or(0),
            flow: flow.unwrap_or(0),
            deny: DenyKey::of(p, zone, Reason::Rule).partial_hash(),
            has_zone: zone.is_some(),
            has_flow: flow.is_some(),
        }
    }

    fn zone(&self) -> Option<ZoneId> {
        self.has_zone.then_some(self.zone)
    }

    fn flow(&self) -> Option<u64> {
        self.has_flow.then_some(self.flow)
    }
}

/// Packets the flow log counted in `SKIPDATA` records, its record limit
/// reached.
#[derive(Debug, Clone, Serialize)]
pub struct FlowLogSkipped {
    pub packets: u64,
    /// The records it holds at most (`--flow-log-max-records`).
    pub max_records: usize,
}

/// The replay's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub input: String,
    pub format: String,
    pub packets: u64,
    pub allowed: u64,
    pub denied: u64,
    pub bytes: u64,
    pub allowed_by_reason: BTreeMap<Reason, u64>,
    pub denied_by_reason: BTreeMap<Reason, u64>,
    /// Distinct flows (a flow and its replies are one), exact up to
    /// 4,096, then a HyperLogLog estimate.
    pub distinct_flows: u64,
    pub distinct_flows_exact: bool,
    /// The estimate's relative standard error (0 when exact).
    pub distinct_flows_standard_error: f64,
    /// New flows decided by the rules, and entries opened in the table.
    pub new_flows: u64,
    pub flows_opened: u64,
    /// Unassured entries a full table evicted for new flows (SPEC §2.8).
    pub early_drops: u64,
    /// With `--flow-log`: packets whose flows found the log full (its
    /// record limit) and were counted in `SKIPDATA` records instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_log_skipped: Option<FlowLogSkipped>,
    pub conntrack_entries: usize,
    /// Per-interface allowances (interfaces with one or with refusals).
    pub allowances: Vec<Allowance>,
    pub first_ts: Option<f64>,
    pub last_ts: Option<f64>,
    pub top_denied: Vec<DeniedFlow>,
    pub top_denied_bound: TopDeniedBound,
    pub rule_hits: Vec<RuleHit>,
    /// Network ACL entries by the packets they decided (SPEC §9.1).
    pub nacl_hits: Vec<NaclHit>,
    pub elapsed_seconds: f64,
    pub packets_per_second: f64,
    /// pcap LINKTYPE values sgplane cannot parse, with their packet counts
    /// (counted as not-ip).
    pub unsupported_link_types: BTreeMap<u32, u64>,
    /// Malformed frames by what was wrong with them.
    pub malformed: BTreeMap<String, u64>,
    /// Set when the capture ended early: where, and why.
    pub stopped: Option<Stopped>,
    /// Set when a signal stopped the replay.
    pub interrupted: Option<Interrupted>,
    /// With `--compare`: the flows whose verdict the other policy changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compare: Option<super::Compared>,
    #[serde(skip)]
    denied_flows: SpaceSaving<DenyKey, Decided>,
    #[serde(skip)]
    flows: DistinctCount,
    #[serde(skip)]
    first_ns: u64,
    #[serde(skip)]
    last_ns: u64,
}

impl Report {
    pub fn new(input: &str, format: &str) -> Report {
        Report {
            input: input.to_string(),
            format: format.to_string(),
            packets: 0,
            allowed: 0,
            denied: 0,
            bytes: 0,
            allowed_by_reason: BTreeMap::new(),
            denied_by_reason: BTreeMap::new(),
            distinct_flows: 0,
            distinct_flows_exact: true,
            distinct_flows_standard_error: 0.0,
            new_flows: 0,
            flows_opened: 0,
            early_drops: 0,
            flow_log_skipped: None,
            conntrack_entries: 0,
            allowances: Vec::new(),
            first_ts: None,
            last_ts: None,
            top_denied: Vec::new(),
            top_denied_bound: TopDeniedBound {
                counters: DENIED_COUNTERS,
                denied_packets: 0,
                exact: true,
                listed_above: 0,
                min_count: 0,
                statement: String::new(),
            },
            rule_hits: Vec::new(),
            nacl_hits: Vec::new(),
            elapsed_seconds: 0.0,
            packets_per_second: 0.0,
            unsupported_link_types: BTreeMap::new(),
            malformed: BTreeMap::new(),
            stopped: None,
            interrupted: None,
            compare: None,
            denied_flows: SpaceSaving::new(DENIED_COUNTERS),
            flows: DistinctCount::default(),
            first_ns: 0,
            last_ns: 0,
        }
    }

    pub fn unsupported_link(&mut self, linktype: u32) {
        *self.unsupported_link_types.entry(linktype).or_default() += 1;
    }

    /// Notes one packet's judgement (the engine counts verdicts itself).
    pub fn observe(&mut self, j: &Judgement, ts: u64, policy: &Policy) {
        self.observe_ahead(j, ts, policy, None);
    }

    /// Counts the flows of packets computed ahead, before their
    /// judgements are observed: a flow is counted whatever its verdict, and
    /// one pass over a chunk's hashes keeps their memory loads in flight
    /// together.
    pub fn observe_flows(&mut self, ahead: &[Option<Ahead>]) {
        for h in ahead.iter().flatten().filter_map(Ahead::flow) {
            self.flows.insert(h);
        }
    }

    /// [`Report::observe`] with what [`Ahead::of`] gave for the
    /// judgement's packet, if it was computed ahead (its flow then counted
    /// by [`Report::observe_flows`]).
    #[inline]
    pub fn observe_ahead(
        &mut self,
        j: &Judgement,
        ts: u64,
        policy: &Policy,
        ahead: Option<&Ahead>,
    ) {
        if self.first_ns == 0 {
            self.first_ns = ts.max(1);
        }
        self.last_ns = ts;
        let Some(p) = j.packet else { return };
        // The zone the engine judged it in: a GWLB zone, or a VPC space.
        // A packet computed ahead had its flow counted by `observe_flows`.
        let zone = match ahead {
            Some(a) => a.zone(),
            None => {
                let zone = policy.packet_zone(&p);
                if let Some(h) = flow_hash(&p, zone) {
                    self.flows.insert(h);
                }
                zone
            }
        };
        if j.verdict != Verdict::Deny {
            return;
        }
        let k = DenyKey::of(&p, zone, j.reason);
        let partial = match ahead {
            Some(a) => a.deny,
            None => k.partial_hash(),
        };
        self.denied_flows.observe_hashed(&k, partial, || Decided {
            rule: j.rule,
            decision: j.decision,
            nacl: j.nacl,
        });
    }

    /// Brings the places the counters of a packet's denied flow would take
    /// into the cache, ahead of its judgement (the summary's counters do
    /// not fit in the first-level cache beside the engine's tables).
    #[inline]
    pub fn prefetch_denied(&self, ahead: &Ahead) {
        self.denied_flows.prefetch(ahead.deny);
    }

    /// Fills in the totals from the engine once the capture is done.
    pub fn finish(&mut self, engine: &Engine, elapsed: Duration, stopped: Option<(u64, String)>) {
        let s = engine.stats();
        let policy = engine.policy();
        self.packets = s.packets;
        self.allowed = s.allowed;
        self.denied = s.denied;
        self.bytes = s.bytes_allowed + s.bytes_denied;
        for r in Reason::ALL {
            let (a, d) = (
                s.allowed_by_reason[r.index()],
                s.denied_by_reason[r.index()],
            );
            if a > 0 {
                self.allowed_by_reason.insert(r, a);
            }
            if d > 0 {
                self.denied_by_reason.insert(r, d);
            }
        }
        if self.first_ns != 0 {
            self.first_ts = Some(self.first_ns as f64 / 1e9);
            self.last_ts = Some(self.last_ns as f64 / 1e9);
        }
        self.malformed = s
            .malformed
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        self.distinct_flows = self.flows.count();
        self.distinct_flows_exact = self.flows.is_exact();
        self.distinct_flows_standard_error = if self.distinct_flows_exact {
            0.0
        } else {
            distinct::STANDARD_ERROR
        };
        self.new_flows = s.new_flows;
        self.flows_opened = s.flows_opened;
        self.early_drops = s.early_drops;
        self.conntrack_entries = engine.conntrack().len();
        self.allowances = engine
            .conntrack()
            .interfaces()
            .iter()
            .enumerate()
            .filter(|(i, c)| {
                (c.max_entries.is_some() || c.exceeded > 0) && *i < policy.interfaces().len()
            })
            .map(|(i, c)| Allowance {
                interface: policy.interfaces()[i].name.clone(),
                entries: c.entries,
                max_entries: c.max_entries,
                available: c.available(),
                exceeded: c.exceeded,
            })
            .collect();
        let mut hits: Vec<RuleHit> = s
            .rule_hits
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(i, &n)| RuleHit {
                rule: policy.rule_name(i as u32).to_string(),
                flows: n,
            })
            .collect();
        hits.sort_by(|a, b| b.flows.cmp(&a.flows).then_with(|| a.rule.cmp(&b.rule)));
        self.rule_hits = hits;
        if let Some(n) = policy.nacls() {
            let mut hits: Vec<NaclHit> = s
                .nacl_hits
                .iter()
                .enumerate()
                .filter(|(_, &c)| c > 0)
                .map(|(i, &c)| NaclHit {
                    rule: n.hit_name(i).to_string(),
                    packets: c,
                })
                .collect();
            hits.sort_by(|a, b| b.packets.cmp(&a.packets).then_with(|| a.rule.cmp(&b.rule)));
            self.nacl_hits = hits;
        }
        // Most packets first; the first seen first among equals.
        self.top_denied = self
            .denied_flows
            .top(TOP_DENIED)
            .into_iter()
            .map(|c| {
                let (k, d) = (c.key, c.value);
                DeniedFlow {
                    src: k.src,
                    dst: k.dst,
                    proto: IpProto(k.proto).to_string(),
                    dport: k.dport,
                    icmp_type: k.icmp,
                    zone: k.zone.map(|z| policy.zone_label(z)),
                    packets: c.count,
                    error: c.error,
                    reason: k.reason,
                    rule: match (d.nacl, policy.nacls()) {
                        (Some(a), Some(n)) => Some(n.rule_name(&a).to_string()),
                        _ => d.rule.map(|r| policy.rule_name(r).to_string()),
                    },
                    interface: match d.nacl {
                        Some(a) => Some(policy.subnet_name(a.subnet).to_string()),
                        None => d.decision.map(|(i, _)| policy.interface(i).name.clone()),
                    },
                    direction: d
                        .nacl
                        .map(|a| a.direction)
                        .or(d.decision.map(|(_, d)| d))
                        .map(|d| d.to_string()),
                }
            })
            .collect();
        self.top_denied_bound = self.bound();
        self.elapsed_seconds = elapsed.as_secs_f64();
        self.packets_per_second = if self.elapsed_seconds > 0.0 {
            self.packets as f64 / self.elapsed_seconds
        } else {
            0.0
        };
        self.stopped = stopped.map(|(offset, error)| Stopped { offset, error });
    }

    /// Notes that `signal` stopped the replay after the packets counted.
    pub fn interrupt(&mut self, signal: i32, offset: u64) {
        let name = match signal {
            libc::SIGINT => "SIGINT".to_string(),
            libc::SIGTERM => "SIGTERM".to_string(),
            libc::SIGHUP => "SIGHUP".to_string(),
            n => format!("signal {n}"),
        };
        self.interrupted = Some(Interrupted {
            signal: name,
            at_packet: self.packets,
            offset,
        });
    }

    /// The Space-Saving guarantee, in numbers and in words.
    fn bound(&self) -> TopDeniedBound {
        let ss = &self.denied_flows;
        let (k, n) = (ss.capacity(), ss.total());
        let listed_above = n / k as u64;
        let statement = if ss.is_exact() {
            format!("counts exact: no more distinct denied flows than the {k} counters")
        } else {
            format!(
                "{k} counters over {n} denied packets: a count ±E is at most E above \
                 the true count (±0 is exact); every flow with more than {} denied \
                 packets is counted (at most N/K = {listed_above})",
                ss.min_count()
            )
        };
        TopDeniedBound {
            counters: k,
            denied_packets: n,
            exact: ss.is_exact(),
            listed_above,
            min_count: ss.min_count(),
            statement,
        }
    }

    /// The summary as text.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let pct = |n: u64| {
            if self.packets == 0 {
                0.0
            } else {
                n as f64 * 100.0 / self.packets as f64
            }
        };
        let _ = writeln!(s, "{} ({})", self.input, self.format);
        if let (Some(a), Some(b)) = (self.first_ts, self.last_ts) {
            let _ = writeln!(s, "  capture time    {:.3} s", b - a);
        }
        let _ = writeln!(
            s,
            "  packets         {:>10}  ({} bytes)",
            self.packets, self.bytes
        );
        let _ = writeln!(
            s,
            "  allowed         {:>10}  {:5.1}%",
            self.allowed,
            pct(self.allowed)
        );
        for (r, n) in &self.allowed_by_reason {
            let _ = writeln!(s, "    {:<20}{:>8}", r.as_str(), n);
        }
        let _ = writeln!(
            s,
            "  denied          {:>10}  {:5.1}%",
            self.denied,
            pct(self.denied)
        );
        for (r, n) in &self.denied_by_reason {
            let _ = writeln!(s, "    {:<20}{:>8}", r.as_str(), n);
            if *r == Reason::Malformed {
                for (what, n) in &self.malformed {
                    let _ = writeln!(s, "      {:<18}{:>8}", what, n);
                }
            }
        }
        let estimate = if self.distinct_flows_exact {
            String::new()
        } else {
            format!(
                " (estimate, ±{:.1}% standard error)",
                self.distinct_flows_standard_error * 100.0
            )
        };
        let _ = writeln!(
            s,
            "  flows           {:>10}  distinct{estimate}; {} decided by rules, {} opened, {} tracked at the end",
            self.distinct_flows, self.new_flows, self.flows_opened, self.conntrack_entries
        );
        if self.early_drops > 0 {
            let _ = writeln!(
                s,
                "  early drops     {:>10}  unassured entries evicted from the full table for new flows",
                self.early_drops
            );
        }
        if let Some(f) = &self.flow_log_skipped {
            let _ = writeln!(
                s,
                "  flow log        {:>10}  packets of flows past its {} records held went to SKIPDATA records (--flow-log-max-records)",
                f.packets, f.max_records
            );
        }
        for a in &self.allowances {
            let _ = writeln!(
                s,
                "  allowance       {:>10}  {}: {} entries of {}, {} available, {} new flows refused (conntrack_allowance_exceeded)",
                a.exceeded,
                a.interface,
                a.entries,
                a.max_entries.map_or("no limit of its own".to_string(), |m| m.to_string()),
                a.available.map_or("-".to_string(), |m| m.to_string()),
                a.exceeded
            );
        }
        for (lt, n) in &self.unsupported_link_types {
            let _ = writeln!(
                s,
                "  note: link type {lt} is not understood; its {n} packets are counted as not-ip"
            );
        }
        if !self.top_denied.is_empty() {
            let exact = self.top_denied_bound.exact;
            if exact {
                let _ = writeln!(s, "\ntop denied flows:");
            } else {
                let _ = writeln!(
                    s,
                    "\ntop denied flows (approximate: {}):",
                    self.top_denied_bound.statement
                );
            }
            for f in &self.top_denied {
                let what = match (f.dport, f.icmp_type) {
                    (Some(p), _) => format!("{}/{p}", f.proto),
                    (None, Some(t)) => format!("{} type {t}", f.proto),
                    _ => f.proto.clone(),
                };
                let at = match (&f.interface, &f.direction) {
                    (Some(i), Some(d)) => format!(" at {i} {d}"),
                    _ => String::new(),
                };
                let by = f
                    .rule
                    .as_ref()
                    .map(|r| format!(" by {r}"))
                    .unwrap_or_default();
                let zone = f
                    .zone
                    .as_ref()
                    .map(|z| format!(" [{z}]"))
                    .unwrap_or_default();
                let error = if exact {
                    String::new()
                } else {
                    format!(" ±{:<7}", f.error)
                };
                let _ = writeln!(
                    s,
                    "  {:>8}{error}  {} -> {} {what}{zone}: {}{by}{at}",
                    f.packets,
                    f.src,
                    f.dst,
                    f.reason.as_str()
                );
            }
        }
        if !self.rule_hits.is_empty() {
            let _ = writeln!(s, "\nrule hits (new flows decided):");
            for h in &self.rule_hits {
                let _ = writeln!(s, "  {:>8}  {}", h.flows, h.rule);
            }
        }
        if !self.nacl_hits.is_empty() {
            let _ = writeln!(s, "\nnetwork ACL hits (packets decided):");
            for h in &self.nacl_hits {
                let _ = writeln!(s, "  {:>8}  {}", h.packets, h.rule);
            }
        }
        let _ = writeln!(
            s,
            "\n{} packets in {:.3} s: {:.0} packets/s",
            self.packets, self.elapsed_seconds, self.packets_per_second
        );
        if let Some(i) = &self.interrupted {
            let _ = writeln!(
                s,
                "interrupted by {} at packet {} (byte {} of the input): the {} packets before it are counted above and written to every output",
                i.signal, i.at_packet, i.offset, i.at_packet
            );
        }
        if let Some(st) = &self.stopped {
            let _ = writeln!(
                s,
                "stopped early: {} (the {} packets before it are counted above)",
                st.error, self.packets
            );
        }
        if let Some(c) = &self.compare {
            s.push('\n');
            s.push_str(&c.to_text());
        }
        s
    }
}

/// A hash of the flow a packet belongs to, the same for both directions:
/// zone, protocol and the ordered pair of (address, port) ends, as
/// `Engine::flow_key` keys conntrack (ICMP echo by identifier, other
/// protocols by addresses). Later fragments and ICMP messages other than
/// echo belong to a flow counted by its own packets: `None`.
#[inline]
fn flow_hash(p: &IpPacket, zone: Option<ZoneId>) -> Option<u64> {
    if let Fragment::Later { .. } = p.fragment {
        return None;
    }
    let (sport, dport) = match p.l4 {
        L4::Tcp { sport, dport, .. } | L4::Udp { sport, dport } => (sport, dport),
        L4::Icmp { typ, ident, .. } => {
            let v6 = p.proto == IpProto::ICMPV6;
            let echo = if v6 {
                typ == 128 || typ == 129
            } else {
                typ == 8 || typ == 0
            };
            if !echo {
                return None;
            }
            (ident, ident)
        }
        L4::None => (0, 0),
    };
    let (a, b) = ((addr_key(p.src).1, sport), (addr_key(p.dst).1, dport));
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let zone = zone.unwrap_or(0);
    let family = u64::from(p.src.is_ipv6());
    // The ends as words (an IPv4 end is one: address and port side by
    // side), each fed to the hasher as it is.
    let mut h = foldhash::quality::FixedState::default().build_hasher();
    h.write_u64(zone);
    h.write_u64(u64::from(p.proto.0) | family << 8);
    for (addr, port) in [lo, hi] {
        if family == 0 {
            h.write_u64((addr as u64) << 16 | u64::from(port));
        } else {
            h.write_u64(addr as u64);
            h.write_u64((addr >> 64) as u64);
            h.write_u64(u64::from(port));
        }
    }
    Some(h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::packet::{Encap, Tunnel};
    use std::net::Ipv4Addr;

    fn v4(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(n))
    }

    fn packet(src: IpAddr, dst: IpAddr, proto: IpProto, l4: L4) -> IpPacket {
        IpPacket {
            src,
            dst,
            proto,
            ip_len: 40,
            fragment: Fragment::Whole,
            l4,
            tunnel: None,
            l4_offset: 20,
        }
    }

    fn tcp(src: IpAddr, dst: IpAddr, sport: u16, dport: u16) -> IpPacket {
        let l4 = L4::Tcp {
            sport,
            dport,
            flags: 0x02,
        };
        packet(src, dst, IpProto::TCP, l4)
    }

    fn judged(verdict: Verdict, reason: Reason, p: IpPacket) -> Judgement {
        Judgement {
            verdict,
            reason,
            rule: None,
            decision: None,
            nacl: None,
            packet: Some(p),
        }
    }

    fn denied(p: IpPacket) -> Judgement {
        judged(Verdict::Deny, Reason::NoRule, p)
    }

    fn finished(r: &mut Report) {
        let engine = Engine::with_policy(Policy::builtin());
        r.finish(&engine, Duration::from_secs(1), None);
    }

    /// What the reading thread computes ahead gives the report the
    /// judging thread alone gives: the same distinct count and the same
    /// top denied flows with the same counts, over IPv4 and IPv6, zones,
    /// several reasons and a scan that evicts counters all along.
    #[test]
    fn observing_with_what_was_computed_ahead_changes_nothing() {
        let policy = Policy::builtin();
        let v6 = |n: u32| {
            IpAddr::V6(std::net::Ipv6Addr::from(
                0x2001_0db8_u128 << 96 | u128::from(n),
            ))
        };
        let mut stream = Vec::new();
        for i in 0..20_000u32 {
            let (src, dst) = if i % 3 == 0 {
                (v6(i % 700), v6(1))
            } else {
                (v4(0x6440_0000 + i % 900), v4(0x0a00_0a0b))
            };
            let mut p = tcp(
                src,
                dst,
                40_000,
                (i.wrapping_mul(2_654_435_761) >> 16) as u16,
            );
            if i % 7 == 0 {
                // A heavy flow among the scan.
                p = tcp(v4(0x0a00_0001), v4(0x0a00_0002), 1, 22);
            }
            if i % 11 == 0 {
                p.tunnel = Some(Tunnel {
                    outer_ip_offset: Some(0),
                    header_offset: 28,
                    inner_offset: 44,
                    zone: Some(u64::from(i % 2) + 5),
                    encap: Encap::Geneve,
                });
            }
            let (verdict, reason) = match i % 5 {
                0 => (Verdict::Allow, Reason::Rule),
                1 => (Verdict::Deny, Reason::Invalid),
                _ => (Verdict::Deny, Reason::NoRule),
            };
            stream.push(judged(verdict, reason, p));
        }
        let mut plain = Report::new("t", "pcap");
        let mut ahead = Report::new("t", "pcap");
        for (i, j) in stream.iter().enumerate() {
            plain.observe(j, i as u64 + 1, &policy);
        }
        // As replay does: a chunk's flows, then its judgements.
        for (c, chunk) in stream.chunks(1000).enumerate() {
            let computed: Vec<Option<Ahead>> = chunk
                .iter()
                .map(|j| Some(Ahead::of(&j.packet.unwrap(), &policy)))
                .collect();
            ahead.observe_flows(&computed);
            for (k, (j, a)) in chunk.iter().zip(&computed).enumerate() {
                ahead.observe_ahead(j, (c * 1000 + k) as u64 + 1, &policy, a.as_ref());
            }
        }
        finished(&mut plain);
        finished(&mut ahead);
        assert!(!plain.top_denied_bound.exact, "the scan evicted counters");
        assert_eq!(plain.distinct_flows, ahead.distinct_flows);
        let top = |r: &Report| -> Vec<String> {
            r.denied_flows
                .top(usize::MAX)
                .iter()
                .map(|c| format!("{:?} {} {} {}", c.key, c.count, c.error, c.first))
                .collect()
        };
        assert_eq!(top(&plain), top(&ahead));
        assert_eq!(plain.to_text(), ahead.to_text());
    }

    #[test]
    fn a_flow_and_its_replies_are_one_distinct_flow() {
        let (a, b) = (v4(0x0a00_0001), v4(0x0a00_0002));
        let echo = |src, dst, typ, ident| {
            packet(
                src,
                dst,
                IpProto::ICMP,
                L4::Icmp {
                    typ,
                    code: 0,
                    ident,
                },
            )
        };
        let mut later = tcp(a, b, 1000, 80);
        later.fragment = Fragment::Later { id: 7 };
        let mut zoned = tcp(a, b, 1000, 80);
        zoned.tunnel = Some(Tunnel {
            outer_ip_offset: Some(0),
            header_offset: 28,
            inner_offset: 44,
            zone: Some(5),
            encap: Encap::Geneve,
        });
        let udp = packet(
            a,
            b,
            IpProto::UDP,
            L4::Udp {
                sport: 1000,
                dport: 80,
            },
        );
        let mut r = Report::new("t", "pcap");
        for (p, verdict) in [
            (tcp(a, b, 1000, 80), Verdict::Allow),
            (tcp(b, a, 80, 1000), Verdict::Allow), // the reply
            (tcp(a, b, 1000, 80), Verdict::Deny),  // a retransmission decided again
            (tcp(a, b, 1001, 80), Verdict::Deny),  // 2: another source port
            (udp, Verdict::Allow),                 // 3: another protocol
            (zoned, Verdict::Allow),               // 4: another zone
            (echo(a, b, 8, 9), Verdict::Allow),    // 5: echo request ...
            (echo(b, a, 0, 9), Verdict::Allow),    //    ... and its reply
            (echo(a, b, 8, 10), Verdict::Allow),   // 6: another identifier
            (echo(b, a, 3, 0), Verdict::Deny),     // an error: part of a flow
            (later, Verdict::Allow),               // a later fragment: likewise
            (packet(a, b, IpProto(47), L4::None), Verdict::Allow), // 7: GRE
            (packet(b, a, IpProto(47), L4::None), Verdict::Allow),
        ] {
            r.observe(&judged(verdict, Reason::Rule, p), 1, &Policy::builtin());
        }
        finished(&mut r);
        assert_eq!((r.distinct_flows, r.distinct_flows_exact), (7, true));
        assert!(r
            .to_text()
            .contains("  flows                    7  distinct; "));
    }

    #[test]
    fn repeated_flows_are_counted_once_within_the_standard_error() {
        let policy = Policy::builtin();
        let server = v4(0x0a00_0002);
        let mut r = Report::new("t", "pcap");
        for round in 0..10u64 {
            for i in 0..100_000u32 {
                let p = tcp(
                    v4(0xc612_0000 + i / 1000),
                    server,
                    1024 + (i % 1000) as u16,
                    443,
                );
                r.observe(
                    &judged(Verdict::Allow, Reason::Established, p),
                    round,
                    &policy,
                );
            }
        }
        finished(&mut r);
        assert!(!r.distinct_flows_exact);
        let off = (r.distinct_flows as f64 - 100_000.0).abs() / 100_000.0;
        assert!(
            off < 3.0 * distinct::STANDARD_ERROR,
            "{} flows",
            r.distinct_flows
        );
        let text = r.to_text();
        assert!(
            text.contains("distinct (estimate, ±0.8% standard error)"),
            "{text}"
        );
    }

    #[test]
    fn few_denied_flows_are_listed_exactly_most_packets_then_first_seen() {
        let policy = Policy::builtin();
        let server = v4(0x0a00_0002);
        let mut r = Report::new("t", "pcap");
        // Flows 0..5 with 1, 3, 3, 2, 3 packets, interleaved.
        let sends = [0u16, 1, 2, 1, 3, 2, 4, 1, 3, 4, 2, 4];
        for (t, &f) in sends.iter().enumerate() {
            r.observe(
                &denied(tcp(v4(0xc000_0201), server, 5000, 100 + f)),
                t as u64,
                &policy,
            );
        }
        finished(&mut r);
        let got: Vec<(Option<u16>, u64, u64)> = r
            .top_denied
            .iter()
            .map(|f| (f.dport, f.packets, f.error))
            .collect();
        let want = [(101, 3), (102, 3), (104, 3), (103, 2), (100, 1)];
        let want: Vec<_> = want.iter().map(|&(p, n)| (Some(p), n, 0)).collect();
        assert_eq!(got, want);
        assert!(r.top_denied_bound.exact);
        assert_eq!(r.top_denied_bound.denied_packets, sends.len() as u64);
        let text = r.to_text();
        assert!(
            text.contains(
                "\ntop denied flows:\n         3  192.0.2.1 -> 10.0.0.2 tcp/101: no-rule\n"
            ),
            "{text}"
        );
        assert!(!text.contains('±'), "{text}");
    }

    /// The denied flows' hash leaves the reason out (it is computed
    /// before the judgement): a flow denied for two reasons is still two
    /// entries, each with its own count.
    #[test]
    fn a_flow_denied_for_two_reasons_is_listed_twice() {
        let policy = Policy::builtin();
        let p = tcp(v4(0xc000_0201), v4(0x0a00_0002), 5000, 22);
        let mut r = Report::new("t", "pcap");
        let reasons = [
            Reason::NoRule,
            Reason::Invalid,
            Reason::NoRule,
            Reason::NoRule,
        ];
        for (t, &reason) in reasons.iter().enumerate() {
            let j = judged(Verdict::Deny, reason, p);
            let a = Ahead::of(&p, &policy);
            r.observe_flows(&[Some(a)]);
            r.observe_ahead(&j, t as u64 + 1, &policy, Some(&a));
        }
        finished(&mut r);
        let got: Vec<(Reason, u64)> = r.top_denied.iter().map(|f| (f.reason, f.packets)).collect();
        assert_eq!(got, [(Reason::NoRule, 3), (Reason::Invalid, 1)]);
        assert!(r.top_denied_bound.exact);
        assert_eq!(r.distinct_flows, 1);
    }

    #[test]
    fn a_scan_keeps_the_heavy_flows_in_bounded_counters_and_says_how_exact() {
        let policy = Policy::builtin();
        let server = v4(0x0a00_0002);
        let heavy = tcp(v4(0xcb00_7107), server, 40_000, 22);
        let medium = tcp(v4(0xcb00_7108), server, 40_000, 3389);
        let mut r = Report::new("t", "pcap");
        let n = 300_000u32;
        for i in 0..n {
            let p = if i % 10 == 0 {
                heavy
            } else if i % 250 == 1 {
                medium
            } else {
                tcp(
                    v4(0xc612_0000 | (i & 0xffff)),
                    server,
                    40_000,
                    (i >> 16) as u16 + 1,
                )
            };
            r.observe(&denied(p), u64::from(i), &policy);
        }
        assert_eq!(r.denied_flows.iter().count(), DENIED_COUNTERS);
        finished(&mut r);
        let b = &r.top_denied_bound;
        assert!(!b.exact);
        assert_eq!(b.denied_packets, u64::from(n));
        assert_eq!(b.listed_above, u64::from(n) / DENIED_COUNTERS as u64);
        assert!(b.min_count <= b.listed_above);
        // True counts: heavy 30,000, medium 1,200 (> N/K = 292).
        for (f, p, truth) in [
            (&r.top_denied[0], heavy, 30_000),
            (&r.top_denied[1], medium, 1_200),
        ] {
            assert_eq!((f.src, f.dport), (p.src, Some(p.ports().unwrap().1)));
            assert!(f.packets >= truth && f.packets - f.error <= truth, "{f:?}");
        }
        let text = r.to_text();
        assert!(
            text.contains(
                "top denied flows (approximate: 1024 counters over 300000 denied packets"
            ),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "every flow with more than {} denied packets is counted (at most N/K = 292)",
                b.min_count
            )),
            "{text}"
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["top_denied_bound"]["exact"], false);
        assert!(json["top_denied"][0]["error"].is_u64());
    }
}
