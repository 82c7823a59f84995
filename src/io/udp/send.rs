//! The sockets that send the appliance's returns, and their `sendmmsg`
//! batches:
//!
//! - [`ReturnSocket`]: a UDP socket per (address a datagram was sent to,
//!   the load balancer's source port, node) that sends the returns, bound
//!   and connected to exactly the ends a return has, with `SO_REUSEADDR` so
//!   that each worker may have its own. [`GsoBatch`] writes runs of
//!   equal-size returns as one UDP GSO message each, several messages per
//!   `sendmmsg`.
//! - [`RawSocket`]: `IPPROTO_RAW`, the IP header ours, written with
//!   `sendmmsg` ([`SendBatch`], the headers and the payload gathered from
//!   where they lie): the returns that no UDP socket can send (the port is
//!   taken on this host...), or all of them when so tuned.

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use crate::io::sys::{self, BpfInsn, ControlMsg, OutMsg, SendMsgs, SockAddr};

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
        let fd = sys::socket(domain, libc::SOCK_RAW, libc::IPPROTO_RAW)?;
        if !v6 {
            sys::set_int(fd.as_fd(), libc::IPPROTO_IP, libc::IP_HDRINCL, 1)?;
        }
        sys::set_send_buffer(fd.as_fd(), send_buffer);
        sys::set_send_timeout(fd.as_fd(), timeout)?;
        Ok(RawSocket { fd, v6 })
    }

    pub fn is_v6(&self) -> bool {
        self.v6
    }
}

impl AsFd for RawSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
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
        let fd = sys::socket(domain, libc::SOCK_DGRAM, 0)?;
        let b = fd.as_fd();
        sys::set_int(b, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
        if local.is_ipv4() {
            sys::set_int(
                b,
                libc::IPPROTO_IP,
                libc::IP_MTU_DISCOVER,
                libc::IP_PMTUDISC_PROBE,
            )?;
        } else {
            sys::set_int(b, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1)?;
            sys::set_int(
                b,
                libc::IPPROTO_IPV6,
                libc::IPV6_MTU_DISCOVER,
                libc::IPV6_PMTUDISC_PROBE,
            )?;
        }
        // Before the bind, so that nothing is ever queued: `ret #0` drops
        // every datagram.
        let drop_all = BpfInsn {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: 0,
        };
        sys::attach_bpf(b, libc::SO_ATTACH_FILTER, &[drop_all])?;
        sys::set_send_buffer(b, send_buffer);
        sys::set_send_timeout(b, timeout)?;
        sys::bind(b, local)?;
        sys::connect(b, node)?;
        Ok(ReturnSocket { fd })
    }
}

impl AsFd for ReturnSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
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
    msgs: SendMsgs,
    iovs: Vec<IoSlice<'static>>,
    out: Vec<OutMsg>,
    outcome: Vec<Sent>,
}

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
        let mut iovs = sys::reuse_slices(std::mem::take(&mut self.iovs));
        self.out.clear();
        self.outcome.clear();
        let mut datagrams = datagrams.into_iter();
        for &n in runs {
            let start = iovs.len();
            iovs.extend(datagrams.by_ref().take(n).map(IoSlice::new));
            let got = iovs.len() - start;
            // A single datagram needs no segmenting.
            let control = (got > 1).then(|| ControlMsg::udp_segment(iovs[start].len() as u16));
            self.out.push(OutMsg {
                iovs: start..start + got,
                to: None,
                control,
            });
        }
        let total = self.out.len();
        // The message sent again after an ECONNREFUSED, to do so once.
        let mut retried = None;
        while self.outcome.len() < total {
            let done = self.outcome.len();
            let e = match self.msgs.send(fd, &iovs, &self.out[done..]) {
                Ok(0) => {
                    self.outcome.push(Sent::Lost);
                    continue;
                }
                Ok(r) => {
                    self.outcome.extend((0..r).map(|_| Sent::Sent));
                    continue;
                }
                Err(e) => e,
            };
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
        self.iovs = sys::reuse_slices(iovs);
        &self.outcome
    }
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
    msgs: SendMsgs,
    iovs: Vec<IoSlice<'static>>,
    out: Vec<OutMsg>,
}

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
        self.send_gather(fd, packets.into_iter().map(|(p, to)| ([p], to)))
    }

    /// [`send`](Self::send) for packets in parts that lie apart (headers
    /// written for the send, a payload where it was received): the kernel
    /// gathers each packet's parts, in order.
    pub fn send_gather<'a, const N: usize>(
        &mut self,
        fd: BorrowedFd,
        packets: impl IntoIterator<Item = ([&'a [u8]; N], SocketAddr)>,
    ) -> SendReport {
        let mut iovs = sys::reuse_slices(std::mem::take(&mut self.iovs));
        self.out.clear();
        for (parts, to) in packets {
            let k = iovs.len();
            iovs.extend(parts.map(IoSlice::new));
            self.out.push(OutMsg {
                iovs: k..k + N,
                to: Some(SockAddr::new(to)),
                control: None,
            });
        }
        let mut report = SendReport::default();
        let mut done = 0;
        while done < self.out.len() {
            let n = (self.out.len() - done).min(1024);
            match self.msgs.send(fd, &iovs, &self.out[done..done + n]) {
                Ok(r) if r > 0 => {
                    report.sent_bytes += (0..r).map(|k| self.msgs.sent_len(k)).sum::<usize>();
                    report.sent += r;
                    done += r;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => {
                    tracing::trace!(result = ?r, "return not sent");
                    report.failed += 1;
                    done += 1;
                }
            }
        }
        self.iovs = sys::reuse_slices(iovs);
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_batch_sends_each_packet_to_its_address() {
        let rx: Vec<_> = (0..2)
            .map(|_| {
                let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                s
            })
            .collect();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut batch = SendBatch::new();
        let (a, b) = ([1u8; 10], [2u8; 20]);
        let report = batch.send(
            tx.as_fd(),
            [
                (&a[..], rx[0].local_addr().unwrap()),
                (&b[..], rx[1].local_addr().unwrap()),
            ],
        );
        assert_eq!(
            report,
            SendReport {
                sent: 2,
                sent_bytes: 30,
                failed: 0
            }
        );
        let mut buf = [0u8; 64];
        assert_eq!(rx[0].recv(&mut buf).unwrap(), 10);
        assert_eq!(rx[1].recv(&mut buf).unwrap(), 20);
    }

    #[test]
    fn a_packet_in_parts_arrives_whole() {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut batch = SendBatch::new();
        let to = rx.local_addr().unwrap();
        let (h, p) = ([1u8; 3], [2u8; 5]);
        let report = batch.send_gather(
            tx.as_fd(),
            [([&h[..], &p[..]], to), ([&p[..], &h[..0]], to)],
        );
        assert_eq!(
            report,
            SendReport {
                sent: 2,
                sent_bytes: 13,
                failed: 0
            }
        );
        let mut buf = [0u8; 64];
        assert_eq!(rx.recv(&mut buf).unwrap(), 8);
        assert_eq!(&buf[..8], &[1, 1, 1, 2, 2, 2, 2, 2]);
        assert_eq!(rx.recv(&mut buf).unwrap(), 5);
    }
}
