#!/usr/bin/env bash
# Frames per second through `sgplane run` against the Linux kernel doing the
# same job (routing with the exported nftables ruleset and conntrack), on the
# same machine, in the same run, with the same offered load:
#
#   ns src ──veth── [ DUT ] ──veth── ns dst
#
#   DUT = sgplane run --iface (AF_PACKET rings) in a namespace of its own
#       = sgplane run --tap   (TAP devices moved into src and dst)
#       = a router namespace: ip_forward, `sgplane export nftables | nft -f -`,
#         conntrack (the kernel's forward path)
#
# The same policy judges all three (bench/policy.toml below: src may send UDP
# to dst's port 9; the addresses are the same in every topology). trafgen
# (netsniff-ng) sends 60-byte UDP frames (64 on the wire) from src as fast as it
# can, over 256 flows (source ports 16384-16639), for SECONDS each; the result
# is the frames dst's interface received per second (its rx_packets counter),
# which is what got through the DUT. dst drops them at prerouting, so its own
# per-packet cost (which lands on the DUT's CPU in every topology: veth
# delivers in the sender's context) is small and no ICMP errors come back.
# Each DUT is measured ROUNDS times, interleaved, and the median is shown:
# on a shared machine, other load comes and goes.
#
# CPUs: the sender is pinned to CPU 0 and the DUT gets CPU 1: sgplane's
# threads are pinned there; the kernel router's forwarding (and the AF_PACKET
# ring fill of sgplane --iface) runs there too, in the threaded NAPI poller of
# the DUT's ingress veth (GRO on, `threaded` on, kthread pinned). RPS would be
# the usual tool, but on this VM it stalls the sender. "offered/s" is what the
# sender managed: where a DUT forwards all of it, the sender was the limit.
# On a machine with more cores, set DUT_CPUS (e.g. 1-3) and WORKERS.
#
# Usage (root): benches/inline-vs-kernel.sh [SECONDS]
#   env: SGPLANE=path (default target/release/sgplane, built if missing),
#        DUT_CPUS=1, SENDER_CPU=0, WORKERS=1, MODES="iface tap kernel", ROUNDS=3,
#        PROFILE=1 to record a perf profile of the DUT CPU (--iface) into $OUT,
#        OUT=directory for logs, rulesets and profiles (default target/bench-inline).
# Needs: iproute2, nftables, netsniff-ng (trafgen), ethtool, taskset; perf for PROFILE=1.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_EACH=${1:-5}
ROUNDS=${ROUNDS:-3}
SENDER_CPU=${SENDER_CPU:-0}
DUT_CPUS=${DUT_CPUS:-1}
WORKERS=${WORKERS:-1}
MODES=${MODES:-"iface tap kernel"}
OUT=${OUT:-target/bench-inline}
TAG=sgb$$
mkdir -p "$OUT"

[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)" >&2; exit 2; }
for t in ip nft trafgen taskset ethtool; do
  command -v $t >/dev/null || { echo "needs $t (apt-get install iproute2 nftables netsniff-ng ethtool util-linux)" >&2; exit 2; }
done
SGPLANE=${SGPLANE:-target/release/sgplane}
if [ ! -x "$SGPLANE" ]; then cargo build --release --quiet; fi
SGPLANE=$(realpath "$SGPLANE")

# Whatever happens, leave nothing behind.
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for ns in src dst dut rtr; do ip netns del $TAG-$ns 2>/dev/null || true; done
}
trap cleanup EXIT

cat >"$OUT/policy.toml" <<'EOF'
[security_groups.sg-src]
egress = [ { proto = "udp", ports = "9", to = "sg-dst" } ]
[security_groups.sg-dst]
ingress = [ { proto = "udp", ports = "9", from = "sg-src" } ]
egress = [ { proto = "icmp", to = "sg-src" } ]
[interfaces.src]
addresses = ["10.80.1.10"]
security_groups = ["sg-src"]
[interfaces.dst]
addresses = ["10.80.2.20"]
security_groups = ["sg-dst"]
EOF

mac_of() { ip -n "$1" -j link show "$2" | sed -n 's/.*"address":"\([0-9a-f:]*\)".*/\1/p'; }

# trafgen configuration: 60-byte UDP frames to MAC $1, source ports 16384-16639.
trafgen_conf() {
  local dmac=0x${1//:/, 0x}
  cat <<EOF
{
  $dmac,
  0x02, 0x00, 0x00, 0x00, 0x00, 0x10,
  c16(0x0800),
  0x45, 0x00, c16(46), c16(0), c16(0x4000), 64, 17, csumip(14, 33),
  10, 80, 1, 10,
  10, 80, 2, 20,
  0x40, dinc(0, 255), c16(9), c16(26), c16(0),
  fill(0x41, 18),
}
EOF
}

# The two hosts, with the same addresses in every topology. Inline, they
# share one link, so each reaches the other's subnet directly.
hosts() {
  for ns in src dst; do ip netns add $TAG-$ns; ip -n $TAG-$ns link set lo up; done
}
address_hosts() { # $1: device in src, $2: device in dst, $3: inline|routed
  ip -n $TAG-src addr add 10.80.1.10/24 dev "$1"; ip -n $TAG-src link set "$1" up
  ip -n $TAG-dst addr add 10.80.2.20/24 dev "$2"; ip -n $TAG-dst link set "$2" up
  for ns in src dst; do ip netns exec $TAG-$ns sysctl -qw net.ipv6.conf.all.disable_ipv6=1; done
  if [ "$3" = inline ]; then
    ip -n $TAG-src route add 10.80.2.0/24 dev "$1"
    ip -n $TAG-dst route add 10.80.1.0/24 dev "$2"
  else
    ip -n $TAG-src route add default via 10.80.1.1
    ip -n $TAG-dst route add default via 10.80.2.1
  fi
  ip netns exec $TAG-dst nft -f - <<'NFT'
table ip sink {
  chain prerouting { type filter hook prerouting priority raw; udp dport 9 drop; }
}
NFT
}

rx_packets() { ip netns exec $TAG-dst cat /sys/class/net/"$1"/statistics/rx_packets; }

# Runs the NAPI poller of device $2 in namespace $1 in a thread on the DUT CPUs.
napi_on_dut() {
  ip netns exec "$1" ethtool -K "$2" gro on >/dev/null
  ip netns exec "$1" sh -c "echo 1 > /sys/class/net/$2/threaded"
  sleep 0.2
  local p
  for p in $(pgrep "^napi/$2-"); do taskset -pc "$DUT_CPUS" "$p" >/dev/null; done
}

# Sends for SECONDS_EACH; prints frames/s received by dst's device $2, and
# frames/s sent.
measure() { # $1: src device, $2: dst device, $3: next-hop MAC, $4: mode
  trafgen_conf "$3" >"$OUT/trafgen.cfg"
  local before after
  before=$(rx_packets "$2")
  ip netns exec $TAG-src taskset -c "$SENDER_CPU" \
    timeout "$SECONDS_EACH" trafgen -q -P 1 -i "$OUT/trafgen.cfg" -o "$1" >"$OUT/trafgen-$4.log" 2>&1 || true
  sleep 0.2
  after=$(rx_packets "$2")
  local sent
  sent=$(tr -d '\r' <"$OUT/trafgen-$4.log" | sed -n 's/^ *\([0-9]*\) packets outgoing.*/\1/p' | head -1)
  echo "$(((after - before) / SECONDS_EACH)) $((${sent:-0} / SECONDS_EACH))"
}

declare -A RESULT

run_iface() {
  hosts; ip netns add $TAG-dut
  ip link add eth0 netns $TAG-src type veth peer name side-a netns $TAG-dut
  ip link add eth0 netns $TAG-dst type veth peer name side-b netns $TAG-dut
  for d in side-a side-b; do
    ip netns exec $TAG-dut sysctl -qw net.ipv6.conf.$d.disable_ipv6=1
    ip -n $TAG-dut link set $d up
  done
  address_hosts eth0 eth0 inline
  napi_on_dut $TAG-dut side-a
  ip netns exec $TAG-dut taskset -c "$DUT_CPUS" "$SGPLANE" -c "$OUT/policy.toml" run \
    --iface side-a --iface side-b --workers "$WORKERS" >"$OUT/sgplane-iface.out" 2>"$OUT/sgplane-iface.err" &
  local pid=$!; PIDS+=($pid)
  sleep 1
  if [ "${PROFILE:-0}" = 1 ] && command -v perf >/dev/null; then
    perf record -e cpu-clock -F 2000 -g -a -C "$DUT_CPUS" -o "$OUT/perf-iface.data" -- sleep "$SECONDS_EACH" >/dev/null 2>&1 &
    PIDS+=($!)
  fi
  RESULT[iface]+="$(measure eth0 eth0 "$(mac_of $TAG-dst eth0)" iface);"
  kill -INT $pid; wait $pid || true
  sleep 0.5
  cleanup_ns
}

run_tap() {
  hosts; ip netns add $TAG-dut
  ip netns exec $TAG-dut taskset -c "$DUT_CPUS" "$SGPLANE" -c "$OUT/policy.toml" run \
    --tap tap-a --tap tap-b --workers "$WORKERS" >"$OUT/sgplane-tap.out" 2>"$OUT/sgplane-tap.err" &
  local pid=$!; PIDS+=($pid)
  for _ in $(seq 50); do ip -n $TAG-dut link show tap-b >/dev/null 2>&1 && break; sleep 0.1; done
  ip -n $TAG-dut link set tap-a netns $TAG-src
  ip -n $TAG-dut link set tap-b netns $TAG-dst
  address_hosts tap-a tap-b inline
  sleep 0.5
  RESULT[tap]+="$(measure tap-a tap-b "$(mac_of $TAG-dst tap-b)" tap);"
  kill -INT $pid; wait $pid || true
  sleep 0.5
  cleanup_ns
}

run_kernel() {
  hosts; ip netns add $TAG-rtr
  ip link add eth0 netns $TAG-src type veth peer name to-src netns $TAG-rtr
  ip link add eth0 netns $TAG-dst type veth peer name to-dst netns $TAG-rtr
  ip -n $TAG-rtr addr add 10.80.1.1/24 dev to-src; ip -n $TAG-rtr link set to-src up
  ip -n $TAG-rtr addr add 10.80.2.1/24 dev to-dst; ip -n $TAG-rtr link set to-dst up
  ip netns exec $TAG-rtr sysctl -qw net.ipv4.ip_forward=1
  "$SGPLANE" -c "$OUT/policy.toml" export nftables >"$OUT/ruleset.nft"
  ip netns exec $TAG-rtr nft -f "$OUT/ruleset.nft"
  napi_on_dut $TAG-rtr to-src
  address_hosts eth0 eth0 routed
  # The router must know dst's MAC before the flood starts.
  ip netns exec $TAG-rtr ping -c1 -W1 10.80.2.20 >/dev/null 2>&1 || ip -n $TAG-rtr neigh replace 10.80.2.20 lladdr "$(mac_of $TAG-dst eth0)" dev to-dst
  RESULT[kernel]+="$(measure eth0 eth0 "$(mac_of $TAG-rtr to-src)" kernel);"
  ip netns exec $TAG-rtr nft list table inet sgplane >"$OUT/ruleset-after.nft"
  cleanup_ns
}

cleanup_ns() { for ns in src dst dut rtr; do ip netns del $TAG-$ns 2>/dev/null || true; done; }

echo "sgplane inline vs the Linux kernel: 60-byte UDP frames, 256 flows, ${SECONDS_EACH}s each, median of $ROUNDS;"
echo "sender on CPU $SENDER_CPU, DUT on CPU $DUT_CPUS, sgplane --workers $WORKERS; $(nproc) CPUs, $(uname -r)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$ROUNDS"); do
  for m in $MODES; do
    case $m in
      iface) run_iface ;;
      tap) run_tap ;;
      kernel) run_kernel ;;
      *) echo "unknown mode $m" >&2; exit 2 ;;
    esac
  done
  echo "round $r: $(for m in $MODES; do printf '%s %s  ' $m "$(echo "${RESULT[$m]}" | tr ';' '\n' | tail -2 | head -1 | cut -d' ' -f1)"; done)"
done
# The median round of each DUT (by frames/s).
for m in $MODES; do
  RESULT[$m]=$(echo "${RESULT[$m]}" | tr ';' '\n' | sed '/^$/d' | sort -n | awk '{ a[NR] = $0 } END { print a[int((NR + 1) / 2)] }')
done

read -r kf _ <<<"${RESULT[kernel]:-0 0}"
printf '%-38s %10s %6s %12s\n' "DUT" "frames/s" "ratio" "offered/s"
for m in kernel iface tap; do
  [ -n "${RESULT[$m]:-}" ] || continue
  read -r f sent <<<"${RESULT[$m]}"
  case $m in
    kernel) label="kernel (nftables export + conntrack)";;
    iface) label="sgplane run --iface (AF_PACKET)";;
    tap) label="sgplane run --tap";;
  esac
  awk -v l="$label" -v f="$f" -v kf="$kf" -v sent="${sent:-0}" 'BEGIN {
    r = "-"; if (kf > 0) r = sprintf("%.2f", f / kf)
    printf "%-38s %10d %6s %12d\n", l, f, r, sent
  }'
done
for m in iface tap; do
  [ -f "$OUT/sgplane-$m.out" ] && { echo "--- sgplane --$m summary"; cat "$OUT/sgplane-$m.out"; }
done
