//! Per-packet verdict lines (SPEC §4): JSON lines, or CSV with the same
//! columns, or Parquet rows ([`super::verdicts_parquet`]); a flow-log
//! record's line adds `recorded_action` (SPEC §10).

use std::io::{self, Write};
use std::net::IpAddr;
use std::path::Path;

use crate::base::IpProto;
use crate::engine::Judgement;
use crate::io::flowlog::Record;
use crate::policy::nacl::AclRuleName;
use crate::policy::{Policy, RuleName, ZoneId};
use crate::wire::L4;

use super::verdicts_parquet::{ParquetVerdicts, Row};

/// JSON lines, CSV or Parquet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerdictFormat {
    JsonLines,
    Csv,
    Parquet,
}

impl VerdictFormat {
    /// CSV for a `.csv` file name, Parquet for `.parquet`, JSON lines otherwise.
    pub fn for_path(p: &Path) -> VerdictFormat {
        match p.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("csv") => VerdictFormat::Csv,
            Some(e) if e.eq_ignore_ascii_case("parquet") => VerdictFormat::Parquet,
            _ => VerdictFormat::JsonLines,
        }
    }
}

/// The columns, in order.
pub const COLUMNS: [&str; 13] = [
    "index",
    "ts",
    "verdict",
    "reason",
    "rule",
    "interface",
    "direction",
    "proto",
    "src",
    "dst",
    "sport",
    "dport",
    "zone",
];

/// The column a flow-log record's line adds after [`COLUMNS`].
pub const RECORDED_ACTION: &str = "recorded_action";

/// What a line says besides the judgement.
struct Line<'a> {
    index: u64,
    /// Nanoseconds since the Unix epoch.
    ts: Option<u64>,
    proto: Option<IpProto>,
    ends: Option<(IpAddr, IpAddr)>,
    ports: Option<(u16, u16)>,
    zone: Option<String>,
    /// A flow-log record's action.
    recorded: Option<&'a str>,
}

/// `secs.micros` (or `.nanos`), or `none` when there is no time.
fn write_ts(w: &mut dyn Write, ts: Option<u64>, nanos: bool, none: &str) -> io::Result<()> {
    let Some(ts) = ts else {
        return w.write_all(none.as_bytes());
    };
    let (secs, frac) = (ts / 1_000_000_000, ts % 1_000_000_000);
    if nanos {
        write!(w, "{secs}.{frac:09}")
    } else {
        write!(w, "{secs}.{:06}", frac / 1000)
    }
}

/// Writes one line (Parquet: row) per packet (or per flow-log record).
pub struct VerdictWriter {
    w: Sink,
    format: VerdictFormat,
    /// Timestamps with 9 decimals instead of 6.
    nanos: bool,
}

impl VerdictWriter {
    pub fn new(
        mut w: Box<dyn Write>,
        format: VerdictFormat,
        nanos: bool,
    ) -> io::Result<VerdictWriter> {
        if format == VerdictFormat::Csv {
            writeln!(w, "{}", COLUMNS.join(","))?;
        }
        Ok(VerdictWriter {
            w: Sink::new(w, format, nanos, false)?,
            format,
            nanos,
        })
    }

    /// A writer of flow-log records' lines: the packet columns and
    /// `recorded_action` (the record's own ACCEPT or REJECT).
    pub fn for_records(mut w: Box<dyn Write>, format: VerdictFormat) -> io::Result<VerdictWriter> {
        if format == VerdictFormat::Csv {
            writeln!(w, "{},{RECORDED_ACTION}", COLUMNS.join(","))?;
        }
        Ok(VerdictWriter {
            w: Sink::new(w, format, false, true)?,
            format,
            nanos: false,
        })
    }

    pub fn write(&mut self, index: u64, ts: u64, j: &Judgement, policy: &Policy) -> io::Result<()> {
        let pkt = j.packet.as_ref();
        let ports = pkt.and_then(|p| match p.l4 {
            L4::Tcp { sport, dport, .. } | L4::Udp { sport, dport } => Some((sport, dport)),
            _ => None,
        });
        let line = Line {
            index,
            ts: Some(ts),
            proto: pkt.map(|p| p.proto),
            ends: pkt.map(|p| (p.src, p.dst)),
            ports,
            // The zone it was judged in: a GWLB zone, or a VPC space (the
            // VPC's name) when the policy's VPCs are spaces of their own.
            zone: pkt
                .and_then(|p| policy.packet_zone(p))
                .map(|z| policy.zone_label(z)),
            recorded: None,
        };
        self.line(&line, j, policy)
    }

    /// One flow-log record's line: its judgement as a new flow, the
    /// record's 5-tuple, its `start` as `ts` (null when the format has
    /// none) and its action.
    pub fn write_record(
        &mut self,
        index: u64,
        record: &Record,
        j: &Judgement,
        zone: Option<ZoneId>,
        policy: &Policy,
    ) -> io::Result<()> {
        let line = Line {
            index,
            ts: record.start.map(|s| s.saturating_mul(1_000_000_000)),
            proto: Some(record.proto),
            ends: Some((record.src, record.dst)),
            ports: record.sport.zip(record.dport),
            zone: zone.map(|z| policy.zone_label(z)),
            recorded: Some(record.action.as_str()),
        };
        self.line(&line, j, policy)
    }

    fn line(&mut self, l: &Line, j: &Judgement, policy: &Policy) -> io::Result<()> {
        let (rule, iface, dir) = attribution(j, policy);
        let (index, proto, ports) = (l.index, l.proto, l.ports);
        let zone = l.zone.as_deref();
        let nanos = self.nanos;
        let w = match &mut self.w {
            Sink::Lines(w) => w,
            Sink::Parquet(p) => {
                let (src, dst) = (l.ends.map(|e| e.0), l.ends.map(|e| e.1));
                return p.push(&Row {
                    index,
                    ts: l.ts,
                    verdict: &j.verdict,
                    reason: &j.reason,
                    rule: rule.as_ref().map(|r| r as _),
                    interface: iface,
                    direction: dir,
                    proto: proto.as_ref().map(|p| p as _),
                    src: src.as_ref().map(|a| a as _),
                    dst: dst.as_ref().map(|a| a as _),
                    ports,
                    zone,
                    recorded: l.recorded,
                });
            }
        };
        match self.format {
            VerdictFormat::Parquet => unreachable!("Parquet has its own sink"),
            VerdictFormat::JsonLines => {
                write!(w, "{{\"index\":{index},\"ts\":")?;
                write_ts(w, l.ts, nanos, "null")?;
                write!(
                    w,
                    ",\"verdict\":\"{}\",\"reason\":\"{}\",\"rule\":",
                    j.verdict, j.reason
                )?;
                json_opt(w, rule)?;
                w.write_all(b",\"interface\":")?;
                json_opt(w, iface)?;
                w.write_all(b",\"direction\":")?;
                json_opt(w, dir)?;
                w.write_all(b",\"proto\":")?;
                json_opt(w, proto)?;
                w.write_all(b",\"src\":")?;
                json_opt(w, l.ends.map(|e| e.0))?;
                w.write_all(b",\"dst\":")?;
                json_opt(w, l.ends.map(|e| e.1))?;
                match ports {
                    Some((s, d)) => write!(w, ",\"sport\":{s},\"dport\":{d}")?,
                    None => w.write_all(b",\"sport\":null,\"dport\":null")?,
                }
                w.write_all(b",\"zone\":")?;
                json_opt(w, zone)?;
                if let Some(a) = l.recorded {
                    write!(w, ",\"{RECORDED_ACTION}\":\"{a}\"")?;
                }
                w.write_all(b"}\n")
            }
            VerdictFormat::Csv => {
                write!(w, "{index},")?;
                write_ts(w, l.ts, nanos, "")?;
                write!(w, ",{},{},", j.verdict, j.reason)?;
                csv_opt(w, rule)?;
                csv_opt(w, iface)?;
                csv_opt(w, dir)?;
                csv_opt(w, proto)?;
                csv_opt(w, l.ends.map(|e| e.0))?;
                csv_opt(w, l.ends.map(|e| e.1))?;
                match ports {
                    Some((s, d)) => write!(w, "{s},{d},")?,
                    None => w.write_all(b",,")?,
                }
                if let Some(z) = zone {
                    w.write_all(z.as_bytes())?;
                }
                if let Some(a) = l.recorded {
                    write!(w, ",{a}")?;
                }
                w.write_all(b"\n")
            }
        }
    }

    pub fn finish(self) -> io::Result<()> {
        match self.w {
            Sink::Lines(mut w) => w.flush(),
            Sink::Parquet(p) => p.finish(),
        }
    }
}

/// Where lines go: text, or a Parquet file's rows.
enum Sink {
    Lines(Box<dyn Write>),
    Parquet(Box<ParquetVerdicts>),
}

impl Sink {
    fn new(
        w: Box<dyn Write>,
        format: VerdictFormat,
        nanos: bool,
        records: bool,
    ) -> io::Result<Sink> {
        Ok(match format {
            VerdictFormat::Parquet => {
                Sink::Parquet(Box::new(ParquetVerdicts::new(w, nanos, records)?))
            }
            _ => Sink::Lines(w),
        })
    }
}

/// What a judgement is attributed to: the deciding rule, the interface and
/// the direction, each when there is one. A network ACL's denial names its
/// rule, the subnet and its direction; otherwise the security-group rule and
/// the interface and direction that decided.
pub(super) fn attribution<'a>(
    j: &Judgement,
    policy: &'a Policy,
) -> (Option<Named<'a>>, Option<&'a str>, Option<&'static str>) {
    match (j.nacl, policy.nacls()) {
        (Some(d), Some(n)) => (
            Some(Named::Nacl(n.rule_name(&d))),
            Some(policy.subnet_name(d.subnet)),
            Some(d.direction.as_str()),
        ),
        _ => (
            j.rule.map(|r| Named::Rule(policy.rule_name(r))),
            j.decision.map(|(i, _)| policy.interface(i).name.as_str()),
            j.decision.map(|(_, d)| d.as_str()),
        ),
    }
}

/// The rule a line names: a security group's or a network ACL's.
pub(super) enum Named<'a> {
    Rule(RuleName<'a>),
    Nacl(AclRuleName<'a>),
}

impl std::fmt::Display for Named<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Named::Rule(r) => r.fmt(f),
            Named::Nacl(r) => r.fmt(f),
        }
    }
}

/// Names, addresses and protocol names never need JSON escaping except for
/// rule names built from the policy file, which are checked here.
fn json_opt(w: &mut dyn Write, v: Option<impl std::fmt::Display>) -> io::Result<()> {
    match v {
        None => w.write_all(b"null"),
        Some(v) => {
            let s = v.to_string();
            if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
                write!(w, "\"{s}\"")
            } else {
                write!(w, "{}", serde_json::Value::String(s))
            }
        }
    }
}

fn csv_opt(w: &mut dyn Write, v: Option<impl std::fmt::Display>) -> io::Result<()> {
    if let Some(v) = v {
        let s = v.to_string();
        if s.contains([',', '"', '\n']) {
            write!(w, "\"{}\"", s.replace('"', "\"\""))?;
        } else {
            w.write_all(s.as_bytes())?;
        }
    }
    w.write_all(b",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::nacl_tests::nacl_model;
    use crate::engine::Engine;
    use crate::wire::build;
    use crate::wire::packet::LinkType;

    /// Writes one judgement as a JSON line and reads it back.
    fn line(j: &Judgement, policy: &Policy) -> serde_json::Value {
        let path = std::env::temp_dir().join(format!(
            "sgplane-verdict-{}-{:?}.jsonl",
            std::process::id(),
            std::thread::current().id()
        ));
        let f = std::fs::File::create(&path).unwrap();
        let mut w = VerdictWriter::new(Box::new(f), VerdictFormat::JsonLines, false).unwrap();
        w.write(0, 0, j, policy).unwrap();
        w.finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).ok();
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn a_network_acl_denial_names_the_acl_rule_and_the_subnet() {
        let mut e = Engine::with_policy(Policy::compile(&nacl_model()).unwrap());
        let ip = |s: &str| s.parse().unwrap();
        let syn = |dport| {
            build::tcp(
                ip("10.0.2.20"),
                ip("10.0.1.10"),
                40000,
                dport,
                0x02,
                1,
                1,
                b"",
            )
        };
        let f = syn(22);
        let j = e.process(LinkType::Ethernet, &f, f.len(), 0);
        let v = line(&j, e.policy());
        assert_eq!(v["reason"], "nacl");
        assert_eq!(v["rule"], "acl-web/ingress/*");
        assert_eq!(v["interface"], "subnet-web");
        assert_eq!(v["direction"], "ingress");
        // An allowed packet names its security-group rule as before.
        let f = syn(443);
        let j = e.process(LinkType::Ethernet, &f, f.len(), 0);
        let v = line(&j, e.policy());
        assert_eq!(v["reason"], "rule");
        assert_eq!(v["rule"], "sg-open/ingress/0");
        assert_eq!(v["interface"], "web");
    }
}
