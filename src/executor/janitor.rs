//! Cleanup of Docker resources and work directories, for one build and for builds whose pipewright
//! process died.
//!
//! Every container, volume and network of a build carries `pipewright.build=<id>` and
//! `pipewright.owner=<host>/<pid>/<start time>`. A resource whose owner process is gone (or is another
//! process that reused the pid) belongs to a crashed run and is removed; resources of live runs, even
//! other builds running side by side, are left alone.

use std::collections::{BTreeSet, HashMap};

use crate::io::docker::{Docker, DockerError};
use crate::io::store::Store;
use crate::record::{FailureInfo, FailureType, Status, Timestamp};

pub const BUILD_LABEL: &str = "pipewright.build";
pub const OWNER_LABEL: &str = "pipewright.owner";
pub const STEP_LABEL: &str = "pipewright.step";

/// This process, as written in the owner label.
pub fn owner() -> String {
    let pid = std::process::id();
    format!("{}/{pid}/{}", hostname(), start_time(pid).unwrap_or_default())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default()
}

/// Field 22 of `/proc/<pid>/stat`: the process start time, which tells a reused pid apart.
fn start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; fields after it start behind the last `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19).map(str::to_string)
}

/// Whether the process named by an owner label is gone. Owners on other hosts are never judged dead:
/// we cannot see their processes.
pub fn owner_is_dead(owner: &str) -> bool {
    let mut parts = owner.split('/');
    let (Some(host), Some(pid), Some(started)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    if host != hostname() {
        return false;
    }
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    start_time(pid).as_deref() != Some(started)
}

/// Labels for a resource of `build_id`.
pub fn labels(build_id: &str) -> HashMap<String, String> {
    HashMap::from([(BUILD_LABEL.to_string(), build_id.to_string()), (OWNER_LABEL.to_string(), owner())])
}

/// Removes every container, volume and network of `build_id`. Containers go first: a volume or network
/// in use cannot be removed.
pub async fn remove_build(docker: &Docker, build_id: &str) -> Result<(), DockerError> {
    let found = docker.list_labelled(&format!("{BUILD_LABEL}={build_id}")).await?;
    remove_all(docker, &found.containers, &found.volumes, &found.networks).await
}

async fn remove_all(
    docker: &Docker,
    containers: &[(String, HashMap<String, String>)],
    volumes: &[(String, HashMap<String, String>)],
    networks: &[(String, HashMap<String, String>)],
) -> Result<(), DockerError> {
    let mut first_error = None;
    for (id, _) in containers {
        if let Err(e) = docker.remove_container(id).await {
            first_error.get_or_insert(e);
        }
    }
    for (name, _) in volumes {
        if let Err(e) = docker.remove_volume(name).await {
            first_error.get_or_insert(e);
        }
    }
    for (id, _) in networks {
        if let Err(e) = docker.remove_network(id).await {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// What [`sweep`] cleaned, and the first Docker problem it met on the way.
#[derive(Debug, Default)]
pub struct Swept {
    /// Ids of the crashed builds whose resources, work directories or records were cleaned.
    pub builds: BTreeSet<String>,
    /// Docker resources of crashed runs that could not be listed or removed stay for the next sweep.
    pub docker_error: Option<DockerError>,
}

/// Removes what crashed runs left behind: their Docker resources and, in `store`, their work
/// directories; their records are closed as INTERNAL_ERROR. A Docker problem does not stop the rest:
/// records and work directories are cleaned even when the engine refuses a removal.
pub async fn sweep(docker: &Docker, store: &Store) -> Swept {
    let mut swept = Swept::default();
    match docker.list_labelled(BUILD_LABEL).await {
        Ok(found) => {
            let dead = |labels: &HashMap<String, String>| labels.get(OWNER_LABEL).is_some_and(|o| owner_is_dead(o));
            let pick = |items: &[(String, HashMap<String, String>)]| -> Vec<(String, HashMap<String, String>)> {
                items.iter().filter(|(_, l)| dead(l)).cloned().collect()
            };
            let (containers, volumes, networks) =
                (pick(&found.containers), pick(&found.volumes), pick(&found.networks));
            swept.builds.extend(
                containers.iter().chain(&volumes).chain(&networks).filter_map(|(_, l)| l.get(BUILD_LABEL).cloned()),
            );
            swept.docker_error = remove_all(docker, &containers, &volumes, &networks).await.err();
        }
        Err(e) => swept.docker_error = Some(e),
    }
    for id in store.work_ids() {
        let Ok(build) = store.load(&id) else {
            continue;
        };
        let owner_dead = build.owner.as_deref().is_some_and(owner_is_dead);
        if build.status.is_terminal() || !owner_dead {
            continue;
        }
        let closed = store
            .update(&id, |build| {
                // Checked again under the record's lock: the build may have ended since it was read.
                if build.status.is_terminal() {
                    return;
                }
                build.status = Status::InternalError;
                build.status_detail =
                    "pipewright exited while the build was running; a later run cleaned up after it".into();
                build.failure_info = Some(FailureInfo {
                    kind: FailureType::FailureTypeUnspecified,
                    detail: build.status_detail.clone(),
                });
                build.finish_time = Some(Timestamp::now());
            })
            .await;
        // A record we cannot update is still better than a workspace we leave behind: say so, go on.
        if let Err(e) = closed {
            tracing::warn!(build = %id, error = %crate::error_chain(&e), "cannot close the record of a crashed build");
        }
        // The build's disk first: its files vanish with it, and the directory is a mount point until then.
        crate::executor::disk::cleanup(&store.work_dir(&id)).await;
        let _ = std::fs::remove_dir_all(store.work_dir(&id));
        swept.builds.insert(id);
    }
    swept
}

/// Removes what crashed runs left on another engine (the sandbox's): the containers, volumes and
/// networks whose owner process is gone, and the images of those builds. Records and work directories
/// are [`sweep`]'s.
pub async fn sweep_engine(docker: &Docker) -> Result<BTreeSet<String>, DockerError> {
    let found = docker.list_labelled(BUILD_LABEL).await?;
    let dead = |labels: &HashMap<String, String>| labels.get(OWNER_LABEL).is_some_and(|o| owner_is_dead(o));
    let pick = |items: &[(String, HashMap<String, String>)]| -> Vec<(String, HashMap<String, String>)> {
        items.iter().filter(|(_, l)| dead(l)).cloned().collect()
    };
    let (containers, volumes, networks) = (pick(&found.containers), pick(&found.volumes), pick(&found.networks));
    let builds: BTreeSet<String> =
        containers.iter().chain(&volumes).chain(&networks).filter_map(|(_, l)| l.get(BUILD_LABEL).cloned()).collect();
    let removed = remove_all(docker, &containers, &volumes, &networks).await;
    for id in &builds {
        for image in docker.images_labelled(BUILD_LABEL, id).await? {
            docker.remove_image(&image).await?;
        }
    }
    removed.map(|()| builds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive() {
        assert!(!owner_is_dead(&owner()));
    }

    #[test]
    fn dead_and_foreign_owners() {
        let me = owner();
        let host = me.split('/').next().expect("host");
        // pid 1 exists but started at another time than "1".
        assert!(owner_is_dead(&format!("{host}/1/1")));
        assert!(owner_is_dead(&format!("{host}/4194303/5")));
        assert!(!owner_is_dead("some-other-host/1/1"));
        assert!(!owner_is_dead("garbage"));
    }
}
