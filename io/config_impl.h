/* config_impl: what the files of the config module share and nothing else
 * includes (config.h is the interface). config_keys.c holds the table of
 * keys; config.c parses, checks, writes and documents values through it. */
#ifndef FSNN_CONFIG_IMPL_H
#define FSNN_CONFIG_IMPL_H

#include <stddef.h>

typedef enum {
    CONFIG_INT,    /* int */
    CONFIG_LONG,   /* long */
    CONFIG_U64,    /* uint64_t, full range */
    CONFIG_FLOAT,  /* float */
    CONFIG_DOUBLE, /* double */
    CONFIG_STRING, /* char[size] */
    CONFIG_NET,    /* char[size], a net (src/netspec.h); aux = the int that receives N of
                      "N (FN)", else 0 */
    CONFIG_ENUM,   /* int or a C enum; names in choices */
    CONFIG_LIST    /* int[size], increasing, >= lo; aux = the int count */
} config_type;

typedef struct {
    const char *name;
    int value;
} config_choice;

typedef struct {
    const char *key; /* "section.name" */
    config_type type;
    size_t offset; /* of the field in fsnn_cfg */
    size_t size;   /* bytes of a string, entries of a list */
    size_t aux;    /* offset of the derived int (CONFIG_NET, CONFIG_LIST) */
    const char *def;
    double lo, hi; /* numeric range; hi = HUGE_VAL for none */
    int lo_open, hi_open;
    const config_choice *choices; /* CONFIG_ENUM, ended by a NULL name */
    const char *doc;
} config_opt;

/* The keys in the order config_write and the key reference list them:
 * config_opts[0 .. CONFIG_N_OPTS-1]. The count is a constant so that
 * config.c can size per-key arrays; config_keys.c asserts that it is the
 * table's length. */
#define CONFIG_N_OPTS 49
extern const config_opt *const config_opts;

#endif
