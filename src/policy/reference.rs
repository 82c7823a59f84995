//! The reference evaluator: SPEC §2 steps 3-4 for one new flow, by a plain
//! linear scan of each interface's rules in decision order. It is meant to be
//! obviously right, not fast: it is the oracle the classifier is tested
//! against, and the engine of `sgplane explain`.
//!
//! An interface in a subnet with groups (an Azure subnet NSG, SPEC §9.2) has
//! two layers, each a policy of its own: entering, the subnet's and then the
//! interface's; leaving, the interface's and then the subnet's. The first
//! layer that denies decides; both must allow.

use super::*;

/// What one interface decided in one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub interface: IfaceId,
    pub direction: Direction,
    /// The interface's own groups or its subnet's.
    pub layer: Layer,
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
    /// The source interface's egress decision (its own groups), when the
    /// source is an interface.
    pub egress: Option<Decision>,
    /// The destination interface's ingress decision (its own groups), when
    /// the destination is one.
    pub ingress: Option<Decision>,
    /// The source's subnet layer on the way out, where its subnet has groups.
    pub subnet_egress: Option<Decision>,
    /// The destination's subnet layer on the way in, where its subnet has
    /// groups.
    pub subnet_ingress: Option<Decision>,
}

/// One end's decisions: its own layer's, and its subnet's where it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndDecision {
    pub interface: Decision,
    pub subnet: Option<Decision>,
}

impl From<Decision> for EndDecision {
    fn from(d: Decision) -> EndDecision {
        EndDecision {
            interface: d,
            subnet: None,
        }
    }
}

impl Evaluation {
    /// SPEC §2 step 3, written once for every decider: both ends that are
    /// interfaces must allow (the source's egress, the destination's
    /// ingress), each with every layer it has (§9.2); the deciding decision
    /// gives the verdict and reason ([`Evaluation::deciding`]); neither end
    /// an interface is `unknown_address`.
    pub fn combine(
        unknown_address: Verdict,
        egress: Option<EndDecision>,
        ingress: Option<EndDecision>,
    ) -> Evaluation {
        let mut e = Evaluation {
            verdict: unknown_address,
            reason: Reason::UnknownAddress,
            egress: egress.map(|d| d.interface),
            ingress: ingress.map(|d| d.interface),
            subnet_egress: egress.and_then(|d| d.subnet),
            subnet_ingress: ingress.and_then(|d| d.subnet),
        };
        if let Some(d) = e.deciding().copied() {
            e.verdict = d.verdict;
            e.reason = d.reason();
        }
        e
    }

    /// The decision an output line names: the first that denies, in the
    /// order the packet meets them ([`Evaluation::decisions`]); if all
    /// allow, the destination interface's own ingress one (the rule that
    /// let the flow in, as without layers), else the source's own egress.
    pub fn deciding(&self) -> Option<&Decision> {
        self.decisions()
            .find(|d| d.verdict == Verdict::Deny)
            .or(self.ingress.as_ref())
            .or(self.egress.as_ref())
    }

    /// The deciding rule, if any.
    pub fn rule(&self) -> Option<RuleId> {
        self.deciding().and_then(|d| d.rule)
    }

    /// Every decision in the order the packet meets them: the source's own
    /// egress, its subnet's egress, the destination's subnet ingress, its
    /// own ingress (SPEC §9.2).
    pub fn decisions(&self) -> impl Iterator<Item = &Decision> {
        self.egress
            .iter()
            .chain(self.subnet_egress.iter())
            .chain(self.subnet_ingress.iter())
            .chain(self.ingress.iter())
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
        self.judge_ends(flow, |i, d, set, layer| {
            self.decide_set(i, d, layer, self.policy_sets[set as usize].rules(d), flow)
        })
    }

    /// SPEC §2 step 3 for any decider: the interfaces owning the flow's
    /// source and destination (in its zone), the source's egress and the
    /// destination's ingress decided by `decide` (interface, direction,
    /// policy set, layer) for each layer the end has, combined by
    /// [`Evaluation::combine`]. Without subnet layers this costs one
    /// branch per end.
    pub fn judge_ends(
        &self,
        flow: &Flow,
        mut decide: impl FnMut(IfaceId, Direction, u32, Layer) -> Decision,
    ) -> Evaluation {
        let (s, d) = self.ends_of(flow);
        let mut end = |i: IfaceId, dir: Direction| {
            let iface = self.interface(i);
            EndDecision {
                interface: decide(i, dir, iface.policy_set, Layer::Interface),
                subnet: iface
                    .subnet_policy_set
                    .map(|set| decide(i, dir, set, Layer::Subnet)),
            }
        };
        let egress = s.map(|i| end(i, Direction::Egress));
        let ingress = d.map(|i| end(i, Direction::Ingress));
        Evaluation::combine(self.settings.unknown_address, egress, ingress)
    }

    /// The interfaces owning a flow's source and destination, in its zone.
    #[inline]
    pub fn ends_of(&self, flow: &Flow) -> (Option<IfaceId>, Option<IfaceId>) {
        (
            self.interface_of(flow.src, flow.zone),
            self.interface_of(flow.dst, flow.zone),
        )
    }

    /// One interface's own policy in one direction: the first matching
    /// rule in decision order, or deny when none matches.
    pub fn decide(&self, iface: IfaceId, direction: Direction, flow: &Flow) -> Decision {
        let rules = self.interface_rules(iface, direction);
        self.decide_set(iface, direction, Layer::Interface, rules, flow)
    }

    /// One layer of an interface in one direction (`None` where it does not
    /// have that layer).
    pub fn decide_layer(
        &self,
        iface: IfaceId,
        direction: Direction,
        layer: Layer,
        flow: &Flow,
    ) -> Option<Decision> {
        self.layer_set(iface, layer).map(|set| {
            let rules = self.policy_sets[set as usize].rules(direction);
            self.decide_set(iface, direction, layer, rules, flow)
        })
    }

    fn decide_set(
        &self,
        iface: IfaceId,
        direction: Direction,
        layer: Layer,
        rules: &[RuleId],
        flow: &Flow,
    ) -> Decision {
        let rule = rules.iter().copied().find(|&r| self.rule_matches(r, flow));
        let verdict = match rule.map(|r| self.rule(r).action) {
            Some(Action::Allow) => Verdict::Allow,
            _ => Verdict::Deny,
        };
        Decision {
            interface: iface,
            direction,
            layer,
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
