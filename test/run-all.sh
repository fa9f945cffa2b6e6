#!/usr/bin/env bash
# The whole suite: type check, unit tests, integration tests with real peers in
# network namespaces, and the lab boots (qemu, real firmware). Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "npm test: run as root (network namespaces, qemu taps)" >&2; exit 1; }
bash test/install-peers.sh
[ -d node_modules ] && [ -f native/build/Release/kaboot_native.node ] || npm ci --no-fund --no-audit
npx tsc -p tsconfig.json --noEmit
npm run build --silent
node --import tsx --test test/unit/*.test.ts
node --import tsx --test --test-concurrency=1 test/integration/*.test.ts
node --import tsx --test --test-concurrency=1 test/lab/*.test.ts
