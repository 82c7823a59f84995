//! The portable layout of a [`BinaryTree`]: two flat arrays (8-byte binary
//! nodes, 44-byte leaf entries) walked with `u32` indices, a batch of keys in
//! lockstep, leaves scanned entry by entry until the first hit. Plain Rust, any
//! CPU; the lookup wherever AVX2 is missing.

use super::tree::{BinaryNode, BinaryTree, ComplexRules, TreeStats, NO_MATCH};
use super::{Key, DIMS};

/// Dimension code of a leaf node. A leaf reads padding slot 5 of the key, which
/// is always 0 and so never `> thresh`: a leaf's step leads back to itself, which
/// lets a batch of lookups walk a fixed number of steps without branching.
const LEAF: u32 = 5;
const DIM_MASK: u32 = 7;
const DIM_BITS: u32 = 3;
/// Set in [`Entry::rule`] when the rule holds several ranges in some dimension
/// inside the leaf's region, so the entry's hull is only a pre-filter.
const COMPLEX: u32 = 1 << 31;

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
    /// Closes each leaf: its rule is above every match, so a scan stops on it.
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

/// One rule subset in the portable layout.
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
    /// Lays `tree` out in the two arrays.
    pub fn new(tree: &BinaryTree) -> Tree {
        let mut entries = Vec::with_capacity(tree.cuts.len() + tree.leaves);
        let nodes = tree
            .nodes
            .iter()
            .enumerate()
            .map(|(at, node)| match *node {
                BinaryNode::Inner {
                    dim,
                    thresh,
                    left,
                    right,
                } => {
                    debug_assert_eq!(right, left + 1, "siblings are adjacent");
                    Node {
                        thresh,
                        meta: left << DIM_BITS | u32::from(dim),
                    }
                }
                BinaryNode::Leaf { start, len } => {
                    let first = entries.len() as u32;
                    entries.extend(
                        tree.cuts[start as usize..(start + len) as usize]
                            .iter()
                            .map(|c| Entry {
                                lo: c.hull.map(|(lo, _)| lo),
                                span: c.hull.map(|(lo, hi)| hi - lo),
                                rule: c.id | if c.complex { COMPLEX } else { 0 },
                            }),
                    );
                    entries.push(Entry::SENTINEL);
                    Node {
                        thresh: first,
                        meta: (at as u32) << DIM_BITS | LEAF,
                    }
                }
            })
            .collect();
        Tree {
            nodes,
            entries,
            min_rule: tree.min_rule,
            depth: tree.depth,
            rules: tree.rules,
        }
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
            if e.hit(key) && (e.rule & COMPLEX == 0 || complex.matches(rule, &unpad(key))) {
                return rule;
            }
        }
        best
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
            steps: self.depth as usize,
        }
    }
}

fn unpad(key: &PaddedKey) -> Key {
    [key[0], key[1], key[2], key[3], key[4]]
}
