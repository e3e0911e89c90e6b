# One pass/fail convention for the shell checks that drive namespaces, links and containers
# (cluster/fault-matrix.sh, docker/test.sh): sourced, not run. The judging itself is done by
# programs (gan verify, gan compare, cluster/runcheck.py); these functions only count and print.
#
#   verdicts_init NAME            the check's name: the prefix of every line
#   verdict PASS|FAIL|SKIP TEXT   one line "NAME:   PASS  TEXT", counted
#   verdicts_summary              the last line, "NAME: P passed, F failed, S skipped"; returns 1
#                                 when any failed (scripts/test.sh reads the exit status: 0 passed,
#                                 77 skipped, anything else failed)

verdicts_init() { VERDICTS_NAME="$1"; VERDICTS_PASSED=0; VERDICTS_FAILED=0; VERDICTS_SKIPPED=0; }

verdict() {
    local outcome="$1"; shift
    case "$outcome" in
        PASS) VERDICTS_PASSED=$((VERDICTS_PASSED + 1)) ;;
        FAIL) VERDICTS_FAILED=$((VERDICTS_FAILED + 1)) ;;
        SKIP) VERDICTS_SKIPPED=$((VERDICTS_SKIPPED + 1)) ;;
        *) echo "verdicts: unknown outcome '$outcome' (PASS, FAIL or SKIP)" >&2; VERDICTS_FAILED=$((VERDICTS_FAILED + 1)) ;;
    esac
    printf '%s:   %-4s  %s\n' "$VERDICTS_NAME" "$outcome" "$*"
}

verdicts_summary() {
    echo "$VERDICTS_NAME: $VERDICTS_PASSED passed, $VERDICTS_FAILED failed, $VERDICTS_SKIPPED skipped"
    [ "$VERDICTS_FAILED" = 0 ]
}
