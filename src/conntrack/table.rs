//! The flow table: open addressing with linear probing and backward-shift
//! deletion, one table per address family so an IPv4 entry is 32 bytes and an
//! IPv6 entry 56. The key is stored in a canonical order, so both directions
//! of a flow hash to the same slot and a packet costs one hash.
//!
//! The key is packed (21 bytes for IPv4, 45 for IPv6, no padding) so the
//! slot has room for the two interfaces that keep the flow's state
//! ([`Ends`], SPEC §9.3) in the same 32 and 56 bytes.
//!
//! Written by hand rather than with hashbrown so the engine can prefetch a
//! packet's slot before it needs it (`benches/conntrack.rs` compares them).

use std::hash::{BuildHasher, Hasher};

/// An address as the table stores it.
pub trait Addr: Copy + Default + Eq + Ord {
    fn write(&self, h: &mut impl Hasher);
}

impl Addr for u32 {
    #[inline]
    fn write(&self, h: &mut impl Hasher) {
        h.write_u32(*self);
    }
}

impl Addr for [u64; 2] {
    #[inline]
    fn write(&self, h: &mut impl Hasher) {
        h.write_u64(self[0]);
        h.write_u64(self[1]);
    }
}

/// A flow's key with its two ends in canonical order (`(a, pa) <= (b, pb)`).
/// Packed: its fields are read by value (unaligned loads cost nothing on
/// the machines this runs on), never borrowed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C, packed)]
pub struct Key<A: Copy> {
    pub zone: u64,
    pub a: A,
    pub b: A,
    pub pa: u16,
    pub pb: u16,
    pub proto: u8,
}

impl<A: Copy> Key<A> {
    /// The protocol number.
    #[inline]
    pub fn proto(&self) -> u8 {
        self.proto
    }
}

impl<A: Addr> Key<A> {
    /// The canonical key of a packet from (src, sport) to (dst, dport), and
    /// whether the source is end `a`.
    #[inline]
    pub fn canonical(
        zone: u64,
        src: A,
        dst: A,
        sport: u16,
        dport: u16,
        proto: u8,
    ) -> (Key<A>, bool) {
        if (src, sport) <= (dst, dport) {
            (
                Key {
                    zone,
                    a: src,
                    b: dst,
                    pa: sport,
                    pb: dport,
                    proto,
                },
                true,
            )
        } else {
            (
                Key {
                    zone,
                    a: dst,
                    b: src,
                    pa: dport,
                    pb: sport,
                    proto,
                },
                false,
            )
        }
    }
}

/// Flag bits of a slot.
pub mod flag {
    pub const OCCUPIED: u8 = 1;
    /// The flow's originator is end `a` of the key.
    pub const ORIG_IS_A: u8 = 2;
    /// A packet was seen in the reply direction.
    pub const SEEN_REPLY: u8 = 4;
    /// Packets were seen both ways (for TCP: and the connection reached
    /// ESTABLISHED): the full timeout applies and early drop leaves it alone.
    pub const ASSURED: u8 = 8;
    /// An end of the flow is an interface that does not track it (SPEC
    /// §9.3): that end judges every packet by its rules.
    pub const UNTRACKED_END: u8 = 16;
}

/// The interfaces that keep a flow's state (SPEC §9.3: each end its own),
/// as interface index + 1, 0 for an end that keeps none (an address of no
/// interface, or one that does not track the flow). Interfaces past index
/// 65,534 keep state but are not told apart (0): their entries count only
/// against the table's `max_entries` and take the table's timeouts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ends(pub [u16; 2]);

impl Ends {
    /// No interface keeps the state apart from the table.
    pub const NONE: Ends = Ends([0, 0]);

    /// The ends for two interface indexes (each `None` when that end keeps
    /// no state of its own).
    pub fn of(a: Option<u32>, b: Option<u32>) -> Ends {
        let id = |i: Option<u32>| {
            i.and_then(|i| u16::try_from(i + 1).ok())
                .filter(|&v| v != u16::MAX)
                .unwrap_or(0)
        };
        let (a, b) = (id(a), id(b));
        // One interface at both ends (a flow to itself) counts once.
        Ends([a, if b == a { 0 } else { b }])
    }

    /// The interface indexes, each once.
    pub fn interfaces(self) -> impl Iterator<Item = u32> {
        self.0
            .into_iter()
            .filter(|&v| v != 0)
            .map(|v| u32::from(v) - 1)
    }

    /// Whether this interface keeps the flow's state.
    pub fn contains(self, iface: u32) -> bool {
        self.interfaces().any(|i| i == iface)
    }
}

/// A time in milliseconds since the table's epoch, in 40 bits (about 34.8
/// years): five bytes, so a slot stays 32 bytes (IPv4) or 56 (IPv6). Packed
/// as a `u32` and a `u8` so reading it is one unaligned load and one byte.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C, packed)]
pub struct Stamp {
    lo: u32,
    hi: u8,
}

impl Stamp {
    /// The largest time a stamp holds.
    pub const MAX: u64 = (1 << 40) - 1;

    /// The stamp of `ms`, which must be at most [`Stamp::MAX`] (higher bits
    /// are dropped).
    #[inline]
    pub fn new(ms: u64) -> Stamp {
        debug_assert!(ms <= Stamp::MAX, "{ms} ms does not fit a stamp");
        Stamp {
            lo: ms as u32,
            hi: (ms >> 32) as u8,
        }
    }

    #[inline]
    pub fn get(self) -> u64 {
        let (lo, hi) = (self.lo, self.hi);
        u64::from(hi) << 32 | u64::from(lo)
    }
}

/// One entry: the key and the flow's state. All zero is an empty slot.
#[derive(Debug, Clone, Copy, Default)]
pub struct Slot<A: Copy> {
    pub key: Key<A>,
    /// Last packet, in milliseconds since the table's epoch.
    pub last: Stamp,
    /// TCP state (see `tcp::TcpState`, 0 for other protocols) in the low
    /// nibble; packets seen from the originator (bits 4-5) and the replier
    /// (bits 6-7), each saturating at 3 (what matters is "more than one").
    pub state: u8,
    pub flags: u8,
    /// The interfaces that keep this flow's state.
    pub ends: Ends,
}

impl<A: Copy> Slot<A> {
    #[inline]
    pub fn tcp(&self) -> u8 {
        self.state & 0x0f
    }

    #[inline]
    pub fn set_tcp(&mut self, tcp: u8) {
        self.state = self.state & 0xf0 | tcp & 0x0f;
    }

    /// Packets seen from the originator and from the replier, up to 3 each.
    #[inline]
    pub fn packets(&self) -> (u8, u8) {
        ((self.state >> 4) & 3, self.state >> 6)
    }

    /// Counts one more packet one way (saturating at 3).
    #[inline]
    pub fn count_packet(&mut self, reply: bool) {
        let (shift, n) = if reply {
            (6, self.packets().1)
        } else {
            (4, self.packets().0)
        };
        if n < 3 {
            self.state += 1 << shift;
        }
    }

    #[inline]
    pub fn occupied(&self) -> bool {
        self.flags & flag::OCCUPIED != 0
    }

    #[inline]
    pub fn assured(&self) -> bool {
        self.flags & flag::ASSURED != 0
    }
}

/// The smallest table; it grows by doubling.
const MIN_SLOTS: usize = 1024;

pub struct Table<A: Copy> {
    slots: Vec<Slot<A>>,
    mask: usize,
    len: usize,
    /// The most slots the table may grow to.
    max_slots: usize,
    hasher: foldhash::fast::FixedState,
}

impl<A: Addr> Table<A> {
    /// A table that will hold up to `max_entries` at a load of at most 3/4,
    /// hashing with `seed`: where each key lies, and so which entries the
    /// early drop samples, follows from the seed and the keys alone.
    pub fn new(max_entries: usize, seed: u64) -> Table<A> {
        let max_slots = (max_entries.max(1) * 4 / 3 + 1)
            .next_power_of_two()
            .max(MIN_SLOTS);
        let n = MIN_SLOTS.min(max_slots);
        Table {
            slots: alloc_slots(n),
            mask: n - 1,
            len: 0,
            max_slots,
            hasher: foldhash::fast::FixedState::with_seed(seed),
        }
    }

    #[inline]
    pub fn hash(&self, k: &Key<A>) -> u64 {
        let mut h = self.hasher.build_hasher();
        let (zone, a, b) = (k.zone, k.a, k.b);
        h.write_u64(zone);
        a.write(&mut h);
        b.write(&mut h);
        h.write_u64(u64::from(k.pa) << 24 | u64::from(k.pb) << 8 | u64::from(k.proto));
        h.finish()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Heap bytes used.
    pub fn memory_bytes(&self) -> usize {
        self.slots.len() * std::mem::size_of::<Slot<A>>()
    }

    /// Brings the home slot of `hash` into the cache ahead of a lookup.
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        let i = hash as usize & self.mask;
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `i` is masked into range, and a prefetch never faults anyway.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch(self.slots.as_ptr().add(i) as *const i8, _MM_HINT_T0);
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = i;
    }

    /// The slot holding `key`, if any.
    #[inline]
    pub fn find(&self, hash: u64, key: &Key<A>) -> Option<usize> {
        let mut i = hash as usize & self.mask;
        loop {
            let s = &self.slots[i];
            if !s.occupied() {
                return None;
            }
            if s.key == *key {
                return Some(i);
            }
            i = (i + 1) & self.mask;
        }
    }

    #[inline]
    pub fn slot(&self, i: usize) -> &Slot<A> {
        &self.slots[i]
    }

    #[inline]
    pub fn slot_mut(&mut self, i: usize) -> &mut Slot<A> {
        &mut self.slots[i]
    }

    /// The occupied slots met probing from the home slot of `hash` until `n`
    /// entries were seen or the whole table was looked at: a sample of the
    /// table that costs about `n / load` slots.
    pub fn sample(&self, hash: u64, n: usize) -> impl Iterator<Item = usize> + '_ {
        let home = hash as usize & self.mask;
        (0..self.slots.len())
            .map(move |k| (home + k) & self.mask)
            .filter(|&i| self.slots[i].occupied())
            .take(n)
    }

    /// Whether one more entry fits without growing past the maximum.
    pub fn has_room(&self) -> bool {
        (self.len + 1) * 4 <= self.slots.len() * 3 || self.slots.len() < self.max_slots
    }

    /// Inserts an entry whose key is not present. The caller checks `has_room`.
    pub fn insert(&mut self, hash: u64, slot: Slot<A>) -> usize {
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow();
        }
        let mut i = hash as usize & self.mask;
        while self.slots[i].occupied() {
            i = (i + 1) & self.mask;
        }
        self.slots[i] = Slot {
            flags: slot.flags | flag::OCCUPIED,
            ..slot
        };
        self.len += 1;
        i
    }

    /// Removes the entry in slot `i`, shifting later entries of its probe run
    /// back so no tombstone is left.
    pub fn remove(&mut self, mut i: usize) {
        self.slots[i] = Slot::default();
        self.len -= 1;
        let mut j = i;
        loop {
            j = (j + 1) & self.mask;
            if !self.slots[j].occupied() {
                return;
            }
            let home = self.hash(&self.slots[j].key) as usize & self.mask;
            // Move j back to i unless its home lies cyclically in (i, j].
            let stays = if i <= j {
                i < home && home <= j
            } else {
                i < home || home <= j
            };
            if !stays {
                self.slots[i] = self.slots[j];
                self.slots[j] = Slot::default();
                i = j;
            }
        }
    }

    /// Removes every entry for which `expired` is true; returns how many.
    pub fn retain(&mut self, mut keep: impl FnMut(&Slot<A>) -> bool) -> usize {
        let before = self.len;
        let mut i = 0;
        while i < self.slots.len() {
            if self.slots[i].occupied() && !keep(&self.slots[i]) {
                // The shift may move another entry into `i`: look at it again.
                self.remove(i);
            } else {
                i += 1;
            }
        }
        before - self.len
    }

    /// Every entry.
    pub fn iter(&self) -> impl Iterator<Item = &Slot<A>> {
        self.slots.iter().filter(|s| s.occupied())
    }

    /// Applies `f` to every entry.
    pub fn for_each_mut(&mut self, mut f: impl FnMut(&mut Slot<A>)) {
        for s in self.slots.iter_mut().filter(|s| s.occupied()) {
            f(s);
        }
    }

    /// Hashes with `seed` from now on, every entry moved to its new place.
    pub fn reseed(&mut self, seed: u64) {
        self.hasher = foldhash::fast::FixedState::with_seed(seed);
        self.rehash(self.slots.len());
    }

    fn grow(&mut self) {
        self.rehash(self.slots.len() * 2);
    }

    /// Places every entry anew in `n` slots.
    fn rehash(&mut self, n: usize) {
        let old = std::mem::replace(&mut self.slots, alloc_slots(n));
        self.mask = n - 1;
        for s in old.into_iter().filter(|s| s.occupied()) {
            let mut i = self.hash(&s.key) as usize & self.mask;
            while self.slots[i].occupied() {
                i = (i + 1) & self.mask;
            }
            self.slots[i] = s;
        }
    }
}

/// `n` empty slots. A large table is backed by transparent huge pages where
/// the kernel offers them (random lookups in a table of many megabytes would
/// otherwise miss the TLB on nearly every packet).
fn alloc_slots<A: Addr>(n: usize) -> Vec<Slot<A>> {
    let mut v: Vec<Slot<A>> = Vec::with_capacity(n);
    let bytes = n * std::mem::size_of::<Slot<A>>();
    #[cfg(target_os = "linux")]
    if bytes >= 4 << 20 {
        // madvise wants a page-aligned start: advise the aligned interior.
        const PAGE: usize = 4096;
        let start = v.as_mut_ptr() as usize;
        let aligned = start.next_multiple_of(PAGE);
        let len = (bytes - (aligned - start)) / PAGE * PAGE;
        // SAFETY: the range lies inside the vector's own allocation, not yet
        // touched; madvise only changes how the kernel backs it, and failure
        // is harmless.
        unsafe {
            libc::madvise(aligned as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
        }
    }
    v.resize(n, Slot::default());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u32) -> Key<u32> {
        Key::canonical(0, n, n.wrapping_mul(7) ^ 0x5555, (n % 1000) as u16, 80, 6).0
    }

    /// Adds the entry of `key(n)`.
    fn add(t: &mut Table<u32>, n: u32) {
        let k = key(n);
        t.insert(
            t.hash(&k),
            Slot {
                key: k,
                ..Default::default()
            },
        );
    }

    /// A table for `max_entries`, hashing with `seed`, holding `key(0..n)`.
    fn filled(max_entries: usize, seed: u64, n: u32) -> Table<u32> {
        let mut t = Table::new(max_entries, seed);
        (0..n).for_each(|i| add(&mut t, i));
        t
    }

    #[test]
    fn sizes() {
        assert_eq!(std::mem::size_of::<Slot<u32>>(), 32);
        assert_eq!(std::mem::size_of::<Slot<[u64; 2]>>(), 56);
    }

    #[test]
    fn stamps_hold_40_bits() {
        for ms in [
            0,
            1,
            0xff,
            0x1_0000_0000,
            1_728_000_000,
            100 * 86_400_000,
            Stamp::MAX,
        ] {
            assert_eq!(Stamp::new(ms).get(), ms);
        }
    }

    #[test]
    fn the_seed_alone_places_the_keys_and_a_reseed_keeps_every_entry() {
        let fill = |seed| filled(3000, seed, 2000);
        let places = |t: &Table<u32>| -> Vec<usize> {
            (0..2000)
                .map(|n| t.find(t.hash(&key(n)), &key(n)).unwrap())
                .collect()
        };
        let (a, b, mut c) = (fill(7), fill(7), fill(8));
        assert_eq!(places(&a), places(&b));
        assert_ne!(places(&a), places(&c));
        c.reseed(7);
        assert_eq!(c.len(), 2000);
        // Every entry is found where seed 7 puts it (insertion order may
        // differ within a probe run, so compare the sets of places).
        let mut pa = places(&a);
        let mut pc = places(&c);
        pa.sort_unstable();
        pc.sort_unstable();
        assert_eq!(pa, pc);
    }

    #[test]
    fn a_sample_is_bounded_and_finds_sparse_entries() {
        let t = filled(8, 1, 3);
        // Three entries in 1024 slots: probing wraps round to all of them.
        assert_eq!(t.sample(12345, 8).count(), 3);
        assert_eq!(t.sample(12345, 2).count(), 2);
        let t = filled(100_000, 1, 50_000);
        for h in [0, 77, u64::MAX] {
            let s: Vec<usize> = t.sample(h, 8).collect();
            assert_eq!(s.len(), 8);
            assert!(s.iter().all(|&i| t.slot(i).occupied()));
        }
    }

    #[test]
    fn canonical_order_is_symmetric() {
        let (k1, a1) = Key::canonical(3, 10u32, 20, 1000, 80, 6);
        let (k2, a2) = Key::canonical(3, 20u32, 10, 80, 1000, 6);
        assert_eq!(k1, k2);
        assert!(a1 && !a2);
    }

    #[test]
    fn insert_find_remove_many() {
        let mut t: Table<u32> = Table::new(100_000, 1);
        for n in 0..50_000 {
            let k = key(n);
            let h = t.hash(&k);
            assert!(t.find(h, &k).is_none());
            t.insert(
                h,
                Slot {
                    key: k,
                    last: Stamp::new(n.into()),
                    ..Default::default()
                },
            );
        }
        assert_eq!(t.len(), 50_000);
        // Remove every third entry; the rest stay findable (backward shift is right).
        let removed = t.retain(|s| s.last.get() % 3 != 0);
        assert_eq!(removed, (0..50_000).filter(|n| n % 3 == 0).count());
        for n in 0..50_000 {
            let k = key(n);
            let found = t.find(t.hash(&k), &k).map(|i| t.slot(i).last.get());
            assert_eq!(found, (n % 3 != 0).then_some(n.into()), "entry {n}");
        }
    }

    #[test]
    fn room_is_bounded_by_max_entries() {
        let mut t: Table<u32> = Table::new(3000, 1);
        let mut n = 0;
        while t.has_room() {
            add(&mut t, n);
            n += 1;
        }
        assert!(t.len() >= 3000, "{}", t.len());
        assert!(t.capacity() <= 4096);
    }
}
