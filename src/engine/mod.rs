//! The engine: bytes and a time in, a verdict and its reason out (SPEC §2).
//! No I/O and no clock: replay passes capture time, live modes pass the
//! clock, so a replay is deterministic and timeouts are testable without
//! sleeping.
//!
//! A packet goes: parse → ARP / not-IP / neighbour discovery → later
//! fragments take their first fragment's verdict → conntrack (established,
//! invalid, related ICMP errors) → for a new flow, the rules → an allowed new
//! flow opens an entry (or is denied when the table is full).

use std::sync::Arc;

use crate::classify::sg::SgClassifier;
use crate::conntrack::{
    tcp, Class, Conntrack, FlowKey, FragmentKey, FragmentMemory, Nanos, Outcome, Prepared,
};
use crate::policy::{
    Direction, Evaluation, Flow, IfaceId, IpProto, Policy, Reason, RuleId, Verdict, ZoneId,
};
use crate::wire::packet::{
    parse, Fragment, Frame, IpPacket, LinkType, ParseError, ParseOptions, L4,
};

pub use crate::classify::{Decide, Reference};

/// A policy and the decider compiled from it, swapped as one.
pub struct Ruleset {
    pub policy: Policy,
    pub decider: Box<dyn Decide>,
}

impl Ruleset {
    /// The policy with its rules compiled into lookup tables (the fast path).
    pub fn compile(policy: Policy) -> Ruleset {
        let decider = Box::new(SgClassifier::build(&policy));
        Ruleset { policy, decider }
    }

    /// The policy decided by the linear reference evaluator (the oracle).
    pub fn reference(policy: Policy) -> Ruleset {
        Ruleset {
            policy,
            decider: Box::new(Reference),
        }
    }
}

/// One frame to judge.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub link: LinkType,
    pub data: &'a [u8],
    /// Length on the wire (at least `data.len()`).
    pub orig_len: usize,
    pub ts: Nanos,
}

/// The verdict for one packet and what it is based on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Judgement {
    pub verdict: Verdict,
    pub reason: Reason,
    /// The deciding rule (reason `rule`).
    pub rule: Option<RuleId>,
    /// The interface and direction that decided (reasons `rule` and `no-rule`).
    pub decision: Option<(IfaceId, Direction)>,
    /// The packet, when it is IP (the inner one for GENEVE).
    pub packet: Option<IpPacket>,
}

impl Judgement {
    fn new(verdict: Verdict, reason: Reason) -> Judgement {
        Judgement {
            verdict,
            reason,
            rule: None,
            decision: None,
            packet: None,
        }
    }

    pub fn zone(&self) -> Option<ZoneId> {
        self.packet.and_then(|p| p.tunnel).and_then(|t| t.zone)
    }
}

/// Counters the engine keeps.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub packets: u64,
    pub allowed: u64,
    pub denied: u64,
    pub bytes_allowed: u64,
    pub bytes_denied: u64,
    /// Allowed and denied packets by reason, indexed by [`Reason::index`].
    pub allowed_by_reason: [u64; 12],
    pub denied_by_reason: [u64; 12],
    /// New flows decided by the rules.
    pub new_flows: u64,
    /// Entries opened.
    pub flows_opened: u64,
    /// Unassured entries a full table evicted for a new flow (SPEC §2.8).
    pub early_drops: u64,
    /// Hits of each rule as the deciding rule of a new flow, by rule id.
    pub rule_hits: Vec<u64>,
    /// Malformed frames by what was wrong ([`ParseError::kind`]).
    pub malformed: std::collections::BTreeMap<&'static str, u64>,
}

impl Stats {
    /// Packets with this reason, whatever their verdict.
    pub fn reason(&self, r: Reason) -> u64 {
        self.allowed_by_reason[r.index()] + self.denied_by_reason[r.index()]
    }
}

/// A frame of a batch, parsed, with its flow key when it has one.
type Parsed = (Result<Frame, ParseError>, Option<(Prepared, Class)>);

/// How many frames [`Engine::process_batch`] parses, and whose conntrack
/// slots it prefetches, ahead of the one it judges.
const AHEAD: usize = 8;

/// The data plane's decision core.
pub struct Engine {
    rules: Arc<Ruleset>,
    conntrack: Conntrack,
    fragments: FragmentMemory,
    parse: ParseOptions,
    stats: Stats,
    /// The latest packet time seen: time never goes backwards, a packet
    /// older than that is judged at that time (conntrack and fragments alike).
    latest: Nanos,
    /// Parsed frames and their flow keys of the batch being judged.
    scratch: std::collections::VecDeque<Parsed>,
    /// The prepared flow keys of the staged frames being judged.
    keys: Vec<Option<(Prepared, Class)>>,
}

impl Engine {
    pub fn new(rules: Arc<Ruleset>) -> Engine {
        let conntrack = Conntrack::new(&rules.policy.conntrack().config());
        let stats = Stats {
            rule_hits: vec![0; rules.policy.rules().len()],
            ..Default::default()
        };
        Engine {
            rules,
            conntrack,
            fragments: FragmentMemory::default(),
            parse: ParseOptions::default(),
            stats,
            latest: 0,
            scratch: std::collections::VecDeque::with_capacity(AHEAD + 1),
            keys: Vec::new(),
        }
    }

    /// An engine deciding with the compiled classifier.
    pub fn with_policy(policy: Policy) -> Engine {
        Engine::new(Arc::new(Ruleset::compile(policy)))
    }

    pub fn set_parse_options(&mut self, o: ParseOptions) {
        self.parse = o;
    }

    /// Swaps in a new policy: tracked flows keep flowing, new flows see the new rules.
    pub fn set_rules(&mut self, rules: Arc<Ruleset>) {
        self.conntrack
            .reconfigure(&rules.policy.conntrack().config());
        self.stats.rule_hits = vec![0; rules.policy.rules().len()];
        self.rules = rules;
    }

    pub fn rules(&self) -> &Arc<Ruleset> {
        &self.rules
    }

    pub fn policy(&self) -> &Policy {
        &self.rules.policy
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn conntrack(&self) -> &Conntrack {
        &self.conntrack
    }

    pub fn conntrack_mut(&mut self) -> &mut Conntrack {
        &mut self.conntrack
    }

    /// Judges one frame. `orig_len` is its length on the wire (the capture may
    /// hold fewer bytes); `now` is the packet's time (one older than an
    /// earlier packet's is judged at that packet's time: time never goes back).
    pub fn process(
        &mut self,
        link: LinkType,
        data: &[u8],
        orig_len: usize,
        now: Nanos,
    ) -> Judgement {
        let r = parse(link, data, orig_len.max(data.len()), self.parse);
        let now = self.clock(now);
        let j = self.judge(r, data, now);
        self.count(&j, orig_len.max(data.len()) as u64);
        j
    }

    /// Judges a frame of a link type sgplane cannot parse: not IP, as far as it can tell.
    pub fn process_unknown_link(&mut self, orig_len: usize) -> Judgement {
        let j = Judgement::new(Verdict::Deny, Reason::NotIp);
        self.count(&j, orig_len as u64);
        j
    }

    /// The time a packet at `ts` is judged at: never before an earlier packet.
    #[inline]
    fn clock(&mut self, ts: Nanos) -> Nanos {
        self.latest = self.latest.max(ts);
        self.latest
    }

    fn count(&mut self, j: &Judgement, bytes: u64) {
        let s = &mut self.stats;
        s.packets += 1;
        match j.verdict {
            Verdict::Allow => {
                s.allowed_by_reason[j.reason.index()] += 1;
                s.allowed += 1;
                s.bytes_allowed += bytes;
            }
            Verdict::Deny => {
                s.denied_by_reason[j.reason.index()] += 1;
                s.denied += 1;
                s.bytes_denied += bytes;
            }
        }
    }

    /// Judges a batch of frames in order, appending one judgement per frame
    /// to `out`. Faster than one `process` call per frame: each frame is
    /// parsed and its conntrack slot fetched into the cache [`AHEAD`] frames
    /// before it is judged, so the memory system always has slots in flight.
    pub fn process_batch(&mut self, frames: &[Input], out: &mut Vec<Judgement>) {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let mut fetched = frames.iter();
        for f in frames {
            while scratch.len() <= AHEAD {
                let Some(g) = fetched.next() else { break };
                let r = parse(g.link, g.data, g.orig_len.max(g.data.len()), self.parse);
                let key = match &r {
                    Ok(Frame::Ip(p)) => flow_key(p).map(|(k, class)| {
                        let prep = self.conntrack.prepare(&k);
                        self.conntrack.prefetch(&prep);
                        (prep, class)
                    }),
                    _ => None,
                };
                scratch.push_back((r, key));
            }
            let (r, key) = scratch.pop_front().expect("the current frame was parsed");
            let now = self.clock(f.ts);
            let j = match (r, key) {
                (Ok(Frame::Ip(p)), Some((prep, class))) => self.track(p, prep, class, now, None),
                (r, _) => self.judge(r, f.data, now),
            };
            self.count(&j, f.orig_len.max(f.data.len()) as u64);
            out.push(j);
        }
        self.scratch = scratch;
    }

    /// Judges frames staged ahead by a [`Stager`] (`staged[i]` is
    /// `frames[i]` staged), appending one judgement per frame to `out`: the
    /// same judgements [`Engine::process_batch`] gives. Decisions staged with
    /// other rules than the engine's (`rules`, the stager's) are not used.
    pub fn process_staged(
        &mut self,
        rules: &Arc<Ruleset>,
        frames: &[Input],
        staged: &[Staged],
        out: &mut Vec<Judgement>,
    ) {
        debug_assert_eq!(frames.len(), staged.len());
        let same_rules = Arc::ptr_eq(rules, &self.rules);
        let mut keys = std::mem::take(&mut self.keys);
        keys.clear();
        for (i, (f, s)) in frames.iter().zip(staged).enumerate() {
            // Prepare and prefetch the conntrack slots AHEAD frames on.
            while keys.len() < staged.len() && keys.len() <= i + AHEAD {
                let k = staged[keys.len()].key.map(|(k, class)| {
                    let prep = self.conntrack.prepare(&k);
                    self.conntrack.prefetch(&prep);
                    (prep, class)
                });
                keys.push(k);
            }
            let decided = s.decided.filter(|_| same_rules);
            let now = self.clock(f.ts);
            let j = match (s.parsed, keys[i]) {
                (Ok(Frame::Ip(p)), Some((prep, class))) => self.track(p, prep, class, now, decided),
                (r, _) => self.judge(r, f.data, now),
            };
            self.count(&j, f.orig_len.max(f.data.len()) as u64);
            out.push(j);
        }
        self.keys = keys;
    }

    /// A stager for this engine's rules and parse options, to stage frames
    /// on another thread.
    pub fn stager(&self) -> Stager {
        Stager {
            rules: Arc::clone(&self.rules),
            parse: self.parse,
        }
    }

    fn judge(&mut self, r: Result<Frame, ParseError>, data: &[u8], now: Nanos) -> Judgement {
        match r {
            Err(e) => {
                tracing::trace!(error = %e, "malformed frame");
                *self.stats.malformed.entry(e.kind()).or_default() += 1;
                Judgement::new(Verdict::Deny, Reason::Malformed)
            }
            Ok(Frame::Arp) if self.rules.policy.settings().allow_arp => {
                Judgement::new(Verdict::Allow, Reason::Arp)
            }
            Ok(Frame::Arp) | Ok(Frame::NotIp(_)) => Judgement::new(Verdict::Deny, Reason::NotIp),
            Ok(Frame::Ip(p)) => self.ip(p, data, now),
        }
    }

    fn ip(&mut self, p: IpPacket, frame: &[u8], now: Nanos) -> Judgement {
        if let Some((k, class)) = flow_key(&p) {
            let prep = self.conntrack.prepare(&k);
            return self.track(p, prep, class, now, None);
        }
        let zone = p.tunnel.and_then(|t| t.zone);
        let with = |v: Verdict, r: Reason| Judgement {
            packet: Some(p),
            ..Judgement::new(v, r)
        };
        if let Fragment::Later { id } = p.fragment {
            let k = FragmentKey {
                zone: zone.unwrap_or(0),
                src: p.src,
                dst: p.dst,
                proto: p.proto.0,
                id,
            };
            if let Some(allowed) = self.fragments.recall(&k, now) {
                return with(
                    if allowed {
                        Verdict::Allow
                    } else {
                        Verdict::Deny
                    },
                    Reason::Fragment,
                );
            }
            // Ports unknown: only rules that cover every port can allow it; no entry.
            return self.by_rules(p, zone, false, Class::Other, None, now, None);
        }
        // ICMP other than echo.
        if let L4::Icmp { typ: 133..=137, .. } = p.l4 {
            if p.proto == IpProto::ICMPV6 && self.rules.policy.settings().allow_neighbor_discovery {
                return with(Verdict::Allow, Reason::NeighborDiscovery);
            }
        }
        // An error relates to a flow only when it goes to the host that sent
        // the packet it quotes (Linux `nf_conntrack_inet_error`: "outer daddr
        // != inner"); one sent elsewhere is judged by the rules.
        if let Some(q) = p.quoted(frame).filter(|q| q.src == p.dst) {
            let k = FlowKey {
                zone: zone.unwrap_or(0),
                src: q.src,
                dst: q.dst,
                sport: q.ports.0,
                dport: q.ports.1,
                proto: q.proto.0,
            };
            let prepared = self.conntrack.prepare(&k);
            if self.conntrack.is_tracked(&prepared, now) {
                self.remember(&p, Verdict::Allow, now);
                return with(Verdict::Allow, Reason::Related);
            }
        }
        let j = self.by_rules(p, zone, false, Class::Other, None, now, None);
        self.remember(&p, j.verdict, now);
        j
    }

    /// A packet with a flow key: conntrack first, then the rules for a new flow.
    #[inline]
    ///
    /// `decided` is the rules' decision for this packet if it was made ahead
    /// (by a [`Stager`] with the same rules).
    fn track(
        &mut self,
        p: IpPacket,
        prepared: Prepared,
        class: Class,
        now: Nanos,
        decided: Option<Evaluation>,
    ) -> Judgement {
        let with = |v: Verdict, r: Reason| Judgement {
            packet: Some(p),
            ..Judgement::new(v, r)
        };
        let j = match self.conntrack.track(&prepared, class, now) {
            Outcome::Tracked => with(Verdict::Allow, Reason::Established),
            Outcome::Invalid => with(Verdict::Deny, Reason::Invalid),
            outcome => {
                let opens = outcome == Outcome::New
                    && match class {
                        Class::Tcp { flags } => tcp::open(flags).is_some(),
                        Class::Echo { request } => request,
                        Class::Udp | Class::Other => true,
                    };
                match class {
                    Class::Tcp { flags } if tcp::open(flags).is_none() => {
                        with(Verdict::Deny, Reason::Invalid)
                    }
                    _ => {
                        let zone = p.tunnel.and_then(|t| t.zone);
                        let prepared = Some(prepared);
                        self.by_rules(p, zone, opens, class, prepared, now, decided)
                    }
                }
            }
        };
        self.remember(&p, j.verdict, now);
        j
    }

    /// Remembers a first fragment's verdict for the fragments that follow.
    #[inline]
    fn remember(&mut self, p: &IpPacket, verdict: Verdict, now: Nanos) {
        if let Fragment::First { id } = p.fragment {
            let zone = p.tunnel.and_then(|t| t.zone).unwrap_or(0);
            let k = FragmentKey {
                zone,
                src: p.src,
                dst: p.dst,
                proto: p.proto.0,
                id,
            };
            self.fragments.remember(k, verdict == Verdict::Allow, now);
        }
    }

    /// SPEC §2 steps 3-4 for a new flow (or the decision `decided` ahead);
    /// opens an entry when allowed and `opens`.
    #[allow(clippy::too_many_arguments)] // the packet, what conntrack said, and the time
    fn by_rules(
        &mut self,
        p: IpPacket,
        zone: Option<ZoneId>,
        opens: bool,
        class: Class,
        prepared: Option<Prepared>,
        now: Nanos,
        decided: Option<Evaluation>,
    ) -> Judgement {
        let e = decided.unwrap_or_else(|| {
            self.rules
                .decider
                .decide(&self.rules.policy, &flow_of(&p, zone))
        });
        self.stats.new_flows += 1;
        let deciding = e.deciding().copied();
        if let Some(r) = e.rule() {
            if let Some(h) = self.stats.rule_hits.get_mut(r as usize) {
                *h += 1;
            }
        }
        let mut j = Judgement {
            verdict: e.verdict,
            reason: e.reason,
            rule: e.rule(),
            decision: deciding.map(|d| (d.interface, d.direction)),
            packet: Some(p),
        };
        if e.verdict == Verdict::Allow && opens {
            if let Some(prep) = prepared {
                match self.conntrack.open(&prep, class, now) {
                    Ok(o) => {
                        self.stats.flows_opened += 1;
                        self.stats.early_drops += u64::from(o.early_drop);
                    }
                    Err(_) => {
                        j.verdict = Verdict::Deny;
                        j.reason = Reason::ConntrackFull;
                    }
                }
            }
        }
        j
    }
}

/// A frame parsed ahead of judging, with what its judgement needs that does
/// not depend on the connection table: its flow key and, for a packet likely
/// to be a new flow, the rules' decision (SPEC §2 steps 3-4 depend on the
/// policy and the packet alone). Made by a [`Stager`], used by
/// [`Engine::process_staged`].
#[derive(Debug, Clone, Copy)]
pub struct Staged {
    parsed: Result<Frame, ParseError>,
    key: Option<(FlowKey, Class)>,
    decided: Option<Evaluation>,
}

/// Stages frames for an engine, on any thread: replay parses and decides
/// new flows on its reading thread while the engine's thread does the
/// connection table, so a capture of new flows (a scan, a flood) is judged
/// on both cores.
#[derive(Clone)]
pub struct Stager {
    rules: Arc<Ruleset>,
    parse: ParseOptions,
}

impl Stager {
    /// The rules the decisions are made with.
    pub fn rules(&self) -> &Arc<Ruleset> {
        &self.rules
    }

    /// Stages `frames` into `out` (cleared first), one per frame.
    pub fn stage(&self, frames: &[Input], out: &mut Vec<Staged>) {
        out.clear();
        out.extend(frames.iter().map(|f| {
            let parsed = parse(f.link, f.data, f.orig_len.max(f.data.len()), self.parse);
            let (key, decided) = match &parsed {
                Ok(Frame::Ip(p)) => {
                    let key = flow_key(p);
                    let decided = key.filter(|(_, c)| likely_new(*c)).map(|_| {
                        let zone = p.tunnel.and_then(|t| t.zone);
                        self.rules
                            .decider
                            .decide(&self.rules.policy, &flow_of(p, zone))
                    });
                    (key, decided)
                }
                _ => (None, None),
            };
            Staged {
                parsed,
                key,
                decided,
            }
        }));
    }
}

/// Whether a packet of this class is worth deciding ahead: one that opens
/// a flow when there is none (a SYN, UDP, an echo request, other
/// protocols). A TCP segment with ACK is most likely of a tracked flow; if
/// it is not, the engine decides it then.
fn likely_new(class: Class) -> bool {
    match class {
        Class::Tcp { flags } => tcp::open(flags) == Some(tcp::TcpState::SynSent),
        Class::Echo { request } => request,
        Class::Udp | Class::Other => true,
    }
}

/// The conntrack key of a packet that is looked up as a flow of its own:
/// TCP, UDP, ICMP echo and other protocols, but not later fragments or
/// other ICMP messages (errors, neighbour discovery, …).
#[inline]
fn flow_key(p: &IpPacket) -> Option<(FlowKey, Class)> {
    if let Fragment::Later { .. } = p.fragment {
        return None;
    }
    let (sport, dport, class) = match p.l4 {
        L4::Tcp {
            sport,
            dport,
            flags,
        } => (sport, dport, Class::Tcp { flags }),
        L4::Udp { sport, dport } => (sport, dport, Class::Udp),
        L4::Icmp { typ, ident, .. } => {
            let v6 = p.proto == IpProto::ICMPV6;
            let request = typ == if v6 { 128 } else { 8 };
            let reply = typ == if v6 { 129 } else { 0 };
            if !request && !reply {
                return None;
            }
            (ident, ident, Class::Echo { request })
        }
        L4::None => (0, 0, Class::Other),
    };
    let zone = p.tunnel.and_then(|t| t.zone).unwrap_or(0);
    Some((
        FlowKey {
            zone,
            src: p.src,
            dst: p.dst,
            sport,
            dport,
            proto: p.proto.0,
        },
        class,
    ))
}

/// The flow the rules see for a packet: ports and ICMP fields when known.
pub fn flow_of(p: &IpPacket, zone: Option<ZoneId>) -> Flow {
    let mut f = Flow::other(p.src, p.dst, p.proto).in_zone(zone);
    match p.l4 {
        L4::Tcp { sport, dport, .. } | L4::Udp { sport, dport } => {
            f.sport = Some(sport);
            f.dport = Some(dport);
        }
        L4::Icmp { typ, code, .. } => f.icmp = Some((typ, code)),
        L4::None => {}
    }
    f
}

#[cfg(test)]
mod tests;
