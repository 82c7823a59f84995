//! The `import_json_edits` target's input: one of the tree's cloud
//! snapshots (the AWS, Alibaba and Azure twins under `config/` and
//! `tests/data/azure/demo`), its JSON documents edited by up to 32
//! structured edits — a value removed, replaced by one from the importers'
//! edges (ids of every kind, CIDRs and ports past their limits, wrong
//! types), an array element repeated, two values swapped — then imported
//! by that snapshot's cloud under [`crate::invariants::check_import`]. Most
//! inputs stay valid JSON of the right shape, so they reach the importers'
//! model building and the policy writer, which byte-level mutation of the
//! documents rarely does.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use arbitrary::{Arbitrary, Result, Unstructured};
use serde_json::Value;
use sgplane::import::Provider;

/// The snapshots, relative to the repository: (cloud, folder of documents).
const SNAPSHOTS: [(Provider, &str); 9] = [
    (Provider::Aws, "config/aws-default-sg.aws"),
    (Provider::Aws, "config/aws-default-sg-fixed.aws"),
    (Provider::Aws, "config/privatelink-nlb.aws"),
    (Provider::Aws, "config/privatelink-story.aws"),
    (Provider::Aws, "config/privatelink-story-cross-zone.aws"),
    (Provider::Aws, "config/privatelink-story-unenforced.aws"),
    (Provider::Alibaba, "config/ack-cluster.alibaba"),
    (Provider::Alibaba, "config/mse-gateway.alibaba"),
    (Provider::Azure, "tests/data/azure/demo"),
];

/// Values the importers meet at their edges.
const EDGES: [&str; 40] = [
    "sg-0123456789abcdef0",
    "sg-",
    "pl-0abc",
    "vpc-0abc",
    "subnet-0abc",
    "eni-0abc",
    "acl-0abc",
    "rtb-0abc",
    "vpce-0abc",
    "sg-ack-basic",
    "vsw-0abc",
    "eni-ali",
    "/subscriptions/0/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/nsg",
    "0.0.0.0/0",
    "::/0",
    "10.0.0.0/8",
    "10.0.1.10",
    "10.0.1.10/33",
    "2001:db8::/129",
    "300.0.0.1/32",
    "-1",
    "-1/-1",
    "80/90",
    "90/80",
    "1/65536",
    "65536",
    "0",
    "tcp",
    "udp",
    "icmp",
    "icmpv6",
    "all",
    "6",
    "58",
    "accept",
    "drop",
    "ingress",
    "egress",
    "*",
    "",
];

#[derive(Debug, Arbitrary)]
enum Leaf {
    Null,
    Bool(bool),
    Int(i64),
    Port(u16),
    Edge(u8),
    Text(String),
    EmptyArray,
    EmptyObject,
}

impl Leaf {
    fn value(&self) -> Value {
        match self {
            Leaf::Null => Value::Null,
            Leaf::Bool(b) => Value::Bool(*b),
            Leaf::Int(n) => Value::from(*n),
            Leaf::Port(p) => Value::from(*p),
            Leaf::Edge(i) => Value::from(EDGES[usize::from(*i) % EDGES.len()]),
            Leaf::Text(s) => Value::from(s.as_str()),
            Leaf::EmptyArray => Value::Array(Vec::new()),
            Leaf::EmptyObject => Value::Object(Default::default()),
        }
    }
}

/// Where an edit applies: a document, then at each object a key and at
/// each array an element, chosen by the steps modulo their number; the
/// walk stops where the steps or the tree end.
#[derive(Debug, Arbitrary)]
struct At {
    doc: u8,
    steps: Vec<u16>,
}

#[derive(Debug, Arbitrary)]
enum Edit {
    Remove(At),
    Set(At, Leaf),
    Repeat(At),
    Swap(At, At),
}

#[derive(Debug)]
pub struct Input {
    pub provider: Provider,
    /// The edited documents, joined by NUL bytes as the byte-level targets
    /// take them.
    pub joined: Vec<u8>,
}

impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Input> {
        let snapshots = snapshots();
        let (provider, docs) = &snapshots[usize::from(u.arbitrary::<u8>()?) % snapshots.len()];
        let mut docs = docs.clone();
        let n = u.int_in_range(0..=32)?;
        for _ in 0..n {
            apply(&mut docs, &Edit::arbitrary(u)?);
        }
        let joined = docs
            .iter()
            .map(|d| serde_json::to_vec(d).expect("a JSON value serialises"))
            .collect::<Vec<_>>()
            .join(&0u8);
        Ok(Input {
            provider: *provider,
            joined,
        })
    }
}

/// The target's body: decode, then import under the import invariants.
pub fn check(data: &[u8]) {
    if let Ok(input) = Input::arbitrary(&mut Unstructured::new(data)) {
        crate::invariants::check_import(input.provider, &input.joined);
    }
}

fn apply(docs: &mut [Value], edit: &Edit) {
    match edit {
        Edit::Remove(p) => {
            if let Some((parent, last)) = parent_of(docs, p) {
                match parent {
                    Value::Object(m) => {
                        let key = m.keys().nth(last % m.len().max(1)).cloned();
                        if let Some(k) = key {
                            m.remove(&k);
                        }
                    }
                    Value::Array(a) if !a.is_empty() => {
                        let i = last % a.len();
                        a.remove(i);
                    }
                    _ => {}
                }
            }
        }
        Edit::Set(p, leaf) => {
            if let Some(v) = node(docs, p) {
                *v = leaf.value();
            }
        }
        Edit::Repeat(p) => {
            if let Some(Value::Array(a)) = node(docs, p) {
                if let Some(first) = a.first().cloned() {
                    a.push(first);
                }
            }
        }
        Edit::Swap(a, b) => {
            let va = node(docs, a).map(|v| v.clone());
            let vb = node(docs, b).map(|v| v.clone());
            if let (Some(va), Some(vb)) = (va, vb) {
                if let Some(x) = node(docs, a) {
                    *x = vb;
                }
                if let Some(y) = node(docs, b) {
                    *y = va;
                }
            }
        }
    }
}

/// The value the path leads to.
fn node<'d>(docs: &'d mut [Value], p: &At) -> Option<&'d mut Value> {
    if docs.is_empty() {
        return None;
    }
    let d = usize::from(p.doc) % docs.len();
    // Which member at each level, found on a shared walk first.
    let mut picks = Vec::new();
    let mut v = &docs[d];
    for &s in &p.steps {
        let s = usize::from(s);
        let (next, i) = match v {
            Value::Object(m) if !m.is_empty() => {
                let i = s % m.len();
                (m.values().nth(i)?, i)
            }
            Value::Array(a) if !a.is_empty() => {
                let i = s % a.len();
                (&a[i], i)
            }
            _ => break,
        };
        picks.push(i);
        v = next;
    }
    let mut v = &mut docs[d];
    for i in picks {
        v = match v {
            Value::Object(m) => m.values_mut().nth(i)?,
            Value::Array(a) => a.get_mut(i)?,
            _ => return None,
        };
    }
    Some(v)
}

/// The container holding the value the path leads to, and the last step
/// (which of its members): for removing it.
fn parent_of<'d>(docs: &'d mut [Value], p: &At) -> Option<(&'d mut Value, usize)> {
    let (&last, steps) = p.steps.split_last()?;
    let parent = At {
        doc: p.doc,
        steps: steps.to_vec(),
    };
    node(docs, &parent).map(|v| (v, usize::from(last)))
}

/// Each snapshot's cloud and documents, read once.
fn snapshots() -> &'static [(Provider, Vec<Value>)] {
    static SNAPS: OnceLock<Vec<(Provider, Vec<Value>)>> = OnceLock::new();
    SNAPS.get_or_init(|| {
        let root = repository();
        SNAPSHOTS
            .iter()
            .map(|(provider, dir)| {
                let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
                    .unwrap_or_else(|e| panic!("{dir}: {e}"))
                    .map(|e| e.expect("a directory entry").path())
                    .filter(|p| p.extension().is_some_and(|x| x == "json"))
                    .collect();
                files.sort();
                let docs = files
                    .iter()
                    .map(|f| {
                        let text = std::fs::read(f).expect("a snapshot document reads");
                        serde_json::from_slice(&text).expect("a snapshot document is JSON")
                    })
                    .collect();
                (*provider, docs)
            })
            .collect()
    })
}

/// The repository's root: this crate's parent, or the crate itself when
/// this file is included by the root crate's tests.
fn repository() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    if here.join("config").is_dir() {
        here.to_path_buf()
    } else {
        here.join("..")
    }
}
