#!/usr/bin/env bash
# One node on this machine: pull the example wasm service, start it, upload a
# file through its port, read it back, stop it. Every command is printed
# before it runs. Nothing is left behind: the node lives in a temporary folder.
set -euo pipefail
cd "$(dirname "$0")/.."

fungi=$PWD/bin/fungi
export FUNGI_DIR=$(mktemp -d /tmp/fungi-demo.XXXXXX)
daemon_pid=
cleanup() {
	if [ -n "$daemon_pid" ]; then kill -INT "$daemon_pid" 2>/dev/null || true; wait "$daemon_pid" 2>/dev/null || true; fi
	rm -rf "$FUNGI_DIR"
}
trap cleanup EXIT

say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@"; }

command -v curl >/dev/null || { echo "the demo needs curl (apt-get install curl)"; exit 1; }

run "$fungi" init
say "$fungi daemon --listen /ip4/127.0.0.1/tcp/0 &"
"$fungi" daemon --listen /ip4/127.0.0.1/tcp/0 2>"$FUNGI_DIR/daemon.log" &
daemon_pid=$!
for _ in $(seq 100); do
	"$fungi" info addrs >/dev/null 2>&1 && break
	kill -0 "$daemon_pid" 2>/dev/null || { cat "$FUNGI_DIR/daemon.log"; exit 1; }
	sleep 0.1
done
run "$fungi" info addrs
run "$fungi" service pull examples/service-manifests/filebrowser-lite-wasi.service.yaml
run "$fungi" service list
run "$fungi" service start filebrowser-lite-wasi
run "$fungi" service inspect filebrowser-lite-wasi
port=$("$fungi" service inspect filebrowser-lite-wasi --json | sed -n 's/.*"hostPort": \([0-9]*\).*/\1/p' | head -1)
run curl -sS -X PUT --data-binary "hello from the fungi demo" "http://127.0.0.1:$port/files/hello.txt"
say curl -sS "http://127.0.0.1:$port/files/hello.txt"
got=$(curl -sS "http://127.0.0.1:$port/files/hello.txt")
echo "$got"
[ "$got" = "hello from the fungi demo" ] || { echo "demo: read back '$got'"; exit 1; }
run curl -sS "http://127.0.0.1:$port/api/list?path=/"
echo
run "$fungi" service logs filebrowser-lite-wasi --tail 5
run "$fungi" service stop filebrowser-lite-wasi
run "$fungi" service list
printf '\ndemo finished: the service was pulled, started, used through 127.0.0.1:%s and stopped.\n' "$port"
