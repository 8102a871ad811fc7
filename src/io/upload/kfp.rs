//! Kubeflow Pipelines REST v2beta1: find or create the pipeline, then upload the spec as a version named
//! after the commit. A version that already exists (a re-run of the same commit) is looked up, not an
//! error.

use serde_json::Value;

use crate::io::http::multipart::{Form, Part};
use crate::io::http::{Client, HttpError, Method, parse_json, snippet};

pub struct KfpClient {
    http: Client,
    host: String,
}

/// What Kubeflow Pipelines holds after an upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KfpVersion {
    pub pipeline_id: String,
    pub version_id: String,
    pub version_name: String,
    /// True when this upload created the pipeline itself.
    pub created_pipeline: bool,
    /// True when the version existed already (same commit uploaded before).
    pub existed: bool,
}

impl KfpClient {
    /// `host` is the API base, e.g. `http://ml-pipeline.kubeflow:8888` or `https://host/pipeline`.
    pub fn new(host: &str, token: Option<String>) -> KfpClient {
        KfpClient { http: Client::new(token, None), host: host.trim_end_matches('/').to_string() }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/apis/v2beta1/{path}", self.host)
    }

    fn field(url: &str, value: &Value, name: &str) -> Result<String, HttpError> {
        value[name]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| HttpError::protocol(url, format!("no `{name}` in {}", snippet(&value.to_string()))))
    }

    /// Uploads `spec` as version `version` of pipeline `pipeline`, creating the pipeline if needed.
    pub async fn upload_version(
        &self,
        pipeline: &str,
        version: &str,
        description: &str,
        spec: &[u8],
    ) -> Result<KfpVersion, HttpError> {
        let (pipeline_id, created_pipeline) = match self.find_pipeline(pipeline).await? {
            Some(id) => (id, false),
            None => (self.create_pipeline(pipeline, description, spec).await?, true),
        };
        let url = self.url("pipelines/upload_version");
        let request = self
            .http
            .request(Method::POST, &url)
            .query(&[
                ("pipelineid", pipeline_id.as_str()),
                ("name", version),
                ("display_name", version),
                ("description", description),
            ])
            .multipart(spec_form(pipeline, spec));
        let (status, body) = self.http.send(&url, request).await?;
        if (200..300).contains(&status) {
            let value = parse_json(&url, &body)?;
            let version_id = Self::field(&url, &value, "pipeline_version_id")?;
            return Ok(KfpVersion {
                pipeline_id,
                version_id,
                version_name: version.into(),
                created_pipeline,
                existed: false,
            });
        }
        if body.contains("already exist") {
            let version_id = self
                .find_version(&pipeline_id, version)
                .await?
                .ok_or_else(|| HttpError::status(&Method::POST, &url, status, &body))?;
            return Ok(KfpVersion {
                pipeline_id,
                version_id,
                version_name: version.into(),
                created_pipeline,
                existed: true,
            });
        }
        Err(HttpError::status(&Method::POST, &url, status, &body))
    }

    /// The id of the pipeline named `name`, if it exists.
    pub async fn find_pipeline(&self, name: &str) -> Result<Option<String>, HttpError> {
        let url = self.url(&format!("pipelines/names/{}", urlencode(name)));
        let (status, body) = self.http.send(&url, self.http.request(Method::GET, &url)).await?;
        match status {
            200 => Ok(Some(Self::field(&url, &parse_json(&url, &body)?, "pipeline_id")?)),
            404 => Ok(None),
            _ => Err(HttpError::status(&Method::GET, &url, status, &body)),
        }
    }

    async fn create_pipeline(&self, name: &str, description: &str, spec: &[u8]) -> Result<String, HttpError> {
        let url = self.url("pipelines/upload");
        let request = self
            .http
            .request(Method::POST, &url)
            .query(&[("name", name), ("display_name", name), ("description", description)])
            .multipart(spec_form(name, spec));
        let (status, body) = self.http.send(&url, request).await?;
        if !(200..300).contains(&status) {
            return Err(HttpError::status(&Method::POST, &url, status, &body));
        }
        Self::field(&url, &parse_json(&url, &body)?, "pipeline_id")
    }

    async fn find_version(&self, pipeline_id: &str, name: &str) -> Result<Option<String>, HttpError> {
        let url = self.url(&format!("pipelines/{pipeline_id}/versions"));
        let filter = serde_json::json!({"predicates": [{"key": "name", "operation": "EQUALS", "string_value": name}]});
        let request = self
            .http
            .request(Method::GET, &url)
            .query(&[("filter", filter.to_string()), ("page_size", "100".to_string())]);
        let (status, body) = self.http.send(&url, request).await?;
        if status != 200 {
            return Err(HttpError::status(&Method::GET, &url, status, &body));
        }
        let value = parse_json(&url, &body)?;
        let versions = value["pipeline_versions"].as_array().cloned().unwrap_or_default();
        Ok(versions
            .iter()
            .find(|v| v["name"].as_str() == Some(name) || v["display_name"].as_str() == Some(name))
            .and_then(|v| v["pipeline_version_id"].as_str().map(str::to_string)))
    }
}

/// The multipart body KFP expects: field `uploadfile`, a file name ending in `.yaml` (the server picks
/// the format by the name).
fn spec_form(name: &str, spec: &[u8]) -> Form {
    let part = Part::bytes(spec.to_vec()).file_name(format!("{name}.yaml"));
    let part = part.mime_str("application/octet-stream").expect("a constant mime type parses");
    Form::new().part("uploadfile", part)
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
