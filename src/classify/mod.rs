//! Compiled packet classifier for new-flow decisions: given rules in decision
//! order, each a set of `u32` ranges on five dimensions, find the first rule a
//! header matches. [`linear_lookup`] is the oracle; [`Classifier`] gives the same
//! answer from a compiled structure, fast enough to set the connection-setup rate.
//!
//! # Algorithm
//!
//! A few **HyperSplit-style decision trees** over disjoint rule subsets.
//!
//! - *Splits.* Every inner node cuts one dimension at a rule boundary into `< t`
//!   and `>= t`, choosing over all dimensions and boundaries the cut that
//!   minimises the larger child's rule count, then the summed count (replication).
//!   A sweep over the sorted range starts and ends finds it in `O(n log n)`.
//! - *Priority-aware pruning.* Inside a node's region a rule is dropped once an
//!   earlier rule covers the whole region, and on nodes of up to 64 rules once an
//!   earlier single-range rule contains its cut (redundancy removal). Leaves hold
//!   at most 8 rules, stored cut to the leaf's region as `lo`/`span` pairs (a field
//!   matches when `key - lo <= span`, wrapping), in priority order, scanned until
//!   the first hit or until the entry's index is no better than the match found
//!   in an earlier tree.
//! - *Range sets natively.* A rule whose field holds several ranges (an SG
//!   reference: one range per member) is one rule: it goes to every child its
//!   ranges touch, and a leaf keeps the hull of its ranges inside the leaf's
//!   region; only when that cut still holds several ranges is the entry flagged
//!   and the full set checked after the hull matched.
//! - *Partitioning (CutSplit's observation, made adaptive).* Rules specific in one
//!   address and wide in the other cross rules of the opposite shape, and one tree
//!   over both replicates each into every region of the other (on fw4_10k one
//!   tree's leaves held 190k entries for 722 rules). The builder gives each tree a
//!   budget of 6 leaf entries per rule and aborts a tree as soon as it overflows;
//!   an overflowing subset is split into four by source and destination prefix
//!   length (first at /16, then halving the length intervals) until every part
//!   fits, and a part that cannot be split further gets bigger leaves. Then parts
//!   are merged back greedily, smallest first, while the union's tree stays within
//!   8 entries per rule of the whole set, at most 3 levels deeper than the deeper
//!   of the two, and the whole structure within 768 KiB (about a core's L2) or 2.5
//!   times its size: fewer trees means fewer walks per lookup.
//! - *Layout.* Per tree two flat arrays: 8-byte nodes (`thresh`, `left << 3 | dim`;
//!   the right child is `left + 1`) and 44-byte leaf entries closed by a sentinel.
//!   Indices are `u32`, nothing is boxed, a lookup allocates nothing. A leaf is a
//!   node that leads back to itself (it reads a padding slot of the key that is
//!   always 0), so [`Classifier::lookup_batch`] walks 8 keys in lockstep for the
//!   tree's depth with no data-dependent branch, overlapping the 8 walks' loads;
//!   then it scans the 8 leaves. Trees are searched in order of their best rule,
//!   and [`Classifier::lookup`] skips a tree whose best rule cannot beat the match
//!   in hand.
//!
//! # Measurements
//!
//! On this project's 2-core AMD EPYC (Zen 4, 2.6 GHz) VM, one thread, release
//! build, by `benches/compare-rte-acl.sh`: ours is `examples/classbench.rs`
//! (`lookup_batch` over repeated passes of the trace for 2 s, every header checked
//! against the linear scan: zero mismatches), rte_acl is DPDK 22.11
//! `dpdk-test-acl --alg=avx2` on the same files for about 2 s (its build time is
//! wall time less EAL start, its bytes its own runtime footprint).
//!
//! | set | ours M/s | rte_acl M/s | ratio | build ms ours / rte_acl | bytes ours / rte_acl |
//! |---|---|---|---|---|---|
//! | acl1_1k  | 99.2 | 43.8 | 2.26 | 3 / ~16     | 112 K / 0.5 M |
//! | fw1_1k   | 49.5 | 42.5 | 1.16 | 8 / ~159    | 142 K / 15 M |
//! | ipc1_1k  | 58.0 | 42.2 | 1.38 | 6 / ~76     | 102 K / 3.5 M |
//! | fw1_10k  | 21.5 | 4.88 | 4.40 | 192 / ~3029 | 1.3 M / 150 M |
//! | ipc1_10k | 22.9 | 13.7 | 1.67 | 149 / ~384  | 1.1 M / 11 M |
//!
//! Bytes per rule: 128, 187, 111, 143, 126. So the 2x over rte_acl holds on
//! acl1_1k and fw1_10k only: rte_acl does 42-44 M/s on the 1k sets here (about
//! 60 TSC cycles per lookup), far above the 3.5-4.4 M/s the issue assumed, while
//! the absolute targets (9 M/s on 1k sets, 4.5 M/s on 10k sets) hold with 5x
//! margin.
//!
//! The machine was shared with other builds and fuzzers, which moves single runs
//! by up to 2x; the best on-CPU rates (lookups per second of the thread's own CPU
//! time, printed by the example) were acl1_1k 103, fw1_1k 52-56, ipc1_1k 62-66,
//! fw1_10k 22.7, ipc1_10k 23.9. rte_acl measured 25-44 M/s on the 1k sets and
//! 3.1-5.4 (fw1_10k), 5.2-11.8 (ipc1_10k) over several runs.
//!
//! Over 24 ClassBench sets (acl1-5, fw1-5, ipc1-2 at 1k and 10k; traces
//! generated from the rules for the three 10k sets that have none), best on-CPU
//! rates: 1k sets 33-98 M/s, 10k sets 17-59 M/s, 56-307 bytes per rule, builds
//! 2-50 ms (1k) and 10-210 ms (10k), zero mismatches.
//!
//! # Alternatives tried (same machine, on-CPU M lookups/s unless noted)
//!
//! - One HyperSplit tree over all rules: fast where it fits (acl1_1k, acl4_1k use
//!   one tree) but 1434 B/rule on fw1_1k and 3443 on fw5_1k.
//! - Fixed CutSplit split at /16 into four trees, no recursion: 817 B/rule on
//!   acl2_10k and 1052 on fw4_10k, from the crossing described above.
//! - Four-way split without merging, one key at a time: 1k sets 8-27 M/s, 10k
//!   sets 6-18 (wall clock, quiet moments). Lockstep batches of 8 keys: x1.6
//!   (fw1_1k 25, ipc1_1k 38, fw1_10k 13, ipc1_10k 14). Merging parts back:
//!   fw1_1k 39-55, ipc1_1k 59-63, fw1_10k 22, ipc1_10k 23.
//! - Leaf sizes 2, 4, 6, 12, 16: 8 was the best compromise (2 and 4 deepen the
//!   trees, replicate more and force more subsets; 12 and 16 help acl1_1k a
//!   little but slow fw1_1k and ipc1_1k by up to 2x).
//! - 16 lanes instead of 8: equal within noise (more register spills). Stopping
//!   the lockstep walk once all lanes reach leaves: 5-15% slower. A power-of-two
//!   node array indexed with a mask to drop bounds checks: no measurable gain.
//!   Split costs weighting replication more (`2 max + sum`, `max + sum`): no
//!   better, builds up to 3x slower. Two binary levels per 16-byte node (half the
//!   steps, a conditional second test): 25-30% slower than plain binary nodes
//!   (acl1_1k 76 vs 103, fw1_1k 40 vs 52, ipc1_1k 51 vs 66, same run).
//! - Leaf scans take about half the lookup time (without them the walks alone
//!   do fw1_1k 94, ipc1_1k 109, fw1_10k 53 M/s). Branch-free leaves of 8 slots
//!   stored field-major (all slots compared at once with SSE2, the first match
//!   taken from the bit mask of matches): 35-45% slower than the early-exit scan
//!   of the first entries (acl1_1k 55 vs 99, fw1_1k 31 vs 49, ipc1_1k 33 vs 61):
//!   the early-exit scan mostly stops within the first entries. Loading all eight
//!   lanes' first entries before scanning, to overlap their cache misses: no gain.
//! - Not pursued: tuple-space search (TupleMerge, PartitionSort) probes one hash
//!   table per tuple and is reported slower than decision trees on lookups; bit
//!   vectors cost `O(rules)` bits per field per lookup; an rte_acl-style multibit
//!   trie is what rte_acl already is (its 150 MB on fw1_10k). rte_acl walks 8
//!   flows per AVX2 gather; the same for our trees needs `std::arch` with runtime
//!   feature detection, i.e. `unsafe`, which the style guide keeps to the TAP and
//!   socket code: it is the next step if the small sets must go faster.

mod rangeset;
mod tree;

pub mod classbench;
pub mod sg;

pub use rangeset::RangeSet;
pub use tree::TreeStats;

use tree::{pad, ComplexRules, Tree, TreeParams, NO_MATCH};

/// Keys a batch lookup walks in lockstep.
const LANES: usize = 8;

/// Number of dimensions of a rule and a key: `[src_or_remote, dst_or_local, sport, dport, proto]`.
pub const DIMS: usize = 5;

/// A header as the classifier sees it, one value per dimension.
pub type Key = [u32; DIMS];

/// One rule: a set of values per dimension. A key matches when every field is in
/// its set.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClassRule {
    pub fields: [RangeSet; DIMS],
}

impl ClassRule {
    /// The rule matching every key.
    pub fn any() -> ClassRule {
        ClassRule {
            fields: std::array::from_fn(|_| RangeSet::any()),
        }
    }

    /// Whether `key` matches the rule.
    pub fn matches(&self, key: &Key) -> bool {
        self.fields.iter().zip(key).all(|(f, &v)| f.contains(v))
    }
}

/// The obviously-right oracle: the index of the first rule matching `key`.
pub fn linear_lookup(rules: &[ClassRule], key: &Key) -> Option<u32> {
    rules.iter().position(|r| r.matches(key)).map(|i| i as u32)
}

/// Tuning knobs of [`Classifier::build_with`]; [`Default`] is what
/// [`Classifier::build`] uses.
#[derive(Clone, Debug)]
pub struct BuildOptions {
    /// Rules are first split into up to four subsets, each with a tree, by whether
    /// their source and their destination are at least this specific (as prefix
    /// lengths; 0: no first split).
    pub small_prefix: u8,
    /// A tree node with at most this many live rules becomes a leaf.
    pub leaf_size: usize,
    /// Depth at which a node becomes a leaf whatever its size.
    pub max_depth: u32,
    /// Pairwise redundancy removal runs on nodes with at most this many rules.
    pub redundancy_limit: usize,
    /// Leaf-entry budget of a tree, per rule of its subset: a subset whose tree
    /// outgrows it is split further by prefix length (rules whose address fields
    /// cross each other replicate), and as a last resort gets bigger leaves.
    pub entries_per_rule: usize,
    /// How many unions of two subsets the builder may try to fit in one tree
    /// (fewer trees, fewer walks per lookup).
    pub merge_attempts: usize,
    /// A union is taken while the leaf entries of all trees stay within this many
    /// per rule of the whole set...
    pub merged_entries_per_rule: usize,
    /// ...and while the whole structure stays within this many bytes or at most
    /// 2.5 times what it was: a structure that fits a core's L2 cache may trade
    /// memory for fewer trees freely, a larger one within limits.
    pub merge_memory_target: usize,
}

impl Default for BuildOptions {
    fn default() -> BuildOptions {
        BuildOptions {
            small_prefix: 16,
            leaf_size: 8,
            max_depth: 64,
            redundancy_limit: 64,
            entries_per_rule: 6,
            merge_attempts: 16,
            merged_entries_per_rule: 8,
            merge_memory_target: 768 << 10,
        }
    }
}

/// The compiled classifier: a few decision trees over disjoint rule subsets,
/// searched in order of their best rule with priority pruning.
#[derive(Clone, Debug)]
pub struct Classifier {
    trees: Vec<Tree>,
    complex: ComplexRules,
    len: usize,
}

impl Classifier {
    /// Compiles `rules`, in decision order: a lookup returns the index of the first
    /// (smallest index) rule that matches.
    ///
    /// # Panics
    /// If there are 2^31 - 1 rules or more.
    pub fn build(rules: &[ClassRule]) -> Classifier {
        Classifier::build_with(rules, &BuildOptions::default())
    }

    /// [`Classifier::build`] with explicit knobs.
    ///
    /// # Panics
    /// If there are 2^31 - 1 rules or more.
    pub fn build_with(rules: &[ClassRule], options: &BuildOptions) -> Classifier {
        assert!(
            rules.len() < NO_MATCH as usize,
            "too many rules: {}",
            rules.len()
        );
        let params = TreeParams {
            leaf_size: options.leaf_size.max(1),
            max_depth: options.max_depth,
            redundancy_limit: options.redundancy_limit,
        };
        let ids: Vec<u32> = (0..rules.len() as u32)
            .filter(|&i| !rules[i as usize].fields.iter().any(RangeSet::is_empty))
            .collect();
        let lens: Vec<[u8; 2]> = rules
            .iter()
            .map(|r| [prefix_len(&r.fields[0]), prefix_len(&r.fields[1])])
            .collect();
        let mut partitioner = Partitioner {
            rules,
            lens: &lens,
            options,
            params,
            parts: Vec::new(),
        };
        let all = [(0, 32); 2];
        match options.small_prefix.min(32) {
            0 => partitioner.build(ids, all),
            first => partitioner.split(ids, all, [first; 2]),
        }
        partitioner.merge();
        let mut trees: Vec<Tree> = partitioner
            .parts
            .into_iter()
            .map(|(_, tree)| tree)
            .collect();
        trees.sort_by_key(|t| t.min_rule);
        Classifier {
            trees,
            complex: ComplexRules::new(rules),
            len: rules.len(),
        }
    }

    /// The index of the first rule matching `key`, or `None`.
    #[inline]
    pub fn lookup(&self, key: &Key) -> Option<u32> {
        let key = pad(key);
        let mut best = NO_MATCH;
        for tree in &self.trees {
            if tree.min_rule >= best {
                break;
            }
            best = tree.lookup(&key, best, &self.complex);
        }
        (best != NO_MATCH).then_some(best)
    }

    /// [`Classifier::lookup`] for each key of `keys` into the same position of
    /// `out`.
    ///
    /// # Panics
    /// If `out` is shorter than `keys`.
    pub fn lookup_batch(&self, keys: &[Key], out: &mut [Option<u32>]) {
        assert!(
            out.len() >= keys.len(),
            "lookup_batch: {} keys, {} outputs",
            keys.len(),
            out.len()
        );
        let mut key_chunks = keys.chunks_exact(LANES);
        let mut out_chunks = out.chunks_exact_mut(LANES);
        for (keys, out) in (&mut key_chunks).zip(&mut out_chunks) {
            let keys: [_; LANES] = std::array::from_fn(|l| pad(&keys[l]));
            let mut best = [NO_MATCH; LANES];
            for tree in &self.trees {
                tree.lookup_lanes(&keys, &mut best, &self.complex);
            }
            for (slot, best) in out.iter_mut().zip(best) {
                *slot = (best != NO_MATCH).then_some(best);
            }
        }
        for (key, slot) in key_chunks
            .remainder()
            .iter()
            .zip(out_chunks.into_remainder())
        {
            *slot = self.lookup(key);
        }
    }

    /// Heap bytes of the compiled structure.
    pub fn memory_bytes(&self) -> usize {
        self.trees.capacity() * size_of::<Tree>()
            + self.trees.iter().map(Tree::memory_bytes).sum::<usize>()
            + self.complex.memory_bytes()
    }

    /// Number of rules the classifier was built from.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the classifier was built from no rule.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Shape of each tree, in search order.
    pub fn stats(&self) -> Vec<TreeStats> {
        self.trees.iter().map(Tree::stats).collect()
    }
}

/// The prefix length a field is worth: `32 - ceil(log2(values held))`.
fn prefix_len(field: &RangeSet) -> u8 {
    let size = field.size().max(1);
    let bits = 64 - (size - 1).leading_zeros();
    (32 - bits.min(32)) as u8
}

/// Splits the rules into subsets whose trees stay within the entry budget.
///
/// A subset is known by the interval of source and destination prefix lengths
/// its rules hold. Rules that are specific in one address and wide in the other
/// cross rules of the opposite shape, and a tree over both replicates each into
/// every region of the other (CutSplit's observation); splitting the intervals
/// separates the shapes.
struct Partitioner<'a> {
    rules: &'a [ClassRule],
    lens: &'a [[u8; 2]],
    options: &'a BuildOptions,
    params: TreeParams,
    /// Each subset (ascending rule indices) and its tree.
    parts: Vec<(Vec<u32>, Tree)>,
}

type LenBounds = [(u8, u8); 2];

/// A union may be this many levels deeper than the deeper of its two trees: a
/// lockstep batch walks every tree to its full depth.
const MERGE_DEPTH_SLACK: u32 = 3;

/// The union of two ascending lists of distinct rule indices, ascending.
fn merge_sorted(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i] < b[j] {
            out.push(a[i]);
            i += 1;
        } else {
            out.push(b[j]);
            j += 1;
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

impl Partitioner<'_> {
    /// One tree for `ids` if it fits the budget, else a split of the subset.
    fn build(&mut self, ids: Vec<u32>, bounds: LenBounds) {
        let budget = self.budget(ids.len());
        if let Some(tree) = Tree::build(self.rules, ids.clone(), &self.params, budget) {
            self.parts.push((ids, tree));
            return;
        }
        let mid = bounds.map(|(lo, hi)| if lo < hi { (lo + hi).div_ceil(2) } else { 0 });
        if mid == [0; 2] {
            return self.build_coarse(ids, budget);
        }
        self.split(ids, bounds, mid);
    }

    /// Splits `ids` at prefix lengths `mid` (0: no split of that address) and builds
    /// each part.
    fn split(&mut self, ids: Vec<u32>, bounds: LenBounds, mid: [u8; 2]) {
        let mut parts: [Vec<u32>; 4] = Default::default();
        for id in ids {
            let lens = self.lens[id as usize];
            let part = (0..2)
                .map(|a| usize::from(mid[a] > 0 && lens[a] >= mid[a]) << a)
                .sum::<usize>();
            parts[part].push(id);
        }
        for (part, ids) in parts.into_iter().enumerate() {
            if ids.is_empty() {
                continue;
            }
            let sub = std::array::from_fn(|a| match (mid[a], part >> a & 1) {
                (0, _) => bounds[a],
                (m, 1) => (m, bounds[a].1),
                (m, _) => (bounds[a].0, m - 1),
            });
            self.build(ids, sub);
        }
    }

    /// Last resort for a subset that cannot be split further: bigger leaves until
    /// the tree fits (a single leaf always does).
    fn build_coarse(&mut self, ids: Vec<u32>, budget: usize) {
        let mut params = self.params.clone();
        loop {
            params.leaf_size = params.leaf_size.saturating_mul(2);
            if let Some(tree) = Tree::build(self.rules, ids.clone(), &params, budget) {
                self.parts.push((ids, tree));
                return;
            }
        }
    }

    /// Leaf entries a tree over `rules` rules may hold.
    fn budget(&self, rules: usize) -> usize {
        self.options
            .entries_per_rule
            .saturating_mul(rules)
            .saturating_add(64)
    }

    /// Greedily replaces two subsets by their union wherever its tree fits the
    /// budget, smallest subsets first.
    fn merge(&mut self) {
        let mut attempts = self.options.merge_attempts;
        let mut failed: Vec<[(u32, usize); 2]> = Vec::new();
        let sign = |ids: &[u32]| (ids[0], ids.len());
        'again: loop {
            self.parts.sort_by_key(|(ids, _)| ids.len());
            for i in 0..self.parts.len() {
                for j in (i + 1..self.parts.len()).rev() {
                    let pair = [sign(&self.parts[i].0), sign(&self.parts[j].0)];
                    if failed.contains(&pair) {
                        continue;
                    }
                    if attempts == 0 {
                        return;
                    }
                    attempts -= 1;
                    let ids = merge_sorted(&self.parts[i].0, &self.parts[j].0);
                    let others: usize = self
                        .parts
                        .iter()
                        .map(|(_, t)| t.entry_count())
                        .sum::<usize>()
                        - self.parts[i].1.entry_count()
                        - self.parts[j].1.entry_count();
                    let global = self
                        .options
                        .merged_entries_per_rule
                        .saturating_mul(self.rules.len());
                    let budget = self.budget(ids.len()).max(global.saturating_sub(others));
                    let (a, b) = (&self.parts[i].1, &self.parts[j].1);
                    let bytes_before: usize =
                        self.parts.iter().map(|(_, t)| t.memory_bytes()).sum();
                    let bytes_limit = self.options.merge_memory_target.max(bytes_before * 5 / 2);
                    let fits = |tree: &Tree| {
                        bytes_before - a.memory_bytes() - b.memory_bytes() + tree.memory_bytes()
                            <= bytes_limit
                            && tree.depth() <= a.depth().max(b.depth()) + MERGE_DEPTH_SLACK
                    };
                    match Tree::build(self.rules, ids.clone(), &self.params, budget).filter(fits) {
                        Some(tree) => {
                            self.parts.remove(j);
                            self.parts.remove(i);
                            self.parts.push((ids, tree));
                            continue 'again;
                        }
                        None => failed.push(pair),
                    }
                }
            }
            return;
        }
    }
}

#[cfg(test)]
mod tests;
