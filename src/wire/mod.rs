//! Wire formats.
pub mod geneve;
