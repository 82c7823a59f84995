//! `sgplane gwlb`: the Gateway Load Balancer appliance (SPEC §5).
//!
//! The load balancer sends each packet it inspects to the appliance in GENEVE
//! over UDP 6081; the appliance judges the inner packet and sends an allowed
//! one back with the outer addresses swapped, the UDP ports and the GENEVE
//! header as received. Denied and malformed packets are dropped silently,
//! with counters. The appliance never originates a packet.
//!
//! How it is built:
//!
//! - Workers, one per core, each with its own [`Engine`] (conntrack,
//!   counters), its own UDP socket on the listen address (one
//!   `SO_REUSEPORT` group) read with `recvmmsg` and UDP GRO
//!   ([`UdpSource`]), and its own sockets for the returns (`returns.rs`,
//!   [`crate::io::udp::send`]).
//! - Both directions of an inner flow must meet one worker's conntrack, but
//!   the kernel spreads datagrams by their *outer* addresses and ports. A
//!   classic BPF program on the socket group makes the kernel deliver each
//!   datagram to the worker that owns its inner flow ([`steer`]); a worker
//!   checks every datagram with the same function and hands one that still
//!   reached the wrong worker to its owner over a channel. (Measured against
//!   a conntrack shared by all workers in a concurrent map, and against the
//!   hand-off alone: `benches/gwlb_sharing.rs`, figures in the README.)
//! - Each datagram is copied once, as received, into a batch of the worker
//!   that owns it (an [`io::Frames`](Frames), its ends in the metadata);
//!   the engine judges the UDP payload with the ends beside it
//!   ([`Engine::process_geneve_batch`]): what it would judge for the whole
//!   packet (zone from the endpoint id, malformed GENEVE counted), with no
//!   outer header built or parsed. An allowed payload is what goes back.
//! - Returns go out through UDP sockets, one per (address the datagram was
//!   sent to, load balancer source port, node), bound and connected to
//!   those ends and opened on first use: the kernel writes the outer
//!   headers, and each run of equal-size returns of one socket in a batch
//!   goes down as one UDP GSO send, which crosses the stack as one packet
//!   (on loopback all the way to a receiver with UDP GRO). That is what
//!   makes the returns cheap: through a raw socket every return crosses the
//!   stack alone. The raw socket (`IPPROTO_RAW`, `sendmmsg`) still sends
//!   the returns where no UDP socket can be had — the port is
//!   taken on this host or is the listening port, the worker holds its
//!   most sockets ([`Tuning::return_sockets`]), the kernel refused a send —
//!   and everything with [`Tuning::udp_returns`] off. Both ways send the
//!   same packet: a UDP socket gets the payload as received, the raw socket
//!   the outer headers written at send time followed by the payload, from
//!   the batch where it lies ([`OuterEnds::emit_return`]). The returns are
//!   the worker's [`FrameSink`].
//! - Every packet goes back with its own GENEVE header, byte for byte: that
//!   is the header last received for its flow, so a new cookie is reflected
//!   at once, and no per-flow header needs keeping.
//! - The policy is read once per batch and swapped when it was reloaded;
//!   counters are published every 100 ms; expired flows swept every second.
//! - Draining (SIGTERM): health checks answer 503 and the workers keep
//!   serving for the drain period, then stop. New flows are still judged by
//!   the rules while draining: the load balancer keeps sending new flows
//!   until its health checks have failed, and dropping them would cut those
//!   connections for nothing.

mod returns;
pub mod socket;
pub mod steer;

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::channel::{self, Receiver, Sender};

use self::returns::{outer_ends, Returns};
use super::control::{self, Control};
use super::metrics::{self, Metrics, ServeError};
use crate::engine::{Engine, GeneveInput, Judgement};
use crate::io::sys::{self, BpfInsn};
use crate::io::udp::{RawSocket, UdpSocket, UdpSource};
use crate::io::waker::{self, Waker};
use crate::io::{FrameSink, FrameSource, Frames};
use crate::policy::Verdict;
use crate::wire::{OuterEnds, ParseOptions};

/// Why the appliance could not start, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error(
        "opening the raw socket that returns packets (sgplane gwlb needs root or CAP_NET_RAW)"
    )]
    RawSocket(#[source] io::Error),
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error("starting a worker")]
    Spawn(#[source] io::Error),
    #[error("receiving GENEVE")]
    Receive(#[source] io::Error),
    #[error("waiting for GENEVE")]
    Wait(#[source] io::Error),
    #[error("a worker panicked")]
    Panicked,
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// `sgplane gwlb` options.
#[derive(Debug, Clone)]
pub struct GwlbOptions {
    /// Where GENEVE arrives (default 0.0.0.0:6081).
    pub listen: SocketAddr,
    /// Health-check endpoint: 200 while serving, 503 while draining.
    pub health: Option<SocketAddr>,
    /// Prometheus endpoint.
    pub metrics: Option<SocketAddr>,
    /// Worker threads (default: the number of cores).
    pub workers: usize,
    /// How long established flows keep being served after SIGTERM.
    pub drain: Duration,
    /// Reload the policy when its file changes.
    pub watch: bool,
}

/// Knobs the command line does not show, for measurements.
#[derive(Debug, Clone)]
pub struct Tuning {
    /// Datagrams per `recvmmsg` (default 64).
    pub batch: usize,
    /// Receive coalesced datagrams (UDP GRO; default on).
    pub gro: bool,
    /// Let the kernel deliver each datagram to its owner (default on);
    /// without it, half the datagrams of two workers are handed over.
    pub kernel_steering: bool,
    /// Return through UDP sockets with UDP GSO, the raw socket only where
    /// they cannot (default on); off: every return through the raw socket.
    pub udp_returns: bool,
    /// The most UDP return sockets a worker keeps open (default 1024;
    /// fewer if the descriptor limit does not allow that many).
    pub return_sockets: usize,
}

impl Default for Tuning {
    fn default() -> Tuning {
        Tuning {
            batch: 64,
            gro: true,
            kernel_steering: true,
            udp_returns: true,
            return_sockets: 1024,
        }
    }
}

/// The engine's parsing in this mode: GENEVE only as AWS sends it (SPEC §5).
pub const PARSE: ParseOptions = ParseOptions {
    decap_geneve: true,
    decap_vxlan: true,
    gwlb_strict: true,
};

/// The largest UDP datagram (or coalesced run) one receive slot takes.
const SLOT: usize = 65_535;
const SOCKET_BUFFER: usize = 16 << 20;
const IDLE_WAIT: Duration = Duration::from_millis(100);
const PUBLISH_EVERY: Duration = Duration::from_millis(100);
const EXPIRE_EVERY: Duration = Duration::from_secs(1);
/// Batches that may wait for one worker before more are dropped.
const MAILBOX: usize = 256;
/// The engine judges this many datagrams per call.
const CHUNK: usize = 64;

/// Runs the appliance until stopped; returns the final summary.
pub fn run(control: Arc<Control>, opts: GwlbOptions) -> Result<String, Error> {
    run_tuned(control, opts, &Tuning::default())
}

/// [`run`] with explicit [`Tuning`].
pub fn run_tuned(
    control: Arc<Control>,
    opts: GwlbOptions,
    tuning: &Tuning,
) -> Result<String, Error> {
    let n = opts.workers.max(1);
    let sockets = bind_group(opts.listen, n, tuning.gro)?;
    let bound = sockets[0].local_addr()?;
    let mut steering = false;
    if n > 1 && tuning.kernel_steering {
        match sockets[0].attach_steering(&steering_program(n)) {
            Ok(()) => steering = true,
            Err(e) => {
                tracing::warn!(error = %e, "no kernel steering: datagrams that reach the wrong worker are handed over")
            }
        }
    }
    let raws = (0..n)
        .map(|_| RawSocket::open(bound.is_ipv6(), SOCKET_BUFFER, Duration::from_millis(100)))
        .collect::<io::Result<Vec<_>>>()
        .map_err(Error::RawSocket)?;
    let budget = return_socket_budget(tuning.return_sockets, n);
    let metrics = Metrics::new(n, Arc::clone(&control), "gwlb");
    if let Some(addr) = opts.metrics {
        metrics::serve_metrics(addr, Arc::clone(&metrics))?;
    }
    if let Some(addr) = opts.health {
        metrics::serve_health(addr, Arc::clone(&control))?;
    }
    if opts.watch {
        control.spawn_watch_thread(Duration::from_secs(1))?;
    }
    let mesh = Mesh::new(n)?;
    let gro = sockets[0].gro();
    let udp_returns = tuning.udp_returns && budget > 0;
    tracing::info!(listen = %bound, workers = n, steering, gro, udp_returns, "serving as a GWLB target");

    let local = Some(opts.listen.ip()).filter(|a| !a.is_unspecified());
    let failure = std::thread::scope(|s| -> Result<Option<Error>, Error> {
        let mut handles = Vec::new();
        for (id, (udp, raw)) in sockets.into_iter().zip(raws).enumerate() {
            let shared = Shared {
                id,
                mesh: &mesh,
                control: &control,
                metrics: &metrics,
            };
            let batch = tuning.batch;
            let source = UdpSource::new(udp, batch, SLOT, local);
            let port = bound.port();
            let returns = Returns::new(raw, udp_returns, port, budget);
            let h = std::thread::Builder::new()
                .name(format!("gwlb-{id}"))
                .spawn_scoped(s, move || {
                    // A worker that fails or panics stops the others: the
                    // appliance exits rather than serving a share of the flows.
                    let _stop = StopOnDrop(shared.control);
                    Worker::new(shared, source, returns, port, batch).run()
                });
            match h {
                Ok(h) => handles.push(h),
                Err(e) => {
                    control.stop();
                    return Err(Error::Spawn(e));
                }
            }
        }
        let mut failure = None;
        for h in handles {
            match h.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failure = failure.or(Some(e)),
                Err(_) => failure = failure.or(Some(Error::Panicked)),
            }
        }
        Ok(failure)
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(metrics::summary(&metrics))
}

/// Stops every worker when dropped: at the end of a worker, however it ends.
struct StopOnDrop<'a>(&'a Control);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// UDP return sockets per worker: as asked, but together at most half the
/// descriptors the process may still open.
fn return_socket_budget(asked: usize, workers: usize) -> usize {
    let limit = sys::open_files_limit().unwrap_or(1024);
    let spare = limit.saturating_sub(64 + 4 * workers) / 2;
    let budget = asked.min(spare / workers);
    if budget < asked {
        tracing::info!(
            budget,
            asked,
            limit,
            "fewer UDP return sockets per worker: the descriptor limit (ulimit -n) is low"
        );
    }
    budget
}

/// `n` sockets on `listen`, in one `SO_REUSEPORT` group (port 0: one port
/// the kernel picks for all).
fn bind_group(listen: SocketAddr, n: usize, gro: bool) -> Result<Vec<UdpSocket>, Error> {
    let cannot = |source| Error::Listen {
        addr: listen,
        source,
    };
    // Another process in the group would silently take a share of the
    // datagrams, and of the flows' packets: the address must be free.
    if listen.port() != 0 {
        std::net::UdpSocket::bind(listen).map_err(cannot)?;
    }
    let mut sockets: Vec<UdpSocket> = Vec::with_capacity(n);
    let mut addr = listen;
    for _ in 0..n {
        let s = UdpSocket::bind(addr, gro, SOCKET_BUFFER).map_err(cannot)?;
        addr.set_port(s.local_addr()?.port());
        sockets.push(s);
    }
    Ok(sockets)
}

/// [`steer::program`] for `workers` as the socket option takes it.
fn steering_program(workers: usize) -> Vec<BpfInsn> {
    steer::program(workers)
        .iter()
        .map(|i| BpfInsn {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect()
}

/// How workers hand datagrams to each other, and wake each other up.
struct Mesh {
    mailboxes: Vec<Mailbox>,
    /// Spare batches, so handing over allocates nothing once warm.
    spare: (Sender<Frames>, Receiver<Frames>),
}

struct Mailbox {
    tx: Sender<Frames>,
    rx: Receiver<Frames>,
    waker: Waker,
    /// The worker is (about to be) blocked in `wait`.
    parked: AtomicBool,
}

impl Mesh {
    fn new(n: usize) -> io::Result<Mesh> {
        let mailboxes = (0..n)
            .map(|_| {
                let (tx, rx) = channel::bounded(MAILBOX);
                Ok(Mailbox {
                    tx,
                    rx,
                    waker: Waker::new()?,
                    parked: AtomicBool::new(false),
                })
            })
            .collect::<io::Result<_>>()?;
        Ok(Mesh {
            mailboxes,
            spare: channel::bounded(MAILBOX * n),
        })
    }

    fn spare(&self) -> Frames {
        self.spare
            .1
            .try_recv()
            .unwrap_or_else(|_| Frames::with_capacity(16 << 10, CHUNK))
    }

    fn recycle(&self, mut b: Frames) {
        b.clear();
        let _ = self.spare.0.try_send(b);
    }

    /// Gives `to` a batch; `false` (and the batch recycled) if its mailbox is full.
    fn hand_over(&self, to: usize, b: Frames) -> bool {
        let m = &self.mailboxes[to];
        let sent = match m.tx.try_send(b) {
            Ok(()) => true,
            Err(e) => {
                self.recycle(e.into_inner());
                false
            }
        };
        // Pairs with the fence in `park`: either the owner sees the batch
        // before it sleeps, or we see it parked and wake it.
        fence(Ordering::SeqCst);
        if m.parked.load(Ordering::Relaxed) {
            m.waker.wake();
        }
        sent
    }
}

/// What every worker shares.
#[derive(Clone, Copy)]
struct Shared<'a> {
    id: usize,
    mesh: &'a Mesh,
    control: &'a Control,
    metrics: &'a Metrics,
}

/// The largest inner packet GWLB sends (AWS: 8500 bytes)...
pub const MAX_GWLB_INNER: usize = 8500;
/// ...behind a GENEVE header with the three AWS options (8 + 32 bytes): a
/// larger datagram did not come from a GWLB as AWS documents it. It is
/// judged like any other and counted as oversized.
const MAX_GWLB_PAYLOAD: usize = MAX_GWLB_INNER + 40;

/// A worker's own counters, published with the engine's.
#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    received: u64,
    /// Datagrams whose inner packet is larger than GWLB's 8500 bytes.
    oversized: u64,
    handed_over: u64,
    handover_dropped: u64,
    unusable: u64,
}

struct Worker<'a> {
    sh: Shared<'a>,
    source: UdpSource,
    returns: Returns,
    /// The port datagrams arrive on.
    port: u16,
    engine: Engine,
    generation: u64,
    /// The datagrams this worker received and owns, and those it received
    /// for each other worker: UDP payloads as received, their ends in the
    /// metadata.
    own: Frames,
    outbox: Vec<Option<Frames>>,
    inbox: Vec<Frames>,
    judgements: Vec<Judgement>,
    allowed: Vec<u32>,
    c: Counters,
}

impl<'a> Worker<'a> {
    fn new(
        sh: Shared<'a>,
        source: UdpSource,
        returns: Returns,
        port: u16,
        batch: usize,
    ) -> Worker<'a> {
        let generation = sh.control.generation();
        let mut engine = Engine::new(sh.control.rules());
        engine.set_parse_options(PARSE);
        // Live traffic must not be able to pick where its entries lie.
        engine.randomize_conntrack_hash();
        let n = sh.mesh.mailboxes.len();
        let mut w = Worker {
            sh,
            source,
            returns,
            port,
            engine,
            generation,
            own: Frames::with_capacity(64 << 10, batch),
            outbox: (0..n).map(|_| None).collect(),
            inbox: Vec::new(),
            judgements: Vec::with_capacity(CHUNK),
            allowed: Vec::with_capacity(batch),
            c: Counters::default(),
        };
        w.share_conntrack();
        w
    }

    /// Each worker holds its share of `max_entries`: flows spread evenly
    /// over the owners, so the appliance as a whole holds about that many.
    fn share_conntrack(&mut self) {
        let n = self.sh.mesh.mailboxes.len() as u32;
        self.engine.share_conntrack(n);
    }

    fn run(mut self) -> Result<(), Error> {
        let (mut published, mut expired) = (Instant::now(), Instant::now());
        while !self.sh.control.should_stop() {
            let g = self.sh.control.generation();
            if g != self.generation {
                self.generation = g;
                self.engine.set_rules(self.sh.control.rules());
            }
            let received = self.route().map_err(Error::Receive)?;
            self.take_inbox();
            if received == 0 && self.inbox.is_empty() {
                self.park()?;
            } else {
                let now = control::now();
                let mut own = std::mem::take(&mut self.own);
                self.judge(&own, now);
                own.clear();
                self.own = own;
                while let Some(b) = self.inbox.pop() {
                    self.judge(&b, now);
                    self.sh.mesh.recycle(b);
                }
            }
            if published.elapsed() >= PUBLISH_EVERY {
                published = Instant::now();
                self.publish();
            }
            if expired.elapsed() >= EXPIRE_EVERY {
                expired = Instant::now();
                self.engine.expire(control::now());
                self.returns.expire();
            }
        }
        self.publish();
        Ok(())
    }

    /// Blocks until a datagram or a handed-over batch arrives, or a while passes.
    fn park(&mut self) -> Result<(), Error> {
        let m = &self.sh.mesh.mailboxes[self.sh.id];
        m.parked.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        let r = if m.rx.is_empty() {
            waker::wait(self.source.socket().as_fd(), &m.waker, IDLE_WAIT)
        } else {
            Ok(())
        };
        m.parked.store(false, Ordering::Relaxed);
        r.map_err(Error::Wait)
    }

    /// Receives what is waiting and copies each datagram into a batch:
    /// this worker's own, or one handed to its owner. Returns how many
    /// datagrams came.
    fn route(&mut self) -> io::Result<usize> {
        let n = self.outbox.len();
        let Worker {
            sh,
            source,
            own,
            outbox,
            c,
            port,
            ..
        } = self;
        let received = source.recv_burst(1, &mut |payload, meta| {
            // Truncated, from or to an address the socket did not say, or
            // more than one IP packet holds: there is no answering it.
            let whole = meta.wire_len as usize <= payload.len();
            let fits = outer_ends(meta, *port).is_some_and(|e| e.ip_len(payload.len()).is_ok());
            if !whole || !fits {
                c.unusable += 1;
                return;
            }
            c.received += 1;
            if payload.len() > MAX_GWLB_PAYLOAD {
                c.oversized += 1;
            }
            let owner = steer::owner(payload, n);
            let batch = if owner == sh.id {
                &mut *own
            } else {
                outbox[owner].get_or_insert_with(|| sh.mesh.spare())
            };
            if !batch.push(payload, meta) {
                c.unusable += 1;
            }
        })?;
        for (to, slot) in self.outbox.iter_mut().enumerate() {
            if let Some(b) = slot.take() {
                let k = b.len() as u64;
                if self.sh.mesh.hand_over(to, b) {
                    self.c.handed_over += k;
                } else {
                    self.c.handover_dropped += k;
                }
            }
        }
        Ok(received)
    }

    fn take_inbox(&mut self) {
        let rx = &self.sh.mesh.mailboxes[self.sh.id].rx;
        self.inbox.extend(rx.try_iter());
    }

    /// Judges a batch of datagrams where they lie and returns the allowed
    /// ones.
    fn judge(&mut self, batch: &Frames, now: u64) {
        self.allowed.clear();
        if batch.is_empty() {
            return;
        }
        let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
        let empty = GeneveInput {
            payload: &[],
            outer: OuterEnds {
                peer: unspecified,
                local: unspecified,
            },
            ts: now,
        };
        let mut start = 0;
        while start < batch.len() {
            let end = (start + CHUNK).min(batch.len());
            // The datagrams and where each is in the batch.
            let mut inputs = [empty; CHUNK];
            let mut at = [0u32; CHUNK];
            let mut n = 0;
            for i in start..end {
                let (payload, meta) = batch.get(i);
                // `route` took only datagrams with both ends.
                let Some(outer) = outer_ends(meta, self.port) else {
                    continue;
                };
                inputs[n] = GeneveInput {
                    payload,
                    outer,
                    ts: now,
                };
                at[n] = i as u32;
                n += 1;
            }
            self.judgements.clear();
            self.engine
                .process_geneve_batch(&inputs[..n], &mut self.judgements);
            for (j, &i) in self.judgements.iter().zip(&at) {
                if j.verdict == Verdict::Allow {
                    self.allowed.push(i);
                }
            }
            start = end;
        }
        if !self.allowed.is_empty() {
            self.returns.send_burst(batch, &self.allowed);
        }
    }

    fn publish(&self) {
        let (c, r) = (&self.c, self.returns.counters());
        self.sh.metrics.publish(
            self.sh.id,
            &self.engine,
            &[
                ("gwlb_received_packets_total", c.received),
                ("gwlb_oversized_packets_total", c.oversized),
                ("gwlb_returned_packets_total", r.returned),
                ("gwlb_returned_bytes_total", r.returned_bytes),
                ("gwlb_returned_raw_packets_total", r.raw),
                ("gwlb_return_sends_total", r.sends),
                ("gwlb_return_sockets_opened_total", r.sockets_opened),
                ("gwlb_return_socket_failures_total", r.socket_failures),
                ("gwlb_handed_over_packets_total", c.handed_over),
                ("gwlb_handover_dropped_packets_total", c.handover_dropped),
                ("gwlb_send_errors_total", r.send_errors),
                ("gwlb_unusable_datagrams_total", c.unusable),
            ],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::udp::RecvBatch;
    use crate::wire::{build, ethernet, ipv4, udp};
    use std::net::IpAddr;

    #[test]
    fn the_kernel_delivers_each_datagram_to_its_owner() {
        let group: Vec<UdpSocket> = {
            let first = UdpSocket::bind("127.0.0.1:0".parse().unwrap(), false, 1 << 20).unwrap();
            let addr = first.local_addr().unwrap();
            let mut g = vec![first];
            for _ in 1..3 {
                g.push(UdpSocket::bind(addr, false, 1 << 20).unwrap());
            }
            g
        };
        group[0].attach_steering(&steering_program(3)).unwrap();
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
            let headers = ethernet::HEADER_LEN + ipv4::HEADER_LEN + udp::HEADER_LEN;
            let payload = outer[headers..].to_vec();
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
                    assert_eq!(steer::owner(bytes, 3), i);
                    got += 1;
                }
            }
            if got == sent.len() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(got, sent.len());
        let owners: std::collections::BTreeSet<usize> =
            sent.iter().map(|p| steer::owner(p, 3)).collect();
        assert_eq!(owners.len(), 3, "the flows cover every socket");
    }
}
