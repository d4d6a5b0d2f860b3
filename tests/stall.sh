#!/bin/sh
# Stalls are reported wherever they happen. 2-rank runs watched with train.stall_seconds=1 in which
# a rank is stopped (SIGSTOP) for STOP_S seconds at random moments, several times per run; every
# stop must give a stall line naming the stopped rank: rank 0's "rank 1 has not reached it", or,
# when rank 0 is the one stopped, the waiting rank's "rank 0 has not reached it" (comm.h). Training
# with shared-memory sums (the default) and a stop in its set-up, with sums through MPI, with a
# checkpoint every step (rank 0 stopped while writing them) and with samples every step; then stops
# during mpigan eval and mpigan sample.
#
# Not stopped: a rank in MPI_Init or MPI_Finalize (MPI waits there, not mpigan), nor before every
# rank has the configuration's setting (till then waits are watched with the default 120 s): the
# set-up stop waits until rank 0 reads the training set, eval's first stop until it reads the
# validation split. In eval's and sample's seconds of parallel work, the other rank waits for a
# stopped one only once it has done its own share, which a machine shared with other jobs can
# stretch: there rank 1 is stopped until rank 0 names it (at most 20 s), and rank 0, for 4 s, only
# where rank 1 waits for it alone (reading, writing).
# usage: stall.sh MPIGAN MPIEXEC
set -u
mpigan=$1 mpiexec=$2
STOP_S=4
train_images=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
test_images=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
if [ ! -r "$train_images" ] || [ ! -r "$test_images" ]; then
  echo "stall: Fashion-MNIST missing (apt-get install dataset-fashion-mnist): skipped"; exit 77
fi
src=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mpigan-stall-XXXXXX")
mpid=
finish() { # no rank left stopped or running
  if [ -n "$mpid" ]; then
    for p in $(pgrep -P "$mpid"); do kill -CONT "$p"; kill -KILL "$p"; done 2>/dev/null
    kill -KILL "$mpid" 2>/dev/null
  fi
  rm -rf "$tmp"
}
trap finish EXIT
trap 'exit 130' INT TERM
failures=0 stops=0 t_start=$(date +%s)

fail() { failures=$((failures + 1)); echo "FAIL: $*"; }
say() { echo "stall: $*"; }

# A random whole number in [lo, hi].
rand() { echo $(($1 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % ($2 - $1 + 1))); }
# Sleeps a random time in [lo, hi] milliseconds.
rsleep() { ms=$(rand "$1" "$2"); sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"; }

# The pid of rank r of the job mpirun $mpid started (its child with OMPI_COMM_WORLD_RANK=r).
rank_pid() {
  for p in $(pgrep -P "$mpid"); do
    tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$1" && { echo "$p"; return; }
  done
}

# Waits (up to 60 s) until rank 0 has had a file whose name matches $1 open at $2 looks in a row,
# 10 ms apart (2: reading it, not a glance at it such as the configuration's check that it opens);
# 1 if it never had.
await_open() {
  i=0 seen=0
  while [ $i -lt 6000 ]; do
    p=$(rank_pid 0)
    if [ -n "$p" ] && ls -l "/proc/$p/fd" 2>/dev/null | grep -q -- "$1"; then
      seen=$((seen + 1)); [ $seen -ge "$2" ] && return 0
    else
      seen=0
    fi
    kill -0 "$mpid" 2>/dev/null || return 1
    sleep 0.01; i=$((i + 1))
  done
  return 1
}

# Waits (up to 60 s) until FILE has at least N lines.
await_lines() {
  i=0
  while [ "$(cat "$1" 2>/dev/null | wc -l)" -lt "$2" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
}

stall_lines() { grep -c "^mpigan: stall: " "$1"; }
naming() { grep -c "^mpigan: stall: .*; rank $1 has not reached it$" "$2"; }

# stop WHAT RANK ERR [MAX]: rank RANK stopped for STOP_S s, or with MAX until a line names it
# (at most MAX s: for a stop in seconds of parallel work, which the other rank waits for only once
# it has done its own share); one or two new stall lines, one naming it.
stop() {
  what=$1 r=$2 err=$3 max=${4:-}
  pid=$(rank_pid "$r")
  if [ -z "$pid" ]; then fail "$what: no rank $r to stop (the run ended?)"; return; fi
  lines=$(stall_lines "$err") named=$(naming "$r" "$err")
  t0=$(date +%s%N)
  kill -STOP "$pid"
  if [ -n "$max" ]; then
    i=0
    while [ "$(naming "$r" "$err")" -le "$named" ] && [ $i -lt $((max * 10)) ]; do sleep 0.1; i=$((i + 1)); done
    sleep 0.2
  else
    sleep $STOP_S
  fi
  kill -CONT "$pid"
  held=$((($(date +%s%N) - t0) / 100000000))
  sleep 0.3 # mpirun forwards the ranks' stderr
  stops=$((stops + 1))
  new=$(($(stall_lines "$err") - lines))
  if [ "$(naming "$r" "$err")" -gt "$named" ] && [ $new -le 2 ]; then
    say "$what: rank $r stopped for $((held / 10)).$((held % 10)) s: $(grep "^mpigan: stall: " "$err" | tail -n 1)"
  else
    fail "$what: rank $r stopped for $((held / 10)).$((held % 10)) s: $new new stall lines, none naming it"
    grep "^mpigan: stall: " "$err" | tail -n "$((new > 0 ? new : 1))"
  fi
}

# The ranks of a run's stops: 0 and 1 (each rank at least once) and one at random, shuffled.
ranks3() { printf '%s\n' 0 1 "$(rand 0 1)" | awk -v seed="$(rand 0 32767)" 'BEGIN { srand(seed) } { print rand() "\t" $0 }' | sort -n | cut -f2; }

# train NAME [--setup] SETTINGS...: a 2-rank training run stopped 3 times at random moments, then
# ended by SIGUSR1 (status 3, a checkpoint). --setup: a stop in its set-up first.
train() {
  name=$1; shift
  setup=0; [ "${1:-}" = --setup ] && { setup=1; shift; }
  "$mpiexec" -q --oversubscribe -np 2 "$mpigan" train "$src/configs/smoke.yaml" --out "$tmp/$name" \
    --steps 100000000 --quiet --set train.stall_seconds=1 --set train.log_every=1 "$@" \
    >"$tmp/$name.out" 2>"$tmp/$name.err" &
  mpid=$!
  if [ $setup = 1 ]; then
    # rank 0 reads the training set: the others wait for it, with the configuration's setting
    if await_open train-images 2; then stop "$name: set-up" "$(rand 0 1)" "$tmp/$name.err"
    else fail "$name: rank 0 never opened the training set"; fi
  fi
  await_lines "$tmp/$name/metrics.jsonl" 2
  for r in $(ranks3); do
    rsleep 200 1000
    stop "$name: training" "$r" "$tmp/$name.err"
  done
  kill -USR1 "$mpid"
  wait "$mpid"; status=$?; mpid=
  [ $status -eq 3 ] || { fail "$name: exit status $status after SIGUSR1, expected 3"; cat "$tmp/$name.err"; }
}

# Training: a wider generator in the first run, so that its checkpoint takes sample and eval
# seconds of work, and a training set of 50,000 whose reading the set-up stop can catch.
train shared --setup --set generator.layers.0.units=4000 --set data.train_count=50000
train mpi --set train.shared_allreduce=false
# MPI sums in buckets, as between nodes: the gathers of the sharded update run into the next
# forward pass, whose waits for each layer's bucket are watched too
train prefetch --set train.shared_allreduce=false --set train.bucket_mb=0.01
train checkpoints --set checkpoint.every=1
train samples --set samples.every=1 --set samples.count=16

# mpigan eval: rank 0 stopped while it reads the validation split (rank 1 waits for it with the
# checkpoint's setting, and names it), then rank 1 while samples are drawn and estimates computed.
"$mpiexec" -q --oversubscribe -np 2 "$mpigan" eval "$tmp/shared" -n 20000 --valid 1000 --test 10000 \
  --quiet --set "data.test_images=$test_images" -o "$tmp/eval.json" >"$tmp/eval.out" 2>"$tmp/eval.err" &
mpid=$!
if await_open train-images 2; then
  stop "eval: reading the examples" 0 "$tmp/eval.err"
  rsleep 500 1500
  stop "eval: samples and estimates" 1 "$tmp/eval.err" 20
else
  fail "eval: rank 0 never read the validation split"
fi
wait "$mpid"; status=$?; mpid=
[ $status -eq 0 ] && [ -s "$tmp/eval.json" ] || { fail "eval: exit status $status"; cat "$tmp/eval.err"; }

# mpigan sample: rank 1 stopped while the samples are drawn (once it has spent 0.3 s of CPU time,
# which starting and loading the generator do not take), then rank 0 while it writes them (rank 1
# waits at the end of the run, and names it).
"$mpiexec" -q --oversubscribe -np 2 "$mpigan" sample "$tmp/shared" -n 40000 -o "$tmp/samples.h5" \
  >"$tmp/sample.out" 2>"$tmp/sample.err" &
mpid=$!
i=0
while [ $i -lt 6000 ] && kill -0 "$mpid" 2>/dev/null; do
  p=$(rank_pid 1)
  [ -n "$p" ] && [ "$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)" -ge 30 ] && break
  sleep 0.01; i=$((i + 1))
done
stop "sample: drawing" 1 "$tmp/sample.err" 20
if await_open 'samples\.h5' 1; then
  stop "sample: writing" 0 "$tmp/sample.err"
else
  fail "sample: rank 0 never wrote the samples"
fi
wait "$mpid"; status=$?; mpid=
[ $status -eq 0 ] && [ -s "$tmp/samples.h5" ] || { fail "sample: exit status $status"; cat "$tmp/sample.err"; }

say "$stops stops in $(($(date +%s) - t_start)) s, $failures not reported"
[ $failures -eq 0 ]
