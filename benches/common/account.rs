//! The generated account both `benches/import.rs` and `benches/path.rs`
//! use: 5,000 security groups with 50,000 rules (IPv4 and IPv6 CIDRs,
//! prefix lists, group pairs; tcp, udp, ICMP and all-traffic) and 20,000
//! ENIs of one to five groups across three VPCs of eight subnets, written
//! as AWS CLI JSON. Included by each bench with `#[path]`; each uses part.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;

pub const GROUPS: usize = 5_000;
pub const RULES: usize = 50_000;
pub const ENIS: usize = 20_000;
pub const VPCS: usize = 3;
pub const SUBNETS_PER_VPC: usize = 8;
pub const OWNER: &str = "111122223333";

pub fn vpc_id(v: usize) -> String {
    format!("vpc-0{:016x}", 0xa000 + v)
}

pub fn sg_id(g: usize) -> String {
    format!("sg-0{g:016x}")
}

pub fn subnet_id(v: usize, s: usize) -> String {
    format!("subnet-0{:016x}", 0xb000 + v * 256 + s)
}

/// One `IpPermissions` entry of rule `r` of group `g`; every entry has one
/// source, so entries = rules. Group pairs name a group of the same VPC;
/// ICMP goes with IPv4 sources, ICMPv6 with IPv6 ones, as AWS requires.
pub fn permission(out: &mut String, g: usize, r: usize) {
    let source = r % 4;
    let (proto, ports): (&str, Option<(i64, i64)>) = match (r / 4) % 5 {
        0 => (
            "tcp",
            Some((1000 + (r % 5000) as i64, 1000 + (r % 5000) as i64)),
        ),
        1 => (
            "udp",
            Some((2000 + (r % 100) as i64, 2100 + (r % 100) as i64)),
        ),
        2 if source == 1 => ("58", Some((128, -1))),
        2 => ("icmp", Some((8, -1))),
        3 => ("-1", None),
        _ => ("tcp", Some((443, 443))),
    };
    let _ = write!(out, "{{\"IpProtocol\": \"{proto}\"");
    if let Some((from, to)) = ports {
        let _ = write!(out, ", \"FromPort\": {from}, \"ToPort\": {to}");
    }
    let (mut v4, mut v6, mut pl, mut pair) =
        (String::new(), String::new(), String::new(), String::new());
    match source {
        0 => {
            v4 = format!(
                "{{\"CidrIp\": \"10.{}.{}.0/24\", \"Description\": \"r{r}\"}}",
                r % 250,
                g % 250
            )
        }
        1 => v6 = format!("{{\"CidrIpv6\": \"2001:db8:{:x}::/48\"}}", r % 65536),
        2 => pl = format!("{{\"PrefixListId\": \"pl-0{:016x}\"}}", r % 20),
        _ => {
            let h = ((g / VPCS + r * 7) % (GROUPS / VPCS)) * VPCS + g % VPCS;
            pair = format!("{{\"GroupId\": \"{}\", \"UserId\": \"{OWNER}\"}}", sg_id(h))
        }
    }
    let _ = write!(
        out,
        ", \"IpRanges\": [{v4}], \"Ipv6Ranges\": [{v6}], \"PrefixListIds\": [{pl}], \"UserIdGroupPairs\": [{pair}]}}"
    );
}

pub fn security_groups() -> String {
    let per = RULES / GROUPS;
    let mut t = String::with_capacity(RULES * 220);
    t.push_str("{\n    \"SecurityGroups\": [\n");
    for g in 0..GROUPS {
        if g > 0 {
            t.push_str(",\n");
        }
        let _ = write!(
            t,
            "        {{\"Description\": \"bench group {g}\", \"GroupName\": \"bench-{g}\", \"OwnerId\": \"{OWNER}\", \"GroupId\": \"{}\", \"VpcId\": \"{}\", \"IpPermissions\": [",
            sg_id(g),
            vpc_id(g % VPCS)
        );
        // The last rule of each group is its egress.
        for r in 0..per - 1 {
            if r > 0 {
                t.push_str(", ");
            }
            permission(&mut t, g, g * (per - 1) + r);
        }
        t.push_str("], \"IpPermissionsEgress\": [{\"IpProtocol\": \"-1\", \"IpRanges\": [{\"CidrIp\": \"0.0.0.0/0\"}], \"Ipv6Ranges\": [], \"PrefixListIds\": [], \"UserIdGroupPairs\": []}]}");
    }
    t.push_str("\n    ]\n}\n");
    t
}

pub fn prefix_lists() -> String {
    let mut t = String::from("{\n    \"PrefixLists\": [\n");
    for p in 0..20 {
        let sep = if p > 0 { ",\n" } else { "" };
        let _ = write!(
            t,
            "{sep}        {{\"Cidrs\": [\"203.0.{p}.0/24\", \"198.51.{p}.0/24\"], \"PrefixListId\": \"pl-0{p:016x}\", \"PrefixListName\": \"bench-{p}\"}}"
        );
    }
    t.push_str("\n    ]\n}\n");
    t
}

/// ENI `i`'s VPC, subnet and address: VPC v is 10.(100+v).0.0/16, each
/// subnet a /20.
pub fn eni_place(i: usize) -> (usize, usize, Ipv4Addr) {
    let v = i % VPCS;
    let k = i / VPCS;
    let s = k % SUBNETS_PER_VPC;
    let host = k / SUBNETS_PER_VPC + 4;
    let a = u32::from(Ipv4Addr::new(10, 100 + v as u8, 0, 0)) + ((s as u32) << 12) + host as u32;
    (v, s, Ipv4Addr::from(a))
}

pub fn network_interfaces() -> String {
    let mut t = String::with_capacity(ENIS * 700);
    t.push_str("{\n    \"NetworkInterfaces\": [\n");
    for i in 0..ENIS {
        let (v, s, ip) = eni_place(i);
        // One to five groups of the ENI's VPC.
        let n = 1 + i % 5;
        let groups: Vec<String> = (0..n)
            .map(|k| {
                let g = (((i / VPCS) * 13 + k * 101) % (GROUPS / VPCS)) * VPCS + v;
                format!(
                    "{{\"GroupId\": \"{}\", \"GroupName\": \"bench-{g}\"}}",
                    sg_id(g)
                )
            })
            .collect();
        let sep = if i > 0 { ",\n" } else { "" };
        let _ = write!(
            t,
            "{sep}        {{\"Attachment\": {{\"AttachmentId\": \"eni-attach-0{i:016x}\", \"DeviceIndex\": 0, \"InstanceId\": \"i-0{i:016x}\", \"InstanceOwnerId\": \"{OWNER}\", \"Status\": \"attached\"}}, \"AvailabilityZone\": \"us-east-1a\", \"Description\": \"\", \"Groups\": [{}], \"InterfaceType\": \"interface\", \"Ipv6Addresses\": [], \"NetworkInterfaceId\": \"eni-0{i:016x}\", \"OwnerId\": \"{OWNER}\", \"PrivateIpAddress\": \"{ip}\", \"PrivateIpAddresses\": [{{\"Primary\": true, \"PrivateIpAddress\": \"{ip}\"}}], \"SourceDestCheck\": true, \"Status\": \"in-use\", \"SubnetId\": \"{}\", \"TagSet\": [{{\"Key\": \"Name\", \"Value\": \"bench-{i}\"}}], \"VpcId\": \"{}\"}}",
            groups.join(", "),
            subnet_id(v, s),
            vpc_id(v)
        );
    }
    t.push_str("\n    ]\n}\n");
    t
}

pub fn vpcs_and_subnets() -> (String, String) {
    let mut vpcs = String::from("{\n    \"Vpcs\": [\n");
    let mut subnets = String::from("{\n    \"Subnets\": [\n");
    for v in 0..VPCS {
        let sep = if v > 0 { ",\n" } else { "" };
        let _ = write!(
            vpcs,
            "{sep}        {{\"CidrBlock\": \"10.{}.0.0/16\", \"OwnerId\": \"{OWNER}\", \"State\": \"available\", \"VpcId\": \"{}\", \"IsDefault\": false}}",
            100 + v,
            vpc_id(v)
        );
        for s in 0..SUBNETS_PER_VPC {
            let sep = if v + s > 0 { ",\n" } else { "" };
            let _ = write!(
                subnets,
                "{sep}        {{\"AvailabilityZone\": \"us-east-1{}\", \"CidrBlock\": \"10.{}.{}.0/20\", \"State\": \"available\", \"SubnetId\": \"{}\", \"VpcId\": \"{}\", \"OwnerId\": \"{OWNER}\"}}",
                ['a', 'b', 'c'][s % 3],
                100 + v,
                s * 16,
                subnet_id(v, s),
                vpc_id(v)
            );
        }
    }
    vpcs.push_str("\n    ]\n}\n");
    subnets.push_str("\n    ]\n}\n");
    (vpcs, subnets)
}

/// Writes the account, and `extra` files beside it, into `dir`; returns
/// the total size in bytes.
pub fn write_account(dir: &Path, extra: Vec<(&str, String)>) -> usize {
    let (vpcs, subnets) = vpcs_and_subnets();
    let mut files = vec![
        ("describe-vpcs.json", vpcs),
        ("describe-subnets.json", subnets),
        ("describe-prefix-lists.json", prefix_lists()),
        ("describe-security-groups.json", security_groups()),
        ("describe-network-interfaces.json", network_interfaces()),
    ];
    files.extend(extra);
    let mut size = 0;
    for (name, body) in files {
        size += body.len();
        std::fs::write(dir.join(name), body).expect("writing the generated account");
    }
    size
}
