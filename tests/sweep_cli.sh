#!/usr/bin/env bash
# `fsnn sweep` from the command line, without SLURM: --dry-run output and
# that it writes nothing; usage errors; hostile sweep files (quotes, ';',
# $(...), backticks, newlines, NUL bytes) refused with FILE:LINE before
# anything runs; --submit through a fake `sbatch` first on PATH that records
# its argv NUL-separated, compared byte for byte, with a sweep directory and
# values full of shell metacharacters, and canary files that an injected
# command would create; runs.tsv byte for byte; a missing sbatch or batch
# script; resubmission leaving finished and running runs out of --array;
# status counts; a changed sweep file and malformed runs.tsv refused.
#   sweep_cli.sh FSNN REPO
set -u
fsnn=$1 repo=$2
fsnn_abs=$(readlink -f "$fsnn")
passed=0 failed=0
check() { if eval "$1"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $2"; fi; }
finish() { echo "sweep_cli: $passed passed, $failed failed"; [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]; exit $?; }

work=$(mktemp -d /tmp/fsnn-sweep-cli.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
unset FSNN_SLURM_DIR

# run CMD...: exit code in $rc, output in $work/out and $work/err.
run() { "$@" >"$work/out" 2>"$work/err"; rc=$?; }
out() { cat "$work/out"; }
err() { cat "$work/err"; }
has() { grep -qF -- "$1" "$work/$2"; }
# The files an injected command would create.
no_canary() { for c in canary canary2 canary3 canary4; do [ ! -e "$work/$c" ] || return 1; done; }

# --- --dry-run of the shipped tiny sweep: the table and the sbatch line ---
run "$fsnn" sweep "$repo/configs/sweeps/tiny.ini" --dry-run
check '[ "$rc" -eq 0 ]' "dry-run exit $rc: $(err)"
check 'has "sweep tiny: 6 runs (2 points x 3 seeds) in $work/tiny" out' "dry-run head: $(out)"
check 'has "each run: fsnn train $repo/configs/fmnist_fc_lif.ini ARGS run.dir=$work/tiny/runs/DIR" out' \
    "dry-run 'each run' line: $(out)"
check 'grep -Eq "^0 +leak-1_seed-1 +neuron.leak=1 data.train_limit=1024 data.test_limit=500 train.epochs=2 run.seed=1$" out' \
    "dry-run row 0: $(out)"
check 'grep -Eq "^5 +leak-0.95_seed-3 +neuron.leak=0.95 data.train_limit=1024 data.test_limit=500 train.epochs=2 run.seed=3$" out' \
    "dry-run row 5: $(out)"
check 'has "sbatch --parsable --array=0-5 --output=$work/tiny/logs/%A_%a.out --ntasks=2 --time=00:15:00 --signal=B:USR1@60 --requeue --job-name=fsnn-tiny $repo/slurm/sweep.sbatch $fsnn_abs $work/tiny" out' \
    "dry-run sbatch line: $(out)"
check 'has "nothing written (--dry-run)" out && [ ! -e "$work/tiny" ]' "dry-run wrote something: $(ls "$work")"

# --- usage ---
run "$fsnn" sweep
check '[ "$rc" -eq 2 ] && has "no sweep file given" err' "no file: exit $rc $(err)"
run "$fsnn" sweep "$repo/configs/sweeps/tiny.ini" --fast
check '[ "$rc" -eq 2 ] && has "unexpected argument '"'"'--fast'"'"'" err' "unknown option: exit $rc $(err)"
run "$fsnn" sweep "$repo/configs/sweeps/tiny.ini" --submit --local
check '[ "$rc" -eq 2 ] && has "one of --dry-run, --submit, --local" err' "two modes: exit $rc $(err)"
run "$fsnn" sweep "$repo/configs/sweeps/tiny.ini" --dry-run -j 2
check '[ "$rc" -eq 2 ] && has "-j goes with --local" err' "-j without --local: exit $rc $(err)"
run "$fsnn" sweep "$repo/configs/sweeps/tiny.ini" --local -j 0
check '[ "$rc" -eq 2 ] && has "-j takes a number" err' "-j 0: exit $rc $(err)"
run "$fsnn" sweep status
check '[ "$rc" -eq 2 ] && has "status takes one SWEEP_DIR" err' "status without dir: exit $rc $(err)"
run env OMPI_COMM_WORLD_SIZE=2 "$fsnn" sweep "$repo/configs/sweeps/tiny.ini" --dry-run
check '[ "$rc" -eq 2 ] && has "without mpirun or srun" err' "under a launcher: exit $rc $(err)"
run "$fsnn" --help
check '[ "$rc" -eq 0 ] && has "fsnn sweep status SWEEP_DIR" out' "usage lists the sweep: $(out)"

# --- the fake sbatch and batch script ---
mkdir -p "$work/bin" "$work/slurm"
cat >"$work/bin/sbatch" <<'EOF'
#!/bin/sh
printf '%s\0' "$@" >"$SBATCH_RECORD"
[ -n "${SBATCH_FAIL:-}" ] && { echo "sbatch: error: invalid partition" >&2; exit 1; }
[ -n "${SBATCH_SAYS:-}" ] && { printf '%s\n' "$SBATCH_SAYS"; exit 0; }
echo "${SBATCH_JOB:-4242}"
EOF
# The fake squeue records its argv and prints the file $SQUEUE_OUT, with
# $SQUEUE_ERR on stderr and the exit code $SQUEUE_RC.
cat >"$work/bin/squeue" <<'EOF'
#!/bin/sh
printf '%s\0' "$@" >"$SQUEUE_RECORD"
[ -n "${SQUEUE_ERR:-}" ] && echo "$SQUEUE_ERR" >&2
cat "$SQUEUE_OUT"
exit "${SQUEUE_RC:-0}"
EOF
chmod +x "$work/bin/sbatch" "$work/bin/squeue"
export SQUEUE_RECORD="$work/squeue.argv" SQUEUE_OUT="$work/squeue.out"
: >"$SQUEUE_OUT"
printf '#!/bin/sh\nexit 0\n' >"$work/slurm/sweep.sbatch"
export FSNN_SLURM_DIR="$work/slurm" SBATCH_RECORD="$work/sbatch.argv"
fake_path="$work/bin:$PATH"

# --- hostile sweep files: refused before anything is written or run ---
base="$repo/configs/fmnist_fc_lif.ini"
hostile() { # NAME WANT_REGEX PRINTF_FORMAT
    local name=$1 want=$2
    printf "$3" "$base" >"$work/$name.ini"
    rm -f "$SBATCH_RECORD"
    run env PATH="$fake_path" "$fsnn" sweep "$work/$name.ini" --submit
    check '[ "$rc" -eq 1 ] && grep -Eq -- "$want" "$work/err"' "hostile $name: exit $rc, stderr: $(err)"
    check '[ ! -e "$work/$name" ] && [ ! -e "$SBATCH_RECORD" ]' "hostile $name: something was written or submitted"
}
hostile quote1 "quote1.ini:3: ''' at column 9: not allowed" '[sweep]\nbase = %s\nname = x'"'"'y\n'
hostile quote2 "quote2.ini:4: '\"' at column 18" '[sweep]\nbase = %s\n[set]\ndata.path = /tmp/"x"\n'
hostile semi "semi.ini:4: ';' at column 14" '[sweep]\nbase = %s\n[set]\ndata.path = a;touch canary\n'
hostile subst "subst.ini:5: '\\$' at column 7" '[grid]\nneuron.leak = 1\n[sweep]\nbase = %s\ndir = $(touch canary)\n'
hostile subst2 "subst2.ini:4: '\\$' at column 13" '[sweep]\nbase = %s\n[set]\ndata.path = $(touch canary)\n'
hostile tick "tick.ini:4: '\`' at column 16" '[sweep]\nbase = %s\n[grid]\ndata.path = a, `touch canary`\n'
hostile newline "newline.ini:5: syntax error: 'touch canary'" '[sweep]\nbase = %s\n[set]\ndata.path = a\ntouch canary\n'
hostile nul "nul.ini:4: NUL byte at column 14" '[sweep]\nbase = %s\n[set]\ndata.path = a\0touch canary\n'
hostile nulname "nulname.ini:3: NUL byte" '[sweep]\nbase = %s\nname = a\0b\n'
hostile esc "esc.ini:4: byte 0x1b at column 14: a control character" '[sweep]\nbase = %s\n[set]\ndata.path = a\033]0;x\007\n'
hostile tab "tab.ini:3: byte 0x09 at column 5: a tab" '[sweep]\nbase = %s\nname\t= x\n'
hostile slash "slash.ini:3: .sweep. key 'name': 'a/b' is not a sweep name" '[sweep]\nbase = %s\nname = a/b\n'
hostile extra "extra.ini:4: .slurm. key 'extra': free-form sbatch options are not allowed" '[sweep]\nbase = %s\n[slurm]\nextra = --wrap=x\n'
hostile badkey "badkey.ini:4: .grid. key 'neuron.lek': unknown key \(did you mean 'neuron.leak'\?\)" '[sweep]\nbase = %s\n[grid]\nneuron.lek = 1, 0.95\n'
hostile badval "badval.ini:4: .grid. entry 2: key 'neuron.leak': 2 is out of range" '[sweep]\nbase = %s\n[grid]\nneuron.leak = 1, 2\n'
check 'no_canary' "a canary appeared: $(ls "$work")"

# --- --submit with metacharacters everywhere: argv and runs.tsv byte for byte ---
D="$work/sweep dir (a&b|c) <x> * ? ! # ~ [1]"
P="/nonexistent/a&touch canary2&b|touch canary3>canary4 <(x) * ?"
printf '[sweep]\nbase = %s\ndir = %s\n[grid]\nmodel.net = 400 (F400), 64 (F64)\n[set]\ndata.path = %s\n' \
    "$base" "$D" "$P" >"$work/odd.ini"
rm -f "$SBATCH_RECORD"
run env PATH="$fake_path" "$fsnn" sweep odd.ini --submit
check '[ "$rc" -eq 0 ] && has "Submitted batch job 4242" out' "odd submit: exit $rc $(err) $(out)"
printf '%s\0' "--parsable" "--array=0-1" "--output=$D/logs/%A_%a.out" "--ntasks=1" "--signal=B:USR1@300" \
    "--requeue" "--job-name=fsnn-odd" "$work/slurm/sweep.sbatch" "$fsnn_abs" "$D" >"$work/want.argv"
check 'cmp -s "$work/want.argv" "$SBATCH_RECORD"' \
    "sbatch argv differs: $(tr '\0' '|' <"$SBATCH_RECORD" 2>&1)"
{
    printf 'id\tdir\tconfig\targs\n'
    printf '0\t%s\t%s\t%s\t%s\t%s\t%s\n' "$D/runs/net-400+F400_seed-1" "$base" "model.net=400 (F400)" \
        "data.path=$P" "run.seed=1" "run.dir=$D/runs/net-400+F400_seed-1"
    printf '1\t%s\t%s\t%s\t%s\t%s\t%s\n' "$D/runs/net-64+F64_seed-1" "$base" "model.net=64 (F64)" \
        "data.path=$P" "run.seed=1" "run.dir=$D/runs/net-64+F64_seed-1"
} >"$work/want.tsv"
check 'cmp -s "$work/want.tsv" "$D/runs.tsv"' "runs.tsv differs: $(diff "$work/want.tsv" "$D/runs.tsv" 2>&1)"
check 'cmp -s "$work/odd.ini" "$D/sweep.ini" && [ -d "$D/runs" ] && [ -d "$D/logs" ]' \
    "sweep directory incomplete: $(ls "$D" 2>&1)"
check 'no_canary' "a canary appeared: $(ls "$work")"

# --- no sbatch, no batch script, sbatch failing ---
run env PATH="/nonexistent" "$fsnn" sweep odd.ini --submit
check '[ "$rc" -eq 1 ] && has "cannot run sbatch: No such file or directory (is SLURM installed here and sbatch on PATH?)" err' \
    "missing sbatch: exit $rc $(err)"
run env PATH="$fake_path" FSNN_SLURM_DIR="$work/none" "$fsnn" sweep odd.ini --submit
check '[ "$rc" -eq 1 ] && has "$work/none/sweep.sbatch: no such batch script; set FSNN_SLURM_DIR" err' \
    "missing script: exit $rc $(err)"
run env PATH="$fake_path" SBATCH_FAIL=1 "$fsnn" sweep odd.ini --submit
check '[ "$rc" -eq 1 ] && has "sbatch failed (exit code 1)" err && has "invalid partition" err' \
    "failing sbatch: exit $rc $(err)"

# --- resubmission: finished and running runs are left out of --array ---
data="$repo/data/fashion-mnist"
printf '[sweep]\nbase = %s\nseeds = 3\n[set]\ndata.path = %s\ndata.train_limit = 256\ndata.test_limit = 100\ntrain.epochs = 1\n[slurm]\nthrottle = 2\n' \
    "$base" "$data" >"$work/re.ini"
array() { tr '\0' '\n' <"$SBATCH_RECORD" | grep '^--array='; }
rm -f "$SBATCH_RECORD"
run env PATH="$fake_path" "$fsnn" sweep re.ini --submit
check '[ "$rc" -eq 0 ] && [ "$(array)" = "--array=0-2%2" ]' "first submit: exit $rc array $(array) $(err)"
# Run 1 trained by hand from its row, as the batch script would (no job.state).
IFS=$'\t' read -r -a row < <(sed -n '3p' re/runs.tsv)
"$fsnn" train "${row[2]}" "${row[@]:3}" >"$work/train1.log" 2>&1
check '[ "$?" -eq 0 ] && [ -f "$work/re/runs/seed-2/checkpoint.h5" ]' "manual training of run 1: $(tail -n 3 "$work/train1.log")"
rm -f "$SBATCH_RECORD"
run env PATH="$fake_path" "$fsnn" sweep re.ini --submit
check '[ "$rc" -eq 0 ] && [ "$(array)" = "--array=0,2%2" ]' "finished run left out: array $(array) $(err)"
mkdir -p re/runs/seed-1 re/runs/seed-3
echo "requeued 1700000000 4242_0 3" >re/runs/seed-1/job.state
echo "running $(date +%s) 4243_2 -" >re/runs/seed-3/job.state
rm -f "$SBATCH_RECORD"
printf '4243_2|RUNNING|None\n' >"$SQUEUE_OUT"
run env PATH="$fake_path" "$fsnn" sweep re.ini --submit
check '[ "$rc" -eq 0 ] && [ "$(array)" = "--array=0%2" ]' "running run left out: array $(array) $(err)"
check 'has "run 2 seed-3 is running in job 4243_2; left out" err' "no note on the running run: $(err)"
check '[ "$(tr "\0" " " <"$SQUEUE_RECORD")" = "--noheader --array --format=%i|%T|%r --jobs=4242,4243 " ]' \
    "squeue argv: $(tr '\0' ' ' <"$SQUEUE_RECORD")"
# One line per submission: job id, unix seconds, run ids.
check '[ "$(cut -f 1,3 re/submissions.tsv | tr "\t\n" ":;")" = "job:runs;4242:0-2;4242:0,2;4242:0;" ] &&
    [ "$(head -n 1 re/submissions.tsv | cut -f 2)" = time ] &&
    [ "$(tail -n +2 re/submissions.tsv | cut -f 2 | grep -Ec "^[0-9]{10}$")" -eq 3 ]' \
    "submissions.tsv: $(cat re/submissions.tsv)"
run env PATH="$fake_path" "$fsnn" sweep status re
check '[ "$rc" -eq 0 ] && has "3 runs: 1 finished, 1 running, 1 requeued, 0 failed, 0 pending, 0 queued, 0 lost" out' \
    "status counts: $(out)"
check 'grep -Eq "^1 +finished +1/1 +[0-9.]+ +seed-2$" out && grep -Eq "^2 +running .*job 4243_2 since" out' \
    "status rows: $(out)"
check 'grep -Eq "^0 +requeued .*job 4242_0 stopped at .* with a checkpoint \(exit 3\); not in the queue: resubmit the sweep to resume it$" out' \
    "requeued row: $(out)"
check '[ "$(tail -n 1 "$work/out")" = "SLURM asked: squeue lists 1 entry of jobs 4242, 4243" ]' "SLURM line: $(out)"

# --- status without SLURM: --no-slurm, squeue missing, squeue failing ---
rm -f "$SQUEUE_RECORD"
run env PATH="$fake_path" "$fsnn" sweep status re --no-slurm
check '[ "$rc" -eq 0 ] && has "3 runs: 1 finished, 1 running, 1 requeued, 0 failed, 0 pending" out && ! has "0 queued" out' \
    "--no-slurm counts: $(out)"
check '[ "$(tail -n 1 "$work/out")" = "SLURM not asked: --no-slurm; the states come from the run directories'"'"' files alone" ] && [ ! -e "$SQUEUE_RECORD" ]' \
    "--no-slurm note: $(out)"
check '[ "$(grep -c "SLURM" "$work/out")" -eq 1 ] && grep -Eq "^2 +running .*job 4243_2 since" out && grep -Eq "^0 +requeued .*\(exit 3\)$" out' \
    "--no-slurm rows: $(out)"
cp "$work/out" "$work/no_slurm.out"
run env PATH="/nonexistent" "$fsnn" sweep status re
check '[ "$rc" -eq 0 ] && cmp -s <(head -n -1 "$work/out") <(head -n -1 "$work/no_slurm.out")' \
    "no squeue: the table differs from --no-slurm: $(diff "$work/out" "$work/no_slurm.out")"
check '[ "$(tail -n 1 "$work/out")" = "SLURM not asked: cannot run squeue: No such file or directory (is SLURM installed here and squeue on PATH?); the states come from the run directories'"'"' files alone" ]' \
    "no squeue note: $(out)"
run env PATH="$fake_path" SQUEUE_RC=1 SQUEUE_ERR="squeue: error: Unable to contact slurm controller" "$fsnn" sweep status re
check '[ "$rc" -eq 0 ] && cmp -s <(head -n -1 "$work/out") <(head -n -1 "$work/no_slurm.out") && has "SLURM not asked: squeue failed (exit code 1): squeue: error: Unable to contact slurm controller;" out' \
    "failing squeue: $(out)"
run env PATH="$fake_path" SQUEUE_RC=1 "$fsnn" sweep re.ini --dry-run
check '[ "$rc" -eq 0 ] && has "SLURM not asked (squeue failed (exit code 1)): runs are judged by job.state alone" err && has "run 2 seed-3 is marked running (job 4243_2" err' \
    "dry-run without SLURM: $(err)"

# --- SLURM's queue refines the states ---
# The running run's job is gone: lost, and resubmitted.
: >"$SQUEUE_OUT"
run env PATH="$fake_path" "$fsnn" sweep status re
check 'grep -Eq "^2 +lost +- +- +seed-3 +job 4243_2 is not in the queue any more; resubmit the sweep to resume it from its checkpoint$" out && has ", 0 queued, 1 lost" out' \
    "lost run: $(out)"
# squeue fails when asked about one job id that SLURM has forgotten.
printf 'job\ttime\truns\n' >re/submissions.tsv
run env PATH="$fake_path" SQUEUE_RC=1 SQUEUE_ERR="slurm_load_jobs error: Invalid job id specified" "$fsnn" sweep status re
check 'grep -Eq "^2 +lost " out && has "SLURM asked: squeue lists 0 entries of jobs 4242, 4243" out' "forgotten job: $(out)"
check '[ "$(tr "\0" " " <"$SQUEUE_RECORD")" = "--noheader --array --format=%i|%T|%r --jobs=4242,4243 " ]' \
    "squeue argv from job.state alone: $(tr '\0' ' ' <"$SQUEUE_RECORD")"
rm -f "$SBATCH_RECORD"
run env PATH="$fake_path" SBATCH_JOB=4300 "$fsnn" sweep re.ini --submit
check '[ "$rc" -eq 0 ] && [ "$(array)" = "--array=0,2%2" ] && has "run 2 seed-3: job 4243_2 is not in the queue any more; starting it again" err' \
    "lost run resubmitted: array $(array) $(err)"
check 'has "Submitted batch job 4300" out && [ "$(tail -n 1 re/submissions.tsv | cut -f 1,3)" = "$(printf "4300\t0,2")" ]' \
    "recorded: $(out) $(cat re/submissions.tsv)"
# Queued tasks (one line per task, a bracketed range); bad lines ignored.
printf '4300_0|PENDING|Priority\nthis is no squeue line\n4300_[2-3%%2]|PENDING|Resources\n4301+0|RUNNING|None\n' >"$SQUEUE_OUT"
run env PATH="$fake_path" "$fsnn" sweep status re
check '[ "$rc" -eq 0 ] && grep -Eq "^0 +queued +- +- +seed-1 +job 4300_0 waits in the queue \(Priority\)$" out && grep -Eq "^2 +queued .*job 4300_2 waits in the queue \(Resources\)$" out' \
    "queued rows: $(out)"
check 'has "3 runs: 1 finished, 0 running, 0 requeued, 0 failed, 0 pending, 2 queued, 0 lost" out' "queued counts: $(out)"
check 'has "squeue output line 2 '"'"'this is no squeue line'"'"' ignored" err && has "squeue output line 4 '"'"'4301+0|RUNNING|None'"'"' ignored" err' \
    "no warning on bad squeue lines: $(err)"
rm -f "$SBATCH_RECORD"
run env PATH="$fake_path" "$fsnn" sweep re.ini --submit
check '[ "$rc" -eq 0 ] && has "nothing to start: 1 finished, 0 running, 2 queued" out && [ ! -e "$SBATCH_RECORD" ] && has "run 0 seed-1: job 4300_0 waits in the queue (Priority); left out" err' \
    "queued runs submitted again: $(out) $(err)"
# A requeued run whose job is queued again; a task that left the queue unstarted.
echo "requeued $(date +%s) 4300_0 3" >re/runs/seed-1/job.state
rm re/runs/seed-3/job.state
printf '4300_0|PENDING|BeginTime\n' >"$SQUEUE_OUT"
run env PATH="$fake_path" "$fsnn" sweep status re
check 'grep -Eq "^0 +queued .*job 4300_0 is queued again \(BeginTime\); it resumes from its checkpoint$" out' \
    "requeued, queued again: $(out)"
check 'grep -Eq "^2 +pending +- +- +seed-3 +job 4300_2 left the queue without starting it \(see logs/4300_2.out\)$" out' \
    "left the queue: $(out)"
# A damaged submissions.tsv: status warns, --submit refuses.
printf 'job\ttime\truns\n4300\tx\t0\n' >re/submissions.tsv
run env PATH="$fake_path" "$fsnn" sweep status re
check '[ "$rc" -eq 0 ] && has "re/submissions.tsv:2: time '"'"'x'"'"' is not unix seconds; the recorded submissions are left out" err' \
    "damaged submissions.tsv, status: $(err)"
rm -f "$SBATCH_RECORD"
run env PATH="$fake_path" "$fsnn" sweep re.ini --submit
check '[ "$rc" -eq 1 ] && has "fix or delete it before submitting again" err && [ ! -e "$SBATCH_RECORD" ]' \
    "damaged submissions.tsv, submit: exit $rc $(err)"
# sbatch output that is not a job id: an error naming it, nothing recorded.
rm -f re/submissions.tsv re/runs/seed-1/job.state
: >"$SQUEUE_OUT"
run env PATH="$fake_path" SBATCH_SAYS="Submitted batch job 4400" "$fsnn" sweep re.ini --submit
check '[ "$rc" -eq 1 ] && has "sbatch --parsable printed '"'"'Submitted batch job 4400?'"'"'" err && has "not recorded in" err && [ ! -e re/submissions.tsv ]' \
    "unparsable sbatch output: exit $rc $(err)"
echo "done 1700000001 4242_0 0" >re/runs/seed-1/job.state
echo "running $(date +%s) 4243_2 -" >re/runs/seed-3/job.state
rm -f "$SBATCH_RECORD"
run env PATH="$fake_path" "$fsnn" sweep re.ini --submit --no-slurm
check '[ "$rc" -eq 0 ] && has "nothing to start: 2 finished, 1 running" out && [ ! -e "$SBATCH_RECORD" ]' \
    "all finished or running: exit $rc $(out)"
# Many queued runs: ten named, the rest counted.
printf '[sweep]\nbase = %s\nseeds = 12\n[set]\ndata.path = %s\n' "$base" "$data" >"$work/many.ini"
: >"$SQUEUE_OUT"
run env PATH="$fake_path" SBATCH_JOB=5000 "$fsnn" sweep many.ini --submit
check '[ "$rc" -eq 0 ] && has "Submitted batch job 5000" out' "many: first submit: exit $rc $(out) $(err)"
printf '5000_[0-11]|PENDING|Priority\n' >"$SQUEUE_OUT"
rm -f "$SBATCH_RECORD"
run env PATH="$fake_path" "$fsnn" sweep many.ini --submit
check '[ "$rc" -eq 0 ] && has "nothing to start: 0 finished, 0 running, 12 queued" out && [ ! -e "$SBATCH_RECORD" ]' \
    "many queued: exit $rc $(out)"
check '[ "$(grep -c "waits in the queue (Priority); left out" "$work/err")" -eq 10 ] && has "2 more runs wait in the queue; left out" err' \
    "many queued, warnings: $(err)"
# A damaged job.state is reported, and its run is started again.
echo "runnin 1 x -" >re/runs/seed-1/job.state
run env PATH="$fake_path" "$fsnn" sweep status re
check 'grep -Eq "^0 +unknown .*unknown state '"'"'runnin'"'"'" out && has ", 1 unknown" out' "damaged job.state: $(out)"

# --- a changed sweep file, a folder that is not a sweep directory ---
sed -i 's/seeds = 3/seeds = 4/' re.ini
run env PATH="$fake_path" "$fsnn" sweep re.ini --submit
check '[ "$rc" -eq 1 ] && has "re/runs.tsv lists other runs than re.ini gives now" err' \
    "changed sweep file: exit $rc $(err)"
mkdir -p "$work/other" && echo x >"$work/other/notes.txt"
printf '[sweep]\nbase = %s\ndir = other\n' "$base" >"$work/o.ini"
run "$fsnn" sweep o.ini
check '[ "$rc" -eq 1 ] && has "$work/other exists and is not a sweep directory" err' "foreign folder: exit $rc $(err)"
printf '[sweep]\nbase = %s\n' "$base" >"$work/prep.ini"
run "$fsnn" sweep prep.ini
check '[ "$rc" -eq 0 ] && [ -f prep/runs.tsv ] && [ -d prep/runs ] && has "start the runs with --submit" out' \
    "prepare only: exit $rc $(out) $(err)"

# --- status of bad sweep directories ---
run "$fsnn" sweep status "$work/nowhere"
check '[ "$rc" -eq 1 ] && has "$work/nowhere/runs.tsv: cannot open" err' "status of nothing: exit $rc $(err)"
mkdir -p "$work/bad"
printf 'id\tdir\tconfig\targs\r\n0\t/a\t/c\trun.seed=1\trun.dir=/a\r\n' >"$work/bad/runs.tsv"
run "$fsnn" sweep status "$work/bad"
check '[ "$rc" -eq 1 ] && has "bad/runs.tsv:1: byte 0x0d (CR: a Windows line end?)" err' "CR in runs.tsv: exit $rc $(err)"
printf 'id\tdir\tconfig\targs\n0\t/a\t/c\trun.seed=1\trun.dir=/a\n2\t/b\t/c\trun.seed=1\trun.dir=/b\n' >"$work/bad/runs.tsv"
run "$fsnn" sweep status "$work/bad"
check '[ "$rc" -eq 1 ] && has "bad/runs.tsv:3: id '"'"'2'"'"' where 1 was expected" err' "id gap: exit $rc $(err)"
head -c 3000 /dev/urandom >"$work/bad/runs.tsv"
run "$fsnn" sweep status "$work/bad"
check '[ "$rc" -eq 1 ] && has "bad/runs.tsv" err' "random bytes: exit $rc $(err)"
finish
