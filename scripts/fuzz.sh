#!/usr/bin/env bash
# Runs every fuzz target of the module for FUZZTIME each (default 5s), one
# after another, and fails if any finds a crasher. go test writes a crasher
# to its package's testdata/fuzz/<Target>/: commit it with the fix, and it
# runs as a regression case in every plain `go test` from then on.
#
#   ./scripts/fuzz.sh                    every target, 5s each
#   FUZZTIME=1m ./scripts/fuzz.sh Auth   targets whose name contains "Auth"
set -uo pipefail
cd "$(dirname "$0")/.."
fuzztime="${FUZZTIME:-5s}"
filter="${1:-}"

# fuzz_one runs one target. The go command sometimes ends a run with just
# "context deadline exceeded" when -fuzztime runs out while it is still
# minimizing a new interesting input: no failing input is written, nothing
# was found. Such a run is repeated once; a real failure always writes
# its input to testdata/fuzz and fails the script.
fuzz_one() {
	local pkg=$1 target=$2 out attempt
	for attempt in 1 2; do
		out=$(go test -run '^$' -fuzz "^${2}\$" -fuzztime "$fuzztime" "$pkg" 2>&1)
		local status=$?
		echo "$out"
		[ "$status" -eq 0 ] && return 0
		if grep -q "Failing input written" <<<"$out" || ! grep -q "context deadline exceeded" <<<"$out"; then
			return 1
		fi
		echo "==> $target: the go command stopped while minimizing, with no failing input; running it again"
	done
	return 1
}

failed=()
count=0
# Targets are found, not listed, so that a new Fuzz function is run too.
while IFS= read -r file; do
	pkg="./$(dirname "$file")"
	for target in $(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$file"); do
		[[ -n "$filter" && "$target" != *"$filter"* ]] && continue
		count=$((count + 1))
		echo "==> $pkg $target ($fuzztime)"
		if ! fuzz_one "$pkg" "$target"; then
			failed+=("$pkg $target")
		fi
	done
done < <(find . -name node_modules -prune -o -name '*_test.go' -print | sed 's|^\./||' | sort | xargs grep -l '^func Fuzz')

echo "==> $count fuzz targets run"
if [ "${#failed[@]}" -gt 0 ]; then
	printf 'fuzzing found a failure in: %s\n' "${failed[@]}" >&2
	exit 1
fi
