#!/usr/bin/env bash
# A test network of network namespaces, the shape of two homes on the
# internet:
#
#   PREFIXpub   the "internet": bridge br0, 11.99.0.1/24 (the relay runs here)
#   PREFIXra    home A's router: wan 11.99.0.2 on the bridge, lan 192.168.1.1
#   PREFIXha    home A's node: 192.168.1.2, default route via its router
#   PREFIXrb    home B's router: wan 11.99.0.3, lan 192.168.2.1
#   PREFIXhb    home B's node: 192.168.2.2
#
# Each router is of one kind, NAT_A and NAT_B (default apdf). In the terms
# of RFC 4787 (mapping: which external address:port an inside endpoint
# gets; filtering: who may send to it):
#
#   apdf  endpoint-independent mapping, address-and-port-dependent
#         filtering. Plain Linux masquerade: it keeps the node's source
#         port where it can, so one inside endpoint has one external
#         address:port whatever the destination; conntrack lets a packet in
#         only when it answers exactly the address:port the node sent to,
#         and whatever else comes to the router is dropped. This is the
#         router every script had before there were kinds, and the default.
#   eim   endpoint-independent mapping and endpoint-independent filtering
#         ("full cone"): masquerade as apdf, and once the node has sent from
#         a port, anybody may send to that port of the router, which
#         forwards it to the node (an nftables set of the ports in use,
#         each kept 2 min after the node last sent from it). Ports the node
#         has not sent from stay closed.
#   sym   symmetric: address-and-port-dependent mapping (masquerade
#         --random-fully, a new random external port for every new
#         destination address:port) and address-and-port-dependent
#         filtering as apdf.
#   none  no NAT and no filter: the home's LAN is a public block
#         (11.99.1.0/24 for A, 11.99.2.0/24 for B), routed by its router and
#         reachable from the whole internet segment; the node is
#         11.99.1.2 (or 11.99.2.2). Without a firewall: a node with a public
#         address is the case where anybody may dial it, the other end of
#         the range from a NAT.
#
# No home can be dialed from outside otherwise (no port forwarding).
# libp2p punches holes with the address a peer observed, which is right
# for the node's next destination only with an endpoint-independent
# mapping: apdf and eim can be punched, sym only towards a peer that lets
# anybody in (eim or none). The kinds' behaviour is checked by
# TestNATKinds in cmd/fungi/nat_matrix_test.go.
#
# Usage (as root): [NAT_A=KIND] [NAT_B=KIND] nat-testnet.sh up PREFIX | down PREFIX
# Run a program inside one:  ip netns exec PREFIXha fungi -f ~/.fungi-a daemon
set -euo pipefail

cmd=${1:?usage: nat-testnet.sh up|down PREFIX}
p=${2:?usage: nat-testnet.sh up|down PREFIX}
# The "internet" segment; libp2p hole-punches only between addresses it
# deems public, so the test uses a public-looking block that exists only
# inside these namespaces (they have no route out).
WAN=${WAN:-11.99.0}
NAT_A=${NAT_A:-apdf}
NAT_B=${NAT_B:-apdf}

down() {
	for ns in pub ra ha rb hb; do
		ip netns del "$p$ns" 2>/dev/null || true
	done
}

up() {
	for k in "$NAT_A" "$NAT_B"; do
		case $k in
		eim | apdf | sym | none) ;;
		*) echo "nat-testnet.sh: unknown NAT kind $k (eim, apdf, sym or none)" >&2; exit 2 ;;
		esac
	done
	if [ "$NAT_A" = eim ] || [ "$NAT_B" = eim ]; then
		command -v nft >/dev/null || { echo "nat-testnet.sh: NAT kind eim needs nft (Debian package nftables)" >&2; exit 1; }
	fi
	down
	for ns in pub ra ha rb hb; do
		ip netns add "$p$ns"
		ip -n "$p$ns" link set lo up
	done
	ip -n "${p}pub" link add br0 type bridge
	ip -n "${p}pub" addr add $WAN.1/24 dev br0
	ip -n "${p}pub" link set br0 up
	router "${p}ra" $WAN.2 "$(lanof "$NAT_A" 1)" "${p}ha" "$NAT_A"
	router "${p}rb" $WAN.3 "$(lanof "$NAT_B" 2)" "${p}hb" "$NAT_B"
	# A public home is reached through its router: the internet segment
	# and the other router learn the way.
	if [ "$NAT_A" = none ]; then
		ip -n "${p}pub" route add "$(lanof none 1).0/24" via $WAN.2
		ip -n "${p}rb" route add "$(lanof none 1).0/24" via $WAN.2
	fi
	if [ "$NAT_B" = none ]; then
		ip -n "${p}pub" route add "$(lanof none 2).0/24" via $WAN.3
		ip -n "${p}ra" route add "$(lanof none 2).0/24" via $WAN.3
	fi
}

# lanof KIND N is the first three octets of home N's LAN: private behind a
# NAT, a public block for kind none.
lanof() {
	if [ "$1" = none ]; then
		echo "${WAN%.*}.$2"
	else
		echo "192.168.$2"
	fi
}

# router NS WAN_IP LAN_PREFIX HOST_NS KIND wires a router and its home node.
router() {
	local r=$1 wan=$2 lan=$3 h=$4 kind=$5
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
	case $kind in
	none) return ;;
	sym) ip netns exec "$r" iptables -t nat -A POSTROUTING -o wan -j MASQUERADE --random-fully ;;
	*) ip netns exec "$r" iptables -t nat -A POSTROUTING -o wan -j MASQUERADE ;;
	esac
	# Like a home router, drop what nobody inside asked for. Dropped before
	# conntrack confirms it, an early hole-punch packet then leaves no
	# entry behind that would make the NAT pick another port for the
	# node's own packet to the same peer.
	ip netns exec "$r" iptables -A INPUT -i wan -m conntrack --ctstate NEW -j DROP
	if [ "$kind" = eim ]; then
		# Full cone: a port the node sent from (masquerade kept it, there
		# being one node) is open to anybody, forwarded to the node. New
		# connections only: the rest follow conntrack.
		ip netns exec "$r" nft -f - <<-EOF
			table ip fullcone {
				set mapped {
					type inet_proto . inet_service
					flags dynamic,timeout
					timeout 2m
				}
				chain out {
					type filter hook forward priority filter; policy accept;
					iifname "lan" oifname "wan" meta l4proto { tcp, udp } update @mapped { meta l4proto . th sport }
				}
				chain in {
					type nat hook prerouting priority dstnat; policy accept;
					iifname "wan" meta l4proto . th dport @mapped dnat to $lan.2
				}
			}
		EOF
	fi
}

case $cmd in
up) up ;;
down) down ;;
*) echo "usage: nat-testnet.sh up|down PREFIX" >&2; exit 2 ;;
esac
