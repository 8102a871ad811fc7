//! Contract tests: pipewright's HTTP clients against local fakes of Kubeflow Pipelines, Artifact
//! Registry and Vertex AI that check every request against the peers' published API definitions:
//! KFP's own Swagger and `.proto` files (`tests/fixtures/kfp/reference/`) and, for Artifact Registry
//! and Vertex AI, which publish none in the corpus, the contract documented in docs/research/kfp.md §5–§6.
//!
//! They test against the definitions, not a live service: no cluster compiles, schedules or runs
//! anything, and a peer's behaviour beyond its definition is modelled only as far as the fakes say
//! (name uniqueness, "already exists" answers, scripted run states).
//!
//! A fake answers a request that breaks the contract with a 400 (401 without the token) and records
//! it as a violation; every test ends with `assert_no_violations()`, which lists them all.

mod artifact_registry;
mod kfp;
mod server;
mod swagger;
mod template;
mod vertex;

mod build_tests;
mod fake_tests;
mod run_tests;
mod upload_tests;
mod validator_tests;

pub use artifact_registry::FakeArtifactRegistry;
pub use kfp::FakeKfp;
pub use server::Reply;
pub use vertex::FakeVertex;

/// The minimal IR of docs/research/kfp.md §2.7 with busybox images: two container steps wired by a
/// parameter and an artifact.
pub fn demo_ir(image: &str) -> String {
    format!(
        r#"# PIPELINE DEFINITION
# Name: demo-ci
pipelineInfo:
  name: demo-ci
  description: Two container steps wired by a parameter and an artifact
schemaVersion: 2.1.0
sdkVersion: kfp-2.17.0
defaultPipelineRoot: gs://my-bucket/pipeline-root
root:
  inputDefinitions:
    parameters:
      greeting: {{parameterType: STRING, defaultValue: hello}}
  dag:
    tasks:
      produce:
        taskInfo: {{name: produce}}
        componentRef: {{name: comp-produce}}
        cachingOptions: {{enableCache: true}}
        inputs:
          parameters:
            text: {{componentInputParameter: greeting}}
      consume:
        taskInfo: {{name: consume}}
        componentRef: {{name: comp-consume}}
        dependentTasks: [produce]
        inputs:
          parameters:
            msg: {{taskOutputParameter: {{producerTask: produce, outputParameterKey: msg}}}}
            times: {{runtimeValue: {{constant: 2}}}}
          artifacts:
            data: {{taskOutputArtifact: {{producerTask: produce, outputArtifactKey: data}}}}
components:
  comp-produce:
    executorLabel: exec-produce
    inputDefinitions:
      parameters: {{text: {{parameterType: STRING}}}}
    outputDefinitions:
      parameters: {{msg: {{parameterType: STRING}}}}
      artifacts:
        data: {{artifactType: {{schemaTitle: system.Dataset, schemaVersion: 0.0.1}}}}
  comp-consume:
    executorLabel: exec-consume
    inputDefinitions:
      parameters:
        msg: {{parameterType: STRING}}
        times: {{parameterType: NUMBER_INTEGER}}
      artifacts:
        data: {{artifactType: {{schemaTitle: system.Dataset, schemaVersion: 0.0.1}}}}
deploymentSpec:
  executors:
    exec-produce:
      container:
        image: {image}
        command:
        - sh
        - -ec
        - |
          mkdir -p "$(dirname "$1")" "$(dirname "$2")"
          printf '%s' "$0 world" > "$1"
          echo "a,b" > "$2"
        - "{{{{$.inputs.parameters['text']}}}}"
        - "{{{{$.outputs.parameters['msg'].output_file}}}}"
        - "{{{{$.outputs.artifacts['data'].path}}}}"
    exec-consume:
      container:
        image: {image}
        command: [sh, -ec, 'echo "$0 x$1"; cat "$2"']
        args:
        - "{{{{$.inputs.parameters['msg']}}}}"
        - "{{{{$.inputs.parameters['times']}}}}"
        - "{{{{$.inputs.artifacts['data'].path}}}}"
        resources: {{resourceCpuLimit: '1', resourceMemoryLimit: 512M}}
"#
    )
}
