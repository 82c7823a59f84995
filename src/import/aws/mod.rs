//! `sgplane import aws`: the AWS CLI's JSON, Batfish and CloudMapper
//! snapshots, recorded API responses, and Terraform plans (SPEC §7).
//!
//! Each file is recognised by its content ([`recognise`]); the responses of
//! every file are gathered by kind, then converted in one place per concern
//! — [`network`] (VPCs, subnets, NACLs, routes, gateways, peerings, prefix
//! lists), [`ec2`] (security groups, ENIs, instances), [`elb`] (ELBv2) and
//! [`endpoints`] — into one [`Model`]. Resources read twice (an ENI in
//! `describe-network-interfaces` and in `describe-instances`) are kept once;
//! every list comes out sorted by id, so the same input gives the same
//! model whatever the order of its files.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;

use ipnet::IpNet;

use super::json::Node;
use super::{Import, ImportError, Skipped};
use crate::policy::model::{
    At, Endpoint, EndpointService, ExternalGroup, Imported, Interface, LoadBalancer, Model,
    NetworkAcl, Origin, Peering, PrefixList, RouteTable, SecurityGroup, Subnet, TargetGroup, Vpc,
};
use crate::policy::types::{parse_net, IpProto, ProtoMatch};

mod ec2;
mod elb;
mod endpoints;
mod network;
mod recognise;

#[cfg(test)]
mod tests;

use recognise::{Document, Inputs, Kind, Source};

/// Imports every file under `paths` (directories walked, see
/// [`super::input_files`]).
pub fn import(paths: &[PathBuf]) -> Result<Import, ImportError> {
    super::import(super::Provider::Aws, paths, false)
}

/// Imports the documents read from files (see [`super::load_documents`]);
/// `Model::source` is left empty.
pub(super) fn import_files(
    files: Vec<(PathBuf, serde_json::Value)>,
) -> Result<Import, ImportError> {
    let docs: Vec<Document> = files
        .into_iter()
        .map(|(f, value)| Document {
            file: f.display().to_string(),
            value,
            src: Rc::new(Source::of(&f)),
        })
        .collect();
    import_documents(&docs)
}

/// Imports JSON documents already parsed, each named by the path it would
/// have (for the account, region and resource a path gives): tests and
/// fuzzing. `Model::source` is the first name.
pub fn import_values(docs: &[(String, serde_json::Value)]) -> Result<Import, ImportError> {
    let docs: Vec<Document> = docs
        .iter()
        .map(|(name, value)| Document {
            file: name.clone(),
            value: value.clone(),
            src: Rc::new(Source::of(std::path::Path::new(name))),
        })
        .collect();
    let mut import = import_documents(&docs)?;
    import.model.source = docs.first().map(|d| d.file.clone()).unwrap_or_default();
    Ok(import)
}

/// Imports parsed documents; `Model::source` is left empty.
fn import_documents(docs: &[Document]) -> Result<Import, ImportError> {
    let mut inputs = Inputs::default();
    let mut b = Build::default();
    for d in docs {
        let root = Node::root(&d.value, d.file.as_str());
        if let Kind::Unknown = recognise::recognise(root.clone(), d.src.clone(), &mut inputs)? {
            b.skip(
                &d.file,
                Origin::File {
                    file: d.file.as_str().into(),
                },
                "not an AWS response sgplane reads",
            );
        }
    }
    network::convert(&mut b, &inputs)?;
    ec2::convert(&mut b, &inputs)?;
    elb::convert(&mut b, &inputs)?;
    endpoints::convert(&mut b, &inputs)?;
    network::referenced_prefix_lists(&mut b);
    ec2::external_groups(&mut b);
    let mut import = b.finish();
    for doc in &inputs.terraform {
        let file = doc.file.to_string();
        let tf = crate::import::terraform::import_value(doc.value, &file)?;
        import.append(tf);
    }
    super::sort_by_id(&mut import.model);
    import.model.imported = Some(Imported {
        provider: "aws".into(),
        inputs: docs.iter().map(|d| d.file.clone()).collect(),
    });
    Ok(import)
}

/// The model under construction, each kind by id (the first read wins).
#[derive(Default)]
struct Build {
    prefix_lists: BTreeMap<String, PrefixList>,
    security_groups: BTreeMap<String, SecurityGroup>,
    interfaces: BTreeMap<String, Interface>,
    vpcs: BTreeMap<String, Vpc>,
    peerings: BTreeMap<String, Peering>,
    subnets: BTreeMap<String, Subnet>,
    network_acls: BTreeMap<String, NetworkAcl>,
    route_tables: BTreeMap<String, RouteTable>,
    /// By model name; `lb_names` maps each ARN to it.
    load_balancers: BTreeMap<String, LoadBalancer>,
    lb_names: BTreeMap<String, String>,
    /// By model name; `tg_names` maps each ARN to it.
    target_groups: BTreeMap<String, TargetGroup>,
    tg_names: BTreeMap<String, String>,
    endpoint_services: BTreeMap<String, EndpointService>,
    endpoints: BTreeMap<String, Endpoint>,
    /// Every group named anywhere, with what the first mention says of it.
    sg_refs: BTreeMap<String, ExternalGroup>,
    /// Every prefix list named anywhere, and where first.
    pl_refs: BTreeMap<String, Origin>,
    /// ENIs that belong to a load balancer (`app/NAME/ID`) or an endpoint.
    lb_enis: Vec<(String, String)>,
    endpoint_enis: Vec<(String, String)>,
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

    fn finish(self) -> Import {
        let model = Model {
            prefix_lists: self.prefix_lists.into_values().collect(),
            security_groups: self.security_groups.into_values().collect(),
            external_groups: self
                .sg_refs
                .into_values()
                .filter(|g| g.status.is_some())
                .collect(),
            interfaces: self.interfaces.into_values().collect(),
            vpcs: self.vpcs.into_values().collect(),
            peerings: self.peerings.into_values().collect(),
            subnets: self.subnets.into_values().collect(),
            network_acls: self.network_acls.into_values().collect(),
            route_tables: self.route_tables.into_values().collect(),
            load_balancers: self.load_balancers.into_values().collect(),
            target_groups: self.target_groups.into_values().collect(),
            endpoint_services: self.endpoint_services.into_values().collect(),
            endpoints: self.endpoints.into_values().collect(),
            ..Model::default()
        };
        Import {
            model,
            skipped: self.skipped,
        }
    }
}

/// A string member with where it was written.
fn at_str(n: &Node, key: &str) -> Result<Option<At<String>>, ImportError> {
    Ok(match n.str(key)? {
        Some(s) => n.get(key).map(|v| At::new(s.to_string(), v.origin())),
        None => None,
    })
}

/// An integer member with where it was written.
fn at_int(n: &Node, key: &str) -> Result<Option<At<i64>>, ImportError> {
    Ok(match n.int(key)? {
        Some(v) => n.get(key).map(|at| At::new(v, at.origin())),
        None => None,
    })
}

/// An owned string member.
fn string(n: &Node, key: &str) -> Result<Option<String>, ImportError> {
    Ok(n.str(key)?.map(str::to_string))
}

/// The strings of an array member, each with where it was written.
fn at_strings(n: &Node, key: &str) -> Result<Vec<At<String>>, ImportError> {
    Ok(n.strings(key)?
        .into_iter()
        .map(|(s, at)| At::new(s.to_string(), at.origin()))
        .collect())
}

/// A block as AWS accepts it: host bits set are cleared (`2.2.2.2/28` is
/// `2.2.2.0/28`). Not an address at all is a malformed file.
fn block(n: &Node, key: &str) -> Result<Option<At<IpNet>>, ImportError> {
    let Some(s) = n.str(key)? else {
        return Ok(None);
    };
    let at = n.need(key)?;
    let net = parse_net(s).map_err(|e| at.error(e.to_string()))?;
    Ok(Some(At::new(net.trunc(), at.origin())))
}

/// An address as a host block (`/32`, `/128`).
fn host(n: &Node, key: &str) -> Result<Option<At<IpNet>>, ImportError> {
    let Some(s) = n.str(key)? else {
        return Ok(None);
    };
    let at = n.need(key)?;
    let addr: std::net::IpAddr = s
        .parse()
        .map_err(|_| at.error(format!("`{s}` is not an IP address")))?;
    Ok(Some(At::new(IpNet::from(addr), at.origin())))
}

/// The `Name` tag (`Tags` or, in describe-network-interfaces, `TagSet`).
fn name_tag(n: &Node) -> Result<Option<String>, ImportError> {
    for key in ["Tags", "TagSet"] {
        for t in n.array(key)? {
            if t.str("Key")? == Some("Name") {
                return string(&t, "Value");
            }
        }
    }
    Ok(None)
}

/// An AWS protocol: `-1`/`all` is every protocol, else a name or a number
/// 0-255; `None` for anything else.
fn protocol(s: &str) -> Option<ProtoMatch> {
    match s.to_ascii_lowercase().as_str() {
        "-1" | "all" => Some(ProtoMatch::Any),
        p => p.parse::<IpProto>().ok().map(ProtoMatch::Is),
    }
}
