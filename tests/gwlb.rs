//! `sgplane gwlb` played over loopback: a small GWLB simulator sends GENEVE
//! from a "load balancer node" address to the appliance and receives the
//! returns on the node's port 6081, as AWS does.
//!
//! Each test has its own pair of loopback addresses 127.N.0.1 (node) and
//! 127.N.0.2 (appliance, health on :8080, metrics on :9100), so tests run in
//! parallel. The appliance needs a raw socket: without root the tests say so
//! and pass. The IPv6-outer test runs in a network namespace of its own.
//!
//! The appliance returns through UDP sockets (UDP GSO) unless told to use
//! its raw socket for everything; the tests that run it in this process
//! check both ways out, and what falls back to the raw socket.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sgplane::live::control::Control;
use sgplane::live::gwlb::{self, socket, GwlbOptions, Tuning};
use sgplane::policy::Policy;
use sgplane::wire::build;

mod common;
use common::is_root;

const GENEVE_PORT: u16 = 6081;
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH_ACK: u8 = 0x18;
const SYN_ACK: u8 = 0x12;
const FIN_ACK: u8 = 0x11;

/// Web servers in 10.0.1.10 and 2001:db8:1::10 take TCP 443 and pings; they
/// may send nothing (no egress rules), so replies pass only by conntrack.
const POLICY: &str = r#"
[security_groups.sg-web]
ingress = [
  { proto = "tcp", ports = "443", from = ["0.0.0.0/0", "::/0"] },
  { proto = "icmp", icmp_type = 8, from = "0.0.0.0/0" },
  { proto = "icmpv6", icmp_type = 128, from = "::/0" },
]
[interfaces.web]
addresses = ["10.0.1.10", "2001:db8:1::10"]
security_groups = ["sg-web"]
"#;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

macro_rules! need_root {
    () => {
        if !is_root() {
            eprintln!("SKIPPED: sgplane gwlb needs root (a raw socket); run the tests as root");
            return;
        }
    };
}

fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let until = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An HTTP GET: (status, body), or None if nothing answers.
fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: sgplane\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Some((status, body))
}

/// The value of a metric line (exact name with labels), 0 if absent.
fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .map_or(0, |v| v.trim().parse().unwrap())
}

/// The UDP payload GWLB sends: GENEVE with the AWS options, and the inner packet.
fn geneve(inner_frame: &[u8], endpoint: u64, cookie: u32) -> Vec<u8> {
    let outer = build::geneve_wrap(
        ip("192.0.2.1"),
        ip("192.0.2.2"),
        1,
        inner_frame,
        &build::aws_options(endpoint, 0x77, cookie),
    );
    outer[14 + 20 + 8..].to_vec()
}

/// A running `sgplane gwlb` on 127.N.0.2.
struct Appliance {
    child: Child,
    dir: tempfile::TempDir,
    net: u8,
}

impl Appliance {
    fn start(net: u8, policy: &str, args: &[&str]) -> Appliance {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("policy.toml"), policy).unwrap();
        let a = |port: u16| format!("127.{net}.0.2:{port}");
        // Another appliance on these addresses (left over by a run that was
        // killed, or another run of these tests on this machine) would answer
        // the health check below while ours fails to bind, and the test
        // would measure that one: its policy, its table, its traffic.
        let health: SocketAddr = a(8080).parse().unwrap();
        assert!(
            http_get(health, "/").is_none() && UdpSocket::bind(a(GENEVE_PORT)).is_ok(),
            "127.{net}.0.2 is taken: another sgplane gwlb serves there (a leftover of \
             another run?); the test would talk to it instead of its own"
        );
        let child = Command::new(env!("CARGO_BIN_EXE_sgplane"))
            .arg("-c")
            .arg(dir.path().join("policy.toml"))
            .args([
                "gwlb",
                "--listen",
                &a(GENEVE_PORT),
                "--health",
                &a(8080),
                "--metrics",
                &a(9100),
            ])
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(std::fs::File::create(dir.path().join("stdout")).unwrap())
            .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap())
            .spawn()
            .unwrap();
        let mut me = Appliance { child, dir, net };
        let health = me.health_addr();
        wait_until(
            "the health check to answer",
            Duration::from_secs(10),
            || {
                if let Ok(Some(status)) = me.child.try_wait() {
                    panic!("sgplane gwlb exited with {status}: {}", me.stderr());
                }
                http_get(health, "/").is_some_and(|(s, _)| s == 200)
            },
        );
        // The answer came from our own appliance only if it still runs.
        if let Ok(Some(status)) = me.child.try_wait() {
            panic!("sgplane gwlb exited with {status}: {}", me.stderr());
        }
        me
    }

    fn addr(&self) -> IpAddr {
        format!("127.{}.0.2", self.net).parse().unwrap()
    }

    fn health_addr(&self) -> SocketAddr {
        format!("127.{}.0.2:8080", self.net).parse().unwrap()
    }

    fn metrics(&self) -> String {
        let addr = format!("127.{}.0.2:9100", self.net).parse().unwrap();
        let (status, body) = http_get(addr, "/metrics").expect("metrics answer");
        assert_eq!(status, 200);
        body
    }

    /// Waits until a metric reaches `want` (counters are published every 100 ms).
    fn wait_metric(&self, name: &str, want: u64) {
        let mut last = String::new();
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            last = self.metrics();
            if metric(&last, name) == want {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{name} is {} not {want}:\n{last}", metric(&last, name));
    }

    fn policy_path(&self) -> PathBuf {
        self.dir.path().join("policy.toml")
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stdout")).unwrap_or_default()
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let until = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < until,
                "sgplane gwlb did not exit: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Appliance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The load balancer node: sends from its own ports, receives returns on 6081.
struct Gwlb {
    node: IpAddr,
    appliance: SocketAddr,
    rx: UdpSocket,
}

impl Gwlb {
    fn new(node: IpAddr, appliance: IpAddr) -> Gwlb {
        let rx = UdpSocket::bind(SocketAddr::new(node, GENEVE_PORT)).unwrap();
        Gwlb {
            node,
            appliance: SocketAddr::new(appliance, GENEVE_PORT),
            rx,
        }
    }

    /// A node receiving on `port` of its own address while the appliance
    /// listens on that port of the wildcard address: the node's socket
    /// needs `SO_REUSEPORT` (the appliance's have it) to share the port.
    fn beside_wildcard(node: IpAddr, appliance: IpAddr, port: u16) -> Gwlb {
        // The appliance first binds a plain socket to see that the port is
        // free (`InProcess::start` may see the port taken by that one): it
        // shares the port only once its group is bound.
        let addr = SocketAddr::new(node, port);
        let until = Instant::now() + Duration::from_secs(5);
        let rx = loop {
            match socket::UdpSocket::bind(addr, false, 1 << 20) {
                Ok(rx) => break rx,
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && Instant::now() < until => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("binding {addr} beside the appliance: {e}"),
            }
        };
        let rx = UdpSocket::from(std::os::fd::OwnedFd::from(rx));
        rx.set_nonblocking(false).unwrap();
        Gwlb {
            node,
            appliance: SocketAddr::new(appliance, port),
            rx,
        }
    }

    fn for_test(a: &Appliance) -> Gwlb {
        Gwlb::new(format!("127.{}.0.1", a.net).parse().unwrap(), a.addr())
    }

    /// A sending socket: one source port, as GWLB uses one per flow direction.
    fn port(&self) -> UdpSocket {
        UdpSocket::bind(SocketAddr::new(self.node, 0)).unwrap()
    }

    fn send(&self, from: &UdpSocket, payload: &[u8]) {
        from.send_to(payload, self.appliance).unwrap();
    }

    /// The next return within `timeout`: (sender, UDP payload).
    fn recv(&self, timeout: Duration) -> Option<(SocketAddr, Vec<u8>)> {
        self.rx.set_read_timeout(Some(timeout)).unwrap();
        let mut buf = vec![0u8; 65536];
        match self.rx.recv_from(&mut buf) {
            Ok((n, from)) => Some((from, buf[..n].to_vec())),
            Err(_) => None,
        }
    }

    /// Sends a packet and checks it comes back as SPEC §5 says: from the
    /// appliance, the sender's source port, the UDP payload byte for byte.
    fn round_trip(&self, from: &UdpSocket, payload: &[u8]) {
        self.send(from, payload);
        let (src, got) = self
            .recv(Duration::from_secs(3))
            .expect("the packet to come back");
        assert_eq!(
            src,
            SocketAddr::new(self.appliance.ip(), from.local_addr().unwrap().port())
        );
        assert_eq!(
            got, payload,
            "returned with the GENEVE header and packet as sent"
        );
    }

    /// Sends packets that must not come back, then an allowed probe that must.
    fn dropped(
        &self,
        from: &UdpSocket,
        payloads: &[Vec<u8>],
        probe_from: &UdpSocket,
        probe: &[u8],
    ) {
        for p in payloads {
            self.send(from, p);
        }
        std::thread::sleep(Duration::from_millis(200));
        self.round_trip(probe_from, probe);
        assert!(
            self.recv(Duration::from_millis(200)).is_none(),
            "nothing else comes back"
        );
    }
}

/// A TCP conversation between a client and a server through the appliance,
/// each direction from its own GWLB source port.
struct Tcp<'a> {
    g: &'a Gwlb,
    client: (IpAddr, u16),
    server: (IpAddr, u16),
    fwd: UdpSocket,
    rev: UdpSocket,
    endpoint: u64,
}

impl<'a> Tcp<'a> {
    fn new(
        g: &'a Gwlb,
        client: &str,
        cport: u16,
        server: &str,
        sport: u16,
        endpoint: u64,
    ) -> Tcp<'a> {
        Tcp {
            g,
            client: (ip(client), cport),
            server: (ip(server), sport),
            fwd: g.port(),
            rev: g.port(),
            endpoint,
        }
    }

    fn to_server(&self, flags: u8, data: &[u8]) -> Vec<u8> {
        let f = build::tcp(
            self.client.0,
            self.server.0,
            self.client.1,
            self.server.1,
            flags,
            1000,
            2000,
            data,
        );
        geneve(&f, self.endpoint, 0xc0c0)
    }

    fn to_client(&self, flags: u8, data: &[u8]) -> Vec<u8> {
        let f = build::tcp(
            self.server.0,
            self.client.0,
            self.server.1,
            self.client.1,
            flags,
            2000,
            1001,
            data,
        );
        geneve(&f, self.endpoint, 0xc0c1)
    }

    fn handshake(&self) {
        self.g.round_trip(&self.fwd, &self.to_server(SYN, b""));
        self.g.round_trip(&self.rev, &self.to_client(SYN_ACK, b""));
        self.g.round_trip(&self.fwd, &self.to_server(ACK, b""));
    }
}

#[test]
fn a_tcp_handshake_and_data_pass_and_replies_ride_conntrack() {
    need_root!();
    let a = Appliance::start(61, POLICY, &["--workers", "2"]);
    let g = Gwlb::for_test(&a);
    // The server may not open connections: its replies pass only as `established`.
    let t = Tcp::new(&g, "198.51.100.7", 40001, "10.0.1.10", 443, 0xe1);
    let unsolicited = t.g.port();
    g.dropped(
        &unsolicited,
        &[t.to_client(SYN, b"")],
        &t.fwd,
        &t.to_server(SYN, b""),
    );
    g.round_trip(&t.rev, &t.to_client(SYN_ACK, b""));
    g.round_trip(&t.fwd, &t.to_server(ACK, b""));
    for i in 0..20u8 {
        g.round_trip(&t.fwd, &t.to_server(PSH_ACK, &[i; 100]));
        g.round_trip(&t.rev, &t.to_client(PSH_ACK, &[i; 1400]));
    }
    g.round_trip(&t.fwd, &t.to_server(FIN_ACK, b""));
    g.round_trip(&t.rev, &t.to_client(FIN_ACK, b""));
    g.round_trip(&t.fwd, &t.to_server(ACK, b""));
    a.wait_metric(
        r#"sgplane_packets_total{verdict="allow",reason="established"}"#,
        45,
    );
    a.wait_metric(r#"sgplane_packets_total{verdict="allow",reason="rule"}"#, 1);
    a.wait_metric(
        r#"sgplane_packets_total{verdict="deny",reason="no-rule"}"#,
        1,
    );
}

/// GWLB sends inner packets of at most 8500 bytes; a larger one is judged
/// like any other and counted as oversized.
#[test]
fn inner_packets_larger_than_gwlbs_are_judged_and_counted() {
    need_root!();
    let a = Appliance::start(74, POLICY, &["--workers", "2"]);
    let g = Gwlb::for_test(&a);
    let t = Tcp::new(&g, "198.51.100.7", 40009, "10.0.1.10", 443, 0xe1);
    t.handshake();
    g.round_trip(&t.fwd, &t.to_server(PSH_ACK, &[7; 8400]));
    a.wait_metric(r#"sgplane_gwlb_oversized_packets_total"#, 0);
    g.round_trip(&t.fwd, &t.to_server(PSH_ACK, &[7; 9000]));
    a.wait_metric(r#"sgplane_gwlb_oversized_packets_total"#, 1);
    a.wait_metric(
        r#"sgplane_packets_total{verdict="allow",reason="established"}"#,
        4,
    );
}

#[test]
fn denied_ports_are_not_returned() {
    need_root!();
    let a = Appliance::start(62, POLICY, &["--workers", "2"]);
    let g = Gwlb::for_test(&a);
    let ssh = Tcp::new(&g, "198.51.100.7", 40002, "10.0.1.10", 22, 0xe1);
    let web = Tcp::new(&g, "198.51.100.7", 40003, "10.0.1.10", 443, 0xe1);
    let udp = geneve(
        &build::udp(ip("198.51.100.7"), ip("10.0.1.10"), 5000, 53, b"q"),
        0xe1,
        1,
    );
    // Data with no connection is picked up only if the rules allow it.
    g.dropped(
        &ssh.fwd,
        &[ssh.to_server(SYN, b""), ssh.to_server(PSH_ACK, b"x"), udp],
        &web.fwd,
        &web.to_server(SYN, b""),
    );
    a.wait_metric(
        r#"sgplane_packets_total{verdict="deny",reason="no-rule"}"#,
        3,
    );
    a.wait_metric("sgplane_gwlb_returned_packets_total", 1);
}

#[test]
fn icmp_echo_requests_pass_and_their_replies_follow() {
    need_root!();
    let a = Appliance::start(63, POLICY, &["--workers", "2"]);
    let g = Gwlb::for_test(&a);
    let (client, server) = (ip("198.51.100.9"), ip("10.0.1.10"));
    let (fwd, rev) = (g.port(), g.port());
    let stray = geneve(&build::echo(server, client, false, 99, 1), 0xe1, 1);
    let request = geneve(&build::echo(client, server, true, 7, 1), 0xe1, 1);
    g.dropped(&rev, &[stray], &fwd, &request);
    g.round_trip(
        &rev,
        &geneve(&build::echo(server, client, false, 7, 1), 0xe1, 1),
    );
    // A server's own ping is not allowed out.
    let out = geneve(&build::echo(server, client, true, 8, 1), 0xe1, 1);
    g.dropped(
        &rev,
        &[out],
        &fwd,
        &geneve(&build::echo(client, server, true, 7, 2), 0xe1, 1),
    );
}

#[test]
fn each_return_carries_the_latest_cookie_of_its_flow() {
    need_root!();
    let a = Appliance::start(64, POLICY, &["--workers", "2"]);
    let g = Gwlb::for_test(&a);
    let (c, s) = (ip("198.51.100.10"), ip("10.0.1.10"));
    let (fwd, rev) = (g.port(), g.port());
    let syn = build::tcp(c, s, 40010, 443, SYN, 1, 0, b"");
    let syn_ack = build::tcp(s, c, 443, 40010, SYN_ACK, 1, 2, b"");
    let data = build::tcp(c, s, 40010, 443, PSH_ACK, 2, 2, b"hello");
    g.round_trip(&fwd, &geneve(&syn, 0xe1, 0x1111_1111));
    g.round_trip(&rev, &geneve(&syn_ack, 0xe1, 0x2222_2222));
    for cookie in [0x1111_1111, 0x3333_3333, 0x4444_4444] {
        let sent = geneve(&data, 0xe1, cookie);
        g.send(&fwd, &sent);
        let (_, got) = g.recv(Duration::from_secs(3)).expect("returned");
        assert_eq!(
            &got[8..40],
            &build::aws_options(0xe1, 0x77, cookie)[..],
            "options as last received"
        );
        assert_eq!(got, sent);
    }
}

const ZONES: &str = r#"
[security_groups.sg-a]
ingress = [ { proto = "tcp", ports = "443", from = "0.0.0.0/0" } ]
[security_groups.sg-b]
ingress = [ { proto = "tcp", ports = "80", from = "0.0.0.0/0" } ]
[interfaces.web-a]
addresses = ["10.9.0.2"]
security_groups = ["sg-a"]
zone = "vpce-0000000000000000a"
[interfaces.web-b]
addresses = ["10.9.0.2"]
security_groups = ["sg-b"]
zone = "vpce-0000000000000000b"
"#;

#[test]
fn zones_keep_overlapping_addresses_apart() {
    need_root!();
    let a = Appliance::start(65, ZONES, &["--workers", "2"]);
    let g = Gwlb::for_test(&a);
    let in_a = Tcp::new(&g, "10.9.0.1", 40020, "10.9.0.2", 443, 0xa);
    let in_b = Tcp::new(&g, "10.9.0.1", 40020, "10.9.0.2", 443, 0xb);
    in_a.handshake();
    // The same addresses and ports behind the other endpoint: another flow,
    // other rules, and the reply is not established there.
    g.dropped(
        &in_b.fwd,
        &[in_b.to_server(SYN, b""), in_b.to_client(PSH_ACK, b"")],
        &in_a.fwd,
        &in_a.to_server(PSH_ACK, b"a"),
    );
    Tcp::new(&g, "10.9.0.1", 40021, "10.9.0.2", 80, 0xb).handshake();
    let a80 = Tcp::new(&g, "10.9.0.1", 40022, "10.9.0.2", 80, 0xa);
    g.dropped(
        &a80.fwd,
        &[a80.to_server(SYN, b"")],
        &in_a.rev,
        &in_a.to_client(PSH_ACK, b"b"),
    );
}

#[test]
fn ipv6_inner_packets_are_judged() {
    need_root!();
    let a = Appliance::start(66, POLICY, &["--workers", "2"]);
    let g = Gwlb::for_test(&a);
    let t = Tcp::new(&g, "2001:db8:ff::7", 40030, "2001:db8:1::10", 443, 0xe1);
    t.handshake();
    g.round_trip(&t.rev, &t.to_client(PSH_ACK, &[7; 1000]));
    let denied = Tcp::new(&g, "2001:db8:ff::7", 40031, "2001:db8:1::10", 80, 0xe1);
    g.dropped(
        &denied.fwd,
        &[denied.to_server(SYN, b"")],
        &t.fwd,
        &t.to_server(PSH_ACK, b"x"),
    );
    let (c, s) = (ip("2001:db8:ff::7"), ip("2001:db8:1::10"));
    g.round_trip(&t.fwd, &geneve(&build::echo(c, s, true, 5, 1), 0xe1, 1));
    g.round_trip(&t.rev, &geneve(&build::echo(s, c, false, 5, 1), 0xe1, 1));
}

/// GENEVE with the given option TLVs and protocol type around `inner_ip`.
fn geneve_raw(options: &[u8], protocol: u16, inner_ip: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 8 + options.len()];
    sgplane::wire::geneve::emit(&mut p, 0, protocol, options).unwrap();
    p.extend_from_slice(inner_ip);
    p
}

#[test]
fn malformed_geneve_is_dropped_and_counted_while_serving_goes_on() {
    need_root!();
    let a = Appliance::start(67, POLICY, &["--workers", "2"]);
    let g = Gwlb::for_test(&a);
    let t = Tcp::new(&g, "198.51.100.7", 40040, "10.0.1.10", 443, 0xe1);
    t.handshake();
    let good = t.to_server(PSH_ACK, b"ok");
    let inner = &build::tcp(
        ip("198.51.100.7"),
        ip("10.0.1.10"),
        40040,
        443,
        PSH_ACK,
        1,
        1,
        b"x",
    )[14..];
    let aws = build::aws_options(0xe1, 0x77, 1);
    let mut bad: Vec<Vec<u8>> = Vec::new();
    let mut v1 = good.clone();
    v1[0] |= 0x40; // version 1
    bad.push(v1);
    let mut past_end = good[..60].to_vec();
    past_end[0] = 0x3f; // 252 bytes of options, 52 present
    bad.push(past_end);
    bad.push(good[..5].to_vec()); // shorter than the fixed header
    bad.push(good[..20].to_vec()); // options cut short
    bad.push(geneve_raw(&aws, 0x6558, inner)); // inner Ethernet: not what GWLB sends
    bad.push(geneve_raw(&aws, 0x1234, inner)); // unknown protocol type
    bad.push(geneve_raw(&[], 0x0800, inner)); // no AWS options
    let mut oam = good.clone();
    oam[1] |= 0x80; // O bit
    bad.push(oam);
    let mut critical = aws.clone();
    critical.extend_from_slice(&[0x09, 0x99, 0x81, 0x00]); // unknown critical option
    bad.push(geneve_raw(&critical, 0x0800, inner));
    bad.extend([vec![], vec![0], vec![0; 7]]); // tiny datagrams
    g.dropped(&t.fwd, &bad, &t.fwd, &good);
    a.wait_metric(
        r#"sgplane_malformed_total{cause="GENEVE"}"#,
        bad.len() as u64,
    );
    a.wait_metric(
        r#"sgplane_packets_total{verdict="deny",reason="malformed"}"#,
        bad.len() as u64,
    );
    g.round_trip(&t.rev, &t.to_client(PSH_ACK, b"still serving"));
}

#[test]
fn health_fails_on_sigterm_established_flows_drain_then_exit_0() {
    need_root!();
    let mut a = Appliance::start(68, POLICY, &["--workers", "2", "--drain-seconds", "2"]);
    let g = Gwlb::for_test(&a);
    let t = Tcp::new(&g, "198.51.100.7", 40050, "10.0.1.10", 443, 0xe1);
    t.handshake();
    let started = Instant::now();
    a.signal("TERM");
    wait_until(
        "health checks to answer 503",
        Duration::from_secs(2),
        || http_get(a.health_addr(), "/health").is_some_and(|(s, _)| s == 503),
    );
    g.round_trip(&t.fwd, &t.to_server(PSH_ACK, b"while draining"));
    g.round_trip(&t.rev, &t.to_client(PSH_ACK, b"reply while draining"));
    assert_eq!(metric(&a.metrics(), "sgplane_draining"), 1);
    let status = a.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "{status}: {}", a.stderr());
    assert!(
        started.elapsed() >= Duration::from_millis(1900),
        "served for the drain period"
    );
    assert!(
        a.stdout().contains("packets 5 (allowed 5, denied 0)"),
        "summary: {}",
        a.stdout()
    );
}

#[test]
fn sighup_reloads_a_good_policy_and_keeps_the_old_one_on_error() {
    need_root!();
    let a = Appliance::start(69, POLICY, &["--workers", "2"]);
    let g = Gwlb::for_test(&a);
    let web = Tcp::new(&g, "198.51.100.7", 40060, "10.0.1.10", 443, 0xe1);
    web.handshake();
    let alt = Tcp::new(&g, "198.51.100.7", 40061, "10.0.1.10", 8443, 0xe1);
    g.dropped(
        &alt.fwd,
        &[alt.to_server(SYN, b"")],
        &web.fwd,
        &web.to_server(ACK, b""),
    );

    std::fs::write(
        a.policy_path(),
        POLICY.replace("ports = \"443\"", "ports = \"8443\""),
    )
    .unwrap();
    a.signal("HUP");
    a.wait_metric(r#"sgplane_policy_reloads_total{result="ok"}"#, 1);
    alt.handshake();
    // The established flow keeps flowing though its port is no longer allowed.
    g.round_trip(&web.fwd, &web.to_server(PSH_ACK, b"still established"));
    let web2 = Tcp::new(&g, "198.51.100.7", 40062, "10.0.1.10", 443, 0xe1);
    g.dropped(
        &web2.fwd,
        &[web2.to_server(SYN, b"")],
        &alt.fwd,
        &alt.to_server(ACK, b""),
    );

    std::fs::write(a.policy_path(), "[security_groups.sg-web\n").unwrap();
    a.signal("HUP");
    a.wait_metric(r#"sgplane_policy_reloads_total{result="error"}"#, 1);
    wait_until(
        "the failed reload to be logged",
        Duration::from_secs(2),
        || {
            a.stderr()
                .contains("policy not reloaded, the old one stays")
        },
    );
    assert!(
        a.stderr().contains("policy.toml:1:"),
        "the error names the place: {}",
        a.stderr()
    );
    Tcp::new(&g, "198.51.100.7", 40063, "10.0.1.10", 8443, 0xe1).handshake();
}

#[test]
fn metrics_count_verdicts_reasons_bytes_rules_and_conntrack() {
    need_root!();
    // `refuse`: the unanswered ping's entry is not evicted for the new SYN
    // (early drop would make room for it), so the SYN is `conntrack-full`.
    let policy = format!("[conntrack]\nmax_entries = 2\nwhen_full = \"refuse\"\n{POLICY}");
    let a = Appliance::start(70, &policy, &["--workers", "1"]);
    let g = Gwlb::for_test(&a);
    let t1 = Tcp::new(&g, "198.51.100.7", 40070, "10.0.1.10", 443, 0xe1);
    t1.handshake();
    let (c, s) = (ip("198.51.100.8"), ip("10.0.1.10"));
    g.round_trip(&t1.fwd, &geneve(&build::echo(c, s, true, 3, 1), 0xe1, 1));
    let full = Tcp::new(&g, "198.51.100.7", 40071, "10.0.1.10", 443, 0xe1);
    let ssh = Tcp::new(&g, "198.51.100.7", 40072, "10.0.1.10", 22, 0xe1);
    g.dropped(
        &full.fwd,
        &[
            full.to_server(SYN, b""),
            ssh.to_server(SYN, b""),
            vec![0; 3],
        ],
        &t1.fwd,
        &t1.to_server(ACK, b""),
    );
    a.wait_metric("sgplane_conntrack_full_total", 1);
    let m = a.metrics();
    let lines = [
        (r#"sgplane_packets_total{verdict="allow",reason="rule"}"#, 2),
        (
            r#"sgplane_packets_total{verdict="allow",reason="established"}"#,
            3,
        ),
        (
            r#"sgplane_packets_total{verdict="deny",reason="conntrack-full"}"#,
            1,
        ),
        (
            r#"sgplane_packets_total{verdict="deny",reason="no-rule"}"#,
            1,
        ),
        (
            r#"sgplane_packets_total{verdict="deny",reason="malformed"}"#,
            1,
        ),
        (r#"sgplane_malformed_total{cause="GENEVE"}"#, 1),
        (r#"sgplane_rule_hits_total{rule="sg-web/ingress/0"}"#, 2),
        (r#"sgplane_rule_hits_total{rule="sg-web/ingress/1"}"#, 1),
        ("sgplane_conntrack_entries", 2),
        ("sgplane_gwlb_returned_packets_total", 5),
        ("sgplane_gwlb_returned_raw_packets_total", 0),
        ("sgplane_gwlb_received_packets_total", 8),
        (r#"sgplane_workers{mode="gwlb"}"#, 1),
    ];
    for (name, want) in lines {
        assert_eq!(metric(&m, name), want, "{name} in\n{m}");
    }
    assert!(
        metric(&m, r#"sgplane_bytes_total{verdict="allow"}"#) > 5 * 80,
        "{m}"
    );
    assert!(
        metric(&m, r#"sgplane_bytes_total{verdict="deny"}"#) > 2 * 80,
        "{m}"
    );
    assert!(m.contains("# TYPE sgplane_packets_total counter"), "{m}");
    assert!(
        m.contains("\nsgplane_conntrack_early_drops_total 0\n"),
        "{m}"
    );
}

#[test]
fn many_flows_meet_their_conntrack_whatever_worker_receives_them() {
    need_root!();
    let a = Appliance::start(71, POLICY, &["--workers", "4"]);
    let g = Gwlb::for_test(&a);
    let flows: Vec<Tcp> = (0..24)
        .map(|i| {
            Tcp::new(
                &g,
                &format!("198.51.100.{}", 20 + i),
                41000 + i,
                "10.0.1.10",
                443,
                0xe1,
            )
        })
        .collect();
    for t in &flows {
        t.handshake();
        g.round_trip(&t.rev, &t.to_client(PSH_ACK, b"reply"));
    }
    a.wait_metric(
        r#"sgplane_packets_total{verdict="allow",reason="established"}"#,
        24 * 3,
    );
}

#[test]
fn a_second_appliance_on_the_same_address_is_refused() {
    need_root!();
    let a = Appliance::start(73, POLICY, &["--workers", "2"]);
    let out = Command::new(env!("CARGO_BIN_EXE_sgplane"))
        .arg("-c")
        .arg(a.policy_path())
        .args(["gwlb", "--listen", "127.73.0.2:6081"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot listen on 127.73.0.2:6081"),
        "{stderr}"
    );
    let g = Gwlb::for_test(&a);
    Tcp::new(&g, "198.51.100.7", 40090, "10.0.1.10", 443, 0xe1).handshake();
}

/// `sgplane gwlb` in this process, with explicit tuning.
struct InProcess {
    control: Arc<Control>,
    thread: Option<std::thread::JoinHandle<Result<String, gwlb::Error>>>,
}

impl InProcess {
    fn start(listen: &str, workers: usize, tuning: Tuning) -> InProcess {
        let control = Control::new(Policy::from_toml(POLICY, "policy.toml").unwrap(), None);
        let listen: SocketAddr = listen.parse().unwrap();
        let opts = GwlbOptions {
            listen,
            health: None,
            metrics: None,
            workers,
            drain: Duration::ZERO,
            watch: false,
        };
        let c = Arc::clone(&control);
        let thread = std::thread::spawn(move || gwlb::run_tuned(c, opts, &tuning));
        // Bound once the kernel lists the address. (Not by trying to bind
        // it: a probe holding the port for a moment would make the
        // appliance's own bind fail.) An appliance that stopped says why.
        wait_until("the appliance to listen", Duration::from_secs(10), || {
            udp_bound(listen) || thread.is_finished()
        });
        if thread.is_finished() {
            let why = thread.join().map(|r| r.map(|_| ()));
            panic!("the appliance stopped before listening: {why:?}");
        }
        InProcess {
            control,
            thread: Some(thread),
        }
    }

    /// Stops the appliance; its summary.
    fn stop(mut self) -> String {
        self.control.stop();
        let t = self.thread.take().expect("running");
        t.join().unwrap().unwrap()
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.control.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Whether a UDP socket is bound to `addr` (an IPv4 address), as
/// `/proc/net/udp` lists them: the address as its four bytes read as one
/// native-endian word, and the port, in hex.
fn udp_bound(addr: SocketAddr) -> bool {
    let SocketAddr::V4(a) = addr else {
        panic!("udp_bound reads IPv4 sockets only: {addr}")
    };
    let local = format!(
        "{:08X}:{:04X}",
        u32::from_ne_bytes(a.ip().octets()),
        a.port()
    );
    std::fs::read_to_string("/proc/net/udp")
        .expect("/proc/net/udp")
        .lines()
        .skip(1)
        .any(|l| l.split_whitespace().nth(1) == Some(local.as_str()))
}

/// A counter of an appliance summary, 0 if absent.
fn counter(summary: &str, name: &str) -> u64 {
    summary
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .map_or(0, |v| v.trim().parse().unwrap())
}

/// The kernel's steering turned off, so workers must hand datagrams to each other.
#[test]
fn workers_hand_datagrams_to_the_owner_of_their_flow() {
    need_root!();
    let tuning = Tuning {
        kernel_steering: false,
        ..Tuning::default()
    };
    let app = InProcess::start("127.72.0.2:6081", 2, tuning);
    let g = Gwlb::new(ip("127.72.0.1"), ip("127.72.0.2"));
    let flows: Vec<Tcp> = (0..16)
        .map(|i| {
            Tcp::new(
                &g,
                &format!("198.51.100.{}", 40 + i),
                42000 + i,
                "10.0.1.10",
                443,
                0xe1,
            )
        })
        .collect();
    for t in &flows {
        t.handshake();
    }
    let summary = app.stop();
    assert!(
        counter(&summary, "gwlb_handed_over_packets_total") > 0,
        "some datagrams reached the other worker: {summary}"
    );
    assert!(
        summary.contains("packets 48 (allowed 48, denied 0)"),
        "{summary}"
    );
}

/// Sends `payloads` (all of the first one's length but the last, which may
/// be shorter) as one UDP GSO send, as a load balancer's NIC might deliver
/// them: the appliance receives them coalesced.
fn send_train(g: &Gwlb, from: &UdpSocket, payloads: &[Vec<u8>]) {
    use std::os::fd::AsFd;
    socket::set_udp_segment(from.as_fd(), payloads[0].len() as u16).unwrap();
    g.send(from, &payloads.concat());
    socket::set_udp_segment(from.as_fd(), 0).unwrap();
}

/// Both ways out, UDP sockets with GSO and the raw socket, return every
/// packet in order and byte for byte, from the address it was sent to (the
/// appliance listens on the wildcard address here) and the port the load
/// balancer sent it from: single datagrams of mixed sizes, and coalesced
/// runs.
#[test]
fn both_return_paths_answer_from_the_address_each_packet_was_sent_to() {
    need_root!();
    for (udp_returns, port) in [(true, 16081), (false, 16082)] {
        let tuning = Tuning {
            udp_returns,
            ..Tuning::default()
        };
        let app = InProcess::start(&format!("0.0.0.0:{port}"), 2, tuning);
        let mut returned = 0;
        for net in [74u8, 75] {
            let g = Gwlb::beside_wildcard(
                format!("127.{net}.0.1").parse().unwrap(),
                format!("127.{net}.0.2").parse().unwrap(),
                port,
            );
            let t = Tcp::new(
                &g,
                "198.51.100.7",
                40100 + u16::from(net),
                "10.0.1.10",
                443,
                0xe1,
            );
            t.handshake();
            let mut sent: Vec<(u16, Vec<u8>)> = Vec::new();
            let port_of = |s: &UdpSocket| s.local_addr().unwrap().port();
            // Runs of one size cut by shorter and longer packets, both ways.
            for k in 0..60usize {
                let data = vec![k as u8; [100, 100, 10, 100, 1400][k % 5]];
                let (from, p) = if k % 30 < 25 {
                    (&t.fwd, t.to_server(PSH_ACK, &data))
                } else {
                    (&t.rev, t.to_client(PSH_ACK, &data))
                };
                g.send(from, &p);
                sent.push((port_of(from), p));
            }
            let mut train: Vec<Vec<u8>> =
                (0..40u8).map(|k| t.to_server(PSH_ACK, &[k; 200])).collect();
            train.push(t.to_server(PSH_ACK, &[0xee; 20]));
            send_train(&g, &t.fwd, &train);
            sent.extend(train.into_iter().map(|p| (port_of(&t.fwd), p)));
            let mut got = Vec::new();
            while got.len() < sent.len() {
                let (src, p) = g
                    .recv(Duration::from_secs(3))
                    .unwrap_or_else(|| panic!("{} of {} back", got.len(), sent.len()));
                assert_eq!(
                    src.ip(),
                    g.appliance.ip(),
                    "from the address it was sent to"
                );
                got.push((src.port(), p));
            }
            for from in [&t.fwd, &t.rev] {
                let want: Vec<_> = sent.iter().filter(|s| s.0 == port_of(from)).collect();
                let have: Vec<_> = got.iter().filter(|s| s.0 == port_of(from)).collect();
                assert!(
                    have == want,
                    "in order, byte for byte, from the sender's port"
                );
            }
            returned += 3 + sent.len() as u64;
        }
        let summary = app.stop();
        assert_eq!(
            counter(&summary, "gwlb_returned_packets_total"),
            returned,
            "{summary}"
        );
        let raw = if udp_returns { 0 } else { returned };
        assert_eq!(
            counter(&summary, "gwlb_returned_raw_packets_total"),
            raw,
            "{summary}"
        );
        assert_eq!(counter(&summary, "gwlb_send_errors_total"), 0, "{summary}");
        if udp_returns {
            assert!(
                counter(&summary, "gwlb_return_sends_total") < returned,
                "runs of returns go down together: {summary}"
            );
        }
    }
}

/// Where a UDP socket cannot be bound to the return's ends, the raw socket
/// returns the packet as well.
#[test]
fn returns_go_through_the_raw_socket_where_no_udp_socket_can_be_bound() {
    need_root!();
    let app = InProcess::start("127.78.0.2:6081", 2, Tuning::default());
    let g = Gwlb::new(ip("127.78.0.1"), ip("127.78.0.2"));
    let t = Tcp::new(&g, "198.51.100.7", 40200, "10.0.1.10", 443, 0xe1);
    // The load balancer sends from the port the appliance listens on ...
    g.round_trip(&g.rx, &t.to_server(SYN, b""));
    // ... or from a port taken on the appliance's address.
    let taken = SocketAddr::new(g.appliance.ip(), t.rev.local_addr().unwrap().port());
    let _taken = UdpSocket::bind(taken).unwrap();
    g.round_trip(&t.rev, &t.to_client(SYN_ACK, b""));
    g.round_trip(&t.fwd, &t.to_server(ACK, b""));
    g.round_trip(&g.rx, &t.to_server(PSH_ACK, b"x"));
    g.round_trip(&t.rev, &t.to_client(PSH_ACK, b"y"));
    let summary = app.stop();
    for (name, want) in [
        ("gwlb_returned_packets_total", 5),
        ("gwlb_returned_raw_packets_total", 4),
        ("gwlb_return_sockets_opened_total", 1),
        ("gwlb_return_socket_failures_total", 2),
        ("gwlb_send_errors_total", 0),
    ] {
        assert_eq!(counter(&summary, name), want, "{name}: {summary}");
    }
}

/// IPv6 outside too, in a network namespace of its own (loopback has one
/// IPv6 address; the namespace gets two). The test runs itself inside it.
#[test]
fn ipv6_outer_addresses_work_in_a_namespace() {
    need_root!();
    if std::env::var_os("SGPLANE_GWLB_IN_NETNS").is_some() {
        return ipv6_outer_inside();
    }
    let ns = Netns::new("v6outer");
    for cmd in [
        vec!["link", "set", "lo", "up"],
        vec!["-6", "addr", "add", "fd00:6081::1/128", "dev", "lo"],
        vec!["-6", "addr", "add", "fd00:6081::2/128", "dev", "lo"],
    ] {
        ns.ip(&cmd);
    }
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.name])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "ipv6_outer_addresses_work_in_a_namespace",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("SGPLANE_GWLB_IN_NETNS", "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && text.contains("1 passed"), "{text}");
}

fn ipv6_outer_inside() {
    std::thread::sleep(Duration::from_millis(200)); // addresses leave tentative state (DAD is off on lo)
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, POLICY).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sgplane"))
        .arg("-c")
        .arg(&path)
        .args([
            "gwlb",
            "--listen",
            "[fd00:6081::2]:6081",
            "--health",
            "127.0.0.1:8080",
            "--metrics",
            "127.0.0.1:9100",
            "--workers",
            "2",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let health: SocketAddr = "127.0.0.1:8080".parse().unwrap();
    let ready = (0..250).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        http_get(health, "/").is_some()
    });
    let result = std::panic::catch_unwind(|| {
        assert!(ready, "the appliance answers health checks");
        let g = Gwlb::new(ip("fd00:6081::1"), ip("fd00:6081::2"));
        let t = Tcp::new(&g, "198.51.100.7", 40080, "10.0.1.10", 443, 0xe1);
        t.handshake();
        let t6 = Tcp::new(&g, "2001:db8:ff::7", 40081, "2001:db8:1::10", 443, 0xe1);
        t6.handshake();
        g.dropped(
            &t6.fwd,
            &[t6.to_server(SYN, b"")[..3].to_vec()],
            &t6.rev,
            &t6.to_client(PSH_ACK, b"v6"),
        );
        // Through UDP sockets bound to the IPv6 address, not the raw socket.
        let metrics: SocketAddr = "127.0.0.1:9100".parse().unwrap();
        wait_until("the returns to be counted", Duration::from_secs(5), || {
            let (_, m) = http_get(metrics, "/metrics").expect("metrics answer");
            metric(&m, "sgplane_gwlb_returned_packets_total") == 7
        });
        let (_, m) = http_get(metrics, "/metrics").expect("metrics answer");
        assert_eq!(
            metric(&m, "sgplane_gwlb_returned_raw_packets_total"),
            0,
            "{m}"
        );
        assert_eq!(
            metric(&m, "sgplane_gwlb_return_socket_failures_total"),
            0,
            "{m}"
        );
    });
    let _ = child.kill();
    let _ = child.wait();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

/// A network namespace, deleted when dropped (even when the test fails).
struct Netns {
    name: String,
}

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("sgplane-gwlb-{tag}-{}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap();
        assert!(ok.success(), "ip netns add {name}");
        Netns { name }
    }

    fn ip(&self, args: &[&str]) {
        let ok = Command::new("ip")
            .args(["-n", &self.name])
            .args(args)
            .status()
            .unwrap();
        assert!(ok.success(), "ip -n {} {}", self.name, args.join(" "));
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.name])
            .status();
    }
}

/// Issue 15 under `gwlb`: with a table of 1,000 entries, another node floods
/// spoofed SYNs to the allowed port at [`FLOOD_RATE`], while 200 real clients
/// complete their handshakes and an established flow keeps exchanging data.
/// Every real packet is retried as TCP would, and must come back within 5
/// tries.
///
/// The rate is one the appliance keeps up with even as a debug build: past
/// its capacity the kernel drops datagrams at the socket before sgplane sees
/// them, real or not, which no table policy changes. It still turns the
/// table over 10 times a second. It holds over every stretch of time: a
/// flood thread the machine kept waiting does not catch up in a burst.
///
/// The real clients and the held flow all go to one worker (steering hashes
/// the inner addresses), so that worker's 500 entries hold up to 201
/// assured ones: a sample of [`sgplane::conntrack::EARLY_DROP_REACH`]
/// entries always holds an unassured one to evict, and no new flow may be
/// refused `conntrack-full`.
///
/// It was ignored for a while: one clean-clone `.ci/run` (352 s) let 155 of
/// 200 clients through with 984,028 flood SYNs refused `conntrack-full`.
/// That was never reproduced, in 33 runs under load (beside the other
/// gwlb tests with both cores busy, pinned to one core beside six busy
/// loops, the appliance and the test stopped for seconds at a time) nor in
/// a simulation of the table over 300 hash seeds. What does make this test
/// count conntrack-full and lose its clients is another appliance on
/// 127.75.0.2, left by a killed run: it answered the health check while
/// ours failed to bind, and the test went on with it. `Appliance::start`
/// now refuses to start beside one, and the flood stops when the test
/// fails. A failure names each failed client's step and time.
#[test]
fn a_syn_flood_neither_breaks_established_flows_nor_keeps_real_clients_out() {
    const FLOOD_RATE: u64 = 10_000;
    need_root!();
    let policy = format!("[conntrack]\nmax_entries = 1000\n{POLICY}");
    let a = Appliance::start(75, &policy, &["--workers", "2"]);
    let g = Gwlb::for_test(&a);
    let held = Tcp::new(&g, "198.51.100.7", 40075, "10.0.1.10", 443, 0xe1);
    held.handshake();

    // The flood comes from another node, whose returns nobody reads.
    let flood_node = ip("127.75.0.3");
    let _flood_rx = UdpSocket::bind(SocketAddr::new(flood_node, GENEVE_PORT)).unwrap();
    let flood_tx = UdpSocket::bind(SocketAddr::new(flood_node, 0)).unwrap();
    let to = g.appliance;
    let payloads: Vec<Vec<u8>> = (0..100_000u32)
        .map(|i| {
            let src =
                std::net::Ipv4Addr::from(0xc612_0000 | (i.wrapping_mul(2_654_435_761) & 0x1_ffff));
            let f = build::tcp(
                IpAddr::V4(src),
                ip("10.0.1.10"),
                1024 + (i % 60_000) as u16,
                443,
                SYN,
                i,
                0,
                b"",
            );
            geneve(&f, 0xe1, i)
        })
        .collect();
    // The flood stops when the test ends, also when it fails: a flood left
    // running would hit whatever listens on this address next.
    let stop = StopOnDrop(Arc::new(std::sync::atomic::AtomicBool::new(false)));
    let stopping = Arc::clone(&stop.0);
    let flood = std::thread::spawn(move || {
        let started = Instant::now();
        let mut sent = 0u64;
        // The rate holds over every stretch of time: a flood thread the
        // machine kept waiting does not catch up in one burst (that would
        // overflow the loopback's backlog and drop real packets with flood
        // ones before any socket, which is not what this test is about).
        let (mut from, mut from_sent) = (started, 0u64);
        for p in payloads.iter().cycle() {
            if stopping.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            sent += u64::from(flood_tx.send_to(p, to).is_ok());
            if sent % 64 == 0 {
                let due = Duration::from_secs_f64((sent - from_sent) as f64 / FLOOD_RATE as f64);
                let at = from.elapsed();
                if let Some(ahead) = due.checked_sub(at) {
                    std::thread::sleep(ahead);
                } else if at - due > Duration::from_millis(20) {
                    (from, from_sent) = (Instant::now(), sent);
                }
            }
        }
        (sent, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(500));

    // One packet of a real conversation: sent once, or retried until it
    // comes back.
    let through_once = |from: &UdpSocket, payload: &[u8]| -> bool {
        g.send(from, payload);
        let until = Instant::now() + Duration::from_millis(300);
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match g.recv(left.max(Duration::from_millis(1))) {
                Some((_, got)) if got == payload => return true,
                Some(_) if !left.is_zero() => {}
                _ => return false,
            }
        }
    };
    let through = |from: &UdpSocket, payload: &[u8]| (0..5).any(|_| through_once(from, payload));
    let mut real_ok = 0;
    let mut failures: Vec<String> = Vec::new();
    let clients_from = Instant::now();
    for i in 0..200u16 {
        // Spread over 2 s of the flood.
        std::thread::sleep(
            (clients_from + Duration::from_millis(10 * u64::from(i)))
                .saturating_duration_since(Instant::now()),
        );
        let t = Tcp::new(&g, "203.0.113.9", 20_000 + i, "10.0.1.10", 443, 0xe1);
        // A SYN-ACK that finds no entry is not retried alone: the client
        // retransmits its SYN, as TCP does when no SYN-ACK arrives.
        let opened = (0..5).any(|_| {
            through(&t.fwd, &t.to_server(SYN, b""))
                && through_once(&t.rev, &t.to_client(SYN_ACK, b""))
        });
        // The step a client failed at, and when: what the failure names.
        let failed = if !opened {
            Some("the handshake")
        } else if !through(&t.fwd, &t.to_server(ACK, b"")) {
            Some("its ACK")
        } else if !through(&t.fwd, &t.to_server(PSH_ACK, b"GET / HTTP/1.1\r\n\r\n")) {
            Some("its request")
        } else if !through(&t.rev, &t.to_client(PSH_ACK, b"HTTP/1.1 200 OK\r\n\r\n")) {
            Some("the response")
        } else {
            None
        };
        let ok = failed.is_none();
        if let Some(step) = failed {
            failures.push(format!(
                "client {i} failed at {step}, {:?} into the flood",
                clients_from.elapsed()
            ));
        }
        real_ok += usize::from(ok);
        if i % 50 == 0 {
            let f = through(&held.fwd, &held.to_server(PSH_ACK, &[i as u8; 100]));
            let r = through(&held.rev, &held.to_client(PSH_ACK, &[i as u8; 100]));
            assert!(
                f && r,
                "the established flow must keep flowing under the flood:\n{}",
                a.metrics()
            );
        }
    }
    std::thread::sleep(
        (clients_from + Duration::from_secs(3)).saturating_duration_since(Instant::now()),
    );
    stop.0.store(true, std::sync::atomic::Ordering::Relaxed);
    let (sent, took) = flood.join().unwrap();
    let m = a.metrics();
    let early_drops = metric(&m, "sgplane_conntrack_early_drops_total");
    eprintln!(
        "gwlb flood: {sent} spoofed SYNs sent in {took:?}, {early_drops} early drops, {real_ok} of 200 real clients through"
    );
    assert!(sent > 20_000, "the flood must far exceed the table: {sent}");
    assert!(early_drops > 1_000, "the flood filled the table:\n{m}");
    assert_eq!(
        metric(&m, "sgplane_conntrack_full_total"),
        0,
        "a new flow evicts an unassured entry:\n{m}"
    );
    assert!(
        real_ok >= 198,
        "{real_ok} of 200 real clients got through ({} spoofed SYNs in {took:?}):\n{}\n{m}",
        sent,
        failures.join("\n")
    );
}

/// Sets its flag when dropped: at the end of a test, however it ends.
struct StopOnDrop(Arc<std::sync::atomic::AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}
