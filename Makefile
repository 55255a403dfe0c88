# redisbot: `make test` sets up what it needs on a fresh Debian machine with
# Go (redis-server from the package manager) and runs vet and the race-enabled
# tests; `make demo` diagnoses a throwaway, really fragmented redis-server.
GO ?= go
BIN := bin/redisbot
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: all build test vet demo bench fuzz redis-server clean

all: build

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/redisbot

# Integration tests start their own redis-server processes: it must be on
# PATH. Missing, it is installed with apt-get; a machine without apt-get gets
# a clear message and a failed run, never skipped tests.
redis-server:
	@if ! command -v redis-server >/dev/null 2>&1; then \
		echo "redis-server not found: installing it with apt-get"; \
		if ! command -v apt-get >/dev/null 2>&1; then \
			echo "error: no apt-get on this machine; install redis-server (>= 6.2) with your package manager" >&2; exit 1; \
		fi; \
		SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO="sudo"; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends redis-server >/dev/null || { \
			echo "error: apt-get install redis-server failed" >&2; exit 1; }; \
	fi
	@redis-server --version

vet:
	$(GO) vet ./...

# cmd/redisbot alone takes 6.5-7 minutes under -race on 2 cores, close to
# go test's default 10-minute limit per package on a loaded machine: a
# slow run must fail as slow only well past that, and a hang still ends.
test: redis-server vet
	$(GO) test -race -count=1 -timeout 20m ./...

demo: redis-server build
	$(GO) run ./cmd/redisbot-demo -redisbot $(BIN)

# The Go benchmarks, then the peak RSS of `fleet --json` over 1,000 fake
# instances with and without hostile ones and over 10,000, then issue 18's
# alert storm beside its baseline, then serve's sweep over 10,000 instances
# with issue 18's faults beside its baseline (docs/benchmarks.md).
bench: redis-server
	$(GO) test -run '^$$' -bench . -benchmem ./...
	GO=$(GO) scripts/bench-hostile-fleet.sh
	GO=$(GO) scripts/bench-fleet-10k.sh
	GO=$(GO) scripts/bench-alert-storm.sh
	GO=$(GO) scripts/bench-sweep-faults.sh

fuzz:
	$(GO) test ./handlers -run '^$$' -fuzz FuzzParseInfo -fuzztime 30s
	$(GO) test ./handlers -run '^$$' -fuzz FuzzReadMention -fuzztime 30s
	$(GO) test ./cmd/redisbot/config -run '^$$' -fuzz FuzzLoad -fuzztime 30s
	$(GO) test ./bot/alertmanager -run '^$$' -fuzz FuzzWebhook -fuzztime 30s

clean:
	rm -rf bin
