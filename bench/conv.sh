#!/usr/bin/env bash
# The dense convolutions, im2col + sgemm against oneDNN (model.conv), side
# by side in one run: first GFLOP/s of the forward, input-VJP and weight-VJP
# of every conv layer of AlexNet-F, CIFARNet-F (batch 32) and 64C5s (F64C5)
# (batch 128) with sgemm's measured rate as the roof (build/bench/
# bench_convlayers), then training samples/s and phase seconds of the three
# nets at T = 30 with each setting (bench/configs.sh rows; the CIFAR nets on
# generated files): im2col + sgemm, oneDNN in float, and oneDNN with the
# simulation's products in bf16 (compute.sim_precision). AlexNet-F runs at
# batch 32, the others at their configs' batch (128). Says which OpenBLAS
# core ran.
#
#   bench/conv.sh                 (about 6 minutes on 2 cores)
#   BENCH_SCALE=0.5 bench/conv.sh half the training samples per row
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$repo/build}
[ -x "$build/bench/bench_convlayers" ] || { echo "bench: $build/bench/bench_convlayers not built" >&2; exit 1; }
echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$build/bench/bench_convlayers"
echo
echo "| config | net | T | batch | ranks x threads | train samples/s | test samples/s | t_input s | t_sim s | t_adj s | t_grad s | peak RSS MB | OpenBLAS core |"
for setting in "model.conv=im2col" "model.conv=onednn" "model.conv=onednn compute.sim_precision=bf16"; do
    echo "training with $setting:"
    for row in "mnist_conv_if cifar10_cifarnet_t30|" "cifar10_alexnet_t30|train.batch=32"; do
        BUILD_DIR=$build BENCH_CONFIGS=${row%|*} BENCH_OVERRIDES="$setting ${row#*|}" \
            BENCH_FORMAT=markdown bash "$repo/bench/configs.sh" 2>/dev/null | grep '^| [a-z]' |
            grep -v '^| config |'
    done
done
