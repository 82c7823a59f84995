//! Azure resources as `az` prints them and as the REST API returns them.
//! `az network … list|show` flattens a resource (`securityRules[].priority`);
//! the REST API and ARM exports keep its fields under `properties`
//! (`properties.securityRules[].properties.priority`). [`Res`] reads either;
//! `id` and `name` are at the top in both. Resource ids are compared without
//! regard to case, as Azure compares them (references often spell the
//! resource group in capitals).

use serde_json::Value;

use super::super::json::{kind, Node};
use super::super::ImportError;

/// The resource types the importer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Nsg,
    Nic,
    Vnet,
    Asg,
}

impl Kind {
    fn of_type(t: &str) -> Option<Kind> {
        match t.to_ascii_lowercase().as_str() {
            "microsoft.network/networksecuritygroups" => Some(Kind::Nsg),
            "microsoft.network/networkinterfaces" => Some(Kind::Nic),
            "microsoft.network/virtualnetworks" => Some(Kind::Vnet),
            "microsoft.network/applicationsecuritygroups" => Some(Kind::Asg),
            _ => None,
        }
    }

    /// The kind of a resource: its `type`, else what its `id` names.
    pub fn of(v: &Value) -> Option<Kind> {
        if let Some(t) = v.get("type").and_then(Value::as_str) {
            return Kind::of_type(t);
        }
        let id = v.get("id").and_then(Value::as_str)?;
        let parts: Vec<&str> = id.trim_matches('/').split('/').collect();
        // subscriptions/S/resourceGroups/RG/providers/NS/TYPE/NAME
        if parts.len() == 8 && parts[4].eq_ignore_ascii_case("providers") {
            Kind::of_type(&format!("{}/{}", parts[5], parts[6]))
        } else {
            None
        }
    }
}

/// A resource in either shape.
#[derive(Debug, Clone)]
pub struct Res<'a> {
    pub node: Node<'a>,
    props: Node<'a>,
}

impl<'a> Res<'a> {
    pub fn new(node: Node<'a>) -> Res<'a> {
        let props = node
            .get("properties")
            .filter(|p| p.value.is_object())
            .unwrap_or_else(|| node.clone());
        Res { node, props }
    }

    /// A field, under `properties` or at the top.
    pub fn get(&self, key: &str) -> Option<Node<'a>> {
        self.props.get(key).or_else(|| self.node.get(key))
    }

    /// A string field; `None` when absent, null or empty.
    pub fn str(&self, key: &str) -> Result<Option<&'a str>, ImportError> {
        match self.get(key) {
            None => Ok(None),
            Some(n) => match n.value {
                Value::String(s) if s.is_empty() => Ok(None),
                Value::String(s) => Ok(Some(s.as_str())),
                v => Err(n.error(format!("expected a string, found {}", kind(v)))),
            },
        }
    }

    /// An integer field (a number, or digits in a string).
    pub fn int(&self, key: &str) -> Result<Option<i64>, ImportError> {
        match self.props.get(key) {
            Some(_) => self.props.int(key),
            None => self.node.int(key),
        }
    }

    /// The elements of an array field; empty when absent.
    pub fn array(&self, key: &str) -> Result<Vec<Node<'a>>, ImportError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(n) => n.items(),
        }
    }

    /// The strings of an array field, each with its node.
    pub fn strings(&self, key: &str) -> Result<Vec<(&'a str, Node<'a>)>, ImportError> {
        self.array(key)?
            .into_iter()
            .map(|n| n.as_str().map(|s| (s, n.clone())))
            .collect()
    }

    /// The resource id (required).
    pub fn id(&self) -> Result<&'a str, ImportError> {
        self.node.need_str("id")
    }

    /// The resource name: `name`, else the id's last segment.
    pub fn name(&self) -> Result<&'a str, ImportError> {
        match self.node.str("name")? {
            Some(n) => Ok(n),
            None => Ok(last(self.id()?)),
        }
    }

    /// The id of a sub-resource reference (`{"id": "…"}`) in `key`.
    pub fn reference(&self, key: &str) -> Result<Option<(&'a str, Node<'a>)>, ImportError> {
        match self.get(key) {
            None => Ok(None),
            Some(n) => Ok(n.str("id")?.map(|id| (id, n))),
        }
    }

    /// The ids of a list of references in `key`.
    pub fn references(&self, key: &str) -> Result<Vec<(&'a str, Node<'a>)>, ImportError> {
        let mut out = Vec::new();
        for n in self.array(key)? {
            let id = n.need_str("id")?;
            out.push((id, n));
        }
        Ok(out)
    }
}

/// An id as a map key: lower case, no trailing slash.
pub fn key(id: &str) -> String {
    id.trim_end_matches('/').to_ascii_lowercase()
}

/// The last segment of an id: the resource's name.
pub fn last(id: &str) -> &str {
    id.trim_end_matches('/').rsplit('/').next().unwrap_or(id)
}

/// The segment after `segment` in an id (`resourceGroups` → the group).
pub fn segment_after<'s>(id: &'s str, segment: &str) -> Option<&'s str> {
    let mut it = id.split('/');
    while let Some(s) = it.next() {
        if s.eq_ignore_ascii_case(segment) {
            return it.next();
        }
    }
    None
}

/// The VNet id of a subnet id (`…/virtualNetworks/V/subnets/S`).
pub fn vnet_of_subnet(subnet_id: &str) -> Option<String> {
    let k = key(subnet_id);
    k.rfind("/subnets/").map(|i| k[..i].to_string())
}

/// Readable names, unique among `ids`: the resource's name, else
/// `resourceGroup.name`, else `subscription.resourceGroup.name`, else the id.
/// Keyed by [`key`].
pub fn short_names<'s>(
    ids: impl IntoIterator<Item = &'s str>,
) -> std::collections::BTreeMap<String, String> {
    use std::collections::BTreeMap;
    let ids: BTreeMap<String, &str> = ids.into_iter().map(|id| (key(id), id)).collect();
    let level = |id: &str, l: usize| -> String {
        let name = last(id).to_string();
        let rg = segment_after(id, "resourceGroups").unwrap_or("-");
        let sub = segment_after(id, "subscriptions").unwrap_or("-");
        match l {
            0 => name,
            1 => format!("{rg}.{name}"),
            2 => format!("{sub}.{rg}.{name}"),
            _ => id.to_string(),
        }
    };
    let mut out = BTreeMap::new();
    for (k, id) in &ids {
        for l in 0..4 {
            let mine = level(id, l).to_ascii_lowercase();
            let clash = ids
                .iter()
                .any(|(k2, id2)| k2 != k && level(id2, l).to_ascii_lowercase() == mine);
            if !clash || l == 3 {
                out.insert(k.clone(), level(id, l));
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_shortest_unique_form() {
        let a = "/subscriptions/s1/resourceGroups/rg-a/providers/Microsoft.Network/networkSecurityGroups/web";
        let b = "/subscriptions/s1/resourceGroups/rg-b/providers/Microsoft.Network/networkSecurityGroups/web";
        let c = "/subscriptions/s1/resourceGroups/rg-a/providers/Microsoft.Network/networkSecurityGroups/db";
        let n = short_names([a, b, c]);
        assert_eq!(n[&key(a)], "rg-a.web");
        assert_eq!(n[&key(b)], "rg-b.web");
        assert_eq!(n[&key(c)], "db");
    }

    #[test]
    fn kinds_come_from_the_type_or_the_id() {
        let v = serde_json::json!({"type": "Microsoft.Network/networkSecurityGroups"});
        assert_eq!(Kind::of(&v), Some(Kind::Nsg));
        let v = serde_json::json!({"id": "/subscriptions/s/resourceGroups/RG/providers/Microsoft.Network/applicationSecurityGroups/x"});
        assert_eq!(Kind::of(&v), Some(Kind::Asg));
        let v = serde_json::json!({"id": "/subscriptions/s/resourceGroups/RG/providers/Microsoft.Network/virtualNetworks/v/subnets/x"});
        assert_eq!(Kind::of(&v), None);
        assert_eq!(
            vnet_of_subnet("/subscriptions/s/resourceGroups/RG/providers/Microsoft.Network/virtualNetworks/V/subnets/x").as_deref(),
            Some("/subscriptions/s/resourcegroups/rg/providers/microsoft.network/virtualnetworks/v")
        );
    }
}
