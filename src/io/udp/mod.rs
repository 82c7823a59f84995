//! UDP sockets of the GWLB appliance:
//!
//! - [`UdpSocket`]: one per worker, all in one `SO_REUSEPORT` group on the
//!   listen address, read in batches with `recvmmsg` ([`RecvBatch`]), each
//!   datagram with the address it was sent to (`IP_PKTINFO` /
//!   `IPV6_RECVPKTINFO`) and, with `UDP_GRO`, coalesced runs of datagrams
//!   from one sender in one read. A classic BPF program attached to the group
//!   ([`UdpSocket::attach_steering`]) picks the socket for each datagram.
//!   [`UdpSource`] is the socket as a [`FrameSource`]: one frame per
//!   datagram, runs cut apart, sender and local address in the metadata.
//! - [`send`]: the sockets that send the returns ([`ReturnSocket`] with UDP
//!   GSO, [`RawSocket`]) and their `sendmmsg` batches.
//!
//! The system calls are in [`sys`]: nothing here is `unsafe`.

pub mod send;

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::clock;
use super::frame::{FrameMeta, FrameSource};
use super::sys::{self, BpfInsn, RecvMsgs, SOL_UDP};
pub use send::{
    GsoBatch, RawSocket, ReturnSocket, SendBatch, SendReport, Sent, MAX_SEGMENTS, MAX_SEND_PAYLOAD,
};

/// Makes every send on a UDP socket a train of `segment`-byte datagrams (UDP
/// GSO): one `send` of up to 64 KiB becomes that many datagrams. 0 turns it off.
pub fn set_udp_segment(fd: BorrowedFd, segment: u16) -> io::Result<()> {
    sys::set_int(fd, SOL_UDP, libc::UDP_SEGMENT, libc::c_int::from(segment))
}

/// Lets a UDP socket receive runs of datagrams from one sender coalesced
/// (UDP GRO); [`RecvBatch`] reports the segment size.
pub fn set_udp_gro(fd: BorrowedFd, on: bool) -> io::Result<()> {
    sys::set_int(fd, SOL_UDP, libc::UDP_GRO, libc::c_int::from(on))
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
        let fd = sys::socket(domain, libc::SOCK_DGRAM | libc::SOCK_NONBLOCK, 0)?;
        let b = fd.as_fd();
        sys::set_int(b, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
        if addr.is_ipv4() {
            sys::set_int(b, libc::IPPROTO_IP, libc::IP_PKTINFO, 1)?;
        } else {
            sys::set_int(b, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1)?;
            sys::set_int(b, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)?;
        }
        let gro = gro && set_udp_gro(b, true).is_ok();
        sys::set_recv_buffer(b, recv_buffer);
        sys::bind(b, addr)?;
        Ok(UdpSocket { fd, gro })
    }

    /// Whether coalesced datagrams may arrive.
    pub fn gro(&self) -> bool {
        self.gro
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sys::local_addr(self.fd.as_fd())
    }

    /// Attaches a classic BPF program to the socket's `SO_REUSEPORT` group:
    /// it returns, for each datagram, the index of the socket (in binding
    /// order) that receives it; an index past the group falls back to the
    /// kernel's hash. The program sees the UDP payload.
    pub fn attach_steering(&self, program: &[BpfInsn]) -> io::Result<()> {
        sys::attach_bpf(self.fd.as_fd(), libc::SO_ATTACH_REUSEPORT_CBPF, program)
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
    /// Its length as sent: more than `len` when it was truncated.
    pub wire_len: usize,
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
    msgs: RecvMsgs,
    got: Vec<Datagram>,
}

impl RecvBatch {
    /// `slot_len` bytes per datagram: 65535 to take any datagram, or a
    /// coalesced run, whole.
    pub fn new(slots: usize, slot_len: usize) -> RecvBatch {
        let slots = slots.clamp(1, 1024);
        RecvBatch {
            msgs: RecvMsgs::new(slots, slot_len),
            got: Vec::with_capacity(slots),
        }
    }

    /// Reads what is waiting, up to the batch size, without blocking;
    /// returns how many datagrams arrived (0 if none was waiting).
    pub fn recv(&mut self, fd: BorrowedFd) -> io::Result<usize> {
        self.got.clear();
        let n = match self.msgs.recv(fd, libc::MSG_DONTWAIT | libc::MSG_TRUNC) {
            Ok(n) => n,
            // Nothing waiting, a signal, a pending ICMP error, or memory
            // pressure: none of them is the socket's end.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(
                        libc::EAGAIN
                            | libc::EINTR
                            | libc::ECONNREFUSED
                            | libc::ENOBUFS
                            | libc::ENOMEM
                    )
                ) =>
            {
                return Ok(0)
            }
            Err(e) => return Err(e),
        };
        for i in 0..n {
            let m = self.msgs.get(i);
            let (local, segment) = control_messages(m.control);
            self.got.push(Datagram {
                len: m.data.len(),
                wire_len: m.len,
                segment,
                peer: m.from,
                local,
                truncated: m.flags & libc::MSG_TRUNC != 0,
            });
        }
        Ok(n)
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
        (&self.got[i], self.msgs.get(i).data)
    }
}

/// The local address (`IP_PKTINFO` / `IPV6_PKTINFO`) and the GRO segment
/// size of a received message.
fn control_messages(control: &[u8]) -> (Option<IpAddr>, usize) {
    let (mut local, mut segment) = (None, 0);
    for (level, ty, data) in sys::control_messages(control) {
        match (level, ty) {
            // struct in_pktinfo { int ipi_ifindex; in_addr ipi_spec_dst, ipi_addr; }
            (libc::IPPROTO_IP, libc::IP_PKTINFO) => {
                if let Some(a) = data.get(8..12) {
                    let a: [u8; 4] = a.try_into().expect("4 bytes");
                    local = Some(IpAddr::V4(Ipv4Addr::from(a)));
                }
            }
            // struct in6_pktinfo { in6_addr ipi6_addr; int ipi6_ifindex; }
            (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
                if let Some(a) = data.get(..16) {
                    let a: [u8; 16] = a.try_into().expect("16 bytes");
                    local = Some(IpAddr::V6(Ipv6Addr::from(a)));
                }
            }
            (SOL_UDP, libc::UDP_GRO) => {
                if let Some(s) = data.get(..4) {
                    let s = libc::c_int::from_ne_bytes(s.try_into().expect("4 bytes"));
                    segment = s.max(0) as usize;
                }
            }
            _ => {}
        }
    }
    (local, segment)
}

/// A [`UdpSocket`] as a source of frames: each datagram is a frame, a
/// coalesced run is cut back into its datagrams, and the metadata says who
/// sent it ([`FrameMeta::peer`]) and to which address ([`FrameMeta::local`]).
/// A datagram that cannot be answered — truncated ([`FrameMeta::wire_len`]
/// longer than the bytes), or from or to an unknown address — comes whole,
/// as one frame, for the caller to count and drop.
pub struct UdpSource {
    socket: UdpSocket,
    batch: RecvBatch,
    /// The address datagrams count as sent to when the kernel did not say.
    local: Option<IpAddr>,
}

impl UdpSource {
    /// Reads `socket` with `recvmmsg`, `slots` datagrams of up to
    /// `slot_len` bytes at a time; `local`: the address datagrams were sent
    /// to when the kernel does not say (the listen address, if not a wildcard).
    pub fn new(
        socket: UdpSocket,
        slots: usize,
        slot_len: usize,
        local: Option<IpAddr>,
    ) -> UdpSource {
        UdpSource {
            socket,
            batch: RecvBatch::new(slots, slot_len),
            local,
        }
    }

    pub fn socket(&self) -> &UdpSocket {
        &self.socket
    }
}

impl FrameSource for UdpSource {
    fn recv_burst(
        &mut self,
        bursts: usize,
        each: &mut dyn FnMut(&[u8], &FrameMeta),
    ) -> io::Result<usize> {
        let mut taken = 0;
        for _ in 0..bursts {
            if self.batch.recv(self.socket.as_fd())? == 0 {
                break;
            }
            let ts = clock();
            for i in 0..self.batch.len() {
                let (d, bytes) = self.batch.get(i);
                let meta = FrameMeta {
                    wire_len: d.wire_len as u32,
                    ts,
                    peer: d.peer,
                    local: d.local.or(self.local),
                    ..FrameMeta::default()
                };
                if d.truncated || meta.peer.is_none() || meta.local.is_none() {
                    each(bytes, &meta);
                    taken += 1;
                    continue;
                }
                // An empty datagram is one (malformed) frame too.
                let seg = if d.segment == 0 {
                    bytes.len().max(1)
                } else {
                    d.segment
                };
                let mut chunks = bytes.chunks(seg);
                let first = chunks.next().unwrap_or(&[]);
                for payload in std::iter::once(first).chain(chunks) {
                    let meta = FrameMeta {
                        wire_len: payload.len() as u32,
                        ..meta
                    };
                    each(payload, &meta);
                    taken += 1;
                }
            }
        }
        Ok(taken)
    }

    fn poll_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.socket.as_fd())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::waker::{wait, Waker};
    use std::time::Duration;

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
    fn a_truncated_datagram_says_how_long_it_was() {
        let s = UdpSocket::bind("127.0.0.1:0".parse().unwrap(), false, 1 << 20).unwrap();
        let addr = s.local_addr().unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.send_to(&[7; 100], addr).unwrap();
        tx.send_to(&[8; 10], addr).unwrap();
        let mut src = UdpSource::new(s, 8, 64, None);
        let mut got = Vec::new();
        for _ in 0..100 {
            src.recv_burst(1, &mut |b, m| got.push((b.len(), m.wire_len, m.peer)))
                .unwrap();
            if got.len() == 2 {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let peer = Some(tx.local_addr().unwrap());
        assert_eq!(got, vec![(64, 100, peer), (10, 10, peer)]);
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
}
