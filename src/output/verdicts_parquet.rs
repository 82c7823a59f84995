//! Verdicts as Parquet: one row per packet (or flow-log record) with the
//! columns of the JSON and CSV verdict lines ([`super::verdicts::COLUMNS`],
//! and `recorded_action` for flow-log records), for engines that read
//! Parquet (Spark, Athena, DuckDB, pandas).
//!
//! `index` is INT64; `ts` a UTC timestamp in microseconds (nanoseconds for
//! a nanosecond capture), null where a record has no `start`; `sport` and
//! `dport` INT32; the rest strings, null where the line has null. Rows are
//! gathered in batches and written as Snappy-compressed row groups; the
//! file is complete once the writer is finished (its index is at the end).

use std::io::{self, Write};
use std::sync::Arc;

use arrow_array::builder::{
    Int32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
    TimestampNanosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::verdicts::{COLUMNS, RECORDED_ACTION};

/// Rows gathered before they are handed to the Parquet writer.
const BATCH: usize = 65536;

/// One row's values.
pub(super) struct Row<'a> {
    pub index: u64,
    /// Nanoseconds since the Unix epoch.
    pub ts: Option<u64>,
    pub verdict: &'a dyn std::fmt::Display,
    pub reason: &'a dyn std::fmt::Display,
    pub rule: Option<&'a dyn std::fmt::Display>,
    pub interface: Option<&'a str>,
    pub direction: Option<&'a str>,
    pub proto: Option<&'a dyn std::fmt::Display>,
    pub src: Option<&'a dyn std::fmt::Display>,
    pub dst: Option<&'a dyn std::fmt::Display>,
    pub ports: Option<(u16, u16)>,
    pub zone: Option<&'a str>,
    pub recorded: Option<&'a str>,
}

enum Ts {
    Micros(TimestampMicrosecondBuilder),
    Nanos(TimestampNanosecondBuilder),
}

/// The columns being gathered.
struct Columns {
    index: Int64Builder,
    ts: Ts,
    /// verdict, reason, rule, interface, direction, proto, src, dst.
    text: [StringBuilder; 8],
    sport: Int32Builder,
    dport: Int32Builder,
    zone: StringBuilder,
    recorded: Option<StringBuilder>,
}

/// A Parquet file of verdicts being written to `out`.
pub(super) struct ParquetVerdicts {
    out: Box<dyn Write>,
    /// The Parquet writer writes into memory; what it has written is moved
    /// to `out` after each batch (the writer counts offsets itself).
    writer: ArrowWriter<Vec<u8>>,
    schema: SchemaRef,
    cols: Columns,
    rows: usize,
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("writing Parquet: {e}"))
}

/// Appends a displayed value (or null) to a string column.
fn put(b: &mut StringBuilder, v: Option<&dyn std::fmt::Display>) {
    match v {
        Some(v) => {
            // The builder is a fmt::Write: the text goes straight into its
            // buffer, and the empty append ends the value.
            let _ = std::fmt::Write::write_fmt(b, format_args!("{v}"));
            b.append_value("");
        }
        None => b.append_null(),
    }
}

impl ParquetVerdicts {
    /// `records`: a flow log's rows, with `recorded_action`; `nanos`: the
    /// timestamps are nanoseconds.
    pub(super) fn new(out: Box<dyn Write>, nanos: bool, records: bool) -> io::Result<Self> {
        let unit = if nanos {
            TimeUnit::Nanosecond
        } else {
            TimeUnit::Microsecond
        };
        let mut fields: Vec<Field> = COLUMNS
            .iter()
            .map(|&name| match name {
                "index" => Field::new(name, DataType::Int64, false),
                "ts" => Field::new(name, DataType::Timestamp(unit, Some("UTC".into())), true),
                "verdict" | "reason" => Field::new(name, DataType::Utf8, false),
                "sport" | "dport" => Field::new(name, DataType::Int32, true),
                _ => Field::new(name, DataType::Utf8, true),
            })
            .collect();
        if records {
            fields.push(Field::new(RECORDED_ACTION, DataType::Utf8, false));
        }
        let schema = Arc::new(Schema::new(fields));
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build();
        let writer =
            ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props)).map_err(invalid)?;
        let ts = if nanos {
            Ts::Nanos(TimestampNanosecondBuilder::new().with_timezone("UTC"))
        } else {
            Ts::Micros(TimestampMicrosecondBuilder::new().with_timezone("UTC"))
        };
        Ok(ParquetVerdicts {
            out,
            writer,
            schema,
            cols: Columns {
                index: Int64Builder::new(),
                ts,
                text: std::array::from_fn(|_| StringBuilder::new()),
                sport: Int32Builder::new(),
                dport: Int32Builder::new(),
                zone: StringBuilder::new(),
                recorded: records.then(StringBuilder::new),
            },
            rows: 0,
        })
    }

    pub(super) fn push(&mut self, r: &Row) -> io::Result<()> {
        let c = &mut self.cols;
        c.index.append_value(r.index as i64);
        match &mut c.ts {
            Ts::Micros(b) => b.append_option(r.ts.map(|t| (t / 1000) as i64)),
            Ts::Nanos(b) => b.append_option(r.ts.map(|t| t as i64)),
        }
        let [verdict, reason, rule, iface, dir, proto, src, dst] = &mut c.text;
        put(verdict, Some(r.verdict));
        put(reason, Some(r.reason));
        put(rule, r.rule);
        iface.append_option(r.interface);
        dir.append_option(r.direction);
        put(proto, r.proto);
        put(src, r.src);
        put(dst, r.dst);
        c.sport.append_option(r.ports.map(|p| i32::from(p.0)));
        c.dport.append_option(r.ports.map(|p| i32::from(p.1)));
        c.zone.append_option(r.zone);
        if let Some(b) = c.recorded.as_mut() {
            b.append_value(r.recorded.unwrap_or("-"));
        }
        self.rows += 1;
        if self.rows >= BATCH {
            self.flush_batch()?;
        }
        Ok(())
    }

    fn flush_batch(&mut self) -> io::Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let c = &mut self.cols;
        let mut arrays: Vec<ArrayRef> = vec![
            Arc::new(c.index.finish()),
            match &mut c.ts {
                Ts::Micros(b) => Arc::new(b.finish()),
                Ts::Nanos(b) => Arc::new(b.finish()),
            },
        ];
        arrays.extend(c.text.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
        arrays.push(Arc::new(c.sport.finish()));
        arrays.push(Arc::new(c.dport.finish()));
        arrays.push(Arc::new(c.zone.finish()));
        if let Some(b) = c.recorded.as_mut() {
            arrays.push(Arc::new(b.finish()));
        }
        let batch = RecordBatch::try_new(self.schema.clone(), arrays).map_err(invalid)?;
        self.rows = 0;
        self.writer.write(&batch).map_err(invalid)?;
        self.drain()
    }

    /// Moves what the Parquet writer has written to the output.
    fn drain(&mut self) -> io::Result<()> {
        let buf = self.writer.inner_mut();
        if !buf.is_empty() {
            self.out.write_all(buf)?;
            buf.clear();
        }
        Ok(())
    }

    /// Writes the last rows and the file's footer.
    pub(super) fn finish(mut self) -> io::Result<()> {
        self.flush_batch()?;
        let rest = self.writer.into_inner().map_err(invalid)?;
        self.out.write_all(&rest)?;
        self.out.flush()
    }
}
