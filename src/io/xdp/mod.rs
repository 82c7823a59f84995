//! AF_XDP on a pair of existing interfaces, for `sgplane run --iface A
//! --iface B`: an XDP program on each interface hands every frame it
//! receives to an AF_XDP socket (`prog.rs`), and both sockets share one
//! UMEM (`ring.rs`), so a frame received on one side is sent on the other by
//! moving its address from one socket's RX ring to the other's TX ring: no
//! socket buffer, no copy in sgplane, and a system call per burst, not per
//! frame.
//!
//! ```text
//!            FILL A ──> kernel (A) ──> RX A ─┐                ┌─> TX B ──> kernel (B) ──> COMPLETION B ─┐
//!   free ───┤                                ├── judged: allow ┤                                          ├──> free
//!   frames  └ FILL B ──> kernel (B) ──> RX B ─┘          deny ──┴───────────────────────────────────────────┘
//! ```
//!
//! Every frame of the UMEM is in exactly one place: the free list, a FILL
//! ring, the kernel, an RX ring (then sgplane's burst), a TX ring, or a
//! COMPLETION ring. A UMEM shared by two interfaces needs Linux 5.10.
//!
//! Each side has one receive queue (an interface with more is refused):
//! then ARP and neighbour discovery, fragments and ICMP errors all reach the
//! one socket, and the one thread that judges their flow.
//!
//! The mode is whatever the driver offers: native XDP where it has it
//! (veth, most NIC drivers), else generic; zero-copy where the driver
//! supports it for AF_XDP (NICs), else the kernel copies frames into and
//! out of the UMEM (veth).

mod prog;
#[allow(unsafe_code)] // the UMEM and the rings, shared with the kernel
mod ring;

use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::sys::{self, bpf, Mmap};
use ring::{Offsets, Ring, Umem};

/// Entries per ring (each of the four per side).
const RING_SIZE: u32 = 2048;
/// Frames in the UMEM: both FILL rings full, and as many again in flight.
pub const DEFAULT_FRAMES: u32 = 4 * RING_SIZE;
/// Room the kernel leaves before a frame it copies in (`XDP_PACKET_HEADROOM`).
const KERNEL_HEADROOM: u32 = 256;
/// The bytes around the MTU in a frame: Ethernet header and two VLAN tags.
const L2_OVERHEAD: u32 = 14 + 8;
/// `XDP_MAX_TX_SKB_BUDGET` (Linux 6.17): descriptors one copy-mode send
/// takes off the TX ring (32 before).
const XDP_MAX_TX_SKB_BUDGET: libc::c_int = 9;

/// How to attach the XDP program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attach {
    /// In the driver.
    Native,
    /// After the kernel made a socket buffer (any interface; slower).
    Generic,
}

impl fmt::Display for Attach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Attach::Native => "native",
            Attach::Generic => "generic",
        })
    }
}

/// What to ask of the kernel.
#[derive(Debug, Clone, Copy)]
pub struct XdpOptions {
    /// `None`: native where the driver has it, else generic.
    pub attach: Option<Attach>,
    /// Frames in the UMEM (at least 64; the rings are sized to fit).
    pub frames: u32,
}

impl Default for XdpOptions {
    fn default() -> XdpOptions {
        XdpOptions {
            attach: None,
            frames: DEFAULT_FRAMES,
        }
    }
}

/// What a side counted, since it opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XdpCounters {
    /// Frames taken off the RX ring.
    pub received: u64,
    /// Dropped by the kernel: the RX ring was full.
    pub rx_ring_full: u64,
    /// Dropped by the kernel for other reasons (too long for a frame, ...).
    pub rx_dropped: u64,
    /// Times the kernel found the FILL ring empty (a frame dropped each).
    pub fill_ring_empty: u64,
    /// Descriptors the kernel refused as invalid (RX and TX).
    pub invalid_descs: u64,
    /// Allowed frames dropped because this side's TX ring was full.
    pub tx_ring_full: u64,
    /// Sends the kernel could not complete at once (the frames stay queued).
    pub tx_busy: u64,
    /// Frames handed to this side's TX ring.
    pub sent: u64,
}

/// One side: its socket, rings, and the program that feeds it.
struct Side {
    name: String,
    fd: OwnedFd,
    rx: Ring<libc::xdp_desc>,
    tx: Ring<libc::xdp_desc>,
    fill: Ring<u64>,
    comp: Ring<u64>,
    attach: Attach,
    counters: XdpCounters,
    /// Keep the program attached (the link) and alive.
    _link: OwnedFd,
    _prog: OwnedFd,
    _map: OwnedFd,
}

/// Two interfaces bound to AF_XDP sockets sharing one UMEM.
pub struct XdpPair {
    umem: Umem,
    sides: [Side; 2],
    /// Frames sgplane holds that no ring has.
    free: Vec<u64>,
    zerocopy: bool,
}

/// A received frame: where it is in the UMEM, and its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Desc {
    pub addr: u64,
    pub len: u32,
}

fn annotate<'a>(name: &'a str, what: &str) -> impl Fn(io::Error) -> io::Error + 'a {
    let what = what.to_string();
    move |e| sys::annotate(e, format!("{name}: {what}"))
}

/// What `/sys/class/net/NAME/...` says, as a number.
fn sysfs_number(name: &str, file: &str) -> Option<u32> {
    std::fs::read_to_string(format!("/sys/class/net/{name}/{file}"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// How many receive queues `name` has in use.
fn rx_queues(name: &str) -> io::Result<usize> {
    let dir = std::fs::read_dir(format!("/sys/class/net/{name}/queues"))?;
    Ok(dir
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
        .count())
}

/// The frame size that holds a frame of `mtu` after the kernel's headroom.
fn frame_size_for(mtu: u32) -> Option<u32> {
    [2048u32, 4096]
        .into_iter()
        .find(|&f| mtu + L2_OVERHEAD + KERNEL_HEADROOM <= f)
}

impl XdpPair {
    /// Binds AF_XDP sockets to interfaces `names` (with indexes
    /// `ifindexes`), attaches the program to each, and fills the FILL rings.
    /// Any failure undoes everything and says where it failed.
    pub fn open(names: [&str; 2], ifindexes: [u32; 2], opts: XdpOptions) -> io::Result<XdpPair> {
        if cfg!(target_endian = "big") {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the XDP program is encoded for little-endian machines",
            ));
        }
        let mut frame_size = 2048;
        for name in names {
            let queues = rx_queues(name).map_err(annotate(name, "reading its queues"))?;
            if queues != 1 {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!(
                        "{name} has {queues} receive queues; AF_XDP here takes one per side, so that \
                         a flow's fragments and ICMP errors meet its worker \
                         (`ethtool -L {name} combined 1`, or --io af-packet)"
                    ),
                ));
            }
            let mtu = sysfs_number(name, "mtu").unwrap_or(1500);
            frame_size = frame_size.max(frame_size_for(mtu).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("{name}: MTU {mtu} does not fit a 4096-byte AF_XDP frame"),
                )
            })?);
        }
        let frames = opts.frames.max(64).next_power_of_two();
        let umem = Umem::new(frames, frame_size).map_err(annotate(names[0], "UMEM"))?;
        let ring_size = (frames / 4).clamp(32, RING_SIZE);

        let a = open_socket(names[0], ifindexes[0], &umem, None, ring_size)?;
        let b = open_socket(names[1], ifindexes[1], &umem, Some(a.as_fd()), ring_size)?;
        let options: libc::xdp_options =
            sys::get_option(a.as_fd(), libc::SOL_XDP, libc::XDP_OPTIONS)
                .map_err(annotate(names[0], "XDP_OPTIONS"))?;
        let zerocopy = options.flags & libc::XDP_OPTIONS_ZEROCOPY != 0;

        let side = |name: &str, ifindex: u32, fd: OwnedFd| -> io::Result<Side> {
            let (rx, tx, fill, comp) = map_rings(name, &fd, ring_size)?;
            // A copy-mode send of as many descriptors as the ring holds
            // (Linux 6.17; older kernels take 32 a call and refuse the option).
            let _ = sys::set_int(
                fd.as_fd(),
                libc::SOL_XDP,
                XDP_MAX_TX_SKB_BUDGET,
                ring_size as libc::c_int,
            );
            let map =
                bpf::xskmap(1, "sgplane_xsks").map_err(annotate(name, "creating the XSKMAP"))?;
            let program = prog::redirect_to_socket(std::os::fd::AsRawFd::as_raw_fd(&map));
            let prog = bpf::load_xdp(&program, prog::LICENSE, "sgplane_xdp")
                .map_err(annotate(name, "loading the XDP program"))?;
            check_fallback(prog.as_fd()).map_err(annotate(name, "testing the XDP program"))?;
            bpf::map_update(map.as_fd(), 0, fd.as_fd())
                .map_err(annotate(name, "putting the socket in the XSKMAP"))?;
            let (link, attach) = attach(prog.as_fd(), ifindex, opts.attach)
                .map_err(annotate(name, "attaching the XDP program"))?;
            Ok(Side {
                name: name.to_string(),
                fd,
                rx,
                tx,
                fill,
                comp,
                attach,
                counters: XdpCounters::default(),
                _link: link,
                _prog: prog,
                _map: map,
            })
        };
        let a = side(names[0], ifindexes[0], a)?;
        let b = side(names[1], ifindexes[1], b)?;
        let fs = u64::from(frame_size);
        let mut pair = XdpPair {
            free: (0..u64::from(frames)).rev().map(|i| i * fs).collect(),
            umem,
            sides: [a, b],
            zerocopy,
        };
        pair.refill();
        Ok(pair)
    }

    /// How the program is attached on each side, and whether frames are
    /// copied: "native XDP, copy mode" and the like.
    pub fn describe(&self) -> String {
        let [a, b] = &self.sides;
        let attach = if a.attach == b.attach {
            format!("{} XDP", a.attach)
        } else {
            format!("{} XDP on {}, {} on {}", a.attach, a.name, b.attach, b.name)
        };
        format!(
            "{attach}, {} mode, {} frames of {} bytes",
            if self.zerocopy { "zero-copy" } else { "copy" },
            self.umem.len() / self.umem.frame_size() as usize,
            self.umem.frame_size()
        )
    }

    /// What a user should know about these interfaces in this mode.
    pub fn notes(&self) -> Vec<String> {
        let virtual_: Vec<&str> = self
            .sides
            .iter()
            .map(|s| s.name.as_str())
            .filter(|n| !std::path::Path::new(&format!("/sys/class/net/{n}/device")).exists())
            .collect();
        if virtual_.is_empty() {
            return Vec::new();
        }
        vec![format!(
            "{} {} virtual (veth or the like): AF_XDP forwards frames as they are, so a checksum \
             a host on the far end left to its \"hardware\" stays unfinished; turn that off there \
             (ethtool -K DEV tx off) or use --io af-packet, which carries the note across",
            virtual_.join(" and "),
            if virtual_.len() == 1 { "is" } else { "are" }
        )]
    }

    /// The sockets, to wait on (readable: RX has frames).
    pub fn fds(&self) -> [BorrowedFd<'_>; 2] {
        [self.sides[0].fd.as_fd(), self.sides[1].fd.as_fd()]
    }

    /// Takes up to `max` received frames of side `side` off its RX ring
    /// into `out`; they are sgplane's until given to [`XdpPair::send`] or
    /// [`XdpPair::recycle`].
    pub fn receive(&mut self, side: usize, max: usize, out: &mut Vec<Desc>) -> usize {
        let s = &mut self.sides[side];
        let n = s.rx.ready().min(max as u32);
        for i in 0..n {
            let d = s.rx.get(i);
            out.push(Desc {
                addr: d.addr,
                len: d.len,
            });
        }
        s.rx.release(n);
        s.counters.received += u64::from(n);
        n as usize
    }

    /// The bytes of a received frame (`None`: the kernel described memory
    /// outside the UMEM; the frame is then dropped, never read).
    pub fn frame(&self, d: Desc) -> Option<&[u8]> {
        self.umem.frame(d.addr, d.len)
    }

    /// Gives a frame back for reuse (denied, or not sent).
    pub fn recycle(&mut self, d: Desc) {
        self.free.push(self.chunk(d.addr));
    }

    fn chunk(&self, addr: u64) -> u64 {
        // Aligned mode: a frame's chunk starts at a multiple of the frame size.
        addr - addr % u64::from(self.umem.frame_size())
    }

    /// Sends frames out of side `side`: onto its TX ring while there is
    /// room (the rest are dropped, counted, and recycled), then tells the
    /// kernel. Returns how many went on the ring.
    pub fn send(&mut self, side: usize, frames: &[Desc]) -> usize {
        let room = self.sides[side].tx.free(frames.len() as u32) as usize;
        let n = room.min(frames.len());
        for d in &frames[n..] {
            self.free.push(self.chunk(d.addr));
        }
        let s = &mut self.sides[side];
        s.counters.tx_ring_full += (frames.len() - n) as u64;
        if n == 0 {
            return 0;
        }
        for d in &frames[..n] {
            s.tx.push(libc::xdp_desc {
                addr: d.addr,
                len: d.len,
                options: 0,
            });
        }
        s.tx.submit();
        s.counters.sent += n as u64;
        Self::kick(s);
        n
    }

    fn kick(s: &mut Side) {
        if s.tx.needs_wakeup() {
            match sys::kick(s.fd.as_fd()) {
                Ok(true) => {}
                Ok(false) => s.counters.tx_busy += 1,
                Err(e) => {
                    s.counters.tx_busy += 1;
                    tracing::debug!(side = %s.name, error = %e, "AF_XDP send failed");
                }
            }
        }
    }

    /// The upkeep after a burst: frames the kernel has sent come back from
    /// the COMPLETION rings, the FILL rings are topped up, and a TX ring
    /// the kernel left frames on is kicked again.
    pub fn service(&mut self) {
        let fs = u64::from(self.umem.frame_size());
        for s in &mut self.sides {
            let n = s.comp.ready();
            for i in 0..n {
                let a = s.comp.get(i);
                self.free.push(a - a % fs);
            }
            s.comp.release(n);
        }
        self.refill();
    }

    /// Kicks TX rings that still hold frames (after the kernel was busy).
    pub fn flush(&mut self) {
        for s in &mut self.sides {
            if s.tx.outstanding() > 0 {
                Self::kick(s);
            }
        }
    }

    /// Tops up both FILL rings from the free list, evenly.
    fn refill(&mut self) {
        loop {
            let mut moved = false;
            for s in &mut self.sides {
                if s.fill.free(1) == 0 {
                    continue;
                }
                let Some(a) = self.free.pop() else { break };
                s.fill.push(a);
                moved = true;
            }
            if !moved || self.free.is_empty() {
                break;
            }
        }
        for s in &mut self.sides {
            s.fill.submit();
        }
    }

    /// Whether the kernel waits for a call to go on receiving (only some
    /// zero-copy drivers); a `poll` of the sockets is that call.
    pub fn needs_wakeup(&self) -> bool {
        self.sides.iter().any(|s| s.fill.needs_wakeup())
    }

    /// Whether both sockets are still bound: an interface deleted or moved
    /// away unbinds its socket, which then receives nothing, silently.
    /// On failure, which side failed and why.
    pub fn check(&self) -> Result<(), (usize, io::Error)> {
        for (i, s) in self.sides.iter().enumerate() {
            let err: libc::c_int = sys::get_option(s.fd.as_fd(), libc::SOL_SOCKET, libc::SO_ERROR)
                .map_err(|e| (i, e))?;
            if err != 0 {
                return Err((
                    i,
                    sys::annotate(
                        io::Error::from_raw_os_error(err),
                        "the interface went away (deleted or moved to another namespace?)",
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Each side's counters, the kernel's statistics read afresh.
    pub fn counters(&mut self) -> [XdpCounters; 2] {
        for s in &mut self.sides {
            if let Ok(st) = sys::get_option::<libc::xdp_statistics>(
                s.fd.as_fd(),
                libc::SOL_XDP,
                libc::XDP_STATISTICS,
            ) {
                s.counters.rx_ring_full = st.rx_ring_full;
                s.counters.rx_dropped = st.rx_dropped;
                s.counters.fill_ring_empty = st.rx_fill_ring_empty_descs;
                s.counters.invalid_descs = st.rx_invalid_descs + st.tx_invalid_descs;
            }
        }
        [self.sides[0].counters, self.sides[1].counters]
    }
}

/// Opens a socket on `ifindex`: the UMEM's owner (`shared` None, registers
/// it), or a socket sharing it. Bound, rings sized (mapped by `map_rings`).
fn open_socket(
    name: &str,
    ifindex: u32,
    umem: &Umem,
    shared: Option<BorrowedFd>,
    ring_size: u32,
) -> io::Result<OwnedFd> {
    let fd = sys::socket(libc::AF_XDP, libc::SOCK_RAW, 0).map_err(annotate(
        name,
        "cannot open an AF_XDP socket (needs Linux 4.18 and CAP_NET_RAW)",
    ))?;
    if shared.is_none() {
        let reg = libc::xdp_umem_reg {
            addr: umem.addr(),
            len: umem.len() as u64,
            chunk_size: umem.frame_size(),
            headroom: 0,
            flags: 0,
            tx_metadata_len: 0,
        };
        sys::set_option(fd.as_fd(), libc::SOL_XDP, libc::XDP_UMEM_REG, &reg)
            .map_err(annotate(name, "registering the UMEM"))?;
    }
    let size = ring_size as libc::c_int;
    for (opt, what) in [
        (libc::XDP_UMEM_FILL_RING, "FILL ring"),
        (libc::XDP_UMEM_COMPLETION_RING, "COMPLETION ring"),
        (libc::XDP_RX_RING, "RX ring"),
        (libc::XDP_TX_RING, "TX ring"),
    ] {
        sys::set_int(fd.as_fd(), libc::SOL_XDP, opt, size).map_err(annotate(name, what))?;
    }
    let flags = match shared {
        // The owner's flags hold for every socket that shares its UMEM.
        Some(_) => libc::XDP_SHARED_UMEM,
        None => libc::XDP_USE_NEED_WAKEUP,
    };
    sys::bind_xdp(fd.as_fd(), ifindex, 0, flags, shared).map_err(|e| {
        let hint = if shared.is_some() && e.raw_os_error() == Some(libc::EINVAL) {
            " (sharing a UMEM between two interfaces needs Linux 5.10)"
        } else {
            ""
        };
        sys::annotate(e, format!("{name}: binding the AF_XDP socket{hint}"))
    })?;
    Ok(fd)
}

type Rings = (
    Ring<libc::xdp_desc>,
    Ring<libc::xdp_desc>,
    Ring<u64>,
    Ring<u64>,
);

/// Maps a bound socket's four rings.
fn map_rings(name: &str, fd: &OwnedFd, size: u32) -> io::Result<Rings> {
    let (off, len): (libc::xdp_mmap_offsets, usize) =
        sys::get_option_len(fd.as_fd(), libc::SOL_XDP, libc::XDP_MMAP_OFFSETS)
            .map_err(annotate(name, "XDP_MMAP_OFFSETS"))?;
    if len < std::mem::size_of::<libc::xdp_mmap_offsets>() {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("{name}: this kernel's AF_XDP rings have no flags (Linux 5.4 or later needed)"),
        ));
    }
    fn ring<T: ring::Entry>(
        name: &str,
        fd: &OwnedFd,
        o: libc::xdp_ring_offset,
        size: u32,
        pgoff: u64,
        produce: bool,
        what: &str,
    ) -> io::Result<Ring<T>> {
        let len = o.desc as usize + size as usize * std::mem::size_of::<T>();
        let map = Mmap::shared_at(fd.as_fd(), len, pgoff).map_err(annotate(name, what))?;
        Ring::new(map, Offsets::from(o), size, produce)
    }
    let rx = ring(
        name,
        fd,
        off.rx,
        size,
        libc::XDP_PGOFF_RX_RING as u64,
        false,
        "mapping the RX ring",
    )?;
    let tx = ring(
        name,
        fd,
        off.tx,
        size,
        libc::XDP_PGOFF_TX_RING as u64,
        true,
        "mapping the TX ring",
    )?;
    let fill = ring(
        name,
        fd,
        off.fr,
        size,
        libc::XDP_UMEM_PGOFF_FILL_RING,
        true,
        "mapping the FILL ring",
    )?;
    let comp = ring(
        name,
        fd,
        off.cr,
        size,
        libc::XDP_UMEM_PGOFF_COMPLETION_RING,
        false,
        "mapping the COMPLETION ring",
    )?;
    Ok((rx, tx, fill, comp))
}

/// The program, run once on a queue whose slot is still empty, must drop
/// the frame: a check that the kernel runs it as written.
fn check_fallback(prog: BorrowedFd) -> io::Result<()> {
    let frame = [0u8; 64];
    match bpf::test_run(prog, &frame)? {
        prog::XDP_DROP | prog::XDP_ABORTED => Ok(()),
        other => Err(io::Error::other(format!(
            "the program returned action {other} for a queue without a socket, not XDP_DROP"
        ))),
    }
}

/// Attaches the program: as asked, or native and then generic.
fn attach(prog: BorrowedFd, ifindex: u32, want: Option<Attach>) -> io::Result<(OwnedFd, Attach)> {
    let flags = |a| match a {
        Attach::Native => bpf::XDP_FLAGS_DRV_MODE,
        Attach::Generic => bpf::XDP_FLAGS_SKB_MODE,
    };
    let busy = |e: io::Error| {
        if e.raw_os_error() == Some(libc::EBUSY) {
            sys::annotate(e, "another XDP program is attached to it")
        } else {
            e
        }
    };
    match want {
        Some(a) => bpf::attach_xdp(prog, ifindex, flags(a))
            .map(|l| (l, a))
            .map_err(busy),
        None => match bpf::attach_xdp(prog, ifindex, flags(Attach::Native)) {
            Ok(l) => Ok((l, Attach::Native)),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => Err(busy(e)),
            Err(_) => bpf::attach_xdp(prog, ifindex, flags(Attach::Generic))
                .map(|l| (l, Attach::Generic))
                .map_err(busy),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_sized_for_the_mtu_after_the_kernels_headroom() {
        assert_eq!(frame_size_for(1500), Some(2048));
        assert_eq!(frame_size_for(2048 - 256 - 22), Some(2048));
        assert_eq!(frame_size_for(2048 - 256 - 21), Some(4096));
        assert_eq!(frame_size_for(9000), None);
    }
}
