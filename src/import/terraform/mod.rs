//! Terraform's `terraform show -json` of a plan or a state, read as AWS
//! resources (SPEC §7), so that a change is checked before it is applied.
//!
//! [`doc`] indexes the document (resources of `planned_values` or `values`,
//! modules walked recursively, what is unknown until apply, the
//! configuration's references) and gives every resource a model id: its own
//! or a placeholder from its address (`sg-tf-web`). [`block`] reads an
//! attribute as it will be after apply. [`sg`] turns groups and rules into
//! the model, [`topology`] the rest. The plan's result is what counts: a
//! resource the plan deletes is not in the model, and is listed as skipped.

mod block;
mod doc;
mod sg;
mod topology;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use serde_json::Value;

use self::doc::{Doc, Got, Resource};
use super::{Import, ImportError, Skipped};
use crate::policy::model::{ExternalGroup, Imported, Model, Origin, PrefixList, Remote};

/// Whether `v` is `terraform show -json` output: `format_version` and a
/// plan's `planned_values` or a state's `values`.
pub fn is_terraform(v: &Value) -> bool {
    v.get("format_version").is_some_and(Value::is_string)
        && (v.get("planned_values").is_some_and(Value::is_object)
            || v.get("values").is_some_and(Value::is_object))
}

/// Reads `terraform show -json` of a plan or a state (`file` names it in
/// messages and origins).
pub fn import_value(v: &Value, file: &str) -> Result<Import, ImportError> {
    let doc = Doc::read(v, file)?;
    let mut out = Out {
        model: Model {
            source: file.to_string(),
            imported: Some(Imported {
                provider: "aws".into(),
                inputs: vec![file.to_string()],
            }),
            ..Model::default()
        },
        skipped: Vec::new(),
    };
    sg::import(&doc, &mut out)?;
    topology::import(&doc, &mut out)?;
    not_imported(&doc, &mut out)?;
    references(&mut out.model);
    super::sort_by_id(&mut out.model);
    Ok(Import {
        model: out.model,
        skipped: out.skipped,
    })
}

/// What is being built.
struct Out {
    pub model: Model,
    pub skipped: Vec<Skipped>,
}

impl Out {
    fn skip(&mut self, id: &str, origin: Origin, why: impl Into<String>) {
        self.skipped.push(Skipped {
            id: id.to_string(),
            origin,
            why: why.into(),
        });
    }

    /// A value, or `None` with the reason listed as skipped.
    fn got<T>(&mut self, r: &Resource, v: Got<T>) -> Option<T> {
        match v {
            Ok(v) => Some(v),
            Err(why) => {
                self.skip(&r.address, r.values.origin(), why);
                None
            }
        }
    }
}

/// Resource types the importer reads.
const READ: &[&str] = &[
    "aws_security_group",
    "aws_security_group_rule",
    "aws_vpc_security_group_ingress_rule",
    "aws_vpc_security_group_egress_rule",
    "aws_vpc",
    "aws_subnet",
    "aws_network_interface",
    "aws_network_interface_sg_attachment",
    "aws_instance",
    "aws_network_acl",
    "aws_network_acl_rule",
    "aws_network_acl_association",
    "aws_lb",
    "aws_alb",
    "aws_lb_listener",
    "aws_alb_listener",
    "aws_lb_target_group",
    "aws_alb_target_group",
    "aws_lb_target_group_attachment",
    "aws_alb_target_group_attachment",
    "aws_vpc_endpoint",
    "aws_route_table",
    "aws_route_table_association",
    "aws_route",
    "aws_internet_gateway",
    "aws_vpc_peering_connection",
    "aws_ec2_managed_prefix_list",
    "aws_ec2_managed_prefix_list_entry",
];

/// Network resources whose absence changes what the model means: a data
/// source of one of these, or a managed one the importer does not read, is
/// listed; other resources (buckets, roles, …) do not touch the network
/// model and are listed only when managed.
fn is_network(kind: &str) -> bool {
    READ.contains(&kind)
        || [
            "aws_default_security_group",
            "aws_default_network_acl",
            "aws_default_route_table",
            "aws_default_vpc",
            "aws_default_subnet",
            "aws_nat_gateway",
            "aws_ec2_transit_gateway",
            "aws_lb_listener_rule",
            "aws_vpc_ipv4_cidr_block_association",
            "aws_vpc_ipv6_cidr_block_association",
            "aws_vpc_endpoint_service",
            "aws_prefix_list",
            "aws_security_groups",
            "aws_network_interfaces",
            "aws_subnets",
            "aws_instances",
        ]
        .contains(&kind)
}

fn not_imported(doc: &Doc, out: &mut Out) -> Result<(), ImportError> {
    for r in &doc.resources {
        let why = if r.data {
            if !is_network(r.kind) || !r.kind.starts_with("aws_") {
                continue;
            }
            "a data source: it describes something outside this configuration, which the model does not contain (import it from the AWS CLI's output)".to_string()
        } else if !READ.contains(&r.kind) {
            format!("resource type `{}` is not imported", r.kind)
        } else {
            continue;
        };
        out.skip(&r.address, r.values.origin(), why);
    }
    for (address, node) in doc.deleted()? {
        out.skip(&address, node.origin(), "deleted by this plan");
    }
    Ok(())
}

/// Groups and prefix lists that rules reference but the input does not
/// contain: external groups, and prefix lists whose entries are unknown.
fn references(model: &mut Model) {
    let groups: BTreeSet<String> = model
        .security_groups
        .iter()
        .map(|g| g.name.clone())
        .collect();
    let lists: BTreeSet<String> = model.prefix_lists.iter().map(|p| p.name.clone()).collect();
    // First mention of each, in model order.
    let mut ext: Vec<(String, Origin)> = Vec::new();
    let mut pls: Vec<(String, Origin)> = Vec::new();
    for g in &model.security_groups {
        for r in g.ingress.iter().chain(&g.egress) {
            for remote in &r.remote {
                match &remote.value {
                    Remote::Sg(s) if !groups.contains(s) => {
                        ext.push((s.clone(), remote.origin.clone()));
                    }
                    Remote::PrefixList(p) if !lists.contains(p) => {
                        pls.push((p.clone(), remote.origin.clone()));
                    }
                    _ => {}
                }
            }
        }
    }
    let mut seen = BTreeSet::new();
    for (name, origin) in ext {
        if seen.insert(name.clone()) {
            model.external_groups.push(ExternalGroup {
                name,
                origin,
                status: Some("missing".into()),
                ..ExternalGroup::default()
            });
        }
    }
    for (name, origin) in pls {
        if seen.insert(name.clone()) {
            model.prefix_lists.push(PrefixList {
                name,
                origin,
                incomplete: true,
                ..PrefixList::default()
            });
        }
    }
}
