/* nmnist: N-MNIST event files, checked, kept as records, binned on demand. */
#include "nmnist.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cfg.h"    // defines: CFG_PATH_MAX
#include "fsutil.h" // defines: fsutil_join
#include "status.h" // defines: FAIL, CHECK, XCALLOC

#define NMNIST_PATH_MAX (CFG_PATH_MAX + 320)

void nmnist_decode(const uint8_t rec[NMNIST_EVENT_BYTES], nmnist_event *ev) {
    ev->x = rec[0];
    ev->y = rec[1];
    ev->p = rec[2] >> 7;
    ev->ts = (uint32_t)(rec[2] & 0x7f) << 16 | (uint32_t)rec[3] << 8 | rec[4];
}

int nmnist_parse(const char *name, const uint8_t *bytes, size_t len, long *n_events) {
    if (len == 0) return FAIL("%s: empty file (an N-MNIST sample holds 5-byte events)", name);
    if (len % NMNIST_EVENT_BYTES != 0)
        return FAIL("%s: size %zu bytes is not a whole number of 5-byte events (truncated or not "
                    "an N-MNIST file?)",
                    name, len);
    const long n = (long)(len / NMNIST_EVENT_BYTES);
    if (n > NMNIST_MAX_EVENTS)
        return FAIL("%s: %ld events, more than the %ld an N-MNIST sample can have", name, n,
                    NMNIST_MAX_EVENTS);
    uint32_t last = 0;
    for (long i = 0; i < n; i++) {
        nmnist_event ev;
        nmnist_decode(bytes + (size_t)i * NMNIST_EVENT_BYTES, &ev);
        if (ev.x >= NMNIST_SIDE || ev.y >= NMNIST_SIDE)
            return FAIL("%s: event %ld (byte offset %zu) is at x %d, y %d, outside the 34 x 34 "
                        "sensor",
                        name, i, (size_t)i * NMNIST_EVENT_BYTES, ev.x, ev.y);
        if (ev.ts < last)
            return FAIL("%s: event %ld (byte offset %zu) has timestamp %u us, before the %u us of "
                        "the event before it",
                        name, i, (size_t)i * NMNIST_EVENT_BYTES, ev.ts, last);
        last = ev.ts;
    }
    *n_events = n;
    return FSNN_OK;
}

/* ---- loading ---- */

typedef struct {
    char **names; /* sorted */
    long n;
} nmnist_list;

static int nmnist_cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void nmnist_list_free(nmnist_list *l) {
    for (long i = 0; i < l->n; i++)
        free(l->names[i]);
    free(l->names);
    memset(l, 0, sizeof *l);
}

/* The *.bin files of folder `path`, sorted by name. */
static int nmnist_list_dir(const char *path, nmnist_list *out) {
    DIR *d = opendir(path);
    if (!d)
        return FAIL("%s: cannot open the folder (%s); N-MNIST keeps each digit's samples in a "
                    "folder named after the digit (docs/data.md)",
                    path, strerror(errno));
    long cap = 0;
    int rc = FSNN_OK;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".bin") != 0) continue;
        if (out->n == cap) {
            cap = cap ? 2 * cap : 1024;
            char **grown = realloc(out->names, sizeof(char *) * (size_t)cap);
            if (!grown) {
                rc = FAIL("%s: out of memory listing the folder", path);
                break;
            }
            out->names = grown;
        }
        out->names[out->n] = strdup(e->d_name);
        if (!out->names[out->n])
            rc = FAIL("%s: out of memory listing the folder", path);
        else
            out->n++;
    }
    closedir(d);
    if (rc == 0 && out->n > 1) qsort(out->names, (size_t)out->n, sizeof(char *), nmnist_cmp);
    return rc;
}

/* Appends the checked records of file `path` to *out (sample `i`). */
static int nmnist_read(const char *path, long i, nmnist_set *out, long *cap) {
    struct stat st;
    if (stat(path, &st) != 0) return FAIL("%s: cannot be read (%s)", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return FAIL("%s: not a regular file", path);
    const size_t len = (size_t)st.st_size;
    if (len > (size_t)NMNIST_MAX_EVENTS * NMNIST_EVENT_BYTES)
        return FAIL("%s: %zu bytes, more than the %ld events an N-MNIST sample can have", path, len,
                    NMNIST_MAX_EVENTS);
    const long have = out->start[i];
    const long need = have + (long)(len / NMNIST_EVENT_BYTES) + 1;
    if (need > *cap) {
        long grow = *cap ? 2 * *cap : 1L << 20;
        while (grow < need)
            grow *= 2;
        uint8_t *bigger = realloc(out->records, (size_t)grow * NMNIST_EVENT_BYTES);
        if (!bigger) return FAIL("%s: out of memory for the N-MNIST events", path);
        out->records = bigger;
        *cap = grow;
    }
    uint8_t *dst = out->records + (size_t)have * NMNIST_EVENT_BYTES;
    FILE *f = fopen(path, "rb");
    if (!f) return FAIL("%s: cannot open (%s)", path, strerror(errno));
    size_t got = fread(dst, 1, len, f);
    fclose(f);
    if (got != len) return FAIL("%s: short read (file changed while reading?)", path);
    long n = 0;
    CHECK(nmnist_parse(path, dst, len, &n));
    out->start[i + 1] = have + n;
    return FSNN_OK;
}

static int nmnist_fill(const char *root, const nmnist_list *lists, long n, nmnist_set *out,
                       uint8_t *labels) {
    CHECK(XCALLOC(&out->start, (size_t)n + 1));
    long cap = 0, i = 0;
    char path[NMNIST_PATH_MAX];
    for (long k = 0; i < n; k++)
        for (int d = 0; d < NMNIST_CLASSES && i < n; d++) {
            if (k >= lists[d].n) continue;
            int len = snprintf(path, sizeof path, "%s/%d/%s", root, d, lists[d].names[k]);
            if (len < 0 || (size_t)len >= sizeof path)
                return FAIL("%s/%d/%s: path too long", root, d, lists[d].names[k]);
            CHECK(nmnist_read(path, i, out, &cap));
            labels[i++] = (uint8_t)d;
        }
    out->n = n;
    return FSNN_OK;
}

int nmnist_load(const char *dir, const char *split, long limit, nmnist_set *out, uint8_t **labels) {
    memset(out, 0, sizeof *out);
    *labels = NULL;
    if (limit < 0) return FAIL("sample limit for N-MNIST %s is %ld; it must be >= 0", split, limit);
    char root[NMNIST_PATH_MAX], sub[NMNIST_PATH_MAX];
    CHECK(fsutil_join(root, sizeof root, dir, split));
    struct stat st;
    if (stat(root, &st) != 0 || !S_ISDIR(st.st_mode))
        return FAIL("N-MNIST folder '%s' is missing; set data.path to the folder holding Train "
                    "and Test (docs/data.md)",
                    root);
    nmnist_list lists[NMNIST_CLASSES];
    memset(lists, 0, sizeof lists);
    long total = 0;
    int rc = FSNN_OK;
    for (int d = 0; rc == 0 && d < NMNIST_CLASSES; d++) {
        const char digit[2] = {(char)('0' + d), '\0'};
        rc = fsutil_join(sub, sizeof sub, root, digit);
        if (rc == 0) rc = nmnist_list_dir(sub, &lists[d]);
        total += lists[d].n;
    }
    if (rc == 0 && total == 0) rc = FAIL("%s: no sample files (*.bin) in its digit folders", root);
    if (rc == 0 && limit > total)
        rc = FAIL("%s: the sample limit is %ld but the folder holds only %ld samples", root, limit,
                  total);
    const long n = limit > 0 ? limit : total;
    if (rc == 0) rc = XCALLOC(labels, (size_t)n);
    if (rc == 0) rc = nmnist_fill(root, lists, n, out, *labels);
    for (int d = 0; d < NMNIST_CLASSES; d++)
        nmnist_list_free(&lists[d]);
    if (rc != 0) {
        nmnist_destroy(out);
        free(*labels);
        *labels = NULL;
    }
    return rc;
}

/* ---- binning ---- */

/* Orchard's stabilize.m on one event: 1-based coordinates moved back along
 * the saccade at time ts, in the same operation order, then rounded. Returns
 * 0 when the event leaves the sensor. */
static int nmnist_stabilize(nmnist_event *ev) {
    double x = ev->x + 1, y = ev->y + 1, t = ev->ts;
    if (t <= 105e3) {
        x = x - 3.5 * t / 105e3;
        y = y - 7 * t / 105e3;
    } else if (t <= 210e3) {
        x = x - 3.5 - 3.5 * (t - 105e3) / 105e3;
        y = y - 7 + 7 * (t - 105e3) / 105e3;
    } else {
        x = x - 7 + 7 * (t - 210e3) / 105e3;
    }
    x = round(x);
    y = round(y);
    if (x < 1 || y < 1 || x > NMNIST_SIDE || y > NMNIST_SIDE) return 0;
    ev->x = (int)x - 1;
    ev->y = (int)y - 1;
    return 1;
}

int nmnist_frames(const uint8_t *records, long n_events, const nmnist_binning *b, float *frames) {
    if (b->T < 1) return FAIL("N-MNIST binning: %d frames; at least 1 needed", b->T);
    const int T = b->T;
    memset(frames, 0, sizeof(float) * (size_t)T * NMNIST_FRAME);
    if (n_events <= 0) return FSNN_OK;
    nmnist_event first, last;
    nmnist_decode(records, &first);
    nmnist_decode(records + (size_t)(n_events - 1) * NMNIST_EVENT_BYTES, &last);
    const uint64_t span = (uint64_t)(last.ts - first.ts) + 1;
    for (long i = 0; i < n_events; i++) {
        nmnist_event ev;
        nmnist_decode(records + (size_t)i * NMNIST_EVENT_BYTES, &ev);
        if (b->stabilize && !nmnist_stabilize(&ev)) continue;
        uint64_t k;
        if (b->window_us > 0) {
            if (ev.ts == 0) continue;
            k = (ev.ts - 1) / b->window_us;
        } else {
            k = (uint64_t)(ev.ts - first.ts) * (uint64_t)T / span;
        }
        /* x, y are in range for checked records; the test keeps unchecked ones in bounds. */
        if (k >= (uint64_t)T || ev.x >= NMNIST_SIDE || ev.y >= NMNIST_SIDE) continue;
        frames[(((size_t)k * 2 + (size_t)ev.p) * NMNIST_SIDE + ev.y) * NMNIST_SIDE + ev.x] = 1.0f;
    }
    return FSNN_OK;
}

void nmnist_destroy(nmnist_set *s) {
    free(s->start);
    free(s->records);
    memset(s, 0, sizeof *s);
}
