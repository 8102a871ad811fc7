//! The `docker` executor: trusted builds on the host engine, as Cloud Build runs them (ARCHITECTURE.md
//! "Containers"): `/workspace` bind-mounted, `/builder/home` and named volumes as Docker volumes, one
//! network per build, and the engine's own socket mounted so `docker` steps build and push images.

use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use super::{BuildEnv, BuildSetup, Executor, ExecutorError, ExecutorKind, StepSpec, Storage, base_container};
use crate::executor::janitor;
use crate::io::docker::{ContainerSpec, Docker, MountSpec};

/// Runs steps on the host engine, with its socket.
#[derive(Clone)]
pub struct DockerExecutor {
    docker: Docker,
}

impl DockerExecutor {
    pub fn new(docker: Docker) -> DockerExecutor {
        DockerExecutor { docker }
    }
}

impl Executor for DockerExecutor {
    fn kind(&self) -> ExecutorKind {
        ExecutorKind::Docker
    }

    fn docker(&self) -> &Docker {
        &self.docker
    }

    fn setup<'a>(&'a self, build: &'a BuildSetup<'a>) -> BoxFuture<'a, Result<BuildEnv, ExecutorError>> {
        async move {
            let id = build.build_id;
            let labels = janitor::labels(id);
            let network = format!("pipewright-{id}");
            self.docker.create_network(&network, labels.clone(), false).await?;
            let home = format!("pipewright-{id}-home");
            self.docker.create_volume(&home, labels.clone()).await?;
            let mut volumes = std::collections::HashMap::new();
            for name in build.volumes {
                let docker_name = format!("pipewright-{id}-v-{name}");
                self.docker.create_volume(&docker_name, labels.clone()).await?;
                volumes.insert(name.clone(), Storage::Volume(docker_name));
            }
            Ok(BuildEnv {
                build_id: id.to_string(),
                network,
                workspace: build.workspace.to_path_buf(),
                home: Storage::Volume(home),
                volumes,
                limits: build.limits,
            })
        }
        .boxed()
    }

    fn container(&self, env: &BuildEnv, step: &StepSpec) -> ContainerSpec {
        let mut spec = base_container(env, step);
        // Cloud Build gives every step the engine: `docker build` and `docker push` steps rely on it.
        if let Some(socket) = Docker::local_socket() {
            spec.mounts.push(MountSpec::Bind {
                source: socket.to_string(),
                target: socket.to_string(),
                read_only: false,
            });
        }
        spec
    }
}
