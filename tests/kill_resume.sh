#!/usr/bin/env bash
# Faults end to end (the Fashion-MNIST net at T = 60 so that a run lasts some
# seconds, 1,920 samples, 3 epochs of 15 steps, a checkpoint every 4 steps):
#   1. SIGKILL at a random moment, then the same command: it resumes from the
#      last checkpoint and ends with the weights of an uninterrupted run;
#   2. SIGUSR1 (SLURM's warning) and SIGTERM: the run checkpoints at the next
#      step, exits with code 3 (resumable), and the same command finishes
#      with the same weights;
#   3. the interrupted run resumed with 2 ranks instead of 1: the same weights
#      (deterministic mode);
#   4. a damaged latest checkpoint: the resume falls back to the previous one
#      and still ends with the same weights.
#   kill_resume.sh FSNN REPO MPIEXEC
set -u
fsnn=$1 repo=$2 mpiexec=$3
dir=$(mktemp -d /tmp/fsnn-kill.XXXXXX)
trap 'rm -rf "$dir"' EXIT
passed=0 failed=0
check() { if eval "$1"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $2"; fi; }
args=("$repo/configs/fmnist_fc_lif.ini" "data.path=$repo/data/fashion-mnist" data.train_limit=1920
    data.test_limit=200 train.epochs=3 model.time_steps=60 checkpoint.every_steps=4
    run.progress=plain run.threads=1)
sha() { "$fsnn" inspect "$1/checkpoint.h5" 2>/dev/null | sed -n 's/^weights_sha256 //p'; }
train() { local d=$1; shift; "$@" "$fsnn" train "${args[@]}" "run.dir=$d" >>"$d.log" 2>&1; }
# Starts fsnn itself in the background (no subshell between, so that signals
# reach it) and waits until `file` appears in its run directory.
start() {
    local d=$1 file=$2
    "$fsnn" train "${args[@]}" "run.dir=$d" >>"$d.log" 2>&1 &
    pid=$!
    for _ in $(seq 600); do [ -f "$d/$file" ] && return; sleep 0.05; done
}

train "$dir/ref"
ref=$(sha "$dir/ref")
echo "kill_resume: uninterrupted weights_sha256 $ref"
check '[ -n "$ref" ]' "the uninterrupted run left no checkpoint"

# 1. SIGKILL after a random delay once the first checkpoint exists.
start "$dir/kill" checkpoint.h5
sleep "0.$((RANDOM % 9 + 1))"
kill -KILL "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
kill_at=$("$fsnn" inspect "$dir/kill/checkpoint.h5" 2>/dev/null | head -n 1)
echo "kill_resume: killed at: $kill_at"
check '! grep -q "epoch 3 finished" <<<"$kill_at"' "the run had finished before the kill"
train "$dir/kill"
check '[ "$(sha "$dir/kill")" = "$ref" ]' "resumed after SIGKILL: $(sha "$dir/kill") != $ref"
check 'grep -q "resuming from" "$dir/kill.log"' "the second start did not resume"
check '[ "$(wc -l < "$dir/kill/metrics.csv")" -eq 4 ]' "metrics.csv has $(wc -l < "$dir/kill/metrics.csv") lines, want header + 3"

# 2. SIGUSR1 and SIGTERM: clean stop with exit code 3.
start "$dir/term" checkpoint.h5
kill -USR1 "$pid"
wait "$pid"
rc=$?
check '[ "$rc" -eq 3 ]' "SIGUSR1: exit code $rc, want 3"
check 'grep -q "signal 10: checkpoint written" "$dir/term.log"' "SIGUSR1: no checkpoint message"
start "$dir/term15" checkpoint.h5
kill -TERM "$pid"
wait "$pid"
rc=$?
check '[ "$rc" -eq 3 ]' "SIGTERM: exit code $rc, want 3"
check 'grep -q "signal 15: checkpoint written" "$dir/term15.log"' "SIGTERM: no checkpoint message"
train "$dir/term15"
check '[ "$(sha "$dir/term15")" = "$ref" ]' "resumed after SIGTERM: $(sha "$dir/term15") != $ref"

# 3. ... resumed with two ranks.
train "$dir/term" "$mpiexec" -np 2 --oversubscribe
check '[ "$(sha "$dir/term")" = "$ref" ]' "resumed with 2 ranks: $(sha "$dir/term") != $ref"

# 4. A damaged latest checkpoint: flip bytes in the middle of it.
start "$dir/bad" checkpoint.prev.h5
kill -KILL "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
size=$(stat -c %s "$dir/bad/checkpoint.h5")
printf '\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8' | dd of="$dir/bad/checkpoint.h5" bs=1 seek=$((size / 2)) conv=notrunc status=none
train "$dir/bad"
check 'grep -q "skipped the latest checkpoint" "$dir/bad.log"' "no fallback message: $(grep -i checkpoint "$dir/bad.log" | head -n 2)"
check '[ "$(sha "$dir/bad")" = "$ref" ]' "after the fallback: $(sha "$dir/bad") != $ref"

echo "kill_resume: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
