//! A worker of `sgplane run`: judges the batches its readers hand it with
//! its own [`Engine`] (its share of the flows), sends the allowed frames out
//! of the side they did not come from, and gives the emptied batches back.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::channel::{self, Receiver, Sender};

use super::log::LogBatch;
use super::{Batch, SideCounters, BATCH_FRAMES, TICK};
use crate::engine::{Engine, Input, Judgement};
use crate::io::FrameSink;
use crate::live::control::{self, Control};
use crate::live::metrics::Metrics;
use crate::policy::Verdict;
use crate::wire::LinkType;

/// What one worker is given.
pub(super) struct WorkerCtx {
    pub id: usize,
    pub control: Arc<Control>,
    pub metrics: Arc<Metrics>,
    pub input: Receiver<Batch>,
    /// Where emptied batches go back to, by side.
    pub recycle: [Sender<Batch>; 2],
    /// How to send to each side (none when the caller sends, AF_XDP).
    pub sinks: Option<[Box<dyn FrameSink + Send>; 2]>,
    pub log: Option<Sender<LogBatch>>,
    /// The sides' shared counters, published by worker 0 only.
    pub counters: Option<[Arc<SideCounters>; 2]>,
}

/// A worker's own counters.
#[derive(Default)]
struct WorkerCounters {
    forwarded: u64,
    send_errors: u64,
}

/// A worker at work: what it was given, its engine and its scratch space.
pub(super) struct Worker {
    pub ctx: WorkerCtx,
    generation: u64,
    engine: Engine,
    own: WorkerCounters,
    judged: Vec<Judgement>,
    inputs: Vec<Input<'static>>,
    /// The frames of the batch being judged that go out.
    allowed: Vec<u32>,
    last_publish: Instant,
    last_expire: Instant,
    /// Counters of the device published with the worker's (AF_XDP).
    pub device_counters: Vec<(&'static str, u64)>,
}

impl WorkerCtx {
    /// The worker, with an engine of the current policy (made on the thread
    /// that will use it).
    pub fn start(self) -> Worker {
        let mut engine = Engine::new(self.control.rules());
        // Live traffic must not be able to pick where its entries lie.
        engine.randomize_conntrack_hash();
        Worker {
            generation: self.control.generation(),
            engine,
            ctx: self,
            own: WorkerCounters::default(),
            judged: Vec::with_capacity(BATCH_FRAMES),
            inputs: Vec::with_capacity(BATCH_FRAMES),
            allowed: Vec::with_capacity(BATCH_FRAMES),
            last_publish: Instant::now(),
            last_expire: Instant::now(),
            device_counters: Vec::new(),
        }
    }
}

impl Worker {
    /// Judges batches until the readers are gone.
    pub fn run(mut self) {
        loop {
            let batch = match self.ctx.input.recv_timeout(TICK) {
                Ok(b) => Some(b),
                Err(channel::RecvTimeoutError::Timeout) => None,
                Err(channel::RecvTimeoutError::Disconnected) => break,
            };
            self.handle(batch);
        }
        self.publish();
    }

    /// Judges and forwards a batch, if any, then does what is due: the new
    /// policy swapped in, counters published, idle flows expired.
    pub fn handle(&mut self, batch: Option<Batch>) {
        let g = self.ctx.control.generation();
        if g != self.generation {
            self.generation = g;
            self.engine.set_rules(self.ctx.control.rules());
            tracing::debug!(worker = self.ctx.id, generation = g, "new policy in use");
        }
        if let Some(b) = batch {
            self.judge(&b);
            let side = b.side;
            let _ = self.ctx.recycle[side].send(b);
        }
        if self.last_publish.elapsed() >= TICK {
            self.last_publish = Instant::now();
            self.publish();
        }
        if self.last_expire.elapsed() >= Duration::from_secs(1) {
            self.last_expire = Instant::now();
            self.engine.expire(control::now());
        }
    }

    /// Judges a batch and forwards what is allowed.
    fn judge(&mut self, b: &Batch) {
        let frames = (0..b.frames.len()).map(|i| {
            let (data, meta) = b.frames.get(i);
            (meta.link.unwrap_or(LinkType::Ethernet), data)
        });
        self.judge_frames(frames);
        let Some(sinks) = &mut self.ctx.sinks else {
            return;
        };
        let sent = sinks[1 - b.side].send_burst(&b.frames, &self.allowed);
        self.own.forwarded += sent as u64;
        self.own.send_errors += (self.allowed.len() - sent) as u64;
    }

    /// Judges frames that came in together (in order), logs their verdicts,
    /// and returns the positions of those allowed.
    pub fn judge_frames<'f>(
        &mut self,
        frames: impl Iterator<Item = (LinkType, &'f [u8])>,
    ) -> &[u32] {
        let now = control::now();
        let mut inputs = reuse_inputs(std::mem::take(&mut self.inputs));
        inputs.extend(frames.map(|(link, data)| Input {
            link,
            data,
            orig_len: data.len(),
            ts: now,
        }));
        self.judged.clear();
        self.engine.process_batch(&inputs, &mut self.judged);
        if let Some(log) = &self.ctx.log {
            let items = self
                .judged
                .iter()
                .zip(&inputs)
                .map(|(j, i)| (*j, i.data.len() as u32))
                .collect();
            let _ = log.send(LogBatch {
                rules: Arc::clone(self.engine.rules()),
                ts: now,
                items,
            });
        }
        self.inputs = reuse_inputs(inputs);
        self.allowed.clear();
        self.allowed.extend(
            self.judged
                .iter()
                .enumerate()
                .filter(|(_, j)| j.verdict == Verdict::Allow)
                .map(|(i, _)| i as u32),
        );
        &self.allowed
    }

    /// Counts frames sent by a device the worker does not own (AF_XDP).
    pub fn count_forwarded(&mut self, sent: usize, failed: usize) {
        self.own.forwarded += sent as u64;
        self.own.send_errors += failed as u64;
    }

    pub fn publish(&self) {
        let mut extra = vec![
            ("forwarded_frames", self.own.forwarded),
            ("send_errors", self.own.send_errors),
        ];
        if let Some(c) = &self.ctx.counters {
            let sum = |f: fn(&SideCounters) -> &AtomicU64| {
                c.iter().map(|s| f(s).load(Ordering::Relaxed)).sum::<u64>()
            };
            extra.push(("received_frames", sum(|s| &s.received)));
            extra.push(("dropped_queue_full_frames", sum(|s| &s.dropped_queue_full)));
            extra.push(("dropped_ring_full_frames", sum(|s| &s.dropped_ring_full)));
            extra.push(("dropped_truncated_frames", sum(|s| &s.dropped_truncated)));
        } else {
            extra.extend([
                ("received_frames", 0),
                ("dropped_queue_full_frames", 0),
                ("dropped_ring_full_frames", 0),
                ("dropped_truncated_frames", 0),
            ]);
        }
        extra.extend_from_slice(&self.device_counters);
        self.ctx.metrics.publish(self.ctx.id, &self.engine, &extra);
    }
}

/// An empty vector of the engine's inputs with the memory of `v`, for inputs
/// of another lifetime: lets a worker keep its scratch vector of borrowed
/// frames across batches without allocating. (The in-place `collect` of an
/// empty iterator into an element type of the same size and alignment
/// reuses the allocation.)
fn reuse_inputs<'b>(mut v: Vec<Input<'_>>) -> Vec<Input<'b>> {
    v.clear();
    v.into_iter()
        .map(|_| -> Input<'b> { unreachable!("the vector is empty") })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reused_vectors_keep_their_memory() {
        let mut v: Vec<Input<'_>> = Vec::with_capacity(64);
        let data = vec![1u8, 2, 3];
        v.push(Input {
            link: LinkType::Ethernet,
            data: &data,
            orig_len: 3,
            ts: 0,
        });
        let cap = v.capacity();
        let ptr = v.as_ptr() as usize;
        let w: Vec<Input<'static>> = reuse_inputs(v);
        assert!(w.is_empty());
        assert_eq!((w.capacity(), w.as_ptr() as usize), (cap, ptr));
    }
}
