//! One container task: its directory and output paths, its command line, the container itself
//! (create, start, stream output, wait or stop, remove) and its outputs, retried as its
//! `retryPolicy` says.
//!
//! The container gets the IR `command` as its entrypoint, as Kubernetes does (`command[0]` as
//! `--entrypoint`, the rest and `args` as CMD); with no `command` the image's entrypoint stays and
//! `args` are its CMD. The task's own directory is mounted read-write at its host path, and each input
//! artifact read-only at its own, so an artifact's URI (a host path) is also its path inside the
//! container; nothing else of the run is there.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::super::ir::{Component, Container, RetryPolicy};
use super::dag::{ActiveRun, Ended};
use super::inputs::Sibling;
use super::placeholders::{self, Context, OutputPaths, TaskInfo};
use super::{Artifact, RUN_LABEL, TASK_LABEL, TaskState, Values, create_dir, outputs};
use crate::executor::janitor;
use crate::io::docker::{ContainerSpec, MountSpec, OutputStream};
use crate::io::host_path::{HostPathError, Rooted, Segment};
use crate::mask::LineSplitter;
use crate::record::Timestamp;

/// How one attempt ended.
enum Attempt {
    Exited(i64),
    Stopped,
    /// The container could not run (no image, an engine error).
    Broken(String),
}

/// A container task to run.
pub(super) struct ContainerTask<'a> {
    pub path: &'a str,
    /// The task's name in its DAG (`{{$.pipeline_task_name}}`).
    pub name: &'a str,
    pub container: &'a Container,
    pub component: &'a Component,
    pub inputs: Values,
    pub retry: Option<&'a RetryPolicy>,
}

impl ActiveRun<'_> {
    pub(super) async fn run_container(&self, mut task: ContainerTask<'_>, stop: &CancellationToken) -> Ended {
        let failed =
            |error: String| Ended::unstarted(TaskState::Failed, Some(format!("task `{}`: {error}", task.path)));
        let dir = match self.dir.join_relative(task.path) {
            Ok(dir) => dir,
            Err(e) => return failed(format!("its name cannot be a directory: {e}")),
        };
        if let Err(e) = prepare(&dir) {
            return failed(format!("cannot create its directory `{dir}`: {}", crate::error_chain(&e)));
        }
        let paths = match output_paths(task.component, &dir) {
            Ok(paths) => paths,
            Err(e) => return failed(e),
        };
        let info = TaskInfo {
            job_name: self.ids.job_name.clone(),
            run_id: self.ids.run_id.clone(),
            task_name: task.name.to_string(),
            task_id: self.sequence.fetch_add(1, Ordering::Relaxed).to_string(),
            pipeline_root: self.dir.to_string(),
            created_utc: self.ids.created_utc.clone(),
        };
        let mut inputs = std::mem::take(&mut task.inputs);
        placeholders::resolve_parameter_values(&mut inputs, &info);
        let context = Context { inputs: &inputs, outputs: &paths, task: &info };
        let spec = match self.container_spec(&task, &context, &info.task_id, &dir) {
            Ok(spec) => spec,
            Err(e) => return failed(e),
        };
        let retries = task.retry.map_or(0, |r| r.max_retries);
        let mut started = None;
        let mut attempt_number = 0;
        loop {
            let attempt = self.attempt(&spec, task.path, stop, &mut started).await;
            let (state, exit_code, error, outputs) = match attempt {
                Attempt::Exited(0) => match outputs::collect(task.component, &paths, &dir) {
                    Ok(outputs) => {
                        self.record_metrics(task.path, &outputs);
                        (TaskState::Succeeded, Some(0), None, outputs)
                    }
                    Err(e) => (TaskState::Failed, Some(0), Some(e), Values::default()),
                },
                Attempt::Exited(code) => {
                    (TaskState::Failed, Some(code), Some(format!("exited with code {code}")), Values::default())
                }
                Attempt::Stopped => (TaskState::Cancelled, None, None, Values::default()),
                Attempt::Broken(e) => (TaskState::Failed, None, Some(e), Values::default()),
            };
            if state == TaskState::Failed && attempt_number < retries && !stop.is_cancelled() {
                let delay = task.retry.map(|r| backoff(r, attempt_number)).unwrap_or_default();
                attempt_number += 1;
                let reason = error.as_deref().unwrap_or("failed");
                self.emit_line(
                    task.path,
                    &format!("pipewright: {reason}; retry {attempt_number} of {retries} in {}s", delay.as_secs_f64()),
                );
                tokio::select! {
                    _ = tokio::time::sleep(delay) => continue,
                    _ = stop.cancelled() => {}
                }
            }
            let error = error.map(|e| format!("task `{}` failed: {e}", task.path));
            return Ended { sibling: Sibling { state, outputs, error }, started, exit_code };
        }
    }

    fn container_spec(
        &self,
        task: &ContainerTask<'_>,
        context: &Context<'_>,
        task_id: &str,
        dir: &Rooted,
    ) -> Result<ContainerSpec, String> {
        let command = context.command_line(&task.container.command);
        let args = context.command_line(&task.container.args);
        let (entrypoint, cmd) = match command.split_first() {
            Some((first, rest)) => (Some(vec![first.clone()]), Some(rest.iter().chain(&args).cloned().collect())),
            None if args.is_empty() => (None, None),
            None => (None, Some(args)),
        };
        let env =
            task.container.env.iter().map(|(name, value)| format!("{name}={}", context.substitute(value))).collect();
        let own = dir.to_string();
        let mut mounts = vec![MountSpec::Bind { source: own.clone(), target: own, read_only: false }];
        mounts.extend(input_mounts(context.inputs, &self.dir, &self.runner.import_roots)?);
        let mut labels = janitor::labels(&self.runner.build_id);
        labels.insert(RUN_LABEL.to_string(), self.ids.run_id.clone());
        labels.insert(TASK_LABEL.to_string(), task.path.to_string());
        Ok(ContainerSpec {
            name: container_name(&self.runner.build_id, &self.ids.run_id, task_id),
            image: task.container.image.clone(),
            entrypoint,
            cmd,
            env,
            working_dir: None,
            mounts,
            network: None,
            network_aliases: Vec::new(),
            labels,
            ..ContainerSpec::default()
        })
    }

    /// Runs the container once, waiting for a free slot first. The container is removed whatever
    /// happens once it exists. `started` is set when the first attempt starts.
    async fn attempt(
        &self,
        spec: &ContainerSpec,
        path: &str,
        stop: &CancellationToken,
        started: &mut Option<Timestamp>,
    ) -> Attempt {
        let _slot = tokio::select! {
            permit = self.slots.acquire() => match permit {
                Ok(permit) => permit,
                Err(_) => return Attempt::Broken("the run is shutting down".into()),
            },
            _ = stop.cancelled() => return Attempt::Stopped,
        };
        let docker = &self.runner.docker;
        match docker.image_id(&spec.image).await {
            Ok(Some(_)) => {}
            // A component image another build made may live only in the registry: fetch it by digest.
            Ok(None) => {
                if let Err(e) = docker.pull(&pull_reference(&spec.image)).await {
                    return Attempt::Broken(format!(
                        "image `{}` is not present locally and could not be pulled: {}",
                        spec.image,
                        crate::error_chain(&e)
                    ));
                }
            }
            Err(e) => return Attempt::Broken(crate::error_chain(&e)),
        }
        let id = match docker.create_container(spec).await {
            Ok(id) => id,
            Err(e) => return Attempt::Broken(crate::error_chain(&e)),
        };
        if started.is_none() {
            *started = Some(self.task_started(path));
        }
        let attempt = self.supervise(&id, path, stop).await;
        // Removal failing leaves a labelled container for the build's cleanup; the task's result stands.
        let _ = docker.remove_container(&id).await;
        attempt
    }

    /// Starts the container, streams its output and waits for it to exit or for `stop`.
    async fn supervise(&self, id: &str, path: &str, stop: &CancellationToken) -> Attempt {
        let docker = &self.runner.docker;
        if let Err(e) = docker.start(id).await {
            return Attempt::Broken(crate::error_chain(&e));
        }
        let exited = CancellationToken::new();
        let waiting = async {
            let attempt = tokio::select! {
                code = docker.wait(id) => match code {
                    Ok(code) => Attempt::Exited(code),
                    Err(e) => Attempt::Broken(crate::error_chain(&e)),
                },
                _ = stop.cancelled() => {
                    let _ = docker.stop(id, self.runner.stop_grace).await;
                    Attempt::Stopped
                }
            };
            exited.cancel();
            attempt
        };
        let (attempt, ()) = tokio::join!(waiting, self.pump(id, path, &exited));
        attempt
    }

    /// Sends the container's output line by line as events until the stream ends; once the container
    /// has exited, an engine that never closes the stream gets 10 s.
    async fn pump(&self, id: &str, path: &str, exited: &CancellationToken) {
        let mut stream = Box::pin(self.runner.docker.output(id));
        let mut splitters = [LineSplitter::default(), LineSplitter::default()];
        let deadline = async {
            exited.cancelled().await;
            tokio::time::sleep(Duration::from_secs(10)).await;
        };
        tokio::pin!(deadline);
        loop {
            let item = tokio::select! {
                item = stream.next() => item,
                _ = &mut deadline => None,
            };
            let Some(Ok((which, bytes))) = item else { break };
            let splitter = &mut splitters[usize::from(which == OutputStream::Stderr)];
            for line in splitter.push(&bytes) {
                self.emit_line(path, &line);
            }
        }
        for splitter in &mut splitters {
            if let Some(line) = splitter.finish() {
                self.emit_line(path, &line);
            }
        }
    }
}

/// A name the runner itself chose.
fn fixed(name: &str) -> Segment {
    Segment::new(name).expect("the runner's own names are segments")
}

/// The task's directory and the folders its outputs go to, writable by any container user.
fn prepare(dir: &Rooted) -> Result<(), HostPathError> {
    create_dir(dir)?;
    create_dir(&dir.join(&fixed("parameters")))?;
    create_dir(&dir.join(&fixed("artifacts")))
}

/// Where each declared output goes: `<task dir>/parameters/<name>`, `<task dir>/artifacts/<name>`,
/// `<task dir>/executor_output.json`. An output whose name is not a segment is refused (the IR reader
/// refuses it first).
pub(super) fn output_paths(component: &Component, dir: &Rooted) -> Result<OutputPaths, String> {
    let file = |folder: &str, kind: &str, name: &str| -> Result<String, String> {
        let segment = Segment::new(name).map_err(|e| format!("output {kind} name: {e}"))?;
        Ok(dir.join(&fixed(folder)).join(&segment).to_string())
    };
    let mut paths =
        OutputPaths { output_file: dir.join(&fixed("executor_output.json")).to_string(), ..OutputPaths::default() };
    for name in component.outputs.parameters.keys() {
        paths.parameters.insert(name.clone(), file("parameters", "parameter", name)?);
    }
    for (name, spec) in &component.outputs.artifacts {
        let artifact = Artifact {
            name: name.clone(),
            artifact_type: spec.artifact_type.clone(),
            uri: file("artifacts", "artifact", name)?,
            metadata: spec.metadata.clone(),
        };
        paths.artifacts.insert(name.clone(), artifact);
    }
    Ok(paths)
}

/// Input artifacts on this host, each mounted read-only where it is, so its URI is its path in the
/// container too: those of the run and an importer's local file under one of `imports` (a build's
/// workspace), each checked for `..` and for links (which their producer, or the repository, could
/// have left). Any other host path is refused: the URI comes from the spec. A URI that is not an
/// absolute path (`gs://…`) or names nothing here is not mounted.
fn input_mounts(inputs: &Values, run: &Rooted, imports: &[Rooted]) -> Result<Vec<MountSpec>, String> {
    let mut mounts: Vec<MountSpec> = Vec::new();
    for (name, artifact) in inputs.artifacts.iter().flat_map(|(n, list)| list.iter().map(move |a| (n, a))) {
        let path = PathBuf::from(&artifact.uri);
        if !path.is_absolute() || std::fs::symlink_metadata(&path).is_err() {
            continue;
        }
        let root = std::iter::once(run).chain(imports).find(|root| path.starts_with(root.path()));
        let Some(root) = root else {
            let allowed: Vec<String> = imports.iter().map(|r| format!("`{}`", r.path().display())).collect();
            let allowed = if allowed.is_empty() { "none for this run".to_string() } else { allowed.join(", ") };
            return Err(format!(
                "input artifact `{name}` is refused: `{}` is a host path outside the run, and local files are \
                 imported only from the build's workspace ({allowed}); put the file in the repository, or \
                 use a remote URI",
                artifact.uri
            ));
        };
        let checked = root.within(&artifact.uri).and_then(|p| p.refuse_symlinks().map(|()| p));
        checked.map_err(|e| format!("input artifact `{name}` is refused: {e}"))?;
        let target = artifact.uri.clone();
        if !mounts.iter().any(|m| matches!(m, MountSpec::Bind { target: t, .. } if *t == target)) {
            mounts.push(MountSpec::Bind { source: target.clone(), target, read_only: true });
        }
    }
    Ok(mounts)
}

/// A unique, valid container name: `pipewright-<build>-run-<run id prefix>-<n>`.
fn container_name(build_id: &str, run_id: &str, task_id: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') { c } else { '-' }).collect()
    };
    let run: String = run_id.chars().take(8).collect();
    format!("pipewright-{}-run-{}-{}", clean(build_id), clean(&run), task_id)
}

/// The wait before retry `attempt` (0-based): `backoffDuration × backoffFactor^attempt`, at most
/// `backoffMaxDuration`.
fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let factor = policy.factor.powi(i32::try_from(attempt).unwrap_or(i32::MAX));
    let seconds = policy.backoff.as_secs_f64() * factor;
    let capped = if seconds.is_finite() {
        seconds.min(policy.max_backoff.as_secs_f64())
    } else {
        policy.max_backoff.as_secs_f64()
    };
    Duration::from_secs_f64(capped.max(0.0))
}

/// What to pull for an image reference: `repo@digest` when it has a digest (a tag beside it would be
/// ambiguous to the engine), else the reference as written.
fn pull_reference(image: &str) -> String {
    match crate::image_ref::ImageRef::parse(image) {
        Ok(parsed) if parsed.digest.is_some() => {
            format!("{}@{}", parsed.repository(), parsed.digest.unwrap_or_default())
        }
        _ => image.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_backoff() {
        assert_eq!(container_name("b/1 x", "0123456789ab", "3"), "pipewright-b-1-x-run-01234567-3");
        let policy = RetryPolicy {
            max_retries: 3,
            backoff: Duration::from_secs(2),
            factor: 3.0,
            max_backoff: Duration::from_secs(10),
        };
        let waits: Vec<u64> = (0..4).map(|a| backoff(&policy, a).as_secs()).collect();
        assert_eq!(waits, [2, 6, 10, 10]);
    }

    #[test]
    fn input_artifacts_are_mounted_once_and_never_through_a_link() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("data.csv");
        std::fs::write(&file, "a").expect("write");
        let artifact = |uri: &str| Artifact {
            name: "a".into(),
            artifact_type: serde_json::json!({}),
            uri: uri.into(),
            metadata: serde_json::Map::new(),
        };
        let uri = file.display().to_string();
        let inputs = Values {
            parameters: Default::default(),
            artifacts: [
                ("a".to_string(), vec![artifact(&uri), artifact("gs://b/k"), artifact("/no/such/file")]),
                ("b".to_string(), vec![artifact(&uri)]),
            ]
            .into(),
        };
        // An importer's file in the workspace: mounted once, read-only.
        let run = Rooted::root("/root-of-runs").expect("root");
        let workspace = [Rooted::root(dir.path()).expect("root")];
        let mounts = input_mounts(&inputs, &run, &workspace).expect("mounts");
        assert_eq!(mounts, [MountSpec::Bind { source: uri.clone(), target: uri.clone(), read_only: true }]);
        // Anywhere else on the host (the spec says where): refused, with where files may come from.
        let host = |uri: &str| Values {
            parameters: Default::default(),
            artifacts: [("h".to_string(), vec![artifact(uri)])].into(),
        };
        let err = input_mounts(&inputs, &run, &[]).expect_err("no workspace");
        assert!(err.contains("outside the run") && err.contains("none for this run"), "{err}");
        for outside in ["/etc/passwd", "/etc", "/proc/self/environ"] {
            let err = input_mounts(&host(outside), &run, &workspace).expect_err(outside);
            assert!(err.contains(&format!("`{outside}` is a host path outside the run")), "{err}");
        }
        // Inside the run: mounted too, unless a link is on the way.
        let run = Rooted::root(dir.path()).expect("root");
        assert_eq!(input_mounts(&inputs, &run, &[]).expect("mounts").len(), 1);
        std::os::unix::fs::symlink("/etc", dir.path().join("evil")).expect("link");
        let evil = Values {
            parameters: Default::default(),
            artifacts: [("e".to_string(), vec![artifact(&dir.path().join("evil").display().to_string())])].into(),
        };
        let err = input_mounts(&evil, &run, &[]).expect_err("a link");
        assert!(err.starts_with("input artifact `e` is refused: `") && err.contains("is a symbolic link"), "{err}");
    }
}
