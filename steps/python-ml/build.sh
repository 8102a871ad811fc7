#!/usr/bin/env bash
# Builds the ML base image local/python-ml:3.11 that pipeline components and
# end-to-end tests run in: python3, pip, pytest, flake8, scikit-learn, pandas
# and PyYAML from Debian bookworm, plus the Kubeflow Pipelines SDK (kfp 2.x,
# versions pinned in kfp-constraints.txt). Nothing can be pulled from a
# registry and a container cannot reach PyPI (docs/SPEC.md §15), so the kfp wheels are
# downloaded on the host and installed by the new system's own pip, offline,
# before the root file system made by mmdebstrap is imported into Docker.
#
# usage: steps/python-ml/build.sh [--force] [IMAGE]   (default IMAGE: local/python-ml:3.11)
# Idempotent: does nothing if IMAGE exists, unless --force.
# PIPEWRIGHT_DEBIAN_MIRROR overrides the Debian mirror.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CONSTRAINTS=$HERE/kfp-constraints.txt
KFP_VERSION=$(awk -F'==' '$1 == "kfp" { print $2 }' "$CONSTRAINTS")
[[ -n $KFP_VERSION ]] || { echo "python-ml/build.sh: no kfp==VERSION line in $CONSTRAINTS" >&2; exit 1; }
# Published only as source: built into a (pure Python) wheel on the host.
SDIST_ONLY=(kfp-server-api)
# bookworm's python3, and the machine's architecture (mmdebstrap builds native).
PY_VERSION=3.11
PY_ABI=cp311
PLATFORM=manylinux2014_$(uname -m)
DEBIAN_PACKAGES=python3,python3-pip,python3-pytest,flake8,python3-sklearn,python3-pandas,python3-yaml

NAME=python-ml/build.sh
# shellcheck source=steps/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
begin local/python-ml:3.11 12 "$@"
ensure_mmdebstrap
# Any host pip will do for downloading: it is told the image's Python and platform.
if ! python3 -m pip --version >/dev/null 2>&1; then
  echo "python-ml/build.sh: installing python3-pip (to download wheels)"
  apt_install python3-pip
fi

start=$(date +%s)

# --- kfp wheels, on the host -------------------------------------------------
wheels="$tmp/wheels"
mkdir -p "$wheels"
echo "python-ml/build.sh: downloading kfp $KFP_VERSION wheels for CPython $PY_VERSION $PLATFORM"
if ! python3 -m pip wheel --quiet --no-deps --constraint "$CONSTRAINTS" \
  --wheel-dir "$wheels" "${SDIST_ONLY[@]}" >"$tmp/pip.log" 2>&1 ||
  ! python3 -m pip download --quiet --only-binary=:all: \
    --python-version "$PY_VERSION" --implementation cp --abi "$PY_ABI" --platform "$PLATFORM" \
    --find-links "$wheels" --constraint "$CONSTRAINTS" --dest "$wheels" \
    "kfp==$KFP_VERSION" >>"$tmp/pip.log" 2>&1; then
  echo "python-ml/build.sh: downloading the kfp wheels failed; pip's output:" >&2
  tail -n 40 "$tmp/pip.log" >&2
  exit 1
fi
n_wheels=$(find "$wheels" -name '*.whl' | wc -l)
wheels_size=$(du -sh "$wheels" | cut -f1)
t_wheels=$(date +%s)

# --- root file system ----------------------------------------------------------
# Run by mmdebstrap (sh, $1 = the new root, /proc, /sys and /dev mounted) after
# the Debian packages are in: the system's own pip installs kfp from the wheels
# only (--no-index), into /usr/local, keeping every Debian package that already
# satisfies kfp's requirements. env -i keeps the host's PIP_* settings out.
# shellcheck disable=SC2016 # expanded by mmdebstrap's sh, not here
install_hook='set -e
t0=$(date +%s)
mkdir "$1/tmp/wheels"
cp "$PW_WHEELS"/*.whl "$1/tmp/wheels/"
chroot "$1" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  HOME=/root LC_ALL=C.UTF-8 python3 -m pip install --no-index --find-links /tmp/wheels \
  --no-cache-dir --break-system-packages --root-user-action=ignore --disable-pip-version-check \
  "kfp==$PW_KFP_VERSION"
rm -rf "$1/tmp/wheels"
echo $(($(date +%s) - t0)) >"$PW_TMP/install.secs"'

tarball="$tmp/py-ml.tar"
bookworm_rootfs "$tarball" " + kfp" PW_WHEELS="$wheels" PW_KFP_VERSION="$KFP_VERSION" PW_TMP="$tmp" \
  --variant=apt --include="$DEBIAN_PACKAGES" --customize-hook="$install_hook"
t_root=$(date +%s)
t_install=$(cat "$tmp/install.secs")
size=$(du -h "$tarball" | cut -f1)

old_id=$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)
# Imported images have no PATH unless given one. A KFP lightweight component
# starts with `pip install kfp==<its version> --no-deps` (a no-op here, and
# offline), which Debian's pip refuses without PIP_BREAK_SYSTEM_PACKAGES (PEP
# 668); root is the normal user in a container, so pip need not warn about it.
docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV PIP_BREAK_SYSTEM_PACKAGES=1' \
  --change 'ENV PIP_ROOT_USER_ACTION=ignore' \
  "$tarball" "$IMAGE" >/dev/null
rm -f "$tarball"

# Check, with no network: everything imports, sklearn's bundled toy data
# loads, and kfp compiles a lightweight component (dsl.component needs the
# function's source, hence a file) whose compiled command then runs here as a
# KFP executor would run it. Drop the image on failure, so a later run rebuilds it.
check_py='import json, subprocess, sys
import sklearn, pandas, yaml, kfp
from kfp import dsl, compiler
from sklearn.datasets import load_breast_cancer

assert load_breast_cancer().data.shape == (569, 30)

@dsl.component(base_image="local/python-ml:3.11")
def add(a: int, b: int) -> int:
    return a + b

compiler.Compiler().compile(add, "/tmp/add.yaml")
with open("/tmp/add.yaml") as f:
    (executor,) = yaml.safe_load(f)["deploymentSpec"]["executors"].values()
executor_input = json.dumps({
    "inputs": {"parameterValues": {"a": 1, "b": 2}},
    "outputs": {"parameters": {"Output": {"outputFile": "/tmp/out"}},
                "outputFile": "/tmp/executor_output.json"},
})
argv = executor["container"]["command"] + executor["container"]["args"]
subprocess.run([a.replace("{{$}}", executor_input) for a in argv],
               check=True, stdout=sys.stderr)
with open("/tmp/executor_output.json") as f:
    assert json.load(f) == {"parameterValues": {"Output": 3}}, "wrong executor output"
print(f"kfp {kfp.__version__}, scikit-learn {sklearn.__version__}, pandas {pandas.__version__}")'
if ! versions=$(printf '%s\n' "$check_py" | docker run -i --rm --network none "$IMAGE" sh -c \
  'cat >/tmp/check.py && python3 /tmp/check.py && python3 -m pytest --version >/dev/null && flake8 --version >/dev/null' 2>"$tmp/check.log"); then
  echo "python-ml/build.sh: the check in $IMAGE failed; removing it:" >&2
  tail -n 20 "$tmp/check.log" >&2
  docker rmi "$IMAGE" >/dev/null 2>&1 || true
  exit 1
fi
# With --force the previous image is left untagged; remove it (ignored if in use).
new_id=$(docker image inspect -f '{{.Id}}' "$IMAGE")
if [[ -n $old_id && $old_id != "$new_id" ]]; then
  docker rmi "$old_id" >/dev/null 2>&1 || true
fi
image_mb=$(($(docker image inspect -f '{{.Size}}' "$IMAGE") / 1000000))
end=$(date +%s)
echo "python-ml/build.sh: built $IMAGE, ${image_mb} MB ($versions; wheels $((t_wheels - start))s ($n_wheels, $wheels_size), mmdebstrap $((t_root - t_wheels))s incl. pip install ${t_install}s, tarball $size, import+check $((end - t_root))s, total $((end - start))s)"
