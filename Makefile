# The two commands a newcomer needs: `make run` and `make test`.
GO          ?= go
BIN         := bin
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# What `azen-gateway version` and `azen-backend version` print: the nearest
# tag (dev without one) and the commit, from git; override with
# `make build VERSION=v1.2.0`.
VERSION     ?= $(shell git describe --tags --dirty 2>/dev/null || echo dev)
COMMIT      ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)$(shell git diff --quiet HEAD 2>/dev/null || echo +modified)
LDFLAGS     := -X github.com/azen-sh/gateway/internal/version.Version=$(VERSION) \
               -X github.com/azen-sh/gateway/internal/version.Commit=$(COMMIT)

.PHONY: all build run test deps lint unit bench fuzz clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/azen-gateway ./gateway
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/azen-backend ./backend

## run: the whole system on the embedded default (SQLite file, in-process limiter).
run: build
	./scripts/dev-run.sh

## test: installs missing redis-server/postgresql/chromium (as root on Debian), then lints and runs every test.
test: deps lint
	$(GO) test -race -count=1 -timeout 20m ./...

deps:
	./scripts/install-deps.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

## bench: Go benchmarks and the gateway throughput script.
bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./...
	./scripts/bench-gateway.sh

clean:
	rm -rf $(BIN) .dev
