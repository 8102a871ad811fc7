//! Event normalisation: one webhook delivery from GitHub, GitLab or Gitea in, one [`Incoming`] out.
//!
//! Every forge's push, tag push, branch creation and deletion, and pull/merge request becomes the same
//! [`Event`], so nothing after this module knows which forge sent it. Deliveries that are real but start
//! nothing (GitHub's `create`/`delete`, which duplicate a `push`; comments on plain issues and commits;
//! edited or deleted comments; label edits) come back as [`Incoming::Ignored`] with a reason, not as
//! errors: the forge did nothing wrong, and the server answers them 2xx so the forge does not mark the
//! hook as failing.
//!
//! A new comment on a pull/merge request becomes a [`Comment`]: it may carry the approval command of an
//! untrusted build waiting in `PENDING` (Cloud Build's `/gcbrun`, docs/SPEC.md §18). This module only says who
//! wrote what on which request, and what the forge says of the writer's rights ([`Association`]); whether
//! the text is a command and the writer may give it is the server's decision. Only a comment's creation
//! counts: an edit could turn an old, harmless comment into an approval after the fact.
//!
//! The body must already be verified ([`super::verify`]). Parsing reads only the fields listed on
//! [`Event`] and [`Comment`]; the changed files are never taken from a payload's commit lists (forges
//! truncate them), the caller computes them from git (docs/SPEC.md §10). A missing or mistyped field is an
//! [`EventError`] naming its path in the JSON (`pull_request.base.ref`), and any input, however broken,
//! gives an error, not a panic.

mod gitea;
mod github;
mod gitlab;
mod payload;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

use super::git_ref::GitRef;
use super::headers;
use payload::Node;

/// The forge that sent a delivery: the server knows it from the endpoint (`/hooks/github`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Forge {
    GitHub,
    GitLab,
    /// Gitea and Forgejo (Forgejo also sends the `X-Gitea-*` headers).
    Gitea,
}

/// What one delivery is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Incoming {
    /// GitHub's `ping`, sent when a hook is created: answer 2xx, start nothing.
    Ping,
    /// A delivery this module understands and deliberately does not act on. `kind` is the forge's event
    /// name (`create`, `issues`, `pull_request`), `reason` says why it starts nothing.
    Ignored {
        kind: String,
        reason: String,
    },
    Event(Box<Event>),
    /// A new comment on a pull/merge request, which may approve a build waiting for one.
    Comment(Box<Comment>),
}

/// A push, tag, pull request or manual run, the same for every forge (docs/SPEC.md §10).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub repo: Repo,
    pub kind: Kind,
    /// The branch pushed, the tag, or for a pull request its head branch (Cloud Build's `BRANCH_NAME`).
    pub git_ref: GitRef,
    /// The ref's commit before the push: 40 zeros when the push created it, `None` when the forge does not
    /// say (pull requests opened rather than updated, Gitea branch deletions).
    pub before: Option<String>,
    /// The commit to build: the ref's new commit, or a pull request's head. 40 zeros when the push deleted
    /// the ref (there is nothing to build then).
    pub after: String,
    /// A pull request's base commit (the base branch's tip when the event was sent), when the forge sends
    /// it (GitHub, Gitea; GitLab merge request hooks do not).
    pub base: Option<String>,
    /// The message of the commit `after`, when the payload carries it. Skip markers are read from here.
    pub head_message: Option<String>,
    /// Every commit message of the payload, oldest first as the forge lists them. Forges truncate this
    /// list (GitLab sends at most 20): it is for display, never for decisions.
    pub messages: Vec<String>,
    /// The login of the person (or bot) whose action sent the event.
    pub sender: String,
    /// The forge's id of this delivery (`X-GitHub-Delivery`, GitLab's `Idempotency-Key` or else
    /// `X-Gitlab-Event-UUID`, `X-Gitea-Delivery`): the same on redelivery, so the server dedupes by it.
    pub delivery: Option<String>,
    /// The push created the ref (`before` is all zeros).
    pub created: bool,
    /// The push deleted the ref (`after` is all zeros).
    pub deleted: bool,
    /// The forge says the push rewrote history. Only GitHub says so; elsewhere a force push shows up as
    /// `before` not being an ancestor of `after`, which the caller checks (see [`super::DiffBase`]).
    pub forced: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repo {
    /// `owner/name` (GitLab: the project's `path_with_namespace`, which may have several levels).
    pub full_name: String,
    /// The HTTPS clone URL.
    pub clone_url: String,
    /// The default branch, when the payload names it: new branches are diffed against it.
    pub default_branch: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A push to a branch (including its creation and deletion).
    Push,
    /// A tag pushed or deleted.
    Tag,
    PullRequest(PullRequest),
    /// A run somebody asked for through the API or CLI, for a branch or tag.
    Manual,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequest {
    pub action: PrAction,
    pub number: u64,
    /// The branch the pull request wants to merge into: what a `pull_request` trigger's `branch` matches.
    pub base_branch: String,
    pub head_branch: String,
    /// The clone URL of the repository holding the head branch; `None` when that repository was deleted.
    pub head_repo_url: Option<String>,
    /// The head branch lives in another repository: such builds get no secrets and cannot promote.
    pub fork: bool,
}

/// A new comment on a pull/merge request: may carry an approval command (`/gcbrun`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    /// The repository the pull request wants to merge into, read as for the other events.
    pub repo: Repo,
    /// The pull request's number: GitHub's issue number (pull requests and issues share them), GitLab's
    /// merge request `iid`, Gitea's index.
    pub number: u64,
    /// The comment's text, verbatim (not trimmed: what counts as a command is the reader's rule).
    pub body: String,
    /// The login of the person (or bot) who wrote the comment.
    pub author: String,
    /// What the forge says about the author's rights on the repository.
    pub association: Association,
    /// The forge's id of this delivery, from the same headers as [`Event::delivery`].
    pub delivery: Option<String>,
}

/// What the forge says about a commenter's relation to the repository. Only GitHub says anything
/// (`comment.author_association`); GitLab and Gitea payloads carry no such field, so their comments are
/// [`Association::Unknown`] and the server must ask the forge (or its own list of approvers).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Association {
    /// GitHub `OWNER`: owns the repository.
    Owner,
    /// GitHub `MEMBER`: a member of the organisation that owns the repository.
    Member,
    /// GitHub `COLLABORATOR`: invited to collaborate on the repository.
    Collaborator,
    /// Anything else the forge names (`CONTRIBUTOR`, `FIRST_TIMER`, `FIRST_TIME_CONTRIBUTOR`, `MANNEQUIN`,
    /// `NONE`), verbatim.
    Other(String),
    /// The forge does not say (GitLab and Gitea payloads carry no such field).
    Unknown,
}

impl Association {
    /// The forge names the author an owner, member or collaborator. This is GitHub's word, not a
    /// permission check: a read-only collaborator or an organisation member without write access passes
    /// too, so a server that needs write access asks the forge's permission API as well.
    pub fn may_approve(&self) -> bool {
        matches!(self, Association::Owner | Association::Member | Association::Collaborator)
    }
}

/// What happened to a pull request. Actions that do not change its code (labels, reviews, title edits)
/// are [`Incoming::Ignored`] instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrAction {
    Opened,
    Reopened,
    /// New commits on the head branch (GitHub `synchronize`, Gitea `synchronized`, GitLab `update` with
    /// `oldrev`).
    Synchronized,
    Closed,
    Merged,
}

impl PrAction {
    /// Closed and merged requests have nothing left to check.
    pub fn is_open(self) -> bool {
        !matches!(self, PrAction::Closed | PrAction::Merged)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("the request has no `{header}` header")]
    MissingHeader { header: &'static str },
    #[error("the `{header}` header is sent {count} times; it must be sent once")]
    DuplicateHeader { header: &'static str, count: usize },
    #[error("the body is form-encoded\n\nhint: set the webhook's content type to `application/json`")]
    FormEncoded,
    #[error("the body is not valid JSON: {message}")]
    NotJson { message: String },
    #[error("`{field}` is missing")]
    Missing { field: String },
    #[error("`{field}` should be {expected}, found {found}")]
    WrongType { field: String, expected: &'static str, found: &'static str },
    #[error("`{field}`: {message}")]
    Invalid { field: String, message: String },
}

/// Normalises one delivery. `headers` are the request's headers (names in any case), `body` the raw bytes
/// the signature was verified over.
pub fn parse(forge: Forge, headers: &[(String, String)], body: &[u8]) -> Result<Incoming, EventError> {
    parse_body(forge, headers, Body::Raw(body))
}

fn parse_body(forge: Forge, headers: &[(String, String)], body: Body<'_>) -> Result<Incoming, EventError> {
    match forge {
        Forge::GitHub => github::parse(headers, body),
        Forge::GitLab => gitlab::parse(headers, body),
        Forge::Gitea => gitea::parse(headers, body),
    }
}

/// A request body, read as JSON only by the events that need it: an ignored kind is answered whatever
/// its body holds. Tests hand in an already parsed value, to try thousands of variants of a payload
/// without serialising each.
#[derive(Clone, Copy)]
enum Body<'a> {
    Raw(&'a [u8]),
    #[cfg(test)]
    Parsed(&'a serde_json::Value),
}

impl<'a> Body<'a> {
    /// Parses the body as JSON. GitHub can be configured to send `payload=<urlencoded JSON>` instead;
    /// that is refused with a hint rather than decoded, so one content type is ever verified and stored.
    fn json(self) -> Result<std::borrow::Cow<'a, serde_json::Value>, EventError> {
        match self {
            Body::Raw(bytes) if bytes.starts_with(b"payload=") => Err(EventError::FormEncoded),
            // serde_json limits nesting to 128 levels: a deeply nested body is an error, not a stack overflow.
            Body::Raw(bytes) => serde_json::from_slice(bytes)
                .map(std::borrow::Cow::Owned)
                .map_err(|e| EventError::NotJson { message: e.to_string() }),
            #[cfg(test)]
            Body::Parsed(value) => Ok(std::borrow::Cow::Borrowed(value)),
        }
    }
}

/// The value of the first of `names` that was sent.
fn header_value<'h>(headers: &'h [(String, String)], names: &[&'static str]) -> Result<Option<&'h str>, EventError> {
    for name in names {
        match headers::one(headers, name) {
            Ok(Some(value)) => return Ok(Some(value)),
            Ok(None) => {}
            Err(count) => return Err(EventError::DuplicateHeader { header: name, count }),
        }
    }
    Ok(None)
}

/// The event name header, which every forge sends.
fn event_name<'h>(headers: &'h [(String, String)], names: &[&'static str]) -> Result<&'h str, EventError> {
    header_value(headers, names)?.ok_or(EventError::MissingHeader { header: names[0] })
}

fn delivery(headers: &[(String, String)], names: &[&'static str]) -> Result<Option<String>, EventError> {
    Ok(header_value(headers, names)?.map(str::to_string))
}

fn ignored(kind: &str, reason: impl Into<String>) -> Incoming {
    Incoming::Ignored { kind: kind.to_string(), reason: reason.into() }
}

/// `None` when `action` is the forge's word for a new comment (`created`), else why the delivery of
/// event `kind` is ignored: an edit must not approve, so only a comment's creation counts.
fn unless_new_comment(kind: &str, action: &str, created: &str) -> Option<Incoming> {
    if action == created {
        return None;
    }
    Some(match action {
        "edited" | "update" => ignored(kind, "the comment was edited; only a new comment counts"),
        "deleted" => ignored(kind, "the comment was deleted"),
        other => ignored(kind, format!("action `{other}` is not a new comment")),
    })
}

/// What a push payload says, forge by forge, before it becomes an [`Event`].
struct Push<'a> {
    repo: Repo,
    /// The full ref (`refs/heads/main`) and the JSON field it was read from.
    full_ref: (&'a str, &'static str),
    before: Option<String>,
    after: String,
    /// `head_commit.message` where the forge sends a head commit (GitHub, newer Gitea).
    head_message: Option<String>,
    /// `(id, message)` of every listed commit.
    commits: Vec<(String, String)>,
    sender: String,
    delivery: Option<String>,
    forced: bool,
}

impl Push<'_> {
    fn into_incoming(self) -> Result<Incoming, EventError> {
        let (full_ref, field) = self.full_ref;
        let git_ref = match GitRef::from_full(full_ref) {
            Ok(Some(git_ref)) => git_ref,
            Ok(None) => return Ok(ignored("push", format!("ref `{full_ref}` is neither a branch nor a tag"))),
            Err(message) => return Err(EventError::Invalid { field: field.to_string(), message }),
        };
        let head_message = self
            .head_message
            .or_else(|| self.commits.iter().find(|(id, _)| *id == self.after).map(|(_, message)| message.clone()));
        Ok(Incoming::Event(Box::new(Event {
            repo: self.repo,
            kind: if git_ref.is_tag() { Kind::Tag } else { Kind::Push },
            git_ref,
            created: self.before.as_deref().is_some_and(is_zero),
            deleted: is_zero(&self.after),
            before: self.before,
            after: self.after,
            base: None,
            head_message,
            messages: self.commits.into_iter().map(|(_, message)| message).collect(),
            sender: self.sender,
            delivery: self.delivery,
            forced: self.forced,
        })))
    }
}

/// What a pull/merge request payload says.
struct Pull {
    repo: Repo,
    pr: PullRequest,
    before: Option<String>,
    head: String,
    base: Option<String>,
    head_message: Option<String>,
    sender: String,
    delivery: Option<String>,
}

impl Pull {
    /// `fields` name where the head and base branch were read, for errors.
    fn into_incoming(self, fields: [&str; 2]) -> Result<Incoming, EventError> {
        for (name, field) in [&self.pr.head_branch, &self.pr.base_branch].into_iter().zip(fields) {
            super::git_ref::check_name(name)
                .map_err(|message| EventError::Invalid { field: field.to_string(), message })?;
        }
        Ok(Incoming::Event(Box::new(Event {
            repo: self.repo,
            git_ref: GitRef::Branch(self.pr.head_branch.clone()),
            kind: Kind::PullRequest(self.pr),
            before: self.before,
            after: self.head,
            base: self.base,
            head_message: self.head_message,
            messages: Vec::new(),
            sender: self.sender,
            delivery: self.delivery,
            created: false,
            deleted: false,
            forced: false,
        })))
    }
}

/// All zeros: the "no commit" SHA forges send for a created ref's `before` and a deleted ref's `after`.
fn is_zero(sha: &str) -> bool {
    sha.bytes().all(|b| b == b'0')
}

/// The zero SHA that stands for "no commit" when a forge sends no SHA at all (Gitea's `delete` event).
const ZERO_SHA: &str = "0000000000000000000000000000000000000000";

/// Reads `node` as a repository; the field names of its full name and clone URL differ by forge.
fn repo(node: &Node<'_>, name_key: &str, url_key: &str) -> Result<Repo, EventError> {
    let default_branch = node.opt_string("default_branch")?;
    if let Some(name) = default_branch {
        // It may reach git (new branches are diffed against it), so it must be a name git accepts.
        super::git_ref::check_name(name)
            .map_err(|message| EventError::Invalid { field: format!("{}.default_branch", node.path()), message })?;
    }
    Ok(Repo {
        full_name: node.name(name_key)?.to_string(),
        clone_url: node.name(url_key)?.to_string(),
        default_branch: default_branch.map(str::to_string),
    })
}

/// `(id, message)` of every entry of `commits`.
fn commits(root: &Node<'_>) -> Result<Vec<(String, String)>, EventError> {
    root.items("commits")?
        .iter()
        .map(|commit| Ok((commit.string("id")?.to_string(), commit.string("message")?.to_string())))
        .collect()
}
