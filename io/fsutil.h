/* fsutil: small file-system helpers with checked results. */
#ifndef FSNN_FSUTIL_H
#define FSNN_FSUTIL_H

#include <stddef.h>

/* Creates `path` and its missing parents (mode 0755); fine if it exists as a
 * directory. */
int fsutil_mkdirs(const char *path);

/* Joins dir and name with one '/'; fails if the result does not fit. */
int fsutil_join(char *out, size_t size, const char *dir, const char *name);

/* Replaces `path` with `len` bytes so that a crash at any moment leaves either
 * the old or the new content: write `path`.tmp, fsync, rename, fsync the
 * folder. */
int fsutil_write_atomic(const char *path, const void *data, size_t len);

/* Makes the rename of a file inside `dir` durable. */
int fsutil_sync_dir(const char *dir);

/* 1 if `path` exists as a regular file, 0 otherwise. */
int fsutil_is_file(const char *path);

#endif
