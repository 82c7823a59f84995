//! The AVX2 layout of a [`BinaryTree`]: three binary levels packed in one
//! 64-byte node (the seven tests of a node are one SIMD compare), leaves stored
//! field-major in blocks of eight rules (one key against eight rules is one
//! SIMD compare per field). Flat arrays addressed by byte offsets; `avx2.rs`
//! walks them.

use super::tree::{BinaryNode, BinaryTree, Cut, TreeParams, TreeStats, NO_MATCH};
use super::{ClassRule, DIMS};

/// XOR with this bit maps unsigned order onto signed order: SIMD compares are
/// signed, so thresholds, spans and keys are stored biased.
pub(crate) const BIAS: u32 = 1 << 31;
/// Key slot a padding test of a node reads: a key's slots 5-7 are `0 ^ BIAS`
/// (`i32::MIN`), never greater than a threshold, so the test always goes left.
const PAD_DIM: u8 = 5;
/// Binary levels per packed node, and the tests and children that makes.
const LEVELS: usize = 3;
const TESTS: usize = (1 << LEVELS) - 1;
pub(crate) const FANOUT: usize = 1 << LEVELS;
/// Rule slots of a leaf block: one 256-bit vector of `i32`.
pub(crate) const SLOTS: usize = 8;

/// Level-3 position (0..8) reached through a complete 3-level binary tree whose
/// tests (breadth-first: 0 the root, 1-2, 3-6) came out as the bits of the
/// index: bit `t` set means test `t` went right (bit 7 is ignored). The AVX2
/// walk evaluates all seven tests at once and looks the path up here.
pub(crate) const PATH: [u8; 1 << FANOUT] = {
    let mut table = [0u8; 1 << FANOUT];
    let mut mask = 0;
    while mask < table.len() {
        let mut t = 0;
        let mut level = 0;
        while level < LEVELS {
            t = 2 * t + 1 + (mask >> t & 1);
            level += 1;
        }
        table[mask] = (t - TESTS) as u8;
        mask += 1;
    }
    table
};

/// [`PATH`] in bytes of the node array: what a walk adds to a node's `base`.
pub(crate) const PATH_BYTES: [u64; 1 << FANOUT] = {
    let mut table = [0u64; 1 << FANOUT];
    let mut mask = 0;
    while mask < table.len() {
        table[mask] = PATH[mask] as u64 * NODE_BYTES as u64;
        mask += 1;
    }
    table
};

pub(crate) const NODE_BYTES: usize = size_of::<Node>();
pub(crate) const BLOCK_BYTES: usize = size_of::<Block>();

/// Up to three levels of the binary tree in one cache line.
///
/// Test `t` (breadth-first, `t < 7`) sends a probe right when
/// `probe[dims[t]] > thresh[t]`; after three tests the probe is at position
/// `p` (0..8) and goes to node `base + p`. A node over fewer levels puts its
/// tests at the bottom, under padding tests on [`PAD_DIM`] that always go left,
/// so its children are dense from `base`; a leaf inside a node is repeated at
/// every position below it. A leaf node has only padding tests and `base` its
/// own offset, so a walk that reaches it stays: a batch walks every tree for
/// its full number of steps with no data-dependent branch. Its rules are
/// `blocks` blocks from `block`.
///
/// `base` and `block` are byte offsets into the node and block arrays, so the
/// AVX2 walk adds [`PATH_BYTES`] to `base` and is at the next node.
/// [`Tree::build`] checks that every `base` leaves room for eight nodes and
/// every `block` for at least one block, whatever the node.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub(crate) struct Node {
    pub thresh: [i32; FANOUT],
    pub dims: [u8; FANOUT],
    pub base: u64,
    pub block: u64,
    pub blocks: u32,
}

impl Node {
    /// A leaf at node index `at` whose rules are `blocks` blocks from block
    /// index `first`.
    fn leaf(at: usize, first: usize, blocks: usize) -> Node {
        Node {
            thresh: [i32::MAX; FANOUT],
            dims: [PAD_DIM; FANOUT],
            base: (at * NODE_BYTES) as u64,
            block: (first * BLOCK_BYTES) as u64,
            blocks: blocks as u32,
        }
    }
}

/// Up to eight rules of a leaf, field-major, in priority order.
///
/// Slot `s` matches a probe when, for every dimension `d`,
/// `probe[d] - lo[d][s] <= span[d][s]` as `i32` (`lo` plain, `span` biased: the
/// difference of a biased key and a plain bound is the biased offset, so this is
/// `key - lo <= hi - lo` unsigned). Empty slots hold rule [`NO_MATCH`], never
/// below the match in hand. 352 bytes, every row 32-byte aligned for the AVX2
/// loads; which slots hold a complex rule (several ranges in some dimension
/// inside the leaf, so the hull only pre-filters) is kept beside the blocks,
/// in [`Tree::complex_slots`].
#[derive(Clone, Copy, Debug)]
#[repr(C, align(32))]
pub(crate) struct Block {
    /// Per dimension, `lo` then biased `span`.
    pub fields: [[[i32; SLOTS]; 2]; DIMS],
    pub rule: [i32; SLOTS],
}

impl Block {
    const EMPTY: Block = Block {
        fields: [[[0; SLOTS], [i32::MIN; SLOTS]]; DIMS],
        rule: [NO_MATCH as i32; SLOTS],
    };
}

/// One rule subset in the AVX2 layout.
#[derive(Clone, Debug)]
pub(crate) struct Tree {
    /// Never changed after [`Tree::check_layout`]: the AVX2 walk relies on it.
    nodes: Vec<Node>,
    blocks: Vec<Block>,
    /// Per block the bit mask of its slots that hold complex rules (empty if
    /// none does).
    complex_slots: Vec<u8>,
    /// Smallest rule index in the tree: a lookup that already holds a better
    /// match skips the tree.
    pub min_rule: u32,
    /// Node steps from the root to the deepest leaf.
    steps: u32,
    /// Whether some leaf has more than one block.
    has_long_leaves: bool,
    /// Longest root-to-leaf path of the binary tree.
    depth: u32,
    /// Rules the tree was built from.
    rules: usize,
    /// Leaf entries plus one per leaf: the measure of the build budget.
    entries: usize,
    leaves: usize,
    /// Blocks past the first that a lookup evaluates, on average over the
    /// leaves weighted by their entries (a guess at where keys go: where rules
    /// are dense): all of them, and those that keys aiming at one rule of
    /// the leaf read (see [`Packer::extra_blocks`]).
    extra_blocks: [f64; 2],
}

impl Tree {
    /// Builds the tree for `ids` (indices into `rules`, ascending), or gives up
    /// with `None` as soon as the leaves hold more than `max_entries` entries
    /// (one more per leaf).
    pub fn build(
        rules: &[ClassRule],
        ids: Vec<u32>,
        params: &TreeParams,
        max_entries: usize,
    ) -> Option<Tree> {
        let binary = BinaryTree::build(rules, ids, params, max_entries)?;
        let mut packer = Packer::new(&binary.nodes, &binary.cuts);
        packer.fill(0, 0, 0);
        let extra_blocks = packer.extra_blocks();
        let Packer {
            mut nodes,
            mut blocks,
            mut complex_slots,
            steps,
            ..
        } = packer;
        if complex_slots.iter().all(|&c| c == 0) {
            complex_slots = Vec::new();
        }
        // Room for eight nodes from the last leaf's `base`: seven padding leaves,
        // never reached, that lead to the last node and themselves.
        let last = nodes.len() - 1;
        nodes.extend((0..FANOUT - 1).map(|_| Node::leaf(last, 0, 1)));
        nodes.shrink_to_fit();
        blocks.shrink_to_fit();
        complex_slots.shrink_to_fit();
        let tree = Tree {
            complex_slots,
            has_long_leaves: nodes.iter().any(|n| n.blocks > 1),
            nodes,
            blocks,
            min_rule: binary.min_rule,
            steps,
            depth: binary.depth,
            rules: binary.rules,
            entries: binary.entry_count(),
            leaves: binary.leaves,
            extra_blocks,
        };
        tree.check_layout();
        Some(tree)
    }

    /// Checks what the AVX2 walk relies on to read the arrays without bounds
    /// checks: from every node, eight nodes from `base` and `max(blocks, 1)`
    /// blocks from `block` exist.
    fn check_layout(&self) {
        for node in &self.nodes {
            let base = node.base as usize;
            let block = node.block as usize;
            assert!(
                base % NODE_BYTES == 0 && base / NODE_BYTES + FANOUT <= self.nodes.len(),
                "tree node base {base} out of {} nodes",
                self.nodes.len()
            );
            assert!(
                block % BLOCK_BYTES == 0
                    && block / BLOCK_BYTES + node.blocks.max(1) as usize <= self.blocks.len(),
                "tree leaf block {block} out of {} blocks",
                self.blocks.len()
            );
        }
    }

    /// The packed nodes; [`Tree::build`] checked that from every node, eight
    /// nodes from `base` and `max(blocks, 1)` blocks from `block` exist.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The leaf blocks.
    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    /// The bit mask of complex slots of block `index` (0 if none).
    pub fn complex_slots(&self, index: usize) -> u8 {
        self.complex_slots.get(index).copied().unwrap_or(0)
    }

    /// Whether some block holds a complex rule.
    pub fn has_complex(&self) -> bool {
        !self.complex_slots.is_empty()
    }

    /// Whether some leaf has more than one block.
    pub fn has_long_leaves(&self) -> bool {
        self.has_long_leaves
    }

    /// Longest root-to-leaf path of the binary tree.
    pub fn depth(&self) -> u32 {
        self.depth
    }

    /// Node steps of every walk.
    pub fn steps(&self) -> u32 {
        self.steps
    }

    /// Estimated time a batch lookup spends in this tree, in node steps: the
    /// walk, one leaf block (about three steps of work: 16 loads), and the
    /// blocks after the first of leaves that hold more than eight rules (a
    /// branchy loop, dearer than the first). Constants fitted to the AVX2 path
    /// on Zen 4.
    ///
    /// When the whole classifier stays in a core's L2 cache (`resident`), only
    /// the blocks that the scan reaches before the match count (keys aiming at
    /// a rule); otherwise every block of a long leaf does. That is what the
    /// measurements follow: depth-capped unions chosen with the lower estimate
    /// ran 30-45% faster than the trees they replaced on 1k-rule ClassBench
    /// sets (fw1, fw3, acl2), and 35% slower on 10k-rule sets (acl3, ipc1).
    pub fn cost(&self, resident: bool) -> f64 {
        const LEAF: f64 = 3.0;
        const EXTRA_BLOCK: f64 = 5.0;
        let [all, aimed] = self.extra_blocks;
        let extra = if resident { aimed } else { all };
        f64::from(self.steps) + LEAF + EXTRA_BLOCK * extra
    }

    /// Leaf entries plus one per leaf.
    pub fn entry_count(&self) -> usize {
        self.entries
    }

    pub fn memory_bytes(&self) -> usize {
        self.nodes.capacity() * size_of::<Node>()
            + self.blocks.capacity() * size_of::<Block>()
            + self.complex_slots.capacity()
    }

    pub fn stats(&self) -> TreeStats {
        TreeStats {
            rules: self.rules,
            nodes: self.nodes.len(),
            leaves: self.leaves,
            entries: self.entries - self.leaves,
            depth: self.depth as usize,
            steps: self.steps as usize,
        }
    }
}

/// Turns the binary tree into packed nodes and leaf blocks.
struct Packer<'a> {
    binary: &'a [BinaryNode],
    cuts: &'a [Cut],
    /// Levels below each binary node (0 for a leaf).
    height: Vec<u8>,
    nodes: Vec<Node>,
    blocks: Vec<Block>,
    /// Per block, the bit mask of its slots that hold complex rules.
    complex_slots: Vec<u8>,
    /// First block of each binary leaf already stored (leaves repeated inside a
    /// node share their blocks).
    stored: Vec<Option<(u32, u32)>>,
    steps: u32,
}

impl<'a> Packer<'a> {
    /// [`Tree::extra_blocks`] of the packed leaves: every block past a leaf's
    /// first, and those a key reads that aims at one of the leaf's rules, each
    /// alike (as ClassBench traces do): the scan stops at the block holding
    /// that rule at the latest, so block `k + 1` is read by the keys aiming
    /// past the first `8 k` rules.
    fn extra_blocks(&self) -> [f64; 2] {
        let (mut all, mut aimed, mut entries) = (0.0, 0.0, 0.0);
        for (leaf, stored) in self.binary.iter().zip(&self.stored) {
            if let (BinaryNode::Leaf { len, .. }, Some((_, blocks))) = (leaf, stored) {
                let past: u32 = (1..*blocks)
                    .map(|k| len.saturating_sub(k * SLOTS as u32))
                    .sum();
                all += f64::from(*len) * f64::from(blocks - 1);
                aimed += f64::from(past);
                entries += f64::from(*len);
            }
        }
        if entries > 0.0 {
            [all / entries, aimed / entries]
        } else {
            [0.0; 2]
        }
    }

    fn new(binary: &'a [BinaryNode], cuts: &'a [Cut]) -> Packer<'a> {
        let mut height = vec![0u8; binary.len()];
        // Children come after their parent: one backward pass sees them first.
        for at in (0..binary.len()).rev() {
            if let BinaryNode::Inner { left, right, .. } = binary[at] {
                height[at] = 1 + height[left as usize].max(height[right as usize]);
            }
        }
        Packer {
            binary,
            cuts,
            height,
            nodes: vec![Node::leaf(0, 0, 0)],
            blocks: Vec::new(),
            complex_slots: Vec::new(),
            stored: vec![None; binary.len()],
            steps: 0,
        }
    }

    /// Fills `nodes[slot]`, `level` steps below the root, with the binary subtree
    /// at `at`.
    fn fill(&mut self, slot: usize, at: usize, level: u32) {
        if let BinaryNode::Leaf { .. } = self.binary[at] {
            return self.leaf(slot, at, level);
        }
        let levels = usize::from(self.height[at]).min(LEVELS);
        let mut node = Node::leaf(0, 0, 0);
        let mut reached = [0usize; FANOUT];
        // The subtree's root test sits `levels` above the bottom, on the
        // leftmost path (padding tests above it go left).
        let top = (1 << (LEVELS - levels)) - 1;
        self.tests(&mut node, &mut reached, top, at);
        let base = self.nodes.len();
        node.base = (base * NODE_BYTES) as u64;
        self.nodes[slot] = node;
        let children = 1 << levels;
        self.nodes
            .extend(std::iter::repeat_n(Node::leaf(0, 0, 0), children));
        for (pos, &b) in reached[..children].iter().enumerate() {
            self.fill(base + pos, b, level + 1);
        }
    }

    /// Sets test `t` of `node` (and those below it) from binary node `at`, and
    /// records the binary node each position below it reaches.
    fn tests(&self, node: &mut Node, reached: &mut [usize; FANOUT], t: usize, at: usize) {
        if t >= TESTS {
            reached[t - TESTS] = at;
            return;
        }
        let (left, right) = match self.binary[at] {
            BinaryNode::Inner {
                dim,
                thresh,
                left,
                right,
            } => {
                node.dims[t] = dim;
                node.thresh[t] = (thresh ^ BIAS) as i32;
                (left as usize, right as usize)
            }
            BinaryNode::Leaf { .. } => (at, at),
        };
        self.tests(node, reached, 2 * t + 1, left);
        self.tests(node, reached, 2 * t + 2, right);
    }

    fn leaf(&mut self, slot: usize, at: usize, level: u32) {
        let BinaryNode::Leaf { start, len } = self.binary[at] else {
            unreachable!("leaf() on an inner node");
        };
        self.steps = self.steps.max(level);
        let (first, count) = match self.stored[at] {
            Some(stored) => stored,
            None => {
                let cuts = &self.cuts[start as usize..(start + len) as usize];
                let first = self.blocks.len();
                for chunk in cuts.chunks(SLOTS) {
                    let (block, complex) = Block::new(chunk);
                    self.blocks.push(block);
                    self.complex_slots.push(complex);
                }
                // A leaf without rules gets an empty block: every leaf has one.
                if cuts.is_empty() {
                    self.blocks.push(Block::EMPTY);
                    self.complex_slots.push(0);
                }
                let stored = (first as u32, (self.blocks.len() - first) as u32);
                self.stored[at] = Some(stored);
                stored
            }
        };
        self.nodes[slot] = Node::leaf(slot, first as usize, count as usize);
    }
}

impl Block {
    /// The block of up to eight cuts, and the bit mask of its complex slots.
    fn new(cuts: &[Cut]) -> (Block, u8) {
        let mut block = Block::EMPTY;
        let mut complex = 0;
        for (s, c) in cuts.iter().enumerate() {
            block.rule[s] = c.id as i32;
            complex |= u8::from(c.complex) << s;
            for d in 0..DIMS {
                let (lo, hi) = c.hull[d];
                block.fields[d][0][s] = lo as i32;
                block.fields[d][1][s] = ((hi - lo) ^ BIAS) as i32;
            }
        }
        (block, complex)
    }
}
