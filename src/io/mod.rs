//! Input and output: every device frames come from or go to, behind one
//! interface ([`FrameSource`], [`FrameSink`], [`frame`]):
//!
//! - [`capture`]: pcap and pcapng files;
//! - [`flowlog`]: AWS VPC Flow Logs read back (records, not frames);
//! - [`tap`]: TAP devices, with io_uring bursts where the kernel allows;
//! - [`afpacket`]: existing interfaces through AF_PACKET (a shared-memory
//!   receive ring, `sendmmsg`);
//! - [`xdp`]: a pair of existing interfaces through AF_XDP (an XDP program
//!   redirects their frames to sockets sharing one UMEM; a frame crosses by
//!   moving its address from one ring to another);
//! - [`udp`]: the GWLB appliance's UDP sockets (GENEVE in, returns out), and
//!   [`waker`] to wake a worker waiting on one.
//!
//! [`sys`] wraps the system calls they make; the `unsafe` of this crate's
//! I/O is there, and where memory is shared with the kernel beyond a call
//! (`tap::uring`, the AF_PACKET ring, the AF_XDP rings and UMEM), and
//! the SSE2 compares that find a flow-log line's spaces (`flowlog::spaces`).

pub mod afpacket;
pub mod capture;
pub mod flowlog;
pub mod frame;
#[allow(unsafe_code)] // the system calls: each wrapped once, safe to call
pub mod sys;
pub mod tap;
pub mod udp;
pub mod waker;
pub mod xdp;

pub use frame::{FrameMeta, FrameSink, FrameSource, Frames, VlanTag, VnetHdr};

use crate::base::Nanos;

/// The clock devices stamp frames with when the kernel gives no time
/// (nanoseconds since the Unix epoch).
fn clock() -> Nanos {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as Nanos)
}
