# A small internet on one machine, built from network namespaces (source this file).
#
#   <prefix>-inet   the "internet": one bridge; every public host and NAT router plugs in
#   <prefix>-pubN   public hosts, 10.77.0.(10+N)/16, directly on the internet
#   <prefix>-natN   NAT routers: WAN 10.77.0.(20+N)/16, LAN 192.168.77.1/24, MASQUERADE
#                   (port-preserving: a "cone" NAT; netns_nat_mode makes one symmetric)
#   <prefix>-homeN  home hosts behind natN: 192.168.77.(10+N)/24, default route via .1
#
# Every address lives only inside these namespaces: no route leads out of them. The
# internet's /16 is STEM_NETNS_INET (default 10.77). libp2p counts 10/8 (and even the
# documentation ranges) as private and behaves differently for public addresses
# (announcing, address sorting, DCUtR): STEM_NETNS_INET=7.77 gives the public hosts
# public-looking addresses, as on the real internet. WAN latency/loss: `tc netem` on each
# bridge port when the kernel has sch_netem (delay RTT/2 each way per port, so host-to-host
# RTT is the configured figure); without it, loss falls back to an iptables `statistic`
# DROP on every host's INPUT and latency cannot be emulated (netns_impairment says which).
#
# Requires root, iproute2 and iptables (installed by netns_require when missing).

NETNS_INET=${STEM_NETNS_INET:-10.77}
NETNS_INET_NET=$NETNS_INET.0.0/16
NETNS_HOME_NET=192.168.77.0/24

netns_require () {
  if [ "$(id -u)" != 0 ]; then echo "netns: needs root" >&2; return 1; fi
  command -v ip >/dev/null || { echo "netns: iproute2 (ip) missing" >&2; return 1; }
  if ! command -v iptables >/dev/null; then
    (apt-get install -y iptables || (apt-get update && apt-get install -y iptables)) >/dev/null 2>&1 \
      || { echo "netns: iptables missing and could not be installed" >&2; return 1; }
  fi
  local probe="stemprobe$$"
  ip netns add "$probe" 2>/dev/null || { echo "netns: ip netns add not permitted" >&2; return 1; }
  ip -n "$probe" link set lo up
  if ! ip netns exec "$probe" iptables -t nat -A POSTROUTING -o lo -j MASQUERADE 2>/dev/null; then
    ip netns del "$probe"; echo "netns: iptables NAT does not work here" >&2; return 1
  fi
  if ip netns exec "$probe" tc qdisc add dev lo root netem delay 1ms 2>/dev/null; then
    NETNS_HAVE_NETEM=1
  else
    NETNS_HAVE_NETEM=0
  fi
  ip netns del "$probe"
}

# netns_up PREFIX PUBLIC HOMES RTT_MS LOSS_PCT
netns_up () {
  local p=$1 pubs=$2 homes=$3 rtt=$4 loss=$5 i
  NETNS_PREFIX=$p
  ip netns add "$p-inet"
  ip -n "$p-inet" link set lo up
  ip -n "$p-inet" link add br0 type bridge
  ip -n "$p-inet" link set br0 up
  for i in $(seq 1 "$pubs"); do
    _netns_host "$p-pub$i" "$NETNS_INET.0.$((10 + i))/16" "p$i"
  done
  for i in $(seq 1 "$homes"); do
    _netns_host "$p-nat$i" "$NETNS_INET.0.$((20 + i))/16" "n$i"
    ip netns exec "$p-nat$i" sysctl -qw net.ipv4.ip_forward=1
    ip netns add "$p-home$i"
    ip -n "$p-home$i" link set lo up
    ip -n "$p-nat$i" link add lan type veth peer name eth0 netns "$p-home$i"
    ip -n "$p-nat$i" addr add 192.168.77.1/24 dev lan
    ip -n "$p-nat$i" link set lan up
    ip -n "$p-home$i" addr add "192.168.77.$((10 + i))/24" dev eth0
    ip -n "$p-home$i" link set eth0 up
    ip -n "$p-home$i" route add default via 192.168.77.1
    # a home router: outbound connections are masqueraded, nothing comes in unasked
    ip netns exec "$p-nat$i" iptables -t nat -A POSTROUTING -s "$NETNS_HOME_NET" -o eth0 -j MASQUERADE
    ip netns exec "$p-nat$i" iptables -A FORWARD -i eth0 -o lan -m state --state ESTABLISHED,RELATED -j ACCEPT
    ip netns exec "$p-nat$i" iptables -A FORWARD -i eth0 -o lan -j DROP
    # unasked packets to the router itself are dropped too, not answered (ICMP port
    # unreachable): an answered one leaves a conntrack entry that makes the NAT pick
    # another port for the home's own flow to that peer, which breaks hole punching
    ip netns exec "$p-nat$i" iptables -A INPUT -i eth0 -m state --state NEW,INVALID -j DROP
  done
  netns_impair "$rtt" "$loss"
}

# netns_nat_mode NS cone|symmetric: the NAT behaviour of the router in front of home host NS
# (or of router NS itself). cone: MASQUERADE keeps the home's source port where it can, so
# every destination sees the same public address and port and hole punching works.
# symmetric: MASQUERADE --random-fully, a new random port for every destination, so the port
# a STUN server saw is not the one a peer's punch would have to hit (WebRTC cannot punch).
# Applies to flows started afterwards; conntrack keeps existing flows on their old port.
netns_nat_mode () {
  local nat=${1/-home/-nat} mode=$2 random=()
  case "$mode" in
    cone) ;;
    symmetric) random=(--random-fully) ;;
    *) echo "netns_nat_mode: mode is cone or symmetric, not $mode" >&2; return 2 ;;
  esac
  ip netns exec "$nat" iptables -t nat -F POSTROUTING
  ip netns exec "$nat" iptables -t nat -A POSTROUTING -s "$NETNS_HOME_NET" -o eth0 -j MASQUERADE "${random[@]}"
}

# one namespace with eth0 on the internet bridge (bridge port named PORT)
_netns_host () {
  local ns=$1 addr=$2 port=$3
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip -n "$NETNS_PREFIX-inet" link add "$port" type veth peer name eth0 netns "$ns"
  ip -n "$NETNS_PREFIX-inet" link set "$port" master br0 up
  ip -n "$ns" addr add "$addr" dev eth0
  ip -n "$ns" link set eth0 up
}

# netns_impair RTT_MS LOSS_PCT: (re)apply latency and loss to every internet link
netns_impair () {
  local rtt=$1 loss=$2 port ns
  local ports; ports=$(ip -n "$NETNS_PREFIX-inet" -o link show master br0 | awk -F'[ :@]+' '{print $2}')
  if [ "${NETNS_HAVE_NETEM:-0}" = 1 ]; then
    for port in $ports; do
      ip netns exec "$NETNS_PREFIX-inet" tc qdisc replace dev "$port" root netem \
        delay "$(awk "BEGIN{print $rtt/2}")ms" loss "$loss%"
    done
  else
    # no netem: loss only, dropped on arrival at each end host (pub and home namespaces)
    for ns in $(netns_hosts); do
      ip netns exec "$ns" iptables -D INPUT -i eth0 -m statistic --mode random --probability "${NETNS_LOSS_APPLIED:-0}" -j DROP 2>/dev/null || true
      if [ "$loss" != 0 ]; then
        ip netns exec "$ns" iptables -A INPUT -i eth0 -m statistic --mode random --probability "$(awk "BEGIN{print $loss/100}")" -j DROP
      fi
    done
    NETNS_LOSS_APPLIED=$(awk "BEGIN{print $loss/100}")
  fi
}

netns_impairment () {
  if [ "${NETNS_HAVE_NETEM:-0}" = 1 ]; then echo "netem"; else echo "loss-only (sch_netem missing: no latency emulation)"; fi
}

# end hosts (where nodes run): pubN and homeN namespaces of this prefix
netns_hosts () {
  ip netns list | awk '{print $1}' | grep -E "^$NETNS_PREFIX-(pub|home)[0-9]+$" | sort
}

# netns_partition NS / netns_heal NS: cut a host off the network (link down) and back
netns_partition () { ip -n "$1" link set eth0 down; }
netns_heal () {
  ip -n "$1" link set eth0 up
  case "$1" in *-home*) ip -n "$1" route replace default via 192.168.77.1 ;; esac
}

# netns_blackhole NS / netns_unblackhole NS: the host's uplink silently drops everything
# (its links stay up, so nothing tells either side: only timeouts notice). A home host's
# router drops what it would forward; a public host drops on its own interface.
netns_blackhole () {
  case "$1" in
    *-home*) ip netns exec "${1/-home/-nat}" iptables -I FORWARD 1 -j DROP ;;
    *) ip netns exec "$1" iptables -I INPUT 1 -i eth0 -j DROP
       ip netns exec "$1" iptables -I OUTPUT 1 -o eth0 -j DROP ;;
  esac
}
netns_unblackhole () {
  case "$1" in
    *-home*) ip netns exec "${1/-home/-nat}" iptables -D FORWARD -j DROP ;;
    *) ip netns exec "$1" iptables -D INPUT -i eth0 -j DROP
       ip netns exec "$1" iptables -D OUTPUT -o eth0 -j DROP ;;
  esac
}

# netns_down PREFIX: remove every namespace of this prefix (processes inside get killed)
netns_down () {
  local p=${1:-$NETNS_PREFIX} ns pid
  for ns in $(ip netns list | awk '{print $1}' | grep -E "^$p-"); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
}
