//! `replay --compare NEW` (SPEC §10): every packet of a capture, or record
//! of a flow log, judged under the `-c` policy and a second one in one pass,
//! and the connections whose verdict changes, which is what a rule change
//! would break (or open).
//!
//! For a capture the second policy has an [`Engine`] of its own, with its
//! own connection table, fed the same packets in order: a connection the
//! old policy admitted and the new one would not is denied from its first
//! packet on, and every later packet of it (now invalid or without an
//! entry) counts as changed; return traffic follows each side's own state.
//!
//! Changes are grouped by connection: zone, protocol and the two ends
//! (address and port, or ICMP echo identifier), both directions as one,
//! shown from the end that opened it. That end is known for sure from a
//! TCP SYN (or SYN-ACK) and an ICMP echo request (or reply); otherwise from
//! a packet either policy judged as a new flow; otherwise the end with the
//! higher port is taken as the client. The first packets of a connection
//! that change may come from the server; a later, surer hint turns it.
//!
//! Memory is bounded: [`KEPT`] changed connections are kept with their
//! counts; those changing after that are counted (exactly up to
//! [`EXACT_UP_TO`](super::distinct::EXACT_UP_TO) more, then estimated) but
//! not listed. Packet counts are always exact.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;

use super::distinct::DistinctCount;
use crate::engine::{Engine, Input, Judgement, Ruleset};
use crate::io::capture::RecordInfo;
use crate::io::flowlog::Record;
use crate::policy::nacl::AclDecision;
use crate::policy::{Direction, IfaceId, IpProto, Policy, Reason, RuleId, Verdict, ZoneId};
use crate::wire::packet::IpPacket;
use crate::wire::L4;

/// Changed connections kept, with their counts and first changes, in
/// memory: at most [`KEPT_BYTES`] each in the table, 21 MB when full.
pub const KEPT: usize = 50_000;
/// The bytes a kept connection takes in the table (its key, its counts
/// and first changes, the table's control byte), checked by a test.
pub const KEPT_BYTES: usize = 320;
/// Connections of each kind (newly denied, newly allowed) the text lists.
pub const TEXT_LISTED: usize = 50;
/// Connections of each kind the JSON lists.
pub const JSON_LISTED: usize = 10_000;

/// The policy to compare with: compiled once, given to the replay in its
/// [`Outputs`](super::Outputs).
#[derive(Clone)]
pub struct CompareWith {
    rules: Arc<Ruleset>,
    name: String,
}

impl std::fmt::Debug for CompareWith {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompareWith")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl CompareWith {
    /// `policy`, prepared as the main one (`--vpc`, `--mirror`), and the
    /// name the summary calls it by.
    pub fn new(policy: Policy, name: impl Into<String>) -> CompareWith {
        CompareWith {
            rules: Arc::new(Ruleset::compile(policy)),
            name: name.into(),
        }
    }

    pub fn rules(&self) -> &Arc<Ruleset> {
        &self.rules
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

/// How a connection's packets are counted: packets of a capture, records of
/// a flow log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    Packets,
    /// Flow-log records, by text line.
    Records,
    /// Flow-log records, by Parquet row (`records` in JSON too).
    #[serde(rename = "records")]
    Rows,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Packets => "packets",
            Unit::Records | Unit::Rows => "records",
        }
    }

    /// What a record's position counts: a text line or a Parquet row.
    fn position(self) -> &'static str {
        match self {
            Unit::Rows => "row",
            _ => "line",
        }
    }
}

/// What identifies a connection besides its addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Ident {
    /// TCP and UDP: the ends' ports.
    Ports,
    /// ICMP echo: the identifier, the same at both ends.
    Echo,
    /// Another ICMP message (errors among them), by its type.
    Icmp(u8),
    /// Another protocol, or a later fragment.
    Other,
}

/// One end of a connection: address and port (the echo identifier, or 0).
type End = (IpAddr, u16);

/// A connection, both directions as one: its ends in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FlowKey {
    zone: Option<ZoneId>,
    proto: u8,
    ident: Ident,
    lo: End,
    hi: End,
}

/// How sure a guess of which end opened the connection is.
type Evidence = u8;
const BY_NOTHING: Evidence = 0;
const BY_PORTS: Evidence = 1;
const BY_NEW_FLOW: Evidence = 2;
const BY_HANDSHAKE: Evidence = 3;

/// A packet or record seen as part of a connection: its key, whether its
/// source is the key's `lo` end, and which end opened the connection.
#[derive(Debug, Clone, Copy)]
struct Seen {
    key: FlowKey,
    /// The initiator is `lo` (else `hi`).
    opened_by_lo: bool,
    evidence: Evidence,
}

impl Seen {
    /// `src` sent to `dst`; `src_opened` says whether the sender is the
    /// initiator, as sure as `evidence`.
    fn new(
        zone: Option<ZoneId>,
        proto: u8,
        ident: Ident,
        src: End,
        dst: End,
        src_opened: bool,
        evidence: Evidence,
    ) -> Seen {
        let src_is_lo = src <= dst;
        let (lo, hi) = if src_is_lo { (src, dst) } else { (dst, src) };
        Seen {
            key: FlowKey {
                zone,
                proto,
                ident,
                lo,
                hi,
            },
            opened_by_lo: src_opened == src_is_lo,
            evidence,
        }
    }

    /// A packet of a capture and how the two policies judged it.
    fn of_packet(p: &IpPacket, zone: Option<ZoneId>, old: &Judgement, new: &Judgement) -> Seen {
        let new_flow = |j: &Judgement| {
            matches!(
                j.reason,
                Reason::Rule | Reason::NoRule | Reason::Untracked | Reason::ConntrackFull
            )
        };
        let judged_new = new_flow(old) || new_flow(new);
        let (ident, sport, dport, hint) = match p.l4 {
            L4::Tcp {
                sport,
                dport,
                flags,
            } => {
                let hint = match (flags & 0x02 != 0, flags & 0x10 != 0) {
                    (true, false) => Some(true),
                    (true, true) => Some(false),
                    _ => None,
                };
                (Ident::Ports, sport, dport, hint)
            }
            L4::Udp { sport, dport } => (Ident::Ports, sport, dport, None),
            L4::Icmp { typ, ident, .. } => {
                let v6 = p.proto == IpProto::ICMPV6;
                let (request, reply) = if v6 { (128, 129) } else { (8, 0) };
                if typ == request || typ == reply {
                    (Ident::Echo, ident, ident, Some(typ == request))
                } else {
                    (Ident::Icmp(typ), 0, 0, Some(true))
                }
            }
            L4::None => (Ident::Other, 0, 0, None),
        };
        let (src_opened, evidence) = match hint {
            Some(s) => (s, BY_HANDSHAKE),
            None if judged_new => (true, BY_NEW_FLOW),
            None => by_ports(sport, dport),
        };
        Seen::new(
            zone,
            p.proto.0,
            ident,
            (p.src, sport),
            (p.dst, dport),
            src_opened,
            evidence,
        )
    }

    /// A flow-log record: every record is judged as a new flow, so only its
    /// ports say which end is the client.
    fn of_record(r: &Record, zone: Option<ZoneId>) -> Seen {
        let (ident, sport, dport) = match (r.sport, r.dport) {
            (Some(s), Some(d)) => (Ident::Ports, s, d),
            _ => (Ident::Other, 0, 0),
        };
        let (src_opened, evidence) = by_ports(sport, dport);
        Seen::new(
            zone,
            r.proto.0,
            ident,
            (r.src, sport),
            (r.dst, dport),
            src_opened,
            evidence,
        )
    }
}

/// The client is the end with the higher (ephemeral) port.
fn by_ports(sport: u16, dport: u16) -> (bool, Evidence) {
    match sport.cmp(&dport) {
        std::cmp::Ordering::Greater => (true, BY_PORTS),
        std::cmp::Ordering::Less => (false, BY_PORTS),
        std::cmp::Ordering::Equal => (true, BY_NOTHING),
    }
}

/// What one policy said of a packet, kept until the end to be named.
#[derive(Debug, Clone, Copy)]
struct Side {
    verdict: Verdict,
    reason: Reason,
    rule: Option<RuleId>,
    decision: Option<(IfaceId, Direction)>,
    nacl: Option<AclDecision>,
}

impl Side {
    fn of(j: &Judgement) -> Side {
        Side {
            verdict: j.verdict,
            reason: j.reason,
            rule: j.rule,
            decision: j.decision,
            nacl: j.nacl,
        }
    }

    /// Named in `policy`, as the summary names a denied flow's decision.
    fn named(&self, policy: &Policy) -> Judged {
        let (rule, interface, direction) = match (self.nacl, policy.nacls()) {
            (Some(d), Some(n)) => (
                Some(n.rule_name(&d).to_string()),
                Some(policy.subnet_name(d.subnet).to_string()),
                Some(d.direction.to_string()),
            ),
            _ => (
                self.rule.map(|r| policy.rule_name(r).to_string()),
                self.decision.map(|(i, _)| policy.interface(i).name.clone()),
                self.decision.map(|(_, d)| d.to_string()),
            ),
        };
        Judged {
            verdict: self.verdict.to_string(),
            reason: self.reason,
            rule,
            interface,
            direction,
        }
    }
}

/// Where a packet or record is in the input.
#[derive(Debug, Clone, Copy)]
struct At {
    /// 0-based, as `--verdicts` numbers them.
    index: u64,
    /// Seconds since the epoch: capture time, or a record's `start`.
    ts: Option<f64>,
    /// A flow log's 1-based line.
    line: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
struct Change {
    at: At,
    old: Side,
    new: Side,
}

/// A kept connection with changes.
#[derive(Debug, Clone)]
struct Changed {
    opened_by_lo: bool,
    evidence: Evidence,
    /// Allowed by the old policy, denied by the new.
    newly_denied: u64,
    newly_allowed: u64,
    first_denied: Option<Change>,
    first_allowed: Option<Change>,
}

/// The comparison being made, one packet or record at a time.
pub struct Comparison {
    name: String,
    unit: Unit,
    judged: u64,
    allowed_before: u64,
    allowed_after: u64,
    newly_denied: u64,
    newly_allowed: u64,
    /// Changed packets that are not IP (no connection to group them in).
    not_ip_newly_denied: u64,
    not_ip_newly_allowed: u64,
    flows: HashMap<FlowKey, Changed, foldhash::fast::RandomState>,
    /// Connections that changed once [`KEPT`] were kept: all of them, and
    /// those with a newly denied packet.
    beyond: Option<Box<(DistinctCount, DistinctCount)>>,
    kept: usize,
}

impl Comparison {
    /// A comparison with the policy called `name`, counting `unit`.
    pub fn new(name: &str, unit: Unit) -> Comparison {
        Comparison::with_capacity(name, unit, KEPT)
    }

    fn with_capacity(name: &str, unit: Unit, kept: usize) -> Comparison {
        Comparison {
            name: name.to_string(),
            unit,
            judged: 0,
            allowed_before: 0,
            allowed_after: 0,
            newly_denied: 0,
            newly_allowed: 0,
            not_ip_newly_denied: 0,
            not_ip_newly_allowed: 0,
            flows: HashMap::default(),
            beyond: None,
            kept,
        }
    }

    /// Counts one packet of a capture, judged `old` by the `-c` policy and
    /// `new` by the other; `ts` is its capture time in nanoseconds, `zone`
    /// the zone the `-c` policy judged it in (its GWLB zone or VPC space).
    #[inline]
    pub fn observe_packet(
        &mut self,
        index: u64,
        ts: u64,
        zone: Option<ZoneId>,
        old: &Judgement,
        new: &Judgement,
    ) {
        if !self.count(old.verdict, new.verdict) {
            return;
        }
        let at = At {
            index,
            ts: Some(ts as f64 / 1e9),
            line: None,
        };
        let seen = old.packet.map(|p| Seen::of_packet(&p, zone, old, new));
        self.changed(at, seen, old, new);
    }

    /// Counts one flow-log record at `line` (a Parquet row), the
    /// `index`-th judged, in `zone` (as the `-c` policy judged it).
    pub fn observe_record(
        &mut self,
        index: u64,
        line: u64,
        r: &Record,
        zone: Option<ZoneId>,
        old: &Judgement,
        new: &Judgement,
    ) {
        if !self.count(old.verdict, new.verdict) {
            return;
        }
        let at = At {
            index,
            ts: r.start.map(|s| s as f64),
            line: Some(line),
        };
        self.changed(at, Some(Seen::of_record(r, zone)), old, new);
    }

    /// Counts the verdicts; true when they differ.
    #[inline]
    fn count(&mut self, old: Verdict, new: Verdict) -> bool {
        self.judged += 1;
        self.allowed_before += u64::from(old == Verdict::Allow);
        self.allowed_after += u64::from(new == Verdict::Allow);
        old != new
    }

    fn changed(&mut self, at: At, seen: Option<Seen>, old: &Judgement, new: &Judgement) {
        let denied = old.verdict == Verdict::Allow;
        if denied {
            self.newly_denied += 1;
        } else {
            self.newly_allowed += 1;
        }
        let Some(seen) = seen else {
            if denied {
                self.not_ip_newly_denied += 1;
            } else {
                self.not_ip_newly_allowed += 1;
            }
            return;
        };
        let full = self.flows.len() >= self.kept;
        let c = match self.flows.get_mut(&seen.key) {
            Some(c) => c,
            None if full => {
                let (all, with_denied) = &mut **self.beyond.get_or_insert_with(Default::default);
                let h = foldhash::quality::FixedState::default().hash_one(seen.key);
                all.insert(h);
                if denied {
                    with_denied.insert(h);
                }
                return;
            }
            None => self.flows.entry(seen.key).or_insert(Changed {
                opened_by_lo: seen.opened_by_lo,
                evidence: seen.evidence,
                newly_denied: 0,
                newly_allowed: 0,
                first_denied: None,
                first_allowed: None,
            }),
        };
        if seen.evidence > c.evidence {
            c.opened_by_lo = seen.opened_by_lo;
            c.evidence = seen.evidence;
        }
        let change = Change {
            at,
            old: Side::of(old),
            new: Side::of(new),
        };
        if denied {
            c.newly_denied += 1;
            c.first_denied.get_or_insert(change);
        } else {
            c.newly_allowed += 1;
            c.first_allowed.get_or_insert(change);
        }
    }

    /// The result, the changes named in `old` (the `-c` policy) and `new`.
    pub fn finish(self, old: &Policy, new: &Policy) -> Compared {
        let (beyond, beyond_denied, beyond_exact) = match &self.beyond {
            Some(b) => (b.0.count(), b.1.count(), b.0.is_exact() && b.1.is_exact()),
            None => (0, 0, true),
        };
        let mut denied: Vec<(&FlowKey, &Changed)> = Vec::new();
        let mut allowed: Vec<(&FlowKey, &Changed)> = Vec::new();
        for (k, c) in &self.flows {
            if c.newly_denied > 0 {
                denied.push((k, c));
            } else {
                allowed.push((k, c));
            }
        }
        let first = |c: Option<Change>| c.map_or(u64::MAX, |c| c.at.index);
        denied.sort_by(|a, b| {
            (b.1.newly_denied, first(a.1.first_denied))
                .cmp(&(a.1.newly_denied, first(b.1.first_denied)))
        });
        allowed.sort_by(|a, b| {
            (b.1.newly_allowed, first(a.1.first_allowed))
                .cmp(&(a.1.newly_allowed, first(b.1.first_allowed)))
        });
        let newly_denied_flows = denied.len() as u64 + beyond_denied;
        let newly_allowed_flows = allowed.len() as u64 + beyond.saturating_sub(beyond_denied);
        let list = |v: &[(&FlowKey, &Changed)]| -> Vec<ChangedFlow> {
            v.iter()
                .take(JSON_LISTED)
                .map(|(k, c)| ChangedFlow::of(k, c, old, new))
                .collect()
        };
        let newly_denied = list(&denied);
        let newly_allowed = list(&allowed);
        Compared {
            policy: self.name,
            compared_with: old.source().to_string(),
            unit: self.unit,
            judged: self.judged,
            allowed_before: self.allowed_before,
            allowed_after: self.allowed_after,
            changed_flows: newly_denied_flows + newly_allowed_flows,
            changed_packets: self.newly_denied + self.newly_allowed,
            newly_denied_flows,
            newly_denied_packets: self.newly_denied,
            newly_allowed_flows,
            newly_allowed_packets: self.newly_allowed,
            flows_exact: beyond_exact,
            flows_beyond_kept: beyond,
            kept: self.kept,
            not_ip_newly_denied_packets: self.not_ip_newly_denied,
            not_ip_newly_allowed_packets: self.not_ip_newly_allowed,
            newly_denied_not_listed: newly_denied_flows - newly_denied.len() as u64,
            newly_allowed_not_listed: newly_allowed_flows - newly_allowed.len() as u64,
            newly_denied,
            newly_allowed,
        }
    }
}

/// One policy's decision on a packet, named.
#[derive(Debug, Clone, Serialize)]
pub struct Judged {
    pub verdict: String,
    pub reason: Reason,
    /// The deciding security-group rule (`sg-web/ingress/2`) or network ACL
    /// entry; null where none decided (no-rule, established, …).
    pub rule: Option<String>,
    /// The interface (or, for an ACL, the subnet) that decided.
    pub interface: Option<String>,
    pub direction: Option<String>,
}

impl Judged {
    fn to_text(&self) -> String {
        let mut s = format!("{} {}", self.verdict, self.reason.as_str());
        if let Some(r) = &self.rule {
            let _ = write!(s, " {r}");
        }
        if let (Some(i), Some(d)) = (&self.interface, &self.direction) {
            let _ = write!(s, " at {i} {d}");
        }
        s
    }
}

/// The first packet (or record) of a connection that changed one way.
#[derive(Debug, Clone, Serialize)]
pub struct FirstChange {
    /// 0-based, as `--verdicts` numbers them.
    pub index: u64,
    /// Capture time, or the record's `start`, in seconds since the epoch.
    pub ts: Option<f64>,
    /// The flow log's line.
    pub line: Option<u64>,
    pub old: Judged,
    pub new: Judged,
}

impl FirstChange {
    fn of(c: &Change, old: &Policy, new: &Policy) -> FirstChange {
        FirstChange {
            index: c.at.index,
            ts: c.at.ts,
            line: c.at.line,
            old: c.old.named(old),
            new: c.new.named(new),
        }
    }
}

/// A connection whose verdict changes, from the end that opened it.
#[derive(Debug, Clone, Serialize)]
pub struct ChangedFlow {
    pub proto: String,
    pub src: IpAddr,
    pub sport: Option<u16>,
    pub dst: IpAddr,
    pub dport: Option<u16>,
    /// ICMP: the type of a message other than echo.
    pub icmp_type: Option<u8>,
    /// ICMP echo: the identifier.
    pub echo_id: Option<u16>,
    pub zone: Option<String>,
    /// False when the opening end is a guess from the ports.
    pub initiator_known: bool,
    /// Allowed by the `-c` policy, denied by the other.
    pub newly_denied_packets: u64,
    pub newly_allowed_packets: u64,
    pub first_newly_denied: Option<FirstChange>,
    pub first_newly_allowed: Option<FirstChange>,
}

impl ChangedFlow {
    fn of(k: &FlowKey, c: &Changed, old: &Policy, new: &Policy) -> ChangedFlow {
        let (src, dst) = if c.opened_by_lo {
            (k.lo, k.hi)
        } else {
            (k.hi, k.lo)
        };
        let ports = k.ident == Ident::Ports;
        ChangedFlow {
            proto: IpProto(k.proto).to_string(),
            src: src.0,
            sport: ports.then_some(src.1),
            dst: dst.0,
            dport: ports.then_some(dst.1),
            icmp_type: match k.ident {
                Ident::Icmp(t) => Some(t),
                _ => None,
            },
            echo_id: (k.ident == Ident::Echo).then_some(src.1),
            zone: k.zone.map(|z| old.zone_label(z)),
            initiator_known: c.evidence >= BY_NEW_FLOW,
            newly_denied_packets: c.newly_denied,
            newly_allowed_packets: c.newly_allowed,
            first_newly_denied: c.first_denied.map(|f| FirstChange::of(&f, old, new)),
            first_newly_allowed: c.first_allowed.map(|f| FirstChange::of(&f, old, new)),
        }
    }

    /// `tcp 203.0.113.5:51000 -> 10.0.1.10:443`.
    fn describe(&self) -> String {
        let end = |a: IpAddr, p: Option<u16>| match (a, p) {
            (IpAddr::V6(_), Some(p)) => format!("[{a}]:{p}"),
            (_, Some(p)) => format!("{a}:{p}"),
            (_, None) => a.to_string(),
        };
        let mut s = format!(
            "{} {} -> {}",
            self.proto,
            end(self.src, self.sport),
            end(self.dst, self.dport)
        );
        if let Some(t) = self.icmp_type {
            let _ = write!(s, " type {t}");
        }
        if let Some(id) = self.echo_id {
            let _ = write!(s, " echo id {id}");
        }
        if let Some(z) = &self.zone {
            let _ = write!(s, " [{z}]");
        }
        s
    }
}

/// The comparison of two policies over one input.
#[derive(Debug, Clone, Serialize)]
pub struct Compared {
    /// The policy compared with (`--compare`).
    pub policy: String,
    /// The `-c` policy, whose verdicts every other output gives.
    pub compared_with: String,
    /// What is counted: `packets` of a capture or `records` of a flow log.
    pub unit: Unit,
    /// Packets (records) judged under both.
    pub judged: u64,
    /// Allowed under the `-c` policy, and under the other.
    pub allowed_before: u64,
    pub allowed_after: u64,
    /// Connections with any packet whose verdict changes, and those packets.
    pub changed_flows: u64,
    pub changed_packets: u64,
    /// Connections with a packet allowed by `-c` and denied by the other
    /// (a connection with changes both ways counts here only).
    pub newly_denied_flows: u64,
    pub newly_denied_packets: u64,
    pub newly_allowed_flows: u64,
    pub newly_allowed_packets: u64,
    /// False when more connections changed than are kept plus the
    /// 4,096 counted exactly after them: the flow counts are then
    /// estimates (±0.8%); packet counts are always exact.
    pub flows_exact: bool,
    /// Changed connections met once `kept` were kept: counted, not listed.
    pub flows_beyond_kept: u64,
    pub kept: usize,
    /// Changed packets that are not IP, in no connection (in the packet counts).
    pub not_ip_newly_denied_packets: u64,
    pub not_ip_newly_allowed_packets: u64,
    /// Most packets first, then the earliest change first.
    pub newly_denied: Vec<ChangedFlow>,
    pub newly_denied_not_listed: u64,
    pub newly_allowed: Vec<ChangedFlow>,
    pub newly_allowed_not_listed: u64,
}

impl Compared {
    /// True when the other policy would deny something the `-c` policy allows.
    pub fn breaks_anything(&self) -> bool {
        self.newly_denied_packets > 0
    }

    /// `packets` or `records`.
    pub fn unit_name(&self) -> &'static str {
        self.unit.as_str()
    }

    /// The "Compared with" section of the text summary.
    pub fn to_text(&self) -> String {
        let unit = self.unit.as_str();
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Compared with {} ({} {unit} judged under both; everything above is {}'s):",
            self.policy, self.judged, self.compared_with
        );
        let _ = writeln!(
            s,
            "  allowed         {:>10} under {}, {} under {}",
            self.allowed_before, self.compared_with, self.allowed_after, self.policy
        );
        let estimate = if self.flows_exact { "" } else { " (estimate)" };
        let flows = |n: u64| if n == 1 { "flow" } else { "flows" };
        let _ = writeln!(
            s,
            "  newly denied    {:>10} {}{estimate}, {} {unit}: allowed by {}, denied by {}",
            self.newly_denied_flows,
            flows(self.newly_denied_flows),
            self.newly_denied_packets,
            self.compared_with,
            self.policy
        );
        let _ = writeln!(
            s,
            "  newly allowed   {:>10} {}{estimate}, {} {unit}: denied by {}, allowed by {}",
            self.newly_allowed_flows,
            flows(self.newly_allowed_flows),
            self.newly_allowed_packets,
            self.compared_with,
            self.policy
        );
        let not_ip = self.not_ip_newly_denied_packets + self.not_ip_newly_allowed_packets;
        if not_ip > 0 {
            let _ = writeln!(
                s,
                "  not IP          {:>10} {unit} changed ({} newly denied), in no flow",
                not_ip, self.not_ip_newly_denied_packets
            );
        }
        if self.flows_beyond_kept > 0 {
            let _ = writeln!(
                s,
                "  note: {} changed flows came after the first {} and are counted, not listed",
                self.flows_beyond_kept, self.kept
            );
        }
        for (denied, list, total) in [
            (true, &self.newly_denied, self.newly_denied_flows),
            (false, &self.newly_allowed, self.newly_allowed_flows),
        ] {
            if list.is_empty() {
                continue;
            }
            let shown = list.len().min(TEXT_LISTED);
            let _ = writeln!(
                s,
                "\n{} flows (most {unit} first; {shown} of {total}):",
                if denied {
                    "newly denied"
                } else {
                    "newly allowed"
                }
            );
            for f in &list[..shown] {
                let (n, first) = if denied {
                    (f.newly_denied_packets, &f.first_newly_denied)
                } else {
                    (f.newly_allowed_packets, &f.first_newly_allowed)
                };
                let _ = writeln!(s, "  {n:>8}  {}", f.describe());
                if let Some(c) = first {
                    let at = match (c.line, c.ts) {
                        (Some(l), _) => format!("{} {l}", self.unit.position()),
                        (None, Some(t)) => format!("packet {} at {t:.6}", c.index),
                        (None, None) => format!("#{}", c.index),
                    };
                    let _ = writeln!(
                        s,
                        "            first {at}: {} => {}",
                        c.old.to_text(),
                        c.new.to_text()
                    );
                }
            }
        }
        if self.changed_packets == 0 {
            let _ = writeln!(s, "  no verdict changes");
        }
        s
    }
}

/// The second policy's pass over a capture: its own engine fed the chunks
/// the main engine judges, its judgements taken packet by packet beside
/// the main ones.
pub(super) struct CapturePass {
    engine: Engine,
    judged: Vec<Judgement>,
    next: usize,
    comparison: Comparison,
}

impl CapturePass {
    pub(super) fn new(with: &CompareWith) -> CapturePass {
        CapturePass {
            engine: Engine::new(Arc::clone(&with.rules)),
            judged: Vec::new(),
            next: 0,
            comparison: Comparison::new(&with.name, Unit::Packets),
        }
    }

    /// Judges the packets of a chunk in order (one judgement per packet
    /// record, those of unknown link types included, as the main engine).
    pub(super) fn judge(&mut self, buf: &[u8], records: &[RecordInfo]) {
        self.judged.clear();
        self.next = 0;
        let mut inputs: Vec<Input> = Vec::with_capacity(records.len());
        for info in records {
            let Some(p) = info.packet else { continue };
            match super::input_of(buf, info) {
                Some(i) => inputs.push(i),
                None => {
                    self.engine.process_batch(&inputs, &mut self.judged);
                    inputs.clear();
                    let j = self.engine.process_unknown_link(p.orig_len as usize);
                    self.judged.push(j);
                }
            }
        }
        self.engine.process_batch(&inputs, &mut self.judged);
    }

    /// Compares the next packet's judgement with the main engine's `old`
    /// under `policy`.
    #[inline]
    pub(super) fn observe(&mut self, index: u64, ts: u64, old: &Judgement, policy: &Policy) {
        let Some(new) = self.judged.get(self.next) else {
            debug_assert!(false, "one judgement per packet");
            return;
        };
        self.next += 1;
        let zone = old.packet.and_then(|p| policy.packet_zone(&p));
        self.comparison.observe_packet(index, ts, zone, old, new);
    }

    pub(super) fn finish(self, old: &Policy) -> Compared {
        self.comparison.finish(old, self.engine.policy())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::packet::Fragment;
    use std::net::Ipv4Addr;

    const POLICY: &str = r#"
[security_groups.sg-web]
ingress = [
  { proto = "tcp", ports = "22", from = "10.0.0.0/8" },
  { proto = "tcp", ports = "443", from = "0.0.0.0/0" },
]
[interfaces.eni-web]
addresses = ["10.0.1.10"]
security_groups = ["sg-web"]
"#;

    fn policy() -> Policy {
        Policy::from_toml(POLICY, "old.toml").unwrap()
    }

    fn v4(s: &str) -> IpAddr {
        IpAddr::V4(s.parse::<Ipv4Addr>().unwrap())
    }

    fn tcp(src: &str, sport: u16, dst: &str, dport: u16, flags: u8) -> IpPacket {
        IpPacket {
            src: v4(src),
            dst: v4(dst),
            proto: IpProto::TCP,
            ip_len: 40,
            fragment: Fragment::Whole,
            l4: L4::Tcp {
                sport,
                dport,
                flags,
            },
            tunnel: None,
            l4_offset: 20,
        }
    }

    fn judged(p: IpPacket, verdict: Verdict, reason: Reason, rule: Option<RuleId>) -> Judgement {
        Judgement {
            verdict,
            reason,
            rule,
            decision: Some((0, Direction::Ingress)),
            nacl: None,
            packet: Some(p),
        }
    }

    fn allowed(p: IpPacket, rule: Option<RuleId>) -> Judgement {
        let reason = if rule.is_some() {
            Reason::Rule
        } else {
            Reason::Established
        };
        judged(p, Verdict::Allow, reason, rule)
    }

    fn denied(p: IpPacket, reason: Reason) -> Judgement {
        judged(p, Verdict::Deny, reason, None)
    }

    const SYN: u8 = 0x02;
    const SYN_ACK: u8 = 0x12;
    const ACK: u8 = 0x10;

    /// A connection from `client:port` to the server's 443: SYN, SYN-ACK,
    /// then `more` ACKs each way.
    fn connection(client: &str, port: u16, more: usize) -> Vec<IpPacket> {
        let mut v = vec![
            tcp(client, port, "10.0.1.10", 443, SYN),
            tcp("10.0.1.10", 443, client, port, SYN_ACK),
        ];
        for _ in 0..more {
            v.push(tcp(client, port, "10.0.1.10", 443, ACK));
            v.push(tcp("10.0.1.10", 443, client, port, ACK));
        }
        v
    }

    fn rule_443(p: &Policy) -> RuleId {
        (0..p.rules().len() as RuleId)
            .find(|&r| p.rule_name(r).to_string() == "sg-web/ingress/1")
            .unwrap()
    }

    #[test]
    fn a_connection_denied_from_its_syn_is_one_flow_from_the_client() {
        let p = policy();
        let rule = rule_443(&p);
        let mut c = Comparison::new("new.toml", Unit::Packets);
        for (i, pkt) in connection("203.0.113.5", 51000, 3).into_iter().enumerate() {
            let first = i == 0;
            let old = allowed(pkt, first.then_some(rule));
            let reason = if first {
                Reason::NoRule
            } else {
                Reason::Invalid
            };
            c.observe_packet(
                i as u64,
                1_700_000_000_000_000_000 + i as u64,
                None,
                &old,
                &denied(pkt, reason),
            );
        }
        let r = c.finish(&p, &p);
        assert_eq!(
            (r.judged, r.changed_packets, r.newly_denied_packets),
            (8, 8, 8)
        );
        assert_eq!(
            (r.changed_flows, r.newly_denied_flows, r.newly_allowed_flows),
            (1, 1, 0)
        );
        assert!(r.breaks_anything());
        let f = &r.newly_denied[0];
        assert_eq!(
            (f.src, f.sport, f.dst, f.dport),
            (v4("203.0.113.5"), Some(51000), v4("10.0.1.10"), Some(443))
        );
        assert!(f.initiator_known);
        assert_eq!(f.newly_denied_packets, 8);
        let first = f.first_newly_denied.as_ref().unwrap();
        assert_eq!(first.index, 0);
        assert_eq!(first.old.rule.as_deref(), Some("sg-web/ingress/1"));
        assert_eq!(first.old.interface.as_deref(), Some("eni-web"));
        assert_eq!(first.new.reason, Reason::NoRule);
        assert_eq!(r.allowed_before, 8);
        assert_eq!(r.allowed_after, 0);
        let text = r.to_text();
        assert!(
            text.contains("tcp 203.0.113.5:51000 -> 10.0.1.10:443"),
            "{text}"
        );
        assert!(
            text.contains("first packet 0 at 1700000000.000000: allow rule sg-web/ingress/1 at eni-web ingress => deny no-rule at eni-web ingress"),
            "{text}"
        );
    }

    #[test]
    fn the_server_speaking_first_is_turned_round_by_the_handshake() {
        let p = policy();
        // The server's port is the higher one: the ports guess wrong …
        let reply = tcp("10.0.1.10", 8443, "198.51.100.7", 443, ACK);
        let synack = tcp("10.0.1.10", 8443, "198.51.100.7", 443, SYN_ACK);
        let observe = |c: &mut Comparison, i, pkt| {
            c.observe_packet(
                i,
                i,
                None,
                &allowed(pkt, None),
                &denied(pkt, Reason::Invalid),
            );
        };
        let mut c = Comparison::new("new", Unit::Packets);
        observe(&mut c, 0, reply);
        let r = c.finish(&p, &p);
        assert_eq!(r.newly_denied[0].src, v4("10.0.1.10"));
        assert!(!r.newly_denied[0].initiator_known);
        let mut c = Comparison::new("new", Unit::Packets);
        observe(&mut c, 0, reply);
        // … until a SYN-ACK from it says who opened the connection.
        observe(&mut c, 1, synack);
        let r = c.finish(&p, &p);
        assert_eq!(r.changed_flows, 1);
        let f = &r.newly_denied[0];
        assert_eq!((f.src, f.sport), (v4("198.51.100.7"), Some(443)));
        assert_eq!((f.dst, f.dport), (v4("10.0.1.10"), Some(8443)));
        assert!(f.initiator_known);
        assert_eq!(f.first_newly_denied.as_ref().unwrap().index, 0);
    }

    #[test]
    fn newly_denied_come_first_by_packets_then_newly_allowed() {
        let p = policy();
        let mut c = Comparison::new("new", Unit::Packets);
        let mut i = 0u64;
        let mut send = |c: &mut Comparison, pkt: IpPacket, old: Verdict, new: Verdict| {
            let j = |v| judged(pkt, v, Reason::Rule, None);
            c.observe_packet(i, i, None, &j(old), &j(new));
            i += 1;
        };
        use Verdict::{Allow, Deny};
        // Flow A: 1 newly denied; flow B: 3; flow C: 2 newly allowed;
        // flow D: unchanged; flow E: 1 newly allowed and 1 newly denied.
        let a = tcp("192.0.2.1", 40000, "10.0.1.10", 443, SYN);
        let b = tcp("192.0.2.2", 40000, "10.0.1.10", 443, SYN);
        let cc = tcp("192.0.2.3", 40000, "10.0.1.10", 22, SYN);
        let d = tcp("192.0.2.4", 40000, "10.0.1.10", 22, SYN);
        let e = tcp("192.0.2.5", 40000, "10.0.1.10", 22, SYN);
        send(&mut c, a, Allow, Deny);
        send(&mut c, cc, Deny, Allow);
        send(&mut c, b, Allow, Deny);
        send(&mut c, d, Allow, Allow);
        send(&mut c, e, Deny, Allow);
        send(&mut c, b, Allow, Deny);
        send(&mut c, cc, Deny, Allow);
        send(&mut c, d, Deny, Deny);
        send(&mut c, b, Allow, Deny);
        send(&mut c, e, Allow, Deny);
        let r = c.finish(&p, &p);
        let srcs = |v: &[ChangedFlow]| v.iter().map(|f| f.src).collect::<Vec<_>>();
        // B (3) before A and E (1 each, A changed first).
        assert_eq!(
            srcs(&r.newly_denied),
            [v4("192.0.2.2"), v4("192.0.2.1"), v4("192.0.2.5")]
        );
        assert_eq!(srcs(&r.newly_allowed), [v4("192.0.2.3")]);
        assert_eq!(
            (r.newly_denied_flows, r.newly_allowed_flows, r.changed_flows),
            (3, 1, 4)
        );
        assert_eq!((r.newly_denied_packets, r.newly_allowed_packets), (5, 3));
        assert_eq!((r.judged, r.allowed_before, r.allowed_after), (10, 6, 4));
        let e = &r.newly_denied[2];
        assert_eq!((e.newly_denied_packets, e.newly_allowed_packets), (1, 1));
        assert_eq!(e.first_newly_allowed.as_ref().unwrap().index, 4);
        assert_eq!(e.first_newly_denied.as_ref().unwrap().index, 9);
    }

    #[test]
    fn past_the_kept_flows_changes_are_counted_not_listed() {
        let p = policy();
        let mut c = Comparison::with_capacity("new", Unit::Packets, 10);
        let mut sent = 0u64;
        for round in 0..3u16 {
            for i in 0..100u16 {
                let pkt = tcp("192.0.2.1", 1024 + i, "10.0.1.10", 443, SYN);
                // Flows 0..50 become denied, 50..100 allowed; each three times.
                let (old, new) = if i < 50 {
                    (Verdict::Allow, Verdict::Deny)
                } else {
                    (Verdict::Deny, Verdict::Allow)
                };
                let j = |v| judged(pkt, v, Reason::Rule, None);
                c.observe_packet(sent, u64::from(round), None, &j(old), &j(new));
                sent += 1;
            }
        }
        assert_eq!(c.flows.len(), 10);
        let r = c.finish(&p, &p);
        assert!(r.flows_exact);
        assert_eq!(
            (r.changed_flows, r.newly_denied_flows, r.newly_allowed_flows),
            (100, 50, 50)
        );
        assert_eq!(
            (r.newly_denied_packets, r.newly_allowed_packets),
            (150, 150)
        );
        assert_eq!(r.flows_beyond_kept, 90);
        // The ten kept were the first ten, all newly denied.
        assert_eq!(r.newly_denied.len(), 10);
        assert_eq!(r.newly_denied_not_listed, 40);
        assert_eq!((r.newly_allowed.len(), r.newly_allowed_not_listed), (0, 50));
        assert!(r.newly_denied.iter().all(|f| f.newly_denied_packets == 3));
        assert!(r
            .to_text()
            .contains("90 changed flows came after the first 10"));
    }

    #[test]
    fn a_kept_connection_takes_the_bytes_the_docs_say() {
        let entry = std::mem::size_of::<(FlowKey, Changed)>() + 1;
        assert!(entry <= KEPT_BYTES, "{entry} bytes");
        // The table holds KEPT in 2^16 buckets (7/8 full at most).
        let buckets = (KEPT * 8 / 7).next_power_of_two();
        assert!(buckets * KEPT_BYTES <= 21_000_000, "{buckets} buckets");
    }

    #[test]
    fn unchanged_verdicts_list_nothing() {
        let p = policy();
        let mut c = Comparison::new("same.toml", Unit::Packets);
        for (i, pkt) in connection("203.0.113.5", 51000, 2).into_iter().enumerate() {
            let j = allowed(pkt, None);
            // The reason may differ (a rule against established): not a change.
            let k = allowed(pkt, Some(0));
            c.observe_packet(i as u64, 0, None, &j, &k);
        }
        let r = c.finish(&p, &p);
        assert_eq!((r.judged, r.changed_packets, r.changed_flows), (6, 0, 0));
        assert!(!r.breaks_anything());
        assert!(r.to_text().contains("no verdict changes"));
    }

    #[test]
    fn records_are_grouped_both_ways_and_the_client_guessed_by_its_port() {
        let p = policy();
        let mut c = Comparison::new("new", Unit::Records);
        let rec = |src: &str, sport, dst: &str, dport| Record {
            interface: Some(b"eni-web"),
            src: v4(src),
            dst: v4(dst),
            proto: IpProto::TCP,
            sport: Some(sport),
            dport: Some(dport),
            start: Some(1_700_000_000),
            action: crate::io::flowlog::Action::Accept,
            direction: None,
        };
        let j = |v| Judgement {
            verdict: v,
            reason: Reason::Rule,
            rule: None,
            decision: None,
            nacl: None,
            packet: None,
        };
        // The reply's record comes first: it still shows from the client.
        let reply = rec("10.0.1.10", 443, "203.0.113.5", 51000);
        let request = rec("203.0.113.5", 51000, "10.0.1.10", 443);
        c.observe_record(0, 2, &reply, None, &j(Verdict::Allow), &j(Verdict::Deny));
        c.observe_record(1, 3, &request, None, &j(Verdict::Allow), &j(Verdict::Deny));
        let r = c.finish(&p, &p);
        assert_eq!(r.unit, Unit::Records);
        assert_eq!((r.changed_flows, r.newly_denied_packets), (1, 2));
        let f = &r.newly_denied[0];
        assert_eq!((f.src, f.dport), (v4("203.0.113.5"), Some(443)));
        assert!(!f.initiator_known);
        let first = f.first_newly_denied.as_ref().unwrap();
        assert_eq!(
            (first.index, first.line, first.ts),
            (0, Some(2), Some(1.7e9))
        );
        assert!(
            r.to_text()
                .contains("first line 2: allow rule => deny rule"),
            "{}",
            r.to_text()
        );
    }

    #[test]
    fn packets_that_are_not_ip_are_counted_in_no_flow() {
        let p = policy();
        let mut c = Comparison::new("new", Unit::Packets);
        let j = |v| Judgement {
            verdict: v,
            reason: Reason::NeighborDiscovery,
            rule: None,
            decision: None,
            nacl: None,
            packet: None,
        };
        c.observe_packet(0, 0, None, &j(Verdict::Allow), &j(Verdict::Deny));
        let r = c.finish(&p, &p);
        assert_eq!(
            (r.newly_denied_packets, r.not_ip_newly_denied_packets),
            (1, 1)
        );
        assert_eq!(r.changed_flows, 0);
        assert!(r.breaks_anything());
    }
}
