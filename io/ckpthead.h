/* ckpthead: the fsnn header of a checkpoint file, the ASCII text in its
 * HDF5 user block that names the format version and covers every byte after
 * the user block with its length and SHA-256 (the format is in ckpt.h).
 *
 * A reader checks it on the file's bytes before HDF5 parses any of them; a
 * writer fills it in (seals the file) after HDF5 has closed it. Neither
 * needs HDF5: the user block and HDF5's signature after it are all this
 * module looks at. */
#ifndef FSNN_CKPTHEAD_H
#define FSNN_CKPTHEAD_H

#include <stddef.h>

/* Verifies the header of the file image bytes[size] read from `path` (for
 * messages): the magic line, a format version ckpt.h's reader accepts, the
 * header's exact form (NUL padding included), the length and the SHA-256 of
 * what follows the user block. Fails naming what is wrong: a foreign file, an
 * HDF5 file without the header, a truncated or damaged one. */
int ckpthead_check(const char *path, const unsigned char *bytes, size_t size);

/* Fills in the header of the open file fd (`path` for messages), an HDF5
 * file created with a user block of CKPT_HEADER_SIZE bytes: the current
 * format version, the file's length and the SHA-256 of all bytes after the
 * user block. Refuses a file without HDF5's signature right after the user
 * block. Does not fsync. */
int ckpthead_seal_fd(int fd, const char *path);

/* The 32 bytes of a SHA-256 digest as the 64 lowercase hex digits and NUL
 * that checkpoints store, in the header as in their other digests. */
void ckpthead_hex(const unsigned char *md, char hex[65]);

#endif
