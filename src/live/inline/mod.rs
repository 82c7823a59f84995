//! `sgplane run`: inline between two TAP devices or two interfaces, a bump in
//! the wire. A frame that enters one side leaves the other if the engine
//! allows it.
//!
//! Threads and the data path:
//!
//! ```text
//!  side A ──reader A──┐  batches by dispatch_hash   ┌─ worker 0 (Engine: its conntrack shard) ─┐
//!                     ├──── crossbeam channels ─────┤                                          ├─> the other side
//!  side B ──reader B──┘                             └─ worker N-1 ─────────────────────────────┘
//! ```
//!
//! With one worker (`--workers 1`) the reader and worker threads are one
//! thread, which waits on both sides at once and judges each burst as soon
//! as it has read it (see [`solo`]).
//!
//! A reader (one per side) takes frames off its device ([`tap`]: one `read`
//! per frame; [`afpacket`]: a shared-memory ring, one `poll` per block),
//! hashes their addresses with [`dispatch_hash`] so both directions of a
//! conversation meet the same worker, and hands each worker a batch. A worker
//! judges a batch with [`Engine::process_batch`], sends the allowed frames out
//! of the side they did not come from, and gives the emptied batch back to
//! its reader for reuse: in the steady state nothing is allocated and nothing
//! is locked per packet. Once per batch a worker compares the policy
//! generation and swaps in the reloaded rules ([`Control`]); every ~100 ms it
//! publishes its counters; every second it expires idle flows.
//!
//! Frames carry a `virtio_net_hdr` end to end, so checksum offload and TCP
//! segments of up to 64 KiB cross sgplane as they are (a 64 KiB segment is
//! judged, and counted, as one packet).

pub mod afpacket;
pub mod tap;

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use crossbeam::channel::{self, Receiver, Sender, TryRecvError, TrySendError};

use super::control::{self, Control};
use super::metrics::{self, Metrics};
use super::{dispatch_hash, worker_of};
use crate::engine::{Engine, Input, Judgement, Ruleset};
use crate::output::{AggregationInterval, FlowLog, VerdictFormat, VerdictWriter};
use crate::policy::Verdict;
use crate::wire::{LinkType, ParseOptions};
use afpacket::{PacketRx, PacketTx};
use tap::{Burst, Tap, MAX_FRAME, VNET_HDR_LEN};

/// One side of the bump in the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Port {
    /// A TAP device, created if missing.
    Tap(String),
    /// An existing interface, through AF_PACKET.
    Iface(String),
}

/// `sgplane run` options.
#[derive(Debug, Clone)]
pub struct InlineOptions {
    pub ports: [Port; 2],
    /// Worker threads (default: the number of cores).
    pub workers: usize,
    /// Prometheus endpoint.
    pub metrics: Option<SocketAddr>,
    /// Reload the policy when its file changes.
    pub watch: bool,
    /// Per-packet verdict lines, as in replay.
    pub verdicts: Option<PathBuf>,
    /// VPC Flow Log lines, as in replay: each window's records once the
    /// clock passes its end, the rest when stopping.
    pub flow_log: Option<PathBuf>,
    /// The flow log's aggregation window.
    pub flow_log_interval: AggregationInterval,
    /// TAP frames read and written in bursts through io_uring, where the
    /// kernel allows it.
    pub io_uring: bool,
}

/// Frames per batch a reader hands to a worker.
const BATCH_FRAMES: usize = 64;
/// Bytes of frames per batch before it is handed over early.
const BATCH_BYTES: usize = 256 << 10;
/// Batches waiting per worker; past that a reader drops (and counts) frames
/// rather than stall the other workers.
const QUEUE_BATCHES: usize = 256;
/// How long a blocked thread waits before it looks at the stop flag.
const TICK: Duration = Duration::from_millis(100);
/// The account id written in flow log lines (as `replay`'s default).
const ACCOUNT_ID: &str = "123456789012";

/// Frames read from one side, all to be judged by one worker.
struct Batch {
    side: usize,
    /// The frames back to back, each with its virtio header first.
    data: Vec<u8>,
    /// (offset, length) of each frame in `data`, header included.
    frames: Vec<(u32, u32)>,
}

impl Batch {
    fn new(side: usize) -> Batch {
        Batch {
            side,
            data: Vec::with_capacity(BATCH_BYTES + MAX_FRAME),
            frames: Vec::with_capacity(BATCH_FRAMES),
        }
    }

    fn clear(&mut self) {
        self.data.clear();
        self.frames.clear();
    }

    fn full(&self) -> bool {
        self.frames.len() >= BATCH_FRAMES || self.data.len() >= BATCH_BYTES
    }

    fn frame(&self, i: usize) -> &[u8] {
        let (o, l) = self.frames[i];
        &self.data[o as usize..(o + l) as usize]
    }
}

/// Counters of one side that its reader and the workers share (touched once
/// per batch or per drop, never per forwarded packet).
#[derive(Default)]
struct SideCounters {
    received: AtomicU64,
    /// Dropped because the worker's queue was full.
    dropped_queue_full: AtomicU64,
    /// Dropped by the kernel because the receive ring was full (AF_PACKET).
    dropped_ring_full: AtomicU64,
    /// Too long for the receive ring: cannot be forwarded whole.
    dropped_truncated: AtomicU64,
}

/// Where a side's frames come from.
enum Source {
    Tap {
        tap: Arc<Tap>,
        buf: Vec<u8>,
        burst: Option<Box<Burst>>,
    },
    Packet(PacketRx),
}

impl Source {
    /// Waits up to [`TICK`] for frames.
    fn wait(&self) -> io::Result<bool> {
        match self {
            Source::Tap { tap, .. } => tap.wait(TICK.as_millis() as i32),
            Source::Packet(rx) => rx.wait(TICK.as_millis() as i32),
        }
    }

    /// True when frames are known to be waiting without asking the kernel.
    fn ready_now(&self) -> bool {
        match self {
            Source::Tap { .. } => false,
            Source::Packet(rx) => rx.ready(),
        }
    }

    fn raw_fd(&self) -> libc::c_int {
        match self {
            Source::Tap { tap, .. } => tap.raw_fd(),
            Source::Packet(rx) => rx.raw_fd(),
        }
    }
}

/// Where a worker sends frames to one side.
enum Sink {
    Tap {
        tap: Arc<Tap>,
        burst: Option<Box<RefCell<Burst>>>,
    },
    Packet(PacketTx),
}

impl Sink {
    /// Sends frames; returns how many failed.
    fn send(&self, frames: &[&[u8]]) -> usize {
        match self {
            Sink::Tap { burst: Some(b), .. } => b.borrow_mut().write(frames),
            Sink::Tap { tap, burst: None } => {
                frames.iter().filter(|f| tap.send(f).is_err()).count()
            }
            Sink::Packet(p) => p.send_batch(frames),
        }
    }
}

/// An opened side: its source, and how to make sinks for workers.
struct Side {
    name: String,
    source: Source,
    sink: SinkMaker,
}

enum SinkMaker {
    /// The device, and whether to use io_uring with it.
    Tap(Arc<Tap>, bool),
    Packet(u32),
}

impl SinkMaker {
    fn make(&self) -> io::Result<Sink> {
        match self {
            SinkMaker::Tap(t, uring) => Ok(Sink::Tap {
                tap: Arc::clone(t),
                burst: uring
                    .then(|| Burst::new(t).ok().map(|b| Box::new(RefCell::new(b))))
                    .flatten(),
            }),
            SinkMaker::Packet(ifindex) => PacketTx::open(*ifindex).map(Sink::Packet),
        }
    }
}

fn open_side(port: &Port, io_uring: bool) -> anyhow::Result<Side> {
    match port {
        Port::Tap(name) => {
            let tap = Arc::new(Tap::open(name).with_context(|| format!("TAP device {name}"))?);
            let burst = if io_uring {
                Burst::new(&tap)
                    .map(Box::new)
                    .map_err(|e| {
                        tracing::warn!(tap = tap.name(), error = %e, "no io_uring: one system call per frame");
                    })
                    .ok()
            } else {
                None
            };
            tracing::info!(
                tap = tap.name(),
                io_uring = burst.is_some(),
                "TAP device open"
            );
            let uring = burst.is_some();
            Ok(Side {
                name: tap.name().to_string(),
                source: Source::Tap {
                    tap: Arc::clone(&tap),
                    buf: vec![0; MAX_FRAME],
                    burst,
                },
                sink: SinkMaker::Tap(tap, uring),
            })
        }
        Port::Iface(name) => {
            let ifindex = afpacket::ifindex(name).with_context(|| format!("interface {name}"))?;
            let rx = PacketRx::open(ifindex)
                .with_context(|| format!("AF_PACKET receive ring on {name}"))?;
            tracing::info!(iface = %name, ifindex, "AF_PACKET ring open");
            Ok(Side {
                name: name.clone(),
                source: Source::Packet(rx),
                sink: SinkMaker::Packet(ifindex),
            })
        }
    }
}

/// Forwards frames until stopped; returns the final summary.
pub fn run(control: Arc<Control>, opts: InlineOptions) -> anyhow::Result<String> {
    let n = opts.workers.max(1);
    let sides = [
        open_side(&opts.ports[0], opts.io_uring)?,
        open_side(&opts.ports[1], opts.io_uring)?,
    ];
    let names = [sides[0].name.clone(), sides[1].name.clone()];
    let metrics = Metrics::new(n, Arc::clone(&control), "inline");
    if let Some(addr) = opts.metrics {
        metrics::serve_metrics(addr, Arc::clone(&metrics))?;
    }
    if opts.watch {
        control
            .spawn_watch_thread(Duration::from_secs(1))
            .context("starting the policy watcher")?;
    }
    let (log_tx, logger) = match Logger::start(&opts)? {
        Some((tx, handle)) => (Some(tx), Some(handle)),
        None => (None, None),
    };

    let counters: [Arc<SideCounters>; 2] = Default::default();
    let mut work_tx = Vec::with_capacity(n);
    let mut contexts = Vec::with_capacity(n);
    let (free_tx, free_rx): (Vec<_>, Vec<_>) =
        (0..2).map(|_| channel::unbounded::<Batch>()).unzip();
    for w in 0..n {
        let (tx, rx) = channel::bounded::<Batch>(QUEUE_BATCHES);
        work_tx.push(tx);
        let sinks = [sides[0].sink.make()?, sides[1].sink.make()?];
        contexts.push(WorkerCtx {
            id: w,
            control: Arc::clone(&control),
            metrics: Arc::clone(&metrics),
            input: rx,
            recycle: [free_tx[0].clone(), free_tx[1].clone()],
            sinks,
            log: log_tx.clone(),
            counters: w.eq(&0).then(|| counters.clone()),
        });
    }
    drop(log_tx);
    let feeders = [0, 1].map(|i| Reader {
        side: i,
        control: Arc::clone(&control),
        workers: work_tx.clone(),
        free: free_rx[i].clone(),
        pending: (0..n).map(|_| None).collect(),
        counters: Arc::clone(&counters[i]),
        last_stats: Instant::now(),
    });
    let sources = sides.map(|side| side.source);
    drop(work_tx);

    let mut readers: Vec<JoinHandle<io::Result<()>>> = Vec::with_capacity(2);
    let mut workers = Vec::with_capacity(n);
    if n == 1 {
        // One thread does it all (see `solo`); its failure is reported as
        // the failure of the side it names.
        let ctx = contexts.pop().expect("one worker");
        let names = names.clone();
        workers.push(
            std::thread::Builder::new()
                .name("worker-0".into())
                .spawn(move || {
                    if let Err((side, e)) = solo(ctx, feeders, sources) {
                        tracing::error!(error = %e, side = %names[side], "stopping: a side failed");
                        return Err((side, e));
                    }
                    Ok(())
                })?,
        );
    } else {
        for ctx in contexts {
            let name = format!("worker-{}", ctx.id);
            let handle = std::thread::Builder::new().name(name).spawn(move || {
                ctx.run();
                Ok(())
            })?;
            workers.push(handle);
        }
        for ((reader, source), name) in feeders.into_iter().zip(sources).zip(&names) {
            readers.push(
                std::thread::Builder::new()
                    .name(format!("reader-{name}"))
                    .spawn(move || reader.run(source))?,
            );
        }
    }
    eprintln!(
        "sgplane: forwarding between {} and {} with {n} worker{}; SIGHUP reloads the policy, SIGINT/SIGTERM stops",
        names[0],
        names[1],
        if n == 1 { "" } else { "s" }
    );

    let mut failure = None;
    for (i, r) in readers.into_iter().enumerate() {
        match r.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failure = Some(anyhow::anyhow!("reading from {}: {e}", names[i])),
            Err(_) => failure = Some(anyhow::anyhow!("the reader of {} panicked", names[i])),
        }
    }
    for w in workers {
        match w.join() {
            Ok(Ok(())) => {}
            Ok(Err((side, e))) => {
                failure = Some(anyhow::anyhow!("reading from {}: {e}", names[side]))
            }
            Err(_) => failure = Some(anyhow::anyhow!("a worker panicked")),
        }
    }
    if let Some(l) = logger {
        match l.join() {
            Ok(r) => r.context("writing the verdict or flow log")?,
            Err(_) => anyhow::bail!("the log writer panicked"),
        }
    }
    let summary = metrics::summary(&metrics);
    if let Some(e) = failure {
        eprint!("{summary}");
        return Err(e);
    }
    Ok(summary)
}

/// Reads one side and deals its frames out to the workers.
struct Reader {
    side: usize,
    control: Arc<Control>,
    workers: Vec<Sender<Batch>>,
    /// Batches the workers are done with.
    free: Receiver<Batch>,
    /// The batch being filled for each worker.
    pending: Vec<Option<Batch>>,
    counters: Arc<SideCounters>,
    /// When the ring's drop counter was last read.
    last_stats: Instant,
}

impl Reader {
    fn run(mut self, mut source: Source) -> io::Result<()> {
        let result = self.pump(&mut source);
        if let Err(e) = &result {
            tracing::error!(error = %e, "stopping: a side failed");
            self.control.stop();
        }
        result
    }

    fn pump(&mut self, source: &mut Source) -> io::Result<()> {
        while !self.control.should_stop() {
            if source.wait()? {
                self.take(source, 4)?;
            }
            self.flush_all();
        }
        Ok(())
    }

    /// Reads what is waiting, up to `blocks` ring blocks (AF_PACKET) or
    /// `blocks` batches' worth of frames (TAP), into the workers' batches;
    /// full batches are handed over on the way.
    fn take(&mut self, source: &mut Source, blocks: usize) -> io::Result<()> {
        match source {
            Source::Tap { tap, buf, burst } => {
                let mut refused = None;
                if let Some(ring) = burst {
                    for _ in 0..blocks {
                        match ring.read(|frame| {
                            if frame.len() > VNET_HDR_LEN {
                                self.push(frame, None);
                            }
                        }) {
                            Ok(got) if got < tap::BURST => break,
                            Ok(_) => {}
                            // A kernel whose TAP reads through io_uring
                            // cannot be told not to wait.
                            Err(e)
                                if matches!(
                                    e.raw_os_error(),
                                    Some(libc::EOPNOTSUPP | libc::EINVAL)
                                ) =>
                            {
                                refused = Some(e);
                                break;
                            }
                            Err(e) => return Err(e),
                        }
                    }
                } else {
                    for _ in 0..BATCH_FRAMES * blocks {
                        let Some(len) = tap.recv(buf)? else { break };
                        if len > VNET_HDR_LEN {
                            self.push(&buf[..len], None);
                        }
                    }
                }
                if let Some(e) = refused {
                    tracing::warn!(tap = tap.name(), error = %e, "io_uring reads refused: one system call per frame from now on");
                    *burst = None;
                }
            }
            Source::Packet(rx) => {
                for _ in 0..blocks {
                    let mut truncated = 0;
                    let got = rx.drain_block(|f| {
                        if f.truncated {
                            truncated += 1;
                        } else {
                            self.push(f.data, f.vlan);
                        }
                    });
                    if truncated > 0 {
                        self.counters
                            .dropped_truncated
                            .fetch_add(truncated, Ordering::Relaxed);
                    }
                    if got == 0 {
                        break;
                    }
                }
                if self.last_stats.elapsed() >= TICK {
                    self.last_stats = Instant::now();
                    self.counters
                        .dropped_ring_full
                        .fetch_add(rx.take_drops(), Ordering::Relaxed);
                }
            }
        }
        Ok(())
    }

    /// Adds a frame (virtio header first) to its worker's batch, putting back
    /// the VLAN tag the kernel took off.
    fn push(&mut self, frame: &[u8], vlan: Option<(u16, u16)>) {
        let n = self.workers.len();
        let w = if n == 1 {
            0
        } else {
            worker_of(
                dispatch_hash(
                    LinkType::Ethernet,
                    &frame[VNET_HDR_LEN..],
                    ParseOptions::default(),
                ),
                n,
            )
        };
        let side = self.side;
        let free = &self.free;
        let b = self.pending[w].get_or_insert_with(|| take_batch(free, side));
        let start = b.data.len();
        match vlan {
            None => b.data.extend_from_slice(frame),
            Some((tpid, tci)) if frame.len() >= VNET_HDR_LEN + 12 => {
                let (head, rest) = frame.split_at(VNET_HDR_LEN + 12);
                b.data.extend_from_slice(head);
                b.data.extend_from_slice(&tpid.to_be_bytes());
                b.data.extend_from_slice(&tci.to_be_bytes());
                b.data.extend_from_slice(rest);
                // The checksum to fill in moved 4 bytes further.
                let h = &mut b.data[start..];
                if h[tap::vnet::FLAGS] & tap::vnet::F_NEEDS_CSUM != 0 {
                    let cs = u16::from_le_bytes([h[6], h[7]]).wrapping_add(4);
                    h[tap::vnet::CSUM_START].copy_from_slice(&cs.to_le_bytes());
                }
            }
            Some(_) => return,
        }
        b.frames.push((start as u32, (b.data.len() - start) as u32));
        if b.full() {
            self.flush(w);
        }
    }

    fn flush(&mut self, w: usize) {
        let Some(b) = self.pending[w].take() else {
            return;
        };
        let frames = b.frames.len() as u64;
        self.counters.received.fetch_add(frames, Ordering::Relaxed);
        match self.workers[w].try_send(b) {
            Ok(()) => {}
            Err(TrySendError::Full(mut b)) | Err(TrySendError::Disconnected(mut b)) => {
                self.counters
                    .dropped_queue_full
                    .fetch_add(frames, Ordering::Relaxed);
                b.clear();
                self.pending[w] = Some(b);
            }
        }
    }

    fn flush_all(&mut self) {
        for w in 0..self.pending.len() {
            if self.pending[w]
                .as_ref()
                .is_some_and(|b| !b.frames.is_empty())
            {
                self.flush(w);
            }
        }
    }
}

/// With one worker, one thread does everything: it waits on both sides at
/// once, reads one burst (a ring block, or a batch of TAP frames), judges
/// and forwards it, and reads on. No batch changes threads, so no thread
/// wakes another: on a CPU shared with the kernel's own network work (the
/// NAPI thread that fills the ring), every wake-up was a chance to be
/// preempted, and the three threads of the general layout spent their time
/// switching (`benches/inline-vs-kernel.sh` measured 2-3x less forwarded).
/// The batches still go through the worker's channel, but the thread that
/// fills it empties it, so nothing ever waits on it.
/// On failure, says which side failed.
fn solo(
    ctx: WorkerCtx,
    mut readers: [Reader; 2],
    mut sources: [Source; 2],
) -> Result<(), (usize, io::Error)> {
    let mut st = ctx.start();
    let result = (|| {
        while !ctx.control.should_stop() {
            let known = [sources[0].ready_now(), sources[1].ready_now()];
            let timeout = if known.contains(&true) {
                0
            } else {
                TICK.as_millis() as i32
            };
            let polled = tap::poll_any([sources[0].raw_fd(), sources[1].raw_fd()], timeout)
                .map_err(|e| {
                    let side = (0..2)
                        .find(|&i| tap::poll_in(sources[i].raw_fd(), 0).is_err())
                        .unwrap_or(0);
                    (side, e)
                })?;
            let mut any = false;
            for i in 0..2 {
                if !(known[i] || polled[i]) {
                    continue;
                }
                any = true;
                readers[i].take(&mut sources[i], 1).map_err(|e| (i, e))?;
                readers[i].flush_all();
                while let Ok(b) = ctx.input.try_recv() {
                    ctx.handle(&mut st, Some(b));
                }
            }
            if !any {
                ctx.handle(&mut st, None);
            }
        }
        Ok(())
    })();
    if result.is_err() {
        ctx.control.stop();
    }
    ctx.publish(&st.engine, &st.own);
    result
}

fn take_batch(free: &Receiver<Batch>, side: usize) -> Batch {
    match free.try_recv() {
        Ok(mut b) => {
            b.clear();
            b.side = side;
            b
        }
        Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => Batch::new(side),
    }
}

/// What one worker owns.
struct WorkerCtx {
    id: usize,
    control: Arc<Control>,
    metrics: Arc<Metrics>,
    input: Receiver<Batch>,
    /// Where emptied batches go back to, by side.
    recycle: [Sender<Batch>; 2],
    /// How to send to each side.
    sinks: [Sink; 2],
    log: Option<Sender<LogBatch>>,
    /// The sides' shared counters, published by worker 0 only.
    counters: Option<[Arc<SideCounters>; 2]>,
}

/// A worker's own counters.
#[derive(Default)]
struct WorkerCounters {
    forwarded: u64,
    send_errors: u64,
}

/// A worker's engine and scratch space, between batches.
struct WorkerState {
    generation: u64,
    engine: Engine,
    own: WorkerCounters,
    judged: Vec<Judgement>,
    inputs: Vec<Input<'static>>,
    out: Vec<&'static [u8]>,
    last_publish: Instant,
    last_expire: Instant,
}

impl WorkerCtx {
    fn run(self) {
        let mut st = self.start();
        loop {
            let batch = match self.input.recv_timeout(TICK) {
                Ok(b) => Some(b),
                Err(channel::RecvTimeoutError::Timeout) => None,
                Err(channel::RecvTimeoutError::Disconnected) => break,
            };
            self.handle(&mut st, batch);
        }
        self.publish(&st.engine, &st.own);
    }

    fn start(&self) -> WorkerState {
        WorkerState {
            generation: self.control.generation(),
            engine: Engine::new(self.control.rules()),
            own: WorkerCounters::default(),
            judged: Vec::with_capacity(BATCH_FRAMES),
            inputs: Vec::with_capacity(BATCH_FRAMES),
            out: Vec::with_capacity(BATCH_FRAMES),
            last_publish: Instant::now(),
            last_expire: Instant::now(),
        }
    }

    /// Judges and forwards a batch, if any, then does what is due: the new
    /// policy swapped in, counters published, idle flows expired.
    fn handle(&self, st: &mut WorkerState, batch: Option<Batch>) {
        let g = self.control.generation();
        if g != st.generation {
            st.generation = g;
            st.engine.set_rules(self.control.rules());
            tracing::debug!(worker = self.id, generation = g, "new policy in use");
        }
        if let Some(b) = batch {
            let inputs = std::mem::take(&mut st.inputs);
            let out = std::mem::take(&mut st.out);
            let (i, o) = self.judge(&mut st.engine, &b, &mut st.judged, inputs, out, &mut st.own);
            st.inputs = i;
            st.out = o;
            let side = b.side;
            let _ = self.recycle[side].send(b);
        }
        if st.last_publish.elapsed() >= TICK {
            st.last_publish = Instant::now();
            self.publish(&st.engine, &st.own);
        }
        if st.last_expire.elapsed() >= Duration::from_secs(1) {
            st.last_expire = Instant::now();
            st.engine.expire(control::now());
        }
    }

    /// Judges a batch and forwards what is allowed. `inputs` and `out` are
    /// empty vectors lent for the call, so their memory is reused.
    fn judge(
        &self,
        engine: &mut Engine,
        b: &Batch,
        judged: &mut Vec<Judgement>,
        inputs: Vec<Input<'static>>,
        out: Vec<&'static [u8]>,
        own: &mut WorkerCounters,
    ) -> (Vec<Input<'static>>, Vec<&'static [u8]>) {
        let now = control::now();
        let mut inputs = reuse_inputs(inputs);
        let mut out = reuse(out);
        for i in 0..b.frames.len() {
            let data = &b.frame(i)[VNET_HDR_LEN..];
            inputs.push(Input {
                link: LinkType::Ethernet,
                data,
                orig_len: data.len(),
                ts: now,
            });
        }
        judged.clear();
        engine.process_batch(&inputs, judged);
        for (i, j) in judged.iter().enumerate() {
            if j.verdict == Verdict::Allow {
                out.push(b.frame(i));
            }
        }
        let failed = self.sinks[1 - b.side].send(&out);
        own.forwarded += (out.len() - failed) as u64;
        own.send_errors += failed as u64;
        if let Some(log) = &self.log {
            let items = judged
                .iter()
                .zip(&b.frames)
                .map(|(j, &(_, len))| (*j, len - VNET_HDR_LEN as u32))
                .collect();
            let _ = log.send(LogBatch {
                rules: Arc::clone(engine.rules()),
                ts: now,
                items,
            });
        }
        (reuse_inputs(inputs), reuse(out))
    }

    fn publish(&self, engine: &Engine, own: &WorkerCounters) {
        let mut extra = vec![
            ("forwarded_frames", own.forwarded),
            ("send_errors", own.send_errors),
        ];
        if let Some(c) = &self.counters {
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
        self.metrics.publish(self.id, engine, &extra);
    }
}

/// An empty vector of another lifetime with the same memory: lets a worker
/// keep its scratch vectors of borrowed items across batches without
/// allocating. (The in-place `collect` of an empty iterator into an element
/// type of the same size and alignment reuses the allocation.)
fn reuse<'a, 'b, T>(mut v: Vec<&'a T>) -> Vec<&'b T>
where
    T: ?Sized + 'a + 'b,
{
    v.clear();
    v.into_iter()
        .map(|_| -> &'b T { unreachable!("the vector is empty") })
        .collect()
}

/// [`reuse`] for the engine's inputs.
fn reuse_inputs<'b>(mut v: Vec<Input<'_>>) -> Vec<Input<'b>> {
    v.clear();
    v.into_iter()
        .map(|_| -> Input<'b> { unreachable!("the vector is empty") })
        .collect()
}

/// Per-packet verdict lines and flow log records, written by a thread of
/// their own so the workers never wait on a file.
struct LogBatch {
    rules: Arc<Ruleset>,
    ts: u64,
    /// Each judgement with the frame's length.
    items: Vec<(Judgement, u32)>,
}

struct Logger;

/// Where workers send log records, and the thread that writes them.
type LogThread = (Sender<LogBatch>, JoinHandle<io::Result<()>>);

impl Logger {
    fn start(opts: &InlineOptions) -> anyhow::Result<Option<LogThread>> {
        if opts.verdicts.is_none() && opts.flow_log.is_none() {
            return Ok(None);
        }
        let verdicts = match &opts.verdicts {
            Some(p) => Some((open_text(p)?, VerdictFormat::for_path(p))),
            None => None,
        };
        let flow_log = match &opts.flow_log {
            // Created now so a bad path is reported before forwarding starts.
            Some(p) => Some((open_text(p)?, p.clone())),
            None => None,
        };
        let interval = opts.flow_log_interval;
        let (tx, rx) = channel::bounded::<LogBatch>(4096);
        let handle = std::thread::Builder::new()
            .name("log".into())
            .spawn(move || write_logs(rx, verdicts, flow_log, interval))?;
        Ok(Some((tx, handle)))
    }
}

fn open_text(path: &Path) -> anyhow::Result<Box<dyn Write + Send>> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(BufWriter::with_capacity(1 << 16, io::stdout())));
    }
    let f = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(Box::new(BufWriter::with_capacity(1 << 16, f)))
}

fn write_logs(
    rx: Receiver<LogBatch>,
    verdicts: Option<(Box<dyn Write + Send>, VerdictFormat)>,
    flow_log: Option<(Box<dyn Write + Send>, PathBuf)>,
    interval: AggregationInterval,
) -> io::Result<()> {
    let mut verdicts = match verdicts {
        // Microseconds, as the SPEC's example line.
        Some((w, format)) => Some(VerdictWriter::new(w, format, false)?),
        None => None,
    };
    let mut flow_log = match flow_log {
        Some((mut w, path)) => {
            FlowLog::write_header(&mut w)?;
            Some((w, path))
        }
        None => None,
    };
    let mut index = 0u64;
    // One flow log per policy in force: rule and interface ids belong to it.
    let mut logs: Vec<(Arc<Ruleset>, FlowLog)> = Vec::new();
    loop {
        // Windows end by the clock, also when no packet comes.
        let b = match rx.recv_timeout(TICK * 10) {
            Ok(b) => b,
            Err(channel::RecvTimeoutError::Timeout) => {
                if let Some((w, _)) = flow_log.as_mut() {
                    write_ended(&mut logs, w, control::now())?;
                }
                continue;
            }
            Err(channel::RecvTimeoutError::Disconnected) => break,
        };
        let policy = &b.rules.policy;
        if flow_log.is_some() && !logs.last().is_some_and(|(r, _)| Arc::ptr_eq(r, &b.rules)) {
            match logs.iter().position(|(r, _)| Arc::ptr_eq(r, &b.rules)) {
                Some(i) => {
                    let l = logs.remove(i);
                    logs.push(l);
                }
                None => logs.push((Arc::clone(&b.rules), FlowLog::new(interval))),
            }
        }
        for (j, len) in &b.items {
            if let Some(v) = verdicts.as_mut() {
                v.write(index, b.ts, j, policy)?;
            }
            if let Some((_, log)) = logs.last_mut() {
                log.observe(j, *len, b.ts, policy);
            }
            index += 1;
        }
        if let Some((w, _)) = flow_log.as_mut() {
            write_ended(&mut logs, w, b.ts)?;
        }
    }
    if let Some(v) = verdicts {
        v.finish()?;
    }
    if let Some((mut w, path)) = flow_log {
        for (rules, log) in &mut logs {
            log.write_all(&mut w, ACCOUNT_ID, &rules.policy)?;
        }
        w.flush()?;
        tracing::info!(file = %path.display(), "flow log written");
    }
    Ok(())
}

/// Writes the flow log windows that ended by `now`, and lets go of the logs
/// of replaced policies once they hold nothing.
fn write_ended(
    logs: &mut Vec<(Arc<Ruleset>, FlowLog)>,
    w: &mut Box<dyn Write + Send>,
    now: u64,
) -> io::Result<()> {
    for (rules, log) in logs.iter_mut() {
        log.advance(now);
        log.write_ended(w, ACCOUNT_ID, &rules.policy)?;
    }
    let current = logs.len().saturating_sub(1);
    let mut i = 0;
    logs.retain(|(_, log)| {
        i += 1;
        i - 1 == current || !log.is_empty()
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reused_vectors_keep_their_memory() {
        let mut v: Vec<&[u8]> = Vec::with_capacity(64);
        let data = vec![1u8, 2, 3];
        v.push(&data);
        let cap = v.capacity();
        let ptr = v.as_ptr() as usize;
        let w: Vec<&[u8]> = reuse(v);
        assert!(w.is_empty());
        assert_eq!((w.capacity(), w.as_ptr() as usize), (cap, ptr));
    }

    #[test]
    fn a_batch_holds_frames_back_to_back() {
        let mut b = Batch::new(1);
        for (i, len) in [60usize, 1500, 64].into_iter().enumerate() {
            let start = b.data.len();
            b.data.extend(std::iter::repeat_n(i as u8, len));
            b.frames.push((start as u32, len as u32));
        }
        assert_eq!(b.frame(1).len(), 1500);
        assert!(b.frame(2).iter().all(|&x| x == 2));
        assert!(!b.full());
        b.clear();
        assert!(b.frames.is_empty() && b.data.capacity() >= BATCH_BYTES);
    }
}
