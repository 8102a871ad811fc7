//! The corpus table: every real Kubeflow file in `tests/fixtures/kfp/{components,pipelines}` has its
//! images pointed at per-build references, and the result is proven to differ from the original only
//! at those images, by means independent of the rewriter's own check.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path as FsPath;

use crate::yaml::{self, Node, Value};

use super::target::repository_of;
use super::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/kfp");
const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const DIGEST: &str = "sha256:89abcdef0123456789abcdef0123456789abcdef0123456789abcdef01234567";

#[derive(Clone, Copy, Debug)]
enum Expect {
    /// This many images are rewritten.
    Rewrites(usize),
    /// Nothing to rewrite; the error says this.
    Err(&'static str),
}
use Expect::{Err as Fails, Rewrites};

/// Every file of the corpus with what rewriting it gives. The counts were taken with PyYAML from the
/// files themselves (executors with `container.image`, plus `customJob` worker pools), not from this
/// module.
#[rustfmt::skip]
const TABLE: &[(&str, Expect)] = &[
    ("components/GoogleCloudPlatform__vertex-pipelines-end-to-end-samples__pipeline_components___xgboost___xgboost__train__component.yaml", Rewrites(1)),
    ("components/GoogleCloudPlatform__vertex-pipelines-end-to-end-samples__pipeline_components__aiplatform__aiplatform__upload_model__component.yaml", Rewrites(1)),
    ("components/GoogleCloudPlatform__vertex-pipelines-end-to-end-samples__pipeline_components__bigquery__bigquery__query_to_table__component.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__components__PyTorch__pytorch-kfp-components__templates__ax_train_component.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__components__aws__sagemaker__TrainingJob__component.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__components__contrib__CatBoost__Train_classifier__from_CSV__component.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__components__contrib__XGBoost__Train__component.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__components__contrib__XGBoost__Train_regression_and_calculate_metrics__from_CSV__component.yaml", Fails("a KFP v1 graph component runs other components and has no image")),
    ("components/kubeflow__pipelines__components__contrib___converters__ApacheParquet__from_CSV__component.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__components__contrib__azure__azureml__aml-register-model__component.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__components__contrib__basics__Calculate_hash__component.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__components__contrib__datasets__Chicago_Taxi_Trips__component.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__components__contrib__git__clone__component.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__components__contrib__json__Get_keys__component.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__components__contrib__kubeflow__dnntrainer__component.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__components__contrib__kubeflow__katib-launcher__component.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__components__contrib__kubernetes__Apply_object__component.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__components__contrib__ml_metrics__Calculate_regression_metrics__from_CSV__component.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__components__contrib__sample__Shell_script__component.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__components__google-cloud__google_cloud_pipeline_components___implementation__starry_net__evaluation__evaluation.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__components__google-cloud__google_cloud_pipeline_components___implementation__starry_net__upload_model__upload_model.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__samples__contrib__versioned-pipeline-ci-samples__helloworld-ci-sample__component.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__samples__contrib__versioned-pipeline-ci-samples__kaggle-ci-sample__download_dataset__component.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__samples__contrib__versioned-pipeline-ci-samples__kaggle-ci-sample__train_model__component.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__samples__contrib__versioned-pipeline-ci-samples__mnist-ci-sample__train__component.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__sdk__python__test_data__v1_component_yaml__add_component.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__sdk__python__test_data__v1_component_yaml__concat_placeholder_component.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__sdk__python__test_data__v1_component_yaml__fancy_trainer_component.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__sdk__python__test_data__v1_component_yaml__if_placeholder_component.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__sdk__python__test_data__v1_component_yaml__ingestion_component.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__sdk__python__test_data__v1_component_yaml__serving_component.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__sdk__python__test_data__v1_component_yaml__trainer_component.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__component_with_metadata_fields.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__container_io.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__container_with_artifact_output.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__container_with_concat_placeholder.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__container_with_if_placeholder.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__container_with_placeholder_in_fstring.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__containerized_python_component.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__critical__add_numbers.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__critical__component_with_optional_inputs.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__essential__component_with_env_variable.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__essential__component_with_pip_index_urls.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__essential__component_with_pip_install.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__essential__concat_message.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__essential__container_no_input.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__essential__dict_input.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__identity.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__input_artifact.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__nested_return.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__output_metrics.yaml", Rewrites(1)),
    ("components/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__preprocess.yaml", Rewrites(1)),
    ("pipelines/kubeflow__pipelines__components__google-cloud__google_cloud_pipeline_components__preview__automl__tabular__feature_selection_pipeline.yaml", Rewrites(2)),
    ("pipelines/kubeflow__pipelines__components__google-cloud__google_cloud_pipeline_components__v1__automl__forecasting__bqml_arima_predict_pipeline.yaml", Rewrites(11)),
    ("pipelines/kubeflow__pipelines__sdk__python__kfp__v2__compiler_cli_tests__test_data__pipeline_with_custom_job_spec.json", Rewrites(3)),
    ("pipelines/kubeflow__pipelines__sdk__python__kfp__v2__compiler_cli_tests__test_data__pipeline_with_exit_handler.json", Rewrites(3)),
    ("pipelines/kubeflow__pipelines__sdk__python__kfp__v2__compiler_cli_tests__test_data__pipeline_with_resource_spec.json", Rewrites(2)),
    ("pipelines/kubeflow__pipelines__sdk__python__kfp__v2__compiler_cli_tests__test_data__two_step_pipeline.json", Rewrites(2)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__arguments_parameters.yaml", Rewrites(1)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__critical__collected_parameters.yaml", Rewrites(5)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__critical__flip_coin.yaml", Rewrites(7)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__critical__parallel_for_after_dependency.yaml", Rewrites(3)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__critical__parameter_oneof.yaml", Rewrites(4)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__critical__pipeline_with_env.yaml", Rewrites(2)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__critical__pipeline_with_importer_workspace.yaml", Rewrites(6)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__critical__pipeline_with_input_status_state.yaml", Rewrites(2)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__critical__pipeline_with_pod_metadata.yaml", Rewrites(5)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__critical__pipeline_with_retry.yaml", Rewrites(1)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__critical__pipeline_with_secret_as_env.yaml", Rewrites(2)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__critical__pipeline_with_workspace.yaml", Rewrites(2)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__critical__producer_consumer_param_pipeline.yaml", Rewrites(2)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__critical__two_step_pipeline_containerized.yaml", Rewrites(2)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__essential__iris_pipeline_compiled.yaml", Rewrites(3)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__essential__lightweight_python_functions_pipeline.yaml", Rewrites(2)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__essential__pipeline_with_after.yaml", Rewrites(3)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__essential__pipeline_with_condition.yaml", Rewrites(5)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__essential__pipeline_with_metrics_outputs.yaml", Rewrites(2)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__essential__pipeline_with_nested_conditions.yaml", Rewrites(8)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__essential__pipeline_with_outputs.yaml", Rewrites(3)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__essential__pipeline_with_reused_component.yaml", Rewrites(3)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__failing__fail_v2.yaml", Rewrites(1)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__failing__pipeline_with_exit_handler.yaml", Rewrites(3)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__failing__pipeline_with_multiple_exit_handlers.yaml", Rewrites(7)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__gpu-scheduling__nvidia_gpu_scheduling_check.yaml", Rewrites(1)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__hello_world.yaml", Rewrites(1)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__if_elif_else_complex.yaml", Rewrites(13)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__long-running.yaml", Rewrites(2)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__parallel_and_nested__parallel_for_mount_pvc.yaml", Rewrites(2)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__parallel_and_nested__pipeline_in_pipeline_complex.yaml", Rewrites(4)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__parallel_and_nested__pipeline_in_pipeline_loaded_from_yaml.yaml", Rewrites(4)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__pipeline_as_exit_task.yaml", Rewrites(4)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__pipeline_with_dynamic_importer_metadata.yaml", Rewrites(1)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__pipeline_with_google_artifact_type.yaml", Rewrites(2)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__pipeline_with_importer.json", Rewrites(2)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__pipeline_with_importer.yaml", Rewrites(2)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__pipeline_with_loops_and_conditions.yaml", Rewrites(13)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__pipeline_with_nested_loops.yaml", Rewrites(3)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__pipeline_with_parallelfor_list_artifacts_GH-12033.yaml", Rewrites(4)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__pipeline_with_parallelfor_parallelism.yaml", Rewrites(17)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__pipeline_with_string_machine_fields_task_output.yaml", Rewrites(5)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__pipeline_with_task_using_ignore_upstream_failure.yaml", Rewrites(2)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__pipeline_with_volume.yaml", Rewrites(4)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__take_nap_pipeline_root_compiled.yaml", Rewrites(2)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__two_step_pipeline.yaml", Rewrites(2)),
    ("pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__xgboost_sample_pipeline.yaml", Rewrites(8)),
];

/// `localhost:5000/pw/<last path segment>:<sha>@<digest>`.
fn reference_for(repository: &str) -> String {
    let name = repository.rsplit('/').next().unwrap_or(repository);
    format!("localhost:5000/pw/{name}:{SHA}@{DIGEST}")
}

/// One target per distinct repository among the file's images. A v1 component's image may be no
/// reference at all (`''`, `docker image name`); it gets a made-up repository, since v1 images are
/// replaced whatever they say.
fn targets_for(text: &str, label: &str) -> Vec<ImageTarget> {
    let images = super::images(text, label).unwrap_or_default();
    let mut repositories: Vec<String> = images
        .iter()
        .map(|i| repository_of(&i.image).unwrap_or_else(|| "localhost:5000/pw/component".to_string()))
        .collect();
    if repositories.is_empty() {
        repositories.push("localhost:5000/pw/component".to_string());
    }
    repositories.sort();
    repositories.dedup();
    repositories
        .into_iter()
        .map(|repository| ImageTarget {
            component: repository.rsplit('/').next().unwrap_or_default().to_string(),
            reference: reference_for(&repository),
            repository,
        })
        .collect()
}

fn read(name: &str) -> String {
    std::fs::read_to_string(FsPath::new(FIXTURES).join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn rewrite(name: &str, text: &str, targets: &[ImageTarget]) -> Result<Rewrite, SpecError> {
    if name.starts_with("components/") {
        // The table's component files have one repository each (a v1 file has one image).
        rewrite_component(text, name, &targets[0])
    } else {
        rewrite_pipeline(text, name, targets)
    }
}

fn files_on_disk() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for dir in ["components", "pipelines"] {
        for entry in std::fs::read_dir(FsPath::new(FIXTURES).join(dir)).expect("fixture folder") {
            let entry = entry.expect("fixture entry");
            names.insert(format!("{dir}/{}", entry.file_name().to_string_lossy()));
        }
    }
    names
}

#[test]
fn corpus_table() {
    let on_disk = files_on_disk();
    let in_table: BTreeSet<String> = TABLE.iter().map(|(name, _)| name.to_string()).collect();
    let mut failures: Vec<String> = Vec::new();
    failures.extend(on_disk.difference(&in_table).map(|n| format!("{n}: on disk but not in the table")));
    failures.extend(in_table.difference(&on_disk).map(|n| format!("{n}: in the table but not on disk")));
    if in_table.len() != TABLE.len() {
        failures.push("the table lists a file twice".to_string());
    }
    let (mut rewritten, mut refused) = (0, 0);
    for &(name, expect) in TABLE.iter().filter(|(name, _)| on_disk.contains(*name)) {
        match check_file(name, expect) {
            Ok(true) => rewritten += 1,
            Ok(false) => refused += 1,
            Err(problem) => failures.push(format!("{name}: {problem}")),
        }
    }
    eprintln!("corpus: {rewritten} files rewritten and proven, {refused} refused as expected");
    assert!(failures.is_empty(), "{} corpus file(s) failed:\n{}", failures.len(), failures.join("\n"));
}

/// `Ok(true)` for a rewrite proven sound, `Ok(false)` for the expected refusal.
fn check_file(name: &str, expect: Expect) -> Result<bool, String> {
    let text = read(name);
    let targets = targets_for(&text, name);
    match (expect, rewrite(name, &text, &targets)) {
        (Fails(fragment), Err(e)) => {
            let message = e.to_string();
            if message.contains(fragment) && message.starts_with(name) {
                Ok(false)
            } else {
                Err(format!("expected an error with {fragment:?}, got: {message}"))
            }
        }
        (Fails(_), Ok(r)) => Err(format!("expected an error, got {} changes", r.changes.len())),
        (Rewrites(n), Err(e)) => Err(format!("expected {n} rewrites, got an error: {e}")),
        (Rewrites(n), Ok(r)) if r.changes.len() != n => {
            Err(format!("expected {n} rewrites, got {}: {:?}", r.changes.len(), r.changes))
        }
        (Rewrites(_), Ok(r)) => prove(name, &text, &r, &targets).map(|()| true),
    }
}

/// Everything a sound rewrite must satisfy, each checked without the rewriter's own verification.
fn prove(name: &str, original: &str, rewrite: &Rewrite, targets: &[ImageTarget]) -> Result<(), String> {
    if rewrite.changes.iter().any(|c| c.old == c.new) {
        return Err("a corpus image already was the new reference".into());
    }
    only_image_values_differ(original, rewrite)?;
    only_image_lines_differ(original, rewrite)?;
    comments_survive(original, &rewrite.text)?;
    if name.ends_with(".json") {
        serde_json::from_str::<serde_json::Value>(&rewrite.text).map_err(|e| format!("no longer JSON: {e}"))?;
    }
    let again = self::rewrite(name, &rewrite.text, targets).map_err(|e| format!("rewriting twice fails: {e}"))?;
    if again.text != rewrite.text {
        return Err("rewriting twice changes the file again".into());
    }
    if rewrite.kind != SpecKind::ComponentV1 {
        checks_and_summaries(name, original, &rewrite.text, targets, rewrite.changes.len())?;
    }
    Ok(())
}

/// (a) Re-parsed, the documents differ exactly at the changed paths, which read as the new values.
fn only_image_values_differ(original: &str, rewrite: &Rewrite) -> Result<(), String> {
    let old = yaml::parse_stream(original).map_err(|e| e.to_string())?;
    let new = yaml::parse_stream(&rewrite.text).map_err(|e| format!("rewritten text does not parse: {e}"))?;
    if old.len() != new.len() {
        return Err(format!("{} documents became {}", old.len(), new.len()));
    }
    let mut differences = BTreeMap::new();
    for (i, (a, b)) in old.iter().zip(&new).enumerate() {
        let prefix = if i == 0 { String::new() } else { format!("document {}: ", i + 1) };
        differ(a, b, prefix, &mut differences);
    }
    let expected: BTreeMap<String, String> =
        rewrite.changes.iter().map(|c| (c.path.clone(), format!("`{}`", c.new))).collect();
    if differences != expected {
        return Err(format!("values differ at {differences:?}, expected exactly {expected:?}"));
    }
    Ok(())
}

/// Collects every path where two trees differ, with what the new tree has there.
fn differ(old: &Node, new: &Node, path: String, out: &mut BTreeMap<String, String>) {
    let join = |key: &str| {
        if path.is_empty() || path.ends_with(": ") { format!("{path}{key}") } else { format!("{path}.{key}") }
    };
    match (&old.value, &new.value) {
        (Value::Scalar { text: a, plain: pa }, Value::Scalar { text: b, plain: pb }) => {
            if a != b || (pa != pb && !(old.is_null() && new.is_null())) {
                out.insert(path, format!("`{b}`"));
            }
        }
        (Value::Seq(a), Value::Seq(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                differ(x, y, format!("{path}[{i}]"), out);
            }
        }
        (Value::Map(a), Value::Map(b)) if a.len() == b.len() => {
            for ((ka, va), (kb, vb)) in a.iter().zip(b) {
                match (&ka.value, &kb.value) {
                    (Value::Scalar { text: x, .. }, Value::Scalar { text: y, .. }) if x == y => {
                        differ(va, vb, join(x), out)
                    }
                    _ => {
                        out.insert(join("?"), "a different key".into());
                    }
                }
            }
        }
        _ => {
            out.insert(path, format!("{} instead of {}", new.kind(), old.kind()));
        }
    }
}

/// (b) A line diff touches only lines that held an image, and keeps what else was on them (a comment
/// after the image, say).
fn only_image_lines_differ(original: &str, rewrite: &Rewrite) -> Result<(), String> {
    let old: Vec<&str> = original.split('\n').collect();
    let new: Vec<&str> = rewrite.text.split('\n').collect();
    if old.len() != new.len() {
        return Err(format!("{} lines became {}", old.len(), new.len()));
    }
    let image_lines: BTreeSet<usize> = rewrite.changes.iter().map(|c| c.line).collect();
    for (i, (a, b)) in old.iter().zip(&new).enumerate() {
        let line = i + 1;
        if a == b {
            if image_lines.contains(&line) {
                return Err(format!("line {line} held an image but did not change"));
            }
            continue;
        }
        if !image_lines.contains(&line) {
            return Err(format!("line {line} changed but held no image:\n- {a}\n+ {b}"));
        }
        let indent = a.len() - a.trim_start().len();
        if b.get(..indent) != a.get(..indent) {
            return Err(format!("line {line} lost its indentation"));
        }
        if let Some(comment) = a.find(" #").map(|i| &a[i..])
            && !b.ends_with(comment)
        {
            return Err(format!("line {line} lost its comment {comment:?}"));
        }
    }
    Ok(())
}

/// (c) Every comment line of the original is still there, byte for byte.
fn comments_survive(original: &str, rewritten: &str) -> Result<(), String> {
    let kept: BTreeSet<&str> = rewritten.lines().collect();
    match original.lines().find(|l| l.trim_start().starts_with('#') && !kept.contains(l)) {
        Some(lost) => Err(format!("comment line lost: {lost:?}")),
        None => Ok(()),
    }
}

/// (d) The check passes on the rewritten IR and finds every image stale in the original; (e) both
/// summarise, and their summaries differ only in the executor images.
fn checks_and_summaries(
    name: &str,
    original: &str,
    rewritten: &str,
    targets: &[ImageTarget],
    changed: usize,
) -> Result<(), String> {
    let after = check_pipeline(rewritten, name, targets).map_err(|e| format!("check fails after the rewrite: {e}"))?;
    match check_pipeline(original, name, targets) {
        Err(SpecError::StaleImage { stale, .. }) if stale.len() == changed => {}
        other => return Err(format!("check of the original: expected {changed} stale images, got {other:?}")),
    }
    let mut before = summarize(original, name).map_err(|e| format!("summary of the original: {e}"))?;
    let new_image = |image: &mut String| {
        if let Some(target) = targets.iter().find(|t| repository_of(image).as_deref() == Some(&t.repository)) {
            *image = target.reference.clone();
        }
    };
    for executor in before.executors.values_mut() {
        executor.image.iter_mut().for_each(new_image);
        executor.worker_pool_images.iter_mut().for_each(new_image);
    }
    if before != after {
        return Err(format!("summaries differ beyond the images:\n{before:#?}\n{after:#?}"));
    }
    Ok(())
}

/// The Kubeflow SDK itself reads every rewritten file it could read before, with the new images
/// (`tests/kfp_check.py`). Without `kfp` installed this is skipped loudly, unless CI mode
/// (`PIPEWRIGHT_REQUIRE_DOCKER=1`) makes that a failure. `PIPEWRIGHT_PYTHON` names the interpreter
/// (default `python3`), e.g. a virtualenv's.
#[test]
fn kubeflow_sdk_reads_the_rewritten_corpus() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut pairs = Vec::new();
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    for &(name, expect) in TABLE {
        if matches!(expect, Fails(_)) {
            continue;
        }
        let text = read(name);
        let rewrite = rewrite(name, &text, &targets_for(&text, name)).unwrap_or_else(|e| panic!("{e}"));
        let out = dir.path().join(name.replace('/', "__"));
        std::fs::write(&out, &rewrite.text).expect("write the rewritten file");
        pairs.push(FsPath::new(FIXTURES).join(name).display().to_string());
        pairs.push(out.display().to_string());
        for change in rewrite.changes {
            let previous = map.insert(change.old.clone(), change.new.clone());
            assert!(previous.is_none_or(|p| p == change.new), "`{}` maps to two references", change.old);
        }
    }
    let python = std::env::var("PIPEWRIGHT_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/kfp_check.py");
    let output = std::process::Command::new(&python)
        .arg(script)
        .args(map.iter().flat_map(|(old, new)| ["--map".to_string(), format!("{old}={new}")]))
        .args(&pairs)
        .output();
    let output = match output {
        Ok(output) => output,
        Err(e) => return skip_or_fail(&format!("cannot run `{python}`: {e}")),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    match output.status.code() {
        Some(0) => eprintln!("{stdout}"),
        Some(77) => skip_or_fail(stderr.trim()),
        _ => panic!("tests/kfp_check.py failed ({}):\n{stdout}\n{stderr}", output.status),
    }
}

fn skip_or_fail(reason: &str) {
    if std::env::var("PIPEWRIGHT_REQUIRE_DOCKER").is_ok_and(|v| v == "1") {
        panic!("the Kubeflow SDK check cannot run and PIPEWRIGHT_REQUIRE_DOCKER=1: {reason}");
    }
    eprintln!("\n==== SKIPPED: the Kubeflow SDK check did not run: {reason} ====\n");
}
