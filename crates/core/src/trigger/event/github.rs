//! GitHub deliveries: `X-GitHub-Event` names the event, the body is its payload (peers.md §5.1).

use super::payload::Node;
use super::{
    Association, Body, Comment, EventError, Incoming, PrAction, Pull, PullRequest, Push, commits, delivery, event_name,
    ignored, repo, unless_new_comment,
};

pub fn parse(headers: &[(String, String)], body: Body<'_>) -> Result<Incoming, EventError> {
    let kind = event_name(headers, &["X-GitHub-Event"])?;
    let delivery = delivery(headers, &["X-GitHub-Delivery"])?;
    match kind {
        "ping" => {
            Node::root(body.json()?.as_ref())?;
            Ok(Incoming::Ping)
        }
        "push" => push(body.json()?.as_ref(), delivery),
        "pull_request" => pull_request(body.json()?.as_ref(), delivery),
        "issue_comment" => issue_comment(body.json()?.as_ref(), delivery),
        "pull_request_review_comment" => review_comment(body.json()?.as_ref(), delivery),
        // A review's text is not read for commands: approving takes a comment of its own.
        "pull_request_review" => Ok(ignored(kind, "a review is not a comment; only comments are read for commands")),
        // A new or deleted branch or tag also sends a `push` with a zero SHA, which carries the commits.
        "create" | "delete" => Ok(ignored(kind, "GitHub also sends a `push` event for this ref; that one is built")),
        _ => Ok(ignored(kind, format!("pipewright does not build on `{kind}` events"))),
    }
}

fn push(body: &serde_json::Value, delivery: Option<String>) -> Result<Incoming, EventError> {
    let root = Node::root(body)?;
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
        forced: root.opt_bool("forced")?.unwrap_or(false),
    }
    .into_incoming()
}

fn pull_request(body: &serde_json::Value, delivery: Option<String>) -> Result<Incoming, EventError> {
    let root = Node::root(body)?;
    let pr = root.object("pull_request")?;
    let action = match root.string("action")? {
        "opened" => PrAction::Opened,
        "reopened" => PrAction::Reopened,
        "synchronize" => PrAction::Synchronized,
        "closed" if pr.opt_bool("merged")? == Some(true) => PrAction::Merged,
        "closed" => PrAction::Closed,
        other => return Ok(ignored("pull_request", format!("action `{other}` does not change the code"))),
    };
    let repository = repo(&root.object("repository")?, "full_name", "clone_url")?;
    let base = pr.object("base")?;
    let head = pr.object("head")?;
    // `head.repo` is null once the fork it came from is deleted.
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
        // `before` is sent with `synchronize` only: the head before the new commits.
        before: root.opt_sha("before")?,
        head: head.sha("sha")?,
        base: Some(base.sha("sha")?),
        head_message: None,
        sender: root.object("sender")?.name("login")?.to_string(),
        delivery,
    }
    .into_incoming(["pull_request.head.ref", "pull_request.base.ref"])
}

/// A comment in a pull request's conversation. GitHub sends comments on issues and on pull requests as
/// the same event; only a pull request's issue has `issue.pull_request`.
fn issue_comment(body: &serde_json::Value, delivery: Option<String>) -> Result<Incoming, EventError> {
    let root = Node::root(body)?;
    if let Some(ignored) = unless_new_comment("issue_comment", root.string("action")?, "created") {
        return Ok(ignored);
    }
    let issue = root.object("issue")?;
    if issue.opt_object("pull_request")?.is_none() {
        return Ok(ignored("issue_comment", "the comment is on an issue, not on a pull request"));
    }
    comment(&root, issue.u64("number")?, delivery)
}

/// A comment on a line of a pull request's diff.
fn review_comment(body: &serde_json::Value, delivery: Option<String>) -> Result<Incoming, EventError> {
    let root = Node::root(body)?;
    if let Some(ignored) = unless_new_comment("pull_request_review_comment", root.string("action")?, "created") {
        return Ok(ignored);
    }
    let number = root.object("pull_request")?.u64("number")?;
    comment(&root, number, delivery)
}

fn comment(root: &Node<'_>, number: u64, delivery: Option<String>) -> Result<Incoming, EventError> {
    let comment = root.object("comment")?;
    Ok(Incoming::Comment(Box::new(Comment {
        repo: repo(&root.object("repository")?, "full_name", "clone_url")?,
        number,
        body: comment.string("body")?.to_string(),
        author: comment.object("user")?.name("login")?.to_string(),
        // The commenter's, not `pull_request.author_association` (the pull request's author).
        association: association(comment.opt_string("author_association")?),
        delivery,
    })))
}

/// GitHub's `author_association`, compared exactly: GitHub sends it in capitals, and anything else can
/// never approve.
fn association(value: Option<&str>) -> Association {
    match value {
        None => Association::Unknown,
        Some("OWNER") => Association::Owner,
        Some("MEMBER") => Association::Member,
        Some("COLLABORATOR") => Association::Collaborator,
        Some(other) => Association::Other(other.to_string()),
    }
}
