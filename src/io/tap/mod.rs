//! TAP devices: `/dev/net/tun` opened with `IFF_TAP | IFF_NO_PI | IFF_VNET_HDR`,
//! one frame per `read`/`write`, each preceded by a `virtio_net_hdr`.
//!
//! The virtio header lets the kernel hand us frames whose checksum is still to
//! be filled in and TCP segments of up to 64 KiB (`TUNSETOFFLOAD`): sgplane
//! judges them as they are and passes the header on unchanged (in
//! [`FrameMeta::vnet`]), so the far side's kernel finishes the job. That is
//! one system call per 64 KiB of bulk TCP instead of one per 1500 bytes.
//!
//! Where io_uring works, frames are read and written [`BURST`] at a time in
//! one system call ([`uring`]); elsewhere, one `read`/`write` per frame. The
//! device is a [`File`] from the moment it is opened (Firecracker's `tap.rs`
//! is the model); its `ioctl`s are in [`sys`].

#[allow(unsafe_code)] // io_uring submissions point the kernel at our buffers
pub mod uring;

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;

use super::frame::{FrameMeta, FrameSink, FrameSource, Frames, VnetHdr};
use super::{clock, sys};
use crate::wire::LinkType;
pub use uring::{Burst, BURST, MAX_FRAME};

/// One TAP device, opened non-blocking.
#[derive(Debug)]
pub struct Tap {
    file: File,
    name: String,
}

impl Tap {
    /// Opens the TAP device `name`, creating it if missing (it then goes away
    /// when sgplane exits), and brings it up.
    pub fn open(name: &str) -> io::Result<Tap> {
        sys::check_ifname(name)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/net/tun")
            .map_err(|e| sys::annotate(e, "cannot open /dev/net/tun"))?;
        let flags = libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR;
        let name = sys::tun_set_iff(file.as_fd(), name, flags).map_err(|e| {
            sys::annotate(e, format_args!("cannot create or attach TAP device {name}"))
        })?;
        // The offloads we accept in frames we read: partial checksums and TCP
        // segmentation, which we pass on untouched in the virtio header.
        let offloads = libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6 | libc::TUN_F_TSO_ECN;
        if let Err(e) = sys::tun_set_offload(file.as_fd(), offloads) {
            tracing::warn!(tap = %name, error = %e, "no offloads: every frame is read one MTU at a time");
        }
        sys::set_link_up(&name)?;
        Ok(Tap { file, name })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads one frame (virtio header first) into `buf`; `None` when there is
    /// none waiting. `buf` should hold [`MAX_FRAME`] bytes.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match (&self.file).read(buf) {
            Ok(n) => Ok(Some(n)),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Writes one frame after its virtio header.
    pub fn send(&self, hdr: &VnetHdr, frame: &[u8]) -> io::Result<()> {
        (&self.file)
            .write_vectored(&[IoSlice::new(hdr.bytes()), IoSlice::new(frame)])
            .map(drop)
    }
}

impl AsFd for Tap {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// The frames a TAP device receives.
pub struct TapSource {
    tap: Arc<Tap>,
    side: u8,
    buf: Vec<u8>,
    burst: Option<Box<Burst>>,
}

impl TapSource {
    /// Reads `tap` for `side`, in bursts through io_uring if `io_uring` and
    /// the kernel allows it.
    pub fn new(tap: Arc<Tap>, side: u8, io_uring: bool) -> TapSource {
        let burst = if io_uring {
            Burst::new(tap.as_fd())
                .map(Box::new)
                .map_err(|e| {
                    tracing::warn!(tap = tap.name(), error = %e, "no io_uring: one system call per frame");
                })
                .ok()
        } else {
            None
        };
        TapSource {
            tap,
            side,
            buf: vec![0; MAX_FRAME],
            burst,
        }
    }

    /// Whether frames are read through io_uring.
    pub fn io_uring(&self) -> bool {
        self.burst.is_some()
    }
}

impl FrameSource for TapSource {
    fn recv_burst(
        &mut self,
        bursts: usize,
        each: &mut dyn FnMut(&[u8], &FrameMeta),
    ) -> io::Result<usize> {
        let meta = FrameMeta {
            side: self.side,
            link: Some(LinkType::Ethernet),
            ts: clock(),
            ..FrameMeta::default()
        };
        let mut taken = 0;
        let mut hand = |raw: &[u8]| {
            // A frame is its virtio header and at least one byte.
            if raw.len() > VnetHdr::LEN {
                let (hdr, frame) = raw.split_at(VnetHdr::LEN);
                let meta = FrameMeta {
                    wire_len: frame.len() as u32,
                    vnet: VnetHdr::read(hdr),
                    ..meta
                };
                each(frame, &meta);
                taken += 1;
            }
        };
        let Some(ring) = &mut self.burst else {
            for _ in 0..BURST * bursts {
                let Some(len) = self.tap.recv(&mut self.buf)? else {
                    break;
                };
                hand(&self.buf[..len]);
            }
            return Ok(taken);
        };
        let mut refused = None;
        for _ in 0..bursts {
            match ring.read(&mut hand) {
                Ok(got) if got < BURST => break,
                Ok(_) => {}
                // A kernel whose TAP reads through io_uring cannot be told
                // not to wait.
                Err(e) if matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EINVAL)) => {
                    refused = Some(e);
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        if let Some(e) = refused {
            tracing::warn!(tap = self.tap.name(), error = %e, "io_uring reads refused: one system call per frame from now on");
            self.burst = None;
        }
        Ok(taken)
    }

    fn poll_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.tap.as_fd())
    }
}

/// Sends frames out of a TAP device.
pub struct TapSink {
    tap: Arc<Tap>,
    burst: Option<Box<Burst>>,
}

impl TapSink {
    /// Writes to `tap`, in bursts through io_uring if `io_uring` and the
    /// kernel allows it.
    pub fn new(tap: Arc<Tap>, io_uring: bool) -> TapSink {
        let burst = io_uring
            .then(|| Burst::new(tap.as_fd()).ok().map(Box::new))
            .flatten();
        TapSink { tap, burst }
    }
}

impl FrameSink for TapSink {
    fn send_burst(&mut self, frames: &Frames, which: &[u32]) -> usize {
        match &mut self.burst {
            Some(b) => which.len() - b.write(frames, which),
            None => which
                .iter()
                .filter(|&&i| {
                    let (frame, meta) = frames.get(i as usize);
                    self.tap.send(&meta.vnet.unwrap_or_default(), frame).is_ok()
                })
                .count(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_names_are_refused_before_any_system_call() {
        for bad in ["", "a-name-that-is-too-long", "a/b", "a b"] {
            let e = Tap::open(bad).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad}: {e}");
        }
    }
}
