import json, sys
SUB = "6f1c2a0e-3b4d-4e5f-8a9b-0c1d2e3f4a5b"
RG = "rg-demo"
def rid(kind, name, rg=RG):
    return f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.Network/{kind}/{name}"
ETAG = 'W/"7d1c9e0a-2b3c-4d5e-8f90-a1b2c3d4e5f6"'
def ref(i, rg=RG): return {"id": i, "resourceGroup": rg}

def rule(nsg, name, prio, direction, access, proto, src="*", dst="*", sport="*", dport="*",
         srcs=None, dsts=None, dports=None, sports=None, src_asgs=None, dst_asgs=None, desc=None, default=False):
    kind = "defaultSecurityRules" if default else "securityRules"
    r = {
        "access": access,
        "destinationAddressPrefix": None if dsts or dst_asgs else dst,
        "destinationAddressPrefixes": dsts or [],
        "destinationPortRange": None if dports else dport,
        "destinationPortRanges": dports or [],
        "direction": direction,
        "etag": ETAG,
        "id": rid("networkSecurityGroups", nsg) + f"/{kind}/{name}",
        "name": name,
        "priority": prio,
        "protocol": proto,
        "provisioningState": "Succeeded",
        "resourceGroup": RG,
        "sourceAddressPrefix": None if srcs or src_asgs else src,
        "sourceAddressPrefixes": srcs or [],
        "sourcePortRange": None if sports else sport,
        "sourcePortRanges": sports or [],
        "type": f"Microsoft.Network/networkSecurityGroups/{kind}",
    }
    if desc: r["description"] = desc
    if src_asgs: r["sourceApplicationSecurityGroups"] = [ref(rid("applicationSecurityGroups", a)) for a in src_asgs]
    if dst_asgs: r["destinationApplicationSecurityGroups"] = [ref(rid("applicationSecurityGroups", a)) for a in dst_asgs]
    return {k: v for k, v in sorted(r.items()) if v is not None}

def defaults(nsg):
    d = lambda *a, **k: rule(nsg, *a, default=True, **k)
    return [
        d("AllowVnetInBound", 65000, "Inbound", "Allow", "*", src="VirtualNetwork", dst="VirtualNetwork", desc="Allow inbound traffic from all VMs in VNET"),
        d("AllowAzureLoadBalancerInBound", 65001, "Inbound", "Allow", "*", src="AzureLoadBalancer", desc="Allow inbound traffic from azure load balancer"),
        d("DenyAllInBound", 65500, "Inbound", "Deny", "*", desc="Deny all inbound traffic"),
        d("AllowVnetOutBound", 65000, "Outbound", "Allow", "*", src="VirtualNetwork", dst="VirtualNetwork", desc="Allow outbound traffic from all VMs to all VMs in VNET"),
        d("AllowInternetOutBound", 65001, "Outbound", "Allow", "*", dst="Internet", desc="Allow outbound traffic from all VMs to Internet"),
        d("DenyAllOutBound", 65500, "Outbound", "Deny", "*", desc="Deny all outbound traffic"),
    ]

def nsg(name, rules, nics=(), subnets=(), with_defaults=True):
    n = {
        "etag": ETAG,
        "id": rid("networkSecurityGroups", name),
        "location": "westeurope",
        "name": name,
        "provisioningState": "Succeeded",
        "resourceGroup": RG,
        "resourceGuid": "3c1f0b7e-9d2a-4b6c-8e1f-2a3b4c5d6e7f",
        "securityRules": rules,
        "type": "Microsoft.Network/networkSecurityGroups",
    }
    if with_defaults: n["defaultSecurityRules"] = defaults(name)
    if nics: n["networkInterfaces"] = [ref(i, "RG-DEMO") for i in nics]
    if subnets: n["subnets"] = [ref(s, "RG-DEMO") for s in subnets]
    return dict(sorted(n.items()))

def subnet_id(vnet, s): return rid("virtualNetworks", vnet) + f"/subnets/{s}"
def nic_id(n): return rid("networkInterfaces", n)

W = "nsg-web"
web_rules = [
    rule(W, "Allow-Web", 100, "Inbound", "Allow", "TCP", dports=["80", "443"], desc="HTTP and HTTPS from anywhere"),
    rule(W, "Deny-Bad-Actor", 110, "Inbound", "Deny", "*", src="203.0.113.0/24", desc="abuse report 4711"),
    rule(W, "Allow-SSH-From-Bastion", 120, "Inbound", "Allow", "Tcp", src_asgs=["asg-bastion"], dport="22"),
    rule(W, "Allow-Dns-Replies", 130, "Inbound", "Allow", "udp", src="198.51.100.0/24", sport="53", dport="5000-5010"),
    rule(W, "Allow-Ping", 140, "Inbound", "Allow", "Icmp"),
    rule(W, "Allow-Admin-To-Web-Hosts", 170, "Inbound", "Allow", "Tcp", src="10.0.0.0/8", dsts=["10.0.1.4", "10.0.1.5"], dport="8080"),
    rule(W, "Allow-Storage-Out", 150, "Outbound", "Allow", "*", dst="Storage.WestEurope", dport="443"),
    rule(W, "Deny-SMTP-Out", 160, "Outbound", "Deny", "Tcp", dst="Internet", dport="25", desc="no mail from web servers"),
]
nsgs = [
    nsg(W, web_rules, nics=[nic_id("web-vm-nic"), nic_id("web-vm2-nic")]),
    nsg("nsg-web-subnet", [
        rule("nsg-web-subnet", "Allow-Web-In", 100, "Inbound", "Allow", "Tcp", src="Internet", dports=["80", "443"]),
    ], subnets=[subnet_id("vnet-hub", "web")]),
    nsg("nsg-lab", [], nics=[nic_id("lab-nic")]),
]
json.dump(nsgs, open("demo/nsg-list.json", "w"), indent=2)

# nsg-app in the REST shape (az rest --method get --url …/networkSecurityGroups/nsg-app), without
# its default rules (as `az network nsg show --query "{…}"` trims them).
def rest_rule(r):
    props = {k: v for k, v in r.items() if k not in ("id", "name", "etag", "type", "resourceGroup")}
    return {"name": r["name"], "id": r["id"], "etag": r["etag"], "type": r["type"], "properties": props}
A = "nsg-app"
app_rules = [
    rule(A, "Allow-8080-From-Web", 200, "Inbound", "Allow", "tcp", src_asgs=["asg-web"], dport="8080"),
    rule(A, "Deny-VNet-In", 4096, "Inbound", "Deny", "*", src="VirtualNetwork", desc="only what is listed above"),
]
app = {
    "name": A, "id": rid("networkSecurityGroups", A), "etag": ETAG,
    "type": "Microsoft.Network/networkSecurityGroups", "location": "westeurope",
    "properties": {
        "provisioningState": "Succeeded",
        "resourceGuid": "0d9e8f7a-6b5c-4d3e-2f1a-0b9c8d7e6f5a",
        "securityRules": [rest_rule(r) for r in app_rules],
        "networkInterfaces": [{"id": nic_id("app-vm-nic")}],
    },
}
json.dump(app, open("demo/nsg-app.json", "w"), indent=2)

def ipconf(nic, name, addr, vnet, sub, primary=True, asgs=(), version="IPv4", pip=None):
    c = {
        "etag": ETAG,
        "id": nic_id(nic) + f"/ipConfigurations/{name}",
        "name": name,
        "primary": primary,
        "privateIPAddress": addr,
        "privateIPAddressVersion": version,
        "privateIPAllocationMethod": "Dynamic",
        "provisioningState": "Succeeded",
        "resourceGroup": RG,
        "subnet": ref(subnet_id(vnet, sub).replace(RG, "RG-DEMO"), "RG-DEMO"),
        "type": "Microsoft.Network/networkInterfaces/ipConfigurations",
    }
    if asgs: c["applicationSecurityGroups"] = [ref(rid("applicationSecurityGroups", a)) for a in asgs]
    if pip: c["publicIPAddress"] = ref(rid("publicIPAddresses", pip))
    return dict(sorted(c.items()))

def nic(name, confs, nsg_name=None, vm=None):
    n = {
        "auxiliaryMode": "None", "auxiliarySku": "None",
        "disableTcpStateTracking": False,
        "dnsSettings": {"appliedDnsServers": [], "dnsServers": [], "internalDomainNameSuffix": "x0y1z2.ax.internal.cloudapp.net"},
        "enableAcceleratedNetworking": False, "enableIPForwarding": False,
        "etag": ETAG,
        "id": nic_id(name),
        "ipConfigurations": confs,
        "location": "westeurope",
        "macAddress": "00-0D-3A-2B-4C-5D",
        "name": name,
        "nicType": "Standard",
        "primary": True,
        "provisioningState": "Succeeded",
        "resourceGroup": RG,
        "resourceGuid": "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9",
        "tapConfigurations": [],
        "type": "Microsoft.Network/networkInterfaces",
        "vnetEncryptionSupported": False,
    }
    if nsg_name: n["networkSecurityGroup"] = ref(rid("networkSecurityGroups", nsg_name).replace(RG, "RG-DEMO"), "RG-DEMO")
    if vm: n["virtualMachine"] = ref(f"/subscriptions/{SUB}/resourceGroups/RG-DEMO/providers/Microsoft.Compute/virtualMachines/{vm}", "RG-DEMO")
    return dict(sorted(n.items()))

nics = [
    nic("web-vm-nic", [
        ipconf("web-vm-nic", "ipconfig1", "10.0.1.4", "vnet-hub", "web", asgs=["asg-web"]),
        ipconf("web-vm-nic", "ipconfig-v6", "fd00:db8:deca:1::4", "vnet-hub", "web", primary=False, asgs=["asg-web"], version="IPv6"),
    ], nsg_name=W, vm="web-vm"),
    nic("web-vm2-nic", [ipconf("web-vm2-nic", "ipconfig1", "10.0.1.5", "vnet-hub", "web", asgs=["asg-web"])], nsg_name=W, vm="web-vm2"),
    nic("bastion-nic", [ipconf("bastion-nic", "ipconfig1", "10.0.2.4", "vnet-hub", "app", asgs=["asg-bastion"], pip="bastion-pip")], vm="bastion"),
    nic("app-vm-nic", [ipconf("app-vm-nic", "ipconfig1", "10.1.1.4", "vnet-spoke", "db")], nsg_name=A, vm="app-vm"),
    nic("lab-nic", [ipconf("lab-nic", "ipconfig1", "10.9.0.4", "vnet-lab", "default")], nsg_name="nsg-lab", vm="lab-vm"),
]
json.dump(nics, open("demo/nic-list.json", "w"), indent=2)

def subnet(vnet, name, prefix, nsg_name=None, prefixes=None):
    s = {
        "addressPrefix": prefix,
        "delegations": [], "etag": ETAG,
        "id": subnet_id(vnet, name),
        "name": name,
        "privateEndpointNetworkPolicies": "Disabled",
        "privateLinkServiceNetworkPolicies": "Enabled",
        "provisioningState": "Succeeded",
        "resourceGroup": RG,
        "type": "Microsoft.Network/virtualNetworks/subnets",
    }
    if prefixes: del s["addressPrefix"]; s["addressPrefixes"] = prefixes
    if nsg_name: s["networkSecurityGroup"] = ref(rid("networkSecurityGroups", nsg_name).replace(RG, "RG-DEMO"), "RG-DEMO")
    return dict(sorted(s.items()))

def peering(vnet, remote, state, space):
    return {
        "allowForwardedTraffic": False, "allowGatewayTransit": False, "allowVirtualNetworkAccess": True,
        "etag": ETAG,
        "id": rid("virtualNetworks", vnet) + f"/virtualNetworkPeerings/{vnet}-to-{remote}",
        "name": f"{vnet}-to-{remote}",
        "peeringState": state, "peeringSyncLevel": "FullyInSync",
        "provisioningState": "Succeeded",
        "remoteAddressSpace": {"addressPrefixes": space},
        "remoteVirtualNetwork": {"id": rid("virtualNetworks", remote), "resourceGroup": RG},
        "resourceGroup": RG,
        "type": "Microsoft.Network/virtualNetworks/virtualNetworkPeerings",
        "useRemoteGateways": False,
    }

def vnet(name, space, subnets, peerings=()):
    return {
        "addressSpace": {"addressPrefixes": space},
        "enableDdosProtection": False,
        "etag": ETAG,
        "id": rid("virtualNetworks", name),
        "location": "westeurope",
        "name": name,
        "provisioningState": "Succeeded",
        "resourceGroup": RG,
        "resourceGuid": "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d",
        "subnets": subnets,
        "type": "Microsoft.Network/virtualNetworks",
        "virtualNetworkPeerings": list(peerings),
    }

vnets = [
    vnet("vnet-hub", ["10.0.0.0/16", "fd00:db8:deca::/48"], [
        subnet("vnet-hub", "web", None, "nsg-web-subnet", prefixes=["10.0.1.0/24", "fd00:db8:deca:1::/64"]),
        subnet("vnet-hub", "app", "10.0.2.0/24"),
    ], [peering("vnet-hub", "vnet-spoke", "Connected", ["10.1.0.0/16"]),
        peering("vnet-hub", "vnet-lab", "Disconnected", ["10.9.0.0/16"])]),
    vnet("vnet-spoke", ["10.1.0.0/16"], [subnet("vnet-spoke", "db", "10.1.1.0/24")],
         [peering("vnet-spoke", "vnet-hub", "Connected", ["10.0.0.0/16", "fd00:db8:deca::/48"])]),
    vnet("vnet-lab", ["10.9.0.0/16"], [subnet("vnet-lab", "default", "10.9.0.0/24")],
         [peering("vnet-lab", "vnet-hub", "Disconnected", ["10.0.0.0/16", "fd00:db8:deca::/48"])]),
]
json.dump(vnets, open("demo/vnet-list.json", "w"), indent=2)

asgs = [{
    "etag": ETAG, "id": rid("applicationSecurityGroups", a), "location": "westeurope", "name": a,
    "provisioningState": "Succeeded", "resourceGroup": RG,
    "resourceGuid": "1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e",
    "type": "Microsoft.Network/applicationSecurityGroups",
} for a in ["asg-bastion", "asg-web"]]
json.dump(asgs, open("demo/asg-list.json", "w"), indent=2)
