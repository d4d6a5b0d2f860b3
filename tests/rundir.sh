#!/bin/sh
# What a run does to its run directory when things go wrong (README "Reliability"): a second
# writer, planted links, a resume after a crash, --force, a stop request
# at start-up or by a STOP file, a path too long, a full disk at start and mid-run, a refusal
# found after the directory could have been changed. Each case is reproduced, and what must hold
# afterwards is checked file by file.
# usage: rundir.sh MPIGAN MPIEXEC SOURCE_DIR
set -u
mpigan=$1 mpiexec=$2 src=$3
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mpigan-rundir-XXXXXX")
trap 'umount "$tmp/full" 2>/dev/null; rm -rf "$tmp"' EXIT
failures=0 passed=0
smoke=$src/configs/smoke.yaml

run() { # run NP ARGS...: mpigan under mpiexec with NP ranks; stdout, stderr, status kept
  np=$1; shift
  "$mpiexec" -q --oversubscribe -np "$np" "$mpigan" "$@" >"$tmp/out" 2>"$tmp/err"
  status=$?
}
start() { # start NP ARGS...: the same in the background; its pid in $pid
  np=$1; shift
  "$mpiexec" -q --oversubscribe -np "$np" "$mpigan" "$@" >"$tmp/out" 2>"$tmp/err" &
  pid=$!
}
finish() { wait "$pid"; status=$?; }
ok() { passed=$((passed + 1)); }
fail() { failures=$((failures + 1)); echo "FAIL: $*"; echo "--- stdout"; cat "$tmp/out"; echo "--- stderr"; cat "$tmp/err"; }
expect_status() { if [ "$status" -eq "$2" ]; then ok; else fail "$1: exit status $status, expected $2"; fi; }
expect_error() { # expect_error WHAT LINE: status 2 and stderr exactly that one line
  if [ "$status" -eq 2 ] && [ "$(cat "$tmp/err")" = "$2" ]; then ok
  else fail "$1: expected status 2 and the single line: $2"; fi
}
expect_grep() { if grep -q -- "$3" "$2"; then ok; else fail "$1: no '$3' in $2"; fi; }
wait_for() { # wait_for FILE LINES: until FILE has LINES lines (at most 60 s)
  i=0
  while [ "$(cat "$1" 2>/dev/null | wc -l)" -lt "$2" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
}
steps_of() { # steps_of SAMPLES.H5: its /steps, space-separated
  h5dump -d /steps -y -w 0 "$1" 2>/dev/null | sed -n '/DATA {/,/}/p' | tr -cs '0-9' ' ' | sed 's/^ *//; s/ *$//'
}

# --- one writer per run directory ---
start 2 train "$smoke" --out "$tmp/lock" --steps 100000 --set train.log_every=1 --set checkpoint.every=0 --quiet
wait_for "$tmp/lock/metrics.jsonl" 3
first=$pid
"$mpiexec" -q --oversubscribe -np 1 "$mpigan" train "$smoke" --out "$tmp/lock" --force >"$tmp/out2" 2>"$tmp/err2"
status=$?
[ "$status" -eq 2 ] && grep -q "^mpigan: $tmp/lock: another mpigan run is writing here (pid [0-9]* on .*): wait for it to end, or choose another --out$" "$tmp/err2" \
  && ok || { fail "a second writer was not refused (status $status)"; cat "$tmp/err2"; }
kill -USR1 "$first"; pid=$first; finish
expect_status "the first writer stops as asked" 3

# --- planted links: never written through ---
mkdir -p "$tmp/links"
ln -s "$tmp/outside" "$tmp/links/metrics.jsonl"
run 1 train "$smoke" --out "$tmp/links" --steps 2 --quiet
expect_error "a link where metrics.jsonl goes" "mpigan: $tmp/links/metrics.jsonl: a symbolic link where mpigan keeps a file: remove it"
[ ! -e "$tmp/outside" ] && ok || fail "a file was created through a planted link"
rm "$tmp/links/metrics.jsonl"
echo precious >"$tmp/victim"
ln -s "$tmp/victim" "$tmp/links/ckpt-00000002.h5.tmp"
ln -s "$tmp/victim" "$tmp/links/.config.yaml.tmp"
ln -s "$tmp/victim" "$tmp/links/latest.h5.tmp"
run 1 train "$smoke" --out "$tmp/links" --steps 2 --quiet
expect_status "links at the old temporary names" 0
[ "$(cat "$tmp/victim")" = precious ] && ok || fail "a planted link's target was written"
[ -f "$tmp/links/ckpt-00000002.h5" ] && [ ! -L "$tmp/links/ckpt-00000002.h5" ] && ok || fail "the checkpoint is not a file of its own"

# --- a resume after a crash between a snapshot and a checkpoint: the files of an uninterrupted run ---
run 1 train "$smoke" --out "$tmp/snap" --steps 30 --set samples.every=10 --set checkpoint.every=10 --quiet
run 1 train --resume "$tmp/snap/ckpt-00000010.h5" --force --steps 30 --quiet
expect_status "resume from an older checkpoint with --force" 0
[ "$(steps_of "$tmp/snap/samples.h5")" = "10 20 30" ] && ok || fail "samples.h5 /steps after the resume: $(steps_of "$tmp/snap/samples.h5")"
run 1 train "$smoke" --out "$tmp/snap-straight" --steps 30 --set samples.every=10 --set checkpoint.every=10 --quiet
h5diff "$tmp/snap/samples.h5" "$tmp/snap-straight/samples.h5" /samples /samples >/dev/null 2>&1 \
  && ok || fail "a resumed run's samples.h5 differs from an uninterrupted run's"

# --- --resume DIR continues from what latest.h5 names ---
ln -sfn ckpt-00000020.h5 "$tmp/snap/latest.h5"
"$mpigan" info "$tmp/snap" >"$tmp/out" 2>"$tmp/err"
expect_grep "info follows latest.h5" "$tmp/out" "^step  *20$"

# --- refused before anything changes: a resume whose evaluation has no validation examples ---
ls -l "$tmp/snap" >"$tmp/before"; cksum "$tmp/snap/metrics.jsonl" "$tmp/snap/config.yaml" "$tmp/snap/samples.h5" >>"$tmp/before"
run 1 train --resume "$tmp/snap/ckpt-00000010.h5" --force --set eval.every=1 --set data.valid_count=0
[ "$status" -eq 2 ] && [ "$(grep -c . "$tmp/err")" -eq 1 ] && ok || fail "a refused resume: status $status"
ls -l "$tmp/snap" >"$tmp/after"; cksum "$tmp/snap/metrics.jsonl" "$tmp/snap/config.yaml" "$tmp/snap/samples.h5" >>"$tmp/after"
cmp -s "$tmp/before" "$tmp/after" && ok || { fail "a refused resume changed the run directory"; diff "$tmp/before" "$tmp/after"; }
run 1 train "$smoke" --out "$tmp/never" --set eval.every=1 --set data.valid_count=0
[ "$status" -eq 2 ] && [ ! -e "$tmp/never" ] && ok || fail "a refused fresh run left its directory"
run 1 train "$smoke" --out "$tmp/never" --set samples.count=50000 --set samples.columns=1
[ "$status" -eq 2 ] && [ ! -e "$tmp/never" ] && ok || fail "a grid that cannot be drawn was found after the start (status $status)"

# --- a stop request: a STOP file, and a signal during start-up ---
start 1 train "$smoke" --out "$tmp/stopfile" --steps 100000 --set train.log_every=1 --set checkpoint.every=0 --quiet
wait_for "$tmp/stopfile/metrics.jsonl" 2
touch "$tmp/stopfile/STOP"
finish
expect_status "a STOP file" 3
expect_grep "STOP honoured" "$tmp/err" "mpigan: stopped by a STOP file at step [0-9]*; checkpoint .* written"
[ ! -e "$tmp/stopfile/STOP" ] && ok || fail "the STOP file is still there"
# ... written before the run starts (what jobs/train.sbatch does with a warning at start-up):
# honoured at the first step, whenever the clock of MPI_Wtime starts
mkdir -p "$tmp/stopfirst" && touch "$tmp/stopfirst/STOP"
run 1 train "$smoke" --out "$tmp/stopfirst" --steps 100000 --quiet
expect_status "a STOP file before the start" 3
expect_grep "STOP before the start: at step 1" "$tmp/err" "mpigan: stopped by a STOP file at step 1; checkpoint .*ckpt-00000001.h5 written"
# ... while the ranks start MPI and read the data: queued, then honoured at the end of the first
# step, with a checkpoint, so that a job requeues instead of dying. The signal comes as soon as a
# rank has its handler (SigCgt in /proc: mpigan installs it first thing in main); before main, in
# the ~0.1 s the loader takes, a signal still ends the process (README "Reliability").
caught() { # caught PID: the process catches SIGUSR1 (bit 9 of SigCgt)
  mask=$(sed -n 's/^SigCgt:[[:space:]]*//p' "/proc/$1/status" 2>/dev/null)
  [ -n "$mask" ] && [ $(( 0x$mask & 0x200 )) -ne 0 ]
}
early_ranks() { # early_ranks DIR: the pids of the ranks training into DIR, once they catch SIGUSR1
  i=0
  while [ $i -lt 500 ]; do
    ranks=$(pgrep -f "$mpigan train $smoke --out $1" | grep -v "^$pid$")
    all=1; n=0
    for r in $ranks; do n=$((n + 1)); caught "$r" || all=0; done
    [ "$n" -ge 2 ] && [ "$all" -eq 1 ] && return 0
    sleep 0.002; i=$((i + 1))
  done
  return 1
}
start 2 train "$smoke" --out "$tmp/early" --steps 100000 --quiet
early_ranks "$tmp/early" && for r in $ranks; do kill -USR1 "$r"; done
finish
expect_status "a stop signal to the ranks during start-up" 3
[ -f "$tmp/early/latest.h5" ] && ok || fail "a stop during start-up left no checkpoint"
start 2 train "$smoke" --out "$tmp/early2" --steps 100000 --quiet
early_ranks "$tmp/early2" && kill -USR1 "$pid"
finish
expect_status "a stop signal to mpirun during start-up" 3

# --- a run directory path too long ---
long=$tmp/$(printf 'd%.0s' $(seq 1 1100))
run 1 train "$smoke" --out "$long" --steps 1
[ "$status" -eq 2 ] && [ "$(grep -c . "$tmp/err")" -eq 1 ] && grep -q "run directory path of [0-9]* bytes is too long" "$tmp/err" \
  && ok || fail "a run directory path over the limit (status $status)"

# --- a full disk: at start nothing is left; mid-run no record is lost or spliced unnoticed ---
mkdir -p "$tmp/full"
if mount -t tmpfs -o size=1m tmpfs "$tmp/full" 2>/dev/null; then
  dd if=/dev/zero of="$tmp/full/filler" bs=64k 2>/dev/null
  run 1 train "$smoke" --out "$tmp/full/run" --steps 2
  [ "$status" -ne 0 ] && [ ! -e "$tmp/full/run" ] && ok || fail "a full disk at start left a run directory (status $status)"
  rm -f "$tmp/full/filler"
  start 1 train "$smoke" --out "$tmp/full/run" --steps 100000 --set train.log_every=1 --set checkpoint.every=0 \
    --set samples.every=0 --quiet
  wait_for "$tmp/full/run/metrics.jsonl" 20
  dd if=/dev/zero of="$tmp/full/filler" bs=64k 2>/dev/null
  finish
  expect_status "a full disk mid-run" 1
  expect_grep "the lost record is named" "$tmp/err" "^mpigan: $tmp/full/run/metrics.jsonl: cannot write the record of step [0-9]*: No space left on device"
  python3 -c '
import json, sys
steps = [json.loads(line)["step"] for line in open(sys.argv[1])]
sys.exit(0 if steps == list(range(1, len(steps) + 1)) else 1)' "$tmp/full/run/metrics.jsonl" \
    && ok || fail "metrics.jsonl after a full disk: a record lost or spliced"
  umount "$tmp/full"
else
  echo "rundir: skipped the full-disk cases: cannot mount a tmpfs here (not root, or no CAP_SYS_ADMIN)"
fi

echo "rundir: $passed passed, $failures failed"
[ "$failures" -eq 0 ]
