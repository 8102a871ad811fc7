//! Executors: the one place that knows where and as whom a build's steps run (docs/SPEC.md §19; the shape of
//! Woodpecker's `pipeline/backend` `Backend`): set up a build, start a step, wait, stream its output,
//! tear down.
//!
//! - [`DockerExecutor`] runs trusted builds on the host engine with Cloud Build's semantics: the
//!   workspace bind-mounted at `/workspace`, `/builder/home` and named volumes as Docker volumes, one
//!   network per build, and the host's Docker socket mounted so `docker` steps work.
//! - [`SandboxExecutor`] runs untrusted builds on a private engine (its own daemon, in its own network
//!   namespace, started by `steps/sandbox/start.sh`) under gVisor's `runsc`: no Docker socket, no route
//!   to the host, its loopback, the server or 169.254.169.254, nothing of the host mounted but the
//!   build's own size-limited work directory, and images copied in from the host engine (it cannot
//!   pull). A step that needs a Docker daemon is refused before anything runs.
//!
//! Which executor a build gets is decided by its [`crate::trust::Trust`] and nothing else
//! (`engine::Engine::executor`). Both executors give every step container the build's [`Limits`].
//! The step scheduler (`engine::steps`) and the phases only ever talk to the executor they are given.

pub mod disk;
mod docker;
pub mod janitor;
mod sandbox;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::{FutureExt, StreamExt};

use crate::io::docker::{ContainerSpec, Docker, DockerError, MountSpec, OutputStream, Resources};
use crate::limits::Limits;

pub use docker::DockerExecutor;
pub use sandbox::{SandboxConfig, SandboxExecutor, SandboxNetwork};

/// How step images are fetched.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum PullPolicy {
    Always,
    /// Pull only images not present locally (the default).
    #[default]
    Missing,
    Never,
}

/// Which executor ran a build, as the record names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecutorKind {
    Docker,
    Sandbox,
}

impl ExecutorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutorKind::Docker => "docker",
            ExecutorKind::Sandbox => "sandbox",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    #[error(transparent)]
    Docker(#[from] DockerError),
    #[error("cannot prepare `{path}`: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Untrusted builds get no Docker daemon (docs/THREATS.md property 1).
    #[error(
        "{} a Docker daemon, which untrusted builds do not get here\n\nhint: a maintainer can run this build as trusted by pushing its commit to a branch of the repository",
        if steps.len() == 1 { format!("{} needs", steps[0]) } else { format!("{} need", steps.join(", ")) }
    )]
    NeedsDocker { steps: Vec<String> },
    #[error(
        "`{image}` is not on this host: untrusted builds run only images the host's engine already has (they cannot pull)"
    )]
    ImageNotOnHost { image: String },
}

/// What an executor needs to set a build up.
pub struct BuildSetup<'a> {
    pub build_id: &'a str,
    /// The build's work directory (its [`disk::Disk`] when it has one): the checkout lives inside it.
    pub work: &'a std::path::Path,
    /// The host directory mounted at `/workspace`.
    pub workspace: &'a std::path::Path,
    /// The build file's named volumes.
    pub volumes: &'a BTreeSet<String>,
    /// Every step, by label and image, for checks before anything runs.
    pub steps: Vec<(String, String, Option<String>)>,
    /// The names steps reach each other by (`step_<index>` and their ids).
    pub aliases: Vec<String>,
    pub limits: Limits,
}

/// A host directory or a Docker volume, mounted into a step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Storage {
    Volume(String),
    Directory(PathBuf),
}

impl Storage {
    fn mount(&self, target: &str) -> MountSpec {
        match self {
            Storage::Volume(name) => MountSpec::Volume { name: name.clone(), target: target.to_string() },
            Storage::Directory(dir) => {
                MountSpec::Bind { source: dir.display().to_string(), target: target.to_string(), read_only: false }
            }
        }
    }
}

/// What [`Executor::setup`] made for one build.
#[derive(Clone, Debug)]
pub struct BuildEnv {
    pub build_id: String,
    /// The network steps join: a network's name, or `container:<id>` for a namespace they share.
    pub network: String,
    pub workspace: PathBuf,
    /// `/builder/home`, shared by every step.
    pub home: Storage,
    /// Each build-file volume by name.
    pub volumes: HashMap<String, Storage>,
    pub limits: Limits,
}

/// One step's container, before the executor decides where and as whom it runs.
#[derive(Clone, Debug, Default)]
pub struct StepSpec {
    pub name: String,
    pub image: String,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<String>,
    pub working_dir: String,
    /// (build-file volume name, path in the container).
    pub volumes: Vec<(String, String)>,
    /// Host files mounted read-only: (host path, path in the container). Step scripts.
    pub files: Vec<(PathBuf, String)>,
    pub network_aliases: Vec<String>,
    pub labels: HashMap<String, String>,
}

/// How a step's container ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepExit {
    pub code: i64,
    /// Killed for going over the memory limit.
    pub oom_killed: bool,
}

pub const WORKSPACE: &str = crate::plan::WORKSPACE;
pub const HOME: &str = crate::plan::HOME;

/// Where and as whom a build's steps run.
pub trait Executor: Send + Sync {
    fn kind(&self) -> ExecutorKind;

    /// The engine this build's containers and images live in (component builds run there too).
    fn docker(&self) -> &Docker;

    /// Makes the build's network, `/builder/home` and volumes; refuses a build this executor cannot run.
    fn setup<'a>(&'a self, build: &'a BuildSetup<'a>) -> BoxFuture<'a, Result<BuildEnv, ExecutorError>>;

    /// Makes `image` as current here as the executor allows before a step or a build uses it (the
    /// sandbox copies the host's image in); the default does nothing.
    fn prepare_image<'a>(&'a self, _image: &'a str) -> BoxFuture<'a, Result<(), ExecutorError>> {
        async { Ok(()) }.boxed()
    }

    /// The pull policy that applies here, given the one asked for.
    fn pull_policy(&self, asked: PullPolicy) -> PullPolicy {
        asked
    }

    /// The network of image builds' `RUN` containers; `None` is the engine's default.
    fn build_network(&self) -> Option<&str> {
        None
    }

    /// The container of one step: its mounts, network, runtime, limits and privileges.
    fn container(&self, env: &BuildEnv, step: &StepSpec) -> ContainerSpec;

    fn create_step<'a>(&'a self, spec: &'a ContainerSpec) -> BoxFuture<'a, Result<String, DockerError>> {
        self.docker().create_container(spec).boxed()
    }

    fn start_step<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), DockerError>> {
        self.docker().start(id).boxed()
    }

    /// The step's output from its start until it exits.
    fn step_output(&self, id: &str) -> BoxStream<'static, Result<(OutputStream, bytes::Bytes), DockerError>> {
        self.docker().output(id).boxed()
    }

    /// Waits for the step to end: its exit code, and whether it ran out of memory.
    fn wait_step<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<StepExit, DockerError>> {
        async move {
            let code = self.docker().wait(id).await?;
            // 137 is SIGKILL: the one exit an out-of-memory kill gives; only then is it worth asking.
            let oom_killed = code == 137 && self.docker().exit_info(id).await.is_ok_and(|i| i.oom_killed);
            Ok(StepExit { code, oom_killed })
        }
        .boxed()
    }

    /// SIGTERM, then SIGKILL after `grace`.
    fn stop_step<'a>(&'a self, id: &'a str, grace: Duration) -> BoxFuture<'a, Result<(), DockerError>> {
        self.docker().stop(id, grace).boxed()
    }

    fn remove_step<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), DockerError>> {
        self.docker().remove_container(id).boxed()
    }

    /// Removes everything of the build on this executor (containers, volumes, network; the sandbox also
    /// the images the build made), found by the build's label.
    fn teardown<'a>(&'a self, build_id: &'a str) -> BoxFuture<'a, Result<(), DockerError>> {
        crate::executor::janitor::remove_build(self.docker(), build_id).boxed()
    }
}

/// The parts of a step's container every executor gives the same way: image, command, environment,
/// working directory, the workspace and home, the build's volumes and scripts, network and labels.
fn base_container(env: &BuildEnv, step: &StepSpec) -> ContainerSpec {
    let mut mounts = vec![
        MountSpec::Bind {
            source: env.workspace.display().to_string(),
            target: WORKSPACE.to_string(),
            read_only: false,
        },
        env.home.mount(HOME),
    ];
    for (name, path) in &step.volumes {
        if let Some(storage) = env.volumes.get(name) {
            mounts.push(storage.mount(path));
        }
    }
    for (host, target) in &step.files {
        mounts.push(MountSpec::Bind { source: host.display().to_string(), target: target.clone(), read_only: true });
    }
    ContainerSpec {
        name: step.name.clone(),
        image: step.image.clone(),
        entrypoint: step.entrypoint.clone(),
        cmd: step.cmd.clone(),
        env: step.env.clone(),
        working_dir: Some(step.working_dir.clone()),
        mounts,
        network: Some(env.network.clone()),
        network_aliases: step.network_aliases.clone(),
        labels: step.labels.clone(),
        runtime: None,
        resources: resources(&env.limits),
        security_opt: Vec::new(),
        extra_hosts: Vec::new(),
    }
}

/// The per-container part of a build's limits.
pub fn resources(limits: &Limits) -> Resources {
    Resources { memory: limits.memory, cpus: limits.cpus, pids: limits.pids }
}

/// Whether a step needs a Docker daemon: a Cloud Build `docker` builder (any registry, any tag), or an
/// entrypoint that is the Docker CLI or daemon.
pub fn needs_docker(image: &str, entrypoint: Option<&str>) -> bool {
    let repository = image.split('@').next().unwrap_or(image);
    // A tag follows the last `:` of the last path segment (a registry port is in the first one).
    let last = repository.rsplit('/').next().unwrap_or(repository);
    let name = last.split(':').next().unwrap_or(last);
    let entry = entrypoint.map(|e| e.rsplit('/').next().unwrap_or(e));
    matches!(name, "docker" | "dind") || matches!(entry, Some("docker" | "dockerd"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_steps_are_recognised() {
        for (image, entrypoint, expected) in [
            ("gcr.io/cloud-builders/docker", None, true),
            ("gcr.io/cloud-builders/docker:24.0.9", None, true),
            ("docker:24-cli", None, true),
            ("localhost:5000/tools/docker@sha256:abc", None, true),
            ("docker:dind", None, true),
            ("local/busybox:1", Some("docker"), true),
            ("local/busybox:1", Some("/usr/bin/dockerd"), true),
            ("local/busybox:1", None, false),
            ("gcr.io/cloud-builders/gcloud", Some("bash"), false),
            ("docker.io/library/python:3.11", None, false),
            ("localhost:5000/dockerfile-lint", None, false),
        ] {
            assert_eq!(needs_docker(image, entrypoint), expected, "{image} {entrypoint:?}");
        }
    }
}
