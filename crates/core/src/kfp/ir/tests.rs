use serde_json::json;

use super::*;

const PIPELINE: &str = r#"
pipelineInfo: {name: demo}
schemaVersion: 2.1.0
root:
  inputDefinitions:
    parameters:
      greeting: {parameterType: STRING, defaultValue: hello}
      times: {parameterType: NUMBER_INTEGER, defaultValue: 2.0, isOptional: true}
  outputDefinitions:
    parameters:
      out: {parameterType: STRING}
  dag:
    outputs:
      parameters:
        out: {valueFromParameter: {producerSubtask: consume, outputParameterKey: msg}}
    tasks:
      produce:
        componentRef: {name: comp-produce}
        inputs:
          parameters:
            text: {componentInputParameter: greeting}
      consume:
        componentRef: {name: comp-consume}
        dependentTasks: [produce]
        triggerPolicy: {condition: "inputs.parameter_values['n'] == 2", strategy: ALL_UPSTREAM_TASKS_COMPLETED}
        retryPolicy: {maxRetryCount: 2, backoffDuration: 1s, backoffFactor: 2, backoffMaxDuration: 10s}
        inputs:
          parameters:
            msg: {taskOutputParameter: {producerTask: produce, outputParameterKey: msg}}
            n: {runtimeValue: {constant: 2}}
            status: {taskFinalStatus: {producerTask: produce}}
            picked: {componentInputParameter: greeting, parameterExpressionSelector: 'parseJson(string_value)["a"]'}
          artifacts:
            data: {taskOutputArtifact: {producerTask: produce, outputArtifactKey: data}}
      loop:
        componentRef: {name: comp-for-loop-1}
        parameterIterator: {items: {raw: '[1, 2]'}, itemInput: item}
        iteratorPolicy: {parallelismLimit: 1}
      import:
        componentRef: {name: comp-importer}
        inputs:
          parameters:
            uri: {runtimeValue: {constant: /data/x.csv}}
components:
  comp-produce:
    executorLabel: exec-produce
    inputDefinitions: {parameters: {text: {parameterType: STRING}}}
    outputDefinitions:
      parameters: {msg: {parameterType: STRING}}
      artifacts:
        data: {artifactType: {schemaTitle: system.Dataset, schemaVersion: 0.0.1}, metadata: {k: v}}
  comp-consume:
    executorLabel: exec-consume
  comp-for-loop-1:
    dag:
      tasks:
        inner: {componentRef: {name: comp-consume}}
  comp-importer:
    executorLabel: exec-importer
    outputDefinitions:
      artifacts:
        artifact: {artifactType: {schemaTitle: system.Dataset}}
  comp-unused:
    executorLabel: exec-resolver
deploymentSpec:
  executors:
    exec-produce:
      container:
        image: local/busybox:1
        command: [sh, -c]
        args: ['echo {{$.inputs.parameters[''text'']}}']
        env: [{name: A, value: b}]
    exec-consume:
      container: {image: local/busybox:1}
    exec-importer:
      importer: {artifactUri: {runtimeParameter: uri}, typeSchema: {schemaTitle: system.Dataset}, metadata: {m: 1}}
    exec-resolver:
      resolver: {outputArtifactQueries: {}}
"#;

#[test]
fn a_pipeline_as_types() {
    let p = Pipeline::parse(PIPELINE, "p.yaml").expect("valid");
    assert_eq!(p.name, "demo");
    assert_eq!(p.task_count(), 5);
    let greeting = &p.root.inputs.parameters["greeting"];
    assert_eq!(
        (greeting.kind, greeting.default.clone(), greeting.optional),
        (ParameterType::String, Some(json!("hello")), false)
    );
    assert_eq!(p.root.inputs.parameters["times"].default, Some(json!(2.0)));
    let Body::Dag(dag) = &p.root.body else { panic!("root is a DAG") };
    assert_eq!(
        dag.outputs.parameters["out"],
        DagParameter::Single(Selector { producer: "consume".into(), key: "msg".into() })
    );
    let consume = &dag.tasks["consume"];
    assert_eq!(consume.strategy, Strategy::AllCompleted);
    assert_eq!(consume.condition.as_deref(), Some("inputs.parameter_values['n'] == 2"));
    assert_eq!(consume.upstream().into_iter().collect::<Vec<_>>(), ["produce"]);
    assert_eq!(consume.parameters["n"].source, ParameterSource::Constant(json!(2)));
    assert_eq!(consume.parameters["status"].source, ParameterSource::TaskFinalStatus { producer: "produce".into() });
    assert_eq!(consume.parameters["picked"].selector.as_deref(), Some(r#"parseJson(string_value)["a"]"#));
    assert_eq!(
        consume.artifacts["data"],
        ArtifactInput::TaskOutput(Selector { producer: "produce".into(), key: "data".into() })
    );
    let retry = consume.retry.as_ref().expect("retry policy");
    assert_eq!((retry.max_retries, retry.backoff.as_secs(), retry.max_backoff.as_secs()), (2, 1, 10));
    let looped = &dag.tasks["loop"];
    assert_eq!(
        looped.iterator,
        Some(Loop::Parameter { items: Items::Raw("[1, 2]".into()), item_input: "item".into() })
    );
    assert_eq!(looped.parallelism_limit, 1);
    let Executor::Container(produce) = &p.executors["exec-produce"] else { panic!("a container") };
    assert_eq!(produce.command, ["sh", "-c"]);
    assert_eq!(produce.env, [("A".to_string(), "b".to_string())]);
    let data = &p.components["comp-produce"].outputs.artifacts["data"];
    assert_eq!(data.schema_title.as_deref(), Some("system.Dataset"));
    assert_eq!(data.metadata.get("k"), Some(&json!("v")));
    let Executor::Importer(importer) = &p.executors["exec-importer"] else { panic!("an importer") };
    assert_eq!(importer.uri, ImporterUri::Parameter("uri".into()));
    // An unused resolver does not stop the pipeline from running.
    assert!(!p.executors.contains_key("exec-resolver"));
}

/// Edits `PIPELINE` (`from` → `to`) and expects the parse to fail with exactly `message`.
fn check(from: &str, to: &str, message: &str) {
    assert!(PIPELINE.contains(from), "the fixture lacks {from:?}");
    let text = PIPELINE.replacen(from, to, 1);
    match Pipeline::parse(&text, "p.yaml") {
        Ok(_) => panic!("{from:?} → {to:?} parsed"),
        Err(e) => assert_eq!(e.to_string(), message, "{from:?} → {to:?}"),
    }
}

#[test]
fn task_and_output_names_are_single_path_segments() {
    let hint = "\n\nhint: a name is 1 to 255 bytes without `/`, `\\` or NUL, and is not `.` or `..`";
    check(
        "      loop:\n",
        "      \"../../x\":\n",
        &format!("p.yaml: `root.dag.tasks.../../x`: `../../x` is not a valid name: it contains `/`{hint}"),
    );
    check(
        "      import:\n",
        "      \"..\":\n",
        &format!(
            "p.yaml: `root.dag.tasks...`: `..` is not a valid name: it names a directory by a relative name{hint}"
        ),
    );
    check(
        "parameters: {msg: {parameterType: STRING}}",
        "parameters: {msg: {parameterType: STRING}, /proc/self/environ: {parameterType: STRING}}",
        &format!(
            "p.yaml: `components.comp-produce.outputDefinitions.parameters./proc/self/environ`: `/proc/self/environ` is not a valid name: it contains `/`{hint}"
        ),
    );
    check(
        "        artifact: {artifactType",
        "        ../etc: {artifactType",
        &format!(
            "p.yaml: `components.comp-importer.outputDefinitions.artifacts.../etc`: `../etc` is not a valid name: it contains `/`{hint}"
        ),
    );
}

#[test]
fn errors_name_the_path() {
    check("pipelineInfo: {name: demo}", "pipelineInfo: {}", "p.yaml: `pipelineInfo`: `name` is missing");
    check(
        "componentRef: {name: comp-produce}",
        "componentRef: {name: comp-nope}",
        "p.yaml: `root.dag.tasks.produce.componentRef.name`: component `comp-nope` does not exist",
    );
    check(
        "dependentTasks: [produce]",
        "dependentTasks: [ghost]",
        "p.yaml: `root.dag.tasks.consume`: waits for `ghost`, which is not a task of the same DAG",
    );
    check(
        "producerSubtask: consume",
        "producerSubtask: nobody",
        "p.yaml: `root.dag.outputs.parameters.out`: names `nobody`, which is not a task of this DAG",
    );
    check(
        "text: {componentInputParameter: greeting}",
        "text: {taskOutputParameter: {producerTask: consume, outputParameterKey: msg}}",
        "p.yaml: `root.dag.tasks.consume`: is part of a dependency cycle",
    );
    check(
        "inner: {componentRef: {name: comp-consume}}",
        "inner: {componentRef: {name: comp-for-loop-1}}",
        "p.yaml: `components.comp-for-loop-1`: contains itself through its DAG's tasks",
    );
    check(
        "executorLabel: exec-consume",
        "executorLabel: exec-resolver",
        "p.yaml: `deploymentSpec.executors.exec-resolver`: a `resolver` executor cannot run locally; the local runner runs `container` and `importer` executors",
    );
    check(
        "executorLabel: exec-consume",
        "executorLabel: exec-missing",
        "p.yaml: `components.comp-consume.executorLabel`: executor `exec-missing` is not in `deploymentSpec.executors`",
    );
    check(
        "text: {parameterType: STRING}",
        "text: {parameterType: TEXT}",
        "p.yaml: `components.comp-produce.inputDefinitions.parameters.text.parameterType`: unknown parameter type `TEXT`",
    );
    check(
        "n: {runtimeValue: {constant: 2}}",
        "n: {value: 2}",
        "p.yaml: `root.dag.tasks.consume.inputs.parameters.n`: expected one of `componentInputParameter`, `taskOutputParameter`, `runtimeValue` or `taskFinalStatus`",
    );
    check(
        "strategy: ALL_UPSTREAM_TASKS_COMPLETED",
        "strategy: SOMETIMES",
        "p.yaml: `root.dag.tasks.consume.triggerPolicy.strategy`: unknown trigger strategy `SOMETIMES`",
    );
    check(
        "dependentTasks: [produce]",
        "dependentTasks: produce",
        "p.yaml: `root.dag.tasks.consume.dependentTasks`: expected a list, found a string",
    );
    check(
        "parallelismLimit: 1",
        "parallelismLimit: -1",
        "p.yaml: `root.dag.tasks.loop.iteratorPolicy.parallelismLimit`: expected a non-negative integer, found a number",
    );
    check(
        "backoffDuration: 1s",
        "backoffDuration: soon",
        "p.yaml: `root.dag.tasks.consume.retryPolicy.backoffDuration`: expected a duration such as `30s`, found `soon`",
    );
    check(
        "    executorLabel: exec-consume\n",
        "    executorLabel: exec-consume\n    dag: {}\n",
        "p.yaml: `components.comp-consume`: has both `executorLabel` and `dag`",
    );
    check(
        "image: local/busybox:1\n",
        "command: [x]\n",
        "p.yaml: `deploymentSpec.executors.exec-produce.container`: `image` is missing",
    );
    check(
        "pipelineInfo",
        "- pipelineInfo",
        "p.yaml: line 3:1: invalid YAML: while parsing a block collection, did not find expected '-' indicator",
    );
}

#[test]
fn legacy_wrapper_and_schema_2_0_0() {
    let text = r#"{"pipelineSpec": {"pipelineInfo": {"name": "p"}, "schemaVersion": "2.0.0",
        "root": {"inputDefinitions": {"parameters": {"n": {"type": "INT"}, "s": {"type": "STRING"}}},
                 "dag": {"tasks": {"t": {"componentRef": {"name": "comp-t"},
                   "inputs": {"parameters": {"c": {"runtimeValue": {"constantValue": {"intValue": "3"}}}}}}}}},
        "components": {"comp-t": {"executorLabel": "exec-t"}},
        "deploymentSpec": {"executors": {"exec-t": {"container": {"image": "i"}}}}},
      "runtimeConfig": {"parameters": {"n": {"intValue": "7"}, "s": {"stringValue": "x"}}}}"#;
    let p = Pipeline::parse(text, "p.json").expect("valid");
    assert_eq!(p.schema_version, "2.0.0");
    assert_eq!(p.root.inputs.parameters["n"].kind, ParameterType::Integer);
    assert_eq!(p.root.inputs.parameters["n"].default, Some(json!(7)));
    assert_eq!(p.root.inputs.parameters["s"].default, Some(json!("x")));
    let Body::Dag(dag) = &p.root.body else { panic!("a DAG") };
    assert_eq!(dag.tasks["t"].parameters["c"].source, ParameterSource::Constant(json!(3)));
}

#[test]
fn values_and_numbers() {
    assert_eq!(number(2.0), json!(2));
    assert_eq!(number(-0.5), json!(-0.5));
    assert_eq!(number(f64::NAN), json!(null));
    assert_eq!(canonical(json!({"a": [1.0, 2.5, "3.0"]})), json!({"a": [1, 2.5, "3.0"]}));
    assert_eq!(text(&json!("raw 'text'")), "raw 'text'");
    assert_eq!(text(&json!(2.0)), "2");
    assert_eq!(text(&json!(1e21)), "1000000000000000000000");
    assert_eq!(text(&json!(0.1)), "0.1");
    assert_eq!(text(&json!(true)), "true");
    assert_eq!(text(&json!(null)), "");
    assert_eq!(text(&json!({"b": 1, "a": [true]})), r#"{"b":1,"a":[true]}"#);
    for (scalar, expected) in [
        ("1000.0", json!(1000.0)),
        ("7", json!(7)),
        ("-1.5e3", json!(-1500.0)),
        (".5", json!(0.5)),
        ("1e", json!("1e")),
        (".inf", json!(".inf")),
        ("nan", json!("nan")),
        ("0x10", json!("0x10")),
        ("True", json!(true)),
        ("~", json!(null)),
        ("'7'", json!("7")),
    ] {
        let node = crate::yaml::parse(scalar).expect("yaml");
        assert_eq!(to_json(&node), expected, "{scalar}");
    }
}

/// Every corpus file, whole and damaged in many ways, parses or fails with an error; none panics.
#[test]
fn garbage_never_panics() {
    let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("tests/fixtures/kfp");
    let mut parsed = 0;
    let mut files = 0;
    for sub in ["pipelines", "components"] {
        for entry in std::fs::read_dir(dir.join(sub)).expect("corpus dir") {
            let path = entry.expect("entry").path();
            let Ok(text) = std::fs::read_to_string(&path) else { continue };
            files += 1;
            if Pipeline::parse(&text, "corpus").is_ok() {
                parsed += 1;
            }
            for variant in damaged(&text) {
                let _ = Pipeline::parse(&variant, "damaged");
            }
        }
    }
    assert!(files > 100, "{files} corpus files");
    // Pipelines that use a resolver or a customJob are refused; container pipelines parse.
    assert!(parsed >= 60, "only {parsed} of {files} corpus files parse");
}

/// Truncations, swapped characters and key renames of `text`.
fn damaged(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let boundaries: Vec<usize> = (1..12).map(|i| text.floor_char_boundary(text.len() * i / 12)).collect();
    for &cut in &boundaries {
        out.push(text[..cut].to_string());
    }
    for (from, to) in [
        ("componentRef", "componentRaf"),
        ("executorLabel", "executorLabol"),
        ("dag:", "dag: 1\nx:"),
        ("tasks:", "tasks: []\ny:"),
        ("producerTask", "producerTusk"),
        ("parameterType: STRING", "parameterType: [STRING]"),
        ("artifactType:", "artifactType: 3\nz:"),
        ("- ", "- {"),
        (": ", ": ["),
        ("inputs:", "inputs: null\nw:"),
        ("\"", "'"),
    ] {
        out.push(text.replacen(from, to, 1));
        out.push(text.replace(from, to));
    }
    out
}
