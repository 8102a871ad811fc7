#!/usr/bin/env bash
# Builds the base image local/python:3.11 that Python build steps run in
# (python3, pytest, pip, flake8 from Debian bookworm). Nothing can be pulled
# from a registry here (docs/SPEC.md §15), so the root file system is made with
# mmdebstrap from Debian's packages and imported into Docker.
#
# usage: steps/python/build.sh [--force] [IMAGE]   (default IMAGE: local/python:3.11)
# Idempotent: does nothing if IMAGE exists, unless --force.
# PIPEWRIGHT_DEBIAN_MIRROR overrides the Debian mirror.
set -euo pipefail

NAME=python/build.sh
# shellcheck source=steps/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
begin local/python:3.11 9 "$@"
ensure_mmdebstrap

tarball="$tmp/py.tar"
start=$(date +%s)
bookworm_rootfs "$tarball" "" --variant=apt --include=python3,python3-pytest,python3-pip,flake8
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
