//! Fixes: changes to the model that clear a blocking hop, each checked by
//! compiling the changed model and running the same analysis again. The
//! search is greedy: the first candidate of the blocking hop that moves
//! the block on (or removes it) is kept, then the next block is fixed the
//! same way, until the path is reachable or a block has no checked fix.

use crate::policy::model::{self, At, Model};
use crate::policy::{Direction, IpProto, Policy, ProtoMatch};

use super::*;

/// The most changes one answer proposes.
const MAX_FIXES: usize = 6;

/// Searches the fixes of `trace` (the analysis of `q` on `model`) and
/// returns them, each with what re-running the analysis said.
pub fn search(model: &Model, q: &Query, trace: &Trace) -> Vec<Fix> {
    let mut fixes = Vec::new();
    let mut current = model.clone();
    let mut blocking = trace.blocking().cloned();
    let aws = model.imported.as_ref().is_some_and(|i| i.provider == "aws");
    while let Some(block) = blocking.take() {
        if fixes.len() >= MAX_FIXES {
            break;
        }
        let mut accepted = None;
        for change in &block.candidates {
            let mut m = current.clone();
            if !apply(&mut m, change) {
                continue;
            }
            let Ok(policy) = Policy::compile(&m) else {
                continue;
            };
            let Ok(again) = analyse(&policy, q) else {
                continue;
            };
            let same_block = again.blocking().is_some_and(|h| {
                h.component == block.component
                    && h.kind == block.kind
                    && h.direction == block.direction
            });
            if same_block {
                continue;
            }
            accepted = Some((m, change.clone(), again));
            break;
        }
        let Some((m, change, again)) = accepted else {
            break;
        };
        let verified = match again.blocking() {
            None => "checked: with this change the path is reachable".to_string(),
            Some(h) => format!(
                "checked: with this change the path passes {}, then is blocked at {} ({})",
                block.component,
                h.component,
                h.codes.first().copied().unwrap_or("blocked")
            ),
        };
        fixes.push(Fix {
            change: sentence(&change),
            component: block.component.clone(),
            toml: toml(&change),
            aws: aws.then(|| aws_command(&m, &change)),
            verified,
            raw: change,
        });
        current = m;
        blocking = again.blocking().cloned();
    }
    fixes
}

/// Applies a change to a model; false when what it names is not there.
pub fn apply(m: &mut Model, change: &Change) -> bool {
    match change {
        Change::AddSgRule {
            sg,
            direction,
            proto,
            ports,
            icmp,
            remote,
        } => {
            let Some(g) = m.security_groups.iter_mut().find(|g| &g.name == sg) else {
                return false;
            };
            let Ok(r) = remote.parse::<model::Remote>() else {
                return false;
            };
            let mut rule = model::Rule::new(ProtoMatch::Is(*proto), vec![At::bare(r)]);
            rule.ports = ports.map(|p| At::bare(vec![p]));
            if let Some((t, c)) = icmp {
                rule.icmp_type = Some(At::bare(i64::from(*t)));
                rule.icmp_code = Some(At::bare(i64::from(*c)));
            }
            rule.description = Some("added by sgplane path".into());
            match direction {
                Direction::Ingress => g.ingress.push(rule),
                Direction::Egress => g.egress.push(rule),
            }
            true
        }
        Change::AddAclEntry {
            acl,
            direction,
            number,
            proto,
            ports,
            icmp,
            remote,
        } => {
            let Some(a) = m.network_acls.iter_mut().find(|a| &a.name == acl) else {
                return false;
            };
            let entry = model::AclRule {
                origin: model::Origin::None,
                rule: At::bare(i64::from(*number)),
                proto: ProtoMatch::Is(*proto),
                ports: ports.map(|p| At::bare(vec![p])),
                icmp_type: icmp.map(|(t, _)| At::bare(i64::from(t))),
                icmp_code: icmp.map(|(_, c)| At::bare(i64::from(c))),
                remote: At::bare(*remote),
                action: crate::policy::Action::Allow,
            };
            match direction {
                Direction::Ingress => a.ingress.push(entry),
                Direction::Egress => a.egress.push(entry),
            }
            true
        }
        Change::CrossZone { lb } => match m.load_balancers.iter_mut().find(|l| &l.name == lb) {
            Some(l) => {
                l.cross_zone = Some(true);
                true
            }
            None => false,
        },
        Change::PrivateLinkEnforcementOff { lb } => {
            match m.load_balancers.iter_mut().find(|l| &l.name == lb) {
                Some(l) => {
                    l.enforce_inbound_rules_on_privatelink = Some(false);
                    true
                }
                None => false,
            }
        }
    }
}

fn what(proto: IpProto, ports: &Option<PortRange>, icmp: &Option<(u8, u8)>) -> String {
    match (ports, icmp) {
        (Some(p), _) => format!("{proto}/{p}"),
        (None, Some((t, c))) => format!("{proto} type {t} code {c}"),
        _ => proto.to_string(),
    }
}

/// The change in one sentence.
pub fn sentence(c: &Change) -> String {
    match c {
        Change::AddSgRule {
            sg,
            direction,
            proto,
            ports,
            icmp,
            remote,
        } => {
            let word = if *direction == Direction::Ingress { "from" } else { "to" };
            format!(
                "add an {direction} rule to {sg}: allow {} {word} {remote}",
                what(*proto, ports, icmp)
            )
        }
        Change::AddAclEntry {
            acl,
            direction,
            number,
            proto,
            ports,
            icmp,
            remote,
        } => {
            let word = if *direction == Direction::Ingress { "from" } else { "to" };
            format!(
                "add {direction} entry {number} to {acl}: allow {} {word} {remote}",
                what(*proto, ports, icmp)
            )
        }
        Change::CrossZone { lb } => format!("turn on cross-zone load balancing on {lb}"),
        Change::PrivateLinkEnforcementOff { lb } => format!(
            "stop enforcing {lb}'s inbound rules on PrivateLink traffic (enforce_inbound_rules_on_privatelink = false)"
        ),
    }
}

fn toml_fields(proto: IpProto, ports: &Option<PortRange>, icmp: &Option<(u8, u8)>) -> String {
    let mut s = format!("proto = \"{proto}\"");
    if let Some(p) = ports {
        s.push_str(&format!(", ports = \"{p}\""));
    }
    if let Some((t, c)) = icmp {
        s.push_str(&format!(", icmp_type = {t}, icmp_code = {c}"));
    }
    s
}

/// The policy lines of a change (SPEC §1, §6).
pub fn toml(c: &Change) -> String {
    match c {
        Change::AddSgRule {
            sg,
            direction,
            proto,
            ports,
            icmp,
            remote,
        } => {
            let word = if *direction == Direction::Ingress {
                "from"
            } else {
                "to"
            };
            format!(
                "# [security_groups.{sg}] {direction}: add\n{{ {}, {word} = \"{remote}\" }},",
                toml_fields(*proto, ports, icmp)
            )
        }
        Change::AddAclEntry {
            acl,
            direction,
            number,
            proto,
            ports,
            icmp,
            remote,
        } => {
            let word = if *direction == Direction::Ingress {
                "from"
            } else {
                "to"
            };
            format!(
                "# [network_acls.{acl}] {direction}: add\n{{ rule = {number}, {}, {word} = \"{remote}\", action = \"allow\" }},",
                toml_fields(*proto, ports, icmp)
            )
        }
        Change::CrossZone { lb } => format!("[load_balancers.{lb}]\ncross_zone = true"),
        Change::PrivateLinkEnforcementOff { lb } => {
            format!("[load_balancers.{lb}]\nenforce_inbound_rules_on_privatelink = false")
        }
    }
}

/// The AWS CLI command that makes the change.
pub fn aws_command(m: &Model, c: &Change) -> String {
    let lb_arn = |lb: &str| {
        m.load_balancers
            .iter()
            .find(|l| l.name == lb)
            .and_then(|l| l.arn.clone())
            .unwrap_or_else(|| lb.to_string())
    };
    match c {
        Change::AddSgRule {
            sg,
            direction,
            proto,
            ports,
            icmp,
            remote,
        } => {
            let (lo, hi) = match (ports, icmp) {
                (Some(p), _) => (i32::from(p.lo), i32::from(p.hi)),
                (None, Some((t, c))) => (i32::from(*t), i32::from(*c)),
                _ => (-1, -1),
            };
            let source = if remote.starts_with("sg-") {
                format!("UserIdGroupPairs=[{{GroupId={remote}}}]")
            } else if remote.contains(':') {
                format!("Ipv6Ranges=[{{CidrIpv6={remote}}}]")
            } else {
                format!("IpRanges=[{{CidrIp={remote}}}]")
            };
            let verb = if *direction == Direction::Ingress { "ingress" } else { "egress" };
            format!(
                "aws ec2 authorize-security-group-{verb} --group-id {sg} --ip-permissions 'IpProtocol={},FromPort={lo},ToPort={hi},{source}'",
                aws_proto(*proto)
            )
        }
        Change::AddAclEntry {
            acl,
            direction,
            number,
            proto,
            ports,
            icmp,
            remote,
        } => {
            let mut s = format!(
                "aws ec2 create-network-acl-entry --network-acl-id {acl} --{direction} --rule-number {number} --protocol {}",
                proto.0
            );
            if let Some(p) = ports {
                s.push_str(&format!(" --port-range From={},To={}", p.lo, p.hi));
            }
            if let Some((t, c)) = icmp {
                s.push_str(&format!(" --icmp-type-code Type={t},Code={c}"));
            }
            let block = if remote.addr().is_ipv6() { "--ipv6-cidr-block" } else { "--cidr-block" };
            s.push_str(&format!(" {block} {remote} --rule-action allow"));
            s
        }
        Change::CrossZone { lb } => format!(
            "aws elbv2 modify-load-balancer-attributes --load-balancer-arn {} --attributes Key=load_balancing.cross_zone.enabled,Value=true",
            lb_arn(lb)
        ),
        Change::PrivateLinkEnforcementOff { lb } => {
            let sgs = m
                .load_balancers
                .iter()
                .find(|l| &l.name == lb)
                .map(|l| {
                    l.security_groups
                        .iter()
                        .map(|g| g.value.clone())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            format!(
                "aws elbv2 set-security-groups --load-balancer-arn {} --security-groups {sgs} --enforce-security-group-inbound-rules-on-private-link-traffic off",
                lb_arn(lb)
            )
        }
    }
}

fn aws_proto(p: IpProto) -> String {
    match p {
        IpProto::TCP => "tcp".into(),
        IpProto::UDP => "udp".into(),
        IpProto::ICMP => "icmp".into(),
        IpProto::ICMPV6 => "icmpv6".into(),
        other => other.0.to_string(),
    }
}
