//! The engine: bytes and a time in, a verdict and its reason out (SPEC §2).
//! No I/O and no clock: replay passes capture time, live modes pass the
//! clock, so a replay is deterministic and timeouts are testable without
//! sleeping.
//!
//! A packet goes through named stages, each of which either judges it or
//! passes it on:
//!
//! 1. **link** ([`Engine::link`]): parse; ARP, not-IP and malformed frames
//!    are judged here, and ICMPv6 neighbour discovery when allowed;
//! 2. **fragments** ([`Engine::fragments`]): a later fragment takes its first
//!    fragment's verdict;
//! 3. **nacl** ([`Engine::nacl_stage`]): the network ACLs of the subnets
//!    the packet leaves and enters judge it, statelessly: every packet,
//!    established and related ones included (SPEC §9.1); a policy without
//!    ACLs passes through on one branch;
//! 4. **conntrack** ([`Engine::conntrack_stage`]): established packets,
//!    invalid TCP, ICMP errors related to a tracked flow;
//! 5. **rules** ([`Engine::rules_stage`]): a new flow is decided by the
//!    security groups, or the decision made for it ahead, in a batch;
//! 6. **open** ([`Engine::open`]): an allowed new flow opens an entry (or is
//!    denied when the table, or an interface's allowance, is full).
//!
//! Interfaces with `tracking = "aws"` leave some flows untracked (SPEC
//! §9.3, [`crate::policy::tracking`]): each end that is an interface decides
//! for itself. A flow no end tracks takes no entry and every packet of it,
//! whatever its TCP flags, goes to the rules (reason `untracked`); a flow
//! one end tracks takes an entry kept by that end, and the other end judges
//! every packet of it by its rules ([`Outcome::Partly`]).
//!
//! A later fragment that takes its first fragment's verdict takes the ACLs'
//! verdict with it (the first fragment was judged by them); one without a
//! remembered verdict is judged by the ACLs and then the rules with its
//! ports unknown. A batch
//! is staged first ([`Stager`]): every frame parsed and its flow key made,
//! and the frames likely to be new flows decided together through the
//! classifier's batch lookup; then judged in order, each frame's conntrack
//! slot fetched a few frames ahead.
//!
//! Packets come as frames ([`Input`]: a link type and the bytes) or, from
//! the GWLB appliance's sockets, as GENEVE UDP payloads with their outer
//! ends beside them ([`GeneveInput`], [`Engine::process_geneve_batch`]):
//! judged alike, the outer headers neither built nor parsed.

use std::sync::Arc;

pub use crate::classify::{Decide, Decisions, Reference};

use crate::classify::sg::SgClassifier;
use crate::conntrack::{
    tcp, Class, Conntrack, Ends, FlowKey, FragmentKey, FragmentMemory, Nanos, Outcome, Prepared,
};
use crate::policy::nacl::{AclDecision, Nacls};
use crate::policy::{
    Direction, Evaluation, Flow, IfaceId, IpProto, Policy, Reason, RuleId, Verdict, ZoneId,
};
use crate::wire::packet::{
    fast_ipv4, fast_ipv6, parse, parse_general, parse_geneve, Fragment, Frame, IpPacket, LinkType,
    OuterEnds, ParseError, ParseOptions, L4,
};

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

/// One GENEVE datagram to judge, as a UDP socket received it: the payload
/// (the GENEVE header at byte 0), and the ends its outer IP and UDP headers
/// had. Its judgement is the one [`Input`] gets for the whole packet that
/// carried it ([`parse_geneve`]), and so are its counted bytes (the outer
/// IP packet's length); the offsets in its [`IpPacket`] count from the
/// payload's start.
#[derive(Debug, Clone, Copy)]
pub struct GeneveInput<'a> {
    pub payload: &'a [u8],
    pub outer: OuterEnds,
    pub ts: Nanos,
}

/// What the stages need of a packet, however it came.
trait Arrival {
    fn parse(&self, opts: ParseOptions) -> Result<Frame, ParseError>;
    /// [`Arrival::parse`] in three steps, each packet written where it
    /// goes (see [`stage`]): the IPv4 fast path, the IPv6 one, and the
    /// parse of a frame neither takes. This repeats `parse`'s order of
    /// paths on purpose: a `parse` handing its result to a closure from
    /// each path was tried, and the compiler merged the three calls back
    /// into one, the stall with them.
    fn fast_ipv4(&self, _opts: ParseOptions) -> Option<IpPacket> {
        None
    }
    fn fast_ipv6(&self, _opts: ParseOptions) -> Option<IpPacket> {
        None
    }
    fn parse_rest(&self, opts: ParseOptions) -> Result<Frame, ParseError> {
        self.parse(opts)
    }
    /// The bytes the parsed offsets count from.
    fn bytes(&self) -> &[u8];
    /// Its length on the wire: what the byte counters count.
    fn wire_len(&self) -> usize;
    fn ts(&self) -> Nanos;
}

impl Arrival for Input<'_> {
    #[inline]
    fn parse(&self, opts: ParseOptions) -> Result<Frame, ParseError> {
        parse(self.link, self.data, self.wire_len(), opts)
    }
    #[inline(always)]
    fn fast_ipv4(&self, opts: ParseOptions) -> Option<IpPacket> {
        (self.link == LinkType::Ethernet)
            .then(|| fast_ipv4(self.data, self.wire_len(), opts))
            .flatten()
    }
    #[inline(always)]
    fn fast_ipv6(&self, opts: ParseOptions) -> Option<IpPacket> {
        (self.link == LinkType::Ethernet)
            .then(|| fast_ipv6(self.data, self.wire_len(), opts))
            .flatten()
    }
    fn parse_rest(&self, opts: ParseOptions) -> Result<Frame, ParseError> {
        parse_general(self.link, self.data, self.wire_len(), opts)
    }
    fn bytes(&self) -> &[u8] {
        self.data
    }
    fn wire_len(&self) -> usize {
        self.orig_len.max(self.data.len())
    }
    fn ts(&self) -> Nanos {
        self.ts
    }
}

impl Arrival for GeneveInput<'_> {
    #[inline]
    fn parse(&self, opts: ParseOptions) -> Result<Frame, ParseError> {
        parse_geneve(self.payload, &self.outer, opts)
    }
    fn bytes(&self) -> &[u8] {
        self.payload
    }
    /// Ends no packet could have (malformed) count the payload alone.
    fn wire_len(&self) -> usize {
        self.outer
            .ip_len(self.payload.len())
            .unwrap_or(self.payload.len())
    }
    fn ts(&self) -> Nanos {
        self.ts
    }
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
    /// The network ACL decision that denied the packet (reason `nacl`):
    /// the subnet, direction and entry that output lines name.
    pub nacl: Option<AclDecision>,
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
            nacl: None,
            packet: None,
        }
    }

    fn of(p: IpPacket, verdict: Verdict, reason: Reason) -> Judgement {
        Judgement {
            packet: Some(p),
            ..Judgement::new(verdict, reason)
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
    pub allowed_by_reason: [u64; Reason::COUNT],
    pub denied_by_reason: [u64; Reason::COUNT],
    /// New flows decided by the rules.
    pub new_flows: u64,
    /// Entries opened.
    pub flows_opened: u64,
    /// Unassured entries a full table evicted for a new flow (SPEC §2.8).
    pub early_drops: u64,
    /// Packets each rule decided (the rule their judgement names), by rule
    /// id: new flows, and the packets of flows an end leaves untracked.
    pub rule_hits: Vec<u64>,
    /// Packets each network ACL entry (or `*`) decided, by
    /// [`Nacls::hit_index`]: a packet crossing two ACLs counts in both
    /// (unless the first denies it).
    pub nacl_hits: Vec<u64>,
    /// Malformed frames by what was wrong ([`ParseError::kind`]).
    pub malformed: std::collections::BTreeMap<&'static str, u64>,
}

impl Stats {
    /// Packets with this reason, whatever their verdict.
    pub fn reason(&self, r: Reason) -> u64 {
        self.allowed_by_reason[r.index()] + self.denied_by_reason[r.index()]
    }
}

/// How many frames ahead of the one being judged [`Engine::process_batch`]
/// fetches conntrack slots into the cache.
const AHEAD: usize = 8;

/// The most frames [`Engine::process_batch`] stages at once.
const STAGE: usize = 64;

/// What the conntrack stage passes on to the rules: a new flow of this
/// class, and whether an allowed one opens an entry (in the slot of the
/// packet's flow key).
#[derive(Debug, Clone, Copy)]
struct NewFlow {
    class: Class,
    opens: bool,
    /// TCP that cannot open a flow (no SYN, or SYN+ACK, FIN, RST): only an
    /// untracked flow lets it through; otherwise it is `invalid`.
    unopenable: bool,
}

/// How the conntrack stage settled a packet the rules need not decide as a
/// new flow.
#[derive(Debug, Clone, Copy)]
enum Settled {
    /// Of a tracked flow.
    Established,
    /// An ICMP error quoting a tracked flow.
    Related,
    /// TCP that cannot open a flow, where no flow is untracked.
    Invalid,
    /// Of a flow only some of its ends track: the others judge it.
    Partly(Ends),
}

/// The data plane's decision core.
pub struct Engine {
    rules: Arc<Ruleset>,
    conntrack: Conntrack,
    /// The share of the policy's `max_entries` this engine's table holds
    /// (1 of `conntrack_share`): live modes with several workers split it.
    conntrack_share: u32,
    fragments: FragmentMemory,
    parse: ParseOptions,
    stats: Stats,
    /// The latest packet time seen: time never goes backwards, a packet
    /// older than that is judged at that time (conntrack and fragments alike).
    latest: Nanos,
    /// The staged frames of the batch being judged.
    staged: StagedBatch,
    /// The prepared flow keys of the staged frames being judged.
    keys: Vec<Option<(Prepared, Class)>>,
    stage_scratch: StageScratch,
    /// Some interface may leave flows untracked (`tracking = "aws"`, not
    /// in gwlb mode): new flows ask each end.
    aws_tracking: bool,
}

impl Engine {
    pub fn new(rules: Arc<Ruleset>) -> Engine {
        let conntrack = Conntrack::new(&rules.policy.conntrack().config());
        let stats = Stats {
            rule_hits: vec![0; rules.policy.rules().len()],
            nacl_hits: vec![0; nacl_counters(&rules.policy)],
            ..Default::default()
        };
        let mut engine = Engine {
            rules,
            conntrack,
            conntrack_share: 1,
            fragments: FragmentMemory::default(),
            parse: ParseOptions::default(),
            stats,
            latest: 0,
            staged: StagedBatch::default(),
            keys: Vec::new(),
            stage_scratch: StageScratch::default(),
            aws_tracking: false,
        };
        engine.configure_conntrack(&[]);
        engine
    }

    /// An engine deciding with the compiled classifier.
    pub fn with_policy(policy: Policy) -> Engine {
        Engine::new(Arc::new(Ruleset::compile(policy)))
    }

    pub fn set_parse_options(&mut self, o: ParseOptions) {
        self.parse = o;
    }

    /// Swaps in a new policy: tracked flows keep flowing, new flows see the
    /// new rules; the table takes the new limits and timeouts.
    pub fn set_rules(&mut self, rules: Arc<Ruleset>) {
        self.stats.rule_hits = vec![0; rules.policy.rules().len()];
        self.stats.nacl_hits = vec![0; nacl_counters(&rules.policy)];
        // Entries name interfaces by index: give each its index in the new policy.
        let remap: Vec<Option<IfaceId>> = self
            .rules
            .policy
            .interfaces()
            .iter()
            .map(|i| rules.policy.interface_id(&i.name))
            .collect();
        self.rules = rules;
        self.configure_conntrack(&remap);
    }

    /// Seeds the connection table's hash at random (live modes): see
    /// [`Conntrack::randomize_hash`].
    pub fn randomize_conntrack_hash(&mut self) {
        self.conntrack.randomize_hash();
    }

    /// Makes this engine's table hold one `parts`-th of the policy's
    /// `max_entries` (at least one), now and after every [`Engine::set_rules`]:
    /// workers that each own a table share the limit so the whole holds
    /// about that many.
    pub fn share_conntrack(&mut self, parts: u32) {
        self.conntrack_share = parts.max(1);
        self.configure_conntrack(&[]);
    }

    /// The table's limits and timeouts, and each interface's (`remap`:
    /// see [`Conntrack::configure_interfaces`]).
    fn configure_conntrack(&mut self, remap: &[Option<IfaceId>]) {
        let policy = &self.rules.policy;
        let share = self.conntrack_share;
        let mut config = policy.conntrack().config();
        config.max_entries = config.max_entries.div_ceil(share).max(1);
        self.conntrack.reconfigure(&config);
        let mut interfaces = policy.interface_conntrack();
        for i in &mut interfaces {
            i.max_entries = i.max_entries.map(|m| m.div_ceil(share).max(1));
        }
        self.conntrack.configure_interfaces(&interfaces, remap);
        self.aws_tracking = !policy.gwlb_mode()
            && policy
                .interfaces()
                .iter()
                .any(|i| i.place.tracking.as_ref().is_some_and(|t| t.value == "aws"));
    }

    /// Removes the entries expired at `now` (live modes call it when idle;
    /// replay's time only moves with packets). Returns how many went.
    pub fn expire(&mut self, now: Nanos) -> usize {
        let now = self.clock(now);
        self.conntrack.expire(now)
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
        let wire_len = orig_len.max(data.len());
        let parsed = parse(link, data, wire_len, self.parse);
        let key = match &parsed {
            Ok(Frame::Ip(p)) => flow_key(&self.rules.policy, p)
                .map(|(k, class)| (self.conntrack.prepare(&k), class)),
            _ => None,
        };
        let now = self.clock(now);
        let j = self.judge(&parsed, key.as_ref(), data, now, None);
        self.count(&j, wire_len as u64);
        j
    }

    /// Judges a frame of a link type sgplane cannot parse: not IP, as far as it can tell.
    pub fn process_unknown_link(&mut self, orig_len: usize) -> Judgement {
        let j = Judgement::new(Verdict::Deny, Reason::NotIp);
        self.count(&j, orig_len as u64);
        j
    }

    /// Judges a batch of frames in order, appending one judgement per frame
    /// to `out`: the judgements [`Engine::process`] gives one by one, faster.
    /// The batch is staged (parsed, and the frames likely to be new flows
    /// decided together through the classifier's batch lookup), then judged
    /// with each frame's conntrack slot fetched [`AHEAD`] frames before.
    pub fn process_batch(&mut self, frames: &[Input], out: &mut Vec<Judgement>) {
        self.stage_and_judge(frames, &mut |j| out.push(*j));
    }

    /// [`Engine::process_batch`] handing each judgement to `judged` as it
    /// is made, in order, instead of collecting them: a caller that uses
    /// each at once (replay writes and counts it) keeps it in the cache
    /// rather than writing out a batch of them and reading it back.
    pub fn process_batch_each(&mut self, frames: &[Input], judged: &mut impl FnMut(&Judgement)) {
        self.stage_and_judge(frames, judged);
    }

    /// Judges a batch of GENEVE datagrams in order, appending one judgement
    /// per datagram to `out`: what [`Engine::process_batch`] gives for the
    /// packets that carried them (the GWLB appliance's way in: no outer
    /// header is built or parsed).
    pub fn process_geneve_batch(&mut self, datagrams: &[GeneveInput], out: &mut Vec<Judgement>) {
        self.stage_and_judge(datagrams, &mut |j| out.push(*j));
    }

    /// Stages `arrivals` [`STAGE`] at a time and judges each staged chunk.
    fn stage_and_judge<A: Arrival>(&mut self, arrivals: &[A], judged: &mut impl FnMut(&Judgement)) {
        let mut staged = std::mem::take(&mut self.staged);
        for chunk in arrivals.chunks(STAGE) {
            stage(
                &self.rules,
                self.parse,
                chunk,
                &mut staged,
                &mut self.stage_scratch,
            );
            self.judge_staged(chunk, staged.slice(0..chunk.len()), true, judged);
        }
        self.staged = staged;
    }

    /// Judges frames staged ahead by a [`Stager`] (`staged`'s i-th frame
    /// is `frames[i]` staged), handing one judgement per frame to `judged`
    /// in order: the same judgements [`Engine::process_batch`] gives.
    /// Decisions staged with other rules than the engine's (`rules`, the
    /// stager's) are not used.
    pub fn process_staged(
        &mut self,
        rules: &Arc<Ruleset>,
        frames: &[Input],
        staged: StagedSlice,
        judged: &mut impl FnMut(&Judgement),
    ) {
        debug_assert_eq!(frames.len(), staged.frames.len());
        let same_rules = Arc::ptr_eq(rules, &self.rules);
        self.judge_staged(frames, staged, same_rules, judged);
    }

    /// A stager for this engine's rules and parse options, to stage frames
    /// on another thread.
    pub fn stager(&self) -> Stager {
        Stager {
            rules: Arc::clone(&self.rules),
            parse: self.parse,
            scratch: StageScratch::default(),
        }
    }

    /// Judges staged frames in order, handing each judgement to `judged`;
    /// `decided` says whether the staged decisions were made with this
    /// engine's rules.
    fn judge_staged<A: Arrival>(
        &mut self,
        frames: &[A],
        staged: StagedSlice,
        decided: bool,
        judged: &mut impl FnMut(&Judgement),
    ) {
        let mut keys = std::mem::take(&mut self.keys);
        keys.clear();
        let n = staged.frames.len();
        for (i, (f, s)) in frames.iter().zip(staged.frames).enumerate() {
            // Prepare and prefetch the conntrack slots AHEAD frames on.
            while keys.len() < n && keys.len() <= i + AHEAD {
                let key = match &staged.frames[keys.len()].parsed {
                    Ok(Frame::Ip(p)) => flow_key(&self.rules.policy, p),
                    _ => None,
                };
                let k = key.map(|(k, class)| {
                    let prep = self.conntrack.prepare(&k);
                    self.conntrack.prefetch(&prep);
                    (prep, class)
                });
                keys.push(k);
            }
            let now = self.clock(f.ts());
            let decided = staged.decisions.get(s.decided as usize).filter(|_| decided);
            let j = self.judge(&s.parsed, keys[i].as_ref(), f.bytes(), now, decided);
            self.count(&j, f.wire_len() as u64);
            judged(&j);
        }
        self.keys = keys;
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
        // The rule the judgement names decided the packet: a rule the
        // rules stage found but that did not decide (TCP that cannot open
        // a tracked flow is `invalid`; an interface out of allowance is
        // `conntrack-full`) has no hit.
        if let Some(h) = j.rule.and_then(|r| s.rule_hits.get_mut(r as usize)) {
            *h += 1;
        }
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

    /// Every stage for one frame: `key` is its prepared flow key (when it is
    /// looked up as a flow of its own), `decided` the rules' decision made
    /// ahead for it, if any.
    #[inline]
    fn judge(
        &mut self,
        parsed: &Result<Frame, ParseError>,
        key: Option<&(Prepared, Class)>,
        frame: &[u8],
        now: Nanos,
        decided: Option<&Evaluation>,
    ) -> Judgement {
        let p = match self.link(parsed) {
            Ok(p) => p,
            Err(j) => return j,
        };
        if let Some(j) = self.fragments(p, now) {
            return j;
        }
        let j = match self.nacl_stage(p) {
            Some(j) => j,
            None => match self.conntrack_stage(p, key, frame, now) {
                Ok(new) => {
                    let e = self.rules_stage(p, decided);
                    self.open(p, &e, new, key.map(|k| &k.0), now)
                }
                Err(settled) => self.settled(p, settled),
            },
        };
        self.remember(p, j.verdict, now);
        j
    }

    /// Stage 1, the link layer: the IP packet, or the judgement of a frame
    /// that is not one (ARP, not IP, malformed) or needs no rules
    /// (neighbour discovery when allowed).
    // A judgement is 136 bytes since it carries the ACL decision; these
    // stages return it by value on purpose (no allocation per packet).
    #[allow(clippy::result_large_err)]
    #[inline]
    fn link<'p>(
        &mut self,
        parsed: &'p Result<Frame, ParseError>,
    ) -> Result<&'p IpPacket, Judgement> {
        let settings = &self.rules.policy.settings();
        match parsed {
            Ok(Frame::Ip(p)) => match p.l4 {
                L4::Icmp { typ: 133..=137, .. }
                    if p.proto == IpProto::ICMPV6 && settings.allow_neighbor_discovery =>
                {
                    Err(Judgement::of(*p, Verdict::Allow, Reason::NeighborDiscovery))
                }
                _ => Ok(p),
            },
            Err(e) => {
                tracing::trace!(error = %e, "malformed frame");
                *self.stats.malformed.entry(e.kind()).or_default() += 1;
                Err(Judgement::new(Verdict::Deny, Reason::Malformed))
            }
            Ok(Frame::Arp) if settings.allow_arp => {
                Err(Judgement::new(Verdict::Allow, Reason::Arp))
            }
            Ok(Frame::Arp) | Ok(Frame::NotIp(_)) => {
                Err(Judgement::new(Verdict::Deny, Reason::NotIp))
            }
        }
    }

    /// Stage 2, fragments: a later fragment takes its first fragment's
    /// verdict; without one it is judged by the network ACLs and the rules
    /// with its ports unknown (only entries and rules covering every port
    /// can allow it) and opens no entry. Other packets pass on.
    #[inline]
    fn fragments(&mut self, p: &IpPacket, now: Nanos) -> Option<Judgement> {
        let Fragment::Later { id } = p.fragment else {
            return None;
        };
        let k = FragmentKey {
            zone: zone_of(&self.rules.policy, p).unwrap_or(0),
            src: p.src,
            dst: p.dst,
            proto: p.proto.0,
            id,
        };
        if let Some(allowed) = self.fragments.recall(&k, now) {
            let v = if allowed {
                Verdict::Allow
            } else {
                Verdict::Deny
            };
            return Some(Judgement::of(*p, v, Reason::Fragment));
        }
        if let Some(j) = self.nacl_stage(p) {
            return Some(j);
        }
        let e = self.rules_stage(p, None);
        let new = NewFlow {
            class: Class::Other,
            opens: false,
            unopenable: false,
        };
        Some(self.open(p, &e, new, None, now))
    }

    /// Stage 3, network ACLs (SPEC §9.1): the denial of the ACL of the
    /// subnet the packet leaves (egress) or enters (ingress), if one denies
    /// it; every packet, whatever its flow's state. A policy without ACLs
    /// costs this one branch.
    #[inline]
    fn nacl_stage(&mut self, p: &IpPacket) -> Option<Judgement> {
        let nacls = self.rules.policy.nacls()?;
        judge_nacls(nacls, &self.rules.policy, p, &mut self.stats.nacl_hits)
    }

    /// Stage 4, conntrack: a packet of a tracked flow passes (`established`),
    /// TCP that cannot open a flow is `invalid`, an ICMP error quoting a
    /// tracked flow passes (`related`); anything else is a new flow for the
    /// rules.
    ///
    /// It says how it settled a packet ([`Settled`]) rather than returning
    /// the judgement: a `Result` holding a judgement lives in memory, and
    /// the new flow read back from it as one word right after it was
    /// written byte by byte stalled every new flow (the load cannot be
    /// forwarded from the stores; a tenth of the judging thread on a scan).
    #[inline]
    fn conntrack_stage(
        &mut self,
        p: &IpPacket,
        key: Option<&(Prepared, Class)>,
        frame: &[u8],
        now: Nanos,
    ) -> Result<NewFlow, Settled> {
        let Some(&(ref prepared, class)) = key else {
            return self.related(p, frame, now);
        };
        match self.conntrack.track(prepared, class, now) {
            Outcome::Tracked => Err(Settled::Established),
            Outcome::Partly(ends) => Err(Settled::Partly(ends)),
            Outcome::Invalid => Err(Settled::Invalid),
            outcome => {
                let opening = match class {
                    Class::Tcp { flags } => tcp::open(flags).is_some(),
                    Class::Echo { request } => request,
                    Class::Udp | Class::Other => true,
                };
                let unopenable = matches!(class, Class::Tcp { .. }) && !opening;
                // Without untracked flows there is nothing the rules could
                // let through.
                if unopenable && !self.aws_tracking {
                    return Err(Settled::Invalid);
                }
                Ok(NewFlow {
                    class,
                    opens: outcome == Outcome::New && opening,
                    unopenable,
                })
            }
        }
    }

    /// The judgement of a packet the conntrack stage settled.
    fn settled(&mut self, p: &IpPacket, settled: Settled) -> Judgement {
        match settled {
            Settled::Established => Judgement::of(*p, Verdict::Allow, Reason::Established),
            Settled::Related => Judgement::of(*p, Verdict::Allow, Reason::Related),
            Settled::Invalid => Judgement::of(*p, Verdict::Deny, Reason::Invalid),
            Settled::Partly(ends) => self.untracked_ends(p, ends),
        }
    }

    /// A packet of a flow some of its ends track ([`Outcome::Partly`]): the
    /// ends that are interfaces not keeping the entry judge it by their
    /// rules, every packet (SPEC §9.3); if they allow it, it passes as
    /// `established` (the other end tracks it).
    fn untracked_ends(&mut self, p: &IpPacket, ends: Ends) -> Judgement {
        let zone = zone_of(&self.rules.policy, p);
        let e = self
            .rules
            .decider
            .decide(&self.rules.policy, &flow_of(p, zone));
        let denied = e
            .decisions()
            .find(|d| !ends.contains(d.interface) && d.verdict == Verdict::Deny);
        match denied {
            Some(d) => Judgement {
                rule: d.rule,
                decision: Some((d.interface, d.direction)),
                ..Judgement::of(*p, Verdict::Deny, d.reason())
            },
            None => Judgement::of(*p, Verdict::Allow, Reason::Established),
        }
    }

    /// Stage 4 for packets that are not flows of their own (ICMP other than
    /// echo): an error relates to a flow only when it goes to the host that
    /// sent the packet it quotes (Linux `nf_conntrack_inet_error`: "outer
    /// daddr != inner"); one sent elsewhere is judged by the rules.
    // A judgement is 136 bytes since it carries the ACL decision; these
    // stages return it by value on purpose (no allocation per packet).
    #[allow(clippy::result_large_err)]
    fn related(&mut self, p: &IpPacket, frame: &[u8], now: Nanos) -> Result<NewFlow, Settled> {
        if let Some(q) = p.quoted(frame).filter(|q| q.src == p.dst) {
            let zone = self.rules.policy.zone_of(
                p.tunnel.and_then(|t| self.rules.policy.tunnel_zone(&t)),
                q.src,
                q.dst,
            );
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
                return Err(Settled::Related);
            }
        }
        Ok(NewFlow {
            class: Class::Other,
            opens: false,
            unopenable: false,
        })
    }

    /// Stage 5, the rules (SPEC §2 steps 3-4): the new flow's evaluation,
    /// or the one `decided` ahead for it.
    #[inline]
    fn rules_stage(&mut self, p: &IpPacket, decided: Option<&Evaluation>) -> Evaluation {
        let e = decided.copied().unwrap_or_else(|| {
            let zone = zone_of(&self.rules.policy, p);
            self.rules
                .decider
                .decide(&self.rules.policy, &flow_of(p, zone))
        });
        self.stats.new_flows += 1;
        e
    }

    /// Stage 6: the judgement of a new flow; an allowed one that opens
    /// takes an entry kept by the ends that track it, or is denied
    /// `conntrack-full` when there is no room (in the table, or in an end's
    /// allowance: that end named). A flow no end tracks takes no entry and
    /// is `untracked`; TCP that cannot open a flow is `invalid` unless so.
    #[inline]
    fn open(
        &mut self,
        p: &IpPacket,
        e: &Evaluation,
        new: NewFlow,
        prepared: Option<&Prepared>,
        now: Nanos,
    ) -> Judgement {
        let deciding = e.deciding();
        let mut j = Judgement {
            verdict: e.verdict,
            reason: e.reason,
            rule: deciding.and_then(|d| d.rule),
            decision: deciding.map(|d| (d.interface, d.direction)),
            nacl: None,
            packet: Some(*p),
        };
        let tracking = if e.verdict == Verdict::Allow {
            self.tracking_ends(p, e, new.class)
        } else {
            EndsTracking::default()
        };
        if e.verdict == Verdict::Allow && tracking.untracked() {
            j.reason = Reason::Untracked;
            return j;
        }
        if new.unopenable {
            return Judgement::of(*p, Verdict::Deny, Reason::Invalid);
        }
        if let (Verdict::Allow, true, Some(prep)) = (e.verdict, new.opens, prepared) {
            let opened =
                self.conntrack
                    .open_at(prep, new.class, now, tracking.ends, tracking.untracked_end);
            match opened {
                Ok(o) => {
                    self.stats.flows_opened += 1;
                    self.stats.early_drops += u64::from(o.early_drop);
                }
                Err(full) => {
                    j.verdict = Verdict::Deny;
                    j.reason = Reason::ConntrackFull;
                    if let Some(i) = full.interface {
                        let d = e.decisions().find(|d| d.interface == i);
                        j.decision = d.map(|d| (d.interface, d.direction));
                        j.rule = None;
                    }
                }
            }
        }
        j
    }

    /// Which ends of an allowed new flow keep its state (SPEC §9.3).
    fn tracking_ends(&self, p: &IpPacket, e: &Evaluation, class: Class) -> EndsTracking {
        let end = |d: Option<&crate::policy::Decision>| d.map(|d| d.interface);
        let (src, dst) = (end(e.egress.as_ref()), end(e.ingress.as_ref()));
        if !self.aws_tracking || !matches!(class, Class::Tcp { .. } | Class::Udp) {
            return EndsTracking {
                ends: Ends::of(src, dst),
                ..Default::default()
            };
        }
        let policy = &self.rules.policy;
        let flow = flow_of(p, zone_of(policy, p));
        let tracks = |d: &Option<crate::policy::Decision>| {
            d.as_ref().and_then(|d| {
                (!policy.untracked_either_way(d.interface, d.direction, &flow, d.rule))
                    .then_some(d.interface)
            })
        };
        let (ts, td) = (tracks(&e.egress), tracks(&e.ingress));
        EndsTracking {
            ends: Ends::of(ts, td),
            untracked_end: ts != src || td != dst,
            all_untracked: ts.is_none() && td.is_none() && (src.is_some() || dst.is_some()),
        }
    }

    /// Remembers a first fragment's verdict for the fragments that follow.
    #[inline]
    fn remember(&mut self, p: &IpPacket, verdict: Verdict, now: Nanos) {
        if let Fragment::First { id } = p.fragment {
            let zone = zone_of(&self.rules.policy, p).unwrap_or(0);
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
}

/// Which ends of a new flow keep its state.
#[derive(Debug, Clone, Copy, Default)]
struct EndsTracking {
    /// The interfaces that track it.
    ends: Ends,
    /// An end that is an interface does not.
    untracked_end: bool,
    /// It has interface ends and none tracks it: no entry.
    all_untracked: bool,
}

impl EndsTracking {
    fn untracked(&self) -> bool {
        self.all_untracked
    }
}

/// A frame parsed ahead of judging, with what its judgement needs that does
/// not depend on the connection table: for a packet likely to be a new
/// flow, the rules' decision (SPEC §2 steps 3-4 depend on the policy and
/// the packet alone). Made by a [`Stager`], used by
/// [`Engine::process_staged`].
#[derive(Debug, Clone, Copy)]
pub struct Staged {
    parsed: Result<Frame, ParseError>,
    /// Its decision in the batch's `decisions`, or [`UNDECIDED`].
    decided: u32,
}

/// A [`Staged`] frame with no decision made ahead.
const UNDECIDED: u32 = u32::MAX;

/// Frames staged together ([`Stager::stage`]). A decision is kept once for
/// each run of frames that share it (a scan's flows do), and each frame
/// names its own: staged on one thread and judged on another, every byte
/// of a batch crosses between the cores' caches, twice (there and back for
/// the next batch), and that costs more than the staging saves when the
/// batch is large.
#[derive(Debug, Clone, Default)]
pub struct StagedBatch {
    frames: Vec<Staged>,
    /// The decisions of the frames decided ahead, in their order.
    decided: Decisions,
}

impl StagedBatch {
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    pub fn clear(&mut self) {
        self.frames.clear();
        self.decided.clear();
    }

    /// The staged frames, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Staged> {
        self.frames.iter()
    }

    /// The frames of `range`, to judge ([`Engine::process_staged`]).
    pub fn slice(&self, range: std::ops::Range<usize>) -> StagedSlice<'_> {
        StagedSlice {
            frames: &self.frames[range],
            decisions: &self.decided.distinct,
        }
    }
}

/// Some consecutive frames of a [`StagedBatch`].
#[derive(Debug, Clone, Copy)]
pub struct StagedSlice<'a> {
    frames: &'a [Staged],
    decisions: &'a [Evaluation],
}

impl Staged {
    /// The parsed packet, when the frame is IP: the packet its judgement
    /// carries.
    pub fn packet(&self) -> Option<&IpPacket> {
        match &self.parsed {
            Ok(Frame::Ip(p)) => Some(p),
            _ => None,
        }
    }
}

/// Stages frames for an engine, on any thread: replay parses and decides
/// new flows on its reading thread while the engine's thread does the
/// connection table, so a capture of new flows (a scan, a flood) is judged
/// on both cores.
#[derive(Clone)]
pub struct Stager {
    rules: Arc<Ruleset>,
    parse: ParseOptions,
    scratch: StageScratch,
}

impl Stager {
    /// The rules the decisions are made with.
    pub fn rules(&self) -> &Arc<Ruleset> {
        &self.rules
    }

    /// Stages `frames` into `out` (cleared first), one per frame.
    pub fn stage(&mut self, frames: &[Input], out: &mut StagedBatch) {
        stage(&self.rules, self.parse, frames, out, &mut self.scratch);
    }
}

/// The flows a batch decides together, and where their decisions go.
#[derive(Clone, Default)]
struct StageScratch {
    flows: Vec<Flow>,
    at: Vec<usize>,
}

/// Stages `frames` into `out` (cleared first): each parsed, and those
/// likely to be new flows decided by `rules` in one batch.
fn stage<A: Arrival>(
    rules: &Ruleset,
    parse_options: ParseOptions,
    frames: &[A],
    out: &mut StagedBatch,
    scratch: &mut StageScratch,
) {
    out.clear();
    scratch.flows.clear();
    scratch.at.clear();
    // Each way a frame is parsed writes its packet into the batch itself,
    // and the flows to decide are read from the batch once it is complete.
    // Read (or copied) right after the parser wrote it field by field, a
    // packet's adjacent fields are loaded in wider loads, which wait for
    // those stores to complete (a third of staging's time on a scan).
    let push = |parsed: Result<Frame, ParseError>, out: &mut StagedBatch| {
        out.frames.push(Staged {
            parsed,
            decided: UNDECIDED,
        })
    };
    for f in frames {
        if let Some(p) = f.fast_ipv4(parse_options) {
            push(Ok(Frame::Ip(p)), out);
        } else if let Some(p) = f.fast_ipv6(parse_options) {
            push(Ok(Frame::Ip(p)), out);
        } else {
            push(f.parse_rest(parse_options), out);
        }
    }
    for (i, s) in out.frames.iter().enumerate() {
        if let Ok(Frame::Ip(p)) = &s.parsed {
            if flow_class(p).is_some_and(|(_, _, c)| likely_new(c)) {
                scratch.at.push(i);
                scratch.flows.push(flow_of(p, zone_of(&rules.policy, p)));
            }
        }
    }
    if scratch.flows.is_empty() {
        return;
    }
    rules
        .decider
        .decide_batch(&rules.policy, &scratch.flows, &mut out.decided);
    for (&i, &d) in scratch.at.iter().zip(&out.decided.of_flow) {
        out.frames[i].decided = d;
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

/// How many hit counters a policy's network ACLs have.
fn nacl_counters(policy: &Policy) -> usize {
    policy.nacls().map_or(0, Nacls::hit_count)
}

/// The network ACLs' judgement of a packet: its denial, if an ACL denies
/// it. Each decision taken counts a hit (the ingress one only when the
/// egress one let the packet out).
fn judge_nacls(
    nacls: &Nacls,
    policy: &Policy,
    p: &IpPacket,
    hits: &mut [u64],
) -> Option<Judgement> {
    let e = nacls.judge(policy, &flow_of(p, zone_of(policy, p)));
    let mut count = |d: &AclDecision| {
        if let Some(h) = hits.get_mut(nacls.hit_index(d)) {
            *h += 1;
        }
    };
    if let Some(d) = &e.egress {
        count(d);
        if d.verdict == Verdict::Deny {
            return Some(denied_by_nacl(p, d));
        }
    }
    let d = e.ingress.as_ref()?;
    count(d);
    (d.verdict == Verdict::Deny).then(|| denied_by_nacl(p, d))
}

fn denied_by_nacl(p: &IpPacket, d: &AclDecision) -> Judgement {
    Judgement {
        nacl: Some(*d),
        ..Judgement::of(*p, Verdict::Deny, Reason::Nacl)
    }
}

/// The zone a packet is judged in: its GWLB zone, its mirror session's
/// interface's, or its VPC space.
#[inline]
fn zone_of(policy: &Policy, p: &IpPacket) -> Option<ZoneId> {
    policy.packet_zone(p)
}

/// The conntrack key of a packet that is looked up as a flow of its own:
/// TCP, UDP, ICMP echo and other protocols, but not later fragments or
/// other ICMP messages (errors, neighbour discovery, …).
#[inline]
fn flow_key(policy: &Policy, p: &IpPacket) -> Option<(FlowKey, Class)> {
    let (sport, dport, class) = flow_class(p)?;
    let zone = zone_of(policy, p).unwrap_or(0);
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

/// The ports (echo identifier) and class of the conntrack key of a packet
/// looked up as a flow of its own ([`flow_key`]).
#[inline]
fn flow_class(p: &IpPacket) -> Option<(u16, u16, Class)> {
    if let Fragment::Later { .. } = p.fragment {
        return None;
    }
    Some(match p.l4 {
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
    })
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
mod layers_tests;
#[cfg(test)]
pub(crate) mod nacl_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tracking_tests;
