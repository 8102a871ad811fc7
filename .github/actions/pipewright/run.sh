#!/usr/bin/env bash
# The pipewright action's entry point: turns the action's inputs into a `pipewright github-action`
# command line. pipewright itself reads the job's GITHUB_* variables and event payload, writes the
# step summary and outputs, and exits 0 on success or when the triggers skip the event.
#
# Which pipewright runs: $PIPEWRIGHT_BIN if set, else `pipewright` on PATH, else one built from this
# action's own source (the runner downloads the whole repository for an action in a subdirectory)
# and kept in the tool cache for the next job.
set -euo pipefail

find_pipewright() {
  if [[ -n "${PIPEWRIGHT_BIN:-}" ]]; then
    echo "$PIPEWRIGHT_BIN"
  elif command -v pipewright >/dev/null 2>&1; then
    command -v pipewright
  else
    local source root
    source=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
    root="${RUNNER_TOOL_CACHE:-$HOME/.cache}/pipewright/$(git -C "$source" rev-parse HEAD 2>/dev/null || echo source)"
    if [[ ! -x "$root/bin/pipewright" ]]; then
      command -v cargo >/dev/null 2>&1 ||
        { echo "::error title=pipewright::no pipewright on PATH and no cargo to build it; install pipewright first" >&2; exit 2; }
      echo "::group::Building pipewright from $source" >&2
      cargo install --quiet --locked --root "$root" --path "$source" >&2
      echo "::endgroup::" >&2
    fi
    echo "$root/bin/pipewright"
  fi
}

bin=$(find_pipewright)
args=(github-action --dir "${INPUT_DIRECTORY:-.}" --project "${INPUT_PROJECT:-github}" --jobs "${INPUT_JOBS:-2}")
[[ -n "${INPUT_CONFIG:-}" ]] && args+=(--config "$INPUT_CONFIG")
[[ -n "${INPUT_BASE_SPEC:-}" ]] && args+=(--base-spec "$INPUT_BASE_SPEC")
while IFS= read -r item; do
  item=${item#"${item%%[![:space:]]*}"} item=${item%"${item##*[![:space:]]}"}
  [[ -n "$item" ]] && args+=(--substitutions "$item")
done < <(printf '%s\n' "${INPUT_SUBSTITUTIONS:-}" | tr ',' '\n')
while IFS= read -r item; do
  item=${item#"${item%%[![:space:]]*}"} item=${item%"${item##*[![:space:]]}"}
  [[ -n "$item" ]] && args+=(--secret "$item")
done <<<"${INPUT_SECRETS:-}"
while IFS= read -r item; do
  item=${item#"${item%%[![:space:]]*}"} item=${item%"${item##*[![:space:]]}"}
  [[ -n "$item" ]] && args+=(--credential "$item")
done <<<"${INPUT_CREDENTIALS:-}"
exec "$bin" "${args[@]}"
