//! The compiled classifier against the linear first-match scan.

use super::*;
use proptest::prelude::*;

/// Knob settings that stress different tree shapes.
fn option_sets() -> Vec<BuildOptions> {
    vec![
        BuildOptions::default(),
        BuildOptions {
            leaf_size: 1,
            redundancy_limit: 0,
            ..BuildOptions::default()
        },
        BuildOptions {
            small_prefix: 0,
            leaf_size: 2,
            ..BuildOptions::default()
        },
        BuildOptions {
            small_prefix: 32,
            max_depth: 3,
            ..BuildOptions::default()
        },
        BuildOptions {
            entries_per_rule: 0,
            leaf_size: 2,
            ..BuildOptions::default()
        },
        // Leaves of several blocks (depth capped), with and without a split.
        BuildOptions {
            max_depth: 2,
            ..BuildOptions::default()
        },
        BuildOptions {
            small_prefix: 0,
            max_depth: 4,
            leaf_size: 12,
            ..BuildOptions::default()
        },
    ]
}

/// Every lookup code this CPU runs: the portable one, and AVX2 if present.
fn paths() -> Vec<Path> {
    std::iter::once(Path::Portable)
        .chain(Path::avx2())
        .collect()
}

fn check_all(rules: &[ClassRule], keys: &[Key]) -> Result<(), TestCaseError> {
    for options in option_sets() {
        for path in paths() {
            let c = Classifier::build_for(rules, &options, path);
            prop_assert_eq!(c.len(), rules.len());
            let mut batch = vec![None; keys.len()];
            c.lookup_batch(keys, &mut batch);
            for (key, got_batch) in keys.iter().zip(&batch) {
                let want = linear_lookup(rules, key);
                prop_assert_eq!(
                    c.lookup(key),
                    want,
                    "key {:?} options {:?} path {:?}",
                    key,
                    options,
                    path
                );
                prop_assert_eq!(*got_batch, want, "batch, key {:?} path {:?}", key, path);
            }
        }
    }
    Ok(())
}

/// Addresses clustered around a few bases so prefixes and ranges overlap.
fn address() -> impl Strategy<Value = u32> {
    prop_oneof![
        4 => (prop::sample::select(vec![0u32, 0x0a00_0000, 0x0a00_0100, 0xc0a8_0000, 0xffff_ff00]), 0u32..600)
            .prop_map(|(base, off)| base.wrapping_add(off)),
        1 => any::<u32>(),
        1 => Just(u32::MAX),
    ]
}

fn address_set() -> impl Strategy<Value = RangeSet> {
    let prefix =
        || (address(), prop_oneof![0u8..=32, 22u8..=32]).prop_map(|(a, l)| RangeSet::prefix(a, l));
    prop_oneof![
        2 => Just(RangeSet::any()),
        6 => prefix(),
        2 => (address(), address()).prop_map(|(a, b)| RangeSet::single(a.min(b), a.max(b))),
        2 => prop::collection::vec(prefix(), 1..6).prop_map(|sets| {
            RangeSet::from_ranges(sets.iter().flat_map(|s| s.ranges().to_vec()).collect())
        }),
    ]
}

fn port() -> impl Strategy<Value = u32> {
    prop_oneof![
        0u32..40,
        prop::sample::select(vec![0u32, 22, 53, 80, 443, 1023, 1024, 65535])
    ]
}

fn port_set() -> impl Strategy<Value = RangeSet> {
    prop_oneof![
        3 => Just(RangeSet::single(0, 65535)),
        4 => port().prop_map(|p| RangeSet::single(p, p)),
        3 => (port(), port()).prop_map(|(a, b)| RangeSet::single(a.min(b), a.max(b))),
        1 => prop::collection::vec((port(), 0u32..4), 1..4)
            .prop_map(|v| RangeSet::from_ranges(v.into_iter().map(|(p, w)| (p, p.saturating_add(w))).collect())),
        1 => Just(RangeSet::any()),
    ]
}

fn proto_set() -> impl Strategy<Value = RangeSet> {
    prop_oneof![
        2 => Just(RangeSet::single(0, 255)),
        4 => prop::sample::select(vec![1u32, 6, 17, 47, 255]).prop_map(|p| RangeSet::single(p, p)),
        1 => Just(RangeSet::from_ranges(vec![(6, 6), (17, 17)])),
        1 => Just(RangeSet::empty()),
    ]
}

fn rule() -> impl Strategy<Value = ClassRule> {
    (
        address_set(),
        address_set(),
        port_set(),
        port_set(),
        proto_set(),
    )
        .prop_map(|(a, b, c, d, e)| ClassRule {
            fields: [a, b, c, d, e],
        })
}

fn rules() -> impl Strategy<Value = Vec<ClassRule>> {
    prop::collection::vec(rule(), 0..300).prop_flat_map(|rules| {
        // Duplicates: repeat a few rules at other positions.
        let n = rules.len();
        (
            Just(rules),
            prop::collection::vec((0..n.max(1), 0..n.max(1)), 0..10),
        )
            .prop_map(|(mut rules, dups)| {
                for (from, to) in dups {
                    if from < rules.len() && to <= rules.len() {
                        let r = rules[from].clone();
                        rules.insert(to, r);
                    }
                }
                rules
            })
    })
}

/// A value near a boundary of `set`, or anywhere.
fn near(set: &RangeSet, pick: usize, delta: i8) -> u32 {
    let ranges = set.ranges();
    if ranges.is_empty() {
        return pick as u32;
    }
    let (lo, hi) = ranges[pick % ranges.len()];
    let edge = if pick & 1 == 0 { lo } else { hi };
    edge.wrapping_add_signed(i32::from(delta))
}

fn keys(rules: &[ClassRule]) -> impl Strategy<Value = Vec<Key>> {
    let rules = rules.to_vec();
    let from_rule = (
        any::<usize>(),
        prop::array::uniform5((any::<usize>(), -1i8..=1)),
    )
        .prop_map(move |(r, picks)| {
            if rules.is_empty() {
                return [0; DIMS];
            }
            let rule = &rules[r % rules.len()];
            std::array::from_fn(|d| near(&rule.fields[d], picks[d].0, picks[d].1))
        });
    let random = (
        address(),
        address(),
        port(),
        port(),
        prop::sample::select(vec![0u32, 1, 6, 17, 47, 255]),
    )
        .prop_map(|(a, b, c, d, e)| [a, b, c, d, e]);
    prop::collection::vec(prop_oneof![3 => from_rule, 1 => random], 1..200)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn classifier_equals_linear_scan((rules, keys) in rules().prop_flat_map(|r| { let k = keys(&r); (Just(r), k) })) {
        check_all(&rules, &keys)?;
    }
}

/// Larger sets than `rules()`: enough rules for several trees, merges and
/// depth-capped unions.
fn many_rules() -> impl Strategy<Value = Vec<ClassRule>> {
    prop::collection::vec(rule(), 200..900)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// The AVX2 lookup and the portable one give the same answers, batch and
    /// single, on every batch length (whole batches and remainders).
    #[test]
    fn simd_and_portable_paths_agree((rules, keys) in many_rules().prop_flat_map(|r| { let k = keys(&r); (Just(r), k) })) {
        let Some(simd) = Path::avx2() else {
            return Ok(());
        };
        for options in [BuildOptions::default(), BuildOptions { max_depth: 5, ..BuildOptions::default() }] {
            let portable = Classifier::build_for(&rules, &options, Path::Portable);
            let avx2 = Classifier::build_for(&rules, &options, simd);
            let mut want = vec![None; keys.len()];
            let mut got = vec![None; keys.len()];
            portable.lookup_batch(&keys, &mut want);
            avx2.lookup_batch(&keys, &mut got);
            prop_assert_eq!(&want, &got);
            for (key, want) in keys.iter().zip(&want) {
                prop_assert_eq!(avx2.lookup(key), *want, "key {:?}", key);
                prop_assert_eq!(portable.lookup(key), *want, "key {:?}", key);
            }
            prop_assert_eq!(want[0], linear_lookup(&rules, &keys[0]));
        }
    }
}

/// On an x86-64 CPU with AVX2 the SIMD path is the one `build` picks.
#[test]
fn avx2_is_used_where_available() {
    let c = Classifier::build(&[ClassRule::any()]);
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") {
        assert!(matches!(c.forest, Forest::Avx2(_)));
        return;
    }
    assert!(matches!(c.forest, Forest::Portable(_)));
}

/// A small deterministic generator for the exhaustive tests.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: u32) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % u64::from(bound)) as u32
    }
}

/// Every key of a 4-value domain per dimension (1024 keys), mapped onto values at
/// both ends of `u32` so wrap-around bugs show, against many random rule sets.
#[test]
fn exhaustive_small_domain() {
    let value = [0u32, 1, u32::MAX - 1, u32::MAX];
    let mut rng = Lcg(7);
    let all_keys: Vec<Key> = (0..1024u32)
        .map(|i| std::array::from_fn(|d| value[(i >> (2 * d) & 3) as usize]))
        .collect();
    for round in 0..300 {
        let n = 1 + rng.next(if round < 100 { 8 } else { 60 });
        let rules: Vec<ClassRule> = (0..n)
            .map(|_| ClassRule {
                fields: std::array::from_fn(|_| {
                    let picked: Vec<(u32, u32)> = (0..4)
                        .filter(|_| rng.next(3) != 0)
                        .map(|i| (value[i], value[i]))
                        .collect();
                    match rng.next(4) {
                        0 => RangeSet::any(),
                        _ => RangeSet::from_ranges(picked),
                    }
                }),
            })
            .collect();
        check_all(&rules, &all_keys).unwrap();
    }
}

#[test]
fn empty_and_wildcard_sets() {
    let c = Classifier::build(&[]);
    assert_eq!(c.lookup(&[1, 2, 3, 4, 5]), None);
    assert!(c.is_empty());
    let rules = vec![ClassRule::any(), ClassRule::any()];
    let c = Classifier::build(&rules);
    assert_eq!(c.lookup(&[u32::MAX; DIMS]), Some(0));
}

/// An SG reference with many member addresses stays one rule, not one per member.
#[test]
fn multi_range_source_is_not_multiplied() {
    let members: Vec<(u32, u32)> = (0..2000u32)
        .map(|i| (0x0a00_0000 + 7 * i, 0x0a00_0000 + 7 * i))
        .collect();
    let mut rules = vec![ClassRule {
        fields: [
            RangeSet::from_ranges(members),
            RangeSet::prefix(0x0a01_0000, 16),
            RangeSet::any(),
            RangeSet::single(443, 443),
            RangeSet::single(6, 6),
        ],
    }];
    rules.push(ClassRule {
        fields: [
            RangeSet::any(),
            RangeSet::any(),
            RangeSet::any(),
            RangeSet::any(),
            RangeSet::single(6, 6),
        ],
    });
    let c = Classifier::build(&rules);
    for i in 0..20_000u32 {
        let key = [0x0a00_0000 + i, 0x0a01_0203, 1234, 443, 6];
        assert_eq!(c.lookup(&key), linear_lookup(&rules, &key), "{key:?}");
    }
    assert!(c.memory_bytes() < 64 * 1024, "{} bytes", c.memory_bytes());
}

/// Azure's two layers (SPEC §9.2): the classifier consults the subnet's
/// groups too, one flow at a time and in a batch, as the reference does.
#[test]
fn subnet_layers_decide_as_the_reference() {
    use crate::policy::{Flow, IpProto, Layer, Policy};
    let text = r#"
[vpcs.vnet-1]
cidrs = ["10.0.0.0/16"]
[subnets.web]
vpc = "vnet-1"
cidr = "10.0.1.0/24"
security_groups = ["sg-subnet"]
[security_groups.sg-subnet]
ingress = [ { priority = 100, proto = "tcp", ports = "443", from = "0.0.0.0/0" },
            { priority = 200, proto = "tcp", ports = "22", from = "0.0.0.0/0", action = "deny" } ]
egress = [ { priority = 100, proto = "tcp", ports = "443", to = "0.0.0.0/0" } ]
[security_groups.sg-nic]
ingress = [ { priority = 100, proto = "tcp", ports = "80-443", from = "0.0.0.0/0" } ]
egress = [ { priority = 100, proto = "all", to = "0.0.0.0/0" } ]
[interfaces.web-nic]
subnet = "web"
addresses = ["10.0.1.4"]
security_groups = ["sg-nic"]
[interfaces.web-nic-2]
subnet = "web"
addresses = ["10.0.1.5"]
security_groups = ["sg-nic"]
[interfaces.out]
addresses = ["10.0.9.9"]
security_groups = ["sg-nic"]
"#;
    let policy = Policy::from_toml(text, "t.toml").unwrap();
    let fast = sg::SgClassifier::build(&policy);
    let addrs = ["10.0.1.4", "10.0.1.5", "10.0.9.9", "203.0.113.1"];
    let mut flows = Vec::new();
    for s in addrs {
        for d in addrs {
            for port in [22, 80, 443, 8080] {
                let (s, d) = (s.parse().unwrap(), d.parse().unwrap());
                flows.push(Flow::ports(s, d, IpProto::TCP, 40000, port));
            }
        }
    }
    let mut layers_decided = 0;
    for f in &flows {
        let want = policy.evaluate(f);
        assert_eq!(fast.decide(&policy, f), want, "{f}");
        layers_decided += usize::from(want.deciding().is_some_and(|d| d.layer == Layer::Subnet));
    }
    assert!(layers_decided > 0);
    let mut got = Decisions::default();
    fast.decide_batch(&policy, &flows, &mut got);
    assert_eq!(got.len(), flows.len());
    for (f, g) in flows.iter().zip(got.iter()) {
        assert_eq!(*g, policy.evaluate(f), "batch {f}");
    }
}
