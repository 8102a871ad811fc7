# shellcheck shell=bash disable=SC2154
# Shared by the steps/*/build.sh scripts. Set NAME (the script's name in
# messages), source this file, then call `begin` with the script's arguments.

# apt_get ARGS...: apt-get as root, non-interactive; its chatter goes to a log
# that is shown only if it fails.
apt_get() {
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q "$@" >>"$tmp/apt.log" 2>&1 ||
    { tail -n 20 "$tmp/apt.log" >&2; echo "$NAME: apt-get $* failed" >&2; exit 1; }
}

# apt_install PACKAGE...: installs from Debian.
apt_install() {
  apt_get update
  apt_get install -y --no-install-recommends "$@"
}

# ensure_mmdebstrap: installs mmdebstrap if it is missing.
ensure_mmdebstrap() {
  if ! command -v mmdebstrap >/dev/null 2>&1; then
    echo "$NAME: installing mmdebstrap"
    apt_install mmdebstrap
  fi
}

# debian_mirror: prints the mirror to give mmdebstrap, or nothing. With none
# given, mmdebstrap uses deb.debian.org and adds the bookworm-updates and
# security suites itself. Only if the machine's apt sources point elsewhere (a
# local mirror or proxy) is that mirror used. PIPEWRIGHT_DEBIAN_MIRROR wins.
debian_mirror() {
  if [[ -n ${PIPEWRIGHT_DEBIAN_MIRROR:-} ]]; then
    echo "$PIPEWRIGHT_DEBIAN_MIRROR"
    return
  fi
  local host_mirror
  host_mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
    awk '/^URIs:/ && $2 ~ /\/debian\/?$/ { print $2; exit }')
  if [[ -z $host_mirror ]]; then
    host_mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      awk '$1 == "deb" && $2 ~ /^http/ && $2 ~ /\/debian\/?$/ { print $2; exit }')
  fi
  case "$host_mirror" in
    "" | http://deb.debian.org/debian* | https://deb.debian.org/debian*) ;;
    *) echo "$host_mirror" ;;
  esac
}

# begin DEFAULT_IMAGE HELP_LINES "$@": reads a build script's arguments
# ([--force] [IMAGE]; --help prints lines 2..HELP_LINES of the script's header),
# then sets IMAGE, SUDO (empty as root, else (sudo): apt-get and mmdebstrap's
# root mode need root) and tmp (a scratch directory removed on exit). Exits at
# once if IMAGE exists, unless --force. Needs NAME.
begin() {
  local default=$1 help_lines=$2 force=0 arg
  shift 2
  IMAGE=$default
  for arg in "$@"; do
    case "$arg" in
      --force) force=1 ;;
      -h | --help) sed -n "2,${help_lines}s/^# \{0,1\}//p" "$0"; exit 0 ;;
      -*) echo "$NAME: unknown option $arg" >&2; exit 2 ;;
      *) IMAGE=$arg ;;
    esac
  done
  SUDO=()
  [[ $EUID -eq 0 ]] || SUDO=(sudo)
  if [[ $force -eq 0 ]] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "$NAME: $IMAGE already present"
    exit 0
  fi
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/pipewright-${NAME%%/*}.XXXXXX")
  # What mmdebstrap staged as root may need sudo to go.
  trap 'rm -rf "$tmp" 2>/dev/null || "${SUDO[@]}" rm -rf "$tmp"' EXIT
}

# dpkg options for a root file system like Debian's -slim images: no manuals,
# documentation or translations. They stay in the image, so packages added
# later are slim too.
# shellcheck disable=SC2034 # used by the scripts that source this file
SLIM_DPKG_OPTIONS=(
  --dpkgopt='path-exclude=/usr/share/man/*'
  --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/locale/*'
)

# bookworm_rootfs TARBALL WHAT [VAR=VALUE...] [MMDEBSTRAP-OPTION...]: writes a
# Debian bookworm root file system to TARBALL with mmdebstrap (as root, from
# debian_mirror's mirror, VARs in its environment for its hooks). WHAT is added
# to the progress line. On failure shows mmdebstrap's output and exits. stdin
# is /dev/null: mmdebstrap reads sources from stdin only when told to ("-"),
# but CI has no stdin and apt must never wait on a prompt.
bookworm_rootfs() {
  local tarball=$1 what=$2 mirror
  shift 2
  local environment=()
  while [[ $# -gt 0 && $1 == [A-Za-z_]*=* ]]; do
    environment+=("$1")
    shift
  done
  mirror=$(debian_mirror)
  local mirror_args=()
  if [[ -n $mirror ]]; then mirror_args=("$mirror"); fi
  echo "$NAME: mmdebstrap bookworm (${mirror:-deb.debian.org + updates + security})$what"
  if ! "${SUDO[@]}" env "${environment[@]}" mmdebstrap --quiet "$@" \
    bookworm "$tarball" "${mirror_args[@]}" </dev/null >"$tmp/mmdebstrap.log" 2>&1; then
    echo "$NAME: mmdebstrap failed; its output:" >&2
    tail -n 40 "$tmp/mmdebstrap.log" >&2
    exit 1
  fi
}
