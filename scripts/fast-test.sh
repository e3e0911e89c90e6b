#!/usr/bin/env bash
# The fast suite alone (every test class not listed in Tests/slow-classes.txt): under 2 minutes
# on 2 cores once built. For working on the code; scripts/test.sh runs it and the slow suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/suites.sh
swift build --build-tests 2>&1 | tail -n 3
swift test --skip DefaultRecipeTests --skip "$SLOW_FILTER"
