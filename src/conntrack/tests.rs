//! The table's transitions, timeouts, clock and capacity, on synthetic
//! flows and times.

use std::net::Ipv4Addr;

use super::tcp::{ACK, SYN};
use super::*;

const SEC: Nanos = 1_000_000_000;
const MS: Nanos = 1_000_000;
const DAY: Nanos = 86_400 * SEC;
const T0: Nanos = 1_700_000_000 * SEC;

fn table(f: impl FnOnce(&mut Config)) -> Conntrack {
    let mut s = Config::default();
    f(&mut s);
    Conntrack::new(&s)
}

fn flow(sport: u16, dport: u16, proto: u8) -> FlowKey {
    FlowKey {
        zone: 0,
        src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        sport,
        dport,
        proto,
    }
}

fn reply(k: &FlowKey) -> FlowKey {
    FlowKey {
        src: k.dst,
        dst: k.src,
        sport: k.dport,
        dport: k.sport,
        ..*k
    }
}

/// A packet as the engine handles it: tracked, or opening an entry.
fn packet(ct: &mut Conntrack, k: &FlowKey, class: Class, now: Nanos) -> Outcome {
    let p = ct.prepare(k);
    let o = ct.track(&p, class, now);
    if o == Outcome::New {
        ct.open(&p, class, now).expect("room");
    }
    o
}

fn handshake(ct: &mut Conntrack, k: &FlowKey, now: Nanos) {
    let tcp = |flags| Class::Tcp { flags };
    assert_eq!(packet(ct, k, tcp(SYN), now), Outcome::New);
    assert_eq!(packet(ct, &reply(k), tcp(SYN | ACK), now), Outcome::Tracked);
    assert_eq!(packet(ct, k, tcp(ACK), now), Outcome::Tracked);
    assert_eq!(ct.entries(), [(6, TcpState::Established, true)]);
}

#[test]
fn a_20_day_timeout_expires_across_a_100_day_gap() {
    let ack = Class::Tcp { flags: ACK };
    let mut ct = table(|s| s.timeouts.tcp_established = 1_728_000);
    let k = flow(40000, 443, 6);
    handshake(&mut ct, &k, T0);
    // 19 days later it is still established...
    assert_eq!(
        packet(&mut ct, &reply(&k), ack, T0 + 19 * DAY),
        Outcome::Tracked
    );
    // ...and 100 days after that it has long expired: a new flow.
    let p = ct.prepare(&k);
    assert_eq!(ct.track(&p, ack, T0 + 119 * DAY), Outcome::New);
    assert!(ct.is_empty());
}

#[test]
fn expiry_is_exact_across_every_gap() {
    let ack = Class::Tcp { flags: ACK };
    for timeout in [1, 2_147_484, 1_728_000, 4_294_968, Timeouts::MAX] {
        let ms = u64::from(timeout) * 1000 * MS;
        for gap in [ms - MS, ms] {
            let mut ct = table(|s| s.timeouts.tcp_established = timeout);
            let k = flow(40000, 443, 6);
            handshake(&mut ct, &k, T0);
            let p = ct.prepare(&k);
            let want = if gap < ms {
                Outcome::Tracked
            } else {
                Outcome::New
            };
            assert_eq!(
                ct.track(&p, ack, T0 + gap),
                want,
                "{timeout} s, gap {gap} ns"
            );
        }
    }
}

#[test]
fn times_stay_exact_when_the_clock_passes_what_a_stamp_holds() {
    let gre = Class::Other;
    let ack = Class::Tcp { flags: ACK };
    let mut ct = table(|s| {
        s.timeouts.other = Timeouts::MAX;
        s.timeouts.tcp_established = 1_728_000;
    });
    let x = flow(0, 0, 47);
    let year = 365 * DAY;
    // X is kept alive every 9 years, past the 34.8 years a stamp holds.
    for n in 0..4 {
        let o = packet(&mut ct, &x, gre, T0 + n * 9 * year);
        assert_eq!(
            o,
            if n == 0 {
                Outcome::New
            } else {
                Outcome::Tracked
            }
        );
    }
    let x_last = T0 + 36 * year;
    // Y is established and answered a day before the clock passes a
    // stamp's range, and its next packet comes 19 days later, after it.
    let edge = T0 + Stamp::MAX * MS;
    let y = flow(40000, 443, 6);
    assert_eq!(packet(&mut ct, &y, ack, edge - DAY), Outcome::New);
    assert_eq!(
        packet(&mut ct, &reply(&y), ack, edge - DAY),
        Outcome::Tracked
    );
    let y_last = edge + 18 * DAY;
    assert_eq!(packet(&mut ct, &y, ack, y_last), Outcome::Tracked);
    // Both expire to the millisecond.
    let py = ct.prepare(&y);
    assert!(ct.is_tracked(&py, y_last + 20 * DAY - MS));
    assert!(!ct.is_tracked(&py, y_last + 20 * DAY));
    assert_eq!(packet(&mut ct, &x, gre, x_last), Outcome::Tracked);
    let px = ct.prepare(&x);
    assert!(ct.is_tracked(&px, x_last + 3650 * DAY - MS));
    assert!(!ct.is_tracked(&px, x_last + 3650 * DAY));
    // A time far beyond any timeout (the fuzzers' u64::MAX / 2) empties
    // the table (Y expired but was not swept yet).
    assert_eq!(ct.expire(u64::MAX / 2), 2);
    assert!(ct.is_empty());
    assert_eq!(packet(&mut ct, &x, gre, u64::MAX), Outcome::New);
    assert_eq!(packet(&mut ct, &x, gre, u64::MAX), Outcome::Tracked);
}

#[test]
fn time_never_goes_backwards() {
    let udp = Class::Udp;
    let mut ct = table(|s| s.timeouts.udp = 30);
    let a = flow(5000, 53, 17);
    assert_eq!(packet(&mut ct, &a, udp, T0), Outcome::New);
    assert_eq!(packet(&mut ct, &a, udp, T0 + 20 * SEC), Outcome::Tracked);
    // An older packet is judged at the latest time: it does not make the
    // entry older (the entry lives 30 s from T0 + 20 s, not from T0 + 5 s)...
    assert_eq!(packet(&mut ct, &a, udp, T0 + 5 * SEC), Outcome::Tracked);
    assert_eq!(packet(&mut ct, &a, udp, T0 + 49 * SEC), Outcome::Tracked);
    // ...nor revives one that has expired by then.
    let b = flow(5001, 53, 17);
    assert_eq!(packet(&mut ct, &b, udp, T0 + 50 * SEC), Outcome::New);
    assert_eq!(packet(&mut ct, &a, udp, T0 + 100 * SEC), Outcome::New);
    let p = ct.prepare(&b);
    assert_eq!(ct.track(&p, udp, T0 + 60 * SEC), Outcome::New);
    // A time before the first packet's is the latest time too.
    assert_eq!(packet(&mut ct, &a, udp, 0), Outcome::Tracked);
}

/// `n` SYNs of distinct flows from `base` on, 1 ms apart from `t`: entries
/// nobody answered.
fn syns(ct: &mut Conntrack, base: u16, n: u16, t: Nanos) -> Vec<Result<Opened, Full>> {
    (0..n)
        .map(|i| {
            let k = flow(base + i, 443, 6);
            let p = ct.prepare(&k);
            let now = t + Nanos::from(i) * MS;
            assert_eq!(ct.track(&p, Class::Tcp { flags: SYN }, now), Outcome::New);
            ct.open(&p, Class::Tcp { flags: SYN }, now)
        })
        .collect()
}

#[test]
fn a_table_above_a_lowered_limit_evicts_for_new_flows_instead_of_refusing() {
    let mut ct = table(|s| s.max_entries = 100);
    assert!(syns(&mut ct, 1000, 100, T0).iter().all(Result::is_ok));
    assert_eq!(ct.len(), 100);
    // A reload halves the limit: the table holds twice what it may.
    ct.reconfigure(&Config {
        max_entries: 50,
        ..Config::default()
    });
    // Every new flow evicts an unassured entry and is taken (SPEC §2.8:
    // conntrack-full only when every entry is assured); the table keeps
    // its size, and holds no more than before.
    let opened = syns(&mut ct, 2000, 100, T0 + SEC);
    assert!(
        opened.iter().all(|o| o == &Ok(Opened { early_drop: true })),
        "{opened:?}"
    );
    assert_eq!(ct.len(), 100);
    // As entries expire the table comes down to the new limit and keeps it.
    let later = T0 + 122 * SEC;
    assert_eq!(ct.expire(later), 100);
    assert!(syns(&mut ct, 3000, 80, later).iter().all(Result::is_ok));
    assert_eq!(ct.len(), 50);
}

#[test]
fn a_table_above_a_lowered_limit_with_only_assured_entries_refuses() {
    let mut ct = table(|s| s.max_entries = 4);
    for port in 0..4 {
        let k = flow(40000 + port, 443, 6);
        let tcp = |flags| Class::Tcp { flags };
        assert_eq!(packet(&mut ct, &k, tcp(SYN), T0), Outcome::New);
        packet(&mut ct, &reply(&k), tcp(SYN | ACK), T0);
        packet(&mut ct, &k, tcp(ACK), T0);
    }
    assert!(ct.entries().iter().all(|e| e.2));
    ct.reconfigure(&Config {
        max_entries: 2,
        ..Config::default()
    });
    assert_eq!(
        syns(&mut ct, 1000, 1, T0 + SEC),
        [Err(Full { interface: None })]
    );
    assert_eq!(ct.len(), 4);
}
