//! Judgements of flow-log records remembered by what decides them, so a
//! log's many records of the same flow between the same hosts are judged
//! once (issue 17's records/s).
//!
//! A record's judgement ([`judge_at`]) follows from its interface, its
//! addresses, protocol, ports and `flow-direction` alone: no state, no
//! time. Those are the key, less the source port when no security-group
//! rule of the policy names source ports (network ACL entries never do):
//! then every source port is judged alike, and a client's connections
//! from ever-new ephemeral ports share one entry. The memo is a
//! table of two places per key (two-choice, like a 2-way cache): a
//! colliding key replaces an entry, so memory is
//! fixed and a miss costs one judgement, as without the memo.

use std::net::IpAddr;

use crate::engine::{Judgement, Ruleset};
use crate::io::flowlog::{FlowDirection, Record};
use crate::policy::nacl::AclDecision;
use crate::policy::{Direction, IfaceId, Reason, RuleId, Verdict, ZoneId};

use super::flowlogs::{judge_at, RecordJudgement};

/// Entries of the table (a power of two).
const SLOTS: usize = 1 << 14;
/// Interface names remembered before the name table starts anew.
const NAMES: usize = 1 << 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    iface: Option<IfaceId>,
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    sport: Option<u16>,
    dport: Option<u16>,
    /// 0 none, 1 ingress, 2 egress.
    direction: u8,
}

impl Key {
    /// A quick mix of every field (the table's index is its low bits).
    fn hash(&self) -> u64 {
        fn bits(a: IpAddr) -> u128 {
            match a {
                IpAddr::V4(a) => u128::from(a.to_bits()),
                IpAddr::V6(a) => a.to_bits() ^ (1 << 64),
            }
        }
        let (s, d) = (bits(self.src), bits(self.dst));
        let ports = u64::from(self.sport.map_or(0x1_0000, u32::from))
            | u64::from(self.dport.map_or(0x1_0000, u32::from)) << 17;
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

/// A judgement as remembered: a record's has no packet.
#[derive(Debug, Clone, Copy)]
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

pub(super) struct JudgeMemo<'r> {
    rules: &'r Ruleset,
    sport_matters: bool,
    slots: Vec<Option<(Key, Kept)>>,
    /// `interface-id` values seen, and the policy's interface each names.
    names: std::collections::HashMap<Box<str>, Option<IfaceId>, foldhash::fast::FixedState>,
    /// The name last looked up and its interface (a buffer kept, so no
    /// allocation per record).
    last: (String, Option<IfaceId>),
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
            slots: vec![None; SLOTS],
            names: Default::default(),
            last: (String::from("\0"), None),
        }
    }

    pub(super) fn rules(&self) -> &'r Ruleset {
        self.rules
    }

    fn interface(&mut self, name: &str) -> Option<IfaceId> {
        if self.last.0 == name {
            return self.last.1;
        }
        let i = self.named(name);
        self.last.0.clear();
        self.last.0.push_str(name);
        self.last.1 = i;
        i
    }

    fn named(&mut self, name: &str) -> Option<IfaceId> {
        if let Some(&i) = self.names.get(name) {
            return i;
        }
        let i = self.rules.policy.interface_id(name);
        if self.names.len() >= NAMES {
            self.names.clear();
        }
        self.names.insert(name.into(), i);
        i
    }

    /// The record's judgement: [`super::flowlogs::judge`]'s, remembered.
    pub(super) fn judge(&mut self, r: &Record) -> RecordJudgement {
        let iface = r.interface.and_then(|n| self.interface(n));
        let key = Key {
            iface,
            src: r.src,
            dst: r.dst,
            proto: r.proto.0,
            sport: if self.sport_matters { r.sport } else { None },
            dport: r.dport,
            direction: match r.direction {
                None => 0,
                Some(FlowDirection::Ingress) => 1,
                Some(FlowDirection::Egress) => 2,
            },
        };
        // Two neighbouring places a key may be in (one memory fetch); a new
        // key takes an empty one, else the first, whose entry moves on.
        let a = key.hash() as usize & (SLOTS - 1);
        let b = a ^ 1;
        for slot in [a, b] {
            if let Some((k, j)) = &self.slots[slot] {
                if *k == key {
                    return j.judgement();
                }
            }
        }
        let j = judge_at(self.rules, iface, r);
        let kept = Some((key, Kept::of(&j)));
        if self.slots[b].is_none() {
            self.slots[b] = kept;
        } else {
            self.slots[b] = self.slots[a].take();
            self.slots[a] = kept;
        }
        j
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::IpProto;
    use crate::io::flowlog::Action;
    use crate::policy::{Policy, Verdict};
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
        let addrs: [IpAddr; 5] = [
            "10.0.1.10".parse().unwrap(),
            "10.0.2.20".parse().unwrap(),
            "10.0.9.9".parse().unwrap(),
            "203.0.113.5".parse().unwrap(),
            "10.0.1.11".parse().unwrap(),
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
                interface: ifaces[pick(5, 4)],
                src: addrs[pick(8, 5)],
                dst: addrs[pick(11, 5)],
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
