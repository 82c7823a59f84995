//! The lookup of [`super::tree`] with AVX2, for CPUs that have it (detected at
//! run time; the portable lookup in `tree.rs` is the fallback and the
//! reference: both read the same arrays and must agree).
//!
//! A node's seven tests are one permute of the key (the field each test reads)
//! and one compare against the thresholds; the outcome's bit mask indexes
//! [`PATH_BYTES`], the byte offset of the child from the node's `base`. A leaf
//! block's eight rules are, per field, one subtract and one compare; OR-ing the
//! failures onto the rule indices leaves each slot's rule where it matches and
//! `u32::MAX` where not, so the match is the minimum, and a group of eight keys
//! takes its eight minima in one transposing reduction, with no data-dependent
//! branch.
//!
//! The functions are `unsafe` because they need AVX2; each body is one
//! `unsafe` block under that contract (`unsafe_op_in_unsafe_fn` is denied
//! crate-wide), with `SAFETY:` comments at the raw reads. Inside, nodes and blocks
//! are read by byte offset without bounds checks: [`Tree::build`] checks that
//! from every node, eight nodes from its `base` and a block at its `block`
//! exist, and a walk only ever adds less than eight nodes to a `base`.

use super::packed::{Block, Node, Tree, BIAS, BLOCK_BYTES, NODE_BYTES, PATH_BYTES, SLOTS};
use super::tree::{ComplexRules, NO_MATCH};
use super::{Key, DIMS, LANES};
use std::arch::x86_64::*;

/// A batch is two groups of eight keys (one result vector each), so that 16
/// walks are in flight and hide each other's load latency.
const GROUP: usize = 8;
const GROUPS: usize = LANES / GROUP;
const _: () = assert!(GROUPS * GROUP == LANES);

/// [`Tree::lookup`](super::scalar::Tree::lookup) over all trees for one key.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn lookup(trees: &[Tree], complex: &ComplexRules, key: &Key) -> u32 {
    // SAFETY: this function's own contract (AVX2 present, and for raw
    // offsets the layout `Tree::check_layout` checked) is what every
    // unsafe operation below relies on; the finer comments say where.
    unsafe {
        let probe = load_key(key);
        let mut best = NO_MATCH;
        for tree in trees {
            if tree.min_rule >= best {
                break;
            }
            let nodes = tree.nodes().as_ptr().cast::<u8>();
            let mut at = 0;
            for _ in 0..tree.steps() {
                at = next(nodes, at, probe);
            }
            let fields = broadcast(probe);
            let rules = leaf_rules::<true, true>(tree, node(nodes, at), &fields, probe, complex);
            // Fold the eight slots to their minimum.
            let m = _mm256_min_epu32(rules, _mm256_permute2x128_si256::<1>(rules, rules));
            let m = _mm256_min_epu32(m, _mm256_shuffle_epi32::<0b01_00_11_10>(m));
            let m = _mm256_min_epu32(m, _mm256_shuffle_epi32::<0b10_11_00_01>(m));
            best = best.min(_mm256_cvtsi256_si32(m) as u32);
        }
        best
    }
}

/// All trees for a batch of keys: into `out[l]` the first rule matching
/// `keys[l]`, or [`NO_MATCH`].
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn lookup_batch(
    trees: &[Tree],
    complex: &ComplexRules,
    keys: &[Key; LANES],
    out: &mut [u32; LANES],
) {
    // SAFETY: this function's own contract (AVX2 present, and for raw
    // offsets the layout `Tree::check_layout` checked) is what every
    // unsafe operation below relies on; the finer comments say where.
    unsafe {
        let mut probes = [_mm256_setzero_si256(); LANES];
        for (probe, key) in probes.iter_mut().zip(keys) {
            *probe = load_key(key);
        }
        let mut best = [_mm256_set1_epi32(NO_MATCH as i32); GROUPS];
        for trees in trees.chunks(JOINT) {
            // Trees whose best rule no key can use are skipped.
            let min_rule = _mm256_set1_epi32(trees[0].min_rule as i32);
            let mut gains = _mm256_setzero_si256();
            for best in &best {
                gains = _mm256_or_si256(gains, _mm256_cmpgt_epi32(*best, min_rule));
            }
            if _mm256_testz_si256(gains, gains) != 0 {
                break;
            }
            // Checks compiled in only where needed: complex rules (SG references)
            // come with one instance that also handles long leaves.
            let complex_rules = trees.iter().any(|t| t.has_complex());
            let long = trees.iter().any(|t| t.has_long_leaves());
            let (b, p) = (&mut best, &probes);
            match (trees, complex_rules, long) {
                ([x], false, false) => trees_batch::<1, false, false>([x], complex, p, b),
                ([x], false, true) => trees_batch::<1, false, true>([x], complex, p, b),
                ([x], true, _) => trees_batch::<1, true, true>([x], complex, p, b),
                ([x, y], false, false) => trees_batch::<2, false, false>([x, y], complex, p, b),
                ([x, y], false, true) => trees_batch::<2, false, true>([x, y], complex, p, b),
                ([x, y], true, _) => trees_batch::<2, true, true>([x, y], complex, p, b),
                _ => unreachable!("chunks of 1 or 2 trees"),
            }
        }
        for (g, best) in best.iter().enumerate() {
            // SAFETY: `out` holds `LANES` `u32`, and group `g` writes its 8 (32
            // bytes) at element `8 g`; `storeu` needs no alignment.
            _mm256_storeu_si256(out.as_mut_ptr().add(g * GROUP).cast(), *best);
        }
    }
}

/// Trees searched together: their walks in lockstep, then per key all their
/// leaves folded into one vector before the reduction, sharing the key's
/// broadcast fields and the reduction.
const JOINT: usize = 2;

/// Up to [`JOINT`] trees for a batch: the walks in lockstep, then per group of
/// eight keys the leaves and their minima folded into `best`.
///
/// # Safety
/// The CPU must support AVX2, and the node offsets must be ones a walk of
/// `tree` reached (`Tree::check_layout` makes every such offset valid).
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn trees_batch<const N: usize, const COMPLEX: bool, const LONG: bool>(
    trees: [&Tree; N],
    complex: &ComplexRules,
    probes: &[__m256i; LANES],
    best: &mut [__m256i; GROUPS],
) {
    // SAFETY: this function's own contract (AVX2 present, and for raw
    // offsets the layout `Tree::check_layout` checked) is what every
    // unsafe operation below relies on; the finer comments say where.
    unsafe {
        let mut at = [[0u64; LANES]; N];
        for (tree, at) in trees.iter().zip(&mut at) {
            // The walks in lockstep, one node per round.
            let nodes = tree.nodes().as_ptr().cast::<u8>();
            for _ in 0..tree.steps() {
                for l in 0..LANES {
                    at[l] = next(nodes, at[l], probes[l]);
                }
            }
        }
        for (g, best) in best.iter_mut().enumerate() {
            // The transposing reduction of `lane_minima`, fed lane by lane so no
            // lane's vector waits in memory.
            let l = g * GROUP;
            macro_rules! rules {
                ($i:expr) => {
                    leaf_minimum::<N, COMPLEX, LONG>(&trees, &at, probes, l + $i, complex)
                };
            }
            let low = quad(pair(rules!(0), rules!(1)), pair(rules!(2), rules!(3)));
            let high = quad(pair(rules!(4), rules!(5)), pair(rules!(6), rules!(7)));
            *best = _mm256_min_epu32(*best, halves(low, high));
        }
    }
}

/// Per slot, the minimum over the trees of `leaf_rules` for lane `l`.
///
/// # Safety
/// The CPU must support AVX2, and the node offsets must be ones a walk of
/// `tree` reached (`Tree::check_layout` makes every such offset valid).
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn leaf_minimum<const N: usize, const COMPLEX: bool, const LONG: bool>(
    trees: &[&Tree; N],
    at: &[[u64; LANES]; N],
    probes: &[__m256i; LANES],
    l: usize,
    complex: &ComplexRules,
) -> __m256i {
    // SAFETY: this function's own contract (AVX2 present, and for raw
    // offsets the layout `Tree::check_layout` checked) is what every
    // unsafe operation below relies on; the finer comments say where.
    unsafe {
        let fields = broadcast(probes[l]);
        let mut min = _mm256_set1_epi32(-1);
        for (tree, at) in trees.iter().zip(at) {
            let leaf = node(tree.nodes().as_ptr().cast(), at[l]);
            let rules = leaf_rules::<COMPLEX, LONG>(tree, leaf, &fields, probes[l], complex);
            min = _mm256_min_epu32(min, rules);
        }
        min
    }
}

/// Each field of a probe in all eight elements.
///
/// # Safety
/// The CPU must support AVX2.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn broadcast(probe: __m256i) -> [__m256i; DIMS] {
    let mut fields = [_mm256_setzero_si256(); DIMS];
    for (d, field) in fields.iter_mut().enumerate() {
        *field = _mm256_permutevar8x32_epi32(probe, _mm256_set1_epi32(d as i32));
    }
    fields
}

/// A key as a probe vector: its fields biased, slots 5-7 `i32::MIN`.
///
/// # Safety
/// The CPU must support AVX2.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn load_key(key: &Key) -> __m256i {
    let fields = _mm256_setr_epi32(-1, -1, -1, -1, -1, 0, 0, 0);
    // SAFETY: the mask selects the first 5 of 8 `u32`, exactly the 20 bytes of
    // `key`; masked-off elements are not read (no fault, no out-of-bounds).
    let raw = unsafe { _mm256_maskload_epi32(key.as_ptr().cast(), fields) };
    // Fields XOR the bias; padding (0 after the masked load) becomes the bias.
    _mm256_xor_si256(raw, _mm256_set1_epi32(BIAS as i32))
}

/// The node at byte offset `at` of a tree's node array.
///
/// # Safety
/// `at` must be 0 or come from [`next`] on the same array.
#[inline(always)]
unsafe fn node<'a>(nodes: *const u8, at: u64) -> &'a Node {
    // SAFETY: the node array is never empty, and `next` returns a node's `base`
    // plus less than eight nodes, which `Tree::check_layout` found inside the
    // array for every node; offsets are multiples of the 64-byte node size, so
    // the reference is aligned.
    unsafe { &*nodes.add(at as usize).cast::<Node>() }
}

/// One step down a packed [`Node`]: all seven of its tests at once.
///
/// # Safety
/// As [`node`].
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn next(nodes: *const u8, at: u64, probe: __m256i) -> u64 {
    // SAFETY: this function's own contract (AVX2 present, and for raw
    // offsets the layout `Tree::check_layout` checked) is what every
    // unsafe operation below relies on; the finer comments say where.
    unsafe {
        let node = node(nodes, at);
        // SAFETY: `thresh` is 8 `i32` at offset 0 of a 64-byte-aligned `Node`, so
        // the aligned 32-byte load stays inside it; `dims` is 8 bytes, exactly what
        // `loadl_epi64` reads (no alignment needed).
        let (thresh, dims) = (
            _mm256_load_si256(node.thresh.as_ptr().cast()),
            _mm_loadl_epi64(node.dims.as_ptr().cast()),
        );
        let fields = _mm256_permutevar8x32_epi32(probe, _mm256_cvtepu8_epi32(dims));
        let right = _mm256_cmpgt_epi32(fields, thresh);
        let mask = _mm256_movemask_ps(_mm256_castsi256_ps(right)) as usize;
        node.base + PATH_BYTES[mask & (PATH_BYTES.len() - 1)]
    }
}

/// Per slot of `leaf`'s first block, the rule if it matches `probe` and
/// `u32::MAX` if not (later blocks folded in as far as needed). `COMPLEX` and
/// `LONG` compile in the checks for complex rules and for leaves of several
/// blocks.
///
/// # Safety
/// The CPU must support AVX2, and the node offsets must be ones a walk of
/// `tree` reached (`Tree::check_layout` makes every such offset valid).
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn leaf_rules<const COMPLEX: bool, const LONG: bool>(
    tree: &Tree,
    leaf: &Node,
    fields: &[__m256i; DIMS],
    probe: __m256i,
    complex: &ComplexRules,
) -> __m256i {
    // SAFETY: this function's own contract (AVX2 present, and for raw
    // offsets the layout `Tree::check_layout` checked) is what every
    // unsafe operation below relies on; the finer comments say where.
    unsafe {
        // SAFETY: `Tree::check_layout` found a block at every node's `block`, a
        // multiple of the block size, so the reference is in bounds and aligned.
        let block = &*tree
            .blocks()
            .as_ptr()
            .cast::<u8>()
            .add(leaf.block as usize)
            .cast::<Block>();
        let first = leaf.block as usize / BLOCK_BYTES;
        let mut rules = block_rules(block, fields);
        if COMPLEX {
            rules = check_complex(tree, first, rules, probe, complex);
        }
        if LONG && leaf.blocks > 1 {
            // A leaf of several blocks (a depth-capped node, or a subset that could
            // not be split): later blocks hold only worse rules, so stop at the
            // first block with a match.
            let blocks = &tree.blocks()[first..first + leaf.blocks as usize];
            for (i, block) in blocks.iter().enumerate().skip(1) {
                if _mm256_testc_si256(rules, _mm256_set1_epi32(-1)) == 0 {
                    break;
                }
                rules = block_rules(block, fields);
                if COMPLEX {
                    rules = check_complex(tree, first + i, rules, probe, complex);
                }
            }
        }
        rules
    }
}

/// Per slot of `block`, its rule if the rule's hull holds `probe`, else
/// `u32::MAX`.
///
/// # Safety
/// The CPU must support AVX2.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn block_rules(block: &Block, fields: &[__m256i; DIMS]) -> __m256i {
    // SAFETY: this function's own contract (AVX2 present, and for raw
    // offsets the layout `Tree::check_layout` checked) is what every
    // unsafe operation below relies on; the finer comments say where.
    unsafe {
        let mut fails = _mm256_setzero_si256();
        for (d, &field) in fields.iter().enumerate() {
            let [lo, span] = &block.fields[d];
            let offset = _mm256_sub_epi32(field, load(lo));
            fails = _mm256_or_si256(fails, _mm256_cmpgt_epi32(offset, load(span)));
        }
        _mm256_or_si256(fails, load(&block.rule))
    }
}

/// `rules` of block `index` with every complex rule whose full range sets miss
/// `probe` dropped.
///
/// # Safety
/// The CPU must support AVX2.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn check_complex(
    tree: &Tree,
    index: usize,
    rules: __m256i,
    probe: __m256i,
    complex: &ComplexRules,
) -> __m256i {
    // SAFETY: this function's own contract (AVX2 present, and for raw
    // offsets the layout `Tree::check_layout` checked) is what every
    // unsafe operation below relies on; the finer comments say where.
    unsafe {
        match tree.complex_slots(index) {
            0 => rules,
            mask => drop_complex(mask, rules, probe, complex),
        }
    }
}

/// `rules` with every complex rule of the slots in `mask` whose full range
/// sets miss `probe` dropped.
///
/// # Safety
/// The CPU must support AVX2.
#[cold]
#[target_feature(enable = "avx2")]
unsafe fn drop_complex(
    mask: u8,
    rules: __m256i,
    probe: __m256i,
    complex: &ComplexRules,
) -> __m256i {
    let mut slots = [0u32; SLOTS];
    let mut fields = [0u32; 8];
    // SAFETY: `slots` and `fields` are 8 `u32`, the 32 bytes written; `storeu`
    // needs no alignment.
    unsafe {
        _mm256_storeu_si256(slots.as_mut_ptr().cast(), rules);
        _mm256_storeu_si256(fields.as_mut_ptr().cast(), probe);
    }
    let key: Key = std::array::from_fn(|d| fields[d] ^ BIAS);
    for (s, rule) in slots.iter_mut().enumerate() {
        if mask >> s & 1 != 0 && *rule != u32::MAX && !complex.matches(*rule, &key) {
            *rule = u32::MAX;
        }
    }
    // SAFETY: as above, 32 bytes read from `slots`.
    unsafe { _mm256_loadu_si256(slots.as_ptr().cast()) }
}

/// The last step of the transposing reduction that makes lane `l` of a
/// vector the minimum of the eight slots of lane `l`'s rules ([`pair`], then
/// [`quad`], then this: 14 shuffles and 7 minima for eight lanes): `low` holds
/// lanes 0-3 over slots 0-3 then over slots 4-7, `high` lanes 4-7.
///
/// # Safety
/// The CPU must support AVX2.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn halves(low: __m256i, high: __m256i) -> __m256i {
    _mm256_min_epu32(
        _mm256_permute2x128_si256::<0x20>(low, high),
        _mm256_permute2x128_si256::<0x31>(low, high),
    )
}

/// Two lanes' slots, minimum over slots `{s, s + 2}`, interleaved: lane `a` in
/// the even elements, `b` in the odd ones.
///
/// # Safety
/// The CPU must support AVX2.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn pair(a: __m256i, b: __m256i) -> __m256i {
    _mm256_min_epu32(_mm256_unpacklo_epi32(a, b), _mm256_unpackhi_epi32(a, b))
}

/// Two [`pair`]s folded once more: four lanes, each the minimum over slots
/// 0-3 (low half) and 4-7 (high half).
///
/// # Safety
/// The CPU must support AVX2.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn quad(a: __m256i, b: __m256i) -> __m256i {
    _mm256_min_epu32(_mm256_unpacklo_epi64(a, b), _mm256_unpackhi_epi64(a, b))
}

/// One row of a block.
///
/// # Safety
/// The CPU must support AVX2 (the row of a `Block` is 32-byte aligned).
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn load(row: &[i32; SLOTS]) -> __m256i {
    // SAFETY: every row is an `[i32; 8]` inside a 32-byte-aligned `Block` at an
    // offset that is a multiple of 32, so it is 32-byte aligned and the 32-byte
    // load reads exactly the row.
    unsafe { _mm256_load_si256(row.as_ptr().cast()) }
}

const _: () = assert!(NODE_BYTES == 64 && BLOCK_BYTES % 32 == 0);
