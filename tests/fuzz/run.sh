#!/bin/sh
# Builds the libFuzzer targets of tests/fuzz (clang, ASan + UBSan, in build-fuzz) and runs each
# for SECONDS (default 30), one after another on one core, then prints per target the inputs run,
# the coverage (libFuzzer's cov: edges of mpigan's own code; HDF5 and libmatio are not
# instrumented), the corpus and the crashes, each with where it happened. The corpus of each target is kept in
# build-fuzz/fuzz-corpus between runs, so coverage builds up; crashes (and the input that caused
# them) go to build-fuzz/fuzz-crashes, the full logs to build-fuzz/fuzz-logs.
# usage: tests/fuzz/run.sh [SECONDS]    FUZZ_TARGETS="fuzz_idx ..." runs only those; JOBS=n for
#                                       the build (default nproc). Exit status 1 if mpigan's own
#                                       code crashed.
set -eu
# Logs hold whatever bytes a fuzzer printed: parse them bytewise (in C.UTF-8, sed's '.' stops at
# an invalid byte and "#10542<bytes>" was read as a count; CI failed on it).
export LC_ALL=C
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

# Where a crash happened, from its report in a log: "mpigan FUNCTION" when the first frame
# that is not libc, the sanitizer or libFuzzer is mpigan's own code (or a check of fuzz.h failed),
# "libhdf5 FUNCTION" (or libmatio, zlib, libyaml) when it is inside that library.
where() {
  awk -v src="$src" '
    /ERROR: |libFuzzer: (deadly signal|out-of-memory|timeout)|^fuzz: / { on = 1 }
    on && /^fuzz: / { print "mpigan fuzz-check"; exit }
    on && /^ *#[0-9]+ 0x/ {
      fn = ($3 == "in") ? $4 : "?"
      if (index($0, src "/src/") || index($0, src "/tests/fuzz/")) {
        print (lib != "" ? lib " ?" : "mpigan " fn); exit
      }
      n = split("libhdf5 libmatio libz.so libyaml", libs, " ")
      for (i = 1; i <= n; i++)
        if (index($0, libs[i])) {
          sub(/\.so$/, "", libs[i])
          if (lib != "" && lib != libs[i]) { print lib " ?"; exit }
          lib = libs[i]
          if (fn != "?") { print lib " " fn; exit }  # else: the first named frame of lib
        }
    }
    END { if (!on) print "none"; else if (lib != "") print lib " ?" }' "$1" | head -n 1
}

ours=0
for t in $targets; do
  corpus=$dir/fuzz-corpus/$t crashes=$dir/fuzz-crashes logs=$dir/fuzz-logs/$t
  mkdir -p "$corpus" "$crashes" "$logs"
  rm -f "$logs"/*.log
  dict=$(dict_of "$t")
  # -jobs=1 -workers=1: one fuzzing process at a time, its output in fuzz-0.log. A crash ends a
  # job; while time is left, another job goes on from the corpus. Memory is limited by RSS (2 GB),
  # not by the size of one malloc: libmatio and libhdf5 allocate sizes from damaged headers that
  # they never touch (see README.md).
  deadline=$(($(date +%s) + secs)) runs=0 round=0 cov="" ft="" corp="" n_lib=0 n_ours=0 found=""
  while left=$((deadline - $(date +%s))); [ "$left" -ge 2 ]; do
    round=$((round + 1))
    (cd "$logs" && "$dir/tests/fuzz/$t" -max_total_time="$left" -jobs=1 -workers=1 -timeout=30 \
       -rss_limit_mb=2048 -malloc_limit_mb=1048576 -print_final_stats=1 ${dict:+-dict="$dict"} \
       -artifact_prefix="$crashes/$t-" "$corpus" "$seeds/$t" >/dev/null 2>&1) || true
    log=$logs/round-$round.log
    mv "$logs/fuzz-0.log" "$log"
    # The last status line: "#123 DONE cov: 456 ft: 789 corp: 12/3456b ..." (or the last pulse).
    line=$(grep -a -E '^#[0-9]+' "$log" | tail -n 1)
    n=$(printf '%s\n' "$line" | sed -n 's/^#\([0-9][0-9]*\).*/\1/p')
    case $n in '' | *[!0-9]*) n=0 ;; esac
    runs=$((runs + n))
    c=$(echo "$line" | sed -n 's/.* cov: \([0-9]*\).*/\1/p') && [ -z "$c" ] || cov=$c
    c=$(echo "$line" | sed -n 's/.* ft: \([0-9]*\).*/\1/p') && [ -z "$c" ] || ft=$c
    c=$(echo "$line" | sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p') && [ -z "$c" ] || corp=$c
    w=$(where "$log")
    case $w in
      none) break ;;
      mpigan*) n_ours=$((n_ours + 1)) ;;
      *) n_lib=$((n_lib + 1)) ;;
    esac
    artifact=$(grep -a -o "Test unit written to [^ ]*" "$log" | tail -n 1 | sed 's/Test unit written to //')
    found="$found  $w: ${artifact:-no input saved} ($log)
"
  done
  [ "$n_ours" -eq 0 ] || ours=1
  printf '%-16s %10s runs  cov %5s  ft %6s  corpus %5s  crashes %s in mpigan, %s in libraries\n' \
    "$t" "$runs" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$n_ours" "$n_lib"
  printf '%s' "$found"
done
echo "run.sh: ${secs} s per target; logs in $dir/fuzz-logs, crashing inputs in $dir/fuzz-crashes"
# Crashes inside libhdf5 or libmatio on hostile files are theirs to fix (README.md lists the
# known ones); a crash in mpigan's code, or a failed check of fuzz.h, fails the run.
exit $ours
