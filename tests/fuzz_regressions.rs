//! What the fuzz targets in `fuzz/` found, kept as tests that run on stable
//! without cargo-fuzz (see fuzz/README.md).
//!
//! `fuzz/src/invariants.rs` is included by path: the reproducers under
//! `fuzz/regressions/<target>/` are replayed through the very checks the
//! targets assert, and the checks themselves are exercised here on inputs
//! known to be good, so the harness cannot rot unnoticed.

#[allow(dead_code)]
#[path = "../fuzz/src/invariants.rs"]
mod invariants;
// Formatted with the fuzz crate's own settings, not this crate's.
#[rustfmt::skip]
#[path = "../fuzz/src/policy_mutation.rs"]
mod policy_mutation;
// The structured inputs of the newer targets, each with the target's body.
#[path = "../fuzz/src/aws_documents.rs"]
mod aws_documents;
#[path = "../fuzz/src/nacl_scenario.rs"]
mod nacl_scenario;
#[path = "../fuzz/src/nesting.rs"]
mod nesting;
// The engine target's input decoder (a variant named after its enum, as
// the fuzz crate, which has no such lint, wrote it).
#[path = "../fuzz/src/json_edits.rs"]
mod json_edits;
#[allow(clippy::enum_variant_names)]
#[path = "../fuzz/src/scenario.rs"]
mod scenario;
#[path = "../fuzz/src/topology.rs"]
mod topology;

use std::net::IpAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use arbitrary::{Arbitrary, Unstructured};
use invariants::*;
use sgplane::policy::{Reason, Verdict};
use sgplane::wire::build;
use sgplane::wire::ethernet::ether_type;
use sgplane::wire::geneve;
use sgplane::wire::packet::{LinkType, ParseOptions};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Reproducers of bugs not fixed yet: skipped by `replay_committed_reproducers`
/// and replayed by their own `#[ignore]`d test below. Remove a name when its
/// bug is fixed.
const KNOWN_OPEN: &[&str] = &[];

fn reproducers(target: &str) -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir(root().join("fuzz/regressions").join(target)) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = dir
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

/// Runs `check` on every committed reproducer of `target`; names every one that fails.
fn replay(target: &str, check: fn(&[u8])) -> usize {
    let mut failed = Vec::new();
    let files = reproducers(target);
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        if KNOWN_OPEN.contains(&name.as_str()) {
            continue;
        }
        let bytes = std::fs::read(f).unwrap();
        if catch_unwind(AssertUnwindSafe(|| check(&bytes))).is_err() {
            failed.push(name);
        }
    }
    assert!(
        failed.is_empty(),
        "fuzz/regressions/{target}: {failed:?} fail again"
    );
    files.len()
}

#[test]
fn replay_committed_reproducers() {
    replay("parse", check_parse);
    replay("geneve", check_geneve);
    replay("capture", check_capture);
    replay("policy", |b| {
        if let Ok(text) = std::str::from_utf8(b) {
            check_policy_text(text)
        }
    });
    replay("policy_structured", check_policy_structured);
    replay("import_aws", check_import_aws);
    replay("import_alibaba", check_import_alibaba);
    replay("import_azure", check_import_azure);
    replay("import_terraform", check_import_terraform);
    replay("import_aws_structured", aws_documents::check);
    replay("import_json_edits", json_edits::check);
    replay("engine", scenario::run);
    replay("engine_nacl_tracking", nacl_scenario::check);
    replay("flowlog", check_flowlog);
    replay("flowlog_parquet", check_flowlog_parquet);
    replay("tunnels", nesting::check);
    replay("path", topology::check);
}

/// The newer targets' checks on the data in the tree: the Terraform plan,
/// the flow-log fixtures, the path scenarios with a query between every
/// two of their interfaces, and a few structured inputs of each kind.
#[test]
fn newer_checks_accept_the_data_in_the_tree() {
    check_import_terraform(&std::fs::read(root().join("tests/data/terraform/plan.json")).unwrap());
    for f in ["default.log", "custom.log"] {
        check_flowlog(&std::fs::read(root().join("tests/data/flowlogs").join(f)).unwrap());
    }
    // The fixtures as Parquet (without the line that has too few fields to
    // be a row), whole and with bytes changed.
    for f in ["default.log", "custom.log"] {
        let text = std::fs::read_to_string(root().join("tests/data/flowlogs").join(f)).unwrap();
        let rows: String = text
            .lines()
            .filter(|l| *l != "this line is not a record")
            .map(|l| format!("{l}\n"))
            .collect();
        for edits in [[0u8; 8], [1, 2, 3, 4, 5, 6, 7, 8], [0xff; 8]] {
            let mut input = edits.to_vec();
            input.extend_from_slice(rows.as_bytes());
            check_flowlog_parquet(&input);
        }
    }
    // A format line first: the rest read as --log-format reads it, with and
    // without the header, and the whole as a flow log of its own header.
    let format = "${version} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${action} ${log-status}";
    let records = "2 eni-web 203.0.113.5 10.0.1.10 51000 443 6 ACCEPT OK\n\n2 - 10.0.2.20 10.0.1.10 5432 40000 6 REJECT OK\nbad line\n";
    let header = format.replace("${", "").replace('}', "");
    check_flowlog(format!("{format}\n{records}").as_bytes());
    check_flowlog(format!("{format}\n{header}\n{records}").as_bytes());
    for e in std::fs::read_dir(root().join("tests/data/path")).unwrap() {
        let p = e.unwrap().path();
        let text = std::fs::read_to_string(&p).unwrap();
        let policy = sgplane::policy::Policy::from_toml(&text, "path.toml").unwrap();
        let names: Vec<String> = policy
            .interfaces()
            .iter()
            .map(|i| i.place.title.clone().unwrap_or_else(|| i.name.clone()))
            .collect();
        let mut queries = Vec::new();
        for a in &names {
            for b in &names {
                for (proto, dport) in [
                    (sgplane::policy::IpProto::TCP, Some(443)),
                    (sgplane::policy::IpProto::TCP, Some(5432)),
                    (sgplane::policy::IpProto::UDP, Some(53)),
                ] {
                    queries.push(sgplane::path::Query {
                        from: a.clone(),
                        to: b.clone(),
                        proto,
                        dport,
                        sport: None,
                        icmp: None,
                    });
                }
            }
        }
        check_path(&text, &queries);
    }
    for seed in 0u8..64 {
        let data: Vec<u8> = (0..600u32)
            .map(|i| (i as u8).wrapping_mul(seed | 1).wrapping_add(seed))
            .collect();
        aws_documents::check(&data);
        nacl_scenario::check(&data);
        nesting::check(&data);
        topology::check(&data);
        json_edits::check(&data);
    }
    // Every snapshot unedited (a first byte per snapshot, no edits), and
    // each with a few edits.
    for snapshot in 0u8..9 {
        json_edits::check(&[snapshot, 0]);
        json_edits::check(&[snapshot, 3, 0, 0, 2, 1, 7, 0, 1, 4, 9, 2, 5, 3, 3]);
    }
}

/// The Alibaba and Azure import targets' invariants on the twins and test
/// data in the tree.
#[test]
fn import_invariants_hold_on_the_alibaba_and_azure_data() {
    use sgplane::import::Provider;
    for (provider, dir) in [
        (Provider::Alibaba, "config/ack-cluster.alibaba"),
        (Provider::Alibaba, "config/mse-gateway.alibaba"),
        (Provider::Azure, "tests/data/azure/demo"),
    ] {
        let path = root().join(dir);
        let imported = sgplane::import::import(provider, std::slice::from_ref(&path), false)
            .unwrap_or_else(|e| panic!("{dir}: {e}"));
        sgplane::policy::Policy::compile(&imported.model).unwrap_or_else(|e| panic!("{dir}: {e}"));
        let mut data = Vec::new();
        for f in sgplane::import::input_files(&[path]).unwrap() {
            data.extend(std::fs::read(f).unwrap());
            data.push(0);
        }
        check_import(provider, &data);
    }
}

/// The import target's invariants on the AWS snapshots and twins in the
/// tree (each directory's files as one input): what is imported survives
/// being written and read back.
#[test]
fn import_invariants_hold_on_the_snapshots_in_the_tree() {
    for dir in [
        "examples/aws/batfish-hybrid-cloud",
        "examples/aws/batfish-load-balancer",
        "config/aws-default-sg.aws",
        "config/privatelink-nlb.aws",
        "tests/data/aws/cloudmapper",
        "tests/data/terraform",
    ] {
        let path = root().join(dir);
        let imported = sgplane::import::import(
            sgplane::import::Provider::Aws,
            std::slice::from_ref(&path),
            false,
        )
        .unwrap_or_else(|e| panic!("{dir}: {e}"));
        sgplane::policy::Policy::compile(&imported.model).unwrap_or_else(|e| panic!("{dir}: {e}"));
        let files = sgplane::import::input_files(&[path]).unwrap();
        assert!(!files.is_empty(), "{dir}");
        let mut data = Vec::new();
        for f in files {
            data.extend(std::fs::read(f).unwrap());
            data.push(0);
        }
        check_import_aws(&data);
    }
}

/// The `policy_structured` target's body (`fuzz_targets/policy_structured.rs`).
fn check_policy_structured(data: &[u8]) {
    let Ok(edit) = policy_mutation::Edit::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    if let Some(text) = edit.apply() {
        check_policy_text(&text);
    }
}

// ------------------------------------------------------------ the checks on good inputs

fn ethernet(frame: &[u8]) -> Vec<u8> {
    ParseInput::encode(
        LinkType::Ethernet,
        ParseOptions::default(),
        frame,
        frame.len(),
    )
}

#[test]
fn parse_checks_accept_built_frames() {
    let (a, b) = (ip("10.0.1.10"), ip("10.0.2.20"));
    let (a6, b6) = (ip("2001:db8:1::10"), ip("2001:db8:2::20"));
    let syn = build::tcp(a, b, 40000, 443, 0x02, 1, 0, b"hello");
    let frames = [
        syn.clone(),
        build::udp(a6, b6, 5353, 53, b"q"),
        build::echo(a, b, true, 7, 1),
        build::echo(a6, b6, false, 7, 1),
        build::icmp_error(b, a, 3, 3, &syn),
        build::ip_other(a, b, 47, &[0; 12]),
        build::geneve_wrap(
            ip("172.31.0.1"),
            ip("172.31.0.2"),
            999,
            &syn,
            &build::aws_options(1, 2, 3),
        ),
        build::geneve_wrap(ip("172.31.0.1"), ip("172.31.0.2"), 999, &syn, &[]),
    ];
    let fragments = build::fragment_v4(&build::udp(a, b, 1, 2, &[7; 40]), 16, 9);
    for f in frames.iter().chain(&fragments) {
        check_parse(&ethernet(f));
        // Cut by a snap length after 40 bytes, 1000 more on the wire.
        check_parse(&ParseInput::encode(
            LinkType::Ethernet,
            ParseOptions::default(),
            &f[..40.min(f.len())],
            f.len() + 1000,
        ));
        // Under every other link type too (mostly rejected, never a panic).
        for link in LINK_TYPES {
            check_parse(&ParseInput::encode(
                link,
                ParseOptions {
                    decap_geneve: true,
                    decap_vxlan: true,
                    gwlb_strict: true,
                },
                f,
                f.len(),
            ));
        }
    }
    // The raw IP packet of a frame parses the same under LINKTYPE_RAW.
    check_parse(&ParseInput::encode(
        LinkType::RawIp,
        ParseOptions::default(),
        &syn[14..],
        syn.len() - 14,
    ));
}

#[test]
fn geneve_checks_accept_gwlb_headers() {
    let options = build::aws_options(0x0123_4567_89ab_cdef, 7, 0xc00c1e);
    let mut buf = vec![0; geneve::HEADER_LEN + options.len() + 20];
    let n = geneve::emit(&mut buf, 0, ether_type::IPV4, &options).unwrap();
    buf[n] = 0x45;
    check_geneve(&buf);
    for cut in 0..buf.len() {
        check_geneve(&buf[..cut]);
    }
    let aws = |typ: u8, data: Vec<u8>| OptionSpec {
        class: geneve::AWS_OPTION_CLASS,
        typ,
        critical: false,
        data,
    };
    let gwlb = [aws(1, vec![1; 8]), aws(2, vec![2; 8]), aws(3, vec![3; 4])];
    check_geneve_roundtrip(5, ether_type::IPV6, &gwlb, b"payload");
    let odd = OptionSpec {
        class: 0xffff,
        typ: 0x7f,
        critical: true,
        data: vec![9; 124],
    };
    check_geneve_roundtrip(0xff_ffff, ether_type::IPV4, &[odd.clone(), odd], b"");
    check_geneve_roundtrip(0x100_0000, 0, &[], b"");
    // A datagram as GWLB sends it, whole and cut: as a payload it parses
    // as the packet that carried it.
    let inner = build::tcp(ip("10.0.0.1"), ip("10.0.0.2"), 1, 443, 0x02, 0, 0, b"x");
    let outer = build::geneve_wrap(ip("192.0.2.1"), ip("192.0.2.2"), 9, &inner, &options);
    let payload = &outer[14 + 20 + 8..];
    for cut in 0..=payload.len() {
        check_geneve(&payload[..cut]);
    }
}

fn pcap(records: &[&[u8]]) -> Vec<u8> {
    let mut f = vec![
        0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0,
    ];
    for (i, d) in records.iter().enumerate() {
        f.extend_from_slice(&(1_700_000_000 + i as u32).to_le_bytes());
        f.extend_from_slice(&0u32.to_le_bytes());
        f.extend_from_slice(&(d.len() as u32).to_le_bytes());
        f.extend_from_slice(&(d.len() as u32).to_le_bytes());
        f.extend_from_slice(d);
    }
    f
}

#[test]
fn capture_checks_accept_captures_and_their_truncations() {
    let syn = build::tcp(
        ip("10.0.1.10"),
        ip("10.0.2.20"),
        40000,
        443,
        0x02,
        1,
        0,
        b"",
    );
    let f = pcap(&[&syn, &syn[..20], b""]);
    for cut in 0..=f.len() {
        check_capture(&f[..cut]);
    }
    // The smallest files of the third-party corpus, when it is there.
    let dir = root().join("pcaps/tcpdump-tests");
    if let Ok(entries) = std::fs::read_dir(dir) {
        let mut files: Vec<(u64, PathBuf)> = entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
            .map(|p| (std::fs::metadata(&p).unwrap().len(), p))
            .collect();
        files.sort();
        for (_, p) in files.iter().take(40) {
            check_capture(&std::fs::read(p).unwrap());
        }
    }
}

#[test]
fn policy_checks_accept_every_config() {
    for e in std::fs::read_dir(root().join("config")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            check_policy_text(&std::fs::read_to_string(&p).unwrap());
        }
    }
    check_policy_text(ENGINE_POLICY);
    check_policy_text("[settings]\nunknown_address = \"maybe\"\n");
    check_policy_text(
        "[interfaces.x]\naddresses = [\"10.0.0.1\"]\nsecurity_groups = [\"sg-none\"]\n",
    );
    check_policy_text("");
}

fn fed(frame: Vec<u8>, ts: u64) -> Fed {
    Fed {
        link: LinkType::Ethernet,
        orig_len: frame.len(),
        frame,
        ts,
    }
}

#[test]
fn engine_harness_follows_flows_capacity_and_expiry() {
    const S: u64 = 1_000_000_000;
    let t0 = 1_700_000_000 * S;
    let (web, db) = (ip("10.0.1.10"), ip("10.0.2.20"));
    let ops = ip("192.0.2.5");
    let mut frames = vec![
        // web -> 10.0.2.20:5432 outside any zone: only zoned interfaces have
        // that address, so web's egress alone decides (SPEC §2.3).
        fed(build::tcp(web, db, 40000, 5432, 0x02, 1, 0, b""), t0),
        // SSH from ops to web: allowed, then the reply is established.
        fed(build::tcp(ops, web, 40001, 22, 0x02, 1, 0, b""), t0),
        fed(build::tcp(web, ops, 22, 40001, 0x12, 1, 2, b""), t0 + 1),
        fed(build::tcp(ops, web, 40001, 22, 0x10, 2, 2, b""), t0 + 2),
        // Denied by the priority-1 deny rule.
        fed(
            build::tcp(ip("192.0.2.66"), web, 40002, 22, 0x02, 1, 0, b""),
            t0 + 3,
        ),
        // Ping from ops, its reply, then an error quoting the SSH flow.
        fed(build::echo(ops, web, true, 3, 1), t0 + 4),
        fed(build::echo(web, ops, false, 3, 1), t0 + 5),
        fed(
            build::icmp_error(
                ops,
                web,
                3,
                3,
                &build::tcp(web, ops, 22, 40001, 0x10, 2, 2, b""),
            ),
            t0 + 6,
        ),
    ];
    // GENEVE from endpoint 1: web -> db:5432 is allowed in db-a's zone.
    let inner = build::tcp(web, db, 40003, 5432, 0x02, 1, 0, b"");
    frames.push(fed(
        build::geneve_wrap(
            ip("172.31.0.1"),
            ip("172.31.0.2"),
            1,
            &inner,
            &build::aws_options(1, 2, 3),
        ),
        t0 + 7,
    ));
    // Fill the table (8 entries) with intra-group UDP flows web-1 -> web-2.
    for p in 0..10 {
        frames.push(fed(
            build::udp(web, ip("10.0.1.11"), 50000 + p, 9, b"x"),
            t0 + 8,
        ));
    }
    // Much later, everything has expired: the SSH ACK is a new flow again.
    frames.push(fed(
        build::tcp(ops, web, 40001, 22, 0x10, 3, 3, b""),
        t0 + 3600 * S,
    ));
    let refuse =
        ENGINE_POLICY.replace("max_entries = 8", "max_entries = 8\nwhen_full = \"refuse\"");
    let refuse = sgplane::policy::Policy::from_toml(&refuse, "refuse.toml").unwrap();
    for (mut h, early_drop) in [
        (EngineHarness::standard(), true),
        (EngineHarness::new(refuse), false),
    ] {
        let js = h.run(&frames);
        let got: Vec<(Verdict, Reason)> = js.iter().map(|j| (j.verdict, j.reason)).collect();
        check_engine_story(&got);
        let udp = &got[9..19];
        if early_drop {
            // Four flows before the UDP ones, the table holds 8: six of the
            // ten evict the oldest unassured entry each; SSH and ping are
            // assured and stay (their packets above passed as established).
            assert!(
                udp.iter().all(|&g| g == (Verdict::Allow, Reason::Rule)),
                "{got:?}"
            );
            assert_eq!(h.engine.stats().early_drops, 6);
        } else {
            assert!(
                udp.contains(&(Verdict::Deny, Reason::ConntrackFull)),
                "{got:?}"
            );
            assert_eq!(h.engine.stats().early_drops, 0);
        }
    }
}

fn check_engine_story(got: &[(Verdict, Reason)]) {
    use Reason::*;
    use Verdict::*;
    assert_eq!(
        got[..9],
        [
            (Allow, Rule),
            (Allow, Rule),
            (Allow, Established),
            (Allow, Established),
            (Deny, Rule),
            (Allow, Rule),
            (Allow, Established),
            (Allow, Related),
            (Allow, Rule),
        ]
    );
    assert_eq!(got[19], (Allow, Rule));
}

// ------------------------------------------------------------ what the fuzzers found

/// engine target, before its harness wrote IPv6 headers itself:
/// `build::ip_other` panics for an IPv6 packet with next header 0
/// (hop-by-hop): etherparse 0.21's `PacketBuilder` unwraps a hop-by-hop
/// header it was never given (`ipv6_exts.rs:679`, "called `Option::unwrap()`
/// on a `None` value"). Its doc promises a panic only for mixed IP versions.
#[test]
fn build_ip_other_ipv6_hop_by_hop_does_not_panic() {
    let f = build::ip_other(ip("2001:db8::1"), ip("2001:db8::2"), 0, &[0x6f; 8]);
    check_parse(&ethernet(&f));
}

/// policy_structured target: the MSE gateway policy with `tcp_transitory =
/// 10349162` (about 120 days): the harness's half-open handshake was still
/// `established` centuries later (its `u64::MAX / 2` ns), because slot times
/// were rebased by saturating them, so no entry ever looked older than ~12.4
/// days. `replay_committed_reproducers` replays it; this checks it still
/// decodes to that policy.
#[test]
fn policy_structured_120_day_timeout_reproducer_decodes() {
    let path =
        root().join("fuzz/regressions/policy_structured/tcp-transitory-120-days-across-centuries");
    let bytes = std::fs::read(path).unwrap();
    let edit = policy_mutation::Edit::arbitrary_take_rest(Unstructured::new(&bytes)).unwrap();
    let text = edit.apply().unwrap();
    let p = sgplane::policy::Policy::from_toml(&text, "repro.toml").unwrap();
    assert_eq!(p.conntrack().tcp_transitory, 10_349_162);
    check_policy_text(&text);
}
