/* h5in: read-only access to an HDF5 file of named numeric arrays and scalar
 * attributes, such as the reference fixtures (shared/fixtures/reference/
 * README.md): datasets like `init/network_x.fc.weight` or `input/y`, 0-d
 * scalar datasets, groups, and root attributes of integer, float and string
 * type.
 *
 * Paths name objects from the root ("init/x" and "/init/x" are the same;
 * "/" or "" is the root group) and are followed through hard links only:
 * soft and external links are never followed. Every function returns an
 * fsnn status (0 = ok); each failure message names the file, the object
 * path and what was wrong. Nothing here prints HDF5's error stack, and no
 * reader writes outside its buffer whatever the file holds: ranks, dimension
 * products, types and string lengths are checked before anything is read. */
#ifndef FSNN_H5IN_H
#define FSNN_H5IN_H

#include <stddef.h>
#include <stdint.h>

/* The most dimensions a dataset may have. */
#define H5IN_RANK_MAX 8
/* The most elements a dataset may have (1 GiB of float32). */
#define H5IN_COUNT_MAX (1L << 28)
/* The longest object path accepted, in bytes. */
#define H5IN_PATH_MAX 1024
/* The longest string attribute read (its stored size), in bytes. */
#define H5IN_STRING_MAX (1L << 24)

typedef struct h5in h5in;

/* Opens the HDF5 file `path` read-only into *f (close with h5in_close).
 * Fails, naming the file, when it is missing or unreadable, is not an HDF5
 * file, or HDF5 cannot open it (damaged or truncated). */
int h5in_open(h5in **f, const char *path);

/* Closes the file (no other HDF5 object of it stays open between calls);
 * sets *f to NULL. Safe on NULL and on *f == NULL. */
void h5in_close(h5in **f);

/* The file's path as given to h5in_open. */
const char *h5in_path(const h5in *f);

/* 1 if a dataset or a group exists at `path`, else 0 (also when an
 * intermediate group is missing, or the path crosses a dataset or a link
 * that is not followed). Never fails and records no message. */
int h5in_exists(const h5in *f, const char *path);

/* The shape of dataset `path`: *rank dimensions (0 for a scalar dataset) in
 * dims[0..rank-1] (the caller's array holds H5IN_RANK_MAX entries). Fails
 * for a missing path, a group, a null dataspace, more than H5IN_RANK_MAX
 * dimensions or more than H5IN_COUNT_MAX elements. */
int h5in_dims(const h5in *f, const char *path, int *rank, long *dims);

/* Reads dataset `path` of any integer or float type as float into a new
 * array *data (caller frees with free()) of *count elements: the product of
 * its dimensions, 1 for a scalar dataset (the array has at least one
 * element, even when *count is 0). Float64 values beyond float's range
 * become +-inf. Fails (with *data = NULL, *count = 0) for a non-numeric
 * type and as h5in_dims does. */
int h5in_read_f32(const h5in *f, const char *path, float **data, long *count);

/* Reads dataset `path` as float into data[0..expect-1]; fails, giving both
 * counts, unless it has exactly `expect` elements (the buffer is then left
 * untouched). */
int h5in_read_f32_into(const h5in *f, const char *path, float *data, long expect);

/* As h5in_read_f32, as int32 (labels). Only integer types are accepted, and
 * a value outside the int32 range fails the read rather than being
 * clipped. */
int h5in_read_i32(const h5in *f, const char *path, int32_t **data, long *count);

/* 1 if object `obj` (a group or a dataset; "/" for the root) exists and has
 * an attribute `name`, else 0. Never fails. */
int h5in_attr_exists(const h5in *f, const char *obj, const char *name);

/* The value of numeric (integer or float) attribute `name` of object `obj`
 * as double: a scalar attribute or an array of one element. */
int h5in_attr_double(const h5in *f, const char *obj, const char *name, double *out);

/* The value of string attribute `name` of object `obj` (scalar or one
 * element; fixed or variable length), NUL-terminated in buf[cap]. Fails
 * when the string and its NUL need more than cap bytes (the message gives
 * both), and for a stored size above H5IN_STRING_MAX. A fixed-length
 * string stops at its first NUL; trailing spaces of a space-padded one are
 * dropped. */
int h5in_attr_string(const h5in *f, const char *obj, const char *name, char *buf, size_t cap);

/* Called by h5in_list with each dataset's name; non-zero stops the walk. */
typedef int (*h5in_visit_fn)(void *ctx, const char *name);

/* Calls fn(ctx, name) for every dataset below group `group`, recursively,
 * with names relative to the group ("network_x.fc.weight",
 * "state_after/network_x.bn.running_mean"), sorted by strcmp of the whole
 * name. Only hard links are followed; the contents of a group reachable
 * through several links are listed once. The names are collected before
 * the first call, so fn may call any h5in function. Returns fn's first
 * non-zero value, or a failure of its own (a missing group, a damaged
 * file). */
int h5in_list(const h5in *f, const char *group, h5in_visit_fn fn, void *ctx);

#endif
