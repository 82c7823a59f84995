//! Sends small UDP datagrams as fast as one thread can, over many flows, for
//! the inline benchmark (`benches/inline-vs-kernel.sh`).
//!
//! Each flow is a UDP socket of its own (source ports `--base-port`,
//! `--base-port + 1`, ...), connected to `--to`; the thread goes round the
//! sockets and hands each a batch of datagrams in one `sendmmsg`. Datagrams
//! the kernel refuses (a full queue: `ENOBUFS`, `EAGAIN`) are counted, not
//! retried, so the sender never waits on the device under test.
//!
//! Why not a packet generator such as trafgen: its frames come from a packet
//! socket, and veth hands a frame to its peer's NAPI poller (the thread that
//! puts the receiving side's work on another CPU) only when the frame is a
//! socket's or the sending device has TSO off; trafgen's TX ring also stalls
//! against veth's backpressure on this kernel. Plain UDP sockets go through
//! the stack like any application's traffic.
//!
//! ```text
//! cargo run --release --example udp_flood -- --to 10.80.2.20:9 --seconds 5
//! ```
//!
//! Options: `--flows N` (256), `--base-port P` (16384), `--size BYTES` of
//! payload (18: 60-byte frames, 64 on the wire), `--batch N` (32),
//! `--seconds S` (5). Prints `sent N refused M seconds S`.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

struct Options {
    to: SocketAddr,
    flows: u16,
    base_port: u16,
    size: usize,
    batch: usize,
    seconds: f64,
}

fn parse() -> Result<Options, String> {
    let mut o = Options {
        to: "10.80.2.20:9".parse().unwrap(),
        flows: 256,
        base_port: 16384,
        size: 18,
        batch: 32,
        seconds: 5.0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        let bad = |v: &str| format!("{a}: `{v}` is not valid");
        match a.as_str() {
            "--to" => {
                let v = value()?;
                o.to = v.parse().map_err(|_| bad(&v))?;
            }
            "--flows" => {
                let v = value()?;
                o.flows = v.parse().ok().filter(|&n| n > 0).ok_or(bad(&v))?;
            }
            "--base-port" => {
                let v = value()?;
                o.base_port = v.parse().ok().filter(|&n| n > 0).ok_or(bad(&v))?;
            }
            "--size" => {
                let v = value()?;
                o.size = v.parse().ok().filter(|&n| n <= 1472).ok_or(bad(&v))?;
            }
            "--batch" => {
                let v = value()?;
                o.batch = v
                    .parse()
                    .ok()
                    .filter(|&n| (1..=1024).contains(&n))
                    .ok_or(bad(&v))?;
            }
            "--seconds" => {
                let v = value()?;
                o.seconds = v.parse().ok().filter(|&s: &f64| s > 0.0).ok_or(bad(&v))?;
            }
            "-h" | "--help" => {
                return Err(
                    "usage: udp_flood [--to ADDR:PORT] [--flows N] [--base-port P] \
                            [--size BYTES] [--batch N] [--seconds S]"
                        .into(),
                )
            }
            _ => return Err(format!("unknown option {a} (try --help)")),
        }
    }
    if o.base_port as u32 + o.flows as u32 > 65536 {
        return Err("--base-port + --flows goes past port 65535".into());
    }
    Ok(o)
}

fn main() {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("udp_flood: {e}");
            std::process::exit(2);
        }
    };
    let local: SocketAddr = if o.to.is_ipv4() {
        "0.0.0.0:0".parse().unwrap()
    } else {
        "[::]:0".parse().unwrap()
    };
    let mut sockets = Vec::with_capacity(o.flows as usize);
    for i in 0..o.flows {
        let mut at = local;
        at.set_port(o.base_port + i);
        let s = UdpSocket::bind(at)
            .and_then(|s| s.connect(o.to).map(|()| s))
            .and_then(|s| s.set_nonblocking(true).map(|()| s));
        match s {
            Ok(s) => sockets.push(s),
            Err(e) => {
                eprintln!(
                    "udp_flood: cannot open a socket on {at} towards {}: {e}",
                    o.to
                );
                std::process::exit(1);
            }
        }
    }

    let payload = vec![0x41u8; o.size];
    // One iovec and one header per datagram of a batch, all naming `payload`
    // (connected sockets: no address per message).
    let mut iov: Vec<libc::iovec> = (0..o.batch)
        .map(|_| libc::iovec {
            iov_base: payload.as_ptr() as *mut libc::c_void,
            iov_len: payload.len(),
        })
        .collect();
    let mut msgs: Vec<libc::mmsghdr> = iov
        .iter_mut()
        .map(|v| {
            // SAFETY: mmsghdr is plain data; all-zero is a valid empty header.
            let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
            m.msg_hdr.msg_iov = v;
            m.msg_hdr.msg_iovlen = 1;
            m
        })
        .collect();

    let (mut sent, mut refused) = (0u64, 0u64);
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(o.seconds);
    loop {
        for s in &sockets {
            // SAFETY: `msgs` holds `batch` headers whose iovecs point into
            // `iov` and `payload`, which outlive the call and are only read.
            let n = unsafe {
                libc::sendmmsg(
                    s.as_raw_fd(),
                    msgs.as_mut_ptr(),
                    msgs.len() as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if n > 0 {
                sent += n as u64;
                refused += (o.batch - n as usize) as u64;
            } else {
                refused += o.batch as u64;
            }
        }
        if Instant::now() >= until {
            break;
        }
    }
    println!(
        "sent {sent} refused {refused} seconds {:.3}",
        started.elapsed().as_secs_f64()
    );
}
