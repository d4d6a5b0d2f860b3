#!/bin/sh
# The unit tests and the 2-rank MPI tests under AddressSanitizer (leaks included) and
# UndefinedBehaviorSanitizer, in a Debug build of their own (MPIGAN_SANITIZE=ON), with
# floating-point traps in the training step (MPIGAN_TRAP_FPE=1). Any sanitizer report fails the
# test it happens in. The ctest environment carries the sanitizer options and
# tests/sanitize.supp (Open MPI's and HDF5's own leaks).
# usage: tests/sanitize.sh [BUILD_DIR]   (default build-sanitize; JOBS=n for the build, default nproc)
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$src/build-sanitize}
start=$(date +%s)
cmake -S "$src" -B "$dir" -DCMAKE_BUILD_TYPE=Debug -DMPIGAN_SANITIZE=ON >/dev/null
cmake --build "$dir" -j"${JOBS:-$(nproc)}" >/dev/null
built=$(date +%s)
export MPIGAN_TRAP_FPE=1
# The 1- and 4-rank MPI tests and cli add little a sanitizer would see that these do not (the same
# code on other rank counts), at several times the time.
status=0
ctest --test-dir "$dir" -L unit --output-on-failure || status=1
ctest --test-dir "$dir" -R '_np2$' --output-on-failure || status=1
end=$(date +%s)
echo "sanitize.sh: build $((built - start)) s, tests $((end - built)) s: $([ $status -eq 0 ] && echo passed || echo FAILED)"
exit $status
