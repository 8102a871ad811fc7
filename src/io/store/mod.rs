//! Where builds are kept: the data directory.
//!
//! ```text
//! <data>/builds/<id>/build.json      the record (rewritten as the build progresses)
//! <data>/builds/<id>/build.lock      held by every write of the record (see `records`)
//! <data>/builds/<id>/log.txt         all steps, Cloud Build style (`Step #0 - "id": …`)
//! <data>/builds/<id>/logs/step-N.log one file per step
//! <data>/work/<id>/                  the build's checkout and scripts; removed when the build ends
//! <data>/specs/<pipeline>/…          every compiled spec, by digest and by commit
//! <data>/pipewright.db               releases, approvals, the audit log (see `db`)
//! <data>/locks/<name>.lock           advisory locks: one promotion per environment at a time
//! ```
//! Records change only through `records` (`Store::update`, `Store::put`): under the record's lock,
//! forward-only in status, written to a temporary file, synced and renamed, so a crash never leaves half
//! a record and no writer loses another's update.

pub mod db;
pub mod owner;
pub mod queue;
mod records;

pub use records::write_durably;

use std::path::{Path, PathBuf};

use crate::io::host_path::Segment;
use crate::record::Build;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot write `{path}`")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read `{path}`")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {message}")]
    Name { what: &'static str, message: String },
    #[error("no build `{0}` in the data directory")]
    UnknownBuild(String),
    #[error("`{prefix}` could be any of {matches}; give more of the id")]
    AmbiguousBuild { prefix: String, matches: String },
    #[error("cannot lock `{path}`")]
    Lock {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}` is not a build record")]
    Corrupt {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    /// A write that would move a build backwards or change how it ended (see `Status::may_become`).
    #[error(
        "build `{id}` is {status} and cannot become {wanted}: a build only moves forward, and a finished build stays as it ended"
    )]
    Backwards { id: String, status: crate::record::Status, wanted: crate::record::Status },
    #[error("a change to the record of build `{id}` names another build, `{other}`")]
    Renamed { id: String, other: String },
    #[error("a write of a record was interrupted: {0}")]
    Interrupted(String),
}

#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    pub fn new(root: impl Into<PathBuf>) -> Store {
        Store { root: root.into() }
    }

    /// `$PIPEWRIGHT_DATA_DIR`, else `$XDG_DATA_HOME/pipewright`, else `~/.local/share/pipewright`.
    pub fn default_root() -> PathBuf {
        if let Some(dir) = std::env::var_os("PIPEWRIGHT_DATA_DIR") {
            return PathBuf::from(dir);
        }
        if let Some(dir) = std::env::var_os("XDG_DATA_HOME") {
            return PathBuf::from(dir).join("pipewright");
        }
        let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
        home.join(".local/share/pipewright")
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn build_dir(&self, id: &str) -> PathBuf {
        self.root.join("builds").join(id)
    }

    pub fn work_dir(&self, id: &str) -> PathBuf {
        self.root.join("work").join(id)
    }

    pub fn work_root(&self) -> PathBuf {
        self.root.join("work")
    }

    /// Image config labels by config digest (see [`crate::io::registry::LabelCache`]).
    pub fn image_labels_dir(&self) -> PathBuf {
        self.root.join("cache").join("image-labels")
    }

    pub fn record_path(&self, id: &str) -> PathBuf {
        self.build_dir(id).join("build.json")
    }

    pub fn log_path(&self, id: &str) -> PathBuf {
        self.build_dir(id).join("log.txt")
    }

    pub fn step_log_path(&self, id: &str, step: usize) -> PathBuf {
        self.build_dir(id).join("logs").join(format!("step-{step}.log"))
    }

    /// Creates the build's directories.
    pub fn create(&self, id: &str) -> Result<(), StoreError> {
        for dir in [self.build_dir(id).join("logs"), self.work_dir(id)] {
            std::fs::create_dir_all(&dir)
                .map_err(|source| StoreError::Write { path: dir.display().to_string(), source })?;
        }
        Ok(())
    }

    pub fn load(&self, id: &str) -> Result<Build, StoreError> {
        let path = self.record_path(id);
        let text =
            std::fs::read(&path).map_err(|source| StoreError::Read { path: path.display().to_string(), source })?;
        serde_json::from_slice(&text).map_err(|source| StoreError::Corrupt { path: path.display().to_string(), source })
    }

    /// Where [`Store::save_spec`] keeps the spec with `digest` (`sha256:<hex>`; another digest names
    /// no file and is refused).
    pub fn spec_blob(&self, pipeline: &Segment, digest: &str) -> Result<PathBuf, StoreError> {
        let blob = Segment::new(&digest.replace(':', "-"))
            .map_err(|e| StoreError::Name { what: "spec digest", message: crate::error_chain(&e) })?;
        Ok(self.root.join("specs").join(pipeline.as_str()).join("blobs").join(blob.as_str()))
    }

    /// The spec a build record names (`pipeline.name`, `pipeline.specDigest`): the name is checked
    /// again, as a record is read back from disk.
    pub fn recorded_spec(&self, pipeline: &str, digest: &str) -> Result<PathBuf, StoreError> {
        let pipeline = Segment::new(pipeline)
            .map_err(|e| StoreError::Name { what: "pipeline name", message: crate::error_chain(&e) })?;
        self.spec_blob(&pipeline, digest)
    }

    /// Keeps a pipeline spec: content-addressed under `specs/<pipeline>/blobs/sha256-<hex>`, and as
    /// `specs/<pipeline>/<commit>.yaml`. Returns the commit path.
    pub fn save_spec(
        &self,
        pipeline: &Segment,
        commit: &str,
        bytes: &[u8],
        digest: &str,
    ) -> Result<PathBuf, StoreError> {
        let blob = self.spec_blob(pipeline, digest)?;
        let file = Segment::new(&format!("{commit}.yaml"))
            .map_err(|e| StoreError::Name { what: "commit", message: crate::error_chain(&e) })?;
        let named = self.root.join("specs").join(pipeline.as_str()).join(file.as_str());
        for path in [&blob, &named] {
            let write_err = |source| StoreError::Write { path: path.display().to_string(), source };
            std::fs::create_dir_all(path.parent().expect("spec paths have a parent")).map_err(write_err)?;
            // Two builds of one spec write the same names at once: each through a temporary file of its own.
            write_durably(path, bytes)?;
        }
        Ok(named)
    }

    /// The id of the build whose id is or starts with `prefix` (ids are long; people type the first
    /// eight characters).
    pub fn resolve(&self, prefix: &str) -> Result<String, StoreError> {
        let prefix = prefix.trim();
        if prefix.is_empty() || prefix.contains(['/', '\\']) || prefix.starts_with('.') {
            return Err(StoreError::UnknownBuild(prefix.to_string()));
        }
        if self.record_path(prefix).is_file() {
            return Ok(prefix.to_string());
        }
        let mut matches: Vec<String> = std::fs::read_dir(self.root.join("builds"))
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|id| id.starts_with(prefix) && self.record_path(id).is_file())
            .collect();
        matches.sort();
        match matches.len() {
            0 => Err(StoreError::UnknownBuild(prefix.to_string())),
            1 => Ok(matches.remove(0)),
            _ => Err(StoreError::AmbiguousBuild { prefix: prefix.to_string(), matches: matches.join(", ") }),
        }
    }

    /// Every build record in the data directory, newest first. A record that cannot be read is returned
    /// as its error, so a listing shows it rather than hiding it.
    pub fn list(&self) -> Vec<Result<Build, StoreError>> {
        let mut ids: Vec<String> = std::fs::read_dir(self.root.join("builds"))
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|id| self.record_path(id).is_file())
            .collect();
        ids.sort();
        let mut builds: Vec<Result<Build, StoreError>> = ids.iter().map(|id| self.load(id)).collect();
        builds.sort_by(|a, b| match (a, b) {
            (Ok(a), Ok(b)) => b.create_time.0.cmp(&a.create_time.0),
            (Err(_), Ok(_)) => std::cmp::Ordering::Less,
            (Ok(_), Err(_)) => std::cmp::Ordering::Greater,
            (Err(_), Err(_)) => std::cmp::Ordering::Equal,
        });
        builds
    }

    /// Waits for the advisory lock `name` (an exclusive `flock` on `<data>/locks/<name>.lock`) and holds
    /// it until the returned guard drops. Works across processes: the CLI and the server share it.
    pub async fn lock(&self, name: &str) -> Result<LockGuard, StoreError> {
        let path = self.root.join("locks").join(format!("{name}.lock"));
        let label = path.display().to_string();
        let locked = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
            std::fs::create_dir_all(path.parent().expect("lock paths have a parent"))?;
            let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path)?;
            file.lock()?;
            Ok(file)
        })
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))
        .and_then(|r| r);
        locked.map(LockGuard).map_err(|source| StoreError::Lock { path: label, source })
    }

    /// Ids of builds with a work directory (running, or left behind by a crash).
    pub fn work_ids(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.work_root()) else {
            return Vec::new();
        };
        entries.filter_map(Result::ok).filter_map(|e| e.file_name().into_string().ok()).collect()
    }
}

/// Holds a [`Store::lock`]; closing the file releases it.
#[derive(Debug)]
pub struct LockGuard(#[allow(dead_code)] std::fs::File);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_and_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(dir.path());
        store.create("b1").expect("create");
        let build = Build::new("b1".into(), "local".into());
        store.put_blocking(build.clone()).expect("save");
        assert_eq!(store.load("b1").expect("load"), build);
        assert_eq!(store.work_ids(), vec!["b1".to_string()]);
    }

    #[test]
    fn resolve_by_prefix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(dir.path());
        for id in ["abc123", "abd456"] {
            store.create(id).expect("create");
            store.put_blocking(Build::new(id.into(), "local".into())).expect("save");
        }
        assert_eq!(store.resolve("abc").expect("unique"), "abc123");
        assert_eq!(store.resolve("abd456").expect("exact"), "abd456");
        assert!(matches!(store.resolve("ab"), Err(StoreError::AmbiguousBuild { .. })));
        assert!(matches!(store.resolve("zz"), Err(StoreError::UnknownBuild(_))));
        assert!(matches!(store.resolve("../x"), Err(StoreError::UnknownBuild(_))));
    }

    #[tokio::test]
    async fn locks_exclude_each_other() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(dir.path());
        let first = store.lock("env-prod").await.expect("first lock");
        let second = tokio::time::timeout(std::time::Duration::from_millis(300), store.lock("env-prod")).await;
        assert!(second.is_err(), "a second holder got the lock while the first held it");
        let other = store.lock("env-dev").await.expect("another name is another lock");
        drop(first);
        drop(other);
        tokio::time::timeout(std::time::Duration::from_secs(5), store.lock("env-prod"))
            .await
            .expect("the lock is free once dropped")
            .expect("lock");
    }
}
