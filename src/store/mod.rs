//! Where builds are kept: the data directory.
//!
//! ```text
//! <data>/builds/<id>/build.json      the record (rewritten as the build progresses)
//! <data>/builds/<id>/log.txt         all steps, Cloud Build style (`Step #0 - "id": …`)
//! <data>/builds/<id>/logs/step-N.log one file per step
//! <data>/work/<id>/                  the build's checkout and scripts; removed when the build ends
//! ```
//! Records are written to a temporary file and renamed, so a crash never leaves half a record.

pub mod db;

use std::path::{Path, PathBuf};

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
    #[error("`{path}` is not a build record")]
    Corrupt {
        path: String,
        #[source]
        source: serde_json::Error,
    },
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

    /// Atomically replaces the build's record.
    pub fn save(&self, build: &Build) -> Result<(), StoreError> {
        let path = self.record_path(&build.id);
        let tmp = path.with_extension("json.tmp");
        let write_err = |source| StoreError::Write { path: path.display().to_string(), source };
        let json = serde_json::to_vec_pretty(build).expect("a build record always serialises");
        std::fs::write(&tmp, json).map_err(write_err)?;
        std::fs::rename(&tmp, &path).map_err(write_err)
    }

    pub fn load(&self, id: &str) -> Result<Build, StoreError> {
        let path = self.record_path(id);
        let text =
            std::fs::read(&path).map_err(|source| StoreError::Read { path: path.display().to_string(), source })?;
        serde_json::from_slice(&text).map_err(|source| StoreError::Corrupt { path: path.display().to_string(), source })
    }

    /// Keeps a pipeline spec: content-addressed under `specs/<pipeline>/blobs/sha256-<hex>`, and as
    /// `specs/<pipeline>/<commit>.yaml`. Returns the commit path.
    pub fn save_spec(&self, pipeline: &str, commit: &str, bytes: &[u8], digest: &str) -> Result<PathBuf, StoreError> {
        let dir = self.root.join("specs").join(pipeline);
        let blob = dir.join("blobs").join(digest.replace(':', "-"));
        let named = dir.join(format!("{commit}.yaml"));
        for (path, what) in [(&blob, "blob"), (&named, "spec")] {
            let write_err = |source| StoreError::Write { path: path.display().to_string(), source };
            std::fs::create_dir_all(path.parent().expect("spec paths have a parent")).map_err(write_err)?;
            let tmp = path.with_extension(format!("{what}.tmp"));
            std::fs::write(&tmp, bytes).map_err(write_err)?;
            std::fs::rename(&tmp, path).map_err(write_err)?;
        }
        Ok(named)
    }

    /// Ids of builds with a work directory (running, or left behind by a crash).
    pub fn work_ids(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.work_root()) else {
            return Vec::new();
        };
        entries.filter_map(Result::ok).filter_map(|e| e.file_name().into_string().ok()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_and_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(dir.path());
        store.create("b1").expect("create");
        let build = Build::new("b1".into(), "local".into());
        store.save(&build).expect("save");
        assert_eq!(store.load("b1").expect("load"), build);
        assert_eq!(store.work_ids(), vec!["b1".to_string()]);
        assert!(!store.record_path("b1").with_extension("json.tmp").exists());
    }
}
