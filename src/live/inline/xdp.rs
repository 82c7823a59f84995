//! `sgplane run --iface A --iface B` through AF_XDP: one thread takes a
//! burst off a side's RX ring, judges it in place in the UMEM, puts the
//! allowed frames' addresses on the other side's TX ring and the denied
//! ones back on a FILL ring, and goes on with the other side. No frame is
//! copied by sgplane and nothing is allocated per frame; one `sendto` per
//! burst tells the kernel to send (`crate::io::xdp`).

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::worker::WorkerCtx;
use super::{SideCounters, TICK};
use crate::io::sys;
use crate::io::xdp::{Desc, XdpCounters, XdpPair};
use crate::wire::LinkType;

/// Frames taken off an RX ring at a time.
const BATCH_FRAMES: usize = 256;

/// How long to wait for a busy TX ring before kicking it again.
const TX_RETRY: Duration = Duration::from_millis(1);

/// Forwards between the pair's sides until stopped. On failure, says which
/// side failed.
pub(super) fn forward(
    ctx: WorkerCtx,
    mut pair: XdpPair,
    sides: [Arc<SideCounters>; 2],
) -> Result<(), (usize, io::Error)> {
    let mut worker = ctx.start();
    let mut burst: Vec<Desc> = Vec::with_capacity(BATCH_FRAMES);
    let mut valid: Vec<Desc> = Vec::with_capacity(BATCH_FRAMES);
    let mut out: Vec<Desc> = Vec::with_capacity(BATCH_FRAMES);
    let mut last_counters = Instant::now();
    let mut unreadable = 0u64;
    while !worker.ctx.control.should_stop() {
        let mut any = false;
        for side in 0..2 {
            burst.clear();
            if pair.receive(side, BATCH_FRAMES, &mut burst) == 0 {
                continue;
            }
            any = true;
            // A descriptor outside the UMEM (the kernel's fault) is dropped
            // unread, and counted.
            valid.clear();
            for &d in &burst {
                if pair.frame(d).is_some() {
                    valid.push(d);
                } else {
                    unreadable += 1;
                    pair.recycle(d);
                }
            }
            let allowed = worker.judge_frames(valid.iter().map(|&d| {
                (
                    LinkType::Ethernet,
                    pair.frame(d).expect("checked just above"),
                )
            }));
            out.clear();
            let mut next = 0;
            for &i in allowed {
                let i = i as usize;
                for &d in &valid[next..i] {
                    pair.recycle(d);
                }
                out.push(valid[i]);
                next = i + 1;
            }
            for &d in &valid[next..] {
                pair.recycle(d);
            }
            let sent = pair.send(1 - side, &out);
            worker.count_forwarded(sent, out.len() - sent);
        }
        pair.service();
        if !any {
            pair.flush();
            let wait = if pair.needs_wakeup() { TX_RETRY } else { TICK };
            sys::poll_readable(pair.fds(), wait).map_err(|e| (0, e))?;
        }
        if !any || last_counters.elapsed() >= TICK {
            last_counters = Instant::now();
            if let Err(e) = pair.check() {
                worker.ctx.control.stop();
                worker.publish();
                return Err(e);
            }
            publish_counters(
                &mut worker.device_counters,
                &sides,
                pair.counters(),
                unreadable,
            );
        }
        worker.handle(None);
    }
    worker.publish();
    Ok(())
}

/// The sides' counters, where the other modes keep theirs, and AF_XDP's
/// own.
fn publish_counters(
    device: &mut Vec<(&'static str, u64)>,
    sides: &[Arc<SideCounters>; 2],
    c: [XdpCounters; 2],
    unreadable: u64,
) {
    for (s, c) in sides.iter().zip(&c) {
        s.received.store(c.received, Ordering::Relaxed);
        s.dropped_ring_full.store(c.rx_ring_full, Ordering::Relaxed);
    }
    let sum = |f: fn(&XdpCounters) -> u64| c.iter().map(f).sum::<u64>();
    device.clear();
    device.extend([
        ("xdp_fill_ring_empty_total", sum(|c| c.fill_ring_empty)),
        ("xdp_rx_dropped_frames", sum(|c| c.rx_dropped)),
        ("xdp_tx_ring_full_frames", sum(|c| c.tx_ring_full)),
        ("xdp_tx_busy_total", sum(|c| c.tx_busy)),
        (
            "xdp_invalid_descs_total",
            sum(|c| c.invalid_descs) + unreadable,
        ),
    ]);
}
