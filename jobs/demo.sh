#!/usr/bin/env bash
# demo: set up the machine, then train the demo network of configs/demo.ini
# (Fashion-MNIST, 784-400 (F400), LIF, T=5, two epochs) into a new run
# directory runs/demo-<date>. Extra arguments are config overrides, e.g.
#   jobs/demo.sh train.epochs=5
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
bash "$repo/jobs/setup.sh"

# Paths in the config are relative to the repository. Each demo gets its own
# run directory: fsnn never writes over an earlier run.
cd "$repo"
run_dir="runs/demo-$(date +%Y%m%d-%H%M%S)"
for arg in "$@"; do
    case "$arg" in
    run.dir=*) run_dir="${arg#run.dir=}" ;;
    esac
done

build/fsnn train configs/demo.ini "run.dir=$run_dir" "$@"
printf 'fsnn demo: run directory: %s\n' "$(cd "$run_dir" 2>/dev/null && pwd -P || printf '%s' "$run_dir")"
