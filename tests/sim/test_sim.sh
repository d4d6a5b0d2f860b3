#!/bin/sh
# ctest "sim": SimGrid's simulation of mpigan's step and docs/scaling_model.py agree.
#   tests/sim/test_sim.sh SOURCE_DIR
# Needs smpicc and smpirun (Debian: libsimgrid-dev). As root it installs them with apt-get when
# they are missing; otherwise it prints "skipped: <reason>" and exits 77, which ctest reports as
# skipped. Runs the old replicated step on 64 simulated ranks of the paper's MNIST model at
# 25 Gbit/s, global batch 100 (communication is 60% of the step there, so an error in the
# communication term shows), and of DCGAN at its batch of 64 (with the small allreduces of its
# synchronised batch norms), and fails if the simulated step, either gradient allreduce or the
# batch norm sums differ from the model by more than MARGIN; then eight rows of the current step
# (buckets, the sharded update, bf16, nodes of 8, 32 and 128 ranks summing in buckets between
# nodes, and nodes of 8 summing after the pass; the loop below), each failing
# if the step, a sum's wait or a gather differs by more than MARGIN. About 70 s in all.
#
# MARGIN = 5%. The model and the simulation share every input (buffer sizes, the measured compute,
# bandwidth, Open MPI's choice of Rabenseifner's algorithm), so what is left between them is what
# the closed form leaves out: messages within a leaf switch cross 2 links, not the model's 4
# (12 messages x 1 us per allreduce, 0.4% of D's 3.1 ms), and chunks of a buffer that 64 does not
# divide (< 0.1%). The agreement measured here is 0.1% (1.3% at most up to 1024 ranks, see
# docs/scaling.md). 5% leaves room for that and still fails on any real error: the ring's latency
# term instead of Rabenseifner's (+7% on D's allreduce), one copy of the bytes instead of two
# (-50%), SimGrid's default TCP-calibrated factors (+15 to 18% on the allreduces), or a skeleton
# that no longer does one allreduce per network update. The current step's rows agree within 0.4%
# here (docs/scaling.md section 9); the same 5% fails on each of these errors in the model: rings
# that do not share a node's NIC, bf16 ignored, buckets started after the whole backward pass, the
# gather at half its bytes (18 failures with all four).
set -u
src=${1:?usage: test_sim.sh SOURCE_DIR}
margin=0.05
fails=0

skip() { echo "skipped: $1"; exit 77; }
fail() { echo "FAIL: $1"; fails=$((fails + 1)); }
ok() { echo "ok: $1"; }

# compare NAME SIM_LINE PRED KEY...: each KEY's value in the simulator's line against the model's
# (both "key=seconds ..."), within MARGIN.
compare() {
  cname=$1 csim=$2 cpred=$3
  shift 3
  for key in "$@"; do
    s=$(echo "$csim" | tr ' ' '\n' | sed -n "s/^$key=//p")
    m=$(echo "$cpred" | tr ' ' '\n' | sed -n "s/^$key=//p")
    verdict=$(python3 -c "
s, m, margin = $s, $m, $margin
err = abs(s - m) / m
print(('ok' if err <= margin else 'bad') + f' simulated {s * 1e3:.3f} ms, model {m * 1e3:.3f} ms, '
      f'difference {100 * err:.2f}% (margin {100 * margin:.0f}%)')")
    case $verdict in
      ok*) ok "$cname $key: ${verdict#ok }" ;;
      *) fail "$cname $key: ${verdict#bad }" ;;
    esac
  done
}

have_simgrid() { command -v smpicc >/dev/null 2>&1 && command -v smpirun >/dev/null 2>&1; }
if ! have_simgrid; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing libsimgrid-dev (smpicc, smpirun) with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    # a fresh image may have no package lists yet: update once if the first try fails
    apt-get install -y -qq --no-install-recommends libsimgrid-dev >/dev/null 2>&1 ||
      { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq --no-install-recommends libsimgrid-dev >/dev/null 2>&1; } ||
      skip "smpicc/smpirun missing and 'apt-get install libsimgrid-dev' failed"
  else
    skip "smpicc/smpirun not found (SimGrid: apt-get install libsimgrid-dev, as root)"
  fi
  have_simgrid || skip "libsimgrid-dev installed but smpicc/smpirun still not on PATH"
fi
command -v python3 >/dev/null 2>&1 || skip "python3 not found"

work=$(mktemp -d /tmp/mpigan-test-sim-XXXXXX)
trap 'rm -rf "$work"' EXIT
sim=$src/tests/sim/simulate.sh

# --- agreement: 64 ranks at 25 Gbit/s, strong scaling: MNIST (1.5625 rows each) and DCGAN (1 row
# each, with its batch norms' 14 small allreduces of statistics per step) ---
start=$(date +%s)
for case in "mnist 1.5625" "dcgan 1"; do
  set -- $case
  model=$1 rows=$2
  if SIM_WORK=$work/$model "$sim" --model "$model" --regime strong --ranks 64 --gbps 25 --steps 2 \
      >"$work/table-$model" 2>"$work/err-$model"; then
    cat "$work/table-$model"
    row=$(grep "^| $model | strong | 64 |" "$work/table-$model")
    sim_line=$(grep '^ranks=' "$work/$model/out-64-25")
    pred=$(python3 "$src/docs/scaling_model.py" step --model "$model" --ranks 64 --rows "$rows" --gbps 25)
    keys="step_s d_allreduce_s g_allreduce_s"
    [ "$model" = dcgan ] && keys="$keys bn_allreduce_s"
    compare "$model" "$sim_line" "$pred" $keys
    [ -n "$row" ] || fail "no table row for $model on 64 ranks"
  else
    cat "$work/err-$model"
    fail "simulate.sh failed for $model"
  fi
done

# --- the current step (--path sharded), one row per feature: buckets overlapped with the backward
# pass and the sharded update on nodes of one rank (MNIST: one bucket per network; CIFAR-10 MLP on
# 16 ranks: 2 buckets of D and 3 of G, at scale 100), bf16, hierarchical sums in nodes of 8, 32 and
# 128 ranks (their buckets between nodes during the backward pass and the NIC they share; one
# row of nodes of 8 summing after the pass, bucket_mb: 0, with its rings). Each: the step, the
# sums' waits and the parameters' gathers within MARGIN of the model's current_step_time. ---
for case in "mnist 64 1 0 1 1" "mnist 64 1 1 1 1" "cifar10 16 1 0 100 1" "mnist 64 8 1 1 1" \
    "mnist 64 32 0 1 1" "mnist 256 128 0 1 1" "dcgan 64 8 0 1 1" "mnist 64 8 0 1 0"; do
  set -- $case
  model=$1 n=$2 node=$3 bf16=$4 scale=$5 nb=$6
  name="$model sharded $n ranks, nodes of $node, bf16 $bf16, node buckets $nb"
  dir=$work/$model-$n-$node-$bf16-$nb
  if SIM_WORK=$dir "$sim" --model "$model" --regime weak --ranks "$n" --gbps 25 --steps 1 \
      --path sharded --node "$node" --bf16 "$bf16" --node-buckets "$nb" --scale "$scale" \
      >"$dir.table" 2>"$dir.err"; then
    tail -n 1 "$dir.table"
    sim_line=$(grep '^ranks=' "$dir/out-$n-25-$node-$bf16")
    rows=$(python3 "$src/docs/scaling_model.py" batch --model "$model")
    pred=$(python3 "$src/docs/scaling_model.py" step --model "$model" --ranks "$n" --rows "$rows" \
      --gbps 25 --path sharded --node "$node" --bf16 "$bf16" --node-buckets "$nb")
    compare "$name" "$sim_line" "$pred" step_s d_sum_s g_sum_s d_gather_s g_gather_s
  else
    cat "$dir.err"
    fail "simulate.sh --path sharded failed for $name"
  fi
done
echo "simulation took $(($(date +%s) - start)) s"

# --- the document shows what the model says now ---
if python3 - "$src/docs/scaling_model.py" "$src/docs/scaling.md" <<'PY'
import subprocess, sys
out = subprocess.run([sys.executable, sys.argv[1]], capture_output=True, text=True, check=True).stdout
doc = open(sys.argv[2]).read()
# the doc shows the first table in section 1, the old path's in 4, the current path's in 9
a, b = out.index("**Strong scaling"), out.index("**Current path")
sys.exit(0 if all(x.strip() in doc for x in (out[:a], out[a:b], out[b:])) else 1)
PY
then
  ok "docs/scaling.md holds the tables docs/scaling_model.py prints"
else
  fail "docs/scaling.md is out of date: paste the output of docs/scaling_model.py into it"
fi

# --- errors: bad input gives one clear line and a failing status, before anything runs ---
# expect_error NAME STATUS TEXT CMD...: CMD exits with STATUS ("nonzero": any but 0), says TEXT
expect_error() {
  name=$1 want=$2 text=$3
  shift 3
  "$@" >"$work/out" 2>&1
  got=$?
  if [ "$got" = "$want" ] || { [ "$want" = nonzero ] && [ "$got" -ne 0 ]; }; then
    if grep -q -- "$text" "$work/out"; then
      ok "$name"
      return
    fi
  fi
  fail "$name: status $got (wanted $want) and output without '$text': $(cat "$work/out")"
}
expect_error "simulate.sh --regime sideways" 2 "simulate.sh: --regime is strong or weak" \
  "$sim" --regime sideways
expect_error "simulate.sh --model without a value" 2 "simulate.sh: --model needs a value" \
  "$sim" --model
expect_error "skeleton without its sizes" nonzero "usage: skeleton" \
  smpirun -np 1 -platform "$work/mnist/fattree-64-25.xml" \
  -hostfile "$work/mnist/fattree-64-25.xml.hosts" --log=root.thresh:critical \
  "$work/mnist/skeleton" --d-floats 10
expect_error "scaling_model.py --ranks 0" 2 "must be >= 1" \
  python3 "$src/docs/scaling_model.py" step --model mnist --ranks 0 --rows 1 --gbps 25
expect_error "scaling_model.py --node 3 of 64 ranks" 2 "must be >= 1 and divide --ranks" \
  python3 "$src/docs/scaling_model.py" step --model mnist --ranks 64 --rows 1 --gbps 25 \
  --path sharded --node 3
expect_error "simulate.sh --node without --path sharded" 2 "simulate.sh: --node needs --path sharded" \
  "$sim" --node 8
expect_error "skeleton --path sideways" nonzero "skeleton: --path is replicated or sharded" \
  smpirun -np 1 -platform "$work/mnist/fattree-64-25.xml" \
  -hostfile "$work/mnist/fattree-64-25.xml.hosts" --log=root.thresh:critical \
  "$work/mnist/skeleton" --path sideways
expect_error "skeleton --d-bwd not a list" nonzero "is not a list of flops:count" \
  smpirun -np 1 -platform "$work/mnist/fattree-64-25.xml" \
  -hostfile "$work/mnist/fattree-64-25.xml.hosts" --log=root.thresh:critical \
  "$work/mnist/skeleton" --path sharded --d-bwd 1e9:x

[ "$fails" -eq 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "all checks passed"
