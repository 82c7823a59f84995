//! `sgplane replay`: every packet of a capture through the engine, in order,
//! with capture time as the clock; per-packet verdict lines, allowed and
//! denied captures, VPC Flow Log lines, a pcapng annotated with the verdicts
//! (SPEC §10), and a summary (SPEC §3-4). An input
//! that is a VPC Flow Log instead ([`recognise`], by content) has each
//! record judged as a new flow ([`flowlogs`], SPEC §10). With a second
//! policy to compare with, every packet or record is also judged under it
//! and the flows whose verdict changes are listed ([`compare`]).
//!
//! Every packet read gets exactly one verdict: the summary's allowed + denied
//! always equals its packets, also when the capture ends early.

pub mod compare;
mod distinct;
pub mod flowlogs;
mod heavy;
mod judge_memo;
mod report;
mod sinks;
mod summary;

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Instant;

use crate::output::AggregationInterval;
pub use compare::{CompareWith, Compared};
pub use flowlogs::{replay_flow_log, FlowLogReport};
use sinks::Sinks;
use summary::Ahead;
pub use summary::{DeniedFlow, FlowLogSkipped, Report, RuleHit, TopDeniedBound};

use crate::engine::{Engine, Input, Judgement, Ruleset, Staged, StagedBatch, Stager};
use crate::io::capture::{CaptureError, CaptureReader, Format, PacketInfo, RecordInfo};
use crate::io::flowlog::{self, Sniffed};

/// What to write besides the summary.
#[derive(Debug, Default, Clone)]
pub struct Outputs {
    /// Per-packet verdict lines (`-` for stdout); `.csv` means CSV, else JSON lines.
    pub verdicts: Option<PathBuf>,
    pub allowed: Option<PathBuf>,
    pub denied: Option<PathBuf>,
    pub flow_log: Option<PathBuf>,
    /// The flow log's aggregation window.
    pub flow_log_interval: AggregationInterval,
    /// The most records the flow log holds at once (`None`: its default);
    /// the packets of flows past them go to `SKIPDATA` records.
    pub flow_log_max_records: Option<usize>,
    /// The account id written in flow log lines.
    pub account_id: String,
    /// Every packet as pcapng with its verdict in a packet comment.
    pub annotate: Option<PathBuf>,
    /// Also judge every packet (record) under this policy and report the
    /// flows whose verdict changes (`Report::compare`); the other outputs
    /// stay the main policy's.
    pub compare: Option<CompareWith>,
    /// A self-contained HTML report ([`report`]).
    pub report: Option<PathBuf>,
}

/// Why a replay could not run or could not write its outputs.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("cannot read {name}")]
    Open {
        name: String,
        #[source]
        source: CaptureError,
    },
    #[error("cannot create {}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("writing {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot start the capture reader thread")]
    Thread(#[source] io::Error),
    #[error("cannot read {name}")]
    Recognise {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    FlowLogFormat(#[from] crate::io::flowlog::FormatError),
}

/// What an input to replay is, by its content (never its name).
pub enum Recognised<R> {
    /// A pcap or pcapng capture (or something the capture reader will
    /// refuse): the input, the bytes looked at put back.
    Capture(io::Chain<io::Cursor<Vec<u8>>, R>),
    /// A VPC Flow Log, plain, gzip or Parquet.
    FlowLog(flowlog::Reader),
}

/// Tells a capture from a VPC Flow Log (plain text or gzip) by the first
/// bytes and, for text, the first line.
pub fn recognise<R: Read + Send + 'static>(input: R, name: &str) -> Result<Recognised<R>> {
    match flowlog::sniff(input) {
        Ok(Sniffed::FlowLog(r)) => Ok(Recognised::FlowLog(r)),
        Ok(Sniffed::Other(r)) => Ok(Recognised::Capture(r)),
        Ok(Sniffed::BadFormat(e)) => Err(e.into()),
        Err(source) => Err(ReplayError::Recognise {
            name: name.to_string(),
            source,
        }),
    }
}

/// Reads `input` as a flow log in `format` (`--log-format`), whatever its
/// first line: text or gzip (its first line skipped when it is the
/// format's header), or Parquet by its own column names.
pub fn open_flow_log_as<R: Read + Send + 'static>(
    input: R,
    name: &str,
    format: flowlog::Format,
) -> Result<flowlog::Reader> {
    flowlog::open_as(input, format).map_err(|source| ReplayError::Recognise {
        name: name.to_string(),
        source,
    })
}

/// A file that starts with Parquet's magic, read where it lies (Parquet's
/// index is at its end): a Parquet VPC Flow Log, or an error saying why not.
/// `None`: no Parquet (or no file to open: the caller's open says why).
pub fn recognise_parquet_file(path: &Path, name: &str) -> Result<Option<flowlog::Reader>> {
    let Ok(mut f) = File::open(path) else {
        return Ok(None);
    };
    let mut magic = Vec::with_capacity(4);
    let read = (&mut f).take(4).read_to_end(&mut magic);
    if read.is_err() || magic != flowlog::parquet::MAGIC {
        return Ok(None);
    }
    match flowlog::parquet::open_file(f) {
        Ok(Ok(r)) => Ok(Some(r)),
        Ok(Err(e)) => Err(e.into()),
        Err(source) => Err(ReplayError::Recognise {
            name: name.to_string(),
            source,
        }),
    }
}

type Result<T> = std::result::Result<T, ReplayError>;

/// The error of writing `path`.
fn writing(path: &Path) -> impl FnOnce(io::Error) -> ReplayError + '_ {
    move |source| ReplayError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// The error of creating `path`.
fn creating(path: &Path) -> impl FnOnce(io::Error) -> ReplayError + '_ {
    move |source| ReplayError::Create {
        path: path.to_path_buf(),
        source,
    }
}

/// Called every so often with (bytes read, packets) for a progress display.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

fn open_text(path: &Path) -> Result<Box<dyn Write>> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(BufWriter::with_capacity(1 << 20, io::stdout())));
    }
    let f = File::create(path).map_err(creating(path))?;
    Ok(Box::new(BufWriter::with_capacity(1 << 20, f)))
}

/// Replays a capture through `engine`. A capture that ends early still gives
/// a report (with `stopped` set) for everything read before the damage.
///
/// Reading runs on a thread of its own: it fills chunks of whole records
/// while this thread judges the previous ones, in input order. When
/// `interrupt` becomes non-zero (the number of the signal that asked), the
/// replay stops after the chunk it is judging, so every output ends at the
/// same packet boundary; the report then says where (`interrupted`).
pub fn replay<R: Read + Send + 'static>(
    engine: &mut Engine,
    input: R,
    input_name: &str,
    out: &Outputs,
    progress: Option<Progress>,
    interrupt: Option<&AtomicUsize>,
) -> Result<Report> {
    let started = Instant::now();
    let reader = match CaptureReader::new(input) {
        Ok(r) => r,
        Err(source) => {
            return Err(ReplayError::Open {
                name: input_name.to_string(),
                source,
            })
        }
    };
    let format = match reader.format() {
        Format::Pcap { .. } => "pcap",
        Format::PcapNg => "pcapng",
    };
    let mut sinks = Sinks::create(out, &reader, input_name, format, engine.policy())?;
    let mut progress = progress;
    let mut offset: u64 = 0;

    let stager = engine.stager();
    let rules = Arc::clone(stager.rules());
    let ReadThread {
        chunks,
        recycled,
        queued,
        thread: read_thread,
    } = spawn_reader(reader, stager)?;
    let mut inputs = Vec::new();
    let mut next_tick = PROGRESS_EVERY;
    let mut interrupted = None;
    let stopped = loop {
        if let Some(sig) = interrupt
            .map(|i| i.load(Ordering::Relaxed))
            .filter(|&s| s != 0)
        {
            interrupted = Some(sig);
            break None;
        }
        let mut chunk = match chunks.recv_timeout(POLL_INTERRUPT) {
            Ok(c) => {
                queued.fetch_sub(1, Ordering::Relaxed);
                c
            }
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break None,
        };
        offset = chunk.offset;
        judge_chunk(engine, &rules, &chunk, &mut inputs, &mut sinks)?;
        let index = sinks.packets();
        if index >= next_tick {
            next_tick = index + PROGRESS_EVERY;
            if let Some(cb) = progress.as_mut() {
                cb(offset, index);
            }
        }
        if let Err(e) = std::mem::replace(&mut chunk.status, Ok(())) {
            break Some(e);
        }
        // The reader may have stopped already; the chunk is then just freed.
        let _ = recycled.send(chunk);
    };
    // Dropping the channels stops the reader at its next chunk. It is waited
    // for only when it has finished: an interrupted reader may be blocked in
    // a read of a pipe that never ends, and goes with the process.
    drop(chunks);
    drop(recycled);
    if interrupted.is_none() {
        let _ = read_thread.join();
    }
    if let Some(cb) = progress.as_mut() {
        cb(offset, sinks.packets());
    }
    sinks.finish(
        engine,
        started.elapsed(),
        stopped.as_ref().map(stop_note),
        interrupted.map(|sig| (sig as i32, offset)),
    )
}

/// Whole records copied out of the reader's buffer, with the ranges of
/// [`RecordInfo`] pointing into `buf`.
struct Chunk {
    buf: Vec<u8>,
    records: Vec<RecordInfo>,
    /// The packets of `records` that have a known link type, staged.
    staged: StagedBatch,
    /// With `staged`: what the summary computes ahead of each packet's
    /// judgement, one for every packet of `records` (`None` for those of
    /// other link types or not IP); without, empty.
    ahead: Vec<Option<Ahead>>,
    /// Bytes of the capture read up to the end of this chunk.
    offset: u64,
    /// Why reading stopped after these records, if it did.
    status: std::result::Result<(), CaptureError>,
}

impl Default for Chunk {
    fn default() -> Chunk {
        Chunk {
            buf: Vec::new(),
            records: Vec::new(),
            staged: StagedBatch::default(),
            ahead: Vec::new(),
            offset: 0,
            status: Ok(()),
        }
    }
}

impl Chunk {
    /// Takes the records of `batch`, which lie one after another in `buf`.
    /// Copying them keeps the reader's one buffer warm in the cache: a chunk
    /// that took the buffer whole instead left the reader to fill a cold one
    /// each time, and reading then cost more than the copy did.
    fn fill(&mut self, buf: &[u8], batch: &[RecordInfo]) {
        self.buf.clear();
        self.records.clear();
        let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
            return;
        };
        let base = first.raw.0;
        self.buf.extend_from_slice(&buf[base..last.raw.1]);
        let at = |r: (usize, usize)| (r.0 - base, r.1 - base);
        self.records.extend(batch.iter().map(|r| RecordInfo {
            raw: at(r.raw),
            packet: r.packet.map(|p| PacketInfo {
                data: at(p.data),
                ..p
            }),
        }));
    }
}

/// The reading thread and its channels.
struct ReadThread {
    /// Chunks read, in input order.
    chunks: Receiver<Chunk>,
    /// Chunks judged, to be filled again.
    recycled: Sender<Chunk>,
    /// Chunks sent and not yet taken.
    queued: Arc<AtomicUsize>,
    thread: std::thread::JoinHandle<()>,
}

/// Starts the thread that reads the capture into chunks. Chunks come back
/// through the second channel to be filled again, so reading allocates only
/// until as many chunks as are in flight exist.
fn spawn_reader<R: Read + Send + 'static>(
    mut reader: CaptureReader<R>,
    mut stager: Stager,
) -> Result<ReadThread> {
    let (tx, chunks) = mpsc::sync_channel::<Chunk>(IN_FLIGHT);
    let (recycled, back) = mpsc::channel::<Chunk>();
    let queued = Arc::new(AtomicUsize::new(0));
    let waiting = Arc::clone(&queued);
    let thread = std::thread::Builder::new()
        .name("sgplane-read".into())
        .spawn(move || {
            let mut batch = Vec::with_capacity(BATCH);
            let mut spare = Vec::new();
            loop {
                let status = reader.fill_batch(BATCH, &mut batch);
                if batch.is_empty() && status.is_ok() {
                    return;
                }
                let mut c = back.try_recv().unwrap_or_default();
                c.fill(reader.buffer(), &batch);
                let mut inputs = reuse(std::mem::take(&mut spare));
                inputs.extend(c.records.iter().filter_map(|r| input_of(&c.buf, r)));
                // Staging is work taken off the judging thread: worth it
                // only while that thread has chunks waiting (it is the slower
                // one); otherwise it would wait for this one.
                c.ahead.clear();
                if waiting.load(Ordering::Relaxed) >= STAGE_WHEN_QUEUED {
                    stager.stage(&inputs, &mut c.staged);
                    let policy = &stager.rules().policy;
                    let mut staged = c.staged.iter();
                    for r in c.records.iter().filter_map(|r| r.packet) {
                        let s = r.link.and_then(|_| staged.next());
                        c.ahead
                            .push(s.and_then(Staged::packet).map(|p| Ahead::of(p, policy)));
                    }
                } else {
                    c.staged.clear();
                }
                spare = reuse(inputs);
                c.offset = reader.offset();
                c.status = status;
                let last = c.status.is_err();
                waiting.fetch_add(1, Ordering::Relaxed);
                if tx.send(c).is_err() || last {
                    return;
                }
            }
        })
        .map_err(ReplayError::Thread)?;
    Ok(ReadThread {
        chunks,
        recycled,
        queued,
        thread,
    })
}

/// Records read and judged at a time (fewer when the reader's buffer holds
/// fewer): large enough that handing a chunk to the judging thread costs
/// little per packet.
const BATCH: usize = 1024;
/// The reading thread stages a chunk when at least this many wait to be judged.
const STAGE_WHEN_QUEUED: usize = 2;
/// Chunks read ahead of the one being judged.
const IN_FLIGHT: usize = 8;
/// How often a replay waiting for input looks at its interrupt flag.
const POLL_INTERRUPT: std::time::Duration = std::time::Duration::from_millis(50);
/// Packets between progress updates.
const PROGRESS_EVERY: u64 = 65_536;

/// `v` emptied, for inputs of another chunk: its allocation is kept
/// (collecting from a vector into one of the same layout reuses it). The
/// `filter_map` is what lets the items' lifetime change.
#[allow(clippy::unnecessary_filter_map)]
fn reuse<'b>(v: Vec<Input<'_>>) -> Vec<Input<'b>> {
    v.into_iter().filter_map(|_| None).collect()
}

/// The engine's input for a packet record of a link type it can parse.
fn input_of<'a>(buf: &'a [u8], r: &RecordInfo) -> Option<Input<'a>> {
    let p = r.packet?;
    Some(Input {
        link: p.link?,
        data: &buf[p.data.0..p.data.1],
        orig_len: p.orig_len as usize,
        ts: p.ts,
    })
}

/// Judges the packets of a chunk, in order, handing each judgement with its
/// record to `sinks` as it is made. The chunk's `staged` holds the packets
/// of known link types staged by `rules`' stager, or nothing when the chunk
/// was not staged. `scratch` lends its allocation to the chunk's inputs.
fn judge_chunk(
    engine: &mut Engine,
    rules: &Arc<Ruleset>,
    chunk: &Chunk,
    scratch: &mut Vec<Input<'static>>,
    sinks: &mut Sinks,
) -> Result<()> {
    let buf = &chunk.buf[..];
    sinks.chunk(buf, &chunk.records, &chunk.ahead);
    let mut records = chunk.records.iter();
    let mut ahead = chunk.ahead.iter();
    let mut failed = None;
    let mut judged = |j: &Judgement| {
        if failed.is_none() {
            if let Err(e) = sinks.packet(buf, &mut records, &mut ahead, j, &rules.policy) {
                failed = Some(e);
            }
        }
    };
    let mut inputs = reuse(std::mem::take(scratch));
    let mut done = 0;
    for info in &chunk.records {
        let Some(p) = info.packet else { continue };
        match input_of(buf, info) {
            Some(i) => inputs.push(i),
            None => {
                // Keep the order: judge what is queued before this packet.
                judge_inputs(engine, rules, chunk, &mut done, &mut inputs, &mut judged);
                judged(&engine.process_unknown_link(p.orig_len as usize));
            }
        }
    }
    judge_inputs(engine, rules, chunk, &mut done, &mut inputs, &mut judged);
    *scratch = reuse(inputs);
    if let Some(e) = failed {
        return Err(e);
    }
    // Records after the last packet that are not packets.
    for info in records {
        sinks.block(info.resolve(buf).raw)?;
    }
    Ok(())
}

/// Judges `inputs`, the chunk's packets from the `done`-th staged one on,
/// and empties it.
fn judge_inputs(
    engine: &mut Engine,
    rules: &Arc<Ruleset>,
    chunk: &Chunk,
    done: &mut usize,
    inputs: &mut Vec<Input>,
    judged: &mut impl FnMut(&Judgement),
) {
    let n = inputs.len();
    if chunk.staged.is_empty() {
        engine.process_batch_each(inputs, judged);
    } else {
        engine.process_staged(rules, inputs, chunk.staged.slice(*done..*done + n), judged);
    }
    *done += n;
    inputs.clear();
}

fn stop_note(e: &CaptureError) -> (u64, String) {
    (e.offset(), e.to_string())
}
