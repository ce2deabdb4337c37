#!/usr/bin/env bash
# One-time setup on Debian 12 / Ubuntu: the system packages distrain needs, then a release build.
#   launch/setup.sh && .build/release/distrain fashion-mnist
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup.sh: error: not root and no sudo; run as root or install sudo" >&2; exit 77; }
    SUDO="sudo"
fi
command -v swift >/dev/null || { echo "setup.sh: error: swift not found; install Swift 6 from swift.org and put it on PATH" >&2; exit 69; }
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
# Open MPI, OpenBLAS, zlib, the real Fashion-MNIST, the King James Bible (a text corpus); for the tests: iproute2 (the emulated cluster) and
# Chromium (renders `distrain report`'s page); DISTRAIN_NO_TEST_TOOLS=1 skips those two.
$SUDO apt-get install -y --no-install-recommends \
    libopenmpi-dev openmpi-bin libopenblas-dev zlib1g-dev libpng-dev libjpeg62-turbo-dev libdnnl-dev dataset-fashion-mnist pkg-config \
    bible-kjv
if [ -z "${DISTRAIN_NO_TEST_TOOLS:-}" ]; then
    $SUDO apt-get install -y --no-install-recommends iproute2 chromium
fi
swift build -c release
# The Bible as 66 text files (one per book, verse references stripped): the language-model corpus.
launch/prepare-kjv.sh data/kjv
echo "setup.sh: ready — .build/release/distrain"
