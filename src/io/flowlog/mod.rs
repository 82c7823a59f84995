//! AWS VPC Flow Logs read back (SPEC §10): the version 2 default format
//! without a header, or any custom format from its header line of field
//! names; plain text or gzip, recognised by content ([`sniff`]); or Parquet
//! as AWS delivers it ([`parquet`]), recognised by its `PAR1` magic.
//!
//! A record is read into a [`Record`] borrowing the line; a line that is
//! not one is a [`Malformed`] value with its line number, never a panic.
//! Fields a record does not need (counts, times, ids) are skipped unparsed.

use std::io::{self, BufRead, BufReader, Read};
use std::net::IpAddr;

use crate::base::IpProto;

pub mod parquet;
#[allow(unsafe_code)] // SSE2 byte compares of a line (spaces::marks, SAFETY there)
mod spaces;
#[cfg(test)]
mod tests;

/// The version 2 default format, in order.
pub const DEFAULT_FIELDS: [&str; 14] = [
    "version",
    "account-id",
    "interface-id",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "action",
    "log-status",
];

/// The field names AWS documents for custom formats besides the default
/// ones (versions 2 to 5 and later additions): a header line must consist
/// of these and [`DEFAULT_FIELDS`].
const LATER_FIELDS: &[&str] = &[
    "vpc-id",
    "subnet-id",
    "instance-id",
    "tcp-flags",
    "type",
    "pkt-srcaddr",
    "pkt-dstaddr",
    "region",
    "az-id",
    "sublocation-type",
    "sublocation-id",
    "pkt-src-aws-service",
    "pkt-dst-aws-service",
    "flow-direction",
    "traffic-path",
    "ecs-cluster-arn",
    "ecs-cluster-name",
    "ecs-container-instance-arn",
    "ecs-container-instance-id",
    "ecs-container-id",
    "ecs-second-container-id",
    "ecs-service-name",
    "ecs-task-definition-arn",
    "ecs-task-arn",
    "ecs-task-id",
    "reject-reason",
    "resource-id",
    "encryption-status",
];

/// Whether `name` is a field of VPC Flow Logs (any version).
fn is_known(name: &str) -> bool {
    DEFAULT_FIELDS.contains(&name) || LATER_FIELDS.contains(&name)
}

/// Whether `name` is shaped like a flow-log field name: lowercase ASCII
/// letters, digits and hyphens.
fn is_field_name(name: &&str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The words of a header or format line, `${…}` unwrapped as a format
/// string writes them. `None`: not text.
fn field_names(line: &[u8]) -> Option<Vec<&str>> {
    let line = std::str::from_utf8(line).ok()?;
    Some(
        line.split_ascii_whitespace()
            .map(|n| {
                n.trim_start_matches("${")
                    .trim_end_matches('}')
                    .trim_start_matches('$')
            })
            .collect(),
    )
}

/// What a column of the format is to the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Interface,
    SrcAddr,
    DstAddr,
    PktSrcAddr,
    PktDstAddr,
    SrcPort,
    DstPort,
    Protocol,
    Start,
    Action,
    LogStatus,
    FlowDirection,
    /// Read past.
    Other,
}

impl Column {
    fn of(name: &str) -> Column {
        match name {
            "interface-id" => Column::Interface,
            "srcaddr" => Column::SrcAddr,
            "dstaddr" => Column::DstAddr,
            "pkt-srcaddr" => Column::PktSrcAddr,
            "pkt-dstaddr" => Column::PktDstAddr,
            "srcport" => Column::SrcPort,
            "dstport" => Column::DstPort,
            "protocol" => Column::Protocol,
            "start" => Column::Start,
            "action" => Column::Action,
            "log-status" => Column::LogStatus,
            "flow-direction" => Column::FlowDirection,
            _ => Column::Other,
        }
    }
}

/// The fields of a file, in order, as its header names them (or the default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    pub fields: Vec<String>,
    /// Whether the first line was a header (else the default, headerless,
    /// or the format given).
    pub header: bool,
    /// Given by the user (`--log-format`), not read from the input.
    pub given: bool,
    columns: Vec<Column>,
}

/// Why a flow-log format cannot be judged.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormatError {
    #[error("the flow-log format has no {0} field, which judging a record needs")]
    Missing(&'static str),
    #[error(
        "the Parquet column {column} is of type {ty}, not the strings or integers of a flow log"
    )]
    ColumnType { column: String, ty: String },
    #[error("the flow-log header names the {0} field twice")]
    Duplicate(String),
    #[error(
        "the flow-log format is not field names (`${{version}} ${{srcaddr}} …` or `version srcaddr …`)"
    )]
    NotFieldNames,
}

impl Format {
    /// The version 2 default format without a header line.
    pub fn default_v2() -> Format {
        let mut f = Format::from_names(DEFAULT_FIELDS.iter().copied()).expect("complete");
        f.header = false;
        f
    }

    fn from_names<'a>(names: impl Iterator<Item = &'a str>) -> Result<Format, FormatError> {
        let fields: Vec<String> = names.map(str::to_string).collect();
        // Which of two columns of one name would count is anyone's guess.
        if let Some((_, dup)) = fields
            .iter()
            .enumerate()
            .find(|(i, f)| fields[..*i].contains(f))
        {
            return Err(FormatError::Duplicate(dup.clone()));
        }
        let columns: Vec<Column> = fields.iter().map(|n| Column::of(n)).collect();
        for (c, name) in [
            (Column::SrcAddr, "srcaddr"),
            (Column::DstAddr, "dstaddr"),
            (Column::Protocol, "protocol"),
            (Column::Action, "action"),
        ] {
            if !columns.contains(&c) {
                return Err(FormatError::Missing(name));
            }
        }
        Ok(Format {
            fields,
            header: true,
            given: false,
            columns,
        })
    }

    /// The format a flow log was created with, as AWS's `LogFormat` gives
    /// it (`${version} ${vpc-id} …`) or as plain field names: for lines
    /// that come without their header (CloudWatch Logs keeps no header).
    /// Names sgplane does not know are read past; a name not shaped like a
    /// field name is refused.
    pub fn from_log_format(text: &str) -> Result<Format, FormatError> {
        let names = field_names(text.as_bytes()).ok_or(FormatError::NotFieldNames)?;
        if names.is_empty() || !names.iter().all(is_field_name) {
            return Err(FormatError::NotFieldNames);
        }
        let mut f = Format::from_names(names.into_iter())?;
        f.header = false;
        f.given = true;
        Ok(f)
    }

    /// Whether `line` is this format's header: its field names, in order.
    fn is_header(&self, line: &[u8]) -> bool {
        field_names(line).is_some_and(|n| n.iter().eq(self.fields.iter()))
    }

    /// The fields of the format that sgplane does not know, in order: read
    /// past, not judged.
    pub fn unknown_fields(&self) -> Vec<&str> {
        self.fields
            .iter()
            .map(String::as_str)
            .filter(|f| !is_known(f))
            .collect()
    }

    /// The format a first line gives: a header of known field names (the
    /// custom formats; `${…}` as written in a format string is accepted),
    /// or a version 2 default record. `None`: not a flow log.
    pub fn recognise(first_line: &[u8]) -> Option<Result<Format, FormatError>> {
        let line = std::str::from_utf8(first_line).ok()?.trim_end();
        let names = field_names(first_line)?;
        if !names.is_empty() && names.iter().all(|n| is_known(n)) {
            return Some(Format::from_names(names.into_iter()));
        }
        // Field names sgplane does not know (one AWS added later, another
        // kind of flow log's): still a header when every word is shaped
        // like a field name and the addresses are among them. The fields
        // not known are read past and named in the summary; a format that
        // lacks what judging needs is refused, naming the field.
        let addresses = names.contains(&"srcaddr") && names.contains(&"dstaddr");
        if names.iter().all(is_field_name) && addresses {
            return Some(Format::from_names(names.into_iter()));
        }
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        let default = fields.len() == DEFAULT_FIELDS.len()
            && fields[0] == "2"
            && matches!(fields[13], "OK" | "NODATA" | "SKIPDATA");
        default.then(|| Ok(Format::default_v2()))
    }
}

/// The recorded action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Accept,
    Reject,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Accept => "ACCEPT",
            Action::Reject => "REJECT",
        }
    }
}

/// `flow-direction`, as seen at the record's interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowDirection {
    Ingress,
    Egress,
}

/// One flow at one interface in one aggregation window (`log-status` OK).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// `interface-id`, when the format has it and it is not `-`: its
    /// bytes, which are UTF-8 (a line of other bytes is no record) but
    /// are compared as bytes, not checked again for each record.
    pub interface: Option<&'a [u8]>,
    /// `pkt-srcaddr` when present, else `srcaddr`: the packet's own
    /// address, which the security groups see (`srcaddr` is the
    /// interface's primary address for traffic of its secondary ones).
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: IpProto,
    /// For TCP and UDP only.
    pub sport: Option<u16>,
    pub dport: Option<u16>,
    /// `start`, seconds since the Unix epoch.
    pub start: Option<u64>,
    pub action: Action,
    pub direction: Option<FlowDirection>,
}

/// What a line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry<'a> {
    Record(Record<'a>),
    /// `log-status` NODATA: no traffic in the window.
    NoData,
    /// `log-status` SKIPDATA: records AWS could not capture.
    SkipData,
    Malformed(Malformed),
}

/// Why a line is not a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("{got} fields where the format has {expected}")]
    FieldCount { expected: usize, got: usize },
    #[error("bad {field} field")]
    Field { field: &'static str },
    #[error("not text")]
    NotText,
}

fn bad(field: &'static str) -> Malformed {
    Malformed::Field { field }
}

impl Format {
    /// Reads one line (without its line end).
    pub fn parse<'a>(&self, line: &'a [u8]) -> Entry<'a> {
        match self.fields_of(line) {
            Ok(e) => e,
            Err(m) => Entry::Malformed(m),
        }
    }

    fn fields_of<'a>(&self, line: &'a [u8]) -> Result<Entry<'a>, Malformed> {
        let mut raw = Fields::default();
        let n = match self.split_spaced(line, &mut raw) {
            Some(n) => n,
            None => {
                raw = Fields::default();
                self.split_any(line, &mut raw)?
            }
        };
        if n != self.columns.len() {
            return Err(Malformed::FieldCount {
                expected: self.columns.len(),
                got: n,
            });
        }
        raw.entry()
    }

    /// Puts a word into its column's place.
    #[inline]
    fn put<'a>(&self, raw: &mut Fields<'a>, n: usize, field: &'a [u8]) {
        if let Some(&c) = self.columns.get(n) {
            if c != Column::Other {
                // "-" is a field with no value, but never a log-status:
                // only a format without that field has records by default.
                raw.0[c as usize] = if field == b"-" && c != Column::LogStatus {
                    Value::Absent
                } else {
                    Value::Text(field)
                };
            }
        }
    }

    /// The words of a line of printable ASCII between spaces (as flow logs
    /// are written), its spaces found 64 bytes at a time ([`spaces::block`]);
    /// returns how many. `None`: the line has another byte (a tab, a
    /// control or a non-ASCII byte), for [`Format::split_any`] to read.
    #[inline]
    fn split_spaced<'a>(&self, b: &'a [u8], raw: &mut Fields<'a>) -> Option<usize> {
        // A word ends at each space (the bytes after the last space, at
        // the line's end); a space right after another ends none.
        let (mut n, mut start) = (0, 0);
        let mut base = 0;
        while base < b.len() {
            let mut spaces = spaces::block(b, base)?;
            while spaces != 0 {
                let at = base + spaces.trailing_zeros() as usize;
                if at > start {
                    self.put(raw, n, &b[start..at]);
                    n += 1;
                }
                start = at + 1;
                spaces &= spaces - 1;
            }
            base += 64;
        }
        if start < b.len() {
            self.put(raw, n, &b[start..]);
            n += 1;
        }
        Some(n)
    }

    /// The words of any line between ASCII whitespace, as
    /// `split_ascii_whitespace` gives them; the line must be UTF-8.
    fn split_any<'a>(&self, line: &'a [u8], raw: &mut Fields<'a>) -> Result<usize, Malformed> {
        std::str::from_utf8(line).map_err(|_| Malformed::NotText)?;
        let b = line;
        let (mut i, mut n) = (0, 0);
        loop {
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if i == b.len() {
                return Ok(n);
            }
            let start = i;
            while i < b.len() && !b[i].is_ascii_whitespace() {
                i += 1;
            }
            self.put(raw, n, &b[start..i]);
            n += 1;
        }
    }
}

/// A field's value as read: a word of a text line, or a Parquet column's
/// value. `-` in text and null in Parquet are both [`Value::Absent`], so
/// a record reads the same from either.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Value<'a> {
    #[default]
    Absent,
    /// A word of a text line (checked to be UTF-8 only where it is read
    /// as text).
    Text(&'a [u8]),
    /// A Parquet string (UTF-8 already).
    Str(&'a str),
    Int(i64),
}

/// The judged fields of one record, by [`Column`] (absent where the format
/// has no such field).
#[derive(Debug, Default)]
pub(crate) struct Fields<'a>(pub(crate) [Value<'a>; JUDGED]);

/// The columns a record is judged by (all but [`Column::Other`]).
pub(crate) const JUDGED: usize = Column::Other as usize;

impl<'a> Fields<'a> {
    fn get(&self, c: Column) -> Value<'a> {
        self.0[c as usize]
    }

    /// A field with a string's value as its bytes.
    fn bytes(&self, c: Column) -> Value<'a> {
        match self.get(c) {
            Value::Str(s) => Value::Text(s.as_bytes()),
            v => v,
        }
    }

    /// The bytes of a word field; an integer is no word.
    fn word(&self, c: Column) -> Option<&'a [u8]> {
        match self.get(c) {
            Value::Text(s) => Some(s),
            Value::Str(s) => Some(s.as_bytes()),
            _ => None,
        }
    }

    /// An unsigned integer field up to `max` from its digits (as
    /// `str::parse` reads them: an optional `+`, decimal digits) or its
    /// integer, `None` when absent.
    #[inline]
    fn number(&self, c: Column, name: &'static str, max: u64) -> Result<Option<u64>, Malformed> {
        self.number_up_to(c, max).ok_or(bad(name))
    }

    /// [`Fields::number`] with a small result (in registers): `None` for a
    /// bad field, `Some(None)` for an absent one.
    #[inline(always)]
    fn number_up_to(&self, c: Column, max: u64) -> Option<Option<u64>> {
        match self.get(c) {
            Value::Absent => Some(None),
            Value::Text(s) => parse_uint(s, max).map(Some),
            Value::Str(s) => parse_uint(s.as_bytes(), max).map(Some),
            Value::Int(n) => u64::try_from(n).ok().filter(|&n| n <= max).map(Some),
        }
    }

    #[inline]
    fn addr(&self, c: Column, name: &'static str) -> Result<IpAddr, Malformed> {
        self.word(c).and_then(parse_addr).ok_or(bad(name))
    }

    /// What the fields make: a record, NODATA, SKIPDATA, or why none.
    pub(crate) fn entry(&self) -> Result<Entry<'a>, Malformed> {
        match self.bytes(Column::LogStatus) {
            Value::Text(b"NODATA") => return Ok(Entry::NoData),
            Value::Text(b"SKIPDATA") => return Ok(Entry::SkipData),
            // A custom format without log-status has records only.
            Value::Text(b"OK") | Value::Absent => {}
            _ => return Err(bad("log-status")),
        }
        let pkt = |c: Column, name, or: IpAddr| match self.get(c) {
            Value::Absent => Ok(or),
            _ => self.addr(c, name),
        };
        let src = pkt(
            Column::PktSrcAddr,
            "pkt-srcaddr",
            self.addr(Column::SrcAddr, "srcaddr")?,
        )?;
        let dst = pkt(
            Column::PktDstAddr,
            "pkt-dstaddr",
            self.addr(Column::DstAddr, "dstaddr")?,
        )?;
        let proto = self
            .number_up_to(Column::Protocol, u8::MAX.into())
            .flatten()
            .ok_or(bad("protocol"))?;
        let proto = IpProto(proto as u8);
        let port = |c, name| {
            self.number_up_to(c, u16::MAX.into())
                .map(|p| p.map(|p| p as u16))
                .ok_or(bad(name))
        };
        let (sport, dport) = (
            port(Column::SrcPort, "srcport")?,
            port(Column::DstPort, "dstport")?,
        );
        let (sport, dport) = match (proto.has_ports(), sport, dport) {
            (true, Some(s), Some(d)) => (Some(s), Some(d)),
            (true, ..) => return Err(bad("srcport/dstport")),
            (false, ..) => (None, None),
        };
        let start = self.number(Column::Start, "start", u64::MAX)?;
        let action = match self.bytes(Column::Action) {
            Value::Text(b"ACCEPT") => Action::Accept,
            Value::Text(b"REJECT") => Action::Reject,
            _ => return Err(bad("action")),
        };
        let direction = match self.bytes(Column::FlowDirection) {
            Value::Absent => None,
            Value::Text(b"ingress") => Some(FlowDirection::Ingress),
            Value::Text(b"egress") => Some(FlowDirection::Egress),
            _ => return Err(bad("flow-direction")),
        };
        let interface = match self.get(Column::Interface) {
            Value::Absent => None,
            // A text line is UTF-8 (checked whole), an arrow string too.
            Value::Str(s) => Some(s.as_bytes()),
            Value::Text(s) => Some(s),
            Value::Int(_) => return Err(bad("interface-id")),
        };
        Ok(Entry::Record(Record {
            interface,
            src,
            dst,
            proto,
            sport,
            dport,
            start,
            action,
            direction,
        }))
    }
}

/// An unsigned integer up to `max` as `str::parse` reads one: an
/// optional `+`, then at least one decimal digit.
#[inline(always)]
fn parse_uint(s: &[u8], max: u64) -> Option<u64> {
    let digits = match s {
        [b'+', rest @ ..] => rest,
        _ => s,
    };
    if digits.is_empty() {
        return None;
    }
    let mut v = 0u64;
    if digits.len() <= 19 {
        // Nineteen digits fit a u64: no overflow to check for.
        if digits.len() >= 8 {
            return long_uint(digits).filter(|&v| v <= max);
        }
        for &c in digits {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                return None;
            }
            v = v * 10 + u64::from(d);
        }
    } else {
        for &c in digits {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                return None;
            }
            v = v.checked_mul(10)?.checked_add(u64::from(d))?;
        }
    }
    (v <= max).then_some(v)
}

/// 8 to 19 digits (a `start` has ten) as their number, eight at a time
/// while there are, then one at a time. Not inlined: the short numbers'
/// parse stays small.
#[inline(never)]
fn long_uint(digits: &[u8]) -> Option<u64> {
    let mut v = 0u64;
    let mut rest = digits;
    while let Some((eight, tail)) = rest.split_first_chunk::<8>() {
        v = v * 100_000_000 + eight_digits(u64::from_le_bytes(*eight))?;
        rest = tail;
    }
    for &c in rest {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + u64::from(d);
    }
    Some(v)
}

/// Eight ASCII digits, the first in the lowest byte, as their number;
/// `None` when a byte is not a digit.
#[inline]
fn eight_digits(w: u64) -> Option<u64> {
    const HIGH_NIBBLES: u64 = 0xf0f0_f0f0_f0f0_f0f0;
    // A digit's high nibble is 3, and still 3 with 6 added (a byte that
    // carries into the next fails its own test first).
    let nibbles =
        (w & HIGH_NIBBLES) | ((w.wrapping_add(0x0606_0606_0606_0606) & HIGH_NIBBLES) >> 4);
    if nibbles != 0x3333_3333_3333_3333 {
        return None;
    }
    // Digits to pairs, fours, eight: no lane carries into the next.
    let mut d = w - 0x3030_3030_3030_3030;
    d = (d * 10 + (d >> 8)) & 0x00ff_00ff_00ff_00ff;
    d = (d * 100 + (d >> 16)) & 0x0000_ffff_0000_ffff;
    d = (d * 10_000 + (d >> 32)) & 0xffff_ffff;
    Some(d)
}

/// An address as `str::parse` reads it, dotted IPv4 the quick way (what
/// it takes, std takes alike; anything else goes to std).
#[inline(always)]
fn parse_addr(s: &[u8]) -> Option<IpAddr> {
    /// Four parts of 1-3 digits between dots, none with a leading zero
    /// (std refuses those), each at most 255; anything else is std's.
    #[inline]
    fn v4(b: &[u8]) -> Option<[u8; 4]> {
        if !(7..=15).contains(&b.len()) {
            return None;
        }
        let digit = |i: usize| b.get(i).map(|c| c.wrapping_sub(b'0')).filter(|&d| d <= 9);
        let mut out = [0u8; 4];
        let mut i = 0;
        for (k, o) in out.iter_mut().enumerate() {
            if k > 0 {
                if b.get(i) != Some(&b'.') {
                    return None;
                }
                i += 1;
            }
            let first = digit(i)?;
            let mut v = u32::from(first);
            i += 1;
            if let Some(d) = digit(i) {
                if first == 0 {
                    return None;
                }
                v = v * 10 + u32::from(d);
                i += 1;
                if let Some(d) = digit(i) {
                    v = v * 10 + u32::from(d);
                    i += 1;
                    if v > 255 {
                        return None;
                    }
                }
            }
            *o = v as u8;
        }
        (i == b.len()).then_some(out)
    }
    match v4(s) {
        Some(o) => Some(IpAddr::from(o)),
        None => std::str::from_utf8(s).ok()?.parse().ok(),
    }
}

/// A flow log being read: its format and its records, one at a time, from
/// text lines (into a buffer the reader keeps) or from Parquet row batches.
pub struct Reader {
    format: Format,
    gzip: bool,
    /// 1-based number of the line (Parquet: the row) last read.
    number: u64,
    source: Source,
}

enum Source {
    Text(Lines),
    Parquet(Box<parquet::Rows>),
}

/// Bytes read ahead into one block, lines found in it where they lie.
const BLOCK: usize = 1 << 18;

/// The lines of a text input, read a block at a time into a buffer the
/// reader keeps; a line is given where it lies in the block.
struct Lines {
    input: Box<dyn BufRead + Send>,
    buf: Vec<u8>,
    /// The bytes not yet given are `buf[start..end]`.
    start: usize,
    end: usize,
    /// Where in `buf[start..end]` no line end has been found.
    searched: usize,
    eof: bool,
}

impl Lines {
    /// The next line, without its line end: its place in `buf`.
    fn next(&mut self) -> io::Result<Option<(usize, usize)>> {
        loop {
            let from = self.start.max(self.searched);
            if let Some(p) = memchr::memchr(b'\n', &self.buf[from..self.end]) {
                let line = (self.start, from + p);
                self.start = from + p + 1;
                return Ok(Some(line));
            }
            self.searched = self.end;
            if self.eof {
                if self.start < self.end {
                    let line = (self.start, self.end);
                    self.start = self.end;
                    return Ok(Some(line));
                }
                return Ok(None);
            }
            // The partial line to the front, then read after it (a line
            // longer than the buffer doubles it).
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.searched -= self.start;
                self.start = 0;
            }
            if self.end == self.buf.len() {
                self.buf.resize(self.buf.len() * 2, 0);
            }
            match self.input.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl Reader {
    pub fn format(&self) -> &Format {
        &self.format
    }

    pub fn gzip(&self) -> bool {
        self.gzip
    }

    /// Whether the records come from a Parquet file.
    pub fn parquet(&self) -> bool {
        matches!(self.source, Source::Parquet(_))
    }

    /// The record `d` places after the next one, where it is at hand
    /// without reading on (a Parquet row of the batch decoded, of the
    /// usual kind): for bringing what judges it into the cache ahead.
    /// `None` otherwise, and always for text.
    #[inline]
    pub fn ahead(&self, d: usize) -> Option<(IpAddr, IpAddr)> {
        match &self.source {
            Source::Text(_) => None,
            Source::Parquet(rows) => rows.ahead(d),
        }
    }

    /// The next row's record and its row number, where the row is a
    /// record read column-wise (a Parquet log's usual row): inlined into
    /// the caller, so the record is built where it is used. `None`
    /// otherwise, and nothing read: [`Reader::next_entry`] reads it.
    #[inline(always)]
    pub fn next_record_read(&mut self) -> Option<(u64, Record<'_>)> {
        let Source::Parquet(rows) = &mut self.source else {
            return None;
        };
        let r = rows.take_record()?;
        self.number += 1;
        Some((self.number, r))
    }

    /// The next record and its 1-based line number (Parquet: row number);
    /// blank lines are skipped. `None` at the end.
    pub fn next_entry(&mut self) -> io::Result<Option<(u64, Entry<'_>)>> {
        match &mut self.source {
            Source::Text(lines) => {
                let (a, b) = loop {
                    let Some((a, b)) = lines.next()? else {
                        return Ok(None);
                    };
                    self.number += 1;
                    if !lines.buf[a..b].trim_ascii().is_empty() {
                        break (a, b);
                    }
                };
                let line = lines.buf[a..b].trim_ascii_end();
                Ok(Some((self.number, self.format.parse(line))))
            }
            Source::Parquet(rows) => match rows.next_entry()? {
                Some(e) => {
                    self.number += 1;
                    Ok(Some((self.number, e)))
                }
                None => Ok(None),
            },
        }
    }
}

/// What an input is, by its first bytes.
pub enum Sniffed<R> {
    /// A flow log, ready to read.
    FlowLog(Reader),
    /// Something else: the input, with the bytes looked at put back.
    Other(io::Chain<io::Cursor<Vec<u8>>, R>),
    /// A flow log whose header names too little to judge a record.
    BadFormat(FormatError),
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Looks at the start of `input`: gzip is decompressed and must be a flow
/// log; text is one when its first line is a header or a default record;
/// anything else is handed back whole for the capture reader.
pub fn sniff<R: Read + Send + 'static>(mut input: R) -> io::Result<Sniffed<R>> {
    let mut magic = Vec::with_capacity(4);
    (&mut input).take(4).read_to_end(&mut magic)?;
    if magic == parquet::MAGIC {
        // Parquet's footer is at the end: the whole input is read first.
        let mut all = magic;
        input.read_to_end(&mut all)?;
        return Ok(match parquet::open(bytes::Bytes::from(all))? {
            Ok(r) => Sniffed::FlowLog(r),
            Err(e) => Sniffed::BadFormat(e),
        });
    }
    let rest = io::Cursor::new(magic.clone()).chain(input);
    let magic = &magic[..magic.len().min(2)];
    if magic == GZIP_MAGIC {
        let gz = flate2::read::MultiGzDecoder::new(rest);
        let mut text = BufReader::with_capacity(1 << 16, gz);
        let (first, number, _) = first_line(&mut text)?;
        return match Format::recognise(first.trim_ascii()) {
            Some(Ok(format)) => Ok(Sniffed::FlowLog(Reader::new(
                text, format, true, first, number,
            ))),
            Some(Err(e)) => Ok(Sniffed::BadFormat(e)),
            None => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "gzip data that is not a VPC flow log",
            )),
        };
    }
    if !looks_like_text(magic) {
        return Ok(Sniffed::Other(rest));
    }
    let mut text = BufReader::with_capacity(1 << 16, rest);
    let (first, number, seen) = first_line(&mut text)?;
    match Format::recognise(first.trim_ascii()) {
        Some(Ok(format)) => Ok(Sniffed::FlowLog(Reader::new(
            text, format, false, first, number,
        ))),
        Some(Err(e)) => Ok(Sniffed::BadFormat(e)),
        None => {
            // Not a flow log: every byte read goes back, in order, for the
            // capture reader to judge (and name what it is not).
            let mut back = seen;
            back.extend_from_slice(text.buffer());
            let (cursor, input) = text.into_inner().into_inner();
            let at = (cursor.position() as usize).min(cursor.get_ref().len());
            back.extend_from_slice(&cursor.get_ref()[at..]);
            Ok(Sniffed::Other(io::Cursor::new(back).chain(input)))
        }
    }
}

/// Reads `input` as a flow log in `format` (`--log-format`): text or
/// gzip, whose first line is skipped when it is the format's header.
/// Parquet names its own columns: it is read by them, `format` unused.
pub fn open_as<R: Read + Send + 'static>(mut input: R, format: Format) -> io::Result<Reader> {
    let mut magic = Vec::with_capacity(4);
    (&mut input).take(4).read_to_end(&mut magic)?;
    if magic == parquet::MAGIC {
        let mut all = magic;
        input.read_to_end(&mut all)?;
        return parquet::open(bytes::Bytes::from(all))?
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e));
    }
    let gzip = magic.get(..2) == Some(&GZIP_MAGIC[..]);
    let rest = io::Cursor::new(magic).chain(input);
    let mut text: Box<dyn BufRead + Send> = if gzip {
        Box::new(BufReader::with_capacity(
            1 << 16,
            flate2::read::MultiGzDecoder::new(rest),
        ))
    } else {
        Box::new(BufReader::with_capacity(1 << 16, rest))
    };
    let (first, number, _) = first_line(&mut text)?;
    let header = format.is_header(first.trim_ascii());
    let format = Format { header, ..format };
    Ok(Reader::new(text, format, gzip, first, number))
}

/// The first non-blank line, its 1-based number, and every byte read for it.
fn first_line(text: &mut impl BufRead) -> io::Result<(Vec<u8>, u64, Vec<u8>)> {
    let (mut first, mut number, mut seen) = (Vec::new(), 0, Vec::new());
    loop {
        first.clear();
        if text.read_until(b'\n', &mut first)? == 0 {
            break;
        }
        seen.extend_from_slice(&first);
        number += 1;
        if !first.trim_ascii().is_empty() {
            break;
        }
    }
    Ok((first, number, seen))
}

impl Reader {
    fn new(
        input: impl BufRead + Send + 'static,
        format: Format,
        gzip: bool,
        first: Vec<u8>,
        number: u64,
    ) -> Reader {
        // The first line, when it is a record (no header), is read again
        // from the block (an empty input has no first line to give).
        let again = !format.header && !first.trim_ascii().is_empty();
        let mut buf = vec![0; BLOCK.max(first.len() * 2)];
        let (end, number) = if again {
            buf[..first.len()].copy_from_slice(&first);
            (first.len(), number - 1)
        } else {
            (0, number)
        };
        Reader {
            source: Source::Text(Lines {
                input: Box::new(input),
                buf,
                start: 0,
                end,
                searched: 0,
                eof: false,
            }),
            format,
            gzip,
            number,
        }
    }
}

/// Whether two bytes can start a text flow log (printable ASCII or
/// whitespace): pcap's magic numbers cannot, pcapng's (`0a 0d`) is excluded.
fn looks_like_text(b: &[u8]) -> bool {
    b.len() == 2
        && b != [0x0a, 0x0d]
        && b.iter()
            .all(|&c| c.is_ascii_graphic() || c.is_ascii_whitespace())
}
