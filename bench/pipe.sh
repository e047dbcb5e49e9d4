#!/usr/bin/env bash
# The layer pipeline (parallel.model_ranks = M > 1) on AlexNet-F
# (configs/cifar10_alexnet_t30.ini: 5 conv layers, T = 30, LIF) on generated
# CIFAR-10 files (tests/lib.sh's cifar_fixture: flat colour images), BATCH
# samples per step (at most 50; 8 test samples after each), STEPS steps (one
# step per epoch, so metrics.csv has the loss of every step), deterministic
# mode. Rows (N ranks, M stages), BENCH_ROWS to choose:
#   1/1, 2/1 (data parallel, for comparison), 2/2, 4/2, 4/4.
# Prints per row the training loss of every step (2 and 4 stages must give
# the 1-stage losses: the same arithmetic), training samples/s (steps 2..),
# the peak RSS of every rank, and from the pipeline's log the spike bytes per
# message (one stage boundary, one time step) as sent (each row group's block
# the smaller form), as bit masks only and as index lists only; the MB of
# floats the stages sent (activations of f, vectors of J^T and the VJP) in
# the whole run; per stage the
# seconds spent encoding and decoding spikes plus posting sends (the
# exchange's own cost), and the seconds in receives, waits and broadcasts
# (mostly the wait for the stage that produces the message), each as a share
# of the run's wall time (training and evaluation).
#
# Every row uses parallel.micro_batch = BATCH / 2 (BENCH_MICRO to change),
# so that the 2 data-parallel ranks of 2/1 and the 2 groups of 4/2 each get a
# micro-shard of every batch (with the default 32 a small batch is one
# micro-shard and one rank or group would idle), and every row computes the
# same arithmetic.
#
#   bench/pipe.sh                                  batch 8, 4 steps, all rows
#   BENCH_BATCH=32 BENCH_STEPS=2 BENCH_ROWS="1/1 2/2" bench/pipe.sh
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$repo/build}
fsnn=$build/fsnn
[ -x "$fsnn" ] || { echo "bench: $fsnn not built; run jobs/setup.sh first" >&2; exit 1; }
batch=${BENCH_BATCH:-8}
steps=${BENCH_STEPS:-4}
micro=${BENCH_MICRO:-$(((batch + 1) / 2))}
mpiexec=${MPIEXEC:-mpirun}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_WAIT_POLICY=PASSIVE
out=$(mktemp -d /tmp/fsnn-bench-pipe.XXXXXX)
trap 'rm -rf "$out"' EXIT
fsnn_bin=$fsnn
. "$repo/tests/lib.sh"
cifar_fixture "$out/cifar"

printf "AlexNet-F, T = 30, batch %d (micro-shards of %d), %d steps, deterministic; %s\n" "$batch" \
    "$micro" "$steps" "$(date -u +%FT%TZ)"
printf "%-5s %-40s %9s %-28s %s\n" "N/M" "train loss per step" "samples/s" "peak RSS per rank (MB)" \
    "spike bytes per message sent / masks only / lists only; floats sent; coding + sending s (share); receiving and waiting s (share)"
for row in ${BENCH_ROWS:-1/1 2/1 2/2 4/2 4/4}; do
    set -- ${row/\// }
    np=$1 m=$2 run=$out/n${1}m$2
    # Each rank's peak RSS into a file of its own (Open MPI's rank variable).
    "$mpiexec" -np "$np" --oversubscribe --bind-to none bash -c \
        'exec /usr/bin/time -o "$0.rss.${OMPI_COMM_WORLD_RANK}" -f "%M" "$@"' "$run" \
        "$fsnn_bin" train "$repo/configs/cifar10_alexnet_t30.ini" "run.dir=$run" \
        "data.path=$out/cifar" "data.train_limit=$batch" data.test_limit=8 \
        "train.batch=$batch" train.test_batch=8 "train.epochs=$steps" train.warmup_iters=0 \
        run.threads=1 run.progress=plain "parallel.model_ranks=$m" "parallel.micro_batch=$micro" \
        >"$run.log" 2>&1 ||
        { tail -n 20 "$run.log" >&2; exit 1; }
    losses=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
        { printf "%s%s", (NR > 2 ? " " : ""), $c["train_loss"] }' "$run/metrics.csv")
    # samples/s over steps 2.. (step 1 includes the first touches of memory)
    sps=$(awk -F, -v b="$batch" 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
        NR > 2 || last == "" { t += b / $c["train_samples_per_s"]; n += b } { last = NR }
        END { printf "%.2f", n / t }' "$run/metrics.csv")
    wall=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next } { s += $c["seconds"] }
        END { print s }' "$run/metrics.csv")
    rss=$(for r in $(seq 0 $((np - 1))); do tail -n 1 "$run.rss.$r"; done |
        awk '{ printf "%s%.0f", (NR > 1 ? " " : ""), $1 / 1024 }')
    ex=$(sed -n 's/.*exchange (group 0, all stages): [0-9]* spike messages, \([0-9]*\) bytes per message sent (bit masks only: \([0-9]*\), index lists only: \([0-9]*\)); \([0-9.e+]*\) MB of activations and adjoint vectors; per stage \([0-9.]*\) s coding spikes, \([0-9.]*\) s posting sends, \([0-9.]*\) s receiving and waiting.*/\1 \2 \3 \4 \5 \6 \7/p' "$run.log")
    if [ -n "$ex" ]; then
        set -- $ex
        ex=$(awk -v a="$1" -v b="$2" -v c="$3" -v f="$4" -v k="$5" -v s="$6" -v r="$7" \
            -v w="$wall" 'BEGIN { printf "%d / %d / %d; %s MB; %.2f + %.2f s (%.1f%%); %.1f s (%.0f%%)",
                a, b, c, f, k, s, 100 * (k + s) / w, r, 100 * r / w }')
    else
        ex="-"
    fi
    printf "%-5s %-40s %9s %-28s %s\n" "$np/$m" "$losses" "$sps" "$rss" "$ex"
    grep -h "layer pipeline:" "$run.log" | sed 's/^/      /' || true
done
