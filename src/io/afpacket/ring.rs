//! The `TPACKET_V3` receive ring: blocks of frames the kernel fills in memory
//! it shares with us. A block is ours from the moment its status says
//! `TP_STATUS_USER` until we write `TP_STATUS_KERNEL` back; only then may we
//! read it, and the reads are of raw memory the kernel laid out, hence this
//! module's `unsafe`.

use std::sync::atomic::{fence, Ordering};

use crate::base::Nanos;
use crate::io::frame::{VlanTag, VnetHdr};
use crate::io::sys::Mmap;

/// Ring geometry: 64 blocks of 1 MiB (a frame must fit in a block, and GRO can
/// hand over 64 KiB frames); a block goes to userspace when full or after
/// `RETIRE_MS` (which bounds the added latency when traffic is light).
pub const BLOCK_SIZE: u32 = 1 << 20;
pub const BLOCK_NR: u32 = 64;
pub const RETIRE_MS: u32 = 1;

/// Field offsets in `struct tpacket_block_desc` (with `tpacket_hdr_v1`).
mod block {
    pub const STATUS: usize = 8;
    pub const NUM_PKTS: usize = 12;
    pub const FIRST_PKT: usize = 16;
}
/// Field offsets in `struct tpacket3_hdr`, then the `sockaddr_ll` after it.
mod frame {
    pub const NEXT_OFFSET: usize = 0;
    pub const SEC: usize = 4;
    pub const NSEC: usize = 8;
    pub const SNAPLEN: usize = 12;
    pub const LEN: usize = 16;
    pub const STATUS: usize = 20;
    pub const MAC: usize = 24;
    pub const VLAN_TCI: usize = 32;
    pub const VLAN_TPID: usize = 36;
    /// `TPACKET_ALIGN(sizeof(struct tpacket3_hdr))` + offset of `sll_pkttype`.
    pub const PKTTYPE: usize = 48 + 10;
}

/// One frame in the ring.
pub struct RingFrame<'a> {
    /// The frame as it was on the wire, minus any VLAN tag the kernel took
    /// out (see `vlan`); at most the ring's room for it.
    pub data: &'a [u8],
    /// The virtio header in front of it (`PACKET_VNET_HDR`).
    pub vnet: Option<VnetHdr>,
    /// The 802.1Q/802.1ad tag to put back after the MAC addresses.
    pub vlan: Option<VlanTag>,
    /// Its length on the wire (without the tag): more than `data` when the
    /// ring could not hold it.
    pub wire_len: u32,
    /// When the kernel received it.
    pub ts: Nanos,
}

/// A mapped ring and the block to read next.
pub struct Ring {
    map: Mmap,
    next: usize,
}

impl Ring {
    /// The ring mapped at `map`.
    ///
    /// # Panics
    /// If the mapping is smaller than the ring's geometry.
    pub fn new(map: Mmap) -> Ring {
        assert!(
            map.len() >= (BLOCK_SIZE * BLOCK_NR) as usize,
            "ring mapping too small"
        );
        Ring { map, next: 0 }
    }

    /// The next block; `next < BLOCK_NR`, so it lies inside the mapping.
    fn block_ptr(&self) -> *mut u8 {
        self.map
            .as_ptr()
            .wrapping_add(self.next * BLOCK_SIZE as usize)
    }

    /// True when the next block is ready to drain: no system call needed.
    pub fn ready(&self) -> bool {
        // SAFETY: the status word is inside the mapped block; the kernel
        // writes it concurrently, hence the volatile read and acquire fence.
        let status =
            unsafe { std::ptr::read_volatile(self.block_ptr().add(block::STATUS).cast::<u32>()) };
        fence(Ordering::Acquire);
        status & libc::TP_STATUS_USER != 0
    }

    /// Calls `f` for every frame received (not sent) of the next ready
    /// block, if any, and hands the block back to the kernel; returns the
    /// number of frames.
    pub fn drain_block(&mut self, mut f: impl FnMut(RingFrame<'_>)) -> usize {
        if !self.ready() {
            return 0;
        }
        let base = self.block_ptr();
        let end = BLOCK_SIZE as usize;
        // SAFETY: the block belongs to userspace until we reset its status
        // (TP_STATUS_USER was seen above); every offset read below is checked
        // against the block's end before use, and the slices handed to `f`
        // do not outlive the call.
        let n = unsafe {
            let rd32 = |off: usize| std::ptr::read_unaligned(base.add(off).cast::<u32>());
            let rd16 = |off: usize| std::ptr::read_unaligned(base.add(off).cast::<u16>());
            let num = rd32(block::NUM_PKTS) as usize;
            let mut off = rd32(block::FIRST_PKT) as usize;
            let mut seen = 0;
            while seen < num && off + frame::PKTTYPE < end {
                let mac = off + usize::from(rd16(off + frame::MAC));
                let snap = rd32(off + frame::SNAPLEN) as usize;
                let status = rd32(off + frame::STATUS);
                let pkttype = *base.add(off + frame::PKTTYPE);
                if mac >= VnetHdr::LEN && mac + snap <= end && pkttype != libc::PACKET_OUTGOING {
                    let hdr =
                        std::slice::from_raw_parts(base.add(mac - VnetHdr::LEN), VnetHdr::LEN);
                    let vlan = (status & libc::TP_STATUS_VLAN_VALID != 0).then(|| VlanTag {
                        tpid: if status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                            rd16(off + frame::VLAN_TPID)
                        } else {
                            0x8100
                        },
                        tci: rd32(off + frame::VLAN_TCI) as u16,
                    });
                    let ts = u64::from(rd32(off + frame::SEC)) * 1_000_000_000
                        + u64::from(rd32(off + frame::NSEC));
                    f(RingFrame {
                        data: std::slice::from_raw_parts(base.add(mac), snap),
                        vnet: VnetHdr::read(hdr),
                        vlan,
                        wire_len: rd32(off + frame::LEN),
                        ts,
                    });
                }
                seen += 1;
                let next = rd32(off + frame::NEXT_OFFSET) as usize;
                if next == 0 {
                    break;
                }
                off += next;
            }
            fence(Ordering::Release);
            std::ptr::write_volatile(
                base.add(block::STATUS).cast::<u32>(),
                libc::TP_STATUS_KERNEL,
            );
            seen
        };
        self.next = (self.next + 1) % BLOCK_NR as usize;
        n
    }
}
