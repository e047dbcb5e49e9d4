/* fsutil: POSIX file-system helpers that fail with a message naming the path. */
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "status.h" // defines: FAIL, CHECK

#define FSUTIL_PATH_MAX 4096

static int fsutil_copy(char *buf, size_t size, const char *path) {
    if (!*path) return FAIL("empty path");
    if (snprintf(buf, size, "%s", path) >= (int)size)
        return FAIL("%.64s...: path longer than %zu bytes", path, size - 1);
    return FSNN_OK;
}

static int fsutil_mkdir_one(const char *path) {
    if (mkdir(path, 0755) == 0) return FSNN_OK;
    int err = errno;
    struct stat st;
    if (err == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return FSNN_OK;
    if (err == EEXIST) return FAIL("cannot create folder '%s': a file of that name exists", path);
    return FAIL("cannot create folder '%s': %s", path, strerror(err));
}

int fsutil_mkdirs(const char *path) {
    char buf[FSUTIL_PATH_MAX];
    CHECK(fsutil_copy(buf, sizeof buf, path));
    /* Create each prefix ending before a '/', then the whole path. */
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/' || p[-1] == '/') continue;
        *p = '\0';
        int rc = fsutil_mkdir_one(buf);
        *p = '/';
        CHECK(rc);
    }
    CHECK(fsutil_mkdir_one(buf));
    return FSNN_OK;
}

int fsutil_join(char *out, size_t size, const char *dir, const char *name) {
    size_t len = strlen(dir);
    const char *sep = (len == 0 || dir[len - 1] == '/') ? "" : "/";
    int n = snprintf(out, size, "%s%s%s", dir, sep, name);
    if (n < 0 || (size_t)n >= size)
        return FAIL("path '%s%s%s' is longer than %zu bytes", dir, sep, name, size - 1);
    return FSNN_OK;
}

/* write() may write less than asked or be interrupted by a signal. */
static int fsutil_write_all(int fd, const void *data, size_t len, const char *path) {
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return FAIL("%s: cannot write: %s", path, strerror(errno));
        p += w;
        len -= (size_t)w;
    }
    return FSNN_OK;
}

int fsutil_write_atomic(const char *path, const void *data, size_t len) {
    char tmp[FSUTIL_PATH_MAX], dir[FSUTIL_PATH_MAX];
    CHECK(fsutil_copy(dir, sizeof dir, path));
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return FAIL("%s.tmp: path longer than %zu bytes", path, sizeof tmp - 1);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return FAIL("%s: cannot create: %s", tmp, strerror(errno));
    int rc = fsutil_write_all(fd, data, len, tmp);
    if (rc == 0 && fsync(fd) != 0) rc = FAIL("%s: fsync failed: %s", tmp, strerror(errno));
    if (close(fd) != 0 && rc == 0) rc = FAIL("%s: close failed: %s", tmp, strerror(errno));
    if (rc == 0 && rename(tmp, path) != 0)
        rc = FAIL("cannot rename %s to %s: %s", tmp, path, strerror(errno));
    if (rc != 0) {
        unlink(tmp);
        return rc;
    }
    CHECK(fsutil_sync_dir(dirname(dir)));
    return FSNN_OK;
}

int fsutil_sync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return FAIL("cannot open folder '%s' to sync it: %s", dir, strerror(errno));
    int rc = FSNN_OK;
    /* Some file systems cannot fsync a folder (EINVAL); their renames are
     * as durable as they get. */
    if (fsync(fd) != 0 && errno != EINVAL)
        rc = FAIL("cannot sync folder '%s': %s", dir, strerror(errno));
    close(fd);
    return rc;
}

int fsutil_is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}
