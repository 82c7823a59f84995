//! A [`crate::policy::Model`] written as a policy file (SPEC §1, §6).
//!
//! The output reads back into the same model (origins aside) and depends on
//! nothing but the model: the same import gives the same bytes. Sections come
//! in a fixed order, items and rules in model order; values at their default
//! are left out. Each rule is one inline table under a comment naming it
//! (`# sg-web/ingress/0`), so that users can find the names `explain` and
//! `check` report.

use std::fmt::Write as _;

use ipnet::IpNet;

use crate::policy::model::{At, InterfaceTimeouts, Model, PrefixList, Remote, Rule, SecurityGroup};
use crate::policy::types::{zone_name, Action, PortRange, Verdict};
use crate::policy::{Settings, WhenFull};

/// Renders `model` as a policy file.
pub fn write(model: &Model) -> String {
    let mut w = Writer::default();
    w.header(model);
    w.settings(model);
    w.prefix_lists(&model.prefix_lists);
    for sg in &model.security_groups {
        w.security_group(sg);
    }
    for g in &model.external_groups {
        let mut t = Fields::default();
        t.opt_str("account", &g.account);
        t.opt_str("vpc", &g.vpc);
        t.opt_str("peering", &g.peering);
        t.opt_str("status", &g.status);
        w.table("external_groups", &g.name, t);
    }
    for i in &model.interfaces {
        let p = &i.place;
        let mut t = Fields::default();
        t.opt_str("name", &p.title);
        t.opt_str("description", &i.description);
        t.raw("addresses", nets(&i.addresses.value));
        t.names("security_groups", &i.security_groups);
        if let Some(z) = i.zone {
            t.str("zone", &zone_name(z));
        }
        t.opt_name("subnet", &p.subnet);
        t.opt_name("vpc", &p.vpc);
        t.opt_str("instance", &p.instance);
        t.opt_name("kind", &p.kind);
        if !p.public_addresses.is_empty() {
            t.raw("public_addresses", nets(&p.public_addresses));
        }
        t.opt_name("tracking", &p.tracking);
        if !p.timeouts.is_empty() {
            t.raw("timeouts", timeouts(&p.timeouts));
        }
        t.opt_num("conntrack_max", &p.conntrack_max);
        t.opt_str("az", &p.az);
        w.table("interfaces", &i.name, t);
    }
    for v in &model.vpcs {
        let mut t = Fields::default();
        t.opt_str("name", &v.title);
        if !v.cidrs.is_empty() {
            t.raw("cidrs", nets(&v.cidrs));
        }
        t.names("peers", &v.peers);
        t.opt_str("account", &v.account);
        t.opt_str("region", &v.region);
        t.strs("internet_gateways", &v.internet_gateways);
        w.table("vpcs", &v.name, t);
    }
    for p in &model.peerings {
        let mut t = Fields::default();
        t.str("requester_vpc", &p.requester_vpc.value);
        t.str("accepter_vpc", &p.accepter_vpc.value);
        t.opt_str("status", &p.status);
        w.table("peerings", &p.name, t);
    }
    for s in &model.subnets {
        let mut t = Fields::default();
        t.opt_str("name", &s.title);
        t.str("vpc", &s.vpc.value);
        match s.cidrs.as_slice() {
            [] => {}
            [one] => t.str("cidr", &net(one.value)),
            many => t.raw("cidr", nets(many)),
        }
        t.opt_str("az", &s.az);
        t.opt_name("network_acl", &s.network_acl);
        t.names("security_groups", &s.security_groups);
        t.opt_name("route_table", &s.route_table);
        w.table("subnets", &s.name, t);
    }
    for a in &model.network_acls {
        let mut t = Fields::default();
        t.opt_name("vpc", &a.vpc);
        t.flag("default", a.default);
        for (key, rules) in [("ingress", &a.ingress), ("egress", &a.egress)] {
            let remote = if key == "ingress" { "from" } else { "to" };
            let lines = rules
                .iter()
                .map(|r| {
                    let mut f = Fields::default();
                    f.raw("rule", r.rule.value.to_string());
                    f.str("proto", &r.proto.to_string());
                    if let Some(p) = &r.ports {
                        f.raw("ports", ports(&p.value));
                    }
                    f.opt_num("icmp_type", &r.icmp_type);
                    f.opt_num("icmp_code", &r.icmp_code);
                    f.str(remote, &net(r.remote.value));
                    f.str("action", r.action.as_str());
                    (None, f.inline())
                })
                .collect();
            t.lines(key, lines);
        }
        w.table("network_acls", &a.name, t);
    }
    for r in &model.route_tables {
        let mut t = Fields::default();
        t.opt_name("vpc", &r.vpc);
        t.flag("main", r.main);
        let lines = r
            .routes
            .iter()
            .map(|route| {
                let mut f = Fields::default();
                f.str("destination", &remote(&route.destination.value));
                f.str("target", &route.target.value);
                f.opt_str("state", &route.state);
                (None, f.inline())
            })
            .collect();
        t.lines("routes", lines);
        w.table("route_tables", &r.name, t);
    }
    for lb in &model.load_balancers {
        let mut t = Fields::default();
        t.str("type", &lb.kind.value);
        t.opt_name("scheme", &lb.scheme);
        t.opt_name("vpc", &lb.vpc);
        t.names("interfaces", &lb.interfaces);
        t.names("security_groups", &lb.security_groups);
        t.opt_bool("cross_zone", lb.cross_zone);
        t.opt_bool(
            "enforce_inbound_rules_on_privatelink",
            lb.enforce_inbound_rules_on_privatelink,
        );
        let lines = lb
            .listeners
            .iter()
            .map(|l| {
                let mut f = Fields::default();
                f.str("proto", &l.proto.value);
                f.opt_num("port", &l.port);
                f.opt_name("target_group", &l.target_group);
                (None, f.inline())
            })
            .collect();
        t.lines("listeners", lines);
        t.opt_str("dns_name", &lb.dns_name);
        t.opt_str("arn", &lb.arn);
        t.strs("zones", &lb.zones);
        w.table("load_balancers", &lb.name, t);
    }
    for tg in &model.target_groups {
        let mut t = Fields::default();
        t.opt_name("proto", &tg.proto);
        t.opt_num("port", &tg.port);
        t.opt_name("vpc", &tg.vpc);
        t.opt_str("target_type", &tg.target_type);
        t.opt_bool("preserve_client_ip", tg.preserve_client_ip);
        if let Some(p) = &tg.health_check_port {
            // A number where it reads back as the same text.
            match p.parse::<u16>() {
                Ok(n) if n.to_string() == *p => t.raw("health_check_port", p.clone()),
                _ => t.str("health_check_port", p),
            }
        }
        let lines = tg
            .targets
            .iter()
            .map(|target| {
                let mut f = Fields::default();
                f.str("id", &target.id.value);
                f.opt_num("port", &target.port);
                f.opt_str("az", &target.az);
                f.opt_str("health", &target.health);
                (None, f.inline())
            })
            .collect();
        t.lines("targets", lines);
        t.opt_str("arn", &tg.arn);
        w.table("target_groups", &tg.name, t);
    }
    for s in &model.endpoint_services {
        let mut t = Fields::default();
        t.names("load_balancers", &s.load_balancers);
        t.opt_str("service_name", &s.service_name);
        t.opt_bool("acceptance_required", s.acceptance_required);
        w.table("endpoint_services", &s.name, t);
    }
    for e in &model.endpoints {
        let mut t = Fields::default();
        t.str("type", &e.kind.value);
        t.opt_name("service", &e.service);
        t.opt_name("vpc", &e.vpc);
        t.names("subnets", &e.subnets);
        t.names("interfaces", &e.interfaces);
        t.names("security_groups", &e.security_groups);
        t.names("route_tables", &e.route_tables);
        t.strs("dns_names", &e.dns_names);
        t.opt_str("state", &e.state);
        w.table("endpoints", &e.name, t);
    }
    w.out
}

#[derive(Default)]
struct Writer {
    out: String,
}

impl Writer {
    /// A blank line between sections, none before the first.
    fn section(&mut self, header: &str) {
        if !self.out.is_empty() {
            self.out.push('\n');
        }
        self.out.push_str(header);
        self.out.push('\n');
    }

    fn table(&mut self, section: &str, name: &str, fields: Fields) {
        self.section(&format!("[{section}.{}]", key(name)));
        fields.write_lines(&mut self.out);
    }

    fn header(&mut self, model: &Model) {
        let Some(imp) = &model.imported else {
            return;
        };
        let _ = writeln!(
            self.out,
            "# Imported by sgplane import {} from:",
            comment_text(&imp.provider)
        );
        for input in &imp.inputs {
            let _ = writeln!(self.out, "#   {}", comment_text(input));
        }
        self.out.push('\n');
        self.out.push_str("[imported]\n");
        let mut t = Fields::default();
        t.str("provider", &imp.provider);
        // One input per line: an import of a directory reads dozens.
        t.lines(
            "inputs",
            imp.inputs.iter().map(|s| (None, string(s))).collect(),
        );
        t.write_lines(&mut self.out);
    }

    fn settings(&mut self, model: &Model) {
        let d = Settings::default();
        let s = &model.settings;
        let mut t = Fields::default();
        if s.unknown_address != d.unknown_address {
            let v = match s.unknown_address {
                Verdict::Allow => "allow",
                Verdict::Deny => "deny",
            };
            t.str("unknown_address", v);
        }
        if s.allow_arp != d.allow_arp {
            t.raw("allow_arp", s.allow_arp.to_string());
        }
        if s.allow_neighbor_discovery != d.allow_neighbor_discovery {
            t.raw(
                "allow_neighbor_discovery",
                s.allow_neighbor_discovery.to_string(),
            );
        }
        if !t.0.is_empty() {
            self.section("[settings]");
            t.write_lines(&mut self.out);
        }
        let c = &model.conntrack;
        let mut t = Fields::default();
        t.opt_num("max_entries", &c.max_entries);
        if c.when_full != WhenFull::default() {
            t.str("when_full", c.when_full.name());
        }
        t.opt_num("tcp_established", &c.tcp_established);
        t.opt_num("tcp_transitory", &c.tcp_transitory);
        t.opt_num("udp", &c.udp);
        t.opt_num("udp_stream", &c.udp_stream);
        t.opt_num("icmp", &c.icmp);
        t.opt_num("other", &c.other);
        if !t.0.is_empty() {
            self.section("[conntrack]");
            t.write_lines(&mut self.out);
        }
    }

    fn prefix_lists(&mut self, lists: &[PrefixList]) {
        if lists.is_empty() {
            return;
        }
        let mut t = Fields::default();
        for pl in lists {
            let entries = nets(&pl.entries);
            if pl.max_entries.is_none() && pl.owner.is_none() && !pl.incomplete {
                t.raw_key(key(&pl.name), entries);
            } else {
                let mut f = Fields::default();
                f.raw("entries", entries);
                f.opt_num("max_entries", &pl.max_entries);
                f.opt_str("owner", &pl.owner);
                f.flag("incomplete", pl.incomplete);
                t.raw_key(key(&pl.name), f.inline());
            }
        }
        self.section("[prefix_lists]");
        t.write_lines(&mut self.out);
    }

    fn security_group(&mut self, sg: &SecurityGroup) {
        let mut t = Fields::default();
        t.opt_str("name", &sg.title);
        t.opt_str("description", &sg.description);
        t.opt_name("vpc", &sg.vpc);
        if sg.intra_group {
            t.str("intra_group", "allow");
        }
        for (dir, rules) in [("ingress", &sg.ingress), ("egress", &sg.egress)] {
            let lines = rules
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let name = format!("{}/{dir}/{i}", sg.name);
                    (Some(comment_text(&name)), rule(r, dir == "ingress"))
                })
                .collect();
            t.lines(dir, lines);
        }
        self.table("security_groups", &sg.name, t);
    }
}

/// One SG rule as an inline table.
fn rule(r: &Rule, ingress: bool) -> String {
    let mut f = Fields::default();
    f.str("proto", &r.proto.to_string());
    if let Some(p) = &r.ports {
        f.raw("ports", ports(&p.value));
    }
    f.opt_num("icmp_type", &r.icmp_type);
    f.opt_num("icmp_code", &r.icmp_code);
    let remote_key = if ingress { "from" } else { "to" };
    match r.remote.as_slice() {
        [] => {}
        [one] => f.str(remote_key, &remote(&one.value)),
        many => f.raw(
            remote_key,
            list(many.iter().map(|r| string(&remote(&r.value)))),
        ),
    }
    if let Some(p) = &r.source_ports {
        f.raw("source_ports", ports(&p.value));
    }
    if let Some(l) = &r.local {
        f.str("local", &net(l.value));
    }
    if r.action == Action::Deny {
        f.str("action", "deny");
    }
    f.opt_num("priority", &r.priority);
    f.opt_str("description", &r.description);
    f.opt_str("id", &r.id);
    f.inline()
}

/// Keys and their rendered values, in the order written.
#[derive(Default)]
struct Fields(Vec<(String, Value)>);

enum Value {
    One(String),
    /// A multi-line array: one element per line, each after an optional
    /// comment line.
    Lines(Vec<(Option<String>, String)>),
}

impl Fields {
    fn raw_key(&mut self, k: String, v: String) {
        self.0.push((k, Value::One(v)));
    }

    fn raw(&mut self, k: &str, v: String) {
        self.raw_key(k.to_string(), v);
    }

    fn str(&mut self, k: &str, v: &str) {
        self.raw(k, string(v));
    }

    fn opt_str(&mut self, k: &str, v: &Option<String>) {
        if let Some(v) = v {
            self.str(k, v);
        }
    }

    fn opt_name(&mut self, k: &str, v: &Option<At<String>>) {
        if let Some(v) = v {
            self.str(k, &v.value);
        }
    }

    fn opt_num(&mut self, k: &str, v: &Option<At<i64>>) {
        if let Some(v) = v {
            self.raw(k, v.value.to_string());
        }
    }

    fn opt_bool(&mut self, k: &str, v: Option<bool>) {
        if let Some(v) = v {
            self.raw(k, v.to_string());
        }
    }

    /// A flag whose default is false.
    fn flag(&mut self, k: &str, v: bool) {
        if v {
            self.raw(k, "true".into());
        }
    }

    fn strs(&mut self, k: &str, v: &[String]) {
        if !v.is_empty() {
            self.raw(k, list(v.iter().map(|s| string(s))));
        }
    }

    fn names(&mut self, k: &str, v: &[At<String>]) {
        if !v.is_empty() {
            self.raw(k, list(v.iter().map(|s| string(&s.value))));
        }
    }

    fn lines(&mut self, k: &str, v: Vec<(Option<String>, String)>) {
        if !v.is_empty() {
            self.0.push((k.to_string(), Value::Lines(v)));
        }
    }

    /// `{ k = v, … }` (never with multi-line values).
    fn inline(self) -> String {
        if self.0.is_empty() {
            return "{}".into();
        }
        let parts: Vec<String> = self
            .0
            .into_iter()
            .map(|(k, v)| match v {
                Value::One(v) => format!("{k} = {v}"),
                Value::Lines(l) => format!("{k} = {}", list(l.into_iter().map(|(_, v)| v))),
            })
            .collect();
        format!("{{ {} }}", parts.join(", "))
    }

    fn write_lines(self, out: &mut String) {
        for (k, v) in self.0 {
            match v {
                Value::One(v) => {
                    let _ = writeln!(out, "{k} = {v}");
                }
                Value::Lines(items) => {
                    let _ = writeln!(out, "{k} = [");
                    for (comment, item) in items {
                        if let Some(c) = comment {
                            let _ = writeln!(out, "  # {c}");
                        }
                        let _ = writeln!(out, "  {item},");
                    }
                    out.push_str("]\n");
                }
            }
        }
    }
}

fn list(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    format!("[{}]", items.join(", "))
}

fn timeouts(t: &InterfaceTimeouts) -> String {
    let mut f = Fields::default();
    f.opt_num("tcp_established", &t.tcp_established);
    f.opt_num("udp", &t.udp);
    f.opt_num("udp_stream", &t.udp_stream);
    f.inline()
}

/// Ports canonically: `"80"`, `"80-90"`, or a list of these.
fn ports(p: &[PortRange]) -> String {
    match p {
        [one] => string(&one.to_string()),
        many => list(many.iter().map(|r| string(&r.to_string()))),
    }
}

/// An address block; a single address without its prefix length.
fn net(n: IpNet) -> String {
    if n.prefix_len() == n.max_prefix_len() {
        n.addr().to_string()
    } else {
        n.to_string()
    }
}

fn nets(list_: &[At<IpNet>]) -> String {
    list(list_.iter().map(|n| string(&net(n.value))))
}

fn remote(r: &Remote) -> String {
    match r {
        Remote::Net(n) => net(*n),
        Remote::Sg(s) | Remote::PrefixList(s) => s.clone(),
    }
}

/// A key: bare where TOML allows, quoted otherwise.
fn key(k: &str) -> String {
    let bare = !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if bare {
        k.to_string()
    } else {
        string(k)
    }
}

/// A TOML basic string: quotes, backslashes and control characters escaped,
/// everything else (unicode included) as it is.
fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Text for a comment line: as it is, or quoted and escaped when it has
/// characters a comment cannot hold.
fn comment_text(s: &str) -> String {
    if s.chars().any(char::is_control) {
        string(s)
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::model::*;
    use crate::policy::types::{IpProto, ProtoMatch};

    /// The model's Debug text with every TOML origin made `None`: two models
    /// are the same up to origins when these are equal.
    fn without_origins(m: &Model) -> String {
        let text = format!("{m:#?}");
        let mut out = String::with_capacity(text.len());
        let mut rest = text.as_str();
        while let Some(i) = rest.find("Toml {") {
            out.push_str(&rest[..i]);
            let end = rest[i..].find('}').expect("an origin ends") + i + 1;
            out.push_str("None");
            rest = &rest[end..];
        }
        out.push_str(rest);
        out
    }

    fn read(text: &str) -> Model {
        Model::from_toml(text, "w.toml").unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    /// write → read gives the model back, and writing that gives the same
    /// bytes.
    fn assert_round_trip(m: &Model) -> String {
        let text = write(m);
        let back = Model::from_toml(&text, &m.source).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(without_origins(&back), without_origins(m), "{text}");
        assert_eq!(write(&back), text);
        text
    }

    #[test]
    fn part_one_configs_round_trip() {
        let mut seen = 0;
        for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/config")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|x| x == "toml") {
                let m = Model::load(&path).unwrap_or_else(|e| panic!("{e}"));
                assert_round_trip(&m);
                seen += 1;
            }
        }
        assert!(seen >= 3);
    }

    const TOPOLOGY: &str = r#"
[imported]
provider = "aws"
inputs = ["in/sgs.json", "in/with \"quote\".json"]

[settings]
unknown_address = "allow"
allow_arp = false

[conntrack]
max_entries = 5000
when_full = "refuse"
udp = 45

[prefix_lists]
pl-plain = ["10.0.0.0/8", "2001:db8:100::/48"]
pl-aws = { entries = ["52.94.0.0/22"], max_entries = 50, owner = "AWS", incomplete = true }
pl-empty = []

[security_groups.sg-web]
name = "web \"prod\""
description = "line one\nline two\ttab \\ back ünïcødé ☃ \u0001"
vpc = "vpc-1"
intra_group = "allow"
ingress = [
  { proto = "tcp", ports = ["80", "8000-8080", "80"], from = ["0.0.0.0/0", "::/0", "sg-ext", "pl-aws"], id = "sgr-0123456789abcdef0" },
  { proto = "icmpv6", icmp_type = 128, icmp_code = 0, from = "2001:db8::1", action = "deny", priority = 7 },
  { proto = "udp", ports = "0-65535", source_ports = "53", local = "10.0.0.0/24", from = "10.1.2.3/32", description = "" },
  { proto = "47", from = "fe80::/10" },
]
egress = [ { proto = "all", to = "0.0.0.0/0" } ]

[security_groups."sg.with.dots"]

[external_groups.sg-ext]
account = "444455556666"
peering = "pcx-1"
status = "stale"

[external_groups.sg-bare]

[interfaces.eni-1]
name = "web-1 ☃"
description = "Primary network interface"
addresses = ["10.0.1.10", "2001:db8:1::10", "10.0.1.0/28"]
security_groups = ["sg-web"]
zone = "vpce-0123456789abcdef0"
subnet = "subnet-1"
instance = "i-0123456789abcdef0"
kind = "interface"
public_addresses = ["18.216.80.133"]
tracking = "aws"
timeouts = { tcp_established = 350, udp_stream = 180 }
conntrack_max = 2000

[interfaces.eni-2]
addresses = ["10.0.2.10"]
vpc = "vpc-1"
az = "ap-northeast-1a"

[vpcs.vpc-1]
name = "main"
cidrs = ["10.0.0.0/16", "2001:db8::/56"]
peers = ["vpc-2"]
account = "111122223333"
region = "ap-northeast-1"
internet_gateways = ["igw-1"]

[vpcs.vpc-2]

[peerings.pcx-1]
requester_vpc = "vpc-1"
accepter_vpc = "vpc-2"
status = "active"

[subnets.subnet-1]
name = "private a"
vpc = "vpc-1"
cidr = ["10.0.1.0/24", "2001:db8:0:1::/64"]
az = "ap-northeast-1a"
network_acl = "acl-1"
security_groups = ["nsg-web"]
route_table = "rtb-1"

[subnets.subnet-2]
vpc = "vpc-1"
cidr = "10.0.2.0/24"

[network_acls.acl-1]
vpc = "vpc-1"
default = true
ingress = [
  { rule = 100, proto = "tcp", ports = "443", from = "0.0.0.0/0", action = "allow" },
  { rule = 110, proto = "icmp", icmp_type = 3, icmp_code = 4, from = "::/0", action = "deny" },
]
egress = [ { rule = 100, proto = "all", to = "0.0.0.0/0", action = "allow" } ]

[route_tables.rtb-1]
vpc = "vpc-1"
main = true
routes = [
  { destination = "0.0.0.0/0", target = "igw-1" },
  { destination = "pl-aws", target = "vpce-1", state = "blackhole" },
  { destination = "::/0", target = "eigw-1" },
]

[load_balancers.nlb-orders]
type = "network"
scheme = "internal"
vpc = "vpc-1"
interfaces = ["eni-1"]
security_groups = ["sg-web"]
cross_zone = false
enforce_inbound_rules_on_privatelink = true
listeners = [ { proto = "tcp", port = 80, target_group = "tg-orders" }, { proto = "geneve" } ]
dns_name = "nlb-orders-0123.elb.ap-northeast-1.amazonaws.com"
arn = "arn:aws:elasticloadbalancing:ap-northeast-1:111122223333:loadbalancer/net/nlb-orders/0123"
zones = ["ap-northeast-1a", "ap-northeast-1c"]

[target_groups.tg-orders]
proto = "tcp"
port = 80
vpc = "vpc-1"
target_type = "instance"
preserve_client_ip = false
health_check_port = 8080
targets = [ { id = "i-0b1", port = 80, az = "ap-northeast-1a", health = "unhealthy" }, { id = "10.0.2.10" } ]
arn = "arn:aws:elasticloadbalancing:ap-northeast-1:111122223333:targetgroup/tg-orders/1"

[target_groups.tg-2]
health_check_port = "traffic-port"

[target_groups.tg-3]
health_check_port = "080"

[endpoint_services.vpce-svc-0b1]
load_balancers = ["nlb-orders"]
service_name = "com.amazonaws.vpce.ap-northeast-1.vpce-svc-0b1"
acceptance_required = false

[endpoints.vpce-0e1]
type = "interface"
service = "vpce-svc-0b1"
vpc = "vpc-1"
subnets = ["subnet-1"]
interfaces = ["eni-1"]
security_groups = ["sg-web"]
route_tables = ["rtb-1"]
dns_names = ["vpce-0e1-abcd.vpce-svc-0b1.ap-northeast-1.vpce.amazonaws.com"]
state = "available"
"#;

    #[test]
    fn every_topology_section_round_trips() {
        let m = read(TOPOLOGY);
        assert_eq!(m.security_groups[0].ingress.len(), 4);
        assert_eq!(m.target_groups.len(), 3);
        let text = assert_round_trip(&m);
        assert!(text.starts_with(
            "# Imported by sgplane import aws from:\n#   in/sgs.json\n#   in/with \"quote\".json\n\n[imported]\n"
        ), "{text}");
        assert!(
            text.contains("\n[security_groups.\"sg.with.dots\"]\n"),
            "{text}"
        );
        assert!(text.contains("  # sg-web/ingress/1\n  { proto = \"icmpv6\", icmp_type = 128, icmp_code = 0, from = \"2001:db8::1\", action = \"deny\", priority = 7 },\n"), "{text}");
        assert!(
            text.contains("ports = [\"80\", \"8000-8080\", \"80\"]"),
            "{text}"
        );
        assert!(text.contains("health_check_port = 8080\n"), "{text}");
        assert!(text.contains("health_check_port = \"080\"\n"), "{text}");
        assert!(!text.contains("allow_neighbor_discovery"), "{text}");
    }

    #[test]
    fn tricky_strings_and_keys_in_a_built_model() {
        let tricky = "q\"uote \\ back\nnew\r\t\u{0}\u{1f}\u{7f}\u{85} ünï ☃ 𝄞 '''\"\"\"";
        let mut rule = Rule::new(
            ProtoMatch::Is(IpProto::TCP),
            vec![At::bare(Remote::Net("2001:db8::/32".parse().unwrap()))],
        );
        rule.ports = Some(At::bare(vec![PortRange::ALL]));
        rule.description = Some(tricky.into());
        rule.id = Some("sgr-0123456789abcdef0".into());
        let m = Model {
            source: "built".into(),
            imported: Some(Imported {
                provider: "aws".into(),
                inputs: vec!["a\nb.json".into(), "ü.json".into()],
            }),
            security_groups: vec![SecurityGroup {
                name: "sg-a.b".into(),
                title: Some(tricky.into()),
                egress: vec![rule],
                ..SecurityGroup::default()
            }],
            load_balancers: vec![LoadBalancer {
                name: "arn:aws:elasticloadbalancing:eu-west-1:1:loadbalancer/app/x/1".into(),
                kind: At::bare("application".into()),
                ..LoadBalancer::default()
            }],
            interfaces: vec![Interface {
                name: "".into(),
                addresses: At::bare(vec![At::bare("::1/128".parse().unwrap())]),
                ..Interface::default()
            }],
            ..Model::default()
        };
        let text = assert_round_trip(&m);
        assert!(text.contains("#   \"a\\nb.json\"\n#   ü.json\n"), "{text}");
        assert!(text.contains("[load_balancers.\"arn:aws:"), "{text}");
        assert!(text.contains("[interfaces.\"\"]"), "{text}");
    }

    #[test]
    fn part_one_output_is_plain() {
        let text = assert_round_trip(&read(
            "[security_groups.sg-a]\ningress = [ { proto = \"tcp\", ports = \"22\", from = \"10.0.0.0/8\" } ]\n\n[interfaces.eni-1]\naddresses = [\"10.0.0.5\"]\nsecurity_groups = [\"sg-a\"]\n",
        ));
        assert_eq!(
            text,
            "[security_groups.sg-a]\ningress = [\n  # sg-a/ingress/0\n  { proto = \"tcp\", ports = \"22\", from = \"10.0.0.0/8\" },\n]\n\n[interfaces.eni-1]\naddresses = [\"10.0.0.5\"]\nsecurity_groups = [\"sg-a\"]\n"
        );
    }

    mod generated {
        use super::*;
        use proptest::prelude::*;

        fn net() -> impl Strategy<Value = IpNet> {
            prop_oneof![
                (any::<u32>(), 0u8..=32).prop_map(|(a, p)| IpNet::new(
                    std::net::Ipv4Addr::from(a).into(),
                    p
                )
                .unwrap()),
                (any::<u128>(), 0u8..=128).prop_map(|(a, p)| IpNet::new(
                    std::net::Ipv6Addr::from(a).into(),
                    p
                )
                .unwrap()),
            ]
        }

        fn ports() -> impl Strategy<Value = Option<At<Vec<PortRange>>>> {
            prop::option::of(
                prop::collection::vec(
                    (any::<u16>(), any::<u16>()).prop_map(|(a, b)| PortRange {
                        lo: a.min(b),
                        hi: a.max(b),
                    }),
                    1..4,
                )
                .prop_map(At::bare),
            )
        }

        fn proto() -> impl Strategy<Value = ProtoMatch> {
            prop_oneof![
                Just(ProtoMatch::Any),
                any::<u8>().prop_map(|p| ProtoMatch::Is(IpProto(p))),
                Just(ProtoMatch::Is(IpProto::TCP)),
            ]
        }

        fn text() -> impl Strategy<Value = Option<String>> {
            prop::option::of("[a-z\"\\\\\n\t ü☃-]{0,12}")
        }

        fn remote() -> impl Strategy<Value = At<Remote>> {
            prop_oneof![
                net().prop_map(Remote::Net),
                "sg-[a-z0-9]{1,4}".prop_map(Remote::Sg),
                "pl-[a-z0-9]{1,4}".prop_map(Remote::PrefixList),
            ]
            .prop_map(At::bare)
        }

        fn icmp() -> impl Strategy<Value = Option<At<i64>>> {
            prop::option::of((0i64..=255).prop_map(At::bare))
        }

        fn rule() -> impl Strategy<Value = Rule> {
            (
                proto(),
                ports(),
                (icmp(), icmp()),
                prop::collection::vec(remote(), 0..3),
                prop::option::of(net().prop_map(At::bare)),
                any::<bool>(),
                prop::option::of((1i64..=65535).prop_map(At::bare)),
                (text(), prop::option::of("sgr-[0-9a-f]{4}")),
            )
                .prop_map(
                    |(proto, ports, (t, c), remote, local, deny, priority, (d, id))| {
                        let mut r = Rule::new(proto, remote);
                        r.ports = ports;
                        r.icmp_type = t;
                        r.icmp_code = c;
                        r.local = local;
                        if deny {
                            r.action = Action::Deny;
                        }
                        r.priority = priority;
                        r.description = d;
                        r.id = id;
                        r
                    },
                )
        }

        fn sg() -> impl Strategy<Value = SecurityGroup> {
            (
                "sg-[a-z0-9.]{1,5}",
                text(),
                any::<bool>(),
                prop::collection::vec(rule(), 0..4),
                prop::collection::vec(rule(), 0..3),
            )
                .prop_map(|(name, description, intra_group, ingress, egress)| {
                    SecurityGroup {
                        name,
                        description,
                        intra_group,
                        ingress,
                        egress,
                        ..SecurityGroup::default()
                    }
                })
        }

        fn interface() -> impl Strategy<Value = Interface> {
            (
                "eni-[a-z0-9]{1,5}",
                prop::collection::vec(net().prop_map(At::bare), 0..3),
                prop::collection::vec("sg-[a-z]{1,3}".prop_map(At::bare), 0..3),
                prop::option::of(any::<u64>().prop_map(|z| z & 0xfff_ffff_ffff_ffff)),
                prop::option::of("subnet-[0-9]{1,2}".prop_map(At::bare)),
                text(),
            )
                .prop_map(|(name, addrs, sgs, zone, subnet, title)| Interface {
                    name,
                    addresses: At::bare(addrs),
                    security_groups: sgs,
                    zone,
                    place: InterfacePlace {
                        subnet,
                        title,
                        ..InterfacePlace::default()
                    },
                    ..Interface::default()
                })
        }

        fn acl_rule() -> impl Strategy<Value = AclRule> {
            (1i64..=32766, proto(), ports(), net(), any::<bool>()).prop_map(
                |(n, proto, ports, remote, allow)| AclRule {
                    origin: Origin::None,
                    rule: At::bare(n),
                    proto,
                    ports,
                    icmp_type: None,
                    icmp_code: None,
                    remote: At::bare(remote),
                    action: if allow { Action::Allow } else { Action::Deny },
                },
            )
        }

        fn model() -> impl Strategy<Value = Model> {
            (
                prop::collection::vec(sg(), 0..4),
                prop::collection::vec(interface(), 0..3),
                prop::collection::vec(net().prop_map(At::bare), 0..3),
                prop::collection::vec(acl_rule(), 0..3),
                prop::collection::vec(acl_rule(), 0..3),
            )
                .prop_map(
                    |(mut security_groups, mut interfaces, cidrs, ingress, egress)| {
                        // A name is a TOML key: written twice, the file is not
                        // TOML (and such a model would not compile).
                        let mut seen = std::collections::HashSet::new();
                        security_groups.retain(|g| seen.insert(g.name.clone()));
                        interfaces.retain(|i| seen.insert(i.name.clone()));
                        Model {
                            source: "prop".into(),
                            security_groups,
                            interfaces,
                            vpcs: vec![Vpc {
                                name: "vpc-1".into(),
                                cidrs: cidrs.clone(),
                                ..Vpc::default()
                            }],
                            subnets: vec![Subnet {
                                name: "subnet-1".into(),
                                vpc: At::bare("vpc-1".into()),
                                cidrs,
                                network_acl: Some(At::bare("acl-1".into())),
                                ..Subnet::default()
                            }],
                            network_acls: vec![NetworkAcl {
                                name: "acl-1".into(),
                                ingress,
                                egress,
                                ..NetworkAcl::default()
                            }],
                            ..Model::default()
                        }
                    },
                )
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]
            #[test]
            fn write_read_write_is_a_fixed_point(m in model()) {
                let text = write(&m);
                let back = Model::from_toml(&text, "prop")
                    .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
                prop_assert_eq!(without_origins(&back), without_origins(&m));
                prop_assert_eq!(write(&back), text);
            }
        }
    }
}
