/* ckpt: a small checkpoint written and read back exactly; then damaged and
 * foreign files, each refused with a message naming the file and what is
 * wrong: the header checks (truncated, appended to, wrong magic, version,
 * digest or padding, empty, a foreign HDF5 file with or without a user
 * block) and, on files altered with the HDF5 API and sealed again with
 * ckpt_seal so that they pass the header, the attribute and dataset checks
 * (an array where one value belongs, wrong type, chunked storage, sizes or
 * an epoch count the file cannot hold, a wrong in-file checksum). Also the
 * fall back to checkpoint.prev.h5, and that no HDF5 object stays open. */
#include <hdf5.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "ckpt.h"
#include "config.h"
#include "status.h"
#include "testutil.h"

static char tmp_dir[] = "/tmp/fsnn_test_ckpt_XXXXXX";

enum { N_IN = 7, N_HIDDEN = 5, N_OUT = 3, ROWS = 2 };

/* A model, optimiser and run state to write or to read into. */
typedef struct {
    fsnn_cfg cfg;
    fsnn_model *m;
    trainer_state ts;
    ckpt_data d;
} fixture;

static void fixture_create(fixture *fx, cfg_optim optimizer, int n_hidden) {
    memset(fx, 0, sizeof *fx);
    config_defaults(&fx->cfg);
    fx->cfg.model_hidden = n_hidden;
    fx->cfg.train_optimizer = optimizer;
    EXPECT_OK(model_create(&fx->m, &fx->cfg, 1, 1, N_IN, N_OUT));
    EXPECT_OK(optim_create(&fx->ts.opt, &fx->cfg, fx->m->n_params));
    fx->d.m = fx->m;
    fx->d.ts = &fx->ts;
}

/* Fills every saved value with a distinct number. */
static void fixture_fill(fixture *fx) {
    fsnn_model *m = fx->m;
    for (size_t i = 0; i < m->n_params; i++) {
        m->params[i] = 0.25f * (float)i - 3.0f;
        fx->ts.opt->m1[i] = 1.0f / (float)(i + 1);
        if (fx->ts.opt->m2) fx->ts.opt->m2[i] = (float)i * (float)i;
    }
    for (int i = 0; i < m->n; i++) {
        m->bn_mean[i] = (float)i;
        m->bn_var[i] = (float)i + 0.5f;
        m->sn_u[i] = -(float)i;
        m->sn_v[i] = 2.0f * (float)i;
    }
    m->sigma = 0.75f;
    fx->ts.epoch = ROWS;
    fx->ts.step = 3;
    fx->ts.iter = 17;
    fx->ts.bad_steps = 1;
    fx->ts.opt->step = 16;
    static double history[ROWS * METRICS_N_COLS];
    for (int i = 0; i < ROWS * METRICS_N_COLS; i++)
        history[i] = 0.5 * i;
    fx->d.history = history;
    fx->d.history_rows = ROWS;
    for (int i = 0; i < TRAINER_PARTIAL_N; i++)
        fx->d.partial[i] = 10.0 + i;
    fx->d.config_text = "[model]\nnet = 5 (F5)\n";
    fx->d.world_size = 2;
}

static void fixture_destroy(fixture *fx) {
    optim_destroy(&fx->ts.opt);
    model_destroy(&fx->m);
}

static char *path_of(const char *name) {
    static char p[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", tmp_dir, name);
    return p[k];
}

/* The whole content of `path` (*size bytes; caller frees). */
static unsigned char *slurp(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    struct stat st;
    unsigned char *b = NULL;
    *size = 0;
    if (f && stat(path, &st) == 0 && (b = malloc((size_t)st.st_size + 1)) != NULL)
        *size = fread(b, 1, (size_t)st.st_size, f);
    if (f) fclose(f);
    return b;
}

static void spit(const char *path, const void *bytes, size_t size) {
    FILE *f = fopen(path, "wb");
    EXPECT(f && fwrite(bytes, 1, size, f) == size, "writing %s", path);
    if (f) fclose(f);
}

static int open_objects(void) {
    return (int)H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
}

/* ckpt_read of `path` into a fresh fixture of the written shape. */
static int read_into_fresh(const char *path) {
    fixture fx;
    fixture_create(&fx, OPTIM_ADAM, N_HIDDEN);
    int rc = ckpt_read(path, &fx.d);
    ckpt_data_free(&fx.d);
    fixture_destroy(&fx);
    return rc;
}

static void test_roundtrip(const char *good) {
    fixture w, r;
    fixture_create(&w, OPTIM_ADAM, N_HIDDEN);
    fixture_fill(&w);
    EXPECT_OK(ckpt_write(tmp_dir, &w.d));
    EXPECT(access(path_of(CKPT_FILE ".tmp"), F_OK) != 0, "no temporary file left");
    int n_in = 0, n = 0, n_out = 0;
    cfg_optim opt = OPTIM_SGD;
    EXPECT_OK(ckpt_sizes(path_of(CKPT_FILE), &n_in, &n, &n_out, &opt));
    EXPECT(n_in == N_IN && n == N_HIDDEN && n_out == N_OUT && opt == OPTIM_ADAM,
           "sizes %d-%d-%d optimizer %d", n_in, n, n_out, (int)opt);
    fixture_create(&r, OPTIM_ADAM, N_HIDDEN);
    EXPECT_OK(ckpt_read(path_of(CKPT_FILE), &r.d));
    const fsnn_model *a = w.m, *b = r.m;
    EXPECT(!memcmp(a->params, b->params, sizeof(float) * a->n_params), "params read back");
    EXPECT(!memcmp(w.ts.opt->m1, r.ts.opt->m1, sizeof(float) * a->n_params) &&
               !memcmp(w.ts.opt->m2, r.ts.opt->m2, sizeof(float) * a->n_params),
           "optimiser moments read back");
    EXPECT(!memcmp(a->bn_var, b->bn_var, sizeof(float) * (size_t)a->n) &&
               !memcmp(a->sn_v, b->sn_v, sizeof(float) * (size_t)a->n) && b->sigma == 0.75f,
           "state read back");
    EXPECT(r.d.history_rows == ROWS &&
               !memcmp(r.d.history, w.d.history, sizeof(double) * ROWS * METRICS_N_COLS),
           "history read back (%d rows)", r.d.history_rows);
    EXPECT(!memcmp(r.d.partial, w.d.partial, sizeof r.d.partial), "partial statistics");
    EXPECT(r.ts.epoch == ROWS && r.ts.step == 3 && r.ts.iter == 17 && r.ts.bad_steps == 1 &&
               r.ts.opt->step == 16 && r.d.world_size == 2,
           "counters: epoch %d step %ld iter %ld", r.ts.epoch, r.ts.step, r.ts.iter);
    EXPECT(r.d.config_text && !strcmp(r.d.config_text, w.d.config_text), "config text");
    ckpt_data_free(&r.d);
    fixture_destroy(&r);

    /* The header is the one the documentation describes. */
    size_t size = 0;
    unsigned char *bytes = slurp(path_of(CKPT_FILE), &size);
    char want[256];
    snprintf(want, sizeof want, "fsnn checkpoint\nformat_version %d\nlength %zu\nsha256 ",
             CKPT_VERSION, size);
    EXPECT(bytes && size > CKPT_HEADER_SIZE && !memcmp(bytes, want, strlen(want)),
           "header starts \"%.40s\"", bytes ? (const char *)bytes : "");
    EXPECT(bytes && !memcmp(bytes + CKPT_HEADER_SIZE, "\x89HDF\r\n\x1a\n", 8),
           "HDF5's superblock right after the user block");
    spit(good, bytes, size);
    free(bytes);

    /* A second write keeps the first as checkpoint.prev.h5. */
    w.ts.step = 4;
    EXPECT_OK(ckpt_write(tmp_dir, &w.d));
    EXPECT(access(path_of(CKPT_PREV), F_OK) == 0, "previous checkpoint kept");
    fixture_destroy(&w);
    EXPECT(open_objects() == 0, "%d HDF5 objects left open", open_objects());
}

/* A multi-layer model (layers with weights and BatchNorm, pooling, a
 * transposed-conv feedback) written and read into a fresh model: every
 * trainable tensor and every saved state array, the layers' running
 * statistics included, comes back bit for bit. */
static void test_roundtrip_multilayer(void) {
    fixture w, r;
    memset(&w, 0, sizeof w);
    memset(&r, 0, sizeof r);
    fixture *fx[2] = {&w, &r};
    for (int i = 0; i < 2; i++) {
        config_defaults(&fx[i]->cfg);
        fx[i]->cfg.model_hidden = 0;
        snprintf(fx[i]->cfg.model_net, sizeof fx[i]->cfg.model_net, "4C3-P2-6C3-5C3 (F4C3u)");
        EXPECT_OK(model_create(&fx[i]->m, &fx[i]->cfg, 3, 8, 8, N_OUT));
        if (!fx[i]->m) return;
        EXPECT_OK(optim_create(&fx[i]->ts.opt, &fx[i]->cfg, fx[i]->m->n_params));
        fx[i]->d.m = fx[i]->m;
        fx[i]->d.ts = &fx[i]->ts;
    }
    fsnn_model *a = w.m, *b = r.m;
    /* 8 tensors, 4 for each of two conv layers; 5 state arrays, 2 per layer. */
    EXPECT(a->n_tensors == 16 && a->n_state == 9, "%d tensors, %d state arrays", a->n_tensors,
           a->n_state);
    for (size_t i = 0; i < a->n_params; i++) {
        a->params[i] = 0.25f * (float)i - 3.0f;
        w.ts.opt->m1[i] = 1.0f / (float)(i + 1);
    }
    float v = 1.0f;
    for (int s = 0; s < a->n_state; s++)
        for (size_t k = 0; k < a->state[s].count; k++)
            a->state[s].data[k] = v++;
    static double history[METRICS_N_COLS];
    w.d.history = history;
    w.d.history_rows = 1;
    w.ts.epoch = 1;
    w.d.config_text = "[model]\nnet = 4C3-P2-6C3-5C3 (F4C3u)\n";
    w.d.world_size = 1;
    EXPECT_OK(ckpt_write(tmp_dir, &w.d));
    EXPECT_OK(ckpt_read(path_of(CKPT_FILE), &r.d));
    EXPECT(!memcmp(a->params, b->params, sizeof(float) * a->n_params), "params read back");
    for (int s = 0; s < a->n_state && s < b->n_state; s++)
        EXPECT(!strcmp(a->state[s].name, b->state[s].name) &&
                   !memcmp(a->state[s].data, b->state[s].data, sizeof(float) * a->state[s].count),
               "state %s read back", a->state[s].name);
    EXPECT(b->ml && b->ml->layer[3].run_var[4] == a->ml->layer[3].run_var[4] &&
               b->ml->layer[3].run_var[4] != 0.0f,
           "layer 4's running variance read back");
    ckpt_data_free(&r.d);
    fixture_destroy(&w);
    fixture_destroy(&r);
    testutil_remove_tree(tmp_dir);
    EXPECT(mkdir(tmp_dir, 0700) == 0, "recreating %s", tmp_dir);
}

/* Writes good's bytes, changed by `edit`, to `name` and expects ckpt_read to
 * refuse it with a message naming the file and containing `what`. */
typedef void (*edit_fn)(unsigned char *b, size_t *size);

static void expect_refused(const char *good, const char *name, edit_fn edit, const char *what) {
    size_t size = 0;
    unsigned char *b = slurp(good, &size);
    unsigned char *grown = b ? realloc(b, size + 16) : NULL;
    if (!grown) {
        free(b);
        EXPECT(0, "cannot read %s", good);
        return;
    }
    edit(grown, &size);
    const char *path = path_of(name);
    spit(path, grown, size);
    free(grown);
    EXPECT_FAILS(read_into_fresh(path), path, what);
    int n_in, n, n_out;
    cfg_optim opt;
    EXPECT_FAILS(ckpt_sizes(path, &n_in, &n, &n_out, &opt), path, what);
}

static void cut_last_byte(unsigned char *b, size_t *size) {
    (void)b;
    *size -= 1;
}
static void append_byte(unsigned char *b, size_t *size) {
    b[(*size)++] = 0;
}
static void keep_100_bytes(unsigned char *b, size_t *size) {
    (void)b;
    *size = 100;
}
static void empty(unsigned char *b, size_t *size) {
    (void)b;
    *size = 0;
}
static void bad_magic(unsigned char *b, size_t *size) {
    (void)size;
    b[0] = 'F';
}
static void version_1(unsigned char *b, size_t *size) {
    (void)size;
    char *v = strstr((char *)b, "format_version 3");
    if (v) v[15] = '1';
}
static void version_4(unsigned char *b, size_t *size) {
    (void)size;
    char *v = strstr((char *)b, "format_version 3");
    if (v) v[15] = '4';
}
/* Another hex digit in the header's digest. */
static void bad_digest(unsigned char *b, size_t *size) {
    (void)size;
    char *h = strstr((char *)b, "sha256 ");
    if (h) h[7] = h[7] == '0' ? '1' : '0';
}
static void upper_case_digest(unsigned char *b, size_t *size) {
    (void)size;
    char *h = strstr((char *)b, "sha256 ");
    for (int i = 7; h && i < 71; i++)
        if (h[i] >= 'a' && h[i] <= 'f') {
            h[i] = (char)(h[i] - 'a' + 'A');
            break;
        }
}
static void padding_byte(unsigned char *b, size_t *size) {
    (void)size;
    b[CKPT_HEADER_SIZE - 1] = ' ';
}
static void flip_payload(unsigned char *b, size_t *size) {
    b[*size - 40] ^= 0x10;
}
static void flip_superblock(unsigned char *b, size_t *size) {
    (void)size;
    b[CKPT_HEADER_SIZE + 1] ^= 0x01;
}

static void test_header(const char *good) {
    expect_refused(good, "cut1.h5", cut_last_byte, "truncated");
    expect_refused(good, "appended.h5", append_byte, "damaged");
    expect_refused(good, "head100.h5", keep_100_bytes, "truncated: 100 bytes");
    expect_refused(good, "empty.h5", empty, "not an fsnn checkpoint (empty file)");
    expect_refused(good, "magic.h5", bad_magic, "not an fsnn checkpoint");
    expect_refused(good, "v1.h5", version_1, "format version 1; this fsnn reads versions 2 to 3");
    expect_refused(good, "v4.h5", version_4, "format version 4; this fsnn reads versions 2 to 3");
    expect_refused(good, "digest.h5", bad_digest, "damaged: the SHA-256");
    expect_refused(good, "upper.h5", upper_case_digest, "damaged header");
    expect_refused(good, "padding.h5", padding_byte, "damaged header");
    expect_refused(good, "payload.h5", flip_payload, "damaged: the SHA-256");
    expect_refused(good, "superblock.h5", flip_superblock, "damaged: the SHA-256");
    EXPECT_FAILS(read_into_fresh(path_of("missing.h5")), "missing.h5", "no such file");
    EXPECT_FAILS(read_into_fresh(tmp_dir), tmp_dir, "not a regular file");
    EXPECT(open_objects() == 0, "%d HDF5 objects left open", open_objects());
}

/* A valid HDF5 file that is not a checkpoint, with a user block of
 * `userblock` bytes (0: none). */
static void write_foreign(const char *path, hsize_t userblock) {
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    if (userblock) H5Pset_userblock(fcpl, userblock);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, fcpl, H5P_DEFAULT);
    hsize_t dims[1] = {4};
    hid_t space = H5Screate_simple(1, dims, NULL);
    const double v[4] = {1, 2, 3, 4};
    hid_t ds =
        H5Dcreate2(f, "values", H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    EXPECT(f >= 0 && ds >= 0 &&
               H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0,
           "writing %s", path);
    H5Dclose(ds);
    H5Sclose(space);
    H5Fclose(f);
    H5Pclose(fcpl);
}

static void test_foreign(void) {
    const char *plain = path_of("foreign.h5");
    write_foreign(plain, 0);
    EXPECT_FAILS(read_into_fresh(plain), plain, "an HDF5 file without the fsnn header");
    size_t before = 0, after = 0;
    unsigned char *b0 = slurp(plain, &before);
    EXPECT_FAILS(ckpt_seal(plain), plain, "no HDF5 signature after a 512-byte user block");
    unsigned char *b1 = slurp(plain, &after);
    EXPECT(b0 && b1 && before == after && !memcmp(b0, b1, before),
           "a refused seal changes nothing");
    free(b0);
    free(b1);

    const char *with_ub = path_of("foreign_ub.h5");
    write_foreign(with_ub, CKPT_HEADER_SIZE);
    EXPECT_FAILS(read_into_fresh(with_ub), with_ub, "not an fsnn checkpoint (its first bytes");
    /* Sealed, it passes the header and meets the HDF5 checks. */
    EXPECT_OK(ckpt_seal(with_ub));
    EXPECT_FAILS(read_into_fresh(with_ub), with_ub, "attribute 'format' is missing");
    int n_in, n, n_out;
    cfg_optim opt;
    EXPECT_FAILS(ckpt_sizes(with_ub, &n_in, &n, &n_out, &opt), with_ub,
                 "attribute 'n_in' is missing");
    EXPECT(open_objects() == 0, "%d HDF5 objects left open", open_objects());
}

/* Copies good to `name`, lets `alter` change it through the HDF5 API, seals
 * it again and expects ckpt_read (and ckpt_sizes when sizes_too) to refuse it
 * naming the file and `what`. */
typedef void (*alter_fn)(hid_t f);

static void expect_altered_refused(const char *good, const char *name, alter_fn alter,
                                   int sizes_too, const char *what) {
    size_t size = 0;
    unsigned char *b = slurp(good, &size);
    const char *path = path_of(name);
    spit(path, b, size);
    free(b);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    EXPECT(f >= 0, "HDF5 opens %s", path);
    alter(f);
    H5Fclose(f);
    EXPECT_OK(ckpt_seal(path));
    EXPECT_FAILS(read_into_fresh(path), path, what);
    if (sizes_too) {
        int n_in, n, n_out;
        cfg_optim opt;
        EXPECT_FAILS(ckpt_sizes(path, &n_in, &n, &n_out, &opt), path, what);
    }
}

static void put_i64(hid_t f, const char *name, int64_t v, hsize_t count) {
    H5Adelete(f, name);
    hid_t space = count ? H5Screate_simple(1, &count, NULL) : H5Screate(H5S_SCALAR);
    int64_t vals[64];
    for (int i = 0; i < 64; i++)
        vals[i] = v;
    hid_t at = H5Acreate2(f, name, H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    EXPECT(at >= 0 && H5Awrite(at, H5T_NATIVE_INT64, vals) >= 0, "attribute %s", name);
    H5Aclose(at);
    H5Sclose(space);
}

/* An array of 64 values where one belongs: read blindly, HDF5 would write
 * 512 bytes into an 8-byte variable. */
static void epoch_array(hid_t f) {
    put_i64(f, "epoch", 1, 64);
}
static void n_in_array(hid_t f) {
    put_i64(f, "n_in", N_IN, 64);
}
static void epoch_big(hid_t f) {
    put_i64(f, "epoch", (int64_t)1 << 39, 0);
}
static void n_hidden_huge(hid_t f) {
    put_i64(f, "n_hidden", 1000000, 0);
}
static void format_array(hid_t f) {
    H5Adelete(f, "format");
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, 16);
    hsize_t count = 8;
    hid_t space = H5Screate_simple(1, &count, NULL);
    char text[8][16];
    memset(text, 'x', sizeof text);
    hid_t at = H5Acreate2(f, "format", type, space, H5P_DEFAULT, H5P_DEFAULT);
    EXPECT(at >= 0 && H5Awrite(at, type, text) >= 0, "string array attribute");
    H5Aclose(at);
    H5Sclose(space);
    H5Tclose(type);
}
static void epoch_as_double(hid_t f) {
    H5Adelete(f, "epoch");
    hid_t space = H5Screate(H5S_SCALAR);
    double v = 2.0;
    hid_t at = H5Acreate2(f, "epoch", H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    EXPECT(at >= 0 && H5Awrite(at, H5T_NATIVE_DOUBLE, &v) >= 0, "double attribute");
    H5Aclose(at);
    H5Sclose(space);
}
static void checksum_changed(hid_t f) {
    hid_t at = H5Aopen(f, "checksum_sha256", H5P_DEFAULT);
    hid_t type = H5Aget_type(at);
    char sum[65];
    memset(sum, '0', 64);
    sum[64] = '\0';
    EXPECT(H5Awrite(at, type, sum) >= 0, "checksum attribute rewritten");
    H5Tclose(type);
    H5Aclose(at);
}

/* Replaces /params/feedback.V [n x n] by a dataset of type `type`, chunked
 * when `chunked`. */
static void replace_v(hid_t f, hid_t type, int chunked) {
    EXPECT(H5Ldelete(f, "/params/feedback.V", H5P_DEFAULT) >= 0, "feedback.V deleted");
    hsize_t dims[2] = {N_HIDDEN, N_HIDDEN};
    hid_t space = H5Screate_simple(2, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (chunked) H5Pset_chunk(dcpl, 2, dims);
    hid_t ds = H5Dcreate2(f, "/params/feedback.V", type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    float v[N_HIDDEN * N_HIDDEN] = {0};
    EXPECT(ds >= 0 && H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0,
           "feedback.V rewritten");
    H5Dclose(ds);
    H5Pclose(dcpl);
    H5Sclose(space);
}
static void v_float64(hid_t f) {
    replace_v(f, H5T_IEEE_F64LE, 0);
}
static void v_big_endian(hid_t f) {
    replace_v(f, H5T_IEEE_F32BE, 0);
}
static void v_chunked(hid_t f) {
    replace_v(f, H5T_IEEE_F32LE, 1);
}
static void v_transposed_shape(hid_t f) {
    EXPECT(H5Ldelete(f, "/params/input.weight", H5P_DEFAULT) >= 0, "input.weight deleted");
    hsize_t dims[2] = {N_IN, N_HIDDEN};
    hid_t space = H5Screate_simple(2, dims, NULL);
    hid_t ds = H5Dcreate2(f, "/params/input.weight", H5T_IEEE_F32LE, space, H5P_DEFAULT,
                          H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(ds);
    H5Sclose(space);
}
static void no_history(hid_t f) {
    EXPECT(H5Ldelete(f, "/run/history", H5P_DEFAULT) >= 0, "history deleted");
}

static void test_altered(const char *good) {
    expect_altered_refused(good, "epoch_array.h5", epoch_array, 0,
                           "attribute 'epoch' is unreadable or not a single value");
    expect_altered_refused(good, "n_in_array.h5", n_in_array, 1,
                           "attribute 'n_in' is unreadable or not a single value");
    expect_altered_refused(good, "format_array.h5", format_array, 0,
                           "attribute 'format' is unreadable or not a single value");
    expect_altered_refused(good, "epoch_double.h5", epoch_as_double, 0,
                           "attribute 'epoch' is not a readable int64");
    expect_altered_refused(good, "epoch_big.h5", epoch_big, 0,
                           "more rows of history than the file can hold");
    expect_altered_refused(good, "n_hidden_huge.h5", n_hidden_huge, 0,
                           "n_hidden is 1000000; the configuration's model has 5");
    expect_altered_refused(good, "checksum.h5", checksum_changed, 0, "checksum mismatch");
    expect_altered_refused(good, "v_f64.h5", v_float64, 0,
                           "dataset '/params/feedback.V' has the wrong type");
    expect_altered_refused(good, "v_be.h5", v_big_endian, 0,
                           "dataset '/params/feedback.V' has the wrong type");
    expect_altered_refused(good, "v_chunked.h5", v_chunked, 0,
                           "dataset '/params/feedback.V' is not stored contiguously");
    expect_altered_refused(good, "shape.h5", v_transposed_shape, 0,
                           "dataset '/params/input.weight' has shape [7 x 5]");
    expect_altered_refused(good, "no_history.h5", no_history, 0,
                           "dataset '/run/history' is missing");
    /* ckpt_sizes refuses a model whose weights cannot be in the file, before
     * anyone allocates it. */
    const char *huge = path_of("n_hidden_huge.h5");
    int n_in, n, n_out;
    cfg_optim opt;
    EXPECT_FAILS(ckpt_sizes(huge, &n_in, &n, &n_out, &opt), huge,
                 "sizes 7-1000000-3 need 4000040000000 bytes of weights");
    EXPECT(open_objects() == 0, "%d HDF5 objects left open", open_objects());
}

static void test_fallback(const char *good) {
    const char *dir = path_of("fallback");
    EXPECT(mkdir(dir, 0755) == 0, "mkdir %s", dir);
    char cur[600], prev[600], used[600];
    snprintf(cur, sizeof cur, "%s/%s", dir, CKPT_FILE);
    snprintf(prev, sizeof prev, "%s/%s", dir, CKPT_PREV);
    size_t size = 0;
    unsigned char *b = slurp(good, &size);
    spit(prev, b, size);
    spit(cur, b, size - 1);
    fixture fx;
    fixture_create(&fx, OPTIM_ADAM, N_HIDDEN);
    EXPECT_OK(ckpt_load_latest(dir, &fx.d, used, sizeof used));
    EXPECT(!strcmp(used, prev), "loaded %s", used);
    EXPECT(fx.ts.epoch == ROWS && fx.d.history_rows == ROWS, "the previous checkpoint's state");
    b[size - 40] ^= 1;
    spit(prev, b, size);
    EXPECT_FAILS(ckpt_load_latest(dir, &fx.d, used, sizeof used), "no usable checkpoint in", dir,
                 "checkpoint.h5: truncated");
    ckpt_data_free(&fx.d);
    fixture_destroy(&fx);
    free(b);
    EXPECT(open_objects() == 0, "%d HDF5 objects left open", open_objects());
}

int main(void) {
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    static char good[600];
    snprintf(good, sizeof good, "%s/good.h5", tmp_dir);
    test_roundtrip_multilayer();
    test_roundtrip(good);
    test_header(good);
    test_foreign();
    test_altered(good);
    test_fallback(good);
    testutil_remove_tree(tmp_dir);
    return check_finish("ckpt");
}
