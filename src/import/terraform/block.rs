//! One resource's attributes (or one nested block's), read as they will be
//! after apply: a known value as the plan or state gives it, an unknown one
//! through the configuration's expression for it (a constant, or references
//! to other resources, variables and module outputs).

use serde_json::Value;

use super::doc::{contains_true, is_unknown, Doc, Got, Resource};
use crate::import::json::Node;
use crate::import::ImportError;
use crate::policy::model::{At, Origin};

/// The attributes of a resource or a nested block.
#[derive(Clone)]
pub(super) struct Block<'d, 'a> {
    doc: &'d Doc<'a>,
    scope: &'d str,
    /// The known values; `None` when the whole block is unknown.
    known: Option<Node<'a>>,
    unknown: Option<&'a Value>,
    /// The block's expressions in the configuration.
    config: Option<Node<'a>>,
}

/// Keys that tell the blocks of one set apart when matching a planned block
/// with unknown parts to the configuration block it came from.
const MATCH_KEYS: &[&str] = &[
    "from_port",
    "to_port",
    "protocol",
    "description",
    "rule_no",
    "action",
    "self",
];

type R<T> = Result<Got<T>, ImportError>;

impl<'d, 'a> Block<'d, 'a> {
    pub fn of(doc: &'d Doc<'a>, r: &'d Resource<'a>) -> Block<'d, 'a> {
        Block {
            doc,
            scope: &r.scope,
            known: Some(r.values.clone()),
            unknown: r.unknown,
            config: r.config.clone(),
        }
    }

    /// Where the block is: its planned values, else its configuration.
    pub fn origin(&self) -> Origin {
        match (&self.known, &self.config) {
            (Some(k), _) => k.origin(),
            (None, Some(c)) => c.origin(),
            (None, None) => Origin::None,
        }
    }

    fn unknown(&self, key: &str) -> bool {
        self.known.is_none() || is_unknown(self.unknown, key)
    }

    /// Whether the value will be known only after apply.
    pub fn is_unknown(&self, key: &str) -> bool {
        self.unknown(key)
    }

    /// The values the configuration gives `key`.
    fn configured(&self, key: &str) -> Got<Option<(Vec<String>, Origin)>> {
        // Not written in the configuration: a value AWS computes, which the
        // callers that need it (an instance's address) say so about.
        let Some(config) = &self.config else {
            return if self.known.is_none() {
                Ok(None)
            } else {
                Err(format!(
                    "`{key}` is known only after apply and the plan has no configuration for it"
                ))
            };
        };
        let Some(expr) = config.get(key) else {
            return Ok(None);
        };
        let v = self
            .doc
            .resolve(self.scope, &expr, 0)
            .map_err(|why| format!("`{key}`: {why}"))?;
        Ok(Some((v, expr.origin())))
    }

    /// A string attribute (empty is unset).
    pub fn str(&self, key: &str) -> R<Option<At<String>>> {
        if let (Some(k), false) = (&self.known, self.unknown(key)) {
            return Ok(Ok(k.str(key)?.map(|s| {
                At::new(
                    s.to_string(),
                    k.get(key).map(|n| n.origin()).unwrap_or_default(),
                )
            })));
        }
        Ok(match self.configured(key) {
            Err(why) => Err(why),
            Ok(None) => Ok(None),
            Ok(Some((v, origin))) => match v.as_slice() {
                [] => Ok(None),
                [one] => Ok(Some(At::new(one.clone(), origin))),
                _ => Err(format!("`{key}` has several values: {}", v.join(", "))),
            },
        })
    }

    /// A list of strings (a string alone is a list of one).
    pub fn strings(&self, key: &str) -> R<Vec<At<String>>> {
        let mut out = Vec::new();
        if let Some(k) = &self.known {
            if let Some(n) = k.get(key) {
                match n.value {
                    Value::String(s) if !s.is_empty() => out.push(At::new(s.clone(), n.origin())),
                    Value::Array(_) => {
                        for item in n.items()? {
                            match item.value {
                                Value::Null => {}
                                Value::String(s) => out.push(At::new(s.clone(), item.origin())),
                                v => {
                                    return Err(item.error(format!(
                                        "expected a string, found {}",
                                        crate::import::json::kind(v)
                                    )))
                                }
                            }
                        }
                    }
                    Value::String(_) => {}
                    v => {
                        return Err(n.error(format!(
                            "expected a list of strings, found {}",
                            crate::import::json::kind(v)
                        )))
                    }
                }
            }
        }
        if self.unknown(key) {
            match self.configured(key) {
                Err(why) => return Ok(Err(why)),
                Ok(None) => {}
                Ok(Some((v, origin))) => {
                    for s in v {
                        if !out.iter().any(|o| o.value == s) {
                            out.push(At::new(s, origin.clone()));
                        }
                    }
                }
            }
        }
        Ok(Ok(out))
    }

    /// An integer attribute.
    pub fn int(&self, key: &str) -> R<Option<At<i64>>> {
        if let (Some(k), false) = (&self.known, self.unknown(key)) {
            return Ok(Ok(k.int(key)?.map(|v| {
                At::new(v, k.get(key).map(|n| n.origin()).unwrap_or_default())
            })));
        }
        Ok(match self.str(key)? {
            Err(why) => Err(why),
            Ok(None) => Ok(None),
            Ok(Some(s)) => match s.value.trim().parse::<i64>() {
                Ok(n) => Ok(Some(At::new(n, s.origin))),
                Err(_) => Err(format!("`{key}` is `{}`, not an integer", s.value)),
            },
        })
    }

    /// A boolean attribute.
    pub fn bool(&self, key: &str) -> R<Option<bool>> {
        if let (Some(k), false) = (&self.known, self.unknown(key)) {
            return Ok(Ok(k.bool(key)?));
        }
        Ok(match self.str(key)? {
            Err(why) => Err(why),
            Ok(None) => Ok(None),
            Ok(Some(s)) => match s.value.as_str() {
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                other => Err(format!("`{key}` is `{other}`, not true or false")),
            },
        })
    }

    /// A map attribute's string member (`tags.Name`), known values only.
    pub fn tag(&self, map: &str, key: &str) -> Result<Option<String>, ImportError> {
        match self.known.as_ref().and_then(|k| k.get(map)) {
            Some(m) if !self.unknown(map) || m.value.get(key).is_some() => {
                Ok(m.str(key)?.map(str::to_string))
            }
            _ => Ok(None),
        }
    }

    /// The nested blocks `key` (a set or list of objects), each able to
    /// resolve its own unknown parts.
    pub fn blocks(&self, key: &str) -> R<Vec<Block<'d, 'a>>> {
        let configs: Vec<Node<'a>> = match self.config.as_ref().and_then(|c| c.get(key)) {
            Some(n) if n.value.is_array() => n.items()?,
            _ => Vec::new(),
        };
        let whole = self.known.is_none()
            || matches!(
                self.unknown.and_then(|u| u.get(key)),
                Some(Value::Bool(true))
            );
        let known = match (&self.known, whole) {
            (Some(k), false) => k,
            _ => {
                if configs.is_empty() && self.config.as_ref().is_some_and(|c| c.has(key)) {
                    return Ok(Err(format!(
                    "`{key}` is known only after apply and written as an expression the importer does not follow (a dynamic block?)"
                )));
                }
                if self.config.is_none() && self.known.is_some() {
                    return Ok(Err(format!(
                    "`{key}` is known only after apply and the plan has no configuration for it"
                )));
                }
                return Ok(Ok(configs
                    .into_iter()
                    .map(|c| self.child(None, None, Some(c)))
                    .collect()));
            }
        };
        let marks = self
            .unknown
            .and_then(|u| u.get(key))
            .and_then(Value::as_array);
        let mut used = vec![false; configs.len()];
        let mut out = Vec::new();
        for (i, item) in known.array(key)?.into_iter().enumerate() {
            let mark = marks.and_then(|m| m.get(i));
            let config = if mark.is_some_and(contains_true) {
                let j = (0..configs.len()).find(|&j| !used[j] && same_block(&item, &configs[j]));
                match j {
                    Some(j) => {
                        used[j] = true;
                        Some(configs[j].clone())
                    }
                    None => None,
                }
            } else {
                None
            };
            out.push(self.child(Some(item), mark, config));
        }
        Ok(Ok(out))
    }

    fn child(
        &self,
        known: Option<Node<'a>>,
        unknown: Option<&'a Value>,
        config: Option<Node<'a>>,
    ) -> Block<'d, 'a> {
        Block {
            doc: self.doc,
            scope: self.scope,
            known,
            unknown,
            config,
        }
    }
}

/// Whether a planned block agrees with a configuration block on every key
/// both give a constant for.
fn same_block(planned: &Node, config: &Node) -> bool {
    MATCH_KEYS.iter().all(|k| {
        let c = config.get(k).and_then(|e| e.get("constant_value"));
        match (planned.value.get(*k), c) {
            (Some(p), Some(c)) => loose_eq(p, c.value),
            _ => true,
        }
    })
}

fn loose_eq(a: &Value, b: &Value) -> bool {
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    s(a) == s(b)
}
