//! The document as Terraform writes it: the resources of a plan's
//! `planned_values` or a state's `values` (modules walked recursively),
//! which of their values are unknown until apply (`resource_changes[].change
//! .after_unknown`), and the `configuration` whose `references` say what an
//! unknown value will be.
//!
//! Every resource gets a model id up front: its own id when known, else a
//! placeholder derived from its address that keeps the model's prefix rules
//! (`sg-tf-web` for `aws_security_group.web`, `sg-tf-net.web` inside
//! `module.net`). A reference to a resource whose id is unknown resolves to
//! that placeholder, so two new groups can name each other before either
//! exists.

use std::collections::HashMap;

use serde_json::Value;

use crate::import::json::Node;
use crate::import::ImportError;

/// One resource instance of the plan or state.
pub(super) struct Resource<'a> {
    /// `module.net.aws_security_group.web[0]`.
    pub address: String,
    /// The module instance it is in, as an address prefix: `module.net.` or ``.
    pub scope: String,
    pub data: bool,
    pub kind: &'a str,
    pub name: &'a str,
    pub values: Node<'a>,
    /// `after_unknown` of its change (plans only).
    pub unknown: Option<&'a Value>,
    /// Its `expressions` in the configuration (plans only).
    pub config: Option<Node<'a>>,
}

/// A value an attribute will have, or why it cannot be known.
pub(super) type Got<T> = Result<T, String>;

/// Terraform's `show -json`, indexed.
pub(super) struct Doc<'a> {
    pub root: Node<'a>,
    pub resources: Vec<Resource<'a>>,
    by_address: HashMap<String, usize>,
    /// `configuration.root_module`.
    config: Option<Node<'a>>,
    /// Model ids by resource address: known ids, or placeholders.
    ids: HashMap<String, String>,
    /// Resource addresses by known ARN and id, for values given literally.
    by_value: HashMap<String, usize>,
}

impl<'a> Doc<'a> {
    pub fn read(v: &'a Value, file: &str) -> Result<Doc<'a>, ImportError> {
        let root = Node::root(v, file);
        let mut doc = Doc {
            root: root.clone(),
            resources: Vec::new(),
            by_address: HashMap::new(),
            config: root.get("configuration").and_then(|c| c.get("root_module")),
            ids: HashMap::new(),
            by_value: HashMap::new(),
        };
        let module = match root.get("planned_values") {
            Some(p) => p.get("root_module"),
            None => root.need("values")?.get("root_module"),
        };
        if let Some(m) = module {
            doc.walk(&m)?;
        }
        // Data sources read at plan time are in the prior state.
        if let Some(m) = root
            .get("prior_state")
            .and_then(|p| p.get("values").and_then(|v| v.get("root_module")))
        {
            doc.walk_data(&m)?;
        }
        doc.attach_changes()?;
        for i in 0..doc.resources.len() {
            doc.attach_config(i)?;
            doc.name(i)?;
        }
        Ok(doc)
    }

    fn walk(&mut self, module: &Node<'a>) -> Result<(), ImportError> {
        for r in module.array("resources")? {
            self.add(r)?;
        }
        for m in module.array("child_modules")? {
            self.walk(&m)?;
        }
        Ok(())
    }

    fn walk_data(&mut self, module: &Node<'a>) -> Result<(), ImportError> {
        for r in module.array("resources")? {
            if r.str("mode")? == Some("data")
                && !self.by_address.contains_key(r.need_str("address")?)
            {
                self.add(r)?;
            }
        }
        for m in module.array("child_modules")? {
            self.walk_data(&m)?;
        }
        Ok(())
    }

    fn add(&mut self, r: Node<'a>) -> Result<(), ImportError> {
        let address = r.need_str("address")?.to_string();
        let data = r.str("mode")? == Some("data");
        let kind = r.need_str("type")?;
        let name = r.need_str("name")?;
        let scope = scope_of(&address, data, kind);
        let values = r.need("values")?;
        if !values.value.is_object() {
            return Err(values.error(format!(
                "expected an object, found {}",
                crate::import::json::kind(values.value)
            )));
        }
        self.by_address
            .insert(address.clone(), self.resources.len());
        self.resources.push(Resource {
            address,
            scope,
            data,
            kind,
            name,
            values,
            unknown: None,
            config: None,
        });
        Ok(())
    }

    fn attach_changes(&mut self) -> Result<(), ImportError> {
        for c in self.root.array("resource_changes")? {
            let address = c.need_str("address")?;
            let Some(&i) = self.by_address.get(address) else {
                continue;
            };
            if let Some(change) = c.get("change") {
                self.resources[i].unknown = change.get("after_unknown").map(|n| n.value);
            }
        }
        Ok(())
    }

    /// The `resource_changes` entries whose actions delete a resource and
    /// do not create it again: (address, the change's node).
    pub fn deleted(&self) -> Result<Vec<(String, Node<'a>)>, ImportError> {
        let mut out = Vec::new();
        for c in self.root.array("resource_changes")? {
            let Some(change) = c.get("change") else {
                continue;
            };
            let actions: Vec<&str> = change
                .strings("actions")?
                .into_iter()
                .map(|(s, _)| s)
                .collect();
            if actions.contains(&"delete") && !actions.contains(&"create") {
                out.push((c.need_str("address")?.to_string(), c.clone()));
            }
        }
        Ok(out)
    }

    /// The configuration module of a scope (`module.a[0].module.b.`).
    fn config_module(&self, scope: &str) -> Option<Node<'a>> {
        let mut m = self.config.clone()?;
        for call in module_names(scope) {
            m = m.get("module_calls")?.get(&call)?.get("module")?;
        }
        Some(m)
    }

    fn attach_config(&mut self, i: usize) -> Result<(), ImportError> {
        let r = &self.resources[i];
        let Some(m) = self.config_module(&r.scope) else {
            return Ok(());
        };
        let want = if r.data {
            format!("data.{}.{}", r.kind, r.name)
        } else {
            format!("{}.{}", r.kind, r.name)
        };
        for c in m.array("resources")? {
            if c.str("address")? == Some(want.as_str()) {
                self.resources[i].config = c.get("expressions");
                break;
            }
        }
        Ok(())
    }

    fn name(&mut self, i: usize) -> Result<(), ImportError> {
        let r = &self.resources[i];
        let known = |k: &str| -> Result<Option<String>, ImportError> {
            Ok(if is_unknown(r.unknown, k) {
                None
            } else {
                r.values.str(k)?.map(str::to_string)
            })
        };
        for k in ["arn", "id"] {
            if let Some(v) = known(k)? {
                self.by_value.insert(v, i);
            }
        }
        let id = match r.kind {
            // Load balancers and target groups are named by their names.
            "aws_lb" | "aws_alb" | "aws_lb_target_group" | "aws_alb_target_group" => known("name")?,
            _ => known("id")?,
        };
        let id = id.unwrap_or_else(|| placeholder(prefix_of(r.kind), &r.address));
        self.ids.insert(r.address.clone(), id);
        Ok(())
    }

    /// The model id of a resource: its id, or its placeholder.
    pub fn id(&self, r: &Resource) -> &str {
        &self.ids[&r.address]
    }

    /// The resource a literal value (an id or an ARN) names, if any.
    pub fn by_value(&self, v: &str) -> Option<&Resource<'a>> {
        self.by_value.get(v).map(|&i| &self.resources[i])
    }

    /// A literal value (an id or ARN) as a model id: the resource it names,
    /// else itself.
    pub fn model_id(&self, v: &str) -> String {
        match self.by_value(v) {
            Some(r) => self.id(r).to_string(),
            None => v.to_string(),
        }
    }

    /// What the references of an expression will be, in `scope`: model ids
    /// of the resources named, known attribute values, variables' values.
    pub fn resolve(&self, scope: &str, expr: &Node<'a>, depth: u32) -> Got<Vec<String>> {
        if let Some(c) = expr.get("constant_value") {
            return Ok(strings_of(c.value));
        }
        let refs: Vec<&str> = expr
            .value
            .get("references")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if refs.is_empty() {
            return Err("its expression has no references to follow".into());
        }
        if depth > 16 {
            return Err("its references go too deep".into());
        }
        let mut out = Vec::new();
        for (k, r) in refs.iter().enumerate() {
            // Terraform lists `a.b.id` then `a.b`: the bare one only counts alone.
            if refs[..k]
                .iter()
                .any(|p| p.starts_with(r) && p[r.len()..].starts_with(['.', '[']))
            {
                continue;
            }
            if let Some(v) = self.resolve_one(scope, r, depth)? {
                out.extend(v);
            }
        }
        if out.is_empty() {
            return Err(format!(
                "it is known only after apply and its references ({}) cannot be followed",
                refs.join(", ")
            ));
        }
        out.dedup();
        Ok(out)
    }

    /// One reference; `Ok(None)` for one that names no value (`count.index`).
    fn resolve_one(&self, scope: &str, r: &str, depth: u32) -> Got<Option<Vec<String>>> {
        let parts = split_ref(r);
        let head = parts.first().map(String::as_str).unwrap_or("");
        match head {
            "var" if parts.len() >= 2 => self.variable(scope, &parts[1], depth).map(Some),
            "module" if parts.len() >= 3 => {
                let child = format!("{scope}module.{}.", parts[1]);
                let out = self
                    .config_module(&child)
                    .and_then(|m| m.get("outputs")?.get(&parts[2])?.get("expression"))
                    .ok_or_else(|| format!("module output `{r}` is not in the configuration"))?;
                self.resolve(&child, &out, depth + 1).map(Some)
            }
            "count" | "each" | "path" | "self" | "terraform" | "local" => Ok(None),
            _ => {
                let (data, rest) = if head == "data" {
                    (true, &parts[1..])
                } else {
                    (false, &parts[..])
                };
                if rest.len() < 2 {
                    return Ok(None);
                }
                let base = format!(
                    "{scope}{}{}.{}",
                    if data { "data." } else { "" },
                    rest[0],
                    rest[1]
                );
                Ok(Some(
                    self.resource_ref(&base, rest.get(2).map(String::as_str))?,
                ))
            }
        }
    }

    /// `base` (`aws_security_group.web` or `…web[0]`) and an attribute.
    fn resource_ref(&self, base: &str, attr: Option<&str>) -> Got<Vec<String>> {
        let found: Vec<&Resource> = self
            .resources
            .iter()
            .filter(|r| {
                r.address == base
                    || r.address
                        .strip_prefix(base)
                        .is_some_and(|t| t.starts_with('['))
            })
            .collect();
        if found.is_empty() {
            return Err(format!("it references `{base}`, which is not in the plan"));
        }
        let mut out = Vec::new();
        for r in found {
            let attr = attr.unwrap_or("id");
            match r.values.value.get(attr) {
                Some(v) if !is_unknown(r.unknown, attr) && !v.is_null() && attr != "id" => {
                    out.extend(strings_of(v))
                }
                _ if matches!(attr, "id" | "arn") => out.push(self.id(r).to_string()),
                _ => {
                    return Err(format!(
                        "it references `{}.{attr}`, which is known only after apply",
                        r.address
                    ))
                }
            }
        }
        Ok(out)
    }

    fn variable(&self, scope: &str, name: &str, depth: u32) -> Got<Vec<String>> {
        if scope.is_empty() {
            return self
                .root
                .get("variables")
                .and_then(|v| v.get(name))
                .and_then(|v| v.get("value"))
                .map(|v| strings_of(v.value))
                .ok_or_else(|| format!("variable `{name}` has no value in the plan"));
        }
        // A module's variable is the call's argument, in the caller's scope.
        let trimmed = scope.trim_end_matches('.');
        let cut = trimmed.rfind(".module.").map(|i| i + 1).unwrap_or(0);
        let parent = &scope[..cut];
        let call = module_names(&scope[cut..]).pop().unwrap_or_default();
        let expr = self
            .config_module(parent)
            .and_then(|m| {
                m.get("module_calls")?
                    .get(&call)?
                    .get("expressions")?
                    .get(name)
            })
            .ok_or_else(|| format!("variable `{name}` of module `{call}` is not set"))?;
        self.resolve(parent, &expr, depth + 1)
    }
}

/// The module instance prefix of an address.
fn scope_of(address: &str, data: bool, kind: &str) -> String {
    let tail = if data {
        format!("data.{kind}.")
    } else {
        format!("{kind}.")
    };
    match address.rfind(&tail) {
        Some(i) if i == 0 || address[..i].ends_with('.') => address[..i].to_string(),
        _ => String::new(),
    }
}

/// `module.a[0].module.b.` → `["a", "b"]`.
fn module_names(scope: &str) -> Vec<String> {
    let parts = split_ref(scope.trim_end_matches('.'));
    parts
        .chunks(2)
        .filter(|c| c.len() == 2 && c[0] == "module")
        .map(|c| c[1].clone())
        .collect()
}

/// Splits a reference at dots outside brackets, dropping indices of module
/// calls but keeping a resource's (`aws_x.y[0]` stays one part with `y[0]`).
fn split_ref(r: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut depth = 0;
    for ch in r.chars() {
        match ch {
            '[' => {
                depth += 1;
                cur.push(ch);
            }
            ']' => {
                depth -= 1;
                cur.push(ch);
            }
            '.' if depth == 0 => parts.push(std::mem::take(&mut cur)),
            _ => cur.push(ch),
        }
    }
    parts.push(cur);
    // Module names lose their index for the configuration's sake; the
    // address keeps it via `scope`.
    for i in 0..parts.len() {
        if i > 0 && parts[i - 1] == "module" {
            if let Some(b) = parts[i].find('[') {
                parts[i].truncate(b);
            }
        }
    }
    parts
}

/// A JSON value as strings: a string, a number, or a list of them.
fn strings_of(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) if !s.is_empty() => vec![s.clone()],
        Value::Number(n) => vec![n.to_string()],
        Value::Array(a) => a.iter().flat_map(strings_of).collect(),
        _ => Vec::new(),
    }
}

/// Whether `after_unknown` marks `key` (or all of it) unknown, or any part of it.
pub(super) fn is_unknown(unknown: Option<&Value>, key: &str) -> bool {
    match unknown {
        Some(Value::Bool(true)) => true,
        Some(u) => u.get(key).is_some_and(contains_true),
        None => false,
    }
}

pub(super) fn contains_true(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Array(a) => a.iter().any(contains_true),
        Value::Object(m) => m.values().any(contains_true),
        _ => false,
    }
}

/// The id prefix the model expects of a resource type.
fn prefix_of(kind: &str) -> &'static str {
    match kind {
        "aws_security_group" => "sg",
        "aws_vpc" => "vpc",
        "aws_subnet" => "subnet",
        "aws_network_interface" => "eni",
        "aws_instance" => "i",
        "aws_network_acl" => "acl",
        "aws_lb" | "aws_alb" => "lb",
        "aws_lb_target_group" | "aws_alb_target_group" => "tg",
        "aws_vpc_endpoint" => "vpce",
        "aws_route_table" => "rtb",
        "aws_internet_gateway" => "igw",
        "aws_vpc_peering_connection" => "pcx",
        "aws_ec2_managed_prefix_list" => "pl",
        "aws_security_group_rule"
        | "aws_vpc_security_group_ingress_rule"
        | "aws_vpc_security_group_egress_rule" => "sgr",
        _ => "tf",
    }
}

/// `sg-tf-web` for `aws_security_group.web`, `sg-tf-net.web-0` for
/// `module.net.aws_security_group.web[0]`: module names, the resource name
/// and any index, in characters a policy file's names keep readable.
pub(super) fn placeholder(prefix: &str, address: &str) -> String {
    let parts = split_ref_keep(address);
    let mut names = Vec::new();
    let mut i = 0;
    while i < parts.len() {
        if parts[i] == "module" && i + 1 < parts.len() {
            names.push(clean(&parts[i + 1]));
            i += 2;
        } else if parts[i] == "data" {
            names.push("data".to_string());
            i += 1;
        } else {
            // type.name[idx]: the type is in the prefix.
            if let Some(n) = parts.get(i + 1) {
                names.push(clean(n));
            }
            i += 2;
        }
    }
    format!("{prefix}-tf-{}", names.join("."))
}

fn split_ref_keep(r: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut depth = 0;
    for ch in r.chars() {
        match ch {
            '[' => {
                depth += 1;
                cur.push(ch);
            }
            ']' => {
                depth -= 1;
                cur.push(ch);
            }
            '.' if depth == 0 => parts.push(std::mem::take(&mut cur)),
            _ => cur.push(ch),
        }
    }
    parts.push(cur);
    parts
}

/// `web["a b"]` → `web-a-b`, `web[0]` → `web-0`.
fn clean(s: &str) -> String {
    let mut out = String::new();
    for ch in s.chars() {
        match ch {
            '[' => out.push('-'),
            ']' | '"' => {}
            c if c.is_ascii_alphanumeric() || c == '_' || c == '-' => out.push(c),
            _ => out.push('-'),
        }
    }
    out
}

impl<'a> Doc<'a> {
    /// The managed resources of one type, in address order.
    pub fn managed<'s>(&'s self, kind: &'s str) -> impl Iterator<Item = &'s Resource<'a>> + 's {
        let mut v: Vec<&Resource> = self
            .resources
            .iter()
            .filter(|r| !r.data && r.kind == kind)
            .collect();
        v.sort_by(|a, b| a.address.cmp(&b.address));
        v.into_iter()
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn placeholders_follow_the_address() {
        assert_eq!(placeholder("sg", "aws_security_group.web"), "sg-tf-web");
        assert_eq!(
            placeholder("sg", "module.net.aws_security_group.web[0]"),
            "sg-tf-net.web-0"
        );
        assert_eq!(
            placeholder("sg", "module.a[\"x\"].module.b.aws_security_group.web"),
            "sg-tf-a-x.b.web"
        );
        assert_eq!(
            scope_of("module.net.aws_vpc.main", false, "aws_vpc"),
            "module.net."
        );
        assert_eq!(module_names("module.a[0].module.b."), vec!["a", "b"]);
    }
}
