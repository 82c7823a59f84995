//! `sgplane replay` of a VPC Flow Log (SPEC §10): every record judged as a
//! new flow under the policy and compared with the action AWS recorded;
//! the summary counts agreements and lists where they differ.
//!
//! A record is not a packet: no conntrack, no table, no time. A record's
//! `ACCEPT` may be the reply direction of a connection allowed the other
//! way (which the groups pass as established, not as a new flow), and its
//! `REJECT` may come from a network ACL or a group the policy does not
//! hold: the summary says so rather than calling either side wrong.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::engine::{Judgement, Ruleset};
use crate::io::flowlog::{Action, Entry, FlowDirection, Reader, Record};
use crate::output::{VerdictFormat, VerdictWriter};
use crate::policy::nacl::AclDecision;
use crate::policy::{Direction, Flow, IfaceId, Policy, Reason, RuleId, Verdict, ZoneId};

use super::judge_memo::JudgeMemo;
use super::report::FlowLogHtml;
use super::{open_text, writing, Outputs, Result};

/// Differing records listed in the summary (all are counted).
pub const LISTED: usize = 20;
/// Malformed lines whose numbers the summary gives.
pub const MALFORMED_LISTED: usize = 10;
/// Deciding judgements whose names are kept while judging.
const RULE_NAMES: usize = 16;
/// Deciding judgements (rule, ACL decision, reason), their names, and how
/// many differing records each decided that `differing_by_rule` does not
/// count yet (counted there when the name is dropped, and at the end).
type RuleNames = Vec<((Option<RuleId>, Option<AclDecision>, Reason), String, u64)>;
/// Records between looks at the interrupt flag.
const CHECK_EVERY: u64 = 4096;
/// Records ahead whose memo places are brought into the cache before they
/// are judged (where the reader has them at hand).
const AHEAD: usize = 8;

/// The judgement of one record and where it was judged.
#[derive(Debug, Clone, Copy)]
pub struct RecordJudgement {
    pub judgement: Judgement,
    /// The record's `interface-id` is an interface of the policy, and the
    /// record was judged there (else by its addresses, like a packet).
    pub at_named_interface: bool,
    /// The zone (VPC space) it was judged in: its interface's, else the
    /// one its addresses give.
    pub zone: Option<ZoneId>,
}

/// Judges a record as a new flow. At an interface the policy names, in the
/// direction `flow-direction` gives (else the one its addresses give): that
/// interface's decision, and the ACL of its subnet in that direction.
/// Otherwise both ends, as for a packet's new flow.
pub fn judge(rules: &Ruleset, r: &Record) -> RecordJudgement {
    let iface = r.interface.and_then(|n| rules.policy.interface_named(n));
    judge_at(rules, iface, r)
}

/// [`judge`] with the record's interface already looked up.
pub fn judge_at(rules: &Ruleset, iface: Option<IfaceId>, r: &Record) -> RecordJudgement {
    let policy = &rules.policy;
    let zone = iface
        .and_then(|i| policy.interface(i).space)
        .or_else(|| policy.zone_of(None, r.src, r.dst));
    let flow = Flow {
        src: r.src,
        dst: r.dst,
        proto: r.proto,
        sport: r.sport,
        dport: r.dport,
        icmp: None,
        zone,
    };
    let e = rules.decider.decide(policy, &flow);
    let acls = policy.evaluate_nacls(&flow);
    let at = iface.and_then(|i| direction_at(policy, i, r, &flow).map(|d| (i, d)));
    let nacl = match at {
        Some((_, Direction::Ingress)) => acls.ingress.filter(|d| d.verdict == Verdict::Deny),
        Some((_, Direction::Egress)) => acls.egress.filter(|d| d.verdict == Verdict::Deny),
        None => acls.denied().copied(),
    };
    let j = |verdict, reason| Judgement {
        verdict,
        reason,
        rule: None,
        decision: None,
        nacl: None,
        packet: None,
    };
    let judgement = if let Some(d) = nacl {
        Judgement {
            nacl: Some(d),
            ..j(Verdict::Deny, Reason::Nacl)
        }
    } else if let Some((i, dir)) = at {
        let d = e
            .decisions()
            .find(|d| d.interface == i && d.direction == dir)
            .copied()
            .unwrap_or_else(|| policy.decide(i, dir, &flow));
        Judgement {
            rule: d.rule,
            decision: Some((i, dir)),
            ..j(d.verdict, d.reason())
        }
    } else {
        Judgement {
            rule: e.rule(),
            decision: e.deciding().map(|d| (d.interface, d.direction)),
            ..j(e.verdict, e.reason)
        }
    };
    RecordJudgement {
        judgement,
        at_named_interface: at.is_some(),
        zone,
    }
}

/// The direction a record went at interface `i`: its `flow-direction`, else
/// ingress if `i` owns the destination, egress if it owns the source.
fn direction_at(policy: &Policy, i: IfaceId, r: &Record, flow: &Flow) -> Option<Direction> {
    match r.direction {
        Some(FlowDirection::Ingress) => Some(Direction::Ingress),
        Some(FlowDirection::Egress) => Some(Direction::Egress),
        None if policy.interface_of(flow.dst, flow.zone) == Some(i) => Some(Direction::Ingress),
        None if policy.interface_of(flow.src, flow.zone) == Some(i) => Some(Direction::Egress),
        None => None,
    }
}

/// The record the other way: its reply.
pub(super) fn reply_of<'a>(r: &Record<'a>) -> Record<'a> {
    Record {
        src: r.dst,
        dst: r.src,
        sport: r.dport,
        dport: r.sport,
        direction: r.direction.map(|d| match d {
            FlowDirection::Ingress => FlowDirection::Egress,
            FlowDirection::Egress => FlowDirection::Ingress,
        }),
        ..*r
    }
}

/// A record whose recorded action differs from sgplane's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    /// 1-based line of the input (of the decompressed text for gzip; the
    /// row for Parquet).
    pub line: u64,
    pub proto: String,
    pub src: String,
    pub dst: String,
    pub sport: Option<u16>,
    pub dport: Option<u16>,
    pub recorded_action: &'static str,
    pub verdict: String,
    pub reason: String,
    /// The deciding security-group or ACL rule; null for `no-rule`.
    pub rule: Option<String>,
    pub interface: Option<String>,
    pub direction: Option<String>,
    /// Recorded ACCEPT, denied as a new flow, and the flow the other way
    /// would be allowed: the record may be a reply of that connection.
    pub reverse_allowed: bool,
}

/// A line that is not a record.
#[derive(Debug, Clone, Serialize)]
pub struct MalformedLine {
    pub line: u64,
    pub why: String,
}

/// Why reading stopped before the end.
#[derive(Debug, Clone, Serialize)]
pub struct StoppedAt {
    /// The last line read.
    pub line: u64,
    pub error: String,
}

/// A flow-log replay's summary. `records` = `judged` + `nodata` +
/// `skipdata` + `malformed`; `judged` = `agreeing` + `differing`.
#[derive(Debug, Clone, Serialize)]
pub struct FlowLogReport {
    pub input: String,
    pub format: &'static str,
    pub gzip: bool,
    /// Read from Parquet (`line` numbers are then row numbers).
    pub parquet: bool,
    /// The fields of the header line; the default's when there is none.
    pub fields: Vec<String>,
    /// Fields of the header that sgplane does not know: read past.
    pub unknown_fields: Vec<String>,
    pub header: bool,
    /// The format was given with `--log-format`.
    pub format_given: bool,
    /// Non-blank lines after the header.
    pub records: u64,
    pub judged: u64,
    pub agreeing: u64,
    pub differing: u64,
    /// Recorded ACCEPT, sgplane denies the flow as new.
    pub recorded_accept_denied: u64,
    /// …of which the flow the other way is allowed (maybe replies).
    pub recorded_accept_denied_reverse_allowed: u64,
    /// Recorded REJECT, sgplane allows.
    pub recorded_reject_allowed: u64,
    /// The first differing records, in input order.
    pub differences: Vec<Difference>,
    /// The rules (or `no-rule`, `nacl …`) deciding the differing records, by count.
    pub differing_by_rule: BTreeMap<String, u64>,
    pub nodata: u64,
    pub skipdata: u64,
    pub malformed: u64,
    pub malformed_lines: Vec<MalformedLine>,
    /// Judged at the interface `interface-id` names (the rest by addresses).
    pub judged_at_interface: u64,
    pub elapsed_secs: f64,
    pub records_per_sec: f64,
    pub stopped: Option<StoppedAt>,
    /// The signal that ended the replay early, if one did.
    pub interrupted: Option<i32>,
    /// With `--compare`: the flows whose verdict the other policy changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compare: Option<super::Compared>,
}

impl FlowLogReport {
    fn new(input: &str, reader: &Reader) -> FlowLogReport {
        FlowLogReport {
            input: input.to_string(),
            format: "vpc-flow-log",
            gzip: reader.gzip(),
            parquet: reader.parquet(),
            fields: reader.format().fields.clone(),
            unknown_fields: (reader.format().unknown_fields().into_iter())
                .map(str::to_string)
                .collect(),
            header: reader.format().header,
            format_given: reader.format().given,
            records: 0,
            judged: 0,
            agreeing: 0,
            differing: 0,
            recorded_accept_denied: 0,
            recorded_accept_denied_reverse_allowed: 0,
            recorded_reject_allowed: 0,
            differences: Vec::new(),
            differing_by_rule: BTreeMap::new(),
            nodata: 0,
            skipdata: 0,
            malformed: 0,
            malformed_lines: Vec::new(),
            judged_at_interface: 0,
            elapsed_secs: 0.0,
            records_per_sec: 0.0,
            stopped: None,
            interrupted: None,
            compare: None,
        }
    }

    fn finish(&mut self, elapsed: Duration) {
        self.elapsed_secs = elapsed.as_secs_f64();
        if self.elapsed_secs > 0.0 {
            self.records_per_sec = self.records as f64 / self.elapsed_secs;
        }
    }

    /// Counts one judged record; a differing one is listed while there is room.
    /// `names`: the names of the rules (or reasons) that decided differing
    /// records lately, kept between calls.
    fn observe(
        &mut self,
        memo: &mut JudgeMemo,
        names: &mut RuleNames,
        line: u64,
        r: &Record,
        rj: &RecordJudgement,
    ) {
        self.judged += 1;
        self.judged_at_interface += u64::from(rj.at_named_interface);
        let j = &rj.judgement;
        let recorded = match r.action {
            Action::Accept => Verdict::Allow,
            Action::Reject => Verdict::Deny,
        };
        if recorded == j.verdict {
            self.agreeing += 1;
            return;
        }
        self.differing += 1;
        let reverse_allowed = r.action == Action::Accept
            && memo.judge(&reply_of(r)).judgement.verdict == Verdict::Allow;
        match r.action {
            Action::Accept => {
                self.recorded_accept_denied += 1;
                self.recorded_accept_denied_reverse_allowed += u64::from(reverse_allowed);
            }
            Action::Reject => self.recorded_reject_allowed += 1,
        }
        let policy = &memo.rules().policy;
        // By the rule's name, or the reason where no rule decided; the
        // names of the last few deciding judgements are kept, so a name is
        // formatted (and allocated) only when new, with their counts, so
        // the map is looked up only when a name is dropped.
        let key = (j.rule, j.nacl, j.reason);
        let name = match names.iter().position(|(k, ..)| *k == key) {
            Some(i) => i,
            None => {
                let mut s = String::new();
                let _ = match (j.nacl, policy.nacls()) {
                    (Some(d), Some(n)) => write!(s, "{}", n.rule_name(&d)),
                    _ => match j.rule {
                        Some(id) => write!(s, "{}", policy.rule_name(id)),
                        None => write!(s, "{}", j.reason),
                    },
                };
                if names.len() == RULE_NAMES {
                    let (_, name, n) = names.remove(0);
                    self.count_differing(name, n);
                }
                names.push((key, s, 0));
                names.len() - 1
            }
        };
        names[name].2 += 1;
        if self.differences.len() < LISTED {
            let (rule, interface, direction) = named(policy, j);
            self.differences.push(Difference {
                line,
                proto: r.proto.to_string(),
                src: r.src.to_string(),
                dst: r.dst.to_string(),
                sport: r.sport,
                dport: r.dport,
                recorded_action: r.action.as_str(),
                verdict: j.verdict.to_string(),
                reason: j.reason.to_string(),
                rule,
                interface,
                direction,
                reverse_allowed,
            });
        }
    }

    /// Counts `n` differing records decided by the rule (or reason) `name`.
    fn count_differing(&mut self, name: String, n: u64) {
        *self.differing_by_rule.entry(name).or_insert(0) += n;
    }

    fn malformed(&mut self, line: u64, why: String) {
        self.malformed += 1;
        if self.malformed_lines.len() < MALFORMED_LISTED {
            self.malformed_lines.push(MalformedLine { line, why });
        }
    }

    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let mut line = |l: String| {
            s.push_str(&l);
            s.push('\n');
        };
        let gz = if self.gzip { "gzip, " } else { "" };
        let how = match (self.header, self.gzip) {
            _ if self.parquet => format!("Parquet, {} columns", self.fields.len()),
            (true, _) if self.format_given => format!(
                "{gz}--log-format of {} fields, its header line skipped",
                self.fields.len()
            ),
            (false, _) if self.format_given => {
                format!(
                    "{gz}--log-format of {} fields, no header",
                    self.fields.len()
                )
            }
            (true, false) => format!("header of {} fields", self.fields.len()),
            (true, true) => format!("gzip, header of {} fields", self.fields.len()),
            (false, false) => "version 2 default, no header".into(),
            (false, true) => "gzip, version 2 default, no header".into(),
        };
        line(format!("input: {} (VPC flow log, {how})", self.input));
        if !self.unknown_fields.is_empty() {
            line(format!(
                "fields not known to sgplane, read past: {}",
                self.unknown_fields.join(", ")
            ));
        }
        let unit = if self.parquet { "row" } else { "line" };
        line(format!(
            "records: {} (judged {}, NODATA {}, SKIPDATA {}, malformed {})",
            self.records, self.judged, self.nodata, self.skipdata, self.malformed
        ));
        line(format!(
            "judged as new flows: {} agree with the recorded action, {} differ \
             ({} at the interface interface-id names, {} by addresses)",
            self.agreeing,
            self.differing,
            self.judged_at_interface,
            self.judged - self.judged_at_interface
        ));
        if self.differing > 0 {
            line(format!(
                "  recorded ACCEPT, sgplane denies: {} ({} whose reverse flow sgplane allows: \
                 possibly replies of connections, which are not new flows)",
                self.recorded_accept_denied, self.recorded_accept_denied_reverse_allowed
            ));
            line(format!(
                "  recorded REJECT, sgplane allows: {} (AWS also rejects by network ACLs and \
                 groups the policy may not hold)",
                self.recorded_reject_allowed
            ));
            line(format!(
                "differing records (first {} of {}):",
                self.differences.len(),
                self.differing
            ));
            for d in &self.differences {
                let port = |p: Option<u16>| p.map(|p| format!(":{p}")).unwrap_or_default();
                let at = match (&d.interface, &d.direction) {
                    (Some(i), Some(dir)) => format!(" at {i} {dir}"),
                    _ => String::new(),
                };
                line(format!(
                    "  {unit} {}: {} {}{} -> {}{} recorded {}, sgplane {} {} {}{at}{}",
                    d.line,
                    d.proto,
                    d.src,
                    port(d.sport),
                    d.dst,
                    port(d.dport),
                    d.recorded_action,
                    d.verdict,
                    d.reason,
                    d.rule.as_deref().unwrap_or("-"),
                    if d.reverse_allowed {
                        " (reverse allowed)"
                    } else {
                        ""
                    }
                ));
            }
            let mut by: Vec<_> = self.differing_by_rule.iter().collect();
            by.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            line("differing records by deciding rule:".into());
            for (rule, n) in by.into_iter().take(LISTED) {
                line(format!("  {n} {rule}"));
            }
        }
        if self.malformed > 0 {
            let at: Vec<String> = self
                .malformed_lines
                .iter()
                .map(|m| format!("{} ({})", m.line, m.why))
                .collect();
            line(format!(
                "malformed {unit}s: {}; first at {unit}s {}",
                self.malformed,
                at.join(", ")
            ));
        }
        line(format!(
            "time: {:.3} s, {:.0} records/s",
            self.elapsed_secs, self.records_per_sec
        ));
        if let Some(st) = &self.stopped {
            line(format!("stopped after line {}: {}", st.line, st.error));
        }
        if let Some(c) = &self.compare {
            s.push('\n');
            s.push_str(&c.to_text());
        }
        s
    }
}

/// The rule, interface and direction a judgement names, as output lines do.
fn named(policy: &Policy, j: &Judgement) -> (Option<String>, Option<String>, Option<String>) {
    match (j.nacl, policy.nacls()) {
        (Some(d), Some(n)) => (
            Some(n.rule_name(&d).to_string()),
            Some(policy.subnet_name(d.subnet).to_string()),
            Some(d.direction.to_string()),
        ),
        _ => (
            j.rule.map(|r| policy.rule_name(r).to_string()),
            j.decision.map(|(i, _)| policy.interface(i).name.clone()),
            j.decision.map(|(_, d)| d.to_string()),
        ),
    }
}

/// Replays a flow log: every record judged and compared, one verdict line
/// per record (NODATA, SKIPDATA and malformed lines have none) when asked.
/// A read error (a damaged gzip stream) ends it with `stopped` set.
pub fn replay_flow_log(
    rules: &Ruleset,
    mut reader: Reader,
    input_name: &str,
    out: &Outputs,
    interrupt: Option<&AtomicUsize>,
) -> Result<FlowLogReport> {
    let started = Instant::now();
    let mut report = FlowLogReport::new(input_name, &reader);
    let mut verdicts = match &out.verdicts {
        Some(p) => Some((
            VerdictWriter::for_records(open_text(p)?, VerdictFormat::for_path(p))
                .map_err(writing(p))?,
            p.as_path(),
        )),
        None => None,
    };
    let mut memo = JudgeMemo::new(rules);
    let mut names = RuleNames::new();
    let mut compared = out.compare.as_ref().map(|c| {
        let unit = if reader.parquet() {
            super::compare::Unit::Rows
        } else {
            super::compare::Unit::Records
        };
        (c.rules(), super::compare::Comparison::new(c.name(), unit))
    });
    let mut html = out
        .report
        .as_deref()
        .map(|p| FlowLogHtml::create(p, &rules.policy))
        .transpose()?;
    let mut index = 0u64;
    let mut last_line = 0;
    loop {
        if report.records % CHECK_EVERY == 0 {
            if let Some(sig) = interrupt
                .map(|i| i.load(Ordering::Relaxed))
                .filter(|&s| s != 0)
            {
                report.interrupted = Some(sig as i32);
                break;
            }
        }
        if let Some((s, d)) = reader.ahead(AHEAD) {
            memo.prefetch(s, d);
        }
        let (line, entry) = match reader.next_record_read() {
            Some((line, r)) => (line, Entry::Record(r)),
            None => match reader.next_entry() {
                Ok(Some(e)) => e,
                Ok(None) => break,
                Err(e) => {
                    report.stopped = Some(StoppedAt {
                        line: last_line,
                        error: e.to_string(),
                    });
                    break;
                }
            },
        };
        last_line = line;
        report.records += 1;
        match entry {
            Entry::Record(r) => {
                let rj = memo.judge(&r);
                report.observe(&mut memo, &mut names, line, &r, &rj);
                if let Some((new, c)) = compared.as_mut() {
                    let nj = judge(new, &r).judgement;
                    c.observe_record(index, line, &r, rj.zone, &rj.judgement, &nj);
                }
                if let Some(h) = html.as_mut() {
                    h.observe(&r, &rj, &rules.policy);
                }
                if let Some((w, path)) = verdicts.as_mut() {
                    w.write_record(index, &r, &rj.judgement, rj.zone, &rules.policy)
                        .map_err(writing(path))?;
                }
                index += 1;
            }
            Entry::NoData => report.nodata += 1,
            Entry::SkipData => report.skipdata += 1,
            Entry::Malformed(m) => report.malformed(line, m.to_string()),
        }
    }
    for (_, name, n) in names {
        report.count_differing(name, n);
    }
    if let Some((w, path)) = verdicts {
        w.finish().map_err(writing(path))?;
    }
    report.finish(started.elapsed());
    report.compare = compared.map(|(new, c)| c.finish(&rules.policy, &new.policy));
    if let Some(h) = html {
        h.finish(&report, &rules.policy)?;
    }
    Ok(report)
}
