/* fuzz_h5in: the reader of HDF5 fixture files (io/h5in.h) on arbitrary
 * files. Each input is written to a file and opened; every dataset
 * h5in_list finds below the root must exist, have a shape within the
 * reader's limits and, when small, read as float (and as int32 when the
 * read succeeds) with as many elements as its shape says; a few attributes
 * of the root and of each dataset are read as numbers and as strings, which
 * must end inside the buffer. Every refusal names the file, and after
 * h5in_close no HDF5 object may stay open. The input reaches libhdf5 with
 * no digest in front, so libhdf5's own faults (docs/fuzzing.md) stop this
 * harness too; run.sh runs it by name and sorts them out.
 * With FUZZ_H5IN_SEEDS=DIR set, it writes small files shaped like the
 * reference fixtures into DIR and exits: the seed corpus is made at fuzz
 * time. */
#include <fcntl.h>
#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "h5in.h" // defines: h5in_open, h5in_list, h5in_dims, h5in_read_f32, h5in_attr_string
#include "status.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input file, in a folder of its own under $TMPDIR (default /tmp). */
static char fuzz_dir[4096];
static char fuzz_path[sizeof fuzz_dir + 16];

/* Datasets read per input, and the most elements read from one. */
enum { FUZZ_NAMES = 64, FUZZ_READ_MAX = 1 << 16 };

static void fuzz_die(const char *what) {
    fprintf(stderr, "fuzz_h5in: %s (status: '%s' at %s)\n", what, status_message(), status_where());
    abort();
}

/* --- seeds --- */

static void seed_put(hid_t file, const char *name, hid_t ftype, hid_t mtype, int rank,
                     const hsize_t *dims, const void *data) {
    hid_t space = rank == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(rank, dims, NULL);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t ds = H5Dcreate2(file, name, ftype, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    if (ds < 0 || H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        fuzz_die("cannot write a seed dataset");
    hid_t str = H5Tcopy(H5T_C_S1);
    H5Tset_size(str, H5T_VARIABLE);
    H5Tset_cset(str, H5T_CSET_UTF8);
    hid_t scalar = H5Screate(H5S_SCALAR);
    hid_t at = H5Acreate2(ds, "role", str, scalar, H5P_DEFAULT, H5P_DEFAULT);
    const char *role = "F";
    if (at < 0 || H5Awrite(at, str, &role) < 0) fuzz_die("cannot write a seed attribute");
    H5Aclose(at);
    H5Sclose(scalar);
    H5Tclose(str);
    H5Dclose(ds);
    H5Pclose(lcpl);
    H5Sclose(space);
}

/* A file shaped like a reference fixture, with n hidden units; its `case`
 * attribute is a fixed-length string when `fixed`, else variable-length. */
static void seed_write(const char *path, int n, int fixed) {
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (file < 0) fuzz_die("cannot create a seed");
    float w[64];
    for (int i = 0; i < 64; i++)
        w[i] = 0.125f * (float)i - 2.0f;
    const hsize_t dnn[2] = {(hsize_t)n, (hsize_t)n}, dn[1] = {(hsize_t)n}, dy[1] = {2},
                  dx[4] = {2, 1, 2, 2};
    seed_put(file, "init/network_s.fc.weight_w", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, dnn, w);
    seed_put(file, "init/network_s.fc.weight_g", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 0, NULL, w);
    seed_put(file, "train/state_after/network_x.bn.running_mean", H5T_IEEE_F64LE, H5T_NATIVE_FLOAT,
             1, dn, w);
    seed_put(file, "input/x", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 4, dx, w);
    const int32_t y[2] = {3, 9};
    seed_put(file, "input/y", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, dy, y);
    hid_t scalar = H5Screate(H5S_SCALAR);
    const int64_t T = 5;
    const double vth = 2.0;
    hid_t at = H5Acreate2(file, "T", H5T_STD_I64LE, scalar, H5P_DEFAULT, H5P_DEFAULT);
    if (at < 0 || H5Awrite(at, H5T_NATIVE_INT64, &T) < 0) fuzz_die("seed attribute T");
    H5Aclose(at);
    at = H5Acreate2(file, "V_th", H5T_IEEE_F64LE, scalar, H5P_DEFAULT, H5P_DEFAULT);
    if (at < 0 || H5Awrite(at, H5T_NATIVE_DOUBLE, &vth) < 0) fuzz_die("seed attribute V_th");
    H5Aclose(at);
    const char *text = "fc_if_t5";
    hid_t str = H5Tcopy(H5T_C_S1);
    H5Tset_size(str, fixed ? strlen(text) + 1 : H5T_VARIABLE);
    at = H5Acreate2(file, "case", str, scalar, H5P_DEFAULT, H5P_DEFAULT);
    if (at < 0 || H5Awrite(at, str, fixed ? (const void *)text : (const void *)&text) < 0)
        fuzz_die("seed attribute case");
    H5Aclose(at);
    H5Tclose(str);
    H5Sclose(scalar);
    H5Fclose(file);
}

static void fuzz_seeds(const char *dir) {
    char path[4096 + 32];
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/seed-%d.h5", dir, i);
        seed_write(path, 2 + 2 * i, i % 2);
    }
}

/* --- one input --- */

static void fuzz_cleanup(void) {
    unlink(fuzz_path);
    rmdir(fuzz_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    const char *seeds = getenv("FUZZ_H5IN_SEEDS");
    if (seeds) {
        fuzz_seeds(seeds);
        exit(0);
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(fuzz_dir, sizeof fuzz_dir, "%s/fuzz_h5in_XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(fuzz_dir)) fuzz_die("mkdtemp failed");
    snprintf(fuzz_path, sizeof fuzz_path, "%s/input.h5", fuzz_dir);
    atexit(fuzz_cleanup);
    return 0;
}

/* A refusal must carry a message naming the file. */
static void fuzz_refused(const char *call) {
    if (!strstr(status_message(), fuzz_path)) {
        fprintf(stderr, "fuzz_h5in: %s refused without naming the file\n", call);
        fuzz_die("unclear refusal");
    }
    status_clear();
}

/* A string attribute read into a small buffer must end inside it. */
static void fuzz_attrs(const h5in *f, const char *obj, const char *const *names, int n) {
    for (int i = 0; i < n; i++) {
        double v;
        char s[16];
        memset(s, 'x', sizeof s);
        if (h5in_attr_double(f, obj, names[i], &v) != 0) fuzz_refused("h5in_attr_double");
        if (h5in_attr_string(f, obj, names[i], s, sizeof s) != 0)
            fuzz_refused("h5in_attr_string");
        else if (!memchr(s, '\0', sizeof s))
            fuzz_die("a string attribute without its NUL");
        (void)h5in_attr_exists(f, obj, names[i]);
    }
}

typedef struct {
    const h5in *f;
    int seen;
} fuzz_walk;

static int fuzz_dataset(void *ctx, const char *name) {
    fuzz_walk *w = ctx;
    if (++w->seen > FUZZ_NAMES) return 0;
    if (!h5in_exists(w->f, name)) fuzz_die("a listed dataset does not exist");
    int rank = -1;
    long dims[H5IN_RANK_MAX];
    if (h5in_dims(w->f, name, &rank, dims) != 0) {
        fuzz_refused("h5in_dims");
        return 0;
    }
    if (rank < 0 || rank > H5IN_RANK_MAX) fuzz_die("rank out of range");
    long count = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0 || dims[i] > H5IN_COUNT_MAX) fuzz_die("dimension out of range");
        count = dims[i] == 0 || count == 0 ? 0 : count * dims[i];
        if (count > H5IN_COUNT_MAX) fuzz_die("element count beyond the limit accepted");
    }
    static const char *const attrs[] = {"role", "kind"};
    fuzz_attrs(w->f, name, attrs, 2);
    if (count > FUZZ_READ_MAX) return 0;
    float *x = NULL;
    long n = -1;
    if (h5in_read_f32(w->f, name, &x, &n) != 0)
        fuzz_refused("h5in_read_f32");
    else if (n != count || !x)
        fuzz_die("h5in_read_f32: count differs from the shape");
    if (x && n > 0) {
        volatile float sink = x[n - 1];
        (void)sink;
        /* The same values again into a buffer of exactly that size. */
        float *into = malloc((size_t)n * sizeof *into);
        if (!into) fuzz_die("out of memory");
        if (h5in_read_f32_into(w->f, name, into, n) != 0)
            fuzz_refused("h5in_read_f32_into");
        else if (memcmp(into, x, (size_t)n * sizeof *into) != 0)
            fuzz_die("h5in_read_f32_into read other values");
        free(into);
    }
    free(x);
    int32_t *y = NULL;
    if (h5in_read_i32(w->f, name, &y, &n) != 0)
        fuzz_refused("h5in_read_i32");
    else if (n != count || !y)
        fuzz_die("h5in_read_i32: count differs from the shape");
    free(y);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int fd = open(fuzz_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) fuzz_die("cannot create the input file");
    const uint8_t *p = data;
    size_t left = size;
    while (left > 0) {
        ssize_t wr = write(fd, p, left);
        if (wr <= 0) fuzz_die("cannot write the input file");
        p += wr;
        left -= (size_t)wr;
    }
    if (close(fd) != 0) fuzz_die("cannot write the input file");

    h5in *f = NULL;
    if (h5in_open(&f, fuzz_path) != 0) {
        if (f) fuzz_die("a handle from a failed open");
        fuzz_refused("h5in_open");
    } else {
        static const char *const root_attrs[] = {"T", "V_th", "case"};
        fuzz_attrs(f, "/", root_attrs, 3);
        fuzz_walk w = {f, 0};
        if (h5in_list(f, "/", fuzz_dataset, &w) != 0) fuzz_refused("h5in_list");
        h5in_close(&f);
        if (f) fuzz_die("h5in_close left the handle");
    }
    if (H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) != 0) fuzz_die("an HDF5 object stayed open");
    status_clear();
    return 0;
}
