//! What a caller asks the engine to build ([`BuildRequest`]: the source, the build file, overrides,
//! secrets, trust), the facts that override the checkout ([`Origin`]), and why a build could not start
//! ([`Rejected`]).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::Diagnostics;
use crate::executor::PullPolicy;
use crate::io::docker::DockerError;
use crate::io::secrets::{SecretError, SecretSource};
use crate::io::source::{Source, SourceError, SourceSpec};
use crate::io::store::StoreError;
use crate::plan;
use crate::trust::TrustRecord;

/// What to build and how.
#[derive(Clone, Debug)]
pub struct BuildRequest {
    pub source: SourceSpec,
    /// Repository-relative build file; `None` looks up the default names.
    pub config_path: Option<String>,
    /// `--substitutions` values, validated by the caller.
    pub overrides: Vec<(String, String)>,
    pub secrets: BTreeMap<String, SecretSource>,
    pub pull: PullPolicy,
    pub project_id: String,
    pub keep_workspace: bool,
    /// SIGTERM-to-SIGKILL grace when a step is stopped.
    pub stop_grace: Duration,
    /// How many component images build at once.
    pub jobs: usize,
    /// The build's id, when the caller assigned one (the server's queue); else a new one.
    pub build_id: Option<String>,
    /// What the build is of, when the checkout cannot tell: the server clones from its mirror, but the
    /// build is of the forge's repository and of the branch the event named.
    pub origin: Option<Origin>,
    /// How the build was triggered (recorded; `trigger_name` also sets `$TRIGGER_NAME`).
    pub trigger: Option<crate::record::TriggerRecord>,
    pub pull_request: Option<plan::PullRequest>,
    /// Whose code this is (crates/core/src/trust.rs): decides the executor, secrets, publishing and promotion.
    pub trust: TrustRecord,
}

/// Facts about the source that override what the checkout found.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Origin {
    pub url: String,
    pub repo_full_name: String,
    pub branch: Option<String>,
    pub tag: Option<String>,
}

impl Origin {
    /// Sets the facts the checkout could not know (the server clones from its mirror).
    pub fn apply(&self, source: &mut Source) {
        source.url = self.url.clone();
        source.repo_full_name = self.repo_full_name.clone();
        source.repo_name = self.repo_full_name.rsplit('/').next().unwrap_or_default().to_string();
        source.branch = self.branch.clone();
        source.tag = self.tag.clone();
    }
}

impl BuildRequest {
    pub fn new(source: SourceSpec) -> BuildRequest {
        BuildRequest {
            source,
            config_path: None,
            overrides: Vec::new(),
            secrets: BTreeMap::new(),
            pull: PullPolicy::Missing,
            project_id: "local".into(),
            keep_workspace: false,
            stop_grace: Duration::from_secs(5),
            jobs: 2,
            build_id: None,
            origin: None,
            trigger: None,
            pull_request: None,
            trust: TrustRecord::trusted("a build run on this machine"),
        }
    }
}

/// Why a build could not start.
#[derive(Debug, thiserror::Error)]
pub enum Rejected {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("no build file at the source root")]
    NoConfig { root: String, tried: Vec<String> },
    #[error("cannot use the build file `{path}`: {reason}")]
    ConfigPath { path: String, reason: String },
    #[error("the build file has problems")]
    Config(Diagnostics),
    #[error("secrets are missing")]
    Secrets(Vec<SecretError>),
    #[error(transparent)]
    Docker(#[from] DockerError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An untrusted build on a server without a sandbox (docs/THREATS.md: never run with less).
    #[error("{reason}\n\nhint: {hint}")]
    NoSandbox { reason: String, hint: &'static str },
    #[error(transparent)]
    Disk(#[from] crate::executor::disk::DiskError),
    #[error("cannot prepare the build's files under `{path}`")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}
