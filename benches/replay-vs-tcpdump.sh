#!/usr/bin/env bash
# sgplane replay vs. tcpdump on the same capture, in the same run.
#
#   benches/replay-vs-tcpdump.sh [PACKETS] [RUNS]
#
# Builds sgplane (release), writes a synthetic capture of PACKETS packets
# (default 1,000,000; examples/synth_capture.rs) to a temporary directory,
# reads it once to put it in the page cache, then times RUNS runs (default 5)
# of each, alternating:
#   tcpdump -r FILE -w /dev/null       (read and write every packet back out)
#   sgplane replay FILE                 (parse, conntrack, rules, summary)
# and prints the best time of each, packets/s and the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
packets=${1:-1000000}
runs=${2:-5}

command -v tcpdump >/dev/null || { apt-get update -qq && apt-get install -y -qq tcpdump >/dev/null; }
cargo build --release --quiet --bin sgplane --example synth_capture
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cap=$dir/synth.pcap
./target/release/examples/synth_capture "$cap" "$packets"
cat "$cap" >/dev/null

best() { sort -g | head -1; }
time_it() {
  local s e
  s=$(date +%s.%N)
  "$@" >/dev/null 2>&1
  e=$(date +%s.%N)
  awk -v s="$s" -v e="$e" 'BEGIN { printf "%.6f", e - s }'
}
t_tcpdump=(); t_sgplane=()
for _ in $(seq "$runs"); do
  t_tcpdump+=("$(time_it tcpdump -r "$cap" -w /dev/null)")
  t_sgplane+=("$(time_it ./target/release/sgplane replay "$cap")")
done
bt=$(printf '%s\n' "${t_tcpdump[@]}" | best)
bs=$(printf '%s\n' "${t_sgplane[@]}" | best)
size=$(stat -c %s "$cap")
printf 'capture: %d packets, %d bytes (page cache)\n' "$packets" "$size"
awk -v n="$packets" -v r="$runs" -v bt="$bt" -v bs="$bs" 'BEGIN {
  printf "tcpdump -r FILE -w /dev/null  best of %d: %.3f s  %6.2f Mpps\n", r, bt, n / bt / 1e6
  printf "sgplane replay FILE           best of %d: %.3f s  %6.2f Mpps\n", r, bs, n / bs / 1e6
  printf "ratio sgplane/tcpdump (packets/s): %.2f\n", bt / bs
}'
