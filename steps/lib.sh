# shellcheck shell=bash disable=SC2154
# Shared by the steps/*/build.sh scripts that make a Debian root file system with
# mmdebstrap. Source it after setting NAME (the script's name in messages), SUDO
# (an array: empty as root, else (sudo)) and tmp (the script's scratch directory).

# apt_install PACKAGE...: installs from Debian; apt's chatter goes to a log that
# is shown only if apt fails.
apt_install() {
  { "${SUDO[@]}" apt-get -q update &&
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get -q install -y --no-install-recommends "$@"; } >>"$tmp/apt.log" 2>&1 ||
    { tail -n 20 "$tmp/apt.log" >&2; echo "$NAME: installing $* failed" >&2; exit 1; }
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
