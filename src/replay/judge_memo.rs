//! Judgements of flow-log records remembered by what decides them, so a
//! log's many records of the same flow between the same hosts are judged
//! once (issue 17's records/s).
//!
//! A record's judgement ([`judge_at`]) follows from its interface, its
//! addresses, protocol, ports and `flow-direction` alone: no state, no
//! time. Those are the key, less the source port when no security-group
//! rule of the policy names source ports (network ACL entries never do):
//! then every source port is judged alike, and a client's connections
//! from ever-new ephemeral ports share one entry. Ports are keyed by
//! their class ([`PortClasses`]): the ports no rule or ACL entry tells
//! apart, so the reverse of a connection (whose destination is the
//! client's ever-new ephemeral port) is judged once too. The memo is a
//! table of sets of four places (like a 4-way cache): a colliding key
//! replaces an entry, so memory is fixed and a miss costs one judgement,
//! as without the memo.
//!
//! A place holds a key and the number of its judgement in a side table
//! of the distinct judgements (few: a judgement names no address), so a
//! place is small and the table stays in cache. Keys of IPv4 addresses
//! (most records') are packed into two words ([`Packed`]) in a table of
//! their own, a set to a cache line; other keys go to a table of whole
//! keys. An IPv4 key's places are the two sets its addresses pick (the
//! second holds what the first pushes out), so they are known before the
//! record is read in full: the replay fetches them into the cache a few
//! records ahead ([`JudgeMemo::prefetch`]), and a lookup seldom waits for
//! memory, however many hosts a log has.

use std::net::{IpAddr, Ipv4Addr};

use crate::engine::{Judgement, Ruleset};
use crate::io::flowlog::{FlowDirection, Record};
use crate::policy::nacl::AclDecision;
use crate::policy::{Direction, IfaceId, Policy, PortSet, Reason, RuleId, Verdict, ZoneId};

use super::flowlogs::{judge_at, RecordJudgement};

/// Sets of places of each table (a power of two).
const SETS: usize = 1 << 12;
/// Distinct judgements kept before the tables start anew (in tests, a
/// few: the tests go through starting anew too).
const JUDGEMENTS: usize = if cfg!(test) { 5 } else { 1 << 16 };
/// Places of the judgements' numbers by hint (a power of two).
const HINTS: usize = 64;
/// The places of a set.
const WAYS: usize = 4;
/// Interface names looked up last, compared before the name table.
const RECENT: usize = 4;
/// Interface names remembered before the name table starts anew.
const NAMES: usize = 1 << 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    iface: Option<IfaceId>,
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    /// Port classes ([`PortClasses::of`]), not ports.
    sport: Option<u32>,
    dport: Option<u32>,
    /// 0 none, 1 ingress, 2 egress.
    direction: u8,
}

impl Key {
    /// A key no record has (no direction is 3): an empty place.
    const EMPTY: Key = Key {
        iface: None,
        src: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        dst: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        proto: 0,
        sport: None,
        dport: None,
        direction: 3,
    };

    /// The key packed, when its addresses are IPv4 and its interface's
    /// number fits.
    #[inline]
    fn packed(&self) -> Option<Packed> {
        let (IpAddr::V4(s), IpAddr::V4(d)) = (self.src, self.dst) else {
            return None;
        };
        let iface = match self.iface {
            None => Packed::NO_IFACE,
            Some(i) if u64::from(i) < Packed::NO_IFACE => u64::from(i),
            Some(_) => return None,
        };
        // A class is at most 65535 (the starts are distinct ports above 0).
        let port = |p: Option<u32>| p.map_or(Packed::NO_PORT, u64::from);
        Some(Packed {
            addrs: Packed::addrs(s, d),
            rest: iface
                | u64::from(self.proto) << 20
                | u64::from(self.direction) << 28
                | port(self.sport) << 30
                | port(self.dport) << 47,
        })
    }

    /// A quick mix of every field.
    fn hash(&self) -> u64 {
        fn bits(a: IpAddr) -> u128 {
            match a {
                IpAddr::V4(a) => u128::from(a.to_bits()),
                IpAddr::V6(a) => a.to_bits() ^ (1 << 64),
            }
        }
        let (s, d) = (bits(self.src), bits(self.dst));
        let ports = u64::from(self.sport.unwrap_or(0x1_ffff))
            | u64::from(self.dport.unwrap_or(0x1_ffff)) << 17;
        let rest = u64::from(self.iface.unwrap_or(u32::MAX)) << 32
            | u64::from(self.proto) << 8
            | u64::from(self.direction);
        let mut h = (s as u64) ^ ((s >> 64) as u64).rotate_left(13);
        h = (h ^ (d as u64).rotate_left(29) ^ ((d >> 64) as u64).rotate_left(43))
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h = (h ^ ports ^ rest.rotate_left(7)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h ^ (h >> 31)
    }
}

/// The ports' equivalence classes under a policy: the ports every
/// security-group rule (destination and source ports) and every network
/// ACL entry takes alike. A judgement reads a port only as whether each of
/// those port sets holds it, so two ports of one class are judged alike:
/// the class stands for the port in the memo's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PortClasses {
    /// Each port's class: how many class starts are at or below it, the
    /// starts being the first ports of the classes after the first (each a
    /// range's first port, or the port after a range's last). Looked up
    /// rather than searched for (128 KiB).
    table: Box<[u16]>,
}

impl PortClasses {
    pub(super) fn of(policy: &Policy) -> PortClasses {
        let mut starts = Vec::new();
        let mut add = |set: &PortSet| {
            for r in set.ranges() {
                starts.push(r.lo);
                starts.extend(r.hi.checked_add(1));
            }
        };
        for r in policy.rules() {
            add(&r.ports);
            add(&r.source_ports);
        }
        if let Some(n) = policy.nacls() {
            for acl in &n.acls {
                acl.ingress
                    .iter()
                    .chain(&acl.egress)
                    .for_each(|e| add(&e.ports));
            }
        }
        starts.retain(|&p| p > 0);
        starts.sort_unstable();
        starts.dedup();
        PortClasses::new(starts)
    }

    /// The classes of sorted, distinct starts above 0 (at most 65535 of
    /// them: a class fits 16 bits).
    fn new(starts: Vec<u16>) -> PortClasses {
        let table = (0..=u16::MAX)
            .map(|p| starts.partition_point(|&s| s <= p) as u16)
            .collect();
        PortClasses { table }
    }

    /// The class of a port: how many class starts are at or below it.
    #[inline]
    pub(super) fn class(&self, port: u16) -> u32 {
        u32::from(self.table[usize::from(port)])
    }

    /// The class starts: the ports whose class is not the port before's.
    #[cfg(test)]
    fn starts(&self) -> Vec<u16> {
        (1..=u16::MAX)
            .filter(|&p| self.table[usize::from(p)] != self.table[usize::from(p - 1)])
            .collect()
    }
}

/// A [`Key`] of IPv4 addresses and an interface numbered below 2^20, in
/// two words: the addresses, then the interface (20 bits), protocol (8),
/// direction (2) and the two port classes (17 each, all ones for none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Packed {
    addrs: u64,
    rest: u64,
}

impl Packed {
    const NO_IFACE: u64 = 0xf_ffff;
    const NO_PORT: u64 = 0x1_ffff;
    /// A key no record has (no direction is 3): an empty place.
    const EMPTY: Packed = Packed {
        addrs: 0,
        rest: 3 << 28,
    };

    /// The addresses' word.
    #[inline]
    fn addrs(src: Ipv4Addr, dst: Ipv4Addr) -> u64 {
        u64::from(src.to_bits()) << 32 | u64::from(dst.to_bits())
    }

    /// The first of the two sets of keys of these addresses (so a record's
    /// sets are known, and fetched, from its addresses alone): keys are
    /// put in the first, and the one they push out goes to the second.
    #[inline]
    fn pair(addrs: u64) -> usize {
        let h = addrs.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let h = (h ^ (h >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        (h >> 32) as usize & (SETS - 2)
    }
}

/// The set of a key of hash `h`, in either table.
#[inline]
fn set_of(h: u64) -> usize {
    (h >> 32) as usize & (SETS - 1)
}

/// The places of one set, aligned to a cache line (a set of [`Packed`]
/// keys is one line).
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Set<K>([K; WAYS]);

/// Keys and, for each, the number of its judgement in the memo's side
/// table; a key may be in the four places of its set.
struct Places<K> {
    keys: Vec<Set<K>>,
    judgements: Vec<[u32; WAYS]>,
    empty: K,
}

impl<K: Copy + PartialEq> Places<K> {
    fn new(empty: K) -> Places<K> {
        Places {
            keys: vec![Set([empty; WAYS]); SETS],
            judgements: vec![[0; WAYS]; SETS],
            empty,
        }
    }

    #[inline]
    fn get(&self, set: usize, key: &K) -> Option<u32> {
        let i = self.keys[set].0.iter().position(|k| k == key)?;
        Some(self.judgements[set][i])
    }

    /// A new key takes the first place, the others' entries move on (the
    /// last one's is dropped).
    /// Returns the entry pushed out.
    fn put(&mut self, set: usize, key: K, judgement: u32) -> (K, u32) {
        let (keys, judgements) = (&mut self.keys[set].0, &mut self.judgements[set]);
        let out = (keys[WAYS - 1], judgements[WAYS - 1]);
        keys.copy_within(..WAYS - 1, 1);
        judgements.copy_within(..WAYS - 1, 1);
        keys[0] = key;
        judgements[0] = judgement;
        out
    }

    /// A key's number in the pair of sets from `pair` (the first, then the
    /// second).
    #[inline]
    fn get_pair(&self, pair: usize, key: &K) -> Option<u32> {
        self.get(pair, key).or_else(|| self.get(pair + 1, key))
    }

    /// A new key takes the first place of the first set of the pair; the
    /// entry it pushes out, the first place of the second.
    fn put_pair(&mut self, pair: usize, key: K, judgement: u32) {
        let (out, n) = self.put(pair, key, judgement);
        if out != self.empty {
            self.put(pair + 1, out, n);
        }
    }

    /// Brings a set's keys and numbers into the cache ahead of a lookup.
    #[inline]
    fn prefetch(&self, set: usize) {
        let (Some(keys), Some(judgements)) = (self.keys.get(set), self.judgements.get(set)) else {
            return;
        };
        crate::base::prefetch(keys);
        crate::base::prefetch(judgements);
    }

    fn clear(&mut self) {
        self.keys.fill(Set([self.empty; WAYS]));
    }
}

/// A judgement as remembered: a record's has no packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Kept {
    verdict: Verdict,
    reason: Reason,
    rule: Option<RuleId>,
    decision: Option<(IfaceId, Direction)>,
    nacl: Option<AclDecision>,
    at_named_interface: bool,
    zone: Option<ZoneId>,
}

impl Kept {
    fn of(j: &RecordJudgement) -> Kept {
        let g = &j.judgement;
        Kept {
            verdict: g.verdict,
            reason: g.reason,
            rule: g.rule,
            decision: g.decision,
            nacl: g.nacl,
            at_named_interface: j.at_named_interface,
            zone: j.zone,
        }
    }

    /// A quick mix of what most often tells judgements apart, below [`HINTS`].
    #[inline]
    fn hint(&self) -> usize {
        let h = self
            .rule
            .map_or(0, |r| r.wrapping_add(1))
            .wrapping_mul(0x9e37_79b9)
            ^ self
                .decision
                .map_or(0, |(i, d)| i.wrapping_mul(2).wrapping_add(d as u32 + 1))
                .wrapping_mul(0x85eb_ca6b)
            ^ (self.reason as u32) << 8
            ^ (self.verdict as u32) << 16
            ^ u32::from(self.at_named_interface) << 24
            ^ self.zone.map_or(0, |z| z as u32 ^ 0x5bd1_e995)
            ^ self
                .nacl
                .map_or(0, |d| d.subnet ^ u32::from(d.entry.unwrap_or(0xffff)) << 11);
        (h.wrapping_mul(0x2545_f491) >> 26) as usize & (HINTS - 1)
    }

    fn judgement(&self) -> RecordJudgement {
        RecordJudgement {
            judgement: Judgement {
                verdict: self.verdict,
                reason: self.reason,
                rule: self.rule,
                decision: self.decision,
                nacl: self.nacl,
                packet: None,
            },
            at_named_interface: self.at_named_interface,
            zone: self.zone,
        }
    }
}

/// Whether two interface names are the same, eight bytes at a time (a
/// call of `memcmp` costs more than comparing a name of twenty bytes).
#[inline]
fn same_name(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n < 8 {
        return a.iter().zip(b).all(|(x, y)| x == y);
    }
    let word = |s: &[u8], at: usize| {
        s.get(at..at + 8)
            .map(|w| u64::from_le_bytes(w.try_into().unwrap_or_default()))
    };
    // The last eight bytes overlap the words before them where the
    // length is no multiple of eight.
    (0..n - 8).step_by(8).all(|at| word(a, at) == word(b, at)) && word(a, n - 8) == word(b, n - 8)
}

pub(super) struct JudgeMemo<'r> {
    rules: &'r Ruleset,
    sport_matters: bool,
    ports: PortClasses,
    packed: Places<Packed>,
    wide: Places<Key>,
    /// The distinct judgements the places number, and their numbers.
    kept: Vec<Kept>,
    numbers: std::collections::HashMap<Kept, u32, foldhash::fast::FixedState>,
    /// By [`Kept::hint`], the number given last (checked before `numbers`).
    hints: [u32; HINTS],
    /// Distinct judgements kept before the tables start anew
    /// ([`JUDGEMENTS`]; a test may give more).
    room: usize,
    /// Records judged in full (not found in the places).
    #[cfg(test)]
    judged: u64,
    /// `interface-id` values seen, and the policy's interface each names.
    names: std::collections::HashMap<Box<[u8]>, Option<IfaceId>, foldhash::fast::FixedState>,
    /// The names last looked up and their interfaces (buffers kept, so no
    /// allocation per record), replaced in turn.
    recent: [(Vec<u8>, Option<IfaceId>); RECENT],
    next_recent: usize,
}

impl<'r> JudgeMemo<'r> {
    pub(super) fn new(rules: &'r Ruleset) -> JudgeMemo<'r> {
        JudgeMemo {
            rules,
            sport_matters: rules
                .policy
                .rules()
                .iter()
                .any(|r| !r.source_ports.is_all()),
            ports: PortClasses::of(&rules.policy),
            packed: Places::new(Packed::EMPTY),
            wide: Places::new(Key::EMPTY),
            kept: Vec::new(),
            numbers: Default::default(),
            hints: [u32::MAX; HINTS],
            room: JUDGEMENTS,
            #[cfg(test)]
            judged: 0,
            names: Default::default(),
            recent: std::array::from_fn(|_| (vec![0], None)),
            next_recent: 0,
        }
    }

    pub(super) fn rules(&self) -> &'r Ruleset {
        self.rules
    }

    fn interface(&mut self, name: &[u8]) -> Option<IfaceId> {
        let found = (self.recent.iter()).find(|(n, _)| same_name(n, name));
        if let Some((_, i)) = found {
            return *i;
        }
        let i = self.named(name);
        let (n, at) = &mut self.recent[self.next_recent];
        n.clear();
        n.extend_from_slice(name);
        *at = i;
        self.next_recent = (self.next_recent + 1) % RECENT;
        i
    }

    fn named(&mut self, name: &[u8]) -> Option<IfaceId> {
        if let Some(&i) = self.names.get(name) {
            return i;
        }
        let i = self.rules.policy.interface_named(name);
        if self.names.len() >= NAMES {
            self.names.clear();
        }
        self.names.insert(name.into(), i);
        i
    }

    /// The key a record is remembered by.
    #[inline]
    fn key(&mut self, r: &Record) -> Key {
        let iface = r.interface.and_then(|n| self.interface(n));
        Key {
            iface,
            src: r.src,
            dst: r.dst,
            proto: r.proto.0,
            sport: if self.sport_matters {
                r.sport.map(|p| self.ports.class(p))
            } else {
                None
            },
            dport: r.dport.map(|p| self.ports.class(p)),
            direction: match r.direction {
                None => 0,
                Some(FlowDirection::Ingress) => 1,
                Some(FlowDirection::Egress) => 2,
            },
        }
    }

    /// Brings the places of a record judged soon into the cache, so that
    /// its lookup does not wait for them (a log's hosts are many, their
    /// places far apart): an IPv4 key's places follow from its addresses.
    #[inline]
    pub(super) fn prefetch(&self, src: IpAddr, dst: IpAddr) {
        if let (IpAddr::V4(s), IpAddr::V4(d)) = (src, dst) {
            let pair = Packed::pair(Packed::addrs(s, d));
            self.packed.prefetch(pair);
            self.packed.prefetch(pair + 1);
        }
    }

    /// The record's judgement: [`super::flowlogs::judge`]'s, remembered.
    pub(super) fn judge(&mut self, r: &Record) -> RecordJudgement {
        let key = self.key(r);
        let iface = key.iface;
        // An IPv4 key packed in its table, any other whole in its own.
        let packed = key.packed();
        let set = packed.map_or_else(|| set_of(key.hash()), |p| Packed::pair(p.addrs));
        let found = match packed {
            Some(p) => self.packed.get_pair(set, &p),
            None => self.wide.get(set, &key),
        };
        if let Some(n) = found {
            return self.kept[n as usize].judgement();
        }
        let j = judge_at(self.rules, iface, r);
        #[cfg(test)]
        {
            self.judged += 1;
        }
        let n = self.number(&j);
        match packed {
            Some(p) => self.packed.put_pair(set, p, n),
            None => {
                self.wide.put(set, key, n);
            }
        }
        j
    }

    /// The number of a judgement in the side table, added if new. A full
    /// table starts anew, and so do the places that number it.
    fn number(&mut self, j: &RecordJudgement) -> u32 {
        let kept = Kept::of(j);
        // Most often one given before (a new host, judged as others): the
        // number last given for its hint, checked before the map.
        let hint = kept.hint();
        let n = self.hints[hint];
        if self.kept.get(n as usize) == Some(&kept) {
            return n;
        }
        let n = match self.numbers.get(&kept) {
            Some(&n) => n,
            None => self.add(kept),
        };
        self.hints[hint] = n;
        n
    }

    fn add(&mut self, kept: Kept) -> u32 {
        if self.kept.len() >= self.room {
            self.kept.clear();
            self.numbers.clear();
            self.packed.clear();
            self.wide.clear();
            self.hints = [u32::MAX; HINTS];
        }
        let n = self.kept.len() as u32;
        self.kept.push(kept);
        self.numbers.insert(kept, n);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::IpProto;
    use crate::io::flowlog::Action;
    use crate::replay::flowlogs::judge;

    const POLICY: &str = r#"
[security_groups.sg-web]
ingress = [
  { proto = "tcp", ports = "443", from = "0.0.0.0/0" },
  { proto = "tcp", ports = "22", from = "10.0.0.0/16" },
]
egress = [ { proto = "all", to = "0.0.0.0/0" } ]

[security_groups.sg-db]
ingress = [ { proto = "tcp", ports = "5432", from = "sg-web" } ]
egress = []

[interfaces.eni-web]
addresses = ["10.0.1.10"]
security_groups = ["sg-web"]

[interfaces.eni-db]
addresses = ["10.0.2.20"]
security_groups = ["sg-db"]
"#;

    fn records() -> Vec<Record<'static>> {
        let ifaces = [Some("eni-web"), Some("eni-db"), Some("eni-other"), None];
        let addrs: [IpAddr; 6] = [
            "10.0.1.10".parse().unwrap(),
            "10.0.2.20".parse().unwrap(),
            "10.0.9.9".parse().unwrap(),
            "203.0.113.5".parse().unwrap(),
            "10.0.1.11".parse().unwrap(),
            "2001:db8::5".parse().unwrap(),
        ];
        let mut out = Vec::new();
        let mut n = 7u32;
        for _ in 0..20_000 {
            // A small LCG: a fixed, varied sequence.
            n = n.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let pick = |k: u32, m: usize| ((n >> k) as usize) % m;
            let proto = [6u8, 17, 1][pick(3, 3)];
            let ports = proto != 1;
            out.push(Record {
                interface: ifaces[pick(5, 4)].map(str::as_bytes),
                src: addrs[pick(8, 6)],
                dst: addrs[pick(11, 6)],
                proto: IpProto(proto),
                sport: ports.then(|| [1024u16, 40000, 5432, 443][pick(14, 4)]),
                dport: ports.then(|| [443u16, 22, 5432, 80, 1023][pick(17, 5)]),
                start: None,
                action: Action::Accept,
                direction: [
                    None,
                    Some(FlowDirection::Ingress),
                    Some(FlowDirection::Egress),
                ][pick(20, 3)],
            });
        }
        out
    }

    /// The memo gives every record the judgement `judge` gives it, with
    /// source ports that decide and without.
    fn same_as_judge(policy: &str) -> bool {
        let rules = Ruleset::compile(Policy::from_toml(policy, "p.toml").unwrap());
        let mut memo = JudgeMemo::new(&rules);
        let mut allowed = 0;
        for r in records() {
            let (a, b) = (memo.judge(&r), judge(&rules, &r));
            assert_eq!(format!("{a:?}"), format!("{b:?}"), "{r:?}");
            allowed += usize::from(a.judgement.verdict == Verdict::Allow);
        }
        assert!(allowed > 0 && allowed < 20_000);
        memo.sport_matters
    }

    /// Keys that differ in one field pack differently, and none packs as
    /// an empty place; a key that cannot be packed is kept whole.
    #[test]
    fn packed_keys_tell_every_field_apart() {
        let a: IpAddr = "10.0.1.10".parse().unwrap();
        let b: IpAddr = "255.255.255.255".parse().unwrap();
        let base = Key {
            iface: Some(3),
            src: a,
            dst: b,
            proto: 6,
            sport: None,
            dport: Some(65535),
            direction: 2,
        };
        let variants = [
            Key {
                iface: None,
                ..base
            },
            Key {
                iface: Some(0),
                ..base
            },
            Key {
                iface: Some(0xf_fffe),
                ..base
            },
            Key { src: b, ..base },
            Key { dst: a, ..base },
            Key { proto: 17, ..base },
            Key { proto: 255, ..base },
            Key {
                sport: Some(0),
                ..base
            },
            Key {
                sport: Some(65535),
                ..base
            },
            Key {
                dport: None,
                ..base
            },
            Key {
                dport: Some(0),
                ..base
            },
            Key {
                direction: 0,
                ..base
            },
            Key {
                direction: 1,
                ..base
            },
        ];
        let mut packed = vec![base.packed().unwrap()];
        for k in variants {
            let p = k.packed().unwrap();
            assert!(!packed.contains(&p), "{k:?}");
            packed.push(p);
        }
        assert!(!packed.contains(&Packed::EMPTY));
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(Key { src: v6, ..base }.packed(), None);
        assert_eq!(
            Key {
                iface: Some(0xf_ffff),
                ..base
            }
            .packed(),
            None
        );
    }

    /// Names are the same exactly when their bytes are, of every length
    /// up to past three words, differing at any place.
    #[test]
    fn names_compare_as_bytes() {
        for n in 0..30 {
            let a: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
            assert!(same_name(&a, &a.clone()));
            for i in 0..n {
                let mut b = a.clone();
                b[i] ^= 1;
                assert!(!same_name(&a, &b), "{n} {i}");
            }
            let mut longer = a.clone();
            longer.push(b'x');
            assert!(!same_name(&a, &longer));
        }
    }

    /// With far more keys than places, and more keys between two hosts
    /// than the two sets their addresses pick hold, a key pushed out of
    /// its set is judged again, and every record (prefetched ahead or not)
    /// still gets `judge`'s judgement, in a first pass and a second.
    #[test]
    fn keys_past_the_places_are_judged_again() {
        let rules = Ruleset::compile(Policy::from_toml(POLICY, "p.toml").unwrap());
        let mut memo = JudgeMemo::new(&rules);
        // Room for every judgement: the tables never start anew, so only
        // the places decide what is remembered.
        memo.room = 1 << 16;
        let mut records = Vec::new();
        for host in 0..12_000u32 {
            let src = IpAddr::V4(std::net::Ipv4Addr::from_bits(0x0a00_0000 | host));
            let (dst, iface) = match host % 3 {
                0 => ("10.0.1.10", Some("eni-web")),
                1 => ("10.0.2.20", Some("eni-db")),
                _ => ("192.0.2.1", None),
            };
            let ports: &[u16] = if host % 100 == 0 {
                // Ten keys between these two hosts (with their directions).
                &[22, 80, 443, 5432, 1]
            } else {
                &[443]
            };
            for &dport in ports {
                for direction in [Some(FlowDirection::Ingress), Some(FlowDirection::Egress)] {
                    records.push(Record {
                        interface: iface.map(str::as_bytes),
                        src,
                        dst: dst.parse().unwrap(),
                        proto: IpProto(6),
                        sport: Some(40_000),
                        dport: Some(dport),
                        start: None,
                        action: Action::Accept,
                        direction,
                    });
                }
            }
        }
        let (mut allowed, mut denied) = (0, 0);
        for _ in 0..2 {
            for (i, r) in records.iter().enumerate() {
                if let Some(ahead) = records.get(i + 8) {
                    memo.prefetch(ahead.src, ahead.dst);
                }
                let (a, b) = (memo.judge(r), judge(&rules, r));
                assert_eq!(format!("{a:?}"), format!("{b:?}"), "{r:?}");
                match a.judgement.verdict {
                    Verdict::Allow => allowed += 1,
                    _ => denied += 1,
                }
            }
        }
        assert!(allowed > 1000 && denied > 1000, "{allowed} {denied}");
        // Far fewer keys than places, two hosts' keys fewer than their two
        // sets hold: once seen, each is remembered.
        let few: Vec<&Record> = (records.iter())
            .filter(|r| matches!(r.src, IpAddr::V4(a) if (a.to_bits() & 0xff_ffff) % 100 != 0))
            .take(1_000)
            .collect();
        for r in &few {
            memo.judge(r);
        }
        let judged = memo.judged;
        for r in &few {
            memo.judge(r);
        }
        // (A few may share a set past its four places, as hashing goes.)
        let again = memo.judged - judged;
        assert!(again < 20, "{again} of {} judged again", few.len());
    }

    #[test]
    fn remembered_judgements_are_judge_s() {
        assert!(!same_as_judge(POLICY));
        // A rule naming source ports: the source port is part of the key.
        let with_sports = POLICY.replace(
            r#"{ proto = "tcp", ports = "5432", from = "sg-web" }"#,
            r#"{ proto = "tcp", ports = "5432", from = "sg-web", source_ports = "40000" }"#,
        );
        assert!(same_as_judge(&with_sports));
    }
}

#[cfg(test)]
mod port_class_tests {
    use proptest::prelude::*;

    use super::*;
    use crate::base::IpProto;
    use crate::io::flowlog::Action;
    use crate::replay::flowlogs::judge;

    /// A policy with network ACLs whose every port set is drawn: security
    /// group destination and source ports, ACL entries both ways.
    fn policy(r: &[(u16, u16)]) -> String {
        let p = |i: usize| {
            let (lo, len) = r[i];
            format!("{lo}-{}", lo.saturating_add(len))
        };
        format!(
            r#"
[vpcs.vpc-a]
cidrs = ["10.0.0.0/16"]

[subnets.s-web]
vpc = "vpc-a"
cidr = "10.0.1.0/24"
network_acl = "acl-web"

[subnets.s-db]
vpc = "vpc-a"
cidr = "10.0.2.0/24"
network_acl = "acl-db"

[network_acls.acl-web]
ingress = [
  {{ rule = 100, proto = "tcp", ports = "{}", from = "0.0.0.0/0", action = "deny" }},
  {{ rule = 200, proto = "all", from = "0.0.0.0/0", action = "allow" }},
]
egress = [
  {{ rule = 100, proto = "udp", ports = "{}", to = "0.0.0.0/0", action = "deny" }},
  {{ rule = 200, proto = "all", to = "0.0.0.0/0", action = "allow" }},
]

[network_acls.acl-db]
ingress = [ {{ rule = 100, proto = "tcp", ports = "{}", from = "10.0.0.0/16", action = "allow" }} ]
egress = [ {{ rule = 100, proto = "all", to = "10.0.0.0/16", action = "allow" }} ]

[security_groups.sg-web]
ingress = [
  {{ proto = "tcp", ports = "{}", from = "0.0.0.0/0" }},
  {{ proto = "udp", ports = "{}", from = "10.0.0.0/16", source_ports = "{}" }},
]
egress = [ {{ proto = "tcp", ports = "{}", to = "0.0.0.0/0" }} ]

[security_groups.sg-db]
ingress = [ {{ proto = "tcp", ports = "{}", from = "sg-web" }} ]
egress = [ {{ proto = "all", to = "0.0.0.0/0" }} ]

[interfaces.eni-web]
addresses = ["10.0.1.10"]
security_groups = ["sg-web"]
subnet = "s-web"

[interfaces.eni-db]
addresses = ["10.0.2.20"]
security_groups = ["sg-db"]
subnet = "s-db"
"#,
            p(0),
            p(1),
            p(2),
            p(3),
            p(4),
            p(5),
            p(6),
            p(7)
        )
    }

    #[test]
    fn classes_split_at_range_ends() {
        let rules = Ruleset::compile(Policy::from_toml(&policy(&[(22, 0); 8]), "p.toml").unwrap());
        let c = PortClasses::of(&rules.policy);
        assert_eq!(c.starts(), vec![22, 23]);
        assert_eq!([0, 21, 22, 23, 65535].map(|p| c.class(p)), [0, 0, 1, 2, 2]);
    }

    proptest! {
        /// The class looked up is the count of starts at or below the port,
        /// for ports at, next to and between the starts.
        #[test]
        fn looked_up_classes_count_the_starts(
            mut starts in proptest::collection::vec(1u16..=65535, 0..40),
        ) {
            starts.sort_unstable();
            starts.dedup();
            let c = PortClasses::new(starts.clone());
            let mut ports = vec![0, 1, 65534, 65535];
            for &s in &starts {
                ports.extend([s - 1, s, s.saturating_add(1)]);
            }
            for p in ports {
                let below = starts.iter().filter(|&&s| s <= p).count() as u32;
                prop_assert_eq!(c.class(p), below, "port {}", p);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(40))]

        /// Whatever the policy's port ranges, the memo (keyed by port class)
        /// gives every record, and the record the other way, the judgement
        /// `judge` gives it: ports at, next to and between the ranges' ends.
        #[test]
        fn memo_by_port_class_is_judge(
            ranges in proptest::collection::vec((0u16..=65535, prop_oneof![Just(0u16), 0u16..50, 0u16..=65535]), 8),
            seed in any::<u64>(),
        ) {
            let rules = Ruleset::compile(Policy::from_toml(&policy(&ranges), "p.toml").unwrap());
            let mut memo = JudgeMemo::new(&rules);
            let mut ports: Vec<u16> = vec![0, 1, 1023, 1024, 65534, 65535];
            for &(lo, len) in &ranges {
                let hi = lo.saturating_add(len);
                ports.extend([lo.wrapping_sub(1), lo, lo.wrapping_add(1), hi.wrapping_sub(1), hi, hi.wrapping_add(1)]);
            }
            let addrs: [IpAddr; 6] = [
                "10.0.1.10".parse().unwrap(),
                "10.0.2.20".parse().unwrap(),
                "10.0.1.11".parse().unwrap(),
                "203.0.113.5".parse().unwrap(),
                "10.0.2.99".parse().unwrap(),
                "2001:db8::9".parse().unwrap(),
            ];
            let ifaces = [Some("eni-web"), Some("eni-db"), None];
            let mut n = seed;
            let (mut allowed, mut total) = (0, 0);
            for _ in 0..3000 {
                n = n.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                let pick = |k: u32, m: usize| ((n >> k) as usize) % m;
                let port = |k: u32| match pick(k, 3) {
                    0 => (n >> (k + 2)) as u16,
                    _ => ports[pick(k + 2, ports.len())],
                };
                let proto = [6u8, 17, 1][pick(1, 3)];
                let r = Record {
                    interface: ifaces[pick(4, 3)].map(str::as_bytes),
                    src: addrs[pick(7, 6)],
                    dst: addrs[pick(10, 6)],
                    proto: IpProto(proto),
                    sport: (proto != 1).then(|| port(13)),
                    dport: (proto != 1).then(|| port(33)),
                    start: None,
                    action: Action::Accept,
                    direction: [None, Some(FlowDirection::Ingress), Some(FlowDirection::Egress)][pick(60, 3)],
                };
                let reverse = super::super::flowlogs::reply_of(&r);
                for r in [r, reverse] {
                    let (a, b) = (memo.judge(&r), judge(&rules, &r));
                    prop_assert_eq!(format!("{a:?}"), format!("{b:?}"), "{:?}", r);
                    allowed += usize::from(a.judgement.verdict == Verdict::Allow);
                    total += 1;
                }
            }
            // Not a policy that decides everything one way only.
            prop_assert!(allowed < total);
        }
    }
}
