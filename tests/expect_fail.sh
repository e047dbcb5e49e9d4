#!/usr/bin/env bash
# expect_fail CODE PATTERN CMD...: runs CMD, passes only if it exits with CODE
# and its standard error matches the extended regex PATTERN. Used to check
# that bad input ends in a clear message and a non-zero exit, never a crash.
set -u
want=$1 pattern=$2
shift 2
err=$(mktemp)
trap 'rm -f "$err"' EXIT
"$@" >/dev/null 2>"$err"
got=$?
fails=0
if [ "$got" -ne "$want" ]; then
    echo "FAILED: exit code $got, expected $want: $*"
    fails=1
fi
if ! grep -Eq -- "$pattern" "$err"; then
    echo "FAILED: stderr does not match /$pattern/:"
    sed 's/^/  | /' "$err"
    fails=$((fails + 1))
fi
echo "expect_fail: $((2 - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
