//! `sgplane explain`: why a new flow is allowed or denied, as data (for
//! `--json`) and as text. For a deny it names every blocking interface and
//! direction, the SGs evaluated, and the nearest misses: rules that would
//! have allowed the flow but for one field. Where a subnet has groups of its
//! own (Azure's subnet NSG, SPEC §9.2), each layer of an end is a decision of
//! its own, with its own nearest misses, and the deciding one names its
//! `layer`.

use std::fmt::Write as _;

use serde::Serialize;

use super::nacl::{AclDecision, NaclEvaluation, EPHEMERAL};
use super::reference::ends;
use super::*;

/// The field in which a rule misses a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Field {
    Protocol,
    Port,
    SourcePort,
    IcmpType,
    IcmpCode,
    /// The remote end: the source on ingress, the destination on egress.
    Source,
    Destination,
    /// The rule's `local` block.
    Local,
    /// The rule matches, but a deny rule decides first.
    Priority,
}

/// A rule that matches the flow on all fields but one.
#[derive(Debug, Clone, Serialize)]
pub struct NearMiss {
    pub rule: String,
    /// The (first) field that fails.
    pub field: Field,
    /// Every field that fails: one for a nearest miss; two when no rule comes
    /// within one field and the closest rules are shown instead.
    pub fields: Vec<Field>,
    /// What the rule allows, e.g. `allow tcp/443 from 0.0.0.0/0`.
    pub rule_allows: String,
    /// One sentence naming the field, e.g. `sg-web/ingress/0 allows tcp/443, packet is tcp/80`.
    pub message: String,
}

/// One interface's decision in one direction, by one of its layers.
#[derive(Debug, Clone, Serialize)]
pub struct DecisionReport {
    pub interface: String,
    pub direction: Direction,
    /// `interface` (its own groups) or `subnet` (its subnet's, SPEC §9.2).
    pub layer: Layer,
    /// The subnet whose groups judged, for the subnet layer.
    pub subnet: Option<String>,
    pub zone: Option<String>,
    pub security_groups: Vec<String>,
    pub rules_evaluated: usize,
    pub verdict: Verdict,
    pub reason: Reason,
    pub rule: Option<String>,
    pub rule_description: Option<String>,
    pub rule_summary: Option<String>,
    pub nearest_misses: Vec<NearMiss>,
    /// Whether this interface would track the flow (SPEC §9.3), when it
    /// allows it; `tracking` says why.
    pub tracked: Option<bool>,
    pub tracking: Option<String>,
}

/// The whole answer.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub flow: FlowReport,
    pub verdict: Verdict,
    pub reason: Reason,
    pub rule: Option<String>,
    pub interface: Option<String>,
    pub direction: Option<Direction>,
    /// The layer of the deciding decision (SPEC §9.2): `interface` or
    /// `subnet`; none for a network ACL's or `unknown-address`.
    pub layer: Option<Layer>,
    /// In the order the packet meets them: the source's egress (its own
    /// groups, then its subnet's), then the destination's ingress (its
    /// subnet's, then its own).
    pub decisions: Vec<DecisionReport>,
    /// Set when neither end is an interface.
    pub note: Option<String>,
    /// Whether an allowed flow takes a connection-table entry: some end
    /// tracks it (or neither end is an interface). `false`: every packet of
    /// it is judged by the rules (the engine's reason `untracked`; `reason`
    /// here stays the rules' `rule`, the decision being the same).
    pub tracked: Option<bool>,
    /// The network ACLs the request crosses (the source subnet's egress,
    /// the destination subnet's ingress), then those its reply crosses.
    pub network_acls: Vec<AclReport>,
}

/// One network ACL judging the request or its reply in one direction.
#[derive(Debug, Clone, Serialize)]
pub struct AclReport {
    /// `request` (the flow's packets) or `reply` (dst to src, to the
    /// client's port).
    pub leg: &'static str,
    pub subnet: String,
    pub network_acl: String,
    pub direction: Direction,
    pub rules_evaluated: usize,
    pub verdict: Verdict,
    /// `ACL/DIRECTION/RULE`, `*` for the implicit deny.
    pub rule: String,
    pub rule_summary: Option<String>,
    /// The reply's ports this ACL drops (the client's port, or those of
    /// the ephemeral range 1024-65535 when it is not known).
    pub dropped_ports: Option<String>,
    /// One sentence, e.g. `the reply would be dropped by acl-x/egress/* (port 40000 not allowed)`.
    pub message: String,
    pub nearest_misses: Vec<NearMiss>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FlowReport {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: String,
    pub sport: Option<u16>,
    pub dport: Option<u16>,
    pub icmp_type: Option<u8>,
    pub icmp_code: Option<u8>,
    pub zone: Option<String>,
    pub src_interface: Option<String>,
    pub dst_interface: Option<String>,
}

impl Serialize for Direction {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}
impl Serialize for Layer {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}
impl Serialize for Verdict {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}
impl Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The most nearest misses listed per decision.
const MAX_MISSES: usize = 12;

impl Policy {
    /// Explains the verdict of a new flow.
    pub fn explain(&self, flow: &Flow) -> Explanation {
        let e = self.evaluate(flow);
        let name = |i: Option<IfaceId>| i.map(|i| self.interface(i).name.clone());
        let deciding = e.deciding().copied();
        let acls = self.evaluate_nacls(flow);
        let mut network_acls: Vec<AclReport> = acls
            .decisions()
            .map(|d| self.acl_report(d, flow, "request", None))
            .collect();
        network_acls.extend(self.reply_reports(flow));
        let decisions: Vec<DecisionReport> = e.decisions().map(|d| self.report(d, flow)).collect();
        // Tracking is the interfaces' (their own layer's decisions).
        let tracked = (e.verdict == Verdict::Allow).then(|| {
            let own = || decisions.iter().filter(|d| d.layer == Layer::Interface);
            own().next().is_none() || own().any(|d| d.tracked != Some(false))
        });
        let note = (e.reason == Reason::UnknownAddress).then(|| {
            format!(
                "neither {} nor {} belongs to an interface of this policy{}; settings.unknown_address = \"{}\"",
                flow.src,
                flow.dst,
                flow.zone.map(|z| format!(" in {}", self.zone_label(z))).unwrap_or_default(),
                self.settings.unknown_address
            )
        });
        Explanation {
            flow: FlowReport {
                src: flow.src,
                dst: flow.dst,
                proto: flow.proto.to_string(),
                sport: flow.sport,
                dport: flow.dport,
                icmp_type: flow.icmp.map(|i| i.0),
                icmp_code: flow.icmp.map(|i| i.1),
                zone: flow.zone.map(|z| self.zone_label(z)),
                src_interface: name(self.interface_of(flow.src, flow.zone)),
                dst_interface: name(self.interface_of(flow.dst, flow.zone)),
            },
            verdict: e.verdict,
            reason: e.reason,
            rule: e.rule().map(|r| self.rule_name(r).to_string()),
            interface: deciding.map(|d| self.interface(d.interface).name.clone()),
            direction: deciding.map(|d| d.direction),
            layer: deciding.map(|d| d.layer),
            decisions,
            note,
            tracked,
            network_acls,
        }
        .judged_by_acls(self, &acls)
    }

    /// An ACL decision as a report; `dropped` names the reply ports it drops.
    fn acl_report(
        &self,
        d: &AclDecision,
        flow: &Flow,
        leg: &'static str,
        dropped: Option<String>,
    ) -> AclReport {
        let n = self.nacls().expect("a decision comes from an ACL");
        let acl = &n.acls[d.acl as usize];
        let rule = n.rule_name(d).to_string();
        let entry = d.entry.map(|i| &acl.entries(d.direction)[i as usize]);
        let message = match (leg, d.verdict, &dropped) {
            ("reply", Verdict::Deny, Some(p)) => {
                format!("the reply would be dropped by {rule} ({p} not allowed)")
            }
            (_, Verdict::Deny, _) => format!("the {leg} is dropped by {rule}"),
            (_, Verdict::Allow, _) => format!("the {leg} is allowed by {rule}"),
        };
        AclReport {
            leg,
            subnet: self.subnet_name(d.subnet).to_string(),
            network_acl: acl.name.clone(),
            direction: d.direction,
            rules_evaluated: acl.entries(d.direction).len(),
            verdict: d.verdict,
            rule,
            rule_summary: entry.map(|e| e.describe(d.direction)),
            dropped_ports: dropped,
            message,
            nearest_misses: if d.verdict == Verdict::Deny {
                self.acl_misses(d, flow)
            } else {
                Vec::new()
            },
        }
    }

    /// The ACL decisions the reply (dst to src, to the client's port)
    /// meets: the destination subnet's egress and the source subnet's
    /// ingress. Without `--sport` the client's port is any of the
    /// ephemeral range: every part of it an entry treats differently is
    /// tried, and the ports dropped are named.
    fn reply_reports(&self, flow: &Flow) -> Vec<AclReport> {
        let Some(n) = self.nacls() else {
            return Vec::new();
        };
        let mut reply = Flow::other(flow.dst, flow.src, flow.proto).in_zone(flow.zone);
        match flow.icmp {
            Some((8, _)) if flow.proto == IpProto::ICMP => reply.icmp = Some((0, 0)),
            Some((128, _)) if flow.proto == IpProto::ICMPV6 => reply.icmp = Some((129, 0)),
            Some(_) => return Vec::new(), // no reply to judge
            None => {}
        }
        reply.sport = flow.dport;
        let ports: Vec<PortRange> = match (flow.proto.has_ports(), flow.sport) {
            (false, _) => vec![],
            (true, Some(p)) => vec![PortRange { lo: p, hi: p }],
            (true, None) => segments(n, EPHEMERAL),
        };
        // (decision, its representative flow, the ports it drops)
        let mut out: Vec<(AclDecision, Flow, Vec<PortRange>)> = Vec::new();
        let mut note = |e: NaclEvaluation, f: Flow, r: Option<PortRange>| {
            for d in e.decisions() {
                let slot = out
                    .iter()
                    .position(|(x, _, _)| x.direction == d.direction && x.subnet == d.subnet);
                let i = match slot {
                    Some(i) => i,
                    None => {
                        out.push((*d, f, Vec::new()));
                        out.len() - 1
                    }
                };
                if d.verdict == Verdict::Deny {
                    if out[i].0.verdict == Verdict::Allow || out[i].2.is_empty() {
                        out[i].0 = *d;
                        out[i].1 = f;
                    }
                    out[i].2.extend(r);
                }
            }
        };
        if ports.is_empty() {
            note(self.evaluate_nacls(&reply), reply, None);
        }
        for r in ports {
            let mut f = reply;
            f.dport = Some(r.lo);
            note(self.evaluate_nacls(&f), f, Some(r));
        }
        out.into_iter()
            .map(|(d, f, dropped)| {
                let dropped = (d.verdict == Verdict::Deny).then(|| {
                    if dropped.is_empty() {
                        format!("{}", f.proto)
                    } else {
                        let set = PortSet::from_ranges(dropped);
                        let one =
                            set.ranges().len() == 1 && set.ranges()[0].lo == set.ranges()[0].hi;
                        format!("{} {set}", if one { "port" } else { "ports" })
                    }
                });
                self.acl_report(&d, &f, "reply", dropped)
            })
            .collect()
    }

    /// Allow entries of the denying ACL direction that miss the packet on
    /// one field, or that match it but come after the deny that decided.
    fn acl_misses(&self, d: &AclDecision, flow: &Flow) -> Vec<NearMiss> {
        let n = self.nacls().expect("a decision comes from an ACL");
        let acl = &n.acls[d.acl as usize];
        let entries = acl.entries(d.direction);
        let remote = ends(flow, d.direction).1;
        let decider = d.entry.map(|i| &entries[i as usize]);
        entries
            .iter()
            .filter(|e| e.action == Action::Allow)
            .filter_map(|e| {
                let mut failed = Vec::new();
                if !e.proto.matches(flow.proto) {
                    failed.push(Field::Protocol);
                } else {
                    if !e.ports.contains_opt(flow.dport) {
                        failed.push(Field::Port);
                    }
                    if e.icmp_type.is_some() && e.icmp_type != flow.icmp.map(|i| i.0) {
                        failed.push(Field::IcmpType);
                    }
                    if e.icmp_code.is_some() && e.icmp_code != flow.icmp.map(|i| i.1) {
                        failed.push(Field::IcmpCode);
                    }
                }
                if !e.remote.contains(&remote) {
                    failed.push(match d.direction {
                        Direction::Ingress => Field::Source,
                        Direction::Egress => Field::Destination,
                    });
                }
                if failed.len() > 1 {
                    return None;
                }
                let name = format!("{}/{}/{}", acl.name, d.direction, e.number);
                let what = e.describe(d.direction);
                let what = what.strip_prefix("allow ").unwrap_or(&what).to_string();
                let port = flow.dport.map_or("an unknown port".to_string(), |p| p.to_string());
                let field = failed.first().copied().unwrap_or(Field::Priority);
                let message = match field {
                    Field::Protocol => format!("{name} allows {what}, packet is {}", flow.proto),
                    Field::Port => format!("{name} allows {what}, packet is {}/{port}", flow.proto),
                    Field::IcmpType | Field::IcmpCode => format!(
                        "{name} allows {what}, packet is {} type {} code {}",
                        flow.proto,
                        flow.icmp.map_or("unknown".into(), |i| i.0.to_string()),
                        flow.icmp.map_or("unknown".into(), |i| i.1.to_string())
                    ),
                    Field::Source | Field::Destination => format!(
                        "{name} allows {what}, packet {} {remote} is not in it",
                        if field == Field::Source { "source" } else { "destination" }
                    ),
                    _ => match decider {
                        Some(x) => format!(
                            "{name} allows this packet, but {}/{}/{} (deny) comes first: the lowest rule number decides",
                            acl.name, d.direction, x.number
                        ),
                        None => format!("{name} allows this packet"),
                    },
                };
                Some(NearMiss {
                    rule: name,
                    field,
                    fields: if failed.is_empty() { vec![Field::Priority] } else { failed },
                    rule_allows: e.describe(d.direction),
                    message,
                })
            })
            .take(MAX_MISSES)
            .collect()
    }

    fn report(&self, d: &Decision, flow: &Flow) -> DecisionReport {
        let tracking = (d.verdict == Verdict::Allow && d.layer == Layer::Interface)
            .then(|| self.tracking_at(d.interface, d.direction, flow, d.rule));
        let iface = self.interface(d.interface);
        let rules = self.layer_rules(d.interface, d.layer, d.direction);
        let groups = self.layer_set(d.interface, d.layer).map_or(&[][..], |set| {
            &self.policy_sets[set as usize].security_groups[..]
        });
        DecisionReport {
            interface: iface.name.clone(),
            direction: d.direction,
            layer: d.layer,
            subnet: (d.layer == Layer::Subnet)
                .then(|| iface.place.subnet.as_ref().map(|s| s.value.clone()))
                .flatten(),
            zone: iface.zone.map(zone_name),
            security_groups: groups
                .iter()
                .map(|&g| self.security_groups[g as usize].name.clone())
                .collect(),
            rules_evaluated: rules.len(),
            verdict: d.verdict,
            reason: d.reason(),
            rule: d.rule.map(|r| self.rule_name(r).to_string()),
            rule_description: d.rule.and_then(|r| self.rule(r).description.clone()),
            rule_summary: d.rule.map(|r| self.describe_rule(r)),
            nearest_misses: if d.verdict == Verdict::Deny {
                self.nearest_misses(d, flow)
            } else {
                Vec::new()
            },
            tracked: tracking.map(|t| t.tracked()),
            tracking: tracking.map(|t| t.why(self)),
        }
    }

    /// Allow rules of the denying policy that fail on exactly one field, or that
    /// match but lose to a deny rule of higher (or equal) priority. When there
    /// are none, the rules that fail on two fields, naming both.
    fn nearest_misses(&self, d: &Decision, flow: &Flow) -> Vec<NearMiss> {
        let candidates: Vec<(RuleId, Vec<Field>)> = self
            .layer_rules(d.interface, d.layer, d.direction)
            .iter()
            .filter(|&&id| self.rule(id).action == Action::Allow)
            .map(|&id| (id, self.failed_fields(id, flow)))
            .filter(|(_, f)| f.len() <= 2)
            .collect();
        let within_one = candidates.iter().any(|(_, f)| f.len() <= 1);
        candidates
            .into_iter()
            .filter(|(_, f)| f.len() <= 1 || !within_one)
            .take(MAX_MISSES)
            .map(|(id, failed)| {
                let name = self.rule_name(id).to_string();
                let field = failed.first().copied().unwrap_or(Field::Priority);
                let message = match failed.as_slice() {
                    [_, _] => self.two_field_message(&name, id, &failed, flow),
                    _ => self.miss_message(&name, id, field, flow, d.rule),
                };
                let fields = if failed.is_empty() {
                    vec![Field::Priority]
                } else {
                    failed
                };
                NearMiss {
                    rule: name,
                    field,
                    fields,
                    rule_allows: self.describe_rule(id),
                    message,
                }
            })
            .collect()
    }

    fn two_field_message(&self, name: &str, id: RuleId, failed: &[Field], flow: &Flow) -> String {
        let what = self.describe_rule(id);
        let what = what.strip_prefix("allow ").unwrap_or(&what);
        let got: Vec<String> = failed
            .iter()
            .map(|&f| self.packet_field(f, flow, self.rule(id).direction))
            .collect();
        format!(
            "{name} allows {what}; packet differs in two fields: {}",
            got.join(" and ")
        )
    }

    /// ` (eni-x has sg-a, sg-b)` for an address that belongs to an interface.
    fn whose(&self, addr: IpAddr, zone: Option<ZoneId>) -> String {
        match self.interface_of(addr, zone) {
            Some(i) => {
                let iface = self.interface(i);
                let sgs: Vec<&str> = iface
                    .security_groups
                    .iter()
                    .map(|&g| self.security_groups[g as usize].name.as_str())
                    .collect();
                format!(
                    " ({} has {})",
                    iface.name,
                    if sgs.is_empty() {
                        "no SG".into()
                    } else {
                        sgs.join(", ")
                    }
                )
            }
            None => String::new(),
        }
    }

    /// How the packet looks in one field, e.g. `port 80` or `source 10.0.0.5`.
    fn packet_field(&self, f: Field, flow: &Flow, dir: Direction) -> String {
        let opt = |v: Option<u16>| v.map_or("unknown".to_string(), |p| p.to_string());
        let (local, remote) = ends(flow, dir);
        match f {
            Field::Protocol => format!("protocol {}", flow.proto),
            Field::Port => format!("port {}", opt(flow.dport)),
            Field::SourcePort => format!("source port {}", opt(flow.sport)),
            Field::IcmpType => format!(
                "icmp type {}",
                flow.icmp.map_or("unknown".into(), |i| i.0.to_string())
            ),
            Field::IcmpCode => format!(
                "icmp code {}",
                flow.icmp.map_or("unknown".into(), |i| i.1.to_string())
            ),
            Field::Source => format!("source {remote}{}", self.whose(remote, flow.zone)),
            Field::Destination => format!("destination {remote}{}", self.whose(remote, flow.zone)),
            Field::Local => format!("local address {local}"),
            Field::Priority => "priority".to_string(),
        }
    }

    /// The fields in which a rule fails to match a flow.
    pub fn failed_fields(&self, id: RuleId, flow: &Flow) -> Vec<Field> {
        let r = self.rule(id);
        let (local, remote) = ends(flow, r.direction);
        let mut f = Vec::new();
        if !r.proto.matches(flow.proto) {
            f.push(Field::Protocol);
        } else {
            if !r.ports.contains_opt(flow.dport) {
                f.push(Field::Port);
            }
            if !r.source_ports.contains_opt(flow.sport) {
                f.push(Field::SourcePort);
            }
            if r.icmp_type.is_some() && r.icmp_type != flow.icmp.map(|i| i.0) {
                f.push(Field::IcmpType);
            }
            if r.icmp_code.is_some() && r.icmp_code != flow.icmp.map(|i| i.1) {
                f.push(Field::IcmpCode);
            }
        }
        if r.local.is_some_and(|l| !l.contains(&local)) {
            f.push(Field::Local);
        }
        if !self.remote_matches(r, remote, flow.zone) {
            f.push(match r.direction {
                Direction::Ingress => Field::Source,
                Direction::Egress => Field::Destination,
            });
        }
        f
    }

    fn miss_message(
        &self,
        name: &str,
        id: RuleId,
        field: Field,
        flow: &Flow,
        decider: Option<RuleId>,
    ) -> String {
        let r = self.rule(id);
        let proto = |p: u8| IpProto(p).to_string();
        let port = |p: Option<u16>| p.map_or("an unknown port".to_string(), |p| p.to_string());
        let (_, remote) = ends(flow, r.direction);
        match field {
            Field::Protocol => format!("{name} allows {}, packet is {}", r.proto, flow.proto),
            Field::Port => format!(
                "{name} allows {}/{}, packet is {}/{}",
                r.proto,
                r.ports,
                flow.proto,
                port(flow.dport)
            ),
            Field::SourcePort => format!(
                "{name} allows source ports {}, packet's source port is {}",
                r.source_ports,
                port(flow.sport)
            ),
            Field::IcmpType => format!(
                "{name} allows {} type {}, packet is {} type {}",
                r.proto,
                r.icmp_type.map_or("any".into(), |t| t.to_string()),
                proto(flow.proto.0),
                flow.icmp.map_or("unknown".into(), |i| i.0.to_string())
            ),
            Field::IcmpCode => format!(
                "{name} allows {} code {}, packet is {} code {}",
                r.proto,
                r.icmp_code.map_or("any".into(), |t| t.to_string()),
                proto(flow.proto.0),
                flow.icmp.map_or("unknown".into(), |i| i.1.to_string())
            ),
            Field::Source | Field::Destination => {
                let word = if field == Field::Source {
                    "source"
                } else {
                    "destination"
                };
                let whose = self.whose(remote, flow.zone);
                let what = self.describe_rule(id);
                let what = what.strip_prefix("allow ").unwrap_or(&what);
                format!("{name} allows {what}, packet {word} {remote}{whose} is not in it")
            }
            Field::Local => format!(
                "{name} allows local addresses in {}, packet's local address is {}",
                r.local.map(|l| l.to_string()).unwrap_or_default(),
                ends(flow, r.direction).0
            ),
            Field::Priority => match decider {
                Some(dr) => {
                    let d = self.rule(dr);
                    format!(
                        "{name} allows this flow, but {} (deny, priority {}) decides first{}",
                        self.rule_name(dr),
                        d.priority,
                        if d.priority == r.priority {
                            ": at equal priority deny wins"
                        } else {
                            ""
                        }
                    )
                }
                None => format!("{name} allows this flow"),
            },
        }
    }
}

/// `range` cut where any ACL entry's ports begin or end, so that every
/// entry treats all ports of one piece alike.
fn segments(n: &super::nacl::Nacls, range: PortRange) -> Vec<PortRange> {
    let mut cuts: Vec<u32> = vec![u32::from(range.lo), u32::from(range.hi) + 1];
    for acl in &n.acls {
        for e in acl.ingress.iter().chain(&acl.egress) {
            for r in e.ports.ranges() {
                cuts.push(u32::from(r.lo));
                cuts.push(u32::from(r.hi) + 1);
            }
        }
    }
    cuts.retain(|&c| c >= u32::from(range.lo) && c <= u32::from(range.hi) + 1);
    cuts.sort_unstable();
    cuts.dedup();
    cuts.windows(2)
        .map(|w| PortRange {
            lo: w[0] as u16,
            hi: (w[1] - 1) as u16,
        })
        .collect()
}

impl Explanation {
    /// NACLs are judged before the groups: a request an ACL drops is
    /// denied `nacl` by that ACL's rule, naming its subnet.
    fn judged_by_acls(mut self, policy: &Policy, acls: &NaclEvaluation) -> Explanation {
        if let (Some(d), Some(n)) = (acls.denied(), policy.nacls()) {
            self.verdict = Verdict::Deny;
            self.reason = Reason::Nacl;
            self.rule = Some(n.rule_name(d).to_string());
            self.interface = Some(policy.subnet_name(d.subnet).to_string());
            self.direction = Some(d.direction);
            self.layer = None;
        }
        self
    }

    /// Whether some decision is a subnet layer's (SPEC §9.2): then every
    /// decision names its layer.
    fn layered(&self) -> bool {
        self.decisions.iter().any(|d| d.layer == Layer::Subnet)
    }

    /// `, layer subnet` after the deciding interface and direction, when
    /// layers are in play.
    fn layer_words(&self) -> String {
        match self.layer {
            Some(l) if self.layered() => format!(", layer {l}"),
            _ => String::new(),
        }
    }

    /// Human-readable text, one decision per paragraph.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let f = &self.flow;
        let ports = match (f.sport, f.dport) {
            (_, Some(d)) => format!(
                "{}:{} -> {}:{}",
                f.src,
                f.sport.map_or("*".into(), |p| p.to_string()),
                f.dst,
                d
            ),
            _ => format!("{} -> {}", f.src, f.dst),
        };
        let icmp = f
            .icmp_type
            .map(|t| {
                format!(
                    " type {t} code {}",
                    f.icmp_code.map_or("*".into(), |c| c.to_string())
                )
            })
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "flow:    {} {ports}{icmp}{}",
            f.proto,
            f.zone
                .as_ref()
                .map(|z| if z.starts_with("vpce-") {
                    format!(" (zone {z})")
                } else {
                    format!(" (in {z})")
                })
                .unwrap_or_default()
        );
        let side = |i: &Option<String>| i.clone().unwrap_or_else(|| "no interface".into());
        let _ = writeln!(
            s,
            "         source {}, destination {}",
            side(&f.src_interface),
            side(&f.dst_interface)
        );
        let verdict = match self.verdict {
            Verdict::Allow => "ALLOW",
            Verdict::Deny => "DENY",
        };
        let by = match (&self.rule, &self.interface, &self.direction) {
            (Some(r), Some(i), Some(d)) if self.reason == Reason::Nacl => {
                format!(" by network ACL rule {r} (subnet {i} {d})")
            }
            (Some(r), Some(i), Some(d)) => format!(" by {r} ({i} {d}{})", self.layer_words()),
            (None, Some(i), Some(d)) => {
                format!(": no rule of {i} {d}{} matches", self.layer_words())
            }
            _ => String::new(),
        };
        let _ = writeln!(s, "verdict: {verdict} ({}){by}", self.reason);
        if let Some(n) = &self.note {
            let _ = writeln!(s, "         {n}");
        }
        for d in &self.decisions {
            let _ = writeln!(s);
            let sgs = if d.security_groups.is_empty() {
                "no security groups".into()
            } else {
                d.security_groups.join(", ")
            };
            let layer = match (&d.layer, &d.subnet) {
                (Layer::Subnet, Some(sn)) => format!(", layer subnet ({sn})"),
                (Layer::Subnet, None) => ", layer subnet".to_string(),
                (Layer::Interface, _) if self.layered() => ", layer interface".to_string(),
                _ => String::new(),
            };
            let _ = writeln!(
                s,
                "{} {}{layer} [{sgs}]: {} rules evaluated",
                d.interface, d.direction, d.rules_evaluated
            );
            match (&d.rule, d.verdict) {
                (Some(r), v) => {
                    let _ = writeln!(
                        s,
                        "  {} by {r}: {}",
                        v.as_str().to_uppercase(),
                        d.rule_summary.clone().unwrap_or_default()
                    );
                    if let Some(desc) = &d.rule_description {
                        let _ = writeln!(s, "    \"{desc}\"");
                    }
                    if let (Some(t), Some(why)) = (d.tracked, &d.tracking) {
                        let word = if t { "tracked" } else { "untracked" };
                        let _ = writeln!(s, "  {word} here: {why}");
                    }
                }
                (None, _) => {
                    let _ = writeln!(s, "  DENY: no rule matches");
                }
            }
            if d.verdict == Verdict::Deny {
                if d.nearest_misses.is_empty() {
                    let _ = writeln!(s, "  no allow rule comes within two fields of this flow");
                } else {
                    let close = d.nearest_misses.iter().all(|m| m.fields.len() <= 1);
                    let _ = writeln!(
                        s,
                        "  {}:",
                        if close {
                            "nearest misses"
                        } else {
                            "no allow rule comes within one field; closest rules"
                        }
                    );
                    for m in &d.nearest_misses {
                        let _ = writeln!(s, "    - {}", m.message);
                    }
                }
            }
        }
        if !self.network_acls.is_empty() {
            let _ = writeln!(s, "\nnetwork ACLs (stateless, judged before the groups):");
        }
        for a in &self.network_acls {
            let _ = writeln!(
                s,
                "  {} {} of {} ({}), {} entries: {} by {}{}",
                a.leg,
                a.direction,
                a.subnet,
                a.network_acl,
                a.rules_evaluated,
                a.verdict.as_str().to_uppercase(),
                a.rule,
                a.rule_summary
                    .as_ref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            );
            if a.verdict == Verdict::Deny {
                let _ = writeln!(s, "    {}", a.message);
                for m in &a.nearest_misses {
                    let _ = writeln!(s, "    - {}", m.message);
                }
            }
        }
        s
    }
}
