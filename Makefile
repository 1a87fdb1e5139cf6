# The targets a newcomer looks for. `make test` is the README's test command:
# on a fresh machine it installs what the tests need, then runs them all.

GO ?= go

.PHONY: run build test deps lint bench bench-smoke bench-micro

run:
	$(GO) run ./cmd/todo-api

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o todo-api ./cmd/todo-api

test:
	./scripts/test.sh

deps:
	./scripts/test.sh --deps-only

lint:
	test -z "$$(gofmt -l .)" || (gofmt -l . && exit 1)
	$(GO) vet ./...

# The load benchmark (issue 5): starts todo-api on fresh SQLite and
# PostgreSQL databases and prints a Markdown report for the README. It
# needs a PostgreSQL server (BENCH_DATABASE_URL, default the local one) in
# which it creates and drops a database of its own. BENCH_FLAGS adds
# options, e.g. BENCH_FLAGS='-engine sqlite -d 20s'; see
# `go run ./cmd/todo-bench -h`.
bench:
	$(GO) run ./cmd/todo-bench $(BENCH_FLAGS)

# The same in a few seconds with tiny sizes; fails on any error.
bench-smoke:
	$(GO) run ./cmd/todo-bench -smoke $(BENCH_FLAGS)

# Go micro-benchmarks of the hot paths (token check, task encoding, store
# calls), with allocations.
bench-micro:
	$(GO) test -run '^$$' -bench . -benchmem ./...
