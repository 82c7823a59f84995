//! The `import_aws_structured` target's input: AWS CLI `describe-*`
//! responses with the shapes the CLI writes (`Vpcs`, `Subnets`,
//! `SecurityGroups` with `IpPermissions`/`IpPermissionsEgress`,
//! `NetworkInterfaces`, `NetworkAcls` with `Entries` and `Associations`)
//! and arbitrary values: ids from small pools (so references meet, dangle
//! or repeat) with malformed ones among them, protocols, ports at every
//! edge, CIDRs good, bad, with host bits or of the other family.

use arbitrary::{Arbitrary, Result, Unstructured};
use serde_json::{json, Value};

fn pick<'a>(pool: &[&'a str], i: u8) -> &'a str {
    pool[usize::from(i) % pool.len()]
}

/// Mostly one of the well-formed entries of `pool` (all but its last
/// `bad`), one time in eight a malformed one.
fn mostly<'a>(pool: &[&'a str], bad: usize, i: u8) -> &'a str {
    let i = usize::from(i);
    if i % 8 == 7 {
        pool[pool.len() - bad + (i / 8) % bad]
    } else {
        pool[i % (pool.len() - bad)]
    }
}

const VPCS: [&str; 4] = ["vpc-0aaa", "vpc-0bbb", "vpc-0ccc", "vpc-"];
const SUBNETS: [&str; 4] = ["subnet-0a1", "subnet-0a2", "subnet-0b1", "subnet"];
const GROUPS: [&str; 6] = [
    "sg-0001", "sg-0002", "sg-0003", "sg-0004", "sg-0005", "0005",
];
const ENIS: [&str; 5] = ["eni-0001", "eni-0002", "eni-0003", "eni-0004", "i-0004"];
const ACLS: [&str; 3] = ["acl-0001", "acl-0002", "acl-"];
const PREFIX_LISTS: [&str; 3] = ["pl-0001", "pl-6ea54007", "pl-"];
/// Good ones, then (the last four) bad ones.
const CIDRS: [&str; 14] = [
    "10.0.0.0/16",
    "10.0.1.0/24",
    "10.0.2.0/24",
    "0.0.0.0/0",
    "10.0.1.7/24",
    "10.0.1.10/32",
    "::/0",
    "2001:db8::/56",
    "2001:db8:0:1::/64",
    "203.0.113.0/24",
    "192.0.2.0/33",
    "not a cidr",
    "",
    "10.0.0.0",
];
/// Good ones, then (the last two) bad ones.
const ADDRESSES: [&str; 8] = [
    "10.0.1.10",
    "10.0.1.11",
    "10.0.2.20",
    "10.0.1.10",
    "2001:db8:0:1::10",
    "10.0.1.0",
    "300.1.1.1",
    "",
];
const PROTOCOLS: [&str; 12] = [
    "tcp", "udp", "icmp", "icmpv6", "-1", "6", "17", "1", "58", "47", "all", "TCP",
];
const PORTS: [i64; 12] = [
    -1,
    0,
    1,
    22,
    80,
    443,
    1024,
    65535,
    65536,
    -2,
    8,
    2_147_483_648,
];
const INTERFACE_TYPES: [&str; 6] = [
    "interface",
    "network_load_balancer",
    "vpc_endpoint",
    "nat_gateway",
    "lambda",
    "gateway_load_balancer_endpoint",
];

/// A value that is usually of the right kind and sometimes not.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Id {
    Pool(u8),
    /// The same pool's well-formed ids, more often (most ids are).
    Pool2(u8),
    Pool3(u8),
    Pool4(u8),
    Pool5(u8),
    Missing,
    Number(i32),
    Null,
}

impl Id {
    fn value(self, pool: &[&str]) -> Option<Value> {
        match self {
            Id::Pool(i) => Some(json!(pick(pool, i))),
            // The pools' last entry is the malformed one.
            Id::Pool2(i) | Id::Pool3(i) | Id::Pool4(i) | Id::Pool5(i) => {
                Some(json!(pool[usize::from(i) % (pool.len() - 1)]))
            }
            Id::Missing => None,
            Id::Number(n) => Some(json!(n)),
            Id::Null => Some(Value::Null),
        }
    }
}

fn put(o: &mut serde_json::Map<String, Value>, key: &str, v: Option<Value>) {
    if let Some(v) = v {
        o.insert(key.to_string(), v);
    }
}

#[derive(Arbitrary, Debug, Clone)]
pub struct Permission {
    pub proto: Result8,
    pub from: Option<u8>,
    pub to: Option<u8>,
    pub v4: Vec<u8>,
    pub v6: Vec<u8>,
    pub lists: Vec<u8>,
    pub pairs: Vec<(u8, bool)>,
}

/// A protocol from the pool, or any number as a string.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Result8 {
    Pool(u8),
    Number(u8),
}

impl Permission {
    fn value(&self) -> Value {
        let proto = match self.proto {
            Result8::Pool(i) => pick(&PROTOCOLS, i).to_string(),
            Result8::Number(n) => n.to_string(),
        };
        let mut o = serde_json::Map::new();
        o.insert("IpProtocol".into(), json!(proto));
        put(
            &mut o,
            "FromPort",
            self.from
                .map(|i| json!(PORTS[usize::from(i) % PORTS.len()])),
        );
        put(
            &mut o,
            "ToPort",
            self.to.map(|i| json!(PORTS[usize::from(i) % PORTS.len()])),
        );
        let few = |v: &[u8]| v.iter().take(3).copied().collect::<Vec<u8>>();
        o.insert(
            "IpRanges".into(),
            few(&self.v4)
                .iter()
                .map(|&i| json!({"CidrIp": mostly(&CIDRS, 4, i), "Description": "r"}))
                .collect(),
        );
        o.insert(
            "Ipv6Ranges".into(),
            few(&self.v6)
                .iter()
                .map(|&i| json!({"CidrIpv6": mostly(&CIDRS, 4, i)}))
                .collect(),
        );
        o.insert(
            "PrefixListIds".into(),
            few(&self.lists)
                .iter()
                .map(|&i| json!({"PrefixListId": mostly(&PREFIX_LISTS, 1, i)}))
                .collect(),
        );
        o.insert(
            "UserIdGroupPairs".into(),
            self.pairs
                .iter()
                .take(3)
                .map(|&(i, other_account)| {
                    let user = if other_account {
                        "444455556666"
                    } else {
                        "111122223333"
                    };
                    json!({"GroupId": mostly(&GROUPS, 1, i), "UserId": user})
                })
                .collect(),
        );
        Value::Object(o)
    }
}

#[derive(Arbitrary, Debug, Clone)]
pub struct Group {
    pub id: Id,
    pub vpc: Id,
    pub ingress: Vec<Permission>,
    pub egress: Vec<Permission>,
}

#[derive(Arbitrary, Debug, Clone)]
pub struct Eni {
    pub id: Id,
    pub subnet: Id,
    pub vpc: Id,
    pub primary: u8,
    pub secondary: Vec<u8>,
    pub groups: Vec<u8>,
    pub kind: Option<u8>,
    pub instance: Option<u8>,
}

#[derive(Arbitrary, Debug, Clone)]
pub struct AclEntry {
    pub number: u16,
    pub proto: Result8,
    pub allow: bool,
    pub egress: bool,
    pub cidr: u8,
    pub ports: Option<(u8, u8)>,
}

#[derive(Arbitrary, Debug, Clone)]
pub struct Acl {
    pub id: Id,
    pub vpc: Id,
    pub default: bool,
    pub entries: Vec<AclEntry>,
    pub subnets: Vec<u8>,
}

#[derive(Arbitrary, Debug, Clone)]
pub struct Subnet {
    pub id: Id,
    pub vpc: Id,
    pub cidr: u8,
}

#[derive(Arbitrary, Debug, Clone)]
pub struct VpcDoc {
    pub id: Id,
    pub cidr: u8,
}

/// One response document.
#[derive(Arbitrary, Debug, Clone)]
pub enum Doc {
    Vpcs(Vec<VpcDoc>),
    Subnets(Vec<Subnet>),
    SecurityGroups(Vec<Group>),
    NetworkInterfaces(Vec<Eni>),
    NetworkAcls(Vec<Acl>),
}

fn list<T>(v: &[T], max: usize) -> &[T] {
    &v[..v.len().min(max)]
}

impl Doc {
    pub fn value(&self) -> Value {
        match self {
            Doc::Vpcs(v) => json!({"Vpcs": list(v, 4).iter().map(|x| {
                let mut o = serde_json::Map::new();
                put(&mut o, "VpcId", x.id.value(&VPCS));
                o.insert("CidrBlock".into(), json!(mostly(&CIDRS, 4, x.cidr)));
                o.insert("OwnerId".into(), json!("111122223333"));
                Value::Object(o)
            }).collect::<Vec<_>>()}),
            Doc::Subnets(v) => json!({"Subnets": list(v, 4).iter().map(|x| {
                let mut o = serde_json::Map::new();
                put(&mut o, "SubnetId", x.id.value(&SUBNETS));
                put(&mut o, "VpcId", x.vpc.value(&VPCS));
                o.insert("CidrBlock".into(), json!(mostly(&CIDRS, 4, x.cidr)));
                o.insert("AvailabilityZone".into(), json!("us-east-1a"));
                Value::Object(o)
            }).collect::<Vec<_>>()}),
            Doc::SecurityGroups(v) => json!({"SecurityGroups": list(v, 4).iter().map(|g| {
                let mut o = serde_json::Map::new();
                put(&mut o, "GroupId", g.id.value(&GROUPS));
                put(&mut o, "VpcId", g.vpc.value(&VPCS));
                o.insert("GroupName".into(), json!("g"));
                o.insert("OwnerId".into(), json!("111122223333"));
                o.insert("IpPermissions".into(), list(&g.ingress, 4).iter().map(Permission::value).collect());
                o.insert("IpPermissionsEgress".into(), list(&g.egress, 4).iter().map(Permission::value).collect());
                Value::Object(o)
            }).collect::<Vec<_>>()}),
            Doc::NetworkInterfaces(v) => json!({"NetworkInterfaces": list(v, 4).iter().map(|e| {
                let mut o = serde_json::Map::new();
                put(&mut o, "NetworkInterfaceId", e.id.value(&ENIS));
                put(&mut o, "SubnetId", e.subnet.value(&SUBNETS));
                put(&mut o, "VpcId", e.vpc.value(&VPCS));
                o.insert("OwnerId".into(), json!("111122223333"));
                let primary = mostly(&ADDRESSES, 2, e.primary);
                o.insert("PrivateIpAddress".into(), json!(primary));
                let mut addrs = vec![json!({"PrivateIpAddress": primary, "Primary": true})];
                addrs.extend(list(&e.secondary, 2).iter().map(|&i| json!({"PrivateIpAddress": mostly(&ADDRESSES, 2, i), "Primary": false})));
                o.insert("PrivateIpAddresses".into(), Value::Array(addrs));
                o.insert("Groups".into(), list(&e.groups, 3).iter().map(|&i| json!({"GroupId": mostly(&GROUPS, 1, i), "GroupName": "g"})).collect());
                put(&mut o, "InterfaceType", e.kind.map(|k| json!(pick(&INTERFACE_TYPES, k))));
                put(&mut o, "Attachment", e.instance.map(|i| json!({"InstanceId": format!("i-000{}", i % 4)})));
                Value::Object(o)
            }).collect::<Vec<_>>()}),
            Doc::NetworkAcls(v) => json!({"NetworkAcls": list(v, 3).iter().map(|a| {
                let mut o = serde_json::Map::new();
                put(&mut o, "NetworkAclId", a.id.value(&ACLS));
                put(&mut o, "VpcId", a.vpc.value(&VPCS));
                o.insert("IsDefault".into(), json!(a.default));
                let id = a.id.value(&ACLS).unwrap_or(Value::Null);
                o.insert("Associations".into(), list(&a.subnets, 3).iter().map(|&s| json!({
                    "NetworkAclAssociationId": format!("aclassoc-{s}"),
                    "NetworkAclId": id,
                    "SubnetId": pick(&SUBNETS, s),
                })).collect());
                o.insert("Entries".into(), list(&a.entries, 8).iter().map(|e| {
                    let proto = match e.proto {
                        Result8::Pool(i) => match pick(&PROTOCOLS, i) {
                            "tcp" => "6".to_string(),
                            "udp" => "17".to_string(),
                            p => p.to_string(),
                        },
                        Result8::Number(n) => n.to_string(),
                    };
                    let cidr = mostly(&CIDRS, 4, e.cidr);
                    let key = if cidr.contains(':') { "Ipv6CidrBlock" } else { "CidrBlock" };
                    let mut x = json!({
                        "RuleNumber": e.number,
                        "Protocol": proto,
                        "RuleAction": if e.allow { "allow" } else { "deny" },
                        "Egress": e.egress,
                        key: cidr,
                    });
                    if let Some((f, t)) = e.ports {
                        x["PortRange"] = json!({"From": PORTS[usize::from(f) % PORTS.len()], "To": PORTS[usize::from(t) % PORTS.len()]});
                    }
                    x
                }).collect());
                Value::Object(o)
            }).collect::<Vec<_>>()}),
        }
    }
}

/// Up to eight documents, written as the target's bytes: JSON joined by NUL bytes.
#[derive(Debug, Clone)]
pub struct Account {
    pub docs: Vec<Doc>,
}

impl<'a> Arbitrary<'a> for Account {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let mut docs = Vec::new();
        while docs.len() < 8 && !u.is_empty() {
            docs.push(Doc::arbitrary(u)?);
        }
        Ok(Account { docs })
    }
}

impl Account {
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, d) in self.docs.iter().enumerate() {
            if i > 0 {
                out.push(0);
            }
            out.extend(serde_json::to_vec(&d.value()).expect("JSON"));
        }
        out
    }
}

/// The `import_aws_structured` target's body: decode, write, check
/// ([`crate::invariants::check_import_aws_accounted`]).
pub fn check(data: &[u8]) {
    let Ok(a) = Account::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    crate::invariants::check_import_aws_accounted(&a.bytes());
}
