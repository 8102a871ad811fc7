//! Host paths built from input: the one place that decides whether a name or a path from a build file,
//! a pipeline spec, a task's output or a URL may become a path on this machine (docs/THREATS.md property 6).
//!
//! Two types, and no other way in: a [`Segment`] is one checked name (a build id, a pipeline, task or
//! output name); a [`Rooted`] is a path proven to stay under a root the server chose (its data
//! directory, a run's directory). A `Rooted` grows only by segments, or takes a path from input only
//! after checking it lies under it; so the store, the local runner and the server routes, which take
//! these types, cannot be handed `../x`, `/proc/self/environ` or a name with a `/` in it.
//!
//! A lexical check is not enough where hostile code can write under the root (a task container writes
//! its own directory): [`Rooted::refuse_symlinks`] looks at every component that exists below the root
//! and refuses a symbolic link, and [`Rooted::read_to_string`] opens the last one with `O_NOFOLLOW`, so
//! a link planted by a task is not followed by the server. The root itself is trusted.

use std::ffi::OsStr;
use std::fmt;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

pub use pipewright_core::host_path::{MAX_SEGMENT, Segment, SegmentError, shown};

#[derive(Debug, thiserror::Error)]
pub enum HostPathError {
    #[error(transparent)]
    Segment(#[from] SegmentError),
    #[error("`{}` is not a path under `{}`: {reason}", shown(path), root.display())]
    Outside { path: String, root: PathBuf, reason: &'static str },
    #[error("`{}` is a symbolic link; links are not followed out of `{}`", path.display(), root.display())]
    Symlink { path: PathBuf, root: PathBuf },
    #[error("cannot inspect `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A host path under a root: the root is the server's choice (configuration, never input), everything
/// below it is segments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rooted {
    root: PathBuf,
    path: PathBuf,
}

impl Rooted {
    /// A root directory the server chose (its data directory, say), made absolute.
    pub fn root(path: impl AsRef<Path>) -> Result<Rooted, HostPathError> {
        let path = path.as_ref();
        let absolute =
            std::path::absolute(path).map_err(|source| HostPathError::Io { path: path.to_path_buf(), source })?;
        Ok(Rooted { root: absolute.clone(), path: absolute })
    }

    /// The path one segment further down.
    pub fn join(&self, segment: &Segment) -> Rooted {
        Rooted { root: self.root.clone(), path: self.path.join(segment.as_str()) }
    }

    /// The path further down by `relative`: segments separated by `/` (`for-loop-2/print-op[1]`), each
    /// checked.
    pub fn join_relative(&self, relative: &str) -> Result<Rooted, HostPathError> {
        let mut joined = self.clone();
        for part in relative.split('/') {
            joined = joined.join(&Segment::new(part)?);
        }
        Ok(joined)
    }

    /// `candidate` (an absolute path from input, such as an artifact URI) when it lies under this
    /// path: absolute, no `.` or `..`, below it or equal to it. Nothing on disk is looked at; see
    /// [`Rooted::refuse_symlinks`].
    pub fn within(&self, candidate: &str) -> Result<Rooted, HostPathError> {
        let outside = |reason| HostPathError::Outside { path: candidate.to_string(), root: self.path.clone(), reason };
        if candidate.contains('\0') {
            return Err(outside("it contains NUL"));
        }
        let path = Path::new(candidate);
        if !path.is_absolute() {
            return Err(outside("it is not an absolute path"));
        }
        // `Path::components` drops a `.` in the middle, so look at the text.
        if candidate.split('/').any(|part| part == "." || part == "..") {
            return Err(outside("it contains `.` or `..`"));
        }
        let Ok(rest) = path.strip_prefix(&self.path) else {
            return Err(outside("it is outside"));
        };
        let mut joined = self.clone();
        for part in rest.components() {
            let Component::Normal(name) = part else { return Err(outside("it is not a plain path")) };
            let name = name.to_str().ok_or_else(|| outside("it is not UTF-8"))?;
            joined = joined.join(&Segment::new(name)?);
        }
        Ok(joined)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this path is `other` or below it.
    pub fn starts_with(&self, other: &Rooted) -> bool {
        self.path.starts_with(&other.path)
    }

    /// Refuses a symbolic link at any component below the root that exists (a missing component ends
    /// the walk: nothing below it exists either).
    pub fn refuse_symlinks(&self) -> Result<(), HostPathError> {
        let Ok(rest) = self.path.strip_prefix(&self.root) else {
            return Ok(());
        };
        let mut at = self.root.clone();
        for part in rest.components() {
            at.push(part);
            match std::fs::symlink_metadata(&at) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(HostPathError::Symlink { path: at, root: self.root.clone() });
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(source) => return Err(HostPathError::Io { path: at, source }),
            }
        }
        Ok(())
    }

    /// Whether the path exists (a link counts: it is refused where it is used).
    pub fn exists(&self) -> bool {
        std::fs::symlink_metadata(&self.path).is_ok()
    }

    /// Creates the directory and the missing ones above it (below the root), refusing links on the way.
    pub fn create_dir_all(&self) -> Result<(), HostPathError> {
        self.refuse_symlinks()?;
        std::fs::create_dir_all(&self.path).map_err(|source| HostPathError::Io { path: self.path.clone(), source })?;
        // A link made between the check and the creation would have been followed: look again.
        self.refuse_symlinks()
    }

    /// Reads a file without following a symbolic link anywhere below the root.
    pub fn read_to_string(&self) -> Result<String, ReadError> {
        self.refuse_symlinks().map_err(ReadError::Path)?;
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&self.path)
            .map_err(ReadError::Io)?;
        let mut text = String::new();
        file.read_to_string(&mut text).map_err(ReadError::Io)?;
        Ok(text)
    }

    pub fn file_name(&self) -> Option<&OsStr> {
        self.path.file_name()
    }
}

impl fmt::Display for Rooted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.path.display().fmt(f)
    }
}

/// Why [`Rooted::read_to_string`] read nothing: the path was refused, or the file could not be read
/// (`ELOOP` when its last component is a link).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Path(HostPathError),
    #[error("{}", io_reason(.0))]
    Io(std::io::Error),
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        _ if e.raw_os_error() == Some(libc::ELOOP) => "it is a symbolic link, which is not followed".to_string(),
        _ => e.to_string(),
    }
}

impl ReadError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Io(e) if e.kind() == std::io::ErrorKind::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_stay_under_the_root() {
        let root = Rooted::root("/data/runs").expect("root");
        let task = root.join_relative("run-1/for-loop-2/print-op[1]").expect("segments");
        assert_eq!(task.path(), Path::new("/data/runs/run-1/for-loop-2/print-op[1]"));
        for bad in ["../x", "a/../../x", "a//b", "/etc", "a/."] {
            assert!(root.join_relative(bad).is_err(), "{bad}");
        }
        let run = root.join(&Segment::new("run-1").expect("segment"));
        assert!(task.starts_with(&run) && !run.starts_with(&task));
    }

    #[test]
    fn paths_from_input_must_lie_under() {
        let task = Rooted::root("/data/runs/r/t").expect("root");
        let ok = task.within("/data/runs/r/t/artifacts/model").expect("under");
        assert_eq!(ok.path(), Path::new("/data/runs/r/t/artifacts/model"));
        assert_eq!(task.within("/data/runs/r/t").expect("itself").path(), task.path());
        let check = |candidate: &str, want: &str| {
            let e = task.within(candidate).expect_err(candidate).to_string();
            assert!(e.contains(want), "{candidate}: {e}");
        };
        check("/etc/passwd", "is outside");
        check("/data/runs/r/t2/x", "is outside");
        check("/data/runs/r/t/../other/x", "contains `.` or `..`");
        check("/data/runs/r/t/./x", "contains `.` or `..`");
        check("artifacts/model", "not an absolute path");
        check("gs://bucket/x", "not an absolute path");
        check("/data/runs/r/t/a\0b", "contains NUL");
    }

    #[test]
    fn symlinks_below_the_root_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = Rooted::root(dir.path()).expect("root");
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::write(outside.path().join("secret"), "s3cret").expect("write");
        let seg = |s: &str| Segment::new(s).expect("segment");

        let task = root.join(&seg("task"));
        task.join(&seg("parameters")).create_dir_all().expect("mkdir");
        let param = task.join(&seg("parameters")).join(&seg("out"));
        std::fs::write(param.path(), "fine").expect("write");
        assert_eq!(param.read_to_string().expect("read"), "fine");

        // The last component a link: not followed.
        std::fs::remove_file(param.path()).expect("rm");
        std::os::unix::fs::symlink(outside.path().join("secret"), param.path()).expect("link");
        let e = param.read_to_string().expect_err("a link").to_string();
        assert!(e.contains("is a symbolic link"), "{e}");

        // A directory on the way a link: refused before anything is opened or created.
        std::os::unix::fs::symlink(outside.path(), root.join(&seg("evil")).path()).expect("link");
        let through = root.join(&seg("evil")).join(&seg("secret"));
        let e = through.read_to_string().expect_err("through a link").to_string();
        assert!(e.contains("evil` is a symbolic link"), "{e}");
        let e = root.join(&seg("evil")).join(&seg("made")).create_dir_all().expect_err("mkdir through a link");
        assert!(matches!(e, HostPathError::Symlink { .. }), "{e}");
        assert!(!outside.path().join("made").exists(), "nothing was created outside");

        // Missing files are an ordinary error.
        let missing = task.join(&seg("nope")).read_to_string().expect_err("missing");
        assert!(missing.is_not_found() && missing.to_string() == "no such file");
    }
}
