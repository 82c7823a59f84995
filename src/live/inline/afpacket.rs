//! AF_PACKET on an existing interface: a `TPACKET_V3` receive ring (the
//! kernel fills blocks of frames in shared memory; one `poll` per block, no
//! system call per frame) and `sendmmsg` sockets for sending (one system call
//! per batch).
//!
//! Both carry a `virtio_net_hdr` before every frame (`PACKET_VNET_HDR`), the
//! same header a TAP device uses: a frame whose checksum the sender left to
//! the hardware keeps that note across sgplane, and the far side's kernel
//! fills it in.
//!
//! All of this module's `unsafe` is here: sockets wrapped in [`OwnedFd`] at
//! once, `setsockopt`, the ring's `mmap`, and reading the ring's headers.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{fence, Ordering};

use super::tap::VNET_HDR_LEN;

/// Ring geometry: 64 blocks of 1 MiB (a frame must fit in a block, and GRO can
/// hand over 64 KiB frames); a block goes to userspace when full or after
/// `RETIRE_MS` (which bounds the added latency when traffic is light).
const BLOCK_SIZE: u32 = 1 << 20;
const BLOCK_NR: u32 = 64;
const RETIRE_MS: u32 = 1;

/// Field offsets in `struct tpacket_block_desc` (with `tpacket_hdr_v1`).
mod block {
    pub const STATUS: usize = 8;
    pub const NUM_PKTS: usize = 12;
    pub const FIRST_PKT: usize = 16;
}
/// Field offsets in `struct tpacket3_hdr`, then the `sockaddr_ll` after it.
mod frame {
    pub const NEXT_OFFSET: usize = 0;
    pub const SNAPLEN: usize = 12;
    pub const LEN: usize = 16;
    pub const STATUS: usize = 20;
    pub const MAC: usize = 24;
    pub const VLAN_TCI: usize = 32;
    pub const VLAN_TPID: usize = 36;
    /// `TPACKET_ALIGN(sizeof(struct tpacket3_hdr))` + offset of `sll_pkttype`.
    pub const PKTTYPE: usize = 48 + 10;
}

/// The interface index of `name` in the current network namespace.
pub fn ifindex(name: &str) -> io::Result<u32> {
    let c = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in interface name"))?;
    // SAFETY: `c` is a valid NUL-terminated string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no interface named {name} in this network namespace"),
        ));
    }
    Ok(i)
}

fn packet_socket(protocol: u16) -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the result is checked and owned at once.
    let raw = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::c_int::from(protocol.to_be()),
        )
    };
    if raw < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("cannot open an AF_PACKET socket (needs CAP_NET_RAW): {e}"),
        ));
    }
    // SAFETY: `raw` is a socket we just created and own exclusively.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

fn setsockopt<T>(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
    what: &str,
) -> io::Result<()> {
    // SAFETY: `value` points to a live `T` of the size we pass.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("{what}: {e}")));
    }
    Ok(())
}

fn bind(fd: &OwnedFd, ifindex: u32, protocol: u16) -> io::Result<()> {
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = protocol.to_be();
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: `sll` is a sockaddr_ll and we pass its size.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("cannot bind to the interface: {e}"),
        ));
    }
    Ok(())
}

/// One frame in the receive ring.
pub struct RxFrame<'a> {
    /// The virtio header, then the frame as it was on the wire minus any VLAN
    /// tag the kernel took out (see `vlan`).
    pub data: &'a [u8],
    /// The 802.1Q/802.1ad tag to put back after the MAC addresses: (TPID, TCI).
    pub vlan: Option<(u16, u16)>,
    /// The frame was longer than the ring could hold: it cannot be forwarded.
    pub truncated: bool,
}

/// The receive side: a `TPACKET_V3` ring on one interface, in promiscuous mode.
pub struct PacketRx {
    fd: OwnedFd,
    ring: *mut u8,
    size: usize,
    next: usize,
}

// SAFETY: the mapping belongs to this value alone (no copies of `ring` leak
// out beyond borrows of `&mut self`), so moving it to another thread is fine.
unsafe impl Send for PacketRx {}

impl PacketRx {
    /// Opens a receive ring on interface `ifindex`.
    pub fn open(ifindex: u32) -> io::Result<PacketRx> {
        let fd = packet_socket(libc::ETH_P_ALL as u16)?;
        let v3 = 2 as libc::c_int; // TPACKET_V3
        setsockopt(
            &fd,
            libc::SOL_PACKET,
            libc::PACKET_VERSION,
            &v3,
            "PACKET_VERSION V3",
        )?;
        let on: libc::c_int = 1;
        setsockopt(
            &fd,
            libc::SOL_PACKET,
            libc::PACKET_VNET_HDR,
            &on,
            "PACKET_VNET_HDR",
        )?;
        // Frames we send on this interface ourselves are not input.
        setsockopt(
            &fd,
            libc::SOL_PACKET,
            libc::PACKET_IGNORE_OUTGOING,
            &on,
            "PACKET_IGNORE_OUTGOING",
        )?;
        let req = libc::tpacket_req3 {
            tp_block_size: BLOCK_SIZE,
            tp_block_nr: BLOCK_NR,
            tp_frame_size: 2048,
            tp_frame_nr: BLOCK_SIZE / 2048 * BLOCK_NR,
            tp_retire_blk_tov: RETIRE_MS,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        setsockopt(
            &fd,
            libc::SOL_PACKET,
            libc::PACKET_RX_RING,
            &req,
            "PACKET_RX_RING",
        )?;
        let size = (BLOCK_SIZE * BLOCK_NR) as usize;
        // SAFETY: mapping the ring the kernel just allocated for this socket;
        // the result is checked, and unmapped in Drop.
        let ring = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_LOCKED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                0,
            )
        };
        let ring = if ring == libc::MAP_FAILED {
            // MAP_LOCKED can fail under RLIMIT_MEMLOCK; the ring works without it.
            // SAFETY: as above, without MAP_LOCKED.
            let r = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    size,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED | libc::MAP_POPULATE,
                    fd.as_raw_fd(),
                    0,
                )
            };
            if r == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            r
        } else {
            ring
        };
        let rx = PacketRx {
            fd,
            ring: ring.cast(),
            size,
            next: 0,
        };
        let mreq = libc::packet_mreq {
            mr_ifindex: ifindex as i32,
            mr_type: libc::PACKET_MR_PROMISC as u16,
            mr_alen: 0,
            mr_address: [0; 8],
        };
        setsockopt(
            &rx.fd,
            libc::SOL_PACKET,
            libc::PACKET_ADD_MEMBERSHIP,
            &mreq,
            "promiscuous mode",
        )?;
        bind(&rx.fd, ifindex, libc::ETH_P_ALL as u16)?;
        Ok(rx)
    }

    /// True when a block is ready to drain: no system call needed.
    pub fn ready(&self) -> bool {
        self.block_ready()
    }

    pub fn raw_fd(&self) -> libc::c_int {
        self.fd.as_raw_fd()
    }

    /// Waits up to `timeout_ms` for a block of frames.
    pub fn wait(&self, timeout_ms: i32) -> io::Result<bool> {
        if self.block_ready() {
            return Ok(true);
        }
        super::tap::poll_in(self.fd.as_raw_fd(), timeout_ms)
    }

    fn block_ptr(&self) -> *mut u8 {
        // SAFETY: `next < BLOCK_NR`, so the block lies inside the mapping.
        unsafe { self.ring.add(self.next * BLOCK_SIZE as usize) }
    }

    fn block_ready(&self) -> bool {
        // SAFETY: the status word is inside the mapped block; the kernel
        // writes it concurrently, hence the volatile read and acquire fence.
        let status =
            unsafe { std::ptr::read_volatile(self.block_ptr().add(block::STATUS).cast::<u32>()) };
        fence(Ordering::Acquire);
        status & libc::TP_STATUS_USER != 0
    }

    /// Calls `f` for every frame of the next ready block (if any) and hands
    /// the block back to the kernel; returns the number of frames.
    pub fn drain_block(&mut self, mut f: impl FnMut(RxFrame<'_>)) -> usize {
        if !self.block_ready() {
            return 0;
        }
        let base = self.block_ptr();
        let end = BLOCK_SIZE as usize;
        // SAFETY: the block belongs to userspace until we reset its status
        // (TP_STATUS_USER was seen above); every offset read below is checked
        // against the block's end before use.
        let n = unsafe {
            let rd32 = |off: usize| std::ptr::read_unaligned(base.add(off).cast::<u32>());
            let rd16 = |off: usize| std::ptr::read_unaligned(base.add(off).cast::<u16>());
            let num = rd32(block::NUM_PKTS) as usize;
            let mut off = rd32(block::FIRST_PKT) as usize;
            let mut seen = 0;
            while seen < num && off + frame::PKTTYPE < end {
                let mac = off + usize::from(rd16(off + frame::MAC));
                let snap = rd32(off + frame::SNAPLEN) as usize;
                let len = rd32(off + frame::LEN) as usize;
                let status = rd32(off + frame::STATUS);
                let pkttype = *base.add(off + frame::PKTTYPE);
                if mac >= VNET_HDR_LEN && mac + snap <= end && pkttype != libc::PACKET_OUTGOING {
                    let data = std::slice::from_raw_parts(
                        base.add(mac - VNET_HDR_LEN),
                        snap + VNET_HDR_LEN,
                    );
                    let vlan = (status & libc::TP_STATUS_VLAN_VALID != 0).then(|| {
                        let tpid = if status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                            rd16(off + frame::VLAN_TPID)
                        } else {
                            0x8100
                        };
                        (tpid, rd32(off + frame::VLAN_TCI) as u16)
                    });
                    f(RxFrame {
                        data,
                        vlan,
                        truncated: snap < len,
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

    /// Frames the kernel dropped because the ring was full, since the last call.
    pub fn take_drops(&self) -> u64 {
        let mut st = libc::tpacket_stats_v3 {
            tp_packets: 0,
            tp_drops: 0,
            tp_freeze_q_cnt: 0,
        };
        let mut len = std::mem::size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
        // SAFETY: `st` is a tpacket_stats_v3 and `len` its size.
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut st as *mut libc::tpacket_stats_v3).cast(),
                &mut len,
            )
        };
        if r < 0 {
            0
        } else {
            u64::from(st.tp_drops)
        }
    }
}

impl Drop for PacketRx {
    fn drop(&mut self) {
        // SAFETY: `ring` and `size` are the mapping made in `open`, unmapped once.
        unsafe {
            libc::munmap(self.ring.cast(), self.size);
        }
    }
}

/// Frames sent per `sendmmsg` call.
pub const TX_BATCH: usize = 64;

/// The sending side: a socket bound to one interface that receives nothing.
pub struct PacketTx {
    fd: OwnedFd,
}

impl PacketTx {
    pub fn open(ifindex: u32) -> io::Result<PacketTx> {
        // Protocol 0: this socket receives no frames.
        let fd = packet_socket(0)?;
        let on: libc::c_int = 1;
        setsockopt(
            &fd,
            libc::SOL_PACKET,
            libc::PACKET_VNET_HDR,
            &on,
            "PACKET_VNET_HDR",
        )?;
        // Straight to the driver: the frames were queued once already.
        let _ = setsockopt(
            &fd,
            libc::SOL_PACKET,
            libc::PACKET_QDISC_BYPASS,
            &on,
            "PACKET_QDISC_BYPASS",
        );
        bind(&fd, ifindex, 0)?;
        Ok(PacketTx { fd })
    }

    /// Sends frames (each with its virtio header first); returns how many
    /// could not be sent.
    pub fn send_batch(&self, frames: &[&[u8]]) -> usize {
        let mut failed = 0;
        for chunk in frames.chunks(TX_BATCH) {
            // SAFETY: iovec and mmsghdr are plain data; all-zero is valid.
            let mut iov: [libc::iovec; TX_BATCH] = unsafe { std::mem::zeroed() };
            // SAFETY: as above.
            let mut msgs: [libc::mmsghdr; TX_BATCH] = unsafe { std::mem::zeroed() };
            for (i, f) in chunk.iter().enumerate() {
                iov[i] = libc::iovec {
                    iov_base: f.as_ptr() as *mut libc::c_void,
                    iov_len: f.len(),
                };
                msgs[i].msg_hdr.msg_iov = &mut iov[i];
                msgs[i].msg_hdr.msg_iovlen = 1;
            }
            let mut sent = 0;
            while sent < chunk.len() {
                // SAFETY: `msgs[sent..chunk.len()]` are initialised above and
                // point into `iov` and `frames`, which outlive the call.
                let r = unsafe {
                    libc::sendmmsg(
                        self.fd.as_raw_fd(),
                        msgs.as_mut_ptr().add(sent),
                        (chunk.len() - sent) as libc::c_uint,
                        0,
                    )
                };
                if r > 0 {
                    sent += r as usize;
                    continue;
                }
                let e = io::Error::last_os_error();
                if r < 0 && e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // The first frame left failed (too big, link down, no buffer): skip it.
                tracing::trace!(error = %e, "sendmmsg");
                failed += 1;
                sent += 1;
            }
        }
        failed
    }
}
