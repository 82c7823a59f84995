//! Azure's address prefixes as NSG rules write them: `*`, CIDRs and bare
//! addresses, and service tags. `VirtualNetwork` and `Internet` depend on
//! where the NSG applies (the VNets it is attached in and their peers), so
//! they become prefix lists named after those VNets; `AzureLoadBalancer` is
//! the host's virtual IP; every other tag (`Storage`, `AzureCloud.westeurope`,
//! …) is a prefix list whose entries the input does not give, which `check`
//! names.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::policy::types::parse_net;

/// The address of Azure's host node, behind the `AzureLoadBalancer` tag
/// (health probes, DHCP, DNS).
pub const AZURE_HOST: &str = "168.63.129.16/32";

/// What an address prefix of an NSG rule names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prefix {
    /// `*` or `Any`: every IPv4 and IPv6 address.
    Any,
    /// A CIDR or a bare address (host bits cleared, as Azure reads it).
    Net(IpNet),
    /// `VirtualNetwork` (also the classic `VIRTUAL_NETWORK`).
    VirtualNetwork,
    /// `Internet` (also `INTERNET`).
    Internet,
    /// `AzureLoadBalancer` (also `AZURE_LOADBALANCER`).
    AzureLoadBalancer,
    /// Any other service tag, as written.
    Tag(String),
}

impl Prefix {
    /// Reads a prefix; tags are matched without regard to case, as Azure does.
    pub fn parse(s: &str) -> Prefix {
        let t = s.trim();
        if t == "*" || t.eq_ignore_ascii_case("any") {
            return Prefix::Any;
        }
        if let Ok(n) = parse_net(t) {
            return Prefix::Net(n.trunc());
        }
        match t.to_ascii_lowercase().as_str() {
            "virtualnetwork" | "virtual_network" => Prefix::VirtualNetwork,
            "internet" => Prefix::Internet,
            "azureloadbalancer" | "azure_loadbalancer" => Prefix::AzureLoadBalancer,
            _ => Prefix::Tag(t.to_string()),
        }
    }
}

/// The prefix list name of an unknown service tag.
pub fn tag_list(tag: &str) -> String {
    format!("pl-tag.{tag}")
}

/// Every address outside `nets`, in both families, as few CIDRs as
/// possible (sorted, IPv4 first).
pub fn complement(nets: &[IpNet]) -> Vec<IpNet> {
    let mut out = Vec::new();
    let mut v4: Vec<Ipv4Net> = vec![Ipv4Net::new(Ipv4Addr::UNSPECIFIED, 0).expect("/0")];
    let mut v6: Vec<Ipv6Net> = vec![Ipv6Net::new(Ipv6Addr::UNSPECIFIED, 0).expect("/0")];
    for n in nets {
        match n {
            IpNet::V4(x) => v4 = v4.into_iter().flat_map(|b| minus4(b, *x)).collect(),
            IpNet::V6(x) => v6 = v6.into_iter().flat_map(|b| minus6(b, *x)).collect(),
        }
    }
    out.extend(Ipv4Net::aggregate(&v4).into_iter().map(IpNet::V4));
    out.extend(Ipv6Net::aggregate(&v6).into_iter().map(IpNet::V6));
    out
}

/// `block` without `hole`: `block` itself, nothing, or the halves that
/// split off around `hole` (at most one per bit of prefix between them).
fn minus4(block: Ipv4Net, hole: Ipv4Net) -> Vec<Ipv4Net> {
    if hole.contains(&block) {
        return Vec::new();
    }
    if !block.contains(&hole) {
        return vec![block];
    }
    let mut out = Vec::new();
    let mut b = block;
    while b.prefix_len() < hole.prefix_len() {
        let halves: Vec<Ipv4Net> = b.subnets(b.prefix_len() + 1).expect("longer").collect();
        let (keep, next) = if halves[0].contains(&hole) {
            (halves[1], halves[0])
        } else {
            (halves[0], halves[1])
        };
        out.push(keep);
        b = next;
    }
    out
}

fn minus6(block: Ipv6Net, hole: Ipv6Net) -> Vec<Ipv6Net> {
    if hole.contains(&block) {
        return Vec::new();
    }
    if !block.contains(&hole) {
        return vec![block];
    }
    let mut out = Vec::new();
    let mut b = block;
    while b.prefix_len() < hole.prefix_len() {
        let halves: Vec<Ipv6Net> = b.subnets(b.prefix_len() + 1).expect("longer").collect();
        let (keep, next) = if halves[0].contains(&hole) {
            (halves[1], halves[0])
        } else {
            (halves[0], halves[1])
        };
        out.push(keep);
        b = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(v: &[&str]) -> Vec<IpNet> {
        v.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn the_complement_of_nothing_is_everything() {
        assert_eq!(complement(&[]), nets(&["0.0.0.0/0", "::/0"]));
    }

    #[test]
    fn the_complement_leaves_out_exactly_the_holes() {
        let holes = nets(&["10.0.0.0/16", "10.1.0.0/16", "192.168.0.0/24", "fd00::/8"]);
        let c = complement(&holes);
        for n in &c {
            assert!(!holes.iter().any(|h| h.contains(n) || n.contains(h)), "{n}");
        }
        let inside = |a: &str| {
            let a: std::net::IpAddr = a.parse().unwrap();
            c.iter().any(|n| n.contains(&a))
        };
        for a in [
            "9.255.255.255",
            "10.2.0.0",
            "8.8.8.8",
            "192.168.1.1",
            "255.255.255.255",
            "2001:db8::1",
            "fe00::",
        ] {
            assert!(inside(a), "{a} is outside the holes");
        }
        for a in ["10.0.0.1", "10.1.255.255", "192.168.0.7", "fd12::1"] {
            assert!(!inside(a), "{a} is in a hole");
        }
        // At most one block per prefix bit of each hole.
        assert!(c.len() < 60, "{c:?}");
    }

    #[test]
    fn prefixes_read_as_azure_writes_them() {
        assert_eq!(Prefix::parse("*"), Prefix::Any);
        assert_eq!(Prefix::parse("Any"), Prefix::Any);
        assert_eq!(
            Prefix::parse("10.0.0.5"),
            Prefix::Net("10.0.0.5/32".parse().unwrap())
        );
        assert_eq!(
            Prefix::parse("10.0.0.5/24"),
            Prefix::Net("10.0.0.0/24".parse().unwrap())
        );
        assert_eq!(Prefix::parse("virtualNetwork"), Prefix::VirtualNetwork);
        assert_eq!(Prefix::parse("VIRTUAL_NETWORK"), Prefix::VirtualNetwork);
        assert_eq!(Prefix::parse("INTERNET"), Prefix::Internet);
        assert_eq!(
            Prefix::parse("AzureLoadBalancer"),
            Prefix::AzureLoadBalancer
        );
        assert_eq!(
            Prefix::parse("Storage.WestEurope"),
            Prefix::Tag("Storage.WestEurope".into())
        );
    }
}
