#!/usr/bin/env bash
# Builds the base image local/busybox:1 that small build steps run in.
# Nothing can be pulled from a registry here (docs/SPEC.md §15), so the image is made
# from Debian's statically linked busybox: one binary plus a link per applet.
#
# usage: steps/busybox/build.sh [--force] [IMAGE]   (default IMAGE: local/busybox:1)
# Idempotent: does nothing if IMAGE exists, unless --force.
set -euo pipefail

NAME=busybox/build.sh
# shellcheck source=steps/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
begin local/busybox:1 7 "$@"

# A static binary is needed: the image has no libc for a dynamic one to load.
is_static() {
  [[ -x $1 ]] && ! LC_ALL=C ldd "$1" >/dev/null 2>&1
}

# busybox-static ships /bin/busybox (also reachable as /usr/bin/busybox on
# merged-/usr systems). It conflicts with the dynamic `busybox` package, so if
# that one is installed we unpack busybox-static into the temp dir instead of
# replacing a package the machine may rely on.
BB=
for cand in /bin/busybox /usr/bin/busybox; do
  if is_static "$cand"; then BB=$cand; break; fi
done
if [[ -z $BB ]]; then
  if dpkg-query -W -f='${Status}' busybox 2>/dev/null | grep -q 'ok installed'; then
    echo "busybox/build.sh: dynamic busybox installed; unpacking busybox-static beside it"
    apt_get update
    (cd "$tmp" && apt_get download busybox-static)
    dpkg-deb -x "$tmp"/busybox-static_*.deb "$tmp/deb"
    BB="$tmp/deb/bin/busybox"
  else
    echo "busybox/build.sh: installing busybox-static"
    apt_install busybox-static
    BB=/bin/busybox
  fi
  is_static "$BB" || { echo "busybox/build.sh: $BB is not a static binary" >&2; exit 1; }
fi

root="$tmp/root"
mkdir -p "$root/bin" "$root/tmp"
chmod 1777 "$root/tmp"
cp "$BB" "$root/bin/busybox"
# One link per applet; skip `busybox` itself or the link would replace the binary.
n=0
while read -r applet; do
  [[ -z $applet || $applet == busybox ]] && continue
  ln -s busybox "$root/bin/$applet"
  n=$((n + 1))
done < <("$root/bin/busybox" --list)

old_id=$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)
# Imported images have no PATH unless given one.
tar -C "$root" --numeric-owner --owner=0 --group=0 -c . |
  docker import --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' - "$IMAGE" >/dev/null

# Check the image runs a shell; drop it if not, so a later run rebuilds it.
if [[ $(docker run --rm "$IMAGE" sh -c 'echo ok') != ok ]]; then
  echo "busybox/build.sh: $IMAGE does not run 'sh -c echo ok'; removing it" >&2
  docker rmi "$IMAGE" >/dev/null 2>&1 || true
  exit 1
fi
# With --force the previous image is left untagged; remove it (ignored if in use).
new_id=$(docker image inspect -f '{{.Id}}' "$IMAGE")
if [[ -n $old_id && $old_id != "$new_id" ]]; then
  docker rmi "$old_id" >/dev/null 2>&1 || true
fi
echo "busybox/build.sh: built $IMAGE ($n applets, from $BB)"
