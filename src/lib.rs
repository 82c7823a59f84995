//! sgplane: a userspace packet-filter data plane with cloud security-group semantics.
//!
//! Layers, with data flowing one way (a lower layer never imports a higher one):
//!
//! - [`policy`]: the TOML policy format, its compiled immutable form, and the
//!   linear reference evaluator that is the oracle for everything faster.
//! - [`wire`]: zero-copy views that parse packets (Ethernet, IP, L4, GENEVE).
//! - [`classify`]: compiled lookup tables for new-flow decisions.
pub mod classify;
pub mod conntrack;
pub mod engine;
pub mod io;
pub mod policy;
pub mod replay;
pub mod wire;
