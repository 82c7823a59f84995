//! The `engine_nacl_tracking` target's input: a policy with network ACLs
//! and interfaces that may leave flows untracked, built from `arbitrary`
//! choices on a fixed skeleton, and a sequence of packets through it.
//!
//! The skeleton: one VPC 10.0.0.0/16 of three subnets (`subnet-a`
//! 10.0.1.0/24 and `subnet-b` 10.0.2.0/24 with ACLs `acl-a` and `acl-b`,
//! `subnet-c` 10.0.3.0/24 without one), four interfaces (two in `subnet-a`,
//! one in each other), three security groups. Arbitrary: each ACL's entries
//! (rule numbers, protocols, ports, remote blocks, allow or deny), each
//! group's rules (0.0.0.0/0 and all-traffic rules among them, so flows go
//! untracked), each interface's groups, `tracking = "aws"` or not and
//! `kind`, the table's size and timeouts. Packets: TCP with any flags, UDP,
//! ICMP echo, GRE, between the interfaces, other hosts of the subnets and
//! the internet, or the reply to an earlier packet; time steps of ms to
//! minutes.

use std::fmt::Write as _;
use std::net::IpAddr;

use arbitrary::{Arbitrary, Result, Unstructured};
use sgplane::wire::build;
use sgplane::wire::packet::LinkType;

use crate::invariants::Fed;

/// Interfaces of the skeleton (name, address, subnet).
pub const IFACES: [(&str, &str, &str); 4] = [
    ("web", "10.0.1.10", "subnet-a"),
    ("web2", "10.0.1.11", "subnet-a"),
    ("app", "10.0.2.20", "subnet-b"),
    ("db", "10.0.3.30", "subnet-c"),
];

/// Addresses packets use: the interfaces, other hosts of the subnets and VPC, the internet.
const ADDRS: [&str; 9] = [
    "10.0.1.10",
    "10.0.1.11",
    "10.0.2.20",
    "10.0.3.30",
    "10.0.1.99",
    "10.0.2.99",
    "10.0.9.9",
    "203.0.113.9",
    "198.51.100.7",
];

const REMOTES: [&str; 8] = [
    "0.0.0.0/0",
    "10.0.0.0/16",
    "10.0.1.0/24",
    "10.0.2.0/24",
    "10.0.1.10/32",
    "10.0.2.20/32",
    "203.0.113.0/24",
    "10.0.3.0/24",
];

const PORTS: [&str; 8] = [
    "80",
    "443",
    "22",
    "53",
    "1024-65535",
    "0-1023",
    "80-443",
    "5432",
];
const PORT_VALUES: [u16; 10] = [80, 443, 22, 53, 5432, 1024, 40000, 40001, 65535, 0];

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Proto {
    Tcp,
    Udp,
    Icmp,
    All,
    Gre,
}

impl Proto {
    fn toml(self) -> &'static str {
        match self {
            Proto::Tcp => "\"tcp\"",
            Proto::Udp => "\"udp\"",
            Proto::Icmp => "\"icmp\"",
            Proto::All => "\"all\"",
            Proto::Gre => "47",
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
pub struct AclEntry {
    pub rule: u8,
    pub proto: Proto,
    pub ports: Option<u8>,
    pub remote: u8,
    pub allow: bool,
}

#[derive(Arbitrary, Debug, Clone)]
pub struct SgRule {
    pub proto: Proto,
    pub ports: Option<u8>,
    /// A block of [`REMOTES`], or (odd values past them) another group.
    pub remote: u8,
    pub deny: bool,
    pub priority: Option<u8>,
}

#[derive(Arbitrary, Debug, Clone)]
pub struct Group {
    pub ingress: Vec<SgRule>,
    pub egress: Vec<SgRule>,
    /// An ingress rule for this protocol from 0.0.0.0/0 (what AWS leaves untracked).
    pub open_ingress: Option<Proto>,
    /// The all-traffic egress rule to 0.0.0.0/0.
    pub all_egress: bool,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Iface {
    /// Bit i: member of `sg-i`.
    pub groups: u8,
    pub aws_tracking: bool,
    pub load_balancer: bool,
}

#[derive(Arbitrary, Debug, Clone)]
pub struct PolicySpec {
    pub acl_a: (Vec<AclEntry>, Vec<AclEntry>),
    pub acl_b: (Vec<AclEntry>, Vec<AclEntry>),
    pub groups: [Group; 3],
    pub ifaces: [Iface; 4],
    /// An allow-all entry (rule 32000) at the end of acl-a and acl-b, each way.
    pub catch_all: [bool; 4],
    pub max_entries: u8,
    pub timeout: u8,
}

fn acl_entries(
    out: &mut String,
    name: &str,
    dir: &str,
    key: &str,
    entries: &[AclEntry],
    catch_all: bool,
) {
    let _ = write!(out, "[network_acls.{name}]\n{dir} = [\n");
    let mut used = Vec::new();
    for e in entries.iter().take(8) {
        // Rule numbers are unique in a direction (the loader refuses twice).
        if used.contains(&e.rule) {
            continue;
        }
        used.push(e.rule);
        let _ = write!(
            out,
            "  {{ rule = {}, proto = {}",
            u16::from(e.rule) + 1,
            e.proto.toml()
        );
        if let (Some(p), Proto::Tcp | Proto::Udp) = (e.ports, e.proto) {
            let _ = write!(out, ", ports = \"{}\"", PORTS[usize::from(p) % PORTS.len()]);
        }
        let remote = REMOTES[usize::from(e.remote) % REMOTES.len()];
        let action = if e.allow { "allow" } else { "deny" };
        let _ = writeln!(out, ", {key} = \"{remote}\", action = \"{action}\" }},");
    }
    if catch_all {
        let _ = writeln!(
            out,
            "  {{ rule = 32000, proto = \"all\", {key} = \"0.0.0.0/0\", action = \"allow\" }},"
        );
    }
    out.push_str("]\n");
}

fn sg_rules(out: &mut String, key: &str, rules: &[SgRule]) {
    for r in rules.iter().take(6) {
        let _ = write!(out, "  {{ proto = {}", r.proto.toml());
        if let (Some(p), Proto::Tcp | Proto::Udp) = (r.ports, r.proto) {
            let _ = write!(out, ", ports = \"{}\"", PORTS[usize::from(p) % PORTS.len()]);
        }
        let i = usize::from(r.remote);
        let remote = if i < 2 * REMOTES.len() || i % 2 == 0 {
            REMOTES[i % REMOTES.len()].to_string()
        } else {
            format!("sg-{}", i % 3)
        };
        let _ = write!(out, ", {key} = \"{remote}\"");
        if r.deny {
            out.push_str(", action = \"deny\"");
        }
        if let Some(p) = r.priority.filter(|_| r.deny) {
            let _ = write!(out, ", priority = {}", u16::from(p) + 1);
        }
        out.push_str(" },\n");
    }
}

impl PolicySpec {
    /// The policy file.
    pub fn toml(&self) -> String {
        let mut t = String::new();
        let timeout = 1 + u32::from(self.timeout % 120);
        let _ = write!(
            t,
            "[settings]\nunknown_address = \"deny\"\n\n[conntrack]\nmax_entries = {}\ntcp_established = {timeout}\ntcp_transitory = {}\nudp = {}\nudp_stream = {timeout}\nicmp = 1\nother = 2\n\n",
            2 + self.max_entries % 15,
            1 + timeout / 4,
            1 + timeout / 8,
        );
        t.push_str("[vpcs.vpc-a]\ncidrs = [\"10.0.0.0/16\"]\n\n");
        for (s, cidr, acl) in [
            ("subnet-a", "10.0.1.0/24", Some("acl-a")),
            ("subnet-b", "10.0.2.0/24", Some("acl-b")),
            ("subnet-c", "10.0.3.0/24", None),
        ] {
            let _ = write!(t, "[subnets.{s}]\nvpc = \"vpc-a\"\ncidr = \"{cidr}\"\n");
            if let Some(a) = acl {
                let _ = writeln!(t, "network_acl = \"{a}\"");
            }
            t.push('\n');
        }
        for (i, (name, (ingress, egress))) in [("acl-a", &self.acl_a), ("acl-b", &self.acl_b)]
            .into_iter()
            .enumerate()
        {
            acl_entries(
                &mut t,
                name,
                "ingress",
                "from",
                ingress,
                self.catch_all[2 * i],
            );
            let mut e = String::new();
            acl_entries(
                &mut e,
                name,
                "egress",
                "to",
                egress,
                self.catch_all[2 * i + 1],
            );
            // One table header per ACL.
            t.push_str(e.split_once('\n').map_or("", |(_, rest)| rest));
            t.push('\n');
        }
        for (i, g) in self.groups.iter().enumerate() {
            let _ = write!(t, "[security_groups.sg-{i}]\ningress = [\n");
            sg_rules(&mut t, "from", &g.ingress);
            if let Some(p) = g.open_ingress {
                let _ = writeln!(t, "  {{ proto = {}, from = \"0.0.0.0/0\" }},", p.toml());
            }
            t.push_str("]\negress = [\n");
            sg_rules(&mut t, "to", &g.egress);
            if g.all_egress {
                t.push_str("  { proto = \"all\", to = \"0.0.0.0/0\" },\n");
            }
            t.push_str("]\n\n");
        }
        for ((name, addr, subnet), f) in IFACES.iter().zip(&self.ifaces) {
            let groups: Vec<String> = (0..3)
                .filter(|b| f.groups & (1 << b) != 0)
                .map(|b| format!("\"sg-{b}\""))
                .collect();
            let _ = write!(
                t,
                "[interfaces.{name}]\naddresses = [\"{addr}\"]\nsecurity_groups = [{}]\nsubnet = \"{subnet}\"\n",
                groups.join(", ")
            );
            if f.aws_tracking {
                t.push_str("tracking = \"aws\"\n");
            }
            if f.load_balancer {
                t.push_str("kind = \"load_balancer\"\n");
            }
            t.push('\n');
        }
        t
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Kind {
    Tcp { flags: u8 },
    Udp,
    Echo { request: bool, ident: u8 },
    Gre,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Step {
    Packet {
        src: u8,
        dst: u8,
        sport: u8,
        dport: u8,
        kind: Kind,
    },
    /// The reply to the `back`-th packet before this one (TCP with `flags`).
    Reply { back: u8, flags: u8 },
}

/// How far time moves before a step.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Dt {
    Ms(u8),
    Seconds(u8),
    Minutes(u8),
}

impl Dt {
    fn nanos(self) -> u64 {
        const MS: u64 = 1_000_000;
        match self {
            Dt::Ms(n) => u64::from(n) * MS,
            Dt::Seconds(n) => u64::from(n) * 1000 * MS,
            Dt::Minutes(n) => u64::from(n) * 60_000 * MS,
        }
    }
}

/// A whole input: the policy and up to 48 steps.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub policy: PolicySpec,
    pub steps: Vec<(Dt, Step)>,
}

impl<'a> Arbitrary<'a> for Scenario {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let policy = PolicySpec::arbitrary(u)?;
        let mut steps = Vec::new();
        while steps.len() < 48 && !u.is_empty() {
            steps.push((Dt::arbitrary(u)?, Step::arbitrary(u)?));
        }
        Ok(Scenario { policy, steps })
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("literal address")
}

/// A packet as built, so that a reply can be made of it.
#[derive(Debug, Clone, Copy)]
struct Sent {
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    kind: Kind,
}

fn frame(s: &Sent) -> Vec<u8> {
    match s.kind {
        Kind::Tcp { flags } => build::tcp(s.src, s.dst, s.sport, s.dport, flags, 1, 1, b""),
        Kind::Udp => build::udp(s.src, s.dst, s.sport, s.dport, b"x"),
        Kind::Echo { request, ident } => {
            build::echo(s.src, s.dst, request, u16::from(ident % 4), 1)
        }
        Kind::Gre => build::ip_other(s.src, s.dst, 47, &[0; 8]),
    }
}

impl Scenario {
    /// The frames, in order, with their times.
    pub fn frames(&self) -> Vec<Fed> {
        let mut sent: Vec<Sent> = Vec::new();
        let mut out = Vec::new();
        let mut now = 1_700_000_000_000_000_000u64;
        for &(dt, step) in &self.steps {
            now += dt.nanos();
            let s = match step {
                Step::Packet {
                    src,
                    dst,
                    sport,
                    dport,
                    kind,
                } => Sent {
                    src: ip(ADDRS[usize::from(src) % ADDRS.len()]),
                    dst: ip(ADDRS[usize::from(dst) % ADDRS.len()]),
                    sport: PORT_VALUES[usize::from(sport) % PORT_VALUES.len()],
                    dport: PORT_VALUES[usize::from(dport) % PORT_VALUES.len()],
                    kind,
                },
                Step::Reply { back, flags } => {
                    let Some(p) = sent.iter().rev().nth(usize::from(back) % sent.len().max(1))
                    else {
                        continue;
                    };
                    let kind = match p.kind {
                        Kind::Tcp { .. } => Kind::Tcp { flags },
                        Kind::Echo { request, ident } => Kind::Echo {
                            request: !request,
                            ident,
                        },
                        k => k,
                    };
                    Sent {
                        src: p.dst,
                        dst: p.src,
                        sport: p.dport,
                        dport: p.sport,
                        kind,
                    }
                }
            };
            sent.push(s);
            let f = frame(&s);
            out.push(Fed {
                link: LinkType::Ethernet,
                orig_len: f.len(),
                frame: f,
                ts: now,
            });
        }
        out
    }
}

/// The `engine_nacl_tracking` target's body: decode, build, check
/// ([`crate::invariants::check_engine_nacl_tracking`]).
pub fn check(data: &[u8]) {
    let Ok(s) = Scenario::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    crate::invariants::check_engine_nacl_tracking(&s.policy.toml(), &s.frames());
}
