# shellcheck shell=bash
# lib.sh: the runner shared by slurm/train.sbatch and slurm/sweep.sbatch;
# sourced, it defines functions (prefix fsnn_slurm_) and runs nothing.
#
# fsnn_slurm_run FSNN RUN_DIR CONFIG [ARG ...] runs one `fsnn train` step
# inside a batch job and never returns:
#   - RUN_DIR/job.state is replaced atomically with
#     "<state> <unix seconds> <job id> <exit code or ->" (running, then done,
#     requeued or failed; the sweep directory interface, docs/slurm.md);
#   - the step's stdout and stderr are appended to RUN_DIR/train.log;
#   - SIGUSR1 or SIGTERM to the batch shell is passed on to the step as
#     SIGUSR1: fsnn writes a checkpoint at the next step boundary and exits 3;
#   - exit code 3 requeues the job (`scontrol requeue`); its next start runs
#     the same command, which resumes from the checkpoint. Not so after a
#     SIGTERM: then SLURM itself ends the job (scancel, a time limit, or an
#     outside requeue or preemption that requeues it anyway), and a cancelled
#     job must stay cancelled; the run is resumable by submitting it again.
# The batch script exits with the step's exit code (3 after a requeue).
#
# Environment:
#   FSNN_LAUNCHER   srun (default): `srun --mpi=$FSNN_SRUN_MPI` over the job's
#                   tasks; mpirun: Open MPI's mpirun inside the allocation
#   FSNN_SRUN_MPI   srun's MPI plugin (default pmix)

fsnn_slurm_say() { printf 'fsnn slurm: %s\n' "$*"; }

fsnn_slurm_die() {
    printf 'fsnn slurm: error: %s\n' "$*" >&2
    exit 1
}

# The job as SLURM names it: "<array job>_<task>" for an array task (also the
# %A_%a of its log file), else the job id.
fsnn_slurm_job() {
    if [ -n "${SLURM_ARRAY_JOB_ID:-}" ] && [ -n "${SLURM_ARRAY_TASK_ID:-}" ]; then
        printf '%s_%s' "$SLURM_ARRAY_JOB_ID" "$SLURM_ARRAY_TASK_ID"
    else
        printf '%s' "${SLURM_JOB_ID:-local}"
    fi
}

# fsnn_slurm_state RUN_DIR STATE CODE: replaces RUN_DIR/job.state atomically.
fsnn_slurm_state() {
    local tmp="$1/job.state.tmp.$$"
    printf '%s %s %s %s\n' "$2" "$(date +%s)" "$(fsnn_slurm_job)" "$3" >"$tmp" &&
        mv -f "$tmp" "$1/job.state"
}

# fsnn_slurm_log RUN_DIR TEXT...: one line for the record of attempts in
# train.log and in the job's own output.
fsnn_slurm_log() {
    local dir=$1 line
    shift
    line="fsnn slurm: $(date '+%Y-%m-%d %H:%M:%S'): job $(fsnn_slurm_job): $*"
    printf '%s\n' "$line" >>"$dir/train.log"
    printf '%s\n' "$line"
}

fsnn_slurm_step=0
fsnn_slurm_caught=0
fsnn_slurm_term=0

# A signal to the batch shell (`--signal=B:USR1@secs` before the time limit,
# `scancel --signal=USR1 --batch`, or SIGTERM when SLURM ends the job) goes to
# the step as SIGUSR1: srun and mpirun both pass SIGUSR1 on to every rank,
# while a SIGTERM to them may end the ranks before the checkpoint. fsnn
# treats both signals alike.
fsnn_slurm_on_signal() {
    fsnn_slurm_caught=1
    [ "$1" = TERM ] && fsnn_slurm_term=1
    fsnn_slurm_say "SIG$1 received; asking the step to write a checkpoint and stop"
    if [ "$fsnn_slurm_step" -gt 0 ]; then kill -USR1 "$fsnn_slurm_step" 2>/dev/null || true; fi
}

# Waits for the step; returns its exit code. bash runs a trap only between
# commands, and a trap ends `wait` early (with 128 + the signal), so after
# every trap the step is waited for again. If it had ended just before the
# trap, that wait has nothing left to report (127) and the first code holds.
fsnn_slurm_wait() {
    local rc again
    fsnn_slurm_caught=0
    wait "$fsnn_slurm_step"
    rc=$?
    while [ "$fsnn_slurm_caught" -eq 1 ]; do
        fsnn_slurm_caught=0
        wait "$fsnn_slurm_step" 2>/dev/null
        again=$?
        [ "$again" -eq 127 ] && break
        rc=$again
    done
    return "$rc"
}

fsnn_slurm_run() {
    local fsnn=$1 run_dir=$2 config=$3
    shift 3
    [ -n "${SLURM_JOB_ID:-}" ] || fsnn_slurm_die "not inside a SLURM job (submit with sbatch)"
    [ -x "$fsnn" ] || fsnn_slurm_die "fsnn binary '$fsnn' not found or not executable"
    local launcher=()
    case "${FSNN_LAUNCHER:-srun}" in
    srun) launcher=(srun "--mpi=${FSNN_SRUN_MPI:-pmix}") ;;
    mpirun) launcher=(mpirun) ;;
    *) fsnn_slurm_die "FSNN_LAUNCHER='$FSNN_LAUNCHER': use srun or mpirun" ;;
    esac
    mkdir -p -- "$run_dir" || fsnn_slurm_die "cannot create the run directory '$run_dir'"
    trap 'fsnn_slurm_on_signal USR1' USR1
    trap 'fsnn_slurm_on_signal TERM' TERM
    fsnn_slurm_state "$run_dir" running - || fsnn_slurm_die "cannot write $run_dir/job.state"
    local shown
    shown=$(printf ' %q' "${launcher[@]}" "$fsnn" train "$config" "$@")
    fsnn_slurm_log "$run_dir" "start $((${SLURM_RESTART_COUNT:-0} + 1)) on $(hostname -s), \
${SLURM_NTASKS:-1} task(s):$shown"
    "${launcher[@]}" "$fsnn" train "$config" "$@" >>"$run_dir/train.log" 2>&1 </dev/null &
    fsnn_slurm_step=$!
    local rc=0
    fsnn_slurm_wait || rc=$?
    fsnn_slurm_step=0
    case "$rc" in
    0)
        fsnn_slurm_state "$run_dir" "done" 0
        fsnn_slurm_log "$run_dir" "exit code 0: done"
        ;;
    3)
        # Recorded first: the requeue ends this script.
        fsnn_slurm_state "$run_dir" requeued 3
        if [ "$fsnn_slurm_term" -eq 1 ]; then
            fsnn_slurm_log "$run_dir" "exit code 3: checkpoint written; SLURM is ending the job" \
                "(SIGTERM), so it is not requeued here; submitting the same command resumes the run"
        else
            fsnn_slurm_log "$run_dir" "exit code 3: checkpoint written; requeueing the job"
            scontrol requeue "$SLURM_JOB_ID" ||
                fsnn_slurm_say "scontrol requeue $SLURM_JOB_ID failed; submitting the same" \
                    "command resumes the run"
        fi
        ;;
    *)
        fsnn_slurm_state "$run_dir" failed "$rc"
        fsnn_slurm_log "$run_dir" "exit code $rc: failed (fsnn's messages are in $run_dir/train.log)"
        ;;
    esac
    exit "$rc"
}
