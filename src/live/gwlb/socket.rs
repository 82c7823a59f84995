//! The appliance's sockets, and the only unsafe code of `sgplane gwlb`:
//!
//! - [`UdpSocket`]: one per worker, all in one `SO_REUSEPORT` group on the
//!   listen address, read in batches with `recvmmsg` ([`RecvBatch`]), each
//!   datagram with the address it was sent to (`IP_PKTINFO` /
//!   `IPV6_RECVPKTINFO`) and, with `UDP_GRO`, coalesced runs of datagrams
//!   from one sender in one read. A classic BPF program attached to the group
//!   ([`UdpSocket::attach_steering`]) picks the socket for each datagram.
//! - [`ReturnSocket`]: a UDP socket per (address a datagram was sent to,
//!   the load balancer's source port, node) that sends the returns, bound
//!   and connected to exactly the ends a return has, with `SO_REUSEADDR` so
//!   that each worker may have its own. [`GsoBatch`] writes runs of
//!   equal-size returns as one UDP GSO message each, several messages per
//!   `sendmmsg`.
//! - [`RawSocket`]: `IPPROTO_RAW`, the IP header ours, written with
//!   `sendmmsg` ([`SendBatch`]): the returns that no UDP socket can send
//!   (the port is taken on this host...), or all of them when so tuned.
//! - [`Waker`]: an eventfd that wakes a worker parked in [`wait`].
//!
//! Every descriptor is wrapped in an [`OwnedFd`] the moment it exists, so it
//! is closed exactly once. The batches hold raw pointers for the kernel,
//! rebuilt on every call: a batch can move to another thread but not be
//! shared (it is `Send`, not `Sync`).

use std::io;
use std::mem::size_of;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

use super::steer::Insn;

/// `SOL_UDP`: the level of `UDP_GRO` and `UDP_SEGMENT`.
const SOL_UDP: libc::c_int = 17;

/// Room for the control messages one datagram can carry: `IPV6_PKTINFO`
/// (20 bytes of data) and `UDP_GRO` (an int), each with its header.
const CMSG_ROOM: usize = 128;

/// An IPv4 or IPv6 socket address as the kernel reads and writes it.
#[repr(C)]
#[derive(Clone, Copy)]
union SockAddr {
    v4: libc::sockaddr_in,
    v6: libc::sockaddr_in6,
}

impl SockAddr {
    fn empty() -> SockAddr {
        SockAddr {
            v6: sockaddr_in6(Ipv6Addr::UNSPECIFIED, 0),
        }
    }

    fn new(addr: SocketAddr) -> (SockAddr, libc::socklen_t) {
        match addr {
            SocketAddr::V4(a) => (
                SockAddr {
                    v4: sockaddr_in(*a.ip(), a.port()),
                },
                size_of::<libc::sockaddr_in>() as _,
            ),
            SocketAddr::V6(a) => (
                SockAddr {
                    v6: sockaddr_in6(*a.ip(), a.port()),
                },
                size_of::<libc::sockaddr_in6>() as _,
            ),
        }
    }

    /// The address the kernel wrote, if it is IPv4 or IPv6.
    fn get(&self, len: libc::socklen_t) -> Option<SocketAddr> {
        // SAFETY: every variant starts with the address family, and the whole
        // union was initialised (by `empty` or `new`) before the kernel wrote into it.
        let family = libc::c_int::from(unsafe { self.v4.sin_family });
        match family {
            libc::AF_INET if len as usize >= size_of::<libc::sockaddr_in>() => {
                // SAFETY: the family says the kernel wrote a sockaddr_in.
                let a = unsafe { self.v4 };
                let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
                Some(SocketAddr::V4(SocketAddrV4::new(
                    ip,
                    u16::from_be(a.sin_port),
                )))
            }
            libc::AF_INET6 if len as usize >= size_of::<libc::sockaddr_in6>() => {
                // SAFETY: the family says the kernel wrote a sockaddr_in6.
                let a = unsafe { self.v6 };
                let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
                Some(SocketAddr::V6(SocketAddrV6::new(
                    ip,
                    u16::from_be(a.sin6_port),
                    0,
                    a.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }
}

fn sockaddr_in(ip: Ipv4Addr, port: u16) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    }
}

fn sockaddr_in6(ip: Ipv6Addr, port: u16) -> libc::sockaddr_in6 {
    libc::sockaddr_in6 {
        sin6_family: libc::AF_INET6 as libc::sa_family_t,
        sin6_port: port.to_be(),
        sin6_flowinfo: 0,
        sin6_addr: libc::in6_addr {
            s6_addr: ip.octets(),
        },
        sin6_scope_id: 0,
    }
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn new_socket(domain: libc::c_int, ty: libc::c_int, proto: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: socket(2) reads no memory of ours.
    let fd = cvt(unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, proto) })?;
    // SAFETY: `fd` was just returned by socket(2); nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn set_option<T>(
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

fn set_int(
    fd: BorrowedFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    set_option(fd, level, name, &value)
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

/// Makes every send on a UDP socket a train of `segment`-byte datagrams (UDP
/// GSO): one `send` of up to 64 KiB becomes that many datagrams. 0 turns it off.
pub fn set_udp_segment(fd: BorrowedFd, segment: u16) -> io::Result<()> {
    set_int(fd, SOL_UDP, libc::UDP_SEGMENT, libc::c_int::from(segment))
}

/// Lets a UDP socket receive runs of datagrams from one sender coalesced
/// (UDP GRO); [`RecvBatch`] reports the segment size.
pub fn set_udp_gro(fd: BorrowedFd, on: bool) -> io::Result<()> {
    set_int(fd, SOL_UDP, libc::UDP_GRO, libc::c_int::from(on))
}

/// A UDP socket of the appliance's `SO_REUSEPORT` group.
#[derive(Debug)]
pub struct UdpSocket {
    fd: OwnedFd,
    gro: bool,
}

impl UdpSocket {
    /// Binds a non-blocking socket that shares `addr` with the other sockets
    /// of this user that set `SO_REUSEPORT`, reports each datagram's local
    /// address, and (if `gro` and the kernel can) receives coalesced runs.
    /// An IPv6 address listens for IPv6 only.
    pub fn bind(addr: SocketAddr, gro: bool, recv_buffer: usize) -> io::Result<UdpSocket> {
        let domain = if addr.is_ipv4() {
            libc::AF_INET
        } else {
            libc::AF_INET6
        };
        let fd = new_socket(domain, libc::SOCK_DGRAM | libc::SOCK_NONBLOCK, 0)?;
        let b = fd.as_fd();
        set_int(b, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
        if addr.is_ipv4() {
            set_int(b, libc::IPPROTO_IP, libc::IP_PKTINFO, 1)?;
        } else {
            set_int(b, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1)?;
            set_int(b, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)?;
        }
        let gro = gro && set_udp_gro(b, true).is_ok();
        set_recv_buffer(b, recv_buffer);
        let (sa, len) = SockAddr::new(addr);
        // SAFETY: `sa` is a sockaddr of `len` bytes, alive for the call.
        cvt(unsafe { libc::bind(fd.as_raw_fd(), (&sa as *const SockAddr).cast(), len) })?;
        Ok(UdpSocket { fd, gro })
    }

    /// Whether coalesced datagrams may arrive.
    pub fn gro(&self) -> bool {
        self.gro
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        let mut sa = SockAddr::empty();
        let mut len = size_of::<SockAddr>() as libc::socklen_t;
        // SAFETY: `sa` has room for `len` bytes and the kernel writes at most that.
        cvt(unsafe {
            libc::getsockname(
                self.fd.as_raw_fd(),
                (&mut sa as *mut SockAddr).cast(),
                &mut len,
            )
        })?;
        sa.get(len)
            .ok_or_else(|| io::Error::other("not an IP socket"))
    }

    /// Attaches a classic BPF program to the socket's `SO_REUSEPORT` group:
    /// it returns, for each datagram, the index of the socket (in binding
    /// order) that receives it; an index past the group falls back to the
    /// kernel's hash. The program sees the UDP payload.
    pub fn attach_steering(&self, program: &[Insn]) -> io::Result<()> {
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
            len: filter.len() as u16,
            filter: filter.as_mut_ptr(),
        };
        set_option(
            self.fd.as_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_REUSEPORT_CBPF,
            &prog,
        )
    }
}

impl AsFd for UdpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl From<UdpSocket> for OwnedFd {
    fn from(s: UdpSocket) -> OwnedFd {
        s.fd
    }
}

/// One datagram (or run of coalesced datagrams) of a [`RecvBatch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram {
    pub len: usize,
    /// With UDP GRO: the length of each coalesced datagram (the last may be
    /// shorter); 0 when this is a single datagram.
    pub segment: usize,
    /// The sender.
    pub peer: Option<SocketAddr>,
    /// The address it was sent to.
    pub local: Option<IpAddr>,
    /// Longer than the buffer: the rest was lost.
    pub truncated: bool,
}

/// Buffers for receiving up to `slots` datagrams with one `recvmmsg`.
pub struct RecvBatch {
    slot_len: usize,
    buf: Vec<u8>,
    names: Vec<SockAddr>,
    cmsgs: Vec<[u64; CMSG_ROOM / 8]>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    got: Vec<Datagram>,
}

// SAFETY: the raw pointers in `iovs` and `hdrs` point into this batch's own
// heap buffers, which are never resized, so they do not move when the batch
// moves; nothing else reads them. Moving the batch to another thread is
// moving plain buffers.
unsafe impl Send for RecvBatch {}

impl RecvBatch {
    /// `slot_len` bytes per datagram: 65535 to take any datagram, or a
    /// coalesced run, whole.
    pub fn new(slots: usize, slot_len: usize) -> RecvBatch {
        let slots = slots.clamp(1, 1024);
        let iov = libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        };
        // SAFETY: mmsghdr is plain data (integers and pointers) for which all
        // zeroes is a valid value; the pointers are set below.
        let hdr: libc::mmsghdr = unsafe { std::mem::zeroed() };
        let mut b = RecvBatch {
            slot_len,
            buf: vec![0; slots * slot_len],
            names: vec![SockAddr::empty(); slots],
            cmsgs: vec![[0; CMSG_ROOM / 8]; slots],
            iovs: vec![iov; slots],
            hdrs: vec![hdr; slots],
            got: Vec::with_capacity(slots),
        };
        // The vectors are never resized from here on: these pointers stay valid.
        let base = b.buf.as_mut_ptr();
        for i in 0..slots {
            // SAFETY: slot `i` lies inside `buf` (`slots * slot_len` bytes).
            b.iovs[i] = libc::iovec {
                iov_base: unsafe { base.add(i * slot_len) }.cast(),
                iov_len: slot_len,
            };
            let h = &mut b.hdrs[i].msg_hdr;
            h.msg_name = (&mut b.names[i] as *mut SockAddr).cast();
            h.msg_iov = &mut b.iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = b.cmsgs[i].as_mut_ptr().cast();
            b.reset(i);
        }
        b
    }

    /// Restores the lengths and flags the kernel overwrites in header `i`.
    fn reset(&mut self, i: usize) {
        let h = &mut self.hdrs[i];
        h.msg_len = 0;
        h.msg_hdr.msg_namelen = size_of::<SockAddr>() as libc::socklen_t;
        h.msg_hdr.msg_controllen = CMSG_ROOM as _;
        h.msg_hdr.msg_flags = 0;
    }

    /// Reads what is waiting, up to the batch size, without blocking;
    /// returns how many datagrams arrived (0 if none was waiting).
    pub fn recv(&mut self, fd: BorrowedFd) -> io::Result<usize> {
        // Only the headers of the last call were written to.
        for i in 0..self.got.len() {
            self.reset(i);
        }
        self.got.clear();
        // SAFETY: every header points into buffers of this batch that outlive
        // the call and whose lengths the headers give (set in `new`, lengths
        // restored above); none is moved or resized while the kernel writes.
        let r = unsafe {
            libc::recvmmsg(
                fd.as_raw_fd(),
                self.hdrs.as_mut_ptr(),
                self.hdrs.len() as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            // Nothing waiting, a signal, a pending ICMP error, or memory
            // pressure: none of them is the socket's end.
            return match e.raw_os_error() {
                Some(
                    libc::EAGAIN | libc::EINTR | libc::ECONNREFUSED | libc::ENOBUFS | libc::ENOMEM,
                ) => Ok(0),
                _ => Err(e),
            };
        }
        for i in 0..r as usize {
            let h = &self.hdrs[i];
            let (local, segment) = control_messages(&h.msg_hdr);
            self.got.push(Datagram {
                len: (h.msg_len as usize).min(self.slot_len),
                segment,
                peer: self.names[i].get(h.msg_hdr.msg_namelen),
                local,
                truncated: h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
            });
        }
        Ok(self.got.len())
    }

    /// Datagrams of the last [`recv`](Self::recv).
    pub fn len(&self) -> usize {
        self.got.len()
    }

    pub fn is_empty(&self) -> bool {
        self.got.is_empty()
    }

    /// Datagram `i` of the last `recv` and its bytes.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn get(&self, i: usize) -> (&Datagram, &[u8]) {
        let d = &self.got[i];
        let start = i * self.slot_len;
        (d, &self.buf[start..start + d.len])
    }
}

/// The local address (`IP_PKTINFO` / `IPV6_PKTINFO`) and the GRO segment
/// size of a received message.
fn control_messages(msg: &libc::msghdr) -> (Option<IpAddr>, usize) {
    let (mut local, mut segment) = (None, 0);
    // SAFETY: the kernel wrote `msg_controllen` bytes of well-formed control
    // messages into the buffer `msg_control` points to; the CMSG_* macros
    // stay inside it, and the data is read unaligned with its own type.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            let data = libc::CMSG_DATA(c);
            match ((*c).cmsg_level, (*c).cmsg_type) {
                (libc::IPPROTO_IP, libc::IP_PKTINFO) => {
                    let info = std::ptr::read_unaligned(data.cast::<libc::in_pktinfo>());
                    local = Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                        info.ipi_addr.s_addr,
                    ))));
                }
                (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
                    let info = std::ptr::read_unaligned(data.cast::<libc::in6_pktinfo>());
                    local = Some(IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr)));
                }
                (SOL_UDP, libc::UDP_GRO) => {
                    segment = std::ptr::read_unaligned(data.cast::<libc::c_int>()).max(0) as usize;
                }
                _ => {}
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    (local, segment)
}

/// A raw socket that sends whole IP packets (header included).
#[derive(Debug)]
pub struct RawSocket {
    fd: OwnedFd,
    v6: bool,
}

impl RawSocket {
    /// Needs `CAP_NET_RAW`. A send blocks at most `timeout` when the socket
    /// buffer is full.
    pub fn open(v6: bool, send_buffer: usize, timeout: Duration) -> io::Result<RawSocket> {
        let domain = if v6 { libc::AF_INET6 } else { libc::AF_INET };
        // IPPROTO_RAW implies that the header is ours (IP_HDRINCL) for both families.
        let fd = new_socket(domain, libc::SOCK_RAW, libc::IPPROTO_RAW)?;
        if !v6 {
            set_int(fd.as_fd(), libc::IPPROTO_IP, libc::IP_HDRINCL, 1)?;
        }
        set_send_buffer(fd.as_fd(), send_buffer);
        let tv = libc::timeval {
            tv_sec: timeout.as_secs() as _,
            tv_usec: timeout.subsec_micros() as _,
        };
        set_option(fd.as_fd(), libc::SOL_SOCKET, libc::SO_SNDTIMEO, &tv)?;
        Ok(RawSocket { fd, v6 })
    }

    pub fn is_v6(&self) -> bool {
        self.v6
    }
}

/// The largest UDP payload of one send, segmented or not: an IPv4 packet
/// of 65535 bytes less its IP and UDP headers.
pub const MAX_SEND_PAYLOAD: usize = 65_535 - 20 - 8;

/// The most datagrams the kernel cuts one UDP GSO send into
/// (`UDP_MAX_SEGMENTS`, 64 before Linux 6.9).
pub const MAX_SEGMENTS: usize = 64;

/// A UDP socket that sends the returns of one load balancer source port:
/// bound to (the address the datagrams arrived on, the port the load
/// balancer sent them from), connected to (the load balancer node, the
/// port they arrived on). The kernel writes the IP and UDP headers, so
/// what goes down is the UDP payload (GENEVE and the inner packet), and a
/// run of equal-size payloads goes down as one UDP GSO send
/// ([`GsoBatch`]).
///
/// Several sockets may hold one address and port (`SO_REUSEADDR`: one per
/// worker), as may any other socket that allows it. Nothing is ever read
/// from these sockets: a filter drops whatever arrives before it is queued.
#[derive(Debug)]
pub struct ReturnSocket {
    fd: OwnedFd,
}

impl ReturnSocket {
    /// Fails where the address cannot be bound (the port is taken by a
    /// socket without `SO_REUSEADDR`, the address is not local...). A send
    /// blocks at most `timeout` when the socket buffer is full. The
    /// datagrams go with DF set and are never fragmented, as through the
    /// raw socket: one longer than the device's MTU is refused.
    pub fn open(
        local: SocketAddr,
        node: SocketAddr,
        send_buffer: usize,
        timeout: Duration,
    ) -> io::Result<ReturnSocket> {
        if local.is_ipv4() != node.is_ipv4() {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        let domain = if local.is_ipv4() {
            libc::AF_INET
        } else {
            libc::AF_INET6
        };
        let fd = new_socket(domain, libc::SOCK_DGRAM, 0)?;
        let b = fd.as_fd();
        set_int(b, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
        if local.is_ipv4() {
            set_int(
                b,
                libc::IPPROTO_IP,
                libc::IP_MTU_DISCOVER,
                libc::IP_PMTUDISC_PROBE,
            )?;
        } else {
            set_int(b, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1)?;
            set_int(
                b,
                libc::IPPROTO_IPV6,
                libc::IPV6_MTU_DISCOVER,
                libc::IPV6_PMTUDISC_PROBE,
            )?;
        }
        // Before the bind, so that nothing is ever queued: `ret #0` drops
        // every datagram.
        let mut drop_all = [libc::sock_filter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: 0,
        }];
        let prog = libc::sock_fprog {
            len: 1,
            filter: drop_all.as_mut_ptr(),
        };
        set_option(b, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &prog)?;
        set_send_buffer(b, send_buffer);
        let tv = libc::timeval {
            tv_sec: timeout.as_secs() as _,
            tv_usec: timeout.subsec_micros() as _,
        };
        set_option(b, libc::SOL_SOCKET, libc::SO_SNDTIMEO, &tv)?;
        let (sa, len) = SockAddr::new(local);
        // SAFETY: `sa` is a sockaddr of `len` bytes, alive for the call.
        cvt(unsafe { libc::bind(fd.as_raw_fd(), (&sa as *const SockAddr).cast(), len) })?;
        let (sa, len) = SockAddr::new(node);
        // SAFETY: as above.
        cvt(unsafe { libc::connect(fd.as_raw_fd(), (&sa as *const SockAddr).cast(), len) })?;
        Ok(ReturnSocket { fd })
    }
}

impl AsFd for ReturnSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The one control message of a UDP GSO send, laid out as `CMSG_SPACE(2)`.
#[repr(C)]
#[derive(Clone, Copy)]
struct SegmentCmsg {
    hdr: libc::cmsghdr,
    segment: u16,
    _pad: [u8; 6],
}

/// What became of one message of a [`GsoBatch::send`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    Sent,
    /// Not sent for a passing reason (a full buffer, no memory): counted
    /// as lost, like a raw send that fails.
    Lost,
    /// Not sent, nor the messages after it on this socket: the kernel
    /// refused it (no UDP GSO on this route, MTU...), with this errno.
    /// The caller sends them another way.
    Refused(i32),
}

/// Buffers for sending messages on one connected UDP socket with
/// `sendmmsg`, each a run of datagrams that the kernel cuts apart (UDP
/// GSO, `UDP_SEGMENT`): all of a run but the last must have the length of
/// the first, the last may be shorter.
#[derive(Default)]
pub struct GsoBatch {
    iovs: Vec<libc::iovec>,
    /// Each message's first iovec and how many.
    starts: Vec<(usize, usize)>,
    cmsgs: Vec<SegmentCmsg>,
    hdrs: Vec<libc::mmsghdr>,
    outcome: Vec<Sent>,
}

// SAFETY: as for `SendBatch`: the raw pointers are written and used within
// one `send` call and are dead values between calls.
unsafe impl Send for GsoBatch {}

impl GsoBatch {
    pub fn new() -> GsoBatch {
        GsoBatch::default()
    }

    /// Sends `datagrams` as messages: message `k` is the next `runs[k]`
    /// datagrams (at most [`MAX_SEGMENTS`], [`MAX_SEND_PAYLOAD`] bytes in
    /// all). Returns what became of each message.
    pub fn send<'a>(
        &mut self,
        fd: BorrowedFd,
        datagrams: impl IntoIterator<Item = &'a [u8]>,
        runs: &[usize],
    ) -> &[Sent] {
        self.iovs.clear();
        self.starts.clear();
        self.cmsgs.clear();
        self.hdrs.clear();
        self.outcome.clear();
        let mut datagrams = datagrams.into_iter();
        for &n in runs {
            let start = self.iovs.len();
            for d in datagrams.by_ref().take(n) {
                self.iovs.push(libc::iovec {
                    iov_base: d.as_ptr().cast_mut().cast(),
                    iov_len: d.len(),
                });
            }
            let got = self.iovs.len() - start;
            // SAFETY: cmsghdr is plain data for which all zeroes is valid.
            let mut c: SegmentCmsg = unsafe { std::mem::zeroed() };
            c.hdr.cmsg_len = (size_of::<libc::cmsghdr>() + size_of::<u16>()) as _;
            c.hdr.cmsg_level = SOL_UDP;
            c.hdr.cmsg_type = libc::UDP_SEGMENT;
            c.segment = self.iovs.get(start).map_or(0, |v| v.iov_len as u16);
            self.cmsgs.push(c);
            self.starts.push((start, got));
        }
        // Headers last, once the vectors they point into no longer move.
        for (k, &(start, n)) in self.starts.iter().enumerate() {
            // SAFETY: mmsghdr is plain data for which all zeroes is valid.
            let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
            h.msg_hdr.msg_iov = self.iovs[start..].as_mut_ptr();
            h.msg_hdr.msg_iovlen = n as _;
            // A single datagram needs no segmenting.
            if n > 1 {
                h.msg_hdr.msg_control = (&mut self.cmsgs[k] as *mut SegmentCmsg).cast();
                h.msg_hdr.msg_controllen = size_of::<SegmentCmsg>() as _;
            }
            self.hdrs.push(h);
        }
        let total = self.hdrs.len();
        // The message sent again after an ECONNREFUSED, to do so once.
        let mut retried = None;
        while self.outcome.len() < total {
            let done = self.outcome.len();
            // SAFETY: headers `done..` point at iovecs and control messages
            // of this batch and at the caller's datagrams, all borrowed for
            // the call and no longer moving.
            let r = unsafe {
                libc::sendmmsg(
                    fd.as_raw_fd(),
                    self.hdrs.as_mut_ptr().add(done),
                    (total - done) as libc::c_uint,
                    0,
                )
            };
            if r > 0 {
                self.outcome.extend((0..r).map(|_| Sent::Sent));
                continue;
            }
            if r == 0 {
                self.outcome.push(Sent::Lost);
                continue;
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error().unwrap_or(0) {
                libc::EINTR => {}
                // An ICMP error about an earlier send, reported (and
                // cleared) instead of sending: this one was not sent.
                libc::ECONNREFUSED if retried != Some(done) => retried = Some(done),
                libc::EAGAIN | libc::ENOBUFS | libc::ENOMEM | libc::ECONNREFUSED => {
                    tracing::trace!(error = %e, "return not sent");
                    self.outcome.push(Sent::Lost);
                }
                errno => {
                    tracing::debug!(error = %e, "returns refused by a UDP socket");
                    self.outcome
                        .extend((done..total).map(|_| Sent::Refused(errno)));
                }
            }
        }
        &self.outcome
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

/// What a [`SendBatch::send`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SendReport {
    pub sent: usize,
    pub sent_bytes: usize,
    pub failed: usize,
}

/// Buffers for sending packets with `sendmmsg`.
#[derive(Default)]
pub struct SendBatch {
    iovs: Vec<libc::iovec>,
    names: Vec<SockAddr>,
    lens: Vec<libc::socklen_t>,
    hdrs: Vec<libc::mmsghdr>,
}

// SAFETY: the raw pointers in the vectors are written and used within one
// `send` call and never read after it returns; between calls they are dead
// values, so the batch may move to another thread.
unsafe impl Send for SendBatch {}

impl SendBatch {
    pub fn new() -> SendBatch {
        SendBatch::default()
    }

    /// Sends each packet (a whole IP packet, for a raw socket) to its
    /// address; a packet the kernel refuses is skipped and counted as failed.
    pub fn send<'a>(
        &mut self,
        fd: BorrowedFd,
        packets: impl IntoIterator<Item = (&'a [u8], SocketAddr)>,
    ) -> SendReport {
        self.iovs.clear();
        self.names.clear();
        self.lens.clear();
        self.hdrs.clear();
        for (p, to) in packets {
            self.iovs.push(libc::iovec {
                iov_base: p.as_ptr().cast_mut().cast(),
                iov_len: p.len(),
            });
            let (sa, len) = SockAddr::new(to);
            self.names.push(sa);
            self.lens.push(len);
        }
        // Headers last, once the vectors they point into no longer move.
        for i in 0..self.iovs.len() {
            // SAFETY: mmsghdr is plain data for which all zeroes is valid.
            let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
            h.msg_hdr.msg_name = (&mut self.names[i] as *mut SockAddr).cast();
            h.msg_hdr.msg_namelen = self.lens[i];
            h.msg_hdr.msg_iov = &mut self.iovs[i];
            h.msg_hdr.msg_iovlen = 1;
            self.hdrs.push(h);
        }
        let mut report = SendReport::default();
        let mut done = 0;
        while done < self.hdrs.len() {
            let n = (self.hdrs.len() - done).min(1024);
            // SAFETY: headers `done..done + n` point at addresses and iovecs of
            // this batch and at the caller's packets, all borrowed for the call.
            let r = unsafe {
                libc::sendmmsg(
                    fd.as_raw_fd(),
                    self.hdrs.as_mut_ptr().add(done),
                    n as libc::c_uint,
                    0,
                )
            };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                tracing::trace!(error = %e, "return not sent");
                report.failed += 1;
                done += 1;
                continue;
            }
            for h in &self.hdrs[done..done + r as usize] {
                report.sent_bytes += h.msg_len as usize;
            }
            report.sent += r as usize;
            done += r as usize;
        }
        report
    }
}

impl AsFd for RawSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Wakes a worker parked in [`wait`].
#[derive(Debug)]
pub struct Waker {
    fd: OwnedFd,
}

impl Waker {
    pub fn new() -> io::Result<Waker> {
        // SAFETY: eventfd(2) reads no memory of ours.
        let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
        // SAFETY: `fd` was just returned by eventfd(2); nothing else owns it.
        Ok(Waker {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    pub fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes the 8 bytes of `one`, alive for the call. A full
        // counter (EAGAIN) means a wake-up is pending anyway.
        let _ = unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    fn drain(&self) {
        let mut n: u64 = 0;
        // SAFETY: reads at most 8 bytes into `n`, alive for the call.
        let _ = unsafe { libc::read(self.fd.as_raw_fd(), (&mut n as *mut u64).cast(), 8) };
    }
}

/// Blocks until `socket` is readable, `waker` is woken, or `timeout` passes.
pub fn wait(socket: BorrowedFd, waker: &Waker, timeout: Duration) -> io::Result<()> {
    let mut fds = [
        libc::pollfd {
            fd: socket.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: waker.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: `fds` is an array of two pollfd, alive for the call.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    if fds[1].revents != 0 {
        waker.drain();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_reads_datagrams_with_their_addresses() {
        let s = UdpSocket::bind("127.0.0.1:0".parse().unwrap(), false, 1 << 20).unwrap();
        let addr = s.local_addr().unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut rx = RecvBatch::new(8, 2048);
        assert_eq!(rx.recv(s.as_fd()).unwrap(), 0);
        for i in 0..3u8 {
            tx.send_to(&[i; 5], addr).unwrap();
        }
        let mut got = Vec::new();
        for _ in 0..100 {
            rx.recv(s.as_fd()).unwrap();
            for i in 0..rx.len() {
                let (d, bytes) = rx.get(i);
                assert_eq!(d.peer, Some(tx.local_addr().unwrap()));
                assert_eq!(d.local, Some(addr.ip()));
                assert_eq!((d.segment, d.truncated), (0, false));
                got.push(bytes.to_vec());
            }
            if got.len() == 3 {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(got, vec![vec![0; 5], vec![1; 5], vec![2; 5]]);
    }

    #[test]
    fn return_sockets_send_runs_cut_apart_from_the_ends_they_were_opened_with() {
        let node = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        node.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let to = node.local_addr().unwrap();
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let open = || ReturnSocket::open(port, to, 1 << 20, Duration::from_millis(100));
        // One per worker for the same ends.
        let (s, _twin) = (open().unwrap(), open().unwrap());
        let datagrams: Vec<Vec<u8>> = vec![vec![1; 50], vec![2; 50], vec![3; 20], vec![4; 70]];
        let mut gso = GsoBatch::new();
        let sent = gso.send(s.as_fd(), datagrams.iter().map(|d| &d[..]), &[3, 1]);
        assert_eq!(sent, &[Sent::Sent, Sent::Sent]);
        let mut buf = [0u8; 2048];
        for d in &datagrams {
            let (n, from) = node.recv_from(&mut buf).unwrap();
            assert_eq!((from, &buf[..n]), (port, &d[..]));
        }
    }

    #[test]
    fn returns_to_a_closed_port_are_sent_all_the_same() {
        // Each send draws an ICMP port unreachable, which the next reports.
        let closed = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let s = ReturnSocket::open(port, closed, 1 << 20, Duration::from_millis(100)).unwrap();
        let d = [7u8; 30];
        let mut gso = GsoBatch::new();
        for _ in 0..3 {
            let sent = gso.send(s.as_fd(), [&d[..]; 6], &[1, 2, 1, 2]);
            assert_eq!(sent, &[Sent::Sent; 4]);
        }
    }

    #[test]
    fn a_run_the_kernel_refuses_is_reported_with_what_follows_it() {
        let node = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let s = ReturnSocket::open(
            port,
            node.local_addr().unwrap(),
            1 << 20,
            Duration::from_millis(100),
        )
        .unwrap();
        let (small, big) = (vec![0u8; 10], vec![0u8; 40_000]);
        let mut gso = GsoBatch::new();
        // 80,000 bytes are more than one send may carry.
        let sent = gso.send(s.as_fd(), [&small[..], &big, &big, &small], &[1, 2, 1]);
        assert_eq!(sent[0], Sent::Sent);
        assert!(matches!(sent[1], Sent::Refused(_)), "{sent:?}");
        assert_eq!(sent[1], sent[2]);
    }

    #[test]
    fn a_waker_ends_a_wait() {
        let s = UdpSocket::bind("127.0.0.1:0".parse().unwrap(), false, 1 << 16).unwrap();
        let w = Waker::new().unwrap();
        w.wake();
        let t = std::time::Instant::now();
        wait(s.as_fd(), &w, Duration::from_secs(5)).unwrap();
        assert!(t.elapsed() < Duration::from_secs(1));
        let t = std::time::Instant::now();
        wait(s.as_fd(), &w, Duration::from_millis(20)).unwrap();
        assert!(t.elapsed() >= Duration::from_millis(15));
    }

    #[test]
    fn the_kernel_delivers_each_datagram_to_its_owner() {
        use crate::wire::build;
        let group: Vec<UdpSocket> = {
            let first = UdpSocket::bind("127.0.0.1:0".parse().unwrap(), false, 1 << 20).unwrap();
            let addr = first.local_addr().unwrap();
            let mut g = vec![first];
            for _ in 1..3 {
                g.push(UdpSocket::bind(addr, false, 1 << 20).unwrap());
            }
            g
        };
        group[0]
            .attach_steering(&super::super::steer::program(3))
            .unwrap();
        let addr = group[0].local_addr().unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        let mut sent = Vec::new();
        for i in 0..30u8 {
            let inner = build::udp(ip(&format!("10.0.0.{i}")), ip("10.1.0.1"), 5000, 53, b"q");
            let outer = build::geneve_wrap(
                ip("127.0.0.1"),
                addr.ip(),
                1,
                &inner,
                &build::aws_options(1, 2, 3),
            );
            let payload = outer[14 + 28..].to_vec();
            tx.send_to(&payload, addr).unwrap();
            sent.push(payload);
        }
        let mut got = 0;
        let mut rx = RecvBatch::new(64, 2048);
        for _ in 0..100 {
            for (i, s) in group.iter().enumerate() {
                rx.recv(s.as_fd()).unwrap();
                for k in 0..rx.len() {
                    let (_, bytes) = rx.get(k);
                    assert_eq!(super::super::steer::owner(bytes, 3), i);
                    got += 1;
                }
            }
            if got == sent.len() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(got, sent.len());
        let owners: std::collections::BTreeSet<usize> = sent
            .iter()
            .map(|p| super::super::steer::owner(p, 3))
            .collect();
        assert_eq!(owners.len(), 3, "the flows cover every socket");
    }
}
