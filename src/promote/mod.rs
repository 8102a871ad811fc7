//! Environments and promotion (docs/SPEC.md §11): `policy` is the one rule engine (pure); `action` checks it
//! under the environment's lock and moves the environment's names onto the build's digests.

pub mod action;
pub use pipewright_core::policy;

pub use action::{Action, Actor, Approved, PromoteError, Promoter, Promotion, Tagged};
pub use policy::{Approval, BuildFacts, Facts, Refusal};
