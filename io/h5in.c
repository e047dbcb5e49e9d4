/* h5in: read-only access to HDF5 files of named arrays and attributes. */
#include "h5in.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "status.h" // defines: FAIL, CHECK, XCALLOC, status_calloc

struct h5in {
    char *path; /* as given to h5in_open, for messages */
    hid_t file;
};

/* The most datasets h5in_list collects below one group. */
#define H5IN_LIST_MAX (1 << 20)

/* What a path leads to. */
typedef enum {
    H5IN_MISSING, /* no such link, or a component before the last is not a group */
    H5IN_GROUP,
    H5IN_DATASET,
    H5IN_TYPE,    /* a named datatype */
    H5IN_LINK,    /* a soft, external or user-defined link on the way */
    H5IN_BADPATH, /* NULL, or longer than H5IN_PATH_MAX */
    H5IN_BROKEN   /* the file links to an object HDF5 cannot open */
} h5in_kind;

/* "/a/b" for "a/b", "/a//b/" and the like into out[H5IN_PATH_MAX + 2]; "/"
 * for "" and "/". Returns 0 for NULL or a path that is too long. */
static int h5in_norm(const char *path, char *out) {
    if (!path) return 0;
    size_t n = 0;
    out[n++] = '/';
    for (const char *p = path; *p; p++) {
        if (*p == '/' && out[n - 1] == '/') continue;
        if (n > H5IN_PATH_MAX) return 0;
        out[n++] = *p;
    }
    if (n > 1 && out[n - 1] == '/') n--;
    out[n] = '\0';
    return 1;
}

/* The object hard link `name` of group cur leads to, opened into *next
 * (-1 when there is none), or why there is none. */
static h5in_kind h5in_step(hid_t cur, const char *name, hid_t *next) {
    *next = -1;
    /* "." would name the group itself, not a link in it. */
    if (!strcmp(name, ".") || H5Lexists(cur, name, H5P_DEFAULT) <= 0) return H5IN_MISSING;
    H5L_info_t li;
    if (H5Lget_info(cur, name, &li, H5P_DEFAULT) < 0) return H5IN_BROKEN;
    if (li.type != H5L_TYPE_HARD) return H5IN_LINK;
    *next = H5Oopen(cur, name, H5P_DEFAULT);
    H5I_type_t t = *next >= 0 ? H5Iget_type(*next) : H5I_BADID;
    return t == H5I_GROUP      ? H5IN_GROUP
           : t == H5I_DATASET  ? H5IN_DATASET
           : t == H5I_DATATYPE ? H5IN_TYPE
                               : H5IN_BROKEN;
}

/* Follows `path` from the root one hard link at a time: HDF5's own lookups
 * fail (with an error stack) when an intermediate group is missing, and
 * would follow external links into other files. For a group or a dataset
 * *obj is its open id, which the caller closes; otherwise -1. */
static h5in_kind h5in_locate(const h5in *f, const char *path, hid_t *obj) {
    *obj = -1;
    char p[H5IN_PATH_MAX + 2];
    if (!f || !h5in_norm(path, p)) return H5IN_BADPATH;
    hid_t cur = H5Oopen(f->file, "/", H5P_DEFAULT);
    if (cur < 0) return H5IN_BROKEN;
    h5in_kind k = H5IN_GROUP;
    for (char *name = p + 1; *name;) {
        char *slash = strchr(name, '/');
        if (slash) *slash = '\0';
        hid_t next;
        k = h5in_step(cur, name, &next);
        H5Oclose(cur);
        cur = next;
        if (!slash) break;
        if (k != H5IN_GROUP) {
            /* A path through a dataset names nothing. */
            if (k == H5IN_DATASET || k == H5IN_TYPE) k = H5IN_MISSING;
            break;
        }
        name = slash + 1;
    }
    if (k == H5IN_GROUP || k == H5IN_DATASET) {
        *obj = cur;
        return k;
    }
    if (cur >= 0) H5Oclose(cur);
    return k;
}

/* The failure for a path that led to `k` where a `want` was expected. */
static int h5in_kind_fail(const h5in *f, const char *want, const char *path, h5in_kind k) {
    if (!f) return FAIL("h5in: no file (NULL handle) to look up '%.200s' in", path ? path : "");
    switch (k) {
    case H5IN_MISSING:
        return FAIL("%s: %s '%s' not found", f->path, want, path);
    case H5IN_GROUP:
        return FAIL("%s: '%s' is a group, not a %s", f->path, path, want);
    case H5IN_DATASET:
        return FAIL("%s: '%s' is a dataset, not a %s", f->path, path, want);
    case H5IN_TYPE:
        return FAIL("%s: '%s' is a named datatype, not a %s", f->path, path, want);
    case H5IN_LINK:
        return FAIL("%s: the path '%s' goes through a soft or external link, which this reader "
                    "does not follow",
                    f->path, path);
    case H5IN_BADPATH:
        return FAIL("%s: bad %s path '%.200s' (NULL or longer than %d bytes)", f->path, want,
                    path ? path : "(null)", H5IN_PATH_MAX);
    case H5IN_BROKEN:
        break;
    }
    return FAIL("%s: HDF5 cannot open '%s' (damaged file?)", f->path, path);
}

/* Opens dataset `path` into *ds or fails saying why. */
static int h5in_dataset_open(const h5in *f, const char *path, hid_t *ds) {
    h5in_kind k = h5in_locate(f, path, ds);
    if (k == H5IN_DATASET) return FSNN_OK;
    if (*ds >= 0) H5Oclose(*ds);
    *ds = -1;
    return h5in_kind_fail(f, "dataset", path, k);
}

/* A dataset's shape, checked: rank <= H5IN_RANK_MAX, count <= H5IN_COUNT_MAX. */
typedef struct {
    int rank;
    long dims[H5IN_RANK_MAX];
    long count;
} h5in_shape;

/* "[400, 784]" (or "[]" for a scalar) into out[cap]. */
static const char *h5in_dims_text(const h5in_shape *s, char *out, size_t cap) {
    size_t n = (size_t)snprintf(out, cap, "[");
    for (int i = 0; i < s->rank && n < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s%ld", i ? ", " : "", s->dims[i]);
    if (n < cap) snprintf(out + n, cap - n, "]");
    return out;
}

static int h5in_shape_of(const h5in *f, const char *path, hid_t ds, h5in_shape *s) {
    memset(s, 0, sizeof *s);
    hid_t space = H5Dget_space(ds);
    H5S_class_t cls = space >= 0 ? H5Sget_simple_extent_type(space) : H5S_NO_CLASS;
    int rank = cls == H5S_SIMPLE ? H5Sget_simple_extent_ndims(space) : 0;
    hsize_t d[H5IN_RANK_MAX];
    int got = cls == H5S_SIMPLE && rank >= 1 && rank <= H5IN_RANK_MAX
                  ? H5Sget_simple_extent_dims(space, d, NULL)
                  : -1;
    if (space >= 0) H5Sclose(space);
    if (cls == H5S_SCALAR) {
        s->count = 1;
        return FSNN_OK;
    }
    if (cls == H5S_NULL)
        return FAIL("%s: dataset '%s' has a null dataspace (no data)", f->path, path);
    if (cls == H5S_SIMPLE && rank > H5IN_RANK_MAX)
        return FAIL("%s: dataset '%s' has %d dimensions, more than %d", f->path, path, rank,
                    H5IN_RANK_MAX);
    if (cls != H5S_SIMPLE || rank < 1 || got != rank)
        return FAIL("%s: dataset '%s': HDF5 cannot read its dataspace (damaged file?)", f->path,
                    path);
    int zero = 0;
    for (int i = 0; i < rank; i++) {
        if (d[i] > (hsize_t)H5IN_COUNT_MAX)
            return FAIL("%s: dataset '%s' has %llu entries along dimension %d, more than the %ld "
                        "elements this reader accepts",
                        f->path, path, (unsigned long long)d[i], i, H5IN_COUNT_MAX);
        s->dims[i] = (long)d[i];
        zero |= d[i] == 0;
    }
    s->rank = rank;
    /* Each factor is at most 2^28 and the running product is checked after
     * every step, so it never exceeds 2^56. */
    unsigned long long count = zero ? 0 : 1;
    for (int i = 0; i < rank && count > 0; i++) {
        count *= (unsigned long long)d[i];
        if (count > (unsigned long long)H5IN_COUNT_MAX) {
            char text[160];
            return FAIL("%s: dataset '%s' of shape %s has more than the %ld elements this reader "
                        "accepts",
                        f->path, path, h5in_dims_text(s, text, sizeof text), H5IN_COUNT_MAX);
        }
    }
    s->count = (long)count;
    return FSNN_OK;
}

static const char *h5in_class_name(H5T_class_t c) {
    switch (c) {
    case H5T_INTEGER:
        return "an integer";
    case H5T_FLOAT:
        return "a float";
    case H5T_TIME:
        return "a time";
    case H5T_STRING:
        return "a string";
    case H5T_BITFIELD:
        return "a bitfield";
    case H5T_OPAQUE:
        return "an opaque";
    case H5T_COMPOUND:
        return "a compound";
    case H5T_REFERENCE:
        return "a reference";
    case H5T_ENUM:
        return "an enum";
    case H5T_VLEN:
        return "a variable-length";
    case H5T_ARRAY:
        return "an array";
    default:
        return "an unknown";
    }
}

/* Fails unless `type` (of the object `what` names) has class integer, or
 * float when floats are allowed. */
static int h5in_numeric(const h5in *f, const char *what, hid_t type, int int_only) {
    H5T_class_t c = type >= 0 ? H5Tget_class(type) : H5T_NO_CLASS;
    if (c == H5T_INTEGER || (c == H5T_FLOAT && !int_only)) return FSNN_OK;
    if (c == H5T_NO_CLASS)
        return FAIL("%s: %s: HDF5 cannot read its datatype (damaged file?)", f->path, what);
    return FAIL("%s: %s has %s type, expected %s", f->path, what, h5in_class_name(c),
                int_only ? "an integer one" : "a numeric (integer or float) one");
}

/* Records that a conversion went out of the destination's range, and stops
 * the read (HDF5's default would clip the value silently). */
static H5T_conv_ret_t h5in_conv_range(H5T_conv_except_t except, hid_t src, hid_t dst, void *src_buf,
                                      void *dst_buf, void *range) {
    (void)src;
    (void)dst;
    (void)src_buf;
    (void)dst_buf;
    if (except != H5T_CONV_EXCEPT_RANGE_HI && except != H5T_CONV_EXCEPT_RANGE_LOW)
        return H5T_CONV_UNHANDLED;
    *(int *)range = 1;
    return H5T_CONV_ABORT;
}

/* Reads the whole of dataset ds (count > 0 elements) as mtype into buf;
 * with int_only, a value out of mtype's range fails the read. */
static int h5in_dread(const h5in *f, const char *path, hid_t ds, hid_t mtype, int int_only,
                      void *buf) {
    int range = 0;
    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
    herr_t rd = -1;
    if (dxpl >= 0 && (!int_only || H5Pset_type_conv_cb(dxpl, h5in_conv_range, &range) >= 0))
        rd = H5Dread(ds, mtype, H5S_ALL, H5S_ALL, dxpl, buf);
    if (dxpl >= 0) H5Pclose(dxpl);
    if (rd >= 0) return FSNN_OK;
    if (range) return FAIL("%s: dataset '%s' holds a value outside the int32 range", f->path, path);
    return FAIL("%s: HDF5 cannot read dataset '%s' (damaged or truncated file?)", f->path, path);
}

/* Reads dataset `path` as mtype (elements of `elem` bytes): into the
 * caller's buffer `into` when it has exactly `expect` elements, or (into ==
 * NULL) into a new array *out of *count elements. */
static int h5in_read_as(const h5in *f, const char *path, hid_t mtype, size_t elem, int int_only,
                        void *into, long expect, void **out, long *count) {
    hid_t ds;
    CHECK(h5in_dataset_open(f, path, &ds));
    h5in_shape s;
    int rc = h5in_shape_of(f, path, ds, &s);
    if (rc == 0) {
        char what[H5IN_PATH_MAX + 16];
        snprintf(what, sizeof what, "dataset '%s'", path);
        hid_t type = H5Dget_type(ds);
        rc = h5in_numeric(f, what, type, int_only);
        if (type >= 0) H5Tclose(type);
    }
    if (rc == 0 && into && s.count != expect) {
        char text[160];
        rc = FAIL("%s: dataset '%s' has %ld elements (shape %s), expected %ld", f->path, path,
                  s.count, h5in_dims_text(&s, text, sizeof text), expect);
    }
    void *buf = into;
    if (rc == 0 && !into)
        rc = status_calloc(&buf, s.count > 0 ? (size_t)s.count : 1, elem, __FILE__, __LINE__);
    if (rc == 0 && s.count > 0) rc = h5in_dread(f, path, ds, mtype, int_only, buf);
    H5Dclose(ds);
    if (rc) {
        if (!into) free(buf);
        status_trace(__FILE__, __LINE__);
        return rc;
    }
    if (out) *out = buf;
    if (count) *count = s.count;
    return FSNN_OK;
}

int h5in_open(h5in **out, const char *path) {
    if (!out) return FAIL("h5in_open: no place for the handle (NULL)");
    *out = NULL;
    if (!path || !path[0]) return FAIL("h5in_open: no file name given");
    int fd = open(path, O_RDONLY);
    if (fd < 0) return FAIL("%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    int dir = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
    close(fd);
    if (dir) return FAIL("%s: is a directory, not an HDF5 file", path);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* our messages replace HDF5's stack dumps */
    if (H5Fis_hdf5(path) <= 0) return FAIL("%s: not an HDF5 file (no HDF5 signature)", path);
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0)
        return FAIL("%s: has an HDF5 signature, but HDF5 cannot open it (damaged or truncated?)",
                    path);
    h5in *f = NULL;
    size_t len = strlen(path);
    int rc = XCALLOC(&f, 1);
    if (rc == 0) rc = XCALLOC(&f->path, len + 1);
    if (rc) {
        free(f);
        H5Fclose(file);
        status_trace(__FILE__, __LINE__);
        return rc;
    }
    memcpy(f->path, path, len + 1);
    f->file = file;
    *out = f;
    return FSNN_OK;
}

void h5in_close(h5in **f) {
    if (!f || !*f) return;
    H5Fclose((*f)->file);
    free((*f)->path);
    free(*f);
    *f = NULL;
}

const char *h5in_path(const h5in *f) {
    return f ? f->path : "";
}

int h5in_exists(const h5in *f, const char *path) {
    hid_t obj;
    h5in_kind k = h5in_locate(f, path, &obj);
    if (obj >= 0) H5Oclose(obj);
    return k == H5IN_GROUP || k == H5IN_DATASET;
}

int h5in_dims(const h5in *f, const char *path, int *rank, long *dims) {
    hid_t ds;
    CHECK(h5in_dataset_open(f, path, &ds));
    h5in_shape s;
    int rc = h5in_shape_of(f, path, ds, &s);
    H5Dclose(ds);
    CHECK(rc);
    *rank = s.rank;
    for (int i = 0; i < s.rank; i++)
        dims[i] = s.dims[i];
    return FSNN_OK;
}

int h5in_read_f32(const h5in *f, const char *path, float **data, long *count) {
    *data = NULL;
    *count = 0;
    void *buf = NULL;
    CHECK(h5in_read_as(f, path, H5T_NATIVE_FLOAT, sizeof(float), 0, NULL, 0, &buf, count));
    *data = buf;
    return FSNN_OK;
}

int h5in_read_f32_into(const h5in *f, const char *path, float *data, long expect) {
    if (!data)
        return FAIL("h5in_read_f32_into: no buffer (NULL) for dataset '%s'", path ? path : "");
    CHECK(h5in_read_as(f, path, H5T_NATIVE_FLOAT, sizeof(float), 0, data, expect, NULL, NULL));
    return FSNN_OK;
}

int h5in_read_i32(const h5in *f, const char *path, int32_t **data, long *count) {
    *data = NULL;
    *count = 0;
    void *buf = NULL;
    CHECK(h5in_read_as(f, path, H5T_NATIVE_INT32, sizeof(int32_t), 1, NULL, 0, &buf, count));
    *data = buf;
    return FSNN_OK;
}

/* --- attributes --- */

int h5in_attr_exists(const h5in *f, const char *obj, const char *name) {
    if (!name || !name[0]) return 0;
    hid_t o;
    h5in_kind k = h5in_locate(f, obj, &o);
    if (k != H5IN_GROUP && k != H5IN_DATASET) return 0;
    htri_t ex = H5Aexists(o, name);
    H5Oclose(o);
    return ex > 0;
}

/* Opens attribute `name` of object `obj` into *at and its type into *type,
 * after checking that it holds exactly one value: HDF5 writes every value
 * an attribute has into the reader's buffer. */
static int h5in_attr_open(const h5in *f, const char *obj, const char *name, hid_t *at,
                          hid_t *type) {
    *at = *type = -1;
    hid_t o;
    h5in_kind k = h5in_locate(f, obj, &o);
    if (k != H5IN_GROUP && k != H5IN_DATASET) {
        if (o >= 0) H5Oclose(o);
        return h5in_kind_fail(f, "group or dataset", obj, k);
    }
    if (!name || !name[0]) {
        H5Oclose(o);
        return FAIL("%s: no attribute name given for '%s'", f->path, obj);
    }
    htri_t ex = H5Aexists(o, name);
    if (ex > 0) *at = H5Aopen(o, name, H5P_DEFAULT);
    H5Oclose(o);
    if (ex == 0) return FAIL("%s: '%s' has no attribute '%s'", f->path, obj, name);
    if (*at < 0)
        return FAIL("%s: HDF5 cannot open attribute '%s' of '%s' (damaged file?)", f->path, name,
                    obj);
    hid_t space = H5Aget_space(*at);
    H5S_class_t cls = space >= 0 ? H5Sget_simple_extent_type(space) : H5S_NO_CLASS;
    long long n = cls == H5S_SCALAR   ? 1
                  : cls == H5S_NULL   ? 0
                  : cls == H5S_SIMPLE ? (long long)H5Sget_simple_extent_npoints(space)
                                      : -1;
    if (space >= 0) H5Sclose(space);
    if (n == 1) *type = H5Aget_type(*at);
    if (*type >= 0) return FSNN_OK;
    H5Aclose(*at);
    *at = -1;
    if (n == 1 || n < 0)
        return FAIL("%s: HDF5 cannot read attribute '%s' of '%s' (damaged file?)", f->path, name,
                    obj);
    return FAIL("%s: attribute '%s' of '%s' holds %lld values, expected one", f->path, name, obj,
                n);
}

int h5in_attr_double(const h5in *f, const char *obj, const char *name, double *out) {
    hid_t at, type;
    CHECK(h5in_attr_open(f, obj, name, &at, &type));
    char what[2 * H5IN_PATH_MAX + 32];
    snprintf(what, sizeof what, "attribute '%s' of '%s'", name, obj);
    int rc = h5in_numeric(f, what, type, 0);
    double v = 0;
    if (rc == 0 && H5Aread(at, H5T_NATIVE_DOUBLE, &v) < 0)
        rc = FAIL("%s: HDF5 cannot read %s (damaged file?)", f->path, what);
    H5Tclose(type);
    H5Aclose(at);
    CHECK(rc);
    *out = v;
    return FSNN_OK;
}

/* Reads string attribute at (of type `type`) into a new NUL-terminated
 * buffer *s (caller frees with free()). */
static int h5in_attr_read_string(const h5in *f, const char *what, hid_t at, hid_t type, char **s) {
    *s = NULL;
    htri_t var = H5Tis_variable_str(type);
    size_t size = var == 0 ? H5Tget_size(type) : 0;
    H5T_cset_t cset = H5Tget_cset(type);
    if (var < 0 || cset < 0 || (var == 0 && size == 0))
        return FAIL("%s: HDF5 cannot read the string type of %s (damaged file?)", f->path, what);
    if (size > (size_t)H5IN_STRING_MAX)
        return FAIL("%s: %s is a string of %zu bytes, more than the %ld this reader accepts",
                    f->path, what, size, H5IN_STRING_MAX);
    /* HDF5 converts between string types of the same character set only. */
    hid_t mem = H5Tcopy(H5T_C_S1);
    int ok = mem >= 0 && H5Tset_cset(mem, cset) >= 0;
    int rc = FSNN_OK;
    if (var) {
        char *v = NULL;
        ok = ok && H5Tset_size(mem, H5T_VARIABLE) >= 0 && H5Aread(at, mem, &v) >= 0;
        size_t len = ok && v ? strlen(v) : 0;
        if (ok) rc = XCALLOC(s, len + 1);
        if (ok && rc == 0 && len) memcpy(*s, v, len);
        if (v) H5free_memory(v);
    } else {
        /* One byte more than stored, null-terminated: HDF5 then drops the
         * padding of a space- or null-padded string and adds the NUL. */
        ok = ok && H5Tset_size(mem, size + 1) >= 0 && H5Tset_strpad(mem, H5T_STR_NULLTERM) >= 0;
        if (ok) rc = XCALLOC(s, size + 2);
        if (ok && rc == 0) ok = H5Aread(at, mem, *s) >= 0;
    }
    if (mem >= 0) H5Tclose(mem);
    if (ok && rc == 0) return FSNN_OK;
    free(*s);
    *s = NULL;
    CHECK(rc);
    return FAIL("%s: HDF5 cannot read %s (damaged file?)", f->path, what);
}

int h5in_attr_string(const h5in *f, const char *obj, const char *name, char *buf, size_t cap) {
    hid_t at, type;
    CHECK(h5in_attr_open(f, obj, name, &at, &type));
    char what[2 * H5IN_PATH_MAX + 32];
    snprintf(what, sizeof what, "attribute '%s' of '%s'", name, obj);
    H5T_class_t c = H5Tget_class(type);
    char *s = NULL;
    int rc = FSNN_OK;
    if (c != H5T_STRING)
        rc = c == H5T_NO_CLASS
                 ? FAIL("%s: HDF5 cannot read the datatype of %s (damaged file?)", f->path, what)
                 : FAIL("%s: %s has %s type, expected a string", f->path, what, h5in_class_name(c));
    if (rc == 0) rc = h5in_attr_read_string(f, what, at, type, &s);
    H5Tclose(type);
    H5Aclose(at);
    CHECK(rc);
    size_t len = strlen(s);
    if (!buf || len >= cap)
        rc = FAIL("%s: %s is a string of %zu bytes, which with its NUL does not fit in the "
                  "%zu-byte buffer",
                  f->path, what, len, buf ? cap : 0);
    else
        memcpy(buf, s, len + 1);
    free(s);
    return rc;
}

/* --- listing --- */

/* The names h5in_list collects. */
typedef struct {
    const h5in *f;
    const char *group;
    char **names;
    size_t n, cap;
    int failed;
} h5in_walk;

static herr_t h5in_walk_link(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    h5in_walk *w = data;
    if (info->type != H5L_TYPE_HARD) return 0;
    hid_t o = H5Oopen(g, name, H5P_DEFAULT);
    if (o < 0) {
        w->failed = FAIL("%s: HDF5 cannot open '%s' in group '%s' (damaged file?)", w->f->path,
                         name, w->group);
        return -1;
    }
    H5I_type_t t = H5Iget_type(o);
    H5Oclose(o);
    if (t != H5I_DATASET) return 0;
    size_t len = strlen(name);
    if (len > H5IN_PATH_MAX) {
        w->failed = FAIL("%s: a dataset name in group '%s' is longer than %d bytes: '%.80s...'",
                         w->f->path, w->group, H5IN_PATH_MAX, name);
        return -1;
    }
    if (w->n == w->cap) {
        if (w->n >= H5IN_LIST_MAX) {
            w->failed = FAIL("%s: group '%s' holds more than %d datasets", w->f->path, w->group,
                             H5IN_LIST_MAX);
            return -1;
        }
        size_t cap = w->cap ? 2 * w->cap : 64;
        char **p = realloc(w->names, cap * sizeof *p);
        if (!p) {
            w->failed = FAIL("out of memory listing group '%s' of %s", w->group, w->f->path);
            return -1;
        }
        w->names = p;
        w->cap = cap;
    }
    char *copy = NULL;
    if (XCALLOC(&copy, len + 1) != 0) {
        w->failed = FSNN_ERR;
        return -1;
    }
    memcpy(copy, name, len);
    w->names[w->n++] = copy;
    return 0;
}

static int h5in_name_cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int h5in_list(const h5in *f, const char *group, h5in_visit_fn fn, void *ctx) {
    hid_t g;
    h5in_kind k = h5in_locate(f, group, &g);
    if (k != H5IN_GROUP) {
        if (g >= 0) H5Oclose(g);
        return h5in_kind_fail(f, "group", group, k);
    }
    if (!fn) {
        H5Oclose(g);
        return FAIL("%s: h5in_list of group '%s' without a function to call", f->path, group);
    }
    /* H5Lvisit recurses into each group once, however many hard links lead
     * to it, so a cycle of links ends. */
    h5in_walk w = {f, group, NULL, 0, 0, 0};
    herr_t r = H5Lvisit(g, H5_INDEX_NAME, H5_ITER_INC, h5in_walk_link, &w);
    H5Oclose(g);
    int rc = w.failed;
    if (r < 0 && rc == 0)
        rc = FAIL("%s: HDF5 cannot list group '%s' (damaged file?)", f->path, group);
    if (rc == 0 && w.n > 1) qsort(w.names, w.n, sizeof *w.names, h5in_name_cmp);
    for (size_t i = 0; rc == 0 && i < w.n; i++)
        rc = fn(ctx, w.names[i]);
    for (size_t i = 0; i < w.n; i++)
        free(w.names[i]);
    free(w.names);
    CHECK(rc);
    return FSNN_OK;
}
