//! The `policy_structured` target's input: a valid policy and a list of edits
//! to its TOML tree, with values drawn mostly from what the format allows and
//! the edges just past it (SPEC §1), so most inputs get past the TOML parser
//! and reach the compiler, `check` and `explain`.

use arbitrary::Arbitrary;
use toml::{Table, Value};

/// The policies edits start from.
pub const SEEDS: [&str; 7] = [
    include_str!("../../config/default.toml"),
    include_str!("../../config/ack-cluster.toml"),
    include_str!("../../config/aws-default-sg.toml"),
    include_str!("../../config/aws-default-sg-fixed.toml"),
    include_str!("../../config/mse-gateway.toml"),
    include_str!("../../config/privatelink-nlb.toml"),
    crate::invariants::ENGINE_POLICY,
];

const PROTOS: [&str; 14] =
    ["tcp", "udp", "icmp", "icmpv6", "all", "-1", "6", "17", "47", "255", "256", "TCP", "", "ICMP"];
const PORTS: [&str; 18] = [
    "80",
    "80-90",
    "80/90",
    "1/65535",
    "-1/-1",
    "0",
    "65535",
    "65536",
    "90-80",
    "-1",
    "1-",
    "a",
    "22/22",
    "0-65535",
    " 80",
    "443,80",
    "-1/80",
    "8080-8080",
];
const ADDRS: [&str; 18] = [
    "0.0.0.0/0",
    "::/0",
    "10.0.0.0/8",
    "10.0.1.10",
    "10.0.1.10/33",
    "2001:db8::/32",
    "2001:db8::1/129",
    "192.168.0.0/16",
    "300.1.1.1",
    "::ffff:10.0.0.1",
    "fe80::1%eth0",
    "10.0.0.1/24",
    "10.0.1.10/32",
    "2001:db8:1::10",
    "0.0.0.0",
    "::",
    "255.255.255.255/32",
    "10.0.0.0/-1",
];
const ZONES: [&str; 8] = [
    "vpce-0123456789abcdef0",
    "vpce-00000000000000001",
    "vpce-00000000000000002",
    "vpce-",
    "vpce-fffffffffffffffff",
    "vpce-1",
    "vpce-1ffffffffffffffff",
    "VPCE-00000000000000001",
];
const ACTIONS: [&str; 7] = ["allow", "deny", "accept", "drop", "reject", "", "Allow"];
const INTS: [i64; 16] =
    [0, 1, -1, 2, 8, 100, 255, 256, 65535, 65536, 4_294_967_295, 4_294_967_296, i64::MAX, i64::MIN, -2, 1_000_000];

#[derive(Arbitrary, Debug, Clone)]
pub enum Str {
    Proto(u8),
    Ports(u8),
    Addr(u8),
    /// An existing SG's name, or one that does not exist.
    SgRef(u8),
    PlRef(u8),
    Zone(u8),
    Action(u8),
    Text(String),
}

#[derive(Arbitrary, Debug, Clone)]
pub enum Val {
    Str(Str),
    Int(u8),
    AnyInt(i64),
    Bool(bool),
    List(Vec<Str>),
    Float(f64),
    EmptyTable,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum RuleField {
    Proto,
    Ports,
    IcmpType,
    IcmpCode,
    From,
    To,
    SourcePorts,
    Local,
    Action,
    Priority,
    Description,
    Unknown,
}

impl RuleField {
    fn key(self) -> &'static str {
        match self {
            RuleField::Proto => "proto",
            RuleField::Ports => "ports",
            RuleField::IcmpType => "icmp_type",
            RuleField::IcmpCode => "icmp_code",
            RuleField::From => "from",
            RuleField::To => "to",
            RuleField::SourcePorts => "source_ports",
            RuleField::Local => "local",
            RuleField::Action => "action",
            RuleField::Priority => "priority",
            RuleField::Description => "description",
            RuleField::Unknown => "port",
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum SgKey {
    Description,
    IntraGroup,
    Ingress,
    Egress,
    Unknown,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum IfaceKey {
    Addresses,
    SecurityGroups,
    Zone,
    Description,
    Unknown,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Section {
    Settings(u8),
    Conntrack(u8),
    Top(u8),
}

const SETTINGS: [&str; 4] = ["unknown_address", "allow_arp", "allow_neighbor_discovery", "allow_ndp"];
const CONNTRACK: [&str; 8] =
    ["max_entries", "tcp_established", "tcp_transitory", "udp", "udp_stream", "icmp", "other", "tcp"];
const TOP: [&str; 6] = ["settings", "conntrack", "prefix_lists", "security_groups", "interfaces", "rules"];

#[derive(Arbitrary, Debug, Clone)]
pub enum Mutation {
    SetRuleField { sg: u8, egress: bool, rule: u8, field: RuleField, value: Val },
    RemoveRuleField { sg: u8, egress: bool, rule: u8, field: RuleField },
    AddRule { sg: u8, egress: bool, proto: Str, remote: Val, extra: Option<(RuleField, Val)> },
    RemoveRule { sg: u8, egress: bool, rule: u8 },
    SetSg { sg: u8, key: SgKey, value: Val },
    AddSg { name: Str },
    RemoveSg { sg: u8 },
    SetInterface { iface: u8, key: IfaceKey, value: Val },
    AddInterface { name: Str, addresses: Vec<Str>, sgs: Vec<u8>, zone: Option<Str> },
    RemoveInterface { iface: u8 },
    SetPrefixList { name: Str, entries: Val },
    Set { section: Section, value: Val },
}

#[derive(Arbitrary, Debug, Clone)]
pub struct Edit {
    pub seed: u8,
    pub mutations: Vec<Mutation>,
}

fn pick<'a>(list: &[&'a str], i: u8) -> &'a str {
    list[usize::from(i) % list.len()]
}

fn names(t: &Table, section: &str) -> Vec<String> {
    t.get(section).and_then(Value::as_table).map(|s| s.keys().cloned().collect()).unwrap_or_default()
}

struct Ctx {
    sgs: Vec<String>,
    pls: Vec<String>,
}

impl Str {
    fn get(&self, cx: &Ctx) -> String {
        match self {
            Str::Proto(i) => pick(&PROTOS, *i).into(),
            Str::Ports(i) => pick(&PORTS, *i).into(),
            Str::Addr(i) => pick(&ADDRS, *i).into(),
            Str::SgRef(i) => cx.sgs.get(usize::from(*i)).cloned().unwrap_or_else(|| format!("sg-missing-{i}")),
            Str::PlRef(i) => cx.pls.get(usize::from(*i)).cloned().unwrap_or_else(|| format!("pl-missing-{i}")),
            Str::Zone(i) => pick(&ZONES, *i).into(),
            Str::Action(i) => pick(&ACTIONS, *i).into(),
            Str::Text(s) => s.clone(),
        }
    }
}

impl Val {
    fn get(&self, cx: &Ctx) -> Value {
        match self {
            Val::Str(s) => Value::String(s.get(cx)),
            Val::Int(i) => Value::Integer(INTS[usize::from(*i) % INTS.len()]),
            Val::AnyInt(i) => Value::Integer(*i),
            Val::Bool(b) => Value::Boolean(*b),
            Val::List(l) => Value::Array(l.iter().take(16).map(|s| Value::String(s.get(cx))).collect()),
            Val::Float(f) => Value::Float(*f),
            Val::EmptyTable => Value::Table(Table::new()),
        }
    }
}

/// The `i`th entry (mod the count) of a table section.
fn nth_mut<'a>(t: &'a mut Table, section: &str, i: u8) -> Option<&'a mut Table> {
    let s = t.get_mut(section)?.as_table_mut()?;
    let n = s.len();
    if n == 0 {
        return None;
    }
    s.iter_mut().nth(usize::from(i) % n)?.1.as_table_mut()
}

fn rules_mut(t: &mut Table, sg: u8, egress: bool) -> Option<&mut Vec<Value>> {
    let g = nth_mut(t, "security_groups", sg)?;
    let key = if egress { "egress" } else { "ingress" };
    if !g.contains_key(key) {
        g.insert(key.into(), Value::Array(Vec::new()));
    }
    g.get_mut(key)?.as_array_mut()
}

fn section_mut<'a>(t: &'a mut Table, name: &str) -> Option<&'a mut Table> {
    if !t.contains_key(name) {
        t.insert(name.into(), Value::Table(Table::new()));
    }
    t.get_mut(name)?.as_table_mut()
}

fn remove_nth(t: &mut Table, section: &str, i: u8) {
    let Some(s) = t.get_mut(section).and_then(Value::as_table_mut) else { return };
    let n = s.len();
    if n > 0 {
        let key = s.keys().nth(usize::from(i) % n).cloned();
        if let Some(k) = key {
            s.remove(&k);
        }
    }
}

impl Edit {
    /// The edited policy as TOML text, or `None` if the edits made nothing
    /// that serializes (e.g. a non-finite float is fine TOML, but a value the
    /// serializer refuses is skipped).
    pub fn apply(&self) -> Option<String> {
        let seed = SEEDS[usize::from(self.seed) % SEEDS.len()];
        let mut t: Table = seed.parse().expect("seed policies are valid TOML");
        for m in self.mutations.iter().take(32) {
            let cx = Ctx { sgs: names(&t, "security_groups"), pls: names(&t, "prefix_lists") };
            self.mutate(&mut t, m, &cx);
        }
        toml::to_string(&t).ok()
    }

    fn mutate(&self, t: &mut Table, m: &Mutation, cx: &Ctx) -> Option<()> {
        match m {
            Mutation::SetRuleField { sg, egress, rule, field, value } => {
                let rules = rules_mut(t, *sg, *egress)?;
                let n = rules.len();
                let r = rules.get_mut(usize::from(*rule) % n.max(1))?.as_table_mut()?;
                r.insert(field.key().into(), value.get(cx));
            }
            Mutation::RemoveRuleField { sg, egress, rule, field } => {
                let rules = rules_mut(t, *sg, *egress)?;
                let n = rules.len();
                rules.get_mut(usize::from(*rule) % n.max(1))?.as_table_mut()?.remove(field.key());
            }
            Mutation::AddRule { sg, egress, proto, remote, extra } => {
                let mut r = Table::new();
                r.insert("proto".into(), Value::String(proto.get(cx)));
                r.insert(if *egress { "to" } else { "from" }.into(), remote.get(cx));
                if let Some((f, v)) = extra {
                    r.insert(f.key().into(), v.get(cx));
                }
                rules_mut(t, *sg, *egress)?.push(Value::Table(r));
            }
            Mutation::RemoveRule { sg, egress, rule } => {
                let rules = rules_mut(t, *sg, *egress)?;
                if !rules.is_empty() {
                    let n = rules.len();
                    rules.remove(usize::from(*rule) % n);
                }
            }
            Mutation::SetSg { sg, key, value } => {
                let g = nth_mut(t, "security_groups", *sg)?;
                let k = match key {
                    SgKey::Description => "description",
                    SgKey::IntraGroup => "intra_group",
                    SgKey::Ingress => "ingress",
                    SgKey::Egress => "egress",
                    SgKey::Unknown => "inner_access_policy",
                };
                g.insert(k.into(), value.get(cx));
            }
            Mutation::AddSg { name } => {
                let mut g = Table::new();
                g.insert("ingress".into(), Value::Array(Vec::new()));
                section_mut(t, "security_groups")?.insert(name.get(cx), Value::Table(g));
            }
            Mutation::RemoveSg { sg } => remove_nth(t, "security_groups", *sg),
            Mutation::SetInterface { iface, key, value } => {
                let i = nth_mut(t, "interfaces", *iface)?;
                let k = match key {
                    IfaceKey::Addresses => "addresses",
                    IfaceKey::SecurityGroups => "security_groups",
                    IfaceKey::Zone => "zone",
                    IfaceKey::Description => "description",
                    IfaceKey::Unknown => "subnet",
                };
                i.insert(k.into(), value.get(cx));
            }
            Mutation::AddInterface { name, addresses, sgs, zone } => {
                let mut i = Table::new();
                let addrs = addresses.iter().take(8).map(|a| Value::String(a.get(cx))).collect();
                i.insert("addresses".into(), Value::Array(addrs));
                let groups = sgs
                    .iter()
                    .take(4)
                    .filter_map(|&g| cx.sgs.get(usize::from(g) % cx.sgs.len().max(1)).cloned())
                    .map(Value::String)
                    .collect();
                i.insert("security_groups".into(), Value::Array(groups));
                if let Some(z) = zone {
                    i.insert("zone".into(), Value::String(z.get(cx)));
                }
                section_mut(t, "interfaces")?.insert(name.get(cx), Value::Table(i));
            }
            Mutation::RemoveInterface { iface } => remove_nth(t, "interfaces", *iface),
            Mutation::SetPrefixList { name, entries } => {
                section_mut(t, "prefix_lists")?.insert(name.get(cx), entries.get(cx));
            }
            Mutation::Set { section, value } => {
                let (table, key) = match section {
                    Section::Settings(i) => (section_mut(t, "settings")?, pick(&SETTINGS, *i)),
                    Section::Conntrack(i) => (section_mut(t, "conntrack")?, pick(&CONNTRACK, *i)),
                    Section::Top(i) => (t, pick(&TOP, *i)),
                };
                table.insert(key.into(), value.get(cx));
            }
        }
        Some(())
    }
}
