# Shared helpers of the shell tests; source it after setting `fsnn` (the
# binary) and `name` (the test's name for its summary line).
#   check COND MESSAGE   counts COND (shell text, eval'd) as passed or failed
#   finish               prints the summary; exits non-zero on a failure or
#                        when nothing was checked
#   sha RUN_DIR          weights_sha256 of RUN_DIR's checkpoint (fsnn inspect)
#   metric RUN_DIR COL   column COL of the last row of RUN_DIR/metrics.csv
#   check_eval RUN_DIR ACC   `fsnn eval RUN_DIR` must run and print ACC (%.2f)
#   eval_figures RUN_DIR `fsnn eval RUN_DIR`'s figures without the path and
#                        the speed (empty when it fails)
#   cifar_fixture DIR    a CIFAR-10 folder DIR/cifar-10-batches-bin in the
#                        official layout: 10 records per training batch, 20
#                        test records, each image a flat colour set by its
#                        label (20 * label + 30)
#   train_with CONFIG RUN_DIR [MPIEXEC words... --] [overrides...]
#                        fsnn train with the overrides of the array `base`
#                        then the given ones, under the launcher words when
#                        the first word after RUN_DIR is $mpiexec
passed=0 failed=0
check() { if eval "$1"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $2"; fi; }
finish() { echo "$name: $passed passed, $failed failed"; [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]; exit $?; }
sha() { "$fsnn" inspect "$1/checkpoint.h5" 2>/dev/null | sed -n 's/^weights_sha256 //p'; }
metric() {
    awk -F, -v k="$2" 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next } { v = $c[k] }
        END { print v }' "$1/metrics.csv" 2>/dev/null
}
check_eval() {
    local run=$1 acc=$2 rc eacc
    "$fsnn" eval "$run" >"$run.eval" 2>&1
    rc=$?
    check '[ "$rc" -eq 0 ]' "fsnn eval exited $rc: $(tail -n 3 "$run.eval")"
    eacc=$(sed -n 's/.*test accuracy \([0-9.]*\)%.*/\1/p' "$run.eval" | head -n 1)
    check '[ -n "$acc" ] && [ "$eacc" = "$(printf %.2f "$acc")" ]' \
        "eval accuracy ${eacc:-none}% differs from training's ${acc:-none}%"
}
eval_figures() { "$fsnn" eval "$1" 2>/dev/null | sed -n 's/.*\(test accuracy.*firing rate [0-9.]*\).*/\1/p'; }
train_with() {
    local config=$1 run=$2
    shift 2
    local launch=()
    if [ "$#" -gt 0 ] && [ "$1" = "${mpiexec:-}" ]; then
        while [ "$1" != -- ]; do launch+=("$1"); shift; done
        shift
    fi
    "${launch[@]}" "$fsnn" train "$config" "run.dir=$run" "${base[@]}" "$@"
}
cifar_fixture() {
    local data=$1/cifar-10-batches-bin b i
    mkdir -p "$data"
    record() {
        printf "\\$(printf %03o "$2")" >>"$1"
        head -c 3072 /dev/zero | tr '\0' "\\$(printf %03o $((20 * $2 + 30)))" >>"$1"
    }
    for b in 1 2 3 4 5; do
        for i in $(seq 0 9); do record "$data/data_batch_$b.bin" $(((i + b) % 10)); done
    done
    for i in $(seq 0 19); do record "$data/test_batch.bin" $((i % 10)); done
}
