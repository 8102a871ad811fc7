//! The one HTTP client for the services pipewright calls with a token (Kubeflow Pipelines, Vertex AI,
//! Artifact Registry): the bearer token the credential allow-list chose for the origin (src/io/credentials.rs),
//! redirects that never carry it to another origin, and one error type for every way a call can fail.
//! The run backends (src/runner/kfp.rs, src/runner/vertex.rs) and the upload clients (src/io/upload/) build
//! their requests on it; nothing here knows a build.

use std::time::Duration;

use serde_json::Value;

pub use reqwest::{Method, multipart};

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot reach `{url}`: {message}")]
    Unreachable { url: String, message: String },
    #[error("`{method} {url}` answered {status}: {body}")]
    Status { method: String, url: String, status: u16, body: String },
    #[error("`{url}` answered something unexpected: {message}")]
    Protocol { url: String, message: String },
}

impl HttpError {
    pub fn status(method: &Method, url: &str, status: u16, body: &str) -> HttpError {
        HttpError::Status { method: method.to_string(), url: url.to_string(), status, body: snippet(body) }
    }

    pub fn protocol(url: &str, message: impl Into<String>) -> HttpError {
        HttpError::Protocol { url: url.to_string(), message: message.into() }
    }

    fn unreachable(url: &str, e: &reqwest::Error) -> HttpError {
        HttpError::Unreachable { url: url.to_string(), message: crate::error_chain(e) }
    }
}

/// A client for one service, with the token (if any) every request carries.
pub struct Client {
    http: reqwest::Client,
    token: Option<String>,
}

impl Client {
    /// `timeout` bounds each whole request (`None`: uploads of large specs may take their time).
    pub fn new(token: Option<String>, timeout: Option<Duration>) -> Client {
        // GitHub's API refuses a request without a user agent.
        let mut builder = reqwest::Client::builder()
            .redirect(crate::io::credentials::redirect_policy())
            .user_agent(concat!("pipewright/", env!("CARGO_PKG_VERSION")));
        if let Some(timeout) = timeout {
            builder = builder.timeout(timeout);
        }
        Client { http: builder.build().unwrap_or_default(), token }
    }

    #[cfg(test)]
    pub(crate) fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// A request to `url` carrying the token.
    pub fn request(&self, method: Method, url: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, url);
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends `request` (made by [`Client::request`]) and returns the status and the body, whatever the
    /// status; only a failure to talk is an error.
    pub async fn send(&self, url: &str, request: reqwest::RequestBuilder) -> Result<(u16, String), HttpError> {
        let response = request.send().await.map_err(|e| HttpError::unreachable(url, &e))?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(|e| HttpError::unreachable(url, &e))?;
        Ok((status, body))
    }

    /// A JSON call: `body` as JSON, a 2xx answer as JSON (`null` when empty), anything else an error.
    pub async fn json(&self, method: Method, url: &str, body: Option<Value>) -> Result<Value, HttpError> {
        let mut request = self.request(method.clone(), url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let (status, text) = self.send(url, request).await?;
        if !(200..300).contains(&status) {
            return Err(HttpError::status(&method, url, status, &text));
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        parse_json(url, &text)
    }
}

/// `text` percent-encoded as one URL component (a path segment or a query value): everything but
/// RFC 3986's unreserved characters is escaped, so a `/`, `?` or `..` in a build id or a message stays
/// inside its segment and can never change the route.
pub fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `404 Not Found`: a status as people read it.
pub fn status_text(status: u16) -> String {
    reqwest::StatusCode::from_u16(status).map_or_else(|_| status.to_string(), |s| s.to_string())
}

/// `body` as JSON, or a protocol error naming `url`.
pub fn parse_json(url: &str, body: &str) -> Result<Value, HttpError> {
    serde_json::from_str(body).map_err(|e| HttpError::protocol(url, format!("not JSON: {e}")))
}

/// A response body cut for an error message.
pub fn snippet(body: &str) -> String {
    let body = body.trim();
    if body.len() > 300 { format!("{}…", &body[..body.floor_char_boundary(300)]) } else { body.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_as_before_and_bodies_are_cut() {
        let long = "x".repeat(400);
        let e = HttpError::status(&Method::POST, "http://h/a", 500, &format!("  {long} "));
        let text = e.to_string();
        assert!(text.starts_with("`POST http://h/a` answered 500: xxx"), "{text}");
        assert!(text.ends_with('…') && text.len() < 340, "{text}");
        assert_eq!(snippet(" short "), "short");
        let e = parse_json("http://h/b", "<html>").expect_err("not JSON");
        assert!(e.to_string().starts_with("`http://h/b` answered something unexpected: not JSON:"), "{e}");
    }
}
