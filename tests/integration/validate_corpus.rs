//! Every Cloud Build file of the corpus through `pipewright validate`: each is accepted, or rejected
//! with exactly the listed problems (`LINE:COL: field: message`, errors only; warnings are allowed).
//!
//! Most rejections are MUST_MATCH substitution rules: these files are written for triggers, which run
//! with ALLOW_LOOSE and fill `_KEYS` in; `gcloud builds submit` rejects them the same way. The others
//! break a rule of Cloud Build itself (unknown fields, a timeout over 24 h, an unused secret, a built-in
//! key in the file's map, a shell `$VAR` that is not escaped).

use std::collections::BTreeSet;

use crate::support::*;

enum Expect {
    Accept,
    Reject(&'static [&'static str]),
}
use Expect::{Accept, Reject};

const TABLE: &[(&str, Expect)] = &[
    ("GoogleCloudPlatform__cloud-build-local__cloudbuild.yaml", Accept),
    ("GoogleCloudPlatform__cloud-build-local__cloudbuild_tag.yaml", Accept),
    ("GoogleCloudPlatform__cloud-build-local__integration_tests__cloudbuild_big.yaml", Accept),
    ("GoogleCloudPlatform__cloud-build-local__integration_tests__cloudbuild_buildid.yaml", Accept),
    (
        "GoogleCloudPlatform__cloud-build-local__integration_tests__cloudbuild_builtin_substitutions.yaml",
        Reject(&[
            "6:3: substitutions.COMMIT_SHA: substitution key `COMMIT_SHA` does not respect format `^_[A-Z0-9_]+$`",
        ]),
    ),
    ("GoogleCloudPlatform__cloud-build-local__integration_tests__cloudbuild_substitutions.yaml", Accept),
    (
        "GoogleCloudPlatform__cloud-build-local__integration_tests__cloudbuild_substitutions2.yaml",
        Reject(&[
            "5:31: steps[0].args[2]: key in the template `_SUBSTITUTE_ME` is not matched in the substitution data",
        ]),
    ),
    (
        "GoogleCloudPlatform__cloud-build-local__integration_tests__cloudbuild_substitutions3.yaml",
        Reject(&["4:18: steps[0].args[1]: key in the template `_MESSAGE` is not matched in the substitution data"]),
    ),
    ("GoogleCloudPlatform__cloud-build-local__integration_tests__cloudbuild_volumes.yaml", Accept),
    (
        "GoogleCloudPlatform__cloud-builders-community__alcide__example__cloudbuild-gkescan.yaml",
        Reject(&[
            "19:5: steps[0].env[0]: key in the template `_GKE_CLUSTER_ZONE` is not matched in the substitution data",
            "20:5: steps[0].env[1]: key in the template `_GKE_CLUSTER` is not matched in the substitution data",
        ]),
    ),
    ("GoogleCloudPlatform__cloud-builders-community__base-image-builder__cloudbuild.yaml", Accept),
    ("GoogleCloudPlatform__cloud-builders-community__buildah__cloudbuild.yaml", Accept),
    ("GoogleCloudPlatform__cloud-builders-community__cache__cloudbuild.yaml", Accept),
    ("GoogleCloudPlatform__cloud-builders-community__dataproc-custom-image__examples__cloudbuild.yaml", Accept),
    ("GoogleCloudPlatform__cloud-builders-community__docker-reuse__examples__multistage__cloudbuild.yaml", Accept),
    ("GoogleCloudPlatform__cloud-builders-community__envsubst__cloudbuild.yaml", Accept),
    ("GoogleCloudPlatform__cloud-builders-community__fastlane__examples__cloudbuild.yaml", Accept),
    (
        "GoogleCloudPlatform__cloud-builders-community__firebase__examples__cloudbuild.yaml",
        Reject(&["8:5: availableSecrets: secret env `FIREBASE_TOKEN` is defined but no step uses it"]),
    ),
    ("GoogleCloudPlatform__cloud-builders-community__flutter__examples__cloudbuild.yaml", Accept),
    ("GoogleCloudPlatform__cloud-builders-community__hub__cloudbuild.yaml", Accept),
    (
        "GoogleCloudPlatform__cloud-builders-community__jfrog__examples__cloudbuild.yaml",
        Reject(&["33:13: secrets[0].secretEnv.APIKEY: expected a string, found a list"]),
    ),
    ("GoogleCloudPlatform__cloud-builders-community__kustomize__cloudbuild.yaml", Accept),
    ("GoogleCloudPlatform__cloud-builders-community__octokit__examples__terraform-pr__cloudbuild.yaml", Accept),
    ("GoogleCloudPlatform__cloud-builders-community__remote-builder__examples__cloudbuild.yaml", Accept),
    ("GoogleCloudPlatform__cloud-builders-community__scala-sbt__cloudbuild.yaml", Accept),
    ("GoogleCloudPlatform__cloud-builders-community__slackbot__examples__cloudbuild-timeout.yaml", Accept),
    (
        "GoogleCloudPlatform__cloud-builders-community__terraform__examples__infra_at_scale__cloudbuild.yaml",
        Reject(&[
            "9:7: steps[0].env[1]: key in the template `_REGION` is not matched in the substitution data",
            "10:7: steps[0].env[2]: key in the template `_ZONE` is not matched in the substitution data",
        ]),
    ),
    ("GoogleCloudPlatform__cloud-builders-community__vault__examples__cloudbuild-vault-alpine.yaml", Accept),
    (
        "GoogleCloudPlatform__cloud-builders-community__windows-builder__images__multi-arch_1909_2019__cloudbuild.yaml",
        Accept,
    ),
    ("GoogleCloudPlatform__cloud-builders__aactl__examples__cloudbuild.yaml", Accept),
    ("GoogleCloudPlatform__cloud-builders__docker__cloudbuild.yaml", Accept),
    ("GoogleCloudPlatform__cloud-builders__gcloud__cloudbuild.yaml", Accept),
    ("GoogleCloudPlatform__cloud-builders__gke-deploy__doc__app__cloudbuild-with-configs.yaml", Accept),
    ("GoogleCloudPlatform__cloud-builders__gke-deploy__test__cloudbuild_gcb_prepare_apply.yaml", Accept),
    ("GoogleCloudPlatform__cloud-builders__gke-deploy__test__cloudbuild_gcb_run.yaml", Accept),
    ("GoogleCloudPlatform__cloud-builders__go__examples__multi_step__cloudbuild.yaml", Accept),
    ("GoogleCloudPlatform__cloud-builders__gsutil__examples__gcs_push__cloudbuild.yaml", Accept),
    ("GoogleCloudPlatform__cloud-builders__javac__cloudbuild.yaml", Accept),
    ("GoogleCloudPlatform__cloud-builders__kubectl__examples__pods-list__cloudbuild.yaml", Accept),
    ("GoogleCloudPlatform__cloud-builders__mvn__cloudbuild.yaml", Accept),
    ("GoogleCloudPlatform__cloud-builders__npm__examples__hello_world__cloudbuild.yaml", Accept),
    ("GoogleCloudPlatform__cloud-builders__twine__cloudbuild.yaml", Accept),
    (
        "GoogleCloudPlatform__emblem__ops__canary.cloudbuild.yaml",
        Reject(&[
            "22:9: steps[0].args[1]: key in the template `_BODY` is not matched in the substitution data",
            "30:9: steps[1].args[1]: key in the template `_ENV` is not matched in the substitution data",
            "47:7: steps[2].args[3]: key in the template `_SERVICE` is not matched in the substitution data",
            "49:7: steps[2].args[5]: key in the template `_REVISION` is not matched in the substitution data",
            "49:7: steps[2].args[5]: key in the template `_TRAFFIC` is not matched in the substitution data",
            "50:7: steps[2].args[6]: key in the template `_REGION` is not matched in the substitution data",
            "61:9: steps[3].args[1]: key in the template `_IMAGE_NAME` is not matched in the substitution data",
        ]),
    ),
    (
        "GoogleCloudPlatform__emblem__ops__unit-tests.cloudbuild.yaml",
        Reject(&[
            "19:10: steps[0].dir: key in the template `_DIR` is not matched in the substitution data",
            "34:9: steps[2].env[1]: key in the template `_SERVICE_ACCOUNT` is not matched in the substitution data",
        ]),
    ),
    (
        "GoogleCloudPlatform__emblem__ops__web-build.cloudbuild.yaml",
        Reject(&["24:9: steps[0].args[1]: key in the template `_REGION` is not matched in the substitution data"]),
    ),
    (
        "GoogleCloudPlatform__mlops-with-vertex-ai__build__model-deployment.yaml",
        Reject(&[
            "24:10: steps[0].args[3]: key in the template `_BRANCH` is not matched in the substitution data",
            "24:22: steps[0].args[4]: key in the template `_REPO_URL` is not matched in the substitution data",
            "30:9: steps[1].name: key in the template `_CICD_IMAGE_URI` is not matched in the substitution data",
            "35:5: steps[1].env[0]: key in the template `_PROJECT` is not matched in the substitution data",
            "36:5: steps[1].env[1]: key in the template `_REGION` is not matched in the substitution data",
            "37:5: steps[1].env[2]: key in the template `_MODEL_DISPLAY_NAME` is not matched in the substitution data",
            "48:38: steps[2].args[8]: key in the template `_ENDPOINT_DISPLAY_NAME` is not matched in the substitution data",
        ]),
    ),
    (
        "GoogleCloudPlatform__mlops-with-vertex-ai__build__pipeline-deployment.yaml",
        Reject(&[
            "24:10: steps[0].args[3]: key in the template `_BRANCH` is not matched in the substitution data",
            "24:22: steps[0].args[4]: key in the template `_REPO_URL` is not matched in the substitution data",
            "31:9: steps[1].name: key in the template `_CICD_IMAGE_URI` is not matched in the substitution data",
            "36:5: steps[1].env[0]: key in the template `_PROJECT` is not matched in the substitution data",
            "37:5: steps[1].env[1]: key in the template `_BQ_LOCATION` is not matched in the substitution data",
            "38:5: steps[1].env[2]: key in the template `_BQ_DATASET_NAME` is not matched in the substitution data",
            "39:5: steps[1].env[3]: key in the template `_BQ_TABLE_NAME` is not matched in the substitution data",
            "61:5: steps[3].env[1]: key in the template `_REGION` is not matched in the substitution data",
            "62:5: steps[3].env[2]: key in the template `_MODEL_DISPLAY_NAME` is not matched in the substitution data",
            "63:5: steps[3].env[3]: key in the template `_DATASET_DISPLAY_NAME` is not matched in the substitution data",
            "64:5: steps[3].env[4]: key in the template `_TEST_GCS_LOCATION` is not matched in the substitution data",
            "65:5: steps[3].env[5]: key in the template `_CI_TRAIN_LIMIT` is not matched in the substitution data",
            "66:5: steps[3].env[6]: key in the template `_CI_TEST_LIMIT` is not matched in the substitution data",
            "67:5: steps[3].env[7]: key in the template `_CI_UPLOAD_MODEL` is not matched in the substitution data",
            "68:5: steps[3].env[8]: key in the template `_CI_ACCURACY_THRESHOLD` is not matched in the substitution data",
            "76:25: steps[4].args[2]: key in the template `_TFX_IMAGE_URI` is not matched in the substitution data",
            "87:30: steps[5].args[4]: key in the template `_PIPELINE_NAME` is not matched in the substitution data",
            "95:5: steps[5].env[4]: key in the template `_GCS_LOCATION` is not matched in the substitution data",
            "97:5: steps[5].env[6]: key in the template `_BEAM_RUNNER` is not matched in the substitution data",
            "98:5: steps[5].env[7]: key in the template `_TRAINING_RUNNER` is not matched in the substitution data",
            "105:40: steps[6].args[2]: key in the template `_PIPELINES_STORE` is not matched in the substitution data",
        ]),
    ),
    (
        "GoogleCloudPlatform__professional-services__examples__vertex_pipeline__components__cloudbuild_components.yaml",
        Reject(&[
            "19:28: steps[0].args[2]: key in the template `_AF_REGISTRY_LOCATION` is not matched in the substitution data",
            "19:28: steps[0].args[2]: key in the template `_AF_REGISTRY_NAME` is not matched in the substitution data",
        ]),
    ),
    (
        "GoogleCloudPlatform__professional-services__examples__vertex_pipeline__images__cloudbuild_images.yaml",
        Reject(&[
            "19:28: steps[0].args[2]: key in the template `_AF_REGISTRY_LOCATION` is not matched in the substitution data",
            "19:28: steps[0].args[2]: key in the template `_AF_REGISTRY_NAME` is not matched in the substitution data",
        ]),
    ),
    (
        "GoogleCloudPlatform__professional-services__examples__vertex_pipeline__pipelines__cloudbuild_pipeline.yaml",
        Reject(&[
            "17:11: steps[0].name: key in the template `_AF_REGISTRY_LOCATION` is not matched in the substitution data",
            "17:11: steps[0].name: key in the template `_AF_REGISTRY_NAME` is not matched in the substitution data",
            "23:55: steps[1].args[4]: key in the template `_PIPELINE_REGISTRY` is not matched in the substitution data",
        ]),
    ),
    (
        "GoogleCloudPlatform__vertex-ai-samples__.cloud-build__notebook-execution-test-cloudbuild-single.yaml",
        Reject(&[
            "3:11: steps[0].name: key in the template `_PYTHON_IMAGE` is not matched in the substitution data",
            "34:7: steps[4].args[1]: key in the template `_PYTHON_VERION` is not matched in the substitution data",
            "34:7: steps[4].args[1]: key in the template `_NOTEBOOK_GCS_URI` is not matched in the substitution data",
            "34:7: steps[4].args[1]: key in the template `_NOTEBOOK_OUTPUT_GCS_URI` is not matched in the substitution data",
        ]),
    ),
    (
        "GoogleCloudPlatform__vertex-ai-samples__.cloud-build__notebook-execution-test-cloudbuild.yaml",
        Reject(&[
            "3:11: steps[0].name: key in the template `_PYTHON_IMAGE` is not matched in the substitution data",
            "38:7: steps[5].args[1]: key in the template `_TEST_PATHS_FILE` is not matched in the substitution data",
            "38:7: steps[5].args[1]: key in the template `_FORCED_BASE_BRANCH` is not matched in the substitution data",
            "38:7: steps[5].args[1]: key in the template `_GCS_STAGING_BUCKET` is not matched in the substitution data",
            "38:7: steps[5].args[1]: key in the template `_GCP_REGION` is not matched in the substitution data",
            "38:7: steps[5].args[1]: key in the template `_GCP_SERVICE_ACCOUNT` is not matched in the substitution data",
            "38:7: steps[5].args[1]: key in the template `_GPC_VPC_NETWORK_NAME` is not matched in the substitution data",
            "38:7: steps[5].args[1]: key in the template `_PRIVATE_POOL_NAME` is not matched in the substitution data",
            "38:7: steps[5].args[1]: key in the template `_TEST_PERCENT` is not matched in the substitution data",
            "38:7: steps[5].args[1]: key in the template `_CONCURRENT_NOTEBOOKS` is not matched in the substitution data",
            "42:10: timeout: is longer than 24 hours (`86400s`), the most a build may run",
        ]),
    ),
    (
        "GoogleCloudPlatform__vertex-ai-samples__.cloud-build__web-index__notebook-index-cloudbuild.yaml",
        Reject(&[
            "6:11: steps[1].name: key in the template `_PYTHON_IMAGE` is not matched in the substitution data",
            "17:7: steps[2].args[1]: key in the template `_DO_NOT_INDEX_FILE` is not matched in the substitution data",
            "21:21: artifacts.objects.location: key in the template `_GCS_ARTIFACTS_BUCKET` is not matched in the substitution data",
        ]),
    ),
    (
        "GoogleCloudPlatform__vertex-pipelines-end-to-end-samples__cloudbuild__e2e-test.yaml",
        Reject(&[
            "25:9: steps[0].args[1]: key in the template `_PIPELINE_TEMPLATE` is not matched in the substitution data",
            "25:9: steps[0].args[1]: key in the template `_PIPELINE_PUBLISH_GCS_PATH` is not matched in the substitution data",
            "42:9: steps[1].env[0]: key in the template `_TEST_VERTEX_LOCATION` is not matched in the substitution data",
            "43:9: steps[1].env[1]: key in the template `_TEST_VERTEX_PROJECT_ID` is not matched in the substitution data",
            "44:9: steps[1].env[2]: key in the template `_TEST_VERTEX_SA_EMAIL` is not matched in the substitution data",
            "45:9: steps[1].env[3]: key in the template `_TEST_VERTEX_CMEK_IDENTIFIER` is not matched in the substitution data",
            "46:9: steps[1].env[4]: key in the template `_TEST_VERTEX_NETWORK` is not matched in the substitution data",
            "48:9: steps[1].env[6]: key in the template `_TEST_VERTEX_PIPELINE_ROOT` is not matched in the substitution data",
        ]),
    ),
    (
        "GoogleCloudPlatform__vertex-pipelines-end-to-end-samples__cloudbuild__pr-checks.yaml",
        Reject(&[
            "35:9: steps[0].env[1]: key in the template `_PIPELINE_TEMPLATE` is not matched in the substitution data",
        ]),
    ),
    (
        "GoogleCloudPlatform__vertex-pipelines-end-to-end-samples__cloudbuild__release.yaml",
        Reject(&[
            "28:9: steps[0].env[0]: key in the template `_PIPELINE_TEMPLATE` is not matched in the substitution data",
            "38:9: steps[1].args[1]: key in the template `_PIPELINE_PUBLISH_GCS_PATHS` is not matched in the substitution data",
        ]),
    ),
    (
        "GoogleCloudPlatform__vertex-pipelines-end-to-end-samples__cloudbuild__terraform-apply.yaml",
        Reject(&[
            "25:9: steps[0].args[1]: key in the template `_PROJECT_ID` is not matched in the substitution data",
            "25:9: steps[0].args[1]: key in the template `_REGION` is not matched in the substitution data",
        ]),
    ),
    (
        "GoogleCloudPlatform__vertex-pipelines-end-to-end-samples__cloudbuild__terraform-plan.yaml",
        Reject(&[
            "25:9: steps[0].args[1]: key in the template `_PROJECT_ID` is not matched in the substitution data",
            "25:9: steps[0].args[1]: key in the template `_REGION` is not matched in the substitution data",
        ]),
    ),
    ("GoogleCloudPlatform__vertex-pipelines-end-to-end-samples__cloudbuild__trigger-tests.yaml", Accept),
    ("googleapis__googleapis__.cloudbuild__cloudbuild.yaml", Accept),
    (
        "kubeflow__pipelines__test__cloudbuild__api_server.yaml",
        Reject(&["3:26: steps[0].args[2]: key in the template `_GCR_BASE` is not matched in the substitution data"]),
    ),
    (
        "kubeflow__pipelines__test__cloudbuild__batch_build.yaml",
        Reject(&["5:23: steps[0].args[2]: key in the template `_GCR_BASE` is not matched in the substitution data"]),
    ),
    (
        "ollama__ollama__.cloudbuild.yaml",
        Reject(&[
            "17:5: steps[0].onFailure: unknown field `onFailure`",
            "33:5: steps[1].onFailure: unknown field `onFailure`",
            "56:5: steps[2].onFailure: unknown field `onFailure`",
            "78:5: steps[3].onFailure: unknown field `onFailure`",
            "113:5: steps[6].onFailure: unknown field `onFailure`",
            "131:5: steps[7].onFailure: unknown field `onFailure`",
            "160:9: steps[9].args[6]: key in the template `STAGING_ENDPOINT` is not a valid built-in substitution",
            "237:9: steps[12].args[6]: key in the template `ERROR_RATE` is not a valid built-in substitution",
            "315:9: steps[16].args[6]: key in the template `LATENCY` is not a valid built-in substitution",
            "363:3: substitutions._GKE_CLUSTER_STAGING: key `_GKE_CLUSTER_STAGING` in the substitution data is not matched in the template",
            "364:3: substitutions._GKE_CLUSTER_PRODUCTION: key `_GKE_CLUSTER_PRODUCTION` in the substitution data is not matched in the template",
            "365:3: substitutions._REGION: key `_REGION` in the substitution data is not matched in the template",
            "366:3: substitutions._NAMESPACE_STAGING: key `_NAMESPACE_STAGING` in the substitution data is not matched in the template",
            "367:3: substitutions._NAMESPACE_PRODUCTION: key `_NAMESPACE_PRODUCTION` in the substitution data is not matched in the template",
            "376:3: options.loggingLevel: unknown field `loggingLevel`",
            "378:1: onFailure: unknown field `onFailure`",
        ]),
    ),
];

#[test]
fn every_corpus_file_is_accepted_or_rejected_for_a_named_rule() {
    let dir = fixture("cloudbuild");
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("corpus dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".yaml"))
        .collect();
    let listed: BTreeSet<String> = TABLE.iter().map(|(f, _)| f.to_string()).collect();
    assert_eq!(on_disk, listed, "the table must list exactly the corpus files");

    let mut failures = Vec::new();
    for (file, expect) in TABLE {
        let out =
            pipewright().args(["validate", "--format", "json"]).arg(dir.join(file)).output().expect("pipewright runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("panicked") {
            failures.push(format!("{file}: panicked: {stderr}"));
            continue;
        }
        let report: serde_json::Value = match serde_json::from_slice(&out.stdout) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{file}: no JSON report ({e}): {stderr}"));
                continue;
            }
        };
        let errors: Vec<String> = report["diagnostics"]
            .as_array()
            .expect("diagnostics")
            .iter()
            .filter(|d| d["severity"] == "error")
            .map(|d| {
                format!(
                    "{}:{}: {}: {}",
                    d["line"],
                    d["column"],
                    d["field"].as_str().unwrap_or(""),
                    d["message"].as_str().unwrap_or("")
                )
            })
            .collect();
        let (want_valid, want_errors): (bool, Vec<String>) = match expect {
            Accept => (true, Vec::new()),
            Reject(lines) => (false, lines.iter().map(|l| l.to_string()).collect()),
        };
        let code = out.status.code();
        if report["valid"] != want_valid || errors != want_errors || code != Some(if want_valid { 0 } else { 1 }) {
            failures.push(format!("{file}: exit {code:?}\n  expected {want_errors:#?}\n  got      {errors:#?}"));
        }
    }
    assert!(failures.is_empty(), "{} of {} files differ:\n{}", failures.len(), TABLE.len(), failures.join("\n"));
}
