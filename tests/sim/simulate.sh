#!/bin/sh
# Simulates mpigan's training step on fat-tree clusters with SimGrid's SMPI and compares the
# simulated step time with docs/scaling_model.py's prediction (docs/scaling.md).
#
#   tests/sim/simulate.sh [--model mnist] [--regime strong|weak] [--ranks "64 512"]
#                         [--gbps "25"] [--rows R] [--steps 1] [--scale 1] [--factors ideal|smpi]
#                         [--allreduce ompi|ring] [--path replicated|sharded] [--node R]
#                         [--bf16 0|1] [--node-buckets 1|0]
#
# For each rank count N and bandwidth: writes a two-level fat tree with full bisection (leaves of
# L = 2^ceil(log2(N)/2) hosts, L spine switches, every link the given bandwidth, alpha/4 latency so
# that a message between leaves crosses 4 links in alpha = 2 us, the model's), and runs
# tests/sim/skeleton.c on N simulated ranks: per step the measured compute of r rows per rank as
# smpi_execute_flops at the host's speed, and the real allreduces of D's and G's gradients with
# Open MPI's algorithm choice (smpi/coll-selector:ompi).
#   --regime strong: the model's global batch B (100 for the paper's models, 64 DCGAN, 128 the
#     convolutional CIFAR-10 model), r = B/N rows per rank; weak: --rows per rank (default B).
#   Models with synchronised batch norms (DCGAN) also sum their statistics in small allreduces
#     inside the compute (the "BN sums" column).
#   --scale s: simulate buffers s times smaller on links s times slower. Each message's time is
#     latency + size/bandwidth and bandwidth sharing is linear, so this changes no simulated time
#     when the network factors are ideal; it divides the simulator's memory (SMPI gives each rank
#     a private temporary buffer as large as the message) and run time by about s.
#   --allreduce ompi (default): the algorithm Open MPI's decision picks (Rabenseifner's for these
#     sizes); ring: SMPI's logical ring ("lr"), against the model's ring formula.
#   --factors ideal (default): SMPI's bandwidth and latency factors 1 and no TCP cross traffic,
#     the model's assumptions; smpi: SimGrid's defaults, calibrated on a real TCP cluster.
#   --path sharded: the current step (skeleton.c's --path sharded: buckets overlapped with the
#     backward pass, the sharded update, bf16 with --bf16 1) against the model's
#     current_step_time, on the same fat tree of N / R hosts with R ranks each (--node R: `core`
#     R on each host, and a loopback of ALPHA_NODE and a core's memory rate for the messages
#     between ranks of one host, which are only barriers and small sums: the node's gradient sum
#     is shared memory, given to the skeleton as the model's memory time; nodes of R > 1 ranks
#     sum in buckets during the backward pass as mpigan does between nodes, or with
#     --node-buckets 0 after it, as with bucket_mb: 0). smpi/test:0: SMPI
#     would otherwise stall an MPI_Testall of unfinished requests for a polling time that grows
#     with every call (100 us upwards), which mpigan's progress calls between layers do not cost.
# Prints a markdown table. Needs smpicc and smpirun (apt-get install libsimgrid-dev) and python3.
set -eu
here=$(cd "$(dirname "$0")/../.." && pwd)
model=mnist regime=strong ranks_list="64 512" gbps_list=25 rows= steps=1 scale=1 factors=ideal
allreduce=ompi path=replicated node=1 bf16=0 node_buckets=1
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || { echo "simulate.sh: $1 needs a value" >&2; exit 2; }
  case $1 in
    --model) model=$2 ;;
    --regime) regime=$2 ;;
    --ranks) ranks_list=$2 ;;
    --gbps) gbps_list=$2 ;;
    --rows) rows=$2 ;;
    --steps) steps=$2 ;;
    --scale) scale=$2 ;;
    --factors) factors=$2 ;;
    --allreduce) allreduce=$2 ;;
    --path) path=$2 ;;
    --node) node=$2 ;;
    --bf16) bf16=$2 ;;
    --node-buckets) node_buckets=$2 ;;
    *) echo "simulate.sh: unknown option $1 (see the comment at the top)" >&2; exit 2 ;;
  esac
  shift 2
done
case $regime in strong|weak) ;; *) echo "simulate.sh: --regime is strong or weak" >&2; exit 2 ;; esac
case $path in replicated|sharded) ;; *) echo "simulate.sh: --path is replicated or sharded" >&2; exit 2 ;; esac
case $bf16 in 0|1) ;; *) echo "simulate.sh: --bf16 is 0 or 1" >&2; exit 2 ;; esac
case $node_buckets in 0|1) ;; *) echo "simulate.sh: --node-buckets is 0 or 1" >&2; exit 2 ;; esac
case $node in ''|*[!0-9]*|0) echo "simulate.sh: --node is a positive whole number" >&2; exit 2 ;; esac
[ "$path" = sharded ] || [ "$node" = 1 ] || { echo "simulate.sh: --node needs --path sharded" >&2; exit 2; }
case $factors in
  ideal) net_cfg="--cfg=smpi/bw-factor:0:1 --cfg=smpi/lat-factor:0:1 --cfg=network/crosstraffic:0" ;;
  smpi) net_cfg="" ;;
  *) echo "simulate.sh: --factors is ideal or smpi" >&2; exit 2 ;;
esac
case $allreduce in
  ompi) coll_cfg="" algorithm=rabenseifner ;;
  ring) coll_cfg="--cfg=smpi/allreduce:lr" algorithm=ring ;;
  *) echo "simulate.sh: --allreduce is ompi or ring" >&2; exit 2 ;;
esac
for tool in smpicc smpirun python3; do
  command -v "$tool" >/dev/null || { echo "simulate.sh: $tool not found" >&2; exit 2; }
done
model_py=$here/docs/scaling_model.py
work=${SIM_WORK:-$(mktemp -d /tmp/mpigan-sim-XXXXXX)}
mkdir -p "$work"
smpicc -O2 -Wall -Wextra -o "$work/skeleton" "$here/tests/sim/skeleton.c" 2>"$work/smpicc.log" ||
  { cat "$work/smpicc.log" >&2; exit 1; }
speed=$(python3 "$model_py" rate --model "$model")
batch=$(python3 "$model_py" batch --model "$model")
[ -n "$rows" ] || rows=$batch
alpha_link=0.5e-6  # alpha / 4

# fat_tree N GBPS FILE [R]: a full-bisection two-level fat tree of at least N hosts of R ranks
# (cores) each, default 1; hostfile FILE.hosts lists each host R times, ranks host by host
fat_tree() {
  hosts=$1 bw=$2 file=$3 per=${4:-1}
  loop_bw=$(python3 -c "import sys; sys.path.insert(0, '$here/docs'); import scaling_model as m; print(m.STREAM)")
  loop_lat=$(python3 -c "import sys; sys.path.insert(0, '$here/docs'); import scaling_model as m; print(m.ALPHA_NODE)")
  leaf=$(python3 -c "import math; print(2 ** math.ceil(math.log2(max($hosts, 2)) / 2))")
  leaves=$(((hosts + leaf - 1) / leaf))
  cat >"$file" <<EOF
<?xml version='1.0'?>
<!DOCTYPE platform SYSTEM "https://simgrid.org/simgrid.dtd">
<platform version="4.1">
  <!-- $hosts hosts: $leaves leaf switches of $leaf hosts, $leaf spine switches, one link each way -->
  <cluster id="fattree" prefix="host-" suffix="" radical="0-$((leaf * leaves - 1))"
           speed="${speed}f" core="$per" bw="${bw}bps" lat="${alpha_link}s" sharing_policy="SPLITDUPLEX"
           loopback_bw="${loop_bw}Bps" loopback_lat="${loop_lat}s" topology="FAT_TREE" topo_parameters="2;$leaf,$leaves;1,$leaf;1,1"/>
</platform>
EOF
  i=0
  : >"$file.hosts"
  while [ $i -lt "$hosts" ]; do
    j=0
    while [ $j -lt "$per" ]; do echo "host-$i" >>"$file.hosts"; j=$((j + 1)); done
    i=$((i + 1))
  done
}

# --path sharded: one row per N and bandwidth of the current step against current_step_time
if [ "$path" = sharded ]; then
  echo "| model | regime | ranks | ranks/node | bf16 | rows/rank | Gbit/s | simulated step ms | D sum ms | G sum ms | D gather ms | G gather ms | model step ms | simulated efficiency | model efficiency | sim/model |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  for n in $ranks_list; do
    [ $((n % node)) -eq 0 ] || { echo "simulate.sh: --node $node does not divide $n ranks" >&2; exit 2; }
    r=$rows
    [ "$regime" = strong ] && r=$(python3 -c "print($batch / $n)")
    args=$(python3 "$model_py" skeleton-args --model "$model" --ranks "$n" --rows "$r" \
      --host-speed "$speed" --scale "$scale" --path sharded --node "$node" --bf16 "$bf16" \
      --node-buckets "$node_buckets")
    for gbps in $gbps_list; do
      link_bw=$(python3 -c "print($gbps * 1e9 / $scale)")
      platform=$work/fattree-$n-$gbps-$node.xml
      fat_tree $((n / node)) "$link_bw" "$platform" "$node"
      # shellcheck disable=SC2086
      smpirun -np "$n" -platform "$platform" -hostfile "$platform.hosts" \
        --cfg=smpi/coll-selector:ompi --cfg=smpi/privatization:no \
        --cfg=smpi/simulate-computation:no --cfg=smpi/test:0 $net_cfg --log=root.thresh:warning \
        "$work/skeleton" $args --steps "$steps" --warmup 1 >"$work/out-$n-$gbps-$node-$bf16" 2>&1 ||
        { cat "$work/out-$n-$gbps-$node-$bf16" >&2; echo "simulate.sh: smpirun failed for $n ranks" >&2; exit 1; }
      sim=$(grep '^ranks=' "$work/out-$n-$gbps-$node-$bf16")
      pred=$(python3 "$model_py" step --model "$model" --ranks "$n" --rows "$r" --gbps "$gbps" \
        --path sharded --node "$node" --bf16 "$bf16" --node-buckets "$node_buckets")
      one=$(python3 "$model_py" step --model "$model" --ranks 1 --rows \
        "$([ "$regime" = strong ] && echo "$batch" || echo "$r")" --gbps "$gbps")
      python3 - "$model" "$regime" "$n" "$node" "$bf16" "$r" "$gbps" "$sim" "$pred" "$one" <<'PY'
import sys
model, regime, n, node, bf16, r, gbps, sim, pred, one = sys.argv[1:]
kv = lambda s: {k: float(v) for k, v in (x.split("=") for x in s.split())}
sim, pred, one, n = kv(sim), kv(pred), kv(one), int(n)
work = n if regime == "strong" else 1
es = one["step_s"] / (work * sim["step_s"])
em = one["step_s"] / (work * pred["step_s"])
ms = lambda x: f"{1e3 * x:.2f}"
print(f"| {model} | {regime} | {n} | {node} | {'yes' if bf16 == '1' else 'no'} | {float(r):g} "
      f"| {gbps} | {ms(sim['step_s'])} | {ms(sim['d_sum_s'])} | {ms(sim['g_sum_s'])} "
      f"| {ms(sim['d_gather_s'])} | {ms(sim['g_gather_s'])} | {ms(pred['step_s'])} "
      f"| {100 * es:.1f}% | {100 * em:.1f}% | {sim['step_s'] / pred['step_s']:.3f} |")
PY
    done
  done
  exit 0
fi

echo "| model | regime | ranks | rows/rank | Gbit/s | simulated step ms | D allreduce ms | G allreduce ms | BN sums ms | model step ms | simulated efficiency | model efficiency | sim/model |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for n in $ranks_list; do
  r=$rows
  [ "$regime" = strong ] && r=$(python3 -c "print($batch / $n)")
  args=$(python3 "$model_py" skeleton-args --model "$model" --ranks "$n" --rows "$r" \
    --host-speed "$speed" --scale "$scale")
  for gbps in $gbps_list; do
    link_bw=$(python3 -c "print($gbps * 1e9 / $scale)")
    platform=$work/fattree-$n-$gbps.xml
    fat_tree "$n" "$link_bw" "$platform"
    # shellcheck disable=SC2086
    smpirun -np "$n" -platform "$platform" -hostfile "$platform.hosts" \
      --cfg=smpi/coll-selector:ompi --cfg=smpi/privatization:no \
      --cfg=smpi/simulate-computation:no $coll_cfg $net_cfg --log=root.thresh:warning \
      "$work/skeleton" $args --steps "$steps" --warmup 0 >"$work/out-$n-$gbps" 2>&1 ||
      { cat "$work/out-$n-$gbps" >&2; echo "simulate.sh: smpirun failed for $n ranks" >&2; exit 1; }
    sim=$(grep '^ranks=' "$work/out-$n-$gbps")
    pred=$(python3 "$model_py" step --model "$model" --ranks "$n" --rows "$r" --gbps "$gbps" \
      --algorithm "$algorithm")
    one=$(python3 "$model_py" step --model "$model" --ranks 1 --rows \
      "$([ "$regime" = strong ] && echo "$batch" || echo "$r")" --gbps "$gbps")
    python3 - "$model" "$regime" "$n" "$r" "$gbps" "$sim" "$pred" "$one" <<'PY'
import sys
model, regime, n, r, gbps, sim, pred, one = sys.argv[1:]
kv = lambda s: {k: float(v) for k, v in (x.split("=") for x in s.split())}
sim, pred, one, n = kv(sim), kv(pred), kv(one), int(n)
work = n if regime == "strong" else 1  # T(1) / (N T(N)) or T(1) / T(N)
es = one["step_s"] / (work * sim["step_s"])
em = one["step_s"] / (work * pred["step_s"])
print(f"| {model} | {regime} | {n} | {float(r):g} | {gbps} | {1e3 * sim['step_s']:.2f} "
      f"| {1e3 * sim['d_allreduce_s']:.2f} | {1e3 * sim['g_allreduce_s']:.2f} "
      f"| {1e3 * sim['bn_allreduce_s']:.2f} "
      f"| {1e3 * pred['step_s']:.2f} | {100 * es:.1f}% | {100 * em:.1f}% "
      f"| {sim['step_s'] / pred['step_s']:.3f} |")
PY
  done
done
