//! What a build builds: a repository and a revision in it ([`SourceSpec`]), and the facts about the
//! checked-out commit ([`Source`]) that become built-in substitutions and the record's `source`. The
//! product's `source` module checks the commit out and fills these in.

/// What to build: a repository (local path or URL) and a revision in it.
#[derive(Clone, Debug)]
pub struct SourceSpec {
    pub repo: String,
    pub rev: String,
}

/// The checked-out commit.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    /// Clone URL (a `file://` URL for a local repository).
    pub url: String,
    /// The revision as the user gave it.
    pub revision: String,
    pub commit_sha: String,
    pub branch: Option<String>,
    pub tag: Option<String>,
    pub repo_name: String,
    pub repo_full_name: String,
    /// The build's root inside the repository (`examples/churn`), when a subdirectory was named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    pub author_name: String,
    pub author_email: String,
    pub message: String,
}

impl Source {
    pub fn short_sha(&self) -> &str {
        &self.commit_sha[..self.commit_sha.len().min(7)]
    }
}
