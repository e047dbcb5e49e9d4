#!/usr/bin/env bash
# The multi-layer FSNN (Eq. 10) end to end on generated CIFAR-10 files (the
# layout of cifar_train.sh: 10 records per training batch, 20 test records,
# each image a flat colour set by its label; crops and flips vary them):
# "8C3s-P2-8C3 (F8C3u)" (stride-2 conv, pooling, conv, transposed-conv
# feedback) trained for 2 epochs of 4 steps in deterministic mode must
# - end with the same weights_sha256 on 1 rank, on 2 ranks and on 3 ranks
#   (model.loop_bn = reference, the default: one adjoint solve over the
#   batch of all ranks);
# - end, when stopped after epoch 1 and resumed for epoch 2, with the
#   weights of the straight run and the same `fsnn eval` loss and accuracy
#   (evaluation uses the layers' running statistics: the checkpoint keeps
#   every tensor);
# - be listed by `fsnn inspect` with its layers' tensors;
# - in fast mode (float sums) train on 2 ranks to the 1-rank loss within
#   1% (the sums' rounding differs between rank counts).
#   ml_train.sh FSNN MPIEXEC
set -u
fsnn=$1 mpiexec=$2 name=ml_train
. "$(dirname "$0")/lib.sh"

dir=$(mktemp -d /tmp/fsnn-ml.XXXXXX)
trap 'rm -rf "$dir"' EXIT
cifar_fixture "$dir/cifar"

# train RUN_DIR [launcher words... --] [overrides...]
base=(data.dataset=cifar10 "data.path=$dir/cifar" data.train_limit=32 data.test_limit=20
    train.epochs=2 train.batch=8 train.test_batch=10 "model.net=8C3s-P2-8C3 (F8C3u)"
    model.time_steps=6 parallel.micro_batch=2 run.threads=1 run.progress=plain)
train() { train_with "$(dirname "$0")/../configs/demo.ini" "$@"; }

train "$dir/one" >"$dir/one.log" 2>&1
rc=$?
check '[ "$rc" -eq 0 ] && grep -q "^3   8C3 " "$dir/one.log"' \
    "1 rank: exit $rc or no layer table: $(tail -n 5 "$dir/one.log")"
train "$dir/two" "$mpiexec" -np 2 --oversubscribe -- >"$dir/two.log" 2>&1
rc=$?
check '[ "$rc" -eq 0 ]' "2 ranks: exit $rc: $(tail -n 5 "$dir/two.log")"
ref=$(sha "$dir/one") two=$(sha "$dir/two")
echo "ml_train: weights_sha256 1 rank ${ref:-none}, 2 ranks ${two:-none}"
check '[ -n "$ref" ] && [ "$two" = "$ref" ]' "2 ranks end with other weights than 1 rank"
# 3 ranks hold 2, 1 and 1 of the 4 micro-shards: the batch-wide adjoint's
# sums (model.loop_bn = reference) still add the same terms.
train "$dir/three" "$mpiexec" -np 3 --oversubscribe -- >"$dir/three.log" 2>&1
rc=$?
three=$(sha "$dir/three")
check '[ "$rc" -eq 0 ] && [ "$three" = "$ref" ]' \
    "3 ranks: exit $rc, weights ${three:-none}, 1 rank $ref: $(tail -n 3 "$dir/three.log")"

train "$dir/resumed" train.epochs=1 >"$dir/resumed.log" 2>&1
train "$dir/resumed" >>"$dir/resumed.log" 2>&1
rc=$?
check '[ "$rc" -eq 0 ] && grep -q "resuming from" "$dir/resumed.log"' \
    "resume: exit $rc: $(tail -n 5 "$dir/resumed.log")"
res=$(sha "$dir/resumed")
check '[ -n "$res" ] && [ "$res" = "$ref" ]' "resumed run ends with ${res:-no} weights, straight run $ref"
e1=$(eval_figures "$dir/one") e2=$(eval_figures "$dir/resumed")
echo "ml_train: straight: $e1; resumed: $e2"
check '[ -n "$e1" ] && [ "$e1" = "$e2" ]' "evaluation differs: '$e1' vs '$e2'"

train "$dir/fast1" parallel.deterministic=off >"$dir/fast1.log" 2>&1
train "$dir/fast2" "$mpiexec" -np 2 --oversubscribe -- parallel.deterministic=off >"$dir/fast2.log" 2>&1
rc=$?
l1=$(metric "$dir/fast1" train_loss) l2=$(metric "$dir/fast2" train_loss)
echo "ml_train: fast mode train loss 1 rank ${l1:-none}, 2 ranks ${l2:-none}"
check '[ "$rc" -eq 0 ] && awk -v a="$l1" -v b="$l2" "BEGIN { d = a - b; exit !(a > 0 && (d < 0 ? -d : d) <= 0.01 * a) }"' \
    "fast mode: exit $rc, losses ${l1:-none} and ${l2:-none}: $(tail -n 3 "$dir/fast2.log")"

"$fsnn" inspect "$dir/one/checkpoint.h5" >"$dir/inspect" 2>&1
check 'grep -q "^  layer3.bn.weight *\[8 x 1\]" "$dir/inspect" && grep -q "^  feedback.V *\[8 x 72\]" "$dir/inspect"' \
    "fsnn inspect lacks the layers' tensors: $(cat "$dir/inspect")"
[ "$passed" -eq 9 ] || { failed=$((failed + 1)); echo "FAILED: $passed checks ran, 9 expected"; }
finish
