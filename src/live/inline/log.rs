//! Per-packet verdict lines and flow log records of `sgplane run`, written
//! by a thread of their own so the workers never wait on a file.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam::channel::{self, Receiver, Sender};

use super::{Error, InlineOptions, TICK};
use crate::engine::{Judgement, Ruleset};
use crate::live::control;
use crate::output::{AggregationInterval, FlowLog, VerdictFormat, VerdictWriter};

/// The account id written in flow log lines (as `replay`'s default).
const ACCOUNT_ID: &str = "123456789012";

/// What a worker judged in one batch.
pub(super) struct LogBatch {
    pub rules: Arc<Ruleset>,
    pub ts: u64,
    /// Each judgement with the frame's length.
    pub items: Vec<(Judgement, u32)>,
}

/// Where workers send log records, and the thread that writes them.
pub(super) type LogThread = (Sender<LogBatch>, JoinHandle<io::Result<()>>);

/// Starts the thread that writes the logs `opts` asks for, if any.
pub(super) fn start(opts: &InlineOptions) -> Result<Option<LogThread>, Error> {
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
    let max_records = opts.flow_log_max_records;
    let (tx, rx) = channel::bounded::<LogBatch>(4096);
    let handle = std::thread::Builder::new()
        .name("log".into())
        .spawn(move || write_logs(rx, verdicts, flow_log, interval, max_records))
        .map_err(Error::Spawn)?;
    Ok(Some((tx, handle)))
}

fn open_text(path: &Path) -> Result<Box<dyn Write + Send>, Error> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(BufWriter::with_capacity(1 << 16, io::stdout())));
    }
    let f = File::create(path).map_err(|source| Error::Create {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(Box::new(BufWriter::with_capacity(1 << 16, f)))
}

fn write_logs(
    rx: Receiver<LogBatch>,
    verdicts: Option<(Box<dyn Write + Send>, VerdictFormat)>,
    flow_log: Option<(Box<dyn Write + Send>, PathBuf)>,
    interval: AggregationInterval,
    max_records: usize,
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
    // Packets counted in SKIPDATA records by the logs let go of.
    let mut skipped = 0u64;
    // One flow log per policy in force: rule and interface ids belong to it.
    let mut logs: Vec<(Arc<Ruleset>, FlowLog)> = Vec::new();
    loop {
        // Windows end by the clock, also when no packet comes.
        let b = match rx.recv_timeout(TICK * 10) {
            Ok(b) => b,
            Err(channel::RecvTimeoutError::Timeout) => {
                if let Some((w, _)) = flow_log.as_mut() {
                    write_ended(&mut logs, w, control::now(), &mut skipped)?;
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
                None => logs.push((
                    Arc::clone(&b.rules),
                    FlowLog::new(interval).with_max_records(max_records),
                )),
            }
        }
        // Windows this batch ends are written before it is counted: their
        // records leave room for its window's.
        if let Some((w, _)) = flow_log.as_mut() {
            write_ended(&mut logs, w, b.ts, &mut skipped)?;
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
    }
    if let Some(v) = verdicts {
        v.finish()?;
    }
    if let Some((mut w, path)) = flow_log {
        for (rules, log) in &mut logs {
            log.write_all(&mut w, ACCOUNT_ID, &rules.policy)?;
            skipped += log.skipped_packets();
        }
        w.flush()?;
        if skipped > 0 {
            eprintln!(
                "sgplane: flow log: {skipped} packets of flows past its {max_records} records held \
                 went to SKIPDATA records (--flow-log-max-records)"
            );
        }
        tracing::info!(file = %path.display(), "flow log written");
    }
    Ok(())
}

/// Writes the flow log windows that ended by `now`, and lets go of the logs
/// of replaced policies once they hold nothing (adding the packets they
/// counted in SKIPDATA records to `skipped`).
fn write_ended(
    logs: &mut Vec<(Arc<Ruleset>, FlowLog)>,
    w: &mut Box<dyn Write + Send>,
    now: u64,
    skipped: &mut u64,
) -> io::Result<()> {
    for (rules, log) in logs.iter_mut() {
        log.advance(now);
        log.write_ended(w, ACCOUNT_ID, &rules.policy)?;
    }
    let current = logs.len().saturating_sub(1);
    let mut i = 0;
    logs.retain(|(_, log)| {
        i += 1;
        let keep = i - 1 == current || !log.is_empty();
        if !keep {
            *skipped += log.skipped_packets();
        }
        keep
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::flowlog_tests::{allowed, POLICY, SEC};
    use crate::policy::Policy;

    fn rules() -> Arc<Ruleset> {
        Arc::new(Ruleset::compile(
            Policy::from_toml(POLICY, "p.toml").unwrap(),
        ))
    }

    /// A batch of one allowed packet (`allowed(sport)`, 100 bytes) at `secs`.
    fn batch(rules: &Arc<Ruleset>, secs: u64, sport: u16) -> LogBatch {
        LogBatch {
            rules: Arc::clone(rules),
            ts: secs * SEC,
            items: vec![(allowed(sport), 100)],
        }
    }

    /// The flow log lines (header left out) the log thread writes for
    /// `batches`, one-minute windows of at most `max_records` records.
    fn flow_log(batches: Vec<LogBatch>, max_records: usize) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flows.txt");
        let (tx, rx) = channel::bounded::<LogBatch>(batches.len().max(1));
        for b in batches {
            tx.send(b).unwrap();
        }
        drop(tx);
        let w = open_text(&path).unwrap();
        let flow_log = Some((w, path.clone()));
        write_logs(
            rx,
            None,
            flow_log,
            AggregationInterval::OneMinute,
            max_records,
        )
        .unwrap();
        let log = std::fs::read_to_string(&path).unwrap();
        log.lines().skip(1).map(str::to_string).collect()
    }

    #[test]
    fn a_replaced_policys_full_log_writes_its_skipdata_records() {
        let (old, new) = (rules(), rules());
        // Two records held: the first flow (at both interfaces); the other
        // two flows of the minute find no room. Then a reload, and a batch
        // two minutes on: the old policy's window ends and its log, written,
        // is let go of.
        let mut batches: Vec<LogBatch> = (1..=3).map(|p| batch(&old, 10, p)).collect();
        batches.push(batch(&new, 130, 9));
        let lines = flow_log(batches, 2);
        assert_eq!(lines.len(), 6, "{lines:#?}");
        assert!(
            lines[0].contains(" 10.0.0.1 10.0.0.2 1 53 17 1 100 10 10 ACCEPT OK"),
            "{lines:#?}"
        );
        assert_eq!(
            lines[2],
            format!("2 {ACCOUNT_ID} eni-a - - - - - - - 10 10 - SKIPDATA")
        );
        assert_eq!(
            lines[3],
            format!("2 {ACCOUNT_ID} eni-b - - - - - - - 10 10 - SKIPDATA")
        );
        assert!(
            lines[4].contains(" 9 53 17 1 100 130 130 ACCEPT OK"),
            "{lines:#?}"
        );
    }

    #[test]
    fn a_batch_past_a_full_window_finds_room_once_it_is_written() {
        let r = rules();
        // Minute 0 is full with its first flow; its second is skipped. The
        // first batch of minute 1 ends minute 0 before it is counted.
        let lines = flow_log(
            vec![batch(&r, 10, 1), batch(&r, 20, 2), batch(&r, 61, 3)],
            2,
        );
        assert_eq!(lines.len(), 6, "{lines:#?}");
        assert_eq!(
            lines[2],
            format!("2 {ACCOUNT_ID} eni-a - - - - - - - 20 20 - SKIPDATA")
        );
        assert_eq!(
            lines[3],
            format!("2 {ACCOUNT_ID} eni-b - - - - - - - 20 20 - SKIPDATA")
        );
        for l in &lines[4..] {
            assert!(l.contains(" 3 53 17 1 100 61 61 ACCEPT OK"), "{lines:#?}");
        }
    }
}
