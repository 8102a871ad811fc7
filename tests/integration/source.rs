//! Checkouts of one commit: local paths and URLs, at a branch, a tag, a SHA or HEAD, and the built-in
//! facts taken from them.

use pipewright::io::source::{SourceSpec, checkout};

use crate::support::*;

/// A repository with two commits on `main`, a tag on the first, and a branch `feature` with a third.
fn history() -> (GitRepo, [String; 3]) {
    let mut repo = GitRepo::new();
    repo.write("cloudbuild.yaml", "steps: [{name: a}]\n").write("VERSION", "1\n");
    let first = repo.commit("first");
    repo.git(&["tag", "v1.0.0"]);
    repo.write("VERSION", "2\n");
    let second = repo.commit("second");
    repo.git(&["checkout", "-q", "-b", "feature"]);
    repo.write("VERSION", "3\n").write("sub/dir/cloudbuild.yaml", "steps: [{name: b}]\n");
    let third = repo.commit("third");
    repo.git(&["checkout", "-q", "main"]);
    (repo, [first, second, third])
}

fn check(spec: SourceSpec) -> (pipewright::io::source::Source, String) {
    let dest = tempfile::tempdir().expect("tempdir");
    let source = checkout(&spec, &dest.path().join("checkout")).unwrap_or_else(|e| panic!("{spec:?}: {e}"));
    let version = std::fs::read_to_string(dest.path().join("checkout/VERSION")).expect("VERSION checked out");
    (source, version.trim().to_string())
}

fn local(repo: &GitRepo, rev: &str) -> SourceSpec {
    SourceSpec { repo: repo.path().display().to_string(), rev: rev.to_string() }
}

fn url(repo: &GitRepo, rev: &str) -> SourceSpec {
    SourceSpec { repo: format!("file://{}", repo.path().display()), rev: rev.to_string() }
}

#[test]
fn local_revisions() {
    let (repo, [first, second, third]) = history();
    let (s, v) = check(local(&repo, "HEAD"));
    assert_eq!(
        (s.commit_sha.as_str(), v.as_str(), s.branch.as_deref(), s.tag.as_deref()),
        (second.as_str(), "2", Some("main"), None)
    );
    let (s, v) = check(local(&repo, "feature"));
    assert_eq!((s.commit_sha.as_str(), v.as_str(), s.branch.as_deref()), (third.as_str(), "3", Some("feature")));
    let (s, v) = check(local(&repo, "v1.0.0"));
    assert_eq!(
        (s.commit_sha.as_str(), v.as_str(), s.branch.as_deref(), s.tag.as_deref()),
        (first.as_str(), "1", None, Some("v1.0.0"))
    );
    // A commit that is no branch tip, named by a short SHA.
    let (s, v) = check(local(&repo, &first[..8]));
    assert_eq!((s.commit_sha.as_str(), v.as_str(), s.branch.as_deref()), (first.as_str(), "1", None));
    assert_eq!(s.short_sha(), &first[..7]);
    assert_eq!(s.author_email, "ada@example.com");
    assert_eq!(s.message.trim(), "first");
}

#[test]
fn url_revisions() {
    let (repo, [first, second, third]) = history();
    let (s, v) = check(url(&repo, "HEAD"));
    assert_eq!((s.commit_sha.as_str(), v.as_str()), (second.as_str(), "2"));
    let (s, v) = check(url(&repo, "feature"));
    assert_eq!((s.commit_sha.as_str(), v.as_str(), s.branch.as_deref()), (third.as_str(), "3", Some("feature")));
    let (s, v) = check(url(&repo, &first));
    assert_eq!((s.commit_sha.as_str(), v.as_str(), s.branch.as_deref()), (first.as_str(), "1", None));
    let (s, v) = check(url(&repo, "refs/tags/v1.0.0"));
    assert_eq!((s.commit_sha.as_str(), v.as_str(), s.tag.as_deref()), (first.as_str(), "1", Some("v1.0.0")));
    let name = repo.path().file_name().expect("name").to_string_lossy().into_owned();
    assert_eq!(s.repo_name, name);
}

#[test]
fn a_subdirectory_is_the_build_root_and_the_clone_is_shallow() {
    let (repo, [_, _, third]) = history();
    let dest = tempfile::tempdir().expect("tempdir");
    let spec = SourceSpec { repo: repo.path().join("sub/dir").display().to_string(), rev: "feature".into() };
    let source = checkout(&spec, &dest.path().join("c")).expect("checkout");
    assert_eq!(source.dir.as_deref(), Some("sub/dir"));
    assert_eq!(source.commit_sha, third);
    let root = pipewright::io::source::source_root(&dest.path().join("c"), &source);
    assert!(root.join("cloudbuild.yaml").is_file());
    let depth = std::process::Command::new("git")
        .args(["rev-list", "--count", "HEAD"])
        .current_dir(dest.path().join("c"))
        .output()
        .expect("git");
    assert_eq!(String::from_utf8_lossy(&depth.stdout).trim(), "1", "the clone holds only the commit");
}

#[test]
fn repo_names_come_from_the_origin_remote() {
    let (repo, _) = history();
    repo.git(&["remote", "add", "origin", "https://github.com/acme/churn-model.git"]);
    let (s, _) = check(local(&repo, "HEAD"));
    assert_eq!((s.repo_name.as_str(), s.repo_full_name.as_str()), ("churn-model", "acme/churn-model"));
}

#[test]
fn bad_revisions_and_paths_are_errors() {
    let (repo, _) = history();
    let dest = tempfile::tempdir().expect("tempdir");
    let err = checkout(&local(&repo, "nope"), &dest.path().join("a")).expect_err("unknown revision");
    assert!(err.to_string().contains("revision `nope` does not name a commit"), "{err}");
    let plain = tempfile::tempdir().expect("tempdir");
    let spec = SourceSpec { repo: plain.path().display().to_string(), rev: "HEAD".into() };
    let err = checkout(&spec, &dest.path().join("b")).expect_err("not a repository");
    assert!(err.to_string().contains("is not inside a git repository"), "{err}");
    let sub = SourceSpec { repo: repo.path().join("sub/dir").display().to_string(), rev: "main".into() };
    let err = checkout(&sub, &dest.path().join("d")).expect_err("sub/dir exists only on feature");
    assert!(err.to_string().contains("`sub/dir` is not a directory of the repository at `main`"), "{err}");
    let err = checkout(&url(&repo, "no-such-branch"), &dest.path().join("c")).expect_err("unknown branch");
    assert!(err.to_string().contains("could not clone"), "{err}");
}
