//! The in-process HTTP server under every fake: it listens on an ephemeral port of 127.0.0.1 on its
//! own thread (so synchronous tests that run the pipewright binary can use it as well as async ones),
//! reads each request whole, checks the bearer token, asks the fake's [`Service`] whether the request
//! keeps the peer's contract, and records the request, the answer's status and every violation.
//!
//! A request that breaks the contract gets a 400 (a 401 for a missing token) and is recorded as a
//! violation; tests end with [`FakeServer::assert_no_violations`].

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use axum::extract::{FromRequest, Multipart, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// One part of a multipart/form-data body.
#[derive(Clone, Debug)]
pub struct FormPart {
    pub name: String,
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub data: Vec<u8>,
}

impl FormPart {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// A request as the fake received it.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// As sent: percent-encoded, without the query.
    pub path: String,
    /// Decoded query pairs, in order.
    pub query: Vec<(String, String)>,
    /// `authorization`, `content-type` and `accept`, when sent.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
    /// The parts of a multipart/form-data body (empty for other bodies).
    pub form: Vec<FormPart>,
    /// The status the fake answered with (0 while the request is being handled).
    pub status: u16,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The value of query parameter `name`, if sent.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn part(&self, name: &str) -> Option<&FormPart> {
        self.form.iter().find(|p| p.name == name)
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("`{}` sent no JSON body: {e}", self.line()))
    }

    /// `METHOD /path`, the way tests compare request sequences.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// What a fake answers.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
    /// Problems the fake found while answering (an endpoint it does not implement, say); recorded
    /// as violations so the test fails on them.
    pub problems: Vec<String>,
}

impl Reply {
    pub fn json(status: u16, body: &Value) -> Reply {
        Reply::bytes(status, "application/json", body.to_string().into_bytes())
    }

    pub fn text(status: u16, text: &str) -> Reply {
        Reply::bytes(status, "text/plain; charset=utf-8", text.as_bytes().to_vec())
    }

    pub fn bytes(status: u16, content_type: &str, body: Vec<u8>) -> Reply {
        Reply { status, content_type: content_type.to_string(), body, problems: Vec::new() }
    }

    /// A 501 for an endpoint of the peer that the fake does not serve: a gap in the fake, reported
    /// like a violation so no test passes by accident.
    pub fn unimplemented(fake: &str, what: &str) -> Reply {
        let mut reply = Reply::text(501, &format!("{fake} does not implement {what}"));
        reply.problems.push(format!("{fake} does not implement {what} (extend the fake)"));
        reply
    }
}

/// A fake peer: its contract and its behaviour.
pub trait Service: Send + Sync + 'static {
    /// Every way `request` breaks the peer's published contract; empty when it keeps it.
    fn check(&self, request: &Request) -> Vec<String>;
    /// The answer to a request that keeps the contract; may change the fake's state.
    fn answer(&self, request: &Request) -> Reply;
    /// The error body the peer sends with `status`.
    fn error(&self, status: u16, message: &str) -> Reply;
    /// Problems with the fake's own answer (it must keep the peer's response schemas too).
    fn check_reply(&self, _request: &Request, _reply: &Reply) -> Vec<String> {
        Vec::new()
    }
}

/// Which `Authorization` header the fake insists on.
#[derive(Clone, Debug)]
pub enum Auth {
    None,
    /// Any `Bearer` token (the peer always requires one).
    AnyBearer,
    Bearer(String),
}

/// A request the fake refused as breaking the contract.
#[derive(Clone, Debug)]
pub struct Violation {
    /// `METHOD /path?query`.
    pub request: String,
    pub problem: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.request, self.problem)
    }
}

/// A canned answer for the next request to `method path`, in place of the fake's own.
struct Canned {
    method: String,
    path: String,
    reply: Reply,
}

struct Log {
    requests: Vec<Request>,
    violations: Vec<Violation>,
    auth: Auth,
    canned: Vec<Canned>,
}

struct Shared {
    service: Arc<dyn Service>,
    log: Mutex<Log>,
}

/// A running fake: its URL, what it received, what it refused, and the knobs common to all fakes.
pub struct FakeServer {
    name: &'static str,
    url: String,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeServer {
    /// Starts serving `service` on 127.0.0.1 with an ephemeral port; the port is bound before this
    /// returns, so requests can be sent at once.
    pub fn start(name: &'static str, service: Arc<dyn Service>, auth: Auth) -> FakeServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port on 127.0.0.1");
        listener.set_nonblocking(true).expect("a non-blocking listener");
        let url = format!("http://{}", listener.local_addr().expect("a bound address"));
        let log = Log { requests: Vec::new(), violations: Vec::new(), auth, canned: Vec::new() };
        let shared = Arc::new(Shared { service, log: Mutex::new(log) });
        let app = axum::Router::new().fallback(dispatch).with_state(shared.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("fake-{name}"))
            .spawn(move || serve(listener, app, stopped))
            .expect("spawn the fake's thread");
        FakeServer { name, url, shared, stop: Some(stop), thread: Some(thread) }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.log().requests.clone()
    }

    /// `METHOD /path` of every request received so far.
    pub fn lines(&self) -> Vec<String> {
        self.log().requests.iter().map(Request::line).collect()
    }

    /// Every contract violation recorded so far, in order.
    pub fn violations(&self) -> Vec<Violation> {
        self.log().violations.clone()
    }

    /// Fails the test listing every violation, and every request for context.
    #[track_caller]
    pub fn assert_no_violations(&self) {
        let (violations, requests) = (self.violations(), self.requests());
        if violations.is_empty() {
            return;
        }
        let violations: Vec<String> = violations.iter().map(|v| format!("  - {v}")).collect();
        let requests: Vec<String> = requests.iter().map(|r| format!("  {} → {}", r.line(), r.status)).collect();
        panic!(
            "{} recorded {} contract violation(s):\n{}\nrequests received:\n{}",
            self.name,
            violations.len(),
            violations.join("\n"),
            requests.join("\n")
        );
    }

    /// From now on, requests must carry `Authorization: Bearer <token>`; others get a 401.
    pub fn expect_token(&self, token: &str) {
        self.log().auth = Auth::Bearer(token.to_string());
    }

    /// Answers the next valid `method path` request with `reply` instead of the fake's own answer
    /// (the request is still checked and recorded; the fake's state does not change).
    pub fn reply_next(&self, method: &str, path: &str, reply: Reply) {
        self.log().canned.push(Canned { method: method.to_string(), path: path.to_string(), reply });
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.shared.log.lock().expect("the fake's log is not poisoned")
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The fake's thread: serves until told to stop, then drops the runtime and with it every connection.
fn serve(listener: std::net::TcpListener, app: axum::Router, stopped: tokio::sync::oneshot::Receiver<()>) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
        tokio::select! {
            served = axum::serve(listener, app).into_future() => served.expect("the fake serves"),
            _ = stopped => {}
        }
    });
}

async fn dispatch(State(shared): State<Arc<Shared>>, request: axum::extract::Request) -> Response {
    let (mut request, malformed) = read(request).await;
    let (reply, problems) = match malformed {
        Some(problem) => (shared.service.error(400, &problem), vec![problem]),
        None => shared.handle(&request),
    };
    request.status = reply.status;
    shared.record(request, problems);
    let status = StatusCode::from_u16(reply.status).expect("a valid status code");
    (status, [(header::CONTENT_TYPE, reply.content_type)], reply.body).into_response()
}

impl Shared {
    /// The answer to `request` and the violations it showed.
    fn handle(&self, request: &Request) -> (Reply, Vec<String>) {
        if let Some(problem) = self.auth_problem(request) {
            return (self.service.error(401, &problem), vec![problem]);
        }
        let problems = self.service.check(request);
        if !problems.is_empty() {
            return (self.service.error(400, &problems.join("; ")), problems);
        }
        if let Some(reply) = self.take_canned(request) {
            return (reply, Vec::new());
        }
        let mut reply = self.service.answer(request);
        let mut problems = std::mem::take(&mut reply.problems);
        let own = self.service.check_reply(request, &reply);
        problems.extend(own.into_iter().map(|p| format!("the fake's own answer breaks the definition: {p}")));
        (reply, problems)
    }

    fn auth_problem(&self, request: &Request) -> Option<String> {
        let auth = self.log.lock().expect("the fake's log is not poisoned").auth.clone();
        let sent = request.header("authorization");
        match (auth, sent) {
            (Auth::None, _) => None,
            (Auth::AnyBearer, Some(value)) if value.starts_with("Bearer ") && value.len() > 7 => None,
            (Auth::Bearer(token), Some(value)) if value == format!("Bearer {token}") => None,
            (_, None) => Some("no `Authorization: Bearer` header; this peer requires one".to_string()),
            (_, Some(_)) => Some("the `Authorization` header does not carry the expected bearer token".to_string()),
        }
    }

    fn take_canned(&self, request: &Request) -> Option<Reply> {
        let mut log = self.log.lock().expect("the fake's log is not poisoned");
        let i = log.canned.iter().position(|c| c.method == request.method && c.path == request.path)?;
        Some(log.canned.remove(i).reply)
    }

    fn record(&self, request: Request, problems: Vec<String>) {
        let mut log = self.log.lock().expect("the fake's log is not poisoned");
        let mut line = request.line();
        if !request.query.is_empty() {
            let pairs: Vec<String> = request.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            line = format!("{line}?{}", pairs.join("&"));
        }
        log.violations.extend(problems.into_iter().map(|problem| Violation { request: line.clone(), problem }));
        log.requests.push(request);
    }
}

/// Reads a whole request; the second value says why a multipart body could not be parsed.
async fn read(request: axum::extract::Request) -> (Request, Option<String>) {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 64 << 20).await.map(|b| b.to_vec()).unwrap_or_default();
    let headers = ["authorization", "content-type", "accept"]
        .iter()
        .filter_map(|name| Some((name.to_string(), parts.headers.get(*name)?.to_str().ok()?.to_string())))
        .collect::<BTreeMap<_, _>>();
    let query = parts
        .uri
        .query()
        .map(|q| reqwest::Url::parse(&format!("http://fake/?{q}")).expect("a query parses as a URL"))
        .map(|url| url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
        .unwrap_or_default();
    let mut request = Request {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query,
        headers,
        body,
        form: Vec::new(),
        status: 0,
    };
    let malformed = match request.header("content-type") {
        Some(ct) if ct.starts_with("multipart/form-data") => match form_parts(ct, &request.body).await {
            Ok(form) => {
                request.form = form;
                None
            }
            Err(e) => Some(format!("malformed multipart/form-data body: {e}")),
        },
        _ => None,
    };
    (request, malformed)
}

/// The parts of a multipart/form-data body (up to axum's default limit of 2 MiB; specs are far smaller).
async fn form_parts(content_type: &str, body: &[u8]) -> Result<Vec<FormPart>, String> {
    let request = axum::http::Request::builder()
        .header(header::CONTENT_TYPE, content_type)
        .body(axum::body::Body::from(body.to_vec()))
        .expect("a request from parts that were valid");
    let mut multipart = Multipart::from_request(request, &()).await.map_err(|e| e.body_text())?;
    let mut parts = Vec::new();
    while let Some(field) = multipart.next_field().await.map_err(|e| e.body_text())? {
        let name = field.name().unwrap_or_default().to_string();
        let file_name = field.file_name().map(str::to_string);
        let content_type = field.content_type().map(str::to_string);
        let data = field.bytes().await.map_err(|e| e.body_text())?.to_vec();
        parts.push(FormPart { name, file_name, content_type, data });
    }
    Ok(parts)
}
