/* h5in: a small HDF5 file written here with the HDF5 C API (float, double,
 * int32, int64, uint8 and string datasets, float64 beyond float's range, a 0-d scalar, an empty
 * array, nested groups, a soft link, a hard link that makes a cycle, numeric and fixed,
 * space-padded and variable-length string attributes) read back exactly; clear failures for a
 * missing file, a directory, an empty, a foreign and a truncated file, missing paths, a wrong
 * expected count, a string too long for the buffer, non-numeric types, an int64 beyond int32 and an
 * attribute holding two values; then the reference fixture fc_if_t5.h5 (argv[1]: its folder, which
 * must exist). After every file is closed no HDF5 object may stay open. */
#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "h5in.h"     // defines: h5in_open, h5in_read_f32, h5in_attr_string, h5in_list, ...
#include "testutil.h" // defines: testutil_remove_tree

static char tmp_dir[] = "/tmp/fsnn_test_h5in_XXXXXX";

static int open_objects(void) {
    return (int)H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
}

/* --- writing the test file --- */

static void put(hid_t file, const char *name, hid_t ftype, hid_t mtype, int rank,
                const hsize_t *dims, const void *data) {
    hid_t space = rank == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(rank, dims, NULL);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t ds = H5Dcreate2(file, name, ftype, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    EXPECT(ds >= 0 && H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0,
           "writing dataset %s", name);
    H5Dclose(ds);
    H5Pclose(lcpl);
    H5Sclose(space);
}

static void put_attr(hid_t loc, const char *name, hid_t ftype, hid_t mtype, hsize_t n,
                     const void *data) {
    hid_t space = n == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, NULL);
    hid_t at = H5Acreate2(loc, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT);
    EXPECT(at >= 0 && H5Awrite(at, mtype, data) >= 0, "writing attribute %s", name);
    H5Aclose(at);
    H5Sclose(space);
}

/* A scalar string attribute: fixed length `size` with padding `pad`, or
 * variable length (size 0) in UTF-8. */
static void put_str(hid_t loc, const char *name, const char *value, size_t size, H5T_str_t pad) {
    hid_t type = H5Tcopy(H5T_C_S1);
    if (size) {
        H5Tset_size(type, size);
        H5Tset_strpad(type, pad);
        char buf[64] = {0};
        memset(buf, pad == H5T_STR_SPACEPAD ? ' ' : '\0', size);
        memcpy(buf, value, strlen(value));
        put_attr(loc, name, type, type, 0, buf);
    } else {
        H5Tset_size(type, H5T_VARIABLE);
        H5Tset_cset(type, H5T_CSET_UTF8);
        put_attr(loc, name, type, type, 0, &value);
    }
    H5Tclose(type);
}

static const float MAT[6] = {1.0f, -2.5f, 3.25f, 0.0f, 1e-3f, -7.0f};
static const int32_t LABELS[5] = {0, 3, 9, 1, 7};

static void write_file(const char *path) {
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    EXPECT(file >= 0, "creating %s", path);
    const hsize_t d23[2] = {2, 3}, d2[1] = {2}, d3[1] = {3}, d5[1] = {5}, d0[1] = {0},
                  d212[3] = {2, 1, 2};
    put(file, "a/b/mat", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, d23, MAT);
    const double deep[2] = {0.5, -2.25};
    put(file, "a/b/c/deep", H5T_IEEE_F64BE, H5T_NATIVE_DOUBLE, 1, d2, deep);
    const double huge[2] = {1e300, -1e300};
    put(file, "huge", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, d2, huge);
    put(file, "labels", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, d5, LABELS);
    const int64_t big[2] = {1, (int64_t)1 << 40};
    put(file, "labels64", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, d2, big);
    const uint8_t u8[3] = {1, 2, 255};
    put(file, "u8", H5T_STD_U8LE, H5T_NATIVE_UINT8, 1, d3, u8);
    const float g = 0.8f;
    put(file, "scalar", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 0, NULL, &g);
    put(file, "empty", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, d0, MAT);
    const float r3[4] = {1, 2, 3, 4};
    put(file, "rank3", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 3, d212, r3);
    hid_t s8 = H5Tcopy(H5T_C_S1);
    H5Tset_size(s8, 4);
    put(file, "text", s8, s8, 1, d2, "abcdefgh");
    H5Tclose(s8);
    H5Lcreate_soft("/a/b/mat", file, "soft", H5P_DEFAULT, H5P_DEFAULT);
    /* A cycle: a/b/c/loop leads back to a. */
    H5Lcreate_hard(file, "a", file, "a/b/c/loop", H5P_DEFAULT, H5P_DEFAULT);

    const int64_t T = 5;
    put_attr(file, "T", H5T_STD_I64LE, H5T_NATIVE_INT64, 0, &T);
    const double vth = 2.0, one[1] = {3.5}, two[2] = {1, 2};
    put_attr(file, "V_th", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 0, &vth);
    put_attr(file, "one", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, one);
    put_attr(file, "two", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, two);
    put_str(file, "case", "fc_if_t5", 16, H5T_STR_NULLPAD);
    put_str(file, "padded", "abc", 8, H5T_STR_SPACEPAD);
    put_str(file, "net", "400 (F400)", 0, H5T_STR_NULLTERM);
    hid_t mat = H5Dopen2(file, "a/b/mat", H5P_DEFAULT);
    put_str(mat, "role", "F", 0, H5T_STR_NULLTERM);
    H5Dclose(mat);
    H5Fclose(file);
}

/* --- listing --- */

typedef struct {
    char text[512];
    int calls, stop_at;
} listing;

static int collect(void *ctx, const char *name) {
    listing *l = ctx;
    l->calls++;
    size_t n = strlen(l->text);
    snprintf(l->text + n, sizeof l->text - n, "%s%s", n ? "," : "", name);
    return l->calls == l->stop_at ? 7 : 0;
}

/* --- the written file read back --- */

static void test_roundtrip(const char *path) {
    h5in *f = NULL;
    EXPECT_OK(h5in_open(&f, path));
    if (!f) return;
    EXPECT(!strcmp(h5in_path(f), path), "path %s", h5in_path(f));

    const char *present[] = {"a", "/a", "a/b", "a/b/mat", "a//b/mat/", "/", "", "a/b/c/loop"};
    for (size_t i = 0; i < sizeof present / sizeof *present; i++)
        EXPECT(h5in_exists(f, present[i]) == 1, "'%s' exists", present[i]);
    const char *absent[] = {"nope", "nope/x", "a/nope/mat", "a/b/mat/x", "soft", ".", "a/./b"};
    for (size_t i = 0; i < sizeof absent / sizeof *absent; i++)
        EXPECT(h5in_exists(f, absent[i]) == 0, "'%s' does not exist", absent[i]);
    EXPECT(h5in_exists(f, NULL) == 0, "NULL path");
    EXPECT(!strcmp(status_message(), ""), "exists recorded '%s'", status_message());

    int rank = -1;
    long dims[H5IN_RANK_MAX] = {0};
    EXPECT_OK(h5in_dims(f, "a/b/mat", &rank, dims));
    EXPECT(rank == 2 && dims[0] == 2 && dims[1] == 3, "mat: rank %d [%ld, %ld]", rank, dims[0],
           dims[1]);
    EXPECT_OK(h5in_dims(f, "scalar", &rank, dims));
    EXPECT(rank == 0, "scalar: rank %d", rank);
    EXPECT_OK(h5in_dims(f, "/rank3", &rank, dims));
    EXPECT(rank == 3 && dims[0] == 2 && dims[1] == 1 && dims[2] == 2, "rank3: rank %d", rank);

    float *x = NULL;
    long n = -1;
    EXPECT_OK(h5in_read_f32(f, "a/b/mat", &x, &n));
    EXPECT(n == 6 && x && !memcmp(x, MAT, sizeof MAT), "mat: %ld values", n);
    free(x);
    EXPECT_OK(h5in_read_f32(f, "a/b/c/deep", &x, &n));
    EXPECT(n == 2 && x && x[0] == 0.5f && x[1] == -2.25f, "deep (float64 big-endian): %ld", n);
    free(x);
    EXPECT_OK(h5in_read_f32(f, "huge", &x, &n));
    EXPECT(n == 2 && x && isinf(x[0]) && x[0] > 0 && isinf(x[1]) && x[1] < 0,
           "float64 beyond float's range: %ld", n);
    free(x);
    EXPECT_OK(h5in_read_f32(f, "scalar", &x, &n));
    EXPECT(n == 1 && x && x[0] == 0.8f, "scalar: %ld", n);
    free(x);
    EXPECT_OK(h5in_read_f32(f, "u8", &x, &n));
    EXPECT(n == 3 && x && x[2] == 255.0f, "u8: %ld", n);
    free(x);
    EXPECT_OK(h5in_read_f32(f, "labels64", &x, &n));
    EXPECT(n == 2 && x && x[1] == 1099511627776.0f, "labels64 as float: %ld", n);
    free(x);
    EXPECT_OK(h5in_read_f32(f, "empty", &x, &n));
    EXPECT(n == 0 && x, "empty: %ld", n);
    free(x);

    float buf[6] = {0};
    EXPECT_OK(h5in_read_f32_into(f, "a/b/mat", buf, 6));
    EXPECT(!memcmp(buf, MAT, sizeof MAT), "mat into the caller's buffer");

    int32_t *y = NULL;
    EXPECT_OK(h5in_read_i32(f, "labels", &y, &n));
    EXPECT(n == 5 && y && !memcmp(y, LABELS, sizeof LABELS), "labels: %ld", n);
    free(y);
    EXPECT_OK(h5in_read_i32(f, "u8", &y, &n));
    EXPECT(n == 3 && y && y[2] == 255, "u8 as int32: %ld", n);
    free(y);

    double v = 0;
    EXPECT_OK(h5in_attr_double(f, "/", "T", &v));
    EXPECT(v == 5.0, "T = %g", v);
    EXPECT_OK(h5in_attr_double(f, "", "V_th", &v));
    EXPECT(v == 2.0, "V_th = %g", v);
    EXPECT_OK(h5in_attr_double(f, "/", "one", &v));
    EXPECT(v == 3.5, "one-element array = %g", v);
    char s[32];
    EXPECT_OK(h5in_attr_string(f, "/", "case", s, sizeof s));
    EXPECT(!strcmp(s, "fc_if_t5"), "case '%s'", s);
    EXPECT_OK(h5in_attr_string(f, "/", "case", s, 9));
    EXPECT(!strcmp(s, "fc_if_t5"), "case in exactly 9 bytes '%s'", s);
    EXPECT_OK(h5in_attr_string(f, "/", "padded", s, sizeof s));
    EXPECT(!strcmp(s, "abc"), "space-padded '%s'", s);
    EXPECT_OK(h5in_attr_string(f, "/", "net", s, sizeof s));
    EXPECT(!strcmp(s, "400 (F400)"), "net '%s'", s);
    EXPECT_OK(h5in_attr_string(f, "a/b/mat", "role", s, sizeof s));
    EXPECT(!strcmp(s, "F"), "role '%s'", s);
    EXPECT(h5in_attr_exists(f, "/", "T") == 1, "T exists");
    EXPECT(h5in_attr_exists(f, "a/b/mat", "role") == 1, "role exists");
    EXPECT(h5in_attr_exists(f, "/", "nope") == 0, "nope");
    EXPECT(h5in_attr_exists(f, "nope/x", "T") == 0, "on a missing object");

    listing l = {{0}, 0, 0};
    EXPECT_OK(h5in_list(f, "/", collect, &l));
    EXPECT(!strcmp(l.text, "a/b/c/deep,a/b/mat,empty,huge,labels,labels64,rank3,scalar,text,u8"),
           "list /: %s", l.text);
    l = (listing){{0}, 0, 0};
    EXPECT_OK(h5in_list(f, "a", collect, &l));
    EXPECT(!strcmp(l.text, "b/c/deep,b/mat"), "list a: %s", l.text);
    l = (listing){{0}, 0, 2};
    EXPECT(h5in_list(f, "", collect, &l) == 7 && l.calls == 2, "stops: %d calls", l.calls);
    status_clear();
    h5in_close(&f);
    EXPECT(f == NULL, "h5in_close sets NULL");
    h5in_close(&f);
    h5in_close(NULL);
    EXPECT(open_objects() == 0, "%d HDF5 objects open", open_objects());
}

/* --- failures --- */

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *fp = fopen(path, "wb");
    EXPECT(fp && fwrite(data, 1, n, fp) == n && fclose(fp) == 0, "writing %s", path);
}

static void test_bad_files(const char *good) {
    char path[600];
    h5in *f = NULL;
    snprintf(path, sizeof path, "%s/no_such.h5", tmp_dir);
    EXPECT_FAILS(h5in_open(&f, path), path, "No such file");
    EXPECT(f == NULL, "no handle on failure");
    EXPECT_FAILS(h5in_open(&f, tmp_dir), tmp_dir, "directory");
    EXPECT_FAILS(h5in_open(&f, ""), "no file name");

    snprintf(path, sizeof path, "%s/text.h5", tmp_dir);
    char junk[4096];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = "not an HDF5 file\n"[i % 17];
    write_bytes(path, junk, sizeof junk);
    EXPECT_FAILS(h5in_open(&f, path), path, "not an HDF5 file");
    snprintf(path, sizeof path, "%s/empty.h5", tmp_dir);
    write_bytes(path, "", 0);
    EXPECT_FAILS(h5in_open(&f, path), path, "not an HDF5 file");

    /* The first half of the good file: signature and superblock, data cut. */
    FILE *in = fopen(good, "rb");
    static unsigned char bytes[1 << 16];
    size_t size = in ? fread(bytes, 1, sizeof bytes, in) : 0;
    if (in) fclose(in);
    EXPECT(size > 1000 && size < sizeof bytes, "read %zu bytes of %s", size, good);
    snprintf(path, sizeof path, "%s/truncated.h5", tmp_dir);
    write_bytes(path, bytes, size / 2);
    EXPECT_FAILS(h5in_open(&f, path), path, "cannot open");
    EXPECT(f == NULL, "no handle on failure");
    EXPECT(open_objects() == 0, "%d HDF5 objects open", open_objects());
}

static void test_bad_paths(const char *path) {
    h5in *f = NULL;
    EXPECT_OK(h5in_open(&f, path));
    if (!f) return;
    float *x = NULL, buf[8];
    int32_t *y = NULL;
    long n = -1, dims[H5IN_RANK_MAX];
    int rank;
    double v;
    char s[32];
    EXPECT_FAILS(h5in_read_f32(f, "missing/x", &x, &n), path, "'missing/x' not found");
    EXPECT(x == NULL && n == 0, "nothing returned on failure");
    EXPECT_FAILS(h5in_read_f32(f, "a/b/mat/x", &x, &n), path, "'a/b/mat/x' not found");
    EXPECT_FAILS(h5in_dims(f, "a/b", &rank, dims), path, "'a/b' is a group");
    EXPECT_FAILS(h5in_read_f32(f, "soft", &x, &n), path, "'soft'", "soft or external link");
    EXPECT_FAILS(h5in_read_f32(f, NULL, &x, &n), path, "NULL");
    char longp[H5IN_PATH_MAX + 10];
    memset(longp, 'x', sizeof longp - 1);
    longp[sizeof longp - 1] = '\0';
    EXPECT_FAILS(h5in_read_f32(f, longp, &x, &n), path, "longer than");

    memset(buf, 0, sizeof buf);
    EXPECT_FAILS(h5in_read_f32_into(f, "a/b/mat", buf, 5), path, "'a/b/mat'", "has 6 elements",
                 "[2, 3]", "expected 5");
    EXPECT(buf[0] == 0.0f, "buffer untouched after a count mismatch");
    EXPECT_FAILS(h5in_read_f32_into(f, "scalar", buf, 0), path, "has 1 elements", "expected 0");
    EXPECT_FAILS(h5in_read_f32(f, "text", &x, &n), path, "'text'", "a string type",
                 "numeric (integer or float)");
    EXPECT_FAILS(h5in_read_i32(f, "a/b/mat", &y, &n), path, "'a/b/mat'", "a float type", "integer");
    EXPECT_FAILS(h5in_read_i32(f, "labels64", &y, &n), path, "'labels64'", "int32 range");
    EXPECT(y == NULL && n == 0, "nothing returned on failure");

    EXPECT_FAILS(h5in_attr_string(f, "/", "case", s, 8), path, "'case'", "8 bytes",
                 "8-byte buffer");
    EXPECT_FAILS(h5in_attr_string(f, "/", "net", s, 4), path, "'net'", "10 bytes", "4-byte");
    EXPECT_FAILS(h5in_attr_string(f, "/", "T", s, sizeof s), path, "'T'", "an integer type",
                 "expected a string");
    EXPECT_FAILS(h5in_attr_double(f, "/", "case", &v), path, "'case'", "a string type");
    EXPECT_FAILS(h5in_attr_double(f, "/", "two", &v), path, "'two'", "holds 2 values");
    EXPECT_FAILS(h5in_attr_double(f, "/", "nope", &v), path, "no attribute 'nope'");
    EXPECT_FAILS(h5in_attr_double(f, "a/nope", "T", &v), path, "'a/nope' not found");
    EXPECT_FAILS(h5in_list(f, "labels", collect, NULL), path, "'labels' is a dataset");
    EXPECT_FAILS(h5in_list(f, "nope", collect, NULL), path, "'nope' not found");
    h5in_close(&f);
    EXPECT(open_objects() == 0, "%d HDF5 objects open", open_objects());
}

/* --- a reference fixture --- */

/* How many datasets a listing gave, and how many of them were names the
 * README lists. */
typedef struct {
    int calls, known;
} tally;

static int count_names(void *ctx, const char *name) {
    tally *t = ctx;
    t->calls++;
    t->known += !strcmp(name, "network_s.fc.weight_w") || !strcmp(name, "a_T/layer1") ||
                !strcmp(name, "state_after/network_x.bn.running_mean");
    return 0;
}

static void test_fixture(const char *dir) {
    struct stat st;
    EXPECT(dir && stat(dir, &st) == 0 && S_ISDIR(st.st_mode),
           "the reference fixtures are not at '%s' (CI copies shared/ beside the clone)",
           dir ? dir : "(no argument)");
    if (!dir) return;
    char path[4096];
    snprintf(path, sizeof path, "%s/fc_if_t5.h5", dir);
    h5in *f = NULL;
    EXPECT_OK(h5in_open(&f, path));
    if (!f) return;
    int rank = -1;
    long dims[H5IN_RANK_MAX] = {0};
    EXPECT_OK(h5in_dims(f, "init/network_s.fc.weight_w", &rank, dims));
    EXPECT(rank == 2 && dims[0] == 400 && dims[1] == 400, "V: rank %d [%ld, %ld]", rank, dims[0],
           dims[1]);
    EXPECT_OK(h5in_dims(f, "init/network_s.fc.weight_g", &rank, dims));
    EXPECT(rank == 0, "g: rank %d", rank);
    EXPECT_OK(h5in_dims(f, "input/x", &rank, dims));
    EXPECT(rank == 4 && dims[0] == 8 && dims[1] == 1 && dims[2] == 28 && dims[3] == 28,
           "x: rank %d", rank);

    int32_t *y = NULL;
    long n = 0;
    EXPECT_OK(h5in_read_i32(f, "input/y", &y, &n));
    EXPECT(n == 8 && y, "input/y: %ld labels", n);
    for (long i = 0; y && i < n; i++)
        EXPECT(y[i] >= 0 && y[i] < 10, "label %ld = %d", i, (int)y[i]);
    free(y);

    static float x[8 * 28 * 28];
    EXPECT_OK(h5in_read_f32_into(f, "input/x", x, 8 * 28 * 28));
    int finite = 1;
    for (size_t i = 0; i < sizeof x / sizeof *x; i++)
        finite &= isfinite(x[i]) != 0;
    EXPECT(finite, "input/x finite");
    float *g = NULL;
    EXPECT_OK(h5in_read_f32(f, "init/network_s.fc.weight_g", &g, &n));
    EXPECT(n == 1 && g && isfinite(g[0]) && g[0] > 0, "g: %ld", n);
    free(g);

    double T = 0, vth = 0, loss_attr = 0;
    EXPECT_OK(h5in_attr_double(f, "/", "T", &T));
    EXPECT(T == 5.0, "T = %g", T);
    EXPECT_OK(h5in_attr_double(f, "/", "V_th", &vth));
    EXPECT(vth == 2.0, "V_th = %g", vth);
    /* The loss is stored twice, as float32 dataset and float64 attribute. */
    EXPECT_OK(h5in_attr_double(f, "/", "loss", &loss_attr));
    float loss = 0;
    EXPECT_OK(h5in_read_f32_into(f, "train/loss", &loss, 1));
    EXPECT_NEAR(loss, loss_attr, 0, 1e-6, "train/loss against the attribute");

    char s[256];
    EXPECT_OK(h5in_attr_string(f, "/", "case", s, sizeof s));
    EXPECT(s[0] != '\0', "case is empty");
    EXPECT(!strcmp(s, "fc_if_t5"), "case '%s'", s);
    EXPECT_OK(h5in_attr_string(f, "/", "input_kind", s, sizeof s));
    EXPECT(strstr(s, "image") != NULL, "input_kind '%s'", s);
    static char json[1 << 16];
    EXPECT_OK(h5in_attr_string(f, "/", "config_json", json, sizeof json));
    EXPECT(json[0] == '{', "config_json starts '%.20s'", json);

    tally t = {0, 0};
    EXPECT_OK(h5in_list(f, "grad_broyden", count_names, &t));
    EXPECT(t.calls == 8 && t.known == 1, "grad_broyden: %d datasets", t.calls);
    t = (tally){0, 0};
    EXPECT_OK(h5in_list(f, "train", count_names, &t));
    EXPECT(t.calls >= 10 && t.known == 2, "train: %d datasets, %d known names", t.calls, t.known);
    h5in_close(&f);
    EXPECT(open_objects() == 0, "%d HDF5 objects open", open_objects());
}

int main(int argc, char **argv) {
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    static char good[600];
    snprintf(good, sizeof good, "%s/good.h5", tmp_dir);
    write_file(good);
    test_roundtrip(good);
    test_bad_files(good);
    test_bad_paths(good);
    test_fixture(argc > 1 ? argv[1] : NULL);
    testutil_remove_tree(tmp_dir);
    return check_finish("h5in");
}
