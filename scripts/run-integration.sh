#!/usr/bin/env bash
# run-integration.sh PATH/TO/phoenix
#
# Runs the integration suite (tests/integration/*.test.mjs, Node's built-in test runner) against
# the given phoenix binary, two test files at a time, and prints node's TAP summary
# ("# pass N", "# fail N"). Installs the examples' npm packages first if they are missing.
#
# Exit status: 0 every test passed, 1 a test failed, 2 usage error.
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 PATH/TO/phoenix" >&2
  exit 2
fi
if [ ! -x "$1" ] || [ -d "$1" ]; then
  echo "run-integration: $1 is not an executable file (build it: cmake --build build --target phoenix)" >&2
  exit 2
fi
PHOENIX_BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
export PHOENIX_BIN

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

command -v node >/dev/null || { echo "run-integration: node not found (Node.js 20 or later)" >&2; exit 2; }
command -v redis-server >/dev/null || { echo "run-integration: redis-server not found (scripts/install-deps.sh installs it)" >&2; exit 2; }

# The example apps' packages, only when they are missing (install-deps.sh runs `npm ci` there).
for d in examples/photos-stateful examples/photos-stateless tests/integration/apps/audit-express; do
  if [ ! -d "$d/node_modules" ]; then
    scripts/install-deps.sh
    break
  fi
done

# TAP on stdout whatever the terminal, so the summary always reads "# pass N" / "# fail N".
exec node --test --test-concurrency=2 --test-reporter=tap tests/integration/
