#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each, two at a time (this machine has 2
# cores), on the seeded corpus, and prints one line per target: executions,
# coverage (libFuzzer's final cov and ft) and findings (new files in
# fuzz/artifacts/<target>/). Exits 1 when any target found something.
#
# Usage: fuzz/run-all.sh SECONDS [TARGET...]
#   JOBS=n        targets at a time (default 2)
#   FUZZ_FORK=1   keep going past a crash (-fork=1 -ignore_crashes=1 ...)
# CARGO_TARGET_DIR is honoured (a second campaign can build beside a
# running one). Logs: fuzz/logs/<target>.log (ignored by git). Seeds with fuzz/seed.sh
# first when a target's corpus is empty. Built once with
# `cargo +nightly fuzz build -s none` (no sanitizer; debug assertions on).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
seconds=${1:?usage: fuzz/run-all.sh SECONDS [TARGET...]}
shift
jobs=${JOBS:-2}

if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

cargo +nightly fuzz build -s none >&2
bin="${CARGO_TARGET_DIR:-$here/target}/x86_64-unknown-linux-gnu/release"

for t in "${targets[@]}"; do
    if [ -z "$(ls -A "corpus/$t" 2>/dev/null)" ]; then
        echo "run-all: corpus/$t is empty; seeding" >&2
        ./seed.sh >&2
        break
    fi
done

mkdir -p logs
stamp=$(mktemp)
trap 'rm -f "$stamp"' EXIT

# Options the README gives per target.
extra() {
    case "$1" in
        policy) echo "-dict=policy.dict -max_len=16384" ;;
        policy_structured) echo "-max_len=4096 -len_control=0" ;;
        engine) echo "-max_len=16384" ;;
        engine_nacl_tracking | path | import_aws_structured | tunnels) echo "-max_len=4096" ;;
        *) echo "" ;;
    esac
}

run_one() {
    local t=$1
    local fork=""
    if [ "${FUZZ_FORK:-0}" = 1 ]; then
        fork="-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1"
    fi
    mkdir -p "corpus/$t" "artifacts/$t"
    # shellcheck disable=SC2046
    "$bin/$t" "corpus/$t" -artifact_prefix="artifacts/$t/" -max_total_time="$seconds" \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 $(extra "$t") $fork \
        >"logs/$t.log" 2>&1 || true
}

running=0
for t in "${targets[@]}"; do
    if [ "$running" -ge "$jobs" ]; then
        wait -n || true
        running=$((running - 1))
    fi
    echo "run-all: $t for ${seconds}s" >&2
    run_one "$t" &
    running=$((running + 1))
done
wait || true

found=0
printf '%-24s %12s %8s %8s %9s\n' target execs cov ft findings
for t in "${targets[@]}"; do
    log="logs/$t.log"
    # The last status line with coverage: `#N DONE cov: C ft: F` (or a fork job's `#N: cov: C ft: F`).
    status=$(grep -E '^#[0-9]+:?[[:space:]].*cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1 || true)
    execs=$(grep -Eo '^stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -n 1 || true)
    [ -n "$execs" ] || execs=$(echo "$status" | grep -Eo '^#[0-9]+' | tr -d '#' || true)
    cov=$(echo "$status" | grep -Eo 'cov: [0-9]+' | grep -Eo '[0-9]+' || true)
    ft=$(echo "$status" | grep -Eo 'ft: [0-9]+' | grep -Eo '[0-9]+' || true)
    n=$(find "artifacts/$t" -type f -newer "$stamp" \( -name "crash-*" -o -name "timeout-*" -o -name "oom-*" -o -name "leak-*" \) | wc -l)
    # A run that died before its first status line is a finding too.
    if [ -z "$status" ] && [ "$n" -eq 0 ]; then
        n=1
        echo "run-all: $t printed no status line; see $log" >&2
    fi
    [ "$n" -eq 0 ] || found=1
    printf '%-24s %12s %8s %8s %9s\n' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$n"
done
exit "$found"
