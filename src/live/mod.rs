//! Live modes: `sgplane run` (inline between two TAP devices or interfaces)
//! and `sgplane gwlb` (the Gateway Load Balancer appliance).
//!
//! What they share is here: [`control`] (the reloadable policy, signals,
//! draining), [`metrics`] (counters, Prometheus and health endpoints) and
//! [`dispatch_hash`], which sends both directions of a conversation to the
//! same worker so each worker's connection tracking sees all of it.

pub mod control;
pub mod gwlb;
pub mod inline;
pub mod metrics;

use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;

use crate::wire::{parse, Frame, LinkType, ParseOptions};

/// A hash that is the same for both directions of traffic between two
/// addresses (in one zone), so all of it reaches the same worker: every
/// port (later fragments carry none) and the ICMP errors about it (hashed by
/// the addresses of the packet they quote). Frames that are not IP hash to 0.
pub fn dispatch_hash(link: LinkType, data: &[u8], opts: ParseOptions) -> u64 {
    let Ok(Frame::Ip(p)) = parse(link, data, data.len(), opts) else {
        return 0;
    };
    let (a, b) = match p.quoted(data) {
        Some(q) => (q.src, q.dst),
        None => (p.src, p.dst),
    };
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut h = foldhash::fast::FixedState::with_seed(0x0053_4750_4c41_4e45).build_hasher();
    h.write_u64(p.tunnel.as_ref().and_then(|t| t.zone).unwrap_or(0));
    write_addr(&mut h, lo);
    write_addr(&mut h, hi);
    h.finish()
}

fn write_addr(h: &mut impl Hasher, a: IpAddr) {
    match a {
        IpAddr::V4(v4) => h.write_u32(u32::from(v4)),
        IpAddr::V6(v6) => h.write_u128(u128::from(v6)),
    }
}

/// The worker for a hash among `n`.
#[inline]
pub fn worker_of(hash: u64, n: usize) -> usize {
    // Multiply-shift: uniform over n without a division.
    ((u128::from(hash) * n as u128) >> 64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::build;

    #[test]
    fn both_directions_and_their_icmp_errors_meet() {
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        let o = ParseOptions::default();
        let a = build::udp(ip("10.0.0.1"), ip("10.0.0.2"), 5000, 53, b"q");
        let b = build::udp(ip("10.0.0.2"), ip("10.0.0.1"), 53, 5000, b"r");
        let other_port = build::tcp(ip("10.0.0.2"), ip("10.0.0.1"), 80, 1, 0x10, 1, 1, b"");
        let err = build::icmp_error(ip("10.9.9.9"), ip("10.0.0.1"), 11, 0, &a);
        let h = dispatch_hash(LinkType::Ethernet, &a, o);
        assert_eq!(h, dispatch_hash(LinkType::Ethernet, &b, o));
        assert_eq!(h, dispatch_hash(LinkType::Ethernet, &other_port, o));
        assert_eq!(h, dispatch_hash(LinkType::Ethernet, &err, o));
        let c = build::udp(ip("10.0.0.1"), ip("10.0.0.3"), 5000, 53, b"q");
        assert_ne!(h, dispatch_hash(LinkType::Ethernet, &c, o));
        for n in 1..5 {
            assert!(worker_of(h, n) < n);
        }
    }
}
