//! Socket addresses as the kernel reads and writes them, and the calls
//! that take one.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd};

use super::cvt;

/// Bytes of the largest socket address used here (`sockaddr_in6`).
pub(super) const SOCKADDR_LEN: usize = 28;

/// An IPv4 or IPv6 socket address as the kernel reads and writes it
/// (`sockaddr_in`, `sockaddr_in6`), kept as bytes.
#[repr(C, align(4))]
#[derive(Clone, Copy)]
pub struct SockAddr([u8; SOCKADDR_LEN]);

/// Field offsets in `sockaddr_in` and `sockaddr_in6`.
mod sa {
    use std::ops::Range;
    pub const FAMILY: Range<usize> = 0..2;
    pub const PORT: Range<usize> = 2..4;
    pub const ADDR4: Range<usize> = 4..8;
    pub const ADDR6: Range<usize> = 8..24;
    pub const SCOPE_ID6: Range<usize> = 24..28;
    pub const LEN4: usize = 16;
    pub const LEN6: usize = 28;
}

impl SockAddr {
    /// Room for the kernel to write an address into.
    pub fn empty() -> SockAddr {
        SockAddr([0; SOCKADDR_LEN])
    }

    /// The address and its length.
    pub fn new(addr: SocketAddr) -> (SockAddr, libc::socklen_t) {
        let mut b = [0u8; SOCKADDR_LEN];
        b[sa::PORT].copy_from_slice(&addr.port().to_be_bytes());
        let len = match addr.ip() {
            IpAddr::V4(ip) => {
                b[sa::FAMILY].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
                b[sa::ADDR4].copy_from_slice(&ip.octets());
                sa::LEN4
            }
            IpAddr::V6(ip) => {
                b[sa::FAMILY].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
                b[sa::ADDR6].copy_from_slice(&ip.octets());
                sa::LEN6
            }
        };
        (SockAddr(b), len as libc::socklen_t)
    }

    /// The address the kernel wrote (`len` bytes), if it is IPv4 or IPv6.
    pub fn get(&self, len: libc::socklen_t) -> Option<SocketAddr> {
        let b = &self.0;
        let family = libc::c_int::from(u16::from_ne_bytes([b[0], b[1]]));
        let port = u16::from_be_bytes([b[2], b[3]]);
        let len = len as usize;
        match family {
            libc::AF_INET if len >= sa::LEN4 => {
                let ip: [u8; 4] = b[sa::ADDR4].try_into().ok()?;
                Some(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port)))
            }
            libc::AF_INET6 if len >= sa::LEN6 => {
                let ip: [u8; 16] = b[sa::ADDR6].try_into().ok()?;
                let scope = u32::from_ne_bytes(b[sa::SCOPE_ID6].try_into().ok()?);
                Some(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(ip),
                    port,
                    0,
                    scope,
                )))
            }
            _ => None,
        }
    }

    pub(super) fn as_ptr(&self) -> *const libc::sockaddr {
        self.0.as_ptr().cast()
    }

    pub(super) fn as_mut_ptr(&mut self) -> *mut libc::sockaddr {
        self.0.as_mut_ptr().cast()
    }
}

/// `bind(2)` to an IP address.
pub fn bind(fd: BorrowedFd, addr: SocketAddr) -> io::Result<()> {
    let (sa, len) = SockAddr::new(addr);
    // SAFETY: `sa` holds a sockaddr of `len` bytes, alive for the call.
    cvt(unsafe { libc::bind(fd.as_raw_fd(), sa.as_ptr(), len) }).map(drop)
}

/// `connect(2)` to an IP address.
pub fn connect(fd: BorrowedFd, addr: SocketAddr) -> io::Result<()> {
    let (sa, len) = SockAddr::new(addr);
    // SAFETY: `sa` holds a sockaddr of `len` bytes, alive for the call.
    cvt(unsafe { libc::connect(fd.as_raw_fd(), sa.as_ptr(), len) }).map(drop)
}

/// The address a socket is bound to.
pub fn local_addr(fd: BorrowedFd) -> io::Result<SocketAddr> {
    let mut sa = SockAddr::empty();
    let mut len = SOCKADDR_LEN as libc::socklen_t;
    // SAFETY: `sa` has room for `len` bytes and the kernel writes at most that.
    cvt(unsafe { libc::getsockname(fd.as_raw_fd(), sa.as_mut_ptr(), &mut len) })?;
    sa.get(len)
        .ok_or_else(|| io::Error::other("not an IP socket"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::size_of;

    #[test]
    fn socket_addresses_encode_as_the_kernels() {
        for a in ["192.0.2.1:6081", "[2001:db8::1]:53", "[fe80::1%3]:1"] {
            let a: SocketAddr = a.parse().unwrap();
            let (sa, len) = SockAddr::new(a);
            let back = sa.get(len).unwrap();
            assert_eq!((back.ip(), back.port()), (a.ip(), a.port()));
            assert_eq!(sa.get(len - 1), None);
        }
        let (v4, len) = SockAddr::new("10.1.2.3:258".parse().unwrap());
        assert_eq!(len as usize, size_of::<libc::sockaddr_in>());
        assert_eq!(&v4.0[2..8], &[1, 2, 10, 1, 2, 3]);
        let (_, len6) = SockAddr::new("[::1]:1".parse().unwrap());
        assert_eq!(len6 as usize, size_of::<libc::sockaddr_in6>());
    }
}
