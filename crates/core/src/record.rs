//! The record of a build: Cloud Build's `Build` resource (docs/research/cloudbuild.md §9) plus pipewright's
//! own fields. It is what `--format json` prints and what is kept under the data directory.
//!
//! Secret values never enter a record: steps carry the *names* of their secret env vars only, and every
//! free-text field is masked before it is stored.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    #[default]
    StatusUnknown,
    Pending,
    Queued,
    Working,
    Success,
    Failure,
    InternalError,
    Timeout,
    Cancelled,
    Expired,
    /// A trigger decided not to build.
    Skipped,
}

impl Status {
    pub fn is_terminal(self) -> bool {
        !matches!(self, Status::StatusUnknown | Status::Pending | Status::Queued | Status::Working)
    }

    /// Whether a record at `self` may be written as `next`. A build only moves forward
    /// (`PENDING → QUEUED → WORKING → finished`), and a finished status is final: a late write (a note
    /// that read the record while the build ran, a sweep, an approval) can never reopen a build or change
    /// how it ended. Checked by the one path that writes records (src/io/store/records.rs).
    pub fn may_become(self, next: Status) -> bool {
        if self.is_terminal() {
            return next == self;
        }
        next.progress() >= self.progress()
    }

    /// How far along a build with this status is (see [`Status::may_become`]).
    fn progress(self) -> u8 {
        match self {
            Status::StatusUnknown => 0,
            Status::Pending => 1,
            Status::Queued => 2,
            Status::Working => 3,
            _ => 4,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::StatusUnknown => "STATUS_UNKNOWN",
            Status::Pending => "PENDING",
            Status::Queued => "QUEUED",
            Status::Working => "WORKING",
            Status::Success => "SUCCESS",
            Status::Failure => "FAILURE",
            Status::InternalError => "INTERNAL_ERROR",
            Status::Timeout => "TIMEOUT",
            Status::Cancelled => "CANCELLED",
            Status::Expired => "EXPIRED",
            Status::Skipped => "SKIPPED",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An RFC 3339 timestamp with nanoseconds, as Cloud Build writes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub OffsetDateTime);

impl Timestamp {
    pub fn now() -> Timestamp {
        Timestamp(OffsetDateTime::now_utc())
    }

    pub fn seconds_since(&self, earlier: &Timestamp) -> f64 {
        (self.0 - earlier.0).as_seconds_f64()
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let text = self.0.format(&Rfc3339).map_err(serde::ser::Error::custom)?;
        s.serialize_str(&text)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let text = String::deserialize(d)?;
        OffsetDateTime::parse(&text, &Rfc3339).map(Timestamp).map_err(serde::de::Error::custom)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeSpan {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Timestamp>,
}

impl TimeSpan {
    pub fn started() -> TimeSpan {
        TimeSpan { start_time: Some(Timestamp::now()), end_time: None }
    }

    pub fn seconds(&self) -> Option<f64> {
        Some(self.end_time?.seconds_since(&self.start_time?))
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeRecord {
    pub name: String,
    pub path: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRecord {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dir: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wait_for: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub entrypoint: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_env: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<VolumeRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_failure: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_exit_codes: Vec<i64>,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing: Option<TimeSpan>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_timing: Option<TimeSpan>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuiltImage {
    pub name: String,
    pub digest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_timing: Option<TimeSpan>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Results {
    #[serde(default)]
    pub images: Vec<BuiltImage>,
    /// Digest of each step's image, by step index ("" when unknown).
    #[serde(default)]
    pub build_step_images: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub build_step_outputs: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitSource {
    pub url: String,
    pub revision: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dir: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceRecord {
    pub git_source: GitSource,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceProvenance {
    pub resolved_git_source: GitSource,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FailureType {
    FailureTypeUnspecified,
    PushFailed,
    PushImageNotFound,
    PushNotAuthorized,
    LoggingFailure,
    UserBuildStep,
    FetchSourceFailed,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureInfo {
    #[serde(rename = "type")]
    pub kind: FailureType,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Warning {
    pub text: String,
    pub priority: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Build {
    pub id: String,
    pub project_id: String,
    pub status: Status,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status_detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceRecord>,
    #[serde(default)]
    pub steps: Vec<StepRecord>,
    #[serde(default)]
    pub results: Results,
    pub create_time: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_time: Option<Timestamp>,
    pub timeout: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_provenance: Option<SourceProvenance>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub log_url: String,
    #[serde(default)]
    pub substitutions: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Phase timings: `FETCHSOURCE`, `BUILD`, `PUSH`.
    #[serde(default)]
    pub timing: BTreeMap<String, TimeSpan>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_info: Option<FailureInfo>,
    /// The build file, repository-relative.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub config_path: String,
    /// One entry per pipeline component (docs/SPEC.md §6).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<ComponentRecord>,
    /// Every image value the specs phase changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub specs: Vec<SpecRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<PipelineRecord>,
    /// The pipeline run the build launched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunRecord>,
    /// The commit built: who wrote it matters for approvals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<CommitRecord>,
    /// How the build was started and decided (event, trigger, reason; forks cannot be promoted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<TriggerRecord>,
    /// The environments of the build file, the rules this build is promoted under.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environments: Vec<crate::plan::Environment>,
    /// Every promotion of this build (and every refusal), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub promotions: Vec<PromotionRecord>,
    /// The pipewright process running the build (`host/pid/start`), so a later run can tell a build
    /// left behind by a crash from one still running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Whose code the build runs (crates/core/src/trust.rs): trusted, or untrusted and sandboxed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust: Option<crate::trust::TrustRecord>,
    /// Where and as whom the steps ran: `docker` or `sandbox` (src/executor/).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub executor: String,
    /// The limits each step ran under (crates/core/src/limits.rs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<crate::limits::Limits>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentRecord {
    pub name: String,
    pub context_hash: String,
    /// `<repository>:<COMMIT_SHA>`.
    pub image: String,
    /// Registry manifest digest (`sha256:…`); the local image id when there is no registry.
    pub digest: String,
    /// The image is in a registry (`digest` is a manifest digest); false: only in the local engine.
    #[serde(default)]
    pub pushed: bool,
    /// True when an image with the same context hash existed and was tagged instead of built.
    pub reused: bool,
    /// The build that built the image (this one, or an earlier one when reused).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub built_by: String,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing: Option<TimeSpan>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpecRecord {
    /// Repository-relative file.
    pub file: String,
    pub component: String,
    /// Where in the file: `implementation.container.image`, `deploymentSpec.executors.exec-x.container.image`.
    pub path: String,
    pub line: usize,
    pub old_image: String,
    pub new_image: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadRecord {
    /// `local`, `oci`, `kfp`, `artifactRegistry`.
    pub destination: String,
    /// Where it went (path, reference, URL).
    pub uri: String,
    /// What the destination calls this upload (digest, version id, `sha256:` version).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineRecord {
    pub name: String,
    /// The compiled spec, repository-relative.
    pub spec: String,
    /// SHA-256 of the spec's bytes, `sha256:…`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub spec_digest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compile: Option<StepRecord>,
    /// The structural summary of the spec (components, executors, images, DAG edges, parameters).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub summary: serde_json::Value,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uploads: Vec<UploadRecord>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    /// `local`, `kfp` or `vertex`.
    pub backend: String,
    pub id: String,
    /// `PENDING`, `RUNNING`, `SUCCEEDED`, `FAILED`, `CANCELLED`, `SKIPPED`.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub parameters: serde_json::Map<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing: Option<TimeSpan>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<RunTaskRecord>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunTaskRecord {
    pub name: String,
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing: Option<TimeSpan>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitRecord {
    pub sha: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    pub author_name: String,
    pub author_email: String,
    #[serde(default)]
    pub message: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerRecord {
    /// `push`, `tag`, `pull_request`, `manual`, `cli`.
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `build` or `skip`.
    #[serde(default)]
    pub decision: String,
    #[serde(default)]
    pub reason: String,
    /// Built from a forked pull request.
    #[serde(default)]
    pub fork: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sender: String,
    /// Whose `triggers:` decided: the build file and commit (for a pull request, its base branch's),
    /// or the defaults and why.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub rules: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PromotionRecord {
    pub environment: String,
    /// `promoted`, `refused`, `rolled back`.
    pub result: String,
    pub by: String,
    pub at: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

impl Build {
    pub fn new(id: String, project_id: String) -> Build {
        Build {
            id,
            project_id,
            status: Status::Queued,
            status_detail: String::new(),
            source: None,
            steps: Vec::new(),
            results: Results::default(),
            create_time: Timestamp::now(),
            start_time: None,
            finish_time: None,
            timeout: String::new(),
            images: Vec::new(),
            source_provenance: None,
            log_url: String::new(),
            substitutions: BTreeMap::new(),
            tags: Vec::new(),
            timing: BTreeMap::new(),
            warnings: Vec::new(),
            failure_info: None,
            config_path: String::new(),
            components: Vec::new(),
            specs: Vec::new(),
            pipeline: None,
            run: None,
            commit: None,
            trigger: None,
            environments: Vec::new(),
            promotions: Vec::new(),
            owner: None,
            trust: None,
            executor: String::new(),
            limits: None,
        }
    }
}

/// A duration in protobuf Duration text (`600s`, `1.5s`).
pub fn duration_text(d: std::time::Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        let text = format!("{}.{:09}", d.as_secs(), d.subsec_nanos());
        format!("{}s", text.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_only_move_forward_and_a_finished_one_is_final() {
        use Status::*;
        let check = |from: Status, to: Status, allowed: bool| {
            assert_eq!(from.may_become(to), allowed, "{from} -> {to}");
        };
        check(Pending, Queued, true);
        check(Queued, Working, true);
        check(Working, Working, true);
        check(Working, Success, true);
        check(Queued, Cancelled, true);
        check(Pending, Failure, true);
        check(Success, Success, true);
        check(Working, Queued, false);
        check(Queued, Pending, false);
        check(Success, Working, false);
        check(Success, Queued, false);
        check(Failure, Success, false);
        check(Cancelled, InternalError, false);
        check(Skipped, Working, false);
    }

    #[test]
    fn durations_print_as_protobuf() {
        assert_eq!(duration_text(std::time::Duration::from_secs(600)), "600s");
        assert_eq!(duration_text(std::time::Duration::from_millis(1500)), "1.5s");
    }

    #[test]
    fn round_trip() {
        let mut build = Build::new("b1".into(), "local".into());
        build.steps.push(StepRecord {
            name: "busybox".into(),
            args: vec!["true".into()],
            env: vec![],
            dir: String::new(),
            id: "unit".into(),
            wait_for: vec!["-".into()],
            entrypoint: String::new(),
            secret_env: vec![],
            volumes: vec![],
            timeout: None,
            script: None,
            allow_failure: false,
            allow_exit_codes: vec![],
            status: Status::Success,
            timing: Some(TimeSpan::started()),
            pull_timing: None,
            exit_code: Some(0),
        });
        let json = serde_json::to_string(&build).expect("serialize");
        assert!(json.contains("\"status\":\"QUEUED\""), "{json}");
        assert!(json.contains("\"waitFor\":[\"-\"]"), "{json}");
        let back: Build = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, build);
    }
}
