#!/usr/bin/env bash
# Preemption under SLURM end to end (the local cluster of slurm/cluster.sh):
# slurm/train.sbatch with 2 ranks (srun --mpi=pmix) on the Fashion-MNIST net
# at T = 60 (1,280 samples, 3 epochs of 10 steps, a checkpoint every 2
# steps) is interrupted once its first checkpoint exists,
#   1. by `scancel --signal=USR1 --batch` (what --signal=B:USR1@secs sends
#      before a time limit): the batch shell passes it on, fsnn checkpoints
#      and exits 3, the script requeues the job;
#   2. by `scontrol requeue` (SLURM ends the job with SIGTERM and requeues it);
#   3. by `scancel`: the run checkpoints, the job stays cancelled, and the
#      same command submitted again resumes the run;
# each time the requeued job must resume ("resuming from", restarts > 0 in
# metrics.csv), end with job.state "done" and the weights_sha256 of an
# uninterrupted `mpirun -np 2` run.
#   slurm_preempt.sh FSNN REPO MPIEXEC
set -u
fsnn=$1 repo=$2 mpiexec=$3
SLURM_CONF=$(bash "$repo/slurm/cluster.sh" conf)
export SLURM_CONF
dir=$(mktemp -d /tmp/fsnn-slurm-preempt.XXXXXX)
jobs=()
cleanup() {
    [ "${#jobs[@]}" -gt 0 ] && scancel "${jobs[@]}" 2>/dev/null
    [ "${ref_pid:-0}" -gt 0 ] && kill "$ref_pid" 2>/dev/null && wait "$ref_pid"
    rm -rf "$dir"
}
trap cleanup EXIT
passed=0 failed=0
check() { if eval "$1"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $2"; fi; }
finish() { echo "slurm_preempt: $passed passed, $failed failed"; [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]; exit $?; }
args=("$repo/configs/fmnist_fc_lif.ini" "data.path=$repo/data/fashion-mnist" data.train_limit=1280
    data.test_limit=200 train.epochs=3 model.time_steps=60 checkpoint.every_steps=2
    run.threads=1 run.progress=plain)
steps_per_epoch=10 total_steps=30
sha() { "$fsnn" inspect "$1/checkpoint.h5" 2>/dev/null | sed -n 's/^weights_sha256 //p'; }
field() { scontrol -o show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }

t0=$SECONDS
# The uninterrupted run goes on while the first job waits in the queue after
# its requeue (the node is idle then); ref_sha waits for it.
ref_pid=0 ref=
ref_start() {
    "$mpiexec" -np 2 --oversubscribe "$fsnn" train "${args[@]}" "run.dir=$dir/ref" >"$dir/ref.log" 2>&1 &
    ref_pid=$!
    ref_t=$SECONDS
}
ref_sha() {
    [ -n "$ref" ] && return
    [ "$ref_pid" -gt 0 ] || ref_start
    wait "$ref_pid"
    ref=$(sha "$dir/ref")
    echo "slurm_preempt: uninterrupted (mpirun -np 2, $((SECONDS - ref_t)) s) weights_sha256 ${ref:-none}"
    check '[ -n "$ref" ]' "the uninterrupted run left no checkpoint: $(tail -n 3 "$dir/ref.log")"
    [ -n "$ref" ] || finish
}

# submit NAME: submits the run NAME; prints the job id.
submit() {
    FSNN="$fsnn" sbatch --parsable --ntasks=2 --job-name="fsnn-test-$1" --output="$dir/$1.out" \
        "$repo/slurm/train.sbatch" "${args[@]}" "run.dir=$dir/$1"
}

# wait_end JID: waits (bounded, 180 s) until the job has ended for good:
# COMPLETED, FAILED, CANCELLED, TIMEOUT, ...; a requeued job passes through
# REQUEUED and PENDING (a 10 s wait, AuthInfo cred_expire). Prints its state.
wait_end() {
    local i state
    for ((i = 0; i < 900; i++)); do
        state=$(field "$1" JobState)
        [[ "$state" =~ ^(PENDING|RUNNING|CONFIGURING|COMPLETING|REQUEUED|REQUEUE_HOLD|REQUEUE_FED|RESIZING|SUSPENDED)$ ]] || break
        sleep 0.2
    done
    echo "$state"
}

# resumed NAME JID: the run NAME resumed and ended like the uninterrupted one.
resumed() {
    local name=$1 run=$dir/$1 jid=$2 line e s
    line=$(grep -m 1 "resuming from" "$run/train.log")
    check '[ -n "$line" ]' "$name: no 'resuming from' in train.log"
    e=$(sed -n 's/.*: epoch \([0-9]*\), step \([0-9]*\) .*/\1/p' <<<"$line")
    s=$(sed -n 's/.*: epoch \([0-9]*\), step \([0-9]*\) .*/\2/p' <<<"$line")
    if [ -n "$e" ] && [ -n "$s" ]; then
        local before=$(((e - 1) * steps_per_epoch + s))
        echo "slurm_preempt: $name: $before of $total_steps steps before the requeue, $((total_steps - before)) after"
        check '[ "$before" -gt 0 ] && [ "$before" -lt "$total_steps" ]' "$name: resumed at step $before of $total_steps"
    fi
    check 'grep -Eq "^done [0-9]+ $jid 0\$" "$run/job.state"' "$name: job.state is '$(cat "$run/job.state" 2>&1)', want 'done <time> $jid 0'"
    local got
    ref_sha
    got=$(sha "$run")
    check '[ "$got" = "$ref" ]' "$name: weights_sha256 ${got:-none} after the requeue != $ref"
}

# preempt NAME HOW...: submits the run NAME, runs HOW JOBID once its first
# checkpoint exists, and returns with the job id in $jid (empty if the
# checkpoint never came).
preempt() {
    local name=$1 run=$dir/$1 state
    shift
    t1=$SECONDS
    jid=$(submit "$name")
    check '[[ "$jid" =~ ^[0-9]+$ ]]' "$name: sbatch printed '$jid', not a job id"
    [[ "$jid" =~ ^[0-9]+$ ]] || { jid=; return; }
    jobs+=("$jid")
    # The job may wait in the queue while the uninterrupted run holds the
    # node: its 60 s count from its start, with 300 s in all.
    local since=
    while ((SECONDS - t1 <= 300)); do
        [ -f "$run/checkpoint.h5" ] && break
        state=$(field "$jid" JobState)
        [[ "$state" =~ ^(PENDING|RUNNING|CONFIGURING)$ ]] || break
        [ "$state" = RUNNING ] && [ -z "$since" ] && since=$SECONDS
        [ -n "$since" ] && ((SECONDS - since > 60)) && break
        sleep 0.1
    done
    check '[ -f "$run/checkpoint.h5" ]' "$name: no checkpoint 60 s after the job's start or 300 s after its submission (job $jid $state): $(tail -n 5 "$run/train.log" "$dir/$name.out" 2>&1)"
    [ -f "$run/checkpoint.h5" ] || { jid=; return; }
    "$@" "$jid"
    echo "slurm_preempt: $name: job $jid interrupted after $((SECONDS - t1)) s with: $* $jid"
}

# 1, 2: the signal of a time limit, and a requeue from outside: the job
# comes back by itself and resumes.
for how in "usr1 scancel --signal=USR1 --batch" "requeue scontrol requeue"; do
    read -r name cmd <<<"$how"
    # shellcheck disable=SC2086 # cmd is a command line of fixed words
    preempt "$name" $cmd
    [ -n "$jid" ] || continue
    [ "$ref_pid" -gt 0 ] || ref_start
    state=$(wait_end "$jid")
    restarts=$(field "$jid" Restarts)
    echo "slurm_preempt: $name: job $jid ended $state after $((SECONDS - t1)) s, restarts $restarts"
    check '[ "$state" = COMPLETED ]' "$name: job $jid ended '$state' (or not within 180 s): $(tail -n 8 "$dir/$name.out" 2>&1)"
    check '[ "${restarts:-0}" -ge 1 ]' "$name: SLURM reports $restarts restarts of job $jid, want >= 1"
    check 'grep -q "exit code 3: checkpoint written" "$dir/$name/train.log"' \
        "$name: the first start did not end with exit code 3 after a checkpoint"
    last=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next } { r = $c["restarts"] } END { print r }' \
        "$dir/$name/metrics.csv" 2>/dev/null)
    check '[ "${last:-0}" -ge 1 ]' "$name: restarts column of the last epoch is '${last}', want >= 1"
    resumed "$name" "$jid"
done

# 3. scancel: the run checkpoints but the job stays cancelled (job.state
# requeued: resumable); the same command submitted again resumes it.
preempt cancel scancel
if [ -n "$jid" ]; then
    state=$(wait_end "$jid")
    for ((i = 0; i < 150; i++)); do
        grep -q "exit code 3" "$dir/cancel/train.log" && break
        sleep 0.2
    done
    # Time for a wrong requeue to show (the scheduler looks every 2 s).
    sleep 3
    state=$(field "$jid" JobState) restarts=$(field "$jid" Restarts)
    echo "slurm_preempt: cancel: job $jid $state, restarts $restarts; job.state $(cat "$dir/cancel/job.state" 2>&1)"
    check '[ "$state" = CANCELLED ] && [ "$restarts" = 0 ]' "cancel: job $jid is $state with $restarts restarts, want CANCELLED with 0"
    check 'grep -Eq "^requeued [0-9]+ $jid 3\$" "$dir/cancel/job.state"' "cancel: job.state is '$(cat "$dir/cancel/job.state" 2>&1)', want 'requeued <time> $jid 3'"
    jid=$(submit cancel)
    jobs+=("$jid")
    state=$(wait_end "$jid")
    echo "slurm_preempt: cancel: submitted again as job $jid: $state after $((SECONDS - t1)) s"
    check '[ "$state" = COMPLETED ]' "cancel: the job submitted again ended '$state': $(tail -n 8 "$dir/cancel.out" 2>&1)"
    resumed cancel "$jid"
fi
echo "slurm_preempt: $((SECONDS - t0)) s in all"
finish
