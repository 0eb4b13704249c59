#!/usr/bin/env bash
# The seed's remote flow on this machine: two nodes, A (the controller) and
# B (the server). A pulls the example wasm service onto B, starts it, finds
# it in B's catalog, attaches it to a local port, and uses it through that
# port — over an encrypted libp2p stream. Every command is printed before it
# runs. Nothing is left behind: both nodes live in temporary folders.
set -euo pipefail
cd "$(dirname "$0")/.."

fungi=$PWD/bin/fungi
work=$(mktemp -d /tmp/fungi-demo.XXXXXX)
A=$work/node-a
B=$work/node-b
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@"; }

command -v curl >/dev/null || { echo "the demo needs curl (apt-get install curl)"; exit 1; }

start_node() {
	local home=$1
	# Both nodes live on this machine: no mDNS multicast, no UPnP/NAT-PMP
	# requests to the gateway. init keeps a config.yaml it finds.
	mkdir -p -m 0700 "$home"
	printf 'mdns: false\nportMapping: false\ndiscovery: {dht: false}\nui:\n  enabled: false\n' >"$home/config.yaml"
	run "$fungi" -f "$home" init
	say "$fungi -f $home daemon --listen /ip4/127.0.0.1/tcp/0 &"
	"$fungi" -f "$home" daemon --listen /ip4/127.0.0.1/tcp/0 2>"$home.log" &
	pids+=($!)
	for _ in $(seq 100); do
		"$fungi" -f "$home" info addrs >/dev/null 2>&1 && return
		sleep 0.1
	done
	cat "$home.log"
	exit 1
}

start_node "$A"
start_node "$B"
a_id=$("$fungi" -f "$A" info id)
b_id=$("$fungi" -f "$B" info id)
b_addr=$("$fungi" -f "$B" info addrs | head -1)

# On A: B goes into the address book. On B: A may administer it.
run "$fungi" -f "$A" device add "$b_id" --alias node-b --addr "$b_addr"
run "$fungi" -f "$B" device trust "$a_id" --role admin
run "$fungi" -f "$A" peer use node-b
run "$fungi" -f "$A" peer capability
run "$fungi" -f "$A" peer admin service pull examples/service-manifests/filebrowser-lite-wasi.service.yaml
run "$fungi" -f "$A" peer admin service list
run "$fungi" -f "$A" peer admin service start filebrowser-lite-wasi
run "$fungi" -f "$A" catalog list
run "$fungi" -f "$A" access attach filebrowser-lite-wasi
run "$fungi" -f "$A" access list
local_addr=$("$fungi" -f "$A" access list --json | sed -n 's/.*"localAddress": "\(.*\)".*/\1/p' | head -1)

run curl -sS -X PUT --data-binary "hello from node A" "http://$local_addr/files/hello.txt"
say curl -sS "http://$local_addr/files/hello.txt"
got=$(curl -sS "http://$local_addr/files/hello.txt")
echo "$got"
[ "$got" = "hello from node A" ] || { echo "demo: read back '$got'"; exit 1; }
say ls "$B/data/filebrowser-lite-wasi/data"
ls "$B/data/filebrowser-lite-wasi/data"
run "$fungi" -f "$A" connection list
run "$fungi" -f "$A" peer admin service logs filebrowser-lite-wasi --tail 3
run "$fungi" -f "$A" peer admin service stop filebrowser-lite-wasi
printf '\ndemo finished: node A pulled and started the service on node B, attached it at %s and used it over libp2p.\n' "$local_addr"
