#!/usr/bin/env bash
# Data-parallel training on this one machine:  launch/local.sh [-n RANKS] <distrain arguments...>
#   launch/local.sh fashion-mnist --epochs 5
#   launch/local.sh -n 4 fashion-mnist --batch-size 256
# Chooses -n (one rank per core unless given), adds --allow-run-as-root and --oversubscribe only when
# they are needed, and uses the shared-memory transport for a fast start.
set -euo pipefail

ranks=""
if [ "${1:-}" = "-n" ]; then ranks="$2"; shift 2; fi
cores="$(nproc)"
if [ -z "$ranks" ]; then ranks="$cores"; fi
if ! [[ "$ranks" =~ ^[1-9][0-9]*$ ]]; then
    echo "launch/local.sh: error: -n needs a positive number of ranks, got '$ranks'" >&2; exit 64
fi
if [ $# -eq 0 ]; then
    echo "usage: launch/local.sh [-n RANKS] <dataset> [distrain flags...]   e.g. launch/local.sh fashion-mnist" >&2; exit 64
fi
command -v mpirun >/dev/null || { echo "launch/local.sh: error: mpirun not found; install openmpi-bin" >&2; exit 69; }

here="$(cd "$(dirname "$0")/.." && pwd)"
distrain="${DISTRAIN:-}"
if [ -z "$distrain" ]; then
    if [ -x "$here/.build/release/distrain" ]; then distrain="$here/.build/release/distrain"
    elif command -v distrain >/dev/null; then distrain="$(command -v distrain)"
    else echo "launch/local.sh: error: no distrain binary; run 'swift build -c release' first or set DISTRAIN" >&2; exit 69; fi
fi

flags=(-n "$ranks" --mca pml ob1 --mca btl self,vader)
if [ "$(id -u)" -eq 0 ]; then flags+=(--allow-run-as-root); fi
if [ "$ranks" -gt "$cores" ]; then flags+=(--oversubscribe); fi
exec mpirun "${flags[@]}" "$distrain" "$@"
