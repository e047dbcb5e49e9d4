#!/usr/bin/env bash
# fuzz: builds the libFuzzer harnesses with clang in build-fuzz/ and runs each
# for FUZZ_SECONDS (default 13: the seven default harnesses in about 90 s) on
# a scratch copy of its seed corpus:
# tests/fuzz/corpus/NAME, or for the checkpoint and HDF5 harnesses small files
# the harness writes itself (FUZZ_CKPT_SEEDS, FUZZ_H5IN_SEEDS). Fails if a
# harness finds a crash, leak or undefined behaviour; the input that caused it
# is kept in build-fuzz/artifacts/NAME/.
#   FUZZ_SECONDS=60 bash tests/fuzz/run.sh        # idx config netspec sweepq ckpt_raw cifar nmnist (CI)
#   FUZZ_SECONDS=60 bash tests/fuzz/run.sh ckpt_sealed h5in
#   FUZZ_BUILD_DIR   build folder (default <repo>/build-fuzz)
# ckpt_sealed and h5in are not run by default: they reach libhdf5 1.10.8,
# which crashes on inputs they find within a minute (docs/fuzzing.md). Named,
# they keep going after crashes (-fork=1 -ignore_crashes=1) and after inputs
# that take more than 10 s (libhdf5 can loop for ever on a damaged file), then
# replay every crash input and sort it by where it failed: inside libhdf5
# (listed) or in fsnn's own code (a failure of this script).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
build="${FUZZ_BUILD_DIR:-$repo/build-fuzz}"
seconds="${FUZZ_SECONDS:-13}"
names=("$@")
[ "${#names[@]}" -ne 0 ] || names=(idx config netspec sweepq ckpt_raw cifar nmnist)

command -v clang >/dev/null 2>&1 || {
    echo "fuzz: clang not found (Debian: clang libclang-rt-14-dev; jobs/setup.sh installs them)" >&2
    exit 1
}
cmake -S "$repo/tests/fuzz" -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$build" -j2

# Scratch space in memory when there is some: the checkpoint harnesses write
# every input to a file under TMPDIR, and crashed runs leave theirs behind.
work="$(mktemp -d -p "$([ -d /dev/shm ] && echo /dev/shm || echo "${TMPDIR:-/tmp}")")"
trap 'rm -rf "$work"' EXIT
export TMPDIR="$work"

# Where a sanitizer report's stacks fail, one word per stack that counts:
# the first (the fault) or, in a leak report, each leaked allocation's. A
# stack is "hdf5" when its first frame in libhdf5 or in fsnn's sources
# (io/, src/, jobs/, mpi/, tests/) is in libhdf5, "fsnn" when it is in fsnn's, else
# "other". Sanitizer, libc and libFuzzer frames decide nothing.
fault_places() {
    awk -v repo="$repo" '
        /LeakSanitizer/ { leak = 1 }
        /^ +#[0-9]+ / {
            if (!decided && $0 ~ /libhdf5/) { print "hdf5"; decided = 1 }
            if (!decided && (index($0, repo "/io/") || index($0, repo "/src/") ||
                             index($0, repo "/jobs/") || index($0, repo "/mpi/") ||
                             index($0, repo "/tests/"))) { print "fsnn"; decided = 1 }
            inblock = 1
            next
        }
        inblock {
            if (!decided) print "other"
            inblock = decided = 0
            if (!leak) exit
        }
        END { if (inblock && !decided) print "other" }
    ' "$1"
}

# Replays the crash inputs of harness $1 (one that reaches libhdf5) found by
# this run; fails if any is not inside libhdf5.
triage_hdf5() {
    local name=$1 dir=$2 list=$3 hdf5=0 ours=0 quiet=0 f places
    for f in "$dir"/*; do
        [ -f "$f" ] && ! grep -qxF "$f" "$list" || continue
        ASAN_OPTIONS=fast_unwind_on_malloc=0 "$build/fuzz_$name" -timeout=10 "$f" >"$work/replay.log" 2>&1 && {
            # Some faults need HDF5's state left by earlier inputs.
            quiet=$((quiet + 1))
            echo "fuzz: $name: $(basename "$f"): does not fail when replayed alone"
            continue
        }
        places="$(fault_places "$work/replay.log")"
        if [ -n "$places" ] && ! grep -qvx hdf5 <<<"$places"; then
            hdf5=$((hdf5 + 1))
            echo "fuzz: $name: $(basename "$f"): inside libhdf5:" \
                "$(grep -m1 -oE 'SUMMARY: [A-Za-z]+: [^ ]+( byte\(s\) leaked)?' "$work/replay.log" || true)"
        else
            ours=$((ours + 1))
            echo "fuzz: $name: $(basename "$f"): NOT in libhdf5:"
            grep -A25 -m1 'ERROR' "$work/replay.log" || tail -n 25 "$work/replay.log"
        fi
    done
    echo "fuzz: $name: crash inputs: $hdf5 inside libhdf5, $quiet not failing alone, $ours elsewhere"
    [ "$ours" -eq 0 ]
}

failed=()
for name in "${names[@]}"; do
    [ -x "$build/fuzz_$name" ] || {
        echo "fuzz: no harness '$name'" >&2
        exit 2
    }
    mkdir -p "$work/$name" "$build/artifacts/$name"
    case "$name" in
    ckpt_*) FUZZ_CKPT_SEEDS="$work/$name" "$build/fuzz_$name" ;;
    h5in) FUZZ_H5IN_SEEDS="$work/$name" "$build/fuzz_$name" ;;
    *) cp "$repo/tests/fuzz/corpus/$name"/* "$work/$name/" ;;
    esac
    flags=(-max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$build/artifacts/$name/")
    reaches_hdf5=0
    case "$name" in ckpt_sealed | h5in) reaches_hdf5=1 ;; esac
    [ "$reaches_hdf5" -eq 0 ] || flags+=(-fork=1 -ignore_crashes=1 -timeout=10)
    find "$build/artifacts/$name" -type f >"$work/$name.before"
    echo "fuzz: $name for ${seconds}s"
    ok=1
    "$build/fuzz_$name" "${flags[@]}" "$work/$name" >"$work/$name.log" 2>&1 || ok=0
    [ "$reaches_hdf5" -eq 0 ] || { triage_hdf5 "$name" "$build/artifacts/$name" "$work/$name.before" && ok=1 || ok=0; }
    if [ "$ok" -eq 0 ]; then
        tail -n 40 "$work/$name.log"
        echo "fuzz: $name FAILED; reproduce with: $build/fuzz_$name $build/artifacts/$name/<file>"
        failed+=("$name")
    else
        runs="$(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$work/$name.log" | grep -o '[0-9]*$' || true)"
        rate="$(grep -m1 -o 'stat::average_exec_per_sec: *[0-9]*' "$work/$name.log" | grep -o '[0-9]*$' || true)"
        if [ -z "$runs" ]; then
            # Fork mode prints no final statistics: its last progress line
            # reads "#RUNS: cov: ... time: SECONDSs".
            last="$(grep -E '^#[0-9]+: ' "$work/$name.log" | tail -n 1)"
            runs="$(sed -E 's/^#([0-9]+):.*/\1/' <<<"$last")"
            t="$(sed -nE 's/.* time: ([0-9]+)s.*/\1/p' <<<"$last")"
            rate="$([ -n "$t" ] && [ "$t" -gt 0 ] && echo $((runs / t)) || echo '?')"
        fi
        echo "fuzz: $name passed (${runs:-?} inputs, ${rate:-?}/s)"
    fi
done
if [ "${#failed[@]}" -ne 0 ]; then
    echo "fuzz: ${#failed[@]} harness(es) failed: ${failed[*]}"
    exit 1
fi
echo "fuzz: all harnesses passed"
