//! Behaviour of the public API on small hand-written specs: which images match, how each quoting
//! style is kept, what is refused, and what the messages say.

use super::*;

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn target(repository: &str, reference: &str) -> ImageTarget {
    let component = repository.rsplit('/').next().unwrap_or(repository).to_string();
    ImageTarget { component, repository: repository.into(), reference: reference.into() }
}

fn train() -> ImageTarget {
    target("localhost:5000/acme/train", &format!("localhost:5000/acme/train:{SHA}@{DIGEST}"))
}

/// A pipeline whose executors have the given images, written as the given YAML scalars.
fn pipeline(images: &[&str]) -> String {
    let mut text = String::from(
        "# PIPELINE DEFINITION\n# Name: p\npipelineInfo:\n  name: p\nschemaVersion: 2.1.0\nroot:\n  dag:\n    \
         tasks: {}\ndeploymentSpec:\n  executors:\n",
    );
    for (i, image) in images.iter().enumerate() {
        text.push_str(&format!("    exec-{i}:\n      container:\n        image: {image}  # the image\n"));
        text.push_str("        command: [python, '-m', \"x\"]\n");
    }
    text
}

/// The image lines of a rewritten text, trimmed.
fn image_lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.trim_start().starts_with("image:")).map(str::trim).collect()
}

#[track_caller]
fn rewritten(text: &str, targets: &[ImageTarget]) -> Rewrite {
    rewrite_pipeline(text, "p.yaml", targets).unwrap_or_else(|e| panic!("{e}"))
}

#[track_caller]
fn error(result: Result<impl std::fmt::Debug, SpecError>) -> String {
    result.expect_err("an error").to_string()
}

#[test]
fn images_match_by_repository() {
    let text = pipeline(&[
        "localhost:5000/acme/train:old",
        &format!("localhost:5000/acme/train@{DIGEST}"),
        "localhost:5000/acme/train",
        "localhost:5000/acme/train-eval:old",
        "localhost:5001/acme/train:old",
        "acme/train:old",
    ]);
    let rewrite = rewritten(&text, &[train()]);
    let paths: Vec<&str> = rewrite.changes.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "deploymentSpec.executors.exec-0.container.image",
            "deploymentSpec.executors.exec-1.container.image",
            "deploymentSpec.executors.exec-2.container.image"
        ]
    );
    assert_eq!(rewrite.changes[0].line, 13);
    assert_eq!(rewrite.changes[0].component, "train");
    assert_eq!(rewrite.changes[1].old, format!("localhost:5000/acme/train@{DIGEST}"));
}

#[test]
fn docker_hub_names_are_not_normalised() {
    let text = pipeline(&["python:3.11", "docker.io/library/python:3.11", "library/python:3.11"]);
    let rewrite = rewritten(&text, &[target("python", "localhost:5000/pw/python:1")]);
    assert_eq!(rewrite.changes.len(), 1);
    assert_eq!(rewrite.changes[0].old, "python:3.11");
}

#[test]
fn styles_are_kept() {
    let reference = format!("localhost:5000/acme/train:{SHA}");
    let text = pipeline(&[
        "localhost:5000/acme/train:a",
        "'localhost:5000/acme/train:b'",
        "\"localhost:5000/acme/train:c\"",
        "!!str localhost:5000/acme/train:d",
    ]);
    let rewrite = rewritten(&text, &[target("localhost:5000/acme/train", &reference)]);
    assert_eq!(
        image_lines(&rewrite.text),
        [
            format!("image: {reference}  # the image"),
            format!("image: '{reference}'  # the image"),
            format!("image: \"{reference}\"  # the image"),
            format!("image: !!str {reference}  # the image"),
        ]
    );
}

#[test]
fn plain_becomes_quoted_when_yaml_would_read_something_else() {
    // PyYAML reads a plain `1234:5678` as the sexagesimal integer 1234 * 60 + 5678.
    let text = pipeline(&["acme:old"]);
    let rewrite = rewritten(&text, &[target("acme", "1234:5678")]);
    assert_eq!(image_lines(&rewrite.text), ["image: '1234:5678'  # the image"]);
}

#[test]
fn flow_mappings_stay_flow() {
    let text = "pipelineInfo: {name: p}\nschemaVersion: 2.1.0\nroot: {dag: {tasks: {}}}\ndeploymentSpec:\n  \
                executors: {exec-a: {container: {image: localhost:5000/acme/train:a, args: [x]}}}\n";
    let rewrite = rewritten(text, &[train()]);
    let expected = text.replace("localhost:5000/acme/train:a", &train().reference);
    assert_eq!(rewrite.text, expected);
}

#[test]
fn json_stays_json() {
    let text = r#"{
  "deploymentSpec": {"executors": {"exec-a": {"container": {"image": "localhost:5000/acme/train:a"}}}},
  "pipelineInfo": {"name": "p"},
  "root": {"dag": {"tasks": {}}},
  "schemaVersion": "2.1.0"
}"#;
    let rewrite = rewritten(text, &[train()]);
    let json: serde_json::Value = serde_json::from_str(&rewrite.text).expect("still JSON");
    assert_eq!(json["deploymentSpec"]["executors"]["exec-a"]["container"]["image"], train().reference.as_str());
    assert_eq!(rewrite.text, text.replace("localhost:5000/acme/train:a", &train().reference));
}

#[test]
fn legacy_wrapper_and_custom_job() {
    let text = r#"{"pipelineSpec": {"pipelineInfo": {"name": "p"}, "schemaVersion": "2.0.0", "root": {},
      "deploymentSpec": {"executors": {"exec-a": {"customJob": {"customJob": {"jobSpec": {"workerPoolSpecs": [
        {"containerSpec": {"imageUri": "localhost:5000/acme/train:a"}},
        {"containerSpec": {"imageUri": "alpine"}}]}}}}}}},
      "runtimeConfig": {}}"#;
    let rewrite = rewritten(text, &[train()]);
    assert_eq!(rewrite.kind, SpecKind::LegacyPipelineJob);
    assert_eq!(
        rewrite.changes[0].path,
        "pipelineSpec.deploymentSpec.executors.exec-a.customJob.customJob.jobSpec.workerPoolSpecs[0].containerSpec.imageUri"
    );
    assert_eq!(rewrite.changes.len(), 1);
    check_pipeline(&rewrite.text, "p.json", &[train()]).expect("passes after the rewrite");
}

#[test]
fn block_scalars_become_quoted() {
    let reference = train().reference;
    for image in ["|\n          localhost:5000/acme/train:a\n", ">-  # folded\n          localhost:5000/acme/train:a\n"]
    {
        let text = format!(
            "implementation:\n  container:\n    image: {image}    command: [x]\n    args: [\n      y]\nname: c\n"
        );
        let rewrite = rewrite_component(&text, "c.yaml", &train()).unwrap_or_else(|e| panic!("{e}"));
        let comment = if image.contains('#') { "  # folded" } else { "" };
        let expected = format!("implementation:\n  container:\n    image: '{reference}'{comment}\n    command: [x]\n");
        assert!(rewrite.text.starts_with(&expected), "{}", rewrite.text);
    }
}

#[test]
fn a_block_scalar_that_cannot_be_rewritten_is_an_error() {
    // The anchored block is read again through the alias, so rewriting it would change `x-copy` too.
    let text = "implementation:\n  container:\n    image: &i |\n      python\nx-copy: *i\n";
    let err = error(rewrite_component(text, "c.yaml", &train()));
    assert!(err.starts_with("c.yaml:4: the image at `implementation.container.image` is a block scalar"), "{err}");
    assert!(err.contains("`x-copy` changed too"), "{err}");
}

#[test]
fn aliases_are_refused() {
    let text = "x-image: &img localhost:5000/acme/train:a\n".to_string() + &pipeline(&["*img"]);
    let err = error(rewrite_pipeline(&text, "p.yaml", &[train()]));
    assert_eq!(
        err,
        "p.yaml:14: the image at `deploymentSpec.executors.exec-0.container.image` is a YAML alias, which cannot be \
         edited in place\n\nhint: write the image out in full at `deploymentSpec.executors.exec-0.container.image`"
    );
}

#[test]
fn an_anchored_image_used_elsewhere_is_refused() {
    let text = pipeline(&["&img localhost:5000/acme/train:a"]) + "x-copy: *img\n";
    let err = error(rewrite_pipeline(&text, "p.yaml", &[train()]));
    assert!(
        err.starts_with("p.yaml:15: the rewrite failed its check and was not applied: `x-copy` changed too"),
        "{err}"
    );
}

#[test]
fn an_image_shared_by_a_merge_key_is_rewritten_once() {
    let text = "pipelineInfo: {name: p}\nschemaVersion: 2.1.0\nroot: {}\ndeploymentSpec:\n  executors:\n    \
                exec-a:\n      container: &c\n        image: localhost:5000/acme/train:a\n    exec-b:\n      \
                container:\n        <<: *c\n        args: [x]\n";
    let rewrite = rewritten(text, &[train()]);
    assert_eq!(rewrite.changes.len(), 2);
    assert_eq!(rewrite.text, text.replace("localhost:5000/acme/train:a", &train().reference));
    check_pipeline(&rewrite.text, "p.yaml", &[train()]).expect("both executors have the new image");
}

#[test]
fn v1_images_are_replaced_whatever_they_say() {
    for image in ["''", "\"docker image name\"", "train_image_location", "python:3.7", "alpine@sha256:00"] {
        let text = format!("name: Train\nimplementation:\n  container:\n    image: {image}\n    command: [python]\n");
        let rewrite = rewrite_component(&text, "c.yaml", &train()).unwrap_or_else(|e| panic!("{image}: {e}"));
        assert_eq!(rewrite.kind, SpecKind::ComponentV1);
        assert_eq!(rewrite.changes[0].path, "implementation.container.image");
        let quote = if image.starts_with('\'') {
            "'"
        } else if image.starts_with('"') {
            "\""
        } else {
            ""
        };
        let expected = format!("image: {quote}{}{quote}", train().reference);
        assert_eq!(image_lines(&rewrite.text), [expected.as_str()], "{image}");
    }
}

#[test]
fn v1_refusals_name_file_line_and_path() {
    let graph = "name: g\nimplementation:\n  graph:\n    tasks: {}\n";
    let err = error(rewrite_component(graph, "g.yaml", &train()));
    assert!(err.starts_with("g.yaml:4: `implementation.graph`: a KFP v1 graph component"), "{err}");
    let no_image = "name: c\nimplementation:\n  container:\n    command: [x]\n";
    assert_eq!(
        error(rewrite_component(no_image, "c.yaml", &train())),
        "c.yaml:4: `implementation.container.image` is missing"
    );
    let null_image = "name: c\nimplementation:\n  container:\n    image:\n    command: [x]\n";
    assert_eq!(
        error(rewrite_component(null_image, "c.yaml", &train())),
        "c.yaml:4: `implementation.container.image` is missing"
    );
    let map_image = "name: c\nimplementation:\n  container:\n    image: {name: x}\n";
    assert_eq!(
        error(rewrite_component(map_image, "c.yaml", &train())),
        "c.yaml:4: `implementation.container.image` is a mapping, expected a string"
    );
    let v1 = "name: c\nimplementation:\n  container:\n    image: x\n";
    assert!(error(rewrite_pipeline(v1, "c.yaml", &[train()])).starts_with("c.yaml: a KFP v1 component"));
    assert!(error(check_pipeline(v1, "c.yaml", &[train()])).starts_with("c.yaml: a KFP v1 component"));
    assert!(error(summarize(v1, "c.yaml")).starts_with("c.yaml: a KFP v1 component"));
}

#[test]
fn naming_no_image_of_the_component_is_an_error() {
    let text = pipeline(&["python:3.11", "python:3.11", "alpine"]);
    assert_eq!(
        error(rewrite_component(&text, "c.yaml", &train())),
        "c.yaml: names no image of component `train` (repository `localhost:5000/acme/train`)\n\n\
         hint: the images it names: `alpine`, `python:3.11`"
    );
    let importers = "pipelineInfo: {name: p}\nschemaVersion: 2.1.0\nroot: {}\ndeploymentSpec:\n  executors:\n    \
                     exec-i: {importer: {artifactUri: {constant: 'gs://x'}}}\n";
    assert_eq!(
        error(rewrite_pipeline(importers, "p.yaml", &[train()])),
        "p.yaml: names no image of this build's components (`localhost:5000/acme/train`)\n\n\
         hint: it names no container image at all"
    );
    assert!(error(rewrite_pipeline(&text, "p.yaml", &[])).starts_with("p.yaml: names no image of this build's"));
}

#[test]
fn check_reports_every_stale_executor() {
    let text = pipeline(&["localhost:5000/acme/train:old", "python:3.11", "localhost:5000/acme/train:older"]);
    let err = error(check_pipeline(&text, "p.yaml", &[train()]));
    let reference = train().reference;
    assert_eq!(
        err,
        format!(
            "p.yaml: 2 executors use a stale image\n  \
             p.yaml:13: `exec-0`: `localhost:5000/acme/train:old`, expected `{reference}`\n  \
             p.yaml:21: `exec-2`: `localhost:5000/acme/train:older`, expected `{reference}`\n\n\
             hint: the spec must be compiled after the component specs were rewritten"
        )
    );
    let fixed = rewritten(&text, &[train()]);
    let summary = check_pipeline(&fixed.text, "p.yaml", &[train()]).expect("no stale image left");
    assert_eq!(summary.executors["exec-1"].image.as_deref(), Some("python:3.11"));
}

#[test]
fn check_also_catches_an_old_build_in_the_registry() {
    // The spec names the registry repository itself (a compile that pinned an earlier build).
    let targets = [target("gcr.io/p/train", &format!("localhost:5000/pw/train:{SHA}"))];
    let text = pipeline(&["localhost:5000/pw/train:previous"]);
    assert!(error(check_pipeline(&text, "p.yaml", &targets)).contains("`exec-0`: `localhost:5000/pw/train:previous`"));
}

#[test]
fn check_wants_a_known_schema_and_accepts_platform_specs() {
    let text = pipeline(&["python:3.11"]).replace("2.1.0", "2.2.0");
    assert_eq!(
        error(check_pipeline(&text, "p.yaml", &[train()])),
        "p.yaml:5: unknown `schemaVersion` `2.2.0`\n\nhint: known versions are `2.0.0` and `2.1.0`"
    );
    let with_platform = pipeline(&["localhost:5000/acme/train:a"])
        + "---\nplatforms:\n  kubernetes:\n    deploymentSpec:\n      executors:\n        exec-0: {}\n";
    let rewrite = rewritten(&with_platform, &[train()]);
    assert!(
        rewrite
            .text
            .ends_with("---\nplatforms:\n  kubernetes:\n    deploymentSpec:\n      executors:\n        exec-0: {}\n")
    );
    check_pipeline(&rewrite.text, "p.yaml", &[train()]).expect("platform spec accepted");
}

#[test]
fn syntax_errors_have_a_position() {
    let err = error(rewrite_pipeline("pipelineInfo: {name: p\nroot: [\n", "p.yaml", &[train()]));
    assert!(err.starts_with("p.yaml:"), "{err}");
    let position: Vec<&str> = err.splitn(4, ':').collect();
    assert!(position[1].parse::<usize>().is_ok() && position[2].parse::<usize>().is_ok(), "{err}");
}

#[test]
fn rewriting_twice_changes_nothing_more() {
    let text = pipeline(&["localhost:5000/acme/train:a"]);
    let once = rewritten(&text, &[train()]);
    let twice = rewritten(&once.text, &[train()]);
    assert_eq!(twice.text, once.text);
    assert_eq!(twice.changes[0].old, twice.changes[0].new);
}

#[test]
fn images_lists_executor_images() {
    let text = pipeline(&["python:3.11", "alpine"]);
    let images = images(&text, "p.yaml").expect("listed");
    assert_eq!(images.len(), 2);
    assert_eq!(images[1].executor.as_deref(), Some("exec-1"));
    assert_eq!(images[1].image, "alpine");
    assert_eq!(kind(&text, "p.yaml"), Ok(SpecKind::PipelineSpec));
}

/// No input makes the module panic: mutations of real files and of the small specs above go through
/// every entry point.
#[test]
fn garbage_never_panics() {
    let corpus = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/kfp");
    let mut seeds: Vec<String> = vec![
        pipeline(&["localhost:5000/acme/train:a", "'x'"]),
        "implementation:\n  container:\n    image: |\n      localhost:5000/acme/train\n".into(),
        "{\"pipelineSpec\": {\"deploymentSpec\": {\"executors\": {\"e\": {\"customJob\": 1}}}}}".into(),
    ];
    for name in [
        "components/kubeflow__pipelines__components__PyTorch__pytorch-kfp-components__templates__ax_train_component.yaml",
        "pipelines/kubeflow__pipelines__sdk__python__kfp__v2__compiler_cli_tests__test_data__pipeline_with_custom_job_spec.json",
        "pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__critical__pipeline_with_secret_as_env.yaml",
    ] {
        seeds.push(std::fs::read_to_string(format!("{corpus}/{name}")).expect("fixture"));
    }
    let targets = [train(), target("python", "localhost:5000/pw/python:1"), target("alpine", "localhost:5000/pw/a:1")];
    let noise =
        [":", "-", "[", "{", "}", "]", "'", "\"", "|", ">", "&a", "*a", "#", "\n", " ", "\t", "\u{0}", "é", "<<: "];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |bound: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % bound as u64) as usize
    };
    for seed in &seeds {
        for _ in 0..150 {
            let mut text = seed.clone();
            for _ in 0..1 + next(3) {
                let mut at = next(text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                match next(3) {
                    0 => text.truncate(at),
                    1 => text.insert_str(at, noise[next(noise.len())]),
                    _ => {
                        let end = (at + next(8)).min(text.len());
                        if text.is_char_boundary(end) {
                            text.replace_range(at..end, "");
                        }
                    }
                }
            }
            let _ = rewrite_component(&text, "g.yaml", &targets[0]);
            let _ = rewrite_pipeline(&text, "g.yaml", &targets);
            let _ = check_pipeline(&text, "g.yaml", &targets);
            let _ = summarize(&text, "g.yaml");
            let _ = images(&text, "g.yaml");
        }
    }
    for text in
        ["", "\u{feff}", "---", "--- |\n x", "~", "[]", "{}", "a", "\0", "implementation: 1", "pipelineSpec: []"]
    {
        let _ = rewrite_pipeline(text, "g.yaml", &targets);
        let _ = rewrite_component(text, "g.yaml", &targets[0]);
        let _ = summarize(text, "g.yaml");
    }
}
