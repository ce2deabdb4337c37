#!/usr/bin/env bash
# Data-parallel training across the hosts of a hostfile, over TCP:
#   launch/cluster.sh HOSTFILE RANKS <distrain arguments...>
#   launch/cluster.sh hostfiles/my-cluster 64 fashion-mnist --batch-size 1024
# Every host needs the same distrain binary and dataset at the same path, and passwordless ssh from
# this machine. Set DISTRAIN_IFACE (e.g. eth0 or 10.0.0.0/24) to pin MPI to one network.
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: launch/cluster.sh HOSTFILE RANKS <dataset> [distrain flags...]" >&2; exit 64
fi
hostfile="$1"; ranks="$2"; shift 2
[ -r "$hostfile" ] || { echo "launch/cluster.sh: error: cannot read hostfile '$hostfile'" >&2; exit 66; }
# Check every line before handing the file to mpirun, so a typo is one clear line, not a hang or a trace.
lineno=0
while IFS= read -r line || [ -n "$line" ]; do
    lineno=$((lineno + 1))
    entry="${line%%#*}"
    [[ "$entry" =~ ^[[:space:]]*$ ]] && continue
    if ! [[ "$entry" =~ ^[[:space:]]*[A-Za-z0-9._:-]+([[:space:]]+(slots|max_slots)=[1-9][0-9]*)*[[:space:]]*$ ]]; then
        echo "launch/cluster.sh: error: $hostfile line $lineno: '$line' is not 'HOST [slots=N] [max_slots=N]'" >&2; exit 65
    fi
done < "$hostfile"
if ! [[ "$ranks" =~ ^[1-9][0-9]*$ ]]; then
    echo "launch/cluster.sh: error: RANKS must be a positive number, got '$ranks'" >&2; exit 64
fi
here="$(cd "$(dirname "$0")/.." && pwd)"
distrain="${DISTRAIN:-$here/.build/release/distrain}"
flags=(--hostfile "$hostfile" -n "$ranks" --mca pml ob1 --mca btl tcp,self,vader --bind-to core)
if [ -n "${DISTRAIN_IFACE:-}" ]; then
    flags+=(--mca btl_tcp_if_include "$DISTRAIN_IFACE" --mca oob_tcp_if_include "$DISTRAIN_IFACE")
fi
if [ "$(id -u)" -eq 0 ]; then flags+=(--allow-run-as-root); fi
exec mpirun "${flags[@]}" "$distrain" "$@"
