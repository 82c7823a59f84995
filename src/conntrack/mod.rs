//! Connection tracking (SPEC §2 steps 2 and 5-9): which flows exist, in which
//! state, until when.
//!
//! A flow is keyed by (zone, the two addresses, the two ports or the ICMP echo
//! identifier, protocol) in canonical order, so a packet of either direction
//! finds its entry with one hash. TCP follows the Linux nf_conntrack state
//! table with loose pick-up ([`tcp`]); UDP gets the `udp_stream` timeout once
//! it has seen more than one packet each way; ICMP echo is keyed by
//! identifier; other protocols by (src, dst, proto). Entries expire after
//! their timeout of inactivity; time is whatever the caller says it is, and
//! never goes backwards (see [`Conntrack::track`]).
//!
//! An entry is *assured* once packets went both ways (TCP: once the
//! connection is established and answered); until then it gets the short
//! timeout (`tcp_transitory`, `udp`) and is what a full table evicts to make
//! room for a new flow (early drop, SPEC §2.8 and §9.3).
//!
//! Each end of a flow that is an interface keeps its own state (SPEC §9.3):
//! one entry holds the flow, naming the interfaces that track it
//! ([`Ends`]); each counts against its own allowance (`conntrack_max`) and
//! the entry takes the shortest of their timeouts (the first end to forget
//! the flow ends it; a later packet is a new flow to the rules of both).
//!
//! The first fragment's verdict is remembered by (zone, src, dst, proto, IP id)
//! for the fragments that follow ([`FragmentMemory`]).

mod fragments;
#[allow(unsafe_code)] // a prefetch of the home slot, and madvise for huge pages
pub mod table;
pub mod tcp;

pub use fragments::{FragmentKey, FragmentMemory, FRAGMENT_CAPACITY, FRAGMENT_TIMEOUT};

use std::net::IpAddr;

pub use table::Ends;
use table::{flag, Addr, Key, Slot, Stamp, Table};
use tcp::{TcpState, Transition};

pub use crate::base::Nanos;

/// What a table is given: its size, what it does when full, and its
/// inactivity timeouts. The policy's `[conntrack]` section converts into
/// this (`policy::ConntrackSettings::config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Entries the table holds at most.
    pub max_entries: u32,
    pub when_full: WhenFull,
    pub timeouts: Timeouts,
}

impl Default for Config {
    /// One million entries, early drop, AWS's timeouts.
    fn default() -> Config {
        Config {
            max_entries: 1_000_000,
            when_full: WhenFull::EarlyDrop,
            timeouts: Timeouts::default(),
        }
    }
}

/// Inactivity timeouts in seconds (SPEC §1 `[conntrack]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub tcp_established: u32,
    /// SYN_SENT, SYN_RECV, FIN_WAIT, CLOSE_WAIT, LAST_ACK, TIME_WAIT, CLOSE,
    /// and unassured TCP entries.
    pub tcp_transitory: u32,
    /// One direction only, or a single request/response.
    pub udp: u32,
    /// More than one packet seen each way.
    pub udp_stream: u32,
    pub icmp: u32,
    pub other: u32,
}

impl Timeouts {
    /// The longest timeout the table keeps exactly: ten years, in seconds.
    /// Times are kept to the millisecond in 40 bits, which holds it; a longer
    /// timeout is cut to it.
    pub const MAX: u32 = 10 * 365 * 86_400;
}

impl Default for Timeouts {
    /// AWS's defaults.
    fn default() -> Timeouts {
        Timeouts {
            tcp_established: 432_000,
            tcp_transitory: 120,
            udp: 30,
            udp_stream: 180,
            icmp: 30,
            other: 600,
        }
    }
}

/// What a full connection-tracking table does with a new flow
/// (`[conntrack] when_full`, SPEC §2.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenFull {
    /// `"early_drop"`: evict the oldest unassured entry of those the table
    /// samples (as Linux's `early_drop`), and deny (`conntrack-full`) only
    /// when the sample holds none.
    #[default]
    EarlyDrop,
    /// `"refuse"`: deny every new flow (`conntrack-full`), as AWS does.
    Refuse,
}

impl WhenFull {
    /// The name in the policy file.
    pub fn name(self) -> &'static str {
        match self {
            WhenFull::EarlyDrop => "early_drop",
            WhenFull::Refuse => "refuse",
        }
    }
}

/// Inactivity timeouts in milliseconds, as the table uses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Millis {
    tcp_established: u64,
    tcp_transitory: u64,
    udp: u64,
    udp_stream: u64,
    icmp: u64,
    other: u64,
}

impl From<&Timeouts> for Millis {
    /// Timeouts above [`Timeouts::MAX`] are cut to it.
    fn from(t: &Timeouts) -> Millis {
        let ms = |s: u32| u64::from(s.min(Timeouts::MAX)) * 1000;
        Millis {
            tcp_established: ms(t.tcp_established),
            tcp_transitory: ms(t.tcp_transitory),
            udp: ms(t.udp),
            udp_stream: ms(t.udp_stream),
            icmp: ms(t.icmp),
            other: ms(t.other),
        }
    }
}

/// The timeouts the table applies: its own, and each interface's where any
/// interface sets them (each a whole set: the table's with the
/// interface's overrides).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Timing {
    table: Millis,
    /// By interface index; empty when no interface sets timeouts.
    by_interface: Vec<Millis>,
}

impl Timing {
    /// The timeout `pick` chooses for an entry kept by `ends`: the shortest
    /// of its interfaces', or the table's.
    #[inline]
    fn of(&self, ends: Ends, pick: impl Fn(&Millis) -> u64) -> u64 {
        if self.by_interface.is_empty() {
            return pick(&self.table);
        }
        ends.interfaces()
            .filter_map(|i| self.by_interface.get(i as usize))
            .map(&pick)
            .min()
            .unwrap_or_else(|| pick(&self.table))
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
    /// It belongs to a tracked flow that an end does not track (SPEC §9.3):
    /// the interfaces named keep the state and pass it; every other end
    /// that is an interface judges it by its rules.
    Partly(Ends),
}

/// The table is full, or an interface's allowance is: a new flow is denied
/// (`conntrack-full`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full {
    /// The interface whose `conntrack_max` is reached; `None`: the table's
    /// `max_entries`.
    pub interface: Option<u32>,
}

/// What one interface keeps apart from the table (SPEC §9.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InterfaceConfig {
    /// Its allowance (`conntrack_max`); `None`: only the table bounds it.
    pub max_entries: Option<u32>,
    /// Its timeouts, where they differ from the table's.
    pub timeouts: Option<Timeouts>,
}

/// One interface's entries and refusals: ENA's `conntrack_allowance_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InterfaceCount {
    /// Live entries (and expired ones not yet swept) it keeps.
    pub entries: u32,
    /// Its allowance, when it has one.
    pub max_entries: Option<u32>,
    /// New flows refused because its allowance was used up.
    pub exceeded: u64,
}

impl InterfaceCount {
    /// Entries it may still open: ENA's `conntrack_allowance_available`
    /// (`None` without an allowance of its own).
    pub fn available(&self) -> Option<u32> {
        self.max_entries.map(|m| m.saturating_sub(self.entries))
    }
}

/// A new flow's entry was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened {
    /// The table was full and an unassured entry was evicted to make room.
    pub early_drop: bool,
}

/// How many entries a full table looks at, from the new flow's home slot,
/// for one to evict: as many as Linux's early_drop looks at buckets
/// (`NF_CT_EVICTION_RANGE`). With the table at least 3/8 full that is at most
/// about 21 slots, a few cache lines next to the one the insert touches.
pub const EARLY_DROP_SAMPLE: usize = 8;

/// How far the sample goes on when its first [`EARLY_DROP_SAMPLE`] entries
/// are all assured. Assured entries never leave and the unassured ones near
/// them are the ones early drop keeps evicting, so some stretches of the
/// table end up all assured; 8 entries then miss the unassured ones a few
/// slots further (in `tests/conntrack.rs`'s flood, one run in six refused a
/// few flood SYNs that way).
pub const EARLY_DROP_REACH: usize = 64;

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
    when_full: WhenFull,
    timing: Timing,
    /// Entries and allowance of each interface, by index.
    interfaces: Vec<InterfaceCount>,
    /// Milliseconds since the Unix epoch that slot times count from.
    epoch: Option<u64>,
    /// The latest time seen (ms since the Unix epoch): the clock.
    latest: u64,
    /// No entry can expire before this (relative ms): a full table is not
    /// swept again until then. Lowered whenever an entry's expiry comes
    /// earlier (a new entry, a shorter timeout), so it is never late.
    next_expiry: u64,
}

/// The tables' hash seed unless [`Conntrack::randomize_hash`] is called:
/// fixed, so two engines fed the same packets keep the same entries.
const SEED: u64 = 0x7367_706c_616e_6531;

// Every entry a sweep keeps is younger than its timeout, so moving the epoch
// up to the oldest of them leaves every time, and the clock, in a stamp.
const _: () = assert!((Timeouts::MAX as u64) * 1000 < Stamp::MAX);

impl Conntrack {
    pub fn new(settings: &Config) -> Conntrack {
        let max = settings.max_entries as usize;
        Conntrack {
            v4: Table::new(max, SEED),
            v6: Table::new(max, SEED),
            max_entries: max,
            when_full: settings.when_full,
            timing: Timing {
                table: Millis::from(&settings.timeouts),
                by_interface: Vec::new(),
            },
            interfaces: Vec::new(),
            epoch: None,
            latest: 0,
            next_expiry: 0,
        }
    }

    /// Hashes with a seed of this process's own from now on, instead of the
    /// fixed one: the live modes' tables, so that traffic cannot be made to
    /// collide in them. (A replay keeps the fixed seed, so the entries an
    /// early drop samples, and so its verdicts, are the same every run.)
    pub fn randomize_hash(&mut self) {
        use std::hash::BuildHasher;
        let seed = foldhash::fast::RandomState::default().hash_one(SEED);
        self.v4.reseed(seed);
        self.v6.reseed(seed);
    }

    /// Applies new limits and timeouts (a policy reload); entries stay.
    pub fn reconfigure(&mut self, settings: &Config) {
        self.max_entries = settings.max_entries as usize;
        self.when_full = settings.when_full;
        self.timing.table = Millis::from(&settings.timeouts);
        self.next_expiry = 0;
    }

    /// Applies each interface's allowance and timeouts (by interface
    /// index; a policy reload). `remap` gives, for each interface index the
    /// entries name, its index in the new policy (`None`: gone; its
    /// entries then keep the table's timeouts and count nowhere); an empty
    /// `remap` keeps the indexes. Entries stay; the counts are taken again.
    pub fn configure_interfaces(&mut self, interfaces: &[InterfaceConfig], remap: &[Option<u32>]) {
        let table = self.timing.table;
        self.timing.by_interface = if interfaces.iter().any(|i| i.timeouts.is_some()) {
            interfaces
                .iter()
                .map(|i| i.timeouts.as_ref().map_or(table, Millis::from))
                .collect()
        } else {
            Vec::new()
        };
        let exceeded: Vec<u64> = self.interfaces.iter().map(|c| c.exceeded).collect();
        self.interfaces = interfaces
            .iter()
            .map(|i| InterfaceCount {
                max_entries: i.max_entries,
                ..Default::default()
            })
            .collect();
        let moved = |e: Ends| -> Ends {
            if remap.is_empty() {
                return e;
            }
            let to = |v: u16| {
                (v != 0)
                    .then(|| remap.get(usize::from(v) - 1).copied().flatten())
                    .flatten()
            };
            Ends::of(to(e.0[0]), to(e.0[1]))
        };
        self.v4.for_each_mut(|s| s.ends = moved(s.ends));
        self.v6.for_each_mut(|s| s.ends = moved(s.ends));
        for (old, n) in exceeded.into_iter().enumerate() {
            let new = if remap.is_empty() {
                Some(old as u32)
            } else {
                remap.get(old).copied().flatten()
            };
            if let Some(c) = new.and_then(|i| self.interfaces.get_mut(i as usize)) {
                c.exceeded += n;
            }
        }
        let mut counts = std::mem::take(&mut self.interfaces);
        for s in self.v4.iter() {
            hold(&mut counts, s.ends);
        }
        for s in self.v6.iter() {
            hold(&mut counts, s.ends);
        }
        self.interfaces = counts;
        self.next_expiry = 0;
    }

    /// Each interface's entries, allowance and refusals, by index.
    pub fn interfaces(&self) -> &[InterfaceCount] {
        &self.interfaces
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
    #[inline(always)]
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

    /// The clock for a packet at `now`, in milliseconds since the epoch.
    /// Time never goes backwards: a packet older than the latest one seen is
    /// judged at the latest time. When the clock would pass what a stamp
    /// holds, the table is swept and the epoch moved ([`Conntrack::rebase`]).
    fn clock(&mut self, now: Nanos) -> u64 {
        let ms = (now / 1_000_000).max(self.latest);
        self.latest = ms;
        let epoch = *self.epoch.get_or_insert(ms);
        let rel = ms - epoch;
        if rel > Stamp::MAX {
            self.rebase(epoch, rel)
        } else {
            rel
        }
    }

    /// Removes every entry expired at `rel` (exactly: the sweep is in u64),
    /// then moves the epoch up to the oldest remaining entry's time. Each of
    /// those is younger than its timeout, at most ten years, so every time
    /// stays exact and the clock is again below [`Stamp::MAX`].
    #[cold]
    fn rebase(&mut self, epoch: u64, rel: u64) -> u64 {
        self.sweep(rel);
        let oldest = self
            .v4
            .iter()
            .map(|s| s.last.get())
            .chain(self.v6.iter().map(|s| s.last.get()))
            .min()
            .unwrap_or(rel);
        self.epoch = Some(epoch + oldest);
        self.v4
            .for_each_mut(|s| s.last = Stamp::new(s.last.get() - oldest));
        self.v6
            .for_each_mut(|s| s.last = Stamp::new(s.last.get() - oldest));
        self.next_expiry = self.next_expiry.saturating_sub(oldest);
        rel - oldest
    }

    /// Looks a packet up and, if it belongs to a live flow, advances the flow's state.
    ///
    /// `now` is the packet's time; one older than a packet seen before is
    /// taken to be at that packet's time (the clock never goes backwards), so
    /// it neither revives an entry nor makes one older.
    pub fn track(&mut self, p: &Prepared, class: Class, now: Nanos) -> Outcome {
        let now = self.clock(now);
        let mut books = Books {
            timing: &self.timing,
            next_expiry: &mut self.next_expiry,
            interfaces: &mut self.interfaces,
        };
        match p.key {
            PKey::V4(k) => track_in(&mut self.v4, &k, p, class, now, &mut books),
            PKey::V6(k) => track_in(&mut self.v6, &k, p, class, now, &mut books),
        }
    }

    /// Whether a live entry exists for the key (for relating ICMP errors);
    /// it is not refreshed.
    pub fn is_tracked(&mut self, p: &Prepared, now: Nanos) -> bool {
        let now = self.clock(now);
        let t = &self.timing;
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

    /// Opens an entry for a new flow the rules allowed, kept by the table
    /// alone (no interface of its own). `track` must have returned `New`
    /// for this packet. See [`Conntrack::open_at`].
    pub fn open(&mut self, p: &Prepared, class: Class, now: Nanos) -> Result<Opened, Full> {
        self.open_at(p, class, now, Ends::NONE, false)
    }

    /// Opens an entry for a new flow the rules allowed, kept by the
    /// interfaces `ends` (each counting it against its allowance);
    /// `untracked_end`: an end that is an interface does not track the
    /// flow and judges its every packet ([`Outcome::Partly`]). `track` must
    /// have returned `New` for this packet.
    ///
    /// An interface whose allowance is used up refuses the flow, naming
    /// itself. A full table (or one above its limit, after a reload lowered
    /// it) first evicts an expired entry or, with
    /// `when_full = "early_drop"`, the oldest unassured one among the
    /// [`EARLY_DROP_SAMPLE`] entries from the flow's home slot (looking on up
    /// to [`EARLY_DROP_REACH`] if those are all assured; in its own address
    /// family's table, then the other's) and takes the flow; failing that
    /// it is swept, and if still full the flow is refused. An assured entry
    /// is never evicted.
    pub fn open_at(
        &mut self,
        p: &Prepared,
        class: Class,
        now: Nanos,
        ends: Ends,
        untracked_end: bool,
    ) -> Result<Opened, Full> {
        let now_rel = self.clock(now);
        if let Some(i) = self.exhausted(ends, now_rel) {
            self.interfaces[i as usize].exceeded += 1;
            return Err(Full { interface: Some(i) });
        }
        let tcp = match class {
            Class::Tcp { flags } => tcp::open(flags).unwrap_or(TcpState::Established) as u8,
            _ => 0,
        };
        let mut flags = if p.src_is_a { flag::ORIG_IS_A } else { 0 };
        if untracked_end {
            flags |= flag::UNTRACKED_END;
        }
        let mut len = self.len();
        let grows = match p.key {
            PKey::V4(_) => (self.v4.len() + 1) * 4 > self.v4.capacity() * 3,
            PKey::V6(_) => (self.v6.len() + 1) * 4 > self.v6.capacity() * 3,
        };
        let mut early_drop = false;
        // A full table makes room by evicting one entry, and then takes the
        // new flow. So does one above its limit (a reload lowered it), as
        // Linux does: it stays at its size and comes down to the limit as
        // entries expire, rather than refusing every new flow until then.
        let mut evicted = false;
        if len >= self.max_entries {
            match self.victim(p, now_rel) {
                Some(v) if v.expired || self.when_full == WhenFull::EarlyDrop => {
                    self.evict(v);
                    early_drop = !v.expired;
                    evicted = true;
                    len -= 1;
                }
                _ => {}
            }
        }
        if (len >= self.max_entries || grows) && now_rel >= self.next_expiry {
            self.sweep(now_rel);
            len = self.len();
        }
        if len >= self.max_entries && !evicted {
            return Err(Full { interface: None });
        }
        let last = Stamp::new(now_rel);
        // The first packet, from the originator.
        let state = tcp | 1 << 4;
        let until = match p.key {
            PKey::V4(key) => {
                let s = Slot {
                    key,
                    last,
                    state,
                    flags,
                    ends,
                };
                self.v4.insert(p.hash, s);
                now_rel + timeout_of(&s, &self.timing)
            }
            PKey::V6(key) => {
                let s = Slot {
                    key,
                    last,
                    state,
                    flags,
                    ends,
                };
                self.v6.insert(p.hash, s);
                now_rel + timeout_of(&s, &self.timing)
            }
        };
        hold(&mut self.interfaces, ends);
        self.next_expiry = self.next_expiry.min(until);
        Ok(Opened { early_drop })
    }

    /// The first of `ends` whose allowance is used up (after sweeping the
    /// expired entries, when that may help).
    fn exhausted(&mut self, ends: Ends, now: u64) -> Option<u32> {
        let full = |c: &[InterfaceCount]| {
            ends.interfaces().find(|&i| {
                c.get(i as usize)
                    .is_some_and(|c| c.max_entries.is_some_and(|m| c.entries >= m))
            })
        };
        full(&self.interfaces)?;
        if now >= self.next_expiry {
            self.sweep(now);
        }
        full(&self.interfaces)
    }

    /// The entry a full table gives up for `p`: the first expired one, else
    /// the oldest unassured one, among the entries sampled from its home slot.
    fn victim(&self, p: &Prepared, now: u64) -> Option<Victim> {
        let t = &self.timing;
        let in_v4 = || victim_in(&self.v4, p.hash, now, t).map(|v| (false, v));
        let in_v6 = || victim_in(&self.v6, p.hash, now, t).map(|v| (true, v));
        let found = match p.key {
            PKey::V4(_) => in_v4().or_else(in_v6),
            PKey::V6(_) => in_v6().or_else(in_v4),
        };
        found.map(|(v6, (slot, expired))| Victim { v6, slot, expired })
    }

    fn evict(&mut self, v: Victim) {
        let ends = if v.v6 {
            let e = self.v6.slot(v.slot).ends;
            self.v6.remove(v.slot);
            e
        } else {
            let e = self.v4.slot(v.slot).ends;
            self.v4.remove(v.slot);
            e
        };
        release(&mut self.interfaces, ends);
    }

    /// Removes every expired entry; returns how many.
    pub fn expire(&mut self, now: Nanos) -> usize {
        let before = self.len();
        // The clock may sweep already (a rebase).
        let now = self.clock(now);
        self.sweep(now);
        before - self.len()
    }

    fn sweep(&mut self, now: u64) -> usize {
        let t = &self.timing;
        let counts = &mut self.interfaces;
        let mut next = u64::MAX;
        let mut keep = |last: u64, timeout: u64, ends: Ends| {
            let until = last + timeout;
            let kept = now < until;
            if kept {
                next = next.min(until);
            } else {
                release(counts, ends);
            }
            kept
        };
        let n = self
            .v4
            .retain(|s| keep(s.last.get(), timeout_of(s, t), s.ends))
            + self
                .v6
                .retain(|s| keep(s.last.get(), timeout_of(s, t), s.ends));
        self.next_expiry = next;
        n
    }

    /// Every live entry, for tests and diagnostics: (protocol, TCP state, seen reply).
    pub fn entries(&self) -> Vec<(u8, TcpState, bool)> {
        let v4 = self.v4.iter().map(|s| (s.key.proto(), s.tcp(), s.flags));
        let v6 = self.v6.iter().map(|s| (s.key.proto(), s.tcp(), s.flags));
        v4.chain(v6)
            .map(|(proto, tcp, flags)| {
                (proto, TcpState::from_u8(tcp), flags & flag::SEEN_REPLY != 0)
            })
            .collect()
    }
}

/// Counts an entry against the allowances of the interfaces keeping it.
fn hold(counts: &mut [InterfaceCount], ends: Ends) {
    for i in ends.interfaces() {
        if let Some(c) = counts.get_mut(i as usize) {
            c.entries += 1;
        }
    }
}

/// Gives an entry back to the allowances of the interfaces that kept it.
fn release(counts: &mut [InterfaceCount], ends: Ends) {
    for i in ends.interfaces() {
        if let Some(c) = counts.get_mut(i as usize) {
            c.entries = c.entries.saturating_sub(1);
        }
    }
}

/// What a lookup updates beside the entry.
struct Books<'a> {
    timing: &'a Timing,
    next_expiry: &'a mut u64,
    interfaces: &'a mut [InterfaceCount],
}

/// An entry a full table may give up: which table, which slot, and whether
/// it had expired anyway (otherwise it is an early drop).
#[derive(Debug, Clone, Copy)]
struct Victim {
    v6: bool,
    slot: usize,
    expired: bool,
}

/// In one table, among the entries sampled from `hash`'s home slot: the
/// first expired one (`true`), else the oldest unassured one of the first
/// [`EARLY_DROP_SAMPLE`], else the first unassured one of the first
/// [`EARLY_DROP_REACH`].
///
/// Of the unassured entries, one that never heard back from the other end
/// goes before one that did (a TCP handshake half done: SYN and SYN-ACK
/// seen, the last ACK not yet): a spoofed flood's SYNs never hear back,
/// while a real client's entry does within a round trip, and evicting it
/// then would leave the server's next packet (its SYN-ACK retransmitted,
/// its first data) without an entry. Under a flood whose entries outlive
/// less than a round trip, that is what keeps real handshakes completing.
fn victim_in<A: Addr>(t: &Table<A>, hash: u64, now: u64, to: &Timing) -> Option<(usize, bool)> {
    // (slot, (answered, last)): the least (answered, last) is the victim.
    let mut oldest: Option<(usize, (bool, u64))> = None;
    for (n, i) in t.sample(hash, EARLY_DROP_REACH).enumerate() {
        if n >= EARLY_DROP_SAMPLE && oldest.is_some() {
            break;
        }
        let s = t.slot(i);
        if expired(s, now, to) {
            return Some((i, true));
        }
        if s.assured() {
            continue;
        }
        let key = (s.flags & flag::SEEN_REPLY != 0, s.last.get());
        if oldest.is_none_or(|(_, least)| key < least) {
            oldest = Some((i, key));
        }
    }
    oldest.map(|(i, _)| (i, false))
}

/// An entry's inactivity timeout in ms. TCP gets `tcp_established` only
/// when established and assured (a picked-up flow nobody answered keeps
/// `tcp_transitory`); UDP gets `udp_stream` after more than one packet each
/// way. The interfaces keeping the entry may set their own (the shortest wins).
#[inline]
fn timeout_of<A: Copy>(s: &Slot<A>, t: &Timing) -> u64 {
    let pick: fn(&Millis) -> u64 = match s.key.proto() {
        6 if s.tcp() == TcpState::Established as u8 && s.assured() => |m| m.tcp_established,
        6 => |m| m.tcp_transitory,
        17 if s.packets().0 > 1 && s.packets().1 > 1 => |m| m.udp_stream,
        17 => |m| m.udp,
        1 | 58 => |m| m.icmp,
        _ => |m| m.other,
    };
    t.of(s.ends, pick)
}

#[inline]
fn expired<A: Copy>(s: &Slot<A>, now: u64, t: &Timing) -> bool {
    now.saturating_sub(s.last.get()) >= timeout_of(s, t)
}

#[inline]
fn track_in<A: Addr>(
    t: &mut Table<A>,
    k: &Key<A>,
    p: &Prepared,
    class: Class,
    now: u64,
    books: &mut Books,
) -> Outcome {
    let Some(i) = t.find(p.hash, k) else {
        return Outcome::New;
    };
    let remove = |t: &mut Table<A>, books: &mut Books| {
        release(books.interfaces, t.slot(i).ends);
        t.remove(i);
    };
    if expired(t.slot(i), now, books.timing) {
        remove(t, books);
        return Outcome::New;
    }
    let s = t.slot_mut(i);
    let tracked = if s.flags & flag::UNTRACKED_END != 0 {
        Outcome::Partly(s.ends)
    } else {
        Outcome::Tracked
    };
    let before = (s.state, s.flags);
    let reply = p.src_is_a != (s.flags & flag::ORIG_IS_A != 0);
    match class {
        Class::Tcp { flags } => {
            let old = TcpState::from_u8(s.tcp());
            match tcp::transition(old, reply, flags) {
                Transition::Invalid => return Outcome::Invalid,
                Transition::Ignore => return tracked,
                // A SYN reopening a closed connection: the old entry goes and
                // the SYN is a new flow (Linux kills the entry and repeats).
                Transition::To(TcpState::SynSent)
                    if matches!(old, TcpState::TimeWait | TcpState::Close) =>
                {
                    remove(t, books);
                    return Outcome::New;
                }
                // A RST before any reply (the reply may be the RST itself):
                // Linux deletes the entry at once ("if only reply is a RST, we
                // can consider ourselves not to have an established
                // connection") and lets the RST through.
                Transition::To(_) if flags & tcp::RST != 0 && s.flags & flag::SEEN_REPLY == 0 => {
                    remove(t, books);
                    return tracked;
                }
                Transition::To(new) => s.set_tcp(new as u8),
            }
        }
        Class::Echo { request } if request == reply => return Outcome::Stray,
        _ => {}
    }
    if reply {
        s.flags |= flag::SEEN_REPLY;
    }
    s.count_packet(reply);
    // Both ways seen; for TCP also established: the handshake's last ACK,
    // or the answer to a picked-up flow (Linux sets IPS_ASSURED the same way).
    if s.flags & (flag::SEEN_REPLY | flag::ASSURED) == flag::SEEN_REPLY
        && (s.key.proto() != 6 || s.tcp() == TcpState::Established as u8)
    {
        s.flags |= flag::ASSURED;
    }
    s.last = Stamp::new(now);
    // A new timeout (a FIN, a RST, a policy whose udp_stream is shorter than
    // udp) may bring the first expiry forward. Only the state, the flags and
    // the counts choose the timeout, and they rarely change.
    if (s.state, s.flags) != before {
        *books.next_expiry = (*books.next_expiry).min(now + timeout_of(s, books.timing));
    }
    tracked
}

#[cfg(test)]
mod tests;
