#!/usr/bin/env bash
# The whole suite: type check, unit tests, integration tests with real peers in
# network namespaces, and the lab boots (qemu, real firmware). Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsc -p tsconfig.json --noEmit
node --import tsx --test test/unit/*.test.ts
node --import tsx --test --test-concurrency=1 test/integration/*.test.ts
node --import tsx --test --test-concurrency=1 test/lab/*.test.ts
