//! pipewright: a CI/CD build system for machine-learning repositories.
//!
//! Data flows one way: config → plan → engine (source → steps) → record → store. See ARCHITECTURE.md
//! for the code map and the invariants each module keeps.

pub mod cli;
pub mod credentials;
pub mod docker;
pub mod engine;
pub mod executor;
pub mod github;
pub mod host_path;
pub mod http;
pub mod image;
pub mod promote;
pub mod publish;
pub mod registry;
pub mod runner;
pub mod secrets;
pub mod server;
pub mod source;
pub mod store;
pub mod upload;

pub use pipewright_core::{
    config, error_chain, image_ref, kfp, limits, mask, plan, record, subst, tag, trigger, trust, yaml,
};
