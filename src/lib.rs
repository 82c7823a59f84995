//! sgplane: a userspace packet-filter data plane with cloud security-group semantics.
//!
//! Layers, lowest first. Data flows one way: a module imports only from the
//! layers above it in this list (and from itself); modules on one line are
//! peers and import nothing from each other. `tests/layers.rs` reads this
//! list and checks every `crate::` path in `src/` against it.
//!
//! 1. [`base`]: the shared vocabulary (protocol numbers, directions,
//!    verdicts and reasons, GWLB zones, time).
//! 2. [`wire`]: zero-copy views that parse and emit packets (Ethernet, IP,
//!    L4, GENEVE).
//! 3. [`conntrack`]: the flow table with the Linux TCP state machine, its
//!    timeouts and capacity.
//! 4. [`policy`]: the policy model, its TOML loader and checks, the compiled
//!    immutable form, and the linear reference evaluator that is the oracle
//!    for everything faster.
//! 5. [`classify`]: compiled lookup tables for new-flow decisions.
//! 6. [`engine`]: one packet (or a batch) and a time in, a verdict and its
//!    reason out; no I/O, no clock.
//! 7. [`io`]: capture files and VPC Flow Logs, TAP devices, AF_PACKET and the GWLB UDP
//!    sockets, behind one frame source and sink interface.
//! 8. [`output`]: verdict lines and flow logs, for replay and live modes.
//! 9. [`import`], [`path`]: the clouds' JSON (and Terraform's) read into a
//!    policy, and a policy written back as TOML; whole-path reachability
//!    through groups, ACLs, routes, load balancers and PrivateLink, with
//!    checked fixes.
//! 10. [`replay`], [`live`], [`export`]: `sgplane replay`; `sgplane run`
//!     and `sgplane gwlb` (devices, sockets, reload, metrics); the policy
//!     for other systems.
//!
//! `main.rs`, the command line, sits on top and may use any of them.
//!
//! `unsafe` is denied but where a module says why it needs it: the system
//! calls and the memory shared with the kernel in [`io`] (and SSE2 byte
//! compares of flow-log lines), the AVX2 lookups in [`classify`], a
//! prefetch and `madvise` in [`conntrack`], and the one function that
//! asks for a cache line ahead of a read, [`base::prefetch`] (replay's
//! flow-log judgement memo and denied-flow counters).
// The modules' documentation walks through their private stages and parts
// by name; `cargo doc --document-private-items` makes those links.
#![allow(rustdoc::private_intra_doc_links)]
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod base;
pub mod classify;
pub mod conntrack;
pub mod engine;
pub mod export;
pub mod import;
pub mod io;
pub mod live;
pub mod output;
pub mod path;
pub mod policy;
pub mod replay;
pub mod wire;
