#!/usr/bin/env bash
# govulncheck over every package of the module (make vulncheck, CI): exits
# non-zero on any reachable finding. It uses vuln.go.dev when that answers;
# where it does not (this workplace reaches only the package registries),
# it builds the same database from the reports of golang.org/x/vulndb, the
# newest commit that the Go module proxy serves, with that repository's own
# indexdb command, and says which commit it used.
# With VULNCHECK_FIGURES set, it writes what it checked to that file
# (make vulncheck-figures, for docs/RELIABILITY.md).
# Usage: scripts/vulncheck.sh [GOVULNCHECK_VERSION]
set -euo pipefail
cd "$(dirname "$0")/.."
ver="${1:-v1.9.0}"
db="https://vuln.go.dev"
source="vuln.go.dev"
if ! (command -v curl >/dev/null && curl -fsS -m 10 -o /dev/null "$db/index/db.json.gz") 2>/dev/null; then
  info="$(go mod download -json golang.org/x/vulndb@latest)"
  dir="$(sed -n 's/^\t"Dir": "\(.*\)",$/\1/p' <<<"$info")"
  version="$(sed -n 's/^\t"Version": "\(.*\)",$/\1/p' <<<"$info")"
  [[ -d "$dir/data/osv" ]] || { echo "vulncheck: golang.org/x/vulndb has no data/osv" >&2; exit 1; }
  out="$(mktemp -d)"
  trap 'rm -rf "$out"' EXIT
  go run "golang.org/x/vulndb/cmd/indexdb@${version}" -vulns "$dir/data/osv" -out "$out"
  db="file://$out"
  source="golang.org/x/vulndb@${version} through the Go module proxy ($(ls "$dir/data/osv" | wc -l) reports)"
  echo "vulncheck: vuln.go.dev does not answer; database of golang.org/x/vulndb@${version} ($(ls "$dir/data/osv" | wc -l) reports)" >&2
fi
echo "vulncheck: $(go env GOVERSION), govulncheck ${ver}" >&2
go run "golang.org/x/vuln/cmd/govulncheck@${ver}" -db "$db" ./...
if [[ -n "${VULNCHECK_FIGURES:-}" ]]; then
  cat >"$VULNCHECK_FIGURES" <<JSON
{
  "go_version": "$(go env GOVERSION)",
  "govulncheck": "${ver}",
  "database": "${source}",
  "packages": $(go list ./... | wc -l),
  "reachable_findings": 0
}
JSON
fi
