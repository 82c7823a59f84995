//! How a worker sends its returns (SPEC §5): from the address the datagram
//! was sent to and the port the load balancer sent it from, to the node and
//! the port it arrived on, with the GENEVE header and inner packet as
//! received. [`Returns`] is the worker's [`FrameSink`]: it sends frames of
//! a [`Frames`] batch, each a UDP payload as received with its ends in the
//! metadata ([`FrameMeta::peer`], [`FrameMeta::local`]).
//!
//! By default through UDP sockets, one per (local address, load balancer
//! source port, node) — a [`ReturnSocket`], bound and connected to exactly
//! those ends — opened on first use and closed after about
//! [`IDLE_SWEEPS`] seconds unused. The returns of one batch that share a
//! socket go down with one `sendmmsg`, each run of equal-size datagrams as
//! one UDP GSO message: the kernel writes the headers, and the run crosses
//! the stack (and loopback) as one packet, cut apart only where it leaves
//! (or not at all, for a receiver with UDP GRO). The payloads go from the
//! batch as they are. The order of the returns of one socket is kept;
//! returns of different sockets may pass each other.
//!
//! The raw socket takes what a UDP socket cannot: a key whose socket cannot
//! be bound (the port is taken on this host, or is the port the appliance
//! listens on), one whose socket refused a send (no UDP GSO on that route,
//! ...), keys past the worker's socket budget, and everything when UDP
//! returns are turned off. Its outer IP and UDP headers are written at send
//! time ([`OuterEnds::emit_return`]) and sent with the payload from where
//! it lies. A refused key stays on the raw socket until it has been idle
//! for a while.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::time::Duration;

use super::socket::{
    GsoBatch, RawSocket, ReturnSocket, SendBatch, Sent, MAX_SEGMENTS, MAX_SEND_PAYLOAD,
};
use crate::io::{FrameMeta, FrameSink, Frames};
use crate::wire::packet::{OuterEnds, OUTER_HEADERS_MAX};

/// Calls of [`Returns::expire`] (one a second) a key may stay unused before
/// its socket is closed, or its refusal forgotten.
pub const IDLE_SWEEPS: u32 = 10;
const SEND_BUFFER: usize = 1 << 20;
const SEND_TIMEOUT: Duration = Duration::from_millis(100);
/// Raw packets per `sendmmsg`.
const RAW_CHUNK: usize = 64;
/// Remembered refusals, as a multiple of the socket budget.
const REFUSALS_PER_SOCKET: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// The socket in this slot.
    Udp(u32),
    Raw,
}

#[derive(Debug)]
struct Entry {
    route: Route,
    /// The sweep it was last used in.
    used: u32,
}

/// What a worker's returns did.
#[derive(Debug, Default, Clone, Copy)]
pub struct ReturnCounters {
    /// Packets returned, and their bytes with the outer IP and UDP headers.
    pub returned: u64,
    pub returned_bytes: u64,
    /// Packets the kernel would not take.
    pub send_errors: u64,
    /// Packets returned through the raw socket.
    pub raw: u64,
    /// Messages handed to the kernel: one per raw packet, one per UDP GSO
    /// run or single UDP datagram.
    pub sends: u64,
    /// UDP sockets opened, and keys for which none could be.
    pub sockets_opened: u64,
    pub socket_failures: u64,
}

/// The outer ends of a received datagram, from its metadata: who sent it,
/// and the address it was sent to with `port`, the port it arrived on.
/// `None` where the socket did not say.
pub fn outer_ends(meta: &FrameMeta, port: u16) -> Option<OuterEnds> {
    Some(OuterEnds {
        peer: meta.peer?,
        local: SocketAddr::new(meta.local?, port),
    })
}

/// A worker's way out: its raw socket and its UDP sockets.
pub struct Returns {
    raw: RawSocket,
    raw_tx: SendBatch,
    gso: GsoBatch,
    udp: bool,
    /// The port datagrams arrive on: the returns' destination port.
    port: u16,
    /// The most UDP sockets this worker keeps open.
    budget: usize,
    routes: HashMap<OuterEnds, Entry, foldhash::fast::RandomState>,
    /// Open sockets and their keys, by slot; free slots are `None`.
    sockets: Vec<Option<(OuterEnds, ReturnSocket)>>,
    free: Vec<u32>,
    sweep: u32,
    /// This batch's UDP returns: (socket slot, frame).
    plan: Vec<(u32, u32)>,
    /// This batch's raw returns: frames.
    raw_frames: Vec<u32>,
    /// The outer headers of up to [`RAW_CHUNK`] raw returns, written at
    /// send time.
    headers: Vec<[u8; OUTER_HEADERS_MAX]>,
    runs: Vec<usize>,
    c: ReturnCounters,
}

impl Returns {
    /// `udp`: return through UDP sockets where possible, at most `budget`
    /// of them open; else everything through `raw`. `port`: the one
    /// datagrams arrive on.
    pub fn new(raw: RawSocket, udp: bool, port: u16, budget: usize) -> Returns {
        Returns {
            raw,
            raw_tx: SendBatch::new(),
            gso: GsoBatch::new(),
            udp: udp && budget > 0,
            port,
            budget,
            routes: HashMap::default(),
            sockets: Vec::new(),
            free: Vec::new(),
            sweep: 0,
            plan: Vec::new(),
            raw_frames: Vec::new(),
            headers: vec![[0; OUTER_HEADERS_MAX]; RAW_CHUNK],
            runs: Vec::new(),
            c: ReturnCounters::default(),
        }
    }

    pub fn counters(&self) -> ReturnCounters {
        self.c
    }

    /// Closes the sockets of keys unused for [`IDLE_SWEEPS`] calls, and
    /// forgets refusals as old. Call once a second.
    pub fn expire(&mut self) {
        self.sweep = self.sweep.wrapping_add(1);
        let (sweep, sockets, free) = (self.sweep, &mut self.sockets, &mut self.free);
        self.routes.retain(|_, e| {
            let keep = sweep.wrapping_sub(e.used) < IDLE_SWEEPS;
            if let (false, Route::Udp(slot)) = (keep, e.route) {
                sockets[slot as usize] = None;
                free.push(slot);
            }
            keep
        });
    }

    /// UDP sockets open.
    pub fn open_sockets(&self) -> usize {
        self.sockets.len() - self.free.len()
    }

    fn route(&mut self, key: OuterEnds) -> Route {
        if let Some(e) = self.routes.get_mut(&key) {
            e.used = self.sweep;
            return e.route;
        }
        if self.open_sockets() >= self.budget {
            return Route::Raw;
        }
        let route = self.open(key);
        if route == Route::Raw && self.routes.len() >= self.budget * REFUSALS_PER_SOCKET {
            return route;
        }
        let used = self.sweep;
        self.routes.insert(key, Entry { route, used });
        route
    }

    fn open(&mut self, key: OuterEnds) -> Route {
        let source = key.peer.port();
        // A socket on the listening port would take a share of what
        // arrives there (and port 0 means "any").
        let opened = if source == self.port || source == 0 {
            Err(std::io::Error::from(std::io::ErrorKind::AddrInUse))
        } else {
            ReturnSocket::open(
                SocketAddr::new(key.local.ip(), source),
                SocketAddr::new(key.peer.ip(), key.local.port()),
                SEND_BUFFER,
                SEND_TIMEOUT,
            )
        };
        match opened {
            Ok(s) => {
                self.c.sockets_opened += 1;
                let slot = match self.free.pop() {
                    Some(slot) => {
                        self.sockets[slot as usize] = Some((key, s));
                        slot
                    }
                    None => {
                        self.sockets.push(Some((key, s)));
                        (self.sockets.len() - 1) as u32
                    }
                };
                Route::Udp(slot)
            }
            Err(e) => {
                tracing::debug!(local = %key.local.ip(), port = source, error = %e, "returns through the raw socket");
                self.c.socket_failures += 1;
                Route::Raw
            }
        }
    }

    fn send_udp(&mut self, frames: &Frames) {
        let mut at = 0;
        while at < self.plan.len() {
            let slot = self.plan[at].0;
            let end = at + self.plan[at..].iter().take_while(|p| p.0 == slot).count();
            let planned = &self.plan[at..end];
            at = end;
            let payload = |&(_, i): &(u32, u32)| frames.frame(i as usize);
            self.runs.clear();
            plan_runs(planned.iter().map(|f| payload(f).len()), &mut self.runs);
            let Some((key, socket)) = &self.sockets[slot as usize] else {
                continue;
            };
            let key = *key;
            let outcome = self
                .gso
                .send(socket.as_fd(), planned.iter().map(payload), &self.runs);
            let mut refused = false;
            let mut k = 0;
            for (&n, sent) in self.runs.iter().zip(outcome) {
                let run = &planned[k..k + n];
                k += n;
                match sent {
                    Sent::Sent => {
                        self.c.returned += n as u64;
                        self.c.sends += 1;
                        for f in run {
                            let len = payload(f).len();
                            self.c.returned_bytes += key.ip_len(len).unwrap_or(len) as u64;
                        }
                    }
                    Sent::Lost => self.c.send_errors += n as u64,
                    Sent::Refused(_) => {
                        refused = true;
                        self.raw_frames.extend(run.iter().map(|&(_, i)| i));
                    }
                }
            }
            if refused {
                // This key goes through the raw socket from now on.
                self.sockets[slot as usize] = None;
                self.free.push(slot);
                if let Some(e) = self.routes.get_mut(&key) {
                    e.route = Route::Raw;
                }
            }
        }
    }

    /// Sends the raw returns, each with outer headers written for it in
    /// front of its payload as it lies in the batch.
    fn send_raw(&mut self, frames: &Frames) {
        let unspecified = SocketAddr::new(IpAddr::from([0, 0, 0, 0]), 0);
        let mut sends = [(0u32, 0usize, unspecified); RAW_CHUNK];
        for group in self.raw_frames.chunks(RAW_CHUNK) {
            let mut n = 0;
            for &i in group {
                let (payload, meta) = frames.get(i as usize);
                let written = outer_ends(meta, self.port).and_then(|e| {
                    let len = e.emit_return(payload, &mut self.headers[n])?;
                    // Raw sockets have no port.
                    Some((len, SocketAddr::new(e.peer.ip(), 0)))
                });
                match written {
                    Some((len, to)) => {
                        sends[n] = (i, len, to);
                        n += 1;
                    }
                    // No ends, or none a packet could have: never sent.
                    None => self.c.send_errors += 1,
                }
            }
            let packets = sends[..n]
                .iter()
                .zip(&self.headers)
                .map(|(&(i, len, to), h)| ([&h[..len], frames.frame(i as usize)], to));
            let r = self.raw_tx.send_gather(self.raw.as_fd(), packets);
            self.c.returned += r.sent as u64;
            self.c.raw += r.sent as u64;
            self.c.sends += r.sent as u64;
            self.c.returned_bytes += r.sent_bytes as u64;
            self.c.send_errors += r.failed as u64;
        }
    }
}

impl FrameSink for Returns {
    /// Sends the returns of frames `which` of `frames` (each a GENEVE
    /// payload as received, with its ends in the metadata), in arrival
    /// order; returns how many went. A frame without ends is never sent
    /// (counted as a send error).
    fn send_burst(&mut self, frames: &Frames, which: &[u32]) -> usize {
        let before = self.c.returned;
        self.plan.clear();
        self.raw_frames.clear();
        if self.udp {
            // Frames of one coalesced run share their key: look it up once.
            let mut last: Option<(OuterEnds, Route)> = None;
            for &i in which {
                let Some(key) = outer_ends(frames.meta(i as usize), self.port) else {
                    self.c.send_errors += 1;
                    continue;
                };
                let route = match last {
                    Some((k, r)) if k == key => r,
                    _ => {
                        let r = self.route(key);
                        last = Some((key, r));
                        r
                    }
                };
                match route {
                    Route::Udp(slot) => self.plan.push((slot, i)),
                    Route::Raw => self.raw_frames.push(i),
                }
            }
            // By socket, each socket's frames in arrival order.
            self.plan.sort_unstable();
            self.send_udp(frames);
        } else {
            self.raw_frames.extend_from_slice(which);
        }
        self.send_raw(frames);
        (self.c.returned - before) as usize
    }
}

/// Cuts datagrams of these lengths, in order, into UDP GSO runs: each run
/// at most [`MAX_SEGMENTS`] datagrams and [`MAX_SEND_PAYLOAD`] bytes, all
/// of the first one's length but the last, which may be shorter.
fn plan_runs(lens: impl IntoIterator<Item = usize>, runs: &mut Vec<usize>) {
    let (mut n, mut segment, mut bytes, mut closed) = (0, 0, 0, false);
    for len in lens {
        if n > 0 && !closed && len <= segment && n < MAX_SEGMENTS && bytes + len <= MAX_SEND_PAYLOAD
        {
            n += 1;
            bytes += len;
            closed = len < segment;
        } else {
            if n > 0 {
                runs.push(n);
            }
            (n, segment, bytes, closed) = (1, len, len, false);
        }
    }
    if n > 0 {
        runs.push(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(lens: &[usize]) -> Vec<usize> {
        let mut r = Vec::new();
        plan_runs(lens.iter().copied(), &mut r);
        r
    }

    #[test]
    fn equal_datagrams_go_as_one_run_ended_by_a_shorter_one() {
        assert_eq!(runs(&[]), Vec::<usize>::new());
        assert_eq!(runs(&[100]), vec![1]);
        assert_eq!(runs(&[100, 100, 100, 40]), vec![4]);
        assert_eq!(runs(&[100, 40, 100]), vec![2, 1]);
        assert_eq!(runs(&[100, 100, 200, 200, 200]), vec![2, 3]);
        assert_eq!(runs(&[40, 40, 40, 40, 30, 30]), vec![5, 1]);
    }

    #[test]
    fn a_run_stops_at_the_kernels_limits() {
        assert_eq!(runs(&[10; 150]), vec![64, 64, 22]);
        let big = 1400;
        let per = MAX_SEND_PAYLOAD / big;
        assert_eq!(runs(&vec![big; per + 1]), vec![per, 1]);
        assert_eq!(runs(&[40_000, 40_000]), vec![1, 1]);
    }

    /// Both ways out send each payload as it lies in the batch, from the
    /// address it was sent to and the load balancer's source port, to the
    /// node and the port it arrived on: over IPv4 and IPv6 loopback, through
    /// a UDP socket and through the raw socket (its headers written at send
    /// time). Needs a raw socket (root) and IPv6 on loopback.
    #[test]
    fn both_ways_out_send_the_payload_as_it_lies() {
        for (local, node) in [("127.0.0.1", "127.0.0.1"), ("::1", "::1")] {
            let local: IpAddr = local.parse().unwrap();
            let Ok(rx) = std::net::UdpSocket::bind(SocketAddr::new(node.parse().unwrap(), 0))
            else {
                eprintln!("SKIPPED: no {node}");
                continue;
            };
            rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let node = rx.local_addr().unwrap();
            // The load balancer's source port: one taken by nobody.
            let lb_port = std::net::UdpSocket::bind(SocketAddr::new(local, 0))
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let peer = SocketAddr::new(node.ip(), lb_port);
            for udp in [true, false] {
                let raw = match RawSocket::open(local.is_ipv6(), 1 << 20, SEND_TIMEOUT) {
                    Ok(raw) => raw,
                    Err(e) => return eprintln!("SKIPPED: no raw socket ({e})"),
                };
                // Datagrams arrive on the node's port: the returns go there.
                let mut returns = Returns::new(raw, udp, node.port(), 4);
                let mut frames = Frames::default();
                let payloads: Vec<Vec<u8>> = (0..5u8)
                    .map(|k| vec![k; 30 + 2 * usize::from(k % 2)])
                    .collect();
                let meta = FrameMeta {
                    peer: Some(peer),
                    local: Some(local),
                    ..FrameMeta::default()
                };
                for p in &payloads {
                    assert!(frames.push(p, &meta));
                }
                frames.push(b"no ends", &FrameMeta::default());
                assert_eq!(returns.send_burst(&frames, &[0, 1, 5, 2, 3, 4]), 5);
                let mut buf = [0u8; 128];
                for p in &payloads {
                    let (n, from) = rx.recv_from(&mut buf).unwrap();
                    assert_eq!((from, &buf[..n]), (SocketAddr::new(local, lb_port), &p[..]));
                }
                let c = returns.counters();
                assert_eq!((c.returned, c.send_errors), (5, 1));
                assert_eq!(c.raw, if udp { 0 } else { 5 });
                let headers = if local.is_ipv4() { 28 } else { 48 };
                let bytes: usize = payloads.iter().map(|p| p.len() + headers).sum();
                assert_eq!(c.returned_bytes, bytes as u64);
            }
        }
    }
}
