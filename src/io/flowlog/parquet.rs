//! VPC Flow Logs as AWS delivers them in Parquet: one column per field of
//! the log's format, named as the field with `-` written `_`
//! (`interface_id`, `log_status`, `flow_direction`), strings as STRING,
//! `version`, `srcport`, `dstport`, `protocol`, `tcp_flags` and
//! `traffic_path` as INT_32, `packets`, `bytes`, `start` and `end` as INT_64,
//! Gzip-compressed pages; a field not applicable to a record is null.
//!
//! A row reads as the text line would ([`super::Fields`]): null is `-`,
//! integers are taken as their digits, so a record is judged exactly as its
//! text line is, and a row that is no record (a null address, a port out of
//! range) is malformed with its row number, never a panic. Only the columns
//! a record is judged by are decoded. Integer columns of any width and
//! string columns of any arrow string type are read, whatever AWS chose.
//!
//! Parquet's index is at the end of the file, so the reader needs all of
//! it: a file is read where it lies, standard input into memory first.
//!
//! A damaged file is an error, never a crash: the column chunks the footer
//! lists are checked to lie inside the file before any is read, and what
//! the `parquet` crate still panics on in a damaged file (its decoders
//! assert as well as return errors) is contained ([`contained`]) and
//! reported as an error like the others.

use std::fs::File;
use std::io::{self, BufRead, Write};
use std::sync::Arc;

use ::parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader,
    ParquetRecordBatchReaderBuilder,
};
use ::parquet::arrow::ArrowWriter;
use ::parquet::arrow::ProjectionMask;
use ::parquet::basic::{Compression, GzipLevel};
use ::parquet::file::metadata::ParquetMetaData;
use ::parquet::file::properties::WriterProperties;
use ::parquet::file::reader::ChunkReader;
use arrow_array::builder::{Int32Builder, Int64Builder, StringBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{
    Array, ArrayRef, ArrowPrimitiveType, GenericStringArray, Int32Array, Int64Array,
    PrimitiveArray, RecordBatch, StringArray, StringViewArray,
};
use arrow_schema::{DataType, Field, Schema};
use bytes::Bytes;

use super::{
    parse_addr, Action, Column, Entry, Fields, FlowDirection, Format, FormatError, Reader, Record,
    Source, Value, JUDGED,
};
use crate::base::IpProto;
use std::net::IpAddr;

/// The first (and last) four bytes of a Parquet file.
pub const MAGIC: &[u8; 4] = b"PAR1";

/// Rows decoded at a time.
const BATCH: usize = 8192;

/// A flow-log field name from a Parquet column name (`log_status`:
/// `log-status`).
pub fn field_name(column: &str) -> String {
    column.replace('_', "-")
}

/// A Parquet column name from a flow-log field name.
pub fn column_name(field: &str) -> String {
    field.replace('-', "_")
}

/// Opens a Parquet flow log in a file, read where it lies.
pub fn open_file(file: File) -> io::Result<Result<Reader, FormatError>> {
    open(file)
}

/// Opens a Parquet flow log: its columns name the format's fields.
/// `Err`: not a readable Parquet file; `Ok(Err)`: a Parquet file whose
/// columns cannot be a flow log judged (no `srcaddr`, a column of floats).
pub fn open<T: ChunkReader + 'static>(input: T) -> io::Result<Result<Reader, FormatError>> {
    let file_len = input.len();
    let meta = contained(|| ArrowReaderMetadata::load(&input, ArrowReaderOptions::new()))?
        .map_err(invalid)?;
    inside(meta.metadata(), file_len)?;
    let schema = meta.schema().clone();
    // String columns are read as dictionaries where the reader can (a
    // Parquet string column is dictionary-encoded unless it grew past the
    // writer's dictionary): a value (an address, an interface) is then
    // read once per dictionary entry, not once per row.
    let hint = Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Utf8 => f.as_ref().clone().with_data_type(DataType::Dictionary(
                    Box::new(DataType::Int32),
                    Box::new(DataType::Utf8),
                )),
                _ => f.as_ref().clone(),
            })
            .collect::<Vec<_>>(),
    ));
    let options = ArrowReaderOptions::new().with_schema(hint);
    let meta = match contained(|| ArrowReaderMetadata::try_new(meta.metadata().clone(), options)) {
        Ok(Ok(hinted)) => hinted,
        // Strings as they are, where a dictionary cannot be had.
        _ => meta,
    };
    let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(input, meta);
    let names: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| field_name(f.name()))
        .collect();
    let format = match Format::from_names(names.iter().map(String::as_str)) {
        Ok(f) => f,
        Err(e) => return Ok(Err(e)),
    };
    // The judged columns, in file order (as a projected batch has them).
    let mut judged = Vec::new();
    for (i, (f, &c)) in schema.fields().iter().zip(&format.columns).enumerate() {
        if c == Column::Other || judged.iter().any(|&(_, j)| j == c) {
            continue;
        }
        if !readable(f.data_type()) {
            return Ok(Err(FormatError::ColumnType {
                column: f.name().clone(),
                ty: f.data_type().to_string(),
            }));
        }
        judged.push((i, c));
    }
    let mask = ProjectionMask::roots(
        builder.parquet_schema(),
        judged.iter().map(|&(i, _)| i).collect::<Vec<_>>(),
    );
    let batches = contained(|| builder.with_projection(mask).with_batch_size(BATCH).build())?
        .map_err(invalid)?;
    let rows = Rows {
        batches,
        judged: judged.into_iter().map(|(_, c)| c).collect(),
        cols: Vec::new(),
        fast: None,
        decoded: Vec::new(),
        tables: Tables::default(),
        len: 0,
        row: 0,
        failed: false,
        #[cfg(test)]
        fast_rows: 0,
        #[cfg(test)]
        row_wise: false,
    };
    Ok(Ok(Reader {
        format,
        gzip: false,
        number: 0,
        source: Source::Parquet(Box::new(rows)),
    }))
}

/// Opens a Parquet flow log held in memory.
pub fn open_bytes(bytes: Bytes) -> io::Result<Result<Reader, FormatError>> {
    open(bytes)
}

/// Checks that every column chunk the footer lists lies inside the file
/// (the `parquet` crate asserts, rather than checks, that their offsets and
/// sizes are not negative when it comes to read them).
fn inside(meta: &ParquetMetaData, file_len: u64) -> io::Result<()> {
    for (g, group) in meta.row_groups().iter().enumerate() {
        for (c, col) in group.columns().iter().enumerate() {
            let start = col
                .dictionary_page_offset()
                .unwrap_or_else(|| col.data_page_offset());
            let len = col.compressed_size();
            let fits = u64::try_from(start)
                .ok()
                .zip(u64::try_from(len).ok())
                .and_then(|(s, l)| s.checked_add(l))
                .is_some_and(|end| end <= file_len);
            if !fits {
                return Err(invalid(format!(
                    "column chunk {c} of row group {g} is not inside the file \
                     (offset {start}, {len} bytes, the file has {file_len})"
                )));
            }
        }
    }
    Ok(())
}

/// Runs `f`, a call into the `parquet` crate on a file's bytes: a panic in
/// it (an assertion of its decoders on a damaged file) becomes an error
/// saying so, and prints nothing. Only calls into the crate are wrapped,
/// so a panic of sgplane's own code stays a panic.
fn contained<T>(f: impl FnOnce() -> T) -> io::Result<T> {
    quiet_panics();
    QUIET.set(true);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    QUIET.set(false);
    r.map_err(|payload| {
        let why = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        invalid(format!("the Parquet decoder failed on it: {why}"))
    })
}

thread_local! {
    /// Set while [`contained`] runs a call: its panic is not printed.
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Installs, once, a panic hook that stays silent for a panic inside
/// [`contained`] and otherwise hands the panic to the hook it replaced.
fn quiet_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let before = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.get() {
                before(info);
            }
        }));
    });
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("not a readable Parquet flow log: {e}"),
    )
}

/// Whether a column of this type can hold a flow-log field.
fn readable(t: &DataType) -> bool {
    use DataType::*;
    matches!(
        t,
        Utf8 | LargeUtf8
            | Utf8View
            | Int8
            | Int16
            | Int32
            | Int64
            | UInt8
            | UInt16
            | UInt32
            | UInt64
    )
}

/// One judged column of the batch at hand, typed.
enum Col {
    /// Strings as a dictionary: each row's key into the values.
    Dict(Int32Array, StringArray),
    Str(GenericStringArray<i32>),
    LargeStr(GenericStringArray<i64>),
    View(StringViewArray),
    /// Integers of every width, widened (an unsigned 64-bit value past
    /// `i64::MAX` becomes -1: out of range for every field, so malformed).
    Int(Int64Array),
}

impl Col {
    fn of(a: &ArrayRef) -> Col {
        fn widen<T: arrow_array::ArrowPrimitiveType>(
            a: &PrimitiveArray<T>,
            f: impl Fn(T::Native) -> i64,
        ) -> Col {
            Col::Int(a.unary(f))
        }
        match a.data_type() {
            DataType::Dictionary(k, v) if **k == DataType::Int32 && **v == DataType::Utf8 => {
                let d = a.as_dictionary::<Int32Type>();
                Col::Dict(d.keys().clone(), d.values().as_string::<i32>().clone())
            }
            DataType::Utf8 => Col::Str(a.as_string::<i32>().clone()),
            DataType::LargeUtf8 => Col::LargeStr(a.as_string::<i64>().clone()),
            DataType::Utf8View => Col::View(a.as_string_view().clone()),
            DataType::Int64 => Col::Int(a.as_primitive::<Int64Type>().clone()),
            DataType::Int32 => widen(a.as_primitive::<Int32Type>(), i64::from),
            DataType::Int16 => widen(a.as_primitive::<Int16Type>(), i64::from),
            DataType::Int8 => widen(a.as_primitive::<Int8Type>(), i64::from),
            DataType::UInt32 => widen(a.as_primitive::<UInt32Type>(), i64::from),
            DataType::UInt16 => widen(a.as_primitive::<UInt16Type>(), i64::from),
            DataType::UInt8 => widen(a.as_primitive::<UInt8Type>(), i64::from),
            DataType::UInt64 => widen(a.as_primitive::<UInt64Type>(), |v| {
                i64::try_from(v).unwrap_or(-1)
            }),
            // `open` admits no other type.
            _ => Col::Int(Int64Array::new_null(a.len())),
        }
    }

    #[inline]
    fn value(&self, row: usize) -> Value<'_> {
        macro_rules! get {
            ($a:expr, $v:expr) => {
                get!($a, $v, row)
            };
            ($a:expr, $v:expr, $at:expr) => {
                if $a.is_null($at) {
                    Value::Absent
                } else {
                    $v
                }
            };
        }
        match self {
            Col::Dict(keys, values) => get!(keys, {
                // The reader checks keys against the dictionary; one that
                // is not in it would make the row malformed, not a panic.
                match usize::try_from(keys.value(row)) {
                    Ok(k) if k < values.len() => get!(values, Value::Str(values.value(k)), k),
                    _ => Value::Int(-1),
                }
            }),
            Col::Str(a) => get!(a, Value::Str(a.value(row))),
            Col::LargeStr(a) => get!(a, Value::Str(a.value(row))),
            Col::View(a) => get!(a, Value::Str(a.value(row))),
            Col::Int(a) => get!(a, Value::Int(a.value(row))),
        }
    }
}

/// A word column's values as [`Fast`] reads them.
const OK: u8 = 0;
const NODATA: u8 = 1;
const SKIPDATA: u8 = 2;
const ACCEPT: u8 = 0;
const REJECT: u8 = 1;
const INGRESS: u8 = 0;
const EGRESS: u8 = 1;
/// A value [`Fast`] leaves to the row-wise reading (which names what is
/// wrong with it, or reads it as the text line would).
const OTHER: u8 = u8::MAX;

/// What a dictionary's values read as, kept while a column chunk's
/// dictionary lasts (batches of one chunk share it).
struct Table<T> {
    /// The dictionary read: its values' buffers, kept so that the same
    /// addresses are the same values.
    values: Option<StringArray>,
    read: Arc<[T]>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table {
            values: None,
            read: Arc::new([]),
        }
    }
}

impl<T: Copy> Table<T> {
    /// Each value of `values` read by `f` (again only for another dictionary).
    fn of(&mut self, values: &StringArray, f: impl Fn(Option<&str>) -> T) -> Arc<[T]> {
        let same = self.values.as_ref().is_some_and(|v| {
            v.len() == values.len()
                && v.values().as_ptr() == values.values().as_ptr()
                && v.offsets().inner().inner().as_ptr() == values.offsets().inner().inner().as_ptr()
                && v.nulls() == values.nulls()
        });
        if !same {
            self.read = (0..values.len())
                .map(|i| f((!values.is_null(i)).then(|| values.value(i))))
                .collect();
            self.values = Some(values.clone());
        }
        self.read.clone()
    }
}

/// The tables of the columns read by dictionary.
#[derive(Default)]
struct Tables {
    addrs: [Table<Option<IpAddr>>; 4],
    words: [Table<u8>; 3],
}

/// A dictionary column read through its table: each row's key.
struct Keyed<T> {
    keys: Plain<Int32Type>,
    read: Arc<[T]>,
}

/// A column of integers as [`Fast`] reads it: its values, looked up as
/// null only when some are (a nullable column of none comes with every
/// row marked valid, which need not be looked at each time).
struct Plain<P: ArrowPrimitiveType> {
    array: PrimitiveArray<P>,
    has_nulls: bool,
}

impl<P: ArrowPrimitiveType> Plain<P> {
    fn of(a: &PrimitiveArray<P>) -> Plain<P> {
        Plain {
            array: a.clone(),
            has_nulls: a.null_count() > 0,
        }
    }

    /// `f` on each row with its value; `None` for null. The nulls are
    /// looked at only when the column has some.
    #[inline]
    fn each(&self, rows: &mut [Row], mut f: impl FnMut(&mut Row, Option<P::Native>)) {
        let values = self.array.values();
        if self.has_nulls {
            for (i, (r, &v)) in rows.iter_mut().zip(values.iter()).enumerate() {
                f(r, (!self.array.is_null(i)).then_some(v));
            }
        } else {
            for (r, &v) in rows.iter_mut().zip(values.iter()) {
                f(r, Some(v));
            }
        }
    }
}

impl<T: Copy> Keyed<T> {
    /// `f` on each row with its value as read: `None` for a null key,
    /// `Some(None)` for a key outside the dictionary (which the reader
    /// does not give).
    #[inline]
    fn each(&self, rows: &mut [Row], mut f: impl FnMut(&mut Row, Option<Option<T>>)) {
        let read = &self.read[..];
        self.keys
            .each(rows, |r, k| f(r, k.map(|k| read.get(k as usize).copied())));
    }
}

/// What a row read column-wise is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Record,
    NoData,
    SkipData,
    /// Left to the row-wise reading.
    RowWise,
}

/// A row of a batch read column-wise ([`Fast::decode`]): what it is and,
/// for a record, its fields.
#[derive(Debug, Clone, Copy)]
struct Row {
    kind: Kind,
    src: IpAddr,
    dst: IpAddr,
    start: Option<u64>,
    /// The dictionary key of its `interface-id`; [`Row::NO_INTERFACE`]: none.
    interface: u32,
    sport: Option<u16>,
    dport: Option<u16>,
    proto: u8,
    action: Action,
    direction: Option<FlowDirection>,
}

impl Row {
    const NO_INTERFACE: u32 = u32::MAX;
    /// A record of a format without `log-status`, before its columns are read.
    const RECORD: Row = Row {
        kind: Kind::Record,
        src: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        dst: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        start: None,
        interface: Row::NO_INTERFACE,
        sport: None,
        dport: None,
        proto: 0,
        action: Action::Accept,
        direction: None,
    };

    /// A value of a record is not the usual: the row-wise reading reads it
    /// (NODATA and SKIPDATA are that whatever their other columns hold).
    #[inline]
    fn unusual(&mut self) {
        if self.kind == Kind::Record {
            self.kind = Kind::RowWise;
        }
    }
}

/// A batch whose string columns are all dictionaries and whose number
/// columns are all integers, read column-wise: a row of the usual kind
/// becomes its record from the dictionaries' readings without its fields
/// being built; any other row (a null or bad value, a word that is not
/// the usual) is left to the row-wise reading, which reads it exactly as
/// before.
struct Fast {
    /// srcaddr, dstaddr, pkt-srcaddr, pkt-dstaddr.
    src: Keyed<Option<IpAddr>>,
    dst: Keyed<Option<IpAddr>>,
    pkt_src: Option<Keyed<Option<IpAddr>>>,
    pkt_dst: Option<Keyed<Option<IpAddr>>>,
    proto: Plain<Int64Type>,
    sport: Option<Plain<Int64Type>>,
    dport: Option<Plain<Int64Type>>,
    start: Option<Plain<Int64Type>>,
    action: Keyed<u8>,
    status: Option<Keyed<u8>>,
    direction: Option<Keyed<u8>>,
    interface: Option<(Plain<Int32Type>, StringArray)>,
}

impl Fast {
    fn of(judged: &[Column], cols: &[Col], tables: &mut Tables) -> Option<Fast> {
        let col = |c: Column| judged.iter().position(|&j| j == c).map(|i| &cols[i]);
        let int = |c: Column| match col(c) {
            None => Ok(None),
            Some(Col::Int(a)) => Ok(Some(Plain::of(a))),
            Some(_) => Err(()),
        };
        let dict = |c: Column| match col(c) {
            None => Ok(None),
            Some(Col::Dict(k, v)) => Ok(Some((Plain::of(k), v.clone()))),
            Some(_) => Err(()),
        };
        let [t_src, t_dst, t_psrc, t_pdst] = &mut tables.addrs;
        let [t_action, t_status, t_dir] = &mut tables.words;
        let addr = |c: Column, t: &mut Table<Option<IpAddr>>| {
            dict(c).map(|d| {
                d.map(|(keys, values)| Keyed {
                    read: t.of(&values, |v| v.and_then(|v| parse_addr(v.as_bytes()))),
                    keys,
                })
            })
        };
        let word = |c: Column, t: &mut Table<u8>, words: [&str; 3]| {
            dict(c).map(|d| {
                d.map(|(keys, values)| Keyed {
                    read: t.of(&values, |v| {
                        v.and_then(|v| words.iter().position(|&w| w == v))
                            .map_or(OTHER, |i| i as u8)
                    }),
                    keys,
                })
            })
        };
        Some(Fast {
            src: addr(Column::SrcAddr, t_src).ok()??,
            dst: addr(Column::DstAddr, t_dst).ok()??,
            pkt_src: addr(Column::PktSrcAddr, t_psrc).ok()?,
            pkt_dst: addr(Column::PktDstAddr, t_pdst).ok()?,
            proto: int(Column::Protocol).ok()??,
            sport: int(Column::SrcPort).ok()?,
            dport: int(Column::DstPort).ok()?,
            start: int(Column::Start).ok()?,
            action: word(Column::Action, t_action, ["ACCEPT", "REJECT", "\0"]).ok()??,
            status: word(Column::LogStatus, t_status, ["OK", "NODATA", "SKIPDATA"]).ok()?,
            direction: word(Column::FlowDirection, t_dir, ["ingress", "egress", "\0"]).ok()?,
            interface: dict(Column::Interface).ok()?,
        })
    }

    /// The batch's `len` rows, a column at a time, as the row-wise reading
    /// reads them; a row it would find anything wrong with, or not the
    /// usual, is left to it ([`Kind::RowWise`]).
    fn decode(&self, rows: &mut Vec<Row>, len: usize) {
        rows.clear();
        rows.resize(len, Row::RECORD);
        if let Some(s) = &self.status {
            s.each(rows, |r, v| {
                r.kind = match v {
                    Some(Some(OK)) => Kind::Record,
                    Some(Some(NODATA)) => Kind::NoData,
                    Some(Some(SKIPDATA)) => Kind::SkipData,
                    _ => Kind::RowWise,
                }
            });
        }
        let addr = |to: fn(&mut Row) -> &mut IpAddr| {
            move |r: &mut Row, v: Option<Option<Option<IpAddr>>>| match v.flatten().flatten() {
                Some(a) => *to(r) = a,
                None => r.unusual(),
            }
        };
        self.src.each(rows, addr(|r| &mut r.src));
        self.dst.each(rows, addr(|r| &mut r.dst));
        // A packet address, where there is one, stands for the address.
        let pkt = |to: fn(&mut Row) -> &mut IpAddr| {
            move |r: &mut Row, v: Option<Option<Option<IpAddr>>>| match v {
                None => {}
                Some(Some(Some(a))) => *to(r) = a,
                Some(_) => r.unusual(),
            }
        };
        if let Some(c) = &self.pkt_src {
            c.each(rows, pkt(|r| &mut r.src));
        }
        if let Some(c) = &self.pkt_dst {
            c.each(rows, pkt(|r| &mut r.dst));
        }
        self.proto
            .each(rows, |r, v| match v.and_then(|v| u8::try_from(v).ok()) {
                Some(p) => r.proto = p,
                None => r.unusual(),
            });
        let port = |to: fn(&mut Row) -> &mut Option<u16>| {
            move |r: &mut Row, v: Option<i64>| match v.map(u16::try_from) {
                None => {}
                Some(Ok(p)) => *to(r) = Some(p),
                Some(Err(_)) => r.unusual(),
            }
        };
        if let Some(c) = &self.sport {
            c.each(rows, port(|r| &mut r.sport));
        }
        if let Some(c) = &self.dport {
            c.each(rows, port(|r| &mut r.dport));
        }
        for r in rows.iter_mut() {
            if !IpProto(r.proto).has_ports() {
                (r.sport, r.dport) = (None, None);
            } else if r.sport.is_none() || r.dport.is_none() {
                r.unusual();
            }
        }
        if let Some(c) = &self.start {
            c.each(rows, |r, v| match v.map(u64::try_from) {
                None => {}
                Some(Ok(s)) => r.start = Some(s),
                Some(Err(_)) => r.unusual(),
            });
        }
        self.action.each(rows, |r, v| match v {
            Some(Some(ACCEPT)) => r.action = Action::Accept,
            Some(Some(REJECT)) => r.action = Action::Reject,
            _ => r.unusual(),
        });
        if let Some(c) = &self.direction {
            c.each(rows, |r, v| match v {
                None => {}
                Some(Some(INGRESS)) => r.direction = Some(FlowDirection::Ingress),
                Some(Some(EGRESS)) => r.direction = Some(FlowDirection::Egress),
                Some(_) => r.unusual(),
            });
        }
        if let Some((keys, values)) = &self.interface {
            keys.each(rows, |r, k| match k.map(|k| usize::try_from(k).ok()) {
                // A null key, or a key to a null value: no interface.
                None => {}
                Some(Some(k)) if k < values.len() && values.is_null(k) => {}
                Some(Some(k)) if k < values.len() => r.interface = k as u32,
                Some(_) => r.unusual(),
            });
        }
    }

    /// A decoded row's entry; `None`: a row for the row-wise reading.
    #[inline]
    fn entry(&self, r: &Row) -> Option<Entry<'_>> {
        match r.kind {
            Kind::Record => self.record(r).map(Entry::Record),
            Kind::NoData => Some(Entry::NoData),
            Kind::SkipData => Some(Entry::SkipData),
            Kind::RowWise => None,
        }
    }

    /// A decoded row's record; `None`: a row of another kind.
    #[inline(always)]
    fn record(&self, r: &Row) -> Option<Record<'_>> {
        if r.kind != Kind::Record {
            return None;
        }
        let interface = match &self.interface {
            Some((_, values)) if r.interface != Row::NO_INTERFACE => {
                Some(values.value(r.interface as usize).as_bytes())
            }
            _ => None,
        };
        Some(Record {
            interface,
            src: r.src,
            dst: r.dst,
            proto: IpProto(r.proto),
            sport: r.sport,
            dport: r.dport,
            start: r.start,
            action: r.action,
            direction: r.direction,
        })
    }
}

/// The rows of a Parquet flow log, a batch at a time.
pub(super) struct Rows {
    batches: ParquetRecordBatchReader,
    /// What each column of a batch is.
    judged: Vec<Column>,
    cols: Vec<Col>,
    /// The batch read column-wise, when its columns allow.
    fast: Option<Fast>,
    /// Its rows so read (the buffer kept from batch to batch).
    decoded: Vec<Row>,
    tables: Tables,
    len: usize,
    /// The next row of the batch.
    row: usize,
    /// The decoder failed: no row comes after the error.
    failed: bool,
    /// Rows read column-wise (for the tests that the two readings agree).
    #[cfg(test)]
    fast_rows: u64,
    /// Every row read row-wise (the reading the column-wise one must equal).
    #[cfg(test)]
    row_wise: bool,
}

impl Rows {
    fn load(&mut self, batch: RecordBatch) {
        self.cols = batch.columns().iter().map(Col::of).collect();
        self.fast = Fast::of(&self.judged, &self.cols, &mut self.tables);
        #[cfg(test)]
        if self.row_wise {
            self.fast = None;
        }
        self.len = batch.num_rows();
        if let Some(f) = &self.fast {
            f.decode(&mut self.decoded, self.len);
        }
        self.row = 0;
    }

    /// The record `d` rows after the next, when it is in the batch at
    /// hand and read column-wise as a record.
    #[inline]
    pub(super) fn ahead(&self, d: usize) -> Option<(IpAddr, IpAddr)> {
        let r = self.decoded.get(self.row + d)?;
        (self.fast.is_some() && r.kind == Kind::Record).then_some((r.src, r.dst))
    }

    /// The next row's record where the row is a record read column-wise,
    /// taken; `None` otherwise, and nothing taken.
    #[inline(always)]
    pub(super) fn take_record(&mut self) -> Option<Record<'_>> {
        // With `fast`, `decoded` holds the batch's rows, no more.
        let r = self.decoded.get(self.row)?;
        let record = self.fast.as_ref()?.record(r)?;
        self.row += 1;
        #[cfg(test)]
        {
            self.fast_rows += 1;
        }
        Some(record)
    }

    /// The next row as an entry; `None` at the end.
    pub(super) fn next_entry(&mut self) -> io::Result<Option<Entry<'_>>> {
        while self.row >= self.len {
            if self.failed {
                return Ok(None);
            }
            let next = contained(|| self.batches.next()).inspect_err(|_| self.failed = true)?;
            match next {
                None => return Ok(None),
                Some(Ok(b)) => self.load(b),
                Some(Err(e)) => return Err(invalid(e)),
            }
        }
        let row = self.row;
        self.row += 1;
        let fast = self.fast.as_ref().zip(self.decoded.get(row));
        if let Some(e) = fast.and_then(|(f, r)| f.entry(r)) {
            #[cfg(test)]
            {
                self.fast_rows += 1;
            }
            return Ok(Some(e));
        }
        let mut fields = Fields([Value::Absent; JUDGED]);
        for (col, &c) in self.cols.iter().zip(&self.judged) {
            fields.0[c as usize] = match (c, col.value(row)) {
                // A null log-status is text's "-": no value, and never a
                // log-status (only a format without the field has records
                // by default), so the row is malformed as its line is.
                (Column::LogStatus, Value::Absent) => Value::Text(b"-"),
                (_, v) => v,
            };
        }
        Ok(Some(match fields.entry() {
            Ok(e) => e,
            Err(m) => Entry::Malformed(m),
        }))
    }
}

/// The arrow type of the Parquet column AWS writes for a field: INT_32,
/// INT_64 or STRING.
pub fn aws_type(field: &str) -> DataType {
    match field {
        "version" | "srcport" | "dstport" | "protocol" | "tcp-flags" | "traffic-path" => {
            DataType::Int32
        }
        "packets" | "bytes" | "start" | "end" => DataType::Int64,
        _ => DataType::Utf8,
    }
}

/// A column being built by [`write_from_text`].
enum Builder {
    I32(Int32Builder),
    I64(Int64Builder),
    Str(StringBuilder),
}

/// Writes a text flow log (header or default format) as AWS delivers it in
/// Parquet: the columns of [`aws_type`], `-` as null, Gzip-compressed, for
/// trying a Parquet reader on a text log (and for this crate's tests and
/// benchmarks). Returns the records written. A line with the wrong number
/// of fields, or a word that is not an unsigned integer where AWS writes
/// an integer, is an error naming
/// its line.
pub fn write_from_text<W: Write + Send>(text: impl BufRead, out: W) -> io::Result<u64> {
    let mut lines = text.lines();
    let bad =
        |n: u64, why: &str| io::Error::new(io::ErrorKind::InvalidData, format!("line {n}: {why}"));
    let first = lines.next().transpose()?.unwrap_or_default();
    let format = match Format::recognise(first.as_bytes().trim_ascii()) {
        Some(Ok(f)) => f,
        Some(Err(e)) => return Err(bad(1, &e.to_string())),
        None => return Err(bad(1, "not a flow-log header or record")),
    };
    let fields: Vec<Field> = format
        .fields
        .iter()
        .map(|f| Field::new(column_name(f), aws_type(f), true))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let props = WriterProperties::builder()
        .set_compression(Compression::GZIP(GzipLevel::default()))
        .build();
    let mut writer = ArrowWriter::try_new(out, schema.clone(), Some(props)).map_err(invalid)?;
    let new_builders = || -> Vec<Builder> {
        schema
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Int32 => Builder::I32(Int32Builder::new()),
                DataType::Int64 => Builder::I64(Int64Builder::new()),
                _ => Builder::Str(StringBuilder::new()),
            })
            .collect()
    };
    let mut cols = new_builders();
    let (mut rows, mut total) = (0usize, 0u64);
    let flush = |cols: &mut Vec<Builder>, writer: &mut ArrowWriter<W>| -> io::Result<()> {
        let arrays: Vec<ArrayRef> = std::mem::replace(cols, new_builders())
            .into_iter()
            .map(|b| -> ArrayRef {
                match b {
                    Builder::I32(mut b) => Arc::new(b.finish()),
                    Builder::I64(mut b) => Arc::new(b.finish()),
                    Builder::Str(mut b) => Arc::new(b.finish()),
                }
            })
            .collect();
        let batch = RecordBatch::try_new(schema.clone(), arrays).map_err(invalid)?;
        writer.write(&batch).map_err(invalid)
    };
    let first = (!format.header).then_some(first);
    let mut number = u64::from(format.header);
    for line in first.into_iter().map(Ok).chain(lines) {
        let line = line?;
        number += 1;
        if line.as_bytes().trim_ascii().is_empty() {
            continue;
        }
        let words: Vec<&str> = line.split_ascii_whitespace().collect();
        if words.len() != cols.len() {
            return Err(bad(
                number,
                &format!("{} fields where the format has {}", words.len(), cols.len()),
            ));
        }
        for ((b, w), name) in cols.iter_mut().zip(&words).zip(&format.fields) {
            let absent = *w == "-";
            // AWS writes counts, ports and times: no sign. A signed word
            // would read back as a number its text line is not ("-0" as 0).
            let not_int = || bad(number, &format!("{name} is not an unsigned integer"));
            if !absent && w.starts_with('-') {
                return Err(not_int());
            }
            match b {
                Builder::I32(b) if absent => b.append_null(),
                Builder::I32(b) => b.append_value(w.parse().map_err(|_| not_int())?),
                Builder::I64(b) if absent => b.append_null(),
                Builder::I64(b) => b.append_value(w.parse().map_err(|_| not_int())?),
                Builder::Str(b) if absent => b.append_null(),
                Builder::Str(b) => b.append_value(w),
            }
        }
        rows += 1;
        total += 1;
        if rows == 65536 {
            flush(&mut cols, &mut writer)?;
            rows = 0;
        }
    }
    if rows > 0 {
        flush(&mut cols, &mut writer)?;
    }
    writer.close().map_err(invalid)?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::parquet::file::properties::EnabledStatistics;

    /// A small generator (the same rows every run).
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self, m: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((self.0 >> 33) as usize) % m
        }
    }

    /// Rows of every kind: usual ones mostly, and nulls, `-`, bad and
    /// odd words, numbers out of range, NODATA and SKIPDATA among them.
    fn file(rows: usize, dictionary: bool, seed: u64) -> Bytes {
        let mut g = Lcg(seed);
        let strs = |g: &mut Lcg, usual: &[&str], odd: &[Option<&str>]| -> ArrayRef {
            let v: Vec<Option<String>> = (0..rows)
                .map(|_| {
                    if g.next(10) == 0 {
                        odd[g.next(odd.len())].map(str::to_string)
                    } else {
                        Some(usual[g.next(usual.len())].to_string())
                    }
                })
                .collect();
            Arc::new(StringArray::from(v))
        };
        let ints = |g: &mut Lcg, usual: &[i32], odd: &[Option<i32>]| -> ArrayRef {
            let v: Vec<Option<i32>> = (0..rows)
                .map(|_| {
                    if g.next(10) == 0 {
                        odd[g.next(odd.len())]
                    } else {
                        Some(usual[g.next(usual.len())])
                    }
                })
                .collect();
            Arc::new(Int32Array::from(v))
        };
        let addrs = [
            "10.0.1.10",
            "10.0.2.20",
            "192.0.2.1",
            "2001:db8::1",
            "10.9.8.7",
        ];
        let bad_addr = [None, Some("-"), Some("10.0.1"), Some("010.0.1.1"), Some("")];
        let cols: Vec<(&str, ArrayRef)> = vec![
            (
                "interface_id",
                strs(
                    &mut g,
                    &["eni-web", "eni-db", "eni-x"],
                    &[None, Some("-"), Some("")],
                ),
            ),
            ("srcaddr", strs(&mut g, &addrs, &bad_addr)),
            ("dstaddr", strs(&mut g, &addrs, &bad_addr)),
            ("pkt_srcaddr", strs(&mut g, &addrs, &bad_addr)),
            ("pkt_dstaddr", strs(&mut g, &addrs, &bad_addr[..1])),
            (
                "srcport",
                ints(
                    &mut g,
                    &[443, 40000, 0, 65535],
                    &[None, Some(-1), Some(65536)],
                ),
            ),
            (
                "dstport",
                ints(&mut g, &[22, 443, 5432], &[None, Some(-5), Some(70000)]),
            ),
            (
                "protocol",
                ints(
                    &mut g,
                    &[6, 17, 1, 6, 6],
                    &[None, Some(256), Some(-1), Some(0)],
                ),
            ),
            (
                "start",
                ints(&mut g, &[1_700_000_000], &[None, Some(-1), Some(0)]),
            ),
            (
                "action",
                strs(
                    &mut g,
                    &["ACCEPT", "REJECT"],
                    &[None, Some("-"), Some("accept")],
                ),
            ),
            (
                "log_status",
                strs(
                    &mut g,
                    &["OK", "OK", "NODATA", "SKIPDATA"],
                    &[None, Some("-"), Some("ok")],
                ),
            ),
            (
                "flow_direction",
                strs(
                    &mut g,
                    &["ingress", "egress"],
                    &[None, Some("-"), Some("in")],
                ),
            ),
        ];
        // pkt_dstaddr: null but for the odd rows (no usual value).
        let cols: Vec<(&str, ArrayRef)> = cols
            .into_iter()
            .map(|(n, a)| {
                if n == "pkt_dstaddr" {
                    let v: Vec<Option<&str>> = (0..rows)
                        .map(|i| (i % 7 == 3).then_some(addrs[i % addrs.len()]))
                        .collect();
                    (n, Arc::new(StringArray::from(v)) as ArrayRef)
                } else {
                    (n, a)
                }
            })
            .collect();
        let schema = Arc::new(Schema::new(
            cols.iter()
                .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
                .collect::<Vec<_>>(),
        ));
        let batch =
            RecordBatch::try_new(schema.clone(), cols.into_iter().map(|(_, a)| a).collect())
                .unwrap();
        // A small dictionary page: the writer falls back to plain pages
        // part-way, which the reader turns into dictionaries of its own.
        let props = WriterProperties::builder()
            .set_dictionary_enabled(dictionary)
            .set_dictionary_page_size_limit(64)
            .set_data_page_row_count_limit(500)
            .set_write_batch_size(250)
            .set_max_row_group_row_count(Some(3000))
            .set_statistics_enabled(EnabledStatistics::None)
            .build();
        let mut out = Vec::new();
        let mut w = ArrowWriter::try_new(&mut out, schema, Some(props)).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        Bytes::from(out)
    }

    /// Every row's entry, read as the replay reads them: a record read
    /// column-wise taken first, any other row as an entry; the row numbers
    /// checked to count every row once.
    fn entries(bytes: Bytes, row_wise: bool) -> (Vec<String>, u64) {
        let Ok(mut reader) = open_bytes(bytes).unwrap() else {
            panic!("not a flow log")
        };
        if let Source::Parquet(rows) = &mut reader.source {
            rows.row_wise = row_wise;
        }
        let mut out = Vec::new();
        loop {
            let (n, e) = match reader.next_record_read() {
                Some((n, r)) => (n, format!("{:?}", Entry::Record(r))),
                None => match reader.next_entry().unwrap() {
                    Some((n, e)) => (n, format!("{e:?}")),
                    None => break,
                },
            };
            assert_eq!(n, out.len() as u64 + 1);
            out.push(e);
        }
        let Source::Parquet(rows) = &reader.source else {
            panic!("not Parquet")
        };
        (out, rows.fast_rows)
    }

    /// Read column-wise, every row gives the entry the row-wise reading
    /// gives it (records, NODATA, SKIPDATA, malformed and why), with
    /// dictionaries written or not, and most rows are read column-wise.
    #[test]
    fn column_wise_rows_are_row_wise_rows() {
        for (dictionary, seed) in [(true, 1), (false, 2), (true, 3)] {
            let bytes = file(10_000, dictionary, seed);
            let (fast, hits) = entries(bytes.clone(), false);
            let (slow, none) = entries(bytes, true);
            assert_eq!(none, 0);
            assert_eq!(fast.len(), 10_000);
            assert_eq!(fast, slow);
            let records = slow.iter().filter(|e| e.starts_with("Record")).count();
            let malformed = slow.iter().filter(|e| e.starts_with("Malformed")).count();
            assert!(records > 1500 && malformed > 1000, "{records} {malformed}");
            assert!(hits > 2000, "{hits} rows read column-wise");
        }
    }
}
