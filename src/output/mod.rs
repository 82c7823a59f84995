//! What sgplane writes about the packets it judged, shared by `replay` and
//! the live modes: the per-packet verdict lines (SPEC §4, JSON lines, CSV or
//! Parquet) and the VPC Flow Logs version 2 records, aggregated per window; and the
//! packets themselves as pcapng with each verdict in a packet comment.

mod annotate;
mod flowlog;
#[cfg(test)]
pub(crate) use flowlog::tests as flowlog_tests;
mod verdicts;
mod verdicts_parquet;

pub use annotate::{comment, AnnotatedCapture};
pub use flowlog::{AggregationInterval, FlowLog, DEFAULT_MAX_RECORDS};
pub use verdicts::{VerdictFormat, VerdictWriter};
