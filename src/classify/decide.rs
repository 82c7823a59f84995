//! How new flows are decided: the [`Decide`] seam the engine calls, and the
//! linear reference evaluator behind it (the oracle every faster decider,
//! such as [`super::sg::SgClassifier`], must equal).

use crate::policy::{Evaluation, Flow, Policy};

/// The decisions of a batch of flows ([`Decide::decide_batch`]): each
/// flow's by its number in `distinct`, where a run of flows with equal
/// decisions has one (a scan's flows all share theirs). Staged on one
/// thread and judged on another, a batch's decisions cross between the
/// cores' caches: 68 bytes a flow before, 4 now.
#[derive(Debug, Clone, Default)]
pub struct Decisions {
    /// The decisions, each differing from the one before.
    pub distinct: Vec<Evaluation>,
    /// Each flow's decision in `distinct`, in flow order.
    pub of_flow: Vec<u32>,
}

impl Decisions {
    pub fn clear(&mut self) {
        self.distinct.clear();
        self.of_flow.clear();
    }

    /// Flows decided.
    pub fn len(&self) -> usize {
        self.of_flow.len()
    }

    pub fn is_empty(&self) -> bool {
        self.of_flow.is_empty()
    }

    /// Appends the next flow's decision.
    pub fn push(&mut self, e: Evaluation) {
        if self.distinct.last() != Some(&e) {
            self.distinct.push(e);
        }
        self.of_flow.push(self.distinct.len() as u32 - 1);
    }

    /// Appends a flow decided as the one before it (there is one).
    pub(crate) fn push_last(&mut self) {
        self.of_flow.push(self.distinct.len() as u32 - 1);
    }

    /// The flows' decisions, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Evaluation> + '_ {
        self.of_flow.iter().map(|&d| &self.distinct[d as usize])
    }
}

/// Decides new flows under a policy (SPEC §2 steps 3-4).
pub trait Decide: Send + Sync {
    fn decide(&self, policy: &Policy, flow: &Flow) -> Evaluation;

    /// Decides every flow of `flows` into `out` (cleared first), in order:
    /// what `decide` gives one by one. A compiled decider looks the flows
    /// up together (the classifier's batch lookup).
    fn decide_batch(&self, policy: &Policy, flows: &[Flow], out: &mut Decisions) {
        out.clear();
        for f in flows {
            out.push(self.decide(policy, f));
        }
    }
}

/// Decides with the linear reference evaluator.
#[derive(Debug, Default, Clone, Copy)]
pub struct Reference;

impl Decide for Reference {
    fn decide(&self, policy: &Policy, flow: &Flow) -> Evaluation {
        policy.evaluate(flow)
    }
}
