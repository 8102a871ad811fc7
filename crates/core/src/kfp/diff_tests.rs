//! The spec diff: one hand-written IR edited one way per case, real corpus pipelines compared with each
//! other and with themselves edited as values, and two commits of the example pipeline.

use serde_json::{Value as Json, json};

use super::diff::{SpecDiff, diff, to_markdown};
use super::*;

/// A small pipeline with every feature the diff looks at: pipeline inputs with defaults, tasks with
/// constant, pipeline-input and task-output inputs, caching, a condition sub-DAG with its own edge.
const BASE: &str = r#"pipelineInfo: {name: demo}
schemaVersion: 2.1.0
sdkVersion: kfp-2.17.0
root:
  inputDefinitions:
    parameters:
      greeting: {parameterType: STRING, defaultValue: hello}
      times: {parameterType: NUMBER_INTEGER, defaultValue: 2}
  dag:
    tasks:
      produce:
        componentRef: {name: comp-produce}
        cachingOptions: {enableCache: true}
        inputs: {parameters: {text: {componentInputParameter: greeting}}}
      consume:
        componentRef: {name: comp-consume}
        dependentTasks: [produce]
        inputs:
          parameters:
            msg: {taskOutputParameter: {producerTask: produce, outputParameterKey: msg}}
            times: {runtimeValue: {constant: 2}}
      condition-1:
        componentRef: {name: comp-condition-1}
        dependentTasks: [produce]
        triggerPolicy: {condition: "inputs.parameter_values['pipelinechannel--produce-msg'] == 'hi'"}
        inputs:
          parameters:
            pipelinechannel--produce-msg: {taskOutputParameter: {producerTask: produce, outputParameterKey: msg}}
components:
  comp-produce: {executorLabel: exec-produce}
  comp-consume: {executorLabel: exec-consume}
  comp-condition-1:
    dag:
      tasks:
        shout:
          componentRef: {name: comp-consume}
          inputs: {parameters: {msg: {componentInputParameter: pipelinechannel--produce-msg}}}
        whisper: {componentRef: {name: comp-consume}, dependentTasks: [shout]}
deploymentSpec:
  executors:
    exec-produce:
      container: {image: 'localhost:5000/x/produce:abc', command: [sh, -c], args: [echo hi]}
    exec-consume:
      container: {image: 'localhost:5000/x/consume:abc', command: [sh, -c], args: [cat]}
"#;

fn summary(text: &str) -> PipelineSummary {
    summarize(text, "p.yaml").unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// BASE with each `(from, to)` replacement made (each `from` must occur exactly once), diffed against
/// BASE, as text lines.
fn check(edits: &[(&str, &str)], expect: &[&str]) {
    let mut head = BASE.to_string();
    for (from, to) in edits {
        assert_eq!(head.matches(from).count(), 1, "`{from}` must occur once in BASE");
        head = head.replace(from, to);
    }
    let text = diff(&summary(BASE), &summary(&head)).to_text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines, expect, "edits {edits:?}");
}

#[test]
fn identical_specs_have_no_changes() {
    let d = diff(&summary(BASE), &summary(BASE));
    assert!(d.is_empty());
    assert_eq!(d.to_text(), "no changes\n");
    assert_eq!(d.to_json(), json!({"changes": [], "summary": {"total": 0, "byKind": {}}}));
    assert_eq!(to_markdown(&d), "No changes to the pipeline spec.\n");
}

#[test]
fn each_kind_of_change() {
    check(&[("name: demo", "name: demo-2")], &["~ pipeline   name: demo → demo-2"]);
    check(&[("kfp-2.17.0", "kfp-2.17.3")], &["~ sdk        sdkVersion: kfp-2.17.0 → kfp-2.17.3"]);
    check(&[("schemaVersion: 2.1.0", "schemaVersion: 2.0.0")], &["~ schema     schemaVersion: 2.1.0 → 2.0.0"]);
    check(&[("consume:abc", "consume:def")], &["~ image      exec-consume: localhost:5000/x/consume:abc → …:def"]);
    check(
        &[("x/consume:abc", "y/consume:abc")],
        &["~ image      exec-consume: localhost:5000/x/consume:abc → localhost:5000/y/consume:abc"],
    );
    check(
        &[("command: [sh, -c], args: [cat]", "command: [bash, -c], args: [cat]")],
        &[r#"~ command    exec-consume[0]: "sh" → "bash""#],
    );
    check(&[("args: [cat]", "args: [cat, -n]")], &[r#"~ args       exec-consume[1] (1 → 2 items): (none) → "-n""#]);
    check(&[("defaultValue: hello", "defaultValue: bye")], &[r#"~ default    greeting: "hello" → "bye""#]);
    check(&[(", defaultValue: hello}", "}")], &[r#"~ default    greeting: "hello" → (none)"#]);
    check(
        &[("defaultValue: 2}", "defaultValue: 2}\n      flag: {parameterType: BOOLEAN}")],
        &["+ input      flag (BOOLEAN)"],
    );
    check(
        &[("      times: {parameterType: NUMBER_INTEGER, defaultValue: 2}\n", "")],
        &["- input      times (NUMBER_INTEGER, default 2)"],
    );
    check(
        &[("NUMBER_INTEGER, defaultValue: 2", "NUMBER_DOUBLE, defaultValue: 2.5")],
        &["~ input type times: NUMBER_INTEGER → NUMBER_DOUBLE", "~ default    times: 2 → 2.5"],
    );
    check(&[("enableCache: true", "enableCache: false")], &["~ caching    root/produce: on → off"]);
    check(&[("        cachingOptions: {enableCache: true}\n", "")], &["~ caching    root/produce: on → (unset)"]);
    check(
        &[("== 'hi'", "== 'ho'")],
        &["~ condition  root/condition-1: inputs.parameter_values['pipelinechannel--produce-msg'] == 'hi' → \
         inputs.parameter_values['pipelinechannel--produce-msg'] == 'ho'"],
    );
    check(&[("{constant: 2}", "{constant: 3}")], &["~ task input root/consume.times: 2 → 3"]);
    check(
        &[("{runtimeValue: {constant: 2}}", "{componentInputParameter: times}")],
        &["~ task input root/consume.times: 2 → input times"],
    );
}

#[test]
fn edges_in_the_root_and_in_nested_dags() {
    // Order only: the data edge from `produce` stays.
    check(
        &[(
            "        dependentTasks: [produce]\n        inputs:\n          parameters:\n            msg",
            "        inputs:\n          parameters:\n            msg",
        )],
        &["- edge       root: produce → consume"],
    );
    check(&[(", dependentTasks: [shout]}", "}")], &["- edge       root/condition-1: shout → whisper"]);
    check(
        &[("outputParameterKey: msg}}\n            times", "outputParameterKey: out}}\n            times")],
        &["- edge       root: produce.msg → consume.msg", "+ edge       root: produce.out → consume.msg"],
    );
    check(
        &[("        whisper: {componentRef: {name: comp-consume}, dependentTasks: [shout]}\n", "")],
        &["- task       root/condition-1/whisper (comp-consume)", "- edge       root/condition-1: shout → whisper"],
    );
}

#[test]
fn components_executors_and_tasks() {
    let added_task = "      extra: {componentRef: {name: comp-extra}, dependentTasks: [consume]}\n";
    check(
        &[
            ("      consume:\n", &format!("{added_task}      consume:\n")),
            (
                "  comp-consume: {executorLabel: exec-consume}\n",
                "  comp-consume: {executorLabel: exec-consume}\n  comp-extra: {executorLabel: exec-extra}\n",
            ),
            (
                "deploymentSpec:\n  executors:\n",
                "deploymentSpec:\n  executors:\n    exec-extra: {container: {image: 'r/extra:1'}}\n",
            ),
        ],
        &[
            "+ component  comp-extra (exec-extra)",
            "+ executor   exec-extra (r/extra:1)",
            "+ task       root/extra (comp-extra)",
            "+ edge       root: consume → extra",
        ],
    );
    check(
        &[("  comp-produce: {executorLabel: exec-produce}", "  comp-produce: {executorLabel: exec-consume}")],
        &["~ component  comp-produce: exec-produce → exec-consume"],
    );
    check(
        &[("        componentRef: {name: comp-produce}\n", "        componentRef: {name: comp-consume}\n")],
        &["~ task       root/produce: comp-produce → comp-consume"],
    );
    check(
        &[(
            "    exec-produce:\n      container: {image: 'localhost:5000/x/produce:abc', command: [sh, -c], args: [echo hi]}\n",
            "    exec-produce:\n      importer: {artifactUri: {constant: gs://b/x}}\n",
        )],
        &["~ executor   exec-produce: container → importer"],
    );
}

#[test]
fn json_shape() {
    let head = BASE.replace("consume:abc", "consume:def").replace("{constant: 2}", "{constant: 3}");
    let d = diff(&summary(BASE), &summary(&head));
    assert_eq!(
        d.to_json(),
        json!({
            "changes": [
                {
                    "kind": "imageChanged",
                    "executor": "exec-consume",
                    "component": "comp-consume",
                    "before": "localhost:5000/x/consume:abc",
                    "after": "localhost:5000/x/consume:def"
                },
                {
                    "kind": "taskInputChanged",
                    "dag": "root",
                    "task": "consume",
                    "input": "times",
                    "before": {"constant": 2},
                    "after": {"constant": 3}
                }
            ],
            "summary": {"total": 2, "byKind": {"imageChanged": 1, "taskInputChanged": 1}}
        })
    );
    let edge = BASE.replace(", dependentTasks: [shout]}", "}");
    let d = diff(&summary(BASE), &summary(&edge));
    assert_eq!(
        d.to_json()["changes"][0],
        json!({"kind": "edgeRemoved", "dag": "root/condition-1", "from": "shout", "to": "whisper", "output": null, "input": null})
    );
    let back: SpecDiff = serde_json::from_value(json!({"changes": d.to_json()["changes"]})).expect("reads back");
    assert_eq!(back, d);
}

#[test]
fn markdown_table() {
    let head = BASE.replace("consume:abc", "consume:def").replace("== 'hi'", "== 'a|b'");
    let markdown = to_markdown(&diff(&summary(BASE), &summary(&head)));
    assert_eq!(
        markdown,
        "2 changes to the pipeline spec:\n\n\
         | | change | where | before | after |\n\
         | --- | --- | --- | --- | --- |\n\
         | ~ | image | `exec-consume` | `localhost:5000/x/consume:abc` | `localhost:5000/x/consume:def` |\n\
         | ~ | condition | `root/condition-1` | `inputs.parameter_values['pipelinechannel--produce-msg'] == 'hi'` | \
         `inputs.parameter_values['pipelinechannel--produce-msg'] == 'a\\|b'` |\n"
    );
    let tick = BASE.replace("args: [cat]", "args: ['a`b']");
    let markdown = to_markdown(&diff(&summary(BASE), &summary(&tick)));
    assert!(markdown.contains("| ~ | args | `exec-consume[0]` | `\"cat\"` | `` \"a`b\" `` |"), "{markdown}");
}

// ---- the corpus -------------------------------------------------------------------------------

const PIPELINES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/kfp/pipelines");

fn corpus(name: &str) -> String {
    let path = format!("{PIPELINES}/kubeflow__pipelines__{name}");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn corpus_diff(base: &str, head: &str) -> Vec<String> {
    let d = diff_specs(&corpus(base), base, &corpus(head), head).unwrap_or_else(|e| panic!("{e}"));
    d.to_text().lines().map(str::to_string).collect()
}

/// Pairs of real pipelines and the changes between them. JSON and YAML compilations of one pipeline
/// are the same spec; the SDK's older JSON test data differs from the current YAML by its SDK, the
/// runtime it installs and the names it gives pipeline channels.
#[rustfmt::skip]
const PAIRS: &[(&str, &str, &[&str])] = &[
    ("test_data__sdk_compiled_pipelines__valid__hello_world.yaml", "test_data__sdk_compiled_pipelines__valid__hello_world.yaml", &["no changes"]),
    ("test_data__sdk_compiled_pipelines__valid__pipeline_with_importer.json", "test_data__sdk_compiled_pipelines__valid__pipeline_with_importer.yaml", &["no changes"]),
    ("sdk__python__kfp__v2__compiler_cli_tests__test_data__two_step_pipeline.json", "test_data__sdk_compiled_pipelines__valid__two_step_pipeline.yaml", &[
        "~ schema     schemaVersion: 2.0.0 → 2.1.0",
        "~ sdk        sdkVersion: kfp-1.6.6 → kfp-2.14.3",
    ]),
    ("sdk__python__kfp__v2__compiler_cli_tests__test_data__pipeline_with_exit_handler.json", "test_data__sdk_compiled_pipelines__valid__failing__pipeline_with_exit_handler.yaml", &[
        "~ sdk        sdkVersion: kfp-1.8.6 → kfp-2.13.0",
        "~ image      exec-fail-op: python:3.7 → …:3.11",
        "~ command    exec-fail-op[2]: …pip install --quiet     --no-warn-script-location 'kfp==1.… → …pip install --quiet --no-warn-script-location 'kfp==2.14.3…",
        "~ image      exec-print-op: python:3.7 → …:3.11",
        "~ command    exec-print-op[2]: …pip install --quiet     --no-warn-script-location 'kfp==1.… → …pip install --quiet --no-warn-script-location 'kfp==2.14.3…",
        "~ image      exec-print-op-2: python:3.7 → …:3.11",
        "~ command    exec-print-op-2[2]: …pip install --quiet     --no-warn-script-location 'kfp==1.… → …pip install --quiet --no-warn-script-location 'kfp==2.14.3…",
        "~ caching    root/print-op: (unset) → on",
        "~ task input root/exit-handler-1.pipelinechannel--message: (none) → input message",
        "~ task input root/exit-handler-1.pipelineparam--message: input message → (none)",
        "~ task input root/exit-handler-1/print-op-2.message: input pipelineparam--message → input pipelinechannel--message",
    ]),
    ("test_data__sdk_compiled_pipelines__valid__failing__pipeline_with_exit_handler.yaml", "test_data__sdk_compiled_pipelines__valid__failing__pipeline_with_multiple_exit_handlers.yaml", &[
        "~ pipeline   name: pipeline-with-exit-handler → pipeline-with-multiple-exit-handlers",
        "+ component  comp-exit-handler-2 (dag)",
        "+ component  comp-exit-handler-3 (dag)",
        "+ component  comp-print-op-3 (exec-print-op-3)",
        "+ component  comp-print-op-4 (exec-print-op-4)",
        "+ component  comp-print-op-5 (exec-print-op-5)",
        "+ component  comp-print-op-6 (exec-print-op-6)",
        "+ executor   exec-print-op-3 (python:3.11)",
        "+ executor   exec-print-op-4 (python:3.11)",
        "+ executor   exec-print-op-5 (python:3.11)",
        "+ executor   exec-print-op-6 (python:3.11)",
        "+ task       root/exit-handler-2 (comp-exit-handler-2)",
        "+ task       root/exit-handler-3 (comp-exit-handler-3)",
        "+ task       root/print-op-3 (comp-print-op-3)",
        "+ task       root/print-op-5 (comp-print-op-5)",
        "+ task       root/exit-handler-2/print-op-4 (comp-print-op-4)",
        "+ task       root/exit-handler-3/print-op-6 (comp-print-op-6)",
        "+ edge       root: exit-handler-2 → print-op-3",
        "+ edge       root: exit-handler-3 → print-op-5",
        r#"~ task input root/print-op.message: "Exit handler has worked!" → "First exit handler has worked!""#,
    ]),
    ("test_data__sdk_compiled_pipelines__valid__essential__pipeline_with_condition.yaml", "test_data__sdk_compiled_pipelines__valid__essential__pipeline_with_nested_conditions.yaml", &[
        "~ pipeline   name: single-condition-pipeline → nested-conditions-pipeline",
        r#"- input      text (STRING, default "condition test")"#,
        "+ component  comp-condition-2 (dag)",
        "+ component  comp-flip-coin-op-3 (exec-flip-coin-op-3)",
        "+ component  comp-flip-coin-op-4 (exec-flip-coin-op-4)",
        "+ component  comp-print-op-4 (exec-print-op-4)",
        "+ executor   exec-flip-coin-op-3 (python:3.11)",
        "+ executor   exec-flip-coin-op-4 (python:3.11)",
        "+ executor   exec-print-op-4 (python:3.11)",
        "+ task       root/flip-coin-op-2 (comp-flip-coin-op-2)",
        "+ task       root/print-op-2 (comp-print-op-2)",
        "+ task       root/condition-1/condition-2 (comp-condition-2)",
        "- task       root/condition-1/flip-coin-op-2 (comp-flip-coin-op-2)",
        "+ task       root/condition-1/flip-coin-op-3 (comp-flip-coin-op-3)",
        "- task       root/condition-1/print-op-2 (comp-print-op-2)",
        "+ task       root/condition-1/condition-2/flip-coin-op-4 (comp-flip-coin-op-4)",
        "+ task       root/condition-1/condition-2/print-op-4 (comp-print-op-4)",
        "+ edge       root: flip-coin-op-2 → condition-1",
        "+ edge       root: flip-coin-op-2.Output → condition-1.pipelinechannel--flip-coin-op-2-Output",
        "+ edge       root: flip-coin-op-2 → print-op-2",
        "+ edge       root: flip-coin-op-2.Output → print-op-2.msg",
        "- edge       root/condition-1: flip-coin-op-2 → print-op-2",
        "- edge       root/condition-1: flip-coin-op-2.Output → print-op-2.msg",
        "+ edge       root/condition-1: flip-coin-op-3 → condition-2",
        "+ edge       root/condition-1: flip-coin-op-3.Output → condition-2.pipelinechannel--flip-coin-op-3-Output",
        "+ edge       root/condition-1: flip-coin-op-3 → print-op-3",
        "+ edge       root/condition-1: flip-coin-op-3.Output → print-op-3.msg",
        "+ edge       root/condition-1/condition-2: flip-coin-op-4 → print-op-4",
        "+ edge       root/condition-1/condition-2: flip-coin-op-4.Output → print-op-4.msg",
        "~ caching    root/flip-coin-op: off → on",
        "~ condition  root/condition-1: inputs.parameter_values['pipelinechannel--flip-coin-op-Output'] == 'heads' → inputs.parameter_values['pipelinechannel--flip-coin-op-Output'] != 'no-such-result'",
        "~ task input root/condition-1.pipelinechannel--text: input text → (none)",
        "~ task input root/condition-1/print-op-3.msg: input pipelinechannel--text → flip-coin-op-3.Output",
    ]),
];

#[test]
fn pairs_of_corpus_pipelines() {
    let mut failures = Vec::new();
    for (base, head, expect) in PAIRS {
        let got = corpus_diff(base, head);
        if got != *expect {
            failures.push(format!("{base} → {head}:\n  expected {expect:#?}\n  got {got:#?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The first document of a YAML or JSON spec as a JSON value (plain scalars typed as YAML's core
/// schema types them).
fn to_value(text: &str) -> Json {
    let documents = crate::yaml::parse_stream(text).expect("valid YAML");
    crate::config::extensions::to_json(&documents[0])
}

fn text_diff(base: &str, head: &str) -> Vec<String> {
    let d = diff_specs(base, "base", head, "head").unwrap_or_else(|e| panic!("{e}"));
    d.to_text().lines().map(str::to_string).collect()
}

/// A corpus pipeline changed as a value, one way at a time and all ways at once: exactly those changes.
#[test]
fn a_corpus_pipeline_edited_as_a_value() {
    let original = corpus("test_data__sdk_compiled_pipelines__valid__two_step_pipeline.yaml");
    let base = to_value(&original);
    let edit = |f: &dyn Fn(&mut Json)| {
        let mut value = base.clone();
        f(&mut value);
        value.to_string()
    };
    let image = |v: &mut Json| {
        v["deploymentSpec"]["executors"]["exec-write-to-gcs"]["container"]["image"] = json!("google/cloud-sdk:alpine")
    };
    let default =
        |v: &mut Json| v["root"]["inputDefinitions"]["parameters"]["text"]["defaultValue"] = json!("Bye KFP!");
    let dependency = |v: &mut Json| {
        let task = v["root"]["dag"]["tasks"]["read-from-gcs"].as_object_mut().expect("a task");
        task.remove("dependentTasks").expect("the task had dependencies");
    };
    let image_line = "~ image      exec-write-to-gcs: google/cloud-sdk:slim → …:alpine";
    let default_line = r#"~ default    text: "Hello KFP!" → "Bye KFP!""#;
    let dependency_line = "- edge       root: write-to-gcs → read-from-gcs";

    // The JSON form of the YAML file is the same spec.
    assert_eq!(text_diff(&original, &base.to_string()), ["no changes"]);
    assert_eq!(text_diff(&original, &edit(&image)), [image_line]);
    assert_eq!(text_diff(&original, &edit(&default)), [default_line]);
    assert_eq!(text_diff(&original, &edit(&dependency)), [dependency_line]);
    let all = edit(&|v: &mut Json| {
        image(v);
        default(v);
        dependency(v);
    });
    assert_eq!(text_diff(&original, &all), [default_line, image_line, dependency_line]);
    assert_eq!(
        text_diff(&all, &original),
        [
            r#"~ default    text: "Bye KFP!" → "Hello KFP!""#,
            "~ image      exec-write-to-gcs: google/cloud-sdk:alpine → …:slim",
            "+ edge       root: write-to-gcs → read-from-gcs",
        ]
    );
}

/// A compiled pipeline with a platform spec after it (a second YAML document), its image rewritten the
/// way a build does it.
#[test]
fn a_multi_document_pipeline_with_its_image_rewritten() {
    let original = corpus("test_data__sdk_compiled_pipelines__valid__critical__pipeline_with_secret_as_env.yaml");
    assert!(original.contains("\n---\n"), "the file has a second document");
    assert_eq!(text_diff(&original, &original), ["no changes"]);
    let images: Vec<String> =
        super::images(&original, "p.yaml").expect("images").into_iter().map(|i| i.image).collect();
    let repository = super::target::repository_of(&images[0]).expect("an image reference");
    let target = ImageTarget {
        component: "c".into(),
        repository: repository.clone(),
        reference: format!("{repository}:2222222"),
    };
    let rewritten = rewrite_pipeline(&original, "p.yaml", &[target]).expect("rewrites");
    assert!(rewritten.text.contains("\n---\n"), "the platform spec is kept");
    let got = text_diff(&original, &rewritten.text);
    assert_eq!(got.len(), rewritten.changes.len(), "{got:#?}");
    for (line, change) in got.iter().zip(&rewritten.changes) {
        let executor = change.path.split('.').nth(2).expect("deploymentSpec.executors.<label>.container.image");
        assert_eq!(line, &format!("~ image      {executor}: {} → …:2222222", change.old));
    }
}

/// Two commits of the example: the second builds a new `train` image and lowers the default of `c`.
/// The first is the example compiled by the Kubeflow SDK as a build at commit 1111111… leaves it.
#[test]
fn two_commits_of_the_example_pipeline() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/kfp/examples/breast-cancer-training.yaml");
    let first = std::fs::read_to_string(path).expect("the compiled example");
    let repository = "localhost:5000/examples/breast-cancer/train";
    let reference = format!("{repository}:{}", "2".repeat(40));
    let target = ImageTarget { component: "train".into(), repository: repository.into(), reference: reference.clone() };
    let rewritten = rewrite_pipeline(&first, "pipeline.yaml", &[target]).expect("rewrites").text;
    let mut second = to_value(&rewritten);
    second["root"]["inputDefinitions"]["parameters"]["c"]["defaultValue"] = json!(0.5);
    let second = serde_json::to_string_pretty(&second).expect("serialises");

    let d = diff_specs(&first, "first", &second, "second").expect("both are pipelines");
    assert_eq!(
        d.to_text(),
        format!(
            "~ default    c: 1.0 → 0.5\n~ image      exec-train: {repository}:{} → …:{}\n",
            "1".repeat(40),
            "2".repeat(40)
        )
    );
    assert_eq!(
        d.to_json()["changes"][1],
        json!({
            "kind": "imageChanged",
            "executor": "exec-train",
            "component": "comp-train",
            "before": format!("{repository}:{}", "1".repeat(40)),
            "after": reference,
        })
    );
    assert!(to_markdown(&d).contains("| ~ | default | `c` | `1.0` | `0.5` |"), "{}", to_markdown(&d));
}

/// Every corpus pipeline is the same spec as itself and as its JSON form (what the SDK wrote as YAML,
/// written as JSON): no changes.
#[test]
fn every_corpus_pipeline_has_no_changes_against_itself_and_its_json_form() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for entry in std::fs::read_dir(PIPELINES).expect("the corpus") {
        let path = entry.expect("an entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).expect("a name").to_string();
        let text = std::fs::read_to_string(&path).expect("readable");
        let summary = summarize(&text, &name).unwrap_or_else(|e| panic!("{e}"));
        let json = to_value(&text).to_string();
        for (what, other) in [("itself", text.clone()), ("its JSON form", json)] {
            match summarize(&other, &name) {
                Ok(other) if diff(&summary, &other).is_empty() => {}
                Ok(other) => failures.push(format!("{name} against {what}:\n{}", diff(&summary, &other).to_text())),
                Err(e) => failures.push(format!("{name} against {what}: {e}")),
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 53, "the corpus has 53 compiled pipelines");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
