#!/usr/bin/env bash
# A test network of network namespaces, the shape of two homes on the
# internet:
#
#   PREFIXpub   the "internet": bridge br0, 11.99.0.1/24 (the relay runs here)
#   PREFIXra    home A's router: wan 11.99.0.2 on the bridge, lan 192.168.1.1, NAT (masquerade)
#   PREFIXha    home A's node: 192.168.1.2, default route via its router
#   PREFIXrb    home B's router: wan 11.99.0.3, lan 192.168.2.1, NAT
#   PREFIXhb    home B's node: 192.168.2.2
#
# Nodes reach the relay through their router's NAT; neither home can be
# dialed from outside (no port forwarding). Linux masquerade keeps source
# ports where it can, so a mapping does not depend on the destination and
# hole punching can work.
#
# Usage (as root): nat-testnet.sh up PREFIX | down PREFIX
# Run a program inside one:  ip netns exec PREFIXha fungi -f ~/.fungi-a daemon
set -euo pipefail

cmd=${1:?usage: nat-testnet.sh up|down PREFIX}
p=${2:?usage: nat-testnet.sh up|down PREFIX}
# The "internet" segment; libp2p hole-punches only between addresses it
# deems public, so the test uses a public-looking block that exists only
# inside these namespaces (they have no route out).
WAN=${WAN:-11.99.0}

down() {
	for ns in pub ra ha rb hb; do
		ip netns del "$p$ns" 2>/dev/null || true
	done
}

up() {
	down
	for ns in pub ra ha rb hb; do
		ip netns add "$p$ns"
		ip -n "$p$ns" link set lo up
	done
	ip -n "${p}pub" link add br0 type bridge
	ip -n "${p}pub" addr add $WAN.1/24 dev br0
	ip -n "${p}pub" link set br0 up
	router "${p}ra" $WAN.2 192.168.1 "${p}ha"
	router "${p}rb" $WAN.3 192.168.2 "${p}hb"
}

# router NS WAN_IP LAN_PREFIX HOST_NS wires a NAT router and its home node.
router() {
	local r=$1 wan=$2 lan=$3 h=$4
	ip link add wan netns "$r" type veth peer name "up-$r" netns "${p}pub"
	ip -n "${p}pub" link set "up-$r" master br0 up
	ip -n "$r" addr add "$wan/24" dev wan
	ip -n "$r" link set wan up
	ip link add lan netns "$r" type veth peer name eth0 netns "$h"
	ip -n "$r" addr add "$lan.1/24" dev lan
	ip -n "$r" link set lan up
	ip -n "$h" addr add "$lan.2/24" dev eth0
	ip -n "$h" link set eth0 up
	ip -n "$h" route add default via "$lan.1"
	ip netns exec "$r" sysctl -qw net.ipv4.ip_forward=1
	ip netns exec "$r" iptables -t nat -A POSTROUTING -o wan -j MASQUERADE
	# Like a home router, drop what nobody inside asked for. Dropped before
	# conntrack confirms it, an early hole-punch packet then leaves no
	# entry behind that would make the NAT pick another port for the
	# node's own packet to the same peer.
	ip netns exec "$r" iptables -A INPUT -i wan -m conntrack --ctstate NEW -j DROP
}

case $cmd in
up) up ;;
down) down ;;
*) echo "usage: nat-testnet.sh up|down PREFIX" >&2; exit 2 ;;
esac
