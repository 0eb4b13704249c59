#!/usr/bin/env bash
# Roaming on the test network of nat-testnet.sh: a third home router and a
# way to move home A's node from its router to that one, as a laptop moves
# from one network to another.
#
#   PREFIXrc    the third router: wan 11.99.0.4 on the bridge, lan 192.168.3.1, NAT
#
# up PREFIX      builds nat-testnet.sh's network and the third router
# move PREFIX    unplugs A's node (PREFIXha) from its router: its interface
#                eth0 (192.168.1.2) goes away, a new one, eth1 (192.168.3.2),
#                comes up on the third router's LAN with a new default route.
#                A's public address changes from 11.99.0.2 to 11.99.0.4.
# back PREFIX    moves it back to its first router (eth0, 192.168.1.2)
# down PREFIX    removes it all
#
# Usage (as root): nat-roam.sh up|move|back|down PREFIX
set -euo pipefail

cmd=${1:?usage: nat-roam.sh up|move|back|down PREFIX}
p=${2:?usage: nat-roam.sh up|move|back|down PREFIX}
WAN=${WAN:-11.99.0}
here=$(dirname "$0")

up() {
	ip netns del "${p}rc" 2>/dev/null || true
	bash "$here/nat-testnet.sh" up "$p"
	local r=${p}rc
	ip netns add "$r"
	ip -n "$r" link set lo up
	ip link add wan netns "$r" type veth peer name "up-$r" netns "${p}pub"
	ip -n "${p}pub" link set "up-$r" master br0 up
	ip -n "$r" addr add "$WAN.4/24" dev wan
	ip -n "$r" link set wan up
	ip netns exec "$r" sysctl -qw net.ipv4.ip_forward=1
	ip netns exec "$r" iptables -t nat -A POSTROUTING -o wan -j MASQUERADE
	ip netns exec "$r" iptables -A INPUT -i wan -m conntrack --ctstate NEW -j DROP
}

# plug ROUTER SUBNET OLDIF NEWIF: A's node leaves its router (OLDIF goes,
# and with a veth its other end too) and joins ROUTER's LAN SUBNET.0/24 on
# NEWIF, as SUBNET.2 behind SUBNET.1.
plug() {
	local r=$1 net=$2 old=$3 new=$4 h=${p}ha
	ip -n "$h" link del "$old"
	ip link add lan netns "$r" type veth peer name "$new" netns "$h"
	ip -n "$r" addr add "$net.1/24" dev lan
	ip -n "$r" link set lan up
	ip -n "$h" addr add "$net.2/24" dev "$new"
	ip -n "$h" link set "$new" up
	ip -n "$h" route add default via "$net.1"
}

move() { plug "${p}rc" 192.168.3 eth0 eth1; }

back() { plug "${p}ra" 192.168.1 eth1 eth0; }

down() {
	ip netns del "${p}rc" 2>/dev/null || true
	bash "$here/nat-testnet.sh" down "$p"
}

case $cmd in
up) up ;;
move) move ;;
back) back ;;
down) down ;;
*) echo "usage: nat-roam.sh up|move|back|down PREFIX" >&2; exit 2 ;;
esac
