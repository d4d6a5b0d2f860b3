#!/bin/sh
# Strong and weak scaling of mpigan training over a list of rank counts, with mpirun:
#
#   jobs/scaling.sh [-c CONFIG] [-s STEPS] [-r "1 2 4"] [-t THREADS] [-b BATCH] [-o DIR]
#                   [-e KEY=VALUE ...] [-x [-B "0 5 25 100"] [-a "false true"] [-n ROUNDS]]
#
#   -c CONFIG   configuration to train (default configs/fashion-mnist.yaml, the paper's model)
#   -s STEPS    generator steps per run (default 200)
#   -r RANKS    rank counts, smallest first: the first is the base of the efficiencies (default "1 2 4")
#   -t THREADS  OpenBLAS threads per rank (default 1)
#   -b BATCH    strong scaling's global batch (default the configuration's train.batch_size)
#   -o DIR      output directory (default runs/scaling-<date>-<time>)
#   -e KEY=VAL  a --set for every run (repeatable), e.g. -e data.path=/scratch/cifar-10-batches-bin
#   -x          the communication sweep instead of the strong and weak series (below)
#   -B SIZES    the sweep's train.bucket_mb values, whole MB or auto (default "0 5 25 100")
#   -a VALUES   the sweep's train.shared_allreduce values (default "false true")
#   -n ROUNDS   the sweep's rounds, every configuration once per round (default 1)
#
# Strong scaling keeps the global batch B fixed, so N ranks compute B/N rows each; weak scaling
# keeps the rows per rank fixed at B/N1 (N1 the first rank count), so the global batch is
# B*N/N1. Every rank count must divide B (mpigan says so before it starts otherwise).
# Each run writes DIR/runs/<mode>-<ranks>/run.json; this script collects them into
#
#   DIR/scaling.csv   one row per run: mode, ranks, threads_per_rank, global_batch, steps,
#                     samples_per_s, and the time per step (seconds, mean over ranks, from the run's
#                     timers): step (all of it), compute (d_compute + g_compute), allreduce
#                     (d_allreduce + g_allreduce), data, update, io (the end-of-run checkpoint);
#                     efficiency against the first rank count N1:
#                       strong (rate_N / rate_N1) / (N / N1): 1 when N ranks are N/N1 times faster
#                       weak   rate_N / (rate_N1 * N / N1): 1 when N ranks do N/N1 times the work
#                     in the same time (rate = samples/s, real examples consumed per second)
#   DIR/scaling.png   throughput and efficiency against ranks, both modes (gnuplot, if installed)
#   DIR/scaling.log   every run's output
#
# The sweep (-x) runs the weak series' rows per rank (B/N1) on every rank count with every
# combination of train.shared_allreduce (-a), train.bucket_mb (-B), train.sharded_update (false,
# true) and train.gradient_dtype (float32, bf16), in rounds (-n) that interleave the
# configurations, so that drift hits them alike; ratios within one sweep are what it is for. Shared
# sums ignore bucket_mb (within a node the sum is the ranks' own memory traffic), so with
# shared_allreduce true each sharded/dtype pair runs once, at bucket_mb 0; bf16 acts only on MPI
# messages (between nodes with shared sums). With one rank per node there is nothing to share and
# the sums go by MPI either way (buckets included): give -a false. One rank has nothing to
# communicate and runs once per round. Each run writes DIR/runs/sweep-<round>-<ranks>-<shared|mpi>-b<MB>-<sharded|replicated>-
# <float32|bf16>/ (run.json, metrics.jsonl; the end-of-run checkpoint is deleted: 1 GB for
# configs/cifar10-mlp.yaml), and the script collects
#
#   DIR/sweep.csv     one row per run: round, ranks, shared_allreduce, bucket_mb, sharded_update,
#                     gradient_dtype, global_batch, steps, samples_per_s (run.json), and per
#                     steady-state step (run.json's steady_state: the steps after the first):
#                     step_s (the phases' sum), exposed_comm_s (d_allreduce + g_allreduce +
#                     bucket_sums + param_gather: communication the step waits for),
#                     exposed_comm_share, update_s, param_gather_s; optimizer_mb_per_rank (the
#                     most any rank keeps), peak_rss_mb (the highest rank's), and efficiency:
#                     rate / (the median rate of the first rank count's same configuration (its
#                     only one for 1 rank) x N / N1)
#   DIR/sweep.txt     the medians over rounds of each configuration, as a table
#
# Environment: MPIGAN (the binary, default build/mpigan), MPIRUN (default mpirun), MPIRUN_FLAGS
# (default: ranks unbound, --oversubscribe when ranks x threads exceed the cores, and
# --allow-run-as-root as root). Samples and periodic checkpoints are off; data loading before the
# first step is not timed. On a shared machine the numbers are only as quiet as the machine.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
config=$here/configs/fashion-mnist.yaml steps=200 ranks="1 2 4" threads=1 batch="" out=""
extra="" sweep=0 buckets="0 5 25 100" shareds="false true" rounds=1
usage() { echo "usage: jobs/scaling.sh [-c CONFIG] [-s STEPS] [-r \"1 2 4\"] [-t THREADS] [-b BATCH] [-o DIR] [-e KEY=VALUE ...] [-x [-B \"0 5 25 100\"] [-a \"false true\"] [-n ROUNDS]]" >&2; exit 2; }
while getopts c:s:r:t:b:o:e:xB:a:n:h opt; do
  case $opt in
    c) config=$OPTARG ;; s) steps=$OPTARG ;; r) ranks=$OPTARG ;; t) threads=$OPTARG ;;
    b) batch=$OPTARG ;; o) out=$OPTARG ;;
    e) case $OPTARG in *=*) ;; *) echo "scaling.sh: -e takes KEY=VALUE, not '$OPTARG'" >&2; exit 2 ;; esac
       case $OPTARG in *[[:space:]]*) echo "scaling.sh: -e '$OPTARG': no spaces" >&2; exit 2 ;; esac
       extra="$extra --set $OPTARG" ;;
    x) sweep=1 ;; B) buckets=$OPTARG ;; a) shareds=$OPTARG ;; n) rounds=$OPTARG ;; *) usage ;;
  esac
done
[ $OPTIND -gt $# ] || usage
out=${out:-runs/scaling-$(date +%Y%m%d-%H%M%S)}
mpigan=${MPIGAN:-$here/build/mpigan}
mpirun=${MPIRUN:-mpirun}
[ -x "$mpigan" ] || { echo "scaling.sh: $mpigan not built (cmake -B build && cmake --build build)" >&2; exit 2; }
for n in $ranks $steps $threads $batch $rounds; do
  case $n in ''|*[!0-9]*|0) echo "scaling.sh: -r, -s, -t, -b and -n take positive whole numbers, not '$n'" >&2; exit 2 ;; esac
done
for n in $buckets; do
  case $n in auto) ;; ''|*[!0-9]*) echo "scaling.sh: -B takes whole numbers of MB or auto, not '$n'" >&2; exit 2 ;; esac
done
for v in $shareds; do
  case $v in true|false) ;; *) echo "scaling.sh: -a takes true and false, not '$v'" >&2; exit 2 ;; esac
done
[ -n "$buckets" ] && [ -n "$shareds" ] || { echo "scaling.sh: -B and -a need at least one value" >&2; exit 2; }
mkdir -p "$out/runs"
csv=$out/scaling.csv log=$out/scaling.log
: >"$log"
export OPENBLAS_NUM_THREADS="$threads"

flags_for() { # flags_for N: mpirun's flags for N ranks
  if [ -n "${MPIRUN_FLAGS+set}" ]; then echo "$MPIRUN_FLAGS"; return; fi
  # Not -q: a run here never ends with mpigan's status 3, and -q would also hide Open MPI's
  # explanation of a real failure (a rank killed by a signal, a failed launch).
  f="--bind-to none"   # let the OS place ranks: binding fights whatever else runs here
  [ "$(id -u)" -ne 0 ] || f="$f --allow-run-as-root"
  # the machine's CPUs; not nproc, which honours OMP_NUM_THREADS (GNU coreutils)
  [ $(($1 * threads)) -le "$(getconf _NPROCESSORS_ONLN)" ] || f="$f --oversubscribe"
  echo "$f"
}

run_as() { # run_as NAME N [--set ...]: one run on N ranks, its run.json in $out/runs/NAME
  name=$1 n=$2; shift 2
  echo "scaling.sh: $name, $n rank(s) x $threads thread(s), $steps steps$extra $*" | tee -a "$log"
  # shellcheck disable=SC2046,SC2086
  "$mpirun" $(flags_for "$n") -np "$n" "$mpigan" train "$config" --steps "$steps" \
    --out "$out/runs/$name" --force --progress lines --set samples.every=0 \
    --set checkpoint.every=0 --set train.check_every=0 $extra "$@" >>"$log" 2>&1 ||
    { echo "scaling.sh: the run $name on $n ranks failed; its output:" >&2; tail -n 20 "$log" >&2; exit 1; }
}

train() { # train MODE N [--set ...]: one run, its run.json in $out/runs/MODE-N
  mode=$1 n=$2; shift 2
  run_as "$mode-$n" "$n" "$@"
}

json() { echo "$out/runs/$1-$2/run.json"; }
value() { # value KEY MODE N: a top-level number of that run's run.json
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$(json "$2" "$3")" "$1"
}
row() { # row MODE N N1 RATE1: the CSV row of run MODE-N, efficiency against rate RATE1 at N1 ranks
  python3 - "$(json "$1" "$2")" "$1" "$3" "$4" <<'PY'
import json, sys
path, mode, n1, rate1 = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
r = json.load(open(path))
steps, rate, ranks = r.get("steps"), r.get("samples_per_s"), r.get("ranks")
if not steps or not rate or not ranks:
    sys.exit(f"scaling.sh: {path}: no ranks, steps or samples_per_s")
t = {name: v["mean"] for name, v in r["timers"].items()}
print(f"{mode},{ranks},{r['threads_per_rank']},{r['global_batch']},{steps},{rate:.1f},"
      f"{r['seconds'] / steps:.6f},{(t['d_compute'] + t['g_compute']) / steps:.6f},"
      f"{(t['d_allreduce'] + t['g_allreduce']) / steps:.6f},{t['data'] / steps:.6f},"
      f"{t['update'] / steps:.6f},{t['io'] / steps:.6f},{(rate / rate1) / (ranks / n1):.3f}")
PY
}

sweep_names() { # sweep_names ROUND N: the sweep's run names on N ranks, one a line
  if [ "$2" -eq 1 ]; then echo "sweep-$1-1-none-b0-replicated-float32"; return; fi
  for sh in $shareds; do
    if [ "$sh" = true ]; then kind=shared bs=0; else kind=mpi bs=$buckets; fi
    for b in $bs; do
      for sd in replicated sharded; do
        for dt in float32 bf16; do echo "sweep-$1-$2-$kind-b$b-$sd-$dt"; done
      done
    done
  done
}

sweep() { # the communication sweep (-x): runs in rounds, then sweep.csv and sweep.txt
  per_rank=""
  r=1
  while [ "$r" -le "$rounds" ]; do
    for n in $ranks; do
      for name in $(sweep_names "$r" "$n"); do
        # sweep-ROUND-N-KIND-bMB-UPDATE-DTYPE
        rest=${name#sweep-*-*-} kind=${rest%%-*} rest=${rest#*-}
        b=${rest%%-*} rest=${rest#*-} sd=${rest%%-*} dt=${rest#*-}
        set -- --set train.bucket_mb="${b#b}" --set train.gradient_dtype="$dt"
        [ "$kind" = none ] || set -- "$@" --set train.shared_allreduce="$([ "$kind" = shared ] && echo true || echo false)"
        set -- "$@" --set train.sharded_update="$([ "$sd" = sharded ] && echo true || echo false)"
        if [ -n "$per_rank" ]; then
          set -- "$@" --set train.batch_size=$((per_rank * n))
        elif [ -n "$batch" ]; then
          set -- "$@" --set train.batch_size="$batch"
        fi
        run_as "$name" "$n" "$@"
        rm -f "$out/runs/$name"/ckpt-*.h5 "$out/runs/$name/latest.h5"
        if [ -z "$per_rank" ]; then # the first run, on N1 ranks, has the global batch B
          b1=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["global_batch"])' \
            "$out/runs/$name/run.json")
          [ $((b1 % n1)) -eq 0 ] || { echo "scaling.sh: the global batch $b1 does not split over $n1 ranks" >&2; exit 2; }
          per_rank=$((b1 / n1))
        fi
      done
    done
    r=$((r + 1))
  done
  python3 "$here/jobs/scaling_sweep.py" "$out" "$n1" || exit 1
  echo "scaling.sh: $out/sweep.csv"
  cat "$out/sweep.txt"
}

# shellcheck disable=SC2086
set -- $ranks
n1=$1
[ "$sweep" -eq 0 ] || { sweep; exit 0; }
echo "mode,ranks,threads_per_rank,global_batch,steps,samples_per_s,step_s,compute_s,allreduce_s,data_s,update_s,io_s,efficiency" >"$csv"

# Strong: the same global batch on every rank count.
for n in $ranks; do
  if [ -n "$batch" ]; then train strong "$n" --set train.batch_size="$batch"; else train strong "$n"; fi
done
batch=$(value global_batch strong "$n1")
rate1=$(value samples_per_s strong "$n1")
for n in $ranks; do row strong "$n" "$n1" "$rate1" >>"$csv"; done

# Weak: the same rows per rank, B/N1, on every rank count.
[ $((batch % n1)) -eq 0 ] || { echo "scaling.sh: the global batch $batch does not split over $n1 ranks" >&2; exit 2; }
per_rank=$((batch / n1))
for n in $ranks; do train weak "$n" --set train.batch_size=$((per_rank * n)); done
rate1=$(value samples_per_s weak "$n1")
for n in $ranks; do row weak "$n" "$n1" "$rate1" >>"$csv"; done

echo "scaling.sh: $csv"
column -s, -t "$csv" 2>/dev/null || cat "$csv"

# The plot: throughput with the ideal (linear in ranks) dashed, and efficiency.
if command -v gnuplot >/dev/null; then
  xtics=$(echo "$ranks" | tr -s ' ' ',' | sed 's/^,//; s/,$//')
  gnuplot <<EOF || echo "scaling.sh: gnuplot failed; the CSV is complete" >&2
set terminal pngcairo size 1100,450 font ",10"
set output "$out/scaling.png"
set datafile separator ","
set multiplot layout 1,2 title "mpigan scaling: $(basename "$config"), $steps steps, $threads thread(s) per rank, global batch $batch (strong) / $per_rank per rank (weak)"
set logscale x 2
set xtics ($xtics)
set xlabel "ranks"
set grid
set key below
set ylabel "samples/s"
set yrange [0:*]
strong(m) = (strcol(1) eq "strong") ? m : NaN
weak(m) = (strcol(1) eq "weak") ? m : NaN
plot "$csv" every ::1 using 2:(strong(\$6)) with linespoints pt 7 lw 2 title "strong", \\
     "$csv" every ::1 using 2:(weak(\$6)) with linespoints pt 5 lw 2 title "weak", \\
     "$csv" every ::1 using 2:(strong(\$6 / \$13)) with lines dt 2 lc 1 title "strong, ideal", \\
     "$csv" every ::1 using 2:(weak(\$6 / \$13)) with lines dt 2 lc 2 title "weak, ideal"
set ylabel "parallel efficiency"
set yrange [0:1.2]
plot "$csv" every ::1 using 2:(strong(\$13)) with linespoints pt 7 lw 2 title "strong: (rate_N / rate_1) / (N / N_1)", \\
     "$csv" every ::1 using 2:(weak(\$13)) with linespoints pt 5 lw 2 title "weak: rate_N / (rate_1 N / N_1)", \\
     1 with lines dt 2 lc rgb "gray" notitle
unset multiplot
EOF
  [ -s "$out/scaling.png" ] && echo "scaling.sh: $out/scaling.png"
else
  echo "scaling.sh: no gnuplot (apt-get install gnuplot-nox): no plot" >&2
fi
