//! Which process owns a data directory (docs/THREATS.md property 5).
//!
//! `pipewright serve` holds an exclusive `flock` on `<data>/server.lock` for as long as it runs (the
//! kernel drops it when the process dies, kill -9 included) and writes beside it, in
//! `server.json`, where it listens. While a server owns the directory, the CLI's `promote`,
//! `approve` and `rollback` refuse to write it with their self-declared local identity: on a server,
//! identities are proven by the server (`--server URL` with a token), and a second writer of the
//! release database would go around the server's rules and audit.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What a running server says about itself in `server.json`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerInfo {
    pub pid: u32,
    /// Where to reach it (`publicUrl`, else `http://<listen>`).
    pub url: String,
}

#[derive(Debug, thiserror::Error)]
pub enum OwnerError {
    #[error("the data directory {dir} is already served by pipewright serve (pid {pid}, {url})")]
    Taken { dir: String, pid: u32, url: String },
    #[error("cannot lock {path}")]
    Lock {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The ownership a running server holds; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct ServerLock {
    _file: File,
}

fn lock_path(root: &Path) -> PathBuf {
    root.join("server.lock")
}

fn info_path(root: &Path) -> PathBuf {
    root.join("server.json")
}

fn open(root: &Path) -> Result<File, OwnerError> {
    let path = lock_path(root);
    let lock_err = |source| OwnerError::Lock { path: path.display().to_string(), source };
    std::fs::create_dir_all(root).map_err(lock_err)?;
    OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(lock_err)
}

/// Takes the data directory for this server, or says which server has it.
pub fn acquire(root: &Path, url: &str) -> Result<ServerLock, OwnerError> {
    let file = open(root)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let info = read_info(root).unwrap_or_default();
            return Err(OwnerError::Taken { dir: root.display().to_string(), pid: info.pid, url: info.url });
        }
        Err(TryLockError::Error(source)) => {
            return Err(OwnerError::Lock { path: lock_path(root).display().to_string(), source });
        }
    }
    let info = ServerInfo { pid: std::process::id(), url: url.to_string() };
    let text = serde_json::to_vec_pretty(&info).expect("server info serialises");
    std::fs::write(info_path(root), text)
        .map_err(|source| OwnerError::Lock { path: info_path(root).display().to_string(), source })?;
    Ok(ServerLock { _file: file })
}

/// The server that owns `root` now, if one does. A directory nobody has served is not owned.
pub fn owner(root: &Path) -> Result<Option<ServerInfo>, OwnerError> {
    if !lock_path(root).exists() {
        return Ok(None);
    }
    let file = open(root)?;
    match file.try_lock() {
        // Free: nobody serves it (the lock goes when `file` closes).
        Ok(()) => Ok(None),
        Err(TryLockError::WouldBlock) => Ok(Some(read_info(root).unwrap_or_default())),
        Err(TryLockError::Error(source)) => {
            Err(OwnerError::Lock { path: lock_path(root).display().to_string(), source })
        }
    }
}

fn read_info(root: &Path) -> Option<ServerInfo> {
    serde_json::from_slice(&std::fs::read(info_path(root)).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_served_directory_is_owned_until_the_server_lets_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(owner(dir.path()).expect("owner"), None);
        let lock = acquire(dir.path(), "http://127.0.0.1:8080").expect("acquire");
        let info = owner(dir.path()).expect("owner").expect("owned");
        assert_eq!((info.pid, info.url.as_str()), (std::process::id(), "http://127.0.0.1:8080"));
        let second = acquire(dir.path(), "http://127.0.0.1:9090").expect_err("a second server");
        assert!(second.to_string().contains("already served by pipewright serve"), "{second}");
        drop(lock);
        assert_eq!(owner(dir.path()).expect("owner"), None);
    }
}
