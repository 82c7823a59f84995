//! Compiled packet classifier for new-flow decisions (doc filled in below).

mod rangeset;
mod tree;

pub mod classbench;

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
        ClassRule { fields: std::array::from_fn(|_| RangeSet::any()) }
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
    /// per rule of the whole set.
    pub merged_entries_per_rule: usize,
}

impl Default for BuildOptions {
    fn default() -> BuildOptions {
        BuildOptions { small_prefix: 16, leaf_size: 8, max_depth: 64, redundancy_limit: 64, entries_per_rule: 6, merge_attempts: 16, merged_entries_per_rule: 8 }
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
        assert!(rules.len() < NO_MATCH as usize, "too many rules: {}", rules.len());
        let params = TreeParams {
            leaf_size: options.leaf_size.max(1),
            max_depth: options.max_depth,
            redundancy_limit: options.redundancy_limit,
        };
        let ids: Vec<u32> =
            (0..rules.len() as u32).filter(|&i| !rules[i as usize].fields.iter().any(RangeSet::is_empty)).collect();
        let lens: Vec<[u8; 2]> = rules.iter().map(|r| [prefix_len(&r.fields[0]), prefix_len(&r.fields[1])]).collect();
        let mut partitioner = Partitioner { rules, lens: &lens, options, params, parts: Vec::new() };
        let all = [(0, 32); 2];
        match options.small_prefix.min(32) {
            0 => partitioner.build(ids, all),
            first => partitioner.split(ids, all, [first; 2]),
        }
        partitioner.merge();
        let mut trees: Vec<Tree> = partitioner.parts.into_iter().map(|(_, tree)| tree).collect();
        trees.sort_by_key(|t| t.min_rule);
        Classifier { trees, complex: ComplexRules::new(rules), len: rules.len() }
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
        assert!(out.len() >= keys.len(), "lookup_batch: {} keys, {} outputs", keys.len(), out.len());
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
        for (key, slot) in key_chunks.remainder().iter().zip(out_chunks.into_remainder()) {
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
            let part = (0..2).map(|a| usize::from(mid[a] > 0 && lens[a] >= mid[a]) << a).sum::<usize>();
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
        self.options.entries_per_rule.saturating_mul(rules).saturating_add(64)
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
                    let others: usize = self.parts.iter().map(|(_, t)| t.entry_count()).sum::<usize>()
                        - self.parts[i].1.entry_count()
                        - self.parts[j].1.entry_count();
                    let global = self.options.merged_entries_per_rule.saturating_mul(self.rules.len());
                    let budget = self.budget(ids.len()).max(global.saturating_sub(others));
                    match Tree::build(self.rules, ids.clone(), &self.params, budget) {
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
