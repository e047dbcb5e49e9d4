#!/usr/bin/env bash
# Speed and memory of every shipped configuration (configs/*.ini, not
# configs/sweeps/): one `fsnn train CONFIG` per config for a short fixed
# amount of work (a limit of training samples, one epoch, a limit of test
# samples), each in a fresh process so that peak RSS is that run's own.
# Prints one row per config: net (model.net), T, batch (train.batch), ranks x
# threads, train and test samples/s, the seconds per training step of the
# input branch, simulation, adjoint and gradient phases (metrics.csv's
# t_input, t_sim, t_adj, t_grad, scaled to one step of `batch` samples), the
# peak RSS (the largest over ranks) and the OpenBLAS core of the `blas:` log
# line. Above the table: the machine (CPU, cores, OPENBLAS_CORETYPE, nproc,
# load average) and which rows ran on generated data.
#
# A config with parallel.model_ranks = M > 1 runs as M ranks under mpirun
# (one model over M ranks); the others as one process with one thread per
# core. The real CIFAR-10/100 and N-MNIST files are used when the config's
# data.path holds them; otherwise the row runs on generated files in the
# official binary formats (marked * in the table): CIFAR-10 from tests/lib.sh's
# cifar_fixture (flat colour images), CIFAR-100 the same records with a coarse
# label, N-MNIST a moving bar of events per digit. Generated images and events
# do not fire like real ones, so those rows give the cost of the net, not the
# speed on the real data set. Fashion-MNIST and MNIST are in data/.
#
# The samples per row at BENCH_SCALE=1 (plan() below) are meant for 10-60 s
# of training on 2 cores; the CIFARNet rows need 64 samples (two
# micro-shards, one per thread) and take longer, and F16384's row also
# spends minutes in the epoch's exact SVD of W (psgesvd) and in writing its
# checkpoint, which the figures leave out. A limit above a real data set's
# size runs more epochs of the whole set. Training figures include the first
# step (first touches of memory); a row with fewer samples than a batch runs
# one smaller step, and its phase seconds are scaled to a whole batch.
#
#   bench/configs.sh                                   every config (13 minutes on 2 cores)
#   BENCH_CONFIGS="fmnist_fc_lif mnist_conv_if" bench/configs.sh   these configs only
#   BENCH_SCALE=0.1 bench/configs.sh                   a tenth of the samples (a quick look)
#   BENCH_FORMAT=markdown bench/configs.sh             rows as a Markdown table (docs/performance.md)
#   BENCH_OVERRIDES="model.conv=im2col" bench/configs.sh   config overrides for every row
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$repo/build}
fsnn=$build/fsnn
[ -x "$fsnn" ] || { echo "bench: $fsnn not built; run jobs/setup.sh first" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time missing (Debian package time)" >&2; exit 1; }
scale=${BENCH_SCALE:-1}
format=${BENCH_FORMAT:-plain}
mpiexec=${MPIEXEC:-mpirun}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
out=$(mktemp -d /tmp/fsnn-bench-configs.XXXXXX)
trap 'rm -rf "$out"' EXIT
. "$repo/tests/lib.sh" # cifar_fixture

# plan NAME: training and test samples of the row at BENCH_SCALE=1.
plan() {
    case $1 in
        demo | fmnist_fc_if | fmnist_fc_lif | mnist_fc_if) echo 120000 10000 ;;
        fmnist_fc_n4096) echo 512 2000 ;;
        fmnist_fc_n16384) echo 128 200 ;;
        mnist_conv_if | mnist_conv_lif) echo 5120 2000 ;;
        nmnist_conv_lif) echo 1280 1000 ;;
        cifar10_alexnet_t30) echo 128 64 ;;
        cifar10_alexnet_t100 | cifar10_cifarnet_t30 | cifar100_cifarnet_if) echo 64 32 ;;
        cifar10_cifarnet_t100) echo 64 16 ;;
        *) echo 256 64 ;; # a config this table does not know yet
    esac
}
# ini FILE SECTION KEY: the key's value in an INI file (empty when absent).
ini() {
    awk -v s="[$2]" -v k="$3" '
        { sub(/[;#].*/, ""); gsub(/^[ \t]+|[ \t]+$/, "") }
        /^\[/ { in_s = ($0 == s); next }
        in_s && index($0, "=") { key = substr($0, 1, index($0, "=") - 1); gsub(/[ \t]+$/, "", key)
            if (key == k) { v = substr($0, index($0, "=") + 1); gsub(/^[ \t]+/, "", v); val = v } }
        END { print val }' "$1"
}
# real_data DATASET PATH: whether PATH holds the data set's files.
real_data() {
    case $1 in
        fmnist | mnist) [ -e "$2/train-labels-idx1-ubyte" ] || [ -e "$2/train-labels-idx1-ubyte.gz" ] ;;
        cifar10) [ -e "$2/data_batch_1.bin" ] || [ -e "$2/cifar-10-batches-bin/data_batch_1.bin" ] ;;
        cifar100) [ -e "$2/train.bin" ] || [ -e "$2/cifar-100-binary/train.bin" ] ;;
        nmnist) [ -d "$2/Train" ] ;;
        *) false ;;
    esac
}
# train_size DATASET PATH: training samples in a real data set.
train_size() {
    local f
    case $1 in
        fmnist | mnist)
            f=$2/train-labels-idx1-ubyte
            [ -e "$f" ] || f=$f.gz
            # the label file's count (bytes 4..7); head closes the pipe early
            { zcat -f "$f" || true; } | head -c 8 | od -An -tu1 |
                awk '{ print (($5 * 256 + $6) * 256 + $7) * 256 + $8 }' ;;
        cifar10) { cat "$2"/data_batch_?.bin "$2"/cifar-10-batches-bin/data_batch_?.bin || true; } 2>/dev/null |
            wc -c | awk '{ print int($1 / 3073) }' ;;
        cifar100) { cat "$2"/train.bin "$2"/cifar-100-binary/train.bin || true; } 2>/dev/null | wc -c |
            awk '{ print int($1 / 3074) }' ;;
        nmnist) find "$2/Train" -name '*.bin' | wc -l ;;
    esac
}
# repeat FILE K: FILE's records K times over.
repeat() {
    local i
    mv "$1" "$1.one"
    for ((i = 0; i < $2; i++)); do cat "$1.one"; done >"$1"
    rm "$1.one"
}
# gen_cifar DATASET DIR TRAIN TEST: at least TRAIN training and TEST test
# images in DIR, cifar_fixture's 50 and 20 records repeated; CIFAR-100's
# records are CIFAR-10's with a coarse label 0 in front.
gen_cifar() {
    local d=$2 k=$((($3 + 49) / 50)) kt=$((($4 + 19) / 20)) f p
    cifar_fixture "$d/c10"
    if [ "$1" = cifar100 ]; then
        for f in train test; do
            mkdir -p "$d/split"
            if [ $f = train ]; then cat "$d"/c10/cifar-10-batches-bin/data_batch_?.bin; else
                cat "$d/c10/cifar-10-batches-bin/test_batch.bin"; fi | split -b 3073 -a 4 - "$d/split/r"
            for p in "$d"/split/r*; do printf '\0'; cat "$p"; done >"$d/$f.bin"
            rm -r "$d/split"
        done
        rm -r "$d/c10"
        repeat "$d/train.bin" "$k"
        repeat "$d/test.bin" "$kt"
    else
        for f in "$d"/c10/cifar-10-batches-bin/data_batch_?.bin; do repeat "$f" "$k"; done
        repeat "$d/c10/cifar-10-batches-bin/test_batch.bin" "$kt"
        mv "$d/c10/cifar-10-batches-bin" "$d/" && rmdir "$d/c10"
    fi
}
# gen_nmnist DIR TRAIN TEST FRAMES: N-MNIST's layout (Train/<digit>/*.bin,
# Test/...; 5-byte events as in tests/nmnist_train.sh), ceil(TRAIN / 10) and
# ceil(TEST / 10) copies of one sample per digit and split: in each of FRAMES
# frames of 3 ms 40 events, an 8 x 5 bar placed by the digit, one row lower
# per frame (12 rows, then again from the top), ON and OFF alternating.
gen_nmnist() {
    local d=$1 frames=$4 digit split n v t k ts buf esc i
    for split in Train Test; do
        n=$((($2 + 9) / 10)) v=0
        [ $split = Test ] && n=$((($3 + 9) / 10)) v=1
        for digit in 0 1 2 3 4 5 6 7 8 9; do
            buf=
            for ((t = 0; t < frames; t++)); do
                for ((k = 0; k < 40; k++)); do
                    ts=$((t * 3000 + 100 + 50 * k))
                    printf -v esc '\\%03o\\%03o\\%03o\\%03o\\%03o' $((2 + 2 * digit + k % 8)) \
                        $((6 + k / 8 + t % 12 + v)) $(((k % 2) << 7 | ts >> 16)) \
                        $(((ts >> 8) & 255)) $((ts & 255))
                    buf+=$esc
                done
            done
            mkdir -p "$d/$split/$digit"
            # shellcheck disable=SC2059 # buf is the bytes as printf escapes
            for ((i = 1; i <= n; i++)); do printf "$buf" >"$(printf '%s/%s/%s/%05d.bin' "$d" $split $digit $i)"; done
        done
    done
}

# The configs and their data.
configs=()
if [ -n "${BENCH_CONFIGS:-}" ]; then
    for c in $BENCH_CONFIGS; do
        c=$(basename "$c" .ini)
        [ -f "$repo/configs/$c.ini" ] || { echo "bench: no configs/$c.ini" >&2; exit 1; }
        configs+=("$c")
    done
else
    for f in "$repo"/configs/*.ini; do configs+=("$(basename "$f" .ini)"); done
fi
declare -A dataset path generated
for c in "${configs[@]}"; do
    cfg=$repo/configs/$c.ini
    dataset[$c]=$(ini "$cfg" data dataset)
    p=$(ini "$cfg" data path)
    case $p in /*) ;; *) p=$repo/$p ;; esac
    path[$c]=$p
    generated[$c]=0
    if ! real_data "${dataset[$c]}" "$p"; then
        case ${dataset[$c]} in
            cifar10 | cifar100 | nmnist) generated[$c]=1 ;;
            *) echo "bench: $c: no ${dataset[$c]} files in $p (jobs/setup.sh installs them)" >&2; exit 1 ;;
        esac
    fi
done

gen=""
for c in "${configs[@]}"; do [ "${generated[$c]}" = 1 ] && gen+="${gen:+, }$c"; done
model=$(sed -n 's/^model name[ \t]*: //p' /proc/cpuinfo | head -n 1)
avx512=no
grep -qw avx512f /proc/cpuinfo && avx512=yes
echo "fsnn configs/*.ini: one epoch of a limit of samples each (BENCH_SCALE=$scale); $(date -u +%FT%TZ)"
echo "machine: ${model:-unknown CPU}, $(grep -c '^processor' /proc/cpuinfo) cores online (AVX-512 $avx512)," \
    "nproc $(nproc), OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "build: $fsnn ($(git -C "$repo" describe --always --dirty 2>/dev/null || echo 'no git'))"
echo "generated data (official formats; real files absent): ${gen:-none}${gen:+ (rows marked *)}"
echo "t_input .. t_grad: seconds per training step of batch samples (the run's phase seconds x batch / samples)"
if [ "$format" = markdown ]; then
    echo
    echo "| config | net | T | batch | ranks x threads | train samples/s | test samples/s | t_input s | t_sim s | t_adj s | t_grad s | peak RSS MB | OpenBLAS core |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
else
    printf '%-22s %-44s %4s %5s %15s %11s %11s %8s %8s %8s %8s %7s  %s\n' config net T batch \
        "ranks x threads" "train smp/s" "test smp/s" t_input t_sim t_adj t_grad "RSS MB" "OpenBLAS core"
fi

for c in "${configs[@]}"; do
    cfg=$repo/configs/$c.ini ds=${dataset[$c]} data=${path[$c]} run=$out/$c
    set -- $(plan "$c")
    ntrain=$(awk -v n="$1" -v s="$scale" 'BEGIN { v = int(n * s + 0.5); print v < 1 ? 1 : v }')
    ntest=$(awk -v n="$2" -v s="$scale" 'BEGIN { v = int(n * s + 0.5); print v < 1 ? 1 : v }')
    epochs=1 limit=$ntrain
    if [ "${generated[$c]}" = 1 ]; then
        data=$out/$c-data
        mkdir -p "$data"
        if [ "$ds" = nmnist ]; then
            gen_nmnist "$data" "$ntrain" "$ntest" "$(ini "$cfg" model time_steps)"
        else
            gen_cifar "$ds" "$data" "$ntrain" "$ntest"
        fi
    else
        size=$(train_size "$ds" "$data")
        if [ "$ntrain" -gt "$size" ]; then epochs=$(((ntrain + size - 1) / size)) limit=$size; fi
    fi
    np=$(ini "$cfg" parallel model_ranks)
    np=${np:-1}
    echo "bench: $c: $((epochs * limit)) training samples ($epochs x $limit), $ntest test, $np rank(s)" >&2
    args=(train "$cfg" "run.dir=$run" "data.path=$data" "data.train_limit=$limit" "data.test_limit=$ntest"
        "train.epochs=$epochs" run.progress=plain ${BENCH_OVERRIDES:-})
    t0=$(date +%s)
    if [ "$np" -gt 1 ]; then
        "$mpiexec" -np "$np" --oversubscribe --bind-to none bash -c \
            'exec /usr/bin/time -o "$0.rss.${OMPI_COMM_WORLD_RANK}" -f "%M" "$@"' "$run" \
            "$fsnn" "${args[@]}" >"$run.log" 2>&1 || { tail -n 20 "$run.log" >&2; exit 1; }
    else
        /usr/bin/time -o "$run.rss.0" -f %M "$fsnn" "${args[@]}" >"$run.log" 2>&1 ||
            { tail -n 20 "$run.log" >&2; exit 1; }
    fi
    echo "bench: $c: $(($(date +%s) - t0)) s" >&2
    core=$(sed -n 's/^blas: .*; core \([A-Za-z0-9_]*\),.*/\1/p' "$run.log" | head -n 1)
    threads=$(sed -n 's/^blas: .*; core [A-Za-z0-9_]*, \([0-9]*\) thread.*/\1/p' "$run.log" | head -n 1)
    rss=$(for f in "$run".rss.*; do tail -n 1 "$f"; done | sort -n | tail -n 1)
    name=$c
    [ "${generated[$c]}" = 1 ] && name+="*"
    # The samples of an epoch as the data line counts them (after the limits).
    set -- $(sed -n 's/^data: .*: \([0-9]*\) training and \([0-9]*\) test samples.*/\1 \2/p' "$run.log")
    awk -F, -v name="$name" -v net="$(ini "$run/config.ini" model net)" \
        -v T="$(ini "$run/config.ini" model time_steps)" -v batch="$(ini "$run/config.ini" train batch)" \
        -v rt="$np x ${threads:-?}" -v n="${1:-$limit}" -v m="${2:-$ntest}" -v rss="$rss" \
        -v core="${core:-?}" -v md="$([ "$format" = markdown ] && echo 1 || echo 0)" '
        NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
        { tr += n / $c["train_samples_per_s"]; te += m / $c["test_samples_per_s"]; e++
          t[1] += $c["t_input"]; t[2] += $c["t_sim"]; t[3] += $c["t_adj"]; t[4] += $c["t_grad"] }
        END {
            f = batch / (e * n)
            if (md) printf "| %s | %s | %s | %s | %s | %.1f | %.1f | %.3g | %.3g | %.3g | %.3g | %.0f | %s |\n",
                name, net, T, batch, rt, e * n / tr, e * m / te, t[1] * f, t[2] * f, t[3] * f, t[4] * f,
                rss / 1024, core
            else printf "%-22s %-44s %4s %5s %15s %11.1f %11.1f %8.3g %8.3g %8.3g %8.3g %7.0f  %s\n",
                name, net, T, batch, rt, e * n / tr, e * m / te, t[1] * f, t[2] * f, t[3] * f, t[4] * f,
                rss / 1024, core }' "$run/metrics.csv"
    rm -rf "$run" "$out/$c-data"
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
