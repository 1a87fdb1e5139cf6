# The targets a newcomer looks for. `make test` is the README's test command:
# on a fresh machine it installs what the tests need, then runs them all.

GO ?= go

.PHONY: run build test test-go deps lint bench fmt

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

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
