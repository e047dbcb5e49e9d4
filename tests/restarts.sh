#!/usr/bin/env bash
# The restarts column: SLURM_RESTART_COUNT (how often SLURM requeued the job)
# is recorded in every metrics.csv row, 0 without it; a value that is not a
# non-negative integer stops fsnn with exit code 1 and a message naming it.
#   restarts.sh FSNN REPO
set -u
fsnn=$1 repo=$2
dir=$(mktemp -d /tmp/fsnn-restarts.XXXXXX)
trap 'rm -rf "$dir"' EXIT
passed=0 failed=0
check() { if eval "$1"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $2"; fi; }
args=("$repo/configs/demo.ini" "data.path=$repo/data/fashion-mnist" data.train_limit=64
    data.test_limit=50 train.epochs=2 run.threads=1 run.progress=plain)
# The restarts column of every row of metrics.csv, space-separated.
col() { awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next } { printf "%s ", $c["restarts"] }' "$1/metrics.csv" 2>/dev/null; }

(unset SLURM_RESTART_COUNT; "$fsnn" train "${args[@]}" "run.dir=$dir/none" >"$dir/none.log" 2>&1)
check '[ "$(col "$dir/none")" = "0 0 " ]' "without SLURM_RESTART_COUNT: restarts '$(col "$dir/none")', want '0 0 ': $(tail -n 2 "$dir/none.log")"
SLURM_RESTART_COUNT=7 "$fsnn" train "${args[@]}" "run.dir=$dir/seven" >"$dir/seven.log" 2>&1
check '[ "$(col "$dir/seven")" = "7 7 " ]' "SLURM_RESTART_COUNT=7: restarts '$(col "$dir/seven")', want '7 7 ': $(tail -n 2 "$dir/seven.log")"
# The history in the checkpoint carries the column: a resume with a new
# count keeps the old rows and writes the new count into the new ones.
SLURM_RESTART_COUNT=1 "$fsnn" train "${args[@]}" "run.dir=$dir/seven" train.epochs=3 >>"$dir/seven.log" 2>&1
check '[ "$(col "$dir/seven")" = "7 7 1 " ]' "resumed with SLURM_RESTART_COUNT=1: restarts '$(col "$dir/seven")', want '7 7 1 '"
for bad in -1 x 2x "" 99999999999999999999999; do
    SLURM_RESTART_COUNT=$bad "$fsnn" train "${args[@]}" "run.dir=$dir/bad" >/dev/null 2>"$dir/bad.err"
    rc=$?
    check '[ "$rc" -eq 1 ] && grep -q "SLURM_RESTART_COUNT=.*is not a non-negative integer" "$dir/bad.err"' \
        "SLURM_RESTART_COUNT='$bad': exit code $rc, stderr: $(cat "$dir/bad.err")"
    check '[ ! -e "$dir/bad" ]' "SLURM_RESTART_COUNT='$bad' left a run directory"
done
echo "restarts: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
