#!/usr/bin/env bash
# An emulated cluster on this one machine: HOSTS network namespaces joined by veth pairs on a bridge,
# each one a host to Open MPI, reached through an `ip netns exec` launch agent instead of ssh, with
# TCP as the only transport. Used by the tests; also a way to try hostfile runs without a cluster.
# All emulated hosts share this machine's cores, so idle ranks yield (mpi_yield_when_idle).
#
#   sudo launch/emulated-cluster.sh [--hosts 3] [--slots 2] [--ranks N] -- <distrain arguments...>
#   (--ranks: fewer than hosts × slots leaves the last host short — hosts with different rank counts)
#   sudo launch/emulated-cluster.sh -- doctor --dataset fashion-mnist
#   sudo launch/emulated-cluster.sh -- fashion-mnist --epochs 2 --batch-size 120
#
# Needs root and iproute2. The addresses exist only inside the namespaces and on the bridge: no
# default route, no NAT, nothing reachable beyond them. Everything is removed afterwards, also on
# failure or Ctrl-C. Exit 77 means "cannot emulate here" (not root, no ip, namespaces refused).
set -euo pipefail

hosts=3; slots=2; ranks=""
while [ $# -gt 0 ]; do
    case "$1" in
        --hosts) hosts="$2"; shift 2 ;;
        --slots) slots="$2"; shift 2 ;;
        --ranks) ranks="$2"; shift 2 ;;
        --) shift; break ;;
        *) echo "emulated-cluster.sh: error: unknown option '$1'; usage: [--hosts N] [--slots N] [--ranks N] -- <distrain arguments>" >&2; exit 64 ;;
    esac
done
[[ "$hosts" =~ ^[1-9]$ ]] || { echo "emulated-cluster.sh: error: --hosts must be 1..9, got '$hosts'" >&2; exit 64; }
[[ "$slots" =~ ^[1-9][0-9]*$ ]] || { echo "emulated-cluster.sh: error: --slots must be a positive number, got '$slots'" >&2; exit 64; }
ranks="${ranks:-$((hosts * slots))}"
[[ "$ranks" =~ ^[1-9][0-9]*$ ]] && [ "$ranks" -le $((hosts * slots)) ] || { echo "emulated-cluster.sh: error: --ranks must be 1..$((hosts * slots)) (hosts × slots), got '$ranks'" >&2; exit 64; }
[ $# -gt 0 ] || { echo "emulated-cluster.sh: error: give the distrain arguments after --" >&2; exit 64; }
[ "$(id -u)" -eq 0 ] || { echo "emulated-cluster.sh: cannot emulate hosts: network namespaces need root" >&2; exit 77; }
command -v ip >/dev/null || { echo "emulated-cluster.sh: cannot emulate hosts: 'ip' (iproute2) is not installed" >&2; exit 77; }
command -v unshare >/dev/null || { echo "emulated-cluster.sh: cannot emulate hosts: 'unshare' (util-linux) is not installed" >&2; exit 77; }
command -v mpirun >/dev/null || { echo "emulated-cluster.sh: error: mpirun not found; install openmpi-bin" >&2; exit 69; }

here="$(cd "$(dirname "$0")/.." && pwd)"
distrain="${DISTRAIN:-$here/.build/release/distrain}"
[ -x "$distrain" ] || { echo "emulated-cluster.sh: error: no distrain binary at $distrain; build it or set DISTRAIN" >&2; exit 69; }

# Names unlikely to clash (interface names are limited to 15 characters).
tag="dt$(( $$ % 100000 ))"
octet=$(( ($$ % 200) + 20 ))
subnet="10.213.$octet"
bridge="${tag}br"
work="$(mktemp -d /tmp/distrain-emulated.XXXXXX)"

cleanup() {
    for i in $(seq 1 "$hosts"); do
        ip netns del "${tag}h$i" 2>/dev/null || true
        ip link del "${tag}a$i" 2>/dev/null || true
    done
    ip link del "$bridge" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! ip link add "$bridge" type bridge 2>"$work/err"; then
    echo "emulated-cluster.sh: cannot emulate hosts: $(head -1 "$work/err")" >&2; exit 77
fi
ip addr add "$subnet.254/24" dev "$bridge"
ip link set "$bridge" up
: > "$work/hostfile"
for i in $(seq 1 "$hosts"); do
    ns="${tag}h$i"
    if ! ip netns add "$ns" 2>"$work/err"; then
        echo "emulated-cluster.sh: cannot emulate hosts: $(head -1 "$work/err")" >&2; exit 77
    fi
    ip link add "${tag}a$i" type veth peer name "${tag}b$i"
    ip link set "${tag}b$i" netns "$ns"
    ip link set "${tag}a$i" master "$bridge" up
    ip netns exec "$ns" ip addr add "$subnet.$i/24" dev "${tag}b$i"
    ip netns exec "$ns" ip link set "${tag}b$i" up
    ip netns exec "$ns" ip link set lo up
    echo "$subnet.$i slots=$slots" >> "$work/hostfile"
done

# The launch agent: Open MPI calls it as "agent [options] HOST word word ...", where the words are a
# shell command; run it like ssh would, inside that host's namespace, with a hostname of its own
# (namespaces share /tmp: distinct hostnames keep Open MPI's session directories apart).
cat > "$work/agent" <<AGENT
#!/bin/sh
while [ "\${1#-}" != "\$1" ]; do shift; done
host="\$1"; shift
n="\${host##*.}"
exec ip netns exec "${tag}h\$n" unshare --uts sh -c "hostname h\$n; \$*"
AGENT
chmod +x "$work/agent"

status=0
mpirun --allow-run-as-root --hostfile "$work/hostfile" -n "$ranks" \
    --mca plm_rsh_agent "$work/agent" \
    --mca btl tcp,self --mca btl_tcp_if_include "$subnet.0/24" --mca oob_tcp_if_include "$subnet.0/24" \
    --bind-to none --mca mpi_yield_when_idle 1 \
    "$distrain" "$@" || status=$?
exit $status
