//! Many reads or writes of one TAP device in one system call, through
//! io_uring. TAP has no batched `read`/`write`; io_uring is how Linux batches
//! them. The device is non-blocking, so every operation completes while it
//! is submitted (a read with no frame waiting ends with `EAGAIN`), and each
//! call waits for all of its completions before it returns: no buffer is
//! ever left in the kernel's hands. That is why the submissions, `unsafe`
//! because the kernel holds pointers into our memory until they complete,
//! are sound.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use crate::io::frame::{Frames, VnetHdr};

/// Most operations per call.
pub const BURST: usize = 64;
/// Largest frame read from a TAP device: a 64 KiB segment, its Ethernet and
/// VLAN headers, and the virtio header.
pub const MAX_FRAME: usize = VnetHdr::LEN + 65_535 + 18 + 8;
/// Bytes per receive slot: a whole frame (not a power of two, so the slots'
/// first bytes do not share cache sets).
const SLOT: usize = MAX_FRAME;

/// An io_uring for one TAP device.
pub struct Burst {
    ring: io_uring::IoUring,
    /// Results by operation, for the call in progress.
    results: Vec<i32>,
    /// Receive slots for `read`, `SLOT` bytes apart (allocated on first read).
    slab: Vec<u8>,
    /// Reads to submit next time: adapts to how many frames were waiting.
    want: usize,
    /// The virtio header and the frame of each write, and their headers'
    /// bytes: `BURST` of each, never resized, so the kernel's pointers into
    /// them stay valid for the call.
    iovs: Vec<[libc::iovec; 2]>,
    hdrs: Vec<[u8; VnetHdr::LEN]>,
}

// SAFETY: the raw pointers in `iovs` are written and used within one `write`
// call, which waits for every completion; between calls they are dead
// values. The ring and the buffers belong to this value alone.
unsafe impl Send for Burst {}

impl Burst {
    /// A ring for the TAP device `fd`, or the reason there is none (io_uring
    /// disabled by `kernel.io_uring_disabled` or a seccomp filter, an old kernel).
    pub fn new(fd: BorrowedFd) -> io::Result<Burst> {
        let ring = io_uring::IoUring::builder().build(BURST as u32)?;
        ring.submitter().register_files(&[fd.as_raw_fd()])?;
        let empty = libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        };
        Ok(Burst {
            ring,
            results: vec![0; BURST],
            slab: Vec::new(),
            want: 8,
            iovs: vec![[empty; 2]; BURST],
            hdrs: vec![[0; VnetHdr::LEN]; BURST],
        })
    }

    /// Reads what is waiting, up to [`BURST`] frames (each with its virtio
    /// header first), and hands each to `f` in the order the device queued
    /// them; returns how many. A kernel that cannot read a TAP device
    /// without waiting refuses with `EOPNOTSUPP` or `EINVAL`.
    pub fn read(&mut self, mut f: impl FnMut(&[u8])) -> io::Result<usize> {
        if self.slab.is_empty() {
            self.slab = vec![0; SLOT * BURST];
        }
        let base = self.slab.as_mut_ptr();
        let mut n = 0;
        for i in 0..self.want {
            // Slot i lies inside `slab` (i < want <= BURST).
            let slot = base.wrapping_add(i * SLOT);
            let sqe = io_uring::opcode::Read::new(io_uring::types::Fixed(0), slot, SLOT as u32)
                .rw_flags(libc::RWF_NOWAIT)
                .build()
                .user_data(i as u64);
            // SAFETY: the entry points at slot i of `slab`, which outlives the
            // operation: `complete` waits for every completion.
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

    /// Writes frames `which` of `frames`, each after its virtio header (an
    /// empty one if it has none), at most [`BURST`] per system call; returns
    /// how many failed.
    pub fn write(&mut self, frames: &Frames, which: &[u32]) -> usize {
        let mut failed = 0;
        for chunk in which.chunks(BURST) {
            let mut pushed = 0;
            for (i, &k) in chunk.iter().enumerate() {
                let (frame, meta) = frames.get(k as usize);
                self.hdrs[i] = *meta.vnet.unwrap_or_default().bytes();
                self.iovs[i] = [
                    libc::iovec {
                        iov_base: self.hdrs[i].as_mut_ptr().cast(),
                        iov_len: VnetHdr::LEN,
                    },
                    libc::iovec {
                        iov_base: frame.as_ptr().cast_mut().cast(),
                        iov_len: frame.len(),
                    },
                ];
                let sqe = io_uring::opcode::Writev::new(
                    io_uring::types::Fixed(0),
                    self.iovs[i].as_ptr(),
                    2,
                )
                .build()
                .user_data(i as u64);
                // SAFETY: the entry points at `iovs[i]`, `hdrs[i]` and the
                // frame, borrowed or owned for this call; `complete` waits
                // for every completion before the call returns. The kernel
                // only reads the frame, whatever the C type says.
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
