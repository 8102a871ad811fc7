//! GitHub deliveries: `X-GitHub-Event` names the event, the body is its payload (peers.md §5.1).

use super::payload::Node;
use super::{
    Body, EventError, Incoming, PrAction, Pull, PullRequest, Push, commits, delivery, event_name, ignored, repo,
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
