//! The `bpf(2)` commands AF_XDP needs, each wrapped once: an XSKMAP, an XDP
//! program loaded from instructions, a socket put in the map, the program
//! attached to an interface by a link, and a test run of the program.
//!
//! `union bpf_attr` is not in `libc`: each command's attributes are written
//! as bytes at the offsets of `include/uapi/linux/bpf.h`, into a zeroed
//! buffer (the kernel refuses attributes whose unused tail is not zero).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::cvt;

const BPF_MAP_CREATE: libc::c_int = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_int = 2;
const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_TEST_RUN: libc::c_int = 10;
const BPF_LINK_CREATE: libc::c_int = 28;

/// `BPF_MAP_TYPE_XSKMAP`.
const MAP_TYPE_XSKMAP: u32 = 17;
/// `BPF_PROG_TYPE_XDP`.
const PROG_TYPE_XDP: u32 = 6;
/// `BPF_XDP`, the attach type of an XDP link.
const ATTACH_XDP: u32 = 37;

/// `XDP_FLAGS_SKB_MODE`: generic XDP, after the kernel made a socket buffer.
pub const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
/// `XDP_FLAGS_DRV_MODE`: native XDP, in the driver.
pub const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

/// The attributes of one command: 128 zeroed bytes, 8-aligned.
#[repr(C, align(8))]
struct Attr([u8; 128]);

impl Attr {
    fn new() -> Attr {
        Attr([0; 128])
    }

    fn u32(&mut self, at: usize, v: u32) -> &mut Attr {
        self.0[at..at + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }

    fn u64(&mut self, at: usize, v: u64) -> &mut Attr {
        self.0[at..at + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }

    fn name(&mut self, at: usize, name: &str) -> &mut Attr {
        // BPF_OBJ_NAME_LEN is 16, with the terminating NUL.
        let n = name.len().min(15);
        self.0[at..at + n].copy_from_slice(&name.as_bytes()[..n]);
        self
    }

    fn get_u32(&self, at: usize) -> u32 {
        u32::from_ne_bytes(self.0[at..at + 4].try_into().expect("4 bytes"))
    }
}

fn bpf(cmd: libc::c_int, attr: &mut Attr) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is 128 live bytes for the call. Every pointer written in
    // it (by the callers below) points at memory alive for the call, of the
    // size written beside it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.0.as_mut_ptr(),
            attr.0.len() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn owned(fd: libc::c_long) -> io::Result<OwnedFd> {
    let fd = cvt(libc::c_int::try_from(fd).map_err(|_| io::Error::other("bad descriptor"))?)?;
    // SAFETY: `fd` was just returned by bpf(2) as a new descriptor; nothing
    // else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A new XSKMAP of `entries` slots (keys: receive queues; values: AF_XDP
/// sockets).
pub fn xskmap(entries: u32, name: &str) -> io::Result<OwnedFd> {
    let mut a = Attr::new();
    a.u32(0, MAP_TYPE_XSKMAP)
        .u32(4, 4)
        .u32(8, 4)
        .u32(12, entries)
        .name(28, name);
    owned(bpf(BPF_MAP_CREATE, &mut a)?)
}

/// Puts the socket `value` (a descriptor) in slot `key` of `map`.
pub fn map_update(map: BorrowedFd, key: u32, value: BorrowedFd) -> io::Result<()> {
    let k = key;
    let v = value.as_raw_fd() as u32;
    let mut a = Attr::new();
    a.u32(0, map.as_raw_fd() as u32)
        .u64(8, &k as *const u32 as u64)
        .u64(16, &v as *const u32 as u64);
    bpf(BPF_MAP_UPDATE_ELEM, &mut a).map(drop)
}

/// Loads an XDP program of eBPF instructions (8 bytes each, as the kernel
/// reads them). On failure, the error carries the verifier's explanation.
pub fn load_xdp(insns: &[[u8; 8]], license: &str, name: &str) -> io::Result<OwnedFd> {
    let license = std::ffi::CString::new(license)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "licence with a NUL"))?;
    let attempt = |log: Option<&mut [u8]>| {
        let mut a = Attr::new();
        a.u32(0, PROG_TYPE_XDP)
            .u32(4, insns.len() as u32)
            .u64(8, insns.as_ptr() as u64)
            .u64(16, license.as_ptr() as u64)
            .name(48, name)
            .u32(68, ATTACH_XDP);
        if let Some(log) = log {
            a.u32(24, 1)
                .u32(28, log.len() as u32)
                .u64(32, log.as_mut_ptr() as u64);
        }
        bpf(BPF_PROG_LOAD, &mut a)
    };
    match attempt(None) {
        Ok(fd) => owned(fd),
        Err(e) => {
            // Again with the verifier's log, to say why.
            let mut log = vec![0u8; 16 << 10];
            let _ = attempt(Some(&mut log[..]));
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]);
            let text = text.trim();
            Err(if text.is_empty() {
                e
            } else {
                io::Error::new(e.kind(), format!("{e}; the verifier said: {text}"))
            })
        }
    }
}

/// Attaches XDP program `prog` to interface `ifindex` (`flags`: the
/// `XDP_FLAGS_*` mode). It stays attached while the returned link lives:
/// closing it, or the process ending in any way, detaches it.
pub fn attach_xdp(prog: BorrowedFd, ifindex: u32, flags: u32) -> io::Result<OwnedFd> {
    let mut a = Attr::new();
    a.u32(0, prog.as_raw_fd() as u32)
        .u32(4, ifindex)
        .u32(8, ATTACH_XDP)
        .u32(12, flags);
    owned(bpf(BPF_LINK_CREATE, &mut a)?)
}

/// Runs `prog` once on `frame`; the action it returned.
pub fn test_run(prog: BorrowedFd, frame: &[u8]) -> io::Result<u32> {
    let mut a = Attr::new();
    a.u32(0, prog.as_raw_fd() as u32)
        .u32(8, frame.len() as u32)
        .u64(16, frame.as_ptr() as u64)
        .u32(32, 1);
    bpf(BPF_PROG_TEST_RUN, &mut a)?;
    Ok(a.get_u32(4))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_written_where_the_kernel_reads_them() {
        let mut a = Attr::new();
        a.u32(4, 0x0102_0304)
            .u64(8, u64::MAX)
            .name(28, "a-very-long-name-indeed");
        assert_eq!(a.get_u32(4), 0x0102_0304);
        assert!(a.0[8..16].iter().all(|&b| b == 0xff));
        assert_eq!(&a.0[28..43], b"a-very-long-nam");
        // The name keeps its NUL, and the tail stays zero.
        assert!(a.0[43..].iter().all(|&b| b == 0));
        assert!(a.0[..4].iter().all(|&b| b == 0));
    }
}
