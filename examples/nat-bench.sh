#!/usr/bin/env bash
# Throughput of the access path (node A's local port → node B's service) in
# the NAT test network (examples/nat-testnet.sh), over the relay and over
# the hole-punched direct connection, next to the same two nodes on
# loopback. Needs root, ip, iptables and curl; builds bin/fungi first.
#
#   sudo examples/nat-bench.sh [MEGABYTES]
set -euo pipefail
cd "$(dirname "$0")/.."
mb=${1:-64}
go build -o bin/fungi ./cmd/fungi
GOOS=wasip1 GOARCH=wasm go build -trimpath -o examples/wasm/filebrowser-lite.wasm ./examples/apps/filebrowser-lite
fungi=$PWD/bin/fungi
p=fb$$
work=$(mktemp -d /tmp/fungi-natbench.XXXXXX)
pids=()
cleanup() {
	for x in "${pids[@]}"; do kill -INT "$x" 2>/dev/null || true; done
	for x in "${pids[@]}"; do wait "$x" 2>/dev/null || true; done
	bash examples/nat-testnet.sh down "$p"
	rm -rf "$work"
}
trap cleanup EXIT
head -c $((mb << 20)) /dev/urandom >"$work/payload"

bg() { "$@" 2>>"$work/log" & pids+=($!); }
waitfor() { for _ in $(seq 300); do "$@" >/dev/null 2>&1 && return; sleep 0.1; done; echo "timed out: $*"; exit 1; }

# put NETNS|- PORT NAME: upload the payload through the access port, print MB/s.
put() {
	local ns=$1 port=$2 name=$3 run=()
	[ "$ns" != - ] && run=(ip netns exec "$ns")
	"${run[@]}" curl -s -o /dev/null -w '%{speed_upload}' -T "$work/payload" "http://127.0.0.1:$port/files/$name" |
		awk -v n="$name" '{printf "%-28s %8.1f MB/s\n", n, $1/1e6}'
}

# quiet_home HOME: no mDNS and no port mapping; a daemon in a network
# namespace of the test network could keep them, but the loopback pair runs
# on this machine's own network, and one config for all is simpler.
quiet_home() {
	mkdir -p -m 0700 "$1"
	printf 'mdns: false\nportMapping: false\ndiscovery: {dht: false}\n' >"$1/config.yaml"
}

start_pair() { # start_pair NS_A NS_B RELAY_ARGS...: A and B homes under $work/$1-$2
	local na=$1 nb=$2
	shift 2
	for n in a b; do quiet_home "$work/$na$nb-$n"; "$fungi" -f "$work/$na$nb-$n" init >/dev/null; done
	local run_a=() run_b=()
	[ "$na" != - ] && run_a=(ip netns exec "$na")
	[ "$nb" != - ] && run_b=(ip netns exec "$nb")
	bg "${run_a[@]}" "$fungi" -f "$work/$na$nb-a" daemon --listen /ip4/0.0.0.0/tcp/0 --listen /ip4/0.0.0.0/udp/0/quic-v1 "$@"
	bg "${run_b[@]}" "$fungi" -f "$work/$na$nb-b" daemon --listen /ip4/0.0.0.0/tcp/4433 --listen /ip4/0.0.0.0/udp/4433/quic-v1 "$@"
	waitfor "$fungi" -f "$work/$na$nb-a" info id
	waitfor "$fungi" -f "$work/$na$nb-b" info addrs
}

serve() { # serve HOME_B: the example service on B, published
	"$fungi" -f "$1" service pull examples/service-manifests/filebrowser-lite-wasi.service.yaml >/dev/null 2>&1
	"$fungi" -f "$1" service start filebrowser-lite-wasi >/dev/null
}

attach() { # attach HOME_A B_ID ADDR: prints A's local port
	"$fungi" -f "$1" device add "$2" --alias node-b --addr "$3" >/dev/null
	"$fungi" -f "$1" access attach filebrowser-lite-wasi --peer node-b 2>/dev/null | sed -n 's/^http 127.0.0.1://p'
}

echo "== loopback: two nodes on 127.0.0.1, direct"
start_pair - -
a=$work/---a b=$work/---b
serve "$b"
"$fungi" -f "$b" device trust "$("$fungi" -f "$a" info id)" >/dev/null
port=$(attach "$a" "$("$fungi" -f "$b" info id)" "$("$fungi" -f "$b" info addrs | grep '/ip4/127.0.0.1/udp' | head -1)")
put - "$port" loopback-quic.bin
"$fungi" -f "$a" device remove node-b >/dev/null
"$fungi" -f "$a" access detach filebrowser-lite-wasi >/dev/null
port=$(attach "$a" "$("$fungi" -f "$b" info id)" "$("$fungi" -f "$b" info addrs | grep '/ip4/127.0.0.1/tcp' | head -1)")
put - "$port" loopback-tcp.bin

echo "== behind two NATs, through the relay, then hole-punched"
bash examples/nat-testnet.sh up "$p"
quiet_home "$work/relay"
"$fungi" -f "$work/relay" init >/dev/null
rid=$("$fungi" -f "$work/relay" info id)
bg ip netns exec "${p}pub" "$fungi" -f "$work/relay" relay --open --listen /ip4/11.99.0.1/udp/4001/quic-v1
# Hole punching off at first: router B forwards nothing between home B and
# A's router, so A and B can only meet at the relay.
ip netns exec "${p}rb" iptables -I FORWARD -s 11.99.0.2 -j DROP
ip netns exec "${p}rb" iptables -I FORWARD -d 11.99.0.2 -j DROP
relay=/ip4/11.99.0.1/udp/4001/quic-v1/p2p/$rid
start_pair "${p}ha" "${p}hb" --relay "$relay"
a=$work/${p}ha${p}hb-a b=$work/${p}ha${p}hb-b
serve "$b"
"$fungi" -f "$b" device trust "$("$fungi" -f "$a" info id)" >/dev/null
bid=$("$fungi" -f "$b" info id)
waitfor sh -c "'$fungi' -f '$b' info addrs | grep -q p2p-circuit"
t0=$(date +%s.%N)
port=$(attach "$a" "$bid" "$relay/p2p-circuit")
t1=$(date +%s.%N)
echo "first contact through the relay (device add + access attach, one round trip to B): $(echo "$t1 - $t0" | bc) s"
"$fungi" -f "$a" connection list | grep node-b
put "${p}ha" "$port" relayed.bin
# Now let hole punching through: a new relayed connection triggers it.
ip netns exec "${p}rb" iptables -D FORWARD -s 11.99.0.2 -j DROP
ip netns exec "${p}rb" iptables -D FORWARD -d 11.99.0.2 -j DROP
"$fungi" -f "$b" device untrust "$("$fungi" -f "$a" info id)" >/dev/null
"$fungi" -f "$b" device trust "$("$fungi" -f "$a" info id)" >/dev/null
t0=$(date +%s.%N)
waitfor sh -c "'$fungi' -f '$a' connection list | grep node-b | grep -q ' direct '"
t1=$(date +%s.%N)
echo "relayed to direct by hole punching: $(echo "$t1 - $t0" | bc) s"
"$fungi" -f "$a" connection list | grep node-b
put "${p}ha" "$port" punched-direct.bin
