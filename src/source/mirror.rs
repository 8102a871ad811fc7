//! Interim repository mirror over the git CLI, for the server; the gix-based mirror replaces it.
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::trigger::{ChangedFiles, DiffBase, Rev};

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct MirrorError(String);

pub struct Mirror {
    path: PathBuf,
    url: String,
}

impl Mirror {
    pub fn open(root: &Path, url: &str) -> Result<Mirror, MirrorError> {
        let slug: String = url.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
        let path = root.join(format!("{slug}.git"));
        if !path.exists() {
            std::fs::create_dir_all(&path).map_err(|e| MirrorError(e.to_string()))?;
            git(&path, &["init", "-q", "--bare"])?;
        }
        Ok(Mirror { path, url: url.to_string() })
    }
    /// An existing repository (a CI job's checkout) used as it is: [`Mirror::fetch`] is not called on it.
    pub fn existing(path: &Path) -> Mirror {
        Mirror { path: path.to_path_buf(), url: String::new() }
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn fetch(&self) -> Result<(), MirrorError> {
        git(
            &self.path,
            &["fetch", "-q", "--prune", "--force", &self.url, "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"],
        )?;
        Ok(())
    }
    pub fn resolve(&self, rev: &str) -> Result<Option<String>, MirrorError> {
        Ok(git(&self.path, &["rev-parse", "--verify", "-q", &format!("{rev}^{{commit}}")])
            .ok()
            .map(|s| s.trim().to_string()))
    }
    pub fn read_file(&self, commit: &str, path: &str) -> Result<Option<Vec<u8>>, MirrorError> {
        Ok(git(&self.path, &["show", &format!("{commit}:{path}")]).ok().map(String::into_bytes))
    }
    pub fn changed_files(&self, base: &DiffBase) -> ChangedFiles {
        let range = match base {
            DiffBase::Range { from, to } => format!("{from}...{to}"),
            DiffBase::MergeBase { base, head } => {
                let b = match base {
                    Rev::Commit(c) => c.clone(),
                    Rev::Branch(b) => b.clone(),
                    Rev::DefaultBranch => "HEAD".into(),
                };
                format!("{b}...{head}")
            }
            DiffBase::EveryFile { commit } => {
                return match git(&self.path, &["ls-tree", "-r", "--name-only", commit]) {
                    Ok(out) => ChangedFiles::Files(out.lines().map(str::to_string).collect()),
                    Err(e) => ChangedFiles::Unknown { reason: e.0 },
                };
            }
            DiffBase::None => return ChangedFiles::Files(Vec::new()),
        };
        match git(&self.path, &["diff", "--name-only", &range]) {
            Ok(out) => ChangedFiles::Files(out.lines().map(str::to_string).collect()),
            Err(e) => ChangedFiles::Unknown { reason: e.0 },
        }
    }
}

fn git(dir: &Path, args: &[&str]) -> Result<String, MirrorError> {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().map_err(|e| MirrorError(e.to_string()))?;
    if !out.status.success() {
        return Err(MirrorError(String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
