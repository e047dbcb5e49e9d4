/* modelfile: HDF5 writer and validating reader of model.h5. */
#include "modelfile.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "status.h"

static int modelfile_put(hid_t loc, const char *name, const float *data, int rank,
                         const int *dims, const char *path) {
    hsize_t hd[2] = {(hsize_t)dims[0], rank == 2 ? (hsize_t)dims[1] : 1};
    hid_t space = H5Screate_simple(rank, hd, NULL);
    hid_t ds = space < 0 ? -1
                         : H5Dcreate2(loc, name, H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT,
                                      H5P_DEFAULT);
    herr_t wr = ds < 0 ? -1 : H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    if (ds >= 0) H5Dclose(ds);
    if (space >= 0) H5Sclose(space);
    if (wr < 0) return FAIL("%s: cannot write dataset '%s'", path, name);
    return FSNN_OK;
}

static int modelfile_attr_int(hid_t loc, const char *name, long value, const char *path) {
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t at = H5Acreate2(loc, name, H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    herr_t wr = at < 0 ? -1 : H5Awrite(at, H5T_NATIVE_LONG, &value);
    if (at >= 0) H5Aclose(at);
    H5Sclose(space);
    if (wr < 0) return FAIL("%s: cannot write attribute '%s'", path, name);
    return FSNN_OK;
}

static int modelfile_attr_str(hid_t loc, const char *name, const char *value, const char *path) {
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

static int modelfile_fill(hid_t f, const fsnn_model *m, int epoch, const char *config_text,
                          const char *path) {
    CHECK(modelfile_attr_str(f, "format", "fsnn-model", path));
    CHECK(modelfile_attr_int(f, "format_version", MODELFILE_VERSION, path));
    CHECK(modelfile_attr_int(f, "n_in", m->n_in, path));
    CHECK(modelfile_attr_int(f, "n_hidden", m->n, path));
    CHECK(modelfile_attr_int(f, "n_out", m->n_out, path));
    CHECK(modelfile_attr_int(f, "epoch", epoch, path));
    CHECK(modelfile_attr_str(f, "config", config_text ? config_text : "", path));
    hid_t gp = H5Gcreate2(f, "params", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t gs = H5Gcreate2(f, "state", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int rc = (gp < 0 || gs < 0) ? FAIL("%s: cannot create groups", path) : FSNN_OK;
    for (int i = 0; rc == 0 && i < MODEL_N_TENSORS; i++) {
        const model_tensor_info *ti = &m->info[i];
        rc = modelfile_put(gp, ti->name, m->params + ti->offset, ti->rank, ti->dims, path);
    }
    const int nd[1] = {m->n}, one[1] = {1};
    float sigma = m->sigma;
    if (rc == 0) rc = modelfile_put(gs, "bn_mean", m->bn_mean, 1, nd, path);
    if (rc == 0) rc = modelfile_put(gs, "bn_var", m->bn_var, 1, nd, path);
    if (rc == 0) rc = modelfile_put(gs, "sn_u", m->sn_u, 1, nd, path);
    if (rc == 0) rc = modelfile_put(gs, "sn_v", m->sn_v, 1, nd, path);
    if (rc == 0) rc = modelfile_put(gs, "sigma", &sigma, 1, one, path);
    if (gp >= 0) H5Gclose(gp);
    if (gs >= 0) H5Gclose(gs);
    return rc;
}

int modelfile_write(const char *path, const fsnn_model *m, int epoch, const char *config_text) {
    char tmp[4096], dir[4096];
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* our messages replace HDF5's stack dumps */
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return FAIL("%s: path too long", path);
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) return FAIL("%s: cannot create HDF5 file", tmp);
    int rc = modelfile_fill(f, m, epoch, config_text, tmp);
    if (H5Fflush(f, H5F_SCOPE_GLOBAL) < 0 && rc == 0) rc = FAIL("%s: flush failed", tmp);
    if (H5Fclose(f) < 0 && rc == 0) rc = FAIL("%s: close failed", tmp);
    if (rc) {
        unlink(tmp);
        return rc;
    }
    /* HDF5 does not fsync on close: do it before the rename makes it current. */
    int fd = open(tmp, O_RDONLY);
    if (fd < 0 || fsync(fd) != 0) {
        if (fd >= 0) close(fd);
        return FAIL("%s: fsync failed: %s", tmp, strerror(errno));
    }
    close(fd);
    if (rename(tmp, path) != 0) return FAIL("%s: rename failed: %s", path, strerror(errno));
    snprintf(dir, sizeof dir, "%s", path);
    CHECK(fsutil_sync_dir(dirname(dir)));
    return FSNN_OK;
}

static int modelfile_get(hid_t loc, const char *group, const char *name, float *out, int rank,
                         const int *dims, const char *path) {
    char full[256];
    snprintf(full, sizeof full, "%s/%s", group, name);
    if (H5Lexists(loc, full, H5P_DEFAULT) <= 0)
        return FAIL("%s: dataset '%s' is missing", path, full);
    hid_t ds = H5Dopen2(loc, full, H5P_DEFAULT);
    if (ds < 0) return FAIL("%s: cannot open dataset '%s'", path, full);
    hid_t type = H5Dget_type(ds), space = H5Dget_space(ds);
    int ok_type = H5Tget_class(type) == H5T_FLOAT && H5Tget_size(type) == 4;
    hsize_t hd[2] = {0, 0};
    int frank = H5Sget_simple_extent_ndims(space);
    if (frank >= 1 && frank <= 2) H5Sget_simple_extent_dims(space, hd, NULL);
    H5Tclose(type);
    H5Sclose(space);
    int rc = FSNN_OK;
    if (!ok_type) rc = FAIL("%s: dataset '%s' is not float32", path, full);
    else if (frank != rank || hd[0] != (hsize_t)dims[0] || (rank == 2 && hd[1] != (hsize_t)dims[1]))
        rc = FAIL("%s: dataset '%s' has shape [%llu%s%llu] (rank %d), the model needs [%d x %d]",
                  path, full, (unsigned long long)hd[0], frank == 2 ? " x " : "/",
                  (unsigned long long)hd[1], frank, dims[0], rank == 2 ? dims[1] : 1);
    else if (H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0)
        rc = FAIL("%s: cannot read dataset '%s' (file damaged?)", path, full);
    H5Dclose(ds);
    return rc;
}

static int modelfile_read_attr(hid_t f, const char *name, long *value, const char *path) {
    if (H5Aexists(f, name) <= 0) return FAIL("%s: attribute '%s' is missing", path, name);
    hid_t at = H5Aopen(f, name, H5P_DEFAULT);
    herr_t rd = at < 0 ? -1 : H5Aread(at, H5T_NATIVE_LONG, value);
    if (at >= 0) H5Aclose(at);
    if (rd < 0) return FAIL("%s: cannot read attribute '%s'", path, name);
    return FSNN_OK;
}

static int modelfile_open(const char *path, hid_t *f) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if (!fsutil_is_file(path)) return FAIL("%s: no such file", path);
    if (H5Fis_hdf5(path) <= 0) return FAIL("%s: not an HDF5 file (or damaged)", path);
    *f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (*f < 0) return FAIL("%s: cannot open as HDF5", path);
    return FSNN_OK;
}

int modelfile_sizes(const char *path, int *n_in, int *n_hidden, int *n_out, int *epoch) {
    hid_t f;
    CHECK(modelfile_open(path, &f));
    long v[4] = {0, 0, 0, 0};
    const char *names[4] = {"n_in", "n_hidden", "n_out", "epoch"};
    int rc = FSNN_OK;
    for (int i = 0; rc == 0 && i < 4; i++) rc = modelfile_read_attr(f, names[i], &v[i], path);
    H5Fclose(f);
    CHECK(rc);
    for (int i = 0; i < 3; i++)
        if (v[i] < 1 || v[i] > 1000000)
            return FAIL("%s: attribute '%s' is %ld, outside 1..1000000", path, names[i], v[i]);
    if (v[3] < 0 || v[3] > 100000000) return FAIL("%s: attribute 'epoch' is %ld", path, v[3]);
    *n_in = (int)v[0];
    *n_hidden = (int)v[1];
    *n_out = (int)v[2];
    *epoch = (int)v[3];
    return FSNN_OK;
}

int modelfile_weights_sha256(const fsnn_model *m, char hex[65]) {
    /* x86-64 and every platform fsnn builds on store float32 little-endian,
     * so the array's bytes are the canonical layout. */
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(m->params, sizeof(float) * m->n_params, md, &len, EVP_sha256(), NULL) != 1 ||
        len != 32)
        return FAIL("SHA-256 of the weights failed (OpenSSL)");
    for (unsigned i = 0; i < len; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return FSNN_OK;
}

static int modelfile_load(hid_t f, fsnn_model *m, int *epoch, const char *path) {
    long version = 0, n_in = 0, n = 0, n_out = 0, ep = 0;
    CHECK(modelfile_read_attr(f, "format_version", &version, path));
    if (version != MODELFILE_VERSION)
        return FAIL("%s: format_version %ld, this fsnn reads %d", path, version, MODELFILE_VERSION);
    CHECK(modelfile_read_attr(f, "n_in", &n_in, path));
    CHECK(modelfile_read_attr(f, "n_hidden", &n, path));
    CHECK(modelfile_read_attr(f, "n_out", &n_out, path));
    CHECK(modelfile_read_attr(f, "epoch", &ep, path));
    if (n_in != m->n_in || n != m->n || n_out != m->n_out)
        return FAIL("%s: model sizes %ld-%ld-%ld do not match the config's %d-%d-%d", path, n_in, n,
                    n_out, m->n_in, m->n, m->n_out);
    for (int i = 0; i < MODEL_N_TENSORS; i++) {
        const model_tensor_info *ti = &m->info[i];
        CHECK(modelfile_get(f, "params", ti->name, m->params + ti->offset, ti->rank, ti->dims,
                            path));
    }
    const int nd[1] = {m->n}, one[1] = {1};
    CHECK(modelfile_get(f, "state", "bn_mean", m->bn_mean, 1, nd, path));
    CHECK(modelfile_get(f, "state", "bn_var", m->bn_var, 1, nd, path));
    CHECK(modelfile_get(f, "state", "sn_u", m->sn_u, 1, nd, path));
    CHECK(modelfile_get(f, "state", "sn_v", m->sn_v, 1, nd, path));
    CHECK(modelfile_get(f, "state", "sigma", &m->sigma, 1, one, path));
    if (epoch) *epoch = (int)ep;
    return FSNN_OK;
}

int modelfile_read(const char *path, fsnn_model *m, int *epoch) {
    hid_t f;
    CHECK(modelfile_open(path, &f));
    int rc = modelfile_load(f, m, epoch, path);
    H5Fclose(f);
    return rc;
}
