#!/usr/bin/env bash
# Starts the sandbox Docker daemon that untrusted builds (fork pull requests)
# run their step containers on: a second dockerd whose default runtime is
# gVisor's runsc, inside a network namespace of its own with only `lo`.
#
# usage: steps/sandbox/start.sh   (as root, or a user with sudo)
# Idempotent: does nothing if the daemon is already running and healthy.
# Prints one line per item; the last one names the socket
# (default unix:///run/pipewright-sandbox/docker.sock).
# Environment: PIPEWRIGHT_SANDBOX_NETNS (pipewright-sandbox),
# PIPEWRIGHT_SANDBOX_STATE (/var/lib/pipewright-sandbox: data-root and
# daemon.json), PIPEWRIGHT_SANDBOX_RUN (/run/pipewright-sandbox: socket,
# exec-root, pidfile), PIPEWRIGHT_SANDBOX_LOG_DIR (where sandbox-dockerd.log
# goes), PIPEWRIGHT_SANDBOX_POOL (10.210.0.0/16: the networks' /24s),
# PIPEWRIGHT_SANDBOX_DEFAULT_RUNTIME (runsc, or runsc-disk: the comments on
# daemon.json below say why).
# Runtimes: runsc (root file system in memory) and runsc-disk (on disk).
# steps/sandbox/stop.sh undoes all of it.
set -euo pipefail

NAME=sandbox
# shellcheck source=steps/sandbox/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

case "${1:-}" in
  -h | --help) sed -n '2,18s/^# \{0,1\}//p' "$0"; exit 0 ;;
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
# runsc --overlay2=root:memory (the runtime "runsc", default): writes to a
#   container's root file system live in the sandbox's memory, so they count
#   against its --memory limit (2 GiB written to /tmp under --memory 512m is
#   OOMKilled) instead of filling the host's disk. But Docker never sees them:
#   the classic builder commits an empty layer for every RUN (a later RUN
#   finds no file the earlier one wrote), and docker commit and docker cp
#   find nothing a container wrote outside its mounts. Bind mounts and
#   volumes are not affected (they go through the gofer to the host). runsc
#   mounts its own tmpfs on /tmp in both runtimes: memory, too.
# runsc --overlay2=none (the runtime "runsc-disk"): root file system writes go
#   to the container's overlay2 upper directory on the host disk, unbounded,
#   as with runc. Builds, commit and cp work. A container can ask for it by
#   name; PIPEWRIGHT_SANDBOX_DEFAULT_RUNTIME=runsc-disk makes it the default
#   (and so the builder's), for a daemon that must build images.
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

# healthy: answers on our socket with DEFAULT_RUNTIME as its default, and its
# dockerd is in our netns (a daemon outside it would reach the host).
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
  [[ -n $pid ]] && in_netns "$pid" && [[ $(default_runtime) == "$DEFAULT_RUNTIME" ]]
}

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

begin
pid=$(daemon_pid)
if [[ -n $pid ]] && healthy; then
  note=
  if ! "${SUDO[@]}" cmp -s "$new_config" "$CONFIG"; then
    note="; NOTE: $CONFIG differs from what this script writes now: run steps/sandbox/stop.sh, then start.sh, to apply it"
  fi
  report ready "already running at $DOCKER_HOST_URL (pid $pid, netns $NETNS, Default Runtime: $DEFAULT_RUNTIME, log $LOG$note)"
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
report ready "$DOCKER_HOST_URL (Default Runtime: $DEFAULT_RUNTIME, server $("${SUDO[@]}" docker -H "$DOCKER_HOST_URL" version -f '{{.Server.Version}}'))"
