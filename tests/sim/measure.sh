#!/bin/sh
# Measures mpigan's step time on this machine, for the scaling model (docs/scaling.md).
#   tests/sim/measure.sh ranks STEPS REPEATS N...   global batch 100 on N ranks (strong scaling)
#   tests/sim/measure.sh rows STEPS REPEATS R...    1 rank, global batch R: per-rank compute at R rows
#   tests/sim/measure.sh allreduce STEPS REPEATS N...  the MNIST model's two allreduces alone on N
#                                                     ranks: tests/sim/skeleton.c built with mpicc
# CONFIG picks the configuration (default configs/fashion-mnist.yaml); further mpigan options
# go in MPIGAN_OPTS (e.g. data paths). Each case runs REPEATS times and the run with the shortest
# step time is kept: on a shared machine other jobs only ever slow a run down. Prints one markdown
# row per case, times per step in milliseconds, mean over ranks; runs stay in $MEASURE_DIR.
# Ranks are not bound to cores (--bind-to none): Open MPI's default binds rank 0 to core 0, where
# another job may already be pinned (on the machine of docs/scaling.md, a long training run was),
# and two processes sharing one core while the other idles measures nothing useful.
set -eu
here=$(cd "$(dirname "$0")/../.." && pwd)
[ $# -ge 4 ] || { echo "usage: measure.sh ranks|rows|allreduce STEPS REPEATS N..." >&2; exit 2; }
mode=$1 steps=$2 repeats=$3
shift 3
mpigan=${MPIGAN:-$here/build/mpigan}
config=${CONFIG:-$here/configs/fashion-mnist.yaml}
dir=${MEASURE_DIR:-$(mktemp -d /tmp/mpigan-measure-XXXXXX)}
[ -x "$mpigan" ] || { echo "measure.sh: $mpigan not built" >&2; exit 2; }
case $mode in
  ranks|rows|allreduce) ;;
  *) echo "measure.sh: mode is ranks, rows or allreduce, not '$mode'" >&2; exit 2 ;;
esac
mkdir -p "$dir"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1

if [ "$mode" = allreduce ]; then
  mpicc -O2 -o "$dir/skeleton-mpi" "$here/tests/sim/skeleton.c"
  echo "| ranks | D allreduce ms (4.93 MB) | G allreduce ms (10.0 MB) | load |"
  echo "|---|---|---|---|"
  for n in "$@"; do
    : >"$dir/allreduce$n.txt"
    i=0
    while [ "$i" -lt "$repeats" ]; do
      load=$(cut -d' ' -f1 /proc/loadavg)
      mpirun -q --oversubscribe --bind-to none -np "$n" "$dir/skeleton-mpi" \
        --d-floats 1231445 --g-floats 2503988 --d-flops 0 --g-flops 0 --steps "$steps" --warmup 2 |
        sed "s/\$/ load=$load/" >>"$dir/allreduce$n.txt"
      i=$((i + 1))
    done
    # the fastest rank's time (the one that waited least for the others), best run
    python3 - "$dir/allreduce$n.txt" <<'PY'
import sys
runs = [dict(kv.split("=") for kv in line.split()) for line in open(sys.argv[1])
        if line.startswith("ranks=")]
best = min(runs, key=lambda r: float(r["d_allreduce_min_s"]) + float(r["g_allreduce_min_s"]))
print(f"| {best['ranks']} | {1e3 * float(best['d_allreduce_min_s']):.2f} "
      f"| {1e3 * float(best['g_allreduce_min_s']):.2f} | {best['load']} |")
PY
  done
  exit 0
fi

echo "| ranks | rows/rank | samples/s | step ms | D compute | D allreduce | G compute | G allreduce | update | data | load | samples/s of each run |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for n in "$@"; do
  ranks=$n batch=100
  [ "$mode" = rows ] && ranks=1 batch=$n
  i=0
  while [ "$i" -lt "$repeats" ]; do
    out=$dir/$mode$n-$i
    rm -rf "$out"
    load=$(cut -d' ' -f1 /proc/loadavg)
    # shellcheck disable=SC2086
    mpirun -q --oversubscribe --bind-to none -np "$ranks" "$mpigan" train "$config" \
      --steps "$steps" --out "$out" --quiet --force --set train.batch_size="$batch" --set samples.every=0 --set checkpoint.every=0 \
      --set train.check_every=0 ${MPIGAN_OPTS:-}
    echo "$load" >"$out/load"
    i=$((i + 1))
  done
  python3 - "$dir" "$mode$n" "$repeats" <<'PY'
import json, sys
d, case, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
phases = ["d_compute", "d_allreduce", "g_compute", "g_allreduce", "update", "data"]
runs = []
for i in range(repeats):
    r = json.load(open(f"{d}/{case}-{i}/run.json"))
    load = open(f"{d}/{case}-{i}/load").read().strip()
    ms = {p: 1e3 * r["timers"][p]["mean"] / r["steps"] for p in phases}
    runs.append((sum(ms.values()), ms, r, load))
step, ms, r, load = min(runs, key=lambda x: x[0])
every = ", ".join(f"{x[2]['samples_per_s']:.0f}" for x in runs)
print(f"| {r['ranks']} | {r['global_batch'] // r['ranks']} | {r['samples_per_s']:.0f} | {step:.2f} | "
      + " | ".join(f"{ms[p]:.2f}" for p in phases) + f" | {load} | {every} |")
PY
done
