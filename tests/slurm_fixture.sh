#!/usr/bin/env bash
# The ctest fixture of the slurm tests: starts the local one-node cluster
# (slurm/cluster.sh) before them and stops it after them, unless it was
# already running before (a cluster someone uses is left as it was).
#   slurm_fixture.sh start|stop REPO MARK
# MARK is a file that records that the fixture started the cluster.
set -u
what=$1 repo=$2 mark=$3
cluster=("bash" "$repo/slurm/cluster.sh")
case "$what" in
start)
    if "${cluster[@]}" status >/dev/null 2>&1; then
        rm -f "$mark"
        echo "slurm_fixture: the cluster was already running; it stays running after the tests"
        "${cluster[@]}" status
        exit $?
    fi
    "${cluster[@]}" start || exit 1
    touch "$mark"
    ;;
stop)
    if [ ! -f "$mark" ]; then
        echo "slurm_fixture: the cluster was running before the tests; left running"
        exit 0
    fi
    rm -f "$mark"
    "${cluster[@]}" stop
    ;;
*)
    echo "usage: slurm_fixture.sh start|stop REPO MARK" >&2
    exit 2
    ;;
esac
