//! The replay summary: packets, verdicts by reason, flows, top denied flows,
//! rule hits and speed, as text or JSON.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use serde::Serialize;

use crate::engine::{Engine, Judgement};
use crate::policy::{zone_name, Policy, Reason, Verdict, ZoneId};
use crate::wire::L4;

/// How many denied flows the summary lists.
pub const TOP_DENIED: usize = 10;

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
    pub packets: u64,
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
    /// New flows decided by the rules, and entries opened in the table.
    pub new_flows: u64,
    pub flows_opened: u64,
    pub conntrack_entries: usize,
    pub first_ts: Option<f64>,
    pub last_ts: Option<f64>,
    pub top_denied: Vec<DeniedFlow>,
    pub rule_hits: Vec<RuleHit>,
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
    #[serde(skip)]
    denied_flows: HashMap<DenyKey, (u64, Judgement), foldhash::fast::RandomState>,
    #[serde(skip)]
    deny_order: Vec<DenyKey>,
    #[serde(skip)]
    first_ns: u64,
    #[serde(skip)]
    last_ns: u64,
}

/// The most distinct denied flows remembered for the top list.
const MAX_DENIED_FLOWS: usize = 1 << 20;

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
            new_flows: 0,
            flows_opened: 0,
            conntrack_entries: 0,
            first_ts: None,
            last_ts: None,
            top_denied: Vec::new(),
            rule_hits: Vec::new(),
            elapsed_seconds: 0.0,
            packets_per_second: 0.0,
            unsupported_link_types: BTreeMap::new(),
            malformed: BTreeMap::new(),
            stopped: None,
            interrupted: None,
            denied_flows: HashMap::default(),
            deny_order: Vec::new(),
            first_ns: 0,
            last_ns: 0,
        }
    }

    pub fn unsupported_link(&mut self, linktype: u32) {
        *self.unsupported_link_types.entry(linktype).or_default() += 1;
    }

    /// Notes one packet's judgement (the engine counts verdicts itself).
    pub fn observe(&mut self, j: &Judgement, ts: u64, _policy: &Policy) {
        if self.first_ns == 0 {
            self.first_ns = ts.max(1);
        }
        self.last_ns = ts;
        if j.verdict != Verdict::Deny {
            return;
        }
        let Some(p) = j.packet else { return };
        let (dport, icmp) = match p.l4 {
            L4::Tcp { dport, .. } | L4::Udp { dport, .. } => (Some(dport), None),
            L4::Icmp { typ, .. } => (None, Some(typ)),
            L4::None => (None, None),
        };
        let k = DenyKey {
            zone: j.zone(),
            src: p.src,
            dst: p.dst,
            proto: p.proto.0,
            dport,
            icmp,
            reason: j.reason,
        };
        if let Some(e) = self.denied_flows.get_mut(&k) {
            e.0 += 1;
        } else if self.denied_flows.len() < MAX_DENIED_FLOWS {
            self.denied_flows.insert(k, (1, *j));
            self.deny_order.push(k);
        }
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
        self.new_flows = s.new_flows;
        self.flows_opened = s.flows_opened;
        self.conntrack_entries = engine.conntrack().len();
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
        let mut flows: Vec<(DenyKey, u64, Judgement)> = self
            .deny_order
            .iter()
            .map(|k| (*k, self.denied_flows[k].0, self.denied_flows[k].1))
            .collect();
        // Most packets first; the first seen first among equals.
        flows.sort_by_key(|f| std::cmp::Reverse(f.1));
        self.top_denied = flows
            .into_iter()
            .take(TOP_DENIED)
            .map(|(k, n, j)| DeniedFlow {
                src: k.src,
                dst: k.dst,
                proto: crate::policy::IpProto(k.proto).to_string(),
                dport: k.dport,
                icmp_type: k.icmp,
                zone: k.zone.map(zone_name),
                packets: n,
                reason: j.reason,
                rule: j.rule.map(|r| policy.rule_name(r).to_string()),
                interface: j.decision.map(|(i, _)| policy.interface(i).name.clone()),
                direction: j.decision.map(|(_, d)| d.to_string()),
            })
            .collect();
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
        let _ = writeln!(
            s,
            "  flows           {:>10}  new flows decided by rules, {} opened, {} tracked at the end",
            self.new_flows, self.flows_opened, self.conntrack_entries
        );
        for (lt, n) in &self.unsupported_link_types {
            let _ = writeln!(
                s,
                "  note: link type {lt} is not understood; its {n} packets are counted as not-ip"
            );
        }
        if !self.top_denied.is_empty() {
            let _ = writeln!(s, "\ntop denied flows:");
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
                let _ = writeln!(
                    s,
                    "  {:>8}  {} -> {} {what}{zone}: {}{by}{at}",
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
        s
    }
}
