#!/usr/bin/env bash
# fuzz: builds the libFuzzer harnesses with clang in build-fuzz/ and runs each
# for FUZZ_SECONDS (default 30) on a scratch copy of its seed corpus
# (tests/fuzz/corpus/NAME). Fails if a harness finds a crash, leak or
# undefined behaviour; the input that caused it is kept in
# build-fuzz/artifacts/NAME/.
#   FUZZ_SECONDS=60 bash tests/fuzz/run.sh
#   FUZZ_BUILD_DIR   build folder (default <repo>/build-fuzz)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
build="${FUZZ_BUILD_DIR:-$repo/build-fuzz}"
seconds="${FUZZ_SECONDS:-30}"

command -v clang >/dev/null 2>&1 || {
    echo "fuzz: clang not found (Debian: clang libclang-rt-14-dev; jobs/setup.sh installs them)" >&2
    exit 1
}
cmake -S "$repo/tests/fuzz" -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$build" -j2

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=()
for name in idx config; do
    mkdir -p "$work/$name" "$build/artifacts/$name"
    cp "$repo/tests/fuzz/corpus/$name"/* "$work/$name/"
    echo "fuzz: $name for ${seconds}s"
    if ! "$build/fuzz_$name" -max_total_time="$seconds" -print_final_stats=1 \
        -artifact_prefix="$build/artifacts/$name/" "$work/$name" >"$work/$name.log" 2>&1; then
        tail -n 40 "$work/$name.log"
        echo "fuzz: $name FAILED; reproduce with: $build/fuzz_$name $build/artifacts/$name/<file>"
        failed+=("$name")
    else
        runs="$(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$work/$name.log" | grep -o '[0-9]*$' || echo '?')"
        echo "fuzz: $name passed ($runs inputs)"
    fi
done
if [ "${#failed[@]}" -ne 0 ]; then
    echo "fuzz: ${#failed[@]} harness(es) failed: ${failed[*]}"
    exit 1
fi
echo "fuzz: all harnesses passed"
