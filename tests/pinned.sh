#!/usr/bin/env bash
# Pinned runs: a fixed set of small trainings must end with the weights and
# the metrics rows recorded in tests/data/pinned/FLAVOUR/RUN.txt, bit for bit, so
# that a change meant to keep every behaviour (a refactoring) shows it does.
# Each file holds the run's weights_sha256 and the deterministic columns of
# its metrics.csv (epoch to spectral_norm_exact; times, speeds and memory
# excluded). The runs, one thread per rank, deterministic mode:
#   fc1     "16 (F16)" on 256 Fashion-MNIST samples, 2 epochs, 1 rank
#   fc3     the same on 3 ranks
#   tp      the same, tensor parallel: 2 ranks sharing the model (M = 2)
#   pipe    "4C3s-6C3-P2-8C3 (F4C3u)" on generated CIFAR-10, 2 stages
#   exact   fc1 with the exact (LAPACK) adjoint solver
#   resumed fc1 stopped after epoch 1 and resumed for epoch 2
# The bits depend on the build's code generation, so each build flavour
# has its own files: tests/data/pinned/FLAVOUR/ (native: the Release build
# with -march=native; sanitize: the ASan+UBSan build; CMake passes it). A
# flavour without files fails, saying how to record them. A change of the
# numerics on purpose updates the files with
#   PIN_UPDATE=1 bash tests/pinned.sh build/fsnn REPO MPIEXEC native
#   PIN_UPDATE=1 bash tests/pinned.sh build-asan/fsnn REPO MPIEXEC sanitize
# and says why in its commit.
#   pinned.sh FSNN REPO MPIEXEC FLAVOUR
set -u
fsnn=$1 repo=$2 mpiexec=$3 flavour=$4 name=pinned
. "$(dirname "$0")/lib.sh"
pins=$repo/tests/data/pinned/$flavour
if [ ! -d "$pins" ] && [ "${PIN_UPDATE:-0}" != 1 ]; then
    echo "FAILED: no pinned runs for the build flavour '$flavour' in $pins; record them with"
    echo "  PIN_UPDATE=1 bash tests/pinned.sh $fsnn $repo $mpiexec $flavour"
    failed=1
    finish
fi
mkdir -p "$pins"
dir=$(mktemp -d /tmp/fsnn-pinned.XXXXXX)
trap 'rm -rf "$dir"' EXIT
data=$repo/data/fashion-mnist
cifar_fixture "$dir/cifar"

fc=("$repo/configs/demo.ini" "model.net=16 (F16)" "data.path=$data" data.train_limit=256
    data.test_limit=100 train.epochs=2 train.batch=32 train.test_batch=50 run.threads=1
    run.progress=plain parallel.micro_batch=8)
pipe=("$repo/configs/demo.ini" data.dataset=cifar10 "data.path=$dir/cifar" data.train_limit=16
    data.test_limit=20 train.epochs=2 train.batch=4 train.test_batch=10
    "model.net=4C3s-6C3-P2-8C3 (F4C3u)" model.time_steps=4 parallel.micro_batch=2
    run.threads=1 run.progress=plain)

# record RUN: RUN's pin text (weights and deterministic metrics columns).
record() {
    echo "weights_sha256 $(sha "$dir/$1")"
    awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "spectral_norm_exact") last = i }
        { line = $1; for (i = 2; i <= last; i++) line = line "," $i; print line }' \
        "$dir/$1/metrics.csv" 2>/dev/null
}
# pin RUN RC: the run exited 0 and its pin text equals the file's.
pin() {
    local run=$1 rc=$2
    check '[ "$rc" -eq 0 ]' "$run: fsnn train exited $rc: $(tail -n 3 "$dir/$run.log")"
    record "$run" >"$dir/$run.txt"
    if [ "${PIN_UPDATE:-0}" = 1 ]; then
        cp "$dir/$run.txt" "$pins/$run.txt"
        echo "pinned: $run recorded"
    fi
    local same=0
    diff -u "$pins/$run.txt" "$dir/$run.txt" >"$dir/$run.diff" 2>&1 || same=1
    check '[ "$same" -eq 0 ]' "$run differs from tests/data/pinned/$flavour/$run.txt: $(cat "$dir/$run.diff")"
}

"$fsnn" train "${fc[@]}" "run.dir=$dir/fc1" >"$dir/fc1.log" 2>&1
pin fc1 $?
"$mpiexec" -np 3 --oversubscribe "$fsnn" train "${fc[@]}" "run.dir=$dir/fc3" >"$dir/fc3.log" 2>&1
pin fc3 $?
"$mpiexec" -np 2 --oversubscribe "$fsnn" train "${fc[@]}" parallel.model_ranks=2 \
    "run.dir=$dir/tp" >"$dir/tp.log" 2>&1
pin tp $?
"$mpiexec" -np 2 --oversubscribe "$fsnn" train "${pipe[@]}" parallel.model_ranks=2 \
    "run.dir=$dir/pipe" >"$dir/pipe.log" 2>&1
pin pipe $?
"$fsnn" train "${fc[@]}" solver.kind=exact "run.dir=$dir/exact" >"$dir/exact.log" 2>&1
pin exact $?
"$fsnn" train "${fc[@]}" train.epochs=1 "run.dir=$dir/resumed" >"$dir/resumed.log" 2>&1 &&
    "$fsnn" train "${fc[@]}" "run.dir=$dir/resumed" >>"$dir/resumed.log" 2>&1
pin resumed $?
# fc1 and fc3, and fc1 and the resumed run, are the same training.
check '[ "$(head -n 1 "$dir/fc1.txt")" = "$(head -n 1 "$dir/fc3.txt")" ]' "fc3's weights are not fc1's"
check '[ "$(cat "$dir/fc1.txt")" = "$(cat "$dir/resumed.txt")" ]' "the resumed run is not fc1"
finish
