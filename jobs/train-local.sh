#!/bin/sh
# Trains on this machine with mpirun: jobs/train-local.sh [RANKS] [CONFIG] [mpigan train options]
#   jobs/train-local.sh 2 configs/fashion-mnist.yaml --epochs 1
# One OpenBLAS thread per rank unless OPENBLAS_NUM_THREADS is set; keep ranks x threads <= cores.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
ranks=${1:-2}
config=${2:-$here/configs/fashion-mnist.yaml}
[ $# -ge 1 ] && shift
[ $# -ge 1 ] && shift
mpigan=${MPIGAN:-$here/build/mpigan}
[ -x "$mpigan" ] || { echo "train-local.sh: $mpigan not built (cmake -B build && cmake --build build)" >&2; exit 2; }

flags="-q"                                                  # after a failure mpigan's own line says why
[ "$(id -u)" -eq 0 ] && flags="$flags --allow-run-as-root"  # Open MPI refuses root otherwise
# More ranks than CPUs. Not nproc: it honours OMP_NUM_THREADS (GNU coreutils).
[ "$ranks" -gt "$(getconf _NPROCESSORS_ONLN)" ] && flags="$flags --oversubscribe"
# mpirun gives the ranks a terminal even when its own output is a file: say which it is.
progress=lines
[ -t 1 ] && progress=redraw
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
# shellcheck disable=SC2086
exec mpirun $flags -np "$ranks" "$mpigan" train "$config" --progress "$progress" "$@"
