#!/usr/bin/env bash
# sgplane replay vs. tcpdump on the traffic mixes of examples/traffic_mix.rs,
# side by side in one run.
#
#   benches/replay-mixes.sh [PACKETS] [RUNS] [--v6] [--vlan]
#
# (`--v6`: the policy's IPv6 addresses; `--vlan`: every frame 802.1Q-tagged,
# as on a trunk port, which takes the parser off its fast path.)
#
# Writes the four mixes (allowed HTTPS, a port scan, unknown addresses, and
# 70/20/10 of the three) of PACKETS packets each (default 1,000,000) to a
# temporary directory, reads each once into the page cache, then for each
# mix times RUNS rounds (default 5) of
#   tcpdump -r FILE -w /dev/null
#   sgplane replay FILE
# one after the other, and prints the best time of each, the ratio of the
# best times (above 1: sgplane is faster), the range of the per-round
# ratios, and sgplane's peak RSS.
#
#   benches/replay-mixes.sh --memory [PACKETS] [--flow-log]
#
# instead writes one port scan of PACKETS packets (default 10,000,000, every
# packet a distinct denied flow) and prints sgplane's peak RSS replaying it
# (with --flow-log, also writing a flow log: every packet a new record,
# held up to --flow-log-max-records).
set -euo pipefail
cd "$(dirname "$0")/.."

memory=0; v6=""; vlan=""; flowlog=0; pos=()
for a in "$@"; do
  case "$a" in
    --memory) memory=1 ;;
    --flow-log) flowlog=1 ;;
    --v6) v6="--v6" ;;
    --vlan) vlan="--vlan" ;;
    *) pos+=("$a") ;;
  esac
done

command -v tcpdump >/dev/null || { apt-get update -qq && apt-get install -y -qq tcpdump >/dev/null; }
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
cargo build --release --quiet --bin sgplane --example traffic_mix
bin=${CARGO_TARGET_DIR:-target}/release
sg=$bin/sgplane
gen=$bin/examples/traffic_mix
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

# Runs a command with its output discarded; prints "seconds peak-KB"
# (wall time from the nanosecond clock: /usr/bin/time rounds to 10 ms).
measure() {
  local s e
  s=$(date +%s.%N)
  /usr/bin/time -f '%M' -o "$dir/time" "$@" >/dev/null 2>&1 || {
    echo "failed: $*" >&2
    exit 1
  }
  e=$(date +%s.%N)
  awk -v s="$s" -v e="$e" -v kb="$(tail -1 "$dir/time")" 'BEGIN { printf "%.4f %d\n", e - s, kb }'
}

if [ "$memory" = 1 ]; then
  packets=${pos[0]:-10000000}
  "$gen" scan "$dir/scan.pcap" "$packets" $v6 $vlan 2>/dev/null
  extra=()
  [ "$flowlog" = 1 ] && extra=(--flow-log "$dir/flows.log")
  read -r t kb < <(measure "$sg" replay "$dir/scan.pcap" "${extra[@]}")
  size=$(stat -c %s "$dir/scan.pcap")
  printf 'port scan: %d packets (%d bytes), every one a new denied flow\n' "$packets" "$size"
  [ "$flowlog" = 1 ] && printf 'with --flow-log: %d lines written\n' "$(wc -l < "$dir/flows.log")"
  awk -v t="$t" -v kb="$kb" -v n="$packets" 'BEGIN {
    printf "sgplane replay: %.2f s, %.2f Mpps, peak RSS %.1f MB\n", t, n / t / 1e6, kb / 1024
  }'
  exit 0
fi

packets=${pos[0]:-1000000}
runs=${pos[1]:-5}
printf 'mix       packets  tcpdump best  sgplane best  ratio  (rounds)     sgplane peak RSS\n'
for mix in allowed scan unknown mixed; do
  cap=$dir/$mix.pcap
  "$gen" "$mix" "$cap" "$packets" $v6 $vlan 2>/dev/null
  cat "$cap" >/dev/null
  bt=""; bs=""; ratios=(); rss=0
  for _ in $(seq "$runs"); do
    read -r tt _ < <(measure tcpdump -r "$cap" -w /dev/null)
    read -r ts kb < <(measure "$sg" replay "$cap")
    ratios+=("$(awk -v a="$tt" -v b="$ts" 'BEGIN { printf "%.2f", a / b }')")
    bt=$(printf '%s\n' $bt "$tt" | sort -g | head -1)
    bs=$(printf '%s\n' $bs "$ts" | sort -g | head -1)
    [ "$kb" -gt "$rss" ] && rss=$kb
  done
  lo=$(printf '%s\n' "${ratios[@]}" | sort -g | head -1)
  hi=$(printf '%s\n' "${ratios[@]}" | sort -g | tail -1)
  rm -f "$cap"
  awk -v m="$mix" -v n="$packets" -v bt="$bt" -v bs="$bs" -v lo="$lo" -v hi="$hi" -v kb="$rss" 'BEGIN {
    printf "%-8s %8d  %6.3f s      %6.3f s      %.2f   (%.2f-%.2f)  %6.1f MB\n", m, n, bt, bs, bt / bs, lo, hi, kb / 1024
  }'
done
