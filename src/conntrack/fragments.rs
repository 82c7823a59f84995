//! Verdicts of first fragments, remembered for the fragments that follow
//! (SPEC §2.7): later fragments carry no ports, so they take the verdict of
//! their datagram's first fragment.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::base::Nanos;

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
