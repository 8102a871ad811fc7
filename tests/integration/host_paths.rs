//! docs/THREATS.md property 6, played by the attacker: hostile pipeline specs run by the real
//! `pipewright run-pipeline` with real containers, a hostile `pipeline.name` built by `pipewright run`,
//! and `..%2F` and unknown build ids sent to a real `pipewright serve`. Each shows the attack fails
//! with a clear error and that nothing outside moved (canary files read and compared from outside).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::server::{Server, config};
use crate::support::{BUSYBOX, GitRepo, docker_ready, pipewright};

const CANARY: &str = "canary-secret-7f3a9c";

/// A spec of container tasks: `tasks` is `(name, shell script, output parameters, output artifacts,
/// input artifacts as (name, producer, key))`. Names are written as given, so a test can make them
/// hostile.
type TaskSpec<'a> = (&'a str, &'a str, &'a [&'a str], &'a [&'a str], &'a [(&'a str, &'a str, &'a str)]);

fn spec(name: &str, tasks: &[TaskSpec<'_>]) -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let mut components = String::new();
    let mut executors = String::new();
    let mut dag = String::new();
    for (task, script, parameters, artifacts, inputs) in tasks {
        components.push_str(&format!("  comp-{task}:\n    executorLabel: exec-{task}\n"));
        if !inputs.is_empty() {
            components.push_str("    inputDefinitions:\n      artifacts:\n");
            for (input, _, _) in *inputs {
                components.push_str(&format!(
                    "        {}: {{artifactType: {{schemaTitle: system.Dataset, schemaVersion: 0.0.1}}}}\n",
                    quote(input)
                ));
            }
        }
        if !parameters.is_empty() || !artifacts.is_empty() {
            components.push_str("    outputDefinitions:\n");
        }
        if !parameters.is_empty() {
            components.push_str("      parameters:\n");
            for p in *parameters {
                components.push_str(&format!("        {}: {{parameterType: STRING}}\n", quote(p)));
            }
        }
        if !artifacts.is_empty() {
            components.push_str("      artifacts:\n");
            for a in *artifacts {
                components.push_str(&format!(
                    "        {}: {{artifactType: {{schemaTitle: system.Metrics, schemaVersion: 0.0.1}}}}\n",
                    quote(a)
                ));
            }
        }
        executors.push_str(&format!(
            "    exec-{task}:\n      container:\n        image: {BUSYBOX}\n        command: [sh, -c]\n        args: [{}]\n",
            quote(script)
        ));
        dag.push_str(&format!("      {}:\n        componentRef: {{name: comp-{task}}}\n", quote(task)));
        if !inputs.is_empty() {
            let producers: Vec<&str> = inputs.iter().map(|(_, p, _)| *p).collect();
            dag.push_str(&format!("        dependentTasks: [{}]\n", producers.join(", ")));
            dag.push_str("        inputs:\n          artifacts:\n");
            for (input, producer, key) in *inputs {
                dag.push_str(&format!(
                    "            {}: {{taskOutputArtifact: {{producerTask: {producer}, outputArtifactKey: {key}}}}}\n",
                    quote(input)
                ));
            }
        }
    }
    format!(
        "components:\n{components}deploymentSpec:\n  executors:\n{executors}pipelineInfo:\n  name: {name}\n\
         root:\n  dag:\n    tasks:\n{dag}schemaVersion: 2.1.0\nsdkVersion: kfp-2.17.3\n"
    )
}

/// `pipewright run-pipeline --format json` on `spec` with the data directory `data`, the canary in
/// its environment (what `/proc/self/environ` would hand out). Returns the exit code, the record
/// (or null) and everything the process printed.
fn run_pipeline(data: &Path, spec: &str) -> (Option<i32>, Value, String) {
    let file = data.join(format!("spec-{}.yaml", uuid::Uuid::new_v4()));
    std::fs::write(&file, spec).expect("write spec");
    let out = pipewright()
        .args(["run-pipeline", "--format", "json", "--data-dir"])
        .arg(data)
        .arg(&file)
        .env("PW_SERVER_SECRET", CANARY)
        .output()
        .expect("pipewright runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!("stdout:\n{stdout}\nstderr:\n{stderr}");
    let record = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (out.status.code(), record, format!("{stdout}\n{stderr}"))
}

fn task_state<'a>(record: &'a Value, name: &str) -> &'a str {
    record["tasks"]
        .as_array()
        .and_then(|tasks| tasks.iter().find(|t| t["name"] == name))
        .and_then(|t| t["state"].as_str())
        .unwrap_or("")
}

/// A directory outside the data directory holding a secret file, and a check that it is as it was.
struct Canary {
    dir: tempfile::TempDir,
    mode: u32,
}

impl Canary {
    fn new() -> Canary {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("secret"), CANARY).expect("write canary");
        let mode = Canary::mode(dir.path());
        Canary { dir, mode }
    }

    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).expect("meta").permissions().mode() & 0o7777
    }

    fn path(&self) -> String {
        self.dir.path().display().to_string()
    }

    fn untouched(&self) {
        let names: Vec<String> = std::fs::read_dir(self.dir.path())
            .expect("canary dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["secret"], "something was written beside the canary");
        assert_eq!(std::fs::read_to_string(self.dir.path().join("secret")).expect("canary"), CANARY);
        assert_eq!(Canary::mode(self.dir.path()), self.mode, "the canary directory's mode changed");
    }
}

#[test]
fn hostile_task_and_output_names_are_refused_before_anything_runs() {
    if !docker_ready() {
        return;
    }
    let data = tempfile::tempdir().expect("tempdir");
    let cases: [(&str, String); 3] = [
        (
            "components.comp-leak.outputDefinitions.parameters./proc/self/environ`: `/proc/self/environ` is not a valid name: it contains `/`",
            spec("names", &[("leak", "true", &["/proc/self/environ"], &[], &[])]),
        ),
        (
            "components.comp-leak.outputDefinitions.artifacts.../../x`: `../../x` is not a valid name: it contains `/`",
            spec("names", &[("leak", "true", &[], &["../../x"], &[])]),
        ),
        (
            "root.dag.tasks...`: `..` is not a valid name: it names a directory by a relative name",
            spec("names", &[("..", "true", &[], &[], &[])]),
        ),
    ];
    for (want, text) in cases {
        let (code, _, printed) = run_pipeline(data.path(), &text);
        assert_ne!(code, Some(0), "{want}");
        assert!(printed.contains(want), "want {want:?} in:\n{printed}");
        assert!(printed.contains("hint: a name is 1 to 255 bytes"), "{printed}");
        assert!(!printed.contains(CANARY));
    }
    // Nothing ran: no run directory was made, nothing outside the data directory appeared.
    let runs = data.path().join("runs");
    let made: Vec<_> = std::fs::read_dir(&runs).map(|d| d.flatten().collect()).unwrap_or_default();
    assert!(made.is_empty(), "run directories were made: {made:?}");
    assert!(!data.path().join("x").exists() && !data.path().parent().expect("parent").join("x").exists());
}

#[test]
fn a_task_cannot_hand_host_paths_to_the_server_or_to_the_next_task() {
    if !docker_ready() {
        return;
    }
    let data = tempfile::tempdir().expect("tempdir");
    let canary = Canary::new();
    let reader =
        "ls -la \"{{$.inputs.artifacts['data'].path}}\"; cat \"{{$.inputs.artifacts['data'].path}}/secret\"; true";

    // 1. An ExecutorOutput URI naming a host directory, which the next task would get mounted.
    let uri = format!(
        "printf '{{\"artifacts\": {{\"data\": {{\"artifacts\": [{{\"uri\": \"{}\"}}]}}}}}}' > \"{{{{$.outputs.output_file}}}}\"",
        canary.path()
    );
    let text =
        spec("uri", &[("evil", &uri, &[], &["data"], &[]), ("reader", reader, &[], &[], &[("data", "evil", "data")])]);
    let (code, record, printed) = run_pipeline(data.path(), &text);
    assert_eq!(code, Some(1), "{printed}");
    assert_eq!(record["state"], "FAILED");
    let error = record["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with(&format!(
            "task `evil` failed: output artifact `data`: the ExecutorOutput URI is refused: `{}` is not a path under `",
            canary.path()
        )),
        "{error}"
    );
    assert_eq!(task_state(&record, "reader"), "NOT_TRIGGERED");
    assert!(!printed.contains(CANARY), "the canary leaked:\n{printed}");
    canary.untouched();

    // 2. An output parameter file that is a link to the server's environment, and an output artifact
    // that is a link to a host directory: neither is followed.
    let runs = data.path().join("runs").display().to_string();
    let env_link = "ln -s /proc/self/environ \"{{$.outputs.parameters['out'].output_file}}\"";
    let text = spec("env", &[("evil", env_link, &["out"], &[], &[])]);
    let (code, record, printed) = run_pipeline(data.path(), &text);
    assert_eq!(code, Some(1), "{printed}");
    let error = record["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("task `evil` failed: output parameter `out` was not written: cannot read `")
            && error.ends_with(&format!("parameters/out` is a symbolic link; links are not followed out of `{runs}`")),
        "{error}"
    );
    assert!(!printed.contains(CANARY), "the server's environment leaked:\n{printed}");

    let dir_link = format!("ln -s {} \"{{{{$.outputs.artifacts['data'].path}}}}\"", canary.path());
    let text = spec(
        "link",
        &[("evil", &dir_link, &[], &["data"], &[]), ("reader", reader, &[], &[], &[("data", "evil", "data")])],
    );
    let (code, record, printed) = run_pipeline(data.path(), &text);
    assert_eq!(code, Some(1), "{printed}");
    let error = record["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("task `reader`: input artifact `data` is refused: `") && error.contains("is a symbolic link"),
        "{error}"
    );
    assert!(!printed.contains(CANARY), "the canary leaked:\n{printed}");
    canary.untouched();
}

#[test]
fn a_task_cannot_touch_another_runs_metrics() {
    if !docker_ready() {
        return;
    }
    let data = tempfile::tempdir().expect("tempdir");
    let honest = spec(
        "honest",
        &[(
            "train",
            "echo '{\"accuracy\": 0.9}' > \"{{$.outputs.artifacts['metrics'].path}}\"",
            &[],
            &["metrics"],
            &[],
        )],
    );
    let (code, first, printed) = run_pipeline(data.path(), &honest);
    assert_eq!(code, Some(0), "{printed}");
    assert_eq!(first["metrics"]["accuracy"], 0.9);
    let runs = data.path().join("runs");
    let metrics: Vec<std::path::PathBuf> = std::fs::read_dir(&runs)
        .expect("runs")
        .flatten()
        .map(|e| e.path().join("train/artifacts/metrics"))
        .filter(|p| p.exists())
        .collect();
    assert_eq!(metrics.len(), 1, "one run's metrics file");
    let before = std::fs::read_to_string(&metrics[0]).expect("metrics");

    // The attacker knows where runs live and tries every run's metrics, and the whole runs root.
    let attack = format!(
        "for f in {runs}/*/train/artifacts/metrics; do echo '{{\"accuracy\": 0.01}}' > \"$f\" && echo WROTE \"$f\"; done; \
         touch {runs}/planted; ls -R {runs}; true",
        runs = runs.display()
    );
    let (code, second, printed) = run_pipeline(data.path(), &spec("attacker", &[("train", &attack, &[], &[], &[])]));
    assert_eq!(code, Some(0), "{printed}");
    assert_eq!(second["state"], "SUCCEEDED");
    assert!(!printed.contains("WROTE"), "the attacker wrote outside its task directory:\n{printed}");
    assert_eq!(std::fs::read_to_string(&metrics[0]).expect("metrics"), before, "another run's metrics changed");
    assert!(!runs.join("planted").exists());
}

#[test]
fn a_pipeline_name_that_is_a_path_is_refused() {
    if !docker_ready() {
        return;
    }
    let outer = tempfile::tempdir().expect("tempdir");
    let data = outer.path().join("data");
    std::fs::create_dir(&data).expect("mkdir");
    let mut repo = GitRepo::new();
    repo.write(
        "cloudbuild.yaml",
        &format!("steps: [{{name: '{BUSYBOX}', args: ['true']}}]\npipeline:\n  name: ../../x\n  spec: p.yaml\n"),
    )
    .write("p.yaml", &spec("p", &[("t", "true", &[], &[], &[])]));
    repo.commit("a pipeline named like a path");
    let out = pipewright()
        .arg("run")
        .arg(repo.path())
        .args(["--format", "json", "--pull", "never", "--data-dir"])
        .arg(&data)
        .output()
        .expect("pipewright runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("pipeline.name") && stderr.contains("`../../x` is not a valid name: it contains `/`"),
        "{stderr}"
    );
    assert!(stderr.contains("the pipeline name is one path segment"), "{stderr}");
    // Nothing was written where the name points, nor any spec at all.
    assert!(!outer.path().join("x").exists() && !data.join("x").exists());
    assert!(!data.join("specs").exists());
}

/// A GET with no token, its status and body, and how long it took; the client gives up after 10 s.
fn get(server: &Server, path: &str) -> (u16, String, Duration) {
    let url = format!("{}{path}", server.url);
    let started = Instant::now();
    server.rt.block_on(async move {
        let response = reqwest::Client::new().get(&url).timeout(Duration::from_secs(10)).send().await;
        match response {
            Ok(r) => {
                let status = r.status().as_u16();
                let body = tokio::time::timeout(Duration::from_secs(10), r.text()).await;
                (status, body.ok().and_then(Result::ok).unwrap_or_default(), started.elapsed())
            }
            Err(e) => panic!("`{path}`: {e}"),
        }
    })
}

#[test]
fn build_ids_from_urls_are_checked_before_anything_is_read() {
    let outer = tempfile::tempdir().expect("tempdir");
    let data = outer.path().join("data");
    std::fs::create_dir(&data).expect("mkdir");
    // What the traversal would read: `<data>/builds/../../x/log.txt` and `<data>/secret/log.txt`.
    for dir in [outer.path().join("x"), data.join("secret")] {
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("log.txt"), CANARY).expect("canary");
    }
    let repo = GitRepo::with_config(&format!("steps: [{{name: '{BUSYBOX}', args: ['true']}}]\n"));
    let server = Server::start(&data, &config(repo.path(), None, ""));
    for path in [
        "/builds/..%2F..%2Fx/log",
        "/builds/..%2F..%2Fx/log?follow=true",
        "/builds/..%2Fsecret/log",
        "/builds/..%2Fsecret",
        "/v1/projects/local/builds/..%2F..%2Fx/logs",
        "/v1/projects/local/builds/..%2Fsecret/logs?follow=true",
    ] {
        let (status, body, took) = get(&server, path);
        assert!((400..500).contains(&status), "{path}: {status} {body}");
        assert!(took < Duration::from_secs(5), "{path} took {took:?}");
        assert!(!body.contains(CANARY), "{path} read the canary: {body}");
    }
    let (status, body, _) = get(&server, "/builds/..%2F..%2Fx/log");
    assert_eq!(status, 400);
    assert!(body.starts_with("not a build id: `../../x` is not a valid name: it contains `/`"), "{body}");
    // An unknown build: a 404 at once, never a stream that waits forever.
    let unknown = uuid::Uuid::new_v4();
    for path in [format!("/builds/{unknown}/log?follow=true"), format!("/builds/{unknown}/log")] {
        let (status, body, took) = get(&server, &path);
        assert_eq!(status, 404, "{path}: {body}");
        assert!(took < Duration::from_secs(5), "{path} took {took:?}");
        assert_eq!(body, format!("no build `{unknown}`"));
    }
    for dir in [outer.path().join("x"), data.join("secret")] {
        assert_eq!(std::fs::read_to_string(dir.join("log.txt")).expect("canary"), CANARY);
    }
}

/// An importer's `artifactUri` is input too: pointed at a host file (here the canary; `/etc`,
/// `/var/run/docker.sock` alike), the local runner used to bind-mount it into the next task. Now a
/// local file is imported only from the directories the run may import from (a build's checkout;
/// for `run-pipeline` the current directory or `--import-root`): the reading task fails, naming the
/// path, and the secret is not in anything the run wrote or printed.
#[test]
fn an_importer_cannot_mount_a_host_file_into_a_task() {
    if !docker_ready() {
        return;
    }
    let canary = Canary::new();
    let secret = format!("{}/secret", canary.path());
    let data = tempfile::tempdir().expect("tempdir");
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let spec = crate::support::fixture("runner/importer_and_metrics.yaml");
    let run = |extra: &[&str]| {
        let out = pipewright()
            .args(["run-pipeline", "--format", "json", "--data-dir"])
            .arg(data.path())
            .arg(&spec)
            .args(["--param", &format!("uri={secret}")])
            .args(extra)
            .current_dir(elsewhere.path())
            .output()
            .expect("pipewright runs");
        let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.code(), serde_json::from_slice::<Value>(&out.stdout).unwrap_or(Value::Null), text)
    };
    let (code, record, printed) = run(&[]);
    assert_eq!(code, Some(1), "{printed}");
    assert_eq!(task_state(&record, "read"), "FAILED", "{record:#}");
    assert!(printed.contains(&format!("`{secret}` is a host path outside the run")), "{printed}");
    assert!(!printed.contains(CANARY), "the secret was read: {printed}");
    let written = std::process::Command::new("grep")
        .args(["-r", "-l", CANARY])
        .arg(data.path().join("runs"))
        .output()
        .expect("grep");
    assert!(
        written.stdout.is_empty(),
        "the secret is in the run's files: {}",
        String::from_utf8_lossy(&written.stdout)
    );
    canary.untouched();

    // The operator can name the directory: then it is imported (read-only).
    let (code, record, printed) = run(&["--import-root", &canary.path()]);
    assert_eq!(code, Some(0), "{printed}");
    assert_eq!(task_state(&record, "read"), "SUCCEEDED", "{record:#}");
    canary.untouched();
}
