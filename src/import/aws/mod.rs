//! `sgplane import aws`: the AWS CLI's JSON, Batfish and CloudMapper
//! snapshots, recorded API responses, and Terraform plans (SPEC §7).

use std::path::PathBuf;

use super::{Import, ImportError};

/// Imports every file under `paths`.
pub fn import(paths: &[PathBuf]) -> Result<Import, ImportError> {
    let _ = super::input_files(paths)?;
    Err(ImportError::Empty(
        "the AWS importer is being written".into(),
    ))
}
