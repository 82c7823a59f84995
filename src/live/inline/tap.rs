//! TAP devices: `/dev/net/tun` opened with `IFF_TAP | IFF_NO_PI | IFF_VNET_HDR`,
//! one frame per `read`/`write`, each preceded by a `virtio_net_hdr`.
//!
//! The virtio header lets the kernel hand us frames whose checksum is still to
//! be filled in and TCP segments of up to 64 KiB (`TUNSETOFFLOAD`): sgplane
//! judges them as they are and passes the header on unchanged, so the far
//! side's kernel finishes the job. That is one system call per 64 KiB of bulk
//! TCP instead of one per 1500 bytes.
//!
//! Where io_uring works, frames are read and written [`BURST`] at a time in
//! one system call ([`Burst`]); elsewhere, one `read`/`write` per frame.
//!
//! All of this module's `unsafe` is here: `open`, `ioctl`, `read`, `write`,
//! `poll` on a file descriptor that is wrapped in an [`OwnedFd`] as soon as it
//! exists (Firecracker's `tap.rs` is the model), and the io_uring entries.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Bytes of the `virtio_net_hdr` before every frame (the kernel's default size).
pub const VNET_HDR_LEN: usize = 10;
/// Offset and flag of the header fields sgplane may have to adjust.
pub mod vnet {
    /// `flags`: the checksum at `csum_start + csum_offset` is still to be computed.
    pub const F_NEEDS_CSUM: u8 = 1;
    pub const FLAGS: usize = 0;
    pub const CSUM_START: std::ops::Range<usize> = 6..8;
}

const IFNAMSIZ: usize = 16;
const SIOCGIFFLAGS: libc::c_ulong = 0x8913;
const SIOCSIFFLAGS: libc::c_ulong = 0x8914;

/// `struct ifreq` with the union read as `ifr_flags`.
#[repr(C)]
struct IfReq {
    name: [u8; IFNAMSIZ],
    flags: libc::c_short,
    _rest: [u8; 22],
}

impl IfReq {
    fn new(name: &str) -> io::Result<IfReq> {
        if name.is_empty()
            || name.len() >= IFNAMSIZ
            || name
                .bytes()
                .any(|b| b == 0 || b == b'/' || b.is_ascii_whitespace())
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "`{name}` is not a valid interface name (1-15 characters, no '/' or spaces)"
                ),
            ));
        }
        let mut r = IfReq {
            name: [0; IFNAMSIZ],
            flags: 0,
            _rest: [0; 22],
        };
        r.name[..name.len()].copy_from_slice(name.as_bytes());
        Ok(r)
    }

    fn name(&self) -> String {
        let end = self.name.iter().position(|&b| b == 0).unwrap_or(IFNAMSIZ);
        String::from_utf8_lossy(&self.name[..end]).into_owned()
    }
}

/// One TAP device, opened non-blocking.
#[derive(Debug)]
pub struct Tap {
    fd: OwnedFd,
    name: String,
}

impl Tap {
    /// Opens the TAP device `name`, creating it if missing (it then goes away
    /// when sgplane exits), and brings it up.
    pub fn open(name: &str) -> io::Result<Tap> {
        let mut req = IfReq::new(name)?;
        let path: &CStr = c"/dev/net/tun";
        // SAFETY: `path` is a valid NUL-terminated string; the result is checked
        // and owned by an OwnedFd before anything else can happen to it.
        let raw = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_RDWR | libc::O_CLOEXEC | libc::O_NONBLOCK,
            )
        };
        if raw < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("cannot open /dev/net/tun: {e}"),
            ));
        }
        // SAFETY: `raw` is a file descriptor we just opened and own exclusively.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        req.flags = (libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR) as libc::c_short;
        // SAFETY: TUNSETIFF reads and writes a `struct ifreq`, which `req` is
        // (40 bytes, the name NUL-terminated by `IfReq::new`).
        if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF as _, &mut req as *mut IfReq) } < 0
        {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("cannot create or attach TAP device {name}: {e}"),
            ));
        }
        let name = req.name();
        // The offloads we accept in frames we read: partial checksums and TCP
        // segmentation, which we pass on untouched in the virtio header.
        let offloads = libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6 | libc::TUN_F_TSO_ECN;
        // SAFETY: TUNSETOFFLOAD takes its argument by value.
        if unsafe {
            libc::ioctl(
                fd.as_raw_fd(),
                libc::TUNSETOFFLOAD as _,
                offloads as libc::c_ulong,
            )
        } < 0
        {
            tracing::warn!(tap = %name, error = %io::Error::last_os_error(), "no offloads: every frame is read one MTU at a time");
        }
        set_up(&name)?;
        Ok(Tap { fd, name })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads one frame (virtio header first) into `buf`; `None` when there is
    /// none waiting. `buf` should hold 64 KiB plus the header.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(Some(n as usize));
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
            _ => Err(e),
        }
    }

    /// Writes one frame (virtio header first).
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: the kernel reads at most `frame.len()` bytes from `frame`.
        let n = unsafe { libc::write(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len()) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits up to `timeout_ms` for a frame; true when one is there.
    pub fn wait(&self, timeout_ms: i32) -> io::Result<bool> {
        poll_in(self.fd.as_raw_fd(), timeout_ms)
    }

    pub fn raw_fd(&self) -> libc::c_int {
        self.fd.as_raw_fd()
    }
}

/// Many reads or writes of one TAP device in one system call, through
/// io_uring. TAP has no batched `read`/`write`; io_uring is how Linux batches
/// them. The device is non-blocking, so every operation completes while it
/// is submitted (a read with no frame waiting ends with `EAGAIN`), and each
/// call waits for all of its completions before it returns: no buffer is
/// ever left in the kernel's hands.
pub struct Burst {
    ring: io_uring::IoUring,
    /// Results by operation, for the call in progress.
    results: Vec<i32>,
    /// Receive slots for `read`, `SLOT` bytes apart.
    slab: Vec<u8>,
    /// Reads to submit next time: adapts to how many frames were waiting.
    want: usize,
}

/// Most operations per call.
pub const BURST: usize = 64;
/// Largest frame read from a TAP device: a 64 KiB segment, its Ethernet and
/// VLAN headers, and the virtio header.
pub const MAX_FRAME: usize = VNET_HDR_LEN + 65_535 + 18 + 8;
/// Bytes per receive slot: a whole frame (not a power of two, so the slots'
/// first bytes do not share cache sets).
const SLOT: usize = MAX_FRAME;

impl Burst {
    /// A ring for `tap`, or the reason there is none (io_uring disabled by
    /// `kernel.io_uring_disabled` or a seccomp filter, an old kernel).
    pub fn new(tap: &Tap) -> io::Result<Burst> {
        let ring = io_uring::IoUring::builder().build(BURST as u32)?;
        ring.submitter().register_files(&[tap.raw_fd()])?;
        Ok(Burst {
            ring,
            results: vec![0; BURST],
            slab: Vec::new(),
            want: 8,
        })
    }

    /// Reads what is waiting, up to [`BURST`] frames, and hands each to `f`
    /// in the order the device queued them; returns how many.
    pub fn read(&mut self, mut f: impl FnMut(&[u8])) -> io::Result<usize> {
        if self.slab.is_empty() {
            self.slab = vec![0; SLOT * BURST];
        }
        let base = self.slab.as_mut_ptr();
        let mut n = 0;
        for i in 0..self.want {
            // SAFETY: slot i lies inside `slab` (i < want <= BURST), which outlives
            // the operation: `complete` waits for every completion.
            let sqe = io_uring::opcode::Read::new(
                io_uring::types::Fixed(0),
                unsafe { base.add(i * SLOT) },
                SLOT as u32,
            )
            .rw_flags(libc::RWF_NOWAIT)
            .build()
            .user_data(i as u64);
            // SAFETY: the entry points into memory that stays valid (above).
            if unsafe { self.ring.submission().push(&sqe) }.is_err() {
                break; // the queue is full: cannot happen, it holds BURST
            }
            n += 1;
        }
        self.complete(n);
        let mut got = 0;
        let mut error = None;
        for i in 0..n {
            match self.results[i] {
                len if len > 0 => {
                    got += 1;
                    f(&self.slab[i * SLOT..i * SLOT + len as usize]);
                }
                0 => {}
                e if e == -libc::EAGAIN || e == -libc::EINTR => {}
                e => error = error.or(Some(io::Error::from_raw_os_error(-e))),
            }
        }
        // Ask for a few more than came; fewer when the device ran dry.
        self.want = (got + 8).min(BURST);
        match error {
            Some(e) if got == 0 => Err(e),
            _ => Ok(got),
        }
    }

    /// Writes `frames` (virtio header first), at most [`BURST`] at a time;
    /// returns how many failed.
    pub fn write(&mut self, frames: &[&[u8]]) -> usize {
        let mut failed = 0;
        for chunk in frames.chunks(BURST) {
            let mut pushed = 0;
            for (i, frame) in chunk.iter().enumerate() {
                let sqe = io_uring::opcode::Write::new(
                    io_uring::types::Fixed(0),
                    frame.as_ptr(),
                    frame.len() as u32,
                )
                .build()
                .user_data(i as u64);
                // SAFETY: `frame` is borrowed for this call, and `complete`
                // waits for every completion before the call returns.
                if unsafe { self.ring.submission().push(&sqe) }.is_err() {
                    break; // the queue is full: cannot happen, it holds BURST
                }
                pushed += 1;
            }
            self.complete(pushed);
            failed += chunk.len() - pushed;
            failed += self.results[..pushed].iter().filter(|&&r| r < 0).count();
        }
        failed
    }

    /// Submits what is queued and collects `n` completions into `results`.
    fn complete(&mut self, n: usize) {
        let mut done = 0;
        let mut failures = 0;
        while done < n {
            if let Err(e) = self.ring.submit_and_wait(n - done) {
                // EINTR, EAGAIN and EBUSY pass; nothing else can happen on a
                // ring that works, and returning would leave buffers to the
                // kernel, so a ring that keeps failing ends the process.
                failures += 1;
                if failures > 1000 {
                    eprintln!("sgplane: io_uring on a TAP device keeps failing ({e}); aborting");
                    std::process::abort();
                }
                std::thread::yield_now();
            }
            for cqe in self.ring.completion() {
                if let Some(r) = self.results.get_mut(cqe.user_data() as usize) {
                    *r = cqe.result();
                }
                done += 1;
            }
        }
    }
}

/// Waits up to `timeout_ms` for `fd` to be readable.
pub(super) fn poll_in(fd: libc::c_int, timeout_ms: i32) -> io::Result<bool> {
    Ok(poll_any([fd], timeout_ms)?[0])
}

/// Waits up to `timeout_ms` for any of `fds` to be readable; which are.
pub(super) fn poll_any<const N: usize>(
    fds: [libc::c_int; N],
    timeout_ms: i32,
) -> io::Result<[bool; N]> {
    let mut p = fds.map(|fd| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    });
    // SAFETY: `p` is N valid pollfds, and we say so.
    let n = unsafe { libc::poll(p.as_mut_ptr(), N as libc::nfds_t, timeout_ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok([false; N])
        } else {
            Err(e)
        };
    }
    let mut ready = [false; N];
    for (r, p) in ready.iter_mut().zip(&p) {
        if p.revents & (libc::POLLERR | libc::POLLNVAL) != 0 && p.revents & libc::POLLIN == 0 {
            return Err(io::Error::other(
                "device error (was it deleted or moved away?)",
            ));
        }
        *r = p.revents & libc::POLLIN != 0;
    }
    Ok(ready)
}

/// Sets IFF_UP on the interface `name` in the current network namespace.
fn set_up(name: &str) -> io::Result<()> {
    // SAFETY: plain socket(2); the result is checked and owned at once.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a socket we just created and own exclusively.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut req = IfReq::new(name)?;
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write a `struct ifreq`.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), SIOCGIFFLAGS as _, &mut req as *mut IfReq) < 0 {
            return Err(io::Error::last_os_error());
        }
        req.flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), SIOCSIFFLAGS as _, &mut req as *mut IfReq) < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("cannot bring {name} up: {e}"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifreq_is_the_kernels_size() {
        assert_eq!(std::mem::size_of::<IfReq>(), 40);
    }

    #[test]
    fn bad_names_are_refused_before_any_system_call() {
        for bad in ["", "a-name-that-is-too-long", "a/b", "a b"] {
            let e = Tap::open(bad).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad}: {e}");
        }
    }
}
