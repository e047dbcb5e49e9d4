#!/usr/bin/env bash
# `fsnn sweep --local` end to end, started plainly (not under mpirun):
#   - two tiny runs (256 training samples, 1 epoch, 100 test samples) at
#     once, with a data.path full of shell metacharacters (a link to the
#     Fashion-MNIST folder) that must reach `fsnn train` byte for byte; then
#     `status` shows 2 finished, and running the sweep again starts nothing;
#   - a run with a bad data path ([set]) fails, and both the sweep's output
#     and `status` show its error line from train.log;
#   - SIGINT to the sweep stops both runs with a checkpoint (exit 3,
#     requeued); the same command resumes them to the end.
#   sweep_local.sh FSNN REPO
set -u
fsnn=$1 repo=$2
passed=0 failed=0
check() { if eval "$1"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $2"; fi; }
finish() { echo "sweep_local: $passed passed, $failed failed"; [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]; exit $?; }

data="$repo/data/fashion-mnist"
if [ ! -e "$data/train-images-idx3-ubyte.gz" ] && [ ! -e "$data/train-images-idx3-ubyte" ]; then
    echo "FAILED: $data has no Fashion-MNIST; run jobs/setup.sh first"
    failed=1
    finish
fi
work=$(mktemp -d /tmp/fsnn-sweep-local.XXXXXX)
sweep_pid=
trap '[ -n "$sweep_pid" ] && kill "$sweep_pid" 2>/dev/null; rm -rf "$work"' EXIT
cd "$work" || exit 1
base="$repo/configs/fmnist_fc_lif.ini"
run() { "$@" >"$work/out" 2>"$work/err"; rc=$?; }
out() { cat "$work/out"; }
err() { cat "$work/err"; }
has() { grep -qF -- "$1" "$work/$2"; }

# --- two runs at once, an odd data path ---
odd="$work/fm (a&touch canary&b|touch canary2) <x> *?!#~[1]"
ln -s "$data" "$odd"
printf '[sweep]\nbase = %s\nseeds = 2\n[set]\ndata.path = %s\ndata.train_limit = 256\ndata.test_limit = 100\ntrain.epochs = 1\nrun.progress = plain\n' \
    "$base" "$odd" >two.ini
run "$fsnn" sweep two.ini --local -j 2
check '[ "$rc" -eq 0 ]' "--local exit $rc: $(out) $(err)"
check 'has "run 0 seed-1: started" out && has "run 1 seed-2: started" out' "start lines: $(out)"
check 'grep -Eq "^run 0 seed-1: done \(exit 0\) after [0-9.]+ s$" out && grep -Eq "^run 1 seed-2: done \(exit 0\)" out' \
    "finish lines: $(out)"
check 'has "sweep two: 2 done, 0 failed, 0 requeued, 0 not started this time" out' "summary: $(out)"
for s in 1 2; do
    r="$work/two/runs/seed-$s"
    check 'grep -qE "^done [0-9]+ local 0$" "$r/job.state"' "seed-$s job.state: $(cat "$r/job.state" 2>&1)"
    # config.ini is what fsnn train read: the path arrived byte for byte.
    check 'grep -qxF "path = $odd" "$r/config.ini" && grep -qxF "seed = $s" "$r/config.ini"' \
        "seed-$s config.ini: $(grep -E '^(path|seed) =' "$r/config.ini" 2>&1)"
    check 'grep -q "^done: test accuracy" "$r/train.log"' "seed-$s train.log: $(tail -n 3 "$r/train.log" 2>&1)"
done
check '[ ! -e "$work/canary" ] && [ ! -e "$work/canary2" ]' "a canary appeared: $(ls "$work")"
run "$fsnn" sweep status two
check '[ "$rc" -eq 0 ] && has "2 runs: 2 finished, 0 running, 0 requeued, 0 failed, 0 pending" out' "status: $(out) $(err)"
check 'grep -Eq "^0 +finished +1/1 +[0-9]+\.[0-9]{2} +seed-1$" out' "status row: $(out)"
run "$fsnn" sweep two.ini --local
check '[ "$rc" -eq 0 ] && has "nothing to start: 2 finished, 0 running" out' "again: exit $rc $(out)"

# --- a failed run ---
printf '[sweep]\nbase = %s\n[set]\ndata.path = %s/no_such_data\ntrain.epochs = 1\n' "$base" "$work" >fail.ini
run "$fsnn" sweep fail.ini --local
check '[ "$rc" -eq 1 ]' "failed run: exit $rc, expected 1: $(out)"
check 'grep -Eq "^run 0 seed-1: failed \(exit 1\) after [0-9.]+ s: error: .*no_such_data" out' "failure line: $(out)"
check 'has "sweep fail: 0 done, 1 failed" out' "failure summary: $(out)"
run "$fsnn" sweep status fail
check 'grep -Eq "^0 +failed .*seed-1 +exit 1: error: .*no_such_data" out && has "1 run: 0 finished, 0 running, 0 requeued, 1 failed, 0 pending" out' \
    "failed status: $(out)"
check 'grep -qE "^failed [0-9]+ local 1$" fail/runs/seed-1/job.state' "failed job.state: $(cat fail/runs/seed-1/job.state)"

# --- SIGINT: both runs stop with a checkpoint, the same command resumes ---
printf '[sweep]\nbase = %s\nseeds = 2\n[set]\ndata.path = %s\ndata.train_limit = 1024\ndata.test_limit = 100\ntrain.epochs = 8\nrun.progress = plain\n' \
    "$base" "$data" >int.ini
"$fsnn" sweep int.ini --local -j 2 >"$work/int.out" 2>&1 &
sweep_pid=$!
# Both runs are training once their logs show the model line.
for _ in $(seq 1 600); do
    grep -qs '^model:' int/runs/seed-1/train.log && grep -qs '^model:' int/runs/seed-2/train.log && break
    sleep 0.1
done
kill -INT "$sweep_pid"
wait "$sweep_pid"
rc=$?
sweep_pid=
check '[ "$rc" -eq 3 ]' "interrupted sweep: exit $rc, expected 3: $(cat "$work/int.out")"
check 'grep -q "^stopping: 2 runs asked to write a checkpoint and stop" "$work/int.out"' "stop line: $(cat "$work/int.out")"
check '[ "$(grep -c "requeued (exit 3)" "$work/int.out")" -eq 2 ]' "requeued lines: $(cat "$work/int.out")"
run "$fsnn" sweep status int
check 'has "2 runs: 0 finished, 0 running, 2 requeued, 0 failed, 0 pending" out' "interrupted status: $(out)"
run "$fsnn" sweep int.ini --local -j 2
check '[ "$rc" -eq 0 ] && has "sweep int: 2 done, 0 failed" out' "resumed sweep: exit $rc $(out)"
check 'grep -q "^resuming from" int/runs/seed-1/train.log && grep -q "^resuming from" int/runs/seed-2/train.log' \
    "runs did not resume: $(grep -h resuming int/runs/*/train.log)"
run "$fsnn" sweep status int
check 'has "2 runs: 2 finished" out && grep -Eq "^1 +finished +8/8 " out' "resumed status: $(out)"
finish
