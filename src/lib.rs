//! pipewright: a CI/CD build system for machine-learning repositories.
//!
//! Data flows one way: config → plan → engine (source → steps) → record → store. See ARCHITECTURE.md
//! for the code map and the invariants each module keeps.

pub mod cli;
pub mod config;
pub mod credentials;
pub mod docker;
pub mod engine;
pub mod executor;
pub mod github;
pub mod host_path;
pub mod image;
pub mod image_ref;
pub mod kfp;
pub mod limits;
pub mod mask;
pub mod plan;
pub mod promote;
pub mod publish;
pub mod record;
pub mod registry;
pub mod runner;
pub mod secrets;
pub mod server;
pub mod source;
pub mod store;
pub mod subst;
pub mod tag;
pub mod trigger;
pub mod trust;
pub mod upload;
pub mod yaml;

/// An error and its causes on one line (`a: b: c`), skipping a cause already contained in the text
/// before it (many errors repeat their source's message).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}
