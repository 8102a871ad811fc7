# shellcheck shell=bash disable=SC2034 # the variables are for the scripts that source it
# Shared by steps/sandbox/start.sh and stop.sh: where the sandbox daemon lives
# and how to find its processes. Source it after `set -euo pipefail`.
#
# The sandbox daemon is a second dockerd, for untrusted builds (fork pull
# requests): its containers run under gVisor's runsc, it runs in a network
# namespace of its own that has only `lo`, so its containers have no route to
# the host, its loopback, the host engine's docker0, the metadata address or
# anything else, and its data-root is a file system of its own (a loop-mounted
# ext4 image of bounded size), so what they write cannot fill the host's disk.
# The host's own engine (/var/run/docker.sock) is never touched.

# Names and paths; each can be overridden from the environment.
NETNS=${PIPEWRIGHT_SANDBOX_NETNS:-pipewright-sandbox}
# data-root (images, containers, volumes) and daemon.json.
STATE_DIR=${PIPEWRIGHT_SANDBOX_STATE:-/var/lib/pipewright-sandbox}
# exec-root, socket and pidfile. Kept short: a unix socket path has at most
# 107 bytes, and containerd's socket sits three levels below the exec-root.
RUN_DIR=${PIPEWRIGHT_SANDBOX_RUN:-/run/pipewright-sandbox}
SOCK=$RUN_DIR/docker.sock
DOCKER_HOST_URL=unix://$SOCK
EXEC_ROOT=$RUN_DIR/exec
PIDFILE=$RUN_DIR/docker.pid
LAUNCH_PID=$RUN_DIR/launch.pid
DATA_ROOT=$STATE_DIR/docker
CONFIG=$STATE_DIR/daemon.json
# The data-root's file system: a sparse ext4 image, loop-mounted on DATA_ROOT
# by start.sh (and unmounted, never deleted, by stop.sh). Everything the
# daemon keeps (images, layers, containers' writable layers and logs,
# volumes, build caches) is in it, so an untrusted build can fill at most
# DISK_SIZE (a number with K, M, G or T, powers of 1024: 40G, 512M), and the
# host's disk only by as much as the image has grown.
DISK_IMAGE=${PIPEWRIGHT_SANDBOX_DISK_IMAGE:-$STATE_DIR/docker.disk}
DISK_SIZE=${PIPEWRIGHT_SANDBOX_DISK:-40G}
# The runtime of containers that do not name one, and of the classic
# builder's RUN steps: runsc-disk (root file system writes in the data-root,
# where docker build, commit and cp see them) or runsc (in the sandbox's
# memory, invisible to them); see start.sh. Steps name runsc themselves.
DEFAULT_RUNTIME=${PIPEWRIGHT_SANDBOX_DEFAULT_RUNTIME:-runsc-disk}
# Where the daemon's networks get their /24s.
ADDRESS_POOL=${PIPEWRIGHT_SANDBOX_POOL:-10.210.0.0/16}

# Root owns the namespace, the mounts and the daemon; a normal user gets sudo
# for those, as in .ci/setup, and keeps the log in their own state dir (the
# caller's shell writes it, so it stays theirs).
SUDO=()
if [[ $EUID -eq 0 ]]; then
  LOG_DIR=${PIPEWRIGHT_SANDBOX_LOG_DIR:-/var/log/pipewright-sandbox}
else
  SUDO=(sudo)
  LOG_DIR=${PIPEWRIGHT_SANDBOX_LOG_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/pipewright-sandbox/log}
fi
# Named apart from .ci/setup's dockerd.log (the host engine's), which shares LOG_DIR.
LOG=$LOG_DIR/sandbox-dockerd.log
# What the daemon finds first on its PATH as runc (see start.sh).
NO_RUNC_DIR=$STATE_DIR/bin

# Timings and messages in .ci/setup's style: one line per item.
now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo $((t / 1000)); }
secs_since() { local d=$(($(now_ms) - $1)); printf '%d.%ds' $((d / 1000)) $((d % 1000 / 100)); }
t_start=$(now_ms)
begin() { t_start=$(now_ms); }
report() { printf '%s: %-10s %s (%s)\n' "$NAME" "$1" "$2" "$(secs_since "$t_start")"; }
die() { echo "$NAME: ERROR: $*" >&2; exit 1; }

# alive PID: a live process (this machine's init reaps late, so a killed
# daemon can linger as a zombie).
alive() { [[ -n $1 ]] && ps -o stat= -p "$1" 2>/dev/null | grep -qv '^Z'; }

# daemon_pid: the sandbox dockerd's pid, or nothing. Its pidfile first; else a
# dockerd whose command line names our daemon.json (one that hung before it
# wrote the pidfile).
daemon_pid() {
  local pid
  pid=$("${SUDO[@]}" cat "$PIDFILE" 2>/dev/null || true)
  if alive "$pid" && [[ $(cmdline "$pid") == *"--config-file $CONFIG"* ]]; then
    echo "$pid"
    return
  fi
  for pid in $(pgrep -x dockerd || true); do
    if [[ $(cmdline "$pid") == *"--config-file $CONFIG"* ]] && alive "$pid"; then
      echo "$pid"
      return
    fi
  done
}

# cmdline PID: the process's arguments, separated by spaces.
cmdline() { { tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null || true; }

# sandbox_pids: every live process of this daemon but dockerd itself: its
# containerd, the shims (started with containerd's socket under our
# exec-root), runsc (its state lives under our exec-root) and every
# descendant of those (runsc-sandbox, runsc-gofer, the container's processes).
sandbox_pids() {
  local pid args seeds=() all=() kids daemon
  daemon=$(daemon_pid)
  for pid in /proc/[0-9]*; do
    pid=${pid#/proc/}
    args=$(cmdline "$pid")
    [[ -n $args ]] || continue
    case "$args" in
      *" $EXEC_ROOT/"* | *"=$EXEC_ROOT/"*) seeds+=("$pid") ;;
    esac
  done
  all=("${seeds[@]}")
  while [[ ${#seeds[@]} -gt 0 ]]; do
    kids=$(pgrep -P "$(
      IFS=,
      echo "${seeds[*]}"
    )" || true)
    # shellcheck disable=SC2206 # pids are words
    seeds=($kids)
    all+=("${seeds[@]}")
  done
  for pid in "${all[@]}"; do
    if [[ $pid != "$daemon" ]] && alive "$pid"; then echo "$pid"; fi
  done | sort -un
}

# mounts_under DIR...: mount points below DIR (deepest first, for umount).
mounts_under() {
  local dir
  for dir in "$@"; do
    awk -v d="$dir" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/mounts
  done | sort -ru
}

# mounted_at DIR: how many mounts are stacked on DIR (0: none).
mounted_at() { awk -v d="$1" '$2 == d { n++ } END { print n + 0 }' /proc/mounts; }

# disk_device: the loop device that DISK_IMAGE is attached to, if the topmost
# mount on DATA_ROOT is its file system (dockerd's own bind mount of its
# data-root onto itself counts: it names the same device); else nothing.
# Reads /proc/mounts and sysfs only, so it needs no root.
disk_device() {
  local dev back
  dev=$(awk -v d="$DATA_ROOT" '$2 == d { dev = $1 } END { print dev }' /proc/mounts)
  [[ $dev == /dev/loop* ]] || return 0
  back=$(cat "/sys/block/${dev#/dev/}/loop/backing_file" 2>/dev/null) || return 0
  if [[ -n $back && $back -ef $DISK_IMAGE ]]; then echo "$dev"; fi
}

# disk_usage: "USED of SIZE used" of the file system on DATA_ROOT.
disk_usage() { df -h --output=used,size "$DATA_ROOT" | awk 'NR == 2 { print $1 " of " $2 " used" }'; }
