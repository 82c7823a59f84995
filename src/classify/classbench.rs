//! Readers for ClassBench filter sets and header traces (Taylor & Turner), the
//! standard benchmark data of packet classification, as DPDK's test-acl reads them.
//!
//! Rule line (fields separated by tabs or spaces; an earlier line wins):
//! `@SA/len DA/len SPlo : SPhi DPlo : DPhi proto/mask [flags/mask]`.
//! Trace line: `SA DA SP DP PROTO FLAGS FILTER`, decimal, FILTER being the index of
//! the rule the generator drew the header from (not always the first match).
//! Flags are read and checked but not classified on.

use super::{ClassRule, Key, RangeSet};
use std::net::Ipv4Addr;
use thiserror::Error;

/// A line that could not be read, with its 1-based number.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("line {line}: {kind}")]
pub struct ParseError {
    pub line: usize,
    pub kind: ParseErrorKind,
}

/// What was wrong with a line.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseErrorKind {
    #[error("a rule line must start with '@'")]
    MissingAt,
    #[error("missing field: {0}")]
    MissingField(&'static str),
    #[error("unexpected extra field {0:?}")]
    ExtraField(String),
    #[error("bad address {0:?}: expected a.b.c.d/len with len 0-32")]
    BadPrefix(String),
    #[error("bad port {0:?}: expected 0-65535")]
    BadPort(String),
    #[error("bad port range {lo} : {hi}: the low end is above the high end")]
    InvertedPorts { lo: u16, hi: u16 },
    #[error("expected ':' between the ends of a port range, found {0:?}")]
    MissingColon(String),
    #[error("bad {what} {text:?}: expected value/mask in hex like 0x06/0xFF")]
    BadValueMask { what: &'static str, text: String },
    #[error("bad {what} {text:?}: expected a decimal number up to {max}")]
    BadNumber {
        what: &'static str,
        text: String,
        max: u64,
    },
}

/// Reads a ClassBench filter set; blank lines are skipped.
pub fn parse_rules(text: &str) -> Result<Vec<ClassRule>, ParseError> {
    let mut rules = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        rules.push(parse_rule(line).map_err(|kind| ParseError { line: i + 1, kind })?);
    }
    Ok(rules)
}

/// Reads a ClassBench trace: per line the key and the trace's own filter column
/// (-1 when the line has only six columns). Blank lines are skipped.
pub fn parse_trace(text: &str) -> Result<Vec<(Key, i64)>, ParseError> {
    let mut trace = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        trace.push(parse_header(line).map_err(|kind| ParseError { line: i + 1, kind })?);
    }
    Ok(trace)
}

/// Parses one rule line.
pub fn parse_rule(line: &str) -> Result<ClassRule, ParseErrorKind> {
    let body = line
        .trim_start()
        .strip_prefix('@')
        .ok_or(ParseErrorKind::MissingAt)?;
    let mut fields = body.split_whitespace();
    let mut next = |name| fields.next().ok_or(ParseErrorKind::MissingField(name));
    let src = parse_prefix(next("source address")?)?;
    let dst = parse_prefix(next("destination address")?)?;
    let sport = parse_port_range(
        next("source port low")?,
        next(":")?,
        next("source port high")?,
    )?;
    let dport = parse_port_range(
        next("destination port low")?,
        next(":")?,
        next("destination port high")?,
    )?;
    let (proto, proto_mask) = parse_value_mask("protocol", next("protocol")?, 0xff)?;
    if let Ok(flags) = next("flags") {
        parse_value_mask("flags", flags, 0xffff)?;
    }
    if let Some(extra) = fields.next() {
        return Err(ParseErrorKind::ExtraField(extra.to_owned()));
    }
    Ok(ClassRule {
        fields: [src, dst, sport, dport, masked_byte(proto, proto_mask)],
    })
}

/// Parses one trace line.
pub fn parse_header(line: &str) -> Result<(Key, i64), ParseErrorKind> {
    let mut fields = line.split_whitespace();
    let mut next = |name, max: u64| -> Result<u64, ParseErrorKind> {
        let text = fields.next().ok_or(ParseErrorKind::MissingField(name))?;
        text.parse::<u64>()
            .ok()
            .filter(|&v| v <= max)
            .ok_or_else(|| ParseErrorKind::BadNumber {
                what: name,
                text: text.to_owned(),
                max,
            })
    };
    let max32 = u64::from(u32::MAX);
    let key = [
        next("source address", max32)? as u32,
        next("destination address", max32)? as u32,
        next("source port", 65535)? as u32,
        next("destination port", 65535)? as u32,
        next("protocol", 255)? as u32,
    ];
    next("flags", max32)?;
    let filter = match fields.next() {
        None => -1,
        Some(text) => {
            text.parse::<u32>()
                .map(i64::from)
                .map_err(|_| ParseErrorKind::BadNumber {
                    what: "filter",
                    text: text.to_owned(),
                    max: max32,
                })?
        }
    };
    if let Some(extra) = fields.next() {
        return Err(ParseErrorKind::ExtraField(extra.to_owned()));
    }
    Ok((key, filter))
}

fn parse_prefix(text: &str) -> Result<RangeSet, ParseErrorKind> {
    let bad = || ParseErrorKind::BadPrefix(text.to_owned());
    let (addr, len) = text.split_once('/').ok_or_else(bad)?;
    let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
    let len: u8 = len.parse().ok().filter(|&l| l <= 32).ok_or_else(bad)?;
    Ok(RangeSet::prefix(u32::from(addr), len))
}

fn parse_port_range(lo: &str, colon: &str, hi: &str) -> Result<RangeSet, ParseErrorKind> {
    if colon != ":" {
        return Err(ParseErrorKind::MissingColon(colon.to_owned()));
    }
    let port = |t: &str| {
        t.parse::<u16>()
            .map_err(|_| ParseErrorKind::BadPort(t.to_owned()))
    };
    let (lo, hi) = (port(lo)?, port(hi)?);
    if lo > hi {
        return Err(ParseErrorKind::InvertedPorts { lo, hi });
    }
    Ok(RangeSet::single(lo.into(), hi.into()))
}

/// `0xVV/0xMM`, both at most `max`.
fn parse_value_mask(
    what: &'static str,
    text: &str,
    max: u32,
) -> Result<(u32, u32), ParseErrorKind> {
    let bad = || ParseErrorKind::BadValueMask {
        what,
        text: text.to_owned(),
    };
    let hex = |t: &str| {
        let digits = t
            .strip_prefix("0x")
            .or_else(|| t.strip_prefix("0X"))
            .ok_or_else(bad)?;
        u32::from_str_radix(digits, 16)
            .ok()
            .filter(|&v| v <= max)
            .ok_or_else(bad)
    };
    let (value, mask) = text.split_once('/').ok_or_else(bad)?;
    Ok((hex(value)?, hex(mask)?))
}

/// The bytes `v` with `v & mask == value & mask`: mask 0xFF is one value, 0x00 is
/// every byte, anything else a few ranges.
fn masked_byte(value: u32, mask: u32) -> RangeSet {
    RangeSet::from_ranges(
        (0..=255u32)
            .filter(|v| v & mask == value & mask)
            .map(|v| (v, v))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &str =
        "@237.73.3.4/32\t67.236.63.210/32\t0 : 65535\t1711 : 1711\t0x06/0xFF\t0x0000/0x0200\t\n\
                         @0.0.0.0/0\t10.1.0.0/16\t1024 : 65535\t80 : 80\t0x00/0x00\t0x0000/0x0000\n\
                         \n\
                         @192.168.1.77/24 0.0.0.0/0 53 : 53 0 : 65535 0x11/0xFF\n";

    #[test]
    fn reads_good_rules() {
        let rules = parse_rules(RULES).unwrap();
        assert_eq!(rules.len(), 3);
        let r = &rules[0];
        assert_eq!(r.fields[0].ranges(), &[(0xed49_0304, 0xed49_0304)]);
        assert_eq!(r.fields[1].ranges(), &[(0x43ec_3fd2, 0x43ec_3fd2)]);
        assert!(!r.fields[2].is_any() && r.fields[2].ranges() == [(0, 65535)]);
        assert_eq!(r.fields[3].ranges(), &[(1711, 1711)]);
        assert_eq!(r.fields[4].ranges(), &[(6, 6)]);
        assert!(rules[1].fields[0].is_any());
        assert_eq!(rules[1].fields[1].ranges(), &[(0x0a01_0000, 0x0a01_ffff)]);
        assert_eq!(rules[1].fields[4].ranges(), &[(0, 255)]);
        // Host bits are masked off; the flags field is optional.
        assert_eq!(rules[2].fields[0].ranges(), &[(0xc0a8_0100, 0xc0a8_01ff)]);
        assert_eq!(rules[2].fields[4].ranges(), &[(17, 17)]);
    }

    #[test]
    fn partial_proto_mask_is_a_set() {
        let r = parse_rule("@0.0.0.0/0 0.0.0.0/0 0 : 65535 0 : 65535 0x06/0xFE").unwrap();
        assert_eq!(r.fields[4].ranges(), &[(6, 7)]);
    }

    #[test]
    fn bad_rule_lines_name_the_line() {
        let good = "@1.2.3.4/32\t5.6.7.8/32\t0 : 65535\t80 : 80\t0x06/0xFF\t0x0000/0x0000";
        type Check = fn(&ParseErrorKind) -> bool;
        let cases: &[(&str, Check)] = &[
            ("1.2.3.4/32 5.6.7.8/32 0 : 1 0 : 1 0x06/0xFF", |k| {
                *k == ParseErrorKind::MissingAt
            }),
            ("@1.2.3.4/32", |k| {
                matches!(k, ParseErrorKind::MissingField("destination address"))
            }),
            ("@1.2.3.4/33 5.6.7.8/32 0 : 1 0 : 1 0x06/0xFF", |k| {
                matches!(k, ParseErrorKind::BadPrefix(_))
            }),
            ("@1.2.3/8 5.6.7.8/32 0 : 1 0 : 1 0x06/0xFF", |k| {
                matches!(k, ParseErrorKind::BadPrefix(_))
            }),
            ("@1.2.3.4 5.6.7.8/32 0 : 1 0 : 1 0x06/0xFF", |k| {
                matches!(k, ParseErrorKind::BadPrefix(_))
            }),
            ("@1.2.3.4/32 5.6.7.8/32 0 : 65536 0 : 1 0x06/0xFF", |k| {
                matches!(k, ParseErrorKind::BadPort(_))
            }),
            ("@1.2.3.4/32 5.6.7.8/32 9 : 1 0 : 1 0x06/0xFF", |k| {
                *k == ParseErrorKind::InvertedPorts { lo: 9, hi: 1 }
            }),
            ("@1.2.3.4/32 5.6.7.8/32 0 - 1 0 : 1 0x06/0xFF", |k| {
                matches!(k, ParseErrorKind::MissingColon(_))
            }),
            ("@1.2.3.4/32 5.6.7.8/32 0 : 1 0 : 1", |k| {
                matches!(k, ParseErrorKind::MissingField("protocol"))
            }),
            ("@1.2.3.4/32 5.6.7.8/32 0 : 1 0 : 1 6/0xFF", |k| {
                matches!(k, ParseErrorKind::BadValueMask { .. })
            }),
            ("@1.2.3.4/32 5.6.7.8/32 0 : 1 0 : 1 0x100/0xFF", |k| {
                matches!(k, ParseErrorKind::BadValueMask { .. })
            }),
            ("@1.2.3.4/32 5.6.7.8/32 0 : 1 0 : 1 0x06/0xFF 0x00", |k| {
                matches!(k, ParseErrorKind::BadValueMask { .. })
            }),
            (
                "@1.2.3.4/32 5.6.7.8/32 0 : 1 0 : 1 0x06/0xFF 0x0/0x0 x",
                |k| matches!(k, ParseErrorKind::ExtraField(_)),
            ),
        ];
        for (bad, check) in cases {
            let text = format!("{good}\n\n{bad}\n{good}\n");
            let err = parse_rules(&text).unwrap_err();
            assert_eq!(err.line, 3, "{bad}: {err}");
            assert!(check(&err.kind), "{bad}: {err}");
            assert!(err.to_string().starts_with("line 3: "), "{err}");
        }
    }

    #[test]
    fn reads_traces() {
        let trace =
            parse_trace("0\t4114795065\t0\t123\t6\t33559040\t238\n\n4294967295 0 69 65535 17 0\n")
                .unwrap();
        assert_eq!(
            trace,
            vec![
                ([0, 4114795065, 0, 123, 6], 238),
                ([u32::MAX, 0, 69, 65535, 17], -1)
            ]
        );
        let bad = [
            ("1 2 3", "destination port"),
            ("4294967296 0 0 0 0 0 0", "source address"),
            ("0 0 65536 0 0 0 0", "source port"),
            ("0 0 0 0 256 0 0", "protocol"),
            ("0 0 0 0 6 0 -1", "filter"),
            ("0 0 x 0 6 0 1", "source port"),
        ];
        for (line, what) in bad {
            let err = parse_trace(&format!("1 2 3 4 6 0 0\n{line}\n")).unwrap_err();
            assert_eq!(err.line, 2, "{line}");
            assert!(err.to_string().contains(what), "{line}: {err}");
        }
        let err = parse_trace("1 2 3 4 6 0 0 9\n").unwrap_err();
        assert_eq!(
            err,
            ParseError {
                line: 1,
                kind: ParseErrorKind::ExtraField("9".into())
            }
        );
    }

    #[test]
    fn garbage_never_panics() {
        for text in [
            "@",
            "@/",
            "@1.2.3.4/ /",
            "@ : : :",
            "\u{feff}@1",
            "@1.2.3.4/32 1.2.3.4/32 : : :",
            "0x",
        ] {
            assert!(parse_rules(text).is_err(), "{text}");
            let _ = parse_trace(text);
        }
    }
}
