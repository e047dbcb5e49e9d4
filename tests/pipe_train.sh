#!/usr/bin/env bash
# The layer pipeline (parallel.model_ranks = M > 1 on a multi-layer net) end
# to end on generated CIFAR-10 files (lib.sh's cifar_fixture): the conv net
# "4C3s-6C3-P2-8C3 (F4C3u)" (stride-2 conv, conv, pooling, conv, transposed-
# conv feedback; 4 layers) trained for 2 epochs of 4 steps in deterministic
# mode, in the reference's variant (model.loop_bn = reference, the default:
# one adjoint solve over the batch of all ranks and stages), must
# - end with the weights_sha256 of 1 rank with (N, M) = (2, 2), (3, 3) and
#   (4, 2) ranks and stages, and log the stage assignment and the exchange;
# - give the same `fsnn eval` figures for (3, 3) as for 1 rank (the running
#   BatchNorm statistics of every stage reach the checkpoint);
# - when stopped after epoch 1 on (4, 2) and resumed on (2, 1) and on
#   (2, 2), end with the straight run's weights;
# - with the exact adjoint solver (J^T built from unit vectors through the
#   pipeline; model.loop_bn = consistent) end with the 1-rank exact
#   solver's weights on (2, 2);
# - in fast mode train on (2, 2) to the 1-rank loss within 1%;
# - refuse M = 3 on a net of 2 layers with a message naming both.
#   pipe_train.sh FSNN MPIEXEC
set -u
fsnn=$1 mpiexec=$2 name=pipe_train
. "$(dirname "$0")/lib.sh"

dir=$(mktemp -d /tmp/fsnn-pipe.XXXXXX)
trap 'rm -rf "$dir"' EXIT
cifar_fixture "$dir/cifar"

base=(data.dataset=cifar10 "data.path=$dir/cifar" data.train_limit=32 data.test_limit=20
    train.epochs=2 train.batch=8 train.test_batch=10 "model.net=4C3s-6C3-P2-8C3 (F4C3u)"
    model.time_steps=6 parallel.micro_batch=2 run.threads=1 run.progress=plain)
train() { train_with "$(dirname "$0")/../configs/demo.ini" "$@"; }
# train_np RUN_DIR N M [overrides...]: N ranks in groups of M stages
train_np() {
    local run=$1 np=$2 m=$3
    shift 3
    train "$run" "$mpiexec" -np "$np" --oversubscribe -- parallel.model_ranks="$m" "$@" \
        >"$run.log" 2>&1
}

train "$dir/one" >"$dir/one.log" 2>&1
rc=$?
ref=$(sha "$dir/one")
check '[ "$rc" -eq 0 ] && [ -n "$ref" ]' "1 rank: exit $rc: $(tail -n 5 "$dir/one.log")"
for nm in "2 2" "3 3" "4 2"; do
    set -- $nm
    train_np "$dir/n$1m$2" "$1" "$2"
    rc=$? got=$(sha "$dir/n$1m$2")
    echo "pipe_train: (N, M) = ($1, $2): exit $rc, weights_sha256 ${got:-none} (1 rank: $ref)"
    check '[ "$rc" -eq 0 ] && [ "$got" = "$ref" ]' \
        "(N, M) = ($1, $2) ends with other weights: $(tail -n 3 "$dir/n$1m$2.log")"
done
check 'grep -q "layer pipeline: 1 group of 3 stages, deterministic mode; stage 0: layer 1 " "$dir/n3m3.log" &&
    grep -q "layer pipeline exchange (group 0, all stages): [0-9]* spike messages" "$dir/n3m3.log"' \
    "(3, 3) does not log its stages and exchange: $(grep pipeline "$dir/n3m3.log")"
e1=$(eval_figures "$dir/one") e3=$(eval_figures "$dir/n3m3")
echo "pipe_train: eval 1 rank: $e1; (3, 3): $e3"
check '[ -n "$e1" ] && [ "$e1" = "$e3" ]' "evaluation differs: '$e1' vs '$e3'"

train_np "$dir/half" 4 2 train.epochs=1
cp -r "$dir/half" "$dir/r21"
cp -r "$dir/half" "$dir/r22"
train_np "$dir/r21" 2 1
rc1=$?
train_np "$dir/r22" 2 2
rc2=$?
s1=$(sha "$dir/r21") s2=$(sha "$dir/r22")
echo "pipe_train: resumed from (4, 2) on (2, 1): ${s1:-none}, on (2, 2): ${s2:-none}"
check '[ "$rc1" -eq 0 ] && grep -q "resuming from" "$dir/r21.log" && [ "$s1" = "$ref" ]' \
    "resume on (2, 1): exit $rc1: $(tail -n 3 "$dir/r21.log")"
check '[ "$rc2" -eq 0 ] && grep -q "resuming from" "$dir/r22.log" && [ "$s2" = "$ref" ]' \
    "resume on (2, 2): exit $rc2: $(tail -n 3 "$dir/r22.log")"

# (The exact solve takes J^T per sample: with model.loop_bn = reference the
# loop BatchNorm couples the batch, so this part runs the consistent rule.)
train "$dir/exact1" train.epochs=1 solver.kind=exact model.loop_bn=consistent >"$dir/exact1.log" 2>&1
train_np "$dir/exact2" 2 2 train.epochs=1 solver.kind=exact model.loop_bn=consistent
rc=$?
x1=$(sha "$dir/exact1") x2=$(sha "$dir/exact2")
echo "pipe_train: exact solver 1 rank ${x1:-none}, (2, 2) ${x2:-none}"
check '[ "$rc" -eq 0 ] && [ -n "$x1" ] && [ "$x1" = "$x2" ] && [ "$x1" != "$ref" ]' \
    "exact solver: exit $rc: $(tail -n 3 "$dir/exact2.log")"

train "$dir/fast1" parallel.deterministic=off >"$dir/fast1.log" 2>&1
train_np "$dir/fast2" 2 2 parallel.deterministic=off
rc=$?
l1=$(metric "$dir/fast1" train_loss) l2=$(metric "$dir/fast2" train_loss)
echo "pipe_train: fast mode train loss 1 rank ${l1:-none}, (2, 2) ${l2:-none}"
check '[ "$rc" -eq 0 ] && awk -v a="$l1" -v b="$l2" "BEGIN { d = a - b; exit !(a > 0 && (d < 0 ? -d : d) <= 0.01 * a) }"' \
    "fast mode: exit $rc, losses ${l1:-none} and ${l2:-none}: $(tail -n 3 "$dir/fast2.log")"

train_np "$dir/bad" 3 3 "model.net=4C3s-8C3s (F4C3u)"
rc=$?
check '[ "$rc" -eq 1 ] && grep -q "parallel.model_ranks = 3 exceeds the net.s 2 layers" "$dir/bad.log" && [ ! -e "$dir/bad/checkpoint.h5" ]' \
    "M = 3 on 2 layers: exit $rc: $(grep -m 2 error "$dir/bad.log")"
[ "$passed" -eq 11 ] || { failed=$((failed + 1)); echo "FAILED: $passed checks ran, 11 expected"; }
finish
