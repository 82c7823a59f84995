//! The reference evaluator: SPEC §2 steps 3-4 for one new flow, by a plain
//! linear scan of each interface's rules in decision order. It is meant to be
//! obviously right, not fast: it is the oracle the classifier is tested
//! against, and the engine of `sgplane explain`.

use super::*;

/// What one interface decided in one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub interface: IfaceId,
    pub direction: Direction,
    pub verdict: Verdict,
    /// The deciding rule; `None` when no rule matched (`no-rule`).
    pub rule: Option<RuleId>,
}

impl Decision {
    pub fn reason(&self) -> Reason {
        if self.rule.is_some() {
            Reason::Rule
        } else {
            Reason::NoRule
        }
    }
}

/// The verdict for a new flow and every decision that led to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evaluation {
    pub verdict: Verdict,
    /// `rule`, `no-rule` or `unknown-address`.
    pub reason: Reason,
    /// The source interface's egress decision, when the source is an interface.
    pub egress: Option<Decision>,
    /// The destination interface's ingress decision, when the destination is one.
    pub ingress: Option<Decision>,
}

impl Evaluation {
    /// SPEC §2 step 3, written once for every decider: both ends that are
    /// interfaces must allow (the source's egress, the destination's
    /// ingress); the deciding decision gives the verdict and reason
    /// ([`Evaluation::deciding`]); neither end an interface is
    /// `unknown_address`.
    pub fn combine(
        unknown_address: Verdict,
        egress: Option<Decision>,
        ingress: Option<Decision>,
    ) -> Evaluation {
        let mut e = Evaluation {
            verdict: unknown_address,
            reason: Reason::UnknownAddress,
            egress,
            ingress,
        };
        if let Some(d) = e.deciding().copied() {
            e.verdict = d.verdict;
            e.reason = d.reason();
        }
        e
    }

    /// The decision an output line names: the ingress one if both allow, else
    /// the first that denies (egress is checked first).
    pub fn deciding(&self) -> Option<&Decision> {
        let denied = |d: &&Decision| d.verdict == Verdict::Deny;
        self.egress
            .as_ref()
            .filter(denied)
            .or(self.ingress.as_ref().filter(denied))
            .or(self.ingress.as_ref())
            .or(self.egress.as_ref())
    }

    /// The deciding rule, if any.
    pub fn rule(&self) -> Option<RuleId> {
        self.deciding().and_then(|d| d.rule)
    }

    /// Both decisions, egress first.
    pub fn decisions(&self) -> impl Iterator<Item = &Decision> {
        self.egress.iter().chain(self.ingress.iter())
    }
}

/// The local and remote address of a flow as seen from an interface.
pub fn ends(flow: &Flow, direction: Direction) -> (IpAddr, IpAddr) {
    match direction {
        Direction::Ingress => (flow.dst, flow.src),
        Direction::Egress => (flow.src, flow.dst),
    }
}

impl Policy {
    /// SPEC §2 steps 3-4: the verdict a new flow gets from the rules.
    pub fn evaluate(&self, flow: &Flow) -> Evaluation {
        self.judge_ends(flow, |i, d| self.decide(i, d, flow))
    }

    /// SPEC §2 step 3 for any decider: the interfaces owning the flow's
    /// source and destination (in its zone), the source's egress and the
    /// destination's ingress decided by `decide`, combined by
    /// [`Evaluation::combine`].
    pub fn judge_ends(
        &self,
        flow: &Flow,
        mut decide: impl FnMut(IfaceId, Direction) -> Decision,
    ) -> Evaluation {
        let (s, d) = self.ends_of(flow);
        let egress = s.map(|i| decide(i, Direction::Egress));
        let ingress = d.map(|i| decide(i, Direction::Ingress));
        Evaluation::combine(self.settings.unknown_address, egress, ingress)
    }

    /// The interfaces owning a flow's source and destination, in its zone.
    pub fn ends_of(&self, flow: &Flow) -> (Option<IfaceId>, Option<IfaceId>) {
        (
            self.interface_of(flow.src, flow.zone),
            self.interface_of(flow.dst, flow.zone),
        )
    }

    /// One interface's policy in one direction: the first matching rule in
    /// decision order, or deny when none matches.
    pub fn decide(&self, iface: IfaceId, direction: Direction, flow: &Flow) -> Decision {
        let rule = self
            .interface_rules(iface, direction)
            .iter()
            .copied()
            .find(|&r| self.rule_matches(r, flow));
        let verdict = match rule.map(|r| self.rule(r).action) {
            Some(Action::Allow) => Verdict::Allow,
            _ => Verdict::Deny,
        };
        Decision {
            interface: iface,
            direction,
            verdict,
            rule,
        }
    }

    /// Whether a rule matches a flow, seen from the rule's direction.
    pub fn rule_matches(&self, id: RuleId, flow: &Flow) -> bool {
        let r = self.rule(id);
        let (local, remote) = ends(flow, r.direction);
        r.proto.matches(flow.proto)
            && r.ports.contains_opt(flow.dport)
            && r.source_ports.contains_opt(flow.sport)
            && icmp_matches(r, flow)
            && r.local.is_none_or(|l| l.contains(&local))
            && self.remote_matches(r, remote, flow.zone)
    }
}

fn icmp_matches(r: &Rule, flow: &Flow) -> bool {
    let field = |want: Option<u8>, got: Option<u8>| want.is_none() || want == got;
    field(r.icmp_type, flow.icmp.map(|i| i.0)) && field(r.icmp_code, flow.icmp.map(|i| i.1))
}
