#!/usr/bin/env bash
# slurm/sweep.sbatch's checks of its runs.tsv row, without a cluster: the
# script runs as a plain bash script with the variables of an array task.
# Each bad row must end it with exit code 1 and a message naming the file,
# the id and what is wrong; a good row (also with UTF-8 text) passes the
# checks and reaches the launcher, here an unknown one (FSNN_LAUNCHER=none),
# so nothing is started.
#   slurm_rows.sh REPO
set -u
repo=$1
dir=$(mktemp -d /tmp/fsnn-slurm-rows.XXXXXX)
trap 'rm -rf "$dir"' EXIT
passed=0 failed=0
tsv=$dir/runs.tsv
header=$'id\tdir\tconfig\targs'
# expect NAME ID PATTERN ROWS: writes $header and ROWS (printf format), runs
# task ID, wants exit code 1 and PATTERN (extended regex) in stderr.
expect() {
    local name=$1 id=$2 pattern=$3 rc
    # shellcheck disable=SC2059 # ROWS is a format: the escapes make the bytes
    { printf '%s\n' "$header"; printf "$4"; } >"$tsv"
    SLURM_JOB_ID=1 SLURM_ARRAY_JOB_ID=1 SLURM_ARRAY_TASK_ID=$id FSNN_SLURM_DIR=$repo/slurm \
        FSNN_LAUNCHER=none bash "$repo/slurm/sweep.sbatch" /bin/true "$dir" >/dev/null 2>"$dir/err"
    rc=$?
    if [ "$rc" -eq 1 ] && grep -Eq -- "$pattern" "$dir/err"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAILED: $name: exit code $rc, stderr: $(cat "$dir/err")"
    fi
}
ok='\t/r/a\t/c.ini\trun.seed=1\trun.dir=/r/a'
where="$tsv: row id"
expect good 0 "FSNN_LAUNCHER='none'" "0${ok}\tx.y=caf\xc3\xa9 \"q\" \$(x)\n"
expect second 1 "FSNN_LAUNCHER='none'" "0${ok}\n1\t/r/b\t/c.ini\trun.seed=2\trun.dir=/r/b\n"
expect missing 2 "$where 2: no such row \(the file lists 2 runs" "0${ok}\n1${ok}\n"
expect not_array x "SLURM_ARRAY_TASK_ID is 'x', not a row id" "0${ok}\n"
header='id dir config args' expect header 0 "$where 0: line 1 is not the header" "0${ok}\n"
expect crlf 0 "$where 0: line 2 holds a control character" "0${ok}\r\n"
expect nul 0 "$where 0: line 2 holds a NUL byte" "0${ok}\tx.y=a\0b\n"
expect no_lf 0 "$where 0: the file does not end with LF" "0${ok}"
expect empty_field 0 "$where 0: line 2 has an empty field" "0${ok}\t\tx.y=1\n"
expect trailing_tab 0 "$where 0: line 2 has an empty field" "0${ok}\t\n"
expect wrong_id 0 "$where 0: line 2 has the id '1'" "1${ok}\n"
expect few_fields 0 "$where 0: line 2 has 3 fields" "0\t/r/a\t/c.ini\n"
expect relative 0 "$where 0: line 2: the dir and config fields must be absolute" "0\tr/a\t/c.ini\trun.seed=1\trun.dir=r/a\n"
expect bad_arg 0 "$where 0: line 2: argument 'epochs=3' is not section.key=value" "0${ok}\tepochs=3\n"
expect other_dir 0 "$where 0: line 2 lacks the argument run.seed= or run.dir=" "0\t/r/a\t/c.ini\trun.seed=1\trun.dir=/r/b\n"
expect no_seed 0 "$where 0: line 2 lacks the argument run.seed= or run.dir=" "0\t/r/a\t/c.ini\trun.dir=/r/a\tx.y=1\n"
rm -f "$tsv"
SLURM_JOB_ID=1 SLURM_ARRAY_TASK_ID=0 FSNN_SLURM_DIR=$repo/slurm bash "$repo/slurm/sweep.sbatch" /bin/true "$dir" >/dev/null 2>"$dir/err"
rc=$?
if [ "$rc" -eq 1 ] && grep -q "$tsv: not found or not readable (row id 0)" "$dir/err"; then
    passed=$((passed + 1))
else
    failed=$((failed + 1))
    echo "FAILED: no_file: exit code $rc, stderr: $(cat "$dir/err")"
fi
echo "slurm_rows: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
