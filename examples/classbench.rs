//! Runs the classifier on a ClassBench filter set and trace: checks every header
//! against the linear first-match scan, optionally writes the winning rule per
//! header, and measures single-threaded lookups per second over repeated passes
//! of the whole trace (as DPDK's test-acl does).
//!
//! `cargo run --release --example classbench -- --rules FILE --trace FILE [--out FILE] [--seconds S]`
//!
//! The last line on stdout is
//! `classbench: rules=N lookups=M mismatches=K build_ms=B bytes=Y mlookups_per_s=Z`;
//! everything else goes to stderr. Exit 2 on unreadable or malformed input, 1 if
//! any lookup disagrees with the linear scan.

use clap::Parser;
use sgplane::classify::classbench::{parse_rules, parse_trace};
use sgplane::classify::{linear_lookup, BuildOptions, Classifier, Key};
use std::hint::black_box;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "Check and time the sgplane classifier on a ClassBench filter set and trace")]
struct Args {
    /// ClassBench filter set (lines starting with '@').
    #[arg(long)]
    rules: PathBuf,
    /// ClassBench trace (SA DA SP DP PROTO FLAGS FILTER per line).
    #[arg(long)]
    trace: PathBuf,
    /// Write the winning 0-based rule index per trace line (-1 for none) here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Time lookups over repeated passes of the trace for at least this long.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Time exactly this many passes over the trace instead of `--seconds`
    /// (for instruction-counting tools such as cachegrind).
    #[arg(long)]
    passes: Option<u64>,
    /// Time one lookup at a time instead of `lookup_batch`.
    #[arg(long)]
    single: bool,
    /// Build knob: address prefix length under which a field counts as small (0: one tree).
    #[arg(long)]
    small_prefix: Option<u8>,
    /// Build knob: rules per leaf.
    #[arg(long)]
    leaf_size: Option<usize>,
    /// Build knob: binary depth at which a node becomes a leaf whatever its size.
    #[arg(long)]
    max_depth: Option<u32>,
    /// Build knob: leaf entries allowed per rule before a subset is split.
    #[arg(long)]
    entries_per_rule: Option<usize>,
    /// Build knob: leaf entries per rule of the whole set that merging may use.
    #[arg(long)]
    merged_entries_per_rule: Option<usize>,
    /// Build knob: bytes per rule the whole structure may take when merging.
    #[arg(long)]
    max_bytes_per_rule: Option<usize>,
    /// Build knob: unions of two subsets the builder may try.
    #[arg(long)]
    merge_attempts: Option<usize>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("classbench: error: {message}");
            ExitCode::from(2)
        }
    }
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn run(args: &Args) -> Result<ExitCode, String> {
    if !(args.seconds.is_finite() && args.seconds >= 0.0) {
        return Err(format!(
            "--seconds must be a non-negative number, got {}",
            args.seconds
        ));
    }
    let rules =
        parse_rules(&read(&args.rules)?).map_err(|e| format!("{}: {e}", args.rules.display()))?;
    let trace =
        parse_trace(&read(&args.trace)?).map_err(|e| format!("{}: {e}", args.trace.display()))?;
    let keys: Vec<Key> = trace.iter().map(|(key, _)| *key).collect();

    let mut options = BuildOptions::default();
    if let Some(p) = args.small_prefix {
        options.small_prefix = p;
    }
    if let Some(l) = args.leaf_size {
        options.leaf_size = l;
    }
    if let Some(d) = args.max_depth {
        options.max_depth = d;
    }
    if let Some(e) = args.entries_per_rule {
        options.entries_per_rule = e;
    }
    if let Some(b) = args.max_bytes_per_rule {
        options.max_bytes_per_rule = b;
    }
    if let Some(m) = args.merge_attempts {
        options.merge_attempts = m;
    }
    if let Some(e) = args.merged_entries_per_rule {
        options.merged_entries_per_rule = e;
    }
    let started = Instant::now();
    let classifier = Classifier::build_with(&rules, &options);
    let build_ms = started.elapsed().as_secs_f64() * 1e3;
    let bytes = classifier.memory_bytes();
    eprintln!(
        "built {} rules in {build_ms:.2} ms: {bytes} bytes ({:.1} per rule)",
        rules.len(),
        bytes as f64 / rules.len().max(1) as f64
    );
    for (i, s) in classifier.stats().iter().enumerate() {
        eprintln!(
            "  tree {i}: {} rules, {} nodes, {} leaves, {} leaf entries, depth {}, {} steps",
            s.rules, s.nodes, s.leaves, s.entries, s.depth, s.steps
        );
    }

    let mut results = vec![None; keys.len()];
    classifier.lookup_batch(&keys, &mut results);
    let mut mismatches = 0u64;
    let mut filter_disagrees = 0u64;
    for (i, ((key, filter), got)) in trace.iter().zip(&results).enumerate() {
        let want = linear_lookup(&rules, key);
        if classifier.lookup(key) != want || *got != want {
            mismatches += 1;
            if mismatches <= 10 {
                eprintln!(
                    "MISMATCH trace line {}: key {key:?} classifier {got:?} linear {want:?}",
                    i + 1
                );
            }
        }
        if want.map_or(-1, i64::from) != *filter {
            filter_disagrees += 1;
        }
    }
    eprintln!(
        "checked {} headers: {mismatches} mismatches; the trace's filter column differs from the first match on {filter_disagrees}",
        keys.len()
    );
    if let Some(out) = &args.out {
        write_results(out, &results).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    }

    let cpu_before = thread_cpu_ns();
    let (lookups, elapsed) =
        time_lookups(&classifier, &keys, args.seconds, args.passes, args.single);
    let cpu = thread_cpu_ns()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    let rate = lookups as f64 / elapsed.as_secs_f64().max(1e-9) / 1e6;
    eprintln!(
        "timed {lookups} {} lookups in {:.3} s",
        if args.single { "single" } else { "batched" },
        elapsed.as_secs_f64()
    );
    if let Some(cpu) = cpu.filter(|&ns| ns > 0) {
        // On a shared machine the wall-clock rate drops when other work takes the
        // core; the rate per second on the CPU does not.
        eprintln!(
            "on-cpu rate: {:.2} M lookups/s ({:.0}% of the wall time on the CPU)",
            lookups as f64 / cpu as f64 * 1e3,
            cpu as f64 / elapsed.as_nanos() as f64 * 100.0
        );
    }
    println!(
        "classbench: rules={} lookups={lookups} mismatches={mismatches} build_ms={build_ms:.2} bytes={bytes} mlookups_per_s={rate:.2}",
        rules.len()
    );
    Ok(if mismatches > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn write_results(path: &Path, results: &[Option<u32>]) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    for r in results {
        writeln!(w, "{}", r.map_or(-1, i64::from))?;
    }
    w.flush()
}

/// Nanoseconds this thread has run on a CPU (Linux), if known.
fn thread_cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

/// Whole passes over the trace until `seconds` have gone by, or exactly
/// `passes` passes (after one warm-up pass): the number of lookups done and the
/// time they took.
fn time_lookups(
    classifier: &Classifier,
    keys: &[Key],
    seconds: f64,
    passes: Option<u64>,
    single: bool,
) -> (u64, Duration) {
    if keys.is_empty() {
        return (0, Duration::ZERO);
    }
    let mut out = vec![None; keys.len()];
    let pass = |out: &mut [Option<u32>]| {
        if single {
            for (key, slot) in keys.iter().zip(out.iter_mut()) {
                *slot = classifier.lookup(black_box(key));
            }
        } else {
            classifier.lookup_batch(black_box(keys), out);
        }
        black_box(&*out);
    };
    pass(&mut out);
    let budget = Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut lookups = 0u64;
    loop {
        pass(&mut out);
        lookups += keys.len() as u64;
        let elapsed = started.elapsed();
        let done = match passes {
            Some(p) => lookups >= p * keys.len() as u64,
            None => elapsed >= budget,
        };
        if done {
            return (lookups, elapsed);
        }
    }
}
