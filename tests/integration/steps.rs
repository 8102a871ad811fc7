//! The steps phase on the real Docker engine: ordering, failure rules, timeouts, volumes, masking.

use crate::support::*;

const B: &str = BUSYBOX;

fn build(config: &str, args: &[&str]) -> Option<RunResult> {
    if !docker_ready() {
        return None;
    }
    let repo = GitRepo::with_config(&config.replace("BUSYBOX", B));
    let result = run_build(repo.path(), args);
    let id = result.record["id"].as_str().expect("id").to_string();
    assert_eq!(labelled(&id), (0, 0, 0), "the build left Docker resources behind");
    Some(result)
}

#[test]
fn independent_steps_overlap_in_time() {
    let Some(r) = build(
        "steps:\n- {name: BUSYBOX, args: [sleep, '2'], waitFor: ['-']}\n- {name: BUSYBOX, args: [sleep, '2'], waitFor: ['-']}\n",
        &[],
    ) else {
        return;
    };
    assert_eq!(r.status(), "SUCCESS", "{}", r.stderr());
    let (a0, a1) = r.step_span(0);
    let (b0, b1) = r.step_span(1);
    let overlap = a1.min(b1) - a0.max(b0);
    assert!(overlap > 1.0, "steps should run side by side: {a0:.2}-{a1:.2} and {b0:.2}-{b1:.2}");
}

#[test]
fn steps_run_in_order_by_default() {
    let Some(r) = build(
        "steps:\n- {name: BUSYBOX, args: [sleep, '1']}\n- {name: BUSYBOX, args: [sleep, '1']}\n- {name: BUSYBOX, args: ['true']}\n",
        &[],
    ) else {
        return;
    };
    assert_eq!(r.status(), "SUCCESS", "{}", r.stderr());
    for i in 1..3 {
        let (_, prev_end) = r.step_span(i - 1);
        let (start, _) = r.step_span(i);
        assert!(start >= prev_end, "step {i} started at {start:.2} before step {} ended at {prev_end:.2}", i - 1);
    }
}

#[test]
fn a_failing_step_stops_the_build() {
    let started = std::time::Instant::now();
    let Some(r) = build(
        "steps:\n- {name: BUSYBOX, args: [sleep, '60'], waitFor: ['-']}\n- {name: BUSYBOX, args: [sh, -c, 'sleep 1; exit 3'], waitFor: ['-']}\n- {name: BUSYBOX, args: ['true']}\n",
        &[],
    ) else {
        return;
    };
    assert_eq!(r.status(), "FAILURE");
    assert_eq!(r.output.status.code(), Some(1));
    assert_eq!(r.step_status(0), "CANCELLED", "the running step is stopped");
    assert_eq!(r.step_status(1), "FAILURE");
    assert_eq!(r.step(1)["exitCode"], 3);
    assert_eq!(r.step_status(2), "QUEUED", "a step that never started stays QUEUED");
    assert!(r.step(2).get("timing").is_none());
    assert!(started.elapsed().as_secs() < 30, "the sleeping step was not stopped");
    let detail = r.record["failureInfo"]["detail"].as_str().expect("detail");
    assert!(detail.contains("build step 1") && detail.contains("non-zero status: 3"), "{detail}");
    assert_eq!(r.record["failureInfo"]["type"], "USER_BUILD_STEP");
}

#[test]
fn allow_failure_and_allow_exit_codes() {
    let Some(r) = build(
        "steps:\n- {name: BUSYBOX, args: [sh, -c, 'exit 1'], allowFailure: true}\n- {name: BUSYBOX, args: [sh, -c, 'exit 3'], allowExitCodes: [3]}\n- {name: BUSYBOX, args: ['true']}\n",
        &[],
    ) else {
        return;
    };
    assert_eq!(r.status(), "SUCCESS", "{}", r.stderr());
    assert_eq!(r.step_status(0), "FAILURE", "an allowed failure still reports FAILURE");
    assert_eq!(r.step(0)["exitCode"], 1);
    assert_eq!(r.step_status(1), "FAILURE");
    assert_eq!(r.step(1)["exitCode"], 3);
    assert_eq!(r.step_status(2), "SUCCESS", "steps after an allowed failure run");

    // allowExitCodes wins over allowFailure: an unlisted code fails the build.
    let Some(r) = build(
        "steps:\n- {name: BUSYBOX, args: [sh, -c, 'exit 4'], allowExitCodes: [3], allowFailure: true}\n- {name: BUSYBOX, args: ['true']}\n",
        &[],
    ) else {
        return;
    };
    assert_eq!(r.status(), "FAILURE");
    assert_eq!(r.step_status(1), "QUEUED");
}

#[test]
fn a_step_timeout_stops_the_step() {
    let Some(r) =
        build("steps:\n- {name: BUSYBOX, args: [sleep, '60'], timeout: 2s}\n- {name: BUSYBOX, args: ['true']}\n", &[])
    else {
        return;
    };
    assert_eq!(r.step_status(0), "TIMEOUT");
    assert_eq!(r.status(), "FAILURE");
    assert_eq!(r.step_status(1), "QUEUED");
    let (start, end) = r.step_span(0);
    assert!(end - start < 12.0, "step ran {:.1}s; its timeout is 2s", end - start);
    assert!(end - start >= 2.0);
}

#[test]
fn the_build_timeout_stops_everything() {
    let Some(r) =
        build("timeout: 3s\nsteps:\n- {name: BUSYBOX, args: [sleep, '60']}\n- {name: BUSYBOX, args: ['true']}\n", &[])
    else {
        return;
    };
    assert_eq!(r.status(), "TIMEOUT");
    assert_eq!(r.step_status(0), "TIMEOUT");
    assert_eq!(r.step_status(1), "QUEUED");
    let took = timestamp(&r.record["finishTime"]) - timestamp(&r.record["startTime"]);
    assert!(took < 13.0, "build ran {took:.1}s; its timeout is 3s");
}

#[test]
fn volumes_and_the_workspace_are_shared() {
    let Some(r) = build(
        r#"steps:
- name: BUSYBOX
  args: [sh, -c, 'echo cached > /cache/x && echo made > /workspace/out && cat /workspace/cloudbuild.yaml > /dev/null']
  volumes: [{name: cache, path: /cache}]
- name: BUSYBOX
  args: [sh, -c, 'cat /cache/x /workspace/out; echo "home=$$HOME"']
  volumes: [{name: cache, path: /cache}]
"#,
        &[],
    ) else {
        return;
    };
    assert_eq!(r.status(), "SUCCESS", "{}", r.stderr());
    assert_eq!(r.step_log(1), "cached\nmade\nhome=/builder/home\n");
}

#[test]
fn dir_entrypoint_and_script() {
    let Some(r) = build(
        r#"substitutions: {_WHO: world}
steps:
- {name: BUSYBOX, args: [mkdir, -p, sub/deeper]}
- {name: BUSYBOX, dir: sub/./deeper/.., args: [pwd]}
- {name: BUSYBOX, dir: /tmp, args: [pwd]}
- {name: BUSYBOX, entrypoint: sh, args: [-c, 'echo entry $_WHO']}
- name: BUSYBOX
  automapSubstitutions: true
  script: |
    echo "script $_WHO from $(pwd)"
    echo "sha ${SHORT_SHA}"
"#,
        &[],
    ) else {
        return;
    };
    assert_eq!(r.status(), "SUCCESS", "{}", r.stderr());
    assert_eq!(r.step_log(1), "/workspace/sub\n");
    assert_eq!(r.step_log(2), "/tmp\n");
    assert_eq!(r.step_log(3), "entry world\n");
    let short = r.record["substitutions"]["SHORT_SHA"].as_str().expect("short sha");
    assert_eq!(r.step_log(4), format!("script world from /workspace\nsha {short}\n"));
}

#[test]
fn secrets_are_masked_everywhere() {
    let secret = "s3cr3t-t0ken-value";
    let config = r#"availableSecrets:
  secretManager:
  - {versionName: projects/p/secrets/token/versions/latest, env: TOKEN}
steps:
- name: BUSYBOX
  secretEnv: [TOKEN]
  entrypoint: sh
  args:
  - -c
  - |
    echo "whole: $$TOKEN"
    half=$${#TOKEN}; half=$$((half / 2))
    printf 'halves: %s' "$$(echo "$$TOKEN" | cut -c1-$$half)"; sleep 0.3
    printf '%s\n' "$$(echo "$$TOKEN" | cut -c$$((half + 1))-)"
    echo "len=$${#TOKEN}" >&2
    exit 7
"#;
    if !docker_ready() {
        return;
    }
    let repo = GitRepo::with_config(&config.replace("BUSYBOX", B));
    let data = tempfile::tempdir().expect("tempdir");
    let output = pipewright()
        .arg("run")
        .arg(repo.path())
        .args(["--format", "json", "--pull", "never", "--secret", "TOKEN=env:PW_TEST_TOKEN", "--data-dir"])
        .arg(data.path())
        .env("PW_TEST_TOKEN", secret)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("whole: ***"), "{stderr}");
    assert!(stderr.contains("halves: ***"), "{stderr}");
    assert!(stderr.contains(&format!("len={}", secret.len())), "the step saw the value: {stderr}");
    for (what, text) in [("stdout", stdout.to_string()), ("stderr", stderr.to_string())] {
        assert!(!text.contains(secret), "secret leaked to {what}");
        assert!(!text.contains(&secret[..9]) || !text.contains(&secret[9..]), "secret halves leaked to {what}");
    }
    for entry in walk(data.path()) {
        let text = String::from_utf8_lossy(&std::fs::read(&entry).expect("read")).into_owned();
        assert!(!text.contains(secret), "secret leaked to {}", entry.display());
        assert!(!text.contains(&secret[..9]), "half a secret leaked to {}", entry.display());
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn a_missing_secret_stops_the_build_before_any_step() {
    if !docker_ready() {
        return;
    }
    let repo = GitRepo::with_config(
        "availableSecrets:\n  secretManager:\n  - {versionName: projects/p/secrets/t/versions/1, env: TOKEN}\nsteps:\n- {name: BUSYBOX, secretEnv: [TOKEN], args: ['true']}\n"
            .replace("BUSYBOX", B)
            .as_str(),
    );
    let data = tempfile::tempdir().expect("tempdir");
    let out = pipewright()
        .arg("run")
        .arg(repo.path())
        .args(["--pull", "never", "--data-dir"])
        .arg(data.path())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("secret `TOKEN` is used by the build but has no value"), "{stderr}");
    assert!(stderr.contains("--secret TOKEN=env:VAR"), "{stderr}");
}
