# The two set-up commands are `make demo` and `make test`; the rest are parts.
GO      ?= go
BIN     := bin/fungi
WASM    := examples/wasm/filebrowser-lite.wasm
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/fungi-go/fungi/internal/version.Version=$(VERSION)

IMAGE   := fungi-examples/filebrowser-lite:latest

.PHONY: all build examples images test demo bench bench-nat proto clean

all: build examples

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/fungi

# The example app as a wasip1 CGI module for the wasm runtime.
examples: $(WASM)

$(WASM): $(wildcard examples/apps/filebrowser-lite/*.go)
	GOOS=wasip1 GOARCH=wasm $(GO) build -trimpath -o $@ ./examples/apps/filebrowser-lite

# The example app as a FROM scratch container image, for the docker runtime.
images:
	mkdir -p bin/image-filebrowser-lite
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/image-filebrowser-lite/filebrowser-lite ./examples/apps/filebrowser-lite
	cp examples/apps/filebrowser-lite/Dockerfile bin/image-filebrowser-lite/
	docker build -q -t $(IMAGE) bin/image-filebrowser-lite

test:
	$(GO) vet ./...
	$(GO) test -count=1 ./...

demo: build examples
	./examples/demo.sh

# Benchmarks with their baselines, measured in the same run; see docs/BENCHMARKS.md.
# The ssh -L baseline needs openssh-server and openssh-client (Debian).
bench:
	$(GO) test -run '^$$' -bench 'Request' -benchtime 1000x ./runtimes/wasm
	$(GO) test -run '^$$' -bench 'Start' -benchtime 5x ./runtimes/wasm
	$(GO) test -run '^$$' -bench 'Access' -benchtime 10x ./transport
	$(GO) test -run '^$$' -bench 'RemoteAdmin' -benchtime 500x ./internal/daemon
	$(GO) test -run '^$$' -bench 'Start' -benchtime 10x ./runtimes/docker

# Access throughput behind two NATs (relayed, hole-punched) and on loopback;
# needs root, ip, iptables and curl.
bench-nat:
	./examples/nat-bench.sh 64

# Regenerates messages/*.pb.go (needs protoc, protoc-gen-go and protoc-gen-go-grpc).
proto:
	cd messages && $(GO) generate

clean:
	rm -rf bin examples/wasm
