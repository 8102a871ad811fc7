//! Data-driven tests of build-file loading: each case is a file and the problems it must produce.

use super::*;

/// Loads `text` and compares the rendered errors (warnings excluded) with `expected`, one fragment per
/// expected problem, in order. An empty `expected` means the file must load.
#[track_caller]
fn check(text: &str, expected: &[&str]) {
    let result = load("cloudbuild.yaml", text.as_bytes(), &[]);
    match result {
        Ok(_) if expected.is_empty() => {}
        Ok(_) => panic!("expected problems {expected:?}, but the file loaded"),
        Err(diagnostics) => {
            let errors: Vec<String> = diagnostics.errors().map(|d| d.render("cloudbuild.yaml")).collect();
            assert_eq!(
                errors.len(),
                expected.len(),
                "expected {} problems, got:\n{}",
                expected.len(),
                errors.join("\n")
            );
            for (error, fragment) in errors.iter().zip(expected) {
                assert!(error.contains(fragment), "`{fragment}` not in:\n{error}\n\nall:\n{}", errors.join("\n"));
            }
        }
    }
}

fn warnings(text: &str) -> Vec<String> {
    let loaded = load("cloudbuild.yaml", text.as_bytes(), &[]).expect("loads");
    loaded.warnings.warnings().map(|d| d.render("cloudbuild.yaml")).collect()
}

#[test]
fn minimal_files_load() {
    check("steps:\n- name: busybox\n", &[]);
    check("steps: [{name: busybox, args: [echo, hi]}]", &[]);
    check(r#"{"steps": [{"name": "busybox", "args": ["echo"]}], "timeout": "60s"}"#, &[]);
}

#[test]
fn snake_case_keys_are_accepted() {
    check(
        "steps:\n- name: a\n  id: x\n- name: b\n  wait_for: [x]\n  allow_failure: true\noptions:\n  substitution_option: ALLOW_LOOSE\n  dynamic_substitutions: true\n",
        &[],
    );
}

#[test]
fn both_spellings_of_one_field_are_an_error() {
    check(
        "steps:\n- name: a\n  id: x\n- name: b\n  waitFor: [x]\n  wait_for: [x]\n",
        &["cloudbuild.yaml:6:3: steps[1].waitFor: field is given twice, as `waitFor` and as `wait_for`"],
    );
}

#[test]
fn unknown_fields_name_the_closest_known_one() {
    check(
        "steps:\n- name: a\n  waitfor: ['-']\n  onFailure: x\n",
        &[
            "cloudbuild.yaml:3:3: steps[0].waitfor: unknown field `waitfor`\n  hint: did you mean `waitFor`?",
            "cloudbuild.yaml:4:3: steps[0].onFailure: unknown field `onFailure`\n  hint: known fields here:",
        ],
    );
    check("step:\n- name: a\n", &["steps: is required", "unknown field `step`\n  hint: did you mean `steps`?"]);
}

#[test]
fn every_problem_is_reported_at_once() {
    check(
        "steps:\n- name: a\n  timeout: 10m\n- args: [x]\n  waitFor: [nope]\n  env: [NOEQUALS]\ntimeout: 600\n",
        &[
            "3:12: steps[0].timeout: `10m` is not a duration",
            "4:3: steps[1].name: is required",
            "5:13: steps[1].waitFor[0]: `nope` is not the id of any earlier step",
            "6:9: steps[1].env[0]: `NOEQUALS` is not of the form `KEY=VALUE`",
            "7:10: timeout: `600` is not a duration\n  hint: durations are seconds with an `s` suffix: write `600s`",
        ],
    );
}

#[test]
fn wait_for_rules() {
    check("steps:\n- name: a\n  waitFor: [b]\n- name: a\n  id: b\n", &["`b` is step 1, which comes later"]);
    check("steps:\n- name: a\n  id: a\n  waitFor: [a]\n", &["a step cannot wait for itself"]);
    check("steps:\n- name: a\n  id: '-'\n", &["steps[0].id: may not be `-`"]);
    check("steps:\n- name: a\n  id: x\n- name: a\n  id: x\n", &["`x` is already the id of step 0"]);
    check("steps:\n- name: a\n  id: build\n- name: a\n  waitFor: [biuld]\n", &["did you mean `build`?"]);
    check("steps:\n- name: a\n  id: x\n- name: b\n  waitFor: ['-', x]\n", &[]);
}

#[test]
fn scalars_where_lists_belong_are_read_as_one_item_lists() {
    let text = "steps:\n- name: a\n  id: x\n- name: b\n  waitFor: 'x'\n  env: K=V\n";
    let loaded = load("f", text.as_bytes(), &[]).expect("loads");
    assert_eq!(loaded.config.steps[1].wait_for[0].value, "x");
    assert_eq!(loaded.config.steps[1].env[0].value, "K=V");
    let w = warnings(text);
    assert!(w[0].contains("steps[1].waitFor: is a single value, read as a list of one (\"x\")"), "{w:?}");
    assert_eq!(w.len(), 2);
    check("steps: busybox\n", &["steps[0]: expected a mapping, found a string"]);
    check("steps:\n- name: a\n  args: {a: b}\n", &["steps[0].args: expected a list, found a mapping"]);
}

#[test]
fn limits() {
    let many: String = (0..101).map(|i| format!("- name: s{i}\n")).collect();
    check(&format!("steps:\n{many}"), &["has 101 steps; at most 100 are allowed"]);
    check("steps: []\n", &["steps: needs at least one step"]);
    check("steps:\n- name: a\ntimeout: 86401s\n", &["is longer than 24 hours"]);
    check("steps:\n- name: a\n  timeout: 20s\ntimeout: 10s\n", &["is longer than the build's timeout (10s)"]);
    let long_arg = "x".repeat(4001);
    check(&format!("steps:\n- name: a\n  args: ['{long_arg}']\n"), &["is longer than 4000 characters"]);
    check("steps:\n- name: a\n  allowExitCodes: [1, '2', 99999999999]\n", &["is not a 32-bit exit code"]);
}

#[test]
fn script_excludes_args_and_entrypoint() {
    check("steps:\n- name: a\n  script: echo hi\n", &[]);
    check(
        "steps:\n- name: a\n  script: echo hi\n  args: [x]\n  entrypoint: sh\n",
        &["cannot be combined with `args`", "cannot be combined with `entrypoint`"],
    );
}

#[test]
fn volumes() {
    let two = "- name: b\n  volumes: [{name: vol, path: /v}]\n";
    check(&format!("steps:\n- name: a\n  volumes: [{{name: vol, path: /v}}]\n{two}"), &[]);
    check("steps:\n- name: a\n  volumes: [{name: vol, path: /v}]\n", &["volume `vol` is used by only one step"]);
    check(
        &format!("steps:\n- name: a\n  volumes: [{{name: v, path: rel}}]\n{two}"),
        &[
            "`v` is not a valid volume name",
            "volume `v` is used by only one step",
            "`rel` is not an absolute path",
            "volume `vol` is used by only one step",
        ],
    );
    check(
        &format!("steps:\n- name: a\n  volumes: [{{name: vol, path: /workspace/}}]\n{two}"),
        &["`/workspace` is reserved"],
    );
    check(
        &format!("steps:\n- name: a\n  volumes: [{{name: vol, path: /cloudbuild/x}}]\n{two}"),
        &["under `/cloudbuild/` are reserved"],
    );
    check(
        "steps:\n- name: a\noptions:\n  volumes: [{name: vol, path: /v}]\n",
        &["needs a build with at least two steps"],
    );
}

#[test]
fn secrets() {
    let base =
        "availableSecrets:\n  secretManager:\n  - versionName: projects/p/secrets/s/versions/latest\n    env: TOKEN\n";
    check(&format!("steps:\n- name: a\n  secretEnv: [TOKEN]\n{base}"), &[]);
    check(&format!("steps:\n- name: a\n{base}"), &["secret env `TOKEN` is defined but no step uses it"]);
    check(
        "steps:\n- name: a\n  secretEnv: [TOKEN]\n",
        &["secret env `TOKEN` is not defined\n  hint: define it under `availableSecrets.secretManager`"],
    );
    check(
        &format!("steps:\n- name: a\n  secretEnv: [TOKEN]\n  env: [TOKEN=x]\n{base}"),
        &["step 0 has secret and non-secret env `TOKEN`"],
    );
    check(
        "steps:\n- name: a\n  secretEnv: [T]\navailableSecrets:\n  secretManager:\n  - versionName: my-secret\n    env: T\n",
        &["`my-secret` is not a secret version name"],
    );
    check("steps:\n- name: a\n  secretEnv: [A]\nsecrets:\n- kmsKeyName: k\n  secretEnv:\n    A: Y2lwaGVy\n", &[]);
}

#[test]
fn enums_and_types() {
    check(
        "steps:\n- name: a\noptions:\n  substitutionOption: LOOSE\n  machineType: E2_HIGHCPU_8\n",
        &["`LOOSE` is not a valid value\n  hint: valid values: MUST_MATCH, ALLOW_LOOSE"],
    );
    check(
        "steps:\n- name: a\n  allowFailure: yes\n",
        &["steps[0].allowFailure: expected `true` or `false`, found a string"],
    );
    check("steps:\n- name: [a]\n", &["steps[0].name: expected a string, found a list"]);
}

#[test]
fn output_only_and_api_only_fields_are_refused() {
    check("steps:\n- name: a\n  status: SUCCESS\n", &["steps[0].status: is an output-only field"]);
    check("steps:\n- name: a\nid: x\n", &["id: is an output-only field"]);
    check("steps:\n- name: a\nsource:\n  repoSource: {}\n", &["source: is set by the API caller"]);
}

#[test]
fn a_build_file_cannot_choose_a_credential() {
    // `tokenEnv` sent any variable of the server's environment to the build's `run.host`.
    let hint = "the token for a host comes from the server config's `credentials:`";
    check(
        "steps:\n- name: a\nrun: {backend: kfp, host: 'http://127.0.0.1:9', tokenEnv: GITHUB_WEBHOOK_SECRET}\n",
        &["cloudbuild.yaml:3:59: run.tokenEnv: a build file cannot choose a credential"],
    );
    let text = "steps:\n- name: a\nenvironments:\n- name: prod\n  run: {backend: kfp, host: h, token_env: X}\n";
    let errors = load("cloudbuild.yaml", text.as_bytes(), &[]).expect_err("refused").to_string();
    assert!(errors.contains("environments[0].run.tokenEnv: a build file cannot choose a credential"), "{errors}");
    assert!(errors.contains(hint), "{errors}");
}

#[test]
fn hosted_only_fields_warn() {
    let w = warnings(
        "steps:\n- name: a\nlogsBucket: gs://b\nserviceAccount: projects/p/serviceAccounts/x\noptions:\n  machineType: E2_HIGHCPU_8\n  logging: CLOUD_LOGGING_ONLY\n",
    );
    // `machineType` sizes the build here (crates/core/src/limits.rs): it is not one of them.
    assert_eq!(w.len(), 3, "{w:#?}");
    assert!(w.iter().all(|w| w.contains("has no effect here")), "{w:#?}");
}

#[test]
fn artifacts() {
    check("steps:\n- name: a\nimages: [x]\nartifacts:\n  images: [y]\n", &["artifacts.images: differs from `images`"]);
    check(
        "steps:\n- name: a\nartifacts:\n  objects:\n    location: s3://b\n    paths: [a]\n",
        &["must start with `gs://`"],
    );
}

#[test]
fn substitutions_are_checked_against_the_file() {
    check("substitutions:\n  _X: a\nsteps:\n- name: a\n  args: [$_X]\n", &[]);
    check("substitutions:\n  _X: a\nsteps:\n- name: a\n", &["substitutions._X"]);
    check("steps:\n- name: a\n  args: [$_MISSING]\n", &["steps[0].args[0]"]);
    check("steps:\n- name: a\n  args: [echo $HOME]\n", &["steps[0].args[0]"]);
    check("steps:\n- name: a\n  args: [echo $$HOME]\n", &[]);
    check("steps:\n- name: a\n  script: echo $HOME $_NOT_CHECKED\n", &[]);
    check("options:\n  substitutionOption: ALLOW_LOOSE\nsteps:\n- name: a\n  args: [$_MISSING]\n", &[]);
    check("substitutions:\n  lower: a\nsteps:\n- name: a\n", &["substitutions"]);
}

#[test]
fn extensions_are_read() {
    check(
        r#"
steps:
- name: a
components:
  registry: localhost:5000/acme
  items:
  - name: train
    context: components/train
    spec: components/train/component.yaml
    buildArgs: {BASE: x}
pipeline:
  name: p
  compile: {name: python, args: [compile.py]}
  spec: build/pipeline.yaml
  upload:
  - oci: localhost:5000/acme/pipelines/p
  - kfp: {host: 'http://kfp'}
run:
  backend: local
  parameters: {epochs: 3, name: x}
  timeout: 600s
  metrics: [accuracy]
environments:
- name: dev
  branches: ['^main$']
  auto: true
- name: prod
  after: dev
  gates:
    metrics: [{name: accuracy, op: '>=', value: 0.9}]
  approval: {required: 1, approvers: [alice]}
triggers:
- name: main
  event: push
  branch: '^main$'
  ignoredFiles: ['docs/**']
"#,
        &[],
    );
    check(
        "steps:\n- name: a\nrun:\n  backend: cloud\ntriggers:\n- name: t\n  event: push\n  branch: '('\n",
        &["`cloud` is not a valid value", "is not a valid RE2 regular expression"],
    );
}

#[test]
fn trigger_globs_and_inverted_regexes_are_checked() {
    check(
        "steps:\n- name: a\ntriggers:\n- name: t\n  event: push\n  ignoredFiles: ['/docs/**', 'src/[a', '']\n  invertRegex: true\n",
        &[
            "triggers[0].invertRegex: has no regex to invert",
            "triggers[0].ignoredFiles: `/docs/**` starts with `/`; globs are relative to the repository root: write `docs/**`",
            "triggers[0].ignoredFiles: `src/[a` is not a valid glob: unclosed character class",
            "triggers[0].ignoredFiles: a glob may not be empty",
        ],
    );
    check(
        "steps:\n- name: a\ntriggers:\n- name: t\n  event: push\n  includedFiles: ['docs/**', '**/*.md', '{a,b}/?.py']\n",
        &[],
    );
}

#[test]
fn hostile_input_is_an_error_not_a_panic() {
    check("", &["the build file is empty"]);
    check("steps:\n  - name: a\n   bad: [", &["invalid YAML"]);
    check("- a\n- b\n", &["expected a mapping, found a list"]);
    let result = load("f", &[b's', b't', 0xff, 0xfe], &[]);
    let errors = result.expect_err("invalid utf-8").to_string();
    assert!(errors.contains("f:1:3: the file is not valid UTF-8"), "{errors}");
    let big = vec![b'#'; MAX_FILE_BYTES + 1];
    let errors = load("f", &big, &[]).expect_err("too big").to_string();
    assert!(errors.contains("build files may be at most 4 MiB"), "{errors}");
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let p = i - 1;
        bomb.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
    }
    let errors = load("f", bomb.as_bytes(), &[]).expect_err("bomb").to_string();
    assert!(errors.contains("alias bomb"), "{errors}");
}

#[test]
fn anchors_and_merge_keys_work() {
    let text = "steps:\n- &base\n  name: busybox\n  env: [A=1]\n  args: [a]\n- <<: *base\n  args: [b]\n";
    let loaded = load("f", text.as_bytes(), &[]).expect("loads");
    let steps = &loaded.config.steps;
    assert_eq!(steps[1].name.as_ref().map(|n| n.value.as_str()), Some("busybox"));
    assert_eq!(steps[1].args[0].value, "b");
    assert_eq!(steps[1].env[0].value, "A=1");
    check("x-base: &base\n  name: busybox\nsteps:\n- <<: *base\n", &["unknown field `x-base`"]);
}

#[test]
fn garbage_never_panics() {
    // A cheap fuzz: every prefix of a rich file, and byte flips, must load or fail cleanly.
    let text = include_str!(
        "../../../../tests/fixtures/cloudbuild/GoogleCloudPlatform__cloud-builders__docker__cloudbuild.yaml"
    );
    for end in (0..text.len()).step_by(7) {
        if text.is_char_boundary(end) {
            let _ = load("f", &text.as_bytes()[..end], &[]);
        }
    }
    let mut bytes = text.as_bytes().to_vec();
    for i in (0..bytes.len()).step_by(13) {
        let saved = bytes[i];
        for b in [b'[', b'{', b':', b'&', b'*', b'\'', b'"', b'-', b'\n', 0xff] {
            bytes[i] = b;
            let _ = load("f", &bytes, &[]);
        }
        bytes[i] = saved;
    }
}

#[test]
fn every_step_field_reaches_the_model() {
    let text = r#"
availableSecrets:
  secretManager: [{versionName: projects/p/secrets/s/versions/1, env: TOKEN}]
steps:
- name: a
  id: first
- name: busybox
  args: [x, y]
  env: [A=1]
  dir: sub
  id: second
  waitFor: [first]
  entrypoint: sh
  secretEnv: [TOKEN]
  volumes: [{name: vol, path: /v}]
  timeout: 5s
  allowFailure: true
  allowExitCodes: [2]
  automapSubstitutions: true
- name: c
  script: echo
  volumes: [{name: vol, path: /v}]
"#;
    let loaded = load("f", text.as_bytes(), &[]).expect("loads");
    let s = &loaded.config.steps[1];
    assert_eq!(s.name.as_ref().map(|n| n.as_str()), Some("busybox"));
    assert_eq!(s.args.iter().map(|a| a.as_str()).collect::<Vec<_>>(), ["x", "y"]);
    assert_eq!(s.env[0].as_str(), "A=1");
    assert_eq!(s.dir.as_ref().map(|d| d.as_str()), Some("sub"));
    assert_eq!(s.id.as_ref().map(|d| d.as_str()), Some("second"));
    assert_eq!(s.wait_for[0].as_str(), "first");
    assert_eq!(s.entrypoint.as_ref().map(|d| d.as_str()), Some("sh"));
    assert_eq!(s.secret_env[0].as_str(), "TOKEN");
    assert_eq!(s.volumes[0].path.as_str(), "/v");
    assert_eq!(s.timeout.as_ref().map(|t| t.value), Some(std::time::Duration::from_secs(5)));
    assert!(s.allow_failure);
    assert_eq!(s.allow_exit_codes[0].value, 2);
    assert_eq!(s.automap_substitutions, Some(true));
    assert_eq!(loaded.config.steps[2].script.as_ref().map(|d| d.as_str()), Some("echo"));
}

#[test]
fn environments_are_checked() {
    check(
        "steps: [{name: a}]\nenvironments:\n- {name: dev}\n- {name: staging, after: dve}\n- {name: 'pro d', after: staging}\n- {name: dev}\n",
        &[
            "`dve` is not an environment of this file\n  hint: did you mean `dev`?",
            "`pro d` cannot name an environment",
            "environment `dev` is defined twice",
        ],
    );
    check(
        "steps: [{name: a}]\nenvironments:\n- {name: a, after: b}\n- {name: b, after: a}\n- {name: c, approval: {required: 3, approvers: [x]}, branches: ['(']}\n",
        &["loops back", "loops back", "asks for 3 approvals but lists 1 approvers", "not a valid RE2"],
    );
    // Names that read as a build's own tags: promotion would write over them.
    check(
        "steps: [{name: a}]\nenvironments:\n- {name: abc1234}\n- {name: ctx-x}\n- {name: Branch-main}\n- {name: cafe}\n",
        &[
            "`abc1234` cannot name an environment: it reads as a build's own tag",
            "`ctx-x` cannot name an environment: it reads as a build's own tag",
            "`Branch-main` cannot name an environment: it reads as a build's own tag",
        ],
    );
}
