#!/usr/bin/env bash
# Bad checkpoints and bad runs end in a clear message and a non-zero exit,
# never a crash:
#   - inspect of a truncated checkpoint, of a file that is not HDF5, of a
#     missing file;
#   - resuming with a configuration whose model or optimiser differs from the
#     checkpoint's (nothing is overwritten: the checkpoint stays as it was);
#   - a learning rate that makes the loss non-finite: the steps are skipped,
#     and after train.max_bad_steps in a row the run stops with exit code 1,
#     keeping its last good checkpoint;
#   - a world size other than the launcher's (SLURM_STEP_NUM_TASKS).
#   ckpt_bad.sh FSNN REPO
set -u
fsnn=$1 repo=$2
dir=$(mktemp -d /tmp/fsnn-ckbad.XXXXXX)
trap 'rm -rf "$dir"' EXIT
passed=0 failed=0
check() { if eval "$1"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $2"; fi; }
# expect CODE PATTERN CMD...: exit code CODE and stderr matching PATTERN.
expect() {
    local want=$1 pattern=$2
    shift 2
    "$@" >"$dir/out" 2>"$dir/err"
    local got=$?
    check '[ "$got" -eq "$want" ]' "exit $got, want $want: $*"
    check 'grep -Eq -- "$pattern" "$dir/err"' "stderr lacks /$pattern/: $(head -c 300 "$dir/err")"
}
base=("$repo/configs/fmnist_fc_lif.ini" "data.path=$repo/data/fashion-mnist" data.train_limit=256
    data.test_limit=100 train.epochs=1 run.progress=plain)
"$fsnn" train "${base[@]}" "run.dir=$dir/run" >"$dir/train.log" 2>&1
check '[ -f "$dir/run/checkpoint.h5" ]' "no checkpoint: $(tail -n 2 "$dir/train.log")"
good=$(sha256sum <"$dir/run/checkpoint.h5")

size=$(stat -c %s "$dir/run/checkpoint.h5")
head -c $((size / 2)) "$dir/run/checkpoint.h5" >"$dir/trunc.h5"
expect 1 "trunc.h5: .*(truncated|damaged|cannot)" "$fsnn" inspect "$dir/trunc.h5"
expect 1 "config.ini: not an HDF5 file" "$fsnn" inspect "$dir/run/config.ini"
expect 1 "nothing.h5: no such file" "$fsnn" inspect "$dir/nothing.h5"
expect 1 "checkpoint.h5: n_hidden is 400; the configuration's model has 300" \
    "$fsnn" train "${base[@]}" "run.dir=$dir/run" "model.net=300 (F300)" train.epochs=2
expect 1 "checkpoint.h5: written with optimizer 'sgd'; the configuration says 'adam'" \
    "$fsnn" train "${base[@]}" "run.dir=$dir/run" train.optimizer=adam train.epochs=2
check '[ "$(sha256sum <"$dir/run/checkpoint.h5")" = "$good" ]' "a refused resume changed the checkpoint"

# lr 1e300 is infinite in float32: the first update makes the weights
# infinite and every later loss NaN.
expect 1 "steps in a row had a non-finite loss or gradient" \
    "$fsnn" train "${base[@]}" "run.dir=$dir/nan" data.train_limit=640 train.lr=1e300 \
    train.momentum=0 train.max_bad_steps=2 checkpoint.every_steps=1
check 'grep -q "step skipped (2 in a row)" "$dir/err"' "no skipped-step warnings"
check '"$fsnn" inspect "$dir/nan/checkpoint.h5" >/dev/null 2>&1' "no good checkpoint after the stop"

expect 2 "launcher promised 3 ranks" env SLURM_STEP_NUM_TASKS=3 "$fsnn" --version
echo "ckpt_bad: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
