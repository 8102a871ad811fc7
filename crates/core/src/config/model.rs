//! The build file as typed values, read from YAML nodes field by field.
//!
//! Every Cloud Build field is read here (docs/research/cloudbuild.md §2–§4); what only means something on
//! Google's service is checked for shape and reported as having no effect. Cross-field rules (limits,
//! `waitFor` order, secrets, volumes) live in `validate`.

use std::time::Duration;

use super::decode::{Decoder, MapReader, Spanned, Str};
use super::extensions::Extensions;
use crate::yaml::{Node, Pos};

#[derive(Clone, Debug, Default)]
pub struct BuildConfig {
    pub steps: Vec<Step>,
    /// Position of the `steps` key's value (or the document) for "at least one step" style problems.
    pub steps_pos: Pos,
    pub timeout: Option<Spanned<Duration>>,
    pub queue_ttl: Option<Spanned<Duration>>,
    pub logs_bucket: Option<Str>,
    pub options: Options,
    /// The file's own `substitutions:` map, in document order.
    pub substitutions: Vec<(Str, Str)>,
    pub tags: Vec<Str>,
    pub secrets: Vec<KmsSecret>,
    pub available_secrets: AvailableSecrets,
    pub images: Vec<Str>,
    pub artifacts: Artifacts,
    pub extensions: Extensions,
}

#[derive(Clone, Debug, Default)]
pub struct Step {
    pub index: usize,
    pub pos: Pos,
    pub name: Option<Str>,
    pub args: Vec<Str>,
    pub env: Vec<Str>,
    pub dir: Option<Str>,
    pub id: Option<Str>,
    pub wait_for: Vec<Str>,
    pub entrypoint: Option<Str>,
    pub secret_env: Vec<Str>,
    pub volumes: Vec<Volume>,
    pub timeout: Option<Spanned<Duration>>,
    pub script: Option<Str>,
    pub allow_failure: bool,
    pub allow_exit_codes: Vec<Spanned<i64>>,
    pub automap_substitutions: Option<bool>,
}

impl Step {
    /// How the step is named in messages: `step 2 ("unit-tests")` or `step 2`.
    pub fn label(&self) -> String {
        match &self.id {
            Some(id) => format!("step {} (`{}`)", self.index, id.value),
            None => format!("step {}", self.index),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Volume {
    pub name: Str,
    pub path: Str,
    pub pos: Pos,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SubstitutionOption {
    #[default]
    MustMatch,
    AllowLoose,
}

#[derive(Clone, Debug, Default)]
pub struct Options {
    pub env: Vec<Str>,
    pub secret_env: Vec<Str>,
    pub volumes: Vec<Volume>,
    pub substitution_option: Option<Spanned<SubstitutionOption>>,
    pub dynamic_substitutions: Option<bool>,
    pub automap_substitutions: Option<bool>,
    /// `options.pool.name` / `options.workerPool`: no effect here, but substituted (and so checked) as the
    /// hosted service does.
    pub pool: Option<Str>,
    /// `options.machineType`: the build's CPUs and memory (`crate::limits::machine`).
    pub machine_type: Option<Str>,
    /// `options.diskSizeGb`: the build's workspace size.
    pub disk_size_gb: Option<Spanned<u64>>,
}

/// A `secrets[]` entry: KMS-encrypted values. Here the values come from the local secrets map instead.
#[derive(Clone, Debug)]
pub struct KmsSecret {
    pub pos: Pos,
    pub kms_key_name: Option<Str>,
    pub env: Vec<Str>,
}

#[derive(Clone, Debug, Default)]
pub struct AvailableSecrets {
    pub secret_manager: Vec<SecretManagerSecret>,
    /// `inline[]` entries (KMS): each named env var.
    pub inline: Vec<KmsSecret>,
}

#[derive(Clone, Debug)]
pub struct SecretManagerSecret {
    pub pos: Pos,
    pub version_name: Option<Str>,
    pub env: Option<Str>,
}

impl AvailableSecrets {
    /// Every secret env name defined by the file, `secrets[]` included, with where it was defined.
    pub fn names<'a>(&'a self, kms: &'a [KmsSecret]) -> impl Iterator<Item = &'a Str> {
        self.secret_manager
            .iter()
            .filter_map(|s| s.env.as_ref())
            .chain(self.inline.iter().flat_map(|s| s.env.iter()))
            .chain(kms.iter().flat_map(|s| s.env.iter()))
    }
}

#[derive(Clone, Debug, Default)]
pub struct Artifacts {
    pub pos: Option<Pos>,
    pub images: Vec<Str>,
    pub objects_location: Option<Str>,
    pub objects_paths: Vec<Str>,
}

const OUTPUT_ONLY_BUILD: &[&str] = &[
    "name",
    "id",
    "projectId",
    "status",
    "statusDetail",
    "results",
    "createTime",
    "startTime",
    "finishTime",
    "sourceProvenance",
    "buildTriggerId",
    "logUrl",
    "timing",
    "approval",
    "warnings",
    "failureInfo",
];

const OUTPUT_ONLY_STEP: &[&str] = &["status", "timing", "pullTiming", "exitCode"];

/// Output-only fields of the `Build` resource may appear in a file copied from an API response; they
/// are refused with a specific message rather than "unknown field".
fn refuse_output_only(d: &mut Decoder, map: &mut MapReader<'_>, fields: &[&'static str]) {
    for field in fields {
        if let Some((node, path)) = map.take(d, field) {
            d.error_hint(
                node.pos,
                &path,
                "is an output-only field of a build and cannot be set",
                "remove it; it is filled in when the build runs",
            );
        }
    }
}

pub fn read_build(d: &mut Decoder, root: &Node) -> BuildConfig {
    let mut config = BuildConfig { steps_pos: root.pos, ..BuildConfig::default() };
    if root.is_null() {
        d.error_hint(root.pos, "", "the build file is empty", "a build file needs at least `steps:`");
        return config;
    }
    let Some(mut map) = d.map(root, "") else {
        return config;
    };
    match map.take(d, "steps") {
        Some((node, path)) => {
            config.steps_pos = node.pos;
            config.steps = d.list(node, &path, |d, n, p| Some(read_step(d, n, p)));
            if config.steps.is_empty() && matches!(node.value, crate::yaml::Value::Seq(_)) {
                d.error(node.pos, &path, "needs at least one step");
            }
            for (i, step) in config.steps.iter_mut().enumerate() {
                step.index = i;
            }
        }
        None if !map.has("steps") => {
            d.error_hint(map.pos, "steps", "is required", "add `steps:` with at least one step")
        }
        None => d.error(map.pos, "steps", "needs at least one step"),
    }
    config.timeout = map.duration(d, "timeout");
    config.queue_ttl = map.duration(d, "queueTtl");
    config.logs_bucket = map.string(d, "logsBucket");
    if let Some(bucket) = &config.logs_bucket {
        d.warning(bucket.pos, "logsBucket", "has no effect here (logs are kept in the data directory)");
    }
    if let Some((node, path)) = map.take(d, "options") {
        config.options = read_options(d, node, &path);
    }
    if let Some((node, path)) = map.take(d, "substitutions") {
        config.substitutions = d.string_map(node, &path);
    }
    config.tags = map.string_list(d, "tags");
    map.no_effect(d, "serviceAccount", |d, n, p| {
        d.string(n, p);
    });
    if let Some((node, path)) = map.take(d, "secrets") {
        config.secrets = d.list(node, &path, read_kms_secret);
    }
    if let Some((node, path)) = map.take(d, "availableSecrets") {
        config.available_secrets = read_available_secrets(d, node, &path);
    }
    config.images = map.string_list(d, "images");
    if let Some((node, path)) = map.take(d, "artifacts") {
        config.artifacts = read_artifacts(d, node, &path);
    }
    if let Some((node, path)) = map.take(d, "source") {
        d.error_hint(
            node.pos,
            &path,
            "is set by the API caller, not by a build file",
            "name the repository and commit on the command line: `pipewright run REPO --commit REV`",
        );
    }
    map.no_effect(d, "dependencies", |d, n, p| {
        d.list(n, p, |d, n, p| {
            let m = d.map(n, p)?;
            m.finish(d);
            Some(())
        });
    });
    map.no_effect(d, "gitConfig", |d, n, p| {
        if let Some(m) = d.map(n, p) {
            m.finish(d);
        }
    });
    refuse_output_only(d, &mut map, OUTPUT_ONLY_BUILD);
    config.extensions = Extensions::read(d, &mut map);
    map.finish(d);
    config
}

fn read_step(d: &mut Decoder, node: &Node, path: &str) -> Step {
    let mut step = Step { pos: node.pos, ..Step::default() };
    let Some(mut map) = d.map(node, path) else {
        return step;
    };
    read_step_fields(d, &mut map, &mut step);
    refuse_output_only(d, &mut map, OUTPUT_ONLY_STEP);
    map.finish(d);
    step
}

/// The fields of a step; also used for `pipeline.compile`, which is a step by another name.
pub(super) fn read_step_fields(d: &mut Decoder, map: &mut MapReader<'_>, step: &mut Step) {
    step.name = map.string(d, "name");
    if step.name.is_none() && !map.has("name") {
        d.error_hint(
            map.pos,
            &map.child("name"),
            "is required",
            "the container image to run, e.g. `name: python:3.11`",
        );
    }
    step.args = map.string_list(d, "args");
    step.env = map.string_list(d, "env");
    step.dir = map.string(d, "dir");
    step.id = map.string(d, "id");
    step.wait_for = map.string_list(d, "waitFor");
    step.entrypoint = map.string(d, "entrypoint");
    step.secret_env = map.string_list(d, "secretEnv");
    if let Some((node, path)) = map.take(d, "volumes") {
        step.volumes = d.list(node, &path, read_volume);
    }
    step.timeout = map.duration(d, "timeout");
    step.script = map.string(d, "script");
    step.allow_failure = map.bool(d, "allowFailure").unwrap_or(false);
    if let Some((node, path)) = map.take(d, "allowExitCodes") {
        step.allow_exit_codes = d.list(node, &path, |d, n, p| d.int(n, p));
    }
    step.automap_substitutions = map.bool(d, "automapSubstitutions");
}

fn read_volume(d: &mut Decoder, node: &Node, path: &str) -> Option<Volume> {
    let mut map = d.map(node, path)?;
    let name = map.string(d, "name");
    let vpath = map.string(d, "path");
    if name.is_none() && !map.has("name") {
        d.error(node.pos, &map.child("name"), "is required");
    }
    if vpath.is_none() && !map.has("path") {
        d.error(node.pos, &map.child("path"), "is required");
    }
    map.finish(d);
    Some(Volume { name: name?, path: vpath?, pos: node.pos })
}

pub const MACHINE_TYPES: &[&str] = &[
    "UNSPECIFIED",
    "N1_HIGHCPU_8",
    "N1_HIGHCPU_32",
    "E2_HIGHCPU_8",
    "E2_HIGHCPU_32",
    "E2_MEDIUM",
    "E2_STANDARD_2",
    "E2_STANDARD_4",
    "E2_STANDARD_8",
    "E2_STANDARD_16",
    "E2_STANDARD_32",
    "E2_HIGHCPU_2",
    "E2_HIGHCPU_4",
    "E2_HIGHCPU_16",
    "E2_HIGHMEM_2",
    "E2_HIGHMEM_4",
    "E2_HIGHMEM_8",
    "E2_HIGHMEM_16",
];

pub(super) const SUBSTITUTION_OPTIONS: &[&str] = &["MUST_MATCH", "ALLOW_LOOSE"];
pub(super) const SOURCE_PROVENANCE_HASHES: &[&str] = &["NONE", "SHA256", "MD5", "GO_MODULE_H1", "SHA512"];
pub(super) const LOG_STREAMING_OPTIONS: &[&str] = &["STREAM_DEFAULT", "STREAM_ON", "STREAM_OFF"];
pub(super) const LOGGING_MODES: &[&str] =
    &["LOGGING_UNSPECIFIED", "LEGACY", "GCS_ONLY", "STACKDRIVER_ONLY", "CLOUD_LOGGING_ONLY", "NONE"];
pub(super) const DEFAULT_LOGS_BUCKET_BEHAVIORS: &[&str] =
    &["DEFAULT_LOGS_BUCKET_BEHAVIOR_UNSPECIFIED", "REGIONAL_USER_OWNED_BUCKET", "LEGACY_BUCKET"];
pub(super) const VERIFY_OPTIONS: &[&str] = &["NOT_VERIFIED", "VERIFIED"];
/// `options.diskSizeGb` bounds.
pub(super) const DISK_SIZE_GB: std::ops::RangeInclusive<i64> = 0..=4000;

fn read_options(d: &mut Decoder, node: &Node, path: &str) -> Options {
    let mut options = Options::default();
    let Some(mut map) = d.map(node, path) else {
        return options;
    };
    options.env = map.string_list(d, "env");
    options.secret_env = map.string_list(d, "secretEnv");
    if let Some((node, path)) = map.take(d, "volumes") {
        options.volumes = d.list(node, &path, read_volume);
    }
    if let Some((node, path)) = map.take(d, "substitutionOption")
        && let Some(value) = d.one_of(node, &path, SUBSTITUTION_OPTIONS)
    {
        let option =
            if value.value == "ALLOW_LOOSE" { SubstitutionOption::AllowLoose } else { SubstitutionOption::MustMatch };
        options.substitution_option = Some(Spanned::new(option, value.pos));
    }
    options.dynamic_substitutions = map.bool(d, "dynamicSubstitutions");
    options.automap_substitutions = map.bool(d, "automapSubstitutions");
    map.no_effect(d, "sourceProvenanceHash", |d, n, p| {
        d.list(n, p, |d, n, p| d.one_of(n, p, SOURCE_PROVENANCE_HASHES));
    });
    // Sizes of the build here as on Cloud Build (ARCHITECTURE.md "Limits").
    if let Some((n, p)) = map.take(d, "machineType") {
        options.machine_type = d.one_of(n, &p, MACHINE_TYPES);
    }
    if let Some((n, p)) = map.take(d, "diskSizeGb")
        && let Some(size) = d.int(n, &p)
    {
        if DISK_SIZE_GB.contains(&size.value) {
            options.disk_size_gb = Some(Spanned::new(size.value as u64, size.pos));
        } else {
            d.error(n.pos, &p, format!("{} is outside {DISK_SIZE_GB:?}", size.value));
        }
    }
    map.no_effect(d, "logStreamingOption", |d, n, p| {
        d.one_of(n, p, LOG_STREAMING_OPTIONS);
    });
    map.no_effect(d, "logging", |d, n, p| {
        d.one_of(n, p, LOGGING_MODES);
    });
    map.no_effect(d, "defaultLogsBucketBehavior", |d, n, p| {
        d.one_of(n, p, DEFAULT_LOGS_BUCKET_BEHAVIORS);
    });
    map.no_effect(d, "requestedVerifyOption", |d, n, p| {
        d.one_of(n, p, VERIFY_OPTIONS);
    });
    map.no_effect(d, "enableStructuredLogging", |d, n, p| {
        d.bool(n, p);
    });
    map.no_effect(d, "pubsubTopic", |d, n, p| {
        d.string(n, p);
    });
    let mut pool = None;
    map.no_effect(d, "pool", |d, n, p| {
        if let Some(mut m) = d.map(n, p) {
            pool = m.string(d, "name");
            m.finish(d);
        }
    });
    map.no_effect(d, "workerPool", |d, n, p| {
        let name = d.string(n, p);
        pool = pool.take().or(name);
    });
    options.pool = pool;
    map.finish(d);
    options
}

fn read_kms_secret(d: &mut Decoder, node: &Node, path: &str) -> Option<KmsSecret> {
    let mut map = d.map(node, path)?;
    let kms_key_name = map.string(d, "kmsKeyName");
    let env = match map.take(d, "secretEnv") {
        Some((node, path)) => d.string_map_keys(node, &path),
        None => Vec::new(),
    };
    map.finish(d);
    Some(KmsSecret { pos: node.pos, kms_key_name, env })
}

fn read_available_secrets(d: &mut Decoder, node: &Node, path: &str) -> AvailableSecrets {
    let mut secrets = AvailableSecrets::default();
    let Some(mut map) = d.map(node, path) else {
        return secrets;
    };
    if let Some((node, path)) = map.take(d, "secretManager") {
        secrets.secret_manager = d.list(node, &path, |d, n, p| {
            let mut m = d.map(n, p)?;
            let version_name = m.string(d, "versionName");
            let env = m.string(d, "env");
            if version_name.is_none() && !m.has("versionName") {
                d.error(n.pos, &m.child("versionName"), "is required");
            }
            if env.is_none() && !m.has("env") {
                d.error(n.pos, &m.child("env"), "is required");
            }
            m.finish(d);
            Some(SecretManagerSecret { pos: n.pos, version_name, env })
        });
    }
    if let Some((node, path)) = map.take(d, "inline") {
        secrets.inline = d.list(node, &path, |d, n, p| {
            let mut m = d.map(n, p)?;
            let kms_key_name = m.string(d, "kmsKeyName");
            let env = match m.take(d, "envMap") {
                Some((node, path)) => d.string_map_keys(node, &path),
                None => Vec::new(),
            };
            m.finish(d);
            Some(KmsSecret { pos: n.pos, kms_key_name, env })
        });
    }
    map.finish(d);
    secrets
}

/// The `artifacts` uploads to Google's registries (no effect here) and the fields of their entries.
pub(super) const ARTIFACT_UPLOADS: [(&str, &[&str]); 4] = [
    ("mavenArtifacts", &["repository", "path", "artifactId", "groupId", "version", "deployFolder"]),
    ("pythonPackages", &["repository", "paths"]),
    ("npmPackages", &["repository", "packagePath"]),
    (
        "goModules",
        &["repositoryName", "repositoryLocation", "repositoryProjectId", "sourcePath", "modulePath", "moduleVersion"],
    ),
];

fn read_artifacts(d: &mut Decoder, node: &Node, path: &str) -> Artifacts {
    let mut artifacts = Artifacts { pos: Some(node.pos), ..Artifacts::default() };
    let Some(mut map) = d.map(node, path) else {
        return artifacts;
    };
    artifacts.images = map.string_list(d, "images");
    if let Some((node, path)) = map.take(d, "objects")
        && let Some(mut m) = d.map(node, &path)
    {
        artifacts.objects_location = m.string(d, "location");
        artifacts.objects_paths = m.string_list(d, "paths");
        m.finish(d);
        d.warning(node.pos, &path, "has no effect here (uploads to Cloud Storage are not done locally)");
    }
    for (field, known) in ARTIFACT_UPLOADS {
        map.no_effect(d, field, |d, n, p| {
            d.list(n, p, |d, n, p| {
                let mut m = d.map(n, p)?;
                for name in known {
                    m.take(d, name);
                }
                m.finish(d);
                Some(())
            });
        });
    }
    map.finish(d);
    artifacts
}
