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
            next_end: u64::MAX,
            latest: 0,
        }
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
            let c = self.flows.entry(k).or_insert(Counts {
                packets: 0,
                bytes: 0,
                start: secs,
                end: secs,
            });
            c.packets += 1;
            c.bytes += u64::from(bytes);
            c.start = c.start.min(secs);
            c.end = c.end.max(secs);
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
        let mut ended = Vec::new();
        let mut next_end = u64::MAX;
        self.flows.retain(|k, c| {
            let end = k.window.saturating_add(interval);
            if end <= latest {
                ended.push((*k, *c));
                false
            } else {
                next_end = next_end.min(end);
                true
            }
        });
        self.next_end = next_end;
        write_records(w, ended, account_id, policy)
    }

    /// Writes every record left, window by window, and forgets them.
    pub fn write_all(
        &mut self,
        w: &mut dyn Write,
        account_id: &str,
        policy: &Policy,
    ) -> io::Result<()> {
        let all: Vec<(Key, Counts)> = self.flows.drain().collect();
        self.next_end = u64::MAX;
        write_records(w, all, account_id, policy)
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }
}

/// Writes records window by window, each sorted by start then key.
fn write_records(
    w: &mut dyn Write,
    mut rows: Vec<(Key, Counts)>,
    account_id: &str,
    policy: &Policy,
) -> io::Result<()> {
    rows.sort_by_key(|(k, c)| (k.window, c.start, *k));
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{IpProto, Reason};
    use crate::wire::packet::{Fragment, IpPacket};

    const SEC: u64 = 1_000_000_000;
    const POLICY: &str = r#"
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

    fn allowed(sport: u16) -> Judgement {
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
