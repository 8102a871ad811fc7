//! End-to-end tests: the real binary, real git repositories, the real Docker engine.
//!
//! Docker tests skip with a loud message when no engine is reachable, unless
//! `PIPEWRIGHT_REQUIRE_DOCKER=1` (set by `.ci/run`), where that is a failure.

mod api_schema;
mod builds;
mod cancel;
mod cli;
mod contract;
mod credentials;
mod diff;
mod dockerfile;
mod github_action;
mod host_paths;
mod identity;
mod intake;
mod layout;
mod ml;
mod path_filter;
mod phases;
mod promote;
mod records;
mod registry;
mod runner;
mod sandbox;
mod schema;
mod server;
mod source;
mod steps;
mod streams;
mod support;
mod tags;
mod validate_corpus;
