#!/usr/bin/env bash
# CIFAR end to end on generated files (the real ones cannot be had here,
# SPEC §6): a CIFAR-10 folder in the official tarball's layout with 10
# records per training batch and 20 test records, each image a flat colour
# set by its label; `fsnn train` of the FC net (n_in 3072) for 2 epochs with
# augmentation (on by default for CIFAR) must finish, log its augmentation
# and a test accuracy, and write 2 metrics.csv rows with finite losses;
# `fsnn eval` must reproduce the last accuracy from the checkpoint. The crop
# and flip of an image depend on its index, not on the rank that gathers it:
# 2 ranks end with the same weights_sha256 as 1 rank; with data.augment=off
# the weights differ.
#   cifar_train.sh FSNN MPIEXEC
set -u
fsnn=$1 mpiexec=$2 name=cifar_train
. "$(dirname "$0")/lib.sh"

dir=$(mktemp -d /tmp/fsnn-cifar.XXXXXX)
trap 'rm -rf "$dir"' EXIT
data=$dir/cifar/cifar-10-batches-bin
cifar_fixture "$dir/cifar"
check '[ "$(stat -c %s "$data/data_batch_3.bin")" -eq 30730 ]' "generated batch has the wrong size"

# train RUN_DIR [launcher words... --] [overrides...]
base=(data.dataset=cifar10 "data.path=$dir/cifar" data.train_limit=40 data.test_limit=20
    train.epochs=2 train.batch=8 train.test_batch=10 "model.net=64 (F64)"
    parallel.micro_batch=4 run.progress=plain)
train() { train_with "$(dirname "$0")/../configs/demo.ini" "$@"; }

train "$dir/run" >"$dir/log" 2>&1
rc=$?
check '[ "$rc" -eq 0 ]' "fsnn train exited $rc: $(tail -n 5 "$dir/log")"
check 'grep -q "data: cifar10 from .*: 40 training and 20 test samples; training images randomly cropped and flipped" "$dir/log"' \
    "no data line with augmentation: $(grep 'data:' "$dir/log")"
check 'grep -q "model: 3072-64 (F64)" "$dir/log"' "model line: $(grep 'model:' "$dir/log")"
check 'grep -Eq "done: test accuracy [0-9.]+% after 2 epochs" "$dir/log"' "no final accuracy line"
rows=$(awk 'END { print NR - 1 }' "$dir/run/metrics.csv" 2>/dev/null)
check '[ "${rows:-0}" -eq 2 ]' "metrics.csv has ${rows:-no} rows, want 2"
losses=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
    { print $c["train_loss"], $c["test_loss"] }' "$dir/run/metrics.csv" 2>/dev/null)
check 'awk "{ for (i = 1; i <= NF; i++) if (!(\$i + 0 > 0 && \$i + 0 < 1e6)) exit 1 } END { exit NR != 2 }" <<<"$losses"' \
    "losses not finite and positive: $losses"
acc=$(metric "$dir/run" test_acc)
echo "cifar_train: test accuracy after 2 epochs: ${acc:-none}%"
check_eval "$dir/run" "$acc"

ref=$(sha "$dir/run")
train "$dir/run2" "$mpiexec" -np 2 --oversubscribe -- run.threads=1 >"$dir/log2" 2>&1
rc=$?
check '[ "$rc" -eq 0 ]' "fsnn train on 2 ranks exited $rc: $(tail -n 5 "$dir/log2")"
two=$(sha "$dir/run2")
echo "cifar_train: weights_sha256 1 rank ${ref:-none}, 2 ranks ${two:-none}"
check '[ -n "$ref" ] && [ "$two" = "$ref" ]' "2 ranks end with other weights than 1 rank"
train "$dir/run3" data.augment=off >"$dir/log3" 2>&1
rc=$?
check '[ "$rc" -eq 0 ] && ! grep -q "randomly cropped" "$dir/log3"' \
    "data.augment=off: exit $rc or still augmenting: $(grep 'data:' "$dir/log3")"
off=$(sha "$dir/run3")
check '[ -n "$off" ] && [ "$off" != "$ref" ]' "data.augment=off gives the same weights as on"
finish
