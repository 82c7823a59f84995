//! The compiled SG classifier decides every new flow exactly as the linear
//! reference evaluator does: random policies (overlapping ranges and prefixes,
//! duplicates, every priority pattern, deny ties, SG references, prefix lists,
//! zones, IPv4 and IPv6, ICMP type/code, subnets with groups of their own as
//! Azure's subnet NSGs) against random flows.

use std::net::IpAddr;

use proptest::prelude::*;
use sgplane::classify::sg::SgClassifier;
use sgplane::classify::{Decide, Decisions};
use sgplane::policy::{Flow, IpProto, Policy};

const V4: [&str; 10] = [
    "10.0.0.0",
    "10.0.0.1",
    "10.0.0.2",
    "10.0.0.3",
    "10.0.0.4",
    "10.0.0.5",
    "10.0.1.1",
    "10.0.1.2",
    "192.0.2.9",
    "10.0.0.7",
];
const V6: [&str; 6] = [
    "2001:db8::1",
    "2001:db8::2",
    "2001:db8::3",
    "2001:db8::8",
    "2001:db8:1::1",
    "2001:db8:ffff::9",
];
const REMOTES: [&str; 14] = [
    "0.0.0.0/0",
    "::/0",
    "10.0.0.0/30",
    "10.0.0.4/31",
    "10.0.0.3",
    "10.0.0.0/24",
    "10.0.1.0/24",
    "192.0.2.0/24",
    "2001:db8::/126",
    "2001:db8::/32",
    "2001:db8:1::/48",
    "pl-a",
    "pl-b",
    "10.0.0.2/31",
];
const ZONES: [&str; 2] = ["vpce-0000000000000000a", "vpce-0000000000000000b"];

fn proto() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("tcp"),
        Just("udp"),
        Just("icmp"),
        Just("icmpv6"),
        Just("all"),
        Just("47")
    ]
}

fn ports() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        3 => Just(None),
        2 => prop::sample::select(vec!["22", "80", "443", "0", "53"]).prop_map(|p| Some(format!("\"{p}\""))),
        2 => (0u16..100, 0u16..50).prop_map(|(a, b)| Some(format!("\"{}-{}\"", a, a + b))),
        1 => Just(Some("[\"22\", \"80-90\"]".to_string())),
        1 => Just(Some("\"1/65535\"".to_string())),
        1 => Just(Some("\"-1/-1\"".to_string())),
    ]
}

#[derive(Debug, Clone)]
struct RuleSpec {
    proto: &'static str,
    ports: Option<String>,
    sports: Option<String>,
    icmp: (Option<i16>, Option<i16>),
    remote: Vec<String>,
    local: Option<&'static str>,
    deny: bool,
    priority: u16,
}

fn rule(sgs: usize) -> impl Strategy<Value = RuleSpec> {
    let remote = prop_oneof![
        3 => prop::sample::select(REMOTES.to_vec()).prop_map(|r| r.to_string()),
        2 => (0..sgs).prop_map(|g| format!("sg-{g}")),
    ];
    (
        proto(),
        ports(),
        prop_oneof![4 => Just(None), 1 => Just(Some("\"1024-65535\"".to_string())), 1 => Just(Some("\"7\"".to_string()))],
        (prop::option::of(prop_oneof![Just(-1i16), 0i16..4, Just(8), Just(128)]), prop::option::of(prop_oneof![Just(-1i16), 0i16..3])),
        prop::collection::vec(remote, 1..3),
        prop_oneof![4 => Just(None), 1 => Just(Some("10.0.0.0/30")), 1 => Just(Some("2001:db8::/64"))],
        prop::bool::weighted(0.3),
        prop_oneof![Just(1u16), Just(1), Just(2), Just(3)],
    )
        .prop_map(|(proto, ports, sports, icmp, remote, local, deny, priority)| RuleSpec {
            proto,
            ports,
            sports,
            icmp,
            remote,
            local,
            deny,
            priority,
        })
}

fn render_rule(r: &RuleSpec, dir: &str) -> String {
    let has_ports = matches!(r.proto, "tcp" | "udp");
    let is_icmp = matches!(r.proto, "icmp" | "icmpv6");
    let mut s = format!("{{ proto = \"{}\"", r.proto);
    if has_ports {
        if let Some(p) = &r.ports {
            s += &format!(", ports = {p}");
        }
        if let Some(p) = &r.sports {
            s += &format!(", source_ports = {p}");
        }
    }
    if is_icmp {
        if let Some(t) = r.icmp.0 {
            s += &format!(", icmp_type = {t}");
        }
        if let Some(c) = r.icmp.1 {
            s += &format!(", icmp_code = {c}");
        }
    }
    let key = if dir == "ingress" { "from" } else { "to" };
    let list: Vec<String> = r.remote.iter().map(|x| format!("\"{x}\"")).collect();
    s += &format!(", {key} = [{}]", list.join(", "));
    if let Some(l) = r.local {
        s += &format!(", local = \"{l}\"");
    }
    if r.deny {
        s += ", action = \"deny\"";
    }
    s += &format!(", priority = {} }}", r.priority);
    s
}

#[derive(Debug, Clone)]
struct PolicySpec {
    sgs: Vec<(bool, Vec<RuleSpec>, Vec<RuleSpec>)>,
    ifaces: Vec<(Vec<usize>, Vec<usize>, Option<usize>)>,
    /// Each interface's subnet, if any (by interface, cycled).
    iface_subnets: Vec<Option<usize>>,
    /// The groups of the two subnets (SPEC §9.2; empty: no subnet layer).
    subnet_sgs: [Vec<usize>; 2],
    unknown_allow: bool,
}

fn policy_spec() -> impl Strategy<Value = PolicySpec> {
    (1usize..4).prop_flat_map(|n| {
        let sg = (
            prop::bool::weighted(0.3),
            prop::collection::vec(rule(n), 0..7),
            prop::collection::vec(rule(n), 0..5),
        );
        let iface = (
            prop::collection::vec(0usize..V4.len() + V6.len(), 1..3),
            prop::collection::vec(0..n, 0..3),
            prop::option::weighted(0.3, 0usize..2),
        );
        let subnet_sgs = || prop::collection::vec(0..n, 0..3);
        (
            prop::collection::vec(sg, n),
            prop::collection::vec(iface, 1..6),
            prop::collection::vec(prop::option::weighted(0.6, 0usize..2), 1..6),
            (subnet_sgs(), subnet_sgs()),
            any::<bool>(),
        )
            .prop_map(
                |(sgs, ifaces, iface_subnets, (a, b), unknown_allow)| PolicySpec {
                    sgs,
                    ifaces,
                    iface_subnets,
                    subnet_sgs: [a, b],
                    unknown_allow,
                },
            )
    })
}

fn addr(i: usize) -> &'static str {
    if i < V4.len() {
        V4[i]
    } else {
        V6[i - V4.len()]
    }
}

fn render(p: &PolicySpec) -> String {
    let mut t = String::new();
    if p.unknown_allow {
        t += "[settings]\nunknown_address = \"allow\"\n";
    }
    t += "[prefix_lists]\npl-a = [\"10.0.0.2/31\", \"2001:db8::2/127\"]\npl-b = [\"192.0.2.0/25\"]\n";
    for (g, (intra, ing, eg)) in p.sgs.iter().enumerate() {
        t += &format!("[security_groups.sg-{g}]\n");
        if *intra {
            t += "intra_group = \"allow\"\n";
        }
        let i: Vec<String> = ing.iter().map(|r| render_rule(r, "ingress")).collect();
        let e: Vec<String> = eg.iter().map(|r| render_rule(r, "egress")).collect();
        t += &format!(
            "ingress = [\n  {}\n]\negress = [\n  {}\n]\n",
            i.join(",\n  "),
            e.join(",\n  ")
        );
    }
    // One VNet; two subnets that may carry groups. Whether an interface's
    // addresses lie in its subnet does not matter to the rules.
    t += "[vpcs.vnet-0]\ncidrs = [\"10.0.0.0/8\", \"192.0.2.0/24\", \"2001:db8::/32\"]\n";
    for (s, groups) in p.subnet_sgs.iter().enumerate() {
        let mut g: Vec<String> = groups.iter().map(|i| format!("\"sg-{i}\"")).collect();
        g.sort();
        g.dedup();
        t += &format!(
            "[subnets.subnet-{s}]\nvpc = \"vnet-0\"\ncidr = \"10.0.{s}.0/24\"\nsecurity_groups = [{}]\n",
            g.join(", ")
        );
    }
    for (n, (addrs, sgs, zone)) in p.ifaces.iter().enumerate() {
        let mut a: Vec<&str> = addrs.iter().map(|&i| addr(i)).collect();
        a.dedup();
        let mut g: Vec<String> = sgs.iter().map(|i| format!("\"sg-{i}\"")).collect();
        g.sort();
        g.dedup();
        let a: Vec<String> = a.iter().map(|x| format!("\"{x}\"")).collect();
        t += &format!(
            "[interfaces.if-{n}]\naddresses = [{}]\nsecurity_groups = [{}]\n",
            a.join(", "),
            g.join(", ")
        );
        if let Some(z) = zone {
            t += &format!("zone = \"{}\"\n", ZONES[*z]);
        }
        if let Some(s) = p.iface_subnets[n % p.iface_subnets.len()] {
            t += &format!("subnet = \"subnet-{s}\"\n");
        }
    }
    t
}

fn flow() -> impl Strategy<Value = Flow> {
    let pair = prop_oneof![
        (
            prop::sample::select(V4.to_vec()),
            prop::sample::select(V4.to_vec())
        ),
        (
            prop::sample::select(V6.to_vec()),
            prop::sample::select(V6.to_vec())
        ),
    ];
    (
        pair,
        prop_oneof![Just(6u8), Just(17), Just(1), Just(58), Just(47)],
        prop::option::of(prop_oneof![
            Just(7u16),
            Just(22),
            Just(80),
            Just(85),
            Just(443),
            Just(0),
            0u16..1200,
            Just(40000)
        ]),
        prop::option::of(prop_oneof![
            Just(7u16),
            Just(80),
            Just(443),
            Just(0),
            Just(2000)
        ]),
        prop::option::of((
            prop_oneof![Just(0u8), Just(1), Just(3), Just(8), Just(128)],
            0u8..4,
        )),
        prop_oneof![
            Just(None),
            Just(Some(0xa_u64)),
            Just(Some(0xb)),
            Just(Some(0xc))
        ],
    )
        .prop_map(|((s, d), proto, dport, sport, icmp, zone)| {
            let (src, dst): (IpAddr, IpAddr) = (s.parse().unwrap(), d.parse().unwrap());
            let mut f = Flow::other(src, dst, IpProto(proto)).in_zone(zone);
            match proto {
                6 | 17 => {
                    f.dport = dport;
                    // A later fragment has neither port.
                    f.sport = dport.and(sport.or(Some(40000)));
                }
                1 | 58 => f.icmp = icmp,
                _ => {}
            }
            f
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    #[test]
    fn classifier_equals_reference(spec in policy_spec(), flows in prop::collection::vec(flow(), 1..40)) {
        let text = render(&spec);
        // Overlapping addresses in one zone are a policy error: such specs are skipped.
        let policy = match Policy::from_toml(&text, "prop.toml") {
            Ok(p) => p,
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(msg.contains("overlaps"), "unexpected error: {}\n{}", msg, text);
                return Ok(());
            }
        };
        if std::env::var("SG_PROP_STATS").is_ok() {
            eprintln!("loaded: {} rules, {} interfaces, layered {}", policy.rules().len(), policy.interfaces().len(), policy.layered());
        }
        let fast = SgClassifier::build(&policy);
        for f in &flows {
            let want = policy.evaluate(f);
            let got = fast.decide(&policy, f);
            prop_assert_eq!(got, want, "flow {:?}\npolicy:\n{}", f, text);
        }
        // The batch lookup (16 lanes at a time on AVX2, the rest one by one)
        // gives the same decisions, in order, on a batch long enough to fill
        // lanes: the flows repeated up to 100, so several lanes per
        // classifier.
        let batch: Vec<Flow> = flows.iter().cycle().take(100.max(flows.len())).copied().collect();
        let mut got = Decisions::default();
        fast.decide_batch(&policy, &batch, &mut got);
        prop_assert_eq!(got.len(), batch.len());
        for (f, g) in batch.iter().zip(got.iter()) {
            prop_assert_eq!(*g, policy.evaluate(f), "batch, flow {:?}\npolicy:\n{}", f, text);
        }
        // Each flow twice in a row: a run of equal decisions is kept once.
        let twice: Vec<Flow> = flows.iter().flat_map(|&f| [f, f]).collect();
        fast.decide_batch(&policy, &twice, &mut got);
        prop_assert_eq!(got.len(), twice.len());
        for (f, g) in twice.iter().zip(got.iter()) {
            prop_assert_eq!(*g, policy.evaluate(f), "twice, flow {:?}\npolicy:\n{}", f, text);
        }
        for pair in got.of_flow.chunks(2) {
            prop_assert_eq!(pair[0], pair[1]);
        }
        prop_assert!(got.distinct.windows(2).all(|w| w[0] != w[1]));
        prop_assert!(got.distinct.len() <= flows.len());
    }
}
