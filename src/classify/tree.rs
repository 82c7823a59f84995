//! One decision tree over a subset of the rules: HyperSplit-style binary splits
//! on rule boundaries, flattened into two arrays (nodes, leaf entries) that a
//! lookup walks with `u32` indices and no allocation.

use super::{ClassRule, Key, DIMS};

/// Build knobs of one tree.
#[derive(Clone, Debug)]
pub(crate) struct TreeParams {
    /// A node with at most this many live rules becomes a leaf.
    pub leaf_size: usize,
    /// Depth at which a node becomes a leaf whatever its size.
    pub max_depth: u32,
    /// Pairwise redundancy removal runs on nodes with at most this many rules.
    pub redundancy_limit: usize,
}

/// Dimension code of a leaf node. A leaf reads padding slot 5 of the key, which
/// is always 0 and so never `> thresh`: a leaf's step leads back to itself, which
/// lets a batch of lookups walk a fixed number of steps without branching.
const LEAF: u32 = 5;
const DIM_MASK: u32 = 7;
const DIM_BITS: u32 = 3;
/// Set in [`Entry::rule`] when the rule holds several ranges in some dimension
/// inside the leaf's region, so the entry's hull is only a pre-filter.
const COMPLEX: u32 = 1 << 31;
/// "No match yet": above every rule index, so the sentinel entry closing each
/// leaf (whose rule is this value) always stops the scan.
pub(crate) const NO_MATCH: u32 = COMPLEX - 1;

/// A key padded to eight fields (slots 5-7 are 0) so a node's 3-bit dimension
/// indexes it without a bounds check.
pub(crate) type PaddedKey = [u32; 8];

pub(crate) fn pad(key: &Key) -> PaddedKey {
    [key[0], key[1], key[2], key[3], key[4], 0, 0, 0]
}

/// A tree node, 8 bytes.
///
/// Inner node: `meta = left << 3 | dim`; the right child is `left + 1` and is taken
/// when `key[dim] > thresh`. Leaf: `meta = self << 3 | LEAF` and `thresh` is the
/// index of its first entry; the entries run up to a sentinel.
#[derive(Clone, Copy, Debug)]
struct Node {
    thresh: u32,
    meta: u32,
}

impl Node {
    /// The node a key goes to next (itself for a leaf).
    #[inline(always)]
    fn next(self, key: &PaddedKey) -> usize {
        (self.meta >> DIM_BITS) as usize
            + usize::from(key[(self.meta & DIM_MASK) as usize] > self.thresh)
    }
}

/// A rule as seen inside one leaf: its ranges cut to the leaf's region, stored as
/// `lo` and `span = hi - lo`, so a field matches when `key - lo <= span` (wrapping).
#[derive(Clone, Copy, Debug)]
struct Entry {
    lo: [u32; DIMS],
    span: [u32; DIMS],
    rule: u32,
}

impl Entry {
    const SENTINEL: Entry = Entry {
        lo: [0; DIMS],
        span: [0; DIMS],
        rule: NO_MATCH,
    };

    #[inline(always)]
    fn hit(&self, key: &PaddedKey) -> bool {
        let mut ok = true;
        for ((k, lo), span) in key.iter().zip(&self.lo).zip(&self.span) {
            ok &= k.wrapping_sub(*lo) <= *span;
        }
        ok
    }
}

/// The compiled form of one rule subset.
#[derive(Clone, Debug)]
pub(crate) struct Tree {
    nodes: Vec<Node>,
    entries: Vec<Entry>,
    /// Smallest rule index in the tree: a lookup that already holds a better match
    /// skips the tree.
    pub min_rule: u32,
    /// Longest root-to-leaf path.
    depth: u32,
    /// Rules the tree was built from.
    rules: usize,
}

impl Tree {
    /// Builds the tree for `ids` (indices into `rules`, ascending), or gives up
    /// with `None` as soon as the leaves hold more than `max_entries` entries.
    pub fn build(
        rules: &[ClassRule],
        ids: Vec<u32>,
        params: &TreeParams,
        max_entries: usize,
    ) -> Option<Tree> {
        let min_rule = ids.first().copied().unwrap_or(NO_MATCH);
        let count = ids.len();
        let mut builder = Builder {
            rules,
            params,
            nodes: vec![Node {
                thresh: 0,
                meta: LEAF,
            }],
            entries: Vec::new(),
            max_entries,
            depth: 0,
        };
        let region = [(0, u32::MAX); DIMS];
        builder.node(0, ids, &region, 0).ok()?;
        let Builder {
            mut nodes,
            mut entries,
            depth,
            ..
        } = builder;
        nodes.shrink_to_fit();
        entries.shrink_to_fit();
        Some(Tree {
            nodes,
            entries,
            min_rule,
            depth,
            rules: count,
        })
    }

    /// First rule matching `key` with an index below `best`, or `best`.
    #[inline(always)]
    pub fn lookup(&self, key: &PaddedKey, best: u32, complex: &ComplexRules) -> u32 {
        let mut node = self.nodes[0];
        while node.meta & DIM_MASK != LEAF {
            node = self.nodes[node.next(key)];
        }
        self.scan(node.thresh, key, best, complex)
    }

    /// [`Tree::lookup`] for a batch of keys at once: the walks advance in lockstep,
    /// one level per round, so the loads of different keys overlap.
    #[inline(always)]
    pub fn lookup_lanes<const L: usize>(
        &self,
        keys: &[PaddedKey; L],
        best: &mut [u32; L],
        complex: &ComplexRules,
    ) {
        let mut at = [0usize; L];
        for _ in 0..self.depth {
            for l in 0..L {
                at[l] = self.nodes[at[l]].next(&keys[l]);
            }
        }
        for l in 0..L {
            best[l] = self.scan(self.nodes[at[l]].thresh, &keys[l], best[l], complex);
        }
    }

    /// Scans the leaf starting at entry `start` for the first rule matching `key`
    /// with an index below `best`.
    #[inline(always)]
    fn scan(&self, start: u32, key: &PaddedKey, best: u32, complex: &ComplexRules) -> u32 {
        for e in &self.entries[start as usize..] {
            let rule = e.rule & !COMPLEX;
            if rule >= best {
                break;
            }
            if e.hit(key) && (e.rule & COMPLEX == 0 || complex.matches(rule, key)) {
                return rule;
            }
        }
        best
    }

    /// Longest root-to-leaf path.
    pub fn depth(&self) -> u32 {
        self.depth
    }

    /// Leaf entries, sentinels included.
    pub fn entry_count(&self) -> usize {
        self.entries.len()
    }

    pub fn memory_bytes(&self) -> usize {
        self.nodes.capacity() * size_of::<Node>() + self.entries.capacity() * size_of::<Entry>()
    }

    pub fn stats(&self) -> TreeStats {
        let leaves = self
            .nodes
            .iter()
            .filter(|n| n.meta & DIM_MASK == LEAF)
            .count();
        TreeStats {
            rules: self.rules,
            nodes: self.nodes.len(),
            leaves,
            entries: self.entries.len() - leaves,
            depth: self.depth as usize,
        }
    }
}

/// Shape of a built tree, for reports.
#[derive(Clone, Copy, Debug, Default)]
pub struct TreeStats {
    pub rules: usize,
    pub nodes: usize,
    pub leaves: usize,
    pub entries: usize,
    pub depth: usize,
}

/// The full range sets of the rules that hold several ranges in a dimension,
/// checked after an entry's hull matched.
#[derive(Clone, Debug, Default)]
pub(crate) struct ComplexRules {
    /// Sorted by rule index.
    rules: Vec<(u32, ClassRule)>,
}

impl ComplexRules {
    pub fn new(rules: &[ClassRule]) -> ComplexRules {
        let rules = rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.fields.iter().any(|f| f.ranges().len() > 1))
            .map(|(i, r)| (i as u32, r.clone()))
            .collect();
        ComplexRules { rules }
    }

    #[cold]
    fn matches(&self, rule: u32, key: &PaddedKey) -> bool {
        let key: &Key = key[..DIMS]
            .try_into()
            .expect("a padded key holds DIMS fields");
        match self.rules.binary_search_by_key(&rule, |(i, _)| *i) {
            Ok(i) => self.rules[i].1.matches(key),
            Err(_) => unreachable!("complex entry for rule {rule} has no range sets"),
        }
    }

    pub fn memory_bytes(&self) -> usize {
        self.rules.capacity() * size_of::<(u32, ClassRule)>()
            + self
                .rules
                .iter()
                .flat_map(|(_, r)| r.fields.iter())
                .map(|f| f.heap_bytes())
                .sum::<usize>()
    }
}

type Region = [(u32, u32); DIMS];

/// A rule cut to a node's region: per dimension its clipped hull, and whether the
/// cut holds several ranges anywhere.
#[derive(Clone, Copy)]
struct Cut {
    id: u32,
    hull: Region,
    complex: bool,
}

struct Builder<'a> {
    rules: &'a [ClassRule],
    params: &'a TreeParams,
    nodes: Vec<Node>,
    entries: Vec<Entry>,
    max_entries: usize,
    depth: u32,
}

/// The leaves outgrew the entry budget.
struct OverBudget;

impl Builder<'_> {
    /// Fills `nodes[slot]` with the subtree for the rules `ids` inside `region`.
    fn node(
        &mut self,
        slot: usize,
        ids: Vec<u32>,
        region: &Region,
        depth: u32,
    ) -> Result<(), OverBudget> {
        let cuts = self.live_rules(&ids, region);
        drop(ids);
        if cuts.len() <= self.params.leaf_size || depth >= self.params.max_depth {
            return self.leaf(slot, &cuts, depth);
        }
        let Some((dim, t)) = best_split(&cuts, region) else {
            return self.leaf(slot, &cuts, depth);
        };
        let left: Vec<u32> = cuts
            .iter()
            .filter(|c| c.hull[dim].0 < t)
            .map(|c| c.id)
            .collect();
        let right: Vec<u32> = cuts
            .iter()
            .filter(|c| c.hull[dim].1 >= t)
            .map(|c| c.id)
            .collect();
        drop(cuts);
        let base = self.nodes.len();
        self.nodes.push(Node {
            thresh: 0,
            meta: LEAF,
        });
        self.nodes.push(Node {
            thresh: 0,
            meta: LEAF,
        });
        self.nodes[slot] = Node {
            thresh: t - 1,
            meta: (base as u32) << DIM_BITS | dim as u32,
        };
        let mut left_region = *region;
        left_region[dim].1 = t - 1;
        self.node(base, left, &left_region, depth + 1)?;
        let mut right_region = *region;
        right_region[dim].0 = t;
        self.node(base + 1, right, &right_region, depth + 1)
    }

    /// The rules of `ids` that can still decide a key inside `region`, in order:
    /// rules missing the region are dropped, everything after a rule covering the
    /// whole region is dropped, and (on small nodes) every rule whose cut lies inside
    /// the cut of an earlier single-range rule is dropped.
    fn live_rules(&self, ids: &[u32], region: &Region) -> Vec<Cut> {
        let mut cuts = Vec::with_capacity(ids.len());
        'rules: for &id in ids {
            let rule = &self.rules[id as usize];
            let mut cut = Cut {
                id,
                hull: *region,
                complex: false,
            };
            for ((field, &(lo, hi)), hull) in rule.fields.iter().zip(region).zip(&mut cut.hull) {
                let Some((clipped, several)) = field.clipped_hull(lo, hi) else {
                    continue 'rules;
                };
                *hull = clipped;
                cut.complex |= several;
            }
            cuts.push(cut);
            if !cut.complex && cut.hull == *region {
                break;
            }
        }
        if cuts.len() <= self.params.redundancy_limit {
            let mut kept: Vec<Cut> = Vec::with_capacity(cuts.len());
            for cut in cuts {
                let shadowed = kept.iter().any(|k| {
                    !k.complex
                        && (0..DIMS)
                            .all(|d| k.hull[d].0 <= cut.hull[d].0 && cut.hull[d].1 <= k.hull[d].1)
                });
                if !shadowed {
                    kept.push(cut);
                }
            }
            return kept;
        }
        cuts
    }

    fn leaf(&mut self, slot: usize, cuts: &[Cut], depth: u32) -> Result<(), OverBudget> {
        if self.entries.len() + cuts.len() > self.max_entries {
            return Err(OverBudget);
        }
        self.depth = self.depth.max(depth);
        let start = self.entries.len() as u32;
        for c in cuts {
            let mut e = Entry {
                lo: [0; DIMS],
                span: [0; DIMS],
                rule: c.id | if c.complex { COMPLEX } else { 0 },
            };
            for d in 0..DIMS {
                e.lo[d] = c.hull[d].0;
                e.span[d] = c.hull[d].1 - c.hull[d].0;
            }
            self.entries.push(e);
        }
        self.entries.push(Entry::SENTINEL);
        self.nodes[slot] = Node {
            thresh: start,
            meta: (slot as u32) << DIM_BITS | LEAF,
        };
        Ok(())
    }
}

/// The split `(dim, t)` (left: `< t`, right: `>= t`) that minimises the larger
/// child's rule count, then the total count (replication); `None` if no
/// dimension has a rule boundary strictly inside the region.
fn best_split(cuts: &[Cut], region: &Region) -> Option<(usize, u32)> {
    let n = cuts.len();
    let mut best: Option<((usize, usize), usize, u32)> = None;
    let mut los = Vec::with_capacity(n);
    let mut his = Vec::with_capacity(n);
    for (d, &(rlo, rhi)) in region.iter().enumerate() {
        if rlo == rhi {
            continue;
        }
        los.clear();
        his.clear();
        los.extend(cuts.iter().map(|c| c.hull[d].0));
        his.extend(cuts.iter().map(|c| c.hull[d].1));
        los.sort_unstable();
        his.sort_unstable();
        // Candidates are the starts above the region's start and the ends below its
        // end (plus one), visited in increasing order by merging the two sorted
        // lists; `below_lo` and `below_hi` count the starts and ends below the
        // candidate, so the children hold `below_lo` and `n - below_hi` rules.
        let (mut i, mut j) = (los.partition_point(|&lo| lo <= rlo), 0);
        let mut below_lo = i;
        let mut below_hi = 0;
        loop {
            let from_lo = los.get(i).copied();
            let from_hi = his.get(j).filter(|&&hi| hi < rhi).map(|&hi| hi + 1);
            let t = match (from_lo, from_hi) {
                (None, None) => break,
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) => a,
                (None, Some(b)) => b,
            };
            while below_lo < n && los[below_lo] < t {
                below_lo += 1;
            }
            while below_hi < n && his[below_hi] < t {
                below_hi += 1;
            }
            let (left, right) = (below_lo, n - below_hi);
            let cost = (left.max(right), left + right);
            if best.is_none_or(|(c, _, _)| cost < c) {
                best = Some((cost, d, t));
            }
            while i < n && los[i] <= t {
                i += 1;
            }
            while j < n && his[j] < t {
                j += 1;
            }
        }
    }
    best.map(|(_, d, t)| (d, t))
}
