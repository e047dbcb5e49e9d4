#!/usr/bin/env bash
# Checkpoints of format version 2 (before the history column
# spectral_norm_exact) still load. tests/data/ckpt_v2/checkpoint.h5 was
# written by the fsnn of that format: 1 epoch of "16 (F16)" on the first 256
# Fashion-MNIST training samples (demo.ini, batches of 32, seed 1); that
# fsnn's `inspect` printed weights_sha256 0d237c28...5b37b. `fsnn inspect`
# must print the same, and `fsnn train` (model.fidelity = fsnn, the
# variant that fsnn trained) must resume it into epoch 2, keep
# epoch 1's row (test accuracy 36%) with spectral_norm_exact nan, and write
# a version 3 checkpoint.
#   ckpt_v2.sh FSNN REPO
set -u
fsnn=$1 repo=$2 name=ckpt_v2
. "$(dirname "$0")/lib.sh"
want=0d237c28180f9118f8a92b5d75a56f97ca23d7ea1be27942d3637bd8f4d5b37b
dir=$(mktemp -d /tmp/fsnn-ckpt-v2.XXXXXX)
trap 'rm -rf "$dir"' EXIT
mkdir "$dir/run"
cp "$repo/tests/data/ckpt_v2/checkpoint.h5" "$dir/run/"
got=$(sha "$dir/run")
check '[ "$got" = "$want" ]' "inspect of the version 2 file: weights_sha256 ${got:-none}"
# That fsnn trained its own variant of the algorithm (before model.fidelity
# existed): resuming under the default, the reference's, is refused with a
# message naming the key; with model.fidelity = fsnn it resumes.
args=("$repo/configs/demo.ini" "run.dir=$dir/run" "model.net=16 (F16)"
    "data.path=$repo/data/fashion-mnist" data.train_limit=256 data.test_limit=100
    train.epochs=2 train.batch=32 run.progress=plain)
"$fsnn" train "${args[@]}" >"$dir/log0" 2>&1
rc=$?
check '[ "$rc" -eq 1 ] && grep -q "trained with model.fidelity = fsnn, this run says reference" "$dir/log0"' \
    "resume under the reference's variant: exit $rc: $(tail -n 2 "$dir/log0")"
"$fsnn" train "${args[@]}" model.fidelity=fsnn >"$dir/log" 2>&1
rc=$?
check '[ "$rc" -eq 0 ] && grep -q "resuming from .*checkpoint.h5: epoch 2" "$dir/log"' \
    "resume of the version 2 file: exit $rc: $(tail -n 3 "$dir/log")"
first=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
    NR == 2 { print $c["epoch"], $c["test_acc"], $c["spectral_norm_exact"] }' "$dir/run/metrics.csv")
check '[ "$first" = "1 36.0000 nan" ]' "epoch 1's row after the resume: '${first:-none}'"
rows=$(awk 'END { print NR - 1 }' "$dir/run/metrics.csv")
check '[ "$rows" -eq 2 ]' "metrics.csv has $rows rows, want 2"
check 'head -c 64 "$dir/run/checkpoint.h5" | grep -aq "^format_version 3$"' \
    "the new checkpoint's header: $(head -c 64 "$dir/run/checkpoint.h5" | head -n 2 | tr '\n' ' ')"
finish
