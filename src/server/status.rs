//! Commit statuses on GitHub (docs/SPEC.md §12): `POST {api}/repos/{owner}/{repo}/statuses/{sha}`. Posted in
//! order by one task (a `success` must not be overtaken by the `pending` before it), retried three
//! times; a failure is logged, never a reason to fail a build.

use tokio::sync::mpsc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitState {
    Pending,
    Success,
    Failure,
    Error,
}

impl CommitState {
    fn as_str(self) -> &'static str {
        match self {
            CommitState::Pending => "pending",
            CommitState::Success => "success",
            CommitState::Failure => "failure",
            CommitState::Error => "error",
        }
    }
}

pub struct Post {
    pub api: String,
    pub token: String,
    pub repository: String,
    pub sha: String,
    pub state: CommitState,
    pub description: String,
    pub target_url: String,
    pub context: String,
}

pub struct Reporter {
    queue: mpsc::UnboundedSender<Post>,
}

impl Reporter {
    /// Starts the posting task (needs a tokio runtime).
    pub fn new() -> Reporter {
        let (queue, mut posts) = mpsc::unbounded_channel::<Post>();
        tokio::spawn(async move {
            // Each post carries its own forge's token.
            let http = crate::io::http::Client::new(None, Some(std::time::Duration::from_secs(10)));
            while let Some(post) = posts.recv().await {
                send(&http, &post).await;
            }
        });
        Reporter { queue }
    }

    pub async fn post(&self, post: Post) {
        let _ = self.queue.send(post);
    }
}

async fn send(http: &crate::io::http::Client, post: &Post) {
    let url = format!("{}/repos/{}/statuses/{}", post.api, post.repository, post.sha);
    // GitHub cuts descriptions at 140 characters; cut on a character boundary ourselves.
    let description: String = post.description.chars().take(140).collect();
    let body = serde_json::json!({
        "state": post.state.as_str(),
        "target_url": post.target_url,
        "description": description,
        "context": post.context,
    });
    for attempt in 0..3u32 {
        let request = http
            .request(crate::io::http::Method::POST, &url)
            .bearer_auth(&post.token)
            .header("Accept", "application/vnd.github+json")
            .json(&body);
        match http.send(&url, request).await {
            Ok((status, _)) if (200..300).contains(&status) => return,
            Ok((status, _)) if (400..500).contains(&status) => {
                let status = crate::io::http::status_text(status);
                tracing::warn!(url = %url, status = %status, "the forge refused a commit status");
                return;
            }
            Ok((status, _)) => {
                let status = crate::io::http::status_text(status);
                tracing::warn!(url = %url, status = %status, attempt, "commit status failed");
            }
            Err(e) => tracing::warn!(url = %url, error = %e, attempt, "commit status failed"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(500 * 2u64.pow(attempt))).await;
    }
}
