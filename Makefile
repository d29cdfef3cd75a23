# Keybrake — build, run and test.
# Pinned tool versions: the custom Caddy binary is reproducible.
XCADDY_VERSION ?= v0.4.5
CADDY_VERSION  ?= v2.11.9
GO             ?= go
# XCADDY_WITH adds other plugins to bin/caddy, e.g.
#   make build XCADDY_WITH="--with github.com/mholt/caddy-l4"
XCADDY_WITH    ?=

.PHONY: build run test test-unit demo bench bench-scale check-examples clean

## build: the custom Caddy with every Keybrake module, at bin/caddy
# xcaddy asks the module proxy for the newest version of every plugin, even a
# local one it then replaces; a proxy that answers "forbidden" rather than
# "not found" for an unpublished module stops the build. An empty local
# file proxy in front answers "no versions" so the local replacement is used.
LOCAL_PROXY := $(CURDIR)/bin/goproxy
# bin/caddy is rebuilt only when a Go source, an embedded file (the UI, the
# ledger's migrations), go.mod or go.sum is newer, or XCADDY_WITH changed.
GO_SOURCES := $(shell find . -name '*.go' -not -path './bin/*' -not -name '*_test.go' 2>/dev/null) \
	$(shell find . -name '*.sql' -path '*migrations*' -not -path './bin/*' 2>/dev/null) \
	$(wildcard keyapi/ui/*) go.mod go.sum
# bin/.xcaddy-with holds the XCADDY_WITH of the last build: it is rewritten
# (when make reads this file, so `make -n` tells the truth) only when the
# value changes, so another XCADDY_WITH rebuilds bin/caddy. A bin/caddy from
# before the stamp existed is taken as a build without XCADDY_WITH.
XCADDY_STAMP := bin/.xcaddy-with
$(shell mkdir -p bin; \
	if [ ! -e $(XCADDY_STAMP) ] && [ -z '$(XCADDY_WITH)' ] && [ -e bin/caddy ]; then \
		printf '\n' > $(XCADDY_STAMP) && touch -r bin/caddy $(XCADDY_STAMP); \
	elif ! printf '%s\n' '$(XCADDY_WITH)' | cmp -s - $(XCADDY_STAMP); then \
		printf '%s\n' '$(XCADDY_WITH)' > $(XCADDY_STAMP); \
	fi)
build: bin/caddy
bin/caddy: $(GO_SOURCES) $(XCADDY_STAMP)
	@mkdir -p bin $(LOCAL_PROXY)/github.com/keybrake/keybrake/@v
	@: > $(LOCAL_PROXY)/github.com/keybrake/keybrake/@v/list
	@echo "Building bin/caddy: Caddy $(CADDY_VERSION) with the Keybrake modules (xcaddy)."
	@echo "The first build downloads and compiles Caddy: a few minutes, once. Later runs reuse"
	@echo "bin/caddy and rebuild only after a Go source changes. Build log: bin/build.log"
	@GOPROXY="file://$(LOCAL_PROXY),$$($(GO) env GOPROXY)" GONOSUMDB=github.com/keybrake/keybrake GOFLAGS=-mod=mod \
		$(GO) run github.com/caddyserver/xcaddy/cmd/xcaddy@$(XCADDY_VERSION) \
		build $(CADDY_VERSION) --output bin/caddy --with github.com/keybrake/keybrake=. $(XCADDY_WITH) >bin/build.log 2>&1 \
		|| { tail -n 40 bin/build.log; echo "build failed: the whole log is in bin/build.log" >&2; exit 1; }
	@bin/caddy list-modules | grep -E '^(keybrake|http\.handlers\.keybrake)' | sed 's/^/  module: /'
	@touch bin/caddy

## run: Keybrake on the embedded ledger, with Caddyfile.example
run: bin/caddy
	@scripts/run.sh

## test: the whole suite; starts Postgres and stripe-mock on loopback itself
test:
	@scripts/test.sh

## test-unit: unit tests only, no services
test-unit:
	$(GO) test ./...

## demo: the fan-out story, end to end, against stripe-mock
demo: bin/caddy
	@scripts/demo.sh

## bench: Keybrake's gate against a plain reverse_proxy, side by side
bench: bin/caddy
	@scripts/bench.sh
	@if [ -n "$(BENCH_SCALE_SIZES)" ]; then scripts/bench-scale.sh; fi

## bench-scale: spend throughput and read latencies on ledgers seeded to 0, 1M and 10M calls (docs/ledger.md)
bench-scale: bin/caddy
	@scripts/bench-scale.sh

check-examples:
	bash examples/windmill/check.sh

## clean: removes the build output (bin/); the ledger keybrake.db is kept.
## Delete it yourself (keybrake.db, -wal, -shm) to start with an empty one.
clean:
	rm -rf bin
