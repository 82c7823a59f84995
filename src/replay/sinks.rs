//! Where replay's judged packets go, each as soon as it is judged and in
//! input order: the summary, the comparison with a second policy, the HTML
//! report, verdict lines, the flow log, the annotated capture and the
//! allowed and denied captures.
//!
//! A judgement is used here while it is still in the cache: collecting a
//! chunk's judgements first (144 bytes each) wrote and read back 147 KB a
//! chunk, which pushed the summary's counters out of the judging core's
//! first-level cache.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::slice;
use std::time::Duration;

use super::compare::CapturePass;
use super::report::CaptureHtml;
use super::summary::Ahead;
use super::{compare, creating, open_text, writing, Outputs, Report, Result};
use crate::engine::{Engine, Judgement};
use crate::io::capture::{CaptureReader, RecordInfo};
use crate::output::{AnnotatedCapture, FlowLog, VerdictFormat, VerdictWriter};
use crate::policy::{Policy, Verdict};
use crate::wire::packet::geneve_return;

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

    fn write_ended(&mut self, account_id: &str, policy: &Policy) -> Result<()> {
        if self.stream && self.log.window_ended() {
            self.log
                .write_ended(&mut self.w, account_id, policy)
                .map_err(writing(&self.path))?;
        }
        Ok(())
    }

    /// Writes the records left; says how many packets went to `SKIPDATA`
    /// records, if any did.
    fn finish(
        mut self,
        account_id: &str,
        policy: &Policy,
    ) -> Result<Option<super::FlowLogSkipped>> {
        self.log
            .write_all(&mut self.w, account_id, policy)
            .map_err(writing(&self.path))?;
        self.w.flush().map_err(writing(&self.path))?;
        let packets = self.log.skipped_packets();
        Ok((packets > 0).then(|| super::FlowLogSkipped {
            packets,
            max_records: self.log.max_records(),
        }))
    }
}

/// How many packets ahead the summary's counters for a packet are fetched
/// into the cache: about the time a packet takes to judge and count, in
/// packets, for a second-level-cache load.
const PREFETCH_AHEAD: usize = 4;

/// The summary and every output a replay was asked for.
pub(super) struct Sinks<'o> {
    out: &'o Outputs,
    report: Report,
    compared: Option<CapturePass>,
    html: Option<CaptureHtml>,
    verdicts: Option<(VerdictWriter, &'o Path)>,
    flow_log: Option<FlowLogOut>,
    annotated: Option<(AnnotatedCapture<BufWriter<File>>, &'o Path)>,
    allowed: Option<CaptureOut>,
    denied: Option<CaptureOut>,
    /// An allowed GENEVE record as the appliance returns it (reused).
    returned: Vec<u8>,
    /// Packets passed on so far: the next one's index.
    index: u64,
}

impl<'o> Sinks<'o> {
    /// Opens every output of `out` for a capture read by `reader`.
    pub(super) fn create<R: Read>(
        out: &'o Outputs,
        reader: &CaptureReader<R>,
        input_name: &str,
        format: &str,
        policy: &Policy,
    ) -> Result<Sinks<'o>> {
        let verdicts = match &out.verdicts {
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
        let capture = |p: &Option<PathBuf>| {
            p.as_deref()
                .map(|p| CaptureOut::create(p, reader.preamble()))
                .transpose()
        };
        let allowed = capture(&out.allowed)?;
        let denied = capture(&out.denied)?;
        let flow_log = match &out.flow_log {
            Some(p) => Some(FlowLogOut::create(p, out)?),
            None => None,
        };
        let annotated = match &out.annotate {
            Some(p) => {
                let f = BufWriter::with_capacity(1 << 20, File::create(p).map_err(creating(p))?);
                Some((AnnotatedCapture::new(f).map_err(writing(p))?, p.as_path()))
            }
            None => None,
        };
        Ok(Sinks {
            out,
            report: Report::new(input_name, format),
            compared: out.compare.as_ref().map(compare::CapturePass::new),
            html: out
                .report
                .as_deref()
                .map(|p| CaptureHtml::create(p, policy))
                .transpose()?,
            verdicts,
            flow_log,
            annotated,
            allowed,
            denied,
            returned: Vec::new(),
            index: 0,
        })
    }

    /// Packets passed on so far.
    pub(super) fn packets(&self) -> u64 {
        self.index
    }

    /// What is done for a chunk before its packets are judged: the second
    /// policy judges them, and the flows computed ahead are counted.
    pub(super) fn chunk(&mut self, buf: &[u8], records: &[RecordInfo], ahead: &[Option<Ahead>]) {
        if let Some(c) = self.compared.as_mut() {
            c.judge(buf, records);
        }
        self.report.observe_flows(ahead);
    }

    /// A record that is not a packet (a pcapng section or interface block):
    /// to both captures.
    pub(super) fn block(&mut self, raw: &[u8]) -> Result<()> {
        for o in [self.allowed.as_mut(), self.denied.as_mut()]
            .into_iter()
            .flatten()
        {
            o.write(raw)?;
        }
        Ok(())
    }

    /// Passes on the judgement of the next packet of `records` (a chunk's,
    /// in `buf`), writing the records before it that are not packets;
    /// `ahead` holds what was computed ahead for the chunk's packets, if
    /// anything was.
    #[inline]
    pub(super) fn packet(
        &mut self,
        buf: &[u8],
        records: &mut slice::Iter<RecordInfo>,
        ahead: &mut slice::Iter<Option<Ahead>>,
        j: &Judgement,
        policy: &Policy,
    ) -> Result<()> {
        let (rec, p) = loop {
            let Some(info) = records.next() else {
                debug_assert!(false, "a judgement for every packet record");
                return Ok(());
            };
            let rec = info.resolve(buf);
            match rec.packet {
                Some(p) => break (rec, p),
                None => self.block(rec.raw)?,
            }
        };
        if p.link.is_none() {
            self.report.unsupported_link(p.linktype);
        }
        if let Some(Some(later)) = ahead.as_slice().get(PREFETCH_AHEAD) {
            self.report.prefetch_denied(later);
        }
        let a = ahead.next().and_then(Option::as_ref);
        self.report.observe_ahead(j, p.ts, policy, a);
        if let Some(c) = self.compared.as_mut() {
            c.observe(self.index, p.ts, j, policy);
        }
        if let Some(h) = self.html.as_mut() {
            h.observe(j, p.ts, policy);
        }
        if let Some((v, path)) = self.verdicts.as_mut() {
            v.write(self.index, p.ts, j, policy)
                .map_err(writing(path))?;
        }
        if let Some(f) = self.flow_log.as_mut() {
            // Windows this packet ends are written before it is
            // counted: their records leave room for its window's.
            f.log.advance(p.ts);
            f.write_ended(&self.out.account_id, policy)?;
            f.log.observe(j, p.orig_len, p.ts, policy);
        }
        if let Some((a, path)) = self.annotated.as_mut() {
            a.write(&p, j, policy).map_err(writing(path))?;
        }
        match (j.verdict, self.allowed.as_mut(), self.denied.as_mut()) {
            (Verdict::Allow, Some(o), _) => match (j.packet.and_then(|p| p.tunnel), p.link) {
                // An allowed GENEVE packet is written as the appliance returns it.
                (Some(t), Some(link)) => {
                    let at = p.data.as_ptr() as usize - rec.raw.as_ptr() as usize;
                    self.returned.clear();
                    self.returned.extend_from_slice(rec.raw);
                    geneve_return(&mut self.returned[at..at + p.data.len()], link, &t);
                    o.write(&self.returned)?;
                }
                _ => o.write(rec.raw)?,
            },
            (Verdict::Deny, _, Some(o)) => o.write(rec.raw)?,
            _ => {}
        }
        self.index += 1;
        Ok(())
    }

    /// Flushes every output and completes the summary.
    pub(super) fn finish(
        self,
        engine: &Engine,
        elapsed: Duration,
        stopped: Option<(u64, String)>,
        interrupted: Option<(i32, u64)>,
    ) -> Result<Report> {
        let Sinks {
            out,
            mut report,
            compared,
            html,
            verdicts,
            flow_log,
            annotated,
            allowed,
            denied,
            ..
        } = self;
        if let Some((v, path)) = verdicts {
            v.finish().map_err(writing(path))?;
        }
        for o in [allowed, denied].into_iter().flatten() {
            o.finish()?;
        }
        let flow_log_skipped = match flow_log {
            Some(f) => f.finish(&out.account_id, engine.policy())?,
            None => None,
        };
        if let Some((a, path)) = annotated {
            a.finish().map_err(writing(path))?;
        }
        report.finish(engine, elapsed, stopped);
        report.flow_log_skipped = flow_log_skipped;
        report.compare = compared.map(|c| c.finish(engine.policy()));
        if let Some((signal, offset)) = interrupted {
            report.interrupt(signal, offset);
        }
        if let Some(h) = html {
            h.finish(&report, engine)?;
        }
        Ok(report)
    }
}
