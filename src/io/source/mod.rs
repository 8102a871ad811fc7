//! Source: a fresh checkout of one commit, and the facts about it that become built-in substitutions.
//!
//! The workspace is always a clone of the commit, never the user's working tree, so uncommitted changes
//! are not built. gix does the work (shallow, by revision); nothing here talks to Docker. gix is blocking,
//! so callers run [`checkout`] on a blocking thread.

pub mod mirror;
mod workspace;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

pub use pipewright_core::source::{Source, SourceSpec};
pub use workspace::{PathError, Workspace};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("`{path}` is not inside a git repository")]
    NotARepository {
        path: String,
        #[source]
        source: gix::Error,
    },
    #[error("revision `{rev}` does not name a commit in `{repo}`")]
    UnknownRevision {
        repo: String,
        rev: String,
        #[source]
        source: gix::Error,
    },
    #[error("could not clone `{url}` at `{rev}`")]
    Clone {
        url: String,
        rev: String,
        #[source]
        source: gix::Error,
    },
    #[error("the repository at `{0}` has no commit yet")]
    NoCommit(String),
    #[error("`{dir}` is not a directory of the repository at `{rev}`")]
    MissingDir { dir: String, rev: String },
    #[error("`{path}` is not a directory")]
    NotADirectory { path: String },
    #[error("could not prepare the workspace at `{path}`")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Where `dir` sits inside its repository's work tree (`examples/churn/`, with its trailing `/`), or
/// the empty string at the root or outside a repository: what turns a path under `dir` into the path the
/// repository (and a forge's annotations) names.
pub async fn prefix_in_repository(dir: &Path) -> String {
    tokio::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--show-prefix"])
        .output()
        .await
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// Clones `spec` at its revision into `dest` (which must not exist or be empty) and describes the commit.
pub fn checkout(spec: &SourceSpec, dest: &Path) -> Result<Source, SourceError> {
    if is_url(&spec.repo) { checkout_url(spec, dest) } else { checkout_local(spec, dest) }
}

/// `a/b/c` where only `a` exists → (`a`, `b/c`).
fn split_existing(path: &Path) -> (PathBuf, PathBuf) {
    let mut existing = path.to_path_buf();
    let mut missing = Vec::new();
    while !existing.as_os_str().is_empty() && !existing.exists() {
        match existing.file_name() {
            Some(name) => missing.push(name.to_os_string()),
            None => break,
        }
        existing.pop();
    }
    if existing.as_os_str().is_empty() {
        existing = PathBuf::from(".");
    }
    (existing, missing.iter().rev().collect())
}

fn is_url(repo: &str) -> bool {
    repo.contains("://") || (repo.contains('@') && repo.contains(':') && !Path::new(repo).exists())
}

fn checkout_local(spec: &SourceSpec, dest: &Path) -> Result<Source, SourceError> {
    let source = describe(spec)?;
    clone_at(&source.url, &source.commit_sha, &spec.rev, dest)?;
    if let Some(dir) = &source.dir
        && !dest.join(dir).is_dir()
    {
        return Err(SourceError::MissingDir { dir: dir.clone(), rev: spec.rev.clone() });
    }
    Ok(source)
}

/// Describes the commit `spec.rev` of the local repository containing `spec.repo`, without cloning it:
/// what a build of it would see as its source (for commands that work on a checkout in place).
pub fn describe(spec: &SourceSpec) -> Result<Source, SourceError> {
    // The directory may exist only at the revision being built, not in the working tree: discover the
    // repository from the nearest existing ancestor and keep the rest of the path as it was written.
    let (existing, missing) = split_existing(Path::new(&spec.repo));
    if !existing.is_dir() {
        return Err(SourceError::NotADirectory { path: spec.repo.clone() });
    }
    let existing = existing.canonicalize().map_err(|source| SourceError::Io { path: spec.repo.clone(), source })?;
    let repo =
        gix::discover(&existing).map_err(|source| SourceError::NotARepository { path: spec.repo.clone(), source })?;
    let root = repo.workdir().map(Path::to_path_buf).unwrap_or_else(|| repo.git_dir().to_path_buf());
    let root = root.canonicalize().unwrap_or(root);
    let dir = existing
        .join(&missing)
        .strip_prefix(&root)
        .ok()
        .filter(|rel| !rel.as_os_str().is_empty())
        .map(|rel| rel.to_string_lossy().replace('\\', "/"));
    let resolved = resolve_local(&repo, &spec.rev, &spec.repo)?;
    let (repo_name, repo_full_name) = match remote_url(&repo) {
        Some(remote) => names_from_url(&remote),
        None => names_from_path(&root),
    };
    Ok(Source {
        url: format!("file://{}", root.display()),
        revision: spec.rev.clone(),
        commit_sha: resolved.commit,
        branch: resolved.branch,
        tag: resolved.tag,
        repo_name,
        repo_full_name,
        dir,
        author_name: resolved.author_name,
        author_email: resolved.author_email,
        message: resolved.message,
    })
}

struct Resolved {
    commit: String,
    branch: Option<String>,
    tag: Option<String>,
    author_name: String,
    author_email: String,
    message: String,
}

/// Turns a revision into a commit and tells whether it named a branch or a tag (for BRANCH_NAME/TAG_NAME).
fn resolve_local(repo: &gix::Repository, rev: &str, repo_label: &str) -> Result<Resolved, SourceError> {
    let unknown = |source| SourceError::UnknownRevision { repo: repo_label.to_string(), rev: rev.to_string(), source };
    let id = repo.rev_parse_single(rev).map_err(unknown)?;
    let commit = id.object().and_then(|o| o.peel_to_commit()).map_err(unknown)?;
    let (mut branch, mut tag) = (None, None);
    if rev == "HEAD" {
        branch = repo
            .head_name()
            .ok()
            .flatten()
            .and_then(|name| name.as_bstr().to_string().strip_prefix("refs/heads/").map(str::to_string));
    } else if let Some(name) = rev.strip_prefix("refs/heads/") {
        branch = Some(name.to_string());
    } else if let Some(name) = rev.strip_prefix("refs/tags/") {
        tag = Some(name.to_string());
    } else if has_ref(repo, &format!("refs/heads/{rev}")) {
        branch = Some(rev.to_string());
    } else if has_ref(repo, &format!("refs/tags/{rev}")) {
        tag = Some(rev.to_string());
    }
    let author = commit.author().ok();
    Ok(Resolved {
        commit: commit.id.to_string(),
        branch,
        tag,
        author_name: author.map(|a| a.name.to_string()).unwrap_or_default(),
        author_email: author.map(|a| a.email.to_string()).unwrap_or_default(),
        message: commit.message_raw_sloppy().to_string(),
    })
}

fn has_ref(repo: &gix::Repository, name: &str) -> bool {
    repo.try_find_reference(name).ok().flatten().is_some()
}

fn remote_url(repo: &gix::Repository) -> Option<String> {
    let remote = repo.find_default_remote(gix::remote::Direction::Fetch)?.ok()?;
    remote.url(gix::remote::Direction::Fetch).map(|u| u.to_bstring().to_string())
}

fn checkout_url(spec: &SourceSpec, dest: &Path) -> Result<Source, SourceError> {
    clone_at(&spec.repo, &spec.rev, &spec.rev, dest)?;
    let repo =
        gix::open(dest).map_err(|source| SourceError::NotARepository { path: dest.display().to_string(), source })?;
    let resolved = resolve_local(&repo, "HEAD", &spec.repo)?;
    let (branch, tag) = match spec.rev.as_str() {
        rev if is_full_sha(rev) => (None, None),
        "HEAD" => (resolved.branch, None),
        rev => match rev.strip_prefix("refs/tags/") {
            Some(t) => (None, Some(t.to_string())),
            None => (Some(rev.strip_prefix("refs/heads/").unwrap_or(rev).to_string()), None),
        },
    };
    let (repo_name, repo_full_name) = names_from_url(&spec.repo);
    Ok(Source {
        url: spec.repo.clone(),
        revision: spec.rev.clone(),
        commit_sha: resolved.commit,
        branch,
        tag,
        repo_name,
        repo_full_name,
        dir: None,
        author_name: resolved.author_name,
        author_email: resolved.author_email,
        message: resolved.message,
    })
}

fn is_full_sha(rev: &str) -> bool {
    rev.len() == 40 && rev.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A depth-1 clone of exactly `rev` (a full SHA, `HEAD`, or a ref name) with its worktree checked out.
fn clone_at(url: &str, rev: &str, label: &str, dest: &Path) -> Result<(), SourceError> {
    let err = |source| SourceError::Clone { url: url.to_string(), rev: label.to_string(), source };
    std::fs::create_dir_all(dest).map_err(|source| SourceError::Io { path: dest.display().to_string(), source })?;
    let depth = std::num::NonZeroU32::new(1).expect("1 is not zero");
    let mut prepare =
        gix::prepare_clone(url, dest).map_err(err)?.with_shallow(gix::remote::fetch::Shallow::DepthAtRemote(depth));
    prepare = if rev == "HEAD" {
        prepare
    } else if is_full_sha(rev) || rev.starts_with("refs/") {
        prepare.with_revision(Some(rev)).map_err(err)?
    } else {
        prepare.with_ref_name(Some(rev)).map_err(err)?
    };
    let interrupt = AtomicBool::new(false);
    let (mut checkout, _) = prepare.fetch_then_checkout(gix::progress::Discard, &interrupt).map_err(err)?;
    checkout.main_worktree(gix::progress::Discard, &interrupt).map_err(err)?;
    Ok(())
}

/// `https://github.com/acme/churn.git` → (`churn`, `acme/churn`).
fn names_from_url(url: &str) -> (String, String) {
    let trimmed = url.trim_end_matches('/').trim_end_matches(".git");
    let parts: Vec<&str> = trimmed.rsplit(['/', ':']).filter(|p| !p.is_empty()).take(2).collect();
    match parts.as_slice() {
        [name, owner, ..] => (name.to_string(), format!("{owner}/{name}")),
        [name] => (name.to_string(), name.to_string()),
        [] => (String::new(), String::new()),
    }
}

fn names_from_path(root: &Path) -> (String, String) {
    let name = root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let owner = root.parent().and_then(Path::file_name).map(|n| n.to_string_lossy().into_owned());
    match owner {
        Some(owner) => (name.clone(), format!("{owner}/{name}")),
        None => (name.clone(), name),
    }
}

/// The directory a build's files live under inside the checkout (the source root).
pub fn source_root(checkout: &Path, source: &Source) -> PathBuf {
    match &source.dir {
        Some(dir) => checkout.join(dir),
        None => checkout.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_names() {
        assert_eq!(names_from_url("https://github.com/acme/churn.git"), ("churn".into(), "acme/churn".into()));
        assert_eq!(names_from_url("git@github.com:acme/churn.git"), ("churn".into(), "acme/churn".into()));
        assert_eq!(names_from_url("file:///tmp/x/repo/"), ("repo".into(), "x/repo".into()));
    }

    #[test]
    fn urls() {
        assert!(is_url("https://example.com/a.git"));
        assert!(is_url("file:///tmp/a"));
        assert!(!is_url("."));
        assert!(!is_url("examples/churn"));
    }
}
