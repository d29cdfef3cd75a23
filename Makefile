# Keybrake — build, run and test.
# Pinned tool versions: the custom Caddy binary is reproducible.
XCADDY_VERSION ?= v0.4.5
CADDY_VERSION  ?= v2.11.9
GO             ?= go

.PHONY: build run test test-unit demo bench check-examples clean

## build: the custom Caddy with every Keybrake module, at bin/caddy
# xcaddy asks the module proxy for the newest version of every plugin, even a
# local one it then replaces; a proxy that answers "forbidden" rather than
# "not found" for an unpublished module stops the build. An empty local
# file proxy in front answers "no versions" so the local replacement is used.
LOCAL_PROXY := $(CURDIR)/bin/goproxy
build:
	@mkdir -p bin $(LOCAL_PROXY)/github.com/keybrake/keybrake/@v
	@: > $(LOCAL_PROXY)/github.com/keybrake/keybrake/@v/list
	GOPROXY="file://$(LOCAL_PROXY),$$($(GO) env GOPROXY)" GONOSUMDB=github.com/keybrake/keybrake GOFLAGS=-mod=mod \
		$(GO) run github.com/caddyserver/xcaddy/cmd/xcaddy@$(XCADDY_VERSION) \
		build $(CADDY_VERSION) --output bin/caddy --with github.com/keybrake/keybrake=.
	@bin/caddy list-modules | grep -E '^(keybrake|http\.handlers\.keybrake)' 

## run: Keybrake on the embedded ledger, with Caddyfile.example
run: build
	@scripts/run.sh

## test: the whole suite; starts Postgres and stripe-mock on loopback itself
test:
	@scripts/test.sh

## test-unit: unit tests only, no services
test-unit:
	$(GO) test ./...

## demo: the fan-out story, end to end, against stripe-mock
demo: build
	@scripts/demo.sh

## bench: Keybrake's gate against a plain reverse_proxy, side by side
bench: build
	@scripts/bench.sh

check-examples:
	bash examples/windmill/check.sh

clean:
	rm -rf bin keybrake.db keybrake.db-wal keybrake.db-shm
