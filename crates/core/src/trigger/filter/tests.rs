//! Trigger decisions: the case matrix of peers.md §2.6 with explicit file lists (the changed files a
//! repository mirror would compute for each case), then skip markers, regexes, matching order and
//! reasons. Triggers are written as YAML and loaded by the real config loader.

use super::*;
use crate::config::{Pos, Spanned, load};
use crate::trigger::{GitRef, PullRequest, Repo};

/// A trigger cannot set a built-in, `_PR_NUMBER` included: the file is refused at the key's line.
#[test]
fn a_trigger_setting_a_built_in_is_refused_at_its_key() {
    let text = "steps:\n- name: busybox\ntriggers:\n- name: pr\n  event: pull_request\n  substitutions: {_RUN: x, _PR_NUMBER: none}\n";
    let Err(diagnostics) = load("pipewright.yaml", text.as_bytes(), &[]) else { panic!("loaded") };
    let errors: Vec<String> = diagnostics.errors().map(|d| d.render("pipewright.yaml")).collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with("pipewright.yaml:6:"), "{errors:?}");
    assert!(
        errors[0]
            .contains("triggers[0].substitutions._PR_NUMBER: built-in substitution `_PR_NUMBER` cannot be overridden"),
        "{errors:?}"
    );
}

fn triggers(yaml: &str) -> Vec<Trigger> {
    let text = format!("steps:\n- name: busybox\ntriggers:\n{yaml}");
    match load("pipewright.yaml", text.as_bytes(), &[]) {
        Ok(loaded) => loaded.config.extensions.triggers,
        Err(diagnostics) => {
            panic!("{:?}", diagnostics.errors().map(|d| d.render("pipewright.yaml")).collect::<Vec<_>>())
        }
    }
}

/// The example of docs/SPEC.md §2, plus a feature-branch trigger and a release trigger.
const TRIGGERS: &str = r#"
- name: main
  event: push
  branch: '^main$'
  ignoredFiles: ['docs/**', '**/*.md']
- name: pr-checks
  event: pull_request
  branch: '^main$'
  includedFiles: ['components/**', 'pipelines/**', 'tests/**']
  substitutions: {_RUN: 'false'}
  concurrency: {group: 'pr-${_PR_NUMBER}', cancelInProgress: true}
- name: feature
  event: push
  branch: '^feature/'
  includedFiles: ['components/**']
- name: release
  event: tag
  tag: '^v\d+\.\d+\.\d+$'
  ignoredFiles: ['**']
- name: any-branch
  event: push
"#;

const A: &str = "1111111111111111111111111111111111111111";
const B: &str = "2222222222222222222222222222222222222222";
const ZERO: &str = "0000000000000000000000000000000000000000";

fn base_event(kind: Kind, git_ref: GitRef) -> Event {
    Event {
        repo: Repo {
            full_name: "acme/churn".to_string(),
            clone_url: "https://git.example.com/acme/churn.git".to_string(),
            default_branch: Some("main".to_string()),
        },
        kind,
        git_ref,
        before: Some(A.to_string()),
        after: B.to_string(),
        base: None,
        head_message: Some("Change things".to_string()),
        messages: vec!["Change things".to_string()],
        sender: "alice".to_string(),
        delivery: Some("d-1".to_string()),
        created: false,
        deleted: false,
        forced: false,
    }
}

fn push(branch: &str) -> Event {
    base_event(Kind::Push, GitRef::Branch(branch.to_string()))
}

fn created(branch: &str) -> Event {
    Event { before: Some(ZERO.to_string()), created: true, ..push(branch) }
}

fn forced(branch: &str) -> Event {
    Event { forced: true, ..push(branch) }
}

fn tag(name: &str) -> Event {
    Event { before: Some(ZERO.to_string()), created: true, ..base_event(Kind::Tag, GitRef::Tag(name.to_string())) }
}

fn pr(number: u64, head: &str, base: &str) -> Event {
    let kind = Kind::PullRequest(PullRequest {
        action: PrAction::Opened,
        number,
        base_branch: base.to_string(),
        head_branch: head.to_string(),
        head_repo_url: Some("https://git.example.com/bob/churn.git".to_string()),
        fork: true,
    });
    Event {
        before: None,
        base: Some(A.to_string()),
        head_message: None,
        ..base_event(kind, GitRef::Branch(head.to_string()))
    }
}

fn with_message(event: Event, message: &str) -> Event {
    Event { head_message: Some(message.to_string()), ..event }
}

fn files(list: &[&str]) -> ChangedFiles {
    ChangedFiles::Files(list.iter().map(|f| f.to_string()).collect())
}

fn unknown(reason: &str) -> ChangedFiles {
    ChangedFiles::Unknown { reason: reason.to_string() }
}

/// `trigger | status line`: what the dashboard and the commit status show.
fn summary(decision: &Decision) -> String {
    let trigger = match decision {
        Decision::Build { trigger, .. } => Some(trigger.as_str()),
        Decision::Skip { trigger, .. } => trigger.as_deref(),
    };
    format!("{} | {decision}", trigger.unwrap_or("-"))
}

#[track_caller]
fn check(triggers: &[Trigger], event: &Event, changed: ChangedFiles, manual: bool, expected: &str) {
    assert_eq!(summary(&decide(triggers, event, changed, manual)), expected);
}

/// `n` files below `dir/`, and then `last` if given.
fn many(n: usize, dir: &str, last: Option<&str>) -> ChangedFiles {
    let mut list: Vec<String> = (0..n).map(|i| format!("{dir}/section-{}/page-{i}.html", i % 50)).collect();
    list.extend(last.map(str::to_string));
    ChangedFiles::Files(list)
}

/// peers.md §2.6, row by row. GitHub's, Cloud Build's, Woodpecker's and GitLab's behaviour differ per
/// row; ours is docs/SPEC.md §10's: changed files from git (never from payload lists), Cloud Build's filter rule,
/// no filtering for tags and manual runs, and building whenever the files are unknown.
#[test]
fn case_matrix() {
    let t = triggers(TRIGGERS);
    #[rustfmt::skip]
    let cases: Vec<(&str, Event, ChangedFiles, bool, &str)> = vec![
        // Push to an existing branch: the files of before..after.
        ("push, code and docs", push("main"), files(&["components/train/model.py", "docs/index.md"]), false,
            "main | building: push to main; components/train/model.py is not ignored"),
        ("push, docs only", push("main"), files(&["docs/index.md", "README.md", "docs/img/a.png"]), false,
            "main | skipped: only docs/**, **/*.md changed"),
        ("push, nested markdown only", push("main"), files(&["components/train/README.md"]), false,
            "main | skipped: only **/*.md changed"),
        ("push, branch without filters", push("develop"), files(&["docs/index.md"]), false,
            "any-branch | building: push to develop; no path filters"),
        // Pull request: merge-base(base, head)..head; `branch` is the base branch.
        ("pr into main, component changed", pr(7, "feature/x", "main"), files(&["README.md", "components/eval/eval.py"]), false,
            "pr-checks | building: pull request #7 into main; components/eval/eval.py matches components/**"),
        ("pr into main, nothing included", pr(7, "feature/x", "main"), files(&["README.md", "docs/a.md"]), false,
            "pr-checks | skipped: no change matches components/**, pipelines/**, tests/**"),
        ("pr into another base", pr(8, "main", "release/1.x"), files(&["components/a.py"]), false,
            "- | skipped: no trigger matches"),
        // First push of a new branch: merge-base(default branch, after)..after.
        ("new branch with commits", created("feature/x"), files(&["components/train/model.py"]), false,
            "feature | building: push to feature/x; components/train/model.py matches components/**"),
        ("new branch at an existing commit", created("feature/y"), files(&[]), false,
            "feature | skipped: no files changed"),
        ("new branch, no filters", created("hotfix"), files(&[]), false,
            "any-branch | building: push to hotfix; no path filters"),
        ("new branch, base missing from the mirror", created("feature/z"), unknown("merge base with main not found"), false,
            "feature | building: push to feature/z; changed files unknown (merge base with main not found)"),
        // Force push: merge-base(before, after)..after.
        ("force push, docs only", forced("feature/x"), files(&["docs/guide.md"]), false,
            "feature | skipped: no change matches components/**"),
        ("force push, component changed", forced("feature/x"), files(&["docs/guide.md", "components/a/Dockerfile"]), false,
            "feature | building: push to feature/x; components/a/Dockerfile matches components/**"),
        ("force push, old tip gone from the mirror", forced("main"), unknown("before commit 1111111 not in the mirror"), false,
            "main | building: push to main; changed files unknown (before commit 1111111 not in the mirror)"),
        // Tag push: never path-filtered, whatever the files (the trigger ignores `**`).
        ("tag, nothing changed", tag("v1.2.3"), files(&[]), false,
            "release | building: tag v1.2.3; tags are not path-filtered"),
        ("tag, files unknown", tag("v1.2.3"), unknown("tags are not diffed"), false,
            "release | building: tag v1.2.3; tags are not path-filtered"),
        ("tag not matching the regex", tag("v1.2"), files(&[]), false, "- | skipped: no trigger matches"),
        // Empty commit: nothing changed.
        ("empty commit, filters", push("main"), files(&[]), false, "main | skipped: no files changed"),
        ("empty commit, no filters", push("develop"), files(&[]), false,
            "any-branch | building: push to develop; no path filters"),
        // Huge diff: GitHub caps the list at 3,000 files and misses a match past it; git has no cap here.
        ("3,001 files, only docs", push("main"), many(3_001, "docs", None), false,
            "main | skipped: only docs/** changed"),
        ("3,001 files, the code change last", push("main"), many(3_000, "docs", Some("pipelines/train.py")), false,
            "main | building: push to main; pipelines/train.py is not ignored"),
        ("3,001 files in a pr, the match last", pr(9, "big", "main"), many(3_000, "docs", Some("tests/test_train.py")), false,
            "pr-checks | building: pull request #9 into main; tests/test_train.py matches tests/**"),
        ("diff too large or too slow", push("main"), unknown("diff timed out after 10 s"), false,
            "main | building: push to main; changed files unknown (diff timed out after 10 s)"),
        // Skip markers: pushes only.
        ("skip marker on a push", with_message(push("main"), "Fix typo [skip ci]"), files(&["components/a.py"]), false,
            "main | skipped: [skip ci] in the head commit message"),
        ("skip marker on a tag", with_message(tag("v1.2.3"), "Release [ci skip]"), files(&[]), false,
            "release | building: tag v1.2.3; [ci skip] ignored: skip markers apply to pushes only; tags are not path-filtered"),
        ("skip marker on a pr", with_message(pr(7, "feature/x", "main"), "WIP [no ci]"), files(&["tests/t.py"]), false,
            "pr-checks | building: pull request #7 into main; [no ci] ignored: skip markers apply to pushes only; tests/t.py matches tests/**"),
        ("skip marker on a manual run", with_message(push("main"), "[skip pipewright]"), files(&["docs/a.md"]), true,
            "main | building: manual run on main; [skip pipewright] ignored: skip markers apply to pushes only; manual runs are not path-filtered"),
        // Deleted refs and closed pull requests build nothing.
        ("branch deleted", Event { after: ZERO.to_string(), deleted: true, ..push("main") }, files(&[]), false,
            "- | skipped: branch main deleted"),
    ];
    for (name, event, changed, manual, expected) in cases {
        assert_eq!(summary(&decide(&t, &event, changed, manual)), expected, "{name}");
    }
}

/// The last row of the matrix: a skipped build must not leave a required check pending, so the status
/// line of a skip is what the server posts as a *success* status.
#[test]
fn skipped_status_lines() {
    let t = triggers(TRIGGERS);
    let decision = decide(&t, &push("main"), files(&["docs/index.html", "docs/img/logo.png"]), false);
    assert!(!decision.is_build());
    assert_eq!(decision.to_string(), "skipped: only docs/** changed");
    assert_eq!(decision.reason(), "only docs/** changed");
}

#[test]
fn skip_markers() {
    let t = triggers("- name: all\n  event: push\n");
    let check = |message: &str, expected: &str| {
        let event = with_message(push("main"), message);
        assert_eq!(decide(&t, &event, files(&["a.py"]), false).to_string(), expected, "{message:?}");
    };
    check("[skip ci]", "skipped: [skip ci] in the head commit message");
    check("Fix\n\nreally [CI SKIP] this time", "skipped: [ci skip] in the head commit message");
    check("[No Ci] wip", "skipped: [no ci] in the head commit message");
    check("wip [skip pipewright]", "skipped: [skip pipewright] in the head commit message");
    check("Update\n\nskip-checks: true", "skipped: skip-checks: true in the head commit message");
    check("skip ci please", "building: push to main; no path filters");
    // Only the head commit counts: an earlier commit of the push asking to skip does not.
    let event = Event { messages: vec!["[skip ci] first".to_string(), "second".to_string()], ..push("main") };
    assert!(decide(&t, &with_message(event, "second"), files(&["a.py"]), false).is_build());
    // A payload without the head message (GitLab lists only some commits) cannot be skipped by marker.
    let event = Event { head_message: None, ..push("main") };
    assert!(decide(&t, &event, files(&["a.py"]), false).is_build());
}

#[test]
fn regexes_search_unless_anchored() {
    let unanchored = triggers("- name: t\n  event: push\n  branch: main\n");
    let anchored = triggers("- name: t\n  event: push\n  branch: '^main$'\n");
    let inverted = triggers("- name: t\n  event: push\n  branch: '^main$'\n  invertRegex: true\n");
    // The validator refuses this one; decide still treats it sensibly: nothing to invert, every ref matches.
    let inverted_without_regex =
        vec![Trigger { name: Some(str("t")), event: Some(str("push")), invert_regex: true, ..Trigger::default() }];
    let tags = triggers("- name: t\n  event: tag\n  tag: 'v1'\n");
    let cases: &[(&[Trigger], Event, bool)] = &[
        (&unanchored, push("main"), true),
        (&unanchored, push("not-main"), true),
        (&unanchored, push("maintenance"), true),
        (&unanchored, push("develop"), false),
        (&anchored, push("main"), true),
        (&anchored, push("not-main"), false),
        (&anchored, push("main2"), false),
        (&inverted, push("main"), false),
        (&inverted, push("develop"), true),
        (&inverted, push("not-main"), true),
        (&inverted_without_regex, push("anything"), true),
        (&tags, tag("v1.0"), true),
        (&tags, tag("release-v1"), true),
        (&tags, tag("v2.0"), false),
        // A `tag` trigger never fires for a branch, nor a `push` trigger for a tag.
        (&tags, push("v1"), false),
        (&unanchored, tag("main"), false),
    ];
    for (triggers, event, expected) in cases {
        let decision = decide(triggers, event, files(&["a.py"]), false);
        assert_eq!(decision.is_build(), *expected, "{} {:?}", event.git_ref.name(), decision);
    }
}

#[test]
fn first_match_wins_even_when_it_skips() {
    let t = triggers(
        "- name: docs-only\n  event: push\n  branch: '^main$'\n  includedFiles: ['docs/**']\n\
         - name: everything\n  event: push\n",
    );
    check(
        &t,
        &push("main"),
        files(&["docs/a.md"]),
        false,
        "docs-only | building: push to main; docs/a.md matches docs/**",
    );
    // The first trigger matched the event, so its path filter decides; `everything` is not consulted.
    check(&t, &push("main"), files(&["src/a.py"]), false, "docs-only | skipped: no change matches docs/**");
    check(&t, &push("dev"), files(&["src/a.py"]), false, "everything | building: push to dev; no path filters");
}

#[test]
fn pull_requests_match_their_base_branch() {
    let t = triggers("- name: into-main\n  event: pull_request\n  branch: '^main$'\n");
    check(
        &t,
        &pr(1, "feature", "main"),
        files(&["a"]),
        false,
        "into-main | building: pull request #1 into main; no path filters",
    );
    check(&t, &pr(2, "main", "develop"), files(&["a"]), false, "- | skipped: no trigger matches");
    // A push to main is not a pull request.
    check(&t, &push("main"), files(&["a"]), false, "- | skipped: no trigger matches");
    let closed = |action| {
        let mut event = pr(3, "feature", "main");
        if let Kind::PullRequest(pr) = &mut event.kind {
            pr.action = action;
        }
        event
    };
    check(&t, &closed(PrAction::Closed), files(&["a"]), false, "- | skipped: pull request #3 closed");
    check(&t, &closed(PrAction::Merged), files(&["a"]), false, "- | skipped: pull request #3 merged");
    check(
        &t,
        &closed(PrAction::Synchronized),
        files(&["a"]),
        false,
        "into-main | building: pull request #3 into main; no path filters",
    );
}

#[test]
fn pull_request_substitutions_and_concurrency() {
    let t = triggers(
        "- name: pr\n  event: pull_request\n  substitutions: {_RUN: 'false'}\n  \
         concurrency: {group: 'pr-${_PR_NUMBER}', cancelInProgress: true}\n",
    );
    let Decision::Build { substitutions, concurrency, .. } =
        decide(&t, &pr(42, "feature/x", "main"), files(&["a"]), false)
    else {
        panic!("expected a build")
    };
    // Only the trigger's own keys: the pull request's `_PR_NUMBER`, … are built-ins the plan takes
    // from the job.
    let expected: BTreeMap<String, String> = [("_RUN".to_string(), "false".to_string())].into();
    assert_eq!(substitutions, expected);
    assert_eq!(concurrency, Some(Concurrency { group: "pr-${_PR_NUMBER}".to_string(), cancel_in_progress: true }));

    // Pushes get only the trigger's own substitutions.
    let t = triggers("- name: p\n  event: push\n  substitutions: {_ENV: dev}\n");
    let Decision::Build { substitutions, concurrency, .. } = decide(&t, &push("main"), files(&["a"]), false) else {
        panic!("expected a build")
    };
    assert_eq!(substitutions.into_iter().collect::<Vec<_>>(), [("_ENV".to_string(), "dev".to_string())]);
    assert_eq!(concurrency, None);
}

#[test]
fn manual_runs() {
    let t = triggers(
        "- name: main\n  event: push\n  branch: '^main$'\n  includedFiles: ['src/**']\n\
         - name: release\n  event: tag\n  tag: '^v'\n\
         - name: by-hand\n  event: manual\n  branch: '^experiment/'\n",
    );
    check(
        &t,
        &push("main"),
        files(&[]),
        true,
        "main | building: manual run on main; manual runs are not path-filtered",
    );
    check(&t, &tag("v1"), files(&[]), true, "release | building: manual run on tag v1; no path filters");
    check(
        &t,
        &push("experiment/lr"),
        files(&[]),
        true,
        "by-hand | building: manual run on experiment/lr; no path filters",
    );
    // `event: manual` triggers never fire for a webhook.
    check(&t, &push("experiment/lr"), files(&["a"]), false, "- | skipped: no trigger matches");
    check(&t, &push("develop"), files(&[]), true, "- | skipped: no trigger matches");
    // An event of kind Manual is a manual run whatever the flag says.
    let event = base_event(Kind::Manual, GitRef::Branch("main".to_string()));
    check(&t, &event, files(&[]), false, "main | building: manual run on main; manual runs are not path-filtered");
}

fn str(value: &str) -> Spanned<String> {
    Spanned::new(value.to_string(), Pos { line: 1, col: 1 })
}

/// Triggers the config validator would refuse still get a decision, never a panic.
#[test]
fn unvalidated_triggers() {
    let bad_regex =
        Trigger { name: Some(str("bad")), event: Some(str("push")), branch: Some(str("(")), ..Trigger::default() };
    let unnamed = Trigger { event: Some(str("push")), ..Trigger::default() };
    let no_event = Trigger { name: Some(str("no-event")), ..Trigger::default() };
    let bad_glob = Trigger {
        name: Some(str("bad-glob")),
        event: Some(str("push")),
        included_files: vec![str("src/[a")],
        ..Trigger::default()
    };
    let rooted_glob = Trigger { ignored_files: vec![str("/docs/**")], ..bad_glob.clone() };
    check(
        std::slice::from_ref(&bad_regex),
        &push("main"),
        files(&[]),
        false,
        "- | skipped: no trigger matches (trigger bad: branch ( is not a valid regex)",
    );
    check(
        &[bad_regex, unnamed],
        &push("main"),
        files(&[]),
        false,
        "triggers[1] | building: push to main; no path filters",
    );
    check(&[no_event], &push("main"), files(&[]), false, "- | skipped: no trigger matches");
    let decision = decide(&[bad_glob], &push("main"), files(&["a"]), false);
    assert!(decision.is_build());
    assert!(
        decision
            .reason()
            .starts_with("push to main; path filters not applied: `includedFiles` glob `src/[a` is invalid: "),
        "{decision}"
    );
    check(
        &[rooted_glob],
        &push("main"),
        files(&["docs/a"]),
        false,
        "bad-glob | building: push to main; path filters not applied: `ignoredFiles` glob `/docs/**` starts with `/`; globs are relative to the repository root",
    );
    check(&[], &push("main"), files(&[]), false, "- | skipped: no trigger matches");
}

/// 50,000 changed files (docs/SPEC.md §16: a path-filter decision on a 50k-file repository within 50 ms). Only the
/// result is checked here; `decide_50k_timing` measures.
fn fifty_thousand(last: Option<&str>) -> ChangedFiles {
    many(50_000 - usize::from(last.is_some()), "docs", last)
}

#[test]
fn decide_on_50k_files() {
    let t = triggers(TRIGGERS);
    check(&t, &push("main"), fifty_thousand(None), false, "main | skipped: only docs/** changed");
    check(
        &t,
        &push("main"),
        fifty_thousand(Some("components/train/model.py")),
        false,
        "main | building: push to main; components/train/model.py is not ignored",
    );
    check(
        &t,
        &pr(5, "big", "main"),
        fifty_thousand(Some("pipelines/p.py")),
        false,
        "pr-checks | building: pull request #5 into main; pipelines/p.py matches pipelines/**",
    );
    check(
        &t,
        &pr(5, "big", "main"),
        fifty_thousand(None),
        false,
        "pr-checks | skipped: no change matches components/**, pipelines/**, tests/**",
    );
}

/// `cargo test --release --lib trigger::filter::tests::decide_50k_timing -- --ignored --nocapture`
#[test]
#[ignore = "a measurement, run in release mode"]
fn decide_50k_timing() {
    let t = triggers(TRIGGERS);
    let cases = [
        ("push, all ignored (worst case: every file, two passes)", push("main"), fifty_thousand(None)),
        ("pr, no file included (every file, both sets)", pr(5, "big", "main"), fifty_thousand(None)),
        ("push, the one code file last", push("main"), fifty_thousand(Some("src/a.py"))),
    ];
    for (name, event, changed) in cases {
        let runs = 20;
        let mut times = Vec::new();
        for _ in 0..runs {
            let changed = changed.clone();
            let start = std::time::Instant::now();
            std::hint::black_box(decide(&t, &event, changed, false));
            times.push(start.elapsed());
        }
        times.sort();
        println!("{name}: median {:?}, max {:?} over {runs} runs", times[runs / 2], times[runs - 1]);
    }
}
