//! The fakes catch what the real peers refuse: hand-made requests that break KFP's published Swagger
//! (or the documented Vertex AI contract) are answered 400, say what was wrong and are recorded as
//! violations; their valid twins, in both protojson spellings, pass.

use reqwest::multipart::{Form, Part};
use reqwest::{Client, RequestBuilder};
use serde_json::{Value, json};

use super::server::FakeServer;
use super::swagger::Names;
use super::{FakeKfp, FakeVertex, demo_ir, kfp};

/// A request that breaks the contract and the words the violation must contain.
struct Case {
    what: &'static str,
    request: fn(&Client, &str) -> RequestBuilder,
    expect: &'static str,
}

/// Sends every case and checks each was answered 400 with an error naming the problem, and recorded.
async fn assert_refused(fake: &FakeServer, cases: &[Case], error_shape: fn(&Value) -> bool) {
    let client = Client::new();
    for case in cases {
        let before = fake.violations().len();
        let response = (case.request)(&client, fake.url()).send().await.expect("the fake answers");
        let status = response.status().as_u16();
        let body = response.text().await.expect("an answer body");
        let recorded: Vec<String> = fake.violations()[before..].iter().map(|v| v.problem.clone()).collect();
        assert_eq!(status, 400, "{}: expected a 400, got {status}: {body}", case.what);
        assert!(
            recorded.iter().any(|p| p.contains(case.expect)),
            "{}: no violation mentions `{}`; recorded: {recorded:#?}",
            case.what,
            case.expect
        );
        assert!(body.contains(case.expect), "{}: the answer does not say what was wrong: {body}", case.what);
        let error: Value = serde_json::from_str(&body).unwrap_or_default();
        assert!(error_shape(&error), "{}: not the peer's error shape: {body}", case.what);
    }
}

/// A google.rpc.Status with INVALID_ARGUMENT, as KFP's grpc-gateway answers.
fn kfp_status(error: &Value) -> bool {
    let schema = kfp::swagger().definition("googleRpcStatus");
    error["code"] == 3 && kfp::swagger().check_json(&schema, error, "error", Names::Exact).is_empty()
}

/// A Google API error with INVALID_ARGUMENT.
fn google_error(error: &Value) -> bool {
    error["error"]["code"] == 400 && error["error"]["status"] == "INVALID_ARGUMENT"
}

fn run(client: &Client, url: &str, body: Value) -> RequestBuilder {
    client.post(format!("{url}/apis/v2beta1/runs")).json(&body)
}

fn upload(client: &Client, url: &str, query: &str, field: &str, file_name: &str, data: &[u8]) -> RequestBuilder {
    let part = Part::bytes(data.to_vec()).file_name(file_name.to_string());
    client.post(format!("{url}/apis/v2beta1/pipelines/{query}")).multipart(Form::new().part(field.to_string(), part))
}

fn spec() -> Vec<u8> {
    demo_ir("local/busybox:1").into_bytes()
}

const KFP_CASES: &[Case] = &[
    Case {
        what: "unknown JSON field",
        request: |c, u| run(c, u, json!({"display_name": "r", "pipeline_spec": {}, "colour": "red"})),
        expect: "unknown field `colour` in `body` (a `v2beta1Run`)",
    },
    Case {
        what: "unknown nested field",
        request: |c, u| {
            run(c, u, json!({"display_name": "r", "pipeline_spec": {}, "runtime_config": {"pipelineroot": "gs://b"}}))
        },
        expect: "unknown field `pipelineroot` in `body.runtime_config`",
    },
    Case {
        what: "wrong JSON type",
        request: |c, u| run(c, u, json!({"display_name": 7, "pipeline_spec": {}})),
        expect: "`body.display_name` must be string",
    },
    Case {
        what: "invalid enum",
        request: |c, u| run(c, u, json!({"display_name": "r", "pipeline_spec": {}, "storage_state": "GONE"})),
        expect: "not one of STORAGE_STATE_UNSPECIFIED, AVAILABLE, ARCHIVED",
    },
    Case {
        what: "two members of a oneof (run.proto)",
        request: |c, u| {
            run(
                c,
                u,
                json!({"display_name": "r", "pipeline_spec": {}, "pipeline_version_reference": {"pipeline_id": "p"}}),
            )
        },
        expect: "of oneof `pipeline_source`",
    },
    Case {
        what: "one field under both spellings",
        request: |c, u| run(c, u, json!({"display_name": "r", "displayName": "s", "pipeline_spec": {}})),
        expect: "sets field `display_name` twice",
    },
    Case {
        what: "a run without a name",
        request: |c, u| run(c, u, json!({"pipeline_spec": {}})),
        expect: "`display_name` is a required input",
    },
    Case {
        what: "a run without a pipeline",
        request: |c, u| run(c, u, json!({"display_name": "r"})),
        expect: "a run needs a pipeline source",
    },
    Case {
        what: "wrong multipart field name",
        request: |c, u| upload(c, u, "upload?name=demo-ci", "file", "demo-ci.yaml", &spec()),
        expect: "unknown form field `file`",
    },
    Case {
        what: "a file name the upload handler cannot read",
        request: |c, u| upload(c, u, "upload?name=demo-ci", "uploadfile", "demo-ci.txt", &spec()),
        expect: "the server reads .yaml, .yml, .json",
    },
    Case {
        what: "a file that is not a pipeline spec",
        request: |c, u| upload(c, u, "upload?name=demo-ci", "uploadfile", "demo-ci.yaml", b"hello: world\n"),
        expect: "not a KFP pipeline spec",
    },
    Case {
        what: "unknown query parameter (the upload handler reads exact names)",
        request: |c, u| upload(c, u, "upload_version?pipelineId=p&name=v", "uploadfile", "demo-ci.yaml", &spec()),
        expect: "unknown query parameter `pipelineId`",
    },
    Case {
        what: "upload_version without its pipeline",
        request: |c, u| upload(c, u, "upload_version?name=v", "uploadfile", "demo-ci.yaml", &spec()),
        expect: "`pipelineid` is required",
    },
    Case {
        what: "`tags` that are not a JSON object",
        request: |c, u| upload(c, u, "upload?name=demo-ci&tags=main,ci", "uploadfile", "demo-ci.yaml", &spec()),
        expect: "`tags` must be a JSON object of strings",
    },
    Case {
        what: "non-integer integer query parameter",
        request: |c, u| c.get(format!("{u}/apis/v2beta1/pipelines?page_size=ten")),
        expect: "query parameter `page_size`: `ten` is not integer (int32)",
    },
    Case {
        what: "repeated query parameter",
        request: |c, u| c.get(format!("{u}/apis/v2beta1/pipelines?page_size=1&page_size=2")),
        expect: "query parameter `page_size` is repeated",
    },
    Case {
        what: "filter with an unknown field",
        request: |c, u| {
            let filter = json!({"predicates": [{"key": "name", "op": "EQUALS", "string_value": "v"}]});
            c.get(format!("{u}/apis/v2beta1/pipelines/p/versions")).query(&[("filter", filter.to_string())])
        },
        expect: "unknown field `op` in `filter.predicates[0]`",
    },
    Case {
        what: "filter on a field the resource does not have",
        request: |c, u| {
            let filter = json!({"predicates": [{"key": "commit", "operation": "EQUALS", "string_value": "v"}]});
            c.get(format!("{u}/apis/v2beta1/pipelines/p/versions")).query(&[("filter", filter.to_string())])
        },
        expect: "predicate key `commit` is not a field of `v2beta1PipelineVersion`",
    },
    Case {
        what: "sort_by on an unknown field",
        request: |c, u| c.get(format!("{u}/apis/v2beta1/experiments?sort_by=age%20desc")),
        expect: "`sort_by` must be",
    },
    Case {
        what: "path not in the Swagger",
        request: |c, u| c.get(format!("{u}/apis/v2beta1/pipeline/names/demo-ci")),
        expect: "no path in",
    },
    Case {
        what: "method not in the Swagger",
        request: |c, u| c.delete(format!("{u}/apis/v2beta1/healthz")),
        expect: "`DELETE` is not defined for `/apis/v2beta1/healthz`",
    },
    Case {
        what: "JSON operation sent a form",
        request: |c, u| {
            c.post(format!("{u}/apis/v2beta1/experiments")).multipart(Form::new().text("display_name", "x"))
        },
        expect: "takes a JSON body",
    },
    Case {
        what: "a body where the operation takes none",
        request: |c, u| c.post(format!("{u}/apis/v2beta1/runs/r1:terminate")).json(&json!({"reason": "ci"})),
        expect: "takes no request body",
    },
];

#[tokio::test]
async fn kfp_validator_refuses_requests_that_break_the_published_swagger() {
    let kfp = FakeKfp::start();
    assert_refused(&kfp, KFP_CASES, kfp_status).await;
    assert_eq!(kfp.requests().len(), KFP_CASES.len());
    assert!(kfp.pipeline("demo-ci").is_none(), "a refused request changes nothing");
}

#[tokio::test]
async fn kfp_validator_accepts_both_protojson_spellings() {
    let kfp = FakeKfp::start();
    let (pipeline_id, version_id) = kfp.seed_pipeline("demo-ci", &spec());
    let client = Client::new();
    let url = kfp.url();
    let camel = json!({
        "displayName": "camel",
        "pipelineVersionReference": {"pipelineId": pipeline_id},
        "runtimeConfig": {"pipelineRoot": "gs://b/root", "parameters": {"greeting": "hi"}},
        "serviceAccount": "pipeline-runner",
    });
    let snake = json!({
        "display_name": "snake",
        "pipeline_version_reference": {"pipeline_id": pipeline_id, "pipeline_version_id": version_id},
        "runtime_config": {"pipeline_root": "gs://b/root"},
        "storage_state": 1,
    });
    for body in [camel, snake] {
        let response = run(&client, url, body.clone()).send().await.expect("create run");
        assert_eq!(response.status(), 200, "{body}: {}", response.text().await.unwrap_or_default());
        let answer: Value = response.json().await.expect("a run");
        assert_eq!(
            answer["pipeline_version_reference"]["pipeline_version_id"],
            version_id.as_str(),
            "resolved: {answer}"
        );
        assert_eq!(answer["runtime_config"]["pipeline_root"], "gs://b/root", "answered in proto names: {answer}");
    }
    let page = client.get(format!("{url}/apis/v2beta1/pipelines?pageSize=1&sort_by=created_at%20desc")).send().await;
    assert_eq!(page.expect("list").status(), 200, "grpc-gateway reads `pageSize` as `page_size`");
    kfp.assert_no_violations();
}

fn job(client: &Client, url: &str, query: &str, body: Value) -> RequestBuilder {
    client.post(format!("{url}/v1/projects/p/locations/europe-west4/pipelineJobs{query}")).bearer_auth("t").json(&body)
}

fn template() -> Value {
    json!({
        "templateUri": "https://europe-west4-kfp.pkg.dev/p/pipelines/demo-ci/sha256:00",
        "runtimeConfig": {"gcsOutputDirectory": "gs://b/root"},
    })
}

fn with(mut base: Value, key: &str, value: Value) -> Value {
    base[key] = value;
    base
}

fn with_config(config: Value) -> Value {
    with(template(), "runtimeConfig", config)
}

const VERTEX_CASES: &[Case] = &[
    Case {
        what: "unknown field (the KFP spelling)",
        request: |c, u| job(c, u, "", with(template(), "pipelineRoot", json!("gs://b"))),
        expect: "unknown field `pipelineRoot` in `body` (a `PipelineJob`)",
    },
    Case {
        what: "unknown nested field",
        request: |c, u| {
            job(c, u, "", with_config(json!({"gcsOutputDirectory": "gs://b", "parameter_values": {}, "root": "x"})))
        },
        expect: "unknown field `root` in `body.runtimeConfig`",
    },
    Case {
        what: "no output directory",
        request: |c, u| job(c, u, "", with_config(json!({"parameterValues": {}}))),
        expect: "`runtimeConfig.gcsOutputDirectory` is required",
    },
    Case {
        what: "no template",
        request: |c, u| job(c, u, "", json!({"displayName": "x", "runtimeConfig": {"gcsOutputDirectory": "gs://b"}})),
        expect: "needs `pipelineSpec` or `templateUri`",
    },
    Case {
        what: "invalid job id",
        request: |c, u| job(c, u, "?pipelineJobId=Train_1", template()),
        expect: "`pipelineJobId` `Train_1`",
    },
    Case {
        what: "invalid label",
        request: |c, u| job(c, u, "", with(template(), "labels", json!({"Git-SHA": "3f2c1e9"}))),
        expect: "label `Git-SHA: 3f2c1e9`",
    },
    Case {
        what: "a parameter the pipeline does not declare",
        request: |c, u| {
            let inputs = json!({"parameters": {"greeting": {"parameterType": "STRING"}}});
            let spec = json!({"pipelineInfo": {"name": "demo-ci"}, "root": {"inputDefinitions": inputs}});
            let config = json!({"gcsOutputDirectory": "gs://b", "parameterValues": {"greeting": "hi", "epochs": 3}});
            job(c, u, "", json!({"pipelineSpec": spec, "runtimeConfig": config}))
        },
        expect: "parameter `epochs` is not an input",
    },
    Case {
        what: "invalid enum",
        request: |c, u| {
            job(c, u, "", with_config(json!({"gcsOutputDirectory": "gs://b", "failurePolicy": "FAIL_FAST"})))
        },
        expect: "not one of PIPELINE_FAILURE_POLICY_UNSPECIFIED",
    },
    Case {
        what: "unknown query parameter",
        request: |c, u| job(c, u, "?jobId=x", template()),
        expect: "unknown query parameter `jobId`",
    },
    Case {
        what: "cancel with a body field",
        request: |c, u| {
            c.post(format!("{u}/v1/projects/p/locations/l/pipelineJobs/j:cancel"))
                .bearer_auth("t")
                .json(&json!({"force": true}))
        },
        expect: "unknown field `force`",
    },
];

#[tokio::test]
async fn vertex_validator_refuses_requests_that_break_the_documented_contract() {
    let vertex = FakeVertex::start();
    assert_refused(&vertex, VERTEX_CASES, google_error).await;

    let anonymous = Client::new().post(format!("{}/pipelineJobs", vertex.parent_url("p", "l"))).json(&template());
    let response = anonymous.send().await.expect("the fake answers");
    assert_eq!(response.status(), 401, "Vertex AI requires a bearer token");
    let last = vertex.violations().pop().expect("the anonymous request is recorded");
    assert!(last.problem.contains("Authorization"), "{last}");
}
