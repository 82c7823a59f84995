#!/usr/bin/env bash
# Frames per second through `sgplane run` against the Linux kernel doing the
# same job (routing with the exported nftables ruleset and conntrack), on the
# same machine, in the same run, with the same offered load:
#
#   ns src ──veth── [ DUT ] ──veth── ns dst
#
#   DUT = sgplane run --iface --io af-packet (AF_PACKET rings) in a namespace of its own
#       = sgplane run --iface --io af-xdp (an XDP program on each veth hands
#         frames to AF_XDP sockets sharing one UMEM; copy mode on veth)
#       = sgplane run --tap   (TAP devices moved into src and dst)
#       = a router namespace: ip_forward, `sgplane export nftables | nft -f -`,
#         conntrack (the kernel's forward path)
#   The -rt modes run sgplane under `chrt -f 1` (SCHED_FIFO, inherited by its
#   threads): on a CPU it shares with the kernel's NAPI thread, sgplane's
#   threads are then not preempted by every wake-up of that thread.
#   tap-syscalls: TAP frames read and written one per system call
#   (--no-io-uring) instead of in io_uring bursts.
#
# The same policy judges all three (bench/policy.toml below: src may send UDP
# to dst's port 9; the addresses are the same in every topology).
# examples/udp_flood.rs sends 60-byte UDP frames (64 on the wire) from src's
# UDP sockets as fast as one thread can, over 256 flows (source ports
# 16384-16639), for SECONDS each; the result
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
# the DUT's ingress veth (GRO on, `threaded` on, kthread pinned; see
# napi_on_dut). Check with PROFILE=1 that the DUT's work lands on its CPU.
# "offered/s" is what the sender managed: where a DUT forwards all of it,
# the sender was the limit.
# On a machine with more cores, set DUT_CPUS (e.g. 1-3) and WORKERS.
#
# Usage (root): benches/inline-vs-kernel.sh [SECONDS]
#   env: SGPLANE=path (default target/release/sgplane, built if missing),
#        DUT_CPUS=1, SENDER_CPU=0, WORKERS=1, ROUNDS=3,
#        MODES="iface iface-rt iface-xdp iface-xdp-rt tap tap-rt tap-syscalls kernel",
#        PROFILE=1 to record a perf profile of the DUT CPU in each mode into $OUT/perf-MODE.data,
#        OUT=directory for logs, rulesets and profiles (default target/bench-inline).
# Needs: iproute2, nftables, ethtool, taskset; perf for PROFILE=1.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_EACH=${1:-5}
ROUNDS=${ROUNDS:-3}
SENDER_CPU=${SENDER_CPU:-0}
DUT_CPUS=${DUT_CPUS:-1}
WORKERS=${WORKERS:-1}
MODES=${MODES:-"iface iface-rt iface-xdp iface-xdp-rt tap tap-rt tap-syscalls kernel"}
OUT=${OUT:-target/bench-inline}
TAG=sgb$$
mkdir -p "$OUT"

[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)" >&2; exit 2; }
for t in ip tc nft taskset ethtool chrt; do
  command -v $t >/dev/null || { echo "needs $t (apt-get install iproute2 nftables ethtool util-linux)" >&2; exit 2; }
done
SGPLANE=${SGPLANE:-target/release/sgplane}
if [ ! -x "$SGPLANE" ]; then cargo build --release --quiet; fi
SGPLANE=$(realpath "$SGPLANE")
cargo build --release --quiet --example udp_flood
FLOOD=$(realpath target/release/examples/udp_flood)

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
# veth only hands a frame to its peer's NAPI when the frame is eligible for
# GRO: with TSO on the sending device, only a socket's frames are, and only
# when the receiver forwards UDP GRO; without `tso off` on src's end the whole
# DUT's work would run in the sender's context, on the sender's CPU.
# The sender also computes its checksums (`tx off`): AF_XDP cannot carry a
# checksum left to the hardware across (AF_PACKET and TAP can); done for
# every DUT alike.
napi_on_dut() {
  ip netns exec $TAG-src ethtool -K eth0 tso off tx off >/dev/null
  ip netns exec "$1" ethtool -K "$2" gro on >/dev/null
  ip netns exec "$1" sh -c "echo 1 > /sys/class/net/$2/threaded"
  sleep 0.2
  local p
  for p in $(pgrep "^napi/$2-"); do taskset -pc "$DUT_CPUS" "$p" >/dev/null; done
}

# Sends for SECONDS_EACH; prints frames/s received by dst's device $2, and
# frames/s sent. $3 and $5: MAC and address of src's next hop, set statically
# (src sends nothing but the flood).
measure() { # $1: src device, $2: dst device, $3: next-hop MAC, $4: mode, $5: next-hop address
  ip -n $TAG-src neigh replace "$5" lladdr "$3" dev "$1"
  local before after
  before=$(rx_packets "$2")
  if [ "${PROFILE:-0}" = 1 ] && command -v perf >/dev/null; then
    perf record -e cpu-clock -F 2000 -g -a -C "$DUT_CPUS" -o "$OUT/perf-$4.data" -- sleep "$SECONDS_EACH" >/dev/null 2>&1 &
    PIDS+=($!)
  fi
  ip netns exec $TAG-src taskset -c "$SENDER_CPU" \
    "$FLOOD" --to 10.80.2.20:9 --flows 256 --base-port 16384 --seconds "$SECONDS_EACH" >"$OUT/sender-$4.log" 2>&1 || true
  sleep 0.2
  after=$(rx_packets "$2")
  local sent
  sent=$(sed -n 's/^sent \([0-9]*\) .*/\1/p' "$OUT/sender-$4.log")
  echo "$(((after - before) / SECONDS_EACH)) $((${sent:-0} / SECONDS_EACH))"
}

declare -A RESULT

run_iface() { # $1: mode name, $2: af-packet|af-xdp, $3...: command the DUT runs under (e.g. chrt -f 1)
  local mode=$1 io=$2; shift 2
  hosts; ip netns add $TAG-dut
  ip link add eth0 netns $TAG-src type veth peer name side-a netns $TAG-dut
  ip link add eth0 netns $TAG-dst type veth peer name side-b netns $TAG-dut
  for d in side-a side-b; do
    ip netns exec $TAG-dut sysctl -qw net.ipv6.conf.$d.disable_ipv6=1
    ip -n $TAG-dut link set $d up
  done
  address_hosts eth0 eth0 inline
  napi_on_dut $TAG-dut side-a
  ip netns exec $TAG-dut taskset -c "$DUT_CPUS" "$@" "$SGPLANE" -c "$OUT/policy.toml" run \
    --iface side-a --iface side-b --io "$io" --workers "$WORKERS" >"$OUT/sgplane-$mode.out" 2>"$OUT/sgplane-$mode.err" &
  local pid=$!; PIDS+=($pid)
  sleep 1
  RESULT[$mode]+="$(measure eth0 eth0 "$(mac_of $TAG-dst eth0)" "$mode" 10.80.2.20);"
  kill -INT $pid; wait $pid || true
  sleep 0.5
  cleanup_ns
}

run_tap() { # $1: mode name, $2...: command the DUT runs under
  local mode=$1; shift
  local extra=()
  [ "$mode" = tap-syscalls ] && extra=(--no-io-uring)
  hosts; ip netns add $TAG-dut
  ip netns exec $TAG-dut taskset -c "$DUT_CPUS" "$@" "$SGPLANE" -c "$OUT/policy.toml" run \
    --tap tap-a --tap tap-b --workers "$WORKERS" "${extra[@]}" >"$OUT/sgplane-$mode.out" 2>"$OUT/sgplane-$mode.err" &
  local pid=$!; PIDS+=($pid)
  for _ in $(seq 50); do ip -n $TAG-dut link show tap-b >/dev/null 2>&1 && break; sleep 0.1; done
  ip -n $TAG-dut link set tap-a netns $TAG-src
  ip -n $TAG-dut link set tap-b netns $TAG-dst
  address_hosts tap-a tap-b inline
  # The same queueing as veth (noqueue) on the sender's side: with a TAP's
  # default pfifo_fast the sender pays for a qdisc the other topologies lack.
  ip netns exec $TAG-src tc qdisc replace dev tap-a root noqueue 2>/dev/null || true
  sleep 0.5
  RESULT[$mode]+="$(measure tap-a tap-b "$(mac_of $TAG-dst tap-b)" "$mode" 10.80.2.20);"
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
  RESULT[kernel]+="$(measure eth0 eth0 "$(mac_of $TAG-rtr to-src)" kernel 10.80.1.1);"
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
      iface) run_iface iface af-packet env ;;
      iface-xdp) run_iface iface-xdp af-xdp env ;;
      iface-xdp-rt) run_iface iface-xdp-rt af-xdp chrt -f 1 ;;
      tap) run_tap tap env ;;
      iface-rt) run_iface iface-rt af-packet chrt -f 1 ;;
      tap-rt) run_tap tap-rt chrt -f 1 ;;
      tap-syscalls) run_tap tap-syscalls env ;;
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
for m in kernel iface iface-rt iface-xdp iface-xdp-rt tap tap-rt tap-syscalls; do
  [ -n "${RESULT[$m]:-}" ] || continue
  read -r f sent <<<"${RESULT[$m]}"
  case $m in
    kernel) label="kernel (nftables export + conntrack)";;
    iface) label="sgplane run --iface (AF_PACKET)";;
    tap) label="sgplane run --tap";;
    iface-rt) label="chrt -f 1 sgplane run --iface";;
    iface-xdp) label="sgplane run --iface --io af-xdp";;
    iface-xdp-rt) label="chrt -f 1 sgplane --io af-xdp";;
    tap-rt) label="chrt -f 1 sgplane run --tap";;
    tap-syscalls) label="sgplane run --tap --no-io-uring";;
  esac
  awk -v l="$label" -v f="$f" -v kf="$kf" -v sent="${sent:-0}" 'BEGIN {
    r = "-"; if (kf > 0) r = sprintf("%.2f", f / kf)
    printf "%-38s %10d %6s %12d\n", l, f, r, sent
  }'
done
for m in $MODES; do
  # `if`, not `&&`: a mode without a summary (kernel) must not become the exit status.
  if [ -f "$OUT/sgplane-$m.out" ]; then
    echo "--- sgplane --$m summary"
    cat "$OUT/sgplane-$m.out"
  fi
done
exit 0
