//! A [`crate::policy::Model`] written as a policy file (SPEC §1, §6).

use crate::policy::Model;

/// The policy file for `model` (being written on its own branch).
pub fn write(model: &Model) -> String {
    format!("# {} (writer pending)\n", model.source)
}
