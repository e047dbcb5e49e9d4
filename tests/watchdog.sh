#!/usr/bin/env bash
# A rank that hangs or dies ends the whole job within a bounded time:
#   1. rank 1 stopped (SIGSTOP) in the middle of training: rank 0 gives up
#      waiting in its collective after parallel.collective_timeout seconds
#      and aborts the job with a message naming itself and the collective;
#   2. rank 1 killed (SIGKILL): the job ends.
# Either must end within LIMIT seconds (the launcher is killed after that and
# the test fails).
#   watchdog.sh FSNN REPO MPIEXEC
set -u
fsnn=$1 repo=$2 mpiexec=$3
limit=90
dir=$(mktemp -d /tmp/fsnn-watchdog.XXXXXX)
trap 'rm -rf "$dir"' EXIT
passed=0 failed=0
check() { if eval "$1"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $2"; fi; }

# The pid of rank $2 among the children of launcher $1 (empty if none yet).
rank_pid() {
    local p
    for p in $(pgrep -P "$1"); do
        if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2"; then
            echo "$p"
            return
        fi
    done
}

# case name, signal: start 2 ranks, wait until training runs, signal rank 1,
# and measure how long the job takes to end.
trial() {
    local name=$1 sig=$2 run="$dir/$1"
    "$mpiexec" -np 2 --oversubscribe "$fsnn" train "$repo/configs/fmnist_fc_lif.ini" \
        "data.path=$repo/data/fashion-mnist" data.train_limit=1280 data.test_limit=100 \
        train.epochs=1000 checkpoint.every_steps=1 run.threads=1 run.progress=plain \
        parallel.collective_timeout=5 "run.dir=$run" >"$dir/$name.log" 2>&1 &
    local launcher=$! waited=0 pid=""
    # Until the first checkpoint is written and rank 1's process is found
    # (a lookup can miss while the launcher's children start).
    while { [ ! -f "$run/checkpoint.h5" ] || [ -z "$pid" ]; } && [ "$waited" -lt 600 ]; do
        sleep 0.1
        waited=$((waited + 1))
        pid=$(rank_pid "$launcher" 1)
    done
    if [ -z "$pid" ] || [ ! -f "$run/checkpoint.h5" ]; then
        echo "FAILED: $name: training did not start: $(tail -n 3 "$dir/$name.log")"
        failed=$((failed + 1))
        kill -KILL "$launcher" 2>/dev/null
        wait "$launcher" 2>/dev/null
        return
    fi
    local t0 rc
    t0=$(date +%s)
    kill "-$sig" "$pid"
    local ended=0
    for _ in $(seq $((limit * 10))); do
        if ! kill -0 "$launcher" 2>/dev/null; then
            ended=1
            break
        fi
        sleep 0.1
    done
    if [ "$ended" -eq 0 ]; then
        pkill -KILL -P "$launcher" 2>/dev/null
        kill -KILL "$launcher" 2>/dev/null
    fi
    wait "$launcher"
    rc=$?
    local took=$(($(date +%s) - t0))
    echo "watchdog: $name: the job ended after $took s with exit code $rc"
    check '[ "$ended" -eq 1 ]' "$name: the job still ran $limit s after rank 1 got SIG$sig"
    check '[ "$rc" -ne 0 ]' "$name: the job ended with exit code 0"
    [ "$sig" = STOP ] && kill -KILL "$pid" 2>/dev/null
    return 0
}

trial hang STOP
check 'grep -q "rank 0 of 2 waited .* in collective" "$dir/hang.log"' \
    "hang: no message naming the rank and the collective: $(grep -i "rank\|abort" "$dir/hang.log" | head -n 3)"
trial death KILL
echo "watchdog: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
