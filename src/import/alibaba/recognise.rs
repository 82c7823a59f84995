//! Which Alibaba Cloud API responses a file holds, recognised by their
//! top-level keys and the `aliyun` CLI's nesting
//! (`{"SecurityGroups": {"SecurityGroup": [...]}}`): a plural object
//! holding a singular array. AWS prints `{"SecurityGroups": [...]}` (an
//! array), and Azure's CLI prints arrays or objects with `properties`, so
//! neither is claimed.

use crate::import::json::Node;
use crate::import::ImportError;

/// Everything the input files hold, by kind, in file order.
#[derive(Debug, Default)]
pub(super) struct Inputs<'a> {
    /// `DescribeSecurityGroups`: `SecurityGroups.SecurityGroup[]`.
    pub security_groups: Vec<Node<'a>>,
    /// `DescribeSecurityGroupAttribute`: one whole response per group.
    pub attributes: Vec<Node<'a>>,
    /// `DescribeNetworkInterfaces`: `NetworkInterfaceSets.NetworkInterfaceSet[]`.
    pub network_interfaces: Vec<Node<'a>>,
    /// `DescribeInstances`: `Instances.Instance[]`.
    pub instances: Vec<Node<'a>>,
    /// `DescribeVpcs`: `Vpcs.Vpc[]`.
    pub vpcs: Vec<Node<'a>>,
    /// `DescribeVSwitches`: `VSwitches.VSwitch[]`.
    pub vswitches: Vec<Node<'a>>,
    /// `DescribeNetworkAcls` (`NetworkAcls.NetworkAcl[]`) and
    /// `DescribeNetworkAclAttributes` (`NetworkAclAttribute`).
    pub network_acls: Vec<Node<'a>>,
}

/// The lists of the `Describe…` responses: the outer key, the inner key,
/// and where their elements go.
type Slot = for<'x, 'a> fn(&'x mut Inputs<'a>) -> &'x mut Vec<Node<'a>>;

const LISTS: &[(&str, &str, Slot)] = &[
    ("SecurityGroups", "SecurityGroup", |i| {
        &mut i.security_groups
    }),
    ("NetworkInterfaceSets", "NetworkInterfaceSet", |i| {
        &mut i.network_interfaces
    }),
    ("Instances", "Instance", |i| &mut i.instances),
    ("Vpcs", "Vpc", |i| &mut i.vpcs),
    ("VSwitches", "VSwitch", |i| &mut i.vswitches),
    ("NetworkAcls", "NetworkAcl", |i| &mut i.network_acls),
];

/// Whether `v` is one of the responses this importer reads (or an array
/// of them, as a script collecting pages may write).
pub(super) fn is_response(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Array(items) => !items.is_empty() && items.iter().all(is_one),
        v => is_one(v),
    }
}

fn is_one(v: &serde_json::Value) -> bool {
    let Some(o) = v.as_object() else {
        return false;
    };
    let listed = LISTS.iter().any(|(outer, inner, _)| {
        o.get(*outer)
            .and_then(|x| x.get(*inner))
            .is_some_and(|x| x.is_array())
    });
    listed || is_attribute(v) || v.get("NetworkAclAttribute").is_some_and(|a| a.is_object())
}

/// `DescribeSecurityGroupAttribute`: the group's id beside its
/// `Permissions.Permission[]`.
fn is_attribute(v: &serde_json::Value) -> bool {
    v.get("SecurityGroupId").is_some_and(|x| x.is_string())
        && v.get("Permissions")
            .and_then(|p| p.get("Permission"))
            .is_some_and(|p| p.is_array())
}

/// Files the responses of `root` into `inputs`; false when it is none of
/// them.
pub(super) fn recognise<'a>(root: Node<'a>, inputs: &mut Inputs<'a>) -> Result<bool, ImportError> {
    if !is_response(root.value) {
        return Ok(false);
    }
    let docs = match root.value {
        serde_json::Value::Array(_) => root.items()?,
        _ => vec![root],
    };
    for d in docs {
        for (outer, inner, slot) in LISTS {
            if let Some(list) = d.get(outer).and_then(|o| o.get(inner)) {
                if list.value.is_array() {
                    slot(inputs).extend(list.items()?);
                }
            }
        }
        if is_attribute(d.value) {
            inputs.attributes.push(d.clone());
        }
        if let Some(a) = d.get("NetworkAclAttribute") {
            inputs.network_acls.push(a);
        }
    }
    Ok(true)
}
