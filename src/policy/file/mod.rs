//! The policy file (SPEC §1, and the topology of §6 in [`topology`]): TOML
//! read into a [`Model`], each value with its line and column as its
//! [`Origin`], the file's own spellings of values
//! turned into canonical ones ([`dialect`]). Unknown keys and malformed
//! values are errors here; everything else is checked by `compile` against
//! the model, for every source alike.

mod dialect;
mod raw;
mod topology;

use std::ops::Range;
use std::sync::Arc;

use ipnet::IpNet;
use toml::Spanned;

use self::raw::{AddrList, RawConntrack, RawInterface, RawPolicy, RawRule, RawSecurityGroup};
use super::diag::{Diagnostic, PolicyError};
use super::model::{self, At, Model, Origin, Remote};
use super::types::{parse_net, parse_zone, Action, Direction, Verdict};
use super::{Settings, WhenFull};

/// Reads a policy file. When a value is malformed, the model's checks still
/// run on the rest, so that every problem is reported at once.
pub(super) fn read(text: &str, source: &str) -> Result<Model, PolicyError> {
    let mut r = Reader {
        at: Locator::new(source, text),
        errors: Vec::new(),
    };
    let raw: RawPolicy = toml::from_str(text).map_err(|e| {
        let origin = match e.span() {
            Some(span) => r.at.origin(span),
            None => Origin::File {
                file: r.at.file.clone(),
            },
        };
        let msg = e.message().trim_end().to_string();
        PolicyError::Invalid(vec![Diagnostic::new(origin, msg)]).quoting(text)
    })?;
    let model = r.model(raw, source);
    if r.errors.is_empty() {
        return Ok(model);
    }
    if let Err(e) = super::compile::compile(&model) {
        r.errors.extend_from_slice(e.diagnostics());
    }
    r.errors.sort_by_key(|d| (d.line, d.column));
    Err(PolicyError::Invalid(r.errors).quoting(text))
}

/// Turns byte ranges of the text into line and column origins.
struct Locator<'a> {
    file: Arc<str>,
    text: &'a str,
    /// Byte offsets where lines start.
    line_starts: Vec<usize>,
}

impl<'a> Locator<'a> {
    fn new(file: &str, text: &'a str) -> Locator<'a> {
        Locator {
            file: file.into(),
            text,
            line_starts: std::iter::once(0)
                .chain(text.match_indices('\n').map(|(i, _)| i + 1))
                .collect(),
        }
    }

    /// Where `span` starts (line and column in characters, both 1-based) and
    /// how many characters of its line it covers (at least one).
    fn origin(&self, span: Range<usize>) -> Origin {
        let text = self.text;
        let start = floor_char_boundary(text, span.start.min(text.len()));
        let line = self.line_starts.partition_point(|&s| s <= start);
        let line_start = self.line_starts[line - 1];
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let end = floor_char_boundary(text, span.end.clamp(start, line_end));
        Origin::Toml {
            file: self.file.clone(),
            line: line as u32,
            column: text[line_start..start].chars().count() as u32 + 1,
            width: text[start..end].chars().count().max(1) as u32,
        }
    }

    fn at<T>(&self, value: T, span: Range<usize>) -> At<T> {
        At::new(value, self.origin(span))
    }

    fn spanned<T: Clone>(&self, v: &Spanned<T>) -> At<T> {
        self.at(v.get_ref().clone(), v.span())
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

struct Reader<'a> {
    at: Locator<'a>,
    errors: Vec<Diagnostic>,
}

impl Reader<'_> {
    fn err(&mut self, span: Range<usize>, msg: impl Into<String>) {
        let origin = self.at.origin(span);
        self.errors.push(Diagnostic::new(origin, msg));
    }

    fn model(&mut self, raw: RawPolicy, source: &str) -> Model {
        let d = Settings::default();
        let s = &raw.settings;
        let settings = Settings {
            unknown_address: match s.unknown_address.as_ref().map(|a| a.get_ref().0) {
                Some(Action::Allow) => Verdict::Allow,
                Some(Action::Deny) => Verdict::Deny,
                None => d.unknown_address,
            },
            allow_arp: s.allow_arp.unwrap_or(d.allow_arp),
            allow_neighbor_discovery: s
                .allow_neighbor_discovery
                .unwrap_or(d.allow_neighbor_discovery),
        };
        let conntrack = self.conntrack(&raw.conntrack);
        let prefix_lists = raw
            .prefix_lists
            .0
            .iter()
            .map(|(name, pl)| self.prefix_list(name, pl))
            .collect();
        let security_groups = raw
            .security_groups
            .0
            .iter()
            .map(|(name, sg)| self.security_group(name, sg))
            .collect();
        let interfaces = raw
            .interfaces
            .0
            .iter()
            .filter_map(|(name, i)| self.interface(name, i))
            .collect();
        macro_rules! section {
            ($field:ident, $read:ident) => {
                raw.$field
                    .0
                    .iter()
                    .map(|(name, v)| self.$read(name, v))
                    .collect()
            };
        }
        Model {
            source: source.to_string(),
            imported: raw.imported.map(|i| model::Imported {
                provider: i.provider,
                inputs: i.inputs,
            }),
            settings,
            conntrack,
            prefix_lists,
            security_groups,
            external_groups: section!(external_groups, external_group),
            interfaces,
            vpcs: section!(vpcs, vpc),
            peerings: section!(peerings, peering),
            subnets: section!(subnets, subnet),
            network_acls: section!(network_acls, network_acl),
            route_tables: section!(route_tables, route_table),
            load_balancers: section!(load_balancers, load_balancer),
            target_groups: section!(target_groups, target_group),
            endpoint_services: section!(endpoint_services, endpoint_service),
            endpoints: section!(endpoints, endpoint),
        }
    }

    fn conntrack(&mut self, c: &RawConntrack) -> model::Conntrack {
        let num = |v: &Option<Spanned<i64>>| v.as_ref().map(|v| self.at.spanned(v));
        let mut m = model::Conntrack {
            max_entries: num(&c.max_entries),
            when_full: WhenFull::default(),
            tcp_established: num(&c.tcp_established),
            tcp_transitory: num(&c.tcp_transitory),
            udp: num(&c.udp),
            udp_stream: num(&c.udp_stream),
            icmp: num(&c.icmp),
            other: num(&c.other),
        };
        if let Some(v) = &c.when_full {
            match v.get_ref().as_str() {
                "early_drop" => m.when_full = WhenFull::EarlyDrop,
                "refuse" => m.when_full = WhenFull::Refuse,
                other => self.err(
                    v.span(),
                    format!(
                        "`when_full = {other:?}` is not a choice: expected \"early_drop\" (the default) or \"refuse\""
                    ),
                ),
            }
        }
        m
    }

    /// An address or CIDR, reporting a malformed one.
    fn net(&mut self, s: &Spanned<String>) -> Option<At<IpNet>> {
        match parse_net(s.get_ref().trim()) {
            Ok(n) => Some(self.at.at(n, s.span())),
            Err(e) => {
                self.err(s.span(), e.to_string());
                None
            }
        }
    }

    fn security_group(
        &mut self,
        name: &Spanned<String>,
        sg: &RawSecurityGroup,
    ) -> model::SecurityGroup {
        let origin = self.at.origin(name.span());
        let vpc = sg.vpc.as_ref().map(|v| self.at.spanned(v));
        let mut rules = |dir: Direction, list: &[Spanned<RawRule>]| -> Vec<model::Rule> {
            list.iter().map(|r| self.rule(dir, r)).collect()
        };
        model::SecurityGroup {
            name: name.get_ref().clone(),
            origin,
            description: sg.description.clone(),
            title: sg.name.clone(),
            vpc,
            intra_group: sg
                .intra_group
                .as_ref()
                .is_some_and(|a| a.get_ref().0 == Action::Allow),
            ingress: rules(Direction::Ingress, &sg.ingress),
            egress: rules(Direction::Egress, &sg.egress),
        }
    }

    fn rule(&mut self, direction: Direction, spanned: &Spanned<RawRule>) -> model::Rule {
        let r = spanned.get_ref();
        let (want, wrong, list, other) = match direction {
            Direction::Ingress => ("from", "to", &r.from, &r.to),
            Direction::Egress => ("to", "from", &r.to, &r.from),
        };
        if let Some(o) = other {
            self.err(
                o.span(),
                format!("an {direction} rule names its remote end with `{want}`, not `{wrong}`"),
            );
        }
        let mut remote = Vec::new();
        if let Some(list) = list {
            remote = self.remotes(list);
            if remote.is_empty() {
                // Every entry is malformed, and reported. A stand-in lets the
                // model's checks see the rest of the rule (a model read with
                // errors is never returned).
                remote.push(self.at.at(Remote::Net(IpNet::default()), list.span()));
            }
        }
        let ports = |p: &Option<Spanned<raw::RawPorts>>| {
            p.as_ref()
                .map(|p| self.at.at(p.get_ref().0.clone(), p.span()))
        };
        // -1 is the file's "any".
        let icmp = |v: &Option<Spanned<i64>>| {
            v.as_ref()
                .filter(|v| *v.get_ref() != -1)
                .map(|v| self.at.spanned(v))
        };
        let mut rule = model::Rule::new(r.proto.get_ref().0, remote);
        rule.origin = self.at.origin(spanned.span());
        rule.ports = ports(&r.ports);
        rule.source_ports = ports(&r.source_ports);
        rule.icmp_type = icmp(&r.icmp_type);
        rule.icmp_code = icmp(&r.icmp_code);
        rule.priority = r.priority.as_ref().map(|p| self.at.spanned(p));
        rule.action = r.action.as_ref().map_or(Action::Allow, |a| a.get_ref().0);
        rule.description = r.description.clone();
        rule.id = r.id.clone();
        rule.local = r.local.as_ref().and_then(|l| self.net(l));
        rule
    }

    /// `from`/`to`: each entry is positioned where it is written in a list;
    /// a lone string takes the position of the whole value.
    fn remotes(&mut self, list: &Spanned<AddrList>) -> Vec<At<Remote>> {
        let mut out = Vec::new();
        for (s, span) in &list.get_ref().0 {
            let span = span.clone().unwrap_or_else(|| list.span());
            match s.trim().parse::<Remote>() {
                Ok(r) => out.push(self.at.at(r, span)),
                Err(e) => self.err(span, e.to_string()),
            }
        }
        out
    }

    /// An interface, or `None` when its zone or every address is malformed
    /// (the model's checks would report what follows from that, not a
    /// problem of the file).
    fn interface(&mut self, name: &Spanned<String>, ri: &RawInterface) -> Option<model::Interface> {
        let zone = match &ri.zone {
            None => None,
            Some(z) => match parse_zone(z.get_ref()) {
                Ok(z) => Some(z),
                Err(e) => {
                    self.err(z.span(), e.to_string());
                    return None;
                }
            },
        };
        let written = ri.addresses.get_ref();
        let addresses: Vec<At<IpNet>> = written.iter().filter_map(|a| self.net(a)).collect();
        if addresses.is_empty() && !written.is_empty() {
            return None;
        }
        Some(model::Interface {
            name: name.get_ref().clone(),
            origin: self.at.origin(name.span()),
            description: ri.description.clone(),
            addresses: self.at.at(addresses, ri.addresses.span()),
            security_groups: ri
                .security_groups
                .iter()
                .map(|s| self.at.spanned(s))
                .collect(),
            zone,
            place: self.interface_place(ri),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_in_characters() {
        let text = "a = 1\nbé = \"x\"\n";
        let start = text.find("\"x\"").unwrap();
        let at = Locator::new("f.toml", text);
        let d = Diagnostic::new(at.origin(start..start + 3), "bad").quoting(text);
        assert_eq!((d.line, d.column), (2, 6));
        let shown = d.to_string();
        assert!(shown.starts_with("f.toml:2:6: bad"), "{shown}");
        assert!(shown.contains("2 | bé = \"x\""), "{shown}");
        assert!(shown.ends_with("|      ^^^"), "{shown}");
    }

    #[test]
    fn span_past_end_is_clamped() {
        let d = Diagnostic::new(Locator::new("f", "x").origin(5..9), "m");
        assert_eq!(d.line, 1);
    }

    #[test]
    fn values_keep_their_positions_and_aliases_become_canonical() {
        let text = "[security_groups.sg-a]\ningress = [\n  { proto = -1, ports = \"-1/-1\", from = [\"10.0.0.0/8\", \"sg-a\"], action = \"drop\", icmp_type = -1 },\n]\n";
        let m = Model::from_toml(text, "p.toml").unwrap();
        let r = &m.security_groups[0].ingress[0];
        assert_eq!(r.origin.line(), 3);
        assert_eq!(r.proto, super::super::ProtoMatch::Any);
        assert_eq!(r.action, Action::Deny);
        assert_eq!(r.icmp_type, None);
        assert_eq!(
            r.ports.as_ref().unwrap().value,
            [super::super::PortRange::ALL]
        );
        assert_eq!(r.remote[1].value, Remote::Sg("sg-a".into()));
        assert_eq!(r.remote[1].origin.to_string(), "p.toml:3:56");
        assert_eq!(m.security_groups[0].origin.to_string(), "p.toml:1:18");
    }
}
