//! `sendmmsg` and `recvmmsg`: many datagrams per system call, each with
//! its address and control messages.

use std::io::{self, IoSlice};
use std::mem::size_of;
use std::net::SocketAddr;
use std::ops::Range;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::{cvt, SockAddr, SOCKADDR_LEN, SOL_UDP};

/// An empty vector of I/O slices with the memory of `v`, for slices of
/// another lifetime: a batch keeps its scratch vector across calls that
/// borrow different buffers without allocating. (The in-place `collect` of
/// an empty iterator into an element type of the same size and alignment
/// reuses the allocation.)
pub fn reuse_slices<'b>(mut v: Vec<IoSlice<'_>>) -> Vec<IoSlice<'b>> {
    v.clear();
    v.into_iter()
        .map(|_| -> IoSlice<'b> { unreachable!("the vector is empty") })
        .collect()
}

/// Bytes of a control message's header (`CMSG_LEN(0)`), and its alignment.
const CMSG_HDR: usize = size_of::<libc::cmsghdr>();
const CMSG_ALIGN: usize = size_of::<usize>();

const fn cmsg_align(n: usize) -> usize {
    (n + CMSG_ALIGN - 1) & !(CMSG_ALIGN - 1)
}

/// One control message to send, encoded (`CMSG_SPACE` of up to 8 bytes of data).
#[repr(C, align(8))]
#[derive(Clone, Copy)]
pub struct ControlMsg {
    buf: [u8; CMSG_HDR + 8],
    len: usize,
}

impl ControlMsg {
    /// A message of `level` and `ty` with `data` (at most 8 bytes).
    ///
    /// # Panics
    /// If `data` is longer than 8 bytes.
    pub fn new(level: libc::c_int, ty: libc::c_int, data: &[u8]) -> ControlMsg {
        assert!(data.len() <= 8, "control message data too long");
        let mut buf = [0u8; CMSG_HDR + 8];
        let w = size_of::<usize>();
        buf[..w].copy_from_slice(&(CMSG_HDR + data.len()).to_ne_bytes());
        buf[w..w + 4].copy_from_slice(&level.to_ne_bytes());
        buf[w + 4..w + 8].copy_from_slice(&ty.to_ne_bytes());
        buf[CMSG_HDR..CMSG_HDR + data.len()].copy_from_slice(data);
        ControlMsg {
            buf,
            len: cmsg_align(CMSG_HDR + data.len()),
        }
    }

    /// `UDP_SEGMENT`: the send is cut into datagrams of `size` bytes.
    pub fn udp_segment(size: u16) -> ControlMsg {
        ControlMsg::new(SOL_UDP, libc::UDP_SEGMENT, &size.to_ne_bytes())
    }

    #[cfg(test)]
    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// The control messages in `buf` as the kernel wrote them: (level, type, data).
pub fn control_messages(buf: &[u8]) -> impl Iterator<Item = (libc::c_int, libc::c_int, &[u8])> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let hdr = buf.get(at..at + CMSG_HDR)?;
        let w = size_of::<usize>();
        let len = usize::from_ne_bytes(hdr[..w].try_into().ok()?);
        let level = libc::c_int::from_ne_bytes(hdr[w..w + 4].try_into().ok()?);
        let ty = libc::c_int::from_ne_bytes(hdr[w + 4..w + 8].try_into().ok()?);
        if len < CMSG_HDR {
            return None;
        }
        let data = buf.get(at + CMSG_HDR..at + len)?;
        at += cmsg_align(len);
        Some((level, ty, data))
    })
}

/// One message of a [`SendMsgs::send`]: its iovecs (a range of the call's
/// slices), where to (for an unconnected socket), a control message.
#[derive(Clone)]
pub struct OutMsg {
    pub iovs: Range<usize>,
    pub to: Option<(SockAddr, libc::socklen_t)>,
    pub control: Option<ControlMsg>,
}

/// The message headers of `sendmmsg`, rebuilt on every call: they point into
/// the call's buffers only while it lasts.
#[derive(Default)]
pub struct SendMsgs {
    hdrs: Vec<libc::mmsghdr>,
}

// SAFETY: the raw pointers in `hdrs` are written and used within one `send`
// call and never read after it returns; between calls they are dead values,
// so the headers may move to another thread.
unsafe impl Send for SendMsgs {}

impl SendMsgs {
    pub fn new() -> SendMsgs {
        SendMsgs::default()
    }

    /// Sends `msgs` with one `sendmmsg`; how many were sent (an error: the
    /// first could not be). [`sent_len`](Self::sent_len) gives the bytes
    /// of each message sent.
    ///
    /// # Panics
    /// If a message's range of iovecs is outside `iovs`.
    pub fn send(
        &mut self,
        fd: BorrowedFd,
        iovs: &[IoSlice<'_>],
        msgs: &[OutMsg],
    ) -> io::Result<usize> {
        self.hdrs.clear();
        for m in msgs {
            let v = &iovs[m.iovs.clone()];
            // SAFETY: mmsghdr is plain data (integers and pointers) for which
            // all zeroes is a valid value.
            let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
            // The pointers are `*mut` in the C type, but sendmmsg only reads
            // what they point to. IoSlice is ABI compatible with iovec on Unix.
            h.msg_hdr.msg_iov = v.as_ptr().cast_mut().cast();
            h.msg_hdr.msg_iovlen = v.len() as _;
            if let Some((sa, len)) = &m.to {
                h.msg_hdr.msg_name = sa.as_ptr().cast_mut().cast();
                h.msg_hdr.msg_namelen = *len;
            }
            if let Some(c) = &m.control {
                h.msg_hdr.msg_control = c.buf.as_ptr().cast_mut().cast();
                h.msg_hdr.msg_controllen = c.len as _;
            }
            self.hdrs.push(h);
        }
        if self.hdrs.is_empty() {
            return Ok(0);
        }
        // SAFETY: every header points at iovecs, addresses and control
        // messages borrowed for this call, with the lengths they have; the
        // kernel reads them and writes only the headers' `msg_len`.
        let r = unsafe {
            libc::sendmmsg(
                fd.as_raw_fd(),
                self.hdrs.as_mut_ptr(),
                self.hdrs.len() as libc::c_uint,
                0,
            )
        };
        cvt(r).map(|n| n as usize)
    }

    /// Bytes sent of message `k` of the last [`send`](Self::send).
    pub fn sent_len(&self, k: usize) -> usize {
        self.hdrs.get(k).map_or(0, |h| h.msg_len as usize)
    }
}

/// Room for the control messages one received datagram can carry:
/// `IPV6_PKTINFO` (20 bytes of data) and `UDP_GRO` (an int), each with its header.
const CONTROL_ROOM: usize = 128;

/// A control-message buffer, aligned as `struct cmsghdr`.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
struct ControlBuf([u8; CONTROL_ROOM]);

/// One message of a [`RecvMsgs::recv`].
pub struct InMsg<'a> {
    /// What was received, at most the slot.
    pub data: &'a [u8],
    /// The length the kernel reported (with `MSG_TRUNC`: the whole datagram's).
    pub len: usize,
    /// The sender, if an IP address.
    pub from: Option<SocketAddr>,
    /// The control messages, see [`control_messages`].
    pub control: &'a [u8],
    /// `msg_flags` (`MSG_TRUNC`...).
    pub flags: libc::c_int,
}

/// Buffers for receiving up to `slots` messages with one `recvmmsg`, each
/// with its sender and control messages.
pub struct RecvMsgs {
    slot_len: usize,
    buf: Vec<u8>,
    names: Vec<SockAddr>,
    controls: Vec<ControlBuf>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    got: usize,
}

// SAFETY: the raw pointers in `iovs` and `hdrs` point into this value's own
// heap buffers, which are never resized, so they do not move when it moves;
// nothing else reads them. Moving it to another thread is moving plain buffers.
unsafe impl Send for RecvMsgs {}

impl RecvMsgs {
    /// `slot_len` bytes per message.
    pub fn new(slots: usize, slot_len: usize) -> RecvMsgs {
        let iov = libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        };
        // SAFETY: mmsghdr is plain data (integers and pointers) for which all
        // zeroes is a valid value; the pointers are set below.
        let hdr: libc::mmsghdr = unsafe { std::mem::zeroed() };
        let mut b = RecvMsgs {
            slot_len,
            buf: vec![0; slots * slot_len],
            names: vec![SockAddr::empty(); slots],
            controls: vec![ControlBuf([0; CONTROL_ROOM]); slots],
            iovs: vec![iov; slots],
            hdrs: vec![hdr; slots],
            got: slots,
        };
        // The vectors are never resized from here on: these pointers stay valid.
        for (i, slot) in b.buf.chunks_exact_mut(slot_len.max(1)).enumerate() {
            b.iovs[i] = libc::iovec {
                iov_base: slot.as_mut_ptr().cast(),
                iov_len: slot_len,
            };
        }
        for i in 0..slots {
            let h = &mut b.hdrs[i].msg_hdr;
            h.msg_name = b.names[i].as_mut_ptr().cast();
            h.msg_iov = &mut b.iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = b.controls[i].0.as_mut_ptr().cast();
        }
        b.reset();
        b
    }

    /// Restores the lengths and flags the kernel overwrote in the headers
    /// the last call used.
    fn reset(&mut self) {
        for h in &mut self.hdrs[..self.got] {
            h.msg_len = 0;
            h.msg_hdr.msg_namelen = SOCKADDR_LEN as libc::socklen_t;
            h.msg_hdr.msg_controllen = CONTROL_ROOM as _;
            h.msg_hdr.msg_flags = 0;
        }
        self.got = 0;
    }

    /// One `recvmmsg` with `flags`; how many messages arrived.
    pub fn recv(&mut self, fd: BorrowedFd, flags: libc::c_int) -> io::Result<usize> {
        self.reset();
        // SAFETY: every header points into buffers of this value that outlive
        // the call and whose lengths the headers give (set in `new`, lengths
        // restored above); none is moved or resized while the kernel writes.
        let r = unsafe {
            libc::recvmmsg(
                fd.as_raw_fd(),
                self.hdrs.as_mut_ptr(),
                self.hdrs.len() as libc::c_uint,
                flags,
                std::ptr::null_mut(),
            )
        };
        self.got = cvt(r)? as usize;
        Ok(self.got)
    }

    /// Messages of the last [`recv`](Self::recv).
    pub fn len(&self) -> usize {
        self.got
    }

    pub fn is_empty(&self) -> bool {
        self.got == 0
    }

    /// Message `i` of the last `recv`.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn get(&self, i: usize) -> InMsg<'_> {
        assert!(i < self.got, "message {i} of {}", self.got);
        let h = &self.hdrs[i];
        let len = h.msg_len as usize;
        let start = i * self.slot_len;
        // `size_t` with glibc, `socklen_t` with musl.
        #[allow(clippy::unnecessary_cast)]
        let control_len = (h.msg_hdr.msg_controllen as usize).min(CONTROL_ROOM);
        InMsg {
            data: &self.buf[start..start + len.min(self.slot_len)],
            len,
            from: self.names[i].get(h.msg_hdr.msg_namelen),
            control: &self.controls[i].0[..control_len],
            flags: h.msg_hdr.msg_flags,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_control_message_reads_back() {
        let c = ControlMsg::udp_segment(1400);
        let bytes = c.bytes();
        let got: Vec<_> = control_messages(bytes).collect();
        assert_eq!(
            got,
            vec![(SOL_UDP, libc::UDP_SEGMENT, &1400u16.to_ne_bytes()[..])]
        );
        assert_eq!(bytes.len(), CMSG_HDR + 8);
        assert_eq!(control_messages(&bytes[..CMSG_HDR - 1]).count(), 0);
    }

    #[test]
    fn reused_slices_keep_their_memory() {
        let data = [1u8, 2, 3];
        let mut v: Vec<IoSlice<'_>> = Vec::with_capacity(16);
        v.push(IoSlice::new(&data));
        let (cap, ptr) = (v.capacity(), v.as_ptr() as usize);
        let w: Vec<IoSlice<'static>> = reuse_slices(v);
        assert!(w.is_empty());
        assert_eq!((w.capacity(), w.as_ptr() as usize), (cap, ptr));
    }
}
