//! Network interfaces: their names, indexes and flags, and TAP devices'
//! `ioctl`s.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use super::{annotate, cvt, socket};

const IFNAMSIZ: usize = 16;

/// `struct ifreq` with the union read as `ifr_flags`.
#[repr(C)]
struct IfReq {
    name: [u8; IFNAMSIZ],
    flags: libc::c_short,
    _rest: [u8; 22],
}

impl IfReq {
    fn new(name: &str) -> io::Result<IfReq> {
        check_ifname(name)?;
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

    /// `ioctl(2)` with this request.
    fn ioctl(&mut self, fd: BorrowedFd, request: libc::c_ulong) -> io::Result<()> {
        // SAFETY: the requests made with an IfReq (TUNSETIFF, SIOCGIFFLAGS,
        // SIOCSIFFLAGS) read and write a `struct ifreq`, which `self` is
        // (40 bytes, the name NUL-terminated by `IfReq::new`).
        cvt(unsafe { libc::ioctl(fd.as_raw_fd(), request as _, self as *mut IfReq) }).map(drop)
    }
}

/// Refuses what cannot be an interface name, before any system call.
pub fn check_ifname(name: &str) -> io::Result<()> {
    if name.is_empty()
        || name.len() >= IFNAMSIZ
        || name
            .bytes()
            .any(|b| b == 0 || b == b'/' || b.is_ascii_whitespace())
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("`{name}` is not a valid interface name (1-15 characters, no '/' or spaces)"),
        ));
    }
    Ok(())
}

/// Attaches `/dev/net/tun` to the TAP device `name` with `flags`
/// (`TUNSETIFF`), creating the device if missing; the name it got.
pub fn tun_set_iff(fd: BorrowedFd, name: &str, flags: libc::c_int) -> io::Result<String> {
    let mut req = IfReq::new(name)?;
    req.flags = flags as libc::c_short;
    req.ioctl(fd, libc::TUNSETIFF as libc::c_ulong)?;
    Ok(req.name())
}

/// The offloads a TAP device may hand over (`TUNSETOFFLOAD`).
pub fn tun_set_offload(fd: BorrowedFd, offloads: libc::c_uint) -> io::Result<()> {
    // SAFETY: TUNSETOFFLOAD takes its argument by value and reads no memory.
    cvt(unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::TUNSETOFFLOAD as _,
            libc::c_ulong::from(offloads),
        )
    })
    .map(drop)
}

/// Sets IFF_UP on the interface `name` in the current network namespace.
pub fn set_link_up(name: &str) -> io::Result<()> {
    const SIOCGIFFLAGS: libc::c_ulong = 0x8913;
    const SIOCSIFFLAGS: libc::c_ulong = 0x8914;
    let sock = socket(libc::AF_INET, libc::SOCK_DGRAM, 0)?;
    let mut req = IfReq::new(name)?;
    req.ioctl(sock.as_fd(), SIOCGIFFLAGS)?;
    req.flags |= libc::IFF_UP as libc::c_short;
    req.ioctl(sock.as_fd(), SIOCSIFFLAGS)
        .map_err(|e| annotate(e, format_args!("cannot bring {name} up")))
}

/// The interface index of `name` in the current network namespace.
pub fn if_nametoindex(name: &str) -> io::Result<u32> {
    let c = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in interface name"))?;
    // SAFETY: `c` is a valid NUL-terminated string, alive for the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no interface named {name} in this network namespace"),
        ));
    }
    Ok(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifreq_is_the_kernels_size() {
        assert_eq!(std::mem::size_of::<IfReq>(), 40);
    }

    #[test]
    fn bad_interface_names_are_refused() {
        for bad in ["", "a-name-that-is-too-long", "a/b", "a b"] {
            let e = check_ifname(bad).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad}: {e}");
        }
        check_ifname("tap0").unwrap();
    }
}
