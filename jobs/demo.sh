#!/usr/bin/env bash
# demo: set up the machine, then train the small demo network of
# configs/demo.ini. Extra arguments are config overrides, e.g.
#   jobs/demo.sh train.epochs=2
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
bash "$repo/jobs/setup.sh"

# run.dir in the config is relative to the repository.
cd "$repo"
run_dir=runs/demo
for arg in "$@"; do
    case "$arg" in
    run.dir=*) run_dir="${arg#run.dir=}" ;;
    esac
done

build/fsnn train configs/demo.ini "$@"
printf 'fsnn demo: run directory: %s\n' "$(cd "$run_dir" 2>/dev/null && pwd -P || printf '%s' "$run_dir")"
