//! The one path by which a build record changes (docs/THREATS.md property 8: records are never torn or
//! lost).
//!
//! Every write is a read-modify-write of `builds/<id>/build.json` under an exclusive `flock` on
//! `builds/<id>/build.lock`: the lock file sits beside the record, so it holds between the engine, a
//! promotion, the server's scheduler and another process on the same data directory (the CLI). Under
//! the lock the current record is read, the change applied, [`Status::may_become`] checked (a finished
//! build is never reopened by a late write), and the result written durably: a temporary file of its
//! own in the same directory, fsync, rename over the record, fsync of the directory. A crash leaves the
//! old record or the new one, never half of one; an error is returned, never swallowed.
//!
//! Two kinds of writer, one path:
//! - [`Store::update`] applies a change to what is on disk (a promotion's note, an approval, a sweep).
//! - [`Store::put`] writes a whole view of the build (the engine's record as it runs, the scheduler's
//!   record of a build that never ran). The `promotions` already on the record are kept: they are only
//!   ever appended by `update`, so a running build's periodic save cannot drop a note that landed
//!   between two saves, in this process or another.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Store, StoreError};
use crate::record::Build;

impl Store {
    /// The lock every write of the record holds (see the module's note).
    pub fn record_lock_path(&self, id: &str) -> PathBuf {
        self.build_dir(id).join("build.lock")
    }

    /// Applies `change` to the record of build `id` as it is on disk now, and returns the record written.
    pub async fn update(
        &self,
        id: &str,
        change: impl FnOnce(&mut Build) + Send + 'static,
    ) -> Result<Build, StoreError> {
        let (store, id) = (self.clone(), id.to_string());
        blocking(move || store.update_blocking(&id, change)).await
    }

    /// [`Store::update`] for code already off the async runtime.
    pub fn update_blocking(&self, id: &str, change: impl FnOnce(&mut Build)) -> Result<Build, StoreError> {
        self.write_record(id, false, |current| {
            let mut record = current.ok_or_else(|| StoreError::UnknownBuild(id.to_string()))?;
            change(&mut record);
            Ok(record)
        })
    }

    /// Writes `view` as the record of its build (creating the build's directory if needed), keeping the
    /// promotions already noted on it. Returns the record written.
    pub async fn put(&self, view: Build) -> Result<Build, StoreError> {
        let store = self.clone();
        blocking(move || store.put_blocking(view)).await
    }

    /// [`Store::put`] for code already off the async runtime.
    pub fn put_blocking(&self, view: Build) -> Result<Build, StoreError> {
        let id = view.id.clone();
        self.write_record(&id, true, move |current| {
            let mut record = view;
            if let Some(current) = current {
                record.promotions = current.promotions;
            }
            Ok(record)
        })
    }

    /// Under the record's lock: reads it (`None` when there is none yet), lets `next` make the new
    /// record, checks the status only moves forward, and writes it durably.
    fn write_record(
        &self,
        id: &str,
        create: bool,
        next: impl FnOnce(Option<Build>) -> Result<Build, StoreError>,
    ) -> Result<Build, StoreError> {
        let dir = self.build_dir(id);
        if create {
            std::fs::create_dir_all(&dir)
                .map_err(|source| StoreError::Write { path: dir.display().to_string(), source })?;
        }
        let _lock = lock_file(&self.record_lock_path(id), id)?;
        let current = match self.load(id) {
            Ok(record) => Some(record),
            Err(StoreError::Read { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let before = current.as_ref().map(|r| r.status);
        let record = next(current)?;
        if record.id != id {
            return Err(StoreError::Renamed { id: id.to_string(), other: record.id });
        }
        if let Some(before) = before
            && !before.may_become(record.status)
        {
            return Err(StoreError::Backwards { id: id.to_string(), status: before, wanted: record.status });
        }
        let json = serde_json::to_vec_pretty(&record).expect("a build record always serialises");
        write_durably(&self.record_path(id), &json)?;
        Ok(record)
    }
}

/// Waits for the exclusive lock on `path`; it is held until the file closes. A missing build directory
/// means there is no such build.
fn lock_file(path: &Path, id: &str) -> Result<std::fs::File, StoreError> {
    let file = match std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(StoreError::UnknownBuild(id.to_string())),
        Err(source) => return Err(StoreError::Lock { path: path.display().to_string(), source }),
    };
    file.lock().map_err(|source| StoreError::Lock { path: path.display().to_string(), source })?;
    Ok(file)
}

/// Replaces `path` with `bytes` so that a crash or a full disk leaves either the old file or the new
/// one: a temporary file of a name no other writer uses, in the same directory (rename is atomic only
/// within a filesystem), synced before the rename, and the directory synced after it so the rename
/// itself survives a power cut. The temporary file is removed when anything fails.
pub fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let write_err = |source| StoreError::Write { path: path.display().to_string(), source };
    let dir = path.parent().expect("a file path has a parent");
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(write_err(e));
    }
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(write_err)
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|e| Err(StoreError::Interrupted(e.to_string())))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::record::{PromotionRecord, Status};

    fn note(n: usize) -> PromotionRecord {
        PromotionRecord {
            environment: "prod".into(),
            result: "approved".into(),
            by: format!("approver-{n}"),
            at: String::new(),
            detail: String::new(),
        }
    }

    fn leftovers(store: &Store, id: &str) -> Vec<String> {
        std::fs::read_dir(store.build_dir(id))
            .expect("build dir")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect()
    }

    #[test]
    fn a_note_survives_the_engine_saving_its_own_view() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(dir.path());
        let mut view = Build::new("b1".into(), "local".into());
        view.status = Status::Working;
        store.put_blocking(view.clone()).expect("first save");
        store.update_blocking("b1", |r| r.promotions.push(note(1))).expect("note");
        // The engine's view never has the note; saving it again must not drop it.
        view.status = Status::Success;
        let saved = store.put_blocking(view).expect("final save");
        assert_eq!(saved.promotions, vec![note(1)]);
        assert_eq!(store.load("b1").expect("load").promotions, vec![note(1)]);
        assert_eq!(store.load("b1").expect("load").status, Status::Success);
    }

    #[test]
    fn a_finished_record_is_never_reopened() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(dir.path());
        let mut view = Build::new("b1".into(), "local".into());
        view.status = Status::Success;
        store.put_blocking(view.clone()).expect("save");
        // A late write that read the record while it was WORKING.
        view.status = Status::Working;
        let late = store.put_blocking(view).expect_err("a finished build cannot go back");
        assert!(
            matches!(late, StoreError::Backwards { status: Status::Success, wanted: Status::Working, .. }),
            "{late:?}"
        );
        assert!(late.to_string().contains("is SUCCESS and cannot become WORKING"), "{late}");
        let reopened = store.update_blocking("b1", |r| r.status = Status::Queued).expect_err("nor through update");
        assert!(matches!(reopened, StoreError::Backwards { .. }), "{reopened:?}");
        let recast = store.update_blocking("b1", |r| r.status = Status::Failure).expect_err("nor ended again");
        assert!(matches!(recast, StoreError::Backwards { .. }), "{recast:?}");
        assert_eq!(store.load("b1").expect("load").status, Status::Success);
        // Notes on a finished build are fine.
        store.update_blocking("b1", |r| r.promotions.push(note(1))).expect("note");
    }

    #[test]
    fn an_update_of_an_unknown_build_says_so_and_creates_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(dir.path());
        let e = store.update_blocking("nope", |r| r.promotions.push(note(1))).expect_err("no such build");
        assert!(matches!(e, StoreError::UnknownBuild(ref id) if id == "nope"), "{e:?}");
        assert!(!store.build_dir("nope").exists());
    }

    /// 50 notes from 50 threads and 50 from 50 tasks, while the engine saves its view every few ms:
    /// every note is in the record afterwards, no temporary file is left, and the engine's last view won.
    #[test]
    fn concurrent_notes_and_engine_saves_all_survive() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(dir.path());
        let mut view = Build::new("b1".into(), "local".into());
        view.status = Status::Working;
        store.put_blocking(view.clone()).expect("first save");
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let engine = {
            let (store, done, mut view) = (store.clone(), done.clone(), view.clone());
            std::thread::spawn(move || {
                let mut saves = 0;
                while !done.load(std::sync::atomic::Ordering::SeqCst) {
                    view.status_detail = format!("save {saves}");
                    store.put_blocking(view.clone()).expect("engine save");
                    saves += 1;
                }
                saves
            })
        };
        let threads: Vec<_> = (0..50)
            .map(|n| {
                let store = store.clone();
                std::thread::spawn(move || store.update_blocking("b1", |r| r.promotions.push(note(n))))
            })
            .collect();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().expect("runtime");
        let tasks: Vec<Result<Build, StoreError>> = rt.block_on(async {
            let handles: Vec<_> = (50..100)
                .map(|n| {
                    let store = store.clone();
                    tokio::spawn(async move { store.update("b1", move |r| r.promotions.push(note(n))).await })
                })
                .collect();
            let mut results = Vec::new();
            for handle in handles {
                results.push(handle.await.expect("task"));
            }
            results
        });
        for thread in threads {
            thread.join().expect("thread").expect("note");
        }
        for result in tasks {
            result.expect("note");
        }
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        let saves = engine.join().expect("engine");
        view.status = Status::Success;
        view.status_detail = "done".into();
        store.put_blocking(view).expect("final save");

        let record = store.load("b1").expect("load");
        let mut by: Vec<String> = record.promotions.iter().map(|p| p.by.clone()).collect();
        by.sort();
        let mut expected: Vec<String> = (0..100).map(|n| format!("approver-{n}")).collect();
        expected.sort();
        assert_eq!(by, expected, "notes were lost among {saves} engine saves");
        assert_eq!(record.status, Status::Success);
        assert_eq!(record.status_detail, "done");
        assert!(saves > 0, "the engine never saved while the notes landed");
        assert_eq!(leftovers(&store, "b1"), Vec::<String>::new());
    }

    #[test]
    fn a_record_that_cannot_be_written_is_an_error_and_the_old_one_stays() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(dir.path());
        let mut view = Build::new("b1".into(), "local".into());
        view.status = Status::Working;
        store.put_blocking(view.clone()).expect("first save");
        // The tests run as root, which ignores permissions, so the build's directory is made unusable
        // another way: a file where it should be. A full or read-only disk fails at the same calls.
        let dir_of_build = store.build_dir("b1");
        let blocker = dir_of_build.with_file_name("b1-elsewhere");
        std::fs::rename(&dir_of_build, &blocker).expect("move the build away");
        std::fs::write(&dir_of_build, b"not a directory").expect("a file where the build's directory was");
        view.status = Status::Success;
        let e = store.put_blocking(view.clone()).expect_err("the save fails");
        assert!(matches!(e, StoreError::Write { .. }), "{e:?}");
        assert!(e.to_string().contains("b1"), "the error names the path: {e}");
        let e = store.update_blocking("b1", |r| r.promotions.push(note(1))).expect_err("the note fails");
        assert!(matches!(e, StoreError::Lock { .. } | StoreError::Write { .. }), "{e:?}");
        // Put back: the old record is whole.
        std::fs::remove_file(&dir_of_build).expect("remove the file");
        std::fs::rename(&blocker, &dir_of_build).expect("move the build back");
        assert_eq!(store.load("b1").expect("load").status, Status::Working);
    }

    #[test]
    fn a_failed_rename_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("build.json");
        // A non-empty directory where the file should go: rename fails whoever runs it.
        std::fs::create_dir_all(target.join("x")).expect("dir");
        let e = write_durably(&target, b"{}").expect_err("rename onto a directory fails");
        assert!(matches!(e, StoreError::Write { ref path, .. } if path.ends_with("build.json")), "{e:?}");
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["build.json".to_string()]);
    }
}
