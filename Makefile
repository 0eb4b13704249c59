# The two set-up commands are `make demo` and `make test`; the rest are parts.
GO      ?= go
BIN     := bin/fungi
WASM    := examples/wasm/filebrowser-lite.wasm
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/fungi-go/fungi/internal/version.Version=$(VERSION)
# grpcnotrace leaves out gRPC's x/net/trace pages (unused; EnableTracing is
# off) and the html/template they render with, whose reflection would keep
# every exported method in the binary. TestReleaseBinary builds with the
# same tags and flags.
TAGS    := grpcnotrace

IMAGE   := fungi-examples/filebrowser-lite:latest

.PHONY: all build examples images test demo drill fuzz fuzz-ci bench bench-nat bench-ssh proto clean dist crossbuild size

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
	# staticcheck at a pinned release, from the module proxy (no tools.go).
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
	$(GO) test -count=1 -timeout 30m ./...
	# The go-yamux fork (its own module): upstream's tests and the fork's.
	cd third_party/go-yamux && $(GO) test -count=1 ./...
	$(MAKE) fuzz-ci

# Longer drills that keep the boundary closed: the crash drill (SIGKILL under
# load, 20 rounds), the load drill (1,000 connections, 200 concurrent 1 MiB
# uploads through one access entry), the NAT matrix in both directions of
# every pair (16 cells; `make test` runs 10) and every fuzz target for a
# minute. CI runs a bounded part of each inside `make test` and `make fuzz`.
drill:
	FUNGI_DRILL_ROUNDS=$${FUNGI_DRILL_ROUNDS:-20} $(GO) test -count=1 -run '^TestCrashDrill$$' -v ./cmd/fungi
	FUNGI_DRILL_CONNS=1000 FUNGI_DRILL_UPLOADS=200 $(GO) test -count=1 -run 'TestLoadDrill' -v ./transport ./actors
	FUNGI_NAT_MATRIX=full $(GO) test -count=1 -run '^TestNATMatrix$$' -v ./cmd/fungi
	FUNGI_REACH_ROUNDS=20 $(GO) test -count=1 -run '^TestReachRoamingDirect$$' -v ./cmd/fungi
	FUNGI_INTERNET_ROUNDS=5 $(GO) test -count=1 -run '^TestReachInternet' -v ./cmd/fungi
	FUNGI_FLEET_SIZE=50 $(GO) test -count=1 -timeout 60m -run '^TestReachFleet$$' -v ./cmd/fungi
	FUNGI_DRILL_HOSTILE_REQUESTS=2000 $(GO) test -count=1 -run '^TestHostileComponentDrill$$' -v ./cmd/fungi
	$(MAKE) fuzz FUZZTIME=60s

# Every decoder of outside input, fuzzed for FUZZTIME each.
FUZZTIME ?= 5s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./runtimes/manifest
	$(GO) test -run '^$$' -fuzz '^FuzzReadFrame$$' -fuzztime $(FUZZTIME) ./transport/wire
	$(GO) test -run '^$$' -fuzz '^FuzzChunkReader$$' -fuzztime $(FUZZTIME) ./transport/access
	$(GO) test -run '^$$' -fuzz '^FuzzChunkReaderArbitraryInput$$' -fuzztime $(FUZZTIME) ./transport/access
	$(GO) test -run '^$$' -fuzz '^FuzzMergeDataSegments$$' -fuzztime $(FUZZTIME) ./runtimes/wasm
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./runtimes/wasm/component/internal/binary
	$(GO) test -run '^$$' -fuzz '^FuzzLink$$' -fuzztime $(FUZZTIME) ./runtimes/wasm/component
	$(GO) test -run '^$$' -fuzz '^FuzzParseFunc$$' -fuzztime $(FUZZTIME) ./runtimes/wasm/component/internal/wit

# make test's bounded fuzzing: every decoder for a number of inputs (a few
# seconds each here), not a duration. Go 1.26's fuzz coordinator races a
# -fuzztime duration at its end on a loaded machine and fails with "context
# deadline exceeded" and no failing input (golang/go#75804, fixed in Go
# 1.27); a count has no deadline to race.
fuzz-ci:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime 2000x ./runtimes/manifest
	$(GO) test -run '^$$' -fuzz '^FuzzReadFrame$$' -fuzztime 20000x ./transport/wire
	$(GO) test -run '^$$' -fuzz '^FuzzChunkReader$$' -fuzztime 3000x ./transport/access
	$(GO) test -run '^$$' -fuzz '^FuzzChunkReaderArbitraryInput$$' -fuzztime 10000x ./transport/access
	$(GO) test -run '^$$' -fuzz '^FuzzMergeDataSegments$$' -fuzztime 10000x ./runtimes/wasm
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime 60000x ./runtimes/wasm/component/internal/binary
	$(GO) test -run '^$$' -fuzz '^FuzzLink$$' -fuzztime 20000x ./runtimes/wasm/component
	$(GO) test -run '^$$' -fuzz '^FuzzParseFunc$$' -fuzztime 40000x ./runtimes/wasm/component/internal/wit

demo: build examples
	./examples/demo.sh

# Benchmarks with their baselines, measured in the same run; see docs/BENCHMARKS.md.
# The ssh -L baseline needs openssh-server and openssh-client (Debian).
bench:
	$(GO) test -run '^$$' -bench 'Request' -benchtime 1000x ./runtimes/wasm
	$(GO) test -run '^$$' -bench 'Start' -benchtime 5x ./runtimes/wasm
	$(GO) test -run '^$$' -bench 'Access' -benchtime 10x ./transport
	FUNGI_BENCH_ACCESS_DAEMONS=1 $(GO) test -count=1 -run '^TestAccessDaemonsBench$$' -v ./cmd/fungi
	$(GO) test -run '^$$' -bench 'RemoteAdmin' -benchtime 500x ./internal/daemon
	$(GO) test -run '^$$' -bench 'Start' -benchtime 10x ./runtimes/docker
	$(GO) test -run '^$$' -bench 'Request|Compile' ./runtimes/wasm/component
	$(GO) test -count=1 -run '^TestAccessBurst$$' -v ./cmd/fungi
	$(GO) test -run '^$$' -bench 'SSH' -benchtime 3x ./transport

# Access throughput behind two NATs (relayed, hole-punched) and on loopback;
# needs root, ip, iptables and curl.
bench-nat:
	./examples/nat-bench.sh 64

# Release archives for every OS/arch: static (CGO_ENABLED=0), stripped
# (-s -w -trimpath) binaries stamped with VERSION, one tar.gz per pair (zip
# for windows) and SHA256SUMS, in dist/. android/arm64 is for Termux (a
# phone as a node: wasm and external services, no Docker, no service install).
DIST_PAIRS := linux/amd64 linux/arm64 linux/arm darwin/amd64 darwin/arm64 windows/amd64 windows/arm64 android/arm64
dist:
	rm -rf dist && mkdir -p dist
	set -e; for p in $(DIST_PAIRS); do \
		os=$${p%/*}; arch=$${p#*/}; name=fungi-$(VERSION)-$$os-$$arch; exe=fungi; \
		[ $$os = windows ] && exe=fungi.exe; \
		mkdir -p dist/$$name; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -tags $(TAGS) -ldflags "-s -w $(LDFLAGS)" -o dist/$$name/$$exe ./cmd/fungi; \
		cp README.md LICENSE* dist/$$name/ 2>/dev/null || true; \
		if [ $$os = windows ]; then (cd dist && zip -qr $$name.zip $$name); \
		else tar -C dist -czf dist/$$name.tar.gz $$name; fi; \
		ls -l dist/$$name/$$exe; rm -rf dist/$$name; \
	done
	cd dist && sha256sum *.tar.gz *.zip > SHA256SUMS && cat SHA256SUMS

# go build for every release pair, and go vet for windows/amd64,
# windows/arm64 and darwin/arm64 (the OSes with files of their own) over
# every package but cmd/fungi, whose tests drive Linux network namespaces;
# linux/amd64 is vetted in full by make test. Run by .ci/run.
CROSSVET_PKGS = $(shell $(GO) list ./... | grep -v '/cmd/fungi$$')
crossbuild:
	set -e; for p in $(DIST_PAIRS); do \
		echo "build $$p"; CGO_ENABLED=0 GOOS=$${p%/*} GOARCH=$${p#*/} $(GO) build -tags $(TAGS) ./...; \
	done
	GOOS=windows GOARCH=amd64 $(GO) vet $(CROSSVET_PKGS)
	GOOS=windows GOARCH=arm64 $(GO) vet $(CROSSVET_PKGS)
	GOOS=darwin GOARCH=arm64 $(GO) vet $(CROSSVET_PKGS)

# The stripped linux/amd64 release binary stays within 30 MB and
# `fungi --version` answers within 20 ms (median); make test runs it too.
size:
	FUNGI_STRICT_TIMING=1 $(GO) test -count=1 -run '^TestReleaseBinary$$' -v ./cmd/fungi

# Regenerates messages/*.pb.go (needs protoc, protoc-gen-go and protoc-gen-go-grpc).
proto:
	cd messages && $(GO) generate

clean:
	rm -rf bin examples/wasm dist
