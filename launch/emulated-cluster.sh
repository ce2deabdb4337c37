#!/usr/bin/env bash
# An emulated cluster on this one machine: HOSTS network namespaces joined by veth pairs on a bridge,
# each one a host to Open MPI, reached through an `ip netns exec` launch agent instead of ssh, with
# TCP as the only transport. Used by the tests; also a way to try hostfile runs without a cluster.
# All emulated hosts share this machine's cores, so idle ranks yield (mpi_yield_when_idle).
#
#   sudo launch/emulated-cluster.sh [--hosts 3] [--slots 2] [--ranks N] [--rate 1gbit] \
#        [--supervise RESTARTS] [--end-host I --when-exists PATH] -- <distrain arguments...>
#   (--ranks: fewer than hosts × slots leaves the last host short — hosts with different rank counts;
#    --rate: each host's link to the bridge shaped to that rate (tc tbf, both directions);
#    --supervise: the job runs under `distrain supervise` with that restart limit, probing the hosts;
#    --end-host: host I dies (its processes killed, its namespace removed) once PATH exists, e.g. a
#    checkpoint folder's `latest`: the supervisor then finishes the job on the hosts that are left;
#    --traffic: afterwards, the bytes each host sent and received over its link)
#   sudo launch/emulated-cluster.sh -- doctor --dataset fashion-mnist
#   sudo launch/emulated-cluster.sh -- fashion-mnist --epochs 2 --batch-size 120
#
# Needs root and iproute2. The addresses exist only inside the namespaces and on the bridge: no
# default route, no NAT, nothing reachable beyond them. Everything is removed afterwards, also on
# failure or Ctrl-C. Exit 77 means "cannot emulate here" (not root, no ip, namespaces refused).
set -euo pipefail

hosts=3; slots=2; ranks=""; rate=""; supervise=""; end_host=""; when_exists=""; traffic=""
while [ $# -gt 0 ]; do
    case "$1" in
        --hosts) hosts="$2"; shift 2 ;;
        --slots) slots="$2"; shift 2 ;;
        --ranks) ranks="$2"; shift 2 ;;
        --rate) rate="$2"; shift 2 ;;
        --supervise) supervise="$2"; shift 2 ;;
        --end-host) end_host="$2"; shift 2 ;;
        --when-exists) when_exists="$2"; shift 2 ;;
        --traffic) traffic=1; shift ;;
        --) shift; break ;;
        *) echo "emulated-cluster.sh: error: unknown option '$1'; usage: [--hosts N] [--slots N] [--ranks N] [--rate R] [--supervise N] [--end-host I --when-exists PATH] -- <distrain arguments>" >&2; exit 64 ;;
    esac
done
[ -z "$rate" ] || [[ "$rate" =~ ^[0-9]+(kbit|mbit|gbit)$ ]] || { echo "emulated-cluster.sh: error: --rate takes a tc rate like 1gbit or 100mbit, got '$rate'" >&2; exit 64; }
[ -z "$supervise" ] || [[ "$supervise" =~ ^[0-9]+$ ]] || { echo "emulated-cluster.sh: error: --supervise takes a restart limit (0 or more), got '$supervise'" >&2; exit 64; }
[ -z "$end_host" ] || { [[ "$end_host" =~ ^[1-9]$ ]] && [ "$end_host" -le "$hosts" ] && [ -n "$when_exists" ]; } || { echo "emulated-cluster.sh: error: --end-host takes a host number 1..$hosts and needs --when-exists PATH" >&2; exit 64; }
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

ender=""
cleanup() {
    [ -z "$ender" ] || kill "$ender" 2>/dev/null || true
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
    if [ -n "$rate" ]; then
        # Token-bucket shaping on both ends of the host's link (netem, for delay, is often not in the kernel).
        ip netns exec "$ns" tc qdisc add dev "${tag}b$i" root tbf rate "$rate" burst 256kb latency 50ms
        tc qdisc add dev "${tag}a$i" root tbf rate "$rate" burst 256kb latency 50ms
    fi
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

# A host is up while its namespace exists.
cat > "$work/probe" <<PROBE
#!/bin/sh
exec ip netns exec "${tag}h\${1##*.}" true
PROBE
chmod +x "$work/probe"

if [ -n "$end_host" ]; then
    ( while [ ! -e "$when_exists" ]; do sleep 0.2; done
      echo "emulated-cluster.sh: ending host $subnet.$end_host (its processes killed, its namespace removed)" >&2
      for pid in $(ip netns pids "${tag}h$end_host"); do kill -9 "$pid" 2>/dev/null || true; done
      ip netns del "${tag}h$end_host" ) &
    ender=$!
fi

job=(mpirun --allow-run-as-root --hostfile "$work/hostfile" -n "$ranks"
    --mca plm_rsh_agent "$work/agent"
    --mca btl tcp,self --mca btl_tcp_if_include "$subnet.0/24" --mca oob_tcp_if_include "$subnet.0/24"
    --bind-to none --mca mpi_yield_when_idle 1
    # A host that dies sends no FIN: mpirun learns of it from TCP keepalives (Open MPI's default: 300 s idle).
    --mca oob_tcp_keepalive_time 3 --mca oob_tcp_keepalive_intvl 1 --mca oob_tcp_keepalive_probes 3
    "$distrain" "$@")
status=0
if [ -n "$supervise" ]; then
    "$distrain" supervise --max-restarts "$supervise" --hostfile "$work/hostfile" --probe "$work/probe {host}" -- "${job[@]}" || status=$?
else
    "${job[@]}" || status=$?
fi
if [ -n "$traffic" ]; then
    # The bridge side of each veth: what it receives is what the host sent.
    for i in $(seq 1 "$hosts"); do
        stats="/sys/class/net/${tag}a$i/statistics"
        [ -r "$stats/rx_bytes" ] && echo "emulated-cluster.sh: host $subnet.$i sent $(cat "$stats/rx_bytes") bytes, received $(cat "$stats/tx_bytes") bytes" >&2
    done
fi
exit $status
