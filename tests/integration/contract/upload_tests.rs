//! pipewright's upload clients (`KfpClient`, `ArtifactRegistryClient`) against the fakes: every request
//! they send is checked against KFP's published Swagger and the documented Artifact Registry contract.

use pipewright::io::http::HttpError;
use pipewright::io::upload::{ArtifactRegistryClient, KfpClient};
use sha2::{Digest, Sha256};

use super::{FakeArtifactRegistry, FakeKfp, Reply, demo_ir};

const COMMIT: &str = "3f2c1e9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e";

fn spec() -> Vec<u8> {
    demo_ir("local/busybox:1").into_bytes()
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

#[tokio::test]
async fn kfp_upload_contract_new_pipeline_is_uploaded_then_versioned() {
    let kfp = FakeKfp::start();
    let client = KfpClient::new(kfp.url(), None);

    let version = client.upload_version("demo-ci", COMMIT, "CI build", &spec()).await.expect("upload");

    assert_eq!(
        kfp.lines(),
        [
            "GET /apis/v2beta1/pipelines/names/demo-ci",
            "POST /apis/v2beta1/pipelines/upload",
            "POST /apis/v2beta1/pipelines/upload_version",
        ]
    );
    let pipeline = kfp.pipeline("demo-ci").expect("the pipeline was created");
    assert_eq!(pipeline["pipeline_id"], version.pipeline_id.as_str());
    let versions = kfp.versions(&version.pipeline_id);
    let names: Vec<&str> = versions.iter().map(|v| v["name"].as_str().unwrap_or("")).collect();
    assert_eq!(names, ["demo-ci", COMMIT], "the upload's own first version, then the commit's");
    assert_eq!((version.created_pipeline, version.existed), (true, false));
    assert_eq!(version.version_name, COMMIT);
    assert_eq!(kfp.spec(&version.version_id), Some(spec()), "the version holds the uploaded bytes");
    let upload = &kfp.requests()[2];
    assert_eq!(upload.param("pipelineid"), Some(version.pipeline_id.as_str()));
    let file = upload.part("uploadfile").expect("the spec is in `uploadfile`");
    assert_eq!(
        (file.file_name.as_deref(), file.content_type.as_deref()),
        (Some("demo-ci.yaml"), Some("application/octet-stream"))
    );
    kfp.assert_no_violations();
}

#[tokio::test]
async fn kfp_upload_contract_existing_pipeline_gets_only_a_new_version() {
    let kfp = FakeKfp::start();
    let (pipeline_id, _) = kfp.seed_pipeline("demo-ci", &spec());
    let client = KfpClient::new(kfp.url(), None);

    let version = client.upload_version("demo-ci", COMMIT, "CI build", &spec()).await.expect("upload");

    assert_eq!(
        kfp.lines(),
        ["GET /apis/v2beta1/pipelines/names/demo-ci", "POST /apis/v2beta1/pipelines/upload_version"]
    );
    assert_eq!(version.pipeline_id, pipeline_id);
    assert_eq!((version.created_pipeline, version.existed), (false, false));
    assert_eq!(kfp.versions(&pipeline_id).len(), 2);
    kfp.assert_no_violations();
}

#[tokio::test]
async fn kfp_upload_contract_same_version_again_finds_the_existing_one() {
    let kfp = FakeKfp::start();
    let client = KfpClient::new(kfp.url(), None);
    let first = client.upload_version("demo-ci", COMMIT, "CI build", &spec()).await.expect("first upload");

    let again = client.upload_version("demo-ci", COMMIT, "CI build, re-run", &spec()).await.expect("second upload");

    assert_eq!(
        (again.pipeline_id.as_str(), again.version_id.as_str()),
        (first.pipeline_id.as_str(), first.version_id.as_str())
    );
    assert_eq!((again.created_pipeline, again.existed), (false, true));
    let requests = kfp.requests();
    let tail: Vec<(String, u16)> = requests[3..].iter().map(|r| (r.line(), r.status)).collect();
    let list = format!("GET /apis/v2beta1/pipelines/{}/versions", first.pipeline_id);
    assert_eq!(
        tail,
        [
            ("GET /apis/v2beta1/pipelines/names/demo-ci".to_string(), 200),
            ("POST /apis/v2beta1/pipelines/upload_version".to_string(), 409),
            (list, 200),
        ],
        "the duplicate gets the server's `already exist` answer; the client then looks the version up"
    );
    assert_eq!(kfp.versions(&first.pipeline_id).len(), 2, "no third version");
    kfp.assert_no_violations();
}

#[tokio::test]
async fn kfp_upload_contract_sends_the_bearer_token() {
    let kfp = FakeKfp::start();
    kfp.expect_token("kfp-s3cret");
    let client = KfpClient::new(kfp.url(), Some("kfp-s3cret".into()));

    client.upload_version("demo-ci", COMMIT, "CI build", &spec()).await.expect("upload");

    for request in kfp.requests() {
        assert_eq!(request.header("authorization"), Some("Bearer kfp-s3cret"), "{}", request.line());
    }
    kfp.assert_no_violations();
}

#[tokio::test]
async fn kfp_upload_contract_without_the_token_is_refused_with_401() {
    let kfp = FakeKfp::start();
    kfp.expect_token("kfp-s3cret");

    let error = KfpClient::new(kfp.url(), None).upload_version("demo-ci", COMMIT, "", &spec()).await.unwrap_err();

    assert!(matches!(&error, HttpError::Status { method, status: 401, .. } if method == "GET"), "{error:?}");
    let violations = kfp.violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(violations[0].problem.contains("Authorization"), "{}", violations[0]);
}

#[tokio::test]
async fn kfp_upload_contract_server_errors_name_method_url_and_status() {
    let cases = [
        ("GET", "/apis/v2beta1/pipelines/names/demo-ci", 500),
        ("POST", "/apis/v2beta1/pipelines/upload", 503),
        ("POST", "/apis/v2beta1/pipelines/upload_version", 403),
    ];
    for (method, path, status) in cases {
        let kfp = FakeKfp::start();
        kfp.reply_next(method, path, Reply::json(status, &serde_json::json!({"code": 13, "message": "injected"})));

        let error = KfpClient::new(kfp.url(), None).upload_version("demo-ci", COMMIT, "", &spec()).await.unwrap_err();

        let url = format!("{}{path}", kfp.url());
        match &error {
            HttpError::Status { method: m, url: u, status: s, body } => {
                assert_eq!((m.as_str(), u.as_str(), *s), (method, url.as_str(), status));
                assert!(body.contains("injected"), "{body}");
            }
            other => panic!("expected an HTTP error for {method} {path}, got {other:?}"),
        }
        let message = error.to_string();
        for part in [method, url.as_str(), &status.to_string()] {
            assert!(message.contains(part), "`{part}` missing from: {message}");
        }
        kfp.assert_no_violations();
    }
}

#[tokio::test]
async fn artifact_registry_upload_contract_answers_the_content_digest() {
    let registry = FakeArtifactRegistry::start();
    registry.expect_token("google-t0ken");
    let client = ArtifactRegistryClient::new(&registry.repository_url(), Some("google-t0ken".into()));
    let tags = [COMMIT.to_string(), "main".to_string()];

    let version = client.upload("demo-ci.yaml", &spec(), &tags).await.expect("upload");

    let digest = sha256(&spec());
    assert_eq!((version.package.as_str(), version.version.as_str()), ("demo-ci", digest.as_str()));
    assert_eq!(version.uri, format!("{}/demo-ci/{digest}", registry.repository_url()));
    let upload = &registry.requests()[0];
    assert_eq!(upload.part("tags").map(|t| t.text()), Some(format!("{COMMIT},main")));
    let package = registry.package("demo-ci").expect("the package exists");
    for tag in &tags {
        assert_eq!(package.tags.get(tag), Some(&digest), "tag `{tag}`");
    }
    let download = reqwest::Client::new()
        .get(format!("{}/demo-ci/main", registry.repository_url()))
        .bearer_auth("google-t0ken")
        .send()
        .await
        .expect("download");
    assert_eq!(download.status(), 200);
    assert_eq!(download.bytes().await.expect("bytes").to_vec(), spec(), "the tag names the uploaded bytes");
    registry.assert_no_violations();
}

#[tokio::test]
async fn artifact_registry_upload_contract_garbled_answers_are_errors() {
    let cases = [
        Reply::json(200, &serde_json::json!({"name": "demo-ci", "version": "sha256:00"})),
        Reply::bytes(200, "text/html", b"<html><body>Sign in</body></html>".to_vec()),
        Reply::text(200, "demo-ci/latest"),
        Reply::text(200, ""),
    ];
    for reply in cases {
        let registry = FakeArtifactRegistry::start();
        let answer = String::from_utf8_lossy(&reply.body).into_owned();
        registry.reply_next("POST", "/my-proj/pipelines", reply);

        let result = ArtifactRegistryClient::new(&registry.repository_url(), Some("t".into()))
            .upload("demo-ci.yaml", &spec(), &[])
            .await;

        assert!(matches!(result, Err(HttpError::Protocol { .. })), "`{answer}` was taken as {result:?}");
        registry.assert_no_violations();
    }
}

#[tokio::test]
async fn artifact_registry_upload_contract_server_errors_and_missing_token() {
    let registry = FakeArtifactRegistry::start();
    registry.reply_next("POST", "/my-proj/pipelines", Reply::text(500, "backend unavailable"));
    let client = ArtifactRegistryClient::new(&registry.repository_url(), Some("t".into()));
    let error = client.upload("demo-ci.yaml", &spec(), &[]).await.unwrap_err();
    assert!(matches!(&error, HttpError::Status { method, status: 500, .. } if method == "POST"), "{error:?}");
    assert!(error.to_string().contains(&registry.repository_url()), "{error}");
    registry.assert_no_violations();

    let anonymous = ArtifactRegistryClient::new(&registry.repository_url(), None);
    let error = anonymous.upload("demo-ci.yaml", &spec(), &[]).await.unwrap_err();
    assert!(matches!(error, HttpError::Status { status: 401, .. }), "{error:?}");
    assert_eq!(registry.violations().len(), 1, "the anonymous upload is recorded");
}
