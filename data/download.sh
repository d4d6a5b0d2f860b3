#!/bin/sh
# Downloads MNIST and CIFAR-10 into this folder and checks the MD5 sums their authors publish.
# usage: data/download.sh [mnist] [cifar10]      (both when no argument is given)
# Needs curl or wget and internet access; the project's tests do not use it.
set -eu
here=$(cd "$(dirname "$0")" && pwd)

fetch() { # fetch URL FILE
  if command -v curl >/dev/null; then curl -fL --retry 3 -o "$2.part" "$1"
  elif command -v wget >/dev/null; then wget -O "$2.part" "$1"
  else echo "download.sh: needs curl or wget" >&2; exit 1; fi
  mv "$2.part" "$2"
}

get() { # get URL FILE MD5: fetch unless a file with that sum is there already
  if [ -f "$2" ] && [ "$(md5sum <"$2" | cut -d' ' -f1)" = "$3" ]; then
    echo "download.sh: $2 is there already"
    return
  fi
  fetch "$1" "$2"
  sum=$(md5sum <"$2" | cut -d' ' -f1)
  if [ "$sum" != "$3" ]; then
    rm -f "$2"
    echo "download.sh: $2: MD5 $sum, expected $3 (download again, or from another mirror)" >&2
    exit 1
  fi
}

mnist() {
  mkdir -p "$here/mnist"
  # Yann LeCun's page has refused downloads at times; this mirror serves the same files.
  base=${MNIST_MIRROR:-https://ossci-datasets.s3.amazonaws.com/mnist}
  while read -r file md5; do
    get "$base/$file" "$here/mnist/$file" "$md5"
  done <<LIST
train-images-idx3-ubyte.gz f68b3c2dcbeaaa9fbdd348bbdeb94873
train-labels-idx1-ubyte.gz d53e105ee54ea40749a09fcbcd1e9432
t10k-images-idx3-ubyte.gz 9fb629c4189551a2d022fa330f9573f3
t10k-labels-idx1-ubyte.gz ec29112dd5afa0611ce80d1b7f02629c
LIST
  echo "download.sh: MNIST in $here/mnist"
}

cifar10() {
  archive="$here/cifar-10-binary.tar.gz"
  get https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz "$archive" \
    c32a1d4ab5d03f1284b67883e8d87530
  tar -xzf "$archive" -C "$here" cifar-10-batches-bin
  echo "download.sh: CIFAR-10 in $here/cifar-10-batches-bin"
}

[ $# -gt 0 ] || set -- mnist cifar10
for set in "$@"; do
  case $set in
    mnist) mnist ;;
    cifar10) cifar10 ;;
    *) echo "download.sh: unknown data set '$set' (mnist or cifar10; TFD is not public)" >&2; exit 2 ;;
  esac
done
