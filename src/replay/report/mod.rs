//! `sgplane replay --report FILE.html`: one self-contained HTML page (inline
//! CSS, inline SVG, a few lines of inline script; nothing fetched) with
//! verdicts over capture time by reason, the top denied flows with their
//! error bound, the rules and ACL entries that decided the most, counts per
//! interface, and the policy's security-group reference graph. For a VPC
//! Flow Log, what applies: records over their start time, agreeing and
//! differing, the top differing flows.
//!
//! Memory is bounded whatever the input's length: a [`Timeline`] of a fixed
//! number of buckets (re-bucketed as the span grows), counters per
//! interface and per rule of the policy, and for flow logs Space-Saving
//! counters for the differing flows. Every packet (record) is counted once
//! in the timeline, so its totals equal the summary's.
//!
//! All text from the policy or the input is escaped.

mod chart;
mod graph;
mod html;
pub mod timeline;

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use self::chart::{Panel, Series};
use self::html::{card, clip, esc, note, num, pct, Table};
use self::timeline::{duration, width_words, Timeline, Utc};
use super::flowlogs::{FlowLogReport, RecordJudgement};
use super::heavy::SpaceSaving;
use super::summary::Report;
use super::{creating, writing, Result};
use crate::engine::{Engine, Judgement};
use crate::io::flowlog::{Action as Recorded, Record};
use crate::policy::{Action, Direction, IfaceId, IpProto, Policy, Reason, RuleId, Verdict};

/// Rows listed in the rule and interface tables.
const LISTED: usize = 20;
/// Rows of the top-flow tables.
const TOP_FLOWS: usize = 15;
/// Space-Saving counters behind the top differing flow-log records.
const DIFF_COUNTERS: usize = 1024;

/// A colour per reason a packet can be denied for.
fn reason_color(r: Reason) -> &'static str {
    match r {
        Reason::NoRule => "#d1363a",
        Reason::Rule => "#f28e2b",
        Reason::Nacl => "#8e5fc6",
        Reason::UnknownAddress => "#9c755f",
        Reason::Invalid => "#e377c2",
        Reason::Malformed => "#7f7f7f",
        Reason::NotIp => "#b5b82a",
        Reason::ConntrackFull => "#17becf",
        Reason::Fragment => "#4e79a7",
        Reason::Established => "#59a14f",
        Reason::Related => "#8cd17d",
        Reason::Untracked => "#499894",
        Reason::Arp | Reason::NeighborDiscovery => "#bab0ac",
    }
}

const ALLOW_COLOR: &str = "#2e9d5b";

/// Packets (records) seen at one interface, by direction and verdict.
#[derive(Debug, Clone, Copy, Default)]
struct IfaceCounts {
    in_allowed: u64,
    in_denied: u64,
    out_allowed: u64,
    out_denied: u64,
    /// Denied by this interface's own groups (its decision).
    denied_here: u64,
    /// Flow logs: records whose recorded action sgplane's verdict differs from.
    differ: u64,
}

impl IfaceCounts {
    fn total(&self) -> u64 {
        self.in_allowed + self.in_denied + self.out_allowed + self.out_denied
    }

    fn count(&mut self, dir: Direction, verdict: Verdict) {
        let c = match (dir, verdict) {
            (Direction::Ingress, Verdict::Allow) => &mut self.in_allowed,
            (Direction::Ingress, Verdict::Deny) => &mut self.in_denied,
            (Direction::Egress, Verdict::Allow) => &mut self.out_allowed,
            (Direction::Egress, Verdict::Deny) => &mut self.out_denied,
        };
        *c += 1;
    }
}

/// Counts per interface of the policy, and of what reached none.
#[derive(Debug, Clone)]
struct PerInterface {
    counts: Vec<IfaceCounts>,
    /// IP packets (records) with no interface of the policy at either end.
    nowhere: u64,
}

impl PerInterface {
    fn new(policy: &Policy) -> PerInterface {
        PerInterface {
            counts: vec![IfaceCounts::default(); policy.interfaces().len()],
            nowhere: 0,
        }
    }

    /// A packet from `src` to `dst` counts out at the source's interface
    /// and in at the destination's; `decided` is the interface whose
    /// groups decided it.
    #[allow(clippy::too_many_arguments)]
    fn by_addresses(
        &mut self,
        policy: &Policy,
        src: IpAddr,
        dst: IpAddr,
        zone: Option<crate::policy::ZoneId>,
        verdict: Verdict,
        decided: Option<IfaceId>,
        differ: bool,
    ) {
        let from = policy.interface_of(src, zone);
        let to = policy.interface_of(dst, zone);
        if from.is_none() && to.is_none() {
            self.nowhere += 1;
        }
        for (i, dir) in [(from, Direction::Egress), (to, Direction::Ingress)] {
            if let Some(c) = i.and_then(|i| self.counts.get_mut(i as usize)) {
                c.count(dir, verdict);
                c.differ += u64::from(differ);
            }
        }
        self.decided(verdict, decided);
    }

    fn decided(&mut self, verdict: Verdict, decided: Option<IfaceId>) {
        if verdict == Verdict::Deny {
            if let Some(c) = decided.and_then(|i| self.counts.get_mut(i as usize)) {
                c.denied_here += 1;
            }
        }
    }

    /// The table of the interfaces that saw anything, most first.
    fn table(&self, policy: &Policy, flow_log: bool) -> String {
        let mut seen: Vec<(usize, &IfaceCounts)> = self
            .counts
            .iter()
            .enumerate()
            .filter(|(_, c)| c.total() > 0)
            .collect();
        seen.sort_by_key(|(i, c)| (std::cmp::Reverse(c.total()), *i));
        let unit = if flow_log { "records" } else { "packets" };
        let mut head: Vec<(&str, bool)> = vec![
            ("interface", false),
            ("security groups", false),
            ("in allowed", true),
            ("in denied", true),
            ("out allowed", true),
            ("out denied", true),
            ("denied by its groups", true),
        ];
        if flow_log {
            head.push(("differ", true));
        }
        head.push(("", false));
        let mut t = Table::new("ifaces", &head);
        let widest = seen.first().map_or(1, |(_, c)| c.total()).max(1);
        for (i, c) in seen.iter().take(LISTED * 2) {
            let it = &policy.interfaces()[*i];
            let groups: Vec<String> = it
                .security_groups
                .iter()
                .map(|&s| esc(&policy.security_group(s).name))
                .collect();
            let bar = |n: u64, color: &str| {
                let w = (n as f64 / widest as f64 * 160.0).round();
                if w > 0.0 {
                    format!("<span class=\"bar\" style=\"width:{w}px;background:{color}\"></span>")
                } else {
                    String::new()
                }
            };
            let mut row = vec![
                format!("<span class=\"mono\">{}</span>", esc(&it.name)),
                groups.join(", "),
                num(c.in_allowed),
                num(c.in_denied),
                num(c.out_allowed),
                num(c.out_denied),
                num(c.denied_here),
            ];
            if flow_log {
                row.push(num(c.differ));
            }
            row.push(format!(
                "{}{}",
                bar(c.in_allowed + c.out_allowed, ALLOW_COLOR),
                bar(c.in_denied + c.out_denied, "#d1363a")
            ));
            t.row(&row);
        }
        let mut s = t.finish();
        let quiet = self.counts.len() - seen.len();
        let mut words = Vec::new();
        if seen.len() > LISTED * 2 {
            words.push(format!(
                "{} more interfaces with {unit} are not listed",
                seen.len() - LISTED * 2
            ));
        }
        if quiet > 0 {
            words.push(format!("{quiet} interfaces of the policy saw no {unit}"));
        }
        if self.nowhere > 0 {
            words.push(format!(
                "{} IP {unit} had no interface of the policy at either end",
                num(self.nowhere)
            ));
        }
        let _ = write!(
            s,
            "<p class=\"muted\">A {} counts as <i>out</i> at its source's interface and \
             <i>in</i> at its destination's, by its verdict; <i>denied by its groups</i> \
             counts the denials this interface's own groups decided. {}</p>",
            &unit[..unit.len() - 1],
            esc(&words.join("; "))
        );
        s
    }
}

/// The report file, created when the replay starts so that a path that
/// cannot be written fails before the input is read.
struct Out {
    path: PathBuf,
    file: File,
}

impl Out {
    fn create(path: &Path) -> Result<Out> {
        Ok(Out {
            path: path.to_path_buf(),
            file: File::create(path).map_err(creating(path))?,
        })
    }

    fn write(self, page: &str) -> Result<()> {
        let mut w = BufWriter::new(self.file);
        w.write_all(page.as_bytes())
            .and_then(|_| w.flush())
            .map_err(writing(&self.path))
    }
}

/// The earliest and latest timestamps seen, ns.
#[derive(Debug, Clone, Copy, Default)]
struct Span(Option<(u64, u64)>);

impl Span {
    fn add(&mut self, ts: u64) {
        self.0 = Some(match self.0 {
            None => (ts, ts),
            Some((a, b)) => (a.min(ts), b.max(ts)),
        });
    }

    fn words(&self) -> String {
        match self.0 {
            None => "—".into(),
            Some((a, b)) => format!(
                "{} → {} ({})",
                Utc::from_ns(a).full(),
                Utc::from_ns(b).full(),
                duration(b - a)
            ),
        }
    }
}

/// What a capture replay's report collects while packets are judged.
pub struct CaptureHtml {
    out: Out,
    /// Series 0: allowed; 1 + reason index: denied for that reason.
    timeline: Timeline,
    span: Span,
    interfaces: PerInterface,
}

impl CaptureHtml {
    pub fn create(path: &Path, policy: &Policy) -> Result<CaptureHtml> {
        Ok(CaptureHtml {
            out: Out::create(path)?,
            timeline: Timeline::new(1 + Reason::COUNT, 1),
            span: Span::default(),
            interfaces: PerInterface::new(policy),
        })
    }

    /// Notes one packet's judgement.
    pub fn observe(&mut self, j: &Judgement, ts: u64, policy: &Policy) {
        let series = match j.verdict {
            Verdict::Allow => 0,
            Verdict::Deny => 1 + j.reason.index(),
        };
        self.timeline.add(ts, series);
        self.span.add(ts);
        if let Some(p) = &j.packet {
            let decided = j.decision.map(|(i, _)| i);
            let zone = policy.packet_zone(p);
            self.interfaces
                .by_addresses(policy, p.src, p.dst, zone, j.verdict, decided, false);
        }
    }

    /// Writes the page for the finished replay.
    pub fn finish(self, report: &Report, engine: &Engine) -> Result<()> {
        let page = self.page(report, engine);
        self.out.write(&page)
    }

    fn page(&self, report: &Report, engine: &Engine) -> String {
        let policy = engine.policy();
        let mut b = String::new();
        let _ = write!(
            b,
            "<main><h1>sgplane replay <span class=\"sub\">— {}</span></h1>",
            esc(&report.input)
        );
        let mut meta = vec![
            (
                "input",
                format!(
                    "<span class=\"mono\">{}</span> ({})",
                    esc(&report.input),
                    esc(&report.format)
                ),
            ),
            ("policy", policy_words(policy)),
            (
                "packets",
                format!(
                    "{} ({} bytes): <span class=\"allow\">{} allowed</span> ({}), \
                     <span class=\"deny\">{} denied</span> ({})",
                    num(report.packets),
                    num(report.bytes),
                    num(report.allowed),
                    pct(report.allowed, report.packets),
                    num(report.denied),
                    pct(report.denied, report.packets)
                ),
            ),
            ("span", esc(&self.span.words())),
        ];
        let estimate = if report.distinct_flows_exact {
            String::new()
        } else {
            format!(
                " (estimate, ±{:.1}% standard error)",
                report.distinct_flows_standard_error * 100.0
            )
        };
        meta.push((
            "flows",
            format!(
                "{} distinct{}; {} new flows decided by rules",
                num(report.distinct_flows),
                esc(&estimate),
                num(report.new_flows)
            ),
        ));
        meta.push(("sgplane", esc(env!("CARGO_PKG_VERSION"))));
        b.push_str(&meta_list(&meta));
        b.push_str("<div class=\"cards\">");
        b.push_str(&card(&num(report.packets), "packets", ""));
        b.push_str(&card(&num(report.allowed), "allowed", "allow"));
        b.push_str(&card(&num(report.denied), "denied", "deny"));
        b.push_str(&card(&num(report.distinct_flows), "distinct flows", ""));
        b.push_str(&card(&num(report.new_flows), "new flows decided", ""));
        b.push_str("</div>");
        if let Some(i) = &report.interrupted {
            b.push_str(&note(
                "warn",
                &format!(
                    "<b>Interrupted</b> by {} at packet {} (byte {} of the input): \
                     this report covers the {} packets before it.",
                    esc(&i.signal),
                    num(i.at_packet),
                    num(i.offset),
                    num(i.at_packet)
                ),
            ));
        }
        if let Some(st) = &report.stopped {
            b.push_str(&note(
                "warn",
                &format!(
                    "<b>The capture stopped early</b> at byte {}: {}. This report covers \
                     the {} packets before it.",
                    num(st.offset),
                    esc(&st.error),
                    num(report.packets)
                ),
            ));
        }
        for (lt, n) in &report.unsupported_link_types {
            b.push_str(&note(
                "info",
                &format!(
                    "Link type {lt} is not understood: its {} packets are counted as not-ip.",
                    num(*n)
                ),
            ));
        }

        // Over time.
        let mut denied: Vec<Series> = Reason::ALL
            .iter()
            .map(|&r| Series {
                label: r.as_str().to_string(),
                color: reason_color(r),
                column: 1 + r.index(),
            })
            .collect();
        let totals = self.timeline.totals();
        denied.sort_by_key(|x| std::cmp::Reverse(totals[x.column]));
        let panels = [
            Panel {
                title: "allowed".into(),
                series: vec![Series {
                    label: "allowed".into(),
                    color: ALLOW_COLOR,
                    column: 0,
                }],
            },
            Panel {
                title: "denied, by reason".into(),
                series: denied,
            },
        ];
        time_section(&mut b, &self.timeline, &panels, &totals, "packets");

        // Top denied flows.
        b.push_str("<h2>Top denied flows</h2>");
        let bound = &report.top_denied_bound;
        if report.top_denied.is_empty() {
            b.push_str("<p class=\"muted\">No IP packet was denied.</p>");
        } else {
            let mut t = Table::new(
                "top",
                &[
                    ("packets", true),
                    ("±", true),
                    ("source", false),
                    ("destination", false),
                    ("what", false),
                    ("reason", false),
                    ("rule", false),
                    ("at", false),
                ],
            );
            for f in &report.top_denied {
                let what = match (f.dport, f.icmp_type) {
                    (Some(p), _) => format!("{}/{p}", f.proto),
                    (None, Some(ty)) => format!("{} type {ty}", f.proto),
                    _ => f.proto.clone(),
                };
                let what = match &f.zone {
                    Some(z) => format!("{what} [{z}]"),
                    None => what,
                };
                let at = match (&f.interface, &f.direction) {
                    (Some(i), Some(d)) => format!("{i} {d}"),
                    _ => String::new(),
                };
                t.row(&[
                    num(f.packets),
                    num(f.error),
                    mono(&f.src.to_string()),
                    mono(&f.dst.to_string()),
                    esc(&what),
                    reason_chip(f.reason),
                    mono(f.rule.as_deref().unwrap_or("—")),
                    mono(&at),
                ]);
            }
            b.push_str(&t.finish());
            let _ = write!(
                b,
                "<p class=\"muted\">Counted in {} Space-Saving counters over {} denied IP packets \
                 (memory does not grow with the capture). {}{}</p>",
                bound.counters,
                num(bound.denied_packets),
                if bound.exact {
                    "Every count is exact (± 0): no more distinct denied flows than counters."
                        .to_string()
                } else {
                    format!(
                        "A count ± E is at most E above the true count; every flow with more than \
                         {} denied packets holds a counter.",
                        num(bound.listed_above)
                    )
                },
                if bound.exact {
                    String::new()
                } else {
                    format!(" Smallest count held: {}.", num(bound.min_count))
                }
            );
        }

        // Rules.
        rules_section(&mut b, policy, &engine.stats().rule_hits, "new flows");
        if !report.nacl_hits.is_empty() {
            b.push_str("<div class=\"cols\"><div><h3>Network ACL entries (packets decided)</h3>");
            let mut t = Table::new("nacl", &[("packets", true), ("entry", false)]);
            for h in report.nacl_hits.iter().take(LISTED) {
                t.row(&[num(h.packets), mono(&h.rule)]);
            }
            b.push_str(&t.finish());
            if report.nacl_hits.len() > LISTED {
                let _ = write!(
                    b,
                    "<p class=\"muted\">and {} more entries</p>",
                    report.nacl_hits.len() - LISTED
                );
            }
            b.push_str("</div></div>");
        }

        b.push_str("<h2>Interfaces</h2>");
        b.push_str(&self.interfaces.table(policy, false));
        graph_section(&mut b, policy, &engine.stats().rule_hits, "new flows");
        footer(&mut b);
        html::document(&format!("sgplane replay — {}", report.input), &b)
    }
}

/// A flow-log record that differs from sgplane's verdict, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct DiffKey {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    dport: Option<u16>,
    accept: bool,
}

/// What a flow-log replay's report collects while records are judged.
pub struct FlowLogHtml {
    out: Out,
    /// Series 0 agree, 1 recorded ACCEPT denied, 2 recorded REJECT
    /// allowed; 3 sgplane allows; 4 + reason index: sgplane denies.
    timeline: Timeline,
    span: Span,
    /// Judged records without a `start` field (not in the timeline).
    no_start: u64,
    interfaces: PerInterface,
    rule_hits: Vec<u64>,
    differing: SpaceSaving<DiffKey, Judgement>,
}

impl FlowLogHtml {
    pub fn create(path: &Path, policy: &Policy) -> Result<FlowLogHtml> {
        Ok(FlowLogHtml {
            out: Out::create(path)?,
            // `start` is in seconds.
            timeline: Timeline::new(4 + Reason::COUNT, 1_000_000_000),
            span: Span::default(),
            no_start: 0,
            interfaces: PerInterface::new(policy),
            rule_hits: vec![0; policy.rules().len()],
            differing: SpaceSaving::new(DIFF_COUNTERS),
        })
    }

    /// Notes one judged record.
    pub fn observe(&mut self, r: &Record, rj: &RecordJudgement, policy: &Policy) {
        let j = &rj.judgement;
        let recorded = match r.action {
            Recorded::Accept => Verdict::Allow,
            Recorded::Reject => Verdict::Deny,
        };
        let differ = recorded != j.verdict;
        if let Some(start) = r.start {
            let ts = start.saturating_mul(1_000_000_000);
            let agreement = match (differ, r.action) {
                (false, _) => 0,
                (true, Recorded::Accept) => 1,
                (true, Recorded::Reject) => 2,
            };
            self.timeline.add(ts, agreement);
            let verdict = match j.verdict {
                Verdict::Allow => 3,
                Verdict::Deny => 4 + j.reason.index(),
            };
            self.timeline.add(ts, verdict);
            self.span.add(ts);
        } else {
            self.no_start += 1;
        }
        if let Some(hits) = j.rule.and_then(|id| self.rule_hits.get_mut(id as usize)) {
            *hits += 1;
        }
        let decided = j.decision.map(|(i, _)| i);
        // At the interface `interface-id` names, in the direction it was
        // judged (its groups' decision, or the subnet ACL's that denied it).
        let at = rj
            .at_named_interface
            .then(|| r.interface.and_then(|n| policy.interface_named(n)))
            .flatten();
        let dir = j.decision.map(|(_, d)| d).or(j.nacl.map(|a| a.direction));
        match at.zip(dir) {
            Some((i, dir)) => {
                if let Some(c) = self.interfaces.counts.get_mut(i as usize) {
                    c.count(dir, j.verdict);
                    c.differ += u64::from(differ);
                }
                self.interfaces.decided(j.verdict, decided);
            }
            None => {
                let zone = policy.zone_of(None, r.src, r.dst);
                self.interfaces
                    .by_addresses(policy, r.src, r.dst, zone, j.verdict, decided, differ);
            }
        }
        if differ {
            let k = DiffKey {
                src: r.src,
                dst: r.dst,
                proto: r.proto.0,
                dport: r.dport,
                accept: r.action == Recorded::Accept,
            };
            self.differing.observe(k, || *j);
        }
    }

    /// Writes the page for the finished replay.
    pub fn finish(self, report: &FlowLogReport, policy: &Policy) -> Result<()> {
        let page = self.page(report, policy);
        self.out.write(&page)
    }

    fn page(&self, report: &FlowLogReport, policy: &Policy) -> String {
        let mut b = String::new();
        let _ = write!(
            b,
            "<main><h1>sgplane replay <span class=\"sub\">— {} (VPC Flow Log)</span></h1>",
            esc(&report.input)
        );
        let how = format!(
            "{}{}",
            if report.gzip { "gzip, " } else { "" },
            if report.header {
                format!("header of {} fields", report.fields.len())
            } else {
                "version 2 default format, no header".into()
            }
        );
        let meta = vec![
            (
                "input",
                format!(
                    "<span class=\"mono\">{}</span> (VPC Flow Log, {})",
                    esc(&report.input),
                    esc(&how)
                ),
            ),
            ("policy", policy_words(policy)),
            (
                "records",
                format!(
                    "{}: {} judged as new flows, {} NODATA, {} SKIPDATA, {} malformed",
                    num(report.records),
                    num(report.judged),
                    num(report.nodata),
                    num(report.skipdata),
                    num(report.malformed)
                ),
            ),
            (
                "judged",
                format!(
                    "<span class=\"allow\">{} agree</span> with the recorded action, \
                     <span class=\"deny\">{} differ</span>; {} at the interface \
                     <code>interface-id</code> names, {} by addresses",
                    num(report.agreeing),
                    num(report.differing),
                    num(report.judged_at_interface),
                    num(report.judged - report.judged_at_interface)
                ),
            ),
            ("span of start times", esc(&self.span.words())),
            ("sgplane", esc(env!("CARGO_PKG_VERSION"))),
        ];
        b.push_str(&meta_list(&meta));
        b.push_str("<div class=\"cards\">");
        b.push_str(&card(&num(report.records), "records", ""));
        b.push_str(&card(&num(report.agreeing), "agree", "allow"));
        b.push_str(&card(&num(report.differing), "differ", "deny"));
        b.push_str(&card(
            &num(report.recorded_accept_denied),
            "recorded ACCEPT, sgplane denies",
            "",
        ));
        b.push_str(&card(
            &num(report.recorded_reject_allowed),
            "recorded REJECT, sgplane allows",
            "",
        ));
        b.push_str("</div>");
        if let Some(sig) = report.interrupted {
            b.push_str(&note(
                "warn",
                &format!(
                    "<b>Interrupted</b> by signal {sig} after {} records: this report covers them.",
                    num(report.records)
                ),
            ));
        }
        if let Some(st) = &report.stopped {
            b.push_str(&note(
                "warn",
                &format!(
                    "<b>The input stopped early</b> after line {}: {}. This report covers the \
                     {} records before it.",
                    num(st.line),
                    esc(&st.error),
                    num(report.records)
                ),
            ));
        }
        if self.no_start > 0 {
            b.push_str(&note(
                "info",
                &format!(
                    "{} judged records have no <code>start</code> field and are not in the \
                     chart.",
                    num(self.no_start)
                ),
            ));
        }
        if report.recorded_accept_denied_reverse_allowed > 0 {
            b.push_str(&note(
                "info",
                &format!(
                    "{} of the records AWS accepted and sgplane denies as new flows would be \
                     allowed the other way: they may be replies of connections, which are not \
                     new flows.",
                    num(report.recorded_accept_denied_reverse_allowed)
                ),
            ));
        }

        let totals = self.timeline.totals();
        let mut denied: Vec<Series> = Reason::ALL
            .iter()
            .map(|&r| Series {
                label: format!("denied: {}", r.as_str()),
                color: reason_color(r),
                column: 4 + r.index(),
            })
            .collect();
        denied.sort_by_key(|x| std::cmp::Reverse(totals[x.column]));
        let mut verdicts = vec![Series {
            label: "allowed".into(),
            color: ALLOW_COLOR,
            column: 3,
        }];
        verdicts.extend(denied);
        let panels = [
            Panel {
                title: "recorded action vs sgplane".into(),
                series: vec![
                    Series {
                        label: "agree".into(),
                        color: ALLOW_COLOR,
                        column: 0,
                    },
                    Series {
                        label: "recorded ACCEPT, sgplane denies".into(),
                        color: "#d1363a",
                        column: 1,
                    },
                    Series {
                        label: "recorded REJECT, sgplane allows".into(),
                        color: "#f28e2b",
                        column: 2,
                    },
                ],
            },
            Panel {
                title: "sgplane's verdict".into(),
                series: verdicts,
            },
        ];
        time_section(&mut b, &self.timeline, &panels, &totals, "records");

        b.push_str("<h2>Top differing flows</h2>");
        let top = self.differing.top(TOP_FLOWS);
        if top.is_empty() {
            b.push_str(
                "<p class=\"muted\">Every judged record agrees with its recorded action.</p>",
            );
        } else {
            let mut t = Table::new(
                "top",
                &[
                    ("records", true),
                    ("±", true),
                    ("source", false),
                    ("destination", false),
                    ("what", false),
                    ("recorded", false),
                    ("sgplane", false),
                    ("rule", false),
                    ("at", false),
                ],
            );
            for c in &top {
                let (k, j) = (c.key, c.value);
                let what = match k.dport {
                    Some(p) => format!("{}/{p}", IpProto(k.proto)),
                    None => IpProto(k.proto).to_string(),
                };
                let (rule, at) = named(policy, j);
                t.row(&[
                    num(c.count),
                    num(c.error),
                    mono(&k.src.to_string()),
                    mono(&k.dst.to_string()),
                    esc(&what),
                    if k.accept { "ACCEPT" } else { "REJECT" }.into(),
                    match j.verdict {
                        Verdict::Deny => format!("deny {}", reason_chip(j.reason)),
                        Verdict::Allow => format!("allow {}", j.reason.as_str()),
                    },
                    mono(&rule),
                    mono(&at),
                ]);
            }
            b.push_str(&t.finish());
            let ss = &self.differing;
            let _ = write!(
                b,
                "<p class=\"muted\">Counted in {} Space-Saving counters over {} differing records. {}</p>",
                ss.capacity(),
                num(ss.total()),
                if ss.is_exact() {
                    "Every count is exact (± 0).".to_string()
                } else {
                    format!(
                        "A count ± E is at most E above the true count; every flow with more than \
                         {} differing records holds a counter.",
                        num(ss.total() / ss.capacity() as u64)
                    )
                }
            );
            let mut by: Vec<(&String, &u64)> = report.differing_by_rule.iter().collect();
            by.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            b.push_str("<h3>Differing records by deciding rule</h3>");
            let mut t = Table::new("byrule", &[("records", true), ("rule or reason", false)]);
            for (rule, n) in by.iter().take(LISTED) {
                t.row(&[num(**n), mono(rule)]);
            }
            b.push_str(&t.finish());
            b.push_str("<h3>First differing records</h3>");
            let mut t = Table::new(
                "first",
                &[
                    ("line", true),
                    ("record", false),
                    ("recorded", false),
                    ("sgplane", false),
                    ("rule", false),
                    ("at", false),
                ],
            );
            for d in &report.differences {
                let port = |p: Option<u16>| p.map(|p| format!(":{p}")).unwrap_or_default();
                let at = match (&d.interface, &d.direction) {
                    (Some(i), Some(dir)) => format!("{i} {dir}"),
                    _ => String::new(),
                };
                t.row(&[
                    num(d.line),
                    mono(&format!(
                        "{} {}{} → {}{}",
                        d.proto,
                        d.src,
                        port(d.sport),
                        d.dst,
                        port(d.dport)
                    )),
                    d.recorded_action.into(),
                    esc(&format!(
                        "{} {}{}",
                        d.verdict,
                        d.reason,
                        if d.reverse_allowed {
                            " (reverse allowed)"
                        } else {
                            ""
                        }
                    )),
                    mono(d.rule.as_deref().unwrap_or("—")),
                    mono(&at),
                ]);
            }
            b.push_str(&t.finish());
        }
        rules_section(&mut b, policy, &self.rule_hits, "records");
        b.push_str("<h2>Interfaces</h2>");
        b.push_str(&self.interfaces.table(policy, true));
        graph_section(&mut b, policy, &self.rule_hits, "records");
        footer(&mut b);
        html::document(&format!("sgplane replay — {}", report.input), &b)
    }
}

/// The rule (or ACL entry) and `interface direction` a judgement names.
fn named(policy: &Policy, j: &Judgement) -> (String, String) {
    match (j.nacl, policy.nacls()) {
        (Some(d), Some(n)) => (
            n.rule_name(&d).to_string(),
            format!("{} {}", policy.subnet_name(d.subnet), d.direction),
        ),
        _ => (
            j.rule
                .map_or("—".to_string(), |r| policy.rule_name(r).to_string()),
            j.decision.map_or(String::new(), |(i, d)| {
                format!("{} {d}", policy.interface(i).name)
            }),
        ),
    }
}

/// `1 bucket`, `60 buckets`.
fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

fn mono(s: &str) -> String {
    format!("<span class=\"mono\">{}</span>", esc(s))
}

fn reason_chip(r: Reason) -> String {
    format!(
        "<span><i class=\"bar\" style=\"width:9px;background:{}\"></i> {}</span>",
        reason_color(r),
        r.as_str()
    )
}

fn policy_words(policy: &Policy) -> String {
    format!(
        "<span class=\"mono\">{}</span>: {} interfaces, {} security groups, {} rules, {} prefix lists",
        esc(policy.source()),
        num(policy.interfaces().len() as u64),
        num(policy.security_groups().len() as u64),
        num(policy.explicit_rule_count() as u64),
        num(policy.prefix_lists().len() as u64)
    )
}

/// `<dl>` of (term, HTML) pairs.
fn meta_list(items: &[(&str, String)]) -> String {
    let mut s = String::from("<dl class=\"meta\">");
    for (k, v) in items {
        let _ = write!(s, "<dt>{}</dt><dd>{v}</dd>", esc(k));
    }
    s.push_str("</dl>");
    s
}

fn time_section(b: &mut String, t: &Timeline, panels: &[Panel], totals: &[u64], unit: &str) {
    let buckets = t.buckets();
    if buckets.rows.is_empty() {
        let _ = write!(
            b,
            "<h2>Over time</h2><p class=\"muted\">No {unit} with a time.</p>"
        );
        return;
    }
    let _ = write!(
        b,
        "<h2>Over time</h2><div class=\"panel\">{}{}<p class=\"muted\">{} of {} \
         (chosen from the span; at most {}); hover over the chart for a bucket's counts.</p></div>",
        chart::stacked(&buckets, panels, unit),
        chart::legend(panels, totals),
        plural(buckets.rows.len(), "bucket"),
        width_words(buckets.width),
        timeline::BUCKETS
    );
}

/// The allow and deny rules that decided the most, side by side.
fn rules_section(b: &mut String, policy: &Policy, hits: &[u64], unit: &str) {
    b.push_str("<h2>Rules that decided the most</h2><div class=\"cols\">");
    for action in [Action::Allow, Action::Deny] {
        let mut by: Vec<(RuleId, u64)> = hits
            .iter()
            .enumerate()
            .filter(|(i, &n)| n > 0 && policy.rules().get(*i).is_some_and(|r| r.action == action))
            .map(|(i, &n)| (i as RuleId, n))
            .collect();
        by.sort_by_key(|&(r, n)| (std::cmp::Reverse(n), r));
        let _ = write!(
            b,
            "<div><h3 class=\"{}\">{} rules ({unit} decided)</h3>",
            action.as_str(),
            action.as_str()
        );
        if by.is_empty() {
            let _ = write!(
                b,
                "<p class=\"muted\">No {} rule decided anything.</p></div>",
                action.as_str()
            );
            continue;
        }
        let mut t = Table::new(
            "rules",
            &[(unit, true), ("rule", false), ("matches", false)],
        );
        for &(r, n) in by.iter().take(LISTED) {
            let rule = policy.rule(r);
            let mut what = esc(&policy.describe_rule(r));
            if let Some(d) = &rule.description {
                let _ = write!(
                    what,
                    "<br><span class=\"muted\">{}</span>",
                    esc(&clip(d, 90))
                );
            }
            t.row(&[num(n), mono(&policy.rule_name(r).to_string()), what]);
        }
        b.push_str(&t.finish());
        if by.len() > LISTED {
            let _ = write!(
                b,
                "<p class=\"muted\">and {} more rules</p>",
                by.len() - LISTED
            );
        }
        b.push_str("</div>");
    }
    b.push_str("</div>");
}

fn graph_section(b: &mut String, policy: &Policy, hits: &[u64], unit: &str) {
    let g = graph::draw(policy, hits, unit);
    b.push_str("<h2>Security group references</h2>");
    if let Some(t) = &g.truncated {
        b.push_str(&note(
            "warn",
            &format!("<b>Truncated:</b> showing {}.", esc(t)),
        ));
    }
    let _ = write!(
        b,
        "<p class=\"muted\">{} interfaces and the {} groups attached to them. {}</p>\
         <div class=\"panel\">{}<div class=\"legend\">\
         <span><i style=\"background:#7d9fd8\"></i>interface has group (dotted: its subnet's)</span>\
         <span><i style=\"background:#3f7fbf\"></i>allow rule: solid ingress (admits), dashed egress (reaches)</span>\
         <span><i style=\"background:#d1363a\"></i>deny rule</span>\
         <span>thicker: more {unit} decided · hover a box to follow its edges</span></div></div>",
        g.interfaces,
        g.groups,
        if g.open_egress > 0 {
            format!(
                "{} allowing any address (0.0.0.0/0, ::/0) {} not drawn.",
                plural(g.open_egress, "egress rule"),
                if g.open_egress == 1 { "is" } else { "are" }
            )
        } else {
            String::new()
        },
        g.svg
    );
}

fn footer(b: &mut String) {
    let _ = write!(
        b,
        "<footer>Written by sgplane {}: one self-contained file, nothing loaded from the network.</footer></main>",
        esc(env!("CARGO_PKG_VERSION"))
    );
}
