//! The one interface of every frame device: a [`FrameSource`] hands over
//! bursts of frames, a [`FrameSink`] sends frames out of a [`Frames`] batch.
//!
//! What a device knows about a frame besides its bytes travels next to them
//! in a [`FrameMeta`]: its virtio-net header (checksum and segmentation
//! offloads), a VLAN tag the kernel took out of it, its length on the wire,
//! when and where it came in. The bytes are the frame alone: no device
//! header in front that callers must know to skip.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::BorrowedFd;
use std::time::Duration;

use super::sys;
use crate::base::Nanos;
use crate::wire::LinkType;

/// Where frames come from: a TAP device, an AF_PACKET ring, a UDP socket,
/// a capture file.
pub trait FrameSource {
    /// Takes up to `bursts` bursts of the frames waiting, without blocking,
    /// and hands each to `each` with its metadata, in the order they came;
    /// returns how many. A burst is what the device hands over at once: up
    /// to 64 frames of a TAP device (one io_uring submission, or as many
    /// `read`s), one block of an AF_PACKET ring, one `recvmmsg` of a UDP
    /// socket, 64 records of a capture. The bytes are lent for the call (a
    /// ring's block goes back to the kernel after it). 0: nothing is waiting
    /// (a capture: its end).
    fn recv_burst(
        &mut self,
        bursts: usize,
        each: &mut dyn FnMut(&[u8], &FrameMeta),
    ) -> io::Result<usize>;

    /// The descriptor that becomes readable when frames wait; `None` for a
    /// source that never makes one wait (a file).
    fn poll_fd(&self) -> Option<BorrowedFd<'_>>;

    /// True when frames are known to be waiting without asking the kernel.
    fn ready(&self) -> bool {
        false
    }

    /// Waits up to `timeout` for frames; true when some are waiting.
    fn wait(&self, timeout: Duration) -> io::Result<bool> {
        if self.ready() {
            return Ok(true);
        }
        match self.poll_fd() {
            Some(fd) => Ok(sys::poll_readable([fd], timeout)?[0]),
            None => Ok(true),
        }
    }

    /// Frames the device dropped since the last call (an AF_PACKET ring
    /// that was full).
    fn take_drops(&mut self) -> u64 {
        0
    }
}

/// Waits up to `timeout` for frames from any of `sources`; which have some
/// waiting. A source known to be ready, or that never makes one wait, ends
/// the wait at once. On failure, which source failed (a device deleted or
/// moved away).
pub fn wait_any<const N: usize>(
    sources: [&dyn FrameSource; N],
    timeout: Duration,
) -> Result<[bool; N], (usize, io::Error)> {
    let known = sources.map(|s| s.ready() || s.poll_fd().is_none());
    let timeout = if known.contains(&true) {
        Duration::ZERO
    } else {
        timeout
    };
    let fds = sources.map(|s| s.poll_fd());
    if fds.iter().any(Option::is_none) {
        return Ok(known);
    }
    let fds = fds.map(|fd| fd.expect("checked above"));
    let polled = sys::poll_readable(fds, timeout).map_err(|e| {
        let failed = (0..N)
            .find(|&i| sources[i].wait(Duration::ZERO).is_err())
            .unwrap_or(0);
        (failed, e)
    })?;
    let mut ready = known;
    for (r, p) in ready.iter_mut().zip(polled) {
        *r |= p;
    }
    Ok(ready)
}

/// Where frames go.
pub trait FrameSink {
    /// Sends frames `which` of `frames`, in that order; returns how many the
    /// device took (one it refuses is skipped, the rest still go). A device
    /// that carries virtio-net headers sends each frame's own, or an empty
    /// one (no offload) for a frame that came without.
    fn send_burst(&mut self, frames: &Frames, which: &[u32]) -> usize;
}

/// What a device says about a frame besides its bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameMeta {
    /// The port it came in on (inline: 0 or 1), as its source was told.
    pub side: u8,
    /// How to read the bytes: Ethernet for TAP and AF_PACKET, the capture's
    /// link type; `None` for a UDP payload or an unknown link type.
    pub link: Option<LinkType>,
    /// Length on the wire: more than the bytes when the device could not
    /// hold the whole frame (it cannot be forwarded then).
    pub wire_len: u32,
    /// When it came (nanoseconds since the Unix epoch): the kernel's time
    /// (AF_PACKET), the capture's, or the clock when its burst was read.
    pub ts: Nanos,
    /// Its virtio-net header (TAP and AF_PACKET): a checksum still to be
    /// filled in, a TCP segment to be cut.
    pub vnet: Option<VnetHdr>,
    /// The outer 802.1Q/802.1ad tag the device delivered apart from the
    /// bytes (AF_PACKET: the kernel strips it). [`Frames::push`] puts it
    /// back: in a [`Frames`] the tag is in the bytes.
    pub vlan: Option<VlanTag>,
    /// The sender of a datagram (UDP).
    pub peer: Option<SocketAddr>,
    /// The address a datagram was sent to (UDP).
    pub local: Option<IpAddr>,
}

/// A VLAN tag: its TPID (0x8100, 0x88a8...) and TCI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VlanTag {
    pub tpid: u16,
    pub tci: u16,
}

/// A `struct virtio_net_hdr` (10 bytes, little-endian), kept as the bytes
/// the kernel wrote: it is passed on unchanged but for the checksum start
/// when a VLAN tag goes back in front of it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VnetHdr([u8; VnetHdr::LEN]);

/// Field offsets in `struct virtio_net_hdr`.
mod vnet {
    use std::ops::Range;
    pub const FLAGS: usize = 0;
    pub const CSUM_START: Range<usize> = 6..8;
}

impl VnetHdr {
    /// Bytes of the header (the kernel's default size).
    pub const LEN: usize = 10;
    /// `flags`: the checksum at `csum_start + csum_offset` is still to be computed.
    pub const F_NEEDS_CSUM: u8 = 1;

    pub fn from_bytes(b: [u8; VnetHdr::LEN]) -> VnetHdr {
        VnetHdr(b)
    }

    /// The header at the start of `b`, if it is long enough.
    pub fn read(b: &[u8]) -> Option<VnetHdr> {
        Some(VnetHdr(b.get(..VnetHdr::LEN)?.try_into().ok()?))
    }

    pub fn bytes(&self) -> &[u8; VnetHdr::LEN] {
        &self.0
    }

    pub fn flags(&self) -> u8 {
        self.0[vnet::FLAGS]
    }

    pub fn csum_start(&self) -> u16 {
        u16::from_le_bytes([
            self.0[vnet::CSUM_START.start],
            self.0[vnet::CSUM_START.start + 1],
        ])
    }

    /// Moves the checksum start `n` bytes on (a tag went in front of it),
    /// if there is a checksum to compute.
    pub fn shift_csum_start(&mut self, n: u16) {
        if self.flags() & VnetHdr::F_NEEDS_CSUM != 0 {
            let cs = self.csum_start().wrapping_add(n);
            self.0[vnet::CSUM_START].copy_from_slice(&cs.to_le_bytes());
        }
    }
}

/// Frames back to back in one buffer, each with its metadata: what a reader
/// fills and a [`FrameSink`] sends from. Cleared and refilled, it allocates
/// nothing once warm.
#[derive(Debug, Default)]
pub struct Frames {
    data: Vec<u8>,
    /// (offset, length) of each frame in `data`.
    spans: Vec<(u32, u32)>,
    meta: Vec<FrameMeta>,
}

/// Bytes of the MAC addresses, after which a VLAN tag goes.
const MACS: usize = 12;

impl Frames {
    pub fn with_capacity(bytes: usize, frames: usize) -> Frames {
        Frames {
            data: Vec::with_capacity(bytes),
            spans: Vec::with_capacity(frames),
            meta: Vec::with_capacity(frames),
        }
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Bytes of all the frames.
    pub fn bytes(&self) -> usize {
        self.data.len()
    }

    pub fn capacity_bytes(&self) -> usize {
        self.data.capacity()
    }

    pub fn clear(&mut self) {
        self.data.clear();
        self.spans.clear();
        self.meta.clear();
    }

    /// Appends a frame, putting back the VLAN tag the device took out (and
    /// moving the checksum start past it). False, and nothing appended, for
    /// a tagged frame too short to hold MAC addresses.
    pub fn push(&mut self, frame: &[u8], meta: &FrameMeta) -> bool {
        let start = self.data.len();
        let mut meta = *meta;
        match meta.vlan {
            None => self.data.extend_from_slice(frame),
            Some(tag) if frame.len() >= MACS => {
                let (macs, rest) = frame.split_at(MACS);
                self.data.extend_from_slice(macs);
                self.data.extend_from_slice(&tag.tpid.to_be_bytes());
                self.data.extend_from_slice(&tag.tci.to_be_bytes());
                self.data.extend_from_slice(rest);
                if let Some(v) = &mut meta.vnet {
                    v.shift_csum_start(4);
                }
            }
            Some(_) => return false,
        }
        self.spans
            .push((start as u32, (self.data.len() - start) as u32));
        self.meta.push(meta);
        true
    }

    /// Frame `i`.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn frame(&self, i: usize) -> &[u8] {
        let (o, l) = self.spans[i];
        &self.data[o as usize..(o + l) as usize]
    }

    /// The metadata of frame `i`.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn meta(&self, i: usize) -> &FrameMeta {
        &self.meta[i]
    }

    /// Frame `i` and its metadata.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn get(&self, i: usize) -> (&[u8], &FrameMeta) {
        (self.frame(i), &self.meta[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_lie_back_to_back() {
        let mut b = Frames::with_capacity(4096, 8);
        for (i, len) in [60usize, 1500, 64].into_iter().enumerate() {
            let f = vec![i as u8; len];
            assert!(b.push(&f, &FrameMeta::default()));
        }
        assert_eq!((b.len(), b.bytes()), (3, 1624));
        assert_eq!(b.frame(1).len(), 1500);
        assert!(b.frame(2).iter().all(|&x| x == 2));
        b.clear();
        assert!(b.is_empty() && b.capacity_bytes() >= 4096);
    }

    #[test]
    fn a_vlan_tag_goes_back_after_the_macs_and_moves_the_checksum_start() {
        let mut hdr = [0u8; VnetHdr::LEN];
        hdr[0] = VnetHdr::F_NEEDS_CSUM;
        hdr[6..8].copy_from_slice(&34u16.to_le_bytes());
        let meta = FrameMeta {
            vnet: Some(VnetHdr::from_bytes(hdr)),
            vlan: Some(VlanTag {
                tpid: 0x8100,
                tci: 0x0123,
            }),
            ..FrameMeta::default()
        };
        let frame: Vec<u8> = (0..20).collect();
        let mut b = Frames::default();
        assert!(b.push(&frame, &meta));
        let (f, m) = b.get(0);
        assert_eq!(&f[..12], &frame[..12]);
        assert_eq!(&f[12..16], &[0x81, 0x00, 0x01, 0x23]);
        assert_eq!(&f[16..], &frame[12..]);
        assert_eq!(m.vnet.unwrap().csum_start(), 38);
        // Without a checksum to fill in, the header stays as it was.
        let plain = FrameMeta {
            vnet: Some(VnetHdr::from_bytes([0, 0, 0, 0, 0, 0, 34, 0, 0, 0])),
            ..meta
        };
        assert!(b.push(&frame, &plain));
        assert_eq!(b.meta(1).vnet.unwrap().csum_start(), 34);
        assert!(!b.push(&frame[..11], &meta));
        assert_eq!(b.len(), 2);
    }

    #[test]
    fn a_header_is_read_only_whole() {
        assert_eq!(VnetHdr::read(&[1; 9]), None);
        assert_eq!(VnetHdr::read(&[1; 12]).unwrap().flags(), 1);
    }
}
