//! The system calls the devices make, each wrapped once in a function that is
//! safe to call: sockets and their options, `poll`, the network-interface
//! `ioctl`s, `mmap`, `sendmmsg`/`recvmmsg`, `eventfd`, resource limits.
//!
//! Every descriptor is an [`OwnedFd`] from the moment it exists, so it is
//! closed exactly once. Socket addresses and control messages are plain
//! bytes, encoded and decoded here without pointer casts. What remains
//! `unsafe` outside this module is memory shared with the kernel for longer
//! than a call: the AF_PACKET ring and io_uring's buffers.

mod addr;
pub mod bpf;
mod iface;
mod msg;

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::time::Duration;

use addr::SOCKADDR_LEN;
pub use addr::{bind, connect, local_addr, SockAddr};
pub use iface::{check_ifname, if_nametoindex, set_link_up, tun_set_iff, tun_set_offload};
pub use msg::{control_messages, reuse_slices, ControlMsg, InMsg, OutMsg, RecvMsgs, SendMsgs};

/// `SOL_UDP`: the level of `UDP_GRO` and `UDP_SEGMENT`.
pub const SOL_UDP: libc::c_int = 17;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// The same error with what was being done in front of its text.
pub fn annotate(e: io::Error, what: impl std::fmt::Display) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// `socket(2)`, close-on-exec.
pub fn socket(domain: libc::c_int, ty: libc::c_int, protocol: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: socket(2) reads no memory of ours.
    let fd = cvt(unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, protocol) })?;
    // SAFETY: `fd` was just returned by socket(2); nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// An `eventfd(2)` counter, non-blocking.
pub fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: eventfd(2) reads no memory of ours.
    let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
    // SAFETY: `fd` was just returned by eventfd(2); nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Plain data that socket options are made of.
///
/// # Safety
/// Every bit pattern, all zeroes included, is a valid value of the type,
/// and it holds no pointers: the kernel may read it as bytes and write any
/// bytes into it.
pub unsafe trait Pod: Copy {}

// SAFETY: integers and structs of integers, with no invalid bit patterns.
unsafe impl Pod for libc::c_int {}
// SAFETY: as above.
unsafe impl Pod for libc::timeval {}
// SAFETY: as above.
unsafe impl Pod for libc::tpacket_req3 {}
// SAFETY: as above.
unsafe impl Pod for libc::packet_mreq {}
// SAFETY: as above.
unsafe impl Pod for libc::tpacket_stats_v3 {}
// SAFETY: as above.
unsafe impl Pod for libc::xdp_umem_reg {}
// SAFETY: as above.
unsafe impl Pod for libc::xdp_mmap_offsets {}
// SAFETY: as above.
unsafe impl Pod for libc::xdp_statistics {}
// SAFETY: as above.
unsafe impl Pod for libc::xdp_options {}

/// `setsockopt(2)` with a value of plain data.
pub fn set_option<T: Pod>(
    fd: BorrowedFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: `value` is a live `T` of `size_of::<T>()` bytes for the whole call.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    cvt(r).map(drop)
}

/// `setsockopt(2)` with an `int`.
pub fn set_int(
    fd: BorrowedFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    set_option(fd, level, name, &value)
}

/// `getsockopt(2)` of a value of plain data.
pub fn get_option<T: Pod>(fd: BorrowedFd, level: libc::c_int, name: libc::c_int) -> io::Result<T> {
    get_option_len(fd, level, name).map(|(v, _)| v)
}

/// `getsockopt(2)` of a value of plain data, and how many bytes of it the
/// kernel wrote (older kernels write shorter versions of some structs).
pub fn get_option_len<T: Pod>(
    fd: BorrowedFd,
    level: libc::c_int,
    name: libc::c_int,
) -> io::Result<(T, usize)> {
    // SAFETY: `T: Pod`, so all zeroes is a valid `T`.
    let mut value: T = unsafe { std::mem::zeroed() };
    let mut len = size_of::<T>() as libc::socklen_t;
    // SAFETY: `value` has room for `len` bytes and the kernel writes at most
    // that; any bytes it writes make a valid `T` (`Pod`).
    cvt(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&mut value as *mut T).cast(),
            &mut len,
        )
    })?;
    Ok((value, len as usize))
}

/// The timeout of a blocking send (`SO_SNDTIMEO`).
pub fn set_send_timeout(fd: BorrowedFd, timeout: Duration) -> io::Result<()> {
    let tv = libc::timeval {
        tv_sec: timeout.as_secs() as _,
        tv_usec: timeout.subsec_micros() as _,
    };
    set_option(fd, libc::SOL_SOCKET, libc::SO_SNDTIMEO, &tv)
}

/// Sets the receive buffer: as root beyond `net.core.rmem_max`, else as far as it allows.
pub fn set_recv_buffer(fd: BorrowedFd, bytes: usize) {
    let bytes = bytes.min(i32::MAX as usize) as libc::c_int;
    if set_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, bytes).is_err() {
        let _ = set_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, bytes);
    }
}

/// Sets the send buffer, like [`set_recv_buffer`].
pub fn set_send_buffer(fd: BorrowedFd, bytes: usize) {
    let bytes = bytes.min(i32::MAX as usize) as libc::c_int;
    if set_int(fd, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, bytes).is_err() {
        let _ = set_int(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, bytes);
    }
}

/// One classic BPF instruction (`struct sock_filter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BpfInsn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// Attaches a classic BPF program with `setsockopt` option `name`
/// (`SO_ATTACH_FILTER`, `SO_ATTACH_REUSEPORT_CBPF`).
pub fn attach_bpf(fd: BorrowedFd, name: libc::c_int, program: &[BpfInsn]) -> io::Result<()> {
    let len = u16::try_from(program.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "BPF program too long"))?;
    let mut filter: Vec<libc::sock_filter> = program
        .iter()
        .map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect();
    let prog = libc::sock_fprog {
        len,
        filter: filter.as_mut_ptr(),
    };
    // SAFETY: `prog` is a live sock_fprog whose `filter` points at `len`
    // instructions, alive for the call; the kernel copies them.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            name,
            (&prog as *const libc::sock_fprog).cast(),
            size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    cvt(r).map(drop)
}

/// `bind(2)` of an AF_PACKET socket to interface `ifindex`, for frames of
/// `protocol` (host byte order; 0: none).
pub fn bind_packet(fd: BorrowedFd, ifindex: u32, protocol: u16) -> io::Result<()> {
    let sll = libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as u16,
        sll_protocol: protocol.to_be(),
        sll_ifindex: ifindex as i32,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 0,
        sll_addr: [0; 8],
    };
    // SAFETY: `sll` is a sockaddr_ll and we pass its size.
    cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// `bind(2)` of an AF_XDP socket to queue `queue` of interface `ifindex`
/// (`XDP_*` bind `flags`; `shared`: the socket whose UMEM it shares).
pub fn bind_xdp(
    fd: BorrowedFd,
    ifindex: u32,
    queue: u32,
    flags: u16,
    shared: Option<BorrowedFd>,
) -> io::Result<()> {
    let sxdp = libc::sockaddr_xdp {
        sxdp_family: libc::AF_XDP as u16,
        sxdp_flags: flags,
        sxdp_ifindex: ifindex,
        sxdp_queue_id: queue,
        sxdp_shared_umem_fd: shared.map_or(0, |s| s.as_raw_fd() as u32),
    };
    // SAFETY: `sxdp` is a sockaddr_xdp and we pass its size.
    cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sxdp as *const libc::sockaddr_xdp).cast(),
            size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// An empty `sendto(2)`, not waiting: tells an AF_XDP socket to send what
/// its transmit ring holds. `Ok(false)`: the kernel could not take it all
/// now (`EAGAIN`, `EBUSY`, `ENOBUFS`); what it did not take stays on the ring.
pub fn kick(fd: BorrowedFd) -> io::Result<bool> {
    // SAFETY: no buffer and no address: the kernel reads no memory of ours.
    let r = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            std::ptr::null(),
            0,
            libc::MSG_DONTWAIT,
            std::ptr::null(),
            0,
        )
    };
    if r >= 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EBUSY) | Some(libc::ENOBUFS) | Some(libc::EINTR) => {
            Ok(false)
        }
        _ => Err(e),
    }
}

/// Waits up to `timeout` for any of `fds` to have one of `events`; what
/// each has (`revents`). A signal ends the wait early with nothing.
pub fn poll<const N: usize>(
    fds: [BorrowedFd<'_>; N],
    events: libc::c_short,
    timeout: Duration,
) -> io::Result<[libc::c_short; N]> {
    let mut p = fds.map(|fd| libc::pollfd {
        fd: fd.as_raw_fd(),
        events,
        revents: 0,
    });
    let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: `p` is N valid pollfds, alive for the call, and we say so.
    let n = unsafe { libc::poll(p.as_mut_ptr(), N as libc::nfds_t, ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok([0; N])
        } else {
            Err(e)
        };
    }
    Ok(p.map(|p| p.revents))
}

/// Waits up to `timeout` for any of the devices `fds` to be readable; which
/// are. A device in error (deleted, moved to another namespace) is an error.
pub fn poll_readable<const N: usize>(
    fds: [BorrowedFd<'_>; N],
    timeout: Duration,
) -> io::Result<[bool; N]> {
    let revents = poll(fds, libc::POLLIN, timeout)?;
    let mut ready = [false; N];
    for (r, &ev) in ready.iter_mut().zip(&revents) {
        if ev & (libc::POLLERR | libc::POLLNVAL) != 0 && ev & libc::POLLIN == 0 {
            return Err(io::Error::other(
                "device error (was it deleted or moved away?)",
            ));
        }
        *r = ev & libc::POLLIN != 0;
    }
    Ok(ready)
}

/// A shared mapping of a descriptor's memory (an AF_PACKET ring), unmapped
/// when dropped.
#[derive(Debug)]
pub struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping belongs to this value alone; what is read or written
// through it is the concern of whoever holds it, as with a `Box<[u8]>`.
unsafe impl Send for Mmap {}

impl Mmap {
    /// Maps `len` bytes of `fd` read-write and shared, populated; `locked`:
    /// also locked in memory (fails beyond `RLIMIT_MEMLOCK`).
    pub fn shared(fd: BorrowedFd, len: usize, locked: bool) -> io::Result<Mmap> {
        let mut flags = libc::MAP_SHARED | libc::MAP_POPULATE;
        if locked {
            flags |= libc::MAP_LOCKED;
        }
        Mmap::new(len, flags, fd.as_raw_fd(), 0)
    }

    /// Maps `len` bytes of `fd` from `offset`, read-write, shared and
    /// populated (an AF_XDP ring).
    pub fn shared_at(fd: BorrowedFd, len: usize, offset: u64) -> io::Result<Mmap> {
        let offset = libc::off_t::try_from(offset)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "mmap offset too large"))?;
        Mmap::new(
            len,
            libc::MAP_SHARED | libc::MAP_POPULATE,
            fd.as_raw_fd(),
            offset,
        )
    }

    /// `len` bytes of new zeroed memory, page-aligned and populated, private
    /// to this process (an AF_XDP UMEM, which the kernel pins).
    pub fn anonymous(len: usize) -> io::Result<Mmap> {
        Mmap::new(
            len,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
            -1,
            0,
        )
    }

    /// A new read-write mapping of `len` bytes with `flags`, of `fd` from
    /// `offset` (or anonymous: `fd` -1).
    fn new(
        len: usize,
        flags: libc::c_int,
        fd: libc::c_int,
        offset: libc::off_t,
    ) -> io::Result<Mmap> {
        // SAFETY: a new mapping at an address the kernel picks: no memory of
        // ours is affected; the result is checked, and unmapped in Drop.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                fd,
                offset,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p.cast()).ok_or_else(|| io::Error::other("mmap returned NULL"))?;
        Ok(Mmap { ptr, len })
    }

    /// The first byte; `len` bytes from it are mapped while `self` lives.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: `ptr` and `len` are the mapping made in `shared`, unmapped once.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// The most descriptors this process may have open (`RLIMIT_NOFILE`).
pub fn open_files_limit() -> Option<usize> {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into `l`, alive for the call.
    let r = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) };
    (r == 0).then(|| usize::try_from(l.rlim_cur).unwrap_or(usize::MAX))
}

/// Gives SIGPIPE its default action back (Rust ignores it): a command-line
/// tool whose output pipe closes ends quietly instead of failing writes.
pub fn restore_default_sigpipe() {
    // SAFETY: setting a signal's disposition to SIG_DFL installs no handler
    // and touches no memory of ours.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
