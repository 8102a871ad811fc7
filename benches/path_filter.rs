//! Benchmark of the path-filter decision on a 50,000-file repository (docs/SPEC.md §16: ≤ 50 ms after fetch).
//!
//! The repository is made with `git fast-import`: 50 components × 20 modules × 50 files (45 Python, 5
//! Markdown each), and three pushes on top: 3 Python files, 3,500 Markdown files only (skipped: every
//! file is checked against the globs), and 3,500 Python files. The mirror fetches it over `file://`;
//! then, for each push, the decision (the mirror's `changed_files` for the event's `diff_base`, then
//! `decide`) runs N times. Side by side, in the same run: `git diff-tree` of the same range (what the
//! decision cannot do faster than) and `git rev-parse` (the cost of starting git at all). The budget
//! applies to the median; the maximum is shown. Exits 1 when a median is over budget.
//!
//! Run: `cargo bench --bench path_filter`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use pipewright::io::source::mirror::Mirror;
use pipewright::trigger::{self, ChangedFiles, Event, Forge, Incoming};

const RUNS: usize = 30;
const BUDGET_MS: f64 = 50.0;
const COMPONENTS: usize = 50;
const MODULES: usize = 20;
const FILES: usize = 50;
const MARKDOWN_FROM: usize = 45;

const BUILD_FILE: &str = "steps:
- name: busybox
triggers:
- name: main
  event: push
  branch: '^main$'
  ignoredFiles: ['docs/**', '**/*.md']
";

fn main() {
    let forge = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let pushes = generate(forge.path());
    let generated = started.elapsed().as_secs_f64();
    let files = git(forge.path(), &["ls-tree", "-r", "--name-only", "main~3"]).lines().count();
    assert!(files > 50_000, "{files} files");

    let mirrors = tempfile::tempdir().expect("tempdir");
    let url = format!("file://{}", forge.path().display());
    let started = Instant::now();
    let mirror = Mirror::open(mirrors.path(), &url).expect("mirror opens");
    mirror.fetch().expect("mirror fetches");
    let fetched = started.elapsed().as_secs_f64();
    let triggers = pipewright::config::load("cloudbuild.yaml", BUILD_FILE.as_bytes(), &[])
        .expect("the build file loads")
        .config
        .extensions
        .triggers;

    println!();
    println!("repository: {files} files, made in {generated:.1} s; mirror fetch over file:// {fetched:.1} s");
    println!();
    println!(
        "| push | changed files | decision | decision median / max (N={RUNS}) | `git diff-tree` median | `git rev-parse` median | ratio to diff-tree | budget (median) |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    let mut over = false;
    for push in &pushes {
        let event = push_event(&url, &push.before, &push.after);
        let base = trigger::diff_base(&event);
        // Warm up both paths once so neither pays for a cold page cache.
        let changed = mirror.changed_files(&base);
        let count = match &changed {
            ChangedFiles::Files(files) => files.len(),
            ChangedFiles::Unknown { reason } => panic!("{}: changed files unknown: {reason}", push.name),
        };
        assert_eq!(count, push.changed, "{}", push.name);
        let decision = trigger::decide(&triggers, &event, changed, false);
        assert_eq!(decision.is_build(), push.builds, "{}: {decision}", push.name);
        run_git(mirror.path(), &["diff-tree", "-r", "-z", "--name-only", &push.before, &push.after]);

        let ours: Vec<f64> = (0..RUNS)
            .map(|_| {
                let start = Instant::now();
                let changed = mirror.changed_files(&base);
                let decision = trigger::decide(&triggers, &event, changed, false);
                let elapsed = start.elapsed().as_secs_f64() * 1000.0;
                std::hint::black_box(decision);
                elapsed
            })
            .collect();
        let diff: Vec<f64> = (0..RUNS)
            .map(|_| {
                timed(|| run_git(mirror.path(), &["diff-tree", "-r", "-z", "--name-only", &push.before, &push.after]))
            })
            .collect();
        let rev_parse: Vec<f64> = (0..RUNS).map(|_| timed(|| run_git(mirror.path(), &["rev-parse", "HEAD"]))).collect();
        let (median_ours, max_ours) = (median(&ours), max(&ours));
        let verdict = if median_ours <= BUDGET_MS { "PASS" } else { "FAIL" };
        over |= median_ours > BUDGET_MS;
        println!(
            "| {} | {count} | {decision} | {median_ours:.1} ms / {max_ours:.1} ms | {:.1} ms | {:.1} ms | {:.2}x | <= {BUDGET_MS:.0} ms: {verdict} |",
            push.name,
            median(&diff),
            median(&rev_parse),
            median_ours / median(&diff),
        );
    }
    if over {
        eprintln!("over budget: a decision's median is above {BUDGET_MS:.0} ms");
        std::process::exit(1);
    }
}

struct Push {
    name: &'static str,
    before: String,
    after: String,
    changed: usize,
    builds: bool,
}

/// Writes the repository into `dir` (bare) with `git fast-import` and returns its three pushes.
fn generate(dir: &Path) -> Vec<Push> {
    git(dir, &["init", "--quiet", "--bare", "--initial-branch=main"]);
    let mut stream = Vec::with_capacity(8 << 20);
    let path = |c: usize, m: usize, f: usize| {
        let ext = if f >= MARKDOWN_FROM { "md" } else { "py" };
        format!("components/c{c:02}/module{m:02}/file{f:02}.{ext}")
    };
    let commit = |stream: &mut Vec<u8>, n: u32, message: &str, files: &mut dyn Iterator<Item = (String, String)>| {
        let time = 1_767_225_600 + n;
        write!(stream, "commit refs/heads/main\ncommitter Bench <bench@example.com> {time} +0000\n").expect("write");
        write!(stream, "data {}\n{message}\n", message.len()).expect("write");
        for (path, content) in files {
            write!(stream, "M 100644 inline {path}\ndata {}\n{content}\n", content.len()).expect("write");
        }
        stream.push(b'\n');
    };
    let everything = (0..COMPONENTS).flat_map(|c| (0..MODULES).flat_map(move |m| (0..FILES).map(move |f| (c, m, f))));
    let mut initial = everything
        .map(|(c, m, f)| (path(c, m, f), format!("# {c} {m} {f}")))
        .chain([("cloudbuild.yaml".into(), BUILD_FILE.into())]);
    commit(&mut stream, 0, "initial", &mut initial);
    let mut few = (0..3).map(|i| (path(i, i, i), "changed".to_string()));
    commit(&mut stream, 1, "three files", &mut few);
    // 3,500 of the 5,000 Markdown files: 35 components × 20 modules × 5.
    let markdown =
        || (0..35).flat_map(|c| (0..MODULES).flat_map(move |m| (MARKDOWN_FROM..FILES).map(move |f| (c, m, f))));
    commit(&mut stream, 2, "docs", &mut markdown().map(|(c, m, f)| (path(c, m, f), "docs".to_string())));
    // 3,500 Python files: 35 components × 20 modules × 5.
    let python = (0..35).flat_map(|c| (0..MODULES).flat_map(move |m| (0..5).map(move |f| (c, m, f))));
    commit(&mut stream, 3, "code", &mut python.map(|(c, m, f)| (path(c, m, f), "code".to_string())));

    let mut child = Command::new("git")
        .args(["fast-import", "--quiet"])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .spawn()
        .expect("git fast-import runs");
    child.stdin.take().expect("stdin").write_all(&stream).expect("stream written");
    assert!(child.wait().expect("fast-import ends").success(), "fast-import failed");

    let sha = |rev: &str| git(dir, &["rev-parse", rev]).trim().to_string();
    vec![
        Push { name: "3 files", before: sha("main~3"), after: sha("main~2"), changed: 3, builds: true },
        Push {
            name: "3,500 Markdown files (skipped)",
            before: sha("main~2"),
            after: sha("main~1"),
            changed: 3_500,
            builds: false,
        },
        Push { name: "3,500 Python files", before: sha("main~1"), after: sha("main"), changed: 3_500, builds: true },
    ]
}

/// A GitHub push of `before..after` to `main`, through the real parser.
fn push_event(url: &str, before: &str, after: &str) -> Event {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/webhooks/github/push__branch.json");
    let mut payload: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).expect("fixture")).expect("fixture is JSON");
    payload["ref"] = "refs/heads/main".into();
    payload["before"] = before.into();
    payload["after"] = after.into();
    payload["commits"] = serde_json::json!([]);
    payload["head_commit"]["message"] = "change".into();
    payload["repository"]["clone_url"] = url.into();
    payload["repository"]["default_branch"] = "main".into();
    let body = serde_json::to_vec(&payload).expect("JSON");
    match trigger::parse(Forge::GitHub, &[("X-GitHub-Event".into(), "push".into())], &body) {
        Ok(Incoming::Event(event)) => *event,
        other => panic!("the push did not parse: {other:?}"),
    }
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git").args(args).current_dir(dir).output().expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn run_git(git_dir: &Path, args: &[&str]) {
    let out = Command::new("git").arg("--git-dir").arg(git_dir).args(args).output().expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    std::hint::black_box(out.stdout);
}

fn timed(f: impl FnOnce()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_secs_f64() * 1000.0
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(0.0, f64::max)
}
