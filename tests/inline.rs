//! `sgplane run` between real hosts: network namespaces made (and removed) by
//! each test, a TAP device or a veth in each, addresses configured, and real
//! traffic: ping (when iputils' `ping` is installed) and TCP through a small
//! echo server and client that are this test binary run again inside a
//! namespace (`SGPLANE_TEST_HELPER`).
//!
//! Needs root (CI runs as root); without it every test says it is skipped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod common;
use common::{have, ip, is_root};

const SGPLANE: &str = env!("CARGO_BIN_EXE_sgplane");

/// The policy of every test: `client` may reach `server` on TCP 8080 and ping
/// it; nothing may reach the client unasked.
fn policy(extra_server_rule: &str) -> String {
    format!(
        r#"
[security_groups.sg-client]
egress = [ {{ proto = "all", to = "0.0.0.0/0" }}, {{ proto = "all", to = "::/0" }} ]

[security_groups.sg-server]
ingress = [
  {{ proto = "icmp", icmp_type = 8, from = "sg-client" }},
  {{ proto = "icmpv6", icmp_type = 128, from = "sg-client" }},
  {extra_server_rule}
]
egress = [ {{ proto = "all", to = "0.0.0.0/0" }}, {{ proto = "all", to = "::/0" }} ]

[interfaces.client]
addresses = ["10.77.0.10", "fd77::10"]
security_groups = ["sg-client"]

[interfaces.server]
addresses = ["10.77.0.20", "fd77::20"]
security_groups = ["sg-server"]
"#
    )
}

const TCP_8080: &str = r#"{ proto = "tcp", ports = "8080", from = "sg-client" },"#;

// ---------------------------------------------------------------- helpers run inside namespaces

/// Not a test of its own: the echo server and clients the tests run inside
/// their namespaces (`ip netns exec NS <this binary> helper --exact`).
#[test]
fn helper() {
    let Ok(role) = std::env::var("SGPLANE_TEST_HELPER") else {
        return;
    };
    let args: Vec<&str> = role.split_whitespace().collect();
    match args.as_slice() {
        ["serve", port] => serve(port.parse().unwrap()),
        ["connect", addr, port] => {
            let r = connect(addr, port.parse().unwrap()).and_then(|mut s| exchange(&mut s));
            say(&match r {
                Ok(()) => "ok".to_string(),
                Err(e) => format!("fail {e}"),
            });
        }
        ["hold", addr, port] => hold(addr, port.parse().unwrap()),
        ["synflood", dst, port, millis] => say(&format!(
            "sent {}",
            syn_flood(
                dst.parse().unwrap(),
                port.parse().unwrap(),
                millis.parse().unwrap()
            )
        )),
        ["clients", addr, port, n, parallel] => {
            let (ok, failures) = clients(
                addr,
                port.parse().unwrap(),
                n.parse().unwrap(),
                parallel.parse().unwrap(),
            );
            say(&format!("ok {ok} of {n}; {}", failures.join("; ")));
        }
        _ => panic!("unknown helper role {role}"),
    }
}

fn say(line: &str) {
    println!("HELPER {line}");
    let _ = std::io::stdout().flush();
}

/// Echoes lines on every connection, for at most two minutes.
fn serve(port: u16) {
    let l = TcpListener::bind(("::", port)).expect("bind the echo server");
    say("ready");
    let deadline = Instant::now() + Duration::from_secs(120);
    l.set_nonblocking(true).unwrap();
    while Instant::now() < deadline {
        match l.accept() {
            Ok((s, _)) => {
                std::thread::spawn(move || {
                    s.set_nonblocking(false).unwrap();
                    let mut w = s.try_clone().unwrap();
                    for line in BufReader::new(s).lines() {
                        let Ok(line) = line else { break };
                        if writeln!(w, "{line}").is_err() {
                            break;
                        }
                    }
                });
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn connect(addr: &str, port: u16) -> std::io::Result<TcpStream> {
    let sa: SocketAddr = (addr, port).to_socket_addrs()?.next().expect("an address");
    let s = TcpStream::connect_timeout(&sa, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    Ok(s)
}

/// Sends a line and expects it back.
fn exchange(s: &mut TcpStream) -> std::io::Result<()> {
    s.write_all(b"hello through sgplane\n")?;
    let mut buf = [0u8; 22];
    s.read_exact(&mut buf)?;
    if &buf != b"hello through sgplane\n" {
        return Err(std::io::Error::other("echo differs"));
    }
    Ok(())
}

/// Keeps one connection; answers "ok"/"fail" for every line read on stdin.
/// Patient: an exchange may need TCP to retransmit (a flood test loses
/// packets in the kernel's queues).
fn hold(addr: &str, port: u16) {
    let mut s = match connect(addr, port) {
        Ok(s) => s,
        Err(e) => return say(&format!("fail {e}")),
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    say("connected");
    for _ in std::io::stdin().lines() {
        say(&match exchange(&mut s) {
            Ok(()) => "ok".to_string(),
            Err(e) => format!("fail {e}"),
        });
    }
}

/// Spoofed TCP SYNs from random addresses of 198.18.0.0/15 (RFC 2544's
/// benchmarking space, routed nowhere) and random ports to `dst:port`, as
/// fast as one thread can send them through a raw socket, for `millis`.
/// Returns how many were sent.
fn syn_flood(dst: std::net::Ipv4Addr, port: u16, millis: u64) -> u64 {
    // SAFETY: plain socket calls on a descriptor this function owns; the
    // buffers passed outlive the calls.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW) };
    assert!(fd >= 0, "raw socket: {}", std::io::Error::last_os_error());
    let to = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(dst).to_be(),
        },
        sin_zero: [0; 8],
    };
    let deadline = Instant::now() + Duration::from_millis(millis);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ u64::from(std::process::id());
    let mut sent = 0u64;
    let mut frame = [0u8; 40];
    loop {
        if sent % 1024 == 0 && Instant::now() >= deadline {
            break;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let src = std::net::Ipv4Addr::from(0xc612_0000 | (x as u32 & 0x1_ffff));
        let sport = 1024 + ((x >> 20) % 60_000) as u16;
        syn(&mut frame, src, dst, sport, port, (x >> 32) as u32);
        // SAFETY: see above.
        let n = unsafe {
            libc::sendto(
                fd,
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&to as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        if n == frame.len() as isize {
            sent += 1;
        }
    }
    // SAFETY: see above.
    unsafe { libc::close(fd) };
    sent
}

/// An IPv4 TCP SYN without options; the kernel fills the IP checksum.
fn syn(
    f: &mut [u8; 40],
    src: std::net::Ipv4Addr,
    dst: std::net::Ipv4Addr,
    sport: u16,
    dport: u16,
    seq: u32,
) {
    f.fill(0);
    f[0] = 0x45;
    f[2..4].copy_from_slice(&40u16.to_be_bytes());
    f[8] = 64;
    f[9] = 6;
    f[12..16].copy_from_slice(&src.octets());
    f[16..20].copy_from_slice(&dst.octets());
    let t = &mut f[20..];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = 0x02;
    t[14..16].copy_from_slice(&64240u16.to_be_bytes());
    // The checksum over the pseudo-header and the segment.
    let mut sum: u32 = 6 + 20;
    for w in f[12..20].chunks(2).chain(f[20..].chunks(2)) {
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    f[36..38].copy_from_slice(&(!(sum as u16)).to_be_bytes());
}

/// `n` real clients, `parallel` at a time, each a connection with an echo
/// exchange; patient as a real client is (TCP retransmits its SYN). Returns
/// how many succeeded and the first few failures.
fn clients(addr: &str, port: u16, n: usize, parallel: usize) -> (usize, Vec<String>) {
    let sa: SocketAddr = (addr, port).to_socket_addrs().unwrap().next().unwrap();
    let next = std::sync::Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..parallel)
        .map(|_| {
            let next = next.clone();
            std::thread::spawn(move || {
                let mut ok = 0;
                let mut failures = Vec::new();
                while next.fetch_add(1, Ordering::Relaxed) < n {
                    let mut port = None;
                    let r = TcpStream::connect_timeout(&sa, Duration::from_secs(15)).and_then(
                        |mut s| {
                            port = s.local_addr().ok().map(|a| a.port());
                            s.set_read_timeout(Some(Duration::from_secs(15)))?;
                            exchange(&mut s)
                        },
                    );
                    match (r, port) {
                        (Ok(()), _) => ok += 1,
                        (Err(e), Some(p)) => failures.push(format!("from port {p}: {e}")),
                        (Err(e), None) => failures.push(format!("connecting: {e}")),
                    }
                }
                (ok, failures)
            })
        })
        .collect();
    let mut ok = 0;
    let mut failures = Vec::new();
    for t in threads {
        let (o, f) = t.join().unwrap();
        ok += o;
        failures.extend(f);
    }
    failures.truncate(5);
    (ok, failures)
}

// ---------------------------------------------------------------- the lab

/// Skips (visibly) unless root with `ip` available.
fn skip_unless_root(test: &str) -> bool {
    if !is_root() {
        eprintln!("SKIPPED {test}: needs root (network namespaces, TAP devices)");
        return true;
    }
    if !have("ip") {
        eprintln!("SKIPPED {test}: needs `ip` (iproute2)");
        return true;
    }
    false
}

/// A child process whose output lines arrive on a channel.
struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
    stdin: Option<ChildStdin>,
    /// Every line seen so far (for failure messages).
    seen: Vec<String>,
}

impl Proc {
    fn spawn(mut cmd: Command, read_stderr: bool) -> Proc {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn");
        let (tx, rx) = mpsc::channel();
        for out in [
            child
                .stdout
                .take()
                .map(|o| Box::new(o) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|e| Box::new(e) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        .enumerate()
        .filter(|(i, _)| *i == 0 || read_stderr)
        .map(|(_, o)| o)
        {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let stdin = child.stdin.take();
        Proc {
            child,
            lines: rx,
            stdin,
            seen: Vec::new(),
        }
    }

    /// Waits for a line containing `needle`; returns it.
    fn expect(&mut self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if l.contains(needle) {
                        return l;
                    }
                }
                Err(_) => panic!(
                    "no line with `{needle}` within {within:?}; saw:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// The next helper answer.
    fn answer(&mut self) -> String {
        let line = self.expect("HELPER ", Duration::from_secs(10));
        // libtest may have printed "test helper ... " on the same line.
        line.split_once("HELPER ")
            .map(|(_, a)| a.to_string())
            .unwrap_or(line)
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Waits for the process to end (bounded) and returns everything it printed.
    fn finish(mut self, within: Duration) -> (bool, String) {
        let deadline = Instant::now() + within;
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break Some(st);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let _ = self.child.wait();
        while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(200)) {
            self.seen.push(l);
        }
        (status.is_some_and(|s| s.success()), self.seen.join("\n"))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Namespaces and links made by one test, removed when it ends, even by a
/// panic. Processes it started are stopped first.
struct Lab {
    tag: String,
    /// Tells apart the devices of tests running at once in this process.
    n: usize,
    namespaces: Vec<String>,
    procs: Vec<Proc>,
    dir: tempfile::TempDir,
}

impl Lab {
    fn new(test: &str) -> Lab {
        static LABS: AtomicUsize = AtomicUsize::new(0);
        let tag = format!("{test}-{}", std::process::id());
        let n = LABS.fetch_add(1, Ordering::Relaxed);
        Lab {
            tag,
            n,
            namespaces: Vec::new(),
            procs: Vec::new(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn netns(&mut self, role: &str) -> String {
        let name = format!("sgp-{}-{role}", self.tag);
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        ip(&["netns", "add", &name]);
        self.namespaces.push(name.clone());
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        name
    }

    /// A device name of at most 15 characters, unique to this process.
    fn dev(&self, role: &str) -> String {
        format!("sg{}-{}{role}", std::process::id() % 100_000, self.n)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs a helper role inside a namespace.
    fn helper(&mut self, ns: &str, role: &str) -> usize {
        let exe = std::env::current_exe().unwrap();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns]).arg(exe).args([
            "helper",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ]);
        cmd.env("SGPLANE_TEST_HELPER", role);
        self.procs.push(Proc::spawn(cmd, false));
        self.procs.len() - 1
    }

    /// One TCP exchange from `ns` to `addr`: "ok" or "fail …".
    fn tcp(&mut self, ns: &str, addr: &str, port: u16) -> String {
        let i = self.helper(ns, &format!("connect {addr} {port}"));
        self.procs[i].answer()
    }

    /// A connection from `ns` kept open: its helper's number, for [`Lab::go`].
    fn hold(&mut self, ns: &str, addr: &str, port: u16) -> usize {
        let h = self.helper(ns, &format!("hold {addr} {port}"));
        assert_eq!(self.procs[h].answer(), "connected");
        h
    }

    /// One exchange on held connection `h`: "ok" or "fail …" (patient: it
    /// may take TCP retransmissions).
    fn go(&mut self, h: usize) -> String {
        let p = &mut self.procs[h];
        writeln!(p.stdin.as_mut().unwrap(), "go").unwrap();
        let line = p.expect("HELPER ", Duration::from_secs(20));
        line.split_once("HELPER ")
            .map_or(line.clone(), |(_, a)| a.to_string())
    }

    fn server(&mut self, ns: &str, port: u16) {
        let i = self.helper(ns, &format!("serve {port}"));
        assert_eq!(self.procs[i].answer(), "ready");
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.procs.clear();
        for ns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// Puts `dev` (already in `ns`) up with the host's addresses.
fn configure(ns: &str, dev: &str, v4: &str, v6: &str) {
    ip(&["-n", ns, "addr", "add", &format!("{v4}/24"), "dev", dev]);
    ip(&[
        "-n",
        ns,
        "addr",
        "add",
        &format!("{v6}/64"),
        "dev",
        dev,
        "nodad",
    ]);
    ip(&["-n", ns, "link", "set", dev, "up"]);
}

/// One ping from `ns`; `None` when iputils' ping is not installed.
fn ping(ns: &str, addr: &str) -> Option<bool> {
    if !have("ping") {
        return None;
    }
    let ok = Command::new("ip")
        .args(["netns", "exec", ns, "ping", "-c", "1", "-W", "1", addr])
        .output()
        .unwrap()
        .status
        .success();
    Some(ok)
}

/// Pings, retrying a few times for the allowed case (the first ARP exchange
/// can take a moment), once for the denied case.
fn assert_ping(ns: &str, addr: &str, allowed: bool) {
    let tries = if allowed { 5 } else { 1 };
    for i in 0..tries {
        match ping(ns, addr) {
            None => {
                eprintln!("NOTE: `ping` (iputils-ping) is not installed: ICMP checks skipped");
                return;
            }
            Some(ok) if ok == allowed => return,
            Some(_) if i + 1 < tries => std::thread::sleep(Duration::from_millis(200)),
            Some(ok) => panic!(
                "ping {addr} from {ns}: {} but the policy {}",
                if ok { "answered" } else { "failed" },
                if allowed { "allows it" } else { "denies it" }
            ),
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn metrics(port: u16) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("metrics endpoint");
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    write!(s, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn sgplane_run(lab: &Lab, policy: &Path, args: &[&str]) -> Proc {
    let mut cmd = Command::new(SGPLANE);
    cmd.arg("-c").arg(policy).arg("run").args(args);
    let _ = lab;
    let mut p = Proc::spawn(cmd, true);
    p.expect("sgplane: forwarding between", Duration::from_secs(10));
    p
}

/// Waits until `f` holds, polling; false after `within`.
fn eventually(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

// ---------------------------------------------------------------- tests

/// Two TAP devices made by sgplane, one moved into each host's namespace.
fn tap_lab(
    test: &str,
    policy_text: &str,
    extra: &[&str],
) -> Option<(Lab, Proc, String, String, PathBuf)> {
    if skip_unless_root(test) {
        return None;
    }
    let mut lab = Lab::new(test);
    let client = lab.netns("c");
    let server = lab.netns("s");
    let (tc, ts) = (lab.dev("c"), lab.dev("s"));
    let policy = lab.path("policy.toml");
    std::fs::write(&policy, policy_text).unwrap();
    let mut args = vec!["--tap", &tc, "--tap", &ts];
    if !extra.contains(&"--workers") {
        args.extend(["--workers", "2"]);
    }
    args.extend_from_slice(extra);
    let sg = sgplane_run(&lab, &policy, &args);
    ip(&["link", "set", &tc, "netns", &client]);
    ip(&["link", "set", &ts, "netns", &server]);
    configure(&client, &tc, "10.77.0.10", "fd77::10");
    configure(&server, &ts, "10.77.0.20", "fd77::20");
    Some((lab, sg, client, server, policy))
}

#[test]
fn tap_forwards_what_the_policy_allows_in_both_directions() {
    let mport = free_port();
    let mp = mport.to_string();
    // One read or write per frame here; the other TAP test uses io_uring.
    let Some((mut lab, sg, client, server, _)) = tap_lab(
        "tapfwd",
        &policy(TCP_8080),
        &["--metrics", &format!("127.0.0.1:{mp}"), "--no-io-uring"],
    ) else {
        return;
    };
    lab.server(&server, 8080);
    lab.server(&server, 8081);
    lab.server(&client, 9000);

    // Allowed: TCP 8080 over IPv4 and IPv6, replies included (the echo comes back).
    assert_eq!(lab.tcp(&client, "10.77.0.20", 8080), "ok");
    assert_eq!(lab.tcp(&client, "fd77::20", 8080), "ok");
    // Denied: another port, and anything the server starts towards the client.
    assert!(lab.tcp(&client, "10.77.0.20", 8081).starts_with("fail"));
    assert!(lab.tcp(&server, "10.77.0.10", 9000).starts_with("fail"));
    assert_ping(&client, "10.77.0.20", true);
    assert_ping(&client, "fd77::20", true);
    assert_ping(&server, "10.77.0.10", false);

    // The counters show it.
    let seen = eventually(Duration::from_secs(3), || {
        let m = metrics(mport);
        metric(&m, "sgplane_rule_hits_total{rule=\"sg-server/ingress/2\"}") >= 2
            && metric(
                &m,
                "sgplane_packets_total{verdict=\"deny\",reason=\"no-rule\"}",
            ) >= 2
            && metric(
                &m,
                "sgplane_packets_total{verdict=\"allow\",reason=\"established\"}",
            ) >= 4
            && metric(
                &m,
                "sgplane_packets_total{verdict=\"allow\",reason=\"arp\"}",
            ) >= 1
            && metric(&m, "sgplane_forwarded_frames") > 0
    });
    assert!(seen, "metrics:\n{}", metrics(mport));

    // SIGTERM: a clean stop with the final summary.
    sg.signal("TERM");
    let (ok, out) = sg.finish(Duration::from_secs(5));
    assert!(ok, "{out}");
    assert!(
        out.contains("packets ") && out.contains("allowed: ") && out.contains("forwarded_frames"),
        "{out}"
    );
}

#[test]
fn reload_keeps_established_connections_and_blocks_new_ones() {
    let mport = free_port();
    let mp = format!("127.0.0.1:{mport}");
    let Some((mut lab, sg, client, server, policy_path)) =
        // One worker: the reader and the worker are one thread (`solo`).
        tap_lab("reload", &policy(TCP_8080), &["--metrics", &mp, "--workers", "1"])
    else {
        return;
    };
    lab.server(&server, 8080);
    let h = lab.hold(&client, "10.77.0.20", 8080);
    assert_eq!(lab.go(h), "ok");

    // The rule goes; SIGHUP reloads.
    std::fs::write(&policy_path, policy("")).unwrap();
    sg.signal("HUP");
    assert!(
        eventually(Duration::from_secs(5), || metric(
            &metrics(mport),
            "sgplane_policy_reloads_total{result=\"ok\"}"
        ) == 1),
        "no reload seen:\n{}",
        metrics(mport)
    );
    // Give every worker a batch or a tick to pick up the new rules.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        lab.go(h),
        "ok",
        "the established connection must keep flowing"
    );
    assert!(
        lab.tcp(&client, "10.77.0.20", 8080).starts_with("fail"),
        "a new connection must be blocked"
    );

    // A broken file is reported and the policy in force stays.
    std::fs::write(&policy_path, "[security_groups.sg-client\n").unwrap();
    sg.signal("HUP");
    assert!(eventually(Duration::from_secs(5), || metric(
        &metrics(mport),
        "sgplane_policy_reloads_total{result=\"error\"}"
    ) == 1));
    assert_eq!(lab.go(h), "ok");
    assert_ping(&client, "10.77.0.20", true);

    sg.signal("INT");
    let (ok, out) = sg.finish(Duration::from_secs(5));
    assert!(ok, "{out}");
    assert!(
        out.contains("policy not reloaded, the old one stays"),
        "{out}"
    );
}

#[test]
fn afpacket_between_veths_with_watch_and_logs() {
    iface_case(
        "afpacket",
        &["--io", "af-packet", "--workers", "2"],
        "AF_PACKET",
    );
}

/// The same with one worker: the readers and the worker are one thread.
#[test]
fn afpacket_with_one_thread_doing_everything() {
    iface_case(
        "afpsolo",
        &["--io", "af-packet", "--workers", "1"],
        "AF_PACKET",
    );
}

/// The same through AF_XDP: an XDP program on each veth, one UMEM.
#[test]
fn afxdp_between_veths_with_watch_and_logs() {
    iface_case("afxdp", &["--io", "af-xdp"], "AF_XDP (native XDP");
}

/// The same with the XDP program attached generically (after the kernel
/// made a socket buffer), as on an interface whose driver has no XDP.
#[test]
fn afxdp_in_generic_mode() {
    iface_case(
        "afxdpgen",
        &["--io", "af-xdp", "--xdp-attach", "generic"],
        "AF_XDP (generic XDP",
    );
}

/// Client and server namespaces joined through a third, `dut`, by two
/// veth pairs: `side-c` and `side-s` in `dut` are the wire ports sgplane
/// forwards between, `eth0` in each host carries its addresses.
fn veth_lab(test: &str) -> (Lab, String, String, String) {
    let mut lab = Lab::new(test);
    let client = lab.netns("c");
    let server = lab.netns("s");
    let dut = lab.netns("d");
    ip(&[
        "link", "add", "eth0", "netns", &client, "type", "veth", "peer", "name", "side-c", "netns",
        &dut,
    ]);
    ip(&[
        "link", "add", "eth0", "netns", &server, "type", "veth", "peer", "name", "side-s", "netns",
        &dut,
    ]);
    for d in ["side-c", "side-s"] {
        // A wire port carries no address of its own.
        let _ = Command::new("ip")
            .args([
                "netns",
                "exec",
                &dut,
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{d}.disable_ipv6=1"),
            ])
            .output();
        ip(&["-n", &dut, "link", "set", d, "up"]);
    }
    configure(&client, "eth0", "10.77.0.10", "fd77::10");
    configure(&server, "eth0", "10.77.0.20", "fd77::20");
    // Frames from the hosts' own sockets leave their checksums to the
    // "hardware" on veth; AF_XDP cannot see that and would forward them
    // unfinished (AF_PACKET carries the note along). Real NICs receive
    // finished frames.
    for ns in [&client, &server] {
        let out = Command::new("ip")
            .args(["netns", "exec", ns, "ethtool", "-K", "eth0", "tx", "off"])
            .output()
            .expect("ethtool (apt-get install ethtool)");
        assert!(out.status.success(), "ethtool -K eth0 tx off: {out:?}");
    }
    (lab, client, server, dut)
}

/// sgplane between two veths with `io` options: TCP over IPv4 and IPv6 and
/// ping allowed one way and denied the other, a watched policy reloaded,
/// verdicts and the flow log written; the start message names `through`.
fn iface_case(test: &str, io: &[&str], through: &str) {
    if skip_unless_root(test) {
        return;
    }
    let (mut lab, client, server, dut) = veth_lab(test);
    let policy_path = lab.path("policy.toml");
    std::fs::write(&policy_path, policy(TCP_8080)).unwrap();
    let verdicts = lab.path("verdicts.jsonl");
    let flows = lab.path("flows.txt");
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &dut, SGPLANE, "-c"])
        .arg(&policy_path);
    cmd.args(["run", "--iface", "side-c", "--iface", "side-s", "--watch"]);
    cmd.args(io);
    cmd.arg("--verdicts")
        .arg(&verdicts)
        .arg("--flow-log")
        .arg(&flows);
    let mut sg = Proc::spawn(cmd, true);
    let start = sg.expect(
        "sgplane: forwarding between side-c and side-s",
        Duration::from_secs(10),
    );
    assert!(start.contains(&format!("through {through}")), "{start}");

    lab.server(&server, 8080);
    let held = lab.hold(&client, "10.77.0.20", 8080);
    assert_eq!(lab.go(held), "ok");
    assert_eq!(lab.tcp(&client, "10.77.0.20", 8080), "ok");
    assert_eq!(lab.tcp(&client, "fd77::20", 8080), "ok");
    assert!(lab.tcp(&server, "10.77.0.10", 8080).starts_with("fail"));
    assert_ping(&client, "10.77.0.20", true);
    assert_ping(&server, "10.77.0.10", false);
    // Echo requests of 3,000 bytes cross as fragments (MTU 1500), both ways,
    // over IPv4 and IPv6: every fragment meets its flow.
    if have("ping") {
        for addr in ["10.77.0.20", "fd77::20"] {
            let ok = Command::new("ip")
                .args([
                    "netns", "exec", &client, "ping", "-c", "1", "-W", "2", "-s", "3000",
                ])
                .arg(addr)
                .status()
                .unwrap()
                .success();
            assert!(ok, "a fragmented ping to {addr} did not come back");
        }
    }

    // --watch: the file changes, new connections see it (mtime granularity:
    // make sure the change is visible as a change).
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(&policy_path, policy("")).unwrap();
    assert!(
        eventually(Duration::from_secs(6), || lab
            .tcp(&client, "10.77.0.20", 8080)
            .starts_with("fail")),
        "the watched policy was not reloaded"
    );
    assert_eq!(
        lab.go(held),
        "ok",
        "the established connection must keep flowing"
    );

    sg.signal("TERM");
    let (ok, out) = sg.finish(Duration::from_secs(5));
    assert!(ok, "{out}");
    // Every frame received was judged, and every allowed one forwarded.
    let count = |name: &str| -> u64 {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no `{name}` in the summary:\n{out}"))
    };
    let allowed: u64 = out
        .lines()
        .find_map(|l| l.split_once("(allowed ")?.1.split(',').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no allowed count:\n{out}"));
    assert!(count("packets ") > 0);
    assert_eq!(count("packets "), count("received_frames "), "{out}");
    assert_eq!(allowed, count("forwarded_frames "), "{out}");
    if through.starts_with("AF_XDP") {
        assert!(
            out.contains("note: side-c and side-s are virtual"),
            "no note on veth checksums:\n{out}"
        );
        assert_eq!(count("xdp_invalid_descs_total "), 0, "{out}");
    }
    let v = std::fs::read_to_string(&verdicts).unwrap();
    assert!(
        v.lines()
            .any(|l| l.contains("\"reason\":\"rule\"")
                && l.contains("\"rule\":\"sg-server/ingress/2\"")),
        "{v}"
    );
    assert!(
        v.lines()
            .any(|l| l.contains("\"verdict\":\"deny\"") && l.contains("\"dport\":8080")),
        "{v}"
    );
    let f = std::fs::read_to_string(&flows).unwrap();
    assert!(f.starts_with("version account-id interface-id"), "{f}");
    assert!(
        f.lines()
            .any(|l| l.contains(" server 10.77.0.10 10.77.0.20 ") && l.ends_with("ACCEPT OK")),
        "{f}"
    );
    assert!(
        f.lines()
            .any(|l| l.contains(" 10.77.0.20 10.77.0.10 ") && l.contains("REJECT")),
        "{f}"
    );
}

/// Whether `dev` in `ns` has an XDP program attached.
fn has_xdp(ns: &str, dev: &str) -> bool {
    let out = Command::new("ip")
        .args(["-n", ns, "-d", "link", "show", dev])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).contains("prog/xdp")
}

/// AF_XDP leaves nothing behind, even when killed; an interface it cannot
/// serve whole (two receive queues) makes `--io af-xdp` fail with the
/// reason, and `auto` fall back to AF_PACKET saying why.
#[test]
fn afxdp_leaves_no_program_behind_and_refuses_what_it_cannot_serve() {
    const TEST: &str = "afxdpkill";
    if skip_unless_root(TEST) {
        return;
    }
    let (lab, _client, _server, dut) = veth_lab(TEST);
    let policy_path = lab.path("policy.toml");
    std::fs::write(&policy_path, policy(TCP_8080)).unwrap();
    let run = |extra: &[&str]| {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &dut, SGPLANE, "-c"])
            .arg(&policy_path)
            .arg("run")
            .args(extra);
        cmd
    };
    let mut sg = Proc::spawn(
        run(&["--iface", "side-c", "--iface", "side-s", "--io", "af-xdp"]),
        true,
    );
    sg.expect("through AF_XDP", Duration::from_secs(10));
    assert!(has_xdp(&dut, "side-c") && has_xdp(&dut, "side-s"));
    sg.signal("KILL");
    let _ = sg.finish(Duration::from_secs(5));
    assert!(
        eventually(Duration::from_secs(3), || !has_xdp(&dut, "side-c")
            && !has_xdp(&dut, "side-s")),
        "an XDP program stayed attached after sgplane was killed"
    );

    // A veth pair with two receive queues on each end.
    ip(&[
        "-n",
        &dut,
        "link",
        "add",
        "mq-a",
        "numtxqueues",
        "2",
        "numrxqueues",
        "2",
        "type",
        "veth",
        "peer",
        "name",
        "mq-b",
        "numtxqueues",
        "2",
        "numrxqueues",
        "2",
    ]);
    for d in ["mq-a", "mq-b"] {
        ip(&["-n", &dut, "link", "set", d, "up"]);
    }
    let out = run(&["--iface", "mq-a", "--iface", "side-s", "--io", "af-xdp"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("mq-a has 2 receive queues"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!has_xdp(&dut, "side-s"), "a failed start left a program");

    let mut sg = Proc::spawn(run(&["--iface", "mq-a", "--iface", "side-s"]), true);
    let why = sg.expect("AF_XDP not used", Duration::from_secs(10));
    assert!(why.contains("receive queues"), "{why}");
    sg.expect("through AF_PACKET", Duration::from_secs(10));
    sg.signal("TERM");
    let (ok, out) = sg.finish(Duration::from_secs(5));
    assert!(ok, "{out}");

    // An interface deleted under AF_XDP stops sgplane with the reason (its
    // socket would otherwise just go quiet).
    let mut sg = Proc::spawn(
        run(&["--iface", "side-c", "--iface", "side-s", "--io", "af-xdp"]),
        true,
    );
    sg.expect("through AF_XDP", Duration::from_secs(10));
    ip(&["-n", &dut, "link", "del", "side-c"]);
    let (ok, out) = sg.finish(Duration::from_secs(5));
    assert!(!ok, "{out}");
    assert!(out.contains("side-c: the interface went away"), "{out}");
    assert!(!out.contains("panicked"), "{out}");
}

/// SPEC §9.3, issue 15: with a table of 1,000 entries, spoofed SYNs to an
/// allowed port from another client at the rate one thread sends them. The
/// flood's entries are never assured, so new real flows evict the oldest of
/// them (early drop): an established connection keeps working and new real
/// connections get through.
#[test]
fn a_syn_flood_neither_breaks_established_flows_nor_keeps_real_clients_out() {
    synflood_case("synflood", "af-packet");
}

/// The same through AF_XDP.
#[test]
fn a_syn_flood_through_afxdp_neither_breaks_established_flows_nor_keeps_real_clients_out() {
    synflood_case("synfloodx", "af-xdp");
}

fn synflood_case(test: &str, io: &str) {
    if skip_unless_root(test) {
        return;
    }
    let (mut lab, client, server, dut) = veth_lab(test);
    let policy_path = lab.path("policy.toml");
    let text = policy(r#"{ proto = "tcp", ports = "8080", from = "0.0.0.0/0" },"#)
        + "\n[conntrack]\nmax_entries = 1000\n";
    std::fs::write(&policy_path, text).unwrap();
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &dut, SGPLANE, "-c"])
        .arg(&policy_path)
        .args(["run", "--iface", "side-c", "--iface", "side-s", "--io", io]);
    if let Ok(v) = std::env::var("SGP_FLOOD_VERDICTS") {
        cmd.args(["--verdicts", &v]);
    }
    let mut sg = Proc::spawn(cmd, true);
    sg.expect("sgplane: forwarding between", Duration::from_secs(10));

    lab.server(&server, 8080);
    let h = lab.hold(&client, "10.77.0.20", 8080);
    assert_eq!(lab.go(h), "ok");

    let flood = lab.helper(&client, "synflood 10.77.0.20 8080 8000");
    // Let the flood fill the table.
    std::thread::sleep(Duration::from_millis(1000));
    let real = lab.helper(&client, "clients 10.77.0.20 8080 200 8");
    for _ in 0..3 {
        assert_eq!(
            lab.go(h),
            "ok",
            "the established connection must survive the flood"
        );
    }
    let answer = lab.procs[real].expect("HELPER ok", Duration::from_secs(60));
    let answer = answer
        .split_once("HELPER ")
        .map_or(answer.clone(), |(_, a)| a.to_string());
    let flooded = lab.procs[flood].expect("HELPER sent", Duration::from_secs(30));
    let sent: u64 = flooded.rsplit(' ').next().unwrap().parse().unwrap();
    assert_eq!(lab.go(h), "ok");

    sg.signal("TERM");
    let (ok, out) = sg.finish(Duration::from_secs(5));
    assert!(ok, "{out}");
    let early_drops: u64 = out
        .lines()
        .find_map(|l| {
            l.split_once("early drops ")
                .map(|(_, n)| n.trim().parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no early drops line in:\n{out}"));
    let real_ok: usize = answer
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("clients answered {answer}"));
    eprintln!(
        "{test} ({io}): {sent} spoofed SYNs sent, {early_drops} early drops, real clients: {answer}"
    );
    assert!(
        sent > 20_000,
        "the flood must far exceed the table ({sent} SYNs sent)"
    );
    assert!(
        early_drops > 1_000,
        "the flood filled the table: {early_drops} early drops\n{out}"
    );
    assert!(
        real_ok >= 198,
        "at least 99% of the real clients: {answer}\n{out}"
    );
}

#[test]
fn bad_sides_are_reported_without_a_panic() {
    let out = Command::new(SGPLANE)
        .args(["run", "--iface", "no-such-if0", "--iface", "no-such-if1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no-such-if0"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let out = Command::new(SGPLANE)
        .args(["run", "--tap", "bad/name", "--tap", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a valid interface name"));
}
