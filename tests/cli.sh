#!/bin/sh
# The command line as a user meets it: usage, one clear line and exit status 2 for each bad input,
# and real training runs through mpiexec that leave a complete run directory.
# usage: cli.sh MPIGAN MPIEXEC SOURCE_DIR MAKE_DATA
set -u
mpigan=$1 mpiexec=$2 src=$3 make_data=$4
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mpigan-cli-XXXXXX")
trap 'umount "$tmp/full" 2>/dev/null; rm -rf "$tmp"' EXIT
failures=0 passed=0
fashion=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz

run() { # run NP ARGS...: mpigan under mpiexec with NP ranks; stdout, stderr, status kept
  np=$1; shift
  "$mpiexec" -q --oversubscribe -np "$np" "$mpigan" "$@" >"$tmp/out" 2>"$tmp/err"
  status=$?
}
ok() { passed=$((passed + 1)); }
fail() { failures=$((failures + 1)); echo "FAIL: $*"; echo "--- stdout"; cat "$tmp/out"; echo "--- stderr"; cat "$tmp/err"; }

expect_status() { # expect_status WHAT WANT
  if [ "$status" -eq "$2" ]; then ok; else fail "$1: exit status $status, expected $2"; fi
}
expect_error() { # expect_error WHAT LINE: status 2 and stderr exactly that one line
  if [ "$status" -eq 2 ] && [ "$(cat "$tmp/err")" = "$2" ]; then ok
  else fail "$1: expected status 2 and the single line: $2"; fi
}
expect_grep() { # expect_grep WHAT FILE PATTERN
  if grep -q -- "$3" "$2"; then ok; else fail "$1: no '$3' in $2"; fi
}

# --- usage ---
"$mpigan" --help >"$tmp/out" 2>"$tmp/err"; status=$?
expect_status "--help" 0
expect_grep "--help lists train" "$tmp/out" "train CONFIG"
"$mpigan" train --help >"$tmp/out" 2>"$tmp/err"; status=$?
expect_status "train --help" 0
for opt in --set --steps --epochs --out --force --quiet --progress; do expect_grep "train --help lists $opt" "$tmp/out" "$opt"; done
"$mpigan" frobnicate >"$tmp/out" 2>"$tmp/err"; status=$?
expect_error "unknown command" "mpigan: unknown command 'frobnicate' (see 'mpigan --help')"
"$mpigan" train >"$tmp/out" 2>"$tmp/err"; status=$?
expect_error "no config" "mpigan: train needs a configuration file (or --resume) (see 'mpigan train --help')"
"$mpigan" train x.yaml --steps ten >"$tmp/out" 2>"$tmp/err"; status=$?
expect_error "bad --steps" "mpigan: --steps needs a whole number (see 'mpigan train --help')"
"$mpigan" train x.yaml --progress fancy >"$tmp/out" 2>"$tmp/err"; status=$?
expect_error "bad --progress" "mpigan: --progress takes auto, redraw or lines, not fancy (see 'mpigan train --help')"
"$mpigan" train x.yaml --bogus >"$tmp/out" 2>"$tmp/err"; status=$?
expect_error "unknown option" "mpigan: unknown option --bogus (see 'mpigan train --help')"
# getopt_long: options before and after the positional argument (POSIXLY_CORRECT or not), a value
# after '=', unique abbreviations, '--'; each bad option one line
usage() { # usage WHAT LINE ARGS...: mpigan ARGS without mpiexec, expecting the one line
  what=$1 line=$2; shift 2
  "$mpigan" "$@" >"$tmp/out" 2>"$tmp/err"; status=$?
  expect_error "$what" "$line"
}
usage "--steps before CONFIG" "mpigan: --steps needs a whole number (see 'mpigan train --help')" train --steps ten x.yaml
usage "--steps=VALUE" "mpigan: --steps needs a whole number (see 'mpigan train --help')" train x.yaml --steps=ten
usage "abbreviated --steps" "mpigan: --steps needs a whole number (see 'mpigan train --help')" train x.yaml --ste ten
POSIXLY_CORRECT=1 "$mpigan" train x.yaml --steps ten >"$tmp/out" 2>"$tmp/err"; status=$?
expect_error "POSIXLY_CORRECT: an option after CONFIG" "mpigan: --steps needs a whole number (see 'mpigan train --help')"
usage "no value" "mpigan: --steps needs a value (see 'mpigan train --help')" train x.yaml --steps
usage "unknown option before CONFIG" "mpigan: unknown option --bogus (see 'mpigan train --help')" train --bogus x.yaml
usage "unknown option with a value" "mpigan: unknown option --bogus=1 (see 'mpigan train --help')" train x.yaml --bogus=1
usage "unknown short option" "mpigan: unknown option -x (see 'mpigan train --help')" train x.yaml -x
usage "unknown short option in a cluster" "mpigan: unknown option -x (see 'mpigan train --help')" train x.yaml --force -xq
usage "a value for a flag" "mpigan: --force takes no value (see 'mpigan train --help')" train x.yaml --force=yes
usage "ambiguous option" "mpigan: option --s is ambiguous: --set, --steps (see 'mpigan train --help')" train x.yaml --s 5
usage "two configs" "mpigan: one configuration file only; extra argument y.yaml (see 'mpigan train --help')" train x.yaml y.yaml
usage "after --" "mpigan: one configuration file only; extra argument --steps (see 'mpigan train --help')" train x.yaml -- --steps
usage "sample -n without a value" "mpigan: -n needs a value (see 'mpigan sample --help')" sample ckpt.h5 -o s.h5 -n
usage "sample -n after -o" "mpigan: -n needs a whole number (see 'mpigan sample --help')" sample -o s.h5 ckpt.h5 -n ten
usage "eval --real=VALUE" "mpigan: --real takes no value (see 'mpigan eval --help')" eval ckpt.h5 --real=yes
usage "plot after --" "mpigan: -run: not a run directory: No such file or directory" plot -- -run
usage "prepare --fold first" "mpigan: --fold takes 0 to 4, not 9 (see 'mpigan prepare --help')" prepare --fold 9 tfd x.mat -o y.h5
usage "info of two" "mpigan: info takes one checkpoint (see 'mpigan info --help')" info a.h5 b.h5
usage "info --bogus" "mpigan: unknown option --bogus (see 'mpigan info --help')" info --bogus
"$mpigan" train x.yaml --out d -h >"$tmp/out" 2>"$tmp/err"; status=$?
expect_status "train -h after CONFIG" 0
expect_grep "train -h after CONFIG prints the usage" "$tmp/out" "^usage: mpirun -np N mpigan train CONFIG"
# under mpiexec the line comes once, from rank 0
run 2 train x.yaml --steps
expect_error "usage error on 2 ranks" "mpigan: --steps needs a value (see 'mpigan train --help')"

# --- bad configurations: one line from rank 0 only, even on 2 ranks ---
cat >"$tmp/bad.yaml" <<YAML
data: {train_images: $fashion}
train:
  batchsize: 10
YAML
run 2 train "$tmp/bad.yaml"
expect_error "unknown key" "mpigan: $tmp/bad.yaml:3: train.batchsize: unknown key (did you mean train.batch_size?)"
run 2 train "$tmp/missing.yaml"
expect_error "missing config" "mpigan: $tmp/missing.yaml: cannot open: No such file or directory"
run 2 train "$src/configs/smoke.yaml" --set train.mode=both
expect_error "bad --set" "mpigan: --set train.mode: expected one of alternating, simultaneous; got \"both\""
run 2 train --set=train.mode=both "$src/configs/smoke.yaml"
expect_error "bad --set=KEY=VALUE before CONFIG" "mpigan: --set train.mode: expected one of alternating, simultaneous; got \"both\""
sed "s|$fashion|$tmp/nowhere.gz|" "$src/configs/smoke.yaml" >"$tmp/nodata.yaml"
run 2 train "$tmp/nodata.yaml"
expect_error "missing data" "mpigan: $tmp/nodata.yaml:6: data.train_images: cannot open \"$tmp/nowhere.gz\": No such file or directory"
printf 'not an idx file at all' >"$tmp/junk.gz"
sed "s|$fashion|$tmp/junk.gz|" "$src/configs/smoke.yaml" >"$tmp/junk.yaml"
run 2 train "$tmp/junk.yaml"
expect_error "bad data" "mpigan: $tmp/junk.gz: not an IDX file (magic bytes 00 00 08 03 expected, got 6e 6f 74 20)"

if [ -r "$fashion" ]; then
  run 3 train "$src/configs/smoke.yaml" --out "$tmp/run3"
  expect_error "batch over 3 ranks" "mpigan: $src/configs/smoke.yaml: train.batch_size 40 does not split over 3 ranks: use a multiple of the rank count"
  [ ! -e "$tmp/run3" ] && ok || fail "a refused run left a run directory"
  run 1 train "$src/configs/smoke.yaml" --set data.train_count=55000 --out "$tmp/r"
  expect_error "split too big" "mpigan: $fashion: data.train_count 55000 + data.valid_count 10000 is more than the 60000 examples of the file"

  # --- a real run on 2 ranks ---
  run 2 train "$src/configs/smoke.yaml" --out "$tmp/run" --set train.log_every=5 --progress lines
  expect_status "smoke run" 0
  [ "$(grep -c "^epoch" "$tmp/out")" -eq 10 ] && ok || fail "--progress lines: expected 10 progress lines"
  if grep -q "$(printf '\r')" "$tmp/out"; then fail "--progress lines redrew in place"; else ok; fi
  expect_grep "progress line" "$tmp/out" "epoch .* step 50/50 .*D loss .*G loss .*D(x) .*D(G(z)) .*samples/s .*ETA"
  expect_grep "summary" "$tmp/out" "done: step 50, epoch 1.00; 50 steps in"
  [ "$(wc -l <"$tmp/run/metrics.jsonl")" -eq 10 ] && ok || fail "metrics.jsonl should have 10 records"
  expect_grep "metrics fields" "$tmp/run/metrics.jsonl" '"step": 50, "epoch": 1.0, "d_loss"'
  expect_grep "run record" "$tmp/run/run.json" '"ranks": 2'
  expect_grep "config copy" "$tmp/run/config.yaml" "log_every: 5"
  [ ! -s "$tmp/err" ] && ok || fail "a clean run wrote to stderr"

  # the same directory again is refused, then allowed with --force, which moves the old run's
  # files aside: a clean run, never two runs' checkpoints side by side
  cp -a "$tmp/run" "$tmp/forced"
  run 2 train "$src/configs/smoke.yaml" --out "$tmp/forced" --steps 2
  expect_error "run dir reuse" "mpigan: $tmp/forced: already holds a run (metrics.jsonl or checkpoints): choose another directory with --out, or pass --force to move its files aside"
  run 2 train "$src/configs/smoke.yaml" --out "$tmp/forced" --steps 2 --force --quiet
  expect_status "--force" 0
  [ ! -s "$tmp/out" ] && ok || fail "--quiet printed progress"
  expect_grep "--force says where the old run went" "$tmp/err" "mpigan: $tmp/forced held a run (--force): its files are now in $tmp/forced/previous-"
  aside=$(ls -d "$tmp/forced"/previous-* 2>/dev/null | head -1)
  [ -f "$aside/ckpt-00000050.h5" ] && [ -f "$aside/metrics.jsonl" ] && [ ! -e "$tmp/forced/ckpt-00000050.h5" ] \
    && ok || fail "--force: the old run's files are not in $aside"
  [ "$(readlink "$tmp/forced/latest.h5")" = ckpt-00000002.h5 ] && [ "$(wc -l <"$tmp/forced/metrics.jsonl")" -eq 1 ] \
    && ok || fail "--force: not a clean run"
  "$mpigan" info "$tmp/forced" >"$tmp/out" 2>"$tmp/err"
  expect_grep "--force: info follows the new run" "$tmp/out" "^step  *2$"

  # the configuration a run wrote is a valid configuration
  run 1 train "$tmp/run/config.yaml" --steps 3 --out "$tmp/again"
  expect_status "rerun from config copy" 0
  expect_grep "3 steps" "$tmp/out" "done: step 3,"
  # --set in order, later ones winning; --steps after every --set, wherever it stands
  run 1 train "$src/configs/smoke.yaml" --set train.steps=9 --out "$tmp/order1" --set=train.steps=4 --progress lines
  expect_grep "--set in order" "$tmp/out" "done: step 4,"
  run 1 train --steps 3 "$src/configs/smoke.yaml" --set train.steps=9 --out "$tmp/order2" --progress lines
  expect_grep "--steps last" "$tmp/out" "done: step 3,"

  # --- checkpoints, resume, graceful stop ---
  [ -L "$tmp/run/latest.h5" ] && [ -f "$tmp/run/ckpt-00000050.h5" ] && ok || fail "end-of-run checkpoint and latest.h5"
  [ -f "$tmp/run/samples.h5" ] && [ -f "$tmp/run/samples-00000050.png" ] && ok || fail "samples.h5 and the PNG grid"
  "$mpigan" info "$tmp/run" >"$tmp/out" 2>"$tmp/err"; status=$?
  expect_status "info" 0
  expect_grep "info step" "$tmp/out" "^step  *50$"
  expect_grep "info maxout shape" "$tmp/out" "h0/W .*(784, 32, 3)"
  if command -v h5dump >/dev/null; then
    h5dump -H "$tmp/run/ckpt-00000050.h5" >/dev/null 2>&1 && ok || fail "h5dump cannot read the checkpoint"
    h5dump -H "$tmp/run/samples.h5" >/dev/null 2>&1 && ok || fail "h5dump cannot read samples.h5"
  fi

  # A stop signal mid-run: exit status 3 and a checkpoint; the resumed run continues exactly.
  "$mpiexec" -q --oversubscribe -np 2 "$mpigan" train "$src/configs/smoke.yaml" --out "$tmp/sig" \
    --steps 100000 --progress lines --set train.log_every=1 --set checkpoint.every=0 >"$tmp/out" 2>"$tmp/err" &
  pid=$!
  i=0
  while [ "$(cat "$tmp/sig/metrics.jsonl" 2>/dev/null | wc -l)" -lt 30 ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
  kill -USR1 $pid
  wait $pid; status=$?
  expect_status "stopped by SIGUSR1" 3
  expect_grep "stop message" "$tmp/err" "mpigan: stopped by a signal at step [0-9]*; checkpoint .* written; continue with: mpigan train --resume $tmp/sig"
  stop=$("$mpigan" info "$tmp/sig" | sed -n 's/^step  *\([0-9]*\)$/\1/p')
  if [ -n "$stop" ] && [ "$stop" -gt 0 ]; then ok; else fail "info gives no step for the stopped run"; stop=1; fi
  target=$((stop + 25))
  run 2 train --resume "$tmp/sig" --steps $target --progress lines
  expect_status "resume after stop" 0
  expect_grep "resume banner" "$tmp/out" "resuming .*ckpt-.*at step $stop of $target"
  run 2 train "$src/configs/smoke.yaml" --out "$tmp/straight" --steps $target --set checkpoint.every=0 --quiet
  expect_status "uninterrupted run" 0
  last=$(printf 'ckpt-%08d.h5' $target)
  if command -v h5diff >/dev/null; then
    for net in generator discriminator; do
      h5diff "$tmp/sig/$last" "$tmp/straight/$last" /$net /$net >"$tmp/diff" 2>&1 \
        && ok || { fail "resumed and uninterrupted $net differ"; cat "$tmp/diff"; }
    done
  fi
  # metrics.jsonl of the resumed run: one record per step, none twice
  [ "$(sed -n 's/^{"step": \([0-9]*\),.*/\1/p' "$tmp/sig/metrics.jsonl" | uniq -d | wc -l)" -eq 0 ] && ok || fail "metrics.jsonl repeats steps after resume"
  # A loss that overflows (lr 1000): every record is still strict JSON, the value null and named
  # in not_finite; mpigan plot draws the run.
  run 1 train "$src/configs/smoke.yaml" --out "$tmp/diverge" --steps 30 --set train.log_every=1 \
    --set train.nonfinite=skip --set generator.optimizer.lr=1000 --set discriminator.optimizer.lr=1000 --quiet
  expect_status "a diverging run with nonfinite: skip" 0
  python3 - "$tmp/diverge/metrics.jsonl" <<'PY' && ok || fail "metrics.jsonl of a diverging run is not strict JSON with its not_finite fields"
import json, sys
def refuse(token):
    raise ValueError(token)
seen = 0
for line in open(sys.argv[1]):
    r = json.loads(line, parse_constant=refuse)
    for key, what in r.get("not_finite", {}).items():
        assert r[key] is None and what in ("nan", "inf", "-inf"), (key, what)
        seen += 1
sys.exit(0 if seen else 1)
PY
  # A resume inside a record's window (log_every 10, checkpoint at 15): the records equal those of
  # an uninterrupted run but for the timings, the window's sums travelling in the checkpoint.
  run 2 train "$src/configs/smoke.yaml" --out "$tmp/win" --steps 25 --set train.log_every=10 \
    --set checkpoint.every=15 --set samples.every=0 --quiet
  run 2 train --resume "$tmp/win/ckpt-00000015.h5" --force --steps 40 --quiet
  expect_status "resume inside a record's window" 0
  run 2 train "$src/configs/smoke.yaml" --out "$tmp/win-straight" --steps 40 --set train.log_every=10 \
    --set checkpoint.every=15 --set samples.every=0 --quiet
  python3 - "$tmp/win/metrics.jsonl" "$tmp/win-straight/metrics.jsonl" <<'PY' && ok || fail "a resumed run's records differ from an uninterrupted run's"
import json, sys
def records(path):
    out = []
    for line in open(path):
        r = json.loads(line)
        for k in ("samples_per_s", "elapsed_s"):
            r.pop(k)
        out.append(r)
    return out
a, b = records(sys.argv[1]), records(sys.argv[2])
if a != b or [r["step"] for r in a] != [10, 20, 30, 40]:
    print("resumed:", a, "\nstraight:", b)
    sys.exit(1)
PY

  # --- sampling: the same samples, bit for bit, on 1, 2 and 3 ranks ---
  run 1 sample "$tmp/straight" -n 300 -o "$tmp/s1.h5" --png "$tmp/s1.png"
  expect_status "sample on 1 rank" 0
  run 2 sample "$tmp/straight/$last" -n 300 -o "$tmp/s2.h5"
  expect_status "sample on 2 ranks" 0
  run 3 sample "$tmp/straight/$last" -n 300 -o "$tmp/s3.h5"
  expect_status "sample on 3 ranks" 0
  [ -s "$tmp/s1.png" ] && ok || fail "sample --png wrote no picture"
  if command -v h5diff >/dev/null; then
    for k in 2 3; do
      h5diff "$tmp/s1.h5" "$tmp/s$k.h5" /samples /samples >/dev/null 2>&1 && ok || fail "samples differ between 1 and $k ranks"
    done
    h5dump -H -d /samples "$tmp/s1.h5" | grep -q "( 300, 1, 28, 28 )" && ok || fail "sample shape"
  fi
  run 2 sample "$tmp/straight" -n 31 -o "$tmp/s31.h5"
  expect_status "sample count not a multiple of the ranks" 0

  t10k=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
  # --- sample and eval refuse, before any work, an output that is what they read, a link, or a
  # file the run directory keeps: one line, status 2, the file as it was ---
  refused() { # refused WHAT FILE: status 2, one line on stderr naming FILE, FILE unchanged
    if [ "$status" -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -qF -- "$2" "$tmp/err"; then ok
    else fail "$1: expected status 2 and one line naming $2"; fi
  }
  cp "$tmp/straight/$last" "$tmp/ckpt-copy.h5"
  cp -P "$tmp/straight/latest.h5" "$tmp/latest-copy"
  run 2 sample "$tmp/straight/$last" -n 5 -o "$tmp/straight/$last"
  refused "sample -o its own checkpoint" "$tmp/straight/$last: the file this command reads"
  run 1 sample "$tmp/straight" -n 5 -o "$tmp/straight/latest.h5"
  refused "sample -o latest.h5 (a link)" "$tmp/straight/latest.h5: a symbolic link"
  run 1 sample "$tmp/straight/$last" -n 5 -o "$tmp/s5.h5" --png "$tmp/straight/samples-00000010.png"
  refused "sample --png a run's picture" "a file the run in $tmp/straight writes"
  run 1 sample "$tmp/straight/$last" -n 5 -o "$tmp/straight/samples.h5"
  refused "sample -o the run's samples.h5" "$tmp/straight/samples.h5: a file the run in"
  run 2 eval "$tmp/straight" -n 50 --valid 20 --test 20 --set data.test_images=$t10k \
    -o "$tmp/straight/$last"
  refused "eval -o the checkpoint" "$tmp/straight/$last: the file this command reads"
  run 1 sample "$tmp/straight/$last" -n 5 -o "$tmp/no-such-dir/s.h5"
  refused "sample -o into a missing directory" "its directory $tmp/no-such-dir does not exist"
  [ ! -e "$tmp/s5.h5" ] && ok || fail "a refused sample wrote its other output"
  cmp -s "$tmp/straight/$last" "$tmp/ckpt-copy.h5" && ok || fail "a refused command changed the checkpoint"
  [ -L "$tmp/straight/latest.h5" ] && [ "$(readlink "$tmp/straight/latest.h5")" = "$(readlink "$tmp/latest-copy")" ] \
    && ok || fail "a refused command changed latest.h5"
  # --columns beyond -n: the grid has -n columns (before: the grid was found too large after the
  # samples were written, status 1)
  run 2 sample "$tmp/straight" -n 5 -o "$tmp/c5.h5" --png "$tmp/c5.png" --columns 100000
  expect_status "sample --columns beyond -n" 0
  [ -s "$tmp/c5.png" ] && ok || fail "sample --columns 100000 -n 5 drew no picture"

  # --- eval: the Parzen estimate, the same on 1, 2 and 3 ranks ---
  t10k=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
  for np in 1 2 3; do
    run $np eval "$tmp/straight" -n 700 --valid 300 --test 600 --set data.test_images=$t10k -o "$tmp/e$np.json"
    expect_status "eval on $np ranks" 0
  done
  expect_grep "eval table" "$tmp/out" "^test log-likelihood (600 examples): .* +- .* (standard error), sigma"
  expect_grep "eval chosen sigma" "$tmp/out" "<- chosen"
  for np in 2 3; do
    a=$(grep -E '"(sigma|test_ll|test_se)"' "$tmp/e1.json"); b=$(grep -E '"(sigma|test_ll|test_se)"' "$tmp/e$np.json")
    [ -n "$a" ] && [ "$a" = "$b" ] && ok || fail "eval differs between 1 and $np ranks: $a / $b"
  done
  expect_grep "eval record" "$tmp/e1.json" '^  "valid_ll": \[$'
  a=$(sed -n '/"valid_ll"/,/\]/p' "$tmp/e1.json"); b=$(sed -n '/"valid_ll"/,/\]/p' "$tmp/e3.json")
  [ "$(echo "$a" | grep -c '^    -*[0-9][0-9.e+-]*,*$')" -eq 10 ] && [ "$a" = "$b" ] && ok || fail "eval record: valid_ll is not 10 numbers, the same on 1 and 3 ranks: $a"
  # a checkpoint path with a quote, a backslash and a newline: a JSON string like any other, which
  # the plot (jansson) reads back
  q="$tmp/say \"cheese\" \\
run"
  mkdir -p "$q" && cp "$tmp/straight/$last" "$tmp/straight/metrics.jsonl" "$q/"
  run 1 eval "$q" -n 100 --valid 50 --test 100 --set data.test_images=$t10k --quiet
  expect_status "eval of a checkpoint with a quote in its path" 0
  expect_grep "eval record names the checkpoint" "$q/eval-$(printf %08d $target).json" \
    '^  "checkpoint": ".*/say \\"cheese\\" \\\\\\nrun/'"$last"'",$'
  if command -v gnuplot >/dev/null; then
    "$mpigan" plot "$q" -o "$tmp/qplots" >"$tmp/out" 2>"$tmp/err"; status=$?
    expect_status "plot reads the record of a path with a quote" 0
    [ -s "$tmp/qplots/parzen-$(printf %08d $target).png" ] && ok || fail "plot: no Parzen curve of the record of a path with a quote"
  fi
  run 2 eval "$tmp/straight" -n 700 --valid 300 --test 600 --set data.test_images=$t10k --real --quiet
  expect_status "eval --real" 0
  [ -s "$tmp/straight/eval-$(printf %08d $target)-real.json" ] && ok || fail "eval --real wrote no record beside the checkpoint"
  run 2 eval "$tmp/straight" -n 100 --valid 50
  expect_error "eval without a test set" "mpigan: $tmp/straight/$last: data.test_images is not set: there is no test set"
  "$mpigan" eval "$tmp/straight" --sigmas 1,0.1,10 >"$tmp/out" 2>"$tmp/err"; status=$?
  expect_error "bad --sigmas" "mpigan: --sigmas takes LO,HI,K with 0 < LO <= HI and K from 1 to 1000, not 1,0.1,10 (see 'mpigan eval --help')"

  # --- Parzen estimates during training, in metrics.jsonl ---
  run 2 train "$src/configs/smoke.yaml" --out "$tmp/evrun" --set eval.every=1 --set eval.samples=300 --set eval.points=200 --quiet
  expect_status "train with eval.every" 0
  expect_grep "parzen in metrics" "$tmp/evrun/metrics.jsonl" '"step": 50, .*"parzen_ll": -*[0-9.]*, "parzen_sigma": 0\.[0-9]*}'

  # --- a rank dies: the job ends soon, non-zero; the latest checkpoint loads and resumes exactly ---
  "$mpiexec" -q --oversubscribe -np 2 "$mpigan" train "$src/configs/smoke.yaml" --out "$tmp/die" \
    --steps 100000 --set checkpoint.every=100 --set samples.every=0 --quiet >"$tmp/out" 2>"$tmp/err" &
  mpid=$!
  i=0; while [ ! -e "$tmp/die/ckpt-00000300.h5" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
  victim=$(pgrep -P $mpid | head -n 1)
  if [ -n "$victim" ] && [ -e "$tmp/die/ckpt-00000300.h5" ]; then
    kill -KILL "$victim"; t0=$(date +%s%N)
    i=0; while kill -0 $mpid 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
    ended_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    if kill -0 $mpid 2>/dev/null; then fail "a killed rank left the job running for 30 s"; kill -KILL $mpid; fi
    wait $mpid; status=$?
    echo "cli: a rank killed with SIGKILL: the job ended in $ended_ms ms with status $status"
    [ "$status" -ne 0 ] && [ "$ended_ms" -lt 10000 ] && ok || fail "rank death: status $status after $ended_ms ms"
    latest=$(readlink "$tmp/die/latest.h5")
    "$mpigan" info "$tmp/die/latest.h5" >"$tmp/out" 2>"$tmp/err"; status=$?
    expect_status "the latest checkpoint after a rank died loads" 0
    at=$(echo "$latest" | sed 's/ckpt-0*\([0-9]*\)\.h5/\1/'); to=$((at + 100))
    run 2 train --resume "$tmp/die" --steps $to --force --quiet
    expect_status "resume after a rank died" 0
    run 2 train "$src/configs/smoke.yaml" --out "$tmp/nodie" --steps $to --set checkpoint.every=0 --set samples.every=0 --quiet
    last_die=$(printf 'ckpt-%08d.h5' $to)
    if command -v h5diff >/dev/null; then
      for net in generator discriminator; do
        h5diff "$tmp/die/$last_die" "$tmp/nodie/$last_die" /$net /$net >/dev/null 2>&1 && ok || fail "resumed after a rank died: $net differs from an uninterrupted run"
      done
    fi
  else
    fail "rank death: no checkpoint at step 300 in 30 s, or no rank to kill"; kill -KILL $mpid 2>/dev/null; wait $mpid
  fi

  # --- a checkpoint that cannot be written: one line, status 1, the previous one untouched ---
  # a directory where the checkpoint of step 200 goes, made once the run has started (at start it
  # would be refused): the rename fails. The paper's model, for steps slow enough to make it.
  "$mpiexec" -q --oversubscribe -np 2 "$mpigan" train "$src/configs/fashion-mnist.yaml" --out "$tmp/wf" \
    --steps 300 --set checkpoint.every=100 --set samples.every=0 --quiet >"$tmp/out" 2>"$tmp/err" &
  pid=$!
  i=0
  while [ ! -e "$tmp/wf/ckpt-00000100.h5" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i + 1)); done
  mkdir -p "$tmp/wf/ckpt-00000200.h5"
  wait $pid; status=$?
  expect_status "unwritable checkpoint" 1
  [ "$(cat "$tmp/err")" = "mpigan: $tmp/wf/ckpt-00000200.h5: cannot write checkpoint: Is a directory" ] && ok || fail "unwritable checkpoint: not the one line expected"
  [ -z "$(ls "$tmp/wf" | grep '\.tmp-')" ] && ok || fail "unwritable checkpoint: a temporary file was left behind"
  [ "$(readlink "$tmp/wf/latest.h5")" = ckpt-00000100.h5 ] && "$mpigan" info "$tmp/wf/latest.h5" >/dev/null 2>&1 && ok || fail "unwritable checkpoint: the previous one is not the loadable latest"
  # a full disk: a 2.6 MB tmpfs has room for the first 1 MB checkpoint, not for the second
  mkdir -p "$tmp/full"
  if mount -t tmpfs -o size=2600k tmpfs "$tmp/full" 2>/dev/null; then
    run 2 train "$src/configs/smoke.yaml" --out "$tmp/full/run" --steps 300 --set checkpoint.every=100 --set samples.every=0 --quiet
    expect_status "full disk" 1
    expect_grep "full disk names the file" "$tmp/err" "^mpigan: .*/ckpt-00000200.h5: cannot write checkpoint: no room: "
    [ "$(grep -c . "$tmp/err")" -eq 1 ] && ok || fail "full disk: more than one line"
    [ ! -e "$tmp/full/run/ckpt-00000200.h5.tmp" ] && [ ! -e "$tmp/full/run/ckpt-00000200.h5" ] && ok || fail "full disk: a partial checkpoint was left"
    "$mpigan" info "$tmp/full/run/latest.h5" >/dev/null 2>&1 && ok || fail "full disk: the previous checkpoint does not load"
    umount "$tmp/full"
  else
    echo "cli: skipped the full-disk case: cannot mount a tmpfs here (not root, or no CAP_SYS_ADMIN)"
  fi

  # --- divergence: NaN or Inf in a gradient stops the run at that step, or is skipped ---
  run 2 train "$src/configs/smoke.yaml" --out "$tmp/nan" --set discriminator.optimizer.lr=1e30 --set checkpoint.every=0 --quiet
  expect_status "NaN stops the run" 1
  expect_grep "NaN names the step" "$tmp/err" "^mpigan: step [0-9]*: NaN or Inf in the .* gradients, not applied; stopped"
  [ "$(grep -c . "$tmp/err")" -eq 1 ] && ok || fail "NaN: more than one line"
  ls "$tmp/nan"/ckpt-*.h5 >/dev/null 2>&1 && fail "NaN: a checkpoint of the diverged state was written" || ok
  run 2 train "$src/configs/smoke.yaml" --out "$tmp/nanskip" --set discriminator.optimizer.lr=1e30 --set train.nonfinite=skip --quiet
  expect_status "NaN skipped" 0
  expect_grep "skips counted" "$tmp/nanskip/metrics.jsonl" '"step": 50, .*"skipped": [1-9]'

  # --- plot: curves, Parzen curves and the sample grid of a run ---
  if command -v gnuplot >/dev/null; then
    "$mpigan" plot "$tmp/evrun" >"$tmp/out" 2>"$tmp/err"; status=$?
    expect_status "plot a run with estimates" 0
    for f in losses d_outputs throughput parzen_training samples; do
      [ "$(head -c 8 "$tmp/evrun/plots/$f.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] && ok || fail "plot: no PNG $f.png"
    done
    "$mpigan" plot "$tmp/straight" -o "$tmp/sp" --size 640x400 >"$tmp/out" 2>"$tmp/err"; status=$?
    expect_status "plot a run with eval records" 0
    [ -s "$tmp/sp/parzen-$(printf %08d $target)-real.png" ] && [ -s "$tmp/sp/samples.png" ] && ok || fail "plot: no Parzen curve of the eval record"
  fi
  "$mpigan" plot "$tmp/nowhere" >"$tmp/out" 2>"$tmp/err"; status=$?
  expect_error "plot of no run" "mpigan: $tmp/nowhere: not a run directory: No such file or directory"
  "$mpigan" plot "$tmp/evrun" --size 10x10 >"$tmp/out" 2>"$tmp/err"; status=$?
  expect_error "plot --size" "mpigan: --size takes WxH, each 64 to 10000, not 10x10 (see 'mpigan plot --help')"

  # --- bad checkpoints: one line, status 2, nothing written ---
  head -c 3000 "$tmp/straight/$last" >"$tmp/trunc.h5"
  "$mpigan" info "$tmp/trunc.h5" >"$tmp/out" 2>"$tmp/err"; status=$?
  if [ "$status" -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "^mpigan: $tmp/trunc.h5: " "$tmp/err"; then ok; else fail "truncated checkpoint"; fi
  run 2 train --resume "$tmp/trunc.h5" --out "$tmp/never"
  if [ "$status" -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && [ ! -e "$tmp/never" ]; then ok; else fail "resume from a truncated checkpoint"; fi
  run 1 train "$src/configs/smoke.yaml" --resume "$tmp/straight" --set generator.layers.0.units=65 --out "$tmp/never"
  expect_error "resume with other networks" "mpigan: $tmp/straight/$last: /generator/h0/W has shape (16, 64) in the checkpoint, the configuration makes it (16, 65)"
  run 1 train --resume "$tmp/nothing-here"
  expect_error "resume from nothing" "mpigan: $tmp/nothing-here: cannot open: No such file or directory"
else
  echo "note: $fashion missing (apt-get install dataset-fashion-mnist): training runs skipped"
fi

# --- data formats: small files in each real format, made by make_data ---
"$make_data" "$tmp/gen" 300 || fail "make_data"
g=$tmp/gen
"$mpigan" prepare idx "$g/idx/train-images-idx3-ubyte.gz" "$g/idx/train-labels-idx1-ubyte.gz" -o "$g/idx.h5" >"$tmp/out" 2>"$tmp/err"; status=$?
expect_status "prepare idx" 0
"$mpigan" prepare cifar10 "$g"/cifar/data_batch_1.bin "$g"/cifar/data_batch_2.bin -o "$g/cifar.h5" >"$tmp/out" 2>"$tmp/err"; status=$?
expect_status "prepare cifar10" 0
"$mpigan" prepare tfd "$g/tfd/TFD_48x48.mat" --fold 0 --split unlabeled -o "$g/tfd.h5" >"$tmp/out" 2>"$tmp/err"; status=$?
expect_status "prepare tfd" 0
if command -v h5dump >/dev/null; then
  h5dump -H -d /images "$g/idx.h5" | grep -q "( 300, 1, 28, 28 )" && ok || fail "prepare idx shape"
  h5dump -H -d /images "$g/cifar.h5" | grep -q "( 120, 3, 32, 32 )" && ok || fail "prepare cifar10 shape"
  h5dump -H -d /images "$g/tfd.h5" | grep -q "( 270, 1, 48, 48 )" && ok || fail "prepare tfd shape"
fi
cp "$g/cifar/data_batch_2.bin" "$tmp/batch2.bin"
"$mpigan" prepare cifar10 "$g"/cifar/data_batch_1.bin "$g"/cifar/data_batch_2.bin -o "$g/cifar/data_batch_2.bin" >"$tmp/out" 2>"$tmp/err"; status=$?
expect_error "prepare -o one of its inputs" "mpigan: $g/cifar/data_batch_2.bin: the file this command reads ($g/cifar/data_batch_2.bin); write elsewhere"
cmp -s "$g/cifar/data_batch_2.bin" "$tmp/batch2.bin" && ok || fail "a refused prepare changed its input"
"$mpigan" prepare cifar10 -o "$g/x.h5" >"$tmp/out" 2>"$tmp/err"; status=$?
expect_error "prepare without inputs" "mpigan: wrong number of inputs for cifar10 (see 'mpigan prepare --help')"

# train on the HDF5 input prepare wrote, on 2 ranks
smoke=$src/configs/smoke.yaml
run 2 train "$smoke" --set data.format=hdf5 --set data.path="$g/idx.h5" --set data.train_count=0 \
  --set data.valid_count=60 --steps 3 --out "$tmp/h5run"
expect_status "train on prepared HDF5" 0
expect_grep "shared training set" "$tmp/out" "training set .* MB (pixel bytes), one copy per node in shared memory"
expect_grep "memory per rank" "$tmp/out" "memory per rank (MB, min-max): RSS [0-9]*-[0-9]*, PSS"
expect_grep "memory in run.json" "$tmp/h5run/run.json" '"rss_min": [0-9]'
run 2 train "$smoke" --set data.format=hdf5 --set data.path="$g/idx.h5" --set data.train_count=0 \
  --set data.valid_count=60 --steps 3 --out "$tmp/h5run-private" --set data.shared_memory=false
expect_status "train with shared memory off" 0
expect_grep "private training sets" "$tmp/out" "training set .* MB (pixel bytes), one copy per rank"
expect_grep "shared gradient sums" "$tmp/h5run/run.json" '"gradient_sums": "shared-memory"'
expect_grep "no buckets with shared sums" "$tmp/h5run/run.json" '"bucket_mb": 0'
# MPI sums in buckets: the start line and run.json say their size
run 2 train "$smoke" --set data.format=hdf5 --set data.path="$g/idx.h5" --set data.train_count=0 \
  --set data.valid_count=60 --steps 3 --out "$tmp/h5run-buckets" \
  --set train.shared_allreduce=false --set train.bucket_mb=5
expect_status "train with buckets" 0
expect_grep "buckets on the start line" "$tmp/out" "gradient sums: MPI_Allreduce, in buckets of 5 MB"
expect_grep "buckets in run.json" "$tmp/h5run-buckets/run.json" '"bucket_mb": 5'
expect_grep "prefetch on the start line" "$tmp/out" "in buckets of 5 MB; update: sharded, gathers prefetched"
expect_grep "prefetch in run.json" "$tmp/h5run-buckets/run.json" '"update": "sharded, gathers prefetched"'
# The sharded update's gathers running into the next forward pass (train.overlap, with MPI sums in
# buckets as between nodes) against waiting for them, through checkpoints, sample sets, replica
# checks and a resume: the same parameters, optimizer state and samples, bit for bit.
for v in true false; do
  run 2 train "$smoke" --steps 12 --out "$tmp/pf-$v" --set train.shared_allreduce=false \
    --set train.bucket_mb=0.01 --set train.overlap=$v --set checkpoint.every=5 \
    --set samples.every=4 --set train.check_every=3 --set train.log_every=7 --quiet
  expect_status "sharded update, overlap $v" 0
done
expect_grep "no prefetch without overlap" "$tmp/pf-false/run.json" '"update": "sharded"'
run 2 train --resume "$tmp/pf-true/ckpt-00000005.h5" --out "$tmp/pf-resumed" --steps 12 --quiet
expect_status "prefetching run resumed" 0
if command -v h5diff >/dev/null; then
  for f in ckpt-00000005.h5:/generator ckpt-00000005.h5:/discriminator \
           ckpt-00000010.h5:/generator ckpt-00000012.h5:/generator \
           ckpt-00000012.h5:/discriminator samples.h5:/samples; do
    h5diff "$tmp/pf-true/${f%%:*}" "$tmp/pf-false/${f%%:*}" "${f#*:}" "${f#*:}" >"$tmp/diff" 2>&1 \
      && ok || { fail "prefetched and waited-for gathers: $f differs"; cat "$tmp/diff"; }
  done
  for net in generator discriminator; do
    h5diff "$tmp/pf-resumed/ckpt-00000012.h5" "$tmp/pf-true/ckpt-00000012.h5" /$net /$net \
      >"$tmp/diff" 2>&1 && ok || { fail "prefetching run resumed: $net differs"; cat "$tmp/diff"; }
  done
fi
# No room for Open MPI's shared-memory windows (its backing directory missing): the training set
# and the gradient sums fall back to private buffers and MPI, instead of hanging in the window's
# allocation (Open MPI 4.1 returns the error on the node's first rank only).
OMPI_MCA_osc_sm_backing_directory=/nonexistent/mpigan-test \
  timeout 120 "$mpiexec" -q --oversubscribe -np 2 "$mpigan" train "$smoke" --steps 3 \
  --out "$tmp/noshm" >"$tmp/out" 2>"$tmp/err"; status=$?
expect_status "no room for shared windows" 0
expect_grep "no shared windows" "$tmp/out" "one copy per rank; gradient sums: MPI_Allreduce"

# the paper's three models load and train for 2 steps on generated data of the right shape
run 1 train "$src/configs/mnist.yaml" --set data.train_images="$g/idx/train-images-idx3-ubyte.gz" \
  --set data.test_images="$g/idx/train-images-idx3-ubyte.gz" --set data.train_count=0 \
  --set data.valid_count=100 --steps 2 --out "$tmp/paper-mnist" --quiet
expect_status "configs/mnist.yaml on generated MNIST" 0
run 1 train "$src/configs/cifar10-mlp.yaml" --set data.path="$g/cifar" --set data.train_count=0 \
  --set data.valid_count=100 --steps 2 --out "$tmp/paper-cifar" --quiet
expect_status "configs/cifar10-mlp.yaml on generated CIFAR-10" 0
run 1 train "$src/configs/tfd.yaml" --set data.path="$g/tfd/TFD_48x48.mat" --steps 2 --out "$tmp/paper-tfd" --quiet
expect_status "configs/tfd.yaml on a generated TFD file" 0
# the convolutional models likewise, on 2 ranks (batch norm sums over both); each draws its
# colour or grey grid in data.range's or GCN's scale, and sample --png draws a grid from it
run 2 train "$src/configs/cifar10-conv.yaml" --set data.path="$g/cifar" --set data.train_count=0 \
  --set data.valid_count=100 --steps 2 --out "$tmp/conv-cifar" --quiet --set samples.every=2
expect_status "configs/cifar10-conv.yaml on generated CIFAR-10" 0
[ -s "$tmp/conv-cifar/samples-00000002.png" ] && ok || fail "cifar10-conv draws no GCN'd grid"
run 2 train "$src/configs/cifar10-dcgan.yaml" --set data.path="$g/cifar" --set data.train_count=0 \
  --set data.valid_count=100 --steps 2 --out "$tmp/dcgan-cifar" --quiet --set samples.every=2
expect_status "configs/cifar10-dcgan.yaml on generated CIFAR-10" 0
[ -s "$tmp/dcgan-cifar/samples-00000002.png" ] && ok || fail "cifar10-dcgan draws no grid"
run 2 train "$src/configs/fashion-mnist-dcgan.yaml" \
  --set data.train_images="$g/idx/train-images-idx3-ubyte.gz" \
  --set data.test_images="$g/idx/train-images-idx3-ubyte.gz" --set data.train_count=0 \
  --set data.valid_count=100 --steps 2 --out "$tmp/dcgan-fashion" --quiet
expect_status "configs/fashion-mnist-dcgan.yaml on generated MNIST" 0
run 2 train "$src/configs/tfd-dcgan.yaml" --set data.path="$g/tfd/TFD_48x48.mat" --steps 2 \
  --out "$tmp/dcgan-tfd" --quiet
expect_status "configs/tfd-dcgan.yaml on a generated TFD file" 0
run 2 sample "$tmp/dcgan-cifar" -n 16 -o "$tmp/dcgan-cifar/s.h5" --png "$tmp/dcgan-cifar/s.png"
expect_status "sample --png of a DCGAN" 0
python3 - "$tmp/dcgan-cifar/s.png" <<'PY' && ok || fail "sample --png of a DCGAN: not a 4 x 4 colour grid"
import struct, sys
head = open(sys.argv[1], "rb").read(26)
width, height, depth, colour = struct.unpack(">IIBB", head[16:26])
sys.exit(not (width == height == 1 + 4 * 33 and depth == 8 and colour == 2))
PY

# bad data files: one line naming the file, status 2, no run directory
mkdir -p "$g/badcifar"
head -c 10000 "$g/cifar/data_batch_1.bin" >"$g/badcifar/data_batch_1.bin"
for b in 2 3 4 5; do cp "$g/cifar/data_batch_$b.bin" "$g/badcifar/"; done
run 2 train "$src/configs/cifar10-mlp.yaml" --set data.path="$g/badcifar" --out "$tmp/never2"
expect_error "truncated CIFAR batch" "mpigan: $g/badcifar/data_batch_1.bin: 10000 bytes is not a whole number of 3073-byte CIFAR-10 records (3 records and 781 bytes over)"
[ ! -e "$tmp/never2" ] && ok || fail "a refused run left a run directory"

# --- labels: a conditional GAN, classifiers, eval --classifier, on generated labelled data ---
gi=$g/idx/train-images-idx3-ubyte.gz gl=$g/idx/train-labels-idx1-ubyte.gz
set -- --set data.train_images="$gi" --set data.train_labels="$gl" --set data.classes=10 \
  --set data.train_count=0 --set data.valid_count=60
run 2 train "$smoke" "$@" --set conditional.enabled=true --steps 12 --set samples.every=6 \
  --set samples.count=30 --out "$tmp/cond" --quiet
expect_status "a conditional GAN on generated labelled data" 0
"$mpigan" info "$tmp/cond" >"$tmp/out" 2>"$tmp/err"
expect_grep "info: a conditional checkpoint" "$tmp/out" "^kind  *conditional GAN$"
expect_grep "info: its classes" "$tmp/out" "^classes  *10$"
# the snapshot grid has a row per class: 30 samples of 10 classes in 3 columns, with neighbours
python3 - "$tmp/cond/samples-00000012.png" <<'PY' && ok || fail "samples-<step>.png of a conditional GAN: not 10 rows of 3"
import struct, sys
head = open(sys.argv[1], "rb").read(26)
width, height = struct.unpack(">II", head[16:24])
sys.exit(not (width == 1 + 3 * 29 + 3 + 28 + 2 and height == 1 + 10 * 29))
PY
if command -v h5dump >/dev/null; then
  h5dump -d /labels "$tmp/cond/samples.h5" | grep -q "(0): 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1" && ok || fail "samples.h5 holds no /labels i mod 10"
fi
# sample --class K: the rows of class K of the noise set, nothing else
run 2 sample "$tmp/cond" -n 40 -o "$tmp/c40.h5" --png "$tmp/c40.png"
expect_status "sample of a conditional GAN" 0
run 3 sample "$tmp/cond" -n 4 --class 3 -o "$tmp/c3.h5"
expect_status "sample --class" 0
if command -v h5dump >/dev/null; then
  for d in z samples labels; do
    h5dump -d /$d -b LE -o "$tmp/c3.$d" "$tmp/c3.h5" >/dev/null 2>&1
  done
  h5dump -d /z -s 3,0 -S 10,1 -c 4,16 -b LE -o "$tmp/c40.z" "$tmp/c40.h5" >/dev/null 2>&1
  h5dump -d /samples -s 3,0,0,0 -S 10,1,1,1 -c 4,1,28,28 -b LE -o "$tmp/c40.samples" "$tmp/c40.h5" >/dev/null 2>&1
  cmp -s "$tmp/c3.z" "$tmp/c40.z" && ok || fail "sample --class 3: not the noise of rows 3, 13, 23, 33"
  # the images up to the rounding of GEMMs of other row counts (a few float ulps)
  python3 - "$tmp/c3.samples" "$tmp/c40.samples" "$tmp/c3.labels" <<'PY' && ok || fail "sample --class 3: other images or labels than rows 3, 13, 23, 33"
import array, sys
a, b, l = array.array("f"), array.array("f"), array.array("i")
a.frombytes(open(sys.argv[1], "rb").read()); b.frombytes(open(sys.argv[2], "rb").read())
l.frombytes(open(sys.argv[3], "rb").read())
sys.exit(not (len(a) == len(b) == 4 * 784 and max(abs(x - y) for x, y in zip(a, b)) <= 1e-5
              and list(l) == [3, 3, 3, 3]))
PY
fi
run 2 sample "$tmp/cond" -n 4 --class 10 -o "$tmp/never.h5"
expect_error "sample --class beyond the classes" "mpigan: $tmp/cond/ckpt-00000012.h5: --class 10: the generator's classes are 0 to 9"
run 1 sample "$tmp/h5run" -n 4 --class 1 -o "$tmp/never.h5"
expect_error "sample --class of an unconditional GAN" "mpigan: $tmp/h5run/ckpt-00000003.h5: --class 1: the checkpoint's generator is unconditional"
# a conditional checkpoint in an unconditional configuration, and the reverse
run 2 train --resume "$tmp/cond" --set conditional.enabled=false --steps 20 --out "$tmp/never3"
expect_error "resume a conditional run unconditionally" "mpigan: $tmp/cond/ckpt-00000012.h5: the checkpoint's GAN is conditional on 10 classes, the configuration's is not (conditional.enabled false)"
run 2 train "$smoke" "$@" --set conditional.enabled=true --resume "$tmp/h5run" --steps 20 --out "$tmp/never3"
expect_error "resume an unconditional run conditionally" "mpigan: $tmp/h5run/ckpt-00000003.h5: the checkpoint's GAN is unconditional, the configuration's is conditional on 10 classes"
[ ! -e "$tmp/never3" ] && ok || fail "a refused resume left a run directory"
# bad labels: another split's file, a label beyond data.classes, labels a conditional GAN lacks
python3 -c 'import sys; sys.stdout.buffer.write(bytes([0, 0, 8, 1, 0, 0, 0, 100]) + bytes(i % 10 for i in range(100)))' >"$tmp/short-labels.idx"
run 2 train "$smoke" "$@" --set data.train_labels="$tmp/short-labels.idx" --steps 2 --out "$tmp/never4"
expect_error "labels of another split" "mpigan: $tmp/short-labels.idx: 100 labels, but $gi holds 300 images (the labels of another split?)"
run 2 train "$smoke" "$@" --set data.classes=5 --steps 2 --out "$tmp/never4"
expect_error "a label beyond data.classes" "mpigan: $gl: example 5 has label 5, not in 0..4"
run 2 train "$smoke" --set data.train_images="$gi" --set conditional.enabled=true --steps 2 --out "$tmp/never4"
expect_error "a conditional GAN without labels" "mpigan: $smoke: conditional.enabled: a conditional GAN trains on labels: set data.train_labels"
[ ! -e "$tmp/never4" ] && ok || fail "a refused run left a run directory"

# a classifier of the generated classes, data-parallel; its figures of the conditional GAN
cls_cfg=$src/configs/fashion-mnist-classifier.yaml
run 2 classifier train "$cls_cfg" "$@" --set data.test_images="$gi" --set data.test_labels="$gl" \
  --epochs 4 --out "$tmp/cls" --progress lines
expect_status "classifier train on generated data" 0
expect_grep "classifier: validation accuracy each epoch" "$tmp/out" "epoch   4.00  step 8/8 .*validation accuracy"
expect_grep "classifier: test accuracy" "$tmp/out" "^test accuracy 0\.[0-9]* (300 examples); checkpoint $tmp/cls/ckpt-00000008.h5"
expect_grep "classifier: run.json" "$tmp/cls/run.json" '"test_accuracy": '
"$mpigan" info "$tmp/cls" >"$tmp/out" 2>"$tmp/err"
expect_grep "info: a classifier checkpoint" "$tmp/out" "^kind  *classifier$"
expect_grep "info: the classifier's layers" "$tmp/out" "^classifier: 3 layers"
# a stopped classifier resumes exactly: 4 steps, then 4 more from the checkpoint, against 8
run 2 classifier train "$cls_cfg" "$@" --steps 4 --set checkpoint.every=2 --set checkpoint.keep=3 \
  --out "$tmp/cls-r" --quiet
run 2 classifier train --resume "$tmp/cls-r/ckpt-00000002.h5" --steps 8 --quiet
expect_error "classifier resume from an older checkpoint" "mpigan: $tmp/cls-r: holds checkpoints after step 2 ($tmp/cls-r/ckpt-00000004.h5): resume into another --out, or pass --force to delete them"
run 2 classifier train --resume "$tmp/cls-r" --steps 8 --quiet
expect_status "classifier resume" 0
run 2 classifier train "$cls_cfg" "$@" --steps 8 --out "$tmp/cls-s" --quiet
if command -v h5diff >/dev/null; then
  h5diff "$tmp/cls-r/ckpt-00000008.h5" "$tmp/cls-s/ckpt-00000008.h5" /classifier /classifier >"$tmp/diff" 2>&1 \
    && ok || { fail "resumed and uninterrupted classifiers differ"; cat "$tmp/diff"; }
fi
run 2 classifier train "$smoke" --steps 2 --out "$tmp/never5"
expect_error "classifier train of a GAN configuration" "mpigan: $smoke: not a classifier configuration (it has no classifier section): mpigan train trains a GAN"
run 2 train "$cls_cfg" "$@" --steps 2 --out "$tmp/never5"
expect_error "train of a classifier configuration" "mpigan: $cls_cfg: a classifier configuration (it has a classifier section): train it with mpigan classifier train"
"$mpigan" classifier >"$tmp/out" 2>"$tmp/err"; status=$?
expect_error "classifier without a subcommand" "mpigan: classifier takes a subcommand: train (see 'mpigan classifier --help')"
[ ! -e "$tmp/never5" ] && ok || fail "a refused classifier run left a run directory"
# eval --classifier: the same figures on 1, 2 and 3 ranks, in the table and the record
for np in 1 2 3; do
  run $np eval "$tmp/cond" --classifier "$tmp/cls" -n 300 --valid 50 --test 200 \
    --set data.test_images="$gi" --set data.test_labels="$gl" -o "$tmp/q$np.json"
  expect_status "eval --classifier on $np ranks" 0
done
expect_grep "eval --classifier table" "$tmp/out" "Frechet distance of its features, 300 samples vs 200 test examples: [0-9]"
expect_grep "eval --classifier conditional accuracy" "$tmp/out" "conditional accuracy: 0\.[0-9]*"
for np in 2 3; do
  python3 - "$tmp/q1.json" "$tmp/q$np.json" <<'PY' && ok || fail "eval --classifier differs between 1 and $np ranks"
import json, sys
a, b = (json.load(open(p))["classifier"] for p in sys.argv[1:])
a.pop("seconds"); b.pop("seconds")
sys.exit(not (a == b and len(a["histogram"]) == 10 and sum(a["histogram"]) == 300))
PY
done
run 2 eval "$tmp/cond" --classifier "$tmp/cls" --class 3 -n 100 --valid 50 --test 200 \
  --set data.test_images="$gi" --set data.test_labels="$gl" --quiet
expect_status "eval --classifier --class" 0
expect_grep "eval --class: the record's name" "$tmp/cond/eval-00000012-class3.json" '"class": 3'
run 2 eval "$tmp/cond" --classifier "$tmp/cls" --real --class 3 -n 20 --valid 50 --test 200 \
  --set data.test_images="$gi" --set data.test_labels="$gl" --quiet
expect_status "eval --real --class" 0
python3 - "$tmp/cond/eval-00000012-real-class3.json" <<'PY' && ok || fail "eval --real --class 3: not 20 training examples of class 3"
import json, sys
c = json.load(open(sys.argv[1]))["classifier"]
sys.exit(not (c["samples"] == 20 and c["class"] == 3 and "accuracy" not in c))
PY
run 2 eval "$tmp/cond" --classifier "$tmp/cond" -n 100 --valid 50 --test 200 \
  --set data.test_images="$gi" --set data.test_labels="$gl"
expect_error "eval --classifier of a GAN checkpoint" "mpigan: $tmp/cond/ckpt-00000012.h5: holds a GAN (mpigan train), not a classifier"
if command -v gnuplot >/dev/null; then
  "$mpigan" plot "$tmp/cond" >"$tmp/out" 2>"$tmp/err"; status=$?
  expect_status "plot of a conditional run with classifier records" 0
  [ -s "$tmp/cond/plots/classes-00000012-class3.png" ] && [ -s "$tmp/cond/plots/classes-00000012-real-class3.png" ] \
    && ok || fail "plot: no class histogram of the eval records"
fi
# the classifier's figures during training, in metrics.jsonl
run 2 train "$smoke" "$@" --set conditional.enabled=true --steps 12 --set eval.every=1 \
  --set eval.samples=200 --set eval.points=60 --set eval.classifier="$tmp/cls/ckpt-00000008.h5" \
  --out "$tmp/condev" --quiet
expect_status "eval.classifier during training" 0
expect_grep "classifier figures in metrics.jsonl" "$tmp/condev/metrics.jsonl" '"step": 12, .*"fid": [0-9.e+-]*, "classifier_score": [0-9.e+-]*, "coverage": [0-9]*, "cond_accuracy": '
# the shipped conditional GAN and convolutional classifier load and train 2 steps on generated data
run 2 train "$src/configs/fashion-mnist-conditional.yaml" "$@" --set data.test_images="$gi" \
  --set data.test_labels="$gl" --steps 2 --out "$tmp/cfm" --quiet
expect_status "configs/fashion-mnist-conditional.yaml on generated labelled data" 0
run 2 classifier train "$src/configs/fashion-mnist-conv-classifier.yaml" "$@" \
  --set data.test_images="$gi" --set data.test_labels="$gl" --steps 2 --out "$tmp/cls-conv" --quiet
expect_status "configs/fashion-mnist-conv-classifier.yaml on generated labelled data" 0
# the CIFAR-10 classifier trains on generated batches (test_batch.bin included)
run 2 classifier train "$src/configs/cifar10-classifier.yaml" --set data.path="$g/cifar" \
  --set data.train_count=0 --set data.valid_count=100 --steps 2 --out "$tmp/cls-cifar" --quiet
expect_status "configs/cifar10-classifier.yaml on generated CIFAR-10" 0
# prepare carries TFD's expression labels of a labelled split, as training reads them
"$mpigan" prepare tfd "$g/tfd/TFD_48x48.mat" --fold 0 --split train -o "$g/tfd-train.h5" >"$tmp/out" 2>"$tmp/err"; status=$?
expect_status "prepare tfd --split train" 0
if command -v h5dump >/dev/null; then
  h5dump -d /labels "$g/tfd-train.h5" | grep -q "DATASPACE  SIMPLE { ( 10 )" && ok || fail "prepare tfd: no 10 labels of the train split"
  [ "$(h5dump -d /labels "$g/tfd-train.h5" | sed -n 's/^ *([0-9]*): //p' | tr -d ' \n' | tr ',' '\n' | sort -u | tr '\n' ' ')" = "0 1 2 3 4 5 6 " ] \
    && ok || fail "prepare tfd: labels are not labs_ex - 1"
fi

echo "cli: $passed passed, $failures failed"
[ "$failures" -eq 0 ]
