#!/usr/bin/env bash
# Runs the whole test suite. On a fresh machine it first installs what the
# tests need: the Better Auth fixture's npm packages. PostgreSQL comes from
# TEST_DATABASE_URL when set, else the tests start a throwaway cluster from
# the installed PostgreSQL binaries.
set -euo pipefail
cd "$(dirname "$0")/.."

# npm fixtures: a real Better Auth (jwt tests) and Playwright for the /docs
# browser test (it drives Debian's chromium; nothing is downloaded).
for fixture in jwt/testdata/betterauth http/testdata/browser; do
	[ -f "$fixture/package-lock.json" ] && command -v npm >/dev/null || continue
	if [ ! -d "$fixture/node_modules" ] || [ "$fixture/package-lock.json" -nt "$fixture/node_modules/.package-lock.json" ]; then
		echo "==> npm ci in $fixture"
		# better-sqlite3 compiles against the local Node headers: no download.
		[ -d /usr/include/node ] && export npm_config_nodedir=/usr
		(cd "$fixture" && npm ci --no-audit --no-fund --loglevel=error)
	fi
done
[ "${1:-}" = "--deps-only" ] && exit 0

echo "==> gofmt and go vet"
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
	echo "gofmt wants to change: $unformatted" >&2
	exit 1
fi
go vet ./...

echo "==> go test"
go test -count=1 -timeout 20m "$@" ./...
