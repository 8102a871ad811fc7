//! Environments and promotion (SPEC §11): `policy` is the one rule engine (pure); the promotion action
//! (tags in the registry, uploads, audit) lives beside it.

pub mod policy;

pub use policy::{Approval, ApprovalRule, BuildFacts, Environment, Facts, Gate, GateCheck, Refusal};
