#!/bin/sh
# Installs what mpigan needs to build, test and train on Debian 12 (bookworm).
# Run as root, or as a user with sudo.
set -eu
packages="
  build-essential cmake pkg-config
  openmpi-bin libopenmpi-dev
  libopenblas-dev liblapacke-dev
  libhdf5-openmpi-dev hdf5-tools
  libpng-dev
  gnuplot-nox
  libsimgrid-dev
  libmatio-dev
  libcunit1-dev
  librandom123-dev
  libyaml-dev
  libjansson-dev
  zlib1g-dev
  python3
  dataset-fashion-mnist
"
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup-debian.sh: run as root (sudo is not installed)" >&2; exit 1; }
  exec sudo "$0" "$@"
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $packages >/dev/null
echo "setup-debian.sh: installed$(echo $packages | tr -s ' ' | sed 's/^/ /')"
