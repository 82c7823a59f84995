//! The memory an AF_XDP socket shares with the kernel: the UMEM the frames
//! live in, and the four single-producer single-consumer rings of frame
//! addresses (FILL: empty frames for the kernel to receive into; RX: frames
//! received; TX: frames to send; COMPLETION: frames sent, empty again).
//!
//! The ring protocol (`net/xdp/xsk_queue.h`): indices run freely over `u32`
//! and are masked with the size; a producer writes entries, then publishes
//! its index with release ordering; a consumer reads the producer's index
//! with acquire ordering, reads the entries, then publishes its own index
//! with release ordering. This side keeps its own index and a cached copy
//! of the other's, so most calls touch no shared cache line.

use std::io;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::io::sys::Mmap;

/// `XDP_RING_NEED_WAKEUP`: the kernel waits for a system call to go on.
const NEED_WAKEUP: u32 = 1;

/// Where a ring's parts lie in its mapping (`struct xdp_ring_offset`).
#[derive(Debug, Clone, Copy)]
pub struct Offsets {
    pub producer: u64,
    pub consumer: u64,
    pub desc: u64,
    pub flags: u64,
}

impl From<libc::xdp_ring_offset> for Offsets {
    fn from(o: libc::xdp_ring_offset) -> Offsets {
        Offsets {
            producer: o.producer,
            consumer: o.consumer,
            desc: o.desc,
            flags: o.flags,
        }
    }
}

/// An entry of a ring: a frame address (FILL, COMPLETION) or a descriptor
/// (RX, TX).
///
/// # Safety
/// Plain data: any bytes the kernel writes are a valid value.
pub unsafe trait Entry: Copy {}
// SAFETY: an integer.
unsafe impl Entry for u64 {}
// SAFETY: integers only.
unsafe impl Entry for libc::xdp_desc {}

/// One ring, mapped from its socket. Which end this side is decides which
/// methods make sense: [`Ring::free`]/[`Ring::push`]/[`Ring::submit`] for
/// FILL and TX, [`Ring::ready`]/[`Ring::get`]/[`Ring::release`] for RX and
/// COMPLETION.
pub struct Ring<T: Entry> {
    _map: Mmap,
    producer: *const AtomicU32,
    consumer: *const AtomicU32,
    flags: *const AtomicU32,
    entries: *mut T,
    size: u32,
    /// This side's index (the producer's if it produces, else the consumer's).
    own: u32,
    /// The other side's index, as last read.
    theirs: u32,
    _t: PhantomData<T>,
}

// SAFETY: the ring's memory belongs to the mapping the value owns; one
// thread at a time uses a `Ring` (it is not `Sync`), as the protocol needs.
unsafe impl<T: Entry> Send for Ring<T> {}

impl<T: Entry> Ring<T> {
    /// The ring of `size` entries (a power of two) in `map`, laid out as
    /// `off` says; `produce`: this side writes it.
    pub fn new(map: Mmap, off: Offsets, size: u32, produce: bool) -> io::Result<Ring<T>> {
        let need = off.desc as usize + size as usize * std::mem::size_of::<T>();
        let fits = |at: u64| (at as usize) + 4 <= map.len() && at % 4 == 0;
        if !size.is_power_of_two()
            || map.len() < need
            || !fits(off.producer)
            || !fits(off.consumer)
            || !fits(off.flags)
            || off.desc as usize % std::mem::align_of::<T>() != 0
        {
            return Err(io::Error::other(
                "the kernel's ring layout does not fit the mapping",
            ));
        }
        let base = map.as_ptr();
        // SAFETY: every offset was checked to lie inside the mapping, 4-aligned
        // for the indices and aligned for `T` for the entries.
        let (producer, consumer, flags, entries) = unsafe {
            (
                base.add(off.producer as usize) as *const AtomicU32,
                base.add(off.consumer as usize) as *const AtomicU32,
                base.add(off.flags as usize) as *const AtomicU32,
                base.add(off.desc as usize) as *mut T,
            )
        };
        let mut ring = Ring {
            _map: map,
            producer,
            consumer,
            flags,
            entries,
            size,
            own: 0,
            theirs: 0,
            _t: PhantomData,
        };
        if produce {
            ring.own = ring.producer().load(Ordering::Relaxed);
            ring.theirs = ring.consumer().load(Ordering::Acquire);
        } else {
            ring.own = ring.consumer().load(Ordering::Relaxed);
            ring.theirs = ring.producer().load(Ordering::Acquire);
        }
        Ok(ring)
    }

    fn producer(&self) -> &AtomicU32 {
        // SAFETY: checked in `new` to be an aligned u32 inside the mapping,
        // which lives as long as `self`; the kernel only ever accesses it
        // atomically.
        unsafe { &*self.producer }
    }

    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: as for `producer`.
        unsafe { &*self.consumer }
    }

    /// Whether the kernel waits for a system call to use this ring.
    pub fn needs_wakeup(&self) -> bool {
        // SAFETY: as for `producer`.
        unsafe { &*self.flags }.load(Ordering::Relaxed) & NEED_WAKEUP != 0
    }

    // ---- producing (FILL, TX) ----

    /// How many entries may be pushed now (reading the kernel's index only
    /// when the cached one says fewer than `want`).
    pub fn free(&mut self, want: u32) -> u32 {
        let free = self.size - self.own.wrapping_sub(self.theirs);
        if free >= want {
            return free;
        }
        self.theirs = self.consumer().load(Ordering::Acquire);
        self.size - self.own.wrapping_sub(self.theirs)
    }

    /// Writes the next entry; seen by the kernel at the next [`Ring::submit`].
    /// The caller checked [`Ring::free`].
    pub fn push(&mut self, entry: T) {
        debug_assert!(self.own.wrapping_sub(self.theirs) < self.size);
        let at = (self.own & (self.size - 1)) as usize;
        // SAFETY: `at` < size, inside the entries checked in `new`; this slot
        // is between the consumer's index and ours, so the kernel does not
        // read it until we publish.
        unsafe { self.entries.add(at).write(entry) };
        self.own = self.own.wrapping_add(1);
    }

    /// Publishes the pushed entries.
    pub fn submit(&mut self) {
        self.producer().store(self.own, Ordering::Release);
    }

    /// Entries pushed that the kernel has not yet taken (after a fresh read
    /// of its index).
    pub fn outstanding(&mut self) -> u32 {
        self.theirs = self.consumer().load(Ordering::Acquire);
        self.own.wrapping_sub(self.theirs)
    }

    // ---- consuming (RX, COMPLETION) ----

    /// How many entries wait (reading the kernel's index).
    pub fn ready(&mut self) -> u32 {
        self.theirs = self.producer().load(Ordering::Acquire);
        self.theirs.wrapping_sub(self.own).min(self.size)
    }

    /// The `i`-th waiting entry. The caller checked [`Ring::ready`].
    pub fn get(&self, i: u32) -> T {
        debug_assert!(i < self.theirs.wrapping_sub(self.own));
        let at = (self.own.wrapping_add(i) & (self.size - 1)) as usize;
        // SAFETY: `at` < size, inside the entries; the kernel published this
        // slot (acquire in `ready`) and does not write it again until we
        // release it. Any bytes are a valid `T` (`Entry`).
        unsafe { self.entries.add(at).read() }
    }

    /// Gives the first `n` waiting entries back to the kernel.
    pub fn release(&mut self, n: u32) {
        self.own = self.own.wrapping_add(n);
        self.consumer().store(self.own, Ordering::Release);
    }
}

/// The frames' memory: `frames` chunks of `frame_size` bytes, registered
/// with the kernel, which writes received frames into chunks it was given
/// on a FILL ring and reads frames to send from chunks on a TX ring.
pub struct Umem {
    map: Mmap,
    frame_size: u32,
}

// SAFETY: the memory belongs to the mapping the value owns; see `frame`.
unsafe impl Send for Umem {}

impl Umem {
    pub fn new(frames: u32, frame_size: u32) -> io::Result<Umem> {
        let len = frames as usize * frame_size as usize;
        Ok(Umem {
            map: Mmap::anonymous(len)?,
            frame_size,
        })
    }

    pub fn addr(&self) -> u64 {
        self.map.as_ptr() as u64
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn frame_size(&self) -> u32 {
        self.frame_size
    }

    /// The `len` bytes at `addr`, a received frame; `None` when the kernel
    /// said something outside the memory.
    ///
    /// The kernel writes into chunks it holds while these bytes are read;
    /// a chunk sgplane holds (taken off an RX ring, not yet on a FILL or TX
    /// ring) is written by no one, and the borrow ends before sgplane gives
    /// the chunk back (the caller's loop holds `&self` for as long).
    pub fn frame(&self, addr: u64, len: u32) -> Option<&[u8]> {
        let start = usize::try_from(addr).ok()?;
        let end = start.checked_add(len as usize)?;
        if end > self.map.len() {
            return None;
        }
        // SAFETY: [start, end) lies inside the mapping, which lives as long
        // as `self`; see above for who writes it.
        Some(unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(start), len as usize) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ring in ordinary memory, laid out as the kernel does (indices on
    /// their own cache lines), to check the index arithmetic.
    fn ring<T: Entry>(size: u32, start: u32, produce: bool) -> Ring<T> {
        let off = Offsets {
            producer: 0,
            consumer: 64,
            flags: 128,
            desc: 192,
        };
        let len = 192 + size as usize * std::mem::size_of::<T>();
        let map = Mmap::anonymous(len.next_multiple_of(4096)).unwrap();
        // SAFETY (test): the indices lie at the start of the new mapping.
        unsafe {
            (map.as_ptr() as *mut u32).write(start);
            (map.as_ptr().add(64) as *mut u32).write(start);
        }
        Ring::new(map, off, size, produce).unwrap()
    }

    #[test]
    fn a_producer_never_overruns_its_consumer_across_the_wrap() {
        for start in [0, u32::MAX - 5] {
            let mut p: Ring<u64> = ring(8, start, true);
            assert_eq!(p.free(1), 8);
            for i in 0..8 {
                p.push(i);
            }
            p.submit();
            assert_eq!(p.free(1), 0);
            assert_eq!(p.outstanding(), 8);
            // The "kernel" consumes three.
            p.consumer().store(start.wrapping_add(3), Ordering::Release);
            assert_eq!(p.free(1), 3);
            assert_eq!(p.outstanding(), 5);
            assert_eq!(p.producer().load(Ordering::Relaxed), start.wrapping_add(8));
        }
    }

    #[test]
    fn a_consumer_reads_what_was_published_in_order_across_the_wrap() {
        for start in [0, u32::MAX - 2] {
            let mut c: Ring<u64> = ring(4, start, false);
            assert_eq!(c.ready(), 0);
            // The "kernel" publishes three entries.
            for i in 0..3u32 {
                let at = (start.wrapping_add(i) & 3) as usize;
                // SAFETY (test): inside the entries.
                unsafe { c.entries.add(at).write(100 + u64::from(i)) };
            }
            c.producer().store(start.wrapping_add(3), Ordering::Release);
            assert_eq!(c.ready(), 3);
            assert_eq!((c.get(0), c.get(1), c.get(2)), (100, 101, 102));
            c.release(2);
            assert_eq!(c.consumer().load(Ordering::Relaxed), start.wrapping_add(2));
            assert_eq!(c.ready(), 1);
            assert_eq!(c.get(0), 102);
        }
    }

    #[test]
    fn a_layout_outside_the_mapping_is_refused() {
        let map = Mmap::anonymous(4096).unwrap();
        let off = Offsets {
            producer: 0,
            consumer: 64,
            flags: 128,
            desc: 192,
        };
        assert!(Ring::<u64>::new(map, off, 1024, true).is_err());
    }

    #[test]
    fn frames_outside_the_umem_are_refused() {
        let u = Umem::new(4, 2048).unwrap();
        assert_eq!(u.frame(256, 60).map(<[u8]>::len), Some(60));
        assert!(u.frame(4 * 2048 - 10, 60).is_none());
        assert!(u.frame(u64::MAX, 60).is_none());
    }
}
