# The two set-up commands are `make demo` and `make test`; the rest are parts.
GO      ?= go
BIN     := bin/fungi
WASM    := examples/wasm/filebrowser-lite.wasm
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/fungi-go/fungi/internal/version.Version=$(VERSION)

.PHONY: all build examples test demo bench proto clean

all: build examples

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/fungi

# The example app as a wasip1 CGI module for the wasm runtime.
examples: $(WASM)

$(WASM): $(wildcard examples/apps/filebrowser-lite/*.go)
	GOOS=wasip1 GOARCH=wasm $(GO) build -trimpath -o $@ ./examples/apps/filebrowser-lite

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

# Regenerates messages/*.pb.go (needs protoc, protoc-gen-go and protoc-gen-go-grpc).
proto:
	cd messages && $(GO) generate

clean:
	rm -rf bin examples/wasm
