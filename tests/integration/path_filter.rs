//! The path-filter case matrix (peers.md §2.6, docs/SPEC.md §10) against real git repositories: each row makes a
//! history in a repository standing in for the forge, has the forge's webhook payload parsed by
//! `trigger::parse`, fetches the server's mirror over `file://`, and evaluates the event the way the
//! intake worker does (`server::evaluation::evaluate`: build file at the commit, `diff_base`, the mirror's
//! changed files, `decide`). Each row checks the diff the event asks for, the exact changed files, and
//! the decision with its reason as the commit status shows it. No Docker.

use std::path::Path;

use pipewright::io::source::mirror::Mirror;
use pipewright::server::evaluation::{Decided, Evaluation, evaluate};
use pipewright::trigger::{self, ChangedFiles, DiffBase, Event, Incoming, Kind, Rev};
use serde_json::{Value, json};

use crate::support::{GitRepo, fixture};

const ZERO: &str = "0000000000000000000000000000000000000000";

const BUILD_FILE: &str = r#"steps:
- name: busybox
triggers:
- name: main
  event: push
  branch: '^main$'
  ignoredFiles: ['docs/**', '**/*.md']
- name: pr
  event: pull_request
  branch: '^main$'
  includedFiles: ['src/**']
- name: release
  event: tag
  ignoredFiles: ['**']
- name: branches
  event: push
  ignoredFiles: ['docs/**', '**/*.md']
"#;

/// The forge's repository (a working repository served as `file://`) and the server's mirror of it.
struct Forge {
    repo: GitRepo,
    _mirrors: tempfile::TempDir,
    mirror: Mirror,
}

impl Forge {
    /// `main` with the build file, `src/train.py` and `docs/guide.md`; the mirror exists but has not
    /// fetched yet.
    fn new() -> Forge {
        let mut repo = GitRepo::new();
        repo.write("cloudbuild.yaml", BUILD_FILE).write("src/train.py", "v1\n").write("docs/guide.md", "v1\n");
        repo.commit("initial");
        let mirrors = tempfile::tempdir().expect("tempdir");
        let mirror = Mirror::open(mirrors.path(), &url(repo.path())).expect("mirror opens");
        Forge { repo, _mirrors: mirrors, mirror }
    }

    fn git(&self, args: &[&str]) -> String {
        self.repo.git(args)
    }

    fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"])
    }

    /// Writes `files` (path, content) and commits them: the new commit.
    fn change(&mut self, files: &[(&str, &str)], message: &str) -> String {
        for (path, content) in files {
            self.repo.write(path, content);
        }
        self.repo.commit(message)
    }

    /// What the server does on every delivery before it decides.
    fn fetch(&self) {
        self.mirror.fetch().expect("mirror fetches");
    }

    fn url(&self) -> String {
        url(self.repo.path())
    }

    /// A GitHub `push` delivery, parsed. Its `commits` list is left empty: changed files never come from it.
    fn github_push(&self, git_ref: &str, before: &str, after: &str, forced: bool, message: &str) -> Event {
        let mut payload = payload("github/push__branch.json");
        payload["ref"] = json!(git_ref);
        payload["before"] = json!(before);
        payload["after"] = json!(after);
        payload["created"] = json!(before == ZERO);
        payload["deleted"] = json!(after == ZERO);
        payload["forced"] = json!(forced);
        payload["base_ref"] = Value::Null;
        payload["commits"] = json!([]);
        payload["head_commit"] =
            if after == ZERO { Value::Null } else { json!({"id": after, "message": message, "tree_id": after}) };
        self.github_repository(&mut payload);
        parse(trigger::Forge::GitHub, "X-GitHub-Event", "push", &payload)
    }

    /// A GitHub `pull_request` delivery, parsed: `base` is the base branch's tip when the event was sent.
    fn github_pull_request(&self, action: &str, number: u64, base: &str, head_branch: &str, head: &str) -> Event {
        self.github_pull_request_from("acme/churn", action, number, base, head_branch, head)
    }

    /// A GitHub `pull_request` delivery whose head branch lives in the repository `head_repo`.
    fn github_pull_request_from(
        &self,
        head_repo: &str,
        action: &str,
        number: u64,
        base: &str,
        head_branch: &str,
        head: &str,
    ) -> Event {
        let mut payload = payload("github/pull_request__synchronize.json");
        payload["action"] = json!(action);
        payload["number"] = json!(number);
        let pr = &mut payload["pull_request"];
        pr["number"] = json!(number);
        pr["merged"] = json!(false);
        pr["base"]["ref"] = json!("main");
        pr["base"]["sha"] = json!(base);
        pr["head"]["ref"] = json!(head_branch);
        pr["head"]["sha"] = json!(head);
        pr["head"]["repo"]["full_name"] = json!(head_repo);
        pr["base"]["repo"]["full_name"] = json!("acme/churn");
        self.github_repository(&mut payload);
        parse(trigger::Forge::GitHub, "X-GitHub-Event", "pull_request", &payload)
    }

    fn github_repository(&self, payload: &mut Value) {
        payload["repository"]["full_name"] = json!("acme/churn");
        payload["repository"]["clone_url"] = json!(self.url());
        payload["repository"]["default_branch"] = json!("main");
    }

    /// A GitLab `Push Hook`, parsed. GitLab never says a push was forced; `default_branch` is left out when
    /// `None`, as when the payload does not name it.
    fn gitlab_push(&self, git_ref: &str, before: &str, after: &str, default_branch: Option<&str>) -> Event {
        let mut payload = payload("gitlab/push.json");
        payload["ref"] = json!(git_ref);
        payload["before"] = json!(before);
        payload["after"] = json!(after);
        payload["checkout_sha"] = json!(after);
        payload["commits"] = json!([]);
        payload["total_commits_count"] = json!(0);
        self.gitlab_project(&mut payload, default_branch);
        parse(trigger::Forge::GitLab, "X-Gitlab-Event", "Push Hook", &payload)
    }

    /// A GitLab `Merge Request Hook` with new commits: GitLab sends no base commit, only the target branch.
    fn gitlab_merge_request(&self, iid: u64, source_branch: &str, head: &str, oldrev: &str) -> Event {
        let mut payload = payload("gitlab/merge_request__update.json");
        let attributes = &mut payload["object_attributes"];
        attributes["action"] = json!("update");
        attributes["iid"] = json!(iid);
        attributes["target_branch"] = json!("main");
        attributes["source_branch"] = json!(source_branch);
        attributes["oldrev"] = json!(oldrev);
        attributes["last_commit"]["id"] = json!(head);
        attributes["last_commit"]["message"] = json!("change");
        self.gitlab_project(&mut payload, Some("main"));
        parse(trigger::Forge::GitLab, "X-Gitlab-Event", "Merge Request Hook", &payload)
    }

    fn gitlab_project(&self, payload: &mut Value, default_branch: Option<&str>) {
        let project = payload["project"].as_object_mut().expect("project");
        project.insert("git_http_url".into(), json!(self.url()));
        match default_branch {
            Some(name) => project.insert("default_branch".into(), json!(name)),
            None => project.remove("default_branch"),
        };
    }

    /// A manual run of `branch` at `commit`, as the API builds it (no forge payload exists for one).
    fn manual(&self, branch: &str, commit: &str) -> Event {
        let mut event = self.github_push(&format!("refs/heads/{branch}"), commit, commit, false, "");
        event.kind = Kind::Manual;
        event.before = None;
        event.head_message = None;
        event
    }
}

fn url(path: &Path) -> String {
    format!("file://{}", path.display())
}

fn payload(name: &str) -> Value {
    let path = fixture(&format!("webhooks/{name}"));
    serde_json::from_slice(&std::fs::read(&path).expect("fixture")).expect("fixture is JSON")
}

fn parse(forge: trigger::Forge, header: &str, kind: &str, payload: &Value) -> Event {
    let body = serde_json::to_vec(payload).expect("JSON");
    match trigger::parse(forge, &[(header.to_string(), kind.to_string())], &body) {
        Ok(Incoming::Event(event)) => *event,
        other => panic!("the {kind} payload did not parse into an event: {other:?}"),
    }
}

/// What a row expects.
struct Case {
    event: Event,
    /// The diff the event asks for, in a few words (see `diff`).
    diff: &'static str,
    /// The exact changed files in git's order, or `Err(reason)` when they are unknown.
    changed: Result<Vec<String>, String>,
    /// The decision as the commit status shows it: `building: …` or `skipped: …`. `{before}`, `{after}`
    /// and `{base}` stand for the short SHAs of the event's commits.
    status: &'static str,
}

fn files(list: &[&str]) -> Result<Vec<String>, String> {
    Ok(list.iter().map(|f| f.to_string()).collect())
}

fn diff(base: &DiffBase) -> String {
    match base {
        DiffBase::Range { .. } => "before..after".into(),
        DiffBase::MergeBase { base: Rev::Commit(_), .. } => "merge-base(commit, head)..head".into(),
        DiffBase::MergeBase { base: Rev::Branch(b), .. } => format!("merge-base({b}, head)..head"),
        DiffBase::MergeBase { base: Rev::DefaultBranch, .. } => "merge-base(HEAD, head)..head".into(),
        DiffBase::EveryFile { .. } => "every file".into(),
        DiffBase::None => "none".into(),
    }
}

fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

type Row = (&'static str, fn(&mut Forge) -> Case);

/// One row per case of the matrix; a failure names its row.
const ROWS: &[Row] = &[
    ("push to an existing branch: every commit of the push counts", push_two_commits),
    ("push changing docs only is skipped", push_docs_only),
    ("empty commit: no files changed, skipped", push_empty_commit),
    ("rename: the old and the new path both count", push_rename),
    ("paths with spaces, quotes, newlines and unicode arrive as they are", push_odd_paths),
    ("more than 3,000 files: exact, the one file that matters is found", push_huge),
    ("skip marker in the head commit skips a push", push_skip_marker),
    ("pull request: merge base, not the base tip (base moved on and changed a filtered file)", pr_base_moved_on),
    ("pull request changing a filtered file builds", pr_builds),
    ("pull request from a fork: its head exists only as refs/pull/<n>/head", pr_from_fork),
    ("pull request closed builds nothing", pr_closed),
    ("merge request (GitLab): merge base with the target branch", gitlab_merge_request),
    ("first push of a new branch: against the merge base with the default branch", new_branch),
    ("first push of a new branch at an existing commit: nothing changed", new_branch_no_commits),
    ("first push of a new branch, default branch not in the payload: the mirror's HEAD", new_branch_default_head),
    ("first push of the default branch: every file", first_push_of_default_branch),
    ("force push flagged by the forge: merge base of the old and new tips", force_push_flagged),
    ("force push the forge does not flag (GitLab): merge base as well", force_push_unflagged),
    ("force push whose old tip the mirror never fetched: unknown, builds", force_push_old_tip_unknown),
    ("tag push is never path-filtered", tag_push),
    ("deleted branch builds nothing", deleted_branch),
    ("manual run is never path-filtered", manual_run),
];

#[test]
fn case_matrix() {
    let mut failures = Vec::new();
    for (name, row) in ROWS {
        let mut forge = Forge::new();
        let case = row(&mut forge);
        forge.fetch();
        if let Err(problem) = check(&forge, &case) {
            failures.push(format!("{name}:\n{problem}"));
        }
    }
    assert!(failures.is_empty(), "{} of {} rows failed:\n\n{}", failures.len(), ROWS.len(), failures.join("\n\n"));
}

fn check(forge: &Forge, case: &Case) -> Result<(), String> {
    let base = trigger::diff_base(&case.event);
    let mut problems = Vec::new();
    if diff(&base) != case.diff {
        problems.push(format!("  diff: expected {}, got {} ({base:?})", case.diff, diff(&base)));
    }
    let evaluation = evaluate(&forge.mirror, &case.event, None).map_err(|e| format!("  evaluate failed: {e}"))?;
    let Evaluation::Decided(Decided { changed, decision, .. }) = evaluation else {
        return Err(format!("  not decided: {evaluation:?}"));
    };
    // The server's path: the same as asking the mirror directly.
    if changed != forge.mirror.changed_files(&base) {
        problems.push("  the evaluation's changed files differ from the mirror's".to_string());
    }
    match (&changed, &case.changed) {
        (ChangedFiles::Files(got), Ok(expected)) if got == expected => {}
        (ChangedFiles::Unknown { reason }, Err(expected)) if reason == &placeholders(expected, &case.event) => {}
        (got, expected) => {
            let got = match got {
                ChangedFiles::Files(files) if files.len() > 20 => format!("{} files", files.len()),
                other => format!("{other:?}"),
            };
            let expected = match expected {
                Ok(files) if files.len() > 20 => format!("{} files", files.len()),
                other => format!("{other:?}"),
            };
            problems.push(format!("  changed files: expected {expected}, got {got}"));
        }
    }
    let status = decision.to_string();
    let expected = placeholders(case.status, &case.event);
    if status != expected {
        problems.push(format!("  decision: expected `{expected}`, got `{status}`"));
    }
    if problems.is_empty() { Ok(()) } else { Err(problems.join("\n")) }
}

fn placeholders(text: &str, event: &Event) -> String {
    text.replace("{before}", short(event.before.as_deref().unwrap_or_default()))
        .replace("{after}", short(&event.after))
        .replace("{base}", short(event.base.as_deref().unwrap_or_default()))
}

// Rows. Each makes its history in the forge's repository (the mirror fetches before the row is
// evaluated; a row fetches earlier where the mirror must have seen an older state) and returns the
// delivery with what it must come to.

fn push_two_commits(forge: &mut Forge) -> Case {
    forge.fetch();
    let before = forge.head();
    forge.change(&[("src/train.py", "v2\n")], "train");
    let after = forge.change(&[("docs/guide.md", "v2\n")], "docs");
    Case {
        event: forge.github_push("refs/heads/main", &before, &after, false, "docs"),
        diff: "before..after",
        changed: files(&["docs/guide.md", "src/train.py"]),
        status: "building: push to main; src/train.py is not ignored",
    }
}

fn push_docs_only(forge: &mut Forge) -> Case {
    let before = forge.head();
    let after = forge
        .change(&[("docs/guide.md", "v2\n"), ("README.md", "hello\n"), ("components/train/NOTES.md", "n\n")], "docs");
    Case {
        event: forge.github_push("refs/heads/main", &before, &after, false, "docs"),
        diff: "before..after",
        changed: files(&["README.md", "components/train/NOTES.md", "docs/guide.md"]),
        status: "skipped: only docs/**, **/*.md changed",
    }
}

fn push_empty_commit(forge: &mut Forge) -> Case {
    let before = forge.head();
    let after = forge.change(&[], "nothing");
    Case {
        event: forge.github_push("refs/heads/main", &before, &after, false, "nothing"),
        diff: "before..after",
        changed: files(&[]),
        status: "skipped: no files changed",
    }
}

fn push_rename(forge: &mut Forge) -> Case {
    let before = forge.head();
    forge.git(&["mv", "src/train.py", "docs/train.md"]);
    let after = forge.change(&[], "move the script to the docs");
    Case {
        event: forge.github_push("refs/heads/main", &before, &after, false, "move"),
        diff: "before..after",
        // With rename detection, only `docs/train.md` would be listed and the push skipped as docs-only.
        changed: files(&["docs/train.md", "src/train.py"]),
        status: "building: push to main; src/train.py is not ignored",
    }
}

fn push_odd_paths(forge: &mut Forge) -> Case {
    let before = forge.head();
    let after = forge.change(
        &[
            ("docs/Übersicht der Läufe.md", "ü\n"),
            ("docs/line\nbreak.md", "x\n"),
            ("notes/\"quoted\" name.md", "q\n"),
            ("README ✓.md", "r\n"),
        ],
        "docs with odd names",
    );
    Case {
        event: forge.github_push("refs/heads/main", &before, &after, false, "docs"),
        diff: "before..after",
        // Quoted (`"docs/\303\234bersicht…"`), these would match no glob and build.
        changed: files(&[
            "README ✓.md",
            "docs/line\nbreak.md",
            "docs/Übersicht der Läufe.md",
            "notes/\"quoted\" name.md",
        ]),
        status: "skipped: only docs/**, **/*.md changed",
    }
}

fn push_huge(forge: &mut Forge) -> Case {
    let before = forge.head();
    let mut expected: Vec<String> = (0..3_200).map(|i| format!("docs/pages/page-{i:04}.md")).collect();
    for path in &expected {
        forge.repo.write(path, "page\n");
    }
    // Last in git's order: a forge's file list capped at 3,000 entries would not reach it.
    forge.repo.write("src/zz_last.py", "x\n");
    expected.push("src/zz_last.py".to_string());
    let after = forge.repo.commit("3,201 files");
    Case {
        event: forge.github_push("refs/heads/main", &before, &after, false, "many"),
        diff: "before..after",
        changed: Ok(expected),
        status: "building: push to main; src/zz_last.py is not ignored",
    }
}

fn push_skip_marker(forge: &mut Forge) -> Case {
    let before = forge.head();
    let after = forge.change(&[("src/train.py", "v2\n")], "tweak [skip ci]");
    Case {
        event: forge.github_push("refs/heads/main", &before, &after, false, "tweak [skip ci]"),
        diff: "before..after",
        changed: files(&["src/train.py"]),
        status: "skipped: [skip ci] in the head commit message",
    }
}

/// `main` moves on after `feature` branched, changing `src/train.py` (which the PR trigger includes); the
/// PR itself changes docs only. The payload's base is `main`'s new tip.
fn pr_base_moved_on(forge: &mut Forge) -> Case {
    forge.git(&["checkout", "-q", "-b", "feature"]);
    let head = forge.change(&[("docs/guide.md", "v2\n")], "docs");
    forge.git(&["checkout", "-q", "main"]);
    let base = forge.change(&[("src/train.py", "v2\n")], "train");
    Case {
        event: forge.github_pull_request("synchronize", 7, &base, "feature", &head),
        diff: "merge-base(commit, head)..head",
        changed: files(&["docs/guide.md"]),
        status: "skipped: no change matches src/**",
    }
}

fn pr_builds(forge: &mut Forge) -> Case {
    forge.git(&["checkout", "-q", "-b", "feature"]);
    forge.change(&[("src/model.py", "m\n")], "model");
    let head = forge.change(&[("docs/model.md", "m\n")], "docs");
    forge.git(&["checkout", "-q", "main"]);
    let base = forge.change(&[("docs/guide.md", "v2\n")], "docs on main");
    Case {
        event: forge.github_pull_request("opened", 8, &base, "feature", &head),
        diff: "merge-base(commit, head)..head",
        changed: files(&["docs/model.md", "src/model.py"]),
        status: "building: pull request #8 into main; src/model.py matches src/**",
    }
}

/// A fork's commits reach the base repository only under `refs/pull/<n>/head`, never as a branch: the
/// mirror must have them to read the build file and diff.
fn pr_from_fork(forge: &mut Forge) -> Case {
    forge.git(&["checkout", "-q", "-b", "fork-work"]);
    let head = forge.change(&[("src/model.py", "m\n")], "model");
    forge.git(&["checkout", "-q", "main"]);
    forge.git(&["update-ref", "refs/pull/10/head", &head]);
    forge.git(&["branch", "-q", "-D", "fork-work"]);
    let base = forge.change(&[("src/train.py", "v2\n")], "train on main");
    let event = forge.github_pull_request_from("bob/churn", "opened", 10, &base, "fork-work", &head);
    assert!(matches!(&event.kind, Kind::PullRequest(pr) if pr.fork), "a fork's pull request");
    Case {
        event,
        diff: "merge-base(commit, head)..head",
        changed: files(&["src/model.py"]),
        status: "building: pull request #10 into main; src/model.py matches src/**",
    }
}

fn pr_closed(forge: &mut Forge) -> Case {
    forge.git(&["checkout", "-q", "-b", "feature"]);
    let head = forge.change(&[("src/model.py", "m\n")], "model");
    forge.git(&["checkout", "-q", "main"]);
    let base = forge.head();
    Case {
        event: forge.github_pull_request("closed", 9, &base, "feature", &head),
        diff: "none",
        changed: files(&[]),
        status: "skipped: pull request #9 closed",
    }
}

fn gitlab_merge_request(forge: &mut Forge) -> Case {
    forge.git(&["checkout", "-q", "-b", "feature"]);
    let oldrev = forge.change(&[("docs/guide.md", "v2\n")], "docs");
    let head = forge.change(&[("src/model.py", "m\n")], "model");
    forge.git(&["checkout", "-q", "main"]);
    forge.change(&[("src/train.py", "v2\n")], "train on main");
    Case {
        event: forge.gitlab_merge_request(3, "feature", &head, &oldrev),
        diff: "merge-base(main, head)..head",
        changed: files(&["docs/guide.md", "src/model.py"]),
        status: "building: pull request #3 into main; src/model.py matches src/**",
    }
}

/// A branch of two commits is pushed for the first time; `main` has moved on since it branched.
fn new_branch(forge: &mut Forge) -> Case {
    forge.git(&["checkout", "-q", "-b", "feature/x"]);
    forge.change(&[("src/feature.py", "f\n")], "feature");
    let after = forge.change(&[("docs/feature.md", "f\n")], "docs");
    forge.git(&["checkout", "-q", "main"]);
    forge.change(&[("src/train.py", "v2\n")], "train on main");
    Case {
        event: forge.github_push("refs/heads/feature/x", ZERO, &after, false, "docs"),
        diff: "merge-base(main, head)..head",
        changed: files(&["docs/feature.md", "src/feature.py"]),
        status: "building: push to feature/x; src/feature.py is not ignored",
    }
}

fn new_branch_no_commits(forge: &mut Forge) -> Case {
    let after = forge.head();
    forge.git(&["branch", "release/1"]);
    Case {
        event: forge.github_push("refs/heads/release/1", ZERO, &after, false, "initial"),
        diff: "merge-base(main, head)..head",
        changed: files(&[]),
        status: "skipped: no files changed",
    }
}

/// The forge's default branch is `develop` (it was `main` when the mirror first fetched); `feature`
/// branches from `develop`, and `main` has a change `develop` lacks. The mirror's `HEAD` must follow.
fn new_branch_default_head(forge: &mut Forge) -> Case {
    forge.fetch();
    forge.git(&["checkout", "-q", "-b", "develop"]);
    forge.change(&[("src/develop.py", "d\n")], "develop");
    forge.git(&["checkout", "-q", "-b", "feature"]);
    let after = forge.change(&[("docs/feature.md", "f\n")], "docs");
    forge.git(&["checkout", "-q", "main"]);
    forge.change(&[("src/train.py", "v2\n")], "train on main");
    forge.git(&["checkout", "-q", "develop"]);
    Case {
        event: forge.gitlab_push("refs/heads/feature", ZERO, &after, None),
        diff: "merge-base(HEAD, head)..head",
        // Against `main`, `src/develop.py` would count as changed too and the push would build.
        changed: files(&["docs/feature.md"]),
        status: "skipped: only docs/**, **/*.md changed",
    }
}

fn first_push_of_default_branch(forge: &mut Forge) -> Case {
    let after = forge.head();
    Case {
        event: forge.github_push("refs/heads/main", ZERO, &after, false, "initial"),
        diff: "every file",
        changed: files(&["cloudbuild.yaml", "docs/guide.md", "src/train.py"]),
        status: "building: push to main; cloudbuild.yaml is not ignored",
    }
}

/// `main` had a commit changing `src/train.py` (fetched), then the branch is rewritten to a commit
/// changing docs only. A two-dot diff of the tips would list `src/train.py` (reverted) and build.
fn force_push_rewrite(forge: &mut Forge) -> (String, String) {
    let start = forge.head();
    let before = forge.change(&[("src/train.py", "v2\n")], "train");
    forge.fetch();
    forge.git(&["reset", "-q", "--hard", &start]);
    let after = forge.change(&[("docs/guide.md", "v2\n")], "docs instead");
    (before, after)
}

fn force_push_flagged(forge: &mut Forge) -> Case {
    let (before, after) = force_push_rewrite(forge);
    Case {
        event: forge.github_push("refs/heads/main", &before, &after, true, "docs instead"),
        diff: "merge-base(commit, head)..head",
        changed: files(&["docs/guide.md"]),
        status: "skipped: only docs/**, **/*.md changed",
    }
}

fn force_push_unflagged(forge: &mut Forge) -> Case {
    let (before, after) = force_push_rewrite(forge);
    Case {
        event: forge.gitlab_push("refs/heads/main", &before, &after, Some("main")),
        diff: "before..after",
        changed: files(&["docs/guide.md"]),
        status: "skipped: only docs/**, **/*.md changed",
    }
}

/// The old tip was pushed and replaced before the mirror ever fetched it: the changed files cannot be
/// known, so the docs-only push builds, saying why.
fn force_push_old_tip_unknown(forge: &mut Forge) -> Case {
    let start = forge.head();
    let before = forge.change(&[("src/train.py", "v2\n")], "train");
    forge.git(&["reset", "-q", "--hard", &start]);
    let after = forge.change(&[("docs/guide.md", "v2\n")], "docs instead");
    Case {
        event: forge.gitlab_push("refs/heads/main", &before, &after, Some("main")),
        diff: "before..after",
        changed: Err("commit {before} before the push is not in the mirror".to_string()),
        status: "building: push to main; changed files unknown (commit {before} before the push is not in the mirror)",
    }
}

fn tag_push(forge: &mut Forge) -> Case {
    let after = forge.change(&[("docs/guide.md", "v2\n")], "docs [skip ci]");
    forge.git(&["tag", "v1.0.0"]);
    Case {
        event: forge.github_push("refs/tags/v1.0.0", ZERO, &after, false, "docs [skip ci]"),
        diff: "none",
        changed: files(&[]),
        status: "building: tag v1.0.0; [skip ci] ignored: skip markers apply to pushes only; tags are not path-filtered",
    }
}

fn deleted_branch(forge: &mut Forge) -> Case {
    forge.git(&["branch", "old"]);
    forge.fetch();
    let before = forge.head();
    forge.git(&["branch", "-q", "-D", "old"]);
    Case {
        event: forge.github_push("refs/heads/old", &before, ZERO, false, ""),
        diff: "none",
        changed: files(&[]),
        status: "skipped: branch old deleted",
    }
}

fn manual_run(forge: &mut Forge) -> Case {
    let after = forge.change(&[("docs/guide.md", "v2\n")], "docs");
    Case {
        event: forge.manual("main", &after),
        diff: "none",
        changed: files(&[]),
        status: "building: manual run on main; manual runs are not path-filtered",
    }
}

/// The mirror's own edge cases, below what an event can name: a `Range` from the zero SHA, a head the
/// mirror lacks, unrelated histories, a base branch it does not have; build files read byte for byte.
#[test]
fn mirror_edge_cases() {
    let mut forge = Forge::new();
    let first = forge.head();
    forge.git(&["checkout", "-q", "--orphan", "other"]);
    forge.git(&["rm", "-q", "-r", "--cached", "."]);
    let unrelated = forge.change(&[("other.txt", "o\n")], "unrelated");
    forge.git(&["checkout", "-q", "-f", "main"]);
    let binary = [0u8, 159, 146, 150, b'\n', 255];
    std::fs::write(forge.repo.path().join("data.bin"), binary).expect("write");
    let head = forge.repo.commit("binary");
    forge.fetch();
    let missing = "1234567890123456789012345678901234567890";
    let range = |from: &str, to: &str| DiffBase::Range { from: from.to_string(), to: to.to_string() };
    let unknown = |reason: &str| ChangedFiles::Unknown { reason: reason.to_string() };
    let cases = [
        (range(ZERO, &head), unknown("commit 0000000 before the push is not in the mirror")),
        (range(&first, missing), unknown("commit 1234567 is not in the mirror")),
        (
            range(&unrelated, &head),
            unknown(&format!(
                "commit {} before the push and commit {} share no history",
                short(&unrelated),
                short(&head)
            )),
        ),
        (
            DiffBase::MergeBase { base: Rev::Branch("gone".into()), head: head.clone() },
            unknown("branch gone is not in the mirror"),
        ),
        (DiffBase::EveryFile { commit: missing.into() }, unknown("commit 1234567 is not in the mirror")),
        (range(&first, &head), ChangedFiles::Files(vec!["data.bin".into()])),
    ];
    for (base, expected) in cases {
        assert_eq!(forge.mirror.changed_files(&base), expected, "{base:?}");
    }
    assert_eq!(forge.mirror.read_file(&head, "data.bin").expect("reads"), Some(binary.to_vec()));
    assert_eq!(forge.mirror.read_file(&head, "src").expect("reads"), None, "a directory is not a file");
    assert_eq!(forge.mirror.read_file(&head, "nope.yaml").expect("reads"), None);
    assert_eq!(forge.mirror.read_file(missing, "data.bin").expect("reads"), None);
    assert_eq!(forge.mirror.resolve("main").expect("resolves"), Some(head.clone()));
    assert_eq!(forge.mirror.resolve("HEAD").expect("resolves"), Some(head));
    assert_eq!(forge.mirror.resolve("--output=x").expect("resolves"), None);
    assert_eq!(forge.mirror.resolve("no-such-branch").expect("resolves"), None);
}
