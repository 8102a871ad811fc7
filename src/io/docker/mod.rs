//! The only user of bollard: containers, their output, networks, volumes and images.
//!
//! This module knows nothing about builds; it offers the handful of Docker operations the engine needs,
//! each with an error that says which operation on which object failed.

use std::collections::HashMap;
use std::time::Duration;

use bollard::auth::DockerCredentials;
use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, Mount, MountType, NetworkCreateRequest, NetworkingConfig,
    VolumeCreateRequest,
};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, ListImagesOptionsBuilder, PushImageOptionsBuilder, RemoveImageOptionsBuilder,
    TagImageOptionsBuilder,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, ListContainersOptionsBuilder, ListNetworksOptionsBuilder,
    ListVolumesOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder,
    StopContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use futures_util::{Stream, StreamExt};

/// How long to wait for a container that another process is removing.
const REMOVAL_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("cannot reach the Docker engine{}", host.as_deref().map(|h| format!(" at `{h}`")).unwrap_or_default())]
    Unreachable {
        host: Option<String>,
        #[source]
        source: BollardError,
    },
    #[error("could not pull `{image}`: {message}")]
    Pull { image: String, message: String },
    #[error("image `{0}` is not present locally and pulling is disabled (`--pull never`)")]
    ImageMissing(String),
    #[error("container `{id}` was being removed by another process and still existed after {waited:?}")]
    StillThere { id: String, waited: Duration },
    #[error("docker build of `{tag}` failed: {message}")]
    Build { tag: String, message: String },
    #[error("docker push of `{image}` failed: {message}")]
    Push { image: String, message: String },
    #[error("cannot copy the image `{image}` into the engine: {message}")]
    Load { image: String, message: String },
    #[error("docker {action} `{object}` failed")]
    Api {
        action: &'static str,
        object: String,
        #[source]
        source: BollardError,
    },
}

impl DockerError {
    fn api(action: &'static str, object: &str) -> impl FnOnce(BollardError) -> DockerError {
        let object = object.to_string();
        move |source| DockerError::Api { action, object, source }
    }
}

/// One mount of a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MountSpec {
    /// A host directory or file.
    Bind { source: String, target: String, read_only: bool },
    /// A named volume.
    Volume { name: String, target: String },
}

/// Everything needed to create a container.
#[derive(Clone, Debug, Default)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    /// `None` keeps the image's entrypoint.
    pub entrypoint: Option<Vec<String>>,
    /// `None` keeps the image's command.
    pub cmd: Option<Vec<String>>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub mounts: Vec<MountSpec>,
    pub network: Option<String>,
    pub network_aliases: Vec<String>,
    pub labels: HashMap<String, String>,
    /// The OCI runtime (`runsc`); `None` is the engine's default.
    pub runtime: Option<String>,
    pub resources: Resources,
    /// `no-new-privileges` and the like.
    pub security_opt: Vec<String>,
    /// `/etc/hosts` lines as `name:address`.
    pub extra_hosts: Vec<String>,
}

/// What a container may use; `None` is no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Resources {
    /// Bytes of memory, swap included (no swap beyond it).
    pub memory: Option<u64>,
    pub cpus: Option<f64>,
    pub pids: Option<i64>,
}

/// How a container ended, beyond its exit code.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExitInfo {
    /// The kernel killed it for going over its memory limit.
    pub oom_killed: bool,
}

/// What an engine says about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineInfo {
    /// The daemon's data root (`/var/lib/docker`): two handles with the same one are one engine (the
    /// daemon `ID` is not enough: daemons of one host share `/etc/docker/key.json`, and so the id).
    pub root_dir: String,
    pub default_runtime: String,
    pub runtimes: Vec<String>,
    pub version: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputStream {
    Stdout,
    Stderr,
}

/// Resources carrying a label, grouped by kind (for cleanup).
#[derive(Clone, Debug, Default)]
pub struct Labelled {
    /// (container id, its labels)
    pub containers: Vec<(String, HashMap<String, String>)>,
    /// (volume name, its labels)
    pub volumes: Vec<(String, HashMap<String, String>)>,
    /// (network id, its labels)
    pub networks: Vec<(String, HashMap<String, String>)>,
}

#[derive(Clone)]
pub struct Docker {
    api: bollard::Docker,
}

impl Docker {
    /// Connects as the Docker CLI does (`DOCKER_HOST` or the local socket) and checks the engine answers.
    pub async fn connect() -> Result<Docker, DockerError> {
        let host = std::env::var("DOCKER_HOST").ok();
        let unreachable = |source| DockerError::Unreachable { host: host.clone(), source };
        let api = bollard::Docker::connect_with_defaults().map_err(unreachable)?;
        // A short ping: an engine that does not answer in 10 s is as good as absent.
        let api = api.with_timeout(Duration::from_secs(10));
        api.ping().await.map_err(unreachable)?;
        // Long calls (waits, log follows) must not be cut by the client timeout.
        Ok(Docker { api: api.with_timeout(Duration::from_secs(24 * 3600)) })
    }

    /// Connects to the engine at `host` (`unix:///path/docker.sock`), e.g. the sandbox's private daemon.
    pub async fn connect_to(host: &str) -> Result<Docker, DockerError> {
        let unreachable = |source| DockerError::Unreachable { host: Some(host.to_string()), source };
        let Some(path) = host.strip_prefix("unix://") else {
            return Err(unreachable(BollardError::DockerStreamError {
                error: "only `unix://` sockets are supported for this engine".into(),
            }));
        };
        let api = bollard::Docker::connect_with_unix(path, 10, bollard::API_DEFAULT_VERSION).map_err(unreachable)?;
        api.ping().await.map_err(unreachable)?;
        Ok(Docker { api: api.with_timeout(Duration::from_secs(24 * 3600)) })
    }

    /// The engine's id, runtimes and version.
    pub async fn info(&self) -> Result<EngineInfo, DockerError> {
        let info = self.api.info().await.map_err(DockerError::api("read info of", "the engine"))?;
        let mut runtimes: Vec<String> = info.runtimes.unwrap_or_default().into_keys().collect();
        runtimes.sort();
        Ok(EngineInfo {
            root_dir: info.docker_root_dir.unwrap_or_default(),
            default_runtime: info.default_runtime.unwrap_or_default(),
            runtimes,
            version: info.server_version.unwrap_or_default(),
        })
    }

    /// How a stopped container ended (read before it is removed).
    pub async fn exit_info(&self, id: &str) -> Result<ExitInfo, DockerError> {
        let info = self.api.inspect_container(id, None).await.map_err(DockerError::api("inspect container", id))?;
        Ok(ExitInfo { oom_killed: info.state.and_then(|s| s.oom_killed).unwrap_or(false) })
    }

    /// Copies the image `image` from the engine `from` into this one (`docker save | docker load`,
    /// streamed); layers this engine already has are kept, not written again.
    pub async fn load_from(&self, from: &Docker, image: &str) -> Result<(), DockerError> {
        let fail = |message: String| DockerError::Load { image: image.to_string(), message };
        let export = from.api.export_image(image);
        let options = bollard::query_parameters::ImportImageOptionsBuilder::default().quiet(true).build();
        let mut stream = self.api.import_image_stream(options, export, None);
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| fail(error_message(&e)))?;
            if let Some(detail) = info.error_detail {
                return Err(fail(detail.message.unwrap_or_default()));
            }
        }
        Ok(())
    }

    /// Whether the engine listens on a local unix socket that steps can mount.
    pub fn local_socket() -> Option<&'static str> {
        let host = std::env::var("DOCKER_HOST").unwrap_or_default();
        let path = "/var/run/docker.sock";
        (host.is_empty() || host == format!("unix://{path}"))
            .then_some(path)
            .filter(|p| std::path::Path::new(p).exists())
    }

    /// The image's digest-qualified name if it has one (`repo@sha256:…`), else its local id.
    pub async fn image_digest(&self, image: &str) -> Result<Option<String>, DockerError> {
        match self.api.inspect_image(image).await {
            Ok(info) => Ok(info
                .repo_digests
                .and_then(|d| d.into_iter().next())
                .and_then(|d| d.split_once('@').map(|(_, digest)| digest.to_string()))
                .or(info.id)),
            Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => Ok(None),
            Err(e) => Err(DockerError::api("inspect image", image)(e)),
        }
    }

    pub async fn pull(&self, image: &str) -> Result<(), DockerError> {
        let options = CreateImageOptionsBuilder::default().from_image(image).build();
        let mut stream = self.api.create_image(Some(options), None, None);
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(detail) = info.error_detail {
                        return Err(DockerError::Pull {
                            image: image.to_string(),
                            message: detail.message.unwrap_or_default(),
                        });
                    }
                }
                Err(e) => {
                    return Err(DockerError::Pull { image: image.to_string(), message: error_message(&e) });
                }
            }
        }
        Ok(())
    }

    /// A bridge network; `internal` ones have no gateway out (their containers reach only each other).
    pub async fn create_network(
        &self,
        name: &str,
        labels: HashMap<String, String>,
        internal: bool,
    ) -> Result<String, DockerError> {
        let request = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".into()),
            internal: Some(internal),
            labels: Some(labels),
            ..Default::default()
        };
        let response = self.api.create_network(request).await.map_err(DockerError::api("create network", name))?;
        Ok(response.id)
    }

    pub async fn remove_network(&self, name: &str) -> Result<(), DockerError> {
        ignore_missing(self.api.remove_network(name).await).map_err(DockerError::api("remove network", name))
    }

    pub async fn create_volume(&self, name: &str, labels: HashMap<String, String>) -> Result<(), DockerError> {
        let request = VolumeCreateRequest { name: Some(name.to_string()), labels: Some(labels), ..Default::default() };
        self.api.create_volume(request).await.map_err(DockerError::api("create volume", name))?;
        Ok(())
    }

    pub async fn remove_volume(&self, name: &str) -> Result<(), DockerError> {
        let options = RemoveVolumeOptionsBuilder::default().force(true).build();
        ignore_missing(self.api.remove_volume(name, Some(options)).await)
            .map_err(DockerError::api("remove volume", name))
    }

    pub async fn create_container(&self, spec: &ContainerSpec) -> Result<String, DockerError> {
        let mounts = spec.mounts.iter().map(to_mount).collect();
        // `container:<id>` joins that container's network namespace: it takes no endpoint of its own.
        let joins = spec.network.as_ref().is_some_and(|n| n.starts_with("container:"));
        let networking_config = spec.network.as_ref().filter(|_| !joins).map(|network| NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                network.clone(),
                EndpointSettings { aliases: Some(spec.network_aliases.clone()), ..Default::default() },
            )])),
        });
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            entrypoint: spec.entrypoint.clone(),
            cmd: spec.cmd.clone(),
            env: Some(spec.env.clone()),
            working_dir: spec.working_dir.clone(),
            labels: Some(spec.labels.clone()),
            host_config: Some(HostConfig {
                mounts: Some(mounts),
                network_mode: spec.network.clone(),
                // An init process forwards SIGTERM, so a step whose PID 1 ignores signals (a shell, `sleep`)
                // still stops promptly on timeout or cancel.
                init: Some(true),
                runtime: spec.runtime.clone(),
                memory: spec.resources.memory.map(|m| m as i64),
                // Swap counts in the limit: a step over it is killed, not slowed to a crawl.
                memory_swap: spec.resources.memory.map(|m| m as i64),
                nano_cpus: spec.resources.cpus.map(|c| (c * 1e9) as i64),
                pids_limit: spec.resources.pids,
                security_opt: (!spec.security_opt.is_empty()).then(|| spec.security_opt.clone()),
                extra_hosts: (!spec.extra_hosts.is_empty()).then(|| spec.extra_hosts.clone()),
                ..Default::default()
            }),
            networking_config,
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::default().name(&spec.name).build();
        let response = self
            .api
            .create_container(Some(options), body)
            .await
            .map_err(DockerError::api("create container", &spec.name))?;
        Ok(response.id)
    }

    pub async fn start(&self, id: &str) -> Result<(), DockerError> {
        self.api.start_container(id, None).await.map_err(DockerError::api("start container", id))
    }

    /// The container's output from its start, following until it exits.
    pub fn output(&self, id: &str) -> impl Stream<Item = Result<(OutputStream, bytes::Bytes), DockerError>> + use<> {
        let options = LogsOptionsBuilder::default().follow(true).stdout(true).stderr(true).build();
        let id_owned = id.to_string();
        self.api.logs(id, Some(options)).filter_map(move |item| {
            let id = id_owned.clone();
            async move {
                use bollard::container::LogOutput;
                match item {
                    Ok(LogOutput::StdOut { message }) | Ok(LogOutput::Console { message }) => {
                        Some(Ok((OutputStream::Stdout, message)))
                    }
                    Ok(LogOutput::StdErr { message }) => Some(Ok((OutputStream::Stderr, message))),
                    Ok(LogOutput::StdIn { .. }) => None,
                    Err(e) => Some(Err(DockerError::api("read logs of", &id)(e))),
                }
            }
        })
    }

    /// Waits for the container to stop and returns its exit code.
    pub async fn wait(&self, id: &str) -> Result<i64, DockerError> {
        let options = WaitContainerOptionsBuilder::default().condition("not-running").build();
        let mut stream = self.api.wait_container(id, Some(options));
        match stream.next().await {
            Some(Ok(response)) => Ok(response.status_code),
            // bollard reports a non-zero exit as an error carrying the code.
            Some(Err(BollardError::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(e)) => Err(DockerError::api("wait for container", id)(e)),
            None => Err(DockerError::Api {
                action: "wait for container",
                object: id.to_string(),
                source: BollardError::DockerStreamError {
                    error: "the engine closed the wait stream without a status".into(),
                },
            }),
        }
    }

    /// SIGTERM, then SIGKILL after `grace`.
    pub async fn stop(&self, id: &str, grace: Duration) -> Result<(), DockerError> {
        let secs = i32::try_from(grace.as_secs()).unwrap_or(i32::MAX);
        let options = StopContainerOptionsBuilder::default().t(secs).build();
        match self.api.stop_container(id, Some(options)).await {
            Ok(()) | Err(BollardError::DockerResponseServerError { status_code: 304 | 404, .. }) => Ok(()),
            Err(e) => Err(DockerError::api("stop container", id)(e)),
        }
    }

    pub async fn remove_container(&self, id: &str) -> Result<(), DockerError> {
        let options = RemoveContainerOptionsBuilder::default().force(true).v(true).build();
        match self.api.remove_container(id, Some(options)).await {
            Ok(()) | Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
            // 409: another process (a concurrent cleanup) is removing it. Its volumes and network stay
            // in use until it is gone, so wait for that rather than report it removed too early.
            Err(BollardError::DockerResponseServerError { status_code: 409, .. }) => self.until_gone(id).await,
            Err(e) => Err(DockerError::api("remove container", id)(e)),
        }
    }

    /// Waits (at most [`REMOVAL_WAIT`]) until the container `id` no longer exists.
    async fn until_gone(&self, id: &str) -> Result<(), DockerError> {
        let deadline = tokio::time::Instant::now() + REMOVAL_WAIT;
        loop {
            match self.api.inspect_container(id, None).await {
                Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => return Ok(()),
                Err(e) => return Err(DockerError::api("inspect container", id)(e)),
                Ok(_) if tokio::time::Instant::now() >= deadline => {
                    return Err(DockerError::StillThere { id: id.to_string(), waited: REMOVAL_WAIT });
                }
                Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Containers (running or not), volumes and networks that carry the label `key` (any value).
    pub async fn list_labelled(&self, key: &str) -> Result<Labelled, DockerError> {
        let filters = HashMap::from([("label", vec![key])]);
        let containers = self
            .api
            .list_containers(Some(ListContainersOptionsBuilder::default().all(true).filters(&filters).build()))
            .await
            .map_err(DockerError::api("list containers labelled", key))?;
        let volumes = self
            .api
            .list_volumes(Some(ListVolumesOptionsBuilder::default().filters(&filters).build()))
            .await
            .map_err(DockerError::api("list volumes labelled", key))?;
        let networks = self
            .api
            .list_networks(Some(ListNetworksOptionsBuilder::default().filters(&filters).build()))
            .await
            .map_err(DockerError::api("list networks labelled", key))?;
        Ok(Labelled {
            containers: containers.into_iter().filter_map(|c| Some((c.id?, c.labels.unwrap_or_default()))).collect(),
            volumes: volumes.volumes.unwrap_or_default().into_iter().map(|v| (v.name, v.labels)).collect(),
            networks: networks.into_iter().filter_map(|n| Some((n.id?, n.labels.unwrap_or_default()))).collect(),
        })
    }
}

/// What `docker build` needs besides the context.
#[derive(Clone, Debug, Default)]
pub struct BuildSpec {
    /// The first tag; more can be added with [`Docker::tag`].
    pub tag: String,
    /// Context-relative Dockerfile path.
    pub dockerfile: String,
    pub build_args: HashMap<String, String>,
    pub labels: HashMap<String, String>,
    pub target: Option<String>,
    /// Limits of the build's `RUN` containers.
    pub resources: Resources,
    /// The network of the `RUN` containers (`none`); `None` is the engine's default bridge.
    pub network_mode: Option<String>,
}

/// Registry credentials for a push, in Docker's own form.
#[derive(Clone, Debug, Default)]
pub struct PushAuth {
    pub username: Option<String>,
    pub password: Option<String>,
    pub identity_token: Option<String>,
    pub server: String,
}

impl Docker {
    /// Builds an image from an uncompressed tar context; `log` receives each line of build output.
    /// Returns the image id.
    pub async fn build(
        &self,
        spec: &BuildSpec,
        context_tar: Vec<u8>,
        mut log: impl FnMut(&str),
    ) -> Result<String, DockerError> {
        let mut options = BuildImageOptionsBuilder::default()
            .dockerfile(&spec.dockerfile)
            .t(&spec.tag)
            .rm(true)
            .forcerm(true)
            .buildargs(&spec.build_args)
            .labels(&spec.labels);
        if let Some(target) = &spec.target {
            options = options.target(target);
        }
        if let Some(mode) = &spec.network_mode {
            options = options.networkmode(mode);
        }
        if let Some(cpus) = spec.resources.cpus {
            const PERIOD: i32 = 100_000;
            options = options.cpuperiod(PERIOD).cpuquota((cpus * f64::from(PERIOD)) as i32);
        }
        // The build API takes memory as a 32-bit number: a limit above 2 GiB cannot be given to it, and
        // such builds run without one (ARCHITECTURE.md "Limits").
        if let Some(memory) = spec.resources.memory.and_then(|m| i32::try_from(m).ok()) {
            options = options.memory(memory).memswap(memory);
        }
        let fail = |message: String| DockerError::Build { tag: spec.tag.clone(), message };
        let mut stream = self.api.build_image(options.build(), None, Some(bollard::body_full(context_tar.into())));
        let mut id = None;
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| fail(error_message(&e)))?;
            if let Some(detail) = info.error_detail {
                return Err(fail(detail.message.unwrap_or_default()));
            }
            if let Some(text) = info.stream {
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    log(line);
                }
            }
            if let Some(aux) = info.aux {
                id = aux.id.or(id);
            }
        }
        match id {
            Some(id) => Ok(id),
            None => self.image_id(&spec.tag).await?.ok_or_else(|| fail("the engine reported no image id".into())),
        }
    }

    /// The local image id (`sha256:…` of its config), if the image is present.
    pub async fn image_id(&self, image: &str) -> Result<Option<String>, DockerError> {
        match self.api.inspect_image(image).await {
            Ok(info) => Ok(info.id),
            Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => Ok(None),
            Err(e) => Err(DockerError::api("inspect image", image)(e)),
        }
    }

    /// The labels of a local image (empty if it has none); `None` if the image is absent.
    pub async fn image_labels(&self, image: &str) -> Result<Option<HashMap<String, String>>, DockerError> {
        match self.api.inspect_image(image).await {
            Ok(info) => Ok(Some(info.config.and_then(|c| c.labels).unwrap_or_default())),
            Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => Ok(None),
            Err(e) => Err(DockerError::api("inspect image", image)(e)),
        }
    }

    /// Local image ids carrying `label=value`, newest first.
    pub async fn images_labelled(&self, label: &str, value: &str) -> Result<Vec<String>, DockerError> {
        let filter = format!("{label}={value}");
        let filters = HashMap::from([("label", vec![filter.as_str()])]);
        let mut images = self
            .api
            .list_images(Some(ListImagesOptionsBuilder::default().filters(&filters).build()))
            .await
            .map_err(DockerError::api("list images labelled", &filter))?;
        images.sort_by_key(|i| std::cmp::Reverse(i.created));
        Ok(images.into_iter().map(|i| i.id).collect())
    }

    /// Adds `repo:tag` to an existing local image.
    pub async fn tag(&self, image: &str, repo: &str, tag: &str) -> Result<(), DockerError> {
        let options = TagImageOptionsBuilder::default().repo(repo).tag(tag).build();
        self.api.tag_image(image, Some(options)).await.map_err(DockerError::api("tag image", image))
    }

    pub async fn remove_image(&self, image: &str) -> Result<(), DockerError> {
        let options = RemoveImageOptionsBuilder::default().force(true).build();
        match self.api.remove_image(image, Some(options), None).await {
            Ok(_) | Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
            Err(e) => Err(DockerError::api("remove image", image)(e)),
        }
    }

    /// Pushes `repo:tag` and returns the registry digest (`sha256:…`) the engine reports.
    pub async fn push(&self, repo: &str, tag: &str, auth: Option<&PushAuth>) -> Result<String, DockerError> {
        let image = format!("{repo}:{tag}");
        let fail = |message: String| DockerError::Push { image: image.clone(), message };
        let credentials = auth.map(|a| DockerCredentials {
            username: a.username.clone(),
            password: a.password.clone(),
            identitytoken: a.identity_token.clone(),
            serveraddress: Some(a.server.clone()),
            ..Default::default()
        });
        let options = PushImageOptionsBuilder::default().tag(tag).build();
        let mut stream = self.api.push_image(repo, Some(options), credentials);
        let mut digest = None;
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| fail(error_message(&e)))?;
            if let Some(detail) = info.error_detail {
                return Err(fail(detail.message.unwrap_or_default()));
            }
            // The last status line reads `<tag>: digest: sha256:… size: N`.
            if let Some(status) = info.status
                && let Some(rest) = status.split("digest: ").nth(1)
            {
                digest = rest.split_whitespace().next().map(str::to_string);
            }
        }
        digest.ok_or_else(|| fail("the engine reported no digest".into()))
    }
}

fn to_mount(spec: &MountSpec) -> Mount {
    match spec {
        MountSpec::Bind { source, target, read_only } => Mount {
            typ: Some(MountType::BIND),
            source: Some(source.clone()),
            target: Some(target.clone()),
            read_only: Some(*read_only),
            ..Default::default()
        },
        MountSpec::Volume { name, target } => Mount {
            typ: Some(MountType::VOLUME),
            source: Some(name.clone()),
            target: Some(target.clone()),
            ..Default::default()
        },
    }
}

fn ignore_missing(result: Result<(), BollardError>) -> Result<(), BollardError> {
    match result {
        Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
        other => other,
    }
}

/// The engine's own message, without bollard's wrapping, for errors shown to users.
pub fn error_message(error: &BollardError) -> String {
    match error {
        BollardError::DockerResponseServerError { message, .. } => message.clone(),
        BollardError::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}
