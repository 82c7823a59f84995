//! AWS VPC Flow Logs version 2 lines, one per flow and interface:
//! `version account-id interface-id srcaddr dstaddr srcport dstport protocol
//! packets bytes start end action log-status`.
//!
//! As an ENI's flow log does, an interface records the packets that cross it:
//! an allowed packet on the source's and the destination's interface; a packet
//! denied by the source's egress only there (REJECT); one denied by the
//! destination's ingress as ACCEPT leaving the source and REJECT at the
//! destination. Records are aggregated over the whole capture (AWS uses
//! 1- or 10-minute windows); addresses of no interface are not logged.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::IpAddr;

use crate::engine::Judgement;
use crate::policy::{Direction, IfaceId, Policy, Verdict};
use crate::wire::L4;

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

#[derive(Debug, Clone, Copy)]
struct Counts {
    packets: u64,
    bytes: u64,
    start: u64,
    end: u64,
}

/// Flow records being aggregated.
#[derive(Debug, Default)]
pub struct FlowLog {
    flows: HashMap<Key, Counts, foldhash::fast::RandomState>,
}

impl FlowLog {
    pub fn observe(&mut self, j: &Judgement, bytes: u32, ts: u64, policy: &Policy) {
        let Some(p) = j.packet else { return };
        let zone = j.zone();
        let s_if = policy.interface_of(p.src, zone);
        let d_if = policy.interface_of(p.dst, zone);
        let (sport, dport) = match p.l4 {
            L4::Tcp { sport, dport, .. } | L4::Udp { sport, dport } => (sport, dport),
            _ => (0, 0),
        };
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
            let secs = ts / 1_000_000_000;
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
        match (j.verdict, j.decision) {
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

    /// Number of records.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// Writes a header line and the records, oldest first.
    pub fn write(&self, w: &mut dyn Write, account_id: &str, policy: &Policy) -> io::Result<()> {
        writeln!(
            w,
            "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"
        )?;
        let mut rows: Vec<(&Key, &Counts)> = self.flows.iter().collect();
        rows.sort_by_key(|(k, c)| (c.start, **k));
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
}
