#!/usr/bin/env bash
# The layout's promises (docs/architecture.md), checked on the sources:
#   - no C file under src/ mpi/ io/ jobs/ over 900 lines, no function over 80
#     (from its signature's first line to its closing brace);
#   - the numerics (src/*.c, src/*.h) call neither MPI nor HDF5, and io/
#     has no MPI: the communicator-bound code lives in mpi/ and src/cmd/;
#   - one epoch loop: only src/trainer.c draws an epoch's sample order.
#   layout.sh REPO
set -u
repo=$1 name=layout
. "$(dirname "$0")/lib.sh"
cd "$repo" || exit 1
files=$(ls src/*.[ch] src/cmd/*.[ch] mpi/*.[ch] io/*.[ch] jobs/*.[ch])
for f in $files; do
    n=$(wc -l <"$f")
    check '[ "$n" -le 900 ]' "$f has $n lines (at most 900)"
done
long=$(awk 'FNR == 1 { start = 0 }
    /^[A-Za-z_].*\(/ && !/;[[:space:]]*$/ && !/^typedef/ && !/^#/ { if (!start) { start = FNR; name = $0 } }
    /^}/ { if (start && FNR - start + 1 > 80) printf "%s:%d: %d lines: %s\n", FILENAME, start, FNR - start + 1, name; start = 0 }
    /;[[:space:]]*$/ && start == FNR { start = 0 }' $(ls src/*.c src/cmd/*.c mpi/*.c io/*.c jobs/*.c))
check '[ -z "$long" ]' "functions over 80 lines:
$long"
numerics=$(grep -ln 'include <mpi.h>\|include <hdf5.h>\|MPI_[A-Z][a-z_]*(\|H5[A-Z][a-z]*[a-z_]*(' src/*.c src/*.h)
check '[ -z "$numerics" ]' "MPI or HDF5 in the numerics: $numerics"
io_mpi=$(grep -ln 'include <mpi.h>\|MPI_[A-Z][a-z_]*(' io/*.c io/*.h)
check '[ -z "$io_mpi" ]' "MPI in io/: $io_mpi"
loops=$(grep -ln 'rng_permutation(' src/*.c src/cmd/*.c mpi/*.c io/*.c jobs/*.c | grep -v '^src/trainer.c$\|^src/rng.c$')
check '[ -z "$loops" ]' "an epoch's sample order drawn outside src/trainer.c: $loops"
finish
