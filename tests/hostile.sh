#!/bin/sh
# Hostile inputs on the command line (issue 14): a FIFO or a device where a file is expected, a
# gzip bomb, configurations whose sizes overflow, a newline in a path, nesting that libyaml takes
# quadratic time over. Each must end within seconds with exit status 2, exactly one line on
# stderr (nothing on stdout), and nothing written.
# usage: hostile.sh MPIGAN MPIEXEC SOURCE_DIR MAKE_DATA
set -u
mpigan=$1 mpiexec=$2 src=$3 make_data=$4
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mpigan-hostile-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
failures=0 passed=0

# Every command runs under timeout: a blocked open(2) fails the test after 20 s instead of hanging
# it (timeout's status is 124). mpigan alone for info and prepare, under mpiexec for train.
run() { # run ARGS...
  start=$(date +%s.%N)
  timeout 20 "$mpigan" "$@" >"$tmp/out" 2>"$tmp/err"
  status=$?
  took=$(echo "$(date +%s.%N) - $start" | bc)
}
run_mpi() { # run_mpi ARGS...: one rank
  start=$(date +%s.%N)
  timeout 20 "$mpiexec" -q --oversubscribe -np 1 "$mpigan" "$@" >"$tmp/out" 2>"$tmp/err"
  status=$?
  took=$(echo "$(date +%s.%N) - $start" | bc)
}
ok() { passed=$((passed + 1)); }
fail() { failures=$((failures + 1)); echo "FAIL: $*"; echo "--- stdout"; cat "$tmp/out"; echo "--- stderr"; cat "$tmp/err"; }
expect_error() { # expect_error WHAT LINE: status 2, stderr exactly that line, stdout empty
  if [ "$status" -eq 2 ] && [ "$(cat "$tmp/err")" = "$2" ] && [ ! -s "$tmp/out" ]; then
    ok
    printf '  %-34s %5.2f s  %s\n' "$1" "$took" "$2"
  else
    fail "$1: exit status $status, expected 2 and the single line: $2"
  fi
}
nothing_at() { # nothing_at WHAT PATH
  if [ -e "$2" ]; then fail "$1: $2 was written"; else ok; fi
}

fifo=$tmp/fifo
mkfifo "$fifo"
run_dir=$tmp/run

# A configuration with its data file replaced: `config DATA_KEY_LINE` on stdin to a file.
config() { # config NAME DATA_LINES...: a small valid model, run directory $run_dir
  name=$1; shift
  {
    echo "data:"
    for line in "$@"; do echo "  $line"; done
    cat <<YAML
generator:
  noise_dim: 16
  layers:
    - {type: relu, units: 64}
    - {type: sigmoid, units: 784}
discriminator:
  layers:
    - {type: maxout, units: 32, pieces: 3}
    - {type: sigmoid, units: 1}
train: {batch_size: 40, steps: 5}
output: {dir: $run_dir}
YAML
  } >"$tmp/$name"
}

echo "FIFOs and devices where a file is expected (each blocked in open(2) before):"
run info "$fifo"
expect_error "info FIFO" "mpigan: $fifo: not a regular file"
run info /dev/zero
expect_error "info /dev/zero" "mpigan: /dev/zero: not a regular file"
run prepare idx "$fifo" -o "$tmp/x.h5"
expect_error "prepare idx FIFO" "mpigan: $fifo: not a regular file"
nothing_at "prepare idx FIFO" "$tmp/x.h5"
run prepare cifar10 "$fifo" -o "$tmp/x.h5"
expect_error "prepare cifar10 FIFO" "mpigan: $fifo: not a regular file"
run prepare tfd "$fifo" -o "$tmp/x.h5"
expect_error "prepare tfd FIFO" "mpigan: $fifo: not a regular file"
nothing_at "prepare FIFO" "$tmp/x.h5"

config fifo.yaml "train_images: $fifo"
run_mpi train "$tmp/fifo.yaml"
expect_error "train: data.train_images FIFO" "mpigan: $tmp/fifo.yaml:2: data.train_images: \"$fifo\" is not a regular file"
nothing_at "train: data.train_images FIFO" "$run_dir"
config h5fifo.yaml "format: hdf5" "path: $fifo"
run_mpi train "$tmp/h5fifo.yaml"
expect_error "train: hdf5 data.path FIFO" "mpigan: $tmp/h5fifo.yaml:3: data.path: \"$fifo\" is not a regular file"
"$make_data" "$tmp/data" 100 || fail "make_data"
"$mpigan" prepare idx "$tmp/data/idx/train-images-idx3-ubyte.gz" -o "$tmp/data.h5" >/dev/null || fail "prepare"
config h5test.yaml "format: hdf5" "path: $tmp/data.h5" "test_path: $fifo"
run_mpi train "$tmp/h5test.yaml"
expect_error "train: hdf5 data.test_path FIFO" "mpigan: $tmp/h5test.yaml:4: data.test_path: \"$fifo\" is not a regular file"
run_mpi train --resume "$fifo"
expect_error "train --resume FIFO" "mpigan: $fifo: not a regular file"
nothing_at "FIFOs" "$run_dir"

echo "A gzip bomb: 1.6 MB whose IDX header promises (and whose stream holds) 100 x 4096 x 4096:"
"$make_data" --bomb "$tmp/bomb.gz" 100 4096 4096 || fail "make_data --bomb"
config bomb.yaml "train_images: $tmp/bomb.gz" "train_count: 90" "valid_count: 10"
start=$(date +%s.%N)
timeout 60 "$mpiexec" -q --oversubscribe -np 1 /usr/bin/time -f %M -o "$tmp/rss" "$mpigan" train \
  "$tmp/bomb.yaml" >"$tmp/out" 2>"$tmp/err"
status=$?
took=$(echo "$(date +%s.%N) - $start" | bc)
expect_error "train: gzip bomb" "mpigan: $tmp/bomb.gz: generator.layers.1.units is 784 but the data has 16777216 values per example (1x4096x4096)"
rss=$(tail -n 1 "$tmp/rss" 2>/dev/null) # after "Command exited with non-zero status 2"
case $rss in '' | *[!0-9]*) rss=0 ;; esac
echo "  peak RSS of the refusing rank: $rss kB"
if [ "$rss" -gt 0 ] && [ "$rss" -lt 300000 ]; then ok; else fail "gzip bomb: peak RSS $rss kB (< 300 MB expected; 2.9 GB before)"; fi
nothing_at "gzip bomb" "$run_dir"

echo "Configurations:"
config good.yaml "train_images: $tmp/data/idx/train-images-idx3-ubyte.gz" "train_count: 80" "valid_count: 20"
run_mpi train "$tmp/good.yaml" --set train.k=2147483647
expect_error "train.k 2^31 - 1" "mpigan: --set train.k: must be in [1, 65534], got 2147483647"
run_mpi train "$tmp/good.yaml" --set train.k=65534 --set train.batch_size=1000
expect_error "train.k 65534, batch 1000" "mpigan: --set train.k: 65534 makes (train.k + 1) x train.batch_size x generator.layers.0.units = 65535 x 1000 x 64 = 4194240000 activations in G's layer 0, more than 2147483647"
run_mpi train "$tmp/good.yaml" --set samples.columns=2147483647
expect_error "samples.columns 2^31 - 1" "mpigan: --set samples.columns: must be in [0, 16777216], got 2147483647"
run_mpi train "$tmp/good.yaml" --set samples.columns=1000000
expect_error "samples.columns 10^6" "mpigan: --set samples.columns: 1000000 makes a sample grid of 1000000 columns, at least 2000001 pixels wide, more than 1000000"
run_mpi train "$tmp/good.yaml" --set generator.optimizer.lr=1e39
expect_error "lr 1e39" "mpigan: --set generator.optimizer.lr: 1e39 is beyond single precision (largest 3.40282e+38)"
run_mpi train "$tmp/good.yaml" --set discriminator.optimizer.lr=5e-324
expect_error "lr 5e-324" "mpigan: --set discriminator.optimizer.lr: must be > 0, got 5e-324 (0 in single precision)"
run_mpi train "$tmp/good.yaml" --set train.stall_seconds=1e-9
expect_error "stall_seconds 1e-9" "mpigan: --set train.stall_seconds: must be 0 (off) or in [0.01, 86400], got 1e-9"
long=$(printf '%0959d' 0 | tr 0 d)
run_mpi train "$tmp/good.yaml" --set "output.dir=${long}x"
expect_error "output.dir 960 bytes" "mpigan: --set output.dir: 960 characters, more than the 959 a run directory may have (its files' paths must fit in 1023)"
nl="$tmp/a
b.yaml"
run_mpi train "$nl"
expect_error "newline in the config's name" "mpigan: $tmp/a?b.yaml: cannot open: No such file or directory"
cp "$tmp/good.yaml" "$nl"
run_mpi train "$nl" --set train.k=0
expect_error "newline, and a bad value" "mpigan: --set train.k: must be in [1, 65534], got 0"
printf 'seed: 1\ntrain: {k: 0}\n' >"$nl"
run_mpi train "$nl"
expect_error "newline, and a bad value in it" "mpigan: $tmp/a?b.yaml:2: train.k: must be in [1, 65534], got 0"
awk 'BEGIN { for (i = 0; i < 200000; i++) printf "["; for (i = 0; i < 200000; i++) printf "]"; print "" }' >"$tmp/deep.yaml"
run_mpi train "$tmp/deep.yaml"
expect_error "200,000 levels of nesting" "mpigan: $tmp/deep.yaml:1: nesting deeper than 64 levels"
if [ "$(echo "$took < 5" | bc)" -eq 1 ]; then ok; else fail "nesting: took $took s"; fi
nothing_at "configurations" "$run_dir"

echo "hostile: $passed passed, $failures failed"
[ "$failures" -eq 0 ]
