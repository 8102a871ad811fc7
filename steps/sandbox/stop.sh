#!/usr/bin/env bash
# Stops the sandbox Docker daemon that steps/sandbox/start.sh started, and
# removes what it leaves: runsc, shim and containerd processes of that daemon,
# mounts under its data-root and exec-root, the data-root's disk image's
# mount, its cgroups, and the netns.
#
# usage: steps/sandbox/stop.sh   (as root, or a user with sudo)
# Idempotent: prints one line per item, "absent" for what was not there.
# Same environment as start.sh. Images, volumes and the records of containers
# stay in the data-root's disk image, which is kept (the containers come back
# as exited with the daemon). The host's own engine is not touched.
set -euo pipefail

NAME=sandbox-stop
# shellcheck source=steps/sandbox/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

case "${1:-}" in
  -h | --help) sed -n '2,11s/^# \{0,1\}//p' "$0"; exit 0 ;;
  "") ;;
  *) echo "$NAME: unknown argument $1" >&2; exit 2 ;;
esac

# start.sh runs this (for an older daemon) with the lock held on fd 8, which
# we inherit: flock on that same open file returns at once.
if [[ -d $RUN_DIR ]]; then
  if ! [[ /proc/$$/fd/8 -ef $RUN_DIR/lock ]]; then
    "${SUDO[@]}" touch "$RUN_DIR/lock"
    exec 8<"$RUN_DIR/lock"
  fi
  flock -w 120 8 || die "another start.sh or stop.sh holds $RUN_DIR/lock"
fi

# wait_gone SECONDS PID...: true once none of the PIDs is alive.
wait_gone() {
  local deadline=$((SECONDS + $1)) pid left
  shift
  while :; do
    left=0
    for pid in "$@"; do if alive "$pid"; then left=1; fi; done
    ((left)) || return 0
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

# --- dockerd -----------------------------------------------------------------------
# SIGTERM lets it stop its containers (SIGTERM, then SIGKILL after their stop
# timeout) and its containerd; past 30 s it is killed and what it leaves is
# handled below.
begin
pid=$(daemon_pid)
if [[ -z $pid ]]; then
  report dockerd absent
else
  "${SUDO[@]}" kill -TERM "$pid" 2>/dev/null || true
  if wait_gone 30 "$pid"; then
    report dockerd "stopped pid $pid (SIGTERM)"
  else
    "${SUDO[@]}" kill -KILL "$pid" 2>/dev/null || true
    wait_gone 10 "$pid" || die "dockerd pid $pid survives SIGKILL"
    report dockerd "killed pid $pid (no exit 30 s after SIGTERM)"
  fi
fi

# --- what it left ---------------------------------------------------------------
# A killed dockerd leaves containerd; a failed runsc start leaks runsc-sandbox,
# runsc-gofer and containerd-shim-runc-v2. All of them name our exec-root on
# their command line; only those (and their children) are killed.
begin
pids=$(sandbox_pids)
if [[ -z $pids ]]; then
  report leftovers "none (runsc, shim, containerd)"
else
  # shellcheck disable=SC2086 # pids are words
  {
    what=$(for p in $pids; do ps -o args= -p "$p" | awk '{ n = split($1, a, "/"); print a[n] }'; done |
      sort | uniq -c | awk '{ printf "%s%s x%s", sep, $2, $1; sep=", " }')
    "${SUDO[@]}" kill -TERM $pids 2>/dev/null || true
    if ! wait_gone 5 $pids; then
      "${SUDO[@]}" kill -KILL $pids 2>/dev/null || true
      wait_gone 10 $pids || die "sandbox processes survive SIGKILL: $(sandbox_pids | tr '\n' ' ')"
    fi
  }
  report leftovers "ended $what"
fi

# --- mounts -----------------------------------------------------------------------
# Container root file systems (overlay2) and shm under the data-root, runsc's
# under the exec-root, and on the data-root itself the disk image's file
# system with, if dockerd made one, its own bind mount on top (several mounts
# on one mount point: each is unmounted). The disk image goes after what is
# mounted below it, and not lazily if it can be helped: a lazily unmounted ext4
# stays attached while something uses it, and start.sh will not mount it again
# until then.
begin
disk_dev=$(disk_device)
disk_line=
if [[ -n $disk_dev ]]; then disk_line="$(disk_usage)"; fi
mounts=$(mounts_under "$DATA_ROOT" "$EXEC_ROOT")
if [[ -z $mounts ]]; then
  report mounts none
else
  n=0 lazy=0
  while read -r m; do
    tries=0
    while (($(mounted_at "$m") > 0)); do
      if "${SUDO[@]}" umount "$m" 2>/dev/null; then
        :
      elif [[ $m == "$DATA_ROOT" && $tries -lt 25 ]]; then
        # Busy: the processes ended above may still be exiting.
        sleep 0.2
        tries=$((tries + 1))
        continue
      else
        "${SUDO[@]}" umount -l "$m" || die "cannot unmount $m"
        lazy=$((lazy + 1))
      fi
      n=$((n + 1))
    done
  done <<<"$mounts"
  report mounts "unmounted $n under $DATA_ROOT and $EXEC_ROOT$( ((lazy == 0)) || echo ", $lazy of them lazily (busy)")"
fi
begin
if [[ -z $disk_dev ]]; then
  report disk "not mounted ($DISK_IMAGE $("${SUDO[@]}" test -e "$DISK_IMAGE" && echo kept || echo absent))"
else
  # mount -o loop detaches the loop device with the last unmount (autoclear);
  # one still attached a moment later belongs to a file system still in use.
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    left=$("${SUDO[@]}" losetup -n -O NAME -j "$DISK_IMAGE" | paste -sd ' ')
    [[ -n $left ]] || break
    sleep 0.2
  done
  if [[ -n $left ]]; then
    echo "$NAME: WARNING: $DISK_IMAGE is still attached to $left (its file system is in use: fuser -m $left); start.sh will not mount it until that ends" >&2
  fi
  report disk "unmounted $DISK_IMAGE from $DATA_ROOT ($disk_dev, $disk_line; image kept)"
fi
# The runtime state is worthless without its processes (images and volumes
# are in the data-root and stay).
"${SUDO[@]}" rm -rf "$EXEC_ROOT" "$PIDFILE" "$LAUNCH_PID" "$SOCK"

# --- cgroups ------------------------------------------------------------------------
# Empty ones only (rmdir refuses others): start.sh's cgroup-parent.
begin
n=0
for dir in /sys/fs/cgroup/*/pipewright-sandbox /sys/fs/cgroup/pipewright-sandbox; do
  [[ -d $dir ]] || continue
  for sub in "$dir"/*/; do
    if [[ -d $sub ]] && "${SUDO[@]}" rmdir "$sub" 2>/dev/null; then n=$((n + 1)); fi
  done
  if "${SUDO[@]}" rmdir "$dir" 2>/dev/null; then n=$((n + 1)); fi
done
report cgroups "removed $n"

# --- network namespace ----------------------------------------------------------
# Its bridges and veths go with it.
begin
if [[ -e /run/netns/$NETNS ]]; then
  "${SUDO[@]}" ip netns del "$NETNS" || die "ip netns del $NETNS failed"
  report netns "deleted $NETNS"
else
  report netns absent
fi
