//! `sgplane import azure` (SPEC §7): `az network nsg list|show`, `nic list`,
//! `vnet list` and `asg list`, flattened as `az` prints them or in the REST
//! API's `properties` shape, one resource or a list (a JSON array, or the
//! REST `{"value": […]}`).
//!
//! Each NSG is a group `sg-<name>` whose Inbound rules are its ingress and
//! Outbound rules its egress, with Azure's priority as `priority` (first
//! match, as sgplane decides) and its six default rules; [`rules`] converts
//! them, [`tags`] the service tags. An application security group is a group
//! `sg-asg.<name>` with no rules, attached to the NICs that list it, so that
//! rules referencing it reach its members. NICs are interfaces (a NIC
//! without an NSG gets `sg-azure.no-nsg`, which allows everything, as Azure
//! does), VNets VPCs, subnets subnets with their NSG as the subnet layer
//! (SPEC §9.2). Names are the resources' names, qualified by resource group
//! only where two would clash; the full resource id is each item's
//! description.

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;
use serde_json::Value;

use super::json::Node;
use super::{Import, ImportError, Skipped};
use crate::policy::model::{
    At, Imported, Interface, InterfacePlace, Model, Origin, PrefixList, Remote, Rule,
    SecurityGroup, Subnet, Vpc,
};
use crate::policy::types::ProtoMatch;

mod resource;
mod rules;
mod tags;

#[cfg(test)]
mod tests;

use resource::{key, last, short_names, vnet_of_subnet, Kind, Res};

/// The group of NICs that have no NSG of their own.
const NO_NSG: &str = "sg-azure.no-nsg";

/// Whether a JSON document is an Azure resource, a list of them (`az … list`
/// prints an array) or a REST list response (`{"value": […]}`).
pub fn recognises(value: &Value) -> bool {
    let value = recorded_body(value);
    match value {
        Value::Array(a) => a.iter().any(|v| Kind::of(v).is_some()),
        Value::Object(o) => match o.get("value") {
            Some(Value::Array(a)) if Kind::of(value).is_none() => {
                a.iter().any(|v| Kind::of(v).is_some())
            }
            _ => Kind::of(value).is_some(),
        },
        _ => false,
    }
}

/// A recorded response's body: the examples of Azure's REST API specs
/// (`{"parameters": …, "responses": {"200": {"body": …}}}`) and the
/// project's `{"status_code": …, "data": …}` recordings; anything else as
/// it is.
fn recorded_body(value: &Value) -> &Value {
    if let Some(body) = value.pointer("/responses/200/body") {
        return body;
    }
    match (value.get("status_code"), value.get("data")) {
        (Some(_), Some(data)) => data,
        _ => value,
    }
}

/// [`recorded_body`] on a node, keeping its path.
fn unwrap_recorded(root: Node<'_>) -> Node<'_> {
    if root.value.pointer("/responses/200/body").is_some() {
        if let Some(body) = root
            .get("responses")
            .and_then(|r| r.get("200"))
            .and_then(|r| r.get("body"))
        {
            return body;
        }
    }
    if root.has("status_code") {
        if let Some(data) = root.get("data") {
            return data;
        }
    }
    root
}

/// Imports documents already parsed, each named by its file; `Model::source`
/// is the first name.
pub fn import_values(docs: &[(String, Value)]) -> Result<Import, ImportError> {
    let mut inputs = Inputs::default();
    let mut skipped = Vec::new();
    for (file, value) in docs {
        let root = unwrap_recorded(Node::root(value, file.as_str()));
        let value = root.value;
        let items = match value {
            Value::Array(_) => root.items()?,
            Value::Object(_) if Kind::of(value).is_none() && root.has("value") => {
                root.need("value")?.items()?
            }
            _ => vec![root],
        };
        for n in items {
            match Kind::of(n.value) {
                Some(k) => inputs.add(k, Res::new(n))?,
                None => skipped.push(Skipped {
                    id: n
                        .str("id")
                        .ok()
                        .flatten()
                        .unwrap_or(file.as_str())
                        .to_string(),
                    origin: n.origin(),
                    why: "not an Azure resource sgplane reads (an NSG, NIC, VNet or ASG)".into(),
                }),
            }
        }
    }
    let mut cx = Cx::new(&inputs, skipped);
    let mut model = cx.convert(&inputs)?;
    model.source = docs.first().map(|d| d.0.clone()).unwrap_or_default();
    model.imported = Some(Imported {
        provider: "azure".into(),
        inputs: docs.iter().map(|d| d.0.clone()).collect(),
    });
    Ok(Import {
        model,
        skipped: cx.skipped,
    })
}

/// The resources read, by kind, each id once (the first read wins).
#[derive(Default)]
struct Inputs<'a> {
    nsgs: BTreeMap<String, Res<'a>>,
    nics: BTreeMap<String, Res<'a>>,
    vnets: BTreeMap<String, Res<'a>>,
    asgs: BTreeMap<String, Res<'a>>,
}

impl<'a> Inputs<'a> {
    fn add(&mut self, kind: Kind, r: Res<'a>) -> Result<(), ImportError> {
        let k = key(r.id()?);
        let map = match kind {
            Kind::Nsg => &mut self.nsgs,
            Kind::Nic => &mut self.nics,
            Kind::Vnet => &mut self.vnets,
            Kind::Asg => &mut self.asgs,
        };
        map.entry(k).or_insert(r);
        Ok(())
    }
}

/// A VNet's connected peers by id key, with their address space when known.
type Peers = Vec<(String, Option<Vec<IpNet>>)>;

/// What conversion knows and builds.
struct Cx {
    skipped: Vec<Skipped>,
    prefix_lists: BTreeMap<String, PrefixList>,
    /// Model names by id key.
    nsg_names: BTreeMap<String, String>,
    vnet_names: BTreeMap<String, String>,
    /// Each VNet's own address space, when the input has the VNet.
    vnet_space: BTreeMap<String, Vec<IpNet>>,
    /// Each VNet's connected peers, with their address space when known.
    vnet_peers: BTreeMap<String, Peers>,
    /// The VNets each NSG applies in (through subnets and NICs).
    nsg_vnets: BTreeMap<String, BTreeSet<String>>,
    /// Each ASG's group name, and its members' addresses.
    asg_names: BTreeMap<String, String>,
    asg_members: BTreeMap<String, Vec<IpNet>>,
}

impl Cx {
    fn new(inputs: &Inputs, skipped: Vec<Skipped>) -> Cx {
        let ids = |m: &BTreeMap<String, Res>| -> Vec<String> {
            m.values()
                .filter_map(|r| r.id().ok().map(str::to_string))
                .collect()
        };
        let prefixed = |m: BTreeMap<String, String>, p: &str| {
            m.into_iter()
                .map(|(k, v)| (k, format!("{p}{v}")))
                .collect::<BTreeMap<_, _>>()
        };
        let nsg_ids = ids(&inputs.nsgs);
        let vnet_ids = ids(&inputs.vnets);
        Cx {
            skipped,
            prefix_lists: BTreeMap::new(),
            nsg_names: prefixed(short_names(nsg_ids.iter().map(String::as_str)), "sg-"),
            vnet_names: short_names(vnet_ids.iter().map(String::as_str)),
            vnet_space: BTreeMap::new(),
            vnet_peers: BTreeMap::new(),
            nsg_vnets: BTreeMap::new(),
            asg_names: BTreeMap::new(),
            asg_members: BTreeMap::new(),
        }
    }

    fn skip(&mut self, id: &str, origin: Origin, why: impl Into<String>) {
        self.skipped.push(Skipped {
            id: id.to_string(),
            origin,
            why: why.into(),
        });
    }

    /// A VNet's model name: the input's, else the id's last segment.
    fn vnet_name(&self, k: &str) -> String {
        self.vnet_names
            .get(k)
            .cloned()
            .unwrap_or_else(|| last(k).to_string())
    }

    fn convert(&mut self, inputs: &Inputs) -> Result<Model, ImportError> {
        let mut model = Model::default();
        // ASG names first: NICs and rules name them.
        let mut asg_ids: Vec<String> = inputs
            .asgs
            .values()
            .filter_map(|r| r.id().ok().map(str::to_string))
            .collect();
        for nic in inputs.nics.values() {
            for ip in nic.array("ipConfigurations")? {
                for (id, _) in Res::new(ip).references("applicationSecurityGroups")? {
                    asg_ids.push(id.to_string());
                }
            }
        }
        self.asg_names = short_names(asg_ids.iter().map(String::as_str))
            .into_iter()
            .map(|(k, v)| (k, format!("sg-asg.{v}")))
            .collect();
        let subnets = self.vnets(inputs, &mut model)?;
        self.nsg_attachments(inputs)?;
        self.nics(inputs, &subnets, &mut model)?;
        self.subnet_layers(inputs, &mut model)?;
        for (k, nsg) in &inputs.nsgs {
            let g = rules::group(self, k, nsg)?;
            model.security_groups.push(g);
        }
        self.asg_groups(inputs, &mut model)?;
        if model
            .interfaces
            .iter()
            .any(|i| i.security_groups.iter().any(|s| s.value == NO_NSG))
        {
            model.security_groups.push(no_nsg_group());
        }
        model.prefix_lists = std::mem::take(&mut self.prefix_lists)
            .into_values()
            .collect();
        super::sort_by_id(&mut model);
        Ok(model)
    }

    /// VNets and their subnets; returns each subnet's model name by id key.
    fn vnets(
        &mut self,
        inputs: &Inputs,
        model: &mut Model,
    ) -> Result<BTreeMap<String, String>, ImportError> {
        let mut subnets = BTreeMap::new();
        for (k, v) in &inputs.vnets {
            let name = self.vnet_name(k);
            let mut cidrs = Vec::new();
            if let Some(space) = v.get("addressSpace") {
                for (s, n) in Res::new(space).strings("addressPrefixes")? {
                    cidrs.push(At::new(net(s, &n)?, n.origin()));
                }
            }
            self.vnet_space
                .insert(k.clone(), cidrs.iter().map(|c| c.value).collect());
            let mut peers = Vec::new();
            let mut peer_spaces = Vec::new();
            for p in v.array("virtualNetworkPeerings")? {
                let p = Res::new(p);
                let Some((remote, at)) = p.reference("remoteVirtualNetwork")? else {
                    return Err(p.node.error("`remoteVirtualNetwork` is missing"));
                };
                let state = p.str("peeringState")?.unwrap_or("");
                if !state.eq_ignore_ascii_case("connected") {
                    self.skip(
                        p.id().unwrap_or(remote),
                        p.node.origin(),
                        format!(
                            "peering state `{state}`: only a Connected peering joins the VNets"
                        ),
                    );
                    continue;
                }
                let mut space = None;
                for field in ["remoteAddressSpace", "remoteVirtualNetworkAddressSpace"] {
                    if let Some(s) = p.get(field) {
                        let mut nets = Vec::new();
                        for (s, n) in Res::new(s).strings("addressPrefixes")? {
                            nets.push(net(s, &n)?);
                        }
                        space = Some(nets);
                        break;
                    }
                }
                let rk = key(remote);
                peers.push(At::new(self.vnet_name(&rk), at.origin()));
                peer_spaces.push((rk, space));
            }
            self.vnet_peers.insert(k.clone(), peer_spaces);
            for s in v.array("subnets")? {
                let s = Res::new(s);
                let sname = format!("{name}.{}", s.name()?);
                let mut scidrs = Vec::new();
                if let Some(p) = s.str("addressPrefix")? {
                    let n = s.get("addressPrefix").expect("present");
                    scidrs.push(At::new(net(p, &n)?, n.origin()));
                }
                for (p, n) in s.strings("addressPrefixes")? {
                    let c = At::new(net(p, &n)?, n.origin());
                    if !scidrs.iter().any(|x| x.value == c.value) {
                        scidrs.push(c);
                    }
                }
                subnets.insert(key(s.id()?), sname.clone());
                model.subnets.push(Subnet {
                    name: sname,
                    origin: s.node.origin(),
                    vpc: At::new(name.clone(), v.node.origin()),
                    cidrs: scidrs,
                    title: Some(s.id()?.to_string()),
                    ..Subnet::default()
                });
            }
            model.vpcs.push(Vpc {
                name,
                origin: v.node.origin(),
                cidrs,
                peers,
                region: v.str("location")?.map(str::to_string),
                title: Some(v.id()?.to_string()),
                ..Vpc::default()
            });
        }
        Ok(subnets)
    }

    /// The VNets each NSG applies in: from subnets (the VNet's list and the
    /// NSG's `subnets`) and NICs (the NIC's NSG and the NSG's
    /// `networkInterfaces`).
    fn nsg_attachments(&mut self, inputs: &Inputs) -> Result<(), ImportError> {
        let mut add = |nsg: &str, subnet_id: &str| {
            if let Some(v) = vnet_of_subnet(subnet_id) {
                self.nsg_vnets.entry(key(nsg)).or_default().insert(v);
            }
        };
        let mut nic_subnet = BTreeMap::new();
        for (k, nic) in &inputs.nics {
            let subnet = first_subnet(nic)?;
            if let Some(s) = &subnet {
                nic_subnet.insert(k.clone(), s.clone());
            }
            if let (Some((nsg, _)), Some(s)) = (nic.reference("networkSecurityGroup")?, subnet) {
                add(nsg, &s);
            }
        }
        for v in inputs.vnets.values() {
            for s in v.array("subnets")? {
                let s = Res::new(s);
                if let Some((nsg, _)) = s.reference("networkSecurityGroup")? {
                    add(nsg, s.id()?);
                }
            }
        }
        for (k, nsg) in &inputs.nsgs {
            for (s, _) in nsg.references("subnets")? {
                add(k, s);
            }
            for (n, _) in nsg.references("networkInterfaces")? {
                if let Some(s) = nic_subnet.get(&key(n)) {
                    add(k, s);
                }
            }
        }
        Ok(())
    }

    fn nics(
        &mut self,
        inputs: &Inputs,
        subnets: &BTreeMap<String, String>,
        model: &mut Model,
    ) -> Result<(), ImportError> {
        let ids: Vec<&str> = inputs.nics.values().filter_map(|r| r.id().ok()).collect();
        let names = short_names(ids);
        for (k, nic) in &inputs.nics {
            let id = nic.id()?;
            let mut addresses = Vec::new();
            let mut asgs: Vec<At<String>> = Vec::new();
            let mut public = Vec::new();
            let mut subnet: Option<At<String>> = None;
            for ip in nic.array("ipConfigurations")? {
                let ip = Res::new(ip);
                if let Some(a) = ip.str("privateIPAddress")? {
                    let n = ip.get("privateIPAddress").expect("present");
                    let addr: std::net::IpAddr = a
                        .parse()
                        .map_err(|_| n.error(format!("`{a}` is not an IP address")))?;
                    addresses.push(At::new(IpNet::from(addr), n.origin()));
                }
                // A prefix assigned to the NIC (an IP configuration with
                // `privateIPAddressPrefix` instead of one address).
                if let Some(a) = ip.str("privateIPAddressPrefix")? {
                    let n = ip.get("privateIPAddressPrefix").expect("present");
                    let net: IpNet = a
                        .parse()
                        .map_err(|_| n.error(format!("`{a}` is not an address prefix")))?;
                    addresses.push(At::new(net.trunc(), n.origin()));
                }
                if let Some((s, at)) = ip.reference("subnet")? {
                    match (subnets.get(&key(s)), &subnet) {
                        (Some(name), None) => subnet = Some(At::new(name.clone(), at.origin())),
                        (Some(name), Some(first)) if *name != first.value => self.skip(
                            id,
                            at.origin(),
                            format!("ip configuration in subnet `{name}`: the interface is placed in `{}`, its first", first.value),
                        ),
                        (None, _) if inputs.vnets.is_empty() => {}
                        (None, _) => self.skip(s, at.origin(), "subnet not in the input: the interface is placed in no subnet"),
                        _ => {}
                    }
                }
                for (a, at) in ip.references("applicationSecurityGroups")? {
                    let name = self.asg_names[&key(a)].clone();
                    if !asgs.iter().any(|x| x.value == name) {
                        asgs.push(At::new(name, at.origin()));
                    }
                }
                if let Some(p) = ip.get("publicIPAddress") {
                    let p = Res::new(p);
                    match p.str("ipAddress")? {
                        Some(a) => {
                            let n = p.get("ipAddress").expect("present");
                            let addr: std::net::IpAddr = a
                                .parse()
                                .map_err(|_| n.error(format!("`{a}` is not an IP address")))?;
                            public.push(At::new(IpNet::from(addr), n.origin()));
                        }
                        None => self.skip(
                            p.node.str("id")?.unwrap_or(id),
                            p.node.origin(),
                            "public IP address resource: its address is not in the NIC's JSON (`az network public-ip list` is not read)",
                        ),
                    }
                }
            }
            if let Some(n) = nic.get("disableTcpStateTracking") {
                if n.value.as_bool() == Some(true) {
                    self.skip(
                        id,
                        n.origin(),
                        "`disableTcpStateTracking`: sgplane tracks this NIC's connections (an untracked NIC's NSG judges every packet)",
                    );
                }
            }
            if addresses.is_empty() {
                self.skip(id, nic.node.origin(), "NIC without a private IP address");
                continue;
            }
            for a in &asgs {
                let ak = self
                    .asg_names
                    .iter()
                    .find(|(_, v)| **v == a.value)
                    .map(|(k, _)| k.clone())
                    .expect("named above");
                self.asg_members
                    .entry(ak)
                    .or_default()
                    .extend(addresses.iter().map(|x| x.value));
            }
            let mut groups = Vec::new();
            match nic.reference("networkSecurityGroup")? {
                Some((nsg, at)) => match self.nsg_names.get(&key(nsg)) {
                    Some(name) => groups.push(At::new(name.clone(), at.origin())),
                    None => self.skip(
                        nsg,
                        at.origin(),
                        format!("the NSG of NIC `{}` is not in the input: the NIC gets none of its rules (only its ASGs, which allow nothing)", last(id)),
                    ),
                },
                None => groups.push(At::new(NO_NSG.to_string(), nic.node.origin())),
            }
            groups.extend(asgs);
            let vm = nic
                .reference("virtualMachine")?
                .map(|(v, _)| last(v).to_string());
            model.interfaces.push(Interface {
                name: names[k].clone(),
                origin: nic.node.origin(),
                description: Some(id.to_string()),
                addresses: At::new(addresses, nic.node.origin()),
                security_groups: groups,
                zone: None,
                place: InterfacePlace {
                    subnet,
                    instance: vm,
                    title: Some(nic.name()?.to_string()),
                    public_addresses: public,
                    ..InterfacePlace::default()
                },
            });
        }
        Ok(())
    }

    /// Each subnet's NSG: SPEC §9.2's subnet layer, which the engine
    /// enforces on top of each NIC's own (a NIC without an NSG keeps
    /// `sg-azure.no-nsg`, allowing all, so the subnet's alone decides).
    fn subnet_layers(&mut self, inputs: &Inputs, model: &mut Model) -> Result<(), ImportError> {
        let mut by_subnet: BTreeMap<String, (String, Origin)> = BTreeMap::new();
        for v in inputs.vnets.values() {
            for s in v.array("subnets")? {
                let s = Res::new(s);
                if let Some((nsg, at)) = s.reference("networkSecurityGroup")? {
                    by_subnet.insert(key(s.id()?), (nsg.to_string(), at.origin()));
                }
            }
        }
        for (k, nsg) in &inputs.nsgs {
            for (s, at) in nsg.references("subnets")? {
                by_subnet.entry(key(s)).or_insert((k.clone(), at.origin()));
            }
        }
        for s in &mut model.subnets {
            let Some(id) = s.title.as_deref() else {
                continue;
            };
            let Some((nsg, at)) = by_subnet.get(&key(id)) else {
                continue;
            };
            match self.nsg_names.get(&key(nsg)) {
                Some(n) => s.security_groups = vec![At::new(n.clone(), at.clone())],
                None => self.skipped.push(Skipped {
                    id: nsg.clone(),
                    origin: at.clone(),
                    why: format!(
                        "the NSG of subnet `{}` is not in the input: the subnet layer is left out",
                        s.name
                    ),
                }),
            }
        }
        // The subnet's id was kept in `title` to find it; its name is better.
        for s in &mut model.subnets {
            s.title = s.title.as_deref().map(|id| last(id).to_string());
        }
        Ok(())
    }

    /// A group per ASG that some NIC lists (its members); an ASG no NIC in
    /// the input lists is left to rules' references (an external group that
    /// matches nothing, which `check` names).
    fn asg_groups(&mut self, inputs: &Inputs, model: &mut Model) -> Result<(), ImportError> {
        for (k, name) in &self.asg_names {
            if !self.asg_members.contains_key(k) {
                continue;
            }
            let (origin, id) = match inputs.asgs.get(k) {
                Some(r) => (r.node.origin(), r.id()?.to_string()),
                None => (Origin::None, k.clone()),
            };
            model.security_groups.push(SecurityGroup {
                name: name.clone(),
                origin,
                description: Some(format!("application security group {id}: no rules of its own; NSG rules reference its members")),
                title: Some(last(&id).to_string()),
                ..SecurityGroup::default()
            });
        }
        Ok(())
    }

    /// The `VirtualNetwork` tag of an NSG: its VNets' address space and
    /// their connected peers'.
    fn virtual_network(&mut self, nsg: &str, at: &Origin) -> String {
        let (vnets, note) = self.vnets_of(nsg);
        let name = match vnets.is_empty() {
            true => "pl-tag.VirtualNetwork".to_string(),
            false => format!(
                "pl-tag.VirtualNetwork.{}",
                vnets
                    .iter()
                    .map(|v| self.vnet_name(v))
                    .collect::<Vec<_>>()
                    .join("+")
            ),
        };
        if self.prefix_lists.contains_key(&name) {
            return name;
        }
        if let Some(n) = note {
            self.skip(nsg, at.clone(), n);
        }
        let (entries, complete) = self.space(&vnets);
        if !complete {
            self.skip(
                nsg,
                at.clone(),
                format!("{name}: the address space of a VNet or peer is not in the input"),
            );
        }
        self.prefix_lists.insert(
            name.clone(),
            PrefixList {
                name: name.clone(),
                entries: entries.into_iter().map(At::bare).collect(),
                owner: Some("Azure".into()),
                incomplete: !complete,
                ..PrefixList::default()
            },
        );
        name
    }

    /// The `Internet` tag of an NSG: everything outside its VirtualNetwork.
    fn internet(&mut self, nsg: &str, at: &Origin) -> String {
        let vn = self.virtual_network(nsg, at);
        let name = vn.replacen("pl-tag.VirtualNetwork", "pl-tag.Internet", 1);
        if !self.prefix_lists.contains_key(&name) {
            let inside: Vec<IpNet> = self.prefix_lists[&vn]
                .entries
                .iter()
                .map(|e| e.value)
                .collect();
            self.prefix_lists.insert(
                name.clone(),
                PrefixList {
                    name: name.clone(),
                    entries: tags::complement(&inside)
                        .into_iter()
                        .map(At::bare)
                        .collect(),
                    owner: Some("Azure".into()),
                    ..PrefixList::default()
                },
            );
        }
        name
    }

    /// `AzureLoadBalancer`: the host's virtual IP.
    fn azure_load_balancer(&mut self) -> String {
        let name = "pl-tag.AzureLoadBalancer".to_string();
        self.prefix_lists
            .entry(name.clone())
            .or_insert_with(|| PrefixList {
                name: name.clone(),
                entries: vec![At::bare(tags::AZURE_HOST.parse().expect("a CIDR"))],
                owner: Some("Azure".into()),
                ..PrefixList::default()
            });
        name
    }

    /// Any other service tag: its entries are not in the input.
    fn service_tag(&mut self, tag: &str) -> String {
        let name = tags::tag_list(tag);
        self.prefix_lists
            .entry(name.clone())
            .or_insert_with(|| PrefixList {
                name: name.clone(),
                owner: Some("Azure".into()),
                incomplete: true,
                ..PrefixList::default()
            });
        name
    }

    /// The VNets an NSG applies in, and a note when that is not one VNet.
    fn vnets_of(&self, nsg: &str) -> (Vec<String>, Option<String>) {
        match self.nsg_vnets.get(nsg) {
            Some(v) if v.len() == 1 => (v.iter().cloned().collect(), None),
            Some(v) if !v.is_empty() => (
                v.iter().cloned().collect(),
                Some(format!(
                    "the NSG applies in {} VNets: its VirtualNetwork tag is their union",
                    v.len()
                )),
            ),
            _ => {
                let all: Vec<String> = self.vnet_space.keys().cloned().collect();
                (
                    all,
                    Some("the NSG is attached to no subnet or NIC of the input: its VirtualNetwork tag is every VNet of the input".into()),
                )
            }
        }
    }

    /// The address space of `vnets` and their connected peers, and whether
    /// all of it was in the input.
    fn space(&self, vnets: &[String]) -> (Vec<IpNet>, bool) {
        let mut out: Vec<IpNet> = Vec::new();
        let mut complete = !vnets.is_empty();
        let mut add = |nets: &[IpNet]| {
            for n in nets {
                if !out.contains(n) {
                    out.push(*n);
                }
            }
        };
        for v in vnets {
            match self.vnet_space.get(v) {
                Some(s) => add(s),
                None => complete = false,
            }
            for (peer, space) in self.vnet_peers.get(v).into_iter().flatten() {
                match (self.vnet_space.get(peer), space) {
                    (Some(s), _) => add(s),
                    (None, Some(s)) => add(s),
                    (None, None) => complete = false,
                }
            }
        }
        (out, complete)
    }
}

/// The subnet of a NIC's first IP configuration, by id.
fn first_subnet(nic: &Res) -> Result<Option<String>, ImportError> {
    for ip in nic.array("ipConfigurations")? {
        if let Some((s, _)) = Res::new(ip).reference("subnet")? {
            return Ok(Some(s.to_string()));
        }
    }
    Ok(None)
}

/// A CIDR as Azure accepts it (host bits cleared).
fn net(s: &str, at: &Node) -> Result<IpNet, ImportError> {
    crate::policy::types::parse_net(s.trim())
        .map(|n| n.trunc())
        .map_err(|e| at.error(e.to_string()))
}

/// Azure without an NSG on a NIC: that layer allows everything.
fn no_nsg_group() -> SecurityGroup {
    let all = || {
        vec![
            At::bare(Remote::Net("0.0.0.0/0".parse().expect("a CIDR"))),
            At::bare(Remote::Net("::/0".parse().expect("a CIDR"))),
        ]
    };
    SecurityGroup {
        name: NO_NSG.into(),
        description: Some(
            "Azure: the NIC has no NSG, so its layer allows everything (a subnet NSG still applies, SPEC §9.2)".into(),
        ),
        ingress: vec![Rule::new(ProtoMatch::Any, all())],
        egress: vec![Rule::new(ProtoMatch::Any, all())],
        ..SecurityGroup::default()
    }
}
