//! Cross-field rules of a build file: Cloud Build's limits and consistency checks
//! (docs/research/cloudbuild.md §2–§6), applied to the typed model before anything runs.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Component, Path};
use std::time::Duration;

use super::decode::{Decoder, Str, closest};
use super::model::{BuildConfig, Step, Volume};
use crate::subst::{self, Mode, Origin};
use crate::yaml::Pos;

pub const MAX_STEPS: usize = 100;
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
pub(super) const MAX_NAME: usize = 1000;
pub(super) const MAX_ARGS: usize = 100;
pub(super) const MAX_ARG: usize = 4000;
pub(super) const MAX_ENV: usize = 100;
pub(super) const MAX_ENV_ENTRY: usize = 1000;
pub(super) const MAX_IMAGES: usize = 100;
pub(super) const MAX_TAGS: usize = 64;
const MAX_SECRET_VALUES: usize = 100;
const RESERVED_PATHS: &[&str] = &["/workspace", "/builder/home", "/var/run/docker.sock"];

/// A field whose text goes through substitution, with where it was written.
#[derive(Clone, Debug)]
pub struct Template<'a> {
    pub pos: Pos,
    pub path: String,
    pub text: &'a str,
}

/// Every substituted field of the build, in document order: what Cloud Build substitutes (step `name`,
/// `args`, `env`, `dir`, `entrypoint`, `images`, `tags`, `logsBucket`, `artifacts`), what the hosted
/// service also substitutes (`options.env`, `options.pool.name`, secret version names) and pipewright's
/// extension keys. `script`, `id`, `waitFor`, `secretEnv`, `volumes` and `timeout` are never substituted.
pub fn templates(config: &BuildConfig) -> Vec<Template<'_>> {
    let mut t = Templates(Vec::new());
    for step in &config.steps {
        t.step(step, &format!("steps[{}]", step.index));
    }
    t.list("images", &config.images);
    t.list("tags", &config.tags);
    t.opt("logsBucket", &config.logs_bucket);
    t.list("artifacts.images", &config.artifacts.images);
    t.opt("artifacts.objects.location", &config.artifacts.objects_location);
    t.list("artifacts.objects.paths", &config.artifacts.objects_paths);
    t.list("options.env", &config.options.env);
    t.opt("options.pool.name", &config.options.pool);
    for (i, secret) in config.available_secrets.secret_manager.iter().enumerate() {
        t.opt(&format!("availableSecrets.secretManager[{i}].versionName"), &secret.version_name);
    }
    let ext = &config.extensions;
    if let Some(components) = &ext.components {
        t.opt("components.registry", &components.registry);
        for (i, c) in components.items.iter().enumerate() {
            let base = format!("components.items[{i}]");
            for (field, value) in
                [("name", &c.name), ("context", &c.context), ("dockerfile", &c.dockerfile), ("target", &c.target)]
            {
                t.opt(&format!("{base}.{field}"), value);
            }
            t.list(&format!("{base}.spec"), &c.specs);
            for (k, v) in &c.build_args {
                t.push(format!("{base}.buildArgs.{}", k.value), v);
            }
        }
    }
    if let Some(pipeline) = &ext.pipeline {
        t.opt("pipeline.name", &pipeline.name);
        t.opt("pipeline.spec", &pipeline.spec);
        if let Some(compile) = &pipeline.compile {
            t.step(compile, "pipeline.compile");
        }
        for (i, upload) in pipeline.upload.iter().enumerate() {
            use super::extensions::Upload;
            match upload {
                Upload::Oci(r) => t.push(format!("pipeline.upload[{i}].oci"), r),
                Upload::ArtifactRegistry(r) => t.push(format!("pipeline.upload[{i}].artifactRegistry"), r),
                Upload::Kfp { host, pipeline } => {
                    t.push(format!("pipeline.upload[{i}].kfp.host"), host);
                    t.opt(&format!("pipeline.upload[{i}].kfp.pipeline"), pipeline);
                }
            }
        }
    }
    if let Some(run) = &ext.run {
        for (name, value) in &run.settings {
            t.push(format!("run.{name}"), value);
        }
        for (name, value) in &run.parameters {
            if let serde_json::Value::String(text) = value {
                t.0.push(Template { pos: name.pos, path: format!("run.parameters.{}", name.value), text });
            }
        }
    }
    t.0
}

struct Templates<'a>(Vec<Template<'a>>);

impl<'a> Templates<'a> {
    fn push(&mut self, path: String, s: &'a Str) {
        self.0.push(Template { pos: s.pos, path, text: s.value.as_str() });
    }

    fn opt(&mut self, path: &str, s: &'a Option<Str>) {
        if let Some(s) = s {
            self.push(path.to_string(), s);
        }
    }

    fn list(&mut self, base: &str, items: &'a [Str]) {
        for (i, item) in items.iter().enumerate() {
            self.push(format!("{base}[{i}]"), item);
        }
    }

    fn step(&mut self, step: &'a Step, base: &str) {
        self.opt(&format!("{base}.name"), &step.name);
        self.list(&format!("{base}.args"), &step.args);
        self.list(&format!("{base}.env"), &step.env);
        self.opt(&format!("{base}.dir"), &step.dir);
        self.opt(&format!("{base}.entrypoint"), &step.entrypoint);
    }
}

/// Runs every structural rule; substitution rules are checked by [`check_substitutions`].
pub fn check(d: &mut Decoder, config: &BuildConfig) {
    check_build(d, config);
    check_steps(d, config);
    check_secrets(d, config);
    check_volumes(d, config);
    check_components(d, config);
    check_environments(d, config);
}

fn check_components(d: &mut Decoder, config: &BuildConfig) {
    let Some(components) = &config.extensions.components else { return };
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, c) in components.items.iter().enumerate() {
        let Some(name) = &c.name else { continue };
        if let Some(first) = seen.insert(name.as_str(), i) {
            d.error(
                name.pos,
                &format!("components.items[{i}].name"),
                format!("`{}` is already the name of component {first}", name.value),
            );
        }
    }
}

/// Environment names become registry tags (`:staging`), so they follow the tag grammar; `after` must
/// name another environment, without cycles.
fn check_environments(d: &mut Decoder, config: &BuildConfig) {
    let environments = &config.extensions.environments;
    let names: Vec<&str> = environments.iter().filter_map(|e| e.name.as_ref().map(|n| n.as_str())).collect();
    let mut seen = HashSet::new();
    for (i, env) in environments.iter().enumerate() {
        let base = format!("environments[{i}]");
        if let Some(name) = &env.name {
            let valid = crate::image_ref::valid_tag(name) && !name.contains('.');
            if !valid {
                d.error_hint(
                    name.pos,
                    &format!("{base}.name"),
                    format!("`{}` cannot name an environment", name.value),
                    "use letters, digits, `-` and `_` (it becomes an image tag)",
                );
            }
            // Promotion writes `<name>` and `<name>-<sha>` beside the build's own tags (`tag.rs`): a
            // name like a commit (hex), a context tag or a renamed branch tag would let promotion
            // overwrite another build's names.
            let lower = name.value.to_ascii_lowercase();
            let commit_like = (7..=64).contains(&lower.len()) && lower.bytes().all(|b| b.is_ascii_hexdigit());
            if valid && (commit_like || lower.starts_with("ctx-") || lower.starts_with(crate::tag::BRANCH_PREFIX)) {
                d.error_hint(
                    name.pos,
                    &format!("{base}.name"),
                    format!("`{}` cannot name an environment: it reads as a build's own tag", name.value),
                    "a commit (7 to 64 hex digits), `ctx-…` and `branch-…` are the tags builds write; pick a word such as `qa`",
                );
            }
            if !seen.insert(name.as_str()) {
                d.error(name.pos, &format!("{base}.name"), format!("environment `{}` is defined twice", name.value));
            }
        }
        if let Some(after) = &env.after {
            if env.name.as_ref().is_some_and(|n| n.value == after.value) {
                d.error(after.pos, &format!("{base}.after"), "an environment cannot come after itself");
            } else if !names.contains(&after.as_str()) {
                let message = format!("`{}` is not an environment of this file", after.value);
                match closest(after.as_str(), names.iter().copied()) {
                    Some(close) => {
                        d.error_hint(after.pos, &format!("{base}.after"), message, format!("did you mean `{close}`?"))
                    }
                    None => d.error(after.pos, &format!("{base}.after"), message),
                }
            } else if after_cycle(environments, i) {
                d.error(after.pos, &format!("{base}.after"), "the `after` chain loops back to this environment");
            }
        }
        for (field, patterns) in [("branches", &env.branches), ("tags", &env.tags)] {
            for (j, p) in patterns.iter().enumerate() {
                if let Err(e) = regex::Regex::new(p) {
                    d.error(
                        p.pos,
                        &format!("{base}.{field}[{j}]"),
                        format!("`{}` is not a valid RE2 regular expression: {e}", p.value),
                    );
                }
            }
        }
        if let Some(approval) = &env.approval {
            if approval.required == 0 {
                d.error(
                    approval.pos,
                    &format!("{base}.approval.required"),
                    "must be at least 1 (leave `approval` out for none)",
                );
            } else if !approval.approvers.is_empty() && approval.required as usize > approval.approvers.len() {
                d.error(
                    approval.pos,
                    &format!("{base}.approval.required"),
                    format!(
                        "asks for {} approvals but lists {} approvers",
                        approval.required,
                        approval.approvers.len()
                    ),
                );
            }
        }
    }
}

fn after_cycle(environments: &[super::extensions::EnvironmentConfig], start: usize) -> bool {
    let mut current = start;
    for _ in 0..=environments.len() {
        let Some(after) = environments[current].after.as_ref() else { return false };
        let Some(next) = environments.iter().position(|e| e.name.as_ref().is_some_and(|n| n.value == after.value))
        else {
            return false;
        };
        if next == start {
            return true;
        }
        current = next;
    }
    true
}

fn check_build(d: &mut Decoder, config: &BuildConfig) {
    if config.steps.len() > MAX_STEPS {
        d.error(
            config.steps_pos,
            "steps",
            format!("has {} steps; at most {MAX_STEPS} are allowed", config.steps.len()),
        );
    }
    if let Some(timeout) = &config.timeout
        && timeout.value > MAX_TIMEOUT
    {
        d.error(timeout.pos, "timeout", "is longer than 24 hours (`86400s`), the most a build may run");
    }
    if config.images.len() > MAX_IMAGES {
        d.error(config.steps_pos, "images", format!("lists {} images; at most {MAX_IMAGES}", config.images.len()));
    }
    for (i, image) in config.images.iter().enumerate() {
        if image.len() > MAX_NAME {
            d.error(image.pos, &format!("images[{i}]"), format!("is longer than {MAX_NAME} characters"));
        }
    }
    if config.tags.len() > MAX_TAGS {
        d.error(config.steps_pos, "tags", format!("lists {} tags; at most {MAX_TAGS}", config.tags.len()));
    }
    for (i, tag) in config.tags.iter().enumerate() {
        if !tag.contains('$') && !tag.is_empty() && !crate::image_ref::valid_tag(tag) {
            d.error_hint(
                tag.pos,
                &format!("tags[{i}]"),
                format!("`{}` is not a valid tag", tag.value),
                "tags match `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`",
            );
        }
    }
    let artifacts = &config.artifacts;
    if !artifacts.images.is_empty() && !config.images.is_empty() {
        let a: Vec<&str> = artifacts.images.iter().map(|s| s.as_str()).collect();
        let b: Vec<&str> = config.images.iter().map(|s| s.as_str()).collect();
        if a != b {
            d.error_hint(
                artifacts.pos.unwrap_or_default(),
                "artifacts.images",
                "differs from `images`",
                "list the images once, in `images` or in `artifacts.images`; if both are given they must be identical",
            );
        }
    }
    if let Some(location) = &artifacts.objects_location
        && !location.contains('$')
        && !location.starts_with("gs://")
    {
        d.error(location.pos, "artifacts.objects.location", "must start with `gs://`");
    }
    if artifacts.objects_location.is_some() && artifacts.objects_paths.is_empty() {
        d.error(artifacts.pos.unwrap_or_default(), "artifacts.objects.paths", "must list at least one path");
    }
    let mut seen = HashSet::new();
    for (i, p) in artifacts.objects_paths.iter().enumerate() {
        let path = format!("artifacts.objects.paths[{i}]");
        if p.chars().any(char::is_whitespace) {
            d.error(p.pos, &path, "may not contain whitespace");
        }
        if !seen.insert(p.as_str()) {
            d.error(p.pos, &path, format!("`{}` is listed twice", p.value));
        }
    }
    check_env(d, &config.options.env, "options.env");
}

fn check_steps(d: &mut Decoder, config: &BuildConfig) {
    let mut ids: HashMap<&str, usize> = HashMap::new();
    let build_timeout = config.timeout.as_ref().map(|t| t.value);
    for step in &config.steps {
        let base = format!("steps[{}]", step.index);
        if let Some(name) = &step.name {
            if name.is_empty() {
                d.error(name.pos, &format!("{base}.name"), "may not be empty");
            } else if name.len() > MAX_NAME {
                d.error(name.pos, &format!("{base}.name"), format!("is longer than {MAX_NAME} characters"));
            }
        }
        if step.args.len() > MAX_ARGS {
            d.error(step.pos, &format!("{base}.args"), format!("has {} args; at most {MAX_ARGS}", step.args.len()));
        }
        for (i, arg) in step.args.iter().enumerate() {
            if arg.len() > MAX_ARG {
                d.error(arg.pos, &format!("{base}.args[{i}]"), format!("is longer than {MAX_ARG} characters"));
            }
        }
        check_env(d, &step.env, &format!("{base}.env"));
        if let Some(dir) = &step.dir
            && dir.len() > MAX_NAME
        {
            d.error(dir.pos, &format!("{base}.dir"), format!("is longer than {MAX_NAME} characters"));
        }
        if let Some(script) = &step.script {
            for (field, present) in [("args", !step.args.is_empty()), ("entrypoint", step.entrypoint.is_some())] {
                if present {
                    d.error_hint(
                        script.pos,
                        &format!("{base}.script"),
                        format!("cannot be combined with `{field}`"),
                        "a script replaces the command: move the command into the script, or drop `script`",
                    );
                }
            }
        }
        if let Some(timeout) = &step.timeout {
            let path = format!("{base}.timeout");
            if timeout.value > MAX_TIMEOUT {
                d.error(timeout.pos, &path, "is longer than 24 hours (`86400s`)");
            } else if let Some(build) = build_timeout
                && timeout.value > build
            {
                d.error_hint(
                    timeout.pos,
                    &path,
                    format!("is longer than the build's timeout ({}s)", build.as_secs_f64()),
                    "raise the build's `timeout` or shorten the step's",
                );
            }
        }
        for (i, code) in step.allow_exit_codes.iter().enumerate() {
            if i32::try_from(code.value).is_err() {
                d.error(code.pos, &format!("{base}.allowExitCodes[{i}]"), "is not a 32-bit exit code");
            }
        }
        check_wait_for(d, config, step, &ids, &base);
        if let Some(id) = &step.id {
            let path = format!("{base}.id");
            if id.value == "-" {
                d.error_hint(
                    id.pos,
                    &path,
                    "may not be `-`",
                    "`-` in `waitFor` means \"start at once\"; pick another id",
                );
            } else if let Some(first) = ids.get(id.as_str()) {
                d.error(id.pos, &path, format!("`{}` is already the id of step {first}", id.value));
            } else {
                ids.insert(id.as_str(), step.index);
            }
        }
    }
}

fn check_wait_for(d: &mut Decoder, config: &BuildConfig, step: &Step, earlier: &HashMap<&str, usize>, base: &str) {
    let mut seen = HashSet::new();
    for (i, dep) in step.wait_for.iter().enumerate() {
        let path = format!("{base}.waitFor[{i}]");
        if dep.value == "-" {
            continue;
        }
        if !seen.insert(dep.as_str()) {
            d.error(dep.pos, &path, format!("`{}` is listed twice", dep.value));
            continue;
        }
        if earlier.contains_key(dep.as_str()) {
            continue;
        }
        let later = config.steps[step.index..].iter().find(|s| s.id.as_ref().is_some_and(|id| id.value == dep.value));
        match later {
            Some(s) if s.index == step.index => d.error(dep.pos, &path, "a step cannot wait for itself"),
            Some(s) => d.error_hint(
                dep.pos,
                &path,
                format!(
                    "`{}` is step {}, which comes later; a step may only wait for earlier steps",
                    dep.value, s.index
                ),
                "move this step below the one it waits for",
            ),
            None => {
                let message = format!("`{}` is not the id of any earlier step", dep.value);
                match closest(dep.as_str(), earlier.keys().copied()) {
                    Some(close) => d.error_hint(dep.pos, &path, message, format!("did you mean `{close}`?")),
                    None => d.error(dep.pos, &path, message),
                }
            }
        }
    }
}

fn check_env(d: &mut Decoder, env: &[Str], base: &str) {
    if env.len() > MAX_ENV
        && let Some(first) = env.first()
    {
        d.error(first.pos, base, format!("has {} entries; at most {MAX_ENV}", env.len()));
    }
    for (i, entry) in env.iter().enumerate() {
        let path = format!("{base}[{i}]");
        if !entry.contains('=') {
            d.error_hint(
                entry.pos,
                &path,
                format!("`{}` is not of the form `KEY=VALUE`", entry.value),
                "write `KEY=VALUE`; use `KEY=` for an empty value",
            );
        } else if entry.len() > MAX_ENV_ENTRY {
            d.error(entry.pos, &path, format!("is longer than {MAX_ENV_ENTRY} characters"));
        }
    }
}

fn env_keys(env: &[Str]) -> impl Iterator<Item = &str> {
    env.iter().filter_map(|e| e.split_once('=').map(|(k, _)| k))
}

fn check_secrets(d: &mut Decoder, config: &BuildConfig) {
    // Where each secret env name is defined.
    let mut defined: BTreeMap<&str, &Str> = BTreeMap::new();
    for name in config.available_secrets.names(&config.secrets) {
        if let Some(first) = defined.get(name.as_str()) {
            d.error(
                name.pos,
                "availableSecrets",
                format!("secret env `{}` is defined twice (first at line {})", name.value, first.pos.line),
            );
        } else {
            defined.insert(name.as_str(), name);
        }
    }
    if defined.len() > MAX_SECRET_VALUES {
        d.error(
            config.steps_pos,
            "secrets",
            format!("defines {} secret values; at most {MAX_SECRET_VALUES}", defined.len()),
        );
    }
    let mut kms_keys: HashMap<&str, Pos> = HashMap::new();
    for (i, secret) in config.secrets.iter().enumerate() {
        let path = format!("secrets[{i}]");
        if secret.env.is_empty() {
            d.error(secret.pos, &format!("{path}.secretEnv"), "must define at least one secret env");
        }
        if let Some(key) = &secret.kms_key_name
            && kms_keys.insert(key.as_str(), key.pos).is_some()
        {
            d.error(key.pos, &format!("{path}.kmsKeyName"), "the same KMS key is named by two `secrets` entries");
        }
    }
    for (i, secret) in config.available_secrets.secret_manager.iter().enumerate() {
        if let Some(version) = &secret.version_name
            && !version.contains('$')
            && !valid_version_name(version)
        {
            d.error_hint(
                version.pos,
                &format!("availableSecrets.secretManager[{i}].versionName"),
                format!("`{}` is not a secret version name", version.value),
                "write `projects/PROJECT/secrets/NAME/versions/VERSION` (VERSION may be `latest`)",
            );
        }
    }

    let global: Vec<&Str> = config.options.secret_env.iter().collect();
    let mut used: HashSet<&str> = HashSet::new();
    let global_env: HashSet<&str> = env_keys(&config.options.env).collect();
    let mut seen_global = HashSet::new();
    for (i, name) in global.iter().enumerate() {
        let path = format!("options.secretEnv[{i}]");
        if !seen_global.insert(name.as_str()) {
            d.error(name.pos, &path, format!("`{}` is listed twice", name.value));
        }
        undefined_secret(d, &defined, name, &path);
        if global_env.contains(name.as_str()) {
            d.error(name.pos, &path, format!("`{}` is both a secret and a plain env var in `options.env`", name.value));
        }
        used.insert(name.as_str());
    }
    for step in &config.steps {
        let base = format!("steps[{}]", step.index);
        let step_env: HashSet<&str> = env_keys(&step.env).collect();
        let mut seen = HashSet::new();
        for (i, name) in step.secret_env.iter().enumerate() {
            let path = format!("{base}.secretEnv[{i}]");
            if !seen.insert(name.as_str()) {
                d.error(name.pos, &path, format!("`{}` is listed twice", name.value));
            }
            if seen_global.contains(name.as_str()) {
                d.error(
                    name.pos,
                    &path,
                    format!("`{}` is already a secret of every step (`options.secretEnv`)", name.value),
                );
            }
            undefined_secret(d, &defined, name, &path);
            if step_env.contains(name.as_str()) || global_env.contains(name.as_str()) {
                d.error_hint(
                    name.pos,
                    &path,
                    format!("{} has secret and non-secret env `{}`", step.label(), name.value),
                    "remove the plain `env` entry of that name",
                );
            }
            used.insert(name.as_str());
        }
    }
    for (name, def) in &defined {
        if !used.contains(name) {
            d.error_hint(
                def.pos,
                "availableSecrets",
                format!("secret env `{name}` is defined but no step uses it"),
                format!("add `secretEnv: ['{name}']` to the steps that need it, or remove it"),
            );
        }
    }
}

fn undefined_secret(d: &mut Decoder, defined: &BTreeMap<&str, &Str>, name: &Str, path: &str) {
    if defined.contains_key(name.as_str()) {
        return;
    }
    let message = format!("secret env `{}` is not defined", name.value);
    match closest(name.as_str(), defined.keys().copied()) {
        Some(close) => d.error_hint(name.pos, path, message, format!("did you mean `{close}`?")),
        None => d.error_hint(
            name.pos,
            path,
            message,
            format!(
                "define it under `availableSecrets.secretManager` with `env: {}`, and give its value with `--secret {}=env:VAR`",
                name.value, name.value
            ),
        ),
    }
}

fn valid_version_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('/').collect();
    parts.len() == 6
        && parts[0] == "projects"
        && parts[2] == "secrets"
        && parts[4] == "versions"
        && [parts[1], parts[3], parts[5]].iter().all(|p| !p.is_empty())
}

fn check_volumes(d: &mut Decoder, config: &BuildConfig) {
    let global = &config.options.volumes;
    if !global.is_empty() && config.steps.len() < 2 {
        d.error(global[0].pos, "options.volumes", "needs a build with at least two steps");
    }
    check_volume_list(d, global, "options.volumes", &[]);
    let mut uses: BTreeMap<&str, Vec<&Volume>> = BTreeMap::new();
    for step in &config.steps {
        let base = format!("steps[{}].volumes", step.index);
        check_volume_list(d, &step.volumes, &base, global);
        for v in &step.volumes {
            uses.entry(v.name.as_str()).or_default().push(v);
        }
    }
    for (name, volumes) in uses {
        if volumes.len() < 2 {
            d.error_hint(
                volumes[0].name.pos,
                "volumes",
                format!("volume `{name}` is used by only one step"),
                "a step volume exists to share files between steps: mount it in at least two, or use a path in /workspace",
            );
        }
    }
}

fn check_volume_list(d: &mut Decoder, volumes: &[Volume], base: &str, global: &[Volume]) {
    let mut names = HashSet::new();
    let mut paths = HashSet::new();
    for (i, v) in volumes.iter().enumerate() {
        let path = format!("{base}[{i}]");
        if !valid_volume_name(&v.name) {
            d.error_hint(
                v.name.pos,
                &format!("{path}.name"),
                format!("`{}` is not a valid volume name", v.name.value),
                "at least two characters of letters, digits, `_`, `.`, `-`, starting with a letter or digit",
            );
        }
        let cleaned = clean_path(&v.path);
        match &cleaned {
            None => d.error(v.path.pos, &format!("{path}.path"), format!("`{}` is not an absolute path", v.path.value)),
            Some(p) if RESERVED_PATHS.contains(&p.as_str()) => d.error_hint(
                v.path.pos,
                &format!("{path}.path"),
                format!("`{p}` is reserved"),
                format!("reserved paths: {}", RESERVED_PATHS.join(", ")),
            ),
            Some(p) if p == "/cloudbuild" || p.starts_with("/cloudbuild/") => {
                d.error(v.path.pos, &format!("{path}.path"), "paths under `/cloudbuild/` are reserved")
            }
            Some(_) => {}
        }
        if !names.insert(v.name.as_str()) {
            d.error(v.name.pos, &format!("{path}.name"), format!("volume `{}` is mounted twice", v.name.value));
        }
        if let Some(p) = &cleaned
            && !paths.insert(p.clone())
        {
            d.error(v.path.pos, &format!("{path}.path"), format!("`{p}` is used by two volumes"));
        }
        for g in global {
            if g.name.value == v.name.value {
                d.error(
                    v.name.pos,
                    &format!("{path}.name"),
                    format!("`{}` is already a volume of every step (`options.volumes`)", v.name.value),
                );
            } else if clean_path(&g.path) == cleaned {
                d.error(
                    v.path.pos,
                    &format!("{path}.path"),
                    "is already the path of a volume of every step (`options.volumes`)",
                );
            }
        }
    }
}

fn valid_volume_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() >= 2
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Lexically cleans an absolute container path (`/a/./b/../c` → `/a/c`); `None` if not absolute.
pub fn clean_path(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(p) => parts.push(p.to_str().unwrap_or_default()),
            Component::ParentDir => {
                parts.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Some(format!("/{}", parts.join("/")))
}

/// Substitution rules for a file on its own (what `validate` can know without a commit): the user
/// map's keys, and every template's references against it under the file's substitution option.
/// `overrides` are `--substitutions` values, which win over the file's.
pub fn check_substitutions(d: &mut Decoder, config: &BuildConfig, overrides: &[(String, String)]) {
    let file_map = config.substitutions.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    let mut invalid: HashSet<String> = HashSet::new();
    for problem in subst::validate_map(file_map, Origin::Config) {
        let key = problem.key().map(str::to_string);
        let (pos, path) = key_location(config, key.as_deref());
        d.error(pos, &path, problem.to_string());
        invalid.extend(key);
    }
    let mut user: BTreeMap<String, String> = config
        .substitutions
        .iter()
        .filter(|(k, _)| !invalid.contains(&k.value))
        .map(|(k, v)| (k.value.clone(), v.value.clone()))
        .collect();
    let builtins: BTreeMap<String, String> = subst::BUILTINS.iter().map(|b| (b.to_string(), String::new())).collect();
    // The one check of substitutions given from outside the file (`--substitutions`, a trigger's,
    // a manual run's): every build's file is loaded through here with them.
    let override_map = overrides.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    for problem in subst::validate_map(override_map, Origin::Flag) {
        let (pos, _) = key_location(config, None);
        d.error(pos, "substitutions", format!("{problem} (given by --substitutions, the trigger or the API request)"));
        invalid.extend(problem.key().map(str::to_string));
    }
    for (k, v) in overrides.iter().filter(|(k, _)| !invalid.contains(k)) {
        user.insert(k.clone(), v.clone());
    }
    let dynamic = config.options.dynamic_substitutions.unwrap_or(false);
    let substitutions = match subst::Substitutions::new(builtins, user, dynamic) {
        Ok(s) => s,
        Err(e) => {
            let (pos, path) = key_location(config, e.key());
            d.error(pos, &path, e.to_string());
            return;
        }
    };
    let mode = match config.options.substitution_option.as_ref().map(|o| o.value) {
        Some(super::model::SubstitutionOption::AllowLoose) => Mode::AllowLoose,
        _ => Mode::MustMatch,
    };
    report_substitution_problems(d, config, &substitutions, mode);
}

/// Where a substitution key is written in the file's map, or the map itself.
fn key_location(config: &BuildConfig, key: Option<&str>) -> (Pos, String) {
    match key.and_then(|key| config.substitutions.iter().find(|(k, _)| k.value == key)) {
        Some((k, _)) => (k.pos, format!("substitutions.{}", k.value)),
        None => (config.steps_pos, "substitutions".to_string()),
    }
}

/// Runs the template check of `substitutions` over the whole build and reports each problem at the
/// template (or the map key) it is about.
pub fn report_substitution_problems(
    d: &mut Decoder,
    config: &BuildConfig,
    substitutions: &subst::Substitutions,
    mode: Mode,
) {
    // With automapSubstitutions every substitution reaches the steps as an env var (that is how scripts
    // use them), so no key is unused.
    let automap = config.options.automap_substitutions.unwrap_or(false)
        || config.steps.iter().any(|s| s.automap_substitutions == Some(true));
    let templates = templates(config);
    let located = templates.iter().map(|t| ((t.pos, t.path.clone()), t.text));
    for problem in substitutions.check(located, mode) {
        if automap && matches!(problem.kind, subst::SubstError::UnusedInTemplate(_)) {
            continue;
        }
        let message = problem.kind.to_string();
        let hint = problem.kind.hint();
        let (pos, path) = problem.location.unwrap_or_else(|| key_location(config, problem.kind.key()));
        match hint {
            Some(hint) => d.error_hint(pos, &path, message, hint),
            None => d.error(pos, &path, message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_paths() {
        assert_eq!(clean_path("/a/./b/../c/"), Some("/a/c".into()));
        assert_eq!(clean_path("/../x"), Some("/x".into()));
        assert_eq!(clean_path("rel"), None);
        assert_eq!(clean_path("/workspace/"), Some("/workspace".into()));
    }

    #[test]
    fn volume_names() {
        assert!(valid_volume_name("ab"));
        assert!(valid_volume_name("my-vol_1.x"));
        assert!(!valid_volume_name("a"));
        assert!(!valid_volume_name("-ab"));
        assert!(!valid_volume_name("a b"));
    }

    #[test]
    fn version_names() {
        assert!(valid_version_name("projects/p/secrets/s/versions/latest"));
        assert!(!valid_version_name("projects/p/secrets/s"));
    }
}
