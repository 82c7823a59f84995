//! A [`crate::policy::Model`] written as a policy file (SPEC §1, §6).
