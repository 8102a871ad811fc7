//! GitLab deliveries: `X-Gitlab-Event` names the hook (`Push Hook`, `Tag Push Hook`, `Merge Request
//! Hook`, `Note Hook`), the body is its payload (peers.md §5.1).

use super::payload::Node;
use super::{
    Association, Body, Comment, EventError, Incoming, PrAction, Pull, PullRequest, Push, Repo, commits, delivery,
    event_name, ignored, repo, unless_new_comment,
};

pub fn parse(headers: &[(String, String)], body: Body<'_>) -> Result<Incoming, EventError> {
    let kind = event_name(headers, &["X-Gitlab-Event"])?;
    // `Idempotency-Key` (GitLab 17.4+) stays the same across retries; the event UUID is the older id.
    let delivery = delivery(headers, &["Idempotency-Key", "X-Gitlab-Event-UUID"])?;
    match kind {
        "Push Hook" | "Tag Push Hook" => push(body.json()?.as_ref(), delivery),
        "Merge Request Hook" => merge_request(body.json()?.as_ref(), delivery),
        "Note Hook" => note(body.json()?.as_ref(), delivery),
        "System Hook" => Ok(ignored(kind, "system hooks are not built; add a webhook to the project instead")),
        _ => Ok(ignored(kind, format!("pipewright does not build on `{kind}` events"))),
    }
}

fn project(root: &Node<'_>) -> Result<Repo, EventError> {
    repo(&root.object("project")?, "path_with_namespace", "git_http_url")
}

fn push(body: &serde_json::Value, delivery: Option<String>) -> Result<Incoming, EventError> {
    let root = Node::root(body)?;
    Push {
        repo: project(&root)?,
        full_ref: (root.name("ref")?, "ref"),
        before: Some(root.sha("before")?),
        after: root.sha("after")?,
        // GitLab sends no head commit; the commit whose id is `after` is it, when the list holds it.
        head_message: None,
        commits: commits(&root)?,
        sender: root.name("user_username")?.to_string(),
        delivery,
        forced: false,
    }
    .into_incoming()
}

fn merge_request(body: &serde_json::Value, delivery: Option<String>) -> Result<Incoming, EventError> {
    let root = Node::root(body)?;
    let attributes = root.object("object_attributes")?;
    let oldrev = attributes.opt_sha("oldrev")?;
    let action = match attributes.string("action")? {
        "open" => PrAction::Opened,
        "reopen" => PrAction::Reopened,
        // `update` is sent for title and label edits too; only with `oldrev` did the commits change.
        "update" if oldrev.is_some() => PrAction::Synchronized,
        "update" => return Ok(ignored("merge_request", "merge request update without new commits")),
        "close" => PrAction::Closed,
        "merge" => PrAction::Merged,
        other => return Ok(ignored("merge_request", format!("action `{other}` does not change the code"))),
    };
    let source = attributes.object("source")?;
    let fork = match (attributes.opt_u64("source_project_id")?, attributes.opt_u64("target_project_id")?) {
        (Some(source), Some(target)) => source != target,
        _ => source.name("path_with_namespace")? != attributes.object("target")?.name("path_with_namespace")?,
    };
    let last_commit = attributes.object("last_commit")?;
    Pull {
        repo: project(&root)?,
        pr: PullRequest {
            action,
            number: attributes.u64("iid")?,
            base_branch: attributes.name("target_branch")?.to_string(),
            head_branch: attributes.name("source_branch")?.to_string(),
            head_repo_url: Some(source.name("git_http_url")?.to_string()),
            fork,
        },
        before: oldrev,
        head: last_commit.sha("id")?,
        // Merge request hooks do not carry the target branch's commit.
        base: None,
        head_message: last_commit.opt_string("message")?.map(str::to_string),
        sender: root.object("user")?.name("username")?.to_string(),
        delivery,
    }
    .into_incoming(["object_attributes.source_branch", "object_attributes.target_branch"])
}

/// A comment ("note") on a merge request; notes on commits, issues and snippets are ignored. GitLab does
/// not say what the author may do in the project, so the association is [`Association::Unknown`].
fn note(body: &serde_json::Value, delivery: Option<String>) -> Result<Incoming, EventError> {
    let root = Node::root(body)?;
    let attributes = root.object("object_attributes")?;
    // GitLab 17 sends `create` or `update`; earlier versions sent no action, and only for new notes.
    if let Some(action) = attributes.opt_string("action")?
        && let Some(ignored) = unless_new_comment("note", action, "create")
    {
        return Ok(ignored);
    }
    match attributes.string("noteable_type")? {
        "MergeRequest" => {}
        other => return Ok(ignored("note", format!("the note is on `{other}`, not on a merge request"))),
    }
    // GitLab sends no hook for system notes ("added 1 commit"); one that says it is one is refused all
    // the same, since its text is GitLab's, not its author's.
    if attributes.opt_bool("system")? == Some(true) {
        return Ok(ignored("note", "a system note is written by GitLab, not by its author"));
    }
    Ok(Incoming::Comment(Box::new(Comment {
        repo: project(&root)?,
        number: root.object("merge_request")?.u64("iid")?,
        body: attributes.string("note")?.to_string(),
        author: root.object("user")?.name("username")?.to_string(),
        association: Association::Unknown,
        delivery,
    })))
}
