/* idx: reader of IDX files (the MNIST family's format), plain or gzip.
 *
 * Format: 2 zero bytes, a type byte (0x08 = unsigned byte, the only type
 * accepted), a byte giving the number of dimensions, then one big-endian
 * uint32 per dimension, then the data in row-major order. zlib reads plain
 * and gzip-compressed files alike. Every check failure names the file and
 * what was wrong (offset, expected vs. found). */
#ifndef FSNN_IDX_H
#define FSNN_IDX_H

#include <stddef.h>
#include <stdint.h>

#define IDX_MAX_DIMS 4

typedef struct {
    int ndim;
    uint32_t dims[IDX_MAX_DIMS];
    size_t count;        /* product of dims */
    uint32_t file_items; /* dims[0] as stored in the file, before max_items */
    uint8_t *data;       /* owned; free with idx_free */
} idx_array;

/* Reads `path` into `out`. Fails unless the file has exactly `want_ndim`
 * dimensions, every dimension is non-zero, the payload is at most
 * `max_bytes`, the data is complete and nothing follows it. When
 * `max_items` > 0 only the first max_items entries along dimension 0 are
 * kept (dims[0] is reduced accordingly; the rest of the file is still
 * checked for completeness). */
int idx_read(const char *path, int want_ndim, size_t max_bytes, size_t max_items, idx_array *out);

/* The same checks on bytes in memory (plain IDX, no gzip); `name` is used in
 * messages. Used by the fuzz harness and tests. */
int idx_parse(const char *name, const uint8_t *bytes, size_t len, int want_ndim, size_t max_bytes,
              size_t max_items, idx_array *out);

/* Frees out->data and zeroes the struct; safe on a zeroed struct. */
void idx_free(idx_array *a);

#endif
