#!/usr/bin/env bash
# Deterministic data parallelism end to end: the Fashion-MNIST net trained for
# five steps (640 samples, batch 128) with 1, 2, 3 and 4 ranks, with one
# rank on 1 and 2 threads, and with gradients reduced in buckets or in one
# piece, must end with the same weights_sha256.
#   same_weights.sh FSNN REPO MPIEXEC
set -u
fsnn=$1 repo=$2 mpiexec=$3
data=$repo/data/fashion-mnist
dir=$(mktemp -d /tmp/fsnn-same.XXXXXX)
trap 'rm -rf "$dir"' EXIT
passed=0 failed=0
ref=""
run() { # name, launcher words..., -- , overrides...
    local name=$1
    shift
    local launch=()
    while [ "$1" != -- ]; do launch+=("$1"); shift; done
    shift
    if ! "${launch[@]}" "$fsnn" train "$repo/configs/fmnist_fc_lif.ini" "run.dir=$dir/$name" \
        "data.path=$data" data.train_limit=640 data.test_limit=200 train.epochs=1 \
        run.progress=plain "$@" >"$dir/$name.log" 2>&1; then
        echo "FAILED: $name: fsnn train failed: $(tail -n 3 "$dir/$name.log")"
        failed=$((failed + 1))
        return
    fi
    local sha
    sha=$("$fsnn" inspect "$dir/$name/checkpoint.h5" | sed -n 's/^weights_sha256 //p')
    echo "same_weights: $name weights_sha256 $sha"
    if [ -z "$sha" ]; then
        echo "FAILED: $name: no weights_sha256"
        failed=$((failed + 1))
    elif [ -z "$ref" ]; then
        ref=$sha
        passed=$((passed + 1))
    elif [ "$sha" = "$ref" ]; then
        passed=$((passed + 1))
    else
        echo "FAILED: $name: weights differ from the first run's"
        failed=$((failed + 1))
    fi
}
run np1_threads1 -- run.threads=1
run np1_threads2 -- run.threads=2
for np in 2 3 4; do
    run "np$np" "$mpiexec" -np "$np" --oversubscribe -- run.threads=1
done
# Gradients reduced in one piece instead of buckets: the same sums.
run np2_no_overlap "$mpiexec" -np 2 --oversubscribe -- run.threads=1 parallel.overlap=off
echo "same_weights: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -eq 6 ]
