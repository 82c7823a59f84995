//! Validates a [`RawPolicy`] and compiles it into a [`Policy`]. Every problem is
//! collected with its position; a policy with any problem is rejected whole.

use std::collections::HashMap;
use std::net::IpAddr;
use std::ops::Range;

use ipnet::IpNet;
use toml::Spanned;

use super::diag::{Diagnostic, PolicyError};
use super::raw::{AddrList, RawPolicy, RawPorts, RawRule};
use super::*;

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
    errors: Vec<Diagnostic>,
    /// Byte offsets where lines start, for finding a rule's line quickly.
    line_starts: Vec<usize>,
}

impl Ctx<'_> {
    fn err(&mut self, span: Option<Range<usize>>, msg: impl Into<String>) {
        self.errors
            .push(Diagnostic::at(self.file, self.text, span, msg.into()));
    }

    fn line_of(&self, span: &Range<usize>) -> u32 {
        self.line_starts.partition_point(|&s| s <= span.start) as u32
    }
}

pub(super) fn compile(text: &str, file: &str) -> Result<Policy, PolicyError> {
    let raw: RawPolicy = toml::from_str(text).map_err(|e| {
        let msg = e.message().trim_end().to_string();
        PolicyError::Invalid(vec![Diagnostic::at(file, text, e.span(), msg)])
    })?;
    let line_starts = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let mut cx = Ctx {
        file,
        text,
        errors: Vec::new(),
        line_starts,
    };
    let policy = build(&mut cx, raw, file);
    if cx.errors.is_empty() {
        Ok(policy)
    } else {
        cx.errors.sort_by_key(|d| (d.line, d.column));
        Err(PolicyError::Invalid(cx.errors))
    }
}

fn build(cx: &mut Ctx, raw: RawPolicy, file: &str) -> Policy {
    let settings = settings(&raw);
    let conntrack = conntrack(cx, &raw);

    // Names first, so rules can refer to anything defined anywhere in the file.
    let mut pl_by_name = HashMap::new();
    let mut prefix_lists = Vec::new();
    for (name, entries) in &raw.prefix_lists.0 {
        if !name.get_ref().starts_with("pl-") {
            cx.err(
                Some(name.span()),
                format!(
                    "prefix list name `{}` must start with `pl-`",
                    name.get_ref()
                ),
            );
        }
        let mut nets = Vec::new();
        for e in entries.get_ref() {
            match parse_net(e.get_ref()) {
                Ok(n) => nets.push(n),
                Err(m) => cx.err(Some(e.span()), m),
            }
        }
        pl_by_name.insert(name.get_ref().clone(), prefix_lists.len() as PrefixListId);
        prefix_lists.push(PrefixList {
            name: name.get_ref().clone(),
            entries: nets,
        });
    }

    let mut sg_by_name = HashMap::new();
    let mut security_groups = Vec::new();
    for (name, sg) in &raw.security_groups.0 {
        if !name.get_ref().starts_with("sg-") {
            cx.err(
                Some(name.span()),
                format!(
                    "security group name `{}` must start with `sg-`",
                    name.get_ref()
                ),
            );
        }
        sg_by_name.insert(name.get_ref().clone(), security_groups.len() as SgId);
        security_groups.push(SecurityGroup {
            name: name.get_ref().clone(),
            description: sg.description.clone(),
            intra_group: sg
                .intra_group
                .as_ref()
                .is_some_and(|a| a.get_ref().0 == Action::Allow),
            ingress: Vec::new(),
            egress: Vec::new(),
            intra_rules: None,
            interfaces: Vec::new(),
            members: Vec::new(),
        });
    }
    let names = Names {
        sg: &sg_by_name,
        pl: &pl_by_name,
    };

    let mut rules = Vec::new();
    for (sg_id, (_, raw_sg)) in raw.security_groups.0.iter().enumerate() {
        let sg_id = sg_id as SgId;
        for (direction, list) in [
            (Direction::Ingress, &raw_sg.ingress),
            (Direction::Egress, &raw_sg.egress),
        ] {
            for (index, r) in list.iter().enumerate() {
                if let Some(rule) = compile_rule(cx, &names, sg_id, direction, index as u32, r) {
                    let id = rules.len() as RuleId;
                    rules.push(rule);
                    let sg = &mut security_groups[sg_id as usize];
                    match direction {
                        Direction::Ingress => sg.ingress.push(id),
                        Direction::Egress => sg.egress.push(id),
                    }
                }
            }
        }
        if security_groups[sg_id as usize].intra_group {
            let ingress = rules.len() as RuleId;
            rules.push(intra_rule(sg_id, Direction::Ingress));
            rules.push(intra_rule(sg_id, Direction::Egress));
            security_groups[sg_id as usize].intra_rules = Some((ingress, ingress + 1));
        }
    }

    let mut interfaces = Vec::new();
    let mut iface_by_name = HashMap::new();
    let mut spans = Vec::new();
    for (name, ri) in &raw.interfaces.0 {
        let id = interfaces.len() as IfaceId;
        let zone = ri
            .zone
            .as_ref()
            .and_then(|z| match parse_zone(z.get_ref()) {
                Ok(z) => Some(z),
                Err(m) => {
                    cx.err(Some(z.span()), m.to_string());
                    None
                }
            });
        if ri.addresses.get_ref().is_empty() {
            cx.err(
                Some(ri.addresses.span()),
                format!("interface `{}` has no addresses", name.get_ref()),
            );
        }
        let mut addresses = Vec::new();
        for a in ri.addresses.get_ref() {
            match parse_net(a.get_ref()) {
                Ok(n) => {
                    addresses.push(n);
                    spans.push((id, n, a.span()));
                }
                Err(m) => cx.err(Some(a.span()), m),
            }
        }
        let mut sgs: Vec<SgId> = Vec::new();
        for s in &ri.security_groups {
            match sg_by_name.get(s.get_ref()) {
                Some(&sg) if sgs.contains(&sg) => cx.err(
                    Some(s.span()),
                    format!("security group `{}` is listed twice", s.get_ref()),
                ),
                Some(&sg) => sgs.push(sg),
                None => cx.err(
                    Some(s.span()),
                    unknown("security group", s.get_ref(), sg_by_name.keys()),
                ),
            }
        }
        for &sg in &sgs {
            let g = &mut security_groups[sg as usize];
            g.interfaces.push(id);
            g.members.extend(addresses.iter().map(|&net| Member {
                net,
                interface: id,
                zone,
            }));
        }
        iface_by_name.insert(name.get_ref().clone(), id);
        interfaces.push(Interface {
            name: name.get_ref().clone(),
            description: ri.description.clone(),
            addresses,
            security_groups: sgs,
            zone,
            policy_set: 0,
        });
    }

    let index = address_index(cx, &interfaces, &spans);
    let policy_sets = policy_sets(&mut interfaces, &security_groups, &rules);

    Policy {
        source: file.to_string(),
        settings,
        conntrack,
        prefix_lists,
        security_groups,
        rules,
        interfaces,
        policy_sets,
        index,
        sg_by_name,
        iface_by_name,
    }
}

fn settings(raw: &RawPolicy) -> Settings {
    let d = Settings::default();
    let s = &raw.settings;
    Settings {
        unknown_address: match s.unknown_address.as_ref().map(|a| a.get_ref().0) {
            Some(Action::Allow) => Verdict::Allow,
            Some(Action::Deny) => Verdict::Deny,
            None => d.unknown_address,
        },
        allow_arp: s.allow_arp.unwrap_or(d.allow_arp),
        allow_neighbor_discovery: s
            .allow_neighbor_discovery
            .unwrap_or(d.allow_neighbor_discovery),
    }
}

fn conntrack(cx: &mut Ctx, raw: &RawPolicy) -> ConntrackSettings {
    let d = ConntrackSettings::default();
    let c = &raw.conntrack;
    let when_full = when_full(cx, &c.when_full);
    let mut get = |v: &Option<Spanned<i64>>, key: &str, default: u32, max: i64| -> u32 {
        match v {
            None => default,
            Some(s) if (1..=max).contains(s.get_ref()) => *s.get_ref() as u32,
            Some(s) => {
                cx.err(
                    Some(s.span()),
                    format!(
                        "`{key} = {}` is out of range: expected 1-{max}",
                        s.get_ref()
                    ),
                );
                default
            }
        }
    };
    // Timeouts up to ten years (kept exactly, see `conntrack::table::Stamp`);
    // the table size up to what fits in memory.
    let t = i64::from(ConntrackSettings::MAX_TIMEOUT);
    ConntrackSettings {
        max_entries: get(&c.max_entries, "max_entries", d.max_entries, 1 << 30),
        when_full,
        tcp_established: get(&c.tcp_established, "tcp_established", d.tcp_established, t),
        tcp_transitory: get(&c.tcp_transitory, "tcp_transitory", d.tcp_transitory, t),
        udp: get(&c.udp, "udp", d.udp, t),
        udp_stream: get(&c.udp_stream, "udp_stream", d.udp_stream, t),
        icmp: get(&c.icmp, "icmp", d.icmp, t),
        other: get(&c.other, "other", d.other, t),
    }
}

fn when_full(cx: &mut Ctx, v: &Option<Spanned<String>>) -> WhenFull {
    let Some(v) = v else {
        return WhenFull::default();
    };
    match v.get_ref().as_str() {
        "early_drop" => WhenFull::EarlyDrop,
        "refuse" => WhenFull::Refuse,
        other => {
            cx.err(
                Some(v.span()),
                format!(
                    "`when_full = {other:?}` is not a choice: expected \"early_drop\" (the default) or \"refuse\""
                ),
            );
            WhenFull::default()
        }
    }
}

struct Names<'a> {
    sg: &'a HashMap<String, SgId>,
    pl: &'a HashMap<String, PrefixListId>,
}

fn compile_rule(
    cx: &mut Ctx,
    names: &Names,
    sg: SgId,
    direction: Direction,
    index: u32,
    spanned: &Spanned<RawRule>,
) -> Option<Rule> {
    let r = spanned.get_ref();
    let errors_before = cx.errors.len();
    let proto = *r.proto.get_ref();
    let (want, other) = match direction {
        Direction::Ingress => ("from", &r.to),
        Direction::Egress => ("to", &r.from),
    };
    if let Some(o) = other {
        let wrong = if want == "from" { "to" } else { "from" };
        cx.err(
            Some(o.span()),
            format!("an {direction} rule names its remote end with `{want}`, not `{wrong}`"),
        );
    }
    let remote_list = match direction {
        Direction::Ingress => &r.from,
        Direction::Egress => &r.to,
    };
    let remote = match remote_list {
        Some(list) => resolve_remotes(cx, names, list),
        None => {
            cx.err(
                Some(spanned.span()),
                format!("this {direction} rule has no `{want}`: say where traffic may come from or go to (e.g. {want} = \"0.0.0.0/0\")"),
            );
            Vec::new()
        }
    };

    let ports = port_field(cx, proto, "ports", &r.ports);
    let source_ports = port_field(cx, proto, "source_ports", &r.source_ports);
    let ports_zero = r.ports.as_ref().is_some_and(|p| p.get_ref().has_zero);
    let icmp_type = icmp_field(cx, proto, "icmp_type", &r.icmp_type);
    let icmp_code = icmp_field(cx, proto, "icmp_code", &r.icmp_code);

    let local = r.local.as_ref().and_then(|l| match parse_net(l.get_ref()) {
        Ok(n) => Some(n),
        Err(m) => {
            cx.err(Some(l.span()), m);
            None
        }
    });
    let priority = match &r.priority {
        None => 1,
        Some(p) if (1..=65535).contains(p.get_ref()) => *p.get_ref() as u16,
        Some(p) => {
            cx.err(
                Some(p.span()),
                format!(
                    "priority {} is out of range: expected 1-65535 (smaller wins)",
                    p.get_ref()
                ),
            );
            1
        }
    };
    if cx.errors.len() > errors_before {
        return None;
    }
    Some(Rule {
        sg,
        direction,
        index: Some(index),
        proto,
        ports,
        source_ports,
        icmp_type,
        icmp_code,
        remote,
        local,
        action: r.action.as_ref().map_or(Action::Allow, |a| a.get_ref().0),
        priority,
        description: r.description.clone(),
        line: cx.line_of(&spanned.span()),
        ports_zero,
    })
}

fn port_field(
    cx: &mut Ctx,
    proto: ProtoMatch,
    key: &str,
    v: &Option<Spanned<RawPorts>>,
) -> PortSet {
    let Some(v) = v else { return PortSet::all() };
    let p = v.get_ref();
    if !proto.has_ports() && !p.all_form && !p.set.is_all() {
        cx.err(
            Some(v.span()),
            format!(
                "`{key} = {}` on protocol {proto}, which has no ports: ports apply to tcp and udp only (use \"-1/-1\" or leave `{key}` out)",
                &cx.text[v.span()]
            ),
        );
        return PortSet::all();
    }
    p.set.clone()
}

fn icmp_field(cx: &mut Ctx, proto: ProtoMatch, key: &str, v: &Option<Spanned<i64>>) -> Option<u8> {
    let v = v.as_ref()?;
    let n = *v.get_ref();
    if !(-1..=255).contains(&n) {
        cx.err(
            Some(v.span()),
            format!("`{key} = {n}` is out of range: expected 0-255, or -1 for any"),
        );
        return None;
    }
    if !proto.is_icmp() {
        if n != -1 {
            cx.err(
                Some(v.span()),
                format!("`{key}` on protocol {proto}: it applies to icmp and icmpv6 only"),
            );
        }
        return None;
    }
    (n >= 0).then_some(n as u8)
}

fn resolve_remotes(cx: &mut Ctx, names: &Names, list: &Spanned<AddrList>) -> Vec<Remote> {
    let mut out = Vec::new();
    for (s, span) in &list.get_ref().0 {
        let span = span.clone().unwrap_or_else(|| list.span());
        let t = s.trim();
        if t.starts_with("sg-") {
            match names.sg.get(t) {
                Some(&id) => out.push(Remote::Sg(id)),
                None => cx.err(Some(span), unknown("security group", t, names.sg.keys())),
            }
        } else if t.starts_with("pl-") {
            match names.pl.get(t) {
                Some(&id) => out.push(Remote::PrefixList(id)),
                None => cx.err(Some(span), unknown("prefix list", t, names.pl.keys())),
            }
        } else {
            match parse_net(t) {
                Ok(n) => out.push(Remote::Net(n)),
                Err(m) => cx.err(Some(span), m),
            }
        }
    }
    out
}

fn unknown<'a>(kind: &str, name: &str, known: impl Iterator<Item = &'a String>) -> String {
    let mut k: Vec<&String> = known.collect();
    k.sort();
    let shown: Vec<&str> = k.iter().take(12).map(|s| s.as_str()).collect();
    let list = if shown.is_empty() {
        "none is defined".to_string()
    } else {
        format!(
            "defined: {}{}",
            shown.join(", "),
            if k.len() > 12 { ", …" } else { "" }
        )
    };
    format!("unknown {kind} `{name}` ({list})")
}

/// An address (a host block) or a CIDR whose host bits are zero.
pub(super) fn parse_net(s: &str) -> Result<IpNet, String> {
    let t = s.trim();
    if let Ok(a) = t.parse::<IpAddr>() {
        return Ok(IpNet::from(a));
    }
    match t.parse::<IpNet>() {
        Ok(n) if n.trunc() == n => Ok(n),
        Ok(n) => Err(format!(
            "`{t}` has host bits set: did you mean {}? (a CIDR names its network address)",
            n.trunc()
        )),
        Err(_) => Err(format!(
            "`{t}` is not an address or CIDR: expected e.g. 10.0.0.5, 10.0.0.0/16, 2001:db8::/32, or an sg-…/pl-… name"
        )),
    }
}

fn intra_rule(sg: SgId, direction: Direction) -> Rule {
    Rule {
        sg,
        direction,
        index: None,
        proto: ProtoMatch::Any,
        ports: PortSet::all(),
        source_ports: PortSet::all(),
        icmp_type: None,
        icmp_code: None,
        remote: vec![Remote::Sg(sg)],
        local: None,
        action: Action::Allow,
        priority: 0,
        description: Some("implicit: members of this group reach each other".into()),
        line: 0,
        ports_zero: false,
    }
}

/// An interface's address block with where it is written: (zone, first, last, interface, block, span).
type Block<'a> = (
    Option<ZoneId>,
    AddrKey,
    AddrKey,
    IfaceId,
    IpNet,
    &'a Range<usize>,
);

fn address_index(
    cx: &mut Ctx,
    interfaces: &[Interface],
    spans: &[(IfaceId, IpNet, Range<usize>)],
) -> AddressIndex {
    let mut idx = AddressIndex::default();
    let mut blocks: Vec<Block> = spans
        .iter()
        .map(|(id, n, span)| {
            let (lo, hi) = net_bounds(n);
            (interfaces[*id as usize].zone, lo, hi, *id, *n, span)
        })
        .collect();
    blocks.sort_by_key(|b| (b.0, b.1, b.2));
    let mut reach: Option<(Option<ZoneId>, AddrKey, IfaceId)> = None;
    for &(zone, lo, hi, id, _, span) in &blocks {
        if let Some((z, end, owner)) = reach {
            if z == zone && lo <= end {
                let other = &interfaces[owner as usize].name;
                let msg = if owner == id {
                    "this address overlaps another address of the same interface".to_string()
                } else {
                    format!(
                        "address overlaps one of interface `{other}`{}: an address belongs to one interface (zones may overlap)",
                        zone.map(|z| format!(" in zone {}", zone_name(z))).unwrap_or_default()
                    )
                };
                cx.err(Some(span.clone()), msg);
            }
        }
        if reach.is_none_or(|(z, end, _)| z != zone || hi > end) {
            reach = Some((zone, hi, id));
        }
    }
    for (zone, lo, hi, id, net, _) in blocks {
        if net.prefix_len() == net.max_prefix_len() {
            idx.insert_host(zone, net.addr(), id);
        } else {
            idx.blocks.insert((zone, lo), (hi, id));
        }
    }
    idx
}

fn policy_sets(
    interfaces: &mut [Interface],
    sgs: &[SecurityGroup],
    rules: &[Rule],
) -> Vec<PolicySet> {
    let mut sets: Vec<PolicySet> = Vec::new();
    let mut by_sgs: HashMap<Vec<SgId>, u32> = HashMap::new();
    for iface in interfaces.iter_mut() {
        let id = *by_sgs
            .entry(iface.security_groups.clone())
            .or_insert_with(|| {
                let ordered = |dir: Direction| {
                    let mut ids: Vec<RuleId> = Vec::new();
                    for &sg in &iface.security_groups {
                        let g = &sgs[sg as usize];
                        if let Some((i, e)) = g.intra_rules {
                            ids.push(if dir == Direction::Ingress { i } else { e });
                        }
                        ids.extend(match dir {
                            Direction::Ingress => &g.ingress,
                            Direction::Egress => &g.egress,
                        });
                    }
                    // Stable: at equal priority and action, file order (SG order, then index).
                    ids.sort_by_key(|&r| (rules[r as usize].priority, rules[r as usize].action));
                    ids
                };
                let set = PolicySet {
                    security_groups: iface.security_groups.clone(),
                    ingress: ordered(Direction::Ingress),
                    egress: ordered(Direction::Egress),
                };
                sets.push(set);
                (sets.len() - 1) as u32
            });
        iface.policy_set = id;
    }
    sets
}
