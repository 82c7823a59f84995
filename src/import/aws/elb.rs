//! ELBv2: load balancers, listeners, target groups, target health and
//! attributes, and the ENIs of each load balancer's nodes. A load balancer
//! is named by its name; two with the same name (other regions or
//! accounts) are told apart by the last segment of their ARNs. Classic
//! load balancers are skipped.

use std::collections::BTreeMap;

use super::recognise::{Found, Inputs};
use super::{at_int, at_str, at_strings, string, Build};
use crate::import::json::Node;
use crate::import::ImportError;
use crate::policy::model::{At, Listener, LoadBalancer, Target, TargetGroup};

pub(super) fn convert(b: &mut Build, inputs: &Inputs) -> Result<(), ImportError> {
    for f in &inputs.classic_load_balancers {
        let name = f.node.str("LoadBalancerName")?.unwrap_or("?");
        b.skip(
            name,
            f.node.origin(),
            "a classic load balancer: sgplane reads ELBv2 (application, network, gateway) only",
        );
    }
    b.lb_names = names(
        &inputs.load_balancers,
        "LoadBalancerArn",
        "LoadBalancerName",
    )?;
    b.tg_names = names(&inputs.target_groups, "TargetGroupArn", "TargetGroupName")?;
    for f in &inputs.load_balancers {
        load_balancer(b, &f.node)?;
    }
    for f in &inputs.target_groups {
        target_group(b, &f.node)?;
    }
    for o in &inputs.listeners {
        for l in &o.items {
            listener(b, o.owner.as_deref(), l)?;
        }
    }
    for o in &inputs.target_health {
        let Some(tg) = o.owner.as_deref().and_then(|a| b.tg_names.get(a)).cloned() else {
            b.skip(
                o.owner.as_deref().unwrap_or(&o.at.file),
                o.at.origin(),
                "target health of a target group that is not in the input",
            );
            continue;
        };
        for t in &o.items {
            let target = target(t)?;
            if let Some(g) = b.target_groups.get_mut(&tg) {
                if !g
                    .targets
                    .iter()
                    .any(|x| x.id.value == target.id.value && x.port == target.port)
                {
                    g.targets.push(target);
                }
            }
        }
    }
    for o in &inputs.attributes {
        attributes(b, o.owner.as_deref(), &o.at, &o.items)?;
    }
    link_interfaces(b);
    Ok(())
}

/// Model names by ARN: the resource's name, or on a clash its name and the
/// ARN's last segment.
fn names(
    list: &[Found],
    arn_key: &str,
    name_key: &str,
) -> Result<BTreeMap<String, String>, ImportError> {
    let mut by_arn: BTreeMap<String, String> = BTreeMap::new();
    for f in list {
        by_arn.insert(
            f.node.need_str(arn_key)?.to_string(),
            f.node.need_str(name_key)?.to_string(),
        );
    }
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for name in by_arn.values() {
        *count.entry(name.as_str()).or_default() += 1;
    }
    let clashing: Vec<String> = count
        .into_iter()
        .filter(|(_, c)| *c > 1)
        .map(|(n, _)| n.to_string())
        .collect();
    for (arn, name) in by_arn.iter_mut() {
        if clashing.contains(name) {
            let last = arn.rsplit('/').next().unwrap_or(arn);
            *name = format!("{name}-{last}");
        }
    }
    Ok(by_arn)
}

fn load_balancer(b: &mut Build, n: &Node) -> Result<(), ImportError> {
    let arn = n.need_str("LoadBalancerArn")?;
    let name = b.lb_names[arn].clone();
    if b.load_balancers.contains_key(&name) {
        return Ok(());
    }
    let kind = at_str(n, "Type")?.unwrap_or_else(|| At::new("application".into(), n.origin()));
    let mut zones = Vec::new();
    for z in n.array("AvailabilityZones")? {
        if let Some(zone) = string(&z, "ZoneName")? {
            zones.push(zone);
        }
    }
    let enforce = match n.str("EnforceSecurityGroupInboundRulesOnPrivateLinkTraffic")? {
        Some("on") => Some(true),
        Some("off") => Some(false),
        _ => None,
    };
    let security_groups = at_strings(n, "SecurityGroups")?;
    for g in &security_groups {
        b.note_group(crate::policy::model::ExternalGroup {
            name: g.value.clone(),
            origin: g.origin.clone(),
            vpc: string(n, "VpcId")?,
            ..Default::default()
        });
    }
    let lb = LoadBalancer {
        name: name.clone(),
        origin: n.origin(),
        kind,
        scheme: at_str(n, "Scheme")?,
        vpc: at_str(n, "VpcId")?,
        interfaces: Vec::new(),
        security_groups,
        cross_zone: None,
        enforce_inbound_rules_on_privatelink: enforce,
        listeners: Vec::new(),
        dns_name: string(n, "DNSName")?,
        arn: Some(arn.to_string()),
        zones,
    };
    b.load_balancers.insert(name, lb);
    Ok(())
}

fn target_group(b: &mut Build, n: &Node) -> Result<(), ImportError> {
    let arn = n.need_str("TargetGroupArn")?;
    let name = b.tg_names[arn].clone();
    if b.target_groups.contains_key(&name) {
        return Ok(());
    }
    let tg = TargetGroup {
        name: name.clone(),
        origin: n.origin(),
        proto: at_str(n, "Protocol")?.map(|p| At::new(p.value.to_ascii_lowercase(), p.origin)),
        port: at_int(n, "Port")?,
        vpc: at_str(n, "VpcId")?,
        target_type: string(n, "TargetType")?,
        preserve_client_ip: None,
        health_check_port: string(n, "HealthCheckPort")?,
        targets: Vec::new(),
        arn: Some(arn.to_string()),
    };
    b.target_groups.insert(name, tg);
    Ok(())
}

/// A target group's model name from its ARN: the group's when it is in the
/// input, else the name in the ARN (`…:targetgroup/NAME/ID`).
fn tg_name(b: &Build, arn: &str) -> String {
    if let Some(n) = b.tg_names.get(arn) {
        return n.clone();
    }
    arn.split("targetgroup/")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .unwrap_or(arn)
        .to_string()
}

fn listener(b: &mut Build, owner: Option<&str>, n: &Node) -> Result<(), ImportError> {
    let arn = match n.str("LoadBalancerArn")? {
        Some(a) => a.to_string(),
        None => match owner {
            Some(o) => o.to_string(),
            None => {
                b.skip(
                    n.str("ListenerArn")?.unwrap_or(&n.file),
                    n.origin(),
                    "a listener whose load balancer is not named",
                );
                return Ok(());
            }
        },
    };
    let Some(lb_name) = b.lb_names.get(&arn).cloned() else {
        b.skip(
            &arn,
            n.origin(),
            "a listener of a load balancer not in the input",
        );
        return Ok(());
    };
    let mut groups: Vec<At<String>> = Vec::new();
    for a in n.array("DefaultActions")? {
        if let Some(tg) = at_str(&a, "TargetGroupArn")? {
            groups.push(tg);
        } else if let Some(fc) = a.get("ForwardConfig") {
            for t in fc.array("TargetGroups")? {
                groups.extend(at_str(&t, "TargetGroupArn")?);
            }
        }
    }
    groups.dedup_by(|a, b| a.value == b.value);
    let id = n.str("ListenerArn")?.unwrap_or(&arn).to_string();
    for extra in groups.iter().skip(1) {
        b.skip(
            &id,
            extra.origin.clone(),
            format!(
                "a second target group ({}) of a weighted forward: only the first is kept",
                extra.value
            ),
        );
    }
    let target_group = groups
        .into_iter()
        .next()
        .map(|g| At::new(tg_name(b, &g.value), g.origin));
    let proto = at_str(n, "Protocol")?
        .map(|p| At::new(p.value.to_ascii_lowercase(), p.origin))
        .unwrap_or_else(|| At::new("geneve".into(), n.origin()));
    let l = Listener {
        origin: n.origin(),
        proto,
        port: at_int(n, "Port")?,
        target_group,
    };
    if let Some(lb) = b.load_balancers.get_mut(&lb_name) {
        if !lb
            .listeners
            .iter()
            .any(|x| x.proto.value == l.proto.value && x.port == l.port)
        {
            lb.listeners.push(l);
            lb.listeners
                .sort_by_key(|x| x.port.as_ref().map(|p| p.value));
        }
    }
    Ok(())
}

fn target(n: &Node) -> Result<Target, ImportError> {
    let t = n.need("Target")?;
    let id = t.need("Id")?;
    Ok(Target {
        origin: n.origin(),
        id: At::new(id.as_str()?.to_string(), id.origin()),
        port: at_int(&t, "Port")?,
        az: string(&t, "AvailabilityZone")?,
        health: match n.get("TargetHealth") {
            Some(h) => string(&h, "State")?,
            None => None,
        },
    })
}

/// `describe-load-balancer-attributes` and
/// `describe-target-group-attributes`: the owner's ARN says which.
fn attributes(
    b: &mut Build,
    owner: Option<&str>,
    at: &Node,
    items: &[Node],
) -> Result<(), ImportError> {
    let Some(arn) = owner else {
        b.skip(
            &at.file,
            at.origin(),
            "attributes whose owner is not named by a wrapper or the file's name",
        );
        return Ok(());
    };
    for a in items {
        let key = a.need_str("Key")?;
        let value = a.str("Value")?.map(|v| v == "true");
        if let Some(name) = b.lb_names.get(arn) {
            if key == "load_balancing.cross_zone.enabled" {
                if let Some(lb) = b.load_balancers.get_mut(name) {
                    lb.cross_zone = value;
                }
            }
        } else if let Some(name) = b.tg_names.get(arn) {
            if key == "preserve_client_ip.enabled" {
                if let Some(tg) = b.target_groups.get_mut(name) {
                    tg.preserve_client_ip = value;
                }
            }
        } else {
            b.skip(
                arn,
                at.origin(),
                "attributes of a resource not in the input",
            );
            return Ok(());
        }
    }
    Ok(())
}

/// Each ENI whose description is `ELB app/NAME/ID` (or `net/`, `gwy/`)
/// joins the load balancer whose ARN ends so.
fn link_interfaces(b: &mut Build) {
    let enis = std::mem::take(&mut b.lb_enis);
    for (eni, key) in enis {
        let suffix = format!("loadbalancer/{key}");
        let found = b
            .load_balancers
            .values_mut()
            .find(|lb| lb.arn.as_deref().is_some_and(|a| a.ends_with(&suffix)));
        if let Some(lb) = found {
            if !lb.interfaces.iter().any(|i| i.value == eni) {
                let origin = b
                    .interfaces
                    .get(&eni)
                    .map(|i| i.origin.clone())
                    .unwrap_or_default();
                lb.interfaces.push(At::new(eni, origin));
                lb.interfaces.sort_by(|x, y| x.value.cmp(&y.value));
            }
        }
    }
}
