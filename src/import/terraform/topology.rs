//! The topology around the groups (SPEC §6).
use super::doc::Doc;
use super::Out;
use crate::import::ImportError;

pub(super) fn import(_doc: &Doc, _out: &mut Out) -> Result<(), ImportError> {
    Ok(())
}
