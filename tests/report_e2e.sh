#!/usr/bin/env bash
# report_e2e: a sweep directory made by hand in the sweep layout (runs.tsv
# written here, run directories from real tiny `fsnn train` runs: 2 configs
# x 2 seeds on 256 training and 100 test samples, 2 epochs, plus one run
# that never started), then:
#   - `fsnn report`: 2 groups, seeds 2 and 2 (+1 missing), mean, sample std
#     and best of the final test accuracy against awk over the run
#     directories' metrics.csv (1e-8 relative: the CSV's 10 digits);
#     accuracy.png, residual.png and firing_rate.png start with the PNG
#     signature;
#   - `fsnn eval RUN --residual-trace`: T rows (t = 1..T), the absolute
#     residual at t = T equals the test_fwd_residual of the final epoch in
#     metrics.csv (the same model, samples and computation; metrics.csv has
#     6 digits: 1e-5 relative), relative residual and delta positive; the
#     report's trace of the group's first seed is the same file byte for
#     byte; model.time_steps=12 gives 12 rows; with 2 ranks the trace agrees
#     within 1e-5 relative (other micro-shards round differently).
#   report_e2e.sh FSNN REPO MPIEXEC
set -u
fsnn=$1 repo=$2 mpiexec=$3
data=$repo/data/fashion-mnist
passed=0 failed=0
check() { if eval "$1"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $2"; fi; }
finish() { echo "report_e2e: $passed passed, $failed failed"; [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]; exit $?; }

if [ ! -e "$data/t10k-images-idx3-ubyte.gz" ] && [ ! -e "$data/t10k-images-idx3-ubyte" ]; then
    echo "FAILED: $data has no Fashion-MNIST; run jobs/setup.sh first"
    failed=1
    finish
fi
dir=$(mktemp -d /tmp/fsnn-report-e2e.XXXXXX)
trap 'rm -rf "$dir"' EXIT
S=$dir/sweep
mkdir -p "$S/runs" "$S/logs"
base=$dir/base.ini
cat >"$base" <<EOF
[data]
dataset = fmnist
path = $data
train_limit = 256
test_limit = 100
[model]
net = 400 (F400)
time_steps = 5
[neuron]
vth = 2
[train]
epochs = 2
batch = 64
[run]
progress = plain
EOF

printf 'id\tdir\tconfig\targs\n' >"$S/runs.tsv"
id=0
for leak in 1 0.95; do
    for seed in 1 2 3; do
        [ "$leak" = 1 ] && [ "$seed" = 3 ] && continue
        run=$S/runs/neuron.leak=$leak-seed=$seed
        printf '%d\t%s\t%s\tneuron.leak=%s\trun.seed=%d\trun.dir=%s\n' \
            "$id" "$run" "$base" "$leak" "$seed" "$run" >>"$S/runs.tsv"
        id=$((id + 1))
    done
done
# Each row as slurm/sweep.sbatch runs it: fields split on TAB, no eval; the
# last row (leak 0.95, seed 3) is left unstarted.
while IFS=$'\t' read -r -a f; do
    [ "${f[0]}" = id ] || [ "${f[0]}" = 4 ] && continue
    "$fsnn" train "${f[2]}" "${f[@]:3}" >"$dir/train-${f[0]}.log" 2>&1
    rc=$?
    check '[ "$rc" -eq 0 ]' "fsnn train of row ${f[0]} exited $rc: $(tail -n 3 "$dir/train-${f[0]}.log")"
done <"$S/runs.tsv"

"$fsnn" report "$S" >"$dir/out.md" 2>"$dir/err"
rc=$?
check '[ "$rc" -eq 0 ]' "fsnn report exited $rc: $(cat "$dir/err")"
echo "report_e2e: the table:"
sed -n '/^| #/,/^$/p' "$dir/out.md"
check '[ "$(($(wc -l <"$S/report.csv") - 1))" -eq 2 ]' "report.csv: $(($(wc -l <"$S/report.csv") - 1)) groups, want 2"

# awk over the run directories: final test_acc of each finished run.
reference() { # leak -> "done missing mean std best"
    local files=() missing=0 seed run
    for seed in 1 2 3; do
        run=$S/runs/neuron.leak=$1-seed=$seed
        grep -q "run.dir=$run\$" "$S/runs.tsv" || continue
        if [ -f "$run/metrics.csv" ] && [ "$(wc -l <"$run/metrics.csv")" -gt 1 ]; then
            files+=("$run/metrics.csv")
        else
            missing=$((missing + 1))
        fi
    done
    awk -F, -v missing=$missing '
        FNR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
        { last[FILENAME] = $c["test_acc"] }
        END {
            for (f in last) { n++; s += last[f]; if (n == 1 || last[f] > best) best = last[f] }
            m = s / n
            for (f in last) ss += (last[f] - m) ^ 2
            sd = n > 1 ? sqrt(ss / (n - 1)) : -1
            printf "%d %d %.12g %.12g %.12g\n", n, missing, m, sd, best
        }' "${files[@]}"
}
gi=0
for leak in 1 0.95; do
    gi=$((gi + 1))
    ref=$(reference "$leak")
    got=$(awk -F, -v g="g$gi" '
        NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
        $1 == g { print $c["seeds_done"], $c["seeds_missing"], $c["acc_mean"], $c["acc_std"], $c["acc_best"] }' \
        "$S/report.csv")
    echo "report_e2e: g$gi (neuron.leak=$leak) awk: $ref; report: $got"
    check 'awk -v a="$ref" -v b="$got" "BEGIN {
        if (split(a, x, \" \") != 5 || split(b, y, \" \") != 5) exit 1
        for (i = 1; i <= 5; i++) {
            d = x[i] - y[i]; if (d < 0) d = -d
            t = x[i] < 0 ? -x[i] : x[i]
            if (d > 1e-8 * (t > 1 ? t : 1)) exit 1
        }
        exit 0 }"' "g$gi: report [$got] differs from awk [$ref]"
done
check 'grep -q "^| g2 | neuron.leak=0.95 | 400 (F400) | LIF 0.95 | 5 |.*| 2 (+1 missing) |$" "$dir/out.md"' \
    "the g2 row does not show LIF 0.95, T 5 and the missing seed"
for png in accuracy residual firing_rate; do
    sig=$(od -An -tx1 -N8 "$S/plots/$png.png" 2>/dev/null | tr -d ' \n')
    check '[ "$sig" = 89504e470d0a1a0a ]' "$png.png missing or not a PNG (signature '$sig')"
done

# The residual trace of the first seed of group 1.
run=$S/runs/neuron.leak=1-seed=1
"$fsnn" eval "$run" --residual-trace >"$dir/eval.log" 2>&1
rc=$?
check '[ "$rc" -eq 0 ]' "fsnn eval --residual-trace exited $rc: $(tail -n 3 "$dir/eval.log")"
trace=$run/residual_trace.csv
check '[ "$(head -n 1 "$trace")" = "t,residual_mean,residual_max,delta_mean,abs_residual_mean,abs_residual_max" ]' \
    "trace header: $(head -n 1 "$trace" 2>&1)"
check '[ "$(awk -F, "NR > 1 && \$1 == NR - 1 { n++ } END { print n }" "$trace")" = 5 ]' \
    "the trace does not have rows t = 1..5: $(cat "$trace")"
check 'awk -F, "NR > 1 && !(\$2 > 0 && \$3 >= \$2 && \$4 > 0 && \$6 >= \$5) { bad = 1 } END { exit bad }" "$trace"' \
    "trace values not positive or max < mean: $(cat "$trace")"
fwd=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next } { v = $c["test_fwd_residual"] } END { print v }' \
    "$run/metrics.csv")
atT=$(awk -F, 'END { print $5 }' "$trace")
echo "report_e2e: residual at t = T: trace $atT, metrics.csv test_fwd_residual $fwd"
check 'awk -v a="$atT" -v b="$fwd" "BEGIN { d = a - b; if (d < 0) d = -d; exit !(b > 0 && d <= 1e-5 * b) }"' \
    "trace residual at T ($atT) differs from test_fwd_residual ($fwd)"
check 'cmp -s "$trace" "$S/plots/residual_g1.csv"' "the report's trace of g1 differs from fsnn eval's"
"$fsnn" eval "$run" --residual-trace "$dir/t12.csv" model.time_steps=12 >/dev/null 2>&1
check '[ "$(($(wc -l <"$dir/t12.csv") - 1))" -eq 12 ]' "model.time_steps=12: $(($(wc -l <"$dir/t12.csv") - 1)) rows"
"$mpiexec" -np 2 --oversubscribe "$fsnn" eval "$run" --residual-trace "$dir/np2.csv" >"$dir/np2.log" 2>&1
rc=$?
check '[ "$rc" -eq 0 ]' "2-rank eval exited $rc: $(tail -n 3 "$dir/np2.log")"
check 'paste -d, "$trace" "$dir/np2.csv" | awk -F, "NR > 1 { for (i = 1; i <= 6; i++) { d = \$i - \$(i + 6); if (d < 0) d = -d; if (d > 1e-5 * (\$i > 0 ? \$i : -\$i) + 1e-12) bad = 1 } n++ } END { exit bad || n != 5 }"' \
    "the 2-rank trace differs: $(paste -d' ' "$trace" "$dir/np2.csv")"
finish
