# Sourced by scripts/test.sh and scripts/fast-test.sh: the swift test filters of the two suites,
# from Tests/slow-classes.txt (the one list of the slow suite's classes).
slow_classes=$(grep -v '^#' "$(dirname "${BASH_SOURCE[0]}")/../Tests/slow-classes.txt" | grep -v '^\s*$' | paste -sd'|')
# A class is matched as ".Class/" in swift test's "Module.Class/test" names.
SLOW_FILTER="\\.(${slow_classes})/"
# A listed class that no longer exists would silently leave the slow suite: refuse it.
for c in ${slow_classes//|/ }; do
    grep -rqE "(class|extension) $c\b" "$(dirname "${BASH_SOURCE[0]}")/../Tests" \
        || { echo "suites: Tests/slow-classes.txt names $c, which no test file defines" >&2; exit 1; }
done
