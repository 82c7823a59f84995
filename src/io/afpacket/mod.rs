//! AF_PACKET on an existing interface: a `TPACKET_V3` receive ring (the
//! kernel fills blocks of frames in shared memory; one `poll` per block, no
//! system call per frame, `ring.rs`) and `sendmmsg` sockets for sending (one
//! system call per batch).
//!
//! Both carry a `virtio_net_hdr` before every frame (`PACKET_VNET_HDR`), the
//! same header a TAP device uses: a frame whose checksum the sender left to
//! the hardware keeps that note across sgplane (in [`FrameMeta::vnet`]), and
//! the far side's kernel fills it in.

#[allow(unsafe_code)] // reads the ring the kernel writes in shared memory
mod ring;

use std::io::{self, IoSlice};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::frame::{FrameMeta, FrameSink, FrameSource, Frames, VnetHdr};
use super::sys::{self, Mmap, OutMsg, SendMsgs};
use crate::wire::LinkType;
use ring::{Ring, BLOCK_NR, BLOCK_SIZE, RETIRE_MS};

/// The interface index of `name` in the current network namespace.
pub fn ifindex(name: &str) -> io::Result<u32> {
    sys::if_nametoindex(name)
}

fn packet_socket(protocol: u16) -> io::Result<OwnedFd> {
    sys::socket(
        libc::AF_PACKET,
        libc::SOCK_RAW,
        libc::c_int::from(protocol.to_be()),
    )
    .map_err(|e| sys::annotate(e, "cannot open an AF_PACKET socket (needs CAP_NET_RAW)"))
}

fn set_packet_option<T: sys::Pod>(
    fd: &OwnedFd,
    name: libc::c_int,
    value: &T,
    what: &str,
) -> io::Result<()> {
    sys::set_option(fd.as_fd(), libc::SOL_PACKET, name, value).map_err(|e| sys::annotate(e, what))
}

fn bind(fd: &OwnedFd, ifindex: u32, protocol: u16) -> io::Result<()> {
    sys::bind_packet(fd.as_fd(), ifindex, protocol)
        .map_err(|e| sys::annotate(e, "cannot bind to the interface"))
}

/// The frames an interface receives: a `TPACKET_V3` ring, in promiscuous mode.
pub struct PacketSource {
    fd: OwnedFd,
    ring: Ring,
    side: u8,
}

impl PacketSource {
    /// Opens a receive ring on interface `ifindex`, for `side`.
    pub fn open(ifindex: u32, side: u8) -> io::Result<PacketSource> {
        let fd = packet_socket(libc::ETH_P_ALL as u16)?;
        let v3 = 2 as libc::c_int; // TPACKET_V3
        set_packet_option(&fd, libc::PACKET_VERSION, &v3, "PACKET_VERSION V3")?;
        let on: libc::c_int = 1;
        set_packet_option(&fd, libc::PACKET_VNET_HDR, &on, "PACKET_VNET_HDR")?;
        // Frames we send on this interface ourselves are not input.
        set_packet_option(
            &fd,
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
        set_packet_option(&fd, libc::PACKET_RX_RING, &req, "PACKET_RX_RING")?;
        let size = (BLOCK_SIZE * BLOCK_NR) as usize;
        // MAP_LOCKED can fail under RLIMIT_MEMLOCK; the ring works without it.
        let map = Mmap::shared(fd.as_fd(), size, true)
            .or_else(|_| Mmap::shared(fd.as_fd(), size, false))?;
        let mreq = libc::packet_mreq {
            mr_ifindex: ifindex as i32,
            mr_type: libc::PACKET_MR_PROMISC as u16,
            mr_alen: 0,
            mr_address: [0; 8],
        };
        set_packet_option(&fd, libc::PACKET_ADD_MEMBERSHIP, &mreq, "promiscuous mode")?;
        bind(&fd, ifindex, libc::ETH_P_ALL as u16)?;
        Ok(PacketSource {
            fd,
            ring: Ring::new(map),
            side,
        })
    }
}

impl FrameSource for PacketSource {
    fn recv_burst(
        &mut self,
        bursts: usize,
        each: &mut dyn FnMut(&[u8], &FrameMeta),
    ) -> io::Result<usize> {
        let mut taken = 0;
        for _ in 0..bursts {
            let got = self.ring.drain_block(|f| {
                let meta = FrameMeta {
                    side: self.side,
                    link: Some(LinkType::Ethernet),
                    wire_len: f.wire_len,
                    ts: f.ts,
                    vnet: f.vnet,
                    vlan: f.vlan,
                    ..FrameMeta::default()
                };
                each(f.data, &meta);
            });
            if got == 0 {
                break;
            }
            taken += got;
        }
        Ok(taken)
    }

    fn poll_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.fd.as_fd())
    }

    fn ready(&self) -> bool {
        self.ring.ready()
    }

    /// Frames the kernel dropped because the ring was full.
    fn take_drops(&mut self) -> u64 {
        sys::get_option::<libc::tpacket_stats_v3>(
            self.fd.as_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
        )
        .map_or(0, |st| u64::from(st.tp_drops))
    }
}

/// Frames sent per `sendmmsg` call.
pub const TX_BATCH: usize = 64;

/// Sends frames out of an interface: a socket bound to it that receives nothing.
pub struct PacketSink {
    fd: OwnedFd,
    msgs: SendMsgs,
    hdrs: Vec<[u8; VnetHdr::LEN]>,
    iovs: Vec<IoSlice<'static>>,
    out: Vec<OutMsg>,
}

impl PacketSink {
    pub fn open(ifindex: u32) -> io::Result<PacketSink> {
        // Protocol 0: this socket receives no frames.
        let fd = packet_socket(0)?;
        let on: libc::c_int = 1;
        set_packet_option(&fd, libc::PACKET_VNET_HDR, &on, "PACKET_VNET_HDR")?;
        // Straight to the driver: the frames were queued once already.
        let _ = set_packet_option(&fd, libc::PACKET_QDISC_BYPASS, &on, "PACKET_QDISC_BYPASS");
        bind(&fd, ifindex, 0)?;
        Ok(PacketSink {
            fd,
            msgs: SendMsgs::new(),
            hdrs: Vec::with_capacity(TX_BATCH),
            iovs: Vec::with_capacity(2 * TX_BATCH),
            out: Vec::with_capacity(TX_BATCH),
        })
    }
}

impl FrameSink for PacketSink {
    fn send_burst(&mut self, frames: &Frames, which: &[u32]) -> usize {
        let mut failed = 0;
        for chunk in which.chunks(TX_BATCH) {
            self.hdrs.clear();
            self.out.clear();
            for &i in chunk {
                let meta = frames.meta(i as usize);
                self.hdrs.push(*meta.vnet.unwrap_or_default().bytes());
            }
            let mut iovs = sys::reuse_slices(std::mem::take(&mut self.iovs));
            for (k, &i) in chunk.iter().enumerate() {
                iovs.push(IoSlice::new(&self.hdrs[k]));
                iovs.push(IoSlice::new(frames.frame(i as usize)));
                self.out.push(OutMsg {
                    iovs: 2 * k..2 * k + 2,
                    to: None,
                    control: None,
                });
            }
            let mut sent = 0;
            while sent < chunk.len() {
                match self.msgs.send(self.fd.as_fd(), &iovs, &self.out[sent..]) {
                    Ok(r) if r > 0 => sent += r,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    r => {
                        // The first frame left failed (too big, link down, no buffer): skip it.
                        tracing::trace!(result = ?r, "sendmmsg");
                        failed += 1;
                        sent += 1;
                    }
                }
            }
            self.iovs = sys::reuse_slices(iovs);
        }
        which.len() - failed
    }
}
