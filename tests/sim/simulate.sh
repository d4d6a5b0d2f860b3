#!/bin/sh
# Simulates mpigan's training step on fat-tree clusters with SimGrid's SMPI and compares the
# simulated step time with docs/scaling_model.py's prediction (docs/scaling.md).
#
#   tests/sim/simulate.sh [--model mnist] [--regime strong|weak] [--ranks "64 512"]
#                         [--gbps "25"] [--rows R] [--steps 1] [--scale 1] [--factors ideal|smpi]
#                         [--allreduce ompi|ring]
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
# Prints a markdown table. Needs smpicc and smpirun (apt-get install libsimgrid-dev) and python3.
set -eu
here=$(cd "$(dirname "$0")/../.." && pwd)
model=mnist regime=strong ranks_list="64 512" gbps_list=25 rows= steps=1 scale=1 factors=ideal
allreduce=ompi
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
    *) echo "simulate.sh: unknown option $1 (see the comment at the top)" >&2; exit 2 ;;
  esac
  shift 2
done
case $regime in strong|weak) ;; *) echo "simulate.sh: --regime is strong or weak" >&2; exit 2 ;; esac
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

# fat_tree N GBPS FILE: a full-bisection two-level fat tree of at least N hosts; hostfile FILE.hosts
fat_tree() {
  n=$1 bw=$2 file=$3
  leaf=$(python3 -c "import math; print(2 ** math.ceil(math.log2($n) / 2))")
  leaves=$(((n + leaf - 1) / leaf))
  cat >"$file" <<EOF
<?xml version='1.0'?>
<!DOCTYPE platform SYSTEM "https://simgrid.org/simgrid.dtd">
<platform version="4.1">
  <!-- $n ranks: $leaves leaf switches of $leaf hosts, $leaf spine switches, one link each way -->
  <cluster id="fattree" prefix="host-" suffix="" radical="0-$((leaf * leaves - 1))"
           speed="${speed}f" bw="${bw}bps" lat="${alpha_link}s" sharing_policy="SPLITDUPLEX"
           topology="FAT_TREE" topo_parameters="2;$leaf,$leaves;1,$leaf;1,1"/>
</platform>
EOF
  i=0
  : >"$file.hosts"
  while [ $i -lt "$n" ]; do echo "host-$i" >>"$file.hosts"; i=$((i + 1)); done
}

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
