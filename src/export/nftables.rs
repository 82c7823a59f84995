//! `sgplane export nftables`: the same policy as an nftables ruleset.

use crate::policy::Policy;

/// The ruleset text for `nft -f`.
pub fn ruleset(policy: &Policy, table: &str) -> Result<String, String> {
    let _ = (policy, table);
    Err("sgplane export nftables is not built yet".into())
}
