//! The JSON API's OpenAPI 3.1 document, served at `GET /openapi.json`.
//!
//! Written by hand (`src/server/openapi.json`) rather than derived, so it is the contract the API is
//! held to: `tests/integration/api_schema.rs` runs schemathesis against a live server with it (no 5xx,
//! every answer as documented, no write without a token), and the unit test below keeps it in step
//! with the routes.

use axum::http::header;
use axum::response::IntoResponse;

pub const DOCUMENT: &str = include_str!("openapi.json");

pub async fn handler() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route of the JSON API and the webhooks, as `src/server/api.rs` and `intake.rs` declare them.
    const ROUTES: &[(&str, &str)] = &[
        ("get", "/v1/projects/{project}/builds"),
        ("post", "/v1/projects/{project}/builds"),
        ("get", "/v1/projects/{project}/builds/{name}"),
        ("post", "/v1/projects/{project}/builds/{name}"),
        ("get", "/v1/projects/{project}/builds/{id}/logs"),
        ("get", "/v1/environments"),
        ("post", "/v1/environments/{name}"),
        ("get", "/v1/environments/{env}/history"),
        ("post", "/hooks/{forge}"),
        ("get", "/healthz"),
        ("get", "/openapi.json"),
    ];

    #[test]
    fn the_document_is_openapi_3_1_and_names_every_route() {
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).expect("openapi.json is JSON");
        assert_eq!(doc["openapi"], "3.1.0");
        for (method, path) in ROUTES {
            assert!(doc["paths"][path][method].is_object(), "{method} {path} is not in openapi.json");
        }
        let documented: usize = doc["paths"]
            .as_object()
            .expect("paths")
            .values()
            .map(|p| ["get", "post", "put", "patch", "delete"].iter().filter(|m| p.get(**m).is_some()).count())
            .sum();
        assert_eq!(documented, ROUTES.len(), "openapi.json documents a route the server does not have");
    }

    #[test]
    fn every_reference_resolves() {
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).expect("openapi.json is JSON");
        fn walk(v: &serde_json::Value, doc: &serde_json::Value) {
            match v {
                serde_json::Value::Object(map) => {
                    if let Some(serde_json::Value::String(r)) = map.get("$ref") {
                        let pointer = r.strip_prefix('#').expect("local reference");
                        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
                    }
                    map.values().for_each(|x| walk(x, doc));
                }
                serde_json::Value::Array(items) => items.iter().for_each(|x| walk(x, doc)),
                _ => {}
            }
        }
        walk(&doc, &doc);
    }
}
