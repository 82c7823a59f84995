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
//! - *Two layouts, one tree.* The builder makes a binary tree; it is laid out
//!   for the lookup code the CPU runs, chosen once at build time:
//!   - **AVX2** (`packed.rs`, `avx2.rs`; x86-64 with AVX2, detected at run
//!     time): three binary levels packed into one 64-byte node, so a node's
//!     seven tests are one permute of the key and one compare, and the outcome's
//!     bit mask indexes the child; leaves are blocks of eight rules stored
//!     field-major, so one key against eight rules is a subtract and a compare
//!     per field, and the match is the minimum of the slots' rule indices (a
//!     failing slot is `u32::MAX`). [`Classifier::lookup_batch`] walks 16 keys
//!     in lockstep through two trees at a time, with no data-dependent branch,
//!     then folds the leaves of eight keys at once in a transposing reduction.
//!     Leaves of more than eight rules (depth-capped unions, below) are scanned
//!     block by block until a block matches.
//!   - **Portable** (`scalar.rs`, any CPU, and the reference the AVX2 path is
//!     tested against): 8-byte binary nodes (`thresh`, `left << 3 | dim`, the
//!     right child at `left + 1`) and 44-byte leaf entries scanned until the first
//!     hit; batches of 8 keys walk in lockstep.
//!
//!   Both are flat arrays with `u32` or byte-offset indices; nothing is boxed and a
//!   lookup allocates nothing. A leaf is a node that leads back to itself (it
//!   reads a padding slot of the key that never goes right), which is what lets a
//!   batch walk a fixed number of steps. Trees are searched in order of their
//!   best rule, and a tree whose best rule cannot beat the match in hand (for
//!   every key of the batch) is skipped. With the AVX2 layout the merge step also
//!   tries unions capped to the depth of the deeper of the two trees (or one node
//!   step less), whose bottom leaves hold several blocks, and takes one when its
//!   estimated cost is clearly lower.
//!
//! # Unsafe
//!
//! The style guide keeps `unsafe` to the TAP and socket code; `avx2.rs` is the
//! one exception, because 2x DPDK's rte_acl is out of reach without SIMD (the
//! portable path stays at 1.2-1.4x on three of the five sets, below). It is contained there:
//! `std::arch` intrinsics behind `#[target_feature(enable = "avx2")]`, entered
//! only from a forest built after `is_x86_feature_detected!("avx2")`, and node
//! and block reads by byte offset without bounds checks, which
//! `packed::Tree::check_layout` makes sound when the tree is built (every
//! node's children and blocks exist). Every block has a `SAFETY:` comment, and
//! the tests run both paths against the linear scan (`simd_and_portable_paths_agree`
//! and the proptests in `tests.rs`).
//!
//! # Measurements
//!
//! The per-set figures against DPDK's rte_acl, and the alternatives tried
//! with their numbers, are in `docs/classifier.md`.

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)] // AVX2 intrinsics and unchecked node reads (see # Unsafe above)
mod avx2;
#[cfg(target_arch = "x86_64")]
mod packed;
mod rangeset;
mod scalar;
mod tree;

pub mod classbench;
mod decide;
pub mod sg;

pub use decide::{Decide, Decisions, Reference};
pub use rangeset::RangeSet;
pub use tree::TreeStats;

use tree::{BinaryTree, ComplexRules, TreeParams, NO_MATCH};

/// Keys an AVX2 batch lookup walks in lockstep (two result vectors)...
const LANES: usize = 16;
/// ...and a portable one (more spill out of the general registers).
const SCALAR_LANES: usize = 8;

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
    /// A union is built while the leaf entries of all trees stay within this many
    /// per rule of the whole set, and taken if its estimated lookup cost is
    /// below that of the two trees it replaces and...
    pub merged_entries_per_rule: usize,
    /// ...the whole structure stays within this many bytes per rule (or 64 KiB,
    /// for small sets). The same bound holds when a tree is rebuilt shallower.
    pub max_bytes_per_rule: usize,
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
            max_bytes_per_rule: 448,
        }
    }
}

/// The lookup code a classifier is built for, with its layout of the trees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    /// Plain Rust, any CPU: binary nodes, leaves scanned entry by entry.
    Portable,
    /// `std::arch` AVX2: packed nodes, leaves in blocks of eight; only
    /// constructed once the CPU is known to have AVX2.
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

impl Path {
    /// The fastest path this CPU runs.
    fn detect() -> Path {
        Path::avx2().unwrap_or(Path::Portable)
    }

    /// The AVX2 path, if this CPU has AVX2.
    fn avx2() -> Option<Path> {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") {
            return Some(Path::Avx2);
        }
        None
    }
}

/// The trees of a classifier, in search order, laid out for its path.
#[derive(Clone, Debug)]
enum Forest {
    Portable(Vec<scalar::Tree>),
    /// Built only by [`Path::Avx2`], so only on a CPU with AVX2.
    #[cfg(target_arch = "x86_64")]
    Avx2(Vec<packed::Tree>),
}

/// The compiled classifier: a few decision trees over disjoint rule subsets,
/// searched in order of their best rule with priority pruning.
#[derive(Clone, Debug)]
pub struct Classifier {
    forest: Forest,
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
        Classifier::build_for(rules, options, Path::detect())
    }

    /// [`Classifier::build_with`] for the lookup code `path`.
    fn build_for(rules: &[ClassRule], options: &BuildOptions, path: Path) -> Classifier {
        assert!(
            rules.len() < NO_MATCH as usize,
            "too many rules: {}",
            rules.len()
        );
        let forest = match path {
            Path::Portable => Forest::Portable(partition::<PortableLayout, _>(rules, options)),
            #[cfg(target_arch = "x86_64")]
            Path::Avx2 => Forest::Avx2(partition::<packed::Tree, _>(rules, options)),
        };
        Classifier {
            forest,
            complex: ComplexRules::new(rules),
            len: rules.len(),
        }
    }

    /// The index of the first rule matching `key`, or `None`.
    #[inline]
    #[allow(unsafe_code)] // the call into the AVX2 forest, see its SAFETY
    pub fn lookup(&self, key: &Key) -> Option<u32> {
        let best = match &self.forest {
            Forest::Portable(trees) => {
                let key = scalar::pad(key);
                let mut best = NO_MATCH;
                for tree in trees {
                    if tree.min_rule >= best {
                        break;
                    }
                    best = tree.lookup(&key, best, &self.complex);
                }
                best
            }
            #[cfg(target_arch = "x86_64")]
            // SAFETY: an AVX2 forest is built only once the CPU was found to
            // have AVX2 (`Path::Avx2`).
            Forest::Avx2(trees) => unsafe { avx2::lookup(trees, &self.complex, key) },
        };
        (best != NO_MATCH).then_some(best)
    }

    /// [`Classifier::lookup`] for each key of `keys` into the same position of
    /// `out`.
    ///
    /// # Panics
    /// If `out` is shorter than `keys`.
    #[allow(unsafe_code)] // the call into the AVX2 forest, see its SAFETY
    pub fn lookup_batch(&self, keys: &[Key], out: &mut [Option<u32>]) {
        assert!(
            out.len() >= keys.len(),
            "lookup_batch: {} keys, {} outputs",
            keys.len(),
            out.len()
        );
        match &self.forest {
            Forest::Portable(trees) => self.batches::<SCALAR_LANES>(keys, out, |keys, best| {
                let keys = keys.map(|k| scalar::pad(&k));
                for tree in trees {
                    tree.lookup_lanes(&keys, best, &self.complex);
                }
            }),
            #[cfg(target_arch = "x86_64")]
            Forest::Avx2(trees) => self.batches::<LANES>(keys, out, |keys, best| {
                // SAFETY: an AVX2 forest is built only once the CPU was found to
                // have AVX2 (`Path::Avx2`).
                unsafe { avx2::lookup_batch(trees, &self.complex, keys, best) }
            }),
        }
    }

    /// Runs `batch` on each whole batch of `B` keys, and single lookups on the
    /// rest.
    #[inline(always)]
    fn batches<const B: usize>(
        &self,
        keys: &[Key],
        out: &mut [Option<u32>],
        mut batch: impl FnMut(&[Key; B], &mut [u32; B]),
    ) {
        let mut key_chunks = keys.chunks_exact(B);
        let mut out_chunks = out.chunks_exact_mut(B);
        for (keys, out) in (&mut key_chunks).zip(&mut out_chunks) {
            let keys: &[Key; B] = keys.try_into().expect("chunks of B keys");
            let mut best = [NO_MATCH; B];
            batch(keys, &mut best);
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
        let trees = match &self.forest {
            Forest::Portable(trees) => {
                trees.capacity() * size_of::<scalar::Tree>()
                    + trees.iter().map(scalar::Tree::memory_bytes).sum::<usize>()
            }
            #[cfg(target_arch = "x86_64")]
            Forest::Avx2(trees) => {
                trees.capacity() * size_of::<packed::Tree>()
                    + trees.iter().map(packed::Tree::memory_bytes).sum::<usize>()
            }
        };
        trees + self.complex.memory_bytes()
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
        match &self.forest {
            Forest::Portable(trees) => trees.iter().map(scalar::Tree::stats).collect(),
            #[cfg(target_arch = "x86_64")]
            Forest::Avx2(trees) => trees.iter().map(packed::Tree::stats).collect(),
        }
    }
}

/// A tree as the partitioner builds and weighs it, in one layout.
trait Layout: Sized {
    /// Builds the tree for `ids`, or `None` if its leaves outgrow `max_entries`
    /// (counting one more per leaf).
    fn build(
        rules: &[ClassRule],
        ids: Vec<u32>,
        params: &TreeParams,
        max_entries: usize,
    ) -> Option<Self>;
    fn memory_bytes(&self) -> usize;
    /// Leaf entries plus one per leaf.
    fn entry_count(&self) -> usize;
    /// Longest root-to-leaf path of the binary tree.
    fn depth(&self) -> u32;
    fn min_rule(&self) -> u32;
    /// Node steps of a batch walk and estimated lookup cost, if the layout
    /// takes depth-capped unions (see [`Partitioner::capped_union`]);
    /// `resident`: whether the whole classifier fits a core's L2 cache.
    fn steps_and_cost(&self, resident: bool) -> Option<(u32, f64)>;
}

/// The portable layout, with what the partitioner weighs kept beside it.
struct PortableLayout {
    tree: scalar::Tree,
    entries: usize,
    depth: u32,
}

impl Layout for PortableLayout {
    fn build(
        rules: &[ClassRule],
        ids: Vec<u32>,
        params: &TreeParams,
        max_entries: usize,
    ) -> Option<Self> {
        let binary = BinaryTree::build(rules, ids, params, max_entries)?;
        Some(PortableLayout {
            tree: scalar::Tree::new(&binary),
            entries: binary.entry_count(),
            depth: binary.depth,
        })
    }
    fn memory_bytes(&self) -> usize {
        self.tree.memory_bytes()
    }
    fn entry_count(&self) -> usize {
        self.entries
    }
    fn depth(&self) -> u32 {
        self.depth
    }
    fn min_rule(&self) -> u32 {
        self.tree.min_rule
    }
    fn steps_and_cost(&self, _resident: bool) -> Option<(u32, f64)> {
        // A long leaf is a long scan here too, but the early-exit scan pays
        // per entry anyway: the portable path keeps its plain merges.
        None
    }
}

impl From<PortableLayout> for scalar::Tree {
    fn from(layout: PortableLayout) -> scalar::Tree {
        layout.tree
    }
}

#[cfg(target_arch = "x86_64")]
impl Layout for packed::Tree {
    fn build(
        rules: &[ClassRule],
        ids: Vec<u32>,
        params: &TreeParams,
        max_entries: usize,
    ) -> Option<Self> {
        packed::Tree::build(rules, ids, params, max_entries)
    }
    fn memory_bytes(&self) -> usize {
        packed::Tree::memory_bytes(self)
    }
    fn entry_count(&self) -> usize {
        packed::Tree::entry_count(self)
    }
    fn depth(&self) -> u32 {
        packed::Tree::depth(self)
    }
    fn min_rule(&self) -> u32 {
        self.min_rule
    }
    fn steps_and_cost(&self, resident: bool) -> Option<(u32, f64)> {
        Some((self.steps(), self.cost(resident)))
    }
}

/// The trees over `rules` in layout `T`, in search order (by best rule).
fn partition<T: Layout, U: From<T>>(rules: &[ClassRule], options: &BuildOptions) -> Vec<U> {
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
    let mut partitioner = Partitioner::<T> {
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
    partitioner.merge(Partitioner::plain_union);
    partitioner.merge(Partitioner::capped_union);
    let mut trees: Vec<T> = partitioner
        .parts
        .into_iter()
        .map(|(_, tree)| tree)
        .collect();
    trees.sort_by_key(|t| t.min_rule());
    trees.into_iter().map(U::from).collect()
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
struct Partitioner<'a, T> {
    rules: &'a [ClassRule],
    lens: &'a [[u8; 2]],
    options: &'a BuildOptions,
    params: TreeParams,
    /// Each subset (ascending rule indices) and its tree.
    parts: Vec<(Vec<u32>, T)>,
}

type LenBounds = [(u8, u8); 2];

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

impl<T: Layout> Partitioner<'_, T> {
    /// One tree for `ids` if it fits the budget, else a split of the subset.
    fn build(&mut self, ids: Vec<u32>, bounds: LenBounds) {
        let budget = self.budget(ids.len());
        if let Some(tree) = T::build(self.rules, ids.clone(), &self.params, budget) {
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
            if let Some(tree) = T::build(self.rules, ids.clone(), &params, budget) {
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

    /// Greedily replaces two subsets by their union wherever `union` builds one
    /// that is worth it, smallest subsets first, within `merge_attempts`.
    fn merge(&mut self, union: fn(&Self, usize, usize, &[u32]) -> Option<T>) {
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
                    match union(self, i, j, &ids) {
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

    /// First merge pass: the union as it comes, taken if it fits the merged
    /// entry budget and the memory bound (growing the whole at most 2.5 times,
    /// or freely below 768 KiB, about a core's L2), and is at most
    /// [`MERGE_DEPTH_SLACK`] binary levels deeper than the deeper of the two.
    fn plain_union(&self, i: usize, j: usize, ids: &[u32]) -> Option<T> {
        let (a, b) = (&self.parts[i].1, &self.parts[j].1);
        let budget = self.shared_budget(ids.len(), &[i, j]);
        let free = self.memory_free(&[i, j], 5, 2);
        T::build(self.rules, ids.to_vec(), &self.params, budget).filter(|t| {
            t.memory_bytes() <= free && t.depth() <= a.depth().max(b.depth()) + MERGE_DEPTH_SLACK
        })
    }

    /// Second merge pass: the union with its depth capped to walk no more steps
    /// than the deeper of the two, or one step less (leaves at the cap hold more
    /// than eight rules, in several blocks; a lower cap also means less
    /// replication), the cheaper one taken if its estimated lookup cost is well
    /// below that of the two and the whole grows at most by a quarter (or freely
    /// below 768 KiB): large sets pay for memory in cache misses.
    fn capped_union(&self, i: usize, j: usize, ids: &[u32]) -> Option<T> {
        let (a, b) = (&self.parts[i].1, &self.parts[j].1);
        let now: usize = self.parts.iter().map(|(_, t)| t.memory_bytes()).sum();
        let others = now - a.memory_bytes() - b.memory_bytes();
        // Whether the classifier, before and after the union, stays in L2.
        let resident = |t: &T| now.max(others + t.memory_bytes()) <= GROWTH_FLOOR;
        let (steps_a, _) = a.steps_and_cost(false)?;
        let (steps_b, _) = b.steps_and_cost(false)?;
        let cost = |t: &T, resident| t.steps_and_cost(resident).map_or(f64::INFINITY, |(_, c)| c);
        let free = self.memory_free(&[i, j], 5, 4);
        // Well below L2 (room to grow), leaves at the cap may hold many
        // entries: memory bounds them, not the entry budget (a leaf entry takes
        // 44 bytes in a block). Above, the search stays short: the builds of
        // large sets are what it would slow down.
        let small = now <= GROWTH_FLOOR / 2;
        let mut budget = self.shared_budget(ids.len(), &[i, j]);
        if small {
            budget = budget.max(free / 44);
        }
        let fits = |t: &T| {
            let r = resident(t);
            t.memory_bytes() <= free && cost(t, r) < CAPPED_GAIN * (cost(a, r) + cost(b, r))
        };
        // Per step count, the deepest cap that fits; small sets also try caps
        // one or two levels short of the steps' full three levels, which
        // replicate less and leave longer leaves, cheap when they stay in cache.
        let steps = steps_a.max(steps_b);
        let shorter = if small { 2 } else { 0 };
        (steps.saturating_sub(1).max(1)..=steps)
            .filter_map(|s| {
                (s * 3 - shorter..=s * 3)
                    .rev()
                    .filter_map(|depth| {
                        T::build(self.rules, ids.to_vec(), &self.capped(depth), budget)
                    })
                    .find(fits)
            })
            .min_by(|x, y| cost(x, resident(x)).total_cmp(&cost(y, resident(y))))
    }

    /// The build knobs with the binary depth capped at `depth` levels.
    fn capped(&self, depth: u32) -> TreeParams {
        TreeParams {
            max_depth: self.params.max_depth.min(depth),
            ..self.params.clone()
        }
    }

    /// The entry budget of a tree replacing parts `replaced`: its own, or what
    /// the other trees leave of the whole set's merged budget.
    fn shared_budget(&self, rules: usize, replaced: &[usize]) -> usize {
        let others: usize = self
            .parts
            .iter()
            .enumerate()
            .filter(|(k, _)| !replaced.contains(k))
            .map(|(_, (_, t))| t.entry_count())
            .sum();
        let global = self
            .options
            .merged_entries_per_rule
            .saturating_mul(self.rules.len());
        self.budget(rules).max(global.saturating_sub(others))
    }

    /// Bytes a tree replacing parts `replaced` may take: what the other trees
    /// leave of the memory bound, which is the whole at most `num / den` times
    /// what it is now (or 768 KiB), and at most `max_bytes_per_rule` per rule
    /// (or 64 KiB).
    fn memory_free(&self, replaced: &[usize], num: usize, den: usize) -> usize {
        let bytes = |(_, t): &(Vec<u32>, T)| t.memory_bytes();
        let now: usize = self.parts.iter().map(bytes).sum();
        let others: usize = self
            .parts
            .iter()
            .enumerate()
            .filter(|(k, _)| !replaced.contains(k))
            .map(|(_, part)| bytes(part))
            .sum();
        let growth = (now.saturating_mul(num) / den).max(GROWTH_FLOOR);
        let per_rule = (self.options.max_bytes_per_rule)
            .saturating_mul(self.rules.len())
            .max(MEMORY_FLOOR);
        growth.min(per_rule).saturating_sub(others)
    }
}

/// A union may be this many levels deeper than the deeper of its two trees: a
/// batch walks every tree to its full depth.
const MERGE_DEPTH_SLACK: u32 = 3;

/// A depth-capped union must be estimated at most this fraction of the cost of
/// its two trees: the estimate of its multi-block leaves is rough.
const CAPPED_GAIN: f64 = 0.9;

/// Below this many bytes a structure may grow freely (about a core's L2)...
const GROWTH_FLOOR: usize = 768 << 10;

/// ...and is small whatever its bytes per rule.
const MEMORY_FLOOR: usize = 64 << 10;

#[cfg(test)]
mod tests;
