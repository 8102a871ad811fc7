#!/usr/bin/env bash
# Builds every fuzz target and runs each for a fixed time, one after the other (one job: the fuzzer
# shares the machine), then prints a table: target, executions, coverage (libFuzzer's `cov`, edges), corpus size, crashes.
#
#   fuzz/run.sh [seconds-per-target] [target...]      (default 60 seconds, every target)
#
# Each target fuzzes a working corpus in fuzz/target/corpus/<target> (kept between runs, not committed),
# seeded from the committed fuzz/corpus/<target>. With MERGE=1, inputs that add coverage are merged back
# into fuzz/corpus/<target> afterwards (review the size before committing). A crash, timeout or
# out-of-memory input is saved under fuzz/artifacts/<target>/ and makes the script exit 1.
# Targets with a dictionary of their grammar's tokens (fuzz/dict/<target>.dict) get it.
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`).
set -euo pipefail

cd "$(dirname "$0")"
seconds=${1:-60}
shift || true
if ! [[ $seconds =~ ^[0-9]+$ ]] || (( seconds == 0 )); then
    echo "usage: fuzz/run.sh [seconds-per-target] [target...]  (seconds: a whole number above 0, got \`$seconds\`)" >&2
    exit 2
fi
if (( $# > 0 )); then targets=("$@"); else mapfile -t targets < <(cargo +nightly fuzz list); fi

# Longest input per target: room for the largest real file of its kind, no more (longer inputs
# only slow the search down).
max_len() {
    case $1 in
        config_load | ir | webhook_*) echo 131072 ;;
        subst | dockerignore) echo 8192 ;;
        cel) echo 2048 ;;
        *) echo 4096 ;;
    esac
}

cargo +nightly fuzz build >&2

rows=()
failed=0
for target in "${targets[@]}"; do
    work=target/corpus/$target
    artifacts=artifacts/$target
    mkdir -p "$work" "$artifacts"
    log=target/fuzz-$target.log
    before=$(find "$artifacts" -type f | wc -l)
    status=0
    dict=()
    if [[ -f dict/$target.dict ]]; then dict=(-dict="dict/$target.dict"); fi
    # -timeout: one input running 10 s is a hang, reported like a crash.
    cargo +nightly fuzz run "$target" "$work" "corpus/$target" -- \
        -max_total_time="$seconds" -max_len="$(max_len "$target")" -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 "${dict[@]}" >"$log" 2>&1 || status=$?
    executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    # libFuzzer's last status line: `#N DONE cov: C ft: F corp: U/S ...`.
    corpus=$(grep -oE 'corp: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
    coverage=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
    crashes=$(( $(find "$artifacts" -type f | wc -l) - before ))
    if (( status != 0 )) && (( crashes == 0 )); then crashes=1; fi
    if (( crashes > 0 )); then
        failed=1
        echo "$target: fuzzer exited $status; the input is in fuzz/$artifacts, the log in fuzz/$log" >&2
        grep -m 5 -E 'panicked|ERROR: libFuzzer|SUMMARY' "$log" >&2 || true
    fi
    if [[ ${MERGE:-0} == 1 ]]; then
        cargo +nightly fuzz run "$target" "corpus/$target" "$work" -- -merge=1 -max_len="$(max_len "$target")" \
            >/dev/null 2>&1 || true
    fi
    rows+=("$(printf '%-16s %12s %8s %8s %8s' "$target" "${executions:-?}" "${coverage:-?}" "${corpus:-?}" "$crashes")")
done

printf '%-16s %12s %8s %8s %8s\n' target executions coverage corpus crashes
printf '%s\n' "${rows[@]}"
exit "$failed"
