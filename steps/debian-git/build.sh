#!/usr/bin/env bash
# Builds local/debian-git:bookworm, a small Debian bookworm with the git CLI and
# ca-certificates: the runtime base of pipewright's own image (the Dockerfile's
# RUNTIME_IMAGE), which then needs no apt at build time. Nothing can be pulled
# from a registry here (SPEC §15), so the root file system is made with
# mmdebstrap (minbase, no documentation) and imported into Docker.
#
# usage: steps/debian-git/build.sh [--force] [IMAGE]   (default IMAGE: local/debian-git:bookworm)
# Idempotent: does nothing if IMAGE exists, unless --force.
# PIPEWRIGHT_DEBIAN_MIRROR overrides the Debian mirror.
set -euo pipefail

IMAGE=local/debian-git:bookworm
FORCE=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    -h | --help) sed -n '2,10s/^# \{0,1\}//p' "$0"; exit 0 ;;
    -*) echo "debian-git/build.sh: unknown option $arg" >&2; exit 2 ;;
    *) IMAGE=$arg ;;
  esac
done

# mmdebstrap must run as root here (its root mode: no fakechroot/unshare setup).
SUDO=()
[[ $EUID -eq 0 ]] || SUDO=(sudo)

if [[ $FORCE -eq 0 ]] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "debian-git/build.sh: $IMAGE already present"
  exit 0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pipewright-debian-git.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

NAME=debian-git/build.sh
# shellcheck source=steps/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
ensure_mmdebstrap

mirror=$(debian_mirror)

tarball="$tmp/rootfs.tar"

start=$(date +%s)
mirror_args=()
[[ -n $mirror ]] && mirror_args=("$mirror")
echo "debian-git/build.sh: mmdebstrap bookworm (${mirror:-deb.debian.org + updates + security})"
# Like Debian's -slim images: no manuals, documentation or translations (the
# dpkg options stay in the image, so packages added later are slim too); apt's
# lists and caches are removed by mmdebstrap's own cleanup. stdin from
# /dev/null: CI has no stdin and apt must never wait on a prompt.
if ! "${SUDO[@]}" mmdebstrap --quiet --variant=minbase \
  --include=git,ca-certificates \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  bookworm "$tarball" "${mirror_args[@]}" </dev/null >"$tmp/mmdebstrap.log" 2>&1; then
  echo "debian-git/build.sh: mmdebstrap failed; its output:" >&2
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
