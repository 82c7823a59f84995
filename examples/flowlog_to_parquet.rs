//! Writes a text VPC Flow Log (a header of field names, or version 2
//! default lines; plain or gzip) as AWS delivers flow logs in Parquet: a
//! column per field, named with `_` for `-`, INT_32/INT_64/STRING as AWS
//! types them, `-` as null, Gzip-compressed. For trying `sgplane replay`
//! on Parquet with a text log at hand (and `benches/flowlogs-cli.sh`).
//!
//! `cargo run --release --example flowlog_to_parquet -- IN.log[.gz] OUT.parquet`

use std::fs::File;
use std::io::{BufReader, BufWriter, Read};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output] = args.as_slice() else {
        eprintln!("usage: flowlog_to_parquet IN.log[.gz] OUT.parquet");
        return ExitCode::from(2);
    };
    let run = || -> std::io::Result<u64> {
        let mut f = File::open(input)?;
        let mut magic = [0u8; 2];
        let n = f.read(&mut magic)?;
        let f = File::open(input)?;
        let text: Box<dyn std::io::BufRead> = if n == 2 && magic == [0x1f, 0x8b] {
            Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(f)))
        } else {
            Box::new(BufReader::new(f))
        };
        let out = BufWriter::new(File::create(output)?);
        sgplane::io::flowlog::parquet::write_from_text(text, out)
    };
    match run() {
        Ok(n) => {
            eprintln!("{n} records written to {output}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {input}: {e}");
            ExitCode::from(2)
        }
    }
}
