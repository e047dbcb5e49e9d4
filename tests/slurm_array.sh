#!/usr/bin/env bash
# A real job array on the local cluster (slurm/cluster.sh): a tiny sweep of 2
# configurations (IF, LIF) x 3 seeds, 2 ranks per task, submitted with
# `fsnn sweep --submit` and waited for; then
#   - `fsnn sweep status` shows 6 finished runs;
#   - `fsnn report` has 2 groups of 3 seeds whose mean, std and best final
#     test accuracy equal those computed by awk from the run directories;
#   - submitting again starts nothing (finished runs are skipped).
#   slurm_array.sh FSNN REPO
set -u
fsnn=$1 repo=$2
SLURM_CONF=$(bash "$repo/slurm/cluster.sh" conf)
export SLURM_CONF
dir=$(mktemp -d /tmp/fsnn-slurm-array.XXXXXX)
jid=
cleanup() {
    [ -n "$jid" ] && scancel "$jid" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT
passed=0 failed=0
check() { if eval "$1"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $2"; fi; }
finish() { echo "slurm_array: $passed passed, $failed failed"; [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]; exit $?; }

cat >"$dir/arr.ini" <<EOF2
[sweep]
base = $repo/configs/fmnist_fc_lif.ini
seeds = 3
[grid]
neuron.leak = 1, 0.95
[set]
data.path = $repo/data/fashion-mnist
data.train_limit = 384
data.test_limit = 200
train.epochs = 1
run.threads = 1
[slurm]
ntasks = 2
time = 00:10:00
signal_seconds = 30
EOF2
S=$dir/arr
(cd "$dir" && "$fsnn" sweep arr.ini --submit) >"$dir/submit.out" 2>&1
rc=$?
check '[ "$rc" -eq 0 ]' "fsnn sweep --submit exited $rc: $(cat "$dir/submit.out")"
jid=$(sed -n 's/.*Submitted batch job \([0-9][0-9]*\).*/\1/p' "$dir/submit.out" | head -n 1)
check '[ -n "$jid" ]' "no job id in: $(cat "$dir/submit.out")"
check 'grep -q -- "--array=0-5" "$dir/submit.out"' "the array is not 0-5: $(cat "$dir/submit.out")"
[ -n "$jid" ] || finish

# Bounded wait for every task of the array to leave the queue.
for _ in $(seq 600); do
    [ -z "$(squeue -h -j "$jid" 2>/dev/null)" ] && break
    sleep 1
done
left=$(squeue -h -j "$jid" 2>/dev/null | wc -l)
check '[ "$left" -eq 0 ]' "$left tasks still queued after 600 s: $(squeue -j "$jid")"
[ "$left" -eq 0 ] && jid=

"$fsnn" sweep status "$S" >"$dir/status.out" 2>&1
check 'grep -q "^6 runs: 6 finished" "$dir/status.out"' "status: $(tail -n 8 "$dir/status.out"; \
    tail -n 5 "$S"/runs/*/train.log 2>/dev/null | tail -n 20)"
for r in "$S"/runs/*; do
    check 'grep -q "data parallel over 2 ranks" "$r/train.log"' "$(basename "$r") did not run on 2 ranks"
done

"$fsnn" report "$S" --no-plots >"$dir/report.md" 2>"$dir/report.err"
rc=$?
check '[ "$rc" -eq 0 ]' "fsnn report exited $rc: $(cat "$dir/report.err")"
sed -n '/^| #/,/^$/p' "$dir/report.md"
check '[ "$(($(wc -l <"$S/report.csv") - 1))" -eq 2 ]' "report.csv has $(($(wc -l <"$S/report.csv") - 1)) groups, want 2"
gi=0
for leak in 1 0.95; do
    gi=$((gi + 1))
    ref=$(awk -F, '
        FNR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
        { last[FILENAME] = $c["test_acc"] }
        END {
            for (f in last) { n++; s += last[f]; if (n == 1 || last[f] > best) best = last[f] }
            m = s / n
            for (f in last) ss += (last[f] - m) ^ 2
            printf "%d %.12g %.12g %.12g\n", n, m, sqrt(ss / (n - 1)), best
        }' "$S"/runs/leak-"$leak"_seed-*/metrics.csv)
    got=$(awk -F, -v g="g$gi" '
        NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
        $1 == g { print $c["seeds_done"], $c["acc_mean"], $c["acc_std"], $c["acc_best"] }' \
        "$S/report.csv")
    echo "slurm_array: g$gi (leak $leak) awk: $ref; report: $got"
    check 'awk -v a="$ref" -v b="$got" "BEGIN {
        if (split(a, x, \" \") != 4 || split(b, y, \" \") != 4 || x[1] != 3) exit 1
        for (i = 1; i <= 4; i++) {
            d = x[i] - y[i]; if (d < 0) d = -d
            if (d > 1e-8 * (x[i] > 1 ? x[i] : 1)) exit 1
        }
        exit 0 }"' "g$gi: report [$got] differs from awk [$ref]"
done

(cd "$dir" && "$fsnn" sweep arr.ini --submit) >"$dir/again.out" 2>&1
rc=$?
check '[ "$rc" -eq 0 ] && grep -q "nothing to start: 6 finished" "$dir/again.out" && ! grep -q "Submitted batch job" "$dir/again.out"' \
    "resubmission did not skip the finished runs: $(cat "$dir/again.out")"
finish
