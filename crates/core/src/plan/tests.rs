use super::*;
use crate::config;

fn context() -> BuildContext {
    BuildContext {
        build_id: "b-1".into(),
        project_id: "proj".into(),
        location: "local".into(),
        source: Source {
            url: "file:///r".into(),
            revision: "HEAD".into(),
            commit_sha: "0123456789abcdef0123456789abcdef01234567".into(),
            branch: Some("main".into()),
            repo_name: "churn".into(),
            repo_full_name: "acme/churn".into(),
            ..Source::default()
        },
        config_path: "cloudbuild.yaml".into(),
        ..BuildContext::default()
    }
}

fn plan_of(text: &str, ctx: &BuildContext) -> Result<BuildPlan, Diagnostics> {
    let loaded = config::load("cloudbuild.yaml", text.as_bytes(), &ctx.overrides).map_err(|d| {
        panic!("does not load: {d}");
    })?;
    plan("cloudbuild.yaml", &loaded.config, ctx)
}

#[track_caller]
fn ok(text: &str) -> BuildPlan {
    plan_of(text, &context()).unwrap_or_else(|d| panic!("does not plan: {d}"))
}

#[test]
fn wait_for_defaults_to_all_earlier_steps() {
    let plan = ok(
        "steps:\n- name: a\n- name: b\n  id: b\n- name: c\n  waitFor: ['-']\n- name: d\n  waitFor: [b]\n- name: e\n",
    );
    let deps: Vec<Vec<usize>> = plan.steps.iter().map(|s| s.wait_for.clone()).collect();
    assert_eq!(deps, vec![vec![], vec![0], vec![], vec![1], vec![0, 1, 2, 3]]);
}

#[test]
fn builtins_are_substituted() {
    let plan = ok(
        "steps:\n- name: busybox\n  args: [$PROJECT_ID, $SHORT_SHA, $BRANCH_NAME, $REPO_FULL_NAME, $BUILD_ID, '$TAG_NAME']\n",
    );
    assert_eq!(plan.steps[0].args, ["proj", "0123456", "main", "acme/churn", "b-1", ""]);
    assert_eq!(
        plan.substitutions.get("COMMIT_SHA").map(String::as_str),
        Some("0123456789abcdef0123456789abcdef01234567")
    );
}

#[test]
fn overrides_win_over_the_file() {
    let mut ctx = context();
    ctx.overrides = vec![("_X".into(), "flag".into())];
    let plan = plan_of("substitutions: {_X: file}\nsteps:\n- name: busybox\n  args: [$_X, $COMMIT_SHA]\n", &ctx)
        .expect("plans");
    assert_eq!(plan.steps[0].args[0], "flag");
}

#[test]
fn overrides_cannot_set_a_built_in() {
    for key in ["COMMIT_SHA", "SHORT_SHA", "BRANCH_NAME", "REVISION_ID", "_HEAD_BRANCH"] {
        let mut ctx = context();
        ctx.overrides = vec![(key.into(), "0000000000000000000000000000000000000000".into())];
        let error =
            config::load("cloudbuild.yaml", b"steps:\n- name: busybox\n  args: [$COMMIT_SHA]\n", &ctx.overrides)
                .map(|_| ())
                .expect_err(key)
                .to_string();
        assert!(error.contains(&format!("built-in substitution `{key}` cannot be overridden")), "{error}");
        assert!(error.contains("start with `_`"), "{error}");
    }
    // And plan() itself refuses them, for a caller that did not load through `config::load`.
    let mut ctx = context();
    let loaded = config::load("cloudbuild.yaml", b"steps:\n- name: busybox\n", &[]).expect("loads");
    ctx.overrides = vec![("COMMIT_SHA".into(), "x".into())];
    let error = plan("cloudbuild.yaml", &loaded.config, &ctx).expect_err("refused");
    assert!(error.to_string().contains("`COMMIT_SHA` cannot be overridden"), "{error}");
}

#[test]
fn env_merges_with_step_winning() {
    let plan = ok("options:\n  env: [A=1, B=2]\nsteps:\n- name: a\n  env: [B=3, C=4]\n");
    assert_eq!(plan.steps[0].env, ["A=1", "B=3", "C=4"]);
}

#[test]
fn automap_adds_substitutions_below_explicit_env() {
    let plan = ok(
        "substitutions: {_X: one}\noptions:\n  automapSubstitutions: true\nsteps:\n- name: a\n  env: [_X=explicit]\n  script: echo $_X\n",
    );
    assert!(plan.steps[0].env.contains(&"_X=explicit".to_string()));
    assert!(plan.steps[0].env.contains(&"PROJECT_ID=proj".to_string()));
    assert!(!plan.steps[0].env.contains(&"_X=one".to_string()));
}

#[test]
fn dir_follows_cloud_build() {
    let plan =
        ok("steps:\n- name: a\n- name: a\n  dir: sub/./x/..\n- name: a\n  dir: ../b/c\n- name: a\n  dir: /abs/dir\n");
    let dirs: Vec<&str> = plan.steps.iter().map(|s| s.working_dir.as_str()).collect();
    assert_eq!(dirs, ["/workspace", "/workspace/sub", "/b/c", "/abs/dir"]);
}

#[test]
fn images_cannot_carry_an_environment_tag() {
    let text = |image: &str| format!("steps:\n- name: busybox\nimages: ['{image}']\nenvironments:\n- name: qa\n");
    for image in ["r.example/app:prod", "r.example/app:QA", "r.example/app:staging-$SHORT_SHA"] {
        let err = plan_of(&text(image), &context()).expect_err(image).to_string();
        assert!(err.contains("images[0]") && err.contains("only promotion moves those"), "{image}: {err}");
        assert!(err.contains("pipewright promote"), "{err}");
    }
    for image in ["r.example/app:$COMMIT_SHA", "r.example/app:latest", "r.example/app", "r.example/app:production"] {
        ok(&text(image));
    }
}

#[test]
fn images_are_checked_after_substitution() {
    let mut ctx = context();
    ctx.overrides = vec![("_REGISTRY".into(), String::new())];
    let err = plan_of("substitutions: {_REGISTRY: x}\nsteps:\n- name: 'gcr.io/$_REGISTRY/img'\n", &ctx)
        .expect_err("empty registry breaks the reference")
        .to_string();
    assert!(err.contains("steps[0].name: after substitution: `gcr.io//img` is not a valid image reference"), "{err}");
    assert!(err.contains("these substitutions are empty: `_REGISTRY`"), "{err}");
}

#[test]
fn failure_rules() {
    let plan = ok(
        "steps:\n- name: a\n  allowFailure: true\n- name: a\n  allowExitCodes: [3]\n  allowFailure: true\n- name: a\n",
    );
    assert!(plan.steps[0].failure_allowed(1));
    assert!(plan.steps[1].failure_allowed(3));
    assert!(!plan.steps[1].failure_allowed(1), "allowExitCodes wins over allowFailure");
    assert!(!plan.steps[2].failure_allowed(1));
}

#[test]
fn timeouts_default_to_an_hour() {
    assert_eq!(ok("steps:\n- name: a\n").timeout, DEFAULT_TIMEOUT);
    assert_eq!(ok("steps:\n- name: a\ntimeout: 90s\n").timeout, Duration::from_secs(90));
}

#[test]
fn secrets_and_volumes_are_collected() {
    let plan = ok(
        "availableSecrets:\n  secretManager:\n  - {versionName: projects/p/secrets/s/versions/1, env: TOKEN}\noptions:\n  volumes: [{name: shared, path: /shared}]\nsteps:\n- name: a\n  secretEnv: [TOKEN]\n  volumes: [{name: cache, path: /cache}]\n- name: b\n  volumes: [{name: cache, path: /cache}]\n",
    );
    assert_eq!(plan.secret_names.iter().collect::<Vec<_>>(), ["TOKEN"]);
    assert_eq!(plan.volumes.iter().collect::<Vec<_>>(), ["cache", "shared"]);
    assert_eq!(plan.steps[1].volumes.len(), 2);
}

#[test]
fn tags_are_sanitised() {
    let plan = ok("steps:\n- name: a\ntags: ['$BRANCH_NAME', '$TAG_NAME', 'x', 'x']\n");
    assert_eq!(plan.tags, ["main", "x"]);
}
