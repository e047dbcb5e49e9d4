#!/usr/bin/env bash
# docs/config.md must be exactly what `fsnn --help-config --markdown` prints,
# so the reference never drifts from the option table.
#   docs_current.sh FSNN DOC
set -u
fsnn=$1 doc=$2
if diff -u "$doc" <("$fsnn" --help-config --markdown); then
    echo "docs_current: 1 passed, 0 failed"
else
    echo "FAILED: $doc is stale; regenerate: build/fsnn --help-config --markdown > docs/config.md"
    echo "docs_current: 0 passed, 1 failed"
    exit 1
fi
