#!/usr/bin/env bash
# fsnn model: the paper's four nets with their totals (exact, worked by hand
# in tests/test_netspec.c, and the short forms of the paper's Tables 1-3),
# layer rows, data set names, usage errors (exit 2), bad nets (exit 1), and
# `fsnn train` refusing a net this build does not train.
#   model_cmd.sh FSNN REPO
set -u
fsnn=$1 repo=$2
dir=$(mktemp -d /tmp/fsnn-model.XXXXXX)
trap 'rm -rf "$dir"' EXIT
passed=0 failed=0
check() { if eval "$1"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $2"; fi; }

# "exact short" of a totals line (neurons, weights, params) of the output.
total() { awk -v k="$1" '$1 == k { print $2, $3 }' "$dir/out"; }

# net input classes-args neurons weights params
while IFS='|' read -r net input extra neurons weights params; do
    # shellcheck disable=SC2086
    "$fsnn" model "$net" --input "$input" $extra >"$dir/out" 2>"$dir/err"
    rc=$?
    check '[ "$rc" -eq 0 ]' "'$net' on $input: exit code $rc: $(cat "$dir/err")"
    check '[ "$(total neurons)" = "$neurons" ]' "'$net' on $input: neurons '$(total neurons)', want '$neurons'"
    check '[ "$(total weights)" = "$weights" ]' "'$net' on $input: weights '$(total weights)', want '$weights'"
    check '[ "$(total params)" = "$params" ]' "'$net' on $input: params '$(total params)', want '$params'"
done <<'EOF'
64C5s (F64C5)|mnist||13338 13K|229440 229K|229514 230K
64C5s (F64C5)|1x28x28||13338 13K|229440 229K|229514 230K
64C5s (F64C5)|nmnist||20818 21K|290560 291K|290634 291K
400 (F400)|fashion_mnist||1194 1.2K|477600 478K|478010 478K
400 (F400)|fmnist|--classes 10|1194 1.2K|477600 478K|478010 478K
96C3s-256C3-384C3s-384C3-256C3 (F96C3u)|cifar10||158730 159K|3705376 3.7M|3706762 3.7M
96C3s-256C3-384C3s-384C3-256C3 (F96C3u)|cifar100||158820 159K|5179936 5.2M|5181412 5.2M
128C3s-256C3-512C3s-1024C3-512C3 (F128C3u)|3x32x32||232458 232K|11832704 11.8M|11835146 11.8M
128C3s-256C3-512C3s-1024C3-512C3 (F128C3u)|cifar100||232548 233K|14781824 14.8M|14784356 14.8M
128C3s-256C3-512C3s-1024C3-512C3 (F128C3u)|cifar10|--classes 100|232548 233K|14781824 14.8M|14784356 14.8M
EOF

# The rows of AlexNet-F: index, token, output shape, neurons, weights, params.
"$fsnn" model "96C3s-256C3-384C3s-384C3-256C3 (F96C3u)" --input cifar10 >"$dir/out" 2>&1
row() { awk -v i="$1" '$1 == i { print $2, $(NF - 3), $(NF - 2), $(NF - 1), $NF }' "$dir/out"; }
check '[ "$(row 1)" = "96C3s 96x16x16 24576 2592 2688" ]' "AlexNet-F row 1: '$(row 1)'"
check '[ "$(row 3)" = "384C3s 384x8x8 24576 884736 885120" ]' "AlexNet-F row 3: '$(row 3)'"
check '[ "$(row F)" = "F96C3u 96x16x16 - 221184 221184" ]' "AlexNet-F feedback row: '$(row F)'"
check '[ "$(row R)" = "10 10 10 163840 163850" ]' "AlexNet-F readout row: '$(row R)'"
check 'grep -q "feedback tconv 3x3 up 2x" "$dir/out"' "AlexNet-F feedback kind: $(cat "$dir/out")"

# Usage errors: exit code 2, a message and the usage.
usage() {
    "$fsnn" model "$@" >/dev/null 2>"$dir/err"
    local rc=$?
    check '[ "$rc" -eq 2 ] && grep -q "usage: fsnn model NET" "$dir/err"' \
        "fsnn model $*: exit code $rc (want 2): $(cat "$dir/err")"
}
usage
usage "400 (F400)"
usage --input mnist
usage "400 (F400)" --input
usage "400 (F400)" --input 1x28
usage "400 (F400)" --input 0x28x28
usage "400 (F400)" --input 1x28x28x1
usage "400 (F400)" --input 1x4097x28
usage "400 (F400)" --input cifar1000
usage "400 (F400)" --input mnist --classes 0
usage "400 (F400)" --input mnist --classes ten
usage "400 (F400)" --input mnist --classes 65537
usage "400 (F400)" --input mnist --class 10
usage 400 "(F400)" --input mnist
"$fsnn" model "400 (F400)" --input 1x28 2>"$dir/err" >/dev/null
check 'grep -q "\-\-input .1x28.: expected CxHxW" "$dir/err"' "bad --input message: $(cat "$dir/err")"

# A bad net: exit code 1, the place in the text and a caret under it.
"$fsnn" model "64C5x (F64C5)" --input mnist >/dev/null 2>"$dir/err"
rc=$?
check '[ "$rc" -eq 1 ]' "malformed net: exit code $rc (want 1)"
check 'grep -q "64C5x (F64C5).: at character 5 (.x.): unexpected character after the kernel size" "$dir/err"' \
    "malformed net message: $(cat "$dir/err")"
check 'grep -qx "        ^" "$dir/err"' "caret under character 5: $(cat "$dir/err")"
"$fsnn" model "64C5s-P2-32C3 (F64C3)" --input mnist >/dev/null 2>"$dir/err"
rc=$?
check '[ "$rc" -eq 1 ] && grep -q "feedback F64C3 gives 64x7x7 but layer 1 outputs 64x14x14" "$dir/err"' \
    "feedback mismatch: exit code $rc: $(cat "$dir/err")"

# --config: every configuration of configs/ resolves, and the paper's
# configurations give the paper's figures (CIFAR-100: 233K by this count of
# input + layers + classes; the paper prints 232K).
for cfg in "$repo"/configs/*.ini; do
    "$fsnn" model --config "$cfg" >"$dir/out" 2>"$dir/err"
    rc=$?
    check '[ "$rc" -eq 0 ]' "model --config $(basename "$cfg"): exit code $rc: $(cat "$dir/err")"
done
while IFS='|' read -r name neurons weights; do
    "$fsnn" model --config "$repo/configs/$name" >"$dir/out" 2>"$dir/err"
    check '[ "$(total neurons | cut -d" " -f2)" = "$neurons" ]' "$name: neurons '$(total neurons)', want $neurons"
    check '[ "$(total weights | cut -d" " -f2)" = "$weights" ]' "$name: weights '$(total weights)', want $weights"
done <<'EOF_CONFIGS'
fmnist_fc_lif.ini|1.2K|478K
mnist_conv_if.ini|13K|229K
mnist_conv_lif.ini|13K|229K
nmnist_conv_lif.ini|21K|291K
cifar10_alexnet_t30.ini|159K|3.7M
cifar10_alexnet_t100.ini|159K|3.7M
cifar10_cifarnet_t30.ini|232K|11.8M
cifar10_cifarnet_t100.ini|232K|11.8M
cifar100_cifarnet_if.ini|233K|14.8M
EOF_CONFIGS
"$fsnn" model --config "$repo/configs/demo.ini" "model.net=64C5s (F64C5)" >"$dir/out" 2>"$dir/err"
check '[ "$(total weights)" = "229440 229K" ]' "--config with a model.net override: '$(total weights)'"
"$fsnn" model --config "$dir/no_such.ini" >/dev/null 2>"$dir/err"
rc=$?
check '[ "$rc" -eq 1 ] && grep -q "no_such.ini" "$dir/err"' "--config of a missing file: exit $rc: $(cat "$dir/err")"
"$fsnn" model --config "$repo/configs/demo.ini" "model.net=64C5x" >/dev/null 2>"$dir/err"
rc=$?
check '[ "$rc" -eq 1 ] && grep -q "model.net" "$dir/err"' "--config with a bad net: exit $rc: $(cat "$dir/err")"
"$fsnn" model --config "$repo/configs/demo.ini" "400 (F400)" >/dev/null 2>"$dir/err"
rc=$?
check '[ "$rc" -eq 2 ]' "--config with a NET too: exit $rc (want 2)"
"$fsnn" model "400 (F400)" --input mnist train.epochs=3 >/dev/null 2>"$dir/err"
rc=$?
check '[ "$rc" -eq 2 ]' "an override without --config: exit $rc (want 2)"

# Listed in the command's help.
check '"$fsnn" --help | grep -q "fsnn model NET --input"' "fsnn --help lacks fsnn model"

# A multi-layer net trains (Eq. 10): the summary at start lists its layers.
"$fsnn" train "$repo/configs/demo.ini" "data.path=$repo/data/fashion-mnist" "run.dir=$dir/run" \
    data.train_limit=16 data.test_limit=16 train.epochs=1 train.batch=8 train.test_batch=8 \
    "model.net=4C3s-4C3 (F4C3)" >"$dir/out" 2>"$dir/err"
rc=$?
check '[ "$rc" -eq 0 ] && grep -q "^2   4C3 " "$dir/out" && [ -s "$dir/run/checkpoint.h5" ]' \
    "train 4C3s-4C3 (F4C3): exit code $rc: $(cat "$dir/err")"

echo "model_cmd: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
