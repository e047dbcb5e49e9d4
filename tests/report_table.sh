#!/usr/bin/env bash
# report_table: `fsnn report` on a sweep directory written here by hand
# (runs.tsv in the sweep layout, config.ini and metrics.csv with random
# values; no training). The table's numbers are recomputed with awk from the
# run directories' metrics.csv files, columns found by header name:
# mean and sample standard deviation (n - 1) of the final epoch's test_acc,
# best = max of those, mean final firing_rate, max peak_rss_mb of any row,
# finished epochs min..max, seeds done and missing. Tolerance 1e-8 relative
# (the CSV holds 10 significant digits). Also: plots without gnuplot in PATH
# (said, not silent; the tables still written) and with gnuplot but without
# checkpoints (no residual plot, said; the other two made).
#   report_table.sh FSNN
set -u
fsnn=$1
passed=0 failed=0
check() { if eval "$1"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $2"; fi; }
finish() { echo "report_table: $passed passed, $failed failed"; [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]; exit $?; }

dir=$(mktemp -d /tmp/fsnn-report-table.XXXXXX)
trap 'rm -rf "$dir"' EXIT
S=$dir/sweep
mkdir -p "$S/runs"
base=$dir/base.ini
printf '[model]\nnet = 30 (F30)\n[train]\nepochs = 4\n' >"$base"

# Three groups (neuron.leak 1, 0.9, 0.8) x 4 seeds. Run (leak 0.8, seed 4)
# never started (no directory); (0.9, 3) has only the header; finished
# epochs vary from 1 to 4.
leaks=(1 0.9 0.8)
printf 'id\tdir\tconfig\targs\n' >"$S/runs.tsv"
id=0
for gi in 0 1 2; do
    leak=${leaks[$gi]}
    for seed in 1 2 3 4; do
        run=$S/runs/leak=$leak-seed=$seed
        printf '%d\t%s\t%s\tneuron.leak=%s\tmodel.time_steps=6\trun.seed=%d\trun.dir=%s\n' \
            "$id" "$run" "$base" "$leak" "$seed" "$run" >>"$S/runs.tsv"
        id=$((id + 1))
        [ "$gi" -eq 2 ] && [ "$seed" -eq 4 ] && continue
        mkdir -p "$run"
        printf '[run]\nseed = %d\ndir = %s\n[model]\nnet = 30 (F30)\ntime_steps = 6\n[neuron]\nleak = %s\n[train]\nepochs = 4\n' \
            "$seed" "$run" "$leak" >"$run/config.ini"
        epochs=$(((seed + gi) % 4 + 1))
        [ "$gi" -eq 1 ] && [ "$seed" -eq 3 ] && epochs=0
        awk -v s=$((100 * gi + seed)) -v n=$epochs 'BEGIN {
            srand(s)
            print "epoch,lr,train_loss,test_acc,restarts,test_fwd_residual,firing_rate,peak_rss_mb"
            for (e = 1; e <= n; e++)
                printf "%d,0.05,%.6f,%.4f,0,%.6g,%.6g,%.1f\n", e, rand(), 40 + 50 * rand(), rand(),
                    0.3 * rand(), 30 + 20 * rand()
        }' >"$run/metrics.csv"
    done
done

"$fsnn" report "$S" --no-plots >"$dir/out.md" 2>"$dir/err"
rc=$?
check '[ "$rc" -eq 0 ]' "fsnn report exited $rc: $(cat "$dir/err")"
check '[ -f "$S/report.csv" ] && [ -f "$S/report.md" ]' "report.csv or report.md missing"
check 'cmp -s "$dir/out.md" "$S/report.md"' "the printed table differs from report.md"
rows=$(grep -c '^| g[0-9]' "$dir/out.md")
check '[ "$rows" -eq 3 ]' "Markdown has $rows group rows, want 3"
check '[ "$(($(wc -l <"$S/report.csv") - 1))" -eq 3 ]' "report.csv has $(($(wc -l <"$S/report.csv") - 1)) rows, want 3"

# The reference for one group: the metrics.csv files of its runs.
reference() { # leak -> "done missing mean std best firing peak emin emax best_epoch_mean"
    local files=() missing=0 emin=99 emax=0 seed run rows
    for seed in 1 2 3 4; do
        run=$S/runs/leak=$1-seed=$seed
        rows=0
        [ -f "$run/metrics.csv" ] && rows=$(($(wc -l <"$run/metrics.csv") - 1))
        [ "$rows" -lt "$emin" ] && emin=$rows
        [ "$rows" -gt "$emax" ] && emax=$rows
        if [ "$rows" -gt 0 ]; then files+=("$run/metrics.csv"); else missing=$((missing + 1)); fi
    done
    awk -F, -v missing=$missing -v emin=$emin -v emax=$emax '
        FNR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
        { last[FILENAME] = $c["test_acc"]; rate[FILENAME] = $c["firing_rate"]
          if (!(FILENAME in top) || $c["test_acc"] > top[FILENAME]) top[FILENAME] = $c["test_acc"]
          if ($c["peak_rss_mb"] > peak) peak = $c["peak_rss_mb"] }
        END {
            for (f in last) { n++; s += last[f]; r += rate[f]; t += top[f]; if (n == 1 || last[f] > best) best = last[f] }
            m = s / n
            for (f in last) ss += (last[f] - m) ^ 2
            sd = n > 1 ? sqrt(ss / (n - 1)) : -1
            printf "%d %d %.12g %.12g %.12g %.12g %.12g %d %d %.12g\n", n, missing, m, sd, best,
                r / n, peak, emin, emax, t / n
        }' "${files[@]}"
}
for gi in 0 1 2; do
    leak=${leaks[$gi]}
    ref=$(reference "$leak")
    # report.csv columns by name; the label has no comma here.
    got=$(awk -F, -v g="g$((gi + 1))" '
        NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
        $1 == g { printf "%s %s %s %s %s %s %s %s %s %s %s\n", $c["seeds_done"], $c["seeds_missing"],
            $c["acc_mean"], ($c["acc_std"] == "" ? -1 : $c["acc_std"]), $c["acc_best"],
            $c["firing_rate"], $c["peak_rss_mb"], $c["epochs_min"], $c["epochs_max"],
            $c["acc_best_epoch_mean"], $c["group"] }' \
        "$S/report.csv")
    echo "report_table: g$((gi + 1)) reference: $ref"
    echo "report_table: g$((gi + 1)) report:    $got"
    check 'awk -v a="$ref" -v b="$got" "BEGIN {
        if (split(a, x, \" \") != 10 || split(b, y, \" \") != 11) exit 1
        for (i = 1; i <= 10; i++) {
            d = x[i] - y[i]; if (d < 0) d = -d
            t = x[i] < 0 ? -x[i] : x[i]
            if (d > 1e-8 * (t > 1 ? t : 1)) exit 1
        }
        exit 0 }"' "g$((gi + 1)): report [$got] differs from awk [$ref]"
    check '[ "${got##* }" = "neuron.leak=$leak" ]' "g$((gi + 1)) label '${got##* }', want neuron.leak=$leak"
done
check 'grep -q "Missing runs (no finished epoch; not in the statistics): 2" "$S/report.md"' \
    "report.md does not list 2 missing runs"
check 'grep -q "leak=0.8-seed=4" "$S/report.md"' "report.md does not name the missing run"

# Without gnuplot in PATH: said on stderr and in report.md; tables written.
rm -f "$S/report.csv"
PATH=/nonexistent "$fsnn" report "$S" >/dev/null 2>"$dir/err"
rc=$?
check '[ "$rc" -eq 0 ]' "fsnn report without gnuplot exited $rc: $(cat "$dir/err")"
check 'grep -q "gnuplot is not in PATH" "$dir/err"' "no message about the missing gnuplot: $(cat "$dir/err")"
check 'grep -q "Plots not made: gnuplot is not in PATH" "$S/report.md"' "report.md does not say the plots were not made"
check '[ -f "$S/report.csv" ]' "report.csv not written without gnuplot"

# With gnuplot but no checkpoints: accuracy and firing-rate plots, no
# residual plot, each trace failure said.
if command -v gnuplot >/dev/null; then
    "$fsnn" report "$S" --plots "$dir/plots" --markdown "$dir/r.md" --csv "$dir/r.csv" \
        >/dev/null 2>"$dir/err"
    rc=$?
    check '[ "$rc" -eq 0 ]' "fsnn report with plots exited $rc: $(cat "$dir/err")"
    for png in accuracy firing_rate; do
        sig=$(od -An -tx1 -N8 "$dir/plots/$png.png" 2>/dev/null | tr -d ' \n')
        check '[ "$sig" = 89504e470d0a1a0a ]' "$png.png missing or not a PNG (signature '$sig')"
    done
    check '[ ! -e "$dir/plots/residual.png" ]' "residual.png made without any checkpoint"
    check '[ "$(grep -c "residual trace of g[0-9] not made" "$dir/err")" -eq 3 ]' \
        "not every group's missing trace was said: $(cat "$dir/err")"
    check 'grep -q "residual.png not made: nothing to draw" "$dir/r.md"' "r.md does not say why residual.png is missing"
    check '[ -f "$dir/r.csv" ] && [ -f "$dir/r.md" ]' "--csv/--markdown files missing"
    # Labels are text in the scripts, never commands: quotes, backquotes,
    # $(...) and gnuplot's @macros in an argument value.
    H=$dir/hostile
    mkdir -p "$H/runs"
    printf 'id\tdir\tconfig\targs\n' >"$H/runs.tsv"
    for k in 0 1; do
        run=$H/runs/r$k
        printf '%d\t%s\t%s\tdata.path=/p%d'"'"'q`touch %s/BQ`$(touch %s/SUB)"@x\\\trun.seed=1\trun.dir=%s\n' \
            "$k" "$run" "$base" "$k" "$dir" "$dir" "$run" >>"$H/runs.tsv"
        mkdir -p "$run"
        printf '[run]\nseed = 1\n[model]\nnet = 30 (F30)\n' >"$run/config.ini"
        printf 'epoch,test_acc,firing_rate,peak_rss_mb\n1,50,0.1,30\n2,60,0.2,31\n' >"$run/metrics.csv"
    done
    "$fsnn" report "$H" >/dev/null 2>"$dir/err"
    rc=$?
    check '[ "$rc" -eq 0 ]' "fsnn report of the hostile labels exited $rc: $(cat "$dir/err")"
    sig=$(od -An -tx1 -N8 "$H/plots/accuracy.png" 2>/dev/null | tr -d ' \n')
    check '[ "$sig" = 89504e470d0a1a0a ]' "accuracy.png with hostile labels missing"
    check '[ ! -e "$dir/BQ" ] && [ ! -e "$dir/SUB" ]' "a label ran a command"
    check 'grep -qF "title '"'"'g1: data.path=/p0'"''"'q\`touch" "$H/plots/accuracy.gp"' \
        "the label is not quoted as expected: $(grep title "$H/plots/accuracy.gp")"
else
    check 'false' "gnuplot is not installed (Debian package gnuplot-nox, jobs/setup.sh)"
fi
finish
