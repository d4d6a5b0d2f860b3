#!/bin/sh
# Builds the libFuzzer targets of tests/fuzz (clang, ASan + UBSan, in build-fuzz) and runs each
# for SECONDS (default 30), one after another on one core, then prints per target the inputs run,
# the coverage (libFuzzer's cov: edges of mpigan's own code; HDF5 and libmatio are not
# instrumented), the corpus and the crashes. The corpus of each target is kept in
# build-fuzz/fuzz-corpus between runs, so coverage builds up; crashes (and the input that caused
# them) go to build-fuzz/fuzz-crashes, the full logs to build-fuzz/fuzz-logs.
# usage: tests/fuzz/run.sh [SECONDS]    FUZZ_TARGETS="fuzz_idx ..." runs only those; JOBS=n for
#                                       the build (default nproc). Exit status 1 if any crashed.
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-30}
dir=${FUZZ_BUILD_DIR:-$src/build-fuzz}
targets=${FUZZ_TARGETS:-fuzz_config fuzz_idx fuzz_idx_gz fuzz_cifar10 fuzz_h5data fuzz_tfd fuzz_checkpoint}

CC=${CC:-clang} cmake -S "$src" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMPIGAN_FUZZ=ON >/dev/null
cmake --build "$dir" -j"${JOBS:-$(nproc)}" --target fuzz >/dev/null

seeds=$dir/fuzz-seeds
rm -rf "$seeds"
"$dir/tests/fuzz/fuzz_seeds" "$seeds"
mkdir -p "$seeds/fuzz_config"
cp "$src"/configs/*.yaml "$seeds/fuzz_config/"

# Leaks are errors (but HDF5's own, lsan.supp); every UBSan report stops the run. An allocation
# that cannot succeed returns NULL, as it does without ASan: libhdf5 asks for hundreds of GB when
# a damaged size reaches its metadata cache, and handles the failure; mpigan's own allocations are
# checked against the file first (mg_xmalloc exiting would show as a crash). The scratch file of
# each input lives in memory where possible.
export ASAN_OPTIONS=detect_leaks=1:strict_string_checks=1:allocator_may_return_null=1
export LSAN_OPTIONS=suppressions=$src/tests/fuzz/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
[ -w /dev/shm ] && export TMPDIR=/dev/shm

dict_of() {
  case $1 in
    fuzz_config) echo "$src/tests/fuzz/yaml.dict" ;;
    fuzz_idx*) echo "$src/tests/fuzz/idx.dict" ;;
    fuzz_h5data|fuzz_checkpoint) echo "$src/tests/fuzz/hdf5.dict" ;;
    fuzz_tfd) echo "$src/tests/fuzz/mat.dict" ;;
    *) echo "" ;;
  esac
}

crashed=0
summary=""
for t in $targets; do
  corpus=$dir/fuzz-corpus/$t crashes=$dir/fuzz-crashes logs=$dir/fuzz-logs/$t
  mkdir -p "$corpus" "$crashes" "$logs"
  before=$(ls "$crashes" | grep -c "^$t-" || true)
  dict=$(dict_of "$t")
  # -jobs=1 -workers=1: one fuzzing process, its output in $logs/fuzz-0.log. Memory is limited by
  # RSS (2 GB), not by the size of one malloc: libmatio and libhdf5 allocate sizes from damaged
  # headers that they never touch (see README.md).
  (cd "$logs" && rm -f fuzz-0.log &&
   "$dir/tests/fuzz/$t" -max_total_time="$secs" -jobs=1 -workers=1 -timeout=30 \
     -rss_limit_mb=2048 -malloc_limit_mb=1048576 -print_final_stats=1 ${dict:+-dict="$dict"} \
     -artifact_prefix="$crashes/$t-" "$corpus" "$seeds/$t" >/dev/null 2>&1) || true
  after=$(ls "$crashes" | grep -c "^$t-" || true)
  # The last status line: "#123 DONE cov: 456 ft: 789 corp: 12/3456b ..." (or the last pulse).
  line=$(grep -E '^#[0-9]+' "$logs/fuzz-0.log" | tail -n 1)
  runs=$(echo "$line" | sed -n 's/^#\([0-9]*\).*/\1/p')
  cov=$(echo "$line" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
  ft=$(echo "$line" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
  corp=$(echo "$line" | sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p')
  new=$((after - before))
  [ "$new" -eq 0 ] || crashed=1
  row=$(printf '%-16s %10s runs  cov %5s  ft %6s  corpus %5s  crashes %s' "$t" "${runs:-?}" \
        "${cov:-?}" "${ft:-?}" "${corp:-?}" "$new")
  echo "$row"
  summary="$summary$row
"
  if [ "$new" -ne 0 ]; then
    ls -t "$crashes" | grep "^$t-" | head -n "$new" | sed "s|^|  $crashes/|"
    grep -E 'ERROR|SUMMARY|fuzz:' "$logs/fuzz-0.log" | head -n 5 | sed 's/^/  /'
  fi
done
echo "run.sh: ${secs} s per target, logs in $dir/fuzz-logs"
exit $crashed
