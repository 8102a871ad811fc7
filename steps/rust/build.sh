#!/usr/bin/env bash
# Builds local/rust:1.95, the build base of pipewright's own image (the
# Dockerfile's BUILD_IMAGE): Debian bookworm with a C toolchain (for the
# bundled C of aws-lc-sys and libsqlite3-sys), git and ca-certificates, plus
# the host's Rust toolchain (rustc, cargo and the standard library; no docs,
# sources, clippy or rustfmt) under /usr/local. Nothing can be pulled from a
# registry here (docs/SPEC.md §15), so the root file system is made with mmdebstrap
# and imported into Docker.
#
# usage: steps/rust/build.sh [--force] [IMAGE]   (default IMAGE: local/rust:1.95)
# Idempotent: does nothing if IMAGE exists, unless --force.
# The toolchain is the host's active one if it is Rust 1.95, else rustup's 1.95
# (installed with the minimal profile if missing).
# PIPEWRIGHT_DEBIAN_MIRROR overrides the Debian mirror.
set -euo pipefail

RUST_VERSION=1.95
DEBIAN_PACKAGES=gcc,libc6-dev,make,pkg-config,git,ca-certificates

NAME=rust/build.sh
# shellcheck source=steps/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
begin local/rust:1.95 15 "$@"
ensure_mmdebstrap

start=$(date +%s)

# --- the host's toolchain ------------------------------------------------------
is_wanted() { [[ $("$1" --version 2>/dev/null) == "rustc $RUST_VERSION."* ]]; }
sysroot=
if command -v rustc >/dev/null 2>&1 && is_wanted rustc; then
  sysroot=$(rustc --print sysroot)
elif command -v rustup >/dev/null 2>&1; then
  echo "rust/build.sh: the active rustc is not $RUST_VERSION; using rustup's $RUST_VERSION"
  rustup toolchain install "$RUST_VERSION" --profile minimal >"$tmp/rustup.log" 2>&1 ||
    { tail -n 20 "$tmp/rustup.log" >&2; echo "rust/build.sh: rustup toolchain install $RUST_VERSION failed" >&2; exit 1; }
  sysroot=$(rustup run "$RUST_VERSION" rustc --print sysroot)
else
  echo "rust/build.sh: needs Rust $RUST_VERSION on the host (rustc, or rustup to install it)" >&2
  exit 1
fi
is_wanted "$sysroot/bin/rustc" || { echo "rust/build.sh: $sysroot/bin/rustc is not Rust $RUST_VERSION" >&2; exit 1; }
[[ -x $sysroot/bin/cargo ]] || { echo "rust/build.sh: no cargo in $sysroot/bin" >&2; exit 1; }

# Staged as the image's /usr/local: rustc finds its standard library relative
# to its own binary (../lib/rustlib), so the layout is the toolchain's own.
# Symlinked toolchains (rustup's version aliases) are followed.
stage="$tmp/usr-local"
mkdir -p "$stage/bin" "$stage/lib"
cp -L "$sysroot/bin/rustc" "$sysroot/bin/cargo" "$stage/bin/"
cp -L "$sysroot"/lib/*.so* "$stage/lib/"
cp -RL "$sysroot/lib/rustlib" "$stage/lib/"
rm -rf "$stage/lib/rustlib/src" "$stage/lib/rustlib/etc"
toolchain_size=$(du -sh "$stage" | cut -f1)
rust_version=$("$stage/bin/rustc" --version)

# --- Debian root file system -----------------------------------------------------
tarball="$tmp/rootfs.tar"
# The toolchain is synced into /usr/local before the tarball is written.
bookworm_rootfs "$tarball" " + $rust_version" --variant=minbase --include="$DEBIAN_PACKAGES" \
  "${SLIM_DPKG_OPTIONS[@]}" --customize-hook="sync-in $stage /usr/local"
mid=$(date +%s)
size=$(du -h "$tarball" | cut -f1)

old_id=$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)
# Imported images have no PATH unless given one. CARGO_HOME as in the official
# rust images, so what `cargo install` puts there is on PATH.
docker import \
  --change 'ENV CARGO_HOME=/usr/local/cargo' \
  --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  "$tarball" "$IMAGE" >/dev/null
rm -f "$tarball"

# Check that rustc links a program (compiler, standard library, cc as linker);
# drop the image if not, so a later run rebuilds it.
check='cd /tmp && echo "fn main() { println!(\"ok\") }" >check.rs && rustc -O check.rs && ./check && cargo --version'
if ! out=$(docker run --rm "$IMAGE" sh -c "$check" 2>&1) || [[ $out != ok$'\n'cargo* ]]; then
  echo "rust/build.sh: $IMAGE cannot build a program; removing it. Output:" >&2
  echo "$out" >&2
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
echo "rust/build.sh: built $IMAGE ($rust_version, toolchain $toolchain_size; toolchain+mmdebstrap $((mid - start))s," \
  "tarball $size, image $((image_size / 1000000)) MB, import+check $((end - mid))s)"
