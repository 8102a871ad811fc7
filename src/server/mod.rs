//! `pipewright serve` (docs/SPEC.md §12): webhooks in, builds queued and run, state served as a JSON API and a
//! dashboard.
//!
//! ```text
//! POST /hooks/<forge> ─ verify ─ parse ─ keep (deliveries) ─ 202
//!                                             │ intake: mirror fetch, build file at the commit,
//!                                             ▼ changed files, trigger decision
//!                                     queue (SQLite) ─ scheduler ─ engine ─ record (files)
//!                                             ▲                      │
//!                      API / dashboard ───────┘                      └─ commit statuses
//! ```
//!
//! Nothing is lost between the steps: a delivery is kept before it is answered and marked done in the
//! same transaction that enqueues its build; a build is claimed by one statement. At start-up the server
//! finishes what a killed predecessor left: deliveries not acted on are decided, builds that were running
//! are ended as `INTERNAL_ERROR` with the reason (never re-run: a build may have pushed or promoted part
//! way; `retry` runs it again on purpose), and their containers are removed.

pub mod api;
pub mod config;
pub mod dashboard;
pub mod evaluation;
mod intake;
pub mod jobs;
mod metrics;
mod openapi;
mod scheduler;
mod session;
mod status;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::io::docker::Docker;
use crate::io::registry::Registry;
use crate::io::source::mirror::{self, Mirror};
use crate::io::store::Store;
use crate::io::store::db::Database;
pub use config::ServerConfig;
pub use jobs::BuildJob;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Secret(String),
    #[error(transparent)]
    Db(#[from] crate::io::store::db::DbError),
    #[error(transparent)]
    Docker(#[from] crate::io::docker::DockerError),
    #[error(transparent)]
    Owner(#[from] crate::io::store::owner::OwnerError),
    #[error("cannot listen on {addr}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

/// Secrets of the server config, read once at start-up.
struct Keys {
    /// Per repository (config name): the webhook secret.
    webhooks: HashMap<String, Vec<u8>>,
    /// Per repository: the token for commit statuses.
    statuses: HashMap<String, String>,
    /// API tokens: (SHA-256 of the token, name).
    tokens: Vec<([u8; 32], String)>,
}

/// Everything the server's tasks and handlers share.
pub struct State {
    pub config: ServerConfig,
    keys: Keys,
    pub store: Store,
    pub db: Database,
    docker: Docker,
    registry: Registry,
    /// Where untrusted builds run, or why they cannot (said once at start-up).
    sandbox: crate::engine::Sandbox,
    /// This process, as the queue's `owner` column and the containers' owner label say it.
    instance: String,
    /// Cancel tokens of the builds this process runs.
    running: Mutex<HashMap<String, CancellationToken>>,
    /// Wakes the scheduler (a build was queued or ended).
    schedule: Notify,
    /// Wakes the intake worker (a delivery was kept).
    intake: Notify,
    metrics: metrics::Metrics,
    statuses: status::Reporter,
    shutdown: CancellationToken,
    /// Signed-in dashboard browsers.
    sessions: session::Sessions,
    /// One permit per open log follow (`maxStreams`).
    streams: Arc<tokio::sync::Semaphore>,
    /// This server owns the data directory while it runs (the CLI then writes only through it).
    _owner: crate::io::store::owner::ServerLock,
}

impl State {
    fn mirrors(&self) -> PathBuf {
        self.store.root().join("mirrors")
    }

    /// The repository's mirror, fetched ([`Mirror::fetched`]) on a blocking thread, never on the
    /// runtime; the error names the repository without its credentials.
    async fn mirror(&self, url: &str, having: Option<&str>) -> Result<Mirror, String> {
        let (root, owned, having) = (self.mirrors(), url.to_string(), having.map(str::to_string));
        tokio::task::spawn_blocking(move || Mirror::fetched(&root, &owned, having.as_deref()))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| crate::error_chain(&e)))
            .map_err(|e| format!("cannot fetch `{}`: {e}", mirror::redact(url)))
    }

    /// The name behind a bearer token, if it is one of the configured tokens (constant-time compare).
    fn identify(&self, token: &str) -> Option<String> {
        use sha2::{Digest, Sha256};
        use subtle::ConstantTimeEq;
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for (hash, name) in &self.keys.tokens {
            if bool::from(hash.ct_eq(&digest)) {
                found = Some(name.clone());
            }
        }
        found
    }

    /// Whether cookies get `Secure`: the server is reached over https (its `publicUrl` says so).
    fn secure_cookies(&self) -> bool {
        self.config.public_url.as_deref().is_some_and(|u| u.starts_with("https://"))
    }

    /// The link to a build's page.
    fn build_url(&self, build_id: &str) -> String {
        let base = self.config.public_url.clone().unwrap_or_else(|| format!("http://{}", self.config.listen));
        format!("{base}/builds/{build_id}")
    }
}

/// What a running server tells the one who started it (the CLI prints these; the server prints nothing).
#[derive(Clone, Debug)]
pub enum Lifecycle {
    Listening(std::net::SocketAddr),
    /// A signal came: running builds are being cancelled and cleaned up.
    Stopping,
}

/// Runs the server until SIGINT/SIGTERM.
pub async fn serve(
    config: ServerConfig,
    data_dir: PathBuf,
    on_lifecycle: impl Fn(Lifecycle) + Send + Sync + 'static,
) -> Result<(), ServeError> {
    let on_lifecycle = Arc::new(on_lifecycle);
    let state = start(config, data_dir).await?;
    let listener = tokio::net::TcpListener::bind(state.config.listen)
        .await
        .map_err(|source| ServeError::Listen { addr: state.config.listen.to_string(), source })?;
    tracing::info!(addr = %state.config.listen, "pipewright serve is listening");
    on_lifecycle(Lifecycle::Listening(state.config.listen));
    let app = router(state.clone());
    let shutdown = state.shutdown.clone();
    let stopping = on_lifecycle.clone();
    let signals = tokio::spawn(watch_signals(shutdown.clone(), move || stopping(Lifecycle::Stopping)));
    let served = axum::serve(listener, app).with_graceful_shutdown(shutdown.clone().cancelled_owned()).await;
    signals.abort();
    // Running builds are cancelled and cleaned up by their own tasks; wait for them.
    let tokens: Vec<CancellationToken> = state.running.lock().expect("running lock").values().cloned().collect();
    for token in &tokens {
        token.cancel();
    }
    while !state.running.lock().expect("running lock").is_empty() {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    served.map_err(|source| ServeError::Listen { addr: state.config.listen.to_string(), source })
}

/// Opens the store, recovers from a crash, and starts the intake worker and the scheduler.
pub async fn start(config: ServerConfig, data_dir: PathBuf) -> Result<Arc<State>, ServeError> {
    let keys = read_keys(&config)?;
    let store = Store::new(data_dir);
    let url = config.public_url.clone().unwrap_or_else(|| format!("http://{}", config.listen));
    let owner = crate::io::store::owner::acquire(store.root(), &url)?;
    let db = Database::open(store.root()).await?;
    let docker = Docker::connect().await?;
    let sandbox = connect_sandbox(&config, &docker).await;
    let state = Arc::new(State {
        sessions: session::Sessions::new(config.session_timeout),
        streams: Arc::new(tokio::sync::Semaphore::new(config.max_streams)),
        _owner: owner,
        statuses: status::Reporter::new(),
        config,
        keys,
        store,
        db,
        docker,
        sandbox,
        registry: Registry::new().await,
        instance: crate::executor::janitor::owner(),
        running: Mutex::new(HashMap::new()),
        schedule: Notify::new(),
        intake: Notify::new(),
        metrics: metrics::Metrics::default(),
        shutdown: CancellationToken::new(),
    });
    scheduler::recover(&state).await?;
    tokio::spawn(intake::worker(state.clone()));
    tokio::spawn(scheduler::run(state.clone()));
    Ok(state)
}

/// Every route: webhooks, the JSON API, the dashboard, health and metrics.
pub fn router(state: Arc<State>) -> axum::Router {
    use axum::routing::get;
    axum::Router::new()
        .merge(intake::routes(&state))
        .merge(api::routes())
        .merge(dashboard::routes())
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics::handler))
        .route("/openapi.json", get(openapi::handler))
        .with_state(state)
}

/// The sandbox executor for untrusted builds. Without one the server still starts, says so once, and
/// every untrusted build fails with the reason instead of running with less isolation.
async fn connect_sandbox(config: &ServerConfig, docker: &Docker) -> crate::engine::Sandbox {
    use crate::engine::Sandbox;
    match crate::executor::SandboxExecutor::connect(&config.sandbox, docker.clone()).await {
        Ok(executor) => {
            tracing::info!(engine = %config.sandbox.docker, runtime = %config.sandbox.runtime, "untrusted builds run sandboxed");
            Sandbox::Ready { executor: Arc::new(executor), limits: config.sandbox.limits }
        }
        Err(e) => {
            let hint = e.hint();
            tracing::warn!(error = %e, hint, "untrusted builds cannot run here");
            Sandbox::Unavailable { reason: e.to_string(), hint }
        }
    }
}

fn read_keys(config: &ServerConfig) -> Result<Keys, ServeError> {
    use sha2::{Digest, Sha256};
    let mut keys = Keys { webhooks: HashMap::new(), statuses: HashMap::new(), tokens: Vec::new() };
    for repo in &config.repositories {
        if let Some(source) = &repo.webhook_secret {
            let what = format!("repositories `{}` webhookSecret", repo.name);
            let secret = config::read_secret(&what, source).map_err(ServeError::Secret)?;
            keys.webhooks.insert(repo.name.clone(), secret.into_bytes());
        }
        if let Some(statuses) = &repo.statuses {
            let what = format!("repositories `{}` statuses.token", repo.name);
            keys.statuses
                .insert(repo.name.clone(), config::read_secret(&what, &statuses.token).map_err(ServeError::Secret)?);
        }
    }
    for token in &config.tokens {
        let value =
            config::read_secret(&format!("token `{}`", token.name), &token.token).map_err(ServeError::Secret)?;
        if value.len() < 16 {
            return Err(ServeError::Secret(format!("token `{}` is shorter than 16 characters", token.name)));
        }
        keys.tokens.push((Sha256::digest(value.as_bytes()).into(), token.name.clone()));
    }
    Ok(keys)
}

async fn watch_signals(shutdown: CancellationToken, on_signal: impl FnOnce()) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        _ = shutdown.cancelled() => return,
    }
    on_signal();
    shutdown.cancel();
}
