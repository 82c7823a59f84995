//! `sgplane import alibaba` (SPEC §7): being written.

use std::path::PathBuf;

use super::{Import, ImportError};

/// Whether a JSON document is one of this cloud's responses.
pub fn recognises(_value: &serde_json::Value) -> bool {
    false
}

/// Imports every file under `paths`.
pub fn import(_paths: &[PathBuf]) -> Result<Import, ImportError> {
    Err(ImportError::NotYet("alibaba"))
}
