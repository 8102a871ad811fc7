//! The `sandbox` executor: untrusted builds on a private engine under gVisor (docs/THREATS.md property 1;
//! ARCHITECTURE.md "Running untrusted builds").
//!
//! The engine is a second Docker daemon that `steps/sandbox/start.sh` starts inside a network namespace
//! of its own, with `runsc` as its runtime. So, by construction rather than by firewall rules:
//! - a step has no Docker socket (none is mounted; the sandbox's own socket is on the host only);
//! - a step's network is the build's bridge inside that namespace, which has no interface to the host:
//!   the host's loopback, its addresses, the server's port and 169.254.169.254 have no route;
//! - each build has its own internal network, so two builds' steps cannot reach each other;
//! - the host paths a step sees are its build's work directory only (the checkout, `/builder/home` and
//!   volumes as directories on the build's size-limited disk, and its scripts read-only);
//! - `runsc` runs the step's processes on gVisor's own kernel, and keeps writes to the container's root
//!   filesystem in memory (`--overlay2=root:memory`), so they count against the memory limit.
//!
//! The engine cannot pull (it has no network): images come from the host engine, copied in before a
//! step or a component build uses them, and copied again when the host's image changed.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use super::{
    BuildEnv, BuildSetup, Executor, ExecutorError, ExecutorKind, PullPolicy, StepSpec, Storage, base_container,
    needs_docker,
};
use crate::executor::janitor;
use crate::io::docker::{ContainerSpec, Docker, DockerError};
use crate::limits::Limits;

/// `sandbox:` of the server config: where untrusted builds run.
#[derive(Clone, Debug, PartialEq)]
pub struct SandboxConfig {
    /// The private engine's socket (`unix:///run/pipewright-sandbox/docker.sock`).
    pub docker: String,
    /// The OCI runtime steps run under.
    pub runtime: String,
    pub network: SandboxNetwork,
    /// The most an untrusted build gets (on top of the server's `limits`).
    pub limits: Limits,
}

impl Default for SandboxConfig {
    fn default() -> SandboxConfig {
        SandboxConfig {
            docker: DEFAULT_SOCKET.to_string(),
            runtime: "runsc".to_string(),
            network: SandboxNetwork::None,
            limits: Limits::default(),
        }
    }
}

/// The image of the container that holds a build's network namespace (`steps/sandbox/start.sh`
/// imports it): a static busybox that sleeps.
pub const PAUSE_IMAGE: &str = "pipewright/pause:1";

/// Where `steps/sandbox/start.sh` puts the engine's socket.
pub const DEFAULT_SOCKET: &str = "unix:///run/pipewright-sandbox/docker.sock";

/// What a sandboxed step can reach over the network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SandboxNetwork {
    /// Only the other steps of its own build.
    #[default]
    None,
}

/// Runs untrusted steps on the sandbox's engine.
pub struct SandboxExecutor {
    sandbox: Docker,
    /// Where images are copied from.
    host: Docker,
    runtime: String,
    /// One copy of an image at a time (parallel steps of one build, or two builds, on one image).
    copies: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Why untrusted builds cannot run here; said at start-up and by every untrusted build.
#[derive(Debug, thiserror::Error)]
pub enum SandboxUnavailable {
    #[error("no sandbox runtime: cannot reach the sandbox engine at `{socket}` ({reason})")]
    Unreachable { socket: String, reason: String },
    #[error("no sandbox runtime: the engine at `{socket}` has no `{runtime}` runtime (it has {have})")]
    NoRuntime { socket: String, runtime: String, have: String },
    #[error("the sandbox engine at `{socket}` is the host's own engine; untrusted builds need a private one")]
    HostEngine { socket: String },
    #[error("the sandbox engine at `{socket}` has no `{PAUSE_IMAGE}` image")]
    NoPauseImage { socket: String },
    /// Image builds run under the engine's default runtime: it must be a gVisor one too.
    #[error("no sandbox runtime: the engine at `{socket}` runs image builds under `{default}`, not gVisor's `runsc`")]
    DefaultRuntime { socket: String, default: String },
}

impl SandboxUnavailable {
    /// What the operator can do about it.
    pub fn hint(&self) -> &'static str {
        "install runsc and start the sandbox engine with `steps/sandbox/start.sh`, or set `untrustedBuilds: never` \
         for the repositories whose untrusted builds should never run"
    }
}

impl SandboxExecutor {
    /// Connects to the sandbox's engine and checks it is a private one with the runtime.
    pub async fn connect(config: &SandboxConfig, host: Docker) -> Result<SandboxExecutor, SandboxUnavailable> {
        let socket = config.docker.clone();
        let sandbox = Docker::connect_to(&socket)
            .await
            .map_err(|e| SandboxUnavailable::Unreachable { socket: socket.clone(), reason: crate::error_chain(&e) })?;
        let unreachable =
            |e: DockerError| SandboxUnavailable::Unreachable { socket: socket.clone(), reason: crate::error_chain(&e) };
        let info = sandbox.info().await.map_err(unreachable)?;
        if !info.runtimes.contains(&config.runtime) {
            return Err(SandboxUnavailable::NoRuntime {
                socket,
                runtime: config.runtime.clone(),
                have: info.runtimes.join(", "),
            });
        }
        if !info.default_runtime.starts_with("runsc") {
            return Err(SandboxUnavailable::DefaultRuntime { socket, default: info.default_runtime });
        }
        if sandbox.image_id(PAUSE_IMAGE).await.map_err(unreachable)?.is_none() {
            return Err(SandboxUnavailable::NoPauseImage { socket });
        }
        let host_info = host.info().await.map_err(unreachable)?;
        if host_info.root_dir == info.root_dir {
            return Err(SandboxUnavailable::HostEngine { socket });
        }
        Ok(SandboxExecutor { sandbox, host, runtime: config.runtime.clone(), copies: Mutex::new(HashMap::new()) })
    }

    /// Starts the container whose network namespace every step of the build joins, as a pod's pause
    /// container: steps then reach each other on the loopback, by their aliases (its `/etc/hosts`,
    /// which they share), and starting a step costs no network endpoint of its own (about 0.3 s less
    /// per gVisor step; `cargo bench --bench steps`).
    async fn hold_network(&self, id: &str, network: &str, build: &BuildSetup<'_>) -> Result<String, ExecutorError> {
        let mut labels = janitor::labels(id);
        labels.insert(janitor::STEP_LABEL.to_string(), "network".to_string());
        let spec = ContainerSpec {
            name: format!("pipewright-{id}-network"),
            image: PAUSE_IMAGE.to_string(),
            network: Some(network.to_string()),
            labels,
            runtime: Some(self.runtime.clone()),
            security_opt: vec!["no-new-privileges".to_string()],
            extra_hosts: build.aliases.iter().map(|a| format!("{a}:127.0.0.1")).collect(),
            // gVisor's own threads count against the process limit: 64 leaves the sleeper room.
            resources: crate::io::docker::Resources { memory: Some(64 << 20), cpus: Some(0.1), pids: Some(64) },
            ..ContainerSpec::default()
        };
        let holder = self.sandbox.create_container(&spec).await?;
        self.sandbox.start(&holder).await?;
        Ok(holder)
    }

    /// A directory of the build's disk for a step mount, writable by any user a step image runs as.
    fn directory(work: &Path, name: &str) -> Result<Storage, ExecutorError> {
        use std::os::unix::fs::PermissionsExt;
        let dir = work.join("sandbox").join(name);
        let io = |source| ExecutorError::Io { path: dir.display().to_string(), source };
        std::fs::create_dir_all(&dir).map_err(io)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).map_err(io)?;
        Ok(Storage::Directory(dir))
    }
}

impl Executor for SandboxExecutor {
    fn kind(&self) -> ExecutorKind {
        ExecutorKind::Sandbox
    }

    fn docker(&self) -> &Docker {
        &self.sandbox
    }

    fn setup<'a>(&'a self, build: &'a BuildSetup<'a>) -> BoxFuture<'a, Result<BuildEnv, ExecutorError>> {
        async move {
            let docker_steps: Vec<String> = build
                .steps
                .iter()
                .filter(|(_, image, entrypoint)| needs_docker(image, entrypoint.as_deref()))
                .map(|(label, image, _)| format!("{label} (`{image}`)"))
                .collect();
            if !docker_steps.is_empty() {
                return Err(ExecutorError::NeedsDocker { steps: docker_steps });
            }
            let id = build.build_id;
            let network = format!("pipewright-{id}");
            // Internal: no gateway out of the build's bridge, even inside the sandbox's namespace.
            self.sandbox.create_network(&network, janitor::labels(id), true).await?;
            let holder = self.hold_network(id, &network, build).await?;
            // Home and volumes live on the build's disk, so they count against its workspace limit.
            let home = Self::directory(build.work, "home")?;
            let mut volumes = HashMap::new();
            for name in build.volumes {
                volumes.insert(name.clone(), Self::directory(build.work, &format!("volume-{name}"))?);
            }
            Ok(BuildEnv {
                build_id: id.to_string(),
                network: format!("container:{holder}"),
                workspace: build.workspace.to_path_buf(),
                home,
                volumes,
                limits: build.limits,
            })
        }
        .boxed()
    }

    /// Copies the host's `image` in when the sandbox does not have that very image (same id).
    fn prepare_image<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<(), ExecutorError>> {
        async move {
            let lock = {
                let mut copies = self.copies.lock().expect("copies lock");
                copies.entry(image.to_string()).or_default().clone()
            };
            let _one_at_a_time = lock.lock().await;
            let Some(host_id) = self.host.image_id(image).await? else {
                return Err(ExecutorError::ImageNotOnHost { image: image.to_string() });
            };
            if self.sandbox.image_id(image).await?.as_deref() == Some(host_id.as_str()) {
                return Ok(());
            }
            self.sandbox.load_from(&self.host, image).await?;
            Ok(())
        }
        .boxed()
    }

    /// `RUN` of an untrusted Dockerfile reaches nothing at all (the engine's own default runtime, a
    /// gVisor one, runs it: `steps/sandbox/start.sh`).
    fn build_network(&self) -> Option<&str> {
        Some("none")
    }

    /// Nothing can be pulled inside: [`Self::prepare_image`] brings images in.
    fn pull_policy(&self, _asked: PullPolicy) -> PullPolicy {
        PullPolicy::Never
    }

    fn container(&self, env: &BuildEnv, step: &StepSpec) -> ContainerSpec {
        let mut spec = base_container(env, step);
        spec.runtime = Some(self.runtime.clone());
        spec.security_opt = vec!["no-new-privileges".to_string()];
        // The build's shared namespace has the aliases already; a joining container may not add any.
        spec.network_aliases.clear();
        spec
    }

    fn teardown<'a>(&'a self, build_id: &'a str) -> BoxFuture<'a, Result<(), DockerError>> {
        async move {
            let removed = janitor::remove_build(&self.sandbox, build_id).await;
            // Images an untrusted build made (its components) are not kept for anyone else.
            let images = self.sandbox.images_labelled(janitor::BUILD_LABEL, build_id).await?;
            for image in images {
                self.sandbox.remove_image(&image).await?;
            }
            removed
        }
        .boxed()
    }
}
