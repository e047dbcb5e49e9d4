#!/usr/bin/env bash
# `fsnn sweep status` and resubmission against the real queue of the local
# cluster (slurm/cluster.sh), with a tiny sweep of 3 runs:
#   - a job of the same user fills every CPU of the node, so the sweep's
#     array tasks stay queued: status shows 3 "queued" runs with the array
#     task ids and SLURM's reason, and --submit again submits nothing;
#   - the array job is cancelled; run 0's job.state is made to say running
#     in it (as after a node crash), run 2's done: status shows run 0 "lost",
#     run 1 pending with the note that its task left the queue unstarted;
#   - the node is freed and --submit submits exactly runs 0 and 1 (sbatch's
#     --array and submissions.tsv), which then finish.
# Every wait is bounded; the test's own jobs are cancelled on exit.
#   slurm_status.sh FSNN REPO
set -u
fsnn=$1 repo=$2
SLURM_CONF=$(bash "$repo/slurm/cluster.sh" conf)
export SLURM_CONF
dir=$(mktemp -d /tmp/fsnn-slurm-status.XXXXXX)
jobs=()
cleanup() {
    [ "${#jobs[@]}" -gt 0 ] && scancel "${jobs[@]}" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT
passed=0 failed=0
check() { if eval "$1"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $2"; fi; }
finish() { echo "slurm_status: $passed passed, $failed failed"; [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]; exit $?; }
T() { timeout 60 "$@"; }
# wait_for SECONDS CONDITION: polls CONDITION every second.
wait_for() {
    local i
    for ((i = 0; i < $1; i++)); do
        eval "$2" && return 0
        sleep 1
    done
    return 1
}

# A job that holds every CPU of the node until it is cancelled.
cpus=$(T sinfo -h -o %c | head -n 1)
blocker=$(T sbatch --parsable --ntasks="$cpus" --time=00:05:00 --output=/dev/null --job-name=fsnn-blocker \
    --wrap='sleep 240')
check '[[ "$blocker" =~ ^[0-9]+$ ]]' "blocker not submitted: '$blocker'"
[[ "$blocker" =~ ^[0-9]+$ ]] || finish
jobs+=("$blocker")
wait_for 30 '[ "$(T squeue -h -j "$blocker" -o %T)" = RUNNING ]'
check '[ "$(T squeue -h -j "$blocker" -o %T)" = RUNNING ]' "the blocker does not run: $(squeue)"

cat >"$dir/st.ini" <<EOF2
[sweep]
base = $repo/configs/fmnist_fc_lif.ini
seeds = 3
[set]
data.path = $repo/data/fashion-mnist
data.train_limit = 128
data.test_limit = 100
train.epochs = 1
run.threads = 1
[slurm]
time = 00:05:00
signal_seconds = 30
EOF2
S=$dir/st
run() { (cd "$dir" && T "$@") >"$dir/out" 2>"$dir/err"; rc=$?; }
out() { cat "$dir/out" "$dir/err"; }
has() { grep -qF -- "$1" "$dir/$2"; }

# --- queued behind the blocker ---
run "$fsnn" sweep st.ini --submit
j1=$(sed -n 's/^Submitted batch job \([0-9][0-9]*\)$/\1/p' "$dir/out")
check '[ "$rc" -eq 0 ] && [ -n "$j1" ] && has "--array=0-2 " out' "first submit: exit $rc $(out)"
[ -n "$j1" ] || finish
jobs+=("$j1")
check '[ "$(cut -f 1,3 "$S/submissions.tsv" | tr "\t\n" ":;")" = "job:runs;$j1:0-2;" ]' \
    "submissions.tsv after the first submit: $(cat "$S/submissions.tsv")"
wait_for 10 '[ "$(T squeue -h -j "$j1" --array -o %r | grep -c "Resources\|Priority")" -eq 3 ]'
run "$fsnn" sweep status "$S"
check '[ "$rc" -eq 0 ] && has "3 runs: 0 finished, 0 running, 0 requeued, 0 failed, 0 pending, 3 queued, 0 lost" out' \
    "status of queued runs: $(out); squeue: $(squeue)"
for i in 0 1 2; do
    check 'grep -Eq "^$i +queued +- +- +seed-$((i + 1)) +job ${j1}_$i waits in the queue \((Resources|Priority)\)$" "$dir/out"' \
        "run $i not queued in ${j1}_$i: $(out)"
done
check 'has "SLURM asked: squeue lists 3 entries of job $j1" out' "SLURM line: $(out)"
run "$fsnn" sweep st.ini --submit
check '[ "$rc" -eq 0 ] && has "nothing to start: 0 finished, 0 running, 3 queued" out && ! has "Submitted batch job" out' \
    "queued runs submitted a second time: $(out)"
check '[ "$(wc -l <"$S/submissions.tsv")" -eq 2 ]' "a submission was recorded: $(cat "$S/submissions.tsv")"
# Without SLURM the same runs are pending, as the files say.
run "$fsnn" sweep status "$S" --no-slurm
check 'has "3 runs: 0 finished, 0 running, 0 requeued, 0 failed, 3 pending" out && has "SLURM not asked: --no-slurm;" out' \
    "--no-slurm: $(out)"

# --- the array job cancelled: a run marked running in it is lost ---
T scancel "$j1"
wait_for 20 '[ -z "$(T squeue -h -j "$j1" 2>/dev/null)" ]'
check '[ -z "$(T squeue -h -j "$j1" 2>/dev/null)" ]' "job $j1 still queued: $(squeue)"
mkdir -p "$S/runs/seed-1" "$S/runs/seed-3"
echo "running $(date +%s) ${j1}_0 -" >"$S/runs/seed-1/job.state"
echo "done $(date +%s) ${j1}_2 0" >"$S/runs/seed-3/job.state"
run "$fsnn" sweep status "$S"
check 'grep -Eq "^0 +lost +- +- +seed-1 +job ${j1}_0 is not in the queue any more; resubmit the sweep to resume it from its checkpoint$" "$dir/out"' \
    "run 0 not lost: $(out)"
check 'grep -Eq "^1 +pending +- +- +seed-2 +job ${j1}_1 left the queue without starting it \(see logs/${j1}_1.out\)$" "$dir/out"' \
    "run 1: $(out)"
check 'has "3 runs: 1 finished, 0 running, 0 requeued, 0 failed, 1 pending, 0 queued, 1 lost" out' "counts: $(out)"

# --- resubmission: exactly the lost and the pending run ---
T scancel "$blocker"
run "$fsnn" sweep st.ini --submit
j2=$(sed -n 's/^Submitted batch job \([0-9][0-9]*\)$/\1/p' "$dir/out")
check '[ "$rc" -eq 0 ] && [ -n "$j2" ] && has "submitting 2 runs: sbatch --parsable --array=0-1 " out' "resubmission: exit $rc $(out)"
check 'has "run 0 seed-1: job ${j1}_0 is not in the queue any more; starting it again" err' "no note on the lost run: $(out)"
[ -n "$j2" ] && jobs+=("$j2")
check '[ "$(cut -f 1,3 "$S/submissions.tsv" | tr "\t\n" ":;")" = "job:runs;$j1:0-2;$j2:0-1;" ]' \
    "submissions.tsv after the resubmission: $(cat "$S/submissions.tsv")"
wait_for 60 '[ -z "$(T squeue -h -j "$j2" 2>/dev/null)" ]'
check '[ -z "$(T squeue -h -j "$j2" 2>/dev/null)" ]' "job $j2 still queued after 60 s: $(squeue)"
run "$fsnn" sweep status "$S"
check 'has "3 runs: 3 finished, 0 running, 0 requeued, 0 failed, 0 pending, 0 queued, 0 lost" out' \
    "runs not finished: $(out); $(tail -n 5 "$S"/runs/*/train.log 2>/dev/null)"
check 'grep -Eq "^0 +finished +1/1 " "$dir/out" && grep -Eq "^1 +finished +1/1 " "$dir/out"' "runs 0 and 1 did not train: $(out)"
finish
