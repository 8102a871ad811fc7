//! A build's disk: its work directory as a filesystem of its own, of a fixed size, so a build that
//! writes without end fails with "no space left" instead of filling the host (ARCHITECTURE.md "Limits").
//!
//! An ext4 image file beside the work directory (`<data>/work/<id>.disk`, sparse: it takes only what
//! is written), loop-mounted over the work directory before the checkout is made, and removed with the
//! build: unmounting and deleting one file is instant, whatever the build wrote. Making it needs root
//! (a loop mount); without root the work directory is a plain directory and the limit is not enforced
//! (trusted builds say so in a warning; untrusted builds do not start).

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("a workspace size limit needs root (a loop mount); pipewright runs as uid {uid}")]
    NotRoot { uid: u32 },
    #[error("cannot make the build's disk at `{path}`: {message}")]
    Make { path: String, message: String },
}

/// A mounted disk. [`Disk::remove`] must be called; a crash leaves it to [`cleanup`].
#[derive(Debug)]
pub struct Disk {
    mount: PathBuf,
    image: PathBuf,
    size: u64,
}

/// The image file of the disk mounted at `work`.
fn image_of(work: &Path) -> PathBuf {
    let mut name = work.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".disk");
    work.with_file_name(name)
}

async fn run(program: &str, args: &[&std::ffi::OsStr]) -> Result<(), String> {
    let output = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| format!("cannot run `{program}`: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!("`{program}` failed ({}): {}", output.status, String::from_utf8_lossy(&output.stderr).trim()))
}

impl Disk {
    /// Makes a disk of `size` bytes and mounts it over `work` (an existing, empty directory).
    pub async fn create(work: &Path, size: u64) -> Result<Disk, DiskError> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let uid = unsafe { libc::geteuid() };
        if uid != 0 {
            return Err(DiskError::NotRoot { uid });
        }
        let image = image_of(work);
        let fail = |message: String| DiskError::Make { path: image.display().to_string(), message };
        let file = std::fs::File::create(&image).map_err(|e| fail(e.to_string()))?;
        file.set_len(size).map_err(|e| fail(e.to_string()))?;
        drop(file);
        let disk = Disk { mount: work.to_path_buf(), image: image.clone(), size };
        // No journal (a scratch disk needs no crash consistency) and no reserved blocks: every byte of
        // the limit is the build's; lazy init keeps making a 100 GiB disk in the tens of milliseconds.
        let mut args: Vec<&std::ffi::OsStr> =
            ["-q", "-F", "-m", "0", "-O", "^has_journal", "-E", "lazy_itable_init=1,nodiscard"]
                .into_iter()
                .map(std::ffi::OsStr::new)
                .collect();
        args.push(image.as_os_str());
        let made = run("mkfs.ext4", &args).await;
        let mounted = match made {
            Ok(()) => {
                run(
                    "mount",
                    &[std::ffi::OsStr::new("-o"), "loop,nosuid,nodev".as_ref(), image.as_os_str(), work.as_os_str()],
                )
                .await
            }
            Err(e) => Err(e),
        };
        if let Err(message) = mounted {
            let _ = std::fs::remove_file(&image);
            return Err(fail(message));
        }
        // The filesystem's own `lost+found` is of no use to a build and would show in its workspace.
        let _ = std::fs::remove_dir(work.join("lost+found"));
        Ok(disk)
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes still free, if the filesystem can tell.
    pub fn free(&self) -> Option<u64> {
        free_bytes(&self.mount)
    }

    /// Whether the build has used (nearly) all of its disk: what a step that failed on it needs to say.
    pub fn full(&self) -> bool {
        is_full(&self.mount, self.size)
    }

    /// Unmounts the disk and deletes it, with everything the build wrote on it.
    pub async fn remove(self) {
        unmount(&self.mount).await;
        let _ = tokio::fs::remove_file(&self.image).await;
    }
}

async fn unmount(mount: &Path) {
    // Lazy: a plain unmount would first write back everything the build wrote (a build that filled a
    // 100 GiB disk would wait for 100 GiB of writes to a file about to be deleted), and a container's
    // bind mount may still hold it for a moment. Detached, it goes when its last user lets go.
    let _ = run("umount", &["-l".as_ref(), mount.as_os_str()]).await;
}

/// What a crash left of the disk mounted at `work` (if any): unmounts it and deletes its image.
pub async fn cleanup(work: &Path) {
    let image = image_of(work);
    if !image.exists() {
        return;
    }
    if is_mount_point(work) {
        unmount(work).await;
    }
    let _ = tokio::fs::remove_file(&image).await;
}

fn is_mount_point(path: &Path) -> bool {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return false;
    };
    let target = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    // /proc/self/mounts escapes spaces and the like as octal (`\040`); our paths have none.
    mounts.lines().filter_map(|l| l.split(' ').nth(1)).any(|m| Path::new(m) == target)
}

/// Whether the disk of `size` bytes mounted at `mount` is (nearly) full.
pub fn is_full(mount: &Path, size: u64) -> bool {
    free_bytes(mount).is_some_and(|free| free < (size / 200).max(1 << 20))
}

fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a valid NUL-terminated path and `stat` a writable statvfs; statvfs initialises it
    // when it returns 0.
    let stat = unsafe {
        if libc::statvfs(c.as_ptr(), stat.as_mut_ptr()) != 0 {
            return None;
        }
        stat.assume_init()
    };
    Some(stat.f_bavail as u64 * stat.f_frsize as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_disk_holds_its_size_and_no_more() {
        // SAFETY: no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIPPED: a build's disk needs root");
            return;
        }
        let root = tempfile::tempdir().expect("tempdir");
        let work = root.path().join("build-1");
        std::fs::create_dir(&work).expect("work dir");
        let disk = Disk::create(&work, 64 << 20).await.expect("disk");
        assert!(is_mount_point(&work));
        assert!(!work.join("lost+found").exists());
        assert!(!disk.full());
        let big = vec![7u8; 1 << 20];
        let mut written = 0u64;
        let error = loop {
            match std::fs::OpenOptions::new().create(true).append(true).open(work.join("f")).and_then(|mut f| {
                use std::io::Write;
                f.write_all(&big)
            }) {
                Ok(()) => written += big.len() as u64,
                Err(e) => break e,
            }
            assert!(written <= 64 << 20, "wrote past the disk's size");
        };
        assert_eq!(error.raw_os_error(), Some(libc::ENOSPC), "{error}");
        assert!(disk.full());
        disk.remove().await;
        assert!(!is_mount_point(&work));
        assert!(!image_of(&work).exists());
    }

    #[tokio::test]
    async fn cleanup_after_a_crash() {
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIPPED: a build's disk needs root");
            return;
        }
        let root = tempfile::tempdir().expect("tempdir");
        let work = root.path().join("build-2");
        std::fs::create_dir(&work).expect("work dir");
        let disk = Disk::create(&work, 16 << 20).await.expect("disk");
        std::mem::forget(disk); // as a kill -9 would
        cleanup(&work).await;
        assert!(!is_mount_point(&work));
        assert!(!image_of(&work).exists());
        cleanup(&work).await; // nothing left: a no-op
    }
}
