#!/usr/bin/env bash
# End-to-end flow-log rate of the CLI, as users compare it: `sgplane replay`
# of a generated flow log (N records, default 5,000,000) as gzip text, plain
# text and Parquet, against `zcat big.log.gz | wc -l` (and `wc -l big.log`)
# timed in the same run. One core is what a record stream uses (the
# reader and the judging are one thread for flow logs).
#
#   benches/flowlogs-cli.sh [N] [CLIENTS]
#
# CLIENTS (default 1000) is how many client addresses the records come
# from; set it to N for every record a new pair of hosts.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-5000000}
CLIENTS=${2:-1000}
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
cargo build --release --quiet --bin sgplane --example flowlog_to_parquet
BIN=${CARGO_TARGET_DIR:-target}/release
POLICY=tests/data/flowlogs/policy.toml

awk -v n="$N" -v hosts="$CLIENTS" 'BEGIN {
  print "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status";
  for (i = 0; i < n; i++) {
    k = i % 3;
    if (k == 0) { eni = "eni-web"; dst = "10.0.1.10"; dport = 443 }
    else if (k == 1) { eni = "eni-web"; dst = "10.0.1.10"; dport = 22 }
    else { eni = "eni-db"; dst = "10.0.2.20"; dport = 5432 }
    act = (i % 10 == 7) ? "REJECT" : "ACCEPT";
    h = (i * 7919) % hosts;
    printf "2 123456789010 %s 10.%d.%d.%d %s %d %d 6 %d %d %d %d %s OK\n",
      eni, int(h / 65536), int(h / 256) % 256, h % 256, dst, 1024 + i % 60000, dport,
      1 + i % 50, 60 + i % 9000, 1700000000 + int(i / 1000), 1700000060 + int(i / 1000), act
  }
}' > "$DIR/big.log"
gzip -k "$DIR/big.log"
"$BIN/examples/flowlog_to_parquet" "$DIR/big.log" "$DIR/big.parquet" 2>/dev/null

secs() { # command... -> wall seconds
  local t0 t1
  t0=$(date +%s.%N)
  "$@" > /dev/null
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}
rate() { echo "$N / $1 / 1000000" | bc -l | xargs printf '%.2f'; }

ls -l "$DIR" | awk 'NR > 1 { printf "%s %s bytes\n", $9, $5 }'
for run in 1 2; do
  zc=$(secs bash -c "zcat '$DIR/big.log.gz' | wc -l")
  wc=$(secs wc -l "$DIR/big.log")
  gz=$(secs "$BIN/sgplane" -c "$POLICY" replay "$DIR/big.log.gz")
  tx=$(secs "$BIN/sgplane" -c "$POLICY" replay "$DIR/big.log")
  pq=$(secs "$BIN/sgplane" -c "$POLICY" replay "$DIR/big.parquet")
  printf 'run %d: zcat|wc -l %s M lines/s, wc -l %s M/s; sgplane replay: gzip %s M records/s (%.2f x zcat|wc -l), text %s M/s (%.2f x wc -l), Parquet %s M/s (%.2f x zcat|wc -l)\n' \
    "$run" "$(rate "$zc")" "$(rate "$wc")" \
    "$(rate "$gz")" "$(echo "$zc / $gz" | bc -l)" \
    "$(rate "$tx")" "$(echo "$wc / $tx" | bc -l)" \
    "$(rate "$pq")" "$(echo "$zc / $pq" | bc -l)"
done
