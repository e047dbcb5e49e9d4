/* ckpt: HDF5 checkpoint writer and validating reader. */
#include "ckpt.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    "iterations per sample; firing_rate: spikes per neuron per step; spectral_norm: 1; "
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
    for (int i = 0; i < MODEL_N_TENSORS; i++) {
        const model_tensor_info *ti = &m->info[i];
        t[k++] = (ckpt_tensor){"params",
                               ti->name,
                               m->params + ti->offset,
                               ti->rank,
                               {(hsize_t)ti->dims[0], (hsize_t)ti->dims[1]}};
    }
    const hsize_t n = (hsize_t)m->n, np = (hsize_t)m->n_params;
    t[k++] = (ckpt_tensor){"state", "bn_mean", m->bn_mean, 1, {n, 1}};
    t[k++] = (ckpt_tensor){"state", "bn_var", m->bn_var, 1, {n, 1}};
    t[k++] = (ckpt_tensor){"state", "sn_u", m->sn_u, 1, {n, 1}};
    t[k++] = (ckpt_tensor){"state", "sn_v", m->sn_v, 1, {n, 1}};
    t[k++] = (ckpt_tensor){"state", "sigma", &m->sigma, 1, {1, 1}};
    t[k++] = (ckpt_tensor){"optim", "m1", opt->m1, 1, {np, 1}};
    if (opt->m2) t[k++] = (ckpt_tensor){"optim", "m2", opt->m2, 1, {np, 1}};
    return k;
}

#define CKPT_MAX_TENSORS (MODEL_N_TENSORS + 7)

static void ckpt_ints(const ckpt_data *d, int64_t *v) {
    const fsnn_model *m = d->m;
    const trainer_state *ts = d->ts;
    const int64_t x[CK_N_INTS] = {m->n_in,       m->n,        m->n_out,     (int64_t)m->n_params,
                                  ts->epoch,     ts->step,    ts->iter,     ts->opt->step,
                                  ts->bad_steps, ts->bad_run, d->world_size};
    memcpy(v, x, sizeof x);
}

/* SHA-256 over tensors, history, partial statistics and counters. */
static int ckpt_checksum(const ckpt_data *d, const int64_t *ints, char hex[65]) {
    ckpt_tensor t[CKPT_MAX_TENSORS];
    int nt = ckpt_tensors(d->m, d->ts->opt, t);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
    for (int i = 0; ok && i < nt; i++)
        ok = EVP_DigestUpdate(ctx, t[i].data, sizeof(float) * t[i].dims[0] * t[i].dims[1]) == 1;
    if (ok && d->history_rows > 0)
        ok = EVP_DigestUpdate(ctx, d->history,
                              sizeof(double) * (size_t)d->history_rows * METRICS_N_COLS) == 1;
    if (ok) ok = EVP_DigestUpdate(ctx, d->partial, sizeof d->partial) == 1;
    if (ok) ok = EVP_DigestUpdate(ctx, ints, sizeof(int64_t) * CK_N_INTS) == 1;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    if (ok) ok = EVP_DigestFinal_ex(ctx, md, &len) == 1 && len == 32;
    EVP_MD_CTX_free(ctx);
    if (!ok) return FAIL("SHA-256 failed (OpenSSL)");
    for (unsigned i = 0; i < len; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return FSNN_OK;
}

int ckpt_weights_sha256(const fsnn_model *m, char hex[65]) {
    /* Every platform fsnn builds on stores float32 little-endian, so the
     * array's bytes are the canonical layout. */
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(m->params, sizeof(float) * m->n_params, md, &len, EVP_sha256(), NULL) != 1 ||
        len != 32)
        return FAIL("SHA-256 of the weights failed (OpenSSL)");
    for (unsigned i = 0; i < len; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return FSNN_OK;
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

static int ckpt_fill(hid_t f, const ckpt_data *d, const char *path) {
    int64_t ints[CK_N_INTS];
    ckpt_ints(d, ints);
    char sum[65];
    CHECK(ckpt_checksum(d, ints, sum));
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
    for (int i = 0; i < nt; i++)
        CHECK(ckpt_put(f, t[i].group, t[i].name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, t[i].data,
                       t[i].rank, t[i].dims, path));
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

int ckpt_write(const char *dir, const ckpt_data *d) {
    char tmp[4096], cur[4096], prev[4096];
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* our messages replace HDF5's stack dumps */
    CHECK(fsutil_join(cur, sizeof cur, dir, CKPT_FILE));
    CHECK(fsutil_join(prev, sizeof prev, dir, CKPT_PREV));
    CHECK(fsutil_join(tmp, sizeof tmp, dir, CKPT_FILE ".tmp"));
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) return FAIL("%s: cannot create HDF5 file", tmp);
    int rc = ckpt_fill(f, d, tmp);
    if (H5Fflush(f, H5F_SCOPE_GLOBAL) < 0 && rc == 0) rc = FAIL("%s: flush failed", tmp);
    if (H5Fclose(f) < 0 && rc == 0) rc = FAIL("%s: close failed", tmp);
    if (rc) {
        unlink(tmp);
        return rc;
    }
    /* HDF5 does not fsync on close: the bytes must be on disk before the
     * rename makes them current. */
    int fd = open(tmp, O_RDONLY);
    if (fd < 0 || fsync(fd) != 0) {
        if (fd >= 0) close(fd);
        return FAIL("%s: fsync failed: %s", tmp, strerror(errno));
    }
    close(fd);
    if (fsutil_is_file(cur) && rename(cur, prev) != 0)
        return FAIL("%s: cannot keep as %s: %s", cur, prev, strerror(errno));
    if (rename(tmp, cur) != 0) return FAIL("%s: rename failed: %s", cur, strerror(errno));
    return fsutil_sync_dir(dir);
}

/* --- reading --- */

static int ckpt_open(const char *path, hid_t *f) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if (!fsutil_is_file(path)) return FAIL("%s: no such file", path);
    if (H5Fis_hdf5(path) <= 0) return FAIL("%s: not an HDF5 file (or its header is damaged)", path);
    *f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (*f < 0) return FAIL("%s: cannot open as HDF5 (truncated or damaged)", path);
    return FSNN_OK;
}

static int ckpt_get_i64(hid_t f, const char *name, int64_t *v, const char *path) {
    if (H5Aexists(f, name) <= 0) return FAIL("%s: attribute '%s' is missing", path, name);
    hid_t at = H5Aopen(f, name, H5P_DEFAULT);
    hid_t type = at < 0 ? -1 : H5Aget_type(at);
    int ok = type >= 0 && H5Tget_class(type) == H5T_INTEGER;
    herr_t rd = ok ? H5Aread(at, H5T_NATIVE_INT64, v) : -1;
    if (type >= 0) H5Tclose(type);
    if (at >= 0) H5Aclose(at);
    if (rd < 0) return FAIL("%s: attribute '%s' is not a readable integer", path, name);
    return FSNN_OK;
}

/* Reads string attribute `name` into a new buffer (*out, caller frees). */
static int ckpt_get_str(hid_t f, const char *name, char **out, const char *path) {
    *out = NULL;
    if (H5Aexists(f, name) <= 0) return FAIL("%s: attribute '%s' is missing", path, name);
    hid_t at = H5Aopen(f, name, H5P_DEFAULT);
    hid_t type = at < 0 ? -1 : H5Aget_type(at);
    size_t size = type >= 0 && H5Tget_class(type) == H5T_STRING && !H5Tis_variable_str(type)
                      ? H5Tget_size(type)
                      : 0;
    int rc = FSNN_OK;
    if (size == 0 || size > (1u << 24)) {
        rc = FAIL("%s: attribute '%s' is not a fixed-size string", path, name);
    } else {
        rc = XCALLOC(out, size + 1);
        if (rc == 0 && H5Aread(at, type, *out) < 0)
            rc = FAIL("%s: cannot read attribute '%s'", path, name);
    }
    if (type >= 0) H5Tclose(type);
    if (at >= 0) H5Aclose(at);
    if (rc) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

/* Reads dataset group/name after checking it is `want_class` of `size` bytes
 * per element with the given shape. */
static int ckpt_get(hid_t f, const char *group, const char *name, H5T_class_t want_class,
                    size_t size, hid_t mtype, void *out, int rank, const hsize_t *dims,
                    const char *path) {
    char full[128];
    snprintf(full, sizeof full, "/%s/%s", group, name);
    if (H5Lexists(f, group, H5P_DEFAULT) <= 0 || H5Lexists(f, full, H5P_DEFAULT) <= 0)
        return FAIL("%s: dataset '%s' is missing", path, full);
    hid_t ds = H5Dopen2(f, full, H5P_DEFAULT);
    if (ds < 0) return FAIL("%s: cannot open dataset '%s'", path, full);
    hid_t type = H5Dget_type(ds), space = H5Dget_space(ds);
    int type_ok = type >= 0 && H5Tget_class(type) == want_class && H5Tget_size(type) == size;
    hsize_t hd[2] = {0, 0};
    int frank = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    if (frank >= 1 && frank <= 2) H5Sget_simple_extent_dims(space, hd, NULL);
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
    int rc = FSNN_OK;
    if (!type_ok)
        rc = FAIL("%s: dataset '%s' has the wrong type (want %s of %zu bytes)", path, full,
                  want_class == H5T_FLOAT ? "float" : "other", size);
    else if (frank != rank || hd[0] != dims[0] || (rank == 2 && hd[1] != dims[1]))
        rc = FAIL("%s: dataset '%s' has shape [%llu x %llu] (rank %d); expected [%llu x %llu]",
                  path, full, (unsigned long long)hd[0], (unsigned long long)hd[1], frank,
                  (unsigned long long)dims[0], (unsigned long long)(rank == 2 ? dims[1] : 1));
    else if (H5Dread(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0)
        rc = FAIL("%s: cannot read dataset '%s' (file damaged?)", path, full);
    H5Dclose(ds);
    return rc;
}

static int ckpt_load(hid_t f, ckpt_data *d, const char *path) {
    char *format = NULL, *optimizer = NULL, *sum = NULL;
    int rc = ckpt_get_str(f, "format", &format, path);
    if (rc == 0 && strcmp(format, "fsnn-checkpoint") != 0)
        rc = FAIL("%s: not an fsnn checkpoint (format '%s')", path, format);
    free(format);
    CHECK(rc);
    int64_t version = 0, ints[CK_N_INTS], want[CK_N_INTS];
    CHECK(ckpt_get_i64(f, "format_version", &version, path));
    if (version != CKPT_VERSION)
        return FAIL("%s: format_version %lld; this fsnn reads %d", path, (long long)version,
                    CKPT_VERSION);
    for (int i = 0; i < CK_N_INTS; i++)
        CHECK(ckpt_get_i64(f, ckpt_int_names[i], &ints[i], path));
    ckpt_ints(d, want);
    for (int i = CK_N_IN; i <= CK_N_PARAMS; i++)
        if (ints[i] != want[i])
            return FAIL("%s: %s is %lld; the configuration's model has %lld", path,
                        ckpt_int_names[i], (long long)ints[i], (long long)want[i]);
    for (int i = CK_EPOCH; i < CK_N_INTS; i++)
        if (ints[i] < 0 || ints[i] > ((int64_t)1 << 40))
            return FAIL("%s: %s is %lld, out of range", path, ckpt_int_names[i],
                        (long long)ints[i]);
    CHECK(ckpt_get_str(f, "optimizer", &optimizer, path));
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
        CHECK(ckpt_get(f, t[i].group, t[i].name, H5T_FLOAT, 4, H5T_NATIVE_FLOAT, t[i].data,
                       t[i].rank, t[i].dims, path));
    int rows = (int)ints[CK_EPOCH];
    hsize_t hd[2] = {(hsize_t)rows, METRICS_N_COLS}, pd[1] = {TRAINER_PARTIAL_N};
    CHECK(XCALLOC(&d->history, (size_t)(rows > 0 ? rows : 1) * METRICS_N_COLS));
    d->history_rows = rows;
    CHECK(ckpt_get(f, "run", "history", H5T_FLOAT, 8, H5T_NATIVE_DOUBLE, d->history, 2, hd, path));
    CHECK(ckpt_get(f, "run", "partial", H5T_FLOAT, 8, H5T_NATIVE_DOUBLE, d->partial, 1, pd, path));
    CHECK(ckpt_get_str(f, "config", &d->config_text, path));
    trainer_state *ts = d->ts;
    ts->epoch = (int)ints[CK_EPOCH];
    ts->step = ints[CK_STEP];
    ts->iter = ints[CK_ITER];
    ts->opt->step = ints[CK_OPT_STEP];
    ts->bad_steps = ints[CK_BAD];
    ts->bad_run = ints[CK_BAD_RUN];
    d->world_size = (int)ints[CK_WORLD];
    CHECK(ckpt_get_str(f, "checksum_sha256", &sum, path));
    char got[65];
    rc = ckpt_checksum(d, ints, got);
    if (rc == 0 && strcmp(sum, got) != 0)
        rc = FAIL("%s: checksum mismatch (stored %.16s..., computed %.16s...): the file is "
                  "damaged",
                  path, sum, got);
    free(sum);
    return rc;
}

int ckpt_read(const char *path, ckpt_data *d) {
    hid_t f;
    CHECK(ckpt_open(path, &f));
    int rc = ckpt_load(f, d, path);
    H5Fclose(f);
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

int ckpt_sizes(const char *path, int *n_in, int *n_hidden, int *n_out, cfg_optim *optimizer) {
    hid_t f;
    CHECK(ckpt_open(path, &f));
    int64_t v[3] = {0, 0, 0};
    const char *names[3] = {"n_in", "n_hidden", "n_out"};
    char *opt = NULL;
    int rc = FSNN_OK;
    for (int i = 0; rc == 0 && i < 3; i++)
        rc = ckpt_get_i64(f, names[i], &v[i], path);
    if (rc == 0) rc = ckpt_get_str(f, "optimizer", &opt, path);
    H5Fclose(f);
    if (rc == 0 && strcmp(opt, "sgd") && strcmp(opt, "adam"))
        rc = FAIL("%s: unknown optimizer '%s'", path, opt);
    if (rc == 0) *optimizer = strcmp(opt, "adam") ? OPTIM_SGD : OPTIM_ADAM;
    free(opt);
    CHECK(rc);
    for (int i = 0; i < 3; i++)
        if (v[i] < 1 || v[i] > 1000000)
            return FAIL("%s: attribute '%s' is %lld, outside 1..1000000", path, names[i],
                        (long long)v[i]);
    *n_in = (int)v[0];
    *n_hidden = (int)v[1];
    *n_out = (int)v[2];
    return FSNN_OK;
}
