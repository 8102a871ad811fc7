//! Component images before Docker sees them: build contexts, `.dockerignore`, the context hash that
//! decides whether an image can be reused, and the tar that carries a context to Docker.
//!
//! Invariant: the hash and the tar come from the same [`ImageContext`], so an image is reused only
//! when Docker would receive exactly the same files, Dockerfile, build args, target and base images.
//!
//! This module reads the local filesystem and nothing else: no Docker, no registry, no network.
//! Resolving base image names to ids, building and pushing belong to `docker/` and `registry/`.

mod context;
mod dockerfile;
mod dockerignore;

pub use context::{ContextError, ContextFile, FileKind, ImageContext, collect};
pub use dockerfile::base_images;
pub use dockerignore::{DockerIgnore, IgnoreError, PatternProblem};
