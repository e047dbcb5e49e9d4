/* fsutil: path joining, folder creation, atomic replacement and the
 * file test, in a fresh folder under /tmp. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "fsutil.h"
#include "status.h"
#include "testutil.h"

static char tmp_dir[] = "/tmp/fsnn_test_fsutil_XXXXXX";

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static void test_join(void) {
    char out[16];
    EXPECT_OK(fsutil_join(out, sizeof out, "runs/a", "m.csv"));
    EXPECT(!strcmp(out, "runs/a/m.csv"), "%s", out);
    EXPECT_OK(fsutil_join(out, sizeof out, "runs/a/", "m.csv"));
    EXPECT(!strcmp(out, "runs/a/m.csv"), "one '/' only: %s", out);
    EXPECT_OK(fsutil_join(out, sizeof out, "", "m.csv"));
    EXPECT(!strcmp(out, "m.csv"), "empty folder: %s", out);
    EXPECT_OK(fsutil_join(out, sizeof out, "runs/abcd", "m.csv"));
    EXPECT_FAILS(fsutil_join(out, sizeof out, "runs/abcde", "m.csv"), "runs/abcde/m.csv",
                 "longer than 15 bytes");
}

static void test_mkdirs(void) {
    char path[512], file[512];
    snprintf(path, sizeof path, "%s/a/b//c/", tmp_dir);
    EXPECT_OK(fsutil_mkdirs(path));
    EXPECT(is_dir(path), "%s exists", path);
    EXPECT_OK(fsutil_mkdirs(path));
    snprintf(file, sizeof file, "%s/a/f", tmp_dir);
    EXPECT_OK(fsutil_write_atomic(file, "x", 1));
    snprintf(path, sizeof path, "%s/a/f/g", tmp_dir);
    EXPECT_FAILS(fsutil_mkdirs(path), file, "a file of that name exists");
    EXPECT_FAILS(fsutil_mkdirs(""), "empty path");
    EXPECT_FAILS(fsutil_mkdirs("/proc/fsnn_cannot_be_here"), "/proc/fsnn_cannot_be_here",
                 "cannot create folder");
}

static void test_write_atomic(void) {
    char path[512], tmp[600], got[16] = "";
    snprintf(path, sizeof path, "%s/config.ini", tmp_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    EXPECT_OK(fsutil_write_atomic(path, "hello", 5));
    EXPECT_OK(fsutil_write_atomic(path, "bye", 3));
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(got, 1, sizeof got - 1, f) : 0;
    if (f) fclose(f);
    EXPECT(n == 3 && !memcmp(got, "bye", 3), "content replaced: %zu bytes '%s'", n, got);
    EXPECT(access(tmp, F_OK) != 0, "no temporary file left");
    EXPECT(fsutil_is_file(path) == 1, "is_file on a file");
    EXPECT(fsutil_is_file(tmp_dir) == 0, "is_file on a folder");
    EXPECT(fsutil_is_file(tmp) == 0, "is_file on nothing");

    snprintf(path, sizeof path, "%s/no/such/x.ini", tmp_dir);
    EXPECT_FAILS(fsutil_write_atomic(path, "x", 1), "x.ini.tmp", "cannot create");
    EXPECT_OK(fsutil_sync_dir(tmp_dir));
    snprintf(path, sizeof path, "%s/missing", tmp_dir);
    EXPECT_FAILS(fsutil_sync_dir(path), path, "cannot open folder");
}

int main(void) {
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_join();
    test_mkdirs();
    test_write_atomic();
    testutil_remove_tree(tmp_dir);
    return check_finish("fsutil");
}
