#!/usr/bin/env bash
# Builds local/debian-git:bookworm, a small Debian bookworm with the git CLI and
# ca-certificates: the runtime base of pipewright's own image (the Dockerfile's
# RUNTIME_IMAGE), which then needs no apt at build time. Nothing can be pulled
# from a registry here (docs/SPEC.md §15), so the root file system is made with
# mmdebstrap (minbase, no documentation) and imported into Docker.
#
# usage: steps/debian-git/build.sh [--force] [IMAGE]   (default IMAGE: local/debian-git:bookworm)
# Idempotent: does nothing if IMAGE exists, unless --force.
# PIPEWRIGHT_DEBIAN_MIRROR overrides the Debian mirror.
set -euo pipefail

NAME=debian-git/build.sh
# shellcheck source=steps/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
begin local/debian-git:bookworm 10 "$@"
ensure_mmdebstrap

tarball="$tmp/rootfs.tar"
start=$(date +%s)
# apt's lists and caches are removed by mmdebstrap's own cleanup.
bookworm_rootfs "$tarball" "" --variant=minbase --include=git,ca-certificates "${SLIM_DPKG_OPTIONS[@]}"
mid=$(date +%s)
size=$(du -h "$tarball" | cut -f1)

old_id=$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)
# Imported images have no PATH unless given one.
docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  "$tarball" "$IMAGE" >/dev/null
rm -f "$tarball"

# Check git runs; drop the image if not, so a later run rebuilds it.
if ! docker run --rm "$IMAGE" git --version >/dev/null; then
  echo "debian-git/build.sh: 'git --version' fails in $IMAGE; removing it" >&2
  docker rmi "$IMAGE" >/dev/null 2>&1 || true
  exit 1
fi
# With --force the previous image is left untagged; remove it (ignored if in use).
new_id=$(docker image inspect -f '{{.Id}}' "$IMAGE")
if [[ -n $old_id && $old_id != "$new_id" ]]; then
  docker rmi "$old_id" >/dev/null 2>&1 || true
fi
end=$(date +%s)
image_size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
echo "debian-git/build.sh: built $IMAGE (mmdebstrap $((mid - start))s, tarball $size," \
  "image $((image_size / 1000000)) MB, import+check $((end - mid))s)"
