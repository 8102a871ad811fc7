//! Triggers (docs/SPEC.md §10): from a forge's webhook to the decision whether to build.
//!
//! The flow, in the order a server calls it:
//! 1. [`verify`] the request's signature over the raw body, before anything reads it;
//! 2. [`parse`] the body into an [`Incoming`]: a ping, a recognised event we ignore, a normalised
//!    [`Event`] (the same shape for GitHub, GitLab and Gitea), or a new pull request [`Comment`], which
//!    may approve a waiting build;
//! 3. ask [`diff_base`] which commits to diff, compute the changed files from the repository mirror
//!    (the caller's job: this module never touches git), and pass them to [`decide`] together with the
//!    build file's `triggers:` at the event's commit. The [`Decision`] always carries a short human reason.
//!
//! Pure: bytes and strings in, values out. No tokio, no network, no git, no Docker; every function here
//! returns an error or a decision for any input and never panics.

mod diff_base;
mod event;
mod filter;
mod git_ref;
mod headers;
mod path_filter;
mod signature;
mod skip_marker;

pub use diff_base::{DiffBase, Rev, diff_base};
pub use event::{Association, Comment, Event, EventError, Forge, Incoming, Kind, PrAction, PullRequest, Repo, parse};
pub use filter::{ChangedFiles, Concurrency, Decision, decide};
pub use git_ref::GitRef;
pub use headers::{STORED_HEADERS, stored_headers};
pub use signature::{SignatureError, verify, verify_standard_webhooks};
