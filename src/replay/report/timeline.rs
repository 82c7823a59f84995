//! Counts over capture time in a fixed number of buckets, and UTC labels
//! for them.
//!
//! A [`Timeline`] holds [`BUCKETS`] buckets of one width, aligned to
//! multiples of that width since the Unix epoch. When a timestamp falls
//! outside the range they cover, the width grows to the next of [`WIDTHS`]
//! (each a multiple of the one before, so an old bucket falls wholly into
//! one new bucket) until the whole span fits, and the counts are merged. So
//! memory is `BUCKETS × series` counters whatever the capture's length, the
//! buckets are as fine as the span allows, and at least `BUCKETS / 7` of them
//! are in use once the span needs more than one (7 is the largest step).
//! Timestamps may go backwards (merged captures): the range also grows to
//! the left.

/// Buckets kept.
pub const BUCKETS: usize = 240;

const US: u64 = 1_000;
const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;
const MIN: u64 = 60 * S;
const HOUR: u64 = 60 * MIN;
const DAY: u64 = 24 * HOUR;

/// Bucket widths in nanoseconds, finest first, each a multiple of the one
/// before; past the last, widths double.
pub const WIDTHS: [u64; 27] = [
    US,
    2 * US,
    10 * US,
    20 * US,
    100 * US,
    200 * US,
    MS,
    2 * MS,
    10 * MS,
    20 * MS,
    100 * MS,
    200 * MS,
    S,
    2 * S,
    10 * S,
    20 * S,
    MIN,
    2 * MIN,
    10 * MIN,
    20 * MIN,
    HOUR,
    2 * HOUR,
    6 * HOUR,
    12 * HOUR,
    DAY,
    7 * DAY,
    28 * DAY,
];

/// Counts of `series` kinds of event in [`BUCKETS`] buckets of time.
#[derive(Debug, Clone)]
pub struct Timeline {
    series: usize,
    /// Index into [`WIDTHS`], or beyond it for doubled widths.
    step: usize,
    width: u64,
    /// The absolute bucket number (`ts / width`) of the first bucket, and
    /// of the last one that holds anything; `None` before the first event.
    range: Option<(u64, u64)>,
    /// `BUCKETS × series` counts, bucket by bucket.
    counts: Vec<u64>,
}

/// The buckets in use, for drawing.
#[derive(Debug, Clone)]
pub struct Buckets<'a> {
    /// Start of the first bucket, ns since the epoch.
    pub start: u64,
    pub width: u64,
    /// One slice of `series` counts per bucket.
    pub rows: Vec<&'a [u64]>,
}

impl Timeline {
    /// Buckets of at least `finest` ns (the input's time resolution: 1 s
    /// for flow-log `start` times), at most [`BUCKETS`] of them.
    pub fn new(series: usize, finest: u64) -> Timeline {
        let series = series.max(1);
        let step = WIDTHS
            .iter()
            .position(|&w| w >= finest)
            .unwrap_or(WIDTHS.len() - 1);
        Timeline {
            series,
            step,
            width: WIDTHS[step],
            range: None,
            counts: vec![0; BUCKETS * series],
        }
    }

    /// Counts one event of `series` at `ts` (ns since the epoch).
    pub fn add(&mut self, ts: u64, series: usize) {
        let series = series.min(self.series - 1);
        let at = self.place(ts);
        self.counts[at * self.series + series] += 1;
    }

    /// The bucket for `ts`, widening or shifting the range as needed.
    fn place(&mut self, ts: u64) -> usize {
        loop {
            let b = ts / self.width;
            let Some((lo, hi)) = self.range else {
                self.range = Some((b, b));
                return 0;
            };
            let (new_lo, new_hi) = (lo.min(b), hi.max(b));
            if new_hi - new_lo < BUCKETS as u64 {
                if new_lo < lo {
                    self.shift_right((lo - new_lo) as usize);
                }
                self.range = Some((new_lo, new_hi));
                return (b - new_lo) as usize;
            }
            self.widen();
        }
    }

    /// Moves every bucket `k` places later (the range starts earlier).
    fn shift_right(&mut self, k: usize) {
        let n = self.series;
        self.counts.copy_within(0..(BUCKETS - k) * n, k * n);
        self.counts[..k * n].fill(0);
    }

    /// The next width, with the counts merged into it.
    fn widen(&mut self) {
        self.step += 1;
        let next = WIDTHS
            .get(self.step)
            .copied()
            .unwrap_or_else(|| self.width.saturating_mul(2));
        let f = next / self.width;
        self.width = next;
        let Some((lo, hi)) = self.range else { return };
        let (nlo, nhi) = (lo / f, hi / f);
        let n = self.series;
        let mut merged = vec![0; BUCKETS * n];
        for i in 0..=(hi - lo) as usize {
            let j = ((lo + i as u64) / f - nlo) as usize;
            for s in 0..n {
                merged[j * n + s] += self.counts[i * n + s];
            }
        }
        self.counts = merged;
        self.range = Some((nlo, nhi));
    }

    /// The buckets from the first to the last that holds anything.
    pub fn buckets(&self) -> Buckets<'_> {
        let (start, used) = match self.range {
            Some((lo, hi)) => (lo * self.width, (hi - lo + 1) as usize),
            None => (0, 0),
        };
        Buckets {
            start,
            width: self.width,
            rows: self.counts.chunks(self.series).take(used).collect(),
        }
    }

    /// Events counted in each series.
    pub fn totals(&self) -> Vec<u64> {
        let mut t = vec![0; self.series];
        for row in self.counts.chunks(self.series) {
            for (a, b) in t.iter_mut().zip(row) {
                *a += b;
            }
        }
        t
    }
}

/// A date and time of day in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utc {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub nanos: u32,
}

impl Utc {
    /// `ns` nanoseconds after 1970-01-01T00:00:00Z (Hinnant's
    /// civil-from-days, proleptic Gregorian).
    pub fn from_ns(ns: u64) -> Utc {
        let secs = ns / S;
        let days = (secs / 86_400) as i64;
        let rem = secs % 86_400;
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Utc {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem / 60 % 60) as u32,
            second: (rem % 60) as u32,
            nanos: (ns % S) as u32,
        }
    }

    pub fn date(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }

    /// The time of day to the precision `step` (ns) needs.
    pub fn time(&self, step: u64) -> String {
        let hm = format!("{:02}:{:02}", self.hour, self.minute);
        if step >= MIN && step % MIN == 0 {
            hm
        } else if step >= S && step % S == 0 {
            format!("{hm}:{:02}", self.second)
        } else if step >= MS && step % MS == 0 {
            format!("{hm}:{:02}.{:03}", self.second, self.nanos / 1_000_000)
        } else {
            format!("{hm}:{:02}.{:06}", self.second, self.nanos / 1_000)
        }
    }

    /// `2026-12-06 13:38:44.123456789 UTC`, the fraction only when there is one.
    pub fn full(&self) -> String {
        let frac = if self.nanos == 0 {
            String::new()
        } else {
            let f = format!(".{:09}", self.nanos);
            f.trim_end_matches('0').to_string()
        };
        format!(
            "{} {:02}:{:02}:{:02}{frac} UTC",
            self.date(),
            self.hour,
            self.minute,
            self.second
        )
    }
}

/// Tick intervals for a time axis, ns: round numbers of UTC units.
const TICKS: [u64; 40] = [
    US,
    2 * US,
    5 * US,
    10 * US,
    20 * US,
    50 * US,
    100 * US,
    200 * US,
    500 * US,
    MS,
    2 * MS,
    5 * MS,
    10 * MS,
    20 * MS,
    50 * MS,
    100 * MS,
    200 * MS,
    500 * MS,
    S,
    2 * S,
    5 * S,
    10 * S,
    15 * S,
    30 * S,
    MIN,
    2 * MIN,
    5 * MIN,
    10 * MIN,
    15 * MIN,
    30 * MIN,
    HOUR,
    2 * HOUR,
    3 * HOUR,
    6 * HOUR,
    12 * HOUR,
    DAY,
    2 * DAY,
    7 * DAY,
    30 * DAY,
    365 * DAY,
];

/// The tick interval for `span` ns with at most about `most` ticks.
pub fn tick_step(span: u64, most: u64) -> u64 {
    let want = span / most.max(1);
    TICKS
        .iter()
        .copied()
        .find(|&t| t >= want)
        .unwrap_or_else(|| {
            want.checked_next_multiple_of(365 * DAY)
                .unwrap_or(want)
                .max(365 * DAY)
        })
}

/// A duration in words: `2.5 s`, `3 min 20 s`, `2 h 5 min`, `3 d 4 h`.
pub fn duration(ns: u64) -> String {
    if ns == 0 {
        "0 s".into()
    } else if ns < MS {
        format!("{:.1} µs", ns as f64 / US as f64)
    } else if ns < S {
        format!("{:.1} ms", ns as f64 / MS as f64)
    } else if ns < MIN {
        format!("{:.2} s", ns as f64 / S as f64)
    } else if ns < HOUR {
        format!("{} min {} s", ns / MIN, ns % MIN / S)
    } else if ns < DAY {
        format!("{} h {} min", ns / HOUR, ns % HOUR / MIN)
    } else {
        format!("{} d {} h", ns / DAY, ns % DAY / HOUR)
    }
}

/// A bucket width in words: `10 ms`, `1 s`, `2 min`, `1 h`.
pub fn width_words(ns: u64) -> String {
    for (unit, name) in [(DAY, "d"), (HOUR, "h"), (MIN, "min"), (S, "s"), (MS, "ms")] {
        if ns >= unit && ns % unit == 0 {
            return format!("{} {name}", ns / unit);
        }
    }
    format!("{} µs", ns / US)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_width_is_a_multiple_of_the_one_before() {
        for w in WIDTHS.windows(2) {
            assert_eq!(w[1] % w[0], 0, "{w:?}");
            assert!(w[1] / w[0] <= 7, "{w:?}");
        }
    }

    #[test]
    fn a_long_span_is_merged_into_the_buckets_without_losing_a_count() {
        let mut t = Timeline::new(2, 1);
        let start = 1_700_000_000 * S;
        // One event a second for an hour, series by parity.
        for i in 0..3600u64 {
            t.add(start + i * S + 123, (i % 2) as usize);
        }
        assert_eq!(t.totals(), vec![1800, 1800]);
        // An hour in at most 240 buckets: 20 s each (10 s would need 360).
        assert_eq!(t.buckets().width, 20 * S);
        let b = t.buckets();
        assert!(
            b.rows.len() <= BUCKETS && b.rows.len() >= 180,
            "{}",
            b.rows.len()
        );
        assert_eq!(b.start % b.width, 0);
        assert!(b.start <= start && start < b.start + b.width);
        // Each full bucket holds 20 events, 10 of each series.
        assert_eq!(b.rows[1], &[10, 10]);
        let sum: u64 = b.rows.iter().map(|r| r[0] + r[1]).sum();
        assert_eq!(sum, 3600);
    }

    #[test]
    fn the_finest_width_is_the_inputs_resolution() {
        let mut t = Timeline::new(1, S);
        t.add(1_700_000_000 * S, 0);
        assert_eq!(t.buckets().width, S);
        assert_eq!(t.buckets().rows.len(), 1);
    }

    #[test]
    fn time_going_backwards_widens_the_range_to_the_left() {
        let mut t = Timeline::new(1, 1);
        let base = 1_000 * S;
        t.add(base + 5 * US, 0);
        t.add(base, 0); // 5 buckets earlier: shifts right
        assert_eq!(t.buckets().width, US);
        let b = t.buckets();
        assert_eq!(b.start, base);
        assert_eq!(b.rows.len(), 6);
        assert_eq!((b.rows[0][0], b.rows[5][0]), (1, 1));
        t.add(base - 10 * S, 0); // far back: widens
        assert!(t.buckets().width >= 100 * MS, "{}", t.buckets().width);
        assert_eq!(t.totals(), vec![3]);
        let b = t.buckets();
        assert_eq!(b.rows.first().unwrap()[0], 1);
        assert_eq!(b.rows.last().unwrap()[0], 2);
    }

    #[test]
    fn timestamps_read_as_utc_dates() {
        assert_eq!(Utc::from_ns(0).full(), "1970-01-01 00:00:00 UTC");
        // 2024-02-29 23:59:59.5 (a leap day)
        let t = Utc::from_ns(1_709_251_199_500_000_000);
        assert_eq!(t.full(), "2024-02-29 23:59:59.5 UTC");
        assert_eq!(t.time(S), "23:59:59");
        assert_eq!(t.time(MIN), "23:59");
        assert_eq!(t.time(100 * MS), "23:59:59.500");
        assert_eq!(Utc::from_ns(1_709_251_200 * S).date(), "2024-03-01");
        assert_eq!(Utc::from_ns(4_102_444_800 * S).date(), "2100-01-01");
    }

    #[test]
    fn ticks_and_widths_read_as_round_units() {
        assert_eq!(tick_step(3600 * S, 8), 10 * MIN);
        assert_eq!(tick_step(10 * S, 8), 2 * S);
        assert_eq!(width_words(20 * S), "20 s");
        assert_eq!(width_words(2 * MIN), "2 min");
        assert_eq!(width_words(200 * US), "200 µs");
        assert_eq!(duration(90 * S), "1 min 30 s");
        assert_eq!(duration(0), "0 s");
    }
}
