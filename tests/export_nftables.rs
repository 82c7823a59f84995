//! `sgplane export nftables`: every shipped policy loads in `nft -c` (the
//! kernel's own parser and validator), and in network namespaces a Linux
//! router with the exported ruleset allows and denies what `sgplane explain`
//! says it should. Skips visibly without root or without `nft`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{have, in_ns, ip, is_root};

const SGPLANE: &str = env!("CARGO_BIN_EXE_sgplane");

fn skip(test: &str, tools: &[&str]) -> bool {
    if !is_root() {
        eprintln!("SKIPPED {test}: needs root (nft talks to the kernel)");
        return true;
    }
    for t in tools {
        if !have(t) {
            eprintln!("SKIPPED {test}: `{t}` is not installed (apt-get install nftables iproute2)");
            return true;
        }
    }
    false
}

fn export(config: Option<&str>) -> String {
    let mut cmd = Command::new(SGPLANE);
    if let Some(c) = config {
        cmd.args(["-c", c]);
    }
    let out = cmd.args(["export", "nftables"]).output().unwrap();
    assert!(
        out.status.success(),
        "export {config:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_shipped_policy_passes_nft_check() {
    if skip("nft -c", &["nft"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut configs: Vec<_> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/config"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    configs.sort();
    assert!(configs.len() >= 5);
    for (i, c) in configs
        .iter()
        .map(|p| Some(p.to_str().unwrap()))
        .chain([None])
        .enumerate()
    {
        let text = export(c);
        let file = dir.path().join(format!("{i}.nft"));
        std::fs::write(&file, &text).unwrap();
        let out = Command::new("nft")
            .arg("-c")
            .arg("-f")
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "nft -c rejects the export of {}:\n{}",
            c.unwrap_or("the built-in policy"),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_bad_table_name_is_an_error() {
    let out = Command::new(SGPLANE)
        .args(["export", "nftables", "--table", "a b"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a plain nftables identifier"));
}

// ---------------------------------------------------------------- the kernel as the firewall

/// The echo server and client run inside namespaces (this binary again).
#[test]
fn helper() {
    let Ok(role) = std::env::var("SGPLANE_TEST_HELPER") else {
        return;
    };
    let args: Vec<&str> = role.split_whitespace().collect();
    match args.as_slice() {
        ["serve", ports @ ..] => {
            let listeners: Vec<TcpListener> = ports
                .iter()
                .map(|p| {
                    let l = TcpListener::bind(("::", p.parse::<u16>().unwrap())).unwrap();
                    l.set_nonblocking(true).unwrap();
                    l
                })
                .collect();
            println!("HELPER ready");
            let _ = std::io::stdout().flush();
            let deadline = Instant::now() + Duration::from_secs(120);
            while Instant::now() < deadline {
                for l in &listeners {
                    if let Ok((s, _)) = l.accept() {
                        std::thread::spawn(move || {
                            s.set_nonblocking(false).unwrap();
                            let mut w = s.try_clone().unwrap();
                            for line in BufReader::new(s).lines().map_while(Result::ok) {
                                let _ = writeln!(w, "{line}");
                            }
                        });
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        ["connect", addr, port] => {
            let r = (|| -> std::io::Result<()> {
                let sa: SocketAddr = (*addr, port.parse::<u16>().unwrap())
                    .to_socket_addrs()?
                    .next()
                    .unwrap();
                let mut s = TcpStream::connect_timeout(&sa, Duration::from_secs(2))?;
                s.set_read_timeout(Some(Duration::from_secs(2)))?;
                s.write_all(b"hi\n")?;
                let mut b = [0u8; 3];
                s.read_exact(&mut b)?;
                Ok(())
            })();
            println!("HELPER {}", if r.is_ok() { "ok" } else { "fail" });
        }
        _ => panic!("unknown helper role {role}"),
    }
}

struct Lab {
    namespaces: Vec<String>,
    children: Vec<Child>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

fn helper_cmd(ns: &str, role: &str) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns])
        .arg(std::env::current_exe().unwrap());
    c.args(["helper", "--exact", "--nocapture", "--test-threads=1"])
        .env("SGPLANE_TEST_HELPER", role);
    c
}

fn tcp_ok(ns: &str, addr: &str, port: u16) -> bool {
    let out = helper_cmd(ns, &format!("connect {addr} {port}"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).contains("HELPER ok")
}

fn ping_ok(ns: &str, addr: &str) -> bool {
    in_ns(ns, &["ping", "-c", "1", "-W", "1", addr])
        .status
        .success()
}

const POLICY: &str = r#"
[security_groups.sg-client]
egress = [ { proto = "all", to = "0.0.0.0/0" }, { proto = "all", to = "::/0" } ]

[security_groups.sg-server]
ingress = [
  { proto = "tcp", ports = "8080", from = "sg-client" },
  { proto = "tcp", ports = "8080-8090", from = ["10.78.1.0/24", "fd78:1::/64"], action = "deny", priority = 2 },
  { proto = "tcp", ports = "8085", from = "10.78.1.0/24", priority = 3 },
  { proto = "icmp", icmp_type = 8, from = "sg-client" },
]
egress = [ { proto = "tcp", to = "sg-client" } ]

[interfaces.client]
addresses = ["10.78.1.10", "fd78:1::10"]
security_groups = ["sg-client"]

[interfaces.server]
addresses = ["10.78.2.20", "fd78:2::20"]
security_groups = ["sg-server"]
"#;

/// What `sgplane explain` says about a new flow.
fn explain_allows(
    policy: &std::path::Path,
    src: &str,
    dst: &str,
    proto: &str,
    dport: Option<u16>,
) -> bool {
    let mut c = Command::new(SGPLANE);
    c.arg("-c")
        .arg(policy)
        .args(["explain", "--src", src, "--dst", dst, "--proto", proto]);
    if let Some(p) = dport {
        c.args(["--sport", "40000", "--dport", &p.to_string()]);
    }
    let out = c.output().unwrap();
    match out.status.code() {
        Some(0) => true,
        Some(1) => false,
        _ => panic!("explain failed: {}", String::from_utf8_lossy(&out.stderr)),
    }
}

#[test]
fn the_kernel_with_the_export_decides_like_sgplane() {
    if skip("kernel agrees", &["nft", "ip"]) {
        return;
    }
    let pid = std::process::id();
    let (c, r, s) = (
        format!("sgx-{pid}-c"),
        format!("sgx-{pid}-r"),
        format!("sgx-{pid}-s"),
    );
    let mut lab = Lab {
        namespaces: Vec::new(),
        children: Vec::new(),
    };
    for ns in [&c, &r, &s] {
        let _ = Command::new("ip").args(["netns", "del", ns]).output();
        ip(&["netns", "add", ns]);
        lab.namespaces.push(ns.clone());
        ip(&["-n", ns, "link", "set", "lo", "up"]);
    }
    ip(&[
        "link", "add", "eth0", "netns", &c, "type", "veth", "peer", "name", "to-c", "netns", &r,
    ]);
    ip(&[
        "link", "add", "eth0", "netns", &s, "type", "veth", "peer", "name", "to-s", "netns", &r,
    ]);
    for (ns, dev, v4, v6) in [
        (&c, "eth0", "10.78.1.10/24", "fd78:1::10/64"),
        (&r, "to-c", "10.78.1.1/24", "fd78:1::1/64"),
        (&r, "to-s", "10.78.2.1/24", "fd78:2::1/64"),
        (&s, "eth0", "10.78.2.20/24", "fd78:2::20/64"),
    ] {
        ip(&["-n", ns, "addr", "add", v4, "dev", dev]);
        ip(&["-n", ns, "addr", "add", v6, "dev", dev, "nodad"]);
        ip(&["-n", ns, "link", "set", dev, "up"]);
    }
    ip(&["-n", &c, "route", "add", "default", "via", "10.78.1.1"]);
    ip(&[
        "-n",
        &c,
        "-6",
        "route",
        "add",
        "default",
        "via",
        "fd78:1::1",
    ]);
    ip(&["-n", &s, "route", "add", "default", "via", "10.78.2.1"]);
    ip(&[
        "-n",
        &s,
        "-6",
        "route",
        "add",
        "default",
        "via",
        "fd78:2::1",
    ]);
    for k in ["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"] {
        assert!(in_ns(&r, &["sysctl", "-qw", k]).status.success());
    }

    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let rules = dir.path().join("ruleset.nft");
    std::fs::write(&rules, export(Some(policy.to_str().unwrap()))).unwrap();
    let out = in_ns(&r, &["nft", "-f", rules.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "nft -f: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    for ns in [&s, &c] {
        let mut server = helper_cmd(ns, "serve 8080 8081 8085 8086 9000");
        let mut child = server.stdout(Stdio::piped()).spawn().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut seen = String::new();
        while !seen.contains("HELPER ready") {
            assert!(
                out.read_line(&mut seen).unwrap() > 0,
                "the echo server did not start: {seen}"
            );
        }
        // Keep reading so the server never writes into a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        lab.children.push(child);
    }

    // (from, to, port): each judged by sgplane explain and tried for real.
    let flows: [(&str, &str, &str, &str, u16); 8] = [
        (&c, "10.78.1.10", &s, "10.78.2.20", 8080), // allow: sg-server/ingress/0 (priority 1)
        (&c, "10.78.1.10", &s, "10.78.2.20", 8081), // deny: the priority-2 deny
        (&c, "10.78.1.10", &s, "10.78.2.20", 8085), // deny: priority 2 beats the priority-3 allow
        (&c, "10.78.1.10", &s, "10.78.2.20", 8086), // deny
        (&c, "fd78:1::10", &s, "fd78:2::20", 8080), // allow over IPv6
        (&c, "fd78:1::10", &s, "fd78:2::20", 8081), // deny over IPv6
        (&s, "10.78.2.20", &c, "10.78.1.10", 9000), // deny: the client admits nothing
        (&s, "fd78:2::20", &c, "fd78:1::10", 9000), // deny
    ];
    let mut report = Vec::new();
    for (from_ns, from, to_ns, to, port) in flows {
        let _ = to_ns;
        let want = explain_allows(&policy, from, to, "tcp", Some(port));
        let got = tcp_ok(from_ns, to, port);
        report.push(format!(
            "tcp {from} -> {to}:{port}: sgplane {want}, kernel {got}"
        ));
        assert_eq!(got, want, "{}", report.join("\n"));
    }
    assert!(
        explain_allows(&policy, "10.78.1.10", "10.78.2.20", "tcp", Some(8080)),
        "the test needs an allowed flow"
    );
    if have("ping") {
        assert_eq!(
            ping_ok(&c, "10.78.2.20"),
            explain_allows(&policy, "10.78.1.10", "10.78.2.20", "icmp", None)
        );
        assert_eq!(
            ping_ok(&s, "10.78.1.10"),
            explain_allows(&policy, "10.78.2.20", "10.78.1.10", "icmp", None)
        );
    } else {
        eprintln!("NOTE: `ping` (iputils-ping) is not installed: ICMP flows not compared");
    }

    // The per-rule counters name sgplane's rules.
    let listing =
        String::from_utf8(in_ns(&r, &["nft", "list", "table", "inet", "sgplane"]).stdout).unwrap();
    let hits = |rule: &str| -> u64 {
        listing
            .lines()
            .filter(|l| l.contains(&format!("comment \"{rule}\"")))
            .filter_map(|l| {
                l.split("packets ")
                    .nth(1)?
                    .split_whitespace()
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .sum()
    };
    assert!(hits("sg-server/ingress/0") >= 2, "{listing}");
    assert!(hits("sg-server/ingress/1") >= 3, "{listing}");
}

// ---------------------------------------------------------------- network ACLs and untracked flows

fn export_text(policy: &str) -> Result<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.toml");
    std::fs::write(&file, policy).unwrap();
    let out = Command::new(SGPLANE)
        .args(["-c", file.to_str().unwrap(), "export", "nftables"])
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The lines of chain `name`, trimmed, comments left out.
fn chain<'t>(text: &'t str, name: &str) -> Vec<&'t str> {
    let start = format!("chain {name} {{");
    text.split(&start)
        .nth(1)
        .unwrap_or_else(|| panic!("no chain {name} in\n{text}"))
        .split("\n\t}")
        .next()
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// The set or map `name`'s elements line(s), joined.
fn elements(text: &str, kind: &str, name: &str) -> String {
    let start = format!("{kind} {name} {{");
    let body = text
        .split(&start)
        .nth(1)
        .unwrap_or_else(|| panic!("no {kind} {name} in\n{text}"))
        .split("\n\t}")
        .next()
        .unwrap();
    body.split("elements = {")
        .nth(1)
        .map_or(String::new(), |e| {
            e.split('}')
                .next()
                .unwrap()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
}

const NACLS: &str = r#"
[vpcs.vpc-1]
cidrs = ["10.7.0.0/16", "fd07::/48"]

[subnets.subnet-web]
vpc = "vpc-1"
cidr = ["10.7.1.0/24", "fd07:0:0:1::/64"]
network_acl = "acl-web"

[subnets.subnet-app]
vpc = "vpc-1"
cidr = "10.7.2.0/24"
network_acl = "acl-app"

[subnets.subnet-free]
vpc = "vpc-1"
cidr = "10.7.3.0/24"

[network_acls.acl-web]
ingress = [
  { rule = 100, proto = "tcp", ports = "443", from = "0.0.0.0/0", action = "allow" },
  { rule = 90, proto = "tcp", ports = "443", from = "10.7.2.99/32", action = "deny" },
  { rule = 110, proto = "icmp", icmp_type = 3, icmp_code = 4, from = "0.0.0.0/0", action = "allow" },
  { rule = 120, proto = "udp", ports = ["53", "5353"], from = "fd07::/48", action = "allow" },
  { rule = 130, proto = "50", from = "0.0.0.0/0", action = "allow" },
]
egress = [ { rule = 100, proto = "tcp", ports = "32768-65535", to = "0.0.0.0/0", action = "allow" } ]

[network_acls.acl-app]
ingress = [ { rule = 100, proto = "all", from = "0.0.0.0/0", action = "allow" } ]
egress = [ { rule = 100, proto = "all", to = "0.0.0.0/0", action = "allow" } ]

[security_groups.sg-open]
ingress = [ { proto = "all", from = ["0.0.0.0/0", "::/0"] } ]
egress = [ { proto = "all", to = ["0.0.0.0/0", "::/0"] } ]

[interfaces.web]
addresses = ["10.7.1.10", "fd07:0:0:1::10"]
security_groups = ["sg-open"]
subnet = "subnet-web"

[interfaces.app-in-web-block]
addresses = ["10.7.1.77"]
security_groups = ["sg-open"]
subnet = "subnet-app"
"#;

#[test]
fn network_acls_are_a_stateless_chain_ahead_of_conntrack() {
    let t = export_text(NACLS).unwrap();
    // The hook: prerouting at raw (after defragmentation at -400, before
    // conntrack at -200), the source's egress then the destination's ingress.
    assert_eq!(
        chain(&t, "nacl"),
        [
            "type filter hook prerouting priority raw; policy accept;",
            "fib daddr type local accept comment \"to this host: not filtered\"",
            "icmpv6 type 133-137 accept comment \"neighbor-discovery\"",
            "ip saddr vmap @nacl_src_v4",
            "ip6 saddr vmap @nacl_src_v6",
            "ip daddr vmap @nacl_dst_v4",
            "ip6 daddr vmap @nacl_dst_v6",
        ]
    );
    // Entries in rule-number order (90 before 100), allow returns, `*` drops.
    assert_eq!(
        chain(&t, "nacl_in_acl-web"),
        [
            "ip saddr 10.7.2.99 tcp dport 443 counter drop comment \"acl-web/ingress/90\"",
            "meta nfproto ipv4 tcp dport 443 counter return comment \"acl-web/ingress/100\"",
            "meta nfproto ipv4 icmp type 3 icmp code 4 counter return comment \"acl-web/ingress/110\"",
            "ip6 saddr fd07::/48 udp dport { 53, 5353 } counter return comment \"acl-web/ingress/120\"",
            "meta nfproto ipv4 meta l4proto 50 counter return comment \"acl-web/ingress/130\"",
            "counter drop comment \"acl-web/ingress/*\"",
        ]
    );
    assert_eq!(
        chain(&t, "nacl_eg_acl-web"),
        [
            "meta nfproto ipv4 tcp dport 32768-65535 counter return comment \"acl-web/egress/100\"",
            "counter drop comment \"acl-web/egress/*\"",
        ]
    );
    // Same subnet: accepted before the egress entries.
    assert_eq!(
        chain(&t, "nacl_from_subnet-web"),
        [
            "ip daddr @nacl_subnet-web_v4 accept comment \"inside subnet-web: not judged\"",
            "ip6 daddr @nacl_subnet-web_v6 accept comment \"inside subnet-web: not judged\"",
            "jump nacl_eg_acl-web",
        ]
    );
    // An interface's subnet wins over the block its address is in; a
    // subnet without an ACL is in no map.
    assert_eq!(
        elements(&t, "set", "nacl_subnet-web_v4"),
        "10.7.1.0-10.7.1.76, 10.7.1.78-10.7.1.255"
    );
    assert_eq!(
        elements(&t, "set", "nacl_subnet-app_v4"),
        "10.7.1.77, 10.7.2.0/24"
    );
    assert_eq!(
        elements(&t, "map", "nacl_dst_v4"),
        "10.7.1.0-10.7.1.76 : jump nacl_in_acl-web, 10.7.1.77 : jump nacl_in_acl-app, \
         10.7.1.78-10.7.1.255 : jump nacl_in_acl-web, 10.7.2.0/24 : jump nacl_in_acl-app"
    );
    assert!(!t.contains("10.7.3."), "subnet-free has no ACL: {t}");
    if !skip("nft -c", &["nft"]) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("nacl.nft");
        std::fs::write(&file, &t).unwrap();
        let out = Command::new("nft")
            .arg("-c")
            .arg("-f")
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn without_acls_or_aws_tracking_nothing_runs_ahead_of_conntrack() {
    let t = export_text(
        &NACLS
            .replace("network_acl = \"acl-web\"", "")
            .replace("network_acl = \"acl-app\"", ""),
    )
    .unwrap();
    assert!(!t.contains("prerouting"), "{t}");
    assert!(!t.contains("notrack"), "{t}");
}

#[test]
fn acls_in_two_vpcs_are_refused() {
    let two = format!("{NACLS}\n[vpcs.vpc-2]\ncidrs = [\"10.7.0.0/16\"]\n");
    let e = export_text(&two).unwrap_err();
    assert!(
        e.contains("network ACLs and 2 VPCs") && e.contains("one address space"),
        "{e}"
    );
}

const UNTRACKED: &str = r#"
[security_groups.sg-srv]
ingress = [ { proto = "tcp", ports = "22", from = "10.0.0.0/8", action = "deny", priority = 1 },
            { proto = "tcp", ports = "22", from = "0.0.0.0/0", priority = 2 },
            { proto = "udp", ports = "53", from = "10.0.0.0/8", priority = 2 },
            { proto = "icmp", from = "0.0.0.0/0", priority = 2 } ]
egress = [ { proto = "all", to = "0.0.0.0/0" } ]

[interfaces.srv]
addresses = ["10.8.2.20", "fd08::20"]
security_groups = ["sg-srv"]
tracking = "aws"

[interfaces.always]
addresses = ["10.8.2.21"]
security_groups = ["sg-srv"]

[interfaces.nlb]
addresses = ["10.8.2.22"]
security_groups = ["sg-srv"]
tracking = "aws"
kind = "load_balancer"
"#;

#[test]
fn untracked_flows_are_notracked_in_raw_and_judged_by_the_rules() {
    let t = export_text(UNTRACKED).unwrap();
    let hook = chain(&t, "untracked");
    assert_eq!(
        hook[0],
        "type filter hook prerouting priority raw + 1; policy accept;"
    );
    assert!(
        hook.contains(
            &"meta l4proto != { tcp, udp } accept comment \"ICMP and other protocols: tracked\""
        ),
        "{hook:?}"
    );
    // A flow opened to srv: ingress rules in decision order; the deny and
    // the non-/0 allow keep it tracked, the /0 allow does not; ICMP rules
    // are not asked. Only IPv4: the egress all-traffic rule names 0.0.0.0/0.
    assert_eq!(
        chain(&t, "ut_dst_fwd_srv"),
        [
            "ip saddr 10.0.0.0/8 tcp dport 22 return comment \"sg-srv/ingress/0\"",
            "meta nfproto ipv4 tcp dport 22 goto ut_notrack comment \"sg-srv/ingress/1\"",
            "ip saddr 10.0.0.0/8 udp dport 53 return comment \"sg-srv/ingress/2\"",
        ]
    );
    // Its replies leaving srv: the same rules, the packet turned around.
    assert_eq!(
        chain(&t, "ut_src_rev_srv"),
        [
            "ip daddr 10.0.0.0/8 tcp sport 22 return comment \"sg-srv/ingress/0, reply\"",
            "meta nfproto ipv4 tcp sport 22 goto ut_dst comment \"sg-srv/ingress/1, reply\"",
            "ip daddr 10.0.0.0/8 udp sport 53 return comment \"sg-srv/ingress/2, reply\"",
        ]
    );
    // Flows srv opens stay tracked: its ingress has no all-traffic rule.
    assert!(chain(&t, "ut_src_fwd_srv").is_empty());
    assert!(chain(&t, "ut_dst_rev_srv").is_empty());
    // Interfaces that track (the default, and always-tracked kinds) accept.
    assert_eq!(
        elements(&t, "map", "ut_dst_v4"),
        "10.8.2.20 : jump ut_dst_srv, 10.8.2.21 : accept, 10.8.2.22 : accept"
    );
    assert_eq!(
        chain(&t, "ut_notrack"),
        ["counter notrack accept comment \"untracked\""]
    );
    if !skip("nft -c", &["nft"]) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("untracked.nft");
        std::fs::write(&file, &t).unwrap();
        let out = Command::new("nft")
            .arg("-c")
            .arg("-f")
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
