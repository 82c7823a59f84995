//! The bytes of a text line looked at sixteen at a time: where its spaces
//! are, as bits, and whether every byte is printable ASCII, for
//! [`super::Format::split_spaced`] to cut the line at its spaces.

/// The spaces of the 64 bytes from `base` as bits (none past the line's
/// end); `None` when one of them is not printable ASCII (0x20-0x7f, as
/// flow logs are written).
#[inline(always)]
pub(super) fn block(b: &[u8], base: usize) -> Option<u64> {
    let (mut spaces, mut other) = (0u64, 0u16);
    for k in 0..4 {
        let at = base + 16 * k;
        let (s, o) = match b.get(at..at + 16) {
            Some(c) => marks(c.try_into().unwrap_or(&[0; 16])),
            None if at >= b.len() => break,
            None => match b.len().checked_sub(16) {
                // The line's last sixteen bytes: the bits of those before
                // `at` dropped.
                Some(last) => {
                    let (s, o) = marks(b[last..].try_into().unwrap_or(&[0; 16]));
                    (s >> (at - last), o >> (at - last))
                }
                None => {
                    let mut c = [b'x'; 16];
                    c[..b.len() - at].copy_from_slice(&b[at..]);
                    marks(&c)
                }
            },
        };
        spaces |= u64::from(s) << (16 * k);
        other |= o;
    }
    (other == 0).then_some(spaces)
}

/// The spaces of sixteen bytes as bits, and the bytes below 0x20 or from
/// 0x80: SSE2's byte compares (every x86-64 has them).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn marks(c: &[u8; 16]) -> (u16, u16) {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_movemask_epi8, _mm_set1_epi8, _mm_set_epi64x,
    };
    let half = |h: &[u8]| i64::from_le_bytes(h.try_into().unwrap_or_default());
    let (lo, hi) = (half(&c[..8]), half(&c[8..]));
    // SAFETY: the target has SSE2 (the cfg above; every x86-64 has it);
    // the intrinsics read no memory (the bytes are passed by value).
    let (space, other) = unsafe {
        let v = _mm_set_epi64x(hi, lo);
        (
            _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b' ' as i8))),
            // Signed: the bytes from 0x80 are below 0x20 too.
            _mm_movemask_epi8(_mm_cmplt_epi8(v, _mm_set1_epi8(0x20))),
        )
    };
    (space as u16, other as u16)
}

/// [`marks`] a byte at a time: where SSE2 is not, and the reference the
/// tests hold it to.
#[cfg(any(test, not(all(target_arch = "x86_64", target_feature = "sse2"))))]
#[inline(always)]
fn marks_bytewise(c: &[u8; 16]) -> (u16, u16) {
    let (mut space, mut other) = (0u16, 0u16);
    for (i, &x) in c.iter().enumerate() {
        space |= u16::from(x == b' ') << i;
        other |= u16::from(!(0x20..0x80).contains(&x)) << i;
    }
    (space, other)
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
use marks_bytewise as marks;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every byte value at every place of the sixteen, among others of
    /// every kind.
    #[test]
    fn marks_agree_with_the_bytes() {
        let mut c = *b"ab 0.-~\x7f \t\x00\x1fzZ\x80\xff";
        for place in 0..16 {
            for x in 0..=255u8 {
                c[place] = x;
                assert_eq!(marks(&c), marks_bytewise(&c), "{c:?}");
            }
            c.rotate_left(3);
        }
    }

    /// A line of any length (the last sixteen bytes read overlapping the
    /// ones before, or a line shorter than sixteen): its spaces, none past
    /// its end, and `None` for a byte that is not printable ASCII.
    #[test]
    fn a_block_has_the_spaces_of_its_line() {
        let mut n = 3u64;
        let mut next = |m: u64| {
            n = n
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (n >> 33) % m
        };
        for len in 0..300 {
            for _ in 0..20 {
                let mut line: Vec<u8> = (0..len).map(|_| b"a 9.- ~"[next(7) as usize]).collect();
                let bad = len > 0 && next(4) == 0;
                if bad {
                    line[next(len as u64) as usize] =
                        [b'\t', 0, 0x80, 0xff, 0x1f][next(5) as usize];
                }
                let mut base = 0;
                while base < len {
                    let got = block(&line, base);
                    let end = (base + 64).min(len);
                    if line[base..end].iter().any(|b| !(0x20..0x80).contains(b)) {
                        assert_eq!(got, None, "{line:?} from {base}");
                    } else {
                        let want = (base..end)
                            .filter(|&i| line[i] == b' ')
                            .fold(0u64, |m, i| m | 1 << (i - base));
                        assert_eq!(got, Some(want), "{line:?} from {base}");
                    }
                    base += 64;
                }
            }
        }
    }
}
