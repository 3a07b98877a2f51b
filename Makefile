# careflow — see README.md. Every target works on a fresh clone.
GO       ?= go
BIN      := bin/careflow
PKGS     := ./...
BENCHTIME ?= 2s

.PHONY: all build run test bench bench-http lint fmt clean

all: lint test build

build:
	$(GO) build -o $(BIN) ./cmd/careflow

# Starts the real service on the embedded SQLite store (./data/careflow.db).
run: build
	./$(BIN) serve --demo

# Every test, with the race detector. PostgreSQL tests read
# CAREFLOW_TEST_POSTGRES_URL (.ci/run provides one).
test:
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

# Go benchmarks for every backend (no race detector: it distorts timings).
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -timeout 60m $(PKGS)

# The HTTP load harness against a fresh `serve --demo` per run (Linux):
# commands only, then mostly reads. scripts/bench-http.sh also compares two
# builds, alternating them.
bench-http: build
	scripts/bench-http.sh -n 3 -r 0 $(BIN)
	scripts/bench-http.sh -n 3 -r 200 $(BIN)

lint:
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
