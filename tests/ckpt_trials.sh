#!/usr/bin/env bash
# Checkpoints under many random faults:
#   1. kill -9 at random moments of a run that writes a checkpoint after
#      every step (KILL_TRIALS, default 50): afterwards the run directory's
#      newest good checkpoint always loads and verifies (fsnn inspect through
#      resume order: checkpoint.h5, else checkpoint.prev.h5), and the
#      temporary file is never what gets loaded;
#   2. single flipped bits at random offsets of a good checkpoint (FLIP_TRIALS,
#      default 100) and truncations at random lengths (TRUNC_TRIALS, default
#      20): fsnn inspect either rejects the file with a message naming it
#      (exit 1) or, for a bit the format does not use, loads it with the
#      original weights_sha256 and checksum; never a crash.
#   ckpt_trials.sh FSNN REPO
set -u
fsnn=$1 repo=$2
kill_trials=${KILL_TRIALS:-50} flip_trials=${FLIP_TRIALS:-100} trunc_trials=${TRUNC_TRIALS:-20}
dir=$(mktemp -d /tmp/fsnn-trials.XXXXXX)
trap 'rm -rf "$dir"' EXIT
passed=0 failed=0
check() { if eval "$1"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $2"; fi; }
args=("$repo/configs/fmnist_fc_lif.ini" "data.path=$repo/data/fashion-mnist" data.train_limit=1280
    data.test_limit=100 train.epochs=100 checkpoint.every_steps=1 run.progress=plain run.threads=1)

run="$dir/run"
# The kill window scales with this machine's speed (sanitizer builds start
# many times slower): it is measured as the time until the first checkpoint.
start=$(date +%s%N)
"$fsnn" train "${args[@]}" "run.dir=$run" >>"$dir/kill.log" 2>&1 &
pid=$!
while [ ! -f "$run/checkpoint.h5" ] && kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
first_ms=$((($(date +%s%N) - start) / 1000000))
kill -KILL "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
window_ms=$((first_ms + 1000))
echo "ckpt_trials: first checkpoint after $first_ms ms; kills within ${window_ms} ms of start"
loaded_tmp=0 unloadable=0
for t in $(seq "$kill_trials"); do
    "$fsnn" train "${args[@]}" "run.dir=$run" >>"$dir/kill.log" 2>&1 &
    pid=$!
    delay_ms=$(((RANDOM * 32768 + RANDOM) % window_ms))
    sleep "$((delay_ms / 1000)).$(printf '%03d' $((delay_ms % 1000)))"
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    [ -f "$run/checkpoint.h5" ] || [ -f "$run/checkpoint.prev.h5" ] || continue
    if "$fsnn" inspect "$run/checkpoint.h5" >"$dir/i.out" 2>"$dir/i.err" ||
        "$fsnn" inspect "$run/checkpoint.prev.h5" >"$dir/i.out" 2>>"$dir/i.err"; then
        :
    else
        unloadable=$((unloadable + 1))
        echo "trial $t: no loadable checkpoint: $(cat "$dir/i.err")"
    fi
    grep -q "checkpoint.h5.tmp" "$dir/i.out" && loaded_tmp=$((loaded_tmp + 1))
done
resumes=$(grep -c "resuming from" "$dir/kill.log")
echo "ckpt_trials: $kill_trials kills, $resumes resumes"
check '[ "$unloadable" -eq 0 ]' "$unloadable kills left no loadable checkpoint"
check '[ "$loaded_tmp" -eq 0 ]' "a temporary file was loaded"
check '! grep -q "checkpoint.h5.tmp" "$dir/kill.log"' "a resume used the temporary file"
check '[ "$resumes" -gt 0 ]' "no kill left a checkpoint to resume from"

good="$dir/good.h5"
cp "$run/checkpoint.h5" "$good" 2>/dev/null || cp "$run/checkpoint.prev.h5" "$good"
ref=$("$fsnn" inspect "$good" | sed -n 's/^weights_sha256 //p')
check '[ -n "$ref" ]' "the reference checkpoint does not load"
if [ -z "$ref" ]; then
    echo "ckpt_trials: $passed passed, $failed failed (no reference checkpoint for the damage trials)"
    exit 1
fi
size=$(stat -c %s "$good")
rejected=0 harmless=0 bad=0
for t in $(seq "$flip_trials"); do
    off=$(((RANDOM * 32768 + RANDOM) % size))
    bit=$((RANDOM % 8))
    cp "$good" "$dir/flip.h5"
    byte=$(od -An -tu1 -j "$off" -N1 "$dir/flip.h5" | tr -d ' ')
    printf "$(printf '\\%03o' $((byte ^ (1 << bit))))" |
        dd of="$dir/flip.h5" bs=1 seek="$off" conv=notrunc status=none
    "$fsnn" inspect "$dir/flip.h5" >"$dir/f.out" 2>"$dir/f.err"
    rc=$?
    if [ "$rc" -eq 1 ] && grep -q "flip.h5" "$dir/f.err"; then
        rejected=$((rejected + 1))
    elif [ "$rc" -eq 0 ] && grep -q "^weights_sha256 $ref$" "$dir/f.out"; then
        harmless=$((harmless + 1))
    else
        bad=$((bad + 1))
        echo "flip at byte $off bit $bit: exit $rc: $(head -c 300 "$dir/f.err")"
    fi
done
for t in $(seq "$trunc_trials"); do
    head -c "$(((RANDOM * 32768 + RANDOM) % size))" "$good" >"$dir/trunc.h5"
    "$fsnn" inspect "$dir/trunc.h5" >/dev/null 2>"$dir/t.err"
    rc=$?
    if [ "$rc" -eq 1 ] && grep -q "trunc.h5" "$dir/t.err"; then
        rejected=$((rejected + 1))
    else
        bad=$((bad + 1))
        echo "truncation: exit $rc: $(head -c 300 "$dir/t.err")"
    fi
done
echo "ckpt_trials: $flip_trials bit flips and $trunc_trials truncations: $rejected rejected," \
    "$harmless harmless (unused bits, same weights), $bad wrong"
check '[ "$bad" -eq 0 ]' "$bad damaged files were neither rejected nor harmless"
check '[ "$rejected" -gt 0 ]' "no damaged file was rejected"
echo "ckpt_trials: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
