//! sgplane: a userspace packet-filter data plane with cloud security-group semantics.
//!
//! Layers, with data flowing one way (a lower layer never imports a higher one):
//!
//! - [`policy`]: the TOML policy format, its compiled immutable form, and the
//!   linear reference evaluator that is the oracle for everything faster.
//! - [`wire`]: zero-copy views that parse packets (Ethernet, IP, L4, GENEVE).
//! - [`conntrack`] and [`classify`]: the flow table with the Linux TCP state
//!   machine, and compiled lookup tables for new-flow decisions.
//! - [`engine`]: one packet (or a batch) and a time in, a verdict and its
//!   reason out; no I/O, no clock.
//! - [`io`]: capture files; [`replay`]: `sgplane replay`'s outputs;
//!   [`live`]: `sgplane run` and `sgplane gwlb` (devices, sockets, reload,
//!   metrics); [`export`]: the policy for other systems.
//! - `main.rs`: the command line.
pub mod classify;
pub mod conntrack;
pub mod engine;
pub mod export;
pub mod io;
pub mod live;
pub mod policy;
pub mod replay;
pub mod wire;
