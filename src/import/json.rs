//! JSON read with its path: every value an importer takes knows where it
//! was (`$.SecurityGroups[3].IpPermissions[0].FromPort`), so that a value
//! of the wrong type is an error naming the file and the path, and what the
//! importer builds keeps an [`Origin`] that messages name.

use std::sync::Arc;

use serde_json::Value;

use super::ImportError;
use crate::policy::Origin;

/// Reads and parses a JSON file.
pub fn load(path: &std::path::Path) -> Result<Value, ImportError> {
    let text = std::fs::read(path).map_err(|e| ImportError::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    parse(&text, &path.display().to_string())
}

/// Parses JSON text; `file` names it in the error.
pub fn parse(text: &[u8], file: &str) -> Result<Value, ImportError> {
    serde_json::from_slice(text).map_err(|e| ImportError::Syntax {
        file: file.to_string(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })
}

/// A JSON value, the file it is in and its path from the root.
#[derive(Debug, Clone)]
pub struct Node<'a> {
    pub value: &'a Value,
    pub file: Arc<str>,
    pub path: String,
}

impl<'a> Node<'a> {
    /// The root of a file.
    pub fn root(value: &'a Value, file: impl Into<Arc<str>>) -> Node<'a> {
        Node {
            value,
            file: file.into(),
            path: "$".to_string(),
        }
    }

    /// Where this value is.
    pub fn origin(&self) -> Origin {
        Origin::Json {
            file: self.file.clone(),
            path: self.path.clone(),
        }
    }

    /// An error at this value.
    pub fn error(&self, message: impl Into<String>) -> ImportError {
        ImportError::Shape {
            file: self.file.to_string(),
            path: self.path.clone(),
            message: message.into(),
        }
    }

    fn child(&self, value: &'a Value, step: String) -> Node<'a> {
        Node {
            value,
            file: self.file.clone(),
            path: format!("{}{step}", self.path),
        }
    }

    /// A member of an object; `None` when absent or `null` (or when this
    /// is not an object).
    pub fn get(&self, key: &str) -> Option<Node<'a>> {
        match self.value.get(key) {
            None | Some(Value::Null) => None,
            Some(v) => Some(self.child(v, format!(".{key}"))),
        }
    }

    /// Whether this value is an object with `key` (even `null`).
    pub fn has(&self, key: &str) -> bool {
        self.value.get(key).is_some()
    }

    /// A required member.
    pub fn need(&self, key: &str) -> Result<Node<'a>, ImportError> {
        self.get(key)
            .ok_or_else(|| self.error(format!("`{key}` is missing")))
    }

    /// The elements of an array member; empty when absent. An error when
    /// present but not an array.
    pub fn array(&self, key: &str) -> Result<Vec<Node<'a>>, ImportError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(n) => n.items(),
        }
    }

    /// The elements of this array.
    pub fn items(&self) -> Result<Vec<Node<'a>>, ImportError> {
        match self.value {
            Value::Array(a) => Ok(a
                .iter()
                .enumerate()
                .map(|(i, v)| self.child(v, format!("[{i}]")))
                .collect()),
            _ => Err(self.error(format!("expected an array, found {}", kind(self.value)))),
        }
    }

    /// The members of this object, in the file's order.
    pub fn entries(&self) -> Result<Vec<(&'a str, Node<'a>)>, ImportError> {
        match self.value {
            Value::Object(m) => Ok(m
                .iter()
                .map(|(k, v)| (k.as_str(), self.child(v, format!(".{k}"))))
                .collect()),
            _ => Err(self.error(format!("expected an object, found {}", kind(self.value)))),
        }
    }

    /// A string member; `None` when absent, null or empty (Alibaba and
    /// Terraform write `""` for unset).
    pub fn str(&self, key: &str) -> Result<Option<&'a str>, ImportError> {
        match self.get(key) {
            None => Ok(None),
            Some(n) => match n.value {
                Value::String(s) if s.is_empty() => Ok(None),
                Value::String(s) => Ok(Some(s.as_str())),
                v => Err(n.error(format!("expected a string, found {}", kind(v)))),
            },
        }
    }

    /// A required string member.
    pub fn need_str(&self, key: &str) -> Result<&'a str, ImportError> {
        self.str(key)?
            .ok_or_else(|| self.error(format!("`{key}` is missing")))
    }

    /// An integer member (a JSON number, or a string of digits as some
    /// APIs write them); `None` when absent or empty.
    pub fn int(&self, key: &str) -> Result<Option<i64>, ImportError> {
        match self.get(key) {
            None => Ok(None),
            Some(n) => match n.value {
                Value::Number(x) => x
                    .as_i64()
                    .map(Some)
                    .ok_or_else(|| n.error(format!("expected an integer, found {x}"))),
                Value::String(s) if s.is_empty() => Ok(None),
                Value::String(s) => s
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|_| n.error(format!("expected an integer, found \"{s}\""))),
                v => Err(n.error(format!("expected an integer, found {}", kind(v)))),
            },
        }
    }

    /// A boolean member (or the strings `true`/`false`); `None` when absent.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, ImportError> {
        match self.get(key) {
            None => Ok(None),
            Some(n) => match n.value {
                Value::Bool(b) => Ok(Some(*b)),
                Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
                Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
                Value::String(s) if s.is_empty() => Ok(None),
                v => Err(n.error(format!("expected true or false, found {}", kind(v)))),
            },
        }
    }

    /// This value as a string.
    pub fn as_str(&self) -> Result<&'a str, ImportError> {
        self.value
            .as_str()
            .ok_or_else(|| self.error(format!("expected a string, found {}", kind(self.value))))
    }

    /// The strings of an array member (absent: empty).
    pub fn strings(&self, key: &str) -> Result<Vec<(&'a str, Node<'a>)>, ImportError> {
        self.array(key)?
            .into_iter()
            .map(|n| n.as_str().map(|s| (s, n.clone())))
            .collect()
    }
}

/// The JSON type of a value, for messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_where_a_value_is() {
        let v: Value = serde_json::json!({"A": [{"B": "x"}, {"B": 3}]});
        let root = Node::root(&v, "f.json");
        let items = root.array("A").unwrap();
        assert_eq!(items[0].str("B").unwrap(), Some("x"));
        let e = items[1].str("B").unwrap_err().to_string();
        assert_eq!(e, "f.json:$.A[1].B: expected a string, found a number");
        assert!(root.array("Missing").unwrap().is_empty());
        let e = root.need("Z").unwrap_err().to_string();
        assert_eq!(e, "f.json:$: `Z` is missing");
    }

    #[test]
    fn numbers_written_as_strings_are_numbers() {
        let v: Value = serde_json::json!({"P": "443", "Q": "", "R": "x"});
        let n = Node::root(&v, "f");
        assert_eq!(n.int("P").unwrap(), Some(443));
        assert_eq!(n.int("Q").unwrap(), None);
        assert!(n.int("R").is_err());
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let e = parse(b"{\n  \"a\": ,\n}", "x.json")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("x.json:2:8: not JSON"), "{e}");
    }
}
