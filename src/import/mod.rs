//! Importers: the clouds' own JSON (and Terraform's) turned into a policy
//! [`Model`] (SPEC §7), and the model written back as a policy file.
//!
//! Each provider has its own room: [`aws`] reads the AWS CLI's
//! `describe-…` outputs, Batfish and CloudMapper snapshots and recorded API
//! responses, and hands Terraform's `show -json` files to [`terraform`].
//! Every input file is recognised by its content. Nothing is dropped
//! silently: what cannot be represented is a [`Skipped`] entry with its id
//! and why. [`write`](mod@write) renders a model as the TOML of SPEC §1 and §6, stable
//! byte for byte for the same input.

pub mod alibaba;
pub mod aws;
pub mod azure;
pub mod json;
pub mod terraform;
pub mod write;

use std::fmt;
use std::path::{Path, PathBuf};

use crate::policy::{Model, Origin};

/// A cloud provider sgplane imports from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Aws,
    Alibaba,
    Azure,
}

impl Provider {
    pub fn name(self) -> &'static str {
        match self {
            Provider::Aws => "aws",
            Provider::Alibaba => "alibaba",
            Provider::Azure => "azure",
        }
    }

    /// The provider whose JSON `value` is: Alibaba's and Azure's importers
    /// say whether they recognise a document; anything else is AWS's (whose
    /// importer lists what it does not read).
    pub fn of_document(value: &serde_json::Value) -> Option<Provider> {
        if azure::recognises(value) {
            Some(Provider::Azure)
        } else if alibaba::recognises(value) {
            Some(Provider::Alibaba)
        } else {
            None
        }
    }

    /// The provider of the files under `paths` (`-c DIR` without a
    /// provider named): the first file Alibaba's or Azure's importer
    /// recognises decides; otherwise AWS.
    pub fn detect(paths: &[PathBuf]) -> Result<Provider, ImportError> {
        for f in input_files(paths)? {
            if let Ok(v) = json::load(&f) {
                if let Some(p) = Provider::of_document(&v) {
                    return Ok(p);
                }
            }
        }
        Ok(Provider::Aws)
    }

    /// [`Provider::detect`] of documents already read.
    fn of_documents(docs: &[(PathBuf, serde_json::Value)]) -> Provider {
        docs.iter()
            .find_map(|(_, v)| Provider::of_document(v))
            .unwrap_or(Provider::Aws)
    }
}

impl std::str::FromStr for Provider {
    type Err = ImportError;

    fn from_str(s: &str) -> Result<Provider, ImportError> {
        match s {
            "aws" => Ok(Provider::Aws),
            "alibaba" | "aliyun" => Ok(Provider::Alibaba),
            "azure" => Ok(Provider::Azure),
            other => Err(ImportError::Provider(other.to_string())),
        }
    }
}

/// An imported policy and what could not be represented.
#[derive(Debug, Clone, Default)]
pub struct Import {
    /// The policy; its `imported` names the provider and the inputs.
    pub model: Model,
    /// Every resource, rule or field the model does not represent.
    pub skipped: Vec<Skipped>,
}

impl Import {
    /// Adds another import's items (and what it skipped) to this one.
    pub fn append(&mut self, other: Import) {
        let (m, o) = (&mut self.model, other.model);
        m.prefix_lists.extend(o.prefix_lists);
        m.security_groups.extend(o.security_groups);
        m.external_groups.extend(o.external_groups);
        m.interfaces.extend(o.interfaces);
        m.vpcs.extend(o.vpcs);
        m.peerings.extend(o.peerings);
        m.subnets.extend(o.subnets);
        m.network_acls.extend(o.network_acls);
        m.route_tables.extend(o.route_tables);
        m.load_balancers.extend(o.load_balancers);
        m.target_groups.extend(o.target_groups);
        m.endpoint_services.extend(o.endpoint_services);
        m.endpoints.extend(o.endpoints);
        self.skipped.extend(other.skipped);
    }
}

/// Sorts every list of a model by id, so that the same input gives the same
/// policy file whatever the order of its files (stable: a group's rules
/// keep their order).
pub fn sort_by_id(m: &mut Model) {
    m.prefix_lists.sort_by(|a, b| a.name.cmp(&b.name));
    m.security_groups.sort_by(|a, b| a.name.cmp(&b.name));
    m.external_groups.sort_by(|a, b| a.name.cmp(&b.name));
    m.interfaces.sort_by(|a, b| a.name.cmp(&b.name));
    m.vpcs.sort_by(|a, b| a.name.cmp(&b.name));
    m.peerings.sort_by(|a, b| a.name.cmp(&b.name));
    m.subnets.sort_by(|a, b| a.name.cmp(&b.name));
    m.network_acls.sort_by(|a, b| a.name.cmp(&b.name));
    m.route_tables.sort_by(|a, b| a.name.cmp(&b.name));
    m.load_balancers.sort_by(|a, b| a.name.cmp(&b.name));
    m.target_groups.sort_by(|a, b| a.name.cmp(&b.name));
    m.endpoint_services.sort_by(|a, b| a.name.cmp(&b.name));
    m.endpoints.sort_by(|a, b| a.name.cmp(&b.name));
}

/// Something in the input that the model does not represent, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The resource's id (`sg-…`, `eni-…`, an ARN), or the file for
    /// something that is not a resource.
    pub id: String,
    /// Where it was read.
    pub origin: Origin,
    pub why: String,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.origin.to_string();
        if at.is_empty() || at == self.id {
            write!(f, "skipped {}: {}", self.id, self.why)
        } else {
            write!(f, "skipped {}: {} ({at})", self.id, self.why)
        }
    }
}

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("unknown provider `{0}`: expected aws, alibaba or azure")]
    Provider(String),
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Not JSON at all, with the line and column serde_json gives.
    #[error("{file}:{line}:{column}: not JSON: {message}")]
    Syntax {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// JSON of the wrong shape: the file and the JSON path.
    #[error("{file}:{path}: {message}")]
    Shape {
        file: String,
        path: String,
        message: String,
    },
    /// `--strict`, and something was skipped.
    #[error("{count} item(s) of the input cannot be represented (--strict): the first is {first}")]
    Strict { count: usize, first: String },
    #[error("no input files found in {0}")]
    Empty(String),
    /// A provider whose importer is not there yet.
    #[error("`sgplane import {0}` is not available yet")]
    NotYet(&'static str),
}

/// Every file under `paths` (directories walked recursively, in name order),
/// for importers that recognise files by content. Hidden files and
/// directories are skipped.
pub fn input_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ImportError> {
    let mut out = Vec::new();
    for p in paths {
        let before = out.len();
        walk(p, &mut out)?;
        if out.len() == before && p.is_dir() {
            return Err(ImportError::Empty(p.display().to_string()));
        }
    }
    Ok(out)
}

fn walk(p: &Path, out: &mut Vec<PathBuf>) -> Result<(), ImportError> {
    let io = |e| ImportError::Io {
        path: p.display().to_string(),
        source: e,
    };
    let meta = std::fs::metadata(p).map_err(io)?;
    if !meta.is_dir() {
        out.push(p.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|e| {
            !e.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'))
        })
        .collect();
    entries.sort();
    for e in entries {
        if e.is_dir() {
            walk(&e, out)?;
        } else if is_json_file(&e) {
            out.push(e);
        }
    }
    Ok(())
}

/// Whether a file found in a directory is an input: a `.json` file, or one
/// without an extension (CloudMapper names per-resource files after the
/// resource) that starts like JSON. Anything else (a README, a licence) is
/// not an input.
fn is_json_file(p: &Path) -> bool {
    match p.extension().and_then(|x| x.to_str()) {
        Some(x) => x.eq_ignore_ascii_case("json"),
        None => {
            use std::io::Read;
            let mut head = [0u8; 256];
            let n = std::fs::File::open(p)
                .and_then(|mut f| f.read(&mut head))
                .unwrap_or(0);
            head[..n]
                .iter()
                .find(|b| !b.is_ascii_whitespace())
                .is_some_and(|&b| b == b'{' || b == b'[')
        }
    }
}

/// Imports `paths` from `provider`. `strict` turns anything skipped into an
/// error.
pub fn import(provider: Provider, paths: &[PathBuf], strict: bool) -> Result<Import, ImportError> {
    import_loaded(provider, paths, load_documents(paths)?, strict)
}

/// Imports `paths` from the provider their content names (as
/// [`Provider::detect`] finds it), each file read and parsed once.
pub fn import_detected(paths: &[PathBuf], strict: bool) -> Result<Import, ImportError> {
    let docs = load_documents(paths)?;
    import_loaded(Provider::of_documents(&docs), paths, docs, strict)
}

/// Every JSON document under `paths` (see [`input_files`]), read and
/// parsed, with its file.
pub fn load_documents(paths: &[PathBuf]) -> Result<Vec<(PathBuf, serde_json::Value)>, ImportError> {
    input_files(paths)?
        .into_iter()
        .map(|f| {
            let v = json::load(&f)?;
            Ok((f, v))
        })
        .collect()
}

/// Documents read from files, named by their paths as importers name them.
fn named(docs: Vec<(PathBuf, serde_json::Value)>) -> Vec<(String, serde_json::Value)> {
    docs.into_iter()
        .map(|(f, v)| (f.display().to_string(), v))
        .collect()
}

/// The import of the documents read from `paths`; `Model::source` is the
/// first path.
fn import_loaded(
    provider: Provider,
    paths: &[PathBuf],
    docs: Vec<(PathBuf, serde_json::Value)>,
    strict: bool,
) -> Result<Import, ImportError> {
    let mut import = match provider {
        Provider::Aws => aws::import_files(docs)?,
        Provider::Alibaba => alibaba::import_values(&named(docs))?,
        Provider::Azure => azure::import_values(&named(docs))?,
    };
    import.model.source = paths
        .first()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    strictly(import, strict)
}

/// The import, or with `strict` an error when it skipped anything.
fn strictly(import: Import, strict: bool) -> Result<Import, ImportError> {
    if strict && !import.skipped.is_empty() {
        return Err(ImportError::Strict {
            count: import.skipped.len(),
            first: import.skipped[0].to_string(),
        });
    }
    Ok(import)
}

#[cfg(test)]
mod tests {
    use super::looks_like_json;

    #[test]
    fn json_is_told_from_a_policy_file_by_its_first_bytes() {
        for json in [
            "{}",
            "  {\"a\": 1}",
            "[{\"name\": \"x\"}]",
            "[\n  {",
            "[]",
            "[\"a\"]",
        ] {
            assert!(looks_like_json(json.as_bytes()), "{json}");
        }
        for toml in [
            "[settings]",
            "[[x]]",
            "# comment\n{",
            "a = 1",
            "[ security_groups.sg-a ]",
            "",
        ] {
            assert!(!looks_like_json(toml.as_bytes()), "{toml}");
        }
    }
}

/// Why a policy could not be loaded from a path.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Policy(#[from] crate::policy::PolicyError),
    #[error(transparent)]
    Import(#[from] ImportError),
}

/// Whether `path` is something to import rather than a policy file: a
/// directory, a `.json` file, or a file that starts like JSON (see
/// [`looks_like_json`]).
pub fn is_importable(path: &Path) -> bool {
    let json = path
        .extension()
        .and_then(|x| x.to_str())
        .is_some_and(|x| x.eq_ignore_ascii_case("json"));
    if path.is_dir() || json {
        return true;
    }
    use std::io::Read;
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let mut head = [0u8; 512];
    let n = f.read(&mut head).unwrap_or(0);
    looks_like_json(&head[..n])
}

/// Whether text starts like a JSON object or array rather than a policy
/// file: `{`, or `[` followed by `{`, `"` or `]` (`az … list` prints an
/// array of objects; a policy file's `[table]` has a name after its `[`).
fn looks_like_json(head: &[u8]) -> bool {
    let mut bytes = head.iter().copied().filter(|b| !b.is_ascii_whitespace());
    match bytes.next() {
        Some(b'{') => true,
        Some(b'[') => matches!(bytes.next(), Some(b'{' | b'"' | b']')),
        _ => false,
    }
}

/// Loads the policy at `path` (`-c`): a policy file, or a directory or JSON
/// file imported on the fly (SPEC §7; the provider recognised from the
/// files' content). Returns what the import skipped beside the policy.
pub fn load_policy(path: &Path) -> Result<(crate::policy::Policy, Vec<Skipped>), LoadError> {
    match read_input(path)? {
        Input::Policy(text) => Ok((
            crate::policy::Policy::from_toml(&text, &path.display().to_string())?,
            Vec::new(),
        )),
        Input::Import(import) => {
            let policy = crate::policy::Policy::compile(&import.model)?;
            Ok((policy, import.skipped))
        }
    }
}

/// Like [`load_policy`], keeping the [`Model`] the policy was compiled
/// from (what `path` changes to check a fix).
pub fn load_model(path: &Path) -> Result<(Model, Vec<Skipped>), LoadError> {
    match read_input(path)? {
        Input::Policy(text) => Ok((
            Model::from_toml(&text, &path.display().to_string())?,
            Vec::new(),
        )),
        Input::Import(import) => {
            let import = *import;
            Ok((import.model, import.skipped))
        }
    }
}

/// What `-c` names, read.
enum Input {
    /// A policy file's text.
    Policy(String),
    /// JSON imported on the fly.
    Import(Box<Import>),
}

/// Reads what `-c` names. A file is looked at before it is read, to tell
/// JSON from a policy file; a pipe (`<(…)`, `/dev/stdin`) cannot be read
/// twice, so it is read once, whole, and told apart from its bytes.
fn read_input(path: &Path) -> Result<Input, LoadError> {
    let name = path.display().to_string();
    let io = |e| crate::policy::PolicyError::Io {
        path: name.clone(),
        source: e,
    };
    let stream = std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir());
    if !stream {
        if is_importable(path) {
            let paths = [path.to_path_buf()];
            return Ok(Input::Import(Box::new(import_detected(&paths, false)?)));
        }
        return Ok(Input::Policy(std::fs::read_to_string(path).map_err(io)?));
    }
    let bytes = std::fs::read(path).map_err(io)?;
    if looks_like_json(&bytes) {
        let value = json::parse(&bytes, &name)?;
        let docs = vec![(path.to_path_buf(), value)];
        let import = import_loaded(
            Provider::of_documents(&docs),
            &[path.to_path_buf()],
            docs,
            false,
        )?;
        return Ok(Input::Import(Box::new(import)));
    }
    let text = String::from_utf8(bytes)
        .map_err(|e| io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
    Ok(Input::Policy(text))
}
