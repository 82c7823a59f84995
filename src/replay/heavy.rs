//! The most frequent keys of a stream in a fixed number of counters:
//! Space-Saving (Metwally, Agrawal and El Abbadi, "Efficient computation of
//! frequent and top-k elements in data streams", 2005).
//!
//! With K counters over a stream of N items, every key seen more than N/K
//! times holds a counter; a counter's count is never below its key's true
//! count and at most `error` above it (`count - error` is a lower bound, and
//! `error == 0` is exact). Until more than K distinct keys arrive nothing is
//! evicted and every count is exact.
//!
//! The counts sit in one array sorted ascending, cut into runs of equal
//! counts (Metwally's "stream summary" buckets, as ranges of the array): an
//! increment swaps the counter with the last one of its run and adds one,
//! which keeps the order, and an eviction takes position 0, the minimum, then
//! increments it. Counters not yet taken are counts of 0 at the front, so a
//! first sighting is an eviction of nothing. Keys are found through an
//! open-addressing index of 4K slots with backward-shift deletion: no
//! tombstones, no rehash, nothing allocated per item, O(1) per item.
//!
//! Once every counter is taken, a key without one first goes through a
//! filter (Homem and Carvalho's "Filtered Space-Saving", 2010): an array of
//! 8K counts by hash, each an upper bound on how often any key of its
//! bucket was seen while it held no counter. A key takes a counter only
//! when its bucket's bound reaches the minimum count; until then the bound
//! goes up by one and nothing is evicted. The bound never exceeds the
//! minimum, so the new counter's count (minimum + 1) and error (the
//! minimum) are those of plain Space-Saving and so are the guarantees, and
//! a key without a counter was seen at most min-count times; an evicted
//! key leaves its count in its bucket's bound. In a scan, where no key
//! comes back, about one item in ten evicts instead of every one, and the
//! minimum (the error bound) stays far below N/K. Counts sum to at most N.

use std::hash::{BuildHasher, Hash};

/// One counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted<'a, K, V> {
    pub key: &'a K,
    /// What the caller attached when the key took this counter.
    pub value: &'a V,
    /// At least the key's true count since it took the counter.
    pub count: u64,
    /// How much `count` may exceed the true count.
    pub error: u64,
    /// Position in the stream (0-based) of the item that gave the key this
    /// counter: the order in which keys were first seen, if never evicted.
    pub first: u64,
}

#[derive(Debug, Clone)]
struct Slot<K, V> {
    key: K,
    value: V,
    hash: u64,
    error: u64,
    first: u64,
}

/// An index slot holding no counter.
const EMPTY: u64 = u64::MAX;

/// An index slot: the counter number in the low half, the low half of the
/// key's hash in the high half, so that probing and deleting need not read
/// the counters (a scan evicts on every packet, and the counters' keys are
/// scattered over far more memory than the index).
#[inline]
fn entry(counter: usize, hash: u64) -> u64 {
    (hash << 32) | counter as u64
}

#[inline]
fn counter_of(e: u64) -> usize {
    (e & 0xffff_ffff) as usize
}

/// Space-Saving over keys `K`, each counter carrying a `V`.
#[derive(Debug, Clone)]
pub struct SpaceSaving<K, V> {
    capacity: usize,
    /// The counters' keys, by counter number; `None` until taken.
    slots: Vec<Option<Slot<K, V>>>,
    /// Counts in ascending order, by position.
    counts: Vec<u64>,
    /// The counter at each position, and the position of each counter.
    at: Vec<u32>,
    pos: Vec<u32>,
    /// The run each position is in, and each run's (first, last) position;
    /// runs not in use are in `free_runs`.
    run_of: Vec<u32>,
    runs: Vec<(u32, u32)>,
    free_runs: Vec<u32>,
    /// Counters by hash ([`entry`]), linear probing; a power of two ≥ 4 ×
    /// capacity, so that probe runs stay short.
    index: Vec<u64>,
    /// Upper bounds of the counts of keys without a counter, by bucket
    /// ([`SpaceSaving::bucket`]); each at most the minimum count.
    filter: Vec<u64>,
    /// A fixed hash: which keys share a bucket decides the counts, and the
    /// same stream must give the same counters.
    hasher: foldhash::fast::FixedState,
    total: u64,
    evictions: u64,
    /// Items the filter kept out of the counters.
    filtered: u64,
}

/// Filter buckets per counter.
const FILTER_PER_COUNTER: usize = 8;
/// The fixed seed of [`SpaceSaving::observe`]'s hash.
const SEED: u64 = 0x5ace_5a71_6e00_f17e;

impl<K: Hash + Eq + Clone, V> SpaceSaving<K, V> {
    /// K = `capacity` counters (at least 1, at most 2^30).
    pub fn new(capacity: usize) -> SpaceSaving<K, V> {
        let capacity = capacity.clamp(1, 1 << 30);
        SpaceSaving {
            capacity,
            slots: (0..capacity).map(|_| None).collect(),
            counts: vec![0; capacity],
            at: (0..capacity as u32).collect(),
            pos: (0..capacity as u32).collect(),
            run_of: vec![0; capacity],
            runs: vec![(0, capacity as u32 - 1); capacity + 1],
            free_runs: (1..=capacity as u32).rev().collect(),
            index: vec![EMPTY; (4 * capacity).next_power_of_two()],
            filter: vec![0; (FILTER_PER_COUNTER * capacity).next_power_of_two()],
            hasher: foldhash::fast::FixedState::with_seed(SEED),
            total: 0,
            evictions: 0,
            filtered: 0,
        }
    }

    /// Counts one occurrence of `key`; `value` is called when the key takes
    /// a counter (first seen, or back after an eviction).
    #[inline]
    pub fn observe(&mut self, key: K, value: impl FnOnce() -> V) {
        let hash = self.hasher.hash_one(&key);
        self.observe_hashed(&key, hash, value);
    }

    /// [`SpaceSaving::observe`] with the key's hash computed by the caller:
    /// any function of the key alone, uniform over its bits (equal keys must
    /// have equal hashes). The key is cloned only when it takes a counter.
    #[inline]
    pub fn observe_hashed(&mut self, key: &K, hash: u64, value: impl FnOnce() -> V) {
        let seq = self.total;
        self.total += 1;
        if let Ok(at) = self.find(hash, key) {
            let c = counter_of(self.index[at]);
            self.increment(self.pos[c] as usize);
            return;
        }
        // Take the minimum: the new key inherits its count as error.
        let c = self.at[0] as usize;
        let min = self.counts[0];
        if let Some(old) = &self.slots[c] {
            // Full: through the filter first.
            let b = self.bucket(hash);
            if self.filter[b] < min {
                self.filter[b] += 1;
                self.filtered += 1;
                return;
            }
            let (old_hash, ob) = (old.hash, self.bucket(old.hash));
            self.filter[ob] = self.filter[ob].max(min);
            // Its index entry is the one naming counter c on its probe path:
            // found without comparing keys.
            let at = self.entry_of(old_hash, c);
            self.remove_index(at);
            self.evictions += 1;
        }
        // The key is not indexed: its place is the first empty slot of its
        // probe path (the removal may have opened one before the one found).
        let at = self.vacancy(hash);
        self.index[at] = entry(c, hash);
        self.slots[c] = Some(Slot {
            key: key.clone(),
            value: value(),
            hash,
            error: min,
            first: seq,
        });
        self.increment(0);
    }

    /// Brings the index slot and filter bucket of `hash` into the cache,
    /// ahead of [`SpaceSaving::observe_hashed`] with that hash.
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        if let Some(slot) = self.index.get(hash as usize & (self.index.len() - 1)) {
            crate::base::prefetch(slot);
        }
        if let Some(bucket) = self.filter.get(self.bucket(hash)) {
            crate::base::prefetch(bucket);
        }
    }

    /// Adds one to the count at position `p`, keeping the counts sorted.
    #[inline]
    fn increment(&mut self, p: usize) {
        let c = self.counts[p];
        let run = self.run_of[p] as usize;
        let (first, last) = self.runs[run];
        let q = last as usize;
        if q != p {
            let (a, b) = (self.at[p], self.at[q]);
            self.at.swap(p, q);
            self.pos[a as usize] = q as u32;
            self.pos[b as usize] = p as u32;
        }
        self.counts[q] = c + 1;
        // Position q leaves its run for the next one, or a new one.
        if first == last {
            self.free_runs.push(run as u32);
        } else {
            self.runs[run].1 = last - 1;
        }
        if q + 1 < self.capacity && self.counts[q + 1] == c + 1 {
            let next = self.run_of[q + 1];
            self.runs[next as usize].0 = q as u32;
            self.run_of[q] = next;
        } else {
            // There are at most K runs besides the one just freed.
            let new = self.free_runs.pop().unwrap_or(run as u32);
            self.runs[new as usize] = (q as u32, q as u32);
            self.run_of[q] = new;
        }
    }

    /// Items observed (N).
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Counters (K).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// True while no key was ever evicted or filtered out: every count is
    /// exact.
    pub fn is_exact(&self) -> bool {
        self.evictions == 0 && self.filtered == 0
    }

    /// The filter bucket of a hash: its high bits (the index uses the low).
    #[inline]
    fn bucket(&self, hash: u64) -> usize {
        (hash >> 40) as usize & (self.filter.len() - 1)
    }

    /// The smallest count held once every counter is taken (else 0): a key
    /// seen more often than this holds a counter. Never above N/K.
    pub fn min_count(&self) -> u64 {
        self.counts[0]
    }

    /// Every counter taken, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = Counted<'_, K, V>> {
        self.counts.iter().zip(&self.at).filter_map(|(&count, &c)| {
            let slot = self.slots[c as usize].as_ref()?;
            Some(Counted {
                key: &slot.key,
                value: &slot.value,
                count,
                error: slot.error,
                first: slot.first,
            })
        })
    }

    /// The `n` largest counts, ties by first seen.
    pub fn top(&self, n: usize) -> Vec<Counted<'_, K, V>> {
        let mut all: Vec<_> = self.iter().collect();
        all.sort_by_key(|c| (std::cmp::Reverse(c.count), c.first));
        all.truncate(n);
        all
    }

    /// The index slot holding `key`, or the empty slot where it would go.
    #[inline]
    fn find(&self, hash: u64, key: &K) -> Result<usize, usize> {
        let mask = self.index.len() - 1;
        let mut at = hash as usize & mask;
        let tag = hash & 0xffff_ffff;
        loop {
            let e = self.index[at];
            if e == EMPTY {
                return Err(at);
            }
            if e >> 32 == tag {
                if let Some(slot) = &self.slots[counter_of(e)] {
                    if slot.hash == hash && slot.key == *key {
                        return Ok(at);
                    }
                }
            }
            at = (at + 1) & mask;
        }
    }

    /// The index slot of counter `c`, whose key hashes to `hash`.
    #[inline]
    fn entry_of(&self, hash: u64, c: usize) -> usize {
        let mask = self.index.len() - 1;
        let mut at = hash as usize & mask;
        // Every held counter is indexed on its probe path, so the loop ends
        // (an empty slot names no counter: c < 2^30).
        while counter_of(self.index[at]) != c {
            at = (at + 1) & mask;
        }
        at
    }

    /// The first empty index slot on the probe path of `hash`.
    #[inline]
    fn vacancy(&self, hash: u64) -> usize {
        let mask = self.index.len() - 1;
        let mut at = hash as usize & mask;
        while self.index[at] != EMPTY {
            at = (at + 1) & mask;
        }
        at
    }

    /// Empties an index slot, moving later entries of its probe run back.
    fn remove_index(&mut self, mut hole: usize) {
        let mask = self.index.len() - 1;
        let mut at = hole;
        loop {
            at = (at + 1) & mask;
            let e = self.index[at];
            if e == EMPTY {
                break;
            }
            // The mask has at most 32 bits: the tag gives the home slot.
            let home = (e >> 32) as usize & mask;
            // It may move back into the hole if the hole is on its probe path.
            if (at.wrapping_sub(home) & mask) >= (at.wrapping_sub(hole) & mask) {
                self.index[hole] = e;
                hole = at;
            }
        }
        self.index[hole] = EMPTY;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// A skewed stream: key i with weight about 1/(i+1), over `keys` keys.
    fn zipf_like(n: usize, keys: u64, seed: u64) -> Vec<u64> {
        let mut rng = Rng(seed);
        (0..n)
            .map(|_| {
                let u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
                ((keys as f64).powf(u) - 1.0) as u64
            })
            .collect()
    }

    fn run(stream: &[u64], k: usize) -> (SpaceSaving<u64, u64>, HashMap<u64, u64>) {
        let mut ss = SpaceSaving::new(k);
        let mut truth = HashMap::new();
        for (i, &x) in stream.iter().enumerate() {
            ss.observe(x, || i as u64);
            *truth.entry(x).or_insert(0) += 1;
        }
        (ss, truth)
    }

    #[test]
    fn below_capacity_every_count_is_exact_in_first_seen_order() {
        let stream = [5u64, 7, 5, 9, 7, 5, 11];
        let (ss, _) = run(&stream, 5);
        assert!(ss.is_exact());
        assert_eq!(ss.min_count(), 0, "not full yet");
        let top: Vec<(u64, u64, u64, u64)> = ss
            .top(10)
            .iter()
            .map(|c| (*c.key, c.count, c.error, c.first))
            .collect();
        assert_eq!(
            top,
            vec![(5, 3, 0, 0), (7, 2, 0, 1), (9, 1, 0, 3), (11, 1, 0, 6)]
        );
        // The value is the one given when the key was first seen.
        assert_eq!(*ss.top(1)[0].value, 0);
    }

    #[test]
    fn guarantees_hold_on_a_skewed_stream_past_capacity() {
        for (k, keys, seed) in [(64usize, 10_000u64, 1u64), (256, 100_000, 7), (16, 50, 3)] {
            let stream = zipf_like(200_000, keys, seed);
            let (ss, truth) = run(&stream, k);
            let n = stream.len() as u64;
            assert_eq!(ss.total(), n);
            assert!(!ss.is_exact(), "k={k}: more keys than counters");
            assert!(ss.min_count() <= n / k as u64, "k={k}: min above N/K");
            let held: HashMap<u64, (u64, u64)> =
                ss.iter().map(|c| (*c.key, (c.count, c.error))).collect();
            assert_eq!(held.len(), k, "k={k}: every counter taken once");
            // Counts sum to at most N: each item adds at most one.
            assert!(ss.iter().map(|c| c.count).sum::<u64>() <= n);
            for (key, &(count, error)) in &held {
                let t = truth[key];
                assert!(count >= t, "k={k} key {key}: count {count} < true {t}");
                assert!(
                    count - error <= t,
                    "k={k} key {key}: {count}-{error} > true {t}"
                );
                assert!(error <= ss.min_count());
            }
            for (key, &t) in &truth {
                if t > n / k as u64 {
                    assert!(
                        held.contains_key(key),
                        "k={k}: frequent key {key} ({t}) lost"
                    );
                }
                if t > ss.min_count() {
                    assert!(
                        held.contains_key(key),
                        "k={k}: key {key} ({t}) above min lost"
                    );
                }
            }
        }
    }

    #[test]
    fn a_heavy_flow_survives_a_scan() {
        // Every other item is a key never seen again; one key is half the stream.
        let mut stream = Vec::new();
        for i in 0..100_000u64 {
            stream.push(if i % 2 == 0 { 1 } else { 1_000_000 + i });
        }
        let (ss, _) = run(&stream, 32);
        let top = ss.top(1);
        assert_eq!(*top[0].key, 1);
        assert!(top[0].count >= 50_000 && top[0].count - top[0].error <= 50_000);
        // Its error is what it inherited when it last took a counter: small.
        assert!(top[0].error <= 1, "error {}", top[0].error);
    }

    #[test]
    fn the_same_stream_gives_the_same_counters() {
        let stream = zipf_like(50_000, 5_000, 11);
        let summary = |ss: &SpaceSaving<u64, u64>| -> Vec<(u64, u64, u64, u64, u64)> {
            ss.top(usize::MAX)
                .iter()
                .map(|c| (*c.key, *c.value, c.count, c.error, c.first))
                .collect()
        };
        // Two runs over the same stream.
        let (a, _) = run(&stream, 100);
        let (b, _) = run(&stream, 100);
        assert_eq!(summary(&a), summary(&b));
        // Ties are broken by first seen.
        let top = a.top(usize::MAX);
        for w in top.windows(2) {
            assert!(
                w[0].count > w[1].count || (w[0].count == w[1].count && w[0].first < w[1].first)
            );
        }
    }

    #[test]
    fn the_index_stays_consistent_under_churn() {
        // Keys that collide in a tiny index, evicted again and again.
        let mut ss: SpaceSaving<u64, ()> = SpaceSaving::new(3);
        let mut rng = Rng(99);
        for _ in 0..20_000 {
            ss.observe(rng.next() % 10, || ());
            let live: Vec<u64> = ss.iter().map(|c| *c.key).collect();
            for k in &live {
                let h = ss.hasher.hash_one(k);
                assert!(ss.find(h, k).is_ok(), "key {k} held but not indexed");
            }
            let indexed = ss.index.iter().filter(|&&s| s != EMPTY).count();
            assert_eq!(indexed, live.len());
            // Sorted counts, cut into runs of equal counts that know their ends.
            assert!(
                ss.counts.windows(2).all(|w| w[0] <= w[1]),
                "{:?}",
                ss.counts
            );
            for p in 0..ss.capacity {
                let (first, last) = ss.runs[ss.run_of[p] as usize];
                let (first, last) = (first as usize, last as usize);
                assert!(first <= p && p <= last);
                assert!(ss.counts[first..=last].iter().all(|&c| c == ss.counts[p]));
                assert!(first == 0 || ss.counts[first - 1] < ss.counts[p]);
                assert!(last + 1 == ss.capacity || ss.counts[last + 1] > ss.counts[p]);
                assert_eq!(ss.pos[ss.at[p] as usize] as usize, p);
            }
        }
        assert!(ss.iter().map(|c| c.count).sum::<u64>() <= 20_000);
    }

    #[test]
    fn a_scan_goes_mostly_through_the_filter_and_keeps_the_bound_low() {
        // Every item a new key, and one key a tenth of the stream.
        let n = 200_000u64;
        let stream: Vec<u64> = (0..n).map(|i| if i % 10 == 0 { 1 } else { i }).collect();
        let (ss, truth) = run(&stream, 1024);
        assert!(!ss.is_exact());
        assert!(
            ss.evictions < n / 4,
            "{} evictions of {n} items",
            ss.evictions
        );
        assert!(ss.filtered > n / 2, "{} filtered", ss.filtered);
        // Plain Space-Saving would end with every count at N/K or more.
        assert!(ss.min_count() < n / 1024 / 4, "min {}", ss.min_count());
        let top = ss.top(1);
        assert_eq!(*top[0].key, 1);
        assert!(top[0].count >= truth[&1] && top[0].count - top[0].error <= truth[&1]);
        // A key without a counter was seen at most min-count times.
        let held: std::collections::HashSet<u64> = ss.iter().map(|c| *c.key).collect();
        assert!(truth
            .iter()
            .all(|(k, &t)| held.contains(k) || t <= ss.min_count()));
    }

    #[test]
    fn filtered_items_make_the_counts_inexact() {
        // Three counters, then keys that the filter keeps out.
        let mut ss: SpaceSaving<u64, ()> = SpaceSaving::new(3);
        for k in [1u64, 1, 2, 2, 3, 3] {
            ss.observe(k, || ());
        }
        assert!(ss.is_exact());
        ss.observe(4, || ());
        assert_eq!(ss.evictions, 0, "a bound of 0 is below the minimum of 2");
        assert_eq!(ss.filtered, 1);
        assert!(!ss.is_exact());
    }
}
