//! pipewright's own image: the repository's `Dockerfile` builds from the local base images
//! (`steps/rust`, `steps/debian-git`; nothing can be pulled here), and the image runs `pipewright
//! version`, `pipewright validate` on the example, and `git`.
//!
//! A container cannot download crates here (docs/SPEC.md §15), so the build context is the one `docker
//! build .` would get (the repository through its `.dockerignore`) plus the crates of `Cargo.lock`,
//! vendored on the host, and a `.cargo/config.toml` that points cargo at them. The repository itself
//! is not written to. The legacy builder is used so that every image the build makes is named in
//! its output and can be removed again: the test leaves no images or containers behind, also when
//! it fails.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use pipewright::io::image::{DockerIgnore, FileKind};

use crate::support::docker_ready;

const BUILD_IMAGE: &str = "local/rust:1.95";
const RUNTIME_IMAGE: &str = "local/debian-git:bookworm";
/// The runtime base is about 170 MB (git pulls in perl), the stripped binary about 30 MB.
const MAX_IMAGE_BYTES: u64 = 250_000_000;

/// True when the engine and both base images are there; a missing base fails in CI mode.
fn bases_ready() -> bool {
    if !docker_ready() {
        return false;
    }
    let missing: Vec<&str> =
        [BUILD_IMAGE, RUNTIME_IMAGE].into_iter().filter(|image| image_id(image).is_none()).collect();
    if missing.is_empty() {
        return true;
    }
    let why = format!("`{}` missing (run `.ci/setup`)", missing.join("`, `"));
    if std::env::var("PIPEWRIGHT_REQUIRE_DOCKER").is_ok_and(|v| v == "1") {
        panic!("the Dockerfile test needs its base images: {why}");
    }
    eprintln!("SKIPPED: the Dockerfile test needs its base images: {why}");
    false
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker").args(args).output().expect("docker runs")
}

fn image_id(image: &str) -> Option<String> {
    let out = docker(&["image", "inspect", "-f", "{{.Id}}", image]);
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The image under test and every intermediate image its build made, removed on drop.
struct BuiltImage {
    tag: String,
    /// `docker build`'s output, which names each image it commits (` ---> 0123456789ab`).
    log: PathBuf,
    /// The bases' IDs: the build prints them too, and they must stay.
    keep: Vec<String>,
}

impl BuiltImage {
    /// Images the build made (from its log), newest first.
    fn made(&self) -> Vec<String> {
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        let mut ids: Vec<String> = log
            .lines()
            .filter_map(|line| line.trim().strip_prefix("---> "))
            .filter(|id| id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit()))
            .filter(|id| !self.keep.iter().any(|keep| keep.trim_start_matches("sha256:").starts_with(id)))
            .map(str::to_string)
            .collect();
        ids.dedup();
        ids.reverse();
        ids
    }

    /// Removes the tag and the build's images (children first, never with `-f`); returns those left.
    fn remove(&self) -> Vec<String> {
        let _ = docker(&["rmi", &self.tag]);
        let made = self.made();
        for id in &made {
            let _ = docker(&["rmi", id]);
        }
        made.into_iter().filter(|id| image_id(id).is_some()).collect()
    }
}

impl Drop for BuiltImage {
    fn drop(&mut self) {
        self.remove();
    }
}

/// The build context: the repository as `docker build` sees it through `.dockerignore`, plus the
/// vendored crates and the cargo config that uses them.
fn make_context(repo: &Path, context: &Path) {
    let collected = pipewright::io::image::collect(repo, "Dockerfile").expect("the repository is a build context");
    for file in &collected.files {
        let to = context.join(&file.path);
        match &file.kind {
            FileKind::Dir => fs::create_dir_all(&to).expect("mkdir"),
            FileKind::File => {
                fs::copy(repo.join(&file.path), &to).unwrap_or_else(|e| panic!("copy {}: {e}", file.path));
            }
            FileKind::Symlink(target) => std::os::unix::fs::symlink(target, &to).expect("symlink"),
        }
    }
    assert!(
        !collected.files.iter().any(|f| f.path == "target" || f.path.starts_with("target/") || f.path == ".git"),
        "the context carries build output or git data"
    );

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let out = Command::new(cargo)
        .args(["vendor", "--locked", "--versioned-dirs", "--quiet"])
        .arg(context.join("vendor"))
        .current_dir(repo)
        .stdout(Stdio::null())
        .output()
        .expect("cargo vendor runs");
    assert!(out.status.success(), "cargo vendor failed:\n{}", text(&out.stderr));
    fs::create_dir_all(context.join(".cargo")).expect("mkdir .cargo");
    fs::write(
        context.join(".cargo/config.toml"),
        "[source.crates-io]\nreplace-with = \"vendored\"\n\n[source.vendored]\ndirectory = \"vendor\"\n",
    )
    .expect("write cargo config");
}

#[test]
fn the_dockerfile_builds_from_local_bases_and_the_image_runs() {
    // `docker build .` must not send build output (gigabytes) or git's data.
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ignore = DockerIgnore::parse(&fs::read_to_string(repo.join(".dockerignore")).expect(".dockerignore"))
        .expect("a valid .dockerignore");
    for path in ["target", "target/release/pipewright", ".git", ".git/HEAD"] {
        assert!(ignore.excludes(path), ".dockerignore lets `{path}` through");
    }
    for path in ["Cargo.toml", "Cargo.lock", "src/main.rs", "Dockerfile"] {
        assert!(!ignore.excludes(path), ".dockerignore leaves out `{path}`");
    }
    if !bases_ready() {
        return;
    }
    let started = Instant::now();
    let work = tempfile::tempdir().expect("tempdir");
    let context = work.path().join("context");
    make_context(repo, &context);
    let vendored = started.elapsed();

    let tag = format!("pipewright-selftest:{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let keep = [BUILD_IMAGE, RUNTIME_IMAGE].iter().map(|image| image_id(image).expect("base image")).collect();
    let image = BuiltImage { tag: tag.clone(), log: work.path().join("build.log"), keep };
    let log = fs::File::create(&image.log).expect("build log");
    // --no-cache: every image the build commits is this build's own, so removing them cannot touch
    // a cache entry another build is using. The release build takes minutes of both cores; a low CPU
    // weight lets the containers of the tests running beside it go first.
    let status = Command::new("docker")
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "--no-cache", "--force-rm", "--cpu-shares", "256", "--build-arg"])
        .arg(format!("BUILD_IMAGE={BUILD_IMAGE}"))
        .arg("--build-arg")
        .arg(format!("RUNTIME_IMAGE={RUNTIME_IMAGE}"))
        .args(["-t", &tag])
        .arg(&context)
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .status()
        .expect("docker build runs");
    let built = started.elapsed() - vendored;
    if !status.success() {
        let log = fs::read_to_string(&image.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(60).collect::<Vec<_>>().into_iter().rev().collect();
        panic!("docker build failed ({status}); the end of its output:\n{}", tail.join("\n"));
    }

    let out = docker(&["run", "--rm", &tag, "version"]);
    assert!(out.status.success(), "version: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), format!("pipewright {}", env!("CARGO_PKG_VERSION")));

    // `validate` of the example says exactly what the host's binary says.
    let example = repo.join("examples/breast-cancer");
    let mount = format!("{}:/src:ro", example.display());
    let out =
        docker(&["run", "--rm", "-e", "NO_COLOR=1", "-v", &mount, "-w", "/src", &tag, "validate", "pipewright.yaml"]);
    let host = crate::support::pipewright().current_dir(&example).args(["validate", "pipewright.yaml"]).output();
    let host = host.expect("pipewright runs");
    assert!(out.status.success(), "validate in the image:\n{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stderr).contains("pipewright.yaml: valid ("), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), text(&host.stderr), "the image and the host disagree");

    let out = docker(&["run", "--rm", "--entrypoint", "git", &tag, "--version"]);
    assert!(out.status.success(), "git in the image: {}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("git version "), "{}", text(&out.stdout));

    let size: u64 = text(&docker(&["image", "inspect", "-f", "{{.Size}}", &tag]).stdout).trim().parse().expect("size");
    eprintln!(
        "dockerfile: context with vendored crates {:.1}s, docker build {:.1}s, image {} MB",
        vendored.as_secs_f64(),
        built.as_secs_f64(),
        size / 1_000_000
    );
    assert!(size < MAX_IMAGE_BYTES, "the image is {size} bytes, over {MAX_IMAGE_BYTES}");

    let left = image.remove();
    assert!(left.is_empty(), "images of the build still there: {left:?}");
    assert!(image_id(&tag).is_none(), "{tag} still there");
}
