#!/usr/bin/env bash
# Builds the base image local/python:3.11 that Python build steps run in
# (python3, pytest, pip, flake8 from Debian bookworm). Nothing can be pulled
# from a registry here (SPEC §15), so the root file system is made with
# mmdebstrap from Debian's packages and imported into Docker.
#
# usage: steps/python/build.sh [--force] [IMAGE]   (default IMAGE: local/python:3.11)
# Idempotent: does nothing if IMAGE exists, unless --force.
# PIPEWRIGHT_DEBIAN_MIRROR overrides the Debian mirror.
set -euo pipefail

IMAGE=local/python:3.11
FORCE=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    -h | --help) sed -n '2,9s/^# \{0,1\}//p' "$0"; exit 0 ;;
    -*) echo "python/build.sh: unknown option $arg" >&2; exit 2 ;;
    *) IMAGE=$arg ;;
  esac
done

# mmdebstrap must run as root here (its root mode: no fakechroot/unshare setup).
SUDO=()
[[ $EUID -eq 0 ]] || SUDO=(sudo)

if [[ $FORCE -eq 0 ]] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "python/build.sh: $IMAGE already present"
  exit 0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pipewright-python.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

NAME=python/build.sh
# shellcheck source=steps/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
ensure_mmdebstrap

mirror=$(debian_mirror)

tarball="$tmp/py.tar"

start=$(date +%s)
mirror_args=()
[[ -n $mirror ]] && mirror_args=("$mirror")
echo "python/build.sh: mmdebstrap bookworm (${mirror:-deb.debian.org + updates + security})"
# stdin from /dev/null: mmdebstrap reads sources from stdin only when told to
# ("-"), but CI has no stdin and apt must never wait on a prompt.
if ! "${SUDO[@]}" mmdebstrap --quiet --variant=apt \
  --include=python3,python3-pytest,python3-pip,flake8 \
  bookworm "$tarball" "${mirror_args[@]}" </dev/null >"$tmp/mmdebstrap.log" 2>&1; then
  echo "python/build.sh: mmdebstrap failed; its output:" >&2
  tail -n 40 "$tmp/mmdebstrap.log" >&2
  exit 1
fi
mid=$(date +%s)
size=$(du -h "$tarball" | cut -f1)

old_id=$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)
# Imported images have no PATH unless given one.
docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  "$tarball" "$IMAGE" >/dev/null
rm -f "$tarball"

# Check pytest imports; drop the image if not, so a later run rebuilds it.
if ! docker run --rm "$IMAGE" python3 -c 'import pytest' >/dev/null; then
  echo "python/build.sh: 'import pytest' fails in $IMAGE; removing it" >&2
  docker rmi "$IMAGE" >/dev/null 2>&1 || true
  exit 1
fi
# With --force the previous image is left untagged; remove it (ignored if in use).
new_id=$(docker image inspect -f '{{.Id}}' "$IMAGE")
if [[ -n $old_id && $old_id != "$new_id" ]]; then
  docker rmi "$old_id" >/dev/null 2>&1 || true
fi
end=$(date +%s)
echo "python/build.sh: built $IMAGE (mmdebstrap $((mid - start))s, tarball $size, import+check $((end - mid))s)"
