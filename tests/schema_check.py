#!/usr/bin/env python3
"""Checks build files against the JSON Schema that `pipewright schema` prints.

usage: schema_check.py SCHEMA < CASES

CASES is a JSON list of {"file": PATH, "valid": true|false}: whether the file must validate against
SCHEMA. Files are read as YAML (JSON is YAML) the way gcloud reads them, with PyYAML's safe loader,
except that dates and times stay text: pipewright reads every scalar as text or a YAML 1.2 core type,
and a JSON Schema knows no dates.

Prints one line per file and exits 0 when every file is as expected, 1 when one is not, 2 on bad
usage, 77 when `jsonschema` or `yaml` cannot be imported (the caller decides whether that is a skip
or a failure).
"""

import json
import sys


def main(argv):
    if len(argv) != 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    try:
        import jsonschema
        import yaml
    except ImportError as e:
        print(f"schema_check: cannot import {e.name} ({e}); install it with: pip install jsonschema pyyaml",
              file=sys.stderr)
        return 77

    class Loader(yaml.SafeLoader):
        pass

    # Drop the timestamp resolver: `2024-01-01` stays a string.
    Loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    with open(argv[1], encoding="utf-8") as f:
        schema = json.load(f)
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema)

    cases = json.load(sys.stdin)
    failed = 0
    for case in cases:
        path, want = case["file"], case["valid"]
        try:
            with open(path, encoding="utf-8-sig") as f:
                document = yaml.load(f, Loader=Loader)
        except (OSError, yaml.YAMLError) as e:
            print(f"FAIL {path}: cannot read it: {e}")
            failed += 1
            continue
        errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
        got = not errors
        if got == want:
            why = "" if got else f" ({explain(errors[0])})"
            print(f"ok   {path}: {'valid' if got else 'invalid'}{why}")
        else:
            failed += 1
            if got:
                print(f"FAIL {path}: valid against the schema, expected invalid")
            else:
                print(f"FAIL {path}: invalid against the schema, expected valid")
                for error in errors[:5]:
                    print(f"       {explain(error)}")
    print(f"schema_check: {len(cases) - failed} of {len(cases)} files as expected")
    return 1 if failed else 0


def explain(error):
    """The message of the deepest, most relevant error (an `anyOf` says little on its own)."""
    import jsonschema
    while error.context:
        # Every optional field may be null: that branch is never the interesting one.
        branches = [e for e in error.context if not (e.validator == "type" and e.validator_value == "null")]
        error = jsonschema.exceptions.best_match(branches or error.context)
    return f"{where(error)}: {error.message[:300]}"


def where(error):
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return path.lstrip(".") or "(top)"


if __name__ == "__main__":
    sys.exit(main(sys.argv))
