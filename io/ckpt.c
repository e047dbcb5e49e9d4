/* ckpt: HDF5 checkpoint writer and validating reader. */
#include "ckpt.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpthead.h"
#include "fsutil.h"
#include "log.h"
#include "status.h"

/* The integer attributes, in checksum order. */
enum {
    CK_N_IN,
    CK_N_HIDDEN,
    CK_N_OUT,
    CK_N_PARAMS,
    CK_EPOCH,
    CK_STEP,
    CK_ITER,
    CK_OPT_STEP,
    CK_BAD,
    CK_BAD_RUN,
    CK_WORLD,
    CK_N_INTS
};
static const char *const ckpt_int_names[CK_N_INTS] = {
    "n_in", "n_hidden",   "n_out",     "n_params", "epoch",     "step",
    "iter", "optim_step", "bad_steps", "bad_run",  "world_size"};

static const char ckpt_units[] =
    "epoch: count; lr: 1; *_loss: nats; *_acc: percent; *residual*: L2 norm; adj_iters: "
    "iterations per sample; firing_rate: spikes per neuron per step; spectral_norm, "
    "spectral_norm_exact: 1; "
    "*_samples_per_s: samples/s; peak_rss_mb: MiB; seconds, t_*: s; gemm_gflops: GFLOP/s; "
    "*_steps, restarts: count";

/* One float32 tensor of the file: where it lives and its shape. */
typedef struct {
    const char *group, *name;
    float *data;
    int rank;
    hsize_t dims[2];
} ckpt_tensor;

/* Every float tensor of a checkpoint of model m with optimiser opt, in the
 * canonical (checksum) order. Returns the count. */
static int ckpt_tensors(fsnn_model *m, optim *opt, ckpt_tensor *t) {
    int k = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const model_tensor_info *ti = &m->info[i];
        t[k++] = (ckpt_tensor){"params",
                               ti->name,
                               m->params + ti->offset,
                               ti->rank,
                               {(hsize_t)ti->dims[0], (hsize_t)ti->dims[1]}};
    }
    for (int i = 0; i < m->n_state; i++) {
        const model_state_info *si = &m->state[i];
        t[k++] = (ckpt_tensor){"state", si->name, si->data, 1, {(hsize_t)si->count, 1}};
    }
    const hsize_t np = (hsize_t)m->n_params;
    t[k++] = (ckpt_tensor){"optim", "m1", opt->m1, 1, {np, 1}};
    if (opt->m2) t[k++] = (ckpt_tensor){"optim", "m2", opt->m2, 1, {np, 1}};
    return k;
}

#define CKPT_MAX_TENSORS (MODEL_TENSORS_MAX + MODEL_STATE_MAX + 2)

static void ckpt_ints(const ckpt_data *d, int64_t *v) {
    const fsnn_model *m = d->m;
    const trainer_state *ts = d->ts;
    const int64_t x[CK_N_INTS] = {m->n_in,       m->n,        m->n_out,     (int64_t)m->n_params,
                                  ts->epoch,     ts->step,    ts->iter,     ts->opt->step,
                                  ts->bad_steps, ts->bad_run, d->world_size};
    memcpy(v, x, sizeof x);
}

/* The checksum's part after the tensors: history (cols columns per row, as
 * stored), partial statistics and counters; then the digest as hex. Frees
 * ctx (which ok says is still good). Returns whether all went well. */
static int ckpt_digest_finish(EVP_MD_CTX *ctx, int ok, const ckpt_data *d, const int64_t *ints,
                              int cols, char hex[65]) {
    if (ok && d->history_rows > 0)
        ok =
            EVP_DigestUpdate(ctx, d->history, sizeof(double) * (size_t)d->history_rows * cols) == 1;
    if (ok) ok = EVP_DigestUpdate(ctx, d->partial, sizeof d->partial) == 1;
    if (ok) ok = EVP_DigestUpdate(ctx, ints, sizeof(int64_t) * CK_N_INTS) == 1;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    if (ok) ok = EVP_DigestFinal_ex(ctx, md, &len) == 1 && len == 32;
    EVP_MD_CTX_free(ctx);
    if (ok) ckpthead_hex(md, hex);
    return ok;
}

/* SHA-256 over tensors, history (cols columns per row, as stored),
 * partial statistics and counters. */
static int ckpt_checksum(const ckpt_data *d, const int64_t *ints, int cols, char hex[65]) {
    ckpt_tensor t[CKPT_MAX_TENSORS];
    int nt = ckpt_tensors(d->m, d->ts->opt, t);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
    for (int i = 0; ok && i < nt; i++)
        ok = EVP_DigestUpdate(ctx, t[i].data, sizeof(float) * t[i].dims[0] * t[i].dims[1]) == 1;
    ok = ckpt_digest_finish(ctx, ok, d, ints, cols, hex);
    return ok ? FSNN_OK : FAIL("SHA-256 failed (OpenSSL)");
}

int ckpt_weights_sha256(const fsnn_model *m, char hex[65]) {
    /* Every platform fsnn builds on stores float32 little-endian, so the
     * array's bytes are the canonical layout. */
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(m->params, sizeof(float) * m->n_params, md, &len, EVP_sha256(), NULL) != 1 ||
        len != 32)
        return FAIL("SHA-256 of the weights failed (OpenSSL)");
    ckpthead_hex(md, hex);
    return FSNN_OK;
}

int ckpt_seal(const char *path) {
    int fd = open(path, O_RDWR);
    if (fd < 0) return FAIL("%s: cannot open to seal: %s", path, strerror(errno));
    int rc = ckpthead_seal_fd(fd, path);
    close(fd);
    return rc;
}

/* --- writing --- */

static int ckpt_put(hid_t file, const char *group, const char *name, hid_t ftype, hid_t mtype,
                    const void *data, int rank, const hsize_t *dims, const char *path) {
    char full[128];
    snprintf(full, sizeof full, "/%s/%s", group, name);
    hid_t space = H5Screate_simple(rank, dims, NULL);
    hid_t ds = space < 0
                   ? -1
                   : H5Dcreate2(file, full, ftype, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t wr = ds < 0 ? -1 : H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    if (ds >= 0) H5Dclose(ds);
    if (space >= 0) H5Sclose(space);
    if (wr < 0) return FAIL("%s: cannot write dataset '%s'", path, full);
    return FSNN_OK;
}

static int ckpt_attr_i64(hid_t loc, const char *name, int64_t value, const char *path) {
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t at = H5Acreate2(loc, name, H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    herr_t wr = at < 0 ? -1 : H5Awrite(at, H5T_NATIVE_INT64, &value);
    if (at >= 0) H5Aclose(at);
    H5Sclose(space);
    if (wr < 0) return FAIL("%s: cannot write attribute '%s'", path, name);
    return FSNN_OK;
}

static int ckpt_attr_str(hid_t loc, const char *name, const char *value, const char *path) {
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, strlen(value) + 1);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t at = H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    herr_t wr = at < 0 ? -1 : H5Awrite(at, type, value);
    if (at >= 0) H5Aclose(at);
    H5Sclose(space);
    H5Tclose(type);
    if (wr < 0) return FAIL("%s: cannot write attribute '%s'", path, name);
    return FSNN_OK;
}

/* The tensors of /params that a write in steps leaves to its caller
 * (ckpt_begin): names[n], borrowed. */
typedef struct {
    const char *const *names;
    int n;
} ckpt_holes;

static int ckpt_is_hole(const ckpt_holes *h, const char *group, const char *name) {
    if (strcmp(group, "params") != 0) return 0;
    for (int k = 0; k < h->n; k++)
        if (!strcmp(h->names[k], name)) return 1;
    return 0;
}

/* A dataset whose storage exists before anything is written: the caller of
 * ckpt_begin fills it in place later (mpi/ckptshard.c: through MPI-IO). */
static hid_t ckpt_create_early(hid_t file, const char *full, int rank, const hsize_t *dims) {
    hid_t space = H5Screate_simple(rank, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t ds = -1;
    if (space >= 0 && dcpl >= 0 && H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY) >= 0)
        ds = H5Dcreate2(file, full, H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (space >= 0) H5Sclose(space);
    return ds;
}

/* A tensor that a write in steps creates early: a hole's dataset is only
 * created; of /optim/m1 and m2 the parts of the tensors other than the holes
 * are written (the holes' parts are the caller's). */
static int ckpt_put_early(hid_t f, const ckpt_data *d, const ckpt_tensor *t, const ckpt_holes *h,
                          const char *path) {
    char full[128];
    snprintf(full, sizeof full, "/%s/%s", t->group, t->name);
    hid_t ds = ckpt_create_early(f, full, t->rank, t->dims);
    if (ds < 0) return FAIL("%s: cannot create dataset '%s'", path, full);
    herr_t wr = 0;
    if (!strcmp(t->group, "optim")) {
        hid_t fs = H5Dget_space(ds);
        for (int i = 0; wr >= 0 && i < d->m->n_tensors; i++) {
            const model_tensor_info *ti = &d->m->info[i];
            if (ckpt_is_hole(h, "params", ti->name)) continue;
            hsize_t start = ti->offset, count = ti->count;
            hid_t ms = H5Screate_simple(1, &count, NULL);
            wr = H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &count, NULL);
            if (wr >= 0) wr = H5Dwrite(ds, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, t->data + start);
            H5Sclose(ms);
        }
        H5Sclose(fs);
    }
    H5Dclose(ds);
    if (wr < 0) return FAIL("%s: cannot write dataset '%s'", path, full);
    return FSNN_OK;
}

/* The placeholder of checksum_sha256 in a write in steps until ckpt_commit
 * has read the tensors back (the same length as the digest). */
static const char ckpt_sum_pending[] =
    "0000000000000000000000000000000000000000000000000000000000000000";

/* Everything of d into the new file f; with holes (ckpt_begin), all but the
 * holes' data and a placeholder for checksum_sha256. */
static int ckpt_fill(hid_t f, const ckpt_data *d, const char *path, const ckpt_holes *h) {
    int64_t ints[CK_N_INTS];
    ckpt_ints(d, ints);
    char sum[65];
    if (h)
        memcpy(sum, ckpt_sum_pending, sizeof sum);
    else
        CHECK(ckpt_checksum(d, ints, METRICS_N_COLS, sum));
    CHECK(ckpt_attr_str(f, "format", "fsnn-checkpoint", path));
    CHECK(ckpt_attr_i64(f, "format_version", CKPT_VERSION, path));
    for (int i = 0; i < CK_N_INTS; i++)
        CHECK(ckpt_attr_i64(f, ckpt_int_names[i], ints[i], path));
    CHECK(ckpt_attr_str(f, "optimizer", d->ts->opt->kind == OPTIM_ADAM ? "adam" : "sgd", path));
    CHECK(ckpt_attr_str(f, "config", d->config_text ? d->config_text : "", path));
    CHECK(ckpt_attr_str(f, "checksum_sha256", sum, path));
    const char *groups[] = {"params", "state", "optim", "run"};
    for (int i = 0; i < 4; i++) {
        hid_t g = H5Gcreate2(f, groups[i], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (g < 0) return FAIL("%s: cannot create group '%s'", path, groups[i]);
        H5Gclose(g);
    }
    ckpt_tensor t[CKPT_MAX_TENSORS];
    int nt = ckpt_tensors(d->m, d->ts->opt, t);
    for (int i = 0; i < nt; i++) {
        if (h && (ckpt_is_hole(h, t[i].group, t[i].name) || !strcmp(t[i].group, "optim"))) {
            CHECK(ckpt_put_early(f, d, &t[i], h, path));
            continue;
        }
        CHECK(ckpt_put(f, t[i].group, t[i].name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, t[i].data,
                       t[i].rank, t[i].dims, path));
    }
    hsize_t hd[2] = {(hsize_t)d->history_rows, METRICS_N_COLS};
    CHECK(
        ckpt_put(f, "run", "history", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, d->history, 2, hd, path));
    hid_t hist = H5Dopen2(f, "/run/history", H5P_DEFAULT);
    if (hist < 0) return FAIL("%s: cannot reopen /run/history", path);
    int rc = ckpt_attr_str(hist, "columns", metrics_header(), path);
    if (rc == 0) rc = ckpt_attr_str(hist, "units", ckpt_units, path);
    H5Dclose(hist);
    CHECK(rc);
    hsize_t pd[1] = {TRAINER_PARTIAL_N};
    CHECK(
        ckpt_put(f, "run", "partial", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, d->partial, 1, pd, path));
    return FSNN_OK;
}

/* The paths of dir's checkpoint files. */
static int ckpt_paths(const char *dir, char *tmp, char *cur, char *prev, size_t size) {
    CHECK(fsutil_join(cur, size, dir, CKPT_FILE));
    CHECK(fsutil_join(prev, size, dir, CKPT_PREV));
    return ckpt_temp_path(dir, tmp, size);
}

/* A new file with the user block that leaves room for the fsnn header
 * before HDF5's superblock. */
static hid_t ckpt_create(const char *tmp) {
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    hid_t f = fcpl >= 0 && H5Pset_userblock(fcpl, CKPT_HEADER_SIZE) >= 0
                  ? H5Fcreate(tmp, H5F_ACC_TRUNC, fcpl, H5P_DEFAULT)
                  : -1;
    if (fcpl >= 0) H5Pclose(fcpl);
    return f;
}

/* After HDF5 has closed tmp (rc its status so far): the header, which
 * covers HDF5's bytes, fsync (HDF5 does not: the bytes must be on disk
 * before the rename makes them current), then tmp becomes the current file
 * and the current one the previous. tmp is removed on failure. */
static int ckpt_finish(int rc, const char *dir, const char *tmp, const char *cur,
                       const char *prev) {
    int fd = rc == 0 ? open(tmp, O_RDWR) : -1;
    if (rc == 0 && fd < 0) rc = FAIL("%s: cannot reopen: %s", tmp, strerror(errno));
    if (rc == 0) rc = ckpthead_seal_fd(fd, tmp);
    if (rc == 0 && fsync(fd) != 0) rc = FAIL("%s: fsync failed: %s", tmp, strerror(errno));
    if (fd >= 0) close(fd);
    if (rc) {
        unlink(tmp);
        return rc;
    }
    if (fsutil_is_file(cur) && rename(cur, prev) != 0)
        return FAIL("%s: cannot keep as %s: %s", cur, prev, strerror(errno));
    if (rename(tmp, cur) != 0) return FAIL("%s: rename failed: %s", cur, strerror(errno));
    return fsutil_sync_dir(dir);
}

int ckpt_write(const char *dir, const ckpt_data *d) {
    char tmp[4096], cur[4096], prev[4096];
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* our messages replace HDF5's stack dumps */
    CHECK(ckpt_paths(dir, tmp, cur, prev, sizeof tmp));
    hid_t f = ckpt_create(tmp);
    if (f < 0) return FAIL("%s: cannot create HDF5 file", tmp);
    int rc = ckpt_fill(f, d, tmp, NULL);
    if (H5Fflush(f, H5F_SCOPE_GLOBAL) < 0 && rc == 0) rc = FAIL("%s: flush failed", tmp);
    if (H5Fclose(f) < 0 && rc == 0) rc = FAIL("%s: close failed", tmp);
    return ckpt_finish(rc, dir, tmp, cur, prev);
}

/* --- writing in steps --- */

int ckpt_temp_path(const char *dir, char *path, size_t size) {
    return fsutil_join(path, size, dir, CKPT_FILE ".tmp");
}

int ckpt_begin(const char *dir, const ckpt_data *d, const char *const *holes, int n_holes) {
    char tmp[4096], cur[4096], prev[4096];
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    /* All three paths, so that ckpt_commit cannot fail on them once the
     * temporary file exists. */
    CHECK(ckpt_paths(dir, tmp, cur, prev, sizeof tmp));
    hid_t f = ckpt_create(tmp);
    if (f < 0) return FAIL("%s: cannot create HDF5 file", tmp);
    int rc = ckpt_fill(f, d, tmp, &(ckpt_holes){holes, n_holes});
    if (H5Fclose(f) < 0 && rc == 0) rc = FAIL("%s: close failed", tmp);
    return rc;
}

/* Adds `count` floats of dataset `full` of f to the digest, in slices. */
static int ckpt_digest_dataset(EVP_MD_CTX *ctx, hid_t f, const char *full, hsize_t count,
                               float *buf, hsize_t slice) {
    hid_t ds = H5Dopen2(f, full, H5P_DEFAULT);
    hid_t fs = ds >= 0 ? H5Dget_space(ds) : -1;
    int ndims = fs >= 0 ? H5Sget_simple_extent_ndims(fs) : -1;
    hsize_t dims[2] = {0, 1};
    int ok = ndims >= 1 && ndims <= 2 && H5Sget_simple_extent_dims(fs, dims, NULL) >= 0;
    const hsize_t cols = ndims == 2 ? dims[1] : 1, rows = dims[0];
    ok = ok && rows * cols == count;
    const hsize_t per = slice / cols > 0 ? slice / cols : 1; /* rows per slice */
    for (hsize_t r = 0; ok && r < rows; r += per) {
        hsize_t start[2] = {r, 0}, cnt[2] = {rows - r < per ? rows - r : per, cols};
        hsize_t n = cnt[0] * cnt[1];
        hid_t ms = H5Screate_simple(1, &n, NULL);
        ok = H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL) >= 0 &&
             H5Dread(ds, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, buf) >= 0 &&
             EVP_DigestUpdate(ctx, buf, sizeof(float) * n) == 1;
        H5Sclose(ms);
    }
    if (fs >= 0) H5Sclose(fs);
    if (ds >= 0) H5Dclose(ds);
    return ok ? 0 : -1;
}

/* checksum_sha256 over the tensors read back from the file in slices, in
 * ckpt_checksum's order, then the other parts. */
static int ckpt_sum_back(const char *tmp, const ckpt_data *d) {
    hid_t f = H5Fopen(tmp, H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0) return FAIL("%s: cannot reopen to sum its tensors", tmp);
    ckpt_tensor t[CKPT_MAX_TENSORS];
    const int nt = ckpt_tensors(d->m, d->ts->opt, t);
    int64_t ints[CK_N_INTS];
    ckpt_ints(d, ints);
    const hsize_t slice = 1 << 20;
    float *buf = malloc(sizeof(float) * slice);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = buf && ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
    char full[128];
    for (int i = 0; ok && i < nt; i++) {
        snprintf(full, sizeof full, "/%s/%s", t[i].group, t[i].name);
        ok = ckpt_digest_dataset(ctx, f, full, t[i].dims[0] * t[i].dims[1], buf, slice) == 0;
    }
    char hex[65];
    ok = ctx ? ckpt_digest_finish(ctx, ok, d, ints, METRICS_N_COLS, hex) : 0;
    free(buf);
    if (ok) {
        hid_t at = H5Aopen(f, "checksum_sha256", H5P_DEFAULT);
        hid_t type = at >= 0 ? H5Aget_type(at) : -1;
        ok = type >= 0 && H5Tget_size(type) == sizeof hex && H5Awrite(at, type, hex) >= 0;
        if (type >= 0) H5Tclose(type);
        if (at >= 0) H5Aclose(at);
    }
    if (H5Fclose(f) < 0) ok = 0;
    return ok ? FSNN_OK : FAIL("%s: cannot sum its tensors or store the checksum", tmp);
}

int ckpt_commit(int rc, const char *dir, const ckpt_data *d) {
    char tmp[4096], cur[4096], prev[4096];
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    int paths = ckpt_paths(dir, tmp, cur, prev, sizeof tmp);
    if (paths) return rc ? rc : paths;
    if (rc == 0) rc = ckpt_sum_back(tmp, d);
    return ckpt_finish(rc, dir, tmp, cur, prev);
}

/* --- reading --- */

/* A checkpoint opened for reading: the whole file, verified, and HDF5's view
 * of those same bytes. */
typedef struct {
    const char *path;     /* borrowed, for messages */
    unsigned char *bytes; /* the file's content; owned */
    size_t size;
    hid_t h5; /* HDF5 file over `bytes` without a copy; -1 when closed */
} ckpt_file;

/* Reads the whole regular file `path` into a new buffer (*out, caller frees). */
static int ckpt_slurp(const char *path, unsigned char **out, size_t *size) {
    *out = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return errno == ENOENT ? FAIL("%s: no such file", path)
                               : FAIL("%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return FAIL("%s: not a regular file", path);
    }
    size_t n = (size_t)st.st_size, got = 0;
    unsigned char *buf = malloc(n ? n : 1);
    if (!buf) {
        close(fd);
        return FAIL("%s: out of memory for its %zu bytes", path, n);
    }
    int err = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            err = r < 0 ? errno : 0;
            break;
        }
        got += (size_t)r;
    }
    close(fd);
    if (got < n) {
        free(buf);
        return FAIL("%s: read stopped after %zu of %zu bytes: %s", path, got, n,
                    err ? strerror(err) : "the file shrank");
    }
    *out = buf;
    *size = n;
    return FSNN_OK;
}

static void ckpt_close(ckpt_file *cf) {
    if (cf->h5 >= 0) H5Fclose(cf->h5);
    cf->h5 = -1;
    free(cf->bytes);
    cf->bytes = NULL;
}

/* HDF5 reads the verified bytes in place: the core (in-memory) driver gets
 * them as its file image through callbacks that hand out ckpt_file's buffer
 * instead of copies. HDF5 asks for the image when the property list is set
 * or copied and when the file opens; the file is read-only, so a resize is
 * refused. The buffer outlives every list and the file (ckpt_close). */
static void *ckpt_image_malloc(size_t size, H5FD_file_image_op_t op, void *udata) {
    (void)op;
    const ckpt_file *cf = udata;
    return size == cf->size ? cf->bytes : NULL;
}

static void *ckpt_image_memcpy(void *dest, const void *src, size_t size, H5FD_file_image_op_t op,
                               void *udata) {
    (void)size;
    (void)op;
    const ckpt_file *cf = udata;
    return dest == src && dest == cf->bytes ? dest : NULL;
}

static void *ckpt_image_realloc(void *ptr, size_t size, H5FD_file_image_op_t op, void *udata) {
    (void)ptr;
    (void)size;
    (void)op;
    (void)udata;
    return NULL;
}

static herr_t ckpt_image_free(void *ptr, H5FD_file_image_op_t op, void *udata) {
    (void)ptr;
    (void)op;
    (void)udata;
    return 0;
}

static void *ckpt_image_udata_copy(void *udata) {
    return udata;
}

static herr_t ckpt_image_udata_free(void *udata) {
    (void)udata;
    return 0;
}

/* Reads and verifies `path`, then opens the verified image with HDF5: HDF5
 * never parses bytes the header's digest did not cover. */
static int ckpt_open(const char *path, ckpt_file *cf) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    *cf = (ckpt_file){path, NULL, 0, -1};
    CHECK(ckpt_slurp(path, &cf->bytes, &cf->size));
    int rc = ckpthead_check(path, cf->bytes, cf->size);
    if (rc == 0) {
        H5FD_file_image_callbacks_t cb = {ckpt_image_malloc,
                                          ckpt_image_memcpy,
                                          ckpt_image_realloc,
                                          ckpt_image_free,
                                          ckpt_image_udata_copy,
                                          ckpt_image_udata_free,
                                          cf};
        /* The core driver tells files apart by name: one per buffer. */
        char name[64];
        snprintf(name, sizeof name, "fsnn checkpoint image %p", (void *)cf->bytes);
        hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
        if (fapl >= 0 && H5Pset_fapl_core(fapl, 1 << 16, 0) >= 0 &&
            H5Pset_file_image_callbacks(fapl, &cb) >= 0 &&
            H5Pset_file_image(fapl, cf->bytes, cf->size) >= 0)
            cf->h5 = H5Fopen(name, H5F_ACC_RDONLY, fapl);
        if (fapl >= 0) H5Pclose(fapl);
        if (cf->h5 < 0) rc = FAIL("%s: header and digest are right, but HDF5 cannot open it", path);
    }
    if (rc) ckpt_close(cf);
    return rc;
}

/* Opens attribute `name` of / and its type after checking it holds one
 * value: HDF5 writes as many values as the attribute has into the buffer. */
static int ckpt_attr_open(const ckpt_file *cf, const char *name, hid_t *at, hid_t *type) {
    *at = *type = -1;
    if (H5Aexists(cf->h5, name) <= 0) return FAIL("%s: attribute '%s' is missing", cf->path, name);
    *at = H5Aopen(cf->h5, name, H5P_DEFAULT);
    hid_t space = *at < 0 ? -1 : H5Aget_space(*at);
    int scalar = space >= 0 && H5Sget_simple_extent_type(space) == H5S_SCALAR;
    if (space >= 0) H5Sclose(space);
    if (scalar) *type = H5Aget_type(*at);
    if (*type >= 0) return FSNN_OK;
    if (*at >= 0) H5Aclose(*at);
    return FAIL("%s: attribute '%s' is unreadable or not a single value", cf->path, name);
}

static int ckpt_get_i64(const ckpt_file *cf, const char *name, int64_t *v) {
    hid_t at, type;
    CHECK(ckpt_attr_open(cf, name, &at, &type));
    /* Only the type fsnn writes: nothing for HDF5 to convert. */
    herr_t rd = H5Tequal(type, H5T_STD_I64LE) > 0 ? H5Aread(at, H5T_NATIVE_INT64, v) : -1;
    H5Tclose(type);
    H5Aclose(at);
    if (rd < 0) return FAIL("%s: attribute '%s' is not a readable int64", cf->path, name);
    return FSNN_OK;
}

/* Reads string attribute `name` into a new buffer (*out, caller frees). */
static int ckpt_get_str(const ckpt_file *cf, const char *name, char **out) {
    *out = NULL;
    hid_t at, type;
    CHECK(ckpt_attr_open(cf, name, &at, &type));
    size_t size =
        H5Tget_class(type) == H5T_STRING && H5Tis_variable_str(type) == 0 ? H5Tget_size(type) : 0;
    int rc = FSNN_OK;
    if (size == 0 || size > cf->size) {
        rc = FAIL("%s: attribute '%s' is not a fixed-size string that fits in the file", cf->path,
                  name);
    } else {
        rc = XCALLOC(out, size + 1);
        if (rc == 0 && H5Aread(at, type, *out) < 0)
            rc = FAIL("%s: cannot read attribute '%s'", cf->path, name);
    }
    H5Tclose(type);
    H5Aclose(at);
    if (rc) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

/* Reads dataset group/name after checking that its type equals `ftype`, that
 * it has the given shape and that it is stored contiguously with exactly the
 * bytes that shape needs, as fsnn writes it (chunked or filtered storage
 * would send HDF5 down paths a checkpoint never needs). */
static int ckpt_get(const ckpt_file *cf, const char *group, const char *name, hid_t ftype,
                    hid_t mtype, void *out, int rank, const hsize_t *dims) {
    char full[128];
    snprintf(full, sizeof full, "/%s/%s", group, name);
    const char *path = cf->path;
    if (H5Lexists(cf->h5, group, H5P_DEFAULT) <= 0 || H5Lexists(cf->h5, full, H5P_DEFAULT) <= 0)
        return FAIL("%s: dataset '%s' is missing", path, full);
    hid_t ds = H5Dopen2(cf->h5, full, H5P_DEFAULT);
    if (ds < 0) return FAIL("%s: cannot open dataset '%s'", path, full);
    hid_t type = H5Dget_type(ds), space = H5Dget_space(ds), dcpl = H5Dget_create_plist(ds);
    int type_ok = type >= 0 && H5Tequal(type, ftype) > 0;
    H5D_layout_t layout = dcpl >= 0 ? H5Pget_layout(dcpl) : H5D_LAYOUT_ERROR;
    hsize_t hd[2] = {0, 0};
    int frank = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    if (frank >= 1 && frank <= 2) H5Sget_simple_extent_dims(space, hd, NULL);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
    unsigned long long need = (unsigned long long)dims[0] * (rank == 2 ? dims[1] : 1) *
                              (unsigned long long)H5Tget_size(ftype);
    int rc = FSNN_OK;
    if (!type_ok)
        rc = FAIL("%s: dataset '%s' has the wrong type (want little-endian IEEE float%d)", path,
                  full, (int)(8 * H5Tget_size(ftype)));
    else if (frank != rank || hd[0] != dims[0] || (rank == 2 && hd[1] != dims[1]))
        rc = FAIL("%s: dataset '%s' has shape [%llu x %llu] (rank %d); expected [%llu x %llu]",
                  path, full, (unsigned long long)hd[0], (unsigned long long)hd[1], frank,
                  (unsigned long long)dims[0], (unsigned long long)(rank == 2 ? dims[1] : 1));
    else if (layout != H5D_CONTIGUOUS)
        rc = FAIL("%s: dataset '%s' is not stored contiguously (fsnn writes it so)", path, full);
    else if ((unsigned long long)H5Dget_storage_size(ds) != need)
        rc = FAIL("%s: dataset '%s' stores %llu bytes; its shape needs %llu", path, full,
                  (unsigned long long)H5Dget_storage_size(ds), need);
    else if (H5Dread(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0)
        rc = FAIL("%s: cannot read dataset '%s' (file damaged?)", path, full);
    H5Dclose(ds);
    return rc;
}

static int ckpt_load(const ckpt_file *cf, ckpt_data *d) {
    const char *path = cf->path;
    char *format = NULL, *optimizer = NULL, *sum = NULL;
    int rc = ckpt_get_str(cf, "format", &format);
    if (rc == 0 && strcmp(format, "fsnn-checkpoint") != 0)
        rc = FAIL("%s: not an fsnn checkpoint (format '%s')", path, format);
    free(format);
    CHECK(rc);
    int64_t version = 0, ints[CK_N_INTS], want[CK_N_INTS];
    CHECK(ckpt_get_i64(cf, "format_version", &version));
    if (version < CKPT_VERSION_OLDEST || version > CKPT_VERSION)
        return FAIL("%s: format_version %lld; this fsnn reads versions %d to %d", path,
                    (long long)version, CKPT_VERSION_OLDEST, CKPT_VERSION);
    /* Version 2's history lacks spectral_norm_exact. */
    const int cols = version == 2 ? METRICS_N_COLS - 1 : METRICS_N_COLS;
    for (int i = 0; i < CK_N_INTS; i++)
        CHECK(ckpt_get_i64(cf, ckpt_int_names[i], &ints[i]));
    ckpt_ints(d, want);
    for (int i = CK_N_IN; i <= CK_N_PARAMS; i++)
        if (ints[i] != want[i])
            return FAIL("%s: %s is %lld; the configuration's model has %lld", path,
                        ckpt_int_names[i], (long long)ints[i], (long long)want[i]);
    for (int i = CK_EPOCH; i < CK_N_INTS; i++)
        if (ints[i] < 0 || ints[i] > ((int64_t)1 << 40))
            return FAIL("%s: %s is %lld, out of range", path, ckpt_int_names[i],
                        (long long)ints[i]);
    /* The history is allocated from the epoch count: no more rows than the
     * file could hold. */
    if ((unsigned long long)ints[CK_EPOCH] * METRICS_N_COLS * sizeof(double) > cf->size)
        return FAIL("%s: epoch is %lld, more rows of history than the file can hold", path,
                    (long long)ints[CK_EPOCH]);
    CHECK(ckpt_get_str(cf, "optimizer", &optimizer));
    const char *need = d->ts->opt->kind == OPTIM_ADAM ? "adam" : "sgd";
    rc = strcmp(optimizer, need) ? FAIL("%s: written with optimizer '%s'; the configuration "
                                        "says '%s'",
                                        path, optimizer, need)
                                 : FSNN_OK;
    free(optimizer);
    CHECK(rc);
    ckpt_tensor t[CKPT_MAX_TENSORS];
    int nt = ckpt_tensors(d->m, d->ts->opt, t);
    for (int i = 0; i < nt; i++)
        CHECK(ckpt_get(cf, t[i].group, t[i].name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, t[i].data,
                       t[i].rank, t[i].dims));
    int rows = (int)ints[CK_EPOCH];
    hsize_t hd[2] = {(hsize_t)rows, (hsize_t)cols}, pd[1] = {TRAINER_PARTIAL_N};
    CHECK(XCALLOC(&d->history, (size_t)(rows > 0 ? rows : 1) * METRICS_N_COLS));
    d->history_rows = rows;
    CHECK(ckpt_get(cf, "run", "history", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, d->history, 2, hd));
    CHECK(ckpt_get(cf, "run", "partial", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, d->partial, 1, pd));
    CHECK(ckpt_get_str(cf, "config", &d->config_text));
    trainer_state *ts = d->ts;
    ts->epoch = (int)ints[CK_EPOCH];
    ts->step = ints[CK_STEP];
    ts->iter = ints[CK_ITER];
    ts->opt->step = ints[CK_OPT_STEP];
    ts->bad_steps = ints[CK_BAD];
    ts->bad_run = ints[CK_BAD_RUN];
    d->world_size = (int)ints[CK_WORLD];
    CHECK(ckpt_get_str(cf, "checksum_sha256", &sum));
    char got[65];
    rc = ckpt_checksum(d, ints, cols, got);
    if (rc == 0 && strcmp(sum, got) != 0)
        rc = FAIL("%s: checksum mismatch (stored %.16s..., computed %.16s...): the file is "
                  "damaged",
                  path, sum, got);
    free(sum);
    if (rc == 0 && cols < METRICS_N_COLS) { /* widen the rows, last first, in place */
        const int gap = metrics_column("spectral_norm_exact");
        for (int r = rows - 1; r >= 0; r--) {
            double *to = d->history + (size_t)r * METRICS_N_COLS;
            const double *from = d->history + (size_t)r * cols;
            memmove(to + gap + 1, from + gap, sizeof(double) * (size_t)(cols - gap));
            memmove(to, from, sizeof(double) * (size_t)gap);
            to[gap] = NAN;
        }
    }
    return rc;
}

int ckpt_read(const char *path, ckpt_data *d) {
    ckpt_file cf;
    CHECK(ckpt_open(path, &cf));
    int rc = ckpt_load(&cf, d);
    ckpt_close(&cf);
    return rc;
}

void ckpt_data_free(ckpt_data *d) {
    free(d->history);
    free(d->config_text);
    d->history = NULL;
    d->config_text = NULL;
    d->history_rows = 0;
}

int ckpt_present(const char *dir) {
    char p[4096];
    if (fsutil_join(p, sizeof p, dir, CKPT_FILE) == 0 && fsutil_is_file(p)) return 1;
    status_clear();
    if (fsutil_join(p, sizeof p, dir, CKPT_PREV) == 0 && fsutil_is_file(p)) return 1;
    status_clear();
    return 0;
}

int ckpt_load_latest(const char *dir, ckpt_data *d, char *used, size_t size) {
    const char *names[2] = {CKPT_FILE, CKPT_PREV};
    char first_error[1024] = "";
    for (int i = 0; i < 2; i++) {
        CHECK(fsutil_join(used, size, dir, names[i]));
        if (!fsutil_is_file(used)) continue;
        ckpt_data_free(d);
        if (ckpt_read(used, d) == 0) {
            if (first_error[0])
                log_warn("skipped the latest checkpoint: %s; resuming from %s", first_error, used);
            return FSNN_OK;
        }
        if (!first_error[0]) snprintf(first_error, sizeof first_error, "%s", status_message());
        status_clear();
    }
    ckpt_data_free(d);
    if (first_error[0]) return FAIL("no usable checkpoint in %s: %s", dir, first_error);
    return FAIL("%s holds no checkpoint", dir);
}

int ckpt_config(const char *path, char **text, long *n_params) {
    ckpt_file cf;
    CHECK(ckpt_open(path, &cf));
    int64_t np = 0;
    *text = NULL;
    int rc = ckpt_get_i64(&cf, "n_params", &np);
    if (rc == 0) rc = ckpt_get_str(&cf, "config", text);
    size_t file_size = cf.size;
    ckpt_close(&cf);
    if (rc == 0 && (np < 1 || (unsigned long long)np * sizeof(float) > file_size))
        rc = FAIL("%s: attribute 'n_params' is %lld; the file of %zu bytes cannot hold them", path,
                  (long long)np, file_size);
    if (rc != 0) {
        free(*text);
        *text = NULL;
        return rc;
    }
    *n_params = (long)np;
    return FSNN_OK;
}

int ckpt_sizes(const char *path, int *n_in, int *n_hidden, int *n_out, cfg_optim *optimizer) {
    ckpt_file cf;
    CHECK(ckpt_open(path, &cf));
    int64_t v[3] = {0, 0, 0};
    const char *names[3] = {"n_in", "n_hidden", "n_out"};
    char *opt = NULL;
    int rc = FSNN_OK;
    for (int i = 0; rc == 0 && i < 3; i++)
        rc = ckpt_get_i64(&cf, names[i], &v[i]);
    if (rc == 0) rc = ckpt_get_str(&cf, "optimizer", &opt);
    size_t file_size = cf.size;
    ckpt_close(&cf);
    if (rc == 0 && strcmp(opt, "sgd") && strcmp(opt, "adam"))
        rc = FAIL("%s: unknown optimizer '%s'", path, opt);
    if (rc == 0) *optimizer = strcmp(opt, "adam") ? OPTIM_SGD : OPTIM_ADAM;
    free(opt);
    CHECK(rc);
    for (int i = 0; i < 3; i++)
        if (v[i] < 1 || v[i] > 1000000)
            return FAIL("%s: attribute '%s' is %lld, outside 1..1000000", path, names[i],
                        (long long)v[i]);
    /* The weight matrices [n x n_in], [n x n], [n_out x n] are stored as
     * float32 in the file: sizes that need more bytes than it has are false,
     * and creating their model would allocate far beyond the file's size. */
    unsigned long long weights =
        (unsigned long long)v[1] * (unsigned long long)(v[0] + v[1] + v[2]);
    if (weights * sizeof(float) > file_size)
        return FAIL("%s: sizes %lld-%lld-%lld need %llu bytes of weights; the file has %zu", path,
                    (long long)v[0], (long long)v[1], (long long)v[2],
                    weights * (unsigned long long)sizeof(float), file_size);
    *n_in = (int)v[0];
    *n_hidden = (int)v[1];
    *n_out = (int)v[2];
    return FSNN_OK;
}
