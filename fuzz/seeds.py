#!/usr/bin/env python3
"""Writes the seed corpus, fuzz/corpus/<target>/seed-*, from the repository's test fixtures and a few
hand-written inputs, in each target's input format (see the comment at the top of each target).

Run from anywhere: `python3 fuzz/seeds.py`. Seeds are committed; rerun this only when fixtures or input
formats change. Files the fuzzer adds (`fuzz/run.sh` keeps a minimised set) are never touched here.
"""
import json
import pathlib
import re

FUZZ = pathlib.Path(__file__).resolve().parent
FIXTURES = FUZZ.parent / "tests" / "fixtures"
CORPUS = FUZZ / "corpus"


def write(target, name, data):
    directory = CORPUS / target
    directory.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (directory / f"seed-{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}").write_bytes(data)


def config_load():
    for path in sorted((FIXTURES / "cloudbuild").iterdir()):
        if path.suffix in (".yaml", ".yml", ".json"):
            write("config_load", path.name, path.read_bytes())
    write("config_load", "overrides",
          b"steps:\n- name: local/busybox:1\n  args: ['echo', '$_A ${BRANCH_NAME}']\nsubstitutions:\n  _A: x\n"
          b"\xff_A=y\nBRANCH_NAME=main\n")
    write("config_load", "pipewright-extensions",
          "steps:\n- id: a\n  name: local/python:3.11\n  script: |\n    echo hi\n  waitFor: ['-']\n"
          "- id: b\n  name: local/busybox:1\n  waitFor: [a]\n  timeout: 10s\n"
          "options:\n  machineType: E2_HIGHCPU_8\n  dynamicSubstitutions: true\n  substitutionOption: ALLOW_LOOSE\n"
          "timeout: 600s\ntags: ['$BRANCH_NAME', 'x']\n")


def ir():
    for sub in ("pipelines", "examples"):
        for path in sorted((FIXTURES / "kfp" / sub).glob("*.y*ml")):
            write("ir", path.name, path.read_bytes())
    for path in sorted((FIXTURES / "runner").rglob("*.y*ml")):
        write("ir", "runner-" + path.name, path.read_bytes())


def subst():
    vectors = FIXTURES / "cloudbuild" / "substitution-vectors.tsv"
    rows = vectors.read_text().splitlines()[1:]
    seen = set()
    for index, row in enumerate(rows):
        columns = row.split("\t")
        if len(columns) < 2:
            continue
        template, substitutions = columns[0], json.loads(columns[1])
        if template not in seen:
            seen.add(template)
            write("subst", f"template-{index}", b"\x00" + template.encode())
        user = ";".join(f"{k}={v}" for k, v in substitutions.get("user", {}).items())
        write("subst", f"dynamic-{index}", b"\x08" + f"{user}\n{template}".encode())
    write("subst", "map-config", b"\x01_A=1\n_B=\nbad=x\nPROJECT_ID=p\n_TOO_LONG=" + b"x" * 4001)
    write("subst", "map-flag", b"\x05_A=1\nBRANCH_NAME=main\nPROJECT_ID=p\nHOME=/root")
    write("subst", "tags", b"\x02v1\n\nv1\nlatest\nbad tag\n" + b"a" * 129)
    write("subst", "tags-ok", b"\x02v1.2.3\nmain\nfeature-x_y")
    write("subst", "dynamic-ops",
          b"\x0b_A=hello;_B=${_A:-x};_C=${_A//l/L}\n${_A:1:3} ${_B^^} ${_C#h} ${_D:-def} ${#_A} $$HOME ${HOME}")


CEL = [
    "inputs.parameter_values['s'] == 'heads'",
    "int(inputs.parameter_values['n']) > 5",
    "!(inputs.parameter_values['pipelinechannel--flip-coin-Output'] == 'heads')",
    "inputs.parameter_values['b'] && !false || 1 < 2",
    "inputs.artifacts['a'].artifacts[0].uri == 'x'",
    "double(inputs.parameter_values['n']) >= 2.5 ? true : false",
    "string(7) == '7' && size('abc') == 3 && 'a' in ['a', 'b']",
    "[1, 2.0, 'x', {'k': [true, null]}]",
    "{'a': 1, 'b': 0x1F, 'c': 7u, 'd': 1e3, 'e': .5}",
    "r'raw\\n' + \"\\u00e9\\x41\\n\"",
    "9223372036854775807 + 1",
    "-9223372036854775808 / -1",
    "5 % 0",
    "((((((((((1))))))))))",
]
SELECTORS = ['parseJson(string_value)["a"]', 'struct_value["b"]', "list_value[0]", "number_value * 2.0",
             "size(string_value)"]


def cel():
    for index, expression in enumerate(CEL):
        write("cel", f"condition-{index}", b"\x00" + expression.encode())
        write("cel", f"evaluate-{index}", b"\x02" + expression.encode())
    for index, expression in enumerate(SELECTORS):
        write("cel", f"select-{index}", b"\x01" + expression.encode() + b"\x00" + b'{"a": [1, 2], "b": {"c": "d"}}')
    write("cel", "condition-with-inputs",
          b"\x00int(inputs.parameter_values['n']) == 3\x00{\"parameter_values\": {\"n\": 3}}")


DOCKERIGNORE = {
    "basic": "# comment\n*.md\n!README.md\n.git\nnode_modules/\n**/__pycache__\n",
    "classes": "[a-c]?.txt\n[^x]*\n[!a]b\n\\*literal\nsrc/**/*.pyc\n**tmp\n",
    "clean": "./a/../b\n/leading\n  spaced  \n!\n",
    "reinclude": "*\n!src\n!src/**\nsrc/secret\n.env*\n!.env.example\n",
    "bad-class": "[z-a]\n",
    "bad-backslash": "a\\",
}


def dockerignore():
    paths = b"\x00README.md\ndocs/a.md\n.git/config\nnode_modules/x/y.js\nsrc/main.py\nsrc/__pycache__/m.pyc\n" \
            b"src/secret\n.env\n.env.example\nab.txt\nbtmp\n*literal\n"
    for name, text in DOCKERIGNORE.items():
        write("dockerignore", name, text.encode() + paths)


# Each fixture's event name, from the first word of its file name; the selector byte is the event's
# index in `pipewright_fuzz::webhook`'s list, with 0x10 (send a delivery id).
EVENTS = {
    "github": ["push", "pull_request", "issue_comment", "pull_request_review_comment", "ping", "create", "delete",
               "pull_request_review", "issues"],
    "gitlab": ["push", "tag_push", "merge_request", "note"],
    "gitea": ["push", "pull_request", "issue_comment", "pull_request_comment", "create", "delete", "issues"],
}


def webhooks():
    for forge, events in EVENTS.items():
        for path in sorted((FIXTURES / "webhooks" / forge).glob("*.json")):
            event = path.stem.split("__")[0]
            if event not in events:
                raise SystemExit(f"{path}: no event for `{event}`")
            selector = events.index(event) | 0x10
            write(f"webhook_{forge}", path.stem, bytes([selector]) + path.read_bytes())


if __name__ == "__main__":
    config_load()
    ir()
    subst()
    cel()
    dockerignore()
    webhooks()
    for directory in sorted(CORPUS.iterdir()):
        files = list(directory.iterdir())
        print(f"{directory.name}: {len(files)} files, {sum(f.stat().st_size for f in files)} bytes")
