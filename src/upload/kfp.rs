//! Kubeflow Pipelines REST v2beta1: find or create the pipeline, then upload the spec as a version named
//! after the commit. A version that already exists (a re-run of the same commit) is looked up, not an
//! error.

use reqwest::multipart::{Form, Part};
use serde_json::Value;

use super::{UploadError, snippet};

pub struct KfpClient {
    http: reqwest::Client,
    host: String,
    token: Option<String>,
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
        let http =
            reqwest::Client::builder().redirect(crate::credentials::redirect_policy()).build().unwrap_or_default();
        KfpClient { http, host: host.trim_end_matches('/').to_string(), token }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/apis/v2beta1/{path}", self.host)
    }

    fn with_auth(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    async fn send(&self, url: &str, request: reqwest::RequestBuilder) -> Result<(u16, String), UploadError> {
        let response = self.with_auth(request).send().await.map_err(|e| UploadError::from_reqwest(url, e))?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(|e| UploadError::from_reqwest(url, e))?;
        Ok((status, body))
    }

    fn json(url: &str, body: &str) -> Result<Value, UploadError> {
        serde_json::from_str(body)
            .map_err(|e| UploadError::Protocol { url: url.to_string(), message: format!("not JSON: {e}") })
    }

    fn field(url: &str, value: &Value, name: &str) -> Result<String, UploadError> {
        value[name].as_str().map(str::to_string).ok_or_else(|| UploadError::Protocol {
            url: url.to_string(),
            message: format!("no `{name}` in {}", snippet(&value.to_string())),
        })
    }

    /// Uploads `spec` as version `version` of pipeline `pipeline`, creating the pipeline if needed.
    pub async fn upload_version(
        &self,
        pipeline: &str,
        version: &str,
        description: &str,
        spec: &[u8],
    ) -> Result<KfpVersion, UploadError> {
        let (pipeline_id, created_pipeline) = match self.find_pipeline(pipeline).await? {
            Some(id) => (id, false),
            None => (self.create_pipeline(pipeline, description, spec).await?, true),
        };
        let url = self.url("pipelines/upload_version");
        let request = self
            .http
            .post(&url)
            .query(&[
                ("pipelineid", pipeline_id.as_str()),
                ("name", version),
                ("display_name", version),
                ("description", description),
            ])
            .multipart(spec_form(pipeline, spec));
        let (status, body) = self.send(&url, request).await?;
        if (200..300).contains(&status) {
            let value = Self::json(&url, &body)?;
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
            let version_id = self.find_version(&pipeline_id, version).await?.ok_or_else(|| UploadError::Http {
                method: "POST",
                url: url.clone(),
                status,
                body: snippet(&body),
            })?;
            return Ok(KfpVersion {
                pipeline_id,
                version_id,
                version_name: version.into(),
                created_pipeline,
                existed: true,
            });
        }
        Err(UploadError::Http { method: "POST", url, status, body: snippet(&body) })
    }

    /// The id of the pipeline named `name`, if it exists.
    pub async fn find_pipeline(&self, name: &str) -> Result<Option<String>, UploadError> {
        let url = self.url(&format!("pipelines/names/{}", urlencode(name)));
        let (status, body) = self.send(&url, self.http.get(&url)).await?;
        match status {
            200 => Ok(Some(Self::field(&url, &Self::json(&url, &body)?, "pipeline_id")?)),
            404 => Ok(None),
            _ => Err(UploadError::Http { method: "GET", url, status, body: snippet(&body) }),
        }
    }

    async fn create_pipeline(&self, name: &str, description: &str, spec: &[u8]) -> Result<String, UploadError> {
        let url = self.url("pipelines/upload");
        let request = self
            .http
            .post(&url)
            .query(&[("name", name), ("display_name", name), ("description", description)])
            .multipart(spec_form(name, spec));
        let (status, body) = self.send(&url, request).await?;
        if !(200..300).contains(&status) {
            return Err(UploadError::Http { method: "POST", url, status, body: snippet(&body) });
        }
        Self::field(&url, &Self::json(&url, &body)?, "pipeline_id")
    }

    async fn find_version(&self, pipeline_id: &str, name: &str) -> Result<Option<String>, UploadError> {
        let url = self.url(&format!("pipelines/{pipeline_id}/versions"));
        let filter = serde_json::json!({"predicates": [{"key": "name", "operation": "EQUALS", "string_value": name}]});
        let request = self.http.get(&url).query(&[("filter", filter.to_string()), ("page_size", "100".to_string())]);
        let (status, body) = self.send(&url, request).await?;
        if status != 200 {
            return Err(UploadError::Http { method: "GET", url, status, body: snippet(&body) });
        }
        let value = Self::json(&url, &body)?;
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
