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

use std::collections::{BTreeMap, HashMap};
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
    iface: IfaceId,
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    proto: u8,
    accept: bool,
}

/// One aggregation window's records, and its packets counted in
/// `SKIPDATA` records, by interface.
#[derive(Debug, Default)]
struct Window {
    flows: HashMap<Key, Counts, foldhash::fast::RandomState>,
    skipped: BTreeMap<IfaceId, Counts>,
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
    /// The windows held, by their start (seconds): writing one costs its
    /// own records, however many the others hold.
    windows: BTreeMap<u64, Window>,
    /// Records held, in all windows.
    held: usize,
    /// Records held at most ([`FlowLog::max_records`]).
    max_records: usize,
    /// Packets counted in `SKIPDATA` records since the log began.
    skipped_packets: u64,
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
            windows: BTreeMap::new(),
            held: 0,
            max_records: DEFAULT_MAX_RECORDS,
            skipped_packets: 0,
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
        let zone = policy.packet_zone(&p);
        let s_if = policy.interface_of(p.src, zone);
        let d_if = policy.interface_of(p.dst, zone);
        let (sport, dport) = match p.l4 {
            L4::Tcp { sport, dport, .. } | L4::Udp { sport, dport } => (sport, dport),
            _ => (0, 0),
        };
        let (max_records, held, skipped_packets) =
            (self.max_records, &mut self.held, &mut self.skipped_packets);
        let windows = &mut self.windows;
        let mut add = |iface: Option<IfaceId>, accept: bool| {
            let Some(iface) = iface else { return };
            let k = Key {
                iface,
                src: p.src,
                dst: p.dst,
                sport,
                dport,
                proto: p.proto.0,
                accept,
            };
            let w = windows.entry(window).or_default();
            let c = match w.flows.get_mut(&k) {
                Some(c) => c,
                None if *held < max_records => {
                    *held += 1;
                    w.flows.entry(k).or_insert(Counts::first(secs))
                }
                None => {
                    *skipped_packets += 1;
                    w.skipped.entry(iface).or_insert(Counts::first(secs))
                }
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
    }

    /// True when a window holding records has ended: a packet at or past
    /// its end was seen.
    pub fn window_ended(&self) -> bool {
        self.windows
            .first_key_value()
            .is_some_and(|(&w, _)| w.saturating_add(self.interval) <= self.latest)
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
        while self.window_ended() {
            self.write_first(w, account_id, policy)?;
        }
        Ok(())
    }

    /// Writes every record left, window by window, and forgets them.
    pub fn write_all(
        &mut self,
        w: &mut dyn Write,
        account_id: &str,
        policy: &Policy,
    ) -> io::Result<()> {
        while self.write_first(w, account_id, policy)? {}
        Ok(())
    }

    /// Writes the earliest window held and forgets it; false when none is.
    fn write_first(
        &mut self,
        w: &mut dyn Write,
        account_id: &str,
        policy: &Policy,
    ) -> io::Result<bool> {
        let Some((_, window)) = self.windows.pop_first() else {
            return Ok(false);
        };
        self.held -= window.flows.len();
        write_window(w, window, account_id, policy)?;
        Ok(true)
    }

    /// Number of records held (`SKIPDATA` ones not counted).
    pub fn len(&self) -> usize {
        self.held
    }

    /// True when nothing is left to write (no record, no `SKIPDATA` one).
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
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

/// Writes a window's records, sorted by start then key, then its
/// `SKIPDATA` records by interface.
fn write_window(
    w: &mut dyn Write,
    window: Window,
    account_id: &str,
    policy: &Policy,
) -> io::Result<()> {
    let mut rows: Vec<(Key, Counts)> = window.flows.into_iter().collect();
    rows.sort_unstable_by_key(|(k, c)| (c.start, *k));
    for (k, c) in rows {
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
    for (iface, c) in window.skipped {
        writeln!(
            w,
            "2 {account_id} {} - - - - - - - {} {} - SKIPDATA",
            policy.interface(iface).name,
            c.start,
            c.end,
        )?;
    }
    Ok(())
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
