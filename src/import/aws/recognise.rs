//! Which AWS responses a file holds, recognised by its top-level keys, and
//! what its path says: the account and region of CloudMapper's
//! `account-data/ACCOUNT/REGION/` layout and Batfish's `aws_configs/REGION/`,
//! and the resource a per-resource call was made for (CloudMapper names
//! such a file after the URL-encoded ARN or id it describes).

use std::path::Path;
use std::rc::Rc;

use serde_json::Value;

use crate::import::json::Node;
use crate::import::ImportError;

/// What a file's path says about what it holds.
#[derive(Debug, Default)]
pub(super) struct Source {
    /// The account directory of a CloudMapper layout.
    pub account: Option<String>,
    /// A region named by a directory (`us-east-1`).
    pub region: Option<String>,
    /// The file's name without `.json`, URL-decoded: the resource a
    /// per-resource call describes (`pl-…`, an ARN).
    pub resource: Option<String>,
    /// The directory the file is in (`elbv2-describe-target-health`).
    pub folder: Option<String>,
}

impl Source {
    pub fn of(path: &Path) -> Source {
        let parts: Vec<String> = path
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        let mut src = Source::default();
        let dirs = &parts[..parts.len().saturating_sub(1)];
        if let Some(i) = dirs.iter().position(|p| p == "account-data") {
            src.account = dirs.get(i + 1).cloned();
        }
        src.region = dirs.iter().rev().find(|p| is_region(p)).cloned();
        src.folder = dirs.last().cloned();
        if let Some(name) = parts.last() {
            let stem = name.strip_suffix(".json").unwrap_or(name);
            src.resource = Some(url_decode(stem));
        }
        src
    }

    /// The resource this file is about: its name when that is an id or
    /// ARN of the wanted kind (`pl-`, `arn:`).
    pub fn resource_like(&self, prefix: &str) -> Option<String> {
        self.resource.clone().filter(|r| r.starts_with(prefix))
    }
}

/// `us-east-1`, `ap-northeast-1`, `us-gov-west-1`, `cn-north-1`.
fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts[1..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
}

/// `%3A` → `:`; anything that is not a valid escape is kept as written.
pub(super) fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One element of a top-level list, and the file it came from.
#[derive(Debug, Clone)]
pub(super) struct Found<'a> {
    pub node: Node<'a>,
    pub src: Rc<Source>,
}

/// A list whose owner is not in its elements: given by a Batfish wrapper
/// (`LoadBalancerArn`, `TargetGroupArn`) or by the file's name.
#[derive(Debug, Clone)]
pub(super) struct Owned<'a> {
    pub owner: Option<String>,
    /// The list itself, for messages.
    pub at: Node<'a>,
    pub items: Vec<Node<'a>>,
}

/// Everything the input files hold, by kind, in file order.
#[derive(Debug, Default)]
pub(super) struct Inputs<'a> {
    pub security_groups: Vec<Found<'a>>,
    pub security_group_rules: Vec<Found<'a>>,
    pub network_interfaces: Vec<Found<'a>>,
    pub instances: Vec<Found<'a>>,
    pub vpcs: Vec<Found<'a>>,
    pub subnets: Vec<Found<'a>>,
    pub network_acls: Vec<Found<'a>>,
    pub route_tables: Vec<Found<'a>>,
    pub internet_gateways: Vec<Found<'a>>,
    pub peerings: Vec<Found<'a>>,
    pub prefix_lists: Vec<Found<'a>>,
    pub prefix_list_entries: Vec<Owned<'a>>,
    pub endpoints: Vec<Found<'a>>,
    pub endpoint_services: Vec<Found<'a>>,
    pub load_balancers: Vec<Found<'a>>,
    pub classic_load_balancers: Vec<Found<'a>>,
    pub listeners: Vec<Owned<'a>>,
    pub target_groups: Vec<Found<'a>>,
    pub target_health: Vec<Owned<'a>>,
    pub attributes: Vec<Owned<'a>>,
    /// Terraform `show -json` documents.
    pub terraform: Vec<Node<'a>>,
}

/// What a file was.
pub(super) enum Kind {
    Aws,
    Terraform,
    Unknown,
}

/// The response inside a recorded API call `{"status_code": …, "data": {…}}`.
fn unwrap_recorded(root: Node<'_>) -> Node<'_> {
    match (root.has("status_code"), root.get("data")) {
        (true, Some(data)) if data.value.is_object() => data,
        _ => root,
    }
}

/// Sorts the responses of one file into `inputs`.
pub(super) fn recognise<'a>(
    root: Node<'a>,
    src: Rc<Source>,
    inputs: &mut Inputs<'a>,
) -> Result<Kind, ImportError> {
    let doc = unwrap_recorded(root);
    if !doc.value.is_object() {
        return Ok(Kind::Unknown);
    }
    if crate::import::terraform::is_terraform(doc.value) {
        inputs.terraform.push(doc);
        return Ok(Kind::Terraform);
    }
    let mut known = false;
    let found = |key: &str| -> Result<Vec<Found<'a>>, ImportError> {
        Ok(doc
            .array(key)?
            .into_iter()
            .map(|node| Found {
                node,
                src: src.clone(),
            })
            .collect())
    };
    let simple: [(&str, &mut Vec<Found<'a>>); 15] = [
        ("SecurityGroups", &mut inputs.security_groups),
        ("SecurityGroupRules", &mut inputs.security_group_rules),
        ("NetworkInterfaces", &mut inputs.network_interfaces),
        ("Vpcs", &mut inputs.vpcs),
        ("Subnets", &mut inputs.subnets),
        ("NetworkAcls", &mut inputs.network_acls),
        ("RouteTables", &mut inputs.route_tables),
        ("InternetGateways", &mut inputs.internet_gateways),
        ("VpcPeeringConnections", &mut inputs.peerings),
        ("PrefixLists", &mut inputs.prefix_lists),
        ("VpcEndpoints", &mut inputs.endpoints),
        ("ServiceConfigurations", &mut inputs.endpoint_services),
        ("LoadBalancers", &mut inputs.load_balancers),
        (
            "LoadBalancerDescriptions",
            &mut inputs.classic_load_balancers,
        ),
        ("TargetGroups", &mut inputs.target_groups),
    ];
    for (key, list) in simple {
        if doc.has(key) {
            list.extend(found(key)?);
            known = true;
        }
    }
    if doc.has("Reservations") {
        for r in doc.array("Reservations")? {
            for node in r.array("Instances")? {
                inputs.instances.push(Found {
                    node,
                    src: src.clone(),
                });
            }
        }
        known = true;
    }
    // Lists whose owner is the file's name (CloudMapper, the CLI per call).
    let by_name: [(&str, &str, &mut Vec<Owned<'a>>); 4] = [
        ("Entries", "pl-", &mut inputs.prefix_list_entries),
        ("Listeners", "arn:", &mut inputs.listeners),
        (
            "TargetHealthDescriptions",
            "arn:",
            &mut inputs.target_health,
        ),
        ("Attributes", "arn:", &mut inputs.attributes),
    ];
    for (key, prefix, list) in by_name {
        if let Some(at) = doc.get(key) {
            list.push(Owned {
                owner: src.resource_like(prefix),
                items: at.items()?,
                at,
            });
            known = true;
        }
    }
    // Batfish's wrappers: one element per owner.
    let wrapped: [(&str, &str, &str, &mut Vec<Owned<'a>>); 3] = [
        (
            "LoadBalancerListeners",
            "LoadBalancerArn",
            "Listeners",
            &mut inputs.listeners,
        ),
        (
            "LoadBalancerTargetHealth",
            "TargetGroupArn",
            "TargetHealthDescriptions",
            &mut inputs.target_health,
        ),
        (
            "LoadBalancerAttributes",
            "LoadBalancerArn",
            "Attributes",
            &mut inputs.attributes,
        ),
    ];
    for (key, owner_key, list_key, list) in wrapped {
        if !doc.has(key) {
            continue;
        }
        known = true;
        for w in doc.array(key)? {
            let at = w.need(list_key)?;
            list.push(Owned {
                owner: Some(w.need_str(owner_key)?.to_string()),
                items: at.items()?,
                at,
            });
        }
    }
    Ok(if known { Kind::Aws } else { Kind::Unknown })
}

/// A JSON value read from a file, kept so that nodes can borrow it.
pub(super) struct Document {
    pub file: String,
    pub value: Value,
    pub src: Rc<Source>,
}
