#!/usr/bin/env bash
# Training benchmark: the paper's Fashion-MNIST LIF net (configs/fmnist_fc_lif.ini)
# for one epoch at T = 5, 30 and 100, each in a fresh process so that peak RSS
# is that run's own. Prints train and test samples/s, GFLOP/s of the dense
# products, peak RSS, the forward residual, adjoint iterations, firing rate,
# how many time steps computed W s densely (sgemm) or event-driven, and the
# OpenBLAS core; then the dense-vs-event spike product tables of bench_spike
# (W s) and bench_conv (conv and transposed conv from spikes).
#
#   bench/run.sh                 all 60,000 training samples per T
#   BENCH_SAMPLES=20000 BENCH_STEPS="5 30" bench/run.sh
#   BENCH_CORES="Haswell SkylakeX" bench/run.sh   one row per OpenBLAS core
#                                (OPENBLAS_CORETYPE), side by side
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$repo/build}
fsnn=$build/fsnn
[ -x "$fsnn" ] || { echo "bench: $fsnn not built; run jobs/setup.sh first" >&2; exit 1; }
samples=${BENCH_SAMPLES:-0}
steps=${BENCH_STEPS:-5 30 100}
out=$(mktemp -d /tmp/fsnn-bench.XXXXXX)
trap 'rm -rf "$out"' EXIT

printf '%-5s %12s %12s %10s %8s %9s %7s %7s %15s  %s\n' T "train smp/s" "test smp/s" "GEMM GF/s" \
  "RSS MB" "residual" "adj it" "rate" "W s dense/event" "OpenBLAS core"
cores=${BENCH_CORES:-}
for core_req in ${cores:-default}; do
  for T in $steps; do
    log=$out/T$T-$core_req.log
    run=$out/T$T-$core_req
    if [ "$core_req" = default ]; then env_core=(); else env_core=(env "OPENBLAS_CORETYPE=$core_req"); fi
    "${env_core[@]}" "$fsnn" train "$repo/configs/fmnist_fc_lif.ini" \
      "run.dir=$run" "model.time_steps=$T" train.epochs=1 \
      "data.path=$repo/data/fashion-mnist" "data.train_limit=$samples" \
      run.progress=plain >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
    core=$(sed -n 's/^blas: .*; core \([A-Za-z0-9_]*\),.*/\1/p' "$log" | head -n 1)
    awk -F, -v T="$T" -v core="${core:-?}" '
      NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
      { printf "%-5s %12.0f %12.0f %10.1f %8.1f %9.4g %7.1f %7.4f %15s  %s\n", T,
          $col["train_samples_per_s"], $col["test_samples_per_s"], $col["gemm_gflops"],
          $col["peak_rss_mb"], $col["fwd_residual"], $col["adj_iters"], $col["firing_rate"],
          $col["dense_steps"] "/" $col["event_steps"], core }' "$run/metrics.csv"
  done
done
echo
"$build/bench/bench_spike" 128 400 1
echo
"$build/bench/bench_conv" 128 1
