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

use ::parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
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
    Array, ArrayRef, GenericStringArray, Int64Array, PrimitiveArray, RecordBatch, StringViewArray,
};
use arrow_schema::{DataType, Field, Schema};
use bytes::Bytes;

use super::{Column, Entry, Fields, Format, FormatError, Reader, Source, Value, JUDGED};

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
    let builder =
        contained(|| ParquetRecordBatchReaderBuilder::try_new(input))?.map_err(invalid)?;
    inside(builder.metadata(), file_len)?;
    let schema = builder.schema().clone();
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
        len: 0,
        row: 0,
        failed: false,
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
                if $a.is_null(row) {
                    Value::Absent
                } else {
                    $v
                }
            };
        }
        match self {
            Col::Str(a) => get!(a, Value::Str(a.value(row))),
            Col::LargeStr(a) => get!(a, Value::Str(a.value(row))),
            Col::View(a) => get!(a, Value::Str(a.value(row))),
            Col::Int(a) => get!(a, Value::Int(a.value(row))),
        }
    }
}

/// The rows of a Parquet flow log, a batch at a time.
pub(super) struct Rows {
    batches: ParquetRecordBatchReader,
    /// What each column of a batch is.
    judged: Vec<Column>,
    cols: Vec<Col>,
    len: usize,
    /// The next row of the batch.
    row: usize,
    /// The decoder failed: no row comes after the error.
    failed: bool,
}

impl Rows {
    fn load(&mut self, batch: RecordBatch) {
        self.cols = batch.columns().iter().map(Col::of).collect();
        self.len = batch.num_rows();
        self.row = 0;
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
        let mut fields = Fields([Value::Absent; JUDGED]);
        for (col, &c) in self.cols.iter().zip(&self.judged) {
            fields.0[c as usize] = col.value(row);
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
