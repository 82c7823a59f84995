//! AWS VPC Flow Logs read back (SPEC §10): the version 2 default format
//! without a header, or any custom format from its header line of field
//! names; plain text or gzip, recognised by content ([`sniff`]).
//!
//! A record is read into a [`Record`] borrowing the line; a line that is
//! not one is a [`Malformed`] value with its line number, never a panic.
//! Fields a record does not need (counts, times, ids) are skipped unparsed.

use std::io::{self, BufRead, BufReader, Read};
use std::net::IpAddr;

use crate::base::IpProto;

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

/// Every field name AWS documents for custom formats (versions 2 to 5 and
/// later additions): a header line must consist of these.
const KNOWN_FIELDS: &[&str] = &[
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
    /// Whether the first line was a header (else the default, headerless).
    pub header: bool,
    columns: Vec<Column>,
}

/// Why a flow-log format cannot be judged.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormatError {
    #[error("the flow-log format has no {0} field, which judging a record needs")]
    Missing(&'static str),
    #[error("the flow-log header names the {0} field twice")]
    Duplicate(String),
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
            columns,
        })
    }

    /// The format a first line gives: a header of known field names (the
    /// custom formats; `${…}` as written in a format string is accepted),
    /// or a version 2 default record. `None`: not a flow log.
    pub fn recognise(first_line: &[u8]) -> Option<Result<Format, FormatError>> {
        let line = std::str::from_utf8(first_line).ok()?.trim_end();
        let names: Vec<&str> = line
            .split_ascii_whitespace()
            .map(|n| {
                n.trim_start_matches("${")
                    .trim_end_matches('}')
                    .trim_start_matches('$')
            })
            .collect();
        if !names.is_empty() && names.iter().all(|n| KNOWN_FIELDS.contains(n)) {
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
    /// `interface-id`, when the format has it and it is not `-`.
    pub interface: Option<&'a str>,
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
        let line = std::str::from_utf8(line).map_err(|_| Malformed::NotText)?;
        let mut raw: [&str; 12] = ["-"; 12];
        let mut n = 0;
        for (i, field) in line.split_ascii_whitespace().enumerate() {
            n += 1;
            if let Some(&c) = self.columns.get(i) {
                if c != Column::Other {
                    raw[c as usize] = field;
                }
            }
        }
        if n != self.columns.len() {
            return Err(Malformed::FieldCount {
                expected: self.columns.len(),
                got: n,
            });
        }
        let get = |c: Column| raw[c as usize];
        match get(Column::LogStatus) {
            "NODATA" => return Ok(Entry::NoData),
            "SKIPDATA" => return Ok(Entry::SkipData),
            // A custom format without log-status has records only.
            "OK" | "-" => {}
            _ => return Err(bad("log-status")),
        }
        let addr = |c: Column, name| get(c).parse::<IpAddr>().map_err(|_| bad(name));
        let pkt = |c: Column, name, or: IpAddr| match get(c) {
            "-" => Ok(or),
            _ => addr(c, name),
        };
        let src = pkt(
            Column::PktSrcAddr,
            "pkt-srcaddr",
            addr(Column::SrcAddr, "srcaddr")?,
        )?;
        let dst = pkt(
            Column::PktDstAddr,
            "pkt-dstaddr",
            addr(Column::DstAddr, "dstaddr")?,
        )?;
        let proto = IpProto(get(Column::Protocol).parse().map_err(|_| bad("protocol"))?);
        let port = |c: Column, name| match get(c) {
            "-" => Ok(None),
            s => s.parse::<u16>().map(Some).map_err(|_| bad(name)),
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
        let start = match get(Column::Start) {
            "-" => None,
            s => Some(s.parse().map_err(|_| bad("start"))?),
        };
        let action = match get(Column::Action) {
            "ACCEPT" => Action::Accept,
            "REJECT" => Action::Reject,
            _ => return Err(bad("action")),
        };
        let direction = match get(Column::FlowDirection) {
            "-" => None,
            "ingress" => Some(FlowDirection::Ingress),
            "egress" => Some(FlowDirection::Egress),
            _ => return Err(bad("flow-direction")),
        };
        let interface = Some(get(Column::Interface)).filter(|s| *s != "-");
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

/// A flow log being read: its format and its lines, one at a time into a
/// buffer the reader keeps.
pub struct Reader {
    input: Box<dyn BufRead + Send>,
    format: Format,
    gzip: bool,
    line: Vec<u8>,
    /// 1-based number of the line last read.
    number: u64,
    /// The first line, when it is a record (no header), still to be given.
    pending_first: bool,
}

impl Reader {
    pub fn format(&self) -> &Format {
        &self.format
    }

    pub fn gzip(&self) -> bool {
        self.gzip
    }

    /// The next line and its 1-based number; blank lines are skipped.
    /// `None` at the end.
    pub fn next_entry(&mut self) -> io::Result<Option<(u64, Entry<'_>)>> {
        if self.pending_first {
            self.pending_first = false;
        } else {
            loop {
                self.line.clear();
                if self.input.read_until(b'\n', &mut self.line)? == 0 {
                    return Ok(None);
                }
                self.number += 1;
                if !self.line.trim_ascii().is_empty() {
                    break;
                }
            }
        }
        let line = self.line.trim_ascii_end();
        Ok(Some((self.number, self.format.parse(line))))
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
    let mut magic = Vec::with_capacity(2);
    (&mut input).take(2).read_to_end(&mut magic)?;
    let rest = io::Cursor::new(magic.clone()).chain(input);
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
    if !looks_like_text(&magic) {
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
        Reader {
            pending_first: !format.header,
            input: Box::new(input),
            format,
            gzip,
            line: first,
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
