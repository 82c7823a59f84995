//! `sgplane import alibaba` (SPEC §7): the `aliyun` CLI's JSON —
//! `DescribeSecurityGroups`, `DescribeSecurityGroupAttribute` (one per
//! group), `DescribeNetworkInterfaces`, `DescribeInstances`,
//! `DescribeVpcs`, `DescribeVSwitches`, `DescribeNetworkAcls` and
//! `DescribeNetworkAclAttributes`.
//!
//! Each file is recognised by its content ([`recognise`]); its responses
//! are gathered by kind and converted in one place per concern — [`ecs`]
//! (security groups and their rules, ENIs, instances) and [`vpc`] (VPCs,
//! vSwitches as subnets, network ACLs) — into one [`Model`], every list
//! sorted by id. Alibaba writes `""` for unset (which [`Node::str`] reads
//! as absent); the masked values of its documentation's examples
//! (`192.168.**.**`, `sg-bp1fg655nh68xyz9****`) are errors naming the file
//! and the JSON path, never guessed at.

use std::collections::BTreeMap;

use ipnet::IpNet;

use super::json::Node;
use super::{Import, ImportError, Skipped};
use crate::policy::model::{
    At, ExternalGroup, Imported, Interface, Model, NetworkAcl, Origin, PrefixList, SecurityGroup,
    Subnet, Vpc,
};
use crate::policy::types::parse_net;

mod ecs;
mod recognise;
mod vpc;

#[cfg(test)]
mod tests;

/// Whether a JSON document is one of the Alibaba responses this importer
/// reads (`-c DIR` uses it to pick the provider).
pub fn recognises(value: &serde_json::Value) -> bool {
    recognise::is_response(value)
}

/// Imports JSON documents already parsed, each named by its file: tests
/// and fuzzing. `Model::source` is the first name.
pub fn import_values(docs: &[(String, serde_json::Value)]) -> Result<Import, ImportError> {
    let mut inputs = recognise::Inputs::default();
    let mut b = Build::default();
    for (file, value) in docs {
        let root = Node::root(value, file.as_str());
        if !recognise::recognise(root, &mut inputs)? {
            let origin = Origin::File {
                file: file.as_str().into(),
            };
            b.skip(file, origin, "not an Alibaba Cloud response sgplane reads");
        }
    }
    vpc::convert(&mut b, &inputs)?;
    ecs::convert(&mut b, &inputs)?;
    let mut import = b.finish();
    import.model.source = docs.first().map(|d| d.0.clone()).unwrap_or_default();
    import.model.imported = Some(Imported {
        provider: "alibaba".into(),
        inputs: docs.iter().map(|d| d.0.clone()).collect(),
    });
    // Alibaba documents that a security group keeps a session for up to
    // 910 seconds (the scenario policies say the same).
    import.model.conntrack.tcp_established = Some(At::bare(910));
    Ok(import)
}

/// The model under construction, each kind by id (the first read wins).
#[derive(Default)]
struct Build {
    security_groups: BTreeMap<String, SecurityGroup>,
    interfaces: BTreeMap<String, Interface>,
    vpcs: BTreeMap<String, Vpc>,
    subnets: BTreeMap<String, Subnet>,
    network_acls: BTreeMap<String, NetworkAcl>,
    /// Every group named anywhere, with what the first mention says of it.
    sg_refs: BTreeMap<String, ExternalGroup>,
    /// Every prefix list named anywhere, and where first.
    pl_refs: BTreeMap<String, Origin>,
    skipped: Vec<Skipped>,
}

impl Build {
    fn skip(&mut self, id: &str, origin: Origin, why: impl Into<String>) {
        self.skipped.push(Skipped {
            id: id.to_string(),
            origin,
            why: why.into(),
        });
    }

    /// Notes a reference to a group (first mention wins).
    fn note_group(&mut self, g: ExternalGroup) {
        self.sg_refs.entry(g.name.clone()).or_insert(g);
    }

    fn note_prefix_list(&mut self, id: &str, origin: Origin) {
        self.pl_refs.entry(id.to_string()).or_insert(origin);
    }

    /// The model: groups referenced but not in the input become
    /// [`ExternalGroup`]s, prefix lists named (whose entries these APIs do
    /// not give) incomplete lists that `check` names.
    fn finish(self) -> Import {
        let external_groups = self
            .sg_refs
            .into_values()
            .filter(|g| !self.security_groups.contains_key(&g.name))
            .map(|mut g| {
                g.status.get_or_insert_with(|| "missing".into());
                g
            })
            .collect();
        let prefix_lists = self
            .pl_refs
            .into_iter()
            .map(|(name, origin)| PrefixList {
                name,
                origin,
                incomplete: true,
                ..PrefixList::default()
            })
            .collect();
        let model = Model {
            prefix_lists,
            security_groups: self.security_groups.into_values().collect(),
            external_groups,
            interfaces: self.interfaces.into_values().collect(),
            vpcs: self.vpcs.into_values().collect(),
            subnets: self.subnets.into_values().collect(),
            network_acls: self.network_acls.into_values().collect(),
            ..Model::default()
        };
        Import {
            model,
            skipped: self.skipped,
        }
    }
}

/// Whether a value is masked as in Alibaba's documentation examples
/// (`192.168.**.**`, `sg-bp1fg655nh68xyz9****`, `192.168.XX.XX`): no
/// real id or address has `**` or an upper-case `XX` in it.
fn is_masked(s: &str) -> bool {
    s.contains("**") || s.contains("XX")
}

/// A string member that names something (an id, an address): `None` when
/// absent or `""`; masked documentation values are errors at their path.
fn value<'a>(n: &Node<'a>, key: &str) -> Result<Option<&'a str>, ImportError> {
    let Some(s) = n.str(key)? else {
        return Ok(None);
    };
    if is_masked(s) {
        let at = n.need(key)?;
        return Err(at.error(format!(
            "`{s}` is a masked value from documentation, not a real one: use the API's own response"
        )));
    }
    Ok(Some(s))
}

/// A required [`value`].
fn need_value<'a>(n: &Node<'a>, key: &str) -> Result<&'a str, ImportError> {
    value(n, key)?.ok_or_else(|| n.error(format!("`{key}` is missing")))
}

/// A [`value`] with where it was written.
fn at_value(n: &Node, key: &str) -> Result<Option<At<String>>, ImportError> {
    Ok(match value(n, key)? {
        Some(s) => n.get(key).map(|v| At::new(s.to_string(), v.origin())),
        None => None,
    })
}

/// Free text (a name, a description), kept as written.
fn text(n: &Node, key: &str) -> Result<Option<String>, ImportError> {
    Ok(n.str(key)?.map(str::to_string))
}

/// The strings of `Outer.Inner[]` (`SecurityGroupIds.SecurityGroupId`),
/// each a [`value`].
fn nested_values(n: &Node, outer: &str, inner: &str) -> Result<Vec<At<String>>, ImportError> {
    let Some(o) = n.get(outer) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for item in o.array(inner)? {
        let s = item.as_str()?;
        if s.is_empty() {
            continue;
        }
        if is_masked(s) {
            return Err(item.error(format!(
                "`{s}` is a masked value from documentation, not a real one: use the API's own response"
            )));
        }
        out.push(At::new(s.to_string(), item.origin()));
    }
    Ok(out)
}

/// The objects of `Outer.Inner[]` (`PrivateIpSets.PrivateIpSet`).
fn nested<'a>(n: &Node<'a>, outer: &str, inner: &str) -> Result<Vec<Node<'a>>, ImportError> {
    match n.get(outer) {
        Some(o) => o.array(inner),
        None => Ok(Vec::new()),
    }
}

/// A block (`10.0.0.0/8`) or an address (a host block), host bits cleared
/// as the console does; not an address at all is a malformed file.
fn block(n: &Node, key: &str) -> Result<Option<At<IpNet>>, ImportError> {
    let Some(s) = value(n, key)? else {
        return Ok(None);
    };
    let at = n.need(key)?;
    let net = parse_net(s).map_err(|e| at.error(e.to_string()))?;
    Ok(Some(At::new(net.trunc(), at.origin())))
}

/// An address as a host block (`/32`, `/128`).
fn host(n: &Node, key: &str) -> Result<Option<At<IpNet>>, ImportError> {
    let Some(s) = value(n, key)? else {
        return Ok(None);
    };
    let at = n.need(key)?;
    let addr: std::net::IpAddr = s
        .parse()
        .map_err(|_| at.error(format!("`{s}` is not an IP address")))?;
    Ok(Some(At::new(IpNet::from(addr), at.origin())))
}

/// Adds `a` to `out` unless it is there already.
fn add_unique(out: &mut Vec<At<IpNet>>, a: Option<At<IpNet>>) {
    if let Some(a) = a {
        if !out.iter().any(|x| x.value == a.value) {
            out.push(a);
        }
    }
}
