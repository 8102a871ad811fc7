//! pipewright: a CI/CD build system for machine-learning repositories.
//!
//! Data flows one way: config → plan → engine (source → steps) → record → store. See ARCHITECTURE.md
//! for the code map and the invariants each module keeps.

pub mod cli;
pub mod engine;
pub mod executor;
pub mod io;
pub mod promote;
pub mod publish;
pub mod runner;
pub mod server;

pub use pipewright_core::{
    config, error_chain, github, image_ref, kfp, limits, mask, plan, record, subst, tag, trigger, trust, yaml,
};
