#!/usr/bin/env bash
# Tensor-parallel training through the command (parallel.model_ranks):
#   - a world size that model_ranks does not divide, and a conv net with
#     model_ranks > 1, end with exit code 1 and a message naming the values;
#   - one epoch of an FC net with N = 4, M = 2 (two groups of two model
#     ranks) writes a checkpoint of whole tensors that `fsnn inspect` reads,
#     and its metrics.csv row holds psgesvd's ||W||_2 (spectral_norm_exact),
#     at least the power-iteration estimate and within 10% of it (a one-
#     process run writes nan there);
#   - it resumes for a second epoch with N = 4, M = 2, N = 4, M = 4 and
#     N = 2, M = 1 (the one-process model, data parallel): the tensor-parallel
#     resumes report the file's weights_sha256 for the weights they hold
#     (resharded and gathered back bit for bit), and the second epoch's
#     training loss of all three agrees within relative 1e-3;
#   - SIGTERM to one rank stops all four at the same step with a checkpoint
#     (exit code 3), and the same command resumes and finishes.
#   tp_train.sh FSNN REPO MPIEXEC
set -u
fsnn=$1 repo=$2 mpiexec=$3
dir=$(mktemp -d /tmp/fsnn-tp.XXXXXX)
trap 'rm -rf "$dir"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
passed=0 failed=0
check() { if eval "$1"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $2"; fi; }
expect() {
    local want=$1 pattern=$2
    shift 2
    "$@" >"$dir/out" 2>"$dir/err"
    local got=$?
    check '[ "$got" -eq "$want" ]' "exit $got, want $want: $*"
    check 'grep -Eq -- "$pattern" "$dir/err"' "stderr lacks /$pattern/: $(head -c 400 "$dir/err")"
}
base=("$repo/configs/fmnist_fc_n4096.ini" "data.path=$repo/data/fashion-mnist" "model.net=96 (F96)"
    data.train_limit=512 data.test_limit=200 train.batch=64 train.test_batch=100 run.threads=1
    run.progress=plain)

expect 1 'parallel.model_ranks = 2 does not divide the job.s 3 ranks' \
    "$mpiexec" -np 3 "$fsnn" train "${base[@]}" "run.dir=$dir/bad1"
check '[ ! -e "$dir/bad1" ]' "a refused grid left a run directory"
expect 1 "parallel.model_ranks = 2: only fully connected nets.*'64C5s \(F64C5\)'" \
    "$mpiexec" -np 2 "$fsnn" train "$repo/configs/mnist_conv_if.ini" "data.path=$repo/data/mnist" \
    data.train_limit=64 data.test_limit=64 parallel.model_ranks=2 "run.dir=$dir/bad2"

"$mpiexec" -np 4 "$fsnn" train "${base[@]}" train.epochs=1 parallel.model_ranks=2 \
    "run.dir=$dir/run" >"$dir/first.log" 2>&1
check '[ -f "$dir/run/checkpoint.h5" ]' "no checkpoint after N=4 M=2: $(tail -n 3 "$dir/first.log")"
sha=$("$fsnn" inspect "$dir/run/checkpoint.h5" | sed -n 's/^weights_sha256 //p')
check '[ ${#sha} -eq 64 ]' "inspect printed no weights_sha256"

# col FILE NAME ROW: the value of column NAME in row ROW (2 = first epoch) of a metrics.csv.
col() { awk -F, -v name="$2" -v row="$3" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == name) c = i }
    NR == row { print $c }' "$1"; }
# The first epoch's ||W||_2: psgesvd's exact value next to the power-iteration estimate.
exact=$(col "$dir/run/metrics.csv" spectral_norm_exact 2)
power=$(col "$dir/run/metrics.csv" spectral_norm 2)
check 'awk -v e="$exact" -v p="$power" "BEGIN { exit !(e > 0.5 && e < 2 && p <= e * 1.0001 && p > 0.9 * e) }"' \
    "spectral_norm_exact '$exact' against the power iteration's '$power'"

# resume NP M: a copy of the first run trained to epoch 2 on another grid;
# its epoch-2 training loss in $loss (not a subshell: the checks must count).
resume() {
    local np=$1 m=$2 out="$dir/r$1_$2"
    cp -r "$dir/run" "$out"
    "$mpiexec" -np "$np" "$fsnn" train "${base[@]}" train.epochs=2 parallel.model_ranks="$m" \
        parallel.deterministic=off "run.dir=$out" >"$out.log" 2>&1
    check '[ $? -eq 0 ]' "resume with N=$np M=$m failed: $(tail -n 3 "$out.log")"
    if [ "$m" -gt 1 ]; then
        check 'grep -q "weights_sha256 $sha" "$out.log"' \
            "N=$np M=$m holds other weights than the file: $(grep resharded "$out.log")"
    fi
    loss=$(sed -n '3p' "$out/metrics.csv" | cut -d, -f3)
}
resume 4 2
l42=$loss
resume 4 4
l44=$loss
resume 2 1
l21=$loss
check '[ "$(col "$dir/r2_1/metrics.csv" spectral_norm_exact 3)" = nan ]' \
    "a one-process run's spectral_norm_exact is not nan"
for l in "$l44" "$l21"; do
    check 'awk -v a="$l" -v b="$l42" "BEGIN { d = a - b; if (d < 0) d = -d; exit !(a > 0 && d <= 1e-3 * b) }"' \
        "epoch-2 loss $l differs from N=4 M=2's $l42"
done
# SIGTERM to rank 1 alone (model rank 1 of group 0; rank 0 shares no
# reducer with it): every rank stops at the same step with a checkpoint and
# exit code 3, and the same command finishes the run.
rank_pid() {
    local p
    for p in $(pgrep -P "$1"); do
        if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2"; then
            echo "$p"
            return
        fi
    done
}
sig=("${base[@]}" data.train_limit=4096 train.batch=32 train.epochs=2 parallel.model_ranks=2
    "run.dir=$dir/sig")
"$mpiexec" -np 4 "$fsnn" train "${sig[@]}" >"$dir/sig.log" 2>&1 &
launcher=$!
for _ in $(seq 600); do
    grep -q '^epoch 1/2 .*%' "$dir/sig.log" 2>/dev/null && break
    sleep 0.1
done
pid=$(rank_pid "$launcher" 1)
check '[ -n "$pid" ]' "rank 1 not found: $(tail -n 2 "$dir/sig.log")"
[ -n "$pid" ] && kill -TERM "$pid"
wait "$launcher"
code=$?
check '[ "$code" -eq 3 ]' "SIGTERM to rank 1: exit $code, want 3: $(tail -n 3 "$dir/sig.log")"
check 'grep -q "^signal 15: checkpoint written" "$dir/sig.log"' "no checkpoint on SIGTERM"
"$mpiexec" -np 4 "$fsnn" train "${sig[@]}" >"$dir/sig2.log" 2>&1
check '[ $? -eq 0 ] && [ "$(wc -l <"$dir/sig/metrics.csv")" -eq 3 ]' \
    "resuming after SIGTERM: $(tail -n 3 "$dir/sig2.log")"

echo "losses of epoch 2: N=4 M=2 $l42, N=4 M=4 $l44, N=2 M=1 $l21"
echo "tp_train: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
