//! An environment as planned: its rules and what promotion does there, after substitution. The rules
//! are checked by `promote::policy`; the build record keeps this shape so that a build is promoted under
//! the rules it was built with.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{RunPlan, UploadPlan};

/// An environment as the build file defines it, after planning; kept in the build record so that the
/// rules a build is promoted under are the ones it was built with.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Environment {
    pub name: String,
    /// RE2 patterns over the branch name; a build must match one (when any are given).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub branches: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default)]
    pub auto: bool,
    /// The build must be (or have been) in this environment first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<Gate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalRule>,
    /// Where the spec goes on promotion (same forms as `pipeline.upload`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upload: Vec<UploadPlan>,
    /// The environment's own pipeline run, if any (same form as `run:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunPlan>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Gate {
    pub metric: String,
    pub check: GateCheck,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum GateCheck {
    /// `op` is one of `>=`, `>`, `<=`, `<`, `==`.
    Compare { op: String, value: f64 },
    /// Better than the release now in the environment by at least `by`.
    Improves { by: f64 },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalRule {
    pub required: u32,
    /// Who may approve; anyone when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    pub prevent_self_approval: bool,
}

impl fmt::Display for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.check {
            GateCheck::Compare { op, value } => write!(f, "{} {op} {value}", self.metric),
            GateCheck::Improves { by } => write!(f, "{} improves by {by}", self.metric),
        }
    }
}
