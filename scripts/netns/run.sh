#!/usr/bin/env bash
# Build the namespace internet, run one command (on the root namespace, with the layout in
# its environment), tear everything down afterwards, also on failure or interrupt.
#
#   scripts/netns/run.sh [--pubs N] [--homes N] [--rtt MS] [--loss PCT] [--symmetric LIST] -- COMMAND...
#
# --symmetric 1,3 makes the routers of home1 and home3 symmetric NATs (a new port per
# destination: MASQUERADE --random-fully); the others stay port-preserving. A test can also
# switch a router itself with netns_nat_mode (see lib.sh).
#
# COMMAND sees STEM_NETNS_PREFIX, STEM_NETNS_PUBS, STEM_NETNS_HOMES, STEM_NETNS_SYMMETRIC (the
# --symmetric list, comma-separated, empty by default), STEM_NETNS_IMPAIRMENT
# (netem | loss-only …) and STEM_NETNS_INET (the internet's /16: public host N is
# $STEM_NETNS_INET.0.(10+N)), and runs a process in a host with `ip netns exec $PREFIX-home1 …`.
# Where the machine cannot build namespaces it prints `netns: skipped: <reason>` and exits 0.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

pubs=2 homes=3 rtt=0 loss=0 symmetric=
while [ $# -gt 0 ]; do
  case "$1" in
    --pubs) pubs=$2; shift 2 ;;
    --homes) homes=$2; shift 2 ;;
    --rtt) rtt=$2; shift 2 ;;
    --loss) loss=$2; shift 2 ;;
    --symmetric) symmetric=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "netns/run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ $# -gt 0 ] || { echo "netns/run.sh: no command after --" >&2; exit 2; }

if ! reason=$(netns_require 2>&1); then echo "netns: skipped: $reason"; exit 0; fi
netns_require
prefix="stm$$"
trap 'netns_down "$prefix"' EXIT
trap 'exit 130' INT TERM
netns_up "$prefix" "$pubs" "$homes" "$rtt" "$loss"
for i in ${symmetric//,/ }; do
  case "$i" in ''|*[!0-9]*) i=0 ;; esac
  [ "$i" -ge 1 ] && [ "$i" -le "$homes" ] || { echo "netns/run.sh: --symmetric: no such home host ($symmetric)" >&2; exit 2; }
  netns_nat_mode "$prefix-home$i" symmetric
done

export STEM_NETNS_PREFIX=$prefix STEM_NETNS_PUBS=$pubs STEM_NETNS_HOMES=$homes STEM_NETNS_SYMMETRIC=$symmetric
export STEM_NETNS_RTT=$rtt STEM_NETNS_LOSS=$loss STEM_NETNS_IMPAIRMENT="$(netns_impairment)"
export STEM_NETNS_LIB="$here/lib.sh" STEM_NETNS_INET=$NETNS_INET
"$@"
