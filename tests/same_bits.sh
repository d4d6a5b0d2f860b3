#!/bin/sh
# The portable build (baseline x86-64, its hot loops cloned for AVX-512 and AVX2 and picked at
# load time: src/simd.h), a -march=native build and a build without the clones (what a CPU
# without AVX2 runs) train to the same bits: 20 steps of the paper's MNIST model on
# Fashion-MNIST, 2 ranks (so the shared-memory sums run too), then h5diff of G's and D's
# parameters and optimizer state. This is what keeps ranks on CPUs of different generations
# exact replicas.
# usage: tests/same_bits.sh [PORTABLE_BUILD_DIR [NATIVE_BUILD_DIR [BASELINE_BUILD_DIR]]]
#        (defaults build, build-native, build-baseline)
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
portable=${1:-$src/build}
native=${2:-$src/build-native}
baseline=${3:-$src/build-baseline}
cmake -S "$src" -B "$native" -DCMAKE_BUILD_TYPE=Release -DMPIGAN_NATIVE=ON >/dev/null
cmake --build "$native" -j"${JOBS:-$(nproc)}" --target mpigan_cli >/dev/null
cmake -S "$src" -B "$baseline" -DCMAKE_BUILD_TYPE=Release -DMPIGAN_SIMD_CLONES=OFF >/dev/null
cmake --build "$baseline" -j"${JOBS:-$(nproc)}" --target mpigan_cli >/dev/null
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
export OPENBLAS_NUM_THREADS=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for b in portable native baseline; do
  eval dir=\$$b
  mpirun -q --oversubscribe -np 2 "$dir/mpigan" train "$src/configs/fashion-mnist.yaml" --steps 20 \
    --set checkpoint.every=0 --set samples.every=0 --out "$tmp/$b" --quiet
done
status=0
for b in native baseline; do
  for g in /generator /discriminator; do
    h5diff "$tmp/portable/latest.h5" "$tmp/$b/latest.h5" "$g" "$g" >"$tmp/diff" 2>&1 || {
      echo "same_bits.sh: $g differs between the portable and the $b build:"
      head -20 "$tmp/diff"
      status=1
    }
  done
done
[ $status -eq 0 ] && echo "same_bits.sh: the portable, -march=native and no-clone builds trained to the same bits"
exit $status
