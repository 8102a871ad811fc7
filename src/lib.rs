//! pipewright: a CI/CD build system for machine-learning repositories.
//!
//! Data flows one way: config → plan → engine (source → steps) → record → store. See ARCHITECTURE.md
//! for the code map and the invariants each module keeps.

pub mod cli;
pub mod config;
pub mod docker;
pub mod engine;
pub mod image;
pub mod image_ref;
pub mod kfp;
pub mod mask;
pub mod plan;
pub mod record;
pub mod registry;
pub mod secrets;
pub mod source;
pub mod store;
pub mod subst;
pub mod upload;
pub mod yaml;
