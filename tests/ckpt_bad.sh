#!/usr/bin/env bash
# Bad checkpoints and bad runs end in a clear message and a non-zero exit,
# never a crash:
#   - a written checkpoint is plain HDF5 to h5dump, and its header matches
#     the by-hand check of docs/user-guide.md (tail -c +513 | sha256sum);
#   - inspect of a checkpoint truncated to half or by 1 byte, with a wrong
#     magic, a wrong digest in the header, a changed byte after the header,
#     of an empty file, of a file that is not HDF5, of a missing file;
#   - HDF5 files that are not fsnn checkpoints: one without a user block
#     (h5mkgrp), our checkpoint with its user block stripped (h5unjam), one
#     with a foreign user block and one with a correct fsnn header forged
#     around a foreign file (h5jam): the last passes the header and is
#     refused by the attribute checks;
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

ck="$dir/run/checkpoint.h5"
h5dump -H "$ck" >"$dir/h5dump.out" 2>&1
h5dump_rc=$?
check '[ "$h5dump_rc" -eq 0 ]' "h5dump -H fails: $(head -c 300 "$dir/h5dump.out")"
check 'grep -q "ATTRIBUTE \"checksum_sha256\"" "$dir/h5dump.out"' "h5dump -H lacks the attributes"
size=$(stat -c %s "$ck")
header=$(head -c 512 "$ck" | tr -d '\0')
check '[ "$(sed -n 1p <<<"$header")" = "fsnn checkpoint" ]' "header magic: $(head -n 1 <<<"$header")"
check '[ "$(sed -n 2p <<<"$header")" = "format_version 3" ]' "header version: $header"
check '[ "$(sed -n 3p <<<"$header")" = "length $size" ]' "header length: $header"
check '[ "$(sed -n 4p <<<"$header")" = "sha256 $(tail -c +513 "$ck" | sha256sum | cut -c1-64)" ]' \
    "header digest differs from tail -c +513 | sha256sum: $header"

# flip FILE OFFSET: inverts the byte at OFFSET.
flip() {
    local byte
    byte=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
    printf "$(printf '\\%03o' $((byte ^ 255)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
head -c $((size / 2)) "$ck" >"$dir/trunc.h5"
expect 1 "trunc.h5: truncated" "$fsnn" inspect "$dir/trunc.h5"
head -c $((size - 1)) "$ck" >"$dir/short1.h5"
expect 1 "short1.h5: truncated: $((size - 1)) bytes; the header says $size" \
    "$fsnn" inspect "$dir/short1.h5"
cp "$ck" "$dir/magic.h5"
flip "$dir/magic.h5" 0
expect 1 "magic.h5: not an fsnn checkpoint" "$fsnn" inspect "$dir/magic.h5"
cp "$ck" "$dir/digest.h5"
flip "$dir/digest.h5" $(($(grep -bo 'sha256 ' <(head -c 512 "$ck" | tr '\0' ' ') | cut -d: -f1) + 7))
expect 1 "digest.h5: damaged header" "$fsnn" inspect "$dir/digest.h5"
# A well-formed header whose digest (that of empty input) is not the file's.
{
    printf 'fsnn checkpoint\nformat_version 3\nlength %d\nsha256 %s\n' "$size" \
        "$(sha256sum </dev/null | cut -c1-64)"
    head -c 512 /dev/zero
} | head -c 512 >"$dir/digest2.h5"
tail -c +513 "$ck" >>"$dir/digest2.h5"
expect 1 "digest2.h5: damaged: the SHA-256 of the bytes after the header" "$fsnn" inspect "$dir/digest2.h5"
cp "$ck" "$dir/payload.h5"
flip "$dir/payload.h5" $((size - 100))
expect 1 "payload.h5: damaged: the SHA-256" "$fsnn" inspect "$dir/payload.h5"
: >"$dir/empty.h5"
expect 1 "empty.h5: not an fsnn checkpoint \(empty file\)" "$fsnn" inspect "$dir/empty.h5"
expect 1 "config.ini: not an fsnn checkpoint" "$fsnn" inspect "$dir/run/config.ini"
expect 1 "nothing.h5: no such file" "$fsnn" inspect "$dir/nothing.h5"

h5mkgrp "$dir/foreign.h5" /weights
expect 1 "foreign.h5: not an fsnn checkpoint: an HDF5 file without the fsnn header" \
    "$fsnn" inspect "$dir/foreign.h5"
h5unjam -i "$ck" -u /dev/null -o "$dir/unjammed.h5"
expect 1 "unjammed.h5: not an fsnn checkpoint: an HDF5 file without the fsnn header" \
    "$fsnn" inspect "$dir/unjammed.h5"
printf 'a user block of another program\n' >"$dir/ub.txt"
h5jam -i "$dir/foreign.h5" -u "$dir/ub.txt" -o "$dir/jammed.h5"
expect 1 "jammed.h5: not an fsnn checkpoint \(its first bytes" "$fsnn" inspect "$dir/jammed.h5"
printf 'fsnn checkpoint\nformat_version 3\nlength %d\nsha256 %s\n' \
    $((512 + $(stat -c %s "$dir/foreign.h5"))) "$(sha256sum <"$dir/foreign.h5" | cut -c1-64)" \
    >"$dir/forged.txt"
h5jam -i "$dir/foreign.h5" -u "$dir/forged.txt" -o "$dir/forged.h5"
expect 1 "forged.h5: attribute 'n_in' is missing" "$fsnn" inspect "$dir/forged.h5"
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
