//! The checkout on the host, and the one rule for paths pipewright itself reads or mounts from it:
//! they stay inside. A build file is untrusted input; `../../etc/passwd`, `/root/.ssh` or a symlink
//! committed to point outside must never reach the host's filesystem.

use std::path::{Component, Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("`{0}` is an absolute path; paths in the build file are relative to the repository")]
    Absolute(String),
    #[error("`{0}` leaves the repository through `..`")]
    Escapes(String),
    #[error("`{path}` leads outside the repository through the symlink `{link}`")]
    Symlink { path: String, link: String },
    #[error("`{0}` does not exist in the checkout")]
    NotFound(String),
}

#[derive(Clone, Debug)]
pub struct Workspace {
    root: PathBuf,
}

impl Workspace {
    /// `root` must exist; it is canonicalised so that symlink checks compare like with like.
    pub fn new(root: &Path) -> std::io::Result<Workspace> {
        Ok(Workspace { root: root.canonicalize()? })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Resolves a repository-relative path to a host path that is guaranteed to be inside the checkout
    /// (the path need not exist; whatever part of it exists may not leave through a symlink).
    pub fn resolve(&self, rel: &str) -> Result<PathBuf, PathError> {
        let path = Path::new(rel);
        if path.is_absolute() || rel.starts_with('/') {
            return Err(PathError::Absolute(rel.to_string()));
        }
        let mut depth: usize = 0;
        let mut clean = PathBuf::new();
        for component in path.components() {
            match component {
                Component::Normal(part) => {
                    depth += 1;
                    clean.push(part);
                }
                Component::CurDir => {}
                Component::ParentDir => {
                    if depth == 0 {
                        return Err(PathError::Escapes(rel.to_string()));
                    }
                    depth -= 1;
                    clean.pop();
                }
                Component::RootDir | Component::Prefix(_) => return Err(PathError::Absolute(rel.to_string())),
            }
        }
        // Walk the existing prefix one component at a time so that a symlink anywhere on the way is seen.
        let mut current = self.root.clone();
        for part in clean.components() {
            current.push(part);
            let Ok(meta) = current.symlink_metadata() else {
                break;
            };
            if meta.file_type().is_symlink() {
                let target = current.canonicalize().ok();
                if !target.as_ref().is_some_and(|t| t.starts_with(&self.root)) {
                    return Err(PathError::Symlink {
                        path: rel.to_string(),
                        link: current.strip_prefix(&self.root).unwrap_or(&current).display().to_string(),
                    });
                }
            }
        }
        Ok(self.root.join(clean))
    }

    /// Like [`Workspace::resolve`], for a path that must exist.
    pub fn existing(&self, rel: &str) -> Result<PathBuf, PathError> {
        let path = self.resolve(rel)?;
        if path.exists() { Ok(path) } else { Err(PathError::NotFound(rel.to_string())) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> (tempfile::TempDir, Workspace) {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("repo");
        std::fs::create_dir_all(root.join("a/b")).expect("mkdir");
        std::fs::write(root.join("a/b/file"), "x").expect("write");
        std::fs::write(dir.path().join("secret"), "s").expect("write");
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("out")).expect("symlink");
        std::os::unix::fs::symlink(root.join("a/b"), root.join("in")).expect("symlink");
        let ws = Workspace::new(&root).expect("workspace");
        (dir, ws)
    }

    #[test]
    fn inside_paths_resolve() {
        let (_dir, ws) = fixture();
        assert_eq!(ws.resolve("a/b/file").expect("ok"), ws.root().join("a/b/file"));
        assert_eq!(ws.resolve("./a/../a/b").expect("ok"), ws.root().join("a/b"));
        assert_eq!(ws.resolve("new/file").expect("ok"), ws.root().join("new/file"));
        assert_eq!(ws.resolve("in/file").expect("ok"), ws.root().join("in/file"));
    }

    #[test]
    fn escapes_are_refused() {
        let (_dir, ws) = fixture();
        assert_eq!(ws.resolve("/etc/passwd"), Err(PathError::Absolute("/etc/passwd".into())));
        assert_eq!(ws.resolve("../secret"), Err(PathError::Escapes("../secret".into())));
        assert_eq!(ws.resolve("a/../../secret"), Err(PathError::Escapes("a/../../secret".into())));
        assert!(matches!(ws.resolve("out"), Err(PathError::Symlink { .. })));
        assert!(matches!(ws.resolve("out/x"), Err(PathError::Symlink { .. })));
        assert_eq!(ws.existing("missing"), Err(PathError::NotFound("missing".into())));
    }
}
