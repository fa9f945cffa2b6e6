#!/usr/bin/env bash
# Every benchmark, each against its peers in the same run; each prints its own table
# with ratios. Needs root (namespaces). Results and how to read them: docs/benchmarks.md.
# Run one alone, with its own options: node --import tsx bench/<name>.ts
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "npm run bench: run as root (network namespaces)" >&2; exit 1; }
bash test/install-peers.sh
npm run build --silent
status=0
for b in bench/*.ts; do
  echo "=== $b"
  node --import tsx "$b" || status=$?
done
exit $status
