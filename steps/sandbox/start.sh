#!/usr/bin/env bash
# Starts the sandbox Docker daemon that untrusted builds (fork pull requests)
# run their step containers on: a second dockerd whose containers run under
# gVisor's runsc, inside a network namespace of its own with only `lo`, with
# its data-root on a size-limited file system of its own (a loop-mounted
# sparse ext4 image).
#
# usage: steps/sandbox/start.sh   (as root, or a user with sudo)
# Idempotent: does nothing if the daemon is already running and healthy.
# Prints one line per item; the last one names the socket
# (default unix:///run/pipewright-sandbox/docker.sock).
# Environment: PIPEWRIGHT_SANDBOX_NETNS (pipewright-sandbox),
# PIPEWRIGHT_SANDBOX_STATE (/var/lib/pipewright-sandbox: data-root, its disk
# image and daemon.json), PIPEWRIGHT_SANDBOX_DISK (40G: the disk image's
# size; a larger one grows it, online if root has CAP_SYS_RESOURCE, else at
# the next start after stop.sh),
# PIPEWRIGHT_SANDBOX_DISK_IMAGE (STATE/docker.disk), PIPEWRIGHT_SANDBOX_RUN
# (/run/pipewright-sandbox: socket, exec-root, pidfile),
# PIPEWRIGHT_SANDBOX_LOG_DIR (where sandbox-dockerd.log goes),
# PIPEWRIGHT_SANDBOX_POOL (10.210.0.0/16: the networks' /24s),
# PIPEWRIGHT_SANDBOX_DEFAULT_RUNTIME (runsc-disk, or runsc: the comments on
# daemon.json below say why).
# Runtimes: runsc (root file system in memory) and runsc-disk (on the disk).
# A data-root of an older start.sh (on the host's disk) is removed, with its
# images. steps/sandbox/stop.sh undoes all of it but the disk image.
set -euo pipefail

NAME=sandbox
# shellcheck source=steps/sandbox/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

case "${1:-}" in
  -h | --help) sed -n '2,25s/^# \{0,1\}//p' "$0"; exit 0 ;;
  "") ;;
  *) echo "$NAME: unknown argument $1" >&2; exit 2 ;;
esac

# containerd's ttrpc socket is the longest path the daemon makes; past 107
# bytes bind() fails with a message that does not say why.
longest="$EXEC_ROOT/containerd/containerd.sock.ttrpc"
((${#longest} <= 107)) ||
  die "PIPEWRIGHT_SANDBOX_RUN=$RUN_DIR is too long: $longest would be ${#longest} bytes, a unix socket path has at most 107"

mkdir -p "$LOG_DIR"
"${SUDO[@]}" mkdir -p "$STATE_DIR" "$RUN_DIR"
# Two starts at once (CI plus a developer's shell) would race on the netns and
# the daemon. A read-only descriptor is enough for flock, so a normal user can
# lock root's file; the launch below closes it in the daemon.
"${SUDO[@]}" touch "$RUN_DIR/lock"
exec 8<"$RUN_DIR/lock"
flock -w 120 8 || die "another start.sh or stop.sh holds $RUN_DIR/lock"

# --- what the daemon needs ------------------------------------------------------
APT_UPDATED=0
apt_install() {
  if [[ $APT_UPDATED -eq 0 ]]; then
    "${SUDO[@]}" apt-get update -q >"$LOG_DIR/apt.log" 2>&1 || die "apt-get update failed, see $LOG_DIR/apt.log"
    APT_UPDATED=1
  fi
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "$@" >>"$LOG_DIR/apt.log" 2>&1 ||
    die "apt-get install $* failed, see $LOG_DIR/apt.log"
}
begin
if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
  die "no dockerd/docker: install docker.io first (.ci/setup does)"
fi
missing=()
command -v runsc >/dev/null 2>&1 || missing+=(runsc)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v iptables >/dev/null 2>&1 || missing+=(iptables)
command -v mkfs.ext4 >/dev/null 2>&1 || missing+=(e2fsprogs)
if [[ ${#missing[@]} -gt 0 ]]; then
  apt_install "${missing[@]}"
  report packages "installed ${missing[*]} (log $LOG_DIR/apt.log)"
fi
RUNSC=$(command -v runsc)
case "$DEFAULT_RUNTIME" in
  runsc | runsc-disk) ;;
  *) die "PIPEWRIGHT_SANDBOX_DEFAULT_RUNTIME is runsc or runsc-disk, not '$DEFAULT_RUNTIME'" ;;
esac
report runsc "$RUNSC ($("$RUNSC" --version 2>/dev/null | head -n 1))"

# --- daemon.json ------------------------------------------------------------------
# Written to a temporary file first: a running daemon is compared with it.
#
# runsc --network=host: Debian's runsc (0.0~20221219) refuses its own network
#   stack on this kernel ("cannot run with network enabled in root network
#   namespace": it looks at /proc/sys/net/core/rmem_default, which newer
#   kernels have in every netns), even with --network=none. With host, the
#   sandbox uses the kernel's stack but inside the container's own netns that
#   Docker made, so bridge networks (and the isolation below) work as usual.
# runsc --overlay2=root:memory (the runtime "runsc", which steps name): writes
#   to a container's root file system live in the sandbox's memory, so they count
#   against its --memory limit (2 GiB written to /tmp under --memory 512m is
#   OOMKilled) instead of filling the host's disk. But Docker never sees them:
#   the classic builder commits an empty layer for every RUN (a later RUN
#   finds no file the earlier one wrote), and docker commit and docker cp
#   find nothing a container wrote outside its mounts. Bind mounts and
#   volumes are not affected (they go through the gofer to the host). runsc
#   mounts its own tmpfs on /tmp in both runtimes: memory, too.
# runsc --overlay2=none (the runtime "runsc-disk", default): root file system
#   writes go to the container's overlay2 upper directory in the data-root,
#   as with runc. Builds, commit and cp work, so it is the default, and so the
#   classic builder's (component images of untrusted builds). The data-root
#   is the disk image below, so they are bounded by PIPEWRIGHT_SANDBOX_DISK,
#   not by the host's disk: a RUN step that writes more fails with "no space
#   left on device". PIPEWRIGHT_SANDBOX_DEFAULT_RUNTIME=runsc makes the
#   in-memory one the default (and breaks docker build).
# No --platform: the default (ptrace) works; kvm hangs here (the sandbox spins
#   at 100% CPU), although /dev/kvm exists.
# bridge none: this daemon must never manage the host's docker0 (one that did
#   removed docker0 on exit and broke the host engine). Its own netns has no
#   docker0 either, so there is no default bridge: builds get user-defined
#   networks.
# iptables true: the rules go into this netns's own tables (netfilter is per
#   netns), and they are what keeps two user-defined networks (two builds)
#   from reaching each other. Measured with false: the netns routes between
#   bridges, and a container on A reached containers on B, --internal or not.
#   ip-masq false: there is no uplink to masquerade to; should one ever appear,
#   unmasqueraded private addresses get no replies.
# default-address-pools: /24s from 10.210.0.0/16 (PIPEWRIGHT_SANDBOX_POOL),
#   256 networks; Docker's default pools give 31, and the first of them is
#   172.17.0.0/16, which looks like the host's docker0 in every message.
# cgroup-parent: the containers' cgroups under /pipewright-sandbox, apart
#   from the host engine's /docker.
# log-opts: as the host engine's, so an untrusted step cannot fill the disk
#   with output.
# features.buildkit false: tells clients to use the classic builder, whose
#   RUN steps run in containers of the default runtime. It is advice only:
#   this dockerd still accepts BuildKit builds (POST /build?version=2), and
#   BuildKit runs RUN steps with runc on the host kernel (measured: uname in a
#   RUN step printed the host's kernel, and cgroups under
#   /pipewright-sandbox/buildkit). Hence NO_RUNC_DIR below.
new_config=$(mktemp "${TMPDIR:-/tmp}/pipewright-sandbox-daemon.XXXXXX.json")
trap 'rm -f "$new_config"' EXIT
cat >"$new_config" <<EOF
{
  "runtimes": {
    "runsc": {
      "path": "$RUNSC",
      "runtimeArgs": ["--network=host", "--overlay2=root:memory"]
    },
    "runsc-disk": {
      "path": "$RUNSC",
      "runtimeArgs": ["--network=host", "--overlay2=none"]
    }
  },
  "default-runtime": "$DEFAULT_RUNTIME",
  "bridge": "none",
  "iptables": true,
  "ip-masq": false,
  "default-address-pools": [{"base": "$ADDRESS_POOL", "size": 24}],
  "cgroup-parent": "/pipewright-sandbox",
  "features": {"buildkit": false},
  "log-driver": "json-file",
  "log-opts": {"max-size": "10m", "max-file": "3"},
  "data-root": "$DATA_ROOT",
  "exec-root": "$EXEC_ROOT",
  "pidfile": "$PIDFILE",
  "hosts": ["$DOCKER_HOST_URL"]
}
EOF

# No runc for this daemon: the first runc and docker-runc on its PATH refuse
# to run anything. So a BuildKit build (whose executor runs docker-runc or
# runc from PATH) and `--runtime runc` fail instead of running untrusted code
# on the host kernel; the runsc runtimes name their binary by path and do not
# look. dockerd only asks `runc --version` for docker info.
write_no_runc() {
  local name
  "${SUDO[@]}" mkdir -p "$NO_RUNC_DIR"
  for name in runc docker-runc; do
    "${SUDO[@]}" tee "$NO_RUNC_DIR/$name" >/dev/null <<'EOF'
#!/bin/sh
# Written by pipewright's steps/sandbox/start.sh: the sandbox daemon runs
# containers under runsc only; runc would run them on the host kernel.
echo "runc is disabled in pipewright's sandbox Docker daemon: use the runsc runtimes" >&2
exit 1
EOF
    "${SUDO[@]}" chmod 755 "$NO_RUNC_DIR/$name"
  done
}

# healthy: answers on our socket with DEFAULT_RUNTIME as its default, its
# dockerd is in our netns (a daemon outside it would reach the host), and its
# data-root is the disk image's file system (else it writes to the host's).
netns_inode() { "${SUDO[@]}" stat -L -c %i "/run/netns/$NETNS" 2>/dev/null; }
in_netns() { # PID
  [[ -n $(netns_inode) && $("${SUDO[@]}" stat -L -c %i "/proc/$1/ns/net" 2>/dev/null) == "$(netns_inode)" ]]
}
default_runtime() {
  "${SUDO[@]}" docker -H "$DOCKER_HOST_URL" info --format '{{.DefaultRuntime}}' 2>/dev/null
}
healthy() {
  local pid
  pid=$(daemon_pid)
  [[ -n $pid ]] && in_netns "$pid" && [[ -n $(disk_device) ]] &&
    [[ $(default_runtime) == "$DEFAULT_RUNTIME" ]]
}

# --- disk ----------------------------------------------------------------------------
# The data-root's own file system (see DISK_IMAGE in common.sh): a sparse file
# (it takes on the host's disk only what has been written to it, at most its
# size), ext4 without reserved blocks (-m 0: nothing for root to fall back
# on), lazily initialised inode tables (mkfs takes a second, not minutes; the
# kernel zeroes them after the mount), no discard pass over the whole image.
# Mounted nodev,nosuid: nothing in it is a device or setuid for the host.
# Reused as it is: images cached in it survive restarts (stop.sh only
# unmounts it). Made before the netns and the daemon: a data-root on the
# host's disk (an older start.sh's) means stopping that daemon first.
begin
[[ $DISK_SIZE =~ ^[1-9][0-9]*[KMGT]?$ ]] ||
  die "PIPEWRIGHT_SANDBOX_DISK is a size such as 40G, 512M or 1T, not '$DISK_SIZE'"
disk_bytes=$(numfmt --from=iec "$DISK_SIZE")
((disk_bytes >= 1 << 30)) || die "PIPEWRIGHT_SANDBOX_DISK=$DISK_SIZE is too small for a Docker data-root: 1G at least"
notes=()
# fs_bytes FILE-OR-DEVICE: the size of the ext4 file system in it (not of the
# file: a grow that stopped half-way leaves the file larger).
fs_bytes() {
  "${SUDO[@]}" dumpe2fs -h "$1" 2>/dev/null |
    awk -F: '/^Block count/ { n = $2 } /^Block size/ { b = $2 } END { printf "%.0f\n", n * b }'
}
# A sandbox daemon whose data-root is not the disk: stopped (stop.sh, under
# our lock: it inherits fd 8) with whatever it or a killed one left mounted
# there, and its data-root (on the host's disk) removed. Its images are
# lost: the Rust side copies images in from the host engine on demand.
if [[ -z $(disk_device) ]] && [[ -n $(daemon_pid) || -n $(mounts_under "$DATA_ROOT") ]]; then
  lost=$(timeout 10 "${SUDO[@]}" docker -H "$DOCKER_HOST_URL" images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null |
    grep -v '<none>' | sort | paste -sd ' ' || true)
  report disk "$DATA_ROOT is not on $DISK_IMAGE: stopping the sandbox daemon and what it mounted there (images it had: ${lost:-none})"
  bash "$(dirname "${BASH_SOURCE[0]}")/stop.sh" || die "steps/sandbox/stop.sh failed"
  [[ -z $(mounts_under "$DATA_ROOT") ]] || die "still mounted under $DATA_ROOT: $(mounts_under "$DATA_ROOT" | tr '\n' ' ')"
  begin
fi
if [[ -z $(disk_device) ]]; then
  [[ -z $(mounts_under "$DATA_ROOT") ]] ||
    die "$DATA_ROOT has mounts that are not $DISK_IMAGE's: $(mounts_under "$DATA_ROOT" | tr '\n' ' ')"
  if "${SUDO[@]}" test -d "$DATA_ROOT" && [[ -n $("${SUDO[@]}" ls -A "$DATA_ROOT") ]]; then
    old=$("${SUDO[@]}" du -sh --one-file-system "$DATA_ROOT" | cut -f 1)
    "${SUDO[@]}" rm -rf --one-file-system "$DATA_ROOT"
    notes+=("removed the old data-root on the host's disk ($old)")
  fi
  "${SUDO[@]}" mkdir -p "$DATA_ROOT"
  if ! "${SUDO[@]}" test -e "$DISK_IMAGE"; then
    # Made under another name and renamed: a half-made image is never used.
    "${SUDO[@]}" rm -f "$DISK_IMAGE.new"
    "${SUDO[@]}" truncate -s "$disk_bytes" "$DISK_IMAGE.new"
    "${SUDO[@]}" chmod 600 "$DISK_IMAGE.new"
    "${SUDO[@]}" mkfs.ext4 -q -F -m 0 -E lazy_itable_init=1,nodiscard -L pipewright-sbx "$DISK_IMAGE.new" ||
      die "mkfs.ext4 $DISK_IMAGE.new failed"
    "${SUDO[@]}" mv "$DISK_IMAGE.new" "$DISK_IMAGE"
    notes+=("made $DISK_IMAGE ($DISK_SIZE, sparse ext4)")
  else
    type=$("${SUDO[@]}" blkid -p -o value -s TYPE "$DISK_IMAGE" || true)
    [[ $type == ext4 ]] || die "$DISK_IMAGE is not an ext4 image (${type:-no file system}); remove it and start again for a new one"
    # Attached to a loop device yet not on DATA_ROOT: mounted elsewhere, or a
    # lazily unmounted file system still in use. A second mount of the same
    # ext4 through another loop device would corrupt it.
    for dev in $("${SUDO[@]}" losetup -n -O NAME -j "$DISK_IMAGE"); do
      where=$(awk -v d="$dev" '$1 == d { print $2 }' /proc/mounts | paste -sd ' ')
      [[ -z $where ]] || die "$DISK_IMAGE is mounted elsewhere ($dev on $where); unmount it first"
      "${SUDO[@]}" losetup -d "$dev" 2>/dev/null || true
    done
    busy=$("${SUDO[@]}" losetup -n -O NAME -j "$DISK_IMAGE" | paste -sd ' ')
    [[ -z $busy ]] || die "$DISK_IMAGE is still attached to $busy (a lazily unmounted file system still in use?); end its users (fuser -m $busy) and start again"
    # After a crash: the journal is replayed by the mount, the rest is checked here.
    rc=0
    "${SUDO[@]}" e2fsck -p "$DISK_IMAGE" >"$LOG_DIR/e2fsck.log" 2>&1 || rc=$?
    ((rc < 4)) || die "e2fsck -p $DISK_IMAGE: errors it cannot fix (exit $rc), see $LOG_DIR/e2fsck.log; e2fsck -f it by hand, or remove it for a new one"
    if ((rc != 0)); then notes+=("e2fsck repaired it (exit $rc, see $LOG_DIR/e2fsck.log)"); fi
    # A larger PIPEWRIGHT_SANDBOX_DISK grows it here, unmounted: online
    # growth needs CAP_SYS_RESOURCE, which not every machine's root has.
    size=$(fs_bytes "$DISK_IMAGE")
    if ((disk_bytes > size)); then
      if (($("${SUDO[@]}" stat -c %s "$DISK_IMAGE") < disk_bytes)); then
        "${SUDO[@]}" truncate -s "$disk_bytes" "$DISK_IMAGE"
      fi
      # resize2fs wants a fresh full check first.
      { "${SUDO[@]}" e2fsck -f -p "$DISK_IMAGE" && "${SUDO[@]}" resize2fs "$DISK_IMAGE" "$((disk_bytes / 1024))K"; } \
        >"$LOG_DIR/resize2fs.log" 2>&1 || die "could not grow $DISK_IMAGE to $DISK_SIZE, see $LOG_DIR/resize2fs.log"
      notes+=("grew it from $(numfmt --to=iec "$size") to $DISK_SIZE")
    fi
  fi
  "${SUDO[@]}" mount -o loop,nodev,nosuid "$DISK_IMAGE" "$DATA_ROOT" || die "mount -o loop $DISK_IMAGE $DATA_ROOT failed"
  # As dockerd makes its data-root.
  "${SUDO[@]}" chmod 710 "$DATA_ROOT"
  [[ -n $(disk_device) ]] || die "mounted $DISK_IMAGE on $DATA_ROOT, but it is not what $DATA_ROOT shows"
  # What was deleted in it (pruned builds, removed images) still takes room
  # on the host's disk: the image is sparse but the mount does not discard.
  # fstrim punches those blocks out of it (under a second for 2 GiB freed).
  trimmed=$("${SUDO[@]}" fstrim -v "$DATA_ROOT" 2>/dev/null | sed -n 's/.*: \(.*\) (.*) trimmed.*/\1/p' || true)
  if [[ -n $trimmed ]]; then notes+=("fstrim discarded its $trimmed of free space (handed back to the host's disk)"); fi
  what=mounted
else
  what="already mounted"
fi
dev=$(disk_device)
# Mounted already and the size asked for differs: grown online if root may
# (CAP_SYS_RESOURCE), else at the next start after stop.sh (above); a smaller
# size is only noted, as shrinking means a new image.
size=$(fs_bytes "$dev")
if ((disk_bytes > size)); then
  if (($("${SUDO[@]}" stat -c %s "$DISK_IMAGE") < disk_bytes)); then
    "${SUDO[@]}" truncate -s "$disk_bytes" "$DISK_IMAGE"
  fi
  if "${SUDO[@]}" losetup -c "$dev" && "${SUDO[@]}" resize2fs "$dev" >"$LOG_DIR/resize2fs.log" 2>&1; then
    notes+=("grew it online from $(numfmt --to=iec "$size") to $DISK_SIZE")
  else
    notes+=("NOTE: it is $(numfmt --to=iec "$size") and could not grow to $DISK_SIZE while mounted ($(grep -m 1 -i 'denied\|error\|fail' "$LOG_DIR/resize2fs.log" || echo "see $LOG_DIR/resize2fs.log")): run stop.sh, then start.sh, to grow it unmounted")
  fi
elif ((disk_bytes < size)); then
  notes+=("NOTE: it is $(numfmt --to=iec "$size"), more than PIPEWRIGHT_SANDBOX_DISK=$DISK_SIZE; to shrink it run stop.sh, remove $DISK_IMAGE and start.sh (its images are lost)")
fi
on_host=$("${SUDO[@]}" du -h "$DISK_IMAGE" | cut -f 1)
extra=
if ((${#notes[@]} > 0)); then extra=$(printf '; %s' "${notes[@]}"); fi
report disk "$what $DISK_IMAGE ($dev) on $DATA_ROOT: $(disk_usage), $on_host on the host's disk$extra"

# --- network namespace ----------------------------------------------------------
# Only `lo`, up (Docker's embedded DNS and the containers' own loopback need
# nothing from it, but a daemon with lo down cannot reach itself). No other
# interface and no default route: nothing in it leads out. The bridges and
# veths the daemon makes are its own networks.
begin
check_netns() {
  local others routes
  others=$("${SUDO[@]}" ip -n "$NETNS" -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' |
    grep -Ev '^(lo|br-[0-9a-f]+|veth[0-9a-f]+)$' || true)
  [[ -z $others ]] || die "netns $NETNS has interfaces that are not the daemon's: $(echo "$others" | tr '\n' ' ')"
  routes=$("${SUDO[@]}" ip -n "$NETNS" route show default)
  [[ -z $routes ]] || die "netns $NETNS has a default route: $routes"
}
# Nothing in the netns serves containers (dockerd and containerd listen on
# unix sockets; a network's DNS server lives in each container's own netns),
# but whatever did listen there (docker-proxy for a published port, a
# debugging tool) would be reachable from every build's network through its
# gateway address, --internal or not: measured with a listener in the netns.
# So the netns drops what comes in from the bridges, but for replies to
# connections it opened itself. Docker leaves INPUT alone; rewritten on
# every start.
guard_input() {
  local cmd
  for cmd in iptables ip6tables; do
    in_ns() { "${SUDO[@]}" nsenter --net="/run/netns/$NETNS" "$cmd" -w "$@"; }
    in_ns -N PIPEWRIGHT-INPUT 2>/dev/null || in_ns -F PIPEWRIGHT-INPUT
    in_ns -A PIPEWRIGHT-INPUT -i br-+ -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
    in_ns -A PIPEWRIGHT-INPUT -i br-+ -j DROP
    in_ns -C INPUT -j PIPEWRIGHT-INPUT 2>/dev/null || in_ns -I INPUT -j PIPEWRIGHT-INPUT
  done
}
if [[ -n $(netns_inode) ]]; then
  what=present
else
  # `ip netns exec` would remount /sys, after which dockerd finds no devices
  # cgroup; the namespace is only made with ip, and entered with nsenter.
  "${SUDO[@]}" ip netns add "$NETNS" || [[ -n $(netns_inode) ]] || die "ip netns add $NETNS failed"
  what=created
fi
"${SUDO[@]}" ip -n "$NETNS" link set lo up
check_netns
guard_input || die "could not write the INPUT rules of netns $NETNS"
report netns "$what $NETNS (lo up, no other interface, no route out; INPUT from bridges dropped)"

# --- pause image ----------------------------------------------------------------------
# Every untrusted build's steps share one network namespace, held by a container of this image (as a
# Kubernetes pod's pause container): joining an existing namespace costs a gVisor step about 0.3 s less
# than an endpoint of its own on the build's network (src/executor/sandbox.rs). One static busybox
# and its `sleep`; imported, since the sandbox's engine cannot pull.
PAUSE_IMAGE=pipewright/pause:1
ensure_pause_image() {
  begin
  if "${SUDO[@]}" docker -H "$DOCKER_HOST_URL" image inspect "$PAUSE_IMAGE" >/dev/null 2>&1; then
    report pause "present ($PAUSE_IMAGE)"
    return
  fi
  local bb='' cand tmp
  for cand in /bin/busybox /usr/bin/busybox; do
    if [[ -x $cand ]] && ! ldd "$cand" >/dev/null 2>&1; then bb=$cand; break; fi
  done
  if [[ -z $bb ]]; then
    apt_install busybox-static
    bb=/bin/busybox
  fi
  tmp=$(mktemp -d)
  mkdir -p "$tmp/bin"
  cp "$bb" "$tmp/bin/busybox"
  ln -s busybox "$tmp/bin/sleep"
  tar -C "$tmp" -c . | "${SUDO[@]}" docker -H "$DOCKER_HOST_URL" import \
    --change 'CMD ["/bin/sleep", "2147483647"]' - "$PAUSE_IMAGE" >/dev/null ||
    { rm -rf "$tmp"; die "could not import $PAUSE_IMAGE into the sandbox's engine"; }
  rm -rf "$tmp"
  report pause "imported $PAUSE_IMAGE (static busybox from $bb)"
}

begin
pid=$(daemon_pid)
if [[ -n $pid ]] && healthy; then
  note=
  if ! "${SUDO[@]}" cmp -s "$new_config" "$CONFIG"; then
    note="; NOTE: $CONFIG differs from what this script writes now: run steps/sandbox/stop.sh, then start.sh, to apply it"
  fi
  ensure_pause_image
  report ready "already running at $DOCKER_HOST_URL (pid $pid, netns $NETNS, Default Runtime: $DEFAULT_RUNTIME, data-root on $DISK_IMAGE, log $LOG$note)"
  exit 0
fi
if [[ -n $pid ]] && ! in_netns "$pid"; then
  die "dockerd pid $pid uses $CONFIG but is not in netns $NETNS; run steps/sandbox/stop.sh"
fi
running_runtime=$(default_runtime || true)
if [[ -n $pid && -n $running_runtime ]]; then
  die "the sandbox dockerd (pid $pid) runs with Default Runtime: $running_runtime, not $DEFAULT_RUNTIME; run steps/sandbox/stop.sh, then start.sh"
fi

# --- daemon ---------------------------------------------------------------------------
begin
if [[ -n $pid ]]; then
  # Alive but not answering yet: a start in progress, or a hung daemon.
  what="waited for the running dockerd"
else
  "${SUDO[@]}" mkdir -p "$DATA_ROOT" "$EXEC_ROOT"
  "${SUDO[@]}" cp "$new_config" "$CONFIG"
  "${SUDO[@]}" chmod 644 "$CONFIG"
  # A pidfile left by a killed daemon would stop the new one.
  "${SUDO[@]}" rm -f "$PIDFILE" "$LAUNCH_PID"
  write_no_runc
  echo "--- $(date -Is) start.sh: dockerd --config-file $CONFIG in netns $NETNS" >>"$LOG"
  # As .ci/setup's start_daemon: its own session, stdin /dev/null, stdout and
  # stderr to the log, every other inherited descriptor (the lock on fd 8,
  # CI's pipes) closed, so whoever runs us sees their pipes close. env sets
  # the PATH without runc; nsenter --net joins the netns and execs dockerd
  # (env and nsenter both exec, no fork), so the pid in LAUNCH_PID is
  # dockerd's. No --mount: the daemon's mounts are the host's, where stop.sh
  # finds them. (dockerd writes its own PIDFILE, and refuses to start if that
  # names a live process, itself included: hence a second file.)
  # shellcheck disable=SC2016 # $$, $0 and $@ are for the inner bash
  "${SUDO[@]}" setsid -f bash -c '
    for fd in $(ls /proc/$$/fd); do
      if ((fd > 2)); then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    echo $$ >"$0"
    exec "$@"' "$LAUNCH_PID" env PATH="$NO_RUNC_DIR:$PATH" \
    nsenter --net="/run/netns/$NETNS" dockerd --config-file "$CONFIG" \
    </dev/null >>"$LOG" 2>&1
  what=started
fi
fail() {
  tail -n 5 "$LOG" >&2 || true
  die "$*; see $LOG"
}
deadline=$((SECONDS + 60))
until healthy; do
  ((SECONDS < deadline)) ||
    fail "the sandbox dockerd is not answering on $DOCKER_HOST_URL with Default Runtime: $DEFAULT_RUNTIME after 60 s ($what)"
  # A daemon that exited (bad config, a clash) is not waited for.
  # (No LAUNCH_PID yet: setsid -f has not got that far.)
  if [[ $what == started && -s $LAUNCH_PID ]] && ! alive "$(cat "$LAUNCH_PID")"; then
    fail "the sandbox dockerd exited at start"
  fi
  sleep 0.2
done
pid=$(daemon_pid)
report dockerd "$what, pid $pid in netns $NETNS (config $CONFIG, log $LOG)"
ensure_pause_image
report ready "$DOCKER_HOST_URL (Default Runtime: $DEFAULT_RUNTIME, data-root on $DISK_IMAGE, server $("${SUDO[@]}" docker -H "$DOCKER_HOST_URL" version -f '{{.Server.Version}}'))"
