#!/usr/bin/env bash
# Roaming on the test network of nat-testnet.sh: a third home router and a
# way to move home A's node from its router to that one, as a laptop moves
# from one network to another.
#
#   PREFIXrc    the third router: wan 11.99.0.4 on the bridge, lan 192.168.3.1, NAT
#   PREFIXrd    the fourth router: wan 11.99.0.5, lan 192.168.4.1, NAT, for
#               home B's node to move to
#
# up PREFIX      builds nat-testnet.sh's network and the third and fourth
#                routers
# move PREFIX    unplugs A's node (PREFIXha) from its router: its interface
#                eth0 (192.168.1.2) goes away, a new one, eth1 (192.168.3.2),
#                comes up on the third router's LAN with a new default route.
#                A's public address changes from 11.99.0.2 to 11.99.0.4.
# back PREFIX    moves it back to its first router (eth0, 192.168.1.2)
# moveb PREFIX   moves home B's node (PREFIXhb) to the fourth router: eth0
#                (192.168.2.2) goes, eth1 (192.168.4.2) comes; B's public
#                address changes from 11.99.0.3 to 11.99.0.5
# backb PREFIX   moves it back to its first router (eth0, 192.168.2.2)
# down PREFIX    removes it all
#
# Usage (as root): nat-roam.sh up|move|back|moveb|backb|down PREFIX
set -euo pipefail

usage="usage: nat-roam.sh up|move|back|moveb|backb|down PREFIX"
cmd=${1:?$usage}
p=${2:?$usage}
WAN=${WAN:-11.99.0}
here=$(dirname "$0")

# spare ROUTER WAN: a router on the internet segment at WAN with a NAT
# like the homes' (plain masquerade), and no LAN until a node moves in.
spare() {
	local r=$1
	ip netns add "$r"
	ip -n "$r" link set lo up
	ip link add wan netns "$r" type veth peer name "up-$r" netns "${p}pub"
	ip -n "${p}pub" link set "up-$r" master br0 up
	ip -n "$r" addr add "$2/24" dev wan
	ip -n "$r" link set wan up
	ip netns exec "$r" sysctl -qw net.ipv4.ip_forward=1
	ip netns exec "$r" iptables -t nat -A POSTROUTING -o wan -j MASQUERADE
	ip netns exec "$r" iptables -A INPUT -i wan -m conntrack --ctstate NEW -j DROP
}

up() {
	ip netns del "${p}rc" 2>/dev/null || true
	ip netns del "${p}rd" 2>/dev/null || true
	bash "$here/nat-testnet.sh" up "$p"
	spare "${p}rc" "$WAN.4"
	spare "${p}rd" "$WAN.5"
}

# plug NODE ROUTER SUBNET OLDIF NEWIF: a home's node leaves its router
# (OLDIF goes, and with a veth its other end too) and joins ROUTER's LAN
# SUBNET.0/24 on NEWIF, as SUBNET.2 behind SUBNET.1.
plug() {
	local h=$1 r=$2 net=$3 old=$4 new=$5
	ip -n "$h" link del "$old"
	ip link add lan netns "$r" type veth peer name "$new" netns "$h"
	ip -n "$r" addr add "$net.1/24" dev lan
	ip -n "$r" link set lan up
	ip -n "$h" addr add "$net.2/24" dev "$new"
	ip -n "$h" link set "$new" up
	ip -n "$h" route add default via "$net.1"
}

move() { plug "${p}ha" "${p}rc" 192.168.3 eth0 eth1; }

back() { plug "${p}ha" "${p}ra" 192.168.1 eth1 eth0; }

moveb() { plug "${p}hb" "${p}rd" 192.168.4 eth0 eth1; }

backb() { plug "${p}hb" "${p}rb" 192.168.2 eth1 eth0; }

down() {
	ip netns del "${p}rc" 2>/dev/null || true
	ip netns del "${p}rd" 2>/dev/null || true
	bash "$here/nat-testnet.sh" down "$p"
}

case $cmd in
up) up ;;
move) move ;;
back) back ;;
moveb) moveb ;;
backb) backb ;;
down) down ;;
*) echo "$usage" >&2; exit 2 ;;
esac
