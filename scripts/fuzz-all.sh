#!/usr/bin/env bash
# Runs every fuzz target of the module for a fixed time each and writes
# the executions each ran to docs/reliability/fuzz.json (make fuzz-all).
# Usage: scripts/fuzz-all.sh [FUZZTIME]   (default 30s)
set -euo pipefail
cd "$(dirname "$0")/.."
budget="${1:-30s}"
out="docs/reliability/fuzz.json"
tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
entries=()
total=0
for pkg in $(go list ./...); do
  for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    echo "== $pkg $target ($budget)" >&2
    # New inputs are minimised for at most 5 s, so the budget goes to
    # fuzzing; executions spent minimising are not counted.
    if ! go test -run='^$' -fuzz="^${target}\$" -fuzztime="$budget" -fuzzminimizetime=5s "$pkg" >"$tmp" 2>&1; then
      cat "$tmp" >&2
      echo "fuzz-all: $pkg $target failed; its crasher is in the package's testdata/fuzz/" >&2
      exit 1
    fi
    execs="$(grep -o 'execs: [0-9]*' "$tmp" | tail -1 | grep -o '[0-9]*' || echo 0)"
    echo "   $execs execs" >&2
    total=$((total + execs))
    entries+=("    {\"package\": \"${pkg}\", \"target\": \"${target}\", \"execs\": ${execs}}")
  done
done
{
  echo "{"
  echo "  \"fuzztime_per_target\": \"${budget}\","
  echo "  \"go_version\": \"$(go env GOVERSION)\","
  echo "  \"total_execs\": ${total},"
  echo "  \"targets\": ["
  for i in "${!entries[@]}"; do
    if ((i + 1 < ${#entries[@]})); then echo "${entries[$i]},"; else echo "${entries[$i]}"; fi
  done
  echo "  ]"
  echo "}"
} >"$out"
echo "fuzz-all: ${#entries[@]} targets, ${total} execs; wrote $out" >&2
