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
//! as it has read it (see `solo`).
//!
//! A reader (one per side) takes frames off its device, a [`FrameSource`]
//! ([`crate::io::tap`]: a burst through io_uring, or one `read` per frame;
//! [`crate::io::afpacket`]: a shared-memory ring, one `poll` per block),
//! hashes their addresses with [`dispatch_hash`] so both directions of a
//! conversation meet the same worker, and hands each worker a batch. A worker
//! judges a batch with [`Engine::process_batch`](crate::engine::Engine::process_batch),
//! sends the allowed frames out of the side they did not come from (a
//! [`FrameSink`]), and gives the emptied batch back to
//! its reader for reuse: in the steady state nothing is allocated and nothing
//! is locked per packet. Once per batch a worker compares the policy
//! generation and swaps in the reloaded rules ([`Control`]); every ~100 ms it
//! publishes its counters; every second it expires idle flows.
//!
//! Frames carry their `virtio_net_hdr` end to end (in their metadata), so
//! checksum offload and TCP segments of up to 64 KiB cross sgplane as they
//! are (a 64 KiB segment is judged, and counted, as one packet).

mod log;
mod worker;
mod xdp;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::channel::{self, Receiver, Sender, TryRecvError, TrySendError};

use super::control::Control;
use super::metrics::{self, Metrics, ServeError};
use super::{dispatch_hash, worker_of};
use crate::io::afpacket::{self, PacketSink, PacketSource};
use crate::io::frame::wait_any;
use crate::io::tap::{Tap, TapSink, TapSource, MAX_FRAME};
use crate::io::xdp::{XdpOptions, XdpPair};
use crate::io::{FrameMeta, FrameSink, FrameSource, Frames};
use crate::output::AggregationInterval;
use crate::wire::{LinkType, ParseOptions};
use worker::WorkerCtx;

/// One side of the bump in the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Port {
    /// A TAP device, created if missing.
    Tap(String),
    /// An existing interface, through AF_PACKET.
    Iface(String),
}

/// How `--iface` sides are read and written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IfaceIo {
    /// AF_XDP where the kernel and driver allow it, else AF_PACKET.
    #[default]
    Auto,
    /// AF_PACKET rings and `sendmmsg`.
    AfPacket,
    /// AF_XDP, or an error saying why not.
    AfXdp,
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
    /// The most records the flow log holds at once (see
    /// [`crate::output::FlowLog::with_max_records`]).
    pub flow_log_max_records: usize,
    /// TAP frames read and written in bursts through io_uring, where the
    /// kernel allows it.
    pub io_uring: bool,
    /// Interfaces: AF_XDP or AF_PACKET.
    pub iface_io: IfaceIo,
    /// What AF_XDP asks of the kernel.
    pub xdp: XdpOptions,
}

/// Why forwarding could not start, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("TAP device {name}")]
    Tap {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("interface {name}")]
    Interface {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("AF_XDP on {names}")]
    Xdp {
        names: String,
        #[source]
        source: io::Error,
    },
    #[error("AF_PACKET receive ring on {name}")]
    Ring {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error("starting the policy watcher")]
    Watch(#[source] io::Error),
    #[error("cannot create {}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("starting a thread")]
    Spawn(#[source] io::Error),
    #[error("reading from {side}")]
    Read {
        side: String,
        #[source]
        source: io::Error,
    },
    #[error("the reader of {side} panicked")]
    ReaderPanicked { side: String },
    #[error("a worker panicked")]
    WorkerPanicked,
    #[error("writing the verdict or flow log")]
    Log(#[source] io::Error),
    #[error("the log writer panicked")]
    LogPanicked,
    #[error(transparent)]
    Io(#[from] io::Error),
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

/// Frames read from one side, all to be judged by one worker.
struct Batch {
    side: usize,
    frames: Frames,
}

impl Batch {
    fn new(side: usize) -> Batch {
        Batch {
            side,
            frames: Frames::with_capacity(BATCH_BYTES + MAX_FRAME, BATCH_FRAMES),
        }
    }

    fn clear(&mut self) {
        self.frames.clear();
    }

    fn full(&self) -> bool {
        self.frames.len() >= BATCH_FRAMES || self.frames.bytes() >= BATCH_BYTES
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

type Source = Box<dyn FrameSource + Send>;
type Sink = Box<dyn FrameSink + Send>;

/// An opened side: its source, and how to make sinks for workers.
struct Side {
    name: String,
    source: Source,
    sink: SinkMaker,
}

/// Each worker sends through sinks of its own.
enum SinkMaker {
    /// The device, and whether to use io_uring with it.
    Tap(Arc<Tap>, bool),
    Packet(u32),
}

impl SinkMaker {
    fn make(&self) -> io::Result<Sink> {
        Ok(match self {
            SinkMaker::Tap(t, uring) => Box::new(TapSink::new(Arc::clone(t), *uring)),
            SinkMaker::Packet(ifindex) => Box::new(PacketSink::open(*ifindex)?),
        })
    }
}

fn open_side(port: &Port, side: u8, io_uring: bool) -> Result<Side, Error> {
    match port {
        Port::Tap(name) => {
            let tap = Tap::open(name).map_err(|source| Error::Tap {
                name: name.clone(),
                source,
            })?;
            let tap = Arc::new(tap);
            let source = TapSource::new(Arc::clone(&tap), side, io_uring);
            let uring = source.io_uring();
            tracing::info!(tap = tap.name(), io_uring = uring, "TAP device open");
            Ok(Side {
                name: tap.name().to_string(),
                source: Box::new(source),
                sink: SinkMaker::Tap(tap, uring),
            })
        }
        Port::Iface(name) => {
            let ifindex = afpacket::ifindex(name).map_err(|source| Error::Interface {
                name: name.clone(),
                source,
            })?;
            let rx = PacketSource::open(ifindex, side).map_err(|source| Error::Ring {
                name: name.clone(),
                source,
            })?;
            tracing::info!(iface = %name, ifindex, "AF_PACKET ring open");
            Ok(Side {
                name: name.clone(),
                source: Box::new(rx),
                sink: SinkMaker::Packet(ifindex),
            })
        }
    }
}

/// AF_XDP on both interfaces, if they are interfaces and it is wanted:
/// `None` when AF_PACKET is to be used (asked for, or AF_XDP unavailable
/// under `auto`, which says why).
fn open_xdp(opts: &InlineOptions) -> Result<Option<XdpPair>, Error> {
    let [Port::Iface(a), Port::Iface(b)] = &opts.ports else {
        return Ok(None);
    };
    if opts.iface_io == IfaceIo::AfPacket {
        return Ok(None);
    }
    let opened = (|| {
        let ifindexes = [afpacket::ifindex(a)?, afpacket::ifindex(b)?];
        XdpPair::open([a, b], ifindexes, opts.xdp)
    })();
    match opened {
        Ok(pair) => Ok(Some(pair)),
        Err(source) if opts.iface_io == IfaceIo::AfXdp => Err(Error::Xdp {
            names: format!("{a} and {b}"),
            source,
        }),
        Err(e) => {
            eprintln!("sgplane: AF_XDP not used ({e}); AF_PACKET instead");
            Ok(None)
        }
    }
}

/// What every layout has running besides its own threads: the metrics,
/// and the log writer with its input.
type Common = (
    Arc<Metrics>,
    Option<Sender<log::LogBatch>>,
    Option<JoinHandle<io::Result<()>>>,
);

/// What every layout starts: the metrics endpoint, the policy watcher, the
/// verdict and flow log writer.
fn start_common(
    control: &Arc<Control>,
    opts: &InlineOptions,
    workers: usize,
) -> Result<Common, Error> {
    let metrics = Metrics::new(workers, Arc::clone(control), "inline");
    if let Some(addr) = opts.metrics {
        metrics::serve_metrics(addr, Arc::clone(&metrics))?;
    }
    if opts.watch {
        control
            .spawn_watch_thread(Duration::from_secs(1))
            .map_err(Error::Watch)?;
    }
    let (log_tx, logger) = match log::start(opts)? {
        Some((tx, handle)) => (Some(tx), Some(handle)),
        None => (None, None),
    };
    Ok((metrics, log_tx, logger))
}

/// Waits for the log writer, and makes the summary (printed with the
/// error, if there was one).
fn finish(
    metrics: &Metrics,
    logger: Option<JoinHandle<io::Result<()>>>,
    failure: Option<Error>,
) -> Result<String, Error> {
    if let Some(l) = logger {
        match l.join() {
            Ok(r) => r.map_err(Error::Log)?,
            Err(_) => return Err(Error::LogPanicked),
        }
    }
    let summary = metrics::summary(metrics);
    if let Some(e) = failure {
        eprint!("{summary}");
        return Err(e);
    }
    Ok(summary)
}

/// Forwards between two interfaces through AF_XDP: one thread does it all.
fn run_xdp(control: Arc<Control>, opts: InlineOptions, pair: XdpPair) -> Result<String, Error> {
    let names = opts.ports.clone().map(|p| match p {
        Port::Iface(n) | Port::Tap(n) => n,
    });
    let (metrics, log_tx, logger) = start_common(&control, &opts, 1)?;
    let counters: [Arc<SideCounters>; 2] = Default::default();
    let (_idle_tx, input) = channel::bounded::<Batch>(1);
    let (recycle, _) = channel::unbounded::<Batch>();
    let ctx = WorkerCtx {
        id: 0,
        control: Arc::clone(&control),
        metrics: Arc::clone(&metrics),
        input,
        recycle: [recycle.clone(), recycle],
        sinks: None,
        log: log_tx,
        counters: Some(counters.clone()),
    };
    let how = pair.describe();
    let notes = pair.notes();
    let thread = std::thread::Builder::new()
        .name("worker-0".into())
        .spawn(move || xdp::forward(ctx, pair, counters))
        .map_err(Error::Spawn)?;
    eprintln!(
        "sgplane: forwarding between {} and {} through AF_XDP ({how}), one thread; SIGHUP reloads the policy, SIGINT/SIGTERM stops",
        names[0], names[1],
    );
    for n in notes {
        eprintln!("sgplane: note: {n}");
    }
    let failure = match thread.join() {
        Ok(Ok(())) => None,
        Ok(Err((side, source))) => {
            tracing::error!(error = %source, side = %names[side], "stopping: a side failed");
            Some(Error::Read {
                side: names[side].clone(),
                source,
            })
        }
        Err(_) => Some(Error::WorkerPanicked),
    };
    finish(&metrics, logger, failure)
}

/// Forwards frames until stopped; returns the final summary.
pub fn run(control: Arc<Control>, opts: InlineOptions) -> Result<String, Error> {
    if let Some(pair) = open_xdp(&opts)? {
        return run_xdp(control, opts, pair);
    }
    let n = opts.workers.max(1);
    let sides = [
        open_side(&opts.ports[0], 0, opts.io_uring)?,
        open_side(&opts.ports[1], 1, opts.io_uring)?,
    ];
    let names = [sides[0].name.clone(), sides[1].name.clone()];
    let (metrics, log_tx, logger) = start_common(&control, &opts, n)?;

    let counters: [Arc<SideCounters>; 2] = Default::default();
    let mut work_tx = Vec::with_capacity(n);
    let mut contexts = Vec::with_capacity(n);
    let (free_tx, free_rx): (Vec<_>, Vec<_>) =
        (0..2).map(|_| channel::unbounded::<Batch>()).unzip();
    for w in 0..n {
        let (tx, rx) = channel::bounded::<Batch>(QUEUE_BATCHES);
        work_tx.push(tx);
        let sinks = Some([sides[0].sink.make()?, sides[1].sink.make()?]);
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
                })
                .map_err(Error::Spawn)?,
        );
    } else {
        for ctx in contexts {
            let name = format!("worker-{}", ctx.id);
            let handle = std::thread::Builder::new()
                .name(name)
                .spawn(move || {
                    ctx.start().run();
                    Ok(())
                })
                .map_err(Error::Spawn)?;
            workers.push(handle);
        }
        for ((reader, source), name) in feeders.into_iter().zip(sources).zip(&names) {
            readers.push(
                std::thread::Builder::new()
                    .name(format!("reader-{name}"))
                    .spawn(move || reader.run(source))
                    .map_err(Error::Spawn)?,
            );
        }
    }
    let through = match &opts.ports[0] {
        Port::Tap(_) => "TAP devices",
        Port::Iface(_) => "AF_PACKET",
    };
    eprintln!(
        "sgplane: forwarding between {} and {} through {through} with {n} worker{}; SIGHUP reloads the policy, SIGINT/SIGTERM stops",
        names[0],
        names[1],
        if n == 1 { "" } else { "s" }
    );

    let mut failure = None;
    for (i, r) in readers.into_iter().enumerate() {
        match r.join() {
            Ok(Ok(())) => {}
            Ok(Err(source)) => {
                failure = Some(Error::Read {
                    side: names[i].clone(),
                    source,
                })
            }
            Err(_) => {
                failure = Some(Error::ReaderPanicked {
                    side: names[i].clone(),
                })
            }
        }
    }
    for w in workers {
        match w.join() {
            Ok(Ok(())) => {}
            Ok(Err((side, source))) => {
                failure = Some(Error::Read {
                    side: names[side].clone(),
                    source,
                })
            }
            Err(_) => failure = Some(Error::WorkerPanicked),
        }
    }
    finish(&metrics, logger, failure)
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
            if source.wait(TICK)? {
                self.take(&mut **source, 4)?;
            }
            self.flush_all();
        }
        Ok(())
    }

    /// Reads what is waiting, up to `bursts` bursts (ring blocks, or TAP
    /// batches), into the workers' batches; full batches are handed over on
    /// the way.
    fn take(&mut self, source: &mut dyn FrameSource, bursts: usize) -> io::Result<()> {
        let mut truncated = 0;
        source.recv_burst(bursts, &mut |frame, meta| {
            if meta.wire_len as usize > frame.len() {
                truncated += 1;
            } else {
                self.push(frame, meta);
            }
        })?;
        if truncated > 0 {
            self.counters
                .dropped_truncated
                .fetch_add(truncated, Ordering::Relaxed);
        }
        if self.last_stats.elapsed() >= TICK {
            self.last_stats = Instant::now();
            self.counters
                .dropped_ring_full
                .fetch_add(source.take_drops(), Ordering::Relaxed);
        }
        Ok(())
    }

    /// Adds a frame to its worker's batch.
    fn push(&mut self, frame: &[u8], meta: &FrameMeta) {
        let n = self.workers.len();
        let w = if n == 1 {
            0
        } else {
            let link = meta.link.unwrap_or(LinkType::Ethernet);
            worker_of(dispatch_hash(link, frame, ParseOptions::default()), n)
        };
        let side = self.side;
        let free = &self.free;
        let b = self.pending[w].get_or_insert_with(|| take_batch(free, side));
        b.frames.push(frame, meta);
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
    let mut worker = ctx.start();
    let result = (|| {
        while !worker.ctx.control.should_stop() {
            let ready = wait_any([&*sources[0], &*sources[1]], TICK)?;
            let mut any = false;
            for i in 0..2 {
                if !ready[i] {
                    continue;
                }
                any = true;
                readers[i].take(&mut *sources[i], 1).map_err(|e| (i, e))?;
                readers[i].flush_all();
                while let Ok(b) = worker.ctx.input.try_recv() {
                    worker.handle(Some(b));
                }
            }
            if !any {
                worker.handle(None);
            }
        }
        Ok(())
    })();
    if result.is_err() {
        worker.ctx.control.stop();
    }
    worker.publish();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_full_by_frames_or_bytes_and_keeps_its_memory() {
        let mut b = Batch::new(1);
        for (i, len) in [60usize, 1500, 64].into_iter().enumerate() {
            b.frames.push(&vec![i as u8; len], &FrameMeta::default());
        }
        assert_eq!(b.frames.frame(1).len(), 1500);
        assert!(b.frames.frame(2).iter().all(|&x| x == 2));
        assert!(!b.full());
        b.frames.push(&vec![0; BATCH_BYTES], &FrameMeta::default());
        assert!(b.full());
        b.clear();
        assert!(b.frames.is_empty() && b.frames.capacity_bytes() >= BATCH_BYTES);
        while b.frames.len() < BATCH_FRAMES {
            b.frames.push(&[0; 60], &FrameMeta::default());
        }
        assert!(b.full());
    }
}
