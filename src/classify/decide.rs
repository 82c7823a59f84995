//! How new flows are decided: the [`Decide`] seam the engine calls, and the
//! linear reference evaluator behind it (the oracle every faster decider,
//! such as [`super::sg::SgClassifier`], must equal).

use crate::policy::{Evaluation, Flow, Policy};

/// Decides new flows under a policy (SPEC §2 steps 3-4).
pub trait Decide: Send + Sync {
    fn decide(&self, policy: &Policy, flow: &Flow) -> Evaluation;

    /// Decides every flow of `flows` into `out` (cleared first), in order:
    /// what `decide` gives one by one. A compiled decider looks the flows
    /// up together (the classifier's batch lookup).
    fn decide_batch(&self, policy: &Policy, flows: &[Flow], out: &mut Vec<Evaluation>) {
        out.clear();
        out.extend(flows.iter().map(|f| self.decide(policy, f)));
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
