#!/usr/bin/env bash
# Side-by-side lookup rate of sgplane's classifier and DPDK's rte_acl on the
# same ClassBench filter sets and traces, on this machine, single core.
#
#   benches/compare-rte-acl.sh [CLASSBENCH_DIR]     (default: ../shared/classbench
#                                                    relative to the crate root)
#   env: SECONDS_PER_RUN (default 2), SETS (default the five below),
#        CLASSBENCH_BIN (an already built examples/classbench to use instead of building)
#
# Per set it prints
#   SET ours=X.XX Mlps rte_acl=Y.YY Mlps ratio=R.RR build_ms ours=.. rte_acl=.. bytes ours=.. rte_acl=..
# and a summary. Run as root on Debian/Ubuntu: it installs dpdk-dev (which ships
# /usr/bin/dpdk-test-acl) when the test app is missing.
#
# How rte_acl is measured. dpdk-test-acl reads the ClassBench files as they are,
# builds one ACL context, then classifies the whole trace --iter times in calls
# of 256 headers (--tracestep, its default) with the chosen --alg, timing the loop
# with rte_rdtsc(). It reports "C cycles (S sec), X cycles/pkt, Y pkt/sec", where
# pkt/sec = pkts * rte_get_tsc_hz() / C: TSC cycles, not core cycles. The TSC here
# is invariant at the nominal frequency (2596 MHz on the machine this was written
# on), so TSC cycles convert to seconds exactly; we take its pkt/sec (equivalently
# pkts / (cycles / tsc_hz)) and divide by 1e6. --iter is calibrated so the timed
# loop lasts about SECONDS_PER_RUN, like our example's repeated passes.
# Our side: `examples/classbench.rs` (release), lookup_batch over repeated passes
# of the whole trace for SECONDS_PER_RUN, after checking every header against
# the linear first-match scan.
# test-acl does not report its build time, so rte_acl's build_ms is the wall time
# of a run without a trace (parse + build + EAL start) minus that of a one-rule
# set (EAL start): approximate, best of three. Its bytes are the "total:" runtime
# footprint that librte_acl logs at debug level.
# EAL arguments: --no-huge -m 2048 (no hugepages needed), -l 0 (one lcore),
# --no-pci. --tracenum must exceed the trace length: test-acl's default (65536)
# crashes on the 10k traces on DPDK 22.11.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cbdir="${1:-$root/../shared/classbench}"
secs="${SECONDS_PER_RUN:-2}"
sets="${SETS:-acl1_1k fw1_1k ipc1_1k fw1_10k ipc1_10k}"
eal=(--no-huge -m 2048 -l 0 --no-pci --log-level=lib.eal:error)

die() { echo "compare-rte-acl: $*" >&2; exit 2; }
[[ -d "$cbdir" ]] || die "no ClassBench directory at $cbdir (pass it as the first argument)"

find_test_acl() {
    command -v dpdk-test-acl 2>/dev/null && return
    for p in /usr/bin/dpdk-test-acl /usr/local/bin/dpdk-test-acl /usr/bin/testacl; do
        [[ -x "$p" ]] && { echo "$p"; return; }
    done
    dpkg -L dpdk-dev dpdk 2>/dev/null | grep -E '/(dpdk-test-acl|testacl)$' | head -1
}
acl="$(find_test_acl || true)"
if [[ -z "$acl" ]]; then
    echo "installing dpdk-dev for dpdk-test-acl..." >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 && apt-get install -y -qq dpdk-dev >&2 || die "apt-get install dpdk-dev failed"
    acl="$(find_test_acl || true)"
    [[ -n "$acl" ]] || die "dpdk-dev installed but no dpdk-test-acl binary found"
fi
echo "rte_acl: $acl ($(dpkg-query -W -f='${Version}' dpdk-dev 2>/dev/null || echo '?'))" >&2

if [[ -n "${CLASSBENCH_BIN:-}" ]]; then
    ours_bin="$CLASSBENCH_BIN"
else
    (cd "$root" && cargo build --release --example classbench >&2) || die "cargo build failed"
    ours_bin="$root/target/release/examples/classbench"
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

field() { grep -o "$1=[0-9.]*" | head -1 | cut -d= -f2; }

# "Mlps cycles_per_pkt" of rte_acl for rules $1, trace $2, iterations $3.
run_acl() {
    local out
    out="$("$acl" "${eal[@]}" -- --rulesf="$1" --tracef="$2" --alg=avx2 --iter="$3" \
        --tracenum=$(( $(wc -l <"$2") + 1 )) --verbose=0 2>&1)" || { echo "$out" | tail -3 >&2; return 1; }
    grep '^search_ip5tuples ' <<<"$out" |
        sed -E 's/.* ([0-9.]+) cycles\/pkt, ([0-9.]+) pkt\/sec.*/\2 \1/' | awk '{ printf "%.2f %s", $1 / 1e6, $2 }'
}

wall_ms() { # best-of-3 wall time of a trace-less test-acl run on rules $1
    local best=999999 t s e
    for _ in 1 2 3; do
        s=$(date +%s%N)
        "$acl" "${eal[@]}" -- --rulesf="$1" --alg=avx2 --iter=1 --verbose=0 >/dev/null 2>&1 || true
        e=$(date +%s%N)
        t=$(( (e - s) / 1000000 ))
        if (( t < best )); then best=$t; fi
    done
    echo "$best"
}

head -1 "$cbdir/acl1_1k" >"$tmp/one_rule" 2>/dev/null || printf '@0.0.0.0/0\t0.0.0.0/0\t0 : 65535\t0 : 65535\t0x00/0x00\t0x0000/0x0000\n' >"$tmp/one_rule"
eal_ms="$(wall_ms "$tmp/one_rule")"

summary=()
for set in $sets; do
    rules="$cbdir/$set" trace="$cbdir/${set}_trace"
    if [[ ! -s "$rules" || ! -s "$trace" ]]; then
        echo "$set: skipped (no rules or trace in $cbdir)" >&2
        continue
    fi
    line="$("$ours_bin" --rules "$rules" --trace "$trace" --seconds "$secs" 2>"$tmp/ours.err")" || {
        cat "$tmp/ours.err" >&2
        echo "$set: our classifier failed or mismatched" >&2
    }
    ours="$(field mlookups_per_s <<<"$line")"
    ours_build="$(field build_ms <<<"$line")"
    ours_bytes="$(field bytes <<<"$line")"
    mismatches="$(field mismatches <<<"$line")"

    # Calibrate --iter on a short run, then time about $secs seconds.
    lines=$(wc -l <"$trace")
    quick="$(run_acl "$rules" "$trace" 3)" || { echo "$set: dpdk-test-acl failed" >&2; continue; }
    iter=$(awk -v r="${quick% *}" -v n="$lines" -v s="$secs" 'BEGIN { i = int(r * 1e6 * s / n); print (i < 3 ? 3 : i) }')
    read -r theirs acl_cpp <<<"$(run_acl "$rules" "$trace" "$iter")" || { echo "$set: dpdk-test-acl failed" >&2; continue; }
    acl_build=$(( $(wall_ms "$rules") - eal_ms ))
    if (( acl_build < 0 )); then acl_build=0; fi
    acl_bytes="$("$acl" "${eal[@]}" --log-level=lib.acl:debug -- --rulesf="$rules" --alg=avx2 --iter=1 \
        --verbose=0 2>&1 | awk '/^total: [0-9]+ bytes/ { print $2 }' | tail -1 || true)"

    ratio=$(awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
    out="$set ours=$ours Mlps rte_acl=$theirs Mlps ratio=$ratio build_ms ours=$ours_build rte_acl=~$acl_build bytes ours=$ours_bytes rte_acl=${acl_bytes:-?} mismatches=$mismatches (rte_acl ${acl_cpp} tsc cycles/pkt, iter=$iter)"
    echo "$out"
    summary+=("$set $ratio")
done

echo "summary (ratio = ours / rte_acl lookups per second, single core, --alg=avx2):"
if ((${#summary[@]} == 0)); then
    echo "  no set run"
    exit 1
fi
printf '%s\n' "${summary[@]}" | awk '
    { printf "  %-10s %sx\n", $1, $2; n++; p += log($2); if (min == "" || $2 < min) min = $2 }
    END { printf "  geometric mean %.2fx, worst %.2fx over %d sets\n", exp(p / n), min, n }'
