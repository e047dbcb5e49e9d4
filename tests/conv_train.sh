#!/usr/bin/env bash
# The convolutional net end to end on real MNIST (data/mnist): `fsnn train`
# of 8C5s (F8C5) (8x14x14 hidden, T = 30) on 320 training samples for 2
# epochs must print the net's summary, finish with a test accuracy above
# chance (10%) on 200 test samples, and write 2 metrics.csv rows; 2 ranks
# (deterministic mode) must end with the same weights_sha256 as 1 rank;
# `fsnn inspect` loads the conv checkpoint (tensor shapes [C_out x Cin k k]);
# `fsnn eval` reproduces the last test accuracy from it;
# a run stopped after epoch 1 and resumed for epoch 2 ends with the same
# weights as the straight run.
#   conv_train.sh FSNN MPIEXEC REPO
set -u
fsnn=$1 mpiexec=$2 repo=$3
passed=0 failed=0
check() { if eval "$1"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $2"; fi; }
finish() { echo "conv_train: $passed passed, $failed failed"; [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]; exit $?; }

dir=$(mktemp -d /tmp/fsnn-conv.XXXXXX)
trap 'rm -rf "$dir"' EXIT

# train RUN_DIR EPOCHS [launcher words... --] [overrides...]
train() {
    local run=$1 epochs=$2
    shift 2
    local launch=()
    if [ "$#" -gt 0 ] && [ "$1" = "$mpiexec" ]; then
        while [ "$1" != -- ]; do launch+=("$1"); shift; done
        shift
    fi
    "${launch[@]}" "$fsnn" train "$repo/configs/mnist_conv_if.ini" "run.dir=$run" \
        "data.path=$repo/data/mnist" data.train_limit=320 data.test_limit=200 \
        "train.epochs=$epochs" train.batch=32 train.test_batch=100 "model.net=8C5s (F8C5)" \
        parallel.micro_batch=8 run.progress=plain "$@"
}
sha() { "$fsnn" inspect "$1/checkpoint.h5" 2>/dev/null | sed -n 's/^weights_sha256 //p'; }

train "$dir/run" 2 run.threads=1 >"$dir/log" 2>&1
rc=$?
check '[ "$rc" -eq 0 ]' "fsnn train exited $rc: $(tail -n 5 "$dir/log")"
check 'grep -Eq "^1 +8C5s +conv 5x5 stride 2 +8x14x14 +1568 +200 +208" "$dir/log"' \
    "no summary row of layer 1: $(grep 8C5s "$dir/log")"
check 'grep -Eq "^F +F8C5 +feedback conv 5x5 +8x14x14 +- +1600 +1600" "$dir/log"' \
    "no summary row of the feedback: $(grep F8C5 "$dir/log")"
check 'grep -q "model: 8C5s (F8C5) on 1x28x28 IF, T=30" "$dir/log"' "model line: $(grep 'model:' "$dir/log")"
rows=$(awk 'END { print NR - 1 }' "$dir/run/metrics.csv" 2>/dev/null)
check '[ "${rows:-0}" -eq 2 ]' "metrics.csv has ${rows:-no} rows, want 2"
acc=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next } { a = $c["test_acc"] } END { print a }' \
    "$dir/run/metrics.csv" 2>/dev/null)
echo "conv_train: test accuracy after 2 epochs of 320 samples: ${acc:-none}%"
check 'awk -v a="${acc:-0}" "BEGIN { exit !(a > 20) }"' "test accuracy ${acc:-none}% is not above chance"

"$fsnn" inspect "$dir/run/checkpoint.h5" >"$dir/inspect" 2>&1
rc=$?
check '[ "$rc" -eq 0 ]' "fsnn inspect exited $rc: $(tail -n 3 "$dir/inspect")"
check 'grep -Eq "input.weight +\[8 x 25\]" "$dir/inspect" && grep -Eq "feedback.V +\[8 x 200\]" "$dir/inspect"' \
    "inspect shapes: $(grep -E 'weight|V ' "$dir/inspect")"
ref=$(sha "$dir/run")
"$fsnn" eval "$dir/run" run.threads=1 >"$dir/eval" 2>&1
rc=$?
eacc=$(sed -n 's/.*test accuracy \([0-9.]*\)%.*/\1/p' "$dir/eval" | head -n 1)
check '[ "$rc" -eq 0 ] && [ -n "$acc" ] && [ "$eacc" = "$(printf %.2f "$acc")" ]' \
    "fsnn eval (exit $rc) gives ${eacc:-none}%, training ${acc:-none}%"

train "$dir/run2" 2 "$mpiexec" -np 2 --oversubscribe -- run.threads=1 >"$dir/log2" 2>&1
rc=$?
check '[ "$rc" -eq 0 ]' "fsnn train on 2 ranks exited $rc: $(tail -n 5 "$dir/log2")"
two=$(sha "$dir/run2")
echo "conv_train: weights_sha256 1 rank ${ref:-none}, 2 ranks ${two:-none}"
check '[ -n "$ref" ] && [ "$two" = "$ref" ]' "2 ranks end with other weights than 1 rank"

train "$dir/run3" 1 run.threads=1 >"$dir/log3" 2>&1
train "$dir/run3" 2 run.threads=1 >"$dir/log4" 2>&1
rc=$?
check '[ "$rc" -eq 0 ] && grep -q "resuming from" "$dir/log4"' "resume exited $rc: $(tail -n 3 "$dir/log4")"
res=$(sha "$dir/run3")
check '[ -n "$res" ] && [ "$res" = "$ref" ]' "resumed run ends with other weights (${res:-none}) than the straight run"
finish
