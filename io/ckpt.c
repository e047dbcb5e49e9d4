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

/* The 32 bytes of a SHA-256 digest as 64 lowercase hex digits and a NUL. */
static void ckpt_hex(const unsigned char *md, char hex[65]) {
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
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
    if (ok) ckpt_hex(md, hex);
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
    ckpt_hex(md, hex);
    return FSNN_OK;
}

/* --- the fsnn header in the HDF5 user block --- */

static const char ckpt_magic[] = "fsnn checkpoint\n";
#define CKPT_MAGIC_LEN (sizeof ckpt_magic - 1)
static const unsigned char ckpt_hdf5_signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

/* The one valid header for (version, length, digest): a file's header must
 * equal it byte for byte, NUL padding included. */
static void ckpt_header_make(char out[CKPT_HEADER_SIZE], unsigned long long version,
                             unsigned long long length, const char hex[65]) {
    memset(out, 0, CKPT_HEADER_SIZE);
    snprintf(out, CKPT_HEADER_SIZE, "%sformat_version %llu\nlength %llu\nsha256 %s\n", ckpt_magic,
             version, length, hex);
}

/* Parses "name <decimal>\n" at *p of NUL-terminated text; advances *p. */
static int ckpt_header_number(const char **p, const char *name, unsigned long long *v) {
    size_t n = strlen(name);
    if (strncmp(*p, name, n) != 0 || (*p)[n] != ' ') return 0;
    const char *q = *p + n + 1;
    unsigned long long x = 0;
    int digits = 0;
    for (; *q >= '0' && *q <= '9'; q++, digits++) {
        if (x > (~0ULL - 9) / 10) return 0;
        x = x * 10 + (unsigned long long)(*q - '0');
    }
    if (digits == 0 || *q != '\n') return 0;
    *v = x;
    *p = q + 1;
    return 1;
}

/* Parses "sha256 <64 lowercase hex digits>\n" at *p into hex. */
static int ckpt_header_digest(const char **p, char hex[65]) {
    if (strncmp(*p, "sha256 ", 7) != 0) return 0;
    const char *q = *p + 7;
    for (int i = 0; i < 64; i++)
        if (!((q[i] >= '0' && q[i] <= '9') || (q[i] >= 'a' && q[i] <= 'f'))) return 0;
    if (q[64] != '\n') return 0;
    memcpy(hex, q, 64);
    hex[64] = '\0';
    *p = q + 65;
    return 1;
}

/* SHA-256 of bytes[n] as hex. */
static int ckpt_sha256(const unsigned char *bytes, size_t n, char hex[65]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(bytes, n, md, &len, EVP_sha256(), NULL) != 1 || len != 32)
        return FAIL("SHA-256 failed (OpenSSL)");
    ckpt_hex(md, hex);
    return FSNN_OK;
}

/* Whether two digests in hex are equal. Every byte is looked at and no
 * libc comparison is called: libFuzzer's hooks on memcmp and strcmp would
 * otherwise hand the fuzzer the right digest of a mutated file, which then
 * reaches libhdf5 (that is fuzz_ckpt_sealed's job, not fuzz_ckpt_raw's). */
static int ckpt_digest_equal(const char a[65], const char b[65]) {
    unsigned diff = 0;
    for (int i = 0; i < 64; i++)
        diff |= (unsigned)(unsigned char)a[i] ^ (unsigned)(unsigned char)b[i];
    return diff == 0;
}

/* Verifies the header of the file image bytes[size]: magic, version, the
 * header's exact form, the length and the digest of what follows it. */
static int ckpt_header_check(const char *path, const unsigned char *bytes, size_t size) {
    if (size == 0) return FAIL("%s: not an fsnn checkpoint (empty file)", path);
    size_t head = size < CKPT_MAGIC_LEN ? size : CKPT_MAGIC_LEN;
    if (memcmp(bytes, ckpt_magic, head) != 0) {
        if (size >= sizeof ckpt_hdf5_signature &&
            !memcmp(bytes, ckpt_hdf5_signature, sizeof ckpt_hdf5_signature))
            return FAIL("%s: not an fsnn checkpoint: an HDF5 file without the fsnn header "
                        "(checkpoints of format version 1 had none; this fsnn reads version %d)",
                        path, CKPT_VERSION);
        return FAIL("%s: not an fsnn checkpoint (its first bytes are not the fsnn header)", path);
    }
    if (size < CKPT_HEADER_SIZE)
        return FAIL("%s: truncated: %zu bytes, less than the %d-byte header", path, size,
                    CKPT_HEADER_SIZE);
    char text[CKPT_HEADER_SIZE + 1];
    memcpy(text, bytes, CKPT_HEADER_SIZE);
    text[CKPT_HEADER_SIZE] = '\0';
    const char *p = text + CKPT_MAGIC_LEN;
    unsigned long long version = 0, length = 0;
    char hex[65], want[CKPT_HEADER_SIZE];
    if (!ckpt_header_number(&p, "format_version", &version))
        return FAIL("%s: damaged header (format_version line)", path);
    if (version < CKPT_VERSION_OLDEST || version > CKPT_VERSION)
        return FAIL("%s: checkpoint format version %llu; this fsnn reads versions %d to %d", path,
                    version, CKPT_VERSION_OLDEST, CKPT_VERSION);
    if (!ckpt_header_number(&p, "length", &length) || !ckpt_header_digest(&p, hex))
        return FAIL("%s: damaged header (length or sha256 line)", path);
    ckpt_header_make(want, version, length, hex);
    if (memcmp(want, bytes, CKPT_HEADER_SIZE) != 0)
        return FAIL("%s: damaged header (bytes after its last line)", path);
    if (length != size)
        return length > size
                   ? FAIL("%s: truncated: %zu bytes; the header says %llu", path, size, length)
                   : FAIL("%s: damaged: %zu bytes; the header says %llu", path, size, length);
    char got[65];
    CHECK(ckpt_sha256(bytes + CKPT_HEADER_SIZE, size - CKPT_HEADER_SIZE, got));
    if (!ckpt_digest_equal(got, hex))
        return FAIL("%s: damaged: the SHA-256 of the bytes after the header is %.16s..., the "
                    "header says %.16s...",
                    path, got, hex);
    return FSNN_OK;
}

/* Fills in the header of the open file fd (see ckpt_seal). */
static int ckpt_seal_fd(int fd, const char *path) {
    struct stat st;
    if (fstat(fd, &st) != 0) return FAIL("%s: cannot stat: %s", path, strerror(errno));
    unsigned char sig[sizeof ckpt_hdf5_signature];
    if (st.st_size < CKPT_HEADER_SIZE + (off_t)sizeof sig ||
        pread(fd, sig, sizeof sig, CKPT_HEADER_SIZE) != (ssize_t)sizeof sig ||
        memcmp(sig, ckpt_hdf5_signature, sizeof sig) != 0)
        return FAIL("%s: no HDF5 signature after a %d-byte user block; not sealing it", path,
                    CKPT_HEADER_SIZE);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
    unsigned char buf[1 << 16];
    off_t off = CKPT_HEADER_SIZE;
    while (ok && off < st.st_size) {
        size_t want =
            (size_t)(st.st_size - off) < sizeof buf ? (size_t)(st.st_size - off) : sizeof buf;
        ssize_t r = pread(fd, buf, want, off);
        if (r < 0 && errno == EINTR) continue;
        ok = r > 0 && EVP_DigestUpdate(ctx, buf, (size_t)r) == 1;
        off += r > 0 ? r : 0;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    if (ok) ok = EVP_DigestFinal_ex(ctx, md, &len) == 1 && len == 32;
    EVP_MD_CTX_free(ctx);
    if (!ok) return FAIL("%s: cannot read it back to compute its SHA-256", path);
    char hex[65], header[CKPT_HEADER_SIZE];
    ckpt_hex(md, hex);
    ckpt_header_make(header, CKPT_VERSION, (unsigned long long)st.st_size, hex);
    if (pwrite(fd, header, sizeof header, 0) != (ssize_t)sizeof header)
        return FAIL("%s: cannot write the header: %s", path, strerror(errno));
    return FSNN_OK;
}

int ckpt_seal(const char *path) {
    int fd = open(path, O_RDWR);
    if (fd < 0) return FAIL("%s: cannot open to seal: %s", path, strerror(errno));
    int rc = ckpt_seal_fd(fd, path);
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

/* The index of tensor `name` of /params among sh's distributed ones, or -1. */
static int ckpt_shard_index(const ckpt_shard *sh, const char *group, const char *name) {
    if (!sh || strcmp(group, "params") != 0) return -1;
    for (int k = 0; k < 2; k++)
        if (!strcmp(sh->name[k], name)) return k;
    return -1;
}

/* A dataset whose storage exists before anything is written (the ranks of a
 * sharded write fill it later through MPI-IO). */
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

/* The tensors of a sharded write that rank 0 writes itself: a distributed
 * tensor's dataset is only created; of /optim/m1 and m2 the parts of the
 * other tensors are written. */
static int ckpt_put_sharded(hid_t f, const ckpt_data *d, const ckpt_tensor *t, const ckpt_shard *sh,
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
            if (ckpt_shard_index(sh, "params", ti->name) >= 0) continue;
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

/* The placeholder of checksum_sha256 in a sharded write until rank 0 has
 * read the tensors back (the same length as the digest). */
static const char ckpt_sum_pending[] =
    "0000000000000000000000000000000000000000000000000000000000000000";

static int ckpt_fill(hid_t f, const ckpt_data *d, const char *path, const ckpt_shard *sh) {
    int64_t ints[CK_N_INTS];
    ckpt_ints(d, ints);
    char sum[65];
    if (sh)
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
        if (sh &&
            (ckpt_shard_index(sh, t[i].group, t[i].name) >= 0 || !strcmp(t[i].group, "optim"))) {
            CHECK(ckpt_put_sharded(f, d, &t[i], sh, path));
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
    return fsutil_join(tmp, size, dir, CKPT_FILE ".tmp");
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
    if (rc == 0) rc = ckpt_seal_fd(fd, tmp);
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

/* --- writing in shards --- */

/* Of the blocks nb wide dealt round-robin over P processes from 0, along an
 * extent of N: the full blocks of process p (*full) and the length of its
 * last, partial one (*rem, 0 when it has none). */
static void ckpt_blocks(int N, int nb, int p, int P, hsize_t *full, hsize_t *rem) {
    const int whole = N / nb;
    *full = whole > p ? (hsize_t)((whole - p + P - 1) / P) : 0;
    *rem = (N % nb != 0 && whole % P == p) ? (hsize_t)(N % nb) : 0;
}

/* Adds to sel (1-D when dim < 0, else dimension dim of 2) the indices of
 * process p along an extent N from `base`: the full blocks as one regular
 * hyperslab, the partial one as another. other_* give the fixed range of the
 * other dimension for 2-D. Returns the count of indices along the extent. */
static hsize_t ckpt_select_axis(hid_t sel, int *first, hsize_t base, int N, int nb, int p, int P,
                                int dim, hsize_t other_start, hsize_t other_count) {
    hsize_t full, rem;
    ckpt_blocks(N, nb, p, P, &full, &rem);
    const int r = dim < 0 ? 1 : 2, a = dim < 0 ? 0 : dim;
    hsize_t start[2], stride[2], count[2], block[2];
    if (r == 2) {
        start[1 - a] = other_start, stride[1 - a] = 1, count[1 - a] = 1, block[1 - a] = other_count;
    }
    if (full > 0) {
        start[a] = base + (hsize_t)p * nb, stride[a] = (hsize_t)nb * P, count[a] = full,
        block[a] = (hsize_t)nb;
        H5Sselect_hyperslab(sel, *first ? H5S_SELECT_SET : H5S_SELECT_OR, start, stride, count,
                            block);
        *first = 0;
    }
    if (rem > 0) {
        start[a] = base + (hsize_t)(N / nb) * nb, stride[a] = 1, count[a] = 1, block[a] = rem;
        H5Sselect_hyperslab(sel, *first ? H5S_SELECT_SET : H5S_SELECT_OR, start, stride, count,
                            block);
        *first = 0;
    }
    return full * nb + rem;
}

/* Writes this rank's blocks of tensor k of sh into the open 2-D dataset ds
 * (collective transfer). A tensor [rows x cols]: its rows are the local
 * columns (process column, npcol), its columns the local rows. */
static int ckpt_write_blocks(hid_t ds, const ckpt_shard *sh, int k, const float *local,
                             hid_t dxpl) {
    hid_t fs = H5Dget_space(ds);
    if (fs < 0) return -1;
    H5Sselect_none(fs);
    hsize_t rfull, rrem;
    ckpt_blocks(sh->rows[k], sh->nb, sh->mycol, sh->npcol, &rfull, &rrem);
    const hsize_t nrows = rfull * sh->nb + rrem;
    int first = 1;
    hsize_t ncols = 0;
    /* Each range of rows the rank owns, crossed with all its columns. */
    if (rfull > 0) {
        for (hsize_t b = 0; b < rfull; b++) {
            const hsize_t r0 = ((hsize_t)sh->mycol + b * sh->npcol) * sh->nb;
            ncols = ckpt_select_axis(fs, &first, 0, sh->cols[k], sh->nb, sh->myrow, sh->nprow, 1,
                                     r0, (hsize_t)sh->nb);
        }
    }
    if (rrem > 0)
        ncols = ckpt_select_axis(fs, &first, 0, sh->cols[k], sh->nb, sh->myrow, sh->nprow, 1,
                                 (hsize_t)(sh->rows[k] / sh->nb) * sh->nb, rrem);
    herr_t wr;
    if (first || ncols == 0) { /* nothing here; the transfer is still collective */
        H5Sselect_none(fs);
        hsize_t one = 1;
        hid_t ms = H5Screate_simple(1, &one, NULL);
        H5Sselect_none(ms);
        float dummy = 0.0f;
        wr = H5Dwrite(ds, H5T_NATIVE_FLOAT, ms, fs, dxpl, &dummy);
        H5Sclose(ms);
    } else {
        /* Local memory [lcols x lld]: the first lrows of each row. */
        hsize_t md[2] = {(hsize_t)sh->lcols[k], (hsize_t)sh->lld[k]};
        hsize_t ms0[2] = {0, 0}, mc[2] = {nrows, ncols};
        hid_t ms = H5Screate_simple(2, md, NULL);
        H5Sselect_hyperslab(ms, H5S_SELECT_SET, ms0, NULL, mc, NULL);
        wr = H5Dwrite(ds, H5T_NATIVE_FLOAT, ms, fs, dxpl, local);
        H5Sclose(ms);
    }
    H5Sclose(fs);
    return wr < 0 ? -1 : 0;
}

/* This rank's parts of tensor k in the flat optimiser array ds: row by row
 * (independent transfers; a row's columns are one selection). */
static int ckpt_write_flat(hid_t ds, const ckpt_shard *sh, int k, const float *local) {
    hid_t fs = H5Dget_space(ds);
    if (fs < 0) return -1;
    int bad = 0;
    hsize_t lr = (hsize_t)sh->lrows[k];
    hid_t ms = H5Screate_simple(1, lr ? &lr : (hsize_t[]){1}, NULL);
    for (int jl = 0; !bad && jl < sh->lcols[k] && lr > 0; jl++) {
        const long j = (long)(jl / sh->nb * sh->npcol + sh->mycol) * sh->nb + jl % sh->nb;
        int first = 1;
        ckpt_select_axis(fs, &first, sh->m_off[k] + (hsize_t)j * sh->cols[k], sh->cols[k], sh->nb,
                         sh->myrow, sh->nprow, -1, 0, 0);
        bad =
            H5Dwrite(ds, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, local + (long)jl * sh->lld[k]) < 0;
    }
    H5Sclose(ms);
    H5Sclose(fs);
    return bad ? -1 : 0;
}

/* Phase 2: every rank writes its blocks through MPI-IO. */
static int ckpt_write_shards(const char *tmp, const ckpt_shard *sh) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    hid_t f = fapl >= 0 && H5Pset_fapl_mpio(fapl, sh->comm, MPI_INFO_NULL) >= 0
                  ? H5Fopen(tmp, H5F_ACC_RDWR, fapl)
                  : -1;
    if (fapl >= 0) H5Pclose(fapl);
    if (f < 0) return FAIL("%s: cannot open for the ranks' blocks (MPI-IO)", tmp);
    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
    int bad = dxpl < 0 || H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE) < 0;
    char full[128];
    for (int k = 0; !bad && k < 2; k++) {
        snprintf(full, sizeof full, "/params/%s", sh->name[k]);
        hid_t ds = H5Dopen2(f, full, H5P_DEFAULT);
        bad = ds < 0 || ckpt_write_blocks(ds, sh, k, sh->params[k], dxpl) != 0;
        if (ds >= 0) H5Dclose(ds);
    }
    const char *opt[2] = {"/optim/m1", "/optim/m2"};
    for (int o = 0; !bad && o < 2; o++) {
        const float *const *src = o == 0 ? sh->m1 : sh->m2;
        if (!src[0]) continue;
        hid_t ds = H5Dopen2(f, opt[o], H5P_DEFAULT);
        for (int k = 0; !bad && k < 2; k++)
            bad = ds < 0 || ckpt_write_flat(ds, sh, k, src[k]) != 0;
        if (ds >= 0) H5Dclose(ds);
    }
    if (dxpl >= 0) H5Pclose(dxpl);
    if (H5Fclose(f) < 0) bad = 1;
    return bad ? FAIL("%s: writing this rank's blocks failed (MPI-IO)", tmp) : FSNN_OK;
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

/* Phase 3 (rank 0): checksum_sha256 over the tensors read back from the
 * file in slices, in ckpt_checksum's order, then the other parts. */
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

/* rc of rank 0 on every rank of comm (failures elsewhere count as well). */
static int ckpt_agree(MPI_Comm comm, int rc, const char *tmp) {
    int bad = rc != 0, any = 0;
    if (MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, comm) != MPI_SUCCESS)
        return FAIL("%s: the writing ranks cannot agree", tmp);
    if (rc) return rc;
    return any ? FAIL("%s: another writing rank failed", tmp) : FSNN_OK;
}

int ckpt_write_sharded(const char *dir, const ckpt_data *d, const ckpt_shard *sh) {
    char tmp[4096], cur[4096], prev[4096];
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    CHECK(ckpt_paths(dir, tmp, cur, prev, sizeof tmp));
    int me = 0;
    MPI_Comm_rank(sh->comm, &me);
    /* 1. Rank 0: the file with everything but the ranks' blocks. */
    int rc = FSNN_OK;
    if (me == 0) {
        hid_t f = ckpt_create(tmp);
        rc = f < 0 ? FAIL("%s: cannot create HDF5 file", tmp) : ckpt_fill(f, d, tmp, sh);
        if (f >= 0 && H5Fclose(f) < 0 && rc == 0) rc = FAIL("%s: close failed", tmp);
    }
    rc = ckpt_agree(sh->comm, rc, tmp);
    /* 2. Every rank: its blocks, collectively. */
    if (rc == 0) rc = ckpt_agree(sh->comm, ckpt_write_shards(tmp, sh), tmp);
    /* 3. Rank 0: the checksum over what is in the file, header, rename. */
    if (me == 0) {
        if (rc == 0) rc = ckpt_sum_back(tmp, d);
        rc = ckpt_finish(rc, dir, tmp, cur, prev);
    }
    return ckpt_agree(sh->comm, rc, tmp);
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
    int rc = ckpt_header_check(path, cf->bytes, cf->size);
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
