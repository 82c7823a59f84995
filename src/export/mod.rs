//! The policy in other systems' terms.
pub mod nftables;
