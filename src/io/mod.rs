//! Everything that reaches outside the process: one module per outside system, none of them uses a
//! layer above it. `docker` is the only user of bollard, `source` the only one of gix and git, `registry` the only
//! one that speaks the OCI distribution protocol, `store` the only one of the database, `http` the one
//! HTTP client (with `upload` on top of it for the Kubeflow and Artifact Registry upload APIs). `image`
//! reads build contexts from disk, `secrets` and `credentials` read the values the server was given,
//! and `host_path` is the one rule for a path on the host built from outside input. The layers above
//! (ARCHITECTURE.md "Layers") call these; these call nothing above them (tests/integration/layout.rs).

pub mod credentials;
pub mod docker;
pub mod host_path;
pub mod http;
pub mod image;
pub mod registry;
pub mod secrets;
pub mod source;
pub mod store;
pub mod upload;
