//! The server's mirror of a repository: a bare repository kept up to date with `git fetch`, where an
//! event's changed files are computed (docs/SPEC.md §10) and build files are read at a commit.
//!
//! It drives the `git` command rather than gix (which [`super::checkout`] uses), deliberately: the runtime
//! image ships git, and git's fetch is the reference client for every transport, credential helper, proxy
//! and protocol quirk a forge has; `merge-base` and `diff-tree` prune unchanged subtrees and use the
//! commit-graph that each fetch writes. A decision costs two short processes (`merge-base`, `diff-tree`),
//! a few milliseconds on a 50,000-file repository (`cargo bench --bench path_filter`, budget 50 ms).
//!
//! Only plumbing commands read the repository (`merge-base`, `diff-tree`, `ls-tree`, `cat-file`), so no
//! user or system setting (`diff.renames`, colours, external diff drivers) changes what they print. Paths
//! come NUL-separated (`-z`), byte for byte whatever they contain (spaces, quotes, newlines, unicode), and
//! rename detection is off: a moved file counts as changed at its old path and at its new one, since a
//! filter may match either.
//!
//! The changed files are never guessed. When they cannot be computed exactly (the commit before a push
//! was never fetched, as after a force push that replaced history the mirror never saw; no common
//! history; a branch the mirror does not have) they are [`ChangedFiles::Unknown`] with the reason, and
//! the decision builds and says why.
//!
//! Blocking: every method runs git and waits for it; async callers use `spawn_blocking`. Fetches of one
//! mirror are serialised within the process, so concurrent callers never race on git's ref locks.
//! Credentials in a repository URL never appear in the mirror's directory name or in an error.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

use crate::trigger::{ChangedFiles, DiffBase, Rev};

#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("cannot create the mirror of `{repo}` at `{path}`")]
    Create {
        repo: String,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot run `git {operation}` in the mirror of `{repo}` (is git installed?)")]
    Spawn {
        operation: &'static str,
        repo: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`git {operation}` failed in the mirror of `{repo}`: {stderr}")]
    Git { operation: &'static str, repo: String, stderr: String },
    #[error("`git {operation}` in the mirror of `{repo}` printed something unexpected: {output}")]
    Unexpected { operation: &'static str, repo: String, output: String },
}

pub struct Mirror {
    path: PathBuf,
    url: String,
    /// The URL without credentials: what errors and directory names show.
    label: String,
}

impl Mirror {
    /// The mirror of `url` under `root`, created empty (bare) when it does not exist yet; [`Mirror::fetch`]
    /// fills it. The directory is named after the URL without its credentials.
    pub fn open(root: &Path, url: &str) -> Result<Mirror, MirrorError> {
        let label = redact(url);
        let slug: String = label.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
        let mirror = Mirror { path: root.join(format!("{slug}.git")), url: url.to_string(), label };
        if !mirror.path.join("HEAD").is_file() {
            mirror.create(root, &slug)?;
        }
        Ok(mirror)
    }
    /// The mirror of `url` under `root`, fetched from the forge, unless `having` is a commit it holds
    /// already (a retry of a commit the mirror has seen). The one way the server gets a mirror.
    pub fn fetched(root: &Path, url: &str, having: Option<&str>) -> Result<Mirror, MirrorError> {
        let mirror = Mirror::open(root, url)?;
        let held = match having {
            Some(commit) => mirror.resolve(commit)?.is_some(),
            None => false,
        };
        if !held {
            mirror.fetch()?;
        }
        Ok(mirror)
    }

    /// An existing repository (a CI job's checkout) used as it is: [`Mirror::fetch`] is not called on it.
    /// `path` may be any directory of a work tree or a bare repository; its git directory is what is read.
    pub fn existing(path: &Path) -> Result<Mirror, MirrorError> {
        let label = path.display().to_string();
        let probe = Mirror { path: path.to_path_buf(), url: label.clone(), label: label.clone() };
        let mut command = Command::new("git");
        command.arg("-C").arg(path).args(["rev-parse", "--absolute-git-dir"]);
        let output = probe.output(command, "rev-parse", None)?;
        if !output.status.success() {
            return Err(probe.failed("rev-parse", &output));
        }
        let git_dir = String::from_utf8_lossy(&output.stdout).trim().to_string();
        Ok(Mirror { path: PathBuf::from(git_dir), url: label.clone(), label })
    }

    /// Initialises the bare repository beside its final place and renames it there, so a crash or a
    /// concurrent opener never leaves a half-made mirror behind.
    fn create(&self, root: &Path, slug: &str) -> Result<(), MirrorError> {
        let io_error =
            |source| MirrorError::Create { repo: self.label.clone(), path: self.path.display().to_string(), source };
        std::fs::create_dir_all(root).map_err(io_error)?;
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let staging = root.join(format!(".{slug}.{}.{nanos}.new", std::process::id()));
        let mut init = Command::new("git");
        init.args(["init", "--quiet", "--bare"]).arg(&staging);
        let made = self.output(init, "init", None).and_then(|output| match output.status.success() {
            true => Ok(()),
            false => Err(self.failed("init", &output)),
        });
        let placed = made.and_then(|()| {
            if self.path.exists() && !self.path.join("HEAD").is_file() {
                // Left by a crash of an older version that created the directory before initialising it.
                std::fs::remove_dir_all(&self.path).map_err(io_error)?;
            }
            match std::fs::rename(&staging, &self.path) {
                Ok(()) => Ok(()),
                // Another opener finished first; its mirror is as good as ours.
                Err(_) if self.path.join("HEAD").is_file() => Ok(()),
                Err(source) => Err(io_error(source)),
            }
        });
        let _ = std::fs::remove_dir_all(&staging);
        placed
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fetches every branch, tag and pull request head (pruning what the remote deleted, accepting rewritten
    /// refs), and points the mirror's `HEAD` at the remote's default branch, which is what
    /// [`Rev::DefaultBranch`] means. Commits a force push replaced stay in the mirror until git's garbage
    /// collection.
    pub fn fetch(&self) -> Result<(), MirrorError> {
        let lock = fetch_lock(&self.path);
        let _held = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.git(
            "fetch",
            &[
                "-c",
                "fetch.writeCommitGraph=true",
                // A stalled connection fails after two minutes instead of holding a thread forever.
                "-c",
                "http.lowSpeedLimit=1",
                "-c",
                "http.lowSpeedTime=120",
                "fetch",
                "--quiet",
                "--prune",
                "--force",
                "--no-write-fetch-head",
                "--end-of-options",
                &self.url,
                "+refs/heads/*:refs/heads/*",
                "+refs/tags/*:refs/tags/*",
                // Pull request heads, which for a fork's pull request are the only refs holding its
                // commits (GitHub and Gitea `refs/pull/<n>/head`, GitLab `refs/merge-requests/<n>/head`).
                "+refs/pull/*/head:refs/pull/*/head",
                "+refs/merge-requests/*/head:refs/merge-requests/*/head",
            ],
        )?;
        let remote = self.git("ls-remote", &["ls-remote", "--symref", "--end-of-options", &self.url, "HEAD"])?;
        let default = String::from_utf8_lossy(&remote)
            .lines()
            .find_map(|line| line.strip_prefix("ref: ")?.strip_suffix("\tHEAD").map(str::to_string));
        // A remote without a symbolic HEAD (an empty repository, some dumb servers) leaves HEAD as it was.
        if let Some(default) = default.filter(|r| r.starts_with("refs/heads/")) {
            self.git("symbolic-ref", &["symbolic-ref", "HEAD", &default])?;
        }
        Ok(())
    }

    /// The commit `rev` (a SHA, branch, tag or `HEAD`) names in the mirror, or `None` when it names none.
    pub fn resolve(&self, rev: &str) -> Result<Option<String>, MirrorError> {
        if rev.is_empty() || rev.starts_with('-') {
            // No revision starts with `-`; git would read it as an option.
            return Ok(None);
        }
        let spec = format!("{rev}^{{commit}}");
        let output = self.run("rev-parse", &["rev-parse", "--verify", "--quiet", &spec], None)?;
        match output.status.code() {
            Some(0) => Ok(Some(String::from_utf8_lossy(&output.stdout).trim().to_string())),
            Some(1) => Ok(None),
            _ => Err(self.failed("rev-parse", &output)),
        }
    }

    /// Whether `commit` (a commit id) is `branch`'s tip or one of its ancestors in the mirror. `false`
    /// too when the branch does not exist.
    pub fn on_branch(&self, commit: &str, branch: &str) -> Result<bool, MirrorError> {
        if commit.is_empty() || commit.starts_with('-') || branch.is_empty() {
            return Ok(false);
        }
        let tip = format!("refs/heads/{branch}");
        let output =
            self.run("merge-base", &["merge-base", "--is-ancestor", "--end-of-options", commit, &tip], None)?;
        match output.status.code() {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            // A missing branch or commit is "not on it"; anything else is a broken mirror.
            _ if self.resolve(&tip)?.is_none() || self.resolve(commit)?.is_none() => Ok(false),
            _ => Err(self.failed("merge-base", &output)),
        }
    }

    /// The branches of the repository (`refs/heads/*` in the mirror, fetched from its own URL, never a
    /// pull request's ref) whose history holds `commit`, by name.
    pub fn branches_containing(&self, commit: &str) -> Result<Vec<String>, MirrorError> {
        if commit.is_empty() || commit.starts_with('-') || self.resolve(commit)?.is_none() {
            return Ok(Vec::new());
        }
        let output = self.git(
            "for-each-ref",
            &["for-each-ref", "--format=%(refname:lstrip=2)", &format!("--contains={commit}"), "refs/heads/"],
        )?;
        Ok(String::from_utf8_lossy(&output).lines().map(str::to_string).collect())
    }

    /// The bytes of the file `path` at `commit`, or `None` when the commit or the file does not exist (or
    /// `path` is a directory or a submodule).
    pub fn read_file(&self, commit: &str, path: &str) -> Result<Option<Vec<u8>>, MirrorError> {
        if path.contains('\n') || commit.contains('\n') {
            return Ok(None);
        }
        let request = format!("{commit}:{path}\n");
        let output = self.run("cat-file", &["cat-file", "--batch"], Some(request.as_bytes()))?;
        if !output.status.success() {
            return Err(self.failed("cat-file", &output));
        }
        let unexpected = || MirrorError::Unexpected {
            operation: "cat-file",
            repo: self.label.clone(),
            output: summary(&output.stdout),
        };
        let Some(newline) = output.stdout.iter().position(|&b| b == b'\n') else { return Err(unexpected()) };
        let header = String::from_utf8_lossy(&output.stdout[..newline]);
        // `<oid> <type> <size>`, or `<name> missing` / `<name> ambiguous`.
        let fields: Vec<&str> = header.rsplitn(3, ' ').collect();
        match fields.as_slice() {
            [size, "blob", _oid] => {
                let size: usize = size.parse().map_err(|_| unexpected())?;
                let body = output.stdout.get(newline + 1..newline + 1 + size).ok_or_else(unexpected)?;
                Ok(Some(body.to_vec()))
            }
            [_, _, _] | ["missing", _] | ["ambiguous", _] => Ok(None),
            _ => Err(unexpected()),
        }
    }

    /// The files changed between the commits `base` names, exactly; [`ChangedFiles::Unknown`] with the
    /// reason when they cannot be computed. See [`DiffBase`] for what each case diffs.
    pub fn changed_files(&self, base: &DiffBase) -> ChangedFiles {
        match self.try_changed_files(base) {
            Ok(changed) => changed,
            Err(e) => ChangedFiles::Unknown { reason: crate::error_chain(&e) },
        }
    }

    fn try_changed_files(&self, base: &DiffBase) -> Result<ChangedFiles, MirrorError> {
        let (from, head) = match base {
            DiffBase::None => return Ok(ChangedFiles::Files(Vec::new())),
            DiffBase::EveryFile { commit } => return self.every_file(commit),
            // `merge-base(from, to)` is `from` itself when `from` is an ancestor, the fork point after a
            // force push the forge did not flag: one command for both.
            DiffBase::Range { from, to } => (Side::Before(from), to),
            DiffBase::MergeBase { base: Rev::Commit(sha), head } => (Side::Base(sha), head),
            DiffBase::MergeBase { base: Rev::Branch(name), head } => (Side::Branch(name), head),
            DiffBase::MergeBase { base: Rev::DefaultBranch, head } => (Side::DefaultBranch, head),
        };
        let from_arg = from.arg();
        for arg in [from_arg.as_str(), head.as_str()] {
            if arg.is_empty() || arg.starts_with('-') {
                return Ok(unknown(format!("{arg:?} is not a commit")));
            }
        }
        let output = self.run("merge-base", &["merge-base", "--end-of-options", &from_arg, head], None)?;
        let merge_base = match output.status.code() {
            Some(0) => String::from_utf8_lossy(&output.stdout).trim().to_string(),
            Some(1) => {
                return Ok(unknown(format!("{} and commit {} share no history", from.describe(), short(head))));
            }
            // One side is missing: say which.
            _ => {
                if self.resolve(&from_arg)?.is_none() {
                    return Ok(unknown(format!("{} is not in the mirror", from.describe())));
                }
                if self.resolve(head)?.is_none() {
                    return Ok(unknown(format!("commit {} is not in the mirror", short(head))));
                }
                return Err(self.failed("merge-base", &output));
            }
        };
        let files = self.git(
            "diff-tree",
            &[
                "diff-tree",
                "-r",
                "-z",
                "--name-only",
                "--no-renames",
                "--no-commit-id",
                "--end-of-options",
                &merge_base,
                head,
            ],
        )?;
        Ok(ChangedFiles::Files(paths(&files)))
    }

    fn every_file(&self, commit: &str) -> Result<ChangedFiles, MirrorError> {
        if commit.is_empty() || commit.starts_with('-') || self.resolve(commit)?.is_none() {
            return Ok(unknown(format!("commit {} is not in the mirror", short(commit))));
        }
        let files =
            self.git("ls-tree", &["ls-tree", "-r", "-z", "--name-only", "--full-tree", "--end-of-options", commit])?;
        Ok(ChangedFiles::Files(paths(&files)))
    }

    /// Runs `git args` in the mirror and returns its stdout; a non-zero exit is an error.
    fn git(&self, operation: &'static str, args: &[&str]) -> Result<Vec<u8>, MirrorError> {
        let output = self.run(operation, args, None)?;
        if !output.status.success() {
            return Err(self.failed(operation, &output));
        }
        Ok(output.stdout)
    }

    /// Runs `git args` in the mirror, with `stdin` as its input, whatever its exit status.
    fn run(&self, operation: &'static str, args: &[&str], stdin: Option<&[u8]>) -> Result<Output, MirrorError> {
        let mut command = Command::new("git");
        command.arg("--git-dir").arg(&self.path).args(["-c", "core.quotePath=false"]).args(args);
        self.output(command, operation, stdin)
    }

    fn output(
        &self,
        mut command: Command,
        operation: &'static str,
        stdin: Option<&[u8]>,
    ) -> Result<Output, MirrorError> {
        // Never ask for credentials on a terminal, and never let the caller's environment point git at
        // another repository.
        command.env("GIT_TERMINAL_PROMPT", "0").env("LC_ALL", "C");
        for name in
            ["GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES"]
        {
            command.env_remove(name);
        }
        command.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let spawn_error = |source| MirrorError::Spawn { operation, repo: self.label.clone(), source };
        let mut child = command.spawn().map_err(spawn_error)?;
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().expect("stdin was piped");
            // A write error means git exited early; its status and stderr say why.
            let _ = pipe.write_all(input);
        }
        child.wait_with_output().map_err(spawn_error)
    }

    fn failed(&self, operation: &'static str, output: &Output) -> MirrorError {
        let stderr = String::from_utf8_lossy(&output.stderr).trim().replace(&self.url, &self.label);
        let stderr = if stderr.is_empty() { format!("exit status {}", output.status) } else { stderr };
        MirrorError::Git { operation, repo: self.label.clone(), stderr }
    }
}

/// The older side of a diff, as the event named it: what an unknown reason calls it.
enum Side<'a> {
    Before(&'a str),
    Base(&'a str),
    Branch(&'a str),
    DefaultBranch,
}

impl Side<'_> {
    fn arg(&self) -> String {
        match self {
            Side::Before(sha) | Side::Base(sha) => sha.to_string(),
            Side::Branch(name) => format!("refs/heads/{name}"),
            Side::DefaultBranch => "HEAD".to_string(),
        }
    }

    fn describe(&self) -> String {
        match self {
            Side::Before(sha) => format!("commit {} before the push", short(sha)),
            Side::Base(sha) => format!("commit {}", short(sha)),
            Side::Branch(name) => format!("branch {name}"),
            Side::DefaultBranch => "the default branch".to_string(),
        }
    }
}

fn unknown(reason: String) -> ChangedFiles {
    ChangedFiles::Unknown { reason }
}

/// NUL-separated paths as git printed them. Git stores path bytes; one that is not UTF-8 is kept with
/// replacement characters (globs are UTF-8, so it can only match a `*`).
fn paths(output: &[u8]) -> Vec<String> {
    output.split(|&b| b == 0).filter(|p| !p.is_empty()).map(|p| String::from_utf8_lossy(p).into_owned()).collect()
}

fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

/// The first line of some output, for an error.
fn summary(output: &[u8]) -> String {
    let text = String::from_utf8_lossy(output);
    text.lines().next().unwrap_or_default().chars().take(200).collect()
}

/// `url` without the `user:password@` of its authority (`https://x:tok@host/a.git` → `https://host/a.git`):
/// how a repository URL is shown in messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// The lock serialising fetches into the mirror at `path` within this process.
fn fetch_lock(path: &Path) -> Arc<Mutex<()>> {
    static LOCKS: OnceLock<Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>> = OnceLock::new();
    let mut locks = LOCKS.get_or_init(Default::default).lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    locks.entry(path.to_path_buf()).or_default().clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_never_shown() {
        let cases = [
            ("https://x-access-token:ghs_secret@github.com/acme/churn.git", "https://github.com/acme/churn.git"),
            ("https://oauth2@gitlab.example.com/a/b.git", "https://gitlab.example.com/a/b.git"),
            ("https://github.com/acme/churn.git", "https://github.com/acme/churn.git"),
            ("https://host/path/with@sign.git", "https://host/path/with@sign.git"),
            ("git@github.com:acme/churn.git", "git@github.com:acme/churn.git"),
            ("/srv/git/churn", "/srv/git/churn"),
        ];
        for (url, expected) in cases {
            assert_eq!(redact(url), expected, "{url}");
        }
    }

    #[test]
    fn nul_separated_paths() {
        assert_eq!(
            paths(b"a b.txt\0d\xc3\xa9j\xc3\xa0/vu.md\0line\nbreak\0"),
            ["a b.txt", "déjà/vu.md", "line\nbreak"]
        );
        assert!(paths(b"").is_empty());
    }
}
