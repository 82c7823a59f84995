//! AWS VPC Flow Logs version 2 lines, one per flow and interface:
//! `version account-id interface-id srcaddr dstaddr srcport dstport protocol
//! packets bytes start end action log-status`.
//!
//! As an ENI's flow log does, an interface records the packets that cross it:
//! an allowed packet on the source's and the destination's interface; a packet
//! denied by the source's egress only there (REJECT); one denied by the
//! destination's ingress as ACCEPT leaving the source and REJECT at the
//! destination. Addresses of no interface are not logged.
//!
//! As AWS does, records aggregate over windows of capture time (the
//! aggregation interval, 1 or 10 minutes, aligned on multiples of it): a
//! flow active in two windows has a record in each, its start and end the
//! times of its first and last packet in that window. A window's records are
//! written, and forgotten, once a packet at or past the window's end has been
//! seen, so memory holds one window, not the capture. A packet older than a
//! window already written (capture time going back) gets a record of its
//! own window, written with the next ones.
//!
//! As AWS skips records "when it can't capture flow log data during an
//! aggregation interval because it exceeds internal capacity", a log holds
//! at most [`FlowLog::max_records`] records at once (a scan or a flood
//! makes a new flow of nearly every packet): the packets of a flow that
//! finds no room are counted, per window and interface, in one `SKIPDATA`
//! record (`2 ACCOUNT IFACE - - - - - - - START END - SKIPDATA`, start and
//! end the times of the first and last of them), written after that
//! window's records. Flows already recorded go on counting.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Write};
use std::net::IpAddr;
use std::str::FromStr;

use crate::engine::Judgement;
use crate::policy::{Direction, IfaceId, Policy, Verdict};
use crate::wire::L4;

/// How long a record aggregates (AWS's `MaxAggregationInterval`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AggregationInterval {
    OneMinute,
    /// AWS's default.
    #[default]
    TenMinutes,
}

impl AggregationInterval {
    pub fn seconds(self) -> u64 {
        match self {
            AggregationInterval::OneMinute => 60,
            AggregationInterval::TenMinutes => 600,
        }
    }
}

/// An aggregation interval AWS does not offer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an aggregation interval: 60 or 600 (seconds), as AWS allows")]
pub struct BadInterval(pub String);

impl FromStr for AggregationInterval {
    type Err = BadInterval;

    fn from_str(s: &str) -> Result<Self, BadInterval> {
        match s.trim() {
            "60" => Ok(AggregationInterval::OneMinute),
            "600" => Ok(AggregationInterval::TenMinutes),
            _ => Err(BadInterval(s.to_string())),
        }
    }
}

impl fmt::Display for AggregationInterval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.seconds())
    }
}

/// The header line.
const HEADER: &str = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Key {
    /// Start of the window, seconds.
    window: u64,
    iface: IfaceId,
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    proto: u8,
    accept: bool,
}

/// The skipped packets of one window and interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct SkipKey {
    window: u64,
    iface: IfaceId,
}

#[derive(Debug, Clone, Copy)]
struct Counts {
    packets: u64,
    bytes: u64,
    start: u64,
    end: u64,
}

/// Flow records being aggregated, by window.
#[derive(Debug)]
pub struct FlowLog {
    interval: u64,
    flows: HashMap<Key, Counts, foldhash::fast::RandomState>,
    /// Records held at most ([`FlowLog::max_records`]).
    max_records: usize,
    /// Packets of flows that found no room, by window and interface (their
    /// `SKIPDATA` records): at most one a window and interface held.
    skipped: HashMap<SkipKey, Counts, foldhash::fast::RandomState>,
    /// Packets counted in `SKIPDATA` records since the log began.
    skipped_packets: u64,
    /// End of the earliest window holding records (u64::MAX: none).
    next_end: u64,
    /// The latest time seen, seconds.
    latest: u64,
}

impl Default for FlowLog {
    fn default() -> FlowLog {
        FlowLog::new(AggregationInterval::default())
    }
}

impl FlowLog {
    pub fn new(interval: AggregationInterval) -> FlowLog {
        FlowLog {
            interval: interval.seconds(),
            flows: HashMap::default(),
            max_records: DEFAULT_MAX_RECORDS,
            skipped: HashMap::default(),
            skipped_packets: 0,
            next_end: u64::MAX,
            latest: 0,
        }
    }

    /// This log holding at most `n` records at once (at least 1); the
    /// packets of flows past them go to `SKIPDATA` records.
    pub fn with_max_records(mut self, n: usize) -> FlowLog {
        self.max_records = n.max(1);
        self
    }

    /// The most records held at once: memory is bounded by them (about a
    /// hundred bytes each, twice that while a window is written), not by
    /// the flows of a window.
    pub fn max_records(&self) -> usize {
        self.max_records
    }

    /// Packets whose flows found no room and were counted in `SKIPDATA`
    /// records, since the log began.
    pub fn skipped_packets(&self) -> u64 {
        self.skipped_packets
    }

    /// Writes the header line, once per file.
    pub fn write_header(w: &mut dyn Write) -> io::Result<()> {
        writeln!(w, "{HEADER}")
    }

    pub fn observe(&mut self, j: &Judgement, bytes: u32, ts: u64, policy: &Policy) {
        let secs = ts / 1_000_000_000;
        self.latest = self.latest.max(secs);
        let Some(p) = j.packet else { return };
        let window = secs - secs % self.interval;
        let mut logged = false;
        let zone = policy.packet_zone(&p);
        let s_if = policy.interface_of(p.src, zone);
        let d_if = policy.interface_of(p.dst, zone);
        let (sport, dport) = match p.l4 {
            L4::Tcp { sport, dport, .. } | L4::Udp { sport, dport } => (sport, dport),
            _ => (0, 0),
        };
        let mut add = |iface: Option<IfaceId>, accept: bool| {
            let Some(iface) = iface else { return };
            logged = true;
            let k = Key {
                window,
                iface,
                src: p.src,
                dst: p.dst,
                sport,
                dport,
                proto: p.proto.0,
                accept,
            };
            let room = self.flows.len() < self.max_records || self.flows.contains_key(&k);
            let c = if room {
                self.flows.entry(k).or_insert_with(|| Counts::first(secs))
            } else {
                self.skipped_packets += 1;
                self.skipped
                    .entry(SkipKey { window, iface })
                    .or_insert_with(|| Counts::first(secs))
            };
            c.add(bytes, secs);
        };
        // A network ACL's denial is where the packet stopped: at the source
        // leaving its subnet, or at the destination entering its own.
        let decision = j.decision.or(j.nacl.map(|n| match n.direction {
            Direction::Egress => (s_if.unwrap_or(IfaceId::MAX), Direction::Egress),
            Direction::Ingress => (d_if.unwrap_or(IfaceId::MAX), Direction::Ingress),
        }));
        let decision = decision.filter(|&(i, _)| i != IfaceId::MAX);
        match (j.verdict, decision) {
            (Verdict::Allow, _) => {
                add(s_if, true);
                if d_if != s_if {
                    add(d_if, true);
                }
            }
            (Verdict::Deny, Some((i, Direction::Egress))) => add(Some(i), false),
            (Verdict::Deny, Some((i, Direction::Ingress))) => {
                if s_if != Some(i) {
                    add(s_if, true);
                }
                add(Some(i), false);
            }
            (Verdict::Deny, None) => add(d_if.or(s_if), false),
        }
        if logged {
            self.next_end = self.next_end.min(window.saturating_add(self.interval));
        }
    }

    /// True when a window holding records has ended: a packet at or past
    /// its end was seen.
    pub fn window_ended(&self) -> bool {
        self.latest >= self.next_end
    }

    /// Notes that time `now` has come without a packet (live modes: the
    /// clock), so the windows before it can be written.
    pub fn advance(&mut self, now: u64) {
        self.latest = self.latest.max(now / 1_000_000_000);
    }

    /// Writes the records of the windows that have ended, each window sorted
    /// by start then key, and forgets them.
    pub fn write_ended(
        &mut self,
        w: &mut dyn Write,
        account_id: &str,
        policy: &Policy,
    ) -> io::Result<()> {
        if !self.window_ended() {
            return Ok(());
        }
        let (latest, interval) = (self.latest, self.interval);
        let ended = |window: u64| window.saturating_add(interval) <= latest;
        // Sized once: the records of a window may be all the log holds.
        let n = self.flows.iter().filter(|(k, _)| ended(k.window)).count();
        let mut rows = Vec::with_capacity(n);
        self.flows.retain(|k, c| {
            let end = ended(k.window);
            if end {
                rows.push((*k, *c));
            }
            !end
        });
        let mut skips = Vec::new();
        self.skipped.retain(|k, c| {
            let end = ended(k.window);
            if end {
                skips.push((*k, *c));
            }
            !end
        });
        let windows = self.flows.keys().map(|k| k.window);
        let skipped_windows = self.skipped.keys().map(|k| k.window);
        self.next_end = windows
            .chain(skipped_windows)
            .map(|w| w.saturating_add(interval))
            .min()
            .unwrap_or(u64::MAX);
        write_records(w, rows, skips, account_id, policy)
    }

    /// Writes every record left, window by window, and forgets them.
    pub fn write_all(
        &mut self,
        w: &mut dyn Write,
        account_id: &str,
        policy: &Policy,
    ) -> io::Result<()> {
        let all: Vec<(Key, Counts)> = self.flows.drain().collect();
        let skips: Vec<(SkipKey, Counts)> = self.skipped.drain().collect();
        self.next_end = u64::MAX;
        write_records(w, all, skips, account_id, policy)
    }

    /// Number of records held (`SKIPDATA` ones not counted).
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    /// True when nothing is left to write (no record, no `SKIPDATA` one).
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty() && self.skipped.is_empty()
    }
}

/// Records held at most by default: with a window's records copied out
/// to be sorted, about 40 MB, so a scan or a flood stays bounded.
pub const DEFAULT_MAX_RECORDS: usize = 200_000;

impl Counts {
    fn first(secs: u64) -> Counts {
        Counts {
            packets: 0,
            bytes: 0,
            start: secs,
            end: secs,
        }
    }

    fn add(&mut self, bytes: u32, secs: u64) {
        self.packets += 1;
        self.bytes += u64::from(bytes);
        self.start = self.start.min(secs);
        self.end = self.end.max(secs);
    }
}

/// Writes records window by window, each window's sorted by start then
/// key, then its `SKIPDATA` records by interface.
fn write_records(
    w: &mut dyn Write,
    mut rows: Vec<(Key, Counts)>,
    mut skips: Vec<(SkipKey, Counts)>,
    account_id: &str,
    policy: &Policy,
) -> io::Result<()> {
    rows.sort_unstable_by_key(|(k, c)| (k.window, c.start, *k));
    skips.sort_unstable_by_key(|(k, _)| *k);
    let mut skips = skips.into_iter().peekable();
    let mut write_skips = |w: &mut dyn Write, before: u64| -> io::Result<()> {
        while let Some((k, c)) = skips.next_if(|(k, _)| k.window < before) {
            writeln!(
                w,
                "2 {account_id} {} - - - - - - - {} {} - SKIPDATA",
                policy.interface(k.iface).name,
                c.start,
                c.end,
            )?;
        }
        Ok(())
    };
    for (k, c) in rows {
        write_skips(w, k.window)?;
        writeln!(
            w,
            "2 {account_id} {} {} {} {} {} {} {} {} {} {} {} OK",
            policy.interface(k.iface).name,
            k.src,
            k.dst,
            k.sport,
            k.dport,
            k.proto,
            c.packets,
            c.bytes,
            c.start,
            c.end,
            if k.accept { "ACCEPT" } else { "REJECT" }
        )?;
    }
    write_skips(w, u64::MAX)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::policy::{IpProto, Reason};
    use crate::wire::packet::{Fragment, IpPacket};

    pub(crate) const SEC: u64 = 1_000_000_000;
    /// Two interfaces that allow everything.
    pub(crate) const POLICY: &str = r#"
[security_groups.sg-all]
ingress = [ { proto = "all", from = "0.0.0.0/0" } ]
egress = [ { proto = "all", to = "0.0.0.0/0" } ]
[interfaces.eni-a]
addresses = ["10.0.0.1"]
security_groups = ["sg-all"]
[interfaces.eni-b]
addresses = ["10.0.0.2"]
security_groups = ["sg-all"]
"#;

    /// An allowed UDP packet from eni-a to eni-b's port 53.
    pub(crate) fn allowed(sport: u16) -> Judgement {
        Judgement {
            verdict: Verdict::Allow,
            reason: Reason::Rule,
            rule: None,
            decision: None,
            nacl: None,
            packet: Some(IpPacket {
                src: "10.0.0.1".parse().unwrap(),
                dst: "10.0.0.2".parse().unwrap(),
                proto: IpProto::UDP,
                ip_len: 100,
                fragment: Fragment::Whole,
                l4: L4::Udp { sport, dport: 53 },
                tunnel: None,
                l4_offset: 20,
            }),
        }
    }

    fn written(log: &mut FlowLog, policy: &Policy, all: bool) -> Vec<String> {
        let mut out = Vec::new();
        if all {
            log.write_all(&mut out, "1", policy).unwrap();
        } else {
            log.write_ended(&mut out, "1", policy).unwrap();
        }
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn a_flow_in_two_windows_has_a_record_in_each() {
        let policy = Policy::from_toml(POLICY, "t.toml").unwrap();
        let mut log = FlowLog::new(AggregationInterval::OneMinute);
        // Window [60, 120): two packets; window [120, 180): one.
        for t in [100, 110] {
            log.observe(&allowed(5000), 100, t * SEC, &policy);
        }
        assert!(!log.window_ended());
        assert!(
            written(&mut log, &policy, false).is_empty(),
            "nothing ended yet"
        );
        assert_eq!(log.len(), 2, "one record per interface");
        log.observe(&allowed(5000), 100, 130 * SEC, &policy);
        assert!(log.window_ended());
        assert_eq!(
            written(&mut log, &policy, false),
            [
                "2 1 eni-a 10.0.0.1 10.0.0.2 5000 53 17 2 200 100 110 ACCEPT OK",
                "2 1 eni-b 10.0.0.1 10.0.0.2 5000 53 17 2 200 100 110 ACCEPT OK",
            ]
        );
        // The written window is gone: only the open one is held.
        assert_eq!(log.len(), 2);
        assert!(!log.window_ended());
        assert_eq!(
            written(&mut log, &policy, true),
            [
                "2 1 eni-a 10.0.0.1 10.0.0.2 5000 53 17 1 100 130 130 ACCEPT OK",
                "2 1 eni-b 10.0.0.1 10.0.0.2 5000 53 17 1 100 130 130 ACCEPT OK",
            ]
        );
        assert!(log.is_empty());
    }

    #[test]
    fn memory_holds_one_window_not_the_capture() {
        let policy = Policy::from_toml(POLICY, "t.toml").unwrap();
        let mut log = FlowLog::new(AggregationInterval::OneMinute);
        let mut lines = 0;
        // Ten minutes of 500 new flows a minute.
        for minute in 0..10u64 {
            for i in 0..500u64 {
                let t = (minute * 60 + i % 60) * SEC;
                log.observe(&allowed(1000 + (minute * 500 + i) as u16), 64, t, &policy);
                lines += written(&mut log, &policy, false).len();
            }
            assert_eq!(log.len(), 1000, "minute {minute}: its records only");
            assert_eq!(
                lines as u64,
                minute * 1000,
                "minute {minute}: the earlier ones written"
            );
        }
        assert_eq!(written(&mut log, &policy, true).len(), 1000);
    }

    #[test]
    fn ten_minutes_by_default_aligned_on_multiples() {
        let policy = Policy::from_toml(POLICY, "t.toml").unwrap();
        let mut log = FlowLog::default();
        // 1_700_000_000 is 200 s into its 10-minute window.
        let t0 = 1_700_000_000u64;
        for t in [t0, t0 + 399, t0 + 400] {
            log.observe(&allowed(7), 10, t * SEC, &policy);
        }
        let first = written(&mut log, &policy, false);
        assert_eq!(first.len(), 2);
        assert!(
            first[0].ends_with(&format!(" 2 20 {t0} {} ACCEPT OK", t0 + 399)),
            "{first:?}"
        );
        let rest = written(&mut log, &policy, true);
        assert!(rest[0].ends_with(&format!(" 1 10 {} {} ACCEPT OK", t0 + 400, t0 + 400)));
    }

    #[test]
    fn a_late_packet_is_written_with_its_own_window() {
        let policy = Policy::from_toml(POLICY, "t.toml").unwrap();
        let mut log = FlowLog::new(AggregationInterval::OneMinute);
        log.observe(&allowed(1), 10, 10 * SEC, &policy);
        log.observe(&allowed(2), 10, 70 * SEC, &policy);
        assert_eq!(written(&mut log, &policy, false).len(), 2);
        // Capture time goes back into the written window.
        log.observe(&allowed(3), 10, 50 * SEC, &policy);
        let late = written(&mut log, &policy, false);
        assert_eq!(late.len(), 2, "{late:?}");
        assert!(late[0].contains(" 3 53 17 1 10 50 50 "), "{late:?}");
        assert_eq!(log.len(), 2, "the open window stays");
    }

    #[test]
    fn the_live_clock_ends_a_window_without_packets() {
        let policy = Policy::from_toml(POLICY, "t.toml").unwrap();
        let mut log = FlowLog::new(AggregationInterval::OneMinute);
        log.observe(&allowed(1), 10, 10 * SEC, &policy);
        log.advance(59 * SEC);
        assert!(!log.window_ended());
        log.advance(60 * SEC);
        assert_eq!(written(&mut log, &policy, false).len(), 2);
        assert!(log.is_empty());
    }

    #[test]
    fn a_full_log_counts_new_flows_in_a_skipdata_record_per_window_and_interface() {
        let policy = Policy::from_toml(POLICY, "t.toml").unwrap();
        // Two records: one flow, seen at both interfaces.
        let mut log = FlowLog::new(AggregationInterval::OneMinute).with_max_records(2);
        assert_eq!(log.max_records(), 2);
        log.observe(&allowed(1), 10, 5 * SEC, &policy);
        assert_eq!(log.len(), 2);
        // New flows find no room: counted per interface, times kept.
        for (sport, t) in [(2, 7), (3, 9), (2, 30)] {
            log.observe(&allowed(sport), 10, t * SEC, &policy);
        }
        // The recorded flow goes on counting.
        log.observe(&allowed(1), 10, 40 * SEC, &policy);
        assert_eq!(log.len(), 2, "no record added past the limit");
        assert_eq!(
            log.skipped_packets(),
            6,
            "3 packets at each of 2 interfaces"
        );
        assert!(!log.is_empty());
        // Time passing the window's end writes it and leaves room for the
        // next window's records.
        log.advance(61 * SEC);
        assert_eq!(
            written(&mut log, &policy, false),
            [
                "2 1 eni-a 10.0.0.1 10.0.0.2 1 53 17 2 20 5 40 ACCEPT OK",
                "2 1 eni-b 10.0.0.1 10.0.0.2 1 53 17 2 20 5 40 ACCEPT OK",
                "2 1 eni-a - - - - - - - 7 30 - SKIPDATA",
                "2 1 eni-b - - - - - - - 7 30 - SKIPDATA",
            ]
        );
        log.observe(&allowed(4), 10, 61 * SEC, &policy);
        assert_eq!(
            written(&mut log, &policy, true),
            [
                "2 1 eni-a 10.0.0.1 10.0.0.2 4 53 17 1 10 61 61 ACCEPT OK",
                "2 1 eni-b 10.0.0.1 10.0.0.2 4 53 17 1 10 61 61 ACCEPT OK",
            ]
        );
        assert!(log.is_empty());
        assert_eq!(log.skipped_packets(), 6, "a running total");
    }

    #[test]
    fn a_skipdata_record_alone_ends_its_window_and_is_written_in_order() {
        let policy = Policy::from_toml(POLICY, "t.toml").unwrap();
        let mut log = FlowLog::new(AggregationInterval::OneMinute).with_max_records(2);
        // Window [0, 60): flow 1 recorded, flow 2 skipped.
        log.observe(&allowed(1), 10, SEC, &policy);
        log.observe(&allowed(2), 10, 2 * SEC, &policy);
        assert!(written(&mut log, &policy, false).is_empty());
        // Window [0, 60) written when time passes it; then window
        // [60, 120) is full of flow 3.
        log.advance(70 * SEC);
        assert_eq!(written(&mut log, &policy, false).len(), 4);
        log.observe(&allowed(3), 10, 70 * SEC, &policy);
        // Flow 4 finds window [60, 120) full: only a SKIPDATA record is
        // held for its window besides flow 3's, and time past the
        // window's end writes both.
        log.observe(&allowed(4), 10, 80 * SEC, &policy);
        log.advance(130 * SEC);
        let lines = written(&mut log, &policy, false);
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert!(
            lines[0].ends_with(" 3 53 17 1 10 70 70 ACCEPT OK"),
            "{lines:?}"
        );
        assert_eq!(lines[2], "2 1 eni-a - - - - - - - 80 80 - SKIPDATA");
        assert_eq!(log.skipped_packets(), 4);
    }

    #[test]
    fn only_aws_intervals_are_accepted() {
        assert_eq!("60".parse(), Ok(AggregationInterval::OneMinute));
        assert_eq!("600".parse(), Ok(AggregationInterval::TenMinutes));
        assert_eq!(AggregationInterval::default().seconds(), 600);
        for bad in ["0", "300", "61", "-60", "", "ten"] {
            let e = bad.parse::<AggregationInterval>().unwrap_err();
            assert!(e.to_string().contains("60 or 600"), "{bad}: {e}");
        }
    }
}
