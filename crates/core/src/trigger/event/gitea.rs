//! Gitea and Forgejo deliveries: `X-Gitea-Event` names the event (Forgejo sends it too, beside its own
//! `X-Forgejo-Event`); payloads follow GitHub's shapes with Gitea's action names (peers.md §5.1).

use super::payload::Node;
use super::{
    Association, Body, Comment, Event, EventError, Incoming, Kind, PrAction, Pull, PullRequest, Push, ZERO_SHA,
    commits, delivery, event_name, ignored, repo, unless_new_comment,
};
use crate::trigger::git_ref::{GitRef, check_name};

pub fn parse(headers: &[(String, String)], body: Body<'_>) -> Result<Incoming, EventError> {
    let kind = event_name(headers, &["X-Gitea-Event", "X-Forgejo-Event", "X-Gogs-Event"])?;
    let delivery = delivery(headers, &["X-Gitea-Delivery", "X-Forgejo-Delivery", "X-Gogs-Delivery"])?;
    match kind {
        "push" => push(body.json()?.as_ref(), delivery),
        "pull_request" => pull_request(body.json()?.as_ref(), delivery),
        // Comments on issues and on pull requests both come as `issue_comment` (`X-Gitea-Event-Type` says
        // `pull_request_comment` for the latter); `pull_request_comment` here is a submitted review.
        "issue_comment" => issue_comment(body.json()?.as_ref(), delivery),
        "pull_request_comment" => {
            Ok(ignored(kind, "Gitea sends this for a review; a comment on a pull request comes as `issue_comment`"))
        }
        // Gitea sends a `push` for every created branch and tag and for deleted tags, but not for a branch
        // deleted through git or the UI: that `delete` is the only word of it.
        "create" => Ok(ignored(kind, "Gitea also sends a `push` event for this ref; that one is built")),
        "delete" => delete(body.json()?.as_ref(), delivery),
        _ => Ok(ignored(kind, format!("pipewright does not build on `{kind}` events"))),
    }
}

fn push(body: &serde_json::Value, delivery: Option<String>) -> Result<Incoming, EventError> {
    let root = Node::root(body)?;
    // Gitea 1.x sends `head_commit`; Gogs-era payloads only list the commits.
    let head_message = match root.opt_object("head_commit")? {
        Some(head) => Some(head.string("message")?.to_string()),
        None => None,
    };
    Push {
        repo: repo(&root.object("repository")?, "full_name", "clone_url")?,
        full_ref: (root.name("ref")?, "ref"),
        before: Some(root.sha("before")?),
        after: root.sha("after")?,
        head_message,
        commits: commits(&root)?,
        sender: root.object("sender")?.name("login")?.to_string(),
        delivery,
        forced: false,
    }
    .into_incoming()
}

fn delete(body: &serde_json::Value, delivery: Option<String>) -> Result<Incoming, EventError> {
    let root = Node::root(body)?;
    match root.string("ref_type")? {
        "branch" => {}
        "tag" => return Ok(ignored("delete", "Gitea also sends a `push` event for a deleted tag; that one is used")),
        other => return Ok(ignored("delete", format!("`{other}` is neither a branch nor a tag"))),
    }
    // The ref is the short name here (`feature`, not `refs/heads/feature`).
    let name = root.name("ref")?;
    check_name(name).map_err(|message| EventError::Invalid { field: "ref".to_string(), message })?;
    Ok(Incoming::Event(Box::new(Event {
        repo: repo(&root.object("repository")?, "full_name", "clone_url")?,
        kind: Kind::Push,
        git_ref: GitRef::Branch(name.to_string()),
        before: None,
        after: ZERO_SHA.to_string(),
        base: None,
        head_message: None,
        messages: Vec::new(),
        sender: root.object("sender")?.name("login")?.to_string(),
        delivery,
        created: false,
        deleted: true,
        forced: false,
    })))
}

fn pull_request(body: &serde_json::Value, delivery: Option<String>) -> Result<Incoming, EventError> {
    let root = Node::root(body)?;
    let pr = root.object("pull_request")?;
    let action = match root.string("action")? {
        "opened" => PrAction::Opened,
        "reopened" => PrAction::Reopened,
        "synchronized" => PrAction::Synchronized,
        "closed" if pr.opt_bool("merged")? == Some(true) => PrAction::Merged,
        "closed" => PrAction::Closed,
        other => return Ok(ignored("pull_request", format!("action `{other}` does not change the code"))),
    };
    let repository = repo(&root.object("repository")?, "full_name", "clone_url")?;
    let base = pr.object("base")?;
    let head = pr.object("head")?;
    let head_repo = head.opt_object("repo")?;
    let fork = match &head_repo {
        Some(head_repo) => !head_repo.name("full_name")?.eq_ignore_ascii_case(&repository.full_name),
        None => true,
    };
    Pull {
        pr: PullRequest {
            action,
            number: root.opt_u64("number")?.map_or_else(|| pr.u64("number"), Ok)?,
            base_branch: base.name("ref")?.to_string(),
            head_branch: head.name("ref")?.to_string(),
            head_repo_url: head_repo.map(|r| r.name("clone_url").map(str::to_string)).transpose()?,
            fork,
        },
        repo: repository,
        before: None,
        head: head.sha("sha")?,
        base: Some(base.sha("sha")?),
        head_message: None,
        sender: root.object("sender")?.name("login")?.to_string(),
        delivery,
    }
    .into_incoming(["pull_request.head.ref", "pull_request.base.ref"])
}

/// A comment on a pull request. Gitea does not say what the author may do in the repository, so the
/// association is [`Association::Unknown`].
fn issue_comment(body: &serde_json::Value, delivery: Option<String>) -> Result<Incoming, EventError> {
    let root = Node::root(body)?;
    if let Some(ignored) = unless_new_comment("issue_comment", root.string("action")?, "created") {
        return Ok(ignored);
    }
    let issue = root.object("issue")?;
    // Newer Gitea and Forgejo send `is_pull`; every version gives a pull request's issue a `pull_request`.
    let is_pull = root.opt_bool("is_pull")? == Some(true) || issue.opt_object("pull_request")?.is_some();
    if !is_pull {
        return Ok(ignored("issue_comment", "the comment is on an issue, not on a pull request"));
    }
    let comment = root.object("comment")?;
    let author = match comment.opt_object("user")? {
        Some(user) => user.name("login")?,
        None => root.object("sender")?.name("login")?,
    };
    Ok(Incoming::Comment(Box::new(Comment {
        repo: repo(&root.object("repository")?, "full_name", "clone_url")?,
        number: issue.u64("number")?,
        body: comment.string("body")?.to_string(),
        author: author.to_string(),
        association: Association::Unknown,
        delivery,
    })))
}
