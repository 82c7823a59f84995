//! Plays a Gateway Load Balancer against `sgplane gwlb` over loopback and
//! measures how many packets of established flows come back per second.
//!
//! It opens `--flows` TCP connections through the appliance (handshakes
//! included), then one thread blasts data packets of those flows, both
//! directions, each direction from its own UDP source port as GWLB does,
//! while another counts the returns on the node's port 6081. The sender
//! keeps at most `--window` packets in flight so that the measurement is of
//! the appliance, not of queues overflowing.
//!
//! ```text
//! cargo run --release --example gwlb_load -- --seconds 5            # appliance in this process (root)
//! sgplane -c policy.toml gwlb --listen 127.90.0.2:6081 --workers 2 &
//! cargo run --release --example gwlb_load -- --connect 127.90.0.2:6081
//! ```
//!
//! Options: `--workers N` (in-process appliance, default 2), `--flows N`
//! (64), `--size BYTES` of TCP payload (64), `--burst N` datagrams per send
//! (32), `--window N` (8192), `--seconds S` (5), `--no-gso` (sendmmsg instead
//! of UDP GSO), `--no-gro`, `--no-steering` and `--raw-returns` (appliance
//! tuning: every return through the raw socket instead of UDP sockets with
//! UDP GSO), `--no-node-gro` (the node's socket receives returns one
//! datagram at a time instead of coalesced with UDP GRO),
//! `--raw-baseline THREADS` (no appliance: that many threads send the
//! returns themselves through raw sockets, which is the most any appliance
//! returning through a raw socket can reach on this machine's loopback).
//!
//! An external appliance needs a policy that lets 10.0.0.0/8 reach TCP 443
//! on 10.0.0.2 (the `POLICY` below).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sgplane::live::control::Control;
use sgplane::live::gwlb::socket::{self, RawSocket, RecvBatch, SendBatch, Waker};
use sgplane::live::gwlb::{self, GwlbOptions, Tuning};
use sgplane::policy::Policy;
use sgplane::wire::build;

const POLICY: &str = r#"
[security_groups.sg-server]
ingress = [ { proto = "tcp", ports = "443", from = "10.0.0.0/8" } ]
[interfaces.server]
addresses = ["10.0.0.2"]
security_groups = ["sg-server"]
"#;

const APPLIANCE: &str = "127.90.0.2:6081";
const NODE: &str = "127.90.0.1";
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

/// Plays a Gateway Load Balancer against `sgplane gwlb` over loopback.
#[derive(clap::Parser)]
struct Cli {
    /// An appliance already running at ADDR:PORT (default: one in this process).
    #[arg(long, value_name = "ADDR:PORT")]
    connect: Option<SocketAddr>,
    /// The GWLB node's address, where the returns arrive on port 6081.
    #[arg(long, value_name = "ADDR", default_value = NODE)]
    node: IpAddr,
    /// Workers of the in-process appliance.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Established TCP flows to send data on.
    #[arg(long, default_value_t = 64)]
    flows: usize,
    /// TCP payload bytes per packet.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Datagrams per send (1-64).
    #[arg(long, default_value_t = 32)]
    burst: usize,
    /// Most packets in flight.
    #[arg(long, default_value_t = 8192)]
    window: u64,
    /// How long to measure.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Send with sendmmsg instead of UDP GSO.
    #[arg(long)]
    no_gso: bool,
    /// Appliance tuning: no UDP GRO.
    #[arg(long)]
    no_gro: bool,
    /// Appliance tuning: no kernel BPF steering (hand-off between workers only).
    #[arg(long)]
    no_steering: bool,
    /// Appliance tuning: every return through the raw socket (no UDP GSO returns).
    #[arg(long)]
    raw_returns: bool,
    /// The node receives the returns one datagram at a time (no UDP GRO).
    #[arg(long)]
    no_node_gro: bool,
    /// No appliance: this many threads send the returns themselves through raw
    /// sockets, to measure what loopback allows.
    #[arg(long, value_name = "THREADS")]
    raw_baseline: Option<usize>,
}

struct Args {
    connect: Option<SocketAddr>,
    node: IpAddr,
    workers: usize,
    flows: usize,
    size: usize,
    burst: usize,
    window: u64,
    seconds: u64,
    gso: bool,
    node_gro: bool,
    tuning: Tuning,
    raw_baseline: Option<usize>,
}

fn args() -> Args {
    let c = <Cli as clap::Parser>::parse();
    let tuning = Tuning {
        gro: !c.no_gro,
        kernel_steering: !c.no_steering,
        udp_returns: !c.raw_returns,
        ..Tuning::default()
    };
    Args {
        connect: c.connect,
        node: c.node,
        workers: c.workers.max(1),
        flows: c.flows.max(1),
        size: c.size,
        burst: c.burst.clamp(1, 64),
        window: c.window.max(1),
        seconds: c.seconds,
        gso: !c.no_gso,
        node_gro: !c.no_node_gro,
        tuning,
        raw_baseline: c.raw_baseline,
    }
}

/// The UDP payload GWLB sends for an inner frame.
fn geneve(inner_frame: &[u8], cookie: u32) -> Vec<u8> {
    let o = build::geneve_wrap(
        IpAddr::from([192, 0, 2, 1]),
        IpAddr::from([192, 0, 2, 2]),
        1,
        inner_frame,
        &build::aws_options(0xe1, 7, cookie),
    );
    o[14 + 20 + 8..].to_vec()
}

/// One direction of one flow: its GWLB source port and a data packet.
struct Direction {
    socket: UdpSocket,
    data: Vec<u8>,
    train: Vec<u8>,
}

fn main() {
    let a = args();
    let mut appliance_thread = None;
    let control = Control::new(Policy::from_toml(POLICY, "gwlb_load").unwrap(), None);
    let target: SocketAddr = match a.connect {
        Some(t) => t,
        None if a.raw_baseline.is_some() => APPLIANCE.parse().unwrap(),
        None => {
            let opts = GwlbOptions {
                listen: APPLIANCE.parse().unwrap(),
                health: None,
                metrics: None,
                workers: a.workers,
                drain: Duration::ZERO,
                watch: false,
            };
            let (c, t) = (Arc::clone(&control), a.tuning.clone());
            appliance_thread = Some(std::thread::spawn(move || gwlb::run_tuned(c, opts, &t)));
            let until = Instant::now() + Duration::from_secs(5);
            while UdpSocket::bind(APPLIANCE).is_ok() {
                assert!(Instant::now() < until, "the appliance did not start");
                std::thread::sleep(Duration::from_millis(10));
            }
            APPLIANCE.parse().unwrap()
        }
    };

    let node =
        UdpSocket::bind(SocketAddr::new(a.node, 6081)).expect("binding the node's port 6081");
    socket::set_recv_buffer(node.as_fd(), 32 << 20);
    node.set_nonblocking(true).unwrap();
    // With UDP GRO a run of returns sent as one (UDP GSO) arrives as one.
    let node_gro = a.node_gro && socket::set_udp_gro(node.as_fd(), true).is_ok();
    let mut rx = if node_gro {
        RecvBatch::new(256, 65_535)
    } else {
        RecvBatch::new(256, 2048)
    };
    let waker = Waker::new().unwrap();

    // Handshakes, all flows at once, one step at a time.
    let mut dirs = Vec::new();
    let mut steps: [Vec<(usize, Vec<u8>)>; 3] = Default::default();
    for i in 0..a.flows {
        let client = IpAddr::V4(Ipv4Addr::from(0x0a01_0000 + i as u32 + 1));
        let server = IpAddr::V4(SERVER);
        let cport = 20_000 + i as u16;
        let (fwd, rev) = (dirs.len(), dirs.len() + 1);
        let payload = vec![0x5a; a.size];
        for (from_client, data) in [
            (
                true,
                build::tcp(client, server, cport, 443, 0x18, 1, 1, &payload),
            ),
            (
                false,
                build::tcp(server, client, 443, cport, 0x18, 1, 1, &payload),
            ),
        ] {
            let s = UdpSocket::bind(SocketAddr::new(a.node, 0)).unwrap();
            socket::set_send_buffer(s.as_fd(), 4 << 20);
            let data = geneve(&data, if from_client { 1 } else { 2 });
            let train = data.repeat(a.burst);
            dirs.push(Direction {
                socket: s,
                data,
                train,
            });
        }
        steps[0].push((
            fwd,
            geneve(&build::tcp(client, server, cport, 443, 0x02, 0, 0, b""), 1),
        ));
        steps[1].push((
            rev,
            geneve(&build::tcp(server, client, 443, cport, 0x12, 0, 1, b""), 2),
        ));
        steps[2].push((
            fwd,
            geneve(&build::tcp(client, server, cport, 443, 0x10, 1, 1, b""), 1),
        ));
    }
    for (n, step) in steps
        .iter()
        .enumerate()
        .filter(|_| a.raw_baseline.is_none())
    {
        for (d, p) in step {
            dirs[*d].socket.send_to(p, target).unwrap();
        }
        let mut got = 0;
        let until = Instant::now() + Duration::from_secs(3);
        while got < step.len() && Instant::now() < until {
            rx.recv(node.as_fd()).unwrap();
            got += datagrams(&rx);
            let _ = socket::wait(node.as_fd(), &waker, Duration::from_millis(10));
        }
        assert_eq!(
            got,
            step.len(),
            "handshake step {} came back for {got} of {} flows",
            n + 1,
            step.len()
        );
    }
    println!(
        "{} established flows through {target} ({}{}), {} B datagrams, {} per send via {}, node {}",
        a.flows,
        if a.connect.is_some() {
            "external appliance".to_string()
        } else {
            format!("in-process, {} workers", a.workers)
        },
        match (a.connect, a.raw_baseline, a.tuning.udp_returns) {
            (None, None, true) => ", UDP GSO returns",
            (None, None, false) => ", raw returns",
            _ => "",
        },
        dirs[0].data.len(),
        a.burst,
        if a.gso { "UDP GSO" } else { "sendmmsg" },
        if node_gro {
            "with UDP GRO"
        } else {
            "without UDP GRO"
        }
    );
    if a.gso {
        for d in &dirs {
            socket::set_udp_segment(d.socket.as_fd(), d.data.len() as u16)
                .expect("UDP GSO (Linux 4.18 or later)");
        }
    }

    let returned = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let counter = {
        let (returned, stop) = (Arc::clone(&returned), Arc::clone(&stop));
        std::thread::Builder::new()
            .name("load-rx".into())
            .spawn(move || {
                // Naps rather than poll(2) when nothing is waiting: a
                // reader asleep in poll costs every return a wake-up.
                while !stop.load(Ordering::Relaxed) {
                    if rx.recv(node.as_fd()).unwrap() == 0 {
                        std::thread::sleep(Duration::from_micros(50));
                    } else {
                        returned.fetch_add(datagrams(&rx) as u64, Ordering::Relaxed);
                    }
                }
            })
            .unwrap()
    };
    let f = Flight {
        sent: AtomicU64::new(0),
        returned: &returned,
        lost: AtomicU64::new(0),
        done: AtomicBool::new(false),
    };
    let m = match a.raw_baseline {
        None => {
            let mut tx = SendBatch::new();
            let mut i = 0;
            blast(&a, &f, |burst| {
                let d = &dirs[i % dirs.len()];
                i += 1;
                if a.gso {
                    d.socket.send_to(&d.train, target).is_ok()
                } else {
                    tx.send(d.socket.as_fd(), (0..burst).map(|_| (&d.data[..], target)))
                        .sent
                        == burst
                }
            })
        }
        Some(threads) => {
            // The returns the appliance would send, sent without it.
            let returns: Vec<Vec<u8>> = dirs
                .iter()
                .map(|d| {
                    ipv4_udp(
                        target.ip(),
                        a.node,
                        d.socket.local_addr().unwrap().port(),
                        6081,
                        &d.data,
                    )
                })
                .collect();
            let (to, returns) = (SocketAddr::new(a.node, 0), &returns);
            let sender = |first: usize| {
                let raw = RawSocket::open(false, 4 << 20, Duration::from_millis(100))
                    .expect("a raw socket (root)");
                let mut tx = SendBatch::new();
                let mut i = first;
                move |burst: usize| {
                    let p = &returns[i % returns.len()];
                    i += 1;
                    tx.send(raw.as_fd(), (0..burst).map(|_| (&p[..], to))).sent == burst
                }
            };
            std::thread::scope(|s| {
                for t in 1..threads {
                    let mut send = sender(t);
                    let (a, f) = (&a, &f);
                    s.spawn(move || {
                        while !f.done.load(Ordering::Relaxed) {
                            if !f.open(a) {
                                std::thread::sleep(Duration::from_micros(50));
                            } else if send(a.burst) {
                                f.sent.fetch_add(a.burst as u64, Ordering::Relaxed);
                            }
                        }
                    });
                }
                blast(&a, &f, sender(0))
            })
        }
    };
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    counter.join().unwrap();
    let back = returned.load(Ordering::Relaxed) - m.returned_before;
    let secs = m.elapsed.as_secs_f64();
    println!(
        "total over {secs:.1} s: sent {} ({:.0}/s), returned {back} ({:.0}/s), {:.2}% not returned",
        m.sent,
        m.sent as f64 / secs,
        back as f64 / secs,
        100.0 * m.sent.saturating_sub(back) as f64 / m.sent.max(1) as f64
    );
    print_cpu(&m.cpu_before, &m.cpu_after, secs);
    control.stop();
    if let Some(t) = appliance_thread {
        let summary = t.join().unwrap().expect("the appliance ran");
        println!("appliance:\n{summary}");
    }
}

/// The datagrams of the last receive, a coalesced run counted for each of its own.
fn datagrams(rx: &RecvBatch) -> usize {
    (0..rx.len())
        .map(|i| match rx.get(i).0 {
            d if d.segment > 0 => d.len.div_ceil(d.segment),
            _ => 1,
        })
        .sum()
}

/// What `blast` measured, after a second of warm-up.
struct Measurement {
    sent: u64,
    /// Returns counted before the measurement started.
    returned_before: u64,
    elapsed: Duration,
    cpu_before: CpuTimes,
    cpu_after: CpuTimes,
}

/// CPU time (nanoseconds) by thread name.
type CpuTimes = Vec<(String, u64)>;

/// The packets in flight, shared by the sending threads and the counter.
struct Flight<'a> {
    sent: AtomicU64,
    returned: &'a AtomicU64,
    /// Counted as lost after returns stopped coming.
    lost: AtomicU64,
    /// The measurement is over.
    done: AtomicBool,
}

impl Flight<'_> {
    /// Whether a burst may go: fewer than `window` packets in flight.
    fn open(&self, a: &Args) -> bool {
        let gone = self.returned.load(Ordering::Relaxed) + self.lost.load(Ordering::Relaxed);
        self.sent.load(Ordering::Relaxed).saturating_sub(gone) + a.burst as u64 <= a.window
    }
}

/// Sends bursts with `send_burst` (true if it went), keeping at most
/// `window` packets in flight, for a second of warm-up and then `seconds`;
/// prints each second; sets `done` at the end.
fn blast(a: &Args, f: &Flight, mut send_burst: impl FnMut(usize) -> bool) -> Measurement {
    let start = Instant::now();
    let (mut mark_t, mut mark_sent, mut mark_back) = (start, 0, 0);
    // When the measurement started: time, sent, returned, CPU times.
    let mut measured: Option<(Instant, u64, u64, CpuTimes)> = None;
    let mut stalled: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let (s, back) = (
            f.sent.load(Ordering::Relaxed),
            f.returned.load(Ordering::Relaxed),
        );
        match &measured {
            None if now - start >= Duration::from_secs(1) => {
                measured = Some((now, s, back, thread_cpu()))
            }
            Some((t0, s0, r0, cpu)) if now - *t0 >= Duration::from_secs(a.seconds) => {
                f.done.store(true, Ordering::Relaxed);
                return Measurement {
                    sent: s - s0,
                    returned_before: *r0,
                    elapsed: now - *t0,
                    cpu_before: cpu.clone(),
                    cpu_after: thread_cpu(),
                };
            }
            _ => {}
        }
        if now - mark_t >= Duration::from_secs(1) {
            let dt = (now - mark_t).as_secs_f64();
            println!(
                "  sent {:>10.0}/s  returned {:>10.0}/s",
                (s - mark_sent) as f64 / dt,
                (back - mark_back) as f64 / dt
            );
            (mark_t, mark_sent, mark_back) = (now, s, back);
        }
        if !f.open(a) {
            // Returns stopped coming: count what is missing as lost and go on.
            let since = *stalled.get_or_insert(now);
            if now - since > Duration::from_millis(5) {
                f.lost.store(
                    f.sent.load(Ordering::Relaxed) - f.returned.load(Ordering::Relaxed),
                    Ordering::Relaxed,
                );
                stalled = None;
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
            continue;
        }
        stalled = None;
        if send_burst(a.burst) {
            f.sent.fetch_add(a.burst as u64, Ordering::Relaxed);
        }
    }
}

/// An IPv4 packet with a UDP header (checksum 0) around `payload`.
fn ipv4_udp(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let (IpAddr::V4(s), IpAddr::V4(d)) = (src, dst) else {
        panic!("IPv4 only")
    };
    let mut p = vec![0u8; 28];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&((28 + payload.len()) as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&s.octets());
    p[16..20].copy_from_slice(&d.octets());
    let c = sgplane::wire::packet::checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[20..22].copy_from_slice(&sport.to_be_bytes());
    p[22..24].copy_from_slice(&dport.to_be_bytes());
    p[24..26].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// The CPU times of this process's threads (nanoseconds on a CPU, from schedstat).
fn thread_cpu() -> CpuTimes {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for t in tasks.flatten() {
        let name = std::fs::read_to_string(t.path().join("comm"))
            .unwrap_or_default()
            .trim()
            .to_string();
        let ns = std::fs::read_to_string(t.path().join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
            .unwrap_or(0);
        out.push((name, ns));
    }
    out
}

fn print_cpu(before: &CpuTimes, after: &CpuTimes, secs: f64) {
    let mut by: std::collections::BTreeMap<String, u64> = Default::default();
    for (name, t) in after {
        let b = before
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, t)| t)
            .sum::<u64>();
        *by.entry(name.clone()).or_default() += t.saturating_sub(b);
    }
    let parts: Vec<String> = by
        .iter()
        .filter(|(_, &t)| t > 0)
        .map(|(n, &t)| format!("{n} {:.0}%", 100.0 * t as f64 / 1e9 / secs))
        .collect();
    println!("CPU by thread (of one core): {}", parts.join(", "));
}
