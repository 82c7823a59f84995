//! One dimension of a rule: a sorted list of disjoint inclusive `u32` ranges.
//!
//! Most rules hold one range per dimension. An SG reference used as a source
//! holds one range per member address or CIDR block; the classifier handles such
//! sets natively instead of copying the rule once per range.

use std::fmt;

/// A sorted list of disjoint, non-adjacent inclusive ranges `[lo, hi]` of `u32`.
///
/// The invariant (sorted, disjoint, adjacent ranges merged) is kept by every
/// constructor, so two sets covering the same values compare equal.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RangeSet {
    ranges: Vec<(u32, u32)>,
}

/// Up to this many ranges, [`RangeSet::contains`] counts the starts at or
/// below a value instead of searching for the last one.
const COUNTED: usize = 16;

impl RangeSet {
    /// Every value: `0..=u32::MAX`.
    pub fn any() -> RangeSet {
        RangeSet {
            ranges: vec![(0, u32::MAX)],
        }
    }

    /// No value at all: a rule holding an empty dimension never matches.
    pub fn empty() -> RangeSet {
        RangeSet { ranges: Vec::new() }
    }

    /// The single range `lo..=hi`.
    ///
    /// # Panics
    /// If `lo > hi`.
    pub fn single(lo: u32, hi: u32) -> RangeSet {
        assert!(lo <= hi, "RangeSet::single: lo {lo} > hi {hi}");
        RangeSet {
            ranges: vec![(lo, hi)],
        }
    }

    /// The values of the prefix `addr/len` (host bits of `addr` are ignored).
    ///
    /// # Panics
    /// If `len > 32`.
    pub fn prefix(addr: u32, len: u8) -> RangeSet {
        assert!(len <= 32, "RangeSet::prefix: length {len} > 32");
        let host_mask = u32::MAX.checked_shr(u32::from(len)).unwrap_or(0);
        let lo = addr & !host_mask;
        RangeSet {
            ranges: vec![(lo, lo | host_mask)],
        }
    }

    /// The union of `ranges`, in any order, overlapping or adjacent.
    ///
    /// # Panics
    /// If a range has `lo > hi`.
    pub fn from_ranges(mut ranges: Vec<(u32, u32)>) -> RangeSet {
        for &(lo, hi) in &ranges {
            assert!(lo <= hi, "RangeSet::from_ranges: lo {lo} > hi {hi}");
        }
        ranges.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(ranges.len());
        for (lo, hi) in ranges {
            match merged.last_mut() {
                Some(last) if last.1 == u32::MAX || lo <= last.1 + 1 => last.1 = last.1.max(hi),
                _ => merged.push((lo, hi)),
            }
        }
        merged.shrink_to_fit();
        RangeSet { ranges: merged }
    }

    /// The ranges, sorted and disjoint.
    pub fn ranges(&self) -> &[(u32, u32)] {
        &self.ranges
    }

    /// Whether `value` is in the set.
    pub fn contains(&self, value: u32) -> bool {
        match self.ranges.as_slice() {
            [] => false,
            [(lo, hi)] => *lo <= value && value <= *hi,
            ranges => {
                // The last range starting at or before `value` is the only
                // candidate. A few starts are counted in one branch-free
                // pass: a binary search waits on each load in turn.
                let i = if ranges.len() <= COUNTED {
                    ranges.iter().map(|&(lo, _)| usize::from(lo <= value)).sum()
                } else {
                    ranges.partition_point(|&(lo, _)| lo <= value)
                };
                i > 0 && value <= ranges[i - 1].1
            }
        }
    }

    /// Whether the set holds no value.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Whether the set holds every `u32`.
    pub fn is_any(&self) -> bool {
        self.ranges == [(0, u32::MAX)]
    }

    /// How many values the set holds (up to 2^32).
    pub fn size(&self) -> u64 {
        self.ranges
            .iter()
            .map(|&(lo, hi)| u64::from(hi - lo) + 1)
            .sum()
    }

    /// The smallest range holding the whole set, or `None` if it is empty.
    pub fn hull(&self) -> Option<(u32, u32)> {
        Some((self.ranges.first()?.0, self.ranges.last()?.1))
    }

    /// The ranges of the set cut to the window `lo..=hi`.
    pub(crate) fn clipped(&self, lo: u32, hi: u32) -> impl Iterator<Item = (u32, u32)> + '_ {
        let start = self.ranges.partition_point(|&(_, h)| h < lo);
        self.ranges[start..]
            .iter()
            .take_while(move |&&(l, _)| l <= hi)
            .map(move |&(l, h)| (l.max(lo), h.min(hi)))
    }

    /// The hull of the set cut to `lo..=hi`, and whether that cut holds more
    /// than one range; `None` if the set misses the window.
    pub(crate) fn clipped_hull(&self, lo: u32, hi: u32) -> Option<((u32, u32), bool)> {
        if let [(l, h)] = self.ranges.as_slice() {
            return (*l <= hi && *h >= lo).then_some((((*l).max(lo), (*h).min(hi)), false));
        }
        let mut cut = self.clipped(lo, hi);
        let (first_lo, mut last_hi) = cut.next()?;
        let mut pieces = 1;
        for (_, h) in cut {
            last_hi = h;
            pieces += 1;
        }
        Some(((first_lo, last_hi), pieces > 1))
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.ranges.capacity() * std::mem::size_of::<(u32, u32)>()
    }
}

impl fmt::Debug for RangeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (lo, hi)) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            if lo == hi {
                write!(f, "{lo}")?;
            } else {
                write!(f, "{lo}..={hi}")?;
            }
        }
        f.write_str("}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_ranges_sorts_and_merges() {
        let set = RangeSet::from_ranges(vec![(10, 20), (0, 3), (4, 5), (15, 30), (40, 40)]);
        assert_eq!(set.ranges(), &[(0, 5), (10, 30), (40, 40)]);
        let top = RangeSet::from_ranges(vec![(u32::MAX, u32::MAX), (0, u32::MAX - 1)]);
        assert!(top.is_any());
        assert!(RangeSet::from_ranges(Vec::new()).is_empty());
    }

    #[test]
    fn prefix_ranges() {
        assert_eq!(
            RangeSet::prefix(0x0a00_0105, 24).ranges(),
            &[(0x0a00_0100, 0x0a00_01ff)]
        );
        assert!(RangeSet::prefix(0x1234_5678, 0).is_any());
        assert_eq!(RangeSet::prefix(7, 32).ranges(), &[(7, 7)]);
    }

    #[test]
    fn contains_clip_cover() {
        let set = RangeSet::from_ranges(vec![(10, 20), (30, 40), (50, 50)]);
        for v in 0..60 {
            let want = (10..=20).contains(&v) || (30..=40).contains(&v) || v == 50;
            assert_eq!(set.contains(v), want, "{v}");
        }
        // Past `COUNTED` ranges the last start is searched for, not counted.
        let many = RangeSet::from_ranges((0..40).map(|i| (i * 10 + 2, i * 10 + 5)).collect());
        assert!(many.ranges().len() > COUNTED);
        for v in 0..420 {
            assert_eq!(
                many.contains(v),
                v < 400 && (2..=5).contains(&(v % 10)),
                "{v}"
            );
        }
        assert_eq!(
            set.clipped(15, 35).collect::<Vec<_>>(),
            vec![(15, 20), (30, 35)]
        );
        assert_eq!(set.clipped_hull(15, 35), Some(((15, 35), true)));
        assert_eq!(set.clipped_hull(21, 29), None);
        assert_eq!(set.clipped_hull(45, 60), Some(((50, 50), false)));
        assert_eq!(set.size(), 11 + 11 + 1);
    }
}
