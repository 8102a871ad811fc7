//! A validated, substituted, ready-to-run build: the only input the engine takes.
//!
//! Planning applies substitutions with the real built-ins of the checked-out commit, resolves `waitFor`
//! into step indexes, merges environments and checks what can only be checked after substitution (image
//! references, tags). Nothing downstream re-checks the config. Pure: no IO.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::config::{BuildConfig, Decoder, Diagnostics, Pos, Step, SubstitutionOption, clean_path};
use crate::image_ref::ImageRef;
use crate::source::Source;
use crate::subst::{self, Mode, Substitutions};

mod environment;

pub use environment::{ApprovalRule, Environment, Gate, GateCheck};

/// Cloud Build's default build timeout (the current API: 60 minutes).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);
pub const WORKSPACE: &str = "/workspace";
pub const HOME: &str = "/builder/home";
/// `$LOCATION` of every build: pipewright's builds run here, not in a cloud region.
pub const LOCATION: &str = "local";

/// What the planner needs besides the file.
#[derive(Clone, Debug, Default)]
pub struct BuildContext {
    pub build_id: String,
    pub project_id: String,
    pub location: String,
    pub source: Source,
    /// The build file, repository-relative (TRIGGER_BUILD_CONFIG_PATH for triggered builds).
    pub config_path: String,
    /// `--substitutions` (or a trigger's): user keys only (built-ins are refused).
    pub overrides: Vec<(String, String)>,
    /// Set for triggered builds, which are always ALLOW_LOOSE with dynamic substitutions (Cloud Build).
    pub trigger_name: Option<String>,
    /// Pull-request facts for `_HEAD_BRANCH`, `_BASE_BRANCH`, `_HEAD_REPO_URL`, `_PR_NUMBER`.
    pub pull_request: Option<PullRequest>,
}

#[derive(Clone, Debug, Default)]
pub struct PullRequest {
    pub head_branch: String,
    pub base_branch: String,
    pub head_repo_url: String,
    pub number: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeMount {
    /// The name in the build file.
    pub name: String,
    pub path: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PlannedStep {
    pub index: usize,
    pub id: Option<String>,
    pub image: String,
    pub args: Vec<String>,
    /// `KEY=VALUE`, `options.env` merged under the step's own, automapped substitutions last.
    pub env: Vec<String>,
    /// Names of the secret env vars (global and the step's).
    pub secret_env: Vec<String>,
    pub entrypoint: Option<String>,
    /// `dir` as written (after substitution), for the record.
    pub dir: String,
    /// Where the container starts: `/workspace/<dir>` cleaned, or an absolute `dir` as is.
    pub working_dir: String,
    /// Global volumes and the step's.
    pub volumes: Vec<VolumeMount>,
    pub timeout: Option<Duration>,
    /// Indexes of the steps this one waits for.
    pub wait_for: Vec<usize>,
    /// `waitFor` as written, for the record.
    pub wait_for_ids: Vec<String>,
    pub allow_failure: bool,
    pub allow_exit_codes: Vec<i64>,
    pub script: Option<String>,
}

impl PlannedStep {
    /// `step 2 (unit-tests)` or `step 2`, as messages name steps.
    pub fn label(&self) -> String {
        match &self.id {
            Some(id) => format!("step {} ({id})", self.index),
            None => format!("step {}", self.index),
        }
    }

    /// Whether a non-zero `exit_code` leaves the build going (the step still reports FAILURE).
    pub fn failure_allowed(&self, exit_code: i64) -> bool {
        if self.allow_exit_codes.is_empty() { self.allow_failure } else { self.allow_exit_codes.contains(&exit_code) }
    }
}

#[derive(Clone, Debug)]
pub struct BuildPlan {
    pub build_id: String,
    pub project_id: String,
    pub steps: Vec<PlannedStep>,
    pub timeout: Duration,
    pub images: Vec<String>,
    pub tags: Vec<String>,
    /// Every substitution (built-ins and user), for the record.
    pub substitutions: BTreeMap<String, String>,
    /// Secret env names the build needs values for.
    pub secret_names: BTreeSet<String>,
    /// All named volumes of the build (global and per step), by their file name.
    pub volumes: BTreeSet<String>,
    pub commit_sha: String,
    /// Branch or tag name, for tagging uploads (empty for a detached commit).
    pub ref_name: String,
    /// `components.registry` after substitution; `None` keeps images in the local engine.
    pub registry: Option<String>,
    pub components: Vec<ComponentPlan>,
    pub pipeline: Option<PipelinePlan>,
    pub run: Option<RunPlan>,
    pub environments: Vec<Environment>,
    /// What the build asks for (`options.machineType`, `options.diskSizeGb`); the executor caps it.
    pub limits: crate::limits::Limits,
}

/// `run:` (docs/SPEC.md §9): where the compiled pipeline runs and how the build waits for it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunPlan {
    pub backend: RunBackend,
    /// Root input parameters of the pipeline (string values substituted).
    pub parameters: serde_json::Map<String, serde_json::Value>,
    pub wait: bool,
    pub timeout: Option<Duration>,
    /// Metrics read back into the record (all numeric metrics when empty).
    pub metrics: Vec<String>,
    pub pipeline_root: Option<String>,
    pub service_account: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", tag = "backend")]
pub enum RunBackend {
    /// The embedded runner: Docker on this machine.
    Local,
    Kfp {
        host: String,
    },
    Vertex {
        project: String,
        location: String,
        endpoint: Option<String>,
    },
}

/// One pipeline component to build (docs/SPEC.md §6).
#[derive(Clone, Debug, PartialEq)]
pub struct ComponentPlan {
    pub index: usize,
    pub name: String,
    /// Build context, relative to the build's root.
    pub context: String,
    /// Dockerfile, relative to the context.
    pub dockerfile: String,
    /// Spec files to rewrite, relative to the build's root.
    pub specs: Vec<String>,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    /// `<registry>/<name>`, or `<name>` without a registry.
    pub repository: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PipelinePlan {
    pub name: String,
    pub compile: Option<PlannedStep>,
    /// The compiled (or committed) IR, relative to the build's root.
    pub spec: String,
    pub uploads: Vec<UploadPlan>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum UploadPlan {
    /// An OCI repository (no tag): tagged with the commit and the branch.
    Oci(String),
    Kfp {
        host: String,
        pipeline: String,
    },
    ArtifactRegistry(String),
}

/// The built-in substitutions of a build of `ctx.source`.
pub fn builtins(ctx: &BuildContext) -> BTreeMap<String, String> {
    let s = &ctx.source;
    let branch = s.branch.clone().unwrap_or_default();
    let tag = s.tag.clone().unwrap_or_default();
    let reference = if branch.is_empty() { tag.clone() } else { branch.clone() };
    let pr = ctx.pull_request.clone().unwrap_or_default();
    let mut map: BTreeMap<String, String> = subst::BUILTINS.iter().map(|b| (b.to_string(), String::new())).collect();
    let values = [
        ("PROJECT_ID", ctx.project_id.clone()),
        ("BUILD_ID", ctx.build_id.clone()),
        ("LOCATION", ctx.location.clone()),
        ("COMMIT_SHA", s.commit_sha.clone()),
        ("REVISION_ID", s.commit_sha.clone()),
        ("SHORT_SHA", s.short_sha().to_string()),
        ("BRANCH_NAME", branch),
        ("TAG_NAME", tag),
        ("REF_NAME", reference),
        ("REPO_NAME", s.repo_name.clone()),
        ("REPO_FULL_NAME", s.repo_full_name.clone()),
        ("TRIGGER_NAME", ctx.trigger_name.clone().unwrap_or_default()),
        ("TRIGGER_BUILD_CONFIG_PATH", if ctx.trigger_name.is_some() { ctx.config_path.clone() } else { String::new() }),
        ("_HEAD_BRANCH", pr.head_branch),
        ("_BASE_BRANCH", pr.base_branch),
        ("_HEAD_REPO_URL", pr.head_repo_url),
        ("_PR_NUMBER", pr.number),
    ];
    for (k, v) in values {
        map.insert(k.to_string(), v);
    }
    map
}

/// Plans `config` for the build described by `ctx`; every problem is reported against the file.
pub fn plan(file: &str, config: &BuildConfig, ctx: &BuildContext) -> Result<BuildPlan, Diagnostics> {
    let mut d = Decoder::new(file);
    let builtins = builtins(ctx);
    let mut user: BTreeMap<String, String> =
        config.substitutions.iter().map(|(k, v)| (k.value.clone(), v.value.clone())).collect();
    for (k, v) in &ctx.overrides {
        // Built-ins come from the commit only (docs/THREATS.md property 3); `config::load` reports these
        // with their source, this keeps a plan made without it from using one.
        if subst::is_builtin(k) {
            d.error(config.steps_pos, "substitutions", subst::SubstError::BuiltinNotOverridable(k.clone()).to_string());
            continue;
        }
        user.insert(k.clone(), v.clone());
    }
    if d.diagnostics.has_errors() {
        return Err(d.diagnostics);
    }
    let triggered = ctx.trigger_name.is_some();
    let dynamic = triggered || config.options.dynamic_substitutions.unwrap_or(false);
    let mode = match config.options.substitution_option.as_ref().map(|o| o.value) {
        _ if triggered => Mode::AllowLoose,
        Some(SubstitutionOption::AllowLoose) => Mode::AllowLoose,
        _ => Mode::MustMatch,
    };
    let substitutions = match Substitutions::new(builtins, user, dynamic) {
        Ok(s) => s,
        Err(e) => {
            d.error(config.steps_pos, "substitutions", e.to_string());
            return Err(d.diagnostics);
        }
    };
    crate::config::report_substitution_problems(&mut d, config, &substitutions, mode);
    if d.diagnostics.has_errors() {
        return Err(d.diagnostics);
    }
    let mut planner = Planner { d, subst: &substitutions, config };
    let plan = planner.build(ctx);
    planner.d.diagnostics.sort();
    if planner.d.diagnostics.has_errors() {
        return Err(planner.d.diagnostics);
    }
    Ok(plan)
}

struct Planner<'a> {
    d: Decoder,
    subst: &'a Substitutions,
    config: &'a BuildConfig,
}

impl Planner<'_> {
    fn apply(&mut self, text: &str, pos: Pos, path: &str) -> String {
        match self.subst.apply(text) {
            Ok(value) => value,
            Err(e) => {
                self.d.error(pos, path, e.to_string());
                String::new()
            }
        }
    }

    fn build(&mut self, ctx: &BuildContext) -> BuildPlan {
        let config = self.config;
        let global_env: Vec<String> = config
            .options
            .env
            .iter()
            .enumerate()
            .map(|(i, e)| self.apply(e, e.pos, &format!("options.env[{i}]")))
            .collect();
        let global_volumes: Vec<VolumeMount> = config
            .options
            .volumes
            .iter()
            .map(|v| VolumeMount {
                name: v.name.value.clone(),
                path: clean_path(&v.path).unwrap_or_else(|| v.path.value.clone()),
            })
            .collect();
        let steps: Vec<PlannedStep> = config
            .steps
            .iter()
            .map(|step| self.step(step, &format!("steps[{}]", step.index), &global_env, &global_volumes))
            .collect();
        // `images:` are pushed by the build: none may carry an environment's tag, which only
        // promotion moves (docs/THREATS.md property 3; `tag::Reserved`).
        let reserved = crate::tag::Reserved::new(
            config.extensions.environments.iter().filter_map(|e| e.name.as_ref()).map(|n| n.value.as_str()),
        );
        let images = config
            .images
            .iter()
            .enumerate()
            .map(|(i, image)| {
                let path = format!("images[{i}]");
                let value = self.apply(image, image.pos, &path);
                self.check_image(&value, image, &path);
                let tag = ImageRef::parse(&value).ok().and_then(|r| r.tag);
                if let Some(env) = tag.as_deref().and_then(|t| reserved.environment_of(t)) {
                    self.d.error_hint(
                        image.pos,
                        &path,
                        format!("`{value}` has a tag of the environment `{env}`, and only promotion moves those"),
                        "push the build's own tag (`:$COMMIT_SHA`) and `pipewright promote` the build into the environment",
                    );
                }
                value
            })
            .collect();
        let tags = config.tags.iter().enumerate().map(|(i, t)| self.apply(t, t.pos, &format!("tags[{i}]"))).collect();
        let tags = match subst::sanitize_tags(tags) {
            Ok(tags) => tags,
            Err(e) => {
                let pos = config.tags.first().map_or(config.steps_pos, |t| t.pos);
                self.d.error(pos, "tags", e.to_string());
                Vec::new()
            }
        };
        let secret_names = steps.iter().flat_map(|s| s.secret_env.iter().cloned()).collect();
        let volumes = steps.iter().flat_map(|s| s.volumes.iter().map(|v| v.name.clone())).collect();
        let (registry, components) = self.components();
        let pipeline = self.pipeline(&global_env, &global_volumes);
        let run = self.config.extensions.run.as_ref().map(|r| self.run(r, "run"));
        let environments = self.environments();
        if run.is_some() && pipeline.is_none() {
            let pos = self.config.extensions.run.as_ref().map_or(self.config.steps_pos, |r| r.pos);
            self.d.error_hint(
                pos,
                "run",
                "needs a `pipeline` to run",
                "add `pipeline: {name, spec}` (and `compile` if the spec is built)",
            );
        }
        BuildPlan {
            build_id: ctx.build_id.clone(),
            project_id: ctx.project_id.clone(),
            commit_sha: self.subst.get("COMMIT_SHA").unwrap_or_default().to_string(),
            ref_name: self.subst.get("REF_NAME").unwrap_or_default().to_string(),
            registry,
            components,
            pipeline,
            run,
            environments,
            steps,
            timeout: config.timeout.as_ref().map_or(DEFAULT_TIMEOUT, |t| t.value),
            images,
            tags,
            substitutions: self.subst.all().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            secret_names,
            volumes,
            limits: crate::limits::Limits::requested(
                config.options.machine_type.as_ref().map(|m| m.value.as_str()),
                config.options.disk_size_gb.as_ref().map(|d| d.value),
            ),
        }
    }

    fn step(&mut self, step: &Step, base: &str, global_env: &[String], global_volumes: &[VolumeMount]) -> PlannedStep {
        let config = self.config;
        let image = match &step.name {
            Some(name) => {
                let path = format!("{base}.name");
                let value = self.apply(name, name.pos, &path);
                self.check_image(&value, name, &path);
                value
            }
            None => String::new(),
        };
        let args =
            step.args.iter().enumerate().map(|(i, a)| self.apply(a, a.pos, &format!("{base}.args[{i}]"))).collect();
        let own_env: Vec<String> =
            step.env.iter().enumerate().map(|(i, e)| self.apply(e, e.pos, &format!("{base}.env[{i}]"))).collect();
        let mut env = merge_env(global_env, &own_env);
        let automap = step.automap_substitutions.or(config.options.automap_substitutions).unwrap_or(false);
        if automap {
            let explicit: Vec<(String, String)> =
                self.subst.all().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            let mapped: Vec<String> = explicit.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
            // An explicit `env` entry wins over an automapped substitution of the same name.
            env = merge_env(&mapped, &env);
        }
        let dir = step.dir.as_ref().map(|d| self.apply(d, d.pos, &format!("{base}.dir"))).unwrap_or_default();
        let working_dir = if dir.starts_with('/') {
            dir.clone()
        } else {
            clean_path(&format!("{WORKSPACE}/{dir}")).unwrap_or_else(|| WORKSPACE.to_string())
        };
        let entrypoint = step.entrypoint.as_ref().map(|e| self.apply(e, e.pos, &format!("{base}.entrypoint")));
        let mut volumes = global_volumes.to_vec();
        volumes.extend(step.volumes.iter().map(|v| VolumeMount {
            name: v.name.value.clone(),
            path: clean_path(&v.path).unwrap_or_else(|| v.path.value.clone()),
        }));
        let mut secret_env: Vec<String> = config.options.secret_env.iter().map(|s| s.value.clone()).collect();
        secret_env.extend(step.secret_env.iter().map(|s| s.value.clone()));
        PlannedStep {
            index: step.index,
            id: step.id.as_ref().map(|i| i.value.clone()),
            image,
            args,
            env,
            secret_env,
            entrypoint,
            dir,
            working_dir,
            volumes,
            timeout: step.timeout.as_ref().map(|t| t.value),
            wait_for: wait_for(config, step),
            wait_for_ids: step.wait_for.iter().map(|w| w.value.clone()).collect(),
            allow_failure: step.allow_failure,
            allow_exit_codes: step.allow_exit_codes.iter().map(|c| c.value).collect(),
            script: step.script.as_ref().map(|s| s.value.clone()),
        }
    }

    fn text(&mut self, value: &crate::config::Str, path: &str) -> String {
        self.apply(value, value.pos, path)
    }

    fn components(&mut self) -> (Option<String>, Vec<ComponentPlan>) {
        let Some(components) = &self.config.extensions.components else {
            return (None, Vec::new());
        };
        let registry = components.registry.as_ref().map(|r| self.text(r, "components.registry"));
        let registry = registry.map(|r| r.trim_end_matches('/').to_string()).filter(|r| !r.is_empty());
        let mut plans = Vec::new();
        for (index, item) in components.items.iter().enumerate() {
            let base = format!("components.items[{index}]");
            let (Some(name), Some(context)) = (&item.name, &item.context) else { continue };
            let name_value = self.text(name, &format!("{base}.name"));
            let repository = match &registry {
                Some(registry) => format!("{registry}/{name_value}"),
                None => name_value.clone(),
            };
            if let Err(e) = ImageRef::parse(&format!("{repository}:x"))
                && e != crate::image_ref::RefError::Empty
            {
                let hint = "component names are lowercase letters, digits and `.`, `_`, `-`; the registry is a host and path such as `localhost:5000/acme`";
                self.d.error_hint(
                    name.pos,
                    &format!("{base}.name"),
                    format!("`{repository}` is not a valid image repository: {e}"),
                    hint,
                );
            }
            let context = self.text(context, &format!("{base}.context"));
            let dockerfile = match &item.dockerfile {
                Some(d) => self.text(d, &format!("{base}.dockerfile")),
                None => "Dockerfile".to_string(),
            };
            let specs =
                item.specs.iter().enumerate().map(|(i, s)| self.text(s, &format!("{base}.spec[{i}]"))).collect();
            let build_args = item
                .build_args
                .iter()
                .map(|(k, v)| (k.value.clone(), self.text(v, &format!("{base}.buildArgs.{}", k.value))))
                .collect();
            let target = item.target.as_ref().map(|t| self.text(t, &format!("{base}.target")));
            plans.push(ComponentPlan {
                index,
                name: name_value,
                context,
                dockerfile,
                specs,
                build_args,
                target,
                repository,
            });
        }
        (registry, plans)
    }

    fn pipeline(&mut self, global_env: &[String], global_volumes: &[VolumeMount]) -> Option<PipelinePlan> {
        let pipeline = self.config.extensions.pipeline.as_ref()?;
        let name_field = pipeline.name.as_ref()?;
        let name = self.text(name_field, "pipeline.name");
        // The name is a directory of the data directory (`specs/<name>/`): one segment, never a path.
        if let Err(e) = crate::host_path::Segment::new(&name) {
            let hint = "the pipeline name is one path segment such as `train`: 1 to 255 bytes without `/`, `\\` or NUL, not `.` or `..`";
            let message = e.to_string();
            let reason = message.lines().next().unwrap_or_default().to_string();
            self.d.error_hint(name_field.pos, "pipeline.name", reason, hint);
        }
        let spec = self.text(pipeline.spec.as_ref()?, "pipeline.spec");
        let compile = pipeline.compile.as_ref().map(|step| {
            let mut planned = self.step(step, "pipeline.compile", global_env, global_volumes);
            planned.index = 0;
            planned.id = Some("pipeline.compile".into());
            planned.wait_for = Vec::new();
            planned
        });
        let uploads = self.uploads(&pipeline.upload, "pipeline.upload", &name);
        Some(PipelinePlan { name, compile, spec, uploads })
    }

    fn uploads(&mut self, list: &[crate::config::extensions::Upload], base: &str, name: &str) -> Vec<UploadPlan> {
        let mut uploads = Vec::new();
        for (i, upload) in list.iter().enumerate() {
            use crate::config::extensions::Upload;
            let base = format!("{base}[{i}]");
            match upload {
                Upload::Oci(r) => {
                    let value = self.text(r, &format!("{base}.oci"));
                    match ImageRef::parse(&value) {
                        Ok(parsed) if parsed.tag.is_none() && parsed.digest.is_none() => {
                            uploads.push(UploadPlan::Oci(value))
                        }
                        Ok(_) => self.d.error_hint(
                            r.pos,
                            &format!("{base}.oci"),
                            format!("`{value}` names a tag or digest"),
                            "give the repository only; the spec is tagged with the commit SHA and the branch",
                        ),
                        Err(e) => {
                            self.d.error(r.pos, &format!("{base}.oci"), format!("`{value}` is not a repository: {e}"))
                        }
                    }
                }
                Upload::Kfp { host, pipeline: p } => {
                    let host = self.text(host, &format!("{base}.kfp.host"));
                    let p = match p {
                        Some(p) => self.text(p, &format!("{base}.kfp.pipeline")),
                        None => name.to_string(),
                    };
                    uploads.push(UploadPlan::Kfp { host: host.trim_end_matches('/').to_string(), pipeline: p });
                }
                Upload::ArtifactRegistry(url) => {
                    let value = self.text(url, &format!("{base}.artifactRegistry"));
                    uploads.push(UploadPlan::ArtifactRegistry(value.trim_end_matches('/').to_string()));
                }
            }
        }
        uploads
    }

    /// The environments, with their uploads and runs substituted like the build's own.
    fn environments(&mut self) -> Vec<Environment> {
        let environments = &self.config.extensions.environments;
        let mut out = Vec::new();
        for (i, env) in environments.iter().enumerate() {
            let Some(name) = &env.name else { continue };
            let base = format!("environments[{i}]");
            let gates = env
                .metric_gates
                .iter()
                .filter_map(|g| {
                    let check = match (&g.improves_by, &g.op, &g.value) {
                        (Some(by), _, _) => GateCheck::Improves { by: by.value },
                        (None, Some(op), Some(value)) => {
                            GateCheck::Compare { op: op.value.clone(), value: value.value }
                        }
                        _ => return None,
                    };
                    Some(Gate { metric: g.name.value.clone(), check })
                })
                .collect();
            let upload = self.uploads(&env.upload, &format!("{base}.upload"), &name.value);
            let run = env.run.as_ref().map(|r| self.run(r, &format!("{base}.run")));
            out.push(Environment {
                name: name.value.clone(),
                branches: env.branches.iter().map(|b| b.value.clone()).collect(),
                tags: env.tags.iter().map(|t| t.value.clone()).collect(),
                auto: env.auto,
                after: env.after.as_ref().map(|a| a.value.clone()),
                gates,
                approval: env.approval.as_ref().map(|a| ApprovalRule {
                    required: a.required,
                    approvers: a.approvers.iter().map(|x| x.value.clone()).collect(),
                    prevent_self_approval: a.prevent_self_approval,
                }),
                upload,
                run,
            });
        }
        out
    }

    /// Plans a `run:` block (the build's, or an environment's).
    pub fn run(&mut self, run: &crate::config::extensions::RunConfig, base: &str) -> RunPlan {
        let mut settings = BTreeMap::new();
        for (name, value) in &run.settings {
            let text = self.text(value, &format!("{base}.{name}"));
            settings.insert(name.clone(), text);
        }
        let backend_name = run.backend.as_ref().map_or("local", |b| b.value.as_str());
        let backend = match backend_name {
            "kfp" => match settings.get("host") {
                Some(host) => RunBackend::Kfp { host: host.trim_end_matches('/').to_string() },
                None => {
                    self.d.error_hint(
                        run.pos,
                        &format!("{base}.host"),
                        "is required for the `kfp` backend",
                        "the Kubeflow Pipelines API, e.g. `http://ml-pipeline.kubeflow:8888`",
                    );
                    RunBackend::Local
                }
            },
            "vertex" => match (settings.get("project"), settings.get("location")) {
                (Some(project), Some(location)) => RunBackend::Vertex {
                    project: project.clone(),
                    location: location.clone(),
                    endpoint: settings.get("host").cloned(),
                },
                _ => {
                    self.d.error_hint(
                        run.pos,
                        base,
                        "the `vertex` backend needs `project` and `location`",
                        "e.g. `{backend: vertex, project: acme, location: us-central1}`",
                    );
                    RunBackend::Local
                }
            },
            _ => RunBackend::Local,
        };
        let mut parameters = serde_json::Map::new();
        for (name, value) in &run.parameters {
            let value = match value {
                serde_json::Value::String(text) => {
                    let spanned = crate::config::Spanned::new(text.clone(), name.pos);
                    serde_json::Value::String(self.text(&spanned, &format!("{base}.parameters.{}", name.value)))
                }
                other => other.clone(),
            };
            parameters.insert(name.value.clone(), value);
        }
        RunPlan {
            backend,
            parameters,
            wait: run.wait.unwrap_or(true),
            timeout: run.timeout.as_ref().map(|t| t.value),
            metrics: run.metrics.iter().map(|m| m.value.clone()).collect(),
            pipeline_root: settings.get("pipelineRoot").cloned(),
            service_account: settings.get("serviceAccount").cloned(),
        }
    }

    /// After substitution, an image must be a valid reference; an empty substitution is the usual cause
    /// of a broken one (`gcr.io//app`), so name the empty ones.
    fn check_image(&mut self, value: &str, original: &crate::config::Str, path: &str) {
        let Err(e) = ImageRef::parse(value) else {
            return;
        };
        let empty: Vec<String> = subst::references(original)
            .iter()
            .filter(|r| self.subst.get(r.name).is_none_or(str::is_empty))
            .map(|r| format!("`{}`", r.name))
            .collect();
        let message = if value == original.value { e.to_string() } else { format!("after substitution: {e}") };
        if empty.is_empty() {
            self.d.error(original.pos, path, message);
        } else {
            self.d.error_hint(
                original.pos,
                path,
                message,
                format!("these substitutions are empty: {}; give them values with `--substitutions`", empty.join(", ")),
            );
        }
    }
}

/// Cloud Build's `waitFor` rule: absent or empty means "all earlier steps"; `-` alone means "none";
/// ids mean exactly those steps (validation guaranteed they are earlier).
fn wait_for(config: &BuildConfig, step: &Step) -> Vec<usize> {
    if step.wait_for.is_empty() {
        return (0..step.index).collect();
    }
    step.wait_for
        .iter()
        .filter(|w| w.value != "-")
        .filter_map(|w| {
            config.steps[..step.index]
                .iter()
                .find(|s| s.id.as_ref().is_some_and(|id| id.value == w.value))
                .map(|s| s.index)
        })
        .collect()
}

/// `base` entries overridden by `over` entries of the same key, order kept.
fn merge_env(base: &[String], over: &[String]) -> Vec<String> {
    let key = |e: &String| e.split_once('=').map_or(e.clone(), |(k, _)| k.to_string());
    let overridden: BTreeSet<String> = over.iter().map(key).collect();
    base.iter().filter(|e| !overridden.contains(&key(e))).chain(over.iter()).cloned().collect()
}

#[cfg(test)]
mod tests;
