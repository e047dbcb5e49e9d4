#!/usr/bin/env bash
# slurm/sweep.sbatch as an array job on the local cluster (slurm/cluster.sh),
# with a stand-in for fsnn that records its argv (printf '%s\0') and exits
# with the code its argument fake.exit= asks for on the first start (0 on a
# restart). A hand-written runs.tsv (the sweep directory interface) holds:
#   0  an argument with spaces, quotes, $(...), backquotes, a glob, a
#      backslash and edge spaces: it must arrive byte for byte, unevaluated;
#   1  exit 3 on the first start: requeued, then done on the second;
#   2  exit 1: job.state failed;
#   3  an empty field: exit 1 naming the file, the id and the line;
#   (4 has no row: exit 1 naming the file and the id.)
#   slurm_sweep.sh REPO
set -u
repo=$1
SLURM_CONF=$(bash "$repo/slurm/cluster.sh" conf)
export SLURM_CONF
dir=$(mktemp -d /tmp/fsnn-slurm-sweep.XXXXXX)
jid=
cleanup() {
    [ -n "$jid" ] && scancel "$jid" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT
passed=0 failed=0
check() { if eval "$1"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $2"; fi; }
finish() { echo "slurm_sweep: $passed passed, $failed failed"; [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]; exit $?; }
field() { scontrol -o show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }

fake=$dir/fake-fsnn
cat >"$fake" <<'EOF'
#!/bin/bash
printf '%s\0' "$@" >"$(dirname "$0")/argv.$SLURM_ARRAY_TASK_ID.${SLURM_RESTART_COUNT:-0}"
code=0
for a in "$@"; do
    case "$a" in fake.exit=*) code=${a#fake.exit=} ;; esac
done
[ "${SLURM_RESTART_COUNT:-0}" -eq 0 ] || code=0
echo "fake fsnn: exit $code"
exit "$code"
EOF
chmod +x "$fake"

sweep=$dir/sweep
mkdir -p "$sweep/logs"
cfg=$dir/base.ini
T=$'\t'
# shellcheck disable=SC2016 # the $(...) and `...` are data, never to be run
odd='fake.note= a  "b" '\''c'\'' $(touch '"$dir"'/evaluated) `touch '"$dir"'/evaluated2` * \n ; '
{
    printf 'id\tdir\tconfig\targs\n'
    printf '%s\n' "0${T}$sweep/runs/r0${T}$cfg${T}run.seed=1${T}run.dir=$sweep/runs/r0${T}$odd${T}fake.exit=0"
    printf '%s\n' "1${T}$sweep/runs/r1${T}$cfg${T}run.seed=2${T}run.dir=$sweep/runs/r1${T}fake.exit=3"
    printf '%s\n' "2${T}$sweep/runs/r2${T}$cfg${T}run.seed=3${T}run.dir=$sweep/runs/r2${T}fake.exit=1"
    printf '%s\n' "3${T}$sweep/runs/r3${T}$cfg${T}run.seed=4${T}${T}run.dir=$sweep/runs/r3"
} >"$sweep/runs.tsv"

t0=$SECONDS
jid=$(sbatch --parsable --array=0-4 --output="$sweep/logs/%A_%a.out" --signal=B:USR1@60 \
    --requeue --job-name=fsnn-test-sweep "$repo/slurm/sweep.sbatch" "$fake" "$sweep")
check '[[ "$jid" =~ ^[0-9]+$ ]]' "sbatch printed '$jid', not a job id"
[[ "$jid" =~ ^[0-9]+$ ]] || finish
# Bounded wait for every task to leave the queue (task 1 is requeued once,
# with a 10 s wait before its second start).
for ((i = 0; i < 600; i++)); do
    [ -z "$(squeue -h -r -j "$jid" -o %i 2>/dev/null)" ] && break
    sleep 0.2
done
left=$(squeue -h -r -j "$jid" -o '%i %T' 2>/dev/null)
echo "slurm_sweep: array job $jid ended after $((SECONDS - t0)) s"
check '[ -z "$left" ]' "tasks still queued after 120 s: $left"

for t in 0 1 2 3 4; do
    echo "slurm_sweep: task $t: $(field "${jid}_$t" JobState) exit $(field "${jid}_$t" ExitCode) restarts $(field "${jid}_$t" Restarts)"
done
r=$sweep/runs

# 0: the argv, byte for byte, and nothing evaluated.
printf '%s\0' train "$cfg" run.seed=1 "run.dir=$r/r0" "$odd" fake.exit=0 >"$dir/want0"
check 'cmp -s "$dir/want0" "$dir/argv.0.0"' "task 0: argv differs: $(tr '\0' '|' <"$dir/argv.0.0" 2>&1)"
check '[ ! -e "$dir/evaluated" ] && [ ! -e "$dir/evaluated2" ]' "task 0: an argument was evaluated by a shell"
check 'grep -Eq "^done [0-9]+ ${jid}_0 0\$" "$r/r0/job.state"' "task 0: job.state '$(cat "$r/r0/job.state" 2>&1)'"
check 'grep -q "fake fsnn: exit 0" "$r/r0/train.log"' "task 0: the step's output is not in train.log"

# 1: exit 3, requeued, done on the second start.
check '[ "$(field "${jid}_1" JobState)" = COMPLETED ] && [ "$(field "${jid}_1" Restarts)" = 1 ]' \
    "task 1: $(field "${jid}_1" JobState) with $(field "${jid}_1" Restarts) restarts, want COMPLETED after 1"
check '[ -f "$dir/argv.1.0" ] && [ -f "$dir/argv.1.1" ]' "task 1: did not start twice"
check 'grep -q "exit code 3: checkpoint written; requeueing" "$r/r1/train.log" && grep -q "exit code 0: done" "$r/r1/train.log"' \
    "task 1: train.log lacks the requeue or the end: $(cat "$r/r1/train.log" 2>&1)"
check 'grep -Eq "^done [0-9]+ ${jid}_1 0\$" "$r/r1/job.state"' "task 1: job.state '$(cat "$r/r1/job.state" 2>&1)'"

# 2: exit 1 -> failed.
check '[ "$(field "${jid}_2" ExitCode)" = 1:0 ]' "task 2: exit code $(field "${jid}_2" ExitCode), want 1:0"
check 'grep -Eq "^failed [0-9]+ ${jid}_2 1\$" "$r/r2/job.state"' "task 2: job.state '$(cat "$r/r2/job.state" 2>&1)'"

# 3, 4: a malformed row and a missing row: exit 1, a message naming file and id, no run started.
log3=$sweep/logs/${jid}_3.out log4=$sweep/logs/${jid}_4.out
check '[ "$(field "${jid}_3" ExitCode)" = 1:0 ]' "task 3: exit code $(field "${jid}_3" ExitCode), want 1:0"
check 'grep -q "error: $sweep/runs.tsv: row id 3: line 5 has an empty field" "$log3"' "task 3: message: $(cat "$log3" 2>&1)"
check '[ ! -e "$r/r3" ] && [ ! -e "$dir/argv.3.0" ]' "task 3: a run was started from a malformed row"
check '[ "$(field "${jid}_4" ExitCode)" = 1:0 ]' "task 4: exit code $(field "${jid}_4" ExitCode), want 1:0"
check 'grep -q "error: $sweep/runs.tsv: row id 4: no such row (the file lists 4 runs" "$log4"' "task 4: message: $(cat "$log4" 2>&1)"
finish
