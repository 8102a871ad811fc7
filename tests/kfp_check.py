#!/usr/bin/env python3
"""Checks that the Kubeflow SDK reads pipewright's rewritten component and pipeline specs as it read
the originals, with the new images.

usage: kfp_check.py [--map OLD=NEW ...] ORIGINAL REWRITTEN [ORIGINAL REWRITTEN ...]

For each pair whose ORIGINAL `kfp.components.load_component_from_file` can load, REWRITTEN must load
too, and its images (the component's, or every container executor's for a pipeline) must be the
original's with each image named by a `--map OLD=NEW` replaced by NEW, and at least one replaced.
Pairs whose original the SDK cannot load (v1 graph components, legacy `{pipelineSpec,
runtimeConfig}` wrappers) are skipped and listed.

IR files (legacy wrappers unwrapped) are also parsed strictly into the `PipelineSpec` proto (and any
further YAML document into `PlatformSpec`), which rejects unknown fields: the rewritten file must pass
whenever the original does, with the same image replacement.

Exit status: 0 all checked pairs pass, 1 a pair failed, 2 bad usage, 77 `kfp` is not installed (the
caller decides whether that is a skip or a failure).
"""

import argparse
import os
import sys


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--map", action="append", default=[], metavar="OLD=NEW",
                        help="an image and the reference it must have become")
    parser.add_argument("files", nargs="+", metavar="ORIGINAL REWRITTEN")
    args = parser.parse_args(argv)
    if len(args.files) % 2:
        parser.error("files come in ORIGINAL REWRITTEN pairs")
    mapping = {}
    for item in args.map:
        old, sep, new = item.partition("=")
        if not sep:
            parser.error(f"--map {item!r}: expected OLD=NEW")
        mapping[old] = new
    pairs = list(zip(args.files[0::2], args.files[1::2]))
    return mapping, pairs


def images(component):
    """Executor label (or `component`) -> image, as the SDK understood the file."""
    from google.protobuf import json_format

    implementation = component.component_spec.implementation
    if implementation.container is not None:
        return {"component": implementation.container.image}
    spec = json_format.MessageToDict(implementation.graph)
    executors = spec.get("deploymentSpec", {}).get("executors", {})
    return {label: e["container"]["image"] for label, e in executors.items() if "container" in e}


NOT_APPLICABLE = "not applicable"


def strict_ir_images(path):
    """Executor label -> image after a strict proto parse; None for a v1 component."""
    import yaml
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    with open(path, encoding="utf-8") as f:
        documents = [d for d in yaml.safe_load_all(f) if d is not None]
    if "implementation" in documents[0]:
        return None
    spec = json_format.ParseDict(documents[0].get("pipelineSpec", documents[0]), pipeline_spec_pb2.PipelineSpec())
    for platform in documents[1:]:
        json_format.ParseDict(platform, pipeline_spec_pb2.PlatformSpec())
    result = {}
    executors = json_format.MessageToDict(spec).get("deploymentSpec", {}).get("executors", {})
    for label, executor in executors.items():
        if "container" in executor:
            result[label] = executor["container"]["image"]
        pools = executor.get("customJob", {}).get("customJob", {}).get("jobSpec", {}).get("workerPoolSpecs", [])
        for i, pool in enumerate(pools):
            result[f"{label}.workerPoolSpecs[{i}]"] = pool["containerSpec"]["imageUri"]
    return result


def compare(before, after, mapping):
    """None when `after` is `before` with the mapped images replaced (at least one), else why not."""
    expected = {label: mapping.get(image, image) for label, image in before.items()}
    if expected == before:
        return f"no image of {sorted(set(before.values()))} is in --map"
    if after != expected:
        return f"images are {after}, expected {expected}"
    return None


def check_strict(mapping, original, rewritten):
    """None when the pair passes, NOT_APPLICABLE for a v1 component, else what is wrong. Raises if
    the original fails."""
    before = strict_ir_images(original)
    if before is None:
        return NOT_APPLICABLE
    try:
        after = strict_ir_images(rewritten)
    except Exception as e:
        return f"the rewritten file fails the strict PipelineSpec parse: {type(e).__name__}: {e}"
    return compare(before, after, mapping)


def check_pair(load, mapping, original, rewritten):
    """None when the pair passes, else what is wrong. Raises if the original does not load."""
    before = images(load(original))
    try:
        after = images(load(rewritten))
    except Exception as e:  # the SDK raises many kinds; any of them is a failure here
        return f"the rewritten file does not load: {type(e).__name__}: {e}"
    return compare(before, after, mapping)


def main(argv):
    mapping, pairs = parse_args(argv)
    try:
        import kfp
        from kfp.components import load_component_from_file
    except ImportError as e:
        print(f"kfp_check: cannot import kfp ({e}); install it with: pip install 'kfp==2.*'", file=sys.stderr)
        return 77

    checks = {
        "load_component_from_file": lambda m, o, r: check_pair(load_component_from_file, m, o, r),
        "strict PipelineSpec parse": check_strict,
    }
    counts = {what: [0, 0] for what in checks}  # checked, skipped
    skipped, failed, passed = [], [], 0
    for original, rewritten in pairs:
        name = os.path.basename(original)
        for what, check in checks.items():
            try:
                problem = check(mapping, original, rewritten)
            except Exception as e:  # the original itself fails: nothing to compare with
                first_line = str(e).splitlines()[0] if str(e) else ""
                skipped.append(f"{what} fails on the original {name}: {type(e).__name__}: {first_line}")
                counts[what][1] += 1
                continue
            if problem == NOT_APPLICABLE:
                continue
            counts[what][0] += 1
            if problem:
                failed.append(f"{what}: {name}: {problem}")
            else:
                passed += 1

    for line in skipped:
        print(f"skipped: {line}")
    for line in failed:
        print(f"FAILED {line}")
    for what, (checked, skipped_count) in counts.items():
        print(f"kfp {kfp.__version__} {what}: {checked} pairs checked, {skipped_count} skipped")
    print(f"kfp_check: {passed} checks passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
