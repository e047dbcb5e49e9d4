#!/usr/bin/env bash
# tests: everything CI checks, in order; stops at the first failing stage.
#   1. set-up and a Release build with -Werror in build/, then ctest;
#   2. a Debug build with AddressSanitizer + UndefinedBehaviorSanitizer in
#      build-asan/, then ctest (leaks are errors, Open MPI's own excepted);
#   3. the libFuzzer harnesses of the IDX, config, net notation, checkpoint, CIFAR and
#      N-MNIST readers (FUZZ_SECONDS each, default 15; docs/fuzzing.md says
#      why the sealed checkpoint harness is not among them).
# Ends with one summary line; exits non-zero if any stage failed.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$repo"

# CI runs as root, and mpirun refuses that unless told.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

stage="start"
passed=()
summary() {
    local rc=$?
    if [ "$rc" -eq 0 ]; then
        printf 'fsnn tests: PASSED (%s)\n' "${passed[*]}"
    else
        printf 'fsnn tests: FAILED in stage "%s" (exit %d); passed before it: %s\n' \
            "$stage" "$rc" "${passed[*]:-none}"
    fi
}
trap summary EXIT
begin() {
    stage="$1"
    printf 'fsnn tests: == %s ==\n' "$stage"
}

# An empty test list is a broken build description, not a pass.
ctest_args=(--output-on-failure -j2 --no-tests=error)

begin "setup + Release -Werror build"
FSNN_CMAKE_ARGS="-DFSNN_WERROR=ON" bash jobs/setup.sh
passed+=("build")

begin "ctest (Release)"
ctest --test-dir build "${ctest_args[@]}"
passed+=("ctest")

begin "ASan+UBSan build"
cmake -S "$repo" -B "$repo/build-asan" -DCMAKE_BUILD_TYPE=Debug -DFSNN_SANITIZE=ON \
    -DFSNN_WERROR=ON
cmake --build "$repo/build-asan" -j2
passed+=("asan-build")

begin "ctest (ASan+UBSan)"
# Open MPI 4.1 dlcloses its components at MPI_Finalize; what they allocated at
# MPI_Init then shows as "<unknown module>", which no suppression can name.
# A no-op dlclose keeps them mapped so tests/lsan.supp matches. The ASan
# runtime is then not first in the library list, hence verify_asan_link_order=0.
nodlclose="$repo/build-asan/nodlclose.so"
printf 'int dlclose(void *h);\nint dlclose(void *h) { (void)h; return 0; }\n' |
    cc -shared -fPIC -x c -o "$nodlclose" -
# libc and Open MPI have no frame pointers, so the fast unwinder stops inside
# them and their leak stacks would not reach the suppressed libraries.
# The 50 kills of ckpt_trials ran in the Release stage; here 10 suffice to
# put the kill paths under the sanitizers (each sanitized start takes seconds),
# while all 100 bit flips and 20 truncations run under ASan.
KILL_TRIALS=10 LD_PRELOAD="$nodlclose" \
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:verify_asan_link_order=0:fast_unwind_on_malloc=0 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    LSAN_OPTIONS="suppressions=$repo/tests/lsan.supp" \
    ctest --test-dir build-asan "${ctest_args[@]}"
passed+=("asan-ctest")

begin "fuzz"
FUZZ_SECONDS="${FUZZ_SECONDS:-15}" bash tests/fuzz/run.sh
passed+=("fuzz ${FUZZ_SECONDS:-15}s")
stage="done"
