//! Every real payload of `tests/fixtures/webhooks/` (copied unchanged from the research corpus, see its
//! `MANIFEST.tsv`) and what it normalises to; then the ways a delivery can be wrong.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::*;
use crate::trigger::{ChangedFiles, diff_base};

fn fixtures() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("tests/fixtures/webhooks")
}

fn read(file: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn forge_of(file: &str) -> Forge {
    match file.split('/').next() {
        Some("github") => Forge::GitHub,
        Some("gitlab") => Forge::GitLab,
        Some("gitea") => Forge::Gitea,
        _ => panic!("{file}: no forge directory"),
    }
}

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// The headers a forge sends with an event of `kind`, with a delivery id.
fn forge_headers(forge: Forge, kind: &str) -> Vec<(String, String)> {
    match forge {
        Forge::GitHub => {
            headers(&[("X-GitHub-Event", kind), ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")])
        }
        Forge::GitLab => headers(&[
            ("X-Gitlab-Event", kind),
            ("X-Gitlab-Event-UUID", "13792a34-cac6-4fda-95a8-c58e00a3954e"),
            ("Idempotency-Key", "f5e5f430-f57b-4e6e-9fac-d9128cd7232f"),
        ]),
        Forge::Gitea => headers(&[
            ("X-Gitea-Event", kind),
            ("X-Gitea-Event-Type", kind),
            ("X-Gitea-Delivery", "ba6a4d5c-1a6f-4d76-a3c4-0c5d8a3f6d11"),
            ("X-GitHub-Event", kind),
        ]),
    }
}

/// The delivery id [`forge_headers`] sends and the event must carry.
fn expected_delivery(forge: Forge) -> &'static str {
    match forge {
        Forge::GitHub => "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        Forge::GitLab => "f5e5f430-f57b-4e6e-9fac-d9128cd7232f",
        Forge::Gitea => "ba6a4d5c-1a6f-4d76-a3c4-0c5d8a3f6d11",
    }
}

/// One line per field, so a failing case shows which field differs.
fn render(incoming: &Incoming) -> String {
    let event = match incoming {
        Incoming::Ping => return "ping".to_string(),
        Incoming::Ignored { kind, reason } => return format!("ignored {kind}: {reason}"),
        Incoming::Comment(comment) => {
            return [
                format!("comment #{} by {} {:?}", comment.number, comment.author, comment.association),
                format!(
                    "repo {} {} default {}",
                    comment.repo.full_name,
                    comment.repo.clone_url,
                    comment.repo.default_branch.as_deref().unwrap_or("-")
                ),
                format!("body {:?}", comment.body),
            ]
            .join("\n");
        }
        Incoming::Event(event) => event,
    };
    let kind = match &event.kind {
        Kind::Push => "push".to_string(),
        Kind::Tag => "tag".to_string(),
        Kind::Manual => "manual".to_string(),
        Kind::PullRequest(pr) => format!(
            "pull_request #{} {:?} {} -> {} fork={} head_repo={}",
            pr.number,
            pr.action,
            pr.head_branch,
            pr.base_branch,
            pr.fork,
            pr.head_repo_url.as_deref().unwrap_or("-")
        ),
    };
    let git_ref = match &event.git_ref {
        GitRef::Branch(name) => format!("branch {name}"),
        GitRef::Tag(name) => format!("tag {name}"),
    };
    let flags: Vec<&str> = [(event.created, "created"), (event.deleted, "deleted"), (event.forced, "forced")]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
    let or_dash = |s: Option<&str>| s.unwrap_or("-").to_string();
    [
        kind,
        git_ref,
        format!(
            "repo {} {} default {}",
            event.repo.full_name,
            event.repo.clone_url,
            or_dash(event.repo.default_branch.as_deref())
        ),
        format!("before {}", or_dash(event.before.as_deref())),
        format!("after {}", event.after),
        format!("base {}", or_dash(event.base.as_deref())),
        format!("sender {}", event.sender),
        format!("flags {}", if flags.is_empty() { "-".to_string() } else { flags.join(",") }),
        format!("head {:?} ({} messages)", event.head_message, event.messages.len()),
    ]
    .join("\n")
}

/// (file, event header, expected rendering). Lines of `expected` are compared trimmed.
const PAYLOADS: &[(&str, &str, &str)] = &[
    (
        "gitea/create__branch.json",
        "create",
        "ignored create: Gitea also sends a `push` event for this ref; that one is built",
    ),
    ("gitea/create__tag.json", "create", "ignored create: Gitea also sends a `push` event for this ref; that one is built"),
    (
        "gitea/delete__branch.json",
        "delete",
        "push
         branch feature
         repo gogits/hello-world http://try.gitea.io/gogits/hello-world.git default master
         before -
         after 0000000000000000000000000000000000000000
         base -
         sender unknwon
         flags deleted
         head None (0 messages)",
    ),
    (
        "gitea/issue_comment__created.json",
        "issue_comment",
        "ignored issue_comment: the comment is on an issue, not on a pull request",
    ),
    (
        "gitea/issue_comment__created_on_pull_request.json",
        "issue_comment",
        "comment #2 by unknwon Unknown
         repo gogits/hello-world http://try.gitea.io/gogits/hello-world.git default master
         body \"run gofmt\"",
    ),
    ("gitea/issue_comment__deleted_on_pull_request.json", "issue_comment", "ignored issue_comment: the comment was deleted"),
    (
        "gitea/issue_comment__edited_on_pull_request.json",
        "issue_comment",
        "ignored issue_comment: the comment was edited; only a new comment counts",
    ),
    (
        "gitea/pull_request__opened.json",
        "pull_request",
        "pull_request #1 Opened feature -> master fork=false head_repo=https://try.gitea.io/jcitizen/my-repo.git
         branch feature
         repo jcitizen/my-repo https://try.gitea.io/jcitizen/my-repo.git default master
         before -
         after 2eba238e33607c1fa49253182e9fff42baafa1eb
         base 39af58f1eff02aa308e16913e887c8d50362b474
         sender jcitizen
         flags -
         head None (0 messages)",
    ),
    (
        "gitea/pull_request__synchronized.json",
        "pull_request",
        "pull_request #1 Synchronized feature -> master fork=false head_repo=https://try.gitea.io/jcitizen/my-repo.git
         branch feature
         repo jcitizen/my-repo https://try.gitea.io/jcitizen/my-repo.git default master
         before -
         after 2eba238e33607c1fa49253182e9fff42baafa1eb
         base 39af58f1eff02aa308e16913e887c8d50362b474
         sender jcitizen
         flags -
         head None (0 messages)",
    ),
    (
        "gitea/push.json",
        "push",
        "push
         branch master
         repo gogits/hello-world http://try.gitea.io/gogits/hello-world.git default master
         before 9836a96a253cce25d17988fcf41b8c4205cf779f
         after 4522cbcefc20728a5b72b3a86af35e608622c514
         base -
         sender unknwon
         flags -
         head Some(\"Updated readme\\n\") (1 messages)",
    ),
    (
        "github/create__tag.json",
        "create",
        "ignored create: GitHub also sends a `push` event for this ref; that one is built",
    ),
    (
        "github/delete__tag.json",
        "delete",
        "ignored delete: GitHub also sends a `push` event for this ref; that one is built",
    ),
    (
        "github/issue_comment__created.json",
        "issue_comment",
        "ignored issue_comment: the comment is on an issue, not on a pull request",
    ),
    (
        "github/issue_comment__created_on_pull_request.json",
        "issue_comment",
        "comment #2 by lts-def Collaborator
         repo abc/def-ci-webhook-test https://github.com/abc/def-ci-webhook-test.git default master
         body \"trigger abc\"",
    ),
    ("github/issue_comment__deleted.json", "issue_comment", "ignored issue_comment: the comment was deleted"),
    (
        "github/issue_comment__edited.json",
        "issue_comment",
        "ignored issue_comment: the comment was edited; only a new comment counts",
    ),
    ("github/ping.json", "ping", "ping"),
    ("github/ping__app_hook.json", "ping", "ping"),
    (
        "github/pull_request__closed.json",
        "pull_request",
        "pull_request #2 Closed changes -> master fork=false head_repo=https://github.com/Codertocat/Hello-World.git
         branch changes
         repo Codertocat/Hello-World https://github.com/Codertocat/Hello-World.git default master
         before -
         after ec26c3e57ca3a959ca5aad62de7213c562f8c821
         base f95f852bd8fca8fcc58a9a2d6c842781e32a215e
         sender Codertocat
         flags -
         head None (0 messages)",
    ),
    (
        "github/pull_request__opened.json",
        "pull_request",
        "pull_request #2 Opened changes -> master fork=false head_repo=https://github.com/Codertocat/Hello-World.git
         branch changes
         repo Codertocat/Hello-World https://github.com/Codertocat/Hello-World.git default master
         before -
         after ec26c3e57ca3a959ca5aad62de7213c562f8c821
         base f95f852bd8fca8fcc58a9a2d6c842781e32a215e
         sender Codertocat
         flags -
         head None (0 messages)",
    ),
    (
        "github/pull_request__synchronize.json",
        "pull_request",
        "pull_request #2 Synchronized changes -> master fork=false head_repo=https://github.com/Codertocat/Hello-World.git
         branch changes
         repo Codertocat/Hello-World https://github.com/Codertocat/Hello-World.git default master
         before f95f852bd8fca8fcc58a9a2d6c842781e32a215e
         after ec26c3e57ca3a959ca5aad62de7213c562f8c821
         base f95f852bd8fca8fcc58a9a2d6c842781e32a215e
         sender Codertocat
         flags -
         head None (0 messages)",
    ),
    (
        "github/pull_request_review_comment__created.json",
        "pull_request_review_comment",
        "comment #2 by Codertocat Owner
         repo Codertocat/Hello-World https://github.com/Codertocat/Hello-World.git default master
         body \"Maybe you should use more emoji on this line.\"",
    ),
    (
        "github/push__branch.json",
        "push",
        "push
         branch master
         repo Codertocat/Hello-World https://github.com/Codertocat/Hello-World.git default master
         before a10867b14bb761a232cd80139fbd4c0d33264240
         after 199eddf46df50de8d02e99bf1c5fdb4101338224
         base -
         sender Codertocat
         flags -
         head Some(\"Update README\") (1 messages)",
    ),
    (
        "github/push__branch_create.json",
        "push",
        "push
         branch master
         repo Codertocat/Hello-World https://github.com/Codertocat/Hello-World.git default master
         before 0000000000000000000000000000000000000000
         after 6113728f27ae82c7b1a177c8d03f9e96e0adf246
         base -
         sender Codertocat
         flags created
         head Some(\"Initial commit\") (1 messages)",
    ),
    (
        "github/push__branch_create_with_base_ref.json",
        "push",
        "push
         branch feature-branch
         repo bradrydzewski/drone-test-go https://github.com/bradrydzewski/drone-test-go.git default master
         before 0000000000000000000000000000000000000000
         after d2b75aa7797ec26b088fa2dd527e9d2c052fcedd
         base -
         sender bradrydzewski
         flags created
         head Some(\"Update .drone.yml\") (0 messages)",
    ),
    (
        "github/push__branch_delete.json",
        "push",
        "push
         branch feature-branch
         repo bradrydzewski/drone-test-go https://github.com/bradrydzewski/drone-test-go.git default master
         before d2b75aa7797ec26b088fa2dd527e9d2c052fcedd
         after 0000000000000000000000000000000000000000
         base -
         sender bradrydzewski
         flags deleted
         head None (0 messages)",
    ),
    (
        "github/push__tag_create.json",
        "push",
        "tag
         tag v0.0.1
         repo bradrydzewski/drone-test-go https://github.com/bradrydzewski/drone-test-go.git default master
         before 0000000000000000000000000000000000000000
         after d2b75aa7797ec26b088fa2dd527e9d2c052fcedd
         base -
         sender bradrydzewski
         flags created
         head Some(\"Update .drone.yml\") (0 messages)",
    ),
    (
        "github/push__tag_delete.json",
        "push",
        "tag
         tag simple-tag
         repo Codertocat/Hello-World https://github.com/Codertocat/Hello-World.git default master
         before 6113728f27ae82c7b1a177c8d03f9e96e0adf246
         after 0000000000000000000000000000000000000000
         base -
         sender Codertocat
         flags deleted
         head None (0 messages)",
    ),
    (
        "gitlab/merge_request__merge.json",
        "Merge Request Hook",
        "pull_request #1 Merged feature -> master fork=false head_repo=https://gitlab.com/gitlab-org/hello-world.git
         branch feature
         repo gitlab-org/hello-world https://gitlab.com/gitlab-org/hello-world.git default master
         before -
         after c4c79227ed610f1151f05bbc5be33b4f340d39c8
         base -
         sender sytses
         flags -
         head Some(\"update readme\\n\") (0 messages)",
    ),
    (
        "gitlab/merge_request__open.json",
        "Merge Request Hook",
        "pull_request #1 Opened ms-viewport -> master fork=false head_repo=http://example.com/awesome_space/awesome_project.git
         branch ms-viewport
         repo gitlabhq/gitlab-test http://example.com/gitlabhq/gitlab-test.git default master
         before -
         after da1560886d4f094c3e6c9ef40349f7d38b5d27d7
         base -
         sender user1
         flags -
         head Some(\"fixed readme\") (0 messages)",
    ),
    (
        "gitlab/merge_request__update.json",
        "Merge Request Hook",
        "pull_request #2 Synchronized next-feature -> master fork=false head_repo=http://10.40.8.5:3200/test/woodpecker.git
         branch next-feature
         repo test/woodpecker http://10.40.8.5:3200/test/woodpecker.git default master
         before 6ef047571374c96a2bf13c361efd1fb008b0063e
         after 0ab96a10266b95b4b533dcfd98738015fbe70889
         base -
         sender test
         flags -
         head Some(\"Update state.go\") (0 messages)",
    ),
    ("gitlab/note__commit.json", "Note Hook", "ignored note: the note is on `Commit`, not on a merge request"),
    ("gitlab/note__issue.json", "Note Hook", "ignored note: the note is on `Issue`, not on a merge request"),
    (
        "gitlab/note__merge_request.json",
        "Note Hook",
        "comment #1 by root Unknown
         repo gitlab-org/gitlab-test http://example.com/gitlab-org/gitlab-test.git default master
         body \"This MR needs work.\"",
    ),
    (
        "gitlab/note__merge_request_without_action.json",
        "Note Hook",
        "comment #1 by sytses Unknown
         repo gitlab-org/hello-world https://gitlab.com/gitlab-org/hello-world.git default master
         body \"lgtm\"",
    ),
    (
        "gitlab/push.json",
        "Push Hook",
        "push
         branch master
         repo mike/diaspora http://example.com/mike/diaspora.git default master
         before 95790bf891e76fee5e1747ab589903a6a1f80f22
         after da1560886d4f094c3e6c9ef40349f7d38b5d27d7
         base -
         sender jsmith
         flags -
         head Some(\"fixed readme\\n\") (2 messages)",
    ),
    (
        "gitlab/push__branch_create.json",
        "Push Hook",
        "push
         branch feature
         repo gitlab-org/hello-world https://gitlab.com/gitlab-org/hello-world.git default master
         before 0000000000000000000000000000000000000000
         after c4c79227ed610f1151f05bbc5be33b4f340d39c8
         base -
         sender sytses
         flags created
         head Some(\"update readme\\n\") (1 messages)",
    ),
    (
        "gitlab/push__branch_delete.json",
        "Push Hook",
        "push
         branch feature
         repo gitlab-org/hello-world https://gitlab.com/gitlab-org/hello-world.git default master
         before c4c79227ed610f1151f05bbc5be33b4f340d39c8
         after 0000000000000000000000000000000000000000
         base -
         sender sytses
         flags deleted
         head None (0 messages)",
    ),
    (
        "gitlab/tag_push.json",
        "Tag Push Hook",
        "tag
         tag v1.0.0
         repo jsmith/example http://example.com/jsmith/example.git default master
         before 0000000000000000000000000000000000000000
         after 82b3d5ae55f7080f1e6022629cdb57bfae7cccc7
         base -
         sender jsmith
         flags created
         head Some(\"Merge branch 'some-feature' into 'master'\\n\\nRelease v1.0.0\\n\\nSee merge request jsmith/example!1\") (1 messages)",
    ),
    (
        "gitlab/tag_push__delete.json",
        "Tag Push Hook",
        "tag
         tag v1.0.0
         repo gitlab-org/hello-world https://gitlab.com/gitlab-org/hello-world.git default master
         before 2adc9465c4edfc33834e173fe89436a7cb899a1d
         after 0000000000000000000000000000000000000000
         base -
         sender sytses
         flags deleted
         head None (0 messages)",
    ),
];

/// Every `.json` under the fixtures directory, as `forge/file.json`.
fn payload_files() -> Vec<String> {
    let mut files = Vec::new();
    for forge in std::fs::read_dir(fixtures()).expect("fixtures directory") {
        let forge = forge.expect("entry").path();
        if !forge.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&forge).expect("forge directory") {
            let file = file.expect("entry").path();
            if file.extension().is_some_and(|e| e == "json") {
                let relative = file.strip_prefix(fixtures()).expect("below fixtures");
                files.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn the_table_lists_exactly_the_payloads_on_disk() {
    let mut listed: Vec<String> = PAYLOADS.iter().map(|(file, _, _)| file.to_string()).collect();
    listed.sort();
    assert_eq!(listed, payload_files());
}

#[test]
fn every_payload_normalises() {
    for (file, kind, expected) in PAYLOADS {
        let forge = forge_of(file);
        let incoming = parse(forge, &forge_headers(forge, kind), &read(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let expected: Vec<&str> = expected.lines().map(str::trim).collect();
        assert_eq!(render(&incoming), expected.join("\n"), "{file}");
        let delivery = match &incoming {
            Incoming::Event(event) => &event.delivery,
            Incoming::Comment(comment) => &comment.delivery,
            Incoming::Ping | Incoming::Ignored { .. } => continue,
        };
        assert_eq!(delivery.as_deref(), Some(expected_delivery(forge)), "{file}");
    }
}

/// A fixture with one change made through its JSON.
fn edited(file: &str, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut value: Value = serde_json::from_slice(&read(file)).expect("fixture is JSON");
    edit(&mut value);
    serde_json::to_vec(&value).expect("serialises")
}

fn event(incoming: Result<Incoming, EventError>) -> Event {
    match incoming {
        Ok(Incoming::Event(event)) => *event,
        other => panic!("expected an event, got {other:?}"),
    }
}

#[test]
fn github_force_push_is_flagged() {
    // The corpus has no forced push; GitHub's own field is the only difference.
    let body = edited("github/push__branch.json", |v| v["forced"] = json!(true));
    let e = event(parse(Forge::GitHub, &forge_headers(Forge::GitHub, "push"), &body));
    assert!(e.forced && !e.created && !e.deleted);
}

#[test]
fn pull_requests_from_forks() {
    let h = forge_headers(Forge::GitHub, "pull_request");
    let body = edited("github/pull_request__opened.json", |v| {
        v["pull_request"]["head"]["repo"]["full_name"] = json!("someone/Hello-World");
        v["pull_request"]["head"]["repo"]["clone_url"] = json!("https://github.com/someone/Hello-World.git");
    });
    let Kind::PullRequest(pr) = event(parse(Forge::GitHub, &h, &body)).kind else { panic!("not a PR") };
    assert!(pr.fork);
    assert_eq!(pr.head_repo_url.as_deref(), Some("https://github.com/someone/Hello-World.git"));

    // A deleted fork leaves `head.repo: null`.
    let body = edited("github/pull_request__closed.json", |v| v["pull_request"]["head"]["repo"] = Value::Null);
    let Kind::PullRequest(pr) = event(parse(Forge::GitHub, &h, &body)).kind else { panic!("not a PR") };
    assert!(pr.fork);
    assert_eq!(pr.head_repo_url, None);

    let body = edited("gitlab/merge_request__open.json", |v| v["object_attributes"]["source_project_id"] = json!(99));
    let h = forge_headers(Forge::GitLab, "Merge Request Hook");
    let Kind::PullRequest(pr) = event(parse(Forge::GitLab, &h, &body)).kind else { panic!("not a MR") };
    assert!(pr.fork);
}

#[test]
fn merged_pull_requests() {
    let body = edited("github/pull_request__closed.json", |v| v["pull_request"]["merged"] = json!(true));
    let e = event(parse(Forge::GitHub, &forge_headers(Forge::GitHub, "pull_request"), &body));
    assert!(matches!(e.kind, Kind::PullRequest(PullRequest { action: PrAction::Merged, .. })));
}

#[test]
fn gitea_head_commit_is_used_when_sent() {
    let body = edited("gitea/push.json", |v| {
        v["head_commit"] = json!({"id": "4522cbcefc20728a5b72b3a86af35e608622c514", "message": "from head_commit"})
    });
    let e = event(parse(Forge::Gitea, &forge_headers(Forge::Gitea, "push"), &body));
    assert_eq!(e.head_message.as_deref(), Some("from head_commit"));
}

#[test]
fn ignored_deliveries_say_why() {
    #[track_caller]
    fn check(forge: Forge, kind: &str, body: &[u8], expected: &str) {
        match parse(forge, &forge_headers(forge, kind), body) {
            Ok(Incoming::Ignored { kind, reason }) => assert_eq!(format!("{kind}: {reason}"), expected),
            other => panic!("expected ignored, got {other:?}"),
        }
    }
    check(Forge::GitHub, "issues", b"{}", "issues: pipewright does not build on `issues` events");
    check(
        Forge::GitHub,
        "pull_request",
        &edited("github/pull_request__opened.json", |v| v["action"] = json!("labeled")),
        "pull_request: action `labeled` does not change the code",
    );
    check(
        Forge::GitHub,
        "push",
        &edited("github/push__branch.json", |v| v["ref"] = json!("refs/notes/commits")),
        "push: ref `refs/notes/commits` is neither a branch nor a tag",
    );
    check(
        Forge::GitLab,
        "Merge Request Hook",
        &edited("gitlab/merge_request__update.json", |v| {
            v["object_attributes"].as_object_mut().expect("object").remove("oldrev");
        }),
        "merge_request: merge request update without new commits",
    );
    check(
        Forge::GitLab,
        "Merge Request Hook",
        &edited("gitlab/merge_request__open.json", |v| v["object_attributes"]["action"] = json!("approved")),
        "merge_request: action `approved` does not change the code",
    );
    check(
        Forge::GitLab,
        "Confidential Note Hook",
        b"{}",
        "Confidential Note Hook: pipewright does not build on `Confidential Note Hook` events",
    );
    check(
        Forge::GitLab,
        "System Hook",
        b"{}",
        "System Hook: system hooks are not built; add a webhook to the project instead",
    );
    check(
        Forge::Gitea,
        "delete",
        &edited("gitea/delete__branch.json", |v| v["ref_type"] = json!("tag")),
        "delete: Gitea also sends a `push` event for a deleted tag; that one is used",
    );
    check(Forge::Gitea, "issues", b"{}", "issues: pipewright does not build on `issues` events");
}

/// A fixture edited, as the forge would send it, and what it must give: comments that do not count.
#[test]
fn comments_that_do_not_count() {
    #[track_caller]
    fn check(forge: Forge, kind: &str, body: &[u8], expected: &str) {
        match parse(forge, &forge_headers(forge, kind), body) {
            Ok(Incoming::Ignored { kind, reason }) => assert_eq!(format!("{kind}: {reason}"), expected),
            other => panic!("expected ignored, got {other:?}"),
        }
    }
    let github_pr = |edit: fn(&mut Value)| edited("github/issue_comment__created_on_pull_request.json", edit);
    let (gh, review) = ("issue_comment", "pull_request_review_comment");
    check(
        Forge::GitHub,
        gh,
        &github_pr(|v| v["action"] = json!("edited")),
        "issue_comment: the comment was edited; only a new comment counts",
    );
    check(Forge::GitHub, gh, &github_pr(|v| v["action"] = json!("deleted")), "issue_comment: the comment was deleted");
    check(
        Forge::GitHub,
        gh,
        &github_pr(|v| v["action"] = json!("pinned")),
        "issue_comment: action `pinned` is not a new comment",
    );
    // `null` is how a forge says "not applicable": no pull request.
    check(
        Forge::GitHub,
        gh,
        &github_pr(|v| v["issue"]["pull_request"] = Value::Null),
        "issue_comment: the comment is on an issue, not on a pull request",
    );
    check(
        Forge::GitHub,
        review,
        &edited("github/pull_request_review_comment__created.json", |v| v["action"] = json!("edited")),
        "pull_request_review_comment: the comment was edited; only a new comment counts",
    );
    check(
        Forge::GitHub,
        "pull_request_review",
        b"{}",
        "pull_request_review: a review is not a comment; only comments are read for commands",
    );
    let note = |edit: fn(&mut Value)| edited("gitlab/note__merge_request.json", edit);
    check(
        Forge::GitLab,
        "Note Hook",
        &note(|v| v["object_attributes"]["action"] = json!("update")),
        "note: the comment was edited; only a new comment counts",
    );
    check(
        Forge::GitLab,
        "Note Hook",
        &note(|v| v["object_attributes"]["noteable_type"] = json!("Snippet")),
        "note: the note is on `Snippet`, not on a merge request",
    );
    check(
        Forge::GitLab,
        "Note Hook",
        &note(|v| v["object_attributes"]["system"] = json!(true)),
        "note: a system note is written by GitLab, not by its author",
    );
    check(
        Forge::Gitea,
        "issue_comment",
        &edited("gitea/issue_comment__created_on_pull_request.json", |v| {
            v["issue"]["pull_request"] = Value::Null;
            v["is_pull"] = json!(false);
        }),
        "issue_comment: the comment is on an issue, not on a pull request",
    );
    check(
        Forge::Gitea,
        "pull_request_comment",
        b"{}",
        "pull_request_comment: Gitea sends this for a review; a comment on a pull request comes as `issue_comment`",
    );
}

fn comment(incoming: Result<Incoming, EventError>) -> Comment {
    match incoming {
        Ok(Incoming::Comment(comment)) => *comment,
        other => panic!("expected a comment, got {other:?}"),
    }
}

#[test]
fn gitea_comments_on_pull_requests() {
    let h = forge_headers(Forge::Gitea, "issue_comment");
    // The corpus's Gitea payloads predate `is_pull` (Gitea 1.x and Forgejo send it beside
    // `issue.pull_request`); this is the plain-issue comment with the flag Gitea sets for a pull request.
    let body = edited("gitea/issue_comment__created.json", |v| v["is_pull"] = json!(true));
    let c = comment(parse(Forge::Gitea, &h, &body));
    assert_eq!((c.number, c.author.as_str(), c.body.as_str()), (1, "unknwon", "Got it"));
    // Without `comment.user` the author is the sender (the same person, for a new comment).
    let body = edited("gitea/issue_comment__created_on_pull_request.json", |v| {
        v["comment"].as_object_mut().expect("object").remove("user");
        v["sender"]["login"] = json!("jcitizen");
    });
    assert_eq!(comment(parse(Forge::Gitea, &h, &body)).author, "jcitizen");
}

#[test]
fn associations() {
    // (what GitHub sends as `comment.author_association`, what it becomes, whether it may approve)
    let cases: &[(Value, Association, bool)] = &[
        (json!("OWNER"), Association::Owner, true),
        (json!("MEMBER"), Association::Member, true),
        (json!("COLLABORATOR"), Association::Collaborator, true),
        (json!("CONTRIBUTOR"), Association::Other("CONTRIBUTOR".into()), false),
        (json!("FIRST_TIME_CONTRIBUTOR"), Association::Other("FIRST_TIME_CONTRIBUTOR".into()), false),
        (json!("FIRST_TIMER"), Association::Other("FIRST_TIMER".into()), false),
        (json!("MANNEQUIN"), Association::Other("MANNEQUIN".into()), false),
        (json!("NONE"), Association::Other("NONE".into()), false),
        // GitHub sends capitals; anything else is not one of its words and never approves.
        (json!("owner"), Association::Other("owner".into()), false),
        (json!(""), Association::Other(String::new()), false),
        (Value::Null, Association::Unknown, false),
    ];
    let h = forge_headers(Forge::GitHub, "issue_comment");
    for (value, expected, may_approve) in cases {
        let body = edited("github/issue_comment__created_on_pull_request.json", |v| {
            v["comment"]["author_association"] = value.clone()
        });
        let c = comment(parse(Forge::GitHub, &h, &body));
        assert_eq!((&c.association, c.association.may_approve()), (expected, *may_approve), "{value}");
    }
    let body = edited("github/issue_comment__created_on_pull_request.json", |v| {
        v["comment"].as_object_mut().expect("object").remove("author_association");
    });
    assert_eq!(comment(parse(Forge::GitHub, &h, &body)).association, Association::Unknown);
    // A review comment's association is the commenter's, not `pull_request.author_association`.
    let body = edited("github/pull_request_review_comment__created.json", |v| {
        v["comment"]["author_association"] = json!("NONE")
    });
    let review = forge_headers(Forge::GitHub, "pull_request_review_comment");
    assert_eq!(comment(parse(Forge::GitHub, &review, &body)).association, Association::Other("NONE".into()));
    // GitLab and Gitea do not say.
    let gitlab = comment(parse(
        Forge::GitLab,
        &forge_headers(Forge::GitLab, "Note Hook"),
        &read("gitlab/note__merge_request.json"),
    ));
    let gitea = comment(parse(
        Forge::Gitea,
        &forge_headers(Forge::Gitea, "issue_comment"),
        &read("gitea/issue_comment__created_on_pull_request.json"),
    ));
    for c in [gitlab, gitea] {
        assert!(c.association == Association::Unknown && !c.association.may_approve());
    }
}

#[test]
fn delivery_ids() {
    let body = read("gitlab/push.json");
    let uuid_only = headers(&[("X-Gitlab-Event", "Push Hook"), ("X-Gitlab-Event-UUID", "u-1")]);
    assert_eq!(event(parse(Forge::GitLab, &uuid_only, &body)).delivery.as_deref(), Some("u-1"));
    let none = headers(&[("X-Gitlab-Event", "Push Hook")]);
    assert_eq!(event(parse(Forge::GitLab, &none, &body)).delivery, None);
    // Forgejo without the Gitea copies of its headers.
    let forgejo = headers(&[("X-Forgejo-Event", "push"), ("X-Forgejo-Delivery", "f-1")]);
    assert_eq!(event(parse(Forge::Gitea, &forgejo, &read("gitea/push.json"))).delivery.as_deref(), Some("f-1"));
    let lower = headers(&[("x-github-event", "push"), ("x-github-delivery", "g-1")]);
    assert_eq!(event(parse(Forge::GitHub, &lower, &read("github/push__branch.json"))).delivery.as_deref(), Some("g-1"));
}

#[test]
fn errors_name_what_is_wrong() {
    #[track_caller]
    fn check(forge: Forge, headers: &[(String, String)], body: &[u8], expected: &str) {
        match parse(forge, headers, body) {
            Err(e) => assert_eq!(e.to_string(), expected),
            Ok(other) => panic!("expected `{expected}`, got {other:?}"),
        }
    }
    let gh = |kind: &str| forge_headers(Forge::GitHub, kind);
    let push = |edit: fn(&mut Value)| edited("github/push__branch.json", edit);
    check(Forge::GitHub, &[], b"{}", "the request has no `X-GitHub-Event` header");
    check(Forge::GitLab, &[], b"{}", "the request has no `X-Gitlab-Event` header");
    check(Forge::Gitea, &[], b"{}", "the request has no `X-Gitea-Event` header");
    check(
        Forge::GitHub,
        &headers(&[("X-GitHub-Event", "push"), ("x-github-event", "ping")]),
        b"{}",
        "the `X-GitHub-Event` header is sent 2 times; it must be sent once",
    );
    check(
        Forge::GitHub,
        &gh("push"),
        b"payload=%7B%7D",
        "the body is form-encoded\n\nhint: set the webhook's content type to `application/json`",
    );
    check(Forge::GitHub, &gh("push"), b"", "the body is not valid JSON: EOF while parsing a value at line 1 column 0");
    check(Forge::GitHub, &gh("push"), b"[]", "`(the body)` should be an object, found an array");
    check(Forge::GitHub, &gh("ping"), b"\"zen\"", "`(the body)` should be an object, found a string");
    check(Forge::GitHub, &gh("push"), &push(|v| v["ref"] = Value::Null), "`ref` is missing");
    check(Forge::GitHub, &gh("push"), &push(|v| v["ref"] = json!(7)), "`ref` should be a string, found a number");
    check(
        Forge::GitHub,
        &gh("push"),
        &push(|v| v["ref"] = json!("master")),
        "`ref`: `master` is not a full ref name (expected `refs/heads/…` or `refs/tags/…`)",
    );
    check(
        Forge::GitHub,
        &gh("push"),
        &push(|v| v["ref"] = json!("refs/heads/a..b")),
        "`ref`: `a..b` is not a valid branch or tag name: it contains `..`",
    );
    check(
        Forge::GitHub,
        &gh("push"),
        &push(|v| v["after"] = json!("HEAD")),
        "`after`: `HEAD` is not a commit SHA (40 or 64 lowercase hex digits)",
    );
    check(
        Forge::GitHub,
        &gh("push"),
        &push(|v| v["repository"].as_object_mut().map(|r| r.remove("clone_url")).map(drop).unwrap_or_default()),
        "`repository.clone_url` is missing",
    );
    check(Forge::GitHub, &gh("push"), &push(|v| v["sender"]["login"] = json!("")), "`sender.login`: is empty");
    check(
        Forge::GitHub,
        &gh("push"),
        &push(|v| v["commits"][0]["message"] = json!(null)),
        "`commits[0].message` is missing",
    );
    check(
        Forge::GitHub,
        &gh("pull_request"),
        &edited("github/pull_request__opened.json", |v| v["pull_request"]["base"]["ref"] = json!(["x"])),
        "`pull_request.base.ref` should be a string, found an array",
    );
    check(
        Forge::GitHub,
        &gh("pull_request"),
        &edited("github/pull_request__opened.json", |v| v["number"] = json!(-2)),
        "`number` should be a non-negative integer, found a number",
    );
    check(
        Forge::GitLab,
        &forge_headers(Forge::GitLab, "Merge Request Hook"),
        &edited("gitlab/merge_request__open.json", |v| v["object_attributes"]["last_commit"]["id"] = json!("")),
        "`object_attributes.last_commit.id`: `` is not a commit SHA (40 or 64 lowercase hex digits)",
    );
    check(
        Forge::Gitea,
        &forge_headers(Forge::Gitea, "delete"),
        &edited("gitea/delete__branch.json", |v| v["ref"] = json!("a b")),
        "`ref`: `a b` is not a valid branch or tag name: it contains ` `",
    );
}

#[test]
fn comment_errors_name_the_field() {
    #[track_caller]
    fn check(file: &str, kind: &str, edit: fn(&mut Value), expected: &str) {
        let forge = forge_of(file);
        match parse(forge, &forge_headers(forge, kind), &edited(file, edit)) {
            Err(e) => assert_eq!(e.to_string(), expected, "{file}"),
            Ok(other) => panic!("{file}: expected `{expected}`, got {other:?}"),
        }
    }
    fn remove(v: &mut Value, path: &[&str]) {
        let (last, parents) = path.split_last().expect("a path");
        let parent = parents.iter().fold(v, |v, key| &mut v[*key]);
        parent.as_object_mut().expect("object").remove(*last);
    }
    let gh = "github/issue_comment__created_on_pull_request.json";
    check(gh, "issue_comment", |v| remove(v, &["action"]), "`action` is missing");
    check(gh, "issue_comment", |v| remove(v, &["issue"]), "`issue` is missing");
    check(
        gh,
        "issue_comment",
        |v| v["issue"]["pull_request"] = json!(true),
        "`issue.pull_request` should be an object, found a boolean",
    );
    check(
        gh,
        "issue_comment",
        |v| v["issue"]["number"] = json!("2"),
        "`issue.number` should be a non-negative integer, found a string",
    );
    check(gh, "issue_comment", |v| remove(v, &["comment", "body"]), "`comment.body` is missing");
    check(gh, "issue_comment", |v| v["comment"]["user"]["login"] = json!(""), "`comment.user.login`: is empty");
    check(
        gh,
        "issue_comment",
        |v| v["comment"]["author_association"] = json!(7),
        "`comment.author_association` should be a string, found a number",
    );
    check(gh, "issue_comment", |v| remove(v, &["repository", "full_name"]), "`repository.full_name` is missing");
    check(
        "github/pull_request_review_comment__created.json",
        "pull_request_review_comment",
        |v| remove(v, &["pull_request", "number"]),
        "`pull_request.number` is missing",
    );
    let gl = "gitlab/note__merge_request.json";
    check(
        gl,
        "Note Hook",
        |v| v["object_attributes"]["action"] = json!(1),
        "`object_attributes.action` should be a string, found a number",
    );
    check(
        gl,
        "Note Hook",
        |v| remove(v, &["object_attributes", "noteable_type"]),
        "`object_attributes.noteable_type` is missing",
    );
    check(
        gl,
        "Note Hook",
        |v| v["object_attributes"]["system"] = json!("no"),
        "`object_attributes.system` should be a boolean, found a string",
    );
    check(gl, "Note Hook", |v| remove(v, &["merge_request"]), "`merge_request` is missing");
    check(
        gl,
        "Note Hook",
        |v| v["merge_request"]["iid"] = json!(-1),
        "`merge_request.iid` should be a non-negative integer, found a number",
    );
    check(gl, "Note Hook", |v| v["object_attributes"]["note"] = Value::Null, "`object_attributes.note` is missing");
    check(gl, "Note Hook", |v| v["user"]["username"] = json!([]), "`user.username` should be a string, found an array");
    check(gl, "Note Hook", |v| remove(v, &["project", "git_http_url"]), "`project.git_http_url` is missing");
    let gt = "gitea/issue_comment__created_on_pull_request.json";
    check(gt, "issue_comment", |v| v["is_pull"] = json!("yes"), "`is_pull` should be a boolean, found a string");
    check(gt, "issue_comment", |v| remove(v, &["issue", "number"]), "`issue.number` is missing");
    check(
        gt,
        "issue_comment",
        |v| v["comment"]["user"]["login"] = json!(1),
        "`comment.user.login` should be a string, found a number",
    );
    check(
        gt,
        "issue_comment",
        |v| {
            remove(v, &["comment", "user"]);
            remove(v, &["sender"]);
        },
        "`sender` is missing",
    );
    check(
        gt,
        "issue_comment",
        |v| v["comment"]["body"] = json!({}),
        "`comment.body` should be a string, found an object",
    );
}

/// Small deterministic generator, so the garbage is the same on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: usize) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % bound.max(1)
    }
}

/// Parses `body` as `forge`'s event `kind` and pushes an event on through the rest of the module: none of
/// it may panic, whatever the bytes.
fn parse_everything(forge: Forge, kind: &str, body: &[u8]) {
    if let Ok(Incoming::Event(event)) = parse(forge, &forge_headers(forge, kind), body) {
        let _ = diff_base(&event);
        let _ = crate::trigger::decide(&[], &event, ChangedFiles::Files(Vec::new()), false);
    }
}

#[test]
fn garbage_never_panics() {
    let mut rng = Lcg(0x5eed);
    for (file, kind, _) in PAYLOADS {
        let forge = forge_of(file);
        let body = read(file);
        // Truncated: at 32 evenly spaced lengths, and at every length of the first 32 bytes.
        let lengths = (0..32).map(|i| i * body.len() / 32).chain(0..32.min(body.len()));
        for length in lengths {
            parse_everything(forge, kind, &body[..length]);
        }
        // One byte flipped, or replaced with a byte that matters to JSON.
        for _ in 0..100 {
            let mut bytes = body.clone();
            let at = rng.next(bytes.len());
            bytes[at] = match rng.next(3) {
                0 => bytes[at] ^ (1 << rng.next(8)),
                1 => {
                    let special = b"\"{}[]:,\\0\xff";
                    special[rng.next(special.len())]
                }
                _ => 0x80 + rng.next(0x80) as u8,
            };
            parse_everything(forge, kind, &bytes);
        }
    }
}

/// Every value of every payload replaced, in turn, by a value of each other JSON type: the parser must
/// give an event or a clean error, never a panic, and an error must name a field or the body.
#[test]
fn every_field_with_every_wrong_type() {
    fn paths(value: &Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        out.push(at.clone());
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    at.push(key.clone());
                    paths(child, at, out);
                    at.pop();
                }
            }
            // Arrays: their first element stands for the rest.
            Value::Array(items) if !items.is_empty() => {
                at.push("0".to_string());
                paths(&items[0], at, out);
                at.pop();
            }
            _ => {}
        }
    }
    let replacements = [json!(null), json!(true), json!(-1), json!("x"), json!([]), json!({})];
    for (file, kind, _) in PAYLOADS {
        let mut value: Value = serde_json::from_slice(&read(file)).expect("fixture is JSON");
        let mut all = Vec::new();
        paths(&value, &mut Vec::new(), &mut all);
        let forge = forge_of(file);
        let headers = forge_headers(forge, kind);
        for path in all.iter().skip(1) {
            let pointer = format!("/{}", path.join("/"));
            for replacement in &replacements {
                // Swapped in place and back, so each variant costs one parse, not a copy of the payload.
                let Some(slot) = value.pointer_mut(&pointer) else { continue };
                let original = std::mem::replace(slot, replacement.clone());
                let result = parse_body(forge, &headers, Body::Parsed(&value));
                if let Some(slot) = value.pointer_mut(&pointer) {
                    *slot = original;
                }
                match result {
                    Ok(Incoming::Event(event)) => {
                        let _ = diff_base(&event);
                    }
                    Ok(_) => {}
                    Err(
                        e @ (EventError::Missing { .. } | EventError::WrongType { .. } | EventError::Invalid { .. }),
                    ) => {
                        assert!(e.to_string().starts_with('`'), "{file} {pointer}: {e}");
                    }
                    Err(e) => panic!("{file} {pointer} = {replacement}: unexpected {e}"),
                }
            }
        }
    }
}
