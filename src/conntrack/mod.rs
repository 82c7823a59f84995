//! Connection tracking (SPEC §2 steps 2 and 5-9): which flows exist, in which
//! state, until when.
//!
//! A flow is keyed by (zone, the two addresses, the two ports or the ICMP echo
//! identifier, protocol) in canonical order, so a packet of either direction
//! finds its entry with one hash. TCP follows the Linux nf_conntrack state
//! table with loose pick-up ([`tcp`]); UDP gets the `udp_stream` timeout once
//! it has seen more than one packet each way; ICMP echo is keyed by
//! identifier; other protocols by (src, dst, proto). Entries expire after
//! their timeout of inactivity; time is whatever the caller says it is.
//!
//! The first fragment's verdict is remembered by (zone, src, dst, proto, IP id)
//! for the fragments that follow ([`FragmentMemory`]).

pub mod table;
pub mod tcp;

use std::collections::HashMap;
use std::net::IpAddr;

use table::{flag, Addr, Key, Slot, Table};
use tcp::{TcpState, Transition};

use crate::policy::ConntrackSettings;

/// Nanoseconds since the Unix epoch.
pub type Nanos = u64;

/// Inactivity timeouts in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub tcp_established: u64,
    pub tcp_transitory: u64,
    pub udp: u64,
    pub udp_stream: u64,
    pub icmp: u64,
    pub other: u64,
}

impl From<&ConntrackSettings> for Timeouts {
    fn from(c: &ConntrackSettings) -> Timeouts {
        let ms = |s: u32| u64::from(s) * 1000;
        Timeouts {
            tcp_established: ms(c.tcp_established),
            tcp_transitory: ms(c.tcp_transitory),
            udp: ms(c.udp),
            udp_stream: ms(c.udp_stream),
            icmp: ms(c.icmp),
            other: ms(c.other),
        }
    }
}

/// A packet's flow, as the packet travels (source first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowKey {
    pub zone: u64,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Ports; for ICMP echo both are the identifier; 0 for other protocols.
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
}

/// What kind of packet is being tracked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Tcp {
        flags: u8,
    },
    Udp,
    /// ICMP or ICMPv6 echo request (`request`) or reply.
    Echo {
        request: bool,
    },
    Other,
}

/// What the table says about a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It belongs to a tracked flow and passes.
    Tracked,
    /// It belongs to a tracked TCP flow but is invalid in its state.
    Invalid,
    /// No live entry: the rules decide, and an allowed packet may open one.
    New,
    /// An entry exists but this packet does not fit it (an echo reply sent by
    /// the requester): the rules decide and no entry is opened.
    Stray,
}

/// The table is full: a new flow is denied (`conntrack-full`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// A packet's key, canonicalised and hashed once.
#[derive(Debug, Clone, Copy)]
pub struct Prepared {
    key: PKey,
    hash: u64,
    src_is_a: bool,
}

#[derive(Debug, Clone, Copy)]
enum PKey {
    V4(Key<u32>),
    V6(Key<[u64; 2]>),
}

fn v6_words(a: &std::net::Ipv6Addr) -> [u64; 2] {
    let o = a.octets();
    [
        u64::from_be_bytes(o[..8].try_into().expect("8 bytes")),
        u64::from_be_bytes(o[8..].try_into().expect("8 bytes")),
    ]
}

/// The connection-tracking table.
pub struct Conntrack {
    v4: Table<u32>,
    v6: Table<[u64; 2]>,
    max_entries: usize,
    timeouts: Timeouts,
    /// Milliseconds since the Unix epoch that slot times count from.
    epoch: Option<u64>,
    /// No entry can expire before this (relative ms): a full table is not
    /// swept again until then.
    next_expiry: u64,
}

/// Slot times are rebased when they pass this (about 24 days).
const REBASE_AT: u64 = 1 << 31;

impl Conntrack {
    pub fn new(settings: &ConntrackSettings) -> Conntrack {
        let max = settings.max_entries as usize;
        Conntrack {
            v4: Table::new(max),
            v6: Table::new(max),
            max_entries: max,
            timeouts: Timeouts::from(settings),
            epoch: None,
            next_expiry: 0,
        }
    }

    /// Applies new limits and timeouts (a policy reload); entries stay.
    pub fn reconfigure(&mut self, settings: &ConntrackSettings) {
        self.max_entries = settings.max_entries as usize;
        self.timeouts = Timeouts::from(settings);
        self.next_expiry = 0;
    }

    /// Live entries and entries expired but not yet swept.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    /// Heap bytes of both tables.
    pub fn memory_bytes(&self) -> usize {
        self.v4.memory_bytes() + self.v6.memory_bytes()
    }

    /// Canonicalises and hashes a packet's key.
    #[inline]
    pub fn prepare(&self, k: &FlowKey) -> Prepared {
        match (k.src, k.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let (key, src_is_a) = Key::canonical(
                    k.zone,
                    u32::from(s),
                    u32::from(d),
                    k.sport,
                    k.dport,
                    k.proto,
                );
                Prepared {
                    hash: self.v4.hash(&key),
                    key: PKey::V4(key),
                    src_is_a,
                }
            }
            (s, d) => {
                let w = |a: IpAddr| match a {
                    IpAddr::V4(v4) => v6_words(&v4.to_ipv6_mapped()),
                    IpAddr::V6(v6) => v6_words(&v6),
                };
                let (key, src_is_a) = Key::canonical(k.zone, w(s), w(d), k.sport, k.dport, k.proto);
                Prepared {
                    hash: self.v6.hash(&key),
                    key: PKey::V6(key),
                    src_is_a,
                }
            }
        }
    }

    /// Brings the packet's slot into the cache.
    #[inline]
    pub fn prefetch(&self, p: &Prepared) {
        match p.key {
            PKey::V4(_) => self.v4.prefetch(p.hash),
            PKey::V6(_) => self.v6.prefetch(p.hash),
        }
    }

    /// Relative milliseconds for an absolute time, rebasing slot times when needed.
    fn clock(&mut self, now: Nanos) -> u32 {
        let ms = now / 1_000_000;
        let epoch = *self.epoch.get_or_insert(ms);
        let mut rel = ms.saturating_sub(epoch);
        if rel >= REBASE_AT {
            let shift = rel - REBASE_AT / 2;
            self.epoch = Some(epoch + shift);
            let s = shift.min(u64::from(u32::MAX)) as u32;
            self.v4.for_each_mut(|e| e.last = e.last.saturating_sub(s));
            self.v6.for_each_mut(|e| e.last = e.last.saturating_sub(s));
            self.next_expiry = self.next_expiry.saturating_sub(shift);
            rel -= shift;
        }
        rel as u32
    }

    /// Looks a packet up and, if it belongs to a live flow, advances the flow's state.
    pub fn track(&mut self, p: &Prepared, class: Class, now: Nanos) -> Outcome {
        let now = self.clock(now);
        let timeouts = self.timeouts;
        match p.key {
            PKey::V4(k) => track_in(&mut self.v4, &k, p, class, now, &timeouts),
            PKey::V6(k) => track_in(&mut self.v6, &k, p, class, now, &timeouts),
        }
    }

    /// Whether a live entry exists for the key (for relating ICMP errors);
    /// it is not refreshed.
    pub fn is_tracked(&mut self, p: &Prepared, now: Nanos) -> bool {
        let now = self.clock(now);
        let t = &self.timeouts;
        match p.key {
            PKey::V4(k) => self
                .v4
                .find(p.hash, &k)
                .is_some_and(|i| !expired(self.v4.slot(i), now, t)),
            PKey::V6(k) => self
                .v6
                .find(p.hash, &k)
                .is_some_and(|i| !expired(self.v6.slot(i), now, t)),
        }
    }

    /// Opens an entry for a new flow the rules allowed. `track` must have
    /// returned `New` for this packet.
    pub fn open(&mut self, p: &Prepared, class: Class, now: Nanos) -> Result<(), Full> {
        let now_rel = self.clock(now);
        let tcp = match class {
            Class::Tcp { flags } => tcp::open(flags).unwrap_or(TcpState::Established) as u8,
            _ => 0,
        };
        let flags = if p.src_is_a { flag::ORIG_IS_A } else { 0 };
        let mut len = self.len();
        let grows = match p.key {
            PKey::V4(_) => (self.v4.len() + 1) * 4 > self.v4.capacity() * 3,
            PKey::V6(_) => (self.v6.len() + 1) * 4 > self.v6.capacity() * 3,
        };
        if (len >= self.max_entries || grows) && u64::from(now_rel) >= self.next_expiry {
            self.sweep(now_rel);
            len = self.len();
        }
        if len >= self.max_entries {
            return Err(Full);
        }
        match p.key {
            PKey::V4(key) => {
                self.v4.insert(
                    p.hash,
                    Slot {
                        key,
                        last: now_rel,
                        tcp,
                        flags,
                        counts: 1,
                    },
                );
            }
            PKey::V6(key) => {
                self.v6.insert(
                    p.hash,
                    Slot {
                        key,
                        last: now_rel,
                        tcp,
                        flags,
                        counts: 1,
                    },
                );
            }
        }
        Ok(())
    }

    /// Removes every expired entry; returns how many.
    pub fn expire(&mut self, now: Nanos) -> usize {
        let now = self.clock(now);
        self.sweep(now)
    }

    fn sweep(&mut self, now: u32) -> usize {
        let t = self.timeouts;
        let mut next = u64::MAX;
        let mut keep = |proto: u8, tcp: u8, counts: u8, last: u32| {
            let until = u64::from(last) + timeout_of(proto, tcp, counts, &t);
            let kept = u64::from(now) < until;
            if kept {
                next = next.min(until);
            }
            kept
        };
        let n = self
            .v4
            .retain(|s| keep(s.key.proto, s.tcp, s.counts, s.last))
            + self
                .v6
                .retain(|s| keep(s.key.proto, s.tcp, s.counts, s.last));
        self.next_expiry = next;
        n
    }

    /// Every live entry, for tests and diagnostics: (protocol, TCP state, seen reply).
    pub fn entries(&self) -> Vec<(u8, TcpState, bool)> {
        let mut out = Vec::new();
        let mut push = |proto: u8, tcp: u8, flags: u8| {
            out.push((proto, TcpState::from_u8(tcp), flags & flag::SEEN_REPLY != 0));
        };
        for i in 0..self.v4.capacity() {
            let s = self.v4.slot(i);
            if s.occupied() {
                push(s.key.proto, s.tcp, s.flags);
            }
        }
        for i in 0..self.v6.capacity() {
            let s = self.v6.slot(i);
            if s.occupied() {
                push(s.key.proto, s.tcp, s.flags);
            }
        }
        out
    }
}

fn timeout_of(proto: u8, tcp: u8, counts: u8, t: &Timeouts) -> u64 {
    match proto {
        6 if tcp == TcpState::Established as u8 => t.tcp_established,
        6 => t.tcp_transitory,
        // More than one packet each way: a stream.
        17 if counts & 0x0f > 1 && counts >> 4 > 1 => t.udp_stream,
        17 => t.udp,
        1 | 58 => t.icmp,
        _ => t.other,
    }
}

#[inline]
fn expired<A>(s: &Slot<A>, now: u32, t: &Timeouts) -> bool {
    u64::from(now.saturating_sub(s.last)) >= timeout_of(s.key.proto, s.tcp, s.counts, t)
}

#[inline]
fn track_in<A: Addr>(
    t: &mut Table<A>,
    k: &Key<A>,
    p: &Prepared,
    class: Class,
    now: u32,
    to: &Timeouts,
) -> Outcome {
    let Some(i) = t.find(p.hash, k) else {
        return Outcome::New;
    };
    if expired(t.slot(i), now, to) {
        t.remove(i);
        return Outcome::New;
    }
    let s = t.slot_mut(i);
    let reply = p.src_is_a != (s.flags & flag::ORIG_IS_A != 0);
    match class {
        Class::Tcp { flags } => {
            let old = TcpState::from_u8(s.tcp);
            match tcp::transition(old, reply, flags) {
                Transition::Invalid => return Outcome::Invalid,
                Transition::Ignore => return Outcome::Tracked,
                // A SYN reopening a closed connection: the old entry goes and
                // the SYN is a new flow (Linux kills the entry and repeats).
                Transition::To(TcpState::SynSent)
                    if matches!(old, TcpState::TimeWait | TcpState::Close) =>
                {
                    t.remove(i);
                    return Outcome::New;
                }
                // A RST before any reply (the reply may be the RST itself):
                // Linux deletes the entry at once ("if only reply is a RST, we
                // can consider ourselves not to have an established
                // connection") and lets the RST through.
                Transition::To(_) if flags & tcp::RST != 0 && s.flags & flag::SEEN_REPLY == 0 => {
                    t.remove(i);
                    return Outcome::Tracked;
                }
                Transition::To(new) => s.tcp = new as u8,
            }
        }
        Class::Echo { request } if request == reply => return Outcome::Stray,
        _ => {}
    }
    if reply {
        s.flags |= flag::SEEN_REPLY;
        if s.counts < 0xf0 {
            s.counts += 0x10;
        }
    } else if s.counts & 0x0f < 0x0f {
        s.counts += 1;
    }
    s.last = now.max(s.last);
    Outcome::Tracked
}

/// The key of a remembered fragment verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragmentKey {
    pub zone: u64,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    pub id: u32,
}

/// Verdicts of first fragments, for the fragments that follow (SPEC §2.7).
#[derive(Default)]
pub struct FragmentMemory {
    map: HashMap<FragmentKey, (bool, Nanos), foldhash::fast::RandomState>,
}

/// How long a first fragment's verdict is remembered (Linux `ipfrag_time`).
pub const FRAGMENT_TIMEOUT: Nanos = 30_000_000_000;
/// The most verdicts remembered at once.
pub const FRAGMENT_CAPACITY: usize = 65_536;

impl FragmentMemory {
    pub fn remember(&mut self, k: FragmentKey, allowed: bool, now: Nanos) {
        if self.map.len() >= FRAGMENT_CAPACITY {
            self.map
                .retain(|_, (_, t)| now.saturating_sub(*t) < FRAGMENT_TIMEOUT);
            if self.map.len() >= FRAGMENT_CAPACITY {
                return;
            }
        }
        self.map.insert(k, (allowed, now));
    }

    /// The remembered verdict (true = allowed) of the datagram's first fragment.
    pub fn recall(&self, k: &FragmentKey, now: Nanos) -> Option<bool> {
        self.map
            .get(k)
            .filter(|(_, t)| now.saturating_sub(*t) < FRAGMENT_TIMEOUT)
            .map(|(a, _)| *a)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
