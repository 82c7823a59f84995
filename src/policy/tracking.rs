//! Which flows an interface tracks (SPEC §9.3, AWS "Security group
//! connection tracking"): with `tracking = "aws"`, per interface and IP
//! family, a TCP or UDP flow is *untracked* when the rule that allows it
//! names 0.0.0.0/0 (::/0) and the other direction of the interface's policy
//! has a rule allowing all traffic to or from 0.0.0.0/0 (::/0). ICMP, the
//! interfaces AWS tracks automatically, and `gwlb` mode always track; so do
//! interfaces with `tracking = "always"` (the default).

use super::*;

/// Interface kinds whose flows AWS always tracks (SPEC §9.3).
pub const TRACKED_KINDS: &[&str] = &[
    "load_balancer",
    "vpc_endpoint",
    "gateway_load_balancer_endpoint",
    "nat_gateway",
];

/// Whether one interface tracks a flow, and why (SPEC §9.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tracking {
    /// The interface tracks every flow (`tracking = "always"`, the default).
    Always,
    /// The policy is judged as a GWLB appliance (`sgplane gwlb`).
    GwlbMode,
    /// An interface of this kind is tracked automatically.
    Kind(&'static str),
    /// Only TCP and UDP flows can be untracked (ICMP is always tracked).
    Protocol,
    /// The interface does not allow the flow (nothing to track).
    NotAllowed,
    /// The rule that allows the flow does not name 0.0.0.0/0 (::/0).
    Narrow(RuleId),
    /// The other direction has no rule allowing all traffic to or from
    /// 0.0.0.0/0 (::/0).
    NoAllTraffic(RuleId),
    /// Untracked: `rule` names 0.0.0.0/0 (::/0) and `all_traffic` allows
    /// everything the other way.
    Untracked { rule: RuleId, all_traffic: RuleId },
}

impl Tracking {
    pub fn tracked(&self) -> bool {
        !matches!(self, Tracking::Untracked { .. })
    }

    /// Why, in words.
    pub fn why(&self, policy: &Policy) -> String {
        let name = |r: &RuleId| policy.rule_name(*r);
        match self {
            Tracking::Always => "the interface tracks every flow (tracking = \"always\")".into(),
            Tracking::GwlbMode => "gwlb mode tracks every flow".into(),
            Tracking::Kind(k) => format!("an interface of kind {k} is always tracked"),
            Tracking::Protocol => "only TCP and UDP flows can be untracked".into(),
            Tracking::NotAllowed => "the interface does not allow the flow".into(),
            Tracking::Narrow(r) => format!(
                "{} allows it but does not name 0.0.0.0/0 or ::/0",
                name(r)
            ),
            Tracking::NoAllTraffic(r) => format!(
                "{} names the whole address space but the other direction has no rule allowing all traffic to or from it",
                name(r)
            ),
            Tracking::Untracked { rule, all_traffic } => format!(
                "{} names the whole address space and {} allows all traffic the other way",
                name(rule),
                name(all_traffic)
            ),
        }
    }
}

impl Policy {
    /// Whether `iface` tracks `flow`, which its `direction` policy decided
    /// with `rule` (the allowing rule; `None`: denied).
    pub fn tracking_at(
        &self,
        iface: IfaceId,
        direction: Direction,
        flow: &Flow,
        rule: Option<RuleId>,
    ) -> Tracking {
        if let Some(t) = self.always_tracks(iface, flow) {
            return t;
        }
        let Some(rule) = rule.filter(|&r| self.rule(r).action == Action::Allow) else {
            return Tracking::NotAllowed;
        };
        let v6 = flow.src.is_ipv6();
        if !names_everything(self.rule(rule), v6) {
            return Tracking::Narrow(rule);
        }
        match self.all_traffic_rule(iface, direction.reverse(), v6) {
            Some(all_traffic) => Tracking::Untracked { rule, all_traffic },
            None => Tracking::NoAllTraffic(rule),
        }
    }

    /// Whether `iface` leaves a packet with no entry untracked, the packet
    /// being of a flow either way: one it starts (its allowing `rule` in
    /// `direction`), or the reply of one the other way (this direction has
    /// the all-traffic rule, and the reversed packet is allowed the other
    /// way by a rule naming the whole address space).
    pub fn untracked_either_way(
        &self,
        iface: IfaceId,
        direction: Direction,
        flow: &Flow,
        rule: Option<RuleId>,
    ) -> bool {
        if !self.tracking_at(iface, direction, flow, rule).tracked() {
            return true;
        }
        if self.always_tracks(iface, flow).is_some()
            || self
                .all_traffic_rule(iface, direction, flow.src.is_ipv6())
                .is_none()
        {
            return false;
        }
        let back = flow.reversed();
        let d = self.decide(iface, direction.reverse(), &back);
        let back_rule = d.rule.filter(|_| d.verdict == Verdict::Allow);
        !self
            .tracking_at(iface, direction.reverse(), &back, back_rule)
            .tracked()
    }

    /// The reason `iface` tracks every flow like this one, if there is one
    /// that does not depend on the rules.
    fn always_tracks(&self, iface: IfaceId, flow: &Flow) -> Option<Tracking> {
        let place = &self.interface(iface).place;
        if place.tracking.as_ref().is_none_or(|t| t.value != "aws") {
            return Some(Tracking::Always);
        }
        if self.gwlb_mode() {
            return Some(Tracking::GwlbMode);
        }
        if let Some(k) = place
            .kind
            .as_ref()
            .and_then(|k| TRACKED_KINDS.iter().find(|&&name| name == k.value.as_str()))
        {
            return Some(Tracking::Kind(k));
        }
        if flow.proto != IpProto::TCP && flow.proto != IpProto::UDP {
            return Some(Tracking::Protocol);
        }
        None
    }

    /// A rule of `iface`'s `direction` policy allowing all traffic (every
    /// protocol, every port) to or from 0.0.0.0/0 (`v6`: ::/0).
    pub fn all_traffic_rule(
        &self,
        iface: IfaceId,
        direction: Direction,
        v6: bool,
    ) -> Option<RuleId> {
        self.interface_rules(iface, direction)
            .iter()
            .copied()
            .find(|&r| {
                let rule = self.rule(r);
                rule.action == Action::Allow
                    && rule.proto == ProtoMatch::Any
                    && rule.ports.is_all()
                    && rule.source_ports.is_all()
                    && rule.local.is_none()
                    && rule.icmp_type.is_none()
                    && rule.icmp_code.is_none()
                    && names_everything(rule, v6)
            })
    }
}

/// Whether a rule's remote end names 0.0.0.0/0 (`v6`: ::/0).
fn names_everything(rule: &Rule, v6: bool) -> bool {
    rule.remote.iter().any(|r| match r {
        Remote::Net(n) => n.prefix_len() == 0 && n.addr().is_ipv6() == v6,
        _ => false,
    })
}
