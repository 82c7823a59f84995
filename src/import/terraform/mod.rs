//! Terraform's `terraform show -json` of a plan or a state, read as AWS
//! resources (SPEC §7).
