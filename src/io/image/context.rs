//! A component's build context: the files Docker receives, their hash, and the tar that carries them.
//!
//! [`collect`] walks the context folder once and records what `.dockerignore` lets through; `hash`
//! and `tar` read file contents from that list, so both always describe the same files. Nothing here
//! follows a symlink: a link is recorded, hashed and sent as its target text, so a link to
//! `/etc/passwd` can neither leak that file into an image nor make the hash depend on it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::dockerignore::{DockerIgnore, IgnoreError};

/// Names the hash scheme; change it whenever the encoding below changes, so that old hashes can
/// never collide with new ones.
const HASH_SCHEME: &str = "pipewright-context-hash/v1";

const IGNORE_FILE: &str = ".dockerignore";

/// The files of a context folder that Docker would receive, sorted by path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageContext {
    pub root: PathBuf,
    /// The Dockerfile, relative to `root`, `/`-separated.
    pub dockerfile: String,
    pub files: Vec<ContextFile>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContextFile {
    /// Relative to the context root, `/`-separated.
    pub path: String,
    pub kind: FileKind,
    /// Permission bits, such as `0o644` or `0o755`.
    pub mode: u32,
    /// The size of a regular file when it was collected; 0 for directories and symlinks.
    pub size: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileKind {
    File,
    Dir,
    /// The link's target as written, never resolved.
    Symlink(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("build context `{path}` does not exist")]
    ContextMissing { path: PathBuf },
    #[error("build context `{path}` is not a directory")]
    ContextNotDirectory { path: PathBuf },
    #[error(
        "Dockerfile `{dockerfile}` is outside the build context `{context}`\n\nhint: give the Dockerfile as a path relative to the context, without `..`"
    )]
    DockerfileOutsideContext { dockerfile: String, context: PathBuf },
    #[error("Dockerfile `{path}` does not exist")]
    DockerfileMissing { path: PathBuf },
    #[error("`{path}` must be a regular file, not a symlink, directory or device")]
    NotRegularFile { path: PathBuf },
    #[error("`{path}` {source}")]
    Ignore { path: PathBuf, source: IgnoreError },
    #[error("cannot read `{path}`")]
    Read { path: PathBuf, source: io::Error },
    #[error("`{path}` is not valid UTF-8; pipewright needs UTF-8 names in a build context")]
    NonUtf8Name { path: PathBuf },
    #[error("`{path}` is a socket, FIFO or device, which a build context cannot carry")]
    UnsupportedFileType { path: PathBuf },
    #[error("`{path}` changed while the build context was being read\n\nhint: run the build again")]
    Changed { path: PathBuf },
    #[error("cannot add `{path}` to the build context archive")]
    Tar { path: String, source: io::Error },
}

/// Walks `root` (the context folder) honouring its `.dockerignore`; `dockerfile` is relative to root.
///
/// A `<Dockerfile>.dockerignore` beside the Dockerfile replaces the root `.dockerignore`, as in
/// `docker build`. The Dockerfile and the ignore file in use are always included, because Docker
/// sends them even when they are ignored.
pub fn collect(root: &Path, dockerfile: &str) -> Result<ImageContext, ContextError> {
    check_root(root)?;
    let dockerfile = context_relative(dockerfile).ok_or_else(|| ContextError::DockerfileOutsideContext {
        dockerfile: dockerfile.to_owned(),
        context: root.to_path_buf(),
    })?;
    require_regular_file(&root.join(&dockerfile), || ContextError::DockerfileMissing { path: root.join(&dockerfile) })?;
    let (ignore_file, ignore) = read_ignore_file(root, &dockerfile)?;
    let mut walker =
        Walker { root, ignore: &ignore, always: [Some(dockerfile.clone()), ignore_file], files: Vec::new() };
    walker.walk_dir("")?;
    let mut files = walker.files;
    // A Dockerfile under a symlinked directory was read through the link; the walk, which never
    // follows links, did not send it.
    if !files.iter().any(|file| file.path == dockerfile && file.kind == FileKind::File) {
        return Err(ContextError::NotRegularFile { path: root.join(&dockerfile) });
    }
    add_missing_parents(root, &mut files)?;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(ImageContext { root: root.to_path_buf(), dockerfile, files })
}

fn check_root(root: &Path) -> Result<(), ContextError> {
    match fs::metadata(root) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(ContextError::ContextNotDirectory { path: root.to_path_buf() }),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            Err(ContextError::ContextMissing { path: root.to_path_buf() })
        }
        Err(source) => Err(ContextError::Read { path: root.to_path_buf(), source }),
    }
}

/// `./docker//Dockerfile` → `docker/Dockerfile`; `None` for absolute paths, `..` and empty paths.
fn context_relative(path: &str) -> Option<String> {
    if path.starts_with('/') {
        return None;
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            _ => parts.push(part),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// Checks that `path` is a regular file itself, not a link to one; `missing` is the error for a
/// path that does not exist.
fn require_regular_file(path: &Path, missing: impl FnOnce() -> ContextError) -> Result<(), ContextError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_file() => Ok(()),
        Ok(_) => Err(ContextError::NotRegularFile { path: path.to_path_buf() }),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Err(missing()),
        Err(source) => Err(ContextError::Read { path: path.to_path_buf(), source }),
    }
}

/// The ignore file in effect (context-relative) and its rules; no file means nothing is ignored.
fn read_ignore_file(root: &Path, dockerfile: &str) -> Result<(Option<String>, DockerIgnore), ContextError> {
    for candidate in [format!("{dockerfile}{IGNORE_FILE}"), IGNORE_FILE.to_owned()] {
        let path = root.join(&candidate);
        let text = match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => read_text(&path)?,
            Ok(_) => return Err(ContextError::NotRegularFile { path }),
            Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => return Err(ContextError::Read { path, source }),
        };
        let ignore = DockerIgnore::parse(&text).map_err(|source| ContextError::Ignore { path, source })?;
        return Ok((Some(candidate), ignore));
    }
    Ok((None, DockerIgnore::default()))
}

fn read_text(path: &Path) -> Result<String, ContextError> {
    let bytes = fs::read(path).map_err(|source| ContextError::Read { path: path.to_path_buf(), source })?;
    // Docker reads the ignore file as bytes; a stray invalid byte should not stop the build.
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

struct Walker<'a> {
    root: &'a Path,
    ignore: &'a DockerIgnore,
    /// Sent even when ignored: the Dockerfile and the ignore file in use.
    always: [Option<String>; 2],
    files: Vec<ContextFile>,
}

impl Walker<'_> {
    fn walk_dir(&mut self, rel_dir: &str) -> Result<(), ContextError> {
        let dir = self.root.join(rel_dir);
        let read_error = |source| ContextError::Read { path: dir.clone(), source };
        let mut entries = fs::read_dir(&dir).map_err(read_error)?.collect::<Result<Vec<_>, _>>().map_err(read_error)?;
        entries.sort_by_key(|entry| entry.file_name());
        for entry in entries {
            let name = entry.file_name();
            let name = name.to_str().ok_or_else(|| ContextError::NonUtf8Name { path: entry.path() })?;
            let rel = if rel_dir.is_empty() { name.to_owned() } else { format!("{rel_dir}/{name}") };
            // `DirEntry::metadata` does not follow symlinks.
            let meta = entry.metadata().map_err(|source| ContextError::Read { path: entry.path(), source })?;
            let included = self.is_always_sent(&rel) || !self.ignore.excludes(&rel);
            if included {
                self.files.push(context_file(self.root, &rel, &meta)?);
            }
            if meta.is_dir() && (included || self.may_send_below(&rel)) {
                self.walk_dir(&rel)?;
            }
        }
        Ok(())
    }

    fn is_always_sent(&self, rel: &str) -> bool {
        self.always.iter().flatten().any(|path| path == rel)
    }

    /// Whether anything below the excluded directory `dir` can still be sent; if not, the walk
    /// skips it (an ignored `.git` or `node_modules` is never read).
    fn may_send_below(&self, dir: &str) -> bool {
        self.ignore.may_reinclude_below(dir)
            || self.always.iter().flatten().any(|path| path.strip_prefix(dir).is_some_and(|rest| rest.starts_with('/')))
    }
}

fn context_file(root: &Path, rel: &str, meta: &Metadata) -> Result<ContextFile, ContextError> {
    let path = root.join(rel);
    let file_type = meta.file_type();
    let (kind, size) = if file_type.is_file() {
        (FileKind::File, meta.len())
    } else if file_type.is_dir() {
        (FileKind::Dir, 0)
    } else if file_type.is_symlink() {
        let target = fs::read_link(&path).map_err(|source| ContextError::Read { path: path.clone(), source })?;
        let target = target.into_os_string().into_string().map_err(|_| ContextError::NonUtf8Name { path })?;
        (FileKind::Symlink(target), 0)
    } else {
        return Err(ContextError::UnsupportedFileType { path });
    };
    Ok(ContextFile { path: rel.to_owned(), kind, mode: meta.permissions().mode() & 0o7777, size })
}

/// Adds the directories above included files that `.dockerignore` excluded (`docs` for
/// `docs` + `!docs/README.md`), so the archive carries their real modes, as BuildKit sends them.
fn add_missing_parents(root: &Path, files: &mut Vec<ContextFile>) -> Result<(), ContextError> {
    let present: BTreeSet<&str> = files.iter().map(|file| file.path.as_str()).collect();
    let missing: BTreeSet<&str> = files
        .iter()
        .flat_map(|file| file.path.match_indices('/').map(|(index, _)| &file.path[..index]))
        .filter(|parent| !present.contains(parent))
        .collect();
    let mut parents = Vec::new();
    for parent in missing {
        let path = root.join(parent);
        let meta = fs::symlink_metadata(&path).map_err(|source| ContextError::Read { path, source })?;
        parents.push(context_file(root, parent, &meta)?);
    }
    files.extend(parents);
    Ok(())
}

impl ImageContext {
    /// SHA-256 (lowercase hex) over the sorted (path, kind, mode, content or link target) of the
    /// included files, the Dockerfile's path and bytes, the build args (sorted by key), the target,
    /// and the ids of the base images it names (given by the caller, sorted by name).
    ///
    /// Every field is length-prefixed and every list counted, so no two different inputs encode
    /// alike. File contents are streamed, never held whole. Modification times and owners are not
    /// hashed: they differ between clones of the same commit and Docker's build ignores them.
    pub fn hash(
        &self,
        build_args: &BTreeMap<String, String>,
        target: Option<&str>,
        base_image_ids: &BTreeMap<String, String>,
    ) -> Result<String, ContextError> {
        let mut encoder = Encoder::default();
        encoder.str(HASH_SCHEME);

        encoder.str("dockerfile");
        encoder.str(&self.dockerfile);
        encoder.file(&self.root.join(&self.dockerfile), None)?;

        encoder.str("files");
        encoder.count(self.files.len());
        for file in &self.files {
            self.encode_file(&mut encoder, file)?;
        }

        encoder.str("build-args");
        encoder.map(build_args);
        encoder.str("target");
        match target {
            None => encoder.count(0),
            Some(target) => {
                encoder.count(1);
                encoder.str(target);
            }
        }
        encoder.str("base-images");
        encoder.map(base_image_ids);
        Ok(hex::encode(encoder.hasher.finalize()))
    }

    fn encode_file(&self, encoder: &mut Encoder, file: &ContextFile) -> Result<(), ContextError> {
        encoder.str(&file.path);
        match &file.kind {
            FileKind::File => {
                encoder.str("file");
                encoder.mode(file.mode);
                encoder.file(&self.root.join(&file.path), Some(file.size))?;
            }
            FileKind::Dir => {
                encoder.str("dir");
                encoder.mode(file.mode);
            }
            FileKind::Symlink(target) => {
                encoder.str("symlink");
                encoder.mode(file.mode);
                encoder.str(target);
            }
        }
        Ok(())
    }

    /// The context as an uncompressed tar for Docker's build API: deterministic (sorted entries,
    /// mtime 0, uid/gid 0, empty user/group names, the file's mode), directories included, symlinks
    /// as symlinks (never followed).
    pub fn tar(&self) -> Result<Vec<u8>, ContextError> {
        self.tar_with(&[])
    }

    /// The context tar plus `extra` files (path, bytes), e.g. a generated Dockerfile; an extra file
    /// whose path is already in the context replaces it.
    pub fn tar_with(&self, extra: &[(&str, &[u8])]) -> Result<Vec<u8>, ContextError> {
        let mut builder = tar::Builder::new(Vec::new());
        for file in self.files.iter().filter(|f| !extra.iter().any(|(path, _)| *path == f.path)) {
            self.append(&mut builder, file)?;
        }
        for (path, data) in extra {
            let mut header = header(tar::EntryType::Regular, 0o644, data.len() as u64);
            builder
                .append_data(&mut header, path, *data)
                .map_err(|source| ContextError::Tar { path: path.to_string(), source })?;
        }
        Ok(builder.into_inner().expect("finishing a tar only writes to a Vec, which cannot fail"))
    }

    fn append(&self, builder: &mut tar::Builder<Vec<u8>>, file: &ContextFile) -> Result<(), ContextError> {
        let tar_error = |source| ContextError::Tar { path: file.path.clone(), source };
        match &file.kind {
            FileKind::File => {
                let data = read_exact_size(&self.root.join(&file.path), file.size)?;
                let mut header = header(tar::EntryType::Regular, file.mode, file.size);
                builder.append_data(&mut header, &file.path, data.as_slice()).map_err(tar_error)
            }
            FileKind::Dir => {
                let mut header = header(tar::EntryType::Directory, file.mode, 0);
                builder.append_data(&mut header, format!("{}/", file.path), io::empty()).map_err(tar_error)
            }
            FileKind::Symlink(target) => {
                let mut header = header(tar::EntryType::Symlink, file.mode, 0);
                append_symlink(builder, &mut header, &file.path, target).map_err(tar_error)
            }
        }
    }
}

/// A tar header with nothing from the machine in it: the same files give the same bytes anywhere.
fn header(entry_type: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(entry_type);
    header.set_mode(mode);
    header.set_size(size);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header
}

/// Writes the target byte for byte; `tar`'s own `set_link_name` would normalise it (`a/./b` → `a/b`).
fn append_symlink(
    builder: &mut tar::Builder<Vec<u8>>,
    header: &mut tar::Header,
    path: &str,
    target: &str,
) -> io::Result<()> {
    let fits_in_header = target.len() <= header.as_old().linkname.len();
    if fits_in_header {
        header.set_link_name_literal(target)?;
        builder.append_data(header, path, io::empty())
    } else {
        // Long targets go in a GNU long-link entry, which holds the bytes as given.
        builder.append_link(header, path, target)
    }
}

/// Opens a context file without following a symlink that replaced it since it was collected, and
/// checks it still has the size collected (or any size, for `None`); returns the file and its size.
fn open_regular(path: &Path, expected_size: Option<u64>) -> Result<(File, u64), ContextError> {
    let read_error = |source| ContextError::Read { path: path.to_path_buf(), source };
    let file = File::options()
        .read(true)
        // O_NONBLOCK: a FIFO swapped in must not hang the build; it fails the regular-file check.
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(read_error)?;
    let meta = file.metadata().map_err(read_error)?;
    if !meta.is_file() || expected_size.is_some_and(|size| size != meta.len()) {
        return Err(ContextError::Changed { path: path.to_path_buf() });
    }
    Ok((file, meta.len()))
}

fn read_exact_size(path: &Path, size: u64) -> Result<Vec<u8>, ContextError> {
    let (file, _) = open_regular(path, Some(size))?;
    let mut data = Vec::new();
    // One byte more than expected reveals a file that grew while being read.
    file.take(size.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(|source| ContextError::Read { path: path.to_path_buf(), source })?;
    if data.len() as u64 != size {
        return Err(ContextError::Changed { path: path.to_path_buf() });
    }
    Ok(data)
}

/// Feeds length-prefixed fields to SHA-256.
#[derive(Default)]
struct Encoder {
    hasher: Sha256,
}

impl Encoder {
    fn count(&mut self, count: usize) {
        self.hasher.update((count as u64).to_be_bytes());
    }

    fn str(&mut self, text: &str) {
        self.count(text.len());
        self.hasher.update(text.as_bytes());
    }

    fn mode(&mut self, mode: u32) {
        self.hasher.update(mode.to_be_bytes());
    }

    fn map(&mut self, map: &BTreeMap<String, String>) {
        self.count(map.len());
        for (key, value) in map {
            self.str(key);
            self.str(value);
        }
    }

    /// The file's length, then its bytes, streamed. The length is the one checked against
    /// `expected_size` at open, and exactly that many bytes are hashed, so the encoding stays
    /// unambiguous even if the file changes meanwhile; a file that shrank is reported.
    fn file(&mut self, path: &Path, expected_size: Option<u64>) -> Result<(), ContextError> {
        let (file, size) = open_regular(path, expected_size)?;
        self.hasher.update(size.to_be_bytes());
        let mut reader = file.take(size);
        let mut buffer = [0u8; 64 * 1024];
        let mut hashed = 0u64;
        loop {
            let read = match reader.read(&mut buffer) {
                Ok(0) => break,
                Ok(read) => read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(ContextError::Read { path: path.to_path_buf(), source }),
            };
            self.hasher.update(&buffer[..read]);
            hashed += read as u64;
        }
        if hashed != size {
            return Err(ContextError::Changed { path: path.to_path_buf() });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    /// Writes `files` (`path => content`, a trailing `/` makes a directory) under a new temp dir.
    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for (path, content) in files {
            write(dir.path(), path, content);
        }
        dir
    }

    /// Modes are set explicitly (0o644 files, 0o755 directories) so no test depends on the umask.
    fn write(root: &Path, path: &str, content: &str) {
        let full = root.join(path);
        let parent = if path.ends_with('/') { full.as_path() } else { full.parent().expect("files have a parent") };
        fs::create_dir_all(parent).expect("create dir");
        for dir in parent.ancestors().take_while(|dir| *dir != root) {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).expect("chmod dir");
        }
        if !path.ends_with('/') {
            fs::write(&full, content).expect("write file");
            chmod(root, path, 0o644);
        }
    }

    fn chmod(root: &Path, path: &str, mode: u32) {
        fs::set_permissions(root.join(path), fs::Permissions::from_mode(mode)).expect("chmod");
    }

    const BASE: &[(&str, &str)] = &[
        ("Dockerfile", "FROM python:3.12\nCOPY . /app\n"),
        (".dockerignore", "*.md\n!README.md\nbuild\n"),
        ("README.md", "readme"),
        ("NOTES.md", "notes"),
        ("src/train.py", "print('train')\n"),
        ("build/out.bin", "artifact"),
    ];

    fn hash_of(root: &Path) -> String {
        hash_with(root, &[], None, &[])
    }

    fn hash_with(root: &Path, args: &[(&str, &str)], target: Option<&str>, bases: &[(&str, &str)]) -> String {
        let map = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let context = collect(root, "Dockerfile").expect("collect");
        context.hash(&map(args), target, &map(bases)).expect("hash")
    }

    fn paths(context: &ImageContext) -> Vec<&str> {
        context.files.iter().map(|file| file.path.as_str()).collect()
    }

    /// The base tree, changed by `change`, hashes the same as the base tree (`same`) or not.
    #[track_caller]
    fn check(change: impl FnOnce(&Path), same: bool) {
        let before = hash_of(tree(BASE).path());
        let changed = tree(BASE);
        change(changed.path());
        assert_eq!(hash_of(changed.path()) == before, same);
    }

    #[test]
    fn what_changes_the_hash() {
        check(|_| {}, true);
        check(|root| write(root, "src/train.py", "print('changed')\n"), false);
        check(|root| write(root, "src/new.py", ""), false);
        check(|root| write(root, "src/empty/", ""), false);
        check(|root| fs::remove_file(root.join("src/train.py")).expect("rm"), false);
        check(|root| chmod(root, "src/train.py", 0o755), false);
        check(|root| write(root, "Dockerfile", "FROM python:3.13\nCOPY . /app\n"), false);
        check(|root| write(root, ".dockerignore", "*.md\n!README.md\nbuild\n# comment\n"), false);
        check(|root| symlink("train.py", root.join("src/link.py")).expect("symlink"), false);
        // Ignored files, existing or new, do not matter.
        check(|root| write(root, "NOTES.md", "other notes"), true);
        check(|root| write(root, "build/new.bin", "more"), true);
        check(|root| write(root, "build/deeper/x", "more"), true);
        check(|root| write(root, "CHANGES.md", "new"), true);
    }

    #[test]
    fn args_target_and_base_images_change_the_hash() {
        let dir = tree(BASE);
        let root = dir.path();
        let base = hash_with(root, &[("A", "1")], Some("train"), &[("python:3.12", "sha256:aa")]);
        assert_eq!(base, hash_with(root, &[("A", "1")], Some("train"), &[("python:3.12", "sha256:aa")]));
        assert_ne!(base, hash_with(root, &[("A", "2")], Some("train"), &[("python:3.12", "sha256:aa")]));
        assert_ne!(base, hash_with(root, &[("A", "1"), ("B", "")], Some("train"), &[("python:3.12", "sha256:aa")]));
        assert_ne!(base, hash_with(root, &[("A", "1")], Some("serve"), &[("python:3.12", "sha256:aa")]));
        assert_ne!(base, hash_with(root, &[("A", "1")], None, &[("python:3.12", "sha256:aa")]));
        assert_ne!(base, hash_with(root, &[("A", "1")], Some("train"), &[("python:3.12", "sha256:bb")]));
        assert_ne!(base, hash_with(root, &[("A", "1")], Some("train"), &[]));
        // Length prefixes keep field boundaries: `AB=` is not `A=B`.
        assert_ne!(hash_with(root, &[("AB", "")], None, &[]), hash_with(root, &[("A", "B")], None, &[]));
        assert_eq!(base.len(), 64);
        assert!(base.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    }

    #[test]
    fn hash_is_stable_across_copies_and_mtimes() {
        let first = tree(BASE);
        let old = fs::FileTimes::new().set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1));
        for file in ["Dockerfile", "README.md", "src/train.py"] {
            File::options().write(true).open(first.path().join(file)).expect("open").set_times(old).expect("mtime");
        }
        let second = tree(BASE);
        assert_eq!(hash_of(first.path()), hash_of(second.path()));
    }

    #[test]
    fn collect_honours_dockerignore_and_always_sends_the_build_files() {
        let dir = tree(&[
            ("Dockerfile", "FROM a"),
            (".dockerignore", "*\n!src\n"),
            ("src/a.py", ""),
            ("data/big.csv", ""),
            ("notes.txt", ""),
        ]);
        let context = collect(dir.path(), "./Dockerfile").expect("collect");
        assert_eq!(context.dockerfile, "Dockerfile");
        assert_eq!(paths(&context), [".dockerignore", "Dockerfile", "src", "src/a.py"]);
        assert_eq!(
            context.files[3],
            ContextFile { path: "src/a.py".into(), kind: FileKind::File, mode: 0o644, size: 0 }
        );
    }

    #[test]
    fn excluded_directories_are_sent_as_parents_of_exceptions() {
        let dir = tree(&[
            ("Dockerfile", "FROM a"),
            (".dockerignore", "docs\n!docs/README.md\n.git\n"),
            ("docs/README.md", "r"),
            ("docs/internal.md", "i"),
            (".git/HEAD", "ref"),
        ]);
        chmod(dir.path(), "docs", 0o750);
        let context = collect(dir.path(), "Dockerfile").expect("collect");
        assert_eq!(paths(&context), [".dockerignore", "Dockerfile", "docs", "docs/README.md"]);
        assert_eq!(context.files[2].mode, 0o750);
    }

    #[test]
    fn dockerfile_in_an_ignored_directory_is_still_sent() {
        let dir = tree(&[("docker/train.Dockerfile", "FROM a"), (".dockerignore", "docker\n"), ("app.py", "")]);
        let context = collect(dir.path(), "docker/train.Dockerfile").expect("collect");
        assert_eq!(paths(&context), [".dockerignore", "app.py", "docker", "docker/train.Dockerfile"]);
    }

    #[test]
    fn dockerfile_specific_ignore_file_wins() {
        let dir = tree(&[
            ("Dockerfile", "FROM a"),
            ("serve.Dockerfile", "FROM b"),
            ("serve.Dockerfile.dockerignore", "*.py\n"),
            (".dockerignore", "*.txt\n"),
            ("a.py", ""),
            ("a.txt", ""),
        ]);
        let serve = collect(dir.path(), "serve.Dockerfile").expect("collect");
        assert_eq!(
            paths(&serve),
            [".dockerignore", "Dockerfile", "a.txt", "serve.Dockerfile", "serve.Dockerfile.dockerignore"]
        );
        let default = collect(dir.path(), "Dockerfile").expect("collect");
        assert_eq!(
            paths(&default),
            [".dockerignore", "Dockerfile", "a.py", "serve.Dockerfile", "serve.Dockerfile.dockerignore"]
        );
    }

    #[test]
    fn symlinks_are_kept_and_never_followed() {
        let outside = tree(&[("secret", "password")]);
        let dir = tree(&[("Dockerfile", "FROM a")]);
        symlink(outside.path().join("secret"), dir.path().join("link")).expect("symlink");
        symlink(outside.path(), dir.path().join("linked-dir")).expect("symlink");
        let context = collect(dir.path(), "Dockerfile").expect("collect");
        let target = outside.path().join("secret").to_string_lossy().into_owned();
        assert_eq!(context.files[1].kind, FileKind::Symlink(target.clone()));
        assert_eq!(paths(&context), ["Dockerfile", "link", "linked-dir"]);

        let before = hash_of(dir.path());
        fs::write(outside.path().join("secret"), "another password").expect("write");
        assert_eq!(hash_of(dir.path()), before);

        let tar = context.tar().expect("tar");
        let entries = tar_entries(&tar);
        assert_eq!(entries[1], ("link".into(), tar::EntryType::Symlink, target, Vec::new()));
        assert!(!tar.windows(8).any(|window| window == b"password"));
    }

    #[test]
    fn long_symlink_targets_are_written_exactly() {
        let dir = tree(&[("Dockerfile", "FROM a")]);
        let target = format!("./{}/../x", "d".repeat(150));
        symlink(&target, dir.path().join("long")).expect("symlink");
        symlink("a/./b", dir.path().join("short")).expect("symlink");
        let tar = collect(dir.path(), "Dockerfile").expect("collect").tar().expect("tar");
        let targets: Vec<String> = tar_entries(&tar).into_iter().skip(1).map(|entry| entry.2).collect();
        assert_eq!(targets, [target, "a/./b".to_owned()]);
    }

    #[test]
    fn tar_is_deterministic_and_complete() {
        let first = tree(BASE);
        write(first.path(), "src/empty/", "");
        chmod(first.path(), "src/train.py", 0o755);
        let second = tree(BASE);
        write(second.path(), "src/empty/", "");
        chmod(second.path(), "src/train.py", 0o755);
        let tar = collect(first.path(), "Dockerfile").expect("collect").tar().expect("tar");
        assert_eq!(tar, collect(second.path(), "Dockerfile").expect("collect").tar().expect("tar"));

        let entries = tar_entries(&tar);
        let names: Vec<&str> = entries.iter().map(|entry| entry.0.as_str()).collect();
        assert_eq!(names, [".dockerignore", "Dockerfile", "README.md", "src/", "src/empty/", "src/train.py"]);
        assert_eq!(entries[5].3, b"print('train')\n");
        assert_eq!(entries[3].1, tar::EntryType::Directory);

        let mut archive = tar::Archive::new(tar.as_slice());
        for entry in archive.entries().expect("entries") {
            let header = entry.expect("entry").header().clone();
            assert_eq!(
                (header.mtime().expect("mtime"), header.uid().expect("uid"), header.gid().expect("gid")),
                (0, 0, 0)
            );
            assert_eq!((header.username().expect("user"), header.groupname().expect("group")), (Some(""), Some("")));
            let mode = header.mode().expect("mode");
            let path = header.path().expect("path").to_string_lossy().into_owned();
            let expected = match path.as_str() {
                "src/train.py" => 0o755,
                "src/" | "src/empty/" => 0o755,
                _ => 0o644,
            };
            assert_eq!(mode, expected, "{path}");
        }
    }

    #[test]
    fn long_paths_survive_the_tar() {
        let long = format!("{}/file.txt", "d".repeat(120));
        let dir = tree(&[("Dockerfile", "FROM a"), (long.as_str(), "x")]);
        let tar = collect(dir.path(), "Dockerfile").expect("collect").tar().expect("tar");
        let names: Vec<String> = tar_entries(&tar).into_iter().map(|entry| entry.0).collect();
        assert_eq!(names, ["Dockerfile".to_owned(), format!("{}/", "d".repeat(120)), long]);
    }

    /// (path, type, link target, content) of each entry.
    fn tar_entries(tar: &[u8]) -> Vec<(String, tar::EntryType, String, Vec<u8>)> {
        let mut archive = tar::Archive::new(tar);
        let entries = archive.entries().expect("entries");
        entries
            .map(|entry| {
                let mut entry = entry.expect("entry");
                let path = String::from_utf8(entry.path_bytes().into_owned()).expect("utf-8 path");
                let link = entry.link_name_bytes().map(|b| String::from_utf8(b.into_owned()).expect("utf-8"));
                let kind = entry.header().entry_type();
                let mut content = Vec::new();
                entry.read_to_end(&mut content).expect("content");
                (path, kind, link.unwrap_or_default(), content)
            })
            .collect()
    }

    #[track_caller]
    fn check_error(files: &[(&str, &str)], context: &str, dockerfile: &str, expected: &str) {
        let dir = tree(files);
        let root = dir.path().join(context);
        let error = collect(&root, dockerfile).expect_err("collect should fail");
        let message = error.to_string().replace(&dir.path().to_string_lossy().into_owned(), "<tmp>");
        assert_eq!(message, expected);
    }

    #[test]
    fn errors_name_what_to_fix() {
        let ok = [("ctx/Dockerfile", "FROM a")];
        check_error(&ok, "missing", "Dockerfile", "build context `<tmp>/missing` does not exist");
        check_error(&ok, "ctx/Dockerfile", "Dockerfile", "build context `<tmp>/ctx/Dockerfile` is not a directory");
        check_error(&ok, "ctx", "Dockerfile.gpu", "Dockerfile `<tmp>/ctx/Dockerfile.gpu` does not exist");
        check_error(
            &ok,
            "ctx",
            "../Dockerfile",
            "Dockerfile `../Dockerfile` is outside the build context `<tmp>/ctx`\n\nhint: give the Dockerfile as a path relative to the context, without `..`",
        );
        check_error(
            &ok,
            "ctx",
            "/etc/Dockerfile",
            "Dockerfile `/etc/Dockerfile` is outside the build context `<tmp>/ctx`\n\nhint: give the Dockerfile as a path relative to the context, without `..`",
        );
        check_error(
            &ok,
            "ctx",
            "",
            "Dockerfile `` is outside the build context `<tmp>/ctx`\n\nhint: give the Dockerfile as a path relative to the context, without `..`",
        );
        check_error(
            &[("ctx/Dockerfile/", "")],
            "ctx",
            "Dockerfile",
            "`<tmp>/ctx/Dockerfile` must be a regular file, not a symlink, directory or device",
        );
        check_error(
            &[("ctx/Dockerfile", "FROM a"), ("ctx/.dockerignore", "# ok\nsrc/[a-\n")],
            "ctx",
            "Dockerfile",
            "`<tmp>/ctx/.dockerignore` line 2: `src/[a-` is not a valid pattern: a `[` has no closing `]`",
        );
    }

    #[test]
    fn dockerfile_must_not_be_reached_through_a_link() {
        let outside = tree(&[("Dockerfile", "FROM evil")]);
        let dir = tree(&[("app.py", "")]);
        symlink(outside.path(), dir.path().join("docker")).expect("symlink");
        symlink(outside.path().join("Dockerfile"), dir.path().join("Dockerfile")).expect("symlink");
        for dockerfile in ["Dockerfile", "docker/Dockerfile"] {
            let error = collect(dir.path(), dockerfile).expect_err("linked Dockerfile");
            assert!(matches!(error, ContextError::NotRegularFile { .. }), "{error}");
        }
    }

    #[test]
    fn a_file_that_changes_after_collect_is_reported() {
        let dir = tree(&[("Dockerfile", "FROM a"), ("data.txt", "1234")]);
        let context = collect(dir.path(), "Dockerfile").expect("collect");
        fs::write(dir.path().join("data.txt"), "123456").expect("write");
        let no_args = BTreeMap::new();
        assert!(matches!(context.hash(&no_args, None, &no_args), Err(ContextError::Changed { .. })));
        assert!(matches!(context.tar(), Err(ContextError::Changed { .. })));
        fs::remove_file(dir.path().join("data.txt")).expect("rm");
        symlink("/nonexistent", dir.path().join("data.txt")).expect("symlink");
        assert!(matches!(context.tar(), Err(ContextError::Read { .. })));
    }
}
