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
#[allow(unsafe_code)] // a prefetch of a record's places (SAFETY there)
mod judge_memo;
mod report;
mod summary;

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Instant;

use crate::output::AnnotatedCapture;
use crate::output::{AggregationInterval, FlowLog, VerdictFormat, VerdictWriter};
pub use compare::{CompareWith, Compared};
pub use flowlogs::{replay_flow_log, FlowLogReport};
use report::CaptureHtml;
use summary::Ahead;
pub use summary::{DeniedFlow, FlowLogSkipped, Report, RuleHit, TopDeniedBound};

use crate::engine::{Engine, Input, Judgement, Ruleset, Staged, StagedBatch, Stager};
use crate::io::capture::{CaptureError, CaptureReader, Format, PacketInfo, RecordInfo};
use crate::io::flowlog::{self, Sniffed};
use crate::policy::Verdict;
use crate::wire::packet::geneve_return;

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

/// A capture file being written with the input's format and link types.
struct CaptureOut {
    path: PathBuf,
    w: BufWriter<File>,
}

impl CaptureOut {
    fn create(path: &Path, preamble: &[u8]) -> Result<CaptureOut> {
        let f = File::create(path).map_err(creating(path))?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        w.write_all(preamble).map_err(writing(path))?;
        Ok(CaptureOut {
            path: path.to_path_buf(),
            w,
        })
    }

    fn write(&mut self, raw: &[u8]) -> Result<()> {
        self.w.write_all(raw).map_err(writing(&self.path))
    }

    fn finish(mut self) -> Result<()> {
        self.w.flush().map_err(writing(&self.path))
    }
}

fn open_text(path: &Path) -> Result<Box<dyn Write>> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(BufWriter::with_capacity(1 << 20, io::stdout())));
    }
    let f = File::create(path).map_err(creating(path))?;
    Ok(Box::new(BufWriter::with_capacity(1 << 20, f)))
}

/// The flow log, its windows written as they end.
struct FlowLogOut {
    log: FlowLog,
    path: PathBuf,
    w: Box<dyn Write>,
    /// False when the verdict lines also go to stdout: the records are then
    /// written after them, all at the end, rather than mixed in.
    stream: bool,
}

impl FlowLogOut {
    fn create(path: &Path, out: &Outputs) -> Result<FlowLogOut> {
        let mut w = open_text(path)?;
        FlowLog::write_header(&mut w).map_err(writing(path))?;
        let stdout = |p: &Option<PathBuf>| p.as_ref().is_some_and(|p| p.as_os_str() == "-");
        Ok(FlowLogOut {
            log: FlowLog::new(out.flow_log_interval).with_max_records(
                out.flow_log_max_records
                    .unwrap_or(crate::output::DEFAULT_MAX_RECORDS),
            ),
            path: path.to_path_buf(),
            w,
            stream: !(stdout(&out.flow_log) && stdout(&out.verdicts)),
        })
    }

    fn write_ended(&mut self, out: &Outputs, engine: &Engine) -> Result<()> {
        if self.stream && self.log.window_ended() {
            self.log
                .write_ended(&mut self.w, &out.account_id, engine.policy())
                .map_err(writing(&self.path))?;
        }
        Ok(())
    }

    /// Writes the records left; says how many packets went to `SKIPDATA`
    /// records, if any did.
    fn finish(mut self, out: &Outputs, engine: &Engine) -> Result<Option<FlowLogSkipped>> {
        self.log
            .write_all(&mut self.w, &out.account_id, engine.policy())
            .map_err(writing(&self.path))?;
        self.w.flush().map_err(writing(&self.path))?;
        let packets = self.log.skipped_packets();
        Ok((packets > 0).then(|| FlowLogSkipped {
            packets,
            max_records: self.log.max_records(),
        }))
    }
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
    let mut verdict_out = match &out.verdicts {
        Some(p) => Some((
            VerdictWriter::new(
                open_text(p)?,
                VerdictFormat::for_path(p),
                reader.nanosecond(),
            )
            .map_err(writing(p))?,
            p.as_path(),
        )),
        None => None,
    };
    let mut allowed_out = out
        .allowed
        .as_deref()
        .map(|p| CaptureOut::create(p, reader.preamble()))
        .transpose()?;
    let mut denied_out = out
        .denied
        .as_deref()
        .map(|p| CaptureOut::create(p, reader.preamble()))
        .transpose()?;
    let mut flow_log = match &out.flow_log {
        Some(p) => Some(FlowLogOut::create(p, out)?),
        None => None,
    };
    let mut annotated = match &out.annotate {
        Some(p) => {
            let f = BufWriter::with_capacity(1 << 20, File::create(p).map_err(creating(p))?);
            Some((AnnotatedCapture::new(f).map_err(writing(p))?, p.as_path()))
        }
        None => None,
    };
    let mut report = Report::new(input_name, format);
    let mut compared = out.compare.as_ref().map(compare::CapturePass::new);
    let mut html = out
        .report
        .as_deref()
        .map(|p| CaptureHtml::create(p, engine.policy()))
        .transpose()?;
    let mut progress = progress;
    let mut index: u64 = 0;
    let mut offset: u64 = 0;

    let stager = engine.stager();
    let ReadThread {
        chunks,
        recycled,
        queued,
        thread: read_thread,
    } = spawn_reader(reader, stager.clone())?;
    let mut judged = Vec::with_capacity(BATCH);
    let mut inputs = Vec::new();
    // An allowed GENEVE record as the appliance returns it (reused).
    let mut returned: Vec<u8> = Vec::new();
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
        let buf = &chunk.buf[..];
        judge_batch(
            engine,
            stager.rules(),
            &chunk,
            &mut judged,
            &mut report,
            &mut inputs,
        );
        if let Some(c) = compared.as_mut() {
            c.judge(buf, &chunk.records);
        }
        report.observe_flows(&chunk.ahead);
        let mut judgements = judged.iter();
        let mut ahead = chunk.ahead.iter();
        for info in &chunk.records {
            let rec = info.resolve(buf);
            let Some(p) = rec.packet else {
                // pcapng section and interface blocks go to both outputs.
                for o in [allowed_out.as_mut(), denied_out.as_mut()]
                    .into_iter()
                    .flatten()
                {
                    o.write(rec.raw)?;
                }
                continue;
            };
            let j = judgements.next().expect("one judgement per packet");
            let a = ahead.next().and_then(Option::as_ref);
            report.observe_ahead(j, p.ts, engine.policy(), a);
            if let Some(c) = compared.as_mut() {
                c.observe(index, p.ts, j, engine.policy());
            }
            if let Some(h) = html.as_mut() {
                h.observe(j, p.ts, engine.policy());
            }
            if let Some((v, path)) = verdict_out.as_mut() {
                v.write(index, p.ts, j, engine.policy())
                    .map_err(writing(path))?;
            }
            if let Some(f) = flow_log.as_mut() {
                // Windows this packet ends are written before it is
                // counted: their records leave room for its window's.
                f.log.advance(p.ts);
                f.write_ended(out, engine)?;
                f.log.observe(j, p.orig_len, p.ts, engine.policy());
            }
            if let Some((a, path)) = annotated.as_mut() {
                a.write(&p, j, engine.policy()).map_err(writing(path))?;
            }
            match (j.verdict, allowed_out.as_mut(), denied_out.as_mut()) {
                (Verdict::Allow, Some(o), _) => match (j.packet.and_then(|p| p.tunnel), p.link) {
                    // An allowed GENEVE packet is written as the appliance returns it.
                    (Some(t), Some(link)) => {
                        let at = p.data.as_ptr() as usize - rec.raw.as_ptr() as usize;
                        returned.clear();
                        returned.extend_from_slice(rec.raw);
                        geneve_return(&mut returned[at..at + p.data.len()], link, &t);
                        o.write(&returned)?;
                    }
                    _ => o.write(rec.raw)?,
                },
                (Verdict::Deny, _, Some(o)) => o.write(rec.raw)?,
                _ => {}
            }
            index += 1;
        }
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
        cb(offset, index);
    }
    if let Some((v, path)) = verdict_out {
        v.finish().map_err(writing(path))?;
    }
    for o in [allowed_out, denied_out].into_iter().flatten() {
        o.finish()?;
    }
    let flow_log_skipped = match flow_log {
        Some(f) => f.finish(out, engine)?,
        None => None,
    };
    if let Some((a, path)) = annotated {
        a.finish().map_err(writing(path))?;
    }
    report.finish(engine, started.elapsed(), stopped.as_ref().map(stop_note));
    report.flow_log_skipped = flow_log_skipped;
    report.compare = compared.map(|c| c.finish(engine.policy()));
    if let Some(signal) = interrupted {
        report.interrupt(signal as i32, offset);
    }
    if let Some(h) = html {
        h.finish(&report, engine)?;
    }
    Ok(report)
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

/// Judges the packets of a chunk, in order, into `out`; the chunk's
/// `staged` holds the packets of known link types staged by `rules`'
/// stager, or nothing when the chunk was not staged. `scratch` lends its
/// allocation to the chunk's inputs.
fn judge_batch(
    engine: &mut Engine,
    rules: &Arc<Ruleset>,
    chunk: &Chunk,
    out: &mut Vec<Judgement>,
    report: &mut Report,
    scratch: &mut Vec<Input<'static>>,
) {
    let (buf, batch, staged) = (&chunk.buf[..], &chunk.records, &chunk.staged);
    out.clear();
    let mut inputs = reuse(std::mem::take(scratch));
    let mut done = 0;
    let mut flush = |engine: &mut Engine, inputs: &mut Vec<Input>, out: &mut Vec<Judgement>| {
        let n = inputs.len();
        if staged.is_empty() {
            engine.process_batch(inputs, out);
        } else {
            engine.process_staged(rules, inputs, staged.slice(done..done + n), out);
        }
        done += n;
        inputs.clear();
    };
    for info in batch {
        let Some(p) = info.packet else { continue };
        match input_of(buf, info) {
            Some(i) => inputs.push(i),
            None => {
                // Keep the order: judge what is queued before this packet.
                flush(engine, &mut inputs, out);
                report.unsupported_link(p.linktype);
                out.push(engine.process_unknown_link(p.orig_len as usize));
            }
        }
    }
    flush(engine, &mut inputs, out);
    *scratch = reuse(inputs);
}

fn stop_note(e: &CaptureError) -> (u64, String) {
    (e.offset(), e.to_string())
}
