#!/usr/bin/env bash
# N-MNIST end to end on generated files (the real ones cannot be had here,
# SPEC §6): a folder in the layout of Train.zip and Test.zip, 2 samples per
# digit for training and 1 for test, each sample's events a short bar whose
# place depends on the digit and which moves one pixel per frame. Checks that
# `fsnn train` takes the events one frame per time step (IF, FC net and
# LIF conv net), finishes with finite losses and learns the digits, that
# `fsnn eval` reproduces the accuracy from the checkpoint, that 2 ranks end
# with the same weights_sha256 as 1 rank, and that the frames matter: the
# same run with a frame width that leaves every event out of the frames
# trains other weights.
#   nmnist_train.sh FSNN MPIEXEC
set -u
fsnn=$1 mpiexec=$2 name=nmnist_train
. "$(dirname "$0")/lib.sh"

dir=$(mktemp -d /tmp/fsnn-nmnist.XXXXXX)
trap 'rm -rf "$dir"' EXIT
# byte N: one raw byte.
byte() { printf "\\$(printf %03o "$1")"; }
# sample FILE DIGIT VARIANT: 5 frames of 1000 us; in frame t the events of
# pixels (3 * DIGIT + k, 4 + t + VARIANT) for k = 0..3, ON for even digits.
sample() {
    local f=$1 d=$2 v=$3 t k ts
    : >"$f"
    for t in 0 1 2 3 4; do
        for k in 0 1 2 3; do
            ts=$((t * 1000 + 300 + k))
            { byte $((3 * d + k)); byte $((4 + t + v))
              byte $((((d + 1) % 2) * 128 + (ts >> 16)))
              byte $(((ts >> 8) & 255)); byte $((ts & 255)); } >>"$f"
        done
    done
}
for d in 0 1 2 3 4 5 6 7 8 9; do
    mkdir -p "$dir/nmnist/Train/$d" "$dir/nmnist/Test/$d"
    sample "$dir/nmnist/Train/$d/00001.bin" "$d" 0
    sample "$dir/nmnist/Train/$d/00002.bin" "$d" 2
    sample "$dir/nmnist/Test/$d/00001.bin" "$d" 1
done
check '[ "$(stat -c %s "$dir/nmnist/Train/3/00002.bin")" -eq 100 ]' "generated sample has the wrong size"

# train RUN_DIR [launcher words... --] [overrides...]
base=(data.dataset=nmnist "data.path=$dir/nmnist" data.event_window_us=1000
    data.event_stabilize=off model.time_steps=5 train.epochs=8 train.batch=10
    train.test_batch=10 "model.net=64 (F64)" parallel.micro_batch=5 run.progress=plain
    model.fidelity=fsnn)
# fsnn's own event BatchNorm: the reference's (model.fidelity = reference)
# normalises the simulation with the unbiased variance and eps 1e-8, which
# on these few synthetic samples, whose pixels are mostly constant, blows
# the input up by up to 1e4; tests/fixture_* check that mode.
train() { train_with "$(dirname "$0")/../configs/demo.ini" "$@"; }

train "$dir/run" >"$dir/log" 2>&1
rc=$?
check '[ "$rc" -eq 0 ]' "fsnn train exited $rc: $(tail -n 5 "$dir/log")"
check 'grep -q "data: nmnist from .*: 20 training and 10 test samples" "$dir/log"' \
    "no data line: $(grep 'data:' "$dir/log")"
check 'grep -q "model: 2312-64 (F64)" "$dir/log"' "model line: $(grep 'model:' "$dir/log")"
rows=$(awk 'END { print NR - 1 }' "$dir/run/metrics.csv" 2>/dev/null)
check '[ "${rows:-0}" -eq 8 ]' "metrics.csv has ${rows:-no} rows, want 8"
loss=$(metric "$dir/run" train_loss)
check 'awk -v l="$loss" "BEGIN { exit !(l + 0 > 0 && l + 0 < 1e6) }"' "train loss not finite: $loss"
acc=$(metric "$dir/run" test_acc)
echo "nmnist_train: FC IF test accuracy after 8 epochs: ${acc:-none}%"
check 'awk -v a="$acc" "BEGIN { exit !(a + 0 >= 50) }"' "test accuracy ${acc:-none}% not above 50%"
check_eval "$dir/run" "$acc"

ref=$(sha "$dir/run")
train "$dir/run2" "$mpiexec" -np 2 --oversubscribe -- run.threads=1 >"$dir/log2" 2>&1
rc=$?
check '[ "$rc" -eq 0 ]' "fsnn train on 2 ranks exited $rc: $(tail -n 5 "$dir/log2")"
two=$(sha "$dir/run2")
echo "nmnist_train: weights_sha256 1 rank ${ref:-none}, 2 ranks ${two:-none}"
check '[ -n "$ref" ] && [ "$two" = "$ref" ]' "2 ranks end with other weights than 1 rank"

# Frames of 10 us: every event falls after the 5th frame, so nothing reaches
# the net and training must end elsewhere.
train "$dir/run3" data.event_window_us=10 train.epochs=1 >"$dir/log3" 2>&1
rc=$?
check '[ "$rc" -eq 0 ]' "fsnn train with empty frames exited $rc: $(tail -n 3 "$dir/log3")"
empty=$(sha "$dir/run3")
check '[ -n "$empty" ] && [ "$empty" != "$ref" ]' "empty frames give the same weights"

# The tensor-parallel net takes images only: refused with a message.
train "$dir/run5" "$mpiexec" -np 2 --oversubscribe -- parallel.model_ranks=2 >"$dir/log5" 2>&1
rc=$?
check '[ "$rc" -eq 1 ] && grep -q "takes images, not event frames" "$dir/log5"' \
    "model_ranks=2 on event data: exit $rc: $(tail -n 2 "$dir/log5")"

# The paper's N-MNIST net type: conv with LIF neurons.
train "$dir/run4" "model.net=8C5s (F8C5)" neuron.leak=0.95 train.epochs=2 >"$dir/log4" 2>&1
rc=$?
check '[ "$rc" -eq 0 ]' "conv LIF on events exited $rc: $(tail -n 5 "$dir/log4")"
check 'grep -q "model: 8C5s (F8C5)" "$dir/log4"' "conv model line: $(grep 'model:' "$dir/log4")"
cacc=$(metric "$dir/run4" test_acc)
echo "nmnist_train: conv LIF test accuracy after 2 epochs: ${cacc:-none}%"
check '[ -n "$cacc" ]' "conv run wrote no accuracy"
finish
