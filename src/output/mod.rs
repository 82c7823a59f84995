//! What sgplane writes about the packets it judged, shared by `replay` and
//! the live modes: the per-packet verdict lines (SPEC §4, JSON lines or CSV)
//! and the VPC Flow Logs version 2 records, aggregated per window; and the
//! packets themselves as pcapng with each verdict in a packet comment.

mod annotate;
mod flowlog;
mod verdicts;

pub use annotate::{comment, AnnotatedCapture};
pub use flowlog::{AggregationInterval, FlowLog};
pub use verdicts::{VerdictFormat, VerdictWriter};
