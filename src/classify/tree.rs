//! The decision tree over one rule subset as built: HyperSplit-style binary
//! splits on rule boundaries, leaves holding their rules cut to the leaf's
//! region. `scalar.rs` lays it out for the portable lookup, `packed.rs` for the
//! AVX2 one.

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

/// "No match yet": above every rule index (rules number below 2^31 - 1).
pub(crate) const NO_MATCH: u32 = (1 << 31) - 1;

/// Shape of a built tree, for reports.
#[derive(Clone, Copy, Debug, Default)]
pub struct TreeStats {
    pub rules: usize,
    /// Nodes as laid out: binary nodes (portable lookup), or packed nodes of
    /// three binary levels each, leaves included (AVX2 lookup).
    pub nodes: usize,
    pub leaves: usize,
    pub entries: usize,
    /// Longest root-to-leaf path of the binary tree.
    pub depth: usize,
    /// Node steps every batch lookup walks: the binary depth (portable) or the
    /// packed depth (AVX2).
    pub steps: usize,
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
    pub fn matches(&self, rule: u32, key: &Key) -> bool {
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

/// A rule cut to a leaf's region: per dimension its clipped hull, and whether
/// the cut holds several ranges anywhere (the hull then only pre-filters).
#[derive(Clone, Copy)]
pub(crate) struct Cut {
    pub id: u32,
    pub hull: Region,
    pub complex: bool,
}

/// A node of the binary tree. An inner node sends a key left when
/// `key[dim] <= thresh`; a leaf holds `cuts[start..start + len]`, in rule order.
#[derive(Clone, Copy)]
pub(crate) enum BinaryNode {
    Inner {
        dim: u8,
        thresh: u32,
        left: u32,
        right: u32,
    },
    Leaf {
        start: u32,
        len: u32,
    },
}

/// A built binary tree. Node 0 is the root; children come after their parent,
/// the right child right after the left one.
pub(crate) struct BinaryTree {
    pub nodes: Vec<BinaryNode>,
    pub cuts: Vec<Cut>,
    pub leaves: usize,
    /// Longest root-to-leaf path.
    pub depth: u32,
    /// Smallest rule index in the tree ([`NO_MATCH`] if none).
    pub min_rule: u32,
    /// Rules the tree was built from.
    pub rules: usize,
}

impl BinaryTree {
    /// Builds the tree for `ids` (indices into `rules`, ascending), or gives up
    /// with `None` as soon as the leaves hold more than `max_entries` entries
    /// counting one more per leaf.
    pub fn build(
        rules: &[ClassRule],
        ids: Vec<u32>,
        params: &TreeParams,
        max_entries: usize,
    ) -> Option<BinaryTree> {
        let min_rule = ids.first().copied().unwrap_or(NO_MATCH);
        let count = ids.len();
        let mut builder = Builder {
            rules,
            params,
            nodes: vec![BinaryNode::Leaf { start: 0, len: 0 }],
            cuts: Vec::new(),
            leaves: 0,
            max_entries,
            depth: 0,
        };
        let region = [(0, u32::MAX); DIMS];
        builder.node(0, ids, &region, 0).ok()?;
        Some(BinaryTree {
            nodes: builder.nodes,
            cuts: builder.cuts,
            leaves: builder.leaves,
            depth: builder.depth,
            min_rule,
            rules: count,
        })
    }

    /// Leaf entries plus one per leaf: the measure of the build budget.
    pub fn entry_count(&self) -> usize {
        self.cuts.len() + self.leaves
    }
}

/// Grows a [`BinaryTree`] depth-first.
struct Builder<'a> {
    rules: &'a [ClassRule],
    params: &'a TreeParams,
    nodes: Vec<BinaryNode>,
    cuts: Vec<Cut>,
    leaves: usize,
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
        let empty = BinaryNode::Leaf { start: 0, len: 0 };
        self.nodes.extend([empty, empty]);
        self.nodes[slot] = BinaryNode::Inner {
            dim: dim as u8,
            thresh: t - 1,
            left: base as u32,
            right: base as u32 + 1,
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
        if self.cuts.len() + self.leaves + cuts.len() > self.max_entries {
            return Err(OverBudget);
        }
        self.leaves += 1;
        self.depth = self.depth.max(depth);
        self.nodes[slot] = BinaryNode::Leaf {
            start: self.cuts.len() as u32,
            len: cuts.len() as u32,
        };
        self.cuts.extend_from_slice(cuts);
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
