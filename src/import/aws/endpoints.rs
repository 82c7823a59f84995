//! VPC endpoints and endpoint service configurations. An endpoint's
//! service is the service's id when its configuration is in the input,
//! else the `ServiceName` as AWS gives it.

use std::collections::HashMap;

use super::recognise::Inputs;
use super::{at_str, at_strings, string, Build};
use crate::import::json::Node;
use crate::import::ImportError;
use crate::policy::model::{At, Endpoint, EndpointService, ExternalGroup};

pub(super) fn convert(b: &mut Build, inputs: &Inputs) -> Result<(), ImportError> {
    let mut services: HashMap<String, String> = HashMap::new();
    for f in &inputs.endpoint_services {
        if let Some((name, id)) = service(b, &f.node)? {
            services.insert(name, id);
        }
    }
    for f in &inputs.endpoints {
        endpoint(b, &f.node, &services)?;
    }
    let enis = std::mem::take(&mut b.endpoint_enis);
    for (eni, id) in enis {
        if let Some(e) = b.endpoints.get_mut(&id) {
            if !e.interfaces.iter().any(|i| i.value == eni) {
                let origin = b
                    .interfaces
                    .get(&eni)
                    .map(|i| i.origin.clone())
                    .unwrap_or_default();
                e.interfaces.push(At::new(eni, origin));
                e.interfaces.sort_by(|x, y| x.value.cmp(&y.value));
            }
        }
    }
    Ok(())
}

/// Returns the service's (name, id).
fn service(b: &mut Build, n: &Node) -> Result<Option<(String, String)>, ImportError> {
    let id = n.need_str("ServiceId")?;
    let service_name = string(n, "ServiceName")?;
    if b.endpoint_services.contains_key(id) {
        return Ok(service_name.map(|s| (s, id.to_string())));
    }
    let mut load_balancers = Vec::new();
    for key in ["NetworkLoadBalancerArns", "GatewayLoadBalancerArns"] {
        for arn in at_strings(n, key)? {
            let name = match b.lb_names.get(&arn.value) {
                Some(name) => name.clone(),
                // `…:loadbalancer/net/NAME/ID`: the name in the ARN.
                None => arn
                    .value
                    .split("loadbalancer/")
                    .nth(1)
                    .and_then(|s| s.split('/').nth(1))
                    .unwrap_or(&arn.value)
                    .to_string(),
            };
            load_balancers.push(At::new(name, arn.origin));
        }
    }
    let svc = EndpointService {
        name: id.to_string(),
        origin: n.origin(),
        load_balancers,
        service_name: service_name.clone(),
        acceptance_required: n.bool("AcceptanceRequired")?,
    };
    b.endpoint_services.insert(id.to_string(), svc);
    Ok(service_name.map(|s| (s, id.to_string())))
}

fn endpoint(
    b: &mut Build,
    n: &Node,
    services: &HashMap<String, String>,
) -> Result<(), ImportError> {
    let id = n.need_str("VpcEndpointId")?;
    if b.endpoints.contains_key(id) {
        return Ok(());
    }
    let typ = n.need("VpcEndpointType")?;
    let kind = match typ.as_str()?.to_ascii_lowercase().as_str() {
        "interface" => "interface",
        "gatewayloadbalancer" => "gateway_load_balancer",
        "gateway" => "gateway",
        other => {
            b.skip(
                id,
                typ.origin(),
                format!("endpoint type `{other}` is not one sgplane knows"),
            );
            return Ok(());
        }
    };
    let service = at_str(n, "ServiceName")?.map(|s| match services.get(&s.value) {
        Some(svc) => At::new(svc.clone(), s.origin),
        None => s,
    });
    let mut security_groups = Vec::new();
    for g in n.array("Groups")? {
        if let Some(gid) = at_str(&g, "GroupId")? {
            b.note_group(ExternalGroup {
                name: gid.value.clone(),
                origin: gid.origin.clone(),
                vpc: string(n, "VpcId")?,
                ..ExternalGroup::default()
            });
            security_groups.push(gid);
        }
    }
    let mut dns_names = Vec::new();
    for d in n.array("DnsEntries")? {
        dns_names.extend(string(&d, "DnsName")?);
    }
    let ep = Endpoint {
        name: id.to_string(),
        origin: n.origin(),
        kind: At::new(kind.to_string(), typ.origin()),
        service,
        vpc: at_str(n, "VpcId")?,
        subnets: at_strings(n, "SubnetIds")?,
        interfaces: at_strings(n, "NetworkInterfaceIds")?,
        security_groups,
        route_tables: at_strings(n, "RouteTableIds")?,
        dns_names,
        state: string(n, "State")?.map(|s| s.to_ascii_lowercase()),
    };
    b.endpoints.insert(id.to_string(), ep);
    Ok(())
}
